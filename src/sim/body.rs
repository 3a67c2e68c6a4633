//! Response bodies, including the token stream.
//!
//! A streamed response is a small state machine polled directly by hyper:
//! role chunk → one content chunk per engine `Tick` → tail (usage, and
//! llama-server's finish chunk and timings) → `[DONE]`.
//! Doing this in a hand-written `Body` (rather than a task per stream
//! forwarding into a channel) costs nothing per stream beyond its state,
//! lets fault injection sit exactly where bytes leave the simulator, and
//! gives the truest timestamp the simulator can take: the moment a content
//! chunk is handed to hyper.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::{Instant, Sleep};

use super::chunks::{Chunks, Endpoint, Finish, PromptUsage, DONE, MALFORMED};
use super::conn::{ConnControl, Ending};
use super::engine::Tick;
use super::faults::{ExclusiveFault, FaultPlan};
use super::llama::Timings;
use super::stats::{Fault, InFlightGuard, Stats};

/// Why a body ended early. Returning an error from `poll_frame` makes hyper
/// drop the connection without a terminating chunk, which is what a crashed
/// server looks like to a client. (Streamed cuts go through the connection
/// task instead, see `TokenStream::hang_up`.)
#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    #[error("stream cut by fault injection")]
    Cut,
    #[error("simulator shut down")]
    EngineStopped,
}

/// What `poll_frame` returns.
type FramePoll = Poll<Option<Result<Frame<Bytes>, BodyError>>>;

/// Every response the simulator sends.
pub(crate) struct SimBody {
    kind: Kind,
    /// Keeps the request counted as in flight until hyper drops the body,
    /// i.e. until the response is fully written or the connection is gone.
    _in_flight: Option<InFlightGuard>,
}

enum Kind {
    Full(Option<Bytes>),
    Stream(Box<TokenStream>),
    /// Frames made as they are sent, for an answer too large to hold at once.
    Generated(Box<dyn Iterator<Item = Bytes> + Send>),
    Abort {
        done: bool,
    },
}

impl SimBody {
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        Self {
            kind: Kind::Full(Some(bytes.into())),
            _in_flight: None,
        }
    }

    pub fn stream(stream: TokenStream) -> Self {
        Self {
            kind: Kind::Stream(Box::new(stream)),
            _in_flight: None,
        }
    }

    /// A body of the frames `frames` yields, made one at a time as hyper asks for them.
    pub fn generated(frames: impl Iterator<Item = Bytes> + Send + 'static) -> Self {
        Self {
            kind: Kind::Generated(Box::new(frames)),
            _in_flight: None,
        }
    }

    /// A body that fails at once: the connection closes mid-response.
    pub fn abort() -> Self {
        Self {
            kind: Kind::Abort { done: false },
            _in_flight: None,
        }
    }

    pub fn with_guard(mut self, guard: InFlightGuard) -> Self {
        self._in_flight = Some(guard);
        self
    }
}

impl Body for SimBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> FramePoll {
        match &mut self.get_mut().kind {
            Kind::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Kind::Stream(stream) => stream.poll_next(cx),
            Kind::Generated(frames) => Poll::Ready(frames.next().map(|b| Ok(Frame::data(b)))),
            Kind::Abort { done } => {
                if std::mem::replace(done, true) {
                    Poll::Ready(None)
                } else {
                    Poll::Ready(Some(Err(BodyError::Cut)))
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full(bytes) => bytes.is_none(),
            Kind::Stream(stream) => stream.phase == Phase::Finished,
            Kind::Generated(_) | Kind::Abort { .. } => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            // An exact size lets hyper send content-length instead of chunked.
            Kind::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            _ => SizeHint::default(),
        }
    }
}

/// Where a stream is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Role,
    Tokens,
    Tail,
    Done,
    Finished,
    /// The connection's task is closing or resetting the connection; nothing more is sent.
    HangingUp,
}

/// Everything a stream needs to know about its request.
pub(crate) struct StreamSpec {
    pub chunks: Arc<Chunks>,
    pub endpoint: Endpoint,
    /// The prompt's tokens and, when the server reports them, the cached ones.
    pub prompt: PromptUsage,
    /// Prompt tokens the server evaluated (llama.cpp's `timings.prompt_n`).
    pub prompt_evaluated: u64,
    pub output_tokens: u64,
    /// Why the generation ends after `output_tokens`.
    pub finish: Finish,
    pub include_usage: bool,
    /// vLLM's `continuous_usage_stats`: every chunk carries the usage so far.
    pub continuous_usage: bool,
    pub plan: FaultPlan,
    pub stall_for: Duration,
    /// Size of the event injected by the huge-event fault.
    pub huge_event_bytes: usize,
    /// When the request's handler started; TTFT is measured from here.
    pub received_at: Instant,
    /// The connection the stream is sent on, for the faults that close or reset it.
    pub conn: Arc<ConnControl>,
    /// Counted in the simulator's totals (llm-bench's pre-flight requests are not).
    pub counted: bool,
}

/// The streamed (SSE) response of one generation request.
pub(crate) struct TokenStream {
    spec: StreamSpec,
    rx: UnboundedReceiver<Tick>,
    stats: Arc<Stats>,
    total_chunks: u64,
    sent_chunks: u64,
    phase: Phase,
    /// A content chunk held back behind a malformed chunk or a stall.
    held: Option<Bytes>,
    /// The injected pause, while it runs.
    stall: Option<Pin<Box<Sleep>>>,
    truth: TruthRecorder,
}

impl TokenStream {
    pub fn new(spec: StreamSpec, rx: UnboundedReceiver<Tick>, stats: Arc<Stats>) -> Self {
        // An endless stream goes on past `total_chunks`, where it should have stopped.
        let total_chunks = spec.chunks.get(spec.endpoint).chunk_count(spec.output_tokens);
        let truth = TruthRecorder::new(spec.received_at, total_chunks);
        Self {
            spec,
            rx,
            stats,
            total_chunks,
            sent_chunks: 0,
            phase: Phase::Role,
            held: None,
            stall: None,
            truth,
        }
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> FramePoll {
        let chunks = Arc::clone(&self.spec.chunks);
        let chunks = chunks.get(self.spec.endpoint);
        loop {
            match self.phase {
                Phase::Role => {
                    self.phase = Phase::Tokens;
                    // Sent at once, before any token: a client that times the
                    // first byte instead of the first content measures wrong.
                    if let Some(role) = &chunks.role {
                        if self.spec.continuous_usage {
                            return data(chunks.with_usage(role, self.spec.prompt, 0));
                        }
                        return data(role.clone());
                    }
                }
                Phase::Tokens => {
                    if let Some(sleep) = self.stall.as_mut() {
                        ready!(sleep.as_mut().poll(cx));
                        self.stall = None;
                    }
                    if let Some(chunk) = self.held.take() {
                        return self.content(chunk);
                    }
                    let endless = self.exclusive() == Some(ExclusiveFault::Endless);
                    if self.sent_chunks >= self.total_chunks && !endless {
                        self.phase = Phase::Tail;
                        continue;
                    }
                    if ready!(self.rx.poll_recv(cx)).is_none() {
                        // The engine stopped before this sequence finished.
                        self.phase = Phase::Finished;
                        return Poll::Ready(Some(Err(BodyError::EngineStopped)));
                    }
                    if endless {
                        if self.sent_chunks == self.total_chunks {
                            self.stats.count_fault(Fault::Endless);
                        }
                        return self.content(chunks.unfinished());
                    }
                    let chunk = chunks.content(self.sent_chunks, self.spec.output_tokens, self.spec.finish);
                    if self.sent_chunks == self.total_chunks / 2 {
                        if let Some(early) = self.inject_faults(chunk.clone()) {
                            return early;
                        }
                        if self.held.is_some() {
                            continue; // stalled: poll the pause first
                        }
                    }
                    return self.content(chunk);
                }
                Phase::Tail => {
                    self.phase = Phase::Done;
                    let cache_n = self.spec.prompt.tokens.saturating_sub(self.spec.prompt_evaluated);
                    let timings = self
                        .truth
                        .timings(cache_n, self.spec.prompt_evaluated, self.spec.output_tokens);
                    if let Some(tail) = chunks.tail(
                        self.spec.prompt,
                        self.spec.output_tokens,
                        self.spec.finish,
                        self.spec.include_usage,
                        &timings,
                    ) {
                        return data(tail);
                    }
                }
                Phase::Done => {
                    self.phase = Phase::Finished;
                    if self.spec.counted {
                        self.stats.count_completed();
                    }
                    return data(DONE);
                }
                Phase::Finished => return Poll::Ready(None),
                // The connection task drops this body with the connection; no need to wake.
                Phase::HangingUp => return Poll::Pending,
            }
        }
    }

    fn exclusive(&self) -> Option<ExclusiveFault> {
        self.spec.plan.exclusive
    }

    /// Applies the planned faults at the middle chunk. Returns a frame to
    /// send instead of `chunk` (which is then held back), or `None` to go on.
    fn inject_faults(&mut self, chunk: Bytes) -> Option<FramePoll> {
        if let Some(fault) = self.exclusive() {
            return self.inject_exclusive(fault);
        }
        let plan = self.spec.plan;
        if plan.cut {
            self.stats.count_fault(Fault::CutStream);
            return Some(self.hang_up(Ending::Close));
        }
        if plan.stall {
            self.stats.count_fault(Fault::Stall);
            self.stall = Some(Box::pin(tokio::time::sleep(self.spec.stall_for)));
            self.held = Some(chunk.clone());
        }
        if plan.malformed {
            self.stats.count_fault(Fault::MalformedChunk);
            self.held = Some(chunk);
            return Some(data(MALFORMED));
        }
        None
    }

    /// The exclusive faults that act at the middle chunk (the others act elsewhere).
    fn inject_exclusive(&mut self, fault: ExclusiveFault) -> Option<FramePoll> {
        let chunks = Arc::clone(&self.spec.chunks);
        let chunks = chunks.get(self.spec.endpoint);
        let (index, output_tokens, finish) = (self.sent_chunks, self.spec.output_tokens, self.spec.finish);
        match fault {
            ExclusiveFault::ResetMidStream => {
                self.stats.count_fault(Fault::ResetMidStream);
                Some(self.hang_up(Ending::Reset))
            }
            ExclusiveFault::NoDone => {
                self.stats.count_fault(Fault::NoDone);
                self.phase = Phase::Finished;
                Some(Poll::Ready(None))
            }
            ExclusiveFault::InvalidUtf8 => {
                self.stats.count_fault(Fault::InvalidUtf8);
                Some(self.content(chunks.invalid_utf8(index, output_tokens, finish)))
            }
            ExclusiveFault::HugeEvent => {
                self.stats.count_fault(Fault::HugeEvent);
                Some(self.content(chunks.huge(index, output_tokens, finish, self.spec.huge_event_bytes)))
            }
            ExclusiveFault::ErrorEvent => {
                self.stats.count_fault(Fault::ErrorEvent);
                self.phase = Phase::Finished;
                Some(data(chunks.error_event()))
            }
            // Before the response, or at the end of the stream.
            ExclusiveFault::ResetBeforeResponse | ExclusiveFault::NoAnswer | ExclusiveFault::Endless => None,
        }
    }

    /// Ends the connection in the middle of the body. Failing the body instead would make hyper
    /// drop the connection at once, losing a chunk it took in this same poll but has not
    /// written yet; the connection task acts only after hyper has flushed what it holds, so
    /// the client receives exactly the chunks counted as sent.
    fn hang_up(&mut self, ending: Ending) -> FramePoll {
        self.spec.conn.end(ending);
        self.phase = Phase::HangingUp;
        Poll::Pending
    }

    /// The most tokens the stream may carry: every chunk of an endless stream is a full one.
    fn token_limit(&self) -> u64 {
        match self.exclusive() {
            Some(ExclusiveFault::Endless) => u64::MAX,
            _ => self.spec.output_tokens,
        }
    }

    /// Hands a content chunk to hyper, stamping the truth record. Its tokens are counted now,
    /// as they go out (as vLLM counts generation tokens every engine step), so that a scrape
    /// in the middle of a long stream sees the tokens sent so far.
    fn content(&mut self, chunk: Bytes) -> FramePoll {
        let chunks = self.spec.chunks.get(self.spec.endpoint);
        let limit = self.token_limit();
        let (before, after) = (
            chunks.tokens_in(self.sent_chunks, limit),
            chunks.tokens_in(self.sent_chunks + 1, limit),
        );
        let chunk = if self.spec.continuous_usage {
            chunks.with_usage(&chunk, self.spec.prompt, after)
        } else {
            chunk
        };
        if let (Some(ttft), true) = (self.truth.stamp(&self.stats), self.spec.counted) {
            self.stats.telemetry.ttft.observe(ttft);
        }
        if self.spec.counted {
            self.stats.add_output_tokens(after - before);
        }
        self.sent_chunks += 1;
        data(chunk)
    }
}

impl Drop for TokenStream {
    /// Whatever way the stream ended, its tokens were counted as each chunk was handed over.
    fn drop(&mut self) {
        self.truth.flush(&self.stats);
    }
}

fn data(bytes: Bytes) -> FramePoll {
    Poll::Ready(Some(Ok(Frame::data(bytes))))
}

/// Gaps are flushed to the shared histogram in batches of this size, which
/// bounds a very long stream's memory while keeping the lock cold.
const GAP_BATCH: usize = 1024;

/// Per-stream timing, merged into the shared histograms at the end.
struct TruthRecorder {
    received_at: Instant,
    first: Option<Instant>,
    last: Option<Instant>,
    ttft_us: Option<u64>,
    gaps_us: Vec<u32>,
}

impl TruthRecorder {
    fn new(received_at: Instant, total_chunks: u64) -> Self {
        let capacity = usize::try_from(total_chunks.saturating_sub(1)).map_or(GAP_BATCH, |n| n.min(GAP_BATCH));
        Self {
            received_at,
            first: None,
            last: None,
            ttft_us: None,
            gaps_us: Vec::with_capacity(capacity),
        }
    }

    /// Stamps a content chunk; returns the TTFT when it is the first.
    fn stamp(&mut self, stats: &Stats) -> Option<Duration> {
        let now = Instant::now();
        let mut ttft = None;
        match self.last {
            None => {
                self.first = Some(now);
                ttft = Some(now - self.received_at);
                self.ttft_us = ttft.map(micros);
            }
            Some(last) => {
                let gap = u32::try_from(micros(now - last)).unwrap_or(u32::MAX);
                self.gaps_us.push(gap);
                if self.gaps_us.len() >= GAP_BATCH {
                    self.flush(stats);
                }
            }
        }
        self.last = Some(now);
        ttft
    }

    /// The stream's timings as llama-server reports them, from the same stamps.
    fn timings(&self, cache_n: u64, prompt_n: u64, predicted_n: u64) -> Timings {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let (prompt_ms, predicted_ms) = match (self.first, self.last) {
            (Some(first), Some(last)) => (ms(first - self.received_at), ms(last - first)),
            _ => (0.0, 0.0),
        };
        Timings {
            cache_n,
            prompt_n,
            prompt_ms,
            predicted_n,
            predicted_ms,
        }
    }

    fn flush(&mut self, stats: &Stats) {
        stats.record_truth(self.ttft_us.take(), &self.gaps_us);
        self.gaps_us.clear();
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
