//! `llm-bench report DIR` on large requests.jsonl files (issue 11 §1): records/s and the peak
//! RSS of the child process, which should stay flat as the file grows (the records are
//! streamed, never kept). Prints figures, asserts no timings.
//!
//! Each file holds synthetic records like a real run's: 32 output tokens each (32 text
//! chunks), spread over 8 closed-loop steps, with a saved summary.json beside it as a run
//! leaves it. Run: `cargo bench --bench report_rebuild` (`REPORT_SIZES=256000,1024000` sets
//! the record counts; `REPORT_CSV=1` also writes requests.csv in the same pass;
//! `REPORT_KEEP=DIR` leaves the folders in DIR, e.g. to profile `llm-bench report` on them), or
//! `scripts/bench-report.sh`. `records/s` is over wall time; `records/cpu-s` over the child's
//! CPU time (one core: the rebuild is single-threaded), the fairer figure on a busy machine.

use llm_bench::client::{Phase, RequestRecord};
use llm_bench::load::LoadPoint;
use llm_bench::workload::TestKind;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

#[path = "support/mod.rs"]
mod support;
use support::{wait_with_usage, BIN};

const STEPS: u64 = 8;
const TOKENS: u64 = 32;

/// Record `i` of `n`: step `i * STEPS / n`, 32 tokens 20 ms apart after a 150 ms TTFT.
fn record(i: u64, n: u64) -> RequestRecord {
    let step = i * STEPS / n;
    let concurrency = (step as u32 + 1) * 8;
    let first = 150_000 + (i % 97) * 1_000;
    let token_us: Vec<u64> = (0..TOKENS)
        .map(|t| first + t * 20_000 + (i * 7 + t * 13) % 900)
        .collect();
    let last = *token_us.last().unwrap();
    RequestRecord {
        id: i,
        test: TestKind::Output,
        concurrency,
        conn: (i % u64::from(concurrency)) as u32,
        load: Some(LoadPoint::Concurrency(concurrency)),
        intended_s: Some(i as f64 * 0.001),
        phase: Phase::Measured,
        start_s: i as f64 * 0.001 + 0.0002,
        connect_us: 0,
        send_delay_us: 40 + i % 50,
        headers_us: Some(900),
        first_event_us: Some(first - 200),
        first_token_us: Some(first),
        last_token_us: Some(last),
        end_us: last + 800,
        status: Some(200),
        ok: true,
        requested_osl: Some(TOKENS),
        prompt_tokens: 120,
        output_tokens: TOKENS,
        token_us,
        events: TOKENS as u32 + 3,
        finish_reason: Some("length".into()),
        ..RequestRecord::default()
    }
}

/// Writes `n` records (and the summary.json a run would leave) into `dir`; returns the file's
/// size in bytes.
fn write_records(dir: &Path, n: u64) -> u64 {
    let path = dir.join("requests.jsonl");
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(&path).unwrap());
    for i in 0..n {
        serde_json::to_writer(&mut out, &record(i, n)).unwrap();
        out.write_all(b"\n").unwrap();
    }
    out.flush().unwrap();
    std::fs::metadata(&path).unwrap().len()
}

/// A results folder: temporary, or kept (`REPORT_KEEP`).
enum Kept {
    Temp(tempfile::TempDir),
    Dir(std::path::PathBuf),
}

impl From<std::path::PathBuf> for Kept {
    fn from(dir: std::path::PathBuf) -> Self {
        Kept::Dir(dir)
    }
}

impl Kept {
    fn path(&self) -> &Path {
        match self {
            Kept::Temp(t) => t.path(),
            Kept::Dir(d) => d,
        }
    }
}

fn main() {
    let sizes: Vec<u64> = std::env::var("REPORT_SIZES")
        .unwrap_or_else(|_| "256000,1024000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("REPORT_SIZES: record counts, comma-separated"))
        .collect();
    let csv = std::env::var("REPORT_CSV").is_ok_and(|v| v == "1");
    println!(
        "llm-bench report DIR{}: {TOKENS}-token records over {STEPS} steps",
        if csv { " --csv-requests" } else { "" }
    );
    println!(
        "{:>10} {:>9} {:>8} {:>10} {:>8} {:>14} {:>11}",
        "records", "file MB", "wall s", "records/s", "cpu s", "records/cpu-s", "peak RSS MB"
    );
    for n in sizes {
        let dir = match std::env::var_os("REPORT_KEEP") {
            Some(keep) => {
                let dir = Path::new(&keep).join(format!("records-{n}"));
                std::fs::create_dir_all(&dir).unwrap();
                tempfile::TempDir::with_prefix_in("kept-", &dir).unwrap().keep().into()
            }
            None => Kept::Temp(tempfile::tempdir().unwrap()),
        };
        let bytes = write_records(dir.path(), n);
        let mut cmd = std::process::Command::new(BIN);
        cmd.arg("report").arg(dir.path());
        if csv {
            cmd.arg("--csv-requests");
        }
        let started = Instant::now();
        // Reaped by wait4 in wait_with_usage (which also reads its peak RSS).
        #[allow(clippy::zombie_processes)]
        let child = cmd.stdout(Stdio::null()).stderr(Stdio::inherit()).spawn().unwrap();
        let usage = wait_with_usage(&child);
        let wall = started.elapsed().as_secs_f64();
        assert!(usage.success, "llm-bench report failed");
        let summary: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("summary.json")).unwrap()).unwrap();
        let counted: u64 = summary["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["requests_ok"].as_u64().unwrap())
            .sum();
        assert_eq!(counted, n, "every record counted");
        println!(
            "{n:>10} {:>9.0} {wall:>8.2} {:>10.0} {:>8.2} {:>14.0} {:>11.1}",
            bytes as f64 / 1e6,
            n as f64 / wall,
            usage.cpu_s,
            n as f64 / usage.cpu_s,
            usage.max_rss_kib as f64 / 1024.0
        );
    }
}
