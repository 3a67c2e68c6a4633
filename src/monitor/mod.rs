//! Machine and process figures on the run's clock: CPU (whole machine and this process),
//! memory, and CPU temperatures where the machine exposes them.
//!
//! Sampled by a plain thread every `--monitor-interval`, and on demand at step boundaries so
//! even a short step gets its own CPU figure (CPU use is measured between two samples).
//! `lag` and `health` watch the client itself: is llm-bench keeping up with what it measures?

pub mod gpu;
pub mod health;
pub mod lag;
pub mod prom;
pub mod server;

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use sysinfo::{Components, System};

pub use health::{ClientHealth, HealthInputs};
pub use lag::{LagProbe, LagStats};

/// One sample. CPU figures are averages since the previous sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Seconds after the run started.
    pub t_s: f64,
    /// Whole machine, percent of all cores.
    pub cpu_pct: Option<f32>,
    /// This process, percent of one core (200 = two cores busy).
    pub process_cpu_pct: Option<f64>,
    pub mem_used_mb: Option<f64>,
    pub mem_total_mb: Option<f64>,
    pub process_rss_mb: Option<f64>,
    /// Hottest CPU sensor, °C; `None` when the machine exposes none.
    pub temp_c_max: Option<f32>,
    /// Requests in flight at the sample (sent, not yet ended), when a load is counting them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_flight: Option<u64>,
}

/// A window of samples (a step, a report interval), summarised.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SystemSummary {
    pub samples: usize,
    pub cpu_pct_mean: Option<f64>,
    pub cpu_pct_max: Option<f64>,
    pub process_cpu_pct_mean: Option<f64>,
    pub process_rss_mb_max: Option<f64>,
    pub temp_c_max: Option<f64>,
}

impl SystemSummary {
    /// "CPU 45% (this process 30%), 61 °C" or "temperature not available".
    pub fn describe(&self) -> String {
        use crate::i18n::{tr, Msg};
        let cpu = match self.cpu_pct_mean {
            Some(c) => format!("CPU {c:.0}%"),
            None => tr(Msg::SystemCpuUnknown, &[]),
        };
        let own = self
            .process_cpu_pct_mean
            .map(|p| tr(Msg::SystemOwnCpu, &[("pct", &format!("{p:.0}"))]))
            .unwrap_or_default();
        let temp = match self.temp_c_max {
            Some(t) => tr(Msg::SystemTemp, &[("c", &format!("{t:.0}"))]),
            None => tr(Msg::SystemNoTemp, &[]),
        };
        // Punctuation, not a sentence: the full-width comma in Chinese.
        let comma = match crate::i18n::lang() {
            crate::i18n::Lang::Zh => "，",
            crate::i18n::Lang::En => ", ",
        };
        format!("{cpu}{own}{comma}{temp}")
    }
}

struct Probe {
    system: Option<System>,
    components: Option<Components>,
    last_cpu_time: Option<(Instant, f64)>,
}

pub struct Monitor {
    run_start: Instant,
    probe: Mutex<Probe>,
    samples: Mutex<Vec<Sample>>,
    stop: AtomicBool,
    temperature_available: bool,
    /// Reads the load's in-flight count, once a run gives one ([`Monitor::count_in_flight`]).
    in_flight: std::sync::OnceLock<Box<dyn Fn() -> u64 + Send + Sync>>,
}

static PROCESS_START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

/// Marks the start of the program; called first thing in `main`, for start-up timing.
pub fn mark_process_start() {
    PROCESS_START.get_or_init(Instant::now);
}

/// Milliseconds since [`mark_process_start`] (or since the first call, if it was never marked).
pub fn ms_since_process_start() -> f64 {
    PROCESS_START.get_or_init(Instant::now).elapsed().as_secs_f64() * 1000.0
}

/// Peak resident memory of this process in MiB (`ru_maxrss`).
pub fn process_peak_rss_mb() -> Option<f64> {
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

fn is_cpu_sensor(label: &str) -> bool {
    let l = label.to_ascii_lowercase();
    ["cpu", "core", "package", "tctl", "tdie", "k10temp", "coretemp", "soc"]
        .iter()
        .any(|k| l.contains(k))
}

impl Monitor {
    pub fn new(run_start: Instant) -> Arc<Self> {
        let mut system = System::new().ok();
        if let Some(s) = system.as_mut() {
            s.refresh_cpu_usage();
        }
        let components = Components::new_with_refreshed_list().ok();
        let temperature_available = components.as_ref().is_some_and(|c| {
            c.iter()
                .any(|c| c.temperature().is_some_and(|t| t.is_finite() && t > 0.0))
        });
        Arc::new(Self {
            run_start,
            probe: Mutex::new(Probe {
                system,
                components,
                last_cpu_time: process_cpu_seconds().map(|s| (Instant::now(), s)),
            }),
            samples: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            temperature_available,
            in_flight: std::sync::OnceLock::new(),
        })
    }

    /// Each later sample also records `count()`, the requests in flight (a relaxed read of the
    /// load's counter: the sampler never touches the load path).
    pub fn count_in_flight(&self, count: impl Fn() -> u64 + Send + Sync + 'static) {
        let _ = self.in_flight.set(Box::new(count));
    }

    pub fn temperature_available(&self) -> bool {
        self.temperature_available
    }

    /// Starts the periodic sampler thread; it ends when [`Monitor::stop`] is called.
    pub fn start(self: &Arc<Self>, interval: Duration) {
        let me = self.clone();
        std::thread::Builder::new()
            .name("llm-bench-monitor".into())
            .spawn(move || {
                let tick = Duration::from_millis(100).min(interval);
                let mut next = Instant::now() + interval;
                while !me.stop.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    if Instant::now() >= next {
                        me.sample();
                        next += interval;
                    }
                }
            })
            .ok();
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Takes a sample now and keeps it.
    pub fn sample(&self) -> Sample {
        // The lock is held only while reading counters; nothing awaits under it.
        let mut probe = self.probe.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let (cpu_pct, mem_used_mb, mem_total_mb) = match probe.system.as_mut() {
            Some(s) => {
                s.refresh_cpu_usage();
                s.refresh_memory();
                let mb = |b: u64| b as f64 / (1024.0 * 1024.0);
                (
                    Some(s.global_cpu_usage()),
                    Some(mb(s.used_memory())),
                    Some(mb(s.total_memory())),
                )
            }
            None => (None, None, None),
        };
        let temp_c_max = probe.components.as_mut().and_then(|components| {
            components.refresh(false);
            let temps: Vec<(bool, f32)> = components
                .iter()
                .filter_map(|c| {
                    c.temperature()
                        .filter(|t| t.is_finite() && *t > 0.0)
                        .map(|t| (is_cpu_sensor(c.label()), t))
                })
                .collect();
            let cpu_only: Vec<f32> = temps.iter().filter(|(cpu, _)| *cpu).map(|(_, t)| *t).collect();
            let pool = if cpu_only.is_empty() {
                temps.iter().map(|(_, t)| *t).collect()
            } else {
                cpu_only
            };
            pool.into_iter().reduce(f32::max)
        });
        let cpu_now = process_cpu_seconds();
        let process_cpu_pct = match (probe.last_cpu_time, cpu_now) {
            (Some((then, before)), Some(after)) => {
                let wall = now.duration_since(then).as_secs_f64();
                (wall > 0.01).then(|| 100.0 * (after - before) / wall)
            }
            _ => None,
        };
        if let Some(after) = cpu_now {
            probe.last_cpu_time = Some((now, after));
        }
        drop(probe);
        let sample = Sample {
            t_s: now.duration_since(self.run_start).as_secs_f64(),
            cpu_pct,
            process_cpu_pct,
            mem_used_mb,
            mem_total_mb,
            process_rss_mb: process_rss_mb(),
            temp_c_max,
            in_flight: self.in_flight.get().map(|count| count()),
        };
        self.samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(sample.clone());
        sample
    }

    pub fn samples(&self) -> Vec<Sample> {
        self.samples.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Summary of the samples taken in `(from_s, to_s]`.
    pub fn summary(&self, from_s: f64, to_s: f64) -> SystemSummary {
        let samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        summarize(samples.iter().filter(|s| s.t_s > from_s && s.t_s <= to_s))
    }
}

pub fn summarize<'a>(samples: impl Iterator<Item = &'a Sample>) -> SystemSummary {
    let samples: Vec<&Sample> = samples.collect();
    let mean = |values: Vec<f64>| (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64);
    let max = |values: Vec<f64>| values.into_iter().reduce(f64::max);
    SystemSummary {
        samples: samples.len(),
        cpu_pct_mean: mean(samples.iter().filter_map(|s| s.cpu_pct.map(f64::from)).collect()),
        cpu_pct_max: max(samples.iter().filter_map(|s| s.cpu_pct.map(f64::from)).collect()),
        process_cpu_pct_mean: mean(samples.iter().filter_map(|s| s.process_cpu_pct).collect()),
        process_rss_mb_max: max(samples.iter().filter_map(|s| s.process_rss_mb).collect()),
        temp_c_max: max(samples.iter().filter_map(|s| s.temp_c_max.map(f64::from)).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
