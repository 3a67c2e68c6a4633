//! The simulator's deterministic tokenizer.
//!
//! There is no model, so there is no real vocabulary; what matters is that the counts are
//! exact, repeatable and documented, so that a client can predict `usage.prompt_tokens` and
//! check its own `/tokenize` calls against it. The rule:
//!
//! - Text is scanned left to right into pieces:
//!   1. a **word**: an optional single ASCII space followed by a maximal run of ASCII letters
//!      `[A-Za-z]`; it is 1 token when the run has at most 8 letters, else `ceil(letters / 4)`;
//!   2. each ASCII **digit** is 1 token;
//!   3. **every other character** (a space not followed by a letter, a newline, punctuation,
//!      any non-ASCII character) is 1 token.
//! - Token ids: a piece's first token is `2 + fnv1a64(piece bytes) % 49_998`; a piece of `k`
//!   tokens has `k` consecutive ids (wrapping inside `2..50_000`). `BOS` is 1.
//! - Chat prompts (ChatML-like): `BOS`, then per message `<start> role <sep> content… <end>`
//!   (4 + the content's tokens), then the generation prompt `<start> assistant <sep>` (3).
//!   Each image part is 256 tokens. Completions prompts: `BOS` + the text's tokens; a prompt of
//!   token ids is exactly those ids.
//!
//! Counting allocates nothing per piece: one pass over the bytes, hashing each piece for its id
//! and the running sequence hash (prefix caching) as it goes.

/// Beginning of sequence, added in front of every text prompt.
pub(crate) const BOS: u32 = 1;
/// Opens a chat message (ids from 50 000 up are the template's special tokens).
pub(crate) const MSG_START: u32 = 50_001;
/// Between a chat message's role and its content.
pub(crate) const MSG_SEP: u32 = 50_002;
/// Closes a chat message.
pub(crate) const MSG_END: u32 = 50_003;
/// Tokens of a chat message beyond its content.
#[cfg(test)]
pub(crate) const MESSAGE_OVERHEAD: u64 = 4;
/// Tokens of the generation prompt that ends a chat prompt.
#[cfg(test)]
pub(crate) const GENERATION_PROMPT: u64 = 3;
/// Prompt tokens charged for each image part, a typical vision-encoder cost.
pub(crate) const TOKENS_PER_IMAGE: u64 = 256;

/// Ids of ordinary pieces lie in `FIRST_ID..VOCAB`.
const FIRST_ID: u64 = 2;
const VOCAB: u64 = 50_000;
/// Words of at most this many letters are one token.
const SHORT_WORD: u64 = 8;

/// Calls `f(piece, tokens)` for every piece of `text`.
#[inline]
fn scan(text: &str, mut f: impl FnMut(&[u8], u64)) {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let word_start = if b == b' ' { i + 1 } else { i };
        if bytes.get(word_start).is_some_and(u8::is_ascii_alphabetic) {
            let mut end = word_start + 1;
            while bytes.get(end).is_some_and(u8::is_ascii_alphabetic) {
                end += 1;
            }
            let letters = (end - word_start) as u64;
            let tokens = if letters <= SHORT_WORD { 1 } else { letters.div_ceil(4) };
            f(&bytes[i..end], tokens);
            i = end;
            continue;
        }
        // A digit, a lone space, punctuation, a control character, or one non-ASCII char.
        let width = match b {
            0x00..=0x7f => 1,
            0xf0..=0xff => 4,
            0xe0..=0xef => 3,
            _ => 2,
        };
        let end = (i + width).min(bytes.len());
        f(&bytes[i..end], 1);
        i = end;
    }
}

/// Tokens of `text` (no BOS), without computing ids: the rule's reference, which the id path
/// must agree with.
#[cfg(test)]
pub(crate) fn count(text: &str) -> u64 {
    let mut n = 0u64;
    scan(text, |_, tokens| n += tokens);
    n
}

/// The first id of a piece (also used for a chat role and an image's content).
pub(crate) fn piece_id(bytes: &[u8]) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    id_at(h % (VOCAB - FIRST_ID), 0)
}

/// The `k`-th consecutive id after the one `base` stands for, inside the ordinary range.
fn id_at(base: u64, k: u64) -> u32 {
    let span = VOCAB - FIRST_ID;
    (FIRST_ID + (base % span + k % span) % span) as u32
}

/// Calls `f` with each token id of `text` (no BOS).
pub(crate) fn for_each_id(text: &str, mut f: impl FnMut(u32)) {
    scan(text, |piece, tokens| {
        let first = u64::from(piece_id(piece)) - FIRST_ID;
        for k in 0..tokens {
            f(id_at(first, k));
        }
    });
}

/// Tokens of a prompt, pushed one id at a time: the count, a running hash of the sequence, the
/// hash at every [`BLOCK`]-token boundary (for prefix caching) and, when asked, the ids.
pub(crate) struct TokenSeq {
    count: u64,
    hash: u64,
    blocks: Vec<u64>,
    ids: Option<Vec<u32>>,
}

/// Prefix caching works in blocks of this many tokens.
pub(crate) const BLOCK: u64 = 16;

impl TokenSeq {
    /// An empty sequence; `keep_ids` keeps every id (for `/tokenize`).
    pub fn new(keep_ids: bool) -> Self {
        Self {
            count: 0,
            hash: 0x243f_6a88_85a3_08d3,
            blocks: Vec::new(),
            ids: keep_ids.then(Vec::new),
        }
    }

    #[inline]
    pub fn push(&mut self, id: u32) {
        self.count += 1;
        self.hash = (self.hash.rotate_left(5) ^ u64::from(id)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        if self.count % BLOCK == 0 {
            self.blocks.push(self.hash);
        }
        if let Some(ids) = &mut self.ids {
            ids.push(id);
        }
    }

    /// Appends the tokens of `text`.
    pub fn text(&mut self, text: &str) {
        for_each_id(text, |id| self.push(id));
    }

    /// Appends an image part: [`TOKENS_PER_IMAGE`] ids derived from its content.
    pub fn image(&mut self, content: &[u8]) {
        let first = u64::from(piece_id(content)) - FIRST_ID;
        for k in 0..TOKENS_PER_IMAGE {
            self.push(id_at(first, k));
        }
    }

    /// A chat message's opening: `<start> role <sep>`.
    pub fn message_start(&mut self, role: &str) {
        self.push(MSG_START);
        self.push(piece_id(role.as_bytes()));
        self.push(MSG_SEP);
    }

    pub fn message_end(&mut self) {
        self.push(MSG_END);
    }

    /// The generation prompt that ends a chat prompt: `<start> assistant <sep>`.
    pub fn generation_prompt(&mut self) {
        self.message_start("assistant");
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The hash of the whole sequence.
    pub fn fingerprint(&self) -> u64 {
        self.hash
    }

    /// The hash of the first `16 × (i + 1)` tokens, for each whole block `i`.
    #[cfg(test)]
    pub fn blocks(&self) -> &[u64] {
        &self.blocks
    }

    /// The ids, when they were kept.
    pub fn ids(&self) -> &[u32] {
        self.ids.as_deref().unwrap_or_default()
    }

    /// Drops the ids and keeps the rest.
    pub fn into_blocks(self) -> Vec<u64> {
        self.blocks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counting_rule() {
        let cases: &[(&str, u64)] = &[
            ("", 0),
            ("hello", 1),
            (" hello", 1),
            ("hello world", 2),
            ("abcdefgh", 1),          // 8 letters
            ("abcdefghi", 3),         // 9 letters: ceil(9/4)
            (" abcdefghijklmnop", 4), // 16 letters; the space belongs to the word
            ("  hi", 2),              // a space not followed by a letter, then " hi"
            ("hi ", 2),               // a trailing space is a token of its own
            ("1970", 4),              // one token per digit
            (" 42", 3),               // the space is followed by a digit: its own token
            ("a,b.", 4),
            ("line\nnext", 3),
            ("é", 1),
            ("请描述", 3),
            ("naïve", 3), // "na", "ï", "ve"
            ("😀x", 2),
            ("Request 7. The", 5), // "Request", " ", "7", ".", " The"
        ];
        for &(text, tokens) in cases {
            assert_eq!(count(text), tokens, "{text:?}");
            let mut ids = 0;
            for_each_id(text, |_| ids += 1);
            assert_eq!(ids, tokens, "ids of {text:?}");
        }
    }

    #[test]
    fn ids_are_deterministic_and_in_range() {
        let mut a = Vec::new();
        for_each_id("The quick brown fox, 42 times: extraordinarily!", |id| a.push(id));
        let mut b = Vec::new();
        for_each_id("The quick brown fox, 42 times: extraordinarily!", |id| b.push(id));
        assert_eq!(a, b);
        assert!(a.iter().all(|&id| (2..50_000).contains(&id)), "{a:?}");
        // "extraordinarily" (15 letters) is 4 consecutive ids.
        let mut long = Vec::new();
        for_each_id(" extraordinarily", |id| long.push(id));
        assert_eq!(long.len(), 4);
        for pair in long.windows(2) {
            assert!(
                pair[1] == pair[0] + 1 || (pair[0] == 49_999 && pair[1] == 2),
                "{long:?}"
            );
        }
        // The same word with and without its space is two different pieces.
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for_each_id("fox", |id| x.push(id));
        for_each_id(" fox", |id| y.push(id));
        assert_ne!(x, y);
    }

    #[test]
    fn sequence_blocks_and_ids() {
        let mut seq = TokenSeq::new(true);
        seq.push(BOS);
        seq.message_start("user");
        seq.text("one two three");
        seq.message_end();
        seq.generation_prompt();
        assert_eq!(seq.count(), 1 + MESSAGE_OVERHEAD + 3 + GENERATION_PROMPT);
        assert_eq!(seq.ids().len() as u64, seq.count());
        assert_eq!(seq.ids()[0], BOS);
        assert_eq!(seq.ids()[1], MSG_START);
        assert!(seq.blocks().is_empty());
        let mut long = TokenSeq::new(false);
        long.text(&"a,".repeat(20)); // 40 tokens: 2 whole blocks
        assert_eq!(long.count(), 40);
        assert_eq!(long.blocks().len(), 2);
        assert!(long.ids().is_empty());
        let mut other = TokenSeq::new(false);
        other.text(&"a,".repeat(16));
        other.text("b");
        assert_eq!(other.blocks()[..2], long.blocks()[..2], "same first 32 tokens");
        let mut image = TokenSeq::new(false);
        image.image(b"data:image/png;base64,AAAA");
        assert_eq!(image.count(), TOKENS_PER_IMAGE);
    }

    #[test]
    fn counting_a_long_prompt_is_linear() {
        let text = "The quick brown fox jumps over the lazy dog, 1970. ".repeat(20_000);
        let started = std::time::Instant::now();
        let n = count(&text);
        // 9 words, ",", " ", four digits, "." = 16 per repetition (the space after "." joins
        // the next " The"), and the very last space is a token of its own.
        assert_eq!(n, 16 * 20_000 + 1);
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }
}
