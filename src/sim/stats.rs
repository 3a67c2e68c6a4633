//! Counters and the simulator's own timing record ("truth").
//!
//! The benchmark measures latency from the client side; the simulator records
//! what it actually handed to hyper so the two can be compared. Counters are
//! plain atomics. The truth histograms sit behind one mutex, but each stream
//! records into it only once, when it ends, so the lock stays cold even with
//! thousands of concurrent streams.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};

use hdrhistogram::Histogram;

use super::metrics::Telemetry;
use serde::{Deserialize, Serialize};

/// A snapshot of the simulator's counters (also served as GET /sim/stats).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct SimStats {
    /// Generation requests whose response has not finished.
    pub in_flight: u64,
    /// Highest `in_flight` seen since start (or the last reset).
    pub max_in_flight: u64,
    /// Generation requests received, including rejected and failed ones.
    pub requests_total: u64,
    /// Generation requests answered in full (stream reached `[DONE]`).
    pub requests_completed: u64,
    /// Prompt tokens of the requests that entered the engine.
    pub prompt_tokens_total: u64,
    /// Output tokens actually handed to the connection.
    pub output_tokens_total: u64,
    /// Faults actually injected.
    pub faults: FaultCounts,
    /// The simulator's own record of streamed timing.
    pub truth: Truth,
    /// When generation requests arrived: their rate and how regular they were.
    #[serde(default)]
    pub arrivals: Arrivals,
}

/// Inter-arrival times of the generation requests (llm-bench's pre-flight requests aside),
/// over the last [`ARRIVALS_KEPT`] arrivals, in arrival order of their kernel stamps.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct Arrivals {
    /// Arrivals the figures cover.
    pub count: u64,
    /// Mean gap between successive arrivals, ms.
    pub mean_gap_ms: f64,
    /// Coefficient of variation of the gaps (std / mean): ≈ 1 for Poisson, 1/√K for gamma
    /// with shape K, ≈ 0 for constant spacing.
    pub cv: f64,
    /// (count − 1) / (last − first arrival).
    pub rate_rps: f64,
}

/// How many arrival times are kept for [`Arrivals`] (16 bytes each).
pub const ARRIVALS_KEPT: usize = 100_000;

/// Counts of faults actually injected (a planned fault on a request that
/// went away first is not counted).
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
#[serde(default)]
pub struct FaultCounts {
    /// Error answers, all statuses together.
    pub error_status: u64,
    /// Error answers by status ("429" → count).
    pub error_status_by_code: BTreeMap<String, u64>,
    pub cut_stream: u64,
    pub malformed_chunk: u64,
    pub stall: u64,
    pub rejected_image: u64,
    /// Connections reset (RST) after reading the request, before any response.
    pub reset_before_response: u64,
    /// Requests read and never answered.
    pub no_answer: u64,
    /// Connections reset (RST) after half of the tokens.
    pub reset_mid_stream: u64,
    /// Streams ended cleanly after half of the tokens, without finish_reason or `[DONE]`.
    pub no_done: u64,
    pub invalid_utf8: u64,
    /// `error` objects sent inside a stream.
    pub error_event: u64,
    /// Events of `--fault-huge-event-kib`.
    pub huge_event: u64,
    /// Streams that went past their last token without finishing.
    pub endless: u64,
    /// Kept-alive connections closed on a request, without an answer (`--close-after-responses`).
    pub keepalive_close: u64,
}

/// Server-side timing of streamed requests, in milliseconds.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Truth {
    /// Request received → first content chunk handed to hyper.
    pub ttft_ms: Dist,
    /// Gaps between successive content chunks handed to hyper.
    pub itl_ms: Dist,
}

/// Summary of one distribution.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct Dist {
    pub count: u64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

/// Which fault counter to bump. Error answers are counted with [`Stats::count_error_status`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum Fault {
    CutStream,
    MalformedChunk,
    Stall,
    RejectedImage,
    ResetBeforeResponse,
    NoAnswer,
    ResetMidStream,
    NoDone,
    InvalidUtf8,
    ErrorEvent,
    HugeEvent,
    Endless,
    KeepaliveClose,
}

const FAULT_KINDS: usize = Fault::KeepaliveClose as usize + 1;

/// Error statuses are 400..=599: one counter each.
const STATUS_BASE: u16 = 400;
const STATUS_COUNT: usize = 200;

/// Highest value the truth histograms keep exactly (one hour in µs); larger
/// values saturate, which keeps memory bounded whatever clients do.
const HIST_MAX_US: u64 = 3_600_000_000;

struct TruthHists {
    ttft_us: Histogram<u64>,
    itl_us: Histogram<u64>,
}

impl TruthHists {
    fn new() -> Self {
        let make = || Histogram::new_with_bounds(1, HIST_MAX_US, 3).expect("static bounds are valid");
        Self {
            ttft_us: make(),
            itl_us: make(),
        }
    }
}

/// Shared, lock-free-where-it-matters counters.
pub(crate) struct Stats {
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    requests_total: AtomicU64,
    requests_completed: AtomicU64,
    prompt_tokens_total: AtomicU64,
    output_tokens_total: AtomicU64,
    faults: [AtomicU64; FAULT_KINDS],
    error_statuses: [AtomicU64; STATUS_COUNT],
    truth: Mutex<TruthHists>,
    arrivals: Mutex<std::collections::VecDeque<std::time::Instant>>,
    /// What GET /metrics adds to these counters.
    pub telemetry: Telemetry,
}

impl Stats {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            in_flight: AtomicU64::new(0),
            max_in_flight: AtomicU64::new(0),
            requests_total: AtomicU64::new(0),
            requests_completed: AtomicU64::new(0),
            prompt_tokens_total: AtomicU64::new(0),
            output_tokens_total: AtomicU64::new(0),
            faults: Default::default(),
            error_statuses: std::array::from_fn(|_| AtomicU64::new(0)),
            truth: Mutex::new(TruthHists::new()),
            arrivals: Mutex::new(std::collections::VecDeque::new()),
            telemetry: Telemetry::new(),
        })
    }

    /// Counts a new generation request and returns its arrival index, which
    /// drives fault planning. Restarts at 0 after a reset so a reset followed
    /// by the same requests replays the same faults.
    pub fn next_request_index(&self) -> u64 {
        self.requests_total.fetch_add(1, Relaxed)
    }

    /// Notes when a generation request arrived (its kernel stamp).
    pub fn record_arrival(&self, at: std::time::Instant) {
        let mut arrivals = self.arrivals.lock().unwrap_or_else(|p| p.into_inner());
        if arrivals.len() >= ARRIVALS_KEPT {
            arrivals.pop_front();
        }
        arrivals.push_back(at);
    }

    fn arrival_figures(&self) -> Arrivals {
        let mut times: Vec<std::time::Instant> = self
            .arrivals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .copied()
            .collect();
        // Handlers may note arrivals slightly out of order; the stamps say the real order.
        times.sort_unstable();
        let gaps: Vec<f64> = times.windows(2).map(|w| (w[1] - w[0]).as_secs_f64() * 1e3).collect();
        if gaps.is_empty() {
            return Arrivals {
                count: times.len() as u64,
                ..Arrivals::default()
            };
        }
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
        let span_s = (times[times.len() - 1] - times[0]).as_secs_f64();
        Arrivals {
            count: times.len() as u64,
            mean_gap_ms: mean,
            cv: if mean > 0.0 { var.sqrt() / mean } else { 0.0 },
            rate_rps: if span_s > 0.0 { gaps.len() as f64 / span_s } else { 0.0 },
        }
    }

    /// Marks a generation request as in flight until the guard is dropped.
    pub fn in_flight_guard(self: &Arc<Self>) -> InFlightGuard {
        let now = self.in_flight.fetch_add(1, Relaxed) + 1;
        self.max_in_flight.fetch_max(now, Relaxed);
        InFlightGuard {
            stats: Arc::clone(self),
        }
    }

    pub fn count_fault(&self, fault: Fault) {
        self.faults[fault as usize].fetch_add(1, Relaxed);
    }

    /// Counts an injected error answer with `status` (400..=599; others are ignored).
    pub fn count_error_status(&self, status: u16) {
        if let Some(counter) = status
            .checked_sub(STATUS_BASE)
            .and_then(|i| self.error_statuses.get(usize::from(i)))
        {
            counter.fetch_add(1, Relaxed);
        }
    }

    pub fn add_prompt_tokens(&self, n: u64) {
        self.prompt_tokens_total.fetch_add(n, Relaxed);
    }

    pub fn add_output_tokens(&self, n: u64) {
        self.output_tokens_total.fetch_add(n, Relaxed);
    }

    /// Prompt and output tokens so far, without the cost of a whole snapshot.
    pub fn token_totals(&self) -> (u64, u64) {
        (
            self.prompt_tokens_total.load(Relaxed),
            self.output_tokens_total.load(Relaxed),
        )
    }

    pub fn count_completed(&self) {
        self.requests_completed.fetch_add(1, Relaxed);
    }

    /// Records one stream's timing: its TTFT (if it got a first chunk) and
    /// its inter-chunk gaps, all in microseconds.
    pub fn record_truth(&self, ttft_us: Option<u64>, gaps_us: &[u32]) {
        if ttft_us.is_none() && gaps_us.is_empty() {
            return;
        }
        let mut truth = self.lock_truth();
        if let Some(t) = ttft_us {
            truth.ttft_us.saturating_record(t.max(1));
        }
        for &gap in gaps_us {
            truth.itl_us.saturating_record(u64::from(gap).max(1));
        }
    }

    /// Zeroes every counter, the truth and GET /metrics' counters, but not `in_flight` (those
    /// requests are still open) nor the engine's gauges; `max_in_flight` restarts from it.
    pub fn reset(&self) {
        let in_flight = self.in_flight.load(Relaxed);
        self.max_in_flight.store(in_flight, Relaxed);
        for counter in [
            &self.requests_total,
            &self.requests_completed,
            &self.prompt_tokens_total,
            &self.output_tokens_total,
        ] {
            counter.store(0, Relaxed);
        }
        for counter in self.faults.iter().chain(&self.error_statuses) {
            counter.store(0, Relaxed);
        }
        let mut truth = self.lock_truth();
        truth.ttft_us.reset();
        truth.itl_us.reset();
        self.arrivals.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.telemetry.reset();
    }

    pub fn snapshot(&self) -> SimStats {
        let arrivals = self.arrival_figures();
        let truth = self.lock_truth();
        SimStats {
            in_flight: self.in_flight.load(Relaxed),
            max_in_flight: self.max_in_flight.load(Relaxed),
            requests_total: self.requests_total.load(Relaxed),
            requests_completed: self.requests_completed.load(Relaxed),
            prompt_tokens_total: self.prompt_tokens_total.load(Relaxed),
            output_tokens_total: self.output_tokens_total.load(Relaxed),
            faults: self.fault_counts(),
            truth: Truth {
                ttft_ms: dist_ms(&truth.ttft_us),
                itl_ms: dist_ms(&truth.itl_us),
            },
            arrivals,
        }
    }

    fn fault_counts(&self) -> FaultCounts {
        let fault = |f: Fault| self.faults[f as usize].load(Relaxed);
        let error_status_by_code: BTreeMap<String, u64> = (STATUS_BASE..)
            .zip(&self.error_statuses)
            .map(|(status, counter)| (status, counter.load(Relaxed)))
            .filter(|&(_, n)| n > 0)
            .map(|(status, n)| (status.to_string(), n))
            .collect();
        FaultCounts {
            error_status: error_status_by_code.values().sum(),
            error_status_by_code,
            cut_stream: fault(Fault::CutStream),
            malformed_chunk: fault(Fault::MalformedChunk),
            stall: fault(Fault::Stall),
            rejected_image: fault(Fault::RejectedImage),
            reset_before_response: fault(Fault::ResetBeforeResponse),
            no_answer: fault(Fault::NoAnswer),
            reset_mid_stream: fault(Fault::ResetMidStream),
            no_done: fault(Fault::NoDone),
            invalid_utf8: fault(Fault::InvalidUtf8),
            error_event: fault(Fault::ErrorEvent),
            huge_event: fault(Fault::HugeEvent),
            endless: fault(Fault::Endless),
            keepalive_close: fault(Fault::KeepaliveClose),
        }
    }

    /// A panic while holding the lock cannot leave the histograms logically
    /// broken (each record is a single call), so a poisoned lock is reused.
    fn lock_truth(&self) -> MutexGuard<'_, TruthHists> {
        self.truth.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn dist_ms(h: &Histogram<u64>) -> Dist {
    if h.is_empty() {
        return Dist::default();
    }
    let ms = |us: u64| us as f64 / 1000.0;
    Dist {
        count: h.len(),
        mean: h.mean() / 1000.0,
        p50: ms(h.value_at_quantile(0.50)),
        p90: ms(h.value_at_quantile(0.90)),
        p99: ms(h.value_at_quantile(0.99)),
        max: ms(h.max()),
    }
}

/// Decrements `in_flight` when dropped, so a request counts as finished
/// however its response ends (completed, failed, or client gone).
pub(crate) struct InFlightGuard {
    stats: Arc<Stats>,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.stats.in_flight.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_flight_and_reset() {
        let stats = Stats::new();
        let a = stats.in_flight_guard();
        let b = stats.in_flight_guard();
        drop(a);
        assert_eq!(stats.snapshot().in_flight, 1);
        assert_eq!(stats.snapshot().max_in_flight, 2);
        stats.count_fault(Fault::Stall);
        stats.count_error_status(429);
        stats.count_error_status(429);
        stats.count_error_status(503);
        stats.count_error_status(200);
        stats.record_truth(Some(5_000), &[20_000, 20_000, 21_000]);
        let t0 = std::time::Instant::now();
        for ms in [30, 0, 10, 20] {
            stats.record_arrival(t0 + std::time::Duration::from_millis(ms));
        }
        let a = stats.snapshot().arrivals;
        assert_eq!(a.count, 4);
        assert!((a.mean_gap_ms - 10.0).abs() < 1e-9 && a.cv.abs() < 1e-9, "{a:?}");
        assert!((a.rate_rps - 100.0).abs() < 1e-6, "{a:?}");
        let s = stats.snapshot();
        assert_eq!(s.faults.stall, 1);
        assert_eq!(s.faults.error_status, 3);
        assert_eq!(s.faults.error_status_by_code["429"], 2);
        assert_eq!(s.faults.error_status_by_code["503"], 1);
        assert_eq!(s.truth.ttft_ms.count, 1);
        assert_eq!(s.truth.itl_ms.count, 3);
        assert!((s.truth.itl_ms.p50 - 20.0).abs() < 0.05);
        stats.reset();
        let s = stats.snapshot();
        assert_eq!(s.in_flight, 1);
        assert_eq!(s.max_in_flight, 1);
        assert_eq!(s.faults, FaultCounts::default());
        assert_eq!(s.truth.itl_ms, Dist::default());
        assert_eq!(s.arrivals, Arrivals::default());
        drop(b);
        assert_eq!(stats.snapshot().in_flight, 0);
    }
}
