//! What the user asked the prompts to be, validated: the input to building a prompt source.

use super::dataset::DatasetFormat;
use super::tokens::LengthDist;
use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;

/// How prompts are made.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PromptPlan {
    /// `--isl`: token-exact prompts (wins over `-pp`).
    pub isl: Option<LengthDist>,
    /// `--osl`: output lengths (wins over `-tg` and a dataset's lengths).
    pub osl: Option<LengthDist>,
    /// `--tokenizer`: a local tokenizer.json to check prompt words with.
    pub tokenizer: Option<PathBuf>,
    /// `--length-probe`: how the server's counting is learnt without a tokenizer file.
    pub length_probe: LengthProbe,
    /// `--prefix-groups G --prefix-tokens P`.
    pub prefix: Option<PrefixPlan>,
    pub dataset: Option<DatasetPlan>,
    pub sessions: Option<SessionPlan>,
    pub images: Option<SynthImages>,
    /// Seed of lengths, word choices, shuffles and images (`--seed`).
    pub seed: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LengthProbe {
    /// The server's `/tokenize` when it answers, else usage counts.
    #[default]
    Auto,
    Tokenize,
    Usage,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct PrefixPlan {
    pub groups: u32,
    pub tokens: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DatasetPlan {
    pub path: PathBuf,
    #[serde(serialize_with = "format_name")]
    pub format: Option<DatasetFormat>,
    pub min_isl: Option<u64>,
    pub max_isl: Option<u64>,
    /// `--num-prompts`: rows to use (sampled when `shuffle`, else the first ones).
    pub num_prompts: Option<u64>,
    pub shuffle: bool,
    /// `--trace-speed`: timestamps are divided by it when a trace is replayed.
    pub trace_speed: f64,
}

/// Multi-turn sessions: `turns` requests per conversation, `think` between them.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SessionPlan {
    pub turns: u32,
    #[serde(serialize_with = "secs")]
    pub think: Duration,
    /// Spread of the think time (normal, clipped at 0), `--think-time-std`.
    #[serde(serialize_with = "secs")]
    pub think_std: Duration,
}

/// `--image-size WxH --image-format F --images-per-request K`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SynthImages {
    pub width: u32,
    pub height: u32,
    pub format: &'static str,
    pub per_request: u32,
}

fn format_name<S: serde::Serializer>(f: &Option<DatasetFormat>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(f.map_or("auto", |f| f.name()))
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl PromptPlan {
    /// Prompts are token-exact: they need the words checked against the server's tokenizer.
    pub fn needs_token_text(&self) -> bool {
        self.isl.is_some() || self.prefix.is_some()
    }
}
