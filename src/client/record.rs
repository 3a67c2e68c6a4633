//! The one per-request record: everything measured about a request, on its own clock.
//!
//! Every metric is computed from these records (live, or later from `requests.jsonl`), so the
//! record holds raw times, not derived figures. Times are microseconds after the request's send
//! start, taken on a monotonic clock in the task that read the bytes.

use crate::workload::TestKind;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a request failed. Each class is counted on its own in the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorClass {
    /// TCP connect (or the HTTP handshake on it) failed.
    Connect,
    /// The TLS handshake failed, usually on the server's certificate.
    Tls,
    /// The proxy could not be reached or refused the tunnel.
    Proxy,
    /// The server answered with a non-2xx status.
    Http(u16),
    TimeoutConnect,
    /// No generated token (not even a response) within `--ttft-timeout`.
    TimeoutTtft,
    /// No event between two tokens within `--idle-timeout`.
    TimeoutIdle,
    /// The whole request took longer than `--request-timeout`.
    TimeoutRequest,
    /// The connection was closed or reset after the request was sent, before any response.
    NoResponse,
    /// The connection closed in the middle of the response.
    StreamCut,
    /// The connection was reset (RST) in the middle of the response.
    StreamReset,
    /// The response ended normally, but the stream had neither `[DONE]` nor a `finish_reason`.
    StreamIncomplete,
    /// An event that is not valid JSON, or a response that is not an event stream.
    MalformedStream,
    /// An event with invalid UTF-8 (its text still counts, with U+FFFD in place of the bytes).
    InvalidUtf8,
    /// An event larger than the client's limit (16 MiB); it was skipped.
    EventTooLarge,
    /// The stream went on far past `max_tokens` without finishing (a stream that never ends).
    StreamOverrun,
    /// The server sent an `error` object inside the stream.
    ServerError,
    /// Stopped by the user (Ctrl-C) before it finished.
    Cancelled,
}

impl ErrorClass {
    pub fn key(&self) -> String {
        match self {
            ErrorClass::Connect => "connect".into(),
            ErrorClass::Tls => "tls".into(),
            ErrorClass::Proxy => "proxy".into(),
            ErrorClass::Http(status) => format!("http_{status}"),
            ErrorClass::TimeoutConnect => "timeout_connect".into(),
            ErrorClass::TimeoutTtft => "timeout_ttft".into(),
            ErrorClass::TimeoutIdle => "timeout_idle".into(),
            ErrorClass::TimeoutRequest => "timeout_request".into(),
            ErrorClass::NoResponse => "no_response".into(),
            ErrorClass::StreamCut => "stream_cut".into(),
            ErrorClass::StreamReset => "stream_reset".into(),
            ErrorClass::StreamIncomplete => "stream_incomplete".into(),
            ErrorClass::MalformedStream => "malformed_stream".into(),
            ErrorClass::InvalidUtf8 => "invalid_utf8".into(),
            ErrorClass::EventTooLarge => "event_too_large".into(),
            ErrorClass::StreamOverrun => "stream_overrun".into(),
            ErrorClass::ServerError => "server_error".into(),
            ErrorClass::Cancelled => "cancelled".into(),
        }
    }

    pub fn parse(key: &str) -> Option<Self> {
        Some(match key {
            "connect" => ErrorClass::Connect,
            "tls" => ErrorClass::Tls,
            "proxy" => ErrorClass::Proxy,
            "timeout_connect" => ErrorClass::TimeoutConnect,
            "timeout_ttft" => ErrorClass::TimeoutTtft,
            "timeout_idle" => ErrorClass::TimeoutIdle,
            "timeout_request" => ErrorClass::TimeoutRequest,
            "no_response" => ErrorClass::NoResponse,
            "stream_cut" => ErrorClass::StreamCut,
            "stream_reset" => ErrorClass::StreamReset,
            "stream_incomplete" => ErrorClass::StreamIncomplete,
            "malformed_stream" => ErrorClass::MalformedStream,
            "invalid_utf8" => ErrorClass::InvalidUtf8,
            "event_too_large" => ErrorClass::EventTooLarge,
            "stream_overrun" => ErrorClass::StreamOverrun,
            "server_error" => ErrorClass::ServerError,
            "cancelled" => ErrorClass::Cancelled,
            other => ErrorClass::Http(other.strip_prefix("http_")?.parse().ok()?),
        })
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key())
    }
}

impl Serialize for ErrorClass {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.key())
    }
}

impl<'de> Deserialize<'de> for ErrorClass {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let key = String::deserialize(d)?;
        ErrorClass::parse(&key).ok_or_else(|| serde::de::Error::custom(format!("unknown error class {key}")))
    }
}

/// Warm-up requests are written to disk but left out of every statistic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Warmup,
    #[default]
    Measured,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// Sequence number within the run (unique across the shards of a distributed run).
    pub id: u64,
    /// The run this request belongs to (`--run-id`, or derived from the seed and start time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// `--shard I/N`: the index of the shard that sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<u32>,
    pub test: TestKind,
    /// Concurrency of the step (or the stress run) that sent it.
    pub concurrency: u32,
    /// Which of the step's connections (workers) sent it.
    pub conn: u32,
    /// The load point of the step that sent it (absent in files of older versions: then the
    /// step's `concurrency`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<crate::load::LoadPoint>,
    /// With `--repeat N`: the repetition (1-based) of the step that sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat: Option<u32>,
    /// When the request was due, seconds after the run started: its time in the open-loop
    /// schedule, or in a closed loop the end of the connection's previous response (the step's
    /// release, or its ramp-up turn, for the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intended_s: Option<f64>,
    /// Time it waited in the client's queue for a free connection (the `--max-concurrency`
    /// cap, or a new connection being opened), in µs.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub queue_us: u64,
    #[serde(default)]
    pub phase: Phase,
    /// Send start, seconds after the run started.
    pub start_s: f64,
    /// Time spent opening a new connection just before this request (0 when reused).
    #[serde(default)]
    pub connect_us: u64,
    /// How long after it was due the request was sent, connecting aside: the client's own delay
    /// (due = the step's start for a first request, else the connection's previous request end).
    #[serde(default)]
    pub send_delay_us: u64,
    pub headers_us: Option<u64>,
    /// First SSE event of any kind (a role-only chunk counts here, never as a token).
    pub first_event_us: Option<u64>,
    /// First event carrying generated text: the end of TTFT.
    pub first_token_us: Option<u64>,
    pub last_token_us: Option<u64>,
    pub end_us: u64,
    pub status: Option<u16>,
    pub ok: bool,
    pub error: Option<ErrorClass>,
    pub error_message: Option<String>,
    /// Times the request was sent again on a fresh connection because a kept-alive one closed
    /// before any response (at most once); the record measures the last attempt.
    #[serde(default)]
    pub resends: u32,
    /// Why the earlier attempt failed, when the request was resent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resend_reason: Option<String>,
    /// Time the resent attempt took, from its send to the resend: the server's doing, not the
    /// client's, so it is not counted as send delay.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub resend_wait_us: u64,
    /// Prompt tokens asked for (`--isl`, a trace's `input_length`), as the server counts them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_isl: Option<u64>,
    /// Output tokens asked for: the request's `max_tokens` (not for the input test).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_osl: Option<u64>,
    /// The dataset row (0-based, in file order) the prompt came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row: Option<u64>,
    /// The shared-prefix group of the prompt (`--prefix-groups`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_group: Option<u32>,
    /// The conversation (`--turns`) this request belongs to, and its turn (0-based).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turn: Option<u32>,
    /// The first request of its prefix group in the run (the prefix not yet cached).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub prefix_first: bool,
    /// Bytes of image data URLs in the request body.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub image_bytes: u64,
    pub prompt_tokens: u64,
    pub output_tokens: u64,
    /// Token counts are estimates: the server sent no `usage`.
    pub tokens_estimated: bool,
    /// Arrival of every event carrying generated text.
    pub token_us: Vec<u64>,
    /// Tokens in the first text chunk, when the server said so: it sent usage in every chunk
    /// (vLLM's `continuous_usage_stats`, see `--continuous-usage`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_chunk_tokens: Option<u64>,
    /// Tokens in each text chunk (one per `token_us`), from per-chunk usage; kept only when
    /// some chunk carried more than one token.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chunk_tokens: Vec<u32>,
    /// Number of SSE events of any kind (role, content, usage, `[DONE]`).
    pub events: u32,
    /// llama.cpp's own speed figures, when the server sends them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_timings: Option<crate::client::event::ServerTimings>,
    /// The last `finish_reason` the stream sent (`stop`, `length`, …), at most 32 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
    /// Prompt tokens the server served from its prefix cache
    /// (`usage.prompt_tokens_details.cached_tokens`), when it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_tokens: Option<u64>,
    /// First event carrying reasoning text (`delta.reasoning_content` or `delta.reasoning`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_reasoning_us: Option<u64>,
    /// First event carrying answer text (`delta.content`, or a completion's `text`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_answer_us: Option<u64>,
    /// Reasoning tokens among the output tokens: the server's
    /// `usage.completion_tokens_details.reasoning_tokens`, else the events with reasoning text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens: Option<u64>,
    /// `reasoning_tokens` is an estimate: the server sent no count, so it is the number of
    /// events with reasoning text.
    #[serde(default, skip_serializing_if = "is_false")]
    pub reasoning_tokens_estimated: bool,
    /// Embeddings: the inputs the request carried (0 for generation requests).
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub inputs: u32,
    /// The answer's text, when the request asked for it (`Outgoing::keep_text`), at most
    /// [`ANSWER_TEXT_LIMIT`] bytes. Never written to disk.
    #[serde(skip)]
    pub answer_text: Option<String>,
}

/// Most answer text kept on a record (`Outgoing::keep_text`).
pub const ANSWER_TEXT_LIMIT: usize = 1 << 20;

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl RequestRecord {
    pub fn ttft_us(&self) -> Option<u64> {
        self.first_token_us
    }

    /// The load point of the step that sent it.
    pub fn point(&self) -> crate::load::LoadPoint {
        self.load
            .unwrap_or(crate::load::LoadPoint::Concurrency(self.concurrency))
    }

    /// When it was due, seconds after the run started (its send start when not recorded).
    pub fn intended_s(&self) -> f64 {
        self.intended_s.unwrap_or(self.start_s)
    }

    /// Send lateness: actual send start − intended send time, in µs (never negative).
    pub fn lateness_us(&self) -> u64 {
        ((self.start_s - self.intended_s()).max(0.0) * 1e6).round() as u64
    }

    /// End time of the request as seconds after the run started.
    pub fn end_s(&self) -> f64 {
        self.start_s + self.end_us as f64 / 1e6
    }

    /// Time spent generating: first to last token.
    pub fn generation_us(&self) -> Option<u64> {
        match (self.first_token_us, self.last_token_us) {
            (Some(first), Some(last)) if last > first => Some(last - first),
            _ => None,
        }
    }

    /// Number of events that carried generated text.
    pub fn text_chunks(&self) -> u64 {
        self.token_us.len() as u64
    }

    /// Tokens that arrived after the first text chunk: what the time from the first to the last
    /// token was spent on. Exact (output tokens − tokens in the first chunk) when the server
    /// said how many tokens each chunk carried; otherwise output tokens × (chunks − 1) / chunks,
    /// which is exact for evenly sized chunks and is output tokens − 1 for one token per chunk.
    /// `None` without any output token.
    pub fn tokens_after_first_chunk(&self) -> Option<f64> {
        if self.output_tokens == 0 {
            return None;
        }
        if let Some(first) = self.first_chunk_tokens {
            return Some(self.output_tokens.saturating_sub(first) as f64);
        }
        let chunks = self.text_chunks();
        // One token per chunk, or no chunk times to say otherwise: the first chunk is one token.
        if chunks == 0 || chunks == self.output_tokens {
            return Some((self.output_tokens - 1) as f64);
        }
        Some(self.output_tokens as f64 * (chunks - 1) as f64 / chunks as f64)
    }

    /// The tokens after the first chunk were estimated from the chunk count, the chunks carrying
    /// several tokens (or fewer than one) on average.
    pub fn tokens_per_chunk_estimated(&self) -> bool {
        let chunks = self.text_chunks();
        self.first_chunk_tokens.is_none() && chunks > 0 && self.output_tokens > 0 && chunks != self.output_tokens
    }

    /// Tokens carried by text chunk `index`: exact from per-chunk usage, else the request's
    /// average (output tokens / text chunks).
    pub fn tokens_in_chunk(&self, index: usize) -> f64 {
        if let Some(&n) = self.chunk_tokens.get(index) {
            return f64::from(n);
        }
        if self.first_chunk_tokens.is_some() && self.chunk_tokens.is_empty() {
            return 1.0; // per-chunk usage said one token each
        }
        match self.text_chunks() {
            0 => 1.0,
            chunks => self.output_tokens as f64 / chunks as f64,
        }
    }

    /// Per-connection generation speed: tokens after the first chunk / (last token − first
    /// token), i.e. (output tokens − 1) / (last − first) for one token per chunk.
    pub fn generation_tps(&self) -> Option<f64> {
        let gen = self.generation_us()?;
        let tokens = self.tokens_after_first_chunk().filter(|&n| n > 0.0)?;
        Some(tokens / (gen as f64 / 1e6))
    }

    /// TPOT = (E2E − TTFT) / tokens after the first chunk (output tokens − 1 for one token per
    /// chunk).
    pub fn tpot_us(&self) -> Option<f64> {
        let ttft = self.first_token_us?;
        let tokens = self.tokens_after_first_chunk().filter(|&n| n > 0.0)?;
        (self.end_us > ttft).then(|| (self.end_us - ttft) as f64 / tokens)
    }

    /// Prefill speed = prompt tokens / TTFT.
    pub fn prefill_tps(&self) -> Option<f64> {
        let ttft = self.first_token_us.or(self.first_event_us)?;
        (ttft > 0 && self.prompt_tokens > 0).then(|| self.prompt_tokens as f64 / (ttft as f64 / 1e6))
    }

    /// The server says it processed under half of the prompt (llama.cpp's `timings.prompt_n`
    /// against the prompt's token count): it reused a cached prefix.
    pub fn server_reused_prompt(&self) -> bool {
        let processed = self.server_timings.as_ref().and_then(|t| t.prompt_n);
        match processed {
            Some(n) if !self.tokens_estimated && self.prompt_tokens >= 4 => n < self.prompt_tokens as f64 / 2.0,
            _ => false,
        }
    }

    /// Prompt tokens the server reused from its cache, and where it said so: vLLM's
    /// `cached_tokens`, or llama.cpp's `timings.prompt_n` (tokens it processed) against the
    /// prompt's count.
    pub fn cached_prompt_tokens(&self) -> Option<(u64, &'static str)> {
        if let Some(n) = self.cached_tokens {
            return Some((n, "usage.prompt_tokens_details.cached_tokens"));
        }
        let processed = self.server_timings.as_ref()?.prompt_n?;
        (!self.tokens_estimated && self.prompt_tokens > 0).then(|| {
            (
                self.prompt_tokens.saturating_sub(processed.max(0.0) as u64),
                "timings.prompt_n",
            )
        })
    }

    /// Tokens received by a request that then failed: kept, and counted in their own column.
    pub fn partial_tokens(&self) -> u64 {
        if self.ok {
            0
        } else {
            self.output_tokens
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_class_keys_round_trip() {
        for class in [
            ErrorClass::Connect,
            ErrorClass::Tls,
            ErrorClass::Proxy,
            ErrorClass::Http(429),
            ErrorClass::TimeoutConnect,
            ErrorClass::TimeoutTtft,
            ErrorClass::TimeoutIdle,
            ErrorClass::TimeoutRequest,
            ErrorClass::NoResponse,
            ErrorClass::StreamCut,
            ErrorClass::StreamReset,
            ErrorClass::StreamIncomplete,
            ErrorClass::MalformedStream,
            ErrorClass::InvalidUtf8,
            ErrorClass::EventTooLarge,
            ErrorClass::StreamOverrun,
            ErrorClass::ServerError,
            ErrorClass::Cancelled,
        ] {
            assert_eq!(ErrorClass::parse(&class.key()), Some(class));
        }
        assert_eq!(ErrorClass::parse("http_abc"), None);
    }

    #[test]
    fn derived_figures() {
        let r = RequestRecord {
            first_token_us: Some(100_000),
            last_token_us: Some(1_100_000),
            end_us: 1_100_000,
            output_tokens: 11,
            prompt_tokens: 500,
            ok: true,
            ..Default::default()
        };
        assert_eq!(r.generation_tps(), Some(10.0));
        assert_eq!(r.tpot_us(), Some(100_000.0));
        assert_eq!(r.prefill_tps(), Some(5000.0));
        assert_eq!(r.partial_tokens(), 0);
    }

    /// A request of `tokens` output tokens whose text chunks arrive every 10 ms from 100 ms on,
    /// ending 1 ms after the last one.
    fn chunked(tokens: u64, chunks: u64) -> RequestRecord {
        let token_us: Vec<u64> = (0..chunks).map(|i| 100_000 + i * 10_000).collect();
        RequestRecord {
            first_token_us: token_us.first().copied(),
            last_token_us: token_us.last().copied(),
            end_us: token_us.last().unwrap() + 1_000,
            token_us,
            output_tokens: tokens,
            ok: true,
            ..Default::default()
        }
    }

    #[test]
    fn tokens_after_the_first_chunk() {
        struct Case {
            name: &'static str,
            rec: RequestRecord,
            after_first: f64,
            estimated: bool,
            /// tokens per second over first → last token
            tps: f64,
        }
        let exact = |mut rec: RequestRecord, tokens: &[u32]| {
            rec.first_chunk_tokens = Some(u64::from(tokens[0]));
            if tokens.iter().any(|&n| n != 1) {
                rec.chunk_tokens = tokens.to_vec();
            }
            rec
        };
        let cases = [
            Case {
                name: "one token per chunk",
                rec: chunked(10, 10),
                after_first: 9.0,
                estimated: false,
                tps: 100.0, // 9 tokens in 90 ms
            },
            Case {
                name: "one token per chunk, said by per-chunk usage",
                rec: exact(chunked(10, 10), &[1; 10]),
                after_first: 9.0,
                estimated: false,
                tps: 100.0,
            },
            Case {
                name: "4 tokens per chunk, exact",
                rec: exact(chunked(40, 10), &[4; 10]),
                after_first: 36.0,
                estimated: false,
                tps: 400.0, // 36 tokens in 90 ms
            },
            Case {
                name: "4 tokens per chunk, estimated",
                rec: chunked(40, 10),
                after_first: 36.0,
                estimated: true,
                tps: 400.0,
            },
            Case {
                name: "10 tokens in 4, 4, 2, exact",
                rec: exact(chunked(10, 3), &[4, 4, 2]),
                after_first: 6.0,
                estimated: false,
                tps: 300.0, // 6 tokens in 20 ms
            },
            Case {
                name: "10 tokens in 4, 4, 2, estimated",
                rec: chunked(10, 3),
                after_first: 10.0 * 2.0 / 3.0,
                estimated: true,
                tps: 10.0 * 2.0 / 3.0 / 0.020,
            },
        ];
        for case in cases {
            let r = &case.rec;
            let after = r.tokens_after_first_chunk().unwrap();
            assert!((after - case.after_first).abs() < 1e-9, "{}: {after}", case.name);
            assert_eq!(r.tokens_per_chunk_estimated(), case.estimated, "{}", case.name);
            let tps = r.generation_tps().unwrap();
            assert!((tps - case.tps).abs() < 1e-6, "{}: {tps} tok/s", case.name);
            // TPOT: E2E − TTFT = the generation time + 1 ms, over the same tokens.
            let gen_us = (r.last_token_us.unwrap() - r.first_token_us.unwrap()) as f64;
            let tpot = r.tpot_us().unwrap();
            assert!(
                (tpot - (gen_us + 1_000.0) / case.after_first).abs() < 1e-6,
                "{}: TPOT {tpot}",
                case.name
            );
        }
    }

    #[test]
    fn tokens_in_each_chunk() {
        let mut r = chunked(10, 3);
        assert!(
            (r.tokens_in_chunk(2) - 10.0 / 3.0).abs() < 1e-12,
            "the average when not said"
        );
        r.first_chunk_tokens = Some(4);
        r.chunk_tokens = vec![4, 4, 2];
        assert_eq!(r.tokens_in_chunk(2), 2.0);
        let mut r = chunked(3, 3);
        r.first_chunk_tokens = Some(1);
        assert_eq!(r.tokens_in_chunk(1), 1.0);
    }

    #[test]
    fn old_records_read_and_give_the_same_figures() {
        // A line written before per-chunk counts existed.
        let line = r#"{"id":1,"test":"output","concurrency":1,"conn":0,"start_s":0.0,"headers_us":10,
            "first_event_us":50,"first_token_us":100000,"last_token_us":190000,"end_us":191000,
            "status":200,"ok":true,"error":null,"error_message":null,"prompt_tokens":5,
            "output_tokens":10,"tokens_estimated":false,
            "token_us":[100000,110000,120000,130000,140000,150000,160000,170000,180000,190000],"events":12}"#;
        let r: RequestRecord = serde_json::from_str(line).unwrap();
        assert_eq!((r.first_chunk_tokens, r.chunk_tokens.len()), (None, 0));
        assert_eq!(r.generation_tps(), Some(100.0));
        assert_eq!(r.tpot_us(), Some(91_000.0 / 9.0));
        // New fields are left out of a line when there is nothing to say.
        let written = serde_json::to_string(&r).unwrap();
        assert!(!written.contains("first_chunk_tokens") && !written.contains("chunk_tokens"));
        for key in [
            "finish_reason",
            "cached_tokens",
            "first_reasoning_us",
            "first_answer_us",
            "reasoning_tokens",
            "inputs",
            "answer_text",
        ] {
            assert!(!written.contains(key), "{key} written without a value");
        }
        assert_eq!((r.finish_reason.as_deref(), r.cached_tokens, r.inputs), (None, None, 0));
        assert_eq!(
            (r.first_reasoning_us, r.first_answer_us, r.reasoning_tokens),
            (None, None, None)
        );
    }

    #[test]
    fn new_fields_round_trip_and_answer_text_stays_off_disk() {
        let r = RequestRecord {
            ok: true,
            finish_reason: Some("length".into()),
            cached_tokens: Some(32),
            first_reasoning_us: Some(10),
            first_answer_us: Some(90),
            first_token_us: Some(10),
            reasoning_tokens: Some(7),
            reasoning_tokens_estimated: true,
            inputs: 4,
            answer_text: Some("secret answer".into()),
            ..Default::default()
        };
        let line = serde_json::to_string(&r).unwrap();
        assert!(!line.contains("secret answer") && !line.contains("answer_text"));
        let back: RequestRecord = serde_json::from_str(&line).unwrap();
        assert_eq!(back, RequestRecord { answer_text: None, ..r });
    }

    #[test]
    fn one_token_has_no_speed() {
        let r = RequestRecord {
            first_token_us: Some(10),
            last_token_us: Some(10),
            output_tokens: 1,
            ..Default::default()
        };
        assert_eq!(r.generation_tps(), None);
        assert_eq!(r.tpot_us(), None);
    }
}
