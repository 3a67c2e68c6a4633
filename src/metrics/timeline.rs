//! A timed step's figures over its window, in bounded memory: completed and failed requests and
//! output tokens by when they arrived, in at most [`MAX_BUCKETS`] buckets (1 s, or wider for a
//! window longer than that many seconds). `summary.json` → `steps[].timeline`; the report draws
//! it on the run's clock.

use super::step::Window;
use serde::{Deserialize, Serialize};

/// Buckets a window is cut into at most.
pub const MAX_BUCKETS: usize = 120;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    /// The window's start, seconds after the run started: bucket `i` covers
    /// `[start_s + i × bucket_s, start_s + (i + 1) × bucket_s)`.
    pub start_s: f64,
    /// The window's end: the last bucket may be cut short by it.
    pub end_s: f64,
    pub bucket_s: f64,
    /// Requests that ended successfully in each bucket.
    pub completed: Vec<u64>,
    /// Requests that failed (ended) in each bucket.
    pub failed: Vec<u64>,
    /// Output tokens that arrived in each bucket.
    pub output_tokens: Vec<f64>,
}

impl Timeline {
    pub fn new(window: Window) -> Self {
        let buckets = window.length_s().max(1.0) / MAX_BUCKETS as f64;
        Self {
            start_s: window.start_s,
            end_s: window.end_s,
            bucket_s: buckets.ceil().max(1.0),
            ..Self::default()
        }
    }

    /// The bucket of an instant (run clock), growing the lists to it; `None` outside.
    fn bucket(&mut self, t_s: f64) -> Option<usize> {
        let i = ((t_s - self.start_s) / self.bucket_s).floor();
        if !(0.0..MAX_BUCKETS as f64).contains(&i) {
            return None;
        }
        let i = i as usize;
        if self.completed.len() <= i {
            self.completed.resize(i + 1, 0);
            self.failed.resize(i + 1, 0);
            self.output_tokens.resize(i + 1, 0.0);
        }
        Some(i)
    }

    pub fn add_completed(&mut self, t_s: f64) {
        if let Some(i) = self.bucket(t_s) {
            self.completed[i] += 1;
        }
    }

    pub fn add_failed(&mut self, t_s: f64) {
        if let Some(i) = self.bucket(t_s) {
            self.failed[i] += 1;
        }
    }

    pub fn add_tokens(&mut self, t_s: f64, tokens: f64) {
        if let Some(i) = self.bucket(t_s) {
            self.output_tokens[i] += tokens;
        }
    }

    /// How long bucket `i` lies inside the window (the last one may be shorter), in s.
    pub fn width_s(&self, i: usize) -> f64 {
        let from = self.start_s + i as f64 * self.bucket_s;
        (self.end_s - from).clamp(0.0, self.bucket_s)
    }

    /// The middle of bucket `i`, on the run's clock.
    pub fn at(&self, i: usize) -> f64 {
        self.start_s + (i as f64 + 0.5) * self.bucket_s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_bounded_and_placed_by_time() {
        let mut t = Timeline::new(Window {
            start_s: 10.0,
            end_s: 14.0,
        });
        assert_eq!(t.bucket_s, 1.0);
        t.add_completed(10.2);
        t.add_completed(12.9);
        t.add_failed(12.1);
        t.add_tokens(11.5, 3.0);
        t.add_completed(9.0);
        assert_eq!(t.completed, vec![1, 0, 1]);
        assert_eq!(t.failed, vec![0, 0, 1]);
        assert_eq!(t.output_tokens, vec![0.0, 3.0, 0.0]);
        assert_eq!(t.at(1), 11.5);
        let mut short = Timeline::new(Window {
            start_s: 0.0,
            end_s: 1.7,
        });
        short.add_completed(1.2);
        assert!((short.width_s(1) - 0.7).abs() < 1e-9 && short.width_s(0) == 1.0);
        let mut long = Timeline::new(Window {
            start_s: 0.0,
            end_s: 3600.0,
        });
        assert_eq!(long.bucket_s, 30.0);
        for s in 0..100_000 {
            long.add_completed(f64::from(s));
        }
        assert_eq!(long.completed.len(), MAX_BUCKETS, "never more buckets than the cap");
    }
}
