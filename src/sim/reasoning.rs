//! `--reasoning-tokens N`: a reasoning model. The first N generated tokens of each chat answer
//! stream as `delta.reasoning_content`, the rest as `delta.content`, and usage says
//! `completion_tokens_details.reasoning_tokens`. Chunks are whole: with several tokens per
//! chunk, a chunk that starts inside the first N tokens is all reasoning.

/// How much of each chat answer is reasoning.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Reasoning {
    pub tokens: u64,
}

/// The delta field that carries reasoning text (vLLM's and DeepSeek's name).
pub(crate) const REASONING_FIELD: &str = "reasoning_content";

impl Reasoning {
    /// Whether content chunk `index` (of `tokens_per_chunk` tokens each) is reasoning.
    pub fn is_reasoning_chunk(self, index: u64, tokens_per_chunk: u64) -> bool {
        self.tokens > 0 && index.saturating_mul(tokens_per_chunk) < self.tokens
    }

    /// Reasoning tokens among `completion` tokens.
    pub fn tokens_of(self, completion: u64) -> u64 {
        self.tokens.min(completion)
    }

    /// `,"completion_tokens_details":{..}` for a usage object, or nothing without reasoning.
    pub fn usage_details(self, completion: u64) -> String {
        match self.tokens {
            0 => String::new(),
            _ => format!(
                r#","completion_tokens_details":{{"reasoning_tokens":{}}}"#,
                self.tokens_of(completion)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_tokens_are_reasoning() {
        let r = Reasoning { tokens: 3 };
        let kinds: Vec<bool> = (0..5).map(|i| r.is_reasoning_chunk(i, 1)).collect();
        assert_eq!(kinds, [true, true, true, false, false]);
        assert!(r.is_reasoning_chunk(1, 2) && !r.is_reasoning_chunk(2, 2));
        assert_eq!((r.tokens_of(10), r.tokens_of(2)), (3, 2));
        assert!(Reasoning::default().usage_details(5).is_empty());
        assert_eq!(
            r.usage_details(10),
            r#","completion_tokens_details":{"reasoning_tokens":3}"#
        );
    }
}
