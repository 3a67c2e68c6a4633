//! The batching engine model.
//!
//! One task owns the batch, like the scheduler loop of vLLM or llama.cpp.
//! Each step admits queued requests up to `--max-batch` (FIFO), lasts
//! `decode_base + per_seq * active + prefill of the newly admitted prompts`,
//! and at its end hands every active sequence one chunk. Because the step time
//! grows with the batch and a full batch makes newcomers queue, a step
//! benchmark against the simulator shows a real saturation knee.
//!
//! The engine only sends `Tick`s: what a chunk contains (and any injected
//! fault) is the response body's business, which keeps this loop tiny even
//! with thousands of sequences.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::time::{sleep_until, Instant};
use tokio_util::sync::CancellationToken;

use super::config::SimConfig;
use super::metrics::{Gauges, Telemetry};
use super::stats::Stats;

/// "One more chunk of your sequence is ready."
#[derive(Debug)]
pub(crate) struct Tick;

/// What the engine needs to know of a request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Job {
    /// Prompt tokens to prefill (a cached prefix is not).
    pub prefill_tokens: u64,
    /// The whole prompt, cached prefix included: what the sequence holds in the KV cache.
    pub prompt_tokens: u64,
    /// Tokens it generates (`u64::MAX` for an endless stream).
    pub output_tokens: u64,
    pub chunks: u64,
    /// Recorded in the queue-time histogram (llm-bench's pre-flight requests are not).
    pub counted: bool,
}

/// A request asking to be decoded.
struct Admission {
    job: Job,
    queued_at: Instant,
    tx: UnboundedSender<Tick>,
}

/// A sequence in the running batch.
struct Sequence {
    tx: UnboundedSender<Tick>,
    remaining: u64,
    emitted: u64,
    prompt_tokens: u64,
    output_tokens: u64,
}

impl Sequence {
    /// Hands out one chunk; returns whether the sequence stays in the batch.
    /// A failed send means the client went away, which frees the slot.
    fn emit(&mut self) -> bool {
        if self.remaining == 0 || self.tx.send(Tick).is_err() {
            return false;
        }
        self.remaining -= 1;
        self.emitted += 1;
        self.remaining > 0
    }

    /// Tokens held in the KV cache: the prompt and what was generated so far.
    fn kv_tokens(&self, tokens_per_chunk: u64) -> u64 {
        let generated = self.emitted.saturating_mul(tokens_per_chunk).min(self.output_tokens);
        self.prompt_tokens.saturating_add(generated)
    }
}

/// The timing model's parameters.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EngineParams {
    prefill_us_per_token: f64,
    decode_base_ms: f64,
    decode_ms_per_seq: f64,
    max_batch: usize,
    tokens_per_chunk: u64,
}

/// No single step lasts longer than this, whatever a client sends, so the
/// deadline arithmetic cannot overflow.
const MAX_STEP: Duration = Duration::from_secs(3600);

impl EngineParams {
    pub fn from_config(config: &SimConfig) -> Self {
        Self {
            prefill_us_per_token: config.prefill_us_per_token,
            decode_base_ms: config.decode_base_ms,
            decode_ms_per_seq: config.decode_ms_per_seq,
            max_batch: config.max_batch.max(1),
            tokens_per_chunk: config.tokens_per_chunk.max(1),
        }
    }

    /// Duration of one step with `active` sequences, of which the newly
    /// admitted ones bring `prefill_tokens` prompt tokens.
    fn step_duration(&self, active: usize, prefill_tokens: u64) -> Duration {
        let ms = self.decode_base_ms
            + self.decode_ms_per_seq * active as f64
            + self.prefill_us_per_token * prefill_tokens as f64 / 1000.0;
        Duration::try_from_secs_f64(ms / 1000.0)
            .unwrap_or(MAX_STEP)
            .min(MAX_STEP)
    }
}

/// Where the next step starts, given when the previous one should have
/// ended. Small timer lateness is absorbed by keeping the absolute schedule
/// (so slop does not accumulate into slower steps); when the engine is behind
/// by more than half a step, it restarts from now instead of bursting
/// through shortened steps to catch up.
fn next_step_start(deadline: Instant, now: Instant, step: Duration) -> Instant {
    if now.saturating_duration_since(deadline) > step / 2 {
        now
    } else {
        deadline
    }
}

/// Submits requests to the engine task.
#[derive(Clone)]
pub(crate) struct EngineHandle {
    tx: UnboundedSender<Admission>,
}

impl EngineHandle {
    /// Queues a sequence of `job.chunks` chunks. The receiver yields one `Tick`
    /// per chunk and then closes. `None` when the engine has shut down.
    pub fn submit(&self, job: Job) -> Option<UnboundedReceiver<Tick>> {
        let (tx, rx) = mpsc::unbounded_channel();
        let admission = Admission {
            job,
            queued_at: Instant::now(),
            tx,
        };
        self.tx.send(admission).ok().map(|()| rx)
    }
}

/// Starts the engine task on the current runtime; it stops on `cancel`. It publishes its
/// state to `stats.telemetry` once per step.
pub(crate) fn spawn(params: EngineParams, stats: Arc<Stats>, cancel: CancellationToken) -> EngineHandle {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(run(params, rx, stats, cancel));
    EngineHandle { tx }
}

async fn run(params: EngineParams, mut rx: UnboundedReceiver<Admission>, stats: Arc<Stats>, cancel: CancellationToken) {
    let telemetry = &stats.telemetry;
    let mut waiting: VecDeque<Admission> = VecDeque::new();
    let mut active: Vec<Sequence> = Vec::with_capacity(params.max_batch.min(4096));
    let mut step_start = Instant::now();
    loop {
        if active.is_empty() && waiting.is_empty() {
            telemetry.publish(Gauges::default());
            // Idle: sleep until a request arrives, then start a step at once.
            let first = tokio::select! {
                _ = cancel.cancelled() => return,
                admission = rx.recv() => match admission {
                    Some(a) => a,
                    None => return,
                },
            };
            waiting.push_back(first);
            step_start = Instant::now();
        }
        // Requests that arrived during the last step join at its boundary.
        while let Ok(admission) = rx.try_recv() {
            waiting.push_back(admission);
        }

        let prefill_tokens = admit(&params, &mut waiting, &mut active, telemetry);
        if active.is_empty() {
            continue;
        }
        telemetry.publish(Gauges {
            running: active.len() as u64,
            waiting: waiting.len() as u64,
            kv_tokens: active.iter().map(|s| s.kv_tokens(params.tokens_per_chunk)).sum(),
        });

        let step = params.step_duration(active.len(), prefill_tokens);
        let deadline = step_start + step;
        if step.is_zero() {
            // A zero-cost model would otherwise never yield to the runtime.
            tokio::task::yield_now().await;
            if cancel.is_cancelled() {
                return;
            }
        } else {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = sleep_until(deadline) => {}
            }
        }

        active.retain_mut(Sequence::emit);
        step_start = next_step_start(deadline, Instant::now(), step);
    }
}

/// Moves queued requests into the batch, FIFO, up to `--max-batch`; returns the prompt tokens
/// they bring to prefill.
fn admit(
    params: &EngineParams,
    waiting: &mut VecDeque<Admission>,
    active: &mut Vec<Sequence>,
    telemetry: &Telemetry,
) -> u64 {
    let now = Instant::now();
    let mut prefill_tokens = 0u64;
    while active.len() < params.max_batch {
        let Some(Admission { job, queued_at, tx }) = waiting.pop_front() else {
            break;
        };
        if tx.is_closed() || job.chunks == 0 {
            continue; // the client left while queued
        }
        if job.counted {
            telemetry.queue_time.observe(now - queued_at);
        }
        prefill_tokens = prefill_tokens.saturating_add(job.prefill_tokens);
        active.push(Sequence {
            tx,
            remaining: job.chunks,
            emitted: 0,
            prompt_tokens: job.prompt_tokens,
            output_tokens: job.output_tokens,
        });
    }
    prefill_tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> EngineParams {
        EngineParams::from_config(&SimConfig {
            prefill_us_per_token: 20.0,
            decode_base_ms: 10.0,
            decode_ms_per_seq: 0.1,
            max_batch: 2,
            ..SimConfig::default()
        })
    }

    fn job(prompt_tokens: u64, chunks: u64) -> Job {
        Job {
            prefill_tokens: prompt_tokens,
            prompt_tokens,
            output_tokens: chunks,
            chunks,
            counted: true,
        }
    }

    #[test]
    fn step_duration_follows_the_model() {
        let p = params();
        assert_eq!(p.step_duration(1, 0), Duration::from_micros(10_100));
        // 10 + 0.1 * 4 + 20 µs * 1000 / 1000 = 30.4 ms
        assert_eq!(p.step_duration(4, 1000), Duration::from_micros(30_400));
        assert_eq!(p.step_duration(1, u64::MAX), MAX_STEP);
    }

    #[test]
    fn schedule_absorbs_slop_but_never_bursts() {
        let t0 = Instant::now();
        let step = Duration::from_millis(10);
        let late = |ms| t0 + Duration::from_millis(ms);
        assert_eq!(next_step_start(t0, late(1), step), t0);
        assert_eq!(next_step_start(t0, late(30), step), late(30));
    }

    #[tokio::test]
    async fn batches_fifo_and_times_steps() {
        let cancel = CancellationToken::new();
        let engine = spawn(params(), Stats::new(), cancel.clone());
        let start = Instant::now();
        // Three 2-chunk requests with max_batch 2: the third waits two steps.
        let mut rxs: Vec<_> = (0..3).map(|_| engine.submit(job(0, 2)).unwrap()).collect();
        let mut ends = Vec::new();
        for rx in &mut rxs {
            let mut n = 0;
            while rx.recv().await.is_some() {
                n += 1;
            }
            assert_eq!(n, 2);
            ends.push(start.elapsed());
        }
        // Steps of 10.2 ms with two sequences, 10.1 ms with one. Real time
        // on a busy machine: never early, and late by a bounded amount.
        let near = |got: Duration, want_us: u64| {
            let want = Duration::from_micros(want_us);
            assert!(got >= want && got < want + Duration::from_millis(25), "{got:?}");
        };
        near(ends[0], 20_400);
        near(ends[1], 20_400);
        near(ends[2], 40_600);
        cancel.cancel();
    }

    /// Waits (briefly) for the engine to publish `want`.
    async fn published(stats: &Stats, want: Gauges) {
        let deadline = Instant::now() + Duration::from_secs(2);
        while stats.telemetry.gauges() != want {
            assert!(Instant::now() < deadline, "{:?} != {want:?}", stats.telemetry.gauges());
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    #[tokio::test]
    async fn publishes_running_waiting_and_kv_tokens_per_step() {
        let cancel = CancellationToken::new();
        let stats = Stats::new();
        // Steps of 50 ms: each published state lasts long enough to be seen on a busy machine.
        let slow = EngineParams {
            decode_base_ms: 50.0,
            ..params()
        };
        let engine = spawn(slow, Arc::clone(&stats), cancel.clone());
        // Prompts of 10 tokens, 3 chunks of one token each; max_batch 2.
        let mut rxs: Vec<_> = (0..3).map(|_| engine.submit(job(10, 3)).unwrap()).collect();
        let gauges = |running, waiting, kv_tokens| Gauges {
            running,
            waiting,
            kv_tokens,
        };
        published(&stats, gauges(2, 1, 20)).await;
        rxs[0].recv().await.unwrap();
        // The second step: one token each generated so far.
        published(&stats, gauges(2, 1, 22)).await;
        for rx in &mut rxs[..2] {
            while rx.recv().await.is_some() {}
        }
        published(&stats, gauges(1, 0, 10)).await;
        while rxs[2].recv().await.is_some() {}
        published(&stats, Gauges::default()).await;
        let queued = stats.telemetry.queue_time.read().0.last().copied();
        assert_eq!(queued, Some(3), "every admission was timed");
        cancel.cancel();
    }
}
