//! Records → figures: distributions, per-step statistics, scaling advice.

pub mod advice;
pub mod dist;
pub mod drift;
pub mod lengths;
pub mod pacing;
pub mod repeat;
pub mod slo;
pub mod step;
pub mod telemetry;
pub mod timeline;
pub mod workload;

pub use dist::{Dist, LatencyHistogram, Moments, Spread};
pub use step::{StepAccumulator, StepStats, Window};
