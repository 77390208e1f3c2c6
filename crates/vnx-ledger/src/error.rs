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
    /// A segment, the manifest or the ledger directory is a symbolic link.
    /// vnx never follows one: an append or repair through a link would write
    /// or truncate a file outside the ledger, and a verifier would check
    /// whatever the link points at.
    #[error(
        "{} is a symbolic link; vnx refuses linked segments, manifests and ledger directories, \
         since writing through a link changes a file outside the ledger. \
         Replace the link with the file or directory it points to (or remove it), then run `vnx verify-ledger`",
        path.display()
    )]
    Symlink {
        /// The link.
        path: PathBuf,
    },
    /// A segment path that is not a regular file (a directory, device, FIFO
    /// or socket).
    #[error(
        "{} is not a regular file; a segment is a plain file of ledger lines. Move it out of the ledger directory",
        path.display()
    )]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// A record whose line would be longer than
    /// [`crate::verify::MAX_LINE_BYTES`] (64 MiB without its `\n`), which
    /// verification rejects; nothing was appended.
    #[error(
        "input record {entry} (kind `{kind}`) needs a ledger line of at least {bytes} bytes, \
         more than the {limit} bytes (64 MiB, without the newline) a line may have. Nothing was appended; \
         keep large content outside the ledger and record its SHA-256 instead",
        limit = crate::verify::MAX_LINE_BYTES
    )]
    RecordTooLarge {
        /// 1-based position of the record in the input.
        entry: usize,
        /// Its kind.
        kind: String,
        /// The length of its line without `\n` (or, when refused before the
        /// line was built, of its body alone), bytes.
        bytes: u64,
    },
    /// Writing or syncing an append failed (a full disk, an I/O error).
    /// `restored` says whether the segment was cut back to its length before
    /// the write, which is what normally happens.
    #[error(
        "cannot {action} {}: {source}. {}",
        segment.display(),
        if *restored {
            "The segment was cut back to its previous length: nothing was appended. Free space or fix the cause and retry".to_owned()
        } else {
            format!(
                "The segment could not be cut back and may end in a torn line: run `vnx ledger repair {}` once the cause is fixed",
                segment.display()
            )
        }
    )]
    AppendFailed {
        /// What failed: `append to` or `sync`.
        action: &'static str,
        /// The segment file.
        segment: PathBuf,
        /// The OS error.
        source: io::Error,
        /// Whether the segment is back to its previous length.
        restored: bool,
    },
    /// A repair failed after it had started to write. With `kept` `None`
    /// nothing changed: the segment still ends in its torn line and no
    /// quarantine or temporary file is left.
    #[error(
        "cannot repair {}: cannot {action} {}: {source}. {}",
        segment.display(),
        path.display(),
        match kept {
            None => "Nothing was changed: the segment still ends in its torn line and no quarantine file was left. \
                     Free space or fix the cause, then run `vnx ledger repair` again".to_owned(),
            Some(q) => format!(
                "The segment could not be put back as it was; its torn bytes are kept in {}. Run `vnx verify-ledger {}`",
                q.display(),
                segment.display()
            ),
        }
    )]
    RepairFailed {
        /// The segment file.
        segment: PathBuf,
        /// What failed, e.g. `write`, `sync`, `link`.
        action: &'static str,
        /// The file the failing operation was on (the segment, the
        /// quarantine file or its temporary file).
        path: PathBuf,
        /// The OS error.
        source: io::Error,
        /// The quarantine file, when it had to be kept because the segment
        /// could not be restored.
        kept: Option<PathBuf>,
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
