//! What verification reports: findings, their reasons, per-segment results.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::Serialize;

/// Why verification flagged something (FORMAT.md §8.4). Serialized in
/// snake_case. The declaration order is the table's order, which orders
/// findings on the same line of the same file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// A path verification would have to follow a symbolic link to read: a
    /// ledger directory, segment, manifest or other entry of the directory.
    Symlink,
    /// `ledger.json` is not exactly the canonical manifest of FORMAT.md §1.
    Manifest,
    /// The segment file is empty: it has not even its genesis record.
    Empty,
    /// The segment is shorter than a checkpoint recorded.
    Truncated,
    /// The record at a checkpoint's head is not the one the checkpoint recorded.
    Rewritten,
    /// A segment listed in a checkpoint is gone.
    Removed,
    /// Not UTF-8, not JSON (RFC 8259), or longer than
    /// [`super::MAX_LINE_BYTES`].
    Malformed,
    /// The last line is incomplete (no `\n`): a crash or kill mid-append.
    TornTail,
    /// JSON, but not the line layout or not the RFC 8785 canonical form.
    NotCanonical,
    /// The envelope or the kind's body does not match the format's schema.
    Schema,
    /// A line's content no longer matches its hash, or a record was rewritten
    /// and re-hashed so the next record no longer links to it.
    Edited,
    /// Records are missing or out of order (a seq gap, or a record moved).
    DeletedOrReordered,
    /// A record appears twice.
    Duplicated,
    /// A record belongs to another chain: the first record is not bound to
    /// this ledger id and segment name, or a record links to nothing here.
    Spliced,
    /// A file in the ledger directory that is not part of the ledger.
    ForeignFile,
    /// A segment checked without its directory's `ledger.json`, so its genesis
    /// could only be checked against itself.
    Unbound,
    /// A `dispatch.started` with no `dispatch.receipt`: vnx died mid-dispatch.
    Orphan,
}

impl Reason {
    /// Short human label.
    pub fn label(self) -> &'static str {
        match self {
            Reason::Symlink => "symbolic link",
            Reason::Manifest => "manifest",
            Reason::Edited => "edited",
            Reason::DeletedOrReordered => "deleted or reordered",
            Reason::Duplicated => "duplicated",
            Reason::TornTail => "torn tail",
            Reason::Spliced => "spliced",
            Reason::NotCanonical => "not canonical",
            Reason::Malformed => "malformed",
            Reason::Schema => "schema",
            Reason::Truncated => "truncated",
            Reason::Rewritten => "rewritten",
            Reason::Removed => "removed",
            Reason::Empty => "empty",
            Reason::ForeignFile => "foreign file",
            Reason::Unbound => "unbound",
            Reason::Orphan => "orphan",
        }
    }

    /// Warnings do not fail verification unless `--strict` is given.
    pub fn severity(self) -> Severity {
        match self {
            Reason::ForeignFile | Reason::Unbound | Reason::Orphan => Severity::Warning,
            _ => Severity::Error,
        }
    }
}

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The ledger is not intact.
    Error,
    /// Worth a look; fails only under `--strict`.
    Warning,
}

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The file concerned.
    pub path: PathBuf,
    /// 1-based line number; 0 when the finding is about the whole file.
    pub line: u64,
    /// The record's seq, when it could be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// Why.
    pub reason: Reason,
    /// Error or warning.
    pub severity: Severity,
    /// Details and what to do.
    pub detail: String,
}

/// What was verified in one segment.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentReport {
    /// The segment file.
    pub path: PathBuf,
    /// Lines that held a readable record.
    pub records: u64,
    /// Bytes verified (from `from_offset` to the end).
    pub bytes: u64,
    /// Offset verification started at (non-zero with `--since-checkpoint`).
    pub from_offset: u64,
    /// Seq of the last record in the chain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head_seq: Option<u64>,
    /// Hash of the last record in the chain (lowercase hex).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head_hash: Option<String>,
    /// Problems, in line order.
    pub findings: Vec<Finding>,
    /// Dispatch ids started in this segment, for orphan detection.
    #[serde(skip)]
    pub started: BTreeMap<String, (u64, u64)>,
    /// Dispatch ids with a receipt in this segment.
    #[serde(skip)]
    pub receipts: BTreeSet<String>,
}

/// The result of verifying one or more ledgers or segments.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Whether everything verified (warnings count only when `strict`).
    pub ok: bool,
    /// Whether warnings were treated as errors.
    pub strict: bool,
    /// Per-segment results.
    pub segments: Vec<SegmentReport>,
    /// Findings not about one verified segment: foreign files, symbolic
    /// links, the manifest, removed and unbound segments, orphans.
    pub findings: Vec<Finding>,
}

impl Report {
    /// All findings in the order of FORMAT.md §8.5: by path (bytewise),
    /// then line, then reason in [`Reason`]'s order.
    pub fn all_findings(&self) -> impl Iterator<Item = &Finding> {
        let mut all: Vec<&Finding> = self
            .segments
            .iter()
            .flat_map(|s| s.findings.iter())
            .chain(self.findings.iter())
            .collect();
        all.sort_by(|a, b| {
            (a.path.as_os_str().as_encoded_bytes(), a.line, a.reason).cmp(&(
                b.path.as_os_str().as_encoded_bytes(),
                b.line,
                b.reason,
            ))
        });
        all.into_iter()
    }

    /// Total records verified.
    pub fn records(&self) -> u64 {
        self.segments.iter().map(|s| s.records).sum()
    }

    pub(super) fn finish(mut self) -> Report {
        let strict = self.strict;
        let failed = self
            .all_findings()
            .any(|f| f.severity == Severity::Error || strict);
        self.ok = !failed;
        self
    }
}
