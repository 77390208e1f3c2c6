//! Integration tests with real parts: keys made by `ssh-keygen`, signatures
//! checked by `ssh-keygen -Y verify` itself, a real `ssh-agent`, real git
//! repositories.

// Helpers outside #[test] functions may unwrap too: a panic is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod agent;
mod allowed;
mod gitconfig;
mod interop;
mod support;
