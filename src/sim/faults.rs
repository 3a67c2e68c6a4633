//! Deterministic fault planning.
//!
//! Every generation request gets an arrival index; the faults it suffers are
//! a pure function of `--seed` and that index. A benchmark run against the
//! simulator is therefore reproducible, and a test can compare what the client
//! observed with what the simulator says it injected. A tiny splitmix64 is
//! enough here: we need decorrelated draws, not cryptographic quality.

use super::config::SimConfig;

/// Which faults one request will suffer. Each is drawn independently.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct FaultPlan {
    /// Answer with `--fault-error-status` before any token.
    pub error: bool,
    /// Close the connection abruptly after half of the tokens.
    pub cut: bool,
    /// Insert one `data: {not json` chunk in the middle of the stream.
    pub malformed: bool,
    /// Pause once for `--fault-stall-ms` in the middle of the stream.
    pub stall: bool,
}

/// The probabilities the plan is drawn from, copied out of the config once.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FaultRates {
    seed: u64,
    error: f64,
    cut: f64,
    malformed: f64,
    stall: f64,
}

impl FaultRates {
    pub fn from_config(config: &SimConfig) -> Self {
        Self {
            seed: config.seed,
            error: config.fault_error_rate,
            cut: config.fault_cut_rate,
            malformed: config.fault_malformed_rate,
            stall: config.fault_stall_rate,
        }
    }

    /// The plan for the request that arrived `index`-th (0-based).
    pub fn plan(&self, index: u64) -> FaultPlan {
        let mut state = mix(self.seed ^ mix(index));
        // All four draws always happen, in a fixed order, so changing one rate
        // never changes which requests get the other faults.
        let mut draw = |rate: f64| unit(splitmix64(&mut state)) < rate;
        FaultPlan {
            error: draw(self.error),
            cut: draw(self.cut),
            malformed: draw(self.malformed),
            stall: draw(self.stall),
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
        FaultRates {
            seed,
            error: rate,
            cut: rate,
            malformed: rate,
            stall: rate,
        }
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
}
