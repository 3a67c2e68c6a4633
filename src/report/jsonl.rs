//! `requests.jsonl`: one line per finished request, flushed at least every second, so a crash
//! or Ctrl-C loses nothing already measured.

use crate::client::RequestRecord;
use crate::i18n::{tr, Msg};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const FLUSH_EVERY: Duration = Duration::from_secs(1);

pub struct RecordWriter {
    path: PathBuf,
    /// The run id and shard index put on every record ([`RecordWriter::stamp`]).
    run_identity: Option<(String, Option<u32>)>,
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
            run_identity: None,
            out: Some(BufWriter::with_capacity(256 * 1024, file)),
            last_flush: Instant::now(),
            failure: None,
            written: 0,
        })
    }

    /// Writes a record. Returns what went wrong the first time writing fails.
    /// Every record written from now on carries `run_id` and (on a shard) its index.
    pub fn stamp_with(&mut self, run_id: String, shard: Option<u32>) {
        self.run_identity = Some((run_id, shard));
    }

    /// Puts the run's identity on `rec` before it is written.
    pub fn stamp(&self, rec: &mut RequestRecord) {
        if let Some((run_id, shard)) = &self.run_identity {
            rec.run_id = Some(run_id.clone());
            rec.shard = *shard;
        }
    }

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

/// Reads `requests.jsonl` back one record at a time, in bounded memory: one reused line buffer
/// behind a large `BufReader`, each line parsed straight from its bytes. Lines that do not
/// parse (a line cut by a crash) are counted and skipped.
pub struct RecordReader {
    path: PathBuf,
    input: BufReader<File>,
    line: Vec<u8>,
    /// Lines that were not a record.
    pub bad_lines: u64,
    /// Records read so far.
    pub records: u64,
}

/// Read buffer: large enough that a file is read in few system calls.
const READ_BUFFER: usize = 1 << 20;

impl RecordReader {
    pub fn open(path: &Path) -> Result<Self, String> {
        Self::with_buffer(path, READ_BUFFER)
    }

    /// The same with a read buffer of `bytes` (`llm-bench merge` reads many files at once).
    pub fn with_buffer(path: &Path, bytes: usize) -> Result<Self, String> {
        let file = File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Ok(Self {
            path: path.to_path_buf(),
            input: BufReader::with_capacity(bytes, file),
            line: Vec::with_capacity(4096),
            bad_lines: 0,
            records: 0,
        })
    }

    /// The next record, `None` at the end of the file; an error only when the file cannot be
    /// read any more.
    pub fn next_record(&mut self) -> Result<Option<RequestRecord>, String> {
        loop {
            self.line.clear();
            let n = self
                .input
                .read_until(b'\n', &mut self.line)
                .map_err(|e| format!("cannot read {}: {e}", self.path.display()))?;
            if n == 0 {
                return Ok(None);
            }
            if self.line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<RequestRecord>(&self.line) {
                Ok(rec) => {
                    self.records += 1;
                    return Ok(Some(rec));
                }
                Err(_) => self.bad_lines += 1,
            }
        }
    }
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

    #[test]
    fn records_are_read_back_one_by_one_and_bad_lines_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("requests.jsonl");
        let rec = |id| RequestRecord {
            id,
            ok: true,
            token_us: vec![1, 2, 3],
            ..RequestRecord::default()
        };
        let mut text = String::new();
        for id in 0..3 {
            text.push_str(&serde_json::to_string(&rec(id)).unwrap());
            text.push_str(if id == 1 { "\n\n  \n{\"cut by a cr\n" } else { "\n" });
        }
        text.push_str(&serde_json::to_string(&rec(3)).unwrap()[..20]); // the last line cut
        std::fs::write(&path, text).unwrap();
        let mut reader = RecordReader::open(&path).unwrap();
        let mut ids = Vec::new();
        while let Some(r) = reader.next_record().unwrap() {
            assert_eq!(r, rec(r.id));
            ids.push(r.id);
        }
        assert_eq!(ids, [0, 1, 2]);
        assert_eq!((reader.records, reader.bad_lines), (3, 2));
        assert!(RecordReader::open(&dir.path().join("none")).is_err());
    }
}
