//! DCGM exporter families (`DCGM_FI_DEV_*`) to [`super::GpuReading`]: one device per `gpu`
//! label. Field names and units are dcgm-exporter's (etc/default-counters.csv) and DCGM's
//! (dcgm_fields.h); docs/telemetry.md, "DCGM fields", says where each was checked.

use super::{throttle_names, GpuDevice, GpuReading};
use crate::monitor::prom::{Parsed, Sample};
use std::collections::BTreeMap;

pub const GPU_UTIL: &str = "DCGM_FI_DEV_GPU_UTIL";
pub const FB_USED: &str = "DCGM_FI_DEV_FB_USED";
pub const FB_FREE: &str = "DCGM_FI_DEV_FB_FREE";
pub const FB_RESERVED: &str = "DCGM_FI_DEV_FB_RESERVED";
pub const FB_TOTAL: &str = "DCGM_FI_DEV_FB_TOTAL";
pub const POWER_USAGE: &str = "DCGM_FI_DEV_POWER_USAGE";
pub const TOTAL_ENERGY: &str = "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION";
pub const GPU_TEMP: &str = "DCGM_FI_DEV_GPU_TEMP";
pub const SM_CLOCK: &str = "DCGM_FI_DEV_SM_CLOCK";
/// DCGM 3.2+ name of field 112; the older name below is an alias of it.
pub const CLOCKS_EVENT_REASONS: &str = "DCGM_FI_DEV_CLOCKS_EVENT_REASONS";
pub const CLOCK_THROTTLE_REASONS: &str = "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS";

/// The device figure a field fills.
type Field = fn(&mut GpuDevice) -> &mut Option<f64>;

pub fn map(parsed: &Parsed) -> GpuReading {
    let mut devices: BTreeMap<u32, GpuDevice> = BTreeMap::new();
    let mut reserved: BTreeMap<u32, f64> = BTreeMap::new();
    let mut total: BTreeMap<u32, f64> = BTreeMap::new();
    let fields: [(&str, Field); 6] = [
        (GPU_UTIL, |d| &mut d.utilization_pct),
        (FB_USED, |d| &mut d.memory_used_mb),
        (POWER_USAGE, |d| &mut d.power_w),
        (TOTAL_ENERGY, |d| &mut d.energy_mj),
        (GPU_TEMP, |d| &mut d.temperature_c),
        (SM_CLOCK, |d| &mut d.sm_clock_mhz),
    ];
    for (name, field) in fields {
        for (gpu, s) in series(parsed, name) {
            let d = device(&mut devices, gpu, s);
            field(d).get_or_insert(s.value);
        }
    }
    for (gpu, s) in series(parsed, FB_RESERVED) {
        device(&mut devices, gpu, s);
        reserved.entry(gpu).or_insert(s.value);
    }
    for (gpu, s) in series(parsed, FB_TOTAL) {
        device(&mut devices, gpu, s);
        total.entry(gpu).or_insert(s.value);
    }
    let mut free: BTreeMap<u32, f64> = BTreeMap::new();
    for (gpu, s) in series(parsed, FB_FREE) {
        device(&mut devices, gpu, s);
        free.entry(gpu).or_insert(s.value);
    }
    for name in [CLOCKS_EVENT_REASONS, CLOCK_THROTTLE_REASONS] {
        for (gpu, s) in series(parsed, name) {
            let d = device(&mut devices, gpu, s);
            if d.throttle.is_none() && s.value >= 0.0 && s.value.is_finite() {
                d.throttle = Some(throttle_names(s.value as u64));
            }
        }
    }
    for (gpu, d) in devices.iter_mut() {
        // Used + free leaves out what the driver reserves (DCGM_FI_DEV_FB_RESERVED, in the
        // exporter's default set since 3.x); the driver's total includes it.
        d.memory_total_mb = total.get(gpu).copied().or_else(|| {
            let (used, free) = (d.memory_used_mb?, *free.get(gpu)?);
            Some(used + free + reserved.get(gpu).copied().unwrap_or(0.0))
        });
    }
    GpuReading {
        devices: devices.into_values().collect(),
    }
}

/// Each readable series of a field as (GPU index, sample): whole-GPU series first, then MIG
/// instance ones (`GPU_I_ID`), so a device's figure is the whole GPU's where both are given.
/// NaN values and series without a numeric `gpu` label are left out.
fn series<'a>(parsed: &'a Parsed, name: &str) -> Vec<(u32, &'a Sample)> {
    let Some(family) = parsed.family(name) else {
        return Vec::new();
    };
    let mut out: Vec<(u32, &Sample)> = family
        .samples
        .iter()
        .filter(|s| s.name == name && !s.value.is_nan())
        .filter_map(|s| Some((s.label("gpu")?.trim().parse::<u32>().ok()?, s)))
        .collect();
    // Stable: input order is kept within each group.
    out.sort_by_key(|(_, s)| s.label("GPU_I_ID").is_some());
    out
}

fn device<'a>(devices: &'a mut BTreeMap<u32, GpuDevice>, gpu: u32, s: &Sample) -> &'a mut GpuDevice {
    let d = devices.entry(gpu).or_insert_with(|| GpuDevice {
        index: gpu,
        ..GpuDevice::default()
    });
    let text = |key: &str| s.label(key).filter(|v| !v.is_empty()).map(str::to_string);
    if d.name.is_none() {
        d.name = text("modelName");
    }
    if d.uuid.is_none() {
        // `uuid` when the exporter runs with its old label names.
        d.uuid = text("UUID").or_else(|| text("uuid"));
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::prom::parse;

    /// Two H100s as dcgm-exporter 4.x writes them with its default counters (and the clock
    /// events field added), GPU 1 listed first to check the sort.
    const TWO_GPUS: &str = r#"# HELP DCGM_FI_DEV_SM_CLOCK SM clock frequency (in MHz).
# TYPE DCGM_FI_DEV_SM_CLOCK gauge
DCGM_FI_DEV_SM_CLOCK{gpu="1",UUID="GPU-bbbb",pci_bus_id="00000000:19:00.0",device="nvidia1",modelName="NVIDIA H100 80GB HBM3",Hostname="node-a"} 1980
DCGM_FI_DEV_SM_CLOCK{gpu="0",UUID="GPU-aaaa",pci_bus_id="00000000:18:00.0",device="nvidia0",modelName="NVIDIA H100 80GB HBM3",Hostname="node-a"} 1755
# HELP DCGM_FI_DEV_GPU_TEMP GPU temperature (in C).
# TYPE DCGM_FI_DEV_GPU_TEMP gauge
DCGM_FI_DEV_GPU_TEMP{gpu="1",UUID="GPU-bbbb",pci_bus_id="00000000:19:00.0",device="nvidia1",modelName="NVIDIA H100 80GB HBM3",Hostname="node-a"} 41
DCGM_FI_DEV_GPU_TEMP{gpu="0",UUID="GPU-aaaa",pci_bus_id="00000000:18:00.0",device="nvidia0",modelName="NVIDIA H100 80GB HBM3",Hostname="node-a"} 67
# HELP DCGM_FI_DEV_POWER_USAGE Power draw (in W).
# TYPE DCGM_FI_DEV_POWER_USAGE gauge
DCGM_FI_DEV_POWER_USAGE{gpu="1",UUID="GPU-bbbb",pci_bus_id="00000000:19:00.0",device="nvidia1",modelName="NVIDIA H100 80GB HBM3",Hostname="node-a"} 72.5
DCGM_FI_DEV_POWER_USAGE{gpu="0",UUID="GPU-aaaa",pci_bus_id="00000000:18:00.0",device="nvidia0",modelName="NVIDIA H100 80GB HBM3",Hostname="node-a"} 650.25
# HELP DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION Total energy consumption since boot (in mJ).
# TYPE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION counter
DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{gpu="1",UUID="GPU-bbbb",pci_bus_id="00000000:19:00.0",device="nvidia1",modelName="NVIDIA H100 80GB HBM3",Hostname="node-a"} 2000000
DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{gpu="0",UUID="GPU-aaaa",pci_bus_id="00000000:18:00.0",device="nvidia0",modelName="NVIDIA H100 80GB HBM3",Hostname="node-a"} 98765432
# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).
# TYPE DCGM_FI_DEV_GPU_UTIL gauge
DCGM_FI_DEV_GPU_UTIL{gpu="1",UUID="GPU-bbbb",pci_bus_id="00000000:19:00.0",device="nvidia1",modelName="NVIDIA H100 80GB HBM3",Hostname="node-a"} 0
DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-aaaa",pci_bus_id="00000000:18:00.0",device="nvidia0",modelName="NVIDIA H100 80GB HBM3",Hostname="node-a"} 97
# HELP DCGM_FI_DEV_FB_FREE Framebuffer memory free (in MiB).
# TYPE DCGM_FI_DEV_FB_FREE gauge
DCGM_FI_DEV_FB_FREE{gpu="1",UUID="GPU-bbbb",pci_bus_id="00000000:19:00.0",device="nvidia1",modelName="NVIDIA H100 80GB HBM3",Hostname="node-a"} 80000
DCGM_FI_DEV_FB_FREE{gpu="0",UUID="GPU-aaaa",pci_bus_id="00000000:18:00.0",device="nvidia0",modelName="NVIDIA H100 80GB HBM3",Hostname="node-a"} 1000
# HELP DCGM_FI_DEV_FB_USED Framebuffer memory used (in MiB).
# TYPE DCGM_FI_DEV_FB_USED gauge
DCGM_FI_DEV_FB_USED{gpu="1",UUID="GPU-bbbb",pci_bus_id="00000000:19:00.0",device="nvidia1",modelName="NVIDIA H100 80GB HBM3",Hostname="node-a"} 1
DCGM_FI_DEV_FB_USED{gpu="0",UUID="GPU-aaaa",pci_bus_id="00000000:18:00.0",device="nvidia0",modelName="NVIDIA H100 80GB HBM3",Hostname="node-a"} 79000
# HELP DCGM_FI_DEV_FB_RESERVED Framebuffer memory reserved (in MiB).
# TYPE DCGM_FI_DEV_FB_RESERVED gauge
DCGM_FI_DEV_FB_RESERVED{gpu="1",UUID="GPU-bbbb",pci_bus_id="00000000:19:00.0",device="nvidia1",modelName="NVIDIA H100 80GB HBM3",Hostname="node-a"} 558
DCGM_FI_DEV_FB_RESERVED{gpu="0",UUID="GPU-aaaa",pci_bus_id="00000000:18:00.0",device="nvidia0",modelName="NVIDIA H100 80GB HBM3",Hostname="node-a"} 559
# HELP DCGM_FI_DEV_CLOCKS_EVENT_REASONS Current clock event reasons (bitmask).
# TYPE DCGM_FI_DEV_CLOCKS_EVENT_REASONS gauge
DCGM_FI_DEV_CLOCKS_EVENT_REASONS{gpu="1",UUID="GPU-bbbb",pci_bus_id="00000000:19:00.0",device="nvidia1",modelName="NVIDIA H100 80GB HBM3",Hostname="node-a"} 1
DCGM_FI_DEV_CLOCKS_EVENT_REASONS{gpu="0",UUID="GPU-aaaa",pci_bus_id="00000000:18:00.0",device="nvidia0",modelName="NVIDIA H100 80GB HBM3",Hostname="node-a"} 36
"#;

    #[test]
    fn two_gpus_from_the_exporter() {
        let r = map(&parse(TWO_GPUS));
        assert_eq!(r.devices.len(), 2);
        let g0 = &r.devices[0];
        assert_eq!(g0.index, 0);
        assert_eq!(g0.name.as_deref(), Some("NVIDIA H100 80GB HBM3"));
        assert_eq!(g0.uuid.as_deref(), Some("GPU-aaaa"));
        assert_eq!(g0.utilization_pct, Some(97.0));
        assert_eq!(g0.memory_used_mb, Some(79000.0));
        assert_eq!(g0.memory_total_mb, Some(80559.0), "used + free + reserved");
        assert_eq!(g0.power_w, Some(650.25));
        assert_eq!(g0.energy_mj, Some(98765432.0));
        assert_eq!(g0.temperature_c, Some(67.0));
        assert_eq!(g0.sm_clock_mhz, Some(1755.0));
        // 36 = 0x4 | 0x20
        assert_eq!(
            g0.throttle,
            Some(vec!["sw_power_cap".to_string(), "sw_thermal".to_string()])
        );
        let g1 = &r.devices[1];
        assert_eq!(g1.index, 1);
        assert_eq!(g1.uuid.as_deref(), Some("GPU-bbbb"));
        assert_eq!(g1.utilization_pct, Some(0.0));
        assert_eq!(g1.memory_total_mb, Some(80559.0));
        assert_eq!(g1.throttle, Some(vec!["idle".to_string()]));
    }

    #[test]
    fn older_exporters_and_the_driver_total() {
        // Old label names (`uuid`), the pre-3.2 throttle field, FB_TOTAL given, no TYPE lines.
        let text = "DCGM_FI_DEV_FB_USED{gpu=\"0\",uuid=\"GPU-x\",modelName=\"Tesla T4\"} 100\n\
                    DCGM_FI_DEV_FB_FREE{gpu=\"0\",uuid=\"GPU-x\"} 15000\n\
                    DCGM_FI_DEV_FB_TOTAL{gpu=\"0\",uuid=\"GPU-x\"} 15360\n\
                    DCGM_FI_DEV_CLOCK_THROTTLE_REASONS{gpu=\"0\"} 0\n";
        let r = map(&parse(text));
        let d = &r.devices[0];
        assert_eq!(d.uuid.as_deref(), Some("GPU-x"));
        assert_eq!(d.name.as_deref(), Some("Tesla T4"));
        assert_eq!(d.memory_total_mb, Some(15360.0));
        assert_eq!(d.throttle, Some(vec![]));
        assert_eq!(d.power_w, None);
        // Without reserved or total: used + free.
        let text = "DCGM_FI_DEV_FB_USED{gpu=\"3\"} 10\nDCGM_FI_DEV_FB_FREE{gpu=\"3\"} 20\n";
        let r = map(&parse(text));
        assert_eq!(r.devices[0].index, 3);
        assert_eq!(r.devices[0].memory_total_mb, Some(30.0));
    }

    #[test]
    fn mig_nan_and_unlabelled_series() {
        let text = "DCGM_FI_DEV_GPU_UTIL{gpu=\"0\",GPU_I_ID=\"1\",GPU_I_PROFILE=\"1g.10gb\"} 10\n\
                    DCGM_FI_DEV_GPU_UTIL{gpu=\"0\"} 55\n\
                    DCGM_FI_DEV_GPU_TEMP{gpu=\"0\"} NaN\n\
                    DCGM_FI_DEV_POWER_USAGE 300\n\
                    DCGM_FI_DEV_POWER_USAGE{gpu=\"x\"} 300\n\
                    DCGM_FI_DEV_CLOCKS_EVENT_REASONS{gpu=\"0\"} -1\n";
        let r = map(&parse(text));
        assert_eq!(r.devices.len(), 1);
        let d = &r.devices[0];
        assert_eq!(d.utilization_pct, Some(55.0), "the whole GPU over a MIG instance");
        assert_eq!(d.temperature_c, None);
        assert_eq!(d.power_w, None);
        assert_eq!(d.throttle, None);
        assert_eq!(map(&parse("up 1\n")), GpuReading::default());
    }
}
