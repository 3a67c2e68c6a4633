//! Why the server behaved as it did, in plain sentences: its queue and KV cache past the
//! knee, preemptions, a prefix cache that never hits, token counts that disagree with ours,
//! energy per token, and a stress run's drift beside the GPUs' heat and throttling
//! (docs/telemetry.md, "Sentences").

use super::StepStats;
use crate::i18n::{tr, Msg};
use crate::monitor::window::TOKEN_MISMATCH_PCT;
use crate::monitor::{GpuWindow, ServerWindow};
use crate::report::summary::Interval;

/// KV-cache use at or above which the server counts as memory-bound.
pub const KV_FULL_PCT: f64 = 90.0;
/// A prefix-cache hit rate at or below which prefix caching looks switched off.
pub const PREFIX_OFF_PCT: f64 = 1.0;
/// The share of a window a GPU must be slowed for power or heat before it is said.
pub const THROTTLE_SAID_PCT: f64 = 5.0;

/// Every telemetry sentence for a run's steps (in load order per test) and, for a stress run,
/// its intervals.
pub fn sentences(steps: &[StepStats], prefix_tokens: Option<u64>, intervals: Option<&[Interval]>) -> Vec<String> {
    let mut curve: Vec<&StepStats> = steps.iter().collect();
    curve.sort_by(|a, b| a.load.value().total_cmp(&b.load.value()));
    let mut out: Vec<String> = [
        queue_sentence(&curve),
        preemption_sentence(&curve),
        prefix_sentence(&curve, prefix_tokens),
        curve.iter().find_map(|s| token_mismatch(s)),
        outside_engine_sentence(&curve),
        energy_sentence(&curve),
        throttle_sentence(&curve),
    ]
    .into_iter()
    .flatten()
    .collect();
    if let Some(intervals) = intervals {
        out.extend(stress_sentence(intervals));
    }
    out
}

fn server(s: &StepStats) -> Option<&ServerWindow> {
    s.server_metrics.as_ref()
}

/// From the first step where the server queued: memory-bound (a full KV cache) or batch-bound.
fn queue_sentence(curve: &[&StepStats]) -> Option<String> {
    let first = curve
        .iter()
        .position(|s| server(s).and_then(|w| w.requests_waiting).is_some_and(|m| m.max >= 1.0))?;
    let from = &curve[first..];
    let max_of =
        |f: fn(&ServerWindow) -> Option<f64>| from.iter().filter_map(|s| server(s).and_then(f)).reduce(f64::max);
    let waiting = max_of(|w| w.requests_waiting.map(|m| m.max))?;
    let point = match first {
        0 => tr(Msg::AtPoint, &[("point", &curve[0].load.in_words())]),
        i => tr(Msg::PastPoint, &[("point", &curve[i - 1].load.in_words())]),
    };
    let fmt0 = |v: f64| format!("{v:.0}");
    match max_of(|w| w.kv_cache_usage_pct.map(|m| m.max)) {
        Some(kv) if kv >= KV_FULL_PCT => Some(tr(
            Msg::ServerMemoryBound,
            &[("when", &point), ("waiting", &fmt0(waiting)), ("kv", &fmt0(kv))],
        )),
        _ => {
            let running = max_of(|w| w.requests_running.map(|m| m.max))?;
            Some(tr(
                Msg::ServerBatchBound,
                &[
                    ("when", &point),
                    ("waiting", &fmt0(waiting)),
                    ("running", &fmt0(running)),
                ],
            ))
        }
    }
}

fn preemption_sentence(curve: &[&StepStats]) -> Option<String> {
    let s = curve
        .iter()
        .find(|s| server(s).and_then(|w| w.preemptions).is_some_and(|p| p > 0))?;
    let n = server(s)?.preemptions?;
    Some(tr(Msg::ServerPreempted, &[("n", &n), ("point", &s.load.in_words())]))
}

/// Shared prefixes that the server never found in its cache.
fn prefix_sentence(curve: &[&StepStats], prefix_tokens: Option<u64>) -> Option<String> {
    let tokens = prefix_tokens.filter(|t| *t > 0)?;
    let rates: Vec<f64> = curve
        .iter()
        .filter_map(|s| server(s))
        .filter(|w| w.prefix_cache_queries.is_none_or(|q| q > 0))
        .filter_map(|w| w.prefix_cache_hit_pct)
        .collect();
    let best = rates.iter().copied().reduce(f64::max)?;
    (best <= PREFIX_OFF_PCT).then(|| {
        tr(
            Msg::ServerPrefixOff,
            &[("pct", &format!("{best:.0}")), ("tokens", &group_thousands(tokens))],
        )
    })
}

/// The server's token counters against ours, when they differ by more than 2%.
pub fn token_mismatch(s: &StepStats) -> Option<String> {
    token_mismatch_at(&s.load.in_words(), server(s)?)
}

pub fn token_mismatch_at(point: &str, w: &ServerWindow) -> Option<String> {
    let check = w.token_check.as_ref().filter(|c| c.mismatch)?;
    let generation_off = check.generation_diff_pct.is_some_and(|d| d.abs() > TOKEN_MISMATCH_PCT);
    let (what, server, ours, diff) = if generation_off {
        (
            Msg::TokensGenerated,
            w.generation_tokens?,
            check.ours_generation_tokens,
            check.generation_diff_pct?,
        )
    } else {
        (
            Msg::TokensPrompt,
            w.prompt_tokens?,
            check.ours_prompt_tokens,
            check.prompt_diff_pct?,
        )
    };
    Some(tr(
        Msg::TokenMismatch,
        &[
            ("point", &point),
            ("what", &tr(what, &[])),
            ("server", &server),
            ("ours", &ours),
            ("diff", &format!("{diff:+.1}")),
        ],
    ))
}

/// Time to first token spent outside the engine, when it is a real share of ours.
fn outside_engine_sentence(curve: &[&StepStats]) -> Option<String> {
    let s = curve.first()?;
    let w = server(s)?;
    let outside = w.ttft_p50_outside_ms?;
    let ours = s.ttft_ms?.p50;
    let engine = w.ttft_ms?.p50;
    (outside > 5.0_f64.max(0.1 * ours)).then(|| {
        tr(
            Msg::ServerTtftOutside,
            &[
                ("point", &s.load.in_words()),
                ("ours", &format!("{ours:.0}")),
                ("engine", &format!("{engine:.0}")),
                ("outside", &format!("{outside:.0}")),
            ],
        )
    })
}

fn gpu(s: &StepStats) -> Option<&GpuWindow> {
    s.gpu.as_ref()
}

/// The most energy-efficient step.
fn energy_sentence(curve: &[&StepStats]) -> Option<String> {
    let best = curve
        .iter()
        .filter(|s| gpu(s).and_then(|g| g.tokens_per_joule).is_some())
        .max_by(|a, b| {
            let t = |s: &StepStats| gpu(s).and_then(|g| g.tokens_per_joule).unwrap_or(0.0);
            t(a).total_cmp(&t(b))
        })?;
    let g = gpu(best)?;
    let per_request = g
        .joules_per_request
        .map(|j| tr(Msg::EnergyPerRequest, &[("j", &format!("{j:.0}"))]))
        .unwrap_or_default();
    Some(tr(
        Msg::EnergyBest,
        &[
            ("point", &best.load.in_words()),
            ("tpj", &format!("{:.2}", g.tokens_per_joule?)),
            ("kj", &format!("{:.1}", g.energy_j? / 1000.0)),
            ("per_request", &per_request),
        ],
    ))
}

/// The worst GPU throttling of any step.
fn throttle_sentence(curve: &[&StepStats]) -> Option<String> {
    let (s, d, pct) = curve
        .iter()
        .flat_map(|s| {
            gpu(s)
                .into_iter()
                .flat_map(|g| &g.devices)
                .filter_map(move |d| d.throttled_pct.map(|p| (*s, d, p)))
        })
        .max_by(|a, b| a.2.total_cmp(&b.2))?;
    (pct >= THROTTLE_SAID_PCT).then(|| {
        tr(
            Msg::GpuThrottledAt,
            &[
                ("gpu", &d.index),
                ("why", &throttle_cause(&d.throttle_reasons_pct)),
                ("pct", &format!("{pct:.0}")),
                ("point", &s.load.in_words()),
            ],
        )
    })
}

/// "for power" or "for heat", by which reasons were active longest.
fn throttle_cause(reasons: &std::collections::BTreeMap<String, f64>) -> String {
    use crate::monitor::gpu::{is_power_reason, is_thermal_reason};
    let sum = |f: fn(&str) -> bool| reasons.iter().filter(|(n, _)| f(n)).map(|(_, p)| p).sum::<f64>();
    tr(
        if sum(is_thermal_reason) > sum(is_power_reason) {
            Msg::ThrottleForHeat
        } else {
            Msg::ThrottleForPower
        },
        &[],
    )
}

/// A stress run's throughput from its first to its last intervals, beside the GPU that was
/// slowed most and its temperature.
fn stress_sentence(intervals: &[Interval]) -> Option<String> {
    if intervals.len() < 2 || intervals.iter().all(|i| i.gpu.is_none()) {
        return None;
    }
    let k = (intervals.len() / 4).clamp(1, 3);
    let (first, last) = (&intervals[..k], &intervals[intervals.len() - k..]);
    let tput = |slice: &[Interval]| {
        mean(
            slice
                .iter()
                .map(|i| i.tests.iter().map(|s| s.output_throughput_tps).sum()),
        )
    };
    let (a, b) = (tput(first)?, tput(last)?);
    let change = if a > 0.0 { 100.0 * (b - a) / a } else { 0.0 };
    // The GPU slowed for longest over the whole run.
    let devices = intervals.iter().filter_map(|i| i.gpu.as_ref()).flat_map(|g| &g.devices);
    let mut worst: Option<(u32, f64)> = None;
    for index in devices.clone().map(|d| d.index) {
        let share = mean(
            devices
                .clone()
                .filter(|d| d.index == index)
                .filter_map(|d| d.throttled_pct),
        )
        .unwrap_or(0.0);
        if worst.is_none_or(|(_, w)| share > w) {
            worst = Some((index, share));
        }
    }
    let (gpu_index, throttled) = worst?;
    let temp = |slice: &[Interval]| {
        mean(
            slice
                .iter()
                .filter_map(|i| i.gpu.as_ref())
                .flat_map(|g| &g.devices)
                .filter(|d| d.index == gpu_index)
                .filter_map(|d| d.temperature_c.map(|t| t.max)),
        )
    };
    let how = tr(
        if change <= -5.0 {
            Msg::DriftThroughputFell
        } else if change >= 5.0 {
            Msg::DriftThroughputRose
        } else {
            Msg::DriftThroughputHeld
        },
        &[("pct", &format!("{:.0}", change.abs())), ("k", &k)],
    );
    let reasons = intervals
        .iter()
        .filter_map(|i| i.gpu.as_ref())
        .flat_map(|g| &g.devices)
        .filter(|d| d.index == gpu_index)
        .flat_map(|d| d.throttle_reasons_pct.clone())
        .collect();
    let heat = match (temp(first), temp(last)) {
        (Some(t0), Some(t1)) => tr(
            Msg::DriftGpuTemperature,
            &[("from", &format!("{t0:.0}")), ("to", &format!("{t1:.0}"))],
        ),
        _ => String::new(),
    };
    let gpu_part = if throttled >= 1.0 {
        tr(
            Msg::DriftGpuThrottled,
            &[
                ("gpu", &gpu_index),
                ("why", &throttle_cause(&reasons)),
                ("pct", &format!("{throttled:.0}")),
                ("heat", &heat),
            ],
        )
    } else {
        tr(Msg::DriftGpuNotThrottled, &[("gpu", &gpu_index), ("heat", &heat)])
    };
    Some(format!("{how}{gpu_part}"))
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let v: Vec<f64> = values.filter(|v| v.is_finite()).collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// 2000 → "2,000".
fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
