//! Step mode: one step per load point and test — a concurrency sweep (exactly that many
//! requests in flight) or a rate sweep (requests at intended times), the whole sweep run N
//! times with `--repeat N` — and the single measured step that sweeps and the capacity search
//! are made of.

use super::pump::{Pump, RecordSink};
use super::{Outcome, RunContext};
use crate::cli::config::Mode;
use crate::client::RequestRecord;
use crate::i18n::{tr, Msg};
use crate::load::{run_load, LoadPoint, Stop};
use crate::metrics::{advice, pacing, StepAccumulator, StepStats, Window};
use crate::report::format;
use crate::report::live::{LiveStep, PlannedStep};
use crate::workload::TestKind;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// A measured step, and what the scheduler saw of it.
pub(super) struct StepResult {
    pub stats: StepStats,
    /// TTFT (from the intended send) grew through the step.
    pub ttft_rising: bool,
}

/// The stop rule of a step at `point`: the configured one, or one request per connection.
fn stop_for(point: LoadPoint, stop: Option<Stop>) -> Stop {
    stop.unwrap_or(Stop::Requests(u64::from(point.concurrency().unwrap_or(1))))
}

/// How a step is named: in the plain progress lines, in the live view, in its records.
pub(super) struct StepName {
    /// "step 3/6 [output] concurrency 20".
    pub label: String,
    pub live: LiveStep,
    /// `--repeat`: which repetition (1-based).
    pub repeat: Option<u32>,
}

impl StepName {
    /// Step `index` (0-based) of the `total` of a sweep.
    fn sweep(step: &SweepStep, index: usize, total: usize, repeats: u32) -> Self {
        let (point, test) = (step.point, step.test);
        let run = step.repeat.map(|k| tr(Msg::RepeatRun, &[("k", &k), ("n", &repeats)]));
        let mut label = tr(
            Msg::StepLabel,
            &[
                ("n", &(index + 1)),
                ("total", &total),
                ("test", &test),
                ("point", &point.in_words()),
            ],
        );
        let mut heading = format!(
            "{} · [{test}] {}",
            tr(Msg::LiveStep, &[("n", &(index + 1)), ("total", &total)]),
            point.in_words()
        );
        if let Some(run) = &run {
            label.push_str(&format!(" ({run})"));
            heading.push_str(&format!(" · {run}"));
        }
        Self {
            label,
            live: LiveStep {
                heading,
                index: Some(index),
                expected: None,
            },
            repeat: step.repeat,
        }
    }

    /// Probe `n` (1-based) of a capacity search.
    pub fn probe(n: usize, test: TestKind, point: LoadPoint) -> Self {
        Self {
            label: tr(
                Msg::ProbeLabel,
                &[("n", &n), ("test", &test), ("point", &point.in_words())],
            ),
            live: LiveStep {
                heading: format!("{} · [{test}] {}", tr(Msg::LiveProbe, &[("n", &n)]), point.in_words()),
                index: None,
                expected: None,
            },
            repeat: None,
        }
    }
}

/// One step of a sweep.
#[derive(Debug, Clone, Copy, PartialEq)]
struct SweepStep {
    point: LoadPoint,
    test: TestKind,
    /// `--repeat N` (N ≥ 2): the repetition, 1-based.
    repeat: Option<u32>,
}

/// The steps of a sweep in the order they run: every load point with each test, and with
/// `--repeat N` that whole list N times (A1 B1 … A2 B2 …), so drift spreads over the points.
fn sweep(points: &[LoadPoint], tests: &[TestKind], repeats: u32) -> Vec<SweepStep> {
    (1..=repeats.max(1))
        .flat_map(|k| {
            points.iter().flat_map(move |&point| {
                tests.iter().map(move |&test| SweepStep {
                    point,
                    test,
                    repeat: (repeats > 1).then_some(k),
                })
            })
        })
        .collect()
}

/// How long (or how many requests) a step is planned to take, for the live view's time left.
pub(super) fn planned(stop: Stop, ramp_up: std::time::Duration) -> PlannedStep {
    match stop {
        Stop::For(d) => PlannedStep::For((ramp_up + d).as_secs_f64()),
        Stop::Requests(n) => PlannedStep::Requests(n),
    }
}

/// Runs one step at `point` for `test`, prints its lines and returns its figures.
pub(super) async fn run_step(
    ctx: &mut RunContext,
    point: LoadPoint,
    stop: Stop,
    test: TestKind,
    name: StepName,
) -> StepResult {
    let mut plan = ctx.config.load.plan(point, stop);
    ctx.live.reset();
    let (load_ctx, mut rx) = ctx.load_context();
    let maker = Arc::new(ctx.request_maker(vec![test]));
    // The window is known once the load is released; records only come after that.
    let mut acc = WindowedStep {
        acc: StepAccumulator::new(test, point)
            .with_slo(ctx.config.slo_judge())
            .asking_exact_output(ctx.config.ignore_eos),
        window: plan.window(),
        clock: load_ctx.clock.clone(),
    };
    let slot = ctx.take_slot(&mut plan).await;
    let boundary = super::schedule::FirstBoundary::take(ctx.monitor.clone(), slot).await;
    ctx.client_watch.begin_window();
    let (report, t0) = {
        let expected = match stop {
            Stop::Requests(n) => Some(n),
            Stop::For(_) => None,
        };
        let live = LiveStep { expected, ..name.live };
        let mut pump = Pump {
            writer: &mut ctx.writer,
            reporter: &ctx.reporter,
            live: &ctx.live,
            label: name.label,
            expected,
            repeat: name.repeat,
            board: ctx.board.as_deref().map(|b| (b, live)),
        };
        // With a slot, the load opens its connections while the boundary waits for its time.
        tokio::join!(
            pump.run(run_load(&load_ctx, &plan, maker), &mut rx, &mut acc),
            boundary.settle()
        )
    };
    let late_ms = slot.map(|slot| ctx.lateness(slot, point, &report));
    let mut acc = acc.acc;
    // The window as the load ended it (earlier than planned at saturation or a stop).
    if let Some((start_s, end_s)) = report.window {
        acc.set_window(Window { start_s, end_s });
    }
    let t1 = ctx.monitor.boundary_settled().await;
    let mut stats = acc.stats(ctx.live.max_in_flight.load(Ordering::Relaxed));
    stats.repeat = name.repeat;
    ctx.histograms.push(super::merge::HistogramLine::of(
        (stats.load, stats.test, stats.repeat),
        &acc,
    ));
    if let (Some(slot), Some(late_ms)) = (slot, late_ms) {
        stats.scheduled_start = Some(super::schedule::rfc3339_ms(slot.at));
        stats.start_lateness_ms = Some(late_ms);
    }
    super::telemetry::attach_step(&mut stats, &ctx.monitor, (t0, t1), acc.served());
    let system = ctx.monitor.summary(t0, t1);
    let health = ctx
        .client_watch
        .end_window(t1 - t0, acc.client_load(), system.process_cpu_pct_mean);
    stats.system = Some(system);
    stats.client_bound = health.client_bound;
    let warning = health.warning();
    stats.client = Some(health);
    pacing::apply(&mut stats, &report, ctx.config.load.max_concurrency);
    for line in format::step_lines(&stats) {
        ctx.reporter.line(&line);
    }
    if let Some(line) = format::telemetry_line(stats.server_metrics.as_ref(), stats.gpu.as_ref()) {
        ctx.reporter.line(&format!("  {line}"));
    }
    if let Some(line) = stats
        .server_metrics
        .as_ref()
        .and_then(|w| crate::metrics::telemetry::token_mismatch_at(&stats.load.in_words(), w))
    {
        ctx.reporter.line(&format!("  {line}"));
    }
    if let Some(warning) = warning {
        ctx.reporter.line(&format!("  {warning}"));
    }
    if let Some(sentence) = &stats.pacing_warning {
        ctx.reporter.line(&format!("  {sentence}"));
    }
    StepResult {
        ttft_rising: acc.ttft_rising(),
        stats,
    }
}

/// A step's accumulator whose window (for a timed step) is fixed by the release: the load
/// publishes it before it sends anything, so every record is measured against it.
pub(super) struct WindowedStep {
    pub acc: StepAccumulator,
    /// The plan's window, as offsets from the release.
    pub window: Option<(std::time::Duration, std::time::Duration)>,
    pub clock: Arc<crate::load::LoadClock>,
}

impl RecordSink for WindowedStep {
    fn record(&mut self, rec: &RequestRecord) {
        if let (Some((from, to)), Some(released)) = (self.window, self.clock.released_s()) {
            // A load that stopped sending early ends its window then: a record read after that
            // is measured against the narrower window, and one read before it finished earlier.
            let planned_end = released + to.as_secs_f64();
            let end_s = self.clock.ended_early_s().map_or(planned_end, |e| e.min(planned_end));
            self.acc.set_window(Window {
                start_s: released + from.as_secs_f64(),
                end_s,
            });
        }
        self.acc.add(rec);
    }
}

pub(super) async fn run_steps(ctx: &mut RunContext) -> (Vec<StepStats>, Outcome) {
    let Mode::Step { points, stop } = ctx.config.mode.clone() else {
        unreachable!("run_steps is called for step mode only");
    };
    let repeats = ctx.config.repeat;
    let list = sweep(&points, &ctx.config.tests, repeats);
    if let Some(board) = &ctx.board {
        let ramp_up = ctx.config.load.ramp_up;
        board.set_plan(list.iter().map(|s| planned(stop_for(s.point, stop), ramp_up)).collect());
    }
    let mut steps = Vec::new();
    let total = list.len();
    let mut saturated_at: Option<LoadPoint> = None;
    for (index, step) in list.iter().enumerate() {
        let point = step.point;
        if ctx.signals.stop.is_cancelled() {
            return (steps, Outcome::Interrupted);
        }
        if saturated_at.is_some_and(|s| s.value() < point.value()) {
            continue;
        }
        let name = StepName::sweep(step, index, total, repeats);
        let result = run_step(ctx, point, stop_for(point, stop), step.test, name).await;
        let over_budget = ctx
            .config
            .max_error_rate
            .filter(|max| result.stats.requests() > 0 && result.stats.error_rate() > *max);
        let lower = saturated_at.is_none_or(|s| point.value() < s.value());
        if ctx.config.load.stop_when_saturated && lower && pacing::oversaturated(&result.stats, result.ttft_rising) {
            ctx.reporter.line(&format!(
                "  {}",
                tr(Msg::StopWhenSaturated, &[("point", &point.in_words())])
            ));
            saturated_at = Some(point);
        }
        steps.push(result.stats);
        advice::fill_scaling_efficiency(&mut steps);
        ctx.save_summary(&steps, None);
        if let Some(max) = over_budget {
            let last = steps.last().expect("just pushed");
            ctx.reporter.line(&tr(
                Msg::StopErrorBudget,
                &[
                    ("pct", &format!("{:.0}", 100.0 * last.error_rate())),
                    ("point", &last.load.in_words()),
                    ("max", &format!("{:.0}", 100.0 * max)),
                ],
            ));
            return (steps, Outcome::ErrorBudget);
        }
    }
    let outcome = if ctx.signals.stop.is_cancelled() {
        Outcome::Interrupted
    } else {
        Outcome::Complete
    };
    (steps, outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_run_the_whole_sweep_again() {
        let points = [LoadPoint::Concurrency(1), LoadPoint::Concurrency(2)];
        let tests = [TestKind::Input, TestKind::Output];
        let order: Vec<(u32, TestKind, Option<u32>)> = sweep(&points, &tests, 2)
            .iter()
            .map(|s| (s.point.concurrency().unwrap(), s.test, s.repeat))
            .collect();
        use TestKind::{Input as I, Output as O};
        assert_eq!(
            order,
            [
                (1, I, Some(1)),
                (1, O, Some(1)),
                (2, I, Some(1)),
                (2, O, Some(1)),
                (1, I, Some(2)),
                (1, O, Some(2)),
                (2, I, Some(2)),
                (2, O, Some(2)),
            ]
        );
        // Once: the plain sweep, no repetition numbers.
        let once = sweep(&points, &tests, 1);
        assert_eq!(once.len(), 4);
        assert!(once.iter().all(|s| s.repeat.is_none()));
    }
}
