//! The figures `compare` and `--fail-if` know, by their flattened summary names
//! (`output_throughput_tps`, `ttft_p99_ms`, `per_conn_tps_mean`, `capacity_rps`, `knee`), how
//! each is read from a step of `summary.json`, and which way is better.

use serde_json::Value;

/// A statistic of a latency distribution that the records can judge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stat {
    Mean,
    P50,
    P90,
    P99,
}

impl Stat {
    const ALL: [Stat; 4] = [Stat::Mean, Stat::P50, Stat::P90, Stat::P99];

    fn key(self) -> &'static str {
        match self {
            Stat::Mean => "mean",
            Stat::P50 => "p50",
            Stat::P90 => "p90",
            Stat::P99 => "p99",
        }
    }

    /// The quantile, for the percentiles.
    pub fn quantile(self) -> Option<f64> {
        match self {
            Stat::Mean => None,
            Stat::P50 => Some(0.50),
            Stat::P90 => Some(0.90),
            Stat::P99 => Some(0.99),
        }
    }
}

/// A latency distribution of a step (`ttft_ms`, `itl_ms`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Latency {
    Ttft,
    Itl,
    ItlPerToken,
    Tpot,
    E2e,
    TtftFromIntended,
    E2eFromIntended,
}

impl Latency {
    const ALL: [Latency; 7] = [
        Latency::Ttft,
        Latency::Itl,
        Latency::ItlPerToken,
        Latency::Tpot,
        Latency::E2e,
        Latency::TtftFromIntended,
        Latency::E2eFromIntended,
    ];

    /// The name without `_ms`, as in `ttft_p99_ms`.
    fn base(self) -> &'static str {
        match self {
            Latency::Ttft => "ttft",
            Latency::Itl => "itl",
            Latency::ItlPerToken => "itl_per_token",
            Latency::Tpot => "tpot",
            Latency::E2e => "e2e",
            Latency::TtftFromIntended => "ttft_from_intended",
            Latency::E2eFromIntended => "e2e_from_intended",
        }
    }

    /// Values per chunk gap rather than per request: gaps of one request are not independent.
    pub fn per_gap(self) -> bool {
        matches!(self, Latency::Itl | Latency::ItlPerToken)
    }
}

/// What a throughput counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    OutputTokens,
    Requests,
    PromptTokens,
}

/// A per-request speed whose mean a step reports (`per_conn_tps`, `prefill_tps`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speed {
    PerConn,
    Prefill,
}

/// One figure compare knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Figure {
    Throughput(Flow),
    Latency(Latency, Stat),
    SpeedMean(Speed),
    /// A figure shown and checked without a noise model from the records.
    Plain(&'static str),
    /// Run level: the capacity answer's load value (`capacity_rps`, `capacity_concurrency`).
    CapacityRps,
    CapacityConcurrency,
    /// Run level: the load value of the knee, per test.
    Knee,
}

/// Figures shown for every matched step (those a step lacks are skipped).
pub const HEADLINE: [Figure; 10] = [
    Figure::Throughput(Flow::OutputTokens),
    Figure::Throughput(Flow::Requests),
    Figure::Latency(Latency::Ttft, Stat::P50),
    Figure::Latency(Latency::Ttft, Stat::P99),
    Figure::Latency(Latency::Itl, Stat::P50),
    Figure::Latency(Latency::Itl, Stat::P99),
    Figure::Latency(Latency::Tpot, Stat::P50),
    Figure::Latency(Latency::E2e, Stat::P50),
    Figure::Latency(Latency::E2e, Stat::P99),
    Figure::SpeedMean(Speed::PerConn),
];

const PLAIN: [&str; 3] = ["goodput_rps", "goodput_tps", "slo_attainment_pct"];

impl Figure {
    /// Every figure, step-level first, then the run-level ones.
    pub fn all() -> Vec<Figure> {
        let mut all = vec![
            Figure::Throughput(Flow::OutputTokens),
            Figure::Throughput(Flow::Requests),
            Figure::Throughput(Flow::PromptTokens),
        ];
        for latency in Latency::ALL {
            all.extend(Stat::ALL.iter().map(|&s| Figure::Latency(latency, s)));
        }
        all.push(Figure::SpeedMean(Speed::PerConn));
        all.push(Figure::SpeedMean(Speed::Prefill));
        all.extend(PLAIN.iter().map(|&k| Figure::Plain(k)));
        all.extend([Figure::CapacityRps, Figure::CapacityConcurrency, Figure::Knee]);
        all
    }

    pub fn name(self) -> String {
        match self {
            Figure::Throughput(Flow::OutputTokens) => "output_throughput_tps".into(),
            Figure::Throughput(Flow::Requests) => "request_throughput_rps".into(),
            Figure::Throughput(Flow::PromptTokens) => "prompt_throughput_tps".into(),
            Figure::Latency(l, s) => format!("{}_{}_ms", l.base(), s.key()),
            Figure::SpeedMean(Speed::PerConn) => "per_conn_tps_mean".into(),
            Figure::SpeedMean(Speed::Prefill) => "prefill_tps_mean".into(),
            Figure::Plain(key) => key.into(),
            Figure::CapacityRps => "capacity_rps".into(),
            Figure::CapacityConcurrency => "capacity_concurrency".into(),
            Figure::Knee => "knee".into(),
        }
    }

    pub fn parse(name: &str) -> Option<Figure> {
        Figure::all().into_iter().find(|f| f.name() == name)
    }

    /// Every name, for the message that lists them.
    pub fn names() -> Vec<String> {
        Figure::all().into_iter().map(Figure::name).collect()
    }

    /// Throughputs, speeds, capacity and the knee grow when things get better; latencies fall.
    pub fn higher_is_better(self) -> bool {
        !matches!(self, Figure::Latency(..))
    }

    /// A figure of the whole run rather than of a step.
    pub fn run_level(self) -> bool {
        matches!(self, Figure::CapacityRps | Figure::CapacityConcurrency | Figure::Knee)
    }

    /// The figure's value in a step as `summary.json` writes it (`None` where the step lacks it).
    pub fn step_value(self, step: &Value) -> Option<f64> {
        let value = match self {
            Figure::Throughput(Flow::OutputTokens) => step.get("output_throughput_tps"),
            Figure::Throughput(Flow::Requests) => step.get("request_throughput_rps"),
            Figure::Throughput(Flow::PromptTokens) => step.get("prompt_throughput_tps"),
            Figure::Latency(l, s) => step.get(format!("{}_ms", l.base())).and_then(|d| d.get(s.key())),
            Figure::SpeedMean(Speed::PerConn) => step.get("per_conn_tps").and_then(|d| d.get("mean")),
            Figure::SpeedMean(Speed::Prefill) => step.get("prefill_tps").and_then(|d| d.get("mean")),
            Figure::Plain(key) => step.get(key),
            Figure::CapacityRps | Figure::CapacityConcurrency | Figure::Knee => None,
        };
        value.and_then(Value::as_f64).filter(|v| v.is_finite())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let names = Figure::names();
        for name in &names {
            assert_eq!(Figure::parse(name).map(Figure::name).as_deref(), Some(name.as_str()));
        }
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len());
        for name in [
            "ttft_p99_ms",
            "itl_p50_ms",
            "e2e_mean_ms",
            "tpot_p90_ms",
            "capacity_rps",
            "knee",
        ] {
            assert!(Figure::parse(name).is_some(), "{name}");
        }
        assert!(Figure::parse("ttft_p42_ms").is_none());
    }

    #[test]
    fn values_are_read_from_a_step() {
        let step = serde_json::json!({
            "output_throughput_tps": 812.5,
            "ttft_ms": {"p99": 120.0, "mean": 80.0},
            "per_conn_tps": {"mean": 40.0},
        });
        let cases = [
            ("output_throughput_tps", Some(812.5)),
            ("ttft_p99_ms", Some(120.0)),
            ("ttft_mean_ms", Some(80.0)),
            ("per_conn_tps_mean", Some(40.0)),
            ("itl_p50_ms", None),
            ("goodput_rps", None),
        ];
        for (name, want) in cases {
            assert_eq!(Figure::parse(name).unwrap().step_value(&step), want, "{name}");
        }
        assert!(!Figure::parse("ttft_p99_ms").unwrap().higher_is_better());
        assert!(Figure::parse("output_throughput_tps").unwrap().higher_is_better());
    }
}
