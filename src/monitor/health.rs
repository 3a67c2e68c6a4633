//! Is the client itself the bottleneck? A step's verdict from the client's own figures.
//!
//! Event times are the kernel's arrival stamps, so a busy client does not by itself distort
//! them. It does when it falls so far behind that a stream's next token arrives before the
//! previous one was read (the two then share one stamp), when it sends requests late (fewer are
//! in flight than asked), or when it has no CPU left. The numbers of such a step describe the
//! client, not the server, and the report says so in plain words.

use super::lag::LagStats;
use crate::i18n::{tr, Msg};
use serde::{Deserialize, Serialize};

/// Scheduling lag p99 that always counts as falling behind, whatever the token gap.
pub const LAG_P99_FLOOR_MS: f64 = 20.0;
/// Share of its allowed cores above which the client is saturated.
pub const CPU_LIMIT_PCT: f64 = 90.0;
/// Mean send delay, as a share of the mean request time, above which too few requests were in
/// flight.
pub const SEND_DELAY_LIMIT_PCT: f64 = 5.0;
/// Shorter windows are not judged: a few late wakes in 0.1 s say little.
pub const MIN_WINDOW_S: f64 = 0.25;

/// The client's own figures over a step, and the verdict.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientHealth {
    /// How late the client's timers fired (a probe task that wakes every 5 ms).
    pub lag: LagStats,
    /// The limit the lag p99 was held to: the larger of 20 ms and the step's ITL p50.
    #[serde(default)]
    pub lag_limit_ms: f64,
    /// Delay between when a request was due (step start, or the arrival of the end of the
    /// connection's previous response) and when it was sent: mean and p99.
    #[serde(default)]
    pub send_delay_mean_ms: Option<f64>,
    pub send_delay_p99_ms: Option<f64>,
    /// CPU of the llm-bench process, percent of one core.
    pub cpu_pct: Option<f64>,
    /// Cores the client may use: its runtime threads, within the CPUs it may run on.
    pub cores: usize,
    /// `cpu_pct / cores`: how much of what it may use the client used.
    pub cpu_pct_of_allowed: Option<f64>,
    pub client_bound: bool,
    /// What crossed its limit, in words; empty when not client-bound.
    pub reasons: Vec<String>,
}

/// What the client measured about itself, and about the load, over one window.
#[derive(Debug, Clone, Copy, Default)]
pub struct HealthInputs {
    pub window_s: f64,
    pub lag: LagStats,
    pub send_delay_mean_ms: Option<f64>,
    pub send_delay_p99_ms: Option<f64>,
    /// Gap between a stream's tokens (p50), when the step streamed tokens.
    pub itl_p50_ms: Option<f64>,
    /// Mean request time (E2E).
    pub e2e_mean_ms: Option<f64>,
    pub cpu_pct: Option<f64>,
    pub cores: usize,
}

impl ClientHealth {
    pub fn assess(inputs: HealthInputs) -> Self {
        let cores = inputs.cores.max(1);
        let cpu_pct_of_allowed = inputs.cpu_pct.map(|c| c / cores as f64);
        let lag_limit_ms = inputs.itl_p50_ms.unwrap_or(0.0).max(LAG_P99_FLOOR_MS);
        let mut reasons = Vec::new();
        if inputs.window_s >= MIN_WINDOW_S {
            if inputs.lag.samples > 0 && inputs.lag.p99_ms > lag_limit_ms {
                reasons.push(tr(
                    Msg::ClientBoundLag,
                    &[
                        ("lag", &format!("{:.0}", inputs.lag.p99_ms)),
                        ("limit", &format!("{lag_limit_ms:.0}")),
                    ],
                ));
            }
            if let Some(share) = cpu_pct_of_allowed.filter(|s| *s > CPU_LIMIT_PCT) {
                reasons.push(tr(
                    if cores == 1 {
                        Msg::ClientBoundCpuOneCore
                    } else {
                        Msg::ClientBoundCpu
                    },
                    &[
                        ("share", &format!("{share:.0}")),
                        ("cores", &cores),
                        ("limit", &format!("{CPU_LIMIT_PCT:.0}")),
                    ],
                ));
            }
            if let (Some(delay), Some(e2e)) = (inputs.send_delay_mean_ms, inputs.e2e_mean_ms) {
                let share = 100.0 * delay / e2e.max(f64::MIN_POSITIVE);
                if share > SEND_DELAY_LIMIT_PCT {
                    reasons.push(tr(
                        Msg::ClientBoundSendDelay,
                        &[
                            ("delay", &format!("{delay:.0}")),
                            ("share", &format!("{share:.0}")),
                            ("limit", &format!("{SEND_DELAY_LIMIT_PCT:.0}")),
                        ],
                    ));
                }
            }
        }
        Self {
            lag: inputs.lag,
            lag_limit_ms,
            send_delay_mean_ms: inputs.send_delay_mean_ms,
            send_delay_p99_ms: inputs.send_delay_p99_ms,
            cpu_pct: inputs.cpu_pct,
            cores,
            cpu_pct_of_allowed,
            client_bound: !reasons.is_empty(),
            reasons,
        }
    }

    /// The plain sentence for the console and the log, when the step is client-bound.
    pub fn warning(&self) -> Option<String> {
        self.client_bound.then(|| {
            // Punctuation, not a sentence: the full-width semicolon in Chinese.
            let separator = match crate::i18n::lang() {
                crate::i18n::Lang::Zh => "；",
                crate::i18n::Lang::En => "; ",
            };
            tr(Msg::ClientBound, &[("reasons", &self.reasons.join(separator))])
        })
    }
}

/// Watches the client over a run: the lag probe plus what it may use, judged window by window.
pub struct ClientWatch {
    lag: std::sync::Arc<super::LagProbe>,
    cores: usize,
}

impl ClientWatch {
    /// Starts the lag probe on the current runtime.
    pub fn start(threads: Option<usize>) -> Self {
        Self {
            lag: super::LagProbe::start(),
            cores: allowed_cores(threads),
        }
    }

    /// Starts a new window (what came before it is dropped).
    pub fn begin_window(&self) {
        self.lag.take();
    }

    /// Ends the window: its lag, with the window's load figures and CPU, judged.
    pub fn end_window(&self, window_s: f64, load: HealthInputs, cpu_pct: Option<f64>) -> ClientHealth {
        ClientHealth::assess(HealthInputs {
            window_s,
            lag: self.lag.take(),
            cpu_pct,
            cores: self.cores,
            ..load
        })
    }

    pub fn stop(&self) {
        self.lag.stop();
    }
}

/// Cores the client may use: `--threads` if given, within the CPUs this process may run on.
pub fn allowed_cores(threads: Option<usize>) -> usize {
    let available = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    threads.map_or(available, |t| t.clamp(1, available))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(p99_ms: f64, cpu_pct: f64, cores: usize) -> HealthInputs {
        HealthInputs {
            window_s: 2.0,
            lag: LagStats {
                samples: 300,
                p50_ms: 1.0,
                p99_ms,
                max_ms: p99_ms,
            },
            send_delay_mean_ms: Some(0.1),
            send_delay_p99_ms: Some(0.2),
            itl_p50_ms: Some(10.0),
            e2e_mean_ms: Some(1000.0),
            cpu_pct: Some(cpu_pct),
            cores,
        }
    }

    #[test]
    fn healthy_client_is_not_flagged() {
        let h = ClientHealth::assess(inputs(1.2, 40.0, 2));
        assert!(!h.client_bound);
        assert!(h.warning().is_none());
        assert_eq!(h.cpu_pct_of_allowed, Some(20.0));
    }

    #[test]
    fn late_timers_flag_the_step() {
        let h = ClientHealth::assess(inputs(45.0, 40.0, 2));
        assert!(h.client_bound);
        let text = h.warning().unwrap();
        assert!(text.contains("45 ms late"), "{text}");
        assert!(text.contains("describe llm-bench, not the server"), "{text}");
    }

    #[test]
    fn lag_shorter_than_the_token_gap_does_not_merge_tokens() {
        // 55 ms late, but a stream's tokens are 110 ms apart: every arrival keeps its own stamp.
        let mut i = inputs(55.0, 80.0, 1);
        i.itl_p50_ms = Some(110.0);
        let h = ClientHealth::assess(i);
        assert!(!h.client_bound, "{h:?}");
        assert_eq!(h.lag_limit_ms, 110.0);
    }

    #[test]
    fn late_sends_flag_the_step() {
        let mut i = inputs(2.0, 40.0, 2);
        i.send_delay_mean_ms = Some(80.0);
        let h = ClientHealth::assess(i);
        assert!(h.client_bound);
        assert!(h.warning().unwrap().contains("fewer were in flight than asked"));
    }

    #[test]
    fn saturated_cpu_flags_the_step() {
        let h = ClientHealth::assess(inputs(2.0, 97.0, 1));
        assert!(h.client_bound);
        assert!(h.warning().unwrap().contains("97% of the 1 core it may use"));
    }

    #[test]
    fn too_short_a_window_is_not_judged() {
        let mut i = inputs(100.0, 100.0, 1);
        i.window_s = 0.1;
        assert!(!ClientHealth::assess(i).client_bound);
    }

    #[test]
    fn threads_are_capped_by_the_machine() {
        assert_eq!(allowed_cores(Some(1)), 1);
        let all = allowed_cores(None);
        assert!(all >= 1);
        assert_eq!(allowed_cores(Some(10_000)), all);
    }
}
