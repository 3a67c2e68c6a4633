//! The telemetry seam: a [`Source`] is anything sampled on the run clock (the machine, the
//! server's `/metrics`, the GPUs); a [`Sampler`] runs one on its own thread, every interval and
//! on request, and keeps its samples. A new kind of telemetry is one `Source`.
//!
//! Sampling never runs on the load's threads: a slow or hanging source delays only its own
//! thread, and its skipped samples are counted.

use serde::Serialize;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The run's clock: seconds since the run started, shared by every record and sample.
#[derive(Debug, Clone, Copy)]
pub struct RunClock(pub Instant);

impl RunClock {
    pub fn now_s(&self) -> f64 {
        self.0.elapsed().as_secs_f64()
    }

    pub fn at_s(&self, t: Instant) -> f64 {
        t.saturating_duration_since(self.0).as_secs_f64()
    }
}

/// What a source gives: one reading at a time.
pub trait Source: Send + 'static {
    type Reading: Clone + Send + Sync + Serialize + 'static;

    /// Short name, as in `summary.json` and the files: "system", "server", "gpu".
    fn name(&self) -> &'static str;

    /// Which kind of this source it is ("nvml" or "dcgm" for the GPUs); the name by default.
    fn kind(&self) -> &'static str {
        self.name()
    }

    /// Where it reads from, in words (a URL, "2 GPUs through NVML"); shown and kept as is.
    fn describe(&self) -> String {
        String::new()
    }

    /// One reading and the run-clock time it stands for (for a scrape, the middle of the
    /// exchange). `Err`: skipped, with a short reason (said once, counted every time).
    fn read(&mut self, clock: RunClock) -> Result<(f64, Self::Reading), String>;

    /// The line written to the source's JSON Lines file for this reading, if it has one.
    fn line(&mut self, _t_s: f64, _reading: &Self::Reading) -> Option<serde_json::Value> {
        None
    }

    /// A reading kept in memory once a newer periodic one arrives: a source can drop what only
    /// the latest reading needs (a histogram), so long runs stay small.
    fn thin(&self, _reading: &mut Self::Reading) {}
}

/// One kept sample.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timed<R> {
    pub t_s: f64,
    /// Taken at a window's boundary (a step's start or end, a stress interval's end): kept whole.
    #[serde(skip)]
    pub boundary: bool,
    pub reading: R,
}

#[derive(Default)]
struct Requests {
    /// Boundary samples asked for, and taken (or given up on).
    asked: u64,
    done: u64,
}

/// Runs a [`Source`] on its own thread and keeps its samples.
pub struct Sampler<S: Source> {
    name: &'static str,
    kind: &'static str,
    about: String,
    interval: Duration,
    clock: RunClock,
    source: Mutex<S>,
    samples: Mutex<Vec<Timed<S::Reading>>>,
    sink: Mutex<Option<std::io::BufWriter<std::fs::File>>>,
    requests: Mutex<Requests>,
    wake: Condvar,
    stop: AtomicBool,
    skipped: AtomicU64,
    /// The first reason a sample was skipped, said once.
    first_skip: Mutex<Option<String>>,
}

impl<S: Source> Sampler<S> {
    pub fn new(source: S, interval: Duration, clock: RunClock) -> Arc<Self> {
        Arc::new(Self {
            name: source.name(),
            kind: source.kind(),
            about: source.describe(),
            interval,
            clock,
            source: Mutex::new(source),
            samples: Mutex::new(Vec::new()),
            sink: Mutex::new(None),
            requests: Mutex::new(Requests::default()),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
            skipped: AtomicU64::new(0),
            first_skip: Mutex::new(None),
        })
    }

    /// Every sample is also written, as a JSON line, to `path`.
    pub fn write_to(&self, path: &std::path::Path) -> std::io::Result<()> {
        let file = std::fs::File::create(path)?;
        *lock(&self.sink) = Some(std::io::BufWriter::new(file));
        Ok(())
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// [`Source::describe`], taken when the sampler was made (the source itself is busy on
    /// its thread).
    pub fn about(&self) -> &str {
        &self.about
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Starts the sampling thread; it ends at [`Sampler::stop`].
    pub fn start(self: &Arc<Self>) {
        let me = self.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("llm-bench-{}", self.name))
            .spawn(move || me.run());
        if spawned.is_err() {
            self.skip("no thread could be started".into());
        }
    }

    fn run(&self) {
        let mut next = Instant::now() + self.interval;
        loop {
            let boundary = {
                let mut requests = lock(&self.requests);
                loop {
                    if self.stop.load(Ordering::Relaxed) {
                        return;
                    }
                    if requests.asked > requests.done {
                        break Some(requests.asked);
                    }
                    let now = Instant::now();
                    if now >= next {
                        break None;
                    }
                    requests = self
                        .wake
                        .wait_timeout(requests, next - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            };
            self.take(boundary.is_some());
            if let Some(asked) = boundary {
                let mut requests = lock(&self.requests);
                requests.done = requests.done.max(asked);
                self.wake.notify_all();
            } else {
                // A slow source skips the ticks it missed rather than catching up in a burst.
                next += self.interval;
                let now = Instant::now();
                if next <= now {
                    next = now + self.interval;
                }
            }
        }
    }

    /// Takes a sample on the calling thread and keeps it (for quick sources only).
    pub fn sample_now(&self, boundary: bool) -> Option<(f64, S::Reading)> {
        self.take(boundary)
    }

    fn take(&self, boundary: bool) -> Option<(f64, S::Reading)> {
        let mut source = lock(&self.source);
        let (t_s, reading) = match source.read(self.clock) {
            Ok(read) => read,
            Err(why) => {
                drop(source);
                self.skip(why);
                return None;
            }
        };
        if let Some(line) = source.line(t_s, &reading) {
            if let Some(sink) = lock(&self.sink).as_mut() {
                // A full disk loses telemetry lines, never the run.
                if serde_json::to_writer(&mut *sink, &line).is_ok() {
                    let _ = sink.write_all(b"\n");
                }
            }
        }
        let mut samples = lock(&self.samples);
        if let Some(last) = samples.last_mut().filter(|s| !s.boundary) {
            source.thin(&mut last.reading);
        }
        samples.push(Timed {
            t_s,
            boundary,
            reading: reading.clone(),
        });
        Some((t_s, reading))
    }

    fn skip(&self, why: String) {
        self.skipped.fetch_add(1, Ordering::Relaxed);
        lock(&self.first_skip).get_or_insert(why);
    }

    /// Asks the thread for a sample now; returns at once. [`Sampler::wait`] waits for it.
    pub fn request(&self) -> u64 {
        let mut requests = lock(&self.requests);
        requests.asked += 1;
        self.wake.notify_all();
        requests.asked
    }

    /// Waits (without blocking the async runtime) until the sample `ticket` asked for is taken
    /// or given up on, at most `max`. Returns whether it came.
    pub async fn wait(&self, ticket: u64, max: Duration) -> bool {
        let until = Instant::now() + max;
        loop {
            if lock(&self.requests).done >= ticket {
                return true;
            }
            if Instant::now() >= until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let _guard = lock(&self.requests);
        self.wake.notify_all();
        drop(_guard);
        if let Some(sink) = lock(&self.sink).as_mut() {
            let _ = sink.flush();
        }
    }

    /// Writes what is buffered to the source's file (at checkpoints).
    pub fn flush(&self) {
        if let Some(sink) = lock(&self.sink).as_mut() {
            let _ = sink.flush();
        }
    }

    pub fn samples(&self) -> Vec<Timed<S::Reading>> {
        lock(&self.samples).clone()
    }

    /// The samples from the last one at or before `from_s` to the first at or after `to_s`:
    /// everything a window's figures need, edges included.
    pub fn around(&self, from_s: f64, to_s: f64) -> Vec<Timed<S::Reading>> {
        let samples = lock(&self.samples);
        let first = samples.partition_point(|s| s.t_s <= from_s).saturating_sub(1);
        let last = samples.partition_point(|s| s.t_s < to_s);
        samples[first..(last + 1).min(samples.len())].to_vec()
    }

    pub fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }

    /// Why samples were skipped, the first time one was.
    pub fn skip_reason(&self) -> Option<String> {
        lock(&self.first_skip).clone()
    }

    /// Samples taken so far.
    pub fn taken(&self) -> usize {
        lock(&self.samples).len()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts up; fails every third read.
    struct Counter(u64);

    impl Source for Counter {
        type Reading = u64;
        fn name(&self) -> &'static str {
            "counter"
        }
        fn read(&mut self, clock: RunClock) -> Result<(f64, u64), String> {
            self.0 += 1;
            if self.0 % 3 == 0 {
                return Err("every third".into());
            }
            Ok((clock.now_s(), self.0))
        }
    }

    #[tokio::test]
    async fn a_requested_sample_comes_between_ticks_and_skips_are_counted() {
        let sampler = Sampler::new(Counter(0), Duration::from_secs(3600), RunClock(Instant::now()));
        sampler.start();
        for _ in 0..3 {
            let ticket = sampler.request();
            assert!(sampler.wait(ticket, Duration::from_secs(5)).await);
        }
        sampler.stop();
        let samples = sampler.samples();
        assert_eq!(samples.iter().map(|s| s.reading).collect::<Vec<_>>(), vec![1, 2]);
        assert!(samples.iter().all(|s| s.boundary));
        assert_eq!(sampler.skipped(), 1);
        assert_eq!(sampler.skip_reason().as_deref(), Some("every third"));
    }

    #[test]
    fn around_keeps_the_edges() {
        let sampler = Sampler::new(Counter(0), Duration::from_secs(1), RunClock(Instant::now()));
        for t in [1.0, 2.0, 3.0, 4.0, 5.0] {
            lock(&sampler.samples).push(Timed {
                t_s: t,
                boundary: false,
                reading: t as u64,
            });
        }
        let picked = |a, b| sampler.around(a, b).iter().map(|s| s.reading).collect::<Vec<_>>();
        assert_eq!(picked(2.5, 3.5), vec![2, 3, 4]);
        assert_eq!(picked(2.0, 4.0), vec![2, 3, 4]);
        assert_eq!(picked(0.0, 1.5), vec![1, 2]);
        assert_eq!(picked(4.5, 9.0), vec![4, 5]);
    }
}
