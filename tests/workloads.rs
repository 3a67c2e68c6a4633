//! Workloads against the simulator over loopback TCP: token-exact prompt and output lengths
//! (`--isl`/`--osl`, by `/tokenize`, usage calibration or a local tokenizer.json), datasets
//! (ShareGPT, JSONL, Mooncake traces replayed at their timestamps), shared-prefix groups,
//! multi-turn sessions, synthetic images, and the workload flags' usage errors.
//!
//! Table-driven where cases share a scaffold; table tests collect every failed check before
//! failing, so one run shows all that is wrong. Timing tolerances are wide enough for a noisy
//! 2-core machine.

mod common;

use common::*;
use llm_bench::sim::SimConfig;
use llm_bench::workload::tokens::WORDS;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

// ---------------------------------------------------------------------------------------------
// Helpers

/// A command line's arguments, written as one string.
fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/workloads/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// The run's records in request order.
fn by_id(s: &Scratch) -> Vec<Value> {
    let mut recs = s.records();
    recs.sort_by_key(|r| whole(&r["id"]));
    recs
}

fn whole(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a whole number: {v}"))
}

/// The first step of the run's summary.
fn step(s: &Scratch) -> Value {
    s.summary()["steps"][0].clone()
}

/// The first line of `stdout` that starts (after indentation) with `prefix`.
fn line<'a>(stdout: &'a str, prefix: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.trim_start().starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{stdout}"))
}

/// The step's length warnings (none when the field is absent).
fn warnings(step: &Value) -> Vec<String> {
    step["length_warnings"]
        .as_array()
        .map(|a| a.iter().map(|w| w.as_str().unwrap_or_default().to_string()).collect())
        .unwrap_or_default()
}

/// Share (percent) of records whose `prompt_tokens` is within one token of `requested_isl`.
fn isl_within_one_pct(recs: &[Value]) -> f64 {
    let near = recs
        .iter()
        .filter(|r| whole(&r["prompt_tokens"]).abs_diff(whole(&r["requested_isl"])) <= 1)
        .count();
    near as f64 / recs.len().max(1) as f64 * 100.0
}

/// Soft checks: every failed one is kept, and the test fails at the end with all of them.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.0.push(what());
        }
    }

    fn finish(self) {
        assert!(
            self.0.is_empty(),
            "{} check(s) failed:\n- {}",
            self.0.len(),
            self.0.join("\n- ")
        );
    }
}

/// A Hugging Face tokenizer.json with a byte-level pre-tokenizer whose vocabulary holds
/// "Ġ" + word for every word of llm-bench's prompt list that `keep` accepts.
fn write_tokenizer(path: &Path, keep: impl Fn(&str) -> bool) {
    let mut vocab = serde_json::Map::new();
    for (i, byte) in ["!", "\"", "#", "a", "b", "c"].iter().enumerate() {
        vocab.insert((*byte).to_string(), json!(i));
    }
    for w in WORDS.iter().filter(|w| keep(w)) {
        let n = vocab.len();
        vocab.entry(format!("\u{120}{w}")).or_insert(json!(n));
    }
    let tokenizer = json!({
        "version": "1.0",
        "added_tokens": [],
        "normalizer": null,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "vocab": vocab, "merges": []}
    });
    std::fs::write(path, serde_json::to_string_pretty(&tokenizer).unwrap()).unwrap();
}

/// The simulator's rule: a word of at most 8 letters is one token.
fn one_sim_token(word: &str) -> bool {
    word.len() <= 8
}

// ---------------------------------------------------------------------------------------------
// 1. ISL: token-exact prompts, by each way of counting

#[test]
fn isl_is_token_exact_by_every_counting_method() {
    let dir = Scratch::new();
    let tok = dir.path("tokenizer.json");
    write_tokenizer(&tok, one_sim_token);
    let tok = tok.display().to_string();
    let no_tokenize = || SimConfig {
        no_tokenize: true,
        ..fast_sim()
    };
    // (name, simulator, extra args, what the header must name). The file wins over /tokenize.
    type Case<'a> = (&'a str, SimConfig, Vec<&'a str>, Box<dyn Fn(&Sim) -> String + 'a>);
    let cases: Vec<Case<'_>> = vec![
        (
            "the server's /tokenize",
            fast_sim(),
            vec![],
            Box::new(|sim: &Sim| format!("the server's tokenizer ({}/tokenize)", sim.url.trim_end_matches("/v1"))),
        ),
        (
            "usage calibration",
            no_tokenize(),
            vec![],
            Box::new(|_: &Sim| "calibration from the server's usage counts".to_string()),
        ),
        (
            "a tokenizer.json",
            fast_sim(),
            vec!["--tokenizer", &tok],
            Box::new(|_: &Sim| format!("tokenizer file {tok}")),
        ),
    ];
    let mut p = Problems::default();
    for (name, config, extra, method) in cases {
        let sim = Sim::start(config);
        let mut args = vec![
            "-o",
            "-st",
            "2",
            "-et",
            "2",
            "--requests",
            "12",
            "--isl",
            "100",
            "--osl",
            "4",
        ];
        args.extend(extra);
        let (s, stdout) = run_ok(&sim, &args);
        let header = line(&stdout, "Prompt lengths: token-exact via ");
        let expected = method(&sim);
        p.check(header.contains(&format!("token-exact via {expected}")), || {
            format!("{name}: header should name {expected:?}: {header}")
        });
        let recs = by_id(&s);
        p.check(recs.len() == 12, || format!("{name}: {} records, not 12", recs.len()));
        p.check(recs.iter().all(|r| r["requested_isl"] == 100), || {
            format!("{name}: requested_isl should be 100 in every record")
        });
        let near = isl_within_one_pct(&recs);
        p.check(near >= 95.0, || {
            format!("{name}: only {near:.0}% of prompts within ±1 token")
        });
        let st = step(&s);
        let isl = &st["isl"];
        p.check(isl["requests"] == 12, || format!("{name}: isl.requests: {isl}"));
        p.check(isl["within_2_percent_pct"].as_f64() == Some(100.0), || {
            format!("{name}: isl.within_2_percent_pct: {isl}")
        });
        p.check(isl["requested_mean"].as_f64() == Some(100.0), || {
            format!("{name}: isl.requested_mean: {isl}")
        });
        p.check(warnings(&st).is_empty(), || {
            format!("{name}: no length warning expected: {:?}", warnings(&st))
        });
        p.check(stdout.contains("ISL asked 100, got"), || {
            format!("{name}: no ISL proof line:\n{stdout}")
        });
    }
    p.finish();
}

#[test]
fn isl_and_osl_spreads_stay_within_their_bounds_and_are_repeatable() {
    let sim = Sim::start(fast_sim());
    let args = [
        "-o",
        "-st",
        "2",
        "-et",
        "2",
        "--requests",
        "30",
        "--isl",
        "100",
        "--isl-std",
        "30",
        "--isl-min",
        "60",
        "--isl-max",
        "140",
        "--osl",
        "8",
        "--osl-std",
        "3",
        "--osl-min",
        "4",
        "--osl-max",
        "12",
        "--ignore-eos",
    ];
    let (s, stdout) = run_ok(&sim, &args);
    assert!(stdout.contains("ISL 100±30 in [60, 140] tokens"), "{stdout}");
    let recs = by_id(&s);
    assert_eq!(recs.len(), 30);
    let isl: Vec<u64> = recs.iter().map(|r| whole(&r["requested_isl"])).collect();
    let osl: Vec<u64> = recs.iter().map(|r| whole(&r["requested_osl"])).collect();
    assert!(isl.iter().all(|n| (60..=140).contains(n)), "{isl:?}");
    assert!(osl.iter().all(|n| (4..=12).contains(n)), "{osl:?}");
    assert!(isl.iter().collect::<BTreeSet<_>>().len() >= 8, "ISL varies: {isl:?}");
    assert!(osl.iter().collect::<BTreeSet<_>>().len() >= 3, "OSL varies: {osl:?}");
    let mean = isl.iter().sum::<u64>() as f64 / isl.len() as f64;
    assert!((75.0..=125.0).contains(&mean), "mean ISL {mean}");
    // Each prompt is what it asked for, each answer exactly its max_tokens (--ignore-eos).
    assert!(isl_within_one_pct(&recs) >= 95.0, "{recs:?}");
    for r in &recs {
        assert_eq!(r["output_tokens"], r["requested_osl"], "{r}");
    }
    let st = step(&s);
    assert_eq!(st["isl"]["within_2_percent_pct"].as_f64(), Some(100.0), "{}", st["isl"]);
    assert_eq!(st["osl"]["within_1_token_pct"].as_f64(), Some(100.0), "{}", st["osl"]);
    assert_eq!(whole(&st["isl"]["min"]), *isl.iter().min().unwrap());
    assert_eq!(whole(&st["isl"]["max"]), *isl.iter().max().unwrap());
    // The same seed asks for the same lengths.
    let (again, _) = run_ok(&sim, &args);
    let isl_again: Vec<u64> = by_id(&again).iter().map(|r| whole(&r["requested_isl"])).collect();
    assert_eq!(isl, isl_again, "--seed 1 twice");
}

#[test]
fn a_tokenizer_file_that_disagrees_with_the_server_gives_an_isl_warning() {
    // All words, the long ones included, which the simulator splits into several tokens.
    let sim = Sim::start(fast_sim());
    let dir = Scratch::new();
    let tok = dir.path("tokenizer.json");
    write_tokenizer(&tok, |_| true);
    let tok = tok.display().to_string();
    let (s, stdout) = run_ok(
        &sim,
        &[
            "-o",
            "-st",
            "2",
            "-et",
            "2",
            "--requests",
            "20",
            "--isl",
            "100",
            "--osl",
            "2",
            "--tokenizer",
            &tok,
        ],
    );
    assert!(line(&stdout, "Prompt lengths:").contains("tokenizer file"), "{stdout}");
    let st = step(&s);
    let isl = &st["isl"];
    assert!(num(&isl["mean"]) > 102.0, "the server counts more: {isl}");
    assert!(num(&isl["within_2_percent_pct"]) < 100.0, "{isl}");
    let w = warnings(&st);
    assert!(
        w.iter().any(|w| w.starts_with("ISL:") && w.contains("adds more")),
        "{w:?}"
    );
    assert!(stdout.contains("warning: ISL:"), "{stdout}");
}

// ---------------------------------------------------------------------------------------------
// 2. OSL: end of sequence, --ignore-eos, a server's output cap

#[test]
fn osl_shortfalls_are_explained_and_ignore_eos_gives_exact_lengths() {
    let eos5 = || SimConfig {
        eos_after: Some(5),
        ..fast_sim()
    };
    let capped = SimConfig {
        max_output: Some(8),
        ..fast_sim()
    };
    // (name, simulator, extra args, expected mean output, expected finish_reason, warning text)
    type Case<'a> = (&'a str, SimConfig, Vec<&'a str>, f64, &'a str, Option<&'a str>);
    let cases: Vec<Case<'_>> = vec![
        ("eos after 5", eos5(), vec![], 5.0, "stop", Some("--ignore-eos")),
        (
            "eos after 5, --ignore-eos",
            eos5(),
            vec!["--ignore-eos"],
            16.0,
            "length",
            None,
        ),
        ("max_output 8", capped, vec![], 8.0, "length", Some("capped")),
    ];
    let mut p = Problems::default();
    for (name, config, extra, mean, finish, warning) in cases {
        let sim = Sim::start(config);
        let mut args = vec![
            "-o",
            "-st",
            "2",
            "-et",
            "2",
            "--requests",
            "6",
            "-pp",
            "40",
            "--osl",
            "16",
        ];
        args.extend(extra);
        let (s, stdout) = run_ok(&sim, &args);
        let recs = by_id(&s);
        p.check(recs.iter().all(|r| r["requested_osl"] == 16), || {
            format!("{name}: requested_osl should be 16 everywhere")
        });
        let outputs: Vec<u64> = recs.iter().map(|r| whole(&r["output_tokens"])).collect();
        p.check(outputs.iter().all(|&n| n as f64 == mean), || {
            format!("{name}: output_tokens {outputs:?}, expected {mean} each")
        });
        let reasons: Vec<&Value> = recs.iter().map(|r| &r["finish_reason"]).collect();
        p.check(reasons.iter().all(|r| *r == finish), || {
            format!("{name}: records' finish_reason {reasons:?}, expected {finish:?}")
        });
        let st = step(&s);
        let osl = &st["osl"];
        p.check((num(&osl["mean"]) - mean).abs() < 0.5, || {
            format!("{name}: osl.mean: {osl}")
        });
        p.check(osl["requested_mean"].as_f64() == Some(16.0), || {
            format!("{name}: osl.requested_mean: {osl}")
        });
        p.check(osl["finish_reasons"][finish].as_u64() == Some(6), || {
            format!("{name}: osl.finish_reasons should be {{{finish}: 6}}: {osl}")
        });
        let w = warnings(&st);
        match warning {
            None => {
                p.check(w.is_empty(), || format!("{name}: no warning expected: {w:?}"));
                p.check(osl["within_1_token_pct"].as_f64() == Some(100.0), || {
                    format!("{name}: {osl}")
                });
            }
            Some(text) => {
                p.check(w.iter().any(|w| w.starts_with("OSL:") && w.contains(text)), || {
                    format!("{name}: a length warning mentioning {text:?} expected: {w:?}")
                });
                p.check(stdout.contains("warning: OSL:") && stdout.contains(text), || {
                    format!("{name}: console warning mentioning {text:?} expected")
                });
            }
        }
    }
    p.finish();
}

// ---------------------------------------------------------------------------------------------
// 3. Datasets: ShareGPT, JSONL, --num-prompts, --shuffle

#[test]
fn sharegpt_rows_are_sent_in_file_order_and_a_bad_row_is_counted() {
    let sim = Sim::start(fast_sim());
    let path = fixture("sharegpt.json");
    let (s, stdout) = run_ok(
        &sim,
        &["-o", "-st", "1", "-et", "1", "--requests", "6", "--dataset", &path],
    );
    let header = line(&stdout, "Dataset ");
    assert!(header.contains("sharegpt (detected), 3 rows"), "{header}");
    assert!(
        header.contains("1 bad rows skipped") && header.contains("element 1"),
        "{header}"
    );
    // Output lengths: the estimate (a token per 4 characters) of each row's first gpt reply.
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let reply_tokens = |row: usize| -> u64 {
        let turns = file[row]["conversations"].as_array().unwrap();
        let reply = turns.iter().find(|t| t["from"] == "gpt").unwrap()["value"]
            .as_str()
            .unwrap();
        (reply.chars().count() as u64).div_ceil(4)
    };
    let recs = by_id(&s);
    let rows: Vec<u64> = recs.iter().map(|r| whole(&r["row"])).collect();
    assert_eq!(rows, [0, 2, 3, 0, 2, 3], "the bad row 1 is never sent; the rows cycle");
    let mut prompt_by_row: BTreeMap<u64, u64> = BTreeMap::new();
    for r in &recs {
        let row = whole(&r["row"]);
        assert_eq!(whole(&r["requested_osl"]), reply_tokens(row as usize), "{r}");
        assert_eq!(r["output_tokens"], r["requested_osl"], "{r}");
        assert!(r.get("requested_isl").is_none(), "text rows ask no exact length: {r}");
        let prompt = whole(&r["prompt_tokens"]);
        assert_eq!(
            *prompt_by_row.entry(row).or_insert(prompt),
            prompt,
            "a row is the same prompt each time"
        );
    }
}

#[test]
fn jsonl_rows_of_each_kind_keep_their_output_lengths() {
    let sim = Sim::start(fast_sim());
    let path = fixture("rows.jsonl");
    let (s, stdout) = run_ok(
        &sim,
        &[
            "-o",
            "-st",
            "1",
            "-et",
            "1",
            "--requests",
            "8",
            "-tg",
            "9",
            "--dataset",
            &path,
        ],
    );
    assert!(
        line(&stdout, "Dataset ").contains("jsonl (detected), 4 rows"),
        "{stdout}"
    );
    let recs = by_id(&s);
    let rows: Vec<u64> = recs.iter().map(|r| whole(&r["row"])).collect();
    assert_eq!(rows, [0, 1, 2, 3, 0, 1, 2, 3]);
    // output_tokens of rows 0–2; row 3 has none and gets -tg.
    let want = BTreeMap::from([(0u64, 3u64), (1, 5), (2, 7), (3, 9)]);
    let mut prompt = BTreeMap::new();
    for r in &recs {
        let row = whole(&r["row"]);
        assert_eq!(whole(&r["requested_osl"]), want[&row], "{r}");
        assert_eq!(r["output_tokens"], r["requested_osl"], "{r}");
        prompt.insert(row, whole(&r["prompt_tokens"]));
    }
    // Rows 0 and 2 ask the same 7-token question; row 2 also sends its system message
    // "Be brief." (3 tokens + 4 of the simulator's chat template per message).
    assert_eq!(prompt[&2], prompt[&0] + 7, "{prompt:?}");
    // `text` rows are prompts like `prompt` rows.
    assert_eq!(prompt[&1], prompt[&0], "{prompt:?}");
}

#[test]
fn num_prompts_and_shuffle_choose_the_rows() {
    let sim = Sim::start(fast_sim());
    let path = fixture("rows.jsonl");
    let rows_of = |extra: &[&str]| -> (Vec<u64>, String) {
        let mut args = vec![
            "-o",
            "-st",
            "1",
            "-et",
            "1",
            "--requests",
            "8",
            "-tg",
            "2",
            "--dataset",
            &path,
        ];
        args.extend(extra);
        let (s, stdout) = run_ok(&sim, &args);
        (by_id(&s).iter().map(|r| whole(&r["row"])).collect(), stdout)
    };
    // The first two rows, cycled.
    let (rows, stdout) = rows_of(&["--num-prompts", "2"]);
    assert_eq!(rows, [0, 1, 0, 1, 0, 1, 0, 1], "{stdout}");
    // Shuffled: each pass over the rows is a permutation, the same for the same seed.
    let (one, stdout) = rows_of(&["--shuffle", "--seed", "1"]);
    let first: BTreeSet<u64> = one[..4].iter().copied().collect();
    assert_eq!(first, BTreeSet::from([0, 1, 2, 3]), "{one:?}");
    assert_eq!(one[..4], one[4..], "the order repeats: {one:?}");
    assert_eq!(rows_of(&["--shuffle", "--seed", "1"]).0, one, "same seed, same order");
    let others: Vec<Vec<u64>> = ["2", "3", "4"]
        .iter()
        .map(|seed| rows_of(&["--shuffle", "--seed", seed]).0)
        .collect();
    assert!(
        others.iter().any(|o| *o != one),
        "another seed changes the order: {one:?} {others:?}"
    );
    // Sampled: two rows of the four, cycled.
    let (two, _) = rows_of(&["--shuffle", "--seed", "1", "--num-prompts", "2"]);
    assert_eq!(two.iter().collect::<BTreeSet<_>>().len(), 2, "{two:?}");
    assert_eq!(two[..2], two[2..4], "{two:?}");
    // The header says the order was shuffled, not "file order".
    let header = line(&stdout, "Model ");
    assert!(
        !header.contains("file order"),
        "a shuffled run's header says file order: {header}"
    );
}

// ---------------------------------------------------------------------------------------------
// 4. A Mooncake trace, replayed at its timestamps

const MOONCAKE_INPUT: [u64; 6] = [600, 700, 300, 1024, 520, 200];

#[test]
fn a_mooncake_trace_is_replayed_on_time_with_exact_lengths() {
    let sim = Sim::start(fast_sim());
    let path = fixture("mooncake.jsonl");
    let (s, stdout) = run_ok(&sim, &["-o", "-st", "1", "-et", "1", "--dataset", &path]);
    assert!(
        line(&stdout, "Dataset ").contains("mooncake (detected), 6 rows"),
        "{stdout}"
    );
    assert!(
        line(&stdout, "Prompt lengths:").contains("the server's tokenizer"),
        "{stdout}"
    );
    let summary = s.summary();
    assert_eq!(summary["steps"].as_array().unwrap().len(), 1, "one open-loop step");
    let st = &summary["steps"][0];
    let recs = by_id(&s);
    assert_eq!(recs.len(), 6);
    let t0 = num(&recs[0]["intended_s"]);
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(whole(&r["row"]), i as u64, "{r}");
        let offset = num(&r["intended_s"]) - t0;
        assert!(
            (offset - i as f64 * 0.1).abs() < 0.002,
            "row {i} due at +{offset:.4} s: {r}"
        );
        assert_eq!(whole(&r["requested_isl"]), MOONCAKE_INPUT[i], "{r}");
        let got = whole(&r["prompt_tokens"]);
        assert!(
            got.abs_diff(MOONCAKE_INPUT[i]) <= 1,
            "row {i}: {got} prompt tokens: {r}"
        );
        assert_eq!(r["requested_osl"], 4, "{r}");
        assert_eq!(r["output_tokens"], 4, "{r}");
    }
    let late = &st["send_lateness_ms"];
    assert!(num(&late["p99"]) < 5.0, "sent within 5 ms of the trace's times: {late}");
    assert_eq!(st["isl"]["within_2_percent_pct"].as_f64(), Some(100.0), "{}", st["isl"]);

    // Twice as fast: the same requests over half the time.
    let (fast, _) = run_ok(
        &sim,
        &["-o", "-st", "1", "-et", "1", "--dataset", &path, "--trace-speed", "2"],
    );
    let recs = by_id(&fast);
    assert_eq!(recs.len(), 6);
    let span = num(&recs[5]["intended_s"]) - num(&recs[0]["intended_s"]);
    assert!(
        (span - 0.25).abs() < 0.005,
        "--trace-speed 2: span {span:.4} s, not 0.25"
    );
}

#[test]
fn a_trace_row_sharing_blocks_with_an_earlier_one_hits_the_prefix_cache() {
    let sim = Sim::start(fast_sim());
    let path = fixture("mooncake.jsonl");
    let (s, _) = run_ok(&sim, &["-o", "-st", "1", "-et", "1", "--dataset", &path]);
    let recs = by_id(&s);
    // Rows 1, 3 and 4 start with row 0's first block (512 tokens); row 3 is all of row 0's
    // blocks. Rows 2 and 5 share nothing.
    let cached: Vec<Option<u64>> = recs.iter().map(|r| r["cached_tokens"].as_u64()).collect();
    assert!(
        cached.iter().all(Option::is_some),
        "records carry no cached_tokens (the simulator sends usage.prompt_tokens_details.cached_tokens): {cached:?}"
    );
    let cached: Vec<u64> = cached.into_iter().map(Option::unwrap).collect();
    for i in [1, 3, 4] {
        assert!(cached[i] >= 512, "row {i} shares a 512-token block: {cached:?}");
    }
    assert!(cached[3] >= 576, "row 3 shares row 0's whole prompt text: {cached:?}");
    for i in [0, 2, 5] {
        assert!(cached[i] < 512, "row {i} shares no block: {cached:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// 5. Shared-prefix groups

#[test]
fn prefix_groups_share_a_system_prompt_and_compare_first_and_later() {
    let sim = Sim::start(fast_sim());
    let (s, stdout) = run_ok(
        &sim,
        &words("-o -st 2 -et 2 --requests 10 --isl 32 --osl 4 --prefix-groups 2 --prefix-tokens 256"),
    );
    assert!(stdout.contains("2 shared prefixes of 256 tokens"), "{stdout}");
    let recs = by_id(&s);
    assert_eq!(recs.len(), 10);
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(whole(&r["prefix_group"]), i as u64 % 2, "{r}");
        assert_eq!(r["prefix_first"] == true, i < 2, "only the first of each group: {r}");
        assert_eq!(r["requested_isl"], 288, "ISL = prefix + --isl: {r}");
    }
    assert!(isl_within_one_pct(&recs) >= 95.0, "{recs:?}");
    let st = step(&s);
    let pc = &st["prefix_cache"];
    assert_eq!(pc["first_requests"], 2, "{pc}");
    assert_eq!(pc["later_requests"], 8, "{pc}");
    assert!(num(&pc["ttft_first_ms"]["p50"]) > 0.0, "{pc}");
    assert!(num(&pc["ttft_later_ms"]["p50"]) > 0.0, "{pc}");
    assert!(
        line(&stdout, "Shared prefixes").contains("for the first in each group"),
        "{stdout}"
    );
}

#[test]
fn prefix_cache_reuse_is_measured_from_cached_tokens() {
    let args = [
        "-o",
        "-st",
        "2",
        "-et",
        "2",
        "--requests",
        "10",
        "--isl",
        "32",
        "--osl",
        "4",
        "--prefix-groups",
        "2",
        "--prefix-tokens",
        "256",
    ];
    let mut p = Problems::default();
    let sim = Sim::start(fast_sim());
    let (s, stdout) = run_ok(&sim, &args);
    let recs = by_id(&s);
    let later: Vec<&Value> = recs.iter().filter(|r| r["prefix_first"] != true).collect();
    let cached: Vec<&Value> = later.iter().map(|r| &r["cached_tokens"]).collect();
    p.check(cached.iter().all(|c| c.as_u64().is_some_and(|n| n >= 256)), || {
        format!("later requests should carry cached_tokens ≥ 256 (the shared prefix): {cached:?}")
    });
    let pc = step(&s)["prefix_cache"].clone();
    p.check(pc["cached_pct_later"].as_f64().is_some_and(|x| x > 50.0), || {
        format!("prefix_cache.cached_pct_later should be > 50%: {pc}")
    });
    p.check(pc["cached_from"] == "usage.prompt_tokens_details.cached_tokens", || {
        format!("prefix_cache.cached_from: {pc}")
    });
    p.check(stdout.contains("the server reused"), || {
        format!("the console should say what the server reused:\n{stdout}")
    });
    // Without a prefix cache the OpenAI flavor says nothing about reuse.
    let cold = Sim::start(SimConfig {
        no_prefix_cache: true,
        ..fast_sim()
    });
    let (s, _) = run_ok(&cold, &args);
    let pc = step(&s)["prefix_cache"].clone();
    p.check(pc["later_requests"] == 8, || format!("no cache: {pc}"));
    p.check(pc["cached_pct_later"].is_null(), || {
        format!("no cache, no reuse figure: {pc}")
    });
    p.finish();
}

// ---------------------------------------------------------------------------------------------
// 6. Multi-turn sessions

const SESSION_ARGS: [&str; 15] = [
    "-o",
    "-st",
    "2",
    "-et",
    "2",
    "--requests",
    "6",
    "--isl",
    "40",
    "--osl",
    "6",
    "--turns",
    "3",
    "--think-time",
    "50ms",
];

#[test]
fn session_records_carry_their_session_and_turn() {
    let sim = Sim::start(fast_sim());
    let (s, stdout) = run_ok(&sim, &SESSION_ARGS);
    let recs = by_id(&s);
    assert!(!recs.is_empty());
    for r in &recs {
        assert!(r["session"].as_u64().is_some() && r["turn"].as_u64().is_some(), "{r}");
    }
    let turns = step(&s)["turns"].clone();
    assert!(turns.as_array().is_some_and(|t| !t.is_empty()), "{turns}");
    assert_eq!(turns[0]["turn"], 1, "{turns}");
    assert!(stdout.contains("sessions: turn 1:"), "{stdout}");
}

#[test]
fn sessions_send_their_history_turn_after_turn() {
    let sim = Sim::start(fast_sim());
    let (s, _) = run_ok(&sim, &SESSION_ARGS);
    let recs = by_id(&s);
    let mut sessions: BTreeMap<u64, Vec<&Value>> = BTreeMap::new();
    for r in &recs {
        sessions.entry(whole(&r["session"])).or_default().push(r);
    }
    let full: Vec<&Vec<&Value>> = sessions.values().filter(|t| t.len() == 3).collect();
    assert!(full.len() >= 2, "at least two whole sessions: {sessions:?}");
    for turns in &full {
        let numbers: Vec<u64> = turns.iter().map(|r| whole(&r["turn"])).collect();
        assert_eq!(numbers, [0, 1, 2], "{turns:?}");
        for pair in turns.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            let (pa, pb) = (whole(&a["prompt_tokens"]), whole(&b["prompt_tokens"]));
            let answer = whole(&a["output_tokens"]);
            // The next prompt holds the whole previous one, its answer and a new question.
            let growth = pb.saturating_sub(pa);
            assert!(pb > pa, "prompts grow turn by turn: {pa} → {pb}");
            assert!(
                growth >= answer && growth <= answer + 40 + 24,
                "growth {growth} vs the previous answer's {answer} tokens (+ a question of ≤40)"
            );
            // The think time passes between an answer and the next question.
            let a_end = num(&a["start_s"]) + num(&a["end_us"]) / 1e6;
            let gap = num(&b["start_s"]) - a_end;
            assert!(gap >= 0.045, "think time 50 ms, waited {:.1} ms", gap * 1000.0);
        }
    }
    let st = step(&s);
    let turns = st["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 3, "{turns:?}");
    let means: Vec<f64> = turns.iter().map(|t| num(&t["prompt_tokens_mean"])).collect();
    assert!(means[0] < means[1] && means[1] < means[2], "{means:?}");
    assert!(
        !warnings(&st).iter().any(|w| w.starts_with("ISL:")),
        "a growing history is not a wrong prompt length: {:?}",
        warnings(&st)
    );
}

// ---------------------------------------------------------------------------------------------
// 7. Synthetic images

#[test]
fn synthetic_images_are_made_per_request_in_either_format() {
    let sim = Sim::start(fast_sim());
    let run = |format: &str, per: &str| {
        run_ok(
            &sim,
            &[
                "-mm",
                "-st",
                "2",
                "-et",
                "2",
                "--requests",
                "4",
                "-tg",
                "3",
                "--image-size",
                "64x64",
                "--image-format",
                format,
                "--images-per-request",
                per,
            ],
        )
    };
    let mut p = Problems::default();
    for format in ["png", "jpeg"] {
        let (s, stdout) = run(format, "2");
        p.check(
            stdout.contains(&format!("2 64x64 {format} image(s) per multimodal request")),
            || format!("{format}: header:\n{stdout}"),
        );
        let recs = by_id(&s);
        let bytes: Vec<u64> = recs.iter().map(|r| r["image_bytes"].as_u64().unwrap_or(0)).collect();
        p.check(recs.len() == 4 && bytes.iter().all(|&b| b > 0), || {
            format!("{format}: image_bytes per record {bytes:?}")
        });
        p.check(bytes.iter().collect::<BTreeSet<_>>().len() > 1, || {
            format!("{format}: images differ per request, their sizes all equal: {bytes:?}")
        });
        let mean = bytes.iter().sum::<u64>() as f64 / bytes.len().max(1) as f64;
        let per_request = step(&s)["image_bytes_per_request"].as_f64();
        p.check(per_request.is_some_and(|x| (x - mean).abs() <= 1.0), || {
            format!("{format}: image_bytes_per_request {per_request:?}, records' mean {mean}")
        });
        // The simulator charges 256 prompt tokens per image part: one image fewer, 256 fewer.
        let (one, _) = run(format, "1");
        let two_tokens = whole(&recs[0]["prompt_tokens"]);
        let one_tokens = whole(&by_id(&one)[0]["prompt_tokens"]);
        p.check(two_tokens == one_tokens + 256, || {
            format!("{format}: 2 images {two_tokens} prompt tokens, 1 image {one_tokens}")
        });
        let one_bytes = by_id(&one)[0]["image_bytes"].as_u64().unwrap_or(0);
        p.check(one_bytes > 0 && one_bytes < bytes[0], || {
            format!("{format}: 1 image {one_bytes} bytes vs 2 images {}", bytes[0])
        });
    }
    p.finish();
}

// ---------------------------------------------------------------------------------------------
// 8. Usage errors: one line, exit code 2, no load

#[test]
fn workload_flag_mistakes_are_one_line_and_send_nothing() {
    let dir = Scratch::new();
    let bad_rows = dir.path("bad.jsonl");
    std::fs::write(&bad_rows, "{\"foo\": 1}\nnot json\n").unwrap();
    let blank = dir.path("blank.jsonl");
    std::fs::write(&blank, "  \n\n").unwrap();
    let mooncake_bad = dir.path("trace.jsonl");
    std::fs::write(
        &mooncake_bad,
        "{\"timestamp\": 0, \"input_length\": 600, \"output_length\": 4, \"hash_ids\": [1]}\n",
    )
    .unwrap();
    let (bad_rows, blank, mooncake_bad) = (
        bad_rows.display().to_string(),
        blank.display().to_string(),
        mooncake_bad.display().to_string(),
    );
    let rows = fixture("rows.jsonl");
    let trace = fixture("mooncake.jsonl");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["-o", "--dataset", "/nonexistent/prompts.jsonl"], "does not exist"),
        (
            vec!["-o", "--dataset", &rows, "--dataset-format", "csv"],
            "unknown dataset format",
        ),
        (vec!["-o", "--dataset", &bad_rows], "no usable jsonl row"),
        (vec!["-o", "--dataset", &blank], "is empty"),
        (vec!["-o", "--dataset", &mooncake_bad], "no usable mooncake row"),
        (
            vec!["-o", "--dataset", &trace, "--dataset-format", "sharegpt"],
            "not a ShareGPT file",
        ),
        (
            vec!["-o", "--dataset", &rows, "--dataset-min-isl", "1000"],
            "outside --dataset-min-isl",
        ),
        (
            vec![
                "-o",
                "--dataset",
                &rows,
                "--dataset-min-isl",
                "50",
                "--dataset-max-isl",
                "10",
            ],
            "above --dataset-max-isl",
        ),
        (vec!["-o", "--dataset", &rows, "--isl", "100"], "drop --isl"),
        (
            vec!["-o", "--prefix-groups", "2", "--prefix-tokens", "64"],
            "needs --isl",
        ),
        (
            vec![
                "-o",
                "--isl",
                "100",
                "--isl-std",
                "10",
                "--isl-min",
                "200",
                "--isl-max",
                "100",
            ],
            "--isl-min 200 is above --isl-max 100",
        ),
        (
            vec![
                "-o",
                "--osl",
                "10",
                "--osl-std",
                "2",
                "--osl-min",
                "9",
                "--osl-max",
                "3",
            ],
            "--osl-min 9 is above --osl-max 3",
        ),
        (vec!["-o", "--isl-std", "5"], "need --isl"),
        (
            vec!["-o", "--isl", "100", "--tokenizer", "/nonexistent/tokenizer.json"],
            "does not exist",
        ),
        (vec!["-mm", "--image-size", "64by64"], "WIDTHxHEIGHT"),
        (vec!["-mm", "--image-size", "0x64"], "WIDTHxHEIGHT"),
        (vec!["-mm", "--image-size", "9000x64"], "WIDTHxHEIGHT"),
        (vec!["-o", "--image-size", "64x64"], "-mm"),
        (
            vec!["-mm", "--image-size", "64x64", "--image-format", "gif"],
            "png or jpeg",
        ),
        (
            vec!["-mm", "--image-size", "64x64", "--images-per-request", "0"],
            "at least 1",
        ),
        (vec!["-o", "--think-time", "1s"], "needs --turns"),
        (vec!["-o", "--turns", "0"], "at least 1"),
        (vec!["-o", "--trace-speed", "0"], "above zero"),
        // Flags that need another flag: the line should name it.
        (vec!["-o", "--prefix-groups", "2", "--isl", "32"], "--prefix-tokens"),
        (vec!["-o", "--prefix-tokens", "64", "--isl", "32"], "--prefix-groups"),
        (vec!["-o", "--num-prompts", "2"], "--dataset"),
        (vec!["-o", "--shuffle"], "--dataset"),
        // Mistakes found once the server is known, still before any load.
        (vec!["-o", "--isl", "5"], "--isl 5 is too short"),
        (
            vec!["-o", "--isl", "40", "--isl-std", "5", "--isl-min", "4"],
            "--isl-min 4 is too short",
        ),
        (
            vec!["-o", "--dataset", &rows, "--max-concurrency", "4"],
            "no timestamps to replay",
        ),
        (vec!["-o", "--images-per-request", "3"], "needs --image-size"),
        (vec!["--endpoint", "embeddings", "--turns", "2"], "drop --turns"),
        (vec!["-o", "--isl", "20000000"], "beyond the 10000000 tokens"),
        (vec!["-o", "--think-time-std", "1s"], "needs --turns"),
    ];
    let mut p = Problems::default();
    for (args, expect) in cases {
        let sim = Sim::start(fast_sim());
        let s = Scratch::new();
        let mut all = args.clone();
        all.extend(["-st", "1", "-et", "1"]);
        let out = s.run(&sim.url, &all);
        let (stdout, stderr) = text(&out);
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        p.check(out.status.code() == Some(2), || {
            format!(
                "{args:?}: exit {:?}, not 2\nstdout: {stdout}\nstderr: {stderr}",
                out.status.code()
            )
        });
        p.check(lines.len() == 1, || {
            format!("{args:?}: expected one line on stderr, got:\n{stderr}")
        });
        let first = lines.first().copied().unwrap_or_default();
        p.check(first.starts_with("llm-bench: error: "), || {
            format!("{args:?}: {stderr}")
        });
        p.check(first.to_lowercase().contains(&expect.to_lowercase()), || {
            format!("{args:?}: expected {expect:?} in: {first}")
        });
        p.check(!stderr.contains("panicked"), || format!("{args:?}: {stderr}"));
        let sent = sim.stats().requests_total;
        p.check(sent == 0, || format!("{args:?}: {sent} requests reached the server"));
    }
    p.finish();
}

#[test]
fn rows_with_timestamps_are_replayed_in_time_order_unless_a_rate_is_given() {
    // Rows out of order in the file: 300, 0, 100, 200 ms.
    let sim = Sim::start(fast_sim());
    let path = fixture("timestamps.jsonl");
    let (s, stdout) = run_ok(&sim, &["-o", "-st", "1", "-et", "1", "--dataset", &path]);
    assert!(stdout.contains("sent in timestamp order"), "{stdout}");
    assert!(!stdout.contains("are not replayed"), "{stdout}");
    let recs = by_id(&s);
    let rows: Vec<u64> = recs.iter().map(|r| whole(&r["row"])).collect();
    assert_eq!(rows, [1, 2, 3, 0], "sent in time order");
    let t0 = num(&recs[0]["intended_s"]);
    for (i, r) in recs.iter().enumerate() {
        let offset = num(&r["intended_s"]) - t0;
        assert!(
            (offset - i as f64 * 0.1).abs() < 0.002,
            "request {i} due at +{offset:.4} s"
        );
    }
    assert!(num(&step(&s)["send_lateness_ms"]["p99"]) < 5.0, "{}", step(&s));
    // A rate sets the pace instead, and the header says the timestamps were not used.
    let (s, stdout) = run_ok(&sim, &["-o", "--rate", "50", "--requests", "4", "--dataset", &path]);
    assert!(
        line(&stdout, "Note: the dataset has timestamps").contains("not replayed"),
        "{stdout}"
    );
    let rows: Vec<u64> = by_id(&s).iter().map(|r| whole(&r["row"])).collect();
    assert_eq!(rows, [0, 1, 2, 3], "file order at the rate's pace");
}

#[test]
fn an_open_ended_isl_spread_is_shown_without_a_sentinel_maximum() {
    let sim = Sim::start(fast_sim());
    let (s, stdout) = run_ok(
        &sim,
        &words("-o -st 2 -et 2 --requests 4 --isl 64 --isl-std 10 --osl 2"),
    );
    let header = line(&stdout, "Model ");
    assert!(header.contains("ISL 64±10"), "{header}");
    assert!(
        !header.contains(&u64::MAX.to_string()),
        "no --isl-max given: the header shows u64::MAX as the bound: {header}"
    );
    assert!(isl_within_one_pct(&by_id(&s)) >= 95.0);
}

#[test]
fn what_a_request_asked_survives_a_resend() {
    // The server closes kept-alive connections after every 2nd answer, as llama-server does:
    // the next request on it is sent again on a fresh connection.
    let sim = Sim::start(SimConfig {
        close_after_responses: 2,
        ..fast_sim()
    });
    let path = fixture("rows.jsonl");
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("--isl", vec!["--isl", "64", "--osl", "3"]),
        ("--dataset", vec!["--dataset", &path, "--osl", "3"]),
        (
            "--prefix-groups",
            vec![
                "--isl",
                "32",
                "--osl",
                "3",
                "--prefix-groups",
                "2",
                "--prefix-tokens",
                "64",
            ],
        ),
    ];
    let mut p = Problems::default();
    for (name, extra) in cases {
        let mut args = vec!["-o", "-st", "1", "-et", "1", "--requests", "8"];
        args.extend(extra);
        let (s, _) = run_ok(&sim, &args);
        let recs = by_id(&s);
        let resent: Vec<&Value> = recs.iter().filter(|r| r["resends"] == 1).collect();
        p.check(!resent.is_empty(), || format!("{name}: no request was resent"));
        for r in resent {
            p.check(r["requested_osl"] == 3, || {
                format!("{name}: a resent record lost requested_osl: {r}")
            });
            match name {
                "--isl" => p.check(r["requested_isl"] == 64, || format!("{name}: lost requested_isl: {r}")),
                "--dataset" => p.check(r["row"].is_u64(), || format!("{name}: lost row: {r}")),
                _ => p.check(r["prefix_group"].is_u64() && r["requested_isl"] == 96, || {
                    format!("{name}: lost prefix_group/requested_isl: {r}")
                }),
            }
        }
    }
    p.finish();
}

#[test]
fn a_dataset_that_runs_out_is_cycled_and_said_so() {
    let sim = Sim::start(fast_sim());
    let rows = fixture("rows.jsonl");
    let (s, stdout) = run_ok(
        &sim,
        &[
            "-o",
            "-st",
            "2",
            "-et",
            "2",
            "--requests",
            "10",
            "--dataset",
            &rows,
            "--num-prompts",
            "2",
        ],
    );
    assert!(stdout.contains("its rows were sent again"), "{stdout}");
    let notes = s.summary()["notes"].to_string();
    assert!(notes.contains("the run needed 1"), "{notes}");
    assert!(notes.contains("prompts and the dataset gave 2"), "{notes}");
}

#[test]
fn dataset_images_resolve_against_the_dataset_folder_from_any_working_directory() {
    let sim = Sim::start(fast_sim());
    let s = Scratch::new();
    let data = s.path("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("a.png"), b"\x89PNG\r\n\x1a\n0000").unwrap();
    std::fs::write(
        data.join("set.jsonl"),
        "{\"prompt\": \"describe\", \"image\": \"a.png\"}\n",
    )
    .unwrap();
    let out = s
        .command(&sim.url, &words("-o -st 1 -et 1 --requests 2 --dataset data/set.jsonl"))
        .current_dir(s.path(""))
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for rec in s.records() {
        assert!(rec["image_bytes"].as_u64().unwrap() > 0, "{rec}");
    }
}

#[test]
fn a_bursty_trace_is_replayed_whole_not_cut_as_saturated() {
    let sim = Sim::start(fast_sim());
    let s = Scratch::new();
    let trace = s.path("burst.jsonl");
    let mut rows: String = (0..30)
        .map(|i| format!("{{\"prompt\": \"p{i}\", \"timestamp\": 0}}\n"))
        .collect();
    rows.push_str("{\"prompt\": \"late\", \"timestamp\": 1500}\n");
    std::fs::write(&trace, rows).unwrap();
    let (s, _) = run_ok(&sim, &["-o", "-tg", "4", "--dataset", trace.to_str().unwrap()]);
    let step = step(&s);
    assert_eq!(step["saturated"], false, "{step}");
    assert_eq!(step["requests_ok"], 31, "{step}");
}

#[test]
fn every_turn_of_a_multimodal_session_carries_its_images() {
    let sim = Sim::start(fast_sim());
    let (s, _) = run_ok(
        &sim,
        &words("-mm -st 1 -et 1 --requests 2 --turns 2 -tg 4 --image-size 32x32 --image-format jpeg"),
    );
    let recs = s.records();
    assert_eq!(recs.len(), 4, "{recs:?}");
    for rec in &recs {
        assert!(rec["image_bytes"].as_u64().unwrap() > 0, "{rec}");
        assert_eq!(rec["test"], "multimodal");
    }
}
