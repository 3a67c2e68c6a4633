//! `llm-bench merge DIR… --out DIR`: one summary from the results folders of a distributed run's
//! shards (`--shard I/N`), exactly as if one process had recorded every request.
//!
//! The folders are checked first (one run id, one shard count, each shard once, the same
//! configuration and steps). Then every shard's requests.jsonl is streamed through one set of
//! step accumulators ([`StepsByKey`], as `llm-bench report` does), each record moved onto a
//! common clock: the earliest shard's run start is zero, a shard's records are shifted by its
//! `run_start_unix_s` − the earliest. A timed step is measured over the union of its shards'
//! windows (shifted), so percentiles, totals and throughputs are those of all requests together.
//! Requests in flight are summed on a timeline of [`IN_FLIGHT_BUCKET_S`] buckets. Nothing keeps
//! the records: memory stays flat whatever the files' size (docs/metrics.md, "Merging shards").

use super::rebuild::{saved_step, SavedSettings, StepKey, StepsByKey};
use crate::cli::config::UsageError;
use crate::i18n::{tr, Msg};
use crate::metrics::{advice, repeat, LatencyHistogram, StepAccumulator, StepStats, Window};
use crate::report::jsonl::RecordReader;
use crate::report::summary::{now_rfc3339, MonitorReport, Summary};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The resolution of the summed in-flight timeline: a request counts from the 10 ms bucket of
/// its send to that of its end; starts and ends in one bucket net out.
pub const IN_FLIGHT_BUCKET_S: f64 = 0.010;

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
    /// How long the merge took.
    pub merge_s: f64,
}

/// One shard's folder and summary.
struct ShardInput {
    dir: PathBuf,
    summary: Summary,
    run_id: String,
    index: u32,
    count: u32,
    start_unix_s: f64,
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
    std::fs::create_dir_all(&options.out).map_err(|e| {
        UsageError(tr(
            Msg::MergeCannotCreate,
            &[("dir", &options.out.display()), ("error", &e)],
        ))
    })?;
    let earliest = shards.iter().map(|s| s.start_unix_s).fold(f64::INFINITY, f64::min);
    let windows = union_windows(&shards, earliest);
    let first = &shards[0].summary;
    let saved = SavedSettings::from(Some(first));
    let mut steps = StepsByKey::default();
    let mut in_flight: Vec<BTreeMap<i64, i64>> = Vec::new();
    let (mut records, mut bad) = (0, 0);
    for shard in &shards {
        let shift = shard.start_unix_s - earliest;
        let mut reader = RecordReader::open(&shard.dir.join("requests.jsonl")).map_err(UsageError)?;
        while let Some(mut rec) = reader.next_record().map_err(UsageError)? {
            rec.start_s += shift;
            if let Some(t) = rec.intended_s.as_mut() {
                *t += shift;
            }
            let window_of = |key: StepKey| windows.iter().find(|(k, _)| *k == key).map(|(_, w)| *w);
            let i = steps.add(&rec, window_of, &saved);
            if in_flight.len() <= i {
                in_flight.resize_with(i + 1, BTreeMap::new);
            }
            let bucket = |t: f64| (t / IN_FLIGHT_BUCKET_S).floor() as i64;
            *in_flight[i].entry(bucket(rec.start_s)).or_default() += 1;
            *in_flight[i].entry(bucket(rec.end_s())).or_default() -= 1;
        }
        records += reader.records;
        bad += reader.bad_lines;
    }
    let mut stats = steps.stats(Some(first));
    for (i, step) in stats.iter_mut().enumerate() {
        step.max_in_flight = in_flight.get(i).map_or(0, peak);
        fill_from_shards(step, &steps.accumulators[i], &shards);
    }
    advice::fill_scaling_efficiency(&mut stats);
    let partial_line = (!missing.is_empty()).then(|| partial_note(&missing, shards[0].count));
    let mut summary = merged_summary(&shards, stats, earliest, &saved);
    summary.notes.push(merged_note(&shards, records, bad));
    summary.notes.extend(partial_line.clone());
    summary.merged = Some(MergeReport {
        shards_expected: shards[0].count,
        shards_merged: shards.len() as u32,
        partial: !missing.is_empty(),
        missing,
        start_spread_ms: start_spread_ms(&shards, earliest),
        merge_s: began.elapsed().as_secs_f64(),
    });
    summary.write(&options.out).map_err(UsageError)?;
    write_histograms(&options.out, &steps.keys, &steps.accumulators).map_err(UsageError)?;
    Ok(Merged { summary, partial_line })
}

fn read_shard(dir: &Path) -> Result<ShardInput, UsageError> {
    let path = dir.join("summary.json");
    if !path.is_file() {
        return Err(UsageError(tr(Msg::MergeNoSummary, &[("dir", &dir.display())])));
    }
    if !dir.join("requests.jsonl").is_file() {
        return Err(UsageError(tr(Msg::MergeNoRecords, &[("dir", &dir.display())])));
    }
    let unreadable =
        |e: &dyn std::fmt::Display| UsageError(tr(Msg::MergeUnreadable, &[("dir", &dir.display()), ("error", e)]));
    let bytes = std::fs::read(&path).map_err(|e| unreadable(&e))?;
    let summary: Summary = serde_json::from_slice(&bytes).map_err(|e| unreadable(&e))?;
    let (Some(run_id), Some(shard)) = (summary.run_id.clone(), summary.shard) else {
        return Err(UsageError(tr(Msg::MergeNotShard, &[("dir", &dir.display())])));
    };
    Ok(ShardInput {
        dir: dir.to_path_buf(),
        start_unix_s: summary.run_start_unix_s.unwrap_or(0.0),
        summary,
        run_id,
        index: shard.index,
        count: shard.count,
    })
}

/// The consistency checks, each problem one line; the missing shards' indexes (allowed only
/// with `--allow-partial`).
fn check_shards(shards: &[ShardInput], allow_partial: bool) -> Result<Vec<u32>, UsageError> {
    let first = &shards[0];
    let fd = first.dir.display();
    for (i, s) in shards.iter().enumerate() {
        let dir = s.dir.display();
        if s.run_id != first.run_id {
            let args: [(&str, &dyn std::fmt::Display); 4] = [
                ("dir", &dir),
                ("id", &s.run_id),
                ("first_dir", &fd),
                ("first", &first.run_id),
            ];
            return Err(UsageError(tr(Msg::MergeRunId, &args)));
        }
        if s.count != first.count {
            let args: [(&str, &dyn std::fmt::Display); 4] = [
                ("dir", &dir),
                ("count", &s.count),
                ("first_dir", &fd),
                ("first", &first.count),
            ];
            return Err(UsageError(tr(Msg::MergeShardCount, &args)));
        }
        if i > 0 && shards[i - 1].index == s.index {
            let args: [(&str, &dyn std::fmt::Display); 3] = [
                ("index", &s.index),
                ("first_dir", &shards[i - 1].dir.display()),
                ("dir", &dir),
            ];
            return Err(UsageError(tr(Msg::MergeShardTwice, &args)));
        }
        if let Some(key) = first_difference(&comparable(&first.summary.config), &comparable(&s.summary.config), "") {
            let args: [(&str, &dyn std::fmt::Display); 3] = [("dir", &dir), ("first_dir", &fd), ("key", &key)];
            return Err(UsageError(tr(Msg::MergeConfigDiffers, &args)));
        }
        check_steps(first, s)?;
    }
    let have: BTreeSet<u32> = shards.iter().map(|s| s.index).collect();
    let missing: Vec<u32> = (0..first.count).filter(|i| !have.contains(i)).collect();
    if !missing.is_empty() && !allow_partial {
        let have = have.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
        let args: [(&str, &dyn std::fmt::Display); 4] = [
            ("missing", &join(&missing)),
            ("count", &first.count),
            ("run_id", &first.run_id),
            ("have", &have),
        ];
        return Err(UsageError(tr(Msg::MergeShardMissing, &args)));
    }
    Ok(missing)
}

fn join(indexes: &[u32]) -> String {
    indexes.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
}

/// The steps (test, load point, repetition, in order) are the same in both.
fn check_steps(first: &ShardInput, other: &ShardInput) -> Result<(), UsageError> {
    let keys =
        |s: &ShardInput| -> Vec<StepKey> { s.summary.steps.iter().map(|s| (s.load, s.test, s.repeat)).collect() };
    let (ours, theirs) = (keys(first), keys(other));
    let label = |k: Option<&StepKey>| match k {
        Some((load, test, Some(r))) => tr(Msg::MergeStepRepeat, &[("test", &test), ("load", &load), ("r", &r)]),
        Some((load, test, None)) => tr(Msg::MergeStep, &[("test", &test), ("load", &load)]),
        None => tr(Msg::MergeNoStep, &[]),
    };
    let n = (0..ours.len().max(theirs.len())).find(|&i| ours.get(i) != theirs.get(i));
    match n {
        None => Ok(()),
        Some(i) => {
            let args: [(&str, &dyn std::fmt::Display); 5] = [
                ("dir", &other.dir.display()),
                ("first_dir", &first.dir.display()),
                ("n", &(i + 1)),
                ("theirs", &label(theirs.get(i))),
                ("ours", &label(ours.get(i))),
            ];
            Err(UsageError(tr(Msg::MergeStepsDiffer, &args)))
        }
    }
}

/// The configuration without what differs between shards by design.
fn comparable(config: &Value) -> Value {
    let mut c = config.clone();
    if let Some(map) = c.as_object_mut() {
        for key in ["out_dir", "log_file", "lang"] {
            map.remove(key);
        }
        for (outer, inner) in [("distributed", "shard"), ("load", "shard")] {
            if let Some(m) = map.get_mut(outer).and_then(Value::as_object_mut) {
                m.remove(inner);
            }
        }
    }
    c
}

/// The first key (dotted, in key order) whose values differ.
fn first_difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    let here = || {
        if path.is_empty() {
            "config".to_string()
        } else {
            path.to_string()
        }
    };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match (x.get(k), y.get(k)) {
                    (Some(u), Some(v)) => first_difference(u, v, &p),
                    _ => Some(p),
                }
            })
        }
        _ if a == b => None,
        _ => Some(here()),
    }
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

/// The highest count of the summed in-flight timeline.
fn peak(deltas: &BTreeMap<i64, i64>) -> u64 {
    let mut now = 0i64;
    let mut most = 0i64;
    for d in deltas.values() {
        now += d;
        most = most.max(now);
    }
    most.max(0) as u64
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
    step.gpu = first.gpu.clone();
    step.server_metrics = first.server_metrics.clone();
    if let Some(w) = step.server_metrics.as_mut() {
        let served = acc.served();
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

/// Per step, the shards' latest window start − earliest on the common clock; the largest.
fn start_spread_ms(shards: &[ShardInput], earliest: f64) -> Option<f64> {
    let steps = shards[0].summary.steps.len();
    (0..steps)
        .filter_map(|i| {
            let starts: Vec<f64> = shards
                .iter()
                .filter_map(|s| Some(s.summary.steps.get(i)?.window?.start_s + s.start_unix_s - earliest))
                .collect();
            let lo = starts.iter().copied().reduce(f64::min)?;
            let hi = starts.iter().copied().reduce(f64::max)?;
            Some((hi - lo) * 1000.0)
        })
        .reduce(f64::max)
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

/// One line of `histograms.jsonl`: a step's latency histograms, lossless.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HistogramLine {
    pub test: crate::workload::TestKind,
    pub load: crate::load::LoadPoint,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat: Option<u32>,
    /// `hdr-buckets`: per non-empty bucket of an HDR histogram of 3 significant digits in µs,
    /// `[value_us, count]` (the bucket's highest equivalent value).
    pub format: String,
    pub significant_digits: u8,
    pub ttft: Vec<[u64; 2]>,
    pub itl: Vec<[u64; 2]>,
    pub tpot: Vec<[u64; 2]>,
    pub e2e: Vec<[u64; 2]>,
}

impl HistogramLine {
    pub fn of(key: StepKey, acc: &StepAccumulator) -> Self {
        let [ttft, itl, tpot, e2e] = acc.histograms().map(|(_, h)| h.buckets());
        Self {
            test: key.1,
            load: key.0,
            repeat: key.2,
            format: "hdr-buckets".into(),
            significant_digits: 3,
            ttft,
            itl,
            tpot,
            e2e,
        }
    }

    /// The histogram of a name (`ttft`, `itl`, `tpot`, `e2e`).
    pub fn histogram(&self, name: &str) -> Option<LatencyHistogram> {
        let buckets = match name {
            "ttft" => &self.ttft,
            "itl" => &self.itl,
            "tpot" => &self.tpot,
            "e2e" => &self.e2e,
            _ => return None,
        };
        Some(LatencyHistogram::from_buckets(buckets))
    }
}

/// Writes `histograms.jsonl` beside summary.json: one line per step.
pub fn write_histograms(dir: &Path, keys: &[StepKey], accs: &[StepAccumulator]) -> Result<(), String> {
    let lines: Vec<HistogramLine> = keys.iter().zip(accs).map(|(k, a)| HistogramLine::of(*k, a)).collect();
    write_histogram_lines(dir, &lines.iter().collect::<Vec<_>>())
}

/// Writes `histograms.jsonl` (atomically: temp file + rename, as summary.json); nothing when
/// there is no step.
pub fn write_histogram_lines(dir: &Path, lines: &[&HistogramLine]) -> Result<(), String> {
    if lines.is_empty() {
        return Ok(());
    }
    let mut text = String::new();
    for line in lines {
        let line = serde_json::to_string(line).map_err(|e| tr(Msg::SummaryUnserialisable, &[("error", &e)]))?;
        text.push_str(&line);
        text.push('\n');
    }
    let path = dir.join("histograms.jsonl");
    let tmp = dir.join(".histograms.jsonl.tmp");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| tr(Msg::CannotWrite, &[("path", &path.display()), ("error", &e)]))
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
    reporter.line(&tr(Msg::MergeWritten, &[("dir", &out.display())]));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shard_fields_do_not_count_as_differences() {
        let a = json!({"out_dir": "a", "lang": "en", "load": {"shard": {"index": 0}, "rate": 1}, "distributed": {"shard": 0, "run_id": "r"}});
        let b = json!({"out_dir": "b", "load": {"shard": {"index": 1}, "rate": 1}, "distributed": {"shard": 1, "run_id": "r"}});
        assert_eq!(first_difference(&comparable(&a), &comparable(&b), ""), None);
        let c = json!({"load": {"rate": 2}, "distributed": {"run_id": "r"}});
        assert_eq!(
            first_difference(&comparable(&a), &comparable(&c), ""),
            Some("load.rate".into())
        );
    }

    #[test]
    fn the_in_flight_peak_sums_overlaps() {
        let mut d = BTreeMap::new();
        for (s, e) in [(0, 10), (5, 20), (10, 30), (25, 40)] {
            *d.entry(s).or_insert(0) += 1;
            *d.entry(e).or_insert(0) -= 1;
        }
        assert_eq!(peak(&d), 2);
    }

    #[test]
    fn bucket_lists_give_back_the_same_histogram() {
        let mut h = LatencyHistogram::default();
        for us in [1, 17, 999, 1_234, 56_789, 1_000_001, 77_777_777] {
            h.record_us(us);
        }
        let back = LatencyHistogram::from_buckets(&h.buckets());
        assert_eq!(back.dist_ms(), h.dist_ms());
        assert_eq!(back.cdf_ms(), h.cdf_ms());
    }
}
