//! Prompt text of an exact length in characters.
//!
//! Each request's prompt starts with its own number unless `--same-prompt` is given: servers
//! cache prompt prefixes, and identical prompts would make prefill look several times faster
//! than it is.

const FILLER: &str = "The quick brown fox jumps over the lazy dog while the patient engineer measures \
how fast the server reads every word of this long and winding prompt. Benchmarks need text that \
looks like language, with ordinary words, commas, numbers like 42 and 1970, and sentences of \
varied length, so that tokenizers split it the way they split real prompts. ";

/// `chars` characters of filler text, preceded by a unique marker when `unique` is given.
pub fn filler(chars: usize, unique: Option<u64>) -> String {
    let mut text = String::with_capacity(chars + 8);
    if let Some(id) = unique {
        text.push_str(&format!("Request {id}. "));
    }
    while text.len() < chars {
        text.push_str(FILLER);
    }
    // FILLER is ASCII, so byte length == char count and any cut is a char boundary.
    text.truncate(chars);
    text
}

/// `text` with a unique marker in front of it when `unique` is given.
pub fn with_prefix(text: &str, unique: Option<u64>) -> String {
    match unique {
        Some(id) => format!("Request {id}. {text}"),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_length() {
        for n in [0, 1, 5, 100, 500, 5000] {
            assert_eq!(filler(n, Some(123)).chars().count(), n);
            assert_eq!(filler(n, None).chars().count(), n);
        }
    }

    #[test]
    fn unique_prefix_comes_first() {
        assert!(filler(100, Some(7)).starts_with("Request 7. The quick"));
        assert_ne!(filler(100, Some(1)), filler(100, Some(2)));
        assert_eq!(filler(100, None), filler(100, None));
    }
}
