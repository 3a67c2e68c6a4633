//! `steps.csv` and `intervals.csv`: the scalar fields of `summary.json`'s steps (and of a stress
//! run's intervals), one row per step and test. Columns are the steps' keys in the order
//! `summary.json` has them; a nested object's scalar fields become `key.field` (`ttft_ms.p99`);
//! lists and deeper objects stay in `summary.json`. A step without a field leaves its cell empty.

use serde_json::{Map, Value};

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
fn field(s: &str) -> String {
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
}
