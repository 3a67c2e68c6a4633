//! Telemetry on the run's clock, beside the client's own records: the machine (CPU, memory,
//! temperature), the server's own `/metrics`, and the GPUs (NVML or a DCGM exporter).
//!
//! Each is a [`source::Source`] run by a [`source::Sampler`] on its own thread, every interval
//! and at window boundaries (a step's start and end, a stress interval's end), so even a short
//! step has samples at its edges. `window` turns samples into a window's figures; `lag` and
//! `health` watch the client itself: is llm-bench keeping up with what it measures?

pub mod gpu;
pub mod health;
pub mod lag;
pub mod prom;
pub mod server;
pub mod source;
pub mod system;
pub mod window;

use std::sync::Arc;
use std::time::{Duration, Instant};

pub use health::{ClientHealth, HealthInputs};
pub use lag::{LagProbe, LagStats};
pub use source::{RunClock, Sampler, Source};
pub use system::{summarize, Sample, SystemSource, SystemSummary};
pub use window::{GpuWindow, ServerWindow};

static PROCESS_START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

/// Marks the start of the program; called first thing in `main`, for start-up timing.
pub fn mark_process_start() {
    PROCESS_START.get_or_init(Instant::now);
}

/// Milliseconds since [`mark_process_start`] (or since the first call, if it was never marked).
pub fn ms_since_process_start() -> f64 {
    PROCESS_START.get_or_init(Instant::now).elapsed().as_secs_f64() * 1000.0
}

/// Peak resident memory of this process in MiB: the high-water mark of its own memory since it
/// started (`VmHWM` in /proc/self/status), else `ru_maxrss`. Not `ru_maxrss` first: Linux counts
/// in it the peak of the memory the process replaced when it started (its parent's, which a
/// spawned child shares until exec), so llm-bench started by a 2 GB orchestrator would report
/// 2 GB.
pub fn process_peak_rss_mb() -> Option<f64> {
    high_water_mb(&std::fs::read_to_string("/proc/self/status").unwrap_or_default()).or_else(max_rss_mb)
}

/// `VmHWM` of a /proc/PID/status text, in MiB.
fn high_water_mb(status: &str) -> Option<f64> {
    let line = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?;
    let kib: f64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    Some(kib / 1024.0)
}

fn max_rss_mb() -> Option<f64> {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    // Linux reports kilobytes.
    (rc == 0).then(|| usage.ru_maxrss as f64 / 1024.0)
}

/// CPU seconds (user + system) this process has used.
pub fn process_cpu_seconds() -> Option<f64> {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    (rc == 0).then(|| {
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        tv(usage.ru_utime) + tv(usage.ru_stime)
    })
}

/// Resident memory of this process in MiB (Linux; `None` elsewhere).
pub fn process_rss_mb() -> Option<f64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: f64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as f64;
    Some(pages * page / (1024.0 * 1024.0))
}

/// The run's telemetry: the machine always, the server's metrics and the GPUs when found.
pub struct Monitor {
    clock: RunClock,
    system: Arc<Sampler<SystemSource>>,
    temperature_available: bool,
    in_flight: system::InFlight,
    server: Option<Arc<Sampler<server::scrape::ServerSource>>>,
    gpu: Option<Arc<Sampler<gpu::source::GpuSource>>>,
    /// This process is one shard of a run: the server and GPUs serve the others too.
    shard: std::sync::atomic::AtomicBool,
}

impl Monitor {
    pub fn new(run_start: Instant) -> Arc<Self> {
        Self::with_sources(run_start, Duration::from_secs(10), None, None)
    }

    /// The machine sampled every `system_interval`; `server` and `gpu` sources, when given, on
    /// their own intervals.
    pub fn with_sources(
        run_start: Instant,
        system_interval: Duration,
        server: Option<(server::scrape::ServerSource, Duration)>,
        gpu: Option<(gpu::source::GpuSource, Duration)>,
    ) -> Arc<Self> {
        let clock = RunClock(run_start);
        let source = SystemSource::new();
        let temperature_available = source.temperature_available;
        let in_flight = source.in_flight.clone();
        Arc::new(Self {
            clock,
            system: Sampler::new(source, system_interval, clock),
            temperature_available,
            in_flight,
            server: server.map(|(s, every)| Sampler::new(s, every, clock)),
            gpu: gpu.map(|(s, every)| Sampler::new(s, every, clock)),
            shard: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Marks this process as one shard of a run (`--shard`).
    pub fn serving_a_shard(&self) {
        self.shard.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn is_shard(&self) -> bool {
        self.shard.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn clock(&self) -> RunClock {
        self.clock
    }

    /// Each later sample also records `count()`, the requests in flight (a relaxed read of the
    /// load's counter: the sampler never touches the load path).
    pub fn count_in_flight(&self, count: impl Fn() -> u64 + Send + Sync + 'static) {
        let _ = self.in_flight.set(Box::new(count));
    }

    pub fn temperature_available(&self) -> bool {
        self.temperature_available
    }

    /// Server and GPU samples are also written to `dir`'s `server_metrics.jsonl` and
    /// `gpu_metrics.jsonl`.
    pub fn write_to(&self, dir: &std::path::Path) -> std::io::Result<()> {
        if let Some(s) = &self.server {
            s.write_to(&dir.join("server_metrics.jsonl"))?;
        }
        if let Some(g) = &self.gpu {
            g.write_to(&dir.join("gpu_metrics.jsonl"))?;
        }
        Ok(())
    }

    /// Starts every sampler thread; they end when [`Monitor::stop`] is called.
    pub fn start(self: &Arc<Self>) {
        self.system.start();
        if let Some(s) = &self.server {
            s.start();
        }
        if let Some(g) = &self.gpu {
            g.start();
        }
    }

    pub fn stop(&self) {
        self.system.stop();
        if let Some(s) = &self.server {
            s.stop();
        }
        if let Some(g) = &self.gpu {
            g.stop();
        }
    }

    /// Writes buffered telemetry lines to their files.
    pub fn flush(&self) {
        if let Some(s) = &self.server {
            s.flush();
        }
        if let Some(g) = &self.gpu {
            g.flush();
        }
    }

    /// Takes a machine sample now and keeps it.
    pub fn sample(&self) -> Sample {
        match self.system.sample_now(true) {
            Some((_, sample)) => sample,
            None => Sample::empty(self.clock.now_s()),
        }
    }

    /// A window's boundary: a machine sample now, and a sample of the server and the GPUs asked
    /// for (not waited on: the load may be running). Returns the run-clock time.
    pub fn boundary(&self) -> f64 {
        let t_s = self.sample().t_s;
        if let Some(s) = &self.server {
            s.request();
        }
        if let Some(g) = &self.gpu {
            g.request();
        }
        t_s
    }

    /// [`Monitor::boundary`], then waits (at most a scrape's timeout) for the server and GPU
    /// samples: between steps, where nothing is being measured.
    pub async fn boundary_settled(&self) -> f64 {
        let t_s = self.sample().t_s;
        let server = self.server.as_ref().map(|s| (s.request(), s));
        let gpu = self.gpu.as_ref().map(|g| (g.request(), g));
        if let Some((ticket, s)) = server {
            s.wait(ticket, scrape_timeout(s.interval())).await;
        }
        if let Some((ticket, g)) = gpu {
            g.wait(ticket, scrape_timeout(g.interval())).await;
        }
        t_s
    }

    pub fn samples(&self) -> Vec<Sample> {
        self.system.samples().into_iter().map(|s| s.reading).collect()
    }

    /// Summary of the machine samples taken in `(from_s, to_s]`.
    pub fn summary(&self, from_s: f64, to_s: f64) -> SystemSummary {
        let samples = self.system.samples();
        summarize(
            samples
                .iter()
                .map(|s| &s.reading)
                .filter(|s| s.t_s > from_s && s.t_s <= to_s),
        )
    }

    /// The server's figures over `[from_s, to_s]`, when its metrics are scraped.
    pub fn server_window(&self, from_s: f64, to_s: f64) -> Option<ServerWindow> {
        let s = self.server.as_ref()?;
        window::server_window(&s.around(from_s, to_s), from_s, to_s)
    }

    /// The GPUs' figures over `[from_s, to_s]`, when they are read.
    pub fn gpu_window(&self, from_s: f64, to_s: f64) -> Option<GpuWindow> {
        let g = self.gpu.as_ref()?;
        let kind = g.kind();
        window::gpu_window(&g.around(from_s, to_s), from_s, to_s, kind)
    }

    /// What each source did over the run, for `summary.json`'s `monitor.sources`.
    pub fn sources(&self) -> Vec<window::SourceReport> {
        let mut out = vec![window::SourceReport::of(&self.system, None)];
        if let Some(s) = &self.server {
            out.push(window::SourceReport::of(s, Some(s.about().to_string())));
        }
        if let Some(g) = &self.gpu {
            out.push(window::SourceReport::of(g, Some(g.about().to_string())));
        }
        out
    }

    /// The server and GPU time series for the report (at most `max_points` each).
    pub fn timelines(&self, max_points: usize) -> window::Timelines {
        window::Timelines {
            server: self
                .server
                .as_ref()
                .map(|s| window::server_points(&s.samples(), max_points))
                .unwrap_or_default(),
            gpu: self
                .gpu
                .as_ref()
                .map(|g| window::gpu_points(&g.samples(), max_points))
                .unwrap_or_default(),
        }
    }
}

/// How long a boundary sample is waited for: the scrape's own timeout.
pub fn scrape_timeout(interval: Duration) -> Duration {
    interval.clamp(Duration::from_millis(500), Duration::from_secs(5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peak_is_the_processs_own_high_water_mark() {
        let status = "Name:\tllm-bench\nVmPeak:\t  900000 kB\nVmHWM:\t   10240 kB\nVmRSS:\t 9000 kB\n";
        assert_eq!(high_water_mb(status), Some(10.0));
        assert_eq!(high_water_mb("Name:\tx\n"), None);
        assert!(process_peak_rss_mb().is_some_and(|mb| mb > 0.0));
    }

    #[test]
    fn samples_have_cpu_and_memory() {
        let monitor = Monitor::new(Instant::now());
        std::thread::sleep(Duration::from_millis(250));
        let s = monitor.sample();
        assert!(s.mem_total_mb.unwrap() > 0.0);
        assert!(s.process_rss_mb.unwrap() > 0.0);
        assert!(s.process_cpu_pct.is_some());
        let summary = monitor.summary(-1.0, 1e9);
        assert_eq!(summary.samples, 1);
        let text = summary.describe();
        assert!(text.contains("CPU"), "{text}");
        if !monitor.temperature_available() {
            assert!(text.contains("temperature not available"), "{text}");
        }
    }
}

/// What to sample beside the load (validated; the clap side is `cli::telemetry`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct TelemetrySettings {
    /// "auto" (on when `{server root}/metrics` answers at pre-flight), "off", or the URL given.
    pub server_metrics: String,
    /// "auto" (NVML when the server is on this machine), "off", "nvml", or a DCGM exporter URL.
    pub gpu_metrics: String,
    #[serde(serialize_with = "secs")]
    pub interval: Duration,
    /// Where the server's metrics are read; `None` when off.
    #[serde(skip)]
    pub server_target: Option<server::scrape::MetricsTarget>,
    #[serde(skip)]
    pub dcgm_target: Option<server::scrape::MetricsTarget>,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            server_metrics: "off".into(),
            gpu_metrics: "off".into(),
            interval: Duration::from_secs(1),
            server_target: None,
            dcgm_target: None,
        }
    }
}

impl TelemetrySettings {
    /// The server's metrics were named on the command line (not found on its own).
    pub fn server_asked(&self) -> bool {
        !matches!(self.server_metrics.as_str(), "auto" | "off")
    }
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}
