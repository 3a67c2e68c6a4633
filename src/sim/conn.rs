//! What a request may do to the connection it arrived on.
//!
//! hyper owns the socket while it serves a connection, so a handler cannot close or reset it
//! directly. Instead each connection has a [`ConnControl`]: a handler (or a response body) asks
//! for an ending, and the connection's task, which waits on it beside hyper, drops the
//! connection — after setting `SO_LINGER` to zero when a reset (RST) was asked for.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use tokio::sync::watch;

/// How a connection is ended on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// A normal close (FIN), with no answer to the request in progress.
    Close,
    /// An abortive close (RST), as a crashed process or a proxy that gives up sends.
    Reset,
}

/// Shared by the connection task and the requests it serves.
pub(crate) struct ConnControl {
    ending: watch::Sender<Option<Ending>>,
    generation_requests: AtomicU64,
}

impl ConnControl {
    pub fn new() -> Self {
        Self {
            ending: watch::Sender::new(None),
            generation_requests: AtomicU64::new(0),
        }
    }

    /// Counts a generation request on this connection; returns how many came before it.
    pub fn next_generation_request(&self) -> u64 {
        self.generation_requests.fetch_add(1, Relaxed)
    }

    /// Asks the connection task to end the connection now.
    pub fn end(&self, ending: Ending) {
        self.ending.send_replace(Some(ending));
    }

    /// Resolves once an ending is asked for.
    pub async fn ending_asked(&self) -> Ending {
        let mut rx = self.ending.subscribe();
        // The sender lives in `self`, so it cannot be gone while we are borrowed.
        let asked = rx.wait_for(Option::is_some).await.map(|ending| *ending);
        asked.ok().flatten().unwrap_or(Ending::Close)
    }
}

/// Makes closing `fd` send a reset (RST) instead of a normal close. Call it just before the
/// socket is dropped; a failure leaves a normal close, which is logged.
pub(crate) fn reset_on_close(fd: RawFd) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `fd` is a socket still owned (and kept open) by the caller's connection; the
    // call only reads the struct passed by pointer with its exact size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        eprintln!(
            "llm-bench simulator: cannot arm a connection reset: {}",
            std::io::Error::last_os_error()
        );
    }
}
