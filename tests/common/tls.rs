//! HTTPS for the tests: a certificate authority made on the spot, and a TLS-terminating
//! forwarder that puts the plain-HTTP simulator behind a certificate of our choosing.

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A private CA, as a company would run one.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// What a server certificate should get wrong.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    Current,
    Expired,
}

impl TestCa {
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Self { issuer }
    }

    /// Writes the CA certificate as PEM (what `--ca-cert` reads).
    pub fn write_pem(&self, path: &Path) {
        std::fs::write(path, self.issuer.pem()).unwrap();
    }

    /// A server certificate for `names` (host names or IP addresses), signed by this CA.
    pub fn server_cert(&self, names: &[&str], validity: Validity) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(DnType::CommonName, names[0]);
        if validity == Validity::Expired {
            params.not_before = rcgen::date_time_ymd(2000, 1, 1);
            params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.der().clone(), key.into())
    }
}

/// Accepts TLS on a loopback port and copies each connection to a plain TCP port.
pub struct TlsFront {
    pub port: u16,
    handshakes: Arc<AtomicUsize>,
    http11: Arc<AtomicUsize>,
    _runtime: tokio::runtime::Runtime,
}

impl TlsFront {
    pub fn start(upstream_port: u16, cert: (CertificateDer<'static>, PrivateKeyDer<'static>)) -> Self {
        Self::start_dropping(upstream_port, cert, None)
    }

    /// Like [`TlsFront::start`], but the `drop_nth` accepted connection (0-based) is closed as
    /// soon as its first request arrives, the way a server ends a kept-alive connection: a TCP
    /// close without TLS close_notify, and no byte of a response.
    pub fn start_dropping(
        upstream_port: u16,
        cert: (CertificateDer<'static>, PrivateKeyDer<'static>),
        drop_nth: Option<usize>,
    ) -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.0], cert.1)
            .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let port = listener.local_addr().unwrap().port();
        let handshakes = Arc::new(AtomicUsize::new(0));
        let http11 = Arc::new(AtomicUsize::new(0));
        let (done, with_http11) = (handshakes.clone(), http11.clone());
        runtime.spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let (done, with_http11) = (done.clone(), with_http11.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let index = done.fetch_add(1, Ordering::SeqCst);
                    if tls.get_ref().1.alpn_protocol() == Some(b"http/1.1") {
                        with_http11.fetch_add(1, Ordering::SeqCst);
                    }
                    if drop_nth == Some(index) {
                        let mut request = [0u8; 1];
                        let _ = tls.read(&mut request).await;
                        // Half-close the TCP stream under TLS (no RST for unread bytes), then
                        // read until the client gives up.
                        let _ = tls.get_mut().0.shutdown().await;
                        let mut sink = Vec::new();
                        let _ = tls.read_to_end(&mut sink).await;
                        return;
                    }
                    let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", upstream_port)).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
                });
            }
        });
        Self {
            port,
            handshakes,
            http11,
            _runtime: runtime,
        }
    }

    /// The API base URL through this front, for `host` (which must resolve to 127.0.0.1).
    pub fn url(&self, host: &str) -> String {
        format!("https://{host}:{}/v1", self.port)
    }

    /// Completed TLS handshakes.
    pub fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::SeqCst)
    }

    /// Handshakes in which the client chose HTTP/1.1 by ALPN.
    pub fn http11_handshakes(&self) -> usize {
        self.http11.load(Ordering::SeqCst)
    }
}

/// The port of a `http://127.0.0.1:PORT/v1` URL.
pub fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}
