//! GET /dcgm/metrics: a DCGM exporter's page for `--gpus` simulated GPUs, served with
//! `--gpu-power-w` (docs/simulator.md, "GPU telemetry"). Families, help texts and labels
//! follow NVIDIA's dcgm-exporter (etc/default-counters.csv); the values follow the engine.

use std::fmt::Write;
use std::time::Instant;

use super::config::SimConfig;
use super::metrics::{family, sample};

/// Framebuffer of each simulated GPU, MiB.
pub(crate) const FB_TOTAL_MIB: u64 = 80_000;
/// `DCGM_FI_DEV_SM_CLOCK`, MHz.
const SM_CLOCK_MHZ: u64 = 1980;
/// Idle temperature, and what a full batch adds, °C.
const TEMP_IDLE_C: f64 = 40.0;
const TEMP_BUSY_C: f64 = 40.0;

/// The simulated GPUs.
pub(crate) struct Gpus {
    power_w: f64,
    count: u32,
    throttle_mask: u64,
    /// Energy is counted from here, on a monotonic clock.
    started: Instant,
}

impl Gpus {
    /// `None` without `--gpu-power-w`: the route does not exist.
    pub fn new(config: &SimConfig, started: Instant) -> Option<Self> {
        Some(Self {
            power_w: config.gpu_power_w?,
            count: config.gpus.max(1),
            throttle_mask: config.gpu_throttle_mask,
            started,
        })
    }

    /// The page, with `busy` (share of the batch in use) and `kv_usage` (both 0 to 1). Every GPU
    /// reads the same, as under tensor parallelism.
    pub fn render(&self, busy: f64, kv_usage: f64) -> String {
        // Taken at the scrape: W × elapsed, in whole mJ like DCGM.
        let energy_mj = (self.power_w * 1000.0 * self.started.elapsed().as_secs_f64()) as u64;
        let fb_used = ((kv_usage.clamp(0.0, 1.0) * FB_TOTAL_MIB as f64).round() as u64).min(FB_TOTAL_MIB);
        let rows: [(&str, &str, &str, String); 8] = [
            (
                "DCGM_FI_DEV_SM_CLOCK",
                "gauge",
                "SM clock frequency (in MHz).",
                SM_CLOCK_MHZ.to_string(),
            ),
            (
                "DCGM_FI_DEV_GPU_TEMP",
                "gauge",
                "GPU temperature (in C).",
                ((TEMP_IDLE_C + TEMP_BUSY_C * busy).round() as u64).to_string(),
            ),
            (
                "DCGM_FI_DEV_POWER_USAGE",
                "gauge",
                "Power draw (in W).",
                self.power_w.to_string(),
            ),
            (
                "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
                "counter",
                "Total energy consumption since boot (in mJ).",
                energy_mj.to_string(),
            ),
            (
                "DCGM_FI_DEV_GPU_UTIL",
                "gauge",
                "GPU utilization (in %).",
                ((busy * 100.0).round() as u64).to_string(),
            ),
            (
                "DCGM_FI_DEV_FB_FREE",
                "gauge",
                "Framebuffer memory free (in MiB).",
                (FB_TOTAL_MIB - fb_used).to_string(),
            ),
            (
                "DCGM_FI_DEV_FB_USED",
                "gauge",
                "Framebuffer memory used (in MiB).",
                fb_used.to_string(),
            ),
            (
                "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS",
                "gauge",
                "Current clock throttle reasons (bitmask of DCGM_CLOCKS_THROTTLE_REASON_*).",
                self.throttle_mask.to_string(),
            ),
        ];
        let labels: Vec<String> = (0..self.count).map(gpu_labels).collect();
        let mut buf = String::with_capacity(512 * rows.len() * labels.len());
        for (name, kind, help, value) in rows {
            family(&mut buf, name, kind, help);
            for l in &labels {
                sample(&mut buf, name, l, &value);
            }
        }
        buf
    }
}

/// dcgm-exporter's labels of GPU `i`, in its order.
fn gpu_labels(i: u32) -> String {
    let mut l = String::with_capacity(160);
    let _ = write!(
        l,
        "gpu=\"{i}\",UUID=\"GPU-sim-0000-0000-0000-{i:012}\",pci_bus_id=\"00000000:{:02X}:00.0\",\
         device=\"nvidia{i}\",modelName=\"llm-bench-sim GPU\",Hostname=\"sim\"",
        i % 256
    );
    l
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_has_every_gpu_and_exact_power() {
        let config = SimConfig {
            gpu_power_w: Some(350.5),
            gpus: 2,
            gpu_throttle_mask: 4,
            ..SimConfig::default()
        };
        let started = Instant::now() - std::time::Duration::from_secs(2);
        let text = Gpus::new(&config, started).unwrap().render(0.5, 0.25);
        let line = |name: &str, gpu: u32| {
            text.lines()
                .find(|l| l.starts_with(&format!("{name}{{gpu=\"{gpu}\",")))
                .and_then(|l| l.rsplit(' ').next())
                .unwrap_or_else(|| panic!("{name} {gpu} in\n{text}"))
                .to_string()
        };
        assert_eq!(line("DCGM_FI_DEV_POWER_USAGE", 1), "350.5");
        let energy: u64 = line("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", 0).parse().unwrap();
        assert!((701_000..720_000).contains(&energy), "{energy}");
        assert_eq!(line("DCGM_FI_DEV_GPU_TEMP", 0), "60");
        assert_eq!(line("DCGM_FI_DEV_GPU_UTIL", 1), "50");
        assert_eq!(line("DCGM_FI_DEV_FB_USED", 0), "20000");
        assert_eq!(line("DCGM_FI_DEV_FB_FREE", 0), "60000");
        assert_eq!(line("DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", 1), "4");
        assert!(text.contains("# TYPE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION counter\n"));
        assert!(text.contains(r#"device="nvidia1",modelName="llm-bench-sim GPU",Hostname="sim"} "#));
        assert!(Gpus::new(&SimConfig::default(), started).is_none());
    }
}
