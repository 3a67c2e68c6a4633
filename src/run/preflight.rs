//! Before any load: find the model, and send one request per kind of test so that a wrong
//! URL, key, model or an image-less server is one clear sentence rather than a wall of errors.

use crate::cli::config::{RunConfig, UsageError};
use crate::client::connect::ConnectError;
use crate::client::probe::{list_models, ModelsError, PROBE_HEADER};
use crate::client::{Client, Endpoint, ErrorClass, Outgoing, RequestRecord, Timeouts};
use crate::report::Reporter;
use crate::workload::{TestKind, Workload};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// Files the process keeps open besides its connections (log, results, stdio, runtime).
const SPARE_FILES: u64 = 64;

/// Every connection is a file descriptor: a limit below the highest concurrency would fail
/// connections one by one, so it is one clear sentence before any load instead. (The limit was
/// already raised to the hard limit at start-up.)
pub fn check_open_files(config: &RunConfig) -> Result<(), UsageError> {
    let peak = config.mode.concurrencies().into_iter().max().unwrap_or(0) as u64;
    let needed = peak + SPARE_FILES;
    // SAFETY: getrlimit only writes into the struct passed.
    let mut limit: libc::rlimit = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 || limit.rlim_cur >= needed {
        return Ok(());
    }
    Err(UsageError(format!(
        "concurrency {peak} needs about {needed} open files but this process may open only {} (hard limit {}); \
         raise it (e.g. `ulimit -n {needed}` as root, or LimitNOFILE= for a service) or lower the concurrency",
        limit.rlim_cur, limit.rlim_max
    )))
}

fn models_error(e: ModelsError, endpoint: &Endpoint) -> UsageError {
    let url = &endpoint.base_url;
    UsageError(match e.status() {
        Some(401) | Some(403) => format!(
            "the server at {url} refused the request (HTTP {}): check the API key (--api-key, OPENAI_API_KEY or LLM_BENCH_API_KEY)",
            e.status().unwrap_or(401)
        ),
        Some(404) => format!(
            "GET {url}/models answered 404: check --url; it should be the API base, usually ending in /v1 (or pass --model to skip the model list)"
        ),
        Some(407) => proxy_wants_credentials(endpoint),
        _ => match e {
            ModelsError::Unreachable(ConnectError::Unreachable(m)) => {
                format!("cannot reach the server: {m}; start it or pass --url")
            }
            // TLS and proxy failures already say what to do.
            ModelsError::Unreachable(other) => other.to_string(),
            other => format!("{other}; pass --model to skip the model list"),
        },
    })
}

/// HTTP 407 comes from a forwarding proxy, never from the server.
fn proxy_wants_credentials(endpoint: &Endpoint) -> String {
    match endpoint.connector().proxy() {
        Some(proxy) => format!(
            "proxy {} (from {}) refused the request (HTTP 407 Proxy Authentication Required); put credentials in {} (http://user:password@host:port), or add {} to NO_PROXY",
            proxy.address(),
            proxy.source,
            proxy.source,
            endpoint.host
        ),
        None => "the server answered HTTP 407 Proxy Authentication Required: is --url a proxy rather than the API?".into(),
    }
}

/// The model to use: `--model`, else the server's only (or first) model.
pub async fn discover_model(config: &RunConfig, reporter: &Reporter) -> Result<String, UsageError> {
    if let Some(model) = &config.model {
        return Ok(model.clone());
    }
    let models = list_models(&config.endpoint, DISCOVERY_TIMEOUT)
        .await
        .map_err(|e| models_error(e, &config.endpoint))?;
    match models.as_slice() {
        [] => Err(UsageError(format!(
            "the server at {} lists no models; pass --model",
            config.endpoint.base_url
        ))),
        [only] => {
            reporter.line(&format!("Model: {only} (the only model the server lists)"));
            Ok(only.clone())
        }
        [first, ..] => {
            reporter.line(&format!(
                "Model: {first} (the first of {} the server lists: {}; choose another with --model)",
                models.len(),
                shorten_list(&models)
            ));
            Ok(first.clone())
        }
    }
}

fn shorten_list(models: &[String]) -> String {
    let shown: Vec<&str> = models.iter().take(8).map(String::as_str).collect();
    if models.len() > shown.len() {
        format!("{}, … ({} more)", shown.join(", "), models.len() - shown.len())
    } else {
        shown.join(", ")
    }
}

/// What the pre-flight requests learned.
#[derive(Debug, Default)]
pub struct ProbeFindings {
    pub usage_reported: bool,
}

/// Sends one request for the text tests and one for the multimodal test.
pub async fn probe(
    config: &RunConfig,
    model: &str,
    workload: &Workload,
    reporter: &Reporter,
) -> Result<ProbeFindings, UsageError> {
    let mut headers_endpoint = config.endpoint.clone();
    headers_endpoint.add_header(PROBE_HEADER, "1");
    let endpoint = Arc::new(headers_endpoint);
    let timeouts = Timeouts {
        request: Some(config.timeouts.request.unwrap_or(Duration::from_secs(300))),
        ..config.timeouts
    };
    let mut kinds = Vec::new();
    if config.tests.iter().any(|t| *t != TestKind::Multimodal) {
        kinds.push(TestKind::Input);
    }
    if config.tests.contains(&TestKind::Multimodal) {
        kinds.push(TestKind::Multimodal);
    }
    let mut findings = ProbeFindings::default();
    for test in kinds {
        let mut client = Client::new(endpoint.clone(), timeouts);
        let mut rec = RequestRecord {
            test,
            ..RequestRecord::default()
        };
        let outgoing = Outgoing {
            estimated_prompt_tokens: 0,
            ..workload.probe_outgoing(test)
        };
        client.execute(&outgoing, Instant::now(), &mut rec).await;
        if rec.ok {
            findings.usage_reported |= !rec.tokens_estimated;
            continue;
        }
        if let Some(message) = fatal_probe_failure(config, model, test, &rec).await {
            return Err(UsageError(message));
        }
        // Anything else (a 500, a cut stream) may be passing: the run measures it.
        reporter.warn(&format!(
            "the test request for the {test} test failed ({}: {}); starting anyway",
            rec.error.map(|c| c.key()).unwrap_or_default(),
            rec.error_message.as_deref().unwrap_or("")
        ));
    }
    if !findings.usage_reported && workload.api() == crate::workload::ApiKind::Embeddings {
        reporter.line(
            "Note: the server sent no token usage; input tokens are estimated as characters / 4, and marked estimated",
        );
    } else if !findings.usage_reported {
        reporter.line(
            "Note: the server sent no token usage; output tokens are counted as chunks with text, and marked estimated",
        );
    }
    Ok(findings)
}

/// A failure that would repeat for every request: returns the sentence to stop with.
async fn fatal_probe_failure(config: &RunConfig, model: &str, test: TestKind, rec: &RequestRecord) -> Option<String> {
    let url = config.endpoint.url(config.api.path());
    let message = rec.error_message.clone().unwrap_or_default();
    let lower = message.to_ascii_lowercase();
    match rec.error? {
        ErrorClass::Connect | ErrorClass::TimeoutConnect => {
            Some(format!("cannot reach the server: {message}; start it or pass --url"))
        }
        // Their messages already say what to do.
        ErrorClass::Tls | ErrorClass::Proxy => Some(message),
        ErrorClass::Http(407) => Some(proxy_wants_credentials(&config.endpoint)),
        ErrorClass::Http(401) | ErrorClass::Http(403) => Some(format!(
            "the server refused the request ({message}): check the API key (--api-key, OPENAI_API_KEY or LLM_BENCH_API_KEY)"
        )),
        ErrorClass::Http(404) if lower.contains("model") => {
            let known = list_models(&config.endpoint, DISCOVERY_TIMEOUT)
                .await
                .ok()
                .filter(|m| !m.is_empty())
                .map(|m| format!("; the server has: {}", shorten_list(&m)))
                .unwrap_or_default();
            Some(format!("model `{model}` not found ({message}){known}; pass one of them with --model"))
        }
        ErrorClass::Http(404) | ErrorClass::Http(405) => Some(format!(
            "POST {url} answered {message}: check --url; it should be the API base, usually ending in /v1"
        )),
        ErrorClass::Http(status)
            if test == TestKind::Multimodal
                && (400..600).contains(&status)
                && (lower.contains("image") || lower.contains("vision") || lower.contains("multimodal") || lower.contains("mmproj")) =>
        {
            Some(format!(
                "the server rejects image input ({message}); use a vision model (for llama.cpp, start it with --mmproj) or run without -mm"
            ))
        }
        ErrorClass::Http(400) | ErrorClass::Http(422) if config.continuous_usage => Some(format!(
            "the server rejected the test request as invalid ({message}); it may not know per-chunk usage: run without --continuous-usage (vLLM and SGLang support it)"
        )),
        ErrorClass::Http(400) | ErrorClass::Http(422) => Some(format!(
            "the server rejected the test request as invalid ({message}); check --model, --endpoint and the flags that shape the request"
        )),
        ErrorClass::MalformedStream if lower.contains("content-type") => Some(format!(
            "the server at {url} did not answer with an event stream ({message}); is it an OpenAI-compatible API?"
        )),
        _ => None,
    }
}
