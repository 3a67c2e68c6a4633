//! Simulator settings.
//!
//! The in-process configuration used by `serve`, tests and `llm-bench demo`. It derives no
//! clap traits: the `serve` flags are `cli::sim::SimArgs`, converted into this struct, and
//! both use the defaults named here so that the two cannot drift apart.

use anyhow::{bail, Result};

pub const DEFAULT_PORT: u16 = 8000;
pub const DEFAULT_MODEL: &str = "llm-bench-sim";
pub const DEFAULT_PREFILL_US_PER_TOKEN: f64 = 20.0;
pub const DEFAULT_DECODE_BASE_MS: f64 = 10.0;
pub const DEFAULT_DECODE_MS_PER_SEQ: f64 = 0.1;
pub const DEFAULT_MAX_BATCH: usize = 64;
pub const DEFAULT_MAX_TOKENS: u64 = 128;
pub const DEFAULT_TOKENS_PER_CHUNK: u64 = 1;
/// `max_model_len` reported by /tokenize when none is configured.
pub const DEFAULT_MAX_MODEL_LEN: u64 = 32_768;
pub const DEFAULT_FAULT_ERROR_STATUS: u16 = 500;
pub const DEFAULT_FAULT_STALL_MS: u64 = 2000;
/// Just over 1 MiB: past the event size many SSE clients assume.
pub const DEFAULT_FAULT_HUGE_EVENT_KIB: u64 = 1100;
/// `--gpus` when not given.
pub const DEFAULT_GPUS: u32 = 1;
/// The most GPUs `--gpus` accepts: a node's worth and then some.
pub const MAX_GPUS: u32 = 1024;

/// Which server's wire format the simulator imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Flavor {
    /// OpenAI's layout (also vLLM's and SGLang's).
    #[default]
    Openai,
    /// llama.cpp's llama-server, as recorded in docs/llama-server-notes.md.
    LlamaServer,
}

/// What the body of an injected error answer looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ErrorBody {
    /// The flavor's JSON error object.
    #[default]
    Json,
    /// An HTML page, as a reverse proxy in front of the server sends.
    Html,
}

/// How GET /metrics misbehaves, for tests of a client that scrapes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MetricsFault {
    /// A correct answer.
    #[default]
    None,
    /// The correct answer, after 5 s.
    Slow,
    /// A valid-looking answer of about 20 MB.
    Huge,
    /// An HTML page with status 200, as a login portal in front of the server sends.
    Garbage,
}

/// Configuration of the built-in OpenAI-compatible simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// TCP port to listen on. 0 picks a free port.
    pub port: u16,

    /// Address to listen on: loopback, or (in tests) an address of a network namespace's
    /// interface the test made.
    pub host: std::net::Ipv4Addr,

    /// Model id served by GET /v1/models and accepted in requests.
    pub model: String,

    /// Wire format to imitate: stream layout, error bodies, and llama-server's /props.
    pub flavor: Flavor,

    /// Prefill cost per prompt token, in microseconds.
    pub prefill_us_per_token: f64,

    /// Duration of one decode step with a single sequence, in milliseconds.
    pub decode_base_ms: f64,

    /// Added to the decode step time for every active sequence, in milliseconds.
    pub decode_ms_per_seq: f64,

    /// Sequences decoded at once; further requests wait in a FIFO queue.
    pub max_batch: usize,

    /// Output tokens when a request sets neither max_tokens nor max_completion_tokens.
    pub default_max_tokens: u64,

    /// Tokens carried by each streamed chunk (one chunk per decode step).
    pub tokens_per_chunk: u64,

    /// Never send usage, even when the request asks for it.
    pub no_usage: bool,

    /// Chat streams do not start with a role-only chunk.
    pub no_role_chunk: bool,

    /// Answer requests containing an image with HTTP 500, like llama.cpp without an mmproj.
    pub reject_images: bool,

    /// Require `Authorization: Bearer KEY` on /v1 endpoints.
    pub api_key: Option<String>,

    /// Seed for the deterministic fault injection.
    pub seed: u64,

    /// Probability that a request is answered with --fault-error-status before any token.
    pub fault_error_rate: f64,

    /// HTTP status(es) used by --fault-error-rate; with a list (429,500,503) each error picks one.
    pub fault_error_status: Vec<u16>,

    /// Retry-After header, in seconds, on the injected 429 and 503 answers.
    pub fault_retry_after: Option<u64>,

    /// Body of the injected error answers.
    pub fault_error_body: ErrorBody,

    /// The `message` of the injected JSON errors, instead of "simulated fault: HTTP <status>"
    /// (tests use it to send text a report must escape).
    pub fault_error_message: Option<String>,

    /// Probability that a stream is cut (connection closed) after half of its tokens.
    pub fault_cut_rate: f64,

    /// Probability that a stream carries one malformed (non-JSON) chunk in the middle.
    pub fault_malformed_rate: f64,

    /// Probability that a stream pauses for --fault-stall-ms in the middle.
    pub fault_stall_rate: f64,

    /// Length of the pause injected by --fault-stall-rate, in milliseconds.
    pub fault_stall_ms: u64,

    // The faults below never combine: a request gets at most one of them, and only when none
    // of the four above hit it, so each maps to exactly one outcome a client can count.
    /// Probability that the request is read and the connection reset (RST) before any response.
    pub fault_reset_rate: f64,

    /// Probability that the request is read and never answered (the connection stays open).
    pub fault_no_answer_rate: f64,

    /// Probability that the connection is reset (RST) after half of the tokens.
    pub fault_reset_stream_rate: f64,

    /// Probability that the stream ends cleanly after half of its tokens, with neither a
    /// finish_reason nor [DONE].
    pub fault_no_done_rate: f64,

    /// Probability that the middle chunk's text carries invalid UTF-8.
    pub fault_invalid_utf8_rate: f64,

    /// Probability that the stream sends an `error` object halfway, then [DONE] (as vLLM does).
    pub fault_error_event_rate: f64,

    /// Probability that the middle chunk is one event of --fault-huge-event-kib KiB.
    pub fault_huge_event_rate: f64,

    /// Size of the event injected by --fault-huge-event-rate, in KiB.
    pub fault_huge_event_kib: u64,

    /// Probability that the stream never finishes: tokens keep coming until the client leaves.
    pub fault_endless_rate: f64,

    /// After N generation responses on one connection, read the next request and close the
    /// connection without answering, as llama-server does with kept-alive connections. 0: never.
    pub close_after_responses: u64,

    /// Do not serve POST /tokenize (it answers 404, as on a server without the route).
    pub no_tokenize: bool,

    /// `max_model_len` reported by /tokenize.
    pub max_model_len: u64,

    /// End of sequence after N tokens: a request without `ignore_eos` stops after
    /// max(N, min_tokens) tokens with finish_reason "stop", unless its limit comes first.
    pub eos_after: Option<u64>,

    /// Cap every request's max_tokens at N (finish_reason "length"), as a server whose
    /// context or configuration limits the output.
    pub max_output: Option<u64>,

    /// Turn the prefix cache off: every prompt is prefilled in full, and the OpenAI flavor
    /// reports no `prompt_tokens_details`.
    pub no_prefix_cache: bool,
    /// A reasoning model: the first N generated tokens of each chat answer stream as
    /// `delta.reasoning_content`, the rest as `delta.content`; usage reports them as
    /// `completion_tokens_details.reasoning_tokens`. 0: no reasoning.
    pub reasoning_tokens: u64,

    /// KV cache capacity in tokens behind GET /metrics' KV usage: the tokens the running
    /// sequences hold (prompt plus generated so far) / N, capped at 1. 0: usage is the running
    /// sequences / --max-batch.
    pub kv_cache_tokens: u64,

    /// Serve GET /dcgm/metrics, a DCGM exporter's page, with every GPU drawing this many watts.
    /// `None`: no such route.
    pub gpu_power_w: Option<f64>,

    /// GPUs listed by GET /dcgm/metrics.
    pub gpus: u32,

    /// `DCGM_FI_DEV_CLOCK_THROTTLE_REASONS` of every GPU (0x4: software power cap).
    pub gpu_throttle_mask: u64,

    /// How GET /metrics misbehaves.
    pub metrics_fault: MetricsFault,

    /// Answers carry a `Date` header this many seconds off the machine's clock (tests of the
    /// clock-offset estimate); 0: hyper's own header.
    pub clock_offset_s: f64,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            port: DEFAULT_PORT,
            host: std::net::Ipv4Addr::LOCALHOST,
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
            fault_error_message: None,
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
            no_tokenize: false,
            max_model_len: DEFAULT_MAX_MODEL_LEN,
            eos_after: None,
            max_output: None,
            no_prefix_cache: false,
            reasoning_tokens: 0,
            kv_cache_tokens: 0,
            gpu_power_w: None,
            gpus: DEFAULT_GPUS,
            gpu_throttle_mask: 0,
            metrics_fault: MetricsFault::None,
            clock_offset_s: 0.0,
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
        if self.max_model_len == 0 {
            bail!("--max-model-len must be at least 1");
        }
        if self.eos_after == Some(0) {
            bail!("--eos-after must be at least 1");
        }
        if self.max_output == Some(0) {
            bail!("--max-output must be at least 1");
        }
        if let Some(Err(e)) = self.gpu_power_w.map(check_non_negative) {
            bail!("--gpu-power-w: {e}");
        }
        if !(1..=MAX_GPUS).contains(&self.gpus) {
            bail!("--gpus must be between 1 and {MAX_GPUS}");
        }
        if !(self.clock_offset_s.is_finite() && self.clock_offset_s.abs() <= MAX_CLOCK_OFFSET_S) {
            bail!("--clock-offset must be a number of seconds between -{MAX_CLOCK_OFFSET_S} and {MAX_CLOCK_OFFSET_S}");
        }
        Ok(())
    }
}

/// The most `--clock-offset` may shift the Date header (a day).
pub const MAX_CLOCK_OFFSET_S: f64 = 86_400.0;

/// `value` when it is a finite number >= 0, else why not.
pub fn check_non_negative(value: f64) -> std::result::Result<f64, String> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(format!("{value} is not a finite number >= 0"))
    }
}

/// `value` when it is a probability (0 to 1), else why not.
pub fn check_probability(value: f64) -> std::result::Result<f64, String> {
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!("{value} is not a probability between 0 and 1"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_not() {
        SimConfig::default().validate().expect("defaults are valid");
        let bad = [
            SimConfig {
                fault_stall_rate: f64::NAN,
                ..SimConfig::default()
            },
            SimConfig {
                fault_error_status: Vec::new(),
                ..SimConfig::default()
            },
            SimConfig {
                eos_after: Some(0),
                ..SimConfig::default()
            },
            SimConfig {
                max_output: Some(0),
                ..SimConfig::default()
            },
            SimConfig {
                max_model_len: 0,
                ..SimConfig::default()
            },
            SimConfig {
                max_batch: 0,
                ..SimConfig::default()
            },
            SimConfig {
                gpu_power_w: Some(f64::INFINITY),
                ..SimConfig::default()
            },
            SimConfig {
                gpus: 0,
                ..SimConfig::default()
            },
        ];
        for cfg in bad {
            assert!(cfg.validate().is_err(), "{cfg:?}");
        }
    }
}
