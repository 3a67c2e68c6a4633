//! DCGM exporter families (`DCGM_FI_DEV_*`) to [`super::GpuReading`]. Written by a helper.
// STUB
pub fn map(_: &crate::monitor::prom::Parsed) -> super::GpuReading { Default::default() }
