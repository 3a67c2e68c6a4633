//! `llm-bench compare`: runs against simulators of different speed, the same simulator twice,
//! and inputs or expressions it must refuse.

mod common;

use common::{read_json, run, run_ok, text, Sim};
use llm_bench::sim::SimConfig;
use std::path::Path;

/// A simulator generating a token every `step_ms` for each sequence.
fn sim(step_ms: f64) -> Sim {
    Sim::start(SimConfig {
        decode_base_ms: step_ms,
        decode_ms_per_seq: 0.0,
        prefill_us_per_token: 1.0,
        max_batch: 4096,
        ..SimConfig::default()
    })
}

/// Two timed steps (concurrency 4 and 8) of 1.5 s each.
const RUN: &[&str] = &[
    "-o",
    "-st",
    "4",
    "-et",
    "8",
    "-ts",
    "4",
    "-tg",
    "10",
    "--step-duration",
    "1500ms",
];

fn results(s: &common::Scratch) -> String {
    s.path("results").display().to_string()
}

fn compare(args: &[&str], out: &Path) -> (i32, String, String) {
    let mut all = vec!["compare", "--out", out.to_str().unwrap()];
    all.extend_from_slice(args);
    let output = run(&all);
    let (stdout, stderr) = text(&output);
    (output.status.code().unwrap_or(-1), stdout, stderr)
}

#[test]
fn a_slower_server_crosses_the_threshold_and_the_figure_is_named() {
    let (fast, slow) = (sim(10.0), sim(20.0));
    let (a, _) = run_ok(&fast, RUN);
    let (b, _) = run_ok(&slow, RUN);
    let out = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = compare(
        &[
            &results(&a),
            &results(&b),
            "--label",
            "fast",
            "--label",
            "slow",
            "--fail-if",
            "output_throughput_tps < -5%",
            "--fail-if",
            "itl_p50_ms > +10%",
        ],
        out.path(),
    );
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    for step in ["output at concurrency 4", "output at concurrency 8"] {
        assert!(
            stdout.contains(&format!("{step}: output_throughput_tps \u{2212}")),
            "{step}\n{stdout}"
        );
        assert!(stdout.contains(&format!("{step}: itl_p50_ms +")), "{step}\n{stdout}");
    }
    assert!(stdout.contains("crosses < -5%") && stdout.contains("worse"), "{stdout}");
    let cmp = read_json(&out.path().join("compare.json"));
    assert_eq!(cmp["runs"][1]["label"], "slow");
    assert_eq!(cmp["matched"].as_array().unwrap().len(), 2);
    let tps = &cmp["matched"][0]["figures"][0];
    assert_eq!(tps["figure"], "output_throughput_tps");
    assert_eq!(tps["verdicts"][1], "worse", "{tps}");
    let change = tps["change_pct"][1].as_f64().unwrap();
    assert!((-65.0..-35.0).contains(&change), "half the speed: {change}");
    assert!(cmp["breaches"].as_array().unwrap().len() >= 4, "{}", cmp["breaches"]);
    assert!(cmp["method"].as_str().unwrap().contains("bootstrap"));
    assert!(out.path().join("compare.html").is_file());

    // The summary files alone: the same figures, no records, so verdicts are unknown and a
    // crossed threshold counts.
    let copies = tempfile::tempdir().unwrap();
    let summaries: Vec<String> = [("a", &a), ("b", &b)]
        .iter()
        .map(|(name, s)| {
            let dir = copies.path().join(name);
            std::fs::create_dir(&dir).unwrap();
            let to = dir.join("summary.json");
            std::fs::copy(s.path("results").join("summary.json"), &to).unwrap();
            to.display().to_string()
        })
        .collect();
    let (code, stdout, stderr) = compare(
        &[&summaries[0], &summaries[1], "--fail-if", "output_throughput_tps < -5%"],
        out.path(),
    );
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(stdout.contains("(noise unknown) crosses < -5%"), "{stdout}");
    assert!(stdout.contains("no requests.jsonl"), "{stdout}");
    let cmp = read_json(&out.path().join("compare.json"));
    assert_eq!(cmp["runs"][0]["label"], "a", "named by folder");
    assert_eq!(cmp["matched"][0]["figures"][0]["verdicts"][1], "unknown");
}

#[test]
fn the_same_server_twice_is_within_noise() {
    let server = sim(10.0);
    let (a, _) = run_ok(&server, RUN);
    let (b, _) = run_ok(&server, RUN);
    let out = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = compare(
        &[&results(&a), &results(&b), "--fail-if", "output_throughput_tps < -5%"],
        out.path(),
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("No --fail-if threshold crossed"), "{stdout}");
    assert!(stdout.contains("Comparison written to"), "{stdout}");
    let cmp = read_json(&out.path().join("compare.json"));
    assert!(cmp["unmatched"].as_array().unwrap().is_empty());
    let tps = &cmp["matched"][0]["figures"][0];
    let change = tps["change_pct"][1].as_f64().unwrap();
    assert!(change.abs() < 5.0, "the same server: {change}");
    let (lo, hi) = (
        tps["change_ci_pct"][1][0].as_f64().unwrap(),
        tps["change_ci_pct"][1][1].as_f64().unwrap(),
    );
    assert!(lo <= change && change <= hi, "{lo} {change} {hi}");
}

#[test]
fn unreadable_inputs_and_bad_expressions_exit_2_with_one_line() {
    let scratch = tempfile::tempdir().unwrap();
    let empty = scratch.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let not_json = scratch.path().join("summary.json");
    std::fs::write(&not_json, "not json").unwrap();
    let (empty, not_json) = (empty.display().to_string(), not_json.display().to_string());
    let missing = scratch.path().join("missing").display().to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![&empty, &empty, "--fail-if", "throughput < -5%"],
            "unknown figure 'throughput'",
        ),
        (
            vec![&empty, &empty, "--fail-if", "output_throughput_tps = -5%"],
            "operator",
        ),
        (
            vec![&empty, &empty, "--fail-if", "output_throughput_tps < five"],
            "not a number",
        ),
        (vec![&missing, &empty], "no such file or folder"),
        (vec![&empty, &empty], "no summary.json"),
        (vec![&not_json, &not_json], "cannot read the run"),
        (
            vec![&empty, &empty, "--label", "a", "--label", "b", "--label", "c"],
            "--label",
        ),
        (vec![&empty], "llm-bench --help"),
    ];
    for (args, says) in cases {
        let (code, stdout, stderr) = compare(&args, scratch.path());
        assert_eq!(code, 2, "{args:?}\n{stdout}\n{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    let (_, _, stderr) = compare(&[&empty, &empty, "--fail-if", "x < 1%"], scratch.path());
    assert!(
        stderr.contains("--fail-if 'output_throughput_tps < -5%'"),
        "an example: {stderr}"
    );
}
