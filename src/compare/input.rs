//! The runs given to `compare`: a results folder (summary.json, and requests.jsonl when there)
//! or a summary file (with the requests.jsonl beside it, when there). Repetitions of a step
//! (`--repeat`) are one step here: their figures averaged, their records pooled.

use super::figures::Figure;
use super::model::RunLabel;
use super::samples::{read_into, same_point, StepSamples};
use crate::cli::config::UsageError;
use crate::i18n::{tr, Msg};
use crate::load::LoadPoint;
use crate::metrics::StepStats;
use crate::report::summary::Summary;
use crate::workload::TestKind;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A (test, load point) of one run, with its repetitions.
#[derive(Debug)]
pub struct StepGroup {
    pub test: TestKind,
    pub load: LoadPoint,
    /// Each repetition's step as `summary.json` wrote it.
    pub steps: Vec<Value>,
    /// The first repetition's figures, with the throughputs averaged over the repetitions (for
    /// the knee).
    pub stats: StepStats,
}

impl StepGroup {
    /// The figure's value: the mean over the repetitions that have it.
    pub fn value(&self, figure: Figure) -> Option<f64> {
        let values: Vec<f64> = self.steps.iter().filter_map(|s| figure.step_value(s)).collect();
        (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
    }
}

/// One run, read.
#[derive(Debug)]
pub struct LoadedRun {
    pub label: RunLabel,
    pub summary: Summary,
    pub groups: Vec<StepGroup>,
    /// One per group, when the run has requests.jsonl.
    pub samples: Option<Vec<StepSamples>>,
}

/// Where a run's files are.
fn locate(path: &Path) -> Result<(PathBuf, Option<PathBuf>), UsageError> {
    let unreadable = |why: String| UsageError(tr(Msg::CompareUnreadable, &[("path", &path.display()), ("why", &why)]));
    if path.is_dir() {
        let summary = path.join("summary.json");
        if !summary.is_file() {
            return Err(unreadable(tr(Msg::CompareNoSummary, &[])));
        }
        let records = path.join("requests.jsonl");
        return Ok((summary, records.is_file().then_some(records)));
    }
    if path.is_file() {
        let records = path.parent().map(|p| p.join("requests.jsonl")).filter(|p| p.is_file());
        return Ok((path.to_path_buf(), records));
    }
    Err(unreadable(tr(Msg::CompareNoSuchPath, &[])))
}

/// The default label: the results folder's name.
fn default_label(path: &Path) -> String {
    let folder = if path.is_dir() { Some(path) } else { path.parent() };
    folder
        .and_then(|f| std::fs::canonicalize(f).ok())
        .and_then(|f| f.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| path.display().to_string())
}

pub fn load(path: &Path, label: Option<String>) -> Result<LoadedRun, UsageError> {
    let unreadable = |why: String| UsageError(tr(Msg::CompareUnreadable, &[("path", &path.display()), ("why", &why)]));
    let (summary_path, records) = locate(path)?;
    let bytes = std::fs::read(&summary_path).map_err(|e| unreadable(e.to_string()))?;
    let raw: Value = serde_json::from_slice(&bytes).map_err(|e| unreadable(e.to_string()))?;
    let summary: Summary = serde_json::from_value(raw.clone()).map_err(|e| unreadable(e.to_string()))?;
    let raw_steps = raw.get("steps").and_then(Value::as_array).cloned().unwrap_or_default();
    let groups = group_steps(&summary.steps, raw_steps);
    let samples = match records {
        Some(records) => {
            let mut samples: Vec<StepSamples> = groups
                .iter()
                .map(|g| {
                    let windows = g.steps.iter().filter_map(window_of).collect();
                    StepSamples::new(g.test, g.load, windows)
                })
                .collect();
            read_into(&records, &mut samples).map_err(unreadable)?;
            Some(samples)
        }
        None => None,
    };
    Ok(LoadedRun {
        label: RunLabel {
            label: label.unwrap_or_else(|| default_label(path)),
            path: path.display().to_string(),
        },
        summary,
        groups,
        samples,
    })
}

fn window_of(step: &Value) -> Option<crate::metrics::step::Window> {
    serde_json::from_value(step.get("window")?.clone()).ok()
}

/// Steps grouped by (test, load point), in the order they first appear.
fn group_steps(steps: &[StepStats], raw: Vec<Value>) -> Vec<StepGroup> {
    let mut groups: Vec<StepGroup> = Vec::new();
    for (stats, value) in steps.iter().zip(raw) {
        match groups
            .iter_mut()
            .find(|g| g.test == stats.test && same_point(g.load, stats.load))
        {
            Some(group) => group.steps.push(value),
            None => groups.push(StepGroup {
                test: stats.test,
                load: stats.load,
                steps: vec![value],
                stats: stats.clone(),
            }),
        }
    }
    for group in &mut groups {
        if group.steps.len() > 1 {
            use super::figures::Flow;
            let mean = |f: Flow| group.value(Figure::Throughput(f)).unwrap_or(0.0);
            let (output, prompt, requests) = (mean(Flow::OutputTokens), mean(Flow::PromptTokens), mean(Flow::Requests));
            group.stats.output_throughput_tps = output;
            group.stats.prompt_throughput_tps = prompt;
            group.stats.request_throughput_rps = requests;
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repetitions_are_one_step_with_mean_figures() {
        let step = |c: u32, tps: f64, repeat: u32| {
            let mut v = serde_json::to_value(StepStats::default()).unwrap();
            v["load"] = serde_json::json!({"kind": "concurrency", "value": c});
            v["output_throughput_tps"] = serde_json::json!(tps);
            v["repeat"] = serde_json::json!(repeat);
            v
        };
        let raw = vec![
            step(1, 100.0, 1),
            step(2, 180.0, 1),
            step(1, 110.0, 2),
            step(2, 200.0, 2),
        ];
        let stats: Vec<StepStats> = raw.iter().map(|v| serde_json::from_value(v.clone()).unwrap()).collect();
        let groups = group_steps(&stats, raw);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].steps.len(), 2);
        let tps = super::super::figures::Figure::parse("output_throughput_tps").unwrap();
        assert_eq!(groups[0].value(tps), Some(105.0));
        assert_eq!(groups[1].stats.output_throughput_tps, 190.0);
    }
}
