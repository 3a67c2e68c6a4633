//! The load point: what a step is keyed by. A closed-loop step holds a number of requests in
//! flight (a concurrency); an open-loop step sends requests at a rate. Steps, records, the
//! scaling analysis and the capacity search all speak in load points, never in a bare number.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Written as `{"kind": "concurrency", "value": 16}` or `{"kind": "rate", "value": 8.0}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum LoadPoint {
    /// Closed loop: this many connections, each sending its next request when the last ends.
    Concurrency(u32),
    /// Open loop: requests per second, sent at intended times whatever the server does.
    Rate(f64),
}

/// Which kind of load point: what a sweep or a capacity search moves along.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadAxis {
    Concurrency,
    Rate,
}

impl LoadPoint {
    /// The number itself (connections, or requests per second).
    pub fn value(self) -> f64 {
        match self {
            LoadPoint::Concurrency(n) => f64::from(n),
            LoadPoint::Rate(r) => r,
        }
    }

    pub fn axis(self) -> LoadAxis {
        match self {
            LoadPoint::Concurrency(_) => LoadAxis::Concurrency,
            LoadPoint::Rate(_) => LoadAxis::Rate,
        }
    }

    /// The concurrency of a closed-loop point (the seed-era `concurrency` key).
    pub fn concurrency(self) -> Option<u32> {
        match self {
            LoadPoint::Concurrency(n) => Some(n),
            LoadPoint::Rate(_) => None,
        }
    }

    /// The same kind of point at another value (a rate, or a concurrency rounded to ≥ 1).
    pub fn with_value(axis: LoadAxis, value: f64) -> Self {
        match axis {
            LoadAxis::Concurrency => LoadPoint::Concurrency(value.round().clamp(1.0, u32::MAX as f64) as u32),
            LoadAxis::Rate => LoadPoint::Rate(value),
        }
    }
}

/// A rate with as many decimals as it needs: 2, 0.5, 14.2, 0.125.
pub fn fmt_rate(r: f64) -> String {
    let mut s = if r >= 100.0 {
        format!("{r:.0}")
    } else if r >= 10.0 {
        format!("{r:.1}")
    } else {
        format!("{r:.3}")
    };
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    s
}

impl fmt::Display for LoadPoint {
    /// "concurrency 16" or "8 req/s".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadPoint::Concurrency(n) => write!(f, "concurrency {n}"),
            LoadPoint::Rate(r) => write!(f, "{} req/s", fmt_rate(*r)),
        }
    }
}

impl LoadPoint {
    /// The point in a sentence, in the process's language: "concurrency 16" (并发 16) or
    /// "8 req/s". [`Display`](fmt::Display) stays English for keys and file names.
    pub fn in_words(&self) -> String {
        use crate::i18n::{tr, Msg};
        match self {
            LoadPoint::Concurrency(n) => tr(Msg::PointConcurrency, &[("n", n)]),
            LoadPoint::Rate(r) => tr(Msg::PointRate, &[("rate", &fmt_rate(*r))]),
        }
    }

    /// The short form for a table column: "16" or "8/s".
    pub fn short(&self) -> String {
        match self {
            LoadPoint::Concurrency(n) => n.to_string(),
            LoadPoint::Rate(r) => format!("{}/s", fmt_rate(*r)),
        }
    }
}

impl Default for LoadPoint {
    fn default() -> Self {
        LoadPoint::Concurrency(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape_is_the_contract() {
        let cases = [
            (LoadPoint::Concurrency(16), r#"{"kind":"concurrency","value":16}"#),
            (LoadPoint::Rate(8.0), r#"{"kind":"rate","value":8.0}"#),
        ];
        for (point, json) in cases {
            assert_eq!(serde_json::to_string(&point).unwrap(), json);
            assert_eq!(serde_json::from_str::<LoadPoint>(json).unwrap(), point);
        }
    }

    #[test]
    fn display_and_values() {
        let cases = [
            (LoadPoint::Concurrency(16), "concurrency 16", "16"),
            (LoadPoint::Rate(8.0), "8 req/s", "8/s"),
            (LoadPoint::Rate(14.24), "14.2 req/s", "14.2/s"),
            (LoadPoint::Rate(0.5), "0.5 req/s", "0.5/s"),
            (LoadPoint::Rate(1500.0), "1500 req/s", "1500/s"),
        ];
        for (point, long, short) in cases {
            assert_eq!(point.to_string(), long);
            assert_eq!(point.short(), short);
        }
        assert_eq!(
            LoadPoint::with_value(LoadAxis::Concurrency, 0.2),
            LoadPoint::Concurrency(1)
        );
        assert_eq!(LoadPoint::with_value(LoadAxis::Rate, 2.5).value(), 2.5);
    }
}
