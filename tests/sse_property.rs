//! Property tests for the SSE decoder and the event decoder, run in CI: arbitrary bytes split at
//! arbitrary points never panic, and a valid stream decodes to the same events however it is
//! split. A small deterministic generator keeps failures reproducible (the seed is printed).
//!
//! CI runs a few thousand cases. To fuzz longer, scale them and move the seeds:
//! `LLM_BENCH_FUZZ_CASES=2000000 LLM_BENCH_FUZZ_SEED=$RANDOM cargo test --release --test sse_property`.

use llm_bench::client::event::decode_event;
use llm_bench::client::sse::SseDecoder;
use llm_bench::client::stream::StreamReader;
use llm_bench::client::RequestRecord;

/// splitmix64: enough to generate cases, reproducible from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn random_splits(rng: &mut Rng, len: usize) -> Vec<usize> {
    let mut cuts: Vec<usize> = (0..rng.below(8)).map(|_| rng.below(len + 1)).collect();
    cuts.sort_unstable();
    cuts
}

fn pieces<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut at = 0;
    for &cut in cuts {
        out.push(&bytes[at..cut]);
        at = cut;
    }
    out.push(&bytes[at..]);
    out
}

/// Seeds `first..first + default × scale` for a property, from the environment.
fn seeds(default_cases: u64) -> std::ops::Range<u64> {
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let first = env("LLM_BENCH_FUZZ_SEED").unwrap_or(0);
    let cases = env("LLM_BENCH_FUZZ_CASES").unwrap_or(default_cases);
    first..first.saturating_add(cases)
}

fn decode(pieces: &[&[u8]]) -> Vec<Vec<u8>> {
    let mut decoder = SseDecoder::new(1 << 20);
    let mut events = Vec::new();
    for piece in pieces {
        let _ = decoder.feed(piece, |e| events.push(e.to_vec()));
    }
    let _ = decoder.finish(|e| events.push(e.to_vec()));
    events
}

/// Prints the seed of the case that was running when a panic unwinds through it.
struct SeedOnPanic(u64);

impl Drop for SeedOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("failing case: LLM_BENCH_FUZZ_SEED={} LLM_BENCH_FUZZ_CASES=1", self.0);
        }
    }
}

#[test]
fn arbitrary_bytes_never_panic() {
    const ALPHABET: &[u8] = b"data: {}[]\"\\\r\n:choices delta content usage DONE \xff\xfe\x00";
    for seed in seeds(3000) {
        let mut rng = Rng(seed);
        let len = rng.below(300);
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                if rng.below(4) == 0 {
                    rng.next() as u8
                } else {
                    ALPHABET[rng.below(ALPHABET.len())]
                }
            })
            .collect();
        let cuts = random_splits(&mut rng, bytes.len());
        // A panic names its seed, so the case can be replayed with LLM_BENCH_FUZZ_SEED.
        let _seed_guard = SeedOnPanic(seed);
        for event in decode(&pieces(&bytes, &cuts)) {
            let _ = decode_event(&event);
        }
        let mut rec = RequestRecord::default();
        let mut reader = StreamReader::default();
        for (i, piece) in pieces(&bytes, &cuts).iter().enumerate() {
            reader.feed(piece, i as u64, &mut rec);
        }
        reader.end_of_body(99, &mut rec);
        reader.finalize(&mut rec, None, 0);
    }
}

fn valid_stream(rng: &mut Rng) -> Vec<u8> {
    let newline = |rng: &mut Rng| if rng.below(2) == 0 { "\n" } else { "\r\n" };
    let mut s = String::new();
    let nl = newline(rng);
    s.push_str(&format!(
        "data: {{\"choices\":[{{\"delta\":{{\"role\":\"assistant\",\"content\":\"\"}}}}]}}{nl}{nl}"
    ));
    for i in 0..rng.below(20) {
        let nl = newline(rng);
        if rng.below(5) == 0 {
            s.push_str(&format!(": keep-alive {i}{nl}{nl}"));
        }
        s.push_str(&format!(
            "data: {{\"choices\":[{{\"delta\":{{\"content\":\"tok\\u00e9 {i}\"}}}}]}}{nl}{nl}"
        ));
    }
    let nl = newline(rng);
    s.push_str(&format!("data: {{\"choices\":[],\"usage\":{{\"prompt_tokens\":9,\"completion_tokens\":4}}}}{nl}{nl}data: [DONE]{nl}{nl}"));
    s.into_bytes()
}

#[test]
fn valid_streams_decode_the_same_however_split() {
    for seed in seeds(2000) {
        let mut rng = Rng(seed);
        let stream = valid_stream(&mut rng);
        let whole = decode(&[&stream]);
        let cuts = random_splits(&mut rng, stream.len());
        assert_eq!(decode(&pieces(&stream, &cuts)), whole, "seed {seed}, cuts {cuts:?}");
        // And the response decoder reaches the same verdict.
        let mut rec = RequestRecord::default();
        let mut reader = StreamReader::default();
        for piece in pieces(&stream, &cuts) {
            reader.feed(piece, 1, &mut rec);
        }
        reader.end_of_body(2, &mut rec);
        reader.finalize(&mut rec, None, 0);
        assert!(rec.ok, "seed {seed}: {:?}", rec.error_message);
        assert_eq!(rec.output_tokens, 4);
        assert_eq!(rec.events as usize, whole.len());
    }
}
