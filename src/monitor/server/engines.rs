//! Engine families to common names: which `/metrics` family of vLLM, SGLang, llama.cpp and TGI
//! stands for which [`ServerReading`] field, and how its series are added up. Every name here
//! was checked in the engine's source (docs/telemetry.md, "Engine families", says where).

use super::{Histogram, ServerReading};
use crate::monitor::prom::{Parsed, Sample};

/// How a family's value becomes the common figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapKind {
    /// Summed across series (per model, per data-parallel engine).
    Gauge,
    /// A running total, summed across series.
    Counter,
    /// Summed bucket-wise by `le` across series.
    Histogram,
    /// The `_sum` of a histogram read as a running total (an engine with no counter for it).
    HistogramSum,
    /// 0–1, reported as percent; the mean across series.
    Ratio,
    /// Already percent; the mean across series.
    Percent,
}

/// One row per recognised family, for docs and tests: (engine, family name as exposed, common
/// name, how it is converted)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapping {
    pub engine: &'static str,
    /// As it appears in the text: counters with their `_total` (both the 0.0.4 and OpenMetrics
    /// ways of declaring them are read).
    pub family: &'static str,
    /// The [`ServerReading`] field.
    pub common: &'static str,
    pub kind: MapKind,
}

const fn row(engine: &'static str, family: &'static str, common: &'static str, kind: MapKind) -> Mapping {
    Mapping {
        engine,
        family,
        common,
        kind,
    }
}

use MapKind as K;

/// Within an engine, the first row with data wins a common name: current names come before the
/// deprecated ones a server may still expose beside them (vLLM 0.9–0.10 reports the KV-cache
/// gauge and the prefix-cache counters under both names; adding them would count twice).
pub const FAMILIES: &[Mapping] = &[
    row("vllm", "vllm:num_requests_running", "requests_running", K::Gauge),
    row("vllm", "vllm:num_requests_waiting", "requests_waiting", K::Gauge),
    row("vllm", "vllm:kv_cache_usage_perc", "kv_cache_usage_pct", K::Ratio),
    row("vllm", "vllm:gpu_cache_usage_perc", "kv_cache_usage_pct", K::Ratio),
    row(
        "vllm",
        "vllm:prefix_cache_queries_total",
        "prefix_cache_queries",
        K::Counter,
    ),
    row(
        "vllm",
        "vllm:gpu_prefix_cache_queries_total",
        "prefix_cache_queries",
        K::Counter,
    ),
    row("vllm", "vllm:prefix_cache_hits_total", "prefix_cache_hits", K::Counter),
    row(
        "vllm",
        "vllm:gpu_prefix_cache_hits_total",
        "prefix_cache_hits",
        K::Counter,
    ),
    row(
        "vllm",
        "vllm:gpu_prefix_cache_hit_rate",
        "prefix_cache_hit_pct",
        K::Ratio,
    ),
    row("vllm", "vllm:num_preemptions_total", "preemptions", K::Counter),
    row("vllm", "vllm:prompt_tokens_total", "prompt_tokens", K::Counter),
    row("vllm", "vllm:generation_tokens_total", "generation_tokens", K::Counter),
    row(
        "vllm",
        "vllm:avg_generation_throughput_toks_per_s",
        "generation_throughput_tps",
        K::Gauge,
    ),
    row("vllm", "vllm:time_to_first_token_seconds", "ttft", K::Histogram),
    row("vllm", "vllm:request_queue_time_seconds", "queue_time", K::Histogram),
    row("sglang", "sglang:num_running_reqs", "requests_running", K::Gauge),
    row("sglang", "sglang:num_queue_reqs", "requests_waiting", K::Gauge),
    row("sglang", "sglang:token_usage", "kv_cache_usage_pct", K::Ratio),
    row("sglang", "sglang:cache_hit_rate", "prefix_cache_hit_pct", K::Ratio),
    row(
        "sglang",
        "sglang:num_retracted_requests_total",
        "preemptions",
        K::Counter,
    ),
    row("sglang", "sglang:prompt_tokens_total", "prompt_tokens", K::Counter),
    row(
        "sglang",
        "sglang:generation_tokens_total",
        "generation_tokens",
        K::Counter,
    ),
    row("sglang", "sglang:gen_throughput", "generation_throughput_tps", K::Gauge),
    row("sglang", "sglang:time_to_first_token_seconds", "ttft", K::Histogram),
    row("sglang", "sglang:queue_time_seconds", "queue_time", K::Histogram),
    row("llamacpp", "llamacpp:requests_processing", "requests_running", K::Gauge),
    row("llamacpp", "llamacpp:requests_deferred", "requests_waiting", K::Gauge),
    row(
        "llamacpp",
        "llamacpp:kv_cache_usage_ratio",
        "kv_cache_usage_pct",
        K::Ratio,
    ),
    row("llamacpp", "llamacpp:prompt_tokens_total", "prompt_tokens", K::Counter),
    row(
        "llamacpp",
        "llamacpp:tokens_predicted_total",
        "generation_tokens",
        K::Counter,
    ),
    row("tgi", "tgi_queue_size", "requests_waiting", K::Gauge),
    row("tgi", "tgi_batch_current_size", "requests_running", K::Gauge),
    row("tgi", "tgi_batch_current_size", "batch_size", K::Gauge),
    row("tgi", "tgi_request_input_length", "prompt_tokens", K::HistogramSum),
    row(
        "tgi",
        "tgi_request_generated_tokens",
        "generation_tokens",
        K::HistogramSum,
    ),
    row("tgi", "tgi_request_queue_duration", "queue_time", K::Histogram),
];

pub fn map(parsed: &Parsed) -> ServerReading {
    let Some(engine) = detect(parsed) else {
        return ServerReading::default();
    };
    let mut r = ServerReading {
        engine: Some(engine.to_string()),
        ..ServerReading::default()
    };
    for m in FAMILIES.iter().filter(|m| m.engine == engine) {
        if m.kind == K::Histogram {
            if let Some(slot) = histogram_slot(&mut r, m.common) {
                if slot.is_none() {
                    *slot = histogram(parsed, m.family);
                }
            }
        } else if let Some(slot) = scalar_slot(&mut r, m.common) {
            if slot.is_none() {
                *slot = scalar(parsed, m);
            }
        }
    }
    r
}

/// The engine with the most recognised families present; the earlier one in [`FAMILIES`] on a
/// tie. `None` when none is present.
fn detect(parsed: &Parsed) -> Option<&'static str> {
    let mut best: Option<(&'static str, usize)> = None;
    let mut seen: Vec<&'static str> = Vec::new();
    for m in FAMILIES {
        if seen.contains(&m.engine) {
            continue;
        }
        seen.push(m.engine);
        let mut families: Vec<&str> = FAMILIES
            .iter()
            .filter(|r| r.engine == m.engine && present(parsed, r))
            .map(|r| r.family)
            .collect();
        families.dedup();
        let n = families.len();
        if n > 0 && best.is_none_or(|(_, b)| n > b) {
            best = Some((m.engine, n));
        }
    }
    best.map(|(engine, _)| engine)
}

fn present(parsed: &Parsed, m: &Mapping) -> bool {
    let name = match m.kind {
        K::Histogram => format!("{}_bucket", m.family),
        K::HistogramSum => format!("{}_sum", m.family),
        _ => m.family.to_string(),
    };
    let found = samples_named(parsed, owner(m), &name).next().is_some();
    found
}

/// The family a sample of this row may have been grouped under besides its own name: an
/// OpenMetrics counter `x` owns `x_total`, a histogram `x` owns `x_bucket`/`x_sum`/`x_count`.
fn owner(m: &Mapping) -> &'static str {
    match m.kind {
        K::Counter => m.family.strip_suffix("_total").unwrap_or(m.family),
        _ => m.family,
    }
}

/// Samples named `name` wherever the parser put them: in the family of that very name (0.0.4
/// counters declared with `_total`, or no TYPE line at all) or in `owner`'s.
fn samples_named<'a>(parsed: &'a Parsed, owner: &str, name: &'a str) -> impl Iterator<Item = &'a Sample> + 'a {
    let own = parsed.family(name);
    let other = if owner == name { None } else { parsed.family(owner) };
    own.into_iter()
        .chain(other)
        .flat_map(|f| f.samples.iter())
        .filter(move |s| s.name == name)
}

fn scalar(parsed: &Parsed, m: &Mapping) -> Option<f64> {
    let name = match m.kind {
        K::HistogramSum => format!("{}_sum", m.family),
        _ => m.family.to_string(),
    };
    let (mut total, mut n) = (0.0, 0usize);
    for s in samples_named(parsed, owner(m), &name) {
        if !s.value.is_nan() {
            total += s.value;
            n += 1;
        }
    }
    if n == 0 {
        return None;
    }
    Some(match m.kind {
        K::Ratio => total / n as f64 * 100.0,
        K::Percent => total / n as f64,
        _ => total,
    })
}

/// All series of a histogram family, summed bucket-wise by `le`.
fn histogram(parsed: &Parsed, family: &str) -> Option<Histogram> {
    let bucket = format!("{family}_bucket");
    let mut finite: Vec<(f64, f64)> = Vec::new();
    let mut inf: Option<f64> = None;
    for s in samples_named(parsed, family, &bucket) {
        let Some(le) = s.label("le").and_then(|v| v.trim().parse::<f64>().ok()) else {
            continue;
        };
        if s.value.is_nan() || le.is_nan() {
            continue;
        }
        if le == f64::INFINITY {
            *inf.get_or_insert(0.0) += s.value;
        } else {
            finite.push((le, s.value));
        }
    }
    let sum_of = |suffix: &str| {
        let name = format!("{family}{suffix}");
        let values: Vec<f64> = samples_named(parsed, family, &name)
            .map(|s| s.value)
            .filter(|v| !v.is_nan())
            .collect();
        (!values.is_empty()).then(|| values.iter().sum::<f64>())
    };
    let (sum, count) = (sum_of("_sum"), sum_of("_count"));
    if finite.is_empty() && inf.is_none() && count.is_none() {
        return None;
    }
    finite.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut buckets: Vec<[f64; 2]> = Vec::with_capacity(finite.len());
    for (le, v) in finite {
        match buckets.last_mut() {
            Some(last) if last[0] == le => last[1] += v,
            _ => buckets.push([le, v]),
        }
    }
    Some(Histogram {
        buckets,
        sum: sum.unwrap_or(0.0),
        count: inf.or(count).unwrap_or(0.0),
    })
}

fn scalar_slot<'a>(r: &'a mut ServerReading, common: &str) -> Option<&'a mut Option<f64>> {
    Some(match common {
        "requests_running" => &mut r.requests_running,
        "requests_waiting" => &mut r.requests_waiting,
        "kv_cache_usage_pct" => &mut r.kv_cache_usage_pct,
        "prefix_cache_queries" => &mut r.prefix_cache_queries,
        "prefix_cache_hits" => &mut r.prefix_cache_hits,
        "prefix_cache_hit_pct" => &mut r.prefix_cache_hit_pct,
        "preemptions" => &mut r.preemptions,
        "prompt_tokens" => &mut r.prompt_tokens,
        "generation_tokens" => &mut r.generation_tokens,
        "generation_throughput_tps" => &mut r.generation_throughput_tps,
        "batch_size" => &mut r.batch_size,
        _ => return None,
    })
}

fn histogram_slot<'a>(r: &'a mut ServerReading, common: &str) -> Option<&'a mut Option<Histogram>> {
    match common {
        "ttft" => Some(&mut r.ttft),
        "queue_time" => Some(&mut r.queue_time),
        _ => None,
    }
}

/// The q-quantile (0..1) of the observations between two scrapes of a histogram, in its unit,
/// interpolated inside the bucket as Prometheus' `histogram_quantile` does: the lowest bucket
/// from 0 (or its bound when that is ≤ 0), and the highest finite bound when the quantile
/// falls in `+Inf`. A counter reset (any figure lower than before) or a changed bucket layout
/// reads as a restart: `after` alone. `None` when the window holds no observations.
pub fn window_percentile(before: Option<&Histogram>, after: &Histogram, q: f64) -> Option<f64> {
    if q.is_nan() {
        return None;
    }
    let (buckets, total) = window(before, after);
    quantile(&buckets, total, q.clamp(0.0, 1.0))
}

fn window(before: Option<&Histogram>, after: &Histogram) -> (Vec<[f64; 2]>, f64) {
    if let Some(b) = before {
        let same_layout =
            b.buckets.len() == after.buckets.len() && b.buckets.iter().zip(&after.buckets).all(|(x, y)| x[0] == y[0]);
        let reset = after.count < b.count || b.buckets.iter().zip(&after.buckets).any(|(x, y)| y[1] < x[1]);
        if same_layout && !reset {
            let buckets = b
                .buckets
                .iter()
                .zip(&after.buckets)
                .map(|(x, y)| [y[0], y[1] - x[1]])
                .collect();
            return (buckets, after.count - b.count);
        }
    }
    (after.buckets.clone(), after.count)
}

fn quantile(buckets: &[[f64; 2]], total: f64, q: f64) -> Option<f64> {
    // Cumulative counts made monotonic, as Prometheus does before interpolating.
    let mut cum: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    let mut running = 0.0f64;
    for &[le, c] in buckets {
        if !c.is_nan() {
            running = running.max(c);
        }
        cum.push((le, running));
    }
    let total = if total.is_nan() { running } else { total.max(running) };
    let &(highest, _) = cum.last()?;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let Some(b) = cum.iter().position(|&(_, c)| c >= rank) else {
        return Some(highest); // in the +Inf bucket
    };
    let (end, c_end) = cum[b];
    if b == 0 && end <= 0.0 {
        return Some(end);
    }
    let (start, c_start) = if b == 0 { (0.0, 0.0) } else { cum[b - 1] };
    let in_bucket = c_end - c_start;
    if in_bucket <= 0.0 {
        return Some(start);
    }
    Some(start + (end - start) * ((rank - c_start) / in_bucket))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::prom::parse;

    const DOC: &str = include_str!("../../../docs/telemetry.md");

    #[test]
    fn every_family_is_in_the_doc_and_every_common_name_is_a_field() {
        let mut r = ServerReading::default();
        for m in FAMILIES {
            assert!(
                DOC.contains(&format!("`{}`", m.family)),
                "{} is missing from docs/telemetry.md",
                m.family
            );
            let known = if m.kind == K::Histogram {
                histogram_slot(&mut r, m.common).is_some()
            } else {
                scalar_slot(&mut r, m.common).is_some()
            };
            assert!(known, "{}: no field {}", m.family, m.common);
        }
    }

    /// vLLM v1 with two data-parallel engines, in the 0.0.4 text prometheus_client writes,
    /// during the 0.9–0.10 window where deprecated names are exposed beside the new ones.
    const VLLM: &str = r#"# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 3.0
vllm:num_requests_running{engine="1",model_name="m"} 2.0
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="m"} 1.0
vllm:num_requests_waiting{engine="1",model_name="m"} NaN
# TYPE vllm:gpu_cache_usage_perc gauge
vllm:gpu_cache_usage_perc{engine="0",model_name="m"} 0.9
vllm:gpu_cache_usage_perc{engine="1",model_name="m"} 0.9
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.5
vllm:kv_cache_usage_perc{engine="1",model_name="m"} 0.25
# TYPE vllm:gpu_prefix_cache_queries_total counter
vllm:gpu_prefix_cache_queries_total{engine="0",model_name="m"} 999.0
# TYPE vllm:prefix_cache_queries_total counter
vllm:prefix_cache_queries_total{engine="0",model_name="m"} 100.0
vllm:prefix_cache_queries_total{engine="1",model_name="m"} 50.0
# TYPE vllm:prefix_cache_hits_total counter
vllm:prefix_cache_hits_total{engine="0",model_name="m"} 40.0
vllm:prefix_cache_hits_total{engine="1",model_name="m"} 10.0
# TYPE vllm:num_preemptions_total counter
vllm:num_preemptions_total{engine="0",model_name="m"} 2.0
# TYPE vllm:prompt_tokens_total counter
vllm:prompt_tokens_total{engine="0",model_name="m"} 1000.0
vllm:prompt_tokens_total{engine="1",model_name="m"} 500.0
# TYPE vllm:generation_tokens_total counter
vllm:generation_tokens_total{engine="0",model_name="m"} 300.0
vllm:generation_tokens_total{engine="1",model_name="m"} 200.0
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_sum{engine="0",model_name="m"} 1.5
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.1",model_name="m"} 2.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="1.0",model_name="m"} 5.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="+Inf",model_name="m"} 6.0
vllm:time_to_first_token_seconds_count{engine="0",model_name="m"} 6.0
vllm:time_to_first_token_seconds_sum{engine="1",model_name="m"} 0.5
vllm:time_to_first_token_seconds_bucket{engine="1",le="0.1",model_name="m"} 1.0
vllm:time_to_first_token_seconds_bucket{engine="1",le="1.0",model_name="m"} 3.0
vllm:time_to_first_token_seconds_bucket{engine="1",le="+Inf",model_name="m"} 3.0
vllm:time_to_first_token_seconds_count{engine="1",model_name="m"} 3.0
"#;

    #[test]
    fn vllm_sums_engines_and_prefers_current_names() {
        let r = map(&parse(VLLM));
        assert_eq!(r.engine.as_deref(), Some("vllm"));
        assert_eq!(r.requests_running, Some(5.0));
        assert_eq!(r.requests_waiting, Some(1.0), "NaN is skipped");
        assert_eq!(r.kv_cache_usage_pct, Some(37.5), "mean of the new gauge");
        assert_eq!(r.prefix_cache_queries, Some(150.0), "not the deprecated one");
        assert_eq!(r.prefix_cache_hits, Some(50.0));
        assert_eq!(r.prefix_cache_hit_pct, None);
        assert_eq!(r.preemptions, Some(2.0));
        assert_eq!(r.prompt_tokens, Some(1500.0));
        assert_eq!(r.generation_tokens, Some(500.0));
        assert_eq!(
            r.ttft,
            Some(Histogram {
                buckets: vec![[0.1, 3.0], [1.0, 8.0]],
                sum: 2.0,
                count: 9.0,
            })
        );
        assert_eq!(r.queue_time, None);
        assert_eq!(r.batch_size, None);
    }

    #[test]
    fn vllm_older_names_when_the_new_ones_are_absent() {
        let text = "# TYPE vllm:gpu_cache_usage_perc gauge\n\
                    vllm:gpu_cache_usage_perc{model_name=\"m\"} 0.42\n\
                    # TYPE vllm:gpu_prefix_cache_hit_rate gauge\n\
                    vllm:gpu_prefix_cache_hit_rate{model_name=\"m\"} 0.8\n\
                    # TYPE vllm:avg_generation_throughput_toks_per_s gauge\n\
                    vllm:avg_generation_throughput_toks_per_s{model_name=\"m\"} 123.0\n";
        let r = map(&parse(text));
        assert_eq!(r.engine.as_deref(), Some("vllm"));
        assert!((r.kv_cache_usage_pct.unwrap() - 42.0).abs() < 1e-9);
        assert!((r.prefix_cache_hit_pct.unwrap() - 80.0).abs() < 1e-9);
        assert_eq!(r.generation_throughput_tps, Some(123.0));
    }

    #[test]
    fn counters_read_the_openmetrics_way_and_untyped() {
        // OpenMetrics declares the counter without `_total`.
        let om = "# TYPE vllm:prompt_tokens counter\nvllm:prompt_tokens_total{engine=\"0\"} 7\n\
                  vllm:prompt_tokens_created{engine=\"0\"} 1.7e9\n# EOF\n";
        assert_eq!(map(&parse(om)).prompt_tokens, Some(7.0));
        // No TYPE lines at all: recognised by name.
        let bare = "vllm:generation_tokens_total{engine=\"0\"} 4\n\
                    vllm:generation_tokens_total{engine=\"1\"} 5\n\
                    vllm:time_to_first_token_seconds_bucket{le=\"0.5\"} 1\n\
                    vllm:time_to_first_token_seconds_bucket{le=\"+Inf\"} 2\n\
                    vllm:time_to_first_token_seconds_sum 0.9\n";
        let r = map(&parse(bare));
        assert_eq!(r.engine.as_deref(), Some("vllm"));
        assert_eq!(r.generation_tokens, Some(9.0));
        let ttft = r.ttft.unwrap();
        assert_eq!(ttft.buckets, vec![[0.5, 1.0]]);
        assert_eq!((ttft.sum, ttft.count), (0.9, 2.0));
    }

    #[test]
    fn sglang() {
        let text = r#"# HELP sglang:num_running_reqs The number of running requests.
# TYPE sglang:num_running_reqs gauge
sglang:num_running_reqs{dp_rank="0",model_name="m"} 8.0
sglang:num_running_reqs{dp_rank="1",model_name="m"} 4.0
# TYPE sglang:num_queue_reqs gauge
sglang:num_queue_reqs{dp_rank="0",model_name="m"} 2.0
# TYPE sglang:token_usage gauge
sglang:token_usage{dp_rank="0",model_name="m"} 0.3
sglang:token_usage{dp_rank="1",model_name="m"} 0.1
# TYPE sglang:cache_hit_rate gauge
sglang:cache_hit_rate{dp_rank="0",model_name="m"} 0.5
# TYPE sglang:gen_throughput gauge
sglang:gen_throughput{dp_rank="0",model_name="m"} 100.0
sglang:gen_throughput{dp_rank="1",model_name="m"} 50.0
# TYPE sglang:num_retracted_requests_total counter
sglang:num_retracted_requests_total{model_name="m"} 3.0
# TYPE sglang:prompt_tokens_total counter
sglang:prompt_tokens_total{model_name="m"} 900.0
# TYPE sglang:generation_tokens_total counter
sglang:generation_tokens_total{model_name="m"} 400.0
# TYPE sglang:queue_time_seconds histogram
sglang:queue_time_seconds_bucket{le="0.0",model_name="m"} 1.0
sglang:queue_time_seconds_bucket{le="0.1",model_name="m"} 3.0
sglang:queue_time_seconds_bucket{le="+Inf",model_name="m"} 4.0
sglang:queue_time_seconds_sum{model_name="m"} 0.6
sglang:queue_time_seconds_count{model_name="m"} 4.0
"#;
        let r = map(&parse(text));
        assert_eq!(r.engine.as_deref(), Some("sglang"));
        assert_eq!(r.requests_running, Some(12.0));
        assert_eq!(r.requests_waiting, Some(2.0));
        assert!((r.kv_cache_usage_pct.unwrap() - 20.0).abs() < 1e-9);
        assert_eq!(r.prefix_cache_hit_pct, Some(50.0));
        assert_eq!(r.generation_throughput_tps, Some(150.0));
        assert_eq!(r.preemptions, Some(3.0));
        assert_eq!(r.prompt_tokens, Some(900.0));
        assert_eq!(r.generation_tokens, Some(400.0));
        let q = r.queue_time.unwrap();
        assert_eq!(q.buckets, vec![[0.0, 1.0], [0.1, 3.0]]);
        assert_eq!(q.count, 4.0);
        assert_eq!(r.ttft, None);
    }

    #[test]
    fn llamacpp_with_and_without_the_kv_gauge() {
        let newer = "# HELP llamacpp:prompt_tokens_total Number of prompt tokens processed.\n\
                     # TYPE llamacpp:prompt_tokens_total counter\nllamacpp:prompt_tokens_total 6886\n\
                     # TYPE llamacpp:tokens_predicted_total counter\nllamacpp:tokens_predicted_total 3469\n\
                     # TYPE llamacpp:predicted_tokens_seconds gauge\nllamacpp:predicted_tokens_seconds 2.37\n\
                     # TYPE llamacpp:requests_processing gauge\nllamacpp:requests_processing 1\n\
                     # TYPE llamacpp:requests_deferred gauge\nllamacpp:requests_deferred 0\n";
        let r = map(&parse(newer));
        assert_eq!(r.engine.as_deref(), Some("llamacpp"));
        assert_eq!(r.prompt_tokens, Some(6886.0));
        assert_eq!(r.generation_tokens, Some(3469.0));
        assert_eq!(r.requests_running, Some(1.0));
        assert_eq!(r.requests_waiting, Some(0.0));
        assert_eq!(r.kv_cache_usage_pct, None);
        assert_eq!(r.generation_throughput_tps, None, "a per-slot figure, not mapped");
        let older = format!("{newer}# TYPE llamacpp:kv_cache_usage_ratio gauge\nllamacpp:kv_cache_usage_ratio 0.63\n");
        assert!((map(&parse(&older)).kv_cache_usage_pct.unwrap() - 63.0).abs() < 1e-9);
    }

    #[test]
    fn tgi() {
        // metrics-exporter-prometheus writes counters without `_total`.
        let text = "# TYPE tgi_queue_size gauge\ntgi_queue_size 4\n\
                    # TYPE tgi_batch_current_size gauge\ntgi_batch_current_size 6\n\
                    # TYPE tgi_request_count counter\ntgi_request_count 10\n\
                    # TYPE tgi_request_input_length histogram\n\
                    tgi_request_input_length_bucket{le=\"100\"} 7\n\
                    tgi_request_input_length_bucket{le=\"+Inf\"} 10\n\
                    tgi_request_input_length_sum 2500\ntgi_request_input_length_count 10\n\
                    # TYPE tgi_request_generated_tokens histogram\n\
                    tgi_request_generated_tokens_bucket{le=\"+Inf\"} 9\n\
                    tgi_request_generated_tokens_sum 900\ntgi_request_generated_tokens_count 9\n\
                    # TYPE tgi_request_queue_duration histogram\n\
                    tgi_request_queue_duration_bucket{le=\"0.001\"} 5\n\
                    tgi_request_queue_duration_bucket{le=\"0.01\"} 9\n\
                    tgi_request_queue_duration_bucket{le=\"+Inf\"} 9\n\
                    tgi_request_queue_duration_sum 0.02\ntgi_request_queue_duration_count 9\n";
        let r = map(&parse(text));
        assert_eq!(r.engine.as_deref(), Some("tgi"));
        assert_eq!(r.requests_waiting, Some(4.0));
        assert_eq!(r.requests_running, Some(6.0));
        assert_eq!(r.batch_size, Some(6.0));
        assert_eq!(r.prompt_tokens, Some(2500.0));
        assert_eq!(r.generation_tokens, Some(900.0));
        let q = r.queue_time.unwrap();
        assert_eq!(q.buckets, vec![[0.001, 5.0], [0.01, 9.0]]);
        assert_eq!((q.sum, q.count), (0.02, 9.0));
    }

    #[test]
    fn no_engine_and_most_families_wins() {
        assert_eq!(
            map(&parse("up 1\nprocess_cpu_seconds_total 3\n")),
            ServerReading::default()
        );
        assert_eq!(map(&parse("")), ServerReading::default());
        // A proxy in front of vLLM that adds one TGI-looking gauge: vLLM still wins.
        let mixed = "tgi_queue_size 1\nvllm:num_requests_running 2\nvllm:num_requests_waiting 0\n";
        let r = map(&parse(mixed));
        assert_eq!(r.engine.as_deref(), Some("vllm"));
        assert_eq!(r.requests_waiting, Some(0.0), "only the winning engine's rows");
        // Only NaN: the family is there, the figure is not.
        let r = map(&parse("vllm:num_requests_running NaN\n"));
        assert_eq!(r.engine.as_deref(), Some("vllm"));
        assert_eq!(r.requests_running, None);
    }

    fn h(buckets: &[[f64; 2]], count: f64) -> Histogram {
        Histogram {
            buckets: buckets.to_vec(),
            sum: 0.0,
            count,
        }
    }

    #[test]
    fn percentile_of_one_scrape() {
        let after = h(&[[0.1, 2.0], [0.5, 6.0], [1.0, 8.0]], 10.0);
        // (q, want): rank = q·10.
        let cases: &[(f64, f64)] = &[
            (0.0, 0.0),
            (0.1, 0.05),                    // rank 1 of 2 in (0, 0.1]
            (0.2, 0.1),                     // exactly the first bound
            (0.5, 0.1 + 0.4 * (3.0 / 4.0)), // rank 5: 3 of 4 into (0.1, 0.5]
            (0.8, 1.0),                     // rank 8: the top of (0.5, 1]
            (0.7, 0.5 + 0.5 * (1.0 / 2.0)), // rank 7
            (0.9, 1.0),                     // in +Inf: the highest finite bound
            (1.0, 1.0),
            (-3.0, 0.0), // clamped
        ];
        for &(q, want) in cases {
            let got = window_percentile(None, &after, q).unwrap();
            assert!((got - want).abs() < 1e-12, "q={q}: {got} != {want}");
        }
        assert_eq!(window_percentile(None, &after, f64::NAN), None);
    }

    #[test]
    fn percentile_of_a_window() {
        let before = h(&[[0.1, 1.0], [0.5, 2.0], [1.0, 2.0]], 2.0);
        let after = h(&[[0.1, 2.0], [0.5, 6.0], [1.0, 8.0]], 10.0);
        // Delta: [0.1: 1, 0.5: 4, 1.0: 6], count 8. Median: rank 4 → 3 of 3 into (0.1, 0.5].
        let p50 = window_percentile(Some(&before), &after, 0.5).unwrap();
        assert!((p50 - 0.5).abs() < 1e-12, "{p50}");
        // p25: rank 2 → 1 of 3 into (0.1, 0.5].
        let p25 = window_percentile(Some(&before), &after, 0.25).unwrap();
        assert!((p25 - (0.1 + 0.4 / 3.0)).abs() < 1e-12, "{p25}");
        // p90: rank 7.2 > 6 → +Inf bucket.
        assert_eq!(window_percentile(Some(&before), &after, 0.9), Some(1.0));
        // Nothing new between the scrapes.
        assert_eq!(window_percentile(Some(&after), &after, 0.5), None);
        // A reset: `after` alone.
        let restarted = h(&[[0.1, 1.0], [0.5, 1.0], [1.0, 1.0]], 1.0);
        assert_eq!(
            window_percentile(Some(&after), &restarted, 0.5),
            Some(0.05),
            "rank 0.5 of 1 in (0, 0.1]"
        );
        // A changed layout: `after` alone too.
        let other = h(&[[0.2, 1.0]], 1.0);
        assert_eq!(window_percentile(Some(&other), &after, 0.2), Some(0.1));
    }

    #[test]
    fn percentile_edges() {
        assert_eq!(window_percentile(None, &Histogram::default(), 0.5), None);
        // Only +Inf observations and no finite bound.
        assert_eq!(window_percentile(None, &h(&[], 5.0), 0.5), None);
        // All observations above every bound.
        assert_eq!(window_percentile(None, &h(&[[1.0, 0.0]], 5.0), 0.5), Some(1.0));
        // A bound of 0 as the lowest bucket (SGLang's queue time): not interpolated below 0.
        assert_eq!(
            window_percentile(None, &h(&[[0.0, 4.0], [1.0, 4.0]], 4.0), 0.5),
            Some(0.0)
        );
        // Non-monotonic input is made monotonic first.
        let odd = h(&[[0.1, 4.0], [0.5, 2.0], [1.0, 8.0]], 8.0);
        let p = window_percentile(None, &odd, 0.75).unwrap();
        assert!((p - (0.5 + 0.5 * (2.0 / 4.0))).abs() < 1e-12, "{p}");
    }
}
