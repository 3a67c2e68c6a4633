//! The validated run configuration. Everything a user can get wrong is caught here, before any
//! load is sent, and reported as one sentence.

use super::RunArgs;
use crate::client::connect::TransportOptions;
use crate::client::proxy::ProxyEnv;
use crate::client::{tls, Endpoint, Timeouts};
use crate::workload::{ApiKind, ImageData, TestKind};
use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;

/// A mistake in what the user asked for: printed as one line, exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// How load is applied.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Mode {
    /// Concurrency `start..=end` by `step`; each step either one request per connection or,
    /// with `step_duration`, back to back for that long.
    Step {
        start: u32,
        end: u32,
        step: u32,
        #[serde(serialize_with = "opt_secs")]
        step_duration: Option<Duration>,
    },
    /// Fixed concurrency for a duration.
    Stress {
        concurrency: u32,
        #[serde(serialize_with = "secs")]
        duration: Duration,
    },
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

fn opt_secs<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_f64(d.as_secs_f64()),
        None => s.serialize_none(),
    }
}

impl Mode {
    /// Concurrency of every step, in order.
    pub fn concurrencies(&self) -> Vec<u32> {
        match *self {
            Mode::Step { start, end, step, .. } => (start..=end).step_by(step as usize).collect(),
            Mode::Stress { concurrency, .. } => vec![concurrency],
        }
    }
}

/// Everything the engine needs; no clap types. Serialises without secrets into summary.json.
#[derive(Debug, Clone, Serialize)]
pub struct RunConfig {
    pub url: String,
    /// `None`: ask the server.
    pub model: Option<String>,
    #[serde(skip)]
    pub endpoint: Endpoint,
    pub api_key_set: bool,
    /// Names of extra headers (values are secrets and never written).
    pub extra_header_names: Vec<String>,
    /// `--ca-cert`: extra trust roots for https.
    pub ca_cert: Option<PathBuf>,
    /// `--insecure`: TLS certificates are not verified.
    pub insecure: bool,
    /// The proxy used, as host:port (its credentials are secrets and never written).
    pub proxy: Option<String>,
    pub api: ApiKind,
    pub tests: Vec<TestKind>,
    pub mode: Mode,
    pub prompt_chars: usize,
    pub max_tokens: u32,
    pub same_prompt: bool,
    pub ignore_eos: bool,
    /// `--continuous-usage`: ask for usage in every chunk (vLLM's `continuous_usage_stats`).
    pub continuous_usage: bool,
    /// Merged into every request body (`--extra-body`).
    pub extra_body: serde_json::Map<String, serde_json::Value>,
    pub image_path: Option<PathBuf>,
    #[serde(skip)]
    pub image: Option<ImageData>,
    pub multimodal_text: String,
    pub log_file: PathBuf,
    pub out_dir: PathBuf,
    #[serde(serialize_with = "secs")]
    pub warmup: Duration,
    #[serde(serialize_with = "secs")]
    pub report_interval: Duration,
    #[serde(serialize_with = "secs")]
    pub monitor_interval: Duration,
    pub min_tps: Option<f64>,
    pub max_error_rate: Option<f64>,
    pub timeouts: Timeouts,
    #[serde(serialize_with = "secs")]
    pub drain_timeout: Duration,
    pub threads: Option<usize>,
    /// The server runs inside this process (`llm-bench demo`): the client's own figures then
    /// include it.
    #[serde(skip)]
    pub server_in_process: bool,
}

fn usage(message: impl Into<String>) -> UsageError {
    UsageError(message.into())
}

/// `llm-bench-results/<UTC timestamp>`.
pub fn default_out_dir(prefix: &str) -> PathBuf {
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace(['-', ':'], "")
        .trim_end_matches('Z')
        .to_string();
    PathBuf::from("llm-bench-results").join(format!("{prefix}{stamp}"))
}

impl RunConfig {
    /// Validates `args`; `proxies` are the proxy variables to honour (the process's, or none).
    pub fn from_args(args: RunArgs, proxies: ProxyEnv) -> Result<Self, UsageError> {
        let mut tests = Vec::new();
        if args.input {
            tests.push(TestKind::Input);
        }
        if args.output {
            tests.push(TestKind::Output);
        }
        if args.multimodal {
            tests.push(TestKind::Multimodal);
        }
        if tests.is_empty() {
            // The original ran both text tests when none was chosen.
            tests = vec![TestKind::Input, TestKind::Output];
        }

        let stress = match (args.duration, args.duration_hours) {
            (Some(_), h) if h > 0.0 => {
                return Err(usage("give either -d/--duration-hours or --duration, not both"));
            }
            (Some(d), _) => Some(d),
            (None, h) if h > 0.0 => Some(Duration::from_secs_f64(h * 3600.0)),
            (None, _) => None,
        };
        let mode = match stress {
            Some(duration) => {
                if args.step_duration.is_some() {
                    return Err(usage(
                        "--step-duration is for step mode; a stress run (-d/--duration) already runs back to back",
                    ));
                }
                if args.warmup >= duration {
                    return Err(usage(format!(
                        "--warmup ({}) must be shorter than the stress run ({})",
                        humantime::format_duration(args.warmup),
                        humantime::format_duration(duration)
                    )));
                }
                Mode::Stress {
                    concurrency: args.start_threads,
                    duration,
                }
            }
            None => {
                if args.end_threads < args.start_threads {
                    return Err(usage(format!(
                        "-et/--end-threads ({}) is smaller than -st/--start-threads ({}); the last step must be at least the first",
                        args.end_threads, args.start_threads
                    )));
                }
                if let Some(step_duration) = args.step_duration {
                    if args.warmup >= step_duration {
                        return Err(usage(format!(
                            "--warmup ({}) must be shorter than --step-duration ({})",
                            humantime::format_duration(args.warmup),
                            humantime::format_duration(step_duration)
                        )));
                    }
                } else if !args.warmup.is_zero() {
                    return Err(usage("--warmup needs --step-duration (or a stress run): a one-request-per-connection step has no time to warm up"));
                }
                Mode::Step {
                    start: args.start_threads,
                    end: args.end_threads,
                    step: args.step_threads,
                    step_duration: args.step_duration,
                }
            }
        };

        if tests.contains(&TestKind::Multimodal) && args.endpoint == ApiKind::Completions {
            return Err(usage(
                "the multimodal test needs the chat endpoint; drop --endpoint completions or -mm",
            ));
        }
        let image = if tests.contains(&TestKind::Multimodal) {
            Some(ImageData::load(&args.image_path).map_err(usage)?)
        } else {
            None
        };

        let api_key = args
            .api_key
            .filter(|k| !k.is_empty())
            .or_else(|| std::env::var("LLM_BENCH_API_KEY").ok().filter(|k| !k.is_empty()));
        let mut headers = Vec::new();
        for raw in &args.header {
            let (name, value) = raw.split_once(':').ok_or_else(|| {
                usage(format!(
                    "-H expects `Name: value`, got `{}`",
                    raw.split(':').next().unwrap_or("")
                ))
            })?;
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
        // The file is checked whatever the URL, so a mistake shows before it matters.
        let extra_roots = args
            .ca_cert
            .as_deref()
            .map(tls::read_ca_file)
            .transpose()
            .map_err(usage)?;
        let endpoint = Endpoint::parse(&args.url, api_key.as_deref(), &headers)
            .and_then(|endpoint| {
                endpoint.with_transport(TransportOptions {
                    extra_roots,
                    insecure: args.insecure,
                    proxies,
                })
            })
            .map_err(usage)?;

        if args.monitor_interval < Duration::from_millis(200) {
            return Err(usage(
                "--monitor-interval must be at least 200ms (CPU use is measured between two samples)",
            ));
        }
        if args.report_interval < Duration::from_secs(1) {
            return Err(usage("--report-interval must be at least 1s"));
        }
        if let Some(model) = &args.model {
            if model.trim().is_empty() {
                return Err(usage(
                    "--model is empty; give a model name or leave it out to ask the server",
                ));
            }
        }

        let proxy = endpoint.connector().proxy().map(|p| p.address());
        Ok(Self {
            url: endpoint.base_url.clone(),
            model: args.model,
            endpoint,
            api_key_set: api_key.is_some(),
            extra_header_names: headers.iter().map(|(n, _)| n.clone()).collect(),
            ca_cert: args.ca_cert,
            insecure: args.insecure,
            proxy,
            api: args.endpoint,
            tests,
            mode,
            prompt_chars: args.prompt_length,
            max_tokens: args.tokens_to_generate,
            same_prompt: args.same_prompt,
            ignore_eos: args.ignore_eos,
            continuous_usage: args.continuous_usage,
            extra_body: args.extra_body.unwrap_or_default(),
            image_path: image.as_ref().map(|_| args.image_path.clone()),
            image,
            multimodal_text: args.multimodal_text_prompt,
            log_file: args.log_file,
            out_dir: args.out.unwrap_or_else(|| default_out_dir("")),
            warmup: args.warmup,
            report_interval: args.report_interval,
            monitor_interval: args.monitor_interval,
            min_tps: args.min_tps,
            max_error_rate: args.max_error_rate,
            timeouts: Timeouts {
                connect: args.connect_timeout,
                ttft: args.ttft_timeout,
                idle: args.idle_timeout,
                request: args.request_timeout,
            },
            drain_timeout: args.drain_timeout,
            threads: args.threads,
            server_in_process: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::Parser;

    fn config(args: &[&str]) -> Result<RunConfig, UsageError> {
        let mut argv = vec!["llm-bench"];
        argv.extend_from_slice(args);
        let argv = crate::cli::legacy::normalize(
            argv.into_iter().map(Into::into).collect(),
            &<Cli as clap::CommandFactory>::command(),
        );
        let args = Cli::try_parse_from(argv).map_err(|e| UsageError(e.to_string()))?.run;
        RunConfig::from_args(args, ProxyEnv::default())
    }

    #[test]
    fn defaults_are_the_originals() {
        let c = config(&[]).unwrap();
        assert_eq!(c.tests, vec![TestKind::Input, TestKind::Output]);
        assert_eq!(c.mode.concurrencies(), (10..=200).step_by(10).collect::<Vec<_>>());
        assert_eq!((c.prompt_chars, c.max_tokens), (100, 100));
        assert_eq!(c.log_file, PathBuf::from("llm-bench.log"));
    }

    #[test]
    fn seed_step_and_stress_lines() {
        let c = config(&[
            "-i", "-o", "-st", "10", "-et", "300", "-ts", "10", "-pp", "500", "-tg", "500", "-l", "x.log",
        ])
        .unwrap();
        assert_eq!(c.mode.concurrencies().len(), 30);
        assert_eq!((c.prompt_chars, c.max_tokens), (500, 500));
        let c = config(&["-d", "8", "-st", "300", "-pp", "500", "-tg", "500"]).unwrap();
        match c.mode {
            Mode::Stress { concurrency, duration } => {
                assert_eq!((concurrency, duration), (300, Duration::from_secs(8 * 3600)))
            }
            other => panic!("{other:?}"),
        }
        let c = config(&["--duration", "90s", "--start_threads", "3"]).unwrap();
        assert!(matches!(c.mode, Mode::Stress { concurrency: 3, .. }));
    }

    #[test]
    fn mistakes_are_usage_errors() {
        let err = |args: &[&str]| config(args).unwrap_err().0;
        assert!(err(&["-st", "10", "-et", "5"]).contains("smaller than"));
        assert!(err(&["-ts", "0"]).contains("at least 1"));
        assert!(err(&["-st", "0"]).contains("at least 1"));
        assert!(err(&["-mm", "-ip", "/nonexistent/x.jpg"]).contains("does not exist"));
        assert!(err(&["-u", "localhost:8000/v1"]).contains("no scheme"));
        assert!(err(&["-d", "1", "--duration", "1h"]).contains("not both"));
        assert!(err(&["--warmup", "5s"]).contains("--step-duration"));
        assert!(err(&["--step-duration", "5s", "--warmup", "5s"]).contains("shorter"));
        assert!(err(&["-H", "novalue"]).contains("Name: value"));
        assert!(err(&["-mm", "--endpoint", "completions"]).contains("chat endpoint"));
    }

    #[test]
    fn proxy_is_recorded_without_its_credentials() {
        let argv = ["llm-bench", "-u", "http://10.9.8.7:8000/v1"];
        let args = Cli::try_parse_from(argv).unwrap().run;
        let proxies = ProxyEnv::from_lookup(|name| (name == "http_proxy").then(|| "http://me:pa55w0rd@gw:3128".into()));
        let c = RunConfig::from_args(args, proxies).unwrap();
        assert_eq!(c.proxy.as_deref(), Some("gw:3128"));
        let json = serde_json::to_string(&c).unwrap();
        assert!(
            !json.contains("pa55w0rd") && !format!("{c:?}").contains("pa55w0rd"),
            "{json}"
        );
    }

    #[test]
    fn config_json_has_no_secret() {
        let c = config(&["--api-key", "sk-topsecret", "-H", "X-Token: hush"]).unwrap();
        let json = serde_json::to_string(&c).unwrap();
        assert!(!json.contains("sk-topsecret") && !json.contains("hush"), "{json}");
        assert!(c.api_key_set);
    }
}
