//! Simulator settings.
//!
//! One struct serves both as the `serve` subcommand's flags (via `clap::Args`)
//! and as the in-process configuration used by tests and `llm-bench demo`, so
//! the two can never drift apart. The defaults live in named constants that
//! both the flag attributes and `Default` use for the same reason.

use anyhow::{bail, Result};

const DEFAULT_PORT: u16 = 8000;
const DEFAULT_MODEL: &str = "llm-bench-sim";
const DEFAULT_PREFILL_US_PER_TOKEN: f64 = 20.0;
const DEFAULT_DECODE_BASE_MS: f64 = 10.0;
const DEFAULT_DECODE_MS_PER_SEQ: f64 = 0.1;
const DEFAULT_MAX_BATCH: usize = 64;
const DEFAULT_MAX_TOKENS: u64 = 128;
const DEFAULT_TOKENS_PER_CHUNK: u64 = 1;
const DEFAULT_FAULT_ERROR_STATUS: u16 = 500;
const DEFAULT_FAULT_STALL_MS: u64 = 2000;
/// Just over 1 MiB: past the event size many SSE clients assume.
const DEFAULT_FAULT_HUGE_EVENT_KIB: u64 = 1100;

/// Which server's wire format the simulator imitates.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Flavor {
    /// OpenAI's layout (also vLLM's and SGLang's).
    #[default]
    Openai,
    /// llama.cpp's llama-server, as recorded in docs/llama-server-notes.md.
    LlamaServer,
}

/// What the body of an injected error answer looks like.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ErrorBody {
    /// The flavor's JSON error object.
    #[default]
    Json,
    /// An HTML page, as a reverse proxy in front of the server sends.
    Html,
}

/// Configuration of the built-in OpenAI-compatible simulator.
#[derive(clap::Args, Debug, Clone)]
pub struct SimConfig {
    /// TCP port to listen on (127.0.0.1). 0 picks a free port.
    #[arg(long, default_value_t = DEFAULT_PORT)]
    pub port: u16,

    /// Model id served by GET /v1/models and accepted in requests.
    #[arg(long, default_value = DEFAULT_MODEL)]
    pub model: String,

    /// Wire format to imitate: stream layout, error bodies, and llama-server's /props.
    #[arg(long, value_enum, default_value_t = Flavor::Openai)]
    pub flavor: Flavor,

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
    #[arg(long, value_enum, default_value_t = ErrorBody::Json)]
    pub fault_error_body: ErrorBody,

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

    /// A reasoning model: the first N generated tokens of each chat answer stream as
    /// `delta.reasoning_content`, the rest as `delta.content`; usage reports them as
    /// `completion_tokens_details.reasoning_tokens`. 0: no reasoning.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub reasoning_tokens: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            port: DEFAULT_PORT,
            model: DEFAULT_MODEL.to_string(),
            flavor: Flavor::Openai,
            prefill_us_per_token: DEFAULT_PREFILL_US_PER_TOKEN,
            decode_base_ms: DEFAULT_DECODE_BASE_MS,
            decode_ms_per_seq: DEFAULT_DECODE_MS_PER_SEQ,
            max_batch: DEFAULT_MAX_BATCH,
            default_max_tokens: DEFAULT_MAX_TOKENS,
            tokens_per_chunk: DEFAULT_TOKENS_PER_CHUNK,
            no_usage: false,
            no_role_chunk: false,
            reject_images: false,
            api_key: None,
            seed: 0,
            fault_error_rate: 0.0,
            fault_error_status: vec![DEFAULT_FAULT_ERROR_STATUS],
            fault_retry_after: None,
            fault_error_body: ErrorBody::Json,
            fault_cut_rate: 0.0,
            fault_malformed_rate: 0.0,
            fault_stall_rate: 0.0,
            fault_stall_ms: DEFAULT_FAULT_STALL_MS,
            fault_reset_rate: 0.0,
            fault_no_answer_rate: 0.0,
            fault_reset_stream_rate: 0.0,
            fault_no_done_rate: 0.0,
            fault_invalid_utf8_rate: 0.0,
            fault_error_event_rate: 0.0,
            fault_huge_event_rate: 0.0,
            fault_huge_event_kib: DEFAULT_FAULT_HUGE_EVENT_KIB,
            fault_endless_rate: 0.0,
            close_after_responses: 0,
            reasoning_tokens: 0,
        }
    }
}

impl SimConfig {
    /// Checks the invariants the flag parsers enforce, for configs built in
    /// code (tests, `demo`) that never went through clap.
    pub fn validate(&self) -> Result<()> {
        let non_negative_fields = [
            ("--prefill-us-per-token", self.prefill_us_per_token),
            ("--decode-base-ms", self.decode_base_ms),
            ("--decode-ms-per-seq", self.decode_ms_per_seq),
        ];
        for (flag, value) in non_negative_fields {
            if let Err(e) = check_non_negative(value) {
                bail!("{flag}: {e}");
            }
        }
        let rates = [
            ("--fault-error-rate", self.fault_error_rate),
            ("--fault-cut-rate", self.fault_cut_rate),
            ("--fault-malformed-rate", self.fault_malformed_rate),
            ("--fault-stall-rate", self.fault_stall_rate),
            ("--fault-reset-rate", self.fault_reset_rate),
            ("--fault-no-answer-rate", self.fault_no_answer_rate),
            ("--fault-reset-stream-rate", self.fault_reset_stream_rate),
            ("--fault-no-done-rate", self.fault_no_done_rate),
            ("--fault-invalid-utf8-rate", self.fault_invalid_utf8_rate),
            ("--fault-error-event-rate", self.fault_error_event_rate),
            ("--fault-huge-event-rate", self.fault_huge_event_rate),
            ("--fault-endless-rate", self.fault_endless_rate),
        ];
        for (flag, value) in rates {
            if let Err(e) = check_probability(value) {
                bail!("{flag}: {e}");
            }
        }
        if self.max_batch == 0 {
            bail!("--max-batch must be at least 1");
        }
        if self.default_max_tokens == 0 {
            bail!("--default-max-tokens must be at least 1");
        }
        if !(1..=4096).contains(&self.tokens_per_chunk) {
            bail!("--tokens-per-chunk must be between 1 and 4096");
        }
        if self.fault_error_status.is_empty() || self.fault_error_status.iter().any(|s| !(400..=599).contains(s)) {
            bail!("--fault-error-status must be one or more HTTP error statuses (400-599)");
        }
        if !(1..=1_048_576).contains(&self.fault_huge_event_kib) {
            bail!("--fault-huge-event-kib must be between 1 and 1048576");
        }
        Ok(())
    }
}

fn check_non_negative(value: f64) -> std::result::Result<f64, String> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(format!("{value} is not a finite number >= 0"))
    }
}

fn check_probability(value: f64) -> std::result::Result<f64, String> {
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!("{value} is not a probability between 0 and 1"))
    }
}

fn non_negative(s: &str) -> std::result::Result<f64, String> {
    let value: f64 = s.parse().map_err(|e| format!("{e}"))?;
    check_non_negative(value)
}

fn probability(s: &str) -> std::result::Result<f64, String> {
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
        sim: SimConfig,
    }

    #[test]
    fn default_matches_flag_defaults() {
        let parsed = Wrapper::try_parse_from(["sim"]).expect("no flags parse").sim;
        let default = SimConfig::default();
        // api_key is skipped: the flag may pick it up from the environment.
        assert_eq!(parsed.port, default.port);
        assert_eq!(parsed.model, default.model);
        assert_eq!(parsed.prefill_us_per_token, default.prefill_us_per_token);
        assert_eq!(parsed.decode_base_ms, default.decode_base_ms);
        assert_eq!(parsed.decode_ms_per_seq, default.decode_ms_per_seq);
        assert_eq!(parsed.max_batch, default.max_batch);
        assert_eq!(parsed.default_max_tokens, default.default_max_tokens);
        assert_eq!(parsed.tokens_per_chunk, default.tokens_per_chunk);
        assert_eq!(parsed.no_usage, default.no_usage);
        assert_eq!(parsed.no_role_chunk, default.no_role_chunk);
        assert_eq!(parsed.reject_images, default.reject_images);
        assert_eq!(parsed.seed, default.seed);
        assert_eq!(parsed.fault_error_rate, default.fault_error_rate);
        assert_eq!(parsed.fault_error_status, default.fault_error_status);
        assert_eq!(parsed.fault_cut_rate, default.fault_cut_rate);
        assert_eq!(parsed.fault_malformed_rate, default.fault_malformed_rate);
        assert_eq!(parsed.fault_stall_rate, default.fault_stall_rate);
        assert_eq!(parsed.fault_stall_ms, default.fault_stall_ms);
        assert_eq!(parsed.flavor, default.flavor);
        assert_eq!(parsed.fault_retry_after, default.fault_retry_after);
        assert_eq!(parsed.fault_error_body, default.fault_error_body);
        assert_eq!(parsed.fault_reset_rate, default.fault_reset_rate);
        assert_eq!(parsed.fault_no_answer_rate, default.fault_no_answer_rate);
        assert_eq!(parsed.fault_reset_stream_rate, default.fault_reset_stream_rate);
        assert_eq!(parsed.fault_no_done_rate, default.fault_no_done_rate);
        assert_eq!(parsed.fault_invalid_utf8_rate, default.fault_invalid_utf8_rate);
        assert_eq!(parsed.fault_error_event_rate, default.fault_error_event_rate);
        assert_eq!(parsed.fault_huge_event_rate, default.fault_huge_event_rate);
        assert_eq!(parsed.fault_huge_event_kib, default.fault_huge_event_kib);
        assert_eq!(parsed.fault_endless_rate, default.fault_endless_rate);
        assert_eq!(parsed.close_after_responses, default.close_after_responses);
        default.validate().expect("defaults are valid");
    }

    #[test]
    fn rejects_bad_values() {
        assert!(Wrapper::try_parse_from(["sim", "--fault-cut-rate", "1.5"]).is_err());
        assert!(Wrapper::try_parse_from(["sim", "--max-batch", "0"]).is_err());
        assert!(Wrapper::try_parse_from(["sim", "--decode-base-ms", "-1"]).is_err());
        assert!(Wrapper::try_parse_from(["sim", "--fault-error-status", "200"]).is_err());
        assert!(Wrapper::try_parse_from(["sim", "--fault-error-status", "429,200"]).is_err());
        assert!(Wrapper::try_parse_from(["sim", "--fault-endless-rate", "2"]).is_err());
        let cfg = SimConfig {
            fault_stall_rate: f64::NAN,
            ..SimConfig::default()
        };
        assert!(cfg.validate().is_err());
        let cfg = SimConfig {
            fault_error_status: Vec::new(),
            ..SimConfig::default()
        };
        assert!(cfg.validate().is_err());
    }

    #[test]
    fn lists_and_flavors_parse() {
        let sim = Wrapper::try_parse_from([
            "sim",
            "--fault-error-status",
            "429,503",
            "--flavor",
            "llama-server",
            "--fault-error-body",
            "html",
        ])
        .unwrap()
        .sim;
        assert_eq!(sim.fault_error_status, vec![429, 503]);
        assert_eq!(sim.flavor, Flavor::LlamaServer);
        assert_eq!(sim.fault_error_body, ErrorBody::Html);
        sim.validate().unwrap();
    }
}
