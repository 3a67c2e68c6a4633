//! DCGM exporter families (`DCGM_FI_DEV_*`) to [`super::GpuReading`]. Written by a helper.
