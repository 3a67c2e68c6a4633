//! Every server fault of issue 4 at once, in step mode and in stress mode: each injected fault
//! lands in exactly one error class (or, for a huge event, in a success), the counts agree
//! exactly with what the simulator says it injected, tokens received before a failure stay
//! counted in their own column, messages are deduplicated, and the run goes on.

mod common;

use common::*;
use llm_bench::sim::{FaultCounts, SimConfig};
use serde_json::Value;
use std::collections::BTreeMap;

/// Every fault the simulator has except the stall (which only becomes an error through the idle
/// timeout, see faults_more.rs). The later faults never share a request, and the first ones
/// (error, cut, malformed) resolve to one class when they do, so every count can be exact.
fn every_fault() -> SimConfig {
    SimConfig {
        seed: 4,
        fault_error_rate: 0.15,
        fault_error_status: vec![429, 500, 502, 503, 400],
        fault_retry_after: Some(1),
        fault_cut_rate: 0.05,
        fault_malformed_rate: 0.05,
        fault_reset_rate: 0.07,
        fault_no_answer_rate: 0.04,
        fault_reset_stream_rate: 0.07,
        fault_no_done_rate: 0.07,
        fault_invalid_utf8_rate: 0.07,
        fault_error_event_rate: 0.07,
        fault_huge_event_rate: 0.07,
        fault_endless_rate: 0.07,
        ..fast_sim()
    }
}

/// Generous enough for a loaded machine, short enough to keep silent requests cheap.
const TTFT_TIMEOUT: &str = "500ms";
/// Tokens per request; every mid-stream fault strikes after half of them.
const TOKENS: u64 = 10;

/// Sums an integer field over the steps (or an entry of a map field).
fn total(steps: &[Value], pick: impl Fn(&Value) -> &Value) -> u64 {
    steps.iter().map(|s| pick(s).as_u64().unwrap_or(0)).sum()
}

fn errors(steps: &[Value], class: &str) -> u64 {
    total(steps, |s| &s["errors"][class])
}

/// Each fault against the class it must produce, with what both sides counted.
fn check_exact(faults: &FaultCounts, steps: &[Value]) {
    let resends = total(steps, |s| &s["resends"]);
    let mut pairs: Vec<(String, u64, u64)> = vec![
        ("stream_cut".into(), faults.cut_stream, errors(steps, "stream_cut")),
        (
            "malformed_stream".into(),
            faults.malformed_chunk,
            errors(steps, "malformed_stream"),
        ),
        (
            "stream_reset".into(),
            faults.reset_mid_stream,
            errors(steps, "stream_reset"),
        ),
        (
            "stream_incomplete".into(),
            faults.no_done,
            errors(steps, "stream_incomplete"),
        ),
        (
            "invalid_utf8".into(),
            faults.invalid_utf8,
            errors(steps, "invalid_utf8"),
        ),
        ("server_error".into(), faults.error_event, errors(steps, "server_error")),
        ("stream_overrun".into(), faults.endless, errors(steps, "stream_overrun")),
        ("timeout_ttft".into(), faults.no_answer, errors(steps, "timeout_ttft")),
        // A reset before any response on a connection opened earlier is resent once; only a
        // reset of a fresh connection (or of the resend) is an error.
        (
            "no_response + resends".into(),
            faults.reset_before_response,
            errors(steps, "no_response") + resends,
        ),
    ];
    for (status, injected) in &faults.error_status_by_code {
        let class = format!("http_{status}");
        pairs.push((class.clone(), *injected, errors(steps, &class)));
    }
    for (what, injected, seen) in &pairs {
        assert_eq!(
            injected, seen,
            "{what}: injected {injected}, llm-bench saw {seen}\n{faults:?}"
        );
        assert!(*injected > 0, "{what} never happened; pick another seed\n{faults:?}");
    }
    assert_eq!(faults.error_status_by_code.len(), 5, "{faults:?}");
    assert!(faults.huge_event > 0, "{faults:?}");
    // Nothing else went wrong: every failure is in one of the classes above.
    for step in steps {
        for class in step["errors"].as_object().unwrap().keys() {
            let expected = class == "no_response" || pairs.iter().any(|(what, ..)| what == class);
            assert!(expected, "unexpected failure class {class}: {step}");
        }
    }
}

fn check_run(sim: &Sim, s: &Scratch) {
    let summary = s.summary();
    let steps = summary["steps"].as_array().unwrap();
    let stats = sim.stats();
    check_exact(&stats.faults, steps);

    // Every request the simulator saw is accounted for: once as ok or failed, resends aside.
    let ok = total(steps, |s| &s["requests_ok"]);
    let failed = total(steps, |s| &s["requests_failed"]);
    let resends = total(steps, |s| &s["resends"]);
    assert_eq!(ok + failed + resends, stats.requests_total);
    // Huge events are handled: every stream the simulator finished is a success here, except
    // those it finished with a broken event in the middle.
    let broken = stats.faults.malformed_chunk + stats.faults.invalid_utf8;
    assert_eq!(ok + broken, stats.requests_completed);

    // Tokens received before a failure stay counted, in their own column.
    let records = s.records();
    let half = TOKENS / 2;
    for rec in records.iter().filter(|r| r["ok"] == false) {
        let class = rec["error"].as_str().unwrap();
        let tokens = rec["output_tokens"].as_u64().unwrap();
        let expected = match class {
            "stream_cut" | "stream_reset" | "stream_incomplete" | "server_error" => Some(half),
            "invalid_utf8" | "malformed_stream" => Some(TOKENS),
            "stream_overrun" => None,
            _ => Some(0),
        };
        if let Some(expected) = expected {
            assert_eq!(tokens, expected, "{rec}");
        } else {
            assert!(
                tokens > 2 * TOKENS,
                "an endless stream is read well past max_tokens: {rec}"
            );
        }
        assert_eq!(rec["token_us"].as_array().unwrap().len() as u64, tokens, "{rec}");
    }
    let partial: u64 = records
        .iter()
        .filter(|r| r["ok"] == false)
        .map(|r| r["output_tokens"].as_u64().unwrap())
        .sum();
    assert_eq!(total(steps, |s| &s["partial_output_tokens"]), partial);
    assert!(partial > 0);
    // The simulator sent exactly what llm-bench counted, except what an endless stream had
    // already put on the wire when llm-bench stopped reading it.
    let counted = total(steps, |s| &s["output_tokens"]) + partial;
    let sent = stats.output_tokens_total;
    assert!(
        sent >= counted && sent - counted <= 40 * stats.faults.endless,
        "sent {sent}, counted {counted}"
    );

    // Messages are deduplicated with counts, and say what happened.
    let mut messages: BTreeMap<String, u64> = BTreeMap::new();
    for step in steps {
        let samples = step["error_samples"].as_array().unwrap();
        // The first five distinct messages, and beyond them the first of every other class:
        // no class is left without an explanation.
        let classes = step["errors"].as_object().unwrap();
        assert!(samples.len() <= 5 + classes.len(), "{samples:?}");
        for class in classes.keys() {
            assert!(
                samples.iter().any(|e| e["class"] == class.as_str()),
                "no message for {class}: {samples:?}"
            );
        }
        let mut seen = std::collections::BTreeSet::new();
        for sample in samples {
            let key = (sample["class"].to_string(), sample["message"].to_string());
            assert!(
                seen.insert(key),
                "a message is repeated instead of counted: {samples:?}"
            );
            *messages
                .entry(sample["message"].as_str().unwrap().to_string())
                .or_default() += sample["count"].as_u64().unwrap();
        }
    }
    assert!(
        messages.values().any(|&n| n > 1),
        "nothing was deduplicated: {messages:?}"
    );
    let message_of = |class: &str| {
        records
            .iter()
            .find(|r| r["error"] == class)
            .map(|r| r["error_message"].as_str().unwrap().to_string())
            .unwrap_or_default()
    };
    assert!(
        message_of("http_429").contains("Retry-After: 1"),
        "{}",
        message_of("http_429")
    );
    assert!(
        !message_of("http_500").contains("Retry-After"),
        "{}",
        message_of("http_500")
    );
    assert!(
        message_of("http_400").contains("simulated fault: HTTP 400"),
        "the JSON error body is read"
    );
    assert!(
        message_of("stream_reset").contains("reset"),
        "{}",
        message_of("stream_reset")
    );
    assert!(
        message_of("timeout_ttft").contains("no response within"),
        "{}",
        message_of("timeout_ttft")
    );
    assert!(
        message_of("stream_overrun").contains("max_tokens 10"),
        "{}",
        message_of("stream_overrun")
    );
    assert!(message_of("server_error").contains("error inside the stream"));
    let resent = records.iter().find(|r| r["resends"] == 1).expect("a resent request");
    assert!(
        resent["resend_reason"]
            .as_str()
            .unwrap()
            .contains("reset before any response"),
        "{resent}"
    );
}

#[test]
fn every_fault_in_step_mode() {
    let sim = Sim::start(every_fault());
    let s = Scratch::new();
    let out = s.run(
        &sim.url,
        &[
            "-o",
            "-st",
            "60",
            "-et",
            "120",
            "-ts",
            "60",
            "-tg",
            "10",
            "--ttft-timeout",
            TTFT_TIMEOUT,
        ],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(
        s.summary()["steps"].as_array().unwrap().len(),
        2,
        "the run went on through the faults"
    );
    check_run(&sim, &s);
    assert!(stdout.contains("errors: ") && stdout.contains("resent"), "{stdout}");
}

#[test]
fn every_fault_in_stress_mode() {
    let sim = Sim::start(every_fault());
    let s = Scratch::new();
    let out = s.run(
        &sim.url,
        &[
            "-o",
            "--duration",
            "2s",
            "-st",
            "8",
            "-tg",
            "10",
            "--report-interval",
            "1s",
            "--ttft-timeout",
            TTFT_TIMEOUT,
        ],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    check_run(&sim, &s);
    // Keep-alive connections were reused, so some resets hit fresh connections after a failure
    // and others hit reused ones: both outcomes occur.
    let steps = s.summary()["steps"].as_array().unwrap().clone();
    assert!(
        errors(&steps, "no_response") > 0 && total(&steps, |s| &s["resends"]) > 0,
        "{steps:?}"
    );
}
