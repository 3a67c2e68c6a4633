//! Micro-benchmark of the client's per-event path on one core: SSE framing, the event decoder,
//! the record update, and (once per request) the JSONL line. Prints events per second.
//!
//! Run: `cargo bench --bench sse_decode`. No benchmark framework: one figure per shape, the
//! best of a few rounds, which is what the issue's "events per second on one core" asks for.

use llm_bench::client::stream::StreamReader;
use llm_bench::client::RequestRecord;
use std::hint::black_box;
use std::time::{Duration, Instant};

const TOKENS_PER_REQUEST: usize = 100;
const ROUNDS: usize = 5;
const MIN_ROUND: Duration = Duration::from_millis(400);

/// A chat completion stream shaped like vLLM's: a role chunk, one chunk per token, a
/// finish_reason chunk, a usage chunk, `[DONE]`.
fn chat_stream() -> Vec<Vec<u8>> {
    let head = r#"{"id":"chatcmpl-8f2c1e0a9b7d4c3e","object":"chat.completion.chunk","created":1764300000,"model":"meta-llama/Llama-3.1-8B-Instruct","choices":[{"index":0,"#;
    let mut events = vec![format!(
        r#"data: {head}"delta":{{"role":"assistant","content":""}},"logprobs":null,"finish_reason":null}}]}}"#
    )];
    for i in 0..TOKENS_PER_REQUEST {
        let finish = if i + 1 == TOKENS_PER_REQUEST {
            r#""length""#
        } else {
            "null"
        };
        events.push(format!(
            r#"data: {head}"delta":{{"content":" word{i}"}},"logprobs":null,"finish_reason":{finish}}}]}}"#
        ));
    }
    events.push(format!(
        r#"data: {{"id":"chatcmpl-8f2c1e0a9b7d4c3e","object":"chat.completion.chunk","created":1764300000,"model":"m","choices":[],"usage":{{"prompt_tokens":120,"total_tokens":{},"completion_tokens":{TOKENS_PER_REQUEST}}}}}"#,
        120 + TOKENS_PER_REQUEST
    ));
    events.push("data: [DONE]".into());
    events.into_iter().map(|e| format!("{e}\n\n").into_bytes()).collect()
}

/// The same stream cut into reads of `size` bytes (what a busy socket hands over).
fn in_reads(events: &[Vec<u8>], size: usize) -> Vec<Vec<u8>> {
    events.concat().chunks(size).map(<[u8]>::to_vec).collect()
}

/// Decodes whole requests made of `reads` until `MIN_ROUND` has passed; returns events/s.
fn round(reads: &[Vec<u8>], events_per_request: usize) -> f64 {
    let started = Instant::now();
    let mut requests = 0u64;
    let mut line = Vec::with_capacity(4096);
    while started.elapsed() < MIN_ROUND {
        for _ in 0..100 {
            let mut rec = RequestRecord::default();
            let mut reader = StreamReader::default();
            for (i, read) in reads.iter().enumerate() {
                reader.feed(black_box(read), 1_000 + i as u64 * 10_000, &mut rec);
            }
            reader.end_of_body(2_000_000, &mut rec);
            reader.finalize(&mut rec, None, 100);
            // One JSONL line per finished request, as the results file gets it.
            line.clear();
            serde_json::to_writer(&mut line, &rec).expect("record serialises");
            black_box(&line);
            assert!(rec.ok && rec.output_tokens == TOKENS_PER_REQUEST as u64);
            requests += 1;
        }
    }
    (requests * events_per_request as u64) as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let events = chat_stream();
    let bytes: usize = events.iter().map(Vec::len).sum();
    println!(
        "SSE decode + record path, one core: {} events per request ({} bytes), best of {ROUNDS} rounds",
        events.len(),
        bytes
    );
    let shapes: [(&str, Vec<Vec<u8>>); 3] = [
        ("one event per read", events.clone()),
        ("1460-byte reads (one TCP segment)", in_reads(&events, 1460)),
        ("16 KiB reads (a busy socket)", in_reads(&events, 16 * 1024)),
    ];
    for (name, reads) in shapes {
        let best = (0..ROUNDS).map(|_| round(&reads, events.len())).fold(0.0, f64::max);
        println!(
            "  {name:<36} {:>6.2} M events/s  {:>6.0} ns/event",
            best / 1e6,
            1e9 / best
        );
    }
}
