//! `llm-bench k8s-job`: the clap side of [`crate::k8s::JobSpec`], and the checks of the run
//! arguments that need the run's own flag definitions.

use super::config::UsageError;
use super::parse;
use crate::i18n::{tr, Msg};
use clap::parser::ValueSource;
use clap::{Args, CommandFactory, FromArgMatches};
use std::time::Duration;

/// `llm-bench k8s-job --help`.
pub const LONG_ABOUT: &str = "Print a Kubernetes manifest (YAML, two documents) for a sharded run: an Indexed Job \
whose N pods each run the run arguments given after -- with --shards N --run-id ID --start-at T --out \
/results/ID/shard-K, and a merge Job, created suspended, that runs `llm-bench merge` over the shard folders into \
/results/ID/merged once resumed. The comments at the top give the run id, the start time and the kubectl commands, \
filled in.\n\n\
Results are collected on a PersistentVolumeClaim (--pvc, required), mounted at /results in every pod; it must be \
ReadWriteMany when the pods land on several nodes. The API key never goes into the manifest: --api-key-secret reads \
it from a Secret. docs/distributed.md has the whole procedure.";

/// The example under `llm-bench k8s-job --help`.
pub const AFTER_HELP: &str = "Example:\n  llm-bench k8s-job --shards 4 --image registry.example.com/llm-bench:0.1.0 \
--pvc bench-results --api-key-secret llm-bench \\\n    -- -o --url http://vllm.inference.svc:8000/v1 --rate 8,16,32 \
--step-duration 2m > job.yaml";

#[derive(Debug, Args, Clone)]
pub struct K8sJobArgs {
    /// Number of shards: pods of the Indexed Job, each sending 1/N of the load.
    #[arg(long = "shards", value_name = "N", required = true,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub shards: u32,
    /// Container image with llm-bench at /llm-bench (the repository's Containerfile builds one).
    #[arg(long = "image", value_name = "IMAGE", required = true)]
    pub image: String,
    /// PersistentVolumeClaim for the results, mounted at /results in every pod (ReadWriteMany
    /// when the pods land on several nodes). The shards write /results/ID/shard-K, the merge
    /// /results/ID/merged.
    #[arg(long = "pvc", value_name = "CLAIM", required = true)]
    pub pvc: String,
    /// Namespace of the Jobs (default: kubectl's current one).
    #[arg(long = "namespace", short = 'n', value_name = "NS")]
    pub namespace: Option<String>,
    /// Name of the Job and run id of the run (default: llm-bench-<yyyymmdd-hhmmss>, UTC).
    #[arg(long = "name", value_name = "NAME")]
    pub name: Option<String>,
    /// The shards start this long after the manifest is made (`--start-at` now + TIME): enough
    /// to apply it, schedule the pods and pull the image.
    #[arg(long = "start-in", value_name = "TIME", default_value = "2m", value_parser = parse::duration)]
    pub start_in: Duration,
    /// Secret holding the API key, NAME or NAME:KEY (key default `api-key`): given to every
    /// shard as LLM_BENCH_API_KEY.
    #[arg(long = "api-key-secret", value_name = "NAME[:KEY]")]
    pub api_key_secret: Option<String>,
    /// CPU requested for each pod (no limit: throttling would show up as latency).
    #[arg(long = "cpu", value_name = "CPU", default_value = "1")]
    pub cpu: String,
    /// Memory requested for each pod.
    #[arg(long = "memory", value_name = "MEM", default_value = "512Mi")]
    pub memory: String,
    /// The run's arguments, after `--`: passed to every shard unchanged.
    #[arg(last = true, value_name = "RUN ARGS", allow_hyphen_values = true)]
    pub run_args: Vec<String>,
}

/// Flags the manifest sets for each shard.
const SET_BY_MANIFEST: &[&str] = &["--shard", "--shards", "--run-id", "--start-at", "--out"];
/// Flags that carry the API key itself.
const KEY_FLAGS: &[&str] = &["--api-key", "--api_key"];
/// Header names that carry credentials (any name with one of these in it).
const CREDENTIAL_HEADERS: &[&str] = &["authorization", "api-key", "apikey", "token", "secret", "cookie"];

impl TryFrom<K8sJobArgs> for crate::k8s::JobSpec {
    type Error = UsageError;

    fn try_from(args: K8sJobArgs) -> Result<Self, UsageError> {
        let checked = check_run_args(&args.run_args)?;
        Ok(Self {
            shards: args.shards,
            image: args.image,
            namespace: args.namespace,
            name: args.name,
            pvc: args.pvc,
            start_in: args.start_in,
            api_key_secret: args.api_key_secret,
            cpu: args.cpu,
            memory: args.memory,
            run_args: args.run_args,
            has_log_file: checked.has_log_file,
            lang: checked.lang,
        })
    }
}

/// What the manifest needs to know of the run arguments.
struct Checked {
    has_log_file: bool,
    lang: Option<String>,
}

/// Refuses keys and manifest-set flags, then parses the arguments as a run would (so a typo
/// shows now, not in N pods) and checks that they name a server.
fn check_run_args(run_args: &[String]) -> Result<Checked, UsageError> {
    let command = super::Cli::command();
    let mut argv = vec![std::ffi::OsString::from("llm-bench")];
    argv.extend(run_args.iter().map(std::ffi::OsString::from));
    let argv = super::legacy::normalize(argv, &command);
    let tokens: Vec<String> = argv[1..].iter().map(|a| a.to_string_lossy().into_owned()).collect();
    if let Some(token) = tokens.iter().find(|t| t.contains("API_KEY=")) {
        let what = token.split('=').next().unwrap_or_default();
        return Err(UsageError(tr(Msg::K8sInlineKey, &[("what", &what)])));
    }
    for (flag, value) in flags(&tokens, &command) {
        refuse_flag(&flag, value.as_deref())?;
    }
    let matches = command.try_get_matches_from(&argv).map_err(|e| {
        let error = first_line(&e);
        UsageError(tr(Msg::K8sRunArgsInvalid, &[("error", &error)]))
    })?;
    if let Some((name, _)) = matches.subcommand() {
        return Err(UsageError(tr(Msg::K8sRunArgsCommand, &[("name", &name)])));
    }
    if matches.value_source("url") != Some(ValueSource::CommandLine) {
        return Err(UsageError(tr(Msg::K8sNoUrl, &[("url", &"http://127.0.0.1:8000/v1")])));
    }
    let lang = super::Cli::from_arg_matches(&matches)
        .ok()
        .and_then(|cli| cli.lang)
        .map(|l| crate::i18n::Lang::from(l).tag().to_string());
    Ok(Checked {
        has_log_file: matches.value_source("log_file") == Some(ValueSource::CommandLine),
        lang,
    })
}

fn refuse_flag(flag: &str, value: Option<&str>) -> Result<(), UsageError> {
    if SET_BY_MANIFEST.contains(&flag) {
        return Err(UsageError(tr(Msg::K8sSetByManifest, &[("flag", &flag)])));
    }
    if KEY_FLAGS.contains(&flag) {
        return Err(UsageError(tr(Msg::K8sInlineKey, &[("what", &flag)])));
    }
    if flag == "--header" || flag == "-H" {
        let (name, header_value) = value.unwrap_or_default().split_once(':').unwrap_or_default();
        let lower = name.trim().to_ascii_lowercase();
        // `x-api-key: $(LLM_BENCH_API_KEY)`: Kubernetes fills it in from the Secret.
        let from_env = header_value.contains("$(");
        if !from_env && CREDENTIAL_HEADERS.iter().any(|c| lower.contains(c)) {
            return Err(UsageError(tr(Msg::K8sInlineHeader, &[("name", &name.trim())])));
        }
    }
    Ok(())
}

/// Each flag of the arguments with its value when it takes one: `--out x` and `--out=x` give
/// (`--out`, `x`), `-Hv` (`-H`, `v`). Whether a flag takes a value comes from the definition,
/// so a value that looks like a flag (`--multimodal-text-prompt --out`) is not one.
fn flags(tokens: &[String], command: &clap::Command) -> Vec<(String, Option<String>)> {
    let takes_value = |pred: &dyn Fn(&clap::Arg) -> bool| {
        command
            .get_arguments()
            .any(|a| a.get_action().takes_values() && pred(a))
    };
    let mut found = Vec::new();
    let mut rest = tokens.iter();
    while let Some(token) = rest.next() {
        if token == "--" {
            break;
        }
        if let Some(long) = token.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((name, value)) => (name, Some(value.to_string())),
                None => (long, None),
            };
            let named =
                |a: &clap::Arg| a.get_long() == Some(name) || a.get_all_aliases().is_some_and(|l| l.contains(&name));
            let value = match inline {
                None if takes_value(&named) => rest.next().cloned(),
                inline => inline,
            };
            found.push((format!("--{name}"), value));
        } else if let Some(shorts) = token.strip_prefix('-').filter(|s| !s.is_empty()) {
            for (at, c) in shorts.char_indices() {
                if takes_value(&|a: &clap::Arg| a.get_short() == Some(c)) {
                    let tail = &shorts[at + c.len_utf8()..];
                    let tail = tail.strip_prefix('=').unwrap_or(tail);
                    let value = if tail.is_empty() {
                        rest.next().cloned()
                    } else {
                        Some(tail.to_string())
                    };
                    found.push((format!("-{c}"), value));
                    break;
                }
                found.push((format!("-{c}"), None));
            }
        }
    }
    found
}

/// clap's message in one line, without its `error: ` and its usage and tips.
fn first_line(e: &clap::Error) -> String {
    let rendered = e.render().to_string();
    let line = rendered.lines().find(|l| !l.trim().is_empty()).unwrap_or_default();
    line.trim_start_matches("error: ").trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn flags_know_values_from_the_definition() {
        let command = crate::cli::Cli::command();
        let found = flags(
            &strings(&[
                "-o",
                "--multimodal-text-prompt",
                "--out",
                "-Hx: y",
                "--url=http://a",
                "-st",
                "3",
            ]),
            &command,
        );
        let names: Vec<&str> = found.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(names, ["-o", "--multimodal-text-prompt", "-H", "--url", "-s", "-t"]);
        assert_eq!(found[1].1.as_deref(), Some("--out"));
        assert_eq!(found[2].1.as_deref(), Some("x: y"));
    }

    #[test]
    fn run_args_checks() {
        let ok = check_run_args(&strings(&[
            "-u",
            "http://s:8000/v1",
            "-l",
            "x.log",
            "--lang",
            "zh",
            "-st",
            "2",
        ]))
        .unwrap();
        assert!(ok.has_log_file);
        assert_eq!(ok.lang.as_deref(), Some("zh"));
        let header_from_env = strings(&["-u", "http://s/v1", "-H", "x-api-key: $(LLM_BENCH_API_KEY)"]);
        assert!(check_run_args(&header_from_env).is_ok());
        for bad in [
            &["-u", "http://s/v1", "--out", "x"][..],
            &["-u", "http://s/v1", "--shard=0/2"],
            &["-u", "http://s/v1", "--api_key", "k"],
            &["-u", "http://s/v1", "-H", "Authorization: Bearer k"],
            &["-u", "http://s/v1", "LLM_BENCH_API_KEY=k"],
            &["-u", "http://s/v1", "--no-such-flag"],
            &["serve"],
            &["-o"],
        ] {
            assert!(check_run_args(&strings(bad)).is_err(), "{bad:?}");
        }
    }
}
