//! The two Job documents and the comments above them.

use super::yaml::{self, map, quoted_list, s, Node};
use super::{Plan, BINARY, INDEX_ENV, KEY_ENV, RESULTS};
use crate::i18n::{tr, Msg};

/// Kubernetes deletes a finished Job (and its pods' logs) after this: a week.
const TTL_SECONDS: i64 = 7 * 24 * 3600;
/// The user and group of the Containerfile's `USER` (distroless' "nonroot").
const UID: i64 = 65532;
/// SIGTERM lets a run drain (--drain-timeout, 30 s by default) and write its summary.
const GRACE_SECONDS: i64 = 60;
const VOLUME: &str = "results";

pub(super) fn render(plan: &Plan) -> String {
    let mut out = header(plan);
    out.push_str(&comment(&tr(Msg::K8sShardJobNote, &[])));
    out.push_str(&yaml::document(&shard_job(plan)));
    out.push_str(&comment(&tr(Msg::K8sMergeJobNote, &[])));
    out.push_str(&yaml::document(&merge_job(plan)));
    out
}

fn comment(line: &str) -> String {
    format!("# {line}\n")
}

/// The run id, the start time, where results go and the commands, filled in.
fn header(plan: &Plan) -> String {
    let spec = plan.spec;
    let kubectl = match &spec.namespace {
        Some(ns) => format!("kubectl -n {ns}"),
        None => "kubectl".to_string(),
    };
    let dir = plan.run_dir();
    let id = &plan.id;
    let steps = [
        (Msg::K8sStepApply, format!("{kubectl} apply -f job.yaml")),
        (
            Msg::K8sStepWait,
            format!("{kubectl} wait --for=condition=complete job/{id} --timeout=24h"),
        ),
        (
            Msg::K8sStepMerge,
            format!(r#"{kubectl} patch job/{id}-merge --type=merge -p '{{"spec":{{"suspend":false}}}}'"#),
        ),
        (
            Msg::K8sStepMergeWait,
            format!("{kubectl} wait --for=condition=complete job/{id}-merge --timeout=30m"),
        ),
    ];
    let start_in = humantime::format_duration(spec.start_in).to_string();
    let mut lines = vec![
        tr(
            Msg::K8sHeader,
            &[("id", id), ("shards", &spec.shards), ("image", &spec.image)],
        ),
        tr(Msg::K8sHeaderRunId, &[("id", id)]),
        tr(
            Msg::K8sHeaderStartAt,
            &[("at", &plan.start_at), ("start_in", &start_in)],
        ),
        tr(
            Msg::K8sHeaderClaim,
            &[("claim", &spec.pvc), ("dir", &dir), ("last", &(spec.shards - 1))],
        ),
        tr(Msg::K8sHeaderSteps, &[]),
    ];
    for (msg, command) in steps {
        lines.push(format!("  {}", tr(msg, &[("command", &command)])));
    }
    lines.push(format!(
        "  {}",
        tr(Msg::K8sStepCopy, &[("dir", &format!("{dir}/merged"))])
    ));
    lines.iter().map(|l| comment(l)).collect()
}

/// `--out /results/ID/shard-$(JOB_COMPLETION_INDEX)`: Kubernetes fills in the index.
fn shard_args(plan: &Plan) -> Vec<String> {
    let spec = plan.spec;
    let shard_dir = format!("{}/shard-$({INDEX_ENV})", plan.run_dir());
    let mut args = spec.run_args.clone();
    args.extend([
        "--shards".to_string(),
        spec.shards.to_string(),
        "--run-id".to_string(),
        plan.id.clone(),
        "--start-at".to_string(),
        plan.start_at.clone(),
        "--out".to_string(),
        shard_dir.clone(),
    ]);
    if !spec.has_log_file {
        args.extend(["--log-file".to_string(), format!("{shard_dir}/llm-bench.log")]);
    }
    args
}

/// `merge /results/ID/shard-0 … shard-(N-1) --out /results/ID/merged`.
fn merge_args(plan: &Plan) -> Vec<String> {
    let dir = plan.run_dir();
    let mut args = vec!["merge".to_string()];
    args.extend((0..plan.spec.shards).map(|k| format!("{dir}/shard-{k}")));
    args.extend(["--out".to_string(), format!("{dir}/merged")]);
    if let Some(lang) = &plan.spec.lang {
        args.extend(["--lang".to_string(), lang.clone()]);
    }
    args
}

fn shard_job(plan: &Plan) -> Node {
    let n = i64::from(plan.spec.shards);
    let spec = vec![
        ("completionMode", s("Indexed")),
        ("completions", Node::Int(n)),
        ("parallelism", Node::Int(n)),
        // A failed shard fails the run: it is not run again behind the others' backs.
        ("backoffLimit", Node::Int(0)),
        ("ttlSecondsAfterFinished", Node::Int(TTL_SECONDS)),
    ];
    let mut env = vec![map([
        ("name", s(INDEX_ENV)),
        (
            "valueFrom",
            map([(
                "fieldRef",
                map([(
                    "fieldPath",
                    s("metadata.annotations['batch.kubernetes.io/job-completion-index']"),
                )]),
            )]),
        ),
    ])];
    if let Some((name, key)) = &plan.secret {
        env.push(map([
            ("name", s(KEY_ENV)),
            (
                "valueFrom",
                map([(
                    "secretKeyRef",
                    map([("name", s(name.as_str())), ("key", s(key.as_str()))]),
                )]),
            ),
        ]));
    }
    let container = container(plan, "shard", shard_args(plan), env);
    job(
        plan,
        plan.id.clone(),
        "shard",
        spec,
        pod_template(plan, "shard", container),
    )
}

fn merge_job(plan: &Plan) -> Node {
    let spec = vec![
        // Resumed by hand once the shards' Job is complete (the header's step 3).
        ("suspend", Node::Bool(true)),
        ("completions", Node::Int(1)),
        ("parallelism", Node::Int(1)),
        ("backoffLimit", Node::Int(0)),
        ("ttlSecondsAfterFinished", Node::Int(TTL_SECONDS)),
    ];
    let container = container(plan, "merge", merge_args(plan), Vec::new());
    let name = format!("{}-merge", plan.id);
    job(plan, name, "merge", spec, pod_template(plan, "merge", container))
}

fn labels(plan: &Plan, component: &str) -> Node {
    map([
        ("app.kubernetes.io/name", s("llm-bench")),
        ("app.kubernetes.io/component", s(component)),
        ("llm-bench/run-id", s(plan.id.as_str())),
    ])
}

fn job(plan: &Plan, name: String, component: &str, mut spec: Vec<(&str, Node)>, template: Node) -> Node {
    let mut metadata = vec![("name", s(name))];
    if let Some(ns) = &plan.spec.namespace {
        metadata.push(("namespace", s(ns.as_str())));
    }
    metadata.push(("labels", labels(plan, component)));
    spec.push(("template", template));
    map([
        ("apiVersion", s("batch/v1")),
        ("kind", s("Job")),
        ("metadata", map(metadata)),
        ("spec", map(spec)),
    ])
}

fn pod_template(plan: &Plan, component: &str, container: Node) -> Node {
    let mut spec = vec![
        ("restartPolicy", s("Never")),
        ("terminationGracePeriodSeconds", Node::Int(GRACE_SECONDS)),
        // The run talks to the model server only: no API token, no service variables.
        ("automountServiceAccountToken", Node::Bool(false)),
        ("enableServiceLinks", Node::Bool(false)),
        (
            "securityContext",
            map([
                ("runAsNonRoot", Node::Bool(true)),
                ("runAsUser", Node::Int(UID)),
                ("runAsGroup", Node::Int(UID)),
                ("fsGroup", Node::Int(UID)),
                ("seccompProfile", map([("type", s("RuntimeDefault"))])),
            ]),
        ),
    ];
    if component == "shard" {
        spec.extend(spread(plan));
    }
    spec.push(("containers", Node::List(vec![container])));
    spec.push((
        "volumes",
        Node::List(vec![map([
            ("name", s(VOLUME)),
            ("persistentVolumeClaim", map([("claimName", s(plan.spec.pvc.as_str()))])),
        ])]),
    ));
    map([
        ("metadata", map([("labels", labels(plan, component))])),
        ("spec", map(spec)),
    ])
}

/// The shards on as many nodes as there are (preferred, not required: a small cluster still
/// runs them): anti-affinity between pods of the run, and an even spread over host names.
fn spread(plan: &Plan) -> Vec<(&'static str, Node)> {
    let selector = || map([("matchLabels", labels(plan, "shard"))]);
    let hostname = || s("kubernetes.io/hostname");
    let anti_affinity = map([(
        "podAntiAffinity",
        map([(
            "preferredDuringSchedulingIgnoredDuringExecution",
            Node::List(vec![map([
                ("weight", Node::Int(100)),
                (
                    "podAffinityTerm",
                    map([("topologyKey", hostname()), ("labelSelector", selector())]),
                ),
            ])]),
        )]),
    )]);
    let spread = Node::List(vec![map([
        ("maxSkew", Node::Int(1)),
        ("topologyKey", hostname()),
        ("whenUnsatisfiable", s("ScheduleAnyway")),
        ("labelSelector", selector()),
    ])]);
    vec![("affinity", anti_affinity), ("topologySpreadConstraints", spread)]
}

fn container(plan: &Plan, name: &str, args: Vec<String>, env: Vec<Node>) -> Node {
    let spec = plan.spec;
    let mut fields = vec![
        ("name", s(name)),
        ("image", s(spec.image.as_str())),
        ("command", quoted_list(&[BINARY.to_string()])),
        ("args", quoted_list(&args)),
        // Relative paths in the run arguments land on the claim, not on the read-only image.
        ("workingDir", s(RESULTS)),
    ];
    if !env.is_empty() {
        fields.push(("env", Node::List(env)));
    }
    fields.extend([
        // Requests only: a CPU limit would throttle the client and show up as server latency.
        (
            "resources",
            map([(
                "requests",
                map([("cpu", s(spec.cpu.as_str())), ("memory", s(spec.memory.as_str()))]),
            )]),
        ),
        (
            "securityContext",
            map([
                ("allowPrivilegeEscalation", Node::Bool(false)),
                ("readOnlyRootFilesystem", Node::Bool(true)),
                ("capabilities", map([("drop", Node::List(vec![s("ALL")]))])),
            ]),
        ),
        (
            "volumeMounts",
            Node::List(vec![map([("name", s(VOLUME)), ("mountPath", s(RESULTS))])]),
        ),
    ]);
    map(fields)
}
