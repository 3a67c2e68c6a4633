//! Talking to the server: connections (TCP or TLS, direct or through a proxy), SSE decoding, and one timeline record per request.

pub mod clock;
pub mod connect;
pub mod endpoint;
pub mod error_body;
pub mod event;
pub mod h1;
pub mod http;
pub mod probe;
pub mod proxy;
pub mod record;
pub mod sse;
pub mod stream;
pub mod tls;

pub use endpoint::Endpoint;
pub use http::{Client, Outgoing, Timeouts};
pub use record::{ErrorClass, Phase, RequestRecord};
