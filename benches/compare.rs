//! How long `compare` takes to judge one step: two runs of 10,000 requests of 100 tokens each,
//! the headline figures resampled (1000 replicates per figure and run) and judged.
//!
//! `cargo bench --bench compare`

use llm_bench::client::RequestRecord;
use llm_bench::compare::figures::{Figure, HEADLINE};
use llm_bench::compare::samples::StepSamples;
use llm_bench::compare::stats::{judge, replicate, seed_for};
use llm_bench::load::LoadPoint;
use llm_bench::metrics::step::Window;
use llm_bench::workload::TestKind;
use std::time::Instant;

/// n requests on 64 connections, TTFT and chunk gaps varying with the request number.
fn samples(n: usize, gap_us: u64) -> StepSamples {
    let window = Window {
        start_s: 0.0,
        end_s: 1e6,
    };
    let mut s = StepSamples::new(TestKind::Output, LoadPoint::Concurrency(64), vec![window]);
    for i in 0..n as u64 {
        let ttft = 50_000 + (i * 7919) % 40_000;
        let tokens: Vec<u64> = (0..100).map(|t| ttft + t * (gap_us + (i * t) % 3_000)).collect();
        s.add(&RequestRecord {
            start_s: i as f64 * 0.01,
            ok: true,
            first_token_us: Some(ttft),
            last_token_us: tokens.last().copied(),
            end_us: tokens.last().unwrap() + 1_000,
            output_tokens: 100,
            prompt_tokens: 200,
            token_us: tokens,
            ..RequestRecord::default()
        });
    }
    s
}

fn main() {
    let n = 10_000;
    let (a, b) = (samples(n, 20_000), samples(n, 21_000));
    let started = Instant::now();
    let figures: Vec<Figure> = HEADLINE.to_vec();
    let reps: Vec<Vec<Option<Vec<f64>>>> = [&a, &b]
        .iter()
        .enumerate()
        .map(|(r, s)| {
            let t = Instant::now();
            let estimators: Vec<_> = figures.iter().filter_map(|f| s.estimator(*f)).collect();
            let built = t.elapsed();
            let reps = replicate(&estimators, seed_for(r, 0));
            println!(
                "  run {r}: estimators {:.1} ms, resampling {:.1} ms",
                built.as_secs_f64() * 1e3,
                (t.elapsed() - built).as_secs_f64() * 1e3
            );
            reps
        })
        .collect();
    let mut verdicts = Vec::new();
    for (i, f) in figures.iter().enumerate() {
        let j = judge(
            Some(1.0),
            Some(1.05),
            reps[0][i].as_deref(),
            reps[1][i].as_deref(),
            f.higher_is_better(),
        );
        verdicts.push(format!("{}: {:?}", f.name(), j.verdict));
    }
    let elapsed = started.elapsed();
    println!(
        "compare: one step of {n} requests × 100 tokens in each of 2 runs, {} figures: {:.1} ms",
        figures.len(),
        elapsed.as_secs_f64() * 1e3
    );
    println!("  ({})", verdicts.join(", "));
}
