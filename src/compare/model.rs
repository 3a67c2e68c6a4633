//! What a comparison found: the data the console table, `compare.json` and compare.html are
//! drawn from. Run 0 is the baseline; every other run is compared with it.

use serde::{Deserialize, Serialize};

/// One run given to `compare`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunLabel {
    /// `--label`, else the results folder's name.
    pub label: String,
    /// The folder or summary file given.
    pub path: String,
}

/// Better, worse, or a change the records cannot tell from noise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Better,
    Worse,
    WithinNoise,
    /// No records to judge from (a summary file alone, or too few requests).
    Unknown,
}

/// One figure of one matched step, in every run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FigureRow {
    /// The summary key, e.g. `output_throughput_tps`, `ttft_p99_ms`.
    pub figure: String,
    /// True when a higher value is better (throughput), false for latencies.
    pub higher_is_better: bool,
    /// The value in each run, in the order of [`Comparison::runs`]; `None` where a run lacks it.
    pub values: Vec<Option<f64>>,
    /// Change of each run against run 0, in percent (`None` for run 0 and where undefined).
    pub change_pct: Vec<Option<f64>>,
    /// Confidence interval of the change against run 0, in percent, where it was computed.
    pub change_ci_pct: Vec<Option<(f64, f64)>>,
    /// Verdict of each run against run 0 (`None` for run 0).
    pub verdicts: Vec<Option<Verdict>>,
    /// Run-level rows of one test (the knee of `output`); absent for step rows and capacity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<String>,
}

/// A step present in every run (same test, same load point).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepMatch {
    /// `input`, `output`, `multimodal`.
    pub test: String,
    /// The load point as the summary writes it (`{"kind": "concurrency", "value": 16}`).
    pub load: crate::load::LoadPoint,
    pub figures: Vec<FigureRow>,
    /// Measured requests read from each run's requests.jsonl for this step (repetitions
    /// pooled); `None` where a run has no records.
    #[serde(default)]
    pub requests: Vec<Option<u64>>,
}

/// A step of one run that is not in every run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UnmatchedStep {
    /// Index in [`Comparison::runs`].
    pub run: usize,
    pub test: String,
    pub load: crate::load::LoadPoint,
}

/// Everything `compare` found.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Comparison {
    pub runs: Vec<RunLabel>,
    pub matched: Vec<StepMatch>,
    /// Steps present in some runs only: "run B: output at concurrency 64".
    pub unmatched: Vec<String>,
    /// Run-level figures (capacity answer, knee) as rows with `test` "run".
    pub run_figures: Vec<FigureRow>,
    /// How noise was judged, in one sentence (method and confidence level).
    pub method: String,
    /// `--fail-if` breaches, one sentence each; empty when none.
    pub breaches: Vec<String>,
    /// The same steps as `unmatched`, as data.
    #[serde(default)]
    pub unmatched_steps: Vec<UnmatchedStep>,
    /// Confidence level of the intervals (0.95), bootstrap resamples per figure and run, and
    /// the base seed.
    #[serde(default)]
    pub confidence: f64,
    #[serde(default)]
    pub resamples: usize,
    #[serde(default)]
    pub seed: u64,
}
