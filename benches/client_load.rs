//! The client under load: the simulator and llm-bench as separate processes, each pinned to its
//! own CPU, at 100 / 1,000 / 10,000 concurrent streams. For each it prints the streams held (by
//! the simulator's own count), events per second, the client's CPU per event (from the kernel's
//! accounting of the whole process, start-up included), RSS per stream, and how far llm-bench's
//! TTFT and ITL are from the simulator's record of when it wrote each chunk. Also start-up time.
//!
//! Run: `scripts/bench-client.sh` (or `cargo bench --bench client_load -- [STREAMS...]`).
//! Settings: `BENCH_SECONDS` (default 15) per load.

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_llm-bench");

/// One load: concurrency, and the per-stream pace (the simulator's decode step).
struct Load {
    streams: u32,
    decode_ms: f64,
    tokens: u32,
}

impl Load {
    fn for_streams(streams: u32) -> Self {
        // 50 tokens/s per stream up to 1,000 streams (50,000 events/s); 10 tokens/s beyond,
        // where one simulator core could not produce 50 tokens/s for every stream.
        let decode_ms = if streams <= 1_000 { 20.0 } else { 100.0 };
        Self {
            streams,
            decode_ms,
            tokens: 50,
        }
    }
}

/// Where each process runs: `taskset -c CPU` when there are two CPUs and taskset exists.
struct Pinning {
    sim: Option<usize>,
    client: Option<usize>,
}

impl Pinning {
    fn detect() -> Self {
        let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let taskset = Command::new("taskset")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success());
        if cpus >= 2 && taskset {
            Self {
                sim: Some(0),
                client: Some(1),
            }
        } else {
            Self {
                sim: None,
                client: None,
            }
        }
    }

    fn command(cpu: Option<usize>) -> Command {
        match cpu {
            Some(cpu) => {
                let mut c = Command::new("taskset");
                c.args(["-c", &cpu.to_string(), BIN]);
                c
            }
            None => Command::new(BIN),
        }
    }
}

/// Kernel accounting of a finished child: CPU seconds (user + system) and peak RSS in KiB.
struct Usage {
    cpu_s: f64,
    max_rss_kib: u64,
    success: bool,
}

fn wait_with_usage(child: &Child) -> Usage {
    // SAFETY: wait4 writes only into the status and rusage we pass; the child is ours and is
    // reaped here (std's Child is never waited on afterwards).
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert!(pid > 0, "wait4 failed: {}", std::io::Error::last_os_error());
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Usage {
        cpu_s: tv(usage.ru_utime) + tv(usage.ru_stime),
        max_rss_kib: usage.ru_maxrss as u64,
        success: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
    }
}

/// A plain HTTP/1.1 exchange with the simulator's control endpoints.
fn http(port: u16, method: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("simulator reachable");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text.split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default()
}

struct Simulator {
    child: Child,
    port: u16,
}

impl Simulator {
    // Reaped by `stop` (wait4), which std cannot see.
    #[allow(clippy::zombie_processes)]
    fn start(load: &Load, cpu: Option<usize>) -> Self {
        let mut child = Pinning::command(cpu)
            .args([
                "serve",
                "--port",
                "0",
                "--max-batch",
                "100000",
                "--decode-ms-per-seq",
                "0",
            ])
            .args([
                "--prefill-us-per-token",
                "1",
                "--decode-base-ms",
                &load.decode_ms.to_string(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("simulator starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .rsplit(':')
            .next()
            .and_then(|p| p.trim().trim_end_matches("/v1").parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        Self { child, port }
    }

    fn stats(&self) -> Value {
        serde_json::from_str(&http(self.port, "GET", "/sim/stats")).expect("stats are JSON")
    }

    fn stop(self) -> Usage {
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGKILL) };
        wait_with_usage(&self.child)
    }
}

struct Outcome {
    held: u64,
    events: u64,
    events_per_s: f64,
    client_us_per_event: f64,
    sim_us_per_event: f64,
    rss_kib_per_stream: f64,
    errors: u64,
    /// (client, simulator) pairs in ms: TTFT mean, TTFT p99, ITL p50, ITL p99.
    pairs: [(f64, f64); 4],
    client_bound: bool,
}

// The child is reaped by `wait_with_usage` (wait4), which std cannot see.
#[allow(clippy::zombie_processes)]
fn run_client(url: &str, args: &[String], cpu: Option<usize>, dir: &Path) -> (Usage, Value) {
    let child = Pinning::command(cpu)
        .args(["-u", url, "--out"])
        .arg(dir.join("results"))
        .arg("-l")
        .arg(dir.join("run.log"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("llm-bench starts");
    let usage = wait_with_usage(&child);
    let summary = std::fs::read(dir.join("results/summary.json")).expect("summary written");
    (usage, serde_json::from_slice(&summary).unwrap())
}

fn step_args(load: &Load, seconds: u64) -> Vec<String> {
    let n = load.streams.to_string();
    [
        "-o",
        "-st",
        &n,
        "-et",
        &n,
        "-tg",
        &load.tokens.to_string(),
        "-pp",
        "200",
        "--step-duration",
        &format!("{seconds}s"),
    ]
    .map(String::from)
    .to_vec()
}

fn measure(load: &Load, seconds: u64, pin: &Pinning, baseline_rss_kib: u64) -> Outcome {
    let sim = Simulator::start(load, pin.sim);
    let url = format!("http://127.0.0.1:{}/v1", sim.port);
    let dir = tempfile::tempdir().unwrap();
    http(sim.port, "POST", "/sim/reset");
    let (usage, summary) = run_client(&url, &step_args(load, seconds), pin.client, dir.path());
    let truth = sim.stats();
    let sim_usage = sim.stop();
    assert!(usage.success, "llm-bench failed at {} streams", load.streams);
    let step = &summary["steps"][0];
    let events = summary["client"]["events"].as_u64().unwrap_or(0);
    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    Outcome {
        held: truth["max_in_flight"].as_u64().unwrap_or(0),
        events,
        events_per_s: events as f64 / f(&step["duration_s"]),
        client_us_per_event: 1e6 * usage.cpu_s / events as f64,
        sim_us_per_event: 1e6 * sim_usage.cpu_s / events as f64,
        rss_kib_per_stream: usage.max_rss_kib.saturating_sub(baseline_rss_kib) as f64 / load.streams as f64,
        errors: step["requests_failed"].as_u64().unwrap_or(0),
        pairs: [
            (f(&step["ttft_ms"]["mean"]), f(&truth["truth"]["ttft_ms"]["mean"])),
            (f(&step["ttft_ms"]["p99"]), f(&truth["truth"]["ttft_ms"]["p99"])),
            (f(&step["itl_ms"]["p50"]), f(&truth["truth"]["itl_ms"]["p50"])),
            (f(&step["itl_ms"]["p99"]), f(&truth["truth"]["itl_ms"]["p99"])),
        ],
        client_bound: summary["client_bound"].as_bool().unwrap_or(false),
    }
}

/// Peak RSS of a one-stream run: what every run pays before its first stream.
fn baseline_rss(pin: &Pinning) -> u64 {
    let load = Load::for_streams(1);
    let sim = Simulator::start(&load, pin.sim);
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}/v1", sim.port);
    let (usage, _) = run_client(&url, &step_args(&load, 2), pin.client, dir.path());
    sim.stop();
    usage.max_rss_kib
}

fn startup(pin: &Pinning) -> (f64, f64) {
    let mut help_ms: Vec<f64> = (0..20)
        .map(|_| {
            let t = Instant::now();
            let out = Pinning::command(pin.client).arg("--help").output().unwrap();
            assert!(out.status.success());
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    help_ms.sort_by(f64::total_cmp);
    let load = Load::for_streams(1);
    let sim = Simulator::start(&load, pin.sim);
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}/v1", sim.port);
    let (_, summary) = run_client(&url, &step_args(&load, 1), pin.client, dir.path());
    sim.stop();
    (
        help_ms[help_ms.len() / 2],
        summary["client"]["startup_first_request_ms"]
            .as_f64()
            .unwrap_or(f64::NAN),
    )
}

fn main() {
    let streams: Vec<u32> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .filter_map(|a| a.parse().ok())
        .collect();
    let streams = if streams.is_empty() {
        vec![100, 1_000, 10_000]
    } else {
        streams
    };
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    let pin = Pinning::detect();
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    println!(
        "llm-bench client benchmark: {cpu_model}, {} CPUs; {}; {seconds} s per load, 50 output tokens per request",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        match (pin.sim, pin.client) {
            (Some(s), Some(c)) => format!("simulator pinned to CPU {s}, llm-bench to CPU {c}"),
            _ => "NOT pinned (needs 2 CPUs and taskset)".into(),
        }
    );
    let (help_ms, first_request_ms) = startup(&pin);
    println!("start-up: `llm-bench --help` {help_ms:.1} ms (median of 20); first request {first_request_ms:.1} ms after launch");
    let baseline = baseline_rss(&pin);
    println!("baseline peak RSS (one stream): {:.1} MiB", baseline as f64 / 1024.0);
    println!();
    println!(
        "{:>7} {:>6} {:>7} {:>9} {:>10} {:>9} {:>9} {:>6} | {:>17} {:>17} {:>17} {:>17}",
        "streams",
        "held",
        "errors",
        "events/s",
        "client",
        "sim",
        "RSS",
        "bound",
        "TTFT mean",
        "TTFT p99",
        "ITL p50",
        "ITL p99"
    );
    println!(
        "{:>7} {:>6} {:>7} {:>9} {:>10} {:>9} {:>9} {:>6} | {:>17} {:>17} {:>17} {:>17}",
        "",
        "",
        "",
        "",
        "µs/event",
        "µs/event",
        "KiB/strm",
        "",
        "ms (sim, error)",
        "ms (sim, error)",
        "ms (sim, error)",
        "ms (sim, error)"
    );
    for n in streams {
        let load = Load::for_streams(n);
        let o = measure(&load, seconds, &pin, baseline);
        let pair = |(client, sim): (f64, f64)| format!("{client:.2} ({sim:.2}, {:+.2})", client - sim);
        println!(
            "{:>7} {:>6} {:>7} {:>9.0} {:>10.2} {:>9.2} {:>9.1} {:>6} | {:>17} {:>17} {:>17} {:>17}",
            n,
            o.held,
            o.errors,
            o.events_per_s,
            o.client_us_per_event,
            o.sim_us_per_event,
            o.rss_kib_per_stream,
            if o.client_bound { "yes" } else { "no" },
            pair(o.pairs[0]),
            pair(o.pairs[1]),
            pair(o.pairs[2]),
            pair(o.pairs[3]),
        );
        let _ = o.events;
        std::io::stdout().flush().ok();
    }
    println!();
    println!(
        "events/s: SSE events llm-bench received per second of the step; client µs/event: the llm-bench process's"
    );
    println!(
        "whole CPU time (user + system, start-up included, from wait4) over those events; sim µs/event: the same for"
    );
    println!(
        "the simulator; RSS: (peak RSS − one-stream baseline) / streams; error: llm-bench's figure − the simulator's."
    );
    println!("Pace: 50 tokens/s per stream up to 1,000 streams, 10 tokens/s above.");
}
