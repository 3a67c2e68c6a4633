//! What llama-server has beyond the OpenAI API: the `timings` object of its streams and GET
//! /props. (Its GET /metrics families are in [`super::metrics`].)

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
}
