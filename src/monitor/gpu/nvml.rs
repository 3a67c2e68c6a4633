//! Local NVIDIA GPUs through NVML, loaded at run time. Written by a helper.
