//! Plain data shared across vnx: the bodies of ledger records (`dispatch.started`,
//! `dispatch.receipt`, `repair`, `note`), token usage, outcome classes and statuses.
//!
//! This crate does no I/O and has no async runtime. Every type here serializes to
//! I-JSON with integers only (RFC 7493): money is integer micro-USD, durations are
//! integer milliseconds, token counts are integers. The JSON Schemas in
//! `schemas/` are generated from these types (see `vnx-ledger`'s schema test) so
//! the two cannot drift.

mod live;
mod receipt;
mod usage;

pub use live::*;
pub use receipt::*;
pub use usage::*;

/// Largest integer magnitude allowed anywhere in hashed ledger data: 2^53 − 1
/// (I-JSON, RFC 7493 §2.2), so that every consumer, including JavaScript, reads
/// the same number.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;
