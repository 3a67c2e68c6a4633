//! Local NVIDIA GPUs through NVML, loaded at run time. Written by a helper.
// STUB
pub struct NvmlReader;
impl NvmlReader {
    pub fn open() -> Result<Self, String> { Err("stub".into()) }
    pub fn device_count(&self) -> usize { 0 }
    pub fn names(&self) -> Vec<String> { vec![] }
    pub fn read(&mut self) -> Result<super::GpuReading, String> { Err("stub".into()) }
}
