//! `summary.json`: configuration, environment, per-step figures, recommendations and monitor
//! samples (and beside it `steps.csv`, `intervals.csv` and `report.html`). Written atomically (temp file + rename) at every checkpoint, so a crash leaves the
//! last complete one.

use crate::i18n::{tr, Msg};
use crate::metrics::StepStats;
use crate::monitor::Sample;
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Environment {
    pub tool: String,
    pub tool_version: String,
    pub host: Option<String>,
    pub os: Option<String>,
    pub cpus: usize,
    pub memory_mb: Option<f64>,
}

impl Environment {
    pub fn current() -> Self {
        let memory_mb = sysinfo::System::new().ok().map(|mut s| {
            s.refresh_memory();
            s.total_memory() as f64 / (1024.0 * 1024.0)
        });
        Self {
            tool: "llm-bench".into(),
            tool_version: env!("CARGO_PKG_VERSION").into(),
            host: sysinfo::System::host_name().ok(),
            os: sysinfo::System::long_os_version().ok(),
            cpus: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            memory_mb,
        }
    }
}

/// One report interval of a stress run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Interval {
    pub index: usize,
    pub start_s: f64,
    pub end_s: f64,
    /// One entry per test, figures over this interval only.
    #[serde(serialize_with = "crate::metrics::step::serialize_steps")]
    pub tests: Vec<StepStats>,
    /// The server's own figures over the interval (all tests together), from its `/metrics`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_metrics: Option<crate::monitor::ServerWindow>,
    /// The GPUs over the interval, with energy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<crate::monitor::GpuWindow>,
}

/// What running the benchmark cost the client, and whether it kept up.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientReport {
    /// Cores the client could use (its runtime threads, within the CPUs it may run on).
    pub cores: usize,
    /// CPU time of the whole process, start-up included (user + system).
    pub cpu_s: f64,
    /// SSE events received over the run.
    pub events: u64,
    /// `cpu_s` per event, in microseconds.
    pub cpu_us_per_event: Option<f64>,
    /// Peak resident memory of the process.
    pub peak_rss_mb: Option<f64>,
    /// From program start to sending its first request (model discovery).
    pub startup_first_request_ms: Option<f64>,
    /// From program start to the start of the load (after pre-flight).
    pub startup_load_ms: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StressReport {
    pub intervals: Vec<Interval>,
    /// Plain sentences comparing the last intervals with the first.
    pub drift: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MonitorReport {
    pub temperature_available: bool,
    pub samples: Vec<Sample>,
    /// Every telemetry source: what it read, how often, samples taken and skipped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<crate::monitor::window::SourceReport>,
    /// The server's series on the run clock (at most [`TIMELINE_POINTS`]; every sample is in
    /// server_metrics.jsonl).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub server: Vec<crate::monitor::window::ServerPoint>,
    /// The GPUs' series on the run clock (every sample is in gpu_metrics.jsonl).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gpu: Vec<crate::monitor::window::GpuPoint>,
}

/// The most points of a telemetry series kept in summary.json.
pub const TIMELINE_POINTS: usize = 3600;

impl MonitorReport {
    pub fn of(monitor: &crate::monitor::Monitor) -> Self {
        let timelines = monitor.timelines(TIMELINE_POINTS);
        let sources = monitor.sources();
        Self {
            temperature_available: monitor.temperature_available(),
            samples: monitor.samples(),
            // The machine alone is not worth a list.
            sources: if sources.len() > 1 { sources } else { Vec::new() },
            server: timelines.server,
            gpu: timelines.gpu,
        }
    }
}

/// The version of `summary.json`'s layout: raised whenever a key changes meaning or goes. The
/// layout is docs/summary.schema.json, whose `properties.schema_version.const` is this number.
pub const SCHEMA_VERSION: u32 = 1;

/// `schema_version`: the current one for a summary this version writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SchemaVersion(pub u32);

impl Default for SchemaVersion {
    fn default() -> Self {
        Self(SCHEMA_VERSION)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Summary {
    /// The layout's version ([`SCHEMA_VERSION`]).
    #[serde(default)]
    pub schema_version: SchemaVersion,
    /// `running` (a checkpoint), `complete`, `interrupted`, `stopped_error_budget`, `failed`
    /// (nothing succeeded), `results_not_saved` (requests.jsonl or a checkpoint could not be
    /// written), `rebuilt`.
    pub status: String,
    /// The run this summary belongs to (`--run-id`, or derived from the seed and start time):
    /// the shards of one distributed run share it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// `--shard I/N`: which shard of the run this is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<crate::load::Shard>,
    /// A shard's clock against the server's (`--shard`, `--start-at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock: Option<crate::run::clock::ClockReport>,
    /// `llm-bench merge`: each shard merged into this summary, and how the merge went.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<crate::run::merge::ShardReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged: Option<crate::run::merge::MergeReport>,
    pub started_at: String,
    /// The run clock's zero (every `t_s`, `start_s`, window) as Unix time in seconds, to the
    /// microsecond: what puts shards' clocks side by side in `llm-bench merge`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_start_unix_s: Option<f64>,
    pub finished_at: Option<String>,
    pub model: Option<String>,
    pub config: serde_json::Value,
    pub environment: Environment,
    #[serde(serialize_with = "crate::metrics::step::serialize_steps")]
    pub steps: Vec<StepStats>,
    /// `--repeat N`: each headline figure of each (test, load point) over its repetitions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repeats: Vec<crate::metrics::repeat::RepeatStats>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stress: Option<StressReport>,
    /// `llm-bench capacity`: the answer, its bracketing probes, the SLO and what limited it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<crate::run::Capacity>,
    /// True when any step (or stress interval) was client-bound: see each step's `client`.
    #[serde(default)]
    pub client_bound: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<ClientReport>,
    pub recommendations: Vec<String>,
    pub notes: Vec<String>,
    pub monitor: MonitorReport,
}

impl Summary {
    /// Writes summary.json, the CSV tables and report.html. A folder removed while they were
    /// being written is said as such, whichever file found it gone.
    pub fn write(&self, dir: &Path) -> Result<(), String> {
        self.write_files(dir).map_err(|problem| {
            if dir.is_dir() {
                problem
            } else {
                tr(Msg::RemovedDuringRun, &[("path", &dir.display())])
            }
        })
    }

    fn write_files(&self, dir: &Path) -> Result<(), String> {
        let path = dir.join("summary.json");
        let tmp = dir.join(".summary.json.tmp");
        let unserialisable = |e: serde_json::Error| tr(Msg::SummaryUnserialisable, &[("error", &e)]);
        let value = serde_json::to_value(self).map_err(unserialisable)?;
        let text = serde_json::to_vec_pretty(&value).map_err(unserialisable)?;
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| tr(Msg::CannotWrite, &[("path", &path.display()), ("error", &e)]))?;
        // The same figures as tables (docs/metrics.md, "CSV files").
        let tables = [
            ("steps.csv", super::csv::steps_csv(&value)),
            ("intervals.csv", super::csv::intervals_csv(&value)),
        ];
        for (name, table) in tables {
            if let Some(table) = table {
                let path = dir.join(name);
                std::fs::write(&path, table)
                    .map_err(|e| tr(Msg::CannotWrite, &[("path", &path.display()), ("error", &e)]))?;
            }
        }
        // The same figures as a page with charts (docs/metrics.md, "The HTML report").
        super::html::write_report(dir, self)
    }
}

pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_file_declares_this_version() {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../docs/summary.schema.json")).expect("the schema is JSON");
        assert_eq!(
            schema
                .pointer("/properties/schema_version/const")
                .and_then(|v| v.as_u64()),
            Some(u64::from(SCHEMA_VERSION)),
            "SCHEMA_VERSION and docs/summary.schema.json's schema_version must change together"
        );
    }
}
