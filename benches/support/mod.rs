//! Shared by the process-level benchmarks: the simulator and llm-bench as child processes,
//! optionally pinned to CPUs, with the kernel's CPU and memory accounting of each.
#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_llm-bench");

/// How the simulator paces each stream.
pub struct SimPace {
    pub decode_ms: f64,
}

/// Where each process runs: `taskset -c CPU` when there are two CPUs and taskset exists.
pub struct Pinning {
    pub sim: Option<usize>,
    pub client: Option<usize>,
}

impl Pinning {
    pub fn detect() -> Self {
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

    pub fn command(cpu: Option<usize>) -> Command {
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
///
/// The peak is wait4's `ru_maxrss`, in which Linux counts the peak of the memory the child
/// replaced at exec: the benchmark process's own, as it was at the spawn. So a benchmark keeps
/// itself small until its last spawn (it reads results as figures, not whole documents) and
/// can print its own peak (`llm_bench::monitor::process_peak_rss_mb`) as the floor of every
/// child's.
pub struct Usage {
    pub cpu_s: f64,
    pub max_rss_kib: u64,
    pub success: bool,
}

pub fn wait_with_usage(child: &Child) -> Usage {
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
pub fn http(port: u16, method: &str, path: &str) -> String {
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

pub struct Simulator {
    child: Child,
    pub port: u16,
}

/// The port a `llm-bench serve --port 0` child announces on its first line of stdout.
pub fn announced_port(child: &mut std::process::Child) -> u16 {
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout piped"))
        .read_line(&mut line)
        .unwrap();
    line.rsplit(':')
        .next()
        .and_then(|p| p.trim().trim_end_matches("/v1").parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"))
}

impl Simulator {
    // Reaped by `stop` (wait4), which std cannot see.
    #[allow(clippy::zombie_processes)]
    pub fn start(pace: &SimPace, extra: &[&str], cpu: Option<usize>) -> Self {
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
                &pace.decode_ms.to_string(),
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("simulator starts");
        let port = announced_port(&mut child);
        Self { child, port }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    pub fn stats(&self) -> Value {
        serde_json::from_str(&http(self.port, "GET", "/sim/stats")).expect("stats are JSON")
    }

    pub fn stop(self) -> Usage {
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGKILL) };
        wait_with_usage(&self.child)
    }
}

// The child is reaped by `wait_with_usage` (wait4), which std cannot see.
#[allow(clippy::zombie_processes)]
pub fn run_client(url: &str, args: &[String], cpu: Option<usize>, dir: &Path) -> (Usage, Value) {
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

/// What the shards of a distributed benchmark run share: one `--run-id`, one `--start-at`, their
/// count, the folder their results go in and the CPU they run on.
pub struct ShardedRun<'a> {
    pub run_id: &'a str,
    pub start_at: &'a str,
    pub shards: u32,
    pub dir: &'a Path,
    pub cpu: Option<usize>,
}

impl ShardedRun<'_> {
    /// Shard `i` with the run's `args` (the whole run's load: `--shard` takes its share), its
    /// results in DIR/shard-i and its log in DIR/shard-i.log.
    // Reaped by `wait_with_usage` (wait4), which std cannot see.
    #[allow(clippy::zombie_processes)]
    pub fn start_shard(&self, i: u32, args: &[String], stderr: Stdio) -> Child {
        Pinning::command(self.cpu)
            .args(args)
            .args(["--shard", &format!("{i}/{}", self.shards), "--run-id", self.run_id])
            .args(["--start-at", self.start_at])
            .arg("--out")
            .arg(self.dir.join(format!("shard-{i}")))
            .arg("-l")
            .arg(self.dir.join(format!("shard-{i}.log")))
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("llm-bench shard starts")
    }

    /// Waits for every shard; fails, naming its log, unless all succeeded.
    pub fn wait_all(&self, children: &[Child]) -> Vec<Usage> {
        let usages: Vec<Usage> = children.iter().map(wait_with_usage).collect();
        for (i, u) in usages.iter().enumerate() {
            let log = self.dir.join(format!("shard-{i}.log"));
            assert!(u.success, "shard {i} failed (its log: {})", log.display());
        }
        usages
    }

    /// The shards' results folders, by index.
    pub fn folders(&self) -> Vec<std::path::PathBuf> {
        (0..self.shards).map(|i| self.dir.join(format!("shard-{i}"))).collect()
    }
}

/// `llm-bench merge DIRS… --out OUT EXTRA…`: its wall time (launch to exit), and CPU and peak
/// RSS from wait4.
// Reaped by `wait_with_usage` (wait4), which std cannot see.
#[allow(clippy::zombie_processes)]
pub fn run_merge<P: AsRef<Path>>(dirs: &[P], out: &Path, extra: &[&str], cpu: Option<usize>) -> (f64, Usage) {
    let began = std::time::Instant::now();
    let child = Pinning::command(cpu)
        .arg("merge")
        .args(dirs.iter().map(AsRef::as_ref))
        .arg("--out")
        .arg(out)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("llm-bench merge starts");
    let usage = wait_with_usage(&child);
    (began.elapsed().as_secs_f64(), usage)
}

/// The CPU's model name from /proc/cpuinfo, for a benchmark's first line.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}
