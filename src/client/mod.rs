//! Talking to the server: connections, SSE decoding, and one timeline record per request.

pub mod endpoint;
pub mod error_body;
pub mod event;
pub mod http;
pub mod probe;
pub mod record;
pub mod sse;
pub mod stream;
mod transport;

pub use endpoint::Endpoint;
pub use http::{Client, Outgoing, Timeouts};
pub use record::{ErrorClass, Phase, RequestRecord};
