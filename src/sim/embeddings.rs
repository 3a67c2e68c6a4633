//! `POST /v1/embeddings`: validates the model and the input (a string, an array of strings, a
//! token array or an array of token arrays), waits as long as prefilling the input tokens
//! takes at the simulator's prefill rate, and answers with one JSON document of small
//! vectors. Not streamed, never batched with generation, and free of injected faults.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use serde::Deserialize;
use serde_json::Value;

use super::chunks::Endpoint;
use super::config::{Flavor, SimConfig};
use super::request;
use super::stats::Stats;

/// Numbers in each simulated embedding.
pub(crate) const EMBEDDING_DIM: usize = 8;

/// What the embeddings endpoint needs from the simulator's configuration.
pub(crate) struct Embeddings {
    model: String,
    flavor: Flavor,
    prefill_us_per_token: f64,
    no_usage: bool,
    stats: Arc<Stats>,
}

#[derive(Deserialize)]
struct RawEmbeddingsRequest {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    input: Option<Value>,
}

impl Embeddings {
    pub fn new(config: &SimConfig, stats: Arc<Stats>) -> Self {
        Self {
            model: config.model.clone(),
            flavor: config.flavor,
            prefill_us_per_token: config.prefill_us_per_token,
            no_usage: config.no_usage,
            stats,
        }
    }

    /// The answer to one request body, or its error status and message. `counted`: the request
    /// counts in the simulator's totals (llm-bench's pre-flight requests do not).
    pub async fn answer(&self, body: &[u8], counted: bool) -> Result<String, (StatusCode, String)> {
        let bad = |message: String| (StatusCode::BAD_REQUEST, message);
        let raw: RawEmbeddingsRequest =
            serde_json::from_slice(body).map_err(|e| bad(format!("invalid JSON body: {e}")))?;
        if let (Some(model), Flavor::Openai) = (raw.model.as_deref(), self.flavor) {
            if model != self.model {
                return Err((StatusCode::NOT_FOUND, format!("The model `{model}` does not exist.")));
            }
        }
        let input = raw.input.ok_or_else(|| bad("`input` is required".into()))?;
        let items = input_items(&input).map_err(|e| bad(format!("input: {e}")))?;
        let tokens = input_tokens(&input)?;
        let prefill = Duration::from_secs_f64(tokens as f64 * self.prefill_us_per_token / 1e6);
        tokio::time::sleep(prefill).await;
        if counted {
            self.stats.add_prompt_tokens(tokens);
            self.stats.count_completed();
        }
        Ok(self.body(items, tokens))
    }

    fn body(&self, items: usize, tokens: u64) -> String {
        let vector: Vec<String> = (0..EMBEDDING_DIM)
            .map(|i| format!("{:.4}", (i as f64 + 1.0) / EMBEDDING_DIM as f64))
            .collect();
        let vector = vector.join(",");
        let data: Vec<String> = (0..items)
            .map(|i| format!(r#"{{"object":"embedding","index":{i},"embedding":[{vector}]}}"#))
            .collect();
        let usage = match self.no_usage {
            true => String::new(),
            false => format!(r#","usage":{{"prompt_tokens":{tokens},"total_tokens":{tokens}}}"#),
        };
        format!(
            r#"{{"object":"list","data":[{}],"model":{}{usage}}}"#,
            data.join(","),
            serde_json::to_string(&self.model).unwrap_or_else(|_| "\"\"".into())
        )
    }
}

/// How many embeddings `input` asks for: one for a string or a token array, one per element
/// of an array of strings or of token arrays.
fn input_items(input: &Value) -> Result<usize, &'static str> {
    match input {
        Value::String(_) => Ok(1),
        Value::Array(items) if items.is_empty() => Err("must not be empty"),
        Value::Array(items) if items.iter().all(Value::is_string) => Ok(items.len()),
        Value::Array(items) if items.iter().all(Value::is_u64) => Ok(1),
        Value::Array(items)
            if items
                .iter()
                .all(|i| i.as_array().is_some_and(|t| t.iter().all(Value::is_u64))) =>
        {
            Ok(items.len())
        }
        _ => Err("must be a string, an array of strings, a token array or an array of token arrays"),
    }
}

/// The input's tokens, counted as a completions prompt of the same shape is.
fn input_tokens(input: &Value) -> Result<u64, (StatusCode, String)> {
    let as_prompt = serde_json::json!({ "prompt": input });
    let body = serde_json::to_vec(&as_prompt).map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))?;
    request::parse(Endpoint::Completions, &body)
        .map(|parsed| parsed.prompt_tokens)
        .map_err(|e| (StatusCode::BAD_REQUEST, e.replacen("prompt", "input", 1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sim() -> Embeddings {
        Embeddings::new(
            &SimConfig {
                prefill_us_per_token: 0.0,
                ..SimConfig::default()
            },
            Stats::new(),
        )
    }

    #[tokio::test]
    async fn answers_one_embedding_per_input() {
        let sim = sim();
        let model = SimConfig::default().model;
        for (input, items) in [
            (serde_json::json!("hello there"), 1),
            (serde_json::json!(["a", "bb", "ccc"]), 3),
            (serde_json::json!([1, 2, 3]), 1),
            (serde_json::json!([[1, 2], [3]]), 2),
        ] {
            let body = serde_json::json!({"model": model, "input": input}).to_string();
            let answer: Value = serde_json::from_str(&sim.answer(body.as_bytes(), true).await.unwrap()).unwrap();
            let data = answer["data"].as_array().unwrap();
            assert_eq!(data.len(), items, "{input}");
            assert_eq!(data[items - 1]["index"], items - 1);
            assert_eq!(data[0]["embedding"].as_array().unwrap().len(), EMBEDDING_DIM);
            assert!(answer["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
            assert_eq!(answer["usage"]["prompt_tokens"], answer["usage"]["total_tokens"]);
        }
    }

    #[tokio::test]
    async fn refuses_bad_requests() {
        let sim = sim();
        for (body, status) in [
            ("{", StatusCode::BAD_REQUEST),
            (r#"{"model":"nope","input":"x"}"#, StatusCode::NOT_FOUND),
            (r#"{"input":[]}"#, StatusCode::BAD_REQUEST),
            (r#"{"input":[1,"a"]}"#, StatusCode::BAD_REQUEST),
            (r#"{"input":{"a":1}}"#, StatusCode::BAD_REQUEST),
            (r#"{}"#, StatusCode::BAD_REQUEST),
        ] {
            let (got, message) = sim.answer(body.as_bytes(), true).await.unwrap_err();
            assert_eq!(got, status, "{body}: {message}");
        }
    }
}
