//! Engine families to common names. Written by a helper.
// STUB
pub fn map(_: &crate::monitor::prom::Parsed) -> super::ServerReading { Default::default() }
pub fn window_percentile(_: Option<&super::Histogram>, _: &super::Histogram, _: f64) -> Option<f64> { None }
