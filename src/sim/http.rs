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
use super::chunks::{Chunks, Endpoint, Finish, PromptUsage, MALFORMED};
use super::config::{ErrorBody, Flavor, MetricsFault, SimConfig};
use super::conn::{ConnControl, Ending};
use super::dcgm::Gpus;
use super::engine::{EngineHandle, Job, Tick};
use super::errors::{error_json, html_page};
use super::faults::{ExclusiveFault, FaultPlan, FaultRates};
use super::llama;
use super::metrics::{self, Exposition};
use super::prefix::{PrefixCache, Reuse, PREFIX_CACHE_BLOCKS};
use super::request::{self, GenRequest};
use super::stats::{Fault, Stats};
use super::tokenizer::BLOCK;

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
    /// `--fault-error-message`.
    message: Option<String>,
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
    /// Prompt prefixes seen (`None` with `--no-prefix-cache`).
    prefix_cache: Option<PrefixCache>,
    /// The OpenAI flavor reports `prompt_tokens_details.cached_tokens` only with the prefix
    /// cache on; llama-server always does.
    report_cached: bool,
    /// `--max-output`: the most tokens any request generates.
    max_output: Option<u64>,
    /// `--eos-after`: where a request that does not ignore EOS ends.
    eos_after: Option<u64>,
    /// Serve `POST /tokenize` (not with `--no-tokenize`).
    tokenize: bool,
    max_model_len: u64,
    embeddings: super::embeddings::Embeddings,
    /// GET /metrics' layout, and how it misbehaves.
    exposition: Exposition,
    metrics_fault: MetricsFault,
    clock_offset_s: f64,
    /// GET /dcgm/metrics (`None` without `--gpu-power-w`).
    gpus: Option<Gpus>,
    pub stats: Arc<Stats>,
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
                message: config.fault_error_message.clone(),
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
            prefix_cache: (!config.no_prefix_cache).then(|| PrefixCache::new(PREFIX_CACHE_BLOCKS)),
            report_cached: config.flavor == Flavor::LlamaServer || !config.no_prefix_cache,
            max_output: config.max_output,
            eos_after: config.eos_after,
            tokenize: !config.no_tokenize,
            max_model_len: config.max_model_len,
            embeddings: super::embeddings::Embeddings::new(config, Arc::clone(&stats)),
            exposition: Exposition::new(config),
            metrics_fault: config.metrics_fault,
            clock_offset_s: config.clock_offset_s,
            gpus: Gpus::new(config, std::time::Instant::now()),
            stats,
        }
    }

    /// How many tokens a request generates, and why it stops there: its limit (`max_tokens`
    /// or the default, capped by `--max-output`), or sooner at `--eos-after` (never before
    /// `min_tokens`) unless it ignores EOS. At a tie the limit wins, as in vLLM.
    fn output_length(&self, parsed: &GenRequest) -> (u64, Finish) {
        let asked = parsed.max_tokens.unwrap_or(self.default_max_tokens);
        let eos = self.eos_after.filter(|_| !parsed.ignore_eos);
        output_length(asked, self.max_output, eos, parsed.min_tokens)
    }

    /// Prompt tokens served from the prefix cache, remembering this prompt's blocks. vLLM
    /// counts whole 16-token blocks and always computes the last prompt token; llama-server
    /// reuses the same prompt up to its last token.
    fn cached_tokens(&self, parsed: &GenRequest) -> u64 {
        let Some(cache) = self.prefix_cache.as_ref().filter(|_| parsed.cache_prompt) else {
            return 0;
        };
        let whole = (self.flavor == Flavor::LlamaServer).then_some(parsed.prompt_fingerprint);
        cached_of(self.flavor, parsed.prompt_tokens, cache.reuse(&parsed.blocks, whole))
    }
}

/// The output rule: the limit is `asked` capped by `max_output`; an end of sequence at `eos`
/// (already `None` for a request that ignores EOS), never before `min_tokens`, wins only when it
/// comes strictly before the limit.
fn output_length(asked: u64, max_output: Option<u64>, eos: Option<u64>, min_tokens: u64) -> (u64, Finish) {
    let limit = max_output.map_or(asked, |cap| asked.min(cap)).max(1);
    match eos.map(|eos| eos.max(min_tokens).max(1)) {
        Some(eos) if eos < limit => (eos, Finish::Stop),
        _ => (limit, Finish::Length),
    }
}

/// Cached prompt tokens of a prompt of `n` tokens, from what the cache found. The last prompt
/// token is never cached; the OpenAI flavor (vLLM) counts whole blocks only, llama-server
/// reuses a repeated prompt up to its last token.
fn cached_of(flavor: Flavor, n: u64, reuse: Reuse) -> u64 {
    let last_excluded = n.saturating_sub(1);
    match (flavor, reuse.whole) {
        (Flavor::Openai, _) => (reuse.blocks * BLOCK).min(last_excluded / BLOCK * BLOCK),
        (Flavor::LlamaServer, true) => last_excluded,
        (Flavor::LlamaServer, false) => (reuse.blocks * BLOCK).min(last_excluded),
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
        (&Method::GET, "/metrics") => scrape(&state).await,
        (method, "/dcgm/metrics") if state.gpus.is_some() => dcgm(&state, method),
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
        (&Method::POST, "/tokenize") if state.tokenize => match tokenize(&state, req).await {
            Ok(reply) => reply,
            Err(e) => e.into_reply(flavor),
        },
        (_, "/tokenize") if state.tokenize => error(flavor, StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
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
    Ok(with_date(&state, reply))
}

/// `--clock-offset`: a Date header of a clock that far off (hyper adds the true one otherwise).
fn with_date(state: &AppState, mut reply: Reply) -> Reply {
    if state.clock_offset_s != 0.0 {
        let now = std::time::SystemTime::now();
        let shift = Duration::from_secs_f64(state.clock_offset_s.abs());
        let at = if state.clock_offset_s > 0.0 {
            now.checked_add(shift)
        } else {
            now.checked_sub(shift)
        };
        if let Some(value) = at.and_then(|at| HeaderValue::from_str(&httpdate::fmt_http_date(at)).ok()) {
            reply.headers_mut().insert(header::DATE, value);
        }
    }
    reply
}

/// How long `--metrics-fault slow` holds GET /metrics back.
const METRICS_SLOW: Duration = Duration::from_secs(5);

/// GET /metrics, or the fault `--metrics-fault` asks for.
async fn scrape(state: &AppState) -> Reply {
    let text = || state.exposition.render(&state.stats);
    match state.metrics_fault {
        MetricsFault::None => prometheus(SimBody::full(text())),
        MetricsFault::Slow => {
            tokio::time::sleep(METRICS_SLOW).await;
            prometheus(SimBody::full(text()))
        }
        MetricsFault::Huge => prometheus(SimBody::generated(metrics::huge(text()))),
        MetricsFault::Garbage => {
            let mut reply = Response::new(SimBody::full(metrics::GARBAGE_PAGE));
            reply
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
            reply
        }
    }
}

/// GET /dcgm/metrics, from the engine's last published state.
fn dcgm(state: &AppState, method: &Method) -> Reply {
    let Some(gpus) = &state.gpus else {
        return error(state.flavor, StatusCode::NOT_FOUND, "no route for /dcgm/metrics");
    };
    if method != Method::GET {
        return error(state.flavor, StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    }
    let g = state.stats.telemetry.gauges();
    let e = &state.exposition;
    prometheus(SimBody::full(gpus.render(e.busy(g), e.kv_usage(g))))
}

/// `POST /tokenize` in the flavor's shape: vLLM's `{"count", "max_model_len", "tokens"}` or
/// llama-server's `{"tokens"}`. Not a generation: no fault, no counters. Like vLLM, the OpenAI
/// flavor asks for no key here (its key guards /v1); llama-server's does.
async fn tokenize(state: &AppState, req: Request<Incoming>) -> Result<Reply, ApiError> {
    if state.flavor == Flavor::LlamaServer {
        check_auth(state, &req)?;
    }
    let body = read_body(req).await?;
    let parsed =
        request::parse_tokenize(state.flavor, &body).map_err(|msg| ApiError::new(StatusCode::BAD_REQUEST, msg))?;
    if let Some(model) = parsed.model.as_deref().filter(|&model| model != state.model) {
        let msg = format!("The model `{model}` does not exist.");
        return Err(ApiError::new(StatusCode::NOT_FOUND, msg));
    }
    let ids = parsed.tokens.ids();
    let body = match state.flavor {
        Flavor::Openai => serde_json::json!({
            "count": ids.len(),
            "max_model_len": state.max_model_len,
            "tokens": ids,
        }),
        Flavor::LlamaServer => serde_json::json!({ "tokens": ids }),
    };
    Ok(json(StatusCode::OK, body.to_string()))
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
    finish: Finish,
    /// Prompt tokens actually evaluated (fewer when a cached prefix was reused).
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
    let (output_tokens, finish) = state.output_length(parsed);
    let endless = parsed.stream && arrival.plan.exclusive == Some(ExclusiveFault::Endless);
    let chunks = match endless {
        true => u64::MAX,
        false => state.chunks.get(endpoint).chunk_count(output_tokens),
    };
    // llm-bench's pre-flight requests neither use nor fill the cache.
    let cached = match arrival.counted {
        true => state.cached_tokens(parsed),
        false => 0,
    };
    let prompt_evaluated = parsed.prompt_tokens - cached;
    let job = Job {
        prefill_tokens: prompt_evaluated,
        prompt_tokens: parsed.prompt_tokens,
        output_tokens: if endless { u64::MAX } else { output_tokens },
        chunks,
        counted: arrival.counted,
    };
    let rx = state
        .engine
        .submit(job)
        .ok_or_else(|| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "simulator is shutting down"))?;
    if arrival.counted {
        // Like llama-server's prompt_tokens_total: tokens processed, a cached prefix not.
        state.stats.add_prompt_tokens(prompt_evaluated);
        state.stats.telemetry.count_prefix_lookup(parsed.prompt_tokens, cached);
    }
    Ok(Admitted {
        rx,
        output_tokens,
        finish,
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
        finish,
        prompt_evaluated,
    } = admitted;
    let prompt = PromptUsage {
        tokens: parsed.prompt_tokens,
        cached: state.report_cached.then(|| parsed.prompt_tokens - prompt_evaluated),
    };
    let Arrival {
        plan,
        counted,
        received_at,
    } = arrival;
    if parsed.stream {
        let spec = StreamSpec {
            chunks: Arc::clone(&state.chunks),
            endpoint,
            prompt,
            prompt_evaluated,
            output_tokens,
            finish,
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
    for i in 0..chunks.chunk_count(output_tokens) {
        if rx.recv().await.is_none() {
            return error(
                state.flavor,
                StatusCode::SERVICE_UNAVAILABLE,
                "simulator is shutting down",
            );
        }
        if i == 0 && counted {
            // The engine's first token, as vLLM times it whether or not the answer streams.
            state.stats.telemetry.ttft.observe(received_at.elapsed());
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
    let usage = (!state.no_usage).then_some(prompt);
    json(StatusCode::OK, chunks.full_response(output_tokens, finish, usage))
}

/// The answer of the error fault: the flavor's JSON error or a proxy's HTML page, with
/// Retry-After on the statuses that carry it.
fn injected_error(state: &AppState, status: StatusCode) -> Reply {
    let injected = &state.injected_errors;
    let mut reply = match injected.body {
        ErrorBody::Json => error(
            state.flavor,
            status,
            &injected
                .message
                .clone()
                .unwrap_or_else(|| format!("simulated fault: HTTP {}", status.as_u16())),
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

fn prometheus(body: SimBody) -> Reply {
    let mut reply = Response::new(body);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_length_rule() {
        use Finish::{Length, Stop};
        // (asked, --max-output, --eos-after unless ignored, min_tokens) → (tokens, finish)
        type Case = (u64, Option<u64>, Option<u64>, u64, (u64, Finish));
        let cases: &[Case] = &[
            (10, None, None, 0, (10, Length)),
            (10, None, Some(5), 0, (5, Stop)),
            (10, None, Some(5), 8, (8, Stop)),
            (10, None, Some(5), 10, (10, Length)), // a tie: the limit wins
            (10, None, Some(10), 0, (10, Length)),
            (4, None, Some(5), 0, (4, Length)),
            (50, Some(20), None, 0, (20, Length)),
            (50, Some(20), Some(5), 0, (5, Stop)),
            (50, Some(20), Some(5), 30, (20, Length)),
            (7, Some(20), None, 0, (7, Length)),
        ];
        for &(asked, max_output, eos, min_tokens, expected) in cases {
            assert_eq!(
                output_length(asked, max_output, eos, min_tokens),
                expected,
                "{asked} {max_output:?} {eos:?} {min_tokens}"
            );
        }
    }

    #[test]
    fn cached_tokens_rule() {
        let reuse = |blocks, whole| Reuse { blocks, whole };
        // (flavor, prompt tokens, reuse) → cached tokens
        let cases: &[(Flavor, u64, Reuse, u64)] = &[
            (Flavor::Openai, 67, reuse(0, false), 0),
            (Flavor::Openai, 67, reuse(4, false), 64),
            (Flavor::Openai, 64, reuse(4, false), 48), // the last token is computed
            (Flavor::Openai, 65, reuse(4, false), 64),
            (Flavor::Openai, 10, reuse(0, true), 0), // vLLM knows only blocks
            (Flavor::Openai, 0, reuse(0, false), 0),
            (Flavor::LlamaServer, 67, reuse(4, false), 64),
            (Flavor::LlamaServer, 67, reuse(4, true), 66),
            (Flavor::LlamaServer, 64, reuse(4, false), 63),
            (Flavor::LlamaServer, 10, reuse(0, true), 9),
            (Flavor::LlamaServer, 1, reuse(0, true), 0),
        ];
        for &(flavor, n, found, expected) in cases {
            assert_eq!(cached_of(flavor, n, found), expected, "{flavor:?} {n} {found:?}");
        }
    }
}
