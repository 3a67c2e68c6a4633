//! The client under load: the simulator and llm-bench as separate processes, each pinned to its
//! own CPU, at 100 / 1,000 / 10,000 concurrent streams. For each it prints the streams held (by
//! the simulator's own count), events per second, the client's CPU per event (from the kernel's
//! accounting of the whole process, start-up included), RSS per stream, and how far llm-bench's
//! TTFT and ITL are from the simulator's record of when it wrote each chunk. Also start-up time.
//!
//! Then open-loop rows: Poisson arrivals of short requests at 1,000 and 5,000 requests/s
//! (target vs achieved rate, send lateness, client CPU per request and per event).
//!
//! Run: `scripts/bench-client.sh` (or `cargo bench --bench client_load -- [STREAMS...]`).
//! Settings: `BENCH_SECONDS` (default 15) per load; `BENCH_RATES` (default `1000,5000`; empty
//! for none) for the open-loop rows.

mod support;

use serde_json::Value;
use std::io::Write;
use std::time::Instant;
use support::{cpu_model, http, run_client, Pinning, SimPace, Simulator};

/// One load: concurrency, and the per-stream pace (the simulator's decode step).
struct Load {
    streams: u32,
    decode_ms: f64,
    tokens: u32,
}

impl Load {
    fn pace(&self) -> SimPace {
        SimPace {
            decode_ms: self.decode_ms,
        }
    }

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

struct Outcome {
    held: u64,
    events_per_s: f64,
    client_us_per_event: f64,
    sim_us_per_event: f64,
    rss_kib_per_stream: f64,
    errors: u64,
    /// (client, simulator) pairs in ms: TTFT mean, TTFT p99, ITL p50, ITL p99.
    pairs: [(f64, f64); 4],
    client_bound: bool,
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
    let sim = Simulator::start(&load.pace(), &[], pin.sim);
    let dir = tempfile::tempdir().unwrap();
    http(sim.port, "POST", "/sim/reset");
    let (usage, summary) = run_client(&sim.url(), &step_args(load, seconds), pin.client, dir.path());
    let truth = sim.stats();
    let sim_usage = sim.stop();
    assert!(usage.success, "llm-bench failed at {} streams", load.streams);
    let step = &summary["steps"][0];
    let events = summary["client"]["events"].as_u64().unwrap_or(0);
    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    Outcome {
        held: truth["max_in_flight"].as_u64().unwrap_or(0),
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

/// A short one-stream run: its peak RSS is what every run pays before its first stream, and
/// its summary says how soon after launch the first request went out.
fn one_stream_run(pin: &Pinning) -> (u64, f64) {
    let load = Load::for_streams(1);
    let sim = Simulator::start(&load.pace(), &[], pin.sim);
    let dir = tempfile::tempdir().unwrap();
    let (usage, summary) = run_client(&sim.url(), &step_args(&load, 2), pin.client, dir.path());
    sim.stop();
    let first_request_ms = summary["client"]["startup_first_request_ms"]
        .as_f64()
        .unwrap_or(f64::NAN);
    (usage.max_rss_kib, first_request_ms)
}

/// One open-loop load: `rate` requests/s of short requests (4 output tokens) for `seconds`.
struct OpenOutcome {
    target: f64,
    due: f64,
    achieved: f64,
    server_rate: f64,
    late_p50: f64,
    late_p99: f64,
    client_us_per_request: f64,
    client_us_per_event: f64,
    requests: u64,
    errors: u64,
    client_bound: bool,
}

fn measure_open(rate: f64, seconds: u64, pin: &Pinning) -> OpenOutcome {
    // A fast engine: 2 ms steps, so 4 tokens take under 10 ms and few requests are in flight.
    let sim = Simulator::start(&SimPace { decode_ms: 2.0 }, &[], pin.sim);
    let dir = tempfile::tempdir().unwrap();
    http(sim.port, "POST", "/sim/reset");
    let args: Vec<String> = [
        "-o",
        "-tg",
        "4",
        "-pp",
        "40",
        "--rate",
        &rate.to_string(),
        "--step-duration",
        &format!("{seconds}s"),
        "--warmup",
        "1s",
    ]
    .map(String::from)
    .to_vec();
    let (usage, summary) = run_client(&sim.url(), &args, pin.client, dir.path());
    let truth = sim.stats();
    sim.stop();
    assert!(usage.success, "llm-bench failed at {rate} req/s");
    let step = &summary["steps"][0];
    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let events = summary["client"]["events"].as_u64().unwrap_or(0);
    let requests = truth["requests_total"].as_u64().unwrap_or(0);
    OpenOutcome {
        target: rate,
        due: f(&step["scheduled_rps"]),
        achieved: f(&step["achieved_rps"]),
        server_rate: f(&truth["arrivals"]["rate_rps"]),
        late_p50: f(&step["send_lateness_ms"]["p50"]),
        late_p99: f(&step["send_lateness_ms"]["p99"]),
        client_us_per_request: 1e6 * usage.cpu_s / requests.max(1) as f64,
        client_us_per_event: 1e6 * usage.cpu_s / events.max(1) as f64,
        requests,
        errors: step["requests_failed"].as_u64().unwrap_or(0),
        client_bound: summary["client_bound"].as_bool().unwrap_or(false),
    }
}

fn open_loop_table(rates: &[f64], seconds: u64, pin: &Pinning) {
    println!();
    println!(
        "Open loop: Poisson arrivals of short requests (40-character prompt, 4 output tokens), {seconds} s a rate"
    );
    println!(
        "{:>8} {:>9} {:>9} {:>9} {:>9} {:>10} {:>10} {:>9} {:>9} {:>7} {:>6}",
        "target", "due", "achieved", "vs due", "server", "late p50", "late p99", "client", "client", "errors", "bound"
    );
    println!(
        "{:>8} {:>9} {:>9} {:>9} {:>9} {:>10} {:>10} {:>9} {:>9} {:>7} {:>6}",
        "req/s", "req/s", "req/s", "", "req/s", "ms", "ms", "µs/req", "µs/event", "", ""
    );
    for &rate in rates {
        let o = measure_open(rate, seconds, pin);
        println!(
            "{:>8.0} {:>9.1} {:>9.1} {:>+8.2}% {:>9.1} {:>10.3} {:>10.3} {:>9.1} {:>9.2} {:>7} {:>6}",
            o.target,
            o.due,
            o.achieved,
            100.0 * (o.achieved / o.due - 1.0),
            o.server_rate,
            o.late_p50,
            o.late_p99,
            o.client_us_per_request,
            o.client_us_per_event,
            o.errors,
            if o.client_bound { "yes" } else { "no" },
        );
        let _ = o.requests;
        std::io::stdout().flush().ok();
    }
    println!();
    println!("due: measured requests the seeded Poisson schedule made due per second of the window (it varies");
    println!("around the target by about 1/sqrt(n)); achieved: those llm-bench sent; server: the simulator's count of");
    println!(
        "arrivals per second (kernel stamps, warm-up included); late: actual − intended send time; client µs: the"
    );
    println!("whole process's CPU over the requests and events.");
}

/// Median wall time of `llm-bench --help`, over 20 launches.
fn help_ms(pin: &Pinning) -> f64 {
    let mut times: Vec<f64> = (0..20)
        .map(|_| {
            let t = Instant::now();
            let out = Pinning::command(pin.client).arg("--help").output().unwrap();
            assert!(out.status.success());
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() {
    let streams: Vec<u32> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .filter_map(|a| a.parse().ok())
        .collect();
    // `open`: only the open-loop rows.
    let open_only = std::env::args().any(|a| a == "open");
    let streams = match (streams.is_empty(), open_only) {
        (_, true) => Vec::new(),
        (true, false) => vec![100, 1_000, 10_000],
        (false, false) => streams,
    };
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    let pin = Pinning::detect();
    let cpu_model = cpu_model();
    println!(
        "llm-bench client benchmark: {cpu_model}, {} CPUs; {}; {seconds} s per load, 50 output tokens per request",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        match (pin.sim, pin.client) {
            (Some(s), Some(c)) => format!("simulator pinned to CPU {s}, llm-bench to CPU {c}"),
            _ => "NOT pinned (needs 2 CPUs and taskset)".into(),
        }
    );
    let help = help_ms(&pin);
    let (baseline, first_request_ms) = one_stream_run(&pin);
    println!(
        "start-up: `llm-bench --help` {help:.1} ms (median of 20); first request {first_request_ms:.1} ms after launch"
    );
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
    let rates: Vec<f64> = std::env::var("BENCH_RATES")
        .unwrap_or_else(|_| "1000,5000".into())
        .split(',')
        .filter_map(|r| r.trim().parse().ok())
        .collect();
    if !rates.is_empty() {
        open_loop_table(&rates, seconds, &pin);
    }
}
