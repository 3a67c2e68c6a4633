//! Flags of a distributed run: which shard this process is, the run it belongs to, and the
//! wall-clock time every shard starts at (docs/distributed.md).

#[derive(clap::Args, Debug, Clone, Default)]
pub struct DistributedArgs {
    /// Run shard I of N (0-based) of a distributed run: its share of every step's connections
    /// or rate, and its rows of a dataset or trace.
    #[arg(long = "shard", value_name = "I/N")]
    pub shard: Option<String>,
    /// The number of shards, with the index from JOB_COMPLETION_INDEX (a Kubernetes Indexed Job).
    #[arg(long = "shards", value_name = "N")]
    pub shards: Option<u32>,
    /// Names the run; every shard of one run must be given the same (default: from the seed and
    /// the start time).
    #[arg(long = "run-id", value_name = "ID")]
    pub run_id: Option<String>,
    /// Wall-clock start of the first step (RFC 3339, e.g. 2026-12-01T12:00:00Z): every shard
    /// prepares, then starts each step at a time derived from it and the step schedule.
    #[arg(long = "start-at", value_name = "TIME")]
    pub start_at: Option<String>,
    /// With --start-at: time kept after each timed step's planned end for its drain, before the
    /// next step's scheduled start.
    #[arg(long = "step-gap", value_name = "TIME", default_value = "5s", value_parser = super::parse::duration_or_zero)]
    pub step_gap: std::time::Duration,
}

/// The validated distributed settings.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Distributed {
    pub run_id: String,
    pub shard: Option<crate::load::Shard>,
    /// RFC 3339 as given, when --start-at was.
    pub start_at: Option<String>,
    #[serde(skip)]
    pub start_at_time: Option<std::time::SystemTime>,
    #[serde(serialize_with = "secs")]
    pub step_gap: std::time::Duration,
}

fn secs<S: serde::Serializer>(d: &std::time::Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// The environment variable a Kubernetes Indexed Job sets to each pod's index.
pub const INDEX_ENV: &str = "JOB_COMPLETION_INDEX";

pub fn settings(args: &DistributedArgs, seed: u64) -> Result<Distributed, super::config::UsageError> {
    use crate::i18n::{tr, Msg};
    let usage = |m: String| super::config::UsageError(m);
    let shard = match (&args.shard, args.shards) {
        (Some(text), _) => {
            Some(crate::load::Shard::parse(text).map_err(|e| usage(tr(Msg::ShardInvalid, &[("error", &e)])))?)
        }
        (None, Some(count)) => {
            let index =
                std::env::var(INDEX_ENV).map_err(|_| usage(tr(Msg::ShardsNeedIndex, &[("env", &INDEX_ENV)])))?;
            let index: u32 = index.trim().parse().map_err(|_| {
                usage(tr(
                    Msg::ShardIndexNotNumber,
                    &[("env", &INDEX_ENV), ("value", &index.trim())],
                ))
            })?;
            Some(crate::load::Shard::new(index, count).map_err(|e| usage(tr(Msg::ShardInvalid, &[("error", &e)])))?)
        }
        (None, None) => None,
    };
    let start_at_time = args
        .start_at
        .as_deref()
        .map(|t| humantime::parse_rfc3339_weak(t.trim()).map_err(|_| usage(tr(Msg::StartAtInvalid, &[("value", &t)]))))
        .transpose()?;
    let run_id = match &args.run_id {
        Some(id) => {
            let ok = !id.is_empty()
                && id.len() <= 63
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !ok {
                return Err(usage(tr(Msg::RunIdInvalid, &[("value", &id)])));
            }
            id.clone()
        }
        None => {
            // The same on every shard when they share a seed and a start time.
            let at = start_at_time.unwrap_or_else(std::time::SystemTime::now);
            let secs = at.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
            format!("{seed:x}-{secs}")
        }
    };
    Ok(Distributed {
        run_id,
        shard,
        start_at: args.start_at.clone(),
        start_at_time,
        step_gap: args.step_gap,
    })
}
