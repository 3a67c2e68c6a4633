//! Step mode: for each concurrency, each enabled test, with exactly that many requests in
//! flight.

use super::pump::{Pump, RecordSink};
use super::{Outcome, RunContext};
use crate::cli::config::Mode;
use crate::client::RequestRecord;
use crate::load::{run_closed_loop, RequestMaker, StopRule};
use crate::metrics::{advice, StepAccumulator, StepStats};
use crate::report::format;
use std::sync::atomic::Ordering;
use std::sync::Arc;

impl RecordSink for StepAccumulator {
    fn record(&mut self, rec: &RequestRecord) {
        self.add(rec);
    }
}

pub(super) async fn run_steps(ctx: &mut RunContext) -> (Vec<StepStats>, Outcome) {
    let Mode::Step { step_duration, .. } = ctx.config.mode else {
        unreachable!("run_steps is called for step mode only");
    };
    let concurrencies = ctx.config.mode.concurrencies();
    let tests = ctx.config.tests.clone();
    let mut steps = Vec::new();
    let total = concurrencies.len() * tests.len();
    for (index, (concurrency, test)) in concurrencies
        .iter()
        .flat_map(|&n| tests.iter().map(move |&t| (n, t)))
        .enumerate()
    {
        if ctx.signals.stop.is_cancelled() {
            return (steps, Outcome::Interrupted);
        }
        let rule = match step_duration {
            Some(duration) => StopRule::For {
                warmup: ctx.config.warmup,
                duration,
            },
            None => StopRule::OnePerConnection,
        };
        ctx.live.reset();
        let (load_ctx, mut rx) = ctx.load_context();
        let maker = Arc::new(RequestMaker::new(ctx.workload.clone(), vec![test], ctx.ids.clone()));
        let mut acc = StepAccumulator::new(test, concurrency);
        let t0 = ctx.monitor.sample().t_s;
        ctx.client_watch.begin_window();
        {
            let mut pump = Pump {
                writer: &mut ctx.writer,
                reporter: &ctx.reporter,
                live: &ctx.live,
                label: format!("step {}/{total} [{test}] concurrency {concurrency}", index + 1),
                expected: step_duration.is_none().then_some(concurrency as u64),
            };
            pump.run(run_closed_loop(&load_ctx, concurrency, rule, maker), &mut rx, &mut acc)
                .await;
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
        for line in format::step_lines(&stats) {
            ctx.reporter.line(&line);
        }
        if let Some(warning) = warning {
            ctx.reporter.line(&format!("  {warning}"));
        }
        let over_budget = ctx
            .config
            .max_error_rate
            .filter(|max| stats.requests() > 0 && stats.error_rate() > *max);
        steps.push(stats);
        advice::fill_scaling_efficiency(&mut steps);
        ctx.save_summary(&steps, None);
        if let Some(max) = over_budget {
            let last = steps.last().expect("just pushed");
            ctx.reporter.line(&format!(
                "Stopping: {:.0}% of the requests at concurrency {} failed, over --max-error-rate {:.0}%.",
                100.0 * last.error_rate(),
                last.concurrency,
                100.0 * max
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
