//! `compare.html`: the curves of every run overlaid (one colour per run), the verdict table of
//! a [`Comparison`], the steps not in every run, the `--fail-if` breaches and the method.

use super::page::{load_label, table};
use super::svg::{Chart, Point, Series};
use super::{document, esc, t};
use crate::compare::model::{Comparison, FigureRow, RunLabel, Verdict};
use crate::i18n::{tr_in, Lang, Msg};
use crate::load::LoadAxis;
use crate::metrics::{advice, StepStats};
use crate::report::Summary;
use crate::workload::TestKind;
use std::fmt::Write;

/// The comparison page, in `lang`. `runs` are in the order of `cmp.runs` (run 0 the baseline).
pub fn render_compare(runs: &[(RunLabel, Summary)], cmp: &Comparison, lang: Lang) -> String {
    let mut body = format!("<header><h1>{}</h1></header>", t(lang, Msg::HtmlCompareTitle));
    body.push_str(&runs_section(cmp, lang));
    body.push_str(&charts_section(runs, lang));
    let _ = write!(
        body,
        "<section id=\"verdicts\"><h2>{}</h2>",
        t(lang, Msg::HtmlCompareVerdicts)
    );
    if !cmp.method.is_empty() {
        let _ = write!(
            body,
            "<p class=\"sub\">{}: {}</p>",
            t(lang, Msg::HtmlCompareMethod),
            esc(&cmp.method)
        );
    }
    let headers = verdict_headers(&cmp.runs, lang);
    let mut rows: Vec<(Vec<String>, &str)> = Vec::new();
    for m in &cmp.matched {
        let load = crate::i18n::tr_in(
            lang,
            Msg::HtmlStepName,
            &[("test", &m.test), ("load", &load_label(lang, m.load))],
        );
        rows.extend(m.figures.iter().map(|f| (verdict_cells(&load, f, lang), "")));
    }
    let run_level = tr_in(lang, Msg::HtmlCompareRunLevel, &[]);
    rows.extend(cmp.run_figures.iter().map(|f| (verdict_cells(&run_level, f, lang), "")));
    if rows.is_empty() {
        let _ = write!(body, "<p>{}</p>", t(lang, Msg::HtmlCompareNothingMatched));
    } else {
        body.push_str(&colour_verdicts(&table(&headers, &rows, 2)));
    }
    body.push_str("</section>");
    body.push_str(&list_section(
        "unmatched",
        Msg::HtmlCompareUnmatched,
        Msg::HtmlCompareNoUnmatched,
        &cmp.unmatched,
        lang,
    ));
    body.push_str(&list_section(
        "breaches",
        Msg::HtmlCompareBreaches,
        Msg::HtmlCompareNoBreaches,
        &cmp.breaches,
        lang,
    ));
    document(lang, &tr_in(lang, Msg::HtmlCompareTitle, &[]), &body)
}

fn runs_section(cmp: &Comparison, lang: Lang) -> String {
    let headers: Vec<String> = [Msg::HtmlCompareRun, Msg::HtmlCompareLabel, Msg::HtmlComparePath]
        .iter()
        .map(|&m| tr_in(lang, m, &[]))
        .collect();
    let rows: Vec<(Vec<String>, &str)> = cmp
        .runs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let n = if i == 0 {
                format!("{} ({})", i + 1, tr_in(lang, Msg::HtmlCompareBaseline, &[]))
            } else {
                (i + 1).to_string()
            };
            (vec![n, r.label.clone(), r.path.clone()], "")
        })
        .collect();
    format!(
        "<section id=\"runs\"><h2>{}</h2>{}</section>",
        t(lang, Msg::HtmlCompareRuns),
        table(&headers, &rows, 3)
    )
}

fn list_section(id: &str, title: Msg, none: Msg, items: &[String], lang: Lang) -> String {
    let mut out = format!("<section id=\"{id}\"><h2>{}</h2>", t(lang, title));
    if items.is_empty() {
        let _ = write!(out, "<p>{}</p>", t(lang, none));
    } else {
        out.push_str("<ul class=\"answers\">");
        for item in items {
            let _ = write!(out, "<li>{}</li>", esc(item));
        }
        out.push_str("</ul>");
    }
    out.push_str("</section>");
    out
}

fn verdict_headers(runs: &[RunLabel], lang: Lang) -> Vec<String> {
    let mut h = vec![tr_in(lang, Msg::HtmlColStep, &[]), tr_in(lang, Msg::HtmlColFigure, &[])];
    for (i, r) in runs.iter().enumerate() {
        h.push(r.label.clone());
        if i > 0 {
            h.push(tr_in(lang, Msg::HtmlColChange, &[]));
            h.push(tr_in(lang, Msg::HtmlColChangeCi, &[]));
            h.push(tr_in(lang, Msg::HtmlColVerdict, &[]));
        }
    }
    h
}

fn verdict_text(v: Verdict, lang: Lang) -> String {
    let msg = match v {
        Verdict::Better => Msg::HtmlVerdictBetter,
        Verdict::Worse => Msg::HtmlVerdictWorse,
        Verdict::WithinNoise => Msg::HtmlVerdictWithinNoise,
        Verdict::Unknown => Msg::HtmlVerdictUnknown,
    };
    // A marker the table colours after escaping (see `colour_verdicts`).
    format!("\u{1}{}\u{2}{}", verdict_class(v), tr_in(lang, msg, &[]))
}

fn verdict_class(v: Verdict) -> &'static str {
    match v {
        Verdict::Better => "better",
        Verdict::Worse => "worse",
        Verdict::WithinNoise => "within_noise",
        Verdict::Unknown => "unknown",
    }
}

/// Turns the verdict cells' markers into classes: `<td>\u{1}worse\u{2}worse</td>` →
/// `<td class="verdict-worse">worse</td>`. The markers are control characters no escaped text
/// can contain (they are stripped from untrusted cells first, see `verdict_cells`).
fn colour_verdicts(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(i) = rest.find("<td>\u{1}") {
        out.push_str(&rest[..i]);
        let after = &rest[i + "<td>\u{1}".len()..];
        let Some(j) = after.find('\u{2}') else {
            rest = after;
            continue;
        };
        let _ = write!(out, "<td class=\"verdict-{}\">", &after[..j]);
        rest = &after[j + 1..];
    }
    out.push_str(rest);
    out
}

fn strip_markers(s: &str) -> String {
    s.chars().filter(|c| !matches!(c, '\u{1}' | '\u{2}')).collect()
}

fn verdict_cells(step: &str, f: &FigureRow, lang: Lang) -> Vec<String> {
    let value = |v: Option<f64>| v.map_or("-".into(), super::svg::fmt_value);
    let mut cells = vec![strip_markers(step), strip_markers(&f.figure)];
    for (i, v) in f.values.iter().enumerate() {
        cells.push(value(*v));
        if i > 0 {
            let change = f.change_pct.get(i).copied().flatten();
            cells.push(change.map_or("-".into(), |c| format!("{c:+.1}")));
            let ci = f.change_ci_pct.get(i).copied().flatten();
            cells.push(ci.map_or("-".into(), |(lo, hi)| format!("[{lo:+.1}, {hi:+.1}]")));
            let verdict = f.verdicts.get(i).copied().flatten();
            cells.push(verdict.map_or("-".into(), |v| verdict_text(v, lang)));
        }
    }
    cells
}

/// One figure of every run and test over load, one colour per run.
fn overlay(
    runs: &[(RunLabel, Summary)],
    lang: Lang,
    title: Msg,
    y_label: Msg,
    figure: &dyn Fn(&StepStats) -> Option<f64>,
) -> Chart {
    let axis = runs
        .iter()
        .find_map(|(_, s)| s.steps.first())
        .map_or(LoadAxis::Concurrency, |s| s.load.axis());
    let x_label = match axis {
        LoadAxis::Concurrency => tr_in(lang, Msg::HtmlAxisConcurrency, &[]),
        LoadAxis::Rate => tr_in(lang, Msg::HtmlAxisRate, &[]),
    };
    let mut c = Chart::new(tr_in(lang, title, &[]), x_label, tr_in(lang, y_label, &[]));
    for (run, (label, summary)) in runs.iter().enumerate() {
        let tests: Vec<TestKind> = [TestKind::Input, TestKind::Output, TestKind::Multimodal]
            .into_iter()
            .filter(|t| summary.steps.iter().any(|s| s.test == *t))
            .collect();
        for (k, test) in tests.iter().enumerate() {
            let mut steps: Vec<&StepStats> = summary
                .steps
                .iter()
                .filter(|s| s.test == *test && s.load.axis() == axis)
                .collect();
            steps.sort_by(|a, b| a.load.value().total_cmp(&b.load.value()));
            steps.dedup_by(|a, b| a.load == b.load);
            let points: Vec<Point> = steps
                .iter()
                .filter_map(|s| figure(s).map(|y| Point::new(s.load.value(), y)))
                .collect();
            if points.is_empty() {
                continue;
            }
            c.series.push(Series {
                name: format!("{} · {}", label.label, test.name()),
                points,
                color: run,
                dashed: k % 2 == 1,
            });
        }
    }
    c
}

fn charts_section(runs: &[(RunLabel, Summary)], lang: Lang) -> String {
    let charts = [
        overlay(runs, lang, Msg::HtmlChartThroughput, Msg::HtmlAxisTokensPerS, &|s| {
            Some(advice::throughput(s))
        }),
        overlay(runs, lang, Msg::HtmlChartPerConn, Msg::HtmlAxisTokPerConn, &|s| {
            s.per_conn_tps.map(|p| p.mean)
        }),
        overlay(runs, lang, Msg::HtmlChartTtftP99, Msg::HtmlAxisTtftP99, &|s| {
            s.ttft_ms.map(|d| d.p99)
        }),
        overlay(runs, lang, Msg::HtmlChartE2eP99, Msg::HtmlAxisE2eP99, &|s| {
            s.e2e_ms.map(|d| d.p99)
        }),
    ];
    let mut out = format!(
        "<section id=\"charts\"><h2>{}</h2><div class=\"charts\">",
        t(lang, Msg::HtmlSecCharts)
    );
    for c in charts.iter().filter(|c| c.has_data()) {
        let _ = write!(out, "<figure>{}</figure>", c.render());
    }
    out.push_str("</div></section>");
    out
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{summary, EVIL};
    use super::*;
    use crate::load::LoadPoint;

    fn comparison() -> (Vec<(RunLabel, Summary)>, Comparison) {
        let runs = vec![
            RunLabel {
                label: "base".into(),
                path: "results/a".into(),
            },
            RunLabel {
                label: format!("new {EVIL}"),
                path: "results/b".into(),
            },
        ];
        let mut faster = summary(4);
        for s in &mut faster.steps {
            s.output_throughput_tps *= 1.2;
        }
        let row = |figure: &str, verdict: Verdict| FigureRow {
            figure: figure.into(),
            higher_is_better: figure.contains("throughput"),
            values: vec![Some(100.0), Some(120.0)],
            change_pct: vec![None, Some(20.0)],
            change_ci_pct: vec![None, Some((15.0, 25.0))],
            verdicts: vec![None, Some(verdict)],
            test: None,
        };
        let cmp = Comparison {
            runs: runs.clone(),
            matched: vec![crate::compare::model::StepMatch {
                test: "output".into(),
                load: LoadPoint::Concurrency(16),
                figures: vec![
                    row("output_throughput_tps", Verdict::Better),
                    row("ttft_p99_ms", Verdict::Worse),
                ],
                requests: vec![Some(100), Some(100)],
            }],
            unmatched: vec![format!("run 2: output at concurrency 64 {EVIL}")],
            run_figures: vec![row("knee", Verdict::WithinNoise)],
            method: "bootstrap 95% CI of the difference".into(),
            breaches: vec!["ttft_p99_ms > +10%: +20.0%".into()],
            ..Default::default()
        };
        (vec![(runs[0].clone(), summary(4)), (runs[1].clone(), faster)], cmp)
    }

    #[test]
    fn compare_page_overlays_runs_and_colours_verdicts() {
        let (runs, cmp) = comparison();
        let html = render_compare(&runs, &cmp, Lang::En);
        for id in ["runs", "charts", "verdicts", "unmatched", "breaches"] {
            assert!(html.contains(&format!("<section id=\"{id}\"")), "{id}");
        }
        // Each chart has one series per run and test, in the run's colour.
        let throughput = html.split("<figure>").nth(1).unwrap();
        assert_eq!(throughput.matches("<g class=\"series\"").count(), 4);
        assert!(
            throughput.contains(super::super::svg::PALETTE[0]) && throughput.contains(super::super::svg::PALETTE[1])
        );
        assert!(html.contains("<td class=\"verdict-better\">better</td>"));
        assert!(html.contains("<td class=\"verdict-worse\">worse</td>"));
        assert!(html.contains("<td class=\"verdict-within_noise\">within noise</td>"));
        assert!(html.contains("+20.0") && html.contains("[+15.0, +25.0]"));
        assert!(html.contains("bootstrap 95% CI of the difference"));
        assert!(html.contains("ttft_p99_ms &gt; +10%: +20.0%"));
        assert!(!html.contains("<script") && !html.contains("<img") && !html.contains("]]>"));
        assert_eq!(html.matches("</style>").count(), 1);
        assert!(html.contains("new &lt;script&gt;"), "labels are escaped");
    }

    #[test]
    fn markers_in_untrusted_text_cannot_forge_a_class() {
        let (runs, mut cmp) = comparison();
        cmp.matched[0].figures[0].figure = "\u{1}x\" onmouseover=\"alert(1)\u{2}".into();
        let html = render_compare(&runs, &cmp, Lang::En);
        assert!(!html.contains("verdict-x"));
        assert!(!html.contains("onmouseover=\"alert"));
    }

    #[test]
    fn an_empty_comparison_says_so() {
        let cmp = Comparison::default();
        let html = render_compare(&[], &cmp, Lang::Zh);
        assert!(html.contains("<html lang=\"zh-CN\">") && html.contains("没有在所有运行中都出现的步"));
    }
}
