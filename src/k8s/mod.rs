//! `llm-bench k8s-job`: a ready Kubernetes manifest for a sharded run (docs/distributed.md).
//!
//! It prints two Jobs: an Indexed Job whose pods are the shards (each runs the given run
//! arguments with `--shards N --run-id ID --start-at T --out /results/ID/shard-K`), and a merge
//! Job, created suspended, that merges the shard folders once it is resumed. The results live on
//! a PersistentVolumeClaim mounted at /results in every pod. Nothing here talks to a cluster: the
//! manifest is text, built from plain values ([`JobSpec`]) that the CLI has checked.

mod manifest;
pub mod yaml;

use crate::cli::config::UsageError;
use crate::i18n::{tr, Msg};
use std::time::{Duration, SystemTime};

/// Where the Containerfile puts the binary.
pub const BINARY: &str = "/llm-bench";
/// Where every pod mounts the claim.
pub const RESULTS: &str = "/results";
/// The variable a Kubernetes Indexed Job sets to each pod's index (from its annotation).
pub const INDEX_ENV: &str = "JOB_COMPLETION_INDEX";
/// The variable the run reads its API key from.
pub const KEY_ENV: &str = "LLM_BENCH_API_KEY";
/// The Secret key used when `--api-key-secret` names none.
pub const DEFAULT_SECRET_KEY: &str = "api-key";
/// `--name` is at most this long: the merge Job is `NAME-merge` and pods' host names are
/// `NAME-INDEX`, both under Kubernetes' 63.
pub const MAX_NAME: usize = 52;

/// What the manifest is made from; the CLI has checked the run arguments.
#[derive(Debug, Clone)]
pub struct JobSpec {
    pub shards: u32,
    pub image: String,
    pub namespace: Option<String>,
    /// The Job's name and the run id (default: `llm-bench-<yyyymmdd-hhmmss>`).
    pub name: Option<String>,
    pub pvc: String,
    pub start_in: Duration,
    /// `NAME` or `NAME:KEY` of the Secret holding the API key.
    pub api_key_secret: Option<String>,
    /// CPU and memory requested for each pod.
    pub cpu: String,
    pub memory: String,
    /// The run arguments as given, passed through unchanged.
    pub run_args: Vec<String>,
    /// The run arguments name a log file (otherwise each shard's goes into its folder).
    pub has_log_file: bool,
    /// `--lang` of the run arguments, given to the merge too.
    pub lang: Option<String>,
}

/// The names and times of one manifest, resolved.
pub(crate) struct Plan<'a> {
    pub spec: &'a JobSpec,
    pub id: String,
    /// RFC 3339, UTC, whole seconds.
    pub start_at: String,
    /// The Secret's name and key.
    pub secret: Option<(String, String)>,
}

impl Plan<'_> {
    /// `/results/ID`.
    pub fn run_dir(&self) -> String {
        format!("{RESULTS}/{}", self.id)
    }
}

/// The manifest as printed: comments with the run id, the start time and the steps, then the
/// two Job documents.
pub fn manifest(spec: &JobSpec, now: SystemTime) -> Result<String, UsageError> {
    let plan = resolve(spec, now)?;
    Ok(manifest::render(&plan))
}

/// Prints the manifest to stdout.
pub fn print(spec: &JobSpec) -> Result<(), UsageError> {
    use std::io::Write;
    let text = manifest(spec, SystemTime::now())?;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        // `k8s-job … | head` is not a failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(UsageError(tr(Msg::K8sCannotWrite, &[("error", &e)]))),
    }
}

fn resolve(spec: &JobSpec, now: SystemTime) -> Result<Plan<'_>, UsageError> {
    let bad = |msg: Msg, value: &str| UsageError(tr(msg, &[("value", &value), ("max", &MAX_NAME)]));
    if spec.image.is_empty() || spec.image.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad(Msg::K8sBadImage, &spec.image));
    }
    if let Some(ns) = &spec.namespace {
        if !is_dns_label(ns, 63) {
            return Err(bad(Msg::K8sBadNamespace, ns));
        }
    }
    if !is_dns_subdomain(&spec.pvc) {
        return Err(bad(Msg::K8sBadClaim, &spec.pvc));
    }
    for (flag, value) in [("--cpu", &spec.cpu), ("--memory", &spec.memory)] {
        if !is_quantity(value) {
            return Err(UsageError(tr(
                Msg::K8sBadQuantity,
                &[("flag", &flag), ("value", value)],
            )));
        }
    }
    let secret = spec.api_key_secret.as_deref().map(secret_ref).transpose()?;
    let id = match &spec.name {
        Some(name) if is_dns_label(name, MAX_NAME) && name.starts_with(|c: char| c.is_ascii_lowercase()) => {
            name.clone()
        }
        Some(name) => return Err(bad(Msg::K8sBadName, name)),
        None => generated_id(now),
    };
    let start_at = humantime::format_rfc3339_seconds(now + spec.start_in).to_string();
    Ok(Plan {
        spec,
        id,
        start_at,
        secret,
    })
}

/// `llm-bench-<yyyymmdd-hhmmss>` (UTC).
fn generated_id(now: SystemTime) -> String {
    let stamp = humantime::format_rfc3339_seconds(now).to_string();
    let digits: String = stamp.chars().filter(char::is_ascii_digit).collect();
    format!("llm-bench-{}-{}", &digits[..8], &digits[8..14])
}

/// `NAME[:KEY]` → (name, key).
fn secret_ref(value: &str) -> Result<(String, String), UsageError> {
    let (name, key) = value.split_once(':').unwrap_or((value, DEFAULT_SECRET_KEY));
    let key_ok = !key.is_empty()
        && key.len() <= 253
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !is_dns_subdomain(name) || !key_ok {
        return Err(UsageError(tr(Msg::K8sBadSecret, &[("value", &value)])));
    }
    Ok((name.to_string(), key.to_string()))
}

/// An RFC 1123 label: lowercase letters, digits and `-`, alphanumeric at both ends.
fn is_dns_label(text: &str, max: usize) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !text.is_empty()
        && text.len() <= max
        && text.chars().all(|c| alnum(c) || c == '-')
        && text.starts_with(alnum)
        && text.ends_with(alnum)
}

/// An RFC 1123 subdomain: labels joined by dots, 253 characters at most.
fn is_dns_subdomain(text: &str) -> bool {
    text.len() <= 253 && text.split('.').all(|label| is_dns_label(label, 63))
}

/// A Kubernetes quantity as people write requests: `2`, `0.5`, `500m`, `512Mi`, `1G`.
fn is_quantity(text: &str) -> bool {
    const SUFFIXES: &[&str] = &[
        "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "m", "k", "M", "G", "T", "P", "E", "",
    ];
    let Some(number) = SUFFIXES
        .iter()
        .find_map(|s| text.strip_suffix(s))
        .filter(|n| !n.is_empty())
    else {
        return false;
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, "0"));
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    digits(whole) && !fraction.is_empty() && digits(fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_quantities() {
        for (name, ok) in [
            ("a", true),
            ("run-1", true),
            ("-a", false),
            ("a-", false),
            ("A", false),
            ("a_b", false),
        ] {
            assert_eq!(is_dns_label(name, 63), ok, "{name}");
        }
        assert!(is_dns_subdomain("my.secret-1"));
        assert!(!is_dns_subdomain("my..secret"));
        for (q, ok) in [
            ("1", true),
            ("500m", true),
            ("0.5", true),
            ("512Mi", true),
            ("2Gi", true),
        ] {
            assert_eq!(is_quantity(q), ok, "{q}");
        }
        for q in ["", "m", "1.5.5", "one", "1 Gi", "1gi", "-1", "."] {
            assert!(!is_quantity(q), "{q}");
        }
    }

    #[test]
    fn secret_refs_and_ids() {
        assert_eq!(secret_ref("llm").unwrap(), ("llm".into(), "api-key".into()));
        assert_eq!(secret_ref("llm:token_1").unwrap(), ("llm".into(), "token_1".into()));
        assert!(secret_ref("llm:").is_err() && secret_ref("Bad").is_err() && secret_ref(":k").is_err());
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_126_400); // 2026-12-01T12:00:00Z
        assert_eq!(generated_id(at), "llm-bench-20261201-120000");
    }
}
