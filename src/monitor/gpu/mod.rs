//! GPU telemetry: local NVIDIA GPUs through NVML (loaded at run time), or a DCGM exporter's
//! Prometheus endpoint for remote ones (docs/telemetry.md, "GPU telemetry and energy").

pub mod dcgm;
pub mod nvml;
pub mod source;

use serde::{Deserialize, Serialize};

/// One reading of every GPU.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuReading {
    pub devices: Vec<GpuDevice>,
}

/// One GPU at one moment. `None`: the driver (or exporter) did not give that figure.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuDevice {
    pub index: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utilization_pct: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_used_mb: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_total_mb: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_w: Option<f64>,
    /// The driver's total energy counter since it was loaded, millijoules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_mj: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature_c: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sm_clock_mhz: Option<f64>,
    /// Active clock throttle (event) reasons by name ([`throttle_names`]); `None` when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle: Option<Vec<String>>,
}

/// NVML's clock throttle (since CUDA 12.2 "clocks event") reason bits, as NVML and DCGM's
/// `DCGM_FI_DEV_CLOCK_THROTTLE_REASONS` report them, by name.
pub const THROTTLE_BITS: [(u64, &str); 9] = [
    (0x1, "idle"),
    (0x2, "applications_clocks"),
    (0x4, "sw_power_cap"),
    (0x8, "hw_slowdown"),
    (0x10, "sync_boost"),
    (0x20, "sw_thermal"),
    (0x40, "hw_thermal"),
    (0x80, "hw_power_brake"),
    (0x100, "display_clocks"),
];

/// The names of the bits set in `mask`, in bit order; unknown bits are left out.
pub fn throttle_names(mask: u64) -> Vec<String> {
    THROTTLE_BITS
        .iter()
        .filter(|(bit, _)| mask & bit != 0)
        .map(|(_, name)| name.to_string())
        .collect()
}

/// Reasons that slow the GPU down because of power or heat (not idle, not a clock setting).
pub fn is_power_reason(name: &str) -> bool {
    matches!(name, "sw_power_cap" | "hw_power_brake")
}

/// Reasons that slow the GPU down because of heat.
pub fn is_thermal_reason(name: &str) -> bool {
    matches!(name, "sw_thermal" | "hw_thermal" | "hw_slowdown")
}
