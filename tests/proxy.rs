//! Proxies from the environment, through a small HTTP proxy run by the test: http:// runs are
//! forwarded in absolute form, https:// runs tunnel with CONNECT, NO_PROXY goes direct, the
//! proxy's credentials arrive as Proxy-Authorization and appear in no output.

mod common;

use base64::Engine;
use common::tls::{port_of, TestCa, TlsFront, Validity};
use common::*;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const SHORT_RUN: &[&str] = &["-i", "-st", "1", "-et", "2", "-ts", "1", "-tg", "4"];
const USER: &str = "bench-user";
const PASSWORD: &str = "pr0xy-s3cret-771";

/// The first request head of each connection the proxy took.
#[derive(Debug, Clone)]
struct Seen {
    request_line: String,
    host: Option<String>,
    proxy_authorization: Option<String>,
}

/// An HTTP proxy on a loopback port: CONNECT tunnels (or refuses them with `connect_status`) and
/// forwards absolute-form requests to the host they name.
struct TestProxy {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    _runtime: tokio::runtime::Runtime,
}

impl TestProxy {
    fn start(connect_status: u16) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        runtime.spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(serve(client, connect_status, log.clone()));
            }
        });
        Self {
            port,
            seen,
            _runtime: runtime,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn url_with_credentials(&self) -> String {
        format!("http://{USER}:{PASSWORD}@127.0.0.1:{}", self.port)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn serve(mut client: TcpStream, connect_status: u16, log: Arc<Mutex<Vec<Seen>>>) {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        match client.read_u8().await {
            Ok(byte) => head.push(byte),
            Err(_) => return,
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let request_line = text.lines().next().unwrap_or("").to_string();
    let header = |name: &str| {
        text.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    };
    log.lock().unwrap().push(Seen {
        request_line: request_line.clone(),
        host: header("host"),
        proxy_authorization: header("proxy-authorization"),
    });
    let mut parts = request_line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let upstream_address = if method == "CONNECT" {
        if connect_status != 200 {
            let _ = client
                .write_all(format!("HTTP/1.1 {connect_status} No\r\nContent-Length: 0\r\n\r\n").as_bytes())
                .await;
            return;
        }
        target.to_string()
    } else {
        // http://host:port/path → host:port
        let rest = target.strip_prefix("http://").unwrap_or(target);
        rest.split('/').next().unwrap_or("").to_string()
    };
    let Ok(mut upstream) = TcpStream::connect(&upstream_address).await else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
        return;
    };
    if method == "CONNECT" {
        if client
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await
            .is_err()
        {
            return;
        }
    } else if upstream.write_all(&head).await.is_err() {
        // The server (hyper) takes absolute-form requests as they are.
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// Every file a run left, with stdout and stderr: none may hold the proxy's password.
fn assert_password_absent(s: &Scratch, out: &std::process::Output) {
    let (stdout, stderr) = text(out);
    let mut haystacks = vec![("stdout".to_string(), stdout), ("stderr".to_string(), stderr)];
    let mut dirs = vec![s.dir.path().to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                let content = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
                haystacks.push((path.display().to_string(), content));
            }
        }
    }
    assert!(haystacks.len() >= 5, "{haystacks:?}");
    let encoded = basic(USER, PASSWORD);
    let encoded = encoded.trim_start_matches("Basic ");
    for (name, content) in haystacks {
        assert!(!content.contains(PASSWORD), "the proxy password leaked into {name}");
        assert!(!content.contains(encoded), "the proxy credentials leaked into {name}");
    }
}

#[test]
fn http_proxy_forwards_http_runs_in_absolute_form() {
    let sim = Sim::start(fast_sim());
    let proxy = TestProxy::start(200);
    let s = Scratch::new();
    let out = s
        .command(&sim.url, SHORT_RUN)
        .env("HTTP_PROXY", proxy.url_with_credentials())
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("Proxy: ")).count(),
        1,
        "{stdout}"
    );
    assert!(stdout.contains(&format!("Proxy: 127.0.0.1:{} (from HTTP_PROXY)", proxy.port)));
    assert_eq!(s.records().len(), 3);
    assert_eq!(s.summary()["config"]["proxy"], format!("127.0.0.1:{}", proxy.port));

    let seen = proxy.seen();
    // The model list, the test request, and one connection per worker.
    assert!(seen.len() >= 5, "{seen:?}");
    let authority = sim.url.trim_start_matches("http://").trim_end_matches("/v1");
    // The server's /metrics is scraped through the same proxy, in the same form.
    let origin = sim.url.trim_end_matches("/v1");
    assert!(
        seen.iter()
            .any(|r| r.request_line.contains(&format!(" {origin}/metrics "))),
        "{seen:?}"
    );
    for request in &seen {
        assert!(
            [format!(" {origin}/v1/"), format!(" {origin}/metrics ")]
                .iter()
                .any(|form| request.request_line.contains(form.as_str())),
            "not absolute form: {request:?}"
        );
        assert_eq!(request.host.as_deref(), Some(authority));
        assert_eq!(request.proxy_authorization, Some(basic(USER, PASSWORD)));
    }
    assert_password_absent(&s, &out);
}

#[test]
fn no_proxy_goes_direct() {
    let sim = Sim::start(fast_sim());
    let proxy = TestProxy::start(200);
    let s = Scratch::new();
    // Lowercase forms count too.
    let out = s
        .command(&sim.url, SHORT_RUN)
        .env("http_proxy", proxy.url())
        .env("no_proxy", "localhost,127.0.0.1")
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(!stdout.contains("Proxy:"), "{stdout}");
    assert_eq!(s.records().len(), 3);
    assert!(proxy.seen().is_empty(), "{:?}", proxy.seen());
}

#[test]
fn https_proxy_tunnels_tls_with_connect() {
    let sim = Sim::start(fast_sim());
    let ca = TestCa::new("llm-bench test CA");
    let front = TlsFront::start(port_of(&sim.url), ca.server_cert(&["127.0.0.1"], Validity::Current));
    let proxy = TestProxy::start(200);
    let s = Scratch::new();
    let ca_file = s.path("ca.pem");
    ca.write_pem(&ca_file);
    let mut args = SHORT_RUN.to_vec();
    args.extend(["--ca-cert", ca_file.to_str().unwrap()]);
    let out = s
        .command(&front.url("127.0.0.1"), &args)
        .env("HTTPS_PROXY", proxy.url_with_credentials())
        // An http:// proxy setting must not be used for an https:// server.
        .env("HTTP_PROXY", "http://127.0.0.1:9")
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains(&format!("Proxy: 127.0.0.1:{} (from HTTPS_PROXY)", proxy.port)));
    assert_eq!(s.records().len(), 3);

    let seen = proxy.seen();
    assert!(seen.len() >= 5, "{seen:?}");
    let target = format!("127.0.0.1:{}", front.port);
    for request in &seen {
        assert_eq!(request.request_line, format!("CONNECT {target} HTTP/1.1"));
        assert_eq!(request.host.as_deref(), Some(target.as_str()));
        assert_eq!(request.proxy_authorization, Some(basic(USER, PASSWORD)));
    }
    assert_eq!(front.handshakes(), seen.len(), "every tunnel carried TLS");
    assert_password_absent(&s, &out);
}

#[test]
fn proxy_problems_are_one_line_each() {
    let sim = Sim::start(fast_sim());
    let ca = TestCa::new("llm-bench test CA");
    let front = TlsFront::start(port_of(&sim.url), ca.server_cert(&["127.0.0.1"], Validity::Current));
    let s = Scratch::new();
    let ca_file = s.path("ca.pem");
    ca.write_pem(&ca_file);
    let run_with = |proxy_url: &str| {
        let out = s
            .command(
                &front.url("127.0.0.1"),
                &[SHORT_RUN, &["--ca-cert", ca_file.to_str().unwrap()]].concat(),
            )
            .env("HTTPS_PROXY", proxy_url)
            .output()
            .unwrap();
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "expected one line, got:\n{stderr}");
        assert!(!stderr.contains(PASSWORD), "{stderr}");
        lines[0].to_string()
    };

    let refusing = TestProxy::start(403);
    let line = run_with(&refusing.url_with_credentials());
    assert!(
        line.contains(&format!(
            "proxy 127.0.0.1:{} (from HTTPS_PROXY) refused CONNECT",
            refusing.port
        )) && line.contains("HTTP 403")
            && line.contains("NO_PROXY"),
        "{line}"
    );

    let wants_credentials = TestProxy::start(407);
    let line = run_with(&wants_credentials.url());
    assert!(
        line.contains("HTTP 407") && line.contains("put credentials in HTTPS_PROXY"),
        "{line}"
    );

    let line = run_with(&format!("socks5://{USER}:{PASSWORD}@127.0.0.1:1"));
    assert!(line.contains("HTTPS_PROXY is not a usable proxy URL"), "{line}");
    assert_eq!(sim.stats().requests_total, 0, "nothing reached the server");
}
