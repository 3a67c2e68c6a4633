//! Ctrl-C and SIGTERM stop sending, let requests in flight finish, and still write a valid
//! summary; exit code 130.

mod common;

use common::*;
use llm_bench::sim::SimConfig;
use std::process::Command;
use std::time::{Duration, Instant};

fn interrupt_after(signal: i32, wait: Duration, mut command: Command) -> (std::process::Output, Duration) {
    let child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(wait);
    let sent = Instant::now();
    common::signal(&child, signal);
    let out = child.wait_with_output().unwrap();
    (out, sent.elapsed())
}

fn sim() -> Sim {
    Sim::start(SimConfig {
        decode_base_ms: 10.0,
        ..fast_sim()
    })
}

#[test]
fn ctrl_c_writes_the_summary_of_what_was_measured() {
    let sim = sim();
    let s = Scratch::new();
    let (out, took) = interrupt_after(
        libc::SIGINT,
        Duration::from_millis(2500),
        s.command(
            &sim.url,
            &[
                "-o",
                "-st",
                "4",
                "-et",
                "8",
                "-ts",
                "4",
                "-tg",
                "20",
                "--step-duration",
                "60s",
            ],
        ),
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(130), "{stdout}\n{stderr}");
    assert!(took < Duration::from_secs(8), "stopping took {took:?}");
    assert!(stdout.contains("Interrupted"), "{stdout}");
    let summary = s.summary();
    assert_eq!(summary["status"], "interrupted");
    let step = &summary["steps"][0];
    assert_eq!(step["concurrency"], 4);
    let ok = step["requests_ok"].as_u64().unwrap();
    assert!(ok > 4, "requests measured before Ctrl-C: {ok}");
    // Requests in flight were allowed to finish: nothing was cut.
    assert_eq!(step["requests_failed"].as_u64(), Some(0), "{step}");
    // Every measured request is on disk.
    assert_eq!(s.records().len() as u64, ok);
}

#[test]
fn sigterm_behaves_like_ctrl_c() {
    let sim = sim();
    let s = Scratch::new();
    let (out, _) = interrupt_after(
        libc::SIGTERM,
        Duration::from_millis(2000),
        s.command(&sim.url, &["-o", "--duration", "1m", "-st", "3", "-tg", "10"]),
    );
    assert_eq!(out.status.code(), Some(130), "{:?}", text(&out));
    let summary = s.summary();
    assert_eq!(summary["status"], "interrupted");
    assert!(summary["steps"][0]["requests_ok"].as_u64().unwrap() > 0);
}

#[test]
fn second_ctrl_c_stops_at_once() {
    let sim = Sim::start(SimConfig {
        fault_stall_rate: 1.0,
        fault_stall_ms: 60_000,
        ..fast_sim()
    });
    let s = Scratch::new();
    let child = s
        .command(
            &sim.url,
            &["-o", "-st", "3", "-et", "3", "-tg", "10", "--drain-timeout", "60s"],
        )
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let started = Instant::now();
    for _ in 0..2 {
        common::signal(&child, libc::SIGINT);
        std::thread::sleep(Duration::from_millis(300));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(s.summary()["status"], "interrupted");
}

#[test]
fn kill_9_loses_nothing_already_finished() {
    let sim = sim();
    let s = Scratch::new();
    let mut child = s
        .command(
            &sim.url,
            &["-o", "-st", "4", "-et", "4", "-tg", "10", "--step-duration", "60s"],
        )
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(3000));
    child.kill().unwrap();
    child.wait().unwrap();
    let completed_by_server = sim.stats().requests_completed;
    // requests.jsonl is flushed every second: at most about a second of requests is missing.
    let records = s.records();
    assert!(records.len() > 10, "{} records on disk", records.len());
    assert!(records.len() as u64 <= completed_by_server);
    let out = run(&["report", &s.out()]);
    assert!(out.status.success(), "{:?}", text(&out));
    let summary = s.summary();
    assert_eq!(summary["status"], "rebuilt");
    assert_eq!(summary["steps"][0]["requests_ok"].as_u64(), Some(records.len() as u64));
}
