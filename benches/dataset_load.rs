//! Dataset loading throughput and memory: writes a ~200 MB JSONL file, a ~200 MB ShareGPT file
//! and a ~50 MB Mooncake trace into a temp dir, loads each with `workload::dataset::load`, and
//! prints MB/s, rows/s and the peak RSS of the load (VmHWM of a child process that does only
//! that load), once keeping every row and once with an ISL filter that keeps a few percent
//! (which shows the reader's own memory, apart from the kept rows).
//!
//! Run: `cargo bench --bench dataset_load` (`DATASET_MB=50` for a smaller JSONL/ShareGPT file).

use llm_bench::workload::dataset::{load, DatasetFormat, LoadOptions};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Instant;

/// A deterministic word salad of `chars` characters (no RNG crate needed).
fn words(state: &mut u64, chars: usize) -> String {
    const WORDS: [&str; 16] = [
        "the",
        "model",
        "server",
        "benchmark",
        "token",
        "latency",
        "throughput",
        "request",
        "é",
        "cache",
        "prefill",
        "decode",
        "batch",
        "GPU",
        "日本",
        "stream",
    ];
    let mut s = String::with_capacity(chars + 16);
    while s.len() < chars {
        *state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        s.push_str(WORDS[(*state >> 60) as usize]);
        s.push(' ');
    }
    s
}

fn next(state: &mut u64) -> u64 {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *state >> 33
}

fn write_jsonl(path: &Path, target: u64) {
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    let (mut written, mut state, mut i) = (0u64, 1u64, 0u64);
    while written < target {
        let chars = 200 + (next(&mut state) % 3000) as usize;
        let prompt = serde_json::to_string(&words(&mut state, chars)).unwrap();
        let line = if i % 10 == 0 {
            format!(
                "{{\"messages\": [{{\"role\": \"system\", \"content\": \"Be brief.\"}}, {{\"role\": \"user\", \"content\": {prompt}}}], \"max_tokens\": {}}}\n",
                1 + next(&mut state) % 512
            )
        } else {
            format!(
                "{{\"prompt\": {prompt}, \"output_tokens\": {}}}\n",
                1 + next(&mut state) % 512
            )
        };
        out.write_all(line.as_bytes()).unwrap();
        written += line.len() as u64;
        i += 1;
    }
    out.flush().unwrap();
}

fn write_sharegpt(path: &Path, target: u64) {
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    out.write_all(b"[\n").unwrap();
    let (mut written, mut state, mut i) = (0u64, 2u64, 0u64);
    while written < target {
        let mut turns = Vec::new();
        for t in 0..2 + 2 * (next(&mut state) % 3) {
            let from = if t % 2 == 0 { "human" } else { "gpt" };
            let chars = 100 + (next(&mut state) % 2000) as usize;
            let value = serde_json::to_string(&words(&mut state, chars)).unwrap();
            turns.push(format!("{{\"from\": \"{from}\", \"value\": {value}}}"));
        }
        let sep = if i == 0 { "" } else { ",\n" };
        let element = format!(
            "{sep}{{\"id\": \"conv{i}\", \"conversations\": [{}]}}",
            turns.join(", ")
        );
        out.write_all(element.as_bytes()).unwrap();
        written += element.len() as u64;
        i += 1;
    }
    out.write_all(b"\n]\n").unwrap();
    out.flush().unwrap();
}

fn write_mooncake(path: &Path, target: u64) {
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    let (mut written, mut state, mut ts) = (0u64, 3u64, 0u64);
    while written < target {
        let input = 1 + next(&mut state) % 20_000;
        let ids: Vec<String> = (0..input.div_ceil(512))
            .map(|_| (next(&mut state) % 100_000).to_string())
            .collect();
        ts += next(&mut state) % 100;
        let line = format!(
            "{{\"timestamp\": {ts}, \"input_length\": {input}, \"output_length\": {}, \"hash_ids\": [{}]}}\n",
            1 + next(&mut state) % 1000,
            ids.join(", ")
        );
        out.write_all(line.as_bytes()).unwrap();
        written += line.len() as u64;
    }
    out.flush().unwrap();
}

fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Loads one file and prints one line. Runs in a child process of its own, so that its peak RSS
/// (VmHWM) is its own and not what an earlier load left in the allocator.
fn measure(name: &str, path: &Path, format: DatasetFormat, max_isl: Option<u64>) {
    let before = status_kb("VmRSS:");
    let opts = LoadOptions {
        max_isl,
        ..LoadOptions::default()
    };
    let started = Instant::now();
    let dataset = load(path, &opts).unwrap();
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(dataset.format, format);
    let peak = status_kb("VmHWM:");
    let mb = dataset.bytes as f64 / 1e6;
    let rows = dataset.rows.len() as u64 + dataset.filtered + dataset.skipped;
    let what = if max_isl.is_some() { "ISL filter" } else { "all kept" };
    println!(
        "{name:<9} {what:<10} {mb:>5.0} MB {rows:>7} rows ({:>6} kept) in {secs:>5.2} s: {:>4.0} MB/s {:>7.0} rows/s; peak RSS {:>3} MB ({} MB before the load)",
        dataset.rows.len(),
        mb / secs,
        rows as f64 / secs,
        peak / 1024,
        before / 1024,
    );
}

const CHILD: &str = "DATASET_BENCH_CHILD";

fn main() {
    if let Ok(job) = std::env::var(CHILD) {
        let parts: Vec<&str> = job.split('\t').collect();
        let format = DatasetFormat::parse(parts[0]).unwrap();
        let max_isl = parts[2].parse().ok();
        return measure(parts[0], Path::new(parts[1]), format, max_isl);
    }
    let mb: u64 = std::env::var("DATASET_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("prompts.jsonl");
    let sharegpt = dir.path().join("sharegpt.json");
    let mooncake = dir.path().join("trace.jsonl");
    let started = Instant::now();
    write_jsonl(&jsonl, mb * 1_000_000);
    write_sharegpt(&sharegpt, mb * 1_000_000);
    write_mooncake(&mooncake, mb / 4 * 1_000_000);
    println!("wrote the files in {:.1} s", started.elapsed().as_secs_f64());

    // Second runs with filters that keep a few percent of the rows: the reader's own memory.
    for (format, path, small) in [
        (DatasetFormat::Jsonl, &jsonl, 80),
        (DatasetFormat::ShareGpt, &sharegpt, 60),
        (DatasetFormat::Mooncake, &mooncake, 200),
    ] {
        for max_isl in [String::new(), small.to_string()] {
            let job = format!("{}\t{}\t{max_isl}", format.name(), path.display());
            let status = std::process::Command::new(std::env::current_exe().unwrap())
                .env(CHILD, job)
                .status()
                .unwrap();
            assert!(status.success());
        }
    }
}
