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
    /// Sequence number within the run.
    pub id: u64,
    pub test: TestKind,
    /// Concurrency of the step (or the stress run) that sent it.
    pub concurrency: u32,
    /// Which of the step's connections (workers) sent it.
    pub conn: u32,
    /// The load point of the step that sent it (absent in files of older versions: then the
    /// step's `concurrency`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<crate::load::LoadPoint>,
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
    pub prompt_tokens: u64,
    pub output_tokens: u64,
    /// Token counts are estimates: the server sent no `usage`.
    pub tokens_estimated: bool,
    /// Arrival of every event carrying generated text.
    pub token_us: Vec<u64>,
    /// Number of SSE events of any kind (role, content, usage, `[DONE]`).
    pub events: u32,
    /// llama.cpp's own speed figures, when the server sends them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_timings: Option<crate::client::event::ServerTimings>,
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

    /// Per-connection generation speed: (output tokens − 1) / (last token − first token).
    pub fn generation_tps(&self) -> Option<f64> {
        let gen = self.generation_us()?;
        (self.output_tokens > 1).then(|| (self.output_tokens - 1) as f64 / (gen as f64 / 1e6))
    }

    /// TPOT = (E2E − TTFT) / (output tokens − 1).
    pub fn tpot_us(&self) -> Option<f64> {
        let ttft = self.first_token_us?;
        (self.output_tokens > 1 && self.end_us > ttft)
            .then(|| (self.end_us - ttft) as f64 / (self.output_tokens - 1) as f64)
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
