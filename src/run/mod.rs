//! One benchmark run, from validated config to summary: pre-flight, then step or stress mode,
//! then recommendations. Results are on disk at every stage.

mod capacity;
pub mod clock;
mod files;
pub mod merge;
mod preflight;
mod prompts;
mod pump;
pub mod rebuild;
mod steps;
pub use capacity::Capacity;
mod schedule;
mod stress;
mod telemetry;

use crate::cli::config::{Mode, RunConfig, UsageError};
use crate::i18n::{tr, Msg};
use crate::load::{LiveCounters, LoadContext, LoadReport, StopSignals};
use crate::metrics::{advice, StepStats};
use crate::monitor::health::ClientWatch;
use crate::monitor::Monitor;
use crate::report::live::{LiveBoard, LiveView};
use crate::report::summary::{now_rfc3339, ClientReport, Environment, MonitorReport, StressReport};
use crate::report::{format, RecordWriter, Reporter, Summary};
use crate::workload::Workload;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Complete,
    Interrupted,
    /// A step exceeded `--max-error-rate`.
    ErrorBudget,
    /// Not one request succeeded.
    NothingSucceeded,
    /// The run finished, but requests.jsonl or summary.json could not be written completely
    /// (a full disk, a results folder removed during the run).
    ResultsNotSaved,
    /// A capacity search found that even the lowest load fails the SLO.
    SloUnmet,
    /// `llm-bench compare`: a `--fail-if` threshold was crossed by more than noise.
    ThresholdCrossed,
}

impl Outcome {
    pub fn status(self) -> &'static str {
        match self {
            Outcome::Complete => "complete",
            Outcome::Interrupted => "interrupted",
            Outcome::ErrorBudget => "stopped_error_budget",
            Outcome::NothingSucceeded => "failed",
            Outcome::ResultsNotSaved => "results_not_saved",
            Outcome::SloUnmet => "slo_unmet",
            Outcome::ThresholdCrossed => "threshold_crossed",
        }
    }
}

/// Shared pieces of a run.
pub(crate) struct RunContext {
    pub config: RunConfig,
    pub reporter: Arc<Reporter>,
    pub writer: RecordWriter,
    pub workload: Arc<Workload>,
    pub monitor: Arc<Monitor>,
    pub client_watch: Arc<ClientWatch>,
    pub live: Arc<LiveCounters>,
    pub signals: StopSignals,
    pub run_start: Instant,
    pub ids: Arc<AtomicU64>,
    /// Multi-turn session numbers, run-wide.
    pub session_ids: Arc<AtomicU64>,
    pub summary: Summary,
    /// The last write of summary.json succeeded.
    pub summary_saved: bool,
    /// Each measured step's latency histograms, lossless, for `histograms.jsonl` (what
    /// `llm-bench merge` can add up).
    pub(super) histograms: Vec<merge::HistogramLine>,
    /// `--start-at`: when each step starts.
    pub(super) schedule: Option<schedule::Schedule>,
    /// On a terminal: what the live view draws from, and the task drawing it.
    pub board: Option<Arc<LiveBoard>>,
    pub live_view: Option<LiveView>,
}

impl RunContext {
    /// A step's slot on the `--start-at` schedule, if there is one: the plan is to release at
    /// it, and this returns when its connections are to be opened.
    pub(super) async fn take_slot(&mut self, plan: &mut crate::load::StepPlan) -> Option<schedule::Slot> {
        let schedule = self.schedule.as_mut()?;
        let Some(slot) = schedule.take(plan) else {
            if schedule.first_unaligned() {
                self.reporter
                    .warn(&tr(Msg::StepsNotAligned, &[("point", &plan.point.in_words())]));
            }
            return None;
        };
        plan.release_at = Some(slot.at);
        self.announce(slot);
        schedule::connect_ahead(slot).await;
        Some(slot)
    }

    /// Before waiting for the first step's slot: says when it starts, if that is a while off.
    fn announce(&self, slot: schedule::Slot) {
        let wait = slot.at.duration_since(std::time::SystemTime::now()).unwrap_or_default();
        if slot.first && wait > std::time::Duration::from_millis(500) {
            self.reporter.line(&tr(
                Msg::StartWaiting,
                &[
                    ("at", &schedule::rfc3339_ms(slot.at)),
                    (
                        "wait",
                        &humantime::format_duration(std::time::Duration::from_millis(wait.as_millis() as u64)),
                    ),
                ],
            ));
        }
    }

    /// After a step released at its slot: how late it was (ms), said when its connections were
    /// not ready in time (the first step: this shard was late; a later one: the previous step
    /// ran past its slot), or when it was woken late although ready.
    pub(super) fn lateness(&self, slot: schedule::Slot, point: crate::load::LoadPoint, report: &LoadReport) -> f64 {
        let late_ms = report.release_lateness_ms.unwrap_or(0.0);
        let late = humantime::format_duration(std::time::Duration::from_millis(late_ms as u64));
        if report.ready_late && late_ms > schedule::LATE_MS {
            let (msg, args): (Msg, [(&str, &dyn std::fmt::Display); 2]) = if slot.first {
                (
                    Msg::StartLate,
                    [("late", &late), ("at", &schedule::rfc3339_ms(slot.at))],
                )
            } else {
                (Msg::StepLate, [("point", &point.in_words()), ("late", &late)])
            };
            self.reporter.warn(&tr(msg, &args));
        } else if late_ms > schedule::WAKE_LATE_MS {
            self.reporter.warn(&tr(
                Msg::StepWokenLate,
                &[("point", &point.in_words()), ("late", &late)],
            ));
        }
        late_ms
    }

    /// What builds a step's requests: its tests, the workload, sessions when asked.
    pub fn request_maker(&self, tests: Vec<crate::workload::TestKind>) -> crate::load::RequestMaker {
        crate::load::RequestMaker::new(self.workload.clone(), tests, self.ids.clone())
            .on_shard(self.config.load.shard)
            .with_sessions(
                self.config.prompts.sessions,
                self.config.prompts.seed,
                self.session_ids.clone(),
            )
    }

    /// What a load needs from the run, with a fresh channel for its records.
    pub fn load_context(&self) -> (LoadContext, mpsc::UnboundedReceiver<crate::client::RequestRecord>) {
        let (records, rx) = mpsc::unbounded_channel();
        let load = LoadContext {
            endpoint: Arc::new(self.config.endpoint.clone()),
            timeouts: self.config.timeouts,
            run_start: self.run_start,
            live: self.live.clone(),
            records,
            signals: self.signals.clone(),
            clock: Default::default(),
        };
        (load, rx)
    }

    /// The histograms of `steps`, in their order (the latest measured of each key: a capacity
    /// search may measure a point twice).
    fn histograms_of(&self, steps: &[StepStats]) -> Vec<&merge::HistogramLine> {
        steps
            .iter()
            .filter_map(|s| {
                self.histograms
                    .iter()
                    .rev()
                    .find(|h| (h.load, h.test, h.repeat) == (s.load, s.test, s.repeat))
            })
            .collect()
    }

    /// Writes summary.json as it stands (a checkpoint or the final one); `steps` come with
    /// their scaling efficiency filled in.
    pub fn save_summary(&mut self, steps: &[StepStats], stress: Option<StressReport>) {
        self.summary.steps = steps.to_vec();
        self.summary.repeats = crate::metrics::repeat::repeat_stats(steps);
        self.summary.client_bound = steps.iter().any(|s| s.client_bound)
            || stress
                .iter()
                .flat_map(|r| &r.intervals)
                .flat_map(|i| &i.tests)
                .any(|s| s.client_bound);
        self.summary.stress = stress;
        if let Some(client) = self.summary.client.as_mut() {
            client.cpu_s = crate::monitor::process_cpu_seconds().unwrap_or(0.0);
            client.events = self.live.events.load(Ordering::Relaxed);
            client.cpu_us_per_event = (client.events > 0).then(|| 1e6 * client.cpu_s / client.events as f64);
            client.peak_rss_mb = crate::monitor::process_peak_rss_mb();
        }
        self.summary.monitor = MonitorReport::of(&self.monitor);
        self.monitor.flush();
        let written = self
            .summary
            .write(&self.config.out_dir)
            .and_then(|()| merge::write_histogram_lines(&self.config.out_dir, &self.histograms_of(steps)));
        match written {
            Ok(()) => self.summary_saved = true,
            Err(problem) => {
                self.summary_saved = false;
                // Said once on the console; kept in the notes in case a later write succeeds.
                self.reporter.warn_results_lost(&problem);
                if !self.summary.notes.contains(&problem) {
                    self.summary.notes.push(problem);
                }
            }
        }
    }
}

/// Makes the results folder and its `requests.jsonl`; with the guard that removes them again
/// if the run stops before any load (unreachable server, bad key, unknown model), so that no
/// empty results are left behind (the log keeps its line).
fn prepare_out_dir(config: &RunConfig) -> Result<(RecordWriter, EmptyResults), UsageError> {
    let dir = &config.out_dir;
    if dir.is_file() {
        return Err(UsageError(tr(Msg::OutIsFile, &[("dir", &dir.display())])));
    }
    // The folders this run makes (the results folder and any parent that is not there yet).
    let created: Vec<std::path::PathBuf> = dir
        .ancestors()
        .take_while(|p| !p.as_os_str().is_empty() && !p.exists())
        .map(std::path::Path::to_path_buf)
        .collect();
    std::fs::create_dir_all(dir)
        .map_err(|e| UsageError(tr(Msg::OutUncreatable, &[("dir", &dir.display()), ("error", &e)])))?;
    let writer = RecordWriter::create(&dir.join("requests.jsonl"))
        .map_err(|e| UsageError(tr(Msg::OutUnwritable, &[("error", &e)])))?;
    let cleanup = EmptyResults {
        dir: dir.clone(),
        created,
        armed: true,
    };
    Ok((writer, cleanup))
}

async fn next_interrupt(terminate: &mut Option<tokio::signal::unix::Signal>) {
    match terminate {
        Some(term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        None => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Ctrl-C or SIGTERM once: stop sending, let requests in flight finish. Twice: stop now.
fn spawn_signal_handler(signals: StopSignals, reporter: Arc<Reporter>, live: Arc<LiveCounters>) {
    tokio::spawn(async move {
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        next_interrupt(&mut terminate).await;
        signals.stop.cancel();
        reporter.line(&tr(
            Msg::RunInterrupted,
            &[
                ("drain", &humantime::format_duration(signals.drain)),
                ("in_flight", &live.in_flight.load(Ordering::Relaxed)),
            ],
        ));
        next_interrupt(&mut terminate).await;
        signals.abort.cancel();
        reporter.line(&tr(Msg::RunStoppingNow, &[]));
    });
}

/// One line each for what changes how the server is reached: an unverified TLS connection, a proxy.
fn announce_transport(config: &RunConfig, reporter: &Reporter) {
    let endpoint = &config.endpoint;
    if config.insecure && endpoint.tls {
        reporter.warn(&tr(Msg::WarnInsecure, &[]));
    } else if (config.insecure || config.ca_cert.is_some()) && !endpoint.tls {
        reporter.warn(&tr(Msg::WarnInsecurePlainHttp, &[]));
    }
    if let Some(proxy) = endpoint.connector().proxy() {
        let how = tr(
            if endpoint.tls {
                Msg::ProxyTunnel
            } else {
                Msg::ProxyForwarded
            },
            &[],
        );
        reporter.line(&tr(
            Msg::ProxyLine,
            &[
                ("proxy", &proxy.address()),
                ("source", &proxy.source),
                ("how", &how),
                ("host", &endpoint.host),
            ],
        ));
    }
}

/// Runs the benchmark described by `config`.
pub async fn run(config: RunConfig) -> anyhow::Result<Outcome> {
    let mut ctx = start(config).await?;
    let (mut steps, stress, outcome) = match ctx.config.mode.clone() {
        Mode::Step { .. } => {
            let (steps, outcome) = steps::run_steps(&mut ctx).await;
            (steps, None, outcome)
        }
        Mode::Stress { point, duration } => {
            let (steps, report, outcome) = stress::run_stress(&mut ctx, point, duration).await;
            (steps, Some(report), outcome)
        }
        Mode::Capacity(spec) => {
            let (steps, capacity, outcome) = capacity::run_capacity(&mut ctx, spec).await;
            ctx.summary.capacity = Some(capacity);
            (steps, None, outcome)
        }
    };
    // The live view goes before the end of the run is printed.
    ctx.live_view = None;
    ctx.reporter.hide_live();
    ctx.monitor.sample();
    ctx.monitor.stop();
    ctx.client_watch.stop();
    advice::fill_scaling_efficiency(&mut steps);
    let (outcome, recommendations) = finish(&mut ctx, &steps, stress, outcome);
    print_end(&ctx, &steps, &recommendations, outcome);
    Ok(files::write_end_of_run_files(&mut ctx, outcome))
}

/// Everything before the load: results folder, log, pre-flight (model, probe), monitor,
/// signal handling, the summary's first fields and the header lines.
async fn start(config: RunConfig) -> anyhow::Result<RunContext> {
    let reporter = Arc::new(Reporter::open(&config.log_file).map_err(UsageError)?);
    let started = start_with(config, reporter.clone()).await;
    if let Err(e) = &started {
        // The log keeps the line the run stopped with.
        reporter.log_only(&format!("llm-bench: {}", tr(Msg::ErrorLine, &[("error", &e)])));
    }
    started
}

async fn start_with(mut config: RunConfig, reporter: Arc<Reporter>) -> anyhow::Result<RunContext> {
    let files = prompts::read_files(&config).await?;
    let (mut writer, mut cleanup) = prepare_out_dir(&config)?;
    reporter.line(&tr(
        Msg::RunHeader,
        &[
            ("version", &env!("CARGO_PKG_VERSION")),
            ("url", &config.endpoint.base_url),
            ("dir", &config.out_dir.display()),
        ],
    ));
    announce_transport(&config, &reporter);
    preflight::check_open_files(&config)?;
    let startup_first_request_ms = crate::monitor::ms_since_process_start();
    let model = preflight::discover_model(&config, &reporter).await?;
    let built = prompts::build(&config, &model, &reporter, files).await?;
    let workload = built.workload;
    match built.trace {
        Some(times) => config.replay(times, built.trace_whole),
        None => config.check_closed_loop_flags()?,
    }
    preflight::probe(&config, &model, &workload, &reporter).await?;

    let sources = telemetry::open_sources(&config, &reporter).await;
    let clock = clock::estimate_for_shard(&config, &reporter).await;

    let run_start = Instant::now();
    let run_start_unix_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .ok();
    let startup_load_ms = crate::monitor::ms_since_process_start();
    let live = Arc::new(LiveCounters::default());
    let monitor = start_monitor(&config, &reporter, run_start, sources, &live);
    let signals = StopSignals {
        stop: CancellationToken::new(),
        abort: CancellationToken::new(),
        drain: config.drain_timeout,
    };
    spawn_signal_handler(signals.clone(), reporter.clone(), live.clone());

    let startup_ms = (startup_first_request_ms, startup_load_ms);
    let summary = running_summary(&config, &model, clock, run_start_unix_s, startup_ms);
    announce_run(&config, &model, &workload, &reporter);
    announce_shard(&config, &reporter);
    let client_watch = Arc::new(ClientWatch::start(config.threads));
    let distributed = &config.distributed;
    let schedule = distributed
        .start_at_time
        .map(|at| schedule::Schedule::new(at, distributed.step_gap));
    writer.stamp_with(distributed.run_id.clone(), distributed.shard.map(|s| s.index));
    let board = reporter
        .is_tty()
        .then(|| Arc::new(LiveBoard::new(live.clone(), run_start.into_std())));
    let live_view = board
        .clone()
        .map(|board| crate::report::live::spawn(board, reporter.clone()));
    Ok(RunContext {
        config,
        reporter,
        writer,
        workload,
        monitor,
        client_watch,
        live,
        signals,
        run_start,
        ids: Arc::new(AtomicU64::new(0)),
        session_ids: Arc::new(AtomicU64::new(0)),
        summary,
        summary_saved: false,
        histograms: Vec::new(),
        schedule,
        board,
        live_view,
    })
    .inspect(|_| cleanup.armed = false)
}

/// The monitor of the run, writing its telemetry into the results folder and counting the
/// load's in-flight requests; started.
fn start_monitor(
    config: &RunConfig,
    reporter: &Reporter,
    run_start: Instant,
    (server_source, gpu_source): telemetry::Opened,
    live: &Arc<LiveCounters>,
) -> Arc<Monitor> {
    let monitor = Monitor::with_sources(run_start.into_std(), config.monitor_interval, server_source, gpu_source);
    if !monitor.temperature_available() {
        reporter.line(&tr(Msg::NoTemperature, &[]));
    }
    if let Err(e) = monitor.write_to(&config.out_dir) {
        reporter.warn(&tr(
            Msg::TelemetryFileUnwritable,
            &[("dir", &config.out_dir.display()), ("error", &e)],
        ));
    }
    if config.distributed.shard.is_some() {
        monitor.serving_a_shard();
    }
    monitor.start();
    monitor.count_in_flight({
        let live = live.clone();
        move || live.in_flight.load(Ordering::Relaxed)
    });
    monitor
}

/// The summary as it stands before the first step: what ran against what, and how long the
/// client took to get there (ms since the process started: first request, load).
fn running_summary(
    config: &RunConfig,
    model: &str,
    clock: Option<clock::ClockReport>,
    run_start_unix_s: Option<f64>,
    (first_request_ms, load_ms): (f64, f64),
) -> Summary {
    Summary {
        status: "running".into(),
        run_id: Some(config.distributed.run_id.clone()),
        shard: config.distributed.shard,
        clock,
        started_at: now_rfc3339(),
        run_start_unix_s,
        model: Some(model.to_string()),
        config: config_json(config),
        environment: Environment::current(),
        client: Some(ClientReport {
            cores: crate::monitor::health::allowed_cores(config.threads),
            startup_first_request_ms: Some(first_request_ms),
            startup_load_ms: Some(load_ms),
            ..ClientReport::default()
        }),
        ..Summary::default()
    }
}

/// A shard's header line: which shard of which run, and its share of the first step.
fn announce_shard(config: &RunConfig, reporter: &Reporter) {
    if let Some(shard) = config.distributed.shard {
        reporter.line(&tr(
            Msg::ShardHeader,
            &[
                ("shard", &shard),
                ("run_id", &config.distributed.run_id),
                ("share", &shard_share(config, shard)),
            ],
        ));
    }
}

/// What this shard runs of the first step, in words: "2 of concurrency 8", "5 of 20 req/s".
fn shard_share(config: &RunConfig, shard: crate::load::Shard) -> String {
    let Some(point) = config.mode.points().first().copied() else {
        return String::new();
    };
    let share = match point {
        crate::load::LoadPoint::Concurrency(c) => crate::load::LoadPoint::Concurrency(shard.concurrency(c)),
        crate::load::LoadPoint::Rate(r) => crate::load::LoadPoint::Rate(shard.rate(r)),
    };
    tr(
        Msg::ShardShare,
        &[("share", &share.in_words()), ("point", &point.in_words())],
    )
}

/// The run's configuration for summary.json, with the language its sentences are in.
fn config_json(config: &RunConfig) -> serde_json::Value {
    let mut value = serde_json::to_value(config).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        map.insert("lang".into(), crate::i18n::lang().tag().into());
    }
    value
}

/// Removes an empty `requests.jsonl` (and the results folder, when the run made it and left it
/// empty) unless disarmed: the run got as far as its load.
struct EmptyResults {
    dir: std::path::PathBuf,
    /// Deepest first.
    created: Vec<std::path::PathBuf>,
    armed: bool,
}

impl Drop for EmptyResults {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let records = self.dir.join("requests.jsonl");
        if std::fs::metadata(&records).is_ok_and(|m| m.len() == 0) {
            let _ = std::fs::remove_file(&records);
        }
        for dir in &self.created {
            // Only an empty folder goes (remove_dir refuses any other).
            if std::fs::remove_dir(dir).is_err() {
                break;
            }
        }
    }
}

/// The header lines: model, tests, workload, load; the SLO.
fn announce_run(config: &RunConfig, model: &str, workload: &Workload, reporter: &Reporter) {
    let tests: Vec<&str> = config.tests.iter().map(|t| t.name()).collect();
    let max_tokens = match config.prompts.osl.is_some() || config.prompts.dataset.is_some() {
        _ if config.api == crate::workload::ApiKind::Embeddings => format!(
            " | {}",
            tr(
                if config.embed_batch == 1 {
                    Msg::HeaderEmbeddingsOne
                } else {
                    Msg::HeaderEmbeddingsMany
                },
                &[("n", &config.embed_batch)]
            )
        ),
        true => String::new(),
        false => format!(" | max_tokens {}", config.max_tokens),
    };
    let images = match &config.prompts.images {
        Some(i) => format!(
            " | {}",
            tr(
                Msg::HeaderImages,
                &[
                    ("n", &i.per_request),
                    ("width", &i.width),
                    ("height", &i.height),
                    ("format", &i.format)
                ]
            )
        ),
        None => String::new(),
    };
    reporter.line(&tr(
        Msg::HeaderModel,
        &[
            ("model", &model),
            ("tests", &tests.join(", ")),
            ("workload", &workload.source().describe()),
            ("max_tokens", &max_tokens),
            ("images", &images),
            ("mode", &describe_mode(config)),
        ],
    ));
    if let Some(slo) = &config.slo {
        let from = if config.slo_from_send {
            tr(Msg::HeaderSloFromSend, &[])
        } else {
            String::new()
        };
        reporter.line(&tr(Msg::HeaderSlo, &[("slo", &slo.describe()), ("from", &from)]));
    }
}

/// The run's verdict, recommendations and the final summary.json.
fn finish(
    ctx: &mut RunContext,
    steps: &[StepStats],
    stress: Option<StressReport>,
    mut outcome: Outcome,
) -> (Outcome, Vec<String>) {
    if outcome == Outcome::Complete && steps.iter().all(|s| s.requests_ok == 0) {
        outcome = Outcome::NothingSucceeded;
    }
    if let Some(problem) = &ctx.writer.failure {
        ctx.summary
            .notes
            .push(tr(Msg::NoteRecordsIncomplete, &[("problem", problem)]));
        if outcome == Outcome::Complete {
            outcome = Outcome::ResultsNotSaved;
        }
    }
    if let Some(note) = ctx.workload.source().closing_note() {
        ctx.reporter.line(&tr(Msg::NoteLine, &[("note", &note)]));
        ctx.summary.notes.push(note);
    }
    // With --repeat each load point counts once, by the means of its repetitions.
    let points = crate::metrics::repeat::per_point(steps);
    let mut recommendations = advice::recommend(&points, ctx.config.min_tps, ctx.config.slo.as_ref());
    // Shared prefixes the server did not reuse: the one sentence, from the step with the most
    // later requests.
    let prefix_tokens = ctx.config.prompts.prefix.map(|p| p.tokens);
    if let Some((test, sentence)) = steps
        .iter()
        .filter_map(|s| s.prefix_cache.as_ref().map(|p| (s.test, p)))
        .filter(|(_, p)| p.cached_pct_later.is_some_and(|pct| pct < 1.0))
        .max_by_key(|(_, p)| p.later_requests)
        .and_then(|(test, p)| Some((test, crate::metrics::workload::prefix_sentence(p, prefix_tokens)?)))
    {
        recommendations.push(format!("[{test}] {sentence}"));
    }
    recommendations.extend(crate::metrics::telemetry::sentences(
        &points,
        prefix_tokens,
        stress.as_ref().map(|r| r.intervals.as_slice()),
    ));
    if let Some(capacity) = &ctx.summary.capacity {
        recommendations.insert(0, capacity.answer.clone());
    }
    if let Some(report) = &stress {
        recommendations.extend(report.drift.iter().cloned());
    }
    ctx.summary.recommendations = recommendations.clone();
    ctx.summary.status = outcome.status().into();
    ctx.summary.finished_at = Some(now_rfc3339());
    ctx.save_summary(steps, stress);
    if !ctx.summary_saved && outcome == Outcome::Complete {
        outcome = Outcome::ResultsNotSaved;
    }
    (outcome, recommendations)
}

/// The end of the console report: table, errors, recommendations, the client's cost, where
/// the results are.
fn print_end(ctx: &RunContext, steps: &[StepStats], recommendations: &[String], outcome: Outcome) {
    let reporter = &ctx.reporter;
    reporter.line("");
    for line in format::table(steps) {
        reporter.line(&line);
    }
    let repeats = crate::report::repeats::lines(&ctx.summary.repeats);
    if !repeats.is_empty() {
        reporter.line("");
        for line in repeats {
            reporter.line(&line);
        }
    }
    let errors = format::error_lines(steps);
    if !errors.is_empty() {
        reporter.line("");
        for line in errors {
            reporter.line(&line);
        }
    }
    if !recommendations.is_empty() {
        reporter.line("");
        reporter.line(&tr(Msg::RecommendationsHeading, &[]));
        for r in recommendations {
            reporter.line(&format!("- {r}"));
        }
    }
    // A telemetry source that skipped samples, said once at the end (its reason said once).
    for source in ctx.summary.monitor.sources.iter().filter(|s| s.skipped > 0) {
        let why = source.skip_reason.clone().unwrap_or_default();
        reporter.line(&tr(
            Msg::TelemetrySkipped,
            &[("source", &source.name), ("n", &source.skipped), ("why", &why)],
        ));
    }
    if let Some(client) = &ctx.summary.client {
        reporter.line("");
        let mut line = format::client_line(client);
        if ctx.config.server_in_process {
            line.push_str(&tr(Msg::ClientAlsoSimulator, &[]));
        }
        reporter.line(&line);
    }
    reporter.line("");
    reporter.line(&results_line(ctx));
    match outcome {
        Outcome::Interrupted => reporter.line(&tr(Msg::RunWasInterrupted, &[])),
        Outcome::NothingSucceeded => reporter.line(&tr(Msg::RunNothingSucceeded, &[])),
        _ => {}
    }
}

/// The load of the run in words, for its header line.
fn describe_mode(config: &RunConfig) -> String {
    let load = &config.load;
    let cap = load
        .max_concurrency
        .map(|n| tr(Msg::ModeCap, &[("n", &n)]))
        .unwrap_or_default();
    if let crate::load::Arrival::Trace { times } = &load.arrival {
        return tr(
            Msg::ModeTrace,
            &[
                ("n", &times.len()),
                ("span", &format!("{:.2}", times.span_s())),
                ("rate", &crate::load::point::fmt_rate(times.mean_rate())),
                ("cap", &cap),
            ],
        );
    }
    let open = tr(Msg::ModeArrivals, &[("arrival", &load.arrival)]);
    let shape = |points: &[crate::load::LoadPoint]| match points.first() {
        Some(crate::load::LoadPoint::Rate(_)) => tr(
            Msg::ModeOpenShape,
            &[("open", &open), ("seed", &load.seed), ("cap", &cap)],
        ),
        _ => String::new(),
    };
    let ramp = if load.ramp_up.is_zero() {
        String::new()
    } else {
        tr(Msg::ModeRampUp, &[("ramp", &humantime::format_duration(load.ramp_up))])
    };
    match &config.mode {
        Mode::Step { points, stop } => {
            let list = match points.as_slice() {
                [crate::load::LoadPoint::Concurrency(first), .., crate::load::LoadPoint::Concurrency(last)]
                    if points.len() > 2 =>
                {
                    let step = points[1].value() - points[0].value();
                    tr(
                        Msg::ModeConcurrencyRange,
                        &[("first", first), ("last", last), ("step", &step)],
                    )
                }
                _ => points.iter().map(|p| p.in_words()).collect::<Vec<_>>().join(", "),
            };
            let each = match stop {
                Some(crate::load::Stop::For(d)) => {
                    tr(Msg::ModeForPerStep, &[("duration", &humantime::format_duration(*d))])
                }
                Some(crate::load::Stop::Requests(n)) => tr(Msg::ModeRequestsPerStep, &[("n", n)]),
                None => tr(Msg::ModeOnePerConnection, &[]),
            };
            tr(
                Msg::ModeStep,
                &[
                    ("list", &list),
                    ("each", &each),
                    ("shape", &shape(points)),
                    ("ramp", &ramp),
                ],
            )
        }
        Mode::Stress { point, duration } => tr(
            Msg::ModeStress,
            &[
                ("point", &point.in_words()),
                ("duration", &humantime::format_duration(*duration)),
                ("shape", &shape(&[*point])),
                ("ramp", &ramp),
            ],
        ),
        Mode::Capacity(spec) => {
            let each = match spec.stop {
                crate::load::Stop::For(d) => tr(Msg::ModeForPerProbe, &[("duration", &humantime::format_duration(d))]),
                crate::load::Stop::Requests(n) => tr(Msg::ModeRequestsPerProbe, &[("n", &n)]),
            };
            tr(Msg::ModeCapacity, &[("each", &each), ("ramp", &ramp)])
        }
    }
}

/// Where the results are, or which of them could not be saved.
fn results_line(ctx: &RunContext) -> String {
    let summary = ctx.config.out_dir.join("summary.json");
    match (ctx.summary_saved, ctx.writer.failure.is_some()) {
        (true, false) => tr(
            Msg::ResultsSaved,
            &[("summary", &summary.display()), ("n", &ctx.writer.written)],
        ),
        (true, true) => tr(Msg::ResultsRecordsIncomplete, &[("summary", &summary.display())]),
        (false, _) => tr(Msg::ResultsNotSaved, &[("dir", &ctx.config.out_dir.display())]),
    }
}
