//! When requests are sent. A step is a [`StepPlan`]: a pacing (closed loop at a concurrency,
//! open loop at a rate from an arrival schedule), a ramp-up and warm-up, and a stop rule (a
//! duration or a number of requests). One dispatcher and one worker loop
//! ([`dispatch::run_load`]) carry out every plan.
//!
//! The scheduler knows nothing of what a request contains (the [`RequestMaker`] does) nor of
//! what is done with the records (they go to a channel).

pub mod arrivals;
pub mod dispatch;
pub mod plan;
pub mod point;

pub use arrivals::Arrival;
pub use dispatch::{run_load, LoadReport};
pub use plan::{Pacing, StepPlan, Stop};
pub use point::{LoadAxis, LoadPoint};

use crate::client::{Endpoint, Outgoing, RequestRecord, Timeouts};
use crate::workload::{TestKind, Workload};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

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
        Prepared {
            id,
            test,
            outgoing: self.workload.outgoing(test, id),
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
    /// Requests started over the whole run (never reset).
    pub started: AtomicU64,
    /// Requests sent and not yet answered with a first token: waiting at the server.
    pub unserved: Arc<AtomicU64>,
}

impl LiveCounters {
    pub(crate) fn started(&self) {
        self.started.fetch_add(1, Ordering::Relaxed);
        let now = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        self.max_in_flight.fetch_max(now, Ordering::Relaxed);
    }

    pub(crate) fn finished(&self, ok: bool, events: u32) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.events.fetch_add(u64::from(events), Ordering::Relaxed);
        self.done.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn reset(&self) {
        // A step starts when the last one has drained: nothing is waiting for a first token.
        self.unserved.store(0, Ordering::Relaxed);
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
    /// When the load released and when it stopped sending, as it happens.
    pub clock: Arc<LoadClock>,
}

/// When a load released (set before any request is sent) and when it stopped sending early
/// (saturation, a stop), in seconds after the run started: what a sink needs to measure a
/// window while records come in.
#[derive(Debug, Default)]
pub struct LoadClock {
    released_s: std::sync::OnceLock<f64>,
    /// f64 bits; 0 = not ended early.
    ended_s: AtomicU64,
}

impl LoadClock {
    pub fn release(&self, at_s: f64) {
        let _ = self.released_s.set(at_s);
    }

    pub fn released_s(&self) -> Option<f64> {
        self.released_s.get().copied()
    }

    pub fn end_early(&self, at_s: f64) {
        self.ended_s
            .store(at_s.max(f64::MIN_POSITIVE).to_bits(), Ordering::Relaxed);
    }

    pub fn ended_early_s(&self) -> Option<f64> {
        let bits = self.ended_s.load(Ordering::Relaxed);
        (bits != 0).then(|| f64::from_bits(bits))
    }
}
