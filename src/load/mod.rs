//! When requests are sent: N workers, each with its own connection, sending back to back.
//!
//! The scheduler knows nothing of what a request contains (the [`RequestMaker`] does) nor of
//! what is done with the records (they go to a channel). Later load shapes (open-loop rates)
//! belong here beside the closed loop.

use crate::client::{Client, Endpoint, ErrorClass, Outgoing, Phase, RequestRecord, Timeouts};
use crate::workload::{TestKind, Workload};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Barrier};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// After a refused connection the server is probably down: a worker that tried again at once
/// would spin, recording tens of thousands of failures a second. It waits this long first.
const PAUSE_AFTER_REFUSED: Duration = Duration::from_millis(250);

/// When a worker stops sending.
#[derive(Debug, Clone, Copy)]
pub enum StopRule {
    /// Each connection sends one request (the original script's step).
    OnePerConnection,
    /// Back to back for `duration` after all connections are open; requests sent during the
    /// first `warmup` are warm-up.
    For { warmup: Duration, duration: Duration },
}

/// Builds the requests of a step: which test, which body.
pub struct RequestMaker {
    workload: Arc<Workload>,
    /// Tests sent in turn by each connection (a stress run mixes the enabled tests).
    tests: Vec<TestKind>,
    next_id: Arc<AtomicU64>,
}

/// One request ready to send.
pub struct Prepared {
    pub id: u64,
    pub test: TestKind,
    pub outgoing: Outgoing,
}

impl RequestMaker {
    pub fn new(workload: Arc<Workload>, tests: Vec<TestKind>, next_id: Arc<AtomicU64>) -> Self {
        assert!(!tests.is_empty(), "a load needs at least one test");
        Self {
            workload,
            tests,
            next_id,
        }
    }

    /// Request number `k` of connection `conn`.
    pub fn make(&self, conn: u32, k: u64) -> Prepared {
        let test = self.tests[((conn as u64 + k) % self.tests.len() as u64) as usize];
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (body, text_len) = self.workload.body_and_text_len(test, id);
        Prepared {
            id,
            test,
            outgoing: Outgoing {
                path: self.workload.path(test),
                body,
                // About four characters a token for English text, plus what an image costs.
                estimated_prompt_tokens: (text_len as u64).div_ceil(4)
                    + if test == TestKind::Multimodal { 256 } else { 0 },
                max_tokens: self.workload.max_tokens(test),
            },
        }
    }
}

/// Counters shared with the progress display; only atomics, so workers never wait on it.
#[derive(Debug, Default)]
pub struct LiveCounters {
    pub in_flight: AtomicU64,
    pub max_in_flight: AtomicU64,
    pub done: AtomicU64,
    pub failed: AtomicU64,
    /// SSE events received over the whole run (never reset): the client's unit of work.
    pub events: AtomicU64,
}

impl LiveCounters {
    fn started(&self) {
        let now = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        self.max_in_flight.fetch_max(now, Ordering::Relaxed);
    }

    fn finished(&self, ok: bool, events: u32) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.events.fetch_add(u64::from(events), Ordering::Relaxed);
        self.done.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn reset(&self) {
        self.max_in_flight
            .store(self.in_flight.load(Ordering::Relaxed), Ordering::Relaxed);
        self.done.store(0, Ordering::Relaxed);
        self.failed.store(0, Ordering::Relaxed);
    }
}

/// How the run is told to stop: `stop` ends sending (in-flight requests finish, up to
/// `drain`), `abort` ends everything at once.
#[derive(Clone)]
pub struct StopSignals {
    pub stop: CancellationToken,
    pub abort: CancellationToken,
    pub drain: Duration,
}

/// Everything a load needs besides its shape.
pub struct LoadContext {
    pub endpoint: Arc<Endpoint>,
    pub timeouts: Timeouts,
    pub run_start: Instant,
    pub live: Arc<LiveCounters>,
    pub records: mpsc::UnboundedSender<RequestRecord>,
    pub signals: StopSignals,
}

/// Runs `concurrency` workers until the stop rule (or a stop signal) ends them. Connections are
/// opened first and all workers start together, so the first requests are truly concurrent.
/// Returns when every worker has ended (or was aborted after the drain time).
pub async fn run_closed_loop(ctx: &LoadContext, concurrency: u32, rule: StopRule, maker: Arc<RequestMaker>) {
    let barrier = Arc::new(Barrier::new(concurrency as usize + 1));
    let step_start = Arc::new(std::sync::OnceLock::new());
    let mut workers = JoinSet::new();
    for conn in 0..concurrency {
        let barrier = barrier.clone();
        let step_start = step_start.clone();
        let maker = maker.clone();
        let mut client = Client::new(ctx.endpoint.clone(), ctx.timeouts);
        let live = ctx.live.clone();
        let records = ctx.records.clone();
        let stop = ctx.signals.stop.clone();
        let run_start = ctx.run_start;
        workers.spawn(async move {
            // A failed pre-connect is retried, and recorded, by the first request.
            let _ = client.ensure_connected().await;
            barrier.wait().await;
            // The release, taken by the first task to run after it: a worker that runs later
            // counts its wait as send delay. Its duration and warm-up count from its own start,
            // so that every connection gets the whole step.
            let released = *step_start.get_or_init(Instant::now);
            let go = Instant::now();
            let mut due = released;
            let mut k = 0u64;
            loop {
                if stop.is_cancelled() {
                    break;
                }
                let phase = match rule {
                    StopRule::OnePerConnection if k > 0 => break,
                    StopRule::OnePerConnection => Phase::Measured,
                    StopRule::For { warmup, duration } => {
                        let now = Instant::now();
                        if now >= go + duration {
                            break;
                        }
                        if now < go + warmup {
                            Phase::Warmup
                        } else {
                            Phase::Measured
                        }
                    }
                };
                let prepared = maker.make(conn, k);
                let mut rec = RequestRecord {
                    id: prepared.id,
                    test: prepared.test,
                    concurrency,
                    conn,
                    phase,
                    ..RequestRecord::default()
                };
                live.started();
                client.execute(&prepared.outgoing, run_start, &mut rec).await;
                // Neither connecting nor a resent attempt (the server's doing) is send delay.
                let sent = run_start + Duration::from_secs_f64(rec.start_s);
                rec.send_delay_us = (sent.saturating_duration_since(due).as_micros() as u64)
                    .saturating_sub(rec.connect_us + rec.resend_wait_us);
                due = sent + Duration::from_micros(rec.end_us);
                live.finished(rec.ok, rec.events);
                let refused = rec.error == Some(ErrorClass::Connect);
                if records.send(rec).is_err() {
                    break;
                }
                k += 1;
                if let (true, StopRule::For { duration, .. }) = (refused, rule) {
                    let until = (Instant::now() + PAUSE_AFTER_REFUSED).min(go + duration);
                    tokio::select! {
                        () = tokio::time::sleep_until(until) => {}
                        () = stop.cancelled() => {}
                    }
                    // The pause is deliberate, not the client falling behind.
                    due = due.max(until);
                }
            }
        });
    }
    barrier.wait().await;
    wait_for_workers(&mut workers, &ctx.signals).await;
}

async fn wait_for_workers(workers: &mut JoinSet<()>, signals: &StopSignals) {
    let finished = {
        let all_done = async { while workers.join_next().await.is_some() {} };
        let drain_expired = async {
            signals.stop.cancelled().await;
            tokio::time::sleep(signals.drain).await;
        };
        tokio::select! {
            () = all_done => true,
            () = signals.abort.cancelled() => false,
            () = drain_expired => false,
        }
    };
    if !finished {
        workers.abort_all();
        while workers.join_next().await.is_some() {}
    }
}
