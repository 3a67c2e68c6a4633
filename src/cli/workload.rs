//! The workload flags (`--isl`, `--dataset`, `--prefix-groups`, `--turns`, `--image-size`, …)
//! and their validation into a [`PromptPlan`].

use super::config::UsageError;
use super::parse;
use crate::i18n::{tr, Msg};
use crate::workload::dataset::DatasetFormat;
use crate::workload::plan::{DatasetPlan, LengthProbe, PrefixPlan, PromptPlan, SessionPlan, SynthImages};
use crate::workload::tokens::LengthDist;
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Args, Clone, Default)]
pub struct WorkloadArgs {
    /// Prompt length in tokens as the server counts them (usage.prompt_tokens, chat template
    /// included); wins over -pp.
    #[arg(long = "isl", value_name = "TOKENS", value_parser = parse::requests)]
    pub isl: Option<u64>,
    /// Spread of --isl: lengths from a normal distribution with this standard deviation.
    #[arg(long = "isl-std", value_name = "TOKENS", value_parser = parse::non_negative_f64)]
    pub isl_std: Option<f64>,
    /// Shortest prompt with --isl-std (default 1).
    #[arg(long = "isl-min", value_name = "TOKENS", value_parser = parse::requests)]
    pub isl_min: Option<u64>,
    /// Longest prompt with --isl-std (default: unbounded).
    #[arg(long = "isl-max", value_name = "TOKENS", value_parser = parse::requests)]
    pub isl_max: Option<u64>,
    /// Output length in tokens (max_tokens; add --ignore-eos for exactly this many); wins over -tg.
    #[arg(long = "osl", value_name = "TOKENS", value_parser = parse::requests)]
    pub osl: Option<u64>,
    #[arg(long = "osl-std", value_name = "TOKENS", value_parser = parse::non_negative_f64)]
    pub osl_std: Option<f64>,
    #[arg(long = "osl-min", value_name = "TOKENS", value_parser = parse::requests)]
    pub osl_min: Option<u64>,
    #[arg(long = "osl-max", value_name = "TOKENS", value_parser = parse::requests)]
    pub osl_max: Option<u64>,
    /// A local Hugging Face tokenizer.json to check prompt words with (never downloaded).
    #[arg(long = "tokenizer", value_name = "FILE")]
    pub tokenizer: Option<PathBuf>,
    /// How to learn how the server counts tokens when no --tokenizer is given: auto (its
    /// /tokenize endpoint when it has one, else usage counts of probe requests), tokenize, usage.
    #[arg(long = "length-probe", value_name = "HOW", default_value = "auto")]
    pub length_probe: String,
    /// Requests spread over G shared prefixes (a system prompt each) of --prefix-tokens tokens.
    #[arg(long = "prefix-groups", value_name = "G", value_parser = parse::count, requires = "prefix_tokens")]
    pub prefix_groups: Option<u32>,
    #[arg(long = "prefix-tokens", value_name = "P", value_parser = parse::requests, requires = "prefix_groups")]
    pub prefix_tokens: Option<u64>,
    /// Prompts from a file: ShareGPT JSON, JSONL (prompt/text/messages rows) or a Mooncake trace.
    #[arg(long = "dataset", value_name = "PATH")]
    pub dataset: Option<PathBuf>,
    /// sharegpt, jsonl or mooncake (detected from the content when omitted).
    #[arg(long = "dataset-format", value_name = "FORMAT", requires = "dataset")]
    pub dataset_format: Option<String>,
    /// Skip dataset prompts shorter than this (estimated tokens).
    #[arg(long = "dataset-min-isl", value_name = "TOKENS", value_parser = parse::requests, requires = "dataset")]
    pub dataset_min_isl: Option<u64>,
    #[arg(long = "dataset-max-isl", value_name = "TOKENS", value_parser = parse::requests, requires = "dataset")]
    pub dataset_max_isl: Option<u64>,
    /// Use N dataset rows (the first N, or N sampled with --shuffle); the run cycles through them.
    #[arg(long = "num-prompts", value_name = "N", value_parser = parse::requests, requires = "dataset")]
    pub num_prompts: Option<u64>,
    /// Send dataset rows in a seeded random order (--seed).
    #[arg(long = "shuffle", requires = "dataset")]
    pub shuffle: bool,
    /// Replay a trace this many times faster than recorded.
    #[arg(long = "trace-speed", value_name = "X", default_value = "1", value_parser = parse::positive_f64)]
    pub trace_speed: f64,
    /// Multi-turn sessions: each conversation sends T turns, its whole history each time.
    #[arg(long = "turns", value_name = "T", value_parser = parse::count)]
    pub turns: Option<u32>,
    /// Pause between a session's answer and its next turn.
    #[arg(long = "think-time", value_name = "TIME", default_value = "0s", value_parser = parse::duration_or_zero)]
    pub think_time: Duration,
    /// Spread of --think-time (normal, clipped at 0).
    #[arg(long = "think-time-std", value_name = "TIME", default_value = "0s", value_parser = parse::duration_or_zero)]
    pub think_time_std: Duration,
    /// Generate the multimodal test's images (WIDTHxHEIGHT), different for every request.
    #[arg(long = "image-size", value_name = "WxH")]
    pub image_size: Option<String>,
    /// png or jpeg, with --image-size.
    #[arg(long = "image-format", value_name = "FORMAT", default_value = "png")]
    pub image_format: String,
    /// Images in each multimodal request, with --image-size.
    #[arg(long = "images-per-request", value_name = "K", default_value = "1", value_parser = parse::count)]
    pub images_per_request: u32,
}

fn usage(message: impl Into<String>) -> UsageError {
    UsageError(message.into())
}

/// A length flag and its spread as a distribution.
/// The longest prompt or output llm-bench builds or asks for, in tokens.
const MAX_TOKENS: u64 = 10_000_000;

fn length(
    name: &str,
    n: Option<u64>,
    std: Option<f64>,
    min: Option<u64>,
    max: Option<u64>,
) -> Result<Option<LengthDist>, UsageError> {
    for v in [n, min, max].into_iter().flatten() {
        if v > MAX_TOKENS {
            return Err(usage(tr(
                Msg::LengthBeyondMax,
                &[("name", &name), ("v", &v), ("max", &MAX_TOKENS)],
            )));
        }
    }
    let Some(mean) = n else {
        if std.is_some() || min.is_some() || max.is_some() {
            return Err(usage(tr(Msg::LengthSpreadNeedsMean, &[("name", &name)])));
        }
        return Ok(None);
    };
    let std = std.unwrap_or(0.0);
    let (min, max) = match std > 0.0 {
        true => (min.unwrap_or(1), max.unwrap_or(u64::MAX)),
        false => (min.unwrap_or(mean), max.unwrap_or(mean)),
    };
    if min > max {
        return Err(usage(match (std > 0.0, max == mean) {
            (false, true) => tr(
                Msg::LengthMinAboveMean,
                &[("name", &name), ("min", &min), ("mean", &mean)],
            ),
            _ => tr(Msg::LengthMinAboveMax, &[("name", &name), ("min", &min), ("max", &max)]),
        }));
    }
    if std == 0.0 && !(min..=max).contains(&mean) {
        return Err(usage(tr(Msg::LengthOutside, &[("name", &name), ("mean", &mean)])));
    }
    Ok(Some(LengthDist { mean, std, min, max }))
}

impl WorkloadArgs {
    pub fn plan(&self, seed: u64) -> Result<PromptPlan, UsageError> {
        let isl = length("isl", self.isl, self.isl_std, self.isl_min, self.isl_max)?;
        let osl = length("osl", self.osl, self.osl_std, self.osl_min, self.osl_max)?;
        let prefix = match (self.prefix_groups, self.prefix_tokens) {
            (Some(groups), Some(tokens)) if u64::from(groups).saturating_mul(tokens) > 5 * MAX_TOKENS => {
                return Err(usage(tr(
                    Msg::PrefixBeyondMax,
                    &[("groups", &groups), ("tokens", &tokens), ("max", &(5 * MAX_TOKENS))],
                )))
            }
            (Some(groups), Some(tokens)) => Some(PrefixPlan { groups, tokens }),
            _ => None,
        };
        if prefix.is_some() && isl.is_none() {
            return Err(usage(tr(Msg::PrefixNeedsIsl, &[])));
        }
        if self.tokenizer.is_some() && isl.is_none() && self.dataset.is_none() {
            return Err(usage(tr(Msg::TokenizerNeedsIsl, &[])));
        }
        if self.trace_speed != 1.0 && self.dataset.is_none() {
            return Err(usage(tr(Msg::TraceSpeedNeedsDataset, &[])));
        }
        let dataset = match &self.dataset {
            Some(path) => {
                if isl.is_some() || prefix.is_some() {
                    return Err(usage(tr(Msg::DatasetExcludesIsl, &[])));
                }
                let format = match &self.dataset_format {
                    Some(name) => {
                        Some(DatasetFormat::parse(name).map_err(|e| usage(format!("--dataset-format: {e}")))?)
                    }
                    None => None,
                };
                if let (Some(lo), Some(hi)) = (self.dataset_min_isl, self.dataset_max_isl) {
                    if lo > hi {
                        return Err(usage(tr(Msg::DatasetIslRange, &[("lo", &lo), ("hi", &hi)])));
                    }
                }
                Some(DatasetPlan {
                    path: path.clone(),
                    format,
                    min_isl: self.dataset_min_isl,
                    max_isl: self.dataset_max_isl,
                    num_prompts: self.num_prompts,
                    shuffle: self.shuffle,
                    trace_speed: self.trace_speed,
                })
            }
            None => None,
        };
        let sessions = match self.turns {
            Some(turns) => Some(SessionPlan {
                turns,
                think: self.think_time,
                think_std: self.think_time_std,
            }),
            None if !self.think_time.is_zero() || !self.think_time_std.is_zero() => {
                return Err(usage(tr(Msg::ThinkTimeNeedsTurns, &[])))
            }
            None => None,
        };
        let images = match &self.image_size {
            Some(size) => {
                let (width, height) = crate::workload::synth_image::parse_image_size(size)
                    .map_err(|e| usage(format!("--image-size: {e}")))?;
                let format = match self.image_format.to_ascii_lowercase().as_str() {
                    "png" => "png",
                    "jpeg" | "jpg" => "jpeg",
                    other => return Err(usage(tr(Msg::UnknownImageFormat, &[("other", &other)]))),
                };
                Some(SynthImages {
                    width,
                    height,
                    format,
                    per_request: self.images_per_request,
                })
            }
            None if self.images_per_request != 1 => return Err(usage(tr(Msg::ImagesNeedSize, &[]))),
            None => None,
        };
        let length_probe = match self.length_probe.to_ascii_lowercase().as_str() {
            "auto" => LengthProbe::Auto,
            "tokenize" => LengthProbe::Tokenize,
            "usage" => LengthProbe::Usage,
            other => return Err(usage(tr(Msg::UnknownLengthProbe, &[("other", &other)]))),
        };
        Ok(PromptPlan {
            length_probe,
            isl,
            osl,
            tokenizer: self.tokenizer.clone(),
            prefix,
            dataset,
            sessions,
            images,
            seed,
        })
    }
}
