//! Ctrl-C and SIGTERM stop sending, let requests in flight finish, and still write a valid
//! summary; exit code 130.

mod common;

use common::*;
use llm_bench::sim::SimConfig;
use std::time::{Duration, Instant};

fn interrupt_after(signal: i32, wait: Duration, args: &[&str]) -> (std::process::Output, Duration) {
    let child = bin()
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(wait);
    let sent = Instant::now();
    // SAFETY: kill only sends a signal to our own child.
    unsafe {
        libc::kill(child.id() as i32, signal);
    }
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
            "-u",
            &sim.url,
            "-l",
            &s.log(),
            "--out",
            &s.out(),
        ],
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
        &[
            "-o",
            "--duration",
            "1m",
            "-st",
            "3",
            "-tg",
            "10",
            "-u",
            &sim.url,
            "-l",
            &s.log(),
            "--out",
            &s.out(),
        ],
    );
    assert_eq!(out.status.code(), Some(130), "{:?}", text(&out));
    let summary = s.summary();
    assert_eq!(summary["status"], "interrupted");
    assert!(summary["steps"][0]["requests_ok"].as_u64().unwrap() > 0);
}
