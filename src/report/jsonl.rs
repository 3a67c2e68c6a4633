//! `requests.jsonl`: one line per finished request, flushed at least every second, so a crash
//! or Ctrl-C loses nothing already measured.

use crate::client::RequestRecord;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const FLUSH_EVERY: Duration = Duration::from_secs(1);

pub struct RecordWriter {
    path: PathBuf,
    out: Option<BufWriter<File>>,
    last_flush: Instant,
    /// The first write error, reported once; the run goes on without the file.
    pub failure: Option<String>,
    pub written: u64,
}

impl RecordWriter {
    pub fn create(path: &Path) -> Result<Self, String> {
        let file = File::create(path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(Self {
            path: path.to_path_buf(),
            out: Some(BufWriter::with_capacity(256 * 1024, file)),
            last_flush: Instant::now(),
            failure: None,
            written: 0,
        })
    }

    /// Writes a record. Returns an error message the first time writing fails.
    pub fn write(&mut self, rec: &RequestRecord) -> Option<String> {
        let out = self.out.as_mut()?;
        let result = serde_json::to_writer(&mut *out, rec)
            .map_err(std::io::Error::other)
            .and_then(|()| out.write_all(b"\n"));
        match result {
            Ok(()) => {
                self.written += 1;
                self.flush_if_due()
            }
            Err(e) => self.fail(e),
        }
    }

    pub fn flush_if_due(&mut self) -> Option<String> {
        if self.last_flush.elapsed() >= FLUSH_EVERY {
            self.flush()
        } else {
            None
        }
    }

    pub fn flush(&mut self) -> Option<String> {
        self.last_flush = Instant::now();
        let out = self.out.as_mut()?;
        match out.flush() {
            Ok(()) => None,
            Err(e) => self.fail(e),
        }
    }

    fn fail(&mut self, e: std::io::Error) -> Option<String> {
        self.out = None;
        let message = format!(
            "cannot write {} any more ({e}); the run goes on and its figures stay on the console and in the log",
            self.path.display()
        );
        self.failure = Some(message.clone());
        Some(message)
    }
}

/// Reads records back; lines that do not parse (a line cut by a crash) are counted and skipped.
pub fn read_records(path: &Path) -> Result<(Vec<RequestRecord>, usize), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut records = Vec::new();
    let mut bad = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str(line) {
            Ok(rec) => records.push(rec),
            Err(_) => bad += 1,
        }
    }
    Ok((records, bad))
}
