//! Flags for what is sampled beside the load: the server's `/metrics` and the GPUs.

use super::parse;
use std::time::Duration;

#[derive(clap::Args, Debug, Clone)]
pub struct TelemetryArgs {
    /// Scrape the server's Prometheus metrics (default: {server root}/metrics when it answers
    /// with Prometheus text at pre-flight); a URL scrapes that instead, e.g. a router's.
    #[arg(long = "server-metrics", value_name = "URL", num_args = 0..=1, default_missing_value = "")]
    pub server_metrics: Option<String>,
    /// Do not scrape the server's metrics.
    #[arg(long = "no-server-metrics", conflicts_with = "server_metrics")]
    pub no_server_metrics: bool,
    /// How often server metrics and GPUs are sampled.
    #[arg(long = "metrics-interval", value_name = "TIME", default_value = "1s", value_parser = parse::duration)]
    pub metrics_interval: Duration,
    /// GPU telemetry: a DCGM exporter's URL (remote GPUs), or `nvml` for this machine's NVIDIA
    /// GPUs (default: NVML when the server is on this machine).
    #[arg(long = "gpu-metrics", value_name = "URL|nvml")]
    pub gpu_metrics: Option<String>,
    /// No GPU telemetry.
    #[arg(long = "no-gpu-metrics", conflicts_with = "gpu_metrics")]
    pub no_gpu_metrics: bool,
}

/// The validated settings. A metrics URL is reached like the server (TLS trust, proxy), without
/// the API key: it may be another host.
pub fn settings(
    args: &super::RunArgs,
    endpoint: &crate::client::endpoint::Endpoint,
    proxies: crate::client::proxy::ProxyEnv,
) -> Result<crate::monitor::TelemetrySettings, super::config::UsageError> {
    use crate::i18n::{tr, Msg};
    use crate::monitor::server::scrape::MetricsTarget;
    let t = &args.telemetry;
    let fail = |flag: &str, e: String| {
        super::config::UsageError(tr(Msg::MetricsUrlInvalid, &[("flag", &flag), ("error", &e)]))
    };
    if t.metrics_interval < Duration::from_millis(100) {
        return Err(super::config::UsageError(tr(Msg::MetricsIntervalTooShort, &[])));
    }
    let target_of = |flag: &str, url: &str| -> Result<MetricsTarget, super::config::UsageError> {
        let roots = args
            .ca_cert
            .as_deref()
            .map(crate::client::tls::read_ca_file)
            .transpose()
            .map_err(|e| fail(flag, e))?;
        let options = crate::client::connect::TransportOptions {
            extra_roots: roots,
            insecure: args.insecure,
            proxies: proxies.clone(),
        };
        let endpoint = crate::client::endpoint::Endpoint::parse(url, None, &[])
            .and_then(|e| e.with_transport(options))
            .map_err(|e| fail(flag, e))?;
        Ok(MetricsTarget {
            endpoint,
            root_path: String::new(),
        })
    };
    let (server_metrics, server_target) = match (&t.server_metrics, t.no_server_metrics) {
        (_, true) => ("off".to_string(), None),
        (Some(url), _) if !url.trim().is_empty() => (url.clone(), Some(target_of("--server-metrics", url)?)),
        (given, _) => {
            let target = MetricsTarget {
                endpoint: endpoint.clone(),
                root_path: "/metrics".into(),
            };
            let shown = if given.is_some() { target.url() } else { "auto".into() };
            (shown, Some(target))
        }
    };
    let (gpu_metrics, dcgm_target) = match (t.gpu_metrics.as_deref().map(str::trim), t.no_gpu_metrics) {
        (_, true) => ("off".to_string(), None),
        (None, _) => ("auto".to_string(), None),
        (Some(nvml), _) if nvml.eq_ignore_ascii_case("nvml") => ("nvml".to_string(), None),
        (Some(url), _) => (url.to_string(), Some(target_of("--gpu-metrics", url)?)),
    };
    Ok(crate::monitor::TelemetrySettings {
        server_metrics,
        gpu_metrics,
        interval: t.metrics_interval,
        server_target,
        dcgm_target,
    })
}
