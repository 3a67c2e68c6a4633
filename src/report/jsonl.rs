//! `requests.jsonl`: one line per finished request, flushed at least every second, so a crash
//! or Ctrl-C loses nothing already measured.

use crate::client::RequestRecord;
use crate::i18n::{tr, Msg};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const FLUSH_EVERY: Duration = Duration::from_secs(1);

pub struct RecordWriter {
    path: PathBuf,
    out: Option<BufWriter<File>>,
    /// (device, inode) of the file written: writes to a file whose folder was removed still
    /// succeed, so each flush checks that the path still leads to it.
    identity: (u64, u64),
    last_flush: Instant,
    /// The first write error, reported once; the run goes on without the file.
    pub failure: Option<String>,
    pub written: u64,
}

impl RecordWriter {
    pub fn create(path: &Path) -> Result<Self, String> {
        let file = File::create(path).map_err(|e| tr(Msg::CannotWrite, &[("path", &path.display()), ("error", &e)]))?;
        let meta = file
            .metadata()
            .map_err(|e| tr(Msg::CannotWrite, &[("path", &path.display()), ("error", &e)]))?;
        Ok(Self {
            path: path.to_path_buf(),
            identity: (meta.dev(), meta.ino()),
            out: Some(BufWriter::with_capacity(256 * 1024, file)),
            last_flush: Instant::now(),
            failure: None,
            written: 0,
        })
    }

    /// Writes a record. Returns what went wrong the first time writing fails.
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
            Err(e) => self.fail(tr(
                Msg::CannotWriteAnyMore,
                &[("path", &self.path.display()), ("error", &e)],
            )),
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
        if let Err(e) = out.flush() {
            return self.fail(tr(
                Msg::CannotWriteAnyMore,
                &[("path", &self.path.display()), ("error", &e)],
            ));
        }
        let same_file = std::fs::metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.identity);
        if !same_file {
            return self.fail(tr(Msg::RemovedDuringRun, &[("path", &self.path.display())]));
        }
        None
    }

    fn fail(&mut self, problem: String) -> Option<String> {
        self.out = None;
        self.failure = Some(problem.clone());
        Some(problem)
    }
}

/// Reads records back; lines that do not parse (a line cut by a crash) are counted and skipped.
pub fn read_records(path: &Path) -> Result<(Vec<RequestRecord>, usize), String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| tr(Msg::CannotRead, &[("path", &path.display()), ("error", &e)]))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_reported_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("requests.jsonl");
        std::os::unix::fs::symlink("/dev/full", &path).unwrap();
        let mut writer = RecordWriter::create(&path).unwrap();
        let rec = RequestRecord::default();
        let mut problems: Vec<String> = (0..3).filter_map(|_| writer.write(&rec)).collect();
        problems.extend(writer.flush());
        problems.extend(writer.flush());
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("No space left"), "{problems:?}");
        assert!(writer.failure.is_some());
    }

    #[test]
    fn a_removed_file_is_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("requests.jsonl");
        let mut writer = RecordWriter::create(&path).unwrap();
        assert_eq!(writer.write(&RequestRecord::default()), None);
        assert_eq!(writer.flush(), None);
        std::fs::remove_dir_all(dir.path()).unwrap();
        assert!(writer.flush().unwrap().contains("was removed during the run"));
        assert_eq!(writer.flush(), None, "said once");
    }
}
