//! Latency objectives (SLOs): the `--slo` grammar, goodput, and pass/fail per step.
//!
//! # Grammar
//!
//! `--slo SPEC`, where SPEC is a comma-separated list of `NAME=VALUE` items, for example
//! `ttft=500ms,tpot=50ms,itl=100ms,e2e=20s` or `ttft_p99=500ms,tpot_p90=40ms`; the two forms
//! mix freely (`ttft=1s,ttft_p99=500ms`).
//!
//! - NAME is one of the metrics `ttft`, `tpot`, `itl`, `e2e`, optionally with a percentile
//!   suffix `_pNN`: `_p50`, `_p90`, `_p99`, also fractional ones like `_p99.9`; any number
//!   above 0 and at most 100 (e.g. `ttft_p99`). Names are not case-sensitive.
//!   - Without a suffix it is a **per-request threshold**: a request is *good* when it
//!     succeeded and meets every per-request threshold (the goodput definition of DistServe
//!     and vLLM). For `itl` the request's own p99 gap between chunks is judged, so one stall
//!     in an otherwise smooth stream does not by itself make the request bad, but a stream
//!     that stalls often does.
//!   - With a suffix it is a **percentile objective**: that percentile of the metric over all
//!     measured requests of the step must be at most VALUE.
//! - VALUE is a time with a unit: `us` (also `µs`), `ms` or `s`; fractions are allowed
//!   (`0.5s`, `12.5ms`) and a space between number and unit is allowed (`500 ms`). A number
//!   without a unit is an error: write it with a unit, like `500ms` or `2s`. The value must be
//!   above zero and finite.
//! - Whitespace around items, names and values is allowed. Empty items, a NAME given twice
//!   (`ttft_p99` and `ttft_p99.0` are the same NAME), unknown metrics, bad numbers or units,
//!   zero, negative or non-finite values and bad percentiles are each rejected with a one-line
//!   message that names the offending item and says what to write instead.
//!
//! # Judgement
//!
//! - Per-request thresholds decide which requests are *good* ([`Slo::request_is_good`],
//!   [`GoodputCounter`]): goodput is the rate of good requests, attainment the share of
//!   measured requests (successful or failed) that were good. A metric a request does not have
//!   (the TPOT of a one-token answer, the ITL of a single-chunk one) passes its threshold.
//! - Percentile objectives decide whether a step passes ([`Slo::judge_percentiles`]); an
//!   objective whose percentile the step cannot give (no data) fails.

use crate::i18n::Msg;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Text for `--help`: the grammar of `--slo` in short.
pub const SLO_HELP: &str = "\
Latency objectives: comma-separated NAME=VALUE items, e.g. ttft=500ms,tpot=50ms,itl=100ms,e2e=20s \
or ttft_p99=500ms,tpot_p90=40ms (the forms mix freely). NAME is ttft, tpot, itl or e2e. Alone it \
is a per-request threshold: a request is good (counts towards goodput) when it succeeded and meets \
every one of them; for itl the request's own p99 chunk gap is judged. With a percentile suffix \
_pNN (_p50, _p90, _p99, _p99.9, ...) it is an objective for the step: that percentile over the \
step must be at most VALUE. VALUE is a time with a unit: us (µs), ms or s, fractions allowed \
(0.5s, 12.5ms).";

const PREFIX: &str = "`--slo`:";

/// A `--slo` error: the prefix and the message in the process's language.
fn slo_error(msg: crate::i18n::Msg, args: &[(&str, &dyn fmt::Display)]) -> String {
    format!("{PREFIX} {}", crate::i18n::tr(msg, args))
}

/// A latency metric that an objective can bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SloMetric {
    /// Time to first token.
    Ttft,
    /// Time per output token after the first.
    Tpot,
    /// Inter-token (inter-chunk) latency.
    Itl,
    /// End-to-end request latency.
    E2e,
}

impl SloMetric {
    pub const ALL: [SloMetric; 4] = [SloMetric::Ttft, SloMetric::Tpot, SloMetric::Itl, SloMetric::E2e];

    /// The name as written in `--slo`: `ttft`, `tpot`, `itl`, `e2e`.
    pub fn name(&self) -> &'static str {
        match self {
            SloMetric::Ttft => "ttft",
            SloMetric::Tpot => "tpot",
            SloMetric::Itl => "itl",
            SloMetric::E2e => "e2e",
        }
    }

    fn from_name(s: &str) -> Option<SloMetric> {
        SloMetric::ALL.into_iter().find(|m| m.name() == s)
    }
}

impl fmt::Display for SloMetric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One item of `--slo`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Objective {
    pub metric: SloMetric,
    /// None: per request (a threshold every good request meets). Some(p): the p-th percentile
    /// over the step, p in (0, 100].
    pub percentile: Option<f64>,
    /// The limit, in milliseconds: the value must be at most this.
    pub limit_ms: f64,
}

impl Objective {
    /// The NAME as written in `--slo`, normalised: `ttft`, `ttft_p99`, `itl_p99.9`.
    pub fn name(&self) -> String {
        match self.percentile {
            None => self.metric.name().to_string(),
            Some(p) => format!("{}_p{p}", self.metric.name()),
        }
    }

    /// In words: `ttft` or `ttft p99`.
    pub fn label(&self) -> String {
        match self.percentile {
            None => self.metric.name().to_string(),
            Some(p) => format!("{} p{p}", self.metric.name()),
        }
    }

    pub fn is_per_request(&self) -> bool {
        self.percentile.is_none()
    }

    /// Whether a value meets the limit (NaN never does).
    pub fn allows(&self, value_ms: f64) -> bool {
        value_ms <= self.limit_ms
    }
}

/// A parsed `--slo`: its objectives in the order written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Slo {
    /// The spec as the user wrote it, normalised: no whitespace, names in lower case,
    /// percentiles in their shortest form (`p99.90` → `p99.9`), units `us`, `ms` or `s`.
    pub spec: String,
    pub objectives: Vec<Objective>,
}

impl FromStr for Slo {
    type Err = String;

    fn from_str(s: &str) -> Result<Slo, String> {
        Slo::parse(s)
    }
}

impl fmt::Display for Slo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.spec)
    }
}

impl Slo {
    /// Parses a `--slo` SPEC (see the module documentation for the grammar).
    pub fn parse(spec: &str) -> Result<Slo, String> {
        if spec.trim().is_empty() {
            return Err(slo_error(Msg::SloEmpty, &[]));
        }
        let mut objectives: Vec<Objective> = Vec::new();
        let mut normalised: Vec<String> = Vec::new();
        // For duplicate detection: normalised NAME → the item as the user wrote it.
        let mut seen: Vec<(String, String)> = Vec::new();
        for (i, raw) in spec.split(',').enumerate() {
            let item = raw.trim();
            if item.is_empty() {
                return Err(slo_error(
                    Msg::SloEmptyItem,
                    &[("n", &(i + 1)), ("spec", &shown(spec.trim()))],
                ));
            }
            let (objective, value_text) = parse_item(item)?;
            let name = objective.name();
            if let Some((_, first)) = seen.iter().find(|(n, _)| *n == name) {
                return Err(slo_error(
                    Msg::SloTwice,
                    &[("name", &name), ("first", &shown(first)), ("second", &shown(item))],
                ));
            }
            seen.push((name.clone(), item.to_string()));
            normalised.push(format!("{name}={value_text}"));
            objectives.push(objective);
        }
        Ok(Slo {
            spec: normalised.join(","),
            objectives,
        })
    }

    /// The per-request thresholds (no percentile suffix), in the order written.
    pub fn per_request(&self) -> impl Iterator<Item = &Objective> + '_ {
        self.objectives.iter().filter(|o| o.percentile.is_none())
    }

    /// The percentile objectives (with a `_pNN` suffix), in the order written.
    pub fn percentiles(&self) -> impl Iterator<Item = &Objective> + '_ {
        self.objectives.iter().filter(|o| o.percentile.is_some())
    }

    /// Whether there is at least one per-request threshold (so goodput means something).
    pub fn has_per_request(&self) -> bool {
        self.per_request().next().is_some()
    }

    /// Whether there is at least one percentile objective (so a step can pass or fail).
    pub fn has_percentiles(&self) -> bool {
        self.percentiles().next().is_some()
    }

    /// Plain words: "ttft p99 ≤ 500 ms and tpot ≤ 50 ms" (three or more: "a, b and c").
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self
            .objectives
            .iter()
            .map(|o| format!("{} ≤ {}", o.label(), fmt_ms(o.limit_ms)))
            .collect();
        match parts.split_last() {
            None => String::new(),
            Some((last, [])) => last.clone(),
            Some((last, rest)) => {
                crate::i18n::tr(crate::i18n::Msg::SloAnd, &[("rest", &rest.join(", ")), ("last", last)])
            }
        }
    }

    /// Whether one request meets every per-request threshold. `None` values: a metric the
    /// request does not have (e.g. the TPOT of a one-token answer) passes that threshold; a
    /// NaN value fails it. For `itl` the request's own p99 chunk gap (`itl_p99_ms`) is judged.
    ///
    /// This does not know whether the request succeeded: a failed request is never good, so
    /// the caller passes only successful ones ([`GoodputCounter::add`] does that check). With
    /// no per-request thresholds every request is good.
    pub fn request_is_good(&self, r: &RequestLatencies) -> bool {
        self.per_request().all(|o| r.get(o.metric).is_none_or(|v| o.allows(v)))
    }

    /// Judges the percentile objectives of a step. `lookup(metric, percentile)` returns the
    /// step's value in ms (None when the step has no such data: that objective then fails, and
    /// its check has `actual_ms: None`, shown as "no data"). Returns every objective's verdict,
    /// in the order written, and `pass` = all passed (true when there are none).
    pub fn judge_percentiles(&self, lookup: impl Fn(SloMetric, f64) -> Option<f64>) -> Verdict {
        let checks: Vec<Check> = self
            .percentiles()
            .map(|o| {
                let actual_ms = o.percentile.and_then(|p| lookup(o.metric, p));
                let pass = actual_ms.is_some_and(|v| o.allows(v));
                Check {
                    objective: o.clone(),
                    actual_ms,
                    pass,
                }
            })
            .collect();
        Verdict {
            pass: checks.iter().all(|c| c.pass),
            checks,
        }
    }
}

/// One request's latencies, in milliseconds; None where the request has no such figure.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RequestLatencies {
    pub ttft_ms: Option<f64>,
    pub tpot_ms: Option<f64>,
    /// The request's own p99 gap between chunks: what a per-request `itl` threshold judges.
    pub itl_p99_ms: Option<f64>,
    pub e2e_ms: Option<f64>,
}

impl RequestLatencies {
    /// The figure a per-request threshold on `metric` judges.
    pub fn get(&self, metric: SloMetric) -> Option<f64> {
        match metric {
            SloMetric::Ttft => self.ttft_ms,
            SloMetric::Tpot => self.tpot_ms,
            SloMetric::Itl => self.itl_p99_ms,
            SloMetric::E2e => self.e2e_ms,
        }
    }
}

/// The percentile objectives of one step, judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub pass: bool,
    pub checks: Vec<Check>,
}

/// One percentile objective, judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub objective: Objective,
    /// The step's value; None: no data (the check then fails).
    pub actual_ms: Option<f64>,
    pub pass: bool,
}

impl Check {
    /// actual / limit, when there is a finite actual value.
    pub fn ratio(&self) -> Option<f64> {
        self.actual_ms
            .filter(|v| v.is_finite())
            .map(|v| v / self.objective.limit_ms)
    }

    /// In words: "ttft p99 1,240 ms (limit 500 ms)", or "ttft p99 no data (limit 500 ms)".
    pub fn describe(&self) -> String {
        use crate::i18n::{tr, Msg};
        let actual = match self.actual_ms {
            Some(v) => fmt_ms(v),
            None => tr(Msg::SloNoData, &[]),
        };
        tr(
            Msg::SloCheck,
            &[
                ("metric", &self.objective.label()),
                ("actual", &actual),
                ("limit", &fmt_ms(self.objective.limit_ms)),
            ],
        )
    }
}

impl Verdict {
    /// The failed check that is furthest over its limit (actual/limit), for "limiting metric".
    /// Failed checks with a value rank before those with no data (or a non-finite value);
    /// among equals the first written wins. None when every check passed.
    pub fn worst(&self) -> Option<&Check> {
        let mut worst: Option<&Check> = None;
        for c in self.checks.iter().filter(|c| !c.pass) {
            let better = match worst {
                None => true,
                Some(w) => match (c.ratio(), w.ratio()) {
                    (Some(a), Some(b)) => a > b,
                    (Some(_), None) => true,
                    (None, _) => false,
                },
            };
            if better {
                worst = Some(c);
            }
        }
        worst
    }

    /// The checks that failed, in the order written.
    pub fn failed(&self) -> impl Iterator<Item = &Check> + '_ {
        self.checks.iter().filter(|c| !c.pass)
    }
}

/// Running count of good requests: call `add(ok, latencies, output_tokens)` per measured request.
#[derive(Debug, Clone, Default)]
pub struct GoodputCounter {
    good: u64,
    total: u64,
    good_output_tokens: u64,
}

impl GoodputCounter {
    /// Counts one measured request: `ok` is whether it succeeded (a failed request is never
    /// good, but counts in the total); `output_tokens` count towards good tokens only when good.
    pub fn add(&mut self, slo: &Slo, ok: bool, r: &RequestLatencies, output_tokens: u64) {
        self.total += 1;
        if ok && slo.request_is_good(r) {
            self.good += 1;
            self.good_output_tokens = self.good_output_tokens.saturating_add(output_tokens);
        }
    }

    /// Adds another counter's counts (e.g. per-connection counters into a step's).
    pub fn merge(&mut self, other: &GoodputCounter) {
        self.good += other.good;
        self.total += other.total;
        self.good_output_tokens = self.good_output_tokens.saturating_add(other.good_output_tokens);
    }

    pub fn good(&self) -> u64 {
        self.good
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    pub fn good_output_tokens(&self) -> u64 {
        self.good_output_tokens
    }

    /// % of measured requests (ok or failed) that were good; None when there were none.
    pub fn attainment_pct(&self) -> Option<f64> {
        (self.total > 0).then(|| self.good as f64 / self.total as f64 * 100.0)
    }

    /// Goodput in requests per second over `duration_s`; None when the duration is not positive.
    pub fn goodput_rps(&self, duration_s: f64) -> Option<f64> {
        per_second(self.good, duration_s)
    }

    /// Output tokens of good requests per second over `duration_s`; None when the duration is
    /// not positive.
    pub fn good_output_tps(&self, duration_s: f64) -> Option<f64> {
        per_second(self.good_output_tokens, duration_s)
    }
}

fn per_second(count: u64, duration_s: f64) -> Option<f64> {
    (duration_s.is_finite() && duration_s > 0.0).then(|| count as f64 / duration_s)
}

/// Milliseconds for sentences: "0.35 ms", "12.5 ms", "500 ms", "1,240 ms"; from 10,000 ms on
/// in seconds with up to one decimal: "20 s", "12.3 s". Trailing zeros are dropped.
pub fn fmt_ms(ms: f64) -> String {
    if !ms.is_finite() {
        return format!("{ms} ms");
    }
    let a = ms.abs();
    let (body, unit) = if a.round() >= 10_000.0 {
        (fixed(a / 1000.0, 1), "s")
    } else {
        let decimals = if a >= 100.0 {
            0
        } else if a >= 10.0 {
            1
        } else if a >= 1.0 {
            2
        } else {
            3
        };
        (fixed(a, decimals), "ms")
    };
    let sign = if ms < 0.0 && body != "0" { "-" } else { "" };
    format!("{sign}{body} {unit}")
}

/// `x` (not negative) with `decimals` decimals, trailing zeros dropped, thousands grouped:
/// `fixed(1780.4, 0)` is "1,780".
pub fn fixed(x: f64, decimals: usize) -> String {
    let s = format!("{x:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        &s
    };
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    let mut grouped = String::with_capacity(int.len() + int.len() / 3 + 8);
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    if let Some(f) = frac {
        grouped.push('.');
        grouped.push_str(f);
    }
    grouped
}

/// An item (or other user text) made safe for a one-line message: control characters escaped.
fn shown(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Parses one trimmed, non-empty item; returns the objective and the normalised VALUE text.
fn parse_item(item: &str) -> Result<(Objective, String), String> {
    let it = shown(item);
    let Some((name, value)) = item.split_once('=') else {
        return Err(slo_error(Msg::SloNoEquals, &[("it", &it)]));
    };
    if value.contains('=') {
        return Err(slo_error(Msg::SloTwoEquals, &[("it", &it)]));
    }
    let name = name.trim().to_lowercase();
    let value = value.trim();
    if name.is_empty() {
        return Err(slo_error(Msg::SloNoName, &[("it", &it)]));
    }
    let (metric, percentile) = parse_name(&name, &it)?;
    if value.is_empty() {
        return Err(slo_error(Msg::SloNoValue, &[("it", &it), ("name", &shown(&name))]));
    }
    let (limit_ms, value_text) = parse_time(value, &it)?;
    Ok((
        Objective {
            metric,
            percentile,
            limit_ms,
        },
        value_text,
    ))
}

/// Parses a lower-case NAME: a metric, optionally with `_pNN`.
fn parse_name(name: &str, it: &str) -> Result<(SloMetric, Option<f64>), String> {
    let (base, suffix) = match name.split_once('_') {
        Some((b, s)) => (b, Some(s)),
        None => (name, None),
    };
    let Some(metric) = SloMetric::from_name(base) else {
        return Err(slo_error(Msg::SloUnknownMetric, &[("name", &shown(name)), ("it", &it)]));
    };
    let Some(suffix) = suffix else {
        return Ok((metric, None));
    };
    let Some(digits) = suffix.strip_prefix('p') else {
        return Err(slo_error(
            Msg::SloBadSuffix,
            &[("suffix", &shown(suffix)), ("it", &it), ("base", &base)],
        ));
    };
    let p = parse_decimal(digits).filter(|p| *p > 0.0 && *p <= 100.0);
    match p {
        Some(p) => Ok((metric, Some(p))),
        None => Err(slo_error(
            Msg::SloBadPercentile,
            &[("digits", &shown(digits)), ("it", &it), ("base", &base)],
        )),
    }
}

/// A plain decimal: digits with at most one `.`, at least one digit (infinite when too long).
fn parse_decimal(s: &str) -> Option<f64> {
    let digits = s.chars().filter(|c| c.is_ascii_digit()).count();
    let dots = s.chars().filter(|c| *c == '.').count();
    if digits == 0 || dots > 1 || digits + dots != s.chars().count() {
        return None;
    }
    s.parse::<f64>().ok()
}

/// Parses a trimmed, non-empty VALUE into milliseconds; also returns its normalised text.
fn parse_time(value: &str, it: &str) -> Result<(f64, String), String> {
    let v = shown(value);
    let lower = value.to_lowercase();
    let bare = lower.trim_start_matches(['+', '-']).trim_start();
    if bare.starts_with("inf") || bare.starts_with("nan") {
        return Err(slo_error(Msg::SloNotFinite, &[("v", &v), ("it", &it)]));
    }
    if value.starts_with('-') {
        return Err(slo_error(Msg::SloNegative, &[("v", &v), ("it", &it)]));
    }
    let split = value
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || *c == '.'))
        .map_or(value.len(), |(i, _)| i);
    let (number, unit) = (&value[..split], value[split..].trim());
    let Some(x) = (if number.is_empty() { None } else { parse_decimal(number) }) else {
        if number.is_empty() {
            return Err(slo_error(Msg::SloNotATime, &[("v", &v), ("it", &it)]));
        }
        return Err(slo_error(Msg::SloBadNumber, &[("number", &shown(number)), ("it", &it)]));
    };
    if unit.is_empty() {
        return Err(slo_error(Msg::SloNoUnit, &[("it", &it)]));
    }
    let (factor, unit_text) = match unit.to_lowercase().as_str() {
        "us" | "µs" | "μs" => (0.001, "us"),
        "ms" => (1.0, "ms"),
        "s" => (1000.0, "s"),
        _ => return Err(slo_error(Msg::SloUnknownUnit, &[("unit", &shown(unit)), ("it", &it)])),
    };
    let ms = x * factor;
    if !ms.is_finite() {
        return Err(slo_error(Msg::SloTooLarge, &[("v", &v), ("it", &it)]));
    }
    if ms == 0.0 {
        return Err(slo_error(Msg::SloZero, &[("v", &v), ("it", &it)]));
    }
    Ok((ms, format!("{number}{unit_text}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(metric: SloMetric, percentile: Option<f64>, limit_ms: f64) -> Objective {
        Objective {
            metric,
            percentile,
            limit_ms,
        }
    }

    /// (input, normalised spec, objectives as (metric, percentile, limit ms))
    type GoodCase = (&'static str, &'static str, &'static [(SloMetric, Option<f64>, f64)]);

    fn lat(ttft: Option<f64>, tpot: Option<f64>, itl_p99: Option<f64>, e2e: Option<f64>) -> RequestLatencies {
        RequestLatencies {
            ttft_ms: ttft,
            tpot_ms: tpot,
            itl_p99_ms: itl_p99,
            e2e_ms: e2e,
        }
    }

    #[test]
    fn parses_good_specs() {
        use SloMetric::*;
        let cases: &[GoodCase] = &[
            ("ttft=500ms", "ttft=500ms", &[(Ttft, None, 500.0)]),
            (
                "ttft=500ms,tpot=50ms,itl=100ms,e2e=20s",
                "ttft=500ms,tpot=50ms,itl=100ms,e2e=20s",
                &[
                    (Ttft, None, 500.0),
                    (Tpot, None, 50.0),
                    (Itl, None, 100.0),
                    (E2e, None, 20_000.0),
                ],
            ),
            (
                "ttft_p99=500ms,tpot_p90=40ms",
                "ttft_p99=500ms,tpot_p90=40ms",
                &[(Ttft, Some(99.0), 500.0), (Tpot, Some(90.0), 40.0)],
            ),
            (
                "ttft=1s,ttft_p99=500ms,e2e_p50=2.5s",
                "ttft=1s,ttft_p99=500ms,e2e_p50=2.5s",
                &[
                    (Ttft, None, 1000.0),
                    (Ttft, Some(99.0), 500.0),
                    (E2e, Some(50.0), 2500.0),
                ],
            ),
            (
                "  ttft = 500 ms ,\ttpot_p90=40ms  ",
                "ttft=500ms,tpot_p90=40ms",
                &[(Ttft, None, 500.0), (Tpot, Some(90.0), 40.0)],
            ),
            ("itl=250us", "itl=250us", &[(Itl, None, 0.25)]),
            ("itl=250µs", "itl=250us", &[(Itl, None, 0.25)]),
            ("itl=250μs", "itl=250us", &[(Itl, None, 0.25)]),
            ("tpot=12.5ms", "tpot=12.5ms", &[(Tpot, None, 12.5)]),
            ("e2e=0.5s", "e2e=0.5s", &[(E2e, None, 500.0)]),
            ("e2e=.5s", "e2e=.5s", &[(E2e, None, 500.0)]),
            ("TTFT_P99=500MS", "ttft_p99=500ms", &[(Ttft, Some(99.0), 500.0)]),
            ("ttft_p99.9=1s", "ttft_p99.9=1s", &[(Ttft, Some(99.9), 1000.0)]),
            ("ttft_p99.90=1s", "ttft_p99.9=1s", &[(Ttft, Some(99.9), 1000.0)]),
            ("itl_p99.99=80ms", "itl_p99.99=80ms", &[(Itl, Some(99.99), 80.0)]),
            ("e2e_p100=30s", "e2e_p100=30s", &[(E2e, Some(100.0), 30_000.0)]),
            ("ttft_p0.1=5ms", "ttft_p0.1=5ms", &[(Ttft, Some(0.1), 5.0)]),
            ("ttft_p099=5ms", "ttft_p99=5ms", &[(Ttft, Some(99.0), 5.0)]),
        ];
        for (input, spec, want) in cases {
            let slo: Slo = input.parse().unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(slo.spec, *spec, "{input:?}");
            let want: Vec<Objective> = want.iter().map(|&(m, p, l)| obj(m, p, l)).collect();
            assert_eq!(slo.objectives, want, "{input:?}");
            // The normalised spec parses to the same objectives.
            assert_eq!(Slo::parse(&slo.spec).unwrap(), slo, "{input:?}");
        }
    }

    #[test]
    fn per_request_and_percentiles_split() {
        let slo = Slo::parse("ttft=1s,ttft_p99=500ms,tpot=50ms,e2e_p90=20s").unwrap();
        let per: Vec<String> = slo.per_request().map(|o| o.name()).collect();
        let pct: Vec<String> = slo.percentiles().map(|o| o.name()).collect();
        assert_eq!(per, ["ttft", "tpot"]);
        assert_eq!(pct, ["ttft_p99", "e2e_p90"]);
        assert!(slo.has_per_request() && slo.has_percentiles());
        let only_pct = Slo::parse("ttft_p99=1s").unwrap();
        assert!(!only_pct.has_per_request() && only_pct.has_percentiles());
    }

    #[test]
    fn rejects_bad_specs() {
        // (input, text the message must contain: the offending item and what to write)
        let cases: &[(&str, &[&str])] = &[
            ("", &["no objectives", "ttft=500ms"]),
            ("   ", &["no objectives"]),
            ("ttft=500ms,,tpot=50ms", &["item 2", "ttft=500ms,,tpot=50ms", "is empty", "one comma"]),
            ("ttft=500ms,", &["item 2", "is empty"]),
            (",ttft=500ms", &["item 1", "is empty"]),
            ("ttft=500ms, ,tpot=5ms", &["item 2", "is empty"]),
            ("ttft=500ms,ttft=1s", &["`ttft` is given twice", "`ttft=500ms`", "`ttft=1s`", "keep one"]),
            ("ttft_p99=5ms,ttft_p99.0=6ms", &["`ttft_p99` is given twice", "`ttft_p99.0=6ms`"]),
            ("TTFT=5ms,ttft=6ms", &["given twice"]),
            (
                "ttfb=500ms",
                &["unknown metric `ttfb` in `ttfb=500ms`; use ttft, tpot, itl or e2e, optionally with _pNN like ttft_p99"],
            ),
            ("latency_p99=5ms", &["unknown metric `latency_p99`", "use ttft, tpot, itl or e2e"]),
            ("ttft", &["`ttft` has no value", "NAME=VALUE"]),
            ("ttft=", &["`ttft=` has no value", "ttft=500ms"]),
            ("=500ms", &["`=500ms` has no metric name", "NAME=VALUE"]),
            ("ttft=500ms=1", &["`ttft=500ms=1`", "more than one `=`"]),
            ("ttft=500", &["`ttft=500` has no unit", "write it with a unit, like 500ms or 2s"]),
            ("ttft=0.5", &["`ttft=0.5` has no unit", "write it with a unit"]),
            ("ttft=5m", &["unknown unit `m` in `ttft=5m`", "us (µs), ms or s"]),
            ("ttft=5 min", &["unknown unit `min`", "`ttft=5 min`"]),
            ("ttft=abc", &["`abc` in `ttft=abc` is not a time", "500ms"]),
            ("ttft=ms", &["`ms` in `ttft=ms` is not a time"]),
            ("ttft=1.2.3ms", &["bad number `1.2.3` in `ttft=1.2.3ms`", "500ms"]),
            ("ttft=.ms", &["bad number `.` in `ttft=.ms`"]),
            ("ttft=1e3ms", &["unknown unit `e3ms` in `ttft=1e3ms`"]),
            ("ttft=+5ms", &["`+5ms` in `ttft=+5ms` is not a time"]),
            ("ttft=0ms", &["`0ms` in `ttft=0ms` is zero", "above zero"]),
            ("ttft=0.000s", &["`0.000s` in `ttft=0.000s` is zero"]),
            ("ttft=-5ms", &["`-5ms` in `ttft=-5ms` is negative", "above zero"]),
            ("ttft=inf", &["`inf` in `ttft=inf` is not a finite time"]),
            ("ttft=infms", &["not a finite time"]),
            ("ttft=NaN ms", &["`NaN ms` in `ttft=NaN ms` is not a finite time"]),
            ("ttft=-inf", &["not a finite time"]),
            ("ttft_p0=5ms", &["bad percentile `p0` in `ttft_p0=5ms`", "ttft_p99"]),
            ("ttft_p101=5ms", &["bad percentile `p101` in `ttft_p101=5ms`", "at most 100"]),
            ("ttft_p100.1=5ms", &["bad percentile `p100.1`"]),
            ("ttft_p=5ms", &["bad percentile `p` in `ttft_p=5ms`"]),
            ("ttft_pabc=5ms", &["bad percentile `pabc`"]),
            ("ttft_p-5=5ms", &["bad percentile `p-5`"]),
            ("ttft_p9.9.9=5ms", &["bad percentile `p9.9.9`"]),
            ("ttft_pinf=5ms", &["bad percentile `pinf`"]),
            ("ttft_99=5ms", &["bad percentile suffix `_99` in `ttft_99=5ms`", "ttft_p99"]),
            ("e2e_latency=5s", &["bad percentile suffix `_latency`"]),
            ("ttft_p99_p90=5ms", &["bad percentile `p99_p90`"]),
        ];
        for (input, wants) in cases {
            let err = Slo::parse(input).expect_err(input);
            assert!(err.starts_with("`--slo`: "), "{input:?}: {err}");
            assert!(!err.contains('\n'), "{input:?}: {err}");
            for want in *wants {
                assert!(err.contains(want), "{input:?}: {err:?} lacks {want:?}");
            }
        }
    }

    #[test]
    fn errors_stay_one_line() {
        let err = Slo::parse("ttft=5ms,\nbad\n=1").unwrap_err();
        assert!(!err.contains('\n'), "{err}");
        let err = Slo::parse("tt\nft=5ms").unwrap_err();
        assert!(!err.contains('\n') && err.contains("tt\\nft"), "{err}");
    }

    #[test]
    fn never_panics() {
        // Cheap deterministic fuzzing over an alphabet that hits every branch, multi-byte too.
        let alphabet: Vec<char> = "tfpoilez2_P.=,0159-+ msuµμ\t\né∞".chars().collect();
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            let mut s = String::new();
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let len = (state >> 59) as usize;
            for _ in 0..len {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                s.push(alphabet[(state >> 33) as usize % alphabet.len()]);
            }
            if let Ok(slo) = Slo::parse(&s) {
                assert!(
                    slo.objectives
                        .iter()
                        .all(|o| o.limit_ms.is_finite() && o.limit_ms > 0.0),
                    "{s:?}"
                );
                assert_eq!(Slo::parse(&slo.spec).as_ref(), Ok(&slo), "{s:?}");
            }
        }
        let long = "9".repeat(400);
        assert!(Slo::parse(&format!("ttft={long}s")).unwrap_err().contains("too large"));
        assert!(Slo::parse(&format!("ttft_p{long}=1s"))
            .unwrap_err()
            .contains("bad percentile"));
    }

    #[test]
    fn huge_values_are_rejected_not_infinite() {
        let big = format!("1{}", "0".repeat(306)); // 1e306: finite, but ×1000 in ms is not
        let err = Slo::parse(&format!("e2e={big}s")).unwrap_err();
        assert!(err.contains("too large"), "{err}");
        assert!(Slo::parse(&format!("e2e={big}ms")).is_ok());
    }

    #[test]
    fn judges_requests() {
        let slo = Slo::parse("ttft=500ms,tpot=50ms,itl=100ms,e2e=20s,ttft_p99=100ms").unwrap();
        let cases: &[(&str, RequestLatencies, bool)] = &[
            (
                "all within",
                lat(Some(400.0), Some(40.0), Some(90.0), Some(10_000.0)),
                true,
            ),
            (
                "exactly at the limits",
                lat(Some(500.0), Some(50.0), Some(100.0), Some(20_000.0)),
                true,
            ),
            (
                "ttft over",
                lat(Some(500.1), Some(40.0), Some(90.0), Some(10_000.0)),
                false,
            ),
            (
                "tpot over",
                lat(Some(400.0), Some(51.0), Some(90.0), Some(10_000.0)),
                false,
            ),
            (
                "itl p99 over",
                lat(Some(400.0), Some(40.0), Some(150.0), Some(10_000.0)),
                false,
            ),
            (
                "e2e over",
                lat(Some(400.0), Some(40.0), Some(90.0), Some(20_001.0)),
                false,
            ),
            (
                "one-token answer: no tpot, no itl",
                lat(Some(400.0), None, None, Some(400.0)),
                true,
            ),
            ("nothing known", RequestLatencies::default(), true),
            ("NaN fails", lat(Some(f64::NAN), None, None, None), false),
            // Percentile objectives do not judge single requests: ttft 400 > p99 limit 100.
            ("percentile objective ignored", lat(Some(400.0), None, None, None), true),
        ];
        for (what, r, good) in cases {
            assert_eq!(slo.request_is_good(r), *good, "{what}");
        }
        // itl judges the request's p99 gap, not its mean or max: only itl_p99_ms is looked at.
        let itl = Slo::parse("itl=100ms").unwrap();
        assert!(itl.request_is_good(&lat(Some(10_000.0), Some(500.0), Some(99.0), Some(60_000.0))));
        assert!(!itl.request_is_good(&lat(Some(1.0), Some(1.0), Some(101.0), Some(2.0))));
        // No per-request thresholds: every request is good.
        let none = Slo::parse("ttft_p99=1ms").unwrap();
        assert!(none.request_is_good(&lat(Some(1e9), Some(1e9), Some(1e9), Some(1e9))));
    }

    #[test]
    fn judges_percentiles() {
        let slo = Slo::parse("ttft=1s,ttft_p99=500ms,tpot_p90=40ms,e2e_p99.9=20s").unwrap();
        let values = |ttft: Option<f64>, tpot: Option<f64>, e2e: Option<f64>| {
            move |m: SloMetric, p: f64| match (m, p) {
                (SloMetric::Ttft, 99.0) => ttft,
                (SloMetric::Tpot, 90.0) => tpot,
                (SloMetric::E2e, 99.9) => e2e,
                _ => panic!("unexpected lookup {m:?} p{p}"),
            }
        };

        let v = slo.judge_percentiles(values(Some(480.0), Some(40.0), Some(19_000.0)));
        assert!(v.pass);
        assert_eq!(v.checks.len(), 3);
        assert!(v.checks.iter().all(|c| c.pass));
        assert_eq!(v.worst(), None);
        assert_eq!(v.failed().count(), 0);

        // ttft 1,240/500 = 2.48× over, tpot 60/40 = 1.5× over: ttft is the limiting metric.
        let v = slo.judge_percentiles(values(Some(1240.0), Some(60.0), Some(19_000.0)));
        assert!(!v.pass);
        assert_eq!(
            v.checks.iter().map(|c| c.pass).collect::<Vec<_>>(),
            [false, false, true]
        );
        let worst = v.worst().unwrap();
        assert_eq!(worst.objective.name(), "ttft_p99");
        assert_eq!(worst.actual_ms, Some(1240.0));
        assert_eq!(worst.describe(), "ttft p99 1,240 ms (limit 500 ms)");
        assert_eq!(v.failed().count(), 2);

        // tpot further over than ttft now.
        let v = slo.judge_percentiles(values(Some(600.0), Some(400.0), Some(19_000.0)));
        assert_eq!(v.worst().unwrap().objective.name(), "tpot_p90");

        // No data fails, and ranks after a failure with a value.
        let v = slo.judge_percentiles(values(Some(480.0), None, Some(19_000.0)));
        assert!(!v.pass);
        assert_eq!(v.checks[1].actual_ms, None);
        assert!(!v.checks[1].pass);
        assert_eq!(v.worst().unwrap().objective.name(), "tpot_p90");
        assert_eq!(v.worst().unwrap().describe(), "tpot p90 no data (limit 40 ms)");
        let v = slo.judge_percentiles(values(Some(501.0), None, Some(19_000.0)));
        assert_eq!(v.worst().unwrap().objective.name(), "ttft_p99");

        // NaN fails.
        let v = slo.judge_percentiles(values(Some(f64::NAN), Some(1.0), Some(1.0)));
        assert!(!v.pass);

        // No percentile objectives: the step passes, with no checks.
        let v = Slo::parse("ttft=1s").unwrap().judge_percentiles(|_, _| None);
        assert!(v.pass && v.checks.is_empty() && v.worst().is_none());
    }

    #[test]
    fn counts_goodput() {
        let slo = Slo::parse("ttft=500ms,tpot=50ms").unwrap();
        let good = lat(Some(300.0), Some(30.0), None, Some(3000.0));
        let slow = lat(Some(900.0), Some(30.0), None, Some(3000.0));
        // (ok, latencies, output tokens)
        let requests: &[(bool, RequestLatencies, u64)] = &[
            (true, good, 100),
            (true, good, 200),
            (true, good, 50),
            (true, good, 10),
            (true, good, 40),
            (true, lat(Some(100.0), None, None, Some(100.0)), 1), // one token: no tpot, good
            (true, good, 99),
            (true, slow, 1000), // too slow
            (false, good, 500), // failed: never good
            (false, RequestLatencies::default(), 0),
        ];
        let mut c = GoodputCounter::default();
        assert_eq!(c.attainment_pct(), None);
        for (ok, r, tokens) in requests {
            c.add(&slo, *ok, r, *tokens);
        }
        assert_eq!(c.total(), 10);
        assert_eq!(c.good(), 7);
        assert_eq!(c.good_output_tokens(), 100 + 200 + 50 + 10 + 40 + 1 + 99);
        assert!((c.attainment_pct().unwrap() - 70.0).abs() < 1e-9);
        assert!((c.goodput_rps(2.0).unwrap() - 3.5).abs() < 1e-9);
        assert!((c.good_output_tps(2.0).unwrap() - 250.0).abs() < 1e-9);
        assert_eq!(c.goodput_rps(0.0), None);
        assert_eq!(c.good_output_tps(f64::NAN), None);

        let mut merged = GoodputCounter::default();
        merged.merge(&c);
        merged.merge(&c);
        assert_eq!(
            (merged.good(), merged.total(), merged.good_output_tokens()),
            (14, 20, 1000)
        );
        assert!((merged.attainment_pct().unwrap() - 70.0).abs() < 1e-9);
    }

    #[test]
    fn describes() {
        let cases: &[(&str, &str)] = &[
            ("ttft_p99=500ms,tpot=50ms", "ttft p99 ≤ 500 ms and tpot ≤ 50 ms"),
            ("ttft=500ms", "ttft ≤ 500 ms"),
            (
                "ttft=500ms,tpot=50ms,itl=100ms,e2e=20s",
                "ttft ≤ 500 ms, tpot ≤ 50 ms, itl ≤ 100 ms and e2e ≤ 20 s",
            ),
            (
                "itl_p99.9=250us,e2e_p50=1.5s",
                "itl p99.9 ≤ 0.25 ms and e2e p50 ≤ 1,500 ms",
            ),
        ];
        for (spec, want) in cases {
            assert_eq!(Slo::parse(spec).unwrap().describe(), *want, "{spec}");
        }
    }

    #[test]
    fn formats_ms() {
        let cases: &[(f64, &str)] = &[
            (500.0, "500 ms"),
            (1240.0, "1,240 ms"),
            (1240.4, "1,240 ms"),
            (12.5, "12.5 ms"),
            (12.0, "12 ms"),
            (12.04, "12 ms"),
            (99.96, "100 ms"),
            (3.456, "3.46 ms"),
            (0.25, "0.25 ms"),
            (0.0004, "0 ms"),
            (0.0, "0 ms"),
            (9999.4, "9,999 ms"),
            (9999.6, "10 s"),
            (10_000.0, "10 s"),
            (20_000.0, "20 s"),
            (12_345.0, "12.3 s"),
            (12_960.0, "13 s"),
            (1_234_567_000.0, "1,234,567 s"),
            (-1240.0, "-1,240 ms"),
            (-0.0001, "0 ms"),
            (f64::INFINITY, "inf ms"),
        ];
        for (ms, want) in cases {
            assert_eq!(fmt_ms(*ms), *want, "{ms}");
        }
        assert_eq!(fmt_ms(f64::NAN), "NaN ms");
    }

    #[test]
    fn names_labels_and_display() {
        let slo = Slo::parse("ttft_p99.9=1s, E2E = 2s").unwrap();
        assert_eq!(slo.to_string(), "ttft_p99.9=1s,e2e=2s");
        assert_eq!(slo.objectives[0].label(), "ttft p99.9");
        assert_eq!(slo.objectives[1].label(), "e2e");
        assert!(slo.objectives[1].is_per_request());
        assert_eq!(SloMetric::Itl.to_string(), "itl");
        assert_eq!(SloMetric::ALL.map(|m| m.name()), ["ttft", "tpot", "itl", "e2e"]);
    }

    #[test]
    fn serialises() {
        let slo = Slo::parse("ttft=500ms,tpot_p90=40ms").unwrap();
        let json = serde_json::to_value(&slo).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "spec": "ttft=500ms,tpot_p90=40ms",
                "objectives": [
                    {"metric": "ttft", "percentile": null, "limit_ms": 500.0},
                    {"metric": "tpot", "percentile": 90.0, "limit_ms": 40.0},
                ],
            })
        );
        let back: Slo = serde_json::from_value(json).unwrap();
        assert_eq!(back, slo);
        let v = slo.judge_percentiles(|_, _| Some(50.0));
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json["pass"], false);
        assert_eq!(json["checks"][0]["actual_ms"], 50.0);
        assert_eq!(json["checks"][0]["objective"]["metric"], "tpot");
    }

    #[test]
    fn help_states_the_grammar() {
        for want in [
            "NAME=VALUE",
            "ttft",
            "tpot",
            "itl",
            "e2e",
            "_pNN",
            "p99.9",
            "ms",
            "µs",
            "per-request",
        ] {
            assert!(SLO_HELP.contains(want), "{want}");
        }
    }
}
