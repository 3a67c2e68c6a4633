//! How far this machine's clock is from the server's, from the `Date` header of its answers
//! (docs/distributed.md, "Clocks"). Every shard of a distributed run asks the same server, so
//! the shards' offsets side by side show how far their clocks disagree.
//!
//! A `Date` header names a whole second: the server read its clock at some instant between our
//! send and our receipt of the answer's head, so its clock − ours lies in
//! `(D − received, D + 1 − sent)`. Intersecting the probes' intervals narrows it; each probe is
//! timed so that, by the estimate so far, the server's second turns over while it is in flight,
//! which halves the interval (a bisection), down to about the round trip.

use super::connect::ConnectError;
use super::endpoint::Endpoint;
use http_body_util::{BodyExt, Full, Limited};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// At most this many probes: 1 s / 2⁸ ≈ 4 ms, below most round trips.
pub const MAX_PROBES: usize = 9;

/// The estimate: the server's clock − this machine's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClockOffset {
    /// Positive: the server's clock is ahead of ours.
    pub offset_ms: f64,
    /// Half the width of the interval the offset lies in.
    pub uncertainty_ms: f64,
    pub probes: u32,
}

/// Why there is no estimate.
#[derive(Debug, Clone, PartialEq)]
pub enum NoEstimate {
    /// The answers carry no (readable) `Date` header.
    NoDateHeader,
    /// The probes disagree: a clock stepped while probing.
    Inconsistent,
    Failed(String),
}

/// The interval the offset (seconds) lies in, narrowed probe by probe.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    pub low_s: f64,
    pub high_s: f64,
    pub probes: u32,
}

impl Bounds {
    /// The bounds one probe gives: sent at `sent_s`, answered at `received_s` (Unix seconds,
    /// our clock), the server's `Date` naming second `date_s`.
    pub fn of_probe(sent_s: f64, received_s: f64, date_s: f64) -> Self {
        Self {
            low_s: date_s - received_s,
            high_s: date_s + 1.0 - sent_s,
            probes: 1,
        }
    }

    /// Both probes' bounds together; `None` when they cannot both hold.
    pub fn and(self, other: Bounds) -> Option<Bounds> {
        let b = Bounds {
            low_s: self.low_s.max(other.low_s),
            high_s: self.high_s.min(other.high_s),
            probes: self.probes + other.probes,
        };
        (b.low_s <= b.high_s).then_some(b)
    }

    /// When (our clock) to send the next probe so that, at the middle of the bounds, the
    /// server's second turns over halfway through a round trip of `rtt_s`: the first such
    /// moment after `now_s`.
    pub fn next_send_s(&self, now_s: f64, rtt_s: f64) -> f64 {
        let mid = (self.low_s + self.high_s) / 2.0;
        // Server second K is reached at our time K − mid; the probe is there after rtt/2.
        let k = (now_s + rtt_s / 2.0 + mid).ceil();
        k - mid - rtt_s / 2.0
    }

    pub fn estimate(&self) -> ClockOffset {
        ClockOffset {
            offset_ms: (self.low_s + self.high_s) / 2.0 * 1000.0,
            uncertainty_ms: (self.high_s - self.low_s) / 2.0 * 1000.0,
            probes: self.probes,
        }
    }
}

fn unix_s(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// Probes `GET {url}/models` on one kept-alive connection until `deadline` (our clock) or
/// [`MAX_PROBES`]; each answer must come within `timeout`.
pub async fn estimate(endpoint: &Endpoint, deadline: SystemTime, timeout: Duration) -> Result<ClockOffset, NoEstimate> {
    let failed = |e: ConnectError| NoEstimate::Failed(e.to_string());
    let mut sender = tokio::time::timeout(timeout, endpoint.connector().open_http1::<Full<bytes::Bytes>>())
        .await
        .map_err(|_| NoEstimate::Failed(format!("{} did not answer within {timeout:?}", endpoint.base_url)))?
        .map_err(failed)?;
    let mut bounds: Option<Bounds> = None;
    let mut rtt_s = 0.0;
    for _ in 0..MAX_PROBES {
        if let Some(b) = bounds {
            let send_at = b.next_send_s(unix_s(SystemTime::now()), rtt_s);
            if send_at > unix_s(deadline) {
                break;
            }
            sleep_until_s(send_at).await;
        }
        let (sent, received, date) = tokio::time::timeout(timeout, probe(endpoint, &mut sender))
            .await
            .map_err(|_| NoEstimate::Failed(format!("{} did not answer within {timeout:?}", endpoint.base_url)))??;
        rtt_s = received - sent;
        let this = Bounds::of_probe(sent, received, date);
        bounds = Some(match bounds {
            None => this,
            Some(b) => b.and(this).ok_or(NoEstimate::Inconsistent)?,
        });
    }
    bounds.map(|b| b.estimate()).ok_or(NoEstimate::NoDateHeader)
}

/// One GET; (sent, head received, the Date header's second), Unix seconds on our clock.
async fn probe(
    endpoint: &Endpoint,
    sender: &mut hyper::client::conn::http1::SendRequest<Full<bytes::Bytes>>,
) -> Result<(f64, f64, f64), NoEstimate> {
    let failed = |e: String| NoEstimate::Failed(e);
    sender
        .ready()
        .await
        .map_err(|e| failed(format!("{}: {e}", endpoint.base_url)))?;
    let mut request = http::Request::new(Full::new(bytes::Bytes::new()));
    *request.uri_mut() = endpoint
        .request_target("/models")
        .parse()
        .map_err(|_| failed(format!("invalid path in URL {}", endpoint.base_url)))?;
    let headers = request.headers_mut();
    headers.insert(http::header::HOST, endpoint.authority().clone());
    for (name, value) in endpoint.headers() {
        headers.insert(name.clone(), value.clone());
    }
    headers.insert(super::probe::PROBE_HEADER, http::HeaderValue::from_static("1"));
    let sent = unix_s(SystemTime::now());
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| failed(format!("{}: {e}", endpoint.base_url)))?;
    let received = unix_s(SystemTime::now());
    let date = response
        .headers()
        .get(http::header::DATE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok())
        .ok_or(NoEstimate::NoDateHeader)?;
    // The body is read so that the connection can carry the next probe.
    Limited::new(response.into_body(), 1024 * 1024)
        .collect()
        .await
        .map_err(|e| failed(format!("{}: {e}", endpoint.base_url)))?;
    Ok((sent, received, unix_s(date)))
}

async fn sleep_until_s(at_s: f64) {
    let left = at_s - unix_s(SystemTime::now());
    if left > 0.0 {
        tokio::time::sleep(Duration::from_secs_f64(left)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server `offset` s ahead of us, answering after `rtt`/2 and stamping its Date then.
    fn probe_at(sent: f64, offset: f64, rtt: f64) -> Bounds {
        let server_now = sent + rtt / 2.0 + offset;
        Bounds::of_probe(sent, sent + rtt, server_now.floor())
    }

    #[test]
    fn the_bisection_closes_in_on_the_offset() {
        for offset in [-3.71234, -0.5, 0.0, 0.0001, 0.25, 12.9999] {
            let rtt = 0.002;
            let mut now = 1_000_000.3;
            let mut b = probe_at(now, offset, rtt);
            assert!(b.low_s <= offset && offset <= b.high_s);
            for _ in 1..MAX_PROBES {
                now = b.next_send_s(now + rtt, rtt);
                b = b.and(probe_at(now, offset, rtt)).expect("consistent");
                assert!(b.low_s <= offset && offset <= b.high_s, "{offset}: {b:?}");
            }
            let e = b.estimate();
            assert!(e.uncertainty_ms < 6.0, "{offset}: {e:?}");
            assert!(
                (e.offset_ms - offset * 1000.0).abs() <= e.uncertainty_ms + 1e-6,
                "{offset}: {e:?}"
            );
            assert_eq!(e.probes as usize, MAX_PROBES);
        }
    }

    #[test]
    fn a_stepped_clock_is_inconsistent() {
        let a = Bounds::of_probe(100.0, 100.01, 100.0);
        let b = Bounds::of_probe(101.0, 101.01, 105.0);
        assert_eq!(a.and(b), None);
    }

    #[test]
    fn the_next_probe_is_never_in_the_past() {
        let b = Bounds::of_probe(50.2, 50.21, 50.0);
        let next = b.next_send_s(50.21, 0.01);
        assert!((50.21 - 1e-9..51.3).contains(&next), "{next}");
    }
}
