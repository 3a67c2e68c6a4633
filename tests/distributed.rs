//! Shards of one run as separate processes started together by `--start-at`: on loopback, and
//! as real hosts with their own addresses in network namespaces this test makes (root and
//! iproute2 needed: without them that test says SKIPPED and passes).

mod common;

use common::*;
use llm_bench::sim::SimConfig;
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Two timed steps, concurrency 4 then 8, 2 s each with 1 s between.
const STEPS: &[&str] = &[
    "-o",
    "-pp",
    "40",
    "-tg",
    "20",
    "--start-threads",
    "4",
    "--end-threads",
    "8",
    "--step-threads",
    "4",
    "--step-duration",
    "2s",
    "--step-gap",
    "1s",
    "--no-server-metrics",
    "--no-gpu-metrics",
];

/// The shard's own arguments: which shard, the run, the start, and where its results go.
fn shard_args(dir: &std::path::Path, shard: &str, run_id: &str, at: &str) -> Vec<String> {
    let mut args: Vec<String> = STEPS.iter().map(|s| s.to_string()).collect();
    for extra in [
        "--run-id",
        run_id,
        "--start-at",
        at,
        "--out",
        &dir.join("results").display().to_string(),
        "-l",
        &dir.join("log").display().to_string(),
    ] {
        args.push(extra.to_string());
    }
    if !shard.is_empty() {
        args.extend(["--shard".to_string(), shard.to_string()]);
    }
    args
}

fn summary_of(dir: &std::path::Path) -> Value {
    read_json(&dir.join("results").join("summary.json"))
}

fn wait_all(children: Vec<Child>) {
    for child in children {
        let out = child.wait_with_output().unwrap();
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{stdout}\n{stderr}");
    }
}

/// Each shard's steps: same scheduled start on every shard, each started within 10 ms of it,
/// and the run's identity on the summary and every record.
fn check_shards(dirs: &[Scratch], run_id: &str) {
    let n = dirs.len();
    let mut starts: Vec<Vec<String>> = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let summary = summary_of(dir.dir.path());
        assert_eq!(summary["run_id"], run_id);
        assert_eq!(summary["shard"]["index"], i);
        assert_eq!(summary["shard"]["count"], n);
        // One machine, one clock: the server's Date header agrees with ours within the bounds.
        let clock = &summary["clock"];
        let (offset, within) = (num(&clock["offset_ms"]), num(&clock["uncertainty_ms"]));
        assert!(offset.abs() <= within + 1.0, "{clock}");
        let steps = summary["steps"].as_array().unwrap();
        assert_eq!(steps.len(), 2);
        for (step, whole) in steps.iter().zip([4u32, 8]) {
            // The step keeps the whole run's load point; the shard ran its share.
            assert_eq!(step["load"]["value"], whole);
            let share = whole as usize / n + usize::from(i < whole as usize % n);
            assert_eq!(step["max_in_flight"], share, "{step}");
            let late = step["start_lateness_ms"].as_f64().unwrap();
            assert!(late < 10.0, "shard {i} started {late} ms late");
        }
        starts.push(
            steps
                .iter()
                .map(|s| s["scheduled_start"].as_str().unwrap().to_string())
                .collect(),
        );
        for rec in std::fs::read_to_string(dir.dir.path().join("results/requests.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
        {
            assert_eq!(rec["run_id"], run_id);
            assert_eq!(rec["shard"], i);
            assert_eq!(
                rec["id"].as_u64().unwrap() % n as u64,
                i as u64,
                "ids unique across shards"
            );
        }
    }
    assert!(starts.windows(2).all(|w| w[0] == w[1]), "{starts:?}");
}

#[test]
fn shards_on_loopback_start_each_step_together() {
    let sim = Sim::start(fast_sim());
    for n in [2usize, 4] {
        let run_id = format!("loop-{n}");
        let at = start_at(Duration::from_secs(3));
        let dirs: Vec<Scratch> = (0..n).map(|_| Scratch::new()).collect();
        let children: Vec<Child> = dirs
            .iter()
            .enumerate()
            .map(|(i, dir)| {
                bin()
                    .args(["-u", &sim.url])
                    .args(shard_args(dir.dir.path(), &format!("{i}/{n}"), &run_id, &at))
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        wait_all(children);
        check_shards(&dirs, &run_id);
        check_merge(&dirs, &[4, 8]);
    }
    // The simulator saw the shards' connections together: the whole concurrency at once.
    assert_eq!(sim.stats().max_in_flight, 8);
}

#[test]
fn the_shard_index_can_come_from_an_indexed_job() {
    let sim = Sim::start(fast_sim());
    let dir = Scratch::new();
    let mut args = shard_args(dir.dir.path(), "", "job-1", &start_at(Duration::from_secs(1)));
    args.extend(["--shards".into(), "2".into()]);
    let out = bin()
        .args(["-u", &sim.url])
        .args(&args)
        .env("JOB_COMPLETION_INDEX", "1")
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let summary = summary_of(dir.dir.path());
    assert_eq!(summary["shard"]["index"], 1);
    assert_eq!(summary["shard"]["count"], 2);
    assert!(stdout.contains("Shard 1/2 of run job-1"), "{stdout}");
}

#[test]
fn a_shard_estimates_its_clock_from_the_servers_date_header() {
    // A server whose clock is 1.25 s ahead of this machine's.
    let sim = Sim::start(SimConfig {
        clock_offset_s: 1.25,
        ..fast_sim()
    });
    let dir = Scratch::new();
    let args = shard_args(dir.dir.path(), "0/1", "clock-1", &start_at(Duration::from_secs(7)));
    let out = bin().args(["-u", &sim.url]).args(&args).output().unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let clock = &summary_of(dir.dir.path())["clock"];
    assert_eq!(clock["method"], "http-date");
    let (offset, within) = (num(&clock["offset_ms"]), num(&clock["uncertainty_ms"]));
    assert!((offset - 1250.0).abs() <= within + 1.0, "{clock}");
    assert!(within < 250.0, "a bisection of 1 s over at least 3 probes: {clock}");
    assert!(num(&clock["probes"]) >= 3.0, "{clock}");
    assert!(stdout.contains("ahead of this machine's"), "{stdout}");
}

/// The connections open before the slot and the load is released at it: a step of 1,000
/// connections starts within milliseconds of its scheduled time, not after they have opened.
#[test]
fn a_step_is_released_at_its_slot_with_its_connections_open() {
    let sim = Sim::start(fast_sim());
    let dir = Scratch::new();
    let args = [
        "-o",
        "-pp",
        "20",
        "-tg",
        "4",
        "-st",
        "1000",
        "-et",
        "1000",
        "--step-duration",
        "1s",
        "--no-server-metrics",
        "--no-gpu-metrics",
        "--shard",
        "0/1",
        "--run-id",
        "many-1",
        "--start-at",
        &start_at(Duration::from_secs(4)),
    ];
    let out = dir.run(&sim.url, &args);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let summary = dir.summary();
    let step = &summary["steps"][0];
    let slot = humantime::parse_rfc3339_weak(step["scheduled_start"].as_str().unwrap()).unwrap();
    let slot_s = slot.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let released_s = num(&summary["run_start_unix_s"]) + num(&step["window"]["start_s"]);
    let late_ms = (released_s - slot_s) * 1000.0;
    assert!(
        (-2.0..25.0).contains(&late_ms),
        "released {late_ms:.1} ms after its slot: {step}"
    );
    assert!(num(&step["start_lateness_ms"]) < 25.0, "{step}");
}

#[test]
fn steps_that_end_by_a_request_count_say_they_leave_the_schedule() {
    let sim = Sim::start(fast_sim());
    // The seed's step mode: one request per connection, so no step has a length known ahead.
    let args: Vec<&str> = "-o -pp 40 -tg 10 --start-threads 2 --end-threads 6 --step-threads 2"
        .split(' ')
        .collect();
    let shards = run_shards_with_output(&sim, "batch-2", 2, &args, ShardIndex::Flag);
    for (dir, (_, stderr)) in &shards {
        let said: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains("not on the --start-at schedule"))
            .collect();
        assert_eq!(said.len(), 1, "{stderr}");
        assert!(said[0].contains("concurrency 4"), "{stderr}");
        let steps = read_json(&dir.path("results").join("summary.json"))["steps"].clone();
        assert!(steps[0]["scheduled_start"].is_string(), "{steps}");
        assert!(steps[0]["start_lateness_ms"].is_number(), "{steps}");
        for later in [&steps[1], &steps[2]] {
            assert!(
                later["scheduled_start"].is_null() && later["start_lateness_ms"].is_null(),
                "{later}"
            );
        }
    }
    // The first step was released at its slot on both: the merge gives its start spread.
    let dirs: Vec<Scratch> = shards.into_iter().map(|(s, _)| s).collect();
    let (_out, _, merged) = merged_of(&dirs);
    let spread = merged["merged"]["start_spread_ms"].as_f64().expect("a start spread");
    assert!((0.0..10.0).contains(&spread), "{spread}");
}

#[test]
fn bad_shard_flags_are_one_line_each() {
    // (flags, environment, what the one line says)
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (&["--shard", "2/2"], &[], "not below the number of shards"),
        (&["--shard", "x"], &[], "is not I/N"),
        (&["--shards", "2"], &[], "JOB_COMPLETION_INDEX"),
        (
            &["--shards", "2"],
            &[("JOB_COMPLETION_INDEX", "two")],
            "is not a shard index",
        ),
        (&["--start-at", "tomorrow"], &[], "RFC 3339"),
        (&["--run-id", "a b"], &[], "--run-id"),
        (
            &["capacity", "--slo", "ttft=1s", "--shard", "0/2"],
            &[],
            "a capacity search cannot run as shards",
        ),
    ];
    for (args, env, want) in cases {
        let mut cmd = bin();
        let args = match args.split_first() {
            Some((&"capacity", rest)) => {
                cmd.arg("capacity");
                rest
            }
            _ => args,
        };
        cmd.args(["-u", "http://127.0.0.1:9/v1", "-o"]).args(args);
        for (k, v) in *env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stdout}{stderr}");
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{args:?}: {stderr}");
        assert!(lines[0].contains(want), "{args:?}: {stderr}");
    }
}

/// Network namespaces made and removed by this test: a bridge with the simulator's address,
/// and one namespace per shard with its own address on it.
struct Hosts {
    bridge: String,
    namespaces: Vec<String>,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip").args(args).output().map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Hosts {
    /// `n` hosts 10.77.`net`.(10+i)/24 around a bridge at 10.77.`net`.1.
    fn make(n: usize, net: u8) -> Result<Self, String> {
        let tag = std::process::id() % 100_000;
        let mut hosts = Hosts {
            bridge: format!("lbbr{tag}"),
            namespaces: Vec::new(),
        };
        let gateway = format!("10.77.{net}.1/24");
        ip(&["link", "add", &hosts.bridge, "type", "bridge"])?;
        ip(&["addr", "add", &gateway, "dev", &hosts.bridge])?;
        ip(&["link", "set", &hosts.bridge, "up"])?;
        for i in 0..n {
            let ns = format!("lbns{tag}-{i}");
            let (outer, inner) = (format!("lbo{tag}{i}"), format!("lbi{tag}{i}"));
            ip(&["netns", "add", &ns])?;
            hosts.namespaces.push(ns.clone());
            ip(&["link", "add", &outer, "type", "veth", "peer", "name", &inner])?;
            ip(&["link", "set", &outer, "master", &hosts.bridge, "up"])?;
            ip(&["link", "set", &inner, "netns", &ns])?;
            let address = format!("10.77.{net}.{}/24", 10 + i);
            ip(&["-n", &ns, "addr", "add", &address, "dev", &inner])?;
            ip(&["-n", &ns, "link", "set", &inner, "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(hosts)
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for ns in &self.namespaces {
            let _ = ip(&["netns", "del", ns]);
        }
        let _ = ip(&["link", "del", &self.bridge]);
    }
}

#[test]
fn shards_as_hosts_in_network_namespaces() {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let has_ip = Command::new("ip").arg("-V").output().is_ok_and(|o| o.status.success());
    if !root || !has_ip {
        eprintln!("SKIPPED: shards in network namespaces need root and iproute2 (`ip`)");
        return;
    }
    let net = (std::process::id() % 200 + 20) as u8;
    let n = 4;
    let hosts = match Hosts::make(n, net) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("SKIPPED: network namespaces could not be made here: {e}");
            return;
        }
    };
    let sim = Sim::start(llm_bench::sim::SimConfig {
        host: std::net::Ipv4Addr::new(10, 77, net, 1),
        ..fast_sim()
    });
    let run_id = "netns-4";
    let at = start_at(Duration::from_secs(4));
    let dirs: Vec<Scratch> = (0..n).map(|_| Scratch::new()).collect();
    let children: Vec<Child> = dirs
        .iter()
        .enumerate()
        .map(|(i, dir)| {
            Command::new("ip")
                .args(["netns", "exec", &hosts.namespaces[i], env!("CARGO_BIN_EXE_llm-bench")])
                .args(["-u", &sim.url])
                .args(shard_args(dir.dir.path(), &format!("{i}/{n}"), run_id, &at))
                .env_remove("HTTP_PROXY")
                .env_remove("http_proxy")
                .env_remove("LLM_BENCH_API_KEY")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    wait_all(children);
    check_shards(&dirs, run_id);
    assert_eq!(sim.stats().max_in_flight, 8, "the four hosts' connections at once");
    drop(hosts);
    check_merge(&dirs, &[4, 8]);
}

/// `llm-bench merge` of the shards: totals are the sum, the in-flight peak the whole
/// concurrency, the steps' starts within 10 ms, every shard's clock estimate listed.
fn check_merge(dirs: &[Scratch], concurrency: &[u64]) {
    let (_merged, _, summary) = merged_of(dirs);
    let shards: Vec<Value> = dirs.iter().map(|d| summary_of(d.dir.path())).collect();
    for (i, (step, whole)) in summary["steps"].as_array().unwrap().iter().zip(concurrency).enumerate() {
        let sum: u64 = shards
            .iter()
            .map(|s| s["steps"][i]["requests_ok"].as_u64().unwrap())
            .sum();
        assert_eq!(step["requests_ok"].as_u64(), Some(sum), "{step}");
        assert_eq!(step["max_in_flight"].as_u64(), Some(*whole), "{step}");
    }
    let report = &summary["merged"];
    assert!(num(&report["start_spread_ms"]) < 10.0, "{report}");
    assert!(
        num(&report["clock_offset_spread_ms"]) <= num(&report["clock_uncertainty_ms"]) * 2.0 + 1.0,
        "{report}"
    );
    for shard in summary["shards"].as_array().unwrap() {
        assert!(shard["clock_offset_ms"].is_number(), "{shard}");
    }
}

#[test]
fn a_trace_is_split_by_rows_and_replayed_on_the_common_clock() {
    let sim = Sim::start(fast_sim());
    let trace = format!("{}/tests/fixtures/workloads/mooncake.jsonl", env!("CARGO_MANIFEST_DIR"));
    let dirs = run_shards_together(
        &sim,
        "trace-2",
        2,
        &["-o", "--dataset", &trace, "--no-server-metrics", "--no-gpu-metrics"],
    );
    let mut rows = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let summary = summary_of(dir.dir.path());
        let step = &summary["steps"][0];
        // Both shards' step stands for the whole trace: 6 requests at its mean rate.
        assert_eq!(step["load"]["kind"], "rate", "{step}");
        let scheduled = humantime::parse_rfc3339_weak(step["scheduled_start"].as_str().unwrap()).unwrap();
        let scheduled_s = scheduled.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
        let zero = summary["run_start_unix_s"].as_f64().unwrap();
        for rec in dir.records() {
            let row = rec["row"].as_u64().unwrap();
            assert_eq!(row % 2, i as u64, "row {row} on shard {i}");
            // The trace's rows are 100 ms apart from its first, on every shard's clock alike.
            let due = zero + rec["intended_s"].as_f64().unwrap() - scheduled_s;
            assert!((due - row as f64 * 0.1).abs() < 0.015, "row {row} due at +{due:.4} s");
            rows.push(row);
        }
    }
    rows.sort_unstable();
    assert_eq!(rows, (0..6).collect::<Vec<u64>>());
}

#[test]
fn a_rate_is_split_and_the_shards_together_send_it() {
    let sim = Sim::start(fast_sim());
    let args = [
        "-o",
        "-tg",
        "2",
        "--rate",
        "40",
        "--step-duration",
        "3s",
        "--no-server-metrics",
        "--no-gpu-metrics",
    ];
    let dirs = run_shards_together(&sim, "rate-2", 2, &args);
    let mut seeds = Vec::new();
    for dir in &dirs {
        let step = &summary_of(dir.dir.path())["steps"][0];
        assert_eq!(step["load"]["value"], 40.0);
        let achieved = step["achieved_rps"].as_f64().unwrap();
        assert!((achieved - 20.0).abs() < 4.0, "each shard sends half: {achieved}");
        let firsts: Vec<f64> = dir
            .records()
            .iter()
            .take(5)
            .map(|r| r["intended_s"].as_f64().unwrap())
            .collect();
        seeds.push(firsts);
    }
    assert_ne!(seeds[0], seeds[1], "each shard draws its own schedule");
    let arrivals = sim.stats().arrivals;
    assert!(
        (arrivals.rate_rps - 40.0).abs() < 6.0,
        "the server saw {} req/s",
        arrivals.rate_rps
    );
}
