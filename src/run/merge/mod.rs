//! `llm-bench merge DIR… --out DIR`: one summary from the results folders of a distributed run's
//! shards (`--shard I/N`), exactly as if one process had recorded every request.
//!
//! The folders are checked first ([`check`]: one run id, one shard count, each shard once, the
//! same configuration and steps). Then the shards' requests.jsonl files are read together, as
//! one stream in end order ([`stream`]), through one set of step accumulators ([`StepsByKey`],
//! as `llm-bench report` does), each record moved onto a common clock: the earliest shard's run
//! start is zero, a shard's records are shifted by its `run_start_unix_s` − the earliest. A
//! timed step is measured over the union of its shards' windows (shifted), so percentiles,
//! totals and throughputs are those of all requests together. A stress run's intervals are
//! merged as the stream goes ([`stress`]). Requests in flight are summed on a dense timeline of
//! [`IN_FLIGHT_BUCKET_S`] buckets.
//!
//! Nothing keeps the records. Memory: per shard one record, one read buffer and its summary
//! (without the monitor's series; its stress intervals cut to their windows); per step its
//! accumulator and 4 bytes per 10 ms of its in-flight timeline; a stress run's few open
//! intervals and its merged intervals' figures (the output). So it stays flat whatever the
//! files' size (docs/metrics.md, "Merging shards").

mod check;
mod histograms;
mod stream;
mod stress;

use super::rebuild::{saved_step, SavedSettings, StepKey, StepsByKey};
use crate::cli::config::UsageError;
use crate::i18n::{tr, Msg};
use crate::metrics::{advice, repeat, StepAccumulator, StepStats, Window};
use crate::report::summary::{now_rfc3339, MonitorReport, Summary};
use crate::report::RecordWriter;
use check::{check_shards, join, read_shard, ShardInput};
pub use histograms::{write_histogram_lines, HistogramFile, HistogramLine};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};
pub use stream::IN_FLIGHT_BUCKET_S;
use stream::{InFlight, InFlightCounts, ShardRecords};
use stress::IntervalMerger;

#[derive(Debug, Clone)]
pub struct MergeOptions {
    pub dirs: Vec<PathBuf>,
    pub out: PathBuf,
    /// Merge the shards there are when some are missing.
    pub allow_partial: bool,
}

/// One merged shard, as `summary.json` → `shards` lists it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShardReport {
    pub index: u32,
    pub dir: String,
    pub run_start_unix_s: f64,
    /// This shard's run start after the earliest shard's.
    pub start_skew_ms: f64,
    /// The shard's clock estimate (summary.json → `clock`): the server's clock − the shard's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_offset_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_uncertainty_ms: Option<f64>,
    pub steps: Vec<ShardStep>,
}

/// A shard's own figures of one step (from its summary.json).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShardStep {
    pub requests_ok: u64,
    pub requests_failed: u64,
    pub output_throughput_tps: f64,
    pub client_bound: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_lateness_ms: Option<f64>,
}

/// `summary.json` → `merged`: how the merge went.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MergeReport {
    pub shards_expected: u32,
    pub shards_merged: u32,
    /// Indexes of the shards not merged (`--allow-partial`).
    pub missing: Vec<u32>,
    pub partial: bool,
    /// The largest, over the steps, of the shards' latest step start − earliest (common clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_spread_ms: Option<f64>,
    /// The largest − the smallest of the shards' clock offsets (two shards with one at least).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_offset_spread_ms: Option<f64>,
    /// The largest of those shards' clock uncertainties.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_uncertainty_ms: Option<f64>,
    /// How long the merge took.
    pub merge_s: f64,
}

/// What a merge wrote, for its closing lines.
pub struct Merged {
    pub summary: Summary,
    pub partial_line: Option<String>,
}

pub fn merge(options: &MergeOptions) -> Result<Merged, UsageError> {
    let began = std::time::Instant::now();
    let mut shards = options
        .dirs
        .iter()
        .map(|d| read_shard(d))
        .collect::<Result<Vec<_>, _>>()?;
    shards.sort_by_key(|s| s.index);
    let missing = check_shards(&shards, options.allow_partial)?;
    check_out(&options.out, &shards)?;
    std::fs::create_dir_all(&options.out).map_err(|e| {
        UsageError(tr(
            Msg::MergeCannotCreate,
            &[("dir", &options.out.display()), ("error", &e)],
        ))
    })?;
    let earliest = shards.iter().map(|s| s.start_unix_s).fold(f64::INFINITY, f64::min);
    let first = &shards[0].summary;
    let saved = SavedSettings::from(Some(first));
    let mut intervals = IntervalMerger::plan(&shards, earliest, &saved)?;
    let mut file = HistogramFile::atomic(&options.out).map_err(UsageError)?;
    let mut records = RecordWriter::create(&options.out.join("requests.jsonl")).map_err(UsageError)?;
    let streamed = stream_records(&shards, earliest, &saved, intervals.as_mut(), &mut file, &mut records)?;
    if let Some(problem) = records.flush() {
        return Err(UsageError(problem));
    }
    let counts: Vec<InFlightCounts> = streamed.in_flight.into_iter().map(InFlight::into_counts).collect();
    let steps = &streamed.steps;
    let mut stats = steps.stats(Some(first));
    for (i, step) in stats.iter_mut().enumerate() {
        step.max_in_flight = counts.get(i).map_or(0, InFlightCounts::peak);
        fill_from_shards(step, &steps.accumulators[i], &shards);
    }
    advice::fill_scaling_efficiency(&mut stats);
    let partial_line = (!missing.is_empty()).then(|| partial_note(&missing, shards[0].count));
    let mut summary = merged_summary(&shards, stats, earliest, &saved);
    summary.notes.push(merged_note(&shards, streamed.records, streamed.bad));
    summary.notes.extend(partial_line.clone());
    if let Some(intervals) = intervals {
        let peak = |key: StepKey, w: Window| {
            let i = steps.keys.iter().position(|k| *k == key);
            i.and_then(|i| counts.get(i))
                .map_or(0, |c| c.peak_between(w.start_s, w.end_s))
        };
        let (report, notes) = intervals.finish(&mut file, peak).map_err(UsageError)?;
        add_stress(&mut summary, report, notes);
    }
    let clocks = clock_spread(&shards);
    summary.notes.extend(clocks.and_then(clock_note));
    summary.merged = Some(MergeReport {
        shards_expected: shards[0].count,
        shards_merged: shards.len() as u32,
        partial: !missing.is_empty(),
        missing,
        start_spread_ms: start_spread_ms(&shards, earliest),
        clock_offset_spread_ms: clocks.map(|c| c.0),
        clock_uncertainty_ms: clocks.map(|c| c.1),
        merge_s: began.elapsed().as_secs_f64(),
    });
    summary.write(&options.out).map_err(UsageError)?;
    for (key, acc) in steps.keys.iter().zip(&steps.accumulators) {
        file.write(&HistogramLine::of(*key, acc)).map_err(UsageError)?;
    }
    file.finish().map_err(UsageError)?;
    Ok(Merged { summary, partial_line })
}

/// What streaming the records gave.
struct Streamed {
    steps: StepsByKey,
    /// Per step (in `steps`' order), its summed in-flight timeline.
    in_flight: Vec<InFlight>,
    records: u64,
    bad: u64,
}

/// Every shard's records, read together in end order through the steps' accumulators, the
/// in-flight timelines and a stress run's intervals (which write their histograms to `file`
/// as they close).
fn stream_records(
    shards: &[ShardInput],
    earliest: f64,
    saved: &SavedSettings,
    mut intervals: Option<&mut IntervalMerger>,
    file: &mut HistogramFile,
    out: &mut RecordWriter,
) -> Result<Streamed, UsageError> {
    let windows = union_windows(shards, earliest);
    let window_of = |key: StepKey| windows.iter().find(|(k, _)| *k == key).map(|(_, w)| *w);
    let mut steps = StepsByKey::default();
    // The first shard's order, whichever shard's record comes first.
    for s in &shards[0].summary.steps {
        let key = (s.load, s.test, s.repeat);
        steps.register(key, window_of(key), saved);
    }
    let files = shards
        .iter()
        .map(|s| (s.dir.join("requests.jsonl"), s.start_unix_s - earliest));
    let mut input = ShardRecords::open(files)?;
    let mut in_flight: Vec<InFlight> = Vec::new();
    while let Some((_, rec)) = input.next()? {
        let i = steps.add(&rec, window_of, saved);
        if in_flight.len() <= i {
            in_flight.resize_with(i + 1, InFlight::default);
        }
        in_flight[i].add(rec.start_s, rec.end_s());
        if let Some(intervals) = intervals.as_deref_mut() {
            intervals.add(&rec, file).map_err(UsageError)?;
        }
        if let Some(problem) = out.write(&rec) {
            return Err(UsageError(problem));
        }
    }
    let (records, bad) = input.counts();
    Ok(Streamed {
        steps,
        in_flight,
        records,
        bad,
    })
}

/// A stress run's merged intervals and drift, and what the summary says of them.
fn add_stress(summary: &mut Summary, report: crate::report::summary::StressReport, notes: Vec<String>) {
    summary.client_bound |= report.intervals.iter().flat_map(|i| &i.tests).any(|s| s.client_bound);
    summary.recommendations.extend(report.drift.iter().cloned());
    summary.notes.extend(notes);
    summary.stress = Some(report);
}

/// Each timed step's window on the common clock: the union of its shards' windows.
fn union_windows(shards: &[ShardInput], earliest: f64) -> Vec<(StepKey, Window)> {
    let mut windows: Vec<(StepKey, Window)> = Vec::new();
    for shard in shards {
        let shift = shard.start_unix_s - earliest;
        for step in &shard.summary.steps {
            let Some(w) = step.window else { continue };
            let (start_s, end_s) = (w.start_s + shift, w.end_s + shift);
            let key = (step.load, step.test, step.repeat);
            match windows.iter_mut().find(|(k, _)| *k == key) {
                Some((_, u)) => {
                    u.start_s = u.start_s.min(start_s);
                    u.end_s = u.end_s.max(end_s);
                }
                None => windows.push((key, Window { start_s, end_s })),
            }
        }
    }
    windows
}

/// What the records do not say, from the shards' summaries: client-bound shards, the start's
/// lateness, the server's figures (the whole run's, checked against the merged tokens).
fn fill_from_shards(step: &mut StepStats, acc: &StepAccumulator, shards: &[ShardInput]) {
    let key = (step.load, step.test, step.repeat);
    fn of(s: &ShardInput, key: StepKey) -> Option<&StepStats> {
        saved_step(Some(&s.summary), key)
    }
    step.client_bound_shards = shards
        .iter()
        .filter(|s| of(s, key).is_some_and(|st| st.client_bound))
        .map(|s| s.index)
        .collect();
    step.client_bound = !step.client_bound_shards.is_empty();
    step.start_lateness_ms = shards
        .iter()
        .filter_map(|s| of(s, key).and_then(|st| st.start_lateness_ms))
        .reduce(f64::max);
    let Some(first) = of(&shards[0], key) else { return };
    step.scheduled_start = first.scheduled_start.clone();
    let served = acc.served();
    // The server and the GPUs served every shard: their figures against the whole run's.
    step.gpu = first.gpu.clone().map(|mut g| {
        g.relate(served.output_tokens, served.requests);
        g
    });
    step.server_metrics = first.server_metrics.clone();
    if let Some(w) = step.server_metrics.as_mut() {
        w.check_tokens(served.prompt_tokens, served.cached_prompt_tokens, served.output_tokens);
    }
}

/// The merged summary: the first shard's, with the merged steps and the shards' list.
fn merged_summary(shards: &[ShardInput], steps: Vec<StepStats>, earliest: f64, saved: &SavedSettings) -> Summary {
    let first = &shards[0].summary;
    let mut summary = Summary {
        status: if shards.iter().all(|s| s.summary.status == "complete") {
            "complete".into()
        } else {
            shards
                .iter()
                .find(|s| s.summary.status != "complete")
                .map_or_else(String::new, |s| s.summary.status.clone())
        },
        run_id: Some(shards[0].run_id.clone()),
        started_at: first.started_at.clone(),
        run_start_unix_s: Some(earliest),
        finished_at: Some(now_rfc3339()),
        model: first.model.clone(),
        config: merged_config(&first.config),
        environment: first.environment.clone(),
        monitor: MonitorReport::default(),
        ..Summary::default()
    };
    summary.repeats = repeat::repeat_stats(&steps);
    summary.recommendations = advice::recommend(&repeat::per_point(&steps), saved.min_tps, saved.slo.as_ref());
    summary.client_bound = steps.iter().any(|s| s.client_bound);
    summary.steps = steps;
    summary.shards = shards.iter().map(|s| shard_report(s, earliest)).collect();
    summary
}

/// The first shard's configuration without its shard: `distributed.shard` null, `load.shard`
/// absent (as an unsharded run writes them).
fn merged_config(config: &Value) -> Value {
    let mut c = config.clone();
    if let Some(m) = c.get_mut("distributed").and_then(Value::as_object_mut) {
        if m.contains_key("shard") {
            m.insert("shard".into(), Value::Null);
        }
    }
    if let Some(m) = c.get_mut("load").and_then(Value::as_object_mut) {
        m.remove("shard");
    }
    c
}

fn shard_report(s: &ShardInput, earliest: f64) -> ShardReport {
    ShardReport {
        index: s.index,
        dir: s.dir.display().to_string(),
        run_start_unix_s: s.start_unix_s,
        start_skew_ms: (s.start_unix_s - earliest) * 1000.0,
        clock_offset_ms: s.summary.clock.as_ref().and_then(|c| c.offset_ms),
        clock_uncertainty_ms: s.summary.clock.as_ref().and_then(|c| c.uncertainty_ms),
        steps: s
            .summary
            .steps
            .iter()
            .map(|st| ShardStep {
                requests_ok: st.requests_ok,
                requests_failed: st.requests_failed,
                output_throughput_tps: st.output_throughput_tps,
                client_bound: st.client_bound,
                start_lateness_ms: st.start_lateness_ms,
            })
            .collect(),
    }
}

/// Per step, the shards' latest start − earliest; the largest over the steps. A step's start is
/// its window's on the common clock; a step without a window (it ended by a request count) that
/// was released at a `--start-at` slot starts at the slot + its release lateness, so there the
/// spread is the latest lateness − the earliest.
fn start_spread_ms(shards: &[ShardInput], earliest: f64) -> Option<f64> {
    let steps = shards[0].summary.steps.len();
    let spread = |starts: Vec<f64>| {
        let lo = starts.iter().copied().reduce(f64::min)?;
        let hi = starts.iter().copied().reduce(f64::max)?;
        Some(hi - lo)
    };
    let starts = |i: usize, start: &dyn Fn(&ShardInput, &StepStats) -> Option<f64>| -> Option<Vec<f64>> {
        shards.iter().map(|s| start(s, s.summary.steps.get(i)?)).collect()
    };
    (0..steps)
        .filter_map(|i| {
            let windows = starts(i, &|s, st| {
                Some((st.window?.start_s + s.start_unix_s - earliest) * 1000.0)
            });
            let released = || starts(i, &|_, st| st.scheduled_start.as_ref().and(st.start_lateness_ms));
            spread(windows.or_else(released)?)
        })
        .reduce(f64::max)
}

/// (largest − smallest clock offset, largest uncertainty) over the shards with an estimate,
/// when two have one.
fn clock_spread(shards: &[ShardInput]) -> Option<(f64, f64)> {
    let clocks: Vec<(f64, f64)> = shards
        .iter()
        .filter_map(|s| {
            let c = s.summary.clock.as_ref()?;
            Some((c.offset_ms?, c.uncertainty_ms?))
        })
        .collect();
    if clocks.len() < 2 {
        return None;
    }
    let lo = clocks.iter().map(|c| c.0).fold(f64::INFINITY, f64::min);
    let hi = clocks.iter().map(|c| c.0).fold(f64::NEG_INFINITY, f64::max);
    let within = clocks.iter().map(|c| c.1).fold(0.0, f64::max);
    Some((hi - lo, within))
}

/// A spread beyond what the estimates' uncertainty explains, plus 10 ms: the shards' clocks
/// disagree, and their steps started that far apart whatever their lateness says.
fn clock_note((spread, within): (f64, f64)) -> Option<String> {
    (spread > 2.0 * within + CLOCK_SPREAD_MS).then(|| {
        tr(
            Msg::MergeClocksDisagree,
            &[("spread", &format!("{spread:.0}")), ("within", &format!("{within:.0}"))],
        )
    })
}

/// The shards' clocks may disagree this much beyond their estimates' uncertainty unsaid.
const CLOCK_SPREAD_MS: f64 = 10.0;

/// `--out` must not be one of the shards' folders: its requests.jsonl is written while theirs
/// are read.
fn check_out(out: &Path, shards: &[ShardInput]) -> Result<(), UsageError> {
    let out = out.canonicalize().ok();
    match shards
        .iter()
        .find(|s| out.is_some() && s.dir.canonicalize().ok() == out)
    {
        Some(s) => Err(UsageError(tr(Msg::MergeOutIsAShard, &[("dir", &s.dir.display())]))),
        None => Ok(()),
    }
}

fn merged_note(shards: &[ShardInput], records: u64, bad: u64) -> String {
    let args: [(&str, &dyn std::fmt::Display); 4] = [
        ("shards", &shards.len()),
        ("run_id", &shards[0].run_id),
        ("n", &records),
        ("bad", &bad),
    ];
    tr(if bad > 0 { Msg::MergeSkipped } else { Msg::MergeMerged }, &args)
}

fn partial_note(missing: &[u32], count: u32) -> String {
    tr(Msg::MergePartial, &[("missing", &join(missing)), ("count", &count)])
}

pub fn print(merged: &Merged, out: &Path, reporter: &crate::report::Reporter) {
    if let Some(line) = &merged.partial_line {
        reporter.line(line);
    }
    for line in crate::report::format::table(&merged.summary.steps) {
        reporter.line(&line);
    }
    for r in &merged.summary.recommendations {
        reporter.line(&format!("- {r}"));
    }
    for n in &merged.summary.notes {
        reporter.line(&tr(Msg::ReportNote, &[("note", n)]));
    }
    if let Some(m) = &merged.summary.merged {
        let ms = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.1}"));
        reporter.line(&tr(
            Msg::MergeSpreads,
            &[
                ("start", &ms(m.start_spread_ms)),
                ("clock", &ms(m.clock_offset_spread_ms)),
                ("within", &ms(m.clock_uncertainty_ms)),
                ("secs", &format!("{:.2}", m.merge_s)),
            ],
        ));
    }
    reporter.line(&tr(Msg::MergeWritten, &[("dir", &out.display())]));
}
