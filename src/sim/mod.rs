//! A built-in OpenAI-compatible LLM server simulator.
//!
//! It exists so that `llm-bench` can be developed, tested and demonstrated
//! without a GPU: `llm-bench serve` runs it standalone, tests and `llm-bench
//! demo` start it in-process. Its timing follows a batching-engine model
//! (see [`engine`]) so that a step benchmark shows a real saturation knee, it
//! can inject deterministic faults, and it records its own view of TTFT and
//! ITL ("truth") for comparison with what the client measured.
//!
//! Layout: `config` (flags), `http` (routes), `request` (parsing), `engine`
//! (batch scheduling), `body` (the streamed response), `chunks` (pre-built
//! bytes in each flavor's layout), `errors` (error bodies), `llama` (timings,
//! /props), `metrics` (GET /metrics per flavor and the engine's gauges behind
//! it), `dcgm` (GET /dcgm/metrics, simulated GPUs), `faults` (deterministic
//! fault plans), `stats` (counters and truth), `server` (TCP accept loop),
//! `conn` (closing or resetting a connection on a request's behalf),
//! `tokenizer` (the deterministic token count and ids behind usage and
//! /tokenize), `prefix` (the prefix cache).

mod body;
mod chunks;
pub mod config;
mod conn;
mod dcgm;
mod embeddings;
mod engine;
mod errors;
mod faults;
mod http;
mod llama;
mod metrics;
mod prefix;
mod reasoning;
mod request;
mod server;
mod stats;
mod tokenizer;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio_util::sync::CancellationToken;

pub use config::{ErrorBody, Flavor, MetricsFault, SimConfig};
pub use server::raise_fd_limit;
pub use stats::{Arrivals, Dist, FaultCounts, SimStats, Truth};

use engine::EngineParams;
use http::AppState;
use stats::Stats;

/// A running simulator. Dropping it does NOT stop it; call [`SimHandle::shutdown`].
#[derive(Clone)]
pub struct SimHandle {
    /// The bound address (127.0.0.1 and the actual port).
    pub addr: SocketAddr,
    stats: Arc<Stats>,
    cancel: CancellationToken,
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl SimHandle {
    /// The OpenAI base URL, e.g. `http://127.0.0.1:8000/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// A snapshot of the counters (the same data as GET /sim/stats).
    pub fn stats(&self) -> SimStats {
        self.stats.snapshot()
    }

    /// Stops accepting, drops open connections (cutting their streams) and
    /// stops the engine. Idempotent.
    pub fn shutdown(&self) {
        self.cancel.cancel();
    }
}

/// Binds `config.host:config.port` (0 = a free port) and serves in background
/// tasks on the current tokio runtime.
pub async fn start(config: SimConfig) -> Result<SimHandle> {
    config.validate().context("invalid simulator configuration")?;
    raise_fd_limit();
    let listener = server::bind(config.host, config.port)
        .with_context(|| format!("cannot listen on {}:{}", config.host, config.port))?;
    let addr = listener.local_addr().context("cannot read the bound address")?;

    let cancel = CancellationToken::new();
    let stats = Stats::new();
    let engine = engine::spawn(EngineParams::from_config(&config), Arc::clone(&stats), cancel.clone());
    let state = Arc::new(AppState::new(&config, Arc::clone(&stats), engine));
    server::spawn(listener, state, cancel.clone());
    Ok(SimHandle { addr, stats, cancel })
}

/// Runs the simulator for the `serve` subcommand: starts it, prints one line
/// with its base URL, and serves until Ctrl-C or SIGTERM.
pub async fn serve_forever(config: SimConfig) -> Result<()> {
    let handle = start(config).await?;
    println!(
        "{}",
        crate::i18n::tr(crate::i18n::Msg::SimListening, &[("url", &handle.base_url())])
    );
    wait_for_shutdown_signal().await?;
    handle.shutdown();
    Ok(())
}

async fn wait_for_shutdown_signal() -> Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("cannot listen for Ctrl-C")?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await.context("cannot listen for Ctrl-C")?;
    Ok(())
}
