//! `--export FORMAT FILE`: the step results written again in another tool's result format, so
//! that dashboards made for that tool read llm-bench's runs. One kind today, vLLM's
//! `bench serve` (docs/metrics.md, "vLLM export"); a new format is a new [`ExportFormat`].

use super::summary::Summary;
use crate::load::LoadPoint;
use crate::metrics::{Dist, StepStats};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Which tool's result format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    /// vLLM `bench serve --save-result` keys, one JSON object per step on its own line (what
    /// `--append-result` writes for several benchmarks).
    Vllm,
}

impl ExportFormat {
    /// Every format, for the error that lists them.
    pub const ALL: [ExportFormat; 1] = [ExportFormat::Vllm];

    pub fn name(self) -> &'static str {
        match self {
            ExportFormat::Vllm => "vllm",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name().eq_ignore_ascii_case(name))
    }

    /// The file's text for a summary.
    pub fn render(self, summary: &Summary) -> String {
        match self {
            ExportFormat::Vllm => {
                let mut text = String::new();
                for object in vllm_results(summary) {
                    text.push_str(&object.to_string());
                    text.push('\n');
                }
                text
            }
        }
    }
}

/// `--export FORMAT FILE`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Export {
    pub format: ExportFormat,
    pub path: PathBuf,
}

impl Export {
    /// Writes the file (atomically: a temporary file beside it, then renamed). Returns how many
    /// results (steps) it holds.
    pub fn write(&self, summary: &Summary) -> Result<usize, String> {
        let text = self.format.render(summary);
        let cannot = |e: std::io::Error| cannot_write(&self.path, &e);
        let tmp = temp_beside(&self.path);
        std::fs::File::create(&tmp)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .and_then(|()| std::fs::rename(&tmp, &self.path))
            .map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                cannot(e)
            })?;
        Ok(text.lines().count())
    }
}

/// "cannot write PATH: why", in the user's language.
pub(crate) fn cannot_write(path: &Path, e: &dyn std::fmt::Display) -> String {
    crate::i18n::tr(
        crate::i18n::Msg::CannotWrite,
        &[("path", &path.display()), ("error", e)],
    )
}

/// `dir/.name.tmp` for `dir/name`.
fn temp_beside(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

/// One vLLM result object per step (and test), in the summary's order.
pub fn vllm_results(summary: &Summary) -> Vec<Value> {
    let date = vllm_date(&summary.started_at);
    let config = &summary.config;
    let backend = match config.get("api").and_then(Value::as_str) {
        Some("completions") => "openai",
        Some("embeddings") => "openai-embeddings",
        _ => "openai-chat",
    };
    // vLLM's gamma shape: 1 for Poisson arrivals; none for equal gaps or a trace's times.
    let burstiness = match config.pointer("/load/arrival/kind").and_then(Value::as_str) {
        Some("poisson") => json!(1.0),
        Some("gamma") => config
            .pointer("/load/arrival/burstiness")
            .cloned()
            .unwrap_or(Value::Null),
        _ => Value::Null,
    };
    let cap = config.pointer("/load/max_concurrency").cloned().unwrap_or(Value::Null);
    summary
        .steps
        .iter()
        .map(|step| {
            let mut o = Map::new();
            o.insert("date".into(), json!(date));
            o.insert("endpoint_type".into(), json!(backend));
            o.insert("backend".into(), json!(backend));
            o.insert("label".into(), json!("llm-bench"));
            o.insert("model_id".into(), json!(summary.model));
            o.insert("tokenizer_id".into(), Value::Null);
            o.insert("num_prompts".into(), json!(step.requests()));
            let (rate, concurrency) = match step.load {
                LoadPoint::Concurrency(n) => (json!("inf"), json!(n)),
                LoadPoint::Rate(r) => (json!(r), cap.clone()),
            };
            o.insert("request_rate".into(), rate);
            o.insert(
                "burstiness".into(),
                if step.is_open_loop() {
                    burstiness.clone()
                } else {
                    json!(1.0)
                },
            );
            o.insert("max_concurrency".into(), concurrency);
            if step.is_embeddings() {
                embeddings_figures(step, &mut o);
            } else {
                generation_figures(step, &mut o);
            }
            // What the row is in llm-bench's terms; vLLM readers ignore keys they do not know.
            o.insert("llm_bench_test".into(), json!(step.test.name()));
            o.insert("llm_bench_load_kind".into(), json!(step.load.axis()));
            o.insert("llm_bench_load_value".into(), json!(step.load.value()));
            o.insert("llm_bench_measured_over".into(), json!(step.measured_over));
            o.insert("llm_bench_version".into(), json!(summary.environment.tool_version));
            Value::Object(o)
        })
        .collect()
}

fn generation_figures(step: &StepStats, o: &mut Map<String, Value>) {
    o.insert("duration".into(), json!(step.duration_s));
    o.insert("completed".into(), json!(step.requests_ok));
    o.insert("failed".into(), json!(step.requests_failed));
    o.insert("total_input_tokens".into(), json!(step.prompt_tokens));
    o.insert("total_output_tokens".into(), json!(step.output_tokens));
    o.insert("request_throughput".into(), json!(step.request_throughput_rps));
    o.insert("request_goodput".into(), json!(step.goodput_rps));
    o.insert("output_throughput".into(), json!(step.output_throughput_tps));
    o.insert(
        "total_token_throughput".into(),
        json!(step.prompt_throughput_tps + step.output_throughput_tps),
    );
    o.insert("max_concurrent_requests".into(), json!(step.max_in_flight));
    for (name, dist) in [
        ("ttft", &step.ttft_ms),
        ("tpot", &step.tpot_ms),
        ("itl", &step.itl_ms),
        ("e2el", &step.e2e_ms),
    ] {
        latency(name, dist.as_ref(), o);
    }
}

fn embeddings_figures(step: &StepStats, o: &mut Map<String, Value>) {
    o.insert("duration".into(), json!(step.duration_s));
    o.insert("completed".into(), json!(step.requests_ok));
    o.insert("failed".into(), json!(step.requests_failed));
    o.insert("total_input_tokens".into(), json!(step.prompt_tokens));
    o.insert("total_input_sequences".into(), json!(step.inputs));
    o.insert("request_throughput".into(), json!(step.requests_per_s));
    o.insert("input_sequence_throughput".into(), json!(step.inputs_per_s));
    o.insert("total_token_throughput".into(), json!(step.input_tokens_per_s));
    latency("e2el", step.e2e_ms.as_ref(), o);
}

/// `mean_X_ms`, `median_X_ms`, `std_X_ms`, `p90_X_ms`, `p99_X_ms` (vLLM writes 0 where it has
/// no value; so do we, so that a dashboard's columns stay numbers).
fn latency(name: &str, dist: Option<&Dist>, o: &mut Map<String, Value>) {
    let d = dist.copied().unwrap_or_default();
    for (key, value) in [
        ("mean", d.mean),
        ("median", d.p50),
        ("std", d.std),
        ("p90", d.p90),
        ("p99", d.p99),
    ] {
        o.insert(format!("{key}_{name}_ms"), json!(value));
    }
}

/// vLLM's `date`, `%Y%m%d-%H%M%S`, from the run's start (RFC 3339, UTC).
fn vllm_date(started_at: &str) -> String {
    let digits: String = started_at.chars().take(19).filter(char::is_ascii_digit).collect();
    if digits.len() == 14 {
        format!("{}-{}", &digits[..8], &digits[8..])
    } else {
        started_at.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::TestKind;

    fn dist(mean: f64) -> Option<Dist> {
        Some(Dist {
            count: 10,
            mean,
            std: mean / 10.0,
            p50: mean,
            p90: mean * 1.5,
            p99: mean * 2.0,
            min: 0.0,
            max: mean * 3.0,
        })
    }

    fn summary() -> Summary {
        let step = |load, test| StepStats {
            test,
            load,
            measured_over: "batch".into(),
            requests_ok: 9,
            requests_failed: 1,
            duration_s: 2.0,
            prompt_tokens: 900,
            output_tokens: 180,
            prompt_throughput_tps: 450.0,
            output_throughput_tps: 90.0,
            request_throughput_rps: 4.5,
            ttft_ms: dist(100.0),
            tpot_ms: dist(10.0),
            itl_ms: dist(9.0),
            e2e_ms: dist(300.0),
            max_in_flight: 4,
            ..StepStats::default()
        };
        Summary {
            started_at: "2026-12-02T01:15:14Z".into(),
            model: Some("m<1>".into()),
            config: json!({"api": "chat", "load": {"arrival": {"kind": "poisson"}, "max_concurrency": 8}}),
            steps: vec![
                step(LoadPoint::Concurrency(4), TestKind::Output),
                step(LoadPoint::Rate(2.5), TestKind::Input),
            ],
            ..Summary::default()
        }
    }

    #[test]
    fn each_step_becomes_one_vllm_result_line() {
        let text = ExportFormat::Vllm.render(&summary());
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        let closed = &lines[0];
        for (key, value) in [
            ("date", json!("20261202-011514")),
            ("backend", json!("openai-chat")),
            ("model_id", json!("m<1>")),
            ("request_rate", json!("inf")),
            ("max_concurrency", json!(4)),
            ("completed", json!(9)),
            ("failed", json!(1)),
            ("num_prompts", json!(10)),
            ("duration", json!(2.0)),
            ("total_input_tokens", json!(900)),
            ("total_output_tokens", json!(180)),
            ("request_throughput", json!(4.5)),
            ("output_throughput", json!(90.0)),
            ("total_token_throughput", json!(540.0)),
            ("request_goodput", Value::Null),
            ("mean_ttft_ms", json!(100.0)),
            ("median_ttft_ms", json!(100.0)),
            ("std_ttft_ms", json!(10.0)),
            ("p99_ttft_ms", json!(200.0)),
            ("p99_tpot_ms", json!(20.0)),
            ("mean_itl_ms", json!(9.0)),
            ("p90_e2el_ms", json!(450.0)),
            ("max_concurrent_requests", json!(4)),
            ("llm_bench_test", json!("output")),
        ] {
            assert_eq!(closed[key], value, "{key}");
        }
        let open = &lines[1];
        assert_eq!(
            (&open["request_rate"], &open["max_concurrency"], &open["burstiness"]),
            (&json!(2.5), &json!(8), &json!(1.0))
        );
        assert_eq!(open["llm_bench_load_kind"], "rate");
    }

    #[test]
    fn embeddings_and_missing_figures() {
        let mut s = summary();
        s.steps.truncate(1);
        s.steps[0].inputs = Some(40);
        s.steps[0].inputs_per_s = Some(20.0);
        s.steps[0].requests_per_s = Some(4.5);
        s.steps[0].input_tokens_per_s = Some(450.0);
        let o = &vllm_results(&s)[0];
        assert_eq!(o["total_input_sequences"], 40);
        assert_eq!(o["input_sequence_throughput"], 20.0);
        assert!(o.get("mean_ttft_ms").is_none() && o.get("mean_e2el_ms").is_some());
        s.steps[0] = StepStats::default();
        let o = &vllm_results(&s)[0];
        assert_eq!(o["p99_ttft_ms"], 0.0, "no value: 0, as vLLM writes");
    }

    #[test]
    fn formats_by_name_and_atomic_write() {
        assert_eq!(ExportFormat::parse("VLLM"), Some(ExportFormat::Vllm));
        assert_eq!(ExportFormat::parse("guidellm"), None);
        let dir = tempfile::tempdir().unwrap();
        let export = Export {
            format: ExportFormat::Vllm,
            path: dir.path().join("vllm.jsonl"),
        };
        assert_eq!(export.write(&summary()), Ok(2));
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["vllm.jsonl"]);
        let missing = Export {
            path: dir.path().join("no/such/folder/x.jsonl"),
            ..export
        };
        assert!(missing.write(&summary()).is_err());
    }
}
