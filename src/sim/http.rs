//! Request routing and the OpenAI-compatible endpoints.
//!
//! Each generation request is validated (auth, JSON, model, images), may be
//! failed at arrival by the error fault, and is then handed to the engine;
//! its response body is either a `TokenStream` (SSE) or, for non-streamed
//! requests, one JSON document sent once the engine has produced every chunk.
//! Errors use the OpenAI error shape so clients exercise their real paths.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::Instant;

use super::body::{SimBody, StreamSpec, TokenStream};
use super::chunks::{Chunks, Endpoint, MALFORMED};
use super::config::SimConfig;
use super::engine::{EngineHandle, Tick};
use super::faults::{FaultPlan, FaultRates};
use super::request::{self, GenRequest};
use super::stats::{Fault, Stats};

/// Largest request body accepted; generous enough for base64 images.
const MAX_BODY_BYTES: usize = 64 << 20;

/// llama.cpp's answer to an image when no multimodal projector is loaded.
pub(crate) const REJECT_IMAGE_MESSAGE: &str =
    "image input is not supported - hint: if this is unexpected, you may need to provide the mmproj";

type Reply = Response<SimBody>;

/// A request refused with an OpenAI-style error; becomes a `Reply` at the
/// end, which keeps the `Result`s on the way small.
struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    fn into_reply(self) -> Reply {
        error(self.status, &self.message)
    }
}

/// Everything the handlers share, built once at start.
pub(crate) struct AppState {
    model: String,
    /// The full expected `Authorization` header value, if a key is set.
    expected_auth: Option<String>,
    default_max_tokens: u64,
    no_usage: bool,
    reject_images: bool,
    fault_error_status: StatusCode,
    stall_for: Duration,
    faults: FaultRates,
    chunks: Arc<Chunks>,
    engine: EngineHandle,
    pub stats: Arc<Stats>,
}

impl AppState {
    pub fn new(config: &SimConfig, stats: Arc<Stats>, engine: EngineHandle) -> Self {
        Self {
            model: config.model.clone(),
            expected_auth: config.api_key.as_ref().map(|key| format!("Bearer {key}")),
            default_max_tokens: config.default_max_tokens.max(1),
            no_usage: config.no_usage,
            reject_images: config.reject_images,
            fault_error_status: StatusCode::from_u16(config.fault_error_status)
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            stall_for: Duration::from_millis(config.fault_stall_ms),
            faults: FaultRates::from_config(config),
            chunks: Arc::new(Chunks::new(
                &config.model,
                config.tokens_per_chunk.max(1),
                !config.no_role_chunk,
            )),
            engine,
            stats,
        }
    }
}

/// The hyper service: routes one request.
pub(crate) async fn handle(state: Arc<AppState>, req: Request<Incoming>) -> Result<Reply, Infallible> {
    let received_at = Instant::now();
    let reply = match (req.method(), req.uri().path()) {
        (&Method::GET, "/health") => json(StatusCode::OK, r#"{"status":"ok"}"#),
        (&Method::GET, "/v1/models") => match check_auth(&state, &req) {
            Ok(()) => json(StatusCode::OK, state.chunks.models.clone()),
            Err(e) => e.into_reply(),
        },
        (&Method::GET, "/sim/stats") => match serde_json::to_vec(&state.stats.snapshot()) {
            Ok(body) => json(StatusCode::OK, body),
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &format!("stats: {e}")),
        },
        (&Method::POST, "/sim/reset") => {
            state.stats.reset();
            json(StatusCode::OK, r#"{"status":"ok"}"#)
        }
        (&Method::POST, "/v1/chat/completions") => generate(&state, Endpoint::Chat, req, received_at).await,
        (&Method::POST, "/v1/completions") => generate(&state, Endpoint::Completions, req, received_at).await,
        (_, "/health" | "/v1/models" | "/sim/stats" | "/sim/reset" | "/v1/chat/completions" | "/v1/completions") => {
            error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
        }
        (_, path) => error(StatusCode::NOT_FOUND, &format!("no route for {path}")),
    };
    Ok(reply)
}

/// A generation request, from arrival to the start of its response.
async fn generate(state: &AppState, endpoint: Endpoint, req: Request<Incoming>, received_at: Instant) -> Reply {
    // Counted and indexed on arrival: the index alone decides the faults,
    // so identical request sequences see identical faults.
    // llm-bench's pre-flight requests are exempt: they take no arrival index and suffer no
    // fault, so a run's faults are exactly those its measured requests saw.
    let plan = if req.headers().contains_key(crate::client::probe::PROBE_HEADER) {
        FaultPlan::default()
    } else {
        state.faults.plan(state.stats.next_request_index())
    };
    let guard = state.stats.in_flight_guard();
    let reply = match admit(state, endpoint, req, plan).await {
        Ok((parsed, admitted)) => respond(state, endpoint, parsed, admitted, plan, received_at).await,
        Err(e) => e.into_reply(),
    };
    let (parts, body) = reply.into_parts();
    Response::from_parts(parts, body.with_guard(guard))
}

/// An admitted request: the engine's tick receiver and the output length.
struct Admitted {
    rx: UnboundedReceiver<Tick>,
    output_tokens: u64,
}

/// Validates the request and queues it in the engine, or says why not.
async fn admit(
    state: &AppState,
    endpoint: Endpoint,
    req: Request<Incoming>,
    plan: FaultPlan,
) -> Result<(GenRequest, Admitted), ApiError> {
    check_auth(state, &req)?;
    let body = read_body(req).await?;
    let parsed = request::parse(endpoint, &body).map_err(|msg| ApiError::new(StatusCode::BAD_REQUEST, msg))?;
    if let Some(model) = parsed.model.as_deref() {
        if model != state.model {
            let msg = format!("The model `{model}` does not exist.");
            return Err(ApiError::new(StatusCode::NOT_FOUND, msg));
        }
    }
    if parsed.images > 0 && state.reject_images {
        state.stats.count_fault(Fault::RejectedImage);
        return Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, REJECT_IMAGE_MESSAGE));
    }
    if plan.error {
        state.stats.count_fault(Fault::ErrorStatus);
        let status = state.fault_error_status;
        return Err(ApiError::new(
            status,
            format!("simulated fault: HTTP {}", status.as_u16()),
        ));
    }
    let output_tokens = parsed.max_tokens.unwrap_or(state.default_max_tokens);
    let chunks = state.chunks.get(endpoint).chunk_count(output_tokens);
    let rx = state
        .engine
        .submit(parsed.prompt_tokens, chunks)
        .ok_or_else(|| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "simulator is shutting down"))?;
    state.stats.add_prompt_tokens(parsed.prompt_tokens);
    Ok((parsed, Admitted { rx, output_tokens }))
}

/// Builds the response of an admitted request.
async fn respond(
    state: &AppState,
    endpoint: Endpoint,
    parsed: GenRequest,
    admitted: Admitted,
    plan: FaultPlan,
    received_at: Instant,
) -> Reply {
    let Admitted { mut rx, output_tokens } = admitted;
    if parsed.stream {
        let spec = StreamSpec {
            chunks: Arc::clone(&state.chunks),
            endpoint,
            prompt_tokens: parsed.prompt_tokens,
            output_tokens,
            include_usage: parsed.include_usage && !state.no_usage,
            plan,
            stall_for: state.stall_for,
            received_at,
        };
        let stream = TokenStream::new(spec, rx, Arc::clone(&state.stats));
        let mut reply = Response::new(SimBody::stream(stream));
        let headers = reply.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        return reply;
    }

    // Non-streamed: wait for the whole generation, then answer at once.
    let chunks = state.chunks.get(endpoint);
    for _ in 0..chunks.chunk_count(output_tokens) {
        if rx.recv().await.is_none() {
            return error(StatusCode::SERVICE_UNAVAILABLE, "simulator is shutting down");
        }
    }
    // The stream faults, translated to a single response.
    if plan.cut {
        state.stats.count_fault(Fault::CutStream);
        return Response::new(SimBody::abort());
    }
    if plan.stall {
        state.stats.count_fault(Fault::Stall);
        tokio::time::sleep(state.stall_for).await;
    }
    if plan.malformed {
        state.stats.count_fault(Fault::MalformedChunk);
        let bad = MALFORMED.slice(b"data: ".len()..);
        return json(StatusCode::OK, bad);
    }
    state.stats.add_output_tokens(output_tokens);
    state.stats.count_completed();
    let usage = (!state.no_usage).then_some((parsed.prompt_tokens, output_tokens));
    json(StatusCode::OK, chunks.full_response(output_tokens, usage))
}

fn check_auth<B>(state: &AppState, req: &Request<B>) -> Result<(), ApiError> {
    let Some(expected) = state.expected_auth.as_deref() else {
        return Ok(());
    };
    let given = req.headers().get(header::AUTHORIZATION).map(HeaderValue::as_bytes);
    if given == Some(expected.as_bytes()) {
        Ok(())
    } else {
        Err(ApiError::new(StatusCode::UNAUTHORIZED, "Invalid or missing API key"))
    }
}

async fn read_body(req: Request<Incoming>) -> Result<Bytes, ApiError> {
    match Limited::new(req.into_body(), MAX_BODY_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body exceeds {MAX_BODY_BYTES} bytes"),
        )),
        Err(e) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("failed to read request body: {e}"),
        )),
    }
}

fn json(status: StatusCode, body: impl Into<Bytes>) -> Reply {
    let mut reply = Response::new(SimBody::full(body));
    *reply.status_mut() = status;
    reply
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    reply
}

/// An OpenAI-style error: `{"error":{"message","type","param","code"}}`.
fn error(status: StatusCode, message: &str) -> Reply {
    let kind = match status {
        StatusCode::UNAUTHORIZED => "authentication_error",
        StatusCode::NOT_FOUND => "not_found_error",
        StatusCode::TOO_MANY_REQUESTS => "rate_limit_error",
        s if s.is_server_error() => "server_error",
        _ => "invalid_request_error",
    };
    let body = serde_json::json!({
        "error": {
            "message": message,
            "type": kind,
            "param": null,
            "code": status.as_u16(),
        }
    });
    json(status, body.to_string())
}
