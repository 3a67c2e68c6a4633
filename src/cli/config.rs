//! The validated run configuration. Everything a user can get wrong is caught here, before any
//! load is sent, and reported as one sentence.

use super::{CapacityArgs, RunArgs, SearchAxis, SloFrom};
use crate::client::connect::TransportOptions;
use crate::client::proxy::ProxyEnv;
use crate::client::{tls, Endpoint, Timeouts};
use crate::i18n::{tr, Msg};
use crate::load::{Arrival, LoadAxis, LoadPoint, Pacing, StepPlan, Stop};
use crate::metrics::slo::Slo;
use crate::workload::plan::PromptPlan;
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
    /// One step per load point, in order: a concurrency sweep (-st/-et/-ts) or a rate sweep
    /// (`--rate`). `stop` None: the seed's step, one request per connection.
    Step { points: Vec<LoadPoint>, stop: Option<Stop> },
    /// One load point for a duration, reported per interval.
    Stress {
        point: LoadPoint,
        #[serde(serialize_with = "secs")]
        duration: Duration,
    },
    /// `llm-bench capacity`: probes chosen by the search, each a step measured by `stop`.
    Capacity(CapacitySpec),
}

/// What `llm-bench capacity` searches.
#[derive(Debug, Clone, Serialize)]
pub struct CapacitySpec {
    pub by: LoadAxis,
    pub min: f64,
    pub max: f64,
    /// Bisection ends when fail/pass − 1 is at most this.
    pub precision: f64,
    /// A probe with per-request thresholds passes when at least this share of its requests
    /// were good (percent).
    pub attainment_pct: f64,
    pub stop: Stop,
}

/// How every step's load is shaped besides its load point.
#[derive(Debug, Clone, Serialize)]
pub struct LoadSettings {
    pub arrival: Arrival,
    pub seed: u64,
    pub max_concurrency: Option<u32>,
    #[serde(serialize_with = "secs")]
    pub ramp_up: Duration,
    #[serde(serialize_with = "secs")]
    pub warmup: Duration,
    pub max_backlog: Option<u64>,
    pub stop_when_saturated: bool,
    /// `--shard I/N`: this process runs its share of every step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<crate::load::Shard>,
}

impl LoadSettings {
    /// The plan of one step at `point` (on a shard: its share of it).
    pub fn plan(&self, point: LoadPoint, stop: Stop) -> StepPlan {
        let shard = self.shard;
        let share_u32 = |n: u32| shard.map_or(n, |s| s.concurrency(n));
        let pacing = match point {
            LoadPoint::Concurrency(concurrency) => Pacing::Closed {
                concurrency: share_u32(concurrency),
            },
            LoadPoint::Rate(rate) => Pacing::Open {
                rate: shard.map_or(rate, |s| s.rate(rate)),
                arrival: self.arrival.clone(),
                seed: shard.map_or(self.seed, |s| s.seed(self.seed)),
                max_concurrency: self.max_concurrency.map(|m| share_u32(m).max(1)),
            },
        };
        let stop = match (stop, shard) {
            (Stop::Requests(n), Some(s)) => Stop::Requests(s.requests(n)),
            (stop, _) => stop,
        };
        StepPlan {
            point,
            pacing,
            ramp_up: self.ramp_up,
            warmup: self.warmup,
            stop,
            max_backlog: self.max_backlog.map(|b| shard.map_or(b, |s| s.requests(b).max(1))),
            release_at: None,
        }
    }
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl Mode {
    /// The load point of every step, in order (a capacity search's are not known ahead).
    pub fn points(&self) -> Vec<LoadPoint> {
        match self {
            Mode::Step { points, .. } => points.clone(),
            Mode::Stress { point, .. } => vec![*point],
            Mode::Capacity(_) => Vec::new(),
        }
    }

    /// Concurrency of every closed-loop step, in order.
    pub fn concurrencies(&self) -> Vec<u32> {
        self.points().iter().filter_map(|p| p.concurrency()).collect()
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
    /// `--isl`, `--dataset`, `--prefix-groups`, `--turns`, `--image-size`, …
    pub prompts: PromptPlan,
    /// A load flag chose the pace (`--rate`, a duration, `capacity`): a dataset's timestamps
    /// are then not replayed.
    #[serde(skip)]
    pub load_chosen: bool,
    /// Said in the header: flags that lost to others (`--isl` over `-pp`).
    #[serde(skip)]
    pub notices: Vec<String>,
    /// `--embed-batch`: inputs per embeddings request.
    pub embed_batch: u32,
    pub log_file: PathBuf,
    pub out_dir: PathBuf,
    /// `--csv-requests`: requests.csv from requests.jsonl when the run ends.
    pub csv_requests: bool,
    /// `--export FORMAT FILE`: the step results in another tool's format, when the run ends.
    pub export: Option<crate::report::export::Export>,
    pub load: LoadSettings,
    /// `--slo`: latency objectives, judged per request (goodput) and per step.
    pub slo: Option<Slo>,
    /// `--slo-from send`: judge open-loop latencies from the actual send, not the intended one.
    pub slo_from_send: bool,
    #[serde(serialize_with = "secs")]
    pub report_interval: Duration,
    #[serde(serialize_with = "secs")]
    pub monitor_interval: Duration,
    /// `--server-metrics`, `--gpu-metrics`, `--metrics-interval`.
    pub telemetry: crate::monitor::TelemetrySettings,
    /// `--run-id`, `--shard`, `--start-at` (docs/distributed.md).
    pub distributed: super::distributed::Distributed,
    pub min_tps: Option<f64>,
    pub max_error_rate: Option<f64>,
    /// `--repeat N`: every step of a sweep runs N times (1: once, no repeat keys).
    pub repeat: u32,
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

/// `--export FORMAT FILE`, checked before any load: a known format, a folder that exists.
pub fn export_from(args: &crate::cli::OutputFileArgs) -> Result<Option<crate::report::export::Export>, UsageError> {
    use crate::i18n::{tr, Msg};
    use crate::report::export::{Export, ExportFormat};
    let Some([format, file]) = args.export.as_deref() else {
        return Ok(None);
    };
    let format = ExportFormat::parse(format).ok_or_else(|| {
        let formats: Vec<&str> = ExportFormat::ALL.iter().map(|f| f.name()).collect();
        usage(tr(
            Msg::ExportUnknownFormat,
            &[("format", &format.as_str()), ("formats", &formats.join(", "))],
        ))
    })?;
    let path = PathBuf::from(file);
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(usage(tr(
            Msg::ExportNoFolder,
            &[("file", &path.display()), ("dir", &dir.display())],
        )));
    }
    Ok(Some(Export { format, path }))
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

/// The tests to run: those chosen, or the original's two text tests when none was.
fn tests_from(args: &RunArgs) -> Vec<TestKind> {
    let chosen = [
        (args.input, TestKind::Input),
        (args.output, TestKind::Output),
        (args.multimodal, TestKind::Multimodal),
    ];
    let tests: Vec<TestKind> = chosen.iter().filter(|(on, _)| *on).map(|&(_, t)| t).collect();
    if tests.is_empty() {
        vec![TestKind::Input, TestKind::Output]
    } else {
        tests
    }
}

/// With `--endpoint embeddings` the text tests send embeddings requests, the same request for
/// both: one of them runs (`input` unless `-o` was given), and there is no multimodal test.
fn embeddings_tests(args: &RunArgs, tests: Vec<TestKind>) -> Result<Vec<TestKind>, UsageError> {
    if ApiKind::from(args.endpoint) != ApiKind::Embeddings {
        if args.embed_batch != 1 {
            return Err(usage(tr(Msg::EmbedBatchNeedsEmbeddings, &[])));
        }
        return Ok(tests);
    }
    if args.workload.turns.is_some() {
        return Err(usage(tr(Msg::EmbeddingsNoTurns, &[])));
    }
    if tests.contains(&TestKind::Multimodal) {
        return Err(usage(tr(Msg::EmbeddingsNoMultimodal, &[])));
    }
    if args.input && args.output {
        return Err(usage(tr(Msg::EmbeddingsOneTest, &[])));
    }
    if let Some(slo) = args.slo.as_deref() {
        let slo = Slo::parse(slo).map_err(usage)?;
        if slo
            .per_request()
            .chain(slo.percentiles())
            .any(|o| o.metric != crate::metrics::slo::SloMetric::E2e)
        {
            return Err(usage(tr(Msg::EmbeddingsSloE2eOnly, &[])));
        }
    }
    Ok(vec![if args.output { TestKind::Output } else { TestKind::Input }])
}

fn stress_duration(args: &RunArgs) -> Result<Option<Duration>, UsageError> {
    match (args.duration, args.duration_hours) {
        (Some(_), h) if h > 0.0 => Err(usage(tr(Msg::DurationTwice, &[]))),
        (Some(d), _) => Ok(Some(d)),
        (None, h) if h > 0.0 => Ok(Some(Duration::from_secs_f64(h * 3600.0))),
        (None, _) => Ok(None),
    }
}

fn shorter_than(warmup: Duration, what: &str, length: Duration) -> Result<(), UsageError> {
    if warmup >= length {
        return Err(usage(tr(
            Msg::WarmupTooLong,
            &[
                ("warmup", &humantime::format_duration(warmup)),
                ("what", &what),
                ("length", &humantime::format_duration(length)),
            ],
        )));
    }
    Ok(())
}

/// Step or stress mode, and their load points.
fn mode_from(args: &RunArgs) -> Result<Mode, UsageError> {
    let rates = args.rate.clone().map(|r| r.0).unwrap_or_default();
    if let Some(duration) = stress_duration(args)? {
        if args.step_duration.is_some() {
            return Err(usage(tr(Msg::StepDurationStepOnly, &[])));
        }
        if args.requests.is_some() {
            return Err(usage(tr(Msg::RequestsStepOnly, &[])));
        }
        shorter_than(args.warmup + args.ramp_up, &tr(Msg::WhatStressRun, &[]), duration)?;
        let point = match rates.as_slice() {
            [] => LoadPoint::Concurrency(args.start_threads),
            [rate] => LoadPoint::Rate(*rate),
            _ => return Err(usage(tr(Msg::StressOneRate, &[]))),
        };
        return Ok(Mode::Stress { point, duration });
    }
    let points: Vec<LoadPoint> = if rates.is_empty() {
        if args.end_threads < args.start_threads {
            return Err(usage(tr(
                Msg::EndBelowStart,
                &[("end", &args.end_threads), ("start", &args.start_threads)],
            )));
        }
        (args.start_threads..=args.end_threads)
            .step_by(args.step_threads as usize)
            .map(LoadPoint::Concurrency)
            .collect()
    } else {
        rates.iter().map(|&r| LoadPoint::Rate(r)).collect()
    };
    Ok(Mode::Step {
        points,
        stop: step_stop(args, !rates.is_empty())?,
    })
}

/// How each step ends: a number of requests, a duration, or (closed loop) one request per
/// connection.
fn step_stop(args: &RunArgs, open: bool) -> Result<Option<Stop>, UsageError> {
    match (args.requests, args.step_duration) {
        (Some(_), Some(_)) => Err(usage(tr(Msg::RequestsOrDurationWhy, &[]))),
        (Some(n), None) => Ok(Some(Stop::Requests(n))),
        (None, Some(d)) => {
            shorter_than(args.warmup, "--step-duration", d)?;
            Ok(Some(Stop::For(d)))
        }
        (None, None) if open => Err(usage(tr(Msg::RateStepNeedsLength, &[]))),
        (None, None) if !args.warmup.is_zero() => Err(usage(tr(Msg::WarmupNeedsLength, &[]))),
        (None, None) if !args.ramp_up.is_zero() => Err(usage(tr(Msg::RampUpNeedsLength, &[]))),
        (None, None) => Ok(None),
    }
}

fn load_settings_from(args: &RunArgs) -> Result<LoadSettings, UsageError> {
    // A dataset may be a trace, replayed open loop.
    let open = args.rate.is_some() || args.workload.dataset.is_some();
    if !open {
        for (given, flag) in [
            (args.max_concurrency.is_some(), "--max-concurrency"),
            (args.arrival.is_some(), "--arrival"),
            (args.burstiness.is_some(), "--burstiness"),
            (args.max_backlog.is_some(), "--max-backlog"),
            (args.stop_when_saturated, "--stop-when-saturated"),
        ] {
            if given {
                return Err(usage(tr(Msg::OpenLoopFlag, &[("flag", &flag)])));
            }
        }
    }
    let arrival = crate::load::arrivals::parse_arrival(
        args.arrival
            .as_deref()
            .unwrap_or(if args.burstiness.is_some() { "gamma" } else { "poisson" }),
        args.burstiness,
    )
    .map_err(usage)?;
    Ok(LoadSettings {
        arrival,
        seed: args.seed,
        max_concurrency: args.max_concurrency,
        ramp_up: args.ramp_up,
        warmup: args.warmup,
        max_backlog: args.max_backlog,
        stop_when_saturated: args.stop_when_saturated,
        shard: None,
    })
}

fn endpoint_from(args: &RunArgs, proxies: ProxyEnv) -> Result<(Endpoint, bool, Vec<String>), UsageError> {
    let api_key = args
        .api_key
        .clone()
        .filter(|k| !k.is_empty())
        .or_else(|| std::env::var("LLM_BENCH_API_KEY").ok().filter(|k| !k.is_empty()));
    let mut headers = Vec::new();
    for raw in &args.header {
        let (name, value) = raw
            .split_once(':')
            .ok_or_else(|| usage(tr(Msg::HeaderFormat, &[("got", &raw.split(':').next().unwrap_or(""))])))?;
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
    Ok((
        endpoint,
        api_key.is_some(),
        headers.into_iter().map(|(n, _)| n).collect(),
    ))
}

/// `--repeat` repeats the steps of a sweep; a stress run and a capacity search have none to
/// repeat (docs/metrics.md, "Repeats").
fn check_repeat(repeat: u32, mode: &Mode) -> Result<(), UsageError> {
    let refusal = match mode {
        _ if repeat <= 1 => return Ok(()),
        Mode::Step { .. } => return Ok(()),
        Mode::Stress { .. } => Msg::RepeatWithStress,
        Mode::Capacity(_) => Msg::RepeatWithCapacity,
    };
    Err(usage(tr(refusal, &[])))
}

fn check_intervals(args: &RunArgs) -> Result<(), UsageError> {
    if args.monitor_interval < Duration::from_millis(200) {
        return Err(usage(tr(Msg::MonitorIntervalTooShort, &[])));
    }
    if args.report_interval < Duration::from_secs(1) {
        return Err(usage(tr(Msg::ReportIntervalTooShort, &[])));
    }
    if args.model.as_ref().is_some_and(|m| m.trim().is_empty()) {
        return Err(usage(tr(Msg::ModelEmpty, &[])));
    }
    Ok(())
}

impl RunConfig {
    /// A dataset lets the open-loop flags through validation (it may be a trace); once it is
    /// known not to be replayed, a closed loop has no use for them: one line, exit 2.
    pub fn check_closed_loop_flags(&self) -> Result<(), UsageError> {
        let closed = match &self.mode {
            Mode::Step { points, .. } => points.iter().all(|p| p.concurrency().is_some()),
            Mode::Stress { point, .. } => point.concurrency().is_some(),
            Mode::Capacity(_) => false,
        };
        if !closed || self.prompts.dataset.is_none() {
            return Ok(());
        }
        for (given, flag) in [
            (self.load.max_concurrency.is_some(), "--max-concurrency"),
            (self.load.max_backlog.is_some(), "--max-backlog"),
            (self.load.stop_when_saturated, "--stop-when-saturated"),
        ] {
            if given {
                return Err(usage(tr(Msg::OpenLoopFlagNoTimestamps, &[("flag", &flag)])));
            }
        }
        Ok(())
    }

    /// Replays a trace: one open-loop step that sends each row at its recorded time (divided
    /// by `--trace-speed`), keyed by the trace's mean rate.
    /// Replays `times`; `whole` is the whole trace's requests and mean rate when this process is
    /// one shard of it (`times` then are its rows, and its steps are labelled with the whole's).
    pub fn replay(&mut self, times: crate::load::arrivals::TraceTimes, whole: Option<(u64, f64)>) {
        let (requests, rate) = whole.unwrap_or((times.len() as u64, times.mean_rate()));
        let rate = if rate.is_finite() && rate > 0.0 {
            rate
        } else {
            requests as f64
        };
        self.mode = Mode::Step {
            points: vec![LoadPoint::Rate(rate)],
            stop: Some(Stop::Requests(requests)),
        };
        self.load.arrival = Arrival::Trace { times };
    }

    /// Validates `args`; `proxies` are the proxy variables to honour (the process's, or none).
    pub fn from_args(args: RunArgs, proxies: ProxyEnv) -> Result<Self, UsageError> {
        let tests = tests_from(&args);
        let mode = mode_from(&args)?;
        Self::build(args, proxies, tests, mode)
    }

    /// Validates the arguments of `llm-bench capacity`.
    pub fn for_capacity(cap: CapacityArgs, proxies: ProxyEnv) -> Result<Self, UsageError> {
        let args = cap.run;
        if args.rate.is_some() || stress_duration(&args)?.is_some() {
            return Err(usage(tr(Msg::CapacityOwnPoints, &[])));
        }
        if args.slo.is_none() {
            return Err(usage(tr(Msg::CapacityNeedsSlo, &[])));
        }
        let tests = tests_from(&args);
        if tests.len() > 1 && (args.input || args.output || args.multimodal) {
            return Err(usage(tr(Msg::CapacityOneTest, &[])));
        }
        let tests = if tests.len() > 1 { vec![TestKind::Output] } else { tests };
        let by = match cap.by {
            SearchAxis::Rate => LoadAxis::Rate,
            SearchAxis::Concurrency => LoadAxis::Concurrency,
        };
        if by == LoadAxis::Concurrency && args.max_concurrency.is_some() {
            return Err(usage(tr(Msg::CapacityMaxConcurrencyByRate, &[])));
        }
        let (default_min, default_max) = match by {
            LoadAxis::Rate => (1.0, 1000.0),
            LoadAxis::Concurrency => (1.0, 1024.0),
        };
        let (mut min, mut max) = (cap.min.unwrap_or(default_min), cap.max.unwrap_or(default_max));
        if by == LoadAxis::Concurrency {
            // Probes are whole connections.
            min = min.round().max(1.0);
            max = max.round().max(1.0);
        }
        if max < min {
            return Err(usage(tr(Msg::MaxBelowMin, &[("max", &max), ("min", &min)])));
        }
        let stop = match (args.requests, args.step_duration) {
            (Some(_), Some(_)) => return Err(usage(tr(Msg::RequestsOrDuration, &[]))),
            (Some(n), None) => Stop::Requests(n),
            (None, Some(d)) => Stop::For(d),
            (None, None) => Stop::For(Duration::from_secs(10)),
        };
        if let Stop::For(d) = stop {
            shorter_than(args.warmup, &tr(Msg::WhatEachProbe, &[]), d)?;
        }
        let mode = Mode::Capacity(CapacitySpec {
            by,
            min,
            max,
            precision: cap.precision,
            attainment_pct: 100.0 * cap.attainment,
            stop,
        });
        let mut args = args;
        if by == LoadAxis::Rate {
            // The probes are open loop: the load flags for rates apply.
            args.rate = Some(super::parse::Rates(vec![min]));
        }
        let mut config = Self::build(args, proxies, tests, mode)?;
        if config.load.warmup.is_zero() {
            if let Stop::For(d) = stop {
                config.load.warmup = (d / 5).min(Duration::from_secs(5));
            }
        }
        Ok(config)
    }

    fn build(args: RunArgs, proxies: ProxyEnv, tests: Vec<TestKind>, mode: Mode) -> Result<Self, UsageError> {
        let tests = embeddings_tests(&args, tests)?;
        if tests.contains(&TestKind::Multimodal) && ApiKind::from(args.endpoint) == ApiKind::Completions {
            return Err(usage(tr(Msg::MultimodalNeedsChat, &[])));
        }
        let image = if tests.contains(&TestKind::Multimodal) && args.workload.image_size.is_none() {
            Some(ImageData::load(&args.image_path).map_err(usage)?)
        } else {
            None
        };
        let load = load_settings_from(&args)?;
        let prompts = args.workload.plan(args.seed)?;
        let load_chosen = args.rate.is_some()
            || args.duration.is_some()
            || args.duration_hours > 0.0
            || args.step_duration.is_some()
            || matches!(mode, Mode::Capacity(_));
        let mut notices = Vec::new();
        if let (Some(_), Some(chars)) = (prompts.isl, args.prompt_length) {
            notices.push(tr(Msg::IslOverridesPp, &[("chars", &chars)]));
        }
        if let (Some(_), true) = (&prompts.dataset, args.prompt_length.is_some()) {
            notices.push(tr(Msg::DatasetOverridesPp, &[]));
        }
        if prompts.images.is_some() && !tests.contains(&TestKind::Multimodal) {
            return Err(usage(tr(Msg::ImageSizeNeedsMultimodal, &[])));
        }
        let slo = args.slo.as_deref().map(Slo::parse).transpose().map_err(usage)?;
        check_repeat(args.repeat, &mode)?;
        let (endpoint, api_key_set, extra_header_names) = endpoint_from(&args, proxies.clone())?;
        check_intervals(&args)?;
        let telemetry = super::telemetry::settings(&args, &endpoint, proxies)?;
        let distributed = super::distributed::settings(&args.distributed, args.seed)?;
        if distributed.shard.is_some() && matches!(mode, Mode::Capacity(_)) {
            return Err(usage(tr(Msg::CapacityOnShards, &[])));
        }
        let load = LoadSettings {
            shard: distributed.shard,
            ..load
        };
        let proxy = endpoint.connector().proxy().map(|p| p.address());
        Ok(Self {
            url: endpoint.base_url.clone(),
            model: args.model,
            endpoint,
            api_key_set,
            extra_header_names,
            ca_cert: args.ca_cert,
            insecure: args.insecure,
            proxy,
            api: args.endpoint.into(),
            tests,
            mode,
            prompt_chars: args.prompt_length.unwrap_or(100),
            max_tokens: args.tokens_to_generate,
            same_prompt: args.same_prompt,
            ignore_eos: args.ignore_eos,
            continuous_usage: args.continuous_usage,
            extra_body: args.extra_body.unwrap_or_default(),
            image_path: image.as_ref().map(|_| args.image_path.clone()),
            image,
            multimodal_text: args.multimodal_text_prompt,
            prompts,
            notices,
            load_chosen,
            embed_batch: args.embed_batch,
            log_file: args.log_file,
            out_dir: args.out.unwrap_or_else(|| default_out_dir("")),
            csv_requests: args.files.csv_requests,
            export: export_from(&args.files)?,
            load,
            slo,
            slo_from_send: args.slo_from == SloFrom::Send,
            report_interval: args.report_interval,
            monitor_interval: args.monitor_interval,
            telemetry,
            distributed,
            min_tps: args.min_tps,
            max_error_rate: args.max_error_rate,
            repeat: args.repeat,
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

    /// The SLO judge of every step, when `--slo` was given.
    pub fn slo_judge(&self) -> Option<crate::metrics::step::SloJudge> {
        self.slo.as_ref().map(|slo| crate::metrics::step::SloJudge {
            slo: std::sync::Arc::new(slo.clone()),
            from_send: self.slo_from_send,
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
            Mode::Stress { point, duration } => {
                assert_eq!(
                    (point, duration),
                    (LoadPoint::Concurrency(300), Duration::from_secs(8 * 3600))
                )
            }
            other => panic!("{other:?}"),
        }
        let c = config(&["--duration", "90s", "--start_threads", "3"]).unwrap();
        assert!(matches!(
            c.mode,
            Mode::Stress {
                point: LoadPoint::Concurrency(3),
                ..
            }
        ));
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
        assert!(err(&["--repeat", "3", "--duration", "10s"]).contains("--repeat"));
        assert!(err(&["--repeat", "0"]).contains("--repeat"));
        assert_eq!(config(&["--repeat", "3"]).unwrap().repeat, 3);
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
