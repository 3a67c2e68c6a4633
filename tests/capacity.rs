//! `llm-bench capacity` against a simulator of known capacity, the SLO arithmetic end to end,
//! and the knee of a timed step sweep (throughput measured over a window, not stretched by
//! stragglers).

mod common;

use common::*;
use llm_bench::sim::SimConfig;

/// 4 sequences at once, 10 ms a step, 10 tokens a request: each request holds a slot for about
/// 100 ms, so the server completes at most about 40 requests a second.
fn known_capacity() -> SimConfig {
    engine(4, 10.0)
}

#[test]
fn capacity_search_finds_a_known_capacity() {
    let sim = Sim::start(known_capacity());
    let s = Scratch::new();
    let mut cmd = s.command(
        &sim.url,
        &[
            "-o",
            "-pp",
            "20",
            "-tg",
            "10",
            "--arrival",
            "constant",
            "--slo",
            "e2e_p99=300ms",
            "--min",
            "10",
            "--max",
            "160",
            "--precision",
            "10%",
            "--step-duration",
            "3s",
            "--warmup",
            "500ms",
        ],
    );
    cmd.arg("capacity");
    // Subcommand first, then its flags.
    let mut argv: Vec<String> = cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
    let sub = argv.pop().unwrap();
    argv.insert(0, sub);
    let out = bin().args(&argv).output().unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let summary = s.summary();
    let capacity = &summary["capacity"];
    assert_eq!(capacity["by"], "rate");
    let value = num(&capacity["value"]);
    // The true limit is 40 req/s (a little less when the machine is slow): within 10%, or
    // below it by the machine's slowness but never above.
    assert!((30.0..=44.0).contains(&value), "capacity {value}\n{stdout}");
    let steps = summary["steps"].as_array().unwrap();
    let pass = &steps[capacity["pass_step"].as_u64().unwrap() as usize];
    let fail = &steps[capacity["fail_step"].as_u64().unwrap() as usize];
    assert_eq!(num(&pass["load"]["value"]), value);
    assert_eq!(pass["slo_pass"], true);
    assert_eq!(fail["slo_pass"], false);
    assert!(num(&fail["load"]["value"]) > value);
    assert_eq!(capacity["limiting_metric"], "e2e_p99");
    assert_eq!(capacity["slo"]["spec"], "e2e_p99=300ms");
    let answer = capacity["answer"].as_str().unwrap();
    assert!(answer.starts_with("Meets e2e p99 ≤ 300 ms up to "), "{answer}");
    assert!(answer.contains("E2E p99 was"), "{answer}");
    assert!(stdout.contains(answer), "the answer is printed: {stdout}");
    assert!(steps.len() >= 5, "doubling then bisecting: {} probes", steps.len());
    assert_eq!(summary["recommendations"][0], answer);
}

#[test]
fn an_impossible_slo_exits_1_with_a_sentence() {
    let sim = Sim::start(known_capacity());
    let s = Scratch::new();
    let out = bin()
        .args([
            "capacity",
            "-o",
            "-pp",
            "20",
            "-tg",
            "10",
            "--slo",
            "ttft_p99=1us",
            "--min",
            "5",
            "--max",
            "10",
        ])
        .args([
            "--step-duration",
            "1s",
            "-u",
            &sim.url,
            "-l",
            &s.log(),
            "--out",
            &s.out(),
        ])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("Even the lowest load fails ttft p99 ≤ 0.001 ms"),
        "{stdout}"
    );
    let summary = s.summary();
    assert!(summary["capacity"]["value"].is_null());
    assert_eq!(summary["status"], "slo_unmet");
    assert_eq!(summary["steps"].as_array().unwrap().len(), 1, "one probe, at --min");
}

#[test]
fn goodput_and_attainment_from_per_request_thresholds() {
    // Concurrency 8 on 4 slots: half the requests wait a whole request (~100 ms) for a slot.
    let sim = Sim::start(known_capacity());
    let (s, stdout) = run_ok(
        &sim,
        &[
            "-o",
            "-pp",
            "20",
            "-tg",
            "10",
            "-st",
            "8",
            "-et",
            "8",
            "--slo",
            "ttft=60ms,tpot=50ms",
        ],
    );
    let step = &s.summary()["steps"][0];
    let attainment = num(&step["slo_attainment_pct"]);
    assert!((attainment - 50.0).abs() < 0.1, "{attainment}% good: {step}");
    // Goodput: the good requests over the step's duration, and their tokens.
    let duration = num(&step["duration_s"]);
    assert!((num(&step["goodput_rps"]) - 4.0 / duration).abs() < 1e-6, "{step}");
    assert!((num(&step["goodput_tps"]) - 40.0 / duration).abs() < 1e-6, "{step}");
    assert!(step.get("slo_pass").is_none(), "no percentile objective, no pass/fail");
    assert!(stdout.contains("SLO: 50.0% of requests good"), "{stdout}");
}

#[test]
fn timed_steps_past_the_knee_keep_the_saturated_throughput() {
    // The demo's engine: 16 sequences at once, so throughput stops growing at 16.
    let sim = Sim::start(llm_bench::demo::demo_sim_config());
    let (s, _) = run_ok(
        &sim,
        &[
            "-o",
            "-pp",
            "400",
            "-tg",
            "64",
            "-st",
            "16",
            "-et",
            "32",
            "-ts",
            "4",
            "--step-duration",
            "2s",
            "--warmup",
            "500ms",
        ],
    );
    let summary = s.summary();
    let steps = summary["steps"].as_array().unwrap();
    let tps: Vec<(u64, f64)> = steps
        .iter()
        .map(|s| (s["concurrency"].as_u64().unwrap(), num(&s["output_throughput_tps"])))
        .collect();
    let at_16 = tps[0].1;
    for &(n, t) in &tps[1..] {
        assert!(
            (t / at_16 - 1.0).abs() < 0.05,
            "concurrency {n}: {t:.1} vs {at_16:.1} at 16: {tps:?}"
        );
    }
    for step in steps {
        assert_eq!(step["measured_over"], "window");
    }
    let advice = summary["recommendations"].to_string();
    assert!(
        advice.contains("Throughput stops growing at concurrency 16"),
        "{advice}"
    );
    assert!(!advice.contains("lowers it"), "{advice}");
}
