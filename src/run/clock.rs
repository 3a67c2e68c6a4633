//! A shard's clock against the server's, estimated before the load from the server's `Date`
//! header (crate::client::clock), said in the header lines and kept in summary.json → `clock`;
//! `llm-bench merge` reports how far the shards' estimates spread (docs/distributed.md, "Clocks").

use crate::cli::config::RunConfig;
use crate::client::clock::{estimate, NoEstimate};
use crate::i18n::{tr, Msg};
use crate::report::Reporter;
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime};

/// How long the probes may take without `--start-at`; with it, until shortly before the start.
const BUDGET: Duration = Duration::from_secs(2);
/// Probing ends this long before `--start-at`: the connections open from 2 s before it
/// (`super::schedule::CONNECT_AHEAD`).
const BEFORE_START: Duration = Duration::from_millis(2500);
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// `summary.json` → `clock`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClockReport {
    /// `http-date`: bisection on the server's `Date` header.
    pub method: String,
    /// The server's clock − this machine's (positive: the server is ahead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset_ms: Option<f64>,
    /// The offset lies within ± this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uncertainty_ms: Option<f64>,
    pub probes: u32,
    /// Why there is no estimate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
}

/// A shard's estimate (nothing for a run that is not distributed).
pub(super) async fn estimate_for_shard(config: &RunConfig, reporter: &Reporter) -> Option<ClockReport> {
    let distributed = &config.distributed;
    if distributed.shard.is_none() && distributed.start_at_time.is_none() {
        return None;
    }
    let now = SystemTime::now();
    let deadline = match distributed.start_at_time {
        Some(at) => at.checked_sub(BEFORE_START).unwrap_or(now).min(now + BUDGET * 3),
        None => now + BUDGET,
    };
    let mut report = ClockReport {
        method: "http-date".into(),
        ..ClockReport::default()
    };
    match estimate(&config.endpoint, deadline, PROBE_TIMEOUT).await {
        Ok(e) => {
            let side = if e.offset_ms >= 0.0 {
                Msg::ClockAhead
            } else {
                Msg::ClockBehind
            };
            reporter.line(&tr(
                Msg::ClockOffset,
                &[
                    ("offset", &format!("{:.1}", e.offset_ms.abs())),
                    ("side", &tr(side, &[])),
                    ("plusminus", &format!("{:.1}", e.uncertainty_ms)),
                    ("probes", &e.probes),
                ],
            ));
            report.offset_ms = Some(e.offset_ms);
            report.uncertainty_ms = Some(e.uncertainty_ms);
            report.probes = e.probes;
        }
        Err(why) => {
            let why = match why {
                NoEstimate::NoDateHeader => tr(Msg::ClockNoDate, &[]),
                NoEstimate::Inconsistent => tr(Msg::ClockInconsistent, &[]),
                NoEstimate::Failed(e) => e,
            };
            reporter.line(&tr(Msg::ClockUnavailable, &[("why", &why)]));
            report.unavailable = Some(why);
        }
    }
    Some(report)
}
