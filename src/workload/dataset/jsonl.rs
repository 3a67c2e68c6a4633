//! Single-turn JSONL: one object per line with `prompt` or `text` (a string) or `messages`
//! (OpenAI chat messages, content as a string or parts), and optionally `output_tokens` /
//! `output_length` / `max_tokens`, `image` / `images`, `timestamp` (ms).

use super::{json_reason, ChatMessage, Content, DatasetRow, OneOrMany, RowPrompt};
use serde::Deserialize;

#[derive(Deserialize)]
struct Line {
    prompt: Option<String>,
    text: Option<String>,
    messages: Option<Vec<Message>>,
    output_tokens: Option<serde_json::Value>,
    output_length: Option<serde_json::Value>,
    max_tokens: Option<serde_json::Value>,
    image: Option<OneOrMany>,
    images: Option<OneOrMany>,
    timestamp: Option<f64>,
}

#[derive(Deserialize)]
struct Message {
    role: Option<String>,
    content: Option<Content>,
}

/// One non-blank line; `Err` is the reason the row is skipped (without the line number).
pub(super) fn parse_line(line: &[u8], row: u64) -> Result<DatasetRow, String> {
    if line.first() != Some(&b'{') {
        return Err("not a JSON object".into());
    }
    let line: Line = serde_json::from_slice(line).map_err(|e| json_reason(&e))?;
    let mut images = Vec::new();
    let prompt = if let Some(text) = line.prompt.or(line.text) {
        if text.is_empty() {
            return Err("empty prompt".into());
        }
        RowPrompt::Text(text)
    } else if let Some(messages) = line.messages {
        if messages.is_empty() {
            return Err("empty `messages`".into());
        }
        let mut out = Vec::with_capacity(messages.len());
        for (i, m) in messages.into_iter().enumerate() {
            let content = m.content.ok_or_else(|| format!("message {i} has no `content`"))?;
            out.push(ChatMessage {
                role: m.role.unwrap_or_else(|| "user".into()),
                content: content.into_text(&mut images),
            });
        }
        if out.iter().all(|m| m.content.is_empty()) && images.is_empty() {
            return Err("`messages` have no text".into());
        }
        RowPrompt::Messages(out)
    } else {
        return Err("no `prompt`, `text` or `messages` field".into());
    };
    let mut output_tokens = None;
    for (name, value) in [
        ("output_tokens", line.output_tokens),
        ("output_length", line.output_length),
        ("max_tokens", line.max_tokens),
    ] {
        let Some(value) = value else { continue };
        match value.as_u64() {
            Some(n) if n > 0 => {
                output_tokens.get_or_insert(n);
            }
            _ if value.is_null() => {}
            _ => return Err(format!("`{name}` is {value}, not a positive integer")),
        }
    }
    if let Some(image) = line.image {
        image.push_into(&mut images);
    }
    if let Some(more) = line.images {
        more.push_into(&mut images);
    }
    if let Some(t) = line.timestamp {
        if !(t >= 0.0 && t.is_finite()) {
            return Err(format!("`timestamp` is {t}, not a time in ms ≥ 0"));
        }
    }
    Ok(DatasetRow {
        row,
        prompt,
        output_tokens,
        images,
        timestamp_ms: line.timestamp,
    })
}
