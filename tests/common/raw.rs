//! A deliberately tiny raw HTTP/1.1 client: it keeps tests free of extra dependencies and lets
//! them see exactly what went over the wire (chunk boundaries, abrupt closes, arrival times).

use llm_bench::sim::{self, SimConfig, SimHandle};
use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

pub struct Conn {
    pub io: BufReader<TcpStream>,
}

#[derive(Debug)]
pub struct Head {
    pub status: u16,
    pub headers: HashMap<String, String>,
}

/// One SSE event: its `data:` payload and when its last byte arrived.
#[derive(Debug)]
pub struct Event {
    pub at: Instant,
    pub data: String,
}

pub struct Stream {
    pub head: Head,
    pub events: Vec<Event>,
    /// The terminating zero-length chunk arrived (false: connection cut).
    pub complete: bool,
    /// How reading ended when it did not end cleanly (e.g. `ConnectionReset`).
    pub failed_with: Option<std::io::ErrorKind>,
    pub sent_at: Instant,
}

impl Stream {
    pub fn content_events(&self) -> Vec<(&Event, Value)> {
        self.events
            .iter()
            .filter(|e| e.data != "[DONE]")
            .filter_map(|e| serde_json::from_str::<Value>(&e.data).ok().map(|v| (e, v)))
            .filter(|(_, v)| {
                let choice = &v["choices"][0];
                choice["delta"]["content"].as_str().is_some_and(|s| !s.is_empty())
                    || choice["text"].as_str().is_some_and(|s| !s.is_empty())
            })
            .collect()
    }
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).unwrap();
        Conn {
            io: BufReader::new(stream),
        }
    }

    pub async fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) {
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            req.push_str(&format!("{name}: {value}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(body);
        self.io
            .get_mut()
            .write_all(req.as_bytes())
            .await
            .expect("write request");
    }

    pub async fn read_head(&mut self) -> Head {
        let mut line = String::new();
        self.io.read_line(&mut line).await.expect("status line");
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {line:?}"));
        let mut headers = HashMap::new();
        loop {
            line.clear();
            self.io.read_line(&mut line).await.expect("header line");
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let (name, value) = l.split_once(':').expect("header");
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
        }
        Head { status, headers }
    }

    /// Reads one chunk of a chunked body; `None` at the end or on a cut.
    pub async fn read_chunk(&mut self) -> Option<Vec<u8>> {
        self.try_read_chunk().await.ok().flatten()
    }

    /// Reads one chunk of a chunked body: `Ok(None)` when the connection closed (or the framing
    /// broke), an error when reading failed (a reset).
    pub async fn try_read_chunk(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        let mut line = String::new();
        if self.io.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        let Ok(size) = usize::from_str_radix(line.trim(), 16) else {
            return Ok(None);
        };
        let mut data = vec![0; size + 2];
        match self.io.read_exact(&mut data).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        data.truncate(size);
        Ok(Some(data))
    }

    pub async fn read_body(&mut self, head: &Head) -> Vec<u8> {
        if let Some(len) = head.headers.get("content-length") {
            let mut body = vec![0; len.parse().unwrap()];
            self.io.read_exact(&mut body).await.expect("body");
            return body;
        }
        let mut body = Vec::new();
        while let Some(chunk) = self.read_chunk().await {
            if chunk.is_empty() {
                break;
            }
            body.extend_from_slice(&chunk);
        }
        body
    }

    pub async fn read_events(&mut self, head: Head, sent_at: Instant) -> Stream {
        let mut events = Vec::new();
        let mut buf: Vec<u8> = Vec::new();
        let mut complete = false;
        let mut failed_with = None;
        loop {
            let chunk = match self.try_read_chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(e) => {
                    failed_with = Some(e.kind());
                    break;
                }
            };
            if chunk.is_empty() {
                complete = true;
                break;
            }
            let at = Instant::now();
            buf.extend_from_slice(&chunk);
            while let Some(pos) = buf.windows(2).position(|w| w == b"\n\n") {
                let event: Vec<u8> = buf.drain(..pos + 2).collect();
                // Lossy: a test may inject invalid UTF-8 on purpose.
                let text = String::from_utf8_lossy(&event).into_owned();
                let data = text.trim_end().strip_prefix("data: ").expect("data: prefix");
                events.push(Event {
                    at,
                    data: data.to_string(),
                });
            }
        }
        Stream {
            head,
            events,
            complete,
            failed_with,
            sent_at,
        }
    }

    pub async fn request(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (Head, Value) {
        self.send(method, path, headers, body).await;
        let head = self.read_head().await;
        let body = self.read_body(&head).await;
        let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        (head, value)
    }

    pub async fn stream(&mut self, path: &str, body: &Value) -> Stream {
        let sent_at = Instant::now();
        self.send("POST", path, &[], &body.to_string()).await;
        let head = self.read_head().await;
        self.read_events(head, sent_at).await
    }
}

pub async fn get(addr: SocketAddr, path: &str) -> (Head, Value) {
    Conn::open(addr).await.request("GET", path, &[], "").await
}

pub async fn post(addr: SocketAddr, path: &str, body: &Value) -> (Head, Value) {
    Conn::open(addr)
        .await
        .request("POST", path, &[], &body.to_string())
        .await
}

/// A fast in-process simulator (1 ms steps, no prefill cost) for wire-level tests.
pub fn fast() -> SimConfig {
    SimConfig {
        port: 0,
        decode_base_ms: 1.0,
        decode_ms_per_seq: 0.0,
        prefill_us_per_token: 0.0,
        ..SimConfig::default()
    }
}

/// Starts the simulator on the test's own runtime.
pub async fn start(config: SimConfig) -> SimHandle {
    sim::start(config).await.expect("simulator starts")
}
