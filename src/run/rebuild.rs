//! `llm-bench report DIR`: rebuilds summary.json from requests.jsonl alone, e.g. after a crash
//! or `kill -9`. Records are grouped by (concurrency, test) in the order they first appear.

use crate::cli::config::UsageError;
use crate::metrics::{advice, StepAccumulator, StepStats};
use crate::report::jsonl::read_records;
use crate::report::summary::{now_rfc3339, Summary};
use crate::report::{format, Reporter};
use std::path::Path;

pub fn rebuild(dir: &Path) -> Result<Summary, UsageError> {
    let path = dir.join("requests.jsonl");
    if !path.is_file() {
        return Err(UsageError(format!(
            "{} has no requests.jsonl; give a results folder of llm-bench",
            dir.display()
        )));
    }
    let (records, bad_lines) = read_records(&path).map_err(UsageError)?;
    let previous: Option<Summary> = std::fs::read(dir.join("summary.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    let mut order: Vec<(u32, crate::workload::TestKind)> = Vec::new();
    let mut accumulators: Vec<StepAccumulator> = Vec::new();
    for rec in &records {
        let key = (rec.concurrency, rec.test);
        let index = match order.iter().position(|k| *k == key) {
            Some(i) => i,
            None => {
                order.push(key);
                accumulators.push(StepAccumulator::new(rec.test, rec.concurrency));
                order.len() - 1
            }
        };
        accumulators[index].add(rec);
    }
    let mut steps: Vec<StepStats> = accumulators
        .iter()
        .zip(&order)
        .map(|(acc, (concurrency, test))| {
            // In-flight counts are not in the records; keep the live figure if it was saved.
            let max_in_flight = previous
                .as_ref()
                .and_then(|p| {
                    p.steps
                        .iter()
                        .find(|s| s.concurrency == *concurrency && s.test == *test)
                })
                .map_or(0, |s| s.max_in_flight);
            acc.stats(max_in_flight)
        })
        .collect();
    advice::fill_scaling_efficiency(&mut steps);
    let min_tps = previous
        .as_ref()
        .and_then(|p| p.config.get("min_tps"))
        .and_then(|v| v.as_f64());
    let mut summary = previous.unwrap_or_default();
    summary.recommendations = advice::recommend(&steps, min_tps);
    summary.steps = steps;
    summary.status = "rebuilt".into();
    summary.finished_at = Some(now_rfc3339());
    summary.notes.push(format!(
        "rebuilt from {} records of requests.jsonl{}",
        records.len(),
        if bad_lines > 0 {
            format!(" ({bad_lines} unreadable lines skipped)")
        } else {
            String::new()
        }
    ));
    summary.write(dir).map_err(UsageError)?;
    Ok(summary)
}

pub fn print(summary: &Summary, reporter: &Reporter) {
    for line in format::table(&summary.steps) {
        reporter.line(&line);
    }
    for r in &summary.recommendations {
        reporter.line(&format!("- {r}"));
    }
    for n in &summary.notes {
        reporter.line(&format!("note: {n}"));
    }
}
