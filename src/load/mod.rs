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
pub mod session;
pub mod shard;

pub use arrivals::Arrival;
pub use dispatch::{run_load, LoadReport};
pub use plan::{Pacing, StepPlan, Stop};
pub use point::{LoadAxis, LoadPoint};
pub use shard::Shard;

use crate::client::{Endpoint, Outgoing, RequestRecord, Timeouts};
use crate::workload::plan::SessionPlan;
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
    /// On a shard, ids are spaced so that they are unique across shards.
    shard: Option<Shard>,
    /// Multi-turn sessions, and the seed of their think times.
    sessions: Option<(SessionPlan, u64)>,
    next_session: Arc<AtomicU64>,
}

/// One request ready to send.
pub struct Prepared {
    pub id: u64,
    pub test: TestKind,
    pub outgoing: Outgoing,
    /// What the record keeps of the prompt: asked lengths, dataset row, prefix group.
    pub about: PromptFacts,
}

/// What a record keeps of its prompt.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PromptFacts {
    pub requested_isl: Option<u64>,
    pub requested_osl: Option<u64>,
    pub row: Option<u64>,
    pub group: Option<u32>,
    pub image_bytes: u64,
    pub group_first: bool,
    /// (session, turn) of a multi-turn request.
    pub session: Option<(u64, u32)>,
}

impl PromptFacts {
    pub fn apply(&self, rec: &mut RequestRecord) {
        rec.requested_isl = self.requested_isl;
        rec.requested_osl = self.requested_osl;
        rec.row = self.row;
        rec.prefix_group = self.group;
        rec.prefix_first = self.group_first;
        rec.image_bytes = self.image_bytes;
        rec.session = self.session.map(|s| s.0);
        rec.turn = self.session.map(|s| s.1);
    }
}

impl RequestMaker {
    pub fn new(workload: Arc<Workload>, tests: Vec<TestKind>, next_id: Arc<AtomicU64>) -> Self {
        assert!(!tests.is_empty(), "a load needs at least one test");
        Self {
            workload,
            tests,
            next_id,
            shard: None,
            sessions: None,
            next_session: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Ids of this shard's requests: `local × N + index`, unique across the run's shards.
    pub fn on_shard(mut self, shard: Option<Shard>) -> Self {
        self.shard = shard;
        self
    }

    fn next_id(&self) -> u64 {
        let local = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.shard.map_or(local, |s| s.request_id(local))
    }

    /// The test of connection `conn`'s request `k`: each connection takes the tests in turn.
    fn test_for(&self, conn: u32, k: u64) -> TestKind {
        self.tests[((u64::from(conn) + k) % self.tests.len() as u64) as usize]
    }

    /// Each ticket is a conversation of `plan.turns` requests.
    pub fn with_sessions(mut self, plan: Option<SessionPlan>, seed: u64, next_session: Arc<AtomicU64>) -> Self {
        self.sessions = plan.map(|p| (p, seed));
        self.next_session = next_session;
        self
    }

    /// Requests are costly to build and not tied to their place in the schedule: a connection
    /// builds its next one while the current one is in flight.
    pub fn builds_ahead(&self) -> bool {
        self.workload.costly() && !self.workload.source().keyed_by_schedule()
    }

    pub fn sessions(&self) -> Option<&(SessionPlan, u64)> {
        self.sessions.as_ref()
    }

    /// A new conversation of connection `conn`, starting as its request `k`: all its turns are
    /// of the test that request would have been.
    pub fn new_session(&self, conn: u32, k: u64) -> session::Conversation {
        let test = self.test_for(conn, k);
        session::Conversation::new(self.next_session.fetch_add(1, Ordering::Relaxed), test)
    }

    /// The next turn of `conversation`, sent by connection `conn` as its request `k`: the
    /// prompt source's question after the history. Returns the question too, for the history.
    pub fn make_turn(&self, conversation: &session::Conversation) -> (Prepared, String) {
        let test = conversation.test;
        let id = self.next_id();
        let mut spec = self.workload.prompt(test, id);
        if conversation.turn > 0 {
            // The asked length was for one message; later turns carry the history too.
            spec.requested_isl = None;
        }
        let mut history = conversation.history.clone();
        history.append(&mut spec.history);
        spec.history = history;
        let question = spec.text.clone();
        let built = self.workload.build_spec(test, &spec);
        let mut prepared = prepared(id, test, self.workload.path(test), built);
        prepared.outgoing.keep_text = true;
        prepared.about.session = Some((conversation.id, conversation.turn));
        (prepared, question)
    }

    /// Request number `k` of connection `conn`, number `seq` of the step's schedule.
    pub fn make(&self, conn: u32, k: u64, seq: u64) -> Prepared {
        let test = self.test_for(conn, k);
        let id = self.next_id();
        // Prompts are keyed by the run-wide id (distinct across steps), a trace's by its place
        // in the schedule (row k goes at the trace's time k).
        let key = if self.workload.source().keyed_by_schedule() {
            seq
        } else {
            id
        };
        let built = self.workload.build(test, key);
        prepared(id, test, self.workload.path(test), built)
    }
}

/// A built body as a request to send.
pub fn prepared(id: u64, test: TestKind, path: &'static str, built: crate::workload::Built) -> Prepared {
    // About four characters a token for text, plus what an image costs.
    let estimated_prompt_tokens = built
        .requested_isl
        .unwrap_or((built.text_len as u64).div_ceil(4) + 256 * u64::from(built.images));
    Prepared {
        id,
        test,
        about: PromptFacts {
            requested_isl: built.requested_isl,
            requested_osl: (test != TestKind::Input && built.inputs == 0).then_some(built.max_tokens),
            row: built.row,
            group: built.group,
            group_first: built.group_first,
            image_bytes: built.image_bytes,
            session: None,
        },
        outgoing: Outgoing {
            path,
            body: built.body,
            estimated_prompt_tokens,
            max_tokens: built.max_tokens,
            response: match built.inputs {
                0 => crate::client::http::ResponseKind::Stream,
                _ => crate::client::http::ResponseKind::Json,
            },
            inputs: built.inputs,
            ..Outgoing::default()
        },
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

/// Sleeps until the wall-clock time `at` (`--start-at`). The clock is read again after each
/// sleep of at most a second: a long wait is not trusted to one timer.
pub async fn sleep_until_wall(at: std::time::SystemTime) {
    while let Ok(left) = at.duration_since(std::time::SystemTime::now()) {
        if left.is_zero() {
            break;
        }
        tokio::time::sleep(left.min(std::time::Duration::from_secs(1))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{source::Filler, ApiKind, WorkloadSpec};

    #[test]
    fn the_third_turn_carries_the_first_two_answers() {
        let workload = Arc::new(Workload::new(WorkloadSpec {
            model: "m".into(),
            api: ApiKind::Chat,
            source: Arc::new(Filler {
                chars: 30,
                same_prompt: false,
                multimodal_text: String::new(),
            }),
            max_tokens: 5,
            ignore_eos: false,
            continuous_usage: false,
            extra_body: serde_json::Map::new(),
            images: None,
            embed_batch: 1,
        }));
        let maker = RequestMaker::new(workload, vec![TestKind::Output], Arc::new(AtomicU64::new(0)));
        let mut conversation = maker.new_session(0, 0);
        for answer in ["first answer", "second answer"] {
            let (_, question) = maker.make_turn(&conversation);
            conversation.answered(question, answer.into());
        }
        let (third, _) = maker.make_turn(&conversation);
        assert!(third.outgoing.keep_text);
        assert_eq!(third.about.session, Some((0, 2)));
        let body: serde_json::Value = serde_json::from_slice(&third.outgoing.body).unwrap();
        let messages: Vec<(&str, &str)> = body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["role"].as_str().unwrap(), m["content"].as_str().unwrap()))
            .collect();
        assert_eq!(messages.len(), 5, "{messages:?}");
        assert_eq!(messages[1], ("assistant", "first answer"));
        assert_eq!(messages[3], ("assistant", "second answer"));
        assert_eq!(messages[4].0, "user");
        assert_ne!(messages[0].1, messages[2].1, "each turn asks something new");
    }
}
