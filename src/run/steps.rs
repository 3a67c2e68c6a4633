//! Step mode: one step per load point and test — a concurrency sweep (exactly that many
//! requests in flight) or a rate sweep (requests at intended times) — and the single measured
//! step that sweeps and the capacity search are made of.

use super::pump::{Pump, RecordSink};
use super::{Outcome, RunContext};
use crate::cli::config::Mode;
use crate::client::RequestRecord;
use crate::i18n::{tr, Msg};
use crate::load::{run_load, LoadPoint, Stop};
use crate::metrics::{advice, pacing, StepAccumulator, StepStats, Window};
use crate::report::format;
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

/// Runs one step at `point` for `test`, prints its lines and returns its figures.
pub(super) async fn run_step(
    ctx: &mut RunContext,
    point: LoadPoint,
    stop: Stop,
    test: TestKind,
    label: String,
) -> StepResult {
    let plan = ctx.config.load.plan(point, stop);
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
    let t0 = ctx.monitor.sample().t_s;
    ctx.client_watch.begin_window();
    let report = {
        let expected = match stop {
            Stop::Requests(n) => Some(n),
            Stop::For(_) => None,
        };
        let mut pump = Pump {
            writer: &mut ctx.writer,
            reporter: &ctx.reporter,
            live: &ctx.live,
            label,
            expected,
        };
        pump.run(run_load(&load_ctx, &plan, maker), &mut rx, &mut acc).await
    };
    let mut acc = acc.acc;
    // The window as the load ended it (earlier than planned at saturation or a stop).
    if let Some((start_s, end_s)) = report.window {
        acc.set_window(Window { start_s, end_s });
    }
    let t1 = ctx.monitor.sample().t_s;
    let mut stats = acc.stats(ctx.live.max_in_flight.load(Ordering::Relaxed));
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
    let tests = ctx.config.tests.clone();
    let mut steps = Vec::new();
    let total = points.len() * tests.len();
    let mut saturated_at: Option<LoadPoint> = None;
    for (index, (point, test)) in points
        .iter()
        .flat_map(|&p| tests.iter().map(move |&t| (p, t)))
        .enumerate()
    {
        if ctx.signals.stop.is_cancelled() {
            return (steps, Outcome::Interrupted);
        }
        if saturated_at.is_some_and(|s| s.value() < point.value()) {
            continue;
        }
        let label = tr(
            Msg::StepLabel,
            &[
                ("n", &(index + 1)),
                ("total", &total),
                ("test", &test),
                ("point", &point.in_words()),
            ],
        );
        let result = run_step(ctx, point, stop_for(point, stop), test, label).await;
        let over_budget = ctx
            .config
            .max_error_rate
            .filter(|max| result.stats.requests() > 0 && result.stats.error_rate() > *max);
        if ctx.config.load.stop_when_saturated && pacing::oversaturated(&result.stats, result.ttft_rising) {
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
