//! `llm-bench compare`: the clap side of [`crate::compare::CompareSpec`].

use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args, Clone)]
pub struct CompareArgs {
    /// Results folders (summary.json and requests.jsonl) or summary.json files; the first is
    /// the baseline.
    #[arg(value_name = "RUN", num_args = 2.., required = true)]
    pub runs: Vec<PathBuf>,
    /// Name of a run in the output, in the order of the runs (repeatable; default: the
    /// results folder's name).
    #[arg(long = "label", value_name = "NAME")]
    pub label: Vec<String>,
    /// Folder for compare.html and compare.json.
    #[arg(long = "out", value_name = "DIR", default_value = ".")]
    pub out: PathBuf,
    /// Exit 1 when a figure crosses a threshold by more than noise, e.g.
    /// 'output_throughput_tps < -5%', 'ttft_p99_ms > +10%', 'capacity_rps < -3%' (a change
    /// against the first run) or 'ttft_p99_ms > 500' (a value). Repeatable.
    #[arg(long = "fail-if", value_name = "FIGURE OP VALUE", allow_hyphen_values = true)]
    pub fail_if: Vec<String>,
}

impl From<CompareArgs> for crate::compare::CompareSpec {
    fn from(args: CompareArgs) -> Self {
        Self {
            runs: args.runs,
            labels: args.label,
            out: args.out,
            fail_if: args.fail_if,
        }
    }
}
