//! The checks before a merge: every folder a shard of one run, each shard once, the same
//! configuration and steps; each problem one line (exit 2).

use super::super::rebuild::StepKey;
use super::stress::ShardIntervals;
use crate::cli::config::UsageError;
use crate::i18n::{tr, Msg};
use crate::report::summary::{MonitorReport, Summary};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// One shard's folder and summary (without its monitor's series, and its stress intervals
/// cut down to [`ShardIntervals`]: 64 shards of a long run must not hold every interval's
/// figures at once).
pub(super) struct ShardInput {
    pub(super) dir: PathBuf,
    pub(super) summary: Summary,
    pub(super) run_id: String,
    pub(super) index: u32,
    pub(super) count: u32,
    pub(super) start_unix_s: f64,
    /// A stress run's intervals: windows and client health.
    pub(super) intervals: Option<ShardIntervals>,
}

pub(super) fn read_shard(dir: &Path) -> Result<ShardInput, UsageError> {
    let path = dir.join("summary.json");
    if !path.is_file() {
        return Err(UsageError(tr(Msg::MergeNoSummary, &[("dir", &dir.display())])));
    }
    if !dir.join("requests.jsonl").is_file() {
        return Err(UsageError(tr(Msg::MergeNoRecords, &[("dir", &dir.display())])));
    }
    let unreadable =
        |e: &dyn std::fmt::Display| UsageError(tr(Msg::MergeUnreadable, &[("dir", &dir.display()), ("error", e)]));
    let bytes = std::fs::read(&path).map_err(|e| unreadable(&e))?;
    let mut summary: Summary = serde_json::from_slice(&bytes).map_err(|e| unreadable(&e))?;
    drop(bytes);
    let intervals = summary.stress.take().map(|report| ShardIntervals::of(&report));
    summary.monitor = MonitorReport::default();
    let (Some(run_id), Some(shard)) = (summary.run_id.clone(), summary.shard) else {
        return Err(UsageError(tr(Msg::MergeNotShard, &[("dir", &dir.display())])));
    };
    Ok(ShardInput {
        dir: dir.to_path_buf(),
        start_unix_s: summary.run_start_unix_s.unwrap_or(0.0),
        summary,
        run_id,
        index: shard.index,
        count: shard.count,
        intervals,
    })
}

/// The consistency checks, each problem one line; the missing shards' indexes (allowed only
/// with `--allow-partial`).
pub(super) fn check_shards(shards: &[ShardInput], allow_partial: bool) -> Result<Vec<u32>, UsageError> {
    let first = &shards[0];
    let fd = first.dir.display();
    for (i, s) in shards.iter().enumerate() {
        let dir = s.dir.display();
        if s.run_id != first.run_id {
            let args: [(&str, &dyn std::fmt::Display); 4] = [
                ("dir", &dir),
                ("id", &s.run_id),
                ("first_dir", &fd),
                ("first", &first.run_id),
            ];
            return Err(UsageError(tr(Msg::MergeRunId, &args)));
        }
        if s.count != first.count {
            let args: [(&str, &dyn std::fmt::Display); 4] = [
                ("dir", &dir),
                ("count", &s.count),
                ("first_dir", &fd),
                ("first", &first.count),
            ];
            return Err(UsageError(tr(Msg::MergeShardCount, &args)));
        }
        if i > 0 && shards[i - 1].index == s.index {
            let args: [(&str, &dyn std::fmt::Display); 3] = [
                ("index", &s.index),
                ("first_dir", &shards[i - 1].dir.display()),
                ("dir", &dir),
            ];
            return Err(UsageError(tr(Msg::MergeShardTwice, &args)));
        }
        if let Some(key) = first_difference(&comparable(&first.summary.config), &comparable(&s.summary.config), "") {
            let args: [(&str, &dyn std::fmt::Display); 3] = [("dir", &dir), ("first_dir", &fd), ("key", &key)];
            return Err(UsageError(tr(Msg::MergeConfigDiffers, &args)));
        }
        check_steps(first, s)?;
    }
    let have: BTreeSet<u32> = shards.iter().map(|s| s.index).collect();
    let missing: Vec<u32> = (0..first.count).filter(|i| !have.contains(i)).collect();
    if !missing.is_empty() && !allow_partial {
        let have = have.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
        let args: [(&str, &dyn std::fmt::Display); 4] = [
            ("missing", &join(&missing)),
            ("count", &first.count),
            ("run_id", &first.run_id),
            ("have", &have),
        ];
        return Err(UsageError(tr(Msg::MergeShardMissing, &args)));
    }
    Ok(missing)
}

pub(super) fn join(indexes: &[u32]) -> String {
    indexes.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
}

/// The steps (test, load point, repetition, in order) are the same in both.
fn check_steps(first: &ShardInput, other: &ShardInput) -> Result<(), UsageError> {
    let keys =
        |s: &ShardInput| -> Vec<StepKey> { s.summary.steps.iter().map(|s| (s.load, s.test, s.repeat)).collect() };
    let (ours, theirs) = (keys(first), keys(other));
    let label = |k: Option<&StepKey>| match k {
        Some((load, test, Some(r))) => tr(Msg::MergeStepRepeat, &[("test", &test), ("load", &load), ("r", &r)]),
        Some((load, test, None)) => tr(Msg::MergeStep, &[("test", &test), ("load", &load)]),
        None => tr(Msg::MergeNoStep, &[]),
    };
    let n = (0..ours.len().max(theirs.len())).find(|&i| ours.get(i) != theirs.get(i));
    match n {
        None => Ok(()),
        Some(i) => {
            let args: [(&str, &dyn std::fmt::Display); 5] = [
                ("dir", &other.dir.display()),
                ("first_dir", &first.dir.display()),
                ("n", &(i + 1)),
                ("theirs", &label(theirs.get(i))),
                ("ours", &label(ours.get(i))),
            ];
            Err(UsageError(tr(Msg::MergeStepsDiffer, &args)))
        }
    }
}

/// The configuration without what differs between shards by design.
pub(super) fn comparable(config: &Value) -> Value {
    let mut c = config.clone();
    if let Some(map) = c.as_object_mut() {
        for key in ["out_dir", "log_file", "lang"] {
            map.remove(key);
        }
        for (outer, inner) in [("distributed", "shard"), ("load", "shard")] {
            if let Some(m) = map.get_mut(outer).and_then(Value::as_object_mut) {
                m.remove(inner);
            }
        }
    }
    c
}

/// The first key (dotted, in key order) whose values differ.
pub(super) fn first_difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    let here = || {
        if path.is_empty() {
            "config".to_string()
        } else {
            path.to_string()
        }
    };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match (x.get(k), y.get(k)) {
                    (Some(u), Some(v)) => first_difference(u, v, &p),
                    _ => Some(p),
                }
            })
        }
        _ if a == b => None,
        _ => Some(here()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shard_fields_do_not_count_as_differences() {
        let a = json!({"out_dir": "a", "lang": "en", "load": {"shard": {"index": 0}, "rate": 1}, "distributed": {"shard": 0, "run_id": "r"}});
        let b = json!({"out_dir": "b", "load": {"shard": {"index": 1}, "rate": 1}, "distributed": {"shard": 1, "run_id": "r"}});
        assert_eq!(first_difference(&comparable(&a), &comparable(&b), ""), None);
        let c = json!({"load": {"rate": 2}, "distributed": {"run_id": "r"}});
        assert_eq!(
            first_difference(&comparable(&a), &comparable(&c), ""),
            Some("load.rate".into())
        );
    }
}
