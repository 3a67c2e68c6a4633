//! Prefix caching at token granularity.
//!
//! A prompt's tokens are hashed at every 16-token boundary (see
//! [`TokenSeq`](super::tokenizer::TokenSeq)): the hash of block `i` stands for
//! the whole prefix up to its end, so two prompts share their first `k` blocks exactly when
//! their first `k` hashes agree. The cache remembers the hashes it has seen; a new prompt's
//! cached prefix is its leading run of remembered blocks.
//!
//! Memory is bounded by an approximate LRU of two generations: hashes go into the current
//! set, a hit in the previous set moves back into the current one, and when the current set
//! holds half the capacity it becomes the previous one (and the old previous one is dropped).
//! So at most [`PREFIX_CACHE_BLOCKS`] hashes are held, and a block used within the last half
//! capacity of insertions is never forgotten.

use std::collections::HashSet;
use std::sync::Mutex;

/// The most block hashes remembered (8 bytes each, plus the sets' overhead).
pub(crate) const PREFIX_CACHE_BLOCKS: usize = 100_000;

/// Mixed into a whole-prompt fingerprint so that it never equals a block's hash by design.
const WHOLE_PROMPT_TAG: u64 = 0x5bd1_e995_0000_0001;

/// What a lookup found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reuse {
    /// Leading blocks of the prompt that were cached.
    pub blocks: u64,
    /// The very same prompt (by its whole fingerprint) was seen before.
    pub whole: bool,
}

pub(crate) struct PrefixCache {
    generations: Mutex<Generations>,
    /// Size at which the current generation is retired.
    half: usize,
}

struct Generations {
    current: HashSet<u64>,
    previous: HashSet<u64>,
}

impl Generations {
    /// Is `key` remembered? A hit is moved into the current generation.
    fn touch(&mut self, key: u64, half: usize) -> bool {
        if self.current.contains(&key) {
            return true;
        }
        let found = self.previous.remove(&key);
        if found {
            self.insert(key, half);
        }
        found
    }

    fn insert(&mut self, key: u64, half: usize) {
        self.current.insert(key);
        if self.current.len() >= half {
            self.previous = std::mem::take(&mut self.current);
        }
    }
}

impl PrefixCache {
    /// A cache of at most `capacity` (at least 2) block hashes.
    pub fn new(capacity: usize) -> Self {
        Self {
            generations: Mutex::new(Generations {
                current: HashSet::new(),
                previous: HashSet::new(),
            }),
            half: (capacity / 2).max(1),
        }
    }

    /// Looks up a prompt by its block hashes (and, when given, its whole fingerprint), then
    /// remembers all of them.
    pub fn reuse(&self, blocks: &[u64], whole: Option<u64>) -> Reuse {
        let mut g = self.generations.lock().unwrap_or_else(|e| e.into_inner());
        let half = self.half;
        let mut hits = 0;
        while hits < blocks.len() && g.touch(blocks[hits], half) {
            hits += 1;
        }
        for &block in &blocks[hits..] {
            g.insert(block, half);
        }
        let whole = whole.is_some_and(|fingerprint| {
            let key = fingerprint ^ WHOLE_PROMPT_TAG;
            let seen = g.touch(key, half);
            if !seen {
                g.insert(key, half);
            }
            seen
        });
        Reuse {
            blocks: hits as u64,
            whole,
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        let g = self.generations.lock().unwrap();
        g.current.len() + g.previous.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leading_blocks_are_reused() {
        let cache = PrefixCache::new(1000);
        let cases: &[(&[u64], Option<u64>, Reuse)] = &[
            (
                &[1, 2, 3],
                Some(10),
                Reuse {
                    blocks: 0,
                    whole: false,
                },
            ),
            (&[1, 2, 3], Some(10), Reuse { blocks: 3, whole: true }),
            (
                &[1, 2, 4, 5],
                Some(11),
                Reuse {
                    blocks: 2,
                    whole: false,
                },
            ),
            (
                &[9, 2, 3],
                None,
                Reuse {
                    blocks: 0,
                    whole: false,
                },
            ),
            (
                &[1, 2, 4, 5, 6],
                None,
                Reuse {
                    blocks: 4,
                    whole: false,
                },
            ),
            (
                &[],
                Some(12),
                Reuse {
                    blocks: 0,
                    whole: false,
                },
            ),
            (&[], Some(12), Reuse { blocks: 0, whole: true }),
        ];
        for (i, &(blocks, whole, expected)) in cases.iter().enumerate() {
            assert_eq!(cache.reuse(blocks, whole), expected, "case {i}");
        }
    }

    #[test]
    fn memory_is_bounded_and_recent_blocks_stay() {
        let cache = PrefixCache::new(100);
        let hot: Vec<u64> = (0..10).collect();
        cache.reuse(&hot, None);
        for round in 0..100u64 {
            let cold: Vec<u64> = (0..10).map(|i| 1_000 + round * 10 + i).collect();
            cache.reuse(&cold, None);
            assert_eq!(cache.reuse(&hot, None).blocks, 10, "round {round}");
            assert!(cache.len() <= 100, "{}", cache.len());
        }
        // The first cold prompt is long forgotten.
        let first: Vec<u64> = (1_000..1_010).collect();
        assert_eq!(cache.reuse(&first, None).blocks, 0);
    }
}
