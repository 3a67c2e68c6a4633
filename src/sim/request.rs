//! Parsing generation and `/tokenize` requests.
//!
//! The simulator needs very little from a request: which model, the prompt's tokens (counted by
//! the simulator's own [`tokenizer`](super::tokenizer)), how many output tokens, whether to
//! stream, and whether usage was asked for. Anything a client sends is untrusted: malformed
//! input becomes a 400 message, never a panic.

use serde::Deserialize;
use serde_json::Value;

use super::chunks::Endpoint;
use super::config::Flavor;
use super::tokenizer::{TokenSeq, BOS};

/// What the simulator takes from a generation request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GenRequest {
    pub model: Option<String>,
    pub prompt_tokens: u64,
    pub images: u64,
    /// `max_completion_tokens`, else `max_tokens` (vLLM's precedence).
    pub max_tokens: Option<u64>,
    /// vLLM's and llama.cpp's `ignore_eos`: generate up to the limit whatever `--eos-after` says.
    pub ignore_eos: bool,
    /// vLLM's `min_tokens`: no end of sequence before this many tokens.
    pub min_tokens: u64,
    pub stream: bool,
    pub include_usage: bool,
    /// vLLM's `stream_options.continuous_usage_stats`: usage in every chunk. As in vLLM, it
    /// takes effect only together with `include_usage`.
    pub continuous_usage: bool,
    /// llama.cpp's `cache_prompt` (default true): may the server reuse a cached prompt?
    pub cache_prompt: bool,
    /// A hash of the prompt's whole token sequence, to recognise a prompt seen before.
    pub prompt_fingerprint: u64,
    /// The hash of the prompt's tokens up to each 16-token boundary, for prefix caching.
    pub blocks: Vec<u64>,
}

#[derive(Deserialize)]
struct RawRequest {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    messages: Option<Vec<RawMessage>>,
    #[serde(default)]
    prompt: Option<Value>,
    #[serde(default)]
    max_tokens: Option<u64>,
    #[serde(default)]
    max_completion_tokens: Option<u64>,
    #[serde(default)]
    ignore_eos: Option<bool>,
    #[serde(default)]
    min_tokens: Option<u64>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    #[serde(default)]
    cache_prompt: Option<bool>,
}

#[derive(Deserialize)]
struct RawMessage {
    #[serde(default)]
    role: Option<Value>,
    #[serde(default)]
    content: Option<Value>,
}

#[derive(Deserialize, Default)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
    #[serde(default)]
    continuous_usage_stats: Option<bool>,
}

/// Parses a request body for `endpoint`; the error is a client-facing message.
pub(crate) fn parse(endpoint: Endpoint, body: &[u8]) -> Result<GenRequest, String> {
    let raw: RawRequest = serde_json::from_slice(body).map_err(|e| format!("invalid JSON body: {e}"))?;
    let mut seq = TokenSeq::new(false);
    let mut images = 0;
    match endpoint {
        Endpoint::Chat => {
            let messages = raw.messages.ok_or("`messages` is required")?;
            images = chat_prompt(&mut seq, &messages, true, true)?;
        }
        Endpoint::Completions => {
            let prompt = raw.prompt.ok_or("`prompt` is required")?;
            completion_prompt(&mut seq, &prompt, true).map_err(|e| format!("prompt: {e}"))?;
        }
    }
    let max_tokens = raw.max_completion_tokens.or(raw.max_tokens);
    if max_tokens == Some(0) {
        return Err("max_tokens must be at least 1".into());
    }
    let min_tokens = raw.min_tokens.unwrap_or(0);
    if let Some(max) = max_tokens.filter(|&max| min_tokens > max) {
        return Err(format!("min_tokens ({min_tokens}) must not exceed max_tokens ({max})"));
    }
    let options = raw.stream_options.unwrap_or_default();
    let include_usage = options.include_usage.unwrap_or(false);
    Ok(GenRequest {
        model: raw.model,
        prompt_tokens: seq.count(),
        images,
        max_tokens,
        ignore_eos: raw.ignore_eos.unwrap_or(false),
        min_tokens,
        stream: raw.stream.unwrap_or(false),
        include_usage,
        continuous_usage: include_usage && options.continuous_usage_stats.unwrap_or(false),
        cache_prompt: raw.cache_prompt.unwrap_or(true),
        prompt_fingerprint: seq.fingerprint(),
        blocks: seq.into_blocks(),
    })
}

/// A `/tokenize` request: the model asked for (if any) and the prompt's tokens.
pub(crate) struct TokenizeRequest {
    pub model: Option<String>,
    pub tokens: TokenSeq,
}

#[derive(Deserialize)]
struct RawTokenize {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    prompt: Option<Value>,
    #[serde(default)]
    messages: Option<Vec<RawMessage>>,
    #[serde(default)]
    add_special_tokens: Option<bool>,
    #[serde(default)]
    add_generation_prompt: Option<bool>,
}

#[derive(Deserialize)]
struct RawLlamaTokenize {
    #[serde(default)]
    content: Option<Value>,
    #[serde(default)]
    add_special: Option<bool>,
}

/// Parses a `/tokenize` body in the flavor's shape. vLLM: `{"prompt": "…"}` or
/// `{"messages": […]}` with `add_special_tokens` (default true: BOS) and, for messages,
/// `add_generation_prompt` (default true). llama-server: `{"content": "…"}` with `add_special`
/// (default false). The same text counts as many tokens as a generation request's usage says.
pub(crate) fn parse_tokenize(flavor: Flavor, body: &[u8]) -> Result<TokenizeRequest, String> {
    let mut tokens = TokenSeq::new(true);
    let model = match flavor {
        Flavor::Openai => {
            let raw: RawTokenize = serde_json::from_slice(body).map_err(|e| format!("invalid JSON body: {e}"))?;
            let special = raw.add_special_tokens.unwrap_or(true);
            match (raw.prompt, raw.messages) {
                (Some(Value::String(text)), None) => {
                    text_prompt(&mut tokens, &text, special);
                }
                (Some(_), None) => return Err("prompt: must be a string".into()),
                (None, Some(messages)) => {
                    let generation = raw.add_generation_prompt.unwrap_or(true);
                    chat_prompt(&mut tokens, &messages, special, generation)?;
                }
                (None, None) => return Err("either `prompt` or `messages` is required".into()),
                (Some(_), Some(_)) => return Err("give `prompt` or `messages`, not both".into()),
            }
            raw.model
        }
        Flavor::LlamaServer => {
            let raw: RawLlamaTokenize = serde_json::from_slice(body).map_err(|e| format!("invalid JSON body: {e}"))?;
            match raw.content {
                Some(Value::String(text)) => text_prompt(&mut tokens, &text, raw.add_special.unwrap_or(false)),
                Some(_) => return Err("content: must be a string".into()),
                None => return Err("`content` is required".into()),
            }
            None
        }
    };
    Ok(TokenizeRequest { model, tokens })
}

/// BOS (when `special`) and the tokens of `text`.
fn text_prompt(seq: &mut TokenSeq, text: &str, special: bool) {
    if special {
        seq.push(BOS);
    }
    seq.text(text);
}

/// A chat prompt through the template: BOS (when `special`), every message, the generation
/// prompt (when `generation`). Returns the number of image parts.
fn chat_prompt(seq: &mut TokenSeq, messages: &[RawMessage], special: bool, generation: bool) -> Result<u64, String> {
    if special {
        seq.push(BOS);
    }
    let mut images = 0;
    for (i, message) in messages.iter().enumerate() {
        let role = match &message.role {
            None | Some(Value::Null) => "user",
            Some(Value::String(role)) => role.as_str(),
            Some(_) => return Err(format!("messages[{i}].role: must be a string")),
        };
        seq.message_start(role);
        images += add_chat_content(seq, message.content.as_ref()).map_err(|e| format!("messages[{i}].content: {e}"))?;
        seq.message_end();
    }
    if generation {
        seq.generation_prompt();
    }
    Ok(images)
}

/// A chat message's content: a string, an array of typed parts, or null. Returns the number of
/// image parts.
fn add_chat_content(seq: &mut TokenSeq, content: Option<&Value>) -> Result<u64, &'static str> {
    match content {
        None | Some(Value::Null) => Ok(0),
        Some(Value::String(s)) => {
            seq.text(s);
            Ok(0)
        }
        Some(Value::Array(parts)) => {
            let mut images = 0;
            for part in parts {
                match part.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        if let Some(text) = part.get("text").and_then(Value::as_str) {
                            seq.text(text);
                        }
                    }
                    Some(kind @ ("image_url" | "input_image" | "image")) => {
                        // The image's tokens follow from its URL (or data), as servers hash images.
                        let source = part.get(kind).or_else(|| part.get("image_url"));
                        let url = source
                            .and_then(|s| s.get("url").and_then(Value::as_str).or_else(|| s.as_str()))
                            .unwrap_or_default();
                        seq.image(url.as_bytes());
                        images += 1;
                    }
                    // Audio, files, ...: not modelled, but not an error either.
                    _ => {}
                }
            }
            Ok(images)
        }
        Some(_) => Err("must be a string, an array of parts, or null"),
    }
}

/// A completions prompt: a string, token ids, or a list of either. Each string is BOS and its
/// text (when `special`); token ids count as given.
fn completion_prompt(seq: &mut TokenSeq, prompt: &Value, special: bool) -> Result<(), &'static str> {
    match prompt {
        Value::String(s) => text_prompt(seq, s, special),
        Value::Number(n) => seq.push(token_id(n)),
        Value::Array(items) => {
            for item in items {
                match item {
                    Value::String(_) | Value::Number(_) => completion_prompt(seq, item, special)?,
                    // A batch of token-id lists: one level deeper, no further.
                    Value::Array(ids) if ids.iter().all(Value::is_number) => {
                        for id in ids {
                            if let Value::Number(n) = id {
                                seq.push(token_id(n));
                            }
                        }
                    }
                    _ => return Err("must be a string, token ids, or a list of them"),
                }
            }
        }
        _ => return Err("must be a string, token ids, or a list of them"),
    }
    Ok(())
}

fn token_id(n: &serde_json::Number) -> u32 {
    n.as_u64().map_or(0, |id| u32::try_from(id).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::tokenizer::TOKENS_PER_IMAGE;

    #[test]
    fn chat_counts_text_and_images() {
        let body = br#"{"model":"m","messages":[
            {"role":"system","content":"abcdefgh"},
            {"role":"user","content":[{"type":"text","text":"abc"},
                {"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}
        ],"max_tokens":5,"stream":true,"stream_options":{"include_usage":true}}"#;
        let r = parse(Endpoint::Chat, body).unwrap();
        // BOS, two messages of 4 + one word (and an image), the generation prompt.
        assert_eq!(r.prompt_tokens, 1 + (4 + 1) + (4 + 1 + TOKENS_PER_IMAGE) + 3);
        assert_eq!(r.images, 1);
        assert_eq!(r.max_tokens, Some(5));
        assert!(r.stream && r.include_usage);
        assert!(!r.continuous_usage);
        assert_eq!(r.model.as_deref(), Some("m"));
    }

    #[test]
    fn continuous_usage_needs_include_usage_as_in_vllm() {
        let with = |options: &str| {
            let body = format!(r#"{{"prompt":"x","stream":true,"stream_options":{options}}}"#);
            parse(Endpoint::Completions, body.as_bytes()).unwrap().continuous_usage
        };
        assert!(with(r#"{"include_usage":true,"continuous_usage_stats":true}"#));
        assert!(!with(r#"{"continuous_usage_stats":true}"#));
        assert!(!with(r#"{"include_usage":true,"continuous_usage_stats":false}"#));
        assert!(!with(r#"{"include_usage":true}"#));
    }

    #[test]
    fn completions_prompt_forms() {
        let r = parse(
            Endpoint::Completions,
            br#"{"prompt":"12345","max_completion_tokens":3,"max_tokens":9}"#,
        )
        .unwrap();
        assert_eq!(r.prompt_tokens, 1 + 5, "BOS and one token per digit");
        assert_eq!(r.max_tokens, Some(3));
        assert!(!r.stream);
        let r = parse(Endpoint::Completions, br#"{"prompt":[[1,2,3],"abcd",7]}"#).unwrap();
        assert_eq!(r.prompt_tokens, 3 + (1 + 1) + 1, "ids as given, BOS before each string");
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        for body in [
            &b"{not json"[..],
            br#"[]"#,
            br#"{"messages":"hi"}"#,
            br#"{"messages":[{"content":5}]}"#,
            br#"{"messages":[],"max_tokens":-1}"#,
            br#"{"messages":[],"max_tokens":0}"#,
            br#"{"messages":[],"stream":"yes"}"#,
            br#"{"prompt":"x"}"#,
            br#"{"messages":[{"role":7,"content":"hi"}]}"#,
            br#"{"messages":[],"max_tokens":2,"min_tokens":3}"#,
            br#"{"messages":[],"ignore_eos":"yes"}"#,
        ] {
            assert!(
                parse(Endpoint::Chat, body).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert!(parse(Endpoint::Completions, br#"{"prompt":{"a":1}}"#).is_err());
        assert!(parse(Endpoint::Completions, br#"{"messages":[]}"#).is_err());
    }

    #[test]
    fn output_length_fields() {
        let r = parse(
            Endpoint::Chat,
            br#"{"messages":[],"max_tokens":9,"min_tokens":4,"ignore_eos":true}"#,
        )
        .unwrap();
        assert_eq!((r.max_tokens, r.min_tokens, r.ignore_eos), (Some(9), 4, true));
        let r = parse(Endpoint::Chat, br#"{"messages":[]}"#).unwrap();
        assert_eq!((r.max_tokens, r.min_tokens, r.ignore_eos), (None, 0, false));
        // Without max_tokens, min_tokens is not checked against anything here.
        assert!(parse(Endpoint::Chat, br#"{"messages":[],"min_tokens":500}"#).is_ok());
    }

    #[test]
    fn tokenize_counts_match_generation_usage() {
        let chat =
            br#"{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hello there, 42!"}]}"#;
        let generated = parse(Endpoint::Chat, chat).unwrap();
        let tokenized = parse_tokenize(Flavor::Openai, chat).unwrap();
        assert_eq!(tokenized.tokens.count(), generated.prompt_tokens);
        assert_eq!(tokenized.tokens.ids().len() as u64, generated.prompt_tokens);
        assert_eq!(tokenized.tokens.ids()[0], BOS);
        assert_eq!(tokenized.tokens.blocks(), &generated.blocks[..]);

        let generated = parse(Endpoint::Completions, br#"{"prompt":"Hello there, 42!"}"#).unwrap();
        let cases: &[(Flavor, &[u8], u64)] = &[
            (
                Flavor::Openai,
                br#"{"prompt":"Hello there, 42!"}"#,
                generated.prompt_tokens,
            ),
            (
                Flavor::Openai,
                br#"{"prompt":"Hello there, 42!","add_special_tokens":false}"#,
                generated.prompt_tokens - 1,
            ),
            (
                Flavor::Openai,
                br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"add_generation_prompt":false}"#,
                1 + 4 + 1,
            ),
            (
                Flavor::LlamaServer,
                br#"{"content":"Hello there, 42!"}"#,
                generated.prompt_tokens - 1,
            ),
            (
                Flavor::LlamaServer,
                br#"{"content":"Hello there, 42!","add_special":true}"#,
                generated.prompt_tokens,
            ),
        ];
        for &(flavor, body, expected) in cases {
            let t = parse_tokenize(flavor, body).unwrap();
            assert_eq!(
                t.tokens.ids().len() as u64,
                expected,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert_eq!(
            generated.prompt_tokens,
            1 + 7,
            "BOS, Hello, ' there', ',', ' ', 4, 2, !"
        );
    }

    #[test]
    fn bad_tokenize_bodies_are_errors() {
        let cases: &[(Flavor, &[u8])] = &[
            (Flavor::Openai, b"{nope"),
            (Flavor::Openai, br#"{}"#),
            (Flavor::Openai, br#"{"prompt":5}"#),
            (Flavor::Openai, br#"{"prompt":"a","messages":[]}"#),
            (Flavor::Openai, br#"{"messages":"hi"}"#),
            (Flavor::Openai, br#"{"prompt":"a","add_special_tokens":"no"}"#),
            (Flavor::LlamaServer, br#"{"prompt":"a"}"#),
            (Flavor::LlamaServer, br#"{"content":[1,2]}"#),
        ];
        for &(flavor, body) in cases {
            assert!(
                parse_tokenize(flavor, body).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
