//! llm-bench against the simulator's llama-server flavor (docs/llama-server-notes.md): the
//! chat stream's role chunk with `content: null`, usage and `timings` in the last chunk, the
//! completions stream without a role chunk, llama.cpp's error shape, and its /metrics counters.

mod common;

use common::*;
use llm_bench::sim::{Flavor, SimConfig};
use serde_json::Value;

const TOKENS: u64 = 8;

/// 1 ms of prefill per prompt token: a 400-character prompt (100 tokens) puts 100 ms between
/// the role chunk, sent at once, and the first token.
fn llama_server() -> SimConfig {
    SimConfig {
        flavor: Flavor::LlamaServer,
        prefill_us_per_token: 1000.0,
        ..fast_sim()
    }
}

fn run_against_llama(endpoint: &str) -> (Scratch, Vec<Value>) {
    let sim = Sim::start(llama_server());
    let s = Scratch::new();
    let out = s.run(
        &sim.url,
        &[
            "-o",
            "-st",
            "2",
            "-et",
            "4",
            "-ts",
            "2",
            "-pp",
            "400",
            "-tg",
            "8",
            "--endpoint",
            endpoint,
        ],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for step in s.summary()["steps"].as_array().unwrap() {
        assert_eq!(step["requests_failed"], 0, "{step}");
        assert_eq!(step["tokens_estimated"], false, "usage was read: {step}");
        assert_eq!(
            step["output_tokens"].as_u64(),
            Some(TOKENS * step["concurrency"].as_u64().unwrap())
        );
    }
    let records = s.records();
    for rec in &records {
        assert_eq!(rec["output_tokens"].as_u64(), Some(TOKENS), "{rec}");
        assert_eq!(
            rec["token_us"].as_array().unwrap().len() as u64,
            TOKENS,
            "one token per chunk: {rec}"
        );
        // The server's own timings come through, and agree with what llm-bench measured.
        let timings = &rec["server_timings"];
        assert_eq!(timings["predicted_n"].as_f64(), Some(TOKENS as f64), "{rec}");
        assert_eq!(timings["prompt_n"].as_f64(), rec["prompt_tokens"].as_f64(), "{rec}");
        let ttft_s = rec["first_token_us"].as_f64().unwrap() / 1e6;
        let ours = rec["prompt_tokens"].as_f64().unwrap() / ttft_s;
        let ratio = ours / timings["prompt_per_second"].as_f64().unwrap();
        assert!(
            (0.5..=1.01).contains(&ratio),
            "prefill ours {ours:.0} tok/s vs the server's: {rec}"
        );
    }
    drop(sim);
    (s, records)
}

#[test]
fn chat_stream_ttft_starts_at_the_first_content_chunk() {
    let (_, records) = run_against_llama("chat");
    for rec in &records {
        let role = rec["first_event_us"].as_u64().unwrap();
        let token = rec["first_token_us"].as_u64().unwrap();
        assert!(
            token >= role + 80_000,
            "the role chunk (content: null) is not the first token: {rec}"
        );
    }
}

#[test]
fn completions_stream_has_no_role_chunk() {
    let (_, records) = run_against_llama("completions");
    for rec in &records {
        assert_eq!(rec["first_event_us"], rec["first_token_us"], "{rec}");
        assert!(rec["first_token_us"].as_u64().unwrap() >= 80_000, "{rec}");
    }
}

#[test]
fn image_rejection_is_one_line() {
    let sim = Sim::start(SimConfig {
        reject_images: true,
        ..llama_server()
    });
    let s = Scratch::new();
    let image = s.path("photo.png");
    std::fs::write(&image, PNG).unwrap();
    let out = s.run(
        &sim.url,
        &[
            "-mm",
            "-st",
            "2",
            "-et",
            "2",
            "-tg",
            "4",
            "-ip",
            image.to_str().unwrap(),
        ],
    );
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("rejects image input") && stderr.contains("you may need to provide the mmproj"),
        "{stderr}"
    );
}

#[test]
fn run_totals_match_the_metrics_counters() {
    let sim = Sim::start(llama_server());
    let (prompt_before, output_before) = (
        metric(&sim.url, "llamacpp:prompt_tokens_total"),
        metric(&sim.url, "llamacpp:tokens_predicted_total"),
    );
    let s = Scratch::new();
    let out = s.run(
        &sim.url,
        &["-i", "-o", "-st", "2", "-et", "4", "-ts", "2", "-pp", "200", "-tg", "6"],
    );
    assert!(out.status.success(), "{:?}", text(&out));
    let steps = s.summary()["steps"].as_array().unwrap().clone();
    let sum = |key: &str| steps.iter().map(|s| s[key].as_u64().unwrap()).sum::<u64>();
    assert_eq!(sum("requests_failed"), 0);
    // Counters are whole numbers, exact in an f64.
    let prompt = (metric(&sim.url, "llamacpp:prompt_tokens_total") - prompt_before) as u64;
    let output = (metric(&sim.url, "llamacpp:tokens_predicted_total") - output_before) as u64;
    assert_eq!(sum("prompt_tokens"), prompt);
    assert_eq!(sum("output_tokens"), output);
    assert_eq!(
        output,
        6 * 6 + 6,
        "6 output requests of 6 tokens and 6 input requests of one"
    );
}

/// Identical prompts hit llama-server's prompt cache: llm-bench counts those requests from the
/// server's `timings.prompt_n`, says so with the way out, and `--extra-body` turns it off.
#[test]
fn prompt_cache_reuse_is_reported_and_extra_body_turns_it_off() {
    let sim = Sim::start(llama_server());
    let args = [
        "-o",
        "-st",
        "2",
        "-et",
        "2",
        "--step-duration",
        "1s",
        "-pp",
        "400",
        "-tg",
        "4",
    ];

    let cached = Scratch::new();
    let mut with_same = args.to_vec();
    with_same.push("--same-prompt");
    let out = cached.run(&sim.url, &with_same);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let step = &cached.summary()["steps"][0];
    let ok = step["requests_ok"].as_u64().unwrap();
    // Every request but the first (and the pre-flight's twin) found its prompt cached.
    assert!(step["prompt_cache_hits"].as_u64().unwrap() >= ok - 2, "{step}");
    assert!(stdout.contains("reused a cached prompt prefix"), "{stdout}");
    let advice = cached.summary()["recommendations"].to_string();
    assert!(
        advice.contains(r#"--extra-body '{\"cache_prompt\": false}'"#),
        "{advice}"
    );

    let fresh = Scratch::new();
    let mut without_cache = with_same.clone();
    without_cache.extend(["--extra-body", r#"{"cache_prompt": false}"#]);
    let out = fresh.run(&sim.url, &without_cache);
    assert!(out.status.success(), "{:?}", text(&out));
    let step = &fresh.summary()["steps"][0];
    assert_eq!(step["prompt_cache_hits"], 0, "{step}");
    for rec in fresh.records() {
        assert_eq!(
            rec["server_timings"]["prompt_n"].as_f64(),
            rec["prompt_tokens"].as_f64(),
            "{rec}"
        );
    }

    // Unique prompts (the default) never hit the cache.
    let unique = Scratch::new();
    let out = unique.run(&sim.url, &args);
    assert!(out.status.success(), "{:?}", text(&out));
    assert_eq!(unique.summary()["steps"][0]["prompt_cache_hits"], 0);
}
