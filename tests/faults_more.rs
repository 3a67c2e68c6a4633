//! The fault variants faults_every.rs leaves out, each in step mode and in stress mode: error
//! answers as HTML pages and 429 without Retry-After, a long stall between two tokens (an
//! error only past --idle-timeout), a stream that never ends cut by --request-timeout, a
//! server that closes kept-alive connections (resent once and counted), and a server that goes
//! away in the middle of a run.

mod common;

use common::*;
use llm_bench::sim::{ErrorBody, SimConfig};
use serde_json::Value;
use std::time::Duration;

fn steps(s: &Scratch) -> Vec<Value> {
    s.summary()["steps"].as_array().unwrap().clone()
}

fn total(steps: &[Value], pick: impl Fn(&Value) -> &Value) -> u64 {
    steps.iter().map(|s| pick(s).as_u64().unwrap_or(0)).sum()
}

fn errors(steps: &[Value], class: &str) -> u64 {
    total(steps, |s| &s["errors"][class])
}

fn step_run(s: &Scratch, sim: &Sim, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["-o", "-st", "20", "-et", "40", "-ts", "20", "-tg", "10"];
    args.extend_from_slice(extra);
    s.run(&sim.url, &args)
}

fn stress_run(s: &Scratch, sim: &Sim, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "-o",
        "--duration",
        "1500ms",
        "-st",
        "6",
        "-tg",
        "10",
        "--report-interval",
        "1s",
    ];
    args.extend_from_slice(extra);
    s.run(&sim.url, &args)
}

// ------------------------------------------------------------- HTML pages --

fn proxy_pages() -> SimConfig {
    SimConfig {
        seed: 3,
        fault_error_rate: 0.3,
        fault_error_status: vec![429, 502],
        fault_error_body: ErrorBody::Html,
        ..fast_sim()
    }
}

fn check_proxy_pages(sim: &Sim, s: &Scratch) {
    let steps = steps(s);
    let by_code = sim.stats().faults.error_status_by_code;
    assert_eq!(errors(&steps, "http_429"), by_code["429"]);
    assert_eq!(errors(&steps, "http_502"), by_code["502"]);
    assert_eq!(total(&steps, |s| &s["requests_failed"]), by_code.values().sum::<u64>());
    let samples: Vec<String> = steps
        .iter()
        .flat_map(|s| s["error_samples"].as_array().unwrap().clone())
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect();
    assert!(
        samples
            .iter()
            .any(|m| m == "HTTP 502 Bad Gateway: HTML page \"502 Bad Gateway\""),
        "{samples:?}"
    );
    assert!(
        samples
            .iter()
            .any(|m| m == "HTTP 429 Too Many Requests: HTML page \"429 Too Many Requests\""),
        "{samples:?}"
    );
    assert!(samples.iter().all(|m| !m.contains("Retry-After")), "{samples:?}");
}

#[test]
fn html_error_pages_step_mode() {
    let sim = Sim::start(proxy_pages());
    let s = Scratch::new();
    let out = step_run(&s, &sim, &[]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    check_proxy_pages(&sim, &s);
    // The console lists each distinct message once, with its count.
    assert!(stdout.contains("Errors (distinct messages, with counts):"), "{stdout}");
    let page_lines = stdout
        .lines()
        .filter(|l| l.contains("× http_502: HTTP 502 Bad Gateway"))
        .count();
    assert_eq!(page_lines, 1, "{stdout}");
}

#[test]
fn html_error_pages_stress_mode() {
    let sim = Sim::start(proxy_pages());
    let s = Scratch::new();
    let out = stress_run(&s, &sim, &[]);
    assert!(out.status.success(), "{:?}", text(&out));
    check_proxy_pages(&sim, &s);
}

// ------------------------------------------------------------------ stall --

#[test]
fn long_stall_past_the_idle_timeout_step_mode() {
    let sim = Sim::start(SimConfig {
        seed: 5,
        fault_stall_rate: 0.3,
        fault_stall_ms: 1200,
        ..fast_sim()
    });
    let s = Scratch::new();
    let out = step_run(&s, &sim, &["--idle-timeout", "300ms"]);
    assert!(out.status.success(), "{:?}", text(&out));
    let steps = steps(&s);
    let stalls = sim.stats().faults.stall;
    assert!(stalls > 0);
    assert_eq!(errors(&steps, "timeout_idle"), stalls);
    assert_eq!(total(&steps, |s| &s["requests_failed"]), stalls);
    // The tokens before the stall are kept, in their own column.
    assert_eq!(total(&steps, |s| &s["partial_output_tokens"]), 5 * stalls);
}

#[test]
fn long_stall_within_the_idle_timeout_stress_mode() {
    const STALL_MS: u64 = 400;
    let sim = Sim::start(SimConfig {
        seed: 5,
        fault_stall_rate: 0.2,
        fault_stall_ms: STALL_MS,
        ..fast_sim()
    });
    let s = Scratch::new();
    let out = stress_run(&s, &sim, &[]);
    assert!(out.status.success(), "{:?}", text(&out));
    let steps = steps(&s);
    assert_eq!(
        total(&steps, |s| &s["requests_failed"]),
        0,
        "a stall is slow, not broken"
    );
    // Each stalled request shows exactly one long gap between two tokens.
    let long_gaps: u64 = s
        .records()
        .iter()
        .map(|r| {
            let times: Vec<u64> = r["token_us"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_u64().unwrap())
                .collect();
            times
                .windows(2)
                .filter(|w| w[1] - w[0] >= (STALL_MS - 50) * 1000)
                .count() as u64
        })
        .sum();
    let stalls = sim.stats().faults.stall;
    assert!(stalls > 0);
    assert_eq!(long_gaps, stalls);
    assert!(steps[0]["itl_ms"]["max"].as_f64().unwrap() >= (STALL_MS - 50) as f64);
}

// ---------------------------------------------------------- endless stream --

/// Every stream is endless. 10 ms steps and 20 tokens: the simulator passes the last token at
/// about 210 ms (and counts the fault), the request timeout ends it at 380 ms, long before the
/// client's own guard (56 events, about 560 ms) would.
fn endless() -> SimConfig {
    SimConfig {
        fault_endless_rate: 1.0,
        decode_base_ms: 10.0,
        ..fast_sim()
    }
}

const ENDLESS_ARGS: &[&str] = &["-tg", "20", "--request-timeout", "380ms"];

fn check_endless(sim: &Sim, s: &Scratch) {
    let steps = steps(s);
    let endless = sim.stats().faults.endless;
    assert!(endless >= 2);
    assert_eq!(errors(&steps, "timeout_request"), endless);
    assert_eq!(total(&steps, |s| &s["requests_failed"]), endless);
    assert!(
        total(&steps, |s| &s["partial_output_tokens"]) > 20 * endless,
        "tokens past max_tokens are kept"
    );
}

#[test]
fn endless_stream_ended_by_the_request_timeout_step_mode() {
    let sim = Sim::start(endless());
    let s = Scratch::new();
    let mut args = vec!["-o", "-st", "2", "-et", "4", "-ts", "2"];
    args.extend_from_slice(ENDLESS_ARGS);
    let out = s.run(&sim.url, &args);
    assert_eq!(out.status.code(), Some(1), "nothing succeeded: {:?}", text(&out));
    assert_eq!(steps(&s).len(), 2, "the run went on");
    check_endless(&sim, &s);
}

#[test]
fn endless_stream_ended_by_the_request_timeout_stress_mode() {
    let sim = Sim::start(endless());
    let s = Scratch::new();
    let mut args = vec!["-o", "--duration", "1s", "-st", "2", "--report-interval", "1s"];
    args.extend_from_slice(ENDLESS_ARGS);
    let out = s.run(&sim.url, &args);
    assert_eq!(out.status.code(), Some(1), "nothing succeeded: {:?}", text(&out));
    check_endless(&sim, &s);
}

// -------------------------------------------------- kept-alive connections --

/// llama-server's habit: after a few responses it reads the next request on a kept-alive
/// connection and closes it without answering. llm-bench sends that request once more on a
/// fresh connection, where it succeeds, and counts the resend.
fn check_keepalive_closes(sim: &Sim, s: &Scratch) {
    let steps = steps(s);
    let stats = sim.stats();
    let closes = stats.faults.keepalive_close;
    assert!(closes > 0);
    assert_eq!(total(&steps, |s| &s["requests_failed"]), 0, "{steps:?}");
    assert_eq!(total(&steps, |s| &s["resends"]), closes);
    let ok = total(&steps, |s| &s["requests_ok"]);
    assert_eq!(ok + closes, stats.requests_total);
    let resent: Vec<Value> = s.records().into_iter().filter(|r| r["resends"] == 1).collect();
    assert_eq!(resent.len() as u64, closes);
    for rec in &resent {
        assert!(
            rec["connect_us"].as_u64().unwrap() > 0,
            "resent on a new connection: {rec}"
        );
        let reason = rec["resend_reason"].as_str().unwrap();
        assert!(reason.contains("closed before any response"), "{reason}");
    }
}

#[test]
fn closed_keepalive_connections_are_resent_stress_mode() {
    let sim = Sim::start(SimConfig {
        close_after_responses: 3,
        ..fast_sim()
    });
    let s = Scratch::new();
    let out = stress_run(&s, &sim, &[]);
    let (stdout, _) = text(&out);
    assert!(out.status.success(), "{stdout}");
    check_keepalive_closes(&sim, &s);
    assert!(stdout.contains(" resent"), "{stdout}");
}

#[test]
fn closed_keepalive_connections_are_resent_step_mode() {
    let sim = Sim::start(SimConfig {
        close_after_responses: 2,
        ..fast_sim()
    });
    let s = Scratch::new();
    let out = s.run(
        &sim.url,
        &[
            "-o",
            "-st",
            "3",
            "-et",
            "6",
            "-ts",
            "3",
            "-tg",
            "5",
            "--step-duration",
            "500ms",
        ],
    );
    assert!(out.status.success(), "{:?}", text(&out));
    check_keepalive_closes(&sim, &s);
}

// ------------------------------------------------------ a server that dies --

#[test]
fn server_that_goes_away_mid_run() {
    let sim = Sim::start(fast_sim());
    let s = Scratch::new();
    let child = s
        .command(
            &sim.url,
            &[
                "-o",
                "--duration",
                "2s",
                "-st",
                "4",
                "-tg",
                "20",
                "--report-interval",
                "1s",
            ],
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(900));
    drop(sim);
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "some requests succeeded: {stdout}\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let steps = steps(&s);
    let refused = errors(&steps, "connect");
    assert!(refused > 0, "{steps:?}");
    // Workers pause after a refused connection instead of spinning on it.
    assert!(refused < 100, "{refused} connection attempts in about a second");
    assert!(stdout.contains("cannot connect to"), "{stdout}");
}
