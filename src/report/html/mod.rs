//! `report.html` and `compare.html`: one self-contained page each — inline CSS and inline SVG,
//! no script, no font, no style or picture fetched from anywhere — readable from disk with no
//! network. Hover values come from SVG `<title>` elements, which browsers show with no script.
//!
//! **Why our own SVG writer, not plotters.** The charts are line charts on linear axes with a
//! few markers, rules, bands and error bars: about 400 lines of [`svg`]. plotters (even with only
//! its SVG backend) adds a dozen crates to a build that already takes minutes on two cores, and
//! its text layout measures strings through a font backend (`ttf`/`ab_glyph` features, or a
//! system font lookup) to place labels — a font we would have to ship or find at run time,
//! whereas the browser lays out our `<text>` elements itself, CJK labels included. Its SVG
//! output also carries absolute pixel sizes and inline styles we would restyle for print. A
//! writer of our own is smaller, has no dependency, and every string in it is escaped at one
//! place ([`esc`]).
//!
//! Every sentence and label comes from the catalogue (section "report.html and compare.html" in
//! `src/i18n/messages.rs`). Everything from the server or the run (model names, error
//! messages, URLs, run labels) is untrusted text and goes through [`esc`].
//!
//! Which chart shows which `summary.json` key: docs/metrics.md, "The HTML report".

mod compare;
mod page;
mod series;
pub mod svg;
mod telemetry;

pub use compare::render_compare;
pub use page::render_report;

use crate::i18n::{tr_in, Lang, Msg};
use std::path::Path;

/// Escapes text for HTML text and attribute values (and SVG): `& < > " '`.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A message with no placeholders, escaped.
fn t(lang: Lang, msg: Msg) -> String {
    esc(&tr_in(lang, msg, &[]))
}

/// A server URL as the page shows it: no `user:pass@`, and the value of any query parameter
/// whose name looks like a secret (`key`, `token`, `secret`, `password`, `auth`, `sig`)
/// replaced by `REDACTED`.
pub fn clean_url(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => (&url[..i + 3], &url[i + 3..]),
        None => ("", url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (path, query) = match tail.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (tail, None),
    };
    let mut out = format!("{scheme}{host}{path}");
    if let Some(query) = query {
        let (query, fragment) = query.split_once('#').map_or((query, None), |(q, f)| (q, Some(f)));
        let params: Vec<String> = query
            .split('&')
            .map(|param| match param.split_once('=') {
                Some((name, _)) if secret_like(name) => format!("{name}=REDACTED"),
                _ => param.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
        if let Some(f) = fragment {
            out.push('#');
            out.push_str(f);
        }
    }
    out
}

fn secret_like(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "key",
        "token",
        "secret",
        "password",
        "passwd",
        "auth",
        "sig",
        "credential",
    ]
    .iter()
    .any(|w| name.contains(w))
}

/// Writes `report.html` into `dir` atomically (temp file + rename), in the process's language.
pub fn write_report(dir: &Path, summary: &crate::report::Summary) -> Result<(), String> {
    let html = render_report(summary, crate::i18n::lang());
    let path = dir.join("report.html");
    let tmp = dir.join(".report.html.tmp");
    std::fs::write(&tmp, html)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// `summary.json` → `repeats` (written by `--repeat N`), read from the serialised summary so
/// the page needs no field of its own in [`crate::report::Summary`].
#[derive(Debug, Clone, serde::Deserialize)]
pub struct RepeatStats {
    pub test: crate::workload::TestKind,
    pub load: crate::load::LoadPoint,
    pub runs: u32,
    #[serde(default)]
    pub figures: std::collections::BTreeMap<String, RepeatFigure>,
}

/// Mean and 95% confidence interval of one figure over a step's repeats.
#[derive(Debug, Clone, Copy, serde::Deserialize)]
pub struct RepeatFigure {
    pub mean: f64,
    pub ci95_low: f64,
    pub ci95_high: f64,
}

/// The repeats of a summary; empty without `--repeat`.
pub fn repeats_of(summary: &crate::report::Summary) -> Vec<RepeatStats> {
    serde_json::to_value(summary)
        .ok()
        .and_then(|mut v| v.get_mut("repeats").map(serde_json::Value::take))
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default()
}

/// The page's style: screen and print, no external font.
const STYLE: &str = r#"
:root { --ink: #1b1f24; --muted: #5b6470; --line: #d0d7de; --bg: #ffffff; --soft: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1200px; padding: 16px 24px 48px; color: var(--ink); background: var(--bg);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Noto Sans CJK SC", "Microsoft YaHei", sans-serif; }
h1 { font-size: 22px; margin: 8px 0 4px; }
h2 { font-size: 18px; margin: 28px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 15px; margin: 16px 0 6px; }
.sub { color: var(--muted); margin: 0 0 12px; }
dl.run { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0; }
dl.run dt { color: var(--muted); }
dl.run dd { margin: 0; overflow-wrap: anywhere; }
ul.answers { padding-left: 20px; margin: 6px 0; }
ul.answers li { margin: 3px 0; }
.warn { color: #9a3412; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 16px; }
figure { margin: 0; border: 1px solid var(--line); border-radius: 6px; padding: 6px; background: var(--bg); break-inside: avoid; }
svg.chart { width: 100%; height: auto; display: block; font-size: 12px; }
svg .chart-title { font-size: 14px; font-weight: 600; fill: var(--ink); }
svg text { fill: var(--ink); }
svg .axis text { fill: var(--muted); }
svg .axis-label { font-size: 12px; fill: var(--ink) !important; }
svg .grid { stroke: #eaeef2; stroke-width: 1; }
svg .axis-line { stroke: #8c959f; stroke-width: 1; }
svg .series circle { stroke: none; }
svg .error-bar { fill: none; stroke-width: 1.5; }
svg .band { fill: #fde68a; opacity: 0.55; }
svg .band.throttled { fill: #fca5a5; opacity: 0.45; }
svg .slo-line line { stroke: #b91c1c; stroke-width: 1.5; stroke-dasharray: 6 4; }
svg .slo-line text { fill: #b91c1c; font-size: 11px; }
svg .min-tps-line line { stroke: #047857; stroke-width: 1.5; stroke-dasharray: 6 4; }
svg .min-tps-line text { fill: #047857; font-size: 11px; }
svg .step-boundary line { stroke: #8c959f; stroke-width: 1; stroke-dasharray: 2 3; }
svg .mark path, svg .mark circle { fill: none; stroke: var(--ink); stroke-width: 2; }
svg .mark.best circle { stroke: #047857; }
svg .mark text { font-size: 11px; font-weight: 600; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 12px; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: right; white-space: nowrap; }
th { background: var(--soft); font-weight: 600; }
td.text, th.text { text-align: left; }
td.long { white-space: normal; overflow-wrap: break-word; min-width: 24em; max-width: 60em; }
tr.client-bound td { background: #fffbeb; }
tr.skipped td { background: #fff7ed; }
.table-wrap { overflow-x: auto; }
.verdict-better { color: #047857; font-weight: 600; }
.verdict-worse { color: #b91c1c; font-weight: 600; }
.verdict-within_noise { color: var(--muted); }
.verdict-unknown { color: var(--muted); font-style: italic; }
footer { margin-top: 32px; color: var(--muted); font-size: 12px; }
@media print {
  body { max-width: none; padding: 0; font-size: 11px; }
  .charts { display: block; }
  figure { margin: 0 0 10px; border: none; page-break-inside: avoid; }
  h2 { page-break-after: avoid; }
  .table-wrap { overflow: visible; }
  th, td { padding: 2px 4px; white-space: normal; }
  tr { page-break-inside: avoid; }
}
"#;

/// The document around a body: `<html lang>`, the title, the style.
fn document(lang: Lang, title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"{}\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n",
        lang.code(),
        esc(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_text_and_attributes() {
        assert_eq!(
            esc(r#"<script>alert(1)</script> "a" 'b' & </style> ]]>"#),
            "&lt;script&gt;alert(1)&lt;/script&gt; &quot;a&quot; &#39;b&#39; &amp; &lt;/style&gt; ]]&gt;"
        );
    }

    #[test]
    fn urls_lose_credentials_and_secret_parameters() {
        for (url, clean) in [
            ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1"),
            ("https://user:pa55@example.com/v1", "https://example.com/v1"),
            (
                "https://u@h:1/v1?api_key=sk-123&x=1",
                "https://h:1/v1?api_key=REDACTED&x=1",
            ),
            ("http://h/v1?token=abc#frag", "http://h/v1?token=REDACTED#frag"),
            ("h:8000", "h:8000"),
        ] {
            assert_eq!(clean_url(url), clean, "{url}");
        }
    }
}

/// Synthetic summaries for the page tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use crate::load::LoadPoint;
    use crate::metrics::dist::Cdf;
    use crate::metrics::step::{ErrorSample, Window};
    use crate::metrics::{Dist, Spread, StepStats};
    use crate::monitor::Sample;
    use crate::report::Summary;
    use crate::workload::TestKind;

    /// Text that would break out of the page if it were not escaped.
    pub const EVIL: &str = r#"<script>alert(1)</script>"'</style>]]><img src=x>"#;

    fn dist(base: f64) -> Dist {
        Dist {
            count: 100,
            mean: base * 1.1,
            p50: base,
            p90: base * 1.5,
            p99: base * 2.0,
            min: base * 0.5,
            max: base * 3.0,
            std: base * 0.4,
        }
    }

    fn cdf(base: f64) -> Vec<[f64; 2]> {
        crate::metrics::dist::CDF_PERCENTILES
            .iter()
            .map(|&p| [p, base * (0.5 + p / 40.0)])
            .collect()
    }

    /// One step: throughput grows until concurrency 64, then stays flat (the knee).
    pub fn step(test: TestKind, n: u32, t0: f64) -> StepStats {
        let c = f64::from(n);
        let tps = 40.0 * c.min(64.0);
        let ttft = 20.0 + c.max(64.0) - 64.0 + 5.0;
        StepStats {
            test,
            load: LoadPoint::Concurrency(n),
            concurrency: Some(n),
            measured_over: "window".into(),
            window: Some(Window {
                start_s: t0,
                end_s: t0 + 10.0,
            }),
            requests_ok: 100,
            duration_s: 10.0,
            output_throughput_tps: tps,
            prompt_throughput_tps: tps * 10.0,
            request_throughput_rps: tps / 64.0,
            per_conn_tps: Some(Spread {
                count: 100,
                mean: tps / c,
                std: 1.0,
                min: 1.0,
                max: 2.0,
            }),
            ttft_ms: Some(dist(ttft)),
            itl_ms: (test != TestKind::Input).then(|| dist(10.0)),
            tpot_ms: (test != TestKind::Input).then(|| dist(10.0)),
            e2e_ms: Some(dist(ttft * 20.0)),
            max_in_flight: u64::from(n),
            cdf: Some(Cdf {
                ttft_ms: cdf(ttft),
                e2e_ms: cdf(ttft * 20.0),
                ..Cdf::default()
            }),
            ..StepStats::default()
        }
    }

    /// A step run of `points` load points of the input and output tests, with a client-bound
    /// step, errors whose message is [`EVIL`], an SLO and `--min-tps`.
    pub fn summary(points: u32) -> Summary {
        let mut steps = Vec::new();
        for k in 1..=points {
            for test in [TestKind::Input, TestKind::Output] {
                steps.push(step(test, 8 * k, f64::from(k) * 20.0));
            }
        }
        let bad = &mut steps[3];
        bad.client_bound = true;
        bad.requests_failed = 7;
        bad.errors.insert("http_500".into(), 7);
        bad.error_samples.push(ErrorSample {
            class: "http_500".into(),
            message: EVIL.into(),
            count: 7,
        });
        let config = serde_json::json!({
            "url": "https://user:secret@example.com/v1?api_key=sk-live-123",
            "tests": ["input", "output"],
            "prompt_chars": 400,
            "max_tokens": 64,
            "min_tps": 30.0,
            "slo": crate::metrics::slo::Slo::parse("ttft_p99=200ms,e2e=5s").unwrap(),
            "mode": {"kind": "step", "points": [{"kind": "concurrency", "value": 8}], "stop": {"kind": "for", "value": 10.0}},
            "load": {"arrival": {"kind": "poisson"}},
        });
        let samples = (0..200u32)
            .map(|i| Sample {
                t_s: f64::from(i) * 2.0,
                cpu_pct: Some(30.0),
                process_cpu_pct: Some(12.0),
                mem_used_mb: None,
                mem_total_mb: None,
                process_rss_mb: None,
                temp_c_max: Some(55.0),
                in_flight: Some(u64::from(i % 9)),
            })
            .collect();
        Summary {
            status: "complete".into(),
            started_at: "2026-12-02T01:00:00Z".into(),
            model: Some(format!("model {EVIL}")),
            config,
            steps,
            recommendations: vec![format!("[output] a sentence with {EVIL}")],
            monitor: crate::report::summary::MonitorReport {
                temperature_available: true,
                samples,
                ..Default::default()
            },
            ..Summary::default()
        }
    }

    /// [`summary`] with the server's and the GPUs' telemetry: series over the run (GPUs
    /// throttled from 100 s to 140 s), every step's windows, a token mismatch at the fourth step,
    /// and sources whose reported text is [`EVIL`].
    pub fn with_telemetry(points: u32) -> Summary {
        use crate::monitor::window::{GpuPoint, MeanMax, ServerPercentiles, ServerPoint, SourceReport, TokenCheck};
        use crate::monitor::{GpuWindow, ServerWindow};
        let mut s = summary(points);
        let mm = |mean: f64, max: f64| Some(MeanMax { mean, max });
        for (k, step) in s.steps.iter_mut().enumerate() {
            let c = f64::from(step.concurrency.unwrap_or(1));
            step.server_metrics = Some(ServerWindow {
                source: "vllm".into(),
                samples: 12,
                requests_waiting: mm(c / 4.0, c / 2.0),
                kv_cache_usage_pct: mm(30.0, 42.5),
                prefix_cache_hit_pct: Some(61.25),
                ttft_ms: Some(ServerPercentiles {
                    p50: 17.5,
                    p90: 30.0,
                    p99: 45.0,
                    count: 100.0,
                }),
                token_check: Some(TokenCheck {
                    ours_prompt_tokens: 1000,
                    ours_generation_tokens: 1000,
                    prompt_diff_pct: Some(if k == 3 { 3.5 } else { 0.0 }),
                    generation_diff_pct: Some(0.0),
                    mismatch: k == 3,
                    ..TokenCheck::default()
                }),
                ..ServerWindow::default()
            });
            step.gpu = Some(GpuWindow {
                source: "dcgm".into(),
                gpus: 2,
                samples: 12,
                energy_j: Some(12_345.0),
                power_w: mm(600.0, 700.0),
                tokens_per_joule: Some(0.75),
                joules_per_request: Some(123.4),
                ..GpuWindow::default()
            });
        }
        s.monitor.server = (0..200)
            .map(|i| ServerPoint {
                t_s: f64::from(i) * 2.0,
                requests_running: Some(f64::from(i % 16)),
                requests_waiting: Some(f64::from(i % 5)),
                kv_cache_usage_pct: Some(f64::from(i % 90)),
                generation_tps: None,
            })
            .collect();
        s.monitor.gpu = (0..200)
            .map(|i| GpuPoint {
                t_s: f64::from(i) * 2.0,
                power_w: Some(500.0 + f64::from(i % 50)),
                temperature_c: Some(60.0),
                utilization_pct: Some(90.0),
                throttled: (50..70).contains(&i),
            })
            .collect();
        let source = |name: &str, kind: &str, about: String, skipped: u64| SourceReport {
            name: name.into(),
            kind: kind.into(),
            about: Some(about),
            interval_s: 1.0,
            samples: 200,
            skipped,
            skip_reason: (skipped > 0).then(|| format!("HTTP 500 {EVIL}")),
        };
        s.monitor.sources = vec![
            source("system", "system", "-".into(), 0),
            source(
                "server",
                "prometheus",
                format!("http://u:pw@h:8000/metrics?x={EVIL}"),
                3,
            ),
            source("gpu", "dcgm", format!("dcgm {EVIL}"), 0),
        ];
        s
    }
}
