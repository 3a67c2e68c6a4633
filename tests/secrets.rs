//! The API key and header values never appear in any output of a run.

mod common;

use common::*;
use llm_bench::sim::SimConfig;

fn all_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(all_files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn key_never_leaks() {
    const KEY: &str = "sk-llm-bench-secret-4242";
    const HEADER_VALUE: &str = "gateway-token-9999";
    let sim = Sim::start(SimConfig {
        api_key: Some(KEY.into()),
        ..fast_sim()
    });
    let s = Scratch::new();
    let out = s
        .command(
            &sim.url,
            &[
                "-i",
                "-o",
                "-st",
                "1",
                "-et",
                "2",
                "-tg",
                "4",
                "-H",
                &format!("X-Gateway: {HEADER_VALUE}"),
            ],
        )
        .env("OPENAI_API_KEY", KEY)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(s.summary()["config"]["api_key_set"] == true);
    let mut haystacks = vec![("stdout".to_string(), stdout), ("stderr".to_string(), stderr)];
    for file in all_files(s.dir.path()) {
        haystacks.push((
            file.display().to_string(),
            String::from_utf8_lossy(&std::fs::read(&file).unwrap()).into_owned(),
        ));
    }
    assert!(haystacks.len() >= 5);
    for (name, content) in haystacks {
        assert!(!content.contains(KEY), "the key leaked into {name}");
        assert!(!content.contains(HEADER_VALUE), "a header value leaked into {name}");
    }
    // --help shows no key default even when the variable is set.
    let help = bin().arg("--help").env("OPENAI_API_KEY", KEY).output().unwrap();
    assert!(!String::from_utf8_lossy(&help.stdout).contains(KEY));
}
