//! What one request is: the tests, their prompts and images, and the JSON bodies sent.
//!
//! Bodies are built from a template made once per test, so a request costs one prompt string
//! and one copy, not a JSON tree (a multimodal body can carry megabytes of base64).

pub mod dataset;
pub mod image;
pub mod plan;
pub mod prompt;
pub mod source;
pub mod synth_image;
pub mod tokens;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

pub use image::ImageData;
pub use source::{PromptSource, PromptSpec};

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
#[derive(Clone)]
pub struct WorkloadSpec {
    pub model: String,
    pub api: ApiKind,
    /// What each request asks.
    pub source: Arc<dyn PromptSource>,
    /// `max_tokens` when the source does not decide it (`-tg`).
    pub max_tokens: u32,
    /// Ask for exactly `max_tokens` (`ignore_eos`, and vLLM's `min_tokens`).
    pub ignore_eos: bool,
    /// Ask for usage in every chunk (vLLM's `stream_options.continuous_usage_stats`).
    pub continuous_usage: bool,
    /// Fields merged into every body, overriding llm-bench's own (`--extra-body`).
    pub extra_body: serde_json::Map<String, serde_json::Value>,
    /// The multimodal test's images.
    pub images: Option<Images>,
    /// Embeddings: input strings per request (`--embed-batch`), at least 1.
    pub embed_batch: u32,
}

impl fmt::Debug for WorkloadSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "WorkloadSpec({}, {:?}, {})",
            self.model,
            self.api,
            self.source.describe()
        )
    }
}

/// The multimodal test's images: the seed's one file, or pictures made for every request.
#[derive(Debug, Clone)]
pub enum Images {
    File(Arc<ImageData>),
    /// `--image-size`: `per_request` pictures made for every request, all different.
    Synth {
        width: u32,
        height: u32,
        format: synth_image::ImageFormat,
        per_request: u32,
        seed: u64,
    },
}

impl Images {
    /// The data URLs of request `seq`'s images.
    fn urls(&self, seq: u64) -> Vec<Arc<str>> {
        match self {
            Images::File(image) => vec![image.data_url_arc()],
            &Images::Synth {
                width,
                height,
                format,
                per_request,
                seed,
            } => (0..u64::from(per_request))
                .map(|i| {
                    let key = seed
                        ^ seq
                            .wrapping_mul(u64::from(per_request))
                            .wrapping_add(i)
                            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
                    let bytes = synth_image::synth_image(width, height, format, key);
                    let encoded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &bytes);
                    Arc::from(format!("data:{};base64,{encoded}", format.mime()))
                })
                .collect(),
        }
    }

    /// Making them costs milliseconds: build requests ahead, off the send path.
    pub fn costly(&self) -> bool {
        matches!(self, Images::Synth { .. })
    }
}

/// One request's body and what is known of it before it is sent.
#[derive(Debug, Clone, Default)]
pub struct Built {
    pub body: Bytes,
    /// Bytes of prompt text (for a token estimate when the server sends no usage).
    pub text_len: usize,
    pub max_tokens: u64,
    pub requested_isl: Option<u64>,
    pub row: Option<u64>,
    pub group: Option<u32>,
    pub group_first: bool,
    /// Bytes of image data URLs in the body.
    pub image_bytes: u64,
    pub images: u32,
    /// Embeddings: the inputs the body carries (0 otherwise).
    pub inputs: u32,
}

/// A prompt of more bytes than this is built ahead, off the runtime's threads.
const COSTLY_PROMPT_BYTES: usize = 32 * 1024;

/// Builds request bodies for every test.
pub struct Workload {
    spec: WorkloadSpec,
    /// The body's fixed fields, serialised once: `{"model":…,"stream":true,…` without the
    /// closing brace; each request appends its own fields.
    head: Vec<u8>,
    /// `--extra-body` sets `max_tokens` itself: the user's value wins.
    user_max_tokens: bool,
    /// Bodies take long to build (see [`Self::costly`]).
    costly: bool,
    /// The `max_tokens` (or `max_completion_tokens`) the user set in `--extra-body`.
    user_max_value: Option<u64>,
}

impl fmt::Debug for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.spec.fmt(f)
    }
}

impl Workload {
    pub fn new(spec: WorkloadSpec) -> Self {
        let mut map = serde_json::Map::new();
        map.insert("model".into(), spec.model.clone().into());
        if spec.api.generates() {
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
        let user_max_tokens = ["max_tokens", "max_completion_tokens"]
            .iter()
            .any(|k| spec.extra_body.contains_key(*k));
        for key in ["messages", "prompt", "input", "min_tokens"] {
            if !spec.extra_body.contains_key(key) {
                map.remove(key);
            }
        }
        let mut head = serde_json::to_vec(&serde_json::Value::Object(map)).expect("a JSON value always serialises");
        head.pop(); // the closing brace
        let user_max_value = ["max_completion_tokens", "max_tokens"]
            .iter()
            .find_map(|k| spec.extra_body.get(*k).and_then(serde_json::Value::as_u64));
        let mut workload = Self {
            user_max_value,
            user_max_tokens: user_max_tokens || !spec.api.generates(),
            spec,
            head,
            costly: false,
        };
        // Pictures to encode, or prompts long enough (a sample over 32 KB: ~6,000 tokens, some
        // tens of µs to build) that building them on the runtime's threads would hold up others.
        let images = workload.spec.images.as_ref().is_some_and(Images::costly);
        let long = workload.spec.source.prompt(TestKind::Output, 0).text.len() > COSTLY_PROMPT_BYTES;
        workload.costly = images || long;
        workload
    }

    /// Whether `test`'s requests are embeddings requests (the text tests with `--endpoint
    /// embeddings`).
    pub fn is_embeddings(&self, test: TestKind) -> bool {
        self.spec.api == ApiKind::Embeddings && test != TestKind::Multimodal
    }

    /// Request `seq` of `test`, ready for the client (pre-flight and tests; the load goes
    /// through [`crate::load::RequestMaker`]).
    pub fn outgoing(&self, test: TestKind, seq: u64) -> crate::client::Outgoing {
        crate::load::prepared(seq, test, self.path(test), self.build(test, seq)).outgoing
    }

    /// The pre-flight request of `test`: like the load's, without a shared prefix (which it
    /// would put in the server's cache before the first measured request of its group).
    pub fn probe_outgoing(&self, test: TestKind) -> crate::client::Outgoing {
        if self.is_embeddings(test) {
            return self.outgoing(test, u64::MAX);
        }
        let mut spec = self.prompt(test, u64::MAX);
        spec.system = None;
        spec.group = None;
        crate::load::prepared(u64::MAX, test, self.path(test), self.build_spec(test, &spec)).outgoing
    }

    /// An embeddings body: `input` is an array of `--embed-batch` prompts (numbers
    /// `seq·K … seq·K + K − 1` of the prompt source), each its own unless `--same-prompt`.
    fn embeddings(&self, test: TestKind, seq: u64) -> Built {
        let batch = u64::from(self.spec.embed_batch.max(1));
        let mut body = self.head.clone();
        body.extend_from_slice(b",\"input\":[");
        let (mut text_len, mut isl, mut all_exact) = (0, 0, true);
        for j in 0..batch {
            let spec = self.spec.source.prompt(test, seq.wrapping_mul(batch).wrapping_add(j));
            text_len += spec.text.len();
            match spec.requested_isl {
                Some(n) => isl += n,
                None => all_exact = false,
            }
            if j > 0 {
                body.push(b',');
            }
            write_str(&mut body, &spec.text);
        }
        body.extend_from_slice(b"]}");
        Built {
            body: Bytes::from(body),
            text_len,
            max_tokens: 0,
            requested_isl: all_exact.then_some(isl),
            inputs: batch as u32,
            ..Built::default()
        }
    }

    /// The endpoint the text tests use.
    pub fn api(&self) -> ApiKind {
        self.spec.api
    }

    pub fn model(&self) -> &str {
        &self.spec.model
    }

    /// Building a body takes long enough (pictures to encode, a long prompt) that a connection
    /// builds its next request while the current one is in flight.
    pub fn costly(&self) -> bool {
        self.costly
    }

    pub fn source(&self) -> &dyn PromptSource {
        &*self.spec.source
    }

    /// Path (after the base URL) the test's requests go to.
    pub fn path(&self, test: TestKind) -> &'static str {
        match test {
            TestKind::Multimodal => ApiKind::Chat.path(),
            _ => self.spec.api.path(),
        }
    }

    /// `max_tokens` of the test's requests when the prompt source does not say: the input test
    /// asks for one token.
    pub fn max_tokens(&self, test: TestKind) -> u64 {
        match test {
            TestKind::Input => 1,
            _ => self.spec.max_tokens.into(),
        }
    }

    /// The JSON body of prompt `seq` of `test`.
    pub fn body(&self, test: TestKind, seq: u64) -> Bytes {
        self.build(test, seq).body
    }

    /// Prompt `seq` of `test` as a request body.
    pub fn build(&self, test: TestKind, seq: u64) -> Built {
        if self.is_embeddings(test) {
            return self.embeddings(test, seq);
        }
        self.build_spec(test, &self.prompt(test, seq))
    }

    /// Prompt `seq` of `test`: the source's, with the multimodal test's images.
    pub fn prompt(&self, test: TestKind, seq: u64) -> PromptSpec {
        let mut spec = self.spec.source.prompt(test, seq);
        if test == TestKind::Multimodal {
            if let Some(images) = &self.spec.images {
                spec.images = images.urls(seq);
            }
        }
        spec
    }

    /// A prompt as a request body.
    pub fn build_spec(&self, test: TestKind, spec: &PromptSpec) -> Built {
        let max_tokens = match (test, self.user_max_value) {
            // The user's `--extra-body` value is the one the body carries.
            (_, Some(user)) => user,
            (TestKind::Input, None) => 1,
            _ => spec.max_tokens.unwrap_or(self.spec.max_tokens.into()),
        };
        let image_bytes: u64 = spec.images.iter().map(|u| u.len() as u64).sum();
        let text_len = spec.text.len()
            + spec.system.as_deref().map_or(0, str::len)
            + spec.history.iter().map(|m| m.content.len()).sum::<usize>();
        let mut body = Vec::with_capacity(self.head.len() + text_len + image_bytes as usize + 256);
        body.extend_from_slice(&self.head);
        if !self.user_max_tokens {
            body.extend_from_slice(format!(",\"max_tokens\":{max_tokens}").as_bytes());
            if self.spec.ignore_eos && !self.spec.extra_body.contains_key("min_tokens") {
                body.extend_from_slice(format!(",\"min_tokens\":{max_tokens}").as_bytes());
            }
        }
        let chat = test == TestKind::Multimodal || self.spec.api == ApiKind::Chat;
        if chat {
            write_messages(&mut body, spec);
        } else {
            body.extend_from_slice(b",\"prompt\":");
            let mut prompt = String::with_capacity(text_len);
            if let Some(system) = &spec.system {
                prompt.push_str(system);
            }
            for m in &spec.history {
                prompt.push_str(&m.content);
            }
            prompt.push_str(&spec.text);
            write_str(&mut body, &prompt);
        }
        body.push(b'}');
        Built {
            body: Bytes::from(body),
            text_len,
            max_tokens,
            requested_isl: spec.requested_isl,
            row: spec.row,
            group: spec.group,
            group_first: spec.group_first,
            image_bytes,
            images: spec.images.len() as u32,
            inputs: 0,
        }
    }
}

/// `,"messages":[…]`: the system prompt, the history, then the user message with its images.
fn write_messages(body: &mut Vec<u8>, spec: &PromptSpec) {
    body.extend_from_slice(b",\"messages\":[");
    let mut first = true;
    let mut message = |body: &mut Vec<u8>, role: &str, content: &str| {
        if !std::mem::take(&mut first) {
            body.push(b',');
        }
        body.extend_from_slice(b"{\"role\":");
        write_str(body, role);
        body.extend_from_slice(b",\"content\":");
        write_str(body, content);
        body.push(b'}');
    };
    if let Some(system) = &spec.system {
        message(body, "system", system);
    }
    for m in &spec.history {
        message(body, &m.role, &m.content);
    }
    if spec.images.is_empty() {
        message(body, "user", &spec.text);
    } else {
        if !first {
            body.push(b',');
        }
        body.extend_from_slice(b"{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":");
        write_str(body, &spec.text);
        body.push(b'}');
        for url in &spec.images {
            body.extend_from_slice(b",{\"type\":\"image_url\",\"image_url\":{\"url\":");
            write_str(body, url);
            body.extend_from_slice(b"}}");
        }
        body.extend_from_slice(b"]}");
    }
    body.push(b']');
}

/// A JSON string literal. Text that needs no escape (llm-bench's own prompts: letters and
/// spaces) is copied as it is, which is several times faster than escaping it byte by byte.
fn write_str(body: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| (0x20..0x7F).contains(&b) && b != b'"' && b != b'\\') {
        body.reserve(s.len() + 2);
        body.push(b'"');
        body.extend_from_slice(s.as_bytes());
        body.push(b'"');
        return;
    }
    serde_json::to_writer(&mut *body, s).expect("writing to a Vec cannot fail");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> WorkloadSpec {
        WorkloadSpec {
            model: "m".into(),
            api: ApiKind::Chat,
            source: Arc::new(source::Filler {
                chars: 50,
                same_prompt: false,
                multimodal_text: "Describe".into(),
            }),
            max_tokens: 7,
            ignore_eos: false,
            continuous_usage: false,
            extra_body: serde_json::Map::new(),
            images: None,
            embed_batch: 1,
        }
    }

    fn json(w: &Workload, test: TestKind, seq: u64) -> serde_json::Value {
        serde_json::from_slice(&w.body(test, seq)).unwrap()
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
    fn strings_are_escaped_only_when_they_need_it() {
        for s in [
            "plain words",
            "",
            "quote \" and \\ back",
            "tab\tnew\nline",
            "ünïcode ✓",
            "\u{1}",
        ] {
            let mut body = Vec::new();
            write_str(&mut body, s);
            let back: String = serde_json::from_slice(&body).unwrap();
            assert_eq!(back, s);
        }
    }

    #[test]
    fn chat_body_is_valid_json_with_the_prompt() {
        let w = Workload::new(spec());
        let body = json(&w, TestKind::Output, 3);
        assert_eq!(body["max_tokens"], 7);
        assert_eq!(body["stream"], true);
        assert_eq!(body["model"], "m");
        assert_eq!(body["stream_options"], serde_json::json!({"include_usage": true}));
        let content = body["messages"][0]["content"].as_str().unwrap();
        assert_eq!(content.chars().count(), 50);
        assert_eq!(json(&w, TestKind::Input, 3)["max_tokens"], 1);
    }

    #[test]
    fn continuous_usage_asks_for_usage_in_every_chunk() {
        let w = Workload::new(WorkloadSpec {
            continuous_usage: true,
            ..spec()
        });
        assert_eq!(
            json(&w, TestKind::Output, 1)["stream_options"],
            serde_json::json!({"include_usage": true, "continuous_usage_stats": true})
        );
    }

    #[test]
    fn ignore_eos_also_asks_for_min_tokens() {
        let w = Workload::new(WorkloadSpec {
            ignore_eos: true,
            ..spec()
        });
        let body = json(&w, TestKind::Output, 1);
        assert_eq!(body["ignore_eos"], true);
        assert_eq!(body["min_tokens"], 7);
    }

    #[test]
    fn prompts_differ_unless_same_prompt() {
        let w = Workload::new(spec());
        assert_ne!(w.body(TestKind::Output, 1), w.body(TestKind::Output, 2));
        let w = Workload::new(WorkloadSpec {
            source: Arc::new(source::Filler {
                chars: 50,
                same_prompt: true,
                multimodal_text: "x".into(),
            }),
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
        let body = json(&w, TestKind::Output, 1);
        assert_eq!(body["cache_prompt"], false);
        assert_eq!(body["max_tokens"], 3, "the user's value wins");
        assert_eq!(w.build(TestKind::Output, 1).max_tokens, 3, "and is the OSL asked for");
        assert_eq!(body["messages"][0]["content"].as_str().unwrap().len(), 50);
    }

    #[test]
    fn completions_body() {
        let w = Workload::new(WorkloadSpec {
            api: ApiKind::Completions,
            ..spec()
        });
        let body = json(&w, TestKind::Output, 1);
        assert_eq!(body["prompt"].as_str().unwrap().len(), 50);
        assert_eq!(w.path(TestKind::Output), "/completions");
    }

    #[test]
    fn multimodal_body_has_text_and_image_parts() {
        let image = ImageData::from_bytes(b"\x89PNG\r\n\x1a\n0000".to_vec(), "x.png").unwrap();
        let w = Workload::new(WorkloadSpec {
            images: Some(Images::File(Arc::new(image))),
            ..spec()
        });
        let built = w.build(TestKind::Multimodal, 1);
        assert_eq!(built.images, 1);
        let body: serde_json::Value = serde_json::from_slice(&built.body).unwrap();
        let parts = &body["messages"][0]["content"];
        assert!(parts[0]["text"].as_str().unwrap().ends_with("Describe"));
        assert!(parts[1]["image_url"]["url"]
            .as_str()
            .unwrap()
            .starts_with("data:image/png;base64,"));
        assert_eq!(w.path(TestKind::Multimodal), "/chat/completions");
    }

    #[test]
    fn system_and_history_come_before_the_user_message() {
        let w = Workload::new(spec());
        let prompt = PromptSpec {
            system: Some("sys".into()),
            history: vec![
                dataset::ChatMessage {
                    role: "user".into(),
                    content: "q1".into(),
                },
                dataset::ChatMessage {
                    role: "assistant".into(),
                    content: "a \"1\"".into(),
                },
            ],
            text: "q2".into(),
            max_tokens: Some(5),
            ..PromptSpec::default()
        };
        let body: serde_json::Value = serde_json::from_slice(&w.build_spec(TestKind::Output, &prompt).body).unwrap();
        let roles: Vec<&str> = body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["role"].as_str().unwrap())
            .collect();
        assert_eq!(roles, ["system", "user", "assistant", "user"]);
        assert_eq!(body["messages"][2]["content"], "a \"1\"");
        assert_eq!(body["max_tokens"], 5);
    }
}
