//! Proof of the lengths: prompt and output tokens asked for against what the server counted
//! (`usage`), per step (docs/metrics.md, "ISL and OSL").

use crate::i18n::{tr, Msg};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Share of requests beyond which an average mismatch is worth a warning line.
pub const WARN_PCT: f64 = 2.0;

/// Asked vs counted lengths of one kind (ISL or OSL) over a step's successful requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LengthCheck {
    /// Requests compared: successful, with a requested length and the server's own count.
    pub requests: u64,
    pub requested_mean: f64,
    pub mean: f64,
    pub min: u64,
    pub max: u64,
    /// Share of requests whose count is within ±1 token of what was asked.
    pub within_1_token_pct: f64,
    /// Share within ±2% of what was asked.
    pub within_2_percent_pct: f64,
    /// How the server said the outputs ended (OSL only): `length`, `stop`, …
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub finish_reasons: BTreeMap<String, u64>,
}

impl LengthCheck {
    /// (mean − requested) / requested, in percent.
    pub fn deviation_pct(&self) -> f64 {
        if self.requested_mean <= 0.0 {
            return 0.0;
        }
        (self.mean - self.requested_mean) / self.requested_mean * 100.0
    }
}

/// Running sums for a [`LengthCheck`].
#[derive(Debug, Clone, Default)]
pub struct LengthTally {
    n: u64,
    requested: u64,
    actual: u64,
    min: Option<u64>,
    max: u64,
    within_1: u64,
    within_2pct: u64,
    finish: BTreeMap<String, u64>,
}

impl LengthTally {
    pub fn add(&mut self, requested: u64, actual: u64) {
        self.n += 1;
        self.requested = self.requested.saturating_add(requested);
        self.actual = self.actual.saturating_add(actual);
        self.min = Some(self.min.map_or(actual, |m| m.min(actual)));
        self.max = self.max.max(actual);
        let diff = actual.abs_diff(requested);
        if diff <= 1 {
            self.within_1 += 1;
        }
        if diff as f64 <= requested as f64 * WARN_PCT / 100.0 {
            self.within_2pct += 1;
        }
    }

    pub fn add_finish(&mut self, reason: Option<&str>) {
        let raw = reason.unwrap_or("none");
        if let Some(n) = self.finish.get_mut(raw) {
            // The usual case, a reason seen before: no allocation.
            *n += 1;
            return;
        }
        // The reason is the server's text: keep a bounded set of short, clean keys.
        let key: String = reason
            .unwrap_or("none")
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(24)
            .collect();
        if self.finish.contains_key(&key) || self.finish.len() < 8 {
            *self.finish.entry(key).or_default() += 1;
        }
    }

    pub fn check(&self) -> Option<LengthCheck> {
        (self.n > 0).then(|| {
            let n = self.n as f64;
            LengthCheck {
                requests: self.n,
                requested_mean: self.requested as f64 / n,
                mean: self.actual as f64 / n,
                min: self.min.unwrap_or(0),
                max: self.max,
                within_1_token_pct: self.within_1 as f64 / n * 100.0,
                within_2_percent_pct: self.within_2pct as f64 / n * 100.0,
                finish_reasons: self.finish.clone(),
            }
        })
    }
}

/// The proof line of one kind, as shown per step:
/// `ISL asked 256, got 256.0 (255–257): 98% within ±1 token, 100% within ±2%`.
pub fn proof_line(kind: &str, c: &LengthCheck) -> String {
    tr(
        Msg::LengthProof,
        &[
            ("kind", &kind),
            ("asked", &trim(c.requested_mean)),
            ("mean", &format!("{:.1}", c.mean)),
            ("min", &c.min),
            ("max", &c.max),
            ("within_1", &format!("{:.0}", c.within_1_token_pct)),
            ("within_2", &format!("{:.0}", c.within_2_percent_pct)),
            ("n", &c.requests),
        ],
    )
}

fn trim(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

/// The warning when the prompts' counts are off by more than 2% on average.
pub fn isl_warning(c: &LengthCheck) -> Option<String> {
    let dev = c.deviation_pct();
    if dev.abs() <= WARN_PCT {
        return None;
    }
    let why = tr(
        if dev > 0.0 {
            Msg::IslMoreTokens
        } else {
            Msg::IslFewerTokens
        },
        &[],
    );
    Some(tr(
        Msg::IslWarning,
        &[
            ("mean", &format!("{:.1}", c.mean)),
            ("asked", &trim(c.requested_mean)),
            ("dev", &format!("{dev:+.1}")),
            ("why", &why),
        ],
    ))
}

/// The warning when outputs are off by more than 2% on average, with the likely cause from
/// the finish reasons.
pub fn osl_warning(c: &LengthCheck, ignore_eos: bool) -> Option<String> {
    let dev = c.deviation_pct();
    if dev.abs() <= WARN_PCT {
        return None;
    }
    let stops = c.finish_reasons.get("stop").copied().unwrap_or(0);
    let lengths = c.finish_reasons.get("length").copied().unwrap_or(0);
    let why = if dev > 0.0 {
        tr(Msg::OslMoreThanMax, &[])
    } else if stops >= lengths && stops > 0 {
        match ignore_eos {
            false => tr(
                Msg::OslStoppedAtEos,
                &[("pct", &format!("{:.0}", stops as f64 / c.requests as f64 * 100.0))],
            ),
            true => tr(Msg::OslIgnoresIgnoreEos, &[]),
        }
    } else if lengths > 0 {
        tr(Msg::OslCapped, &[])
    } else {
        tr(Msg::OslNoReason, &[])
    };
    Some(tr(
        Msg::OslWarning,
        &[
            ("mean", &format!("{:.1}", c.mean)),
            ("asked", &trim(c.requested_mean)),
            ("dev", &format!("{dev:+.1}")),
            ("why", &why),
        ],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(pairs: &[(u64, u64)], finish: &[&str]) -> LengthCheck {
        let mut t = LengthTally::default();
        for &(r, a) in pairs {
            t.add(r, a);
        }
        for f in finish {
            t.add_finish(Some(f));
        }
        t.check().unwrap()
    }

    #[test]
    fn shares_within_one_token_and_two_percent() {
        let c = tally(&[(256, 256), (256, 257), (256, 255), (256, 260), (256, 300)], &[]);
        assert_eq!(c.requests, 5);
        assert_eq!((c.min, c.max), (255, 300));
        assert_eq!(c.within_1_token_pct, 60.0);
        assert_eq!(c.within_2_percent_pct, 80.0); // 260 is within 5.12 tokens
        assert!((c.mean - 265.6).abs() < 1e-9);
        assert!(LengthTally::default().check().is_none());
    }

    #[test]
    fn warnings_name_the_cause() {
        type Case<'a> = (&'a [(u64, u64)], &'a [&'a str], bool, Option<&'a str>);
        let cases: [Case; 6] = [
            (&[(64, 64), (64, 64)], &["length", "length"], false, None),
            (
                &[(64, 30), (64, 40)],
                &["stop", "stop"],
                false,
                Some("add --ignore-eos"),
            ),
            (
                &[(64, 30), (64, 40)],
                &["stop", "stop"],
                true,
                Some("ignores ignore_eos"),
            ),
            (
                &[(64, 32), (64, 32)],
                &["length", "length"],
                false,
                Some("capped max_tokens"),
            ),
            (&[(64, 32)], &[], false, Some("did not say why")),
            (&[(64, 80)], &["length"], false, Some("more than max_tokens")),
        ];
        for (pairs, finish, ignore_eos, expected) in cases {
            let c = tally(pairs, finish);
            let w = osl_warning(&c, ignore_eos);
            match expected {
                None => assert_eq!(w, None),
                Some(text) => assert!(w.as_deref().unwrap_or("").contains(text), "{w:?} lacks {text}"),
            }
        }
        assert!(isl_warning(&tally(&[(256, 256)], &[])).is_none());
        assert!(isl_warning(&tally(&[(256, 280)], &[])).unwrap().contains("adds more"));
        assert!(isl_warning(&tally(&[(256, 200)], &[])).unwrap().contains("fewer"));
    }

    #[test]
    fn finish_reasons_stay_bounded_and_clean() {
        let mut t = LengthTally::default();
        t.add(1, 1);
        for i in 0..50 {
            t.add_finish(Some(&format!("r{i}<script>\n")));
        }
        let c = t.check().unwrap();
        assert!(c.finish_reasons.len() <= 9);
        assert!(c.finish_reasons.keys().all(|k| !k.contains('\n')));
    }

    #[test]
    fn proof_line_reads_plainly() {
        let c = tally(&[(256, 256), (256, 257)], &[]);
        assert_eq!(
            proof_line("ISL", &c),
            "ISL asked 256, got 256.5 (256–257): 100% within ±1 token, 100% within ±2% (2 requests)"
        );
    }
}
