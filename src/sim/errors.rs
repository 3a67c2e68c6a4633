//! Error answers in the shape of the imitated server, and the HTML page a reverse proxy sends
//! in front of one. Clients read these bodies to explain a failure, so their shapes matter.

use http::StatusCode;

use super::config::Flavor;

/// The error object's `type` for a status, as OpenAI and llama-server name them.
fn error_type(status: StatusCode) -> &'static str {
    match status {
        StatusCode::UNAUTHORIZED => "authentication_error",
        StatusCode::NOT_FOUND => "not_found_error",
        StatusCode::TOO_MANY_REQUESTS => "rate_limit_error",
        s if s.is_server_error() => "server_error",
        _ => "invalid_request_error",
    }
}

/// `{"error":{...}}`: OpenAI's `message, type, param, code`, or llama.cpp's `code, message, type`.
pub(crate) fn error_json(flavor: Flavor, status: StatusCode, message: &str) -> String {
    let error = match flavor {
        Flavor::Openai => serde_json::json!({
            "message": message,
            "type": error_type(status),
            "param": null,
            "code": status.as_u16(),
        }),
        Flavor::LlamaServer => serde_json::json!({
            "code": status.as_u16(),
            "message": message,
            "type": error_type(status),
        }),
    };
    serde_json::json!({ "error": error }).to_string()
}

/// The kind of page nginx answers with when the server behind it fails.
pub(crate) fn html_page(status: StatusCode) -> String {
    let title = format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("Error"));
    format!(
        "<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n\
         <hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn shapes() {
        let openai: Value =
            serde_json::from_str(&error_json(Flavor::Openai, StatusCode::TOO_MANY_REQUESTS, "slow down")).unwrap();
        assert_eq!(openai["error"]["type"], "rate_limit_error");
        assert!(openai["error"]["param"].is_null());
        let llama = error_json(Flavor::LlamaServer, StatusCode::INTERNAL_SERVER_ERROR, "boom");
        assert_eq!(
            llama,
            r#"{"error":{"code":500,"message":"boom","type":"server_error"}}"#
        );
        assert!(html_page(StatusCode::BAD_GATEWAY).contains("<title>502 Bad Gateway</title>"));
    }
}
