//! The `serve` subcommand's flags. The simulator itself takes a plain [`SimConfig`]; this is
//! its clap side (the project keeps clap below `cli/`), with the same defaults.

use crate::sim::config::{
    check_non_negative, check_probability, DEFAULT_DECODE_BASE_MS, DEFAULT_DECODE_MS_PER_SEQ,
    DEFAULT_FAULT_ERROR_STATUS, DEFAULT_FAULT_HUGE_EVENT_KIB, DEFAULT_FAULT_STALL_MS, DEFAULT_GPUS, DEFAULT_MAX_BATCH,
    DEFAULT_MAX_MODEL_LEN, DEFAULT_MAX_TOKENS, DEFAULT_MODEL, DEFAULT_PORT, DEFAULT_PREFILL_US_PER_TOKEN,
    DEFAULT_TOKENS_PER_CHUNK, MAX_GPUS,
};
use crate::sim::{ErrorBody, Flavor, MetricsFault, SimConfig};

/// `--flavor`: the clap side of [`Flavor`].
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlavorArg {
    /// OpenAI's layout (also vLLM's and SGLang's).
    Openai,
    /// llama.cpp's llama-server, as recorded in docs/llama-server-notes.md.
    LlamaServer,
}

impl From<FlavorArg> for Flavor {
    fn from(arg: FlavorArg) -> Self {
        match arg {
            FlavorArg::Openai => Flavor::Openai,
            FlavorArg::LlamaServer => Flavor::LlamaServer,
        }
    }
}

/// `--fault-error-body`: the clap side of [`ErrorBody`].
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorBodyArg {
    /// The flavor's JSON error object.
    Json,
    /// An HTML page, as a reverse proxy in front of the server sends.
    Html,
}

impl From<ErrorBodyArg> for ErrorBody {
    fn from(arg: ErrorBodyArg) -> Self {
        match arg {
            ErrorBodyArg::Json => ErrorBody::Json,
            ErrorBodyArg::Html => ErrorBody::Html,
        }
    }
}

/// `--metrics-fault`: the clap side of [`MetricsFault`].
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsFaultArg {
    /// A correct answer.
    None,
    /// The correct answer, after 5 s.
    Slow,
    /// A valid-looking answer of about 20 MB.
    Huge,
    /// An HTML page with status 200.
    Garbage,
}

impl From<MetricsFaultArg> for MetricsFault {
    fn from(arg: MetricsFaultArg) -> Self {
        match arg {
            MetricsFaultArg::None => MetricsFault::None,
            MetricsFaultArg::Slow => MetricsFault::Slow,
            MetricsFaultArg::Huge => MetricsFault::Huge,
            MetricsFaultArg::Garbage => MetricsFault::Garbage,
        }
    }
}

/// The `serve` subcommand's flags: the clap side of [`SimConfig`].
#[derive(clap::Args, Debug, Clone)]
pub struct SimArgs {
    /// TCP port to listen on. 0 picks a free port.
    #[arg(long, default_value_t = DEFAULT_PORT)]
    pub port: u16,

    /// Address to listen on (IPv4). Keep loopback unless the simulator must be reached from a
    /// network namespace of your own (tests of shards as separate hosts do that).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: std::net::Ipv4Addr,

    /// Model id served by GET /v1/models and accepted in requests.
    #[arg(long, default_value = DEFAULT_MODEL)]
    pub model: String,

    /// Wire format to imitate: stream layout, error bodies, and llama-server's /props.
    #[arg(long, value_enum, default_value_t = FlavorArg::Openai)]
    pub flavor: FlavorArg,

    /// Prefill cost per prompt token, in microseconds.
    #[arg(long, default_value_t = DEFAULT_PREFILL_US_PER_TOKEN, value_parser = non_negative)]
    pub prefill_us_per_token: f64,

    /// Duration of one decode step with a single sequence, in milliseconds.
    #[arg(long, default_value_t = DEFAULT_DECODE_BASE_MS, value_parser = non_negative)]
    pub decode_base_ms: f64,

    /// Added to the decode step time for every active sequence, in milliseconds.
    #[arg(long, default_value_t = DEFAULT_DECODE_MS_PER_SEQ, value_parser = non_negative)]
    pub decode_ms_per_seq: f64,

    /// Sequences decoded at once; further requests wait in a FIFO queue.
    #[arg(long, default_value_t = DEFAULT_MAX_BATCH,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_batch: usize,

    /// Output tokens when a request sets neither max_tokens nor max_completion_tokens.
    #[arg(long, default_value_t = DEFAULT_MAX_TOKENS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub default_max_tokens: u64,

    /// Tokens carried by each streamed chunk (one chunk per decode step).
    #[arg(long, default_value_t = DEFAULT_TOKENS_PER_CHUNK,
          value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub tokens_per_chunk: u64,

    /// Never send usage, even when the request asks for it.
    #[arg(long)]
    pub no_usage: bool,

    /// Chat streams do not start with a role-only chunk.
    #[arg(long)]
    pub no_role_chunk: bool,

    /// Answer requests containing an image with HTTP 500, like llama.cpp without an mmproj.
    #[arg(long)]
    pub reject_images: bool,

    /// Require `Authorization: Bearer KEY` on /v1 endpoints.
    #[arg(long, env = "LLM_BENCH_SIM_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,

    /// Seed for the deterministic fault injection.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// Probability that a request is answered with --fault-error-status before any token.
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    pub fault_error_rate: f64,

    /// HTTP status(es) used by --fault-error-rate; with a list (429,500,503) each error picks one.
    #[arg(long, value_delimiter = ',', default_values_t = [DEFAULT_FAULT_ERROR_STATUS],
          value_parser = clap::value_parser!(u16).range(400..=599))]
    pub fault_error_status: Vec<u16>,

    /// Retry-After header, in seconds, on the injected 429 and 503 answers.
    #[arg(long, value_name = "SECS")]
    pub fault_retry_after: Option<u64>,

    /// Body of the injected error answers.
    #[arg(long, value_enum, default_value_t = ErrorBodyArg::Json)]
    pub fault_error_body: ErrorBodyArg,

    /// The message of the injected JSON errors (default: "simulated fault: HTTP <status>").
    #[arg(long, value_name = "TEXT")]
    pub fault_error_message: Option<String>,

    /// Probability that a stream is cut (connection closed) after half of its tokens.
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    pub fault_cut_rate: f64,

    /// Probability that a stream carries one malformed (non-JSON) chunk in the middle.
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    pub fault_malformed_rate: f64,

    /// Probability that a stream pauses for --fault-stall-ms in the middle.
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    pub fault_stall_rate: f64,

    /// Length of the pause injected by --fault-stall-rate, in milliseconds.
    #[arg(long, default_value_t = DEFAULT_FAULT_STALL_MS)]
    pub fault_stall_ms: u64,

    // The faults below never combine: a request gets at most one of them, and only when none
    // of the four above hit it, so each maps to exactly one outcome a client can count.
    /// Probability that the request is read and the connection reset (RST) before any response.
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    pub fault_reset_rate: f64,

    /// Probability that the request is read and never answered (the connection stays open).
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    pub fault_no_answer_rate: f64,

    /// Probability that the connection is reset (RST) after half of the tokens.
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    pub fault_reset_stream_rate: f64,

    /// Probability that the stream ends cleanly after half of its tokens, with neither a
    /// finish_reason nor [DONE].
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    pub fault_no_done_rate: f64,

    /// Probability that the middle chunk's text carries invalid UTF-8.
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    pub fault_invalid_utf8_rate: f64,

    /// Probability that the stream sends an `error` object halfway, then [DONE] (as vLLM does).
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    pub fault_error_event_rate: f64,

    /// Probability that the middle chunk is one event of --fault-huge-event-kib KiB.
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    pub fault_huge_event_rate: f64,

    /// Size of the event injected by --fault-huge-event-rate, in KiB.
    #[arg(long, default_value_t = DEFAULT_FAULT_HUGE_EVENT_KIB,
          value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    pub fault_huge_event_kib: u64,

    /// Probability that the stream never finishes: tokens keep coming until the client leaves.
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    pub fault_endless_rate: f64,

    /// After N generation responses on one connection, read the next request and close the
    /// connection without answering, as llama-server does with kept-alive connections. 0: never.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub close_after_responses: u64,

    /// Do not serve POST /tokenize (it answers 404, as on a server without the route).
    #[arg(long)]
    pub no_tokenize: bool,

    /// `max_model_len` reported by /tokenize.
    #[arg(long, value_name = "TOKENS", default_value_t = DEFAULT_MAX_MODEL_LEN,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_model_len: u64,

    /// End of sequence after N tokens: a request without `ignore_eos` stops after
    /// max(N, min_tokens) tokens with finish_reason "stop", unless its limit comes first.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub eos_after: Option<u64>,

    /// Cap every request's max_tokens at N (finish_reason "length"), as a server whose
    /// context or configuration limits the output.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_output: Option<u64>,

    /// Turn the prefix cache off: every prompt is prefilled in full, and the OpenAI flavor
    /// reports no `prompt_tokens_details`.
    #[arg(long)]
    pub no_prefix_cache: bool,

    /// A reasoning model: the first N generated tokens of each chat answer stream as
    /// `delta.reasoning_content`, the rest as `delta.content`. 0: no reasoning.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub reasoning_tokens: u64,

    /// KV cache capacity behind GET /metrics' KV usage: tokens held by the running sequences
    /// (prompt plus generated so far) / N, capped at 1. 0: running sequences / --max-batch.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub kv_cache_tokens: u64,

    /// Serve GET /dcgm/metrics (a DCGM exporter's page) with every GPU drawing W watts.
    #[arg(long, value_name = "W", value_parser = non_negative)]
    pub gpu_power_w: Option<f64>,

    /// GPUs listed by GET /dcgm/metrics.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_GPUS,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_GPUS)))]
    pub gpus: u32,

    /// DCGM_FI_DEV_CLOCK_THROTTLE_REASONS of every GPU, decimal or 0x hex (0x4: software
    /// power cap).
    #[arg(long, value_name = "MASK", default_value = "0", value_parser = bitmask)]
    pub gpu_throttle_mask: u64,

    /// Make GET /metrics misbehave: answer after 5 s, answer ~20 MB, or answer an HTML page.
    #[arg(long, value_enum, default_value_t = MetricsFaultArg::None)]
    pub metrics_fault: MetricsFaultArg,

    /// Date headers this many seconds off this machine's clock (e.g. -2.5: a server whose
    /// clock is 2.5 s behind), to check a shard's clock-offset estimate.
    #[arg(long, value_name = "SECONDS", default_value_t = 0.0, allow_negative_numbers = true)]
    pub clock_offset: f64,
}

impl From<SimArgs> for SimConfig {
    fn from(args: SimArgs) -> Self {
        SimConfig {
            port: args.port,
            host: args.host,
            model: args.model,
            flavor: args.flavor.into(),
            prefill_us_per_token: args.prefill_us_per_token,
            decode_base_ms: args.decode_base_ms,
            decode_ms_per_seq: args.decode_ms_per_seq,
            max_batch: args.max_batch,
            default_max_tokens: args.default_max_tokens,
            tokens_per_chunk: args.tokens_per_chunk,
            no_usage: args.no_usage,
            no_role_chunk: args.no_role_chunk,
            reject_images: args.reject_images,
            api_key: args.api_key,
            seed: args.seed,
            fault_error_rate: args.fault_error_rate,
            fault_error_status: args.fault_error_status,
            fault_retry_after: args.fault_retry_after,
            fault_error_body: args.fault_error_body.into(),
            fault_error_message: args.fault_error_message,
            fault_cut_rate: args.fault_cut_rate,
            fault_malformed_rate: args.fault_malformed_rate,
            fault_stall_rate: args.fault_stall_rate,
            fault_stall_ms: args.fault_stall_ms,
            fault_reset_rate: args.fault_reset_rate,
            fault_no_answer_rate: args.fault_no_answer_rate,
            fault_reset_stream_rate: args.fault_reset_stream_rate,
            fault_no_done_rate: args.fault_no_done_rate,
            fault_invalid_utf8_rate: args.fault_invalid_utf8_rate,
            fault_error_event_rate: args.fault_error_event_rate,
            fault_huge_event_rate: args.fault_huge_event_rate,
            fault_huge_event_kib: args.fault_huge_event_kib,
            fault_endless_rate: args.fault_endless_rate,
            close_after_responses: args.close_after_responses,
            no_tokenize: args.no_tokenize,
            max_model_len: args.max_model_len,
            eos_after: args.eos_after,
            max_output: args.max_output,
            no_prefix_cache: args.no_prefix_cache,
            reasoning_tokens: args.reasoning_tokens,
            kv_cache_tokens: args.kv_cache_tokens,
            gpu_power_w: args.gpu_power_w,
            gpus: args.gpus,
            gpu_throttle_mask: args.gpu_throttle_mask,
            metrics_fault: args.metrics_fault.into(),
            clock_offset_s: args.clock_offset,
        }
    }
}

fn non_negative(s: &str) -> Result<f64, String> {
    let value: f64 = s.parse().map_err(|e| format!("{e}"))?;
    check_non_negative(value)
}

fn bitmask(s: &str) -> Result<u64, String> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    }
    .map_err(|e| format!("{e}"))
}

fn probability(s: &str) -> Result<f64, String> {
    let value: f64 = s.parse().map_err(|e| format!("{e}"))?;
    check_probability(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        sim: SimArgs,
    }

    fn parse(args: &[&str]) -> Result<SimConfig, clap::Error> {
        let mut all = vec!["sim"];
        all.extend_from_slice(args);
        Wrapper::try_parse_from(all).map(|w| w.sim.into())
    }

    #[test]
    fn flags_are_well_formed() {
        use clap::CommandFactory;
        Wrapper::command().debug_assert();
    }

    #[test]
    fn default_matches_flag_defaults() {
        let parsed = parse(&[]).expect("no flags parse");
        let default = SimConfig::default();
        // api_key is left out: the flag may pick it up from the environment.
        let parsed = SimConfig {
            api_key: None,
            ..parsed
        };
        // SimConfig has no PartialEq (it holds f64s); its Debug text compares every field.
        assert_eq!(format!("{parsed:?}"), format!("{default:?}"));
        default.validate().expect("defaults are valid");
    }

    #[test]
    fn rejects_bad_values() {
        for args in [
            &["--fault-cut-rate", "1.5"][..],
            &["--max-batch", "0"],
            &["--decode-base-ms", "-1"],
            &["--fault-error-status", "200"],
            &["--fault-error-status", "429,200"],
            &["--fault-endless-rate", "2"],
            &["--eos-after", "0"],
            &["--max-output", "0"],
            &["--max-model-len", "0"],
            &["--flavor", "vllm"],
            &["--gpus", "0"],
            &["--gpu-power-w", "-5"],
            &["--gpu-throttle-mask", "0xZ"],
            &["--metrics-fault", "slowly"],
        ] {
            assert!(parse(args).is_err(), "{args:?}");
        }
    }

    #[test]
    fn lists_flavors_and_new_options_parse() {
        let sim = parse(&[
            "--fault-error-status",
            "429,503",
            "--flavor",
            "llama-server",
            "--fault-error-body",
            "html",
            "--eos-after",
            "7",
            "--max-output",
            "100",
            "--no-tokenize",
            "--no-prefix-cache",
            "--max-model-len",
            "4096",
        ])
        .unwrap();
        assert_eq!(sim.fault_error_status, vec![429, 503]);
        assert_eq!(sim.flavor, Flavor::LlamaServer);
        assert_eq!(sim.fault_error_body, ErrorBody::Html);
        assert_eq!(
            (sim.eos_after, sim.max_output, sim.max_model_len),
            (Some(7), Some(100), 4096)
        );
        assert!(sim.no_tokenize && sim.no_prefix_cache);
        sim.validate().unwrap();
    }

    #[test]
    fn telemetry_flags_parse() {
        let sim = parse(&[
            "--kv-cache-tokens",
            "4096",
            "--gpu-power-w",
            "350.5",
            "--gpus",
            "8",
            "--gpu-throttle-mask",
            "0x4",
            "--metrics-fault",
            "huge",
        ])
        .unwrap();
        assert_eq!((sim.kv_cache_tokens, sim.gpu_power_w, sim.gpus), (4096, Some(350.5), 8));
        assert_eq!((sim.gpu_throttle_mask, sim.metrics_fault), (4, MetricsFault::Huge));
        assert_eq!(parse(&["--gpu-throttle-mask", "12"]).unwrap().gpu_throttle_mask, 12);
        sim.validate().unwrap();
    }
}
