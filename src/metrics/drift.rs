//! Drift over a stress run: the last intervals against the first, in plain sentences.

use super::advice;
use super::step::StepStats;
use crate::i18n::{tr, Msg};
use crate::report::summary::Interval;
use crate::workload::TestKind;

/// Compares the last intervals with the first: throughput, TTFT p99 and error rate.
pub fn drift(intervals: &[Interval]) -> Vec<String> {
    let mut out = Vec::new();
    if intervals.len() < 2 {
        return out;
    }
    let k = (intervals.len() / 4).clamp(1, 3);
    let tests: Vec<TestKind> = intervals[0].tests.iter().map(|s| s.test).collect();
    for test in tests {
        let pick = |slice: &[Interval], f: &dyn Fn(&StepStats) -> Option<f64>| -> Option<f64> {
            let values: Vec<f64> = slice
                .iter()
                .filter_map(|i| i.tests.iter().find(|s| s.test == test))
                .filter_map(f)
                .collect();
            (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
        };
        let first = &intervals[..k];
        let last = &intervals[intervals.len() - k..];
        let span = tr(Msg::DriftSpan, &[("k", &k)]);
        let describe = |name: &str, unit: &str, a: f64, b: f64, higher_is_worse: bool| -> String {
            let change = if a.abs() > f64::EPSILON {
                100.0 * (b - a) / a
            } else {
                0.0
            };
            let verdict = tr(
                if change.abs() < 5.0 {
                    Msg::DriftStable
                } else if (change > 0.0) == higher_is_worse {
                    Msg::DriftWorse
                } else {
                    Msg::DriftBetter
                },
                &[],
            );
            let line = tr(
                Msg::DriftLine,
                &[
                    ("name", &name),
                    ("verdict", &verdict),
                    ("a", &format!("{a:.1}")),
                    ("b", &format!("{b:.1}")),
                    ("unit", &unit),
                    ("change", &format!("{change:+.1}")),
                    ("span", &span),
                ],
            );
            format!("[{test}] {line}")
        };
        let throughput = |s: &StepStats| Some(advice::throughput(s));
        if let (Some(a), Some(b)) = (pick(first, &throughput), pick(last, &throughput)) {
            out.push(describe(&tr(Msg::DriftThroughput, &[]), "tok/s", a, b, false));
        }
        let ttft = |s: &StepStats| s.ttft_ms.map(|d| d.p99);
        if let (Some(a), Some(b)) = (pick(first, &ttft), pick(last, &ttft)) {
            out.push(describe("TTFT p99", "ms", a, b, true));
        }
        let errors = |s: &StepStats| Some(100.0 * s.error_rate());
        if let (Some(a), Some(b)) = (pick(first, &errors), pick(last, &errors)) {
            if a > 0.0 || b > 0.0 {
                let line = tr(
                    Msg::DriftErrors,
                    &[("a", &format!("{a:.1}")), ("b", &format!("{b:.1}")), ("span", &span)],
                );
                out.push(format!("[{test}] {line}"));
            }
        }
    }
    out
}
