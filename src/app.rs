//! The program: argv → command → exit code. Kept out of `main.rs` so tests can call it.

use crate::cli::config::{RunConfig, UsageError};
use crate::cli::{legacy, Cli, Command};
use crate::client::proxy::ProxyEnv;
use crate::run::Outcome;
use clap::{CommandFactory, FromArgMatches};
use std::ffi::OsString;
use std::process::ExitCode;

/// Exit codes: 0 done, 1 the run failed (nothing succeeded, a step over the error budget, results
/// that could not be saved, an I/O failure), 2 a usage error caught before any load, 130
/// interrupted.
pub fn main_with_args(argv: Vec<OsString>) -> ExitCode {
    crate::monitor::mark_process_start();
    let command = Cli::command();
    let argv = legacy::normalize(argv, &command);
    let cli = match command
        .try_get_matches_from(argv)
        .and_then(|m| Cli::from_arg_matches(&m))
    {
        Ok(cli) => cli,
        Err(e) => return clap_error(e),
    };
    crate::i18n::set_lang(cli.lang.map_or_else(crate::i18n::Lang::from_env, Into::into));
    let threads = match &cli.command {
        None => cli.run.threads,
        Some(Command::Capacity(args)) => args.run.threads,
        Some(_) => None,
    };
    raise_open_file_limit();
    let runtime = {
        let workers = threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        // One worker: a single-threaded scheduler does the same work without cross-thread
        // wakeups and queue atomics, which is most of the client's own cost per event.
        let mut builder = if workers <= 1 {
            tokio::runtime::Builder::new_current_thread()
        } else {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(workers);
            b
        };
        builder.enable_all();
        match builder.build() {
            Ok(r) => r,
            Err(e) => return fail(2, &crate::i18n::tr(crate::i18n::Msg::RuntimeFailed, &[("error", &e)])),
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Some(Command::Serve(config)) => crate::sim::serve_forever((*config).into())
                .await
                .map(|()| Outcome::Complete),
            Some(Command::Demo(args)) => crate::demo::run(args).await,
            Some(Command::Report(args)) => {
                let options = crate::run::rebuild::RebuildOptions {
                    csv_requests: args.files.csv_requests,
                    export: crate::cli::config::export_from(&args.files)?,
                };
                let rebuilt = crate::run::rebuild::rebuild(&args.dir, &options)?;
                crate::run::rebuild::print(&rebuilt, &crate::report::Reporter::console_only());
                Ok(Outcome::Complete)
            }
            Some(Command::Merge(args)) => {
                let options = crate::run::merge::MergeOptions {
                    dirs: args.dirs,
                    out: args.out,
                    allow_partial: args.allow_partial,
                };
                let merged = crate::run::merge::merge(&options)?;
                crate::run::merge::print(&merged, &options.out, &crate::report::Reporter::console_only());
                Ok(Outcome::Complete)
            }
            Some(Command::Compare(args)) => {
                crate::compare::run(&args.into()).map(|found| match found.breaches.is_empty() {
                    true => Outcome::Complete,
                    false => Outcome::ThresholdCrossed,
                })
            }
            Some(Command::K8sJob(args)) => {
                crate::k8s::print(&args.try_into()?)?;
                Ok(Outcome::Complete)
            }
            Some(Command::Capacity(args)) => {
                let config = RunConfig::for_capacity(*args, ProxyEnv::from_process())?;
                crate::run::run(config).await
            }
            None => {
                let config = RunConfig::from_args(cli.run, ProxyEnv::from_process())?;
                crate::run::run(config).await
            }
        }
    });
    // Connections still open are dropped here; do not wait for them.
    runtime.shutdown_background();
    match result {
        Ok(Outcome::Complete) => ExitCode::SUCCESS,
        Ok(Outcome::Interrupted) => ExitCode::from(130),
        Ok(
            Outcome::ErrorBudget
            | Outcome::NothingSucceeded
            | Outcome::ResultsNotSaved
            | Outcome::SloUnmet
            | Outcome::ThresholdCrossed,
        ) => ExitCode::from(1),
        Err(e) => match e.downcast_ref::<UsageError>() {
            Some(usage) => fail(2, &usage.0),
            None => fail(1, &format!("{e:#}")),
        },
    }
}

fn fail(code: u8, message: &str) -> ExitCode {
    eprintln!(
        "llm-bench: {}",
        crate::i18n::tr(crate::i18n::Msg::ErrorLine, &[("error", &message)])
    );
    ExitCode::from(code)
}

/// clap's help and version go to stdout as usual; its errors become one line.
fn clap_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        _ => {
            let rendered = e.render().to_string();
            let mut lines = rendered.lines().filter(|l| !l.trim().is_empty());
            let mut first = lines
                .next()
                .unwrap_or("invalid arguments")
                .trim_start_matches("error: ")
                .to_string();
            // "the following required arguments were not provided:" lists them on indented
            // lines below: they belong in the one line.
            if first.ends_with(':') {
                let listed: Vec<&str> = lines.take_while(|l| l.starts_with(' ')).map(str::trim).collect();
                if !listed.is_empty() {
                    first = format!("{first} {}", listed.join(", "));
                }
            }
            fail(2, &format!("{first} (see llm-bench --help)"))
        }
    }
}

/// Each stream needs a socket: raise the soft open-file limit to the hard one.
fn raise_open_file_limit() {
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}
