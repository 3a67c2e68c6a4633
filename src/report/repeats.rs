//! `--repeat N` on the console: after the steps, one line per (test, load point) with its
//! headline figures as mean ± half-width of the 95% confidence interval.

use crate::i18n::{tr, Msg};
use crate::metrics::repeat::{FigureStats, RepeatStats};
use crate::workload::TestKind;

/// The heading and one line per repeated load point; nothing without repeats.
pub fn lines(repeats: &[RepeatStats]) -> Vec<String> {
    let Some(runs) = repeats.iter().map(|r| r.runs).max() else {
        return Vec::new();
    };
    let mut out = vec![tr(Msg::RepeatHeading, &[("runs", &runs)])];
    out.extend(repeats.iter().map(point_line));
    out
}

fn point_line(r: &RepeatStats) -> String {
    let rate = |name: &str, unit: &str, decimals: usize| {
        let f: &FigureStats = r.figures.get(name)?;
        Some(tr(
            Msg::RepeatRate,
            &[
                ("mean", &format!("{:.decimals$}", f.mean)),
                ("half", &format!("{:.decimals$}", f.half_width())),
                ("unit", &unit),
            ],
        ))
    };
    let latency = |name: &str, label: &str| {
        let f = r.figures.get(name)?;
        Some(tr(
            Msg::RepeatLatency,
            &[
                ("name", &label),
                ("mean", &format!("{:.1}", f.mean)),
                ("half", &format!("{:.1}", f.half_width())),
            ],
        ))
    };
    let throughput = match r.test {
        TestKind::Input => rate("prompt_throughput_tps", "prompt tok/s", 1),
        _ => rate("output_throughput_tps", "tok/s", 1).or_else(|| rate("prompt_throughput_tps", "input tok/s", 1)),
    };
    let figures: Vec<String> = [
        throughput,
        rate("request_throughput_rps", "req/s", 2),
        latency("ttft_p50_ms", "TTFT p50"),
        latency("ttft_p99_ms", "TTFT p99"),
        latency("itl_p50_ms", "ITL p50"),
        latency("e2e_p99_ms", "E2E p99"),
        rate("per_conn_tps_mean", "tok/s/conn", 1),
    ]
    .into_iter()
    .flatten()
    .collect();
    tr(
        Msg::RepeatPoint,
        &[
            ("test", &r.test),
            ("load", &r.load),
            ("runs", &r.runs),
            ("figures", &figures.join(", ")),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::LoadPoint;

    #[test]
    fn a_line_per_point_with_mean_and_half_width() {
        let figures = [
            ("output_throughput_tps", vec![800.0, 815.2, 822.0]),
            ("ttft_p99_ms", vec![10.0, 12.0, 14.0]),
        ]
        .into_iter()
        .map(|(name, values)| (name.to_string(), FigureStats::of(values).unwrap()))
        .collect();
        let stats = RepeatStats {
            test: TestKind::Output,
            load: LoadPoint::Concurrency(16),
            runs: 3,
            figures,
        };
        // The process's language may be either (other tests set it): the figures read the same.
        let lines = lines(&[stats]);
        assert_eq!(lines.len(), 2);
        assert!(lines[0].contains('3'), "{}", lines[0]);
        // 4.3027 · 11.264 / √3 = 27.98 and 4.3027 · 2 / √3 = 4.97.
        assert!(
            lines[1].ends_with("812.4 ± 28.0 tok/s, TTFT p99 12.0 ± 5.0 ms"),
            "{}",
            lines[1]
        );
        assert!(lines[1].starts_with("[output] concurrency 16"), "{}", lines[1]);
        assert!(super::lines(&[]).is_empty());
    }
}
