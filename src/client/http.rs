//! One HTTP/1.1 connection per worker, reused request after request, and the request loop that
//! stamps every event as its bytes arrive.
//!
//! There is no pool: a worker owns its connection, so N workers means N connections and N
//! requests truly in flight, whatever N is. The worker reads its connection in its own task
//! ([`super::h1`]: no dispatcher task or channel between the socket and the decoder), and every
//! event is timed by when its bytes reached the socket (see [`crate::net::arrival`]), not by
//! when the worker got to them.

use super::endpoint::Endpoint;
use super::error_body::{error_line, ERROR_BODY_LIMIT};
use super::h1::{self, ReadError, H1};
use super::record::{ErrorClass, RequestRecord};
use super::stream::StreamReader;
use crate::net::ArrivalClock;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How long to look for an answer after a request could not be fully written.
const ANSWER_AFTER_FAILED_SEND: Duration = Duration::from_millis(200);
/// Largest non-streamed (JSON) answer read.
const JSON_ANSWER_LIMIT: usize = 64 * 1024 * 1024;

/// When the last bytes read arrived, as microseconds after `start`.
fn arrived_us(clock: &ArrivalClock, start: Instant) -> u64 {
    let arrived = clock.last_read().map(Instant::from_std).unwrap_or_else(Instant::now);
    arrived.saturating_duration_since(start).as_micros() as u64
}

/// Limits that end a request. None of them should cut a healthy slow server short.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Timeouts {
    #[serde(with = "secs")]
    pub connect: Duration,
    /// No generated token this long after the send start.
    #[serde(with = "secs")]
    pub ttft: Duration,
    /// No event this long after the previous one, once tokens flow.
    #[serde(with = "secs")]
    pub idle: Duration,
    /// The whole request; `None` for no limit.
    #[serde(with = "opt_secs")]
    pub request: Option<Duration>,
}

mod secs {
    pub fn serialize<S: serde::Serializer>(d: &std::time::Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

mod opt_secs {
    pub fn serialize<S: serde::Serializer>(d: &Option<std::time::Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_f64(d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            ttft: Duration::from_secs(900),
            idle: Duration::from_secs(120),
            request: None,
        }
    }
}

/// How the answer to a request comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResponseKind {
    /// An SSE stream of generated tokens (a server that ignores `stream` and answers with one
    /// JSON document is read too).
    #[default]
    Stream,
    /// One JSON document, never streamed: an embeddings answer (`data` items and `usage`).
    Json,
}

/// One request to send, and what the client needs to judge its answer.
#[derive(Debug, Clone, Default)]
pub struct Outgoing {
    /// API path after the base URL, e.g. `/chat/completions`.
    pub path: &'static str,
    pub body: Bytes,
    /// Prompt tokens to report when the server sends no usage.
    pub estimated_prompt_tokens: u64,
    /// The request's `max_tokens`: a stream that goes far past it will not end by itself.
    pub max_tokens: u64,
    /// Keep the answer's text on the record (`answer_text`, bounded): for multi-turn sessions
    /// that send it back. Off, the client allocates nothing for the text.
    pub keep_text: bool,
    pub response: ResponseKind,
    /// Embeddings: the inputs the body carries; the answer must hold as many `data` items.
    pub inputs: u32,
}

impl Outgoing {
    /// Events a stream may carry before it counts as one that never ends: twice `max_tokens`
    /// (a server that splits a token's text over two events stays inside), plus room for the
    /// role, finish, usage and `[DONE]` events. Without this guard only `--request-timeout`
    /// (off by default) would end an endless stream, since its tokens keep the idle timer happy.
    fn event_limit(&self) -> u64 {
        self.max_tokens.saturating_mul(2).saturating_add(16)
    }

    fn overrun(&self) -> (ErrorClass, String) {
        let message = format!(
            "more than {} events for max_tokens {} and no end in sight; stopped reading",
            self.event_limit(),
            self.max_tokens
        );
        (ErrorClass::StreamOverrun, message)
    }
}

/// A worker's client: one endpoint, one connection at a time.
pub struct Client {
    endpoint: Arc<Endpoint>,
    timeouts: Timeouts,
    conn: Option<H1>,
    /// Requests sent and not yet answered with a first token (shared by the load's clients):
    /// what a scheduler sees of a server's queue.
    unserved: Option<Arc<std::sync::atomic::AtomicU64>>,
    /// The current request has left `unserved`.
    served: bool,
}

/// What a finished exchange leaves of its connection.
enum After {
    /// The response was read to its end: the connection can carry the next request.
    Reuse,
    Drop,
    /// The connection closed or was reset after the request was sent, before any response.
    NoResponse,
}

fn us_since(start: Instant) -> u64 {
    start.elapsed().as_micros() as u64
}

impl Client {
    pub fn new(endpoint: Arc<Endpoint>, timeouts: Timeouts) -> Self {
        Self {
            endpoint,
            timeouts,
            conn: None,
            unserved: None,
            served: true,
        }
    }

    /// Takes this client's requests out of `counter` (where the scheduler counts them when it
    /// hands them out) at their first token, or at their end.
    pub fn count_unserved(mut self, counter: Arc<std::sync::atomic::AtomicU64>) -> Self {
        self.unserved = Some(counter);
        self
    }

    fn mark_served(&mut self) {
        if !self.served {
            self.served = true;
            if let Some(counter) = &self.unserved {
                counter.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }

    /// Closes the connection (a request on it was abandoned mid-way).
    pub fn disconnect(&mut self) {
        self.conn = None;
        self.mark_served();
    }

    /// Makes sure a usable connection is open. Returns the failure as a class and message.
    pub async fn ensure_connected(&mut self) -> Result<u64, (ErrorClass, String)> {
        if let Some(conn) = &mut self.conn {
            // A connection the server closed while it sat idle is replaced now, not found out
            // by the request.
            if conn.reusable().await {
                return Ok(0);
            }
            self.conn = None;
        }
        let started = Instant::now();
        // The limit covers the whole opening: TCP, a proxy's tunnel and the TLS handshake.
        match tokio::time::timeout(self.timeouts.connect, self.endpoint.connector().open()).await {
            Ok(Ok((io, clock))) => {
                self.conn = Some(H1::new(io, clock));
                Ok(us_since(started))
            }
            Ok(Err(e)) => Err((e.class(), e.to_string())),
            Err(_) => Err((
                ErrorClass::TimeoutConnect,
                format!(
                    "no connection to {} within {:?}",
                    self.endpoint.base_url, self.timeouts.connect
                ),
            )),
        }
    }

    /// Sends one streaming request and measures it into `rec` (identity fields are the caller's).
    pub async fn execute(&mut self, outgoing: &Outgoing, run_start: Instant, rec: &mut RequestRecord) {
        // The scheduler counted the request in `unserved` when it handed it out; it leaves at
        // its first token, or at its end.
        self.served = self.unserved.is_none();
        self.execute_attempts(outgoing, run_start, rec).await;
        self.mark_served();
    }

    async fn execute_attempts(&mut self, outgoing: &Outgoing, run_start: Instant, rec: &mut RequestRecord) {
        // What the caller set (identity, what was asked) survives a resend; measurements do not.
        let identity = rec.clone();
        let mut resend_reason = None;
        let mut first_start = None;
        for attempt in 0..2 {
            if attempt > 0 {
                *rec = identity.clone();
                rec.resends = 1;
                rec.resend_reason = resend_reason.take();
            }
            rec.inputs = outgoing.inputs;
            let connecting = Instant::now();
            let connect_us = match self.ensure_connected().await {
                Ok(connect_us) => connect_us,
                Err((class, message)) => {
                    // Never sent: the whole attempt was connecting, none of it is send delay.
                    rec.connect_us = us_since(connecting);
                    rec.start_s = run_start.elapsed().as_secs_f64();
                    fail(rec, class, message);
                    return;
                }
            };
            rec.connect_us = connect_us;
            let start = Instant::now();
            rec.start_s = (start - run_start).as_secs_f64();
            if let Some(first) = first_start {
                rec.resend_wait_us = start.saturating_duration_since(first).as_micros() as u64;
            }
            first_start.get_or_insert(start);
            let after = self.exchange(outgoing, start, rec).await;
            if rec.end_us == 0 {
                // Failures end when they were noticed (a timeout, a broken connection).
                rec.end_us = us_since(start);
            }
            match after {
                After::Reuse => return,
                // The connection was not opened for this request (kept alive, or opened ahead in
                // step mode) and the server closed or reset it before answering: the keep-alive
                // race (llama.cpp's server ends a connection after a few requests, and a closed
                // socket answers with a reset). Nothing was answered, so the request is sent
                // once more on a new connection, timed from there, and counted as resent.
                After::NoResponse if connect_us == 0 && attempt == 0 => {
                    self.conn = None;
                    resend_reason = rec.error_message.take();
                }
                After::Drop | After::NoResponse => {
                    self.conn = None;
                    return;
                }
            }
        }
    }

    /// The request itself; says what to do with the connection afterwards. Three phases: the
    /// send and the response head, the status and content type, then the answer (one JSON
    /// document or an event stream), each under the request's deadlines.
    async fn exchange(&mut self, outgoing: &Outgoing, start: Instant, rec: &mut RequestRecord) -> After {
        let deadlines = Deadlines::new(start, self.timeouts);
        let sleep = tokio::time::sleep_until(deadlines.first.0);
        tokio::pin!(sleep);
        let conn = self.conn.as_mut().expect("connected above");
        let head = match send_and_read_head(conn, &self.endpoint, outgoing, sleep.as_mut(), &deadlines, rec).await {
            Ok(head) => head,
            Err(after) => return after,
        };
        rec.headers_us = Some(arrived_us(conn.clock(), start));
        let status = head.status;
        rec.status = Some(status.as_u16());
        // A body that ends with the connection, or a server that says it will close, ends the
        // connection too.
        let reuse = if head.close || head.body == h1::Framing::UntilClose {
            After::Drop
        } else {
            After::Reuse
        };
        let mut framing = head.body;
        if !status.is_success() {
            let body = tokio::time::timeout(
                deadlines.timeouts.idle,
                conn.read_to_end(&mut framing, ERROR_BODY_LIMIT),
            );
            let body = match body.await {
                Ok(Ok(bytes)) => bytes,
                _ => Default::default(),
            };
            fail(
                rec,
                ErrorClass::Http(status.as_u16()),
                error_line(status, &head.headers, &body),
            );
            return After::Drop;
        }
        let content_type = head
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let answer = match AnswerKind::of(outgoing.response, &content_type) {
            Ok(answer) => answer,
            Err(message) => {
                fail(rec, ErrorClass::MalformedStream, message);
                return After::Drop;
            }
        };
        let mut whole = Whole {
            conn,
            framing: &mut framing,
            deadlines: &deadlines,
            rec,
        };
        match answer {
            AnswerKind::Embeddings => match whole.read(sleep.as_mut(), "no complete answer within").await {
                Some((answer, t_us)) => {
                    read_embeddings_answer(&answer, t_us, outgoing, whole.rec);
                    reuse
                }
                None => After::Drop,
            },
            AnswerKind::Json => match whole.read(sleep.as_mut(), "no first token within").await {
                Some((answer, t_us)) => {
                    read_json_answer(&answer, t_us, outgoing, whole.rec);
                    reuse
                }
                None => After::Drop,
            },
            AnswerKind::Stream => {
                let mut served = Served {
                    served: &mut self.served,
                    unserved: self.unserved.as_deref(),
                };
                let clean = read_stream(
                    conn,
                    &mut framing,
                    outgoing,
                    sleep.as_mut(),
                    &deadlines,
                    rec,
                    &mut served,
                )
                .await;
                if clean {
                    reuse
                } else {
                    After::Drop
                }
            }
        }
    }
}

/// The deadlines of one request, from its send start.
struct Deadlines {
    start: Instant,
    timeouts: Timeouts,
    ttft: Instant,
    request: Option<Instant>,
    /// The one that applies until the first token, with the class it fails with.
    first: (Instant, ErrorClass),
}

impl Deadlines {
    fn new(start: Instant, timeouts: Timeouts) -> Self {
        let request = timeouts.request.map(|d| start + d);
        let ttft = start + timeouts.ttft;
        Self {
            start,
            timeouts,
            ttft,
            request,
            first: earliest(ttft, request),
        }
    }

    /// The first deadline ran out before the answer: the record's failure. `what` starts the
    /// TTFT message ("no first token within").
    fn first_missed(&self, rec: &mut RequestRecord, what: &str) {
        let class = self.first.1;
        let message = match class {
            ErrorClass::TimeoutTtft => format!("{what} --ttft-timeout {:?}", self.timeouts.ttft),
            _ => timeout_message(class, &self.timeouts),
        };
        fail(rec, class, message);
    }
}

/// Writes the request and reads the response head, under the first deadline. `Err` says what
/// to do with the connection when there is no head.
async fn send_and_read_head(
    conn: &mut H1,
    endpoint: &Endpoint,
    outgoing: &Outgoing,
    mut sleep: std::pin::Pin<&mut tokio::time::Sleep>,
    deadlines: &Deadlines,
    rec: &mut RequestRecord,
) -> Result<h1::Head, After> {
    let head = h1::request_head(endpoint, outgoing.path, outgoing.body.len());
    let response = tokio::select! {
        biased;
        response = async {
            if let Err(e) = conn.send(&head, &outgoing.body).await {
                // A server may answer and close before taking a large body (413 and the
                // like): its answer, if it came, says more than the failed write.
                return match tokio::time::timeout(ANSWER_AFTER_FAILED_SEND, conn.read_head()).await {
                    Ok(Ok(head)) => Ok(head),
                    _ => Err(e),
                };
            }
            conn.read_head().await
        } => response,
        () = &mut sleep => {
            deadlines.first_missed(rec, "no response within");
            return Err(After::Drop);
        }
    };
    response.map_err(|e| {
        let (class, message) = before_response(e);
        fail(rec, class, message);
        match class {
            ErrorClass::NoResponse => After::NoResponse,
            _ => After::Drop,
        }
    })
}

/// What a successful answer is, from what was asked and its content type.
enum AnswerKind {
    /// An embeddings answer (JSON was asked for).
    Embeddings,
    /// A server that ignored `stream: true` and sent one JSON document.
    Json,
    Stream,
}

impl AnswerKind {
    fn of(asked: ResponseKind, content_type: &str) -> Result<Self, String> {
        let shown = || {
            if content_type.is_empty() {
                "none".to_string()
            } else {
                content_type.escape_debug().to_string()
            }
        };
        match asked {
            ResponseKind::Json if content_type.starts_with("application/json") => Ok(Self::Embeddings),
            ResponseKind::Json => Err(format!(
                "expected a JSON answer (application/json), got content-type {}",
                shown()
            )),
            _ if content_type.starts_with("application/json") => Ok(Self::Json),
            _ if content_type.starts_with("text/event-stream") => Ok(Self::Stream),
            _ => Err(format!(
                "expected an event stream (text/event-stream), got content-type {}",
                shown()
            )),
        }
    }
}

/// A whole (non-streamed) answer being read.
struct Whole<'a> {
    conn: &'a mut H1,
    framing: &'a mut h1::Framing,
    deadlines: &'a Deadlines,
    rec: &'a mut RequestRecord,
}

impl Whole<'_> {
    /// The answer and when its last bytes arrived; `None` (the record failed) on a missed
    /// deadline or a broken body. Nothing comes before the whole answer, so the first deadline
    /// holds for all of it.
    async fn read(
        &mut self,
        mut sleep: std::pin::Pin<&mut tokio::time::Sleep>,
        ttft_what: &str,
    ) -> Option<(Bytes, u64)> {
        let answer = tokio::select! {
            biased;
            answer = self.conn.read_to_end(self.framing, JSON_ANSWER_LIMIT) => answer,
            () = &mut sleep => {
                self.deadlines.first_missed(self.rec, ttft_what);
                return None;
            }
        };
        match answer {
            Ok(answer) => Some((answer, arrived_us(self.conn.clock(), self.deadlines.start))),
            Err(e) => {
                let (class, message) = mid_stream(e);
                fail(self.rec, class, format!("response body broke: {message}"));
                None
            }
        }
    }
}

/// The request's place in the shared count of requests waiting for a first token.
struct Served<'a> {
    served: &'a mut bool,
    unserved: Option<&'a std::sync::atomic::AtomicU64>,
}

impl Served<'_> {
    fn mark(&mut self) {
        if !*self.served {
            *self.served = true;
            if let Some(counter) = self.unserved {
                counter.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }
}

/// Reads an event stream to its end, stamping each event with its bytes' arrival. True when it
/// ended cleanly (the connection may be reused).
async fn read_stream(
    conn: &mut H1,
    framing: &mut h1::Framing,
    outgoing: &Outgoing,
    mut sleep: std::pin::Pin<&mut tokio::time::Sleep>,
    deadlines: &Deadlines,
    rec: &mut RequestRecord,
    served: &mut Served<'_>,
) -> bool {
    let (start, timeouts) = (deadlines.start, &deadlines.timeouts);
    let mut reader = StreamReader::keeping_text(outgoing.keep_text);
    let event_limit = outgoing.event_limit();
    let mut failure = None;
    let mut clean_end = false;
    let mut idle_armed = false;
    loop {
        tokio::select! {
            biased;
            data = conn.next_data(framing) => match data {
                Ok(Some(data)) => {
                    // When these bytes reached the socket, whenever we got to them.
                    let t_us = arrived_us(conn.clock(), start);
                    reader.feed(&data, t_us, rec);
                    if u64::from(rec.events) > event_limit {
                        failure = Some(outgoing.overrun());
                        break;
                    }
                    if !idle_armed && rec.first_token_us.is_some() {
                        // From the first token on, the idle limit applies (once armed, later
                        // events only move the true deadline later).
                        idle_armed = true;
                        served.mark();
                        let idle_due = start + Duration::from_micros(t_us) + timeouts.idle;
                        sleep.as_mut().reset(earliest(idle_due, deadlines.request).0);
                    }
                }
                Err(e) => {
                    failure = Some(mid_stream(e));
                    break;
                }
                Ok(None) => {
                    clean_end = true;
                    // E2E ends when the last bytes arrived, like every other time here.
                    rec.end_us = arrived_us(conn.clock(), start);
                    reader.end_of_body(rec.end_us, rec);
                    break;
                }
            },
            () = &mut sleep => {
                // The timer is re-armed lazily: events only record their time, and the deadline
                // is recomputed here when the old one fires.
                let (due, class) = match rec.first_token_us {
                    None => earliest(deadlines.ttft, deadlines.request),
                    Some(_) => {
                        let last = reader.last_event_us().unwrap_or(0);
                        earliest(start + Duration::from_micros(last) + timeouts.idle, deadlines.request)
                    }
                };
                let class = if rec.first_token_us.is_some() && class == ErrorClass::TimeoutTtft {
                    ErrorClass::TimeoutIdle
                } else {
                    class
                };
                if Instant::now() >= due {
                    failure = Some((class, timeout_message(class, timeouts)));
                    break;
                }
                sleep.as_mut().reset(due);
            }
        }
    }
    let clean = clean_end && failure.is_none();
    reader.finalize(rec, failure, outgoing.estimated_prompt_tokens);
    clean
}

fn earliest(ttft_or_idle: Instant, request: Option<Instant>) -> (Instant, ErrorClass) {
    match request {
        Some(r) if r <= ttft_or_idle => (r, ErrorClass::TimeoutRequest),
        _ => (ttft_or_idle, ErrorClass::TimeoutTtft),
    }
}

fn timeout_message(class: ErrorClass, t: &Timeouts) -> String {
    match class {
        ErrorClass::TimeoutTtft => format!("no first token within --ttft-timeout {:?}", t.ttft),
        ErrorClass::TimeoutIdle => format!("no event within --idle-timeout {:?}", t.idle),
        ErrorClass::TimeoutRequest => format!(
            "request not finished within --request-timeout {:?}",
            t.request.unwrap_or_default()
        ),
        other => other.key(),
    }
}

fn fail(rec: &mut RequestRecord, class: ErrorClass, message: String) {
    rec.ok = false;
    rec.error = Some(class);
    rec.error_message = Some(message);
}

/// A request that got no response head: the connection closed or was reset after the request
/// was sent (on a reused connection, the keep-alive race), or the answer was not HTTP.
fn before_response(e: ReadError) -> (ErrorClass, String) {
    match e {
        ReadError::Closed => (ErrorClass::NoResponse, "connection closed before any response".into()),
        ReadError::Reset(e) => (
            ErrorClass::NoResponse,
            format!("connection reset before any response: {e}"),
        ),
        // Not a close or a reset (a TLS alert, a timeout from the kernel): not a keep-alive race,
        // so not resent.
        ReadError::Io(e) => (
            ErrorClass::Connect,
            format!("connection failed before any response: {e}"),
        ),
        ReadError::Invalid(why) => (
            ErrorClass::MalformedStream,
            format!("the server's answer is not valid HTTP: {why}"),
        ),
    }
}

/// The response body broke off: a reset, a close, or framing that is not HTTP.
fn mid_stream(e: ReadError) -> (ErrorClass, String) {
    match e {
        ReadError::Closed => (ErrorClass::StreamCut, "connection closed mid-stream".into()),
        ReadError::Reset(e) => (ErrorClass::StreamReset, format!("connection reset mid-stream: {e}")),
        ReadError::Io(e) => (ErrorClass::StreamCut, format!("connection broke mid-stream: {e}")),
        ReadError::Invalid(why) => (ErrorClass::MalformedStream, format!("invalid HTTP body framing: {why}")),
    }
}

/// A server that ignored `stream: true` and sent one JSON answer: its usage is still read, and
/// the first token is taken as the end of the response (it cannot be known better).
fn read_json_answer(answer: &[u8], t_us: u64, outgoing: &Outgoing, rec: &mut RequestRecord) {
    let mut data = b"data: ".to_vec();
    data.extend_from_slice(answer);
    data.extend_from_slice(b"\n\n");
    let mut reader = StreamReader::keeping_text(outgoing.keep_text);
    reader.feed(&data, t_us, rec);
    // A full answer has `message.content`, not `delta.content`: count it as one token event.
    if rec.first_token_us.is_none() {
        let value = serde_json::from_slice::<serde_json::Value>(answer).ok();
        let message = value.as_ref().map(|v| &v["choices"][0]["message"]);
        let text = message.and_then(|m| m["content"].as_str()).filter(|s| !s.is_empty());
        let reasoning = message
            .and_then(|m| m["reasoning_content"].as_str().or(m["reasoning"].as_str()))
            .is_some_and(|s| !s.is_empty());
        if text.is_some() || reasoning {
            rec.first_token_us = Some(t_us);
            rec.last_token_us = Some(t_us);
            rec.token_us.push(t_us);
        }
        if reasoning {
            rec.first_reasoning_us = Some(t_us);
        }
        if let Some(text) = text {
            rec.first_answer_us = Some(t_us);
            if outgoing.keep_text {
                super::stream::append_answer(rec, text);
            }
        }
    }
    reader.feed(b"data: [DONE]\n\n", t_us, rec);
    reader.finalize(rec, None, outgoing.estimated_prompt_tokens);
}

/// What an embeddings answer says, read without building a tree of its vectors.
#[derive(serde::Deserialize)]
struct EmbeddingsAnswer {
    #[serde(default)]
    data: Option<CountItems>,
    #[serde(default)]
    usage: Option<EmbeddingsUsage>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(serde::Deserialize)]
struct EmbeddingsUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
}

/// The number of items of a JSON array, each skipped unread.
struct CountItems(u64);

impl<'de> serde::Deserialize<'de> for CountItems {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Count;
        impl<'de> serde::de::Visitor<'de> for Count {
            type Value = CountItems;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut n = 0;
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(CountItems(n))
            }
        }
        deserializer.deserialize_seq(Count)
    }
}

/// Judges a whole embeddings answer that arrived `t_us` after the send: its `data` must hold
/// one item per input; its `usage.prompt_tokens` are the input tokens (estimated without it).
pub(crate) fn read_embeddings_answer(answer: &[u8], t_us: u64, outgoing: &Outgoing, rec: &mut RequestRecord) {
    rec.inputs = outgoing.inputs;
    rec.end_us = t_us;
    rec.output_tokens = 0;
    let parsed = match serde_json::from_slice::<EmbeddingsAnswer>(answer) {
        Ok(parsed) => parsed,
        Err(e) => {
            let shown = String::from_utf8_lossy(&answer[..answer.len().min(80)]).into_owned();
            return fail(
                rec,
                ErrorClass::MalformedStream,
                format!(
                    "the embeddings answer is not the expected JSON: {e} in `{}`",
                    shown.escape_debug()
                ),
            );
        }
    };
    match parsed.usage.and_then(|u| u.prompt_tokens) {
        Some(n) => {
            rec.prompt_tokens = n;
            rec.tokens_estimated = false;
        }
        None => {
            rec.prompt_tokens = outgoing.estimated_prompt_tokens;
            rec.tokens_estimated = true;
        }
    }
    if let Some(error) = parsed.error {
        let message: String = super::event::error_message(&error).chars().take(200).collect();
        return fail(
            rec,
            ErrorClass::ServerError,
            format!("error in the answer: {}", message.escape_debug()),
        );
    }
    let items = parsed.data.map(|d| d.0);
    match items {
        Some(n) if n == u64::from(outgoing.inputs) => {
            rec.ok = true;
            rec.error = None;
            rec.error_message = None;
        }
        Some(n) => fail(
            rec,
            ErrorClass::MalformedStream,
            format!(
                "the embeddings answer has {n} data items for {} inputs",
                outgoing.inputs
            ),
        ),
        None => fail(
            rec,
            ErrorClass::MalformedStream,
            "the embeddings answer has no `data` array".to_string(),
        ),
    }
}
