//! The client watches itself: a step where llm-bench could not keep up is marked client-bound,
//! and a normal step is not.

mod common;
use common::{fast_sim, text, Scratch, Sim};
use std::os::unix::process::CommandExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The last CPU this process may run on: the client and the CPU hogs share it.
fn victim_cpu() -> usize {
    // SAFETY: sched_getaffinity only writes into the set we pass.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    assert_eq!(rc, 0, "sched_getaffinity");
    (0..libc::CPU_SETSIZE as usize)
        .rev()
        .find(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .expect("at least one CPU")
}

fn pin_current_thread(cpu: usize) -> std::io::Result<()> {
    // SAFETY: the set is initialised before use; pid 0 is the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Busy threads pinned to `cpu` until the returned flag is cleared.
fn hog(cpu: usize, threads: usize) -> Arc<AtomicBool> {
    let running = Arc::new(AtomicBool::new(true));
    for _ in 0..threads {
        let running = running.clone();
        std::thread::spawn(move || {
            pin_current_thread(cpu).expect("pin the hog");
            while running.load(Ordering::Relaxed) {
                std::hint::spin_loop();
            }
        });
    }
    running
}

/// In a child between fork and exec: run only on `cpu`, at the lowest priority.
fn starve_self(cpu: usize) -> std::io::Result<()> {
    // SAFETY: the set is initialised before use; these calls are async-signal-safe.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0
            || libc::setpriority(libc::PRIO_PROCESS, 0, 19) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

fn assert_healthy_figures(step: &serde_json::Value) {
    let client = &step["client"];
    assert!(client["lag"]["samples"].as_u64().unwrap() > 0, "{client}");
    assert!(client["cores"].as_u64().unwrap() >= 1, "{client}");
    assert!(client["send_delay_p99_ms"].as_f64().is_some(), "{client}");
}

// One test function: the starved run must not overlap the normal one.
#[test]
fn a_starved_client_is_flagged_and_a_normal_one_is_not() {
    let sim = Sim::start(fast_sim());

    // Normal: a modest load with the machine to itself.
    let normal = Scratch::new();
    let out = normal.run(
        &sim.url,
        &[
            "-o",
            "-st",
            "2",
            "-et",
            "4",
            "-ts",
            "2",
            "--step-duration",
            "1s",
            "-tg",
            "40",
        ],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let summary = normal.summary();
    assert_eq!(summary["client_bound"], false, "{stdout}");
    let steps = summary["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2);
    for step in steps {
        assert_eq!(step["client_bound"], false, "{step}");
        assert_healthy_figures(step);
    }
    assert!(!stdout.contains("CLIENT-BOUND"), "{stdout}");
    let client = &summary["client"];
    assert!(client["events"].as_u64().unwrap() > 0, "{client}");
    assert!(client["cpu_us_per_event"].as_f64().unwrap() > 0.0, "{client}");
    assert!(client["startup_first_request_ms"].as_f64().unwrap() > 0.0, "{client}");
    assert!(stdout.contains("Client: llm-bench used"), "{stdout}");

    // Starved: the client shares one CPU, at the lowest priority, with two busy threads.
    let cpu = victim_cpu();
    let running = hog(cpu, 2);
    let starved = Scratch::new();
    let mut cmd = starved.command(
        &sim.url,
        &[
            "-o",
            "-st",
            "200",
            "-et",
            "200",
            "--step-duration",
            "2s",
            "-tg",
            "60",
            "--threads",
            "1",
        ],
    );
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || starve_self(cpu));
    }
    let out = cmd.output().expect("llm-bench runs");
    // The same starvation in stress mode: its report intervals are judged the same way.
    let stressed = Scratch::new();
    let mut stress_cmd = stressed.command(
        &sim.url,
        &[
            "-o",
            "-st",
            "200",
            "--duration",
            "3s",
            "--report-interval",
            "1s",
            "-tg",
            "60",
            "--threads",
            "1",
        ],
    );
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        stress_cmd.pre_exec(move || starve_self(cpu));
    }
    let stress_out = stress_cmd.output().expect("llm-bench runs");
    running.store(false, Ordering::Relaxed);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let summary = starved.summary();
    assert_eq!(summary["client_bound"], true, "{stdout}");
    let step = &summary["steps"][0];
    assert_eq!(step["client_bound"], true, "{step}");
    assert_healthy_figures(step);
    let reasons = step["client"]["reasons"].as_array().unwrap();
    assert!(!reasons.is_empty(), "{step}");
    let sentence = "describe llm-bench, not the server";
    assert!(stdout.contains("CLIENT-BOUND") && stdout.contains(sentence), "{stdout}");
    let log = std::fs::read_to_string(starved.log()).unwrap();
    assert!(log.contains("CLIENT-BOUND") && log.contains(sentence), "{log}");
    assert!(
        summary["recommendations"][0]
            .as_str()
            .unwrap()
            .contains("llm-bench itself was the bottleneck"),
        "{summary}"
    );

    let (stdout, stderr) = text(&stress_out);
    assert!(stress_out.status.success(), "{stdout}\n{stderr}");
    let summary = stressed.summary();
    assert_eq!(summary["client_bound"], true, "{stdout}");
    let intervals = summary["stress"]["intervals"].as_array().unwrap();
    assert!(
        intervals
            .iter()
            .flat_map(|i| i["tests"].as_array().unwrap())
            .any(|t| t["client_bound"] == true),
        "no interval flagged: {stdout}"
    );
    assert_eq!(
        summary["steps"][0]["client_bound"], true,
        "the totals carry the worst interval"
    );
    assert!(stdout.contains("CLIENT-BOUND"), "{stdout}");
}
