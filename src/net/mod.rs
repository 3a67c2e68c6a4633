//! Socket-level pieces shared by the client and the simulator.

pub mod arrival;

pub use arrival::{ArrivalClock, StampedTcp};
