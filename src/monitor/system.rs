//! The machine and this process: CPU (whole machine and this process), memory, and CPU
//! temperatures where the machine exposes them; with the load's in-flight count beside them.
//! CPU use is measured between two samples, so a step's boundaries get samples of their own.

use super::source::{RunClock, Source};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, OnceLock};
use std::time::Instant;
use sysinfo::{Components, System};

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

impl Sample {
    /// A sample with no figures (the machine could not be read).
    pub fn empty(t_s: f64) -> Self {
        Self {
            t_s,
            cpu_pct: None,
            process_cpu_pct: None,
            mem_used_mb: None,
            mem_total_mb: None,
            process_rss_mb: None,
            temp_c_max: None,
            in_flight: None,
        }
    }
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

/// Reads the load's in-flight count, once a run gives one.
pub(super) type InFlight = Arc<OnceLock<Box<dyn Fn() -> u64 + Send + Sync>>>;

/// The machine as a [`Source`].
pub struct SystemSource {
    system: Option<System>,
    components: Option<Components>,
    last_cpu_time: Option<(Instant, f64)>,
    pub(super) temperature_available: bool,
    pub(super) in_flight: InFlight,
}

impl SystemSource {
    pub fn new() -> Self {
        let mut system = System::new().ok();
        if let Some(s) = system.as_mut() {
            s.refresh_cpu_usage();
        }
        let components = Components::new_with_refreshed_list().ok();
        let temperature_available = components.as_ref().is_some_and(|c| {
            c.iter()
                .any(|c| c.temperature().is_some_and(|t| t.is_finite() && t > 0.0))
        });
        Self {
            system,
            components,
            last_cpu_time: super::process_cpu_seconds().map(|s| (Instant::now(), s)),
            temperature_available,
            in_flight: Arc::default(),
        }
    }

    /// The hottest CPU sensor (any sensor when none is named like a CPU's).
    fn temp_c_max(&mut self) -> Option<f32> {
        let components = self.components.as_mut()?;
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
    }
}

impl Default for SystemSource {
    fn default() -> Self {
        Self::new()
    }
}

impl Source for SystemSource {
    type Reading = Sample;

    fn name(&self) -> &'static str {
        "system"
    }

    fn read(&mut self, clock: RunClock) -> Result<(f64, Sample), String> {
        let now = Instant::now();
        let (cpu_pct, mem_used_mb, mem_total_mb) = match self.system.as_mut() {
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
        let temp_c_max = self.temp_c_max();
        let cpu_now = super::process_cpu_seconds();
        let process_cpu_pct = match (self.last_cpu_time, cpu_now) {
            (Some((then, before)), Some(after)) => {
                let wall = now.duration_since(then).as_secs_f64();
                (wall > 0.01).then(|| 100.0 * (after - before) / wall)
            }
            _ => None,
        };
        if let Some(after) = cpu_now {
            self.last_cpu_time = Some((now, after));
        }
        let t_s = clock.at_s(now);
        let sample = Sample {
            t_s,
            cpu_pct,
            process_cpu_pct,
            mem_used_mb,
            mem_total_mb,
            process_rss_mb: super::process_rss_mb(),
            temp_c_max,
            in_flight: self.in_flight.get().map(|count| count()),
        };
        Ok((t_s, sample))
    }
}

fn is_cpu_sensor(label: &str) -> bool {
    let l = label.to_ascii_lowercase();
    ["cpu", "core", "package", "tctl", "tdie", "k10temp", "coretemp", "soc"]
        .iter()
        .any(|k| l.contains(k))
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
