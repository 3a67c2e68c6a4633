//! `histograms.jsonl` beside summary.json: each step's (and each stress interval's) TTFT, ITL,
//! TPOT and E2E histograms, lossless, one JSON object a line (docs/metrics.md, "Merging
//! shards"). A step sweep rewrites the file at every summary write; a stress run appends an
//! interval's lines when it reports the interval, then its totals' lines at the end; a merge
//! writes it as it goes into a temp file renamed at the end.

use super::super::rebuild::StepKey;
use crate::i18n::{tr, Msg};
use crate::metrics::{LatencyHistogram, StepAccumulator};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// One line of `histograms.jsonl`: a step's latency histograms, lossless.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HistogramLine {
    pub test: crate::workload::TestKind,
    pub load: crate::load::LoadPoint,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat: Option<u32>,
    /// A stress interval's line: the interval's `index` (`stress.intervals[].index`). Lines
    /// without it are steps (a stress run's totals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<usize>,
    /// `hdr-buckets`: per non-empty bucket of an HDR histogram of 3 significant digits in µs,
    /// `[value_us, count]` (the bucket's highest equivalent value).
    pub format: String,
    pub significant_digits: u8,
    pub ttft: Vec<[u64; 2]>,
    pub itl: Vec<[u64; 2]>,
    pub tpot: Vec<[u64; 2]>,
    pub e2e: Vec<[u64; 2]>,
}

impl HistogramLine {
    pub fn of(key: StepKey, acc: &StepAccumulator) -> Self {
        let [ttft, itl, tpot, e2e] = acc.histograms().map(|(_, h)| h.buckets());
        Self {
            test: key.1,
            load: key.0,
            repeat: key.2,
            interval: None,
            format: "hdr-buckets".into(),
            significant_digits: 3,
            ttft,
            itl,
            tpot,
            e2e,
        }
    }

    /// The same line as a stress interval's.
    pub fn in_interval(mut self, index: usize) -> Self {
        self.interval = Some(index);
        self
    }

    /// The histogram of a name (`ttft`, `itl`, `tpot`, `e2e`).
    pub fn histogram(&self, name: &str) -> Option<LatencyHistogram> {
        let buckets = match name {
            "ttft" => &self.ttft,
            "itl" => &self.itl,
            "tpot" => &self.tpot,
            "e2e" => &self.e2e,
            _ => return None,
        };
        Some(LatencyHistogram::from_buckets(buckets))
    }
}

/// Writes `histograms.jsonl` (atomically: temp file + rename, as summary.json); nothing when
/// there is no step.
pub fn write_histogram_lines(dir: &Path, lines: &[&HistogramLine]) -> Result<(), String> {
    if lines.is_empty() {
        return Ok(());
    }
    let mut file = HistogramFile::atomic(dir)?;
    for line in lines {
        file.write(line)?;
    }
    file.finish()
}

/// `histograms.jsonl` written a line at a time.
pub struct HistogramFile {
    path: PathBuf,
    /// Written here and renamed to `path` at [`HistogramFile::finish`] (a merge); `None`: the
    /// lines go straight to `path` (a stress run, whose file grows interval by interval).
    tmp: Option<PathBuf>,
    out: Option<BufWriter<File>>,
    lines: u64,
}

impl HistogramFile {
    /// A new `histograms.jsonl` in `dir`, each line in it once flushed (a stress run).
    pub fn appending(dir: &Path) -> Result<Self, String> {
        Self::create(dir.join("histograms.jsonl"), None)
    }

    /// A temp file that becomes `histograms.jsonl` at [`HistogramFile::finish`], when it has
    /// a line.
    pub fn atomic(dir: &Path) -> Result<Self, String> {
        Self::create(dir.join("histograms.jsonl"), Some(dir.join(".histograms.jsonl.tmp")))
    }

    fn create(path: PathBuf, tmp: Option<PathBuf>) -> Result<Self, String> {
        let target = tmp.as_ref().unwrap_or(&path);
        let file = File::create(target).map_err(|e| cannot_write(target, &e))?;
        Ok(Self {
            out: Some(BufWriter::new(file)),
            path,
            tmp,
            lines: 0,
        })
    }

    pub fn write(&mut self, line: &HistogramLine) -> Result<(), String> {
        let Some(out) = self.out.as_mut() else { return Ok(()) };
        let text = serde_json::to_string(line).map_err(|e| tr(Msg::SummaryUnserialisable, &[("error", &e)]))?;
        self.lines += 1;
        let target = self.tmp.as_ref().unwrap_or(&self.path);
        out.write_all(text.as_bytes())
            .and_then(|()| out.write_all(b"\n"))
            .map_err(|e| cannot_write(target, &e))
    }

    /// Puts what was written so far in the file (a stress run: after each interval).
    pub fn flush(&mut self) -> Result<(), String> {
        let target = self.tmp.as_ref().unwrap_or(&self.path);
        match self.out.as_mut() {
            Some(out) => out.flush().map_err(|e| cannot_write(target, &e)),
            None => Ok(()),
        }
    }

    /// Flushes and, for a temp file, renames it to `histograms.jsonl` (removes it when it has
    /// no line).
    pub fn finish(mut self) -> Result<(), String> {
        self.flush()?;
        self.out = None;
        let Some(tmp) = self.tmp.take() else { return Ok(()) };
        if self.lines == 0 {
            let _ = std::fs::remove_file(&tmp);
            return Ok(());
        }
        std::fs::rename(&tmp, &self.path).map_err(|e| cannot_write(&self.path, &e))
    }
}

impl Drop for HistogramFile {
    /// A temp file not finished (the merge failed) goes.
    fn drop(&mut self) {
        if let Some(tmp) = &self.tmp {
            self.out = None;
            let _ = std::fs::remove_file(tmp);
        }
    }
}

fn cannot_write(path: &Path, e: &dyn std::fmt::Display) -> String {
    tr(Msg::CannotWrite, &[("path", &path.display()), ("error", e)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_lists_give_back_the_same_histogram() {
        let mut h = LatencyHistogram::default();
        for us in [1, 17, 999, 1_234, 56_789, 1_000_001, 77_777_777] {
            h.record_us(us);
        }
        let back = LatencyHistogram::from_buckets(&h.buckets());
        assert_eq!(back.dist_ms(), h.dist_ms());
        assert_eq!(back.cdf_ms(), h.cdf_ms());
    }

    #[test]
    fn an_atomic_file_appears_at_the_end_and_only_with_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("histograms.jsonl");
        HistogramFile::atomic(dir.path()).unwrap().finish().unwrap();
        assert!(!path.exists() && !dir.path().join(".histograms.jsonl.tmp").exists());
        let mut file = HistogramFile::atomic(dir.path()).unwrap();
        let line = HistogramLine::default().in_interval(3);
        file.write(&line).unwrap();
        assert!(!path.exists(), "written only when finished");
        file.finish().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let back: HistogramLine = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(back.interval, Some(3));
        // Dropped unfinished (a failed merge): no temp file stays.
        let mut file = HistogramFile::atomic(dir.path()).unwrap();
        file.write(&line).unwrap();
        drop(file);
        assert!(!dir.path().join(".histograms.jsonl.tmp").exists());
    }
}
