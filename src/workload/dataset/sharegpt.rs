//! ShareGPT: one JSON array of conversations,
//! `[{"conversations": [{"from": "human", "value": …}, {"from": "gpt", "value": …}, …]}, …]`.
//!
//! The prompt is the first human turn; the output length is the estimated length of the next
//! gpt turn, as vLLM's ShareGPT benchmark does with its tokenizer. Lenient the way users' files
//! are: `conversation` or `messages` for the list, `user`/`assistant` (and other assistants'
//! names) in `from`, or `role`/`content` turns; `image`/`images` on the conversation (LLaVA).
//!
//! Streaming: serde_json's reader-based deserializer walks the array with a `SeqAccess`, taking
//! each element as raw JSON text and converting it at once, so memory holds one element at a
//! time plus the kept rows. An element with the wrong shape is a skipped row; a syntax error
//! ends the load (the array's structure is lost past it).

use super::{estimate_tokens, json_reason, Content, DatasetRow, Keeper, OneOrMany, RowPrompt};
use serde::de::{Deserializer as _, IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::fmt;
use std::io::BufRead;

#[derive(Deserialize)]
struct Entry {
    #[serde(alias = "conversation", alias = "messages")]
    conversations: Option<Exchange>,
    image: Option<OneOrMany>,
    images: Option<OneOrMany>,
}

#[derive(Deserialize)]
struct Turn {
    from: Option<String>,
    role: Option<String>,
    value: Option<Content>,
    content: Option<Content>,
}

/// The two turns a row needs, taken from the list as it is parsed: turns after the reply are
/// skipped without keeping their text.
#[derive(Default)]
struct Exchange {
    prompt: Option<Turn>,
    reply: Option<Turn>,
}

impl<'de> Deserialize<'de> for Exchange {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Turns;
        impl<'de> Visitor<'de> for Turns {
            type Value = Exchange;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of turns")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Exchange, A::Error> {
                let mut exchange = Exchange::default();
                while let Some(turn) = seq.next_element::<Turn>()? {
                    if exchange.prompt.is_none() {
                        if turn.is_human() {
                            exchange.prompt = Some(turn);
                        }
                    } else if turn.is_gpt() {
                        exchange.reply = Some(turn);
                        break;
                    }
                }
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(exchange)
            }
        }
        d.deserialize_seq(Turns)
    }
}

impl Turn {
    fn speaker(&self) -> Option<&str> {
        self.from.as_deref().or(self.role.as_deref())
    }

    fn is_human(&self) -> bool {
        self.speaker()
            .is_some_and(|s| s.eq_ignore_ascii_case("human") || s.eq_ignore_ascii_case("user"))
    }

    fn is_gpt(&self) -> bool {
        self.speaker().is_some_and(|s| {
            ["gpt", "assistant", "chatgpt", "bard", "bing", "model"]
                .iter()
                .any(|name| s.eq_ignore_ascii_case(name))
        })
    }

    fn text(self, images: &mut Vec<String>) -> String {
        self.value
            .or(self.content)
            .map(|c| c.into_text(images))
            .unwrap_or_default()
    }
}

/// Reads the array from `reader` into `keep`; `Err` is the reason the whole file is unusable.
pub(super) fn read(reader: &mut impl BufRead, keep: &mut Keeper) -> Result<(), String> {
    let bom = reader
        .fill_buf()
        .map_err(|e| e.to_string())?
        .starts_with(b"\xEF\xBB\xBF");
    if bom {
        reader.consume(3);
    }
    let mut de = serde_json::Deserializer::from_reader(reader);
    let mut elements = Elements {
        keep,
        index: 0,
        stopped: false,
    };
    let walked = (&mut de).deserialize_seq(&mut elements);
    if elements.stopped {
        return Ok(()); // the row limit was reached: the rest is not read
    }
    let index = elements.index;
    walked.map_err(|e| match e.classify() {
        serde_json::error::Category::Data => format!("not a ShareGPT file (a JSON array of conversations): {e}"),
        _ => format!("invalid JSON after {index} array elements: {e}"),
    })?;
    de.end().map_err(|e| format!("invalid JSON after the array: {e}"))
}

struct Elements<'k, 'o> {
    keep: &'k mut Keeper<'o>,
    index: u64,
    stopped: bool,
}

impl<'de> Visitor<'de> for &mut Elements<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON array of conversations")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(raw) = seq.next_element::<Box<RawValue>>()? {
            match parse_element(raw.get(), self.index) {
                Ok(row) => self.keep.offer(row),
                Err(reason) => self.keep.bad(format!("element {}: {reason}", self.index)),
            }
            self.index += 1;
            if self.keep.full() {
                self.stopped = true;
                return Ok(());
            }
        }
        Ok(())
    }
}

/// One element of the array; `Err` is the reason the row is skipped.
fn parse_element(raw: &str, row: u64) -> Result<DatasetRow, String> {
    if !raw.starts_with('{') {
        return Err("not a JSON object".into());
    }
    let entry: Entry = serde_json::from_str(raw).map_err(|e| json_reason(&e))?;
    let exchange = entry.conversations.ok_or("no `conversations`")?;
    let prompt = exchange.prompt.ok_or("no human turn")?;
    let reply = exchange.reply.ok_or("no gpt turn after the first human turn")?;
    let mut images = Vec::new();
    let reply = reply.text(&mut Vec::new());
    let prompt = prompt.text(&mut images);
    if prompt.is_empty() {
        return Err("the first human turn is empty".into());
    }
    if let Some(image) = entry.image {
        image.push_into(&mut images);
    }
    if let Some(more) = entry.images {
        more.push_into(&mut images);
    }
    Ok(DatasetRow {
        row,
        prompt: RowPrompt::Text(prompt),
        // At least one token: an empty reply would ask for max_tokens = 0.
        output_tokens: Some(estimate_tokens(&reply).max(1)),
        images,
        timestamp_ms: None,
    })
}
