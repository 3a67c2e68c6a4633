//! `llm-bench merge`: two shards of one run, run at the same time against the simulator, merged
//! into one summary exactly as one process recording every request would have written it; and
//! the folders it refuses (one line, exit 2).

mod common;

use common::*;
use serde_json::Value;
use std::path::Path;
use std::time::SystemTime;

/// A step sweep of two timed steps.
const STEPS: &[&str] = &[
    "-o",
    "-st",
    "2",
    "-et",
    "4",
    "-ts",
    "2",
    "--step-duration",
    "2s",
    "--step-gap",
    "1s",
    "-tg",
    "20",
    "-pp",
    "50",
];

/// A stress run of three 2 s intervals.
const STRESS: &[&str] = &[
    "-o",
    "-st",
    "4",
    "--duration",
    "6s",
    "--report-interval",
    "2s",
    "-tg",
    "20",
    "-pp",
    "50",
];

/// Runs the shards of one run (`--shard I/N` each) at the same time; fails unless all succeed.
fn run_shards(sim: &Sim, run_id: &str, count: u32) -> Vec<Scratch> {
    run_shards_together(sim, run_id, count, STEPS)
}

/// The same, each shard told its index as `index` says.
fn run_shards_indexed(sim: &Sim, run_id: &str, count: u32, index: ShardIndex) -> Vec<Scratch> {
    let shards = run_shards_with_output(sim, run_id, count, STEPS, index);
    shards.into_iter().map(|(s, _)| s).collect()
}

fn results(s: &Scratch) -> std::path::PathBuf {
    s.path("results")
}

/// Every record of the shards, each with `start_s` on the common clock (the earliest run start).
fn union_records(shards: &[Scratch]) -> Vec<Value> {
    let starts: Vec<f64> = shards.iter().map(|s| num(&s.summary()["run_start_unix_s"])).collect();
    let earliest = starts.iter().copied().fold(f64::INFINITY, f64::min);
    let mut all = Vec::new();
    for (s, start) in shards.iter().zip(&starts) {
        // As the merge does: the shift first (run starts are ~1e9 s: adding them to a record's
        // time would round it).
        let shift = start - earliest;
        for mut rec in s.records() {
            rec["start_s"] = (num(&rec["start_s"]) + shift).into();
            if let Some(t) = rec.get("intended_s").and_then(Value::as_f64) {
                rec["intended_s"] = (t + shift).into();
            }
            all.push(rec);
        }
    }
    all
}

/// The value at quantile `q` as an HDR histogram reads it: the ⌈q·n⌉-th smallest.
fn at_quantile(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).max(1);
    sorted[rank - 1]
}

/// TTFT and E2E (ms) of the step's measured successful requests sent inside its window.
fn latencies(records: &[Value], step: &Value) -> (Vec<f64>, Vec<f64>) {
    let (start, end) = (num(&step["window"]["start_s"]), num(&step["window"]["end_s"]));
    let mut ttft = Vec::new();
    let mut e2e = Vec::new();
    for r in records {
        let sent = r
            .get("intended_s")
            .and_then(Value::as_f64)
            .unwrap_or_else(|| num(&r["start_s"]));
        let measured = r.get("phase").and_then(Value::as_str) != Some("warmup");
        if r["load"] != step["load"] || !measured || r["ok"] != true || sent < start || sent >= end {
            continue;
        }
        ttft.push(num(&r["first_token_us"]) / 1000.0);
        e2e.push(num(&r["end_us"]) / 1000.0);
    }
    ttft.sort_by(f64::total_cmp);
    e2e.sort_by(f64::total_cmp);
    (ttft, e2e)
}

fn close(ours: f64, truth: f64) -> bool {
    (ours - truth).abs() <= truth * 0.002 + 0.002
}

#[test]
fn two_shards_merge_into_what_one_process_would_report() {
    // Told their index by --shard I/N, or by JOB_COMPLETION_INDEX with --shards N (as the
    // pods of a Kubernetes Indexed Job are): the same run either way.
    for (index, run_id) in [(ShardIndex::Flag, "merge-test"), (ShardIndex::JobIndex, "merge-job")] {
        two_shards_merge(index, run_id);
    }
}

fn two_shards_merge(index: ShardIndex, run_id: &str) {
    let sim = Sim::start(fast_sim());
    let shards = run_shards_indexed(&sim, run_id, 2, index);
    for (i, s) in shards.iter().enumerate() {
        assert_eq!(
            s.summary()["shard"],
            serde_json::json!({"index": i, "count": 2}),
            "{run_id}"
        );
    }
    let (_out, merged_dir, merged) = merged_of(&shards);
    assert_eq!(merged["run_id"], run_id);
    assert!(merged.get("shard").is_none(), "{}", merged["shard"]);
    assert_eq!(merged["merged"]["shards_merged"], 2);
    assert_eq!(merged["merged"]["partial"], false);
    assert!(merged_dir.join("report.html").is_file() && merged_dir.join("steps.csv").is_file());
    let records = union_records(&shards);
    let summaries: Vec<Value> = shards.iter().map(Scratch::summary).collect();
    let steps = merged["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2);
    for (i, step) in steps.iter().enumerate() {
        for key in ["requests_ok", "output_tokens"] {
            let sum: f64 = summaries.iter().map(|s| num(&s["steps"][i][key])).sum();
            assert_eq!(num(&step[key]), sum, "step {i} {key}");
        }
        let (ttft, e2e) = latencies(&records, step);
        assert_eq!(ttft.len() as f64, num(&step["ttft_ms"]["count"]), "step {i}");
        for (name, values) in [("ttft_ms", &ttft), ("e2e_ms", &e2e)] {
            for (p, q) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99)] {
                let (ours, truth) = (num(&step[name][p]), at_quantile(values, q));
                assert!(close(ours, truth), "step {i} {name} {p}: merged {ours} vs {truth}");
            }
        }
        let concurrency = step["load"]["value"].as_u64().unwrap_or(0);
        assert_eq!(step["max_in_flight"].as_u64(), Some(concurrency), "step {i}: {step}");
        assert!(step_start_skew_ms(&summaries, i) < 10.0, "step {i}");
    }
    histograms_match_the_summary(&merged_dir, &merged);
    // Each shard wrote its own, lossless: they are its summary's figures too.
    for s in &shards {
        histograms_match_the_summary(&results(s), &s.summary());
    }
    // The merged summary validates like any other (tests/schema.rs checks it closed).
    assert!(num(&merged["merged"]["start_spread_ms"]) < 10.0, "{}", merged["merged"]);
    merged_records_are_a_run_of_their_own(&merged_dir, &merged, &records);
}

/// The merged folder's requests.jsonl is every shard's records on the common clock, and
/// `llm-bench report` rebuilds the merged figures from it alone.
fn merged_records_are_a_run_of_their_own(dir: &Path, merged: &Value, union: &[Value]) {
    let file = std::fs::read_to_string(dir.join("requests.jsonl")).unwrap();
    let mut starts: Vec<(u64, f64)> = file
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|r| (r["id"].as_u64().unwrap(), num(&r["start_s"])))
        .collect();
    let mut want: Vec<(u64, f64)> = union
        .iter()
        .map(|r| (r["id"].as_u64().unwrap(), num(&r["start_s"])))
        .collect();
    starts.sort_by_key(|r| r.0);
    want.sort_by_key(|r| r.0);
    assert_eq!(starts.len(), want.len());
    for (ours, theirs) in starts.iter().zip(&want) {
        assert_eq!(ours.0, theirs.0);
        assert!(
            (ours.1 - theirs.1).abs() < 1e-6,
            "request {}: {} vs {}",
            ours.0,
            ours.1,
            theirs.1
        );
    }
    let done = bin().arg("report").arg(dir).output().unwrap();
    assert!(done.status.success(), "{:?}", text(&done));
    let rebuilt = read_json(&dir.join("summary.json"));
    for (a, b) in merged["steps"]
        .as_array()
        .unwrap()
        .iter()
        .zip(rebuilt["steps"].as_array().unwrap())
    {
        assert_eq!(a["requests_ok"], b["requests_ok"]);
        assert_eq!(a["ttft_ms"]["p50"], b["ttft_ms"]["p50"]);
        assert_eq!(a["max_in_flight"], b["max_in_flight"]);
    }
}

/// Measured successful requests sent inside `[start, end)` (common clock) that ended before
/// `end + wait`: those the window rule counts in a stress interval.
fn sent_in(records: &[Value], (start, end): (f64, f64), wait: f64) -> u64 {
    let counted = |r: &&Value| {
        let sent = r
            .get("intended_s")
            .and_then(Value::as_f64)
            .unwrap_or_else(|| num(&r["start_s"]));
        let ended = num(&r["start_s"]) + num(&r["end_us"]) / 1e6;
        let measured = r.get("phase").and_then(Value::as_str) != Some("warmup");
        measured && r["ok"] == true && (start..end).contains(&sent) && ended < end + wait
    };
    records.iter().filter(counted).count() as u64
}

/// Shard `s`'s interval `k`, its window on the common clock (its run start − `earliest` later).
fn own_window(s: &Value, k: usize, earliest: f64) -> (f64, f64) {
    let shift = num(&s["run_start_unix_s"]) - earliest;
    let i = &s["stress"]["intervals"][k];
    (num(&i["start_s"]) + shift, num(&i["end_s"]) + shift)
}

#[test]
fn stress_shards_merge_interval_by_interval() {
    let sim = Sim::start(fast_sim());
    let shards = run_shards_together(&sim, "stress-merge", 2, STRESS);
    let (_out, merged_dir, merged) = merged_of(&shards);
    let summaries: Vec<Value> = shards.iter().map(Scratch::summary).collect();
    // The totals: the shards' together; each shard's connections its own.
    let total = &merged["steps"][0];
    for key in ["requests_ok", "output_tokens"] {
        let sum: f64 = summaries.iter().map(|s| num(&s["steps"][0][key])).sum();
        assert_eq!(num(&total[key]), sum, "totals {key}");
    }
    assert_eq!(total["max_in_flight"].as_u64(), Some(4), "{total}");
    let most = summaries
        .iter()
        .map(|s| num(&s["steps"][0]["efficiency_pct"]))
        .fold(0.0, f64::max);
    assert!(num(&total["efficiency_pct"]) <= most + 0.5, "{most}: {total}");
    // The intervals all shards have (said in a note when one has more).
    let counts: Vec<usize> = summaries
        .iter()
        .map(|s| s["stress"]["intervals"].as_array().unwrap().len())
        .collect();
    let n = *counts.iter().min().unwrap();
    let intervals = merged["stress"]["intervals"].as_array().unwrap();
    assert!(n >= 2 && intervals.len() == n, "{counts:?}: {} merged", intervals.len());
    let more = counts.iter().any(|&c| c > n);
    assert_eq!(
        merged["notes"].to_string().contains("are not merged"),
        more,
        "{}",
        merged["notes"]
    );
    let earliest = summaries
        .iter()
        .map(|s| num(&s["run_start_unix_s"]))
        .fold(f64::INFINITY, f64::min);
    let records = union_records(&shards);
    for (k, interval) in intervals.iter().enumerate() {
        interval_is_the_shards_together(k, interval, &summaries, &records, earliest);
    }
    assert!(!merged["stress"]["drift"].as_array().unwrap().is_empty(), "{merged}");
    histograms_match_the_summary(&merged_dir, &merged);
    for s in &shards {
        histograms_match_the_summary(&results(s), &s.summary());
    }
}

/// Merged interval `k`: over the union of the shards' interval k windows; its requests exactly
/// those the window rule counts, its requests and tokens the shards' own within what their
/// windows' few milliseconds apart allow.
fn interval_is_the_shards_together(k: usize, interval: &Value, summaries: &[Value], records: &[Value], earliest: f64) {
    assert_eq!(interval["index"], k);
    let own: Vec<(f64, f64)> = summaries.iter().map(|s| own_window(s, k, earliest)).collect();
    let union = (
        own.iter().map(|w| w.0).fold(f64::INFINITY, f64::min),
        own.iter().map(|w| w.1).fold(f64::NEG_INFINITY, f64::max),
    );
    let window = (num(&interval["start_s"]), num(&interval["end_s"]));
    assert!(
        (window.0 - union.0).abs() < 1e-9 && (window.1 - union.1).abs() < 1e-9,
        "interval {k}: {window:?} vs {own:?}"
    );
    let test = &interval["tests"][0];
    let theirs = |f: &dyn Fn(&Value) -> f64| -> f64 {
        summaries
            .iter()
            .map(|s| f(&s["stress"]["intervals"][k]["tests"][0]))
            .sum()
    };
    let ok = num(&test["requests_ok"]);
    assert_eq!(ok, sent_in(records, window, 2.0) as f64, "interval {k}: {test}");
    let shards_ok = theirs(&|t| num(&t["requests_ok"]));
    assert!(
        (ok - shards_ok).abs() <= 2.0 + 0.02 * shards_ok,
        "interval {k}: {ok} vs {shards_ok}"
    );
    let arrived = |t: &Value| num(&t["output_throughput_tps"]) * num(&t["duration_s"]);
    let (ours, shards_tokens) = (arrived(test), theirs(&arrived));
    assert!(
        shards_tokens > 0.0 && (ours - shards_tokens).abs() <= 20.0 + 0.03 * shards_tokens,
        "interval {k}: {ours} tokens vs the shards' {shards_tokens}"
    );
    let in_flight = num(&test["max_in_flight"]);
    assert!((1.0..=4.0).contains(&in_flight), "interval {k}: {test}");
    let bound = summaries
        .iter()
        .any(|s| s["stress"]["intervals"][k]["tests"][0]["client_bound"] == true);
    assert_eq!(test["client_bound"] == true, bound, "interval {k}");
}

/// The actual start of step `i` on each shard (scheduled + lateness): the largest difference.
fn step_start_skew_ms(summaries: &[Value], i: usize) -> f64 {
    let starts: Vec<f64> = summaries
        .iter()
        .map(|s| {
            let step = &s["steps"][i];
            let at = humantime::parse_rfc3339(step["scheduled_start"].as_str().unwrap()).unwrap();
            let at = at.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs_f64() * 1000.0;
            at + num(&step["start_lateness_ms"])
        })
        .collect();
    let lo = starts.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = starts.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    hi - lo
}

/// histograms.jsonl: a line per stress interval and test (with `interval`, in order), then one
/// per step; each line's percentiles are those of the figures it belongs to.
fn histograms_match_the_summary(dir: &Path, summary: &Value) {
    let text = std::fs::read_to_string(dir.join("histograms.jsonl")).unwrap();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let intervals = summary["stress"]["intervals"].as_array().cloned().unwrap_or_default();
    let mut expected: Vec<(Value, Value)> = Vec::new();
    for interval in &intervals {
        for test in interval["tests"].as_array().unwrap() {
            expected.push((interval["index"].clone(), test.clone()));
        }
    }
    for step in summary["steps"].as_array().unwrap() {
        expected.push((Value::Null, step.clone()));
    }
    assert_eq!(lines.len(), expected.len(), "{}", dir.display());
    for (line, (interval, figures)) in lines.iter().zip(&expected) {
        let at = format!("{}: interval {interval}", dir.display());
        assert_eq!(line.get("interval").unwrap_or(&Value::Null), interval, "{at}");
        assert_eq!(
            (&line["load"], &line["test"]),
            (&figures["load"], &figures["test"]),
            "{at}"
        );
        for (name, key) in [
            ("ttft", "ttft_ms"),
            ("itl", "itl_ms"),
            ("tpot", "tpot_ms"),
            ("e2e", "e2e_ms"),
        ] {
            let mut h = hdrhistogram::Histogram::<u64>::new(3).unwrap();
            for pair in line[name].as_array().unwrap() {
                h.record_n(pair[0].as_u64().unwrap(), pair[1].as_u64().unwrap())
                    .unwrap();
            }
            assert_eq!(h.len() as f64, num(&figures[key]["count"]), "{at} {name}");
            for (p, q) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99)] {
                let from_histogram = h.value_at_quantile(q) as f64 / 1000.0;
                assert_eq!(from_histogram, num(&figures[key][p]), "{at} {name} {p}");
            }
        }
    }
}

/// A refused (or partial) merge: name, folders, extra flags, exit code, what the line says.
type Case<'a> = (&'a str, Vec<&'a Path>, &'a [&'a str], u8, &'a str);

#[test]
fn folders_that_do_not_make_one_run_are_refused_in_one_line() {
    let sim = Sim::start(fast_sim());
    let a = run_shards(&sim, "run-a", 2);
    let b = run_shards(&sim, "run-b", 2);
    let empty = Scratch::new();
    std::fs::create_dir_all(empty.path("results")).unwrap();
    let (a0, a1, b1, none) = (results(&a[0]), results(&a[1]), results(&b[1]), results(&empty));
    let cases: [Case; 4] = [
        ("wrong run id", vec![&a0, &b1], &[], 2, "run-b"),
        (
            "missing shard",
            vec![&a0],
            &[],
            2,
            "shard 1 of 2 of run run-a is missing (have 0)",
        ),
        (
            "partial",
            vec![&a1],
            &["--allow-partial"],
            0,
            "partial merge: shard 0 of 2 missing",
        ),
        ("no summary.json", vec![&a0, &none], &[], 2, "has no summary.json"),
    ];
    for (name, dirs, extra, code, says) in cases {
        let out = Scratch::new();
        let done = merge_folders(&dirs, &out.path("merged"), extra);
        let (stdout, stderr) = text(&done);
        assert_eq!(done.status.code(), Some(i32::from(code)), "{name}: {stdout}\n{stderr}");
        if code == 2 {
            assert_eq!(stderr.trim().lines().count(), 1, "{name}: {stderr}");
            assert!(stderr.contains(says), "{name}: {stderr}");
        } else {
            assert!(stdout.contains(says), "{name}: {stdout}");
            let merged = read_json(&out.path("merged").join("summary.json"));
            assert_eq!(merged["merged"]["partial"], true, "{name}");
            assert_eq!(merged["merged"]["missing"], serde_json::json!([0]), "{name}");
            assert!(merged["notes"].to_string().contains(says), "{name}");
        }
    }
    // Into a shard's own folder: its records would be overwritten while read.
    let done = merge_folders(&[&a0, &a1], &a1, &[]);
    let (stdout, stderr) = text(&done);
    assert_eq!(done.status.code(), Some(2), "{stdout}\n{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("is one of the shards' folders"), "{stderr}");
}

#[test]
fn errors_their_samples_and_client_bound_shards_are_merged() {
    let sim = Sim::start(llm_bench::sim::SimConfig {
        fault_error_rate: 0.3,
        fault_error_status: vec![503],
        ..fast_sim()
    });
    let shards = run_shards(&sim, "errors-merge", 2);
    // Shard 1's second step could not keep up (as tests/client_bound.rs makes a client do):
    // said in its summary, which is all the merge has of it.
    let path = results(&shards[1]).join("summary.json");
    let mut summary = read_json(&path);
    summary["steps"][1]["client_bound"] = true.into();
    std::fs::write(&path, serde_json::to_vec(&summary).unwrap()).unwrap();
    let (_out, _, merged) = merged_of(&shards);
    let summaries: Vec<Value> = shards.iter().map(Scratch::summary).collect();
    for (i, step) in merged["steps"].as_array().unwrap().iter().enumerate() {
        let of = |s: &Value| s["steps"][i].clone();
        let failed: u64 = summaries
            .iter()
            .map(|s| of(s)["requests_failed"].as_u64().unwrap())
            .sum();
        assert!(failed > 0, "step {i}: the simulator failed no request");
        assert_eq!(step["requests_failed"].as_u64(), Some(failed), "step {i}");
        // Each kind of error, and each sampled message, counted over both shards.
        let mut errors = serde_json::Map::new();
        let mut samples: std::collections::BTreeMap<(String, String), u64> = Default::default();
        for s in &summaries {
            for (kind, n) in of(s)["errors"].as_object().unwrap() {
                let sum = errors.get(kind).and_then(Value::as_u64).unwrap_or(0) + n.as_u64().unwrap();
                errors.insert(kind.clone(), sum.into());
            }
            for e in of(s)["error_samples"].as_array().unwrap() {
                let key = (e["class"].to_string(), e["message"].to_string());
                *samples.entry(key).or_default() += e["count"].as_u64().unwrap();
            }
        }
        assert_eq!(step["errors"], Value::Object(errors), "step {i}");
        let merged_samples: std::collections::BTreeMap<(String, String), u64> = step["error_samples"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    (e["class"].to_string(), e["message"].to_string()),
                    e["count"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(merged_samples, samples, "step {i}");
        let bound = i == 1;
        assert_eq!(step["client_bound"], bound, "step {i}");
        let named = if bound {
            serde_json::json!([1])
        } else {
            serde_json::json!([])
        };
        assert_eq!(
            step.get("client_bound_shards")
                .cloned()
                .unwrap_or(serde_json::json!([])),
            named,
            "step {i}"
        );
    }
    assert_eq!(merged["client_bound"], true);
}
