//! Pre-formatted response bytes.
//!
//! With thousands of concurrent streams, building a JSON tree per token would
//! dominate the simulator's CPU time and distort the very latencies it is
//! meant to produce. Every chunk that does not depend on the request is
//! therefore formatted once at start-up and shared as a refcounted `Bytes`;
//! ids are fixed ("chatcmpl-sim", "cmpl-sim") so the bytes can be shared.
//! Only per-request pieces (a short final chunk, the usage chunk, non-stream
//! bodies) are formatted per request, once.

use bytes::Bytes;

/// Terminates every SSE stream.
pub(crate) const DONE: Bytes = Bytes::from_static(b"data: [DONE]\n\n");
/// The chunk injected by `--fault-malformed-rate`.
pub(crate) const MALFORMED: Bytes = Bytes::from_static(b"data: {not json\n\n");

/// The two generation endpoints, which differ only in their JSON shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Chat,
    Completions,
}

impl Endpoint {
    fn id(self) -> &'static str {
        match self {
            Endpoint::Chat => "chatcmpl-sim",
            Endpoint::Completions => "cmpl-sim",
        }
    }

    fn chunk_object(self) -> &'static str {
        match self {
            Endpoint::Chat => "chat.completion.chunk",
            Endpoint::Completions => "text_completion",
        }
    }
}

/// The text the simulator "generates": one word per token.
const WORD: &str = "tok ";

/// All shared bytes for both endpoints.
pub(crate) struct Chunks {
    chat: EndpointChunks,
    completions: EndpointChunks,
    /// The body of GET /v1/models.
    pub models: Bytes,
}

impl Chunks {
    pub fn new(model: &str, tokens_per_chunk: u64, role_chunk: bool) -> Self {
        let model_json = json_string(model);
        let models = format!(
            r#"{{"object":"list","data":[{{"id":{model_json},"object":"model","created":0,"owned_by":"llm-bench"}}]}}"#
        );
        Self {
            chat: EndpointChunks::new(Endpoint::Chat, &model_json, tokens_per_chunk, role_chunk),
            completions: EndpointChunks::new(Endpoint::Completions, &model_json, tokens_per_chunk, false),
            models: Bytes::from(models),
        }
    }

    pub fn get(&self, endpoint: Endpoint) -> &EndpointChunks {
        match endpoint {
            Endpoint::Chat => &self.chat,
            Endpoint::Completions => &self.completions,
        }
    }
}

/// The bytes for one endpoint.
pub(crate) struct EndpointChunks {
    endpoint: Endpoint,
    /// The model name, already JSON-escaped and quoted.
    model_json: String,
    tokens_per_chunk: u64,
    /// Chat only: `{"delta":{"role":"assistant","content":""}}`.
    pub role: Option<Bytes>,
    /// A full chunk of `tokens_per_chunk` tokens that is not the last.
    content: Bytes,
    /// A full chunk of `tokens_per_chunk` tokens with `finish_reason: "length"`.
    last_full: Bytes,
}

impl EndpointChunks {
    fn new(endpoint: Endpoint, model_json: &str, tokens_per_chunk: u64, role_chunk: bool) -> Self {
        let mut this = Self {
            endpoint,
            model_json: model_json.to_string(),
            tokens_per_chunk,
            role: None,
            content: Bytes::new(),
            last_full: Bytes::new(),
        };
        this.content = Bytes::from(this.format_chunk(tokens_per_chunk, false));
        this.last_full = Bytes::from(this.format_chunk(tokens_per_chunk, true));
        if role_chunk && endpoint == Endpoint::Chat {
            let role = format!(
                r#"data: {{"id":"chatcmpl-sim","object":"chat.completion.chunk","created":0,"model":{},"choices":[{{"index":0,"delta":{{"role":"assistant","content":""}},"finish_reason":null}}]}}"#,
                this.model_json
            );
            this.role = Some(Bytes::from(role + "\n\n"));
        }
        this
    }

    /// Number of content chunks needed to carry `output_tokens`.
    pub fn chunk_count(&self, output_tokens: u64) -> u64 {
        output_tokens.div_ceil(self.tokens_per_chunk)
    }

    /// Tokens carried by the first `chunks` content chunks of a response of
    /// `output_tokens` tokens.
    pub fn tokens_in(&self, chunks: u64, output_tokens: u64) -> u64 {
        chunks.saturating_mul(self.tokens_per_chunk).min(output_tokens)
    }

    /// The content chunk at `index` (0-based) of a response of
    /// `output_tokens` tokens. Only the last one is ever formatted here, and
    /// only when it is shorter than a full chunk.
    pub fn content(&self, index: u64, output_tokens: u64) -> Bytes {
        let total = self.chunk_count(output_tokens);
        if index + 1 < total {
            return self.content.clone();
        }
        let remainder = output_tokens - self.tokens_in(index, output_tokens);
        if remainder == self.tokens_per_chunk {
            self.last_full.clone()
        } else {
            Bytes::from(self.format_chunk(remainder, true))
        }
    }

    /// The final usage chunk (`choices: []`), sent before `[DONE]`.
    pub fn usage_chunk(&self, prompt_tokens: u64, completion_tokens: u64) -> Bytes {
        let usage = usage_json(prompt_tokens, completion_tokens);
        Bytes::from(
            format!(
                r#"data: {{"id":"{}","object":"{}","created":0,"model":{},"choices":[],"usage":{usage}}}"#,
                self.endpoint.id(),
                self.endpoint.chunk_object(),
                self.model_json,
            ) + "\n\n",
        )
    }

    /// The whole non-streamed response body.
    pub fn full_response(&self, output_tokens: u64, usage: Option<(u64, u64)>) -> Bytes {
        let text = json_string(&repeat_word(output_tokens));
        let usage = match usage {
            Some((prompt, completion)) => format!(r#","usage":{}"#, usage_json(prompt, completion)),
            None => String::new(),
        };
        let (object, choice) = match self.endpoint {
            Endpoint::Chat => (
                "chat.completion",
                format!(r#"{{"index":0,"message":{{"role":"assistant","content":{text}}},"finish_reason":"length"}}"#),
            ),
            Endpoint::Completions => (
                "text_completion",
                format!(r#"{{"index":0,"text":{text},"finish_reason":"length"}}"#),
            ),
        };
        Bytes::from(format!(
            r#"{{"id":"{}","object":"{object}","created":0,"model":{},"choices":[{choice}]{usage}}}"#,
            self.endpoint.id(),
            self.model_json,
        ))
    }

    fn format_chunk(&self, tokens: u64, last: bool) -> String {
        let text = json_string(&repeat_word(tokens));
        let finish = if last { r#""length""# } else { "null" };
        let choice = match self.endpoint {
            Endpoint::Chat => {
                format!(r#"{{"index":0,"delta":{{"content":{text}}},"finish_reason":{finish}}}"#)
            }
            Endpoint::Completions => {
                format!(r#"{{"index":0,"text":{text},"finish_reason":{finish}}}"#)
            }
        };
        format!(
            r#"data: {{"id":"{}","object":"{}","created":0,"model":{},"choices":[{choice}]}}"#,
            self.endpoint.id(),
            self.endpoint.chunk_object(),
            self.model_json,
        ) + "\n\n"
    }
}

fn usage_json(prompt: u64, completion: u64) -> String {
    format!(
        r#"{{"prompt_tokens":{prompt},"completion_tokens":{completion},"total_tokens":{}}}"#,
        prompt.saturating_add(completion)
    )
}

fn repeat_word(tokens: u64) -> String {
    WORD.repeat(usize::try_from(tokens).unwrap_or(usize::MAX / WORD.len()))
}

/// `s` as a quoted, escaped JSON string.
fn json_string(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn parse_sse(b: &Bytes) -> Value {
        let s = std::str::from_utf8(b).unwrap();
        let json = s.strip_prefix("data: ").unwrap().strip_suffix("\n\n").unwrap();
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn chunks_are_valid_json_with_escaped_model() {
        let chunks = Chunks::new("we\"ird", 3, true);
        let chat = chunks.get(Endpoint::Chat);
        let role = parse_sse(chat.role.as_ref().unwrap());
        assert_eq!(role["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(role["model"], "we\"ird");
        // 7 tokens in chunks of 3: 3, 3, 1.
        assert_eq!(chat.chunk_count(7), 3);
        let first = parse_sse(&chat.content(0, 7));
        assert_eq!(first["choices"][0]["delta"]["content"], "tok tok tok ");
        assert!(first["choices"][0]["finish_reason"].is_null());
        let last = parse_sse(&chat.content(2, 7));
        assert_eq!(last["choices"][0]["delta"]["content"], "tok ");
        assert_eq!(last["choices"][0]["finish_reason"], "length");
        let usage = parse_sse(&chat.usage_chunk(5, 7));
        assert_eq!(usage["usage"]["total_tokens"], 12);
        assert_eq!(usage["choices"].as_array().unwrap().len(), 0);

        let cmpl = chunks.get(Endpoint::Completions);
        assert!(cmpl.role.is_none());
        let c = parse_sse(&cmpl.content(0, 6));
        assert_eq!(c["object"], "text_completion");
        assert_eq!(c["choices"][0]["text"], "tok tok tok ");
        let full: Value = serde_json::from_slice(&cmpl.full_response(2, Some((1, 2)))).unwrap();
        assert_eq!(full["choices"][0]["text"], "tok tok ");
        assert_eq!(full["usage"]["completion_tokens"], 2);
        let models: Value = serde_json::from_slice(&chunks.models).unwrap();
        assert_eq!(models["data"][0]["id"], "we\"ird");
    }
}
