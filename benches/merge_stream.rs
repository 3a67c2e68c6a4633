//! `llm-bench merge` of many shards of one stress run (issue 13 §2: "64 shards of a long stress
//! run must not need all records in memory at once"). SHARDS (default 64) llm-bench processes,
//! each one shard (`--shard I/SHARDS`, one `--run-id`, one `--start-at`) of a stress run against
//! the simulator, all pinned to CPU 1, the simulator to CPU 0; then `llm-bench merge` of the first
//! 8, 16, 32 … of their folders (`--allow-partial` for fewer than all) and of all of them. Prints,
//! per merge: shards, records read, MiB of requests.jsonl, merged stress intervals, wall time,
//! records/s, CPU, and peak RSS beside the bytes of records it read; and checks that the merge of
//! all shards has every shard's records and requests (OK / MISMATCH). Figures only, no timing
//! asserts.
//!
//! Run: `scripts/bench-merge.sh` (or `cargo bench --bench merge_stream -- [SHARDS]`).
//! Settings: `BENCH_SECONDS` (default 60) the stress run's length; `BENCH_INTERVAL` (default 1)
//! its report interval in seconds; `BENCH_CONNS` (default 4) connections per shard;
//! `BENCH_DECODE_MS` (default 20) the simulator's decode step (10 output tokens a request);
//! `BENCH_KEEP=DIR` leaves the folders in DIR.

mod support;

use serde_json::Value;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, SystemTime};
use support::{cpu_model, run_merge, Pinning, ShardedRun, SimPace, Simulator, Usage};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

fn count(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

fn read_json(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap()
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Lines and bytes of a folder's requests.jsonl, read a block at a time.
fn records_of(dir: &Path) -> (u64, u64) {
    let Ok(mut file) = std::fs::File::open(dir.join("requests.jsonl")) else {
        return (0, 0);
    };
    let mut block = vec![0u8; 1 << 16];
    let (mut lines, mut bytes) = (0, 0);
    loop {
        match file.read(&mut block) {
            Ok(0) | Err(_) => return (lines, bytes),
            Ok(got) => {
                lines += block[..got].iter().filter(|&&b| b == b'\n').count() as u64;
                bytes += got as u64;
            }
        }
    }
}

/// What the benchmark keeps of a results folder (a shard's or a merge's).
struct ShardFigures {
    records: u64,
    bytes: u64,
    intervals: usize,
    requests_ok: u64,
    output_tokens: u64,
    shards_merged: u64,
}

impl ShardFigures {
    fn of(dir: &Path) -> Self {
        let (records, bytes) = records_of(dir);
        let summary = read_json(&dir.join("summary.json"));
        let total = &summary["steps"][0];
        Self {
            records,
            bytes,
            intervals: summary["stress"]["intervals"].as_array().map_or(0, Vec::len),
            requests_ok: count(&total["requests_ok"]),
            output_tokens: count(&total["output_tokens"]),
            shards_merged: count(&summary["merged"]["shards_merged"]),
        }
    }
}

/// How many shards each merge takes: 8, 16, 32 … below `n`, then `n`.
fn merge_sizes(n: usize) -> Vec<usize> {
    let mut sizes: Vec<usize> = std::iter::successors(Some(8), |k| Some(k * 2))
        .take_while(|&k| k < n)
        .collect();
    sizes.push(n);
    sizes
}

fn main() {
    let n: u32 = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .find_map(|a| a.parse().ok())
        .unwrap_or(64)
        .max(1);
    let seconds: u64 = env_or("BENCH_SECONDS", 60);
    let interval: u64 = env_or("BENCH_INTERVAL", 1).max(1);
    let conns: u32 = env_or("BENCH_CONNS", 4).max(1);
    let decode_ms: f64 = env_or("BENCH_DECODE_MS", 20.0);
    let pin = Pinning::detect();
    println!(
        "llm-bench merge benchmark: {}, {} CPUs; {}",
        cpu_model(),
        std::thread::available_parallelism().map(|x| x.get()).unwrap_or(1),
        match (pin.sim, pin.client) {
            (Some(s), Some(c)) => format!("simulator pinned to CPU {s}, the {n} shards and the merges to CPU {c}"),
            _ => "NOT pinned (needs 2 CPUs and taskset)".into(),
        }
    );
    println!(
        "{n} shards × {conns} connections of one {seconds} s stress run, report interval {interval} s, 10 output tokens per request at {decode_ms} ms per token"
    );
    std::io::stdout().flush().ok();

    let sim = Simulator::start(&SimPace { decode_ms }, &[], pin.sim);
    let scratch = tempfile::tempdir().unwrap();
    let dir: PathBuf = std::env::var_os("BENCH_KEEP").map_or_else(|| scratch.path().to_path_buf(), PathBuf::from);
    std::fs::create_dir_all(&dir).unwrap();
    // Time for every shard to start, check the server and estimate its clock on one core.
    let lead = Duration::from_secs(10 + u64::from(n) / 4);
    let run_id = format!("bench-merge-{}", std::process::id());
    let start_at = humantime::format_rfc3339_millis(SystemTime::now() + lead).to_string();
    let run = ShardedRun {
        run_id: &run_id,
        start_at: &start_at,
        shards: n,
        dir: &dir,
        cpu: pin.client,
    };
    let total = (conns * n).to_string();
    let args: Vec<String> = [
        "-u",
        &sim.url(),
        "-o",
        "-st",
        &total,
        "-tg",
        "10",
        "-pp",
        "20",
        "--duration",
        &format!("{seconds}s"),
        "--report-interval",
        &format!("{interval}s"),
        "--no-server-metrics",
        "--no-gpu-metrics",
    ]
    .map(String::from)
    .to_vec();
    let children: Vec<Child> = (0..n).map(|i| run.start_shard(i, &args, Stdio::null())).collect();
    let usages = run.wait_all(&children);
    sim.stop();
    let shard_dirs = run.folders();
    // Figures only, one summary at a time: what this process holds is a floor of every
    // merge's ru_maxrss (support::Usage).
    let shards: Vec<ShardFigures> = shard_dirs.iter().map(|d| ShardFigures::of(d)).collect();
    let shard_rss = usages.iter().map(|u| u.max_rss_kib).max().unwrap_or(0);
    let sizes = merge_sizes(n as usize);
    let floor_mib = llm_bench::monitor::process_peak_rss_mb().unwrap_or(f64::NAN);
    let merges: Vec<(f64, Usage)> = sizes
        .iter()
        .map(|&k| {
            let partial: &[&str] = if k < n as usize { &["--allow-partial"] } else { &[] };
            let (wall, usage) = run_merge(&shard_dirs[..k], &dir.join(format!("merged-{k}")), partial, pin.client);
            assert!(usage.success, "llm-bench merge of {k} shards failed");
            (wall, usage)
        })
        .collect();
    println!(
        "shards: {} records in all, {:.1} MiB of requests.jsonl, {} intervals each; each shard's peak RSS at most {:.1} MiB",
        shards.iter().map(|f| f.records).sum::<u64>(),
        mib(shards.iter().map(|f| f.bytes).sum()),
        shards[0].intervals,
        shard_rss as f64 / 1024.0,
    );
    println!(
        "(this benchmark's own peak RSS when it started the merges, a floor of theirs: {:.1} MiB)",
        floor_mib
    );
    println!();
    println!(
        "{:>6} {:>9} {:>9} {:>9} {:>8} {:>10} {:>7} {:>9} {:>11}",
        "shards", "records", "jsonl", "intervals", "wall", "records/s", "CPU", "peak RSS", "RSS/jsonl"
    );
    println!(
        "{:>6} {:>9} {:>9} {:>9} {:>8} {:>10} {:>7} {:>9} {:>11}",
        "", "", "MiB", "", "s", "", "s", "MiB", "%"
    );
    for (&k, (wall, usage)) in sizes.iter().zip(&merges) {
        let merged = ShardFigures::of(&dir.join(format!("merged-{k}")));
        let (records, bytes) = shards[..k]
            .iter()
            .fold((0, 0), |(r, b), f| (r + f.records, b + f.bytes));
        let rss = usage.max_rss_kib * 1024;
        println!(
            "{:>6} {:>9} {:>9.1} {:>9} {:>8.2} {:>10.0} {:>7.2} {:>9.1} {:>11.1}",
            k,
            records,
            mib(bytes),
            merged.intervals,
            wall,
            records as f64 / wall,
            usage.cpu_s,
            mib(rss),
            100.0 * rss as f64 / bytes.max(1) as f64,
        );
    }
    let all = ShardFigures::of(&dir.join(format!("merged-{n}")));
    println!();
    println!("checks (the merge of all {n} shards):");
    let mut ok = true;
    let mut check = |name: &str, merged: u64, sum: u64| {
        let verdict = if merged == sum { "OK" } else { "MISMATCH" };
        ok &= merged == sum;
        println!("  {name:<30} merged {merged:>9}  sum of shards {sum:>9}  {verdict}");
    };
    let sum = |of: fn(&ShardFigures) -> u64| shards.iter().map(of).sum::<u64>();
    check("requests_ok", all.requests_ok, sum(|f| f.requests_ok));
    check("output_tokens", all.output_tokens, sum(|f| f.output_tokens));
    check("shards_merged", all.shards_merged, u64::from(n));
    check("records (requests.jsonl lines)", all.records, sum(|f| f.records));
    println!("  {}", if ok { "all OK" } else { "MISMATCH above" });
    println!();
    println!("records, jsonl: what the merge read (every shard's requests.jsonl); intervals: the merged stress");
    println!("intervals; wall: launch to exit; CPU s, peak RSS: the merge process (wait4); RSS/jsonl: its peak RSS");
    println!("over the bytes of records it read. A merge of fewer than all shards is --allow-partial.");
    if std::env::var_os("BENCH_KEEP").is_some() {
        println!("folders kept in {}", dir.display());
    }
}
