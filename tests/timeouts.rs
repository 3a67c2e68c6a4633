//! Each timeout ends a request with its own class, and the run goes on.

mod common;

use common::*;
use llm_bench::sim::SimConfig;
use std::net::TcpListener;

fn errors_of(s: &Scratch) -> serde_json::Value {
    s.summary()["steps"][0]["errors"].clone()
}

#[test]
fn ttft_timeout() {
    // 100 prompt tokens × 50 ms each: five seconds to the first token.
    let sim = Sim::start(SimConfig {
        prefill_us_per_token: 50_000.0,
        ..fast_sim()
    });
    let s = Scratch::new();
    let out = s.run(
        &sim.url,
        &[
            "-o",
            "-st",
            "2",
            "-et",
            "2",
            "-pp",
            "400",
            "-tg",
            "5",
            "--ttft-timeout",
            "700ms",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{:?}", text(&out));
    assert_eq!(errors_of(&s)["timeout_ttft"], 2);
}

#[test]
fn idle_timeout() {
    let sim = Sim::start(SimConfig {
        fault_stall_rate: 1.0,
        fault_stall_ms: 3000,
        ..fast_sim()
    });
    let s = Scratch::new();
    let out = s.run(
        &sim.url,
        &["-o", "-st", "2", "-et", "2", "-tg", "10", "--idle-timeout", "700ms"],
    );
    assert_eq!(out.status.code(), Some(1), "{:?}", text(&out));
    assert_eq!(errors_of(&s)["timeout_idle"], 2);
    // Tokens before the stall are kept.
    assert!(s.summary()["steps"][0]["partial_output_tokens"].as_u64().unwrap() >= 2);
}

#[test]
fn request_timeout() {
    let sim = Sim::start(SimConfig {
        decode_base_ms: 10.0,
        ..fast_sim()
    });
    let s = Scratch::new();
    let out = s.run(
        &sim.url,
        &["-o", "-st", "2", "-et", "2", "-tg", "500", "--request-timeout", "700ms"],
    );
    assert_eq!(out.status.code(), Some(1), "{:?}", text(&out));
    assert_eq!(errors_of(&s)["timeout_request"], 2);
}

#[test]
fn server_that_never_answers() {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}/v1", silent.local_addr().unwrap().port());
    let held = std::thread::spawn(move || {
        // Accept and hold every connection without a byte in reply.
        let mut open = Vec::new();
        for stream in silent.incoming().take(3).flatten() {
            open.push(stream);
        }
        std::thread::sleep(std::time::Duration::from_secs(5));
    });
    let s = Scratch::new();
    let out = s.run(
        &url,
        &["-o", "-st", "2", "-et", "2", "--model", "m", "--ttft-timeout", "700ms"],
    );
    assert_eq!(out.status.code(), Some(1), "{:?}", text(&out));
    assert_eq!(errors_of(&s)["timeout_ttft"], 2);
    drop(held);
}

/// A server that starts a non-streamed JSON answer and never finishes it: the TTFT deadline
/// still ends the request (the whole answer would have been its first token).
#[test]
fn json_answer_that_never_finishes() {
    use std::io::{Read, Write};
    let stalling = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}/v1", stalling.local_addr().unwrap().port());
    let held = std::thread::spawn(move || {
        let mut open = Vec::new();
        for mut stream in stalling.incoming().take(3).flatten() {
            let mut buf = [0u8; 16 * 1024];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"choices\":",
            );
            open.push(stream);
        }
        std::thread::sleep(std::time::Duration::from_secs(5));
    });
    let s = Scratch::new();
    let started = std::time::Instant::now();
    let out = s.run(
        &url,
        &["-o", "-st", "2", "-et", "2", "--model", "m", "--ttft-timeout", "700ms"],
    );
    assert_eq!(out.status.code(), Some(1), "{:?}", text(&out));
    assert_eq!(errors_of(&s)["timeout_ttft"], 2);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "the deadline held"
    );
    drop(held);
}
