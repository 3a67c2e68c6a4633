//! The real binary against the simulator: the seed's command lines, the results files, the
//! figures against the simulator's configured timing, and concurrency really held.

mod common;

use common::*;
use llm_bench::sim::SimConfig;

const STEP_KEYS: &[&str] = &[
    "test",
    "concurrency",
    "requests_ok",
    "requests_failed",
    "errors",
    "duration_s",
    "prompt_tokens",
    "output_tokens",
    "output_throughput_tps",
    "request_throughput_rps",
    "prefill_tps",
    "per_conn_tps",
    "ttft_ms",
    "itl_ms",
    "tpot_ms",
    "e2e_ms",
    "efficiency_pct",
    "scaling_efficiency_pct",
    "max_in_flight",
    "tokens_estimated",
];

#[test]
fn seed_step_command_line_writes_every_result() {
    let sim = Sim::start(fast_sim());
    let s = Scratch::new();
    // The seed README's first example, scaled down: same flags, same forms.
    let out = s.run(
        &sim.url,
        &[
            "-i", "-o", "-st", "2", "-et", "6", "-ts", "2", "-pp", "500", "-tg", "20",
        ],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");

    let summary = s.summary();
    assert_eq!(summary["status"], "complete");
    let steps = summary["steps"].as_array().unwrap();
    let shape: Vec<(String, u64)> = steps
        .iter()
        .map(|s| {
            (
                s["test"].as_str().unwrap().to_string(),
                s["concurrency"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected: Vec<(String, u64)> = [2, 4, 6]
        .iter()
        .flat_map(|&n| [("input".to_string(), n), ("output".to_string(), n)])
        .collect();
    assert_eq!(shape, expected);
    for step in steps {
        for key in STEP_KEYS {
            assert!(step.get(*key).is_some(), "step lacks {key}: {step}");
        }
        let n = step["concurrency"].as_u64().unwrap();
        assert_eq!(step["requests_ok"].as_u64(), Some(n), "one request per connection");
        assert_eq!(step["requests_failed"].as_u64(), Some(0));
        assert_eq!(step["max_in_flight"].as_u64(), Some(n), "exactly N in flight");
        assert_eq!(step["tokens_estimated"], false);
    }
    let output_step = &steps[1];
    assert_eq!(output_step["output_tokens"].as_u64(), Some(2 * 20), "usage counts");
    assert!(output_step["per_conn_tps"]["mean"].as_f64().unwrap() > 0.0);
    // Input test: a 500-character chat prompt is 117 tokens by the simulator's tokenizer (BOS,
    // the template's 4 + 3, and 109 tokens of text).
    let input_step = &steps[0];
    assert_eq!(input_step["prompt_tokens"].as_u64(), Some(2 * 117));
    assert!(input_step["prefill_tps"]["mean"].as_f64().unwrap() > 0.0);
    assert!(summary["recommendations"].as_array().unwrap().len() >= 2);
    assert!(summary["config"]["prompt_chars"] == 500);
    assert!(summary["environment"]["cpus"].as_u64().unwrap() >= 1);
    assert!(!summary["monitor"]["samples"].as_array().unwrap().is_empty());

    let records = s.records();
    assert_eq!(records.len(), 2 * (2 + 4 + 6));
    let rec = records.iter().find(|r| r["test"] == "output").unwrap();
    assert_eq!(rec["token_us"].as_array().unwrap().len(), 20);
    for key in [
        "start_s",
        "headers_us",
        "first_event_us",
        "first_token_us",
        "last_token_us",
        "end_us",
        "status",
        "events",
    ] {
        assert!(!rec[key].is_null(), "record lacks {key}: {rec}");
    }

    // The log holds the same lines as the console.
    let log = std::fs::read_to_string(s.log()).unwrap();
    for line in stdout.lines().filter(|l| !l.trim().is_empty()) {
        assert!(log.contains(line), "log lacks console line {line:?}");
    }
    assert!(log.contains("Recommendations:"));
}

#[test]
fn seed_stress_command_line_reports_intervals() {
    let sim = Sim::start(fast_sim());
    let s = Scratch::new();
    // -d takes hours: 0.0008 h ≈ 2.9 s.
    let out = s.run(
        &sim.url,
        &[
            "-d",
            "0.0008",
            "-st",
            "3",
            "-pp",
            "500",
            "-tg",
            "10",
            "--report-interval",
            "1s",
            "--monitor-interval",
            "500ms",
        ],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let summary = s.summary();
    let intervals = summary["stress"]["intervals"].as_array().unwrap();
    assert!(intervals.len() >= 2, "{} intervals", intervals.len());
    let steps = summary["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2, "input and output totals");
    assert!(steps
        .iter()
        .all(|s| s["concurrency"] == 3 && s["requests_ok"].as_u64().unwrap() > 3));
    assert_eq!(steps[0]["max_in_flight"].as_u64(), Some(3));
    assert!(stdout.contains("Stress run summary"));
    assert!(summary["monitor"]["samples"].as_array().unwrap().len() >= 3);
    // The friendlier form of the same thing.
    let s2 = Scratch::new();
    let out = s2.run(&sim.url, &["-o", "--duration", "1500ms", "-st", "2", "-tg", "5"]);
    assert!(out.status.success(), "{:?}", text(&out));
    assert_eq!(s2.summary()["steps"].as_array().unwrap().len(), 1);
}

#[test]
fn seed_multimodal_command_line() {
    let sim = Sim::start(fast_sim());
    let s = Scratch::new();
    // A PNG named .jpg: the type comes from its content.
    let image = s.path("testphoto.jpg");
    std::fs::write(&image, PNG).unwrap();
    let out = s.run(
        &sim.url,
        &[
            "-i",
            "-o",
            "-mm",
            "-st",
            "2",
            "-et",
            "4",
            "-ts",
            "2",
            "-pp",
            "100",
            "-tg",
            "8",
            "-ip",
            image.to_str().unwrap(),
            "-mtp",
            "Describe the contents of this image.",
        ],
    );
    assert!(out.status.success(), "{:?}", text(&out));
    let summary = s.summary();
    let mm: Vec<&serde_json::Value> = summary["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["test"] == "multimodal")
        .collect();
    assert_eq!(mm.len(), 2);
    assert!(mm.iter().all(|s| s["requests_ok"] == s["concurrency"]));
    // The simulator counts 256 tokens per image on top of the text.
    assert!(mm[0]["prompt_tokens"].as_u64().unwrap() >= 2 * 256);
}

#[test]
fn three_hundred_streams_are_really_in_flight_at_once() {
    let sim = Sim::start(SimConfig {
        decode_base_ms: 20.0,
        ..fast_sim()
    });
    let s = Scratch::new();
    let out = s.run(&sim.url, &["-o", "-st", "300", "-et", "300", "-tg", "30"]);
    assert!(out.status.success(), "{:?}", text(&out));
    let step = &s.summary()["steps"][0];
    assert_eq!(step["requests_ok"].as_u64(), Some(300));
    assert_eq!(step["max_in_flight"].as_u64(), Some(300));
    assert!(
        sim.stats().max_in_flight >= 300,
        "the server saw {}",
        sim.stats().max_in_flight
    );
}

#[test]
fn measured_timing_matches_the_simulated_engine() {
    // One sequence: a decode step of 20 ms, so ITL ≈ 20 ms and 50 tok/s per connection.
    let sim = Sim::start(SimConfig {
        decode_base_ms: 20.0,
        decode_ms_per_seq: 0.0,
        prefill_us_per_token: 0.0,
        ..SimConfig::default()
    });
    let s = Scratch::new();
    let out = s.run(&sim.url, &["-o", "-st", "1", "-et", "1", "-tg", "40"]);
    assert!(out.status.success(), "{:?}", text(&out));
    let step = &s.summary()["steps"][0];
    let itl_p50 = step["itl_ms"]["p50"].as_f64().unwrap();
    let per_conn = step["per_conn_tps"]["mean"].as_f64().unwrap();
    let tpot = step["tpot_ms"]["mean"].as_f64().unwrap();
    // Tolerances are wide for a noisy 2-core machine; the fidelity benchmark measures tighter.
    assert!((itl_p50 - 20.0).abs() < 4.0, "ITL p50 {itl_p50} ms");
    assert!((per_conn - 50.0).abs() < 7.5, "per-connection {per_conn} tok/s");
    assert!((tpot - 20.0).abs() < 4.0, "TPOT {tpot} ms");
    // TTFT against the simulator's own record of when it wrote the first token.
    let truth = sim.stats().truth;
    let ttft = step["ttft_ms"]["mean"].as_f64().unwrap();
    assert!(
        (ttft - truth.ttft_ms.mean).abs() < 5.0,
        "client {ttft} ms vs server {} ms",
        truth.ttft_ms.mean
    );
}

/// At a modest load the client's figures agree with the simulator's own record of when it
/// received each request and wrote each chunk (both sides time bytes by their arrival).
#[test]
fn client_and_simulator_truth_agree_at_modest_load() {
    let sim = Sim::start(SimConfig {
        decode_base_ms: 20.0,
        decode_ms_per_seq: 0.0,
        prefill_us_per_token: 1.0,
        max_batch: 1000,
        ..SimConfig::default()
    });
    let s = Scratch::new();
    let out = s.run(
        &sim.url,
        &[
            "-o",
            "-st",
            "50",
            "-et",
            "50",
            "--step-duration",
            "2s",
            "-tg",
            "20",
            "-pp",
            "200",
        ],
    );
    assert!(out.status.success(), "{:?}", text(&out));
    let step = &s.summary()["steps"][0];
    assert_eq!(step["requests_failed"], 0, "{step}");
    let truth = sim.stats().truth;
    let ours = |dist: &str, q: &str| step[dist][q].as_f64().unwrap();
    // Tolerances for a noisy 2-core machine; scripts/bench-client.sh measures the real error.
    let pairs = [
        ("TTFT mean", ours("ttft_ms", "mean"), truth.ttft_ms.mean, 2.0),
        ("TTFT p99", ours("ttft_ms", "p99"), truth.ttft_ms.p99, 3.0),
        ("ITL p50", ours("itl_ms", "p50"), truth.itl_ms.p50, 1.0),
        ("ITL p99", ours("itl_ms", "p99"), truth.itl_ms.p99, 3.0),
    ];
    for (name, client, server, tolerance) in pairs {
        assert!(
            (client - server).abs() <= tolerance,
            "{name}: client {client:.3} ms vs simulator {server:.3} ms"
        );
    }
}

#[test]
fn missing_usage_is_estimated_and_marked() {
    let sim = Sim::start(SimConfig {
        no_usage: true,
        tokens_per_chunk: 1,
        ..fast_sim()
    });
    let s = Scratch::new();
    let out = s.run(&sim.url, &["-o", "-st", "2", "-et", "2", "-tg", "12"]);
    let (stdout, _) = text(&out);
    assert!(out.status.success());
    let step = &s.summary()["steps"][0];
    assert_eq!(step["tokens_estimated"], true);
    assert_eq!(
        step["output_tokens"].as_u64(),
        Some(24),
        "one token per chunk with text"
    );
    assert!(stdout.contains("estimated"));
}

#[test]
fn model_is_discovered_and_named() {
    let sim = Sim::start(SimConfig {
        model: "my-served-model".into(),
        ..fast_sim()
    });
    let s = Scratch::new();
    let out = s.run(&sim.url, &["-o", "-st", "1", "-et", "1", "-tg", "3"]);
    let (stdout, _) = text(&out);
    assert!(out.status.success());
    assert!(
        stdout.contains("Model: my-served-model (the only model the server lists)"),
        "{stdout}"
    );
    assert_eq!(s.summary()["model"], "my-served-model");
}

#[test]
fn report_rebuilds_the_summary_from_records() {
    let sim = Sim::start(fast_sim());
    let s = Scratch::new();
    let out = s.run(&sim.url, &["-i", "-o", "-st", "1", "-et", "3", "-ts", "2", "-tg", "6"]);
    assert!(out.status.success());
    let original = s.summary();
    std::fs::remove_file(s.path("results").join("summary.json")).unwrap();
    let out = run(&["report", &s.out()]);
    assert!(out.status.success(), "{:?}", text(&out));
    let rebuilt = s.summary();
    assert_eq!(rebuilt["status"], "rebuilt");
    let pick = |v: &serde_json::Value| {
        v["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["test"].clone(),
                    s["concurrency"].clone(),
                    s["requests_ok"].clone(),
                    s["output_tokens"].clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(pick(&original), pick(&rebuilt));
}

#[test]
fn timed_steps_exclude_warmup() {
    let sim = Sim::start(fast_sim());
    let s = Scratch::new();
    let out = s.run(
        &sim.url,
        &[
            "-o",
            "-st",
            "2",
            "-et",
            "2",
            "-tg",
            "5",
            "--step-duration",
            "1500ms",
            "--warmup",
            "500ms",
        ],
    );
    assert!(out.status.success(), "{:?}", text(&out));
    let step = &s.summary()["steps"][0];
    let warmup = step["requests_warmup"].as_u64().unwrap();
    let ok = step["requests_ok"].as_u64().unwrap();
    assert!(warmup > 2 && ok > 2 * warmup / 2, "warmup {warmup}, measured {ok}");
    let records = s.records();
    assert_eq!(records.iter().filter(|r| r["phase"] == "warmup").count() as u64, warmup);
    assert!(step["duration_s"].as_f64().unwrap() < 1.3);
}

/// `steps.csv` beside summary.json for a step run, `intervals.csv` for a stress run: one row
/// per step (interval) and test, what the row is first, and `schema_version` in the summary.
#[test]
fn csv_tables_and_the_schema_version_are_written() {
    let sim = Sim::start(fast_sim());
    let (s, _) = run_ok(&sim, &["-o", "-st", "1", "-et", "2", "-ts", "1", "-tg", "4"]);
    assert_eq!(s.summary()["schema_version"], 1);
    let csv = std::fs::read_to_string(s.path("results").join("steps.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(
        lines[0].starts_with("test,load.kind,load.value,concurrency,"),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains(",ttft_ms.p99"), "{}", lines[0]);
    assert!(
        lines[1].starts_with("output,concurrency,1,1,") && lines[2].starts_with("output,concurrency,2,2,"),
        "{csv}"
    );
    assert!(!s.path("results").join("intervals.csv").exists());

    let (s, _) = run_ok(
        &sim,
        &[
            "-o",
            "-st",
            "2",
            "-tg",
            "4",
            "--duration",
            "3s",
            "--report-interval",
            "1s",
        ],
    );
    let csv = std::fs::read_to_string(s.path("results").join("intervals.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(
        lines[0].starts_with("interval.index,interval.start_s,interval.end_s,test,"),
        "{csv}"
    );
    assert!(lines.len() >= 3, "an interval a second: {csv}");
}

#[test]
fn the_client_reports_its_own_peak_memory_not_its_parents() {
    // Linux counts in a child's ru_maxrss the peak of the memory it replaced at exec: this test
    // process's. With 256 MiB touched here, a client that read ru_maxrss would report that much.
    let ballast = vec![1u8; 256 << 20];
    let sim = Sim::start(fast_sim());
    let s = Scratch::new();
    let out = s.run(&sim.url, &["-o", "-st", "2", "-et", "2", "-tg", "5"]);
    assert!(out.status.success(), "{:?}", text(&out));
    std::hint::black_box(&ballast);
    let peak = num(&s.summary()["client"]["peak_rss_mb"]);
    assert!(peak > 1.0 && peak < 128.0, "peak RSS {peak} MiB");
}
