//! Stress mode: one load point (a concurrency or a rate) for the whole duration, a report
//! line per interval (each interval a measurement window, ending on a grid of report intervals
//! from the load's start), a checkpointed summary, `histograms.jsonl` (each interval's lines as
//! it is reported, the totals' at the end), and a drift verdict at the end.

use super::merge::{HistogramFile, HistogramLine};
use super::pump::{Pump, RecordSink};
use super::steps::WindowedStep;
use super::{Outcome, RunContext};
use crate::client::RequestRecord;
use crate::i18n::{tr, Msg};
use crate::load::{run_load, LiveCounters, LoadPoint, Stop};
use crate::metrics::{StepAccumulator, StepStats, Window};
use crate::monitor::health::ClientWatch;
use crate::monitor::{ClientHealth, HealthInputs, Monitor};
use crate::report::live::{LiveBoard, LiveStep};
use crate::report::summary::{Interval, MonitorReport, StressReport};
use crate::report::{Reporter, Summary};
use crate::workload::TestKind;
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// An interval that has closed but may still be waiting for requests sent in it: its figures
/// follow the window rule (what arrived in it; requests sent in it, to their end), so it is
/// reported once every request started before its end has come back, or one report interval
/// later at the latest.
struct PendingInterval {
    index: usize,
    start_s: f64,
    end_s: f64,
    /// Requests started before its end (run total), and records seen of them.
    started_before_end: u64,
    seen: u64,
    accs: BTreeMap<TestKind, StepAccumulator>,
    health: ClientHealth,
    system: crate::monitor::SystemSummary,
    report_by: Instant,
}

struct StressSink {
    point: LoadPoint,
    slo: Option<crate::metrics::step::SloJudge>,
    totals: BTreeMap<TestKind, WindowedStep>,
    window: BTreeMap<TestKind, StepAccumulator>,
    window_start: Instant,
    /// When the current interval is due to close: the load's start + k report intervals, so
    /// that intervals do not drift by a tick each (and the shards of one run, started by one
    /// `--start-at`, close theirs together).
    next_close: Instant,
    /// When the load released: the first interval starts then (the connections open before).
    clock: Arc<crate::load::LoadClock>,
    released: bool,
    pending: VecDeque<PendingInterval>,
    /// Records received so far (all of them started before now).
    received: u64,
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
    /// `histograms.jsonl`: each interval's lines when it is reported (`None` once writing
    /// failed, said once).
    histograms: Option<HistogramFile>,
}

impl StressSink {
    fn fresh(&self, start_s: f64) -> BTreeMap<TestKind, StepAccumulator> {
        self.totals
            .keys()
            .map(|&t| {
                let acc = StepAccumulator::new(t, self.point)
                    .with_slo(self.slo.clone())
                    .with_window(Some(Window {
                        start_s,
                        end_s: f64::INFINITY,
                    }))
                    .counting_warmup_inside();
                (t, acc)
            })
            .collect()
    }

    /// Once the load has released, the first interval starts at its release and the grid of
    /// report intervals from there; false while it has not.
    fn catch_release(&mut self) -> bool {
        if self.released {
            return true;
        }
        let Some(released_s) = self.clock.released_s() else {
            return false;
        };
        let at = self.run_start + Duration::from_secs_f64(released_s);
        self.window_start = at;
        self.next_close = at + self.interval;
        self.window = self.fresh(released_s);
        self.released = true;
        true
    }

    /// Ends the current interval now; it is reported when its requests are in.
    fn close_window(&mut self, now: Instant) {
        // First, before any other work: requests started from here on began after `now`.
        let started_before_end = self.live.started.load(Ordering::Relaxed);
        let length = (now - self.window_start).as_secs_f64();
        let start_s = (self.window_start - self.run_start).as_secs_f64();
        let end_s = (now - self.run_start).as_secs_f64();
        let next = self.fresh(end_s);
        let mut accs = std::mem::replace(&mut self.window, next);
        for acc in accs.values_mut() {
            acc.set_window(Window { start_s, end_s });
        }
        let system = {
            self.monitor.boundary();
            self.monitor.summary(start_s, end_s)
        };
        // Several tests share the interval: judge the client by the strictest of their figures.
        let load = accs
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
        self.pending.push_back(PendingInterval {
            index: self.intervals.len() + self.pending.len(),
            start_s,
            end_s,
            started_before_end,
            seen: self.received,
            accs,
            health,
            system,
            report_by: now + self.interval,
        });
        self.window_start = now;
    }

    /// Reports the pending intervals whose requests are all in (or that waited long enough).
    fn report_ready(&mut self, now: Instant, all_in: bool) {
        while let Some(first) = self.pending.front() {
            if !(all_in || first.seen >= first.started_before_end || now >= first.report_by) {
                break;
            }
            let pending = self.pending.pop_front().expect("just looked");
            self.report_interval(pending);
        }
    }

    fn report_interval(&mut self, p: PendingInterval) {
        let elapsed = humantime::format_duration(Duration::from_secs(p.end_s.round() as u64));
        let mut interval = Interval {
            index: p.index,
            start_s: p.start_s,
            end_s: p.end_s,
            tests: Vec::new(),
            server_metrics: None,
            gpu: None,
        };
        let missing = p.started_before_end.saturating_sub(p.seen);
        let lines: Vec<HistogramLine> = p
            .accs
            .iter()
            .map(|(&test, acc)| HistogramLine::of((self.point, test, None), acc).in_interval(p.index))
            .collect();
        self.write_histograms(&lines);
        for acc in p.accs.into_values() {
            let mut stats = acc.stats(self.live.max_in_flight.load(Ordering::Relaxed));
            stats.efficiency_pct = None;
            stats.cdf = None;
            stats.timeline = None;
            stats.system = Some(p.system.clone());
            stats.client_bound = p.health.client_bound;
            stats.client = Some(p.health.clone());
            self.reporter
                .line(&crate::report::format::interval_line(&elapsed.to_string(), &stats));
            interval.tests.push(stats);
        }
        super::telemetry::attach_interval(&mut interval, &self.monitor);
        if let Some(line) =
            crate::report::format::telemetry_line(interval.server_metrics.as_ref(), interval.gpu.as_ref())
        {
            self.reporter.line(&format!("[{elapsed}] {line}"));
        }
        if let Some(line) = interval
            .server_metrics
            .as_ref()
            .and_then(|w| crate::metrics::telemetry::token_mismatch_at(&elapsed.to_string(), w))
        {
            self.reporter.line(&format!("[{elapsed}] {line}"));
        }
        if missing > 0 {
            self.reporter.line(&format!(
                "[{elapsed}] {}",
                crate::i18n::tr(crate::i18n::Msg::IntervalMissing, &[("n", &missing)])
            ));
        }
        self.reporter.line(&format!("[{elapsed}] {}", p.system.describe()));
        if let Some(warning) = p.health.warning() {
            self.reporter.line(&format!("[{elapsed}] {warning}"));
        }
        let worse = self
            .worst_client
            .as_ref()
            .is_none_or(|w| (p.health.client_bound, p.health.lag.p99_ms) > (w.client_bound, w.lag.p99_ms));
        if worse {
            self.worst_client = Some(p.health);
        }
        self.intervals.push(interval);
        self.checkpoint();
    }

    /// Appends lines to `histograms.jsonl` and flushes them; the first failure is said once
    /// and ends the file.
    fn write_histograms(&mut self, lines: &[HistogramLine]) {
        let Some(file) = self.histograms.as_mut() else { return };
        let written = lines
            .iter()
            .try_for_each(|line| file.write(line))
            .and_then(|()| file.flush());
        if let Err(problem) = written {
            self.histograms = None;
            self.reporter.warn_results_lost(&problem);
        }
    }

    /// The totals' lines, a test's each, after the intervals'; the file closed.
    fn finish_histograms(&mut self) {
        let lines: Vec<HistogramLine> = self
            .totals
            .iter()
            .map(|(&test, total)| HistogramLine::of((self.point, test, None), &total.acc))
            .collect();
        self.write_histograms(&lines);
        if let Some(Err(problem)) = self.histograms.take().map(HistogramFile::finish) {
            self.reporter.warn_results_lost(&problem);
        }
    }

    fn totals(&self) -> Vec<StepStats> {
        let max = self.live.max_in_flight.load(Ordering::Relaxed);
        self.totals
            .values()
            .map(|w| {
                let mut stats = w.acc.stats(max);
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
        self.summary.monitor = MonitorReport::of(&self.monitor);
        self.monitor.flush();
        if let Err(problem) = self.summary.write(&self.out_dir) {
            self.reporter.warn_results_lost(&problem);
        }
    }
}

impl RecordSink for StressSink {
    fn record(&mut self, rec: &RequestRecord) {
        self.catch_release();
        self.received += 1;
        if let Some(total) = self.totals.get_mut(&rec.test) {
            total.record(rec);
        }
        if let Some(acc) = self.window.get_mut(&rec.test) {
            acc.add(rec);
        }
        for pending in &mut self.pending {
            if let Some(acc) = pending.accs.get_mut(&rec.test) {
                acc.add(rec);
            }
            // Started just before the interval closed, a request's own stamps come a few µs
            // later (connecting): a millisecond's margin.
            if began_s(rec) < pending.end_s + 1e-3 {
                pending.seen += 1;
            }
        }
    }

    fn tick(&mut self, now: Instant) {
        if !self.catch_release() {
            return;
        }
        // The tick nearest the boundary closes the interval.
        let half_tick = super::pump::TICK / 2;
        if now + half_tick >= self.next_close {
            self.close_window(now);
            while self.next_close <= now + half_tick {
                self.next_close += self.interval;
            }
        }
        self.report_ready(now, false);
    }
}

/// When the worker began the request (it counts it as started then): before connecting and
/// before a first attempt that was resent.
fn began_s(rec: &RequestRecord) -> f64 {
    // A resent request went out first on a connection already open; the resend's wait holds
    // the new connection's opening.
    let before_us = if rec.resends > 0 {
        rec.resend_wait_us
    } else {
        rec.connect_us
    };
    rec.start_s - before_us as f64 / 1e6
}

fn add_served(a: crate::metrics::step::Served, b: crate::metrics::step::Served) -> crate::metrics::step::Served {
    crate::metrics::step::Served {
        requests: a.requests + b.requests,
        prompt_tokens: a.prompt_tokens + b.prompt_tokens,
        output_tokens: a.output_tokens + b.output_tokens,
        cached_prompt_tokens: a.cached_prompt_tokens + b.cached_prompt_tokens,
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

impl StressSink {
    /// The sink of a stress run at `point`: its totals per test over the plan's window, its
    /// first report interval open from `window_start`.
    fn new(
        ctx: &RunContext,
        point: LoadPoint,
        plan: &crate::load::StepPlan,
        clock: Arc<crate::load::LoadClock>,
        window_start: Instant,
    ) -> Self {
        let slo = ctx.config.slo_judge();
        let exact_output = ctx.config.ignore_eos;
        let mut sink = StressSink {
            point,
            slo: slo.clone(),
            totals: ctx
                .config
                .tests
                .iter()
                .map(|&t| {
                    let total = WindowedStep {
                        acc: StepAccumulator::new(t, point)
                            .with_slo(slo.clone())
                            .asking_exact_output(exact_output),
                        window: plan.window(),
                        clock: clock.clone(),
                    };
                    (t, total)
                })
                .collect(),
            window: BTreeMap::new(),
            window_start,
            next_close: window_start + ctx.config.report_interval,
            clock: clock.clone(),
            released: false,
            pending: VecDeque::new(),
            received: 0,
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
            histograms: HistogramFile::appending(&ctx.config.out_dir)
                .map_err(|problem| ctx.reporter.warn_results_lost(&problem))
                .ok(),
        };
        sink.window = sink.fresh((sink.window_start - ctx.run_start).as_secs_f64());
        sink
    }
}

/// How the live view names a stress run: one planned step, its ramp-up and duration long.
fn live_step(board: &LiveBoard, point: LoadPoint, plan: &crate::load::StepPlan) -> LiveStep {
    board.set_plan(vec![super::steps::planned(plan.stop, plan.ramp_up)]);
    LiveStep {
        heading: format!("{} · {point}", tr(Msg::LiveStress, &[])),
        index: Some(0),
        expected: None,
    }
}

/// The stress run's totals, after its last interval.
fn print_totals(reporter: &crate::report::Reporter, totals: &[StepStats]) {
    reporter.line("");
    reporter.line(&crate::i18n::tr(crate::i18n::Msg::StressSummaryHeading, &[]));
    for s in totals {
        for line in crate::report::format::step_lines(s) {
            reporter.line(&line);
        }
        if let Some(sentence) = &s.pacing_warning {
            reporter.line(&format!("  {sentence}"));
        }
    }
}

pub(super) async fn run_stress(
    ctx: &mut RunContext,
    point: LoadPoint,
    duration: Duration,
) -> (Vec<StepStats>, StressReport, Outcome) {
    let tests = ctx.config.tests.clone();
    ctx.live.reset();
    let (load_ctx, mut rx) = ctx.load_context();
    let maker = Arc::new(ctx.request_maker(tests.clone()));
    let mut plan = ctx.config.load.plan(point, Stop::For(duration));
    let slot = ctx.take_slot(&mut plan).await;
    // The first interval's telemetry starts from a sample taken before the release.
    let boundary = super::schedule::FirstBoundary::take(ctx.monitor.clone(), slot).await;
    ctx.client_watch.begin_window();
    let window_start = Instant::now();
    let mut sink = StressSink::new(ctx, point, &plan, load_ctx.clock.clone(), window_start);
    let (report, started_s) = {
        let mut pump = Pump {
            writer: &mut ctx.writer,
            reporter: &ctx.reporter,
            live: &ctx.live,
            label: crate::i18n::tr(crate::i18n::Msg::StressLabel, &[("point", &point.in_words())]),
            expected: None,
            repeat: None,
            board: ctx
                .board
                .as_deref()
                .map(|board| (board, live_step(board, point, &plan))),
        };
        tokio::join!(
            pump.run(run_load(&load_ctx, &plan, maker), &mut rx, &mut sink),
            boundary.settle()
        )
    };
    let late_ms = slot.map(|slot| ctx.lateness(slot, point, &report));
    let now = Instant::now();
    if now - sink.window_start >= Duration::from_secs(1) || (sink.intervals.is_empty() && sink.pending.is_empty()) {
        sink.close_window(now);
    }
    let ended_s = ctx.monitor.boundary_settled().await;
    sink.report_ready(now, true);
    if let Some((start_s, end_s)) = report.window {
        // The load's own window: it ends early at saturation or a stop.
        for total in sink.totals.values_mut() {
            total.acc.set_window(Window { start_s, end_s });
        }
    }
    sink.finish_histograms();
    let mut totals = sink.totals();
    // The server and the GPUs serve every test at once: their figures are the whole load's.
    let served = sink
        .totals
        .values()
        .map(|w| w.acc.served())
        .fold(Default::default(), add_served);
    for total in &mut totals {
        crate::metrics::pacing::apply(total, &report, ctx.config.load.max_concurrency);
        super::telemetry::attach_step(total, &ctx.monitor, (started_s, ended_s), served);
        if let (Some(slot), Some(late_ms)) = (slot, late_ms) {
            total.scheduled_start = Some(super::schedule::rfc3339_ms(slot.at));
            total.start_lateness_ms = Some(late_ms);
        }
    }
    let report = StressReport {
        drift: crate::metrics::drift::drift(&sink.intervals),
        intervals: sink.intervals,
    };
    print_totals(&ctx.reporter, &totals);
    let outcome = if ctx.signals.stop.is_cancelled() {
        Outcome::Interrupted
    } else {
        Outcome::Complete
    };
    (totals, report, outcome)
}
