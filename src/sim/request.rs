//! Parsing generation requests.
//!
//! The simulator needs very little from a request: which model, how many
//! prompt tokens (estimated, since there is no tokenizer), how many output
//! tokens, whether to stream, and whether usage was asked for. Anything a
//! client sends is untrusted: malformed input becomes a 400 message, never a
//! panic.

use serde::Deserialize;
use serde_json::Value;

use super::chunks::Endpoint;

/// Prompt tokens charged for each image part, a typical vision-encoder cost.
pub(crate) const TOKENS_PER_IMAGE: u64 = 256;

/// What the simulator takes from a generation request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GenRequest {
    pub model: Option<String>,
    pub prompt_tokens: u64,
    pub images: u64,
    /// `max_completion_tokens`, else `max_tokens` (vLLM's precedence).
    pub max_tokens: Option<u64>,
    pub stream: bool,
    pub include_usage: bool,
    /// vLLM's `stream_options.continuous_usage_stats`: usage in every chunk. As in vLLM, it
    /// takes effect only together with `include_usage`.
    pub continuous_usage: bool,
    /// llama.cpp's `cache_prompt` (default true): may the server reuse a cached prompt?
    pub cache_prompt: bool,
    /// A hash of the prompt's text, to recognise a prompt seen before.
    pub prompt_fingerprint: u64,
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
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    #[serde(default)]
    cache_prompt: Option<bool>,
}

#[derive(Deserialize)]
struct RawMessage {
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

/// Text and images found in a prompt.
#[derive(Default)]
struct PromptSize {
    /// Hash of the text seen so far, in order.
    fingerprint: std::collections::hash_map::DefaultHasher,
    chars: u64,
    /// Tokens given directly (completions prompts made of token ids).
    tokens: u64,
    images: u64,
}

impl PromptSize {
    /// ceil(chars / 4) for the text, plus direct tokens and image tokens.
    fn tokens(&self) -> u64 {
        self.chars
            .div_ceil(4)
            .saturating_add(self.tokens)
            .saturating_add(self.images.saturating_mul(TOKENS_PER_IMAGE))
    }

    fn add_text(&mut self, s: &str) {
        std::hash::Hash::hash(s, &mut self.fingerprint);
        self.chars = self.chars.saturating_add(s.chars().count() as u64);
    }
}

/// Parses a request body for `endpoint`; the error is a client-facing message.
pub(crate) fn parse(endpoint: Endpoint, body: &[u8]) -> Result<GenRequest, String> {
    let raw: RawRequest = serde_json::from_slice(body).map_err(|e| format!("invalid JSON body: {e}"))?;
    let mut size = PromptSize::default();
    match endpoint {
        Endpoint::Chat => {
            let messages = raw.messages.ok_or("`messages` is required")?;
            for (i, message) in messages.iter().enumerate() {
                add_chat_content(&mut size, message.content.as_ref())
                    .map_err(|e| format!("messages[{i}].content: {e}"))?;
            }
        }
        Endpoint::Completions => {
            let prompt = raw.prompt.ok_or("`prompt` is required")?;
            add_completion_prompt(&mut size, &prompt).map_err(|e| format!("prompt: {e}"))?;
        }
    }
    let max_tokens = raw.max_completion_tokens.or(raw.max_tokens);
    if max_tokens == Some(0) {
        return Err("max_tokens must be at least 1".into());
    }
    let options = raw.stream_options.unwrap_or_default();
    let include_usage = options.include_usage.unwrap_or(false);
    Ok(GenRequest {
        model: raw.model,
        prompt_tokens: size.tokens(),
        images: size.images,
        max_tokens,
        stream: raw.stream.unwrap_or(false),
        include_usage,
        continuous_usage: include_usage && options.continuous_usage_stats.unwrap_or(false),
        cache_prompt: raw.cache_prompt.unwrap_or(true),
        prompt_fingerprint: std::hash::Hasher::finish(&size.fingerprint),
    })
}

/// A chat message's content: a string, an array of typed parts, or null.
fn add_chat_content(size: &mut PromptSize, content: Option<&Value>) -> Result<(), &'static str> {
    match content {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) => {
            size.add_text(s);
            Ok(())
        }
        Some(Value::Array(parts)) => {
            for part in parts {
                match part.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        if let Some(text) = part.get("text").and_then(Value::as_str) {
                            size.add_text(text);
                        }
                    }
                    Some("image_url" | "input_image" | "image") => {
                        size.images = size.images.saturating_add(1);
                    }
                    // Audio, files, ...: not modelled, but not an error either.
                    _ => {}
                }
            }
            Ok(())
        }
        Some(_) => Err("must be a string, an array of parts, or null"),
    }
}

/// A completions prompt: a string, token ids, or a list of either.
fn add_completion_prompt(size: &mut PromptSize, prompt: &Value) -> Result<(), &'static str> {
    match prompt {
        Value::String(s) => size.add_text(s),
        Value::Number(_) => size.tokens = size.tokens.saturating_add(1),
        Value::Array(items) => {
            for item in items {
                match item {
                    Value::String(_) | Value::Number(_) => add_completion_prompt(size, item)?,
                    // A batch of token-id lists: one level deeper, no further.
                    Value::Array(ids) if ids.iter().all(Value::is_number) => {
                        size.tokens = size.tokens.saturating_add(ids.len() as u64);
                    }
                    _ => return Err("must be a string, token ids, or a list of them"),
                }
            }
        }
        _ => return Err("must be a string, token ids, or a list of them"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_counts_text_and_images() {
        let body = br#"{"model":"m","messages":[
            {"role":"system","content":"abcdefgh"},
            {"role":"user","content":[{"type":"text","text":"abc"},
                {"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}
        ],"max_tokens":5,"stream":true,"stream_options":{"include_usage":true}}"#;
        let r = parse(Endpoint::Chat, body).unwrap();
        // 11 chars -> 3 tokens, plus one image.
        assert_eq!(r.prompt_tokens, 3 + TOKENS_PER_IMAGE);
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
        assert_eq!(r.prompt_tokens, 2);
        assert_eq!(r.max_tokens, Some(3));
        assert!(!r.stream);
        let r = parse(Endpoint::Completions, br#"{"prompt":[[1,2,3],"abcd",7]}"#).unwrap();
        assert_eq!(r.prompt_tokens, 5);
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
}
