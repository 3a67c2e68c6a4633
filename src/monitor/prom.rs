//! Prometheus text format parser. Written by a helper.
