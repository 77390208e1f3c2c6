//! End-to-end test support for vnx.
