//! A real browser draws report.html: Debian's chromium, headless, renders a step run's report
//! to a PNG, and the picture has the size asked for and is not blank. Without chromium the
//! test says loudly that it skipped (`.ci/run` installs it).

mod common;

use common::{fast_sim, text, Scratch, Sim};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const WIDTH: u32 = 1280;
const HEIGHT: u32 = 2400;

fn chromium() -> Option<PathBuf> {
    [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

/// Renders `page` to `png` with no network, no sync and no GPU; `None` after 90 s.
fn screenshot(browser: &Path, page: &Path, png: &Path, profile: &Path) -> Option<std::process::Output> {
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("--window-size={WIDTH},{HEIGHT}"))
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chromium starts");
    let deadline = Instant::now() + Duration::from_secs(90);
    while child.try_wait().expect("chromium can be waited for").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(child.wait_with_output().expect("chromium's output"))
}

/// A decoded 8-bit PNG: width, height, channels, pixels.
struct Image {
    width: u32,
    height: u32,
    channels: usize,
    pixels: Vec<u8>,
}

/// Just enough of PNG for a browser's screenshot: 8-bit RGB or RGBA, not interlaced.
fn decode_png(bytes: &[u8]) -> Image {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let (mut pos, mut header, mut data) = (8, None, Vec::new());
    while pos + 8 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        let kind = &bytes[pos + 4..pos + 8];
        let body = &bytes[pos + 8..pos + 8 + len];
        match kind {
            b"IHDR" => header = Some(body.to_vec()),
            b"IDAT" => data.extend_from_slice(body),
            _ => {}
        }
        pos += 12 + len;
    }
    let h = header.expect("an IHDR chunk");
    let width = u32::from_be_bytes(h[0..4].try_into().unwrap());
    let height = u32::from_be_bytes(h[4..8].try_into().unwrap());
    let (depth, colour, interlace) = (h[8], h[9], h[12]);
    assert_eq!((depth, interlace), (8, 0), "8-bit, not interlaced");
    let channels = match colour {
        2 => 3,
        6 => 4,
        other => panic!("colour type {other}"),
    };
    let raw = miniz_oxide::inflate::decompress_to_vec_zlib(&data).expect("the image data inflates");
    let stride = width as usize * channels;
    let mut pixels = vec![0u8; stride * height as usize];
    for row in 0..height as usize {
        let line = &raw[row * (stride + 1)..(row + 1) * (stride + 1)];
        let (filter, line) = (line[0], &line[1..]);
        let (done, current) = pixels.split_at_mut(row * stride);
        let current = &mut current[..stride];
        let above = |i: usize| if row == 0 { 0 } else { done[(row - 1) * stride + i] };
        for i in 0..stride {
            let left = if i >= channels { current[i - channels] } else { 0 };
            let up_left = if i >= channels { above(i - channels) } else { 0 };
            let predicted = match filter {
                0 => 0,
                1 => left,
                2 => above(i),
                3 => ((u16::from(left) + u16::from(above(i))) / 2) as u8,
                4 => paeth(left, above(i), up_left),
                other => panic!("filter {other}"),
            };
            current[i] = line[i].wrapping_add(predicted);
        }
    }
    Image {
        width,
        height,
        channels,
        pixels,
    }
}

fn paeth(a: u8, b: u8, c: u8) -> u8 {
    let p = i16::from(a) + i16::from(b) - i16::from(c);
    let (pa, pb, pc) = (
        (p - i16::from(a)).abs(),
        (p - i16::from(b)).abs(),
        (p - i16::from(c)).abs(),
    );
    if pa <= pb && pa <= pc {
        a
    } else if pb <= pc {
        b
    } else {
        c
    }
}

#[test]
fn chromium_renders_the_report() {
    let Some(browser) = chromium() else {
        eprintln!("SKIPPED: chromium_renders_the_report: no chromium installed (.ci/run installs Debian's chromium)");
        return;
    };
    let sim = Sim::start(fast_sim());
    let s = Scratch::new();
    let out = s.run(
        &sim.url,
        &[
            "--output",
            "--start-threads",
            "2",
            "--end-threads",
            "8",
            "--step-threads",
            "2",
            "--tokens-to-generate",
            "16",
            "--step-duration",
            "400ms",
            "--min-tps",
            "20",
        ],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let page = s.path("results").join("report.html");
    let png = s.path("report.png");
    let shot = screenshot(&browser, &page, &png, &s.path("profile")).expect("chromium finished within 90 s");
    let (stdout, stderr) = text(&shot);
    assert!(png.exists(), "no screenshot\n{stdout}\n{stderr}");
    let image = decode_png(&std::fs::read(&png).unwrap());
    assert_eq!((image.width, image.height), (WIDTH, HEIGHT));
    // Not blank: a good share of pixels are not the white background, and there are colours
    // (the chart series), not only greys.
    let pixels: Vec<&[u8]> = image.pixels.chunks(image.channels).collect();
    let inked = pixels.iter().filter(|p| p[..3].iter().any(|&c| c < 200)).count();
    let coloured = pixels
        .iter()
        .filter(|p| p[..3].iter().max().unwrap() - p[..3].iter().min().unwrap() > 60)
        .count();
    let total = pixels.len();
    assert!(inked * 200 > total, "almost blank: {inked} of {total} pixels inked");
    assert!(coloured > 500, "no coloured chart lines: {coloured} coloured pixels");
    eprintln!("chromium drew {WIDTH}x{HEIGHT}: {inked} inked and {coloured} coloured pixels of {total}");
}
