//! `--start-at`: every shard of a distributed run starts each step at a wall-clock time derived
//! from the start time and the step schedule, without talking to the others
//! (docs/distributed.md, "Synchronised start").
//!
//! Step k of a sweep starts at `start + Σ (ramp-up + duration + --step-gap)` of the steps
//! before it. A step that ends by a request count has no known length: the steps after it
//! start when it ends, and say they are not aligned.

use crate::load::{sleep_until_wall, StepPlan, Stop};
use crate::monitor::Monitor;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Lateness beyond which a step whose connections were not ready by its slot is said late
/// (a timer wakes a millisecond or two late).
pub(super) const LATE_MS: f64 = 10.0;

/// Lateness beyond which a step whose connections were ready in time is said late anyway (the
/// machine was slow to wake it: a busy core).
pub(super) const WAKE_LATE_MS: f64 = 25.0;

/// How long before a slot the step's telemetry boundary is taken.
const PREPARE: Duration = Duration::from_millis(300);

/// How long before a slot a step starts opening its connections: long enough for thousands
/// on a loaded machine, shorter than common keep-alive timeouts (uvicorn's, vLLM's server,
/// is 5 s), so that none is closed idle before the release.
pub(super) const CONNECT_AHEAD: Duration = Duration::from_secs(2);

pub(crate) struct Schedule {
    start: SystemTime,
    gap: Duration,
    /// The next step's offset from the start; `None` once a step of unknown length ran.
    next: Option<Duration>,
    /// Whether a step off the schedule has been said.
    unaligned_said: bool,
}

/// When a step was meant to start and how late it did.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slot {
    pub at: SystemTime,
    pub first: bool,
}

impl Schedule {
    pub fn new(start: SystemTime, gap: Duration) -> Self {
        Self {
            start,
            gap,
            next: Some(Duration::ZERO),
            unaligned_said: false,
        }
    }

    /// True once, for the first step that has no slot because a step before it ended by a
    /// request count (its length was not known ahead).
    pub fn first_unaligned(&mut self) -> bool {
        let first = self.next.is_none() && !self.unaligned_said;
        self.unaligned_said |= first;
        first
    }

    /// The slot of the next step, `plan`, and moves the schedule past it.
    pub fn take(&mut self, plan: &StepPlan) -> Option<Slot> {
        let offset = self.next?;
        self.next = match plan.stop {
            Stop::For(duration) => Some(offset + plan.ramp_up + duration + self.gap),
            Stop::Requests(_) => None,
        };
        Some(Slot {
            at: self.start + offset,
            first: offset.is_zero(),
        })
    }
}

/// Sleeps until the step's connections are to be opened: [`CONNECT_AHEAD`] before its slot
/// (at once when that has passed). The load opens them, then waits for the slot to release.
pub(super) async fn connect_ahead(slot: Slot) {
    sleep_until_wall(slot.at.checked_sub(CONNECT_AHEAD).unwrap_or(slot.at)).await;
}

/// A step's first telemetry boundary. Without a slot it is taken at once, before any load
/// ([`FirstBoundary::take`]); with one, shortly before the slot while the load opens its
/// connections ([`FirstBoundary::settle`], run beside the load), so that the step's window of
/// server and GPU figures starts just before its release.
pub(super) struct FirstBoundary {
    monitor: Arc<Monitor>,
    slot: Option<Slot>,
    taken_s: Option<f64>,
}

impl FirstBoundary {
    pub async fn take(monitor: Arc<Monitor>, slot: Option<Slot>) -> Self {
        let taken_s = match slot {
            None => Some(monitor.boundary_settled().await),
            Some(_) => None,
        };
        Self { monitor, slot, taken_s }
    }

    /// The boundary's time on the run clock.
    pub async fn settle(self) -> f64 {
        if let Some(t) = self.taken_s {
            return t;
        }
        if let Some(slot) = self.slot {
            sleep_until_wall(slot.at.checked_sub(PREPARE).unwrap_or(slot.at)).await;
        }
        self.monitor.boundary_settled().await
    }
}

/// RFC 3339 with milliseconds, UTC.
pub(super) fn rfc3339_ms(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}
