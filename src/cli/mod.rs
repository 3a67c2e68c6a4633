//! Command line: clap definitions (what the user typed), legacy-flag rewriting, and validation
//! into a [`config::RunConfig`] that the engine uses. The engine never sees clap types.

pub mod compare;
pub mod config;
pub mod distributed;
pub mod k8s;
pub mod legacy;
pub mod parse;
pub mod sim;
pub mod telemetry;
pub mod workload;

use crate::workload::ApiKind;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

/// The original script's default multimodal prompt ("Please describe the content of this picture").
pub const DEFAULT_MULTIMODAL_PROMPT: &str = "请描述这张图片的内容。";

#[derive(Debug, Parser)]
#[command(
    name = "llm-bench",
    version,
    about = "Benchmark how an OpenAI-compatible LLM server holds up under concurrent load",
    long_about = "Benchmark how an OpenAI-compatible LLM server holds up under concurrent load.\n\n\
Step mode (default) raises concurrency from -st to -et by -ts; stress mode (-d HOURS or --duration) \
holds -st connections busy for a fixed time. `llm-bench demo` tries it against the built-in simulator.",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
    /// Language of console and log lines, recommendations and the report (default: from
    /// LC_ALL, LC_MESSAGES or LANG; English otherwise).
    #[arg(long = "lang", value_name = "LANG", value_enum, global = true)]
    pub lang: Option<LangArg>,
}

/// `--lang`: the clap side of [`crate::i18n::Lang`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LangArg {
    /// English.
    En,
    /// Simplified Chinese (简体中文).
    Zh,
}

impl From<LangArg> for crate::i18n::Lang {
    fn from(arg: LangArg) -> Self {
        match arg {
            LangArg::En => crate::i18n::Lang::En,
            LangArg::Zh => crate::i18n::Lang::Zh,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the built-in OpenAI-compatible simulator (for trying llm-bench and for tests).
    Serve(Box<sim::SimArgs>),
    /// Start the simulator in-process and run a short step benchmark against it.
    Demo(DemoArgs),
    /// Rebuild summary.json of a results folder from its requests.jsonl.
    Report(ReportArgs),
    /// Find the highest load that meets an SLO: raise it geometrically until the SLO fails,
    /// then bisect (each probe a full measured step). Same connection, workload and timing
    /// flags as a run.
    Capacity(Box<CapacityArgs>),
    /// Compare runs step by step: each headline figure better, worse or within noise (judged
    /// from the requests), with `--fail-if` thresholds for CI (exit 1 when one is crossed).
    Compare(compare::CompareArgs),
    /// Merge the results folders of a distributed run's shards (`--shard I/N`) into one, as if
    /// one process had sent every request: percentiles, totals and throughputs over all of them.
    Merge(MergeArgs),
    /// Print a Kubernetes manifest for a sharded run: an Indexed Job of N shards and the Job
    /// that merges their results (docs/distributed.md).
    #[command(name = "k8s-job", long_about = k8s::LONG_ABOUT, after_help = k8s::AFTER_HELP)]
    K8sJob(k8s::K8sJobArgs),
}

#[derive(Debug, Args, Clone)]
pub struct MergeArgs {
    /// The shards' results folders (each with summary.json and requests.jsonl).
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Where to write the merged summary.json, report.html, CSV files and histograms.jsonl.
    #[arg(long = "out", value_name = "DIR")]
    pub out: PathBuf,
    /// Merge the shards there are when some are missing (the summary says which, and `partial`).
    #[arg(long = "allow-partial")]
    pub allow_partial: bool,
}

#[derive(Debug, Args, Clone)]
pub struct CapacityArgs {
    /// Search over request rates (open loop) or concurrencies (closed loop).
    #[arg(long = "by", value_enum, default_value_t = SearchAxis::Rate)]
    pub by: SearchAxis,
    /// Lowest load to probe (default: 1 req/s, or concurrency 1).
    #[arg(long = "min", value_name = "X", value_parser = parse::load_value)]
    pub min: Option<f64>,
    /// Highest load to probe (default: 1000 req/s, or concurrency 1024).
    #[arg(long = "max", value_name = "Y", value_parser = parse::load_value)]
    pub max: Option<f64>,
    /// Bisect until the failing and the passing load are this close, e.g. 5% or 0.05.
    #[arg(long = "precision", value_name = "PCT", default_value = "5%", value_parser = parse::percent)]
    pub precision: f64,
    /// With per-request thresholds: a probe passes when at least this share of its requests
    /// were good, e.g. 90%.
    #[arg(long = "attainment", value_name = "PCT", default_value = "90%", value_parser = parse::percent)]
    pub attainment: f64,
    #[command(flatten)]
    pub run: RunArgs,
}

/// `--endpoint`: the clap side of [`ApiKind`] (the engine never sees clap types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EndpointArg {
    /// `POST {url}/chat/completions` with one user message.
    Chat,
    /// `POST {url}/completions` with a plain prompt.
    Completions,
    /// `POST {url}/embeddings` with `--embed-batch` inputs (not streamed; no TTFT or ITL).
    Embeddings,
}

impl From<EndpointArg> for ApiKind {
    fn from(arg: EndpointArg) -> Self {
        match arg {
            EndpointArg::Chat => ApiKind::Chat,
            EndpointArg::Completions => ApiKind::Completions,
            EndpointArg::Embeddings => ApiKind::Embeddings,
        }
    }
}

/// What a capacity search moves along.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SearchAxis {
    Rate,
    Concurrency,
}

/// Where open-loop latencies are judged from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SloFrom {
    /// The intended send time: what a user waiting in line saw.
    Intended,
    /// The actual send: what the server did.
    Send,
}

#[derive(Debug, Args, Clone)]
pub struct DemoArgs {
    /// Results folder (default: llm-bench-results/demo-<timestamp>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Log file.
    #[arg(
        short = 'l',
        long = "log-file",
        visible_alias = "log_file",
        default_value = "llm-bench-demo.log"
    )]
    pub log_file: PathBuf,
}

#[derive(Debug, Args, Clone)]
pub struct ReportArgs {
    /// A results folder containing requests.jsonl.
    pub dir: PathBuf,
    #[command(flatten)]
    pub files: OutputFileArgs,
}

/// Files written besides summary.json and requests.jsonl, by a run and by `llm-bench report`.
#[derive(Debug, Args, Clone, Default)]
pub struct OutputFileArgs {
    /// Also write requests.csv, one row per request of requests.jsonl (made from it when the run
    /// ends, so it has exactly its rows).
    #[arg(long = "csv-requests")]
    pub csv_requests: bool,
    /// Also write the step results in another tool's result format: `--export vllm FILE` (vLLM
    /// `bench serve` keys, one JSON object a line and step).
    #[arg(long = "export", num_args = 2, value_names = ["FORMAT", "FILE"])]
    pub export: Option<Vec<String>>,
}

#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// Run the input (prompt ingestion / prefill) test. With none of -i/-o/-mm, -i and -o run.
    #[arg(short = 'i', long = "input")]
    pub input: bool,
    /// Run the output (token generation) test.
    #[arg(short = 'o', long = "output")]
    pub output: bool,
    /// Run the multimodal (image + text) test [legacy: -mm].
    #[arg(long = "multimodal")]
    pub multimodal: bool,

    /// First concurrency of a step run; the concurrency of a stress run [legacy: -st].
    #[arg(long = "start-threads", visible_alias = "start_threads", value_name = "N", default_value = "10", value_parser = parse::concurrency, allow_negative_numbers = true)]
    pub start_threads: u32,
    /// Last concurrency of a step run, inclusive [legacy: -et].
    #[arg(long = "end-threads", visible_alias = "end_threads", value_name = "N", default_value = "200", value_parser = parse::concurrency, allow_negative_numbers = true)]
    pub end_threads: u32,
    /// Concurrency increment between steps [legacy: -ts].
    #[arg(long = "step-threads", visible_alias = "step_threads", value_name = "N", default_value = "10", value_parser = parse::step, allow_negative_numbers = true)]
    pub step_threads: u32,
    /// Prompt length in characters [legacy: -pp] (default 100; --isl gives it in tokens).
    #[arg(long = "prompt-length", visible_alias = "prompt_length", value_name = "CHARS", value_parser = parse::prompt_length, allow_negative_numbers = true)]
    pub prompt_length: Option<usize>,
    /// max_tokens of generation requests [legacy: -tg].
    #[arg(long = "tokens-to-generate", visible_alias = "tokens_to_generate", value_name = "TOKENS", default_value = "100", value_parser = parse::tokens, allow_negative_numbers = true)]
    pub tokens_to_generate: u32,

    /// API base URL, ending in /v1.
    #[arg(
        short = 'u',
        long = "url",
        env = "OPENAI_BASE_URL",
        default_value = "http://127.0.0.1:8000/v1"
    )]
    pub url: String,
    /// Model name; by default the server's only (or first) model from GET {url}/models.
    #[arg(short = 'm', long = "model")]
    pub model: Option<String>,
    /// API key, sent as `Authorization: Bearer`. Also read from OPENAI_API_KEY or LLM_BENCH_API_KEY.
    #[arg(
        long = "api-key",
        visible_alias = "api_key",
        env = "OPENAI_API_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub api_key: Option<String>,
    /// Extra request header, `Name: value` (repeatable). Values are treated as secrets.
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub header: Vec<String>,
    /// PEM file of CA certificates to trust besides the system's (a private CA); https only.
    #[arg(long = "ca-cert", visible_alias = "ca_cert", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Do not verify the server's TLS certificate (a self-signed test server); prints a warning.
    #[arg(short = 'k', long = "insecure")]
    pub insecure: bool,
    /// Which endpoint the text tests use.
    #[arg(long = "endpoint", value_enum, default_value_t = EndpointArg::Chat)]
    pub endpoint: EndpointArg,
    /// With --endpoint embeddings: input strings per request, each --prompt-length characters.
    #[arg(long = "embed-batch", value_name = "K", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub embed_batch: u32,

    /// Image for the multimodal test (jpg, png, gif or webp; the type is read from its content) [legacy: -ip].
    #[arg(
        long = "image-path",
        visible_alias = "image_path",
        value_name = "FILE",
        default_value = "testphoto.jpg"
    )]
    pub image_path: PathBuf,
    /// Text sent with the image [legacy: -mtp].
    #[arg(long = "multimodal-text-prompt", visible_alias = "multimodal_text_prompt", value_name = "TEXT", default_value = DEFAULT_MULTIMODAL_PROMPT)]
    pub multimodal_text_prompt: String,
    /// Send the same prompt in every request (lets the server's prefix cache hide prefill cost).
    #[arg(long = "same-prompt", visible_alias = "same_prompt")]
    pub same_prompt: bool,
    /// JSON object merged into every request body, e.g. '{"cache_prompt": false}' to turn off
    /// llama.cpp's prompt cache, or '{"temperature": 0}'. Its fields override llm-bench's own.
    #[arg(long = "extra-body", visible_alias = "extra_body", value_name = "JSON", value_parser = parse::json_object)]
    pub extra_body: Option<serde_json::Map<String, serde_json::Value>>,
    /// Ask the server to ignore end-of-sequence so every request generates -tg tokens (vLLM, SGLang, llama.cpp).
    #[arg(long = "ignore-eos", visible_alias = "ignore_eos")]
    pub ignore_eos: bool,
    /// Ask for token usage in every chunk (`stream_options.continuous_usage_stats`, vLLM and
    /// SGLang), so tokens per chunk are counted exactly; a server that does not know it may refuse the request.
    #[arg(long = "continuous-usage", visible_alias = "continuous_usage")]
    pub continuous_usage: bool,
    #[command(flatten)]
    pub workload: workload::WorkloadArgs,

    /// Log file; the console and the log get the same lines.
    #[arg(
        short = 'l',
        long = "log-file",
        visible_alias = "log_file",
        value_name = "FILE",
        default_value = "llm-bench.log"
    )]
    pub log_file: PathBuf,
    /// Results folder for summary.json and requests.jsonl (default: llm-bench-results/<timestamp>).
    #[arg(long = "out", value_name = "DIR")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub files: OutputFileArgs,

    /// Stress run length in hours (fractions allowed); 0 means step mode.
    #[arg(short = 'd', long = "duration-hours", visible_alias = "duration_hours", value_name = "HOURS", default_value = "0", value_parser = parse::hours, allow_negative_numbers = true)]
    pub duration_hours: f64,
    /// Stress run length, e.g. 90s, 30m, 8h (instead of -d).
    #[arg(long = "duration", value_name = "TIME", value_parser = parse::duration)]
    pub duration: Option<Duration>,
    /// Step mode: each connection sends requests back to back for this long, instead of one request.
    #[arg(long = "step-duration", visible_alias = "step_duration", value_name = "TIME", value_parser = parse::duration)]
    pub step_duration: Option<Duration>,
    /// Time at the start of each timed step (and of a stress run) left out of the statistics.
    #[arg(long = "warmup", value_name = "TIME", default_value = "0s", value_parser = parse::duration_or_zero)]
    pub warmup: Duration,
    /// Stress mode: one report line per interval.
    #[arg(long = "report-interval", visible_alias = "report_interval", value_name = "TIME", default_value = "60s", value_parser = parse::duration)]
    pub report_interval: Duration,
    /// CPU / memory / temperature sampling interval.
    #[arg(long = "monitor-interval", visible_alias = "monitor_interval", value_name = "TIME", default_value = "10s", value_parser = parse::duration)]
    pub monitor_interval: Duration,
    #[command(flatten)]
    pub telemetry: telemetry::TelemetryArgs,
    #[command(flatten)]
    pub distributed: distributed::DistributedArgs,

    /// Per-connection speed target (tok/s) for the recommendations.
    #[arg(long = "min-tps", visible_alias = "min_tps", value_name = "TOK_PER_S", value_parser = parse::positive_f64, allow_negative_numbers = true)]
    pub min_tps: Option<f64>,
    /// Stop a step run when a step's failed fraction exceeds this (0..1).
    #[arg(long = "max-error-rate", visible_alias = "max_error_rate", value_name = "FRACTION", value_parser = parse::fraction, allow_negative_numbers = true)]
    pub max_error_rate: Option<f64>,

    /// Time allowed to open a connection.
    #[arg(long = "connect-timeout", value_name = "TIME", default_value = "10s", value_parser = parse::duration)]
    pub connect_timeout: Duration,
    /// Time allowed from send to the first generated token.
    #[arg(long = "ttft-timeout", value_name = "TIME", default_value = "15m", value_parser = parse::duration)]
    pub ttft_timeout: Duration,
    /// Time allowed between two events once tokens flow.
    #[arg(long = "idle-timeout", value_name = "TIME", default_value = "2m", value_parser = parse::duration)]
    pub idle_timeout: Duration,
    /// Time allowed for a whole request (default: no limit).
    #[arg(long = "request-timeout", value_name = "TIME", value_parser = parse::duration)]
    pub request_timeout: Option<Duration>,
    /// How long requests in flight may finish after a timed step's end or after Ctrl-C; then
    /// they are cut and recorded as cancelled.
    #[arg(long = "drain-timeout", value_name = "TIME", default_value = "30s", value_parser = parse::duration_or_zero)]
    pub drain_timeout: Duration,

    /// Worker threads of the client (default: all cores).
    #[arg(long = "threads", value_name = "N", value_parser = parse::threads, allow_negative_numbers = true)]
    pub threads: Option<usize>,

    /// Open loop: requests per second instead of connections; a comma list makes a sweep, one
    /// step per rate (e.g. 2,4,8,16). Needs --step-duration or --requests (or a stress run).
    #[arg(long = "rate", value_name = "RPS[,RPS…]", value_parser = parse::rates, allow_negative_numbers = true)]
    pub rate: Option<parse::Rates>,
    /// Open loop: how requests are spaced: poisson (default), gamma (with --burstiness), constant.
    #[arg(long = "arrival", value_name = "KIND")]
    pub arrival: Option<String>,
    /// Gamma shape of the gaps (as vLLM defines it): 1 = Poisson, < 1 burstier, > 1 more regular.
    #[arg(long = "burstiness", value_name = "K", value_parser = parse::positive_f64, allow_negative_numbers = true)]
    pub burstiness: Option<f64>,
    /// Seed of the open-loop schedule (the same seed gives the same send times).
    #[arg(long = "seed", value_name = "N", default_value = "1")]
    pub seed: u64,
    /// Open loop: at most N requests in flight; the others wait in the client's queue (their
    /// wait counts in the latency from the intended send time).
    #[arg(long = "max-concurrency", value_name = "N", value_parser = parse::concurrency, allow_negative_numbers = true)]
    pub max_concurrency: Option<u32>,
    /// A fixed number of measured requests per step (vLLM's --num-prompts), in either loop,
    /// instead of a duration.
    #[arg(long = "requests", value_name = "N", value_parser = parse::requests, allow_negative_numbers = true)]
    pub requests: Option<u64>,
    /// Grow the rate (or the number of busy connections) linearly from near zero to the target
    /// over this time at the start of each step; left out of the statistics like --warmup.
    #[arg(long = "ramp-up", visible_alias = "ramp_up", value_name = "TIME", default_value = "0s", value_parser = parse::duration_or_zero)]
    pub ramp_up: Duration,
    /// Open loop: end a step as saturated when this many requests are due and unfinished at
    /// once (default: 60 s worth at the target rate).
    #[arg(long = "max-backlog", value_name = "N", value_parser = parse::requests, allow_negative_numbers = true)]
    pub max_backlog: Option<u64>,
    /// In a sweep, stop going higher once a step is saturated (backlog limit reached, or under
    /// 90% of the target rate sent while TTFT rose through the step).
    #[arg(long = "stop-when-saturated")]
    pub stop_when_saturated: bool,
    /// Run every step N times, in the order A1 B1 … A2 B2 … (so drift spreads over the
    /// steps), and report each headline figure per load point as a mean with its 95%
    /// confidence interval. Step sweeps only.
    #[arg(long = "repeat", value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub repeat: u32,
    #[arg(long = "slo", value_name = "SPEC", help = "Latency objectives, e.g. ttft=500ms,tpot=50ms or ttft_p99=500ms", long_help = crate::metrics::slo::SLO_HELP)]
    pub slo: Option<String>,
    /// Judge open-loop latencies in SLOs from the intended send time (what users feel) or the actual send.
    #[arg(long = "slo-from", value_enum, default_value_t = SloFrom::Intended)]
    pub slo_from: SloFrom,
}
