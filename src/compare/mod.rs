//! `llm-bench compare RUN_A RUN_B …`: matches the steps of several runs by test and load
//! point, judges each headline figure better, worse or within noise from the per-request
//! records, checks `--fail-if` thresholds, and writes compare.html.

pub mod model;
pub use model::{Comparison, FigureRow, RunLabel, StepMatch, Verdict};
