//! The embeddings endpoint and reasoning models, end to end over loopback TCP against the
//! simulator, and the client's answer capture (`Outgoing::keep_text`).

mod common;

use common::*;
use llm_bench::client::http::ResponseKind;
use llm_bench::client::{Client, Endpoint, ErrorClass, Outgoing, RequestRecord, Timeouts};
use llm_bench::sim::SimConfig;
use std::sync::Arc;

/// Keys of token-generation figures an embeddings step must not have.
const GENERATION_KEYS: [&str; 8] = [
    "ttft_ms",
    "itl_ms",
    "itl_per_token_ms",
    "tpot_ms",
    "per_conn_tps",
    "output_throughput_tps",
    "output_tokens",
    "efficiency_pct",
];

#[test]
fn embeddings_run_end_to_end() {
    let sim = Sim::start(SimConfig {
        prefill_us_per_token: 50.0,
        ..fast_sim()
    });
    let (s, stdout) = run_ok(
        &sim,
        &[
            "--endpoint",
            "embeddings",
            "--embed-batch",
            "4",
            "-st",
            "1",
            "-et",
            "2",
            "-ts",
            "1",
            "-pp",
            "200",
        ],
    );
    let summary = s.summary();
    let steps = summary["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2, "one test (input) at two concurrencies: {summary}");
    for step in steps {
        assert_eq!(step["test"], "input", "{step}");
        assert_eq!(step["requests_failed"], 0, "{step}");
        let ok = num(&step["requests_ok"]);
        assert_eq!(num(&step["inputs"]), 4.0 * ok, "batch K honoured: {step}");
        let (inputs_s, tokens_s, rps) = (
            num(&step["inputs_per_s"]),
            num(&step["input_tokens_per_s"]),
            num(&step["requests_per_s"]),
        );
        assert!(rps > 0.0 && (inputs_s - 4.0 * rps).abs() < 1e-6 * inputs_s, "{step}");
        // 4 inputs of 200 characters: about 42 tokens each as the simulator's tokenizer counts
        // them (BOS, words, punctuation and the request number's digits: src/sim/tokenizer.rs).
        let prompt = num(&step["prompt_tokens"]);
        assert!(
            (tokens_s - prompt / num(&step["duration_s"])).abs() < 1e-6 * tokens_s,
            "{step}"
        );
        assert!((160.0 * ok..=180.0 * ok).contains(&prompt), "{step}");
        assert!(num(&step["e2e_ms"]["p50"]) > 0.0, "{step}");
        for key in GENERATION_KEYS {
            assert!(step.get(key).is_none(), "{key} in an embeddings step: {step}");
        }
    }
    for rec in s.records() {
        assert_eq!(rec["ok"], true, "{rec}");
        assert_eq!(rec["inputs"], 4, "{rec}");
        assert!((160..=180).contains(&rec["prompt_tokens"].as_u64().unwrap()), "{rec}");
        assert!(rec["first_token_us"].is_null(), "{rec}");
    }
    assert!(
        stdout.contains("inputs/s") && stdout.contains("input tok/s"),
        "{stdout}"
    );
    assert!(!stdout.contains("TTFT") && !stdout.contains("ITL"), "{stdout}");
    assert!(
        stdout.contains("prompt 200 chars | embeddings: 4 inputs a request"),
        "{stdout}"
    );
    // The sim saw K inputs per request, one body each.
    let ours: u64 = s.records().iter().map(|r| r["prompt_tokens"].as_u64().unwrap()).sum();
    assert_eq!(sim.stats().prompt_tokens_total, ours);
    // `llm-bench report` rebuilds the same embeddings figures from requests.jsonl.
    std::fs::remove_file(s.path("results").join("summary.json")).unwrap();
    let out = run(&["report", &s.out()]);
    assert!(out.status.success(), "{:?}", text(&out));
    let rebuilt = s.summary();
    let pick = |v: &serde_json::Value| {
        let steps = v["steps"].as_array().unwrap().clone();
        steps
            .iter()
            .map(|s| {
                (
                    s["inputs"].clone(),
                    s["inputs_per_s"].clone(),
                    s.get("ttft_ms").is_some(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(pick(&summary), pick(&rebuilt));
}

#[test]
fn embeddings_usage_errors_are_one_clear_line() {
    let sim = Sim::start(fast_sim());
    for (args, says) in [
        (vec!["--endpoint", "embeddings", "-mm"], "no multimodal test"),
        (vec!["--endpoint", "embeddings", "-i", "-o"], "give one of them"),
        (vec!["--embed-batch", "3"], "--embed-batch is for --endpoint embeddings"),
        (
            vec!["--endpoint", "embeddings", "--slo", "ttft_p99=1s"],
            "its --slo can bound only e2e",
        ),
    ] {
        let s = Scratch::new();
        let out = s.run(&sim.url, &args);
        let (stdout, stderr) = text(&out);
        assert!(!out.status.success(), "{args:?}\n{stdout}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
    }
}

#[test]
fn reasoning_ttft_and_tokens() {
    let sim = Sim::start(SimConfig {
        reasoning_tokens: 3,
        ..fast_sim()
    });
    let (s, stdout) = run_ok(&sim, &["-o", "-st", "2", "-et", "2", "-tg", "8"]);
    let records = s.records();
    assert!(!records.is_empty());
    for rec in &records {
        assert_eq!(rec["ok"], true, "{rec}");
        let (reasoning, answer) = (num(&rec["first_reasoning_us"]), num(&rec["first_answer_us"]));
        assert!(reasoning < answer, "reasoning first: {rec}");
        assert_eq!(
            num(&rec["first_token_us"]),
            reasoning,
            "TTFT is the first token of any kind: {rec}"
        );
        assert_eq!(rec["reasoning_tokens"], 3, "{rec}");
        assert!(
            rec.get("reasoning_tokens_estimated").is_none(),
            "the server's count: {rec}"
        );
        assert_eq!(rec["output_tokens"], 8, "{rec}");
        assert_eq!(rec["finish_reason"], "length", "{rec}");
    }
    let step = &s.summary()["steps"][0];
    assert_eq!(
        num(&step["reasoning_tokens"]),
        3.0 * num(&step["requests_ok"]),
        "{step}"
    );
    assert_eq!(num(&step["reasoning_tokens_mean"]), 3.0, "{step}");
    assert!(
        num(&step["ttft_reasoning_ms"]["p50"]) < num(&step["ttft_answer_ms"]["p50"]),
        "{step}"
    );
    assert!(
        stdout.contains("TTFT reasoning ms") && stdout.contains("reasoning tokens (3.0 per request)"),
        "{stdout}"
    );
    // Without reasoning, none of it appears.
    let sim = Sim::start(fast_sim());
    let (s, stdout) = run_ok(&sim, &["-o", "-st", "1", "-et", "1", "-tg", "4"]);
    let step = &s.summary()["steps"][0];
    assert!(step.get("ttft_reasoning_ms").is_none() && step.get("reasoning_tokens").is_none());
    assert!(!stdout.contains("reasoning"), "{stdout}");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn chat(sim: &Sim, max_tokens: u64, keep_text: bool) -> RequestRecord {
    let endpoint = Arc::new(Endpoint::parse(&sim.url, None, &[]).unwrap());
    let body = serde_json::json!({
        "model": SimConfig::default().model,
        "messages": [{"role": "user", "content": "hello"}],
        "max_tokens": max_tokens,
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    let outgoing = Outgoing {
        path: "/chat/completions",
        body: body.to_string().into(),
        max_tokens,
        keep_text,
        ..Default::default()
    };
    send_once(endpoint, &outgoing)
}

#[test]
fn keep_text_captures_the_answer_only_when_asked() {
    let sim = Sim::start(SimConfig {
        reasoning_tokens: 2,
        ..fast_sim()
    });
    let rec = chat(&sim, 5, true);
    assert!(rec.ok, "{:?}", rec.error_message);
    // The simulator says "tok " per token; the two reasoning tokens are not the answer.
    assert_eq!(rec.answer_text.as_deref(), Some("tok tok tok "));
    assert_eq!(rec.reasoning_tokens, Some(2));
    let rec = chat(&sim, 5, false);
    assert!(rec.ok);
    assert_eq!(rec.answer_text, None);
}

/// A one-shot server: reads one request and answers `body` as JSON.
fn answer_once(body: &'static str) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        // Head, then Content-Length bytes of body.
        loop {
            let n = conn.read(&mut buf).unwrap();
            seen.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&seen);
            if let Some(end) = text.find("\r\n\r\n") {
                let length: usize = text[..end]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                if seen.len() >= end + 4 + length {
                    break;
                }
            }
            if n == 0 {
                return;
            }
        }
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        conn.write_all(response.as_bytes()).unwrap();
    });
    url
}

fn embed(url: &str, inputs: u32) -> RequestRecord {
    let endpoint = Arc::new(Endpoint::parse(url, None, &[]).unwrap());
    let outgoing = Outgoing {
        path: "/embeddings",
        body: r#"{"model":"m","input":["a","b","c","d"]}"#.into(),
        estimated_prompt_tokens: 4,
        response: ResponseKind::Json,
        inputs,
        ..Default::default()
    };
    send_once(endpoint, &outgoing)
}

#[test]
fn an_embeddings_answer_with_the_wrong_number_of_items_is_an_error() {
    let three = r#"{"object":"list","data":[{"embedding":[0.1]},{"embedding":[0.2]},{"embedding":[0.3]}],"usage":{"prompt_tokens":7,"total_tokens":7}}"#;
    let rec = embed(&answer_once(three), 4);
    assert!(!rec.ok);
    assert_eq!(rec.error, Some(ErrorClass::MalformedStream));
    assert_eq!(
        rec.error_message.as_deref(),
        Some("the embeddings answer has 3 data items for 4 inputs")
    );
    assert_eq!((rec.inputs, rec.prompt_tokens), (4, 7));
    let rec = embed(&answer_once(three), 3);
    assert!(rec.ok, "{:?}", rec.error_message);
    assert_eq!(
        (rec.prompt_tokens, rec.tokens_estimated, rec.first_token_us),
        (7, false, None)
    );
    // Not JSON at all, and no usage: said, and estimated.
    let rec = embed(&answer_once("<html>"), 3);
    assert_eq!(rec.error, Some(ErrorClass::MalformedStream));
    assert!(rec.error_message.unwrap().contains("not the expected JSON"));
    let rec = embed(&answer_once(r#"{"data":[{}]}"#), 1);
    assert!(rec.ok && rec.tokens_estimated && rec.prompt_tokens == 4);
}

#[test]
fn the_simulator_serves_embeddings() {
    let sim = Sim::start(fast_sim());
    let url = sim.url.clone();
    let body = serde_json::json!({"model": SimConfig::default().model, "input": ["x", "yy"]}).to_string();
    let endpoint = Arc::new(Endpoint::parse(&url, None, &[]).unwrap());
    let outgoing = Outgoing {
        path: "/embeddings",
        body: body.into(),
        response: ResponseKind::Json,
        inputs: 2,
        ..Default::default()
    };
    let rec = send_once(endpoint, &outgoing);
    assert!(rec.ok, "{:?}", rec.error_message);
    // As the simulator counts a completions prompt of the same inputs: BOS + tokens, each.
    assert_eq!(rec.prompt_tokens, 4);
    assert_eq!(rec.inputs, 2);
}

/// One request on a fresh client, its record.
fn send_once(endpoint: Arc<Endpoint>, outgoing: &Outgoing) -> RequestRecord {
    runtime().block_on(async {
        let mut client = Client::new(endpoint, Timeouts::default());
        let mut rec = RequestRecord::default();
        client.execute(outgoing, tokio::time::Instant::now(), &mut rec).await;
        rec
    })
}
