//! Pre-formatted response bytes.
//!
//! With thousands of concurrent streams, building a JSON tree per token would
//! dominate the simulator's CPU time and distort the very latencies it is
//! meant to produce. Every chunk that does not depend on the request is
//! therefore formatted once at start-up and shared as a refcounted `Bytes`;
//! ids are fixed ("chatcmpl-sim", "cmpl-sim") so the bytes can be shared.
//! Only per-request pieces (a short final chunk, the tail with usage and
//! timings, non-stream bodies, injected faults) are formatted per request, once.
//!
//! The layout follows the flavor. OpenAI: a role chunk with `content: ""`, the
//! last content chunk carries `finish_reason`, then an optional usage chunk.
//! llama-server (docs/llama-server-notes.md): a role chunk with `content: null`
//! (chat only), content chunks never finish, then a finish chunk with `delta: {}`
//! and a usage chunk with `timings` (chat), or one final chunk with
//! `finish_reason`, `usage` and `timings` together (completions).

use bytes::Bytes;
use http::StatusCode;

use super::config::Flavor;
use super::errors::error_json;
use super::llama::Timings;
use super::reasoning::{Reasoning, REASONING_FIELD};

/// Terminates every SSE stream.
pub(crate) const DONE: Bytes = Bytes::from_static(b"data: [DONE]\n\n");
/// The chunk injected by `--fault-malformed-rate`.
pub(crate) const MALFORMED: Bytes = Bytes::from_static(b"data: {not json\n\n");
/// The message of the `error` event injected by `--fault-error-event-rate`.
pub(crate) const ERROR_EVENT_MESSAGE: &str = "simulated fault: error inside the stream";

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

/// Why a generation ended, as `finish_reason` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Finish {
    /// The token limit (`max_tokens`, or the server's `--max-output`) came first.
    #[default]
    Length,
    /// The model "produced" its end of sequence (`--eos-after`).
    Stop,
}

impl Finish {
    /// The quoted JSON string.
    fn json(self) -> &'static str {
        match self {
            Finish::Length => r#""length""#,
            Finish::Stop => r#""stop""#,
        }
    }
}

/// The prompt side of `usage`: its tokens, and the cached ones when the server reports them
/// (`prompt_tokens_details.cached_tokens`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PromptUsage {
    pub tokens: u64,
    pub cached: Option<u64>,
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
    pub fn new(model: &str, tokens_per_chunk: u64, role_chunk: bool, flavor: Flavor) -> Self {
        let model_json = json_string(model);
        let openai_list = format!(
            r#""object":"list","data":[{{"id":{model_json},"object":"model","created":0,"owned_by":"llm-bench"}}]"#
        );
        let models = match flavor {
            Flavor::Openai => format!("{{{openai_list}}}"),
            // llama-server adds an Ollama-style `models` array beside `data`.
            Flavor::LlamaServer => format!(
                r#"{{"models":[{{"name":{model_json},"model":{model_json},"type":"model"}}],{}}}"#,
                openai_list.replace("llm-bench", "llamacpp")
            ),
        };
        let make = |endpoint| EndpointChunks::new(endpoint, flavor, &model_json, tokens_per_chunk, role_chunk);
        Self {
            chat: make(Endpoint::Chat),
            completions: make(Endpoint::Completions),
            models: Bytes::from(models),
        }
    }

    /// Chat answers begin with `reasoning.tokens` tokens of reasoning (`--reasoning-tokens`).
    pub fn with_reasoning(mut self, reasoning: Reasoning) -> Self {
        self.chat.set_reasoning(reasoning);
        self
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
    flavor: Flavor,
    /// The model name, already JSON-escaped and quoted.
    model_json: String,
    tokens_per_chunk: u64,
    /// Chat only: the assistant role before any text.
    pub role: Option<Bytes>,
    /// A full chunk of `tokens_per_chunk` tokens that is not the last.
    content: Bytes,
    /// A full chunk of `tokens_per_chunk` tokens that is the last one, for each [`Finish`].
    last_full: [Bytes; 2],
    /// Chat with `--reasoning-tokens`: how much is reasoning, and its chunks (as `content` and
    /// `last_full`, in `delta.reasoning_content`).
    reasoning: Reasoning,
    reasoning_content: Bytes,
    reasoning_last_full: [Bytes; 2],
}

impl EndpointChunks {
    fn new(endpoint: Endpoint, flavor: Flavor, model_json: &str, tokens_per_chunk: u64, role_chunk: bool) -> Self {
        let mut this = Self {
            endpoint,
            flavor,
            model_json: model_json.to_string(),
            tokens_per_chunk,
            role: None,
            content: Bytes::new(),
            last_full: [Bytes::new(), Bytes::new()],
            reasoning: Reasoning::default(),
            reasoning_content: Bytes::new(),
            reasoning_last_full: [Bytes::new(), Bytes::new()],
        };
        let full = json_string(&repeat_word(tokens_per_chunk));
        this.content = this.text_chunk(&full, None);
        this.last_full = [Finish::Length, Finish::Stop].map(|finish| this.text_chunk(&full, Some(finish)));
        if role_chunk && endpoint == Endpoint::Chat {
            let content = match flavor {
                Flavor::Openai => r#""""#,
                Flavor::LlamaServer => "null",
            };
            let choice =
                format!(r#"{{"index":0,"delta":{{"role":"assistant","content":{content}}},"finish_reason":null}}"#);
            this.role = Some(this.event(&choice, ""));
        }
        this
    }

    fn set_reasoning(&mut self, reasoning: Reasoning) {
        self.reasoning = reasoning;
        let text = json_string(&repeat_word(self.tokens_per_chunk));
        self.reasoning_content = self.field_chunk(REASONING_FIELD, text.as_bytes(), None);
        self.reasoning_last_full = [Finish::Length, Finish::Stop]
            .map(|finish| self.field_chunk(REASONING_FIELD, text.as_bytes(), Some(finish)));
    }

    fn is_reasoning(&self, index: u64) -> bool {
        self.endpoint == Endpoint::Chat && self.reasoning.is_reasoning_chunk(index, self.tokens_per_chunk)
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

    /// Tokens carried by the content chunk at `index` of a response of `output_tokens` tokens.
    fn tokens_at(&self, index: u64, output_tokens: u64) -> u64 {
        self.tokens_in(index + 1, output_tokens) - self.tokens_in(index, output_tokens)
    }

    /// The content chunk at `index` (0-based) of a response of
    /// `output_tokens` tokens. Only the last one is ever formatted here, and
    /// only when it is shorter than a full chunk.
    pub fn content(&self, index: u64, output_tokens: u64, finish: Finish) -> Bytes {
        let total = self.chunk_count(output_tokens);
        let reasoning = self.is_reasoning(index);
        if index + 1 < total {
            return match reasoning {
                true => self.reasoning_content.clone(),
                false => self.content.clone(),
            };
        }
        let remainder = self.tokens_at(index, output_tokens);
        match (remainder == self.tokens_per_chunk, reasoning) {
            (true, true) => self.reasoning_last_full[finish as usize].clone(),
            (true, false) => self.last_full[finish as usize].clone(),
            (false, true) => {
                let text = json_string(&repeat_word(remainder));
                self.field_chunk(REASONING_FIELD, text.as_bytes(), Some(finish))
            }
            (false, false) => self.text_chunk(&json_string(&repeat_word(remainder)), Some(finish)),
        }
    }

    /// A full content chunk that never finishes the stream (for an endless stream).
    pub fn unfinished(&self) -> Bytes {
        self.content.clone()
    }

    /// The chunk at `index` with invalid UTF-8 (a lone continuation byte) inside its text.
    pub fn invalid_utf8(&self, index: u64, output_tokens: u64, finish: Finish) -> Bytes {
        let text = json_string(&repeat_word(self.tokens_at(index, output_tokens)));
        let mut broken = text.into_bytes();
        broken.insert(1, 0x80);
        self.raw_text_chunk(&broken, self.finish_at(index, output_tokens, finish))
    }

    /// The chunk at `index`, its text padded so that the event is at least `bytes` long.
    pub fn huge(&self, index: u64, output_tokens: u64, finish: Finish, bytes: usize) -> Bytes {
        let mut text = repeat_word(self.tokens_at(index, output_tokens));
        text.push_str(&"x".repeat(bytes));
        self.text_chunk(&json_string(&text), self.finish_at(index, output_tokens, finish))
    }

    /// An `error` event in the flavor's error shape, then `[DONE]`, as vLLM ends a failed stream.
    pub fn error_event(&self) -> Bytes {
        let error = error_json(self.flavor, StatusCode::INTERNAL_SERVER_ERROR, ERROR_EVENT_MESSAGE);
        Bytes::from(format!(
            "data: {error}\n\n{}",
            std::str::from_utf8(&DONE).unwrap_or_default()
        ))
    }

    /// Everything between the last content chunk and `[DONE]`, or `None` when there is nothing.
    pub fn tail(
        &self,
        prompt: PromptUsage,
        output_tokens: u64,
        finish: Finish,
        include_usage: bool,
        timings: &Timings,
    ) -> Option<Bytes> {
        let usage = format!(r#","usage":{}"#, self.usage_json(prompt, output_tokens));
        let timings = format!(r#","timings":{}"#, timings.json());
        let finish = format!(r#""finish_reason":{}"#, finish.json());
        let mut tail = Vec::new();
        match (self.flavor, self.endpoint) {
            (Flavor::Openai, _) => {
                if include_usage {
                    tail.extend_from_slice(&self.event("", &usage));
                }
            }
            (Flavor::LlamaServer, Endpoint::Chat) => {
                let choice = format!(r#"{{"index":0,"delta":{{}},{finish}}}"#);
                // Without a usage chunk, the timings ride on the finish chunk.
                let extra = if include_usage { "" } else { timings.as_str() };
                tail.extend_from_slice(&self.event(&choice, extra));
                if include_usage {
                    tail.extend_from_slice(&self.event("", &format!("{usage}{timings}")));
                }
            }
            (Flavor::LlamaServer, Endpoint::Completions) => {
                let choice = format!(r#"{{"text":"","index":0,"logprobs":null,{finish}}}"#);
                let usage = if include_usage { usage.as_str() } else { "" };
                tail.extend_from_slice(&self.event(&choice, &format!("{usage}{timings}")));
            }
        }
        (!tail.is_empty()).then(|| Bytes::from(tail))
    }

    /// `chunk` (one event) carrying usage, as vLLM sends every chunk when asked for
    /// `continuous_usage_stats`: the cumulative counts so far, spliced in before the event's
    /// closing brace. Only requests that ask pay for it; the shared chunks stay as they are.
    pub fn with_usage(&self, chunk: &Bytes, prompt: PromptUsage, completion_tokens: u64) -> Bytes {
        let Some(head) = chunk.strip_suffix(b"}\n\n") else {
            return chunk.clone();
        };
        let usage = self.usage_json(prompt, completion_tokens);
        let mut bytes = Vec::with_capacity(chunk.len() + usage.len() + 10);
        bytes.extend_from_slice(head);
        bytes.extend_from_slice(b",\"usage\":");
        bytes.extend_from_slice(usage.as_bytes());
        bytes.extend_from_slice(b"}\n\n");
        Bytes::from(bytes)
    }

    /// The whole non-streamed response body.
    pub fn full_response(&self, output_tokens: u64, finish: Finish, usage: Option<PromptUsage>) -> Bytes {
        let reasoned = match self.endpoint {
            Endpoint::Chat => self.reasoning.tokens_of(output_tokens),
            Endpoint::Completions => 0,
        };
        let text = json_string(&repeat_word(output_tokens - reasoned));
        let reasoning = match reasoned {
            0 => String::new(),
            n => format!(r#","{REASONING_FIELD}":{}"#, json_string(&repeat_word(n))),
        };
        let usage = match usage {
            Some(prompt) => format!(r#","usage":{}"#, self.usage_json(prompt, output_tokens)),
            None => String::new(),
        };
        let finish = finish.json();
        let (object, choice) = match self.endpoint {
            Endpoint::Chat => (
                "chat.completion",
                format!(
                    r#"{{"index":0,"message":{{"role":"assistant","content":{text}{reasoning}}},"finish_reason":{finish}}}"#
                ),
            ),
            Endpoint::Completions => (
                "text_completion",
                format!(r#"{{"index":0,"text":{text},"finish_reason":{finish}}}"#),
            ),
        };
        Bytes::from(format!(
            r#"{{"id":"{}","object":"{object}","created":0,"model":{},"choices":[{choice}]{usage}}}"#,
            self.endpoint.id(),
            self.model_json,
        ))
    }

    /// `finish` when the chunk at `index` is the last one.
    fn finish_at(&self, index: u64, output_tokens: u64, finish: Finish) -> Option<Finish> {
        (index + 1 >= self.chunk_count(output_tokens)).then_some(finish)
    }

    /// A content chunk whose text is `text_json` (a quoted JSON string); `finish` when it is
    /// the last one.
    fn text_chunk(&self, text_json: &str, finish: Option<Finish>) -> Bytes {
        self.raw_text_chunk(text_json.as_bytes(), finish)
    }

    /// A content chunk from raw text bytes, which may be anything (an injected fault).
    fn raw_text_chunk(&self, text: &[u8], finish: Option<Finish>) -> Bytes {
        self.field_chunk("content", text, finish)
    }

    /// A chunk whose text (raw bytes of a quoted JSON string) is in `delta.<field>` (chat) or
    /// `text` (completions).
    fn field_chunk(&self, field: &str, text: &[u8], finish: Option<Finish>) -> Bytes {
        // llama-server finishes in a chunk of its own, after the last text.
        let finish = match (finish, self.flavor) {
            (Some(finish), Flavor::Openai) => finish.json(),
            _ => "null",
        };
        const TEXT: &str = "\u{1}";
        let choice = match self.endpoint {
            Endpoint::Chat => format!(r#"{{"index":0,"delta":{{"{field}":{TEXT}}},"finish_reason":{finish}}}"#),
            Endpoint::Completions => format!(r#"{{"index":0,"text":{TEXT},"finish_reason":{finish}}}"#),
        };
        let event = self.event(&choice, "");
        let at = event.iter().position(|&b| b == 1).expect("marker present");
        let mut bytes = Vec::with_capacity(event.len() + text.len());
        bytes.extend_from_slice(&event[..at]);
        bytes.extend_from_slice(text);
        bytes.extend_from_slice(&event[at + 1..]);
        Bytes::from(bytes)
    }

    /// One `data:` event with `choices` (one choice, or none for a usage chunk); `extra` is
    /// appended inside the object (`,"usage":{..}`, `,"timings":{..}`).
    fn event(&self, choices: &str, extra: &str) -> Bytes {
        let fingerprint = match self.flavor {
            Flavor::Openai => "",
            Flavor::LlamaServer => r#","system_fingerprint":"b1-llm-bench-sim""#,
        };
        Bytes::from(
            format!(
                r#"data: {{"id":"{}","object":"{}","created":0,"model":{}{fingerprint},"choices":[{choices}]{extra}}}"#,
                self.endpoint.id(),
                self.endpoint.chunk_object(),
                self.model_json,
            ) + "\n\n",
        )
    }

    fn usage_json(&self, prompt: PromptUsage, completion: u64) -> String {
        let details = match prompt.cached {
            Some(cached) => format!(r#","prompt_tokens_details":{{"cached_tokens":{cached}}}"#),
            None => String::new(),
        };
        let tokens = prompt.tokens;
        let reasoning = match self.endpoint {
            Endpoint::Chat => self.reasoning.usage_details(completion),
            Endpoint::Completions => String::new(),
        };
        format!(
            r#"{{"prompt_tokens":{tokens},"completion_tokens":{completion},"total_tokens":{}{details}{reasoning}}}"#,
            tokens.saturating_add(completion)
        )
    }
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

    fn events(b: &Bytes) -> Vec<Value> {
        std::str::from_utf8(b)
            .unwrap()
            .split("\n\n")
            .filter(|e| !e.is_empty())
            .map(|e| e.strip_prefix("data: ").unwrap())
            .filter(|e| *e != "[DONE]")
            .map(|json| serde_json::from_str(json).unwrap())
            .collect()
    }

    fn parse_sse(b: &Bytes) -> Value {
        let mut all = events(b);
        assert_eq!(all.len(), 1);
        all.remove(0)
    }

    const L: Finish = Finish::Length;
    const P5: PromptUsage = PromptUsage {
        tokens: 5,
        cached: None,
    };
    const P7: PromptUsage = PromptUsage {
        tokens: 7,
        cached: None,
    };

    const TIMINGS: Timings = Timings {
        cache_n: 0,
        prompt_n: 5,
        prompt_ms: 10.0,
        predicted_n: 7,
        predicted_ms: 60.0,
    };

    #[test]
    fn chunks_are_valid_json_with_escaped_model() {
        let chunks = Chunks::new("we\"ird", 3, true, Flavor::Openai);
        let chat = chunks.get(Endpoint::Chat);
        let role = parse_sse(chat.role.as_ref().unwrap());
        assert_eq!(role["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(role["choices"][0]["delta"]["content"], "");
        assert_eq!(role["model"], "we\"ird");
        // 7 tokens in chunks of 3: 3, 3, 1.
        assert_eq!(chat.chunk_count(7), 3);
        let first = parse_sse(&chat.content(0, 7, L));
        assert_eq!(first["choices"][0]["delta"]["content"], "tok tok tok ");
        assert!(first["choices"][0]["finish_reason"].is_null());
        let last = parse_sse(&chat.content(2, 7, L));
        assert_eq!(last["choices"][0]["delta"]["content"], "tok ");
        assert_eq!(last["choices"][0]["finish_reason"], "length");
        let usage = parse_sse(&chat.tail(P5, 7, L, true, &TIMINGS).unwrap());
        assert_eq!(usage["usage"]["total_tokens"], 12);
        assert_eq!(usage["choices"].as_array().unwrap().len(), 0);
        assert!(usage.get("timings").is_none());
        assert!(chat.tail(P5, 7, L, false, &TIMINGS).is_none());

        let cmpl = chunks.get(Endpoint::Completions);
        assert!(cmpl.role.is_none());
        let c = parse_sse(&cmpl.content(0, 6, L));
        assert_eq!(c["object"], "text_completion");
        assert_eq!(c["choices"][0]["text"], "tok tok tok ");
        let full: Value = serde_json::from_slice(&cmpl.full_response(
            2,
            L,
            Some(PromptUsage {
                tokens: 1,
                cached: None,
            }),
        ))
        .unwrap();
        assert_eq!(full["choices"][0]["text"], "tok tok ");
        assert_eq!(full["usage"]["completion_tokens"], 2);
        let models: Value = serde_json::from_slice(&chunks.models).unwrap();
        assert_eq!(models["data"][0]["id"], "we\"ird");
    }

    #[test]
    fn llama_server_layout() {
        let chunks = Chunks::new("m", 1, true, Flavor::LlamaServer);
        let chat = chunks.get(Endpoint::Chat);
        let role = parse_sse(chat.role.as_ref().unwrap());
        assert!(role["choices"][0]["delta"]["content"].is_null());
        let last = parse_sse(&chat.content(6, 7, L));
        assert!(
            last["choices"][0]["finish_reason"].is_null(),
            "text chunks never finish"
        );
        let tail = events(&chat.tail(P5, 7, L, true, &TIMINGS).unwrap());
        assert_eq!(tail.len(), 2);
        assert_eq!(tail[0]["choices"][0]["finish_reason"], "length");
        assert_eq!(tail[0]["choices"][0]["delta"], serde_json::json!({}));
        assert!(tail[1]["choices"].as_array().unwrap().is_empty());
        assert_eq!(tail[1]["usage"]["completion_tokens"], 7);
        assert_eq!(tail[1]["timings"]["predicted_n"], 7);
        let without_usage = events(&chat.tail(P5, 7, L, false, &TIMINGS).unwrap());
        assert_eq!(without_usage.len(), 1);
        assert_eq!(without_usage[0]["timings"]["prompt_n"], 5);

        let cmpl = chunks.get(Endpoint::Completions);
        assert!(cmpl.role.is_none());
        let tail = events(&cmpl.tail(P5, 7, L, true, &TIMINGS).unwrap());
        assert_eq!(tail.len(), 1);
        assert_eq!(tail[0]["choices"][0]["finish_reason"], "length");
        assert_eq!(tail[0]["choices"][0]["text"], "");
        assert_eq!(tail[0]["usage"]["prompt_tokens"], 5);
        assert_eq!(tail[0]["timings"]["predicted_ms"], 60.0);
        let models: Value = serde_json::from_slice(&chunks.models).unwrap();
        assert_eq!(models["models"][0]["name"], "m");
        assert_eq!(models["data"][0]["owned_by"], "llamacpp");
    }

    #[test]
    fn per_chunk_usage_is_cumulative_and_valid_json() {
        let chunks = Chunks::new("m", 4, true, Flavor::Openai);
        let chat = chunks.get(Endpoint::Chat);
        // 10 tokens in chunks of 4: 4, 4, 2, with the counts so far.
        let counts: Vec<Value> = (0..3)
            .map(|i| {
                let chunk = chat.content(i, 10, L);
                let json = parse_sse(&chat.with_usage(&chunk, P7, chat.tokens_in(i + 1, 10)));
                assert_eq!(
                    json["choices"][0]["delta"]["content"],
                    parse_sse(&chunk)["choices"][0]["delta"]["content"]
                );
                json["usage"].clone()
            })
            .collect();
        let completion: Vec<u64> = counts
            .iter()
            .map(|u| u["completion_tokens"].as_u64().unwrap())
            .collect();
        assert_eq!(completion, [4, 8, 10]);
        assert_eq!(counts[2]["total_tokens"], 17);
        assert_eq!(counts[2]["prompt_tokens"], 7);
        let role = parse_sse(&chat.with_usage(chat.role.as_ref().unwrap(), P7, 0));
        assert_eq!(role["usage"]["completion_tokens"], 0);
        assert_eq!(role["choices"][0]["delta"]["role"], "assistant");
        // The shared chunk is untouched.
        assert!(parse_sse(&chat.content(0, 10, L)).get("usage").is_none());
    }

    #[test]
    fn fault_chunks() {
        let chunks = Chunks::new("m", 2, true, Flavor::Openai);
        let chat = chunks.get(Endpoint::Chat);
        let bad = chat.invalid_utf8(1, 5, L);
        assert!(std::str::from_utf8(&bad).is_err());
        let repaired = String::from_utf8_lossy(&bad);
        let json: Value = serde_json::from_str(repaired.trim().strip_prefix("data: ").unwrap()).unwrap();
        assert_eq!(json["choices"][0]["delta"]["content"], "\u{fffd}tok tok ");
        let huge = chat.huge(2, 5, L, 2 << 20);
        assert!(huge.len() > 2 << 20);
        let huge = parse_sse(&huge);
        assert_eq!(
            huge["choices"][0]["finish_reason"], "length",
            "index 2 of 5 tokens by 2 is the last"
        );
        let error = std::str::from_utf8(&chat.error_event()).unwrap().to_string();
        assert!(
            error.starts_with(r#"data: {"error":{"#) && error.ends_with("data: [DONE]\n\n"),
            "{error}"
        );
        assert!(error.contains(ERROR_EVENT_MESSAGE));
    }

    #[test]
    fn finish_reasons_and_cached_tokens() {
        for flavor in [Flavor::Openai, Flavor::LlamaServer] {
            let chunks = Chunks::new("m", 2, true, flavor);
            for endpoint in [Endpoint::Chat, Endpoint::Completions] {
                let c = chunks.get(endpoint);
                let cached = PromptUsage {
                    tokens: 40,
                    cached: Some(32),
                };
                for finish in [Finish::Length, Finish::Stop] {
                    let name = match finish {
                        Finish::Length => "length",
                        Finish::Stop => "stop",
                    };
                    let full: Value = serde_json::from_slice(&c.full_response(3, finish, Some(cached))).unwrap();
                    assert_eq!(full["choices"][0]["finish_reason"], name);
                    assert_eq!(full["usage"]["prompt_tokens_details"]["cached_tokens"], 32);
                    assert_eq!(full["usage"]["completion_tokens"], 3);
                    // Where the stream says why it ended: the last content chunk (OpenAI) or the tail.
                    let last = parse_sse(&c.content(1, 3, finish));
                    let tail = events(&c.tail(cached, 3, finish, true, &TIMINGS).unwrap());
                    let said = match flavor {
                        Flavor::Openai => last["choices"][0]["finish_reason"].clone(),
                        Flavor::LlamaServer => tail[0]["choices"][0]["finish_reason"].clone(),
                    };
                    assert_eq!(said, name, "{flavor:?} {endpoint:?}");
                    let usage = &tail.last().unwrap()["usage"];
                    assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], 32);
                }
                // A full last chunk comes from the pre-built pair.
                let last = parse_sse(&c.content(1, 4, Finish::Stop));
                if flavor == Flavor::Openai {
                    assert_eq!(last["choices"][0]["finish_reason"], "stop");
                }
            }
        }
    }
}
