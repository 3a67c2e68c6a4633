//! Noise: a seeded percentile bootstrap over the requests of a step (docs/metrics.md, "Comparing
//! runs").
//!
//! Each run's figure is resampled on its own: [`RESAMPLES`] replicates, each expressed relative
//! to the figure's value in the records (1.0 = unchanged). Two runs' replicates, paired by
//! index, give replicates of the change; its 2.5th and 97.5th percentiles are the 95%
//! interval, centred on the change between the summaries' values.
//!
//! Two kinds of estimator keep this fast (a 10,000-request step in a few milliseconds):
//! - a **ratio of sums** over requests (means, throughputs): the requests are drawn with
//!   replacement, one set of draws per replicate shared by every ratio of the step;
//! - a **percentile**: the k-th smallest of n values drawn with replacement from n sorted
//!   values is the value at rank ⌊n·U⌋, U the k-th smallest of n uniforms, which is
//!   Beta(k, n − k + 1) distributed: one Beta draw gives the replicate exactly, without
//!   drawing n values. Chunk gaps (ITL) are pooled over requests but counted as one value per
//!   request (`n_eff`): the gaps of one request move together, so this errs towards "within
//!   noise".

use super::model::Verdict;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::{Beta, Distribution, Poisson};

/// Replicates per figure and run.
pub const RESAMPLES: usize = 1000;
/// Confidence level of the intervals.
pub const CONFIDENCE: f64 = 0.95;
/// The base seed: the same inputs give the same verdicts.
pub const SEED: u64 = 0x11b3_c0de_5eed;
/// Fewer values than this: no interval (verdict unknown).
pub const MIN_SAMPLES: usize = 10;
/// A percentile needs this many values beyond it (p99: 500 values): resampling cannot tell
/// how far a sample's largest values are from the true tail.
pub const MIN_TAIL: f64 = 5.0;

/// How one figure of one step is resampled.
#[derive(Debug, Clone)]
pub enum Estimator {
    /// Σ num / Σ den over the step's requests (a mean: den 1 where the request has the value,
    /// 0 where not; a closed-loop throughput: tokens over busy time). With `count_noise`, the
    /// number of requests itself varies (an open loop's arrivals): each replicate is also
    /// scaled by a Poisson(n) count over n.
    Ratio {
        num: Vec<f64>,
        den: Vec<f64>,
        count_noise: bool,
        /// A window's edges cut the requests in flight: each edge shifts the count by a
        /// uniform −½ … +½ of `edge.0` units of `num`; `edge.1` edges (0 for a batch).
        edge: (f64, usize),
    },
    /// The quantile `q` of `sorted` values, drawn as from `n_eff` independent values.
    Quantile { sorted: Vec<f64>, q: f64, n_eff: usize },
}

/// A small, fast generator for the request draws (SplitMix64); the seeded `StdRng` draws the
/// Beta and Poisson variates.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in 0..n (n < 2³²; the bias of the multiply-shift is below 2⁻³²·n).
    fn below(&mut self, n: usize) -> usize {
        (((self.next() >> 32) * n as u64) >> 32) as usize
    }
}

/// The seed of one run's resampling of one step: runs never share draws.
pub fn seed_for(run: usize, step: usize) -> u64 {
    SEED ^ ((run as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)) ^ ((step as u64 + 1) << 20)
}

/// Replicates of each estimator relative to its own value in the records; `None` where there
/// are too few values or the value is zero.
pub fn replicate(estimators: &[Estimator], seed: u64) -> Vec<Option<Vec<f64>>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out: Vec<Option<Vec<f64>>> = estimators
        .iter()
        .map(|e| match e {
            Estimator::Quantile { sorted, q, n_eff } => quantile_replicates(sorted, *q, *n_eff, &mut rng),
            Estimator::Ratio { .. } => None,
        })
        .collect();
    let ratios: Vec<usize> = (0..estimators.len())
        .filter(|&i| matches!(estimators[i], Estimator::Ratio { .. }))
        .collect();
    if let Some(&first) = ratios.first() {
        let Estimator::Ratio { num, .. } = &estimators[first] else {
            unreachable!("filtered to ratios")
        };
        let rows = num.len();
        let chosen: Vec<&Estimator> = ratios.iter().map(|&i| &estimators[i]).collect();
        for (i, reps) in ratios.iter().zip(ratio_replicates(&chosen, rows, seed, &mut rng)) {
            out[*i] = reps;
        }
    }
    out
}

fn quantile_replicates(sorted: &[f64], q: f64, n_eff: usize, rng: &mut StdRng) -> Option<Vec<f64>> {
    let m = sorted.len();
    let n = n_eff.min(m);
    if n < MIN_SAMPLES || (n as f64) * (1.0 - q) < MIN_TAIL - 1e-9 {
        return None;
    }
    let point = value_at_quantile(sorted, q);
    if point <= 0.0 {
        return None;
    }
    let k = ((q * n as f64).ceil() as usize).clamp(1, n);
    let beta = Beta::new(k as f64, (n - k + 1) as f64).ok()?;
    Some(
        (0..RESAMPLES)
            .map(|_| {
                let u: f64 = beta.sample(rng);
                let rank = ((u * m as f64) as usize).min(m - 1);
                sorted[rank] / point
            })
            .collect(),
    )
}

/// The value at quantile `q` of sorted values: the ⌈q·n⌉-th smallest.
pub fn value_at_quantile(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// A ratio estimator's numerators, denominators, count noise and edges.
type RatioParts<'a> = (&'a [f64], &'a [f64], bool, (f64, usize));

fn ratio_replicates(estimators: &[&Estimator], rows: usize, seed: u64, rng: &mut StdRng) -> Vec<Option<Vec<f64>>> {
    let parts: Vec<RatioParts> = estimators
        .iter()
        .map(|e| match e {
            Estimator::Ratio {
                num,
                den,
                count_noise,
                edge,
            } => (num.as_slice(), den.as_slice(), *count_noise, *edge),
            Estimator::Quantile { .. } => unreachable!("only ratios here"),
        })
        .collect();
    let totals: Vec<f64> = parts.iter().map(|(num, ..)| num.iter().sum()).collect();
    let points: Vec<Option<f64>> = parts
        .iter()
        .map(|(num, den, ..)| {
            let (n, d): (f64, f64) = (num.iter().sum(), den.iter().sum());
            let present = den.iter().filter(|&&d| d > 0.0).count();
            (d > 0.0 && n > 0.0 && present >= MIN_SAMPLES && num.len() == rows).then(|| n / d)
        })
        .collect();
    if rows < MIN_SAMPLES || points.iter().all(Option::is_none) {
        return vec![None; estimators.len()];
    }
    let counts = Poisson::new(rows as f64).ok();
    let mut draws = SplitMix(seed);
    let mut picked = vec![0usize; rows];
    let mut out: Vec<Vec<f64>> = vec![Vec::with_capacity(RESAMPLES); estimators.len()];
    for _ in 0..RESAMPLES {
        for slot in picked.iter_mut() {
            *slot = draws.below(rows);
        }
        for (e, (num, den, count_noise, edge)) in parts.iter().enumerate() {
            let Some(point) = points[e] else { continue };
            let (mut n, mut d) = (0.0, 0.0);
            for &i in &picked {
                n += num[i];
                d += den[i];
            }
            let mut relative = if d > 0.0 { n / d / point } else { 0.0 };
            if *count_noise {
                let count: f64 = counts.as_ref().map_or(rows as f64, |p| p.sample(rng));
                relative *= count / rows as f64;
            }
            let (units, edges) = *edge;
            if units > 0.0 && edges > 0 {
                let shift: f64 = (0..edges).map(|_| rng.random::<f64>() - 0.5).sum();
                relative *= (1.0 + shift * units / totals[e]).max(0.0);
            }
            out[e].push(relative);
        }
    }
    out.into_iter()
        .zip(points)
        .map(|(reps, point)| point.map(|_| reps))
        .collect()
}

/// What the records say about one figure of one run against the baseline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Judgement {
    /// Change of the value against the baseline, in percent.
    pub change_pct: Option<f64>,
    /// Its 95% interval, in percent.
    pub ci_pct: Option<(f64, f64)>,
    pub verdict: Verdict,
}

/// Judges `value` against `base` (the summaries' values) with each run's replicates (relative
/// to its value in the records, see [`replicate`]).
pub fn judge(
    base: Option<f64>,
    value: Option<f64>,
    base_reps: Option<&[f64]>,
    reps: Option<&[f64]>,
    higher_is_better: bool,
) -> Judgement {
    let change = match (base, value) {
        (Some(b), Some(v)) if b != 0.0 => Some(v / b - 1.0),
        _ => None,
    };
    let ci = match (change, base_reps, reps) {
        (Some(change), Some(a), Some(b)) if a.len() == b.len() && !a.is_empty() => {
            let mut changes: Vec<f64> = a
                .iter()
                .zip(b)
                .filter(|(ra, _)| **ra > 0.0)
                .map(|(ra, rb)| (1.0 + change) * rb / ra - 1.0)
                .collect();
            interval(&mut changes)
        }
        _ => None,
    };
    let verdict = match ci {
        None => Verdict::Unknown,
        Some((lo, hi)) if lo <= 0.0 && hi >= 0.0 => Verdict::WithinNoise,
        Some((lo, _)) => {
            if (lo > 0.0) == higher_is_better {
                Verdict::Better
            } else {
                Verdict::Worse
            }
        }
    };
    Judgement {
        change_pct: change.map(|c| 100.0 * c),
        ci_pct: ci.map(|(lo, hi)| (100.0 * lo, 100.0 * hi)),
        verdict,
    }
}

/// The central [`CONFIDENCE`] interval of replicates.
fn interval(values: &mut [f64]) -> Option<(f64, f64)> {
    if values.len() < RESAMPLES / 2 {
        return None;
    }
    values.sort_unstable_by(f64::total_cmp);
    let tail = (1.0 - CONFIDENCE) / 2.0;
    let n = values.len();
    let lo = ((tail * n as f64).floor() as usize).min(n - 1);
    let hi = (((1.0 - tail) * n as f64).ceil() as usize).clamp(1, n) - 1;
    Some((values[lo], values[hi]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_distr::LogNormal;

    /// n log-normal latencies (median `median_ms`), sorted.
    fn latencies(n: usize, median_ms: f64, seed: u64) -> Vec<f64> {
        let mut rng = StdRng::seed_from_u64(seed);
        let dist = LogNormal::new(median_ms.ln(), 0.4).unwrap();
        let mut v: Vec<f64> = (0..n).map(|_| dist.sample(&mut rng)).collect();
        v.sort_unstable_by(f64::total_cmp);
        v
    }

    fn ratio_of(values: &[f64]) -> Estimator {
        Estimator::Ratio {
            num: values.to_vec(),
            den: vec![1.0; values.len()],
            count_noise: false,
            edge: (0.0, 0),
        }
    }

    /// The verdicts of mean, p50 and p99 for samples A and B (lower is better).
    fn verdicts(a: &[f64], b: &[f64], seed: u64) -> Vec<Verdict> {
        let estimators = |v: &[f64]| {
            vec![
                ratio_of(v),
                Estimator::Quantile {
                    sorted: v.to_vec(),
                    q: 0.5,
                    n_eff: v.len(),
                },
                Estimator::Quantile {
                    sorted: v.to_vec(),
                    q: 0.99,
                    n_eff: v.len(),
                },
            ]
        };
        let (ra, rb) = (
            replicate(&estimators(a), seed_for(0, seed as usize)),
            replicate(&estimators(b), seed_for(1, seed as usize)),
        );
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let values = [
            (mean(a), mean(b)),
            (value_at_quantile(a, 0.5), value_at_quantile(b, 0.5)),
            (value_at_quantile(a, 0.99), value_at_quantile(b, 0.99)),
        ];
        (0..3)
            .map(|i| {
                judge(
                    Some(values[i].0),
                    Some(values[i].1),
                    ra[i].as_deref(),
                    rb[i].as_deref(),
                    false,
                )
                .verdict
            })
            .collect()
    }

    #[test]
    fn a_known_difference_is_judged() {
        // 20% slower: worse in mean, median and p99; 20% faster: better. (The p99 of 5000
        // values has a relative standard error of about 2% here: the shift is ~7 of them.)
        let a = latencies(5000, 100.0, 1);
        let slower = latencies(5000, 120.0, 2);
        let faster = latencies(5000, 80.0, 3);
        assert_eq!(verdicts(&a, &slower, 7), [Verdict::Worse; 3]);
        assert_eq!(verdicts(&a, &faster, 7), [Verdict::Better; 3]);
    }

    #[test]
    fn the_same_distribution_is_mostly_within_noise() {
        // 50 pairs of samples from one distribution: a 95% interval misses 0 about 5% of the
        // time; allow up to 16% per figure for a small number of trials.
        let trials = 50;
        let mut false_alarms = [0usize; 3];
        for t in 0..trials {
            let a = latencies(1000, 100.0, 100 + 2 * t);
            let b = latencies(1000, 100.0, 101 + 2 * t);
            for (i, v) in verdicts(&a, &b, t).into_iter().enumerate() {
                if v != Verdict::WithinNoise {
                    false_alarms[i] += 1;
                }
            }
        }
        for (i, n) in false_alarms.iter().enumerate() {
            assert!(
                *n <= 8,
                "figure {i}: {n} of {trials} same-distribution pairs judged different"
            );
        }
    }

    /// The false-positive rate over many same-distribution pairs, printed (`cargo test --release
    /// --lib false_positive_rate -- --ignored --nocapture`).
    #[test]
    #[ignore]
    fn false_positive_rate_over_many_trials() {
        let trials = 400;
        let mut false_alarms = [0usize; 3];
        for t in 0..trials {
            let a = latencies(1000, 100.0, 10_000 + 2 * t);
            let b = latencies(1000, 100.0, 10_001 + 2 * t);
            for (i, v) in verdicts(&a, &b, t).into_iter().enumerate() {
                false_alarms[i] += usize::from(v != Verdict::WithinNoise);
            }
        }
        for (name, n) in ["mean", "p50", "p99"].iter().zip(false_alarms) {
            println!(
                "{name}: {n} of {trials} ({:.1}%) judged different",
                100.0 * n as f64 / trials as f64
            );
        }
    }

    #[test]
    fn percentile_replicates_match_a_plain_bootstrap() {
        // The Beta shortcut against drawing n values: the spread of p99 replicates agrees.
        let v = latencies(500, 100.0, 9);
        let fast = quantile_replicates(&v, 0.99, v.len(), &mut StdRng::seed_from_u64(1)).unwrap();
        let mut draws = SplitMix(5);
        let point = value_at_quantile(&v, 0.99);
        let slow: Vec<f64> = (0..RESAMPLES)
            .map(|_| {
                let mut s: Vec<f64> = (0..v.len()).map(|_| v[draws.below(v.len())]).collect();
                s.sort_unstable_by(f64::total_cmp);
                value_at_quantile(&s, 0.99) / point
            })
            .collect();
        let sd = |x: &[f64]| {
            let m = x.iter().sum::<f64>() / x.len() as f64;
            (x.iter().map(|y| (y - m).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
        };
        let (a, b) = (sd(&fast), sd(&slow));
        assert!(a > 0.5 * b && a < 2.0 * b, "{a} vs {b}");
    }

    #[test]
    fn too_few_values_or_no_values_are_unknown() {
        let few = latencies(5, 100.0, 1);
        let reps = replicate(&[ratio_of(&few)], 1);
        assert!(reps[0].is_none());
        // p99 of 400 values: under 5 values beyond it.
        let v = latencies(400, 100.0, 1);
        let p = |q| Estimator::Quantile {
            sorted: v.clone(),
            q,
            n_eff: v.len(),
        };
        let reps = replicate(&[p(0.99), p(0.9)], 1);
        assert!(reps[0].is_none() && reps[1].is_some());
        let j = judge(Some(1.0), Some(2.0), None, None, true);
        assert_eq!((j.verdict, j.change_pct), (Verdict::Unknown, Some(100.0)));
        let j = judge(Some(0.0), Some(2.0), None, None, true);
        assert_eq!(j.change_pct, None);
    }

    #[test]
    fn an_open_loop_count_widens_the_interval() {
        let v = vec![100.0; 400];
        let closed = replicate(&[ratio_of(&v)], 3);
        let open = replicate(
            &[Estimator::Ratio {
                num: v.clone(),
                den: vec![1.0; v.len()],
                count_noise: true,
                edge: (0.0, 0),
            }],
            3,
        );
        let spread = |r: &[f64]| r.iter().fold(0.0f64, |m, x| m.max((x - 1.0).abs()));
        assert!(
            spread(closed[0].as_ref().unwrap()) < 1e-12,
            "constant values do not vary"
        );
        // Poisson(400): a relative sd of 5%.
        assert!(spread(open[0].as_ref().unwrap()) > 0.05);
    }
}
