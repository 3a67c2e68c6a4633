//! `--repeat N` against the simulator: the steps run as A1 B1 A2 B2 …, each carries its
//! repetition, `repeats[]` has a mean and a confidence interval per figure, and
//! `llm-bench report` keeps the repetitions apart. A stress run or a capacity search refuses it.

mod common;

use common::*;
use serde_json::Value;

fn steps(summary: &Value) -> Vec<Value> {
    summary["steps"].as_array().expect("steps").clone()
}

/// (concurrency, repeat) of each step, in summary order.
fn points(summary: &Value) -> Vec<(u64, u64)> {
    steps(summary)
        .iter()
        .map(|s| (s["load"]["value"].as_u64().unwrap(), s["repeat"].as_u64().unwrap()))
        .collect()
}

#[test]
fn three_repeats_of_two_points() {
    let sim = Sim::start(fast_sim());
    let args = [
        "-o",
        "-st",
        "1",
        "-et",
        "2",
        "-ts",
        "1",
        "-pp",
        "20",
        "-tg",
        "8",
        "--requests",
        "6",
        "--repeat",
        "3",
    ];
    let (s, stdout) = run_ok(&sim, &args);
    let summary = s.summary();
    assert_eq!(
        points(&summary),
        [(1, 1), (2, 1), (1, 2), (2, 2), (1, 3), (2, 3)],
        "{stdout}"
    );

    // The order they ran in: the first send of each step's records, step after step.
    let records = s.records();
    let first_send = |(c, k): (u64, u64)| {
        records
            .iter()
            .filter(|r| r["load"]["value"].as_u64() == Some(c) && r["repeat"].as_u64() == Some(k))
            .map(|r| num(&r["start_s"]))
            .fold(f64::INFINITY, f64::min)
    };
    let starts: Vec<f64> = points(&summary).into_iter().map(first_send).collect();
    assert!(
        starts.iter().all(|t| t.is_finite()),
        "every step has records: {starts:?}"
    );
    assert!(starts.windows(2).all(|w| w[0] < w[1]), "steps out of order: {starts:?}");

    let repeats = summary["repeats"].as_array().expect("repeats");
    assert_eq!(repeats.len(), 2, "{repeats:?}");
    for (entry, c) in repeats.iter().zip([1, 2]) {
        assert_eq!(
            (entry["test"].as_str(), entry["load"]["value"].as_u64()),
            (Some("output"), Some(c))
        );
        assert_eq!(entry["load"]["kind"], "concurrency");
        assert_eq!(entry["runs"], 3);
        let figures = entry["figures"].as_object().unwrap();
        for name in [
            "output_throughput_tps",
            "request_throughput_rps",
            "ttft_p50_ms",
            "ttft_p99_ms",
            "e2e_p99_ms",
        ] {
            let f = &figures[name];
            let (low, mean, high) = (num(&f["ci95_low"]), num(&f["mean"]), num(&f["ci95_high"]));
            assert!(low <= mean && mean <= high, "{name}: {f}");
            assert!(num(&f["std"]) >= 0.0, "{name}: {f}");
            let values: Vec<f64> = f["values"].as_array().unwrap().iter().map(num).collect();
            assert_eq!(values.len(), 3, "{name}: {f}");
            let avg = values.iter().sum::<f64>() / 3.0;
            assert!((avg - mean).abs() <= 1e-6 * mean.abs().max(1.0), "{name}: {f}");
        }
    }
    // Console: one line per point with mean ± half-width; the table tells the repetitions apart.
    assert_eq!(stdout.matches("(3 runs)").count(), 2, "{stdout}");
    assert!(stdout.contains(" ± "), "{stdout}");
    assert!(stdout.contains("1#2") && stdout.contains("2#3"), "{stdout}");

    // steps.csv: a repeat column, right after what the row is.
    let csv = std::fs::read_to_string(s.path("results").join("steps.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = header.iter().position(|c| *c == "repeat").expect("repeat column");
    assert!(col < 6, "{header:?}");
    let reps: Vec<&str> = csv.lines().skip(1).map(|l| l.split(',').nth(col).unwrap()).collect();
    assert_eq!(reps, ["1", "1", "2", "2", "3", "3"]);

    // Rebuilt from the records alone: six steps, the repetitions kept apart.
    std::fs::remove_file(s.path("results").join("summary.json")).unwrap();
    let out = run(&["report", &s.out()]);
    assert!(out.status.success(), "{:?}", text(&out));
    let rebuilt = s.summary();
    assert_eq!(points(&rebuilt), points(&summary));
    assert_eq!(rebuilt["repeats"].as_array().map(Vec::len), Some(2));
    let oks = |v: &Value| steps(v).iter().map(|s| s["requests_ok"].clone()).collect::<Vec<_>>();
    assert_eq!(oks(&rebuilt), oks(&summary));
}

/// A rate sweep repeats the same way: (rate, repeat) in the order A1 B1 A2 B2, a `repeats`
/// entry per rate.
#[test]
fn a_rate_sweep_repeats_too() {
    let sim = Sim::start(fast_sim());
    let args = [
        "-o",
        "--rate",
        "20,40",
        "--requests",
        "6",
        "-pp",
        "20",
        "-tg",
        "4",
        "--repeat",
        "2",
    ];
    let (s, stdout) = run_ok(&sim, &args);
    let summary = s.summary();
    let order: Vec<(f64, u64)> = steps(&summary)
        .iter()
        .map(|s| (num(&s["load"]["value"]), s["repeat"].as_u64().unwrap()))
        .collect();
    assert_eq!(order, [(20.0, 1), (40.0, 1), (20.0, 2), (40.0, 2)], "{stdout}");
    let repeats = summary["repeats"].as_array().expect("repeats");
    let loads: Vec<(&str, f64, u64)> = repeats
        .iter()
        .map(|r| {
            (
                r["load"]["kind"].as_str().unwrap(),
                num(&r["load"]["value"]),
                r["runs"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(loads, [("rate", 20.0, 2), ("rate", 40.0, 2)]);
    let tps = &repeats[1]["figures"]["request_throughput_rps"];
    assert_eq!(tps["values"].as_array().map(Vec::len), Some(2), "{tps}");
}

#[test]
fn without_repeat_there_are_no_repeat_keys() {
    let sim = Sim::start(fast_sim());
    let (s, _) = run_ok(
        &sim,
        &["-o", "-st", "1", "-et", "2", "-ts", "1", "-tg", "4", "--requests", "2"],
    );
    let summary = s.summary();
    assert!(summary.get("repeats").is_none(), "{summary}");
    assert!(steps(&summary).iter().all(|s| s.get("repeat").is_none()));
    assert!(s.records().iter().all(|r| r.get("repeat").is_none()));
    let csv = std::fs::read_to_string(s.path("results").join("steps.csv")).unwrap();
    assert!(!csv.lines().next().unwrap().split(',').any(|c| c == "repeat"));
}

#[test]
fn stress_and_capacity_refuse_repeat() {
    let sim = Sim::start(fast_sim());
    for args in [
        vec!["--repeat", "2", "--duration", "5s"],
        vec!["capacity", "--repeat", "2", "--slo", "ttft_p99=1s"],
    ] {
        let s = Scratch::new();
        let mut argv = args.clone();
        let (log, out) = (s.log(), s.out());
        argv.extend(["-u", &sim.url, "-l", &log, "--out", &out]);
        let run = bin().env("LC_ALL", "C").args(&argv).output().unwrap();
        let (stdout, stderr) = text(&run);
        assert_eq!(run.status.code(), Some(2), "{args:?}\n{stdout}\n{stderr}");
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{stderr}");
        assert!(
            lines[0].contains("--repeat") && lines[0].contains("drop --repeat"),
            "{stderr}"
        );
        assert_eq!(sim.stats().requests_total, 0, "nothing was sent");
    }
}
