//! The simulator's newer faults and its llama-server flavor, seen on the wire with the raw
//! client of `common::raw`: exactly which bytes go out, how the connection ends, and what
//! /sim/stats says it did.

mod common;

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use common::raw::*;
use llm_bench::sim::{self, Flavor, SimConfig, SimHandle, SimStats};
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;

fn chat(max_tokens: u64) -> Value {
    json!({
        "model": "llm-bench-sim",
        "messages": [{"role": "user", "content": "Hello, simulator!"}],
        "max_tokens": max_tokens,
        "stream": true,
        "stream_options": {"include_usage": true},
    })
}

async fn stream(sim: &SimHandle, path: &str, body: &Value) -> Stream {
    Conn::open(sim.addr).await.stream(path, body).await
}

/// Waits (briefly) until the simulator's stats satisfy `pred`.
async fn eventually(sim: &SimHandle, what: &str, pred: impl Fn(&SimStats) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(3);
    while !pred(&sim.stats()) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {:?}",
            sim.stats()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Sends a request and reads whatever comes back until the connection ends.
async fn send_and_read_all(conn: &mut Conn, body: &Value) -> (Vec<u8>, Option<ErrorKind>) {
    conn.send("POST", "/v1/chat/completions", &[], &body.to_string()).await;
    let mut got = Vec::new();
    match conn.io.read_to_end(&mut got).await {
        Ok(_) => (got, None),
        Err(e) => (got, Some(e.kind())),
    }
}

#[tokio::test]
async fn reset_before_response_sends_nothing_but_a_reset() {
    let sim = start(SimConfig {
        fault_reset_rate: 1.0,
        ..fast()
    })
    .await;
    let (got, error) = send_and_read_all(&mut Conn::open(sim.addr).await, &chat(4)).await;
    assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
    assert_eq!(error, Some(ErrorKind::ConnectionReset));
    eventually(&sim, "reset accounted", |s| s.in_flight == 0).await;
    let stats = sim.stats();
    assert_eq!((stats.faults.reset_before_response, stats.requests_total), (1, 1));
    assert_eq!(stats.prompt_tokens_total, 0, "never reached the engine");
    sim.shutdown();
}

#[tokio::test]
async fn no_answer_stays_silent_until_the_client_leaves() {
    let sim = start(SimConfig {
        fault_no_answer_rate: 1.0,
        ..fast()
    })
    .await;
    let mut conn = Conn::open(sim.addr).await;
    conn.send("POST", "/v1/chat/completions", &[], &chat(4).to_string())
        .await;
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_millis(300), conn.io.read(&mut byte)).await;
    assert!(read.is_err(), "the server answered: {read:?}");
    assert_eq!(sim.stats().in_flight, 1);
    assert_eq!(sim.stats().faults.no_answer, 1);
    // hyper notices the client's close and drops the silent request.
    drop(conn);
    eventually(&sim, "the silent request to end", |s| s.in_flight == 0).await;
    sim.shutdown();
}

#[tokio::test]
async fn reset_mid_stream_after_half_of_the_tokens() {
    let sim = start(SimConfig {
        fault_reset_stream_rate: 1.0,
        ..fast()
    })
    .await;
    let s = stream(&sim, "/v1/chat/completions", &chat(10)).await;
    assert_eq!(s.head.status, 200);
    assert!(!s.complete);
    assert_eq!(s.failed_with, Some(ErrorKind::ConnectionReset));
    assert_eq!(s.content_events().len(), 5, "the tokens sent before the reset arrive");
    eventually(&sim, "reset accounted", |s| s.in_flight == 0).await;
    let stats = sim.stats();
    assert_eq!(stats.faults.reset_mid_stream, 1);
    assert_eq!(stats.output_tokens_total, 5);
    assert_eq!(stats.requests_completed, 0);
    sim.shutdown();
}

#[tokio::test]
async fn no_done_ends_the_body_cleanly_halfway() {
    let sim = start(SimConfig {
        fault_no_done_rate: 1.0,
        ..fast()
    })
    .await;
    let mut conn = Conn::open(sim.addr).await;
    let s = conn.stream("/v1/chat/completions", &chat(10)).await;
    assert!(s.complete, "the terminating chunk is sent");
    assert_eq!(s.content_events().len(), 5);
    assert!(s
        .events
        .iter()
        .all(|e| e.data != "[DONE]" && !e.data.contains("finish_reason\":\"")));
    // The connection is still good for the next request.
    let (head, _) = conn.request("GET", "/health", &[], "").await;
    assert_eq!(head.status, 200);
    assert_eq!(sim.stats().faults.no_done, 1);
    sim.shutdown();
}

#[tokio::test]
async fn invalid_utf8_error_event_and_huge_event() {
    let sim = start(SimConfig {
        fault_invalid_utf8_rate: 1.0,
        ..fast()
    })
    .await;
    let s = stream(&sim, "/v1/chat/completions", &chat(6)).await;
    assert!(s.complete);
    let broken: Vec<&Event> = s.events.iter().filter(|e| e.data.contains('\u{fffd}')).collect();
    assert_eq!(broken.len(), 1, "one chunk carries invalid UTF-8");
    assert_eq!(s.content_events().len(), 6, "and still its token");
    assert_eq!(sim.stats().faults.invalid_utf8, 1);
    sim.shutdown();

    let sim = start(SimConfig {
        fault_error_event_rate: 1.0,
        ..fast()
    })
    .await;
    let s = stream(&sim, "/v1/chat/completions", &chat(6)).await;
    let data: Vec<&str> = s.events.iter().map(|e| e.data.as_str()).collect();
    assert_eq!(s.content_events().len(), 3);
    assert_eq!(data[data.len() - 1], "[DONE]");
    let error: Value = serde_json::from_str(data[data.len() - 2]).unwrap();
    assert_eq!(error["error"]["message"], "simulated fault: error inside the stream");
    let stats = sim.stats();
    assert_eq!((stats.faults.error_event, stats.requests_completed), (1, 0));
    sim.shutdown();

    let sim = start(SimConfig {
        fault_huge_event_rate: 1.0,
        fault_huge_event_kib: 1500,
        ..fast()
    })
    .await;
    let s = stream(&sim, "/v1/chat/completions", &chat(6)).await;
    assert!(s.complete);
    let largest = s.events.iter().map(|e| e.data.len()).max().unwrap();
    assert!(largest > 1500 * 1024, "{largest}");
    assert_eq!(s.content_events().len(), 6);
    let stats = sim.stats();
    assert_eq!((stats.faults.huge_event, stats.requests_completed), (1, 1));
    sim.shutdown();
}

#[tokio::test]
async fn endless_stream_goes_on_until_the_client_leaves() {
    let sim = start(SimConfig {
        fault_endless_rate: 1.0,
        ..fast()
    })
    .await;
    let mut conn = Conn::open(sim.addr).await;
    conn.send("POST", "/v1/chat/completions", &[], &chat(3).to_string())
        .await;
    let head = conn.read_head().await;
    assert_eq!(head.status, 200);
    let mut text_chunks = 0;
    while text_chunks < 20 {
        let chunk = conn.read_chunk().await.expect("the stream goes on");
        assert!(!chunk.is_empty(), "an endless stream never terminates");
        let text = String::from_utf8(chunk).unwrap();
        assert!(!text.contains("[DONE]") && !text.contains("\"length\""), "{text}");
        text_chunks += text.matches("\"content\":\"tok \"").count();
    }
    assert_eq!(sim.stats().faults.endless, 1);
    drop(conn);
    eventually(&sim, "the endless stream to end", |s| s.in_flight == 0).await;
    assert!(sim.stats().output_tokens_total >= 20);
    sim.shutdown();
}

#[tokio::test]
async fn kept_alive_connection_closed_after_n_responses() {
    let sim = start(SimConfig {
        close_after_responses: 2,
        ..fast()
    })
    .await;
    let mut conn = Conn::open(sim.addr).await;
    for _ in 0..2 {
        let s = conn.stream("/v1/chat/completions", &chat(3)).await;
        assert!(s.complete);
    }
    let (got, error) = send_and_read_all(&mut conn, &chat(3)).await;
    assert!(
        got.is_empty() && error.is_none(),
        "a plain close without an answer: {error:?}"
    );
    let stats = sim.stats();
    assert_eq!(stats.faults.keepalive_close, 1);
    assert_eq!((stats.requests_total, stats.requests_completed), (3, 2));
    sim.shutdown();
}

#[tokio::test]
async fn error_answers_by_status_with_retry_after_and_html() {
    let sim = start(SimConfig {
        fault_error_rate: 1.0,
        fault_error_status: vec![429, 400, 503],
        fault_retry_after: Some(7),
        ..fast()
    })
    .await;
    let mut seen = std::collections::BTreeMap::new();
    for _ in 0..30 {
        let (head, body) = post(sim.addr, "/v1/chat/completions", &chat(2)).await;
        let retry = head.headers.get("retry-after").cloned();
        match head.status {
            429 | 503 => assert_eq!(retry.as_deref(), Some("7")),
            400 => assert_eq!(retry, None),
            other => panic!("unexpected status {other}"),
        }
        assert_eq!(body["error"]["code"], head.status);
        *seen.entry(head.status.to_string()).or_insert(0u64) += 1;
    }
    let faults = sim.stats().faults;
    assert_eq!(faults.error_status, 30);
    assert_eq!(faults.error_status_by_code, seen);
    assert_eq!(seen.len(), 3, "{seen:?}");
    sim.shutdown();

    let sim = start(SimConfig {
        fault_error_rate: 1.0,
        fault_error_status: vec![502],
        fault_error_body: sim::ErrorBody::Html,
        ..fast()
    })
    .await;
    let mut conn = Conn::open(sim.addr).await;
    conn.send("POST", "/v1/chat/completions", &[], &chat(2).to_string())
        .await;
    let head = conn.read_head().await;
    let body = conn.read_body(&head).await;
    assert_eq!(head.status, 502);
    assert_eq!(head.headers["content-type"], "text/html");
    assert!(String::from_utf8(body)
        .unwrap()
        .contains("<title>502 Bad Gateway</title>"));
    sim.shutdown();
}

fn llama() -> SimConfig {
    SimConfig {
        flavor: Flavor::LlamaServer,
        ..fast()
    }
}

#[tokio::test]
async fn llama_server_chat_stream_layout() {
    let sim = start(llama()).await;
    let s = stream(&sim, "/v1/chat/completions", &chat(4)).await;
    let events: Vec<Value> = s
        .events
        .iter()
        .filter(|e| e.data != "[DONE]")
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .collect();
    assert_eq!(events.len(), 1 + 4 + 2, "role, four tokens, finish, usage");
    assert_eq!(
        events[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": null})
    );
    assert!(events[1..5].iter().all(|e| e["choices"][0]["finish_reason"].is_null()));
    assert_eq!(events[5]["choices"][0]["finish_reason"], "length");
    assert_eq!(events[5]["choices"][0]["delta"], json!({}));
    let last = &events[6];
    assert!(last["choices"].as_array().unwrap().is_empty());
    assert_eq!(last["usage"]["completion_tokens"], 4);
    let timings = &last["timings"];
    assert_eq!(timings["predicted_n"], 4);
    assert_eq!(timings["prompt_n"], last["usage"]["prompt_tokens"]);
    // The timings are the stream's own: prompt_ms up to the first token, predicted_ms to the last.
    let first_token = s.content_events()[0].0.at - s.sent_at;
    let prompt_ms = timings["prompt_ms"].as_f64().unwrap();
    assert!(
        prompt_ms > 0.0 && prompt_ms <= first_token.as_secs_f64() * 1000.0 + 1.0,
        "{timings}"
    );
    assert!(
        timings["predicted_ms"].as_f64().unwrap() >= 3.0,
        "three 1 ms steps at least: {timings}"
    );
    assert_eq!(s.events.last().unwrap().data, "[DONE]");
    sim.shutdown();
}

#[tokio::test]
async fn llama_server_completions_stream_and_errors() {
    let sim = start(SimConfig {
        reject_images: true,
        ..llama()
    })
    .await;
    let body = json!({"prompt": "Once upon a time", "max_tokens": 3, "stream": true,
                      "stream_options": {"include_usage": true}, "model": "anything"});
    let s = stream(&sim, "/v1/completions", &body).await;
    let events: Vec<Value> = s
        .events
        .iter()
        .filter(|e| e.data != "[DONE]")
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .collect();
    assert_eq!(events.len(), 3 + 1, "no role chunk; usage rides on the final chunk");
    assert_eq!(events[0]["choices"][0]["text"], "tok ");
    let last = &events[3];
    assert_eq!(last["choices"][0]["finish_reason"], "length");
    assert_eq!(last["choices"][0]["text"], "");
    assert_eq!(last["usage"]["completion_tokens"], 3);
    assert_eq!(last["timings"]["predicted_n"], 3);

    let image = json!({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "what?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}],
        "stream": true});
    let (head, body) = post(sim.addr, "/v1/chat/completions", &image).await;
    assert_eq!(head.status, 500);
    assert_eq!(
        body,
        json!({"error": {"code": 500, "type": "server_error", "message":
            "image input is not supported - hint: if this is unexpected, you may need to provide the mmproj"}})
    );
    let (head, props) = get(sim.addr, "/props").await;
    assert_eq!(head.status, 200);
    assert_eq!(props["modalities"]["vision"], false);
    let (_, models) = get(sim.addr, "/v1/models").await;
    assert_eq!(models["models"][0]["name"], "llm-bench-sim");
    sim.shutdown();
}

/// Each flavor counts tokens under its own server's names (tests/sim_metrics.rs has the rest).
#[tokio::test]
async fn metrics_count_tokens_in_each_flavor() {
    for flavor in [Flavor::Openai, Flavor::LlamaServer] {
        let sim = start(SimConfig { flavor, ..fast() }).await;
        stream(&sim, "/v1/chat/completions", &chat(5)).await;
        eventually(&sim, "tokens counted", |s| s.output_tokens_total == 5).await;
        let mut conn = Conn::open(sim.addr).await;
        conn.send("GET", "/metrics", &[], "").await;
        let head = conn.read_head().await;
        let text = String::from_utf8(conn.read_body(&head).await).unwrap();
        assert!(head.headers["content-type"].starts_with("text/plain"));
        let stats = sim.stats();
        let (prompt, output, other) = match flavor {
            Flavor::Openai => (
                format!(
                    "vllm:prompt_tokens_total{{engine=\"0\",model_name=\"llm-bench-sim\"}} {}.0\n",
                    stats.prompt_tokens_total
                ),
                "vllm:generation_tokens_total{engine=\"0\",model_name=\"llm-bench-sim\"} 5.0\n",
                "llamacpp:",
            ),
            Flavor::LlamaServer => (
                format!("llamacpp:prompt_tokens_total {}\n", stats.prompt_tokens_total),
                "llamacpp:tokens_predicted_total 5\n",
                "vllm:",
            ),
        };
        assert!(text.contains(&prompt) && text.contains(output), "{text}");
        assert!(!text.contains(other), "{text}");
        // /props belongs to llama-server only.
        assert_eq!(
            get(sim.addr, "/props").await.0.status == 200,
            flavor == Flavor::LlamaServer
        );
        sim.shutdown();
    }
}
