//! The server's `/metrics` as a [`Source`]: one GET per sample over the run's own connect path
//! (TLS, proxy), on the sampler's thread with its own small runtime, so the load never waits.

use super::{engines, ServerReading};
use crate::client::endpoint::Endpoint;
use crate::monitor::prom;
use crate::monitor::source::{RunClock, Source};
use std::collections::HashMap;
use std::time::Duration;

/// The most of a `/metrics` answer read; a longer one is skipped (vLLM's is ~100 KB).
pub const BODY_LIMIT: usize = 8 * 1024 * 1024;

/// Where the metrics are and how to ask for them.
#[derive(Debug, Clone)]
pub struct MetricsTarget {
    pub endpoint: Endpoint,
    /// The path at the endpoint's root: `/metrics` beside `/v1`, or "" for a URL given whole.
    pub root_path: String,
}

impl MetricsTarget {
    pub fn url(&self) -> String {
        self.endpoint.root_url(&self.root_path)
    }
}

/// What one GET of the metrics found.
pub enum Scraped {
    Metrics(prom::Parsed),
    /// Not usable, in a few words ("HTTP 404", "not Prometheus text", "no answer within 1s").
    Unusable(String),
}

/// One GET of `target`, parsed. Runs on any runtime.
pub async fn scrape(target: &MetricsTarget, timeout: Duration) -> Scraped {
    match crate::client::probe::get_root(&target.endpoint, &target.root_path, timeout, BODY_LIMIT).await {
        Err(e) => {
            let text = e.to_string();
            if text.contains("length limit exceeded") {
                Scraped::Unusable(format!("answer larger than {} MiB", BODY_LIMIT / (1024 * 1024)))
            } else {
                Scraped::Unusable(text)
            }
        }
        Ok((status, _)) if status != 200 => Scraped::Unusable(format!("HTTP {status}")),
        Ok((_, body)) => {
            let parsed = prom::parse(&String::from_utf8_lossy(&body));
            if parsed.is_prometheus() {
                Scraped::Metrics(parsed)
            } else {
                Scraped::Unusable("not Prometheus text".into())
            }
        }
    }
}

/// A small runtime of a sampler's own, for its HTTP exchanges. Dropped without waiting: the
/// sampler may be let go of on an async thread, where a runtime cannot block.
pub struct ScrapeRuntime(Option<tokio::runtime::Runtime>);

impl ScrapeRuntime {
    pub fn new() -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        Ok(Self(Some(runtime)))
    }

    pub fn block_on<F: std::future::Future>(&self, work: F) -> Option<F::Output> {
        self.0.as_ref().map(|rt| rt.block_on(work))
    }
}

impl Drop for ScrapeRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// The server's metrics, sampled.
pub struct ServerSource {
    target: MetricsTarget,
    timeout: Duration,
    runtime: ScrapeRuntime,
    /// Every series' last value written, so a line carries only what changed.
    written: HashMap<String, f64>,
    /// The raw series of the last reading, for its line.
    raw: Vec<(String, f64)>,
}

impl ServerSource {
    pub fn new(target: MetricsTarget, timeout: Duration) -> std::io::Result<Self> {
        let runtime = ScrapeRuntime::new()?;
        Ok(Self {
            target,
            timeout,
            runtime,
            written: HashMap::new(),
            raw: Vec::new(),
        })
    }
}

impl Source for ServerSource {
    type Reading = ServerReading;

    fn name(&self) -> &'static str {
        "server"
    }

    fn describe(&self) -> String {
        self.target.url()
    }

    fn read(&mut self, clock: RunClock) -> Result<(f64, ServerReading), String> {
        let sent = clock.now_s();
        let scraped = self
            .runtime
            .block_on(scrape(&self.target, self.timeout))
            .unwrap_or(Scraped::Unusable("stopped".into()));
        // The counters stand for a moment between the request and the answer.
        let t_s = (sent + clock.now_s()) / 2.0;
        match scraped {
            Scraped::Unusable(why) => Err(why),
            Scraped::Metrics(parsed) => {
                self.raw = parsed
                    .families
                    .iter()
                    .flat_map(|f| &f.samples)
                    .map(|s| (s.key(), s.value))
                    .collect();
                Ok((t_s, engines::map(&parsed)))
            }
        }
    }

    fn line(&mut self, t_s: f64, reading: &ServerReading) -> Option<serde_json::Value> {
        let mut changed = serde_json::Map::new();
        for (key, value) in self.raw.drain(..) {
            let same = self
                .written
                .get(&key)
                .is_some_and(|old| old.to_bits() == value.to_bits());
            if !same {
                // NaN and infinities are not JSON numbers: they are written as strings.
                let json = serde_json::Number::from_f64(value)
                    .map(serde_json::Value::Number)
                    .unwrap_or_else(|| serde_json::Value::String(prom_number(value)));
                changed.insert(key.clone(), json);
                self.written.insert(key, value);
            }
        }
        Some(serde_json::json!({
            "t_s": t_s,
            "source": "server",
            "figures": reading,
            "raw": changed,
        }))
    }

    fn thin(&self, reading: &mut ServerReading) {
        reading.ttft = None;
        reading.queue_time = None;
    }
}

fn prom_number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v > 0.0 {
        "+Inf".into()
    } else {
        "-Inf".into()
    }
}
