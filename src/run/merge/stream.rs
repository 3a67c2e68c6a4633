//! The shards' records as one stream on the common clock, and the summed in-flight timeline.
//!
//! Every shard's `requests.jsonl` is open at once and read a record at a time; the stream
//! hands out the record that ended first among the shards' next ones (a k-way merge). A shard
//! writes its records as they finish, so each file is in end order but for requests finishing
//! within a moment of each other: the stream is in end order to within that, which is what
//! lets the stress intervals close as it goes (`super::stress`). What it holds: one record and
//! one read buffer of [`READ_BUFFER`] per shard.

use crate::cli::config::UsageError;
use crate::client::RequestRecord;
use crate::report::jsonl::RecordReader;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::path::PathBuf;

/// Each shard's read buffer: 64 shards read through 16 MiB.
const READ_BUFFER: usize = 256 * 1024;

/// A shard's next record, ordered by its end (then by shard, for a stable order).
struct Head {
    end_s: f64,
    shard: usize,
    rec: RequestRecord,
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Head {}

impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Head {
    fn cmp(&self, other: &Self) -> Ordering {
        self.end_s.total_cmp(&other.end_s).then(self.shard.cmp(&other.shard))
    }
}

/// The shards' records, earliest end first, each moved onto the common clock (and its
/// connection numbered among the run's).
pub(super) struct ShardRecords {
    readers: Vec<(RecordReader, f64)>,
    heads: BinaryHeap<Reverse<Head>>,
}

impl ShardRecords {
    /// Opens each `(requests.jsonl, shift)`: a shard's times move by its shift (its run start
    /// − the earliest).
    pub(super) fn open(files: impl IntoIterator<Item = (PathBuf, f64)>) -> Result<Self, UsageError> {
        let mut stream = Self {
            readers: Vec::new(),
            heads: BinaryHeap::new(),
        };
        for (path, shift) in files {
            let reader = RecordReader::with_buffer(&path, READ_BUFFER).map_err(UsageError)?;
            stream.readers.push((reader, shift));
        }
        for i in 0..stream.readers.len() {
            stream.refill(i)?;
        }
        Ok(stream)
    }

    /// Reads shard `i`'s next record into the heap.
    fn refill(&mut self, i: usize) -> Result<(), UsageError> {
        let n = self.readers.len() as u32;
        let (reader, shift) = &mut self.readers[i];
        if let Some(mut rec) = reader.next_record().map_err(UsageError)? {
            rec.start_s += *shift;
            if let Some(t) = rec.intended_s.as_mut() {
                *t += *shift;
            }
            // Each shard numbers its connections from 0: one number per connection of the run
            // (a step's per-connection generation time, its efficiency, is by connection).
            rec.conn = rec.conn.wrapping_mul(n).wrapping_add(i as u32);
            self.heads.push(Reverse(Head {
                end_s: rec.end_s(),
                shard: i,
                rec,
            }));
        }
        Ok(())
    }

    /// The record that ended first among the shards' next ones, with its shard's position in
    /// the list opened.
    pub(super) fn next(&mut self) -> Result<Option<(usize, RequestRecord)>, UsageError> {
        let Some(Reverse(head)) = self.heads.pop() else {
            return Ok(None);
        };
        self.refill(head.shard)?;
        Ok(Some((head.shard, head.rec)))
    }

    /// Records read, and lines skipped (not a record), over every shard.
    pub(super) fn counts(&self) -> (u64, u64) {
        self.readers
            .iter()
            .fold((0, 0), |(n, bad), (r, _)| (n + r.records, bad + r.bad_lines))
    }
}

/// The resolution of the summed in-flight timeline: a request counts from the 10 ms bucket of
/// its send to that of its end; starts and ends in one bucket net out.
pub const IN_FLIGHT_BUCKET_S: f64 = 0.010;

/// Times past this (40 days) are not a run's: such a record stays out of the timeline, which
/// is dense.
const LATEST_S: f64 = 40.0 * 86_400.0;

/// A step's requests in flight, summed over the shards: per 10 ms bucket from the step's
/// first, the starts − the ends in it (4 bytes a bucket: 1.4 MB an hour of step).
#[derive(Debug, Default)]
pub(super) struct InFlight {
    /// The bucket of `deltas[0]`.
    origin: i64,
    deltas: Vec<i32>,
}

fn bucket(t_s: f64) -> i64 {
    (t_s / IN_FLIGHT_BUCKET_S).floor() as i64
}

impl InFlight {
    /// A request in flight from `start_s` to `end_s` (common clock).
    pub(super) fn add(&mut self, start_s: f64, end_s: f64) {
        let times = 0.0..LATEST_S;
        if times.contains(&start_s) && times.contains(&end_s) && start_s <= end_s {
            self.add_buckets(bucket(start_s), bucket(end_s));
        }
    }

    fn add_buckets(&mut self, from: i64, to: i64) {
        *self.slot(from) += 1;
        *self.slot(to) -= 1;
    }

    /// The delta of a bucket, the list grown to it (at the front by at least a quarter, so
    /// that records arriving a little out of order do not move it every time).
    fn slot(&mut self, b: i64) -> &mut i32 {
        if self.deltas.is_empty() {
            self.origin = b;
        }
        if b < self.origin {
            let grow = ((self.origin - b) as usize).max(self.deltas.len() / 4 + 16);
            self.deltas.splice(0..0, std::iter::repeat_n(0, grow));
            self.origin -= grow as i64;
        }
        let i = (b - self.origin) as usize;
        if i >= self.deltas.len() {
            self.deltas.resize(i + 1, 0);
        }
        &mut self.deltas[i]
    }

    /// The count in flight in every bucket (the deltas summed in place).
    pub(super) fn into_counts(mut self) -> InFlightCounts {
        let mut now = 0i32;
        for d in &mut self.deltas {
            now += *d;
            *d = now;
        }
        InFlightCounts {
            origin: self.origin,
            counts: self.deltas,
        }
    }
}

/// Requests in flight per bucket.
#[derive(Debug, Default)]
pub(super) struct InFlightCounts {
    origin: i64,
    counts: Vec<i32>,
}

impl InFlightCounts {
    /// The highest count.
    pub(super) fn peak(&self) -> u64 {
        self.counts.iter().copied().max().unwrap_or(0).max(0) as u64
    }

    /// The highest count in the buckets of `[from_s, to_s)`.
    pub(super) fn peak_between(&self, from_s: f64, to_s: f64) -> u64 {
        let index = |t: f64| (bucket(t) - self.origin).clamp(0, self.counts.len() as i64) as usize;
        let (from, to) = (index(from_s), index(to_s));
        self.counts[from..to.max(from)]
            .iter()
            .copied()
            .max()
            .unwrap_or(0)
            .max(0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_in_flight_peak_sums_overlaps() {
        let mut d = InFlight::default();
        // Out of order, as records sorted by their end come: the list grows at the front.
        for (s, e) in [(25, 40), (10, 30), (0, 10), (5, 20)] {
            d.add_buckets(s + 1000, e + 1000);
        }
        let counts = d.into_counts();
        assert_eq!(counts.peak(), 2);
        let at = |b: i64| (b + 1000) as f64 * IN_FLIGHT_BUCKET_S + 1e-6;
        // [0, 5): one request; [5, 10): two; [30, 40): one.
        assert_eq!(counts.peak_between(at(0), at(5)), 1);
        assert_eq!(counts.peak_between(at(0), at(6)), 2);
        assert_eq!(counts.peak_between(at(30), at(40)), 1);
        assert_eq!(counts.peak_between(at(50), at(60)), 0);
    }

    #[test]
    fn records_come_out_by_their_end_across_shards() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, starts: &[f64]| {
            let path = dir.path().join(name);
            let mut w = crate::report::RecordWriter::create(&path).unwrap();
            for &start_s in starts {
                let rec = RequestRecord {
                    start_s,
                    end_us: 500_000,
                    ..RequestRecord::default()
                };
                assert_eq!(w.write(&rec), None);
            }
            assert_eq!(w.flush(), None);
            path
        };
        let a = write("a.jsonl", &[1.0, 2.0, 3.0]);
        let b = write("b.jsonl", &[0.5, 2.2]);
        let mut stream = ShardRecords::open([(a, 0.0), (b, 1.0)]).unwrap();
        let mut ends = Vec::new();
        while let Some((shard, rec)) = stream.next().unwrap() {
            ends.push((shard, (rec.end_s() * 1000.0).round() as i64));
        }
        assert_eq!(ends, [(0, 1500), (1, 2000), (0, 2500), (0, 3500), (1, 3700)]);
        assert_eq!(stream.counts(), (5, 0));
    }
}
