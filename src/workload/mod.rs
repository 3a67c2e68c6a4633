//! What one request is: the tests, their prompts and images, and the JSON bodies sent.
//!
//! Bodies are built from a template made once per test, so a request costs one prompt string
//! and one copy, not a JSON tree (a multimodal body can carry megabytes of base64).

pub mod image;
pub mod prompt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::fmt;

pub use image::ImageData;

/// The three tests of the original script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TestKind {
    /// Prompt ingestion (prefill): `max_tokens = 1`.
    Input,
    /// Token generation.
    #[default]
    Output,
    /// Image + text generation.
    Multimodal,
}

impl TestKind {
    pub fn name(self) -> &'static str {
        match self {
            TestKind::Input => "input",
            TestKind::Output => "output",
            TestKind::Multimodal => "multimodal",
        }
    }
}

impl fmt::Display for TestKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which OpenAI endpoint the text tests use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ApiKind {
    /// `POST {url}/chat/completions` with one user message.
    #[default]
    Chat,
    /// `POST {url}/completions` with a plain prompt.
    Completions,
    /// `POST {url}/embeddings` with `--embed-batch` input strings, answered with one JSON
    /// document (not streamed). The text tests send these; there is no multimodal test.
    Embeddings,
}

impl ApiKind {
    pub fn path(self) -> &'static str {
        match self {
            ApiKind::Chat => "/chat/completions",
            ApiKind::Completions => "/completions",
            ApiKind::Embeddings => "/embeddings",
        }
    }

    /// Generates tokens (chat, completions), as opposed to embeddings.
    pub fn generates(self) -> bool {
        self != ApiKind::Embeddings
    }
}

/// Everything needed to build request bodies.
#[derive(Debug, Clone)]
pub struct WorkloadSpec {
    pub model: String,
    pub api: ApiKind,
    pub prompt_chars: usize,
    pub max_tokens: u32,
    /// Send the same prompt every time (lets a server's prefix cache work).
    pub same_prompt: bool,
    pub ignore_eos: bool,
    /// Ask for usage in every chunk (vLLM's `stream_options.continuous_usage_stats`).
    pub continuous_usage: bool,
    /// Fields merged into every body, overriding llm-bench's own (`--extra-body`).
    pub extra_body: serde_json::Map<String, serde_json::Value>,
    pub image: Option<ImageData>,
    pub multimodal_text: String,
    /// Embeddings: input strings per request (`--embed-batch`), at least 1.
    pub embed_batch: u32,
}

/// A body template: the JSON before and after the prompt string.
#[derive(Debug, Clone)]
struct Template {
    head: Bytes,
    tail: Bytes,
}

const PLACEHOLDER: &str = "\u{1}LLM_BENCH_PROMPT\u{1}";

/// Builds request bodies for every test.
#[derive(Debug, Clone)]
pub struct Workload {
    spec: WorkloadSpec,
    templates: [Option<Template>; 3],
}

impl Workload {
    pub fn new(spec: WorkloadSpec) -> Self {
        let templates =
            [TestKind::Input, TestKind::Output, TestKind::Multimodal].map(|test| Self::template(&spec, test));
        Self { spec, templates }
    }

    /// Path (after the base URL) the test's requests go to.
    pub fn path(&self, test: TestKind) -> &'static str {
        match test {
            TestKind::Multimodal => ApiKind::Chat.path(),
            _ => self.spec.api.path(),
        }
    }

    /// `max_tokens` of the test's requests: the input test asks for one token.
    pub fn max_tokens(&self, test: TestKind) -> u64 {
        max_tokens_of(&self.spec, test).into()
    }

    /// The endpoint the text tests use.
    pub fn api(&self) -> ApiKind {
        self.spec.api
    }

    /// Whether `test`'s requests are embeddings requests (the text tests with `--endpoint
    /// embeddings`).
    pub fn is_embeddings(&self, test: TestKind) -> bool {
        self.spec.api == ApiKind::Embeddings && test != TestKind::Multimodal
    }

    /// Request `id` of `test`, ready for the client: path, body, what its answer must hold.
    pub fn outgoing(&self, test: TestKind, id: u64) -> crate::client::Outgoing {
        let (body, text_len) = self.body_and_text_len(test, id);
        let embeddings = self.is_embeddings(test);
        crate::client::Outgoing {
            path: self.path(test),
            body,
            // About four characters a token for English text, plus what an image costs.
            estimated_prompt_tokens: (text_len as u64).div_ceil(4) + if test == TestKind::Multimodal { 256 } else { 0 },
            max_tokens: self.max_tokens(test),
            response: if embeddings {
                crate::client::http::ResponseKind::Json
            } else {
                crate::client::http::ResponseKind::Stream
            },
            inputs: if embeddings { self.embed_batch() } else { 0 },
            ..Default::default()
        }
    }

    fn embed_batch(&self) -> u32 {
        self.spec.embed_batch.max(1)
    }

    /// The text of request `id` of `test`.
    pub fn prompt_text(&self, test: TestKind, id: u64) -> String {
        let unique = (!self.spec.same_prompt).then_some(id);
        match test {
            TestKind::Multimodal => prompt::with_prefix(&self.spec.multimodal_text, unique),
            _ => prompt::filler(self.spec.prompt_chars, unique),
        }
    }

    /// The JSON body of request `id` of `test`.
    pub fn body(&self, test: TestKind, id: u64) -> Bytes {
        self.body_and_text_len(test, id).0
    }

    /// The JSON body and the length of its prompt text in bytes (for token estimates).
    pub fn body_and_text_len(&self, test: TestKind, id: u64) -> (Bytes, usize) {
        let template = self.templates[test as usize]
            .as_ref()
            .expect("multimodal body requested without an image; checked when the config was built");
        if self.is_embeddings(test) {
            return self.embeddings_body(template, id);
        }
        let text = self.prompt_text(test, id);
        let quoted = serde_json::to_string(&text).expect("a string always serialises");
        let mut body = Vec::with_capacity(template.head.len() + quoted.len() + template.tail.len());
        body.extend_from_slice(&template.head);
        body.extend_from_slice(quoted.as_bytes());
        body.extend_from_slice(&template.tail);
        (Bytes::from(body), text.len())
    }

    /// An embeddings body: `input` is an array of `--embed-batch` prompts, each its own unless
    /// `--same-prompt`.
    fn embeddings_body(&self, template: &Template, id: u64) -> (Bytes, usize) {
        let batch = u64::from(self.embed_batch());
        let mut body = Vec::with_capacity(template.head.len() + template.tail.len() + 2);
        body.extend_from_slice(&template.head);
        body.push(b'[');
        let mut text_len = 0;
        for j in 0..batch {
            let unique = (!self.spec.same_prompt).then(|| id.wrapping_mul(batch).wrapping_add(j));
            let text = prompt::filler(self.spec.prompt_chars, unique);
            text_len += text.len();
            if j > 0 {
                body.push(b',');
            }
            serde_json::to_writer(&mut body, &text).expect("a string always serialises");
        }
        body.push(b']');
        body.extend_from_slice(&template.tail);
        (Bytes::from(body), text_len)
    }

    fn template(spec: &WorkloadSpec, test: TestKind) -> Option<Template> {
        let max_tokens = max_tokens_of(spec, test);
        let mut body = match (test, spec.api) {
            (TestKind::Multimodal, _) => {
                let image = spec.image.as_ref()?;
                serde_json::json!({
                    "model": spec.model,
                    "messages": [{"role": "user", "content": [
                        {"type": "text", "text": PLACEHOLDER},
                        {"type": "image_url", "image_url": {"url": image.data_url()}},
                    ]}],
                })
            }
            (_, ApiKind::Chat) => serde_json::json!({
                "model": spec.model,
                "messages": [{"role": "user", "content": PLACEHOLDER}],
            }),
            (_, ApiKind::Completions) => serde_json::json!({
                "model": spec.model,
                "prompt": PLACEHOLDER,
            }),
            (_, ApiKind::Embeddings) => serde_json::json!({
                "model": spec.model,
                "input": PLACEHOLDER,
            }),
        };
        let map = body.as_object_mut().expect("built as an object");
        if test == TestKind::Multimodal || spec.api.generates() {
            map.insert("max_tokens".into(), max_tokens.into());
            map.insert("stream".into(), true.into());
            let stream_options = match spec.continuous_usage {
                true => serde_json::json!({"include_usage": true, "continuous_usage_stats": true}),
                false => serde_json::json!({"include_usage": true}),
            };
            map.insert("stream_options".into(), stream_options);
            if spec.ignore_eos {
                map.insert("ignore_eos".into(), true.into());
            }
        }
        for (key, value) in &spec.extra_body {
            map.insert(key.clone(), value.clone());
        }
        let text = serde_json::to_string(&body).expect("a JSON value always serialises");
        let quoted_placeholder = serde_json::to_string(PLACEHOLDER).expect("string");
        let at = text.find(&quoted_placeholder).expect("placeholder present");
        Some(Template {
            head: Bytes::copy_from_slice(&text.as_bytes()[..at]),
            tail: Bytes::copy_from_slice(&text.as_bytes()[at + quoted_placeholder.len()..]),
        })
    }
}

fn max_tokens_of(spec: &WorkloadSpec, test: TestKind) -> u32 {
    match test {
        TestKind::Input => 1,
        _ => spec.max_tokens,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> WorkloadSpec {
        WorkloadSpec {
            model: "m".into(),
            api: ApiKind::Chat,
            prompt_chars: 50,
            max_tokens: 7,
            same_prompt: false,
            ignore_eos: false,
            continuous_usage: false,
            extra_body: serde_json::Map::new(),
            image: None,
            multimodal_text: "Describe".into(),
            embed_batch: 1,
        }
    }

    #[test]
    fn embeddings_body_has_k_inputs_and_no_generation_fields() {
        let w = Workload::new(WorkloadSpec {
            api: ApiKind::Embeddings,
            embed_batch: 3,
            ..spec()
        });
        let out = w.outgoing(TestKind::Output, 2);
        assert_eq!((out.path, out.inputs), ("/embeddings", 3));
        assert_eq!(out.response, crate::client::http::ResponseKind::Json);
        let body: serde_json::Value = serde_json::from_slice(&out.body).unwrap();
        let inputs = body["input"].as_array().unwrap();
        assert_eq!(inputs.len(), 3);
        assert!(inputs.iter().all(|i| i.as_str().unwrap().len() == 50));
        assert_ne!(inputs[0], inputs[1], "each input its own");
        assert_eq!(body["model"], "m");
        for key in ["max_tokens", "stream", "stream_options"] {
            assert!(body.get(key).is_none(), "{key}");
        }
        assert_eq!(out.estimated_prompt_tokens, 3 * 50 / 4 + 1);
        let chat = Workload::new(spec()).outgoing(TestKind::Output, 2);
        assert_eq!(
            (chat.response, chat.inputs),
            (crate::client::http::ResponseKind::Stream, 0)
        );
    }

    #[test]
    fn chat_body_is_valid_json_with_the_prompt() {
        let w = Workload::new(spec());
        let body: serde_json::Value = serde_json::from_slice(&w.body(TestKind::Output, 3)).unwrap();
        assert_eq!(body["max_tokens"], 7);
        assert_eq!(body["stream"], true);
        assert_eq!(body["stream_options"], serde_json::json!({"include_usage": true}));
        let content = body["messages"][0]["content"].as_str().unwrap();
        assert_eq!(content.chars().count(), 50);
        let input: serde_json::Value = serde_json::from_slice(&w.body(TestKind::Input, 3)).unwrap();
        assert_eq!(input["max_tokens"], 1);
    }

    #[test]
    fn continuous_usage_asks_for_usage_in_every_chunk() {
        let w = Workload::new(WorkloadSpec {
            continuous_usage: true,
            ..spec()
        });
        let body: serde_json::Value = serde_json::from_slice(&w.body(TestKind::Output, 1)).unwrap();
        assert_eq!(
            body["stream_options"],
            serde_json::json!({"include_usage": true, "continuous_usage_stats": true})
        );
    }

    #[test]
    fn prompts_differ_unless_same_prompt() {
        let w = Workload::new(spec());
        assert_ne!(w.body(TestKind::Output, 1), w.body(TestKind::Output, 2));
        let w = Workload::new(WorkloadSpec {
            same_prompt: true,
            ..spec()
        });
        assert_eq!(w.body(TestKind::Output, 1), w.body(TestKind::Output, 2));
    }

    #[test]
    fn extra_body_fields_are_merged() {
        let mut extra = serde_json::Map::new();
        extra.insert("cache_prompt".into(), false.into());
        extra.insert("max_tokens".into(), 3.into());
        let w = Workload::new(WorkloadSpec {
            extra_body: extra,
            ..spec()
        });
        let body: serde_json::Value = serde_json::from_slice(&w.body(TestKind::Output, 1)).unwrap();
        assert_eq!(body["cache_prompt"], false);
        assert_eq!(body["max_tokens"], 3, "the user's value wins");
        assert_eq!(body["messages"][0]["content"].as_str().unwrap().len(), 50);
    }

    #[test]
    fn completions_body() {
        let w = Workload::new(WorkloadSpec {
            api: ApiKind::Completions,
            ..spec()
        });
        let body: serde_json::Value = serde_json::from_slice(&w.body(TestKind::Output, 1)).unwrap();
        assert_eq!(body["prompt"].as_str().unwrap().len(), 50);
        assert_eq!(w.path(TestKind::Output), "/completions");
    }

    #[test]
    fn multimodal_body_has_text_and_image_parts() {
        let image = ImageData::from_bytes(b"\x89PNG\r\n\x1a\n0000".to_vec(), "x.png").unwrap();
        let w = Workload::new(WorkloadSpec {
            image: Some(image),
            ..spec()
        });
        let body: serde_json::Value = serde_json::from_slice(&w.body(TestKind::Multimodal, 1)).unwrap();
        let parts = &body["messages"][0]["content"];
        assert!(parts[0]["text"].as_str().unwrap().ends_with("Describe"));
        assert!(parts[1]["image_url"]["url"]
            .as_str()
            .unwrap()
            .starts_with("data:image/png;base64,"));
        assert_eq!(w.path(TestKind::Multimodal), "/chat/completions");
    }
}
