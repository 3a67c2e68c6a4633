//! Local NVIDIA GPUs through NVML, loaded at run time. Written by a helper.
//!
//! nvml-wrapper dlopens libnvidia-ml.so.1 when [`NvmlReader::open`] runs and resolves each symbol
//! lazily (a missing one fails only the call that needs it), so the binary runs unchanged on a
//! machine without an NVIDIA driver. tests/gpu_nvml.rs drives this code against a fake NVML
//! (tests/fixtures/fake_nvml.c).

use super::{throttle_names, GpuDevice, GpuReading};
use nvml_wrapper::enum_wrappers::device::{Clock, TemperatureSensor};
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::{Device, Nvml};
use std::ffi::OsStr;

/// Environment variable: a path to a libnvidia-ml.so to load instead of the default search.
pub const LIB_ENV: &str = "LLM_BENCH_NVML_LIB";

/// What nvml-wrapper loads by default (through the dynamic linker's search).
const DEFAULT_LIB: &str = "libnvidia-ml.so.1";

const MIB: f64 = 1_048_576.0;

/// nvmlReturn_t's success (nvml-wrapper does not re-export the sys constants).
const NVML_SUCCESS: u32 = 0;

/// The static part of one GPU, read once in [`NvmlReader::open`].
#[derive(Debug)]
struct Static {
    index: u32,
    name: Option<String>,
    uuid: Option<String>,
}

/// An opened NVML and its devices. Reading is cheap; one instance lives on the GPU sampler thread.
pub struct NvmlReader {
    nvml: Nvml,
    devices: Vec<Static>,
}

impl std::fmt::Debug for NvmlReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NvmlReader").field("devices", &self.devices).finish()
    }
}

impl NvmlReader {
    /// Loads NVML: from `LLM_BENCH_NVML_LIB` (a path to a libnvidia-ml.so, for tests and unusual
    /// installs) if set, else the library's default search (libnvidia-ml.so.1). Err(one short
    /// line saying why) — the caller prints "GPU telemetry is not available: {why}". Never panics.
    pub fn open() -> Result<Self, String> {
        let custom = std::env::var_os(LIB_ENV).filter(|p| !p.is_empty());
        let lib = custom.as_deref().unwrap_or(OsStr::new(DEFAULT_LIB));
        let shown = lib.to_string_lossy();
        let nvml = Nvml::builder()
            .lib_path(lib)
            .init()
            .map_err(|e| one_line(&init_error(&e, &shown, custom.is_some())))?;
        // nvml-wrapper's Drop calls nvmlShutdown with an `expect`: a library without it would
        // panic when the reader is dropped. Leak that (odd, never NVIDIA's) library instead.
        if nvml.lib().nvmlShutdown.is_err() {
            std::mem::forget(nvml);
            return Err(one_line(&format!("{shown} is not NVML (no nvmlShutdown)")));
        }
        let count = nvml
            .device_count()
            .map_err(|e| one_line(&format!("NVML could not count the GPUs: {e}")))?;
        if count == 0 {
            return Err("NVML found no GPU".to_string());
        }
        let devices = (0..count)
            .map(|index| match nvml.device_by_index(index) {
                Ok(d) => Static {
                    index,
                    name: d.name().ok(),
                    uuid: d.uuid().ok(),
                },
                // Kept: a GPU that is lost now still shows as a row of Nones.
                Err(_) => Static {
                    index,
                    name: None,
                    uuid: None,
                },
            })
            .collect();
        Ok(Self { nvml, devices })
    }

    pub fn device_count(&self) -> usize {
        self.devices.len()
    }

    /// The GPUs' names ("GPU 1" where the driver gives none), for the header.
    pub fn names(&self) -> Vec<String> {
        self.devices
            .iter()
            .map(|d| d.name.clone().unwrap_or_else(|| format!("GPU {}", d.index)))
            .collect()
    }

    /// One reading of every GPU. A figure a device does not give (NotSupported or any other
    /// error) is `None`; Err only when NVML itself is gone (uninitialised, driver unloaded).
    pub fn read(&mut self) -> Result<GpuReading, String> {
        let mut devices = Vec::with_capacity(self.devices.len());
        for s in &self.devices {
            let mut g = GpuDevice {
                index: s.index,
                name: s.name.clone(),
                uuid: s.uuid.clone(),
                ..GpuDevice::default()
            };
            // Handles are looked up per reading (an array lookup in NVML) rather than kept:
            // `Device` borrows `Nvml`, and a raw handle would make the reader !Send.
            match self.nvml.device_by_index(s.index) {
                Ok(d) => fill(&mut g, &d),
                Err(e @ (NvmlError::Uninitialized | NvmlError::DriverNotLoaded)) => {
                    return Err(one_line(&format!("NVML is gone: {e}")));
                }
                Err(_) => {}
            }
            devices.push(g);
        }
        Ok(GpuReading { devices })
    }
}

/// The changing figures of one GPU; each is `None` when NVML does not give it.
fn fill(g: &mut GpuDevice, d: &Device<'_>) {
    g.utilization_pct = d.utilization_rates().ok().map(|u| f64::from(u.gpu));
    if let Ok(m) = d.memory_info() {
        g.memory_used_mb = Some(m.used as f64 / MIB);
        g.memory_total_mb = Some(m.total as f64 / MIB);
    }
    g.power_w = d.power_usage().ok().map(|mw| f64::from(mw) / 1000.0);
    g.energy_mj = d.total_energy_consumption().ok().map(|mj| mj as f64);
    g.temperature_c = d.temperature(TemperatureSensor::Gpu).ok().map(f64::from);
    g.sm_clock_mhz = d.clock_info(Clock::SM).ok().map(f64::from);
    g.throttle = throttle_bits(d).map(throttle_names);
}

/// The clock throttle reasons bitmask. NVML renamed the call "clocks event reasons" (CUDA 12.2)
/// and keeps the old name as a deprecated alias; nvml-wrapper 0.13 wraps only the old name, so
/// the new symbol is tried first (in case a future driver drops the alias), then the wrapper.
fn throttle_bits(d: &Device<'_>) -> Option<u64> {
    if let Ok(sym) = d.nvml().lib().nvmlDeviceGetCurrentClocksEventReasons.as_ref() {
        let mut bits: std::os::raw::c_ulonglong = 0;
        // SAFETY: `d` holds a handle NVML gave out and the NVML it came from is still
        // initialised (it borrows it); the function writes one u64 through the pointer.
        let rc = unsafe { sym(d.handle(), &mut bits) };
        return (rc == NVML_SUCCESS).then_some(bits);
    }
    d.current_throttle_reasons().ok().map(|r| r.bits())
}

/// Why init failed, in a line a user can act on.
fn init_error(e: &NvmlError, lib: &str, custom: bool) -> String {
    match e {
        NvmlError::LibloadingError(le) => {
            // dlerror's text starts with the path again: "<path>: cannot open shared object file".
            let text = le.to_string();
            let detail = text.strip_prefix(&format!("{lib}: ")).unwrap_or(&text);
            if custom {
                format!("cannot load {lib} ({LIB_ENV}): {detail}")
            } else if detail.contains("cannot open shared object file") {
                format!("no NVIDIA driver ({lib} not found)")
            } else {
                format!("cannot load {lib}: {detail}")
            }
        }
        NvmlError::FailedToLoadSymbol(s) => format!("{lib} is not NVML: {s}"),
        NvmlError::DriverNotLoaded => "the NVIDIA driver is not loaded".to_string(),
        NvmlError::NoPermission => "no permission to use NVML".to_string(),
        other => format!("NVML did not start: {other}"),
    }
}

/// Error text as one line: dlerror and NVML messages may hold newlines.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where distributions put the real libnvidia-ml.
    fn driver_installed() -> bool {
        [
            "/usr/lib/x86_64-linux-gnu",
            "/usr/lib64",
            "/usr/lib",
            "/usr/lib/aarch64-linux-gnu",
            "/usr/local/nvidia/lib64",
        ]
        .iter()
        .any(|dir| std::path::Path::new(dir).join(DEFAULT_LIB).exists())
    }

    #[test]
    fn open_without_a_driver_is_one_line_err() {
        let result = NvmlReader::open();
        if std::env::var_os(LIB_ENV).is_some() || driver_installed() {
            // A real (or chosen) NVML: any outcome is fine, as long as it did not panic.
            if let Ok(mut r) = result {
                assert!(r.device_count() > 0);
                assert!(r.read().is_ok());
            }
            return;
        }
        let why = result.expect_err("no libnvidia-ml here, yet NVML opened");
        eprintln!("open() said: {why}");
        assert!(!why.is_empty() && !why.contains('\n'), "{why:?}");
        assert!(why.contains("libnvidia-ml"), "{why:?}");
    }

    #[test]
    fn one_line_folds_newlines() {
        assert_eq!(one_line("a\nb  c\r\n"), "a b c");
    }
}
