//! The live view: on a terminal (a pseudo-terminal made by util-linux `script`) it is drawn and
//! redrawn with ANSI codes while the log file gets the same lines as always and none of the
//! view; through a pipe there is no view and no escape code at all.

mod common;

use common::*;
use std::process::Command;

/// What only the live view writes: its first line's mark, its time labels, the sparkline bars.
fn live_markers(text: &str) -> Vec<&'static str> {
    ["»", "elapsed ", " left", "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"]
        .into_iter()
        .filter(|m| text.contains(m))
        .collect()
}

/// A single-quoted shell word.
fn quoted(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

const ARGS: [&str; 12] = [
    "-o",
    "-st",
    "1",
    "-et",
    "2",
    "-ts",
    "1",
    "-tg",
    "8",
    "-pp",
    "20",
    "--step-duration",
];

#[test]
fn live_view_on_a_terminal_and_never_in_the_log() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("SKIPPED: util-linux `script` is not installed, so no pseudo-terminal can be made");
        return;
    }
    let sim = Sim::start(fast_sim());
    let s = Scratch::new();
    let mut args: Vec<String> = ARGS.iter().map(|a| a.to_string()).collect();
    args.extend(["2s", "-u", &sim.url, "-l", &s.log(), "--out", &s.out()].map(String::from));
    let line = std::iter::once(env!("CARGO_BIN_EXE_llm-bench").to_string())
        .chain(args)
        .map(|w| quoted(&w))
        .collect::<Vec<_>>()
        .join(" ");
    let mut script = Command::new("script");
    script
        .args(["-qfec", &line, "/dev/null"])
        .env("LC_ALL", "C")
        .env("TERM", "xterm");
    for var in PROXY_VARS
        .iter()
        .chain(&["OPENAI_API_KEY", "OPENAI_BASE_URL", "LLM_BENCH_API_KEY"])
    {
        script.env_remove(var);
    }
    let out = script.output().expect("script runs");
    let (terminal, stderr) = text(&out);
    assert!(out.status.success(), "{terminal}\n{stderr}");
    // Drawn and redrawn in place: cursor up, clear to the end of the screen.
    assert!(terminal.contains("\x1b[3A\r\x1b[J"), "{terminal:?}");
    let shown = live_markers(&terminal);
    for mark in ["»", "elapsed ", " left"] {
        assert!(shown.contains(&mark), "{mark:?} not on the terminal: {terminal:?}");
    }
    assert!(shown.len() > 3, "no sparkline on the terminal: {terminal:?}");
    assert!(terminal.contains("step 2/2"), "{terminal:?}");

    let log = std::fs::read_to_string(s.path("run.log")).unwrap();
    assert!(
        log.contains("[output] concurrency 2:"),
        "the step lines are logged: {log}"
    );
    assert!(live_markers(&log).is_empty(), "live view in the log: {log}");
    assert!(!log.contains('\x1b'), "escape codes in the log: {log:?}");
    assert!(s.summary()["steps"].as_array().unwrap().len() == 2);
}

#[test]
fn a_piped_run_prints_plain_lines() {
    let sim = Sim::start(fast_sim());
    let s = Scratch::new();
    let mut args = ARGS.to_vec();
    args.push("1s");
    let out = s.command(&sim.url, &args).env("LC_ALL", "C").output().unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("[output] concurrency 2:"), "{stdout}");
    assert!(!stdout.contains('\x1b') && !stderr.contains('\x1b'), "{stdout:?}");
    assert!(live_markers(&stdout).is_empty(), "{stdout}");
}
