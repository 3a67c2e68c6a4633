//! Multi-turn sessions (`--turns T --think-time D`): a conversation that sends its whole history
//! each turn, the server's earlier answers included. A session is the unit of load: a closed
//! loop at N runs N users, each starting a new conversation when the last one ends; an open
//! loop at R starts R conversations a second. The worker that starts a session sends all of
//! its turns, waiting the think time between an answer and the next question.

use crate::workload::dataset::ChatMessage;
use crate::workload::plan::SessionPlan;
use crate::workload::tokens::SplitMix;
use std::time::Duration;

/// One conversation in progress.
#[derive(Debug, Clone)]
pub struct Conversation {
    pub id: u64,
    /// The test every turn belongs to (chosen when the conversation starts).
    pub test: crate::workload::TestKind,
    /// The next turn (0-based).
    pub turn: u32,
    pub history: Vec<ChatMessage>,
}

impl Conversation {
    pub fn new(id: u64, test: crate::workload::TestKind) -> Self {
        Self {
            id,
            test,
            turn: 0,
            history: Vec::new(),
        }
    }

    /// The turn was answered: question and answer join the history.
    pub fn answered(&mut self, question: String, answer: String) {
        self.history.push(ChatMessage {
            role: "user".into(),
            content: question,
        });
        self.history.push(ChatMessage {
            role: "assistant".into(),
            content: answer,
        });
        self.turn += 1;
    }
}

/// The pause after turn `turn` of session `session`: normal around the think time, never
/// negative, seeded.
pub fn think_time(plan: &SessionPlan, seed: u64, session: u64, turn: u32) -> Duration {
    if plan.think_std.is_zero() {
        return plan.think;
    }
    let mut rng = SplitMix::new(seed ^ session.wrapping_mul(0x9E6C_63D0_676A_9A99) ^ u64::from(turn));
    let secs = plan.think.as_secs_f64() + plan.think_std.as_secs_f64() * rng.normal();
    Duration::from_secs_f64(secs.max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_grows_by_question_and_answer() {
        let mut c = Conversation::new(3, crate::workload::TestKind::Output);
        c.answered("q1".into(), "a1".into());
        c.answered("q2".into(), "a2".into());
        let roles: Vec<&str> = c.history.iter().map(|m| m.role.as_str()).collect();
        assert_eq!(roles, ["user", "assistant", "user", "assistant"]);
        assert_eq!(c.turn, 2);
    }

    #[test]
    fn think_times_are_seeded_and_never_negative() {
        let plan = SessionPlan {
            turns: 3,
            think: Duration::from_millis(100),
            think_std: Duration::from_millis(200),
        };
        let xs: Vec<Duration> = (0..200).map(|i| think_time(&plan, 1, i, 0)).collect();
        assert!(xs.contains(&Duration::ZERO));
        assert_eq!(xs, (0..200).map(|i| think_time(&plan, 1, i, 0)).collect::<Vec<_>>());
        let fixed = SessionPlan {
            think_std: Duration::ZERO,
            ..plan
        };
        assert_eq!(think_time(&fixed, 1, 5, 1), Duration::from_millis(100));
    }
}
