//! Deterministic fault planning.
//!
//! Every generation request gets an arrival index; the faults it suffers are
//! a pure function of `--seed` and that index. A benchmark run against the
//! simulator is therefore reproducible, and a test can compare what the client
//! observed with what the simulator says it injected. A tiny splitmix64 is
//! enough here: we need decorrelated draws, not cryptographic quality.

use super::config::SimConfig;

/// Which faults one request will suffer.
///
/// The first four are drawn independently and may combine (a stalled stream can also carry a
/// malformed chunk). The later faults are exclusive: at most one per request, and only on a
/// request none of the first four hit, so that each of them leads to exactly one outcome a
/// client can count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct FaultPlan {
    /// Answer with one of `--fault-error-status` before any token.
    pub error: bool,
    /// Close the connection abruptly after half of the tokens.
    pub cut: bool,
    /// Insert one `data: {not json` chunk in the middle of the stream.
    pub malformed: bool,
    /// Pause once for `--fault-stall-ms` in the middle of the stream.
    pub stall: bool,
    /// Which of `--fault-error-status` an error answers with (an index into the list).
    pub status_choice: usize,
    pub exclusive: Option<ExclusiveFault>,
}

/// The faults that never combine, in the order they are drawn (which is also their precedence
/// when several draws hit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExclusiveFault {
    /// Read the request, then reset the connection (RST) without a byte of response.
    ResetBeforeResponse,
    /// Read the request and never answer.
    NoAnswer,
    /// Reset the connection (RST) after half of the tokens.
    ResetMidStream,
    /// End the stream cleanly after half of the tokens, with no finish_reason and no `[DONE]`.
    NoDone,
    /// The middle chunk's text carries invalid UTF-8.
    InvalidUtf8,
    /// An `error` object in the middle of the stream, then `[DONE]`.
    ErrorEvent,
    /// The middle chunk is one event of `--fault-huge-event-kib`.
    HugeEvent,
    /// Tokens keep coming after the last one; the stream never finishes.
    Endless,
}

/// The probabilities the plan is drawn from, copied out of the config once.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FaultRates {
    seed: u64,
    error: f64,
    cut: f64,
    malformed: f64,
    stall: f64,
    /// Rates of the exclusive faults, in draw order.
    exclusive: [(ExclusiveFault, f64); 8],
    statuses: usize,
}

impl FaultRates {
    pub fn from_config(config: &SimConfig) -> Self {
        Self {
            seed: config.seed,
            error: config.fault_error_rate,
            cut: config.fault_cut_rate,
            malformed: config.fault_malformed_rate,
            stall: config.fault_stall_rate,
            exclusive: [
                (ExclusiveFault::ResetBeforeResponse, config.fault_reset_rate),
                (ExclusiveFault::NoAnswer, config.fault_no_answer_rate),
                (ExclusiveFault::ResetMidStream, config.fault_reset_stream_rate),
                (ExclusiveFault::NoDone, config.fault_no_done_rate),
                (ExclusiveFault::InvalidUtf8, config.fault_invalid_utf8_rate),
                (ExclusiveFault::ErrorEvent, config.fault_error_event_rate),
                (ExclusiveFault::HugeEvent, config.fault_huge_event_rate),
                (ExclusiveFault::Endless, config.fault_endless_rate),
            ],
            statuses: config.fault_error_status.len().max(1),
        }
    }

    /// The plan for the request that arrived `index`-th (0-based).
    pub fn plan(&self, index: u64) -> FaultPlan {
        let mut state = mix(self.seed ^ mix(index));
        let mut next = || splitmix64(&mut state);
        // Every draw always happens, in a fixed order, so changing one rate never changes which
        // requests get the other faults. New draws go at the end: existing seeds keep their
        // meaning.
        let mut draw = |rate: f64| unit(next()) < rate;
        let error = draw(self.error);
        let cut = draw(self.cut);
        let malformed = draw(self.malformed);
        let stall = draw(self.stall);
        let exclusive_hits = self.exclusive.map(|(fault, rate)| (fault, draw(rate)));
        let status_choice = (next() % self.statuses as u64) as usize;
        let combinable_hit = error || cut || malformed || stall;
        let exclusive = exclusive_hits
            .iter()
            .find(|(_, hit)| *hit && !combinable_hit)
            .map(|(fault, _)| *fault);
        FaultPlan {
            error,
            cut,
            malformed,
            stall,
            status_choice,
            exclusive,
        }
    }
}

/// One splitmix64 step: advances `state` and returns the next output.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    mix(*state)
}

/// The splitmix64 finaliser, a bijective 64-bit mixer.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Maps 64 random bits to [0, 1) using the top 53 bits (an f64 mantissa).
fn unit(bits: u64) -> f64 {
    (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rates(seed: u64, rate: f64) -> FaultRates {
        FaultRates::from_config(&SimConfig {
            seed,
            fault_error_rate: rate,
            fault_cut_rate: rate,
            fault_malformed_rate: rate,
            fault_stall_rate: rate,
            ..SimConfig::default()
        })
    }

    #[test]
    fn deterministic_and_rate_bounded() {
        let r = rates(7, 0.0);
        assert!((0..1000).all(|i| r.plan(i) == FaultPlan::default()));
        let r = rates(7, 1.0);
        assert!((0..1000).all(|i| r.plan(i).error && r.plan(i).stall));
        let r = rates(7, 0.25);
        assert_eq!(r.plan(42), r.plan(42));
        let hits = (0..10_000).filter(|&i| r.plan(i).cut).count();
        assert!((2_200..2_800).contains(&hits), "hits = {hits}");
    }

    #[test]
    fn seed_changes_the_pattern() {
        let a: Vec<bool> = (0..64).map(|i| rates(1, 0.5).plan(i).error).collect();
        let b: Vec<bool> = (0..64).map(|i| rates(2, 0.5).plan(i).error).collect();
        assert_ne!(a, b);
    }

    #[test]
    fn draws_are_independent_of_each_other() {
        // Same seed, only the cut rate differs: errors must not move.
        let mut a = rates(3, 0.3);
        let mut b = rates(3, 0.3);
        a.cut = 0.0;
        b.cut = 0.9;
        assert!((0..500).all(|i| a.plan(i).error == b.plan(i).error));
    }

    /// The first four draws come before the new ones, so a seed picks the same requests for
    /// them whatever the new rates are.
    #[test]
    fn new_faults_leave_existing_seeds_alone() {
        let old = rates(11, 0.2);
        let new = FaultRates::from_config(&SimConfig {
            seed: 11,
            fault_error_rate: 0.2,
            fault_cut_rate: 0.2,
            fault_malformed_rate: 0.2,
            fault_stall_rate: 0.2,
            fault_reset_rate: 0.3,
            fault_endless_rate: 0.3,
            fault_error_status: vec![429, 500, 503],
            ..SimConfig::default()
        });
        for i in 0..500 {
            let (a, b) = (old.plan(i), new.plan(i));
            assert_eq!(
                (a.error, a.cut, a.malformed, a.stall),
                (b.error, b.cut, b.malformed, b.stall)
            );
        }
    }

    #[test]
    fn exclusive_faults_never_combine() {
        let r = FaultRates::from_config(&SimConfig {
            seed: 5,
            fault_error_rate: 0.2,
            fault_reset_rate: 0.5,
            fault_no_done_rate: 0.5,
            fault_endless_rate: 0.5,
            fault_error_status: vec![429, 500],
            ..SimConfig::default()
        });
        let plans: Vec<FaultPlan> = (0..2000).map(|i| r.plan(i)).collect();
        assert!(plans.iter().all(|p| !(p.error && p.exclusive.is_some())));
        // Draw order is precedence: reset first, then no-done, then endless.
        let count = |f| plans.iter().filter(|p| p.exclusive == Some(f)).count();
        let (reset, no_done, endless) = (
            count(ExclusiveFault::ResetBeforeResponse),
            count(ExclusiveFault::NoDone),
            count(ExclusiveFault::Endless),
        );
        assert!(
            reset > no_done && no_done > endless && endless > 0,
            "{reset} {no_done} {endless}"
        );
        let picks: Vec<usize> = plans.iter().map(|p| p.status_choice).collect();
        assert!(picks.contains(&0) && picks.contains(&1) && !picks.contains(&2));
    }
}
