//! Stress mode: `concurrency` connections busy for the whole duration, a report line per
//! interval, a checkpointed summary, and a drift verdict at the end.

use super::pump::{Pump, RecordSink};
use super::{Outcome, RunContext};
use crate::client::RequestRecord;
use crate::load::{run_closed_loop, LiveCounters, RequestMaker, StopRule};
use crate::metrics::{advice, StepAccumulator, StepStats};
use crate::monitor::health::ClientWatch;
use crate::monitor::{ClientHealth, HealthInputs, Monitor};
use crate::report::summary::{Interval, MonitorReport, StressReport};
use crate::report::{Reporter, Summary};
use crate::workload::TestKind;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

struct StressSink {
    concurrency: u32,
    totals: BTreeMap<TestKind, StepAccumulator>,
    window: BTreeMap<TestKind, StepAccumulator>,
    window_start: Instant,
    interval: Duration,
    intervals: Vec<Interval>,
    run_start: Instant,
    reporter: Arc<Reporter>,
    monitor: Arc<Monitor>,
    client_watch: Arc<ClientWatch>,
    /// The client's health over the interval where it was worst (highest lag), for the totals.
    worst_client: Option<ClientHealth>,
    live: Arc<LiveCounters>,
    /// Checkpoint written at every interval.
    summary: Summary,
    out_dir: PathBuf,
}

impl StressSink {
    fn fresh(tests: &[TestKind], concurrency: u32) -> BTreeMap<TestKind, StepAccumulator> {
        tests
            .iter()
            .map(|&t| (t, StepAccumulator::new(t, concurrency)))
            .collect()
    }

    fn close_window(&mut self, now: Instant) {
        let length = (now - self.window_start).as_secs_f64();
        let start_s = (self.window_start - self.run_start).as_secs_f64();
        let end_s = (now - self.run_start).as_secs_f64();
        let tests: Vec<TestKind> = self.window.keys().copied().collect();
        let window = std::mem::replace(&mut self.window, Self::fresh(&tests, self.concurrency));
        let system = {
            self.monitor.sample();
            self.monitor.summary(start_s, end_s)
        };
        let mut interval = Interval {
            index: self.intervals.len(),
            start_s,
            end_s,
            tests: Vec::new(),
        };
        let elapsed = humantime::format_duration(Duration::from_secs(end_s.round() as u64));
        // Several tests share the interval: judge the client by the strictest of their figures.
        let load = window
            .values()
            .map(StepAccumulator::client_load)
            .reduce(|a, b| HealthInputs {
                send_delay_mean_ms: max_of(a.send_delay_mean_ms, b.send_delay_mean_ms),
                send_delay_p99_ms: max_of(a.send_delay_p99_ms, b.send_delay_p99_ms),
                itl_p50_ms: min_of(a.itl_p50_ms, b.itl_p50_ms),
                e2e_mean_ms: min_of(a.e2e_mean_ms, b.e2e_mean_ms),
                ..a
            })
            .unwrap_or_default();
        let health = self.client_watch.end_window(length, load, system.process_cpu_pct_mean);
        for acc in window.into_values() {
            let mut stats = acc.stats(self.live.max_in_flight.load(Ordering::Relaxed));
            // An interval's rate is what finished in it over its length, not the span of
            // its requests (most of which started in an earlier interval).
            stats.duration_s = length;
            if length > 0.0 {
                stats.output_throughput_tps = stats.output_tokens as f64 / length;
                stats.request_throughput_rps = stats.requests_ok as f64 / length;
                stats.prompt_throughput_tps = stats.prompt_tokens as f64 / length;
            }
            stats.efficiency_pct = None;
            stats.system = Some(system.clone());
            stats.client_bound = health.client_bound;
            stats.client = Some(health.clone());
            self.reporter.line(&interval_line(&elapsed.to_string(), &stats));
            interval.tests.push(stats);
        }
        self.reporter.line(&format!("[{elapsed}] {}", system.describe()));
        if let Some(warning) = health.warning() {
            self.reporter.line(&format!("[{elapsed}] {warning}"));
        }
        let worse = self
            .worst_client
            .as_ref()
            .is_none_or(|w| (health.client_bound, health.lag.p99_ms) > (w.client_bound, w.lag.p99_ms));
        if worse {
            self.worst_client = Some(health);
        }
        self.intervals.push(interval);
        self.window_start = now;
        self.checkpoint();
    }

    fn totals(&self) -> Vec<StepStats> {
        let max = self.live.max_in_flight.load(Ordering::Relaxed);
        self.totals
            .values()
            .map(|acc| {
                let mut stats = acc.stats(max);
                stats.client_bound = self.worst_client.as_ref().is_some_and(|w| w.client_bound);
                stats.client = self.worst_client.clone();
                stats
            })
            .collect()
    }

    fn checkpoint(&mut self) {
        self.summary.steps = self.totals();
        self.summary.stress = Some(StressReport {
            intervals: self.intervals.clone(),
            drift: Vec::new(),
        });
        self.summary.monitor = MonitorReport {
            temperature_available: self.monitor.temperature_available(),
            samples: self.monitor.samples(),
        };
        if let Err(problem) = self.summary.write(&self.out_dir) {
            self.reporter.warn_results_lost(&problem);
        }
    }
}

impl RecordSink for StressSink {
    fn record(&mut self, rec: &RequestRecord) {
        if let Some(acc) = self.totals.get_mut(&rec.test) {
            acc.add(rec);
        }
        if let Some(acc) = self.window.get_mut(&rec.test) {
            acc.add(rec);
        }
    }

    fn tick(&mut self, now: Instant) {
        if now - self.window_start >= self.interval {
            self.close_window(now);
        }
    }
}

fn max_of(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn min_of(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn interval_line(elapsed: &str, s: &StepStats) -> String {
    let ms = |d: Option<crate::metrics::Dist>, f: fn(&crate::metrics::Dist) -> f64| {
        d.map(|d| format!("{:.1}", f(&d))).unwrap_or_else(|| "-".into())
    };
    let rate = match s.test {
        TestKind::Input => format!("{:.1} prompt tok/s", s.prompt_throughput_tps),
        _ => format!("{:.1} tok/s", s.output_throughput_tps),
    };
    let errors = if s.requests_failed > 0 {
        let e: Vec<String> = s.errors.iter().map(|(k, v)| format!("{k} {v}")).collect();
        format!(" ({})", e.join(", "))
    } else {
        String::new()
    };
    format!(
        "[{elapsed}] {}: {} ok, {} failed{errors}{} | {rate} | TTFT ms p50 {} p99 {} | ITL ms p50 {} p99 {}",
        s.test,
        s.requests_ok,
        s.requests_failed,
        crate::report::format::resent(s),
        ms(s.ttft_ms, |d| d.p50),
        ms(s.ttft_ms, |d| d.p99),
        ms(s.itl_ms, |d| d.p50),
        ms(s.itl_ms, |d| d.p99),
    )
}

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

pub(super) async fn run_stress(
    ctx: &mut RunContext,
    concurrency: u32,
    duration: Duration,
) -> (Vec<StepStats>, StressReport, Outcome) {
    let tests = ctx.config.tests.clone();
    ctx.live.reset();
    let (load_ctx, mut rx) = ctx.load_context();
    let maker = Arc::new(RequestMaker::new(ctx.workload.clone(), tests.clone(), ctx.ids.clone()));
    ctx.client_watch.begin_window();
    let mut sink = StressSink {
        concurrency,
        totals: StressSink::fresh(&tests, concurrency),
        window: StressSink::fresh(&tests, concurrency),
        window_start: Instant::now(),
        interval: ctx.config.report_interval,
        intervals: Vec::new(),
        run_start: ctx.run_start,
        reporter: ctx.reporter.clone(),
        monitor: ctx.monitor.clone(),
        client_watch: ctx.client_watch.clone(),
        worst_client: None,
        live: ctx.live.clone(),
        summary: ctx.summary.clone(),
        out_dir: ctx.config.out_dir.clone(),
    };
    {
        let mut pump = Pump {
            writer: &mut ctx.writer,
            reporter: &ctx.reporter,
            live: &ctx.live,
            label: format!("stress, concurrency {concurrency}"),
            expected: None,
        };
        let rule = StopRule::For {
            warmup: ctx.config.warmup,
            duration,
        };
        pump.run(run_closed_loop(&load_ctx, concurrency, rule, maker), &mut rx, &mut sink)
            .await;
    }
    let now = Instant::now();
    if now - sink.window_start >= Duration::from_secs(1) || sink.intervals.is_empty() {
        sink.close_window(now);
    }
    let totals = sink.totals();
    let report = StressReport {
        drift: drift(&sink.intervals),
        intervals: sink.intervals,
    };
    ctx.reporter.line("");
    ctx.reporter.line("Stress run summary:");
    for s in &totals {
        for line in crate::report::format::step_lines(s) {
            ctx.reporter.line(&line);
        }
    }
    let outcome = if ctx.signals.stop.is_cancelled() {
        Outcome::Interrupted
    } else {
        Outcome::Complete
    };
    (totals, report, outcome)
}
