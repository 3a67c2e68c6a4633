//! Token-exact prompt text, with nothing to download.
//!
//! Prompts are made of common English words, each preceded by a space (" the", " water"): in
//! the vocabularies of the usual tokenizers (byte-level BPE as in GPT-2, Llama 3, Qwen and
//! SmolLM; SentencePiece as in Llama 2 and Mistral) each such word is one token, and the
//! pre-tokenizer splits at the space, so `n` words are `n` tokens. Which words really are one
//! token for the server's tokenizer is checked before the load ([`select`]), with whatever is
//! available — a local `tokenizer.json`, the server's `/tokenize`, or `usage.prompt_tokens` of
//! probe requests — and the tokens the server adds around the text (chat template, BOS) are
//! measured once from `usage`. A prompt of ISL tokens is then `ISL − overhead` words.
//!
//! Each prompt begins with words that spell its sequence number, so no two prompts share a
//! first token (a prefix cache cannot hide prefill) unless `--same-prompt`; the rest are drawn
//! from a generator seeded by the number, so a run is repeatable. A block of a trace (Mooncake
//! `hash_ids`) is drawn from a generator seeded by its hash id: equal ids, equal text.

use std::future::Future;
use std::path::Path;

/// The candidate words. Most are one token in every common vocabulary; a few long ones are
/// not in small vocabularies and are dropped by [`select`] there.
pub const WORDS: &[&str] = &[
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "was",
    "for",
    "on",
    "that",
    "with",
    "as",
    "by",
    "at",
    "from",
    "his",
    "an",
    "were",
    "are",
    "which",
    "this",
    "be",
    "or",
    "has",
    "had",
    "first",
    "one",
    "their",
    "its",
    "new",
    "after",
    "but",
    "who",
    "not",
    "they",
    "have",
    "her",
    "she",
    "two",
    "been",
    "other",
    "when",
    "there",
    "all",
    "during",
    "into",
    "school",
    "time",
    "may",
    "years",
    "more",
    "most",
    "only",
    "over",
    "city",
    "some",
    "world",
    "would",
    "where",
    "later",
    "up",
    "such",
    "used",
    "many",
    "can",
    "state",
    "about",
    "national",
    "out",
    "known",
    "university",
    "united",
    "then",
    "made",
    "year",
    "team",
    "can",
    "him",
    "between",
    "part",
    "three",
    "born",
    "these",
    "south",
    "while",
    "under",
    "series",
    "well",
    "both",
    "work",
    "second",
    "north",
    "season",
    "film",
    "area",
    "family",
    "also",
    "through",
    "being",
    "life",
    "game",
    "each",
    "county",
    "music",
    "four",
    "early",
    "group",
    "war",
    "history",
    "since",
    "around",
    "name",
    "number",
    "album",
    "house",
    "high",
    "league",
    "club",
    "west",
    "because",
    "several",
    "river",
    "same",
    "water",
    "long",
    "public",
    "best",
    "last",
    "play",
    "church",
    "small",
    "large",
    "local",
    "book",
    "town",
    "power",
    "land",
    "band",
    "final",
    "major",
    "party",
    "army",
    "field",
    "line",
    "based",
    "home",
    "air",
    "much",
    "form",
    "data",
    "top",
    "system",
    "road",
    "own",
    "like",
    "center",
    "way",
    "day",
    "back",
    "west",
    "east",
    "old",
    "great",
    "place",
    "end",
    "people",
    "set",
    "even",
    "now",
    "good",
    "light",
    "open",
    "room",
    "green",
    "red",
    "blue",
    "black",
    "white",
    "street",
    "story",
    "world",
    "point",
    "press",
    "hand",
    "head",
    "body",
    "mind",
    "word",
    "side",
    "half",
    "less",
    "free",
    "fire",
    "gold",
    "hill",
    "lake",
    "sea",
    "star",
    "tree",
    "art",
    "car",
    "ship",
    "boat",
    "train",
    "bridge",
    "tower",
    "wall",
    "door",
    "window",
    "garden",
    "forest",
    "market",
    "money",
    "bank",
    "price",
    "trade",
    "course",
    "class",
    "study",
    "paper",
    "letter",
    "voice",
    "sound",
    "color",
    "image",
    "model",
    "plan",
    "rule",
    "law",
    "court",
    "king",
    "queen",
    "son",
    "father",
    "mother",
    "child",
    "friend",
    "woman",
    "man",
    "girl",
    "boy",
    "night",
    "morning",
    "summer",
    "winter",
    "spring",
    "month",
    "week",
    "hour",
    "age",
    "period",
    "energy",
    "health",
    "food",
    "bread",
    "milk",
    "stone",
    "iron",
    "glass",
    "wood",
    "paint",
    "rock",
    "sand",
    "snow",
    "rain",
    "wind",
    "cloud",
    "sun",
    "moon",
    "government",
    "community",
    "information",
    "development",
    "important",
    "different",
    "character",
];

/// Mixed into `--seed` for output lengths, so they are drawn apart from prompt lengths.
const OSL_SALT: u64 = 0x006F_736C;

/// How the words were checked and the overhead measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LengthMethod {
    /// A `tokenizer.json` given with `--tokenizer`, read locally.
    TokenizerFile(String),
    /// The server's own tokenizer endpoint (its URL).
    TokenizeEndpoint(String),
    /// Probe requests' `usage.prompt_tokens` alone.
    Usage,
    /// Nothing could be checked (no usage, no tokenizer): one token per word is assumed.
    Assumed,
}

impl LengthMethod {
    pub fn describe(&self) -> String {
        use crate::i18n::{tr, Msg};
        match self {
            LengthMethod::TokenizerFile(path) => tr(Msg::MethodTokenizerFile, &[("path", path)]),
            LengthMethod::TokenizeEndpoint(url) => tr(Msg::MethodTokenizeEndpoint, &[("url", url)]),
            LengthMethod::Usage => tr(Msg::MethodUsage, &[]),
            LengthMethod::Assumed => tr(Msg::MethodAssumed, &[]),
        }
    }
}

/// Words known to be one token each, and what the server adds around a prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenText {
    /// Each with its leading space.
    words: Vec<String>,
    /// Tokens the server counts beyond the text of a one-message prompt (template, BOS).
    pub overhead: u64,
    /// The same for a prompt with a system message first (prefix groups), when measured.
    pub overhead_with_system: Option<u64>,
    pub method: LengthMethod,
    /// Probe requests (or tokenizer calls) the check took.
    pub probes: u32,
    /// Candidate words dropped because the server's tokenizer splits them.
    pub dropped: Vec<String>,
    /// The overhead could not be measured (the server sends no usage): prompts are exact in
    /// text tokens only.
    pub overhead_unknown: bool,
}

/// A small fast generator (SplitMix64): word choices cost nanoseconds.
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, n).
    pub fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 11) as u128 * n as u128) >> 53) as usize
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: i32, hi: i32) -> i32 {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as i32
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.unit().max(f64::MIN_POSITIVE);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

impl TokenText {
    /// All candidate words, nothing measured (tests, and the fallback without any count).
    pub fn assumed() -> Self {
        Self::from_words(candidates(), 0, LengthMethod::Assumed)
    }

    pub fn from_words(words: Vec<String>, overhead: u64, method: LengthMethod) -> Self {
        Self {
            words,
            overhead,
            overhead_with_system: None,
            method,
            probes: 0,
            dropped: Vec::new(),
            overhead_unknown: false,
        }
    }

    pub fn word_count(&self) -> usize {
        self.words.len()
    }

    /// Text tokens for a prompt the server should count as `isl` tokens in all.
    pub fn text_tokens_for(&self, isl: u64, with_system: bool) -> u64 {
        let overhead = match with_system {
            true => self.overhead_with_system.unwrap_or(self.overhead),
            false => self.overhead,
        };
        isl.saturating_sub(overhead)
    }

    /// Appends `n` words (= `n` tokens): first the words spelling `unique` (when given), then
    /// words drawn from a generator seeded by `seed`.
    pub fn push(&self, out: &mut String, n: u64, unique: Option<u64>, seed: u64) {
        let w = self.words.len() as u64;
        let mut left = n;
        if let Some(mut id) = unique {
            // Base-w digits, least significant first, always at least three: prompts differ
            // from their first token.
            let mut digits = 0;
            while left > 0 && (digits < 3 || id > 0) {
                out.push_str(&self.words[(id % w) as usize]);
                id /= w;
                left -= 1;
                digits += 1;
            }
        }
        let mut rng = SplitMix::new(seed);
        for _ in 0..left {
            out.push_str(&self.words[rng.below(self.words.len())]);
        }
    }

    /// A text of exactly `n` tokens.
    pub fn text(&self, n: u64, unique: Option<u64>, seed: u64) -> String {
        let mut out = String::with_capacity(n as usize * 7);
        self.push(&mut out, n, unique, seed);
        out
    }

    /// The text of trace block `hash_id` cut to `n` tokens: equal ids give equal text, and a
    /// shorter cut of a block is a prefix of the longer one.
    pub fn push_block(&self, out: &mut String, hash_id: u64, n: u64) {
        self.push(out, n, None, hash_id.wrapping_mul(0xA24B_AED4_963E_E407) ^ 0x5EED_B10C);
    }
}

/// The candidate words with their leading space, without repeats.
pub fn candidates() -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    WORDS
        .iter()
        .filter(|w| seen.insert(**w))
        .map(|w| format!(" {w}"))
        .collect()
}

/// Asks a counter how many tokens texts have, and keeps the words that are one token each.
///
/// `count(text)` returns the tokens the counter gives for the text (plus any constant it adds,
/// such as a chat template or BOS). The constant is measured with a repeated anchor word: the
/// counts of 16 and 32 repeats must differ by exactly 16. Then all candidates are counted at
/// once; a group whose count is not its word count is halved until the words that split are
/// found. At most `max_probes` calls; groups left unchecked at that point are dropped.
pub async fn select<C: TokenCounter>(
    candidates: Vec<String>,
    max_probes: u32,
    counter: &mut C,
) -> Result<Selected, String> {
    let anchor = candidates.first().cloned().ok_or("no candidate words")?;
    let c16 = counter.count(anchor.repeat(16)).await?;
    let c32 = counter.count(anchor.repeat(32)).await?;
    if c32 < c16 || c32 - c16 != 16 {
        return Err(format!(
            "the server counts 16 more words as {} more tokens, not 16: its tokenizer does not split \
             text at spaces as expected",
            c32 as i64 - c16 as i64
        ));
    }
    let overhead = c16.saturating_sub(16);
    let mut probes = 2u32;
    let mut good = Vec::new();
    let mut dropped = Vec::new();
    let mut groups = vec![candidates];
    while let Some(group) = groups.pop() {
        if probes >= max_probes {
            dropped.extend(group);
            continue;
        }
        let tokens = counter.count(group.concat()).await?;
        probes += 1;
        if tokens == overhead + group.len() as u64 {
            good.extend(group);
        } else if group.len() == 1 {
            dropped.extend(group);
        } else {
            let mut first = group;
            let second = first.split_off(first.len() / 2);
            groups.push(second);
            groups.push(first);
        }
    }
    Ok(Selected {
        good,
        dropped,
        overhead,
        probes,
    })
}

/// Something that says how many tokens a text is (plus a constant of its own).
pub trait TokenCounter {
    fn count(&mut self, text: String) -> impl Future<Output = Result<u64, String>>;
}

/// What [`select`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct Selected {
    pub good: Vec<String>,
    pub dropped: Vec<String>,
    /// The constant the counter added to every text.
    pub overhead: u64,
    pub probes: u32,
}

/// The words of `candidates` that are one token in a local `tokenizer.json` (Hugging Face
/// format): looked up in the model's vocabulary with the space marker its pre-tokenizer uses
/// (`Ġ` for byte-level BPE, `▁` for SentencePiece/Metaspace, none for WordPiece).
pub fn select_with_tokenizer_file(path: &Path, candidates: Vec<String>) -> Result<Selected, String> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            format!("tokenizer file {shown} does not exist; give a local tokenizer.json with --tokenizer")
        }
        _ => format!("cannot read tokenizer file {shown}: {e}"),
    })?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("tokenizer file {shown} is not valid JSON ({e}); give a Hugging Face tokenizer.json"))?;
    let model = json
        .get("model")
        .ok_or_else(|| format!("tokenizer file {shown} has no `model`: not a Hugging Face tokenizer.json"))?;
    let vocab: std::collections::HashSet<&str> = match model.get("vocab") {
        Some(serde_json::Value::Object(map)) => map.keys().map(String::as_str).collect(),
        // Unigram: [[piece, score], …]
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .filter_map(|item| item.get(0).and_then(|p| p.as_str()))
            .collect(),
        _ => return Err(format!("tokenizer file {shown} has no vocabulary (`model.vocab`)")),
    };
    let marker = space_marker(&json);
    let (mut good, mut dropped) = (Vec::new(), Vec::new());
    for word in candidates {
        let bare = word.trim_start_matches(' ');
        let piece = format!("{marker}{bare}");
        if vocab.contains(piece.as_str()) {
            good.push(word);
        } else {
            dropped.push(word);
        }
    }
    Ok(Selected {
        good,
        dropped,
        overhead: 0,
        probes: 0,
    })
}

/// How a tokenizer marks a leading space in its vocabulary.
fn space_marker(json: &serde_json::Value) -> &'static str {
    let text = json.get("pre_tokenizer").map(|p| p.to_string()).unwrap_or_default()
        + &json.get("decoder").map(|p| p.to_string()).unwrap_or_default()
        + &json.get("normalizer").map(|p| p.to_string()).unwrap_or_default();
    if text.contains("ByteLevel") {
        "\u{120}"
    } else if text.contains("Metaspace") || text.contains('\u{2581}') {
        "\u{2581}"
    } else {
        ""
    }
}

/// Prompt and output lengths: a fixed number, or a normal distribution clipped to [min, max].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct LengthDist {
    pub mean: u64,
    pub std: f64,
    pub min: u64,
    pub max: u64,
}

impl LengthDist {
    pub fn fixed(n: u64) -> Self {
        Self {
            mean: n,
            std: 0.0,
            min: n,
            max: n,
        }
    }

    /// The length of prompt number `seq` (seeded: the same run asks for the same lengths).
    pub fn sample(&self, seed: u64, seq: u64) -> u64 {
        if self.std <= 0.0 {
            return self.mean.clamp(self.min, self.max);
        }
        let mut rng = SplitMix::new(seed ^ seq.wrapping_mul(0xD134_2543_DE82_EF95));
        let x = self.mean as f64 + self.std * rng.normal();
        (x.round().max(0.0) as u64).clamp(self.min, self.max)
    }

    /// The output length of prompt number `seq`: drawn apart from its prompt length.
    pub fn sample_output(&self, seed: u64, seq: u64) -> u64 {
        self.sample(seed ^ OSL_SALT, seq)
    }

    pub fn describe(&self) -> String {
        if self.std <= 0.0 {
            return format!("{}", self.mean);
        }
        let max = match self.max {
            u64::MAX => "∞".to_string(),
            n => n.to_string(),
        };
        format!("{}±{} in [{}, {max}]", self.mean, self.std, self.min)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A counter like the simulator's: words of at most 8 letters are one token, longer ones
    /// ceil(letters/4); plus a template of 9 tokens.
    fn sim_count(text: &str) -> u64 {
        9 + text
            .split(' ')
            .filter(|w| !w.is_empty())
            .map(|w| if w.len() <= 8 { 1 } else { w.len().div_ceil(4) as u64 })
            .sum::<u64>()
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    struct Fn<F>(F);

    impl<F: FnMut(&str) -> u64> TokenCounter for Fn<F> {
        async fn count(&mut self, text: String) -> Result<u64, String> {
            Ok((self.0)(&text))
        }
    }

    #[test]
    fn select_finds_the_split_words_and_the_overhead() {
        let selected = block_on(select(candidates(), 500, &mut Fn(sim_count))).unwrap();
        assert_eq!(selected.overhead, 9);
        let long: Vec<String> = candidates().into_iter().filter(|w| w.len() > 9).collect();
        assert!(!long.is_empty());
        let mut dropped = selected.dropped.clone();
        dropped.sort();
        let mut expected = long.clone();
        expected.sort();
        assert_eq!(dropped, expected);
        assert_eq!(selected.good.len() + long.len(), candidates().len());
        assert!(selected.probes < 80, "{} probes", selected.probes);
        let text = TokenText::from_words(selected.good, selected.overhead, LengthMethod::Usage);
        for n in [1, 3, 17, 256, 4000] {
            let t = text.text(n, Some(12345), 7);
            assert_eq!(sim_count(&t), 9 + n, "n={n}");
        }
    }

    #[test]
    fn select_reports_a_tokenizer_that_does_not_split_at_spaces() {
        // chars/4 over the whole text: 16 repeats of " the" = 16 tokens, 32 = 32 … but " of"
        // is 3 chars: use a counter that halves.
        let err = block_on(select(candidates(), 50, &mut Fn(|t: &str| t.len() as u64 / 8))).unwrap_err();
        assert!(err.contains("not 16"), "{err}");
    }

    #[test]
    fn probe_budget_is_respected() {
        let selected = block_on(select(candidates(), 5, &mut Fn(sim_count))).unwrap();
        assert!(selected.probes <= 5);
        assert_eq!(selected.good.len() + selected.dropped.len(), candidates().len());
    }

    #[test]
    fn texts_are_exact_distinct_and_repeatable() {
        let text = TokenText::assumed();
        let a = text.text(50, Some(1), 1);
        let b = text.text(50, Some(2), 1);
        assert_eq!(a.split(' ').filter(|w| !w.is_empty()).count(), 50);
        assert_ne!(a.split(' ').nth(1), b.split(' ').nth(1), "differ from the first word");
        assert_eq!(a, text.text(50, Some(1), 1));
        // A huge id still fits in the words asked for.
        let c = text.text(2, Some(u64::MAX), 1);
        assert_eq!(c.split(' ').filter(|w| !w.is_empty()).count(), 2);
        assert_eq!(text.text(0, Some(5), 1), "");
    }

    #[test]
    fn blocks_with_equal_ids_are_equal_prefixes() {
        let text = TokenText::assumed();
        let block = |id, n| {
            let mut s = String::new();
            text.push_block(&mut s, id, n);
            s
        };
        assert_eq!(block(7, 512), block(7, 512));
        assert_ne!(block(7, 512), block(8, 512));
        assert!(block(7, 512).starts_with(&block(7, 100)));
    }

    #[test]
    fn lengths_are_seeded_and_clipped() {
        let d = LengthDist {
            mean: 100,
            std: 50.0,
            min: 60,
            max: 150,
        };
        let xs: Vec<u64> = (0..2000).map(|i| d.sample(3, i)).collect();
        assert!(xs.iter().all(|&x| (60..=150).contains(&x)));
        assert!(xs.contains(&60) && xs.contains(&150), "clipping reached");
        let mean = xs.iter().sum::<u64>() as f64 / xs.len() as f64;
        assert!((mean - 100.0).abs() < 5.0, "{mean}");
        assert_eq!(xs, (0..2000).map(|i| d.sample(3, i)).collect::<Vec<_>>());
        assert_ne!(xs, (0..2000).map(|i| d.sample(4, i)).collect::<Vec<_>>());
        assert_eq!(LengthDist::fixed(64).sample(1, 9), 64);
    }

    #[test]
    fn tokenizer_file_markers() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (r#"{"type":"ByteLevel"}"#, "\u{120}"),
            (r#"{"type":"Metaspace","replacement":"▁"}"#, "\u{2581}"),
            (r#"{"type":"BertPreTokenizer"}"#, ""),
        ];
        for (pre, marker) in cases {
            let vocab = format!(r#"{{"{marker}the": 1, "{marker}of": 2, "x": 3}}"#);
            let json =
                format!(r#"{{"model": {{"type": "BPE", "vocab": {vocab}, "merges": []}}, "pre_tokenizer": {pre}}}"#);
            let path = dir.path().join("tokenizer.json");
            std::fs::write(&path, json).unwrap();
            let selected = select_with_tokenizer_file(&path, candidates()).unwrap();
            assert_eq!(selected.good, vec![" the".to_string(), " of".to_string()], "{pre}");
        }
        let missing = select_with_tokenizer_file(&dir.path().join("nope.json"), candidates()).unwrap_err();
        assert!(missing.contains("does not exist"), "{missing}");
        std::fs::write(dir.path().join("bad.json"), "{").unwrap();
        let bad = select_with_tokenizer_file(&dir.path().join("bad.json"), candidates()).unwrap_err();
        assert!(bad.contains("not valid JSON"), "{bad}");
    }
}
