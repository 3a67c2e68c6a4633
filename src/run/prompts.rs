//! Before the load: build the prompt source the user asked for — load the dataset, check which
//! prompt words are one token for the server (tokenizer file, the server's `/tokenize`, or
//! usage counts of probe requests, in that order) — and say in the header what was used.

use crate::cli::config::{RunConfig, UsageError};
use crate::client::probe::{post_root_json, PROBE_HEADER};
use crate::client::{Client, Endpoint, Outgoing, RequestRecord, Timeouts};
use crate::i18n::{tr, Msg};
use crate::load::arrivals::TraceTimes;
use crate::report::Reporter;
use crate::workload::dataset::{self, Dataset, DatasetFormat};
use crate::workload::plan::{DatasetPlan, LengthProbe, PromptPlan};
use crate::workload::source::{DatasetSource, Filler, PrefixGroups, PromptSource, PromptSpec, TokenExact};
use crate::workload::tokens::{self, LengthMethod, SplitMix, TokenCounter, TokenText};
use crate::workload::{ApiKind, ImageData, Images, TestKind, Workload, WorkloadSpec};
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Most requests (or tokenizer calls) the word check may take.
const MAX_PROBES: u32 = 96;
const PROBE_TIMEOUT: Duration = Duration::from_secs(60);

/// The run's workload, with its header lines said; and the recorded send times when the
/// dataset is a trace to replay.
pub struct Built {
    pub workload: Arc<Workload>,
    pub trace: Option<TraceTimes>,
    /// On a shard: the whole trace's requests and mean rate.
    pub trace_whole: Option<(u64, f64)>,
}

/// A dataset whose rows all carry timestamps is replayed at them, unless the user asked for
/// a rate or a stress run (then the timestamps are ignored, and said so).
fn replay_times(config: &RunConfig, dataset: &Dataset, reporter: &Reporter) -> Option<Vec<f64>> {
    let with_stamp = dataset.rows.iter().filter(|r| r.timestamp_ms.is_some()).count();
    let speed_given = config.prompts.dataset.as_ref().is_some_and(|d| d.trace_speed != 1.0);
    if with_stamp < dataset.rows.len() {
        if with_stamp > 0 {
            reporter.line(&tr(
                Msg::DatasetSomeTimestamps,
                &[("n", &with_stamp), ("rows", &dataset.rows.len())],
            ));
        } else if speed_given {
            reporter.line(&tr(Msg::DatasetNoTimestamps, &[]));
        }
        return None;
    }
    let stamps: Option<Vec<f64>> = dataset.rows.iter().map(|r| r.timestamp_ms).collect();
    let stamps = stamps.filter(|s| !s.is_empty())?;
    let chosen_load = config.load_chosen;
    if chosen_load {
        reporter.line(&tr(Msg::DatasetTimestampsIgnored, &[]));
        return None;
    }
    Some(stamps)
}

/// What is read from local files before anything else (so that a bad file is one line before
/// the server is even asked): the dataset and the tokenizer file.
pub struct Files {
    dataset: Option<(Dataset, String)>,
    tokenizer: Option<tokens::Selected>,
}

pub async fn read_files(config: &RunConfig) -> Result<Files, UsageError> {
    let plan = &config.prompts;
    let dataset = match &plan.dataset {
        Some(d) => Some(load_dataset(d).await?),
        None => None,
    };
    let tokenizer = match &plan.tokenizer {
        Some(path) => Some(tokens::select_with_tokenizer_file(path, tokens::candidates()).map_err(UsageError)?),
        None => None,
    };
    Ok(Files { dataset, tokenizer })
}

pub async fn build(config: &RunConfig, model: &str, reporter: &Reporter, files: Files) -> Result<Built, UsageError> {
    for notice in &config.notices {
        reporter.line(&tr(Msg::NoteLine, &[("note", notice)]));
    }
    let plan = &config.prompts;
    let base = spec(config, model, Arc::new(filler(config)));
    let dataset = files.dataset.map(|(dataset, line)| {
        reporter.line(&line);
        dataset
    });
    let mooncake = dataset.as_ref().is_some_and(|d| d.format == DatasetFormat::Mooncake);
    let text = if plan.needs_token_text() || mooncake {
        let probe = Workload::new(base.clone());
        let text = Arc::new(calibrate(config, &probe, plan, files.tokenizer).await?);
        reporter.line(&describe_calibration(&text));
        Some(text)
    } else {
        None
    };
    let mut trace = None;
    let mut trace_whole = None;
    let source: Arc<dyn PromptSource> = match (dataset, &text) {
        (Some(dataset), _) => {
            let stamps = replay_times(config, &dataset, reporter);
            let mut source = dataset_source(config, dataset, text.clone())?;
            if let Some(stamps) = stamps {
                // Rows in time order; --num-prompts keeps the first ones.
                source.order.sort_by(|&a, &b| stamps[a].total_cmp(&stamps[b]));
                let speed = config.prompts.dataset.as_ref().map_or(1.0, |d| d.trace_speed);
                trace = Some(TraceTimes::from_ms(source.order.iter().map(|&i| stamps[i]), speed));
                source.replay = true;
            }
            // A shard sends row k (in send order) when k mod N is its index; a trace keeps the
            // whole trace's clock, so the shards' rows together replay it as recorded.
            if let Some(shard) = config.load.shard {
                let mut k = 0u64;
                source.order.retain(|_| {
                    k += 1;
                    shard.takes_row(k - 1)
                });
                trace_whole = trace.as_ref().map(|t| (t.len() as u64, t.mean_rate()));
                trace = trace.map(|t| t.rows_of(shard));
            }
            Arc::new(source)
        }
        (None, Some(text)) => Arc::new(TokenExact {
            text: text.clone(),
            isl: fit_isl(
                plan.isl.unwrap_or(tokens::LengthDist::fixed(256)),
                text,
                plan.prefix.is_some(),
                reporter,
            )?,
            osl: plan.osl,
            seed: plan.seed,
            same_prompt: config.same_prompt,
            prefix: plan
                .prefix
                .map(|p| PrefixGroups::new(text, p.groups, p.tokens, plan.seed)),
            multimodal_text: config.multimodal_text.clone(),
        }),
        (None, None) => Arc::new(filler(config)),
    };
    let mut spec = spec(config, model, source);
    if let Some(osl) = plan.osl {
        if plan.isl.is_none() && plan.dataset.is_none() {
            // The filler prompts keep -pp; the output length follows --osl.
            spec.source = Arc::new(WithOsl {
                inner: spec.source.clone(),
                osl,
                seed: plan.seed,
            });
        }
    }
    Ok(Built {
        workload: Arc::new(Workload::new(spec)),
        trace,
        trace_whole,
    })
}

/// Words a token-exact prompt needs at the least: its number, so prompts stay distinct.
const MIN_WORDS: u64 = 3;

/// The prompt lengths asked for, checked against what the server adds around a prompt: below
/// overhead + 3 words a prompt could not be built to its length, or would not be distinct.
fn fit_isl(
    mut isl: tokens::LengthDist,
    text: &TokenText,
    with_system: bool,
    reporter: &Reporter,
) -> Result<tokens::LengthDist, UsageError> {
    let overhead = match with_system {
        true => text.overhead_with_system.unwrap_or(text.overhead),
        false => text.overhead,
    };
    let floor = overhead + MIN_WORDS;
    let short = |flag: &str, n: u64| {
        let system = if with_system {
            tr(Msg::IslWithSystem, &[])
        } else {
            String::new()
        };
        UsageError(tr(
            Msg::IslTooShort,
            &[
                ("flag", &flag),
                ("n", &n),
                ("overhead", &overhead),
                ("system", &system),
                ("floor", &floor),
            ],
        ))
    };
    if isl.mean < floor {
        return Err(short("--isl", isl.mean));
    }
    if isl.std > 0.0 && isl.min < floor {
        if isl.min != 1 {
            return Err(short("--isl-min", isl.min));
        }
        // The default lower bound: raised to what can be built, and said.
        isl.min = floor;
        reporter.line(&tr(Msg::IslRaised, &[("floor", &floor), ("overhead", &overhead)]));
    }
    Ok(isl)
}

fn filler(config: &RunConfig) -> Filler {
    Filler {
        chars: config.prompt_chars,
        same_prompt: config.same_prompt,
        multimodal_text: config.multimodal_text.clone(),
    }
}

fn spec(config: &RunConfig, model: &str, source: Arc<dyn PromptSource>) -> WorkloadSpec {
    WorkloadSpec {
        model: model.to_string(),
        api: config.api,
        source,
        max_tokens: config.max_tokens,
        ignore_eos: config.ignore_eos,
        continuous_usage: config.continuous_usage,
        extra_body: config.extra_body.clone(),
        embed_batch: config.embed_batch,
        images: match &config.prompts.images {
            Some(synth) => Some(Images::Synth {
                width: synth.width,
                height: synth.height,
                format: crate::workload::synth_image::ImageFormat::parse(synth.format).unwrap_or_default(),
                per_request: synth.per_request,
                seed: config.prompts.seed,
            }),
            None => config.image.clone().map(|i| Images::File(Arc::new(i))),
        },
    }
}

/// `--osl` over another source's prompts.
struct WithOsl {
    inner: Arc<dyn PromptSource>,
    osl: tokens::LengthDist,
    seed: u64,
}

impl PromptSource for WithOsl {
    fn prompt(&self, test: TestKind, seq: u64) -> PromptSpec {
        let mut spec = self.inner.prompt(test, seq);
        if test != TestKind::Input {
            spec.max_tokens = Some(self.osl.sample_output(self.seed, seq));
        }
        spec
    }

    fn describe(&self) -> String {
        format!("{}, OSL {}", self.inner.describe(), self.osl.describe())
    }
}

/// The dataset and its header line.
async fn load_dataset(plan: &DatasetPlan) -> Result<(Dataset, String), UsageError> {
    let path = plan.path.clone();
    let opts = dataset::LoadOptions {
        format: plan.format,
        min_isl: plan.min_isl,
        max_isl: plan.max_isl,
        max_rows: if plan.shuffle { None } else { plan.num_prompts },
    };
    let loaded = tokio::task::spawn_blocking(move || dataset::load(&path, &opts))
        .await
        .map_err(|e| UsageError(tr(Msg::DatasetLoadFailed, &[("error", &e)])))?
        .map_err(UsageError)?;
    let secs = loaded.load_time.as_secs_f64().max(1e-6);
    let detected = if plan.format.is_none() {
        tr(Msg::DatasetDetected, &[])
    } else {
        String::new()
    };
    let mut line = tr(
        Msg::DatasetLine,
        &[
            ("path", &plan.path.display()),
            ("format", &loaded.format.name()),
            ("detected", &detected),
            ("rows", &loaded.rows.len()),
            ("secs", &format!("{secs:.2}")),
            ("mbps", &format!("{:.0}", loaded.bytes as f64 / 1e6 / secs)),
        ],
    );
    if loaded.skipped > 0 {
        line.push_str(&tr(
            Msg::DatasetSkipped,
            &[
                ("n", &loaded.skipped),
                ("first", &loaded.first_skip_reason.as_deref().unwrap_or("?")),
            ],
        ));
    }
    if loaded.filtered > 0 {
        line.push_str(&tr(Msg::DatasetFiltered, &[("n", &loaded.filtered)]));
    }
    Ok((loaded, line))
}

fn dataset_source(
    config: &RunConfig,
    dataset: Dataset,
    text: Option<Arc<TokenText>>,
) -> Result<DatasetSource, UsageError> {
    let plan = config
        .prompts
        .dataset
        .as_ref()
        .expect("a dataset source has a dataset plan");
    let n = dataset.rows.len();
    let mut order: Vec<usize> = (0..n).collect();
    if plan.shuffle {
        let mut rng = SplitMix::new(config.prompts.seed ^ 0x5348_5546);
        for i in (1..n).rev() {
            order.swap(i, rng.below(i + 1));
        }
    }
    if let Some(k) = plan.num_prompts {
        order.truncate(k as usize);
    }
    // Only the rows that will be sent have their images read (a dataset may name thousands).
    let mut cache: std::collections::HashMap<String, Arc<str>> = std::collections::HashMap::new();
    let mut images = vec![Vec::new(); n];
    let mut sent: Vec<usize> = order.clone();
    sent.sort_unstable();
    sent.dedup();
    for index in sent {
        let row = &dataset.rows[index];
        let mut urls = Vec::with_capacity(row.images.len());
        for image in &row.images {
            if let Some(url) = cache.get(image) {
                urls.push(url.clone());
                continue;
            }
            let url: Arc<str> =
                if image.starts_with("data:") || image.starts_with("http://") || image.starts_with("https://") {
                    Arc::from(image.as_str())
                } else {
                    // The dataset reader already resolved it against the dataset's folder.
                    ImageData::load(std::path::Path::new(image))
                        .map_err(|e| UsageError(tr(Msg::DatasetRowError, &[("row", &row.row), ("error", &e)])))?
                        .data_url_arc()
                };
            cache.insert(image.clone(), url.clone());
            urls.push(url);
        }
        images[index] = urls;
    }
    Ok(DatasetSource {
        dataset,
        order,
        text: text.unwrap_or_else(|| Arc::new(TokenText::assumed())),
        default_max_tokens: config.max_tokens.into(),
        images,
        osl: config.prompts.osl,
        seed: config.prompts.seed,
        replay: false,
        shuffled: plan.shuffle,
        asked: Default::default(),
    })
}

/// How the server counts tokens, checked in the order the issue asks: a local tokenizer file,
/// the server's `/tokenize`, usage of probe requests.
async fn calibrate(
    config: &RunConfig,
    probe: &Workload,
    plan: &PromptPlan,
    from_file: Option<tokens::Selected>,
) -> Result<TokenText, UsageError> {
    let mut usage = UsageCounter::new(config, probe);
    let candidates = tokens::candidates();
    let mut method = LengthMethod::Usage;
    let selected = if let (Some(path), Some(selected)) = (&plan.tokenizer, from_file) {
        method = LengthMethod::TokenizerFile(path.display().to_string());
        Some(selected)
    } else if plan.length_probe == LengthProbe::Usage {
        None
    } else if let Some(mut tokenize) = Tokenize::probe(&config.endpoint, probe.model()).await {
        method = LengthMethod::TokenizeEndpoint(tokenize.url.clone());
        let selected = tokens::select(candidates.clone(), MAX_PROBES, &mut tokenize).await;
        match (selected, plan.length_probe) {
            (Ok(s), _) => Some(s),
            (Err(e), LengthProbe::Tokenize) => return Err(UsageError(format!("{}: {e}", tokenize.url))),
            (Err(_), _) => {
                method = LengthMethod::Usage;
                None
            }
        }
    } else if plan.length_probe == LengthProbe::Tokenize {
        return Err(UsageError(tr(
            Msg::NoTokenizeEndpoint,
            &[("url", &config.endpoint.root_url("/tokenize"))],
        )));
    } else {
        None
    };
    let (words, dropped, overhead, mut probes) = match selected {
        Some(s) => {
            // The text's tokens are known; the template's come from one usage count.
            let anchor = s.good.first().cloned().unwrap_or_else(|| " the".into());
            let overhead = usage
                .count(anchor.repeat(16), None)
                .await
                .ok()
                .map(|n| n.saturating_sub(16));
            (s.good, s.dropped, overhead, s.probes + 1)
        }
        None => match tokens::select(candidates.clone(), MAX_PROBES, &mut usage).await {
            Ok(s) => (s.good, s.dropped, Some(s.overhead), s.probes),
            Err(e) if usage.no_usage => {
                let _ = e;
                method = LengthMethod::Assumed;
                (candidates, Vec::new(), None, usage.probes)
            }
            Err(e) => return Err(UsageError(tr(Msg::NoTokenExactPrompts, &[("error", &e)]))),
        },
    };
    if words.len() < 16 {
        return Err(UsageError(tr(Msg::TooFewOneTokenWords, &[("n", &words.len())])));
    }
    let mut text = TokenText::from_words(words, overhead.unwrap_or(0), method);
    text.dropped = dropped;
    text.overhead_unknown = overhead.is_none();
    let chat = config.api == ApiKind::Chat;
    if plan.prefix.is_some() && chat && overhead.is_some() {
        let anchor = text.text(16, None, 1);
        if let Ok(n) = usage.count(anchor.clone(), Some(anchor)).await {
            text.overhead_with_system = Some(n.saturating_sub(32));
            probes += 1;
        }
    }
    text.probes = probes;
    Ok(text)
}

fn describe_calibration(text: &TokenText) -> String {
    if text.method == LengthMethod::Assumed {
        return tr(Msg::PromptLengthsAssumed, &[("words", &text.word_count())]);
    }
    let adds = match text.overhead_unknown {
        true => tr(Msg::PromptOverheadUnknown, &[]),
        false => tr(Msg::PromptOverhead, &[("n", &text.overhead)]),
    };
    let system = text
        .overhead_with_system
        .map(|sys| tr(Msg::PromptOverheadSystem, &[("n", &sys)]))
        .unwrap_or_default();
    let dropped = if text.dropped.is_empty() {
        String::new()
    } else {
        tr(Msg::PromptWordsDropped, &[("n", &text.dropped.len())])
    };
    tr(
        if text.probes == 1 {
            Msg::PromptLengthsExactOneProbe
        } else {
            Msg::PromptLengthsExact
        },
        &[
            ("method", &text.method.describe()),
            ("words", &text.word_count()),
            ("adds", &adds),
            ("system", &system),
            ("probes", &text.probes),
            ("dropped", &dropped),
        ],
    )
}

/// Counts prompt tokens with probe requests: `usage.prompt_tokens` of a one-token request.
struct UsageCounter<'a> {
    client: Client,
    probe: &'a Workload,
    test: TestKind,
    probes: u32,
    no_usage: bool,
}

impl<'a> UsageCounter<'a> {
    fn new(config: &RunConfig, probe: &'a Workload) -> Self {
        let mut endpoint = config.endpoint.clone();
        endpoint.add_header(PROBE_HEADER, "1");
        let timeouts = Timeouts {
            request: Some(config.timeouts.request.unwrap_or(PROBE_TIMEOUT)),
            ..config.timeouts
        };
        Self {
            client: Client::new(Arc::new(endpoint), timeouts),
            probe,
            test: TestKind::Input,
            probes: 0,
            no_usage: false,
        }
    }

    async fn count(&mut self, text: String, system: Option<String>) -> Result<u64, String> {
        let spec = PromptSpec {
            text,
            system: system.map(Arc::from),
            ..PromptSpec::default()
        };
        let built = self.probe.build_spec(self.test, &spec);
        let outgoing = Outgoing {
            path: self.probe.path(self.test),
            body: built.body,
            estimated_prompt_tokens: 0,
            max_tokens: 1,
            ..Outgoing::default()
        };
        let mut rec = RequestRecord::default();
        self.probes += 1;
        self.client.execute(&outgoing, Instant::now(), &mut rec).await;
        if !rec.ok {
            return Err(tr(
                Msg::LengthProbeFailed,
                &[
                    ("class", &rec.error.map(|c| c.key()).unwrap_or_default()),
                    ("message", &rec.error_message.as_deref().unwrap_or("")),
                ],
            ));
        }
        if rec.tokens_estimated || rec.prompt_tokens == 0 {
            self.no_usage = true;
            return Err(tr(Msg::NoUsageCounts, &[]));
        }
        Ok(rec.prompt_tokens)
    }
}

impl TokenCounter for UsageCounter<'_> {
    async fn count(&mut self, text: String) -> Result<u64, String> {
        UsageCounter::count(self, text, None).await
    }
}

impl TokenCounter for Tokenize<'_> {
    async fn count(&mut self, text: String) -> Result<u64, String> {
        Tokenize::count(self, text).await
    }
}

/// The server's tokenizer endpoint (vLLM, llama.cpp and TGI serve `POST /tokenize` at the root).
struct Tokenize<'a> {
    endpoint: &'a Endpoint,
    model: String,
    url: String,
}

impl<'a> Tokenize<'a> {
    /// The endpoint, when it answers a count for a test text.
    async fn probe(endpoint: &'a Endpoint, model: &str) -> Option<Tokenize<'a>> {
        let t = Tokenize {
            endpoint,
            model: model.to_string(),
            url: endpoint.root_url("/tokenize"),
        };
        t.count(" the the".into()).await.ok().map(|_| t)
    }

    async fn count(&self, text: String) -> Result<u64, String> {
        // One body for every engine: vLLM reads `prompt`, llama.cpp `content`, TGI `inputs`.
        let body = serde_json::json!({
            "model": self.model,
            "prompt": text,
            "content": text,
            "inputs": text,
            "add_special_tokens": false,
            "add_special": false,
        });
        let body = Bytes::from(serde_json::to_vec(&body).expect("JSON"));
        let (status, answer) = post_root_json(self.endpoint, "/tokenize", body, PROBE_TIMEOUT)
            .await
            .map_err(|e| e.to_string())?;
        if status != 200 {
            return Err(tr(Msg::TokenizeStatus, &[("status", &status)]));
        }
        parse_tokenize(&answer).ok_or_else(|| tr(Msg::TokenizeNotAList, &[]))
    }
}

/// Token count from a `/tokenize` answer: vLLM `{"count": n, "tokens": […]}`, llama.cpp
/// `{"tokens": […]}`, TGI `[{"id": …}, …]`.
pub fn parse_tokenize(body: &[u8]) -> Option<u64> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    if let Some(count) = value.get("count").and_then(|c| c.as_u64()) {
        return Some(count);
    }
    if let Some(tokens) = value.get("tokens").and_then(|t| t.as_array()) {
        return Some(tokens.len() as u64);
    }
    value.as_array().map(|a| a.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenize_answers_of_every_engine() {
        let cases: [(&str, Option<u64>); 5] = [
            (r#"{"count": 3, "max_model_len": 8, "tokens": [1, 2, 3]}"#, Some(3)),
            (r#"{"tokens": [5, 6]}"#, Some(2)),
            (r#"[{"id": 1, "text": "a"}, {"id": 2, "text": "b"}]"#, Some(2)),
            (r#"{"error": "no"}"#, None),
            ("not json", None),
        ];
        for (body, expected) in cases {
            assert_eq!(parse_tokenize(body.as_bytes()), expected, "{body}");
        }
    }
}
