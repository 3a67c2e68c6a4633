//! HTTPS: the rustls client configuration, built once per run and shared by every connection,
//! and certificate failures turned into one sentence that says what to do.
//!
//! Trust is the system's root certificates (rustls-native-certs, which also honours
//! SSL_CERT_FILE and SSL_CERT_DIR) plus the certificates of `--ca-cert`. No root list is bundled:
//! llm-bench trusts what curl and the rest of the machine trust, and a machine without roots is
//! told so instead of silently trusting a list compiled into the binary.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::path::Path;
use std::sync::Arc;

/// How the server's certificate is checked.
pub enum Trust {
    /// Against the system's roots plus these (from `--ca-cert`).
    Verify { extra_roots: RootCertStore },
    /// Not at all (`--insecure`).
    Insecure,
}

/// Reads a `--ca-cert` file: PEM with one or more certificates, each usable as a trust anchor.
pub fn read_ca_file(path: &Path) -> Result<RootCertStore, String> {
    let shown = path.display();
    if path.is_dir() {
        return Err(format!(
            "--ca-cert {shown} is a directory; give a PEM file of CA certificates"
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("--ca-cert {shown} does not exist"),
        _ => format!("cannot read --ca-cert {shown}: {e}"),
    })?;
    // A DER file or anything else without PEM armour: say what is expected.
    if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(format!(
            "--ca-cert {shown} is not a PEM file (expected -----BEGIN CERTIFICATE----- blocks; \
             convert a DER file with `openssl x509 -inform der -in FILE -out FILE.pem`)"
        ));
    }
    let mut roots = RootCertStore::empty();
    for (index, cert) in CertificateDer::pem_slice_iter(&bytes).enumerate() {
        let cert = cert.map_err(|e| format!("--ca-cert {shown}: certificate {} is not valid PEM: {e}", index + 1))?;
        roots.add(cert).map_err(|e| {
            format!(
                "--ca-cert {shown}: certificate {} cannot be used as a CA: {e}",
                index + 1
            )
        })?;
    }
    if roots.is_empty() {
        return Err(format!(
            "--ca-cert {shown} holds no certificate (only other PEM blocks, such as a key); give the CA's certificate"
        ));
    }
    Ok(roots)
}

/// The run's client configuration, offering HTTP/1.1 only (one stream per connection is the
/// design; an HTTP/2 server would otherwise multiplex what should be separate connections).
pub fn client_config(trust: Trust) -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?;
    let mut config = match trust {
        Trust::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
            .with_no_client_auth(),
        Trust::Verify { extra_roots } => {
            let mut roots = system_roots();
            if roots.is_empty() && extra_roots.is_empty() {
                return Err(
                    "no trusted root certificates: the system store is empty (install ca-certificates or \
                     set SSL_CERT_FILE); pass --ca-cert FILE, or --insecure to skip verification"
                        .into(),
                );
            }
            roots.roots.extend(extra_roots.roots);
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The system's roots; certificates that cannot be parsed are skipped, as every TLS client does.
fn system_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    roots
}

/// `--insecure`: any certificate is accepted, but the handshake signature is still checked, so
/// the connection is at least encrypted to whoever holds the presented certificate's key.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// One line for a failed handshake with `host` (at `address`, host:port): the cause, and what
/// to do about it.
pub fn explain_handshake_error(e: &std::io::Error, host: &str, address: &str) -> String {
    let cause = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match cause {
        Some(rustls::Error::InvalidCertificate(problem)) => explain_certificate(problem, host),
        Some(rustls::Error::InvalidMessage(_)) | Some(rustls::Error::InappropriateMessage { .. }) => format!(
            "TLS: {address} did not answer the TLS handshake ({}); if it serves plain HTTP, use http:// in --url",
            cause.map(|c| c.to_string()).unwrap_or_default()
        ),
        Some(rustls::Error::AlertReceived(alert)) => format!(
            "TLS: {address} refused the handshake (alert {alert:?}); it may need a client certificate or another TLS version"
        ),
        Some(other) => format!("TLS: handshake with {address} failed: {other}"),
        None if e.kind() == std::io::ErrorKind::UnexpectedEof => format!(
            "TLS: {address} closed the connection during the handshake; is it serving HTTPS on that port? (use http:// if not)"
        ),
        None => format!("TLS: handshake with {address} failed: {e}"),
    }
}

const SKIP_HINT: &str = "or --insecure to skip verification";

fn explain_certificate(problem: &CertificateError, host: &str) -> String {
    match problem {
        CertificateError::UnknownIssuer => format!(
            "TLS: certificate for {host} is not trusted (UnknownIssuer); pass --ca-cert FILE for a private CA {SKIP_HINT}"
        ),
        CertificateError::NotValidForName => {
            format!("TLS: certificate is not valid for {host} (NotValidForName); use a name it covers in --url, {SKIP_HINT}")
        }
        CertificateError::NotValidForNameContext { presented, .. } => {
            let names: Vec<&str> = presented.iter().map(|p| presented_name(p)).collect();
            format!(
                "TLS: certificate is not valid for {host} (NotValidForName; it names {}); use one of those in --url, {SKIP_HINT}",
                if names.is_empty() { "nothing".to_string() } else { names.join(", ") }
            )
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => format!(
            "TLS: certificate for {host} has expired (Expired); renew it on the server, {SKIP_HINT}"
        ),
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => format!(
            "TLS: certificate for {host} is not valid yet (NotValidYet); check this machine's clock, {SKIP_HINT}"
        ),
        CertificateError::Revoked => {
            format!("TLS: certificate for {host} has been revoked (Revoked); the server needs a new one, {SKIP_HINT}")
        }
        other => format!("TLS: certificate for {host} was rejected ({other:?}); check the server's certificate, {SKIP_HINT}"),
    }
}

/// `DnsName("example.com")` → `example.com` (webpki's rendering of a certificate's names).
fn presented_name(rendered: &str) -> &str {
    match (rendered.find('('), rendered.rfind(')')) {
        (Some(open), Some(close)) if open < close => rendered[open + 1..close].trim_matches('"'),
        _ => rendered,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presented_names_are_unwrapped() {
        assert_eq!(presented_name("DnsName(\"example.com\")"), "example.com");
        assert_eq!(presented_name("IpAddress(127.0.0.1)"), "127.0.0.1");
        assert_eq!(presented_name("odd"), "odd");
    }

    #[test]
    fn certificate_failures_say_what_to_do() {
        let untrusted = explain_certificate(&CertificateError::UnknownIssuer, "127.0.0.1");
        assert!(
            untrusted.contains("not trusted") && untrusted.contains("--ca-cert"),
            "{untrusted}"
        );
        let wrong_name = explain_certificate(
            &CertificateError::NotValidForNameContext {
                expected: ServerName::try_from("localhost").unwrap(),
                presented: vec!["DnsName(\"example.test\")".into()],
            },
            "localhost",
        );
        assert!(wrong_name.contains("it names example.test"), "{wrong_name}");
    }

    #[test]
    fn insecure_config_needs_no_roots() {
        let config = client_config(Trust::Insecure).unwrap();
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }
}
