//! STUB (replaced by the dataset parsers): the types the prompt sources use.

/// Tokens per Mooncake `hash_ids` block.
pub const BLOCK_TOKENS: u64 = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatasetFormat {
    ShareGpt,
    Jsonl,
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

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "sharegpt" => Some(Self::ShareGpt),
            "jsonl" => Some(Self::Jsonl),
            "mooncake" => Some(Self::Mooncake),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum RowPrompt {
    Text(String),
    Messages(Vec<ChatMessage>),
    Blocks { input_length: u64, hash_ids: Vec<u64> },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DatasetRow {
    pub row: u64,
    pub prompt: RowPrompt,
    pub output_tokens: Option<u64>,
    pub images: Vec<String>,
    pub timestamp_ms: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct Dataset {
    pub format: DatasetFormat,
    pub rows: Vec<DatasetRow>,
    pub skipped: u64,
    pub filtered: u64,
    pub first_skip_reason: Option<String>,
    pub bytes: u64,
    pub load_time: std::time::Duration,
}

pub struct LoadOptions {
    pub format: Option<DatasetFormat>,
    pub min_isl: Option<u64>,
    pub max_isl: Option<u64>,
    pub max_rows: Option<u64>,
}

pub fn load(_path: &std::path::Path, _opts: &LoadOptions) -> Result<Dataset, String> {
    Err("stub".into())
}
