//! `llm-bench report DIR`: rebuilds summary.json from requests.jsonl alone, e.g. after a crash
//! or `kill -9`. Records are grouped by (load point, test) in the order they first appear; a
//! timed step is measured over the window its summary recorded (or, without one, as a batch).

use crate::cli::config::UsageError;
use crate::load::LoadPoint;
use crate::metrics::slo::Slo;
use crate::metrics::step::SloJudge;
use crate::metrics::{advice, repeat, StepAccumulator, StepStats};
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
    let slo = previous
        .as_ref()
        .and_then(|p| p.config.get("slo"))
        .and_then(|v| v.get("spec"))
        .and_then(|v| v.as_str())
        .and_then(|spec| Slo::parse(spec).ok());
    let from_send = previous
        .as_ref()
        .and_then(|p| p.config.get("slo_from_send"))
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let exact_output = previous
        .as_ref()
        .and_then(|p| p.config.get("ignore_eos"))
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let judge = slo.as_ref().map(|slo| SloJudge {
        slo: std::sync::Arc::new(slo.clone()),
        from_send,
    });
    // Repetitions of one point (`--repeat`) are steps of their own.
    let mut order: Vec<(LoadPoint, crate::workload::TestKind, Option<u32>)> = Vec::new();
    let mut accumulators: Vec<StepAccumulator> = Vec::new();
    for rec in &records {
        let key = (rec.point(), rec.test, rec.repeat);
        let index = match order.iter().position(|k| *k == key) {
            Some(i) => i,
            None => {
                // A timed step keeps the window it was measured over, when the summary says it.
                let window = previous
                    .as_ref()
                    .and_then(|p| p.steps.iter().find(|s| (s.load, s.test, s.repeat) == key))
                    .and_then(|s| s.window);
                order.push(key);
                accumulators.push(
                    StepAccumulator::new(rec.test, key.0)
                        .with_window(window)
                        .with_slo(judge.clone())
                        .asking_exact_output(exact_output),
                );
                order.len() - 1
            }
        };
        accumulators[index].add(rec);
    }
    let mut steps: Vec<StepStats> = accumulators
        .iter()
        .zip(&order)
        .map(|(acc, &(point, test, repeat))| {
            // What is not in the records (in-flight counts, the scheduler's view) is kept from
            // the saved summary when there is one.
            let saved = previous.as_ref().and_then(|p| {
                p.steps
                    .iter()
                    .find(|s| (s.load, s.test, s.repeat) == (point, test, repeat))
            });
            let mut stats = acc.stats(saved.map_or(0, |s| s.max_in_flight));
            stats.repeat = repeat;
            if let Some(saved) = saved {
                stats.saturated = saved.saturated;
                stats.requests_unsent = saved.requests_unsent;
                stats.scheduled_rps = saved.scheduled_rps;
                stats.max_backlog = saved.max_backlog;
                stats.backlog_limit = saved.backlog_limit;
                stats.pacing_warning = saved.pacing_warning.clone();
            }
            stats
        })
        .collect();
    advice::fill_scaling_efficiency(&mut steps);
    let min_tps = previous
        .as_ref()
        .and_then(|p| p.config.get("min_tps"))
        .and_then(|v| v.as_f64());
    let mut summary = previous.unwrap_or_default();
    summary.repeats = repeat::repeat_stats(&steps);
    summary.recommendations = advice::recommend(&repeat::per_point(&steps), min_tps, slo.as_ref());
    if let Some(capacity) = &summary.capacity {
        summary.recommendations.insert(0, capacity.answer.clone());
    }
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
