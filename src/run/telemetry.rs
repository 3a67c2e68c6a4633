//! Pre-flight for telemetry: is there a `/metrics` with Prometheus text, are there GPUs to read?
//! Each answer is one header line; a missing source never stops the run.

use crate::cli::config::RunConfig;
use crate::i18n::{tr, Msg};
use crate::monitor::gpu::nvml::NvmlReader;
use crate::monitor::gpu::source::GpuSource;
use crate::monitor::server::scrape::{scrape, Scraped, ServerSource};
use crate::monitor::{scrape_timeout, server::engines};
use crate::report::Reporter;
use std::time::Duration;

/// The pre-flight scrape waits this long at most.
const PREFLIGHT_TIMEOUT: Duration = Duration::from_secs(3);

pub(super) type Opened = (Option<(ServerSource, Duration)>, Option<(GpuSource, Duration)>);

/// The telemetry sources this run samples, said in the header.
pub(super) async fn open_sources(config: &RunConfig, reporter: &Reporter) -> Opened {
    let every = config.telemetry.interval;
    let shown = humantime::format_duration(every).to_string();
    (
        server_source(config, reporter, &shown).await.map(|s| (s, every)),
        gpu_source(config, reporter, &shown).await.map(|s| (s, every)),
    )
}

async fn server_source(config: &RunConfig, reporter: &Reporter, every: &str) -> Option<ServerSource> {
    let settings = &config.telemetry;
    let target = settings.server_target.clone()?;
    let url = target.url();
    match scrape(&target, PREFLIGHT_TIMEOUT).await {
        Scraped::Metrics(parsed) => {
            let engine = engines::map(&parsed)
                .engine
                .unwrap_or_else(|| tr(Msg::ServerMetricsUnknownEngine, &[]));
            reporter.line(&tr(
                Msg::ServerMetricsOn,
                &[("url", &url), ("engine", &engine), ("interval", &every)],
            ));
        }
        Scraped::Unusable(why) if settings.server_asked() => {
            reporter.warn(&tr(
                Msg::ServerMetricsAskedFailing,
                &[("url", &url), ("why", &why), ("interval", &every)],
            ));
        }
        Scraped::Unusable(why) => {
            reporter.line(&tr(Msg::ServerMetricsNone, &[("url", &url), ("why", &why)]));
            return None;
        }
    }
    ServerSource::new(target, scrape_timeout(settings.interval)).ok()
}

async fn gpu_source(config: &RunConfig, reporter: &Reporter, every: &str) -> Option<GpuSource> {
    let settings = &config.telemetry;
    if let Some(target) = settings.dcgm_target.clone() {
        let url = target.url();
        match scrape(&target, PREFLIGHT_TIMEOUT).await {
            Scraped::Metrics(parsed) if !crate::monitor::gpu::dcgm::map(&parsed).devices.is_empty() => {
                let n = crate::monitor::gpu::dcgm::map(&parsed).devices.len();
                reporter.line(&tr(Msg::GpuDcgmOn, &[("n", &n), ("url", &url), ("interval", &every)]));
            }
            Scraped::Metrics(_) => reporter.warn(&tr(
                Msg::GpuDcgmFailing,
                &[("url", &url), ("why", &"no DCGM_FI_DEV_* series"), ("interval", &every)],
            )),
            Scraped::Unusable(why) => reporter.warn(&tr(
                Msg::GpuDcgmFailing,
                &[("url", &url), ("why", &why), ("interval", &every)],
            )),
        }
        return GpuSource::dcgm(target, scrape_timeout(settings.interval)).ok();
    }
    match settings.gpu_metrics.as_str() {
        "off" => return None,
        "auto" if !is_this_machine(&config.endpoint.host) => {
            reporter.line(&tr(Msg::GpuRemoteServer, &[]));
            return None;
        }
        _ => {}
    }
    // Loading a shared library: a blocking call, kept off the runtime's threads.
    match tokio::task::spawn_blocking(NvmlReader::open).await {
        Ok(Ok(reader)) => {
            let names = reader.names().join(", ");
            reporter.line(&tr(
                Msg::GpuNvmlOn,
                &[("n", &reader.device_count()), ("names", &names), ("interval", &every)],
            ));
            Some(GpuSource::Nvml(Box::new(reader)))
        }
        Ok(Err(why)) => {
            reporter.line(&tr(Msg::GpuNotAvailable, &[("why", &why)]));
            None
        }
        Err(_) => None,
    }
}

/// A step's server and GPU figures over `[from, to]`, checked against what the step served.
pub(super) fn attach_step(
    stats: &mut crate::metrics::StepStats,
    monitor: &crate::monitor::Monitor,
    (from_s, to_s): (f64, f64),
    served: crate::metrics::step::Served,
) {
    // A shard's server and GPUs also serve the other shards: their counts are checked, and
    // energy shared out, only by `llm-bench merge` against the whole run's.
    let whole = !monitor.is_shard();
    stats.server_metrics = monitor.server_window(from_s, to_s).map(|mut w| {
        if whole {
            w.check_tokens(served.prompt_tokens, served.cached_prompt_tokens, served.output_tokens);
        }
        w.ttft_p50_outside_ms = outside_ms(stats, &w);
        w
    });
    stats.gpu = monitor.gpu_window(from_s, to_s).map(|mut g| {
        if whole {
            g.relate(served.output_tokens, served.requests);
        }
        g
    });
}

/// A stress interval's server and GPU figures, checked against what arrived in it
/// ([`relate_interval`]).
pub(super) fn attach_interval(interval: &mut crate::report::summary::Interval, monitor: &crate::monitor::Monitor) {
    interval.server_metrics = monitor.server_window(interval.start_s, interval.end_s);
    interval.gpu = monitor.gpu_window(interval.start_s, interval.end_s);
    // A shard's server and GPUs also serve the other shards: `llm-bench merge` checks them.
    relate_interval(interval, !monitor.is_shard());
}

/// Puts an interval's server and GPU figures beside ours: our TTFT p50 against the server's
/// and, for the whole run's load (`whole`: not a shard's), the server's token counts against
/// what arrived (tokens received in the window: the server counts a token when it makes it;
/// prompts of requests sent in it) and the energy per token and per request.
pub(super) fn relate_interval(interval: &mut crate::report::summary::Interval, whole: bool) {
    let crate::report::summary::Interval {
        tests,
        server_metrics,
        gpu,
        ..
    } = interval;
    let sum = |f: fn(&crate::metrics::StepStats) -> f64| tests.iter().map(f).sum::<f64>().round() as u64;
    let prompt = sum(|s| s.prompt_throughput_tps * s.duration_s);
    let generation = sum(|s| s.output_throughput_tps * s.duration_s);
    let requests = tests.iter().map(|s| s.requests_ok + s.requests_failed).sum();
    if let Some(w) = server_metrics.as_mut() {
        if whole {
            w.check_tokens(prompt, 0, generation);
        }
        if let Some(first) = tests.first() {
            w.ttft_p50_outside_ms = outside_ms(first, w);
        }
    }
    if let Some(g) = gpu.as_mut() {
        if whole {
            g.relate(generation, requests);
        }
    }
}

/// Our TTFT p50 minus the server's own.
pub(super) fn outside_ms(stats: &crate::metrics::StepStats, w: &crate::monitor::ServerWindow) -> Option<f64> {
    match (&stats.ttft_ms, &w.ttft_ms) {
        (Some(ours), Some(server)) if server.count > 0.0 => Some(ours.p50 - server.p50),
        _ => None,
    }
}

/// Is `host` this machine: a loopback name or address, or an address of one of its interfaces?
pub(crate) fn is_this_machine(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.eq_ignore_ascii_case("localhost") || host.ends_with(".localhost") {
        return true;
    }
    let Ok(ip) = host.parse::<std::net::IpAddr>() else {
        return false;
    };
    ip.is_loopback() || ip.is_unspecified() || local_addresses().contains(&ip)
}

/// The addresses of this machine's interfaces (getifaddrs).
fn local_addresses() -> Vec<std::net::IpAddr> {
    let mut out = Vec::new();
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list`, which is walked read-only and freed once.
    unsafe {
        if libc::getifaddrs(&mut list) != 0 {
            return out;
        }
        let mut at = list;
        while !at.is_null() {
            let addr = (*at).ifa_addr;
            if !addr.is_null() {
                match i32::from((*addr).sa_family) {
                    libc::AF_INET => {
                        let v4 = &*(addr as *const libc::sockaddr_in);
                        out.push(std::net::IpAddr::from(u32::from_be(v4.sin_addr.s_addr).to_be_bytes()));
                    }
                    libc::AF_INET6 => {
                        let v6 = &*(addr as *const libc::sockaddr_in6);
                        out.push(std::net::IpAddr::from(v6.sin6_addr.s6_addr));
                    }
                    _ => {}
                }
            }
            at = (*at).ifa_next;
        }
        libc::freeifaddrs(list);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_own_addresses_are_this_machine() {
        for host in ["localhost", "127.0.0.1", "127.0.0.2", "[::1]", "::1", "0.0.0.0"] {
            assert!(is_this_machine(host), "{host}");
        }
        for host in ["example.com", "192.0.2.7", "2001:db8::1"] {
            assert!(!is_this_machine(host), "{host}");
        }
        for ip in local_addresses() {
            assert!(is_this_machine(&ip.to_string()), "{ip}");
        }
    }
}
