//! Answers from the scaling curve: where throughput stops growing, what load meets a speed
//! target or an SLO, where errors start, and the original script's four recommendations — each
//! a plain sentence with the numbers behind it. Steps are named by their load point
//! ("concurrency 16", "8 req/s").

use super::slo::{fmt_ms, Slo};
use super::step::StepStats;
use crate::i18n::{tr, Msg};
use crate::workload::TestKind;

/// A step adds less than this much throughput over the previous one: the knee.
pub const KNEE_GAIN: f64 = 0.05;

/// Fills `scaling_efficiency_pct` of each step against the first step of the same test and
/// the same kind of load point: (throughput / load value) relative to that first step.
pub fn fill_scaling_efficiency(steps: &mut [StepStats]) {
    let per_unit = |s: &StepStats| throughput(s) / s.load.value().max(f64::MIN_POSITIVE);
    for test in [TestKind::Input, TestKind::Output, TestKind::Multimodal] {
        for axis in [crate::load::LoadAxis::Concurrency, crate::load::LoadAxis::Rate] {
            let curve = |s: &StepStats| s.test == test && s.load.axis() == axis;
            // The first step with throughput is the base; with --repeat, the mean over the
            // repetitions of its load point (docs/metrics.md, "Repeats").
            let Some(first) = steps.iter().position(|s| curve(s) && per_unit(s) > 0.0) else {
                continue;
            };
            let base_point = steps[first].load;
            let base = match steps[first].repeat {
                None => per_unit(&steps[first]),
                Some(_) => {
                    let reps: Vec<f64> = steps
                        .iter()
                        .filter(|s| curve(s) && s.load == base_point && s.repeat.is_some())
                        .map(per_unit)
                        .filter(|v| *v > 0.0)
                        .collect();
                    reps.iter().sum::<f64>() / reps.len() as f64
                }
            };
            for step in steps[first..].iter_mut().filter(|s| curve(s)) {
                step.scaling_efficiency_pct = Some(100.0 * per_unit(step) / base);
            }
        }
    }
}

/// The throughput that matters for a test: prompt tokens for the input test, output tokens else.
pub fn throughput(step: &StepStats) -> f64 {
    match step.test {
        _ if step.is_embeddings() => step.prompt_throughput_tps,
        TestKind::Input => step.prompt_throughput_tps,
        _ => step.output_throughput_tps,
    }
}

fn unit(test: TestKind) -> &'static str {
    match test {
        TestKind::Input => "prompt tok/s",
        _ => "tok/s",
    }
}

/// Recommendations for every test; with an SLO, which load meets it.
pub fn recommend(steps: &[StepStats], min_tps: Option<f64>, slo: Option<&Slo>) -> Vec<String> {
    let mut out = Vec::new();
    // First: a client-bound step measured llm-bench, so every other sentence depends on it.
    let bound: Vec<String> = steps
        .iter()
        .filter(|s| s.client_bound)
        .map(|s| tr(Msg::TestAtPoint, &[("test", &s.test), ("point", &s.load.in_words())]))
        .collect();
    if !bound.is_empty() {
        out.push(tr(Msg::AdviceClientBound, &[("steps", &bound.join(", "))]));
    }
    for test in [TestKind::Input, TestKind::Output, TestKind::Multimodal] {
        let mut curve: Vec<&StepStats> = steps.iter().filter(|s| s.test == test).collect();
        if curve.is_empty() {
            continue;
        }
        // The curve in load order (a capacity search probes out of order; a sort is stable).
        curve.sort_by(|a, b| a.load.value().total_cmp(&b.load.value()));
        out.extend(recommend_test(test, &curve, min_tps, slo));
    }
    out
}

fn recommend_test(test: TestKind, curve: &[&StepStats], min_tps: Option<f64>, slo: Option<&Slo>) -> Vec<String> {
    let name = test.name();
    let mut out: Vec<String> = [
        errors_sentence(curve),
        cache_sentence(curve),
        saturation_sentence(curve),
    ]
    .into_iter()
    .flatten()
    .map(|s| format!("[{name}] {s}"))
    .collect();
    let measured: Vec<&StepStats> = curve.iter().copied().filter(|s| s.requests_ok > 0).collect();
    if measured.is_empty() {
        out.push(tr(Msg::NothingSucceeded, &[("test", &name)]));
        return out;
    }
    if measured.iter().any(|s| s.is_embeddings()) {
        // Embeddings: input tokens per second, and nothing about generation.
        let mut sentences = vec![best_sentence(TestKind::Input, &measured)];
        sentences.extend(knee_sentence(TestKind::Input, &measured));
        if let Some(slo) = slo {
            sentences.extend(slo_sentence(slo, &measured));
        }
        out.extend(sentences.into_iter().map(|s| format!("[{name}] {s}")));
        return out;
    }
    let mut sentences = vec![best_sentence(test, &measured)];
    sentences.extend(knee_sentence(test, &measured));
    if let Some(slo) = slo {
        sentences.extend(slo_sentence(slo, &measured));
    }
    if let (Some(target), true) = (min_tps, test != TestKind::Input) {
        sentences.push(min_tps_sentence(target, &measured));
    }
    if test != TestKind::Input {
        sentences.extend(original_advice(&measured));
    }
    out.extend(sentences.into_iter().map(|s| format!("[{name}] {s}")));
    out
}

/// Errors first: they make every other figure of a step suspect.
fn errors_sentence(curve: &[&StepStats]) -> Option<String> {
    let first_bad = curve.iter().find(|s| s.requests_failed > 0)?;
    let (class, count) = first_bad
        .errors
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(c, n)| (c.as_str(), *n))
        .unwrap_or(("unknown", 0));
    Some(tr(
        Msg::AdviceErrorsStart,
        &[
            ("point", &first_bad.load.in_words()),
            ("failed", &first_bad.requests_failed),
            ("total", &first_bad.requests()),
            ("class", &class),
            ("count", &count),
        ],
    ))
}

fn cache_sentence(curve: &[&StepStats]) -> Option<String> {
    let cached: u64 = curve.iter().map(|s| s.prompt_cache_hits).sum();
    (cached > 0).then(|| {
        let ok: u64 = curve.iter().map(|s| s.requests_ok).sum();
        tr(Msg::AdviceCache, &[("cached", &cached), ("ok", &ok)])
    })
}

fn saturation_sentence(curve: &[&StepStats]) -> Option<String> {
    let Some(first) = curve.iter().find(|s| s.saturated) else {
        return overload_sentence(curve);
    };
    Some(tr(
        Msg::AdviceSaturated,
        &[
            ("point", &first.load.in_words()),
            ("limit", &first.backlog_limit.unwrap_or(0)),
        ],
    ))
}

/// Open loop past capacity without reaching the backlog limit: requests are sent faster than
/// the server completes them.
fn overload_sentence(curve: &[&StepStats]) -> Option<String> {
    let first = curve.iter().find(|s| {
        s.window.is_some()
            && s.achieved_rps
                .is_some_and(|sent| sent > 0.0 && s.request_throughput_rps < 0.9 * sent)
    })?;
    Some(tr(
        Msg::AdviceOverload,
        &[
            ("point", &first.load.in_words()),
            ("done", &format!("{:.1}", first.request_throughput_rps)),
            ("sent", &format!("{:.1}", first.achieved_rps.unwrap_or(0.0))),
        ],
    ))
}

/// A timed open-loop step whose server completed under 90% of the requests sent.
fn overloaded(s: &StepStats, sent: f64) -> bool {
    s.window.is_some() && sent > 0.0 && s.request_throughput_rps < 0.9 * sent
}

fn speed(s: &StepStats) -> Option<f64> {
    s.per_conn_tps.map(|p| p.mean)
}

fn best_sentence(test: TestKind, measured: &[&StepStats]) -> String {
    let best = measured
        .iter()
        .max_by(|a, b| throughput(a).total_cmp(&throughput(b)))
        .expect("not empty");
    let best_speed = match (test, speed(best)) {
        (TestKind::Input, _) => best
            .prefill_tps
            .map(|p| tr(Msg::AdviceBestPrefill, &[("tps", &format!("{:.0}", p.mean))]))
            .unwrap_or_default(),
        (_, Some(v)) => tr(Msg::AdviceBestConnection, &[("tps", &format!("{v:.1}"))]),
        _ => String::new(),
    };
    tr(
        Msg::AdviceBest,
        &[
            ("tps", &format!("{:.1}", throughput(best))),
            ("unit", &unit(test)),
            ("point", &best.load.in_words()),
            ("speed", &best_speed),
        ],
    )
}

/// The knee of a curve of successful steps in load order: the index of the step after which
/// throughput grows by less than [`KNEE_GAIN`]; `None` while it still grows (or with fewer than
/// two steps). The recommendations and the report's charts both use it.
pub fn knee_index(measured: &[&StepStats]) -> Option<usize> {
    measured
        .windows(2)
        .position(|w| throughput(w[1]) < throughput(w[0]) * (1.0 + KNEE_GAIN))
}

/// The knee as the pair of neighbouring steps: the knee and the step that adds too little.
pub fn knee<'a>(measured: &[&'a StepStats]) -> Option<[&'a StepStats; 2]> {
    knee_index(measured).map(|i| [measured[i], measured[i + 1]])
}

/// Where throughput stops growing, among the steps of one kind of load point.
fn knee_sentence(test: TestKind, measured: &[&StepStats]) -> Option<String> {
    if measured.len() < 2 {
        return None;
    }
    let u = unit(test);
    let more = match measured[0].load {
        crate::load::LoadPoint::Concurrency(_) => tr(Msg::AdviceMoreConcurrency, &[]),
        crate::load::LoadPoint::Rate(_) => tr(Msg::AdviceHigherRate, &[]),
    };
    Some(match knee(measured) {
        Some(w) => {
            let gain = if throughput(w[0]) > 0.0 {
                100.0 * (throughput(w[1]) / throughput(w[0]) - 1.0)
            } else {
                0.0
            };
            // A change within the knee's margin either way is "no growth", not a fall.
            let margin = format!("{:.0}", KNEE_GAIN * 100.0);
            let change = if gain <= -100.0 * KNEE_GAIN {
                tr(Msg::KneeLowers, &[("pct", &format!("{:.1}", -gain))])
            } else if gain < 0.0 {
                tr(Msg::KneeChanges, &[("pct", &format!("{gain:.1}")), ("margin", &margin)])
            } else {
                tr(
                    Msg::KneeAddsOnly,
                    &[("pct", &format!("{gain:.1}")), ("margin", &margin)],
                )
            };
            tr(
                Msg::AdviceKnee,
                &[
                    ("point", &w[0].load.in_words()),
                    ("tps", &format!("{:.1}", throughput(w[0]))),
                    ("unit", &u),
                    ("next", &w[1].load.short()),
                    ("change", &change),
                    ("more", &more),
                    ("knee", &w[0].load.short()),
                ],
            )
        }
        None => {
            let last = measured.last().expect("not empty");
            match last.achieved_rps.filter(|&sent| overloaded(last, sent)) {
                Some(sent) => tr(
                    Msg::AdviceGrowsAtCapacity,
                    &[
                        ("point", &last.load.in_words()),
                        ("tps", &format!("{:.1}", throughput(last))),
                        ("unit", &u),
                        ("done", &format!("{:.1}", last.request_throughput_rps)),
                        ("sent", &format!("{sent:.1}")),
                    ],
                ),
                None => tr(
                    Msg::AdviceStillGrows,
                    &[
                        ("point", &last.load.in_words()),
                        ("tps", &format!("{:.1}", throughput(last))),
                        ("unit", &u),
                    ],
                ),
            }
        }
    })
}

/// A step with more failed (or more cut) requests than this share fails its SLO, whatever its
/// latencies.
pub const MAX_SLO_ERROR_RATE: f64 = 0.01;

/// Whether a step fails the SLO, and why: `(limiting metric, the reason in words)`. One rule for
/// capacity probes and for the recommendations: not saturated, something succeeded, at most
/// 1% failed and at most 1% cut at the drain time, every percentile objective held, and (with
/// per-request thresholds) at least `attainment_pct` of the requests good.
pub fn slo_failure(s: &StepStats, slo: &Slo, attainment_pct: f64) -> Option<(String, String)> {
    let fail = |limiting: &str, why: String| Some((limiting.to_string(), why));
    if s.saturated {
        return fail("saturated", tr(Msg::SloWhySaturated, &[]));
    }
    if s.requests_ok == 0 {
        return fail("errors", tr(Msg::SloWhyNothing, &[]));
    }
    if s.error_rate() > MAX_SLO_ERROR_RATE {
        return fail(
            "errors",
            tr(Msg::SloWhyErrors, &[("pct", &format!("{:.1}", 100.0 * s.error_rate()))]),
        );
    }
    let sent = s.requests() + s.requests_cancelled;
    if s.requests_cancelled as f64 > MAX_SLO_ERROR_RATE * sent as f64 {
        return fail(
            "cut_at_drain",
            tr(Msg::SloWhyCut, &[("cut", &s.requests_cancelled), ("sent", &sent)]),
        );
    }
    if let Some(worst) = s.slo_checks.as_ref().and_then(|v| v.worst()) {
        let actual = worst
            .actual_ms
            .map(fmt_ms)
            .unwrap_or_else(|| tr(Msg::SloNotMeasured, &[]));
        return fail(
            &worst.objective.name(),
            tr(
                Msg::SloWhyObjective,
                &[
                    ("metric", &upper_label(&worst.objective.label())),
                    ("actual", &actual),
                    ("limit", &fmt_ms(worst.objective.limit_ms)),
                ],
            ),
        );
    }
    if slo.has_per_request() {
        let attainment = s.slo_attainment_pct.unwrap_or(0.0);
        if attainment < attainment_pct {
            return fail(
                "slo_attainment",
                tr(
                    Msg::SloWhyAttainment,
                    &[
                        ("pct", &format!("{attainment:.1}")),
                        ("needed", &format!("{attainment_pct:.0}")),
                    ],
                ),
            );
        }
    }
    None
}

/// "ttft p99" → "TTFT p99".
pub fn upper_label(label: &str) -> String {
    match label.split_once(' ') {
        Some((metric, rest)) => format!("{} {rest}", metric.to_uppercase()),
        None => label.to_uppercase(),
    }
}

/// The attainment a step of an ordinary run needs to count as meeting an SLO with per-request
/// thresholds (a capacity search's default `--attainment`).
const RECOMMEND_ATTAINMENT_PCT: f64 = 90.0;

/// With `--slo`: the highest tested load that meets it, and what breaks first above it.
fn slo_sentence(slo: &Slo, measured: &[&StepStats]) -> Option<String> {
    let attainment = |s: &StepStats| {
        s.slo_attainment_pct
            .map(|a| {
                tr(
                    Msg::AdviceAttainment,
                    &[
                        ("pct", &format!("{a:.0}")),
                        ("rps", &format!("{:.2}", s.goodput_rps.unwrap_or(0.0))),
                    ],
                )
            })
            .unwrap_or_default()
    };
    let failure = |s: &StepStats| slo_failure(s, slo, RECOMMEND_ATTAINMENT_PCT).map(|(_, why)| why);
    let best = measured.iter().rev().find(|s| failure(s).is_none());
    // What breaks first above the best load (steps are in load order).
    let above = match best {
        Some(b) => measured
            .iter()
            .find(|s| s.load.value() > b.load.value() && failure(s).is_some()),
        None => measured.iter().find(|s| failure(s).is_some()),
    };
    Some(match (best, above) {
        (Some(ok), Some(bad)) => tr(
            Msg::AdviceSloBreaks,
            &[
                ("slo", &slo.describe()),
                ("point", &ok.load.in_words()),
                ("attainment", &attainment(ok)),
                ("bad", &bad.load.in_words()),
                ("why", &failure(bad).unwrap_or_default()),
            ],
        ),
        (Some(ok), None) => tr(
            Msg::AdviceSloHighestMeets,
            &[
                ("point", &ok.load.in_words()),
                ("slo", &slo.describe()),
                ("attainment", &attainment(ok)),
            ],
        ),
        (None, Some(bad)) => tr(
            Msg::AdviceSloNone,
            &[
                ("slo", &slo.describe()),
                ("bad", &bad.load.in_words()),
                ("why", &failure(bad).unwrap_or_default()),
            ],
        ),
        (None, None) => return None,
    })
}

fn min_tps_sentence(target: f64, measured: &[&StepStats]) -> String {
    let meets: Vec<&&StepStats> = measured
        .iter()
        .filter(|s| speed(s).is_some_and(|v| v >= target))
        .collect();
    let falls = measured.iter().find(|s| speed(s).is_some_and(|v| v < target));
    match (meets.last(), falls) {
        (Some(ok), Some(bad)) => tr(
            Msg::AdviceMinTpsFalls,
            &[
                ("target", &target),
                ("bad", &bad.load.in_words()),
                ("bad_tps", &format!("{:.1}", speed(bad).unwrap_or(0.0))),
                ("point", &ok.load.in_words()),
                ("tps", &format!("{:.1}", speed(ok).unwrap_or(0.0))),
                ("total", &format!("{:.1}", ok.output_throughput_tps)),
            ],
        ),
        (Some(ok), None) => tr(
            Msg::AdviceMinTpsAll,
            &[
                ("target", &target),
                ("point", &ok.load.in_words()),
                ("tps", &format!("{:.1}", speed(ok).unwrap_or(0.0))),
            ],
        ),
        (None, _) => tr(
            Msg::AdviceMinTpsNone,
            &[
                ("target", &target),
                ("point", &measured[0].load.in_words()),
                ("tps", &format!("{:.1}", speed(measured[0]).unwrap_or(0.0))),
            ],
        ),
    }
}

/// The original script's remaining advice, made correct: judged on every step, with numbers.
fn original_advice(measured: &[&StepStats]) -> Vec<String> {
    let mut out = Vec::new();
    let spread: Vec<String> = measured
        .iter()
        .filter_map(|s| {
            let p = s.per_conn_tps?;
            (p.mean > 0.0 && p.std / p.mean > 0.5)
                .then(|| format!("{} (std/mean {:.2})", s.load.short(), p.std / p.mean))
        })
        .collect();
    if !spread.is_empty() {
        out.push(tr(Msg::AdviceSpread, &[("points", &spread.join(", "))]));
    }
    let low: Vec<String> = measured
        .iter()
        .filter_map(|s| {
            s.efficiency_pct
                .filter(|e| *e < 80.0)
                .map(|e| format!("{} ({e:.0}%)", s.load.short()))
        })
        .collect();
    if !low.is_empty() {
        out.push(tr(Msg::AdviceLowEfficiency, &[("points", &low.join(", "))]));
    }
    if measured.iter().all(|s| s.efficiency_pct.is_some_and(|e| e >= 95.0)) {
        out.push(tr(Msg::AdviceScalesWell, &[]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::dist::Spread;

    fn step(n: u32, tps: f64, conn_tps: f64, failed: u64) -> StepStats {
        let mut s = StepStats {
            test: TestKind::Output,
            load: crate::load::LoadPoint::Concurrency(n),
            concurrency: Some(n),
            requests_ok: n as u64,
            requests_failed: failed,
            output_throughput_tps: tps,
            per_conn_tps: Some(Spread {
                count: n as u64,
                mean: conn_tps,
                std: conn_tps * 0.1,
                min: conn_tps,
                max: conn_tps,
            }),
            efficiency_pct: Some(90.0),
            ..StepStats::default()
        };
        if failed > 0 {
            s.errors.insert("http_503".into(), failed);
        }
        s
    }

    #[test]
    fn scaling_efficiency_against_first_step() {
        let mut steps = vec![step(10, 1000.0, 100.0, 0), step(20, 1500.0, 75.0, 0)];
        fill_scaling_efficiency(&mut steps);
        assert_eq!(steps[0].scaling_efficiency_pct, Some(100.0));
        assert_eq!(steps[1].scaling_efficiency_pct, Some(75.0));
    }

    #[test]
    fn knee_best_min_tps_and_errors() {
        let steps = vec![
            step(10, 1000.0, 100.0, 0),
            step(20, 1800.0, 90.0, 0),
            step(30, 1850.0, 61.0, 0),
            step(40, 1860.0, 46.0, 2),
        ];
        let advice = recommend(&steps, Some(60.0), None).join("\n");
        assert!(
            advice.contains("Throughput stops growing at concurrency 20"),
            "{advice}"
        );
        assert!(
            advice.contains("Best throughput: 1860.0 tok/s at concurrency 40"),
            "{advice}"
        );
        assert!(
            advice.contains("falls below --min-tps 60 at concurrency 40"),
            "{advice}"
        );
        assert!(
            advice.contains("highest load that meets it is concurrency 30"),
            "{advice}"
        );
        assert!(advice.contains("Errors start at concurrency 40: 2 of 42"), "{advice}");
    }

    #[test]
    fn still_growing_says_continue() {
        let steps = vec![step(10, 1000.0, 100.0, 0), step(20, 2000.0, 100.0, 0)];
        let advice = recommend(&steps, None, None).join("\n");
        assert!(advice.contains("continue raising the load"), "{advice}");
    }

    #[test]
    fn nothing_succeeded_is_said_plainly() {
        let mut s = step(10, 0.0, 0.0, 10);
        s.requests_ok = 0;
        let advice = recommend(&[s], None, None).join("\n");
        assert!(advice.contains("No request succeeded"), "{advice}");
    }
}
