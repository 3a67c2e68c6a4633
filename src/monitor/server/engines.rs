//! Engine families to common names. Written by a helper.
