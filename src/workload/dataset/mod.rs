//! Prompts from a dataset file instead of generated filler: ShareGPT JSON, single-turn JSONL,
//! and Mooncake traces (block hashes instead of text).
//!
//! [`load`] reads the file once, in bounded memory apart from the rows it keeps: JSONL line by
//! line through one reused buffer, the ShareGPT array element by element with serde_json's
//! streaming deserializer (never a `serde_json::Value` of the whole file). A row that cannot be
//! used (not JSON, no prompt, a Mooncake row whose blocks do not match its length) is skipped and
//! counted, and the first reason is kept for the summary; a row outside the `--dataset-min-isl` /
//! `--dataset-max-isl` window is counted apart, as `filtered`.
//!
//! Prompt lengths here are estimates ([`estimate_tokens`]: a token per 4 characters), not a
//! tokenizer's count; Mooncake rows carry their real `input_length`.
//!
//! Throughput (`cargo bench --bench dataset_load`, release, one core of a busy 2-core machine;
//! peak RSS of a process doing only that load):
//!
//! | file | MB/s | rows/s | peak RSS, all rows kept | peak RSS, ~4% kept by an ISL filter |
//! | --- | --- | --- | --- | --- |
//! | JSONL, 200 MB, 114k prompts | 220–290 | 125–165k | 203 MB (the prompts) | 5 MB |
//! | ShareGPT, 200 MB, 44k conversations | 50–60 | 11–13k | 55 MB | 8 MB |
//! | Mooncake, 50 MB, 228k traces | 120–135 | 550–615k | 78 MB | 3 MB |
//!
//! ShareGPT is slower because serde_json reads a `Read` a byte at a time and each element is
//! scanned twice (as raw text, then into its fields): the price of streaming one array.
//!
//! Row numbers: [`DatasetRow::row`] is 0-based (the line index in a JSONL file, blank lines
//! included, or the element index of the ShareGPT array); skip reasons say `line N` 1-based, as
//! editors count, and `element N` 0-based, as `row` does.

mod jsonl;
mod mooncake;
mod sharegpt;

use serde::Deserialize;
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The three dataset layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DatasetFormat {
    /// A JSON array of `{"conversations": [{"from": "human", "value": …}, {"from": "gpt", …}]}`.
    ShareGpt,
    /// One JSON object per line with `prompt`, `text` or `messages`.
    Jsonl,
    /// Mooncake trace lines: `{"timestamp", "input_length", "output_length", "hash_ids"}`.
    Mooncake,
}

impl DatasetFormat {
    pub fn name(self) -> &'static str {
        match self {
            DatasetFormat::ShareGpt => "sharegpt",
            DatasetFormat::Jsonl => "jsonl",
            DatasetFormat::Mooncake => "mooncake",
        }
    }

    /// `sharegpt`, `jsonl` or `mooncake` (any case).
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "sharegpt" => Ok(DatasetFormat::ShareGpt),
            "jsonl" => Ok(DatasetFormat::Jsonl),
            "mooncake" => Ok(DatasetFormat::Mooncake),
            _ => Err(format!(
                "unknown dataset format {s:?}; expected sharegpt, jsonl or mooncake"
            )),
        }
    }
}

impl fmt::Display for DatasetFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One chat message of a `messages` prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    pub role: String,
    /// The text; of a content given as parts, the text parts joined with newlines.
    pub content: String,
}

/// What a row asks the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowPrompt {
    Text(String),
    /// OpenAI-style messages, in order.
    Messages(Vec<ChatMessage>),
    /// Mooncake: `input_length` tokens in blocks of [`MOONCAKE_BLOCK`] tokens, one hash per block
    /// (equal hashes are shared prefixes).
    Blocks {
        input_length: u64,
        hash_ids: Vec<u64>,
    },
}

impl RowPrompt {
    /// The prompt's length in tokens: estimated for text ([`estimate_tokens`], summed over
    /// messages), `input_length` for blocks. The filters use it.
    pub fn estimated_tokens(&self) -> u64 {
        match self {
            RowPrompt::Text(text) => estimate_tokens(text),
            RowPrompt::Messages(messages) => messages.iter().map(|m| estimate_tokens(&m.content)).sum(),
            RowPrompt::Blocks { input_length, .. } => *input_length,
        }
    }
}

/// Tokens per Mooncake block.
pub const MOONCAKE_BLOCK: u64 = 512;

/// One usable row.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetRow {
    /// 0-based index of the row in the file: the line index for JSONL (blank lines counted),
    /// the element index for ShareGPT. For joining results back to the dataset.
    pub row: u64,
    pub prompt: RowPrompt,
    /// Tokens to ask for: given by the row (JSONL, Mooncake) or estimated from the reply
    /// (ShareGPT); `None` when the row does not say.
    pub output_tokens: Option<u64>,
    /// Image paths (relative ones resolved against the dataset file's folder), URLs or data
    /// URLs, in the row's order. Not opened here.
    pub images: Vec<String>,
    /// When to send the row, in ms from the start of the trace, where the row says.
    pub timestamp_ms: Option<f64>,
}

/// A loaded dataset.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub format: DatasetFormat,
    pub rows: Vec<DatasetRow>,
    /// Rows that could not be used.
    pub skipped: u64,
    /// The first of those rows' reasons, e.g. "line 17: no `prompt`, `text` or `messages` field".
    pub first_skip_reason: Option<String>,
    /// Good rows left out by the ISL filters (not counted in `skipped`).
    pub filtered: u64,
    /// Bytes read from the file (less than its size when `max_rows` stopped the reading).
    pub bytes: u64,
    pub load_time: Duration,
}

/// How to read a dataset.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `None`: detect from the content (see [`detect_format`]).
    pub format: Option<DatasetFormat>,
    /// Keep rows whose prompt has at least this many (estimated) tokens.
    pub min_isl: Option<u64>,
    /// Keep rows whose prompt has at most this many (estimated) tokens.
    pub max_isl: Option<u64>,
    /// Stop reading after this many kept rows (for runs that take rows in file order; a run that
    /// shuffles must read them all). At least 1.
    pub max_rows: Option<u64>,
}

/// The estimated number of tokens in `text`: ⌈characters / 4⌉. An estimate (English text runs
/// about 4 characters a token in GPT-style tokenizers; code and other languages differ), used for
/// the ISL filters and for ShareGPT's output lengths, where vLLM would run the tokenizer.
pub fn estimate_tokens(text: &str) -> u64 {
    // Characters = bytes that do not continue a UTF-8 sequence.
    let chars = text.bytes().filter(|&b| (b & 0xC0) != 0x80).count() as u64;
    chars.div_ceil(4)
}

/// Reads the dataset at `path`. Every error is one line naming the file.
pub fn load(path: &Path, opts: &LoadOptions) -> Result<Dataset, String> {
    let started = Instant::now();
    let shown = path.display();
    if opts.max_rows == Some(0) {
        return Err(format!("dataset {shown}: the row limit must be at least 1"));
    }
    if let (Some(min), Some(max)) = (opts.min_isl, opts.max_isl) {
        if min > max {
            return Err(format!(
                "dataset {shown}: --dataset-min-isl {min} is above --dataset-max-isl {max}"
            ));
        }
    }
    let open = || -> Result<File, String> {
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => {
                return Err(format!(
                    "dataset {shown} is a directory; give a ShareGPT .json or a .jsonl file"
                ))
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(format!("dataset {shown} does not exist"))
            }
            Err(e) => return Err(format!("cannot read dataset {shown}: {e}")),
        }
        File::open(path).map_err(|e| format!("cannot read dataset {shown}: {e}"))
    };
    let detected = detect_format(open()?).map_err(|e| format!("cannot read dataset {shown}: {e}"))?;
    let Some(detected) = detected else {
        return Err(format!("dataset {shown} is empty"));
    };
    let format = opts.format.unwrap_or(detected);

    let counter = Counting {
        inner: open()?,
        bytes: 0,
    };
    let mut reader = BufReader::with_capacity(1 << 20, counter);
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut keep = Keeper::new(opts, dir);
    let read = match format {
        DatasetFormat::ShareGpt => sharegpt::read(&mut reader, &mut keep),
        DatasetFormat::Jsonl => read_lines(&mut reader, &mut keep, jsonl::parse_line),
        DatasetFormat::Mooncake => read_lines(&mut reader, &mut keep, mooncake::parse_line),
    };
    read.map_err(|e| format!("dataset {shown}: {e}"))?;

    if keep.rows.is_empty() {
        let (skipped, filtered) = (keep.skipped, keep.filtered);
        return Err(match keep.first_skip_reason {
            Some(reason) if filtered == 0 => {
                format!("dataset {shown} has no usable {format} row: {skipped} bad, the first at {reason}")
            }
            Some(reason) => format!(
                "dataset {shown}: no row left: {filtered} outside --dataset-min-isl/--dataset-max-isl, {skipped} bad (first at {reason})"
            ),
            None if filtered > 0 => format!(
                "dataset {shown}: all {filtered} rows are outside --dataset-min-isl/--dataset-max-isl ({}..{} estimated tokens)",
                opts.min_isl.unwrap_or(0),
                opts.max_isl.map_or("".into(), |m| m.to_string())
            ),
            None => format!("dataset {shown} has no {format} rows"),
        });
    }
    Ok(Dataset {
        format,
        rows: keep.rows,
        skipped: keep.skipped,
        first_skip_reason: keep.first_skip_reason,
        filtered: keep.filtered,
        bytes: reader.get_ref().bytes,
        load_time: started.elapsed(),
    })
}

/// The format from the content: the first non-whitespace byte `[` is ShareGPT; otherwise the
/// first non-blank line is Mooncake if it is an object with `hash_ids` or `input_length`, JSONL
/// if not. `None` for a file of only whitespace.
pub fn detect_format(file: impl Read) -> std::io::Result<Option<DatasetFormat>> {
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(None);
        }
        let text = trim(strip_bom(&line));
        let Some(&first) = text.first() else { continue };
        if first == b'[' {
            return Ok(Some(DatasetFormat::ShareGpt));
        }
        #[derive(Deserialize)]
        struct Probe {
            hash_ids: Option<serde::de::IgnoredAny>,
            input_length: Option<serde::de::IgnoredAny>,
        }
        let mooncake =
            serde_json::from_slice::<Probe>(text).is_ok_and(|p| p.hash_ids.is_some() || p.input_length.is_some());
        return Ok(Some(match mooncake {
            true => DatasetFormat::Mooncake,
            false => DatasetFormat::Jsonl,
        }));
    }
}

/// Reads JSONL: one row per non-blank line, parsed by `parse(line, row)`.
fn read_lines(
    reader: &mut impl BufRead,
    keep: &mut Keeper,
    parse: fn(&[u8], u64) -> Result<DatasetRow, String>,
) -> Result<(), String> {
    let mut line = Vec::with_capacity(64 * 1024);
    let mut index = 0u64;
    while !keep.full() {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| format!("read error after line {index}: {e}"))?;
        if n == 0 {
            break;
        }
        let text = trim(if index == 0 { strip_bom(&line) } else { &line });
        if !text.is_empty() {
            match parse(text, index) {
                Ok(row) => keep.offer(row),
                Err(reason) => keep.bad(format!("line {}: {reason}", index + 1)),
            }
        }
        index += 1;
    }
    Ok(())
}

/// Collects kept rows: applies the filters and the row limit, resolves image paths, counts
/// skipped rows.
struct Keeper<'a> {
    opts: &'a LoadOptions,
    dir: PathBuf,
    rows: Vec<DatasetRow>,
    skipped: u64,
    filtered: u64,
    first_skip_reason: Option<String>,
}

impl<'a> Keeper<'a> {
    fn new(opts: &'a LoadOptions, dir: PathBuf) -> Self {
        Self {
            opts,
            dir,
            rows: Vec::new(),
            skipped: 0,
            filtered: 0,
            first_skip_reason: None,
        }
    }

    fn bad(&mut self, reason: String) {
        self.skipped += 1;
        self.first_skip_reason.get_or_insert(reason);
    }

    fn offer(&mut self, mut row: DatasetRow) {
        let isl = row.prompt.estimated_tokens();
        if self.opts.min_isl.is_some_and(|min| isl < min) || self.opts.max_isl.is_some_and(|max| isl > max) {
            self.filtered += 1;
            return;
        }
        for image in &mut row.images {
            if let Some(resolved) = resolve_image(&self.dir, image) {
                *image = resolved;
            }
        }
        self.rows.push(row);
    }

    fn full(&self) -> bool {
        self.opts.max_rows.is_some_and(|max| self.rows.len() as u64 >= max)
    }
}

/// A relative file path joined to the dataset's folder; `None` (keep as given) for URLs, data
/// URLs and absolute paths.
fn resolve_image(dir: &Path, image: &str) -> Option<String> {
    if image.starts_with("data:") || image.contains("://") || Path::new(image).is_absolute() {
        return None;
    }
    if dir.as_os_str().is_empty() {
        return None;
    }
    Some(dir.join(image).to_string_lossy().into_owned())
}

fn trim(bytes: &[u8]) -> &[u8] {
    bytes.trim_ascii()
}

fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

/// A serde_json error without its " at line L column C" (meaningless for one JSONL line), with
/// the column kept where it helps.
fn json_reason(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let msg = text.find(" at line ").map_or(text.as_str(), |at| &text[..at]);
    match e.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
            format!("not valid JSON ({msg} at column {})", e.column())
        }
        _ => msg.to_string(),
    }
}

/// Counts the bytes read through it.
struct Counting<R> {
    inner: R,
    bytes: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
}

/// A prompt's content: a string, or OpenAI content parts (text and image URLs).
enum Content {
    Text(String),
    Parts(Vec<Part>),
}

/// By hand rather than `#[serde(untagged)]`, which would first copy every prompt into serde's
/// buffer of any value; this takes the string as the parser hands it over.
impl<'de> Deserialize<'de> for Content {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Either;
        impl<'de> serde::de::Visitor<'de> for Either {
            type Value = Content;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an array of content parts")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Content, E> {
                Ok(Content::Text(v.to_owned()))
            }

            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Content, E> {
                Ok(Content::Text(v))
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Content, A::Error> {
                let mut parts = Vec::new();
                while let Some(part) = seq.next_element()? {
                    parts.push(part);
                }
                Ok(Content::Parts(parts))
            }
        }
        d.deserialize_any(Either)
    }
}

#[derive(Deserialize)]
struct Part {
    #[serde(rename = "type")]
    kind: Option<String>,
    text: Option<String>,
    image_url: Option<ImageUrl>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ImageUrl {
    Url(String),
    Object { url: String },
}

impl Content {
    /// The text (text parts joined with newlines); image URLs go to `images`.
    fn into_text(self, images: &mut Vec<String>) -> String {
        match self {
            Content::Text(text) => text,
            Content::Parts(parts) => {
                let mut text = String::new();
                for part in parts {
                    if let Some(url) = part.image_url {
                        images.push(match url {
                            ImageUrl::Url(url) | ImageUrl::Object { url } => url,
                        });
                    } else if let Some(t) = part.text.filter(|_| part.kind.as_deref().is_none_or(|k| k == "text")) {
                        if !text.is_empty() {
                            text.push('\n');
                        }
                        text.push_str(&t);
                    }
                }
                text
            }
        }
    }
}

/// `"image": "a.png"` or `"image": ["a.png", …]`.
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Either;
        impl<'de> serde::de::Visitor<'de> for Either {
            type Value = OneOrMany;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an image path or URL, or an array of them")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany::One(v.to_owned()))
            }

            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<OneOrMany, E> {
                Ok(OneOrMany::One(v))
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<OneOrMany, A::Error> {
                let mut many = Vec::new();
                while let Some(one) = seq.next_element::<String>()? {
                    many.push(one);
                }
                Ok(OneOrMany::Many(many))
            }
        }
        d.deserialize_any(Either)
    }
}

impl OneOrMany {
    fn push_into(self, images: &mut Vec<String>) {
        match self {
            OneOrMany::One(one) => images.push(one),
            OneOrMany::Many(many) => images.extend(many),
        }
    }
}

#[cfg(test)]
mod tests;
