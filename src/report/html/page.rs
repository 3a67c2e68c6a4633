//! `report.html`: what was run, the answers, charts, tables and errors of one results folder,
//! drawn from the same figures as its `summary.json`.

use super::svg::{Band, Chart, Mark, MarkKind, Point, Rule, Series};
use super::telemetry::Columns;
use super::{clean_url, document, esc, repeats_of, t, RepeatStats};
use crate::i18n::{tr_in, Lang, Msg};
use crate::load::{LoadAxis, LoadPoint};
use crate::metrics::advice;
use crate::metrics::slo::{Slo, SloMetric};
use crate::metrics::{Dist, StepStats};
use crate::report::summary::Interval;
use crate::report::Summary;
use crate::workload::TestKind;
use serde_json::Value;
use std::fmt::Write;

const TESTS: [TestKind; 3] = [TestKind::Input, TestKind::Output, TestKind::Multimodal];

/// The whole page, in `lang`.
pub fn render_report(summary: &Summary, lang: Lang) -> String {
    let repeats = repeats_of(summary);
    let mut body = String::with_capacity(64 * 1024);
    let _ = write!(
        body,
        "<header><h1>{}</h1><p class=\"sub\">{}</p></header>",
        t(lang, Msg::HtmlTitle),
        esc(&tr_in(
            lang,
            Msg::HtmlSubtitle,
            &[("model", &model_of(summary)), ("status", &summary.status)]
        ))
    );
    body.push_str(&run_section(summary, lang));
    body.push_str(&answers_section(summary, lang));
    body.push_str(&charts_section(summary, &repeats, lang));
    body.push_str(&tables_section(summary, lang));
    body.push_str(&errors_section(&summary.steps, lang));
    let _ = write!(
        body,
        "<footer>{}</footer>",
        esc(&tr_in(
            lang,
            Msg::HtmlFooter,
            &[("version", &summary.environment.tool_version)]
        ))
    );
    document(lang, &tr_in(lang, Msg::HtmlTitle, &[]), &body)
}

fn model_of(summary: &Summary) -> String {
    summary
        .model
        .clone()
        .or_else(|| summary.config.get("model").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| "-".into())
}

/// A load point in words: "concurrency 16", "8 req/s".
pub(super) fn load_label(lang: Lang, load: LoadPoint) -> String {
    match load {
        LoadPoint::Concurrency(n) => tr_in(lang, Msg::HtmlLoadConcurrency, &[("n", &n)]),
        LoadPoint::Rate(r) => tr_in(lang, Msg::HtmlLoadRate, &[("rate", &crate::load::point::fmt_rate(r))]),
    }
}

/// "output at concurrency 16".
fn step_name(lang: Lang, s: &StepStats) -> String {
    tr_in(
        lang,
        Msg::HtmlStepName,
        &[("test", &s.test.name()), ("load", &load_label(lang, s.load))],
    )
}

/// A JSON value in one line, strings without quotes, `{"kind": k, "value": v}` as `k v`.
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        Value::Object(o) if o.len() <= 2 && o.contains_key("kind") => {
            let kind = o.get("kind").map_or(String::new(), plain);
            match o.get("value") {
                Some(value) => format!("{kind} {}", plain(value)),
                None => kind,
            }
        }
        other => other.to_string(),
    }
}

fn run_section(summary: &Summary, lang: Lang) -> String {
    let c = &summary.config;
    let url = c
        .get("url")
        .and_then(Value::as_str)
        .map(clean_url)
        .unwrap_or_else(|| "-".into());
    let tests = c
        .get("tests")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(plain).collect::<Vec<_>>().join(", "))
        .unwrap_or_else(|| "-".into());
    let env = &summary.environment;
    let date = match &summary.finished_at {
        Some(end) => format!("{} – {end}", summary.started_at),
        None => summary.started_at.clone(),
    };
    let machine = tr_in(
        lang,
        Msg::HtmlClientMachineValue,
        &[
            ("host", &env.host.as_deref().unwrap_or("-")),
            ("os", &env.os.as_deref().unwrap_or("-")),
            ("cpus", &env.cpus),
            (
                "memory",
                &env.memory_mb.map_or("-".into(), |m| format!("{:.1}", m / 1024.0)),
            ),
        ],
    );
    let rows: [(Msg, String); 9] = [
        (Msg::HtmlServer, url),
        (Msg::HtmlModel, model_of(summary)),
        (Msg::HtmlTests, tests),
        (Msg::HtmlWorkload, workload_text(c, lang)),
        (Msg::HtmlLoadModel, load_text(c, lang)),
        (Msg::HtmlTool, format!("{} {}", env.tool, env.tool_version)),
        (Msg::HtmlDate, date),
        (Msg::HtmlClientMachine, machine),
        (Msg::HtmlStatus, summary.status.clone()),
    ];
    let mut out = format!(
        "<section id=\"run\"><h2>{}</h2><dl class=\"run\">",
        t(lang, Msg::HtmlSecRun)
    );
    for (label, value) in rows {
        let _ = write!(out, "<dt>{}</dt><dd>{}</dd>", t(lang, label), esc(&value));
    }
    out.push_str("</dl>");
    out.push_str(&super::telemetry::sources(summary, lang));
    out.push_str("</section>");
    out
}

fn workload_text(c: &Value, lang: Lang) -> String {
    let prompts = c.get("prompts");
    let dataset = prompts.and_then(|p| p.get("dataset")).filter(|d| !d.is_null());
    let mut parts = vec![match dataset {
        Some(d) => tr_in(lang, Msg::HtmlWorkloadDataset, &[("dataset", &plain(d))]),
        None => tr_in(
            lang,
            Msg::HtmlWorkloadSynthetic,
            &[
                ("chars", &c.get("prompt_chars").map_or("-".into(), plain)),
                ("max", &c.get("max_tokens").map_or("-".into(), plain)),
            ],
        ),
    }];
    if let Some(p) = prompts.and_then(Value::as_object) {
        for key in ["isl", "osl", "prefix", "sessions", "images"] {
            if let Some(v) = p.get(key).filter(|v| !v.is_null()) {
                parts.push(format!("{key}={}", plain(v)));
            }
        }
    }
    parts.join("; ")
}

fn load_text(c: &Value, lang: Lang) -> String {
    let Some(mode) = c.get("mode").and_then(Value::as_object) else {
        return "-".into();
    };
    let mut parts = vec![mode.get("kind").map_or("-".into(), plain)];
    for (key, v) in mode {
        match key.as_str() {
            "kind" => {}
            "points" => {
                let points: Vec<String> = serde_json::from_value::<Vec<LoadPoint>>(v.clone())
                    .map(|ps| ps.into_iter().map(|p| load_label(lang, p)).collect())
                    .unwrap_or_else(|_| vec![plain(v)]);
                parts.push(points.join(", "));
            }
            _ => parts.push(format!("{key}={}", plain(v))),
        }
    }
    if let Some(arrival) = c.pointer("/load/arrival/kind") {
        parts.push(tr_in(lang, Msg::HtmlArrival, &[("arrival", &plain(arrival))]));
    }
    parts.join("; ")
}

fn slo_of(summary: &Summary) -> Option<Slo> {
    summary
        .config
        .get("slo")
        .filter(|v| !v.is_null())
        .and_then(|v| serde_json::from_value::<Slo>(v.clone()).ok())
        .or_else(|| summary.capacity.as_ref().and_then(|c| c.slo.clone()))
}

fn answers_section(summary: &Summary, lang: Lang) -> String {
    let mut out = format!("<section id=\"answers\"><h2>{}</h2>", t(lang, Msg::HtmlSecAnswers));
    let list = |title: Msg, items: &[String], class: &str| -> String {
        if items.is_empty() {
            return String::new();
        }
        let mut s = format!("<h3>{}</h3><ul class=\"answers {class}\">", t(lang, title));
        for item in items {
            let _ = write!(s, "<li>{}</li>", esc(item));
        }
        s.push_str("</ul>");
        s
    };
    let steps = &summary.steps;
    let bound: Vec<String> = steps
        .iter()
        .filter(|s| s.client_bound)
        .map(|s| {
            let reasons = s.client.as_ref().map(|c| c.reasons.join("; ")).unwrap_or_default();
            tr_in(
                lang,
                Msg::HtmlClientBoundLine,
                &[("step", &step_name(lang, s)), ("reasons", &reasons)],
            )
        })
        .collect();
    out.push_str(&list(Msg::HtmlClientBoundTitle, &bound, "warn"));
    out.push_str(&list(Msg::HtmlRecommendations, &summary.recommendations, ""));
    if let Some(cap) = &summary.capacity {
        out.push_str(&list(Msg::HtmlCapacity, std::slice::from_ref(&cap.answer), ""));
    }
    let attainment = slo_lines(summary, lang);
    out.push_str(&list(Msg::HtmlSloTitle, &attainment, ""));
    let saturated: Vec<String> = steps
        .iter()
        .filter(|s| s.saturated)
        .map(|s| {
            let limit = s.backlog_limit.map_or("-".into(), |l| l.to_string());
            tr_in(
                lang,
                Msg::HtmlSaturatedLine,
                &[("step", &step_name(lang, s)), ("limit", &limit)],
            )
        })
        .collect();
    out.push_str(&list(Msg::HtmlSaturationTitle, &saturated, "warn"));
    let lengths: Vec<String> = steps
        .iter()
        .flat_map(|s| {
            let name = step_name(lang, s);
            crate::report::format::length_lines(s)
                .into_iter()
                .map(move |l| format!("{name}: {}", l.trim()))
        })
        .collect();
    out.push_str(&list(Msg::HtmlLengthsTitle, &lengths, ""));
    let mut notes = summary.notes.clone();
    if let Some(stress) = &summary.stress {
        // The drift sentences are usually among the recommendations already.
        let new = stress.drift.iter().filter(|d| !summary.recommendations.contains(d));
        notes.extend(new.cloned());
    }
    out.push_str(&list(Msg::HtmlNotesTitle, &notes, ""));
    out.push_str("</section>");
    out
}

/// One line per test: the range of SLO attainment, and which steps pass and fail the SLO's
/// percentile objectives.
fn slo_lines(summary: &Summary, lang: Lang) -> Vec<String> {
    let spec = slo_of(summary).map_or("-".into(), |s| s.spec);
    let mut lines = Vec::new();
    for test in TESTS {
        let steps: Vec<&StepStats> = summary
            .steps
            .iter()
            .filter(|s| s.test == test && s.slo_attainment_pct.is_some())
            .collect();
        if steps.is_empty() {
            continue;
        }
        let pcts = steps.iter().filter_map(|s| s.slo_attainment_pct);
        let (lo, hi) = pcts.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| (lo.min(p), hi.max(p)));
        let loads = |pass: bool| -> String {
            let names: Vec<String> = steps
                .iter()
                .filter(|s| s.slo_pass == Some(pass))
                .map(|s| s.load.short())
                .collect();
            if names.is_empty() {
                "-".into()
            } else {
                names.join(", ")
            }
        };
        let range = if (hi - lo).abs() < 0.05 {
            format!("{lo:.1}")
        } else {
            format!("{lo:.1}–{hi:.1}")
        };
        lines.push(tr_in(
            lang,
            Msg::HtmlSloLine,
            &[
                ("test", &test.name()),
                ("slo", &spec),
                ("pct", &range),
                ("pass", &loads(true)),
                ("fail", &loads(false)),
            ],
        ));
    }
    lines
}

/// The steps of one test along the run's load axis, in load order, one per load point (the
/// first of a point's repeats).
fn curve(steps: &[StepStats], test: TestKind, axis: LoadAxis) -> Vec<&StepStats> {
    let mut curve: Vec<&StepStats> = steps
        .iter()
        .filter(|s| s.test == test && s.load.axis() == axis)
        .collect();
    curve.sort_by(|a, b| a.load.value().total_cmp(&b.load.value()));
    curve.dedup_by(|a, b| a.load == b.load);
    curve
}

fn axis_of(steps: &[StepStats]) -> LoadAxis {
    steps.first().map_or(LoadAxis::Concurrency, |s| s.load.axis())
}

fn axis_label(lang: Lang, axis: LoadAxis) -> String {
    match axis {
        LoadAxis::Concurrency => tr_in(lang, Msg::HtmlAxisConcurrency, &[]),
        LoadAxis::Rate => tr_in(lang, Msg::HtmlAxisRate, &[]),
    }
}

/// Everything the load charts need: the steps by test, and the repeats' intervals.
struct Curves<'a> {
    lang: Lang,
    axis: LoadAxis,
    tests: Vec<(TestKind, Vec<&'a StepStats>)>,
    repeats: &'a [RepeatStats],
    bands: Vec<Band>,
}

impl<'a> Curves<'a> {
    fn new(summary: &'a Summary, repeats: &'a [RepeatStats], lang: Lang) -> Self {
        let axis = axis_of(&summary.steps);
        let tests: Vec<(TestKind, Vec<&StepStats>)> = TESTS
            .iter()
            .map(|&t| (t, curve(&summary.steps, t, axis)))
            .filter(|(_, c)| !c.is_empty())
            .collect();
        let bands = client_bound_bands(&summary.steps, axis, lang);
        Self {
            lang,
            axis,
            tests,
            repeats,
            bands,
        }
    }

    /// A point at a step's load: the repeats' mean and interval where `--repeat` gave them.
    fn point(&self, s: &StepStats, key: &str, own: Option<f64>) -> Option<Point> {
        let x = s.load.value();
        let repeated = self
            .repeats
            .iter()
            .find(|r| r.test == s.test && r.load == s.load)
            .and_then(|r| r.figures.get(key));
        match repeated {
            Some(f) => Some(Point {
                x,
                y: f.mean,
                err: Some((f.ci95_low, f.ci95_high)),
            }),
            None => own.map(|y| Point::new(x, y)),
        }
    }

    fn chart(&self, title: Msg, y_label: Msg) -> Chart {
        let mut c = Chart::new(
            tr_in(self.lang, title, &[]),
            axis_label(self.lang, self.axis),
            tr_in(self.lang, y_label, &[]),
        );
        c.bands = self.bands.clone();
        c
    }
}

/// A shaded range around each client-bound step's load value.
fn client_bound_bands(steps: &[StepStats], axis: LoadAxis, lang: Lang) -> Vec<Band> {
    let mut values: Vec<f64> = steps
        .iter()
        .filter(|s| s.load.axis() == axis)
        .map(|s| s.load.value())
        .collect();
    values.sort_by(f64::total_cmp);
    values.dedup();
    let gap = values.windows(2).map(|w| w[1] - w[0]).fold(f64::INFINITY, f64::min);
    let half = if gap.is_finite() { gap / 2.0 } else { 0.5 };
    let label = tr_in(lang, Msg::HtmlClientBoundBand, &[]);
    let mut bands: Vec<Band> = Vec::new();
    for s in steps.iter().filter(|s| s.client_bound && s.load.axis() == axis) {
        let v = s.load.value();
        if !bands.iter().any(|b| b.from < v && v < b.to) {
            bands.push(Band {
                from: v - half,
                to: v + half,
                label: label.clone(),
                class: super::svg::BAND,
            });
        }
    }
    bands
}

fn throughput_key(s: &StepStats) -> &'static str {
    match s.test {
        _ if s.is_embeddings() => "prompt_throughput_tps",
        TestKind::Input => "prompt_throughput_tps",
        _ => "output_throughput_tps",
    }
}

/// Total throughput of the tests counted in prompt tokens (`prompt`: input, embeddings) or in
/// output tokens, with the knee and the best step marked. The two differ by orders of
/// magnitude, so they get a chart each.
fn throughput_chart(cv: &Curves, prompt: bool) -> Chart {
    let title = if prompt {
        Msg::HtmlChartThroughputPrompt
    } else {
        Msg::HtmlChartThroughputOutput
    };
    let mut c = cv.chart(title, Msg::HtmlAxisTokensPerS);
    for (i, (test, steps)) in cv.tests.iter().enumerate() {
        if steps
            .first()
            .is_none_or(|s| (throughput_key(s) == "prompt_throughput_tps") != prompt)
        {
            continue;
        }
        let points = steps
            .iter()
            .filter_map(|s| cv.point(s, throughput_key(s), Some(advice::throughput(s))))
            .collect();
        c.series.push(Series {
            name: test.name().to_string(),
            points,
            color: i,
            dashed: false,
        });
        let measured: Vec<&StepStats> = steps.iter().copied().filter(|s| s.requests_ok > 0).collect();
        if let Some(k) = advice::knee_index(&measured) {
            c.marks.push(Mark {
                x: measured[k].load.value(),
                y: advice::throughput(measured[k]),
                label: tr_in(cv.lang, Msg::HtmlKnee, &[]),
                kind: MarkKind::Knee,
            });
        }
        if let Some(best) = measured
            .iter()
            .max_by(|a, b| advice::throughput(a).total_cmp(&advice::throughput(b)))
        {
            c.marks.push(Mark {
                x: best.load.value(),
                y: advice::throughput(best),
                label: tr_in(cv.lang, Msg::HtmlBest, &[]),
                kind: MarkKind::Best,
            });
        }
    }
    c
}

/// Per-connection speed of the generating tests, with the `--min-tps` line.
fn per_conn_chart(cv: &Curves, min_tps: Option<f64>) -> Chart {
    let mut c = cv.chart(Msg::HtmlChartPerConn, Msg::HtmlAxisTokPerConn);
    for (i, (test, steps)) in cv.tests.iter().enumerate() {
        if *test == TestKind::Input {
            continue;
        }
        let points = steps
            .iter()
            .filter_map(|s| cv.point(s, "per_conn_tps_mean", s.per_conn_tps.map(|p| p.mean)))
            .collect();
        c.series.push(Series {
            name: test.name().to_string(),
            points,
            color: i,
            dashed: false,
        });
    }
    if let Some(v) = min_tps {
        c.y_rules.push(Rule {
            value: v,
            label: tr_in(cv.lang, Msg::HtmlMinTpsLine, &[("tps", &super::svg::fmt_value(v))]),
            class: "min-tps-line",
        });
    }
    c
}

const LATENCIES: [(SloMetric, &str, &str); 4] = [
    (SloMetric::Ttft, "ttft", "TTFT"),
    (SloMetric::Itl, "itl", "ITL"),
    (SloMetric::Tpot, "tpot", "TPOT"),
    (SloMetric::E2e, "e2e", "E2E"),
];

fn dist_of(s: &StepStats, metric: SloMetric) -> Option<Dist> {
    match metric {
        SloMetric::Ttft => s.ttft_ms,
        SloMetric::Itl => s.itl_ms,
        SloMetric::Tpot => s.tpot_ms,
        SloMetric::E2e => s.e2e_ms,
    }
}

/// p50, p90 and p99 of one latency per test, with the SLO's limits on it.
fn latency_chart(cv: &Curves, metric: SloMetric, key: &str, name: &str, slo: Option<&Slo>) -> Chart {
    let mut c = Chart::new(
        tr_in(cv.lang, Msg::HtmlChartLatency, &[("metric", &name)]),
        axis_label(cv.lang, cv.axis),
        tr_in(cv.lang, Msg::HtmlAxisMs, &[("metric", &name)]),
    );
    c.bands = cv.bands.clone();
    for (i, (test, steps)) in cv.tests.iter().enumerate() {
        for (j, stat) in ["p50", "p90", "p99"].iter().enumerate() {
            let figure = format!("{key}_{stat}_ms");
            let points: Vec<Point> = steps
                .iter()
                .filter_map(|s| {
                    let d = dist_of(s, metric)?;
                    let own = match j {
                        0 => d.p50,
                        1 => d.p90,
                        _ => d.p99,
                    };
                    cv.point(s, &figure, Some(own))
                })
                .collect();
            if !points.is_empty() {
                c.series.push(Series {
                    name: format!("{} {stat}", test.name()),
                    points,
                    color: i * 3 + j,
                    dashed: j == 0,
                });
            }
        }
    }
    for o in slo
        .iter()
        .flat_map(|s| s.objectives.iter())
        .filter(|o| o.metric == metric)
    {
        c.y_rules.push(Rule {
            value: o.limit_ms,
            label: tr_in(
                cv.lang,
                Msg::HtmlSloRule,
                &[("name", &o.label()), ("limit", &super::svg::fmt_value(o.limit_ms))],
            ),
            class: "slo-line",
        });
    }
    c
}

/// The first, the knee and the last step of one test: their distributions of one latency.
fn cdf_chart(cv: &Curves, test: TestKind, steps: &[&StepStats], metric: SloMetric, name: &str) -> Chart {
    let mut c = Chart::new(
        tr_in(cv.lang, Msg::HtmlChartCdf, &[("metric", &name), ("test", &test.name())]),
        tr_in(cv.lang, Msg::HtmlAxisMs, &[("metric", &name)]),
        tr_in(cv.lang, Msg::HtmlAxisPercentile, &[]),
    );
    c.x_from_data = true;
    c.y_range = Some((0.0, 100.0));
    let measured: Vec<&StepStats> = steps.iter().copied().filter(|s| s.requests_ok > 0).collect();
    let mut chosen: Vec<&StepStats> = [
        measured.first().copied(),
        advice::knee_index(&measured).map(|k| measured[k]),
        measured.last().copied(),
    ]
    .into_iter()
    .flatten()
    .collect();
    chosen.dedup_by(|a, b| a.load == b.load);
    for (color, s) in chosen.into_iter().enumerate() {
        let Some(cdf) = &s.cdf else { continue };
        let pairs = match metric {
            SloMetric::Ttft => &cdf.ttft_ms,
            SloMetric::Itl => &cdf.itl_ms,
            SloMetric::Tpot => &cdf.tpot_ms,
            SloMetric::E2e => &cdf.e2e_ms,
        };
        if pairs.is_empty() {
            continue;
        }
        c.series.push(Series {
            name: load_label(cv.lang, s.load),
            points: pairs.iter().map(|[p, v]| Point::new(*v, *p)).collect(),
            color,
            dashed: false,
        });
    }
    c
}

fn charts_section(summary: &Summary, repeats: &[RepeatStats], lang: Lang) -> String {
    let cv = Curves::new(summary, repeats, lang);
    let slo = slo_of(summary);
    let min_tps = summary.config.get("min_tps").and_then(Value::as_f64);
    let mut charts = Vec::new();
    // A stress run has one step per test: its curves are over time, not over load.
    if summary.stress.is_none() {
        charts.push(throughput_chart(&cv, true));
        charts.push(throughput_chart(&cv, false));
        charts.push(per_conn_chart(&cv, min_tps));
        for (metric, key, name) in LATENCIES {
            charts.push(latency_chart(&cv, metric, key, name, slo.as_ref()));
        }
    }
    for (test, steps) in &cv.tests {
        for (metric, _, name) in [LATENCIES[0], LATENCIES[3]] {
            charts.push(cdf_chart(&cv, *test, steps, metric, name));
        }
    }
    let clock = super::series::RunClock::of(summary, lang);
    if let Some(stress) = &summary.stress {
        let sampled = summary.monitor.samples.iter().any(|s| s.in_flight.is_some());
        charts.extend(super::series::stress_charts(&stress.intervals, sampled, &clock));
    }
    if summary.stress.is_none() {
        charts.extend(super::series::timeline_charts(&summary.steps, &clock));
    }
    charts.extend(super::telemetry::server_charts(summary, &clock));
    charts.extend(super::telemetry::gpu_charts(summary, &clock));
    charts.extend(super::series::monitor_charts(summary, &clock));
    let mut out = format!("<section id=\"charts\"><h2>{}</h2>", t(lang, Msg::HtmlSecCharts));
    if !repeats.is_empty() {
        let runs = repeats.iter().map(|r| r.runs).max().unwrap_or(0);
        let _ = write!(
            out,
            "<p class=\"sub\">{}</p>",
            esc(&tr_in(lang, Msg::HtmlRepeatsNote, &[("runs", &runs)]))
        );
    }
    let drawn: Vec<String> = charts.iter().filter(|c| c.has_data()).map(Chart::render).collect();
    if drawn.is_empty() {
        let _ = write!(out, "<p>{}</p>", t(lang, Msg::HtmlNoCharts));
    } else {
        out.push_str("<div class=\"charts\">");
        for svg in drawn {
            let _ = write!(out, "<figure>{svg}</figure>");
        }
        out.push_str("</div>");
    }
    out.push_str("</section>");
    out
}

fn num(v: f64, decimals: usize) -> String {
    if v.is_finite() {
        format!("{v:.decimals$}")
    } else {
        "-".into()
    }
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or("-".into(), |v| num(v, decimals))
}

fn p50_p99(d: Option<Dist>) -> String {
    d.map_or("-".into(), |d| format!("{} / {}", num(d.p50, 1), num(d.p99, 1)))
}

/// A text cell longer than this wraps (messages, paths); shorter ones stay on one line.
const LONG_CELL: usize = 40;

/// A table: a header row and rows of plain-text cells (escaped here), the first `text_cols`
/// left-aligned.
pub(super) fn table(headers: &[String], rows: &[(Vec<String>, &str)], text_cols: usize) -> String {
    table_cols(headers, rows, &|i| i < text_cols)
}

/// A table whose columns `text(i)` are left-aligned text (wrapped when long).
pub(super) fn table_cols(headers: &[String], rows: &[(Vec<String>, &str)], text: &dyn Fn(usize) -> bool) -> String {
    let mut out = String::from("<div class=\"table-wrap\"><table><thead><tr>");
    for (i, h) in headers.iter().enumerate() {
        let class = if text(i) { " class=\"text\"" } else { "" };
        let _ = write!(out, "<th{class}>{}</th>", esc(h));
    }
    out.push_str("</tr></thead><tbody>");
    for (cells, row_class) in rows {
        let _ = write!(out, "<tr class=\"{row_class}\">");
        for (i, cell) in cells.iter().enumerate() {
            let class = match text(i) {
                true if cell.chars().count() > LONG_CELL => " class=\"text long\"",
                true => " class=\"text\"",
                false => "",
            };
            let _ = write!(out, "<td{class}>{}</td>", esc(cell));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div>");
    out
}

fn step_row(lang: Lang, s: &StepStats) -> Vec<String> {
    vec![
        s.test.name().to_string(),
        load_label(lang, s.load),
        s.requests_ok.to_string(),
        s.requests_failed.to_string(),
        num(s.output_throughput_tps, 1),
        num(s.prompt_throughput_tps, 1),
        num(s.request_throughput_rps, 2),
        opt(s.per_conn_tps.map(|p| p.mean), 1),
        p50_p99(s.ttft_ms),
        p50_p99(s.itl_ms),
        opt(s.tpot_ms.map(|d| d.p50), 1),
        p50_p99(s.e2e_ms),
        opt(s.slo_attainment_pct, 1),
        if s.client_bound {
            tr_in(lang, Msg::HtmlYes, &[])
        } else {
            String::new()
        },
    ]
}

fn step_headers(lang: Lang) -> Vec<String> {
    [
        Msg::HtmlColTest,
        Msg::HtmlColLoad,
        Msg::HtmlColOk,
        Msg::HtmlColFailed,
        Msg::HtmlColOutputTps,
        Msg::HtmlColPromptTps,
        Msg::HtmlColRps,
        Msg::HtmlColPerConn,
        Msg::HtmlColTtft,
        Msg::HtmlColItl,
        Msg::HtmlColTpot,
        Msg::HtmlColE2e,
        Msg::HtmlColSlo,
        Msg::HtmlColClientBound,
    ]
    .iter()
    .map(|&m| tr_in(lang, m, &[]))
    .collect()
}

fn tables_section(summary: &Summary, lang: Lang) -> String {
    let mut out = format!(
        "<section id=\"tables\"><h2>{}</h2><h3>{}</h3>",
        t(lang, Msg::HtmlSecTables),
        t(lang, Msg::HtmlStepsTable)
    );
    let windows: Vec<_> = summary
        .steps
        .iter()
        .map(|s| (s.server_metrics.as_ref(), s.gpu.as_ref()))
        .collect();
    let extra = Columns::of(&windows, lang);
    let rows: Vec<(Vec<String>, &str)> = summary
        .steps
        .iter()
        .map(|s| {
            let mut cells = step_row(lang, s);
            cells.extend(extra.cells(s.server_metrics.as_ref(), s.gpu.as_ref()));
            (cells, row_class(s))
        })
        .collect();
    let mut headers = step_headers(lang);
    headers.extend(extra.headers());
    out.push_str(&table(&headers, &rows, 2));
    if let Some(stress) = &summary.stress {
        let _ = write!(out, "<h3>{}</h3>", t(lang, Msg::HtmlIntervalsTable));
        out.push_str(&intervals_table(&stress.intervals, lang));
    }
    out.push_str("</section>");
    out
}

fn row_class(s: &StepStats) -> &'static str {
    if s.client_bound {
        "client-bound"
    } else {
        ""
    }
}

/// A row per test and interval; the interval's server and GPU figures (all tests together) on
/// its first row.
fn intervals_table(intervals: &[Interval], lang: Lang) -> String {
    let windows: Vec<_> = intervals
        .iter()
        .map(|i| (i.server_metrics.as_ref(), i.gpu.as_ref()))
        .collect();
    let extra = Columns::of(&windows, lang);
    let mut headers = vec![tr_in(lang, Msg::HtmlColInterval, &[])];
    headers.extend(step_headers(lang));
    headers.extend(extra.headers());
    let extra = &extra;
    let rows: Vec<(Vec<String>, &str)> = intervals
        .iter()
        .flat_map(|i| {
            i.tests.iter().enumerate().map(move |(k, s)| {
                let mut cells = vec![format!("{} ({:.0}–{:.0} s)", i.index + 1, i.start_s, i.end_s)];
                cells.extend(step_row(lang, s));
                cells.extend(match k {
                    0 => extra.cells(i.server_metrics.as_ref(), i.gpu.as_ref()),
                    _ => extra.blank(),
                });
                (cells, row_class(s))
            })
        })
        .collect();
    table(&headers, &rows, 3)
}

fn errors_section(steps: &[StepStats], lang: Lang) -> String {
    let mut out = format!("<section id=\"errors\"><h2>{}</h2>", t(lang, Msg::HtmlSecErrors));
    let counts: Vec<(Vec<String>, &str)> = steps
        .iter()
        .flat_map(|s| {
            s.errors
                .iter()
                .map(move |(class, n)| (vec![step_name(lang, s), class.clone(), n.to_string()], ""))
        })
        .collect();
    if counts.is_empty() {
        let _ = write!(out, "<p>{}</p></section>", t(lang, Msg::HtmlNoErrors));
        return out;
    }
    let headers: Vec<String> = [Msg::HtmlColStep, Msg::HtmlColClass, Msg::HtmlColCount]
        .iter()
        .map(|&m| tr_in(lang, m, &[]))
        .collect();
    out.push_str(&table(&headers, &counts, 2));
    let samples: Vec<(Vec<String>, &str)> = steps
        .iter()
        .flat_map(|s| {
            s.error_samples.iter().map(move |e| {
                (
                    vec![
                        step_name(lang, s),
                        e.class.clone(),
                        e.message.clone(),
                        e.count.to_string(),
                    ],
                    "",
                )
            })
        })
        .collect();
    if !samples.is_empty() {
        let _ = write!(out, "<h3>{}</h3>", t(lang, Msg::HtmlErrorSamples));
        let headers: Vec<String> = [
            Msg::HtmlColStep,
            Msg::HtmlColClass,
            Msg::HtmlColMessage,
            Msg::HtmlColCount,
        ]
        .iter()
        .map(|&m| tr_in(lang, m, &[]))
        .collect();
        out.push_str(&table(&headers, &samples, 3));
    }
    out.push_str("</section>");
    out
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::summary;
    use super::super::{RepeatFigure, RepeatStats};
    use super::*;

    /// Tags a page may contain; anything else means text got in unescaped.
    fn tags(html: &str) -> Vec<String> {
        let mut names: Vec<String> = html
            .split('<')
            .skip(1)
            .map(|rest| {
                rest.trim_start_matches('/')
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '!')
                    .collect::<String>()
            })
            .collect();
        names.sort();
        names.dedup();
        names
    }

    #[test]
    fn the_page_has_its_sections_in_order_and_no_external_reference() {
        let html = render_report(&summary(6), Lang::En);
        let at = |id: &str| {
            html.find(&format!("<section id=\"{id}\""))
                .unwrap_or_else(|| panic!("{id}"))
        };
        assert!(at("run") < at("answers") && at("answers") < at("charts"));
        assert!(at("charts") < at("tables") && at("tables") < at("errors"));
        assert!(html.starts_with("<!DOCTYPE html>") && html.contains("<html lang=\"en\">"));
        assert!(!html.contains("<script") && !html.contains("<link") && !html.contains("<img"));
        for tag in html.split('<').skip(1).map(|rest| rest.split('>').next().unwrap_or("")) {
            for attribute in ["src=", "href=", "xlink:", "url(", "@import"] {
                assert!(!tag.contains(attribute), "<{tag}>");
            }
        }
        let style = html.split("<style>").nth(1).unwrap().split("</style>").next().unwrap();
        assert!(!style.contains("url(") && !style.contains("@import") && !style.contains("@font-face"));
        // Credentials and a key in the URL are not shown.
        assert!(html.contains("https://example.com/v1?api_key=REDACTED"));
        assert!(!html.contains("secret@") && !html.contains("sk-live-123"));
    }

    #[test]
    fn untrusted_text_is_escaped_everywhere() {
        let html = render_report(&summary(4), Lang::En);
        let allowed = [
            "!DOCTYPE", "body", "circle", "dd", "div", "dl", "dt", "figure", "footer", "g", "h1", "h2", "h3", "head",
            "header", "html", "li", "line", "meta", "p", "path", "polyline", "rect", "section", "style", "svg",
            "table", "tbody", "td", "text", "th", "thead", "title", "tr", "ul",
        ];
        for tag in tags(&html) {
            assert!(allowed.contains(&tag.as_str()), "unexpected <{tag}>");
        }
        assert_eq!(html.matches("</style>").count(), 1, "only the page's own style ends");
        assert!(!html.contains("]]>"));
        // The model name, the error message and the recommendation are all there, escaped.
        assert!(html.matches("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;").count() >= 3);
    }

    #[test]
    fn charts_mark_the_knee_the_best_point_and_the_limits() {
        let html = render_report(&summary(12), Lang::En);
        assert!(html.contains("class=\"mark knee\""), "the knee is marked");
        assert!(html.contains("class=\"mark best\""));
        assert!(html.contains("<g class=\"slo-line\">") && html.contains("SLO ttft p99 ≤ 200 ms"));
        assert!(
            html.contains("SLO e2e ≤ 5000 ms"),
            "a per-request objective is drawn too"
        );
        assert!(html.contains("<g class=\"min-tps-line\">") && html.contains("--min-tps 30.0 tok/s"));
        assert!(html.contains("<rect class=\"band\""), "the client-bound step is shaded");
        assert!(
            html.contains("class=\"step-boundary\""),
            "monitor charts show step starts"
        );
        assert!(html.contains("concurrency (connections)") && html.contains("throughput (tokens/s)"));
        // Throughput ×2 (prompt, output), speed, 4 latencies, 2 CDFs per test, CPU, in flight,
        // temperature.
        assert_eq!(html.matches("<svg class=\"chart\"").count(), 14);
    }

    #[test]
    fn the_knee_is_where_the_recommendations_put_it() {
        let s = summary(12);
        let curve = curve(&s.steps, TestKind::Output, LoadAxis::Concurrency);
        let k = advice::knee_index(&curve).expect("a knee");
        assert_eq!(curve[k].load, LoadPoint::Concurrency(64));
        let cv = Curves::new(&s, &[], Lang::En);
        let chart = throughput_chart(&cv, false);
        let knee = chart.marks.iter().find(|m| m.kind == MarkKind::Knee).unwrap();
        assert_eq!(knee.x, 64.0);
    }

    #[test]
    fn rate_steps_are_labelled_as_rates() {
        let mut s = summary(3);
        for step in &mut s.steps {
            step.load = LoadPoint::Rate(step.load.value() / 4.0);
        }
        let html = render_report(&s, Lang::En);
        assert!(html.contains("request rate (req/s)") && !html.contains("concurrency (connections)"));
    }

    #[test]
    fn repeats_draw_error_bars() {
        let s = summary(3);
        let repeats = vec![RepeatStats {
            test: TestKind::Output,
            load: LoadPoint::Concurrency(16),
            runs: 3,
            figures: [(
                "output_throughput_tps".to_string(),
                RepeatFigure {
                    mean: 640.0,
                    ci95_low: 600.0,
                    ci95_high: 680.0,
                },
            )]
            .into(),
        }];
        let html = charts_section(&s, &repeats, Lang::En);
        assert_eq!(html.matches("class=\"error-bar\"").count(), 1);
        assert!(html.contains("95% confidence interval over 3 repeats"));
        let none = charts_section(&s, &[], Lang::En);
        assert!(!none.contains("class=\"error-bar\""));
    }

    #[test]
    fn repeats_are_read_from_the_serialised_summary() {
        assert!(repeats_of(&summary(2)).is_empty());
        let value = serde_json::json!([{"test": "output", "load": {"kind": "concurrency", "value": 16}, "runs": 3,
            "figures": {"output_throughput_tps": {"mean": 812.4, "ci95_low": 790.1, "ci95_high": 834.7, "std": 9.0, "values": [800.0]}}}]);
        let parsed: Vec<RepeatStats> = serde_json::from_value(value).unwrap();
        assert_eq!(parsed[0].figures["output_throughput_tps"].ci95_high, 834.7);
    }

    #[test]
    fn a_thirty_step_run_stays_small() {
        let html = render_report(&summary(30), Lang::En);
        assert!(html.len() < 2_000_000, "{} bytes", html.len());
        eprintln!("report.html of a 30-step run (2 tests): {} KB", html.len() / 1024);
    }

    #[test]
    fn chinese_pages_are_chinese() {
        let html = render_report(&summary(3), Lang::Zh);
        assert!(html.contains("<html lang=\"zh-CN\">"));
        assert!(html.contains("测试内容") && html.contains("并发数（连接）") && html.contains("拐点"));
    }

    #[test]
    fn timed_steps_are_drawn_over_the_run() {
        let mut s = summary(3);
        for step in &mut s.steps {
            let w = step.window.unwrap();
            let mut t = crate::metrics::timeline::Timeline::new(w);
            t.add_completed(w.start_s + 0.5);
            t.add_tokens(w.start_s + 0.5, 40.0);
            t.add_failed(w.start_s + 1.5);
            step.timeline = Some(t);
        }
        let html = render_report(&s, Lang::En);
        assert!(html.contains("Output tokens per second during the steps"));
        assert!(html.contains("Requests per second during the steps") && html.contains("output failed"));
        // 15 charts, and the monitor's in-flight count over the run.
        assert!(html.contains("Requests in flight over the run"));
        assert_eq!(html.matches("<svg class=\"chart\"").count(), 16);
    }

    #[test]
    fn an_empty_run_says_so() {
        let html = render_report(&Summary::default(), Lang::En);
        assert!(html.contains("No step measured anything to draw.") && html.contains("No request failed."));
    }
}
