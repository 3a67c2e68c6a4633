//! report.html in real results folders: a step run and a stress run against the simulator, a
//! server whose error messages and model name are markup, `llm-bench report DIR`, and the
//! server's and the GPUs' telemetry (drawn when it was read, absent when it was not).

mod common;

use common::{fast_sim, run, text, Scratch, Sim};
use llm_bench::sim::SimConfig;
use std::path::Path;

const STEPS: &[&str] = &[
    "--input",
    "--output",
    "--start-threads",
    "2",
    "--end-threads",
    "6",
    "--step-threads",
    "2",
    "--tokens-to-generate",
    "16",
    "--step-duration",
    "400ms",
    "--warmup",
    "100ms",
    "--min-tps",
    "20",
    "--slo",
    "ttft_p99=500ms",
];

const STRESS: &[&str] = &[
    "--output",
    "--duration",
    "2500ms",
    "--start-threads",
    "3",
    "--tokens-to-generate",
    "8",
    "--report-interval",
    "1s",
    "--monitor-interval",
    "200ms",
];

fn report(s: &Scratch) -> String {
    let path = s.path("results").join("report.html");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// No element of the page points anywhere: no src, href, import, font or url().
fn assert_self_contained(html: &str) {
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(
        !html.contains("<script") && !html.contains("<link") && !html.contains("<img") && !html.contains("<iframe")
    );
    for tag in html.split('<').skip(1).map(|rest| rest.split('>').next().unwrap_or("")) {
        for attribute in ["src=", "href=", "xlink:", "url(", "@import", "action="] {
            assert!(!tag.contains(attribute), "an external reference in <{tag}>");
        }
    }
    let style = html.split("<style>").nth(1).unwrap().split("</style>").next().unwrap();
    assert!(!style.contains("url(") && !style.contains("@import") && !style.contains("@font-face"));
}

fn assert_sections(html: &str) {
    let mut last = 0;
    for id in ["run", "answers", "charts", "tables", "errors"] {
        let at = html
            .find(&format!("<section id=\"{id}\""))
            .unwrap_or_else(|| panic!("no {id} section"));
        assert!(at > last, "{id} is out of order");
        last = at;
    }
}

fn run_ok(sim: &Sim, args: &[&str]) -> Scratch {
    let s = Scratch::new();
    let out = s.run(&sim.url, args);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{args:?}\n{stdout}\n{stderr}");
    s
}

#[test]
fn a_step_run_writes_a_self_contained_report() {
    let sim = Sim::start(fast_sim());
    let s = run_ok(&sim, STEPS);
    let html = report(&s);
    assert_self_contained(&html);
    assert_sections(&html);
    for needle in [
        "Total throughput vs load: output tokens",
        "Total throughput vs load: prompt tokens",
        "Speed per connection vs load",
        "TTFT p50 / p90 / p99 vs load",
        "E2E distribution of output",
        "concurrency (connections)",
        "<g class=\"min-tps-line\">",
        "<g class=\"slo-line\">",
        "class=\"mark best\"",
        "llm-bench-sim",
    ] {
        assert!(html.contains(needle), "{needle}");
    }
    // Every step's distribution is in summary.json too.
    let summary = s.summary();
    let cdf = &summary["steps"][1]["cdf"];
    assert!(cdf["ttft_ms"].as_array().is_some_and(|a| a.len() > 20), "{cdf}");
    assert_eq!(cdf["ttft_ms"][0][0], 0.0);
}

#[test]
fn a_stress_run_draws_its_intervals() {
    let sim = Sim::start(fast_sim());
    let s = run_ok(&sim, STRESS);
    let html = report(&s);
    assert_self_contained(&html);
    assert_sections(&html);
    for needle in [
        "Throughput over time",
        "TTFT p99 over time",
        "Failed requests per interval",
        "Requests in flight",
        "time since the start (s)",
        "Report intervals",
    ] {
        assert!(html.contains(needle), "{needle}");
    }
    let summary = s.summary();
    assert!(
        summary["stress"]["intervals"][0]["tests"][0].get("cdf").is_none(),
        "intervals carry no distributions"
    );
}

#[test]
fn server_markup_does_not_get_into_the_report() {
    let evil = r#"<script>alert("x")</script></style>]]><img src=http://x/y.png>"#;
    let sim = Sim::start(SimConfig {
        model: format!("m{evil}"),
        fault_error_rate: 0.5,
        fault_error_message: Some(evil.into()),
        ..fast_sim()
    });
    let s = Scratch::new();
    s.run(
        &sim.url,
        &[
            "--output",
            "--start-threads",
            "2",
            "--end-threads",
            "2",
            "--tokens-to-generate",
            "4",
            "--step-duration",
            "400ms",
        ],
    );
    let html = report(&s);
    assert_self_contained(&html);
    assert_eq!(html.matches("</style>").count(), 1);
    assert!(!html.contains("]]>") && !html.contains("<img"));
    assert!(
        html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"),
        "the message is shown, escaped"
    );
    assert!(html.contains("m&lt;script&gt;"), "the model name is shown, escaped");
}

#[test]
fn report_dir_regenerates_the_page() {
    let sim = Sim::start(fast_sim());
    let s = run_ok(&sim, STEPS);
    let dir = s.path("results");
    let page = dir.join("report.html");
    std::fs::remove_file(&page).unwrap();
    let out = run(&["report", &dir.display().to_string()]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let html = std::fs::read_to_string(&page).unwrap();
    assert_self_contained(&html);
    assert_sections(&html);
    assert!(!Path::new(&dir.join(".report.html.tmp")).exists());
}

/// The elements only telemetry draws.
const TELEMETRY: &[&str] = &[
    "id=\"chart-server\"",
    "id=\"chart-server-kv\"",
    "id=\"chart-gpu\"",
    "id=\"chart-gpu-temperature\"",
    "id=\"chart-gpu-utilization\"",
    "id=\"telemetry-sources\"",
    "<th>server queue max</th>",
    "<th>KV cache max (%)</th>",
    "<th>GPU energy (kJ)</th>",
    "<th>tok/J</th>",
    "<th>J/request</th>",
];

#[test]
fn telemetry_is_drawn_when_it_was_read() {
    // /metrics (vLLM's families) and a DCGM exporter's page of two GPUs under a power cap.
    let sim = Sim::start(SimConfig {
        gpu_power_w: Some(350.0),
        gpus: 2,
        gpu_throttle_mask: 0x4,
        ..fast_sim()
    });
    let dcgm = sim.url.replace("/v1", "/dcgm/metrics");
    let mut args = STEPS.to_vec();
    args.extend(["--gpu-metrics", &dcgm, "--metrics-interval", "100ms"]);
    let s = run_ok(&sim, &args);
    let html = report(&s);
    assert_self_contained(&html);
    assert_sections(&html);
    for needle in TELEMETRY {
        assert!(html.contains(needle), "{needle}");
    }
    for needle in [
        "Server requests running and waiting over the run",
        "GPU power over the run",
        "<rect class=\"band throttled\"",
        "<td class=\"text\">dcgm</td>",
    ] {
        assert!(html.contains(needle), "{needle}");
    }
    let summary = s.summary();
    assert!(summary["steps"][0]["gpu"]["energy_j"].as_f64().is_some_and(|j| j > 0.0));
}

#[test]
fn without_telemetry_the_report_has_none_of_it() {
    let sim = Sim::start(SimConfig {
        gpu_power_w: Some(350.0),
        ..fast_sim()
    });
    let mut args = STEPS.to_vec();
    args.extend(["--no-server-metrics", "--no-gpu-metrics"]);
    let s = run_ok(&sim, &args);
    let html = report(&s);
    assert_sections(&html);
    for needle in TELEMETRY
        .iter()
        .chain(&["band throttled\"", "Telemetry sources", "server token count"])
    {
        assert!(!html.contains(needle), "{needle}");
    }
}

#[test]
fn what_telemetry_sources_report_is_escaped() {
    use llm_bench::monitor::window::SourceReport;
    let evil = r#"<script>alert("x")</script>"'</style>]]><img src=http://x/y.png>"#;
    let mut summary = llm_bench::report::Summary::default();
    summary.monitor.sources = vec![SourceReport {
        name: "server".into(),
        kind: "prometheus".into(),
        about: Some(format!("http://user:pw@h:1/metrics?{evil}")),
        interval_s: 1.0,
        samples: 2,
        skipped: 5,
        skip_reason: Some(format!("garbage: {evil}")),
    }];
    let html = llm_bench::report::html::render_report(&summary, llm_bench::i18n::Lang::En);
    assert_self_contained(&html);
    assert_eq!(html.matches("</style>").count(), 1);
    assert!(!html.contains("]]>") && !html.contains("<img") && !html.contains("pw@"));
    assert!(html.contains("garbage: &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&quot;&#39;"));
    assert!(html.contains("http://h:1/metrics?&lt;script&gt;"));
}
