//! Open-loop load against the simulator: arrival processes, the concurrency cap, coordinated
//! omission, a fixed number of requests, ramp-up, saturation. Tolerances are statistical
//! (several standard errors) or wide enough for a noisy 2-core machine.

mod common;

use common::*;

#[test]
fn max_concurrency_holds_exactly_and_coordinated_omission_is_corrected() {
    // Capacity: 4 slots × (10 tokens × 10 ms) ≈ 40 req/s; the cap is 4 in flight, the rate 80.
    let sim = Sim::start(engine(64, 10.0));
    let (s, stdout) = run_ok(
        &sim,
        &[
            "-o",
            "-pp",
            "20",
            "-tg",
            "10",
            "--rate",
            "80",
            "--arrival",
            "constant",
            "--max-concurrency",
            "4",
            "--step-duration",
            "4s",
            "--drain-timeout",
            "1s",
        ],
    );
    assert_eq!(sim.stats().max_in_flight, 4, "the server never saw more than the cap");
    let step = &s.summary()["steps"][0];
    assert!(step["max_in_flight"].as_u64().unwrap() <= 4, "{step}");
    assert_eq!(step["connections"], 4, "the cap is the connections: {step}");
    let warning = step["pacing_warning"].as_str().unwrap_or_default();
    assert!(
        warning.contains("--max-concurrency 4 cap held requests back"),
        "{warning}"
    );
    assert!(stdout.contains("LOAD NOT AS ASKED"), "{stdout}");
    // Both ways of counting latency are reported.
    for key in ["ttft_ms", "e2e_ms", "ttft_from_intended_ms", "e2e_from_intended_ms"] {
        assert!(step[key]["p99"].as_f64().is_some(), "{key}: {step}");
    }
    // From the actual send the server looks flat; from the intended send the wait grows.
    let mut recs: Vec<(f64, f64, f64)> = s
        .records()
        .iter()
        .filter(|r| r["ok"] == true && r["phase"] == "measured")
        .map(|r| {
            let start = num(&r["start_s"]);
            let intended = num(&r["intended_s"]);
            let e2e = num(&r["end_us"]) / 1000.0;
            (intended, e2e, e2e + (start - intended) * 1000.0)
        })
        .collect();
    recs.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert!(recs.len() > 40, "{}", recs.len());
    let quarter = recs.len() / 4;
    let mean = |slice: &[(f64, f64, f64)], pick: fn(&(f64, f64, f64)) -> f64| {
        slice.iter().map(pick).sum::<f64>() / slice.len() as f64
    };
    let (first, last) = (&recs[..quarter], &recs[recs.len() - quarter..]);
    let sent_first = mean(first, |r| r.1);
    let sent_last = mean(last, |r| r.1);
    assert!(
        (sent_last / sent_first - 1.0).abs() < 0.5,
        "from the send: {sent_first:.1} → {sent_last:.1} ms"
    );
    let due_first = mean(first, |r| r.2);
    let due_last = mean(last, |r| r.2);
    assert!(
        due_last > 3.0 * due_first && due_last > 500.0,
        "from the intended send: {due_first:.1} → {due_last:.1} ms"
    );
    assert!(
        num(&step["e2e_from_intended_ms"]["p99"]) > 3.0 * num(&step["e2e_ms"]["p99"]),
        "{step}"
    );
}

#[test]
fn a_fixed_number_of_requests_in_either_loop() {
    for (args, n) in [
        (vec!["-o", "-st", "3", "-et", "3", "--requests", "10"], 10u64),
        (vec!["-o", "--rate", "100", "--requests", "25"], 25),
    ] {
        let sim = Sim::start(fast_sim());
        let s = Scratch::new();
        let mut all = args.clone();
        all.extend(["-pp", "20", "-tg", "3"]);
        let out = s.run(&sim.url, &all);
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{stdout}\n{stderr}");
        let step = &s.summary()["steps"][0];
        assert_eq!(step["requests_ok"].as_u64(), Some(n), "{args:?}: {step}");
        assert_eq!(step["measured_over"], "batch");
        assert_eq!(sim.stats().requests_total, n, "{args:?}: exactly N sent");
        assert_eq!(s.records().len() as u64, n);
    }
}

#[test]
fn ramp_up_is_left_out_of_the_statistics() {
    let sim = Sim::start(fast_sim());
    let (s, _) = run_ok(
        &sim,
        &[
            "-o",
            "-pp",
            "20",
            "-tg",
            "2",
            "--rate",
            "100",
            "--arrival",
            "constant",
            "--ramp-up",
            "2s",
            "--step-duration",
            "2s",
        ],
    );
    let step = &s.summary()["steps"][0];
    // The rate grows from 0 to 100 over 2 s: about 100 requests, all warm-up; then 200 measured.
    let warmup = step["requests_warmup"].as_u64().unwrap();
    let measured = step["requests_ok"].as_u64().unwrap();
    assert!((95..=105).contains(&warmup), "{warmup} warm-up requests");
    assert!((195..=205).contains(&measured), "{measured} measured requests");
    let window = &step["window"];
    assert!(
        (num(&window["end_s"]) - num(&window["start_s"]) - 2.0).abs() < 1e-6,
        "{window}"
    );
    // Every warm-up record was due before the window, every measured one inside it.
    for r in s.records() {
        let intended = num(&r["intended_s"]);
        let inside = intended >= num(&window["start_s"]);
        assert_eq!(r["phase"] == "measured", inside, "{r}");
    }
    // The ramp: in its first second a quarter of its requests (Λ(1)/Λ(2) = 1/4).
    let start = num(&window["start_s"]) - 2.0;
    let early = s
        .records()
        .iter()
        .filter(|r| num(&r["intended_s"]) < start + 1.0)
        .count();
    assert!(
        (20..=30).contains(&early),
        "{early} requests in the ramp's first second"
    );
}

#[test]
fn saturation_ends_the_step_with_the_backlog_bounded() {
    // Capacity ≈ 4 / (10 × 10 ms) = 40 req/s; 400 req/s piles up at once.
    let sim = Sim::start(engine(4, 10.0));
    let started = std::time::Instant::now();
    let (s, stdout) = run_ok(
        &sim,
        &[
            "-o",
            "-pp",
            "20",
            "-tg",
            "10",
            "--rate",
            "400,800",
            "--step-duration",
            "20s",
            "--max-backlog",
            "50",
            "--stop-when-saturated",
        ],
    );
    assert!(started.elapsed().as_secs() < 15, "the saturated step ended early");
    let summary = s.summary();
    let steps = summary["steps"].as_array().unwrap();
    assert_eq!(
        steps.len(),
        1,
        "--stop-when-saturated: no higher rate after the saturated one"
    );
    let step = &steps[0];
    assert_eq!(step["saturated"], true, "{step}");
    assert!(step["max_backlog"].as_u64().unwrap() <= 50, "{step}");
    assert!(step["requests_unsent"].as_u64().unwrap() > 0, "{step}");
    // Waiting (no first token) at most 50, plus the 4 the engine is serving.
    assert!(sim.stats().max_in_flight <= 54, "never more waiting than the limit");
    assert!(stdout.contains("SATURATED"), "{stdout}");
    assert!(
        summary["recommendations"]
            .to_string()
            .contains("saturated at 400 req/s"),
        "{}",
        summary["recommendations"]
    );
}

#[test]
fn stress_run_at_a_fixed_rate_reports_windows() {
    let sim = Sim::start(fast_sim());
    let (s, _) = run_ok(
        &sim,
        &[
            "-o",
            "-pp",
            "20",
            "-tg",
            "5",
            "--rate",
            "50",
            "--arrival",
            "constant",
            "--duration",
            "4s",
            "--report-interval",
            "1s",
            "--warmup",
            "500ms",
        ],
    );
    let summary = s.summary();
    let total = &summary["steps"][0];
    assert_eq!(total["load"]["kind"], "rate");
    assert!((num(&total["achieved_rps"]) - 50.0).abs() < 1.5, "{total}");
    assert_eq!(sim.stats().requests_total, 200, "4 s at 50 req/s");
    // Warm-up requests count once, in the interval they were sent in, and in the totals.
    let warmup_total = total["requests_warmup"].as_u64().unwrap();
    assert!(
        (24..=26).contains(&warmup_total),
        "{warmup_total} warm-up requests in 500 ms"
    );
    let intervals = summary["stress"]["intervals"].as_array().unwrap();
    assert!((3..=5).contains(&intervals.len()), "{} intervals", intervals.len());
    let warmup_in_intervals: u64 = intervals
        .iter()
        .map(|i| i["tests"][0]["requests_warmup"].as_u64().unwrap())
        .sum();
    assert_eq!(
        warmup_in_intervals, warmup_total,
        "each warm-up request in one interval"
    );
    // Each full interval: the requests sent in it, and the tokens that arrived in it.
    // After the first (half warm-up), each full interval.
    for interval in &intervals[1..3] {
        let t = &interval["tests"][0];
        let sent = t["requests_ok"].as_u64().unwrap();
        let length = num(&interval["end_s"]) - num(&interval["start_s"]);
        let expected = 50.0 * length;
        assert!((sent as f64 - expected).abs() <= 2.0, "{sent} sent in {length:.2} s");
        assert!((num(&t["output_throughput_tps"]) - 250.0).abs() < 25.0, "{t}");
    }
}

#[test]
fn a_closed_loop_ramp_up_starts_connections_in_turn() {
    let sim = Sim::start(fast_sim());
    let (s, _) = run_ok(
        &sim,
        &[
            "-o",
            "-pp",
            "20",
            "-tg",
            "2",
            "-st",
            "4",
            "-et",
            "4",
            "--ramp-up",
            "1s",
            "--step-duration",
            "1s",
        ],
    );
    let records = s.records();
    // Connection i of 4 sends its first request i/4 of the way through the ramp-up.
    let first = |conn: u64| {
        records
            .iter()
            .filter(|r| r["conn"].as_u64() == Some(conn))
            .map(|r| num(&r["intended_s"]))
            .fold(f64::INFINITY, f64::min)
    };
    let t0 = first(0);
    for conn in 1..4u64 {
        let offset = first(conn) - t0;
        assert!(
            (offset - 0.25 * conn as f64).abs() < 0.05,
            "connection {conn} started {offset:.3} s in"
        );
    }
    let step = &s.summary()["steps"][0];
    assert!(step["requests_warmup"].as_u64().unwrap() > 0, "{step}");
    for r in &records {
        assert_eq!(
            r["phase"] == "measured",
            num(&r["intended_s"]) >= t0 + 1.0 - 1e-6,
            "{r}"
        );
    }
}

#[test]
fn the_drain_time_bounds_a_timed_step_in_either_loop() {
    // One sequence at a time, 50 tokens of 20 ms: 1 s a request, so 4 requests queue for 4 s;
    // the step ends at 1 s and its drain time at 1.5 s: one request done, the others cut.
    for load in [["-st", "4", "-et", "4"], ["--rate", "4", "--arrival", "constant"]] {
        let sim = Sim::start(engine(1, 20.0));
        let started = std::time::Instant::now();
        let mut args = vec![
            "-o",
            "-pp",
            "20",
            "-tg",
            "50",
            "--step-duration",
            "1s",
            "--drain-timeout",
            "500ms",
        ];
        args.extend(load);
        let (s, _) = run_ok(&sim, &args);
        let took = started.elapsed().as_secs_f64();
        assert!(
            took < 3.5,
            "{load:?}: the step took {took:.1} s, past its end and drain time"
        );
        let step = &s.summary()["steps"][0];
        let cut = step["requests_cancelled"].as_u64().unwrap();
        assert!(cut >= 2, "{load:?}: {cut} cut: {step}");
        assert_eq!(step["requests_failed"], 0, "cut requests are not failures: {step}");
        // The cut requests are on disk with what arrived.
        let on_disk = s.records().iter().filter(|r| r["error"] == "cancelled").count() as u64;
        assert!(on_disk >= cut, "{on_disk} cancelled records");
    }
}

#[test]
fn a_low_rate_step_lasts_its_window() {
    let sim = Sim::start(fast_sim());
    let started = std::time::Instant::now();
    let (s, _) = run_ok(
        &sim,
        &[
            "-o",
            "-pp",
            "20",
            "-tg",
            "2",
            "--rate",
            "0.5",
            "--arrival",
            "constant",
            "--step-duration",
            "3s",
        ],
    );
    // Requests at 0 s and 2 s; the step still ends at 3 s, not after its last request.
    assert!(started.elapsed().as_secs_f64() >= 3.0, "{:?}", started.elapsed());
    let step = &s.summary()["steps"][0];
    assert_eq!(step["requests_ok"], 2, "{step}");
    assert!((num(&step["duration_s"]) - 3.0).abs() < 1e-6, "{step}");
}
