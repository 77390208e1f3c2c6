//! vnx's receipt ledger: append-only, hash-chained NDJSON segments in RFC 8785
//! canonical JSON, written durably and verified fast.
//!
//! - [`record`]: the line layout and hashing (`ledger/FORMAT.md` is the spec).
//! - [`canonical`]: RFC 8785 writing and a single-pass canonical-form check.
//! - [`schema`]: the record kinds and their bodies.
//! - [`store`]: the ledger directory, durable append, repair of a torn tail.
//! - [`verify`]: parallel verification and classification of every break.
//! - [`checkpoint`]: checkpoints against truncation and rollback.
//!
//! This crate uses std threads only — no async runtime — so any tool can link
//! it, and it never prints: callers decide how to show errors and findings.

pub mod canonical;
pub mod checkpoint;
mod error;
pub mod gate;
pub mod read;
pub mod record;
pub mod schema;
pub mod signature;
pub mod store;
pub mod verify;

pub use checkpoint::{Checkpoint, SegmentCheckpoint, take_checkpoint};
pub use error::LedgerError;
pub use store::{Appended, Clock, Ledger, NewRecord, RepairOutcome, default_segment_name};
pub use verify::{Finding, Reason, Report, SegmentReport, Severity, VerifyOptions, verify_paths};
