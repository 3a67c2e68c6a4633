//! `llm-bench capacity`: the highest load that meets an SLO, found by measurement. Starting
//! at `--min`, the load doubles until a probe fails the SLO (or `--max` is reached), then the
//! interval between the last pass and the first fail is bisected until they are within
//! `--precision`; the answer is re-measured once. Every probe is a full measured step (with
//! warm-up) and is written as a step of `summary.json`; the answer goes to `capacity`.

use super::steps::{run_step, StepName};
use super::{Outcome, RunContext};
use crate::cli::config::CapacitySpec;
use crate::load::point::fmt_rate;
use crate::load::{LoadAxis, LoadPoint};
use crate::metrics::slo::{fixed, Slo};
use crate::metrics::{advice, StepStats};
use serde::{Deserialize, Serialize};

/// `summary.json` → `capacity`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Capacity {
    pub by: Option<LoadAxis>,
    /// The highest load that met the SLO (null when even the lowest failed).
    pub value: Option<f64>,
    /// Index in `steps` of the probe at `value`, and of the lowest failing probe above it.
    pub pass_step: Option<usize>,
    pub fail_step: Option<usize>,
    /// What failed first above the answer: an objective (`ttft_p99`), `slo_attainment`,
    /// `errors` or `saturated`.
    pub limiting_metric: Option<String>,
    pub slo: Option<Slo>,
    /// The answer in words.
    pub answer: String,
    /// The answer's probe measured a second time: did it pass again?
    pub remeasured_pass: Option<bool>,
    /// `--max` passed: the real limit is higher.
    pub reached_max: bool,
    pub goodput_rps: Option<f64>,
    pub goodput_tps: Option<f64>,
}

/// A probe's verdict: passed, or what failed it, in words.
struct Verdict {
    pass: bool,
    limiting: Option<String>,
    why: String,
}

fn judge(s: &StepStats, spec: &CapacitySpec, slo: &Slo) -> Verdict {
    match advice::slo_failure(s, slo, spec.attainment_pct) {
        Some((limiting, why)) => Verdict {
            pass: false,
            limiting: Some(limiting),
            why,
        },
        None => Verdict {
            pass: true,
            limiting: None,
            why: String::new(),
        },
    }
}

/// The next load point between a pass and a fail, or None when they are close enough.
fn midpoint(by: LoadAxis, pass: f64, fail: f64, precision: f64) -> Option<f64> {
    if fail / pass - 1.0 <= precision {
        return None;
    }
    match by {
        LoadAxis::Rate => Some((pass + fail) / 2.0),
        LoadAxis::Concurrency => {
            let mid = ((pass + fail) / 2.0).floor();
            (mid > pass && mid < fail).then_some(mid)
        }
    }
}

/// One judged probe: its load value and its index in `steps`.
#[derive(Debug, Clone, Copy)]
struct Probe {
    at: f64,
    index: usize,
    pass: bool,
}

/// The highest passing and the lowest failing probe so far.
#[derive(Debug, Clone, Copy, Default)]
struct Bracket {
    pass: Option<Probe>,
    fail: Option<Probe>,
}

impl Bracket {
    /// Takes a probe into the bracket; returns whether it passed.
    fn note(&mut self, probe: Probe) -> bool {
        if probe.pass {
            self.pass = Some(probe);
        } else {
            self.fail = Some(probe);
        }
        probe.pass
    }
}

struct Search<'a> {
    spec: &'a CapacitySpec,
    slo: &'a Slo,
    steps: Vec<StepStats>,
    reasons: Vec<(usize, Verdict)>,
}

impl Search<'_> {
    async fn probe(&mut self, ctx: &mut RunContext, value: f64) -> Option<Probe> {
        if ctx.signals.stop.is_cancelled() {
            return None;
        }
        let point = LoadPoint::with_value(self.spec.by, value);
        let test = ctx.config.tests[0];
        let name = StepName::probe(self.steps.len() + 1, test, point);
        let result = run_step(ctx, point, self.spec.stop, test, name).await;
        if ctx.signals.stop.is_cancelled() {
            // A probe cut short by Ctrl-C says nothing about the SLO: kept, not judged.
            self.steps.push(result.stats);
            ctx.save_summary(&self.steps, None);
            return None;
        }
        let verdict = judge(&result.stats, self.spec, self.slo);
        ctx.reporter.line(&format!(
            "  probe at {}: {}",
            point,
            if verdict.pass {
                "meets the SLO".to_string()
            } else {
                format!("fails the SLO: {}", verdict.why)
            }
        ));
        let pass = verdict.pass;
        self.steps.push(result.stats);
        let index = self.steps.len() - 1;
        self.reasons.push((index, verdict));
        advice::fill_scaling_efficiency(&mut self.steps);
        ctx.save_summary(&self.steps, None);
        Some(Probe {
            at: point.value(),
            index,
            pass,
        })
    }

    fn reason(&self, index: usize) -> Option<&Verdict> {
        self.reasons.iter().find(|(i, _)| *i == index).map(|(_, v)| v)
    }
}

pub(super) async fn run_capacity(ctx: &mut RunContext, spec: CapacitySpec) -> (Vec<StepStats>, Capacity, Outcome) {
    let slo = ctx.config.slo.clone().unwrap_or_else(|| Slo {
        spec: String::new(),
        objectives: Vec::new(),
    });
    ctx.reporter.line(&format!(
        "Capacity search by {}: {} .. {}, precision {:.0}%, SLO {}",
        match spec.by {
            LoadAxis::Rate => "rate",
            LoadAxis::Concurrency => "concurrency",
        },
        LoadPoint::with_value(spec.by, spec.min),
        LoadPoint::with_value(spec.by, spec.max),
        100.0 * spec.precision,
        slo.describe()
    ));
    let mut search = Search {
        spec: &spec,
        slo: &slo,
        steps: Vec::new(),
        reasons: Vec::new(),
    };
    let mut bracket = Bracket::default();
    let mut value = spec.min;
    // Doubling until a probe fails (or --max passes), then bisecting between pass and fail.
    let mut interrupted = loop {
        let Some(probe) = search.probe(ctx, value).await else {
            break true;
        };
        if !bracket.note(probe) || value >= spec.max {
            break false;
        }
        value = (value * 2.0).min(spec.max);
    };
    while let (Some(p), Some(f), false) = (bracket.pass, bracket.fail, interrupted) {
        let Some(mid) = midpoint(spec.by, p.at, f.at, spec.precision) else {
            break;
        };
        match search.probe(ctx, mid).await {
            Some(probe) => {
                bracket.note(probe);
            }
            None => interrupted = true,
        }
    }
    // The boundary once more: a noisy server can pass once by luck.
    let mut remeasured_pass = None;
    if let (Some(p), false) = (bracket.pass, interrupted) {
        remeasured_pass = search.probe(ctx, p.at).await.map(|probe| probe.pass);
        interrupted |= remeasured_pass.is_none();
    }
    let capacity = answer(&search, &spec, &slo, bracket, remeasured_pass, interrupted);
    ctx.reporter.line("");
    ctx.reporter.line(&capacity.answer);
    let outcome = if interrupted {
        Outcome::Interrupted
    } else if capacity.value.is_none() {
        Outcome::SloUnmet
    } else {
        Outcome::Complete
    };
    (search.steps, capacity, outcome)
}

fn answer(
    search: &Search<'_>,
    spec: &CapacitySpec,
    slo: &Slo,
    bracket: Bracket,
    remeasured_pass: Option<bool>,
    interrupted: bool,
) -> Capacity {
    let at = |value: f64| LoadPoint::with_value(spec.by, value).to_string();
    let pass = bracket.pass.map(|p| (p.at, p.index));
    let fail = bracket.fail.map(|f| (f.at, f.index));
    let fail_why = fail
        .and_then(|(_, i)| search.reason(i))
        .map(|v| v.why.clone())
        .unwrap_or_default();
    let mut capacity = Capacity {
        by: Some(spec.by),
        slo: Some(slo.clone()),
        pass_step: pass.map(|(_, i)| i),
        fail_step: fail.map(|(_, i)| i),
        limiting_metric: fail
            .and_then(|(_, i)| search.reason(i))
            .and_then(|v| v.limiting.clone()),
        remeasured_pass,
        ..Capacity::default()
    };
    let Some((p, pi)) = pass else {
        capacity.answer = match fail {
            Some((f, _)) => format!(
                "Even the lowest load fails {}: at {} {fail_why}. Lower --min, or check the server.",
                slo.describe(),
                at(f)
            ),
            None => "The search was stopped before any probe finished.".to_string(),
        };
        return capacity;
    };
    let step = &search.steps[pi];
    capacity.value = Some(p);
    capacity.goodput_rps = step.goodput_rps;
    capacity.goodput_tps = step.goodput_tps;
    let goodput = match (step.goodput_rps, step.goodput_tps) {
        (Some(r), Some(t)) => format!(" (goodput {} req/s, {} output tok/s)", fmt_rate(r), fixed(t, 0)),
        _ => String::new(),
    };
    let mut text = format!("Meets {} up to {}{goodput}.", slo.describe(), at(p));
    match fail {
        Some((f, _)) => text.push_str(&format!(" At {} {fail_why}.", at(f))),
        None if interrupted => text.push_str(" The search was stopped before a load failed it."),
        None => {
            capacity.reached_max = true;
            text.push_str(" That is --max: the limit is higher; raise --max to find it.");
        }
    }
    if remeasured_pass == Some(false) {
        text.push_str(&format!(
            " A second measurement at {} did not meet it: the server is noisy near its limit, so treat the answer as approximate.",
            at(p)
        ));
    }
    capacity.answer = text;
    capacity
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bisection_points() {
        let cases = [
            (LoadAxis::Rate, 8.0, 16.0, 0.05, Some(12.0)),
            (LoadAxis::Rate, 10.0, 10.4, 0.05, None),
            (LoadAxis::Concurrency, 16.0, 32.0, 0.05, Some(24.0)),
            (LoadAxis::Concurrency, 16.0, 17.0, 0.05, None),
            (LoadAxis::Concurrency, 3.0, 5.0, 0.05, Some(4.0)),
        ];
        for (by, p, f, precision, expected) in cases {
            assert_eq!(midpoint(by, p, f, precision), expected, "{by:?} {p} {f}");
        }
    }

    #[test]
    fn numbers_in_words() {
        assert_eq!(fixed(1780.4, 0), "1,780");
        assert_eq!(fixed(999.0, 0), "999");
        assert_eq!(fixed(1234567.0, 0), "1,234,567");
        assert_eq!(advice::upper_label("ttft p99"), "TTFT p99");
        assert_eq!(advice::upper_label("tpot"), "TPOT");
    }

    #[test]
    fn a_probe_fails_on_its_worst_objective_or_attainment() {
        let slo = Slo::parse("ttft_p99=500ms,e2e=2s").unwrap();
        let spec = CapacitySpec {
            by: LoadAxis::Rate,
            min: 1.0,
            max: 100.0,
            precision: 0.05,
            attainment_pct: 90.0,
            stop: crate::load::Stop::Requests(10),
        };
        let base = StepStats {
            requests_ok: 100,
            slo_attainment_pct: Some(95.0),
            ..StepStats::default()
        };
        let verdict = slo.judge_percentiles(|_, _| Some(1240.0));
        let slow = StepStats {
            slo_checks: Some(verdict),
            ..base.clone()
        };
        let v = judge(&slow, &spec, &slo);
        assert!(!v.pass);
        assert_eq!(v.limiting.as_deref(), Some("ttft_p99"));
        assert_eq!(v.why, "TTFT p99 was 1,240 ms (limit 500 ms)");
        let unmet = StepStats {
            slo_attainment_pct: Some(80.0),
            ..base.clone()
        };
        assert_eq!(judge(&unmet, &spec, &slo).limiting.as_deref(), Some("slo_attainment"));
        assert!(judge(&base, &spec, &slo).pass);
        let saturated = StepStats {
            saturated: true,
            ..base
        };
        assert_eq!(judge(&saturated, &spec, &slo).limiting.as_deref(), Some("saturated"));
    }
}
