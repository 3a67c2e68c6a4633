//! Whether a step's load was applied as asked: the open-loop rate reached, requests sent on
//! time, the backlog bounded. When not, one plain sentence says so and why — the client could
//! not keep up, or the `--max-concurrency` cap or the server held requests back.

use super::step::StepStats;
use crate::i18n::{tr, Msg};
use crate::load::point::fmt_rate;
use crate::load::LoadReport;

/// Achieved rate more than this far below what the schedule made due: flagged.
pub const RATE_SHORTFALL: f64 = 0.02;
/// Send lateness p99 above this: flagged.
pub const LATENESS_P99_LIMIT_MS: f64 = 10.0;

/// Adds what the scheduler saw to a step's figures, and the sentence when the load was not
/// applied as asked.
pub fn apply(stats: &mut StepStats, report: &LoadReport, cap: Option<u32>) {
    if !stats.is_open_loop() {
        return;
    }
    stats.saturated = report.saturated;
    stats.connections = Some(report.connections);
    stats.requests_unsent = report.unsent;
    stats.max_backlog = Some(report.max_backlog);
    stats.backlog_limit = report.backlog_limit;
    if stats.duration_s > 0.0 && stats.window.is_some() {
        stats.scheduled_rps = Some(report.scheduled as f64 / stats.duration_s);
    }
    stats.pacing_warning = sentence(stats, cap);
}

fn sentence(s: &StepStats, cap: Option<u32>) -> Option<String> {
    let target = s.target_rps?;
    let mut parts = Vec::new();
    if s.saturated {
        parts.push(tr(
            Msg::PacingSaturated,
            &[
                ("waiting", &s.max_backlog.unwrap_or(0)),
                ("limit", &s.backlog_limit.unwrap_or(0)),
                ("rate", &fmt_rate(target)),
                ("after", &format!("{:.1}", s.duration_s)),
                ("dropped", &s.requests_unsent),
            ],
        ));
    }
    let due = s.scheduled_rps.unwrap_or(target);
    let achieved = s.achieved_rps.unwrap_or(0.0);
    let short = due > 0.0 && achieved < due * (1.0 - RATE_SHORTFALL);
    let lateness = s.send_lateness_ms.unwrap_or_default();
    let late = lateness.p99 > LATENESS_P99_LIMIT_MS;
    if short || late {
        let what = tr(
            Msg::PacingWhat,
            &[
                ("sent", &fmt_rate(achieved)),
                ("due", &fmt_rate(due)),
                ("target", &fmt_rate(target)),
                ("p50", &format!("{:.1}", lateness.p50)),
                ("p99", &format!("{:.1}", lateness.p99)),
            ],
        );
        let queue = format!("{queue_p99:.1}", queue_p99 = s.queue_wait_ms.map_or(0.0, |q| q.p99));
        let queue_p99 = s.queue_wait_ms.map_or(0.0, |q| q.p99);
        let held_back = queue_p99 >= 0.5 * lateness.p99 && queue_p99 > 0.0;
        let cause = if s.client_bound {
            tr(Msg::PacingClientBound, &[])
        } else if held_back {
            match cap {
                Some(n) => tr(Msg::PacingCapHeld, &[("n", &n), ("queue", &queue)]),
                None => tr(Msg::PacingServerHeld, &[("queue", &queue)]),
            }
        } else {
            tr(Msg::PacingClientLate, &[])
        };
        parts.push(tr(Msg::PacingNotAsAsked, &[("what", &what), ("cause", &cause)]));
    }
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// A sweep should stop going higher: the step saturated, or it sent under 90% of its target
/// while TTFT rose through it.
pub fn oversaturated(s: &StepStats, ttft_rising: bool) -> bool {
    let short = match (s.target_rps, s.achieved_rps) {
        (Some(target), Some(achieved)) => achieved < 0.9 * target,
        _ => false,
    };
    s.saturated || (short && ttft_rising)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::LoadPoint;
    use crate::metrics::step::{Lateness, Window};
    use crate::metrics::Dist;

    fn open_step(achieved: f64, p99: f64, queue_p99: f64) -> StepStats {
        StepStats {
            load: LoadPoint::Rate(10.0),
            target_rps: Some(10.0),
            achieved_rps: Some(achieved),
            window: Some(Window {
                start_s: 0.0,
                end_s: 10.0,
            }),
            duration_s: 10.0,
            send_lateness_ms: Some(Lateness {
                p50: p99 / 2.0,
                p99,
                max: p99,
                mean: p99 / 2.0,
            }),
            queue_wait_ms: Some(Dist {
                p99: queue_p99,
                ..Dist::default()
            }),
            ..StepStats::default()
        }
    }

    #[test]
    fn each_cause_has_its_sentence() {
        let report = LoadReport {
            scheduled: 100,
            ..LoadReport::default()
        };
        let cases: [(StepStats, bool, Option<u32>, Option<&str>); 5] = [
            (open_step(10.0, 1.0, 0.0), false, None, None),
            (
                open_step(9.0, 1.0, 0.0),
                false,
                None,
                Some("could not keep up: it sent requests late"),
            ),
            (
                open_step(6.0, 900.0, 880.0),
                false,
                Some(4),
                Some("--max-concurrency 4 cap held requests back"),
            ),
            (open_step(9.9, 50.0, 45.0), false, None, Some("new connections")),
            (open_step(5.0, 900.0, 0.0), true, None, Some("CLIENT-BOUND")),
        ];
        for (mut s, bound, cap, expected) in cases {
            s.client_bound = bound;
            apply(&mut s, &report, cap);
            match expected {
                None => assert_eq!(s.pacing_warning, None),
                Some(text) => {
                    let w = s.pacing_warning.clone().unwrap_or_default();
                    assert!(w.contains(text), "{w}");
                }
            }
        }
    }

    #[test]
    fn saturation_is_said_and_stops_a_sweep() {
        let mut s = open_step(10.0, 1.0, 0.0);
        let report = LoadReport {
            scheduled: 100,
            saturated: true,
            max_backlog: 600,
            backlog_limit: Some(600),
            unsent: 3,
            ..LoadReport::default()
        };
        apply(&mut s, &report, None);
        assert!(s.saturated && s.pacing_warning.as_deref().unwrap_or("").contains("SATURATED"));
        assert!(oversaturated(&s, false));
        assert!(oversaturated(&open_step(8.0, 1.0, 0.0), true));
        assert!(!oversaturated(&open_step(8.0, 1.0, 0.0), false));
    }
}
