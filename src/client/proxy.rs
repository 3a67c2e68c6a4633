//! HTTP proxies from the environment, read the way curl reads them.
//!
//! `http_proxy` / `HTTP_PROXY` serve http:// servers (each request goes to the proxy in absolute
//! form), `https_proxy` / `HTTPS_PROXY` serve https:// servers (a CONNECT tunnel with TLS inside),
//! `all_proxy` / `ALL_PROXY` either, and `no_proxy` / `NO_PROXY` lists the hosts that go direct.
//! The lowercase form wins when both are set (as in curl, which reads only `http_proxy` in
//! lowercase).
//!
//! Which proxy serves a host, the NO_PROXY rules and the URL's credentials are hyper-util's
//! [`Matcher`] (curl's rules: comma-separated entries, `*`, a domain with its subdomains, IP
//! addresses and CIDR blocks). What stays ours: which variable wins and its name in messages, a
//! clear line for a URL we cannot use, and the CONNECT tunnel, which runs on our own stream so
//! that the arrival stamps of the load path keep working through a proxy.
//!
//! Credentials in a proxy URL become `Proxy-Authorization: Basic`, a sensitive header like the
//! API key: a proxy is only ever shown as host:port.

use http::{HeaderValue, Uri};
use hyper_util::client::proxy::matcher::Matcher;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The proxy variables of an environment: the process's, or none at all (the demo, whose
/// simulator is on this machine).
#[derive(Debug, Clone, Default)]
pub struct ProxyEnv {
    vars: Vec<(&'static str, String)>,
}

const VAR_NAMES: &[&str] = &[
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
];

impl ProxyEnv {
    pub fn from_process() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let vars = VAR_NAMES
            .iter()
            .filter_map(|name| Some((*name, lookup(name)?)))
            .filter(|(_, value)| !value.trim().is_empty())
            .collect();
        Self { vars }
    }

    /// The first of `names` that is set, with its name.
    fn first(&self, names: &[&'static str]) -> Option<(&'static str, &str)> {
        names.iter().find_map(|wanted| {
            self.vars
                .iter()
                .find(|(name, _)| name == wanted)
                .map(|(name, value)| (*name, value.trim()))
        })
    }
}

/// A proxy that connections go through.
#[derive(Clone)]
pub struct Proxy {
    pub host: String,
    pub port: u16,
    /// The variable it came from, for messages.
    pub source: &'static str,
    /// `Basic …` from the URL's credentials, marked sensitive.
    authorization: Option<HeaderValue>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Proxy({})", self.address())
    }
}

/// curl's port for a proxy URL that names none.
const DEFAULT_PROXY_PORT: u16 = 1080;

impl Proxy {
    /// `host:port` (IPv6 in brackets): how the proxy is shown, never with its credentials.
    pub fn address(&self) -> String {
        host_port(&self.host, self.port)
    }

    pub fn authorization(&self) -> Option<&HeaderValue> {
        self.authorization.as_ref()
    }
}

/// `host:port`, with an IPv6 literal in brackets.
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The proxy for a server at `host:port` (https when `tls`), or `None` to connect directly.
/// Errors never repeat the proxy URL, which may hold a password.
pub fn proxy_for(env: &ProxyEnv, tls: bool, host: &str, port: u16) -> Result<Option<Proxy>, String> {
    let candidates: &[&'static str] = if tls {
        &["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"]
    } else {
        &["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"]
    };
    let Some((source, value)) = env.first(candidates) else {
        return Ok(None);
    };
    let no_proxy = env.first(&["no_proxy", "NO_PROXY"]).map_or("", |(_, v)| v);
    // The winning variable serves both schemes in this matcher: the scheme was chosen above.
    let matcher = Matcher::builder().http(value).https(value).no(no_proxy).build();
    let scheme = if tls { "https" } else { "http" };
    let target: Uri = format!("{scheme}://{}/", host_port(host, port))
        .parse()
        .map_err(|_| format!("cannot form a URL for host {host} to look up its proxy"))?;
    let unusable = |why: &str| format!("{source} is not a usable proxy URL: {why}; fix or unset it");
    if bypassed(no_proxy, &target) {
        return Ok(None);
    }
    let Some(intercept) = matcher.intercept(&target) else {
        return Err(unusable(&match value.split_once("://") {
            Some((scheme, _)) if !scheme.eq_ignore_ascii_case("http") => format!(
                "{scheme}:// proxies are not supported, only http:// (the tunnel to an https server is still TLS)"
            ),
            _ => "it is not a URL of the form http://[user:password@]host:port".to_string(),
        }));
    };
    let uri = intercept.uri();
    match uri.scheme_str() {
        Some("http") => {}
        Some(other) => {
            return Err(unusable(&format!(
                "{other}:// proxies are not supported, only http:// (the tunnel to an https server is still TLS)"
            )))
        }
        None => return Err(unusable("it has no scheme")),
    }
    let Some(proxy_host) = uri.host().filter(|h| !h.is_empty()) else {
        return Err(unusable("it has no host"));
    };
    // `Uri::port` is `None` for a port that is not a number: look at the authority itself.
    let authority = uri.authority().map_or("", |a| a.as_str());
    let port = match authority.rsplit_once(':').filter(|(_, p)| !p.contains(']')) {
        None => DEFAULT_PROXY_PORT,
        Some((_, port)) => port.parse().map_err(|_| unusable("its port is invalid"))?,
    };
    Ok(Some(Proxy {
        host: proxy_host.trim_start_matches('[').trim_end_matches(']').to_string(),
        port,
        source,
        authorization: intercept.basic_auth().cloned(),
    }))
}

/// Does NO_PROXY send `target` direct? hyper-util's rules, asked with a stand-in proxy so the
/// answer does not depend on whether the real proxy URL parses.
fn bypassed(no_proxy: &str, target: &Uri) -> bool {
    Matcher::builder()
        .all("http://stand-in:1")
        .no(no_proxy)
        .build()
        .intercept(target)
        .is_none()
}

/// Largest CONNECT answer head read.
const CONNECT_HEAD_LIMIT: usize = 16 * 1024;

/// Asks the proxy on `stream` for a tunnel to `target` (host:port). On success the stream
/// carries the TLS handshake with the server.
pub async fn tunnel(stream: &mut TcpStream, proxy: &Proxy, target: &str) -> Result<(), String> {
    let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n").into_bytes();
    if let Some(authorization) = &proxy.authorization {
        request.extend_from_slice(b"Proxy-Authorization: ");
        request.extend_from_slice(authorization.as_bytes());
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"\r\n");
    let via = format!("proxy {} (from {})", proxy.address(), proxy.source);
    stream
        .write_all(&request)
        .await
        .map_err(|e| format!("{via} broke the connection before answering CONNECT to {target}: {e}"))?;
    // Byte by byte: whatever follows the answer's head belongs to the TLS handshake, so nothing
    // past it may be read here. The head is short and this happens once per connection.
    let mut head = Vec::with_capacity(128);
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= CONNECT_HEAD_LIMIT {
            return Err(format!("{via} sent an oversized answer to CONNECT to {target}"));
        }
        match stream.read_u8().await {
            Ok(byte) => head.push(byte),
            Err(_) => {
                return Err(format!(
                    "{via} closed the connection instead of answering CONNECT to {target}"
                ))
            }
        }
    }
    let status_line = String::from_utf8_lossy(head.split(|b| *b == b'\n').next().unwrap_or(&[])).into_owned();
    let mut parts = status_line.trim().splitn(3, ' ');
    let (version, status, reason) = (parts.next(), parts.next(), parts.next().unwrap_or(""));
    let status: u16 = match (version, status.and_then(|s| s.parse().ok())) {
        (Some(v), Some(status)) if v.starts_with("HTTP/") => status,
        _ => {
            return Err(format!(
                "{via} answered CONNECT to {target} with something that is not HTTP"
            ))
        }
    };
    if (200..300).contains(&status) {
        return Ok(());
    }
    let reason: String = reason.chars().filter(|c| !c.is_control()).take(100).collect();
    let advice = match (status, proxy.authorization.is_some()) {
        (407, false) => format!(
            "put credentials in {} (http://user:password@host:port), or add the host to NO_PROXY",
            proxy.source
        ),
        (407, true) => format!("check the credentials in {}", proxy.source),
        _ => "check the proxy's rules, or add the host to NO_PROXY to connect directly".to_string(),
    };
    Err(format!(
        "{via} refused CONNECT to {target} (HTTP {status} {reason}); {advice}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn env(pairs: &[(&str, &str)]) -> ProxyEnv {
        ProxyEnv::from_lookup(|name| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn picks_the_variable_for_the_scheme() {
        let e = env(&[("HTTP_PROXY", "http://plain:3128"), ("HTTPS_PROXY", "secure:8443")]);
        let p = proxy_for(&e, false, "api.example.com", 80).unwrap().unwrap();
        assert_eq!((p.address().as_str(), p.source), ("plain:3128", "HTTP_PROXY"));
        let p = proxy_for(&e, true, "api.example.com", 443).unwrap().unwrap();
        assert_eq!((p.address().as_str(), p.source), ("secure:8443", "HTTPS_PROXY"));
        // Lowercase wins; ALL_PROXY is the fallback; no port means curl's 1080.
        let e = env(&[("https_proxy", "http://low"), ("HTTPS_PROXY", "http://up:1")]);
        assert_eq!(proxy_for(&e, true, "h", 443).unwrap().unwrap().address(), "low:1080");
        let e = env(&[("ALL_PROXY", "http://all:9")]);
        assert_eq!(proxy_for(&e, false, "h", 80).unwrap().unwrap().source, "ALL_PROXY");
        assert!(proxy_for(&env(&[("HTTP_PROXY", "  ")]), false, "h", 80)
            .unwrap()
            .is_none());
        assert!(proxy_for(&env(&[("HTTPS_PROXY", "http://p:1")]), false, "h", 80)
            .unwrap()
            .is_none());
        let e = env(&[("HTTP_PROXY", "http://[::1]:3128")]);
        assert_eq!(proxy_for(&e, false, "h", 80).unwrap().unwrap().address(), "[::1]:3128");
    }

    #[test]
    fn no_proxy_matches_like_curl() {
        // (NO_PROXY, host, goes direct)
        let cases = [
            ("*", "anything", true),
            ("example.com", "example.com", true),
            ("example.com", "api.example.com", true),
            (".example.com", "example.com", true),
            (".example.com", "api.example.com", true),
            ("example.com", "notexample.com", false),
            ("localhost, 127.0.0.1", "127.0.0.1", true),
            ("localhost, 127.0.0.1", "localhost", true),
            ("EXAMPLE.com", "Api.Example.COM", true),
            ("10.0.0.0/8", "10.1.2.3", true),
            ("10.0.0.0/8", "11.1.2.3", false),
            ("::1", "::1", true),
            ("127.0.0.2", "127.0.0.1", false),
            ("", "h", false),
        ];
        for (no_proxy, host, direct) in cases {
            let e = env(&[("HTTP_PROXY", "http://p:1"), ("no_proxy", no_proxy)]);
            let got = proxy_for(&e, false, host, 8000).unwrap().is_none();
            assert_eq!(got, direct, "NO_PROXY={no_proxy:?} host {host}");
        }
        // NO_PROXY applies even when the proxy URL is unusable: those hosts never need it.
        let e = env(&[("HTTP_PROXY", "socks5://p:1"), ("no_proxy", "127.0.0.1")]);
        assert!(proxy_for(&e, false, "127.0.0.1", 8000).unwrap().is_none());
    }

    #[test]
    fn credentials_become_a_sensitive_basic_header() {
        let e = env(&[("HTTPS_PROXY", "http://us%40er:p%3Ass%40w@proxy:3128/")]);
        let p = proxy_for(&e, true, "h", 443).unwrap().unwrap();
        assert_eq!(p.address(), "proxy:3128");
        let value = p.authorization().unwrap();
        assert!(value.is_sensitive());
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(value.to_str().unwrap().strip_prefix("Basic ").unwrap())
            .unwrap();
        assert_eq!(decoded, b"us@er:p:ss@w");
        assert!(!format!("{p:?}").contains("ss@w"));
    }

    #[test]
    fn bad_proxy_urls_do_not_echo_the_password() {
        for (value, says) in [
            ("socks5://u:hunter2@h:1", "socks5"),
            ("ftp://u:hunter2@h:1", "ftp"),
            ("http://u:hunter2@h:port", "port"),
            ("http://u:hunter2@", "http://[user:password@]host:port"),
        ] {
            let e = proxy_for(&env(&[("ALL_PROXY", value)]), false, "h", 80).unwrap_err();
            assert!(
                e.contains(says) && e.contains("ALL_PROXY") && !e.contains("hunter2"),
                "{e}"
            );
        }
    }
}
