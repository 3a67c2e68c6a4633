//! Every mistake a user can make gets one clear line on stderr and exit code 2, before any
//! load is sent. Table-driven: (arguments, what the line must say).

mod common;

use common::*;
use llm_bench::sim::SimConfig;
use std::io::{Read, Write};
use std::net::TcpListener;

fn assert_usage_error(args: &[&str], expect: &str) {
    let out = run(args);
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{args:?}\nstdout: {stdout}\nstderr: {stderr}"
    );
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{args:?}: expected one line, got:\n{stderr}");
    assert!(lines[0].starts_with("llm-bench: error: "), "{args:?}: {stderr}");
    assert!(
        lines[0].to_lowercase().contains(&expect.to_lowercase()),
        "{args:?}: expected {expect:?} in:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn flag_values_table() {
    let s = Scratch::new();
    let log = s.log();
    let not_image = s.path("notes.jpg");
    std::fs::write(&not_image, "hello").unwrap();
    let empty = s.path("empty.png");
    std::fs::write(&empty, "").unwrap();
    let a_file = s.path("a-file");
    std::fs::write(&a_file, "x").unwrap();
    let key_only = s.path("key.pem");
    std::fs::write(
        &key_only,
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIOp5fJ4AQ0bCdzD7NR0y4Lk0X0KN2cj9X0uUa3mYrBqd\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let not_a_cert = s.path("garbage.pem");
    std::fs::write(
        &not_a_cert,
        "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["-st", "10", "-et", "5"], "smaller than"),
        (vec!["-ts", "0"], "at least 1"),
        (vec!["-st", "0"], "at least 1"),
        (vec!["-st", "-3"], "at least 1"),
        (vec!["-st", "ten"], "whole number"),
        (vec!["-pp", "0"], "at least 1"),
        (vec!["-tg", "1.5"], "whole number"),
        (vec!["-d", "-1"], "0 (step mode) or more"),
        (vec!["-d", "30m"], "--duration"),
        (vec!["--duration", "5 parsecs"], "not a time"),
        (vec!["--duration", "0s"], "more than zero"),
        (vec!["-d", "1", "--duration", "1h"], "not both"),
        (vec!["--step-duration", "2s", "--warmup", "3s"], "shorter"),
        (vec!["--min-tps", "-2"], "above zero"),
        (vec!["--max-error-rate", "20"], "between 0 and 1"),
        (vec!["--threads", "0"], "at least 1"),
        (vec!["-u", "localhost:8000/v1"], "no scheme"),
        (vec!["-u", "htp://localhost/v1"], "not supported"),
        (vec!["-mm", "-ip", "/nonexistent/photo.jpg"], "does not exist"),
        (vec!["-mm", "-ip", not_image.to_str().unwrap()], "not a JPEG"),
        (vec!["-mm", "-ip", empty.to_str().unwrap()], "empty"),
        (vec!["-mm", "-ip", "/tmp"], "directory"),
        (vec!["-H", "no-colon"], "Name: value"),
        (vec!["--extra-body", "{cache_prompt: false}"], "not valid JSON"),
        (vec!["--extra-body", "[1, 2]"], "JSON object"),
        (vec!["--extra-body", r#"{"stream": false}"#], "streamed"),
        (vec!["--extra-body", r#"{"model": "x"}"#], "--model"),
        (vec!["--ca-cert", "/nonexistent/ca.pem"], "does not exist"),
        (vec!["--ca-cert", "/tmp"], "is a directory"),
        (vec!["--ca-cert", a_file.to_str().unwrap()], "is not a PEM file"),
        (vec!["--ca-cert", key_only.to_str().unwrap()], "holds no certificate"),
        (
            vec!["--ca-cert", not_a_cert.to_str().unwrap()],
            "cannot be used as a CA",
        ),
        (vec!["--no-such-flag"], "unexpected argument"),
        (
            vec!["--out", a_file.to_str().unwrap(), "-u", "http://127.0.0.1:9/v1"],
            "is a file",
        ),
        (vec!["-l", "/proc/llm-bench/x.log"], "log file"),
        // Load models, rates and SLOs.
        (vec!["--rate", "0"], "not a request rate"),
        (vec!["--rate", "2,,4"], "not a request rate"),
        (vec!["--rate", "fast"], "not a request rate"),
        (vec!["--rate", "4"], "needs a length"),
        (
            vec!["--rate", "4", "--requests", "10", "--step-duration", "5s"],
            "not both",
        ),
        (vec!["--rate", "4", "--requests", "0"], "at least 1"),
        (
            vec!["--rate", "4", "--requests", "5", "--arrival", "uniform"],
            "uniform",
        ),
        (
            vec![
                "--rate",
                "4",
                "--requests",
                "5",
                "--arrival",
                "poisson",
                "--burstiness",
                "0.5",
            ],
            "gamma",
        ),
        (
            vec!["--rate", "4", "--requests", "5", "--burstiness", "-1"],
            "above zero",
        ),
        (vec!["--max-concurrency", "4"], "--rate"),
        (vec!["--arrival", "gamma"], "--rate"),
        (vec!["--max-backlog", "10"], "--rate"),
        (vec!["--ramp-up", "5s"], "--ramp-up needs"),
        (vec!["--rate", "2,4", "--duration", "1m"], "one --rate"),
        (vec!["--duration", "1m", "--requests", "5"], "stress run"),
        (
            vec!["--rate", "4", "--requests", "5", "--slo", "ttfb=500ms"],
            "unknown metric",
        ),
        (
            vec!["--rate", "4", "--requests", "5", "--slo", "ttft=500"],
            "with a unit",
        ),
        (
            vec!["--rate", "4", "--requests", "5", "--slo", "ttft_p0=1s"],
            "percentile",
        ),
        (
            vec!["--rate", "4", "--requests", "5", "--slo", "ttft=1s,ttft=2s"],
            "twice",
        ),
        (vec!["--slo-from", "later"], "invalid value"),
        (vec!["capacity"], "needs --slo"),
        (
            vec!["capacity", "--slo", "ttft_p99=1s", "--rate", "4"],
            "chooses its own load points",
        ),
        (
            vec!["capacity", "--slo", "ttft_p99=1s", "--min", "10", "--max", "5"],
            "below --min",
        ),
        (vec!["capacity", "--slo", "ttft_p99=1s", "--precision", "0%"], "share"),
        (vec!["capacity", "--slo", "ttft_p99=1s", "-i", "-o"], "one test"),
    ];
    for (mut args, expect) in cases {
        if !args.contains(&"-l") {
            args.extend(["-l", &log]);
        }
        assert_usage_error(&args, expect);
    }
}

#[test]
fn server_problems_are_one_line_each() {
    let s = Scratch::new();
    let log = s.log();
    let out_dir = s.out();
    let base = |url: &str| -> Vec<String> {
        vec![
            "-o".into(),
            "-st".into(),
            "2".into(),
            "-et".into(),
            "2".into(),
            "-u".into(),
            url.into(),
            "-l".into(),
            log.clone(),
            "--out".into(),
            out_dir.clone(),
        ]
    };
    let check = |args: Vec<String>, expect: &str| {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_usage_error(&refs, expect);
    };

    // Nothing listening.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    check(base(&format!("http://127.0.0.1:{port}/v1")), "cannot reach the server");

    let sim = Sim::start(fast_sim());
    // Wrong path.
    check(base(&sim.url.replace("/v1", "/api")), "404");
    // Unknown model: the models the server has are listed.
    let mut args = base(&sim.url);
    args.extend(["--model".into(), "no-such-model".into()]);
    check(args, "llm-bench-sim");

    // A key is required.
    let locked = Sim::start(SimConfig {
        api_key: Some("sk-right".into()),
        ..fast_sim()
    });
    check(base(&locked.url), "api key");
    let mut args = base(&locked.url);
    args.extend(["--api-key".into(), "sk-wrong".into()]);
    check(args, "api key");

    // A server without vision support.
    let blind = Sim::start(SimConfig {
        reject_images: true,
        ..fast_sim()
    });
    let image = s.path("photo.png");
    std::fs::write(&image, PNG).unwrap();
    let mut args = base(&blind.url);
    args.extend(["-mm".into(), "-ip".into(), image.display().to_string()]);
    check(args, "rejects image input");
    // Only the two pre-flight requests (text, then image) reached the server: no load.
    assert!(
        blind.stats().requests_total <= 2,
        "load was sent after the image was rejected"
    );

    // A server that answers with a web page.
    let html = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}/v1", html.local_addr().unwrap().port());
    std::thread::spawn(move || {
        for stream in html.incoming().flatten().take(8) {
            let mut stream = stream;
            let mut buf = [0u8; 8192];
            let _ = stream.read(&mut buf);
            let body = "<html><title>Welcome</title></html>";
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let mut args = base(&url);
    args.extend(["--model".into(), "m".into()]);
    check(args, "event stream");
}

#[test]
fn too_low_an_open_file_limit_is_one_line_before_any_load() {
    let sim = Sim::start(fast_sim());
    let s = Scratch::new();
    let mut cmd = s.command(&sim.url, &["-o", "-st", "500", "-et", "500"]);
    // SAFETY: only setrlimit between fork and exec. Hard and soft limit 200: llm-bench cannot raise it.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            let limit = libc::rlimit {
                rlim_cur: 200,
                rlim_max: 200,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().expect("llm-bench runs");
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].contains("open files") && lines[0].contains("ulimit -n"),
        "{stderr}"
    );
    assert_eq!(sim.stats().requests_total, 0, "no load may be sent");
}

/// A run that stops before any load leaves no empty results folder behind (the log keeps its
/// line); a folder the user gave that holds other files is left as it was.
#[test]
fn a_run_stopped_before_any_load_leaves_no_empty_results() {
    let s = Scratch::new();
    // Nothing listens on port 9 of loopback.
    let fresh = s.path("results/run-1");
    let out = bin()
        .args(["-u", "http://127.0.0.1:9/v1", "-o", "-l", &s.log(), "--out"])
        .arg(&fresh)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{:?}", text(&out));
    assert!(!fresh.exists(), "the results folder stays behind");
    assert!(!s.path("results").exists(), "its parent, made by the run, too");
    let log = std::fs::read_to_string(s.log()).unwrap();
    assert!(log.contains("cannot reach"), "{log}");

    let kept = s.path("kept");
    std::fs::create_dir_all(&kept).unwrap();
    std::fs::write(kept.join("notes.txt"), "mine").unwrap();
    let out = bin()
        .args(["-u", "http://127.0.0.1:9/v1", "-o", "-l", &s.log(), "--out"])
        .arg(&kept)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(kept.join("notes.txt").exists());
    assert!(!kept.join("requests.jsonl").exists(), "the empty requests.jsonl goes");
}
