//! llm-bench: how an OpenAI-compatible LLM server holds up under concurrent load.
//!
//! Data flows one way: `cli` (validated config) → `workload` (what a request is) + `load` (when
//! requests are sent) → `client` (HTTP, SSE, one record per request) → `metrics` (figures from
//! records) → `report` (console, log, files). `monitor` samples the machine on the same clock;
//! `sim` is the built-in server that tests and the demo run against.

pub mod app;
pub mod cli;
pub mod client;
pub mod compare;
pub mod demo;
pub mod i18n;
pub mod k8s;
pub mod load;
pub mod metrics;
pub mod monitor;
pub mod net;
pub mod report;
pub mod run;
pub mod sim;
pub mod workload;
