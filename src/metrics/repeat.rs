//! `--repeat N`: every step run N times, and each headline figure of a load point summarised
//! over its repetitions as a mean with a 95% confidence interval (docs/metrics.md, "Repeats").
//!
//! The interval is Student's t on the N values of a figure (one per repetition, each a whole
//! measured step): mean ± t(0.975, N−1) · s / √N with s the sample standard deviation (N−1 in
//! the denominator). A figure's repetitions are treated as independent draws; drift between them
//! is spread over every load point by the run's order (A1 B1 … A2 B2 …).

use super::step::{StepStats, HEADLINE_FIGURES};
use super::Dist;
use crate::load::LoadPoint;
use crate::workload::TestKind;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One figure over the repetitions of a load point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FigureStats {
    pub mean: f64,
    /// The 95% confidence interval of the mean (Student t, N−1 degrees of freedom).
    pub ci95_low: f64,
    pub ci95_high: f64,
    /// Sample standard deviation (N−1 in the denominator).
    pub std: f64,
    /// The figure of each repetition that had it, in the order they ran.
    pub values: Vec<f64>,
}

impl FigureStats {
    /// The statistics of `values`; `None` with fewer than two (no spread to judge from).
    pub fn of(values: Vec<f64>) -> Option<Self> {
        let n = values.len();
        if n < 2 {
            return None;
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        let std = var.sqrt();
        let half = t_975(n - 1) * std / (n as f64).sqrt();
        Some(Self {
            mean,
            ci95_low: mean - half,
            ci95_high: mean + half,
            std,
            values,
        })
    }

    /// Half the width of the interval: the `±` of `mean ± half`.
    pub fn half_width(&self) -> f64 {
        (self.ci95_high - self.ci95_low) / 2.0
    }
}

/// A load point (of one test) run several times: `summary.json` → `repeats[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepeatStats {
    pub test: TestKind,
    pub load: LoadPoint,
    /// Repetitions measured.
    pub runs: u32,
    /// Headline figure name → its statistics (a figure fewer than two repetitions had is absent).
    pub figures: BTreeMap<String, FigureStats>,
}

/// t(0.975, df) for df = 1..=30; beyond, the Cornish–Fisher expansion (within 1e-4).
const T_975: [f64; 30] = [
    12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281, 2.2010, 2.1788, 2.1604, 2.1448,
    2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860, 2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484,
    2.0452, 2.0423,
];

/// The 97.5% quantile of Student's t with `df` degrees of freedom (the two-sided 95% factor).
pub fn t_975(df: usize) -> f64 {
    match df {
        0 => f64::INFINITY,
        1..=30 => T_975[df - 1],
        _ => {
            let z = 1.959_963_985_f64;
            let v = df as f64;
            let (z3, z5, z7) = (z.powi(3), z.powi(5), z.powi(7));
            z + (z3 + z) / (4.0 * v)
                + (5.0 * z5 + 16.0 * z3 + 3.0 * z) / (96.0 * v * v)
                + (3.0 * z7 + 19.0 * z5 + 17.0 * z3 - 15.0 * z) / (384.0 * v * v * v)
        }
    }
}

/// The repetitions of each (test, load point), in the order the points first ran.
fn groups(steps: &[StepStats]) -> Vec<Vec<&StepStats>> {
    let mut groups: Vec<Vec<&StepStats>> = Vec::new();
    for step in steps.iter().filter(|s| s.repeat.is_some()) {
        match groups
            .iter_mut()
            .find(|g| g[0].test == step.test && g[0].load == step.load)
        {
            Some(group) => group.push(step),
            None => groups.push(vec![step]),
        }
    }
    groups
}

/// `repeats[]` of the summary: one entry per (test, load point) of the steps that carry a
/// repetition number; empty for a run without `--repeat`.
pub fn repeat_stats(steps: &[StepStats]) -> Vec<RepeatStats> {
    groups(steps)
        .into_iter()
        .map(|reps| RepeatStats {
            test: reps[0].test,
            load: reps[0].load,
            runs: reps.len() as u32,
            figures: HEADLINE_FIGURES
                .iter()
                .filter_map(|&name| {
                    let values: Vec<f64> = reps.iter().filter_map(|s| s.figure(name)).collect();
                    Some((name.to_string(), FigureStats::of(values)?))
                })
                .collect(),
        })
        .collect()
}

/// One step per (test, load point): the steps themselves without `--repeat`; with it, each
/// point's repetitions merged (figures averaged, counts summed) so that recommendations, the
/// knee and scaling efficiency see every point once.
pub fn per_point(steps: &[StepStats]) -> Vec<StepStats> {
    if steps.iter().all(|s| s.repeat.is_none()) {
        return steps.to_vec();
    }
    let mut out: Vec<StepStats> = steps.iter().filter(|s| s.repeat.is_none()).cloned().collect();
    out.extend(groups(steps).into_iter().map(|reps| merged(&reps)));
    out
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

fn mean_dist(reps: &[&StepStats], field: impl Fn(&StepStats) -> Option<Dist>) -> Option<Dist> {
    let dists: Vec<Dist> = reps.iter().filter_map(|s| field(s)).collect();
    let first = *dists.first()?;
    let avg = |f: fn(&Dist) -> f64| mean(dists.iter().map(f)).unwrap_or(0.0);
    Some(Dist {
        count: dists.iter().map(|d| d.count).sum(),
        mean: avg(|d| d.mean),
        p50: avg(|d| d.p50),
        p90: avg(|d| d.p90),
        p99: avg(|d| d.p99),
        min: dists.iter().map(|d| d.min).fold(first.min, f64::min),
        max: dists.iter().map(|d| d.max).fold(first.max, f64::max),
    })
}

/// A load point's repetitions as one step: throughputs, latency statistics, speeds and SLO
/// figures are the means over the repetitions; request and error counts are summed; a flag
/// (saturated, client-bound) is set when any repetition had it; the rest is the first's.
fn merged(reps: &[&StepStats]) -> StepStats {
    let mut step = reps[0].clone();
    step.repeat = None;
    let avg = |f: fn(&StepStats) -> f64| mean(reps.iter().map(|s| f(s))).unwrap_or(0.0);
    let avg_opt = |f: fn(&StepStats) -> Option<f64>| mean(reps.iter().filter_map(|s| f(s)));
    step.output_throughput_tps = avg(|s| s.output_throughput_tps);
    step.request_throughput_rps = avg(|s| s.request_throughput_rps);
    step.prompt_throughput_tps = avg(|s| s.prompt_throughput_tps);
    step.inputs_per_s = avg_opt(|s| s.inputs_per_s);
    step.input_tokens_per_s = avg_opt(|s| s.input_tokens_per_s);
    step.requests_per_s = avg_opt(|s| s.requests_per_s);
    step.achieved_rps = avg_opt(|s| s.achieved_rps);
    step.slo_attainment_pct = avg_opt(|s| s.slo_attainment_pct);
    step.goodput_rps = avg_opt(|s| s.goodput_rps);
    step.goodput_tps = avg_opt(|s| s.goodput_tps);
    step.efficiency_pct = avg_opt(|s| s.efficiency_pct);
    step.scaling_efficiency_pct = avg_opt(|s| s.scaling_efficiency_pct);
    if let Some(spread) = step.per_conn_tps.as_mut() {
        spread.mean = mean(reps.iter().filter_map(|s| s.per_conn_tps.map(|p| p.mean))).unwrap_or(spread.mean);
    }
    if let Some(spread) = step.prefill_tps.as_mut() {
        spread.mean = mean(reps.iter().filter_map(|s| s.prefill_tps.map(|p| p.mean))).unwrap_or(spread.mean);
    }
    step.ttft_ms = mean_dist(reps, |s| s.ttft_ms);
    step.itl_ms = mean_dist(reps, |s| s.itl_ms);
    step.itl_per_token_ms = mean_dist(reps, |s| s.itl_per_token_ms);
    step.tpot_ms = mean_dist(reps, |s| s.tpot_ms);
    step.e2e_ms = mean_dist(reps, |s| s.e2e_ms);
    step.ttft_from_intended_ms = mean_dist(reps, |s| s.ttft_from_intended_ms);
    step.e2e_from_intended_ms = mean_dist(reps, |s| s.e2e_from_intended_ms);
    step.requests_ok = reps.iter().map(|s| s.requests_ok).sum();
    step.requests_failed = reps.iter().map(|s| s.requests_failed).sum();
    step.requests_unsent = reps.iter().map(|s| s.requests_unsent).sum();
    step.errors = BTreeMap::new();
    for rep in reps {
        for (class, n) in &rep.errors {
            *step.errors.entry(class.clone()).or_default() += n;
        }
    }
    step.saturated = reps.iter().any(|s| s.saturated);
    step.client_bound = reps.iter().any(|s| s.client_bound);
    step.slo_pass = reps
        .iter()
        .map(|s| s.slo_pass)
        .try_fold(true, |all, pass| pass.map(|p| all && p));
    step
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantiles_are_the_tables() {
        for (df, t) in [
            (1, 12.706),
            (2, 4.303),
            (4, 2.776),
            (9, 2.262),
            (30, 2.042),
            (60, 2.000),
            (120, 1.980),
        ] {
            assert!((t_975(df) - t).abs() < 1e-3, "t(0.975, {df}) = {} not {t}", t_975(df));
        }
        // The expansion meets the table where they join.
        assert!((t_975(31) - 2.0395).abs() < 1e-3);
        assert!((t_975(100_000) - 1.96).abs() < 1e-3);
    }

    #[test]
    fn confidence_interval_of_known_values() {
        // 800, 815.2, 822: mean 812.4, s = 11.26, half = 4.303 · 11.26 / √3 = 27.97.
        let f = FigureStats::of(vec![800.0, 815.2, 822.0]).unwrap();
        assert!((f.mean - 812.4).abs() < 1e-9);
        let s = ((12.4f64.powi(2) + 2.8f64.powi(2) + 9.6f64.powi(2)) / 2.0).sqrt();
        assert!((f.std - s).abs() < 1e-9, "{}", f.std);
        let half = 4.3027 * s / 3f64.sqrt();
        assert!((f.ci95_high - (812.4 + half)).abs() < 1e-6 && (f.ci95_low - (812.4 - half)).abs() < 1e-6);
        assert!((f.half_width() - half).abs() < 1e-6);
        // Equal values: no spread, an interval of width zero; one value: none at all.
        let same = FigureStats::of(vec![5.0; 4]).unwrap();
        assert_eq!(
            (same.ci95_low, same.mean, same.ci95_high, same.std),
            (5.0, 5.0, 5.0, 0.0)
        );
        assert!(FigureStats::of(vec![5.0]).is_none());
    }

    fn step(test: TestKind, c: u32, repeat: u32, tps: f64, failed: u64) -> StepStats {
        StepStats {
            test,
            load: LoadPoint::Concurrency(c),
            repeat: Some(repeat),
            requests_ok: 10,
            requests_failed: failed,
            output_throughput_tps: tps,
            ttft_ms: Some(Dist {
                count: 10,
                p99: tps / 10.0,
                ..Dist::default()
            }),
            ..StepStats::default()
        }
    }

    #[test]
    fn repetitions_are_grouped_by_point_and_merged_once() {
        let steps = vec![
            step(TestKind::Output, 1, 1, 100.0, 0),
            step(TestKind::Output, 2, 1, 180.0, 1),
            step(TestKind::Output, 1, 2, 110.0, 0),
            step(TestKind::Output, 2, 2, 200.0, 3),
        ];
        let stats = repeat_stats(&steps);
        assert_eq!(stats.len(), 2);
        assert_eq!((stats[0].load, stats[0].runs), (LoadPoint::Concurrency(1), 2));
        let tps = &stats[1].figures["output_throughput_tps"];
        assert_eq!((tps.mean, tps.values.clone()), (190.0, vec![180.0, 200.0]));
        assert!(tps.ci95_low < tps.mean && tps.mean < tps.ci95_high);
        assert_eq!(stats[1].figures["ttft_p99_ms"].mean, 19.0);
        // No embeddings figure and no ITL here: absent, not zero.
        assert!(!stats[0].figures.contains_key("itl_p50_ms"));
        let points = per_point(&steps);
        assert_eq!(points.len(), 2);
        assert_eq!((points[1].output_throughput_tps, points[1].requests_failed), (190.0, 4));
        assert_eq!(points[1].ttft_ms.unwrap().p99, 19.0);
        assert!(points.iter().all(|s| s.repeat.is_none()));
        // Scaling efficiency against the mean of the first point's repetitions (105 tok/s per
        // connection): its repetitions average 100%, and the merged steps carry the means.
        let mut scaled = steps.clone();
        crate::metrics::advice::fill_scaling_efficiency(&mut scaled);
        let pct: Vec<f64> = scaled.iter().map(|s| s.scaling_efficiency_pct.unwrap()).collect();
        let expect = [100.0 / 1.05, 90.0 / 1.05, 110.0 / 1.05, 100.0 / 1.05];
        assert!(pct.iter().zip(expect).all(|(a, b)| (a - b).abs() < 1e-9), "{pct:?}");
        let merged = per_point(&scaled);
        assert!((merged[0].scaling_efficiency_pct.unwrap() - 100.0).abs() < 1e-9);
        // Without --repeat nothing changes.
        let plain: Vec<StepStats> = steps.iter().cloned().map(|s| StepStats { repeat: None, ..s }).collect();
        assert!(repeat_stats(&plain).is_empty());
        assert_eq!(per_point(&plain), plain);
    }
}
