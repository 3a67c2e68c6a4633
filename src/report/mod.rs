//! Everything the user reads: console and log lines, progress, summary.json, requests.jsonl.

pub mod console;
pub mod csv;
pub mod export;
pub mod format;
pub mod html;
pub mod jsonl;
pub mod live;
pub mod repeats;
pub mod summary;

pub use console::Reporter;
pub use jsonl::RecordWriter;
pub use summary::Summary;
