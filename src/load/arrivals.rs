//! Open-loop arrival schedules: the times at which requests are *intended* to be sent.
//!
//! An open-loop step sends requests at times fixed in advance, whether or not earlier
//! requests have finished. [`Schedule`] yields those times, in seconds after the step's
//! start, for a target rate, an optional linear ramp-up and one of three gap shapes
//! ([`Arrival`]).
//!
//! # Method
//!
//! 1. Draw unit-mean gaps `g_i` in "operational time":
//!    - Poisson: `Exp(1)` (coefficient of variation 1);
//!    - Gamma: `Gamma(shape K, scale 1/K)` with `K = burstiness` (mean 1, CV `1/sqrt(K)`,
//!      the same convention as vLLM's `--burstiness`);
//!    - Constant: exactly 1 (CV 0).
//! 2. Accumulate `s_n = g_1 + ... + g_n`, with `s_0 = 0`: the first request is at `t = 0`,
//!    then one more per gap.
//! 3. Map `s_n` to real time through the inverse of the cumulative intensity
//!    `Λ(t) = ∫0^t λ(u) du`, where `λ(t) = rate · min(1, t/R)` and `R` is the ramp-up:
//!    - for `t ≤ R`: `Λ(t) = rate·t²/(2R)`, so `t = sqrt(2·R·s/rate)`;
//!    - after: `Λ(t) = rate·R/2 + rate·(t − R)`, so `t = s/rate + R/2`;
//!    - without a ramp (`R = 0`): `t = s/rate`.
//!
//! Time-changing a unit-rate renewal process by `Λ⁻¹` gives an exact non-homogeneous
//! process of the requested kind: for Poisson gaps it is exactly the non-homogeneous
//! Poisson process with intensity `λ(t)`; for Gamma and Constant gaps the spacing keeps
//! its shape (CV) while the local rate follows `λ(t)`. The expected number of arrivals in
//! `[0, t]` is `Λ(t)` (plus the one at `t = 0`), e.g. `rate·R/2` during the ramp.
//!
//! The gaps come from a [`StdRng`] seeded with `seed`, so the same arguments and seed give
//! the same times (with the same `rand` version: `StdRng`'s algorithm may change between
//! `rand` releases).

use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Exp1, Gamma};

/// Recorded send times of a trace, in seconds after its first request (sorted, the first 0),
/// already divided by `--trace-speed`.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceTimes(pub Arc<[f64]>);

impl TraceTimes {
    /// From timestamps in ms (any order is sorted; the earliest becomes 0), `speed` times faster.
    pub fn from_ms(stamps_ms: impl IntoIterator<Item = f64>, speed: f64) -> Self {
        let mut times: Vec<f64> = stamps_ms.into_iter().collect();
        times.sort_by(f64::total_cmp);
        let first = times.first().copied().unwrap_or(0.0);
        let speed = if speed > 0.0 && speed.is_finite() { speed } else { 1.0 };
        Self(times.iter().map(|t| (t - first) / 1000.0 / speed).collect())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The times of a shard's rows (row k when k mod N is its index), on the whole trace's clock.
    pub fn rows_of(&self, shard: super::Shard) -> Self {
        Self(
            self.0
                .iter()
                .enumerate()
                .filter(|(k, _)| shard.takes_row(*k as u64))
                .map(|(_, t)| *t)
                .collect(),
        )
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// From the first to the last send, in seconds.
    pub fn span_s(&self) -> f64 {
        self.0.last().copied().unwrap_or(0.0)
    }

    /// Requests per second over the trace (its mean rate).
    pub fn mean_rate(&self) -> f64 {
        match self.0.len() {
            0 => 0.0,
            n if self.span_s() > 0.0 => (n - 1) as f64 / self.span_s(),
            _ => f64::INFINITY,
        }
    }

    /// Standard deviation / mean of the gaps.
    pub fn cv(&self) -> f64 {
        let gaps: Vec<f64> = self.0.windows(2).map(|w| w[1] - w[0]).collect();
        if gaps.is_empty() {
            return 0.0;
        }
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
        if mean > 0.0 {
            var.sqrt() / mean
        } else {
            0.0
        }
    }
}

impl serde::Serialize for TraceTimes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(2))?;
        map.serialize_entry("requests", &self.len())?;
        map.serialize_entry("span_s", &self.span_s())?;
        map.end()
    }
}

/// How open-loop requests are spaced in time.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Arrival {
    /// A trace's recorded times (Mooncake `timestamp`, a JSONL `timestamp`), replayed.
    Trace { times: TraceTimes },
    /// Exponential gaps (coefficient of variation 1).
    Poisson,
    /// Gamma-distributed gaps with shape `burstiness` (vLLM's --burstiness): 1 = Poisson,
    /// < 1 burstier, > 1 more regular; CV = 1/sqrt(shape).
    Gamma { burstiness: f64 },
    /// Equal gaps (CV 0).
    Constant,
}

impl Arrival {
    /// The name used on the command line: `poisson`, `gamma` or `constant`.
    pub fn name(&self) -> &'static str {
        match self {
            Arrival::Trace { .. } => "trace",
            Arrival::Poisson => "poisson",
            Arrival::Gamma { .. } => "gamma",
            Arrival::Constant => "constant",
        }
    }

    /// The coefficient of variation of the gaps (standard deviation / mean) that this kind
    /// is meant to give: 1, `1/sqrt(burstiness)` or 0.
    pub fn cv(&self) -> f64 {
        match self {
            Arrival::Trace { times } => times.cv(),
            Arrival::Poisson => 1.0,
            Arrival::Gamma { burstiness } => 1.0 / burstiness.sqrt(),
            Arrival::Constant => 0.0,
        }
    }
}

impl std::fmt::Display for Arrival {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Arrival::Gamma { burstiness } => write!(f, "gamma (burstiness {burstiness})"),
            Arrival::Trace { times } => write!(
                f,
                "trace replay ({} requests over {:.2} s)",
                times.len(),
                times.span_s()
            ),
            other => f.write_str(other.name()),
        }
    }
}

/// Parses `--arrival NAME` with an optional `--burstiness B`.
///
/// Names are `poisson`, `gamma` and `constant`, in any case. `gamma` takes the burstiness
/// (1.0 when `None`, which is the same process as `poisson`); `poisson` accepts only a
/// burstiness of 1 and `constant` none at all. A burstiness must be finite and above 0.
/// Errors are one sentence saying what is wrong and what to write instead.
pub fn parse_arrival(name: &str, burstiness: Option<f64>) -> Result<Arrival, String> {
    if let Some(b) = burstiness {
        if !(b.is_finite() && b > 0.0) {
            return Err(format!(
                "`--burstiness {b}` must be a finite number above 0; use e.g. --burstiness 0.5 (burstier) \
                 or --burstiness 2 (more regular)"
            ));
        }
    }
    let trimmed = name.trim();
    match trimmed.to_ascii_lowercase().as_str() {
        "poisson" => match burstiness {
            Some(b) if b != 1.0 => Err(format!(
                "--burstiness needs --arrival gamma; write `--arrival gamma --burstiness {b}`, \
                 or drop --burstiness for poisson arrivals"
            )),
            _ => Ok(Arrival::Poisson),
        },
        "gamma" => Ok(Arrival::Gamma {
            burstiness: burstiness.unwrap_or(1.0),
        }),
        "constant" => match burstiness {
            Some(b) => Err(format!(
                "--burstiness needs --arrival gamma (constant arrivals have no burstiness); write \
                 `--arrival gamma --burstiness {b}`, or drop --burstiness"
            )),
            None => Ok(Arrival::Constant),
        },
        "" => Err("--arrival needs a value; use poisson, gamma or constant".to_string()),
        _ => Err(format!(
            "`--arrival {trimmed}` is not known; use poisson, gamma or constant"
        )),
    }
}

/// The unit-mean gap generator in operational time.
#[derive(Debug)]
enum Gaps {
    /// A trace's recorded times: the next index into them.
    Trace(Arc<[f64]>, usize),
    Exp,
    Gamma(Gamma<f64>),
    Constant,
}

impl Gaps {
    fn for_arrival(arrival: &Arrival) -> Self {
        match *arrival {
            Arrival::Trace { ref times } => Gaps::Trace(times.0.clone(), 0),
            Arrival::Poisson => Gaps::Exp,
            // Shape K, scale 1/K: mean 1. An infinite shape is the constant limit (CV 0);
            // a shape the caller should have refused (NaN, <= 0) falls back to Poisson.
            Arrival::Gamma { burstiness } if burstiness == f64::INFINITY => Gaps::Constant,
            Arrival::Gamma { burstiness } => match Gamma::new(burstiness, 1.0 / burstiness) {
                Ok(g) if burstiness.is_finite() && burstiness > 0.0 => Gaps::Gamma(g),
                _ => Gaps::Exp,
            },
            Arrival::Constant => Gaps::Constant,
        }
    }

    fn sample(&self, rng: &mut StdRng) -> f64 {
        let g: f64 = match self {
            Gaps::Trace(..) => 0.0,
            Gaps::Exp => Exp1.sample(rng),
            Gaps::Gamma(d) => d.sample(rng),
            Gaps::Constant => 1.0,
        };
        // Gaps are never negative or NaN; guard anyway so times stay non-decreasing.
        if g >= 0.0 {
            g
        } else {
            0.0
        }
    }
}

/// Intended send times of one open-loop step, in seconds after the step's start.
///
/// The first time is 0; the times are non-decreasing and never end (it is also an
/// [`Iterator`] that always returns `Some`).
#[derive(Debug)]
pub struct Schedule {
    arrival: Arrival,
    rate: f64,
    ramp_s: f64,
    gaps: Gaps,
    rng: StdRng,
    /// Operational time of the next arrival (`s_n`).
    s: f64,
}

impl Schedule {
    /// `rate` requests/s (> 0, finite), optional linear ramp-up: the rate grows linearly
    /// from 0 at t=0 to `rate` at t=ramp_up, then stays. `seed` makes the schedule repeatable
    /// (same arguments + seed = same times).
    ///
    /// The caller validates `rate` and the burstiness; this never panics on bad values: a
    /// Gamma burstiness that is NaN or not above 0 gives Poisson gaps, an infinite one
    /// constant gaps; an infinite rate puts every time at 0, and a rate that is not above 0
    /// (or NaN) puts every time after the first at `f64::INFINITY` (never).
    pub fn new(arrival: Arrival, rate: f64, ramp_up: Duration, seed: u64) -> Self {
        Schedule {
            gaps: Gaps::for_arrival(&arrival),
            arrival,
            rate,
            ramp_s: ramp_up.as_secs_f64(),
            rng: StdRng::seed_from_u64(seed),
            s: 0.0,
        }
    }

    /// The arrival kind this schedule was made with.
    pub fn arrival(&self) -> &Arrival {
        &self.arrival
    }

    /// The target rate after the ramp-up, in requests/s.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// The ramp-up length in seconds (0 when there is none).
    pub fn ramp_up_s(&self) -> f64 {
        self.ramp_s
    }

    /// The next intended send time (seconds after the step's start); non-decreasing, never ends.
    pub fn next_s(&mut self) -> f64 {
        if let Gaps::Trace(times, next) = &mut self.gaps {
            // A trace ends: after its last request nothing more is due.
            let t = times.get(*next).copied().unwrap_or(f64::INFINITY);
            *next += 1;
            return t;
        }
        let t = self.time_of(self.s);
        self.s += self.gaps.sample(&mut self.rng);
        t
    }

    /// The target rate at time t (rate * min(1, t / ramp_up); `rate` when there is no ramp).
    /// Before 0 it is 0 while ramping up.
    pub fn rate_at(&self, t_s: f64) -> f64 {
        if self.ramp_s > 0.0 {
            self.rate * (t_s / self.ramp_s).clamp(0.0, 1.0)
        } else {
            self.rate
        }
    }

    /// The cumulative intensity `Λ(t)`: the expected number of arrivals in `(0, t]`, not
    /// counting the one at `t = 0`. Useful to size a step or to check a run's count.
    pub fn expected_count(&self, t_s: f64) -> f64 {
        let t = t_s.max(0.0);
        if let Arrival::Trace { times } = &self.arrival {
            // The sends due in (0, t].
            return times.0.partition_point(|&x| x <= t).saturating_sub(1) as f64;
        }
        let r = self.ramp_s;
        if r <= 0.0 {
            self.rate * t
        } else if t <= r {
            self.rate * t * t / (2.0 * r)
        } else {
            self.rate * (r / 2.0 + (t - r))
        }
    }

    /// Maps operational time `s` to real time: `Λ⁻¹(s)`.
    fn time_of(&self, s: f64) -> f64 {
        if s <= 0.0 {
            return 0.0;
        }
        if self.rate.is_nan() || self.rate <= 0.0 {
            return f64::INFINITY;
        }
        let r = self.ramp_s;
        if r <= 0.0 {
            return s / self.rate;
        }
        if s <= self.rate * r / 2.0 {
            (2.0 * r * s / self.rate).sqrt()
        } else {
            s / self.rate + r / 2.0
        }
    }
}

impl Iterator for Schedule {
    type Item = f64;

    fn next(&mut self) -> Option<f64> {
        Some(self.next_s())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (usize::MAX, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Gaps between consecutive times.
    fn gaps(times: &[f64]) -> Vec<f64> {
        times.windows(2).map(|w| w[1] - w[0]).collect()
    }

    fn mean_cv(xs: &[f64]) -> (f64, f64) {
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0);
        (mean, var.sqrt() / mean)
    }

    fn times(arrival: Arrival, rate: f64, ramp_s: f64, seed: u64, n: usize) -> Vec<f64> {
        Schedule::new(arrival.clone(), rate, Duration::from_secs_f64(ramp_s), seed)
            .take(n)
            .collect()
    }

    /// Achieved rate, gap CV and fraction of gaps above the mean gap (1/rate) over `n` gaps,
    /// streamed (Welford) rather than collected.
    fn gap_stats(arrival: Arrival, rate: f64, seed: u64, n: usize) -> (f64, f64, f64) {
        let mut s = Schedule::new(arrival.clone(), rate, Duration::ZERO, seed);
        let first = s.next_s();
        assert_eq!(first, 0.0, "{arrival}: first time");
        let (mut prev, mut mean, mut m2, mut above) = (first, 0.0, 0.0, 0usize);
        for i in 1..=n {
            let t = s.next_s();
            let g = t - prev;
            prev = t;
            let d = g - mean;
            mean += d / i as f64;
            m2 += d * (g - mean);
            above += usize::from(g > 1.0 / rate);
        }
        let cv = (m2 / (n as f64 - 1.0)).sqrt() / mean;
        (n as f64 / prev, cv, above as f64 / n as f64)
    }

    /// Achieved rate and gap CV per kind. With N gaps of CV c the achieved rate's relative
    /// standard error is c/sqrt(N), so N = max(200,000, 400,000·c²) puts the 1% bound at 6.3
    /// standard errors or more (N = 1.6M for c = 2). The sample CV's relative error is about
    /// sqrt(2 + 6/K)/(2·sqrt(N)) for Gamma shape K (0.2% for K = 0.25), so the 5% bound is
    /// over 20 of them. For exponential gaps P(gap > mean) = e^-1 ≈ 0.3679 with standard error
    /// 0.00076 at N = 400,000: ±0.005 is 6.5 of them, and rules out other shapes with CV 1.
    #[test]
    fn rate_and_cv_per_kind() {
        let rate = 40.0;
        // (arrival, wanted CV, wanted P(gap > mean) when the gaps are exponential)
        let cases = [
            (Arrival::Poisson, 1.0f64, Some((-1.0f64).exp())),
            (Arrival::Gamma { burstiness: 1.0 }, 1.0, Some((-1.0f64).exp())),
            (Arrival::Gamma { burstiness: 0.25 }, 2.0, None),
            (Arrival::Gamma { burstiness: 4.0 }, 0.5, None),
            (Arrival::Constant, 0.0, None),
        ];
        for (seed, (arrival, want_cv, want_above)) in cases.into_iter().enumerate() {
            let n = (400_000.0 * want_cv * want_cv).max(200_000.0) as usize;
            let (achieved, cv, above) = gap_stats(arrival.clone(), rate, 1000 + seed as u64, n);
            eprintln!(
                "{arrival}: {n} gaps, achieved rate {achieved:.4}/s (target {rate}), gap CV {cv:.4} \
                 (want {want_cv}), P(gap > mean) {above:.4}"
            );
            assert!(
                (achieved / rate - 1.0).abs() < 0.01,
                "{arrival}: achieved rate {achieved} vs {rate}"
            );
            assert!((want_cv - arrival.cv()).abs() < 1e-12, "{arrival}: Arrival::cv");
            if want_cv == 0.0 {
                assert!(cv.abs() < 1e-6, "{arrival}: CV {cv} should be 0");
                assert!(
                    (achieved / rate - 1.0).abs() < 1e-9,
                    "{arrival}: constant rate is exact"
                );
            } else {
                assert!((cv / want_cv - 1.0).abs() < 0.05, "{arrival}: CV {cv} vs {want_cv}");
            }
            if let Some(p) = want_above {
                assert!((above - p).abs() < 0.005, "{arrival}: P(gap > mean) {above} vs {p}");
            }
        }
    }

    #[test]
    fn same_seed_same_times_different_seed_different_times() {
        for arrival in [Arrival::Poisson, Arrival::Gamma { burstiness: 0.5 }, Arrival::Constant] {
            for ramp in [0.0, 5.0] {
                let a = times(arrival.clone(), 20.0, ramp, 42, 1000);
                let b = times(arrival.clone(), 20.0, ramp, 42, 1000);
                assert_eq!(a, b, "{arrival} ramp {ramp}: same seed");
                let c = times(arrival.clone(), 20.0, ramp, 43, 1000);
                if arrival == Arrival::Constant {
                    assert_eq!(a, c, "constant times do not depend on the seed");
                } else {
                    assert_ne!(a, c, "{arrival} ramp {ramp}: different seed");
                }
            }
        }
    }

    #[test]
    fn first_time_is_zero_and_times_never_decrease() {
        let kinds = [
            Arrival::Poisson,
            Arrival::Gamma { burstiness: 0.05 },
            Arrival::Gamma { burstiness: 4.0 },
            Arrival::Constant,
        ];
        for arrival in kinds {
            for ramp in [0.0, 0.5, 10.0] {
                let ts = times(arrival.clone(), 100.0, ramp, 3, 20_000);
                assert_eq!(ts[0], 0.0, "{arrival} ramp {ramp}");
                assert!(ts.windows(2).all(|w| w[1] >= w[0]), "{arrival} ramp {ramp}: decreasing");
                assert!(ts.iter().all(|t| t.is_finite()), "{arrival} ramp {ramp}: not finite");
            }
        }
    }

    fn count_in(ts: &[f64], from: f64, to: f64) -> usize {
        ts.iter().filter(|&&t| t >= from && t < to).count()
    }

    /// Rate 100, ramp 10 s: Λ(10) = 500 and Λ(20) − Λ(10) = 1000. A Poisson count with mean m
    /// has standard deviation sqrt(m), so 6·sqrt(m) (±134 and ±190) never trips by chance.
    #[test]
    fn ramp_up_counts_single_seed() {
        let ts = times(Arrival::Poisson, 100.0, 10.0, 11, 3000);
        assert_eq!(ts[0], 0.0);
        assert!(ts.windows(2).all(|w| w[1] >= w[0]));
        let ramp = count_in(&ts, 0.0, 10.0) as f64;
        let flat = count_in(&ts, 10.0, 20.0) as f64;
        eprintln!("ramp 10 s at 100/s: {ramp} arrivals in [0,10), {flat} in [10,20)");
        assert!((ramp - 500.0).abs() < 6.0 * 500f64.sqrt(), "[0,10): {ramp}");
        assert!((flat - 1000.0).abs() < 6.0 * 1000f64.sqrt(), "[10,20): {flat}");
    }

    /// The ramp's shape, summed over 40 seeds: windows [0,5), [5,10), [10,20) expect
    /// Λ = 125, 375 and 1000 per seed (a linear-in-time bug would give 250, 250, 1000).
    /// For a renewal process the count's variance is about CV²·mean, so the bound is
    /// 6·max(CV, 1)·sqrt(mean) + 1 (the +1 covers the rounding of constant gaps and the
    /// arrival at t = 0).
    #[test]
    fn ramp_up_shape_per_kind() {
        const SEEDS: u64 = 40;
        let windows = [(0.0, 5.0), (5.0, 10.0), (10.0, 20.0)];
        let kinds = [
            Arrival::Poisson,
            Arrival::Gamma { burstiness: 0.25 },
            Arrival::Gamma { burstiness: 4.0 },
            Arrival::Constant,
        ];
        for arrival in kinds {
            let mut counts = [0usize; 3];
            let mut expected = [0.0; 3];
            for seed in 0..SEEDS {
                let s = Schedule::new(arrival.clone(), 100.0, Duration::from_secs(10), seed);
                for (i, &(a, b)) in windows.iter().enumerate() {
                    expected[i] += s.expected_count(b) - s.expected_count(a);
                }
                let ts: Vec<f64> = s.take_while(|&t| t < 20.0).collect();
                for (i, &(a, b)) in windows.iter().enumerate() {
                    counts[i] += count_in(&ts, a, b);
                }
            }
            for i in 0..3 {
                let (got, want) = (counts[i] as f64, expected[i]);
                let tol = 6.0 * arrival.cv().max(1.0) * want.sqrt() + SEEDS as f64;
                eprintln!(
                    "{arrival}: window {:?}: {got} arrivals (want {want} ± {tol:.0})",
                    windows[i]
                );
                assert!(
                    (got - want).abs() < tol,
                    "{arrival} window {:?}: {got} vs {want}",
                    windows[i]
                );
            }
        }
    }

    /// Constant gaps map exactly onto Λ⁻¹: the n-th time is sqrt(2·R·n/rate) during the ramp
    /// and n/rate + R/2 after it.
    #[test]
    fn constant_ramp_times_are_exact() {
        let (rate, r) = (100.0, 10.0);
        let ts = times(Arrival::Constant, rate, r, 0, 2001);
        for (n, &t) in ts.iter().enumerate() {
            let n = n as f64;
            let want = if n <= rate * r / 2.0 {
                (2.0 * r * n / rate).sqrt()
            } else {
                n / rate + r / 2.0
            };
            assert!((t - want).abs() < 1e-9, "n = {n}: {t} vs {want}");
        }
        assert!((ts[500] - 10.0).abs() < 1e-9);
        assert!((ts[1500] - 20.0).abs() < 1e-9);
    }

    #[test]
    fn rate_at_and_expected_count() {
        let ramped = Schedule::new(Arrival::Poisson, 100.0, Duration::from_secs(10), 0);
        let flat = Schedule::new(Arrival::Poisson, 100.0, Duration::ZERO, 0);
        // (schedule, t, rate_at, expected_count)
        let cases = [
            (&ramped, -1.0, 0.0, 0.0),
            (&ramped, 0.0, 0.0, 0.0),
            (&ramped, 2.5, 25.0, 31.25),
            (&ramped, 5.0, 50.0, 125.0),
            (&ramped, 10.0, 100.0, 500.0),
            (&ramped, 20.0, 100.0, 1500.0),
            (&flat, 0.0, 100.0, 0.0),
            (&flat, 3.0, 100.0, 300.0),
        ];
        for (s, t, want_rate, want_count) in cases {
            assert!(
                (s.rate_at(t) - want_rate).abs() < 1e-9,
                "rate_at({t}) ramp {}",
                s.ramp_up_s()
            );
            assert!(
                (s.expected_count(t) - want_count).abs() < 1e-9,
                "expected_count({t}) ramp {}",
                s.ramp_up_s()
            );
        }
        assert_eq!(ramped.rate(), 100.0);
        assert_eq!(*ramped.arrival(), Arrival::Poisson);
    }

    #[test]
    fn parse_arrival_good() {
        let cases = [
            ("poisson", None, Arrival::Poisson),
            ("Poisson", Some(1.0), Arrival::Poisson),
            ("GAMMA", None, Arrival::Gamma { burstiness: 1.0 }),
            ("gamma", Some(0.25), Arrival::Gamma { burstiness: 0.25 }),
            (" gamma ", Some(4.0), Arrival::Gamma { burstiness: 4.0 }),
            ("constant", None, Arrival::Constant),
            ("Constant", None, Arrival::Constant),
        ];
        for (name, b, want) in cases {
            assert_eq!(parse_arrival(name, b), Ok(want), "{name:?} {b:?}");
        }
    }

    #[test]
    fn parse_arrival_bad() {
        // (name, burstiness, text the error must contain)
        let cases = [
            (
                "uniform",
                None,
                "`--arrival uniform` is not known; use poisson, gamma or constant",
            ),
            ("", None, "--arrival needs a value"),
            ("poisson", Some(0.5), "--burstiness needs --arrival gamma"),
            ("constant", Some(1.0), "--burstiness needs --arrival gamma"),
            ("gamma", Some(0.0), "`--burstiness 0` must be a finite number above 0"),
            ("gamma", Some(-1.0), "`--burstiness -1` must be a finite number above 0"),
            ("gamma", Some(f64::NAN), "must be a finite number above 0"),
            ("gamma", Some(f64::INFINITY), "must be a finite number above 0"),
        ];
        for (name, b, want) in cases {
            let err = parse_arrival(name, b).expect_err(&format!("{name:?} {b:?} should fail"));
            assert!(err.contains(want), "{name:?} {b:?}: {err:?} lacks {want:?}");
            assert!(!err.contains('\n'), "one line: {err:?}");
        }
    }

    /// Values the caller should have refused still give usable, panic-free schedules.
    #[test]
    fn bad_values_fall_back_without_panic() {
        // Burstiness NaN / <= 0: Poisson gaps; infinite: constant gaps.
        for (b, want_cv) in [(f64::NAN, 1.0), (0.0, 1.0), (-2.0, 1.0), (f64::INFINITY, 0.0)] {
            let ts = times(Arrival::Gamma { burstiness: b }, 10.0, 0.0, 5, 100_001);
            assert!(ts.iter().all(|t| t.is_finite()), "burstiness {b}");
            let (_, cv) = mean_cv(&gaps(&ts));
            assert!((cv - want_cv).abs() < 0.05, "burstiness {b}: CV {cv}");
        }
        // Infinite rate: everything at once; rate 0 / negative / NaN: only the first at 0.
        assert!(times(Arrival::Poisson, f64::INFINITY, 0.0, 1, 10)
            .iter()
            .all(|&t| t == 0.0));
        assert!(times(Arrival::Poisson, f64::INFINITY, 5.0, 1, 10)
            .iter()
            .all(|&t| t == 0.0));
        for rate in [0.0, -1.0, f64::NAN] {
            for ramp in [0.0, 5.0] {
                let ts = times(Arrival::Constant, rate, ramp, 1, 5);
                assert_eq!(ts[0], 0.0);
                assert!(
                    ts[1..].iter().all(|&t| t == f64::INFINITY),
                    "rate {rate} ramp {ramp}: {ts:?}"
                );
            }
        }
    }

    #[test]
    fn serializes_with_kind_tag() {
        let cases = [
            (Arrival::Poisson, r#"{"kind":"poisson"}"#),
            (
                Arrival::Gamma { burstiness: 0.25 },
                r#"{"kind":"gamma","burstiness":0.25}"#,
            ),
            (Arrival::Constant, r#"{"kind":"constant"}"#),
        ];
        for (arrival, want) in cases {
            assert_eq!(serde_json::to_string(&arrival).ok().as_deref(), Some(want));
        }
        assert_eq!(Arrival::Gamma { burstiness: 0.5 }.to_string(), "gamma (burstiness 0.5)");
        assert_eq!(Arrival::Poisson.to_string(), "poisson");
    }

    #[test]
    fn a_trace_replays_its_times_then_ends() {
        let times = TraceTimes::from_ms([3000.0, 1000.0, 1500.0, 1500.0], 2.0);
        assert_eq!(&*times.0, &[0.0, 0.25, 0.25, 1.0]);
        assert_eq!(times.mean_rate(), 3.0);
        let mut s = Schedule::new(Arrival::Trace { times: times.clone() }, 3.0, Duration::ZERO, 1);
        let got: Vec<f64> = (0..5).map(|_| s.next_s()).collect();
        assert_eq!(&got[..4], &[0.0, 0.25, 0.25, 1.0]);
        assert!(got[4].is_infinite(), "nothing after the last request");
        assert_eq!(s.expected_count(0.5), 2.0);
        assert_eq!(
            Arrival::Trace { times }.to_string(),
            "trace replay (4 requests over 1.00 s)"
        );
    }
}
