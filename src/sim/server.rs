//! The TCP side: accepting connections and serving HTTP/1.1 on each.
//!
//! One task per connection, hyper's http1 server with keep-alive, and
//! TCP_NODELAY so that small SSE chunks leave at once instead of waiting on
//! Nagle's algorithm (which would add tens of milliseconds to measured ITL).

use std::sync::Arc;
use std::time::Duration;

use crate::net::StampedTcp;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::os::fd::AsRawFd;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;

use super::conn::{reset_on_close, ConnControl, Ending};
use super::http::{handle, AppState};

/// Accept backlog: a benchmark opening thousands of connections at once
/// would overflow tokio's default of 1024 and see SYN retries (a 1 s stall)
/// that have nothing to do with the model being simulated. The kernel caps it
/// at `net.core.somaxconn`.
const BACKLOG: u32 = 8192;

/// Binds `host:port` (0 = a free port).
pub(crate) fn bind(host: std::net::Ipv4Addr, port: u16) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    // Lets `serve` restart at once on the same port after a previous run.
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(std::net::SocketAddr::from((host, port)))?;
    socket.listen(BACKLOG)
}

/// Serves `listener` in a background task until `cancel` fires; open
/// connections are then dropped, which also ends their streams.
pub(crate) fn spawn(listener: TcpListener, state: Arc<AppState>, cancel: CancellationToken) {
    tokio::spawn(accept_loop(listener, state, cancel));
}

async fn accept_loop(listener: TcpListener, state: Arc<AppState>, cancel: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(e) => {
                // Typically EMFILE under a large benchmark. Back off briefly
                // rather than spin or give up; the error is not the client's.
                eprintln!("llm-bench simulator: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Best effort: a socket that refuses NODELAY still works, just slower.
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve_connection(stream, Arc::clone(&state), cancel.clone()));
    }
}

/// Serves one connection until it ends, the simulator stops, or a request asks for it to be
/// closed or reset (fault injection).
async fn serve_connection(stream: TcpStream, state: Arc<AppState>, cancel: CancellationToken) {
    let fd = stream.as_raw_fd();
    // The truth's clock starts when a request's bytes reached the socket, as the client's
    // does for the response: neither side's scheduling delay is left out of the comparison.
    let Ok((stream, arrivals)) = StampedTcp::new(stream) else {
        return;
    };
    let control = Arc::new(ConnControl::new());
    let service = {
        let control = Arc::clone(&control);
        service_fn(move |req| handle(Arc::clone(&state), Arc::clone(&control), Arc::clone(&arrivals), req))
    };
    let conn = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    // Connection errors (client resets, our own injected cuts) are
    // part of normal operation for a fault-injecting simulator.
    let ending = tokio::select! {
        _ = conn.as_mut() => return,
        _ = cancel.cancelled() => return,
        ending = control.ending_asked() => ending,
    };
    if ending == Ending::Reset {
        // The socket is still open: hyper owns it until `conn` is dropped below.
        reset_on_close(fd);
    }
}

/// Raises the soft open-file limit to the hard limit, so that thousands of
/// concurrent streams (each a socket, twice over when the client runs in the
/// same process) do not hit EMFILE at the common default of 1024. Returns the
/// resulting soft limit, or `None` where it cannot be read.
pub fn raise_fd_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit only read/write the struct we pass.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
                return None;
            }
            if limit.rlim_cur < limit.rlim_max {
                let original = limit.rlim_cur;
                // macOS reports an unlimited hard limit but refuses soft
                // limits above OPEN_MAX, hence the fallback.
                for wanted in [limit.rlim_max, 10_240] {
                    if wanted <= original {
                        continue;
                    }
                    limit.rlim_cur = wanted;
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                        break;
                    }
                    limit.rlim_cur = original;
                }
            }
        }
        #[allow(clippy::useless_conversion)] // rlim_t is not u64 everywhere
        u64::try_from(limit.rlim_cur).ok()
    }
    #[cfg(not(unix))]
    {
        None
    }
}
