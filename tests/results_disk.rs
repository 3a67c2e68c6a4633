//! A results folder that cannot be written any more (a full disk, a folder removed mid-run):
//! llm-bench says so once, keeps the run and its console report going, and exits 1 because
//! the run's results were not saved.

mod common;

use common::*;
use std::os::unix::fs::symlink;
use std::process::Output;
use std::time::Duration;

/// Warning lines on stderr (each warning also goes to stdout and the log).
fn warnings(out: &Output) -> Vec<String> {
    let (_, stderr) = text(out);
    stderr
        .lines()
        .filter(|l| l.contains("warning"))
        .map(str::to_string)
        .collect()
}

fn check_report_went_on(out: &Output) {
    let (stdout, stderr) = text(out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "results not saved: exit 1\n{stdout}\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stdout.contains("== output test =="),
        "the final table is printed: {stdout}"
    );
    assert!(stdout.contains("Recommendations:"), "{stdout}");
}

#[test]
fn full_disk_under_requests_jsonl() {
    let sim = Sim::start(fast_sim());
    let s = Scratch::new();
    let dir = s.path("results");
    std::fs::create_dir(&dir).unwrap();
    // Every write to /dev/full fails with ENOSPC, as on a full disk.
    symlink("/dev/full", dir.join("requests.jsonl")).unwrap();
    let out = s.run(&sim.url, &["-o", "-st", "2", "-et", "6", "-ts", "2", "-tg", "5"]);
    check_report_went_on(&out);
    let warnings = warnings(&out);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("requests.jsonl") && warnings[0].contains("No space left on device"),
        "{warnings:?}"
    );
    let (stdout, _) = text(&out);
    assert_eq!(
        stdout.matches("No space left on device").count(),
        1,
        "said once: {stdout}"
    );
    assert!(stdout.contains("requests.jsonl is incomplete"), "{stdout}");
    // summary.json could still be written, and says what happened.
    let summary = s.summary();
    assert_eq!(summary["status"], "results_not_saved");
    assert_eq!(summary["steps"].as_array().unwrap().len(), 3, "every step ran");
    assert!(summary["notes"].to_string().contains("requests.jsonl is incomplete"));
}

#[test]
fn full_disk_under_both_results_files() {
    let sim = Sim::start(fast_sim());
    let s = Scratch::new();
    let dir = s.path("results");
    std::fs::create_dir(&dir).unwrap();
    symlink("/dev/full", dir.join("requests.jsonl")).unwrap();
    // summary.json is written through this temporary file, then renamed.
    symlink("/dev/full", dir.join(".summary.json.tmp")).unwrap();
    let out = s.run(
        &sim.url,
        &[
            "-o",
            "--duration",
            "2s",
            "-st",
            "3",
            "-tg",
            "5",
            "--report-interval",
            "1s",
        ],
    );
    check_report_went_on(&out);
    let warnings = warnings(&out);
    assert_eq!(warnings.len(), 1, "one warning for the whole folder: {warnings:?}");
    let (stdout, _) = text(&out);
    assert!(stdout.contains("Stress run summary:"), "{stdout}");
    assert!(stdout.contains("Results could not be saved in"), "{stdout}");
    assert!(!dir.join("summary.json").exists());
}

#[test]
fn results_folder_removed_mid_run() {
    let sim = Sim::start(fast_sim());
    let s = Scratch::new();
    let child = s
        .command(
            &sim.url,
            &[
                "-o",
                "--duration",
                "3s",
                "-st",
                "3",
                "-tg",
                "5",
                "--report-interval",
                "1s",
            ],
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let dir = s.path("results");
    // Removed once the first interval's checkpoint is on disk.
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while !dir.join("summary.json").exists() {
        assert!(std::time::Instant::now() < deadline, "no checkpoint was written");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The run may write a file into it while it is being removed (as under `rm -rf`): again
    // until it is gone.
    let mut tries = 0;
    while let Err(e) = std::fs::remove_dir_all(&dir) {
        tries += 1;
        assert!(tries < 50 && e.kind() == std::io::ErrorKind::DirectoryNotEmpty, "{e}");
    }
    let out = child.wait_with_output().unwrap();
    check_report_went_on(&out);
    let warnings = warnings(&out);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("was removed during the run") || warnings[0].contains("summary.json"),
        "{warnings:?}"
    );
    let (stdout, _) = text(&out);
    assert!(
        stdout.contains("Stress run summary:") && stdout.contains("Results could not be saved in"),
        "{stdout}"
    );
}
