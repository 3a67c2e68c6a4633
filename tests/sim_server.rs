//! Integration tests of the built-in simulator, over real TCP, with the raw client of
//! `common::raw` so that every byte and every abrupt close is visible.

mod common;

use std::time::{Duration, Instant};

use common::raw::*;
use llm_bench::sim::{self, SimConfig, SimHandle};
use serde_json::{json, Value};

fn chat(max_tokens: u64, stream: bool) -> Value {
    json!({
        "model": "llm-bench-sim",
        "messages": [{"role": "user", "content": "Hello, simulator!"}],
        "max_tokens": max_tokens,
        "stream": stream,
    })
}

/// Waits (briefly) until the simulator's stats satisfy `pred`.
async fn eventually(sim: &SimHandle, what: &str, pred: impl Fn(&sim::SimStats) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let stats = sim.stats();
        if pred(&stats) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}: {stats:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ----------------------------------------------------------------- tests --

#[tokio::test]
async fn models_health_and_unknown_paths() {
    let sim = start(fast()).await;
    assert!(sim.base_url().starts_with("http://127.0.0.1:"));
    assert!(sim.base_url().ends_with("/v1"));

    let (head, body) = get(sim.addr, "/v1/models").await;
    assert_eq!(head.status, 200);
    assert_eq!(body["object"], "list");
    assert_eq!(body["data"][0]["id"], "llm-bench-sim");
    assert_eq!(body["data"][0]["owned_by"], "llm-bench");

    let (head, body) = get(sim.addr, "/health").await;
    assert_eq!((head.status, body), (200, json!({"status": "ok"})));

    let (head, body) = get(sim.addr, "/v2/nothing").await;
    assert_eq!(head.status, 404);
    assert_eq!(body["error"]["type"], "not_found_error");
    assert_eq!(body["error"]["code"], 404);

    let (head, body) = get(sim.addr, "/v1/chat/completions").await;
    assert_eq!(head.status, 405);
    assert!(body["error"]["message"].is_string());

    let (head, body) = get(sim.addr, "/sim/stats").await;
    assert_eq!(head.status, 200);
    assert_eq!(body["requests_total"], 0);
    sim.shutdown();
}

#[tokio::test]
async fn streaming_chat_with_usage() {
    let sim = start(fast()).await;
    let mut req = chat(5, true);
    req["stream_options"] = json!({"include_usage": true});
    let s = Conn::open(sim.addr).await.stream("/v1/chat/completions", &req).await;

    assert_eq!(s.head.status, 200);
    assert_eq!(s.head.headers["content-type"], "text/event-stream");
    assert!(s.complete);
    let ev: Vec<Value> = s.events[..s.events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(&e.data).expect("valid JSON chunk"))
        .collect();
    // role, 5 content chunks, usage, then [DONE]
    assert_eq!(ev.len(), 7, "{:?}", s.events);
    assert_eq!(s.events.last().unwrap().data, "[DONE]");
    assert_eq!(
        ev[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    for (i, chunk) in ev[1..6].iter().enumerate() {
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["model"], "llm-bench-sim");
        assert_eq!(chunk["choices"][0]["delta"]["content"], "tok ");
        let finish = &chunk["choices"][0]["finish_reason"];
        if i == 4 {
            assert_eq!(finish, "length");
        } else {
            assert!(finish.is_null());
        }
    }
    assert_eq!(ev[6]["choices"], json!([]));
    // "Hello, simulator!" is "Hello" "," " simulator" (9 letters: 3 tokens) "!" = 6 tokens; with
    // BOS and the chat template's 4 + 3, 14. The prefix cache is on: nothing cached yet.
    assert_eq!(
        ev[6]["usage"],
        json!({"prompt_tokens": 14, "completion_tokens": 5, "total_tokens": 19,
               "prompt_tokens_details": {"cached_tokens": 0}})
    );

    let stats = sim.stats();
    assert_eq!(stats.requests_total, 1);
    assert_eq!(stats.requests_completed, 1);
    assert_eq!(stats.prompt_tokens_total, 14);
    assert_eq!(stats.output_tokens_total, 5);
    assert_eq!(stats.truth.ttft_ms.count, 1);
    assert_eq!(stats.truth.itl_ms.count, 4);
    sim.shutdown();
}

/// vLLM's `continuous_usage_stats`: the role chunk and every content chunk carry the usage so
/// far, then the usual final usage chunk; it needs `include_usage`, as in vLLM.
#[tokio::test]
async fn continuous_usage_stats_puts_usage_in_every_chunk() {
    let sim = start(SimConfig {
        tokens_per_chunk: 2,
        ..fast()
    })
    .await;
    let events = |options: Value| {
        let mut req = chat(5, true);
        req["stream_options"] = options;
        async move {
            let s = Conn::open(sim.addr).await.stream("/v1/chat/completions", &req).await;
            assert!(s.complete);
            s.events[..s.events.len() - 1]
                .iter()
                .map(|e| serde_json::from_str::<Value>(&e.data).unwrap())
                .collect::<Vec<Value>>()
        }
    };
    let ev = events(json!({"include_usage": true, "continuous_usage_stats": true})).await;
    // role, chunks of 2, 2 and 1 tokens, final usage
    assert_eq!(ev.len(), 5, "{ev:?}");
    let completion: Vec<u64> = ev
        .iter()
        .map(|e| e["usage"]["completion_tokens"].as_u64().unwrap())
        .collect();
    assert_eq!(completion, [0, 2, 4, 5, 5]);
    assert_eq!(
        ev[1]["usage"],
        json!({"prompt_tokens": 14, "completion_tokens": 2, "total_tokens": 16,
               "prompt_tokens_details": {"cached_tokens": 0}})
    );
    assert_eq!(ev[3]["choices"][0]["finish_reason"], "length");
    assert_eq!(ev[4]["choices"], json!([]));
    // Without include_usage vLLM sends no usage at all; without the option, only at the end.
    let ev = events(json!({"continuous_usage_stats": true})).await;
    assert!(ev.iter().all(|e| e.get("usage").is_none()), "{ev:?}");
    let ev = events(json!({"include_usage": true})).await;
    assert_eq!(ev.iter().filter(|e| e.get("usage").is_some()).count(), 1, "{ev:?}");
    sim.shutdown();
}

#[tokio::test]
async fn completions_stream_multi_token_chunks_without_usage() {
    let sim = start(SimConfig {
        tokens_per_chunk: 2,
        no_usage: true,
        ..fast()
    })
    .await;
    let req = json!({
        "prompt": "abcdefgh",
        "max_tokens": 5,
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    let s = Conn::open(sim.addr).await.stream("/v1/completions", &req).await;
    assert!(s.complete);
    let texts: Vec<String> = s.events[..s.events.len() - 1]
        .iter()
        .map(|e| {
            let v: Value = serde_json::from_str(&e.data).unwrap();
            assert_eq!(v["object"], "text_completion");
            assert!(v.get("usage").is_none(), "--no-usage must win");
            v["choices"][0]["text"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(texts, ["tok tok ", "tok tok ", "tok "]);
    assert_eq!(s.events.last().unwrap().data, "[DONE]");
    assert_eq!(sim.stats().output_tokens_total, 5);
    sim.shutdown();
}

#[tokio::test]
async fn no_role_chunk_flag() {
    let sim = start(SimConfig {
        no_role_chunk: true,
        ..fast()
    })
    .await;
    let s = Conn::open(sim.addr)
        .await
        .stream("/v1/chat/completions", &chat(2, true))
        .await;
    assert_eq!(s.events.len(), 3); // two content chunks and [DONE]
    assert_eq!(s.content_events().len(), 2);
    sim.shutdown();
}

#[tokio::test]
async fn non_streamed_responses_and_keep_alive() {
    let sim = start(fast()).await;
    let mut conn = Conn::open(sim.addr).await;
    let (head, body) = conn
        .request("POST", "/v1/chat/completions", &[], &chat(3, false).to_string())
        .await;
    assert_eq!(head.status, 200);
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["message"]["content"], "tok tok tok ");
    assert_eq!(body["choices"][0]["finish_reason"], "length");
    assert_eq!(body["usage"]["completion_tokens"], 3);

    // Same connection again: keep-alive works; max_completion_tokens wins.
    let req = json!({"prompt": "hi", "max_completion_tokens": 2, "max_tokens": 50});
    let (head, body) = conn.request("POST", "/v1/completions", &[], &req.to_string()).await;
    assert_eq!(head.status, 200);
    assert_eq!(body["choices"][0]["text"], "tok tok ");
    assert_eq!(body["usage"]["prompt_tokens"], 2, "BOS and \"hi\"");

    // Default max tokens.
    let req = json!({"messages": [{"role": "user", "content": "x"}]});
    let (_, body) = conn
        .request("POST", "/v1/chat/completions", &[], &req.to_string())
        .await;
    assert_eq!(body["usage"]["completion_tokens"], 128);
    assert_eq!(sim.stats().requests_completed, 3);
    sim.shutdown();
}

#[tokio::test]
async fn bad_requests_get_openai_errors() {
    let sim = start(fast()).await;
    let mut req = chat(3, true);
    req["model"] = json!("gpt-9");
    let (head, body) = post(sim.addr, "/v1/chat/completions", &req).await;
    assert_eq!(head.status, 404);
    assert_eq!(body["error"]["message"], "The model `gpt-9` does not exist.");

    let (head, body) = Conn::open(sim.addr)
        .await
        .request("POST", "/v1/chat/completions", &[], "{nope")
        .await;
    assert_eq!(head.status, 400);
    assert_eq!(body["error"]["type"], "invalid_request_error");

    let (head, _) = post(sim.addr, "/v1/completions", &json!({"prompt": "x", "max_tokens": -3})).await;
    assert_eq!(head.status, 400);
    let (head, _) = post(sim.addr, "/v1/chat/completions", &json!({"prompt": "x"})).await;
    assert_eq!(head.status, 400);

    let stats = sim.stats();
    assert_eq!(stats.requests_total, 4);
    assert_eq!(stats.requests_completed, 0);
    sim.shutdown();
}

#[tokio::test]
async fn api_key_is_enforced() {
    let sim = start(SimConfig {
        api_key: Some("sekret".into()),
        ..fast()
    })
    .await;
    let (head, body) = get(sim.addr, "/v1/models").await;
    assert_eq!(head.status, 401);
    assert_eq!(body["error"]["code"], 401);
    let (head, _) = Conn::open(sim.addr)
        .await
        .request(
            "POST",
            "/v1/chat/completions",
            &[("Authorization", "Bearer wrong")],
            &chat(1, false).to_string(),
        )
        .await;
    assert_eq!(head.status, 401);
    let (head, body) = Conn::open(sim.addr)
        .await
        .request(
            "POST",
            "/v1/chat/completions",
            &[("Authorization", "Bearer sekret")],
            &chat(1, false).to_string(),
        )
        .await;
    assert_eq!(head.status, 200);
    assert_eq!(body["choices"][0]["message"]["content"], "tok ");
    // Health stays open for probes.
    assert_eq!(get(sim.addr, "/health").await.0.status, 200);
    sim.shutdown();
}

#[tokio::test]
async fn images_rejected_like_llama_cpp() {
    let sim = start(SimConfig {
        reject_images: true,
        ..fast()
    })
    .await;
    let req = json!({
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "what is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
        ]}],
        "max_tokens": 4,
    });
    let (head, body) = post(sim.addr, "/v1/chat/completions", &req).await;
    assert_eq!(head.status, 500);
    assert_eq!(
        body["error"]["message"],
        "image input is not supported - hint: if this is unexpected, you may need to provide the mmproj"
    );
    assert_eq!(sim.stats().faults.rejected_image, 1);
    sim.shutdown();

    // Without the flag, the image is accepted and charged 256 prompt tokens.
    let sim = start(fast()).await;
    let (head, body) = post(sim.addr, "/v1/chat/completions", &req).await;
    assert_eq!(head.status, 200);
    // BOS, the template's 4 + 3, "what" " is" " this" "?", and the image.
    assert_eq!(body["usage"]["prompt_tokens"], 1 + 4 + 4 + 256 + 3);
    sim.shutdown();
}

/// Sends 50 sequential requests; returns the indices answered with 503.
async fn fifty_requests(conn: &mut Conn) -> Vec<usize> {
    let mut failed = Vec::new();
    for i in 0..50 {
        let (head, body) = conn
            .request("POST", "/v1/chat/completions", &[], &chat(1, false).to_string())
            .await;
        match head.status {
            200 => {}
            503 => {
                assert!(body["error"]["message"].is_string());
                failed.push(i);
            }
            s => panic!("unexpected status {s}"),
        }
    }
    failed
}

#[tokio::test]
async fn error_faults_are_counted_exactly_and_replay_after_reset() {
    let sim = start(SimConfig {
        fault_error_rate: 0.2,
        fault_error_status: vec![503],
        seed: 42,
        ..fast()
    })
    .await;
    let mut conn = Conn::open(sim.addr).await;
    let first = fifty_requests(&mut conn).await;
    let stats = sim.stats();
    assert_eq!(stats.faults.error_status, first.len() as u64);
    assert_eq!(stats.requests_total, 50);
    assert_eq!(stats.requests_completed, 50 - first.len() as u64);
    assert!((3..=20).contains(&first.len()), "{} errors for a 0.2 rate", first.len());

    // POST /sim/reset restarts the arrival index: same seed, same faults.
    let (head, _) = conn.request("POST", "/sim/reset", &[], "").await;
    assert_eq!(head.status, 200);
    assert_eq!(sim.stats().faults.error_status, 0);
    let second = fifty_requests(&mut conn).await;
    assert_eq!(first, second);
    sim.shutdown();
}

#[tokio::test]
async fn cut_stream_closes_the_connection_midway() {
    let sim = start(SimConfig {
        fault_cut_rate: 1.0,
        ..fast()
    })
    .await;
    let s = Conn::open(sim.addr)
        .await
        .stream("/v1/chat/completions", &chat(10, true))
        .await;
    assert_eq!(s.head.status, 200);
    assert!(!s.complete, "a cut stream has no terminating chunk");
    assert_eq!(s.content_events().len(), 5);
    assert!(s.events.iter().all(|e| e.data != "[DONE]"));
    eventually(&sim, "cut accounted", |st| st.in_flight == 0).await;
    let stats = sim.stats();
    assert_eq!(stats.faults.cut_stream, 1);
    assert_eq!(stats.requests_completed, 0);
    assert_eq!(stats.output_tokens_total, 5);
    sim.shutdown();
}

#[tokio::test]
async fn malformed_chunk_is_inserted_in_the_middle() {
    let sim = start(SimConfig {
        fault_malformed_rate: 1.0,
        no_role_chunk: true,
        ..fast()
    })
    .await;
    let s = Conn::open(sim.addr)
        .await
        .stream("/v1/chat/completions", &chat(6, true))
        .await;
    assert!(s.complete);
    let data: Vec<&str> = s.events.iter().map(|e| e.data.as_str()).collect();
    assert_eq!(data.len(), 6 + 2, "{data:?}");
    assert_eq!(data[3], "{not json");
    assert_eq!(s.content_events().len(), 6);
    assert_eq!(sim.stats().faults.malformed_chunk, 1);
    assert_eq!(sim.stats().requests_completed, 1);
    sim.shutdown();
}

#[tokio::test]
async fn stall_pauses_once_and_truth_sees_it() {
    let sim = start(SimConfig {
        fault_stall_rate: 1.0,
        fault_stall_ms: 300,
        decode_base_ms: 5.0,
        ..fast()
    })
    .await;
    let s = Conn::open(sim.addr)
        .await
        .stream("/v1/chat/completions", &chat(10, true))
        .await;
    assert!(s.complete);
    let content = s.content_events();
    assert_eq!(content.len(), 10);
    let gaps: Vec<Duration> = content.windows(2).map(|w| w[1].0.at - w[0].0.at).collect();
    let long = gaps.iter().filter(|g| **g >= Duration::from_millis(250)).count();
    assert_eq!(long, 1, "{gaps:?}");
    let stats = sim.stats();
    assert_eq!(stats.faults.stall, 1);
    assert!(stats.truth.itl_ms.max >= 250.0, "{:?}", stats.truth);
    sim.shutdown();
}

#[tokio::test]
async fn in_flight_counts_open_streams_and_disconnects() {
    const N: usize = 200;
    let sim = start(SimConfig {
        decode_base_ms: 20.0,
        ..fast()
    })
    .await;
    let body = chat(1000, true).to_string();
    let mut conns = Vec::with_capacity(N);
    for _ in 0..N {
        let mut conn = Conn::open(sim.addr).await;
        conn.send("POST", "/v1/chat/completions", &[], &body).await;
        conns.push(conn);
    }
    for conn in &mut conns {
        assert_eq!(conn.read_head().await.status, 200);
    }
    eventually(&sim, "all streams in flight", |s| s.in_flight == N as u64).await;
    assert_eq!(sim.stats().max_in_flight, N as u64);
    // Clients vanish: the engine notices on its next send and frees the slots.
    drop(conns);
    eventually(&sim, "disconnects noticed", |s| s.in_flight == 0).await;
    assert_eq!(sim.stats().requests_completed, 0);
    sim.shutdown();
}

#[tokio::test]
async fn decode_steps_set_the_pace() {
    let sim = start(SimConfig {
        decode_base_ms: 20.0,
        ..SimConfig {
            port: 0,
            ..SimConfig::default()
        }
    })
    .await;
    let s = Conn::open(sim.addr)
        .await
        .stream("/v1/chat/completions", &chat(15, true))
        .await;
    assert!(s.complete);
    let content = s.content_events();
    assert_eq!(content.len(), 15);
    let mut gaps: Vec<f64> = content
        .windows(2)
        .map(|w| (w[1].0.at - w[0].0.at).as_secs_f64() * 1000.0)
        .collect();
    gaps.sort_by(f64::total_cmp);
    let median = gaps[gaps.len() / 2];
    assert!((12.0..=28.0).contains(&median), "client-side gaps {gaps:?}");
    // The first token needs one step (20 ms plus a little prefill).
    let ttft = (content[0].0.at - s.sent_at).as_secs_f64() * 1000.0;
    assert!((15.0..=60.0).contains(&ttft), "ttft {ttft}");

    let truth = sim.stats().truth;
    assert_eq!(truth.itl_ms.count, 14);
    assert!((12.0..=28.0).contains(&truth.itl_ms.p50), "{truth:?}");
    assert!((15.0..=60.0).contains(&truth.ttft_ms.p50), "{truth:?}");
    sim.shutdown();
}

#[tokio::test]
async fn full_batch_makes_newcomers_queue() {
    let sim = start(SimConfig {
        max_batch: 1,
        decode_base_ms: 10.0,
        ..fast()
    })
    .await;
    let (a, b) = tokio::join!(
        async {
            Conn::open(sim.addr)
                .await
                .stream("/v1/chat/completions", &chat(5, true))
                .await
        },
        async {
            tokio::time::sleep(Duration::from_millis(2)).await;
            Conn::open(sim.addr)
                .await
                .stream("/v1/chat/completions", &chat(5, true))
                .await
        },
    );
    let a_last = a.content_events().last().unwrap().0.at;
    let b_first = b.content_events()[0].0.at;
    // B only starts decoding once A has left the single batch slot.
    assert!(b_first > a_last, "B's first token came before A finished");
    assert!(b_first - b.sent_at >= Duration::from_millis(45));
    sim.shutdown();
}
