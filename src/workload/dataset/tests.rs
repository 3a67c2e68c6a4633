use super::*;
use std::path::PathBuf;

struct Files(tempfile::TempDir);

impl Files {
    fn new() -> Self {
        Files(tempfile::tempdir().unwrap())
    }

    fn write(&self, name: &str, content: &str) -> PathBuf {
        let path = self.0.path().join(name);
        std::fs::write(&path, content).unwrap();
        path
    }
}

fn load_str(content: &str, opts: &LoadOptions) -> Result<Dataset, String> {
    let files = Files::new();
    load(&files.write("data.txt", content), opts)
}

fn auto() -> LoadOptions {
    LoadOptions::default()
}

fn forced(format: DatasetFormat) -> LoadOptions {
    LoadOptions {
        format: Some(format),
        ..LoadOptions::default()
    }
}

fn text(s: &str) -> RowPrompt {
    RowPrompt::Text(s.into())
}

fn msg(role: &str, content: &str) -> ChatMessage {
    ChatMessage {
        role: role.into(),
        content: content.into(),
    }
}

/// The one row of a one-row file, or the reason it was skipped.
fn one_row(content: &str, format: DatasetFormat) -> Result<DatasetRow, String> {
    match load_str(content, &forced(format)) {
        Ok(mut d) => {
            assert_eq!((d.rows.len(), d.skipped), (1, 0), "{content}");
            Ok(d.rows.remove(0))
        }
        Err(e) => Err(e),
    }
}

#[test]
fn format_names_round_trip() {
    for format in [DatasetFormat::ShareGpt, DatasetFormat::Jsonl, DatasetFormat::Mooncake] {
        assert_eq!(DatasetFormat::parse(format.name()), Ok(format));
        assert_eq!(format.to_string(), format.name());
    }
    assert_eq!(DatasetFormat::parse("ShareGPT"), Ok(DatasetFormat::ShareGpt));
    let e = DatasetFormat::parse("csv").unwrap_err();
    assert!(
        e.contains("\"csv\"") && e.contains("sharegpt, jsonl or mooncake"),
        "{e}"
    );
}

#[test]
fn token_estimate_is_a_quarter_of_the_characters() {
    for (s, want) in [
        ("", 0),
        ("a", 1),
        ("abcd", 1),
        ("abcde", 2),
        ("héllo", 2),
        ("日本語です", 2),
        ("12345678", 2),
    ] {
        assert_eq!(estimate_tokens(s), want, "{s:?}");
    }
}

#[test]
fn jsonl_good_rows() {
    type Want = (RowPrompt, Option<u64>, Vec<&'static str>, Option<f64>);
    let cases: Vec<(&str, Want)> = vec![
        (r#"{"prompt": "hi"}"#, (text("hi"), None, vec![], None)),
        (
            r#"{"text": "hi", "output_tokens": 5}"#,
            (text("hi"), Some(5), vec![], None),
        ),
        (
            r#"{"prompt": "p", "output_length": 7, "timestamp": 12.5}"#,
            (text("p"), Some(7), vec![], Some(12.5)),
        ),
        (
            r#"{"prompt": "p", "max_tokens": 9, "extra": {"x": 1}}"#,
            (text("p"), Some(9), vec![], None),
        ),
        (
            r#"{"prompt": "p", "output_tokens": null}"#,
            (text("p"), None, vec![], None),
        ),
        (
            r#"{"prompt": "p", "image": "https://x/a.png", "images": ["data:image/png;base64,AA"]}"#,
            (
                text("p"),
                None,
                vec!["https://x/a.png", "data:image/png;base64,AA"],
                None,
            ),
        ),
        (
            r#"{"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "q"}], "max_tokens": 3}"#,
            (
                RowPrompt::Messages(vec![msg("system", "be brief"), msg("user", "q")]),
                Some(3),
                vec![],
                None,
            ),
        ),
        (
            r#"{"messages": [{"role": "user", "content": [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": "http://h/i.jpg"}}, {"type": "text", "text": "here"}]}]}"#,
            (
                RowPrompt::Messages(vec![msg("user", "look\nhere")]),
                None,
                vec!["http://h/i.jpg"],
                None,
            ),
        ),
        (
            r#"{"messages": [{"content": "no role"}]}"#,
            (RowPrompt::Messages(vec![msg("user", "no role")]), None, vec![], None),
        ),
        // `prompt` wins over `messages`; the first length field given wins.
        (
            r#"{"prompt": "p", "messages": [{"role": "user", "content": "m"}], "output_tokens": 2, "max_tokens": 8}"#,
            (text("p"), Some(2), vec![], None),
        ),
    ];
    for (line, (prompt, output, images, timestamp)) in cases {
        let row = one_row(line, DatasetFormat::Jsonl).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(row.prompt, prompt, "{line}");
        assert_eq!(row.output_tokens, output, "{line}");
        assert_eq!(row.images, images, "{line}");
        assert_eq!(row.timestamp_ms, timestamp, "{line}");
        assert_eq!(row.row, 0);
    }
}

#[test]
fn jsonl_bad_rows() {
    let cases = [
        ("[1, 2]", "line 2: not a JSON object"),
        ("\"just a string\"", "line 2: not a JSON object"),
        (
            "{\"prompt\": \"unterminated",
            "line 2: not valid JSON (EOF while parsing a string at column 24)",
        ),
        (
            "{\"prompt\": \"a\",}",
            "line 2: not valid JSON (trailing comma at column 16)",
        ),
        ("{\"id\": 3}", "line 2: no `prompt`, `text` or `messages` field"),
        ("{\"prompt\": \"\"}", "line 2: empty prompt"),
        (
            "{\"prompt\": [1, 2, 3]}",
            "line 2: invalid type: sequence, expected a string",
        ),
        ("{\"messages\": []}", "line 2: empty `messages`"),
        (
            "{\"messages\": [{\"role\": \"user\"}]}",
            "line 2: message 0 has no `content`",
        ),
        (
            "{\"messages\": [{\"role\": \"user\", \"content\": \"\"}]}",
            "line 2: `messages` have no text",
        ),
        (
            "{\"messages\": \"hi\"}",
            "line 2: invalid type: string \"hi\", expected a sequence",
        ),
        (
            "{\"prompt\": \"p\", \"output_tokens\": 0}",
            "line 2: `output_tokens` is 0, not a positive integer",
        ),
        (
            "{\"prompt\": \"p\", \"max_tokens\": -3}",
            "line 2: `max_tokens` is -3, not a positive integer",
        ),
        (
            "{\"prompt\": \"p\", \"output_length\": 2.5}",
            "line 2: `output_length` is 2.5, not a positive integer",
        ),
        (
            "{\"prompt\": \"p\", \"output_tokens\": \"8\"}",
            "line 2: `output_tokens` is \"8\", not a positive integer",
        ),
        (
            "{\"prompt\": \"p\", \"timestamp\": -1}",
            "line 2: `timestamp` is -1, not a time in ms ≥ 0",
        ),
        (
            "{\"prompt\": \"p\", \"images\": [3]}",
            "line 2: invalid type: integer `3`, expected a string",
        ),
        (
            "{\"prompt\": \"p\", \"image\": 5}",
            "line 2: invalid type: integer `5`, expected an image path or URL, or an array of them",
        ),
    ];
    for (bad, reason) in cases {
        // A good row around the bad one, so that the file loads and counts it.
        let content = format!("{{\"prompt\": \"ok\"}}\n{bad}\n{{\"prompt\": \"ok\"}}\n");
        let d = load_str(&content, &forced(DatasetFormat::Jsonl)).unwrap();
        assert_eq!((d.rows.len(), d.skipped), (2, 1), "{bad}");
        assert_eq!(d.first_skip_reason.as_deref(), Some(reason), "{bad}");
        assert_eq!(d.rows[1].row, 2, "row is the 0-based line index");
    }
}

#[test]
fn jsonl_blank_lines_are_ignored_but_counted_in_row_numbers() {
    let content = "\n{\"prompt\": \"a\"}\r\n   \n{\"nope\": 1}\n{\"prompt\": \"b\"}\n{\"x\": 2}";
    let d = load_str(content, &auto()).unwrap();
    assert_eq!(d.format, DatasetFormat::Jsonl);
    assert_eq!(d.rows.iter().map(|r| r.row).collect::<Vec<_>>(), [1, 4]);
    assert_eq!(d.skipped, 2);
    assert_eq!(
        d.first_skip_reason.as_deref(),
        Some("line 4: no `prompt`, `text` or `messages` field")
    );
    assert_eq!(d.bytes, content.len() as u64);
}

#[test]
fn mooncake_rows() {
    let good = r#"{"timestamp": 27482, "input_length": 1025, "output_length": 52, "hash_ids": [46, 47, 48]}"#;
    let row = one_row(good, DatasetFormat::Mooncake).unwrap();
    assert_eq!(
        row.prompt,
        RowPrompt::Blocks {
            input_length: 1025,
            hash_ids: vec![46, 47, 48]
        }
    );
    assert_eq!((row.output_tokens, row.timestamp_ms), (Some(52), Some(27482.0)));
    assert_eq!(row.prompt.estimated_tokens(), 1025);
    let exact = one_row(r#"{"input_length": 512, "hash_ids": [1]}"#, DatasetFormat::Mooncake).unwrap();
    assert_eq!((exact.output_tokens, exact.timestamp_ms), (None, None));

    let bad = [
        (
            r#"{"input_length": 1025, "output_length": 5, "hash_ids": [1, 2]}"#,
            "line 2: `hash_ids` has 2 entries but input_length 1025 needs 3 (one per 512 tokens)",
        ),
        (
            r#"{"input_length": 100, "hash_ids": [1, 2]}"#,
            "line 2: `hash_ids` has 2 entries but input_length 100 needs 1 (one per 512 tokens)",
        ),
        (r#"{"output_length": 5, "hash_ids": [1]}"#, "line 2: no `input_length`"),
        (r#"{"input_length": 10}"#, "line 2: no `hash_ids`"),
        (r#"{"input_length": 0, "hash_ids": []}"#, "line 2: `input_length` is 0"),
        (
            r#"{"input_length": -5, "hash_ids": []}"#,
            "line 2: invalid value: integer `-5`, expected u64",
        ),
        (
            r#"{"timestamp": -2, "input_length": 10, "hash_ids": [1]}"#,
            "line 2: `timestamp` is -2, not a time in ms ≥ 0",
        ),
        (
            r#"{"input_length": 10, "output_length": 0, "hash_ids": [1]}"#,
            "line 2: `output_length` is 0",
        ),
        (
            r#"{"input_length": 10, "hash_ids": ["a"]}"#,
            "line 2: invalid type: string \"a\", expected u64",
        ),
        ("[]", "line 2: not a JSON object"),
        ("{oops", "line 2: not valid JSON (key must be a string at column 2)"),
    ];
    for (line, reason) in bad {
        let content = format!("{good}\n{line}\n");
        let d = load_str(&content, &auto()).unwrap();
        assert_eq!(d.format, DatasetFormat::Mooncake);
        assert_eq!((d.rows.len(), d.skipped), (1, 1), "{line}");
        assert_eq!(d.first_skip_reason.as_deref(), Some(reason), "{line}");
    }
}

#[test]
fn sharegpt_good_elements() {
    let cases: Vec<(&str, &str, u64, Vec<&str>)> = vec![
        (
            r#"{"id": "x", "conversations": [{"from": "human", "value": "hello"}, {"from": "gpt", "value": "123456789"}]}"#,
            "hello",
            3,
            vec![],
        ),
        (
            r#"{"conversations": [{"from": "system", "value": "sys"}, {"from": "user", "value": "q"}, {"from": "assistant", "value": "a"}, {"from": "human", "value": "later"}]}"#,
            "q",
            1,
            vec![],
        ),
        (
            r#"{"conversations": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "12345"}]}"#,
            "q",
            2,
            vec![],
        ),
        (
            r#"{"messages": [{"role": "user", "content": "m"}, {"role": "assistant", "content": ""}]}"#,
            "m",
            1,
            vec![],
        ),
        (
            r#"{"conversation": [{"from": "Human", "value": "c"}, {"from": "human", "value": "again"}, {"from": "GPT", "value": "1234"}]}"#,
            "c",
            1,
            vec![],
        ),
        (
            r#"{"image": "imgs/a.jpg", "conversations": [{"from": "human", "value": "<image>\nWhat?"}, {"from": "gpt", "value": "A cat."}]}"#,
            "<image>\nWhat?",
            2,
            vec!["imgs/a.jpg"],
        ),
    ];
    for (element, prompt, output, images) in cases {
        let files = Files::new();
        let path = files.write("sg.json", &format!("[{element}]"));
        let d = load(&path, &auto()).unwrap_or_else(|e| panic!("{element}: {e}"));
        assert_eq!(d.format, DatasetFormat::ShareGpt);
        assert_eq!((d.rows.len(), d.skipped), (1, 0), "{element}");
        let row = &d.rows[0];
        assert_eq!(row.prompt, text(prompt), "{element}");
        assert_eq!(row.output_tokens, Some(output), "{element}");
        let resolved: Vec<String> = images
            .iter()
            .map(|i| files.0.path().join(i).to_string_lossy().into_owned())
            .collect();
        assert_eq!(row.images, resolved, "{element}");
        assert_eq!(row.timestamp_ms, None);
    }
}

#[test]
fn sharegpt_bad_elements() {
    let good = r#"{"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}"#;
    let cases = [
        ("3", "element 1: not a JSON object"),
        ("[]", "element 1: not a JSON object"),
        (r#"{"id": 1}"#, "element 1: no `conversations`"),
        (r#"{"conversations": []}"#, "element 1: no human turn"),
        (
            r#"{"conversations": [{"from": "gpt", "value": "a"}, {"from": "human", "value": "q"}]}"#,
            "element 1: no gpt turn after the first human turn",
        ),
        (
            r#"{"conversations": [{"from": "human", "value": "q"}]}"#,
            "element 1: no gpt turn after the first human turn",
        ),
        (
            r#"{"conversations": [{"from": "human", "value": ""}, {"from": "gpt", "value": "a"}]}"#,
            "element 1: the first human turn is empty",
        ),
        (
            r#"{"conversations": [{"from": "human"}, {"from": "gpt", "value": "a"}]}"#,
            "element 1: the first human turn is empty",
        ),
        (
            r#"{"conversations": "text"}"#,
            "element 1: invalid type: string \"text\", expected an array of turns",
        ),
        (
            r#"{"conversations": [{"from": 1, "value": "q"}]}"#,
            "element 1: invalid type: integer `1`, expected a string",
        ),
    ];
    for (element, reason) in cases {
        let content = format!("[{good},\n {element}, {good}]");
        let d = load_str(&content, &auto()).unwrap_or_else(|e| panic!("{element}: {e}"));
        assert_eq!((d.rows.len(), d.skipped), (2, 1), "{element}");
        assert_eq!(d.first_skip_reason.as_deref(), Some(reason), "{element}");
        assert_eq!(d.rows.iter().map(|r| r.row).collect::<Vec<_>>(), [0, 2]);
    }
}

#[test]
fn sharegpt_file_errors() {
    let good = r#"{"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}"#;
    let cases = [
        (
            format!("[{good}, {good}"),
            "invalid JSON after 2 array elements: EOF while parsing a list",
        ),
        (
            format!("[{good} {good}]"),
            "invalid JSON after 1 array elements: expected `,` or `]`",
        ),
        (
            format!("[{good}] extra"),
            "invalid JSON after the array: trailing characters",
        ),
        (
            good.to_string(),
            "not a ShareGPT file (a JSON array of conversations): invalid type: map",
        ),
    ];
    for (content, want) in cases {
        let e = load_str(&content, &forced(DatasetFormat::ShareGpt)).unwrap_err();
        assert!(
            e.starts_with("dataset ") && e.contains(want) && !e.contains('\n'),
            "{e}"
        );
    }
}

#[test]
fn formats_are_detected() {
    let cases = [
        ("[]", DatasetFormat::ShareGpt),
        ("\n\n   [ {\"conversations\": []} ]", DatasetFormat::ShareGpt),
        ("\u{feff}[]", DatasetFormat::ShareGpt),
        ("{\"prompt\": \"x\"}\n", DatasetFormat::Jsonl),
        ("\n  \n{\"messages\": []}", DatasetFormat::Jsonl),
        ("not json at all", DatasetFormat::Jsonl),
        (
            "{\"timestamp\": 0, \"input_length\": 3, \"output_length\": 1, \"hash_ids\": [1]}",
            DatasetFormat::Mooncake,
        ),
        ("\n{\"hash_ids\": [1]}", DatasetFormat::Mooncake),
        ("{\"input_length\": 3}", DatasetFormat::Mooncake),
        ("\u{feff}{\"input_length\": 3}", DatasetFormat::Mooncake),
    ];
    for (content, want) in cases {
        assert_eq!(detect_format(content.as_bytes()).unwrap(), Some(want), "{content:?}");
    }
    assert_eq!(detect_format(&b" \n\t\n"[..]).unwrap(), None);
    assert_eq!(detect_format(&b""[..]).unwrap(), None);
}

#[test]
fn bom_is_skipped() {
    let d = load_str("\u{feff}{\"prompt\": \"a\"}\n", &auto()).unwrap();
    assert_eq!(d.rows[0].prompt, text("a"));
    let sg = r#"[{"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}]"#;
    let d = load_str(&format!("\u{feff}{sg}"), &auto()).unwrap();
    assert_eq!(d.rows[0].prompt, text("q"));
}

#[test]
fn isl_filters_count_rows_apart_from_bad_ones() {
    // Prompts of 1, 2, 3, 4, 5 estimated tokens (4 characters each), and one bad row.
    let mut content = String::new();
    for n in 1..=5 {
        content += &format!("{{\"prompt\": \"{}\"}}\n", "abcd".repeat(n));
    }
    content += "{}\n";
    let cases = [
        (None, None, vec![1, 2, 3, 4, 5], 0),
        (Some(2), None, vec![2, 3, 4, 5], 1),
        (None, Some(3), vec![1, 2, 3], 2),
        (Some(2), Some(4), vec![2, 3, 4], 2),
        (Some(3), Some(3), vec![3], 4),
    ];
    for (min_isl, max_isl, kept, filtered) in cases {
        let opts = LoadOptions {
            min_isl,
            max_isl,
            ..auto()
        };
        let d = load_str(&content, &opts).unwrap();
        let lens: Vec<u64> = d.rows.iter().map(|r| r.prompt.estimated_tokens()).collect();
        assert_eq!(lens, kept, "{min_isl:?}..{max_isl:?}");
        assert_eq!((d.filtered, d.skipped), (filtered, 1), "{min_isl:?}..{max_isl:?}");
    }
    let messages = r#"{"messages": [{"role": "system", "content": "abcd"}, {"role": "user", "content": "abcdabcd"}]}"#;
    let d = load_str(
        messages,
        &LoadOptions {
            min_isl: Some(3),
            ..auto()
        },
    )
    .unwrap();
    assert_eq!(d.rows.len(), 1, "messages count all their contents");

    let e = load_str(
        &content,
        &LoadOptions {
            min_isl: Some(10),
            ..auto()
        },
    )
    .unwrap_err();
    assert!(
        e.contains("no row left: 5 outside --dataset-min-isl/--dataset-max-isl, 1 bad (first at line 6: no `prompt`"),
        "{e}"
    );
    let only_good: String = content.lines().take(5).map(|l| format!("{l}\n")).collect();
    let e = load_str(
        &only_good,
        &LoadOptions {
            min_isl: Some(10),
            max_isl: Some(20),
            ..auto()
        },
    )
    .unwrap_err();
    assert!(
        e.contains("all 5 rows are outside --dataset-min-isl/--dataset-max-isl (10..20 estimated tokens)"),
        "{e}"
    );
    let e = load_str(
        &only_good,
        &LoadOptions {
            min_isl: Some(10),
            max_isl: Some(2),
            ..auto()
        },
    )
    .unwrap_err();
    assert!(e.contains("--dataset-min-isl 10 is above --dataset-max-isl 2"), "{e}");
}

#[test]
fn mooncake_filters_use_the_real_length() {
    let content = "{\"input_length\": 100, \"hash_ids\": [1]}\n{\"input_length\": 1000, \"hash_ids\": [1, 2]}\n";
    let d = load_str(
        content,
        &LoadOptions {
            max_isl: Some(500),
            ..auto()
        },
    )
    .unwrap();
    assert_eq!((d.rows.len(), d.filtered), (1, 1));
}

#[test]
fn max_rows_stops_reading() {
    let files = Files::new();
    let line = format!("{{\"prompt\": \"{}\"}}\n", "x".repeat(1000));
    let jsonl = files.write("big.jsonl", &line.repeat(5000));
    let d = load(
        &jsonl,
        &LoadOptions {
            max_rows: Some(3),
            ..auto()
        },
    )
    .unwrap();
    assert_eq!(d.rows.len(), 3);
    assert!(
        d.bytes < 5000 * line.len() as u64,
        "stopped early: {} bytes read",
        d.bytes
    );

    let element = r#"{"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}"#;
    let elements = vec![element; 50_000].join(",\n");
    let sharegpt = files.write("big.json", &format!("[{elements}]"));
    let d = load(
        &sharegpt,
        &LoadOptions {
            max_rows: Some(2),
            ..auto()
        },
    )
    .unwrap();
    assert_eq!(d.rows.iter().map(|r| r.row).collect::<Vec<_>>(), [0, 1]);
    assert!(d.bytes < elements.len() as u64);
    let all = load(&sharegpt, &auto()).unwrap();
    assert_eq!(all.rows.len(), 50_000);
    assert_eq!(all.bytes, elements.len() as u64 + 2);

    // Bad and filtered rows do not count towards the limit.
    let content = "{}\n{\"prompt\": \"a\"}\n{\"prompt\": \"abcdefghi\"}\n{\"prompt\": \"b\"}\n{\"prompt\": \"c\"}\n";
    let d = load_str(
        content,
        &LoadOptions {
            max_rows: Some(2),
            max_isl: Some(1),
            ..auto()
        },
    )
    .unwrap();
    assert_eq!(d.rows.iter().map(|r| r.row).collect::<Vec<_>>(), [1, 3]);
    assert_eq!((d.skipped, d.filtered), (1, 1));
    let e = load_str(
        content,
        &LoadOptions {
            max_rows: Some(0),
            ..auto()
        },
    )
    .unwrap_err();
    assert!(e.contains("at least 1"), "{e}");
}

#[test]
fn images_are_resolved_against_the_dataset_folder() {
    let files = Files::new();
    std::fs::create_dir(files.0.path().join("sub")).unwrap();
    let path = files.0.path().join("sub").join("d.jsonl");
    std::fs::write(
        &path,
        r#"{"prompt": "p", "images": ["a.png", "pics/b.jpg", "/abs/c.png", "data:image/png;base64,AA", "https://h/d.png"]}"#,
    )
    .unwrap();
    let d = load(&path, &auto()).unwrap();
    let dir = files.0.path().join("sub");
    let want = [
        dir.join("a.png").to_string_lossy().into_owned(),
        dir.join("pics/b.jpg").to_string_lossy().into_owned(),
        "/abs/c.png".into(),
        "data:image/png;base64,AA".into(),
        "https://h/d.png".into(),
    ];
    assert_eq!(d.rows[0].images, want);
    assert_eq!(
        resolve_image(Path::new(""), "a.png"),
        None,
        "a file in the current folder"
    );
}

#[test]
fn file_errors_are_one_line_naming_the_file() {
    let files = Files::new();
    let empty = files.write("empty.jsonl", "");
    let blank = files.write("blank.jsonl", "\n  \n");
    let bad = files.write("bad.jsonl", "{\"x\": 1}\n\n{\"y\": 2}\n");
    let sharegpt_empty = files.write("empty.json", "[]");
    let mooncake_as_jsonl = files.write("trace.jsonl", "{\"input_length\": 3, \"hash_ids\": [1]}\n");
    let cases: Vec<(PathBuf, LoadOptions, String)> = vec![
        (files.0.path().join("nope.jsonl"), auto(), "does not exist".into()),
        (files.0.path().to_path_buf(), auto(), "is a directory".into()),
        (empty.clone(), auto(), "is empty".into()),
        (blank.clone(), forced(DatasetFormat::Jsonl), "is empty".into()),
        (
            bad.clone(),
            auto(),
            "has no usable jsonl row: 2 bad, the first at line 1: no `prompt`, `text` or `messages` field".into(),
        ),
        (sharegpt_empty.clone(), auto(), "has no sharegpt rows".into()),
        (
            mooncake_as_jsonl.clone(),
            forced(DatasetFormat::Jsonl),
            "has no usable jsonl row: 1 bad, the first at line 1: no `prompt`".into(),
        ),
    ];
    for (path, opts, want) in cases {
        let e = load(&path, &opts).unwrap_err();
        assert!(e.contains(&path.display().to_string()), "{e}");
        assert!(e.contains(&want) && !e.contains('\n'), "{e} (wanted {want})");
    }
}

#[test]
fn dataset_reports_its_size_and_time() {
    let content = "{\"prompt\": \"a\"}\n".repeat(10);
    let d = load_str(&content, &auto()).unwrap();
    assert_eq!(d.bytes, content.len() as u64);
    assert!(d.load_time > Duration::ZERO);
    assert_eq!((d.skipped, d.filtered, d.first_skip_reason), (0, 0, None));
}
