//! Turns an error response into one line: the OpenAI-style message, an HTML page's title, or
//! the start of the text, with the status and any Retry-After.
//!
//! Retry-After is shown, not obeyed: a benchmark measures what the server does under the load
//! asked for, so it does not slow down on the server's request.

use super::event::error_message;

/// Largest error body read to explain a failed request.
pub const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// One line for an error answer: status, reason, any Retry-After, and what the body says.
pub fn error_line(status: http::StatusCode, headers: &http::HeaderMap, body: &[u8]) -> String {
    let retry_after = headers
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(|v| format!(" (Retry-After: {v})"))
        .unwrap_or_default();
    let text = describe_error_body(body);
    let reason = status.canonical_reason().unwrap_or("");
    if text.is_empty() {
        format!("HTTP {} {reason}{retry_after}", status.as_u16())
    } else {
        format!("HTTP {} {reason}{retry_after}: {text}", status.as_u16())
    }
}

/// The useful part of an error body: the OpenAI error message, an HTML page's title, or the
/// start of the text.
pub fn describe_error_body(body: &[u8]) -> String {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) {
        if let Some(error) = value.get("error") {
            return error_message(error);
        }
        if let Some(message) = value.get("message").or_else(|| value.get("detail")) {
            return error_message(message);
        }
        return one_line(&value.to_string(), 200);
    }
    let text = String::from_utf8_lossy(body);
    let lower = text.to_ascii_lowercase();
    if let (Some(open), Some(close)) = (lower.find("<title>"), lower.find("</title>")) {
        if close > open {
            return format!("HTML page \"{}\"", one_line(&text[open + 7..close], 120));
        }
    }
    if lower.trim_start().starts_with("<!doctype html") || lower.trim_start().starts_with("<html") {
        return "an HTML page".into();
    }
    one_line(&text, 200)
}

fn one_line(text: &str, max_chars: usize) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if joined.chars().count() > max_chars {
        format!("{}…", joined.chars().take(max_chars).collect::<String>())
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_become_one_line() {
        assert_eq!(
            describe_error_body(br#"{"error":{"message":"image input is not supported","code":500}}"#),
            "image input is not supported"
        );
        assert_eq!(describe_error_body(br#"{"detail":"Not Found"}"#), "Not Found");
        assert_eq!(
            describe_error_body(b"<html><head><title>502 Bad\n Gateway</title></head></html>"),
            "HTML page \"502 Bad Gateway\""
        );
        assert_eq!(describe_error_body(b"  plain\n text "), "plain text");
    }
}
