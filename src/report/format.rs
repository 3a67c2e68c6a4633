//! Human-readable lines for steps, intervals and the final table.

use crate::metrics::{Dist, StepStats};
use crate::workload::TestKind;

fn ms(d: Option<Dist>, pick: fn(&Dist) -> f64) -> String {
    d.map(|d| format!("{:.1}", pick(&d))).unwrap_or_else(|| "-".into())
}

fn pct(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.0}%")).unwrap_or_else(|| "-".into())
}

/// ", N resent" when requests had to be sent again after a closed kept-alive connection.
pub fn resent(s: &StepStats) -> String {
    if s.resends > 0 {
        format!(", {} resent", s.resends)
    } else {
        String::new()
    }
}

/// The lines printed when a step ends.
pub fn step_lines(s: &StepStats) -> Vec<String> {
    let cancelled = if s.requests_cancelled > 0 {
        format!(", {} cut at the drain time", s.requests_cancelled)
    } else {
        String::new()
    };
    let over = match s.window {
        Some(_) => format!("in a {:.2} s window", s.duration_s),
        None => format!("in {:.2} s", s.duration_s),
    };
    let mut lines = vec![format!(
        "[{}] {}: {} ok, {} failed{}{cancelled} {over} (max {} in flight)",
        s.test,
        s.load,
        s.requests_ok,
        s.requests_failed,
        resent(s),
        s.max_in_flight
    )];
    if let Some(line) = open_loop_line(s) {
        lines.push(line);
    }
    if s.requests_ok == 0 {
        let cause = s
            .error_samples
            .first()
            .map(|e| format!(": {} ({})", e.message, e.class))
            .unwrap_or_default();
        lines.push(format!("  all {} requests failed{cause}", s.requests_failed));
        return lines;
    }
    let est = if s.tokens_estimated {
        " (token counts estimated: no usage from the server)"
    } else {
        ""
    };
    if s.is_embeddings() {
        lines.extend(embeddings_lines(s, est));
        return lines;
    }
    match s.test {
        TestKind::Input => {
            let prefill = s
                .prefill_tps
                .map(|p| format!("{:.1} tok/s per request (std {:.1})", p.mean, p.std))
                .unwrap_or_else(|| "-".into());
            lines.push(format!(
                "  prefill: {prefill} | total {:.1} prompt tok/s | {} prompt tokens{est}",
                s.prompt_throughput_tps, s.prompt_tokens
            ));
        }
        _ => {
            let per_conn = s
                .per_conn_tps
                .map(|p| {
                    format!(
                        "{:.1} tok/s (std {:.1}, min {:.1}, max {:.1})",
                        p.mean, p.std, p.min, p.max
                    )
                })
                .unwrap_or_else(|| "-".into());
            lines.push(format!(
                "  per connection: {per_conn} | total {:.1} tok/s | {:.2} req/s{est}",
                s.output_throughput_tps, s.request_throughput_rps
            ));
        }
    }
    // Per token differs from the chunk gap only when chunks carry several tokens.
    let per_token = match s.tokens_per_chunk_mean {
        Some(mean) if (mean - 1.0).abs() > 0.005 => format!(
            " | ITL per token ms p50 {} p99 {}",
            ms(s.itl_per_token_ms, |d| d.p50),
            ms(s.itl_per_token_ms, |d| d.p99)
        ),
        _ => String::new(),
    };
    lines.push(format!(
        "  TTFT ms p50 {} p90 {} p99 {} | ITL (chunk gap) ms p50 {} p99 {}{per_token} | TPOT ms {} | E2E ms p50 {} p99 {}",
        ms(s.ttft_ms, |d| d.p50),
        ms(s.ttft_ms, |d| d.p90),
        ms(s.ttft_ms, |d| d.p99),
        ms(s.itl_ms, |d| d.p50),
        ms(s.itl_ms, |d| d.p99),
        ms(s.tpot_ms, |d| d.mean),
        ms(s.e2e_ms, |d| d.p50),
        ms(s.e2e_ms, |d| d.p99),
    ));
    if let Some(line) = reasoning_line(s) {
        lines.push(line);
    }
    if s.tokens_per_chunk_estimated {
        lines.push(format!("  {}", tokens_per_chunk_sentence(s)));
    }
    let mut tail = format!("  efficiency {}", pct(s.efficiency_pct));
    if let Some(system) = &s.system {
        tail.push_str(&format!(" | {}", system.describe()));
    }
    if s.requests_failed > 0 {
        let errors: Vec<String> = s.errors.iter().map(|(k, v)| format!("{k} {v}")).collect();
        tail.push_str(&format!(" | errors: {}", errors.join(", ")));
    }
    lines.push(tail);
    if s.prompt_cache_hits > 0 {
        lines.push(format!("  {}", prompt_cache_sentence(s)));
    }
    lines.extend(length_lines(s));
    if let Some(line) = slo_line(s) {
        lines.push(line);
    }
    lines
}

/// The ISL/OSL proof lines and their warnings; what the workload's shape showed (image bytes,
/// turns, prefix reuse).
pub fn length_lines(s: &StepStats) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(bytes) = s.image_bytes_per_request {
        lines.push(format!("  images: {:.1} KB per request sent (base64)", bytes / 1000.0));
    }
    if !s.turns.is_empty() {
        let turns: Vec<String> = s
            .turns
            .iter()
            .map(|t| {
                format!(
                    "turn {}: TTFT p50 {} ms, prompt {:.0} tok",
                    t.turn,
                    ms(t.ttft_ms, |d| d.p50),
                    t.prompt_tokens_mean
                )
            })
            .collect();
        lines.push(format!("  sessions: {}", turns.join(" | ")));
    }
    if let Some(sentence) = s
        .prefix_cache
        .as_ref()
        .and_then(|p| crate::metrics::workload::prefix_sentence(p, None))
    {
        lines.push(format!("  {sentence}"));
    }
    let proofs = [("ISL", &s.isl), ("OSL", &s.osl)];
    let shown: Vec<String> = proofs
        .iter()
        .filter_map(|(kind, c)| c.as_ref().map(|c| crate::metrics::lengths::proof_line(kind, c)))
        .collect();
    if !shown.is_empty() {
        lines.push(format!("  {}", shown.join(" | ")));
    }
    for warning in &s.length_warnings {
        lines.push(format!("  warning: {warning}"));
    }
    lines
}

/// Reasoning models: when the reasoning and the answer started, and how many tokens the
/// reasoning took.
fn reasoning_line(s: &StepStats) -> Option<String> {
    let tokens = s.reasoning_tokens?;
    let mean = s
        .reasoning_tokens_mean
        .map(|m| format!(" ({m:.1} per request)"))
        .unwrap_or_default();
    let est = if s.reasoning_tokens_estimated {
        " (estimated: events with reasoning text)"
    } else {
        ""
    };
    Some(format!(
        "  reasoning: TTFT reasoning ms p50 {} p99 {} | TTFT answer ms p50 {} p99 {} | {tokens} reasoning tokens{mean}{est}",
        ms(s.ttft_reasoning_ms, |d| d.p50),
        ms(s.ttft_reasoning_ms, |d| d.p99),
        ms(s.ttft_answer_ms, |d| d.p50),
        ms(s.ttft_answer_ms, |d| d.p99),
    ))
}

/// An embeddings step: inputs, input tokens and requests per second, and its latencies (no
/// TTFT, ITL or output: nothing is generated).
fn embeddings_lines(s: &StepStats, est: &str) -> Vec<String> {
    let mut lines = vec![format!(
        "  embeddings: {:.1} inputs/s | {:.1} input tok/s | {:.2} req/s | {} inputs, {} input tokens{est}",
        s.inputs_per_s.unwrap_or(0.0),
        s.input_tokens_per_s.unwrap_or(0.0),
        s.requests_per_s.unwrap_or(0.0),
        s.inputs.unwrap_or(0),
        s.prompt_tokens,
    )];
    let mut latency = format!(
        "  latency (E2E) ms p50 {} p90 {} p99 {} max {}",
        ms(s.e2e_ms, |d| d.p50),
        ms(s.e2e_ms, |d| d.p90),
        ms(s.e2e_ms, |d| d.p99),
        ms(s.e2e_ms, |d| d.max),
    );
    if let Some(system) = &s.system {
        latency.push_str(&format!(" | {}", system.describe()));
    }
    if s.requests_failed > 0 {
        let errors: Vec<String> = s.errors.iter().map(|(k, v)| format!("{k} {v}")).collect();
        latency.push_str(&format!(" | errors: {}", errors.join(", ")));
    }
    lines.push(latency);
    if let Some(line) = slo_line(s) {
        lines.push(line);
    }
    lines
}

/// Open loop: the rate asked and sent, lateness, and latencies from the intended send time.
fn open_loop_line(s: &StepStats) -> Option<String> {
    let target = s.target_rps?;
    let late = s
        .send_lateness_ms
        .map(|l| format!(" | send lateness ms p50 {:.2} p99 {:.2} max {:.1}", l.p50, l.p99, l.max))
        .unwrap_or_default();
    let due = s
        .scheduled_rps
        .map(|d| format!(", due {} (the seeded schedule)", crate::load::point::fmt_rate(d)))
        .unwrap_or_default();
    Some(format!(
        "  rate: target {} req/s{due}, sent {} req/s{late} | from the intended send: TTFT ms p50 {} p99 {}, E2E ms p50 {} p99 {}",
        crate::load::point::fmt_rate(target),
        crate::load::point::fmt_rate(s.achieved_rps.unwrap_or(0.0)),
        ms(s.ttft_from_intended_ms, |d| d.p50),
        ms(s.ttft_from_intended_ms, |d| d.p99),
        ms(s.e2e_from_intended_ms, |d| d.p50),
        ms(s.e2e_from_intended_ms, |d| d.p99),
    ))
}

/// With `--slo`: attainment, goodput and the percentile objectives' verdict.
fn slo_line(s: &StepStats) -> Option<String> {
    if s.slo_attainment_pct.is_none() && s.slo_pass.is_none() {
        return None;
    }
    let mut parts = Vec::new();
    if let Some(a) = s.slo_attainment_pct {
        parts.push(format!(
            "{a:.1}% of requests good, goodput {:.2} req/s, {:.1} tok/s",
            s.goodput_rps.unwrap_or(0.0),
            s.goodput_tps.unwrap_or(0.0)
        ));
    }
    if let Some(verdict) = &s.slo_checks {
        let checks: Vec<String> = verdict
            .checks
            .iter()
            .map(|c| format!("{} {}", c.describe(), if c.pass { "ok" } else { "FAIL" }))
            .collect();
        parts.push(format!(
            "{}: {}",
            if verdict.pass { "meets" } else { "FAILS" },
            checks.join(", ")
        ));
    }
    Some(format!("  SLO: {}", parts.join(" | ")))
}

/// Most distinct messages listed at the end of a run.
const MESSAGES_SHOWN: usize = 12;

/// The distinct error messages of the run, merged over steps, most frequent first: one line
/// each with its class and count, instead of one line per failed request.
pub fn error_lines(steps: &[StepStats]) -> Vec<String> {
    let mut merged: Vec<(String, TestKind, String, u64)> = Vec::new();
    for step in steps {
        for sample in &step.error_samples {
            match merged.iter_mut().find(|(class, test, message, _)| {
                *class == sample.class && *test == step.test && *message == sample.message
            }) {
                Some(entry) => entry.3 += sample.count,
                None => merged.push((sample.class.clone(), step.test, sample.message.clone(), sample.count)),
            }
        }
    }
    if merged.is_empty() {
        return Vec::new();
    }
    merged.sort_by_key(|entry| std::cmp::Reverse(entry.3));
    let mut lines = vec!["Errors (distinct messages, with counts):".to_string()];
    for (class, test, message, count) in merged.iter().take(MESSAGES_SHOWN) {
        lines.push(format!("- [{test}] {count} × {class}: {message}"));
    }
    if merged.len() > MESSAGES_SHOWN {
        lines.push(format!(
            "- … and {} more distinct messages in summary.json (error_samples)",
            merged.len() - MESSAGES_SHOWN
        ));
    }
    lines
}

/// The final table, one block per test.
pub fn table(steps: &[StepStats]) -> Vec<String> {
    let mut lines = Vec::new();
    for test in [TestKind::Input, TestKind::Output, TestKind::Multimodal] {
        let rows: Vec<&StepStats> = steps.iter().filter(|s| s.test == test).collect();
        if rows.is_empty() {
            continue;
        }
        lines.push(format!("== {test} test =="));
        let header = if rows.iter().any(|s| s.is_open_loop()) {
            "load"
        } else {
            "conc"
        };
        if rows.iter().any(|s| s.is_embeddings()) {
            lines.push(format!(
                "{:>6} {:>9} {:>10} {:>14} {:>8} {:>10} {:>10} {:>8}",
                header, "ok/fail", "inputs/s", "input tok/s", "req/s", "E2E p50", "E2E p99", "scaling"
            ));
            for s in rows {
                lines.push(format!(
                    "{:>6} {:>9} {:>10.1} {:>14.1} {:>8.2} {:>10} {:>10} {:>8}",
                    conc(s),
                    format!("{}/{}", s.requests_ok, s.requests_failed),
                    s.inputs_per_s.unwrap_or(0.0),
                    s.input_tokens_per_s.unwrap_or(0.0),
                    s.requests_per_s.unwrap_or(0.0),
                    ms(s.e2e_ms, |d| d.p50),
                    ms(s.e2e_ms, |d| d.p99),
                    pct(s.scaling_efficiency_pct),
                ));
            }
            continue;
        }
        match test {
            TestKind::Input => {
                lines.push(format!(
                    "{:>6} {:>9} {:>14} {:>18} {:>10} {:>10} {:>8}",
                    header, "ok/fail", "prompt tok/s", "prefill tok/s/req", "TTFT p50", "TTFT p99", "scaling"
                ));
                for s in rows {
                    lines.push(format!(
                        "{:>6} {:>9} {:>14.1} {:>18} {:>10} {:>10} {:>8}",
                        conc(s),
                        format!("{}/{}", s.requests_ok, s.requests_failed),
                        s.prompt_throughput_tps,
                        s.prefill_tps
                            .map(|p| format!("{:.1}", p.mean))
                            .unwrap_or_else(|| "-".into()),
                        ms(s.ttft_ms, |d| d.p50),
                        ms(s.ttft_ms, |d| d.p99),
                        pct(s.scaling_efficiency_pct),
                    ));
                }
            }
            _ => {
                lines.push(format!(
                    "{:>6} {:>9} {:>10} {:>14} {:>10} {:>10} {:>9} {:>6} {:>8}",
                    header, "ok/fail", "tok/s", "tok/s/conn", "TTFT p50", "TTFT p99", "ITL p50", "eff", "scaling"
                ));
                for s in rows {
                    lines.push(format!(
                        "{:>6} {:>9} {:>10.1} {:>14} {:>10} {:>10} {:>9} {:>6} {:>8}",
                        conc(s),
                        format!("{}/{}", s.requests_ok, s.requests_failed),
                        s.output_throughput_tps,
                        s.per_conn_tps
                            .map(|p| format!("{:.1}±{:.1}", p.mean, p.std))
                            .unwrap_or_else(|| "-".into()),
                        ms(s.ttft_ms, |d| d.p50),
                        ms(s.ttft_ms, |d| d.p99),
                        ms(s.itl_ms, |d| d.p50),
                        pct(s.efficiency_pct),
                        pct(s.scaling_efficiency_pct),
                    ));
                }
            }
        }
    }
    if steps.iter().any(|s| s.saturated) {
        lines.push("  * saturated: the backlog limit was reached and the step ended early".into());
    }
    if steps.iter().any(|s| s.client_bound) {
        lines.push("  ! client-bound: llm-bench, not the server, limited that step (see its CLIENT-BOUND line)".into());
    }
    lines
}

/// Chunks carried several tokens and the server did not say how many each: said once per step.
pub fn tokens_per_chunk_sentence(s: &StepStats) -> String {
    let about = s
        .tokens_per_chunk_mean
        .map(|mean| format!(" (about {mean:.1})"))
        .unwrap_or_default();
    format!(
        "several tokens per chunk{about}: per-token figures estimated from chunk counts; \
         vLLM can report exact counts with --continuous-usage"
    )
}

/// The server reused cached prompts: said once per step, with the way out.
pub fn prompt_cache_sentence(s: &StepStats) -> String {
    format!(
        "the server reused a cached prompt prefix for {} of {} requests (its timings.prompt_n is under half the prompt): \
         prefill and TTFT look better than for new prompts; for llama.cpp add --extra-body '{{\"cache_prompt\": false}}'",
        s.prompt_cache_hits, s.requests_ok
    )
}

/// The load column ("16" or "8/s"), marked `!` when the step was client-bound and `*` when
/// it saturated.
fn conc(s: &StepStats) -> String {
    let mut text = s.load.short();
    // --repeat: which repetition of the point ("16#2").
    if let Some(k) = s.repeat {
        text.push_str(&format!("#{k}"));
    }
    if s.saturated {
        text.push('*');
    }
    if s.client_bound {
        text.push('!');
    }
    text
}

/// "llm-bench used 1.20 s of CPU for 50000 events (2.4 µs per event) on 2 cores, peak RSS 31 MB".
pub fn client_line(c: &crate::report::summary::ClientReport) -> String {
    let per_event = c
        .cpu_us_per_event
        .map(|us| format!(" ({us:.1} µs per event)"))
        .unwrap_or_default();
    let rss = c
        .peak_rss_mb
        .map(|mb| format!(", peak RSS {mb:.0} MB"))
        .unwrap_or_default();
    format!(
        "Client: llm-bench used {:.2} s of CPU for {} events{per_event} on {} core{}{rss}",
        c.cpu_s,
        c.events,
        c.cores,
        if c.cores == 1 { "" } else { "s" }
    )
}

/// One line of a stress interval for one test.
pub fn interval_line(elapsed: &str, s: &StepStats) -> String {
    if s.is_embeddings() {
        let errors = if s.requests_failed > 0 {
            let e: Vec<String> = s.errors.iter().map(|(k, v)| format!("{k} {v}")).collect();
            format!(" ({})", e.join(", "))
        } else {
            String::new()
        };
        return format!(
            "[{elapsed}] {}: {} ok, {} failed{errors}{} | {:.1} inputs/s, {:.1} input tok/s | E2E ms p50 {} p99 {}",
            s.test,
            s.requests_ok,
            s.requests_failed,
            resent(s),
            s.inputs_per_s.unwrap_or(0.0),
            s.input_tokens_per_s.unwrap_or(0.0),
            ms(s.e2e_ms, |d| d.p50),
            ms(s.e2e_ms, |d| d.p99),
        );
    }
    let rate = match s.test {
        TestKind::Input => format!("{:.1} prompt tok/s", s.prompt_throughput_tps),
        _ => format!("{:.1} tok/s", s.output_throughput_tps),
    };
    let errors = if s.requests_failed > 0 {
        let e: Vec<String> = s.errors.iter().map(|(k, v)| format!("{k} {v}")).collect();
        format!(" ({})", e.join(", "))
    } else {
        String::new()
    };
    format!(
        "[{elapsed}] {}: {} ok, {} failed{errors}{} | {rate} | TTFT ms p50 {} p99 {} | ITL ms p50 {} p99 {}",
        s.test,
        s.requests_ok,
        s.requests_failed,
        resent(s),
        ms(s.ttft_ms, |d| d.p50),
        ms(s.ttft_ms, |d| d.p99),
        ms(s.itl_ms, |d| d.p50),
        ms(s.itl_ms, |d| d.p99),
    )
}
