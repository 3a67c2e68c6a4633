//! Before any load: find the model, and send one request per kind of test so that a wrong
//! URL, key, model or an image-less server is one clear sentence rather than a wall of errors.

use crate::cli::config::{RunConfig, UsageError};
use crate::client::connect::ConnectError;
use crate::client::probe::{list_models, ModelsError, PROBE_HEADER};
use crate::client::{Client, Endpoint, ErrorClass, Outgoing, RequestRecord, Timeouts};
use crate::i18n::{tr, Msg};
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
    Err(UsageError(tr(
        Msg::OpenFilesTooFew,
        &[
            ("peak", &peak),
            ("needed", &needed),
            ("soft", &limit.rlim_cur),
            ("hard", &limit.rlim_max),
        ],
    )))
}

fn models_error(e: ModelsError, endpoint: &Endpoint) -> UsageError {
    let url = &endpoint.base_url;
    UsageError(match e.status() {
        Some(401) | Some(403) => tr(
            Msg::ModelsRefused,
            &[("url", url), ("status", &e.status().unwrap_or(401))],
        ),
        Some(404) => tr(Msg::Models404, &[("url", url)]),
        Some(407) => proxy_wants_credentials(endpoint),
        _ => match e {
            ModelsError::Unreachable(ConnectError::Unreachable(m)) => tr(Msg::Unreachable, &[("error", &m)]),
            // TLS and proxy failures already say what to do.
            ModelsError::Unreachable(other) => other.to_string(),
            other => tr(Msg::ModelsFailed, &[("error", &other)]),
        },
    })
}

/// HTTP 407 comes from a forwarding proxy, never from the server.
fn proxy_wants_credentials(endpoint: &Endpoint) -> String {
    match endpoint.connector().proxy() {
        Some(proxy) => tr(
            Msg::ProxyWants407,
            &[
                ("proxy", &proxy.address()),
                ("source", &proxy.source),
                ("host", &endpoint.host),
            ],
        ),
        None => tr(Msg::Server407, &[]),
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
        [] => Err(UsageError(tr(Msg::NoModels, &[("url", &config.endpoint.base_url)]))),
        [only] => {
            reporter.line(&tr(Msg::ModelOnly, &[("model", only)]));
            Ok(only.clone())
        }
        [first, ..] => {
            reporter.line(&tr(
                Msg::ModelFirst,
                &[("model", first), ("n", &models.len()), ("list", &shorten_list(&models))],
            ));
            Ok(first.clone())
        }
    }
}

fn shorten_list(models: &[String]) -> String {
    let shown: Vec<&str> = models.iter().take(8).map(String::as_str).collect();
    if models.len() > shown.len() {
        tr(
            Msg::ListMore,
            &[("list", &shown.join(", ")), ("n", &(models.len() - shown.len()))],
        )
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
        reporter.warn(&tr(
            Msg::ProbeRequestFailed,
            &[
                ("test", &test),
                ("class", &rec.error.map(|c| c.key()).unwrap_or_default()),
                ("message", &rec.error_message.as_deref().unwrap_or("")),
            ],
        ));
    }
    if !findings.usage_reported && workload.api() == crate::workload::ApiKind::Embeddings {
        reporter.line(&tr(Msg::NoUsageEmbeddings, &[]));
    } else if !findings.usage_reported {
        reporter.line(&tr(Msg::NoUsageOutput, &[]));
    }
    Ok(findings)
}

/// A failure that would repeat for every request: returns the sentence to stop with.
async fn fatal_probe_failure(config: &RunConfig, model: &str, test: TestKind, rec: &RequestRecord) -> Option<String> {
    let url = config.endpoint.url(config.api.path());
    let message = rec.error_message.clone().unwrap_or_default();
    let lower = message.to_ascii_lowercase();
    match rec.error? {
        ErrorClass::Connect | ErrorClass::TimeoutConnect => Some(tr(Msg::Unreachable, &[("error", &message)])),
        // Their messages already say what to do.
        ErrorClass::Tls | ErrorClass::Proxy => Some(message),
        ErrorClass::Http(407) => Some(proxy_wants_credentials(&config.endpoint)),
        ErrorClass::Http(401) | ErrorClass::Http(403) => Some(tr(Msg::ProbeRefused, &[("message", &message)])),
        ErrorClass::Http(404) if lower.contains("model") => {
            let known = list_models(&config.endpoint, DISCOVERY_TIMEOUT)
                .await
                .ok()
                .filter(|m| !m.is_empty())
                .map(|m| tr(Msg::ServerHasModels, &[("list", &shorten_list(&m))]))
                .unwrap_or_default();
            Some(tr(
                Msg::ModelNotFound,
                &[("model", &model), ("message", &message), ("known", &known)],
            ))
        }
        ErrorClass::Http(404) | ErrorClass::Http(405) => {
            Some(tr(Msg::Post404, &[("url", &url), ("message", &message)]))
        }
        ErrorClass::Http(status)
            if test == TestKind::Multimodal
                && (400..600).contains(&status)
                && (lower.contains("image")
                    || lower.contains("vision")
                    || lower.contains("multimodal")
                    || lower.contains("mmproj")) =>
        {
            Some(tr(Msg::NoImageInput, &[("message", &message)]))
        }
        ErrorClass::Http(400) | ErrorClass::Http(422) if config.continuous_usage => {
            Some(tr(Msg::InvalidContinuousUsage, &[("message", &message)]))
        }
        ErrorClass::Http(400) | ErrorClass::Http(422) => Some(tr(Msg::InvalidRequest, &[("message", &message)])),
        ErrorClass::MalformedStream if lower.contains("content-type") => {
            Some(tr(Msg::NotEventStream, &[("url", &url), ("message", &message)]))
        }
        _ => None,
    }
}
