//! Mooncake traces (the format of Mooncake's published traces and of trace-replay tools):
//! `{"timestamp": ms, "input_length": N, "output_length": M, "hash_ids": [..]}`, one hash per
//! block of 512 prompt tokens, so `hash_ids` has ⌈N / 512⌉ entries.

use super::{json_reason, DatasetRow, RowPrompt, MOONCAKE_BLOCK};
use serde::Deserialize;

#[derive(Deserialize)]
struct Trace {
    timestamp: Option<f64>,
    input_length: Option<u64>,
    output_length: Option<u64>,
    hash_ids: Option<Vec<u64>>,
}

/// One non-blank line; `Err` is the reason the row is skipped (without the line number).
pub(super) fn parse_line(line: &[u8], row: u64) -> Result<DatasetRow, String> {
    if line.first() != Some(&b'{') {
        return Err("not a JSON object".into());
    }
    let trace: Trace = serde_json::from_slice(line).map_err(|e| json_reason(&e))?;
    let input_length = trace.input_length.ok_or("no `input_length`")?;
    if input_length == 0 {
        return Err("`input_length` is 0".into());
    }
    let hash_ids = trace.hash_ids.ok_or("no `hash_ids`")?;
    let blocks = input_length.div_ceil(MOONCAKE_BLOCK);
    if hash_ids.len() as u64 != blocks {
        return Err(format!(
            "`hash_ids` has {} entries but input_length {input_length} needs {blocks} (one per {MOONCAKE_BLOCK} tokens)",
            hash_ids.len()
        ));
    }
    if let Some(t) = trace.timestamp {
        if !(t >= 0.0 && t.is_finite()) {
            return Err(format!("`timestamp` is {t}, not a time in ms ≥ 0"));
        }
    }
    if trace.output_length == Some(0) {
        return Err("`output_length` is 0".into());
    }
    Ok(DatasetRow {
        row,
        prompt: RowPrompt::Blocks { input_length, hash_ids },
        output_tokens: trace.output_length,
        images: Vec::new(),
        timestamp_ms: trace.timestamp,
    })
}
