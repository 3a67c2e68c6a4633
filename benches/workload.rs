//! Workload generation cost and end-to-end upload (issue 10 §6). Prints figures, asserts no
//! timings:
//!
//! 1. prompts/s of 1k-token token-exact prompts (`TokenText::text`), µs per request body through
//!    `Workload::build` at ISL 128 / 2,048 / 100,000, and µs per request of a synthetic
//!    512x512 JPEG / PNG image (`Images::Synth`, multimodal test);
//! 2. against the built-in simulator (a child process, on a free port, killed on exit):
//!    (a) ISL 100,000 at 64 connections: upload MB/s and client CPU per request;
//!    (b) 5,000 req/s open loop at ISL 2,048: send lateness p50/p99/max and the pacing warning.
//!
//! Run: `cargo bench --bench workload` (`-- micro` or `-- e2e` for one half;
//! `WORKLOAD_SECONDS=10` sets the end-to-end step length; `WORKLOAD_PIN=0` runs both processes
//! unpinned). With two CPUs and taskset the simulator runs on CPU 0 and llm-bench on CPU 1.

use llm_bench::workload::source::TokenExact;
use llm_bench::workload::synth_image::ImageFormat;
use llm_bench::workload::tokens::{LengthDist, TokenText};
use llm_bench::workload::{ApiKind, Images, TestKind, Workload, WorkloadSpec};
use serde_json::Value;
use std::hint::black_box;
use std::os::unix::process::CommandExt;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "support/mod.rs"]
mod support;
use support::{http, Pinning, BIN};

const SEED: u64 = 42;

/// The short table: (figure, value, unit), printed at the end, or written as tab-separated
/// lines to `$WORKLOAD_TABLE` for scripts/bench-workload.sh.
static TABLE: std::sync::Mutex<Vec<(String, String, String)>> = std::sync::Mutex::new(Vec::new());

fn row(figure: impl Into<String>, value: impl Into<String>, unit: &str) {
    TABLE.lock().unwrap().push((figure.into(), value.into(), unit.into()));
}

/// Runs `f(i)` for i = 0, 1, … until `budget` has passed (at least `min` times); returns
/// (iterations, seconds).
fn timed(budget: Duration, min: u64, mut f: impl FnMut(u64)) -> (u64, f64) {
    let start = Instant::now();
    let mut i = 0;
    while i < min || start.elapsed() < budget {
        f(i);
        i += 1;
    }
    (i, start.elapsed().as_secs_f64())
}

fn token_workload(isl: u64, images: Option<Images>) -> Workload {
    Workload::new(WorkloadSpec {
        model: "llm-bench-sim".into(),
        api: ApiKind::Chat,
        source: Arc::new(TokenExact {
            text: Arc::new(TokenText::assumed()),
            isl: LengthDist::fixed(isl),
            osl: Some(LengthDist::fixed(4)),
            seed: SEED,
            same_prompt: false,
            prefix: None,
            multimodal_text: "Describe this image.".into(),
        }),
        max_tokens: 4,
        ignore_eos: false,
        continuous_usage: false,
        extra_body: serde_json::Map::new(),
        images,
        embed_batch: 1,
    })
}

/// Mean body bytes of a few requests at `isl` (what `Workload::build` sends).
fn body_bytes(isl: u64) -> f64 {
    let w = token_workload(isl, None);
    (0..8)
        .map(|i| w.build(TestKind::Output, i).body.len() as f64)
        .sum::<f64>()
        / 8.0
}

fn micro() {
    println!("Workload generation (this process, one thread)");
    let text = TokenText::assumed();
    let mut bytes = 0usize;
    let (n, s) = timed(Duration::from_secs(2), 100, |i| {
        bytes += black_box(text.text(1000, Some(i), SEED)).len();
    });
    row(
        "1k-token prompts (TokenText::text)",
        format!("{:.0}", n as f64 / s),
        "prompts/s",
    );
    println!(
        "  1k-token prompts (TokenText::text)   {:>10.0} prompts/s  {:>8.1} µs/prompt  {:>6.0} B/prompt  {:>6.0} MB/s",
        n as f64 / s,
        1e6 * s / n as f64,
        bytes as f64 / n as f64,
        bytes as f64 / s / 1e6
    );
    for isl in [128u64, 2048, 100_000] {
        let w = token_workload(isl, None);
        let mut bytes = 0usize;
        let (n, s) = timed(Duration::from_secs(2), 20, |i| {
            bytes += black_box(w.build(TestKind::Output, i)).body.len();
        });
        row(
            format!("body build, ISL {isl} ({:.0} kB)", bytes as f64 / n as f64 / 1e3),
            format!("{:.1}", 1e6 * s / n as f64),
            "µs/request",
        );
        println!(
            "  body, ISL {:>7} (Workload::build)  {:>10.0} bodies/s   {:>8.1} µs/request {:>8.0} B/body  {:>6.0} MB/s",
            isl,
            n as f64 / s,
            1e6 * s / n as f64,
            bytes as f64 / n as f64,
            bytes as f64 / s / 1e6
        );
        // What src/client/h1.rs did on every send before it wrote the head and the body
        // Bytes in one writev: head and body copied into one request buffer.
        let head = [b'x'; 200];
        let bodies: Vec<_> = (0..8).map(|i| w.build(TestKind::Output, i).body).collect();
        let (cn, cs) = timed(Duration::from_secs(1), 20, |i| {
            let body = &bodies[i as usize % bodies.len()];
            let mut out = Vec::with_capacity(512 + body.len());
            out.extend_from_slice(&head);
            out.extend_from_slice(body);
            black_box(out);
        });
        println!(
            "    copy into a request buffer (h1 before the writev fix)       {:>8.2} µs/request",
            1e6 * cs / cn as f64
        );
        row(
            format!("  request-buffer copy, ISL {isl} (removed)"),
            format!("{:.2}", 1e6 * cs / cn as f64),
            "µs/request",
        );
    }
    for format in [ImageFormat::Jpeg, ImageFormat::Png] {
        let images = Images::Synth {
            width: 512,
            height: 512,
            format,
            per_request: 1,
            seed: SEED,
        };
        let w = token_workload(128, Some(images));
        let mut bytes = 0u64;
        let (n, s) = timed(Duration::from_secs(3), 10, |i| {
            bytes += black_box(w.build(TestKind::Multimodal, i)).image_bytes;
        });
        row(
            format!("512x512 synthetic {} image", format.name()),
            format!("{:.0}", 1e6 * s / n as f64),
            "µs/request",
        );
        println!(
            "  512x512 synthetic {:<4} (multimodal) {:>10.1} requests/s {:>8.0} µs/request {:>8.0} B data URL",
            format.name(),
            n as f64 / s,
            1e6 * s / n as f64,
            bytes as f64 / n as f64
        );
    }
}

/// The simulator as a child: on a free port (`--port 0`), killed when dropped, and by the
/// kernel if this process dies first.
struct Sim {
    child: Option<Child>,
    port: u16,
}

impl Sim {
    fn start(cpu: Option<usize>, extra: &[&str]) -> Self {
        let mut cmd = Pinning::command(cpu);
        cmd.args(["serve", "--port", "0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        // SAFETY: prctl in the forked child before exec, async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect("simulator starts");
        let port = support::announced_port(&mut child);
        Self {
            child: Some(child),
            port,
        }
    }

    /// Kills it; its CPU seconds.
    // Reaped by wait_with_usage (wait4), which std cannot see.
    #[allow(clippy::zombie_processes)]
    fn stop(mut self) -> f64 {
        let child = self.child.take().unwrap();
        // SAFETY: plain kill(2) on our own child, reaped by wait_with_usage.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
        support::wait_with_usage(&child).cpu_s
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    fn stats(&self) -> Value {
        serde_json::from_str(&http(self.port, "GET", "/sim/stats")).expect("stats are JSON")
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Generous engine settings: the simulator should not be what limits the client.
const FAST_ENGINE: [&str; 8] = [
    "--max-batch",
    "100000",
    "--prefill-us-per-token",
    "0",
    "--decode-base-ms",
    "1",
    "--decode-ms-per-seq",
    "0",
];

/// Runs llm-bench to the end; returns its CPU seconds (kernel accounting) and the summary.
// Reaped by wait_with_usage (wait4), which std cannot see.
#[allow(clippy::zombie_processes)]
fn run_client(url: &str, args: &[&str], cpu: Option<usize>) -> (f64, Value) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Pinning::command(cpu);
    cmd.args(["-u", url, "--out"])
        .arg(dir.path().join("results"))
        .arg("-l")
        .arg(dir.path().join("run.log"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    // SAFETY: prctl in the forked child before exec, async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let child = cmd.spawn().expect("llm-bench starts");
    let usage = support::wait_with_usage(&child);
    assert!(usage.success, "llm-bench {args:?} failed");
    let summary = std::fs::read(dir.path().join("results/summary.json")).expect("summary written");
    (usage.cpu_s, serde_json::from_slice(&summary).unwrap())
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn e2e(seconds: u64, pin: &Pinning) {
    let placement = match (pin.sim, pin.client) {
        (Some(s), Some(c)) => format!("simulator on CPU {s}, llm-bench on CPU {c}"),
        _ => "simulator and llm-bench unpinned".into(),
    };
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!();
    println!("End to end against the built-in simulator ({cpus} CPUs shared by both processes: {placement})");
    let duration = format!("{seconds}s");

    // (a) Long prompts, closed loop.
    let body = body_bytes(100_000);
    let sim = Sim::start(pin.sim, &FAST_ENGINE);
    http(sim.port, "POST", "/sim/reset");
    let args = [
        "-o",
        "-st",
        "64",
        "-et",
        "64",
        "--isl",
        "100000",
        "--osl",
        "4",
        "--step-duration",
        &duration,
    ];
    let (cpu_s, summary) = run_client(&sim.url(), &args, pin.client);
    let truth = sim.stats();
    let sim_cpu_s = sim.stop();
    let step = &summary["steps"][0];
    let ok = step["requests_ok"].as_u64().unwrap_or(0);
    let step_s = f(&step["duration_s"]);
    let sent = truth["requests_total"].as_u64().unwrap_or(0);
    let step_cpu_s = f(&step["client"]["cpu_pct"]) / 100.0 * step_s;
    row(
        "ISL 100k x 64 conns: upload",
        format!("{:.1}", ok as f64 * body / step_s / 1e6),
        "MB/s",
    );
    row(
        "ISL 100k x 64 conns: requests",
        format!("{:.1}", ok as f64 / step_s),
        "req/s",
    );
    row(
        "ISL 100k x 64 conns: client CPU",
        format!("{:.0}", 1e6 * step_cpu_s / ok.max(1) as f64),
        "µs/request",
    );
    println!("  (a) --isl 100000, 64 connections, --osl 4, {seconds} s step");
    println!(
        "      body {:.0} kB/request; {} requests in the step ({:.1} req/s), {} sent in the run",
        body / 1e3,
        ok,
        ok as f64 / step_s,
        sent
    );
    println!(
        "      upload {:.1} MB/s (step requests x body / step duration)",
        ok as f64 * body / step_s / 1e6
    );
    println!(
        "      client CPU {:.0} µs/request in the step ({:.0}% of a core); {:.0} µs/request over the run ({:.2} s / {} requests){}",
        1e6 * step_cpu_s / ok.max(1) as f64,
        f(&step["client"]["cpu_pct"]),
        1e6 * cpu_s / sent.max(1) as f64,
        cpu_s,
        sent,
        match summary["client_bound"].as_bool() {
            Some(true) => format!("; client-bound: {}", step["client"]["reasons"]),
            _ => String::new(),
        }
    );
    println!(
        "      simulator CPU {:.0} µs/request; prompt tokens/request {:.0}; failed {}",
        1e6 * sim_cpu_s / sent.max(1) as f64,
        truth["prompt_tokens_total"].as_u64().unwrap_or(0) as f64 / sent.max(1) as f64,
        step["requests_failed"].as_u64().unwrap_or(0)
    );

    // (b) Open loop at 5,000 req/s.
    let sim = Sim::start(pin.sim, &FAST_ENGINE);
    http(sim.port, "POST", "/sim/reset");
    let args = [
        "-o",
        "--isl",
        "2048",
        "--osl",
        "2",
        "--rate",
        "5000",
        "--step-duration",
        &duration,
    ];
    let (cpu_s, summary) = run_client(&sim.url(), &args, pin.client);
    let truth = sim.stats();
    let sim_cpu_s = sim.stop();
    let step = &summary["steps"][0];
    let late = &step["send_lateness_ms"];
    let sent = truth["requests_total"].as_u64().unwrap_or(0);
    row(
        "5000 req/s ISL 2048: achieved",
        format!("{:.0}", f(&step["achieved_rps"])),
        "req/s",
    );
    row(
        "5000 req/s ISL 2048: send lateness p50/p99/max",
        format!("{:.2}/{:.1}/{:.1}", f(&late["p50"]), f(&late["p99"]), f(&late["max"])),
        "ms",
    );
    row(
        "5000 req/s ISL 2048: pacing_warning",
        if step["pacing_warning"].is_null() {
            "none"
        } else {
            "yes"
        },
        "",
    );
    println!("  (b) --rate 5000 open loop, --isl 2048, --osl 2, {seconds} s step");
    println!(
        "      due {:.0} req/s, achieved {:.0} req/s, simulator saw {:.0} req/s; failed {}",
        f(&step["scheduled_rps"]),
        f(&step["achieved_rps"]),
        f(&truth["arrivals"]["rate_rps"]),
        step["requests_failed"].as_u64().unwrap_or(0)
    );
    println!(
        "      send_lateness_ms p50 {:.3}  p99 {:.3}  max {:.3}",
        f(&late["p50"]),
        f(&late["p99"]),
        f(&late["max"])
    );
    println!(
        "      client CPU {:.0} µs/request, simulator CPU {:.0} µs/request over the run; pacing_warning: {}",
        1e6 * cpu_s / sent.max(1) as f64,
        1e6 * sim_cpu_s / sent.max(1) as f64,
        match &step["pacing_warning"] {
            Value::Null => "none".to_string(),
            v => v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()),
        }
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let want = |part: &str| args.is_empty() || args.iter().any(|a| a == part);
    let seconds = std::env::var("WORKLOAD_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10u64);
    let pin = match std::env::var("WORKLOAD_PIN").as_deref() {
        Ok("0") => Pinning {
            sim: None,
            client: None,
        },
        _ => Pinning::detect(),
    };
    let _ = BIN;
    if want("micro") {
        micro();
    }
    if want("e2e") {
        e2e(seconds, &pin);
    }
    let table = TABLE.lock().unwrap();
    match std::env::var_os("WORKLOAD_TABLE") {
        Some(path) => {
            let text: String = table.iter().map(|(a, b, c)| format!("{a}\t{b}\t{c}\n")).collect();
            std::fs::write(path, text).expect("table written");
        }
        None => {
            println!();
            for (figure, value, unit) in table.iter() {
                println!("{figure:<48} {value:>16} {unit}");
            }
        }
    }
}
