//! A compressed soak: a stress run against the simulator at a high request rate, watching the
//! client's memory from outside (`/proc/PID/status`) the whole time. An 8-hour run must keep
//! memory flat; this shows it over `SOAK_MINUTES` (default 10) at `SOAK_CONCURRENCY` (default
//! 256) streams of short requests.
//!
//! Run: `scripts/soak.sh` (or `cargo bench --bench soak`).

mod support;

use std::time::{Duration, Instant};
use support::{Pinning, SimPace, Simulator};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Resident memory of a process in MiB, from the kernel.
fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// The child's exit, without blocking: `Some(success)` once it has ended.
fn try_reap(pid: u32) -> Option<bool> {
    let mut status = 0;
    // SAFETY: waitpid on our own child with WNOHANG only writes the status.
    let rc = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, libc::WNOHANG) };
    (rc > 0).then(|| libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0)
}

// The child is reaped by `try_reap` (waitpid), which std cannot see.
#[allow(clippy::zombie_processes)]
fn main() {
    let minutes = env_or("SOAK_MINUTES", 10);
    let concurrency = env_or("SOAK_CONCURRENCY", 256);
    let pin = Pinning::detect();
    // Short, fast requests: the highest request rate one simulator core sustains.
    let sim = Simulator::start(&SimPace { decode_ms: 2.0 }, &[], pin.sim);
    let dir = tempfile::tempdir().unwrap();
    let child = Pinning::command(pin.client)
        .args(["-u", &sim.url(), "--out"])
        .arg(dir.path().join("results"))
        .arg("-l")
        .arg(dir.path().join("run.log"))
        .args([
            "-o",
            "-st",
            &concurrency.to_string(),
            "--duration",
            &format!("{minutes}m"),
        ])
        .args([
            "-pp",
            "200",
            "-tg",
            "32",
            "--report-interval",
            "60s",
            "--monitor-interval",
            "10s",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("llm-bench starts");
    let pid = child.id();
    println!(
        "soak: {minutes} min stress run, {concurrency} streams, 32-token requests, simulator at 2 ms per decode step; {}",
        match (pin.sim, pin.client) {
            (Some(s), Some(c)) => format!("simulator on CPU {s}, llm-bench on CPU {c}"),
            _ => "not pinned".into(),
        }
    );
    println!(
        "{:>8} {:>14} {:>14} {:>12}",
        "elapsed", "client RSS MiB", "sim requests", "requests/s"
    );
    let started = Instant::now();
    let mut samples: Vec<(f64, f64)> = Vec::new();
    let mut last_print = Instant::now();
    let mut last_done = 0u64;
    let success = loop {
        if let Some(ok) = try_reap(pid) {
            break ok;
        }
        if let Some(rss) = rss_mib(pid) {
            samples.push((started.elapsed().as_secs_f64(), rss));
        }
        if last_print.elapsed() >= Duration::from_secs(60) {
            let since = last_print.elapsed().as_secs_f64().min(60.0);
            last_print = Instant::now();
            let done = sim.stats()["requests_completed"].as_u64().unwrap_or(0);
            println!(
                "{:>7.0}s {:>14.1} {:>14} {:>12.0}",
                started.elapsed().as_secs_f64(),
                samples.last().map_or(f64::NAN, |s| s.1),
                done,
                (done - last_done) as f64 / since
            );
            last_done = done;
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    let total = sim.stats()["requests_completed"].as_u64().unwrap_or(0);
    sim.stop();
    assert!(
        success,
        "llm-bench failed; see {}",
        dir.path().join("run.log").display()
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("results/summary.json")).unwrap()).unwrap();
    // Start = after the first minute (connections open, buffers grown); end = the last sample.
    let warm = samples
        .iter()
        .find(|(t, _)| *t >= 60.0_f64.min(minutes as f64 * 30.0))
        .or(samples.first())
        .copied()
        .unwrap_or((0.0, f64::NAN));
    let end = samples.last().copied().unwrap_or((0.0, f64::NAN));
    let peak = samples.iter().map(|s| s.1).fold(0.0, f64::max);
    let failed: u64 = summary["steps"]
        .as_array()
        .map(|steps| steps.iter().filter_map(|s| s["requests_failed"].as_u64()).sum())
        .unwrap_or(0);
    println!();
    println!(
        "requests: {total} in {:.0} s ({:.0}/s), {failed} failed",
        end.0,
        total as f64 / end.0.max(1.0)
    );
    println!(
        "client RSS: {:.1} MiB at {:.0} s, {:.1} MiB at the end ({:+.1} MiB, {:+.1}%), peak {:.1} MiB",
        warm.1,
        warm.0,
        end.1,
        end.1 - warm.1,
        100.0 * (end.1 - warm.1) / warm.1,
        peak
    );
    if let Some(drift) = summary["stress"]["drift"].as_array() {
        for line in drift {
            println!("drift: {}", line.as_str().unwrap_or(""));
        }
    }
}
