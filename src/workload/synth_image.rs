//! Synthetic images for the multimodal test: a different picture for every seed, so that a
//! server's image cache (vLLM's multimodal processor cache, a prefix cache keyed on the image
//! hash) cannot hide the cost of decoding and encoding it.
//!
//! The picture is a seeded photo stand-in: two smooth gradients and a low-frequency wave per
//! channel, a coarse grid of tinted blocks and a few rectangles (edges, which is where JPEG and
//! PNG spend their bytes), plus per-pixel noise of a few levels (sensor grain). A flat colour
//! would compress to almost nothing and pure noise to more than any photo; this lands in between,
//! in the range of real photos of the same size:
//!
//! | 512x512, seeds 0..50 | bytes (mean) | time to make one (release build, one core) |
//! | --- | --- | --- |
//! | JPEG (quality 85, 4:2:0) | ~41 KB | ~5.5 ms, of which ~1.2 ms the pixels |
//! | PNG (RGB8, Sub filter, deflate level 1) | ~514 KB | ~12 ms |
//!
//! Measured with `cargo test --release --lib synth_image::tests::timing_512 -- --ignored
//! --nocapture` on a 2-core machine shared with other builds (the times varied up to 2x between
//! runs): one core makes ~150 JPEGs or ~80 PNGs a second.
//! (A 512x512 phone photo is 40–90 KB as a JPEG at quality 85 and 400–600 KB as a PNG.)
//!
//! Encoders, chosen for build time and size, not for the smallest output:
//! - JPEG: `jpeg-encoder`, pure Rust with no dependencies (the `image` crate would bring a
//!   decoder for every format and ~100 s of build for one encoder we need).
//! - PNG: our own ~40-line writer (signature, IHDR, one IDAT, IEND, CRC-32 from a table built at
//!   compile time) around `miniz_oxide`'s zlib stream (its only dependency is `adler2`, which
//!   gives the Adler-32). The `png` crate would add `flate2`, `fdeflate`, `crc32fast` and
//!   `bitflags` for features (reading, APNG, palettes) that a writer of RGB8 pictures does not use.
//!   Deflate level 1, the fastest level that still matches strings; Huffman-only and RLE were no
//!   faster here and no smaller.

use super::tokens::SplitMix;
use std::fmt;

/// The encoding of a synthetic image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ImageFormat {
    Png,
    #[default]
    Jpeg,
}

impl ImageFormat {
    /// `png`, `jpeg` or `jpg` (any case).
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "png" => Ok(ImageFormat::Png),
            "jpeg" | "jpg" => Ok(ImageFormat::Jpeg),
            _ => Err(format!("unknown image format {s:?}; expected png or jpeg (jpg)")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ImageFormat::Png => "png",
            ImageFormat::Jpeg => "jpeg",
        }
    }

    /// The MIME type for the data URL.
    pub fn mime(self) -> &'static str {
        match self {
            ImageFormat::Png => "image/png",
            ImageFormat::Jpeg => "image/jpeg",
        }
    }
}

impl fmt::Display for ImageFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The largest side accepted by [`parse_image_size`] (and by [`synth_image`]).
pub const MAX_SIDE: u32 = 8192;

/// Parses `WIDTHxHEIGHT` (`512x512`; `X` and `×` too, spaces around the parts allowed), each side
/// in `1..=8192`.
pub fn parse_image_size(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("image size {s:?} is not WIDTHxHEIGHT with each side in 1..={MAX_SIDE}, e.g. 512x512");
    let t = s.trim();
    let (w, h) = t.split_once(['x', 'X', '×']).ok_or_else(bad)?;
    let side = |part: &str| -> Result<u32, String> {
        let part = part.trim();
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        match part.parse::<u32>() {
            Ok(n) if (1..=MAX_SIDE).contains(&n) => Ok(n),
            _ => Err(bad()),
        }
    };
    Ok((side(w)?, side(h)?))
}

/// A `width` x `height` picture in `format`, the same bytes for the same arguments and different
/// ones for every seed.
///
/// # Panics
/// If a side is 0 or over [`MAX_SIDE`] (check flags with [`parse_image_size`]).
pub fn synth_image(width: u32, height: u32, format: ImageFormat, seed: u64) -> Vec<u8> {
    assert!(
        (1..=MAX_SIDE).contains(&width) && (1..=MAX_SIDE).contains(&height),
        "image size {width}x{height} outside 1..={MAX_SIDE}"
    );
    let rgb = pixels(width, height, seed);
    match format {
        ImageFormat::Png => encode_png(&rgb, width, height),
        ImageFormat::Jpeg => encode_jpeg(&rgb, width, height),
    }
}

/// Noise amplitude: each channel of each pixel moves by up to this many levels either way.
const NOISE: i32 = 9;

/// The RGB8 pixels of the picture for `seed`.
fn pixels(width: u32, height: u32, seed: u64) -> Vec<u8> {
    let (w, h) = (width as usize, height as usize);
    let mut rng = SplitMix::new(seed ^ 0x6C6C_6D2D_6265_6E63);

    // Separable smooth field: per channel, base + x-gradient + wave(x) in `col`, y-gradient +
    // wave(y) in `row`; the pixel is their sum (two table look-ups, no per-pixel maths).
    let mut col = vec![[0i16; 3]; w];
    let mut row = vec![[0i16; 3]; h];
    for c in 0..3 {
        let base = rng.range(50, 200) as f32;
        let (gx, gy) = (rng.range(-70, 70) as f32, rng.range(-70, 70) as f32);
        let (ax, ay) = (rng.range(5, 25) as f32, rng.range(5, 25) as f32);
        let (fx, fy) = (rng.range(1, 5) as f32, rng.range(1, 5) as f32);
        let (px, py) = (rng.range(0, 628) as f32 / 100.0, rng.range(0, 628) as f32 / 100.0);
        for (x, v) in col.iter_mut().enumerate() {
            let t = x as f32 / w as f32;
            v[c] = (base + gx * (t - 0.5) + ax * (std::f32::consts::TAU * fx * t + px).sin()) as i16;
        }
        for (y, v) in row.iter_mut().enumerate() {
            let t = y as f32 / h as f32;
            v[c] = (gy * (t - 0.5) + ay * (std::f32::consts::TAU * fy * t + py).sin()) as i16;
        }
    }

    // A coarse grid of tinted blocks: the cell of each column and row, a tint per cell.
    let cells_x = rng.range(3, 12) as usize;
    let cells_y = rng.range(3, 12) as usize;
    let cell_of_x: Vec<usize> = (0..w).map(|x| x * cells_x / w).collect();
    let tints: Vec<[i16; 3]> = (0..cells_x * cells_y)
        .map(|_| [0; 3].map(|_: i16| rng.range(-28, 28) as i16))
        .collect();

    let mut out = vec![0u8; w * h * 3];
    let mut noise = SplitMix::new(rng.next_u64());
    for (y, line) in out.chunks_exact_mut(w * 3).enumerate() {
        let tint_row = &tints[y * cells_y / h * cells_x..][..cells_x];
        let r = row[y];
        let mut bits = 0u64;
        let mut left = 0u32;
        for (x, px) in line.chunks_exact_mut(3).enumerate() {
            let base = col[x];
            let tint = tint_row[cell_of_x[x]];
            for c in 0..3 {
                if left == 0 {
                    bits = noise.next_u64();
                    left = 8;
                }
                // One byte of noise per channel, folded to -NOISE..=NOISE.
                let n = (((bits & 0xFF) as i32 * (2 * NOISE + 1)) >> 8) - NOISE;
                bits >>= 8;
                left -= 1;
                let v = base[c] as i32 + r[c] as i32 + tint[c] as i32 + n;
                px[c] = v.clamp(0, 255) as u8;
            }
        }
    }

    // A few solid rectangles over it (objects with sharp edges), keeping the grain.
    for _ in 0..rng.range(2, 6) {
        let x0 = rng.range(0, width as i32 - 1) as usize;
        let y0 = rng.range(0, height as i32 - 1) as usize;
        let x1 = (x0 + 1 + rng.range(0, width as i32 / 3) as usize).min(w);
        let y1 = (y0 + 1 + rng.range(0, height as i32 / 3) as usize).min(h);
        let shift = [0; 3].map(|_: i32| rng.range(-60, 60));
        for y in y0..y1 {
            for px in out[(y * w + x0) * 3..(y * w + x1) * 3].chunks_exact_mut(3) {
                for c in 0..3 {
                    px[c] = (px[c] as i32 + shift[c]).clamp(0, 255) as u8;
                }
            }
        }
    }
    out
}

fn encode_jpeg(rgb: &[u8], width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(rgb.len() / 10);
    // Sides are at most MAX_SIDE, well within JPEG's u16.
    jpeg_encoder::Encoder::new(&mut out, 85)
        .encode(rgb, width as u16, height as u16, jpeg_encoder::ColorType::Rgb)
        .expect("the buffer has width*height RGB pixels and the writer is a Vec");
    out
}

/// PNG: signature, IHDR (RGB8), one IDAT with every scanline Sub-filtered, IEND.
fn encode_png(rgb: &[u8], width: u32, height: u32) -> Vec<u8> {
    let idat = miniz_oxide::deflate::compress_to_vec_zlib(&sub_filtered(rgb, width), 1);

    let mut out = Vec::with_capacity(idat.len() + 64);
    out.extend_from_slice(b"\x89PNG\r\n\x1a\n");
    let mut ihdr = [0u8; 13];
    ihdr[..4].copy_from_slice(&width.to_be_bytes());
    ihdr[4..8].copy_from_slice(&height.to_be_bytes());
    ihdr[8] = 8; // bit depth
    ihdr[9] = 2; // colour type: RGB; compression, filter and interlace methods 0
    png_chunk(&mut out, b"IHDR", &ihdr);
    png_chunk(&mut out, b"IDAT", &idat);
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// The scanlines of RGB8 `rgb`, each with filter type Sub: a byte minus the one a pixel to its left.
fn sub_filtered(rgb: &[u8], width: u32) -> Vec<u8> {
    let stride = width as usize * 3;
    let mut raw = Vec::with_capacity(rgb.len() + rgb.len() / stride);
    for line in rgb.chunks_exact(stride) {
        raw.push(1);
        raw.extend_from_slice(&line[..3]);
        raw.extend(line[3..].iter().zip(line).map(|(cur, left)| cur.wrapping_sub(*left)));
    }
    raw
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32_update(crc32_update(!0, kind), data);
    out.extend_from_slice(&(!crc).to_be_bytes());
}

/// CRC-32 (IEEE, reflected 0xEDB88320) table, built at compile time.
const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut n = 0;
    while n < 256 {
        let mut c = n as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        table[n] = c;
        n += 1;
    }
    table
};

fn crc32_update(mut crc: u32, bytes: &[u8]) -> u32 {
    for &b in bytes {
        crc = CRC_TABLE[((crc ^ b as u32) & 0xFF) as usize] ^ (crc >> 8);
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::image::sniff_mime;
    use std::time::Instant;

    /// Decodes our PNG the long way: checks the signature, every chunk's CRC, IHDR, inflates the
    /// IDATs and undoes the Sub filter. Returns (width, height, RGB pixels).
    fn decode_png(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let mut at = 8;
        let (mut width, mut height, mut zlib, mut ended) = (0, 0, Vec::new(), false);
        while at < bytes.len() {
            let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
            let kind = &bytes[at + 4..at + 8];
            let data = &bytes[at + 8..at + 8 + len];
            let crc = u32::from_be_bytes(bytes[at + 8 + len..at + 12 + len].try_into().unwrap());
            assert_eq!(!crc32_update(crc32_update(!0, kind), data), crc, "CRC of {kind:?}");
            match kind {
                b"IHDR" => {
                    width = u32::from_be_bytes(data[..4].try_into().unwrap());
                    height = u32::from_be_bytes(data[4..8].try_into().unwrap());
                    assert_eq!(&data[8..], &[8, 2, 0, 0, 0]);
                }
                b"IDAT" => zlib.extend_from_slice(data),
                b"IEND" => ended = true,
                _ => panic!("unexpected chunk {kind:?}"),
            }
            at += 12 + len;
        }
        assert!(ended && at == bytes.len());
        let raw = miniz_oxide::inflate::decompress_to_vec_zlib(&zlib).expect("valid zlib with its Adler-32");
        let stride = width as usize * 3;
        assert_eq!(raw.len(), (stride + 1) * height as usize);
        let mut rgb = Vec::with_capacity(stride * height as usize);
        for line in raw.chunks_exact(stride + 1) {
            assert_eq!(line[0], 1, "Sub filter");
            let start = rgb.len();
            for (i, &b) in line[1..].iter().enumerate() {
                let left = if i >= 3 { rgb[start + i - 3] } else { 0 };
                rgb.push(b.wrapping_add(left));
            }
        }
        (width, height, rgb)
    }

    #[test]
    fn png_is_valid_and_decodes_to_the_pixels() {
        for (w, h) in [(1, 1), (7, 3), (64, 48), (512, 512)] {
            let bytes = synth_image(w, h, ImageFormat::Png, 42);
            assert_eq!(sniff_mime(&bytes), Some("image/png"));
            let (dw, dh, rgb) = decode_png(&bytes);
            assert_eq!((dw, dh), (w, h));
            assert_eq!(rgb, pixels(w, h, 42), "{w}x{h}");
        }
    }

    #[test]
    fn jpeg_is_valid_and_decodes_with_the_right_size() {
        for (w, h) in [(1, 1), (7, 3), (64, 48), (640, 360)] {
            let bytes = synth_image(w, h, ImageFormat::Jpeg, 42);
            assert_eq!(sniff_mime(&bytes), Some("image/jpeg"));
            assert!(bytes.ends_with(&[0xFF, 0xD9]), "EOI marker");
            let mut decoder = jpeg_decoder::Decoder::new(&bytes[..]);
            let decoded = decoder.decode().expect("decodes");
            let info = decoder.info().unwrap();
            assert_eq!((info.width as u32, info.height as u32), (w, h));
            assert_eq!(decoded.len(), (w * h * 3) as usize);
        }
    }

    #[test]
    fn seeds_change_the_bytes_and_repeat_them() {
        for format in [ImageFormat::Png, ImageFormat::Jpeg] {
            let a = synth_image(128, 96, format, 1);
            assert_eq!(a, synth_image(128, 96, format, 1), "{format}: same seed, same bytes");
            let others: Vec<Vec<u8>> = (2..10).map(|s| synth_image(128, 96, format, s)).collect();
            for (i, other) in others.iter().enumerate() {
                assert_ne!(&a, other, "{format}: seed {}", i + 2);
            }
        }
    }

    #[test]
    fn sizes_are_photo_like() {
        // Real 512x512 photos: ~40-90 KB as JPEG q85, ~400-600 KB as PNG. Allow some margin
        // over seeds, but neither a flat colour nor pure noise.
        for seed in 0..8 {
            let jpeg = synth_image(512, 512, ImageFormat::Jpeg, seed).len();
            assert!((25_000..150_000).contains(&jpeg), "seed {seed}: JPEG {jpeg} bytes");
            let png = synth_image(512, 512, ImageFormat::Png, seed).len();
            assert!((250_000..700_000).contains(&png), "seed {seed}: PNG {png} bytes");
        }
    }

    #[test]
    fn the_picture_is_not_flat() {
        let rgb = pixels(256, 256, 5);
        let mean = rgb.iter().map(|&b| b as f64).sum::<f64>() / rgb.len() as f64;
        let var = rgb.iter().map(|&b| (b as f64 - mean).powi(2)).sum::<f64>() / rgb.len() as f64;
        assert!(var > 100.0, "variance {var}");
    }

    /// Prints sizes and times; `cargo test --release --lib synth_image -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn timing_512() {
        for format in [ImageFormat::Jpeg, ImageFormat::Png] {
            let n = 50;
            let started = Instant::now();
            let mut bytes = 0;
            for seed in 0..n {
                bytes += synth_image(512, 512, format, seed).len();
            }
            let each = started.elapsed() / n as u32;
            println!(
                "{format} 512x512: {} bytes on average, {each:?} each",
                bytes / n as usize
            );
        }
        let started = Instant::now();
        for seed in 0..50 {
            std::hint::black_box(pixels(512, 512, seed));
        }
        println!("pixels only: {:?} each", started.elapsed() / 50);
    }

    #[test]
    fn sizes_parse() {
        let cases: &[(&str, Option<(u32, u32)>)] = &[
            ("512x512", Some((512, 512))),
            ("640X480", Some((640, 480))),
            (" 1 x 8192 ", Some((1, 8192))),
            ("1024×768", Some((1024, 768))),
            ("0x512", None),
            ("512x8193", None),
            ("512", None),
            ("x512", None),
            ("512x", None),
            ("-1x5", None),
            ("+5x5", None),
            ("5.5x5", None),
            ("99999999999x1", None),
            ("", None),
            ("axb", None),
            ("1x2x3", None),
        ];
        for (input, want) in cases {
            let got = parse_image_size(input);
            match want {
                Some(size) => assert_eq!(got.as_ref(), Ok(size), "{input:?}"),
                None => {
                    let e = got.expect_err(input);
                    assert!(e.contains("WIDTHxHEIGHT") && !e.contains('\n'), "{e}");
                }
            }
        }
    }

    #[test]
    fn formats_parse() {
        assert_eq!(ImageFormat::parse("png"), Ok(ImageFormat::Png));
        assert_eq!(ImageFormat::parse("JPEG"), Ok(ImageFormat::Jpeg));
        assert_eq!(ImageFormat::parse("jpg"), Ok(ImageFormat::Jpeg));
        assert!(ImageFormat::parse("gif").unwrap_err().contains("png or jpeg"));
        assert_eq!(ImageFormat::Png.mime(), "image/png");
        assert_eq!(ImageFormat::Jpeg.to_string(), "jpeg");
    }
}
