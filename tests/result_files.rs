//! The files written on request besides summary.json (issue 11 §2): `requests.csv`
//! (`--csv-requests`) and the vLLM export (`--export vllm FILE`), at the end of a run and by
//! `llm-bench report DIR`.

mod common;

use common::*;
use serde_json::Value;

fn csv_rows(s: &Scratch) -> Vec<String> {
    std::fs::read_to_string(s.path("results").join("requests.csv"))
        .expect("requests.csv written")
        .lines()
        .map(str::to_string)
        .collect()
}

fn vllm_lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .expect("the vLLM export written")
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object a line"))
        .collect()
}

#[test]
fn a_run_writes_requests_csv_and_the_vllm_export() {
    let sim = Sim::start(fast_sim());
    let s = Scratch::new();
    let export = s.path("vllm.jsonl");
    let export_arg = export.display().to_string();
    let args = [
        "-i",
        "-o",
        "-st",
        "1",
        "-et",
        "2",
        "-tg",
        "5",
        "--csv-requests",
        "--export",
        "vllm",
        &export_arg,
    ];
    let out = s.run(&sim.url, &args);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let records = s.records();
    let rows = csv_rows(&s);
    assert_eq!(rows.len(), records.len() + 1, "a header and one row per record");
    assert!(
        rows[0].starts_with("id,test,concurrency,conn,load.kind,load.value,"),
        "{}",
        rows[0]
    );
    let ids: Vec<u64> = rows[1..]
        .iter()
        .map(|r| r.split(',').next().unwrap().parse().unwrap())
        .collect();
    let jsonl_ids: Vec<u64> = records.iter().map(|r| r["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, jsonl_ids, "the same records in the same order");
    assert!(stdout.contains("requests.csv"), "{stdout}");

    let summary = s.summary();
    let steps = summary["steps"].as_array().unwrap();
    let lines = vllm_lines(&export);
    assert_eq!(lines.len(), steps.len(), "one vLLM result per step and test");
    for (line, step) in lines.iter().zip(steps) {
        assert_eq!(line["completed"], step["requests_ok"]);
        assert_eq!(line["llm_bench_test"], step["test"]);
        assert_eq!(line["max_concurrency"], step["concurrency"]);
        assert_eq!(line["request_rate"], "inf");
        assert_eq!(line["model_id"], summary["model"]);
        for key in [
            "mean_ttft_ms",
            "median_tpot_ms",
            "std_itl_ms",
            "p99_e2el_ms",
            "output_throughput",
        ] {
            assert!(line[key].is_number(), "{key}: {line}");
        }
        assert_eq!(line["mean_ttft_ms"], step["ttft_ms"]["mean"]);
    }
}

#[test]
fn report_rewrites_requests_csv_from_what_requests_jsonl_kept() {
    let sim = Sim::start(fast_sim());
    let s = Scratch::new();
    let out = s.run(&sim.url, &["-o", "-st", "2", "-et", "2", "-tg", "4", "--requests", "6"]);
    assert!(out.status.success(), "{:?}", text(&out));
    let results = s.path("results");
    assert!(!results.join("requests.csv").exists(), "only on request");
    // As after a crash: the last line cut short.
    let jsonl = results.join("requests.jsonl");
    let mut kept = std::fs::read_to_string(&jsonl).unwrap();
    kept.push_str("{\"id\": 99, \"cut");
    std::fs::write(&jsonl, kept).unwrap();
    let export = s.path("rebuilt.jsonl");
    let out = run(&[
        "report",
        &s.out(),
        "--csv-requests",
        "--export",
        "vllm",
        &export.display().to_string(),
    ]);
    assert!(out.status.success(), "{:?}", text(&out));
    let records = readable_records(&s);
    assert_eq!(csv_rows(&s).len(), records + 1);
    assert_eq!(vllm_lines(&export).len(), 1);
    let notes = s.summary()["notes"].to_string();
    assert!(notes.contains("1 unreadable lines skipped"), "{notes}");
    // A folder that has requests.csv gets it rewritten without being asked.
    std::fs::write(results.join("requests.csv"), "stale\n").unwrap();
    let out = run(&["report", &s.out()]);
    assert!(out.status.success(), "{:?}", text(&out));
    assert_eq!(csv_rows(&s).len(), records + 1);
}

#[test]
fn export_mistakes_are_one_line_and_exit_2() {
    let sim = Sim::start(fast_sim());
    let s = Scratch::new();
    for (args, says) in [
        (vec!["--export", "guidellm", "x.json"], "unknown format guidellm"),
        (vec!["--export", "vllm", "/no/such/folder/x.json"], "does not exist"),
        (vec!["--export", "vllm"], "--export"),
    ] {
        let mut all = vec!["-o", "-st", "1", "-et", "1"];
        all.extend(args.iter());
        let out = s.run(&sim.url, &all);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    assert!(!s.path("results").exists(), "nothing written before the load");
}

/// Records of requests.jsonl, a cut line left out.
fn readable_records(s: &Scratch) -> usize {
    std::fs::read_to_string(s.path("results").join("requests.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| serde_json::from_str::<Value>(l).is_ok())
        .count()
}
