//! The comparison as console lines: the runs, one table per matched step (values side by side,
//! then for each run against the baseline its change, interval and verdict), the run-level
//! figures, the unmatched steps, the breaches.

use super::build::{fmt_pct, fmt_value, step_name};
use super::input::LoadedRun;
use super::model::{Comparison, FigureRow, Verdict};
use super::threshold::Threshold;
use crate::i18n::{tr, Msg};

pub fn verdict_word(v: Verdict) -> String {
    tr(
        match v {
            Verdict::Better => Msg::CompareBetter,
            Verdict::Worse => Msg::CompareWorse,
            Verdict::WithinNoise => Msg::CompareWithinNoise,
            Verdict::Unknown => Msg::CompareUnknown,
        },
        &[],
    )
}

/// Text from a results folder or a server (labels, model names) without control characters.
fn clean(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

pub fn lines(runs: &[LoadedRun], cmp: &Comparison, thresholds: &[Threshold]) -> Vec<String> {
    let mut out = vec![tr(
        Msg::CompareRuns,
        &[("count", &runs.len()), ("base", &clean(&cmp.runs[0].label))],
    )];
    for run in runs {
        let records = tr(
            if run.samples.is_some() {
                Msg::CompareWithRecords
            } else {
                Msg::CompareWithoutRecords
            },
            &[],
        );
        let line = tr(
            Msg::CompareRunLine,
            &[
                ("label", &clean(&run.label.label)),
                ("path", &clean(&run.label.path)),
                ("steps", &run.summary.steps.len()),
                ("model", &clean(run.summary.model.as_deref().unwrap_or("?"))),
                ("records", &records),
            ],
        );
        out.push(format!("  {line}"));
    }
    let labels: Vec<String> = cmp.runs.iter().map(|r| clean(&r.label)).collect();
    for m in &cmp.matched {
        out.push(String::new());
        let requests: Vec<String> = m
            .requests
            .iter()
            .map(|n| n.map_or_else(|| "?".to_string(), |n| n.to_string()))
            .collect();
        out.push(tr(
            Msg::CompareStepHeader,
            &[
                ("step", &step_name(&m.test, m.load)),
                ("requests", &requests.join(" / ")),
            ],
        ));
        out.extend(table(&labels, &m.figures));
    }
    if cmp.matched.is_empty() {
        out.push(tr(Msg::CompareNothingMatched, &[]));
    }
    if !cmp.run_figures.is_empty() {
        out.push(String::new());
        out.push(tr(Msg::CompareRunFigures, &[]));
        out.extend(table(&labels, &cmp.run_figures));
    }
    if !cmp.unmatched.is_empty() {
        out.push(String::new());
        out.push(tr(Msg::CompareUnmatchedHeader, &[]));
        out.extend(cmp.unmatched.iter().map(|u| format!("  {}", clean(u))));
    }
    out.push(String::new());
    out.extend(unchecked(cmp, thresholds));
    if !thresholds.is_empty() {
        if cmp.breaches.is_empty() {
            out.push(tr(Msg::CompareNoBreach, &[]));
        } else {
            out.push(tr(Msg::CompareBreaches, &[("count", &cmp.breaches.len())]));
            out.extend(cmp.breaches.iter().map(|b| format!("  {}", clean(b))));
        }
    }
    out.push(cmp.method.clone());
    out
}

/// A line for each threshold whose figure no compared step or run has.
fn unchecked(cmp: &Comparison, thresholds: &[Threshold]) -> Vec<String> {
    thresholds
        .iter()
        .filter(|t| {
            let name = t.figure.name();
            let has = |rows: &[FigureRow]| rows.iter().any(|r| r.figure == name);
            !has(&cmp.run_figures) && !cmp.matched.iter().any(|m| has(&m.figures))
        })
        .map(|t| {
            tr(
                Msg::CompareFailIfNothing,
                &[
                    ("expr", &format!("{} {}", t.figure.name(), t.text)),
                    ("figure", &t.figure.name()),
                ],
            )
        })
        .collect()
}

/// Rows of figures: name, each run's value, then for each other run "change (interval) verdict".
fn table(labels: &[String], rows: &[FigureRow]) -> Vec<String> {
    let mut cells: Vec<Vec<String>> = Vec::new();
    let mut header = vec![tr(Msg::CompareColumnFigure, &[])];
    header.extend(labels.iter().cloned());
    header.extend(
        labels[1..]
            .iter()
            .map(|l| tr(Msg::CompareColumnVs, &[("label", l), ("base", &labels[0])])),
    );
    cells.push(header);
    for row in rows {
        let name = match &row.test {
            Some(test) => format!("{} [{test}]", row.figure),
            None => row.figure.clone(),
        };
        let mut line = vec![name];
        line.extend(row.values.iter().map(|v| v.map_or_else(|| "-".into(), fmt_value)));
        for r in 1..labels.len() {
            let change = row.change_pct[r].map_or_else(|| "-".into(), fmt_pct);
            let ci = row.change_ci_pct[r]
                .map(|(lo, hi)| format!(" ({} … {})", fmt_pct(lo), fmt_pct(hi)))
                .unwrap_or_default();
            let verdict = verdict_word(row.verdicts[r].unwrap_or(Verdict::Unknown));
            line.push(format!("{change}{ci} {verdict}"));
        }
        cells.push(line);
    }
    let columns = cells[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|c| cells.iter().map(|l| l[c].chars().count()).max().unwrap_or(0))
        .collect();
    cells
        .iter()
        .map(|l| {
            let padded: Vec<String> = l
                .iter()
                .zip(&widths)
                .map(|(cell, w)| format!("{cell}{}", " ".repeat(w - cell.chars().count())))
                .collect();
            format!("  {}", padded.join("  ").trim_end())
        })
        .collect()
}
