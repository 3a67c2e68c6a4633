//! Opening a connection to the server: TCP, directly or to a proxy; a CONNECT tunnel when an
//! https server is reached through a proxy; then TLS for https. Every route ends in one stream
//! type, so the HTTP/1.1 client above it is the same for all, and a plain connection pays one
//! enum match per read or write.
//!
//! A [`Connector`] is built once per run and cloned into every worker: its TLS configuration
//! (trust roots, session cache) is shared, never rebuilt per connection.

use super::proxy::{self, Proxy, ProxyEnv};
use super::record::ErrorClass;
use super::tls::{self, Trust};
use crate::net::{ArrivalClock, StampedTcp};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// Why no connection could be opened. Each message is one sentence; the TLS and proxy ones
/// already say what to do.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// No TCP connection to the server, or no HTTP exchange on it.
    #[error("{0}")]
    Unreachable(String),
    /// The TLS handshake failed, usually on the server's certificate.
    #[error("{0}")]
    Tls(String),
    /// The proxy could not be reached or refused the tunnel.
    #[error("{0}")]
    Proxy(String),
}

impl ConnectError {
    /// How a request that failed this way is counted.
    pub fn class(&self) -> ErrorClass {
        match self {
            ConnectError::Unreachable(_) => ErrorClass::Connect,
            ConnectError::Tls(_) => ErrorClass::Tls,
            ConnectError::Proxy(_) => ErrorClass::Proxy,
        }
    }
}

/// TLS for an https server: the shared configuration and the name the certificate must carry.
#[derive(Clone)]
struct TlsTarget {
    connector: TlsConnector,
    /// SNI and the name verified: the URL's host (an IP address is verified, not sent).
    server_name: ServerName<'static>,
}

/// How connections to one server are opened; cheap to clone.
#[derive(Clone)]
pub struct Connector {
    host: String,
    port: u16,
    /// Set by [`Connector::new`] for https://; without it an https:// connector refuses to connect.
    tls: Option<TlsTarget>,
    /// The URL is https://.
    wants_tls: bool,
    proxy: Option<Proxy>,
}

/// What the user chose about TLS and proxies.
#[derive(Default)]
pub struct TransportOptions {
    /// `--ca-cert`, already read.
    pub extra_roots: Option<rustls::RootCertStore>,
    /// `--insecure`.
    pub insecure: bool,
    pub proxies: ProxyEnv,
}

impl Connector {
    /// Plain TCP to `host:port`, no proxy: what a URL alone gives, before [`Connector::new`].
    pub fn direct(host: &str, port: u16, tls: bool) -> Self {
        Self {
            host: host.to_string(),
            port,
            tls: None,
            wants_tls: tls,
            proxy: None,
        }
    }

    /// The connector of a run: the TLS configuration is built here, once, for an https server.
    pub fn new(host: &str, port: u16, wants_tls: bool, options: TransportOptions) -> Result<Self, String> {
        let proxy = proxy::proxy_for(&options.proxies, wants_tls, host, port)?;
        let tls = if wants_tls {
            let trust = if options.insecure {
                Trust::Insecure
            } else {
                Trust::Verify {
                    extra_roots: options.extra_roots.unwrap_or_else(rustls::RootCertStore::empty),
                }
            };
            let server_name = ServerName::try_from(host.to_string())
                .map_err(|_| format!("`{host}` is not a host name TLS can verify"))?;
            Some(TlsTarget {
                connector: TlsConnector::from(tls::client_config(trust)?),
                server_name,
            })
        } else {
            None
        };
        Ok(Self {
            host: host.to_string(),
            port,
            tls,
            wants_tls,
            proxy,
        })
    }

    pub fn proxy(&self) -> Option<&Proxy> {
        self.proxy.as_ref()
    }

    /// Requests go to an HTTP proxy in absolute form (an http:// server through a proxy).
    pub fn forwards_through_proxy(&self) -> bool {
        self.proxy.is_some() && !self.wants_tls
    }

    /// Opens a connection, ready for HTTP/1.1, with the clock its reads stamp.
    pub async fn open(&self) -> Result<(Connection, Arc<ArrivalClock>), ConnectError> {
        let server = proxy::host_port(&self.host, self.port);
        let mut stream = match &self.proxy {
            None => TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(|e| ConnectError::Unreachable(format!("cannot connect to {server}: {e}")))?,
            Some(proxy) => TcpStream::connect((proxy.host.as_str(), proxy.port))
                .await
                .map_err(|e| {
                    ConnectError::Proxy(format!(
                        "cannot connect to proxy {} (from {}): {e}; start it, fix {}, or add {} to NO_PROXY",
                        proxy.address(),
                        proxy.source,
                        proxy.source,
                        self.host
                    ))
                })?,
        };
        // Each event is small and latency-critical.
        let _ = stream.set_nodelay(true);
        let stamp = |stream| {
            StampedTcp::new(stream)
                .map_err(|e| ConnectError::Unreachable(format!("cannot use the connection to {server}: {e}")))
        };
        if !self.wants_tls {
            let (stream, clock) = stamp(stream)?;
            return Ok((Connection::Plain(stream), clock));
        }
        let Some(tls) = &self.tls else {
            return Err(ConnectError::Tls(
                "TLS: no TLS configuration for this https:// URL (a bug: build the endpoint with Connector::new)"
                    .into(),
            ));
        };
        if let Some(proxy) = &self.proxy {
            proxy::tunnel(&mut stream, proxy, &server)
                .await
                .map_err(ConnectError::Proxy)?;
        }
        // Stamped under TLS: the clock sees when the encrypted bytes arrived.
        let (stream, clock) = stamp(stream)?;
        let stream = tls
            .connector
            .connect(tls.server_name.clone(), stream)
            .await
            .map_err(|e| ConnectError::Tls(tls::explain_handshake_error(&e, &self.host, &server)))?;
        Ok((Connection::Tls(Box::new(stream)), clock))
    }

    /// Opens a connection and runs hyper's HTTP/1.1 handshake, for the few pre-flight requests;
    /// the connection is driven by its own task, which ends when the returned sender is dropped.
    /// (The load itself reads its connections directly: see `super::h1`.)
    pub async fn open_http1<B>(&self) -> Result<SendRequest<B>, ConnectError>
    where
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (connection, _clock) = self.open().await?;
        let (sender, driver) = hyper::client::conn::http1::Builder::new()
            .handshake(TokioIo::new(connection))
            .await
            .map_err(|e| {
                ConnectError::Unreachable(format!(
                    "HTTP handshake with {} failed: {e}",
                    proxy::host_port(&self.host, self.port)
                ))
            })?;
        tokio::spawn(async move {
            let _ = driver.await;
        });
        Ok(sender)
    }
}

/// An open connection: plain TCP, or TLS over TCP (boxed: its buffers would make every plain
/// connection as large).
pub enum Connection {
    Plain(StampedTcp),
    Tls(Box<TlsStream<StampedTcp>>),
}

impl AsyncRead for Connection {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Connection::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Connection::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Connection {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Connection::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Connection::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Connection::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Connection::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Connection::Plain(s) => s.is_write_vectored(),
            Connection::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Connection::Plain(s) => Pin::new(s).poll_flush(cx),
            Connection::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Connection::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Connection::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
