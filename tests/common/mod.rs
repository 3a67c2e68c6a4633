//! Shared helpers: the simulator on its own runtime, and the real binary run against it.
#![allow(dead_code)]

pub mod raw;
pub mod tls;

use llm_bench::sim::{SimConfig, SimHandle, SimStats};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Sim {
    pub url: String,
    handle: SimHandle,
    _runtime: tokio::runtime::Runtime,
}

impl Sim {
    pub fn start(config: SimConfig) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let handle = runtime
            .block_on(llm_bench::sim::start(SimConfig { port: 0, ..config }))
            .unwrap();
        Self {
            url: handle.base_url(),
            handle,
            _runtime: runtime,
        }
    }

    pub fn stats(&self) -> SimStats {
        self.handle.stats()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

/// A number from a JSON value (a test failure, with the value, when it is not one).
pub fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// A simulator whose engine runs `batch` sequences in steps of `step_ms`: with `-tg N` a request
/// holds a slot for about N steps, so its capacity is batch / (N × step) requests per second.
pub fn engine(batch: usize, step_ms: f64) -> SimConfig {
    SimConfig {
        decode_base_ms: step_ms,
        decode_ms_per_seq: 0.0,
        prefill_us_per_token: 1.0,
        max_batch: batch,
        ..SimConfig::default()
    }
}

/// A simulator fast enough that tests finish quickly.
pub fn fast_sim() -> SimConfig {
    SimConfig {
        decode_base_ms: 2.0,
        decode_ms_per_seq: 0.0,
        prefill_us_per_token: 1.0,
        max_batch: 4096,
        ..SimConfig::default()
    }
}

/// Proxy variables a machine (a CI runner behind a proxy) may set: every test starts without
/// them, so that its requests to 127.0.0.1 go direct; the proxy tests set them explicitly.
pub const PROXY_VARS: &[&str] = &[
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
];

/// Locale variables that choose the language of llm-bench's sentences: every test starts
/// without them (English), so that a machine's `LANG=zh_CN.UTF-8` changes no test; the language
/// tests set them explicitly.
pub const LOCALE_VARS: &[&str] = &["LC_ALL", "LC_MESSAGES", "LANG"];

pub fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_llm-bench"));
    for var in ["OPENAI_API_KEY", "OPENAI_BASE_URL", "LLM_BENCH_API_KEY"]
        .iter()
        .chain(PROXY_VARS)
        .chain(LOCALE_VARS)
    {
        cmd.env_remove(var);
    }
    cmd
}

pub fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("llm-bench runs")
}

pub fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A temp dir with `log` and `out` paths inside it.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    pub fn log(&self) -> String {
        self.path("run.log").display().to_string()
    }
    pub fn out(&self) -> String {
        self.path("results").display().to_string()
    }
    /// llm-bench against `url` with `args`, its log and results inside this folder.
    pub fn command(&self, url: &str, args: &[&str]) -> Command {
        let mut cmd = bin();
        cmd.args(args)
            .args(["-u", url, "-l", &self.log(), "--out", &self.out()]);
        cmd
    }

    /// Runs [`Scratch::command`] to the end.
    pub fn run(&self, url: &str, args: &[&str]) -> Output {
        self.command(url, args).output().expect("llm-bench runs")
    }

    pub fn summary(&self) -> Value {
        read_json(&self.path("results").join("summary.json"))
    }
    pub fn records(&self) -> Vec<Value> {
        std::fs::read_to_string(self.path("results").join("requests.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// Runs llm-bench against `sim` with `args` in a fresh scratch folder and fails the test, with
/// both outputs, unless it succeeded. Returns the folder and the standard output.
pub fn run_ok(sim: &Sim, args: &[&str]) -> (Scratch, String) {
    let s = Scratch::new();
    let out = s.run(&sim.url, args);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{args:?}\n{stdout}\n{stderr}");
    (s, stdout)
}

pub fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

/// One counter of a server's Prometheus `GET /metrics` (at the server's root, as llama-server
/// serves it; `base_url` is the API base, ending in /v1).
pub fn metric(base_url: &str, name: &str) -> f64 {
    use std::io::{Read, Write};
    let authority = base_url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .expect("host:port");
    let mut stream = std::net::TcpStream::connect(authority).expect("server reachable");
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics (is the server started with --metrics?)"))
}

/// A tiny valid PNG (1x1).
pub const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4, 0x89, 0x00, 0x00, 0x00, 0x0A, 0x49,
    0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00, 0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00,
    0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
];

/// Sends `signal` (SIGINT, SIGTERM, SIGKILL) to a child the test started.
pub fn signal(child: &std::process::Child, signal: i32) {
    // SAFETY: kill only sends a signal to our own child.
    unsafe {
        libc::kill(child.id() as i32, signal);
    }
}

/// `--start-at` a few seconds ahead, in RFC 3339.
pub fn start_at(ahead: std::time::Duration) -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now() + ahead).to_string()
}

/// How each shard of a run is told its index.
#[derive(Clone, Copy, PartialEq)]
pub enum ShardIndex {
    /// `--shard I/N`.
    Flag,
    /// `--shards N` and `JOB_COMPLETION_INDEX=I`, as in a Kubernetes Indexed Job.
    JobIndex,
}

/// Runs the `count` shards of one run (`args` with `--shard I/N`, `--run-id`, one `--start-at`
/// three seconds ahead) at the same time against `sim`; fails unless all succeed.
pub fn run_shards_together(sim: &Sim, run_id: &str, count: u32, args: &[&str]) -> Vec<Scratch> {
    run_shards_with_output(sim, run_id, count, args, ShardIndex::Flag)
        .into_iter()
        .map(|(s, _)| s)
        .collect()
}

/// [`run_shards_together`], each shard told its index as `index` says; with what each printed
/// (stdout, stderr).
pub fn run_shards_with_output(
    sim: &Sim,
    run_id: &str,
    count: u32,
    args: &[&str],
    index: ShardIndex,
) -> Vec<(Scratch, (String, String))> {
    let at = start_at(std::time::Duration::from_secs(3));
    let children: Vec<(Scratch, std::process::Child)> = (0..count)
        .map(|i| {
            let s = Scratch::new();
            let (shard, count) = (format!("{i}/{count}"), count.to_string());
            let ours = ["--run-id", run_id, "--start-at", &at];
            let how: [&str; 2] = match index {
                ShardIndex::Flag => ["--shard", &shard],
                ShardIndex::JobIndex => ["--shards", &count],
            };
            let mut cmd = s.command(&sim.url, &[args, &ours[..], &how[..]].concat());
            if index == ShardIndex::JobIndex {
                cmd.env("JOB_COMPLETION_INDEX", i.to_string());
            }
            let child = cmd
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            (s, child)
        })
        .collect();
    children
        .into_iter()
        .map(|(s, child)| {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "{:?}", text(&out));
            (s, text(&out))
        })
        .collect()
}

/// `llm-bench merge DIR… --out OUT EXTRA…` to the end.
pub fn merge_folders<P: AsRef<Path>>(dirs: &[P], out: &Path, extra: &[&str]) -> Output {
    let mut cmd = bin();
    cmd.arg("merge");
    cmd.args(dirs.iter().map(AsRef::as_ref))
        .arg("--out")
        .arg(out)
        .args(extra);
    cmd.output().expect("llm-bench runs")
}

/// Merges the shards' results folders into a new folder; fails unless the merge succeeds.
/// Returns the folder (kept alive) and the merged summary.
pub fn merged_of(shards: &[Scratch]) -> (Scratch, PathBuf, Value) {
    let out = Scratch::new();
    let dir = out.path("merged");
    let dirs: Vec<PathBuf> = shards.iter().map(|s| s.path("results")).collect();
    let done = merge_folders(&dirs, &dir, &[]);
    assert!(done.status.success(), "{:?}", text(&done));
    let summary = read_json(&dir.join("summary.json"));
    (out, dir, summary)
}
