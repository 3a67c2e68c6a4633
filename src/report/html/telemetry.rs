//! The server's and the GPUs' telemetry in `report.html`: their series over the run (on the
//! same clock and x range as the other charts over time), their figures per step and per stress
//! interval as extra table columns, and the list of telemetry sources. A source that was not
//! read draws nothing: no chart, no column, never zeros.

use super::page::table_cols;
use super::series::RunClock;
use super::svg::{Band, Chart, Point, Series, THROTTLED_BAND};
use super::{clean_url, t};
use crate::i18n::{tr_in, Lang, Msg};
use crate::monitor::window::{GpuPoint, TokenCheck};
use crate::monitor::{GpuWindow, ServerWindow};
use crate::report::Summary;
use std::fmt::Write;

/// A series of the points that have the figure; `None` when none has it.
fn line<P>(
    clock: &RunClock,
    name: Msg,
    color: usize,
    points: &[P],
    at: fn(&P) -> f64,
    figure: fn(&P) -> Option<f64>,
) -> Option<Series> {
    let points: Vec<Point> = points
        .iter()
        .filter_map(|p| figure(p).map(|y| Point::new(at(p), y)))
        .collect();
    (!points.is_empty()).then(|| Series {
        name: tr_in(clock.lang, name, &[]),
        points,
        color,
        dashed: false,
    })
}

/// The server over the run (`monitor.server`): requests running and waiting, and the KV
/// cache's use in a chart of its own (0–100%).
pub fn server_charts(summary: &Summary, clock: &RunClock) -> Vec<Chart> {
    let points = &summary.monitor.server;
    if points.is_empty() {
        return Vec::new();
    }
    let mut queue = clock.frame(Msg::HtmlChartServerQueue, Msg::HtmlAxisServerRequests);
    queue.id = Some("chart-server");
    queue.series.extend(line(
        clock,
        Msg::HtmlSeriesRunning,
        0,
        points,
        |p| p.t_s,
        |p| p.requests_running,
    ));
    queue.series.extend(line(
        clock,
        Msg::HtmlSeriesWaiting,
        1,
        points,
        |p| p.t_s,
        |p| p.requests_waiting,
    ));
    let mut kv = clock.frame(Msg::HtmlChartServerKv, Msg::HtmlAxisKvCache);
    kv.id = Some("chart-server-kv");
    kv.y_range = Some((0.0, 100.0));
    kv.series.extend(line(
        clock,
        Msg::HtmlSeriesKvCache,
        2,
        points,
        |p| p.t_s,
        |p| p.kv_cache_usage_pct,
    ));
    vec![queue, kv]
}

/// Consecutive samples in which a GPU was slowed for power or heat, each as one band: from the
/// first such sample to the next sample that was not (or the last sample).
fn throttled_bands(points: &[GpuPoint], lang: Lang) -> Vec<Band> {
    let label = tr_in(lang, Msg::HtmlThrottledBand, &[]);
    let mut bands: Vec<Band> = Vec::new();
    let mut from: Option<f64> = None;
    for p in points {
        match (p.throttled, from) {
            (true, None) => from = Some(p.t_s),
            (false, Some(start)) => {
                bands.push(Band {
                    from: start,
                    to: p.t_s,
                    label: label.clone(),
                    class: THROTTLED_BAND,
                });
                from = None;
            }
            _ => {}
        }
    }
    if let (Some(start), Some(last)) = (from, points.last()) {
        bands.push(Band {
            from: start,
            to: last.t_s,
            label,
            class: THROTTLED_BAND,
        });
    }
    bands
}

/// The GPUs over the run (`monitor.gpu`), as small multiples: power (summed), temperature
/// (the hottest), utilisation (the mean, 0–100%), throttled periods shaded in each.
pub fn gpu_charts(summary: &Summary, clock: &RunClock) -> Vec<Chart> {
    let points = &summary.monitor.gpu;
    if points.is_empty() {
        return Vec::new();
    }
    let throttled = throttled_bands(points, clock.lang);
    let chart = |id: &'static str, title: Msg, y: Msg, series: Option<Series>| {
        let mut c = clock.frame(title, y);
        c.id = Some(id);
        c.bands.extend(throttled.iter().cloned());
        c.series.extend(series);
        c
    };
    let mut utilization = chart(
        "chart-gpu-utilization",
        Msg::HtmlChartGpuUtilization,
        Msg::HtmlAxisGpuUtilization,
        line(
            clock,
            Msg::HtmlSeriesGpuMean,
            2,
            points,
            |p| p.t_s,
            |p| p.utilization_pct,
        ),
    );
    utilization.y_range = Some((0.0, 100.0));
    vec![
        chart(
            "chart-gpu",
            Msg::HtmlChartGpuPower,
            Msg::HtmlAxisGpuPower,
            line(clock, Msg::HtmlSeriesGpuSum, 0, points, |p| p.t_s, |p| p.power_w),
        ),
        chart(
            "chart-gpu-temperature",
            Msg::HtmlChartGpuTemperature,
            Msg::HtmlAxisTemperature,
            line(
                clock,
                Msg::HtmlSeriesGpuHottest,
                3,
                points,
                |p| p.t_s,
                |p| p.temperature_c,
            ),
        ),
        utilization,
    ]
}

/// One telemetry column of the steps' and the intervals' tables: its header and its cell.
type Cell = fn(Option<&ServerWindow>, Option<&GpuWindow>, Lang) -> Option<String>;

fn fixed(v: f64, decimals: usize) -> Option<String> {
    v.is_finite().then(|| format!("{v:.decimals$}"))
}

fn all_columns() -> [(Msg, Cell); 8] {
    [
        (Msg::HtmlColServerQueueMax, |s, _, _| {
            s?.requests_waiting.and_then(|w| fixed(w.max, 0))
        }),
        (Msg::HtmlColKvMax, |s, _, _| {
            s?.kv_cache_usage_pct.and_then(|k| fixed(k.max, 1))
        }),
        (Msg::HtmlColPrefixHits, |s, _, _| {
            s?.prefix_cache_hit_pct.and_then(|p| fixed(p, 1))
        }),
        (Msg::HtmlColServerTtft, |s, _, _| {
            s?.ttft_ms.and_then(|t| fixed(t.p50, 1))
        }),
        (Msg::HtmlColTokenCheck, |s, _, lang| {
            s?.token_check.as_ref().map(|c| token_check(c, lang))
        }),
        (Msg::HtmlColEnergy, |_, g, _| {
            g?.energy_j.and_then(|j| fixed(j / 1000.0, 2))
        }),
        (Msg::HtmlColTokPerJoule, |_, g, _| {
            g?.tokens_per_joule.and_then(|v| fixed(v, 2))
        }),
        (Msg::HtmlColJoulePerRequest, |_, g, _| {
            g?.joules_per_request.and_then(|v| fixed(v, 1))
        }),
    ]
}

/// "✓ agrees", or "✗ differs: prompt +3.1%, generated −0.4%".
fn token_check(c: &TokenCheck, lang: Lang) -> String {
    if !c.mismatch {
        return tr_in(lang, Msg::HtmlTokenCheckOk, &[]);
    }
    let mut diffs = Vec::new();
    if let Some(d) = c.prompt_diff_pct {
        diffs.push(tr_in(lang, Msg::HtmlTokenDiffPrompt, &[("pct", &format!("{d:+.1}"))]));
    }
    if let Some(d) = c.generation_diff_pct {
        diffs.push(tr_in(
            lang,
            Msg::HtmlTokenDiffGenerated,
            &[("pct", &format!("{d:+.1}"))],
        ));
    }
    tr_in(lang, Msg::HtmlTokenCheckMismatch, &[("diffs", &diffs.join(", "))])
}

/// The telemetry columns of a table: those that at least one row fills.
pub struct Columns {
    lang: Lang,
    columns: Vec<(Msg, Cell)>,
}

impl Columns {
    pub fn of<'a>(windows: &[(Option<&'a ServerWindow>, Option<&'a GpuWindow>)], lang: Lang) -> Self {
        let columns = all_columns()
            .into_iter()
            .filter(|(_, cell)| windows.iter().any(|(s, g)| cell(*s, *g, lang).is_some()))
            .collect();
        Self { lang, columns }
    }

    pub fn headers(&self) -> Vec<String> {
        self.columns.iter().map(|(m, _)| tr_in(self.lang, *m, &[])).collect()
    }

    /// One row's cells, `-` where the row lacks a figure.
    pub fn cells(&self, server: Option<&ServerWindow>, gpu: Option<&GpuWindow>) -> Vec<String> {
        self.columns
            .iter()
            .map(|(_, cell)| cell(server, gpu, self.lang).unwrap_or_else(|| "-".into()))
            .collect()
    }

    /// Empty cells, for the rows after an interval's first (its figures cover all tests).
    pub fn blank(&self) -> Vec<String> {
        vec![String::new(); self.columns.len()]
    }
}

/// "Telemetry sources" (`monitor.sources`): what each source read, how often, samples taken
/// and skipped, and why. The text each source reports (a URL, a reason) is escaped.
pub fn sources(summary: &Summary, lang: Lang) -> String {
    let sources = &summary.monitor.sources;
    if sources.is_empty() {
        return String::new();
    }
    let headers: Vec<String> = [
        Msg::HtmlColSource,
        Msg::HtmlColSourceKind,
        Msg::HtmlColSourceAbout,
        Msg::HtmlColSkipReason,
        Msg::HtmlColSourceInterval,
        Msg::HtmlColSamples,
        Msg::HtmlColSkipped,
    ]
    .iter()
    .map(|&m| tr_in(lang, m, &[]))
    .collect();
    let rows: Vec<(Vec<String>, &str)> = sources
        .iter()
        .map(|s| {
            // A URL loses its credentials; other text (a driver's description) is shown whole.
            let about = s.about.as_deref().map_or("-".into(), |a| match a.contains("://") {
                true => clean_url(a),
                false => a.to_string(),
            });
            let cells = vec![
                s.name.clone(),
                s.kind.clone(),
                about,
                s.skip_reason.clone().unwrap_or_else(|| "-".into()),
                format!("{}", s.interval_s),
                s.samples.to_string(),
                s.skipped.to_string(),
            ];
            (cells, if s.skipped > 0 { "skipped" } else { "" })
        })
        .collect();
    let mut out = String::from("<div id=\"telemetry-sources\">");
    let _ = write!(out, "<h3>{}</h3>", t(lang, Msg::HtmlSourcesTitle));
    out.push_str(&table_cols(&headers, &rows, &|i| i < 4));
    out.push_str("</div>");
    out
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{summary, with_telemetry, EVIL};
    use super::super::render_report;
    use super::*;

    /// The `<svg>` element whose id is `id`.
    fn svg<'a>(html: &'a str, id: &str) -> &'a str {
        let at = html.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no {id}"));
        let start = html[..at].rfind("<svg").unwrap();
        &html[start..start + html[start..].find("</svg>").unwrap()]
    }

    fn x_axis(svg: &str) -> &str {
        let at = svg.find("<g class=\"axis x-axis\">").unwrap();
        &svg[at..at + svg[at..].find("</g>").unwrap()]
    }

    const IDS: [&str; 5] = [
        "chart-server",
        "chart-server-kv",
        "chart-gpu",
        "chart-gpu-temperature",
        "chart-gpu-utilization",
    ];

    #[test]
    fn telemetry_draws_its_charts_on_the_run_clock() {
        let html = render_report(&with_telemetry(6), Lang::En);
        for id in IDS {
            let chart = svg(&html, id);
            assert!(chart.contains("class=\"step-boundary\""), "{id} marks the steps");
            assert!(chart.contains("<g class=\"series\""), "{id}");
        }
        let server = svg(&html, "chart-server");
        assert!(server.contains("data-name=\"running\"") && server.contains("data-name=\"waiting\""));
        assert!(server.contains("<title>running: "), "points have hover values");
        for id in ["chart-gpu", "chart-gpu-temperature", "chart-gpu-utilization"] {
            let chart = svg(&html, id);
            assert_eq!(
                chart.matches("<rect class=\"band throttled\"").count(),
                2,
                "{id}: band and legend"
            );
            assert!(chart.contains("a GPU slowed for power or heat"));
        }
        // One x axis for every chart over the run: the CPU's, the server's and the GPUs'.
        let cpu = &html[html.find("Client CPU over the run").unwrap()..];
        let cpu = &cpu[..cpu.find("</svg>").unwrap()];
        for id in IDS {
            assert_eq!(x_axis(svg(&html, id)), x_axis(cpu), "{id}");
        }
        // 14 charts without telemetry, and 5 more.
        assert_eq!(html.matches("<svg class=\"chart\"").count(), 19);
    }

    #[test]
    fn steps_get_the_columns_their_windows_fill() {
        let html = render_report(&with_telemetry(3), Lang::En);
        for header in [
            "server queue max",
            "KV cache max (%)",
            "prefix-cache hits (%)",
            "server TTFT p50 (ms)",
            "server token count",
            "GPU energy (kJ)",
            "tok/J",
            "J/request",
        ] {
            assert!(html.contains(&format!("<th>{header}</th>")), "{header}");
        }
        assert!(html.contains("<td>42.5</td>") && html.contains("<td>61.2</td>") && html.contains("<td>17.5</td>"));
        assert!(html.contains("<td>12.35</td>") && html.contains("<td>0.75</td>") && html.contains("<td>123.4</td>"));
        assert!(html.contains("<td>✓ agrees</td>"));
        assert_eq!(
            html.matches("<td>✗ differs: prompt +3.5%, generated +0.0%</td>")
                .count(),
            1
        );
        // A step without figures: its cells say so; the columns stay.
        let mut s = with_telemetry(3);
        s.steps[0].gpu = None;
        let html = render_report(&s, Lang::En);
        assert!(html.contains("<th>GPU energy (kJ)</th>"));
        // Only the server: no energy column.
        for step in &mut s.steps {
            step.gpu = None;
        }
        let html = render_report(&s, Lang::En);
        assert!(!html.contains("GPU energy") && !html.contains("tok/J") && html.contains("server queue max"));
    }

    #[test]
    fn without_telemetry_nothing_is_drawn() {
        let html = render_report(&summary(6), Lang::En);
        for id in IDS.iter().chain(&["telemetry-sources"]) {
            assert!(!html.contains(&format!("id=\"{id}\"")), "{id}");
        }
        for text in [
            "server queue max",
            "GPU energy",
            "tok/J",
            "<rect class=\"band throttled\"",
            "Telemetry sources",
        ] {
            assert!(!html.contains(text), "{text}");
        }
        // A source that sampled nothing of one kind draws no chart of it.
        let mut s = with_telemetry(3);
        for p in &mut s.monitor.server {
            p.kv_cache_usage_pct = None;
        }
        s.monitor.gpu.clear();
        let html = render_report(&s, Lang::En);
        assert!(html.contains("id=\"chart-server\"") && !html.contains("id=\"chart-server-kv\""));
        assert!(!html.contains("id=\"chart-gpu"));
    }

    #[test]
    fn sources_are_listed_and_their_text_escaped() {
        let html = render_report(&with_telemetry(3), Lang::En);
        let run = &html[html.find("<section id=\"run\"").unwrap()..html.find("<section id=\"answers\"").unwrap()];
        let list = &run[run.find("<div id=\"telemetry-sources\">").unwrap()..];
        assert!(list.contains("Telemetry sources") && list.contains("<td class=\"text\">prometheus</td>"));
        assert!(
            list.contains("http://h:8000/metrics?x=&lt;script&gt;"),
            "no credentials, escaped"
        );
        assert!(!list.contains("pw@"));
        assert!(list.contains("HTTP 500 &lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&lt;/style&gt;"));
        assert!(list.contains("dcgm &lt;script&gt;"));
        assert!(!html.contains(EVIL) && !html.contains("<script") && html.matches("</style>").count() == 1);
    }

    #[test]
    fn stress_intervals_carry_their_windows_on_the_first_row() {
        use crate::report::summary::{Interval, StressReport};
        let mut s = with_telemetry(2);
        let tests: Vec<_> = s.steps[..2].to_vec();
        let server = tests[0].server_metrics.clone();
        let gpu = tests[0].gpu.clone();
        s.stress = Some(StressReport {
            intervals: (0..3)
                .map(|i| Interval {
                    index: i,
                    start_s: i as f64 * 10.0,
                    end_s: i as f64 * 10.0 + 10.0,
                    tests: tests.clone(),
                    server_metrics: server.clone(),
                    gpu: gpu.clone(),
                })
                .collect(),
            drift: Vec::new(),
        });
        let html = render_report(&s, Lang::En);
        let table = &html[html.find("Report intervals").unwrap()..];
        assert!(table.contains("<th>server queue max</th>") && table.contains("<th>J/request</th>"));
        // Two tests an interval: the interval's figures once.
        assert_eq!(table.matches("<td>123.4</td>").count(), 3);
        assert!(html.contains("id=\"chart-server\"") && html.contains("TTFT p99 over time"));
    }

    #[test]
    fn throttled_samples_become_bands() {
        let p = |t_s: f64, throttled: bool| GpuPoint {
            t_s,
            throttled,
            ..GpuPoint::default()
        };
        let points = [p(0.0, false), p(1.0, true), p(2.0, true), p(3.0, false), p(4.0, true)];
        let bands: Vec<(f64, f64)> = throttled_bands(&points, Lang::En)
            .iter()
            .map(|b| (b.from, b.to))
            .collect();
        assert_eq!(bands, vec![(1.0, 3.0), (4.0, 4.0)]);
        assert!(throttled_bands(&[p(0.0, false)], Lang::En).is_empty());
    }

    #[test]
    fn chinese_telemetry_is_chinese() {
        let html = render_report(&with_telemetry(2), Lang::Zh);
        assert!(html.contains("服务器运行中与排队的请求数随时间变化") && html.contains("遥测来源"));
        assert!(html.contains("GPU 功耗随时间变化") && html.contains("✓ 一致"));
    }
}
