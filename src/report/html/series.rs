//! Time-series charts: a stress run's report intervals, and the monitor's samples over the
//! whole run with step boundaries. Every chart over time shares one x range, the run's clock
//! ([`RunClock`]), so that a TTFT spike lines up with a queue spike in the chart below it.

use super::page::load_label;
use super::svg::{Band, Chart, Point, Rule, Series, BAND};
use crate::i18n::{tr_in, Lang, Msg};
use crate::metrics::{advice, StepStats};
use crate::report::summary::Interval;
use crate::report::Summary;

/// One figure of every test over the intervals, as a chart.
fn interval_chart(
    intervals: &[Interval],
    clock: &RunClock,
    title: Msg,
    y_label: Msg,
    figure: impl Fn(&StepStats) -> Option<f64>,
) -> Chart {
    let lang = clock.lang;
    let mut c = Chart::new(
        tr_in(lang, title, &[]),
        tr_in(lang, Msg::HtmlAxisTime, &[]),
        tr_in(lang, y_label, &[]),
    );
    c.x_from_data = true;
    c.x_range = clock.span;
    let mut names: Vec<crate::workload::TestKind> = Vec::new();
    for i in intervals {
        for s in &i.tests {
            if !names.contains(&s.test) {
                names.push(s.test);
            }
        }
    }
    for (color, test) in names.iter().enumerate() {
        let points = intervals
            .iter()
            .filter_map(|i| {
                let s = i.tests.iter().find(|s| s.test == *test)?;
                figure(s).map(|y| Point::new(i.end_s, y))
            })
            .collect();
        c.series.push(Series {
            name: test.name().to_string(),
            points,
            color,
            dashed: false,
        });
    }
    let label = tr_in(lang, Msg::HtmlClientBoundBand, &[]);
    c.bands = intervals
        .iter()
        .filter(|i| i.tests.iter().any(|s| s.client_bound))
        .map(|i| Band {
            from: i.start_s,
            to: i.end_s,
            label: label.clone(),
            class: BAND,
        })
        .collect();
    c
}

/// Throughput, TTFT p99, failed requests and (when the monitor samples carry no in-flight
/// count, as in a summary of an older version) the highest in-flight count per report interval.
pub fn stress_charts(intervals: &[Interval], in_flight_sampled: bool, clock: &RunClock) -> Vec<Chart> {
    if intervals.is_empty() {
        return Vec::new();
    }
    let mut charts = vec![
        interval_chart(
            intervals,
            clock,
            Msg::HtmlChartStressThroughput,
            Msg::HtmlAxisTokensPerS,
            |s| Some(advice::throughput(s)),
        ),
        interval_chart(intervals, clock, Msg::HtmlChartStressTtft, Msg::HtmlAxisTtftP99, |s| {
            s.ttft_ms.map(|d| d.p99)
        }),
        interval_chart(intervals, clock, Msg::HtmlChartStressErrors, Msg::HtmlAxisErrors, |s| {
            Some(s.requests_failed as f64)
        }),
    ];
    if !in_flight_sampled {
        charts.push(interval_chart(
            intervals,
            clock,
            Msg::HtmlChartStressInFlight,
            Msg::HtmlAxisInFlight,
            |s| Some(s.max_in_flight as f64),
        ));
    }
    charts
}

/// Step starts as vertical rules and client-bound step windows as bands, on the run's clock.
fn step_marks(steps: &[StepStats], lang: Lang) -> (Vec<Rule>, Vec<Band>) {
    let mut rules: Vec<Rule> = Vec::new();
    let mut bands = Vec::new();
    let label = tr_in(lang, Msg::HtmlClientBoundBand, &[]);
    for s in steps {
        let Some(w) = s.window else { continue };
        if !rules.iter().any(|r| (r.value - w.start_s).abs() < 1e-6) {
            rules.push(Rule {
                value: w.start_s,
                label: load_label(lang, s.load),
                class: "step-boundary",
            });
        }
        if s.client_bound {
            bands.push(Band {
                from: w.start_s,
                to: w.end_s,
                label: label.clone(),
                class: BAND,
            });
        }
    }
    (rules, bands)
}

/// The run's clock as the charts over time draw it: one x range for all of them, and the
/// steps' boundaries and client-bound bands.
pub struct RunClock {
    pub lang: Lang,
    /// From the earliest to the latest time anything was sampled or measured.
    pub span: Option<(f64, f64)>,
    rules: Vec<Rule>,
    bands: Vec<Band>,
}

impl RunClock {
    pub fn of(summary: &Summary, lang: Lang) -> Self {
        let (rules, bands) = step_marks(&summary.steps, lang);
        Self {
            lang,
            span: run_span(summary),
            rules,
            bands,
        }
    }

    /// An empty chart on the run's clock, with the steps' boundaries and client-bound bands.
    pub fn frame(&self, title: Msg, y: Msg) -> Chart {
        let mut c = Chart::new(
            tr_in(self.lang, title, &[]),
            tr_in(self.lang, Msg::HtmlAxisTime, &[]),
            tr_in(self.lang, y, &[]),
        );
        c.x_from_data = true;
        c.x_range = self.span;
        c.x_rules = self.rules.clone();
        c.bands = self.bands.clone();
        c
    }
}

/// The earliest and the latest time on the run's clock: monitor samples, the server's and the
/// GPUs' series, the steps' windows and the stress intervals.
fn run_span(summary: &Summary) -> Option<(f64, f64)> {
    let m = &summary.monitor;
    let windows = summary.steps.iter().filter_map(|s| s.window);
    let intervals = summary.stress.iter().flat_map(|s| s.intervals.iter());
    let (lo, hi) = m
        .samples
        .iter()
        .map(|s| s.t_s)
        .chain(m.server.iter().map(|p| p.t_s))
        .chain(m.gpu.iter().map(|p| p.t_s))
        .chain(windows.flat_map(|w| [w.start_s, w.end_s]))
        .chain(intervals.flat_map(|i| [i.start_s, i.end_s]))
        .filter(|t| t.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), t| (lo.min(t), hi.max(t)));
    (lo < hi).then_some((lo, hi))
}

/// The client machine over the run: CPU (machine and llm-bench), and temperature where the
/// machine has a sensor.
pub fn monitor_charts(summary: &Summary, clock: &RunClock) -> Vec<Chart> {
    let samples = &summary.monitor.samples;
    if samples.len() < 2 {
        return Vec::new();
    }
    let lang = clock.lang;
    let frame = |title: Msg, y: Msg| clock.frame(title, y);
    let mut cpu = frame(Msg::HtmlChartCpu, Msg::HtmlAxisCpu);
    let series = |name: Msg, color: usize, f: &dyn Fn(&crate::monitor::Sample) -> Option<f64>| Series {
        name: tr_in(lang, name, &[]),
        points: samples
            .iter()
            .filter_map(|s| f(s).map(|y| Point::new(s.t_s, y)))
            .collect(),
        color,
        dashed: false,
    };
    cpu.series
        .push(series(Msg::HtmlSeriesMachineCpu, 0, &|s| s.cpu_pct.map(f64::from)));
    cpu.series
        .push(series(Msg::HtmlSeriesProcessCpu, 1, &|s| s.process_cpu_pct));
    let mut charts = vec![cpu];
    if samples.iter().any(|s| s.in_flight.is_some()) {
        let mut in_flight = frame(Msg::HtmlChartInFlight, Msg::HtmlAxisInFlight);
        in_flight
            .series
            .push(series(Msg::HtmlSeriesInFlight, 2, &|s| s.in_flight.map(|n| n as f64)));
        charts.push(in_flight);
    }
    if summary.monitor.temperature_available {
        let mut temp = frame(Msg::HtmlChartTemperature, Msg::HtmlAxisTemperature);
        temp.series
            .push(series(Msg::HtmlSeriesTemperature, 3, &|s| s.temp_c_max.map(f64::from)));
        charts.push(temp);
    }
    charts
}

/// A timed step run's arrivals per bucket of each step's window, on the run's clock: output
/// tokens per second, and completed and failed requests per second.
pub fn timeline_charts(steps: &[StepStats], clock: &RunClock) -> Vec<Chart> {
    if !steps.iter().any(|s| s.timeline.is_some()) {
        return Vec::new();
    }
    let lang = clock.lang;
    let frame = |title: Msg, y: Msg| clock.frame(title, y);
    let mut tokens = frame(Msg::HtmlChartTimelineTokens, Msg::HtmlAxisTokensPerS);
    let mut requests = frame(Msg::HtmlChartTimelineRequests, Msg::HtmlAxisRequestsPerS);
    let tests = [
        crate::workload::TestKind::Input,
        crate::workload::TestKind::Output,
        crate::workload::TestKind::Multimodal,
    ];
    for (color, test) in tests.iter().enumerate() {
        let timelines: Vec<&crate::metrics::timeline::Timeline> = steps
            .iter()
            .filter(|s| s.test == *test)
            .filter_map(|s| s.timeline.as_ref())
            .collect();
        if timelines.is_empty() {
            continue;
        }
        let points = |f: &dyn Fn(&crate::metrics::timeline::Timeline, usize) -> f64| -> Vec<Point> {
            timelines
                .iter()
                .flat_map(|t| {
                    (0..t.completed.len())
                        .filter(|&i| t.width_s(i) >= 0.25 * t.bucket_s)
                        .map(move |i| Point::new(t.at(i), f(t, i) / t.width_s(i)))
                })
                .collect()
        };
        let name = test.name().to_string();
        if *test != crate::workload::TestKind::Input {
            tokens.series.push(Series {
                name: name.clone(),
                points: points(&|t, i| t.output_tokens[i]),
                color,
                dashed: false,
            });
        }
        requests.series.push(Series {
            name: tr_in(lang, Msg::HtmlSeriesCompleted, &[("test", &name)]),
            points: points(&|t, i| t.completed[i] as f64),
            color,
            dashed: false,
        });
        requests.series.push(Series {
            name: tr_in(lang, Msg::HtmlSeriesFailed, &[("test", &name)]),
            points: points(&|t, i| t.failed[i] as f64),
            color: color + 3,
            dashed: true,
        });
    }
    vec![tokens, requests]
}
