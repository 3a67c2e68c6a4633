//! Bounded-memory distributions: HDR histograms for latencies, running moments for speeds.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Summary of a latency distribution, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Dist {
    pub count: u64,
    pub mean: f64,
    /// Population standard deviation (from the histogram, within its ±0.1%).
    #[serde(default)]
    pub std: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub min: f64,
    pub max: f64,
}

/// The percentiles a step's distributions are written at (`summary.json` → `cdf`): 0 is the
/// minimum, 100 the maximum.
pub const CDF_PERCENTILES: [f64; 23] = [
    0.0, 1.0, 2.5, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 40.0, 50.0, 60.0, 70.0, 75.0, 80.0, 85.0, 90.0, 95.0, 97.5, 99.0,
    99.5, 99.9, 100.0,
];

/// Compact distributions of a step's latencies: `[percentile, ms]` pairs at
/// [`CDF_PERCENTILES`], for the report's distribution charts. A latency with no values is left
/// out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cdf {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ttft_ms: Vec<[f64; 2]>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub itl_ms: Vec<[f64; 2]>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tpot_ms: Vec<[f64; 2]>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub e2e_ms: Vec<[f64; 2]>,
}

impl Cdf {
    /// `None` when every latency is empty.
    pub fn of(
        ttft: &LatencyHistogram,
        itl: &LatencyHistogram,
        tpot: &LatencyHistogram,
        e2e: &LatencyHistogram,
    ) -> Option<Self> {
        let cdf = Self {
            ttft_ms: ttft.cdf_ms(),
            itl_ms: itl.cdf_ms(),
            tpot_ms: tpot.cdf_ms(),
            e2e_ms: e2e.cdf_ms(),
        };
        (cdf != Self::default()).then_some(cdf)
    }
}

/// A latency histogram in microseconds (3 significant digits: ±0.1%), summarised in ms.
#[derive(Debug, Clone)]
pub struct LatencyHistogram(Histogram<u64>);

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self(Histogram::new(3).expect("3 significant figures is a valid precision"))
    }
}

impl LatencyHistogram {
    pub fn record_us(&mut self, us: u64) {
        // Auto-resizing histogram: recording only fails past u64 range, which cannot happen.
        let _ = self.0.record(us.max(1));
    }

    /// The value at percentile `p` (0–100], in ms.
    pub fn percentile_ms(&self, p: f64) -> Option<f64> {
        (!self.0.is_empty()).then(|| self.0.value_at_quantile((p / 100.0).clamp(0.0, 1.0)) as f64 / 1000.0)
    }

    /// The value at each of [`CDF_PERCENTILES`] as `[percentile, ms]`; empty when nothing was
    /// recorded.
    pub fn cdf_ms(&self) -> Vec<[f64; 2]> {
        CDF_PERCENTILES
            .iter()
            .filter_map(|&p| self.percentile_ms(p).map(|v| [p, v]))
            .collect()
    }

    /// The histogram losslessly, as `[value_us, count]` per non-empty bucket (the bucket's
    /// highest equivalent value): [`Self::from_buckets`] gives back the same histogram, bucket for
    /// bucket, so its percentiles, mean, min and max are the same (`histograms.jsonl`).
    pub fn buckets(&self) -> Vec<[u64; 2]> {
        self.0
            .iter_recorded()
            .map(|v| [v.value_iterated_to(), v.count_at_value()])
            .collect()
    }

    /// The histogram of [`Self::buckets`].
    pub fn from_buckets(buckets: &[[u64; 2]]) -> Self {
        let mut h = Self::default();
        for &[value, count] in buckets {
            let _ = h.0.record_n(value.max(1), count);
        }
        h
    }

    /// Adds another histogram's counts (same precision: exact).
    pub fn merge(&mut self, other: &Self) {
        let _ = self.0.add(&other.0);
    }

    pub fn dist_ms(&self) -> Option<Dist> {
        if self.0.is_empty() {
            return None;
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Some(Dist {
            count: self.0.len(),
            mean: self.0.mean() / 1000.0,
            std: self.0.stdev() / 1000.0,
            p50: ms(self.0.value_at_quantile(0.50)),
            p90: ms(self.0.value_at_quantile(0.90)),
            p99: ms(self.0.value_at_quantile(0.99)),
            min: ms(self.0.min()),
            max: ms(self.0.max()),
        })
    }
}

/// Mean, standard deviation, min and max without keeping samples (Welford's method).
#[derive(Debug, Clone, Copy, Default)]
pub struct Moments {
    count: u64,
    mean: f64,
    m2: f64,
    min: f64,
    max: f64,
}

/// Summary of a speed distribution.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    pub count: u64,
    pub mean: f64,
    /// Population standard deviation.
    pub std: f64,
    pub min: f64,
    pub max: f64,
}

impl Moments {
    pub fn add(&mut self, x: f64) {
        if !x.is_finite() {
            return;
        }
        if self.count == 0 {
            self.min = x;
            self.max = x;
        } else {
            self.min = self.min.min(x);
            self.max = self.max.max(x);
        }
        self.count += 1;
        let delta = x - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (x - self.mean);
    }

    pub fn spread(&self) -> Option<Spread> {
        (self.count > 0).then(|| Spread {
            count: self.count,
            mean: self.mean,
            std: (self.m2 / self.count as f64).sqrt(),
            min: self.min,
            max: self.max,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_match_direct_computation() {
        let xs = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        let mut m = Moments::default();
        xs.iter().for_each(|&x| m.add(x));
        let s = m.spread().unwrap();
        assert_eq!((s.count, s.mean, s.std, s.min, s.max), (8, 5.0, 2.0, 2.0, 9.0));
        assert!(Moments::default().spread().is_none());
        m.add(f64::NAN);
        assert_eq!(m.spread().unwrap().count, 8);
    }

    #[test]
    fn histogram_percentiles_in_ms() {
        let mut h = LatencyHistogram::default();
        for us in 1..=1000u64 {
            h.record_us(us * 1000);
        }
        let d = h.dist_ms().unwrap();
        assert_eq!(d.count, 1000);
        assert!((d.p50 - 500.0).abs() < 1.0, "{d:?}");
        assert!((d.p99 - 990.0).abs() < 1.5, "{d:?}");
        assert!((d.mean - 500.5).abs() < 1.0, "{d:?}");
        // 1 … 1000 ms evenly: σ = √((n² − 1) / 12) ≈ 288.7 ms.
        assert!((d.std - 288.7).abs() < 1.0, "{d:?}");
        assert_eq!(d.min, 1.0);
        assert!(LatencyHistogram::default().dist_ms().is_none());
        let cdf = h.cdf_ms();
        assert_eq!(cdf.len(), CDF_PERCENTILES.len());
        assert_eq!(cdf[0], [0.0, 1.0]);
        assert!(cdf.windows(2).all(|w| w[0][1] <= w[1][1]), "{cdf:?}");
        assert!((cdf[10][1] - 500.0).abs() < 1.0, "{cdf:?}");
        let empty = LatencyHistogram::default();
        assert!(LatencyHistogram::default().cdf_ms().is_empty());
        assert!(Cdf::of(&empty, &empty, &empty, &empty).is_none());
        assert!(Cdf::of(&h, &empty, &empty, &empty).is_some_and(|c| c.itl_ms.is_empty()));
    }
}
