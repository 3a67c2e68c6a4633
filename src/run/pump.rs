//! Runs a load while consuming its records: each record is written to requests.jsonl and
//! handed to a sink (step statistics, stress windows) and, on a terminal, to the live view's
//! board; a timer flushes the file and, without a terminal, prints a plain progress line every
//! few seconds. One message per finished request, never one per token.

use crate::client::RequestRecord;
use crate::load::LiveCounters;
use crate::report::live::{LiveBoard, LiveStep};
use crate::report::{RecordWriter, Reporter};
use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::Instant;

pub trait RecordSink {
    fn record(&mut self, rec: &RequestRecord);
    /// Called a few times a second while the load runs.
    fn tick(&mut self, _now: Instant) {}
}

/// How often a sink is ticked.
pub(super) const TICK: Duration = Duration::from_millis(250);
const PLAIN_PROGRESS_EVERY: Duration = Duration::from_secs(10);

pub struct Pump<'a> {
    pub writer: &'a mut RecordWriter,
    pub reporter: &'a Reporter,
    pub live: &'a LiveCounters,
    /// Shown before the counters, e.g. "[output] concurrency 20".
    pub label: String,
    /// Requests the load will send, when known.
    pub expected: Option<u64>,
    /// `--repeat`: the repetition the records belong to (written into each).
    pub repeat: Option<u32>,
    /// The live view's board (a terminal only) and how it names this step.
    pub board: Option<(&'a LiveBoard, LiveStep)>,
}

impl Pump<'_> {
    /// Runs `load` to its end, returning what it returns.
    pub async fn run<T>(
        &mut self,
        load: impl Future<Output = T>,
        rx: &mut UnboundedReceiver<RequestRecord>,
        sink: &mut impl RecordSink,
    ) -> T {
        tokio::pin!(load);
        let result;
        let started = Instant::now();
        let mut ticker = tokio::time::interval(TICK);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_plain = Instant::now();
        if let Some((board, step)) = &self.board {
            board.begin_step(step.clone());
        }
        loop {
            tokio::select! {
                biased;
                Some(rec) = rx.recv() => self.take(rec, sink),
                done = &mut load => {
                    result = done;
                    break;
                }
                _ = ticker.tick() => {
                    let now = Instant::now();
                    // The sink first: an interval that closes now counts what started by now.
                    sink.tick(now);
                    if let Some(problem) = self.writer.flush_if_due() {
                        self.reporter.warn_results_lost(&problem);
                    }
                    // On a terminal the live view shows progress, drawn by its own task.
                    if !self.reporter.is_tty() && now - last_plain >= PLAIN_PROGRESS_EVERY {
                        last_plain = now;
                        self.reporter.console(&self.progress_text(now - started));
                    }
                }
            }
        }
        // The load has ended: what is left in the channel was sent before that.
        while let Ok(rec) = rx.try_recv() {
            self.take(rec, sink);
        }
        if let Some((board, _)) = &self.board {
            board.end_step(self.reporter);
        }
        if let Some(problem) = self.writer.flush() {
            self.reporter.warn_results_lost(&problem);
        }
        result
    }

    fn take(&mut self, mut rec: RequestRecord, sink: &mut impl RecordSink) {
        rec.repeat = self.repeat;
        self.writer.stamp(&mut rec);
        if let Some(problem) = self.writer.write(&rec) {
            self.reporter.warn_results_lost(&problem);
        }
        if let Some((board, _)) = &self.board {
            board.record(&rec);
        }
        sink.record(&rec);
    }

    fn progress_text(&self, elapsed: Duration) -> String {
        let done = self.live.done.load(Ordering::Relaxed);
        let of = self.expected.map(|n| format!("/{n}")).unwrap_or_default();
        crate::i18n::tr(
            crate::i18n::Msg::ProgressLine,
            &[
                ("label", &self.label),
                ("done", &format!("{done}{of}")),
                ("in_flight", &self.live.in_flight.load(Ordering::Relaxed)),
                ("failed", &self.live.failed.load(Ordering::Relaxed)),
                ("elapsed", &format!("{:.1}", elapsed.as_secs_f64())),
            ],
        )
    }
}
