//! `--fail-if 'FIGURE OP VALUE'`: OP one of `<`, `<=`, `>`, `>=`; VALUE a signed percentage
//! (the change against the baseline, `-5%`, `+10%`) or a plain number (the figure's own value,
//! `ttft_p99_ms > 500`).

use super::figures::Figure;
use crate::i18n::{tr, Msg};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }

    pub fn holds(self, x: f64, limit: f64) -> bool {
        match self {
            Op::Lt => x < limit,
            Op::Le => x <= limit,
            Op::Gt => x > limit,
            Op::Ge => x >= limit,
        }
    }
}

/// What the limit is compared with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    /// The change against the baseline, in percent.
    ChangePct(f64),
    /// The figure's own value, in its unit.
    Absolute(f64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    pub figure: Figure,
    pub op: Op,
    pub limit: Limit,
    /// As the user wrote it, for the breach line.
    pub text: String,
}

impl Threshold {
    /// Parses one `--fail-if` expression; the error is one sentence with an example.
    pub fn parse(expr: &str) -> Result<Threshold, String> {
        let bad = |why: String| {
            tr(
                Msg::CompareBadFailIf,
                &[
                    ("expr", &expr),
                    ("why", &why),
                    ("example", &"output_throughput_tps < -5%"),
                ],
            )
        };
        let s = expr.trim();
        let name_len = s
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(s.len());
        let (name, rest) = s.split_at(name_len);
        if name.is_empty() {
            return Err(bad(tr(Msg::CompareFailIfNoFigure, &[])));
        }
        let figure = Figure::parse(name).ok_or_else(|| {
            bad(tr(
                Msg::CompareFailIfUnknownFigure,
                &[("figure", &name), ("known", &Figure::names().join(", "))],
            ))
        })?;
        let rest = rest.trim_start();
        let (op, rest) = if let Some(r) = rest.strip_prefix("<=") {
            (Op::Le, r)
        } else if let Some(r) = rest.strip_prefix(">=") {
            (Op::Ge, r)
        } else if let Some(r) = rest.strip_prefix('<') {
            (Op::Lt, r)
        } else if let Some(r) = rest.strip_prefix('>') {
            (Op::Gt, r)
        } else {
            return Err(bad(tr(Msg::CompareFailIfNoOp, &[])));
        };
        let value = rest.trim().replace('\u{2212}', "-");
        let (number, percent) = match value.strip_suffix('%') {
            Some(n) => (n.trim(), true),
            None => (value.as_str(), false),
        };
        let parsed: f64 = number
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite() && !number.is_empty())
            .ok_or_else(|| bad(tr(Msg::CompareFailIfBadValue, &[("value", &rest.trim())])))?;
        Ok(Threshold {
            figure,
            op,
            limit: if percent {
                Limit::ChangePct(parsed)
            } else {
                Limit::Absolute(parsed)
            },
            text: format!("{} {}", op.symbol(), rest.trim()),
        })
    }

    /// Whether a value (and its change against the baseline) crosses the limit.
    pub fn crossed(&self, value: Option<f64>, change_pct: Option<f64>) -> bool {
        match self.limit {
            Limit::ChangePct(limit) => change_pct.is_some_and(|c| self.op.holds(c, limit)),
            Limit::Absolute(limit) => value.is_some_and(|v| self.op.holds(v, limit)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::figures::{Flow, Latency, Stat};

    #[test]
    fn good_expressions() {
        let cases = [
            (
                "output_throughput_tps < -5%",
                Figure::Throughput(Flow::OutputTokens),
                Op::Lt,
                Limit::ChangePct(-5.0),
            ),
            (
                "ttft_p99_ms > +10%",
                Figure::Latency(Latency::Ttft, Stat::P99),
                Op::Gt,
                Limit::ChangePct(10.0),
            ),
            ("capacity_rps<-3%", Figure::CapacityRps, Op::Lt, Limit::ChangePct(-3.0)),
            (
                "  itl_p50_ms >= 2.5 % ",
                Figure::Latency(Latency::Itl, Stat::P50),
                Op::Ge,
                Limit::ChangePct(2.5),
            ),
            (
                "ttft_p99_ms > 500",
                Figure::Latency(Latency::Ttft, Stat::P99),
                Op::Gt,
                Limit::Absolute(500.0),
            ),
            ("knee <= \u{2212}10%", Figure::Knee, Op::Le, Limit::ChangePct(-10.0)),
        ];
        for (expr, figure, op, limit) in cases {
            let t = Threshold::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
            assert_eq!((t.figure, t.op, t.limit), (figure, op, limit), "{expr}");
        }
    }

    #[test]
    fn bad_expressions_say_what_is_wrong_in_one_line() {
        let cases = [
            ("", "no figure"),
            ("< -5%", "no figure"),
            ("throughput < -5%", "unknown figure"),
            ("output_throughput_tps", "operator"),
            ("output_throughput_tps = -5%", "operator"),
            ("output_throughput_tps == -5%", "operator"),
            ("output_throughput_tps < ", "not a number"),
            ("output_throughput_tps < abc%", "not a number"),
            ("output_throughput_tps < -5%%", "not a number"),
            ("output_throughput_tps < 5% extra", "not a number"),
            ("output_throughput_tps < inf", "not a number"),
        ];
        for (expr, why) in cases {
            let e = Threshold::parse(expr).expect_err(expr);
            assert!(e.contains(why), "{expr}: {e}");
            assert!(e.contains("output_throughput_tps < -5%"), "an example: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
        let e = Threshold::parse("throughput < -5%").unwrap_err();
        assert!(
            e.contains("ttft_p99_ms") && e.contains("capacity_rps"),
            "lists the known: {e}"
        );
    }

    #[test]
    fn crossing() {
        let t = Threshold::parse("output_throughput_tps < -5%").unwrap();
        assert!(t.crossed(Some(1.0), Some(-7.2)));
        assert!(!t.crossed(Some(1.0), Some(-4.0)));
        assert!(!t.crossed(Some(1.0), None));
        let t = Threshold::parse("ttft_p99_ms > 500").unwrap();
        assert!(t.crossed(Some(501.0), Some(0.0)) && !t.crossed(Some(499.0), Some(90.0)));
    }
}
