//! The server's own account: its Prometheus `/metrics`, scraped on the run clock and mapped from
//! each engine's families to common names (docs/telemetry.md, "Server metrics").

pub mod engines;
pub mod scrape;

use serde::{Deserialize, Serialize};

/// A Prometheus histogram as scraped: cumulative bucket counts by upper bound (seconds).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// `[le, cumulative count]` for every finite bound, ascending. The `+Inf` bucket is `count`.
    pub buckets: Vec<[f64; 2]>,
    pub sum: f64,
    pub count: f64,
}

/// One scrape, mapped to common names. `None`: the server does not report that figure.
/// Counters are the server's running totals (deltas are taken over a window later).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerReading {
    /// Which engine's families were recognised: "vllm", "sglang", "llamacpp", "tgi"; `None`
    /// when none were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_running: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_waiting: Option<f64>,
    /// Percent (0–100), whatever unit the engine reports in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_cache_usage_pct: Option<f64>,
    /// Counter: prompt tokens (or blocks) looked up in the prefix cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_cache_queries: Option<f64>,
    /// Counter: of those, found in the cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_cache_hits: Option<f64>,
    /// Gauge, percent: an engine that reports a hit rate rather than counters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_cache_hit_pct: Option<f64>,
    /// Counter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preemptions: Option<f64>,
    /// Counter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<f64>,
    /// Counter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation_tokens: Option<f64>,
    /// Gauge, tokens/s, as the engine computes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation_throughput_tps: Option<f64>,
    /// Gauge: sequences in the current batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<f64>,
    /// The engine's own time to first token (seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft: Option<Histogram>,
    /// The engine's own queue time (seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_time: Option<Histogram>,
}
