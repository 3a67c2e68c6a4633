//! The few numbers per request that compare judges noise from, read from `requests.jsonl` one
//! line at a time and grouped by (test, load point). A request counts as the step figures count
//! it (see `StepAccumulator::add`): measured (not warm-up), sent inside the step's window when
//! the step had one, not cut by llm-bench; latencies only from the successful ones.

use super::figures::{Figure, Flow, Latency, Speed, Stat};
use super::stats::Estimator;
use crate::client::{ErrorClass, Phase, RequestRecord};
use crate::load::LoadPoint;
use crate::metrics::step::Window;
use crate::workload::TestKind;
use std::io::BufRead;
use std::path::Path;

/// At most this many chunk gaps are kept per step (a seeded reservoir): the percentile's
/// interval is drawn as from one value per request, so more gaps would not narrow it.
const GAP_RESERVOIR: usize = 200_000;

/// Two load points are the same: equal concurrencies, or rates within 0.1%.
pub fn same_point(a: LoadPoint, b: LoadPoint) -> bool {
    match (a, b) {
        (LoadPoint::Concurrency(x), LoadPoint::Concurrency(y)) => x == y,
        (LoadPoint::Rate(x), LoadPoint::Rate(y)) => (x - y).abs() <= 1e-3 * x.abs().max(y.abs()),
        _ => false,
    }
}

/// A pool of values with a fixed maximum size (Vitter's algorithm R, seeded).
#[derive(Debug, Default)]
struct Reservoir {
    values: Vec<f64>,
    seen: u64,
    state: u64,
}

impl Reservoir {
    fn add(&mut self, x: f64) {
        self.seen += 1;
        if self.values.len() < GAP_RESERVOIR {
            self.values.push(x);
            return;
        }
        self.state = self
            .state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let slot = ((self.state >> 33) % self.seen) as usize;
        if slot < GAP_RESERVOIR {
            self.values[slot] = x;
        }
    }
}

/// One step's requests, reduced: a row per measured request (NaN where it has no value).
#[derive(Debug, Default)]
pub struct StepSamples {
    pub test: TestKind,
    pub load: LoadPoint,
    /// The windows of the step's repetitions (none: a batch, every measured request counts).
    windows: Vec<Window>,
    out_tokens: Vec<f64>,
    prompt_tokens: Vec<f64>,
    completed: Vec<f64>,
    busy_s: Vec<f64>,
    ttft_ms: Vec<f64>,
    tpot_ms: Vec<f64>,
    e2e_ms: Vec<f64>,
    ttft_intended_ms: Vec<f64>,
    e2e_intended_ms: Vec<f64>,
    per_conn_tps: Vec<f64>,
    prefill_tps: Vec<f64>,
    gap_sum_ms: Vec<f64>,
    gap_count: Vec<f64>,
    gap_pt_sum_ms: Vec<f64>,
    gap_pt_count: Vec<f64>,
    gaps: Reservoir,
    gaps_per_token: Reservoir,
    /// The pools sorted, once (p50 and p99 use the same).
    sorted_gaps: std::cell::OnceCell<Vec<f64>>,
    sorted_gaps_per_token: std::cell::OnceCell<Vec<f64>>,
}

impl StepSamples {
    pub fn new(test: TestKind, load: LoadPoint, windows: Vec<Window>) -> Self {
        Self {
            test,
            load,
            windows,
            ..Self::default()
        }
    }

    /// Measured requests kept (successful or failed).
    pub fn requests(&self) -> usize {
        self.busy_s.len()
    }

    fn counts(&self, rec: &RequestRecord) -> bool {
        rec.phase == Phase::Measured
            && rec.error != Some(ErrorClass::Cancelled)
            && (self.windows.is_empty() || self.windows.iter().any(|w| w.contains(rec.intended_s())))
    }

    pub fn add(&mut self, rec: &RequestRecord) {
        if !self.counts(rec) {
            return;
        }
        let ok = rec.ok;
        let when_ok = |x: Option<f64>| x.filter(|_| ok).unwrap_or(f64::NAN);
        let open = matches!(self.load, LoadPoint::Rate(_));
        let late = rec.lateness_us() as f64;
        self.out_tokens.push(if ok { rec.output_tokens as f64 } else { 0.0 });
        self.prompt_tokens.push(if ok { rec.prompt_tokens as f64 } else { 0.0 });
        self.completed.push(if ok { 1.0 } else { 0.0 });
        self.busy_s.push((rec.end_us as f64 / 1e6).max(1e-6));
        self.ttft_ms.push(when_ok(rec.ttft_us().map(|t| t as f64 / 1e3)));
        self.tpot_ms.push(when_ok(rec.tpot_us().map(|t| t / 1e3)));
        self.e2e_ms.push(when_ok(Some(rec.end_us as f64 / 1e3)));
        let intended = |x: Option<f64>| when_ok(x.filter(|_| open).map(|t| (t + late) / 1e3));
        self.ttft_intended_ms.push(intended(rec.ttft_us().map(|t| t as f64)));
        self.e2e_intended_ms.push(intended(Some(rec.end_us as f64)));
        self.per_conn_tps.push(when_ok(rec.generation_tps()));
        self.prefill_tps.push(when_ok(rec.prefill_tps()));
        let (mut sum, mut count, mut pt_sum, mut pt_count) = (0.0, 0.0, 0.0, 0.0);
        if ok {
            for (i, pair) in rec.token_us.windows(2).enumerate() {
                let gap_ms = pair[1].saturating_sub(pair[0]) as f64 / 1e3;
                sum += gap_ms;
                count += 1.0;
                self.gaps.add(gap_ms);
                let tokens = rec.tokens_in_chunk(i + 1);
                if tokens > 0.0 {
                    pt_sum += gap_ms / tokens;
                    pt_count += 1.0;
                    self.gaps_per_token.add(gap_ms / tokens);
                }
            }
        }
        self.gap_sum_ms.push(sum);
        self.gap_count.push(count);
        self.gap_pt_sum_ms.push(pt_sum);
        self.gap_pt_count.push(pt_count);
    }

    /// Requests in flight on average over the windows (Σ busy time / window time; 0 for a
    /// batch, which has no edges).
    fn in_flight(&self) -> f64 {
        let window_s: f64 = self.windows.iter().map(Window::length_s).sum();
        if window_s > 0.0 {
            self.busy_s.iter().sum::<f64>() / window_s
        } else {
            0.0
        }
    }

    fn latency_column(&self, latency: Latency) -> &[f64] {
        match latency {
            Latency::Ttft => &self.ttft_ms,
            Latency::Tpot => &self.tpot_ms,
            Latency::E2e => &self.e2e_ms,
            Latency::TtftFromIntended => &self.ttft_intended_ms,
            Latency::E2eFromIntended => &self.e2e_intended_ms,
            Latency::Itl | Latency::ItlPerToken => &[],
        }
    }

    /// How `figure` is resampled from these requests; `None` for figures without a noise model.
    pub fn estimator(&self, figure: Figure) -> Option<Estimator> {
        let present = |column: &[f64]| Estimator::Ratio {
            num: column.iter().map(|x| if x.is_nan() { 0.0 } else { *x }).collect(),
            den: column.iter().map(|x| if x.is_nan() { 0.0 } else { 1.0 }).collect(),
            count_noise: false,
            edge: (0.0, 0),
        };
        let open = matches!(self.load, LoadPoint::Rate(_));
        Some(match figure {
            Figure::Throughput(flow) => {
                let num = match flow {
                    Flow::OutputTokens => &self.out_tokens,
                    Flow::Requests => &self.completed,
                    Flow::PromptTokens => &self.prompt_tokens,
                };
                // Closed loop: concurrency × Σ tokens / Σ busy time (Little's law); open loop:
                // the tokens of the requests the schedule sent, whose number varies. A window's
                // edges cut the requests in flight: completions and prompts (counted at once,
                // when a request ends or its first token comes) move by whole requests there;
                // output tokens by what a request would generate in its TTFT, when none come.
                let units = match flow {
                    Flow::OutputTokens => {
                        let (ttft, tpot) = (nan_mean(&self.ttft_ms), nan_mean(&self.tpot_ms));
                        if tpot > 0.0 {
                            self.in_flight() * ttft / tpot
                        } else {
                            0.0
                        }
                    }
                    Flow::Requests => self.in_flight(),
                    Flow::PromptTokens => self.in_flight() * mean(&self.prompt_tokens, &self.completed),
                };
                let edge = (units, 2 * self.windows.len());
                Estimator::Ratio {
                    num: num.clone(),
                    den: if open {
                        vec![1.0; num.len()]
                    } else {
                        self.busy_s.clone()
                    },
                    count_noise: open,
                    edge,
                }
            }
            Figure::Latency(latency, Stat::Mean) if latency.per_gap() => {
                let (sum, count) = if latency == Latency::Itl {
                    (&self.gap_sum_ms, &self.gap_count)
                } else {
                    (&self.gap_pt_sum_ms, &self.gap_pt_count)
                };
                Estimator::Ratio {
                    num: sum.clone(),
                    den: count.clone(),
                    count_noise: false,
                    edge: (0.0, 0),
                }
            }
            Figure::Latency(latency, stat) if latency.per_gap() => {
                let (pool, cell) = if latency == Latency::Itl {
                    (&self.gaps, &self.sorted_gaps)
                } else {
                    (&self.gaps_per_token, &self.sorted_gaps_per_token)
                };
                let sorted = cell
                    .get_or_init(|| {
                        let mut sorted = pool.values.clone();
                        sorted.sort_unstable_by(f64::total_cmp);
                        sorted
                    })
                    .clone();
                let counts = if latency == Latency::Itl {
                    &self.gap_count
                } else {
                    &self.gap_pt_count
                };
                Estimator::Quantile {
                    sorted,
                    q: stat.quantile()?,
                    n_eff: counts.iter().filter(|&&c| c > 0.0).count(),
                }
            }
            Figure::Latency(latency, Stat::Mean) => present(self.latency_column(latency)),
            Figure::Latency(latency, stat) => {
                let mut sorted: Vec<f64> = self
                    .latency_column(latency)
                    .iter()
                    .copied()
                    .filter(|x| !x.is_nan())
                    .collect();
                sorted.sort_unstable_by(f64::total_cmp);
                let n_eff = sorted.len();
                Estimator::Quantile {
                    sorted,
                    q: stat.quantile()?,
                    n_eff,
                }
            }
            Figure::SpeedMean(Speed::PerConn) => present(&self.per_conn_tps),
            Figure::SpeedMean(Speed::Prefill) => present(&self.prefill_tps),
            Figure::Plain(_) | Figure::CapacityRps | Figure::CapacityConcurrency | Figure::Knee => return None,
        })
    }
}

/// The mean of the values that are not NaN (0 without any).
fn nan_mean(x: &[f64]) -> f64 {
    let (sum, n) = x
        .iter()
        .filter(|v| !v.is_nan())
        .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n > 0 {
        sum / n as f64
    } else {
        0.0
    }
}

/// Σ x / Σ weight (0 without weight).
fn mean(x: &[f64], weight: &[f64]) -> f64 {
    let w: f64 = weight.iter().sum();
    if w > 0.0 {
        x.iter().sum::<f64>() / w
    } else {
        0.0
    }
}

/// Streams `requests.jsonl` into the steps given (each with its test, point and windows);
/// records of other steps are skipped. Returns how many lines did not parse.
pub fn read_into(path: &Path, steps: &mut [StepSamples]) -> Result<usize, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let mut line = String::new();
    let mut bad = 0;
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
        if line.trim().is_empty() {
            continue;
        }
        let Ok(rec) = serde_json::from_str::<RequestRecord>(&line) else {
            bad += 1;
            continue;
        };
        let point = rec.point();
        if let Some(step) = steps
            .iter_mut()
            .find(|s| s.test == rec.test && same_point(s.load, point))
        {
            step.add(&rec);
        }
    }
    Ok(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(start_s: f64, ttft_us: u64, phase: Phase) -> RequestRecord {
        let tokens: Vec<u64> = (0..5).map(|i| ttft_us + i * 10_000).collect();
        RequestRecord {
            start_s,
            ok: true,
            phase,
            first_token_us: Some(ttft_us),
            last_token_us: tokens.last().copied(),
            end_us: ttft_us + 50_000,
            output_tokens: 5,
            token_us: tokens,
            ..RequestRecord::default()
        }
    }

    #[test]
    fn requests_count_as_the_step_figures_count_them() {
        let window = Window {
            start_s: 10.0,
            end_s: 20.0,
        };
        let mut s = StepSamples::new(TestKind::Output, LoadPoint::Concurrency(2), vec![window]);
        s.add(&record(9.0, 100_000, Phase::Measured)); // before the window
        s.add(&record(11.0, 100_000, Phase::Warmup)); // warm-up
        s.add(&record(12.0, 100_000, Phase::Measured));
        s.add(&RequestRecord {
            start_s: 13.0,
            error: Some(ErrorClass::Cancelled),
            ..RequestRecord::default()
        });
        s.add(&RequestRecord {
            start_s: 14.0,
            end_us: 5_000,
            error: Some(ErrorClass::Http(500)),
            ..RequestRecord::default()
        });
        assert_eq!(s.requests(), 2, "one success and one failure");
        assert_eq!(s.ttft_ms.iter().filter(|x| !x.is_nan()).count(), 1);
        assert_eq!(s.gaps.values.len(), 4);
        assert_eq!(s.completed, [1.0, 0.0]);
    }

    #[test]
    fn rates_match_within_a_small_tolerance() {
        let cases = [
            (LoadPoint::Rate(8.0), LoadPoint::Rate(8.000_01), true),
            (LoadPoint::Rate(8.0), LoadPoint::Rate(8.1), false),
            (LoadPoint::Concurrency(8), LoadPoint::Concurrency(8), true),
            (LoadPoint::Concurrency(8), LoadPoint::Rate(8.0), false),
        ];
        for (a, b, same) in cases {
            assert_eq!(same_point(a, b), same, "{a} {b}");
        }
    }

    #[test]
    fn records_are_streamed_into_their_steps() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("requests.jsonl");
        let mut text = String::new();
        for (i, c) in [1u32, 1, 2, 4].iter().enumerate() {
            let rec = RequestRecord {
                concurrency: *c,
                ..record(i as f64, 100_000, Phase::Measured)
            };
            text.push_str(&serde_json::to_string(&rec).unwrap());
            text.push('\n');
        }
        text.push_str("{cut by a crash\n");
        std::fs::write(&path, text).unwrap();
        let mut steps = vec![
            StepSamples::new(TestKind::Output, LoadPoint::Concurrency(1), vec![]),
            StepSamples::new(TestKind::Output, LoadPoint::Concurrency(2), vec![]),
        ];
        assert_eq!(read_into(&path, &mut steps), Ok(1));
        assert_eq!((steps[0].requests(), steps[1].requests()), (2, 1));
    }
}
