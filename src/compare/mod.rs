//! `llm-bench compare RUN_A RUN_B …`: matches the steps of several runs by test and load
//! point, judges each headline figure better, worse or within noise from the per-request
//! records, checks `--fail-if` thresholds, and writes compare.json and compare.html.
//!
//! Run 0 is the baseline. Reading ([`input`]) → per-request samples ([`samples`]) → bootstrap
//! ([`stats`]) → a [`Comparison`] ([`build`]) → console lines ([`console`]) and files.

pub mod build;
pub mod console;
pub mod figures;
pub mod input;
pub mod model;
pub mod samples;
pub mod stats;
pub mod threshold;

pub use model::{Comparison, FigureRow, RunLabel, StepMatch, Verdict};

use crate::cli::config::UsageError;
use crate::i18n::{tr, Msg};
use crate::report::summary::Summary;
use std::path::{Path, PathBuf};

/// What `llm-bench compare` was asked (the engine side of the clap arguments).
#[derive(Debug, Clone)]
pub struct CompareSpec {
    pub runs: Vec<PathBuf>,
    /// `--label`, in the order of the runs (fewer than the runs: the rest named by folder).
    pub labels: Vec<String>,
    /// Where compare.html and compare.json go.
    pub out: PathBuf,
    /// `--fail-if` expressions as typed.
    pub fail_if: Vec<String>,
}

/// Compares the runs, prints the comparison, writes compare.json and compare.html. Returns the
/// comparison: its `breaches` decide the exit code. Unreadable inputs and bad expressions are
/// usage errors (exit 2); files that cannot be written are other errors (exit 1).
pub fn run(spec: &CompareSpec) -> anyhow::Result<Comparison> {
    let thresholds = spec
        .fail_if
        .iter()
        .map(|e| threshold::Threshold::parse(e).map_err(UsageError))
        .collect::<Result<Vec<_>, _>>()?;
    if spec.labels.len() > spec.runs.len() {
        return Err(UsageError(tr(
            Msg::CompareTooManyLabels,
            &[("labels", &spec.labels.len()), ("runs", &spec.runs.len())],
        ))
        .into());
    }
    let mut runs = Vec::with_capacity(spec.runs.len());
    for (i, path) in spec.runs.iter().enumerate() {
        runs.push(input::load(path, spec.labels.get(i).cloned())?);
    }
    build::disambiguate_labels(&mut runs);
    let comparison = build::compare(&runs, &thresholds);
    for line in console::lines(&runs, &comparison, &thresholds) {
        say(&line);
    }
    let (json, html) = (spec.out.join("compare.json"), spec.out.join("compare.html"));
    std::fs::create_dir_all(&spec.out).map_err(|e| cannot_write(&spec.out, &e.to_string()))?;
    let text = serde_json::to_vec_pretty(&comparison).map_err(|e| cannot_write(&json, &e.to_string()))?;
    std::fs::write(&json, text).map_err(|e| cannot_write(&json, &e.to_string()))?;
    let labelled: Vec<(RunLabel, Summary)> = runs.into_iter().map(|r| (r.label, r.summary)).collect();
    write_html(&html, &labelled, &comparison).map_err(|e| cannot_write(&html, &e))?;
    say(&tr(
        Msg::CompareWritten,
        &[("json", &json.display()), ("html", &html.display())],
    ));
    Ok(comparison)
}

/// A line on standard output; a closed pipe (`| head`) is not an error of the comparison.
fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

fn cannot_write(path: &Path, why: &str) -> anyhow::Error {
    anyhow::anyhow!(tr(Msg::CompareCannotWrite, &[("path", &path.display()), ("why", &why)]))
}

/// Writes compare.html: the HTML report's style, every run's curves overlaid.
fn write_html(out: &Path, runs: &[(RunLabel, Summary)], cmp: &Comparison) -> Result<(), String> {
    let page = crate::report::html::render_compare(runs, cmp, crate::i18n::lang());
    std::fs::write(out, page).map_err(|e| e.to_string())
}
