//! The simulator's GET /metrics (per flavor) and GET /dcgm/metrics, over real TCP: the figures
//! follow its engine and agree with /sim/stats, and `--metrics-fault` breaks the page on purpose.
//! The text is read with a deliberately tiny helper, not a Prometheus parser.

mod common;

use std::time::{Duration, Instant};

use common::raw::*;
use llm_bench::sim::{Flavor, MetricsFault, SimConfig, SimHandle};
use serde_json::{json, Value};

fn chat(content: &str, max_tokens: u64) -> Value {
    // No model: the one served, whatever its name.
    json!({
        "messages": [{"role": "user", "content": content}],
        "max_tokens": max_tokens,
        "stream": true,
        "stream_options": {"include_usage": true},
    })
}

/// 50 ms steps: a stream of `n` tokens stays in the batch for n × 50 ms.
fn slow(flavor: Flavor, max_batch: usize) -> SimConfig {
    SimConfig {
        flavor,
        max_batch,
        decode_base_ms: 50.0,
        ..fast()
    }
}

/// GET `path`: the head and the body as text.
async fn scrape(sim: &SimHandle, path: &str) -> (Head, String) {
    let mut conn = Conn::open(sim.addr).await;
    conn.send("GET", path, &[], "").await;
    let head = conn.read_head().await;
    let body = conn.read_body(&head).await;
    (head, String::from_utf8(body).expect("UTF-8 text"))
}

/// The value of the sample `name` whose labels include every `labels` pair (`k="v"`).
fn value(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|line| {
        let (series, v) = line.rsplit_once(' ')?;
        let (n, rest) = series.split_once('{').unwrap_or((series, ""));
        (n == name && labels.iter().all(|l| rest.contains(l))).then(|| v.parse().ok())?
    })
}

fn must(text: &str, name: &str, labels: &[&str]) -> f64 {
    value(text, name, labels).unwrap_or_else(|| panic!("{name} {labels:?} not in\n{text}"))
}

/// Scrapes /metrics until `pred` holds on it (3 s at most); returns that page.
async fn metrics_until(sim: &SimHandle, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let (_, text) = scrape(sim, "/metrics").await;
        if pred(&text) {
            return text;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}:\n{text}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Sends `n` streams at once; reading them to their end is the caller's business.
async fn open_streams(sim: &SimHandle, n: usize, body: &Value) -> Vec<Conn> {
    let mut conns = Vec::new();
    for _ in 0..n {
        let mut conn = Conn::open(sim.addr).await;
        conn.send("POST", "/v1/chat/completions", &[], &body.to_string()).await;
        conns.push(conn);
    }
    conns
}

async fn finish(conns: Vec<Conn>) {
    for mut conn in conns {
        let head = conn.read_head().await;
        assert!(conn.read_events(head, Instant::now()).await.complete);
    }
}

#[tokio::test]
async fn vllm_families_follow_the_engine_and_agree_with_sim_stats() {
    let sim = start(SimConfig {
        model: "org/model-1".into(),
        ..slow(Flavor::Openai, 2)
    })
    .await;
    let m = r#"model_name="org/model-1""#;
    let conns = open_streams(&sim, 5, &chat("Hello, simulator!", 10)).await;
    let busy = metrics_until(&sim, "a full batch and a queue", |t| {
        value(t, "vllm:num_requests_waiting", &[m]) == Some(3.0)
    })
    .await;
    assert_eq!(must(&busy, "vllm:num_requests_running", &[m, r#"engine="0""#]), 2.0);
    assert_eq!(
        must(&busy, "vllm:kv_cache_usage_perc", &[m]),
        1.0,
        "a full batch is a full cache"
    );
    finish(conns).await;

    // A stream's tokens are counted when hyper drops its body, just after the client's last read.
    let text = metrics_until(&sim, "an idle engine, every token counted", |t| {
        value(t, "vllm:num_requests_running", &[m]) == Some(0.0)
            && value(t, "vllm:generation_tokens_total", &[m]) == Some(50.0)
    })
    .await;
    let stats = sim.stats();
    assert_eq!(stats.requests_completed, 5);
    assert_eq!(must(&text, "vllm:num_requests_waiting", &[m]), 0.0);
    assert_eq!(must(&text, "vllm:kv_cache_usage_perc", &[m]), 0.0);
    assert_eq!(
        must(&text, "vllm:prompt_tokens_total", &[m]),
        stats.prompt_tokens_total as f64
    );
    assert_eq!(must(&text, "vllm:generation_tokens_total", &[m]), 50.0);
    assert_eq!(stats.output_tokens_total, 50);
    assert_eq!(must(&text, "vllm:num_preemptions_total", &[m]), 0.0);
    for hist in ["vllm:time_to_first_token_seconds", "vllm:request_queue_time_seconds"] {
        assert_eq!(must(&text, &format!("{hist}_count"), &[m]), 5.0, "{hist}");
        assert_eq!(must(&text, &format!("{hist}_bucket"), &[m, r#"le="+Inf""#]), 5.0);
    }
    // Three requests queued behind a full batch for at least one 0.5 s turn.
    assert!(
        must(&text, "vllm:request_queue_time_seconds_sum", &[m]) >= 3.0 * 0.45,
        "{text}"
    );
    assert_eq!(
        must(&text, "vllm:request_queue_time_seconds_bucket", &[m, r#"le="0.3""#]),
        2.0
    );
    assert!(must(&text, "vllm:time_to_first_token_seconds_sum", &[m]) > 0.0);
    for line in [
        "# TYPE vllm:prompt_tokens counter",
        "# TYPE vllm:num_requests_running gauge",
        "# TYPE vllm:time_to_first_token_seconds histogram",
        "# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.",
    ] {
        assert!(text.lines().any(|l| l == line), "{line}");
    }
    assert!(!text.contains("llamacpp:"), "{text}");
    sim.shutdown();
}

#[tokio::test]
async fn prefix_cache_counters_count_prompt_tokens() {
    // Five 16-token blocks and then some: a repeat of the prompt finds its blocks cached.
    let prompt = "word ".repeat(90);
    for no_prefix_cache in [false, true] {
        let sim = start(SimConfig {
            no_prefix_cache,
            ..fast()
        })
        .await;
        for _ in 0..3 {
            finish(open_streams(&sim, 1, &chat(&prompt, 2)).await).await;
        }
        let (_, text) = scrape(&sim, "/metrics").await;
        let queries = must(&text, "vllm:prefix_cache_queries_total", &[]);
        let hits = must(&text, "vllm:prefix_cache_hits_total", &[]);
        let stats = sim.stats();
        // Three lookups of the same prompt of n tokens.
        let n = queries as u64 / 3;
        assert!(n > 90 && queries as u64 == 3 * n, "{queries}");
        if no_prefix_cache {
            assert_eq!(hits, 0.0);
            assert_eq!(
                queries, stats.prompt_tokens_total as f64,
                "nothing cached: all prefilled"
            );
        } else {
            // The repeats find their whole blocks but the last token's (vLLM computes it).
            assert_eq!(hits as u64, 2 * ((n - 1) / 16 * 16));
            assert_eq!(
                queries - hits,
                stats.prompt_tokens_total as f64,
                "the rest was prefilled"
            );
        }
        sim.shutdown();
    }
}

#[tokio::test]
async fn llamacpp_families_in_the_llama_server_flavor() {
    let sim = start(SimConfig {
        kv_cache_tokens: 100_000,
        ..slow(Flavor::LlamaServer, 1)
    })
    .await;
    let conns = open_streams(&sim, 3, &chat("Hello, simulator!", 10)).await;
    let busy = metrics_until(&sim, "one slot busy, two deferred", |t| {
        value(t, "llamacpp:requests_deferred", &[]) == Some(2.0)
    })
    .await;
    assert_eq!(must(&busy, "llamacpp:requests_processing", &[]), 1.0);
    let held = must(&busy, "llamacpp:kv_cache_tokens", &[]);
    assert!(held > 0.0 && held < 100.0, "{held}");
    assert_eq!(must(&busy, "llamacpp:kv_cache_usage_ratio", &[]), held / 100_000.0);
    finish(conns).await;

    let text = metrics_until(&sim, "an idle engine, every token counted", |t| {
        value(t, "llamacpp:requests_processing", &[]) == Some(0.0)
            && value(t, "llamacpp:tokens_predicted_total", &[]) == Some(30.0)
    })
    .await;
    let stats = sim.stats();
    assert_eq!(
        must(&text, "llamacpp:prompt_tokens_total", &[]),
        stats.prompt_tokens_total as f64
    );
    assert_eq!(must(&text, "llamacpp:tokens_predicted_total", &[]), 30.0);
    assert_eq!(must(&text, "llamacpp:kv_cache_tokens", &[]), 0.0);
    assert!(text.contains("# TYPE llamacpp:prompt_tokens_total counter\n"));
    assert!(!text.contains("vllm:"), "{text}");
    sim.shutdown();
}

fn gpu(i: u32) -> String {
    format!("gpu=\"{i}\"")
}

#[tokio::test]
async fn dcgm_page_reports_exact_power_and_energy_that_grows_with_it() {
    let sim = start(SimConfig {
        gpu_power_w: Some(300.0),
        gpus: 2,
        gpu_throttle_mask: 0x4,
        ..fast()
    })
    .await;
    let timed_scrape = || async {
        let before = Instant::now();
        let (head, text) = scrape(&sim, "/dcgm/metrics").await;
        (before + (Instant::now() - before) / 2, head, text)
    };
    let (t0, head, first) = timed_scrape().await;
    assert!(head.headers["content-type"].starts_with("text/plain"));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (t1, _, second) = timed_scrape().await;
    let energy = |text: &str, i| must(text, "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", &[&gpu(i)]);
    let want = 300.0 * 1000.0 * (t1 - t0).as_secs_f64();
    for i in 0..2 {
        let got = energy(&second, i) - energy(&first, i);
        assert!((got - want).abs() <= 0.02 * want, "GPU {i}: {got} mJ, want {want}");
        assert_eq!(must(&second, "DCGM_FI_DEV_POWER_USAGE", &[&gpu(i)]), 300.0);
        assert_eq!(must(&second, "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", &[&gpu(i)]), 4.0);
        let fb = must(&second, "DCGM_FI_DEV_FB_USED", &[&gpu(i)]) + must(&second, "DCGM_FI_DEV_FB_FREE", &[&gpu(i)]);
        assert_eq!(fb, 80_000.0);
        assert_eq!(
            must(&second, "DCGM_FI_DEV_GPU_UTIL", &[&gpu(i), r#"device="nvidia"#]),
            0.0
        );
    }
    assert_eq!(value(&second, "DCGM_FI_DEV_POWER_USAGE", &[&gpu(2)]), None, "two GPUs");
    assert!(second.contains("# TYPE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION counter\n"));
    assert!(second.contains(r#"modelName="llm-bench-sim GPU",Hostname="sim"}"#));
    let (head, _) = Conn::open(sim.addr)
        .await
        .request("POST", "/dcgm/metrics", &[], "")
        .await;
    assert_eq!(head.status, 405);
    sim.shutdown();

    let plain = start(fast()).await;
    assert_eq!(scrape(&plain, "/dcgm/metrics").await.0.status, 404);
    plain.shutdown();
}

#[tokio::test]
async fn dcgm_utilisation_follows_the_batch() {
    let sim = start(SimConfig {
        gpu_power_w: Some(700.0),
        ..slow(Flavor::Openai, 4)
    })
    .await;
    let conns = open_streams(&sim, 2, &chat("Hello, simulator!", 10)).await;
    metrics_until(&sim, "two running", |t| {
        value(t, "vllm:num_requests_running", &[]) == Some(2.0)
    })
    .await;
    let (_, text) = scrape(&sim, "/dcgm/metrics").await;
    assert_eq!(must(&text, "DCGM_FI_DEV_GPU_UTIL", &[&gpu(0)]), 50.0);
    assert_eq!(must(&text, "DCGM_FI_DEV_GPU_TEMP", &[&gpu(0)]), 60.0);
    assert_eq!(must(&text, "DCGM_FI_DEV_FB_USED", &[&gpu(0)]), 40_000.0);
    finish(conns).await;
    sim.shutdown();
}

#[tokio::test]
async fn metrics_faults_break_the_page() {
    let with = |metrics_fault| SimConfig {
        metrics_fault,
        ..fast()
    };
    let sim = start(with(MetricsFault::Garbage)).await;
    let (head, body) = scrape(&sim, "/metrics").await;
    assert_eq!((head.status, head.headers["content-type"].as_str()), (200, "text/html"));
    assert!(body.starts_with("<!DOCTYPE html>") && !body.contains("vllm:"), "{body}");
    sim.shutdown();

    let sim = start(with(MetricsFault::Huge)).await;
    let (head, body) = scrape(&sim, "/metrics").await;
    assert_eq!(head.status, 200);
    assert!(head.headers["content-type"].starts_with("text/plain"));
    assert!((19_000_000..=20_000_000).contains(&body.len()), "{}", body.len());
    assert_eq!(value(&body, "vllm:num_requests_running", &[]), Some(0.0));
    assert!(body.ends_with(" 1\n"));
    sim.shutdown();

    let sim = start(with(MetricsFault::Slow)).await;
    let sent = Instant::now();
    let (head, body) = scrape(&sim, "/metrics").await;
    assert!(sent.elapsed() >= Duration::from_millis(4900), "{:?}", sent.elapsed());
    assert_eq!(head.status, 200);
    assert!(body.contains("vllm:num_requests_running"));
    sim.shutdown();
}
