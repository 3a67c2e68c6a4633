//! The GPUs as a [`Source`]: NVML for local GPUs, a DCGM exporter's `/metrics` for remote ones.

use super::nvml::NvmlReader;
use super::GpuReading;
use crate::monitor::server::scrape::{scrape, MetricsTarget, ScrapeRuntime, Scraped};
use crate::monitor::source::{RunClock, Source};
use std::time::Duration;

pub enum GpuSource {
    Nvml(Box<NvmlReader>),
    Dcgm {
        target: Box<MetricsTarget>,
        timeout: Duration,
        runtime: ScrapeRuntime,
    },
}

impl GpuSource {
    pub fn dcgm(target: MetricsTarget, timeout: Duration) -> std::io::Result<Self> {
        let runtime = ScrapeRuntime::new()?;
        Ok(Self::Dcgm {
            target: Box::new(target),
            timeout,
            runtime,
        })
    }
}

impl Source for GpuSource {
    type Reading = GpuReading;

    fn name(&self) -> &'static str {
        "gpu"
    }

    fn kind(&self) -> &'static str {
        match self {
            GpuSource::Nvml(_) => "nvml",
            GpuSource::Dcgm { .. } => "dcgm",
        }
    }

    fn describe(&self) -> String {
        match self {
            GpuSource::Nvml(reader) => format!("NVML, {} GPU(s)", reader.device_count()),
            GpuSource::Dcgm { target, .. } => target.url(),
        }
    }

    fn read(&mut self, clock: RunClock) -> Result<(f64, GpuReading), String> {
        match self {
            GpuSource::Nvml(reader) => {
                let t_s = clock.now_s();
                reader.read().map(|r| (t_s, r))
            }
            GpuSource::Dcgm {
                target,
                timeout,
                runtime,
            } => {
                let sent = clock.now_s();
                let scraped = runtime
                    .block_on(scrape(target, *timeout))
                    .unwrap_or(Scraped::Unusable("stopped".into()));
                let t_s = (sent + clock.now_s()) / 2.0;
                match scraped {
                    Scraped::Unusable(why) => Err(why),
                    Scraped::Metrics(parsed) => {
                        let reading = super::dcgm::map(&parsed);
                        if reading.devices.is_empty() {
                            Err("no DCGM_FI_DEV_* series".into())
                        } else {
                            Ok((t_s, reading))
                        }
                    }
                }
            }
        }
    }

    fn line(&mut self, t_s: f64, reading: &GpuReading) -> Option<serde_json::Value> {
        Some(serde_json::json!({
            "t_s": t_s,
            "source": self.kind(),
            "devices": reading.devices,
        }))
    }
}
