//! vnx-core worker tests: the real agent CLIs against the loopback mock model
//! API (`vnx-testkit`), each in a temp HOME and a temp git repository, and the
//! scripted fake agent for faults no real CLI shows.
//!
//! The real CLIs must be installed: `tests/agent-clis/install.sh`. A test that
//! needs them fails (never skips) with that hint when they are missing.

// Helpers outside #[test] functions may unwrap too: a panic is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod fake;
mod real_claude;
mod real_others;
