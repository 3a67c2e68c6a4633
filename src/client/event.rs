//! Decodes one SSE event of an OpenAI-style stream into the few facts a benchmark needs.
//!
//! Only the fields that matter are read (generated text present or not, finish, usage, an error
//! object, llama.cpp's `timings`); serde skips the rest without building a JSON tree.

use serde::Deserialize;
use std::borrow::Cow;

/// Token counts reported by the server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
}

/// llama.cpp's own speed figures, sent in its last chunk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize, serde::Serialize)]
pub struct ServerTimings {
    #[serde(default)]
    pub prompt_n: Option<f64>,
    #[serde(default)]
    pub prompt_per_second: Option<f64>,
    #[serde(default)]
    pub predicted_n: Option<f64>,
    #[serde(default)]
    pub predicted_per_second: Option<f64>,
}

/// What one event said.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventInfo {
    /// The event carried generated text (content, completion text or reasoning).
    pub has_text: bool,
    pub finished: bool,
    pub usage: Option<Usage>,
    pub error: Option<String>,
    pub timings: Option<ServerTimings>,
    /// The event was not valid UTF-8; it was read with U+FFFD in place of the bad bytes.
    pub invalid_utf8: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Done,
    Chunk(EventInfo),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed stream event: {0}")]
pub struct MalformedEvent(pub String);

#[derive(Deserialize)]
struct RawChunk {
    #[serde(default)]
    choices: Option<Choices>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<serde_json::Value>,
    #[serde(default)]
    timings: Option<ServerTimings>,
}

/// What the `choices` array says, folded as it is read: no list is built for each event.
#[derive(Default)]
struct Choices {
    has_text: bool,
    finished: bool,
}

impl<'de> Deserialize<'de> for Choices {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fold;
        impl<'de> serde::de::Visitor<'de> for Fold {
            type Value = Choices;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a sequence")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Choices::default();
                while let Some(choice) = seq.next_element::<RawChoice<'de>>()? {
                    if let Some(delta) = &choice.delta {
                        out.has_text |= non_empty(&delta.content)
                            || non_empty(&delta.reasoning_content)
                            || non_empty(&delta.reasoning);
                    }
                    out.has_text |= non_empty(&choice.text);
                    out.finished |= choice.finish_reason.is_some();
                }
                Ok(out)
            }
        }
        deserializer.deserialize_seq(Fold)
    }
}

#[derive(Deserialize)]
struct RawChoice<'a> {
    #[serde(default, borrow)]
    delta: Option<RawDelta<'a>>,
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct RawDelta<'a> {
    #[serde(default, borrow)]
    content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    reasoning: Option<Cow<'a, str>>,
}

fn non_empty(s: &Option<Cow<'_, str>>) -> bool {
    s.as_deref().is_some_and(|s| !s.is_empty())
}

/// Decodes the data of one SSE event.
pub fn decode_event(data: &[u8]) -> Result<Event, MalformedEvent> {
    let trimmed = data.trim_ascii();
    if trimmed == b"[DONE]" {
        return Ok(Event::Done);
    }
    let malformed = |e: serde_json::Error| {
        let shown = String::from_utf8_lossy(&trimmed[..trimmed.len().min(80)]).into_owned();
        MalformedEvent(format!("{e} in `{shown}`"))
    };
    // One UTF-8 check of the whole event, then a parse that trusts it: parsing the bytes would
    // check every string again, key by key.
    match std::str::from_utf8(trimmed) {
        Ok(text) => match serde_json::from_str::<RawChunk>(text) {
            Ok(raw) => Ok(Event::Chunk(chunk_info(raw))),
            Err(e) => Err(malformed(e)),
        },
        // Bad bytes inside otherwise sound JSON (a token's text cut mid-character): the event
        // is read with U+FFFD in their place so its text still counts, and flagged.
        // (Bad bytes only in a field that is skipped do not matter: the bytes parse as they are.)
        Err(_) => {
            let e = match serde_json::from_slice::<RawChunk>(trimmed) {
                Ok(raw) => return Ok(Event::Chunk(chunk_info(raw))),
                Err(e) => e,
            };
            let repaired = String::from_utf8_lossy(trimmed);
            let raw: RawChunk = serde_json::from_str(&repaired).map_err(|_| malformed(e))?;
            Ok(Event::Chunk(EventInfo {
                invalid_utf8: true,
                ..chunk_info(raw)
            }))
        }
    }
}

fn chunk_info(raw: RawChunk) -> EventInfo {
    let mut info = EventInfo {
        usage: raw.usage,
        timings: raw.timings,
        error: raw.error.map(|e| error_message(&e)),
        ..EventInfo::default()
    };
    if let Some(choices) = raw.choices {
        info.has_text = choices.has_text;
        info.finished = choices.finished;
    }
    info
}

/// The human-readable part of an OpenAI-style error value (`{"message": ...}` or a string).
pub fn error_message(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Object(map) => match map.get("message") {
            Some(serde_json::Value::String(s)) => s.clone(),
            _ => match map.get("error") {
                Some(inner) => error_message(inner),
                None => value.to_string(),
            },
        },
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(data: &str) -> EventInfo {
        match decode_event(data.as_bytes()).unwrap() {
            Event::Chunk(info) => info,
            Event::Done => panic!("unexpected [DONE]"),
        }
    }

    #[test]
    fn done_marker() {
        assert_eq!(decode_event(b"[DONE]").unwrap(), Event::Done);
        assert_eq!(decode_event(b" [DONE] ").unwrap(), Event::Done);
    }

    #[test]
    fn role_only_first_chunk_carries_no_text() {
        let info = chunk(r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#);
        assert!(!info.has_text);
        let info = chunk(r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":null}}]}"#);
        assert!(!info.has_text);
    }

    #[test]
    fn content_chunk_with_escapes() {
        let info = chunk(r#"{"choices":[{"delta":{"content":"a\"b\u00e9"},"finish_reason":null}],"usage":null}"#);
        assert!(info.has_text);
        assert!(!info.finished);
        assert_eq!(info.usage, None);
    }

    #[test]
    fn usage_chunk_with_empty_choices() {
        let info = chunk(r#"{"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}"#);
        assert!(!info.has_text);
        assert_eq!(
            info.usage,
            Some(Usage {
                prompt_tokens: 12,
                completion_tokens: 5
            })
        );
    }

    #[test]
    fn completions_text_and_finish() {
        let info = chunk(
            r#"{"choices":[{"text":"hi","finish_reason":"length"}],"timings":{"prompt_per_second":100.5,"predicted_per_second":30.0}}"#,
        );
        assert!(info.has_text && info.finished);
        assert_eq!(info.timings.unwrap().predicted_per_second, Some(30.0));
    }

    #[test]
    fn reasoning_counts_as_generated_text() {
        assert!(chunk(r#"{"choices":[{"delta":{"reasoning_content":"hmm"}}]}"#).has_text);
    }

    #[test]
    fn error_object_inside_stream() {
        let info = chunk(r#"{"error":{"message":"out of memory","type":"server_error","code":500}}"#);
        assert_eq!(info.error.as_deref(), Some("out of memory"));
    }

    #[test]
    fn malformed_json_is_an_error() {
        assert!(decode_event(b"{not json").is_err());
        assert!(decode_event(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn invalid_utf8_in_text_is_flagged_but_still_text() {
        let mut data = br#"{"choices":[{"delta":{"content":"ab"}}]}"#.to_vec();
        let at = data.windows(2).position(|w| w == b"ab").unwrap();
        data.insert(at, 0x80);
        let Event::Chunk(info) = decode_event(&data).unwrap() else {
            panic!("a chunk")
        };
        assert!(info.invalid_utf8 && info.has_text);
        assert!(!chunk(r#"{"choices":[{"delta":{"content":"é"}}]}"#).invalid_utf8);
    }
}
