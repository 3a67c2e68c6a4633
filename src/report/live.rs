//! The live view on a terminal: a few lines redrawn in place four times a second while a step
//! runs — which step of how many and its load point, requests done / in flight / failed,
//! tokens per second over the last seconds with a sparkline, TTFT p99 so far in the step, the
//! run's elapsed time and about how long is left.
//!
//! It never drives the load: a task of its own reads the load's atomic counters
//! ([`LiveCounters`]) and a small board that the record pump feeds (one histogram and a few
//! per-second token counts per step, reset at the step's start) at a fixed frame rate. Tokens
//! per second count the tokens of the requests that *finished* in the last seconds (the pump
//! sees a request when it ends; the stream's hot path is left alone): in a steady load that is
//! the rate tokens arrive at, and a step whose requests all end together shows them at its end.
//!
//! Drawing is a small ANSI redraw of our own rather than indicatif: [`Reporter`] already owns
//! the console and the log and must print step lines *above* the view and never into the log,
//! which with a progress crate means routing every line through it; here it is cursor-up and
//! clear-to-end in the one place that writes the console, and no dependency. Without a
//! terminal nothing of this runs: the pump prints its plain progress lines as before.
//! The rendering is pure ([`render`], [`sparkline`], [`time_left_s`]) and unit-tested.

use super::Reporter;
use crate::client::{Phase, RequestRecord};
use crate::i18n::{tr, Msg};
use crate::load::LiveCounters;
use crate::metrics::LatencyHistogram;
use crate::workload::TestKind;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Frames per second.
pub const FRAME: Duration = Duration::from_millis(250);
/// Tokens per second are counted over this many seconds.
const RATE_SPAN_S: u64 = 5;
/// Seconds of throughput kept for the sparkline.
const HISTORY_S: usize = 60;
/// Most sparkline characters.
const SPARK_WIDTH: usize = 30;

/// How a step of the run is planned to end, for the time left.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PlannedStep {
    /// A timed step: this long from its release (ramp-up included).
    For(f64),
    /// A number of requests.
    Requests(u64),
}

/// The step the view shows, named by whoever runs it.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveStep {
    /// "step 3/12 · [output] concurrency 4 · run 2/3".
    pub heading: String,
    /// Its place in the run's plan ([`LiveBoard::set_plan`]), when the run has one.
    pub index: Option<usize>,
    /// Requests it will send, when known.
    pub expected: Option<u64>,
}

/// What one frame shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub heading: String,
    pub done: u64,
    pub expected: Option<u64>,
    pub in_flight: u64,
    pub failed: u64,
    pub tokens_per_s: f64,
    /// Tokens per second of each whole second of the step, oldest first.
    pub history: Vec<f64>,
    pub ttft_p99_ms: Option<f64>,
    pub elapsed_s: f64,
    pub left_s: Option<f64>,
}

/// The frame as lines, each at most `width` columns.
pub fn render(f: &Frame, width: usize) -> Vec<String> {
    let done = match f.expected {
        Some(n) => format!("{}/{n}", f.done),
        None => f.done.to_string(),
    };
    let requests = tr(
        Msg::LiveRequests,
        &[("done", &done), ("in_flight", &f.in_flight), ("failed", &f.failed)],
    );
    let ttft = match f.ttft_p99_ms {
        Some(ms) => tr(Msg::LiveTtft, &[("ms", &format!("{ms:.1}"))]),
        None => tr(Msg::LiveTtftNone, &[]),
    };
    let tokens = tr(Msg::LiveTokens, &[("tps", &format!("{:.1}", f.tokens_per_s))]);
    let elapsed = tr(Msg::LiveElapsed, &[("elapsed", &clock(f.elapsed_s))]);
    let left = match f.left_s {
        Some(s) => tr(Msg::LiveLeft, &[("left", &clock(s))]),
        None => tr(Msg::LiveLeftUnknown, &[]),
    };
    let spark = sparkline(&f.history, SPARK_WIDTH);
    [
        format!("» {}", f.heading),
        format!("  {requests} · {ttft}"),
        match spark.is_empty() {
            true => format!("  {tokens} · {elapsed} · {left}"),
            false => format!("  {tokens} {spark} · {elapsed} · {left}"),
        },
    ]
    .into_iter()
    .map(|line| fit(&line, width))
    .collect()
}

/// Whole seconds as "1m 12s".
fn clock(s: f64) -> String {
    humantime::format_duration(Duration::from_secs(s.max(0.0).round() as u64)).to_string()
}

/// The last `width` values as bars ▁…█, scaled to the largest of them (all ▁ when none is
/// above zero).
pub fn sparkline(values: &[f64], width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let shown = &values[values.len().saturating_sub(width)..];
    let max = shown.iter().copied().filter(|v| v.is_finite()).fold(0.0, f64::max);
    shown
        .iter()
        .map(|&v| {
            let level = if max > 0.0 && v.is_finite() {
                (v.max(0.0) / max * 7.0).round() as usize
            } else {
                0
            };
            BARS[level.min(7)]
        })
        .collect()
}

/// Seconds left in the run: what is left of step `index` (at `elapsed_s` into it, `done`
/// requests finished) and every later step of `plan`. A timed step takes its planned time; a
/// step of N requests takes N / `rate_rps` (the finished requests per second of the step so
/// far, or of the last one). `None` when a count must be timed and no rate is known yet.
pub fn time_left_s(
    plan: &[PlannedStep],
    index: usize,
    elapsed_s: f64,
    done: u64,
    rate_rps: Option<f64>,
) -> Option<f64> {
    let current = plan.get(index)?;
    let rate = rate_rps.filter(|r| r.is_finite() && *r > 0.0);
    let now = match *current {
        PlannedStep::For(s) => (s - elapsed_s).max(0.0),
        PlannedStep::Requests(n) => n.saturating_sub(done) as f64 / rate?,
    };
    plan[index + 1..].iter().try_fold(now, |left, step| {
        Some(
            left + match *step {
                PlannedStep::For(s) => s,
                PlannedStep::Requests(n) => n as f64 / rate?,
            },
        )
    })
}

/// Tokens per second over the last `span_s` seconds from per-second counts (`buckets[i]`
/// holds second `first + i` of the step; the last one, the current second, is partial).
pub fn recent_rate(buckets: &VecDeque<u64>, first: u64, elapsed_s: f64, span_s: u64) -> f64 {
    let current = elapsed_s.max(0.0).floor() as u64;
    let from = (current + 1).saturating_sub(span_s);
    let tokens: u64 = buckets
        .iter()
        .enumerate()
        .filter(|(i, _)| (from..=current).contains(&(first + *i as u64)))
        .map(|(_, n)| n)
        .sum();
    let covered = elapsed_s - from as f64;
    if covered > 0.0 {
        tokens as f64 / covered
    } else {
        0.0
    }
}

/// A line cut to `width` terminal columns (a CJK character takes two).
fn fit(line: &str, width: usize) -> String {
    let mut used = 0;
    line.chars()
        .take_while(|&c| {
            used += columns(c);
            used <= width
        })
        .collect()
}

fn columns(c: char) -> usize {
    match c as u32 {
        0x1100..=0x115F
        | 0x2E80..=0xA4CF
        | 0xAC00..=0xD7A3
        | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F
        | 0xFF00..=0xFF60
        | 0xFFE0..=0xFFE6 => 2,
        _ => 1,
    }
}

/// The step in progress, as the pump feeds it.
struct Current {
    step: LiveStep,
    started: Instant,
    ttft: LatencyHistogram,
    /// Tokens of the requests that finished in each second of the step (the last
    /// [`HISTORY_S`] seconds), the first being second `first`.
    tokens: VecDeque<u64>,
    first: u64,
}

impl Current {
    fn add_tokens(&mut self, second: u64, tokens: u64) {
        let end = self.first + self.tokens.len() as u64;
        if second >= end {
            self.tokens.extend(std::iter::repeat_n(0, (second + 1 - end) as usize));
        }
        while self.tokens.len() > HISTORY_S + 1 {
            self.tokens.pop_front();
            self.first += 1;
        }
        if let Some(slot) = second
            .checked_sub(self.first)
            .and_then(|i| self.tokens.get_mut(i as usize))
        {
            *slot += tokens;
        }
    }
}

#[derive(Default)]
struct BoardState {
    plan: Vec<PlannedStep>,
    step: Option<Current>,
    /// Requests per second the last step finished, for the time left before this one has any.
    last_rate: Option<f64>,
}

/// What the view draws from besides the load's counters: the step in progress and what its
/// records said so far. The pump writes it once per finished request; the view reads it four
/// times a second.
pub struct LiveBoard {
    counters: Arc<LiveCounters>,
    run_start: Instant,
    state: Mutex<BoardState>,
}

impl LiveBoard {
    pub fn new(counters: Arc<LiveCounters>, run_start: Instant) -> Self {
        Self {
            counters,
            run_start,
            state: Mutex::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, BoardState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The steps the run will make, in order (the time left is counted from them).
    pub fn set_plan(&self, plan: Vec<PlannedStep>) {
        self.state().plan = plan;
    }

    pub fn begin_step(&self, step: LiveStep) {
        self.state().step = Some(Current {
            step,
            started: Instant::now(),
            ttft: LatencyHistogram::default(),
            tokens: VecDeque::new(),
            first: 0,
        });
    }

    /// A finished request: its tokens (prompt tokens for the input test) and its TTFT.
    pub fn record(&self, rec: &RequestRecord) {
        let mut state = self.state();
        let Some(current) = state.step.as_mut() else { return };
        let second = current.started.elapsed().as_secs();
        let tokens = if rec.test == TestKind::Input || rec.inputs > 0 {
            rec.prompt_tokens
        } else {
            rec.output_tokens
        };
        current.add_tokens(second, tokens);
        if let (true, Phase::Measured, Some(us)) = (rec.ok, rec.phase, rec.ttft_us()) {
            current.ttft.record_us(us);
        }
    }

    /// The step has ended: the view goes until the next one begins.
    pub fn end_step(&self, reporter: &Reporter) {
        let mut state = self.state();
        if let Some(current) = state.step.take() {
            let secs = current.started.elapsed().as_secs_f64();
            let done = self.counters.done.load(Ordering::Relaxed);
            if secs > 0.0 && done > 0 {
                state.last_rate = Some(done as f64 / secs);
            }
        }
        reporter.hide_live();
    }

    fn frame(&self, state: &BoardState, now: Instant) -> Option<Frame> {
        let current = state.step.as_ref()?;
        let step_s = now.saturating_duration_since(current.started).as_secs_f64();
        let done = self.counters.done.load(Ordering::Relaxed);
        let rate = if done > 0 && step_s > 0.0 {
            Some(done as f64 / step_s)
        } else {
            state.last_rate
        };
        let whole = current.tokens.len().saturating_sub(1);
        Some(Frame {
            heading: current.step.heading.clone(),
            done,
            expected: current.step.expected,
            in_flight: self.counters.in_flight.load(Ordering::Relaxed),
            failed: self.counters.failed.load(Ordering::Relaxed),
            tokens_per_s: recent_rate(&current.tokens, current.first, step_s, RATE_SPAN_S),
            history: current.tokens.iter().take(whole).map(|&n| n as f64).collect(),
            ttft_p99_ms: current.ttft.percentile_ms(99.0),
            elapsed_s: now.saturating_duration_since(self.run_start).as_secs_f64(),
            left_s: current
                .step
                .index
                .and_then(|i| time_left_s(&state.plan, i, step_s, done, rate)),
        })
    }

    /// Draws the current frame, or takes the view away between steps. The board stays locked
    /// while drawing, so a step that just ended is never drawn again after its lines.
    fn draw(&self, reporter: &Reporter) {
        let state = self.state();
        match self.frame(&state, Instant::now()) {
            Some(frame) => reporter.show_live(render(&frame, terminal_width())),
            None => reporter.hide_live(),
        }
    }
}

/// The terminal's width in columns (80 when it does not say), less one so that a full line
/// never wraps.
fn terminal_width() -> usize {
    // SAFETY: TIOCGWINSZ writes a `winsize` into the struct it is given, and nothing else.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
    let cols = if ok && size.ws_col > 0 {
        size.ws_col as usize
    } else {
        80
    };
    cols.saturating_sub(1).max(20)
}

/// The drawing task; it stops when dropped.
pub struct LiveView(tokio::task::JoinHandle<()>);

impl Drop for LiveView {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts drawing `board` on the console at the frame rate (call only on a terminal).
pub fn spawn(board: Arc<LiveBoard>, reporter: Arc<Reporter>) -> LiveView {
    LiveView(tokio::spawn(async move {
        let mut ticker = tokio::time::interval(FRAME);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            ticker.tick().await;
            board.draw(&reporter);
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparkline_scales_to_the_largest_value() {
        assert_eq!(sparkline(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], 30), "▁▂▃▄▅▆▇█");
        assert_eq!(sparkline(&[0.0, 0.0], 30), "▁▁");
        assert_eq!(sparkline(&[], 30), "");
        // Only the last `width` values, scaled among themselves.
        assert_eq!(sparkline(&[100.0, 1.0, 2.0], 2), "▅█");
        assert_eq!(sparkline(&[5.0, f64::NAN, -1.0], 5), "█▁▁");
    }

    #[test]
    fn time_left_from_planned_lengths_and_rates() {
        use PlannedStep::*;
        let timed = [For(10.0), For(10.0), For(20.0)];
        assert_eq!(time_left_s(&timed, 0, 4.0, 0, None), Some(36.0));
        assert_eq!(time_left_s(&timed, 2, 25.0, 0, None), Some(0.0));
        let counted = [Requests(100), Requests(200)];
        // 40 of 100 done at 20 req/s: 3 s, then 200 more at that rate.
        assert_eq!(time_left_s(&counted, 0, 2.0, 40, Some(20.0)), Some(13.0));
        assert_eq!(time_left_s(&counted, 0, 0.5, 0, None), None);
        assert_eq!(time_left_s(&[For(5.0), Requests(10)], 0, 1.0, 0, None), None);
        assert_eq!(time_left_s(&counted, 5, 0.0, 0, Some(1.0)), None);
    }

    #[test]
    fn recent_rate_counts_the_last_seconds() {
        // Seconds 0..=6, 10 tokens each, 6.5 s in: seconds 2..=6 over 4.5 s.
        let buckets: VecDeque<u64> = std::iter::repeat_n(10, 7).collect();
        assert!((recent_rate(&buckets, 0, 6.5, 5) - 50.0 / 4.5).abs() < 1e-9);
        // Early in a step: all of it over the time so far.
        assert!((recent_rate(&VecDeque::from([30]), 0, 0.5, 5) - 60.0).abs() < 1e-9);
        // Buckets that start later (older ones dropped) are placed by `first`.
        assert!((recent_rate(&VecDeque::from([10, 10]), 100, 101.5, 5) - 20.0 / 4.5).abs() < 1e-9);
        assert_eq!(recent_rate(&VecDeque::new(), 0, 0.0, 5), 0.0);
    }

    #[test]
    fn history_keeps_the_last_minute() {
        let mut c = Current {
            step: LiveStep {
                heading: String::new(),
                index: None,
                expected: None,
            },
            started: Instant::now(),
            ttft: LatencyHistogram::default(),
            tokens: VecDeque::new(),
            first: 0,
        };
        c.add_tokens(0, 5);
        c.add_tokens(0, 5);
        c.add_tokens(3, 7);
        assert_eq!(c.tokens, VecDeque::from([10, 0, 0, 7]));
        c.add_tokens(200, 1);
        assert_eq!((c.tokens.len(), c.first), (HISTORY_S + 1, 200 - HISTORY_S as u64));
        assert_eq!(c.tokens.back(), Some(&1));
        // A second already dropped is ignored.
        c.add_tokens(3, 7);
        assert_eq!(c.tokens.iter().sum::<u64>(), 1);
    }

    #[test]
    fn a_frame_renders_three_lines_within_the_width() {
        let frame = Frame {
            heading: "step 3/12 · [output] concurrency 4".into(),
            done: 120,
            expected: Some(200),
            in_flight: 4,
            failed: 1,
            tokens_per_s: 812.44,
            history: vec![1.0, 2.0, 4.0, 8.0],
            ttft_p99_ms: Some(45.25),
            elapsed_s: 72.4,
            left_s: Some(220.0),
        };
        let lines = render(&frame, 200);
        assert_eq!(lines.len(), 3);
        assert!(lines[0].ends_with("step 3/12 · [output] concurrency 4"), "{lines:?}");
        assert!(lines[1].contains("120/200") && lines[1].contains("45.2"), "{lines:?}");
        assert!(lines[2].contains("812.4 tok/s ▂▃▅█"), "{lines:?}");
        assert!(lines[2].contains("1m 12s") && lines[2].contains("3m 40s"), "{lines:?}");
        let narrow = render(&frame, 24);
        assert!(
            narrow.iter().all(|l| l.chars().map(columns).sum::<usize>() <= 24),
            "{narrow:?}"
        );
        let unknown = render(
            &Frame {
                ttft_p99_ms: None,
                left_s: None,
                ..frame
            },
            200,
        );
        assert!(
            unknown[1].contains('–') && !unknown[2].contains("3m 40s"),
            "{unknown:?}"
        );
    }

    #[test]
    fn wide_characters_take_two_columns() {
        assert_eq!(fit("第 3/12 步", 6), "第 3/1");
        assert_eq!(fit("abc", 10), "abc");
    }
}
