//! Questions asked before any load: which models the server has, and whether one request of
//! each test works. Their failures become one clear sentence instead of a wall of errors.

use super::connect::ConnectError;
use super::endpoint::Endpoint;
use super::error_body::describe_error_body;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use std::time::Duration;

/// Header that marks llm-bench's pre-flight requests, so a server (the simulator) can leave
/// them out of its own counts.
pub const PROBE_HEADER: &str = "x-llm-bench-probe";

/// A plain GET over the same connect path as the load (proxy, TLS); returns the status and (at
/// most 1 MiB of) the body.
pub async fn get(endpoint: &Endpoint, api_path: &str, timeout: Duration) -> Result<(u16, Bytes), ConnectError> {
    let target = endpoint.request_target(api_path);
    let shown = endpoint.url(api_path);
    exchange(endpoint, http::Method::GET, &target, &shown, None, timeout, BODY_LIMIT).await
}

/// The most of a body the pre-flight questions read.
const BODY_LIMIT: usize = 1024 * 1024;

/// A GET of a path at the server's root (`/metrics`, beside `/v1`), reading at most `limit`
/// bytes of the body: a longer one is an error.
pub async fn get_root(
    endpoint: &Endpoint,
    root_path: &str,
    timeout: Duration,
    limit: usize,
) -> Result<(u16, Bytes), ConnectError> {
    let target = endpoint.root_target(root_path);
    let shown = endpoint.root_url(root_path);
    exchange(endpoint, http::Method::GET, &target, &shown, None, timeout, limit).await
}

/// POSTs a JSON body to a path at the server's root (e.g. `/tokenize`, beside `/v1`); returns
/// the status and (at most 1 MiB of) the body.
pub async fn post_root_json(
    endpoint: &Endpoint,
    root_path: &str,
    body: Bytes,
    timeout: Duration,
) -> Result<(u16, Bytes), ConnectError> {
    let target = endpoint.root_target(root_path);
    let shown = endpoint.root_url(root_path);
    exchange(
        endpoint,
        http::Method::POST,
        &target,
        &shown,
        Some(body),
        timeout,
        BODY_LIMIT,
    )
    .await
}

async fn exchange(
    endpoint: &Endpoint,
    method: http::Method,
    target: &str,
    shown: &str,
    body: Option<Bytes>,
    timeout: Duration,
    limit: usize,
) -> Result<(u16, Bytes), ConnectError> {
    let unreachable = ConnectError::Unreachable;
    let work = async {
        let mut sender = endpoint.connector().open_http1::<Full<Bytes>>().await?;
        let has_body = body.is_some();
        let mut request = http::Request::new(Full::new(body.unwrap_or_default()));
        *request.method_mut() = method.clone();
        *request.uri_mut() = target
            .parse()
            .map_err(|_| unreachable(format!("invalid path in URL {}", endpoint.base_url)))?;
        let headers = request.headers_mut();
        headers.insert(http::header::HOST, endpoint.authority().clone());
        if has_body {
            headers.insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
        }
        for (name, value) in endpoint.headers() {
            headers.insert(name.clone(), value.clone());
        }
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| unreachable(format!("{method} {shown} failed: {e}")))?;
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), limit)
            .collect()
            .await
            .map_err(|e| unreachable(format!("{method} {shown} failed while reading the body: {e}")))?
            .to_bytes();
        Ok((status, body))
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| unreachable(format!("{shown} did not answer within {timeout:?}")))?
}

/// Why the model list could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ModelsError {
    #[error("{0}")]
    Unreachable(ConnectError),
    #[error("GET {url} answered HTTP {status}: {detail}")]
    Status { url: String, status: u16, detail: String },
    #[error("GET {url} did not return an OpenAI model list: {detail}")]
    NotAList { url: String, detail: String },
}

impl ModelsError {
    pub fn status(&self) -> Option<u16> {
        match self {
            ModelsError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// `GET {url}/models` → model ids.
pub async fn list_models(endpoint: &Endpoint, timeout: Duration) -> Result<Vec<String>, ModelsError> {
    let url = endpoint.url("/models");
    let (status, body) = get(endpoint, "/models", timeout)
        .await
        .map_err(ModelsError::Unreachable)?;
    if !(200..300).contains(&status) {
        return Err(ModelsError::Status {
            url,
            status,
            detail: describe_error_body(&body),
        });
    }
    let value: serde_json::Value = serde_json::from_slice(&body).map_err(|_| ModelsError::NotAList {
        url: url.clone(),
        detail: describe_error_body(&body),
    })?;
    let data = value["data"]
        .as_array()
        .or_else(|| value["models"].as_array())
        .ok_or_else(|| ModelsError::NotAList {
            url: url.clone(),
            detail: "no `data` array".into(),
        })?;
    Ok(data
        .iter()
        .filter_map(|m| {
            m["id"]
                .as_str()
                .or_else(|| m["name"].as_str())
                .or_else(|| m["model"].as_str())
        })
        .map(str::to_string)
        .collect())
}
