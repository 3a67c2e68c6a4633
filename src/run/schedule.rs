//! `--start-at`: every shard of a distributed run starts each step at a wall-clock time derived
//! from the start time and the step schedule, without talking to the others
//! (docs/distributed.md, "Synchronised start").
//!
//! Step k of a sweep starts at `start + Σ (ramp-up + duration + --step-gap)` of the steps
//! before it. A step that ends by a request count has no known length: the steps after it
//! start when it ends, and say they are not aligned.

use crate::load::{StepPlan, Stop};
use std::time::{Duration, SystemTime};

/// Lateness beyond which a step's start is said (a timer wakes a millisecond or two late).
pub(super) const LATE_MS: f64 = 10.0;

/// How long before a slot the step's telemetry boundary is taken.
const PREPARE: Duration = Duration::from_millis(300);

pub(crate) struct Schedule {
    start: SystemTime,
    gap: Duration,
    /// The next step's offset from the start; `None` once a step of unknown length ran.
    next: Option<Duration>,
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
        }
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

/// Sleeps until shortly before `slot` (the step's telemetry boundary goes there).
pub(super) async fn prepare(slot: Slot) {
    sleep_until(slot.at.checked_sub(PREPARE).unwrap_or(slot.at)).await;
}

/// Sleeps until `slot`; returns how late it is now, in milliseconds (0 when on time).
pub(super) async fn reach(slot: Slot) -> f64 {
    sleep_until(slot.at).await;
    SystemTime::now()
        .duration_since(slot.at)
        .map_or(0.0, |late| late.as_secs_f64() * 1000.0)
}

async fn sleep_until(at: SystemTime) {
    // The wall clock is read again after each sleep: a long wait is not trusted to one timer.
    while let Ok(left) = at.duration_since(SystemTime::now()) {
        if left.is_zero() {
            break;
        }
        tokio::time::sleep(left.min(Duration::from_secs(1))).await;
    }
}

/// RFC 3339 with milliseconds, UTC.
pub(super) fn rfc3339_ms(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}
