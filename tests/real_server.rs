//! llm-bench against a real llama.cpp `llama-server` (SmolLM2-135M on CPU). Runs only when
//! `LLM_BENCH_REAL_URL` is set, which `scripts/real-server.sh run -- cargo test ...` does;
//! without it each test says so and passes. Run them one at a time: they share the server.

mod common;

use common::*;
use serde_json::Value;

fn real_url() -> Option<String> {
    match std::env::var("LLM_BENCH_REAL_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!("LLM_BENCH_REAL_URL is not set: skipped (run through scripts/real-server.sh run)");
            None
        }
    }
}

fn steps(s: &Scratch) -> Vec<Value> {
    s.summary()["steps"].as_array().unwrap().clone()
}

#[test]
fn step_mode_against_llama_server() {
    let Some(url) = real_url() else { return };
    let s = Scratch::new();
    let out = s.run(
        &url,
        &[
            "-i",
            "-o",
            "-st",
            "1",
            "-et",
            "16",
            "-ts",
            "7",
            "-pp",
            "200",
            "-tg",
            "16",
            "--ignore-eos",
        ],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let steps = steps(&s);
    assert_eq!(steps.len(), 6, "1, 8, 15 × input, output");
    for step in &steps {
        assert_eq!(step["requests_failed"], 0, "{step}");
        assert_eq!(step["tokens_estimated"], false, "usage comes from the server: {step}");
        assert!(step["ttft_ms"]["p50"].as_f64().unwrap() > 0.0);
        assert!(step["prompt_tokens"].as_u64().unwrap() > 0);
    }
    let output = steps
        .iter()
        .find(|s| s["test"] == "output" && s["concurrency"] == 8)
        .unwrap();
    assert_eq!(
        output["output_tokens"].as_u64(),
        Some(8 * 16),
        "--ignore-eos gives exactly -tg tokens"
    );
    assert!(output["per_conn_tps"]["mean"].as_f64().unwrap() > 0.0);
    let input = steps.iter().find(|s| s["test"] == "input").unwrap();
    assert!(input["prefill_tps"]["mean"].as_f64().unwrap() > 0.0);
    // llama-server's role-only first chunk is never counted as a token. Token counts come from
    // usage: llama-server holds back text (partial UTF-8, possible stop strings), so a few of its
    // 16 tokens can arrive in one chunk or in none.
    for rec in s.records().into_iter().filter(|r| r["test"] == "output") {
        assert_eq!(rec["output_tokens"], 16, "{rec}");
        let chunks = rec["token_us"].as_array().unwrap().len() as u64;
        assert!((10..=16).contains(&chunks), "{rec}");
        assert!(
            rec["events"].as_u64().unwrap() >= chunks + 3,
            "role, usage and [DONE] events too: {rec}"
        );
        assert!(rec["first_event_us"].as_u64().unwrap() <= rec["first_token_us"].as_u64().unwrap());
    }
}

#[test]
fn short_stress_run_against_llama_server() {
    let Some(url) = real_url() else { return };
    let s = Scratch::new();
    let out = s.run(
        &url,
        &[
            "--duration",
            "60s",
            "-st",
            "4",
            "-pp",
            "200",
            "-tg",
            "16",
            "--report-interval",
            "20s",
        ],
    );
    assert!(out.status.success(), "{:?}", text(&out));
    let summary = s.summary();
    assert!(summary["stress"]["intervals"].as_array().unwrap().len() >= 3);
    for step in steps(&s) {
        assert!(step["requests_ok"].as_u64().unwrap() > 0);
        assert_eq!(step["requests_failed"], 0, "{step}");
    }
}

#[test]
fn image_input_is_refused_in_one_line() {
    let Some(url) = real_url() else { return };
    let s = Scratch::new();
    let image = s.path("photo.png");
    std::fs::write(&image, PNG).unwrap();
    let out = s.run(
        &url,
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
        stderr.contains("rejects image input") && stderr.contains("mmproj"),
        "{stderr}"
    );
}

/// At concurrency 1, our speeds agree with llama-server's own `timings`.
#[test]
fn speeds_agree_with_the_servers_own_timings() {
    let Some(url) = real_url() else { return };
    let s = Scratch::new();
    let out = s.run(
        &url,
        &[
            "-o",
            "-st",
            "1",
            "-et",
            "1",
            "--step-duration",
            "8s",
            "-pp",
            "1200",
            "-tg",
            "48",
            "--ignore-eos",
        ],
    );
    assert!(out.status.success(), "{:?}", text(&out));
    let records = s.records();
    assert!(!records.is_empty());
    for rec in records.iter().filter(|r| r["ok"] == true) {
        let timings = &rec["server_timings"];
        let server_prefill = timings["prompt_per_second"].as_f64().unwrap();
        let server_decode = timings["predicted_per_second"].as_f64().unwrap();
        let prompt_n = timings["prompt_n"].as_f64().unwrap();
        let ttft_s = rec["first_token_us"].as_f64().unwrap() / 1e6;
        // Our prefill speed over the tokens the server actually evaluated (it may reuse a cached
        // template prefix): TTFT also holds the first decode step and HTTP, so ours is lower.
        let ours_prefill = prompt_n / ttft_s;
        let ratio = ours_prefill / server_prefill;
        assert!(
            (0.6..=1.1).contains(&ratio),
            "prefill ours {ours_prefill:.1} vs server {server_prefill:.1} tok/s"
        );
        let tokens = rec["output_tokens"].as_f64().unwrap();
        let gen_s = (rec["last_token_us"].as_f64().unwrap() - rec["first_token_us"].as_f64().unwrap()) / 1e6;
        let ours_decode = (tokens - 1.0) / gen_s;
        let ratio = ours_decode / server_decode;
        assert!(
            (0.8..=1.25).contains(&ratio),
            "decode ours {ours_decode:.1} vs server {server_decode:.1} tok/s"
        );
    }
}

/// Identical prompts let llama-server reuse its prompt cache: llm-bench says so, and
/// `--extra-body '{"cache_prompt": false}'` turns the cache off. With it off, the server's own
/// Prometheus counters agree with llm-bench's token totals.
#[test]
fn prompt_cache_is_detected_and_metrics_agree() {
    let Some(url) = real_url() else { return };
    let args = [
        "-o",
        "-st",
        "1",
        "-et",
        "1",
        "--step-duration",
        "4s",
        "-pp",
        "600",
        "-tg",
        "4",
        "--same-prompt",
    ];

    let cached = Scratch::new();
    let out = cached.run(&url, &args);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let step = &steps(&cached)[0];
    assert!(step["prompt_cache_hits"].as_u64().unwrap() > 0, "{step}");
    assert!(stdout.contains("reused a cached prompt prefix"), "{stdout}");
    assert!(stdout.contains(r#"--extra-body '{"cache_prompt": false}'"#), "{stdout}");

    let prompt_before = metric(&url, "llamacpp:prompt_tokens_total");
    let predicted_before = metric(&url, "llamacpp:tokens_predicted_total");
    let fresh = Scratch::new();
    let mut fresh_args = args.to_vec();
    fresh_args.extend(["--extra-body", r#"{"cache_prompt": false}"#]);
    let out = fresh.run(&url, &fresh_args);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let step = &steps(&fresh)[0];
    assert_eq!(step["prompt_cache_hits"], 0, "{step}");
    for rec in fresh.records() {
        let prompt_n = rec["server_timings"]["prompt_n"].as_f64().unwrap();
        assert_eq!(
            prompt_n,
            rec["prompt_tokens"].as_f64().unwrap(),
            "whole prompt evaluated: {rec}"
        );
    }
    // The server's counters moved by our totals plus the one pre-flight request, which is not
    // part of any step (a few tokens).
    let prompt_delta = metric(&url, "llamacpp:prompt_tokens_total") - prompt_before;
    let predicted_delta = metric(&url, "llamacpp:tokens_predicted_total") - predicted_before;
    let ours_prompt = step["prompt_tokens"].as_f64().unwrap();
    let ours_output = step["output_tokens"].as_f64().unwrap();
    assert!(
        (ours_prompt..=ours_prompt + 400.0).contains(&prompt_delta),
        "server prompt tokens {prompt_delta} vs ours {ours_prompt}"
    );
    assert!(
        (ours_output..=ours_output + 16.0).contains(&predicted_delta),
        "server predicted tokens {predicted_delta} vs ours {ours_output}"
    );
}

/// Token-exact prompts with no tokenizer file: through llama-server's own `/tokenize`, and from
/// usage counts alone. `--isl 256` must give usage.prompt_tokens within ±1 of 256 for at least
/// 95% of requests and within ±2% for all; `--osl 64 --ignore-eos` exactly 64 output tokens.
#[test]
fn token_exact_lengths_against_llama_server() {
    let Some(url) = real_url() else { return };
    for (probe, method) in [
        ("auto", "/tokenize"),
        ("usage", "calibration from the server's usage counts"),
    ] {
        let s = Scratch::new();
        let out = s.run(
            &url,
            &[
                "-o",
                "-st",
                "4",
                "-et",
                "4",
                "--requests",
                "24",
                "--isl",
                "256",
                "--osl",
                "64",
                "--ignore-eos",
                "--length-probe",
                probe,
            ],
        );
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{stdout}\n{stderr}");
        let header = stdout
            .lines()
            .find(|l| l.starts_with("Prompt lengths:"))
            .unwrap_or_default();
        assert!(header.contains(method), "{probe}: {header}");
        let records = s.records();
        assert_eq!(records.len(), 24, "{stdout}");
        let mut within_one = 0;
        for rec in &records {
            let prompt = rec["prompt_tokens"].as_f64().unwrap();
            assert!((prompt - 256.0).abs() <= 256.0 * 0.02, "{probe}: {rec}");
            within_one += usize::from((prompt - 256.0).abs() <= 1.0);
            assert_eq!(rec["output_tokens"], 64, "{probe}: {rec}");
            assert_eq!(rec["requested_isl"], 256);
        }
        assert!(
            within_one * 100 >= 95 * records.len(),
            "{probe}: {within_one} of 24 within ±1"
        );
        let step = &steps(&s)[0];
        assert_eq!(step["osl"]["within_1_token_pct"], 100.0, "{step}");
        assert!(step["length_warnings"].is_null(), "{step}");
        assert!(stdout.contains("ISL asked 256"), "{stdout}");
    }
}

/// A small ShareGPT file: the first human turn is sent, the gpt turn's length asked for, the
/// bad row skipped and counted.
#[test]
fn sharegpt_dataset_against_llama_server() {
    let Some(url) = real_url() else { return };
    let s = Scratch::new();
    let dataset = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/sharegpt-small.json");
    let out = s.run(
        &url,
        &["-o", "-st", "2", "-et", "2", "--requests", "6", "--dataset", dataset],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("sharegpt (detected), 3 rows"), "{stdout}");
    assert!(stdout.contains("1 bad rows skipped"), "{stdout}");
    let records = s.records();
    assert_eq!(records.len(), 6);
    for rec in &records {
        assert_eq!(rec["ok"], true, "{rec}");
        assert!([0, 1, 3].contains(&rec["row"].as_u64().unwrap()), "{rec}");
        assert!(rec["requested_osl"].as_u64().unwrap() > 0);
        assert!(rec["prompt_tokens"].as_u64().unwrap() > 5);
    }
}

/// llama-server's own `/metrics` (the script starts it with `--metrics`), scraped during the
/// run: found at pre-flight, its token counters over each step equal our totals (the pre-flight
/// request comes before the first step's first sample), and its `requests_processing` gauge
/// reaches the step's concurrency (the server has 8 slots).
#[test]
fn server_metrics_of_llama_server_match_our_totals() {
    let Some(url) = real_url() else { return };
    let s = Scratch::new();
    let out = s.run(
        &url,
        &[
            "-o",
            "-st",
            "4",
            "-et",
            "8",
            "-ts",
            "4",
            "--step-duration",
            "4s",
            "-tg",
            "16",
            "--ignore-eos",
            "--metrics-interval",
            "500ms",
        ],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("(llamacpp families)"), "{stdout}");
    for step in steps(&s) {
        let server = &step["server_metrics"];
        assert_eq!(server["source"], "llamacpp", "{step}");
        let check = &server["token_check"];
        assert_eq!(check["mismatch"], false, "{server}");
        assert_eq!(
            server["generation_tokens"], check["ours_generation_tokens"],
            "every generated token counted by both: {server}"
        );
        let concurrency = step["concurrency"].as_f64().unwrap();
        let running = server["requests_running"]["max"].as_f64().unwrap();
        assert_eq!(running, concurrency.min(8.0), "{server}");
    }
    assert!(s.path("results").join("server_metrics.jsonl").exists());
}

/// llama-server's answers carry no `Date` header: a shard says its clock cannot be estimated,
/// once, and runs.
#[test]
fn a_shard_says_llama_server_gives_no_clock() {
    let Some(url) = real_url() else { return };
    let s = Scratch::new();
    let out = s.run(
        &url,
        &[
            "-o",
            "-st",
            "2",
            "-et",
            "2",
            "--step-duration",
            "2s",
            "-tg",
            "8",
            "--shard",
            "0/2",
        ],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(stdout.matches("Clock: no offset estimate").count(), 1, "{stdout}");
    let clock = &s.summary()["clock"];
    assert_eq!(
        clock["unavailable"], "the server's answers carry no Date header",
        "{clock}"
    );
    assert!(clock.get("offset_ms").is_none(), "{clock}");
}
