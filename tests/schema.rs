//! Real summary.json files of every mode validate against docs/summary.schema.json (issue 11
//! §2), twice: as the schema is (open objects, so later keys still validate), and with every
//! object that lists its properties closed, so that a key the schema does not type fails here.
//! Each run is short, against the simulator.

mod common;

use common::*;
use llm_bench::sim::SimConfig;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

const SCHEMA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/summary.schema.json");

/// The schema, and the same with `additionalProperties: false` wherever an object lists its
/// properties and says nothing about others.
fn schemas() -> (Value, Value) {
    let schema = read_json(Path::new(SCHEMA));
    fn close(v: &mut Value) {
        match v {
            Value::Object(map) => {
                if map.contains_key("properties") && !map.contains_key("additionalProperties") {
                    map.insert("additionalProperties".into(), Value::Bool(false));
                }
                map.values_mut().for_each(close);
            }
            Value::Array(items) => items.iter_mut().for_each(close),
            _ => {}
        }
    }
    let mut closed = schema.clone();
    close(&mut closed);
    (schema, closed)
}

/// The validation errors of `instance` against `schema`, one line each.
fn errors(schema: &Value, instance: &Value) -> Vec<String> {
    let mut schemas = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    let url = "urn:llm-bench:summary.schema.json";
    compiler.add_resource(url, schema.clone()).expect("the schema is JSON");
    let index = compiler
        .compile(url, &mut schemas)
        .unwrap_or_else(|e| panic!("docs/summary.schema.json is not a valid schema: {e}"));
    match schemas.validate(instance, index) {
        Ok(()) => Vec::new(),
        Err(e) => format!("{e:#}").lines().map(str::to_string).collect(),
    }
}

/// Fails with every problem of every summary at once.
fn check_all(summaries: &[(String, Value)]) {
    let (open, closed) = schemas();
    let mut problems = Vec::new();
    for (name, summary) in summaries {
        for (kind, schema) in [("schema", &open), ("schema with closed objects", &closed)] {
            let errs = errors(schema, summary);
            if !errs.is_empty() {
                problems.push(format!("{name} against the {kind}:\n  {}", errs.join("\n  ")));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Which simulator a case runs against.
#[derive(Clone, Copy, PartialEq)]
enum Server {
    Plain,
    /// 5% of requests fail with HTTP 500 (errors, error_samples).
    Faulty,
    /// Reasoning text first (ttft_reasoning_ms, …), llama-server's wire format.
    Reasoning,
}

struct Case {
    name: &'static str,
    args: &'static [&'static str],
    server: Server,
}

const CASES: &[Case] = &[
    Case {
        name: "closed-loop steps with an SLO and token-exact lengths",
        args: &[
            "-i",
            "-o",
            "-st",
            "1",
            "-et",
            "2",
            "-tg",
            "6",
            "--isl",
            "32",
            "--osl",
            "6",
            "--ignore-eos",
            "--slo",
            "ttft=2s,e2e_p99=5s",
        ],
        server: Server::Faulty,
    },
    Case {
        name: "an open-loop --rate sweep with a cap and warm-up",
        args: &[
            "-o",
            "--rate",
            "20,40",
            "--step-duration",
            "1s",
            "--warmup",
            "200ms",
            "--max-concurrency",
            "4",
            "--slo",
            "ttft_p99=2s",
            "-tg",
            "4",
        ],
        server: Server::Plain,
    },
    Case {
        name: "a stress run",
        args: &[
            "-o",
            "-st",
            "2",
            "--duration",
            "2s",
            "--report-interval",
            "1s",
            "-tg",
            "4",
        ],
        server: Server::Faulty,
    },
    Case {
        name: "a capacity search",
        args: &[
            "capacity",
            "-o",
            "--by",
            "concurrency",
            "--min",
            "1",
            "--max",
            "2",
            "--step-duration",
            "1s",
            "--slo",
            "ttft_p99=2s",
            "-tg",
            "4",
        ],
        server: Server::Plain,
    },
    Case {
        name: "an embeddings run",
        args: &["--endpoint", "embeddings", "--embed-batch", "2", "-st", "1", "-et", "1"],
        server: Server::Plain,
    },
    Case {
        name: "a multimodal run",
        args: &["-mm", "--image-size", "64x64", "-st", "1", "-et", "1", "-tg", "3"],
        server: Server::Plain,
    },
    Case {
        name: "multi-turn sessions",
        args: &[
            "-o",
            "-st",
            "2",
            "-et",
            "2",
            "--requests",
            "6",
            "--isl",
            "40",
            "--osl",
            "4",
            "--turns",
            "3",
            "--think-time",
            "20ms",
        ],
        server: Server::Plain,
    },
    Case {
        name: "shared prefixes",
        args: &[
            "-o",
            "-st",
            "2",
            "-et",
            "2",
            "--requests",
            "8",
            "--isl",
            "32",
            "--osl",
            "4",
            "--prefix-groups",
            "2",
            "--prefix-tokens",
            "64",
        ],
        server: Server::Plain,
    },
    Case {
        name: "a repeated sweep",
        args: &[
            "-o",
            "-st",
            "1",
            "-et",
            "2",
            "--requests",
            "3",
            "--repeat",
            "2",
            "-tg",
            "3",
        ],
        server: Server::Plain,
    },
    Case {
        name: "a reasoning model on llama-server's wire format",
        args: &["-o", "-st", "1", "-et", "1", "-tg", "8", "--step-duration", "1s"],
        server: Server::Reasoning,
    },
];

#[test]
fn summaries_of_every_mode_match_the_schema() {
    let plain = Sim::start(fast_sim());
    // The faulty server also serves DCGM figures, so stress intervals carry `gpu` (with a
    // throttle reason) beside `server_metrics`.
    let faulty = Sim::start(SimConfig {
        fault_error_rate: 0.05,
        gpu_power_w: Some(200.0),
        gpus: 2,
        gpu_throttle_mask: 0x4,
        ..fast_sim()
    });
    let reasoning = Sim::start(SimConfig {
        reasoning_tokens: 3,
        flavor: llm_bench::sim::Flavor::LlamaServer,
        ..fast_sim()
    });
    let mut summaries = Vec::new();
    let mut kept = None;
    for case in CASES {
        let sim = match case.server {
            Server::Plain => &plain,
            Server::Faulty => &faulty,
            Server::Reasoning => &reasoning,
        };
        let s = Scratch::new();
        let dcgm = sim.url.trim_end_matches("/v1").to_string() + "/dcgm/metrics";
        let mut args = case.args.to_vec();
        if case.server == Server::Faulty {
            args.extend(["--gpu-metrics", dcgm.as_str()]);
        }
        let out = s.run(&sim.url, &args);
        let (stdout, stderr) = text(&out);
        assert!(
            out.status.success(),
            "{}: {:?}\n{stdout}\n{stderr}",
            case.name,
            case.args
        );
        summaries.push((case.name.to_string(), s.summary()));
        kept.get_or_insert(s);
    }
    // `llm-bench report DIR`, with and without the saved summary.
    let s = kept.unwrap();
    let out = run(&["report", &s.out()]);
    assert!(out.status.success(), "{:?}", text(&out));
    summaries.push(("a rebuilt summary".into(), s.summary()));
    std::fs::remove_file(s.path("results").join("summary.json")).unwrap();
    let out = run(&["report", &s.out()]);
    assert!(out.status.success(), "{:?}", text(&out));
    summaries.push(("a summary rebuilt from requests.jsonl alone".into(), s.summary()));
    check_all(&summaries);
}

/// `llm-bench merge`: the shards' summaries and the merged one (with `shards` and `merged`), of
/// a step sweep and of a stress run (with merged `stress.intervals`).
#[test]
fn shards_and_their_merge_match_the_schema() {
    let sim = Sim::start(fast_sim());
    let cases: [(&str, &[&str]); 2] = [
        ("steps", &["-o", "-st", "2", "-et", "2", "--requests", "6", "-tg", "10"]),
        (
            "stress",
            &[
                "-o",
                "-st",
                "2",
                "--duration",
                "3s",
                "--report-interval",
                "1s",
                "-tg",
                "4",
            ],
        ),
    ];
    let mut summaries: Vec<(String, Value)> = Vec::new();
    for (name, args) in cases {
        let shards = run_shards_together(&sim, &format!("schema-{name}"), 2, args);
        let merged = Scratch::new();
        let out = run(&["merge", &shards[0].out(), &shards[1].out(), "--out", &merged.out()]);
        assert!(out.status.success(), "{name}: {:?}", text(&out));
        for (i, s) in shards.iter().enumerate() {
            summaries.push((format!("{name}: shard {i}"), s.summary()));
        }
        let summary = merged.summary();
        if name == "stress" {
            assert!(summary["stress"]["intervals"].as_array().is_some_and(|i| !i.is_empty()));
        }
        summaries.push((format!("{name}: the merged summary"), summary));
    }
    check_all(&summaries);
}

#[test]
fn an_interrupted_run_matches_the_schema() {
    let sim = Sim::start(fast_sim());
    let s = Scratch::new();
    let child = s
        .command(
            &sim.url,
            &[
                "-o",
                "-st",
                "2",
                "--duration",
                "30s",
                "--report-interval",
                "1s",
                "-tg",
                "4",
            ],
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2000));
    signal(&child, libc::SIGINT);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let summary = s.summary();
    assert_eq!(summary["status"], "interrupted");
    check_all(&[("an interrupted stress run".into(), summary)]);
}

#[test]
fn the_schema_rejects_what_it_should() {
    let (open, closed) = schemas();
    let valid = serde_json::json!({
        "schema_version": 1, "status": "rebuilt", "started_at": "", "finished_at": null, "model": null,
        "config": null, "environment": {"tool": "llm-bench", "tool_version": "0", "cpus": 1},
        "steps": [], "client_bound": false, "recommendations": [], "notes": [],
        "monitor": {"temperature_available": false, "samples": []},
    });
    assert_eq!(errors(&open, &valid), Vec::<String>::new());
    let with = |pointer: &str, value: Value| {
        let mut v = valid.clone();
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        v.pointer_mut(parent)
            .unwrap()
            .as_object_mut()
            .unwrap()
            .insert(key.into(), value);
        v
    };
    for (what, instance) in [
        ("another version", with("/schema_version", 2.into())),
        ("client_bound as text", with("/client_bound", "no".into())),
        ("an unknown status", with("/status", "done".into())),
        (
            "a step without its figures",
            with("/steps", serde_json::json!([{"test": "output"}])),
        ),
    ] {
        assert!(!errors(&open, &instance).is_empty(), "{what} should not validate");
    }
    // A key the schema does not type: fine for the open schema, caught by the closed one.
    let extra = with("/future_key", 1.into());
    assert!(errors(&open, &extra).is_empty());
    assert!(!errors(&closed, &extra).is_empty());
}
