//! `llm-bench k8s-job`: the printed manifest read back with a YAML parser and checked field by
//! field; the run arguments passed through unchanged; keys and manifest-set flags refused with
//! one line and exit 2 (docs/distributed.md).

mod common;

use common::*;
use std::process::Output;
use std::time::{Duration, SystemTime};
use yaml_rust2::{Yaml, YamlLoader};

const IMAGE: &str = "registry.example.com/llm-bench:0.1.0";
const INDEX_PATH: &str = "metadata.annotations['batch.kubernetes.io/job-completion-index']";
/// A key a test hands over inline: it must never reach the output.
const KEY: &str = "sk-test-4f9d2c1b8a";

fn k8s_job(args: &[&str]) -> Output {
    bin().arg("k8s-job").args(args).output().expect("llm-bench runs")
}

/// The manifest's text and its documents; the command must succeed.
fn manifest(args: &[&str]) -> (String, Vec<Yaml>) {
    let out = k8s_job(args);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{args:?}\n{stdout}\n{stderr}");
    assert!(stderr.trim().is_empty(), "{stderr}");
    let docs = YamlLoader::load_from_str(&stdout).unwrap_or_else(|e| panic!("not YAML: {e}\n{stdout}"));
    assert_eq!(docs.len(), 2, "two documents:\n{stdout}");
    (stdout, docs)
}

fn strings(node: &Yaml) -> Vec<String> {
    node.as_vec()
        .unwrap_or_else(|| panic!("not a list: {node:?}"))
        .iter()
        .map(|v| v.as_str().unwrap_or_else(|| panic!("not a string: {v:?}")).to_string())
        .collect()
}

fn str_at<'a>(node: &'a Yaml, what: &str) -> &'a str {
    node.as_str()
        .unwrap_or_else(|| panic!("{what}: not a string: {node:?}"))
}

/// The pod spec and its only container.
fn pod(job: &Yaml) -> (&Yaml, &Yaml) {
    let spec = &job["spec"]["template"]["spec"];
    let containers = spec["containers"].as_vec().expect("containers");
    assert_eq!(containers.len(), 1);
    (spec, &containers[0])
}

/// An env entry of a container by name.
fn env<'a>(container: &'a Yaml, name: &str) -> Option<&'a Yaml> {
    container["env"]
        .as_vec()
        .and_then(|list| list.iter().find(|e| e["name"].as_str() == Some(name)))
}

/// The claim is a volume of the pod and mounted at /results.
fn assert_claim_mounted(job: &Yaml, claim: &str) {
    let (spec, container) = pod(job);
    let mount = &container["volumeMounts"][0];
    assert_eq!(mount["mountPath"].as_str(), Some("/results"));
    let volume = spec["volumes"]
        .as_vec()
        .expect("volumes")
        .iter()
        .find(|v| v["name"] == mount["name"])
        .expect("the mounted volume");
    assert_eq!(volume["persistentVolumeClaim"]["claimName"].as_str(), Some(claim));
}

/// The run arguments of the big test: values with spaces, quotes, `$`, JSON and legacy flags.
const RUN: &[&str] = &[
    "-o",
    "-st",
    "8",
    "-et",
    "32",
    "-ts",
    "8",
    "--url",
    "http://vllm.inference.svc:8000/v1",
    "-mtp",
    "say \"hi\": $HOME #not a comment",
    "--extra-body",
    "{\"temperature\": 0}",
    "--rate=2,4",
    "--step-duration",
    "90s",
];

#[test]
fn the_manifest_reads_back_field_by_field() {
    let before = SystemTime::now();
    let mut args = vec![
        "--shards",
        "4",
        "--image",
        IMAGE,
        "--pvc",
        "bench-results",
        "--start-in",
        "90s",
        "--",
    ];
    args.extend(RUN);
    let (stdout, docs) = manifest(&args);
    let after = SystemTime::now();
    let (job, merge) = (&docs[0], &docs[1]);

    assert_eq!(job["apiVersion"].as_str(), Some("batch/v1"));
    assert_eq!(job["kind"].as_str(), Some("Job"));
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"].as_str(), Some("Indexed"));
    assert_eq!(spec["completions"].as_i64(), Some(4));
    assert_eq!(spec["parallelism"].as_i64(), Some(4));
    assert_eq!(spec["backoffLimit"].as_i64(), Some(0));
    assert!(spec["suspend"].is_badvalue(), "the shards' Job is not suspended");
    let id = str_at(&job["metadata"]["name"], "the Job's name").to_string();
    let generated = id.strip_prefix("llm-bench-").expect(&id);
    assert!(
        generated.len() == 15 && generated.chars().enumerate().all(|(i, c)| (i == 8) == (c == '-')),
        "llm-bench-<yyyymmdd-hhmmss>: {id}"
    );
    let labels = &job["metadata"]["labels"];
    assert_eq!(labels["app.kubernetes.io/name"].as_str(), Some("llm-bench"));
    assert_eq!(labels["llm-bench/run-id"].as_str(), Some(id.as_str()));

    let (pod_spec, container) = pod(job);
    assert_eq!(pod_spec["restartPolicy"].as_str(), Some("Never"));
    assert_eq!(container["image"].as_str(), Some(IMAGE));
    assert_eq!(strings(&container["command"]), ["/llm-bench"]);

    // The run arguments unchanged and in order, then the manifest's own.
    let given = strings(&container["args"]);
    assert_eq!(&given[..RUN.len()], RUN);
    let added = &given[RUN.len()..];
    let start_at = added[5].clone();
    let shard_dir = format!("/results/{id}/shard-$(JOB_COMPLETION_INDEX)");
    let log = format!("{shard_dir}/llm-bench.log");
    assert_eq!(
        added,
        [
            "--shards",
            "4",
            "--run-id",
            &id,
            "--start-at",
            &start_at,
            "--out",
            &shard_dir,
            "--log-file",
            &log
        ]
    );
    let start = humantime::parse_rfc3339(&start_at).unwrap_or_else(|e| panic!("{start_at}: {e}"));
    let in_90s = Duration::from_secs(90);
    assert!(
        start + Duration::from_secs(1) >= before + in_90s && start <= after + in_90s,
        "{start_at} is not now + 90s"
    );
    assert!(start_at.ends_with('Z'), "UTC: {start_at}");
    // Both printed in the comments at the top too.
    let header: String = stdout.lines().take_while(|l| l.starts_with('#')).collect();
    assert!(header.contains(&id) && header.contains(&start_at), "{header}");
    assert!(
        header.contains("ReadWriteMany") && header.contains("kubectl wait"),
        "{header}"
    );

    let index = env(container, "JOB_COMPLETION_INDEX").expect("the index variable");
    assert_eq!(index["valueFrom"]["fieldRef"]["fieldPath"].as_str(), Some(INDEX_PATH));
    assert!(env(container, "LLM_BENCH_API_KEY").is_none(), "no Secret asked for");
    let requests = &container["resources"]["requests"];
    assert!(requests["cpu"].as_str().is_some() && requests["memory"].as_str().is_some());
    assert_claim_mounted(job, "bench-results");
    assert_spread(pod_spec, &id);

    assert_eq!(merge["kind"].as_str(), Some("Job"));
    assert_eq!(merge["metadata"]["name"].as_str(), Some(format!("{id}-merge").as_str()));
    assert_eq!(
        merge["metadata"]["labels"]["llm-bench/run-id"].as_str(),
        Some(id.as_str())
    );
    assert_eq!(merge["spec"]["completions"].as_i64(), Some(1));
    assert_eq!(
        merge["spec"]["suspend"].as_bool(),
        Some(true),
        "resumed after the shards"
    );
    let (_, merger) = pod(merge);
    let mut want = vec!["merge".to_string()];
    want.extend((0..4).map(|k| format!("/results/{id}/shard-{k}")));
    want.extend(["--out".to_string(), format!("/results/{id}/merged")]);
    assert_eq!(strings(&merger["args"]), want);
    assert_eq!(strings(&merger["command"]), ["/llm-bench"]);
    assert_claim_mounted(merge, "bench-results");
}

/// Anti-affinity between the run's pods and a spread over host names, both for this run only.
fn assert_spread(pod_spec: &Yaml, id: &str) {
    let preferred = &pod_spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0];
    let term = &preferred["podAffinityTerm"];
    assert_eq!(term["topologyKey"].as_str(), Some("kubernetes.io/hostname"));
    assert_eq!(
        term["labelSelector"]["matchLabels"]["llm-bench/run-id"].as_str(),
        Some(id)
    );
    let spread = &pod_spec["topologySpreadConstraints"][0];
    assert_eq!(spread["topologyKey"].as_str(), Some("kubernetes.io/hostname"));
    assert_eq!(
        spread["labelSelector"]["matchLabels"]["llm-bench/run-id"].as_str(),
        Some(id)
    );
}

#[test]
fn a_named_run_in_a_namespace_reads_its_key_from_a_secret() {
    for (secret, name, key) in [("llm", "llm", "api-key"), ("llm.keys:token_1", "llm.keys", "token_1")] {
        let args = [
            "--shards",
            "2",
            "--image",
            IMAGE,
            "--pvc",
            "results",
            "--name",
            "bench-a",
            "-n",
            "perf",
            "--api-key-secret",
            secret,
            "--",
            "-u",
            "https://api.example.com/v1",
            "-l",
            "/results/a.log",
            "--lang",
            "zh",
        ];
        let (stdout, docs) = manifest(&args);
        for doc in &docs {
            assert_eq!(doc["metadata"]["namespace"].as_str(), Some("perf"));
        }
        assert_eq!(docs[0]["metadata"]["name"].as_str(), Some("bench-a"));
        let (_, container) = pod(&docs[0]);
        let from = &env(container, "LLM_BENCH_API_KEY").expect("the key variable")["valueFrom"]["secretKeyRef"];
        assert_eq!((from["name"].as_str(), from["key"].as_str()), (Some(name), Some(key)));
        let args = strings(&container["args"]);
        assert!(
            !args.contains(&"--log-file".to_string()),
            "the run names its own log: {args:?}"
        );
        assert_eq!(args[args.iter().position(|a| a == "--run-id").unwrap() + 1], "bench-a");
        let (_, merger) = pod(&docs[1]);
        let merge_args = strings(&merger["args"]);
        assert!(merge_args.ends_with(&["--lang".into(), "zh".into()]), "{merge_args:?}");
        assert!(
            stdout.contains("kubectl -n perf wait --for=condition=complete job/bench-a"),
            "{stdout}"
        );
    }
}

/// One line on stderr, exit 2, nothing on stdout; the line contains `expect`.
fn assert_refused(args: &[&str], expect: &str) -> String {
    let out = k8s_job(args);
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{args:?}\nstdout: {stdout}\nstderr: {stderr}"
    );
    assert!(stdout.is_empty(), "{args:?}: printed a manifest:\n{stdout}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{args:?}: expected one line, got:\n{stderr}");
    assert!(lines[0].starts_with("llm-bench: error: "), "{args:?}: {stderr}");
    assert!(lines[0].contains(expect), "{args:?}: expected {expect:?} in:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

const BASE: &[&str] = &["--shards", "2", "--image", IMAGE, "--pvc", "results", "--"];

fn with_run(run: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = BASE.iter().map(|a| a.to_string()).collect();
    args.extend(["-u", "http://vllm:8000/v1"].iter().map(|a| a.to_string()));
    args.extend(run.iter().map(|a| a.to_string()));
    args
}

#[test]
fn a_key_in_the_run_arguments_is_refused_and_never_printed() {
    let header = format!("Authorization: Bearer {KEY}");
    let api_header = format!("X-Api-Key: {KEY}");
    let inline = format!("--api-key={KEY}");
    let env_key = format!("LLM_BENCH_API_KEY={KEY}");
    let openai_key = format!("OPENAI_API_KEY={KEY}");
    for run in [
        vec!["--api-key", KEY],
        vec![inline.as_str()],
        vec!["--api_key", KEY],
        vec!["-H", header.as_str()],
        vec!["--header", api_header.as_str()],
        vec![env_key.as_str()],
        vec![openai_key.as_str()],
    ] {
        let args = with_run(&run);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let stderr = assert_refused(&args, "--api-key-secret");
        assert!(!stderr.contains(KEY), "the key was printed: {stderr}");
    }
    // A header whose value Kubernetes fills in from the Secret is fine.
    let args = with_run(&["-H", "x-api-key: $(LLM_BENCH_API_KEY)"]);
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args.splice(0..0, ["--api-key-secret", "llm"]);
    let (stdout, _) = manifest(&args);
    assert!(stdout.contains("\"x-api-key: $(LLM_BENCH_API_KEY)\""), "{stdout}");
}

#[test]
fn flags_the_manifest_sets_are_refused() {
    for (run, flag) in [
        (&["--shard", "0/2"][..], "--shard"),
        (&["--shards", "2"], "--shards"),
        (&["--run-id", "x"], "--run-id"),
        (&["--start-at", "2026-12-01T12:00:00Z"], "--start-at"),
        (&["--out", "/tmp/x"], "--out"),
        (&["--out=/tmp/x"], "--out"),
    ] {
        let args = with_run(run);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let stderr = assert_refused(&args, flag);
        assert!(stderr.contains("manifest"), "{stderr}");
    }
    // The same words as a flag's value are not flags.
    // (A value that starts with `-` takes `=`, as in any run.)
    let args = with_run(&["-mtp=--out", "--model=--shard"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (_, docs) = manifest(&args);
    let given = strings(&pod(&docs[0]).1["args"]);
    assert_eq!(
        &given[..4],
        ["-u", "http://vllm:8000/v1", "-mtp=--out", "--model=--shard"]
    );
}

#[test]
fn bad_arguments_are_one_line_and_exit_2() {
    let run = ["--", "-u", "http://vllm:8000/v1"];
    let base = |extra: &[&'static str]| -> Vec<&'static str> {
        let mut args = vec!["--shards", "2", "--image", IMAGE, "--pvc", "results"];
        args.extend(extra);
        args.extend(run);
        args
    };
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "--shards",
                "0",
                "--image",
                IMAGE,
                "--pvc",
                "r",
                "--",
                "-u",
                "http://x/v1",
            ],
            "--shards",
        ),
        (
            vec![
                "--shards",
                "two",
                "--image",
                IMAGE,
                "--pvc",
                "r",
                "--",
                "-u",
                "http://x/v1",
            ],
            "--shards",
        ),
        (
            vec!["--shards", "2", "--pvc", "r", "--", "-u", "http://x/v1"],
            "--image",
        ),
        (
            vec!["--shards", "2", "--image", IMAGE, "--", "-u", "http://x/v1"],
            "--pvc",
        ),
        (
            vec!["--image", IMAGE, "--pvc", "r", "--", "-u", "http://x/v1"],
            "--shards",
        ),
        (base(&["--name", "Bench_A"]), "--name"),
        (
            base(&["--name", "a-name-that-goes-on-far-too-long-for-a-job-and-its-pods-x"]),
            "--name",
        ),
        (base(&["-n", "perf_1"]), "--namespace"),
        (base(&["--cpu", "lots"]), "--cpu"),
        (base(&["--memory", "1gb"]), "--memory"),
        (base(&["--api-key-secret", "Keys:"]), "--api-key-secret"),
        (base(&["--start-in", "0s"]), "--start-in"),
        (base(&["--image", "a b"]), "--image"),
        (
            vec![
                "--shards",
                "2",
                "--image",
                IMAGE,
                "--pvc",
                "Results",
                "--",
                "-u",
                "http://x/v1",
            ],
            "--pvc",
        ),
        (
            vec!["--shards", "2", "--image", IMAGE, "--pvc", "r", "--", "-o"],
            "--url",
        ),
        (
            vec![
                "--shards",
                "2",
                "--image",
                IMAGE,
                "--pvc",
                "r",
                "--",
                "-u",
                "http://x/v1",
                "--no-such",
            ],
            "--no-such",
        ),
        (
            vec!["--shards", "2", "--image", IMAGE, "--pvc", "r", "--", "serve"],
            "serve",
        ),
        (
            vec!["--shards", "2", "--image", IMAGE, "--pvc", "r", "-u", "http://x/v1"],
            "-u",
        ),
    ];
    for (args, expect) in cases {
        assert_refused(&args, expect);
    }
}

#[test]
fn lang_zh_writes_the_comments_and_errors_in_chinese() {
    let out = bin()
        .args([
            "k8s-job", "--lang", "zh", "--shards", "2", "--image", IMAGE, "--pvc", "results",
        ])
        .args(["--", "-u", "http://vllm:8000/v1"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("开始时间") && stdout.contains("步骤"), "{stdout}");
    assert!(YamlLoader::load_from_str(&stdout).is_ok());
    let out = bin()
        .args([
            "k8s-job", "--lang", "zh", "--shards", "2", "--image", IMAGE, "--pvc", "results",
        ])
        .args(["--", "-u", "http://vllm:8000/v1", "--out", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("由清单为每个分片设置"), "{}", text(&out).1);
}
