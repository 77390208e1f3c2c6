//! Integration tests of the lanes against the scripted fake agent
//! (`tests/fake-agent`), small bash scripts and a real tmux server.
//!
//! The fake agent lives in another package, so `CARGO_BIN_EXE_fake-agent` is
//! not available here. [`common::fake_agent`] uses `$VNX_FAKE_AGENT` when set,
//! and otherwise runs `cargo build -p vnx-tests --bin fake-agent
//! --message-format=json` once (a no-op when it is fresh) and takes the
//! executable path cargo reports, which is right for any target dir and
//! profile.

// Helpers outside #[test] functions may unwrap too: a panic is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod headless;
mod pty;
mod tmux;
