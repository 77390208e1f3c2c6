use std::io;
use std::path::PathBuf;

/// Everything that can go wrong operating on a ledger (as opposed to what
/// verification *finds*, which is a [`crate::verify::Finding`]).
///
/// Every message names the file and says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// An I/O operation failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What vnx was doing, e.g. `read`, `lock`, `create`.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The path holds no ledger.
    #[error(
        "no ledger at {}: the directory does not exist or has no ledger.json. \
         Run `vnx init` (or `vnx ledger append`, which creates it) in the repository, or pass --ledger PATH",
        path.display()
    )]
    NoLedger {
        /// The path that was looked at.
        path: PathBuf,
    },
    /// `ledger.json` exists but is not a valid manifest.
    #[error(
        "{} is not a valid ledger manifest: {reason}. Restore it from git (`git checkout -- {}`); \
         its ledger_id binds every segment's first record",
        path.display(), path.display()
    )]
    Manifest {
        /// The manifest path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A segment name that the format does not allow.
    #[error(
        "invalid segment name {name:?}: segment files are named `[A-Za-z0-9._@+-]+.ndjson` and do not start with '.'"
    )]
    SegmentName {
        /// The refused name.
        name: String,
    },
    /// A record given for appending was refused; nothing was appended.
    #[error("input record {entry}: {reason}. Nothing was appended")]
    Input {
        /// 1-based position of the record in the input (its line for NDJSON).
        entry: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The segment ends in a partial line, from a crash or power loss mid-append.
    #[error(
        "segment {} ends in a torn line ({bytes} bytes after offset {offset}), left by a crash or kill mid-append. \
         Run `vnx ledger repair {}` to move those bytes to a quarantine file and record the repair, then retry. \
         Nothing was appended",
        segment.display(), segment.display()
    )]
    TornTail {
        /// The segment file.
        segment: PathBuf,
        /// Offset where the torn bytes start (just after the last `\n`).
        offset: u64,
        /// Number of torn bytes.
        bytes: u64,
    },
    /// The last record of the segment does not verify, so nothing may be chained onto it.
    #[error(
        "the last record of segment {} does not verify: {reason}. \
         Run `vnx verify-ledger {}` for the full report; nothing was appended",
        segment.display(), segment.display()
    )]
    CorruptTail {
        /// The segment file.
        segment: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// `repair` found nothing to repair.
    #[error("segment {} has no torn tail; nothing to repair (run `vnx verify-ledger` for other problems)", segment.display())]
    NothingToRepair {
        /// The segment file.
        segment: PathBuf,
    },
    /// A checkpoint file could not be used.
    #[error("checkpoint {}: {reason}. Create one with `vnx ledger checkpoint --out FILE`", path.display())]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl LedgerError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> LedgerError {
        let path = path.into();
        move |source| LedgerError::Io {
            action,
            path,
            source,
        }
    }
}
