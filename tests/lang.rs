//! Chinese and English: `--lang` and the locale choose the language of the console and log
//! lines and of the recommendations; JSON keys and CSV headers stay English whatever the
//! language; and no English sentence reaches the console without the catalogue.

mod common;

use common::*;
use std::path::Path;

/// Any CJK ideograph.
fn has_chinese(text: &str) -> bool {
    text.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
}

/// A short step run against the simulator: two steps, the output test, a speed target (so
/// that there are recommendations about it).
const RUN: &[&str] = &[
    "-o",
    "-st",
    "1",
    "-et",
    "2",
    "-ts",
    "1",
    "-pp",
    "40",
    "-tg",
    "8",
    "--min-tps",
    "1",
];

fn run_with(sim: &Sim, extra: &[&str], env: &[(&str, &str)]) -> (Scratch, String) {
    let s = Scratch::new();
    let mut cmd = s.command(&sim.url, RUN);
    cmd.args(extra);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("llm-bench runs");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{extra:?} {env:?}\n{stdout}\n{stderr}");
    (s, stdout)
}

fn recommendations(s: &Scratch) -> Vec<String> {
    s.summary()["recommendations"]
        .as_array()
        .expect("recommendations")
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn lang_zh_prints_chinese_and_keeps_keys_and_headers_english() {
    let sim = Sim::start(fast_sim());
    let (s, stdout) = run_with(&sim, &["--lang", "zh"], &[]);
    for sentence in ["结果保存在", "并发 1", "建议：", "结果："] {
        assert!(stdout.contains(sentence), "no `{sentence}` on the console:\n{stdout}");
    }
    assert!(!stdout.contains("Recommendations:"), "{stdout}");
    let log = std::fs::read_to_string(s.log()).unwrap();
    assert!(log.contains("结果保存在") && log.contains("建议："), "{log}");

    let recs = recommendations(&s);
    assert!(!recs.is_empty());
    for r in &recs {
        assert!(has_chinese(r), "an English recommendation: {r}");
    }
    let summary = s.summary();
    assert_eq!(summary["config"]["lang"], "zh");
    // Keys stay English.
    for key in ["status", "steps", "recommendations", "config"] {
        assert!(summary.get(key).is_some(), "no `{key}` key");
    }
    let step = &summary["steps"][0];
    for key in ["test", "output_throughput_tps", "ttft_ms"] {
        assert!(step.get(key).is_some(), "no `{key}` in a step");
    }
    let csv = std::fs::read_to_string(s.path("results").join("steps.csv")).unwrap();
    let header = csv.lines().next().unwrap();
    assert!(!has_chinese(header), "{header}");
    assert!(header.contains("output_throughput_tps"), "{header}");
}

#[test]
fn the_locale_chooses_the_language_and_lang_overrides_it() {
    let sim = Sim::start(fast_sim());
    let (s, stdout) = run_with(&sim, &[], &[("LANG", "zh_CN.UTF-8")]);
    assert!(stdout.contains("建议："), "LANG=zh_CN.UTF-8 without --lang:\n{stdout}");
    assert_eq!(s.summary()["config"]["lang"], "zh");

    let (s, stdout) = run_with(&sim, &["--lang", "en"], &[("LANG", "zh_CN.UTF-8")]);
    assert!(stdout.contains("Recommendations:"), "--lang en:\n{stdout}");
    assert!(!has_chinese(&stdout), "--lang en printed Chinese:\n{stdout}");
    assert_eq!(s.summary()["config"]["lang"], "en");
    for r in recommendations(&s) {
        assert!(!has_chinese(&r), "{r}");
    }

    // LC_ALL comes before LANG.
    let (_, stdout) = run_with(&sim, &[], &[("LC_ALL", "C"), ("LANG", "zh_CN.UTF-8")]);
    assert!(stdout.contains("Recommendations:"), "LC_ALL=C:\n{stdout}");
}

#[test]
fn a_bad_lang_is_one_line_and_exit_2() {
    for args in [&["--lang", "fr"][..], &["report", "somewhere", "--lang", "fr"][..]] {
        let out = run(args);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}\n{stdout}\n{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains("--lang") && stderr.contains("fr"), "{stderr}");
    }
}

#[test]
fn usage_errors_are_in_the_language_asked() {
    let s = Scratch::new();
    // Nothing listens on port 9 of the loopback: the pre-flight stops with one line.
    let out = bin()
        .args([
            "--lang",
            "zh",
            "-u",
            "http://127.0.0.1:9/v1",
            "-l",
            &s.log(),
            "--out",
            &s.out(),
        ])
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("无法连接服务器"), "{stderr}");
}

// --- no English sentence bypasses the catalogue ---

/// Calls whose string argument a user reads: a literal handed to one of them with English words
/// in it is a sentence that bypasses the catalogue.
const SINKS: &[&str] = &[
    "warn_line(",
    ".line(",
    ".warn(",
    ".console(",
    ".progress(",
    ".log_only(",
    "warn_results_lost(",
    "println!(",
    "eprintln!(",
    "recommendations.push(",
    "recommendations.insert(",
    "notes.push(",
    "notices.push(",
    "reasons.push(",
    "parts.push(",
    "lines.push(",
    "out.push(",
    "usage(",
    "line.push_str(",
    "text.push_str(",
    "tail.push_str(",
    "latency.push_str(",
];

/// Literals that reach the console but are not sentences of llm-bench's own (file, start of
/// the literal).
const ALLOWED: &[(&str, &str)] = &[
    // The simulator is a test server: its own failures on stderr are for whoever debugs it.
    ("src/sim/server.rs", "llm-bench simulator: accept failed"),
    ("src/sim/conn.rs", "llm-bench simulator: cannot arm a connection reset"),
    // Prometheus text the simulator serves, not a sentence.
];

/// Files whose prints are not llm-bench's user-facing output.
fn skipped(path: &str) -> bool {
    path.ends_with("src/i18n/messages.rs") || path.contains("/dataset/tests.rs") || path.ends_with("/tests.rs")
}

/// The string literal at the start of `text` (after `&`, `format!(` and whitespace), if any.
fn literal_after(text: &str) -> Option<String> {
    let mut rest = text.trim_start();
    rest = rest.strip_prefix('&').unwrap_or(rest).trim_start();
    rest = rest.strip_prefix("format!(").unwrap_or(rest).trim_start();
    let body = rest.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '"' => return Some(out),
            c => out.push(c),
        }
    }
    None
}

/// Once `{placeholders}` are taken out: two words side by side ("in flight", "replays a
/// dataset's"), or three words of three letters or more anywhere, are English; "{:>6} {:>9}",
/// "[{elapsed}] {}" and "llm-bench: {}" are not.
fn has_english_words(literal: &str) -> bool {
    let mut stripped = String::new();
    let mut depth = 0;
    for c in literal.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            c if depth == 0 => stripped.push(c),
            _ => {}
        }
    }
    let bare = |s: &str| -> String {
        s.trim_start_matches('(')
            .trim_end_matches([',', '.', ':', ';', ')', '!', '?'])
            .to_string()
    };
    let word = |s: &str| {
        let s = bare(s);
        (s.len() >= 2 || s == "a") && s.chars().all(|c| c.is_ascii_alphabetic() || c == '\'')
    };
    let words: Vec<&str> = stripped.split(' ').collect();
    let long_words = words
        .iter()
        .filter(|w| bare(w).len() >= 3 && bare(w).chars().all(|c| c.is_ascii_alphabetic()))
        .count();
    long_words >= 3 || words.windows(2).any(|w| word(w[0]) && word(w[1]))
}

/// The code of a file before its test module.
fn code_of(source: &str) -> &str {
    match source.find("#[cfg(test)]\nmod tests") {
        Some(i) => &source[..i],
        None => source,
    }
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// English sentences handed straight to the console, a log, the recommendations or the notes.
fn bypassing_sentences(root: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    files.sort();
    let mut found = Vec::new();
    for path in files {
        let name = path.strip_prefix(root).unwrap().display().to_string();
        if skipped(&name) {
            continue;
        }
        let source = std::fs::read_to_string(&path).unwrap();
        let code = code_of(&source);
        for sink in SINKS {
            for (at, _) in code.match_indices(sink) {
                let Some(literal) = literal_after(&code[at + sink.len()..]) else {
                    continue;
                };
                let allowed = ALLOWED
                    .iter()
                    .any(|(file, start)| name == *file && literal.starts_with(start));
                if has_english_words(&literal) && !allowed {
                    let line = code[..at].lines().count();
                    found.push(format!("{name}:{line}: {sink} \"{literal}\""));
                }
            }
        }
    }
    found
}

#[test]
fn no_english_sentence_bypasses_the_catalogue() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let found = bypassing_sentences(root);
    assert!(
        found.is_empty(),
        "sentences handed to the console without src/i18n/messages.rs (add a Msg and call tr):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_scan_finds_what_it_is_for() {
    for (call, english) in [
        (r#"&format!("Stopping now; {x} left")"#, true),
        (r#""Recommendations:""#, false),
        (r#""in flight""#, true),
        (r#"&format!("  {}", tr(Msg::X, &[]))"#, false),
        (r#"format!("{:>6} {:>9} {:>10}", a, b, c)"#, false),
        (r#"format!("[{elapsed}] {missing} requests sent")"#, true),
        (r#"&format!("llm-bench: {}", x)"#, false),
        (
            r#""--trace-speed replays a dataset's timestamps: add --dataset FILE""#,
            true,
        ),
        (r#""--think-time needs --turns""#, false),
        (r#""== {} ==""#, false),
    ] {
        let literal = literal_after(call).expect(call);
        assert_eq!(has_english_words(&literal), english, "{call}");
    }
}
