//! Where requests go, how they get there and what headers they carry, parsed and checked once.
//!
//! The API key, extra headers and proxy credentials live here as sensitive header values;
//! nothing in this type prints them (its Debug shows only the URL).

use super::connect::{Connector, TransportOptions};
use http::{HeaderName, HeaderValue};

#[derive(Clone)]
pub struct Endpoint {
    /// Base URL as the user gave it, without a trailing slash (`http://host:port/v1`).
    pub base_url: String,
    pub host: String,
    pub port: u16,
    pub tls: bool,
    /// Path prefix before `/chat/completions` etc. (`/v1`).
    base_path: String,
    authority: HeaderValue,
    /// Authorization and extra headers, already marked sensitive.
    headers: Vec<(HeaderName, HeaderValue)>,
    /// TCP or TLS, direct or through a proxy.
    connector: Connector,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Endpoint({})", self.base_url)
    }
}

impl Endpoint {
    /// Parses `url`; every error is one sentence the user can act on.
    pub fn parse(url: &str, api_key: Option<&str>, extra_headers: &[(String, String)]) -> Result<Self, String> {
        let trimmed = url.trim().trim_end_matches('/');
        let (scheme, rest) = trimmed
            .split_once("://")
            .ok_or_else(|| format!("URL `{url}` has no scheme; write it like http://127.0.0.1:8000/v1"))?;
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "http" => false,
            "https" => true,
            other => {
                return Err(format!(
                    "URL scheme `{other}` is not supported; use http:// or https://"
                ))
            }
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(format!(
                "URL `{url}` has no host; write it like http://127.0.0.1:8000/v1"
            ));
        }
        if authority.contains('@') {
            return Err("credentials in the URL are not supported; use --api-key or OPENAI_API_KEY".into());
        }
        let (host, port) = split_host_port(authority, if tls { 443 } else { 80 })
            .ok_or_else(|| format!("URL `{url}` has an invalid port"))?;
        let mut headers = Vec::new();
        if let Some(key) = api_key.filter(|k| !k.is_empty()) {
            let mut value = HeaderValue::from_str(&format!("Bearer {key}"))
                .map_err(|_| "the API key contains characters not allowed in an HTTP header".to_string())?;
            value.set_sensitive(true);
            headers.push((http::header::AUTHORIZATION, value));
        }
        for (name, value) in extra_headers {
            let name = HeaderName::from_bytes(name.trim().as_bytes())
                .map_err(|_| format!("`{name}` is not a valid HTTP header name"))?;
            let mut value = HeaderValue::from_str(value.trim())
                .map_err(|_| format!("the value of header {name} contains characters not allowed in HTTP"))?;
            value.set_sensitive(true);
            headers.push((name, value));
        }
        Ok(Self {
            base_url: format!("{scheme}://{rest}"),
            port,
            tls,
            base_path: path.to_string(),
            authority: HeaderValue::from_str(authority).map_err(|_| format!("URL `{url}` has an invalid host"))?,
            headers,
            connector: Connector::direct(&host, port, tls),
            host,
        })
    }

    /// Sets how connections are opened: TLS trust and the proxy, built once for the whole run.
    /// Required for an https:// URL.
    pub fn with_transport(mut self, options: TransportOptions) -> Result<Self, String> {
        self.connector = Connector::new(&self.host, self.port, self.tls, options)?;
        if self.connector.forwards_through_proxy() {
            // Every request goes to the proxy itself, so every request carries its credentials.
            if let Some(authorization) = self.connector.proxy().and_then(|p| p.authorization()) {
                self.headers
                    .push((http::header::PROXY_AUTHORIZATION, authorization.clone()));
            }
        }
        Ok(self)
    }

    pub fn connector(&self) -> &Connector {
        &self.connector
    }

    /// The request target for an API path: the path, or the whole URL when an HTTP proxy
    /// forwards the request (absolute form, RFC 9112 section 3.2.2).
    pub fn request_target(&self, api_path: &str) -> String {
        if self.connector.forwards_through_proxy() {
            self.url(api_path)
        } else {
            self.path(api_path)
        }
    }

    /// The request path for an API path such as `/chat/completions`.
    pub fn path(&self, api_path: &str) -> String {
        format!("{}{}", self.base_path, api_path)
    }

    pub fn url(&self, api_path: &str) -> String {
        format!("{}{}", self.base_url, api_path)
    }

    /// The server's root path: the base path without a trailing `/v1` (vLLM and llama.cpp
    /// serve `/tokenize` and `/metrics` there, beside `/v1`).
    fn root_path(&self) -> &str {
        let base = self.base_path.trim_end_matches('/');
        base.strip_suffix("/v1").unwrap_or(base)
    }

    /// [`Self::request_target`] for a path at the server's root.
    pub fn root_target(&self, path: &str) -> String {
        if self.connector.forwards_through_proxy() {
            self.root_url(path)
        } else {
            format!("{}{path}", self.root_path())
        }
    }

    /// The URL of a path at the server's root.
    pub fn root_url(&self, path: &str) -> String {
        let base = self.base_url.trim_end_matches('/');
        let origin_len = base.len() - self.base_path.trim_end_matches('/').len();
        format!("{}{}{path}", &base[..origin_len], self.root_path())
    }

    pub fn authority(&self) -> &HeaderValue {
        &self.authority
    }

    /// Authorization, `-H` and (through a forwarding proxy) Proxy-Authorization headers to put
    /// on every request.
    pub fn headers(&self) -> &[(HeaderName, HeaderValue)] {
        &self.headers
    }
}

impl Endpoint {
    /// Adds a (non-secret) header sent with every request of this endpoint.
    pub fn add_header(&mut self, name: &'static str, value: &'static str) {
        self.headers
            .push((HeaderName::from_static(name), HeaderValue::from_static(value)));
    }
}

pub(crate) fn split_host_port(authority: &str, default_port: u16) -> Option<(String, u16)> {
    if let Some(rest) = authority.strip_prefix('[') {
        // IPv6 literal: [::1]:8000
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => default_port,
            None => return None,
        };
        return Some((host.to_string(), port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Some((host.to_string(), port.parse().ok()?)),
        None => Some((authority.to_string(), default_port)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::proxy::ProxyEnv;

    #[test]
    fn parses_common_urls() {
        let e = Endpoint::parse("http://127.0.0.1:8000/v1/", None, &[]).unwrap();
        assert_eq!((e.host.as_str(), e.port, e.tls), ("127.0.0.1", 8000, false));
        assert_eq!(e.path("/models"), "/v1/models");
        assert_eq!(e.base_url, "http://127.0.0.1:8000/v1");
        let e = Endpoint::parse("https://api.example.com/v1", None, &[]).unwrap();
        assert_eq!((e.port, e.tls), (443, true));
        let e = Endpoint::parse("http://[::1]:9/v1", None, &[]).unwrap();
        assert_eq!((e.host.as_str(), e.port), ("::1", 9));
    }

    #[test]
    fn rejects_bad_urls_with_a_reason() {
        assert!(Endpoint::parse("127.0.0.1:8000/v1", None, &[])
            .unwrap_err()
            .contains("no scheme"));
        assert!(Endpoint::parse("ftp://x/v1", None, &[])
            .unwrap_err()
            .contains("not supported"));
        assert!(Endpoint::parse("http://x:port/v1", None, &[])
            .unwrap_err()
            .contains("invalid port"));
        assert!(Endpoint::parse("http:///v1", None, &[])
            .unwrap_err()
            .contains("no host"));
    }

    fn through_proxy(url: &str) -> Endpoint {
        let proxies = ProxyEnv::from_lookup(|name| {
            matches!(name, "HTTP_PROXY" | "HTTPS_PROXY").then(|| "http://u:hidden@proxy:3128".to_string())
        });
        let options = TransportOptions {
            insecure: true,
            proxies,
            ..TransportOptions::default()
        };
        Endpoint::parse(url, None, &[])
            .unwrap()
            .with_transport(options)
            .unwrap()
    }

    #[test]
    fn a_forwarding_proxy_gets_absolute_targets_and_its_credentials() {
        let e = through_proxy("http://api.example.com:8000/v1");
        assert_eq!(e.request_target("/models"), "http://api.example.com:8000/v1/models");
        let (name, value) = e.headers().last().unwrap();
        assert_eq!(name, http::header::PROXY_AUTHORIZATION);
        assert!(value.is_sensitive());
        // Through a CONNECT tunnel the server sees ordinary requests; the credentials go in the
        // CONNECT request only.
        let e = through_proxy("https://api.example.com/v1");
        assert_eq!(e.request_target("/models"), "/v1/models");
        assert!(e.headers().is_empty());
        assert_eq!(e.connector().proxy().unwrap().address(), "proxy:3128");
    }

    #[test]
    fn key_is_sensitive_and_not_in_debug() {
        let e = Endpoint::parse("http://h/v1", Some("sk-secret"), &[("X-Extra".into(), "v".into())]).unwrap();
        assert!(e.headers().iter().all(|(_, v)| v.is_sensitive()));
        assert!(!format!("{e:?}").contains("sk-secret"));
    }
}
