//! What llama-server has beyond the OpenAI API: the `timings` object of its streams, GET /props,
//! and the Prometheus counters of GET /metrics (served in both flavors, under llama-server's
//! names, so that a client's token totals can be checked against a server's own).

use super::stats::SimStats;

/// The server's own account of one generation, as llama-server reports it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Timings {
    /// Prompt tokens reused from the cache.
    pub cache_n: u64,
    pub prompt_n: u64,
    /// Request received → first content chunk handed to the connection.
    pub prompt_ms: f64,
    pub predicted_n: u64,
    /// First → last content chunk handed to the connection.
    pub predicted_ms: f64,
}

impl Timings {
    /// llama.cpp divides every token by the generation time, the first included.
    pub fn json(&self) -> String {
        let per_second = |n: u64, ms: f64| if ms > 0.0 { 1000.0 * n as f64 / ms } else { 0.0 };
        let per_token = |n: u64, ms: f64| if n > 0 { ms / n as f64 } else { 0.0 };
        serde_json::json!({
            "cache_n": self.cache_n,
            "prompt_n": self.prompt_n,
            "prompt_ms": self.prompt_ms,
            "prompt_per_token_ms": per_token(self.prompt_n, self.prompt_ms),
            "prompt_per_second": per_second(self.prompt_n, self.prompt_ms),
            "predicted_n": self.predicted_n,
            "predicted_ms": self.predicted_ms,
            "predicted_per_token_ms": per_token(self.predicted_n, self.predicted_ms),
            "predicted_per_second": per_second(self.predicted_n, self.predicted_ms),
        })
        .to_string()
    }
}

/// GET /props: the fields clients look at (slots, model, whether images are understood).
pub(crate) fn props(model: &str, total_slots: usize, vision: bool) -> String {
    serde_json::json!({
        "default_generation_settings": { "n_ctx": 0 },
        "total_slots": total_slots,
        "model_path": model,
        "model_alias": model,
        "modalities": { "vision": vision, "video": false, "audio": false },
        "build_info": "b1-llm-bench-sim",
        "endpoint_metrics": true,
        "endpoint_slots": false,
    })
    .to_string()
}

/// GET /metrics in Prometheus text format. Like the rest of the simulator's counters, these
/// leave llm-bench's pre-flight requests out.
pub(crate) fn metrics(stats: &SimStats) -> String {
    let mut text = String::new();
    let mut add = |name: &str, kind: &str, help: &str, value: u64| {
        text.push_str(&format!(
            "# HELP llamacpp:{name} {help}\n# TYPE llamacpp:{name} {kind}\nllamacpp:{name} {value}\n"
        ));
    };
    add(
        "prompt_tokens_total",
        "counter",
        "Number of prompt tokens processed.",
        stats.prompt_tokens_total,
    );
    add(
        "tokens_predicted_total",
        "counter",
        "Number of generation tokens processed.",
        stats.output_tokens_total,
    );
    add(
        "requests_processing",
        "gauge",
        "Number of requests processing.",
        stats.in_flight,
    );
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn timings_are_consistent() {
        let t = Timings {
            cache_n: 0,
            prompt_n: 100,
            prompt_ms: 50.0,
            predicted_n: 11,
            predicted_ms: 100.0,
        };
        let v: Value = serde_json::from_str(&t.json()).unwrap();
        assert_eq!(v["prompt_per_second"], 2000.0);
        assert_eq!(v["predicted_per_second"], 110.0);
        assert_eq!(v["prompt_n"], 100);
    }

    #[test]
    fn metrics_text() {
        let stats = SimStats {
            prompt_tokens_total: 12,
            output_tokens_total: 34,
            ..SimStats::default()
        };
        let text = metrics(&stats);
        assert!(text.contains("\nllamacpp:prompt_tokens_total 12\n"), "{text}");
        assert!(text.contains("\nllamacpp:tokens_predicted_total 34\n"), "{text}");
        assert!(text.contains("# TYPE llamacpp:tokens_predicted_total counter"));
    }
}
