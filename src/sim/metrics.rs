//! GET /metrics: the engine's figures in the Prometheus text layout of the flavor's server —
//! vLLM v1's families for the OpenAI flavor, llama.cpp's for llama-server (docs/simulator.md,
//! "Server metrics").
//!
//! Everything here is atomics: the engine publishes its gauges once per step, a stream adds
//! to a histogram once (its first chunk), and a scrape only loads. Counters and histograms
//! leave llm-bench's pre-flight requests out, like /sim/stats; the gauges are the engine's
//! state, pre-flight sequences included.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use bytes::Bytes;

use super::config::{Flavor, SimConfig};
use super::stats::Stats;

/// vLLM's `vllm:time_to_first_token_seconds` bounds (vllm/v1/metrics/loggers.py).
const TTFT_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0,
    160.0, 640.0, 2560.0,
];

/// vLLM's `request_latency_buckets`, used by `vllm:request_queue_time_seconds`.
const REQUEST_LATENCY_BUCKETS: &[f64] = &[
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0,
    1920.0, 7680.0,
];

/// A Prometheus histogram of durations with fixed bounds, lock-free.
pub(crate) struct Histogram {
    bounds: &'static [f64],
    /// Per-bucket (not cumulative) counts; the last one is above every bound.
    counts: Box<[AtomicU64]>,
    sum_us: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_us: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, d: Duration) {
        let seconds = d.as_secs_f64();
        let i = self.bounds.partition_point(|&le| le < seconds);
        self.counts[i].fetch_add(1, Relaxed);
        self.sum_us
            .fetch_add(u64::try_from(d.as_micros()).unwrap_or(u64::MAX), Relaxed);
    }

    fn reset(&self) {
        for c in self.counts.iter().chain([&self.sum_us]) {
            c.store(0, Relaxed);
        }
    }

    /// Cumulative counts (the last is `+Inf`, which is also the count) and the sum in seconds.
    /// The count is the buckets' total, so `+Inf` and `_count` always agree.
    pub fn read(&self) -> (Vec<u64>, f64) {
        let mut total = 0;
        let cumulative = self
            .counts
            .iter()
            .map(|c| {
                total += c.load(Relaxed);
                total
            })
            .collect();
        (cumulative, self.sum_us.load(Relaxed) as f64 / 1e6)
    }
}

/// The figures behind GET /metrics that /sim/stats does not have.
pub(crate) struct Telemetry {
    /// Gauges, published by the engine once per step.
    running: AtomicU64,
    waiting: AtomicU64,
    kv_tokens: AtomicU64,
    /// Counters, in prompt tokens: looked up in the prefix cache, and found there.
    prefix_queries: AtomicU64,
    prefix_hits: AtomicU64,
    /// Request received → first content chunk (or first token of a non-streamed answer).
    pub ttft: Histogram,
    /// Queued in the engine's FIFO → joined the batch.
    pub queue_time: Histogram,
}

/// The engine's state as last published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Gauges {
    /// Sequences in the running batch.
    pub running: u64,
    /// Requests queued beyond `--max-batch`.
    pub waiting: u64,
    /// Tokens the running sequences hold: their prompts and what they generated so far.
    pub kv_tokens: u64,
}

impl Telemetry {
    pub fn new() -> Self {
        Self {
            running: AtomicU64::new(0),
            waiting: AtomicU64::new(0),
            kv_tokens: AtomicU64::new(0),
            prefix_queries: AtomicU64::new(0),
            prefix_hits: AtomicU64::new(0),
            ttft: Histogram::new(TTFT_BUCKETS),
            queue_time: Histogram::new(REQUEST_LATENCY_BUCKETS),
        }
    }

    pub fn publish(&self, g: Gauges) {
        self.running.store(g.running, Relaxed);
        self.waiting.store(g.waiting, Relaxed);
        self.kv_tokens.store(g.kv_tokens, Relaxed);
    }

    pub fn gauges(&self) -> Gauges {
        Gauges {
            running: self.running.load(Relaxed),
            waiting: self.waiting.load(Relaxed),
            kv_tokens: self.kv_tokens.load(Relaxed),
        }
    }

    /// One prompt of `tokens` tokens looked up in the prefix cache, `cached` of them found.
    pub fn count_prefix_lookup(&self, tokens: u64, cached: u64) {
        self.prefix_queries.fetch_add(tokens, Relaxed);
        self.prefix_hits.fetch_add(cached, Relaxed);
    }

    /// Zeroes the counters and histograms (with /sim/reset); the gauges are the engine's.
    pub fn reset(&self) {
        self.prefix_queries.store(0, Relaxed);
        self.prefix_hits.store(0, Relaxed);
        self.ttft.reset();
        self.queue_time.reset();
    }
}

/// How GET /metrics is written, fixed at start.
pub(crate) struct Exposition {
    flavor: Flavor,
    /// The model's name, escaped for a label value.
    model: String,
    max_batch: u64,
    /// `--kv-cache-tokens` (0: usage is running / max batch).
    kv_capacity: u64,
}

impl Exposition {
    pub fn new(config: &SimConfig) -> Self {
        let model = config
            .model
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        Self {
            flavor: config.flavor,
            model,
            max_batch: config.max_batch.max(1) as u64,
            kv_capacity: config.kv_cache_tokens,
        }
    }

    /// KV cache usage, 0 to 1: tokens held / capacity, or a full batch is a full cache.
    pub fn kv_usage(&self, g: Gauges) -> f64 {
        let usage = match self.kv_capacity {
            0 => g.running as f64 / self.max_batch as f64,
            n => g.kv_tokens as f64 / n as f64,
        };
        usage.min(1.0)
    }

    /// Share of the batch in use, 0 to 1.
    pub fn busy(&self, g: Gauges) -> f64 {
        (g.running as f64 / self.max_batch as f64).min(1.0)
    }

    pub fn render(&self, stats: &Stats) -> String {
        match self.flavor {
            Flavor::Openai => self.vllm(stats),
            Flavor::LlamaServer => self.llamacpp(stats),
        }
    }

    /// vLLM v1's names, labels and number format (prometheus_client's: floats, sorted labels).
    fn vllm(&self, stats: &Stats) -> String {
        let t = &stats.telemetry;
        let g = t.gauges();
        let (prompt, output) = stats.token_totals();
        let labels = format!("engine=\"0\",model_name=\"{}\"", self.model);
        let mut buf = String::with_capacity(8 << 10);
        let b = &mut buf;
        let gauges: [(&str, &str, f64); 3] = [
            (
                "num_requests_running",
                "Number of requests in model execution batches.",
                g.running as f64,
            ),
            (
                "num_requests_waiting",
                "Number of requests waiting to be processed.",
                g.waiting as f64,
            ),
            (
                "kv_cache_usage_perc",
                "KV-cache usage. 1 means 100 percent usage.",
                self.kv_usage(g),
            ),
        ];
        for (name, help, value) in gauges {
            family(b, &format!("vllm:{name}"), "gauge", help);
            sample(b, &format!("vllm:{name}"), &labels, &py_float(value));
        }
        let counters: [(&str, &str, u64); 5] = [
            (
                "prefix_cache_queries",
                "Prefix cache queries, in terms of number of queried tokens.",
                t.prefix_queries.load(Relaxed),
            ),
            (
                "prefix_cache_hits",
                "Prefix cache hits, in terms of number of cached tokens.",
                t.prefix_hits.load(Relaxed),
            ),
            ("num_preemptions", "Cumulative number of preemption from the engine.", 0),
            ("prompt_tokens", "Number of prefill tokens processed.", prompt),
            ("generation_tokens", "Number of generation tokens processed.", output),
        ];
        for (name, help, value) in counters {
            family(b, &format!("vllm:{name}"), "counter", help);
            sample(b, &format!("vllm:{name}_total"), &labels, &py_float(value as f64));
        }
        let histograms = [
            (
                "time_to_first_token_seconds",
                "Histogram of time to first token in seconds.",
                &t.ttft,
            ),
            (
                "request_queue_time_seconds",
                "Histogram of time spent in WAITING phase for request.",
                &t.queue_time,
            ),
        ];
        for (name, help, h) in histograms {
            self.vllm_histogram(b, &format!("vllm:{name}"), help, h);
        }
        buf
    }

    fn vllm_histogram(&self, buf: &mut String, name: &str, help: &str, h: &Histogram) {
        family(buf, name, "histogram", help);
        let (cumulative, sum) = h.read();
        let les = h.bounds.iter().map(|&le| py_float(le)).chain(["+Inf".to_string()]);
        for (le, count) in les.zip(&cumulative) {
            let labels = format!("engine=\"0\",le=\"{le}\",model_name=\"{}\"", self.model);
            sample(buf, &format!("{name}_bucket"), &labels, &py_float(*count as f64));
        }
        let labels = format!("engine=\"0\",model_name=\"{}\"", self.model);
        let count = cumulative.last().copied().unwrap_or(0);
        sample(buf, &format!("{name}_count"), &labels, &py_float(count as f64));
        sample(buf, &format!("{name}_sum"), &labels, &py_float(sum));
    }

    /// llama.cpp's names, unlabelled, counters declared under their `_total` names as its
    /// server writes them.
    fn llamacpp(&self, stats: &Stats) -> String {
        let g = stats.telemetry.gauges();
        let (prompt, output) = stats.token_totals();
        let rows: [(&str, &str, &str, String); 6] = [
            (
                "prompt_tokens_total",
                "counter",
                "Number of prompt tokens processed, excluding cached tokens",
                prompt.to_string(),
            ),
            (
                "tokens_predicted_total",
                "counter",
                "Number of generation tokens processed.",
                output.to_string(),
            ),
            (
                "requests_processing",
                "gauge",
                "Number of requests processing.",
                g.running.to_string(),
            ),
            (
                "requests_deferred",
                "gauge",
                "Number of requests deferred.",
                g.waiting.to_string(),
            ),
            (
                "kv_cache_usage_ratio",
                "gauge",
                "KV-cache usage. 1 means 100 percent usage.",
                self.kv_usage(g).to_string(),
            ),
            ("kv_cache_tokens", "gauge", "KV-cache tokens.", g.kv_tokens.to_string()),
        ];
        let mut buf = String::with_capacity(1 << 10);
        for (name, kind, help, value) in rows {
            let name = format!("llamacpp:{name}");
            family(&mut buf, &name, kind, help);
            sample(&mut buf, &name, "", &value);
        }
        buf
    }
}

/// A family's `# HELP` and `# TYPE` lines.
pub(crate) fn family(buf: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(buf, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// One sample line; `labels` without braces, empty for none.
pub(crate) fn sample(buf: &mut String, name: &str, labels: &str, value: &str) {
    let _ = match labels {
        "" => writeln!(buf, "{name} {value}"),
        _ => writeln!(buf, "{name}{{{labels}}} {value}"),
    };
}

/// A float as Python's prometheus_client writes it: `2.0`, `0.25`, `2560.0`.
fn py_float(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.1}")
    } else {
        v.to_string()
    }
}

/// Size of the `--metrics-fault huge` answer.
pub(crate) const HUGE_BYTES: usize = 20_000_000;
const PADDING: &str = "llm_bench_sim_padding";
/// Padding lines formatted per frame of the huge answer.
const PADDING_LINES_PER_FRAME: u64 = 2048;

/// The `--metrics-fault huge` answer: the real text, then one padding family of distinct
/// series up to [`HUGE_BYTES`], formatted a frame at a time so it is never held whole.
pub(crate) fn huge(text: String) -> impl Iterator<Item = Bytes> + Send {
    let line_len = format!("{PADDING}{{series=\"{:08}\"}} 1\n", 0).len();
    let mut head = text;
    family(&mut head, PADDING, "gauge", "Filler of --metrics-fault huge.");
    let lines = (HUGE_BYTES.saturating_sub(head.len()) / line_len) as u64;
    let frames = (0..lines).step_by(PADDING_LINES_PER_FRAME as usize).map(move |first| {
        let last = (first + PADDING_LINES_PER_FRAME).min(lines);
        let mut buf = String::with_capacity(line_len * PADDING_LINES_PER_FRAME as usize);
        for i in first..last {
            let _ = writeln!(buf, "{PADDING}{{series=\"{i:08}\"}} 1");
        }
        Bytes::from(buf)
    });
    std::iter::once(Bytes::from(head)).chain(frames)
}

/// The `--metrics-fault garbage` answer: what a login portal in front of a server says.
pub(crate) const GARBAGE_PAGE: &str = "<!DOCTYPE html>\n<html><head><title>Sign in</title></head>\n\
    <body><h1>Sign in</h1><form method=\"post\" action=\"/login\"><input name=\"user\">\
    <input name=\"password\" type=\"password\"><button>OK</button></form></body></html>\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_le_inclusive() {
        let h = Histogram::new(TTFT_BUCKETS);
        for ms in [1, 3, 3000, 3_000_000] {
            h.observe(Duration::from_millis(ms));
        }
        let (cumulative, sum) = h.read();
        assert_eq!(cumulative.len(), TTFT_BUCKETS.len() + 1);
        assert_eq!((cumulative[0], cumulative[1]), (1, 2), "0.001 holds exactly 1 ms");
        assert_eq!(cumulative[TTFT_BUCKETS.len() - 1], 3);
        assert_eq!(cumulative.last(), Some(&4));
        assert!((sum - 3003.004).abs() < 1e-9, "{sum}");
        h.reset();
        assert_eq!(h.read().0.last(), Some(&0));
    }

    #[test]
    fn kv_usage_model() {
        let with = |kv_cache_tokens| {
            Exposition::new(&SimConfig {
                max_batch: 4,
                kv_cache_tokens,
                ..SimConfig::default()
            })
        };
        let g = |running, kv_tokens| Gauges {
            running,
            waiting: 0,
            kv_tokens,
        };
        assert_eq!(with(0).kv_usage(g(2, 999)), 0.5);
        assert_eq!(with(0).kv_usage(g(4, 0)), 1.0);
        assert_eq!(with(1000).kv_usage(g(1, 250)), 0.25);
        assert_eq!(with(1000).kv_usage(g(1, 5000)), 1.0, "capped");
    }

    #[test]
    fn vllm_text_layout() {
        let stats = Stats::new();
        stats.add_prompt_tokens(12);
        stats.telemetry.ttft.observe(Duration::from_millis(30));
        let exposition = Exposition::new(&SimConfig {
            model: "m\"x".into(),
            ..SimConfig::default()
        });
        let text = exposition.render(&stats);
        let labels = r#"engine="0",model_name="m\"x""#;
        for line in [
            "# TYPE vllm:prompt_tokens counter".to_string(),
            format!("vllm:prompt_tokens_total{{{labels}}} 12.0"),
            format!("vllm:num_preemptions_total{{{labels}}} 0.0"),
            r#"vllm:time_to_first_token_seconds_bucket{engine="0",le="0.02",model_name="m\"x"} 0.0"#.into(),
            r#"vllm:time_to_first_token_seconds_bucket{engine="0",le="0.04",model_name="m\"x"} 1.0"#.into(),
            r#"vllm:time_to_first_token_seconds_bucket{engine="0",le="2560.0",model_name="m\"x"} 1.0"#.into(),
            r#"vllm:time_to_first_token_seconds_bucket{engine="0",le="+Inf",model_name="m\"x"} 1.0"#.into(),
            format!("vllm:time_to_first_token_seconds_count{{{labels}}} 1.0"),
            format!("vllm:time_to_first_token_seconds_sum{{{labels}}} 0.03"),
            format!("vllm:request_queue_time_seconds_count{{{labels}}} 0.0"),
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
        assert!(!text.contains("llamacpp:"));
    }

    #[test]
    fn huge_answer_is_about_its_size_and_distinct() {
        let frames: Vec<Bytes> = huge("# real\n".into()).collect();
        let size: usize = frames.iter().map(Bytes::len).sum();
        assert!(size <= HUGE_BYTES && size > HUGE_BYTES - 100, "{size}");
        let last = std::str::from_utf8(frames.last().unwrap()).unwrap();
        assert!(last.ends_with("} 1\n") && frames[0].starts_with(b"# real\n"));
    }
}
