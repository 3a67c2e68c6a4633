//! `llm-bench report DIR`: rebuilds summary.json from requests.jsonl alone, e.g. after a crash
//! or `kill -9`. Records are grouped by (load point, test, repetition) in the order they first appear; a
//! timed step is measured over the window its summary recorded (or, without one, as a batch).
//!
//! The records are streamed: each line is read into one reused buffer, parsed, added to its
//! step's accumulator (histograms and sums, never the records) and, with `requests.csv`,
//! written as a row; then dropped. Memory stays flat whatever the file's size
//! (`scripts/bench-report.sh` measures it).

use crate::cli::config::UsageError;
use crate::client::RequestRecord;
use crate::i18n::{tr, Msg};
use crate::load::LoadPoint;
use crate::metrics::slo::Slo;
use crate::metrics::step::SloJudge;
use crate::metrics::{advice, repeat, StepAccumulator, StepStats};
use crate::report::csv::RequestsCsvFile;
use crate::report::export::Export;
use crate::report::jsonl::RecordReader;
use crate::report::summary::{now_rfc3339, Summary};
use crate::report::{format, Reporter};
use crate::workload::TestKind;
use std::path::Path;

/// What `llm-bench report` writes besides summary.json.
#[derive(Debug, Clone, Default)]
pub struct RebuildOptions {
    /// Write requests.csv (also done when the folder already had one).
    pub csv_requests: bool,
    /// `--export FORMAT FILE`.
    pub export: Option<Export>,
}

/// What a rebuild wrote, for its closing lines.
pub struct Rebuilt {
    pub summary: Summary,
    pub csv_rows: Option<u64>,
    pub exported: Option<(Export, usize)>,
}

pub fn rebuild(dir: &Path, options: &RebuildOptions) -> Result<Rebuilt, UsageError> {
    let path = dir.join("requests.jsonl");
    if !path.is_file() {
        return Err(UsageError(tr(Msg::ReportNoRecords, &[("dir", &dir.display())])));
    }
    let mut reader = RecordReader::open(&path).map_err(UsageError)?;
    let previous: Option<Summary> = std::fs::read(dir.join("summary.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    let saved = SavedSettings::from(previous.as_ref());
    let mut csv = if options.csv_requests || dir.join("requests.csv").is_file() {
        Some(RequestsCsvFile::create(dir).map_err(UsageError)?)
    } else {
        None
    };
    let mut steps = StepsByKey::default();
    while let Some(rec) = reader.next_record().map_err(UsageError)? {
        steps.add(
            &rec,
            |key| saved_step(previous.as_ref(), key).and_then(|s| s.window),
            &saved,
        );
        if let Some(csv) = csv.as_mut() {
            csv.write(&rec).map_err(UsageError)?;
        }
    }
    let csv_rows = csv.map(RequestsCsvFile::finish).transpose().map_err(UsageError)?;
    let mut steps = steps.stats(previous.as_ref());
    advice::fill_scaling_efficiency(&mut steps);
    let mut summary = previous.unwrap_or_default();
    summary.repeats = repeat::repeat_stats(&steps);
    summary.recommendations = advice::recommend(&repeat::per_point(&steps), saved.min_tps, saved.slo.as_ref());
    if let Some(capacity) = &summary.capacity {
        summary.recommendations.insert(0, capacity.answer.clone());
    }
    summary.steps = steps;
    summary.status = "rebuilt".into();
    summary.finished_at = Some(now_rfc3339());
    summary.notes.push(rebuilt_note(reader.records, reader.bad_lines));
    summary.write(dir).map_err(UsageError)?;
    let exported = match &options.export {
        Some(export) => Some((export.clone(), export.write(&summary).map_err(UsageError)?)),
        None => None,
    };
    Ok(Rebuilt {
        summary,
        csv_rows,
        exported,
    })
}

fn rebuilt_note(records: u64, bad_lines: u64) -> String {
    let n = records.to_string();
    if bad_lines > 0 {
        tr(Msg::ReportRebuiltSkipped, &[("n", &n), ("bad", &bad_lines.to_string())])
    } else {
        tr(Msg::ReportRebuilt, &[("n", &n)])
    }
}

/// What the saved summary says about how steps were judged.
pub(crate) struct SavedSettings {
    pub(crate) slo: Option<Slo>,
    pub(crate) judge: Option<SloJudge>,
    exact_output: bool,
    pub(crate) min_tps: Option<f64>,
}

impl SavedSettings {
    pub(crate) fn from(previous: Option<&Summary>) -> Self {
        let config = |key: &str| previous.and_then(|p| p.config.get(key));
        let slo = config("slo")
            .and_then(|v| v.get("spec"))
            .and_then(|v| v.as_str())
            .and_then(|spec| Slo::parse(spec).ok());
        let from_send = config("slo_from_send").and_then(|v| v.as_bool()).unwrap_or(false);
        let judge = slo.as_ref().map(|slo| SloJudge {
            slo: std::sync::Arc::new(slo.clone()),
            from_send,
        });
        Self {
            slo,
            judge,
            exact_output: config("ignore_eos").and_then(|v| v.as_bool()).unwrap_or(false),
            min_tps: config("min_tps").and_then(|v| v.as_f64()),
        }
    }
}

/// What a step is keyed by: its load point, test and repetition (`--repeat`: repetitions of
/// one point are steps of their own).
pub(crate) type StepKey = (LoadPoint, TestKind, Option<u32>);

/// The saved summary's step of a key.
pub(crate) fn saved_step(previous: Option<&Summary>, key: StepKey) -> Option<&StepStats> {
    previous?.steps.iter().find(|s| (s.load, s.test, s.repeat) == key)
}

/// One accumulator per step key, in the order first seen: `llm-bench report` feeds it one
/// folder's records, `llm-bench merge` every shard's (on one clock).
#[derive(Default)]
pub(crate) struct StepsByKey {
    pub(crate) keys: Vec<StepKey>,
    pub(crate) accumulators: Vec<StepAccumulator>,
    /// The step of the last record: records of a step come together, so most lookups end here.
    last: usize,
}

impl StepsByKey {
    /// Adds a record to its step's accumulator; a new step is measured over `window_of` its key
    /// (a timed step's saved window, or `None`: a batch).
    pub(crate) fn add(
        &mut self,
        rec: &RequestRecord,
        window_of: impl Fn(StepKey) -> Option<crate::metrics::step::Window>,
        saved: &SavedSettings,
    ) -> usize {
        let key = (rec.point(), rec.test, rec.repeat);
        if self.keys.get(self.last) != Some(&key) {
            self.last = match self.keys.iter().position(|k| *k == key) {
                Some(i) => i,
                // A timed step keeps the window it was measured over, when the summary says it.
                None => self.register(key, window_of(key), saved),
            };
        }
        self.accumulators[self.last].add(rec);
        self.last
    }

    /// The step of `key`, known before its first record (`llm-bench merge` lists the steps in
    /// the first shard's order, whichever shard's record comes first): its index.
    pub(crate) fn register(
        &mut self,
        key: StepKey,
        window: Option<crate::metrics::step::Window>,
        saved: &SavedSettings,
    ) -> usize {
        if let Some(i) = self.keys.iter().position(|k| *k == key) {
            return i;
        }
        self.keys.push(key);
        self.accumulators.push(
            StepAccumulator::new(key.1, key.0)
                .with_window(window)
                .with_slo(saved.judge.clone())
                .asking_exact_output(saved.exact_output),
        );
        self.keys.len() - 1
    }

    /// The steps' figures. What is not in the records (in-flight counts, the scheduler's view)
    /// is kept from the saved summary when there is one.
    pub(crate) fn stats(&self, previous: Option<&Summary>) -> Vec<StepStats> {
        self.accumulators
            .iter()
            .zip(&self.keys)
            .map(|(acc, &key)| {
                let saved = saved_step(previous, key);
                let mut stats = acc.stats(saved.map_or(0, |s| s.max_in_flight));
                stats.repeat = key.2;
                if let Some(saved) = saved {
                    stats.saturated = saved.saturated;
                    stats.requests_unsent = saved.requests_unsent;
                    stats.scheduled_rps = saved.scheduled_rps;
                    stats.max_backlog = saved.max_backlog;
                    stats.backlog_limit = saved.backlog_limit;
                    stats.pacing_warning = saved.pacing_warning.clone();
                    keep_what_records_do_not_say(&mut stats, saved, acc);
                }
                stats
            })
            .collect()
    }
}

/// What a step's records cannot say, from its saved summary: the client's health and the
/// machine's figures over its window, the server's and the GPUs' (the token check re-run
/// against the rebuilt totals), and its slot on a `--start-at` schedule.
fn keep_what_records_do_not_say(stats: &mut StepStats, saved: &StepStats, acc: &StepAccumulator) {
    stats.client_bound = saved.client_bound;
    stats.client_bound_shards = saved.client_bound_shards.clone();
    stats.client = saved.client.clone();
    stats.system = saved.system.clone();
    stats.scheduled_start = saved.scheduled_start.clone();
    stats.start_lateness_ms = saved.start_lateness_ms;
    stats.gpu = saved.gpu.clone();
    stats.server_metrics = saved.server_metrics.clone();
    if let Some(w) = stats.server_metrics.as_mut() {
        let served = acc.served();
        w.check_tokens(served.prompt_tokens, served.cached_prompt_tokens, served.output_tokens);
    }
}

pub fn print(rebuilt: &Rebuilt, reporter: &Reporter) {
    let summary = &rebuilt.summary;
    for line in format::table(&summary.steps) {
        reporter.line(&line);
    }
    for r in &summary.recommendations {
        reporter.line(&format!("- {r}"));
    }
    for n in &summary.notes {
        reporter.line(&tr(Msg::ReportNote, &[("note", n)]));
    }
    if let Some(rows) = rebuilt.csv_rows {
        reporter.line(&tr(Msg::RequestsCsvWritten, &[("rows", &rows.to_string())]));
    }
    if let Some((export, results)) = &rebuilt.exported {
        reporter.line(&export_line(export, *results));
    }
}

/// "vLLM results: FILE (N results, one JSON object a line)".
pub fn export_line(export: &Export, results: usize) -> String {
    tr(
        Msg::ExportWritten,
        &[
            ("format", &export.format.name()),
            ("file", &export.path.display()),
            ("n", &results.to_string()),
        ],
    )
}
