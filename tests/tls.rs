//! HTTPS against the simulator behind a TLS front whose certificate comes from a CA made in
//! the test: trusted through --ca-cert, refused without it in one line, skipped with --insecure.

mod common;

use common::tls::{port_of, TestCa, TlsFront, Validity};
use common::*;
use std::process::Output;

/// A short run: two steps of the input test, so every connection makes one TLS handshake.
const SHORT_RUN: &[&str] = &["-i", "-st", "1", "-et", "2", "-ts", "1", "-tg", "4"];

/// The system's roots for a test: a CA that signed nothing here, so that "not trusted" does not
/// depend on the machine's certificate store.
fn unrelated_roots(s: &Scratch) -> String {
    let path = s.path("system-roots.pem");
    TestCa::new("unrelated system CA").write_pem(&path);
    path.display().to_string()
}

fn run_https(s: &Scratch, url: &str, extra: &[&str]) -> Output {
    let mut args = SHORT_RUN.to_vec();
    args.extend_from_slice(extra);
    s.command(url, &args)
        .env("SSL_CERT_FILE", unrelated_roots(s))
        .output()
        .unwrap()
}

/// The single error line of a run that stopped before any load.
fn one_error_line(out: &Output) -> String {
    let (stdout, stderr) = text(out);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line, got:\n{stderr}");
    lines[0].to_string()
}

#[test]
fn private_ca_via_ca_cert_carries_a_run() {
    let sim = Sim::start(fast_sim());
    let ca = TestCa::new("llm-bench test CA");
    let front = TlsFront::start(
        port_of(&sim.url),
        ca.server_cert(&["127.0.0.1", "localhost"], Validity::Current),
    );
    let s = Scratch::new();
    let ca_file = s.path("ca.pem");
    ca.write_pem(&ca_file);

    let out = run_https(&s, &front.url("127.0.0.1"), &["--ca-cert", ca_file.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(!stdout.contains("warning"), "{stdout}");
    let records = s.records();
    assert_eq!(records.len(), 3, "one request at concurrency 1, two at 2");
    assert!(records.iter().all(|r| r["ok"] == true), "{records:?}");
    assert_eq!(s.summary()["config"]["insecure"], false);
    // The model list, the test request, then one connection per worker: every one over TLS,
    // every one speaking HTTP/1.1 although the server also offers h2.
    assert!(front.handshakes() >= 5, "{} handshakes", front.handshakes());
    assert_eq!(front.http11_handshakes(), front.handshakes());
}

#[test]
fn untrusted_certificate_is_one_line_before_any_load() {
    let sim = Sim::start(fast_sim());
    let ca = TestCa::new("llm-bench test CA");
    let front = TlsFront::start(port_of(&sim.url), ca.server_cert(&["127.0.0.1"], Validity::Current));
    let s = Scratch::new();
    // Found while listing models, and (with --model) while sending the test request.
    for extra in [&[][..], &["--model", "llm-bench-sim"][..]] {
        let line = one_error_line(&run_https(&s, &front.url("127.0.0.1"), extra));
        assert!(
            line.contains("certificate for 127.0.0.1 is not trusted (UnknownIssuer)")
                && line.contains("--ca-cert FILE")
                && line.contains("--insecure"),
            "{line}"
        );
    }
    assert_eq!(sim.stats().requests_total, 0, "nothing reached the server");
}

#[test]
fn insecure_skips_verification_and_says_so_once() {
    let sim = Sim::start(fast_sim());
    let ca = TestCa::new("llm-bench test CA");
    let front = TlsFront::start(port_of(&sim.url), ca.server_cert(&["127.0.0.1"], Validity::Current));
    let s = Scratch::new();
    let out = run_https(&s, &front.url("127.0.0.1"), &["--insecure"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let warnings: Vec<&str> = stdout.lines().filter(|l| l.contains("--insecure")).collect();
    assert_eq!(
        warnings,
        ["warning: --insecure: TLS certificates are not verified"],
        "{stdout}"
    );
    assert_eq!(s.records().len(), 3);
    assert_eq!(s.summary()["config"]["insecure"], true);
}

#[test]
fn wrong_name_expired_and_plain_http_are_one_line_each() {
    let sim = Sim::start(fast_sim());
    let ca = TestCa::new("llm-bench test CA");
    let s = Scratch::new();
    let ca_file = s.path("ca.pem");
    ca.write_pem(&ca_file);
    let trust = ["--ca-cert", ca_file.to_str().unwrap()];

    let other_name = TlsFront::start(port_of(&sim.url), ca.server_cert(&["example.test"], Validity::Current));
    let line = one_error_line(&run_https(&s, &other_name.url("localhost"), &trust));
    assert!(
        line.contains("not valid for localhost (NotValidForName; it names example.test)"),
        "{line}"
    );

    let expired = TlsFront::start(port_of(&sim.url), ca.server_cert(&["127.0.0.1"], Validity::Expired));
    let line = one_error_line(&run_https(&s, &expired.url("127.0.0.1"), &trust));
    assert!(line.contains("has expired"), "{line}");

    // https:// to a server that speaks plain HTTP.
    let plain = sim.url.replace("http://", "https://");
    let line = one_error_line(&run_https(&s, &plain, &trust));
    assert!(line.contains("use http://"), "{line}");
    assert_eq!(sim.stats().requests_total, 0, "nothing reached the server");
}

#[test]
fn a_kept_alive_tls_connection_closed_by_the_server_is_retried() {
    let sim = Sim::start(fast_sim());
    let ca = TestCa::new("llm-bench test CA");
    // Connections 0 and 1 carry the model list and the test request; 2 is the worker's,
    // opened before the step starts and closed by the server when its first request arrives.
    let front = TlsFront::start_dropping(
        port_of(&sim.url),
        ca.server_cert(&["127.0.0.1"], Validity::Current),
        Some(2),
    );
    let s = Scratch::new();
    let ca_file = s.path("ca.pem");
    ca.write_pem(&ca_file);
    let out = s
        .command(
            &front.url("127.0.0.1"),
            &[
                "-i",
                "-st",
                "1",
                "-et",
                "1",
                "-tg",
                "4",
                "--ca-cert",
                ca_file.to_str().unwrap(),
            ],
        )
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let records = s.records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["ok"], true, "{records:?}");
    assert_eq!(front.handshakes(), 4, "the request was sent again on a new connection");
}
