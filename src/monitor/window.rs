//! Telemetry samples to a window's figures (a step, a stress interval): gauges as mean and max,
//! counters as deltas and rates, histograms as the server's own percentiles over the window,
//! energy from the GPUs' counters (docs/telemetry.md, "A window's figures").
//!
//! A window `[from, to]` is measured between two samples: the last one taken at or before each
//! edge (allowing [`EDGE_S`] for a boundary sample that is stamped just after its edge). Runs
//! take a sample at every boundary, so counter deltas are exact; gauges use the samples between
//! the two edges (the edges themselves only when there are no others).

use super::gpu::{is_power_reason, is_thermal_reason, GpuDevice, GpuReading};
use super::server::{Histogram, ServerReading};
use super::source::{Sampler, Source, Timed};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How long after an edge a sample still stands for it: a boundary scrape is stamped in the
/// middle of its exchange, a few milliseconds after the edge it was asked for.
pub const EDGE_S: f64 = 0.25;

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct MeanMax {
    pub mean: f64,
    pub max: f64,
}

/// Percentiles (milliseconds) of what the server observed in the window, from its histogram.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerPercentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    /// Observations in the window.
    pub count: f64,
}

/// The server's token counters against llm-bench's own totals for the same window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TokenCheck {
    pub ours_prompt_tokens: u64,
    /// Of ours, the prompt tokens the server said came from its cache, when the server's prompt
    /// counter matches ours without them (llama.cpp counts only the tokens it evaluated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ours_cached_prompt_tokens: Option<u64>,
    pub ours_generation_tokens: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_diff_pct: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation_diff_pct: Option<f64>,
    /// A difference over [`TOKEN_MISMATCH_PCT`] in either count.
    pub mismatch: bool,
}

/// A difference between the server's and our token counts that is reported.
pub const TOKEN_MISMATCH_PCT: f64 = 2.0;

/// `server_metrics` of a step or a stress interval.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerWindow {
    /// Which engine's families were recognised ("vllm", "sglang", "llamacpp", "tgi"), or
    /// "unknown" when none were (the raw samples are in server_metrics.jsonl).
    pub source: String,
    /// Samples the figures were taken from (the two edges included).
    pub samples: usize,
    /// Counter deltas over the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_per_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation_tokens_per_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_running: Option<MeanMax>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_waiting: Option<MeanMax>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_cache_usage_pct: Option<MeanMax>,
    /// Hits over queries in the window (counters), or the mean of the engine's own hit-rate
    /// gauge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_cache_hit_pct: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_cache_queries: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preemptions: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation_throughput_tps: Option<MeanMax>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<MeanMax>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_ms: Option<ServerPercentiles>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_time_ms: Option<ServerPercentiles>,
    /// The server's token deltas against ours (filled in by the run, which knows our totals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_check: Option<TokenCheck>,
    /// Our TTFT p50 minus the server's: the time outside the engine (network, HTTP, queueing
    /// in front of it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_p50_outside_ms: Option<f64>,
}

/// One GPU over a window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuDeviceWindow {
    pub index: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_j: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_w: Option<MeanMax>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature_c: Option<MeanMax>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utilization_pct: Option<MeanMax>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_used_mb: Option<MeanMax>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sm_clock_mhz: Option<MeanMax>,
    /// Share of samples slowed for power or heat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttled_pct: Option<f64>,
    /// Share of samples each reason was active in (idle left out).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub throttle_reasons_pct: BTreeMap<String, f64>,
}

/// `gpu` of a step or a stress interval: all GPUs together, and each.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuWindow {
    /// "nvml" or "dcgm".
    pub source: String,
    pub gpus: usize,
    pub samples: usize,
    /// Every GPU's energy over the window, idle power included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_j: Option<f64>,
    /// "counter" (the driver's energy counter) or "power_integral" (power samples, trapezoids).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_method: Option<String>,
    /// Summed over the GPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_w: Option<MeanMax>,
    /// The hottest GPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature_c: Option<MeanMax>,
    /// Mean over the GPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utilization_pct: Option<MeanMax>,
    /// Output tokens of the window per joule (filled in by the run, which knows the tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_joule: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joules_per_request: Option<f64>,
    pub devices: Vec<GpuDeviceWindow>,
}

impl GpuWindow {
    /// Fills in the energy ratios from the window's output tokens and finished requests.
    pub fn relate(&mut self, output_tokens: u64, requests: u64) {
        if let Some(j) = self.energy_j.filter(|j| *j > 0.0) {
            self.tokens_per_joule = Some(output_tokens as f64 / j);
            self.joules_per_request = (requests > 0).then(|| j / requests as f64);
        }
    }
}

/// The two edge samples of `[from, to]` and the ones between them.
struct Edges<'a, R> {
    before: &'a Timed<R>,
    after: &'a Timed<R>,
    inside: Vec<&'a Timed<R>>,
    span_s: f64,
}

fn edges<R>(samples: &[Timed<R>], from_s: f64, to_s: f64) -> Option<Edges<'_, R>> {
    let last_by = |t: f64| samples.iter().rev().find(|s| s.t_s <= t + EDGE_S);
    let before = last_by(from_s).or(samples.first())?;
    let after = last_by(to_s)?;
    if after.t_s <= before.t_s {
        return None;
    }
    let between: Vec<&Timed<R>> = samples
        .iter()
        .filter(|s| s.t_s > before.t_s && s.t_s < after.t_s)
        .collect();
    let inside = if between.is_empty() {
        vec![before, after]
    } else {
        between
    };
    Some(Edges {
        before,
        after,
        inside,
        span_s: (to_s - from_s).max(1e-9),
    })
}

/// A counter's increase from `before` to `after` through every sample between: a value that
/// went down means the counter was reset (a restarted server), and counts from zero.
fn counter_delta<R>(samples: &[Timed<R>], e: &Edges<R>, get: impl Fn(&R) -> Option<f64>) -> Option<f64> {
    let mut total = 0.0;
    let mut last = get(&e.before.reading)?;
    for s in samples.iter().filter(|s| s.t_s > e.before.t_s && s.t_s <= e.after.t_s) {
        let Some(v) = get(&s.reading).filter(|v| v.is_finite()) else {
            continue;
        };
        total += if v >= last { v - last } else { v };
        last = v;
    }
    get(&e.after.reading).map(|_| total)
}

fn mean_max(values: impl Iterator<Item = f64>) -> Option<MeanMax> {
    let values: Vec<f64> = values.filter(|v| v.is_finite()).collect();
    (!values.is_empty()).then(|| MeanMax {
        mean: values.iter().sum::<f64>() / values.len() as f64,
        max: values.iter().copied().fold(f64::MIN, f64::max),
    })
}

fn percentiles(before: Option<&Histogram>, after: Option<&Histogram>) -> Option<ServerPercentiles> {
    use super::server::engines::window_percentile;
    let after = after?;
    let q = |q: f64| window_percentile(before, after, q).map(|s| s * 1000.0);
    let count = match before {
        Some(b) if after.count >= b.count => after.count - b.count,
        _ => after.count,
    };
    Some(ServerPercentiles {
        p50: q(0.5)?,
        p90: q(0.9)?,
        p99: q(0.99)?,
        count,
    })
}

/// The server's figures over `[from_s, to_s]`; `None` without two samples around it.
pub fn server_window(samples: &[Timed<ServerReading>], from_s: f64, to_s: f64) -> Option<ServerWindow> {
    let e = edges(samples, from_s, to_s)?;
    let delta = |get: fn(&ServerReading) -> Option<f64>| counter_delta(samples, &e, get);
    let gauge = |get: fn(&ServerReading) -> Option<f64>| mean_max(e.inside.iter().filter_map(|s| get(&s.reading)));
    let prompt = delta(|r| r.prompt_tokens);
    let generation = delta(|r| r.generation_tokens);
    let queries = delta(|r| r.prefix_cache_queries);
    let hits = delta(|r| r.prefix_cache_hits);
    let hit_pct = match (hits, queries) {
        (Some(h), Some(q)) if q > 0.0 => Some(100.0 * h / q),
        _ => gauge(|r| r.prefix_cache_hit_pct).map(|g| g.mean),
    };
    let engine = e.after.reading.engine.clone().or(e.before.reading.engine.clone());
    Some(ServerWindow {
        source: engine.unwrap_or_else(|| "unknown".into()),
        samples: e.inside.len() + 2,
        prompt_tokens: prompt.map(|v| v.round() as u64),
        generation_tokens: generation.map(|v| v.round() as u64),
        prompt_tokens_per_s: prompt.map(|v| v / e.span_s),
        generation_tokens_per_s: generation.map(|v| v / e.span_s),
        requests_running: gauge(|r| r.requests_running),
        requests_waiting: gauge(|r| r.requests_waiting),
        kv_cache_usage_pct: gauge(|r| r.kv_cache_usage_pct),
        prefix_cache_hit_pct: hit_pct,
        prefix_cache_queries: queries.map(|v| v.round() as u64),
        preemptions: delta(|r| r.preemptions).map(|v| v.round() as u64),
        generation_throughput_tps: gauge(|r| r.generation_throughput_tps),
        batch_size: gauge(|r| r.batch_size),
        ttft_ms: percentiles(e.before.reading.ttft.as_ref(), e.after.reading.ttft.as_ref()),
        queue_time_ms: percentiles(
            e.before.reading.queue_time.as_ref(),
            e.after.reading.queue_time.as_ref(),
        ),
        token_check: None,
        ttft_p50_outside_ms: None,
    })
}

impl ServerWindow {
    /// Compares the server's token deltas with ours for the same window. A server whose prompt
    /// counter leaves out cached tokens is compared with ours less the `cached` ones.
    pub fn check_tokens(&mut self, ours_prompt: u64, cached: u64, ours_generation: u64) {
        if self.prompt_tokens.is_none() && self.generation_tokens.is_none() {
            return;
        }
        let diff = |server: Option<u64>, ours: u64| {
            server.map(|s| match ours {
                0 if s == 0 => 0.0,
                0 => 100.0,
                _ => 100.0 * (s as f64 - ours as f64) / ours as f64,
            })
        };
        let mut prompt_diff_pct = diff(self.prompt_tokens, ours_prompt);
        let mut ours_cached_prompt_tokens = None;
        if cached > 0 {
            let uncached = diff(self.prompt_tokens, ours_prompt.saturating_sub(cached));
            if let (Some(u), Some(p)) = (uncached, prompt_diff_pct) {
                if u.abs() < p.abs() {
                    prompt_diff_pct = Some(u);
                    ours_cached_prompt_tokens = Some(cached);
                }
            }
        }
        let generation_diff_pct = diff(self.generation_tokens, ours_generation);
        let over = |d: Option<f64>| d.is_some_and(|d| d.abs() > TOKEN_MISMATCH_PCT);
        self.token_check = Some(TokenCheck {
            ours_prompt_tokens: ours_prompt,
            ours_cached_prompt_tokens,
            ours_generation_tokens: ours_generation,
            prompt_diff_pct,
            generation_diff_pct,
            mismatch: over(prompt_diff_pct) || over(generation_diff_pct),
        });
    }
}

fn device(reading: &GpuReading, index: u32) -> Option<&GpuDevice> {
    reading.devices.iter().find(|d| d.index == index)
}

/// Energy in joules of one GPU over the window: its counter, else the integral of its power.
fn device_energy(samples: &[Timed<GpuReading>], e: &Edges<GpuReading>, index: u32) -> Option<(f64, &'static str)> {
    if let Some(mj) = counter_delta(samples, e, |r| device(r, index).and_then(|d| d.energy_mj)) {
        return Some((mj / 1000.0, "counter"));
    }
    let points: Vec<(f64, f64)> = samples
        .iter()
        .filter(|s| s.t_s >= e.before.t_s && s.t_s <= e.after.t_s)
        .filter_map(|s| device(&s.reading, index).and_then(|d| d.power_w).map(|p| (s.t_s, p)))
        .collect();
    (points.len() >= 2).then(|| {
        let joules = points
            .windows(2)
            .map(|w| (w[1].0 - w[0].0) * (w[0].1 + w[1].1) / 2.0)
            .sum();
        (joules, "power_integral")
    })
}

fn device_window(
    samples: &[Timed<GpuReading>],
    e: &Edges<GpuReading>,
    index: u32,
) -> (GpuDeviceWindow, Option<&'static str>) {
    let inside: Vec<&GpuDevice> = e.inside.iter().filter_map(|s| device(&s.reading, index)).collect();
    let gauge = |get: fn(&GpuDevice) -> Option<f64>| mean_max(inside.iter().filter_map(|d| get(d)));
    let with_reasons: Vec<&Vec<String>> = inside.iter().filter_map(|d| d.throttle.as_ref()).collect();
    let share = |hit: &dyn Fn(&Vec<String>) -> bool| {
        100.0 * with_reasons.iter().filter(|r| hit(r)).count() as f64 / with_reasons.len() as f64
    };
    let mut reasons = BTreeMap::new();
    for name in with_reasons.iter().flat_map(|r| r.iter()).filter(|n| *n != "idle") {
        reasons
            .entry(name.clone())
            .or_insert_with(|| share(&|r: &Vec<String>| r.contains(name)));
    }
    let energy = device_energy(samples, e, index);
    let w = GpuDeviceWindow {
        index,
        name: inside.iter().find_map(|d| d.name.clone()),
        energy_j: energy.map(|(j, _)| j),
        power_w: gauge(|d| d.power_w),
        temperature_c: gauge(|d| d.temperature_c),
        utilization_pct: gauge(|d| d.utilization_pct),
        memory_used_mb: gauge(|d| d.memory_used_mb),
        sm_clock_mhz: gauge(|d| d.sm_clock_mhz),
        throttled_pct: (!with_reasons.is_empty())
            .then(|| share(&|r: &Vec<String>| r.iter().any(|n| is_power_reason(n) || is_thermal_reason(n)))),
        throttle_reasons_pct: reasons,
    };
    (w, energy.map(|(_, method)| method))
}

/// The GPUs' figures over `[from_s, to_s]`; `None` without two samples around it.
pub fn gpu_window(samples: &[Timed<GpuReading>], from_s: f64, to_s: f64, kind: &str) -> Option<GpuWindow> {
    let e = edges(samples, from_s, to_s)?;
    let mut indexes: Vec<u32> = e.after.reading.devices.iter().map(|d| d.index).collect();
    indexes.sort_unstable();
    indexes.dedup();
    let per: Vec<(GpuDeviceWindow, Option<&str>)> = indexes.iter().map(|&i| device_window(samples, &e, i)).collect();
    let methods: Vec<&str> = per.iter().filter_map(|(_, m)| *m).collect();
    let energy_j = (methods.len() == per.len() && !per.is_empty())
        .then(|| per.iter().filter_map(|(d, _)| d.energy_j).sum::<f64>());
    let method = energy_j.map(|_| {
        if methods.iter().all(|m| *m == "counter") {
            "counter"
        } else {
            "power_integral"
        }
    });
    // Whole-machine series: summed power, hottest GPU, mean utilisation, sample by sample.
    let over = |f: fn(&GpuReading) -> Option<f64>| mean_max(e.inside.iter().filter_map(|s| f(&s.reading)));
    Some(GpuWindow {
        source: kind.to_string(),
        gpus: per.len(),
        samples: e.inside.len() + 2,
        energy_j,
        energy_method: method.map(str::to_string),
        power_w: over(total_power),
        temperature_c: over(hottest),
        utilization_pct: over(mean_utilization),
        tokens_per_joule: None,
        joules_per_request: None,
        devices: per.into_iter().map(|(d, _)| d).collect(),
    })
}

fn total_power(r: &GpuReading) -> Option<f64> {
    let p: Vec<f64> = r.devices.iter().filter_map(|d| d.power_w).collect();
    (!p.is_empty()).then(|| p.iter().sum())
}

fn hottest(r: &GpuReading) -> Option<f64> {
    r.devices.iter().filter_map(|d| d.temperature_c).reduce(f64::max)
}

fn mean_utilization(r: &GpuReading) -> Option<f64> {
    let u: Vec<f64> = r.devices.iter().filter_map(|d| d.utilization_pct).collect();
    (!u.is_empty()).then(|| u.iter().sum::<f64>() / u.len() as f64)
}

/// What one source did over the run (`summary.json` `monitor.sources`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceReport {
    pub name: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub about: Option<String>,
    pub interval_s: f64,
    pub samples: usize,
    /// Samples that failed (timeout, error status, unreadable answer).
    pub skipped: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_reason: Option<String>,
}

impl SourceReport {
    pub fn of<S: Source>(s: &Sampler<S>, about: Option<String>) -> Self {
        Self {
            name: s.name().into(),
            kind: s.kind().into(),
            about: about.filter(|a| !a.is_empty()),
            interval_s: s.interval().as_secs_f64(),
            samples: s.taken(),
            skipped: s.skipped(),
            skip_reason: s.skip_reason(),
        }
    }
}

/// The server's series for the report's charts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerPoint {
    pub t_s: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_running: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_waiting: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_cache_usage_pct: Option<f64>,
    /// The generation counter's rate since the previous sample.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation_tps: Option<f64>,
}

/// The GPUs' series for the report's charts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuPoint {
    pub t_s: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_w: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature_c: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utilization_pct: Option<f64>,
    /// Any GPU slowed for power or heat.
    #[serde(default)]
    pub throttled: bool,
}

/// `summary.json` `monitor.server` and `monitor.gpu`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timelines {
    pub server: Vec<ServerPoint>,
    pub gpu: Vec<GpuPoint>,
}

/// Every `k`-th sample so that at most `max` remain (the last always kept).
fn thinned<T: Clone>(points: Vec<T>, max: usize) -> Vec<T> {
    if points.len() <= max.max(1) {
        return points;
    }
    let step = points.len().div_ceil(max.max(1));
    let last = points.len() - 1;
    points
        .into_iter()
        .enumerate()
        .filter(|(i, _)| i % step == 0 || *i == last)
        .map(|(_, p)| p)
        .collect()
}

pub fn server_points(samples: &[Timed<ServerReading>], max: usize) -> Vec<ServerPoint> {
    let mut previous: Option<(f64, f64)> = None;
    let points = samples
        .iter()
        .map(|s| {
            let r = &s.reading;
            let generation_tps = match (previous, r.generation_tokens) {
                (Some((t, v)), Some(now)) if s.t_s > t && now >= v => Some((now - v) / (s.t_s - t)),
                _ => None,
            };
            if let Some(v) = r.generation_tokens {
                previous = Some((s.t_s, v));
            }
            ServerPoint {
                t_s: s.t_s,
                requests_running: r.requests_running,
                requests_waiting: r.requests_waiting,
                kv_cache_usage_pct: r.kv_cache_usage_pct,
                generation_tps,
            }
        })
        .collect();
    thinned(points, max)
}

pub fn gpu_points(samples: &[Timed<GpuReading>], max: usize) -> Vec<GpuPoint> {
    let points = samples
        .iter()
        .map(|s| GpuPoint {
            t_s: s.t_s,
            power_w: total_power(&s.reading),
            temperature_c: hottest(&s.reading),
            utilization_pct: mean_utilization(&s.reading),
            throttled: s.reading.devices.iter().any(|d| {
                d.throttle
                    .iter()
                    .flatten()
                    .any(|n| is_power_reason(n) || is_thermal_reason(n))
            }),
        })
        .collect();
    thinned(points, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at<R>(t_s: f64, reading: R) -> Timed<R> {
        Timed {
            t_s,
            boundary: false,
            reading,
        }
    }

    fn server(t: f64, running: f64, generation: f64) -> Timed<ServerReading> {
        at(
            t,
            ServerReading {
                engine: Some("vllm".into()),
                requests_running: Some(running),
                generation_tokens: Some(generation),
                prompt_tokens: Some(generation * 2.0),
                ..ServerReading::default()
            },
        )
    }

    #[test]
    fn counters_are_deltas_between_the_edge_samples_and_gauges_the_samples_between() {
        // Boundary samples a few ms after each edge; the server idle at both.
        let samples = vec![
            server(0.004, 0.0, 1000.0),
            server(1.0, 8.0, 1400.0),
            server(2.0, 8.0, 1800.0),
            server(3.0, 6.0, 2150.0),
            server(3.006, 0.0, 2200.0),
        ];
        let w = server_window(&samples, 0.0, 3.0).unwrap();
        assert_eq!(w.generation_tokens, Some(1200));
        assert_eq!(w.prompt_tokens, Some(2400));
        assert_eq!(w.generation_tokens_per_s, Some(400.0));
        let running = w.requests_running.unwrap();
        assert!(
            (running.mean - 22.0 / 3.0).abs() < 1e-9 && running.max == 8.0,
            "{running:?}"
        );
        assert_eq!(w.source, "vllm");
        assert_eq!(w.samples, 5);
    }

    #[test]
    fn a_counter_reset_counts_from_zero() {
        let samples = vec![server(0.0, 0.0, 500.0), server(1.0, 1.0, 600.0), server(2.0, 1.0, 50.0)];
        let w = server_window(&samples, 0.0, 2.0).unwrap();
        assert_eq!(w.generation_tokens, Some(150));
    }

    #[test]
    fn no_window_without_two_samples() {
        assert!(server_window(&[server(0.0, 0.0, 1.0)], 0.0, 5.0).is_none());
        assert!(server_window(&[], 0.0, 5.0).is_none());
    }

    #[test]
    fn token_check_reports_a_difference_over_two_percent() {
        let mut w = ServerWindow {
            prompt_tokens: Some(1000),
            generation_tokens: Some(1030),
            ..ServerWindow::default()
        };
        w.check_tokens(1000, 0, 1000);
        let check = w.token_check.clone().unwrap();
        assert_eq!(check.prompt_diff_pct, Some(0.0));
        assert!((check.generation_diff_pct.unwrap() - 3.0).abs() < 1e-9);
        assert!(check.mismatch);
        w.check_tokens(1000, 0, 1020);
        assert!(!w.token_check.clone().unwrap().mismatch);
        // A server that counts only the prompt tokens it evaluated.
        w.prompt_tokens = Some(600);
        w.check_tokens(1000, 400, 1030);
        let check = w.token_check.unwrap();
        assert_eq!(
            (check.prompt_diff_pct, check.ours_cached_prompt_tokens),
            (Some(0.0), Some(400))
        );
    }

    fn gpu(t: f64, power: f64, energy_mj: Option<f64>, throttle: &[&str]) -> Timed<GpuReading> {
        let dev = |index| GpuDevice {
            index,
            power_w: Some(power),
            energy_mj,
            temperature_c: Some(60.0 + index as f64),
            utilization_pct: Some(50.0),
            throttle: Some(throttle.iter().map(|s| s.to_string()).collect()),
            ..GpuDevice::default()
        };
        at(
            t,
            GpuReading {
                devices: vec![dev(0), dev(1)],
            },
        )
    }

    #[test]
    fn energy_from_the_counter_and_tokens_per_joule() {
        // 300 W per GPU for 10 s: 3000 J each.
        let samples: Vec<_> = (0..=10)
            .map(|i| gpu(i as f64, 300.0, Some(1e6 + 300_000.0 * i as f64), &[]))
            .collect();
        let mut w = gpu_window(&samples, 0.0, 10.0, "dcgm").unwrap();
        assert_eq!(w.energy_method.as_deref(), Some("counter"));
        assert!((w.energy_j.unwrap() - 6000.0).abs() < 1e-6);
        assert_eq!(w.power_w.unwrap().mean, 600.0);
        assert_eq!(w.temperature_c.unwrap().max, 61.0);
        w.relate(12_000, 30);
        assert!((w.tokens_per_joule.unwrap() - 2.0).abs() < 1e-9);
        assert!((w.joules_per_request.unwrap() - 200.0).abs() < 1e-9);
        assert_eq!(w.devices.len(), 2);
        assert!((w.devices[1].energy_j.unwrap() - 3000.0).abs() < 1e-6);
    }

    #[test]
    fn energy_from_power_without_a_counter_and_throttle_shares() {
        let samples = vec![
            gpu(0.0, 100.0, None, &["idle"]),
            gpu(1.0, 200.0, None, &["sw_power_cap"]),
            gpu(2.0, 200.0, None, &[]),
            gpu(3.0, 100.0, None, &[]),
        ];
        let w = gpu_window(&samples, 0.0, 3.0, "nvml").unwrap();
        assert_eq!(w.energy_method.as_deref(), Some("power_integral"));
        // Per GPU: 150 + 200 + 150 = 500 J.
        assert!((w.energy_j.unwrap() - 1000.0).abs() < 1e-9);
        let d = &w.devices[0];
        assert_eq!(d.throttled_pct, Some(50.0));
        assert_eq!(d.throttle_reasons_pct.get("sw_power_cap"), Some(&50.0));
        assert!(!d.throttle_reasons_pct.contains_key("idle"));
    }

    #[test]
    fn timelines_are_thinned_and_rates_taken_between_samples() {
        let samples: Vec<_> = (0..100).map(|i| server(i as f64, 1.0, 10.0 * i as f64)).collect();
        let points = server_points(&samples, 10);
        assert!(points.len() <= 11, "{}", points.len());
        assert_eq!(points.last().unwrap().t_s, 99.0);
        assert_eq!(points[1].generation_tps, Some(10.0));
    }
}
