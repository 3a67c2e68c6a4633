//! How late the client's own runtime runs its tasks.
//!
//! Every timestamp llm-bench takes is taken by a task; if the runtime is too busy to run that
//! task when its bytes arrive, the timestamp is late by the same amount. A probe task that asks
//! to wake every few milliseconds and notes how late it actually woke measures exactly that
//! delay, on the same runtime and under the same load as the request tasks.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How often the probe asks to wake.
const PERIOD: Duration = Duration::from_millis(5);

/// Scheduling lag over a window, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LagStats {
    pub samples: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

pub struct LagProbe {
    window: Mutex<Histogram<u64>>,
    stop: CancellationToken,
}

impl LagProbe {
    /// Starts the probe on the current tokio runtime; it runs until [`LagProbe::stop`].
    pub fn start() -> Arc<Self> {
        let probe = Arc::new(Self {
            window: Mutex::new(Histogram::new(3).expect("3 significant figures is a valid precision")),
            stop: CancellationToken::new(),
        });
        let me = probe.clone();
        tokio::spawn(async move {
            let mut due = Instant::now() + PERIOD;
            loop {
                tokio::select! {
                    () = me.stop.cancelled() => break,
                    () = tokio::time::sleep_until(due) => {}
                }
                let now = Instant::now();
                me.record(now.saturating_duration_since(due));
                // The next wake is planned from now, not from `due`: a late wake must not be
                // followed by a burst of catch-up wakes that would report no lag.
                due = now + PERIOD;
            }
        });
        probe
    }

    fn record(&self, lag: Duration) {
        let us = (lag.as_micros() as u64).max(1);
        let _ = self.window.lock().unwrap_or_else(|e| e.into_inner()).record(us);
    }

    /// The lag since the previous call (or the start), and a fresh window.
    pub fn take(&self) -> LagStats {
        let mut window = self.window.lock().unwrap_or_else(|e| e.into_inner());
        let stats = summarize(&window);
        window.reset();
        stats
    }

    pub fn stop(&self) {
        self.stop.cancel();
    }
}

fn summarize(h: &Histogram<u64>) -> LagStats {
    if h.is_empty() {
        return LagStats::default();
    }
    let ms = |us: u64| us as f64 / 1000.0;
    LagStats {
        samples: h.len(),
        p50_ms: ms(h.value_at_quantile(0.50)),
        p99_ms: ms(h.value_at_quantile(0.99)),
        max_ms: ms(h.max()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn an_idle_runtime_wakes_on_time() {
        let probe = LagProbe::start();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let lag = probe.take();
        probe.stop();
        assert!(lag.samples >= 10, "{lag:?}");
        // Timer resolution is 1 ms; allow a noisy machine a lot more for the median.
        assert!(lag.p50_ms < 20.0, "{lag:?}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_blocked_runtime_shows_its_lag() {
        let probe = LagProbe::start();
        tokio::time::sleep(Duration::from_millis(20)).await;
        probe.take();
        // Hog the only runtime thread: the probe cannot run until we yield.
        std::thread::sleep(Duration::from_millis(120));
        tokio::time::sleep(Duration::from_millis(20)).await;
        let lag = probe.take();
        probe.stop();
        assert!(lag.max_ms >= 100.0, "{lag:?}");
    }
}
