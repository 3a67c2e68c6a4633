//! Request routing and the OpenAI-compatible endpoints.
//!
//! Each generation request is validated (auth, JSON, model, images), may be
//! failed before any response by a fault (an error answer, a reset, silence),
//! and is then handed to the engine; its response body is either a
//! `TokenStream` (SSE) or, for non-streamed requests, one JSON document sent
//! once the engine has produced every chunk. Errors use the flavor's error
//! shape so clients exercise their real paths.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use crate::net::ArrivalClock;
use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::Instant;

use super::body::{SimBody, StreamSpec, TokenStream};
use super::chunks::{Chunks, Endpoint, MALFORMED};
use super::config::{ErrorBody, Flavor, SimConfig};
use super::conn::{ConnControl, Ending};
use super::engine::{EngineHandle, Tick};
use super::errors::{error_json, html_page};
use super::faults::{ExclusiveFault, FaultPlan, FaultRates};
use super::llama;
use super::request::{self, GenRequest};
use super::stats::{Fault, Stats};

/// Largest request body accepted; generous enough for base64 images.
const MAX_BODY_BYTES: usize = 64 << 20;

/// llama.cpp's answer to an image when no multimodal projector is loaded.
pub(crate) const REJECT_IMAGE_MESSAGE: &str =
    "image input is not supported - hint: if this is unexpected, you may need to provide the mmproj";

type Reply = Response<SimBody>;

/// A request refused with an error answer; becomes a `Reply` at the end,
/// which keeps the `Result`s on the way small.
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

    fn into_reply(self, flavor: Flavor) -> Reply {
        error(flavor, self.status, &self.message)
    }
}

/// How the error fault answers.
struct InjectedErrors {
    statuses: Vec<StatusCode>,
    retry_after: Option<HeaderValue>,
    body: ErrorBody,
}

/// Everything the handlers share, built once at start.
pub(crate) struct AppState {
    model: String,
    flavor: Flavor,
    /// The full expected `Authorization` header value, if a key is set.
    expected_auth: Option<String>,
    default_max_tokens: u64,
    no_usage: bool,
    reject_images: bool,
    max_batch: usize,
    injected_errors: InjectedErrors,
    stall_for: Duration,
    huge_event_bytes: usize,
    close_after_responses: u64,
    faults: FaultRates,
    chunks: Arc<Chunks>,
    engine: EngineHandle,
    /// Prompts seen, for llama-server's prompt cache (that flavor only).
    prompt_cache: Option<PromptCache>,
    embeddings: super::embeddings::Embeddings,
    pub stats: Arc<Stats>,
}

/// llama-server reuses a cached prompt: a prompt seen before costs one token of prefill (it
/// always evaluates the last one), unless the request says `cache_prompt: false`. Keyed by the
/// whole prompt, a coarse stand-in for llama.cpp's per-slot common prefix.
#[derive(Default)]
struct PromptCache {
    seen: std::sync::Mutex<std::collections::HashSet<u64>>,
}

/// Bounded so that hours of unique prompts do not grow the simulator.
const PROMPT_CACHE_ENTRIES: usize = 4096;

impl PromptCache {
    /// Prompt tokens the server evaluates for this request.
    fn evaluated(&self, parsed: &GenRequest) -> u64 {
        if !parsed.cache_prompt {
            return parsed.prompt_tokens;
        }
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= PROMPT_CACHE_ENTRIES {
            seen.clear();
        }
        if seen.insert(parsed.prompt_fingerprint) {
            parsed.prompt_tokens
        } else {
            parsed.prompt_tokens.min(1)
        }
    }
}

impl AppState {
    pub fn new(config: &SimConfig, stats: Arc<Stats>, engine: EngineHandle) -> Self {
        let statuses = config
            .fault_error_status
            .iter()
            .map(|&s| StatusCode::from_u16(s).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
            .collect();
        Self {
            model: config.model.clone(),
            flavor: config.flavor,
            expected_auth: config.api_key.as_ref().map(|key| format!("Bearer {key}")),
            default_max_tokens: config.default_max_tokens.max(1),
            no_usage: config.no_usage,
            reject_images: config.reject_images,
            max_batch: config.max_batch,
            injected_errors: InjectedErrors {
                statuses,
                retry_after: config.fault_retry_after.map(HeaderValue::from),
                body: config.fault_error_body,
            },
            stall_for: Duration::from_millis(config.fault_stall_ms),
            huge_event_bytes: usize::try_from(config.fault_huge_event_kib.saturating_mul(1024)).unwrap_or(usize::MAX),
            close_after_responses: config.close_after_responses,
            faults: FaultRates::from_config(config),
            chunks: Arc::new(
                Chunks::new(
                    &config.model,
                    config.tokens_per_chunk.max(1),
                    !config.no_role_chunk,
                    config.flavor,
                )
                .with_reasoning(super::reasoning::Reasoning {
                    tokens: config.reasoning_tokens,
                }),
            ),
            engine,
            embeddings: super::embeddings::Embeddings::new(config, Arc::clone(&stats)),
            prompt_cache: (config.flavor == Flavor::LlamaServer).then(PromptCache::default),
            stats,
        }
    }
}

/// The hyper service: routes one request that arrived on `conn`.
pub(crate) async fn handle(
    state: Arc<AppState>,
    conn: Arc<ConnControl>,
    arrivals: Arc<ArrivalClock>,
    req: Request<Incoming>,
) -> Result<Reply, Infallible> {
    // hyper calls us once the head is parsed: the last read is the one that brought it.
    let received_at = arrivals.last_read().map(Instant::from_std).unwrap_or_else(Instant::now);
    let flavor = state.flavor;
    let reply = match (req.method(), req.uri().path()) {
        (&Method::GET, "/health") => json(StatusCode::OK, r#"{"status":"ok"}"#),
        (&Method::GET, "/v1/models") => match check_auth(&state, &req) {
            Ok(()) => json(StatusCode::OK, state.chunks.models.clone()),
            Err(e) => e.into_reply(flavor),
        },
        (&Method::GET, "/metrics") => prometheus(llama::metrics(&state.stats.snapshot())),
        (&Method::GET, "/props") if flavor == Flavor::LlamaServer => json(
            StatusCode::OK,
            llama::props(&state.model, state.max_batch, !state.reject_images),
        ),
        (&Method::GET, "/sim/stats") => match serde_json::to_vec(&state.stats.snapshot()) {
            Ok(body) => json(StatusCode::OK, body),
            Err(e) => error(flavor, StatusCode::INTERNAL_SERVER_ERROR, &format!("stats: {e}")),
        },
        (&Method::POST, "/sim/reset") => {
            state.stats.reset();
            json(StatusCode::OK, r#"{"status":"ok"}"#)
        }
        (&Method::POST, "/v1/chat/completions") => generate(&state, &conn, Endpoint::Chat, req, received_at).await,
        (&Method::POST, "/v1/completions") => generate(&state, &conn, Endpoint::Completions, req, received_at).await,
        (&Method::POST, "/v1/embeddings") => embed(&state, req).await,
        (
            _,
            "/health"
            | "/v1/models"
            | "/metrics"
            | "/sim/stats"
            | "/sim/reset"
            | "/v1/chat/completions"
            | "/v1/completions"
            | "/v1/embeddings",
        ) => error(flavor, StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
        (_, path) => error(flavor, StatusCode::NOT_FOUND, &format!("no route for {path}")),
    };
    Ok(reply)
}

/// An embeddings request (see [`super::embeddings`]).
async fn embed(state: &AppState, req: Request<Incoming>) -> Reply {
    if let Err(e) = check_auth(state, &req) {
        return e.into_reply(state.flavor);
    }
    let counted = !req.headers().contains_key(crate::client::probe::PROBE_HEADER);
    let guard = state.stats.in_flight_guard();
    let body = match read_body(req).await {
        Ok(body) => body,
        Err(e) => return e.into_reply(state.flavor),
    };
    let reply = match state.embeddings.answer(&body, counted).await {
        Ok(answer) => json(StatusCode::OK, answer),
        Err((status, message)) => error(state.flavor, status, &message),
    };
    let (parts, body) = reply.into_parts();
    Response::from_parts(parts, body.with_guard(guard))
}

/// A generation request, from arrival to the start of its response.
async fn generate(
    state: &AppState,
    conn: &Arc<ConnControl>,
    endpoint: Endpoint,
    req: Request<Incoming>,
    received_at: Instant,
) -> Reply {
    // Counted and indexed on arrival: the index alone decides the faults,
    // so identical request sequences see identical faults.
    // llm-bench's pre-flight requests are exempt: they take no arrival index, suffer no fault
    // and stay out of the token counters, so a run's counts are exactly its measured requests'.
    let probe = req.headers().contains_key(crate::client::probe::PROBE_HEADER);
    let plan = if probe {
        FaultPlan::default()
    } else {
        state.stats.record_arrival(received_at.into_std());
        state.faults.plan(state.stats.next_request_index())
    };
    let arrival = Arrival {
        plan,
        counted: !probe,
        received_at,
    };
    let guard = state.stats.in_flight_guard();
    let reply = answer(state, conn, endpoint, req, arrival).await;
    let (parts, body) = reply.into_parts();
    Response::from_parts(parts, body.with_guard(guard))
}

/// What is known of a generation request when it arrives.
#[derive(Clone, Copy)]
struct Arrival {
    plan: FaultPlan,
    /// Counted in the simulator's totals (llm-bench's pre-flight requests are not).
    counted: bool,
    /// When the handler started; TTFT is measured from here.
    received_at: Instant,
}

async fn answer(
    state: &AppState,
    conn: &Arc<ConnControl>,
    endpoint: Endpoint,
    req: Request<Incoming>,
    arrival: Arrival,
) -> Reply {
    let earlier = conn.next_generation_request();
    if state.close_after_responses > 0 && earlier >= state.close_after_responses {
        // Read the request to its end first: unread bytes would turn the close into a reset.
        let _ = read_body(req).await;
        state.stats.count_fault(Fault::KeepaliveClose);
        return hang_up(conn, Ending::Close).await;
    }
    let parsed = match validate(state, endpoint, req).await {
        Ok(parsed) => parsed,
        Err(e) => return e.into_reply(state.flavor),
    };
    if let Some(reply) = fail_before_response(state, conn, arrival.plan).await {
        return reply;
    }
    match submit(state, endpoint, &parsed, arrival) {
        Ok(admitted) => respond(state, conn, endpoint, parsed, admitted, arrival).await,
        Err(e) => e.into_reply(state.flavor),
    }
}

/// An admitted request: the engine's tick receiver and the output length.
struct Admitted {
    rx: UnboundedReceiver<Tick>,
    output_tokens: u64,
    /// Prompt tokens actually evaluated (fewer when a cached prompt was reused).
    prompt_evaluated: u64,
}

/// Checks the request, or says why it is refused.
async fn validate(state: &AppState, endpoint: Endpoint, req: Request<Incoming>) -> Result<GenRequest, ApiError> {
    check_auth(state, &req)?;
    let body = read_body(req).await?;
    let parsed = request::parse(endpoint, &body).map_err(|msg| ApiError::new(StatusCode::BAD_REQUEST, msg))?;
    // llama-server serves its one model whatever name is asked for.
    if let (Some(model), Flavor::Openai) = (parsed.model.as_deref(), state.flavor) {
        if model != state.model {
            let msg = format!("The model `{model}` does not exist.");
            return Err(ApiError::new(StatusCode::NOT_FOUND, msg));
        }
    }
    if parsed.images > 0 && state.reject_images {
        state.stats.count_fault(Fault::RejectedImage);
        return Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, REJECT_IMAGE_MESSAGE));
    }
    Ok(parsed)
}

/// The faults that strike before any byte of response: an error answer, a reset, silence.
/// Returns the error answer; a reset or silence never returns (the connection task drops the
/// request with its connection).
async fn fail_before_response(state: &AppState, conn: &ConnControl, plan: FaultPlan) -> Option<Reply> {
    if plan.error {
        let statuses = &state.injected_errors.statuses;
        let status = statuses[plan.status_choice % statuses.len()];
        state.stats.count_error_status(status.as_u16());
        return Some(injected_error(state, status));
    }
    match plan.exclusive? {
        ExclusiveFault::ResetBeforeResponse => {
            state.stats.count_fault(Fault::ResetBeforeResponse);
            Some(hang_up(conn, Ending::Reset).await)
        }
        ExclusiveFault::NoAnswer => {
            state.stats.count_fault(Fault::NoAnswer);
            // hyper drops this future when the client closes the connection.
            Some(std::future::pending().await)
        }
        _ => None,
    }
}

/// Asks the connection task to end the connection, and waits for it to drop this request.
async fn hang_up(conn: &ConnControl, ending: Ending) -> Reply {
    conn.end(ending);
    std::future::pending().await
}

/// Queues the request in the engine.
fn submit(state: &AppState, endpoint: Endpoint, parsed: &GenRequest, arrival: Arrival) -> Result<Admitted, ApiError> {
    let output_tokens = parsed.max_tokens.unwrap_or(state.default_max_tokens);
    let endless = parsed.stream && arrival.plan.exclusive == Some(ExclusiveFault::Endless);
    let chunks = match endless {
        true => u64::MAX,
        false => state.chunks.get(endpoint).chunk_count(output_tokens),
    };
    let prompt_evaluated = match &state.prompt_cache {
        Some(cache) if arrival.counted => cache.evaluated(parsed),
        _ => parsed.prompt_tokens,
    };
    let rx = state
        .engine
        .submit(prompt_evaluated, chunks)
        .ok_or_else(|| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "simulator is shutting down"))?;
    if arrival.counted {
        // Like llama-server's prompt_tokens_total: tokens processed, a cached prefix not.
        state.stats.add_prompt_tokens(prompt_evaluated);
    }
    Ok(Admitted {
        rx,
        output_tokens,
        prompt_evaluated,
    })
}

/// Builds the response of an admitted request.
async fn respond(
    state: &AppState,
    conn: &Arc<ConnControl>,
    endpoint: Endpoint,
    parsed: GenRequest,
    admitted: Admitted,
    arrival: Arrival,
) -> Reply {
    let Admitted {
        mut rx,
        output_tokens,
        prompt_evaluated,
    } = admitted;
    let Arrival {
        plan,
        counted,
        received_at,
    } = arrival;
    if parsed.stream {
        let spec = StreamSpec {
            chunks: Arc::clone(&state.chunks),
            endpoint,
            prompt_tokens: parsed.prompt_tokens,
            prompt_evaluated,
            output_tokens,
            include_usage: parsed.include_usage && !state.no_usage,
            // vLLM's option (SGLang has it too); llama.cpp's server does not know it.
            continuous_usage: parsed.continuous_usage && !state.no_usage && state.flavor == Flavor::Openai,
            plan,
            stall_for: state.stall_for,
            huge_event_bytes: state.huge_event_bytes,
            received_at,
            conn: Arc::clone(conn),
            counted,
        };
        let stream = TokenStream::new(spec, rx, Arc::clone(&state.stats));
        let mut reply = Response::new(SimBody::stream(stream));
        let headers = reply.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        return reply;
    }

    // Non-streamed: wait for the whole generation, then answer at once. Of the stream faults,
    // only cut, stall and malformed have a one-document form; the others do not apply here.
    let chunks = state.chunks.get(endpoint);
    for _ in 0..chunks.chunk_count(output_tokens) {
        if rx.recv().await.is_none() {
            return error(
                state.flavor,
                StatusCode::SERVICE_UNAVAILABLE,
                "simulator is shutting down",
            );
        }
    }
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
    if counted {
        state.stats.add_output_tokens(output_tokens);
        state.stats.count_completed();
    }
    let usage = (!state.no_usage).then_some((parsed.prompt_tokens, output_tokens));
    json(StatusCode::OK, chunks.full_response(output_tokens, usage))
}

/// The answer of the error fault: the flavor's JSON error or a proxy's HTML page, with
/// Retry-After on the statuses that carry it.
fn injected_error(state: &AppState, status: StatusCode) -> Reply {
    let injected = &state.injected_errors;
    let mut reply = match injected.body {
        ErrorBody::Json => error(
            state.flavor,
            status,
            &format!("simulated fault: HTTP {}", status.as_u16()),
        ),
        ErrorBody::Html => {
            let mut reply = Response::new(SimBody::full(html_page(status)));
            *reply.status_mut() = status;
            reply
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
            reply
        }
    };
    let throttling = matches!(status, StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE);
    if let (true, Some(seconds)) = (throttling, &injected.retry_after) {
        reply.headers_mut().insert(header::RETRY_AFTER, seconds.clone());
    }
    reply
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

fn prometheus(text: String) -> Reply {
    let mut reply = Response::new(SimBody::full(text));
    reply.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    reply
}

/// An error answer in the flavor's shape.
fn error(flavor: Flavor, status: StatusCode, message: &str) -> Reply {
    json(status, error_json(flavor, status, message))
}
