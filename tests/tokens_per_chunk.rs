//! Several tokens per chunk (speculative decoding, stream intervals, the simulator's
//! `--tokens-per-chunk`): per-connection speed, TPOT and ITL per token count the tokens that
//! arrived after the first chunk, exactly with per-chunk usage and estimated without.

mod common;

use common::*;
use llm_bench::sim::SimConfig;
use serde_json::Value;

/// One sequence, a decode step of 10 ms handing out 4 tokens: 400 tok/s, 2.5 ms per token.
fn four_per_step() -> Sim {
    Sim::start(SimConfig {
        decode_base_ms: 10.0,
        decode_ms_per_seq: 0.0,
        prefill_us_per_token: 0.0,
        tokens_per_chunk: 4,
        ..SimConfig::default()
    })
}

/// 130 tokens: 32 chunks of 4 and a last one of 2. The old formula ((tokens − 1) / time)
/// reads 129 / 320 ms = 403 tok/s on 126 tokens in 320 ms = 394 tok/s: 2.4% high.
const TOKENS: &str = "130";

fn run(sim: &Sim, extra: &[&str]) -> (Scratch, Value, String) {
    let s = Scratch::new();
    let mut args = vec!["-o", "-st", "1", "-et", "1", "-tg", TOKENS, "--step-duration", "2s"];
    args.extend_from_slice(extra);
    let out = s.run(&sim.url, &args);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let step = s.summary()["steps"][0].clone();
    (s, step, stdout)
}

/// The figures of a step against the rate the simulator really sent: 4 tokens per chunk gap
/// as it wrote them (its own record), and against the configured 10 ms step.
fn check_figures(sim: &Sim, step: &Value, label: &str) {
    assert_eq!(step["requests_failed"], 0, "{label}: {step}");
    let f = |key: &str, q: &str| {
        let value = if q.is_empty() { &step[key] } else { &step[key][q] };
        value.as_f64().unwrap_or_else(|| panic!("{label}: {key}.{q} in {step}"))
    };
    let gap_ms = sim.stats().truth.itl_ms.mean;
    // What the server sent: 4 tokens per chunk gap, except the last chunk's 2.
    let true_tps = 126.0 / (32.0 * gap_ms / 1000.0);
    let speed = f("per_conn_tps", "mean");
    eprintln!(
        "{label}: per-connection {speed:.1} tok/s (true {true_tps:.1}, simulator gap {gap_ms:.3} ms); \
         ITL chunk gap p50 {:.3} mean {:.3} ms; ITL per token p50 {:.3} mean {:.3} ms; TPOT mean {:.3} ms",
        f("itl_ms", "p50"),
        f("itl_ms", "mean"),
        f("itl_per_token_ms", "p50"),
        f("itl_per_token_ms", "mean"),
        f("tpot_ms", "mean"),
    );
    // The acceptance test: within 1% of the true rate (means, not maxima, on a noisy machine).
    assert!(
        (speed / true_tps - 1.0).abs() < 0.01,
        "{label}: per-connection {speed:.1} tok/s vs {true_tps:.1} sent"
    );
    assert!(
        (speed / 400.0 - 1.0).abs() < 0.05,
        "{label}: per-connection {speed:.1} tok/s vs 400"
    );
    assert!((f("itl_ms", "p50") - 10.0).abs() < 1.0, "{label}: ITL chunk gap p50");
    assert!(
        (f("itl_per_token_ms", "p50") - 2.5).abs() < 0.25,
        "{label}: ITL per token p50"
    );
    assert!((f("tpot_ms", "mean") - 2.5).abs() < 0.15, "{label}: TPOT mean");
    assert!((f("tokens_per_chunk_mean", "") - 130.0 / 33.0).abs() < 1e-9, "{label}");
}

#[test]
fn speed_counts_the_tokens_after_the_first_chunk_estimated_from_chunks() {
    let sim = four_per_step();
    let (s, step, stdout) = run(&sim, &[]);
    check_figures(&sim, &step, "estimated");
    assert_eq!(step["tokens_per_chunk_estimated"], true);
    assert!(
        stdout.contains(
            "several tokens per chunk (about 3.9): per-token figures estimated from chunk counts; \
             vLLM can report exact counts with --continuous-usage"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("ITL (chunk gap) ms p50") && stdout.contains("ITL per token ms p50"),
        "{stdout}"
    );
    let rec = &s.records()[0];
    assert!(
        rec.get("first_chunk_tokens").is_none() && rec.get("chunk_tokens").is_none(),
        "{rec}"
    );
}

#[test]
fn per_chunk_usage_counts_the_tokens_of_every_chunk_exactly() {
    let sim = four_per_step();
    let (s, step, stdout) = run(&sim, &["--continuous-usage"]);
    check_figures(&sim, &step, "per-chunk usage");
    assert_eq!(step["tokens_per_chunk_estimated"], false);
    assert!(!stdout.contains("several tokens per chunk"), "{stdout}");
    let records = s.records();
    let rec = records.iter().find(|r| r["phase"] == "measured").unwrap();
    assert_eq!(rec["first_chunk_tokens"], 4, "{rec}");
    let mut expected = vec![4; 32];
    expected.push(2);
    assert_eq!(rec["chunk_tokens"], serde_json::json!(expected));
    assert_eq!(rec["output_tokens"], 130);
}
