//! NvmlReader against a fake libnvidia-ml (tests/fixtures/fake_nvml.c), built here with `cc`:
//! the real nvml-wrapper path (dlopen, symbol lookup, struct layouts) on a machine without NVIDIA.
//!
//! One test function: `LLM_BENCH_NVML_LIB` is process-global, so the cases run in sequence.

use llm_bench::monitor::gpu::nvml::{NvmlReader, LIB_ENV};
use llm_bench::monitor::gpu::{GpuDevice, GpuReading};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const FAKE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/fake_nvml.c");

/// Builds the fake as `<dir>/libnvidia-ml.so.1`; None when there is no C compiler.
fn build_fake(dir: &Path, defines: &[&str]) -> Option<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    let out = dir.join("libnvidia-ml.so.1");
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-O1", "-o"])
        .arg(&out)
        .arg(FAKE)
        .args(defines)
        .status();
    match status {
        Ok(s) => {
            assert!(s.success(), "cc failed on {FAKE}");
            Some(out)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => panic!("running cc: {e}"),
    }
}

fn open_with(lib: &Path) -> Result<NvmlReader, String> {
    std::env::set_var(LIB_ENV, lib);
    NvmlReader::open()
}

fn assert_one_line(why: &str) {
    eprintln!("open() said: {why}");
    assert!(!why.is_empty() && !why.contains('\n'), "{why:?}");
}

/// Everything but the energy counter, which grows.
fn expected(energy0: Option<f64>) -> Vec<GpuDevice> {
    let names = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect());
    vec![
        GpuDevice {
            index: 0,
            name: Some("NVIDIA H100 80GB HBM3".into()),
            uuid: Some("GPU-00000000-1111-2222-3333-444444444444".into()),
            utilization_pct: Some(87.0),
            memory_used_mb: Some(40000.0),
            memory_total_mb: Some(81920.0),
            power_w: Some(350.0),
            energy_mj: energy0,
            temperature_c: Some(71.0),
            sm_clock_mhz: Some(1755.0),
            throttle: names(&["sw_power_cap"]),
        },
        GpuDevice {
            index: 1,
            name: Some("NVIDIA L4".into()),
            uuid: Some("GPU-55555555-6666-7777-8888-999999999999".into()),
            utilization_pct: Some(12.0),
            memory_used_mb: Some(2048.0),
            memory_total_mb: Some(24576.0),
            power_w: Some(72.5),
            energy_mj: None, // the fake says NOT_SUPPORTED
            temperature_c: Some(48.0),
            sm_clock_mhz: Some(1410.0),
            throttle: names(&["idle"]),
        },
    ]
}

/// One reading, with the instant halfway through it.
fn timed_read(r: &mut NvmlReader) -> (GpuReading, Instant) {
    let before = Instant::now();
    let reading = r.read().expect("read");
    let after = Instant::now();
    (reading, before + (after - before) / 2)
}

fn check_fake(lib: &Path) {
    let mut r = open_with(lib).expect("open the fake NVML");
    assert_eq!(r.device_count(), 2);
    let (first, t1) = timed_read(&mut r);
    let e1 = first.devices[0].energy_mj.expect("GPU 0 energy");
    assert!(e1 >= 5_000_000.0, "energy starts at the fake's base: {e1}");
    assert_eq!(first.devices, expected(Some(e1)));

    std::thread::sleep(Duration::from_millis(300));
    let (second, t2) = timed_read(&mut r);
    let e2 = second.devices[0].energy_mj.expect("GPU 0 energy");
    assert_eq!(second.devices, expected(Some(e2)));
    let watts = (e2 - e1) / 1000.0 / (t2 - t1).as_secs_f64();
    assert!(
        (watts - 350.0).abs() <= 350.0 * 0.02,
        "energy grew at {watts:.1} W over {:?}, not 350 W ±2%",
        t2 - t1
    );
}

#[test]
fn nvml_reader_against_a_fake_nvml() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(full) = build_fake(&tmp.path().join("full"), &[]) else {
        eprintln!("SKIPPED: no C compiler (cc)");
        return;
    };
    check_fake(&full);

    // Only the pre-CUDA-12.2 throttle name: the wrapper's call; and a missing symbol is fine.
    let old = build_fake(&tmp.path().join("old"), &["-DNO_EVENT_REASONS"]).unwrap();
    check_fake(&old);

    // No nvmlShutdown: refused (nvml-wrapper's Drop would panic on it), not a panic.
    let odd = build_fake(&tmp.path().join("odd"), &["-DNO_SHUTDOWN"]).unwrap();
    let why = open_with(&odd).expect_err("a library without nvmlShutdown");
    assert_one_line(&why);
    assert!(why.contains("nvmlShutdown"), "{why}");

    let missing = tmp.path().join("missing").join("libnvidia-ml.so.1");
    let why = open_with(&missing).expect_err("a missing library");
    assert_one_line(&why);
    assert!(why.contains(&*missing.to_string_lossy()), "{why}");

    // Not a shared library at all.
    let why = open_with(Path::new(FAKE)).expect_err("a C file");
    assert_one_line(&why);
    assert!(why.contains(FAKE), "{why}");

    std::env::remove_var(LIB_ENV);
}
