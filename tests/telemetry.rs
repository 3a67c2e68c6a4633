//! Server metrics, GPU telemetry and energy through the real binary against the simulator: its
//! `/metrics` in both flavors, its `/dcgm/metrics`, a fake NVML, broken metrics endpoints, the
//! switches that turn telemetry off, and the sentences drawn from them. Tolerances are wide
//! enough for a noisy 2-core machine; runs are a few seconds each.

mod common;

use common::*;
use llm_bench::sim::{Flavor, MetricsFault, SimConfig};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// The simulator's root (its API base without `/v1`), where `/metrics` is.
fn root(sim: &Sim) -> String {
    sim.url.trim_end_matches("/v1").to_string()
}

/// A simulator of `batch` slots and 10 ms decode steps, with `tweak` applied.
fn sim_with(batch: usize, tweak: impl FnOnce(&mut SimConfig)) -> Sim {
    let mut config = engine(batch, 10.0);
    tweak(&mut config);
    Sim::start(config)
}

/// Runs llm-bench against `sim` with `args` and `env`; fails the test unless it exits 0.
fn run_env(sim: &Sim, args: &[&str], env: &[(&str, &str)]) -> (Scratch, String, String) {
    let s = Scratch::new();
    let mut cmd = s.command(&sim.url, args);
    cmd.env_remove("LLM_BENCH_NVML_LIB");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("llm-bench runs");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{args:?} {env:?}\n{stdout}\n{stderr}");
    (s, stdout, stderr)
}

fn run_all(sim: &Sim, args: &[&str]) -> (Scratch, String, String) {
    run_env(sim, args, &[])
}

/// The lines of a JSON Lines file in the results folder; None when the file is not there.
fn jsonl(s: &Scratch, name: &str) -> Option<Vec<Value>> {
    let path = s.path("results").join(name);
    let text = std::fs::read_to_string(&path).ok()?;
    Some(
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}: {l}", path.display())))
            .collect(),
    )
}

fn steps(summary: &Value) -> &Vec<Value> {
    summary["steps"].as_array().expect("steps")
}

fn step_at(summary: &Value, concurrency: u64) -> &Value {
    steps(summary)
        .iter()
        .find(|s| s["concurrency"] == concurrency)
        .unwrap_or_else(|| panic!("no step at concurrency {concurrency}: {summary}"))
}

fn recommendations(summary: &Value) -> Vec<String> {
    summary["recommendations"]
        .as_array()
        .expect("recommendations")
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect()
}

fn has_recommendation(summary: &Value, part: &str) -> bool {
    recommendations(summary).iter().any(|r| r.contains(part))
}

/// `monitor.sources` entry `name` ("system", "server", "gpu"); the list is left out when the
/// machine is the only source.
fn source<'a>(summary: &'a Value, name: &str) -> Option<&'a Value> {
    let sources = summary["monitor"]["sources"].as_array()?;
    assert!(sources.len() > 1, "a list of the machine alone: {sources:?}");
    sources.iter().find(|s| s["name"] == name)
}

fn count(text: &str, part: &str) -> usize {
    text.matches(part).count()
}

/// `a` within `pct` percent of `b`.
fn near_pct(a: f64, b: f64, pct: f64) -> bool {
    (a - b).abs() <= b.abs() * pct / 100.0
}

/// The server's token deltas agree with llm-bench's own counts for the step.
fn assert_tokens_match(step: &Value) {
    let sm = &step["server_metrics"];
    let check = &sm["token_check"];
    assert_eq!(check["mismatch"], false, "{sm}");
    for (server, ours) in [
        ("prompt_tokens", "ours_prompt_tokens"),
        ("generation_tokens", "ours_generation_tokens"),
    ] {
        let (s, o) = (num(&sm[server]), num(&check[ours]));
        assert!(o > 0.0 && near_pct(s, o, 2.0), "{server} {s} vs {ours} {o}: {sm}");
    }
}

/// A step sweep at concurrency 2 and 6 (two steps of 2 s) against a 2-slot engine.
const SWEEP: &[&str] = &[
    "-o",
    "--start-threads",
    "2",
    "--end-threads",
    "6",
    "--step-threads",
    "4",
    "--step-duration",
    "2s",
    "-tg",
    "20",
];

/// One step of 2 s at concurrency 2.
const ONE_STEP: &[&str] = &["-o", "-st", "2", "-et", "2", "--step-duration", "2s", "-tg", "20"];

fn with<'a>(base: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
    base.iter().chain(extra).copied().collect()
}

#[test]
fn vllm_metrics_explain_a_sweep_past_the_batch() {
    let sim = sim_with(2, |_| {});
    let (s, stdout, _) = run_all(&sim, SWEEP);
    let header = format!("Server metrics: {}/metrics (vllm families), every 1s", root(&sim));
    assert_eq!(count(&stdout, &header), 1, "{header}\n{stdout}");
    let summary = s.summary();
    assert_eq!(steps(&summary).len(), 2, "{summary}");
    for step in steps(&summary) {
        let sm = &step["server_metrics"];
        assert_eq!(sm["source"], "vllm", "{step}");
        assert_tokens_match(step);
        // The server's own TTFT histogram saw exactly the step's requests.
        assert_eq!(
            num(&sm["ttft_ms"]["count"]),
            num(&step["requests_ok"]),
            "server TTFT count vs requests: {step}"
        );
        assert_eq!(step["requests_failed"], 0, "{step}");
        assert!(num(&sm["samples"]) >= 3.0, "edges and a sample inside: {sm}");
    }
    // Past the batch: a queue and a full KV cache.
    let past = &step_at(&summary, 6)["server_metrics"];
    assert!(num(&past["requests_waiting"]["max"]) >= 1.0, "{past}");
    assert!(num(&past["kv_cache_usage_pct"]["max"]) >= 90.0, "{past}");
    assert!(
        num(&past["requests_running"]["max"]) <= 2.0,
        "never more than the batch: {past}"
    );
    assert!(
        has_recommendation(&summary, "memory-bound"),
        "{:?}",
        recommendations(&summary)
    );
    // One line per scrape, only what changed in `raw`.
    let lines = jsonl(&s, "server_metrics.jsonl").expect("server_metrics.jsonl");
    assert!(lines.len() >= 4, "{lines:?}");
    for pair in lines.windows(2) {
        assert!(
            num(&pair[1]["t_s"]) > num(&pair[0]["t_s"]),
            "{} then {}",
            pair[0]["t_s"],
            pair[1]["t_s"]
        );
    }
    for line in &lines {
        assert_eq!(line["source"], "server", "{line}");
        assert_eq!(line["figures"]["engine"], "vllm", "{line}");
    }
    let first_raw = lines[0]["raw"].as_object().expect("raw");
    assert!(
        first_raw.keys().any(|k| k.starts_with("vllm:generation_tokens_total")),
        "{first_raw:?}"
    );
    // Every later line carries less than the whole page: the gauges that did not move are left out.
    assert!(
        lines[1..]
            .iter()
            .any(|l| l["raw"].as_object().unwrap().len() < first_raw.len()),
        "raw holds only changed series"
    );
    let timeline = summary["monitor"]["server"].as_array().expect("monitor.server");
    assert!(!timeline.is_empty(), "{summary}");
    assert!(timeline.iter().any(|p| p["requests_running"] == 2.0), "{timeline:?}");
    let server = source(&summary, "server").expect("server source");
    assert_eq!(server["skipped"], 0, "{server}");
    assert_eq!(server["about"], format!("{}/metrics", root(&sim)), "{server}");
}

#[test]
fn each_flavor_is_read_as_its_engine() {
    for (flavor, engine) in [(Flavor::Openai, "vllm"), (Flavor::LlamaServer, "llamacpp")] {
        let sim = sim_with(2, |c| c.flavor = flavor);
        let (s, stdout, _) = run_all(&sim, ONE_STEP);
        assert!(
            stdout.contains(&format!("/metrics ({engine} families)")),
            "{engine}:\n{stdout}"
        );
        let summary = s.summary();
        let step = &steps(&summary)[0];
        assert_eq!(step["server_metrics"]["source"], engine, "{step}");
        assert_tokens_match(step);
        // Neither engine's page has a token-count sentence to say.
        assert!(!stdout.contains("The server counted"), "{engine}:\n{stdout}");
    }
}

#[test]
fn dcgm_energy_is_the_counter_over_the_step() {
    let sim = sim_with(2, |c| {
        c.gpu_power_w = Some(250.0);
        c.gpus = 2;
    });
    let dcgm = format!("{}/dcgm/metrics", root(&sim));
    let (s, stdout, _) = run_all(&sim, &with(ONE_STEP, &["--gpu-metrics", &dcgm]));
    let header = format!("GPU telemetry: 2 GPU(s) from the DCGM exporter at {dcgm}, every 1s");
    assert!(stdout.contains(&header), "{header}\n{stdout}");
    assert!(!stdout.contains("GPU telemetry is not available"), "{stdout}");
    let summary = s.summary();
    let step = &steps(&summary)[0];
    let gpu = &step["gpu"];
    assert_eq!(gpu["source"], "dcgm", "{gpu}");
    assert_eq!(gpu["gpus"], 2, "{gpu}");
    assert_eq!(gpu["energy_method"], "counter", "{gpu}");
    assert_eq!(num(&gpu["power_w"]["mean"]), 500.0, "{gpu}");
    assert_eq!(num(&gpu["power_w"]["max"]), 500.0, "{gpu}");
    let energy = num(&gpu["energy_j"]);
    let devices = gpu["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 2);
    let per_device: f64 = devices.iter().map(|d| num(&d["energy_j"])).sum();
    assert!((per_device - energy).abs() < 1e-6, "{gpu}");
    // 500 W over the span between the step's two edge samples: its window and the drain.
    let window = num(&step["duration_s"]);
    let span = energy / 500.0;
    assert!(
        span >= window - 0.05 && span <= window + 2.0,
        "{energy} J is {span:.3} s at 500 W; the window is {window:.3} s"
    );
    // The same two edges are in gpu_metrics.jsonl: their counters' difference is the energy,
    // and their times are 500 W apart.
    let lines = jsonl(&s, "gpu_metrics.jsonl").expect("gpu_metrics.jsonl");
    assert!(lines.len() >= 3, "{lines:?}");
    let total_mj = |l: &Value| -> f64 {
        l["devices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| num(&d["energy_mj"]))
            .sum()
    };
    for line in &lines {
        assert_eq!(line["source"], "dcgm", "{line}");
        assert_eq!(line["devices"].as_array().unwrap().len(), 2, "{line}");
    }
    let edges = lines
        .iter()
        .enumerate()
        .flat_map(|(i, a)| lines[i + 1..].iter().map(move |b| (a, b)));
    let found = edges
        .filter(|(a, b)| ((total_mj(b) - total_mj(a)) / 1000.0 - energy).abs() < 0.01)
        .map(|(a, b)| num(&b["t_s"]) - num(&a["t_s"]))
        .collect::<Vec<_>>();
    assert!(
        found.iter().any(|dt| (500.0 * dt - energy).abs() <= 500.0 * 0.05),
        "no two samples {energy} J apart at 500 W: spans {found:?}\n{lines:?}"
    );
    // The ratios: served tokens per joule, joules per request.
    let served = step["server_metrics"]["token_check"]["ours_generation_tokens"]
        .as_f64()
        .unwrap_or_else(|| num(&step["output_tokens"]));
    assert!(near_pct(num(&gpu["tokens_per_joule"]) * energy, served, 0.1), "{gpu}");
    let requests = num(&step["requests_ok"]) + num(&step["requests_failed"]);
    assert!(
        near_pct(num(&gpu["joules_per_request"]) * requests, energy, 0.1),
        "{gpu}"
    );
    assert!(
        has_recommendation(&summary, "output tokens per joule"),
        "{:?}",
        recommendations(&summary)
    );
    let src = source(&summary, "gpu").expect("gpu source");
    assert_eq!(src["kind"], "dcgm", "{src}");
    assert_eq!(src["skipped"], 0, "{src}");
    assert!(!summary["monitor"]["gpu"].as_array().unwrap().is_empty(), "{summary}");
    // `llm-bench report` rebuilds the step from its records and keeps what they cannot say.
    let out = bin().arg("report").arg(s.out()).output().unwrap();
    assert!(out.status.success(), "{:?}", text(&out));
    let rebuilt = s.summary();
    let again = &steps(&rebuilt)[0];
    for key in ["gpu", "server_metrics", "system", "client"] {
        assert_eq!(again[key], step[key], "{key} after report");
    }
}

/// Where distributions put the real libnvidia-ml (as src/monitor/gpu/nvml.rs's own test).
fn nvidia_driver_installed() -> bool {
    [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib64",
        "/usr/lib",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/local/nvidia/lib64",
    ]
    .iter()
    .any(|dir| Path::new(dir).join("libnvidia-ml.so.1").exists())
}

#[test]
fn telemetry_switches_and_a_machine_without_nvidia() {
    let sim = sim_with(2, |_| {});
    // On a machine with a driver, "no NVIDIA" is a library that is not there.
    let missing = std::env::temp_dir().join("llm-bench-no-such-dir/libnvidia-ml.so.1");
    let missing = missing.display().to_string();
    let env: Vec<(&str, &str)> = if nvidia_driver_installed() {
        eprintln!("an NVIDIA driver is installed: LLM_BENCH_NVML_LIB points at a missing file");
        vec![("LLM_BENCH_NVML_LIB", missing.as_str())]
    } else {
        vec![]
    };
    // (extra flags, server metrics on, "GPU telemetry is not available" said)
    let cases: [(&[&str], bool, bool); 4] = [
        (&[], true, true),
        (&["--no-gpu-metrics"], true, false),
        (&["--no-server-metrics"], false, true),
        (&["--no-server-metrics", "--no-gpu-metrics"], false, false),
    ];
    for (extra, server_on, gpu_said) in cases {
        let (s, stdout, stderr) = run_env(&sim, &with(ONE_STEP, extra), &env);
        let both = format!("{stdout}{stderr}");
        assert_eq!(
            count(&both, "GPU telemetry is not available: "),
            usize::from(gpu_said),
            "{extra:?}:\n{both}"
        );
        if !gpu_said {
            assert!(!both.contains("GPU telemetry"), "{extra:?}:\n{both}");
        }
        assert_eq!(
            count(&stdout, "Server metrics: "),
            usize::from(server_on),
            "{extra:?}:\n{stdout}"
        );
        let summary = s.summary();
        assert_eq!(summary["status"], "complete", "{extra:?}");
        for step in steps(&summary) {
            assert!(step.get("gpu").is_none(), "{extra:?}: {step}");
            assert_eq!(step.get("server_metrics").is_some(), server_on, "{extra:?}: {step}");
        }
        assert!(jsonl(&s, "gpu_metrics.jsonl").is_none(), "{extra:?}");
        assert_eq!(jsonl(&s, "server_metrics.jsonl").is_some(), server_on, "{extra:?}");
        assert_eq!(source(&summary, "server").is_some(), server_on, "{extra:?}");
        assert!(source(&summary, "gpu").is_none(), "{extra:?}");
        assert_eq!(
            summary["monitor"]["server"].as_array().is_some_and(|t| !t.is_empty()),
            server_on,
            "{extra:?}"
        );
    }
}

/// Builds tests/fixtures/fake_nvml.c as `<dir>/libnvidia-ml.so.1`; None without a C compiler.
fn build_fake_nvml(dir: &Path) -> Option<std::path::PathBuf> {
    let fake = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/fake_nvml.c");
    let out = dir.join("libnvidia-ml.so.1");
    match Command::new("cc")
        .args(["-shared", "-fPIC", "-O1", "-o"])
        .arg(&out)
        .arg(fake)
        .status()
    {
        Ok(status) => {
            assert!(status.success(), "cc failed on {fake}");
            Some(out)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => panic!("running cc: {e}"),
    }
}

#[test]
fn nvml_through_the_binary_with_a_fake_driver() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(lib) = build_fake_nvml(tmp.path()) else {
        eprintln!("SKIPPED nvml_through_the_binary_with_a_fake_driver: no C compiler (cc)");
        return;
    };
    let lib = lib.display().to_string();
    let sim = sim_with(2, |_| {});
    // The server is on this machine: NVML by default.
    let (s, stdout, _) = run_env(&sim, ONE_STEP, &[("LLM_BENCH_NVML_LIB", &lib)]);
    let header = "GPU telemetry: 2 GPU(s) through NVML (NVIDIA H100 80GB HBM3, NVIDIA L4), every 1s";
    assert!(stdout.contains(header), "{stdout}");
    let summary = s.summary();
    let step = &steps(&summary)[0];
    let gpu = &step["gpu"];
    assert_eq!(gpu["source"], "nvml", "{gpu}");
    assert_eq!(gpu["gpus"], 2, "{gpu}");
    // GPU 0 has an energy counter, GPU 1 (NOT_SUPPORTED) only power: its energy is the power
    // integral, and so the total is said to be one.
    assert_eq!(gpu["energy_method"], "power_integral", "{gpu}");
    let d = gpu["devices"].as_array().unwrap();
    let (e0, e1) = (num(&d[0]["energy_j"]), num(&d[1]["energy_j"]));
    assert!((e0 + e1 - num(&gpu["energy_j"])).abs() < 1e-6, "{gpu}");
    // Both over the same span: 350 W (counter) and 72.5 W (integral).
    let (span0, span1) = (e0 / 350.0, e1 / 72.5);
    assert!(near_pct(span0, span1, 3.0), "{span0:.3} s vs {span1:.3} s: {gpu}");
    let window = num(&step["duration_s"]);
    assert!(
        span1 >= window - 0.05 && span1 <= window + 2.0,
        "{span1} vs {window}: {gpu}"
    );
    assert_eq!(num(&gpu["power_w"]["mean"]), 422.5, "{gpu}");
    assert_eq!(num(&d[0]["throttle_reasons_pct"]["sw_power_cap"]), 100.0, "{gpu}");
    assert_eq!(num(&d[0]["throttled_pct"]), 100.0, "{gpu}");
    assert_eq!(num(&d[1]["throttled_pct"]), 0.0, "idle is no slowdown: {gpu}");
    assert!(d[1].get("throttle_reasons_pct").is_none(), "idle is left out: {gpu}");
    let lines = jsonl(&s, "gpu_metrics.jsonl").expect("gpu_metrics.jsonl");
    assert!(lines.len() >= 3, "{lines:?}");
    for line in &lines {
        assert_eq!(line["source"], "nvml", "{line}");
        let devices = line["devices"].as_array().unwrap();
        assert!(devices[0]["energy_mj"].as_f64().is_some() && devices[1].get("energy_mj").is_none());
    }
    assert!(
        has_recommendation(&summary, "GPU 0 was slowed for power 100% of the time"),
        "{:?}",
        recommendations(&summary)
    );
    assert_eq!(source(&summary, "gpu").unwrap()["kind"], "nvml");
}

#[test]
fn bad_metrics_endpoints_never_hold_the_run_back() {
    // garbage, found on its own: said once, and no server telemetry at all.
    let sim = sim_with(2, |c| c.metrics_fault = MetricsFault::Garbage);
    let (s, stdout, _) = run_all(&sim, ONE_STEP);
    let line = format!("Server metrics: none at {}/metrics (not Prometheus text)", root(&sim));
    assert_eq!(count(&stdout, &line), 1, "{stdout}");
    let summary = s.summary();
    assert!(
        steps(&summary).iter().all(|st| st.get("server_metrics").is_none()),
        "{summary}"
    );
    assert!(jsonl(&s, "server_metrics.jsonl").is_none_or(|l| l.is_empty()));
    assert!(source(&summary, "server").is_none(), "{summary}");

    // (fault, why the scrapes were skipped, said at pre-flight)
    for (fault, why) in [
        (MetricsFault::Huge, "larger than 8 MiB"),
        (MetricsFault::Slow, "did not answer within"),
    ] {
        let sim = sim_with(2, |c| c.metrics_fault = fault);
        let args = with(ONE_STEP, &["--server-metrics", "--metrics-interval", "1s"]);
        let started = std::time::Instant::now();
        let (s, stdout, stderr) = run_all(&sim, &args);
        let took = started.elapsed().as_secs_f64();
        // The warning at pre-flight and one line at the end, not a line for every skipped scrape.
        assert!(
            stdout.contains("Server metrics: no usable answer from") && stdout.contains("; trying again every 1s"),
            "{stdout}"
        );
        assert_eq!(count(&stdout, why), 2, "{fault:?}:\n{stdout}");
        assert_eq!(count(&stdout, "sample(s) skipped"), 1, "{fault:?}:\n{stdout}");
        assert!(count(&stderr, why) <= 1, "{fault:?}:\n{stderr}");
        let summary = s.summary();
        assert_eq!(summary["status"], "complete");
        let src = source(&summary, "server").expect("the asked-for source is kept");
        assert!(num(&src["skipped"]) >= 1.0, "{fault:?}: {src}");
        assert!(
            src["skip_reason"].as_str().unwrap_or_default().contains(why),
            "{fault:?}: {src}"
        );
        let step = &steps(&summary)[0];
        assert!(step.get("server_metrics").is_none(), "{fault:?}: {step}");
        assert_eq!(jsonl(&s, "server_metrics.jsonl").map(|l| l.len()), Some(0), "{fault:?}");
        // The load did not wait for the scrapes: a 2 s window, and the engine's own latency.
        assert!((num(&step["duration_s"]) - 2.0).abs() <= 0.5, "{fault:?}: {step}");
        assert!(num(&step["ttft_ms"]["p50"]) < 250.0, "{fault:?}: {step}");
        assert!(num(&step["e2e_ms"]["p50"]) < 1000.0, "{fault:?}: {step}");
        assert_eq!(step["requests_failed"], 0, "{fault:?}: {step}");
        // Pre-flight waits 3 s at most and each boundary one scrape timeout (1 s).
        assert!(took < 20.0, "{fault:?}: {took:.1} s");
    }
}

#[test]
fn a_prefix_cache_that_never_hits_is_said() {
    let args = [
        "-o",
        "-st",
        "2",
        "-et",
        "2",
        "--requests",
        "10",
        "--isl",
        "32",
        "--osl",
        "4",
        "--prefix-groups",
        "2",
        "--prefix-tokens",
        "256",
    ];
    for no_prefix_cache in [true, false] {
        let sim = sim_with(2, |c| c.no_prefix_cache = no_prefix_cache);
        let (s, stdout, _) = run_all(&sim, &args);
        let summary = s.summary();
        let sm = &steps(&summary)[0]["server_metrics"];
        let hit = num(&sm["prefix_cache_hit_pct"]);
        assert!(num(&sm["prefix_cache_queries"]) > 0.0, "{sm}");
        let said = has_recommendation(&summary, "is prefix caching enabled?");
        // The simulator's prompt counter leaves a cached prefix out, as llama.cpp's does: the
        // token check compares it with ours less the cached tokens, and finds no mismatch.
        let check = &sm["token_check"];
        assert_eq!(check["mismatch"], false, "{sm}");
        assert!(!stdout.contains("The server counted"), "{stdout}");
        assert_eq!(
            check.get("ours_cached_prompt_tokens").is_some(),
            !no_prefix_cache,
            "{sm}"
        );
        if no_prefix_cache {
            assert_eq!(hit, 0.0, "{sm}");
            assert!(said, "{:?}", recommendations(&summary));
            assert!(
                stdout.contains("256-token prefix: is prefix caching enabled?"),
                "{stdout}"
            );
        } else {
            assert!(hit > 0.0, "{sm}");
            assert!(!said, "{:?}", recommendations(&summary));
        }
    }
}

#[test]
fn a_stress_run_has_telemetry_in_every_interval() {
    let sim = sim_with(2, |c| {
        c.gpu_power_w = Some(300.0);
        c.gpu_throttle_mask = 0x4;
    });
    let dcgm = format!("{}/dcgm/metrics", root(&sim));
    // Requests of 2.5 s: the server counts tokens as they go out, not when a request ends.
    let (s, stdout, _) = run_all(
        &sim,
        &[
            "-o",
            "-st",
            "2",
            "-tg",
            "250",
            "--duration",
            "6s",
            "--report-interval",
            "2s",
            "--gpu-metrics",
            &dcgm,
        ],
    );
    let summary = s.summary();
    let intervals = summary["stress"]["intervals"].as_array().expect("stress.intervals");
    assert!(intervals.len() >= 2, "{intervals:?}");
    for i in intervals {
        let sm = &i["server_metrics"];
        assert_eq!(sm["source"], "vllm", "{i}");
        let (server, ours) = (
            num(&sm["generation_tokens"]),
            num(&sm["token_check"]["ours_generation_tokens"]),
        );
        assert!(
            ours > 100.0 && (server - ours).abs() <= 0.1 * ours + 10.0,
            "interval {}: server {server} vs ours {ours} generated tokens",
            i["index"]
        );
        let gpu = &i["gpu"];
        assert_eq!(gpu["source"], "dcgm", "{i}");
        let length = num(&i["end_s"]) - num(&i["start_s"]);
        let span = num(&gpu["energy_j"]) / 300.0;
        assert!(
            (span - length).abs() <= 0.3,
            "{span:.3} s at 300 W in a {length:.3} s interval"
        );
        for d in gpu["devices"].as_array().unwrap() {
            assert_eq!(num(&d["throttled_pct"]), 100.0, "{d}");
            assert_eq!(num(&d["throttle_reasons_pct"]["sw_power_cap"]), 100.0, "{d}");
        }
    }
    assert!(
        has_recommendation(&summary, "slowed for power"),
        "{:?}",
        recommendations(&summary)
    );
    assert!(
        has_recommendation(&summary, "while GPU 0 was slowed for power 100% of the time"),
        "{:?}",
        recommendations(&summary)
    );
    // Each interval's line on the console has the server and the GPUs.
    assert!(count(&stdout, "· GPUs (1): 300 W") >= intervals.len(), "{stdout}");
}

#[test]
fn lang_zh_says_the_server_line_in_chinese() {
    let sim = sim_with(2, |_| {});
    let (_, stdout, _) = run_all(&sim, &with(SWEEP, &["--lang", "zh"]));
    let line = format!("服务器指标：{}/metrics（vllm 指标族），每 1s 采样一次", root(&sim));
    assert!(stdout.contains(&line), "{line}\n{stdout}");
    assert!(
        stdout.contains("受显存限制"),
        "the memory-bound sentence in Chinese:\n{stdout}"
    );
    assert!(!stdout.contains("Server metrics:"), "{stdout}");
}
