//! Faults injected by the simulator are counted exactly by llm-bench, the run goes on, and
//! tokens received before a failure are kept in their own column.

mod common;

use common::*;
use llm_bench::sim::SimConfig;
use serde_json::Value;

fn faulty() -> SimConfig {
    SimConfig {
        seed: 7,
        fault_error_rate: 0.15,
        fault_cut_rate: 0.1,
        fault_malformed_rate: 0.1,
        fault_stall_rate: 0.1,
        fault_stall_ms: 300,
        ..fast_sim()
    }
}

fn sum_errors(steps: &[Value], class: &str) -> u64 {
    steps.iter().map(|s| s["errors"][class].as_u64().unwrap_or(0)).sum()
}

fn check_counts(sim: &Sim, steps: &[Value], records: &[Value]) {
    let faults = sim.stats().faults;
    assert!(
        faults.error_status > 0 && faults.cut_stream > 0 && faults.malformed_chunk > 0,
        "{faults:?}"
    );
    assert_eq!(sum_errors(steps, "http_500"), faults.error_status);
    assert_eq!(sum_errors(steps, "stream_cut"), faults.cut_stream);
    // A stream drawn for both a malformed chunk and a cut is cut before the malformed chunk is
    // sent, and the simulator counts only the cut: the classes match one to one.
    assert_eq!(sum_errors(steps, "malformed_stream"), faults.malformed_chunk);
    let ok: u64 = steps.iter().map(|s| s["requests_ok"].as_u64().unwrap()).sum();
    let failed: u64 = steps.iter().map(|s| s["requests_failed"].as_u64().unwrap()).sum();
    assert_eq!(
        ok + failed,
        sim.stats().requests_total,
        "every request the server saw is accounted for"
    );
    // Cut streams keep the tokens they got.
    let partial: u64 = steps.iter().map(|s| s["partial_output_tokens"].as_u64().unwrap()).sum();
    assert!(partial > 0);
    let cut = records.iter().find(|r| r["error"] == "stream_cut").unwrap();
    assert!(cut["output_tokens"].as_u64().unwrap() > 0, "{cut}");
    assert!(!cut["token_us"].as_array().unwrap().is_empty());
    // Error messages are deduplicated with counts, not repeated.
    for step in steps {
        let samples = step["error_samples"].as_array().unwrap();
        assert!(samples.len() <= 5);
        let counted: u64 = samples.iter().map(|s| s["count"].as_u64().unwrap()).sum();
        assert!(counted <= step["requests_failed"].as_u64().unwrap());
    }
}

#[test]
fn step_mode_counts_every_fault_exactly_and_goes_on() {
    let sim = Sim::start(faulty());
    let s = Scratch::new();
    let out = s.run(&sim.url, &["-o", "-st", "20", "-et", "60", "-ts", "20", "-tg", "10"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let summary = s.summary();
    let steps = summary["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 3, "the run went on through the faults");
    check_counts(&sim, steps, &s.records());
    assert!(stdout.contains("errors: "), "{stdout}");
    assert!(summary["recommendations"]
        .to_string()
        .contains("Errors start at concurrency 20"));
}

#[test]
fn stress_mode_counts_every_fault_exactly() {
    let sim = Sim::start(faulty());
    let s = Scratch::new();
    let out = s.run(
        &sim.url,
        &[
            "-o",
            "--duration",
            "2s",
            "-st",
            "8",
            "-tg",
            "10",
            "--report-interval",
            "1s",
        ],
    );
    assert!(out.status.success(), "{:?}", text(&out));
    let summary = s.summary();
    check_counts(&sim, summary["steps"].as_array().unwrap(), &s.records());
}

#[test]
fn error_budget_stops_a_step_run() {
    let sim = Sim::start(SimConfig {
        seed: 1,
        fault_error_rate: 0.5,
        ..fast_sim()
    });
    let s = Scratch::new();
    let out = s.run(
        &sim.url,
        &[
            "-o",
            "-st",
            "10",
            "-et",
            "50",
            "-ts",
            "10",
            "-tg",
            "5",
            "--max-error-rate",
            "0.2",
        ],
    );
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("over --max-error-rate 20%"), "{stdout}");
    let summary = s.summary();
    assert_eq!(summary["status"], "stopped_error_budget");
    assert_eq!(summary["steps"].as_array().unwrap().len(), 1);
}

#[test]
fn every_request_failing_is_an_error_not_nan() {
    let sim = Sim::start(SimConfig {
        fault_error_rate: 1.0,
        fault_error_status: vec![503],
        ..fast_sim()
    });
    let s = Scratch::new();
    let out = s.run(&sim.url, &["-o", "-st", "3", "-et", "3", "-tg", "5"]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("all 3 requests failed: HTTP 503"), "{stdout}");
    assert!(
        !stdout.contains("NaN")
            && !std::fs::read_to_string(s.path("results/summary.json"))
                .unwrap()
                .contains("NaN")
    );
    assert_eq!(s.summary()["status"], "failed");
}
