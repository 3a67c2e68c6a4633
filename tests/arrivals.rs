//! Arrival processes against the simulator: each reaches its rate and has the spread of its
//! kind, by the simulator's own kernel-stamped count. Alone in its binary so that no other test
//! shares the 2 cores while gaps are measured.

mod common;

use common::*;

#[test]
fn arrival_processes_reach_their_rate_and_spread() {
    // (arrival flags, rate, expected CV of the gaps, tolerance on the CV)
    let cases: [(&[&str], f64, f64, f64); 4] = [
        (&["--arrival", "poisson"], 400.0, 1.0, 0.12),
        (&["--arrival", "gamma", "--burstiness", "0.25"], 400.0, 2.0, 0.35),
        // Regular gaps at a rate whose gaps (10 ms) dwarf the scheduling jitter of a busy machine.
        (&["--arrival", "gamma", "--burstiness", "4"], 100.0, 0.5, 0.08),
        // Constant gaps of 20 ms: scheduling jitter is the only spread.
        (&["--arrival", "constant"], 50.0, 0.0, 0.1),
    ];
    for (flags, rate, cv, cv_tol) in cases {
        let sim = Sim::start(fast_sim());
        let rate_arg = rate.to_string();
        let mut args = vec![
            "-o",
            "-pp",
            "20",
            "-tg",
            "2",
            "--rate",
            &rate_arg,
            "--step-duration",
            "5s",
        ];
        args.extend_from_slice(flags);
        let (s, stdout) = run_ok(&sim, &args);
        let step = &s.summary()["steps"][0];
        assert_eq!(step["load"]["kind"], "rate");
        assert_eq!(num(&step["target_rps"]), rate);
        let scheduled = num(&step["scheduled_rps"]);
        let achieved = num(&step["achieved_rps"]);
        let n = rate * 5.0;
        // The seeded schedule's own count varies around the target: 4 standard errors.
        let spread = 4.0 * cv.max(0.05) / n.sqrt();
        assert!(
            (scheduled / rate - 1.0).abs() < spread.max(0.03),
            "{flags:?}: scheduled {scheduled} for {rate}"
        );
        // What the client sent, and what the server saw arrive, follow the schedule within 3%.
        assert!(
            (achieved / scheduled - 1.0).abs() < 0.03,
            "{flags:?}: sent {achieved} of {scheduled}"
        );
        let arrivals = sim.stats().arrivals;
        assert!(
            (arrivals.rate_rps / scheduled - 1.0).abs() < 0.03,
            "{flags:?}: server saw {} req/s of {scheduled}",
            arrivals.rate_rps
        );
        assert!(
            (arrivals.cv - cv).abs() < cv_tol,
            "{flags:?}: CV {} (expected {cv})",
            arrivals.cv
        );
        let late = &step["send_lateness_ms"];
        assert!(num(&late["p99"]) < 10.0, "{flags:?}: lateness {late}");
        assert!(
            step.get("pacing_warning").is_none(),
            "{flags:?}: {}",
            step["pacing_warning"]
        );
        assert!(stdout.contains("rate: target"), "{stdout}");
    }
}
