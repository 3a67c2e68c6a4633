//! Per-(step, test) statistics, computed from request records only.
//!
//! The accumulator holds histograms and running sums, never the records themselves, so its
//! memory does not grow with the number of requests. The same code turns a live run and a
//! `requests.jsonl` read back from disk into the same figures.
//!
//! Two ways to measure a step (docs/metrics.md, "Measurement windows"):
//! - a **window** (timed steps, stress runs and their intervals): throughput counts what
//!   *arrived* inside the window over its length, whichever request it belonged to; latencies
//!   count the requests *sent* (intended) inside it, followed to their end;
//! - a **batch** (`--requests N`, the seed's one request per connection): every measured
//!   request, over first send → last end.

use super::dist::{Dist, LatencyHistogram, Moments, Spread};
use super::lengths::{isl_warning, osl_warning, LengthCheck, LengthTally};
use super::slo::{GoodputCounter, RequestLatencies, Slo, SloMetric, Verdict};
use super::workload::{PrefixCacheStats, TurnStats, WorkloadTally};
use crate::client::{ErrorClass, Phase, RequestRecord};
use crate::load::LoadPoint;
use crate::workload::TestKind;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// How many distinct error messages a step keeps (with counts); the rest are only counted. The
/// first message of each class is kept beyond this, so a class that comes late is never left
/// without an explanation (the classes are few, so the list stays short).
const ERROR_SAMPLES: usize = 5;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorSample {
    pub class: String,
    pub message: String,
    pub count: u64,
}

/// A measured window, in seconds after the run started: [start, end).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Window {
    pub start_s: f64,
    pub end_s: f64,
}

impl Window {
    pub fn contains(&self, t_s: f64) -> bool {
        t_s >= self.start_s && t_s < self.end_s
    }

    pub fn length_s(&self) -> f64 {
        (self.end_s - self.start_s).max(0.0)
    }
}

/// Send lateness in ms: how long after its intended time each request was sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Lateness {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

/// The figures of one (step, test), as written in `summary.json` under `steps`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepStats {
    pub test: TestKind,
    /// What the step is keyed by: a concurrency or a rate.
    #[serde(default)]
    pub load: LoadPoint,
    /// The concurrency of a closed-loop step (the seed-era key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    /// With `--repeat N`: which repetition of its load point this step is (1-based).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat: Option<u32>,
    /// `window` (a timed step: see `window`) or `batch` (a number of requests, first send →
    /// last end).
    #[serde(default)]
    pub measured_over: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
    pub requests_ok: u64,
    pub requests_failed: u64,
    /// Requests sent during warm-up or ramp-up: written to requests.jsonl, left out of every
    /// latency figure here.
    pub requests_warmup: u64,
    /// Requests cut by llm-bench itself (the drain time after the step ran out, a second
    /// Ctrl-C): recorded with what arrived, counted neither as ok nor as failed.
    #[serde(default)]
    pub requests_cancelled: u64,
    /// Requests that were due but never sent (dropped at saturation, or by a stop).
    #[serde(default)]
    pub requests_unsent: u64,
    /// Requests sent a second time on a fresh connection because a kept-alive one closed (or
    /// was reset) before any response; each counts once in ok or failed, by its last attempt.
    #[serde(default)]
    pub resends: u64,
    /// Failure class → count.
    pub errors: BTreeMap<String, u64>,
    /// First distinct error messages, with how often each occurred.
    pub error_samples: Vec<ErrorSample>,
    /// The window's length, or first send → last end of a batch.
    pub duration_s: f64,
    /// Prompt tokens of the successful measured requests.
    pub prompt_tokens: u64,
    /// Output tokens of the successful measured requests.
    #[serde(default)]
    pub output_tokens: u64,
    /// Tokens received by requests that then failed.
    #[serde(default)]
    pub partial_output_tokens: u64,
    #[serde(default)]
    pub output_throughput_tps: f64,
    pub request_throughput_rps: f64,
    /// Aggregate prefill throughput.
    pub prompt_throughput_tps: f64,
    /// Per request: prompt tokens / TTFT.
    pub prefill_tps: Option<Spread>,
    /// Per request: tokens after the first chunk / (last token − first token).
    pub per_conn_tps: Option<Spread>,
    pub ttft_ms: Option<Dist>,
    /// ITL as chunk gaps: each gap between successive text chunks (vLLM's convention).
    pub itl_ms: Option<Dist>,
    /// ITL per token: each chunk gap divided by the tokens of the chunk that ended it.
    #[serde(default)]
    pub itl_per_token_ms: Option<Dist>,
    pub tpot_ms: Option<Dist>,
    pub e2e_ms: Option<Dist>,
    /// Reasoning models (some request had reasoning text): send → first event with reasoning
    /// text, and send → first event with answer text. TTFT stays the first token of any kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_reasoning_ms: Option<Dist>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_answer_ms: Option<Dist>,
    /// Reasoning tokens of the successful requests (part of `output_tokens`), and their mean
    /// per successful request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens_mean: Option<f64>,
    /// Some reasoning counts are estimates (events with reasoning text: the server gave none).
    #[serde(default, skip_serializing_if = "is_false")]
    pub reasoning_tokens_estimated: bool,
    /// Embeddings steps: inputs embedded by the successful requests (absent for generation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<u64>,
    /// Embeddings: inputs, input (prompt) tokens and requests per second, counted like the
    /// other throughputs (completions inside the window, or over the batch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs_per_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens_per_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_s: Option<f64>,
    /// Open loop: the configured rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_rps: Option<f64>,
    /// Open loop: measured requests the schedule made due, per second of the window (a Poisson
    /// schedule's own count varies around the target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_rps: Option<f64>,
    /// Open loop: measured requests actually sent, per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub achieved_rps: Option<f64>,
    /// Open loop: actual send − intended send time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_lateness_ms: Option<Lateness>,
    /// Open loop: time spent waiting for a free connection (part of the lateness).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_wait_ms: Option<Dist>,
    /// Open loop: TTFT counted from the intended send time (what a user waiting in line saw).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_from_intended_ms: Option<Dist>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e2e_from_intended_ms: Option<Dist>,
    /// Open loop: connections the step opened (one per request in flight at its busiest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections: Option<u32>,
    /// Open loop: the backlog limit was reached and the step ended early.
    #[serde(default)]
    pub saturated: bool,
    /// Open loop: most requests due and unfinished at once, and the limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_backlog: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backlog_limit: Option<u64>,
    /// A plain sentence when the load was not applied as asked (rate short, sends late).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pacing_warning: Option<String>,
    /// With `--slo`: share of measured requests that were good, and goodput.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo_attainment_pct: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goodput_rps: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goodput_tps: Option<f64>,
    /// With percentile objectives: all of them held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo_pass: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo_checks: Option<Verdict>,
    /// The original script's efficiency: output throughput / theoretical throughput × 100.
    pub efficiency_pct: Option<f64>,
    /// (throughput at the load point / its value) / (the same at the first step) × 100.
    pub scaling_efficiency_pct: Option<f64>,
    /// Most requests in flight at once, as counted by the client.
    pub max_in_flight: u64,
    /// Some token counts are estimates (the server sent no usage).
    pub tokens_estimated: bool,
    /// Output tokens / text chunks of the successful requests.
    #[serde(default)]
    pub tokens_per_chunk_mean: Option<f64>,
    /// Some request carried several tokens per chunk and the server did not say how many each
    /// chunk held: its per-token figures (speed, TPOT, ITL per token) were estimated from the
    /// chunk count.
    #[serde(default)]
    pub tokens_per_chunk_estimated: bool,
    /// Successful requests for which the server says it processed under half of the prompt
    /// (llama.cpp's `timings.prompt_n`): it reused a cached prefix, which flatters prefill.
    #[serde(default)]
    pub prompt_cache_hits: u64,
    /// The client's own health over the step: when `client_bound`, these figures describe
    /// llm-bench rather than the server.
    #[serde(default)]
    pub client_bound: bool,
    /// `llm-bench merge`: the shards whose step (or stress interval) was client-bound.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub client_bound_shards: Vec<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<crate::monitor::ClientHealth>,
    /// Machine and process figures over the step, when monitored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<crate::monitor::SystemSummary>,
    /// `--start-at`: when the step was scheduled to start (RFC 3339, ms), and how late it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_start: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_lateness_ms: Option<f64>,
    /// The server's own figures over the step, from its `/metrics` (docs/telemetry.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_metrics: Option<crate::monitor::ServerWindow>,
    /// The GPUs over the step, with energy (docs/telemetry.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<crate::monitor::GpuWindow>,
    /// Prompt tokens asked for against `usage.prompt_tokens` (token-exact prompts, traces).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isl: Option<LengthCheck>,
    /// Output tokens asked for (`max_tokens`) against `usage.completion_tokens`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub osl: Option<LengthCheck>,
    /// Mean bytes of image data (data URLs, base64) in the requests that carried images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_bytes_per_request: Option<f64>,
    /// Multi-turn sessions: TTFT and prompt length by turn.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub turns: Vec<TurnStats>,
    /// Shared-prefix groups: first-in-group against later requests, and the server's reuse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_cache: Option<PrefixCacheStats>,
    /// One line per kind whose average is more than 2% off what was asked, with the cause.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub length_warnings: Vec<String>,
    /// TTFT, ITL, TPOT and E2E at fixed percentiles, for the report's distribution charts
    /// (steps only; a stress run's intervals leave it out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cdf: Option<super::dist::Cdf>,
    /// A timed step's completions, failures and output tokens over its window (steps only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<super::timeline::Timeline>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Keys of token-generation figures, left out of an embeddings step's JSON: it has no first
/// token, no chunks and no output.
const GENERATION_KEYS: [&str; 16] = [
    "output_tokens",
    "partial_output_tokens",
    "output_throughput_tps",
    "prefill_tps",
    "per_conn_tps",
    "ttft_ms",
    "itl_ms",
    "itl_per_token_ms",
    "tpot_ms",
    "ttft_from_intended_ms",
    "efficiency_pct",
    "scaling_efficiency_pct",
    "tokens_per_chunk_mean",
    "tokens_per_chunk_estimated",
    "goodput_tps",
    "prompt_cache_hits",
];

/// Serialises steps as `summary.json` holds them: an embeddings step without the
/// token-generation keys (see [`GENERATION_KEYS`]).
pub fn serialize_steps<S: serde::Serializer>(steps: &[StepStats], serializer: S) -> Result<S::Ok, S::Error> {
    use serde::ser::{Error, SerializeSeq};
    let mut seq = serializer.serialize_seq(Some(steps.len()))?;
    for step in steps {
        if step.is_embeddings() {
            let mut value = serde_json::to_value(step).map_err(S::Error::custom)?;
            if let Some(map) = value.as_object_mut() {
                for key in GENERATION_KEYS {
                    map.remove(key);
                }
            }
            seq.serialize_element(&value)?;
        } else {
            seq.serialize_element(step)?;
        }
    }
    seq.end()
}

impl StepStats {
    /// An embeddings step: no TTFT, ITL or output tokens, only inputs and latencies.
    pub fn is_embeddings(&self) -> bool {
        self.inputs.is_some()
    }

    pub fn requests(&self) -> u64 {
        self.requests_ok + self.requests_failed
    }

    pub fn error_rate(&self) -> f64 {
        if self.requests() == 0 {
            0.0
        } else {
            self.requests_failed as f64 / self.requests() as f64
        }
    }

    pub fn is_open_loop(&self) -> bool {
        matches!(self.load, LoadPoint::Rate(_))
    }

    /// A figure by its flattened summary name (see [`HEADLINE_FIGURES`]): `<dist>_<stat>_ms`
    /// for a latency distribution (`ttft_p99_ms`, `e2e_mean_ms`), a scalar key as it is
    /// (`output_throughput_tps`), `per_conn_tps_mean`. `None` when the step has no such figure
    /// (no successful request, or a token figure of an embeddings step).
    pub fn figure(&self, name: &str) -> Option<f64> {
        let generation = !self.is_embeddings();
        let scalar = match name {
            "output_throughput_tps" => generation.then_some(self.output_throughput_tps),
            "request_throughput_rps" => Some(self.request_throughput_rps),
            "prompt_throughput_tps" => Some(self.prompt_throughput_tps),
            "per_conn_tps_mean" => self.per_conn_tps.filter(|_| generation).map(|s| s.mean),
            "slo_attainment_pct" => self.slo_attainment_pct,
            "goodput_rps" => self.goodput_rps,
            _ => return self.dist_figure(name),
        };
        scalar.filter(|v| v.is_finite())
    }

    fn dist_figure(&self, name: &str) -> Option<f64> {
        let (dist, stat) = name.strip_suffix("_ms")?.rsplit_once('_')?;
        let dist = match dist {
            "ttft" => self.ttft_ms,
            "itl" => self.itl_ms,
            "itl_per_token" => self.itl_per_token_ms,
            "tpot" => self.tpot_ms,
            "e2e" => self.e2e_ms,
            "ttft_from_intended" => self.ttft_from_intended_ms,
            "e2e_from_intended" => self.e2e_from_intended_ms,
            _ => None,
        }?;
        let value = match stat {
            "mean" => dist.mean,
            "p50" => dist.p50,
            "p90" => dist.p90,
            "p99" => dist.p99,
            "min" => dist.min,
            "max" => dist.max,
            _ => return None,
        };
        value.is_finite().then_some(value)
    }
}

/// The headline figures of a step, by their flattened summary names: what `--repeat` reports
/// with a confidence interval and what a comparison of runs looks at first.
pub const HEADLINE_FIGURES: [&str; 11] = [
    "output_throughput_tps",
    "request_throughput_rps",
    "prompt_throughput_tps",
    "ttft_p50_ms",
    "ttft_p99_ms",
    "itl_p50_ms",
    "itl_p99_ms",
    "tpot_p50_ms",
    "e2e_p50_ms",
    "e2e_p99_ms",
    "per_conn_tps_mean",
];

/// How latencies are judged against an SLO.
#[derive(Debug, Clone)]
pub struct SloJudge {
    pub slo: Arc<Slo>,
    /// Judge open-loop latencies from the actual send instead of the intended send time.
    pub from_send: bool,
}

/// What a step asked of the server, every request counted ([`StepAccumulator::served`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Served {
    pub requests: u64,
    pub prompt_tokens: u64,
    pub output_tokens: u64,
    /// Of the prompt tokens, those the server said it took from its cache.
    pub cached_prompt_tokens: u64,
}

#[derive(Debug, Clone, Default)]
pub struct StepAccumulator {
    test: TestKind,
    /// Everything the step asked of the server, warm-up and failures included.
    served: Served,
    load: LoadPoint,
    window: Option<Window>,
    /// Warm-up requests count only when sent inside the window (stress intervals); a step's
    /// warm-up comes before its window.
    warmup_inside: bool,
    slo: Option<SloJudge>,
    ok: u64,
    failed: u64,
    warmup: u64,
    cancelled: u64,
    resends: u64,
    errors: BTreeMap<String, u64>,
    samples: Vec<ErrorSample>,
    first_start_s: Option<f64>,
    last_end_s: f64,
    prompt_tokens: u64,
    output_tokens: u64,
    partial_tokens: u64,
    /// What arrived inside the window, from every request (warm-up ones included).
    window_output_tokens: f64,
    window_prompt_tokens: u64,
    window_completed: u64,
    /// Measured requests sent: inside the window, and the first and last send.
    sent_in_window: u64,
    first_send_s: Option<f64>,
    last_send_s: f64,
    tokens_estimated: bool,
    tokens_per_chunk_estimated: bool,
    /// Text chunks of successful requests, for the mean tokens per chunk.
    text_chunks: u64,
    /// Output tokens of the successful requests that had text chunks.
    chunked_tokens: u64,
    prompt_cache_hits: u64,
    isl: LengthTally,
    osl: LengthTally,
    shape: WorkloadTally,
    /// Image bytes (data URLs) of the measured requests sent, and how many carried images.
    image_bytes: u64,
    image_requests: u64,
    /// The requests asked for exact output lengths (`--ignore-eos`).
    exact_output: bool,
    /// Some record (of any phase) was an embeddings request.
    embeddings: bool,
    /// Inputs of the successful measured embeddings requests, and of those completed inside
    /// the window.
    inputs: u64,
    window_inputs: u64,
    /// Arrivals over the window, per bucket (a timed step).
    timeline: Option<super::timeline::Timeline>,
    /// Some successful request had reasoning text.
    reasoning: bool,
    reasoning_tokens: u64,
    reasoning_estimated: bool,
    ttft_reasoning: LatencyHistogram,
    ttft_answer: LatencyHistogram,
    ttft: LatencyHistogram,
    itl: LatencyHistogram,
    itl_per_token: LatencyHistogram,
    tpot: LatencyHistogram,
    e2e: LatencyHistogram,
    ttft_intended: LatencyHistogram,
    e2e_intended: LatencyHistogram,
    lateness: LatencyHistogram,
    queue: LatencyHistogram,
    send_delay: LatencyHistogram,
    per_conn: Moments,
    prefill: Moments,
    goodput: GoodputCounter,
    /// TTFT from the intended send, by the second of the intended send: whether latency grows
    /// through the step (a saturated server) without keeping every value.
    ttft_by_second: BTreeMap<i64, Moments>,
    /// Generation time per connection, for the original's "theoretical" throughput.
    generation_us_by_conn: HashMap<u32, u64>,
}

impl StepAccumulator {
    pub fn new(test: TestKind, load: LoadPoint) -> Self {
        Self {
            test,
            load,
            ..Self::default()
        }
    }

    /// Measures over a window instead of the whole batch.
    pub fn with_window(mut self, window: Option<Window>) -> Self {
        self.window = window;
        self
    }

    /// Counts warm-up requests only when sent inside the window (a stress interval).
    pub fn counting_warmup_inside(mut self) -> Self {
        self.warmup_inside = true;
        self
    }

    pub fn with_slo(mut self, slo: Option<SloJudge>) -> Self {
        self.slo = slo;
        self
    }

    /// The requests asked for exact output lengths (`--ignore-eos`): said when they fell short.
    pub fn asking_exact_output(mut self, yes: bool) -> Self {
        self.exact_output = yes;
        self
    }

    /// Sets (or narrows) the window. Arrivals already counted stay counted, so narrow it only
    /// where nothing arrived since (a step whose sending ended early: nothing is sent after).
    pub fn set_window(&mut self, window: Window) {
        self.window = Some(window);
    }

    /// Whether a record's latencies belong to this step: measured, and (for a window) sent in it.
    fn measures(&self, rec: &RequestRecord) -> bool {
        rec.phase == Phase::Measured && self.window.is_none_or(|w| w.contains(rec.intended_s()))
    }

    pub fn add(&mut self, rec: &RequestRecord) {
        self.served.requests += 1;
        self.served.prompt_tokens += rec.prompt_tokens;
        self.served.output_tokens += rec.output_tokens;
        self.served.cached_prompt_tokens += rec.cached_prompt_tokens().map_or(0, |(n, _)| n);
        self.embeddings |= rec.inputs > 0;
        if let Some(window) = self.window {
            self.count_arrivals(rec, window);
        }
        if !self.measures(rec) {
            let counted = match self.window {
                None => true,
                Some(w) if self.warmup_inside => w.contains(rec.intended_s()),
                Some(w) => rec.intended_s() < w.end_s,
            };
            if rec.phase == Phase::Warmup && counted {
                self.warmup += 1;
            }
            return;
        }
        self.first_send_s = Some(self.first_send_s.map_or(rec.start_s, |s| s.min(rec.start_s)));
        self.last_send_s = self.last_send_s.max(rec.start_s);
        if rec.image_bytes > 0 {
            self.image_bytes += rec.image_bytes;
            self.image_requests += 1;
        }
        if self.window.is_none_or(|w| w.contains(rec.start_s)) {
            self.sent_in_window += 1;
        }
        if rec.error == Some(ErrorClass::Cancelled) {
            // Cut by llm-bench (drain time, second Ctrl-C): sent, not a server failure, and
            // never good for an SLO.
            self.cancelled += 1;
            if let Some(judge) = &self.slo {
                self.goodput
                    .add(&judge.slo, false, &RequestLatencies::default(), rec.output_tokens);
            }
            return;
        }
        self.resends += u64::from(rec.resends);
        self.first_start_s = Some(self.first_start_s.map_or(rec.start_s, |s| s.min(rec.start_s)));
        self.last_end_s = self.last_end_s.max(rec.end_s());
        self.send_delay.record_us(rec.send_delay_us);
        let open = matches!(self.load, LoadPoint::Rate(_));
        if open {
            self.lateness.record_us(rec.lateness_us());
            self.queue.record_us(rec.queue_us);
        }
        if !rec.ok {
            self.add_failure(rec);
            return;
        }
        self.add_success(rec, open);
    }

    fn add_failure(&mut self, rec: &RequestRecord) {
        self.failed += 1;
        self.partial_tokens += rec.partial_tokens();
        if let Some(judge) = &self.slo {
            self.goodput
                .add(&judge.slo, false, &RequestLatencies::default(), rec.output_tokens);
        }
        let class = rec.error.map(|c| c.key()).unwrap_or_else(|| "unknown".into());
        *self.errors.entry(class.clone()).or_default() += 1;
        let message = rec.error_message.clone().unwrap_or_default();
        if let Some(sample) = self
            .samples
            .iter_mut()
            .find(|s| s.class == class && s.message == message)
        {
            sample.count += 1;
        } else if self.samples.len() < ERROR_SAMPLES || !self.samples.iter().any(|s| s.class == class) {
            self.samples.push(ErrorSample {
                class,
                message,
                count: 1,
            });
        }
    }

    fn add_success(&mut self, rec: &RequestRecord, open: bool) {
        self.ok += 1;
        self.prompt_tokens += rec.prompt_tokens;
        self.output_tokens += rec.output_tokens;
        self.tokens_estimated |= rec.tokens_estimated;
        self.inputs += u64::from(rec.inputs);
        if rec.first_reasoning_us.is_some() || rec.reasoning_tokens.is_some_and(|n| n > 0) {
            self.reasoning = true;
        }
        if let Some(t) = rec.first_reasoning_us {
            self.ttft_reasoning.record_us(t);
        }
        if let Some(t) = rec.first_answer_us {
            self.ttft_answer.record_us(t);
        }
        self.reasoning_tokens += rec.reasoning_tokens.unwrap_or(0);
        self.reasoning_estimated |= rec.reasoning_tokens_estimated;
        if rec.server_reused_prompt() {
            self.prompt_cache_hits += 1;
        }
        self.shape.add(rec);
        if !rec.tokens_estimated {
            if let Some(asked) = rec.requested_isl {
                self.isl.add(asked, rec.prompt_tokens);
            }
            if let Some(asked) = rec.requested_osl {
                self.osl.add(asked, rec.output_tokens);
                self.osl.add_finish(rec.finish_reason.as_deref());
            }
        }
        let late = rec.lateness_us();
        self.e2e.record_us(rec.end_us);
        if open {
            self.e2e_intended.record_us(rec.end_us + late);
        }
        if let Some(ttft) = rec.ttft_us() {
            self.ttft.record_us(ttft);
            if open {
                self.ttft_intended.record_us(ttft + late);
            }
            self.ttft_by_second
                .entry(rec.intended_s().floor() as i64)
                .or_default()
                .add((ttft + late) as f64 / 1000.0);
        }
        self.tokens_per_chunk_estimated |= rec.tokens_per_chunk_estimated();
        if !rec.token_us.is_empty() {
            self.text_chunks += rec.text_chunks();
            self.chunked_tokens += rec.output_tokens;
        }
        // Without per-chunk counts every chunk carries the request's average.
        let same_per_chunk = rec.chunk_tokens.is_empty().then(|| rec.tokens_in_chunk(0));
        for (i, pair) in rec.token_us.windows(2).enumerate() {
            let gap = pair[1].saturating_sub(pair[0]);
            self.itl.record_us(gap);
            // A chunk that carried no token (text whose token was counted earlier) has no
            // per-token gap.
            let tokens = same_per_chunk.unwrap_or_else(|| rec.tokens_in_chunk(i + 1));
            if tokens == 1.0 {
                self.itl_per_token.record_us(gap);
            } else if tokens > 0.0 {
                self.itl_per_token.record_us((gap as f64 / tokens).round() as u64);
            }
        }
        let tpot = rec.tpot_us();
        if let Some(tpot) = tpot {
            self.tpot.record_us(tpot.round() as u64);
        }
        if let Some(tps) = rec.generation_tps() {
            self.per_conn.add(tps);
        }
        if let Some(tps) = rec.prefill_tps() {
            self.prefill.add(tps);
        }
        if self.window.is_none() {
            if let Some(gen) = rec.generation_us() {
                *self.generation_us_by_conn.entry(rec.conn).or_default() += gen;
            }
        }
        if let Some(judge) = &self.slo {
            let from = if open && !judge.from_send { late } else { 0 };
            let latencies = RequestLatencies {
                ttft_ms: rec.ttft_us().map(|t| (t + from) as f64 / 1000.0),
                tpot_ms: tpot.map(|t| t / 1000.0),
                itl_p99_ms: own_p99_gap_ms(rec),
                e2e_ms: Some((rec.end_us + from) as f64 / 1000.0),
            };
            self.goodput.add(&judge.slo, true, &latencies, rec.output_tokens);
        }
    }

    /// What of this request arrived inside the window: its output tokens (per text chunk: exact
    /// from per-chunk usage, else evenly), its prompt (counted when prefill ended: its first token), its completion.
    fn count_arrivals(&mut self, rec: &RequestRecord, window: Window) {
        let delivered = self.count_timeline(rec, window);
        // A request cut by llm-bench at the drain time still delivered its tokens.
        if rec.error == Some(ErrorClass::Cancelled) {
            self.window_output_tokens += delivered.chunks as f64;
            return;
        }
        if !rec.ok {
            return;
        }
        self.window_output_tokens += delivered.tokens;
        let prefilled_us = rec.first_token_us.or(rec.first_event_us).unwrap_or(rec.end_us);
        if window.contains(rec.start_s + prefilled_us as f64 / 1e6) {
            self.window_prompt_tokens += rec.prompt_tokens;
        }
        if window.contains(rec.end_s()) {
            self.window_completed += 1;
            self.window_inputs += u64::from(rec.inputs);
        }
        if let Some(gen) = self.generation_in_window_us(rec) {
            *self.generation_us_by_conn.entry(rec.conn).or_default() += gen;
        }
    }

    /// The same arrivals per bucket of the window.
    /// Counts a request's arrivals inside the window into the timeline, in the one pass over its
    /// chunks that also says what it delivered there (for `count_arrivals`).
    fn count_timeline(&mut self, rec: &RequestRecord, window: Window) -> Delivered {
        let mut delivered = Delivered::default();
        let timeline = match &mut self.timeline {
            Some(t) if t.start_s == window.start_s => t,
            other => other.insert(super::timeline::Timeline::new(window)),
        };
        // A load that stopped early ends its window sooner.
        timeline.end_s = window.end_s;
        // As `count_arrivals`: tokens of every request that delivered them (one cut by
        // llm-bench at the drain time too), whatever its phase.
        if rec.ok || rec.error == Some(ErrorClass::Cancelled) {
            for (i, &t) in rec.token_us.iter().enumerate() {
                let at = rec.start_s + t as f64 / 1e6;
                if window.contains(at) {
                    let tokens = rec.tokens_in_chunk(i);
                    timeline.add_tokens(at, tokens);
                    delivered.chunks += 1;
                    delivered.tokens += tokens;
                }
            }
        }
        if window.contains(rec.end_s()) {
            match (rec.ok, rec.error) {
                (true, _) => timeline.add_completed(rec.end_s()),
                (false, Some(ErrorClass::Cancelled)) => {}
                (false, _) => timeline.add_failed(rec.end_s()),
            }
        }
        delivered
    }

    /// First to last token, clipped to the window.
    fn generation_in_window_us(&self, rec: &RequestRecord) -> Option<u64> {
        let gen = rec.generation_us()?;
        let Some(w) = self.window else {
            return Some(gen);
        };
        let first = rec.start_s + rec.first_token_us? as f64 / 1e6;
        let last = rec.start_s + rec.last_token_us? as f64 / 1e6;
        let clipped = last.min(w.end_s) - first.max(w.start_s);
        Some((clipped.max(0.0) * 1e6) as u64)
    }

    /// How late measured requests were sent (mean, p99 in ms), and the step's ITL p50 and mean
    /// E2E: what the client's health is judged against.
    pub fn client_load(&self) -> crate::monitor::HealthInputs {
        let delay = self.send_delay.dist_ms();
        crate::monitor::HealthInputs {
            send_delay_mean_ms: delay.map(|d| d.mean),
            send_delay_p99_ms: delay.map(|d| d.p99),
            itl_p50_ms: self.itl.dist_ms().map(|d| d.p50),
            e2e_mean_ms: self.e2e.dist_ms().map(|d| d.mean),
            ..Default::default()
        }
    }

    /// TTFT (from the intended send) grew through the step: the mean over its last third of
    /// seconds is more than 1.5 × that of its first third (and 10 ms more).
    pub fn ttft_rising(&self) -> bool {
        let seconds: Vec<&Moments> = self.ttft_by_second.values().collect();
        if seconds.len() < 3 {
            return false;
        }
        let third = seconds.len() / 3;
        let mean = |slice: &[&Moments]| {
            let (sum, n) = slice
                .iter()
                .filter_map(|m| m.spread())
                .fold((0.0, 0u64), |(s, n), p| (s + p.mean * p.count as f64, n + p.count));
            (n > 0).then(|| sum / n as f64)
        };
        match (mean(&seconds[..third]), mean(&seconds[seconds.len() - third..])) {
            (Some(first), Some(last)) => last > 1.5 * first && last - first > 10.0,
            _ => false,
        }
    }

    /// The step's value of an SLO metric at a percentile, in ms: open-loop TTFT and E2E from
    /// the intended send (unless judged from the send).
    fn slo_value(&self, metric: SloMetric, p: f64, from_send: bool) -> Option<f64> {
        let open = matches!(self.load, LoadPoint::Rate(_)) && !from_send;
        match metric {
            SloMetric::Ttft if open => self.ttft_intended.percentile_ms(p),
            SloMetric::Ttft => self.ttft.percentile_ms(p),
            SloMetric::E2e if open => self.e2e_intended.percentile_ms(p),
            SloMetric::E2e => self.e2e.percentile_ms(p),
            SloMetric::Tpot => self.tpot.percentile_ms(p),
            SloMetric::Itl => self.itl.percentile_ms(p),
        }
    }

    /// The figures so far. `max_in_flight` comes from the live counters (not in records).
    /// Every request of the step and its tokens, warm-up and failures included: what the server
    /// itself counted, to compare with its own counters.
    /// The TTFT, ITL, TPOT and E2E histograms, by name (`histograms.jsonl`).
    pub fn histograms(&self) -> [(&'static str, &LatencyHistogram); 4] {
        [
            ("ttft", &self.ttft),
            ("itl", &self.itl),
            ("tpot", &self.tpot),
            ("e2e", &self.e2e),
        ]
    }

    pub fn served(&self) -> Served {
        self.served
    }

    pub fn stats(&self, max_in_flight: u64) -> StepStats {
        let batch_s = self
            .first_start_s
            .map_or(0.0, |first| (self.last_end_s - first).max(0.0));
        let duration_s = self.window.map_or(batch_s, |w| w.length_s());
        let per_second = |x: f64| if duration_s > 0.0 { x / duration_s } else { 0.0 };
        let (output_tps, request_rps, prompt_tps) = match self.window {
            Some(_) => (
                per_second(self.window_output_tokens),
                per_second(self.window_completed as f64),
                per_second(self.window_prompt_tokens as f64),
            ),
            None => (
                per_second(self.output_tokens as f64),
                per_second(self.ok as f64),
                per_second(self.prompt_tokens as f64),
            ),
        };
        // The original's theoretical throughput: every token at the pace of the connection that
        // spent longest generating. Efficiency reduces to that time over the wall time.
        let longest_generation_s = self.generation_us_by_conn.values().max().map(|&us| us as f64 / 1e6);
        // A closed-loop figure: in an open loop connections come and go with the requests.
        let efficiency_pct = match longest_generation_s {
            _ if matches!(self.load, LoadPoint::Rate(_)) => None,
            Some(gen) if gen > 0.0 && duration_s > 0.0 && self.output_tokens > 0 => {
                Some((100.0 * gen / duration_s).min(100.0))
            }
            _ => None,
        };
        let open = matches!(self.load, LoadPoint::Rate(_));
        let sent = self.ok + self.failed + self.cancelled;
        let achieved_rps = open.then(|| match self.window {
            Some(_) => per_second(self.sent_in_window as f64),
            None => match self.first_send_s {
                Some(first) if sent >= 2 && self.last_send_s > first => (sent - 1) as f64 / (self.last_send_s - first),
                _ => 0.0,
            },
        });
        let mut stats = StepStats {
            test: self.test,
            load: self.load,
            concurrency: self.load.concurrency(),
            measured_over: if self.window.is_some() { "window" } else { "batch" }.into(),
            window: self.window,
            requests_ok: self.ok,
            requests_failed: self.failed,
            requests_warmup: self.warmup,
            requests_cancelled: self.cancelled,
            resends: self.resends,
            errors: self.errors.clone(),
            error_samples: self.samples.clone(),
            duration_s,
            prompt_tokens: self.prompt_tokens,
            output_tokens: self.output_tokens,
            partial_output_tokens: self.partial_tokens,
            output_throughput_tps: output_tps,
            request_throughput_rps: request_rps,
            prompt_throughput_tps: prompt_tps,
            prefill_tps: self.prefill.spread(),
            per_conn_tps: self.per_conn.spread(),
            ttft_ms: self.ttft.dist_ms(),
            itl_ms: self.itl.dist_ms(),
            itl_per_token_ms: self.itl_per_token.dist_ms(),
            tpot_ms: self.tpot.dist_ms(),
            e2e_ms: self.e2e.dist_ms(),
            target_rps: open.then(|| self.load.value()),
            achieved_rps,
            send_lateness_ms: if open { self.lateness.dist_ms() } else { None }.map(|d| Lateness {
                p50: d.p50,
                p99: d.p99,
                max: d.max,
                mean: d.mean,
            }),
            queue_wait_ms: if open { self.queue.dist_ms() } else { None },
            ttft_from_intended_ms: self.ttft_intended.dist_ms(),
            e2e_from_intended_ms: self.e2e_intended.dist_ms(),
            efficiency_pct,
            max_in_flight,
            tokens_estimated: self.tokens_estimated,
            tokens_per_chunk_mean: (self.text_chunks > 0).then(|| self.chunked_tokens as f64 / self.text_chunks as f64),
            tokens_per_chunk_estimated: self.tokens_per_chunk_estimated,
            prompt_cache_hits: self.prompt_cache_hits,
            isl: self.isl.check(),
            osl: self.osl.check(),
            turns: self.shape.turns(),
            image_bytes_per_request: (self.image_requests > 0)
                .then(|| self.image_bytes as f64 / self.image_requests as f64),
            prefix_cache: self.shape.prefix_cache(),
            cdf: super::dist::Cdf::of(&self.ttft, &self.itl, &self.tpot, &self.e2e),
            timeline: self.timeline.clone().filter(|t| !t.completed.is_empty()),
            ..StepStats::default()
        };
        stats.length_warnings = stats
            .isl
            .as_ref()
            .and_then(isl_warning)
            .into_iter()
            .chain(stats.osl.as_ref().and_then(|c| osl_warning(c, self.exact_output)))
            .collect();
        if self.reasoning {
            stats.ttft_reasoning_ms = self.ttft_reasoning.dist_ms();
            stats.ttft_answer_ms = self.ttft_answer.dist_ms();
            stats.reasoning_tokens = Some(self.reasoning_tokens);
            stats.reasoning_tokens_mean = (self.ok > 0).then(|| self.reasoning_tokens as f64 / self.ok as f64);
            stats.reasoning_tokens_estimated = self.reasoning_estimated;
        }
        if self.embeddings {
            let inputs = match self.window {
                Some(_) => self.window_inputs,
                None => self.inputs,
            };
            stats.inputs = Some(self.inputs);
            stats.inputs_per_s = Some(per_second(inputs as f64));
            stats.input_tokens_per_s = Some(prompt_tps);
            stats.requests_per_s = Some(request_rps);
            stats.efficiency_pct = None;
        }
        if let Some(judge) = &self.slo {
            stats.slo_attainment_pct = self.goodput.attainment_pct();
            stats.goodput_rps = self.goodput.goodput_rps(duration_s);
            stats.goodput_tps = self.goodput.good_output_tps(duration_s);
            if judge.slo.has_percentiles() {
                let verdict = judge
                    .slo
                    .judge_percentiles(|metric, p| self.slo_value(metric, p, judge.from_send));
                stats.slo_pass = Some(verdict.pass);
                stats.slo_checks = Some(verdict);
            }
        }
        stats
    }
}

/// A request's own p99 gap between text chunks, in ms.
fn own_p99_gap_ms(rec: &RequestRecord) -> Option<f64> {
    let mut gaps: Vec<u64> = rec.token_us.windows(2).map(|p| p[1].saturating_sub(p[0])).collect();
    if gaps.is_empty() {
        return None;
    }
    let rank = ((0.99 * gaps.len() as f64).ceil() as usize).clamp(1, gaps.len()) - 1;
    let (_, value, _) = gaps.select_nth_unstable(rank);
    Some(*value as f64 / 1000.0)
}

/// What a request delivered inside a step's window: its chunks and their tokens.
#[derive(Debug, Default, Clone, Copy)]
struct Delivered {
    chunks: u64,
    tokens: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok_record(conn: u32, start_s: f64, tokens: &[u64], prompt: u64) -> RequestRecord {
        RequestRecord {
            conn,
            start_s,
            ok: true,
            first_token_us: tokens.first().copied(),
            last_token_us: tokens.last().copied(),
            token_us: tokens.to_vec(),
            end_us: *tokens.last().unwrap() + 1_000,
            output_tokens: tokens.len() as u64,
            prompt_tokens: prompt,
            ..RequestRecord::default()
        }
    }

    /// Ten tokens 100 ms apart, the first 100 ms after the send.
    fn ten_tokens() -> Vec<u64> {
        (1..=10).map(|i| i * 100_000).collect()
    }

    #[test]
    fn a_window_counts_arrivals_for_throughput_and_sends_for_latency() {
        let window = Window {
            start_s: 10.0,
            end_s: 12.0,
        };
        let mut acc = StepAccumulator::new(TestKind::Output, LoadPoint::Concurrency(3)).with_window(Some(window));
        // Sent in warm-up at 9.5 s: tokens at 9.6 … 10.5, six of them inside the window.
        let mut early = ok_record(0, 9.5, &ten_tokens(), 50);
        early.phase = Phase::Warmup;
        // Sent inside at 10.5 s: all ten tokens inside (10.6 … 11.5).
        let inside = ok_record(1, 10.5, &ten_tokens(), 50);
        // Sent inside at 11.5 s: tokens at 11.6 … 12.5, four inside; it ends after the window.
        let late = ok_record(2, 11.5, &ten_tokens(), 50);
        for rec in [&early, &inside, &late] {
            acc.add(rec);
        }
        let s = acc.stats(3);
        assert_eq!(s.measured_over, "window");
        assert_eq!(s.duration_s, 2.0);
        assert!(
            (s.output_throughput_tps - (6.0 + 10.0 + 4.0) / 2.0).abs() < 1e-9,
            "{}",
            s.output_throughput_tps
        );
        // Completed inside: the early one (10.501 s) and the one sent at 10.5 (11.501 s).
        assert!((s.request_throughput_rps - 1.0).abs() < 1e-9);
        // Prefill ended (first token) inside for the two sent inside.
        assert!((s.prompt_throughput_tps - 50.0).abs() < 1e-9);
        // Latencies: the two sent inside, followed to their end; the warm-up one is counted apart.
        assert_eq!((s.requests_ok, s.requests_warmup), (2, 1));
        assert_eq!(s.e2e_ms.unwrap().count, 2);
        assert_eq!(s.output_tokens, 20);
    }

    #[test]
    fn goodput_from_known_records() {
        let slo = Slo::parse("ttft=150ms,e2e=1500ms,ttft_p99=1s").unwrap();
        let judge = SloJudge {
            slo: Arc::new(slo),
            from_send: false,
        };
        let mut acc = StepAccumulator::new(TestKind::Output, LoadPoint::Rate(2.0)).with_slo(Some(judge));
        // Good: TTFT 100 ms, E2E 1.001 s, on time.
        let mut good = ok_record(0, 1.0, &ten_tokens(), 10);
        good.intended_s = Some(1.0);
        // Bad from the intended send: on time for the server, but sent 100 ms late.
        let mut late = ok_record(0, 2.1, &ten_tokens(), 10);
        late.intended_s = Some(2.0);
        // Bad: failed.
        let failed = RequestRecord {
            start_s: 3.0,
            intended_s: Some(3.0),
            error: Some(ErrorClass::Http(500)),
            ..RequestRecord::default()
        };
        for rec in [&good, &good, &good, &late, &failed] {
            acc.add(rec);
        }
        let s = acc.stats(1);
        assert_eq!(s.slo_attainment_pct, Some(60.0));
        let duration = s.duration_s;
        assert!((s.goodput_rps.unwrap() - 3.0 / duration).abs() < 1e-9);
        assert!((s.goodput_tps.unwrap() - 30.0 / duration).abs() < 1e-9);
        assert_eq!(s.slo_pass, Some(true), "ttft p99 from the intended send is 200 ms");
        let ttft = s.ttft_from_intended_ms.unwrap();
        assert!((ttft.max - 200.0).abs() < 0.5, "{ttft:?}");
    }

    #[test]
    fn figures_from_known_records() {
        let mut acc = StepAccumulator::new(TestKind::Output, LoadPoint::Concurrency(2));
        // Two connections, TTFT 100 ms, 10 tokens 10 ms apart, ending 1 ms after the last token.
        let tokens: Vec<u64> = (0..10).map(|i| 100_000 + i * 10_000).collect();
        acc.add(&ok_record(0, 1.0, &tokens, 100));
        acc.add(&ok_record(1, 1.0, &tokens, 100));
        let s = acc.stats(2);
        assert_eq!((s.requests_ok, s.requests_failed), (2, 0));
        assert!((s.duration_s - 0.191).abs() < 1e-9, "{}", s.duration_s);
        assert!((s.output_throughput_tps - 20.0 / 0.191).abs() < 1e-6);
        let ttft = s.ttft_ms.unwrap();
        assert!((ttft.mean - 100.0).abs() < 0.1);
        let itl = s.itl_ms.unwrap();
        assert_eq!(itl.count, 18);
        assert!((itl.p50 - 10.0).abs() < 0.02);
        let per_conn = s.per_conn_tps.unwrap();
        assert!((per_conn.mean - 100.0).abs() < 1e-6, "9 tokens in 90 ms");
        let tpot = s.tpot_ms.unwrap();
        assert!((tpot.mean - 91.0 / 9.0).abs() < 0.05);
        let prefill = s.prefill_tps.unwrap();
        assert!((prefill.mean - 1000.0).abs() < 1e-6, "100 tokens in 100 ms");
        // Longest generation 90 ms over 191 ms of wall time.
        assert!((s.efficiency_pct.unwrap() - 100.0 * 0.090 / 0.191).abs() < 1e-6);
    }

    #[test]
    fn one_token_per_chunk_gives_the_same_itl_both_ways() {
        let mut acc = StepAccumulator::new(TestKind::Output, LoadPoint::Concurrency(1));
        let tokens: Vec<u64> = (0..10).map(|i| 100_000 + i * 10_000).collect();
        acc.add(&ok_record(0, 1.0, &tokens, 100));
        let s = acc.stats(1);
        assert_eq!(s.itl_ms, s.itl_per_token_ms);
        assert_eq!(s.tokens_per_chunk_mean, Some(1.0));
        assert!(!s.tokens_per_chunk_estimated);
    }

    #[test]
    fn several_tokens_per_chunk() {
        // 10 chunks 10 ms apart carrying 4 tokens each: 400 tok/s, 2.5 ms per token.
        let tokens: Vec<u64> = (0..10).map(|i| 100_000 + i * 10_000).collect();
        let four_each = RequestRecord {
            output_tokens: 40,
            ..ok_record(0, 1.0, &tokens, 100)
        };
        for exact in [false, true] {
            let mut rec = four_each.clone();
            if exact {
                rec.first_chunk_tokens = Some(4);
                rec.chunk_tokens = vec![4; 10];
            }
            let mut acc = StepAccumulator::new(TestKind::Output, LoadPoint::Concurrency(1));
            acc.add(&rec);
            let s = acc.stats(1);
            let itl = s.itl_ms.unwrap();
            let per_token = s.itl_per_token_ms.unwrap();
            assert!(
                (itl.p50 - 10.0).abs() < 0.02 && (per_token.p50 - 2.5).abs() < 0.01,
                "{itl:?} {per_token:?}"
            );
            assert_eq!(per_token.count, 9);
            assert!((s.per_conn_tps.unwrap().mean - 400.0).abs() < 1e-6);
            assert!((s.tpot_ms.unwrap().mean - 91.0 / 36.0).abs() < 0.01);
            assert_eq!(s.tokens_per_chunk_mean, Some(4.0));
            assert_eq!(s.tokens_per_chunk_estimated, !exact);
        }
        // 10 tokens in 4, 4, 2: the last gap covers 2 tokens, when the server said so.
        let mut rec = RequestRecord {
            output_tokens: 10,
            ..ok_record(0, 1.0, &tokens[..3], 100)
        };
        rec.first_chunk_tokens = Some(4);
        rec.chunk_tokens = vec![4, 4, 2];
        let mut acc = StepAccumulator::new(TestKind::Output, LoadPoint::Concurrency(1));
        acc.add(&rec);
        let per_token = acc.stats(1).itl_per_token_ms.unwrap();
        assert!(
            (per_token.min - 2.5).abs() < 0.01 && (per_token.max - 5.0).abs() < 0.01,
            "{per_token:?}"
        );
    }

    #[test]
    fn failures_are_classified_deduplicated_and_keep_partial_tokens() {
        let mut acc = StepAccumulator::new(TestKind::Output, LoadPoint::Concurrency(1));
        for i in 0..10 {
            acc.add(&RequestRecord {
                start_s: i as f64,
                end_us: 10,
                error: Some(if i < 7 {
                    ErrorClass::Http(500)
                } else {
                    ErrorClass::StreamCut
                }),
                error_message: Some(if i < 7 { "boom".into() } else { format!("cut {i}") }),
                output_tokens: if i < 7 { 0 } else { 3 },
                resends: u32::from(i == 0),
                ..RequestRecord::default()
            });
        }
        let s = acc.stats(1);
        assert_eq!(s.requests_failed, 10);
        assert_eq!(s.errors["http_500"], 7);
        assert_eq!(s.errors["stream_cut"], 3);
        assert_eq!(s.partial_output_tokens, 9);
        assert_eq!(s.resends, 1);
        assert_eq!(s.output_tokens, 0);
        assert_eq!(s.error_samples[0].count, 7);
        assert_eq!(s.error_samples.len(), 4);
        // Past the limit, only a class not seen yet still gets its first message kept.
        for (i, class) in [ErrorClass::StreamCut, ErrorClass::StreamCut, ErrorClass::NoResponse]
            .into_iter()
            .enumerate()
        {
            acc.add(&RequestRecord {
                error: Some(class),
                error_message: Some(format!("late {i}")),
                ..RequestRecord::default()
            });
        }
        let s = acc.stats(1);
        let kept: Vec<&str> = s.error_samples.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(kept, ["boom", "cut 7", "cut 8", "cut 9", "late 0", "late 2"]);
        assert!(s.ttft_ms.is_none() && s.per_conn_tps.is_none() && s.efficiency_pct.is_none());
        assert_eq!(s.output_throughput_tps, 0.0);
    }

    #[test]
    fn warmup_is_left_out() {
        let mut acc = StepAccumulator::new(TestKind::Output, LoadPoint::Concurrency(1));
        let mut rec = ok_record(0, 0.0, &[10, 20], 5);
        rec.phase = Phase::Warmup;
        acc.add(&rec);
        let s = acc.stats(1);
        assert_eq!((s.requests_warmup, s.requests_ok, s.output_tokens), (1, 0, 0));
    }

    #[test]
    fn reasoning_figures() {
        let mut acc = StepAccumulator::new(TestKind::Output, LoadPoint::Concurrency(2));
        for (reasoning_at, tokens) in [(100_000, 8), (300_000, 4)] {
            let mut rec = ok_record(0, 1.0, &ten_tokens(), 10);
            rec.first_reasoning_us = Some(reasoning_at);
            rec.first_answer_us = Some(reasoning_at + 500_000);
            rec.reasoning_tokens = Some(tokens);
            acc.add(&rec);
        }
        let s = acc.stats(2);
        let (r, a) = (s.ttft_reasoning_ms.unwrap(), s.ttft_answer_ms.unwrap());
        assert_eq!((r.count, a.count), (2, 2));
        assert!(
            (r.max - 300.0).abs() < 0.5 && (a.min - 600.0).abs() < 0.5,
            "{r:?} {a:?}"
        );
        assert_eq!((s.reasoning_tokens, s.reasoning_tokens_mean), (Some(12), Some(6.0)));
        assert!(!s.reasoning_tokens_estimated);
        // Without reasoning, none of it is said.
        let mut acc = StepAccumulator::new(TestKind::Output, LoadPoint::Concurrency(1));
        let mut rec = ok_record(0, 1.0, &ten_tokens(), 10);
        rec.first_answer_us = rec.first_token_us;
        acc.add(&rec);
        let s = acc.stats(1);
        assert!(s.ttft_reasoning_ms.is_none() && s.ttft_answer_ms.is_none() && s.reasoning_tokens.is_none());
        let json = serde_json::to_string(&s).unwrap();
        assert!(!json.contains("reasoning") && !json.contains("ttft_answer"));
    }

    fn embedding(start_s: f64, end_us: u64, inputs: u32, prompt: u64) -> RequestRecord {
        RequestRecord {
            start_s,
            ok: true,
            end_us,
            inputs,
            prompt_tokens: prompt,
            ..RequestRecord::default()
        }
    }

    #[test]
    fn embeddings_figures_and_json() {
        // Batch: 4 requests of 8 inputs and 100 tokens, 0.5 s each, back to back over 2 s.
        let mut acc = StepAccumulator::new(TestKind::Input, LoadPoint::Concurrency(1));
        for i in 0..4 {
            acc.add(&embedding(i as f64 * 0.5, 500_000, 8, 100));
        }
        let s = acc.stats(1);
        assert!(s.is_embeddings());
        assert_eq!(s.inputs, Some(32));
        assert!((s.inputs_per_s.unwrap() - 16.0).abs() < 1e-9);
        assert!((s.input_tokens_per_s.unwrap() - 200.0).abs() < 1e-9);
        assert!((s.requests_per_s.unwrap() - 2.0).abs() < 1e-9);
        assert_eq!(s.e2e_ms.unwrap().count, 4);
        assert!(s.ttft_ms.is_none() && s.itl_ms.is_none() && s.efficiency_pct.is_none());
        #[derive(Serialize)]
        struct Steps {
            #[serde(serialize_with = "serialize_steps")]
            steps: Vec<StepStats>,
        }
        let json = serde_json::to_value(Steps { steps: vec![s] }).unwrap();
        let step = &json["steps"][0];
        for key in GENERATION_KEYS {
            assert!(step.get(key).is_none(), "{key}");
        }
        assert_eq!(step["inputs"], 32);
        assert!(step.get("e2e_ms").is_some() && step.get("requests_per_s").is_some());
        let back: StepStats = serde_json::from_value(step.clone()).unwrap();
        assert_eq!(back.inputs, Some(32));
        // All failed, or a zero-length step: figures are zero, never a division by zero.
        let mut acc = StepAccumulator::new(TestKind::Input, LoadPoint::Concurrency(1));
        acc.add(&RequestRecord {
            inputs: 8,
            error: Some(ErrorClass::MalformedStream),
            ..RequestRecord::default()
        });
        let s = acc.stats(1);
        assert_eq!(
            (s.inputs, s.inputs_per_s, s.requests_per_s),
            (Some(0), Some(0.0), Some(0.0))
        );
        assert!(s.inputs_per_s.unwrap().is_finite());
    }
}
