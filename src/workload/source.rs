//! Prompt sources: *what* each request asks. A source turns a prompt number into a
//! [`PromptSpec`]; [`super::Workload`] turns that into a body. Kinds: the seed's filler text
//! (`-pp` characters), token-exact synthetic prompts (`--isl`/`--osl`, optionally in shared-prefix
//! groups), and dataset rows (ShareGPT, JSONL, Mooncake traces).

use super::dataset::{ChatMessage, Dataset, DatasetRow, RowPrompt};
use super::tokens::{LengthDist, TokenText};
use super::{prompt, TestKind};
use std::sync::Arc;

/// Prompt numbers from here up are the pre-flight probe's (`u64::MAX`, and for an embeddings
/// batch the numbers next to it), not requests of the load.
pub const PROBE_KEYS: u64 = u64::MAX / 2;

/// One request's content before it becomes JSON.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PromptSpec {
    /// A system message first (a prefix group's shared prefix).
    pub system: Option<Arc<str>>,
    /// Earlier messages sent as given (a dataset's `messages`, a session's history).
    pub history: Vec<ChatMessage>,
    /// The user message (chat) or the prompt (completions).
    pub text: String,
    /// Image data URLs or URLs sent as `image_url` parts of the user message.
    pub images: Vec<Arc<str>>,
    /// Prompt tokens asked for (token-exact prompts, traces), as the server should count them.
    pub requested_isl: Option<u64>,
    /// `max_tokens` for this request, when the source decides it.
    pub max_tokens: Option<u64>,
    /// The dataset row it came from.
    pub row: Option<u64>,
    /// The shared-prefix group it belongs to.
    pub group: Option<u32>,
    /// The first prompt of its group (numbers below the group count).
    pub group_first: bool,
}

/// Where prompts come from.
pub trait PromptSource: Send + Sync {
    /// Prompt number `seq` of `test`. Called off the measured path, any number of times.
    fn prompt(&self, test: TestKind, seq: u64) -> PromptSpec;
    /// What it sends, for the run header.
    fn describe(&self) -> String;
    /// Said once the run is over (a dataset that had to be cycled).
    fn closing_note(&self) -> Option<String> {
        None
    }
    /// Prompt `seq` is the step's request `seq` in schedule order (a trace replay), not the
    /// run-wide request id.
    fn keyed_by_schedule(&self) -> bool {
        false
    }
}

/// The seed's prompts: `chars` characters of filler text, or the multimodal test's text.
pub struct Filler {
    pub chars: usize,
    pub same_prompt: bool,
    pub multimodal_text: String,
}

impl PromptSource for Filler {
    fn prompt(&self, test: TestKind, seq: u64) -> PromptSpec {
        let unique = (!self.same_prompt).then_some(seq);
        let text = match test {
            TestKind::Multimodal => prompt::with_prefix(&self.multimodal_text, unique),
            _ => prompt::filler(self.chars, unique),
        };
        PromptSpec {
            text,
            ..PromptSpec::default()
        }
    }

    fn describe(&self) -> String {
        crate::i18n::tr(crate::i18n::Msg::SourceFiller, &[("chars", &self.chars)])
    }
}

/// Shared-prefix groups: `groups` system prompts of `tokens` tokens each.
pub struct PrefixGroups {
    pub prefixes: Vec<Arc<str>>,
    pub tokens: u64,
}

impl PrefixGroups {
    pub fn new(text: &TokenText, groups: u32, tokens: u64, seed: u64) -> Self {
        let prefixes = (0..groups)
            .map(|g| Arc::from(text.text(tokens, Some(u64::from(g)), seed ^ 0x7072_6566 ^ u64::from(g))))
            .collect();
        Self { prefixes, tokens }
    }
}

/// Token-exact prompts: lengths from `isl`, `max_tokens` from `osl`.
pub struct TokenExact {
    pub text: Arc<TokenText>,
    pub isl: LengthDist,
    pub osl: Option<LengthDist>,
    pub seed: u64,
    pub same_prompt: bool,
    pub prefix: Option<PrefixGroups>,
    pub multimodal_text: String,
}

impl PromptSource for TokenExact {
    fn prompt(&self, test: TestKind, seq: u64) -> PromptSpec {
        let key = if self.same_prompt { 0 } else { seq };
        if test == TestKind::Multimodal {
            // The image's tokens are the server's to count: the text is the seed's.
            let unique = (!self.same_prompt).then_some(seq);
            return PromptSpec {
                text: prompt::with_prefix(&self.multimodal_text, unique),
                max_tokens: self.osl.map(|d| d.sample_output(self.seed, key)),
                ..PromptSpec::default()
            };
        }
        let isl = self.isl.sample(self.seed, key);
        let unique = (!self.same_prompt).then_some(seq);
        let (system, group, prefix_tokens) = match &self.prefix {
            Some(p) if !p.prefixes.is_empty() => {
                let g = (seq % p.prefixes.len() as u64) as usize;
                (Some(p.prefixes[g].clone()), Some(g as u32), p.tokens)
            }
            _ => (None, None, 0),
        };
        let words = self.text.text_tokens_for(isl, system.is_some());
        let text = self
            .text
            .text(words, unique, self.seed ^ key.wrapping_mul(0x2545_F491_4F6C_DD1D));
        PromptSpec {
            system,
            text,
            requested_isl: Some(isl + prefix_tokens),
            max_tokens: match test {
                TestKind::Input => None,
                _ => self.osl.map(|d| d.sample_output(self.seed, key)),
            },
            group,
            group_first: group.is_some() && seq < self.prefix.as_ref().map_or(0, |p| p.prefixes.len() as u64),
            ..PromptSpec::default()
        }
    }

    fn describe(&self) -> String {
        use crate::i18n::{tr, Msg};
        let mut out = tr(Msg::SourceIsl, &[("isl", &self.isl.describe())]);
        if let Some(osl) = &self.osl {
            out.push_str(&format!(", OSL {}", osl.describe()));
        }
        if let Some(p) = &self.prefix {
            out.push_str(&tr(
                Msg::SourcePrefixes,
                &[("n", &p.prefixes.len()), ("tokens", &p.tokens)],
            ));
        }
        out.push_str(&format!(" ({})", self.text.method.describe()));
        out
    }
}

/// Dataset rows in the order they are sent.
pub struct DatasetSource {
    pub dataset: Dataset,
    /// Row indexes into `dataset.rows`, in sending order (shuffled or not); cycled.
    pub order: Vec<usize>,
    pub text: Arc<TokenText>,
    /// `max_tokens` when the row has no output length.
    pub default_max_tokens: u64,
    /// Image parts resolved per row (data URLs), by position in `dataset.rows`.
    pub images: Vec<Vec<Arc<str>>>,
    /// `--osl` over the rows' own output lengths.
    pub osl: Option<LengthDist>,
    pub seed: u64,
    /// The rows are replayed at their timestamps: prompt k is row `order[k]`, sent at its time.
    pub replay: bool,
    /// `--shuffle`: the order is a seeded permutation.
    pub shuffled: bool,
    /// Prompts asked for so far (the highest number + 1): above `order.len()` the rows cycled.
    pub asked: std::sync::atomic::AtomicU64,
}

impl DatasetSource {
    pub fn row_for(&self, seq: u64) -> (&DatasetRow, usize) {
        if seq < PROBE_KEYS {
            self.asked.fetch_max(seq + 1, std::sync::atomic::Ordering::Relaxed);
        }
        let index = self.order[(seq % self.order.len() as u64) as usize];
        (&self.dataset.rows[index], index)
    }

    /// A Mooncake row's prompt: its blocks in order, the last cut so the whole prompt is
    /// `input_length` tokens as the server counts them.
    fn blocks(&self, input_length: u64, hash_ids: &[u64]) -> String {
        let words = self.text.text_tokens_for(input_length, false);
        let mut out = String::with_capacity(words as usize * 7);
        let mut left = words;
        for &id in hash_ids {
            let n = left.min(super::dataset::MOONCAKE_BLOCK);
            self.text.push_block(&mut out, id, n);
            left -= n;
        }
        out
    }
}

impl PromptSource for DatasetSource {
    fn prompt(&self, test: TestKind, seq: u64) -> PromptSpec {
        let (row, index) = self.row_for(seq);
        let mut spec = PromptSpec {
            row: Some(row.row),
            images: self.images.get(index).cloned().unwrap_or_default(),
            max_tokens: match (test, self.osl) {
                (TestKind::Input, _) => None,
                (_, Some(osl)) => Some(osl.sample_output(self.seed, seq)),
                _ => Some(row.output_tokens.unwrap_or(self.default_max_tokens)),
            },
            ..PromptSpec::default()
        };
        match &row.prompt {
            RowPrompt::Text(text) => spec.text = text.clone(),
            RowPrompt::Messages(messages) => {
                // The last user message is the prompt; what came before is history, and what came
                // after (a reference answer) is not sent.
                match messages.iter().rposition(|m| m.role == "user") {
                    Some(split) => {
                        spec.history = messages[..split].to_vec();
                        spec.text = messages[split].content.clone();
                    }
                    None => spec.history = messages.clone(),
                }
            }
            RowPrompt::Blocks { input_length, hash_ids } => {
                spec.text = self.blocks(*input_length, hash_ids);
                spec.requested_isl = Some(*input_length);
            }
        }
        spec
    }

    fn describe(&self) -> String {
        let d = &self.dataset;
        use crate::i18n::{tr, Msg};
        let order = tr(
            if self.replay {
                Msg::OrderTimestamp
            } else if self.shuffled {
                Msg::OrderShuffled
            } else {
                Msg::OrderFile
            },
            &[],
        );
        tr(
            Msg::SourceDataset,
            &[
                ("rows", &d.rows.len()),
                ("format", &d.format.name()),
                ("sent", &self.order.len()),
                ("order", &order),
            ],
        )
    }

    fn keyed_by_schedule(&self) -> bool {
        self.replay
    }

    fn closing_note(&self) -> Option<String> {
        let asked = self.asked.load(std::sync::atomic::Ordering::Relaxed);
        let rows = self.order.len() as u64;
        (asked > rows).then(|| {
            crate::i18n::tr(
                crate::i18n::Msg::DatasetCycled,
                &[
                    ("asked", &asked),
                    ("rows", &rows),
                    ("times", &format!("{:.1}", asked as f64 / rows as f64)),
                ],
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(prefix: Option<(u32, u64)>) -> TokenExact {
        let text = Arc::new(TokenText::from_words(
            super::super::tokens::candidates(),
            5,
            super::super::tokens::LengthMethod::Usage,
        ));
        TokenExact {
            prefix: prefix.map(|(g, p)| PrefixGroups::new(&text, g, p, 1)),
            text,
            isl: LengthDist::fixed(40),
            osl: Some(LengthDist::fixed(9)),
            seed: 1,
            same_prompt: false,
            multimodal_text: "Describe".into(),
        }
    }

    fn words(s: &str) -> usize {
        s.split(' ').filter(|w| !w.is_empty()).count()
    }

    #[test]
    fn token_exact_prompts_leave_room_for_the_overhead() {
        let source = exact(None);
        let spec = source.prompt(TestKind::Output, 3);
        assert_eq!(words(&spec.text), 35);
        assert_eq!(spec.requested_isl, Some(40));
        assert_eq!(spec.max_tokens, Some(9));
        assert_eq!(source.prompt(TestKind::Input, 3).max_tokens, None);
        assert_ne!(source.prompt(TestKind::Output, 4).text, spec.text);
    }

    #[test]
    fn prefix_groups_share_a_system_prompt() {
        let source = exact(Some((3, 20)));
        let specs: Vec<PromptSpec> = (0..6).map(|i| source.prompt(TestKind::Output, i)).collect();
        assert_eq!(specs[0].system, specs[3].system);
        assert_ne!(specs[0].system, specs[1].system);
        assert_eq!(words(specs[0].system.as_deref().unwrap()), 20);
        assert_eq!(specs[0].group, Some(0));
        assert_eq!(specs[4].group, Some(1));
        assert_eq!(specs[0].requested_isl, Some(60));
        assert_ne!(specs[0].text, specs[3].text, "suffixes stay unique");
    }
}
