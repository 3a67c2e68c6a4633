//! A sharded run on one machine (issue 13): the simulator pinned to CPU 0; N llm-bench shard
//! processes (`--shard I/N`, one `--run-id`, one `--start-at` a few seconds ahead) all pinned to
//! CPU 1, together holding the run's concurrency (default 4 × 2,500 = 10,000 streams) for one
//! timed step; then `llm-bench merge` of their folders into one result. Prints streams held
//! (each shard's, the merged and the simulator's own count), the start skew (merged
//! `start_spread_ms`, each shard's `start_skew_ms` and step `start_lateness_ms`), requests,
//! throughput, the client-bound flag and cost of each shard, records merged, the merge's wall
//! time, CPU and peak RSS, and the size of the requests.jsonl files; checks that the merged
//! totals are the shards' sums (OK / MISMATCH). Also what else the machine ran meanwhile (CPU
//! seconds, /proc/stat) and the kernel's listen-queue overflows (10,000 connects at once against
//! `net.core.somaxconn`). Figures only, no timing asserts.
//!
//! Run: `scripts/bench-shards.sh` (or `cargo bench --bench shards -- [STREAMS [SHARDS]]`).
//! Settings: `BENCH_SECONDS` (default 15) the step's length; `BENCH_START_IN` (default 5) seconds
//! from launch to `--start-at`; `BENCH_DECODE_MS` (default 100) the simulator's decode step
//! (50 tokens a request: 5 s streams at 100 ms, so every connection is always in flight);
//! `BENCH_KEEP=DIR` leaves the shard and merged folders in DIR.

mod support;

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, SystemTime};
use support::{cpu_model, http, run_merge, Pinning, ShardedRun, SimPace, Simulator};

const TOKENS: u32 = 50;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn count(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

fn read_json(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap()
}

fn lines_and_bytes(path: &Path) -> (u64, u64) {
    let bytes = std::fs::read(path).unwrap_or_default();
    (bytecount(&bytes), bytes.len() as u64)
}

fn bytecount(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

/// A step's actual start on the wall clock, in ms: scheduled start + lateness.
fn actual_start_ms(step: &Value) -> f64 {
    let at = step["scheduled_start"]
        .as_str()
        .and_then(|s| humantime::parse_rfc3339(s).ok())
        .map_or(f64::NAN, |t| {
            t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs_f64() * 1e3
        });
    at + num(&step["start_lateness_ms"])
}

/// When the shard released the step's load (its connections open, its first requests sent) after
/// the scheduled start, in ms: its run clock's zero + the window's start − the scheduled start.
fn released_ms(summary: &Value) -> f64 {
    let step = &summary["steps"][0];
    let at = actual_start_ms(step) - num(&step["start_lateness_ms"]);
    (num(&summary["run_start_unix_s"]) + num(&step["window"]["start_s"])) * 1e3 - at
}

fn spread(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::NEG_INFINITY, f64::max) - values.iter().copied().fold(f64::INFINITY, f64::min)
}

fn joined(values: &[f64], decimals: usize) -> String {
    values
        .iter()
        .map(|v| format!("{v:.decimals$}"))
        .collect::<Vec<_>>()
        .join(" / ")
}

/// CPU seconds the whole machine has spent busy (all CPUs, /proc/stat: everything but idle and
/// iowait), to tell what else ran during the benchmark.
fn machine_busy_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) else {
        return f64::NAN;
    };
    let ticks: Vec<u64> = line.split_whitespace().skip(1).filter_map(|t| t.parse().ok()).collect();
    let busy: u64 = ticks
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4 && *i < 8)
        .map(|(_, t)| t)
        .sum();
    // SAFETY: sysconf only reads a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1);
    busy as f64 / hz as f64
}

/// The kernel's count of connections dropped by a full accept queue (TcpExt ListenOverflows,
/// machine-wide): each such connect waits for a SYN retry, 1 s.
fn listen_overflows() -> u64 {
    let text = std::fs::read_to_string("/proc/net/netstat").unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("TcpExt:")).collect();
    let [names, values, ..] = lines.as_slice() else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(name, _)| *name == "ListenOverflows")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn check(name: &str, merged: u64, sum: u64, ok: &mut bool) {
    let verdict = if merged == sum { "OK" } else { "MISMATCH" };
    *ok &= merged == sum;
    println!("  {name:<28} merged {merged:>9}  sum of shards {sum:>9}  {verdict}");
}

fn main() {
    let numbers: Vec<u32> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .filter_map(|a| a.parse().ok())
        .collect();
    let streams = numbers.first().copied().unwrap_or(10_000);
    let n = numbers.get(1).copied().unwrap_or(4).max(1);
    let seconds: u64 = env_or("BENCH_SECONDS", 15);
    let start_in: f64 = env_or("BENCH_START_IN", 5.0);
    let decode_ms: f64 = env_or("BENCH_DECODE_MS", 100.0);
    let pin = Pinning::detect();
    let cpu_model = cpu_model();
    println!(
        "llm-bench shards benchmark: {cpu_model}, {} CPUs; {}",
        std::thread::available_parallelism().map(|x| x.get()).unwrap_or(1),
        match (pin.sim, pin.client) {
            (Some(s), Some(c)) => format!("simulator pinned to CPU {s}, all {n} shards to CPU {c}"),
            _ => "NOT pinned (needs 2 CPUs and taskset)".into(),
        }
    );
    println!(
        "{n} shards × {} streams = {streams} concurrent streams, one {seconds} s step, {TOKENS} output tokens per request at {decode_ms} ms per token; --start-at {start_in} s after launch",
        streams / n
    );
    std::io::stdout().flush().ok();

    let busy_before = machine_busy_s();
    let overflows_before = listen_overflows();
    let sim = Simulator::start(&SimPace { decode_ms }, &[], pin.sim);
    let scratch = tempfile::tempdir().unwrap();
    let dir: PathBuf = match std::env::var_os("BENCH_KEEP") {
        Some(keep) => PathBuf::from(keep),
        None => scratch.path().to_path_buf(),
    };
    std::fs::create_dir_all(&dir).unwrap();
    http(sim.port, "POST", "/sim/reset");
    let run_id = format!("bench-shards-{}", std::process::id());
    let launched = SystemTime::now();
    let at = humantime::format_rfc3339_millis(launched + Duration::from_secs_f64(start_in)).to_string();
    let run = ShardedRun {
        run_id: &run_id,
        start_at: &at,
        shards: n,
        dir: &dir,
        cpu: pin.client,
    };
    // The whole run's concurrency on every command line: `--shard` takes its share.
    let total = streams.to_string();
    let args: Vec<String> = [
        "-u",
        &sim.url(),
        "-o",
        "-st",
        &total,
        "-et",
        &total,
        "-tg",
        &TOKENS.to_string(),
        "-pp",
        "200",
        "--step-duration",
        &format!("{seconds}s"),
    ]
    .map(String::from)
    .to_vec();
    let children: Vec<Child> = (0..n).map(|i| run.start_shard(i, &args, Stdio::inherit())).collect();
    let usages = run.wait_all(&children);
    let truth = sim.stats();
    let sim_usage = sim.stop();
    let busy = machine_busy_s() - busy_before;
    let overflows = listen_overflows() - overflows_before;
    let shard_dirs = run.folders();
    let summaries: Vec<Value> = shard_dirs.iter().map(|d| read_json(&d.join("summary.json"))).collect();
    let files: Vec<(u64, u64)> = shard_dirs
        .iter()
        .map(|d| lines_and_bytes(&d.join("requests.jsonl")))
        .collect();

    let merged_dir = dir.join("merged");
    let (merge_wall_s, merge_usage) = run_merge(&shard_dirs, &merged_dir, &[], pin.client);
    assert!(merge_usage.success, "llm-bench merge failed");
    let merged = read_json(&merged_dir.join("summary.json"));
    let mstep = &merged["steps"][0];

    println!();
    println!(
        "{:>5} {:>6} {:>9} {:>7} {:>10} {:>8} {:>9} {:>9} {:>8} {:>8} {:>6} {:>8} {:>8} {:>9}",
        "shard",
        "held",
        "requests",
        "failed",
        "output",
        "skew",
        "lateness",
        "released",
        "lag p99",
        "CPU",
        "bound",
        "CPU",
        "peak RSS",
        "jsonl"
    );
    println!(
        "{:>5} {:>6} {:>9} {:>7} {:>10} {:>8} {:>9} {:>9} {:>8} {:>8} {:>6} {:>8} {:>8} {:>9}",
        "", "", "ok", "", "tok/s", "ms", "ms", "ms", "ms", "% core", "", "s", "MiB", "MiB"
    );
    let skews: Vec<f64> = (0..n as usize)
        .map(|i| num(&merged["shards"][i]["start_skew_ms"]))
        .collect();
    for (i, s) in summaries.iter().enumerate() {
        let step = &s["steps"][0];
        println!(
            "{:>5} {:>6} {:>9} {:>7} {:>10.0} {:>8.1} {:>9.3} {:>9.1} {:>8.2} {:>8.1} {:>6} {:>8.2} {:>8.1} {:>9.1}",
            i,
            count(&step["max_in_flight"]),
            count(&step["requests_ok"]),
            count(&step["requests_failed"]),
            num(&step["output_throughput_tps"]),
            skews[i],
            num(&step["start_lateness_ms"]),
            released_ms(s),
            num(&step["client"]["lag"]["p99_ms"]),
            num(&step["client"]["cpu_pct"]),
            if step["client_bound"].as_bool().unwrap_or(false) {
                "yes"
            } else {
                "no"
            },
            usages[i].cpu_s,
            usages[i].max_rss_kib as f64 / 1024.0,
            mib(files[i].1),
        );
    }
    let sum = |key: &str| summaries.iter().map(|s| count(&s["steps"][0][key])).sum::<u64>();
    let sum_tps: f64 = summaries
        .iter()
        .map(|s| num(&s["steps"][0]["output_throughput_tps"]))
        .sum();
    let woke: Vec<f64> = summaries.iter().map(|s| actual_start_ms(&s["steps"][0])).collect();
    let lateness: Vec<f64> = summaries
        .iter()
        .map(|s| num(&s["steps"][0]["start_lateness_ms"]))
        .collect();
    let released: Vec<f64> = summaries.iter().map(released_ms).collect();
    println!(
        "{:>5} {:>6} {:>9} {:>7} {:>10.0} {:>8} {:>9} {:>9} {:>8} {:>8} {:>6} {:>8} {:>8} {:>9.1}",
        "merge",
        count(&mstep["max_in_flight"]),
        count(&mstep["requests_ok"]),
        count(&mstep["requests_failed"]),
        num(&mstep["output_throughput_tps"]),
        "",
        "",
        "",
        "",
        "",
        if mstep["client_bound"].as_bool().unwrap_or(false) {
            "yes"
        } else {
            "no"
        },
        "",
        "",
        mib(files.iter().map(|f| f.1).sum()),
    );
    println!();
    println!(
        "streams held: shards {} (sum {}), merged {}, simulator's own max in flight {}; {} of {} asked",
        summaries
            .iter()
            .map(|s| count(&s["steps"][0]["max_in_flight"]).to_string())
            .collect::<Vec<_>>()
            .join(" + "),
        sum("max_in_flight"),
        count(&mstep["max_in_flight"]),
        count(&truth["max_in_flight"]),
        if count(&truth["max_in_flight"]) >= u64::from(streams) {
            "all"
        } else {
            "NOT all"
        },
        streams,
    );
    println!(
        "start skew: merged start_spread_ms {:.1} ms (the shards' load releases, latest − earliest: {:.1} ms)",
        num(&merged["merged"]["start_spread_ms"]),
        spread(&released),
    );
    println!(
        "  step start_lateness_ms (woke after --start-at) {}; spread of the wake-ups {:.1} ms",
        joined(&lateness, 1),
        spread(&woke),
    );
    println!(
        "  load released (connections open) after --start-at {} ms",
        joined(&released, 1),
    );
    println!(
        "  run clocks' zero after the earliest shard's (shards[].start_skew_ms: ready, before the wait) {} ms",
        joined(&skews, 1),
    );
    println!(
        "throughput: merged {:.0} output tok/s over the union of the windows (shards' sum {sum_tps:.0}); simulator {} requests, {} output tokens in all",
        num(&mstep["output_throughput_tps"]),
        count(&truth["requests_total"]),
        count(&truth["output_tokens_total"]),
    );
    println!(
        "client-bound: shards {}; merged step {} (client_bound_shards {})",
        summaries
            .iter()
            .map(|s| if s["steps"][0]["client_bound"].as_bool().unwrap_or(false) {
                "yes"
            } else {
                "no"
            })
            .collect::<Vec<_>>()
            .join(" / "),
        if mstep["client_bound"].as_bool().unwrap_or(false) {
            "yes"
        } else {
            "no"
        },
        match mstep["client_bound_shards"].as_array() {
            Some(list) if !list.is_empty() => list.iter().map(Value::to_string).collect::<Vec<_>>().join(", "),
            _ => "none".into(),
        },
    );
    let records: u64 = files.iter().map(|f| f.0).sum();
    let note = merged["notes"]
        .as_array()
        .and_then(|notes| {
            notes
                .iter()
                .filter_map(Value::as_str)
                .find(|n| n.starts_with("merged "))
        })
        .unwrap_or("")
        .to_string();
    let merged_records: u64 = note
        .rsplit("from ")
        .next()
        .and_then(|t| t.split_whitespace().next())
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    println!(
        "merge: {merged_records} records ({:.1} MiB of requests.jsonl) in {:.3} s wall ({:.3} s by its own clock, merged.merge_s), {:.2} s CPU, peak RSS {:.1} MiB; {:.0} records/s",
        mib(files.iter().map(|f| f.1).sum()),
        merge_wall_s,
        num(&merged["merged"]["merge_s"]),
        merge_usage.cpu_s,
        merge_usage.max_rss_kib as f64 / 1024.0,
        merged_records as f64 / merge_wall_s,
    );
    let events: u64 = summaries.iter().map(|s| count(&s["client"]["events"])).sum();
    let shards_cpu: f64 = usages.iter().map(|u| u.cpu_s).sum();
    println!(
        "cost: shards {shards_cpu:.2} s CPU together for {events} events ({:.2} µs per event), simulator {:.2} s ({:.2} µs per event)",
        1e6 * shards_cpu / events.max(1) as f64,
        sim_usage.cpu_s,
        1e6 * sim_usage.cpu_s / events.max(1) as f64,
    );
    let ours = usages.iter().map(|u| u.cpu_s).sum::<f64>() + sim_usage.cpu_s;
    println!(
        "machine: {busy:.2} CPU-s busy from the simulator's start to the shards' end, {ours:.2} of them the simulator's and the shards'; {:.2} CPU-s by anything else{}",
        busy - ours,
        if busy - ours > 1.0 { " (NOT idle: the figures above include its interference)" } else { "" },
    );
    println!(
        "accept queue: {overflows} connections dropped by a full listen queue during the run (TcpExt ListenOverflows, machine-wide; net.core.somaxconn {}): each waits 1 s for its SYN retry",
        std::fs::read_to_string("/proc/sys/net/core/somaxconn").unwrap_or_default().trim(),
    );
    println!();
    println!("checks (merged = sum of the shards):");
    let mut ok = true;
    check("requests_ok", count(&mstep["requests_ok"]), sum("requests_ok"), &mut ok);
    check(
        "requests_failed",
        count(&mstep["requests_failed"]),
        sum("requests_failed"),
        &mut ok,
    );
    check(
        "output_tokens",
        count(&mstep["output_tokens"]),
        sum("output_tokens"),
        &mut ok,
    );
    check(
        "prompt_tokens",
        count(&mstep["prompt_tokens"]),
        sum("prompt_tokens"),
        &mut ok,
    );
    check("records (requests.jsonl lines)", merged_records, records, &mut ok);
    check(
        "max_in_flight",
        count(&mstep["max_in_flight"]),
        sum("max_in_flight"),
        &mut ok,
    );
    check(
        "shards_merged",
        count(&merged["merged"]["shards_merged"]),
        u64::from(n),
        &mut ok,
    );
    println!("  {}", if ok { "all OK" } else { "MISMATCH above" });
    println!();
    println!("held: most requests in flight at once (each shard's own count; merged: summed on 10 ms buckets of the");
    println!("records; the simulator's: its own count of open requests); skew: the shard's run clock zero (ready to");
    println!("start) after the earliest shard's; lateness: how late the shard woke for the step after --start-at");
    println!("(start_lateness_ms); released: when it had opened its connections and sent its first requests, after");
    println!("--start-at (the window's start); lag p99: the shard's scheduling lag; CPU % core: its CPU over the");
    println!(
        "step; CPU s, peak RSS: the whole process (wait4); jsonl: its requests.jsonl, all of which the merge reads."
    );
    if std::env::var_os("BENCH_KEEP").is_some() {
        println!("folders kept in {}", dir.display());
    }
}
