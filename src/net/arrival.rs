//! When bytes really arrived: a TCP stream that remembers the arrival time of the last bytes
//! it read, taken by the kernel when the packet reached the socket.
//!
//! A timestamp taken by the task that parses an event is late by however long the task waited
//! to run; under load (thousands of streams on one core) that wait is the error. The kernel
//! stamps every received packet (`SO_TIMESTAMPNS`); reading with `recvmsg` hands the stamp of the
//! last packet read back with the bytes, so a busy client still records when its bytes arrived.
//! Where the kernel gives no stamp, the time of the read is used instead (Linux turns packet
//! stamping on a few milliseconds after the first socket asks, so the very first reads of a run
//! may take that path).

use std::io::{self, Write};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant, SystemTime};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A kernel stamp older than this is taken for a clock step, not a real delay.
const MAX_PLAUSIBLE_DELAY: Duration = Duration::from_secs(60);

/// The arrival time of the last bytes read from a connection.
#[derive(Debug, Default)]
pub struct ArrivalClock {
    last: Mutex<Option<Instant>>,
}

impl ArrivalClock {
    pub fn last_read(&self) -> Option<Instant> {
        *self.last.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set(&self, at: Instant) {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(at);
    }
}

/// A TCP stream whose reads stamp an [`ArrivalClock`].
///
/// It drives the socket itself (an `AsyncFd`) rather than through `TcpStream`, so that a read
/// returning less than asked can mark the socket not-ready, as tokio's own streams do: without
/// that, every event would cost a second `recvmsg` that only answers "nothing more yet".
pub struct StampedTcp {
    inner: AsyncFd<std::net::TcpStream>,
    clock: Arc<ArrivalClock>,
    kernel_stamps: bool,
}

impl StampedTcp {
    /// Wraps `stream`, asking the kernel for receive timestamps (best effort).
    pub fn new(stream: TcpStream) -> io::Result<(Self, Arc<ArrivalClock>)> {
        let std_stream = stream.into_std()?;
        let kernel_stamps = enable_kernel_stamps(&std_stream);
        let clock = Arc::new(ArrivalClock::default());
        // SAFETY: a std TcpStream owns its descriptor: it stays open and the same until the
        // AsyncFd (its owner) is dropped.
        let inner = unsafe { AsyncFd::register(std_stream) }.map_err(io::Error::from)?;
        Ok((
            Self {
                inner,
                clock: clock.clone(),
                kernel_stamps,
            },
            clock,
        ))
    }

    pub fn kernel_stamps(&self) -> bool {
        self.kernel_stamps
    }
}

#[cfg(target_os = "linux")]
fn enable_kernel_stamps(stream: &std::net::TcpStream) -> bool {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: setsockopt reads `on` for the given length; the fd is open for the call.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    rc == 0
}

#[cfg(not(target_os = "linux"))]
fn enable_kernel_stamps(_stream: &std::net::TcpStream) -> bool {
    false
}

/// The monotonic instant of a kernel (wall-clock) stamp: now, minus how long ago it was.
fn arrival_from_wall(stamp: SystemTime) -> Instant {
    let now = Instant::now();
    let ago = SystemTime::now().duration_since(stamp).unwrap_or(Duration::ZERO);
    if ago > MAX_PLAUSIBLE_DELAY {
        return now;
    }
    now.checked_sub(ago).unwrap_or(now)
}

type Received = io::Result<(usize, Option<SystemTime>)>;

/// One `recvmsg` into `buf`: bytes read, and the kernel's stamp of the last packet read.
#[cfg(target_os = "linux")]
fn recv_stamped(stream: &std::net::TcpStream, buf: &mut [std::mem::MaybeUninit<u8>]) -> Received {
    use std::os::fd::AsRawFd;
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // Room for one SCM_TIMESTAMPNS message, u64-aligned as cmsg headers require.
    let mut control = [0u64; 8];
    // SAFETY: msghdr is plain data; every pointer in it refers to live locals of this frame,
    // the kernel writes at most the lengths given, and the cmsg walk stays within `control`.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        let n = libc::recvmsg(stream.as_raw_fd(), &mut msg, 0);
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut stamp = None;
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                stamp = Some(std::time::UNIX_EPOCH + Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32));
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
        Ok((n as usize, stamp))
    }
}

#[cfg(not(target_os = "linux"))]
fn recv_stamped(stream: &std::net::TcpStream, buf: &mut [std::mem::MaybeUninit<u8>]) -> Received {
    recv_plain(stream, buf)
}

/// A plain `read`, without a stamp: the read's own time is used.
fn recv_plain(stream: &std::net::TcpStream, buf: &mut [std::mem::MaybeUninit<u8>]) -> Received {
    use std::os::fd::AsRawFd;
    // SAFETY: read(2) writes at most `buf.len()` bytes into the buffer.
    let n = unsafe { libc::read(stream.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((n as usize, None))
}

impl AsyncRead for StampedTcp {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            let mut guard = ready!(this.inner.poll_read_ready(cx))?;
            let wanted = buf.remaining();
            // SAFETY: the read only writes initialised bytes into the unfilled part, and we mark
            // exactly the `n` bytes it reports as initialised.
            let unfilled = unsafe { buf.unfilled_mut() };
            let result = if this.kernel_stamps {
                recv_stamped(guard.get_inner(), unfilled)
            } else {
                recv_plain(guard.get_inner(), unfilled)
            };
            match result {
                Ok((n, stamp)) => {
                    unsafe { buf.assume_init(n) };
                    buf.advance(n);
                    if n > 0 {
                        this.clock.set(stamp.map_or_else(Instant::now, arrival_from_wall));
                    }
                    if n < wanted {
                        // The socket is drained: wait for the next edge instead of asking again.
                        guard.clear_ready();
                    }
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => guard.clear_ready(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for StampedTcp {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        loop {
            let mut guard = ready!(this.inner.poll_write_ready(cx))?;
            if let Ok(result) = guard.try_io(|fd| fd.get_ref().write(buf)) {
                return Poll::Ready(result);
            }
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        loop {
            let mut guard = ready!(this.inner.poll_write_ready(cx))?;
            if let Ok(result) = guard.try_io(|fd| fd.get_ref().write_vectored(bufs)) {
                return Poll::Ready(result);
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Writes go straight to the socket; nothing is buffered here.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.inner.get_ref().shutdown(std::net::Shutdown::Write))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn reads_are_stamped_at_arrival_not_at_read() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut writer = TcpStream::connect(addr).await.unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        let (mut reader, clock) = StampedTcp::new(accepted).unwrap();
        assert!(clock.last_read().is_none());
        // The kernel turns packet stamping on a moment after the first socket asks for it.
        tokio::time::sleep(Duration::from_millis(50)).await;

        let sent = Instant::now();
        writer.write_all(b"hello").await.unwrap();
        // The bytes wait in the socket while the reader is busy elsewhere.
        tokio::time::sleep(Duration::from_millis(150)).await;
        let mut buf = [0u8; 16];
        let n = reader.read(&mut buf).await.unwrap();
        let read_at = Instant::now();
        assert_eq!(&buf[..n], b"hello");
        let arrived = clock.last_read().expect("a read stamps the clock");
        assert!(arrived <= read_at);
        if reader.kernel_stamps() {
            // The kernel's stamp is from when the bytes arrived, ~150 ms before the read.
            let waited = read_at - arrived;
            assert!(waited >= Duration::from_millis(100), "waited {waited:?}");
            assert!(arrived + Duration::from_millis(50) >= sent, "stamp before the send");
        }
    }

    #[tokio::test]
    async fn end_of_stream_and_writes_pass_through() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = TcpStream::connect(addr).await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        let (mut stamped, _clock) = StampedTcp::new(client).unwrap();
        stamped.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        server.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
        drop(server);
        let mut rest = Vec::new();
        assert_eq!(stamped.read_to_end(&mut rest).await.unwrap(), 0);
    }
}
