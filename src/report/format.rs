//! Human-readable lines for steps, intervals and the final table.

use crate::i18n::{tr, Msg};
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
        tr(Msg::StepResent, &[("n", &s.resends)])
    } else {
        String::new()
    }
}

/// " | errors: http_503 2, timeout 1": the error classes of a step with their counts.
fn errors_part(s: &StepStats) -> String {
    let errors: Vec<String> = s.errors.iter().map(|(k, v)| format!("{k} {v}")).collect();
    format!(" | {}", tr(Msg::StepErrors, &[("list", &errors.join(", "))]))
}

/// The lines printed when a step ends.
pub fn step_lines(s: &StepStats) -> Vec<String> {
    let cancelled = if s.requests_cancelled > 0 {
        tr(Msg::StepCancelled, &[("n", &s.requests_cancelled)])
    } else {
        String::new()
    };
    let seconds = format!("{:.2}", s.duration_s);
    let over = match s.window {
        Some(_) => tr(Msg::StepInWindow, &[("s", &seconds)]),
        None => tr(Msg::StepInTime, &[("s", &seconds)]),
    };
    let mut lines = vec![tr(
        Msg::StepLine,
        &[
            ("test", &s.test),
            ("point", &s.load.in_words()),
            ("ok", &s.requests_ok),
            ("failed", &s.requests_failed),
            ("resent", &resent(s)),
            ("cancelled", &cancelled),
            ("over", &over),
            ("max", &s.max_in_flight),
        ],
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
        lines.push(format!(
            "  {}",
            tr(Msg::StepAllFailed, &[("n", &s.requests_failed), ("cause", &cause)])
        ));
        return lines;
    }
    let est = if s.tokens_estimated {
        tr(Msg::StepTokensEstimated, &[])
    } else {
        String::new()
    };
    if s.is_embeddings() {
        lines.extend(embeddings_lines(s, &est));
        return lines;
    }
    match s.test {
        TestKind::Input => {
            let prefill = s
                .prefill_tps
                .map(|p| {
                    tr(
                        Msg::StepPrefillPerRequest,
                        &[("mean", &format!("{:.1}", p.mean)), ("std", &format!("{:.1}", p.std))],
                    )
                })
                .unwrap_or_else(|| "-".into());
            lines.push(format!(
                "  {}",
                tr(
                    Msg::StepPrefillLine,
                    &[
                        ("prefill", &prefill),
                        ("total", &format!("{:.1}", s.prompt_throughput_tps)),
                        ("tokens", &s.prompt_tokens),
                        ("est", &est),
                    ],
                )
            ));
        }
        _ => {
            let per_conn = s
                .per_conn_tps
                .map(|p| {
                    tr(
                        Msg::StepSpread,
                        &[
                            ("mean", &format!("{:.1}", p.mean)),
                            ("std", &format!("{:.1}", p.std)),
                            ("min", &format!("{:.1}", p.min)),
                            ("max", &format!("{:.1}", p.max)),
                        ],
                    )
                })
                .unwrap_or_else(|| "-".into());
            lines.push(format!(
                "  {}",
                tr(
                    Msg::StepPerConnectionLine,
                    &[
                        ("per_conn", &per_conn),
                        ("total", &format!("{:.1}", s.output_throughput_tps)),
                        ("rps", &format!("{:.2}", s.request_throughput_rps)),
                        ("est", &est),
                    ],
                )
            ));
        }
    }
    // Per token differs from the chunk gap only when chunks carry several tokens.
    let per_token = match s.tokens_per_chunk_mean {
        Some(mean) if (mean - 1.0).abs() > 0.005 => tr(
            Msg::StepItlPerToken,
            &[
                ("p50", &ms(s.itl_per_token_ms, |d| d.p50)),
                ("p99", &ms(s.itl_per_token_ms, |d| d.p99)),
            ],
        ),
        _ => String::new(),
    };
    lines.push(format!(
        "  {}",
        tr(
            Msg::StepLatencyLine,
            &[
                ("ttft_p50", &ms(s.ttft_ms, |d| d.p50)),
                ("ttft_p90", &ms(s.ttft_ms, |d| d.p90)),
                ("ttft_p99", &ms(s.ttft_ms, |d| d.p99)),
                ("itl_p50", &ms(s.itl_ms, |d| d.p50)),
                ("itl_p99", &ms(s.itl_ms, |d| d.p99)),
                ("per_token", &per_token),
                ("tpot", &ms(s.tpot_ms, |d| d.mean)),
                ("e2e_p50", &ms(s.e2e_ms, |d| d.p50)),
                ("e2e_p99", &ms(s.e2e_ms, |d| d.p99)),
            ],
        )
    ));
    if let Some(line) = reasoning_line(s) {
        lines.push(line);
    }
    if s.tokens_per_chunk_estimated {
        lines.push(format!("  {}", tokens_per_chunk_sentence(s)));
    }
    let mut tail = format!("  {}", tr(Msg::StepEfficiency, &[("pct", &pct(s.efficiency_pct))]));
    if let Some(system) = &s.system {
        tail.push_str(&format!(" | {}", system.describe()));
    }
    if s.requests_failed > 0 {
        tail.push_str(&errors_part(s));
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
        lines.push(format!(
            "  {}",
            tr(Msg::StepImages, &[("kb", &format!("{:.1}", bytes / 1000.0))])
        ));
    }
    if !s.turns.is_empty() {
        let turns: Vec<String> = s
            .turns
            .iter()
            .map(|t| {
                tr(
                    Msg::StepTurn,
                    &[
                        ("turn", &t.turn),
                        ("ttft", &ms(t.ttft_ms, |d| d.p50)),
                        ("tokens", &format!("{:.0}", t.prompt_tokens_mean)),
                    ],
                )
            })
            .collect();
        lines.push(format!("  {}", tr(Msg::StepSessions, &[("turns", &turns.join(" | "))])));
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
        lines.push(format!("  {}", tr(Msg::WarningLine, &[("text", warning)])));
    }
    lines
}

/// Reasoning models: when the reasoning and the answer started, and how many tokens the
/// reasoning took.
fn reasoning_line(s: &StepStats) -> Option<String> {
    let tokens = s.reasoning_tokens?;
    let mean = s
        .reasoning_tokens_mean
        .map(|m| tr(Msg::ReasoningPerRequest, &[("mean", &format!("{m:.1}"))]))
        .unwrap_or_default();
    let est = if s.reasoning_tokens_estimated {
        tr(Msg::ReasoningEstimated, &[])
    } else {
        String::new()
    };
    Some(format!(
        "  {}",
        tr(
            Msg::ReasoningLine,
            &[
                ("reasoning_p50", &ms(s.ttft_reasoning_ms, |d| d.p50)),
                ("reasoning_p99", &ms(s.ttft_reasoning_ms, |d| d.p99)),
                ("answer_p50", &ms(s.ttft_answer_ms, |d| d.p50)),
                ("answer_p99", &ms(s.ttft_answer_ms, |d| d.p99)),
                ("tokens", &tokens),
                ("mean", &mean),
                ("est", &est),
            ],
        )
    ))
}

/// An embeddings step: inputs, input tokens and requests per second, and its latencies (no
/// TTFT, ITL or output: nothing is generated).
fn embeddings_lines(s: &StepStats, est: &str) -> Vec<String> {
    let mut lines = vec![format!(
        "  {}",
        tr(
            Msg::EmbeddingsLine,
            &[
                ("inputs_s", &format!("{:.1}", s.inputs_per_s.unwrap_or(0.0))),
                ("tokens_s", &format!("{:.1}", s.input_tokens_per_s.unwrap_or(0.0))),
                ("rps", &format!("{:.2}", s.requests_per_s.unwrap_or(0.0))),
                ("inputs", &s.inputs.unwrap_or(0)),
                ("tokens", &s.prompt_tokens),
                ("est", &est),
            ],
        )
    )];
    let mut latency = format!(
        "  {}",
        tr(
            Msg::EmbeddingsLatency,
            &[
                ("p50", &ms(s.e2e_ms, |d| d.p50)),
                ("p90", &ms(s.e2e_ms, |d| d.p90)),
                ("p99", &ms(s.e2e_ms, |d| d.p99)),
                ("max", &ms(s.e2e_ms, |d| d.max)),
            ],
        )
    );
    if let Some(system) = &s.system {
        latency.push_str(&format!(" | {}", system.describe()));
    }
    if s.requests_failed > 0 {
        latency.push_str(&errors_part(s));
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
        .map(|l| {
            tr(
                Msg::RateLateness,
                &[
                    ("p50", &format!("{:.2}", l.p50)),
                    ("p99", &format!("{:.2}", l.p99)),
                    ("max", &format!("{:.1}", l.max)),
                ],
            )
        })
        .unwrap_or_default();
    let due = s
        .scheduled_rps
        .map(|d| tr(Msg::RateDue, &[("rate", &crate::load::point::fmt_rate(d))]))
        .unwrap_or_default();
    Some(format!(
        "  {}",
        tr(
            Msg::RateLine,
            &[
                ("target", &crate::load::point::fmt_rate(target)),
                ("due", &due),
                ("sent", &crate::load::point::fmt_rate(s.achieved_rps.unwrap_or(0.0))),
                ("late", &late),
                ("ttft_p50", &ms(s.ttft_from_intended_ms, |d| d.p50)),
                ("ttft_p99", &ms(s.ttft_from_intended_ms, |d| d.p99)),
                ("e2e_p50", &ms(s.e2e_from_intended_ms, |d| d.p50)),
                ("e2e_p99", &ms(s.e2e_from_intended_ms, |d| d.p99)),
            ],
        )
    ))
}

/// With `--slo`: attainment, goodput and the percentile objectives' verdict.
fn slo_line(s: &StepStats) -> Option<String> {
    if s.slo_attainment_pct.is_none() && s.slo_pass.is_none() {
        return None;
    }
    let mut parts = Vec::new();
    if let Some(a) = s.slo_attainment_pct {
        parts.push(tr(
            Msg::SloGood,
            &[
                ("pct", &format!("{a:.1}")),
                ("rps", &format!("{:.2}", s.goodput_rps.unwrap_or(0.0))),
                ("tps", &format!("{:.1}", s.goodput_tps.unwrap_or(0.0))),
            ],
        ));
    }
    if let Some(verdict) = &s.slo_checks {
        let checks: Vec<String> = verdict
            .checks
            .iter()
            .map(|c| {
                let result = tr(if c.pass { Msg::SloCheckOk } else { Msg::SloCheckFail }, &[]);
                format!("{} {result}", c.describe())
            })
            .collect();
        let verdict = tr(if verdict.pass { Msg::SloMeets } else { Msg::SloFails }, &[]);
        parts.push(format!("{verdict}{}", checks.join(", ")));
    }
    Some(format!("  {}", tr(Msg::SloLine, &[("parts", &parts.join(" | "))])))
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
    let mut lines = vec![tr(Msg::ErrorsHeading, &[])];
    for (class, test, message, count) in merged.iter().take(MESSAGES_SHOWN) {
        lines.push(format!("- [{test}] {count} × {class}: {message}"));
    }
    if merged.len() > MESSAGES_SHOWN {
        lines.push(format!(
            "- {}",
            tr(Msg::ErrorsMore, &[("n", &(merged.len() - MESSAGES_SHOWN))])
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
        lines.push(format!("== {} ==", tr(Msg::TableHeading, &[("test", &test)])));
        let extra = TelemetryColumns::of(&rows);
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
                    "{:>6} {:>9} {:>14} {:>18} {:>10} {:>10} {:>8}{}",
                    header,
                    "ok/fail",
                    "prompt tok/s",
                    "prefill tok/s/req",
                    "TTFT p50",
                    "TTFT p99",
                    "scaling",
                    extra.header()
                ));
                for s in rows {
                    lines.push(format!(
                        "{:>6} {:>9} {:>14.1} {:>18} {:>10} {:>10} {:>8}{}",
                        conc(s),
                        format!("{}/{}", s.requests_ok, s.requests_failed),
                        s.prompt_throughput_tps,
                        s.prefill_tps
                            .map(|p| format!("{:.1}", p.mean))
                            .unwrap_or_else(|| "-".into()),
                        ms(s.ttft_ms, |d| d.p50),
                        ms(s.ttft_ms, |d| d.p99),
                        pct(s.scaling_efficiency_pct),
                        extra.cells(s),
                    ));
                }
            }
            _ => {
                lines.push(format!(
                    "{:>6} {:>9} {:>10} {:>14} {:>10} {:>10} {:>9} {:>6} {:>8}{}",
                    header,
                    "ok/fail",
                    "tok/s",
                    "tok/s/conn",
                    "TTFT p50",
                    "TTFT p99",
                    "ITL p50",
                    "eff",
                    "scaling",
                    extra.header()
                ));
                for s in rows {
                    lines.push(format!(
                        "{:>6} {:>9} {:>10.1} {:>14} {:>10} {:>10} {:>9} {:>6} {:>8}{}",
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
                        extra.cells(s),
                    ));
                }
            }
        }
    }
    if steps.iter().any(|s| s.saturated) {
        lines.push(format!("  * {}", tr(Msg::TableSaturated, &[])));
    }
    if steps.iter().any(|s| s.client_bound) {
        lines.push(format!("  ! {}", tr(Msg::TableClientBound, &[])));
    }
    lines
}

/// The console table's telemetry columns, each shown when some row has its figure: the
/// server's queue and KV cache at their peak, and output tokens per joule.
struct TelemetryColumns {
    waiting: bool,
    kv: bool,
    per_joule: bool,
}

impl TelemetryColumns {
    fn of(rows: &[&StepStats]) -> Self {
        let server = |f: fn(&crate::monitor::ServerWindow) -> bool| {
            rows.iter().any(|s| s.server_metrics.as_ref().is_some_and(f))
        };
        Self {
            waiting: server(|w| w.requests_waiting.is_some()),
            kv: server(|w| w.kv_cache_usage_pct.is_some()),
            per_joule: rows
                .iter()
                .any(|s| s.gpu.as_ref().is_some_and(|g| g.tokens_per_joule.is_some())),
        }
    }

    fn header(&self) -> String {
        let mut out = String::new();
        if self.waiting {
            out.push_str(&format!(" {:>8}", "wait max"));
        }
        if self.kv {
            out.push_str(&format!(" {:>6}", "KV max"));
        }
        if self.per_joule {
            out.push_str(&format!(" {:>7}", "tok/J"));
        }
        out
    }

    fn cells(&self, s: &StepStats) -> String {
        let server = s.server_metrics.as_ref();
        let mut out = String::new();
        if self.waiting {
            let v = server.and_then(|w| w.requests_waiting).map(|m| format!("{:.0}", m.max));
            out.push_str(&format!(" {:>8}", v.unwrap_or_else(|| "-".into())));
        }
        if self.kv {
            let v = server
                .and_then(|w| w.kv_cache_usage_pct)
                .map(|m| format!("{:.0}%", m.max));
            out.push_str(&format!(" {:>6}", v.unwrap_or_else(|| "-".into())));
        }
        if self.per_joule {
            let v = s
                .gpu
                .as_ref()
                .and_then(|g| g.tokens_per_joule)
                .map(|t| format!("{t:.2}"));
            out.push_str(&format!(" {:>7}", v.unwrap_or_else(|| "-".into())));
        }
        out
    }
}

/// One line of what the server and the GPUs did over a step or an interval, when sampled:
/// "server: 8 running (max 8), 3 waiting (max 5), KV cache 61% (max 97%) · GPUs: 700 W, 71 °C,
/// 87% busy, 1.92 tok/J".
pub fn telemetry_line(
    server: Option<&crate::monitor::ServerWindow>,
    gpu: Option<&crate::monitor::GpuWindow>,
) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(w) = server {
        let mut items = Vec::new();
        if let Some(m) = w.requests_running {
            items.push(tr(
                Msg::TelemetryRunning,
                &[("mean", &format!("{:.1}", m.mean)), ("max", &format!("{:.0}", m.max))],
            ));
        }
        if let Some(m) = w.requests_waiting {
            items.push(tr(
                Msg::TelemetryWaiting,
                &[("mean", &format!("{:.1}", m.mean)), ("max", &format!("{:.0}", m.max))],
            ));
        }
        if let Some(m) = w.kv_cache_usage_pct {
            items.push(tr(
                Msg::TelemetryKv,
                &[("mean", &format!("{:.0}", m.mean)), ("max", &format!("{:.0}", m.max))],
            ));
        }
        if let Some(h) = w.prefix_cache_hit_pct {
            items.push(tr(Msg::TelemetryPrefixHits, &[("pct", &format!("{h:.0}"))]));
        }
        if let Some(p) = w.preemptions.filter(|p| *p > 0) {
            items.push(tr(Msg::TelemetryPreemptions, &[("n", &p)]));
        }
        if !items.is_empty() {
            parts.push(tr(Msg::TelemetryServer, &[("items", &items.join(", "))]));
        }
    }
    if let Some(g) = gpu {
        let mut items = Vec::new();
        if let Some(p) = g.power_w {
            items.push(format!("{:.0} W", p.mean));
        }
        if let Some(t) = g.temperature_c {
            items.push(format!("{:.0} °C", t.max));
        }
        if let Some(u) = g.utilization_pct {
            items.push(tr(Msg::TelemetryGpuBusy, &[("pct", &format!("{:.0}", u.mean))]));
        }
        if let Some(t) = g.tokens_per_joule {
            items.push(format!("{t:.2} tok/J"));
        }
        if !items.is_empty() {
            parts.push(tr(Msg::TelemetryGpus, &[("n", &g.gpus), ("items", &items.join(", "))]));
        }
    }
    (!parts.is_empty()).then(|| parts.join(" · "))
}

/// Chunks carried several tokens and the server did not say how many each: said once per step.
pub fn tokens_per_chunk_sentence(s: &StepStats) -> String {
    let about = s
        .tokens_per_chunk_mean
        .map(|mean| tr(Msg::TokensPerChunkAbout, &[("mean", &format!("{mean:.1}"))]))
        .unwrap_or_default();
    tr(Msg::TokensPerChunk, &[("about", &about)])
}

/// The server reused cached prompts: said once per step, with the way out.
pub fn prompt_cache_sentence(s: &StepStats) -> String {
    tr(
        Msg::PromptCacheStep,
        &[("hits", &s.prompt_cache_hits), ("ok", &s.requests_ok)],
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
        .map(|us| tr(Msg::ClientPerEvent, &[("us", &format!("{us:.1}"))]))
        .unwrap_or_default();
    let rss = c
        .peak_rss_mb
        .map(|mb| tr(Msg::ClientRss, &[("mb", &format!("{mb:.0}"))]))
        .unwrap_or_default();
    tr(
        if c.cores == 1 {
            Msg::ClientLineOneCore
        } else {
            Msg::ClientLine
        },
        &[
            ("cpu", &format!("{:.2}", c.cpu_s)),
            ("events", &c.events),
            ("per_event", &per_event),
            ("cores", &c.cores),
            ("rss", &rss),
        ],
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
        return tr(
            Msg::IntervalEmbeddingsLine,
            &[
                ("elapsed", &elapsed),
                ("test", &s.test),
                ("ok", &s.requests_ok),
                ("failed", &s.requests_failed),
                ("errors", &errors),
                ("resent", &resent(s)),
                ("inputs_s", &format!("{:.1}", s.inputs_per_s.unwrap_or(0.0))),
                ("tokens_s", &format!("{:.1}", s.input_tokens_per_s.unwrap_or(0.0))),
                ("e2e_p50", &ms(s.e2e_ms, |d| d.p50)),
                ("e2e_p99", &ms(s.e2e_ms, |d| d.p99)),
            ],
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
    tr(
        Msg::IntervalLine,
        &[
            ("elapsed", &elapsed),
            ("test", &s.test),
            ("ok", &s.requests_ok),
            ("failed", &s.requests_failed),
            ("errors", &errors),
            ("resent", &resent(s)),
            ("rate", &rate),
            ("ttft_p50", &ms(s.ttft_ms, |d| d.p50)),
            ("ttft_p99", &ms(s.ttft_ms, |d| d.p99)),
            ("itl_p50", &ms(s.itl_ms, |d| d.p50)),
            ("itl_p99", &ms(s.itl_ms, |d| d.p99)),
        ],
    )
}
