//! A minimal HTTP/1.1 client connection for the load path.
//!
//! A worker sends one request at a time on its connection and reads the answer in the same
//! task: the request goes out in one write, the response head is parsed in place, and the body's
//! framing (chunked, a length, or until close) is undone over one read buffer. No dispatcher
//! task, channel or waker sits between the socket and the SSE decoder, which keeps the client's
//! own cost per streamed event low. Pre-flight requests, which are few, still use hyper.

use super::connect::Connection;
use super::endpoint::Endpoint;
use crate::net::ArrivalClock;
use bytes::{Buf, Bytes, BytesMut};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};

/// Most response-head bytes accepted before the head counts as not HTTP.
const MAX_HEAD: usize = 64 * 1024;
/// Most headers in a response head.
const MAX_HEADERS: usize = 64;
/// Read buffer kept free before each read.
const READ_RESERVE: usize = 16 * 1024;
/// Longest chunk-size line (with extensions) accepted.
const MAX_CHUNK_LINE: usize = 4096;

/// Why a response could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// The peer closed the connection (including TLS without close_notify).
    Closed,
    /// The peer reset the connection.
    Reset(io::Error),
    /// Another I/O failure.
    Io(io::Error),
    /// The bytes are not HTTP/1.1.
    Invalid(String),
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::UnexpectedEof | io::ErrorKind::BrokenPipe => ReadError::Closed,
            io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => ReadError::Reset(e),
            _ => ReadError::Io(e),
        }
    }
}

/// A response head: status, headers, and how its body is framed.
#[derive(Debug)]
pub struct Head {
    pub status: http::StatusCode,
    pub headers: http::HeaderMap,
    pub body: Framing,
    /// The server will close the connection after this response.
    pub close: bool,
}

/// How the body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Empty,
    Length(u64),
    Chunked(ChunkState),
    UntilClose,
}

/// Where the chunked decoder stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkState {
    Size,
    Data(u64),
    DataEnd,
    Trailers,
    Done,
}

/// One open connection and its read buffer.
pub struct H1 {
    io: Connection,
    clock: Arc<ArrivalClock>,
    buf: BytesMut,
}

impl H1 {
    pub fn new(io: Connection, clock: Arc<ArrivalClock>) -> Self {
        Self {
            io,
            clock,
            buf: BytesMut::with_capacity(READ_RESERVE),
        }
    }

    /// Arrival times of what this connection reads.
    pub fn clock(&self) -> &ArrivalClock {
        &self.clock
    }

    /// Whether the connection can carry another request: nothing unread is waiting, and the
    /// server has not closed it while it sat idle (checked without waiting).
    pub async fn reusable(&mut self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let io = &mut self.io;
        std::future::poll_fn(|cx| {
            let mut probe = [0u8; 1];
            let mut probe = ReadBuf::new(&mut probe);
            // Pending: nothing to read, still open (the poll also registered interest,
            // harmlessly). Ready: end of file, an error, or bytes nobody asked for.
            Poll::Ready(Pin::new(&mut *io).poll_read(cx, &mut probe).is_pending())
        })
        .await
    }

    /// Sends a request: its head and its body in one vectored write (writev), so the body is
    /// not copied into a request buffer first (a long prompt's body is megabytes).
    pub async fn send(&mut self, head: &[u8], body: &[u8]) -> Result<(), ReadError> {
        let mut request = Buf::chain(head, body);
        self.io.write_all_buf(&mut request).await?;
        self.io.flush().await?;
        Ok(())
    }

    /// Reads more bytes; `false` at the end of the stream.
    async fn fill(&mut self) -> Result<bool, ReadError> {
        if self.buf.capacity() - self.buf.len() < READ_RESERVE / 4 {
            self.buf.reserve(READ_RESERVE);
        }
        match self.io.read_buf(&mut self.buf).await {
            Ok(0) => Ok(false),
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads the response head (skipping interim 1xx answers).
    pub async fn read_head(&mut self) -> Result<Head, ReadError> {
        loop {
            if !self.buf.is_empty() {
                if let Some(head) = self.parse_head()? {
                    if head.status.is_informational() && head.status != http::StatusCode::SWITCHING_PROTOCOLS {
                        continue;
                    }
                    return Ok(head);
                }
                if self.buf.len() > MAX_HEAD {
                    return Err(ReadError::Invalid(format!("response head over {MAX_HEAD} bytes")));
                }
            }
            if !self.fill().await? {
                return Err(ReadError::Closed);
            }
        }
    }

    fn parse_head(&mut self) -> Result<Option<Head>, ReadError> {
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut slots);
        let consumed = match response.parse(&self.buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(e) => return Err(ReadError::Invalid(e.to_string())),
        };
        let status = response
            .code
            .and_then(|c| http::StatusCode::from_u16(c).ok())
            .ok_or_else(|| ReadError::Invalid("no valid status code".into()))?;
        let mut headers = http::HeaderMap::with_capacity(response.headers.len());
        for h in response.headers.iter() {
            if let (Ok(name), Ok(value)) = (
                http::HeaderName::from_bytes(h.name.as_bytes()),
                http::HeaderValue::from_bytes(h.value),
            ) {
                headers.append(name, value);
            }
        }
        let http10 = response.version == Some(0);
        self.buf.advance(consumed);
        let body = framing(status, &headers)?;
        let connection = header_str(&headers, http::header::CONNECTION).to_ascii_lowercase();
        let close = connection.contains("close") || (http10 && !connection.contains("keep-alive"));
        Ok(Some(Head {
            status,
            headers,
            body,
            close,
        }))
    }

    /// The next piece of body data, as soon as any is there; `None` at the end of the body.
    /// Cancel-safe: state changes only after a read has completed.
    pub async fn next_data(&mut self, framing: &mut Framing) -> Result<Option<Bytes>, ReadError> {
        loop {
            match framing {
                Framing::Empty | Framing::Length(0) => return Ok(None),
                Framing::Length(left) => {
                    if self.buf.is_empty() && !self.fill().await? {
                        return Err(ReadError::Closed);
                    }
                    let take = (*left).min(self.buf.len() as u64);
                    *left -= take;
                    return Ok(Some(self.buf.split_to(take as usize).freeze()));
                }
                Framing::UntilClose => {
                    if self.buf.is_empty() && !self.fill().await? {
                        return Ok(None);
                    }
                    return Ok(Some(self.buf.split().freeze()));
                }
                Framing::Chunked(state) => {
                    if let Some(data) = self.step_chunked(state)? {
                        return Ok(Some(data));
                    }
                    if *state == ChunkState::Done {
                        return Ok(None);
                    }
                    // The decoder needs more bytes to go on.
                    if !self.fill().await? {
                        return Err(ReadError::Closed);
                    }
                }
            }
        }
    }

    /// Advances the chunked decoder over the buffer. Returns data when there is some; `None`
    /// when it is done or needs more bytes.
    fn step_chunked(&mut self, state: &mut ChunkState) -> Result<Option<Bytes>, ReadError> {
        loop {
            match *state {
                ChunkState::Size => {
                    let Some(end) = find_crlf(&self.buf) else {
                        if self.buf.len() > MAX_CHUNK_LINE {
                            return Err(ReadError::Invalid("chunk size line too long".into()));
                        }
                        return Ok(None);
                    };
                    let size = parse_chunk_size(&self.buf[..end])?;
                    self.buf.advance(end + 2);
                    *state = if size == 0 {
                        ChunkState::Trailers
                    } else {
                        ChunkState::Data(size)
                    };
                }
                ChunkState::Data(left) => {
                    if self.buf.is_empty() {
                        return Ok(None);
                    }
                    let take = left.min(self.buf.len() as u64);
                    *state = if take == left {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left - take)
                    };
                    return Ok(Some(self.buf.split_to(take as usize).freeze()));
                }
                ChunkState::DataEnd => {
                    if self.buf.len() < 2 {
                        return Ok(None);
                    }
                    if &self.buf[..2] != b"\r\n" {
                        return Err(ReadError::Invalid("chunk data not followed by CRLF".into()));
                    }
                    self.buf.advance(2);
                    *state = ChunkState::Size;
                }
                ChunkState::Trailers => {
                    let Some(end) = find_crlf(&self.buf) else {
                        if self.buf.len() > MAX_HEAD {
                            return Err(ReadError::Invalid("trailers too long".into()));
                        }
                        return Ok(None);
                    };
                    self.buf.advance(end + 2);
                    if end == 0 {
                        *state = ChunkState::Done;
                        return Ok(None);
                    }
                }
                ChunkState::Done => return Ok(None),
            }
        }
    }

    /// Reads the whole body (up to `limit` bytes; more is an error).
    pub async fn read_to_end(&mut self, framing: &mut Framing, limit: usize) -> Result<Bytes, ReadError> {
        let mut all = BytesMut::new();
        while let Some(data) = self.next_data(framing).await? {
            if all.len() + data.len() > limit {
                return Err(ReadError::Invalid(format!("body over {limit} bytes")));
            }
            all.extend_from_slice(&data);
        }
        Ok(all.freeze())
    }
}

fn header_str(headers: &http::HeaderMap, name: http::HeaderName) -> &str {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// How a response's body is framed (RFC 9112 §6.3, for the responses a client can get).
fn framing(status: http::StatusCode, headers: &http::HeaderMap) -> Result<Framing, ReadError> {
    if status.is_informational() || status == http::StatusCode::NO_CONTENT || status == http::StatusCode::NOT_MODIFIED {
        return Ok(Framing::Empty);
    }
    // Every Transfer-Encoding line counts; chunked is the last coding when present.
    let chunked = headers
        .get_all(http::header::TRANSFER_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| coding.trim().eq_ignore_ascii_case("chunked"));
    if chunked {
        return Ok(Framing::Chunked(ChunkState::Size));
    }
    // Several Content-Length values (or lines) must all agree, and be plain digits.
    let mut length = None;
    for value in headers.get_all(http::header::CONTENT_LENGTH) {
        for part in value.to_str().unwrap_or("").split(',') {
            let part = part.trim();
            let n: u64 = part
                .bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| part.parse().ok())
                .flatten()
                .ok_or_else(|| ReadError::Invalid(format!("invalid content-length {part:?}")))?;
            if length.is_some_and(|l| l != n) {
                return Err(ReadError::Invalid("conflicting content-length values".into()));
            }
            length = Some(n);
        }
    }
    Ok(length.map_or(Framing::UntilClose, Framing::Length))
}

fn find_crlf(bytes: &[u8]) -> Option<usize> {
    bytes.windows(2).position(|w| w == b"\r\n")
}

fn parse_chunk_size(line: &[u8]) -> Result<u64, ReadError> {
    let digits = line.split(|&b| b == b';').next().unwrap_or(b"");
    let text = std::str::from_utf8(digits).map_err(|_| ReadError::Invalid("chunk size is not text".into()))?;
    let text = text.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ReadError::Invalid(format!("invalid chunk size {text:?}")));
    }
    u64::from_str_radix(text, 16).map_err(|_| ReadError::Invalid(format!("invalid chunk size {text:?}")))
}

/// The head of a POST request whose body is `body_len` bytes; [`H1::send`] writes it and the
/// body together. A header given twice (the API key's Authorization and a `-H Authorization`,
/// or a `-H` for a header llm-bench sets) is sent once, with the last value, as for the
/// pre-flight requests; the body's framing is always llm-bench's own.
pub fn request_head(endpoint: &Endpoint, api_path: &str, body_len: usize) -> Vec<u8> {
    let mut headers = http::HeaderMap::with_capacity(8);
    headers.insert(http::header::HOST, endpoint.authority().clone());
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    headers.insert(
        http::header::ACCEPT,
        http::HeaderValue::from_static("text/event-stream"),
    );
    for (name, value) in endpoint.headers() {
        headers.insert(name.clone(), value.clone());
    }
    headers.remove(http::header::TRANSFER_ENCODING);
    headers.insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(body_len));

    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(b"POST ");
    out.extend_from_slice(endpoint.request_target(api_path).as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in &headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head_of(text: &str) -> Result<Option<Head>, ReadError> {
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut slots);
        let _ = response.parse(text.as_bytes());
        let mut headers = http::HeaderMap::new();
        for h in response.headers.iter() {
            headers.append(
                http::HeaderName::from_bytes(h.name.as_bytes()).unwrap(),
                http::HeaderValue::from_bytes(h.value).unwrap(),
            );
        }
        let status = http::StatusCode::from_u16(response.code.unwrap()).unwrap();
        Ok(Some(Head {
            status,
            body: framing(status, &headers)?,
            close: false,
            headers,
        }))
    }

    #[test]
    fn framing_follows_the_headers() {
        let h = head_of("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.body, Framing::Chunked(ChunkState::Size));
        let h = head_of("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.body, Framing::Length(12));
        let h = head_of("HTTP/1.1 200 OK\r\n\r\n").unwrap().unwrap();
        assert_eq!(h.body, Framing::UntilClose);
        let h = head_of("HTTP/1.1 204 No Content\r\n\r\n").unwrap().unwrap();
        assert_eq!(h.body, Framing::Empty);
        assert!(head_of("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").is_err());
        assert!(head_of("HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n").is_err());
        let h = head_of("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.body, Framing::Length(5));
        assert!(head_of("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n").is_err());
        let h = head_of("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.body, Framing::Chunked(ChunkState::Size));
    }

    #[test]
    fn a_header_given_twice_is_sent_once_with_the_last_value() {
        let mut endpoint = Endpoint::parse(
            "http://127.0.0.1:9/v1",
            Some("sk-env"),
            &[
                ("Authorization".into(), "Bearer other".into()),
                ("Content-Length".into(), "999".into()),
            ],
        )
        .unwrap();
        endpoint.add_header("x-extra", "1");
        let mut bytes = request_head(&endpoint, "/chat/completions", 2);
        bytes.extend_from_slice(b"{}");
        let text = String::from_utf8(bytes).unwrap();
        assert_eq!(text.matches("authorization:").count(), 1, "{text}");
        assert!(text.contains("authorization: Bearer other"), "{text}");
        assert_eq!(text.matches("content-length:").count(), 1, "{text}");
        assert!(text.contains("content-length: 2\r\n"), "{text}");
        assert!(text.starts_with("POST /v1/chat/completions HTTP/1.1\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\n{}"), "{text}");
    }

    #[test]
    fn chunk_sizes() {
        assert_eq!(parse_chunk_size(b"1a").unwrap(), 26);
        assert_eq!(parse_chunk_size(b"10;ext=1").unwrap(), 16);
        assert!(parse_chunk_size(b"zz").is_err());
    }

    /// A connected pair: our side as `H1`, the other as a plain socket.
    async fn pair() -> (H1, tokio::net::TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let (stamped, clock) = crate::net::StampedTcp::new(client).unwrap();
        (H1::new(Connection::Plain(stamped), clock), server)
    }

    #[tokio::test]
    async fn head_and_a_large_body_arrive_whole_and_in_order() {
        let (mut h1, mut server) = pair().await;
        let head = b"POST /v1/chat/completions HTTP/1.1\r\n\r\n".to_vec();
        let body: Vec<u8> = (0..8 << 20).map(|i: u32| (i % 251) as u8).collect();
        let expected = [&head[..], &body[..]].concat();
        let reader = tokio::spawn(async move {
            let mut got = vec![0; expected.len()];
            server.read_exact(&mut got).await.unwrap();
            assert!(got == expected, "the request arrived changed");
        });
        h1.send(&head, &body).await.unwrap();
        reader.await.unwrap();
    }

    #[tokio::test]
    async fn chunked_body_split_anywhere_decodes_to_its_data() {
        let wire: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\nX-T: 1\r\n\r\n";
        for cut in 1..wire.len() {
            let (mut h1, mut server) = pair().await;
            server.write_all(&wire[..cut]).await.unwrap();
            let rest = wire[cut..].to_vec();
            let writer = tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                server.write_all(&rest).await.unwrap();
                server
            });
            let head = h1.read_head().await.unwrap();
            assert_eq!(head.status, 200);
            let mut framing = head.body;
            let body = h1.read_to_end(&mut framing, 1024).await.unwrap();
            assert_eq!(&body[..], b"hello world", "cut at {cut}");
            assert!(h1.buf.is_empty());
            drop(writer.await.unwrap());
        }
    }

    #[tokio::test]
    async fn a_close_before_the_head_or_mid_body_is_reported() {
        let (mut h1, server) = pair().await;
        drop(server);
        assert!(matches!(h1.read_head().await, Err(ReadError::Closed)));

        let (mut h1, mut server) = pair().await;
        server
            .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel")
            .await
            .unwrap();
        drop(server);
        let mut framing = h1.read_head().await.unwrap().body;
        assert_eq!(&h1.next_data(&mut framing).await.unwrap().unwrap()[..], b"hel");
        assert!(matches!(h1.next_data(&mut framing).await, Err(ReadError::Closed)));
    }

    #[tokio::test]
    async fn length_and_close_delimited_bodies() {
        let (mut h1, mut server) = pair().await;
        server
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
            .await
            .unwrap();
        let mut framing = h1.read_head().await.unwrap().body;
        assert_eq!(&h1.read_to_end(&mut framing, 64).await.unwrap()[..], b"hello");
        assert!(
            h1.reusable().await,
            "a complete length-framed answer leaves the connection usable"
        );

        let (mut h1, mut server) = pair().await;
        server
            .write_all(b"HTTP/1.0 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: x\n\n")
            .await
            .unwrap();
        drop(server);
        let head = h1.read_head().await.unwrap();
        assert!(head.close, "HTTP/1.0 without keep-alive closes");
        let mut framing = head.body;
        assert_eq!(framing, Framing::UntilClose);
        assert_eq!(&h1.read_to_end(&mut framing, 64).await.unwrap()[..], b"data: x\n\n");
        assert!(
            h1.read_to_end(&mut Framing::Length(3), 64).await.is_err(),
            "nothing left to read"
        );
    }

    #[tokio::test]
    async fn garbage_is_not_http() {
        let (mut h1, mut server) = pair().await;
        server.write_all(b"SSH-2.0-OpenSSH\r\n\r\n").await.unwrap();
        assert!(matches!(h1.read_head().await, Err(ReadError::Invalid(_))));
    }

    #[tokio::test]
    async fn an_idle_connection_closed_by_the_server_is_not_reused() {
        let (mut h1, server) = pair().await;
        assert!(h1.reusable().await);
        drop(server);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!h1.reusable().await);
    }
}
