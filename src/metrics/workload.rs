//! Figures about the workload's shape: per-turn latency and prompt growth of multi-turn
//! sessions, and prefix-cache reuse of shared-prefix groups (docs/metrics.md, "Sessions" and
//! "Shared prefixes").

use super::dist::{Dist, LatencyHistogram};
use crate::client::RequestRecord;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Turns beyond this are counted with the last one (a bounded table).
const MAX_TURNS: u32 = 64;

/// One turn of the sessions of a step.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TurnStats {
    /// 1-based.
    pub turn: u32,
    pub requests: u64,
    pub ttft_ms: Option<Dist>,
    /// Mean prompt tokens as the server counted them: the history grows turn by turn.
    pub prompt_tokens_mean: f64,
}

#[derive(Debug, Clone, Default)]
struct TurnTally {
    ttft: LatencyHistogram,
    requests: u64,
    prompt_tokens: u64,
}

/// Shared-prefix groups: the first request of each group (a cold cache) against the later ones.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PrefixCacheStats {
    pub first_requests: u64,
    pub later_requests: u64,
    pub ttft_first_ms: Option<Dist>,
    pub ttft_later_ms: Option<Dist>,
    /// Prompt tokens the server said it reused from its cache, over the later requests'
    /// prompt tokens (percent); `None` when the server does not say.
    pub cached_pct_later: Option<f64>,
    /// Where the reuse figure comes from: `usage.prompt_tokens_details.cached_tokens` or
    /// llama.cpp's `timings.prompt_n`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_from: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct WorkloadTally {
    turns: BTreeMap<u32, TurnTally>,
    first: LatencyHistogram,
    later: LatencyHistogram,
    first_n: u64,
    later_n: u64,
    later_prompt: u64,
    later_cached: u64,
    later_told: u64,
    cached_from: Option<&'static str>,
}

impl WorkloadTally {
    /// A successful request.
    pub fn add(&mut self, rec: &RequestRecord) {
        if let Some(turn) = rec.turn {
            let t = self.turns.entry(turn.min(MAX_TURNS - 1)).or_default();
            t.requests += 1;
            t.prompt_tokens = t.prompt_tokens.saturating_add(rec.prompt_tokens);
            if let Some(ttft) = rec.ttft_us() {
                t.ttft.record_us(ttft);
            }
        }
        if rec.prefix_group.is_some() {
            let (hist, n) = match rec.prefix_first {
                true => (&mut self.first, &mut self.first_n),
                false => (&mut self.later, &mut self.later_n),
            };
            *n += 1;
            if let Some(ttft) = rec.ttft_us() {
                hist.record_us(ttft);
            }
            if !rec.prefix_first {
                self.later_prompt = self.later_prompt.saturating_add(rec.prompt_tokens);
                if let Some((cached, from)) = rec.cached_prompt_tokens() {
                    self.later_cached = self.later_cached.saturating_add(cached);
                    self.later_told += 1;
                    self.cached_from = Some(from);
                }
            }
        }
    }

    pub fn turns(&self) -> Vec<TurnStats> {
        self.turns
            .iter()
            .map(|(&turn, t)| TurnStats {
                turn: turn + 1,
                requests: t.requests,
                ttft_ms: t.ttft.dist_ms(),
                prompt_tokens_mean: t.prompt_tokens as f64 / t.requests.max(1) as f64,
            })
            .collect()
    }

    pub fn prefix_cache(&self) -> Option<PrefixCacheStats> {
        (self.first_n + self.later_n > 0).then(|| PrefixCacheStats {
            first_requests: self.first_n,
            later_requests: self.later_n,
            ttft_first_ms: self.first.dist_ms(),
            ttft_later_ms: self.later.dist_ms(),
            cached_pct_later: (self.later_told > 0 && self.later_prompt > 0)
                .then(|| self.later_cached as f64 / self.later_prompt as f64 * 100.0),
            cached_from: self.cached_from.map(str::to_string),
        })
    }
}

/// The sentence about prefix reuse, for the step lines and the recommendations.
pub fn prefix_sentence(p: &PrefixCacheStats, prefix_tokens: Option<u64>) -> Option<String> {
    let first = p.ttft_first_ms.map(|d| d.mean)?;
    let later = p.ttft_later_ms.map(|d| d.mean)?;
    use crate::i18n::{tr, Msg};
    let shared = prefix_tokens
        .map(|n| tr(Msg::PrefixShared, &[("n", &n)]))
        .unwrap_or_default();
    let (later, first) = (format!("{later:.1}"), format!("{first:.1}"));
    Some(match p.cached_pct_later {
        Some(pct) if pct < 1.0 => tr(
            Msg::PrefixNoReuse,
            &[("shared", &shared), ("later", &later), ("first", &first)],
        ),
        Some(pct) => tr(
            Msg::PrefixReused,
            &[("pct", &format!("{pct:.0}")), ("later", &later), ("first", &first)],
        ),
        None => tr(Msg::PrefixUnknown, &[("later", &later), ("first", &first)]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(
        turn: Option<u32>,
        group: Option<(u32, bool)>,
        ttft_ms: u64,
        prompt: u64,
        cached: Option<u64>,
    ) -> RequestRecord {
        RequestRecord {
            ok: true,
            turn,
            prefix_group: group.map(|g| g.0),
            prefix_first: group.is_some_and(|g| g.1),
            first_token_us: Some(ttft_ms * 1000),
            prompt_tokens: prompt,
            cached_tokens: cached,
            ..RequestRecord::default()
        }
    }

    #[test]
    fn turns_show_growing_prompts() {
        let mut t = WorkloadTally::default();
        for turn in 0..3 {
            t.add(&rec(
                Some(turn),
                None,
                10 + u64::from(turn),
                100 * (u64::from(turn) + 1),
                None,
            ));
        }
        let turns = t.turns();
        assert_eq!(turns.len(), 3);
        assert_eq!(turns[2].turn, 3);
        assert_eq!(turns[2].prompt_tokens_mean, 300.0);
        assert!(t.prefix_cache().is_none());
    }

    #[test]
    fn prefix_groups_compare_first_and_later() {
        let mut t = WorkloadTally::default();
        t.add(&rec(None, Some((0, true)), 80, 600, Some(0)));
        t.add(&rec(None, Some((0, false)), 20, 600, Some(512)));
        t.add(&rec(None, Some((0, false)), 20, 600, Some(512)));
        let p = t.prefix_cache().unwrap();
        assert_eq!((p.first_requests, p.later_requests), (1, 2));
        assert!((p.cached_pct_later.unwrap() - 85.33).abs() < 0.01);
        let s = prefix_sentence(&p, Some(512)).unwrap();
        assert!(s.contains("reused 85%"), "{s}");
        let mut cold = WorkloadTally::default();
        cold.add(&rec(None, Some((0, true)), 80, 600, Some(0)));
        cold.add(&rec(None, Some((0, false)), 80, 600, Some(0)));
        let s = prefix_sentence(&cold.prefix_cache().unwrap(), Some(512)).unwrap();
        assert!(s.contains("Is prefix caching enabled"), "{s}");
    }
}
