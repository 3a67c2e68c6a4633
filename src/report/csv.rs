//! `steps.csv` and `intervals.csv`: the scalar fields of `summary.json`'s steps (and of a stress
//! run's intervals), one row per step and test. Columns are the steps' keys in the order
//! `summary.json` has them; a nested object's scalar fields become `key.field` (`ttft_ms.p99`);
//! lists and deeper objects stay in `summary.json`. A step without a field leaves its cell empty.
//!
//! `requests.csv` (`--csv-requests`): one row per record of `requests.jsonl`, its scalar fields
//! in a fixed column order ([`REQUEST_COLUMNS`]), written in one streaming pass over the file
//! after it is complete, so it holds exactly the rows `requests.jsonl` has.

use super::export::cannot_write;
use super::jsonl::RecordReader;
use crate::client::RequestRecord;
use serde_json::{Map, Value};
use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

/// Columns that say what a row is, first when present.
const LEADING: [&str; 8] = [
    "interval.index",
    "interval.start_s",
    "interval.end_s",
    "test",
    "load.kind",
    "load.value",
    "concurrency",
    "repeat",
];

/// Cells as (column, value).
type Cells = Vec<(String, Value)>;

/// The CSV of `rows` (objects), each with `prefix` columns first.
pub fn table(rows: &[(Cells, &Map<String, Value>)]) -> String {
    let mut columns: Vec<String> = Vec::new();
    let flat: Vec<Cells> = rows
        .iter()
        .map(|(prefix, row)| {
            let mut cells = prefix.clone();
            flatten(row, &mut cells);
            for (key, _) in &cells {
                if !columns.contains(key) {
                    columns.push(key.clone());
                }
            }
            cells
        })
        .collect();
    // What a row is about comes first; the rest in summary.json's order.
    let mut leading: Vec<String> = LEADING
        .iter()
        .filter(|c| columns.iter().any(|k| k == *c))
        .map(|c| c.to_string())
        .collect();
    leading.extend(columns.into_iter().filter(|c| !LEADING.contains(&c.as_str())));
    let columns = leading;
    let mut out = String::new();
    out.push_str(&columns.iter().map(|c| field(c)).collect::<Vec<_>>().join(","));
    out.push('\n');
    for cells in flat {
        let line: Vec<String> = columns
            .iter()
            .map(|c| {
                cells
                    .iter()
                    .find(|(k, _)| k == c)
                    .map(|(_, v)| cell(v))
                    .unwrap_or_default()
            })
            .collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    out
}

/// Scalar fields, and one level of nested objects' scalar fields.
fn flatten(row: &Map<String, Value>, cells: &mut Cells) {
    for (key, value) in row {
        match value {
            Value::Object(inner) => {
                for (field, v) in inner {
                    if !v.is_object() && !v.is_array() {
                        cells.push((format!("{key}.{field}"), v.clone()));
                    }
                }
            }
            // Absent and null are the same empty cell; a null must not become a column that
            // another step has as an object.
            Value::Array(_) | Value::Null => {}
            scalar => cells.push((key.clone(), scalar.clone())),
        }
    }
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => field(s),
        other => other.to_string(),
    }
}

/// A CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break. Server text
/// (model names, error messages) goes through here too.
pub(crate) fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// `steps.csv` from a serialised summary.
pub fn steps_csv(summary: &Value) -> Option<String> {
    let steps = summary.get("steps")?.as_array()?;
    let rows: Vec<(Cells, &Map<String, Value>)> = steps
        .iter()
        .filter_map(|s| s.as_object())
        .map(|s| (Vec::new(), s))
        .collect();
    Some(table(&rows))
}

/// `intervals.csv` from a serialised summary of a stress run: one row per interval and test.
pub fn intervals_csv(summary: &Value) -> Option<String> {
    let intervals = summary.get("stress")?.get("intervals")?.as_array()?;
    let mut rows = Vec::new();
    for interval in intervals {
        let prefix: Cells = ["index", "start_s", "end_s"]
            .iter()
            .map(|k| {
                (
                    format!("interval.{k}"),
                    interval.get(*k).cloned().unwrap_or(Value::Null),
                )
            })
            .collect();
        for test in interval.get("tests").and_then(Value::as_array).into_iter().flatten() {
            if let Some(test) = test.as_object() {
                rows.push((prefix.clone(), test));
            }
        }
    }
    Some(table(&rows))
}

/// Writes one cell of a record into a row.
type CellWriter = fn(&RequestRecord, &mut String);

fn opt<T: std::fmt::Display>(out: &mut String, v: Option<T>) {
    if let Some(v) = v {
        let _ = write!(out, "{v}");
    }
}

fn num<T: std::fmt::Display>(out: &mut String, v: T) {
    let _ = write!(out, "{v}");
}

fn text(out: &mut String, v: Option<&str>) {
    if let Some(v) = v {
        out.push_str(&field(v));
    }
}

/// The columns of `requests.csv`: every scalar field of a record in `requests.jsonl`'s order
/// (`load` and `server_timings` as `key.field`; the lists `token_us` and `chunk_tokens` stay in
/// the JSONL). A field a record lacks is an empty cell. `load` is the step's load point, also
/// for records of older versions that had only `concurrency`.
pub const REQUEST_COLUMNS: &[(&str, CellWriter)] = &[
    ("id", |r, o| num(o, r.id)),
    ("test", |r, o| o.push_str(r.test.name())),
    ("concurrency", |r, o| num(o, r.concurrency)),
    ("conn", |r, o| num(o, r.conn)),
    ("load.kind", |r, o| {
        o.push_str(match r.point() {
            crate::load::LoadPoint::Concurrency(_) => "concurrency",
            crate::load::LoadPoint::Rate(_) => "rate",
        })
    }),
    ("load.value", |r, o| num(o, r.point().value())),
    ("repeat", |r, o| opt(o, r.repeat)),
    ("intended_s", |r, o| opt(o, r.intended_s)),
    ("queue_us", |r, o| num(o, r.queue_us)),
    ("phase", |r, o| {
        o.push_str(match r.phase {
            crate::client::Phase::Warmup => "warmup",
            crate::client::Phase::Measured => "measured",
        })
    }),
    ("start_s", |r, o| num(o, r.start_s)),
    ("connect_us", |r, o| num(o, r.connect_us)),
    ("send_delay_us", |r, o| num(o, r.send_delay_us)),
    ("headers_us", |r, o| opt(o, r.headers_us)),
    ("first_event_us", |r, o| opt(o, r.first_event_us)),
    ("first_token_us", |r, o| opt(o, r.first_token_us)),
    ("last_token_us", |r, o| opt(o, r.last_token_us)),
    ("end_us", |r, o| num(o, r.end_us)),
    ("status", |r, o| opt(o, r.status)),
    ("ok", |r, o| num(o, r.ok)),
    ("error", |r, o| opt(o, r.error)),
    ("error_message", |r, o| text(o, r.error_message.as_deref())),
    ("resends", |r, o| num(o, r.resends)),
    ("resend_reason", |r, o| text(o, r.resend_reason.as_deref())),
    ("resend_wait_us", |r, o| num(o, r.resend_wait_us)),
    ("requested_isl", |r, o| opt(o, r.requested_isl)),
    ("requested_osl", |r, o| opt(o, r.requested_osl)),
    ("row", |r, o| opt(o, r.row)),
    ("prefix_group", |r, o| opt(o, r.prefix_group)),
    ("session", |r, o| opt(o, r.session)),
    ("turn", |r, o| opt(o, r.turn)),
    ("prefix_first", |r, o| num(o, r.prefix_first)),
    ("image_bytes", |r, o| num(o, r.image_bytes)),
    ("prompt_tokens", |r, o| num(o, r.prompt_tokens)),
    ("output_tokens", |r, o| num(o, r.output_tokens)),
    ("tokens_estimated", |r, o| num(o, r.tokens_estimated)),
    ("first_chunk_tokens", |r, o| opt(o, r.first_chunk_tokens)),
    ("events", |r, o| num(o, r.events)),
    ("server_timings.prompt_n", |r, o| {
        opt(o, r.server_timings.and_then(|t| t.prompt_n))
    }),
    ("server_timings.prompt_per_second", |r, o| {
        opt(o, r.server_timings.and_then(|t| t.prompt_per_second))
    }),
    ("server_timings.predicted_n", |r, o| {
        opt(o, r.server_timings.and_then(|t| t.predicted_n))
    }),
    ("server_timings.predicted_per_second", |r, o| {
        opt(o, r.server_timings.and_then(|t| t.predicted_per_second))
    }),
    ("finish_reason", |r, o| text(o, r.finish_reason.as_deref())),
    ("cached_tokens", |r, o| opt(o, r.cached_tokens)),
    ("first_reasoning_us", |r, o| opt(o, r.first_reasoning_us)),
    ("first_answer_us", |r, o| opt(o, r.first_answer_us)),
    ("reasoning_tokens", |r, o| opt(o, r.reasoning_tokens)),
    ("reasoning_tokens_estimated", |r, o| {
        num(o, r.reasoning_tokens_estimated)
    }),
    ("inputs", |r, o| num(o, r.inputs)),
    // Last, so that the columns of files before distributed runs keep their places.
    ("run_id", |r, o| text(o, r.run_id.as_deref())),
    ("shard", |r, o| opt(o, r.shard)),
];

/// `requests.csv`, written row by row.
pub struct RequestsCsv<W: Write> {
    out: W,
    row: String,
    pub rows: u64,
}

impl<W: Write> RequestsCsv<W> {
    /// Starts the file with its header.
    pub fn new(mut out: W) -> std::io::Result<Self> {
        let header: Vec<&str> = REQUEST_COLUMNS.iter().map(|(name, _)| *name).collect();
        writeln!(out, "{}", header.join(","))?;
        Ok(Self {
            out,
            row: String::with_capacity(512),
            rows: 0,
        })
    }

    pub fn write(&mut self, rec: &RequestRecord) -> std::io::Result<()> {
        self.row.clear();
        for (i, (_, cell)) in REQUEST_COLUMNS.iter().enumerate() {
            if i > 0 {
                self.row.push(',');
            }
            cell(rec, &mut self.row);
        }
        self.row.push('\n');
        self.rows += 1;
        self.out.write_all(self.row.as_bytes())
    }

    pub fn finish(mut self) -> std::io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Writes `requests.csv` in `dir` from its `requests.jsonl`, one record at a time (through a
/// temporary file, renamed when complete). Returns the rows written.
pub fn requests_csv_from_jsonl(dir: &Path) -> Result<u64, String> {
    let mut reader = RecordReader::open(&dir.join("requests.jsonl"))?;
    let mut csv = RequestsCsvFile::create(dir)?;
    while let Some(rec) = reader.next_record()? {
        csv.write(&rec)?;
    }
    csv.finish()
}

/// `requests.csv` in a results folder, written through `.requests.csv.tmp`; a file left
/// unfinished (an error on the way) removes its temporary file.
pub struct RequestsCsvFile {
    csv: Option<RequestsCsv<std::io::BufWriter<std::fs::File>>>,
    tmp: std::path::PathBuf,
    path: std::path::PathBuf,
}

impl RequestsCsvFile {
    pub fn create(dir: &Path) -> Result<Self, String> {
        let path = dir.join("requests.csv");
        let tmp = dir.join(".requests.csv.tmp");
        let cannot = |e: std::io::Error| cannot_write(&path, &e);
        let file = std::fs::File::create(&tmp).map_err(cannot)?;
        let csv = RequestsCsv::new(std::io::BufWriter::with_capacity(1 << 20, file)).map_err(cannot)?;
        Ok(Self {
            csv: Some(csv),
            tmp,
            path,
        })
    }

    pub fn write(&mut self, rec: &RequestRecord) -> Result<(), String> {
        match self.csv.as_mut() {
            Some(csv) => csv.write(rec).map_err(|e| cannot_write(&self.path, &e)),
            None => Ok(()),
        }
    }

    /// Completes the file; returns its rows.
    pub fn finish(mut self) -> Result<u64, String> {
        let Some(csv) = self.csv.take() else { return Ok(0) };
        let rows = csv.rows;
        csv.finish()
            .and_then(|_| std::fs::rename(&self.tmp, &self.path))
            .map_err(|e| cannot_write(&self.path, &e))?;
        Ok(rows)
    }
}

impl Drop for RequestsCsvFile {
    fn drop(&mut self) {
        // Renamed when finished; otherwise what was written goes.
        let _ = std::fs::remove_file(&self.tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn steps_flatten_to_columns_in_order() {
        let summary = json!({"steps": [
            {"test": "output", "concurrency": 4, "ttft_ms": {"p50": 1.5, "p99": 3.0}, "errors": {}, "error_samples": [1]},
            {"test": "input", "concurrency": 8, "ttft_ms": null, "saturated": true},
        ]});
        let csv = steps_csv(&summary).unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        // What the row is first, then summary.json's key order, first-seen across steps.
        assert_eq!(lines[0], "test,concurrency,ttft_ms.p50,ttft_ms.p99,saturated");
        assert_eq!(lines[1], "output,4,1.5,3.0,");
        assert_eq!(lines[2], "input,8,,,true");
    }

    #[test]
    fn text_is_quoted_when_it_must_be() {
        let summary = json!({"steps": [{"pacing_warning": "late, by \"much\"\nreally"}]});
        let csv = steps_csv(&summary).unwrap();
        assert!(csv.ends_with("\"late, by \"\"much\"\"\nreally\"\n"), "{csv}");
    }

    #[test]
    fn intervals_carry_their_index_and_times() {
        let summary = json!({"stress": {"intervals": [
            {"index": 0, "start_s": 0.0, "end_s": 60.0, "tests": [{"test": "output", "output_tokens": 10}]},
        ]}});
        let csv = intervals_csv(&summary).unwrap();
        assert_eq!(
            csv,
            "interval.index,interval.start_s,interval.end_s,test,output_tokens\n0,0.0,60.0,output,10\n"
        );
        assert!(intervals_csv(&json!({"steps": []})).is_none());
    }

    /// A record with every field set (no default value anywhere).
    fn full_record() -> RequestRecord {
        RequestRecord {
            id: 7,
            run_id: Some("run-7".into()),
            shard: Some(1),
            test: crate::workload::TestKind::Multimodal,
            concurrency: 4,
            conn: 2,
            load: Some(crate::load::LoadPoint::Rate(2.5)),
            repeat: Some(2),
            intended_s: Some(1.5),
            queue_us: 3,
            phase: crate::client::Phase::Warmup,
            start_s: 1.75,
            connect_us: 4,
            send_delay_us: 5,
            headers_us: Some(6),
            first_event_us: Some(7),
            first_token_us: Some(8),
            last_token_us: Some(9),
            end_us: 10,
            status: Some(500),
            ok: true,
            error: Some(crate::client::ErrorClass::Http(500)),
            error_message: Some("bad, \"very\"".into()),
            resends: 1,
            resend_reason: Some("reset".into()),
            resend_wait_us: 11,
            requested_isl: Some(12),
            requested_osl: Some(13),
            row: Some(14),
            prefix_group: Some(15),
            session: Some(16),
            turn: Some(17),
            prefix_first: true,
            image_bytes: 18,
            prompt_tokens: 19,
            output_tokens: 20,
            tokens_estimated: true,
            token_us: vec![8, 9],
            first_chunk_tokens: Some(21),
            chunk_tokens: vec![1, 2],
            events: 22,
            server_timings: Some(crate::client::event::ServerTimings {
                prompt_n: Some(1.0),
                prompt_per_second: Some(2.0),
                predicted_n: Some(3.0),
                predicted_per_second: Some(4.0),
            }),
            finish_reason: Some("length".into()),
            cached_tokens: Some(23),
            first_reasoning_us: Some(24),
            first_answer_us: Some(25),
            reasoning_tokens: Some(26),
            reasoning_tokens_estimated: true,
            inputs: 27,
            answer_text: None,
        }
    }

    #[test]
    fn request_columns_are_every_scalar_field_of_a_record() {
        let value = serde_json::to_value(full_record()).unwrap();
        let mut keys: Cells = Vec::new();
        flatten(value.as_object().unwrap(), &mut keys);
        let mut keys: Vec<String> = keys.into_iter().map(|(k, _)| k).collect();
        let mut columns: Vec<String> = REQUEST_COLUMNS.iter().map(|(c, _)| c.to_string()).collect();
        keys.sort();
        columns.sort();
        assert_eq!(
            columns, keys,
            "a record field without its requests.csv column (or the reverse)"
        );
    }

    #[test]
    fn request_rows_hold_the_record_values() {
        let mut csv = RequestsCsv::new(Vec::new()).unwrap();
        csv.write(&full_record()).unwrap();
        csv.write(&RequestRecord::default()).unwrap();
        let text = String::from_utf8(csv.finish().unwrap()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("id,test,concurrency,conn,load.kind,load.value,repeat,intended_s,"));
        assert!(
            lines[1].starts_with("7,multimodal,4,2,rate,2.5,2,1.5,3,warmup,1.75,"),
            "{}",
            lines[1]
        );
        assert!(
            lines[1].contains(",http_500,\"bad, \"\"very\"\"\",1,reset,"),
            "{}",
            lines[1]
        );
        let cells = |line: &str| line.matches(',').count();
        assert_eq!(cells(lines[2]), REQUEST_COLUMNS.len() - 1);
        assert!(
            lines[2].starts_with("0,output,0,0,concurrency,0,,,0,measured,0,"),
            "{}",
            lines[2]
        );
    }

    #[test]
    fn requests_csv_from_the_jsonl_has_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::new();
        for id in 0..3 {
            let rec = RequestRecord { id, ..full_record() };
            text.push_str(&serde_json::to_string(&rec).unwrap());
            text.push('\n');
        }
        text.push_str("{\"cut");
        std::fs::write(dir.path().join("requests.jsonl"), text).unwrap();
        assert_eq!(requests_csv_from_jsonl(dir.path()), Ok(3));
        let csv = std::fs::read_to_string(dir.path().join("requests.csv")).unwrap();
        assert_eq!(csv.lines().count(), 4);
        assert!(!dir.path().join(".requests.csv.tmp").exists());
    }
}
