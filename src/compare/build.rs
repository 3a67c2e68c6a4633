//! From loaded runs to a [`Comparison`]: steps matched by test and load point, each figure
//! judged against the baseline, the run-level figures (capacity answer, knee), the breaches.

use super::figures::{Figure, HEADLINE};
use super::input::{LoadedRun, StepGroup};
use super::model::{Comparison, FigureRow, StepMatch, UnmatchedStep, Verdict};
use super::samples::same_point;
use super::stats::{self, judge, Judgement};
use super::threshold::{Limit, Threshold};
use crate::i18n::{tr, Msg};
use crate::load::{LoadAxis, LoadPoint};
use crate::metrics::{advice, StepStats};
use crate::workload::TestKind;

/// "output at concurrency 16".
pub fn step_name(test: &str, load: LoadPoint) -> String {
    tr(Msg::CompareStepName, &[("test", &test), ("load", &load)])
}

/// Two runs with the same folder name are told apart by the path given.
pub fn disambiguate_labels(runs: &mut [LoadedRun]) {
    let labels: Vec<String> = runs.iter().map(|r| r.label.label.clone()).collect();
    for run in runs.iter_mut() {
        if labels.iter().filter(|l| **l == run.label.label).count() > 1 {
            run.label.label = run.label.path.clone();
        }
    }
}

pub fn compare(runs: &[LoadedRun], thresholds: &[Threshold]) -> Comparison {
    let mut figures: Vec<Figure> = HEADLINE.to_vec();
    for t in thresholds {
        if !t.figure.run_level() && !figures.contains(&t.figure) {
            figures.push(t.figure);
        }
    }
    let (keys, unmatched_steps) = match_steps(runs);
    let matched: Vec<StepMatch> = keys
        .iter()
        .enumerate()
        .map(|(index, groups)| compare_step(runs, groups, &figures, index))
        .collect();
    let mut comparison = Comparison {
        runs: runs.iter().map(|r| r.label.clone()).collect(),
        matched,
        unmatched: unmatched_steps
            .iter()
            .map(|u| {
                tr(
                    Msg::CompareUnmatchedLine,
                    &[
                        ("label", &runs[u.run].label.label),
                        ("step", &step_name(&u.test, u.load)),
                    ],
                )
            })
            .collect(),
        run_figures: run_figures(runs),
        method: tr(
            Msg::CompareMethod,
            &[
                ("confidence", &format!("{:.0}", stats::CONFIDENCE * 100.0)),
                ("resamples", &stats::RESAMPLES),
            ],
        ),
        breaches: Vec::new(),
        unmatched_steps,
        confidence: stats::CONFIDENCE,
        resamples: stats::RESAMPLES,
        seed: stats::SEED,
    };
    comparison.breaches = breaches(&comparison, thresholds);
    comparison
}

/// For each step in every run, its group index in each run; and the steps some runs lack.
fn match_steps(runs: &[LoadedRun]) -> (Vec<Vec<usize>>, Vec<UnmatchedStep>) {
    let mut seen: Vec<(TestKind, LoadPoint)> = Vec::new();
    for run in runs {
        for g in &run.groups {
            if !seen.iter().any(|(t, l)| *t == g.test && same_point(*l, g.load)) {
                seen.push((g.test, g.load));
            }
        }
    }
    let mut matched = Vec::new();
    let mut unmatched = Vec::new();
    for (test, load) in seen {
        let found: Vec<Option<usize>> = runs
            .iter()
            .map(|r| r.groups.iter().position(|g| g.test == test && same_point(g.load, load)))
            .collect();
        if found.iter().all(Option::is_some) {
            matched.push(found.into_iter().flatten().collect());
        } else {
            for (run, _) in found.iter().enumerate().filter(|(_, f)| f.is_some()) {
                unmatched.push(UnmatchedStep {
                    run,
                    test: test.name().into(),
                    load,
                });
            }
        }
    }
    (matched, unmatched)
}

fn compare_step(runs: &[LoadedRun], groups: &[usize], figures: &[Figure], index: usize) -> StepMatch {
    let group = |r: usize| -> &StepGroup { &runs[r].groups[groups[r]] };
    let first = group(0);
    // Figures some run has, in order.
    let shown: Vec<Figure> = figures
        .iter()
        .copied()
        .filter(|f| (0..runs.len()).any(|r| group(r).value(*f).is_some()))
        .collect();
    // Each run's replicates of each figure, from its records.
    let replicates: Vec<Vec<Option<Vec<f64>>>> = (0..runs.len())
        .map(|r| match &runs[r].samples {
            Some(samples) => {
                let s = &samples[groups[r]];
                let estimators: Vec<_> = shown.iter().map(|f| s.estimator(*f)).collect();
                let present: Vec<_> = estimators.iter().flatten().cloned().collect();
                let mut reps = stats::replicate(&present, stats::seed_for(r, index)).into_iter();
                estimators
                    .iter()
                    .map(|e| e.as_ref().and_then(|_| reps.next().flatten()))
                    .collect()
            }
            None => vec![None; shown.len()],
        })
        .collect();
    let rows = shown
        .iter()
        .enumerate()
        .map(|(i, figure)| {
            let values: Vec<Option<f64>> = (0..runs.len()).map(|r| group(r).value(*figure)).collect();
            let judged: Vec<Judgement> = (0..runs.len())
                .map(|r| {
                    judge(
                        values[0],
                        values[r],
                        replicates[0][i].as_deref(),
                        replicates[r][i].as_deref(),
                        figure.higher_is_better(),
                    )
                })
                .collect();
            row(figure.name(), figure.higher_is_better(), values, &judged, None)
        })
        .collect();
    StepMatch {
        test: first.test.name().into(),
        load: first.load,
        figures: rows,
        requests: (0..runs.len())
            .map(|r| runs[r].samples.as_ref().map(|s| s[groups[r]].requests() as u64))
            .collect(),
    }
}

/// A row from each run's judgement against run 0 (whose own entries are `None`).
fn row(
    figure: String,
    higher: bool,
    values: Vec<Option<f64>>,
    judged: &[Judgement],
    test: Option<String>,
) -> FigureRow {
    fn others<T>(judged: &[Judgement], f: impl Fn(&Judgement) -> Option<T>) -> Vec<Option<T>> {
        judged
            .iter()
            .enumerate()
            .map(|(r, j)| if r == 0 { None } else { f(j) })
            .collect()
    }
    FigureRow {
        figure,
        higher_is_better: higher,
        values,
        change_pct: others(judged, |j| j.change_pct),
        change_ci_pct: others(judged, |j| j.ci_pct),
        verdicts: judged
            .iter()
            .enumerate()
            .map(|(r, j)| (r > 0).then_some(j.verdict))
            .collect(),
        test,
    }
}

/// Where a run-level answer lies: at least `low`, below `high` (unknown when `None`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bracket {
    pub low: f64,
    pub high: Option<f64>,
}

/// A run-level change is within noise when the brackets of the two answers overlap; its
/// interval runs from the lowest to the highest ratio the brackets allow.
pub fn judge_bracket(base: Option<Bracket>, run: Option<Bracket>) -> Judgement {
    let change = match (base, run) {
        (Some(b), Some(r)) if b.low > 0.0 => Some(r.low / b.low - 1.0),
        _ => None,
    };
    let ci = match (base, run) {
        (Some(b), Some(r)) if b.low > 0.0 => match (b.high, r.high) {
            (Some(bh), Some(rh)) if bh > 0.0 => Some((r.low / bh - 1.0, rh / b.low - 1.0)),
            _ => None,
        },
        _ => None,
    };
    let verdict = match ci {
        None => Verdict::Unknown,
        Some((lo, hi)) if lo < 0.0 && hi > 0.0 => Verdict::WithinNoise,
        Some((lo, _)) if lo >= 0.0 => Verdict::Better,
        Some(_) => Verdict::Worse,
    };
    Judgement {
        change_pct: change.map(|c| 100.0 * c),
        ci_pct: ci.map(|(lo, hi)| (100.0 * lo, 100.0 * hi)),
        verdict,
    }
}

fn bracket_row(figure: Figure, brackets: &[Option<Bracket>], test: Option<String>) -> FigureRow {
    let judged: Vec<Judgement> = brackets.iter().map(|b| judge_bracket(brackets[0], *b)).collect();
    let values = brackets.iter().map(|b| b.map(|b| b.low)).collect();
    row(figure.name(), true, values, &judged, test)
}

/// The capacity answer (between the passing probe and the lowest failing one) and the knee of
/// each test (between the knee's step and the next), where the baseline has them.
fn run_figures(runs: &[LoadedRun]) -> Vec<FigureRow> {
    let mut rows = Vec::new();
    let capacity: Vec<Option<(LoadAxis, Bracket)>> = runs.iter().map(capacity_bracket).collect();
    if let Some(Some((axis, _))) = capacity.first() {
        let figure = match axis {
            LoadAxis::Rate => Figure::CapacityRps,
            LoadAxis::Concurrency => Figure::CapacityConcurrency,
        };
        let same_axis: Vec<Option<Bracket>> = capacity
            .iter()
            .map(|c| c.filter(|(a, _)| a == axis).map(|(_, b)| b))
            .collect();
        rows.push(bracket_row(figure, &same_axis, None));
    }
    for test in [TestKind::Input, TestKind::Output, TestKind::Multimodal] {
        let knees: Vec<Option<Bracket>> = runs.iter().map(|r| knee_bracket(&r.groups, test)).collect();
        if knees[0].is_some() {
            rows.push(bracket_row(Figure::Knee, &knees, Some(test.name().into())));
        }
    }
    rows
}

fn capacity_bracket(run: &LoadedRun) -> Option<(LoadAxis, Bracket)> {
    let capacity = run.summary.capacity.as_ref()?;
    let axis = capacity.by?;
    let low = capacity.value?;
    let high = capacity
        .fail_step
        .and_then(|i| run.summary.steps.get(i))
        .map(|s| s.load.value())
        .filter(|&h| h > low);
    Some((axis, Bracket { low, high }))
}

fn knee_bracket(groups: &[StepGroup], test: TestKind) -> Option<Bracket> {
    let mut curve: Vec<&StepStats> = groups
        .iter()
        .filter(|g| g.test == test && g.stats.requests_ok > 0)
        .map(|g| &g.stats)
        .collect();
    curve.sort_by(|a, b| a.load.value().total_cmp(&b.load.value()));
    let [knee, next] = advice::knee(&curve)?;
    Some(Bracket {
        low: knee.load.value(),
        high: Some(next.load.value()),
    })
}

/// `−7.2%`, `+3.0%`.
pub fn fmt_pct(pct: f64) -> String {
    if pct < 0.0 {
        format!("\u{2212}{:.1}%", -pct)
    } else {
        format!("+{pct:.1}%")
    }
}

/// A figure's value with as many decimals as its size needs.
pub fn fmt_value(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// One sentence per threshold crossed by a run other than the baseline, where the change is
/// not within noise (an absolute limit is checked on the value alone).
fn breaches(cmp: &Comparison, thresholds: &[Threshold]) -> Vec<String> {
    let mut out = Vec::new();
    let several = cmp.runs.len() > 2;
    let places = cmp
        .matched
        .iter()
        .map(|m| (step_name(&m.test, m.load), &m.figures))
        .chain(std::iter::once((String::new(), &cmp.run_figures)));
    for (place, rows) in places {
        for row in rows.iter() {
            for t in thresholds.iter().filter(|t| t.figure.name() == row.figure) {
                for r in 1..cmp.runs.len() {
                    if let Some(line) = breach(t, row, r, &place) {
                        let line = if several {
                            format!("{}: {line}", cmp.runs[r].label)
                        } else {
                            line
                        };
                        out.push(line);
                    }
                }
            }
        }
    }
    out
}

fn breach(t: &Threshold, row: &FigureRow, r: usize, place: &str) -> Option<String> {
    let (value, change) = (row.values[r], row.change_pct[r]);
    let verdict = row.verdicts[r].unwrap_or(Verdict::Unknown);
    let absolute = matches!(t.limit, Limit::Absolute(_));
    if !t.crossed(value, change) || (!absolute && verdict == Verdict::WithinNoise) {
        return None;
    }
    let place = match &row.test {
        Some(test) => test.clone(),
        None if place.is_empty() => row.figure.clone(),
        None => place.to_string(),
    };
    let figure: &dyn std::fmt::Display = &row.figure;
    Some(match (absolute, change, row.change_ci_pct[r]) {
        (true, _, _) | (false, None, _) => tr(
            Msg::CompareBreachAbsolute,
            &[
                ("where", &place),
                ("figure", figure),
                ("value", &value.map(fmt_value).unwrap_or_default()),
                ("threshold", &t.text),
            ],
        ),
        (false, Some(c), Some((lo, hi))) => tr(
            Msg::CompareBreachChange,
            &[
                ("where", &place),
                ("figure", figure),
                ("change", &fmt_pct(c)),
                ("low", &fmt_pct(lo)),
                ("high", &fmt_pct(hi)),
                ("threshold", &t.text),
            ],
        ),
        (false, Some(c), None) => tr(
            Msg::CompareBreachUnknown,
            &[
                ("where", &place),
                ("figure", figure),
                ("change", &fmt_pct(c)),
                ("threshold", &t.text),
            ],
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::model::RunLabel;
    use crate::report::summary::Summary;

    fn group(test: TestKind, load: LoadPoint, tps: f64) -> StepGroup {
        let stats = StepStats {
            test,
            load,
            requests_ok: 10,
            output_throughput_tps: tps,
            ..StepStats::default()
        };
        StepGroup {
            test,
            load,
            steps: vec![serde_json::to_value(&stats).unwrap()],
            stats,
        }
    }

    fn run(label: &str, groups: Vec<StepGroup>) -> LoadedRun {
        LoadedRun {
            label: RunLabel {
                label: label.into(),
                path: format!("/tmp/{label}"),
            },
            summary: Summary::default(),
            groups,
            samples: None,
        }
    }

    #[test]
    fn steps_match_by_test_and_point_and_the_rest_are_listed() {
        let a = run(
            "a",
            vec![
                group(TestKind::Output, LoadPoint::Concurrency(1), 100.0),
                group(TestKind::Output, LoadPoint::Concurrency(2), 190.0),
                group(TestKind::Input, LoadPoint::Concurrency(1), 50.0),
            ],
        );
        let b = run(
            "b",
            vec![
                group(TestKind::Output, LoadPoint::Concurrency(2), 171.0),
                group(TestKind::Output, LoadPoint::Concurrency(1), 100.0),
                group(TestKind::Output, LoadPoint::Concurrency(4), 300.0),
            ],
        );
        let t = Threshold::parse("output_throughput_tps < -5%").unwrap();
        let cmp = compare(&[a, b], &[t]);
        let names: Vec<String> = cmp.matched.iter().map(|m| step_name(&m.test, m.load)).collect();
        assert_eq!(names, ["output at concurrency 1", "output at concurrency 2"]);
        assert_eq!(
            cmp.unmatched,
            ["run a: input at concurrency 1", "run b: output at concurrency 4"]
        );
        let tps = &cmp.matched[1].figures[0];
        assert_eq!(tps.figure, "output_throughput_tps");
        assert!((tps.change_pct[1].unwrap() + 10.0).abs() < 1e-9);
        // No records: the verdict is unknown, and a crossed threshold counts.
        assert_eq!(tps.verdicts[1], Some(Verdict::Unknown));
        assert_eq!(cmp.breaches.len(), 1, "{:?}", cmp.breaches);
        assert!(cmp.breaches[0].starts_with("output at concurrency 2: output_throughput_tps \u{2212}10.0%"));
        // Figures no step has are not shown.
        assert!(cmp.matched[0].figures.iter().all(|f| f.figure != "ttft_p99_ms"));
    }

    #[test]
    fn brackets_overlap_or_not() {
        let b = |low: f64, high: f64| Some(Bracket { low, high: Some(high) });
        let cases = [
            (b(16.0, 32.0), b(16.0, 32.0), Verdict::WithinNoise),
            (b(10.0, 10.5), b(10.2, 10.7), Verdict::WithinNoise),
            (b(16.0, 32.0), b(8.0, 16.0), Verdict::Worse),
            (b(8.0, 16.0), b(16.0, 32.0), Verdict::Better),
            (b(8.0, 16.0), Some(Bracket { low: 16.0, high: None }), Verdict::Unknown),
            (b(8.0, 16.0), None, Verdict::Unknown),
        ];
        for (base, other, verdict) in cases {
            assert_eq!(judge_bracket(base, other).verdict, verdict, "{base:?} {other:?}");
        }
    }

    #[test]
    fn the_knee_is_compared_at_run_level() {
        // a: knee at 2 (4 adds 2%); b: knee at 1 (2 adds 1%).
        let curve = |tps: [f64; 3]| {
            [1, 2, 4]
                .iter()
                .zip(tps)
                .map(|(&c, t)| group(TestKind::Output, LoadPoint::Concurrency(c), t))
                .collect::<Vec<_>>()
        };
        let a = run("a", curve([100.0, 180.0, 183.0]));
        let b = run("b", curve([100.0, 101.0, 102.0]));
        let t = Threshold::parse("knee < -10%").unwrap();
        let cmp = compare(&[a, b], &[t]);
        let knee = &cmp.run_figures[0];
        assert_eq!((knee.figure.as_str(), knee.test.as_deref()), ("knee", Some("output")));
        assert_eq!(knee.values, [Some(2.0), Some(1.0)]);
        assert_eq!(knee.verdicts[1], Some(Verdict::Worse));
        assert_eq!(cmp.breaches.len(), 1);
        assert!(
            cmp.breaches[0].starts_with("output: knee \u{2212}50.0%"),
            "{:?}",
            cmp.breaches
        );
    }
}
