//! The same lines to the console and to the log file, plus a live progress line on a terminal.

use crate::i18n::{tr, Msg};
use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

pub struct Reporter {
    log: Mutex<Option<File>>,
    tty: bool,
    progress_shown: AtomicBool,
    log_failed: AtomicBool,
    results_lost: AtomicBool,
}

impl Reporter {
    /// Opens (appends to) the log file. Fails with one sentence when it cannot be written.
    pub fn open(log_path: &Path) -> Result<Self, String> {
        if let Some(parent) = log_path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                tr(
                    Msg::LogFolderUncreatable,
                    &[("path", &log_path.display()), ("error", &e)],
                )
            })?;
        }
        if log_path.is_dir() {
            return Err(tr(Msg::LogIsDirectory, &[("path", &log_path.display())]));
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .map_err(|e| tr(Msg::LogUnwritable, &[("path", &log_path.display()), ("error", &e)]))?;
        Ok(Self {
            log: Mutex::new(Some(file)),
            tty: std::io::stdout().is_terminal(),
            progress_shown: AtomicBool::new(false),
            log_failed: AtomicBool::new(false),
            results_lost: AtomicBool::new(false),
        })
    }

    /// A reporter that writes only to the console (used when no log is wanted).
    pub fn console_only() -> Self {
        Self {
            log: Mutex::new(None),
            tty: std::io::stdout().is_terminal(),
            progress_shown: AtomicBool::new(false),
            log_failed: AtomicBool::new(false),
            results_lost: AtomicBool::new(false),
        }
    }

    pub fn is_tty(&self) -> bool {
        self.tty
    }

    /// One line to the console and the log. Output errors (a closed pipe) are ignored: the
    /// results on disk matter more than the console.
    pub fn line(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        if self.tty && self.progress_shown.swap(false, Ordering::Relaxed) {
            let _ = write!(out, "\r\x1b[2K");
        }
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
        drop(out);
        // Nothing awaits while the lock is held.
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(file) = log.as_mut() {
            if let Err(e) = writeln!(file, "{text}") {
                if !self.log_failed.swap(true, Ordering::Relaxed) {
                    let warning = tr(Msg::LogWriteFailed, &[("error", &e)]);
                    let _ = writeln!(
                        std::io::stderr(),
                        "llm-bench: {}",
                        tr(Msg::WarningLine, &[("text", &warning)])
                    );
                }
            }
        }
    }

    /// A line for the log only (the error a run stops with: stderr gets it from the caller).
    pub fn log_only(&self, text: &str) {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(file) = log.as_mut() {
            let _ = writeln!(file, "{text}");
        }
    }

    /// A transient status line, shown only on a terminal and never logged.
    pub fn progress(&self, text: &str) {
        if !self.tty {
            return;
        }
        let mut out = std::io::stdout().lock();
        let _ = write!(out, "\r\x1b[2K{text}");
        let _ = out.flush();
        self.progress_shown.store(true, Ordering::Relaxed);
    }

    /// A line for the console only (periodic progress when stdout is not a terminal).
    pub fn console(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    }

    /// Warns that the results folder cannot be written, the first time only: a full disk or a
    /// folder that disappeared fails every later write of every results file too, and one line
    /// says it. The end of the run says which files are incomplete.
    pub fn warn_results_lost(&self, problem: &str) {
        if !self.results_lost.swap(true, Ordering::Relaxed) {
            self.warn(&tr(Msg::WarnResultsLost, &[("problem", &problem)]));
        }
    }

    /// Warnings go to stderr as well as the log, so they are seen even with stdout redirected.
    pub fn warn(&self, text: &str) {
        let warning = tr(Msg::WarningLine, &[("text", &text)]);
        self.line(&warning);
        if !self.tty {
            let _ = writeln!(std::io::stderr(), "llm-bench: {warning}");
        }
    }
}
