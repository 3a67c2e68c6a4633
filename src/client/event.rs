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
    /// `prompt_tokens_details` (vLLM, OpenAI): prompt tokens served from the prefix cache.
    #[serde(default)]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
    /// `completion_tokens_details` (OpenAI, vLLM): reasoning tokens among the completion tokens.
    #[serde(default)]
    pub completion_tokens_details: Option<CompletionTokensDetails>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct PromptTokensDetails {
    #[serde(default)]
    pub cached_tokens: Option<u64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct CompletionTokensDetails {
    #[serde(default)]
    pub reasoning_tokens: Option<u64>,
}

impl Usage {
    pub fn new(prompt_tokens: u64, completion_tokens: u64) -> Self {
        Self {
            prompt_tokens,
            completion_tokens,
            ..Self::default()
        }
    }

    pub fn cached_tokens(&self) -> Option<u64> {
        self.prompt_tokens_details.and_then(|d| d.cached_tokens)
    }

    pub fn reasoning_tokens(&self) -> Option<u64> {
        self.completion_tokens_details.and_then(|d| d.reasoning_tokens)
    }
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

/// Longest `finish_reason` kept (in characters): it is server text, stored and shown as is.
pub const FINISH_REASON_LIMIT: usize = 32;

/// What one event said. Text is borrowed from the event's bytes where it has no escapes, so
/// reading an event allocates nothing unless the server escaped characters in it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventInfo<'a> {
    /// The event carried generated text (content, completion text or reasoning).
    pub has_text: bool,
    /// The event carried reasoning text (`delta.reasoning_content` or `delta.reasoning`).
    pub has_reasoning: bool,
    /// The event carried answer text (`delta.content`, or a completion's `text`).
    pub has_answer: bool,
    /// The answer text of the first choice that had some.
    pub answer: Option<Cow<'a, str>>,
    pub finished: bool,
    /// The last `finish_reason` of the event's choices, as sent.
    pub finish_reason: Option<Cow<'a, str>>,
    pub usage: Option<Usage>,
    pub error: Option<String>,
    pub timings: Option<ServerTimings>,
    /// The event was not valid UTF-8; it was read with U+FFFD in place of the bad bytes.
    pub invalid_utf8: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event<'a> {
    Done,
    Chunk(EventInfo<'a>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed stream event: {0}")]
pub struct MalformedEvent(pub String);

#[derive(Deserialize)]
struct RawChunk<'a> {
    #[serde(default, borrow)]
    choices: Option<Choices<'a>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<serde_json::Value>,
    #[serde(default)]
    timings: Option<ServerTimings>,
}

/// What the `choices` array says, folded as it is read: no list is built for each event.
#[derive(Default)]
struct Choices<'a> {
    has_reasoning: bool,
    has_answer: bool,
    answer: Option<Cow<'a, str>>,
    finished: bool,
    finish_reason: Option<Cow<'a, str>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Choices<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fold<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Fold<'a> {
            type Value = Choices<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a sequence")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Choices::default();
                while let Some(choice) = seq.next_element::<RawChoice<'a>>()? {
                    let mut answer = None;
                    if let Some(delta) = choice.delta {
                        out.has_reasoning |= non_empty(&delta.reasoning_content) || non_empty(&delta.reasoning);
                        answer = delta.content.filter(|s| !s.0.is_empty());
                    }
                    let answer = answer.or(choice.text.filter(|s| !s.0.is_empty()));
                    if answer.is_some() {
                        out.has_answer = true;
                        if out.answer.is_none() {
                            out.answer = answer.map(|a| a.0);
                        }
                    }
                    if choice.finish_reason.is_some() {
                        out.finished = true;
                        out.finish_reason = choice.finish_reason.map(|f| f.0);
                    }
                }
                Ok(out)
            }
        }
        deserializer.deserialize_seq(Fold(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
struct RawChoice<'a> {
    #[serde(default, borrow)]
    delta: Option<RawDelta<'a>>,
    #[serde(default, borrow)]
    text: Option<Text<'a>>,
    #[serde(default, borrow)]
    finish_reason: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct RawDelta<'a> {
    #[serde(default, borrow)]
    content: Option<Text<'a>>,
    #[serde(default, borrow)]
    reasoning_content: Option<Text<'a>>,
    #[serde(default, borrow)]
    reasoning: Option<Text<'a>>,
}

/// A JSON string borrowed from the event where it has no escapes (serde's `Cow<str>` inside
/// an `Option` always copies).
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visit<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(Visit(std::marker::PhantomData))
    }
}

fn non_empty(s: &Option<Text<'_>>) -> bool {
    s.as_ref().is_some_and(|s| !s.0.is_empty())
}

/// Decodes the data of one SSE event.
pub fn decode_event(data: &[u8]) -> Result<Event<'_>, MalformedEvent> {
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
            let info = chunk_info(raw);
            // The repaired text is local: what the event says is kept as owned text.
            Ok(Event::Chunk(EventInfo {
                invalid_utf8: true,
                answer: info.answer.map(|a| Cow::Owned(a.into_owned())),
                finish_reason: info.finish_reason.map(|f| Cow::Owned(f.into_owned())),
                ..info
            }))
        }
    }
}

fn chunk_info(raw: RawChunk<'_>) -> EventInfo<'_> {
    let mut info = EventInfo {
        usage: raw.usage,
        timings: raw.timings,
        error: raw.error.map(|e| error_message(&e)),
        ..EventInfo::default()
    };
    if let Some(choices) = raw.choices {
        info.has_reasoning = choices.has_reasoning;
        info.has_answer = choices.has_answer;
        info.has_text = choices.has_reasoning || choices.has_answer;
        info.answer = choices.answer;
        info.finished = choices.finished;
        info.finish_reason = choices.finish_reason;
    }
    info
}

/// A `finish_reason` fit to keep and show: at most [`FINISH_REASON_LIMIT`] characters, control
/// characters replaced (it is untrusted server text).
pub fn bounded_finish_reason(reason: &str) -> String {
    reason
        .chars()
        .take(FINISH_REASON_LIMIT)
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect()
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

    fn chunk(data: &str) -> EventInfo<'_> {
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
        assert_eq!(info.usage, Some(Usage::new(12, 5)));
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

    #[test]
    fn what_each_event_says() {
        struct Case {
            name: &'static str,
            data: &'static str,
            reasoning: bool,
            answer: Option<&'static str>,
            finish_reason: Option<&'static str>,
            cached: Option<u64>,
            reasoning_tokens: Option<u64>,
        }
        let none = Case {
            name: "",
            data: "",
            reasoning: false,
            answer: None,
            finish_reason: None,
            cached: None,
            reasoning_tokens: None,
        };
        let cases = [
            Case {
                name: "reasoning_content (vLLM, DeepSeek)",
                data: r#"{"choices":[{"delta":{"reasoning_content":"hmm"}}]}"#,
                reasoning: true,
                ..none
            },
            Case {
                name: "reasoning (OpenRouter, newer vLLM)",
                data: r#"{"choices":[{"delta":{"reasoning":"so"}}]}"#,
                reasoning: true,
                ..none
            },
            Case {
                name: "empty reasoning is none",
                data: r#"{"choices":[{"delta":{"reasoning_content":"","content":null}}]}"#,
                ..none
            },
            Case {
                name: "content",
                data: r#"{"choices":[{"delta":{"content":"Hi"}}]}"#,
                answer: Some("Hi"),
                ..none
            },
            Case {
                name: "content with escapes",
                data: r#"{"choices":[{"delta":{"content":"a\nb\u00e9"}}]}"#,
                answer: Some("a\nb\u{e9}"),
                ..none
            },
            Case {
                name: "completion text",
                data: r#"{"choices":[{"text":"yo","finish_reason":null}]}"#,
                answer: Some("yo"),
                ..none
            },
            Case {
                name: "both in one delta",
                data: r#"{"choices":[{"delta":{"reasoning_content":"r","content":"a"}}]}"#,
                reasoning: true,
                answer: Some("a"),
                ..none
            },
            Case {
                name: "finish_reason",
                data: r#"{"choices":[{"delta":{},"finish_reason":"length"}]}"#,
                finish_reason: Some("length"),
                ..none
            },
            Case {
                name: "cached_tokens",
                data: r#"{"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":1,"prompt_tokens_details":{"cached_tokens":8}}}"#,
                cached: Some(8),
                ..none
            },
            Case {
                name: "null details",
                data: r#"{"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":1,"prompt_tokens_details":null,"completion_tokens_details":null}}"#,
                ..none
            },
            Case {
                name: "reasoning_tokens",
                data: r#"{"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":30,"completion_tokens_details":{"reasoning_tokens":20}}}"#,
                reasoning_tokens: Some(20),
                ..none
            },
        ];
        for case in cases {
            let info = chunk(case.data);
            assert_eq!(info.has_reasoning, case.reasoning, "{}", case.name);
            assert_eq!(info.has_answer, case.answer.is_some(), "{}", case.name);
            assert_eq!(info.has_text, case.reasoning || case.answer.is_some(), "{}", case.name);
            assert_eq!(info.answer.as_deref(), case.answer, "{}", case.name);
            assert_eq!(info.finish_reason.as_deref(), case.finish_reason, "{}", case.name);
            assert_eq!(info.finished, case.finish_reason.is_some(), "{}", case.name);
            assert_eq!(info.usage.and_then(|u| u.cached_tokens()), case.cached, "{}", case.name);
            assert_eq!(
                info.usage.and_then(|u| u.reasoning_tokens()),
                case.reasoning_tokens,
                "{}",
                case.name
            );
        }
    }

    #[test]
    fn unescaped_text_is_borrowed() {
        let data = br#"{"choices":[{"delta":{"content":"plain"},"finish_reason":"stop"}]}"#;
        let Event::Chunk(info) = decode_event(data).unwrap() else {
            panic!("a chunk")
        };
        assert!(matches!(info.answer, Some(Cow::Borrowed("plain"))));
        assert!(matches!(info.finish_reason, Some(Cow::Borrowed("stop"))));
    }

    #[test]
    fn a_huge_finish_reason_is_kept_bounded() {
        let data = format!(
            r#"{{"choices":[{{"finish_reason":"{}\u0007x"}}]}}"#,
            "é".repeat(100_000)
        );
        let info = chunk(&data);
        assert!(info.finished);
        let kept = bounded_finish_reason(info.finish_reason.as_deref().unwrap());
        assert_eq!(kept.chars().count(), FINISH_REASON_LIMIT);
        assert_eq!(bounded_finish_reason("stop\u{7}"), "stop\u{FFFD}");
    }
}
