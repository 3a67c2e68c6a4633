//! The same lines to the console and to the log file, plus the live view on a terminal
//! ([`super::live`]): lines printed while it is up appear above it, and the log never gets it.

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

pub struct Reporter {
    log: Mutex<Option<File>>,
    tty: bool,
    /// The live view's lines as drawn on the terminal now (none: it is not up).
    live: Mutex<Vec<String>>,
    log_failed: AtomicBool,
    results_lost: AtomicBool,
}

impl Reporter {
    /// Opens (appends to) the log file. Fails with one sentence when it cannot be written.
    pub fn open(log_path: &Path) -> Result<Self, String> {
        if let Some(parent) = log_path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create the folder of log file {}: {e}", log_path.display()))?;
        }
        if log_path.is_dir() {
            return Err(format!(
                "log file {} is a directory; give a file path with -l",
                log_path.display()
            ));
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .map_err(|e| format!("cannot write log file {}: {e}", log_path.display()))?;
        Ok(Self {
            log: Mutex::new(Some(file)),
            tty: std::io::stdout().is_terminal(),
            live: Mutex::default(),
            log_failed: AtomicBool::new(false),
            results_lost: AtomicBool::new(false),
        })
    }

    /// A reporter that writes only to the console (used when no log is wanted).
    pub fn console_only() -> Self {
        Self {
            log: Mutex::new(None),
            tty: std::io::stdout().is_terminal(),
            live: Mutex::default(),
            log_failed: AtomicBool::new(false),
            results_lost: AtomicBool::new(false),
        }
    }

    pub fn is_tty(&self) -> bool {
        self.tty
    }

    fn live(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One line to the console and the log. Output errors (a closed pipe) are ignored: the
    /// results on disk matter more than the console. On a terminal the line goes above the
    /// live view, which is drawn again below it.
    pub fn line(&self, text: &str) {
        let live = self.live();
        let mut out = std::io::stdout().lock();
        let _ = write!(out, "{}{text}\n{}", clear(live.len()), draw(&live));
        let _ = out.flush();
        drop(out);
        drop(live);
        // Nothing awaits while the lock is held.
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(file) = log.as_mut() {
            if let Err(e) = writeln!(file, "{text}") {
                if !self.log_failed.swap(true, Ordering::Relaxed) {
                    let _ = writeln!(
                        std::io::stderr(),
                        "llm-bench: warning: cannot write the log file any more: {e}"
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

    /// Shows the live view (a terminal only; never logged), in place of the one drawn before.
    pub fn show_live(&self, lines: Vec<String>) {
        if !self.tty {
            return;
        }
        let mut live = self.live();
        let mut out = std::io::stdout().lock();
        let _ = write!(out, "{}{}", clear(live.len()), draw(&lines));
        let _ = out.flush();
        *live = lines;
    }

    /// Takes the live view off the terminal.
    pub fn hide_live(&self) {
        let mut live = self.live();
        if live.is_empty() {
            return;
        }
        let mut out = std::io::stdout().lock();
        let _ = write!(out, "{}", clear(live.len()));
        let _ = out.flush();
        live.clear();
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
            self.warn(&format!(
                "{problem}; the run goes on, and its figures stay on the console and in the log"
            ));
        }
    }

    /// Warnings go to stderr as well as the log, so they are seen even with stdout redirected.
    pub fn warn(&self, text: &str) {
        self.line(&format!("warning: {text}"));
        if !self.tty {
            let _ = writeln!(std::io::stderr(), "llm-bench: warning: {text}");
        }
    }
}

/// Moves up over `lines` lines drawn by [`draw`] and clears from there to the end of the screen.
fn clear(lines: usize) -> String {
    match lines {
        0 => String::new(),
        n => format!("\x1b[{n}A\r\x1b[J"),
    }
}

/// The lines, each ending with a line break (the cursor is left below them).
fn draw(lines: &[String]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}
