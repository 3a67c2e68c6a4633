//! Drift over a stress run: the last intervals against the first, in plain sentences.

use super::advice;
use super::step::StepStats;
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
        let span = format!("the first {k} and the last {k} intervals");
        let describe = |name: &str, unit: &str, a: f64, b: f64, higher_is_worse: bool| -> String {
            let change = if a.abs() > f64::EPSILON {
                100.0 * (b - a) / a
            } else {
                0.0
            };
            let verdict = if change.abs() < 5.0 {
                "stable"
            } else if (change > 0.0) == higher_is_worse {
                "worse"
            } else {
                "better"
            };
            format!("[{test}] {name} {verdict}: {a:.1} → {b:.1} {unit} ({change:+.1}%) between {span}.")
        };
        let throughput = |s: &StepStats| Some(advice::throughput(s));
        if let (Some(a), Some(b)) = (pick(first, &throughput), pick(last, &throughput)) {
            out.push(describe("throughput", "tok/s", a, b, false));
        }
        let ttft = |s: &StepStats| s.ttft_ms.map(|d| d.p99);
        if let (Some(a), Some(b)) = (pick(first, &ttft), pick(last, &ttft)) {
            out.push(describe("TTFT p99", "ms", a, b, true));
        }
        let errors = |s: &StepStats| Some(100.0 * s.error_rate());
        if let (Some(a), Some(b)) = (pick(first, &errors), pick(last, &errors)) {
            if a > 0.0 || b > 0.0 {
                out.push(format!("[{test}] error rate: {a:.1}% → {b:.1}% between {span}."));
            }
        }
    }
    out
}
