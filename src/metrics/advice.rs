//! Answers from the scaling curve: where throughput stops growing, what concurrency meets a
//! speed target, where errors start, and the original script's four recommendations — each a
//! plain sentence with the numbers behind it.

use super::step::StepStats;
use crate::workload::TestKind;

/// A step adds less than this much throughput over the previous one: the knee.
pub const KNEE_GAIN: f64 = 0.05;

/// Fills `scaling_efficiency_pct` of each step against the first step of the same test.
pub fn fill_scaling_efficiency(steps: &mut [StepStats]) {
    for test in [TestKind::Input, TestKind::Output, TestKind::Multimodal] {
        let mut base: Option<f64> = None;
        for step in steps.iter_mut().filter(|s| s.test == test) {
            let per_conn = throughput(step) / step.concurrency.max(1) as f64;
            match base {
                None if per_conn > 0.0 => {
                    base = Some(per_conn);
                    step.scaling_efficiency_pct = Some(100.0);
                }
                Some(b) => step.scaling_efficiency_pct = Some(100.0 * per_conn / b),
                None => {}
            }
        }
    }
}

/// The throughput that matters for a test: prompt tokens for the input test, output tokens else.
pub fn throughput(step: &StepStats) -> f64 {
    match step.test {
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

/// Recommendations for every test that ran more than one step.
pub fn recommend(steps: &[StepStats], min_tps: Option<f64>) -> Vec<String> {
    let mut out = Vec::new();
    // First: a client-bound step measured llm-bench, so every other sentence depends on it.
    let bound: Vec<String> = steps
        .iter()
        .filter(|s| s.client_bound)
        .map(|s| format!("{} at concurrency {}", s.test, s.concurrency))
        .collect();
    if !bound.is_empty() {
        out.push(format!(
            "llm-bench itself was the bottleneck ({}): those figures describe the client, not the server; \
             rerun them with more client cores (--threads) or spread over more machines.",
            bound.join(", ")
        ));
    }
    for test in [TestKind::Input, TestKind::Output, TestKind::Multimodal] {
        let curve: Vec<&StepStats> = steps.iter().filter(|s| s.test == test).collect();
        if curve.is_empty() {
            continue;
        }
        out.extend(recommend_test(test, &curve, min_tps));
    }
    out
}

fn recommend_test(test: TestKind, curve: &[&StepStats], min_tps: Option<f64>) -> Vec<String> {
    let mut out = Vec::new();
    let u = unit(test);
    let name = test.name();

    // Errors first: they make every other figure of a step suspect.
    if let Some(first_bad) = curve.iter().find(|s| s.requests_failed > 0) {
        let (class, count) = first_bad
            .errors
            .iter()
            .max_by_key(|(_, n)| **n)
            .map(|(c, n)| (c.as_str(), *n))
            .unwrap_or(("unknown", 0));
        out.push(format!(
            "[{name}] Errors start at concurrency {}: {} of {} requests failed (mostly {class}, {count}).",
            first_bad.concurrency,
            first_bad.requests_failed,
            first_bad.requests()
        ));
    }

    let cached: u64 = curve.iter().map(|s| s.prompt_cache_hits).sum();
    if cached > 0 {
        let ok: u64 = curve.iter().map(|s| s.requests_ok).sum();
        out.push(format!(
            "[{name}] The server reused cached prompts for {cached} of {ok} requests, so prefill and TTFT are \
             flattered; rerun with --extra-body '{{\"cache_prompt\": false}}' (llama.cpp) to measure new prompts."
        ));
    }

    let measured: Vec<&&StepStats> = curve.iter().filter(|s| s.requests_ok > 0).collect();
    if measured.is_empty() {
        out.push(format!(
            "[{name}] No request succeeded, so there is nothing to recommend."
        ));
        return out;
    }

    let best = measured
        .iter()
        .max_by(|a, b| throughput(a).total_cmp(&throughput(b)))
        .expect("not empty");
    let speed = |s: &StepStats| s.per_conn_tps.map(|p| p.mean);
    let best_speed = match (test, speed(best)) {
        (TestKind::Input, _) => best
            .prefill_tps
            .map(|p| format!(", each request prefilled at {:.0} tok/s", p.mean))
            .unwrap_or_default(),
        (_, Some(v)) => format!(", each connection at {v:.1} tok/s"),
        _ => String::new(),
    };
    out.push(format!(
        "[{name}] Best throughput: {:.1} {u} at concurrency {}{best_speed}.",
        throughput(best),
        best.concurrency
    ));

    if measured.len() >= 2 {
        let knee = measured
            .windows(2)
            .find(|w| throughput(w[1]) < throughput(w[0]) * (1.0 + KNEE_GAIN));
        match knee {
            Some(w) => {
                let gain = if throughput(w[0]) > 0.0 {
                    100.0 * (throughput(w[1]) / throughput(w[0]) - 1.0)
                } else {
                    0.0
                };
                let change = if gain < 0.0 {
                    format!("lowers it by {:.1}%", -gain)
                } else {
                    format!("adds only {gain:.1}% (less than {:.0}%)", KNEE_GAIN * 100.0)
                };
                out.push(format!(
                    "[{name}] Throughput stops growing at concurrency {} ({:.1} {u}): going to {} {change}. More concurrency beyond {} mostly adds waiting.",
                    w[0].concurrency,
                    throughput(w[0]),
                    w[1].concurrency,
                    w[0].concurrency
                ));
            }
            None => {
                let last = measured.last().expect("not empty");
                out.push(format!(
                    "[{name}] Throughput still grows at the last step (concurrency {}, {:.1} {u}): continue raising concurrency to find the limit.",
                    last.concurrency,
                    throughput(last)
                ));
            }
        }
    }

    if let (Some(target), true) = (min_tps, test != TestKind::Input) {
        let meets: Vec<&&&StepStats> = measured
            .iter()
            .filter(|s| speed(s).is_some_and(|v| v >= target))
            .collect();
        let falls = measured.iter().find(|s| speed(s).is_some_and(|v| v < target));
        match (meets.last(), falls) {
            (Some(ok), Some(bad)) => out.push(format!(
                "[{name}] Per-connection speed falls below --min-tps {target} at concurrency {} ({:.1} tok/s). The highest concurrency that meets it is {} ({:.1} tok/s per connection, {:.1} tok/s in total).",
                bad.concurrency,
                speed(bad).unwrap_or(0.0),
                ok.concurrency,
                speed(ok).unwrap_or(0.0),
                ok.output_throughput_tps
            )),
            (Some(ok), None) => out.push(format!(
                "[{name}] Every step meets --min-tps {target}; the highest tested concurrency {} gives {:.1} tok/s per connection.",
                ok.concurrency,
                speed(ok).unwrap_or(0.0)
            )),
            (None, _) => out.push(format!(
                "[{name}] No step meets --min-tps {target}: even concurrency {} gives {:.1} tok/s per connection.",
                measured[0].concurrency,
                speed(measured[0]).unwrap_or(0.0)
            )),
        }
    }

    // The original script's remaining advice, made correct: judged on every step, with numbers.
    if test != TestKind::Input {
        let spread: Vec<String> = measured
            .iter()
            .filter_map(|s| {
                let p = s.per_conn_tps?;
                (p.mean > 0.0 && p.std / p.mean > 0.5)
                    .then(|| format!("{} (std/mean {:.2})", s.concurrency, p.std / p.mean))
            })
            .collect();
        if !spread.is_empty() {
            out.push(format!(
                "[{name}] Connections run at very different speeds at concurrency {}: contention in the server, or network jitter.",
                spread.join(", ")
            ));
        }
        let low: Vec<String> = measured
            .iter()
            .filter_map(|s| {
                s.efficiency_pct
                    .filter(|e| *e < 80.0)
                    .map(|e| format!("{} ({e:.0}%)", s.concurrency))
            })
            .collect();
        if !low.is_empty() {
            out.push(format!(
                "[{name}] Efficiency is below 80% at concurrency {}: time to first token or queueing takes a large share of each step, so scaling is limited.",
                low.join(", ")
            ));
        }
        if measured.iter().all(|s| s.efficiency_pct.is_some_and(|e| e >= 95.0)) {
            out.push(format!(
                "[{name}] Efficiency is at least 95% at every step: the server scales well over this range."
            ));
        }
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
            concurrency: n,
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
        let advice = recommend(&steps, Some(60.0)).join("\n");
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
        assert!(advice.contains("highest concurrency that meets it is 30"), "{advice}");
        assert!(advice.contains("Errors start at concurrency 40: 2 of 42"), "{advice}");
    }

    #[test]
    fn still_growing_says_continue() {
        let steps = vec![step(10, 1000.0, 100.0, 0), step(20, 2000.0, 100.0, 0)];
        let advice = recommend(&steps, None).join("\n");
        assert!(advice.contains("continue raising concurrency"), "{advice}");
    }

    #[test]
    fn nothing_succeeded_is_said_plainly() {
        let mut s = step(10, 0.0, 0.0, 10);
        s.requests_ok = 0;
        let advice = recommend(&[s], None).join("\n");
        assert!(advice.contains("No request succeeded"), "{advice}");
    }
}
