//! What one step of load is: how requests are paced (closed or open loop), how it starts
//! (ramp-up, warm-up) and when it ends (a duration or a number of requests). The scheduler in
//! [`super::dispatch`] carries a plan out; nothing here knows about HTTP or records.

use super::arrivals::Arrival;
use super::point::LoadPoint;
use serde::Serialize;
use std::time::Duration;

/// How requests are paced.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Pacing {
    /// `concurrency` connections, each sending its next request as soon as its last one ended.
    Closed { concurrency: u32 },
    /// Requests at intended times drawn from `arrival` at `rate` per second; at most
    /// `max_concurrency` in flight (the rest wait in the client's queue, their lateness counted).
    Open {
        rate: f64,
        arrival: Arrival,
        seed: u64,
        max_concurrency: Option<u32>,
    },
}

/// When a step stops sending.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Stop {
    /// This many measured requests (warm-up and ramp-up requests come on top). The seed's
    /// default step is `Requests(concurrency)` at that concurrency: one request a connection.
    Requests(u64),
    /// For this long after the ramp-up (its first `warmup` not measured): a timed step, measured
    /// over a window.
    #[serde(serialize_with = "secs")]
    For(Duration),
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// One step of load.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepPlan {
    /// The load point this step stands for: the whole run's, also on a shard (whose `pacing`
    /// holds its share).
    pub point: LoadPoint,
    pub pacing: Pacing,
    /// The rate (or the number of active connections) grows linearly from near zero to the
    /// target over this time; requests sent during it are warm-up.
    #[serde(serialize_with = "secs")]
    pub ramp_up: Duration,
    /// After the ramp-up, requests sent during this time are warm-up.
    #[serde(serialize_with = "secs")]
    pub warmup: Duration,
    pub stop: Stop,
    /// Open loop: the most requests that may be due and not yet served at once (in the client's
    /// queue, or sent and without a first token). Reaching it ends the step as saturated.
    pub max_backlog: Option<u64>,
    /// `--start-at`: the wall-clock time of the release. The connections are opened before
    /// it; the load waits for it, then starts.
    #[serde(skip)]
    pub release_at: Option<std::time::SystemTime>,
}

/// Default backlog: this many seconds' worth of requests at the target rate.
pub const DEFAULT_BACKLOG_SECONDS: f64 = 60.0;

impl StepPlan {
    pub fn point(&self) -> LoadPoint {
        self.point
    }

    /// Requests sent before this time after the release are warm-up.
    pub fn measure_from(&self) -> Duration {
        self.ramp_up + self.warmup
    }

    /// The measured window of a timed step, as times after the release.
    pub fn window(&self) -> Option<(Duration, Duration)> {
        match self.stop {
            Stop::For(duration) => Some((self.measure_from(), self.ramp_up + duration)),
            Stop::Requests(_) => None,
        }
    }

    /// The backlog limit in force: the plan's, or 60 s worth of requests (at least 1).
    pub fn backlog_limit(&self) -> Option<u64> {
        match &self.pacing {
            Pacing::Closed { .. } => None,
            // A trace's bursts are what it recorded: no default limit from its mean rate.
            Pacing::Open {
                arrival: super::Arrival::Trace { .. },
                ..
            } => self.max_backlog,
            Pacing::Open { rate, .. } => Some(
                self.max_backlog
                    .unwrap_or_else(|| (rate * DEFAULT_BACKLOG_SECONDS).ceil() as u64)
                    .max(1),
            ),
        }
    }
}
