//! Per-(step, test) statistics, computed from request records only.
//!
//! The accumulator holds histograms and running sums, never the records themselves, so its
//! memory does not grow with the number of requests. The same code turns a live run and a
//! `requests.jsonl` read back from disk into the same figures.

use super::dist::{Dist, LatencyHistogram, Moments, Spread};
use crate::client::{Phase, RequestRecord};
use crate::workload::TestKind;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// How many distinct error messages a step keeps (with counts); the rest are only counted. The
/// first message of each class is kept beyond this, so a class that comes late is never left
/// without an explanation (the classes are few, so the list stays short).
const ERROR_SAMPLES: usize = 5;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorSample {
    pub class: String,
    pub message: String,
    pub count: u64,
}

/// The figures of one (step, test), as written in `summary.json` under `steps`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepStats {
    pub test: TestKind,
    pub concurrency: u32,
    pub requests_ok: u64,
    pub requests_failed: u64,
    /// Requests sent during warm-up: written to requests.jsonl, left out of every figure here.
    pub requests_warmup: u64,
    /// Requests sent a second time on a fresh connection because a kept-alive one closed (or
    /// was reset) before any response; each counts once in ok or failed, by its last attempt.
    #[serde(default)]
    pub resends: u64,
    /// Failure class → count.
    pub errors: BTreeMap<String, u64>,
    /// First distinct error messages, with how often each occurred.
    pub error_samples: Vec<ErrorSample>,
    /// First send start to last request end among the measured requests.
    pub duration_s: f64,
    pub prompt_tokens: u64,
    /// Output tokens of successful requests.
    pub output_tokens: u64,
    /// Tokens received by requests that then failed.
    pub partial_output_tokens: u64,
    pub output_throughput_tps: f64,
    pub request_throughput_rps: f64,
    /// Aggregate prefill throughput: prompt tokens / duration.
    pub prompt_throughput_tps: f64,
    /// Per request: prompt tokens / TTFT.
    pub prefill_tps: Option<Spread>,
    /// Per request: tokens after the first chunk / (last token − first token).
    pub per_conn_tps: Option<Spread>,
    pub ttft_ms: Option<Dist>,
    /// ITL as chunk gaps: each gap between successive text chunks (vLLM's convention).
    pub itl_ms: Option<Dist>,
    /// ITL per token: each chunk gap divided by the tokens of the chunk that ended it.
    #[serde(default)]
    pub itl_per_token_ms: Option<Dist>,
    pub tpot_ms: Option<Dist>,
    pub e2e_ms: Option<Dist>,
    /// The original script's efficiency: output throughput / theoretical throughput × 100.
    pub efficiency_pct: Option<f64>,
    /// (throughput at N / N) / (throughput at the first step / its N) × 100.
    pub scaling_efficiency_pct: Option<f64>,
    /// Most requests in flight at once, as counted by the client.
    pub max_in_flight: u64,
    /// Some token counts are estimates (the server sent no usage).
    pub tokens_estimated: bool,
    /// Output tokens / text chunks of the successful requests.
    #[serde(default)]
    pub tokens_per_chunk_mean: Option<f64>,
    /// Some request carried several tokens per chunk and the server did not say how many each
    /// chunk held: its per-token figures (speed, TPOT, ITL per token) were estimated from the
    /// chunk count.
    #[serde(default)]
    pub tokens_per_chunk_estimated: bool,
    /// Successful requests for which the server says it processed under half of the prompt
    /// (llama.cpp's `timings.prompt_n`): it reused a cached prefix, which flatters prefill.
    #[serde(default)]
    pub prompt_cache_hits: u64,
    /// The client's own health over the step: when `client_bound`, these figures describe
    /// llm-bench rather than the server.
    #[serde(default)]
    pub client_bound: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<crate::monitor::ClientHealth>,
    /// Machine and process figures over the step, when monitored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<crate::monitor::SystemSummary>,
}

impl StepStats {
    pub fn requests(&self) -> u64 {
        self.requests_ok + self.requests_failed
    }

    pub fn error_rate(&self) -> f64 {
        if self.requests() == 0 {
            0.0
        } else {
            self.requests_failed as f64 / self.requests() as f64
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct StepAccumulator {
    test: TestKind,
    concurrency: u32,
    ok: u64,
    failed: u64,
    warmup: u64,
    resends: u64,
    errors: BTreeMap<String, u64>,
    samples: Vec<ErrorSample>,
    first_start_s: Option<f64>,
    last_end_s: f64,
    prompt_tokens: u64,
    output_tokens: u64,
    partial_tokens: u64,
    tokens_estimated: bool,
    tokens_per_chunk_estimated: bool,
    /// Text chunks of successful requests, for the mean tokens per chunk.
    text_chunks: u64,
    /// Output tokens of the successful requests that had text chunks.
    chunked_tokens: u64,
    prompt_cache_hits: u64,
    ttft: LatencyHistogram,
    itl: LatencyHistogram,
    itl_per_token: LatencyHistogram,
    tpot: LatencyHistogram,
    e2e: LatencyHistogram,
    send_delay: LatencyHistogram,
    per_conn: Moments,
    prefill: Moments,
    /// Generation time per connection, for the original's "theoretical" throughput.
    generation_us_by_conn: HashMap<u32, u64>,
}

impl StepAccumulator {
    pub fn new(test: TestKind, concurrency: u32) -> Self {
        Self {
            test,
            concurrency,
            ..Self::default()
        }
    }

    pub fn add(&mut self, rec: &RequestRecord) {
        if rec.phase == Phase::Warmup {
            self.warmup += 1;
            return;
        }
        self.resends += u64::from(rec.resends);
        self.first_start_s = Some(self.first_start_s.map_or(rec.start_s, |s| s.min(rec.start_s)));
        self.last_end_s = self.last_end_s.max(rec.end_s());
        self.send_delay.record_us(rec.send_delay_us);
        if !rec.ok {
            self.failed += 1;
            self.partial_tokens += rec.partial_tokens();
            let class = rec.error.map(|c| c.key()).unwrap_or_else(|| "unknown".into());
            *self.errors.entry(class.clone()).or_default() += 1;
            let message = rec.error_message.clone().unwrap_or_default();
            if let Some(sample) = self
                .samples
                .iter_mut()
                .find(|s| s.class == class && s.message == message)
            {
                sample.count += 1;
            } else if self.samples.len() < ERROR_SAMPLES || !self.samples.iter().any(|s| s.class == class) {
                self.samples.push(ErrorSample {
                    class,
                    message,
                    count: 1,
                });
            }
            return;
        }
        self.ok += 1;
        self.prompt_tokens += rec.prompt_tokens;
        self.output_tokens += rec.output_tokens;
        self.tokens_estimated |= rec.tokens_estimated;
        if rec.server_reused_prompt() {
            self.prompt_cache_hits += 1;
        }
        self.e2e.record_us(rec.end_us);
        if let Some(ttft) = rec.ttft_us() {
            self.ttft.record_us(ttft);
        }
        self.tokens_per_chunk_estimated |= rec.tokens_per_chunk_estimated();
        if !rec.token_us.is_empty() {
            self.text_chunks += rec.text_chunks();
            self.chunked_tokens += rec.output_tokens;
        }
        for (i, pair) in rec.token_us.windows(2).enumerate() {
            let gap = pair[1].saturating_sub(pair[0]);
            self.itl.record_us(gap);
            // A chunk that carried no token (text whose token was counted earlier) has no
            // per-token gap.
            let tokens = rec.tokens_in_chunk(i + 1);
            if tokens > 0.0 {
                self.itl_per_token.record_us((gap as f64 / tokens).round() as u64);
            }
        }
        if let Some(tpot) = rec.tpot_us() {
            self.tpot.record_us(tpot.round() as u64);
        }
        if let Some(tps) = rec.generation_tps() {
            self.per_conn.add(tps);
        }
        if let Some(tps) = rec.prefill_tps() {
            self.prefill.add(tps);
        }
        if let Some(gen) = rec.generation_us() {
            *self.generation_us_by_conn.entry(rec.conn).or_default() += gen;
        }
    }

    /// How late measured requests were sent (mean, p99 in ms), and the step's ITL p50 and mean
    /// E2E: what the client's health is judged against.
    pub fn client_load(&self) -> crate::monitor::HealthInputs {
        let delay = self.send_delay.dist_ms();
        crate::monitor::HealthInputs {
            send_delay_mean_ms: delay.map(|d| d.mean),
            send_delay_p99_ms: delay.map(|d| d.p99),
            itl_p50_ms: self.itl.dist_ms().map(|d| d.p50),
            e2e_mean_ms: self.e2e.dist_ms().map(|d| d.mean),
            ..Default::default()
        }
    }

    /// The figures so far. `max_in_flight` comes from the live counters (not in records).
    pub fn stats(&self, max_in_flight: u64) -> StepStats {
        let duration_s = self
            .first_start_s
            .map_or(0.0, |first| (self.last_end_s - first).max(0.0));
        let per_second = |x: f64| if duration_s > 0.0 { x / duration_s } else { 0.0 };
        let output_throughput_tps = per_second(self.output_tokens as f64);
        // The original's theoretical throughput: every token at the pace of the connection that
        // spent longest generating. Efficiency reduces to that time over the wall time.
        let longest_generation_s = self.generation_us_by_conn.values().max().map(|&us| us as f64 / 1e6);
        let efficiency_pct = match longest_generation_s {
            Some(gen) if gen > 0.0 && duration_s > 0.0 && self.output_tokens > 0 => {
                let theoretical = self.output_tokens as f64 / gen;
                Some(100.0 * output_throughput_tps / theoretical)
            }
            _ => None,
        };
        StepStats {
            test: self.test,
            concurrency: self.concurrency,
            requests_ok: self.ok,
            requests_failed: self.failed,
            requests_warmup: self.warmup,
            resends: self.resends,
            errors: self.errors.clone(),
            error_samples: self.samples.clone(),
            duration_s,
            prompt_tokens: self.prompt_tokens,
            output_tokens: self.output_tokens,
            partial_output_tokens: self.partial_tokens,
            output_throughput_tps,
            request_throughput_rps: per_second(self.ok as f64),
            prompt_throughput_tps: per_second(self.prompt_tokens as f64),
            prefill_tps: self.prefill.spread(),
            per_conn_tps: self.per_conn.spread(),
            ttft_ms: self.ttft.dist_ms(),
            itl_ms: self.itl.dist_ms(),
            itl_per_token_ms: self.itl_per_token.dist_ms(),
            tpot_ms: self.tpot.dist_ms(),
            e2e_ms: self.e2e.dist_ms(),
            efficiency_pct,
            scaling_efficiency_pct: None,
            max_in_flight,
            tokens_estimated: self.tokens_estimated,
            tokens_per_chunk_mean: (self.text_chunks > 0).then(|| self.chunked_tokens as f64 / self.text_chunks as f64),
            tokens_per_chunk_estimated: self.tokens_per_chunk_estimated,
            prompt_cache_hits: self.prompt_cache_hits,
            client_bound: false,
            client: None,
            system: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ErrorClass;

    fn ok_record(conn: u32, start_s: f64, tokens: &[u64], prompt: u64) -> RequestRecord {
        RequestRecord {
            conn,
            start_s,
            ok: true,
            first_token_us: tokens.first().copied(),
            last_token_us: tokens.last().copied(),
            token_us: tokens.to_vec(),
            end_us: *tokens.last().unwrap() + 1_000,
            output_tokens: tokens.len() as u64,
            prompt_tokens: prompt,
            ..RequestRecord::default()
        }
    }

    #[test]
    fn figures_from_known_records() {
        let mut acc = StepAccumulator::new(TestKind::Output, 2);
        // Two connections, TTFT 100 ms, 10 tokens 10 ms apart, ending 1 ms after the last token.
        let tokens: Vec<u64> = (0..10).map(|i| 100_000 + i * 10_000).collect();
        acc.add(&ok_record(0, 1.0, &tokens, 100));
        acc.add(&ok_record(1, 1.0, &tokens, 100));
        let s = acc.stats(2);
        assert_eq!((s.requests_ok, s.requests_failed), (2, 0));
        assert!((s.duration_s - 0.191).abs() < 1e-9, "{}", s.duration_s);
        assert!((s.output_throughput_tps - 20.0 / 0.191).abs() < 1e-6);
        let ttft = s.ttft_ms.unwrap();
        assert!((ttft.mean - 100.0).abs() < 0.1);
        let itl = s.itl_ms.unwrap();
        assert_eq!(itl.count, 18);
        assert!((itl.p50 - 10.0).abs() < 0.02);
        let per_conn = s.per_conn_tps.unwrap();
        assert!((per_conn.mean - 100.0).abs() < 1e-6, "9 tokens in 90 ms");
        let tpot = s.tpot_ms.unwrap();
        assert!((tpot.mean - 91.0 / 9.0).abs() < 0.05);
        let prefill = s.prefill_tps.unwrap();
        assert!((prefill.mean - 1000.0).abs() < 1e-6, "100 tokens in 100 ms");
        // Longest generation 90 ms over 191 ms of wall time.
        assert!((s.efficiency_pct.unwrap() - 100.0 * 0.090 / 0.191).abs() < 1e-6);
    }

    #[test]
    fn one_token_per_chunk_gives_the_same_itl_both_ways() {
        let mut acc = StepAccumulator::new(TestKind::Output, 1);
        let tokens: Vec<u64> = (0..10).map(|i| 100_000 + i * 10_000).collect();
        acc.add(&ok_record(0, 1.0, &tokens, 100));
        let s = acc.stats(1);
        assert_eq!(s.itl_ms, s.itl_per_token_ms);
        assert_eq!(s.tokens_per_chunk_mean, Some(1.0));
        assert!(!s.tokens_per_chunk_estimated);
    }

    #[test]
    fn several_tokens_per_chunk() {
        // 10 chunks 10 ms apart carrying 4 tokens each: 400 tok/s, 2.5 ms per token.
        let tokens: Vec<u64> = (0..10).map(|i| 100_000 + i * 10_000).collect();
        let four_each = RequestRecord {
            output_tokens: 40,
            ..ok_record(0, 1.0, &tokens, 100)
        };
        for exact in [false, true] {
            let mut rec = four_each.clone();
            if exact {
                rec.first_chunk_tokens = Some(4);
                rec.chunk_tokens = vec![4; 10];
            }
            let mut acc = StepAccumulator::new(TestKind::Output, 1);
            acc.add(&rec);
            let s = acc.stats(1);
            let itl = s.itl_ms.unwrap();
            let per_token = s.itl_per_token_ms.unwrap();
            assert!(
                (itl.p50 - 10.0).abs() < 0.02 && (per_token.p50 - 2.5).abs() < 0.01,
                "{itl:?} {per_token:?}"
            );
            assert_eq!(per_token.count, 9);
            assert!((s.per_conn_tps.unwrap().mean - 400.0).abs() < 1e-6);
            assert!((s.tpot_ms.unwrap().mean - 91.0 / 36.0).abs() < 0.01);
            assert_eq!(s.tokens_per_chunk_mean, Some(4.0));
            assert_eq!(s.tokens_per_chunk_estimated, !exact);
        }
        // 10 tokens in 4, 4, 2: the last gap covers 2 tokens, when the server said so.
        let mut rec = RequestRecord {
            output_tokens: 10,
            ..ok_record(0, 1.0, &tokens[..3], 100)
        };
        rec.first_chunk_tokens = Some(4);
        rec.chunk_tokens = vec![4, 4, 2];
        let mut acc = StepAccumulator::new(TestKind::Output, 1);
        acc.add(&rec);
        let per_token = acc.stats(1).itl_per_token_ms.unwrap();
        assert!(
            (per_token.min - 2.5).abs() < 0.01 && (per_token.max - 5.0).abs() < 0.01,
            "{per_token:?}"
        );
    }

    #[test]
    fn failures_are_classified_deduplicated_and_keep_partial_tokens() {
        let mut acc = StepAccumulator::new(TestKind::Output, 1);
        for i in 0..10 {
            acc.add(&RequestRecord {
                start_s: i as f64,
                end_us: 10,
                error: Some(if i < 7 {
                    ErrorClass::Http(500)
                } else {
                    ErrorClass::StreamCut
                }),
                error_message: Some(if i < 7 { "boom".into() } else { format!("cut {i}") }),
                output_tokens: if i < 7 { 0 } else { 3 },
                resends: u32::from(i == 0),
                ..RequestRecord::default()
            });
        }
        let s = acc.stats(1);
        assert_eq!(s.requests_failed, 10);
        assert_eq!(s.errors["http_500"], 7);
        assert_eq!(s.errors["stream_cut"], 3);
        assert_eq!(s.partial_output_tokens, 9);
        assert_eq!(s.resends, 1);
        assert_eq!(s.output_tokens, 0);
        assert_eq!(s.error_samples[0].count, 7);
        assert_eq!(s.error_samples.len(), 4);
        // Past the limit, only a class not seen yet still gets its first message kept.
        for (i, class) in [ErrorClass::StreamCut, ErrorClass::StreamCut, ErrorClass::NoResponse]
            .into_iter()
            .enumerate()
        {
            acc.add(&RequestRecord {
                error: Some(class),
                error_message: Some(format!("late {i}")),
                ..RequestRecord::default()
            });
        }
        let s = acc.stats(1);
        let kept: Vec<&str> = s.error_samples.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(kept, ["boom", "cut 7", "cut 8", "cut 9", "late 0", "late 2"]);
        assert!(s.ttft_ms.is_none() && s.per_conn_tps.is_none() && s.efficiency_pct.is_none());
        assert_eq!(s.output_throughput_tps, 0.0);
    }

    #[test]
    fn warmup_is_left_out() {
        let mut acc = StepAccumulator::new(TestKind::Output, 1);
        let mut rec = ok_record(0, 0.0, &[10, 20], 5);
        rec.phase = Phase::Warmup;
        acc.add(&rec);
        let s = acc.stats(1);
        assert_eq!((s.requests_warmup, s.requests_ok, s.output_tokens), (1, 0, 0));
    }
}
