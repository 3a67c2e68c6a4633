//! HTTP proxies from the environment, read the way curl reads them.
//!
//! `http_proxy` / `HTTP_PROXY` serve http:// servers (each request goes to the proxy in absolute
//! form), `https_proxy` / `HTTPS_PROXY` serve https:// servers (a CONNECT tunnel with TLS inside),
//! `all_proxy` / `ALL_PROXY` either, and `no_proxy` / `NO_PROXY` lists the hosts that go direct.
//! The lowercase form wins when both are set.
//!
//! Credentials in a proxy URL become `Proxy-Authorization: Basic`, a sensitive header like the
//! API key: a proxy is only ever shown as host:port.

use super::endpoint::split_host_port;
use base64::Engine;
use http::HeaderValue;
use std::net::IpAddr;
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

    /// Parses a proxy URL (`http://user:password@host:port`, or just `host:port`). Errors never
    /// repeat the URL, which may hold a password.
    fn parse(value: &str, source: &'static str) -> Result<Self, String> {
        let unusable = |why: &str| format!("{source} is not a usable proxy URL: {why}; fix or unset it");
        let rest = match value.split_once("://") {
            None => value,
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
            Some((scheme, _)) => {
                return Err(unusable(&format!(
                    "{scheme}:// proxies are not supported, only http:// (the tunnel to an https server is still TLS)"
                )))
            }
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        // A password may contain '@' when not percent-encoded: the host follows the last one.
        let (credentials, host_port_text) = match authority.rsplit_once('@') {
            Some((credentials, host)) => (Some(credentials), host),
            None => (None, authority),
        };
        if host_port_text.is_empty() {
            return Err(unusable("it has no host"));
        }
        let (host, port) =
            split_host_port(host_port_text, DEFAULT_PROXY_PORT).ok_or_else(|| unusable("its port is invalid"))?;
        let authorization = match credentials {
            None => None,
            Some(credentials) => {
                let (user, password) = credentials.split_once(':').unwrap_or((credentials, ""));
                let pair = format!("{}:{}", percent_decode(user), percent_decode(password));
                let encoded = base64::engine::general_purpose::STANDARD.encode(pair.as_bytes());
                let mut value = HeaderValue::from_str(&format!("Basic {encoded}"))
                    .map_err(|_| unusable("its credentials cannot be sent"))?;
                value.set_sensitive(true);
                Some(value)
            }
        };
        Ok(Self {
            host,
            port,
            source,
            authorization,
        })
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
pub fn proxy_for(env: &ProxyEnv, tls: bool, host: &str, port: u16) -> Result<Option<Proxy>, String> {
    let candidates: &[&'static str] = if tls {
        &["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"]
    } else {
        &["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"]
    };
    let Some((source, value)) = env.first(candidates) else {
        return Ok(None);
    };
    if let Some((_, no_proxy)) = env.first(&["no_proxy", "NO_PROXY"]) {
        if bypasses(no_proxy, host, port) {
            return Ok(None);
        }
    }
    Proxy::parse(value, source).map(Some)
}

/// Does a NO_PROXY list send `host:port` direct? Like curl: entries separated by commas (or
/// spaces), `*` for every host, a domain matches itself and its subdomains (a leading dot is
/// optional), an IP address matches itself and a CIDR block its addresses, and an entry with a
/// port matches that port only.
pub fn bypasses(no_proxy: &str, host: &str, port: u16) -> bool {
    let host = normalize_host(host);
    let host_ip = host.parse::<IpAddr>().ok();
    no_proxy
        .split([',', ' ', '\t'])
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .any(|entry| {
            if entry == "*" {
                return true;
            }
            let (pattern, entry_port) = split_entry_port(entry);
            if entry_port.is_some_and(|p| p != port) {
                return false;
            }
            if let Some(ip) = host_ip {
                if let Some(matches) = ip_matches(pattern, ip) {
                    return matches;
                }
            }
            let pattern = normalize_host(pattern.trim_start_matches("*.").trim_start_matches('.'));
            !pattern.is_empty() && (host == pattern || host.ends_with(&format!(".{pattern}")))
        })
}

fn normalize_host(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

/// `example.com:8080` → (`example.com`, 8080); `[::1]:8080` → (`::1`, 8080); a bare IPv6
/// address has no port.
fn split_entry_port(entry: &str) -> (&str, Option<u16>) {
    if let Some(rest) = entry.strip_prefix('[') {
        if let Some((host, after)) = rest.split_once(']') {
            return (host, after.strip_prefix(':').and_then(|p| p.parse().ok()));
        }
    }
    match entry.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => match port.parse() {
            Ok(port) => (host, Some(port)),
            Err(_) => (entry, None),
        },
        _ => (entry, None),
    }
}

/// `Some(matches)` when `pattern` is an IP address or CIDR block, `None` when it is a name.
fn ip_matches(pattern: &str, ip: IpAddr) -> Option<bool> {
    let (address, prefix) = match pattern.split_once('/') {
        Some((address, bits)) => (address, Some(bits.parse::<u32>().ok()?)),
        None => (pattern, None),
    };
    let network: IpAddr = address.parse().ok()?;
    Some(match (network, ip) {
        (IpAddr::V4(net), IpAddr::V4(ip)) => same_prefix(u32::from(net).into(), u32::from(ip).into(), 32, prefix),
        (IpAddr::V6(net), IpAddr::V6(ip)) => same_prefix(u128::from(net), u128::from(ip), 128, prefix),
        _ => false,
    })
}

fn same_prefix(network: u128, ip: u128, width: u32, prefix: Option<u32>) -> bool {
    let prefix = prefix.unwrap_or(width).min(width);
    let shift = width - prefix;
    prefix == 0 || (network >> shift) == (ip >> shift)
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = || std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok();
        match (bytes[i], hex().and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
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
    }

    #[test]
    fn no_proxy_matches_like_curl() {
        assert!(bypasses("*", "anything", 1));
        assert!(bypasses("example.com", "example.com", 443));
        assert!(bypasses("example.com", "api.example.com", 443));
        assert!(bypasses(".example.com", "example.com", 443));
        assert!(bypasses("*.example.com", "api.example.com", 443));
        assert!(!bypasses("example.com", "notexample.com", 443));
        assert!(bypasses("localhost, 127.0.0.1", "127.0.0.1", 8000));
        assert!(bypasses("EXAMPLE.com", "Api.Example.COM.", 443));
        assert!(bypasses("10.0.0.0/8", "10.1.2.3", 80));
        assert!(!bypasses("10.0.0.0/8", "11.1.2.3", 80));
        assert!(bypasses("::1", "::1", 80));
        assert!(bypasses("[::1]:80", "::1", 80));
        assert!(bypasses("example.com:8443", "example.com", 8443));
        assert!(!bypasses("example.com:8443", "example.com", 443));
        assert!(!bypasses("127.0.0.2", "127.0.0.1", 80));
        assert!(!bypasses("", "h", 80));
        let e = env(&[("HTTP_PROXY", "http://p:1"), ("no_proxy", "127.0.0.1")]);
        assert!(proxy_for(&e, false, "127.0.0.1", 8000).unwrap().is_none());
    }

    #[test]
    fn credentials_become_a_sensitive_basic_header() {
        let p = Proxy::parse("http://us%40er:p%3Ass@w@proxy:3128/", "HTTPS_PROXY").unwrap();
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
        let e = Proxy::parse("socks5://u:hunter2@h:1", "ALL_PROXY").unwrap_err();
        assert!(e.contains("socks5") && !e.contains("hunter2"), "{e}");
        let e = Proxy::parse("http://u:hunter2@h:port", "HTTP_PROXY").unwrap_err();
        assert!(e.contains("port") && !e.contains("hunter2"), "{e}");
    }
}
