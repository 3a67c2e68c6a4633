//! `llm-bench demo`: the whole tool in under a minute with no server of one's own. It starts the
//! simulator on a free loopback port, tuned so the step curve shows a knee, and runs a short
//! step benchmark of both text tests against it, each step a steady 1.5 s closed loop.

use crate::cli::{Cli, DemoArgs};
use crate::sim::SimConfig;
use clap::Parser;

/// The simulator as the demo runs it: 16 sequences decoded at once, so throughput stops
/// growing past concurrency 16.
pub fn demo_sim_config() -> SimConfig {
    SimConfig {
        port: 0,
        max_batch: 16,
        decode_base_ms: 8.0,
        decode_ms_per_seq: 0.25,
        prefill_us_per_token: 20.0,
        ..SimConfig::default()
    }
}

pub async fn run(args: DemoArgs) -> anyhow::Result<crate::run::Outcome> {
    let sim = crate::sim::start(demo_sim_config()).await?;
    let url = sim.base_url();
    println!("{}", crate::i18n::tr(crate::i18n::Msg::DemoLine, &[("url", &url)]));
    let out = args.out.unwrap_or_else(|| crate::cli::config::default_out_dir("demo-"));
    let argv: Vec<String> = [
        "llm-bench",
        "--input",
        "--output",
        "--start-threads",
        "4",
        "--end-threads",
        "32",
        "--step-threads",
        "4",
        "--prompt-length",
        "400",
        "--tokens-to-generate",
        "64",
        "--step-duration",
        "1500ms",
        "--warmup",
        "300ms",
        "--min-tps",
        "60",
        "-u",
        &url,
    ]
    .iter()
    .map(|s| s.to_string())
    .chain(["-l".into(), args.log_file.display().to_string()])
    .chain(["--out".into(), out.display().to_string()])
    .collect();
    let cli = Cli::try_parse_from(argv)?;
    // The simulator is on this machine: a proxy from the environment must not stand between.
    let mut config = crate::cli::config::RunConfig::from_args(cli.run, crate::client::proxy::ProxyEnv::default())?;
    config.server_in_process = true;
    let outcome = crate::run::run(config).await;
    sim.shutdown();
    outcome
}
