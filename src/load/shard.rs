//! One shard of a distributed run (`--shard I/N`): its share of every load point, its own
//! arrival seed, its rows of a dataset or trace, and request ids unique across shards
//! (docs/distributed.md, "Shards").
//!
//! The shares are chosen so that the shards together make the run asked for: connections
//! split as evenly as possible (the first `c mod N` shards take one more), a rate split as
//! `rate / N` with each shard's Poisson (or gamma) schedule seeded from the run seed and its
//! index — the superposition of N independent processes at rate/N is the process at the whole
//! rate — and row `k` of a dataset or trace to shard `k mod N`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// 0-based.
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// `I/N` with 0 ≤ I < N.
    pub fn parse(text: &str) -> Result<Self, String> {
        use crate::i18n::{tr, Msg};
        let (i, n) = text
            .trim()
            .split_once('/')
            .ok_or_else(|| tr(Msg::ShardNotIN, &[("text", &text)]))?;
        let number = |v: &str| {
            v.trim()
                .parse::<u32>()
                .map_err(|_| tr(Msg::ShardNotNumber, &[("text", &text)]))
        };
        Self::new(number(i)?, number(n)?)
    }

    pub fn new(index: u32, count: u32) -> Result<Self, String> {
        use crate::i18n::{tr, Msg};
        if count == 0 {
            return Err(tr(Msg::ShardCountZero, &[]));
        }
        if index >= count {
            return Err(tr(Msg::ShardIndexTooHigh, &[("index", &index), ("count", &count)]));
        }
        Ok(Self { index, count })
    }

    /// This shard's connections of `total`.
    pub fn concurrency(&self, total: u32) -> u32 {
        total / self.count + u32::from(self.index < total % self.count)
    }

    /// This shard's requests of `total` (a `--requests` step).
    pub fn requests(&self, total: u64) -> u64 {
        let n = u64::from(self.count);
        total / n + u64::from(u64::from(self.index) < total % n)
    }

    pub fn rate(&self, total: f64) -> f64 {
        total / f64::from(self.count)
    }

    /// The arrival seed of this shard: the run's seed mixed with the index (splitmix64), so
    /// shards draw independent schedules and a rerun draws the same ones.
    pub fn seed(&self, run_seed: u64) -> u64 {
        let mut z = run_seed ^ (u64::from(self.index) + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Does row `k` (0-based) of a dataset or trace belong to this shard?
    pub fn takes_row(&self, k: u64) -> bool {
        k % u64::from(self.count) == u64::from(self.index)
    }

    /// The run-wide id of this shard's `local`-th request: unique across shards.
    pub fn request_id(&self, local: u64) -> u64 {
        local * u64::from(self.count) + u64::from(self.index)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_to_the_whole() {
        for count in 1..=7u32 {
            for total in [0u32, 1, 5, 16, 2500, 10_001] {
                let sum: u32 = (0..count)
                    .map(|i| Shard::new(i, count).unwrap().concurrency(total))
                    .sum();
                assert_eq!(sum, total, "{total} over {count}");
                let sum: u64 = (0..count)
                    .map(|i| Shard::new(i, count).unwrap().requests(u64::from(total)))
                    .sum();
                assert_eq!(sum, u64::from(total));
            }
            let rates: f64 = (0..count).map(|i| Shard::new(i, count).unwrap().rate(10.0)).sum();
            assert!((rates - 10.0).abs() < 1e-9);
        }
    }

    #[test]
    fn rows_and_ids_are_partitioned() {
        let shards: Vec<Shard> = (0..4).map(|i| Shard::new(i, 4).unwrap()).collect();
        for k in 0..100u64 {
            assert_eq!(shards.iter().filter(|s| s.takes_row(k)).count(), 1);
        }
        let mut ids: Vec<u64> = shards.iter().flat_map(|s| (0..50).map(|l| s.request_id(l))).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 200);
        let seeds: std::collections::HashSet<u64> = shards.iter().map(|s| s.seed(42)).collect();
        assert_eq!(seeds.len(), 4);
        assert_eq!(shards[1].seed(42), Shard::new(1, 4).unwrap().seed(42));
    }

    #[test]
    fn bad_shards_say_why() {
        for (text, want) in [
            ("4/4", "not below"),
            ("1", "not I/N"),
            ("a/2", "whole numbers"),
            ("0/0", "at least 1"),
        ] {
            let e = Shard::parse(text).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
        assert_eq!(Shard::parse(" 2/8 ").unwrap(), Shard { index: 2, count: 8 });
    }
}
