//! How a broken connection shows up in a record: hyper's errors turned into an error class and
//! one line. A reset (RST) is told apart from a plain close, and both from a server that sent
//! something that is not HTTP, because each points at a different culprit.

use super::record::ErrorClass;
use std::error::Error;

/// The request was sent, but no response head came back.
pub fn before_response(e: &hyper::Error) -> (ErrorClass, String) {
    if e.is_parse() || e.is_parse_status() {
        return (
            ErrorClass::MalformedStream,
            format!("the server's answer is not valid HTTP: {}", chain(e)),
        );
    }
    let how = if is_reset(e) { "reset" } else { "closed" };
    (
        ErrorClass::NoResponse,
        format!("connection {how} before any response: {}", chain(e)),
    )
}

/// The response body broke off.
pub fn mid_stream(e: &hyper::Error) -> (ErrorClass, String) {
    if is_reset(e) {
        (
            ErrorClass::StreamReset,
            format!("connection reset mid-stream: {}", chain(e)),
        )
    } else {
        (
            ErrorClass::StreamCut,
            format!("connection closed mid-stream: {}", chain(e)),
        )
    }
}

/// Whether an I/O error somewhere in the chain is a connection reset.
fn is_reset(e: &hyper::Error) -> bool {
    let mut source: Option<&(dyn Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionReset {
                return true;
            }
        }
        source = err.source();
    }
    false
}

/// The error and its causes on one line: hyper's own message alone ("connection error") rarely
/// says what happened.
fn chain(e: &hyper::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(err) = source {
        let cause = err.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
        source = err.source();
    }
    text
}
