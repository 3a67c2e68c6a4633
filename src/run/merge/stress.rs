//! A stress run's intervals, merged as the records stream by (docs/metrics.md, "Merging
//! shards").
//!
//! Merged interval k is measured over the union of the shards' interval k windows (common
//! clock), with the live sink's window rule: what arrived in it, and the requests sent in it
//! followed to their end, but only those that ended within one report interval after its end
//! (a shard reports an interval then at the latest, without what is still in flight). Shards
//! that ended with different numbers of intervals are merged over the ones all have (a note
//! says which were left out; their requests still count in the totals).
//!
//! Memory is bounded by the report interval, not the run: the records come in end order
//! (`super::stream`), an interval's accumulators are made when the first record that ended
//! inside or after its start comes and closed once the stream has passed its end by two report
//! intervals (one for the window rule, one for records written out of order), its histograms
//! going to `histograms.jsonl` and its figures into the summary. So at most about three
//! intervals (those that started before the latest end, and ended less than two report
//! intervals before it) are open at any time, whatever the run's length or number of shards.
//! A record further out of order than that is counted in the totals and said in a note.

use super::super::rebuild::{SavedSettings, StepKey};
use super::check::ShardInput;
use super::histograms::{HistogramFile, HistogramLine};
use crate::cli::config::UsageError;
use crate::client::RequestRecord;
use crate::i18n::{tr, Msg};
use crate::metrics::step::SloJudge;
use crate::metrics::{StepAccumulator, Window};
use crate::monitor::{GpuWindow, ServerWindow, SystemSummary};
use crate::report::summary::{Interval, StressReport, Summary};
use serde_json::Value;
use std::collections::VecDeque;

/// A shard's stress intervals, all the merge keeps of them: each one's window (the shard's
/// clock) and whether the client kept up in it.
pub(super) struct ShardIntervals {
    windows: Vec<Window>,
    client_bound: Vec<bool>,
}

impl ShardIntervals {
    pub(super) fn of(report: &StressReport) -> Self {
        Self {
            windows: report
                .intervals
                .iter()
                .map(|i| Window {
                    start_s: i.start_s,
                    end_s: i.end_s,
                })
                .collect(),
            client_bound: report
                .intervals
                .iter()
                .map(|i| i.tests.iter().any(|t| t.client_bound))
                .collect(),
        }
    }
}

/// What the first shard's interval says that the records cannot (as for steps).
#[derive(Default)]
struct Telemetry {
    server_metrics: Option<ServerWindow>,
    gpu: Option<GpuWindow>,
    system: Option<SystemSummary>,
}

/// The merged intervals: planned from the shards' summaries, filled from the records.
pub(super) struct IntervalMerger {
    /// Each merged interval's window (common clock).
    windows: Vec<Window>,
    /// Per interval, the shards whose interval was client-bound.
    bound_shards: Vec<Vec<u32>>,
    /// The run's tests, as steps keys (one load point).
    tests: Vec<StepKey>,
    telemetry: Vec<Telemetry>,
    slo: Option<SloJudge>,
    /// The report interval: how long after its end an interval takes requests.
    wait_s: f64,
    /// The accumulators (one per test) of intervals `closed`, `closed + 1`, ….
    open: VecDeque<Vec<StepAccumulator>>,
    closed: usize,
    /// The latest end seen.
    clock: f64,
    /// Records that came after their interval had closed.
    late: u64,
    intervals: Vec<Interval>,
    notes: Vec<String>,
}

/// Whether a request counts in an interval's window: it ended inside or after it, began
/// before its end (its send, or its intended send), and ended within `wait_s` of that end.
fn counts_in(w: Window, began_s: f64, end_s: f64, wait_s: f64) -> bool {
    end_s >= w.start_s && began_s < w.end_s && end_s < w.end_s + wait_s
}

impl IntervalMerger {
    /// The merged intervals of a stress run (`None` for any other run).
    pub(super) fn plan(
        shards: &[ShardInput],
        earliest: f64,
        saved: &SavedSettings,
    ) -> Result<Option<Self>, UsageError> {
        let first = &shards[0];
        let config = &first.summary.config;
        if config.pointer("/mode/kind").and_then(Value::as_str) != Some("stress") {
            return Ok(None);
        }
        let longest = shards
            .iter()
            .filter_map(|s| s.intervals.as_ref())
            .flat_map(|i| i.windows.iter().map(Window::length_s))
            .fold(1.0, f64::max);
        let wait_s = config.get("report_interval").and_then(Value::as_f64).unwrap_or(longest);
        let grid = Grid::of(shards, wait_s);
        let n = grid.cells();
        let (windows, bound_shards): (Vec<Window>, Vec<Vec<u32>>) =
            (0..n).filter_map(|g| grid.interval(shards, g, earliest)).unzip();
        let mut notes: Vec<String> = left_out_note(shards, &grid).into_iter().collect();
        notes.extend(grid.late_note(shards, n));
        let first_of_cell: Vec<usize> = match first.intervals.as_ref() {
            Some(own) => (0..n).map(|g| grid.covering(0, own, g).unwrap_or(g)).collect(),
            None => Vec::new(),
        };
        Ok(Some(Self {
            telemetry: telemetry(first, &first_of_cell)?,
            tests: first.summary.steps.iter().map(|s| (s.load, s.test, None)).collect(),
            notes,
            slo: saved.judge.clone(),
            windows,
            bound_shards,
            wait_s,
            open: VecDeque::new(),
            closed: 0,
            clock: f64::NEG_INFINITY,
            late: 0,
            intervals: Vec::new(),
        }))
    }

    fn fresh(&self, w: Window) -> Vec<StepAccumulator> {
        self.tests
            .iter()
            .map(|&(load, test, _)| {
                StepAccumulator::new(test, load)
                    .with_slo(self.slo.clone())
                    .with_window(Some(w))
                    .counting_warmup_inside()
            })
            .collect()
    }

    /// Adds a record (common clock) to the open intervals it counts in; closes those the
    /// stream has passed, writing their histograms.
    pub(super) fn add(&mut self, rec: &RequestRecord, file: &mut HistogramFile) -> Result<(), String> {
        let end = rec.end_s();
        if !end.is_finite() {
            return Ok(());
        }
        self.clock = self.clock.max(end);
        while let Some(&w) = self
            .windows
            .get(self.closed + self.open.len())
            .filter(|w| w.start_s <= end)
        {
            let accs = self.fresh(w);
            self.open.push_back(accs);
        }
        if let Some(t) = self.tests.iter().position(|k| k.1 == rec.test) {
            let began = rec.start_s.min(rec.intended_s());
            for (i, accs) in self.open.iter_mut().enumerate() {
                if counts_in(self.windows[self.closed + i], began, end, self.wait_s) {
                    accs[t].add(rec);
                }
            }
            let late = self.windows[..self.closed]
                .iter()
                .rev()
                .take_while(|w| end < w.end_s + self.wait_s)
                .any(|&w| counts_in(w, began, end, self.wait_s));
            self.late += u64::from(late);
        }
        while !self.open.is_empty() && self.windows[self.closed].end_s + 2.0 * self.wait_s <= self.clock {
            self.close_front(file)?;
        }
        Ok(())
    }

    /// Closes the oldest open interval: its histograms to the file, its figures kept.
    fn close_front(&mut self, file: &mut HistogramFile) -> Result<(), String> {
        let Some(accs) = self.open.pop_front() else {
            return Ok(());
        };
        let k = self.closed;
        self.closed += 1;
        for (acc, key) in accs.iter().zip(&self.tests) {
            file.write(&HistogramLine::of(*key, acc).in_interval(k))?;
        }
        let interval = self.interval_of(k, &accs);
        self.intervals.push(interval);
        Ok(())
    }

    /// Interval k's figures, as the live sink reports them, with the first shard's telemetry
    /// checked against the merged arrivals.
    fn interval_of(&self, k: usize, accs: &[StepAccumulator]) -> Interval {
        let w = self.windows[k];
        let telemetry = self.telemetry.get(k);
        let tests = accs
            .iter()
            .map(|acc| {
                let mut stats = acc.stats(0);
                stats.efficiency_pct = None;
                stats.cdf = None;
                stats.timeline = None;
                stats.system = telemetry.and_then(|t| t.system.clone());
                stats.client_bound_shards = self.bound_shards[k].clone();
                stats.client_bound = !stats.client_bound_shards.is_empty();
                stats
            })
            .collect();
        let mut interval = Interval {
            index: k,
            start_s: w.start_s,
            end_s: w.end_s,
            tests,
            server_metrics: telemetry.and_then(|t| t.server_metrics.clone()),
            gpu: telemetry.and_then(|t| t.gpu.clone()),
        };
        super::super::telemetry::relate_interval(&mut interval, true);
        interval
    }

    /// Closes what is still open (and the intervals no record reached), puts in each
    /// interval's peak of requests in flight (`peak` of a step key over a window: the summed
    /// timeline is whole only now) and compares the last intervals with the first.
    pub(super) fn finish(
        mut self,
        file: &mut HistogramFile,
        peak: impl Fn(StepKey, Window) -> u64,
    ) -> Result<(StressReport, Vec<String>), String> {
        while self.closed < self.windows.len() {
            if self.open.is_empty() {
                let accs = self.fresh(self.windows[self.closed]);
                self.open.push_back(accs);
            }
            self.close_front(file)?;
        }
        for (interval, &w) in self.intervals.iter_mut().zip(&self.windows) {
            for s in &mut interval.tests {
                s.max_in_flight = peak((s.load, s.test, None), w);
            }
        }
        if self.late > 0 {
            self.notes.push(tr(Msg::MergeLateRecords, &[("n", &self.late)]));
        }
        let report = StressReport {
            drift: crate::metrics::drift::drift(&self.intervals),
            intervals: self.intervals,
        };
        Ok((report, self.notes))
    }
}

/// Each shard's intervals placed on the report-interval grid from its release: merged
/// interval g is grid cell g of every shard (the shards of one `--start-at` release within
/// milliseconds of each other). A shard's window of cell g is that cell of its own grid, from
/// its first interval's start to its last one's end: its intervals end on that grid within a
/// tick, but for one a starved shard closed late (two or more report intervals as one, or one
/// that ended inside a cell), which then does not put the others' intervals out of step.
struct Grid {
    /// Per shard (the order of `shards`); `None` for a shard without intervals.
    shards: Vec<Option<ShardGrid>>,
}

/// One shard's grid: its first interval's start, its last one's end (its clock), the report
/// interval, and how many cells that makes.
#[derive(Clone, Copy)]
struct ShardGrid {
    origin: f64,
    end: f64,
    step: f64,
    cells: usize,
}

impl ShardGrid {
    fn of(own: &ShardIntervals, step: f64) -> Option<Self> {
        let origin = own.windows.first()?.start_s;
        let end = own.windows.last()?.end_s;
        let cells = (((end - origin) / step).round() as usize).max(1);
        Some(Self {
            origin,
            end,
            step,
            cells,
        })
    }

    /// Cell g on the shard's clock; the last one ends where its last interval did.
    fn cell(&self, g: usize) -> Window {
        let at = |c: usize| (self.origin + c as f64 * self.step).min(self.end);
        let end_s = if g + 1 >= self.cells { self.end } else { at(g + 1) };
        Window { start_s: at(g), end_s }
    }
}

/// Whether a client-bound interval of the shard covers at least a quarter of its cell `w`.
fn bound_in(own: &ShardIntervals, w: Window) -> bool {
    let from = own.windows.partition_point(|i| i.end_s <= w.start_s);
    let to = own.windows.partition_point(|i| i.start_s < w.end_s);
    (from..to.max(from)).any(|j| {
        let i = own.windows[j];
        let overlap = i.end_s.min(w.end_s) - i.start_s.max(w.start_s);
        own.client_bound[j] && overlap >= 0.25 * w.length_s()
    })
}

impl Grid {
    fn of(shards: &[ShardInput], step: f64) -> Self {
        Self {
            shards: shards
                .iter()
                .map(|s| ShardGrid::of(s.intervals.as_ref()?, step))
                .collect(),
        }
    }

    /// How many cells a shard covers.
    fn cells_of(&self, shard: usize) -> usize {
        self.shards[shard].map_or(0, |g| g.cells)
    }

    /// The cells every shard covers.
    fn cells(&self) -> usize {
        (0..self.shards.len()).map(|i| self.cells_of(i)).min().unwrap_or(0)
    }

    /// The shard's interval holding the middle of cell `g`.
    fn covering(&self, shard: usize, own: &ShardIntervals, g: usize) -> Option<usize> {
        let cell = self.shards[shard]?.cell(g);
        let middle = (cell.start_s + cell.end_s) / 2.0;
        let j = own.windows.partition_point(|i| i.end_s <= middle);
        (j < own.windows.len()).then_some(j)
    }

    /// Cell `g` of every shard: the union of their windows of it (common clock), and the
    /// shards with a client-bound interval there.
    fn interval(&self, shards: &[ShardInput], g: usize, earliest: f64) -> Option<(Window, Vec<u32>)> {
        let mut union: Option<Window> = None;
        let mut bound = Vec::new();
        for (i, s) in shards.iter().enumerate() {
            let own = s.intervals.as_ref()?;
            let grid = self.shards[i]?;
            let cell = grid.cell(g);
            // The shard's own interval where it is the cell within a quarter of a report
            // interval (all but those closed late): then its figures add up with the merge's.
            let near = |a: f64, b: f64| (a - b).abs() <= 0.25 * grid.step;
            let w = self
                .covering(i, own, g)
                .map(|j| own.windows[j])
                .filter(|w| near(w.start_s, cell.start_s) && near(w.end_s, cell.end_s))
                .unwrap_or(cell);
            let shift = s.start_unix_s - earliest;
            let (start_s, end_s) = (w.start_s + shift, w.end_s + shift);
            union = Some(match union {
                None => Window { start_s, end_s },
                Some(u) => Window {
                    start_s: u.start_s.min(start_s),
                    end_s: u.end_s.max(end_s),
                },
            });
            if bound_in(own, cell) {
                bound.push(s.index);
            }
        }
        Some((union?, bound))
    }

    /// Said when a shard closed an interval late (half a report interval or more off its grid)
    /// within the first `n` cells.
    fn late_note(&self, shards: &[ShardInput], n: usize) -> Option<String> {
        let late: Vec<u32> = shards
            .iter()
            .enumerate()
            .filter(|(i, s)| {
                let (Some(grid), Some(own)) = (self.shards[*i], s.intervals.as_ref()) else {
                    return false;
                };
                let limit = grid.origin + n as f64 * grid.step;
                own.windows.iter().filter(|w| w.end_s < limit).any(|w| {
                    let off = ((w.end_s - grid.origin) / grid.step).fract();
                    off.min(1.0 - off) > 0.25 || w.length_s() >= 1.5 * grid.step
                })
            })
            .map(|(_, s)| s.index)
            .collect();
        (!late.is_empty()).then(|| tr(Msg::MergeIntervalsLate, &[("shards", &super::check::join(&late))]))
    }
}

/// Said when some shards cover more cells of the grid than the fewest: which intervals are
/// left out.
fn left_out_note(shards: &[ShardInput], grid: &Grid) -> Option<String> {
    let n = grid.cells();
    let most = (0..shards.len()).map(|i| grid.cells_of(i)).max().unwrap_or(0);
    if most <= n {
        return None;
    }
    let fewest: Vec<u32> = (0..shards.len())
        .filter(|&i| grid.cells_of(i) == n)
        .map(|i| shards[i].index)
        .collect();
    let args: [(&str, &dyn std::fmt::Display); 4] = [
        ("from", &n),
        ("to", &(most - 1)),
        ("shards", &super::check::join(&fewest)),
        ("n", &n),
    ];
    Some(tr(Msg::MergeIntervalsLeftOut, &args))
}

/// The first shard's telemetry of its intervals covering each merged interval (`of_cell`: the
/// index of its interval), read again from its summary.json (every shard's intervals in full
/// would not be small).
fn telemetry(first: &ShardInput, of_cell: &[usize]) -> Result<Vec<Telemetry>, UsageError> {
    if of_cell.is_empty() {
        return Ok(Vec::new());
    }
    let dir = first.dir.display();
    let unreadable = |e: &dyn std::fmt::Display| UsageError(tr(Msg::MergeUnreadable, &[("dir", &dir), ("error", e)]));
    let bytes = std::fs::read(first.dir.join("summary.json")).map_err(|e| unreadable(&e))?;
    let summary: Summary = serde_json::from_slice(&bytes).map_err(|e| unreadable(&e))?;
    let intervals = summary.stress.map(|s| s.intervals).unwrap_or_default();
    Ok(of_cell
        .iter()
        .map(|&j| {
            intervals.get(j).map_or_else(Telemetry::default, |i| Telemetry {
                system: i.tests.first().and_then(|t| t.system.clone()),
                server_metrics: i.server_metrics.clone(),
                gpu: i.gpu.clone(),
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::LoadPoint;
    use crate::metrics::StepStats;
    use crate::workload::TestKind;
    use std::path::Path;

    /// A stress shard whose intervals are `windows` (its clock), client-bound where `bound`.
    fn shard(dir: &Path, index: u32, start_unix_s: f64, windows: &[(f64, f64)], bound: &[bool]) -> ShardInput {
        let summary = Summary {
            config: serde_json::json!({"mode": {"kind": "stress"}, "report_interval": 2.0}),
            steps: vec![StepStats {
                test: TestKind::Output,
                load: LoadPoint::Concurrency(2),
                ..StepStats::default()
            }],
            ..Summary::default()
        };
        std::fs::write(dir.join("summary.json"), serde_json::to_vec(&summary).unwrap()).unwrap();
        ShardInput {
            dir: dir.to_path_buf(),
            summary,
            run_id: "r".into(),
            index,
            count: 2,
            start_unix_s,
            intervals: Some(ShardIntervals {
                windows: windows
                    .iter()
                    .map(|&(start_s, end_s)| Window { start_s, end_s })
                    .collect(),
                client_bound: bound.to_vec(),
            }),
        }
    }

    /// A request sent at `start_s` (common clock) with `n` tokens 100 ms apart, the first
    /// 100 ms after the send; it ends 1 ms after the last.
    fn request(start_s: f64, n: u64) -> RequestRecord {
        let token_us: Vec<u64> = (1..=n).map(|i| i * 100_000).collect();
        RequestRecord {
            start_s,
            ok: true,
            load: Some(LoadPoint::Concurrency(2)),
            first_token_us: token_us.first().copied(),
            last_token_us: token_us.last().copied(),
            end_us: token_us.last().unwrap() + 1_000,
            output_tokens: n,
            token_us,
            ..RequestRecord::default()
        }
    }

    #[test]
    fn intervals_merge_as_the_records_stream_by() {
        let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        let windows = [(0.0, 2.0), (2.0, 4.0), (4.0, 6.0), (6.0, 8.0)];
        let shards = [
            shard(dirs[0].path(), 0, 1000.0, &windows, &[false; 4]),
            // 5 ms later, one interval fewer, client-bound in its second.
            shard(dirs[1].path(), 1, 1000.005, &windows[..3], &[false, true, false]),
        ];
        let saved = SavedSettings::from(Some(&shards[0].summary));
        let mut merger = IntervalMerger::plan(&shards, 1000.0, &saved).unwrap().unwrap();
        let out = tempfile::tempdir().unwrap();
        let mut file = HistogramFile::atomic(out.path()).unwrap();
        // In end order, but for the last: it ended long before the one ahead of it.
        for rec in [
            request(0.5, 10),  // interval 0: 10 tokens
            request(1.45, 10), // sent in 0: 5 tokens in 0 (1.55 … 1.95), 5 in 1
            request(3.05, 20), // sent in 1: 9 tokens in 1 (3.15 … 3.95), 11 in 2
            request(5.5, 9),   // sent in 2: 5 tokens in 2 (5.6 … 6.0)
            request(0.8, 10),  // ends at 1.801, after interval 0 closed (at 6.005)
        ] {
            merger.add(&rec, &mut file).unwrap();
            assert!(merger.open.len() <= 3, "{} open", merger.open.len());
        }
        let (report, notes) = merger.finish(&mut file, |_, _| 7).unwrap();
        file.finish().unwrap();
        let got: Vec<(f64, f64, u64, f64, Vec<u32>, u64)> = report
            .intervals
            .iter()
            .map(|i| {
                let t = &i.tests[0];
                let tokens = (t.output_throughput_tps * t.duration_s).round();
                (
                    i.start_s,
                    i.end_s,
                    t.requests_ok,
                    tokens,
                    t.client_bound_shards.clone(),
                    t.max_in_flight,
                )
            })
            .collect();
        let near = |a: f64, b: f64| (a - b).abs() < 1e-9;
        let want = [
            (0.0, 2.005, 2, 15.0, vec![], 7),
            (2.0, 4.005, 1, 14.0, vec![1], 7),
            (4.0, 6.005, 1, 16.0, vec![], 7),
        ];
        assert_eq!(got.len(), want.len(), "{got:?}");
        for (g, w) in got.iter().zip(&want) {
            assert!(near(g.0, w.0) && near(g.1, w.1), "{got:?}");
            assert_eq!((g.2, g.3, &g.4, g.5), (w.2, w.3, &w.4, w.5), "{got:?}");
        }
        assert!(report.intervals[1].tests[0].client_bound);
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[0].contains("3 to 3") && notes[0].contains("shard 1"), "{notes:?}");
        assert!(notes[1].starts_with("records out of order: 1 came"), "{notes:?}");
        let text = std::fs::read_to_string(out.path().join("histograms.jsonl")).unwrap();
        let lines: Vec<HistogramLine> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let indexes: Vec<Option<usize>> = lines.iter().map(|l| l.interval).collect();
        assert_eq!(indexes, [Some(0), Some(1), Some(2)]);
        assert_eq!(
            lines[0].e2e.iter().map(|b| b[1]).sum::<u64>(),
            2,
            "interval 0 took a and b"
        );
    }

    #[test]
    fn an_interval_a_shard_closed_late_is_matched_by_the_grid_not_its_index() {
        let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        let windows = [(0.0, 2.0), (2.0, 4.0), (4.0, 6.0), (6.0, 8.0)];
        let shards = [
            shard(dirs[0].path(), 0, 1000.0, &windows, &[false; 4]),
            // Starved, it closed its second and third report intervals as one, client-bound;
            // its last one late too (8.3 s, nearer 8 than 10).
            shard(
                dirs[1].path(),
                1,
                1000.005,
                &[(0.0, 2.0), (2.0, 6.1), (6.1, 8.3)],
                &[false, true, false],
            ),
        ];
        let saved = SavedSettings::from(Some(&shards[0].summary));
        let merger = IntervalMerger::plan(&shards, 1000.0, &saved).unwrap().unwrap();
        let got: Vec<(f64, f64)> = merger.windows.iter().map(|w| (w.start_s, w.end_s)).collect();
        let want = [(0.0, 2.005), (2.0, 4.005), (4.0, 6.005), (6.0, 8.305)];
        assert_eq!(got.len(), want.len(), "{got:?}");
        for (g, w) in got.iter().zip(&want) {
            assert!((g.0 - w.0).abs() < 1e-9 && (g.1 - w.1).abs() < 1e-9, "{got:?}");
        }
        assert_eq!(merger.bound_shards, [vec![], vec![1], vec![1], vec![]]);
        assert_eq!(merger.notes.len(), 1, "{:?}", merger.notes);
        assert!(
            merger.notes[0].starts_with("shard 1 closed some stress intervals late"),
            "{:?}",
            merger.notes
        );
        // One closed inside a cell (2.6 s of a 1 s grid), then a short one to the grid: the
        // cells after it stay in step, and the short one's flag counts where it lies.
        let windows = [(0.0, 1.0), (1.0, 2.6), (2.6, 3.0), (3.0, 4.0)];
        let shards = [
            shard(dirs[0].path(), 0, 1000.0, &windows[..], &[false, false, true, false]),
            shard(
                dirs[1].path(),
                1,
                1000.0,
                &[(0.0, 1.0), (1.0, 2.0), (2.0, 3.0), (3.0, 4.0)],
                &[false; 4],
            ),
        ];
        let grid = Grid::of(&shards, 1.0);
        assert_eq!(grid.cells(), 4);
        let cells: Vec<(f64, f64)> = (0..4)
            .map(|g| grid.interval(&shards, g, 1000.0).unwrap().0)
            .map(|w| (w.start_s, w.end_s))
            .collect();
        assert_eq!(cells, [(0.0, 1.0), (1.0, 2.0), (2.0, 3.0), (3.0, 4.0)]);
        let bound: Vec<Vec<u32>> = (0..4).map(|g| grid.interval(&shards, g, 1000.0).unwrap().1).collect();
        assert_eq!(bound, [vec![], vec![], vec![0], vec![]]);
        assert!(grid.late_note(&shards, 4).is_some_and(|n| n.starts_with("shard 0 ")));
        let own = shards[0].intervals.as_ref().unwrap();
        assert_eq!(
            (0..4).map(|g| grid.covering(0, own, g)).collect::<Vec<_>>(),
            [Some(0), Some(1), Some(1), Some(3)]
        );
    }

    #[test]
    fn a_request_counts_in_the_intervals_it_reached_in_time() {
        let w = Window {
            start_s: 10.0,
            end_s: 20.0,
        };
        let cases = [
            ("inside", 12.0, 13.0, true),
            ("sent before, ended inside", 8.0, 11.0, true),
            ("sent inside, ended within the wait", 19.0, 24.0, true),
            ("sent inside, ended past the wait", 19.0, 26.0, false),
            ("spans it, ended within the wait", 5.0, 22.0, true),
            ("ended before", 5.0, 9.9, false),
            ("sent at its end", 20.0, 21.0, false),
        ];
        for (name, began, end, yes) in cases {
            assert_eq!(counts_in(w, began, end, 5.0), yes, "{name}");
        }
    }
}
