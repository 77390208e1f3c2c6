//! The merge gate: is this ledger an append-only extension of the ledger at a
//! base revision, and did every dispatch recorded since then pass?
//!
//! The caller (the CLI) fetches the base ledger's files from git; this module
//! compares bytes and reads the records added since. A segment that existed
//! at the base must still start with exactly the bytes it had then: anything
//! else means it was truncated, rewritten or removed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;
use vnx_types::DispatchStatus;

use crate::error::LedgerError;
use crate::read::{StoredRecord, read_segment};
use crate::record::{KIND_DISPATCH_RECEIPT, KIND_DISPATCH_STARTED};
use crate::store::{MANIFEST_FILE, is_segment_name};
use crate::verify::{Report, Severity, VerifyOptions, verify_paths};

/// The ledger directory's files at the base revision, by file name.
#[derive(Debug, Clone, Default)]
pub struct BaseLedger {
    /// `ledger.json` at the base, if the ledger existed then.
    pub manifest: Option<Vec<u8>>,
    /// Segment file name → its bytes at the base.
    pub segments: BTreeMap<String, Vec<u8>>,
}

/// Why the gate blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockReason {
    /// `verify-ledger` found an error.
    Verification,
    /// A segment that existed at the base was truncated, rewritten or removed,
    /// or the manifest changed.
    NotAppendOnly,
    /// A receipt added since the base has status failed, error, timeout or interrupted.
    FailedReceipt,
    /// A dispatch started since the base has no receipt.
    Orphan,
}

/// One reason the gate blocks.
#[derive(Debug, Clone, Serialize)]
pub struct Block {
    /// Why.
    pub reason: BlockReason,
    /// The file concerned.
    pub path: PathBuf,
    /// 1-based line (0: the whole file).
    pub line: u64,
    /// Dispatch id, for receipts and orphans.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dispatch_id: Option<String>,
    /// Human-readable detail.
    pub detail: String,
}

/// A receipt added since the base, passed or not.
#[derive(Debug, Clone, Serialize)]
pub struct AddedReceipt {
    /// Segment file.
    pub path: PathBuf,
    /// 1-based line.
    pub line: u64,
    /// Dispatch id.
    pub dispatch_id: String,
    /// Its status.
    pub status: DispatchStatus,
    /// Names of gates that did not pass.
    pub failed_gates: Vec<String>,
}

/// The gate's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct GateReport {
    /// True when nothing blocks.
    pub pass: bool,
    /// Everything that blocks, in order found.
    pub blocks: Vec<Block>,
    /// Receipts added since the base (all of them when no base was given).
    pub receipts: Vec<AddedReceipt>,
    /// The full verification report.
    pub verify: Report,
}

/// Runs the gate on the ledger at `dir`. With `base`, the ledger must extend
/// it append-only and every dispatch recorded since must have a passed
/// receipt; without, only verification errors block (every receipt is listed,
/// since past failures are history, not a merge decision).
///
/// # Errors
/// What prevents checking: a missing ledger, unreadable files.
pub fn gate(dir: &Path, base: Option<&BaseLedger>) -> Result<GateReport, LedgerError> {
    let verify = verify_paths(&[dir.to_path_buf()], &VerifyOptions::default())?;
    let mut blocks: Vec<Block> = verify
        .all_findings()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| Block {
            reason: BlockReason::Verification,
            path: f.path.clone(),
            line: f.line,
            dispatch_id: None,
            detail: format!("{}: {}", f.reason.label(), f.detail),
        })
        .collect();

    if let Some(base) = base {
        check_append_only(dir, base, &mut blocks)?;
    }

    // Records added since the base: past the base's bytes of each segment.
    let mut added: Vec<StoredRecord> = Vec::new();
    let mut all_receipts: BTreeSet<String> = BTreeSet::new();
    for path in crate::read::segment_paths(dir)? {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let base_lines = base
            .and_then(|b| b.segments.get(&name))
            .map_or(0, |bytes| count_lines(bytes));
        for record in read_segment(&path)?.into_iter().flatten() {
            if record.kind == KIND_DISPATCH_RECEIPT
                && let Some(id) = record.body.get("dispatch_id").and_then(|v| v.as_str())
            {
                all_receipts.insert(id.to_owned());
            }
            if record.line > base_lines {
                added.push(record);
            }
        }
    }

    let mut receipts = Vec::new();
    for record in &added {
        let id = record
            .body
            .get("dispatch_id")
            .and_then(|v| v.as_str())
            .unwrap_or("?")
            .to_owned();
        match record.kind.as_str() {
            KIND_DISPATCH_RECEIPT => {
                let Ok(status) =
                    serde_json::from_value::<DispatchStatus>(record.body["status"].clone())
                else {
                    continue; // verification already reported the schema error
                };
                let failed_gates: Vec<String> = record.body["gates"]
                    .as_array()
                    .map(|gates| {
                        gates
                            .iter()
                            .filter(|g| g["verdict"] != "pass" && g["verdict"] != "skipped")
                            .filter_map(|g| g["name"].as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                if base.is_some() && !status.is_passed() {
                    let gates = if failed_gates.is_empty() {
                        String::new()
                    } else {
                        format!(" (gates: {})", failed_gates.join(", "))
                    };
                    blocks.push(Block {
                        reason: BlockReason::FailedReceipt,
                        path: record.path.clone(),
                        line: record.line,
                        dispatch_id: Some(id.clone()),
                        detail: format!("dispatch {id} ended {}{gates}", status_word(status)),
                    });
                }
                receipts.push(AddedReceipt {
                    path: record.path.clone(),
                    line: record.line,
                    dispatch_id: id,
                    status,
                    failed_gates,
                });
            }
            KIND_DISPATCH_STARTED if base.is_some() && !all_receipts.contains(&id) => {
                blocks.push(Block {
                    reason: BlockReason::Orphan,
                    path: record.path.clone(),
                    line: record.line,
                    dispatch_id: Some(id.clone()),
                    detail: format!(
                        "dispatch {id} started but has no receipt: vnx was killed mid-dispatch"
                    ),
                });
            }
            _ => {}
        }
    }
    Ok(GateReport {
        pass: blocks.is_empty(),
        blocks,
        receipts,
        verify,
    })
}

/// Newlines in `bytes`. Off the hot path (the gate reads each base once), so
/// the plain loop is fine.
#[allow(clippy::naive_bytecount)]
fn count_lines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

fn status_word(status: DispatchStatus) -> &'static str {
    match status {
        DispatchStatus::Passed => "passed",
        DispatchStatus::Failed => "failed",
        DispatchStatus::Error => "in error",
        DispatchStatus::Timeout => "in a timeout",
        DispatchStatus::Interrupted => "interrupted",
    }
}

fn check_append_only(
    dir: &Path,
    base: &BaseLedger,
    blocks: &mut Vec<Block>,
) -> Result<(), LedgerError> {
    let mut block = |path: PathBuf, detail: String| {
        blocks.push(Block {
            reason: BlockReason::NotAppendOnly,
            path,
            line: 0,
            dispatch_id: None,
            detail,
        });
    };
    if let Some(manifest) = &base.manifest {
        let path = dir.join(MANIFEST_FILE);
        match std::fs::read(&path) {
            Ok(now) if &now == manifest => {}
            Ok(_) => block(
                path,
                "ledger.json changed since the base: the ledger id binds every segment".into(),
            ),
            Err(_) => block(path, "ledger.json was removed since the base".into()),
        }
    }
    for (name, then) in &base.segments {
        if !is_segment_name(name) {
            continue;
        }
        let path = dir.join(name);
        let now = match std::fs::read(&path) {
            Ok(now) => now,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                block(
                    path,
                    format!(
                        "segment removed since the base (it had {} bytes)",
                        then.len()
                    ),
                );
                continue;
            }
            Err(source) => {
                return Err(LedgerError::Io {
                    action: "read",
                    path,
                    source,
                });
            }
        };
        if now.len() < then.len() {
            block(
                path,
                format!(
                    "segment truncated since the base: {} bytes, was {}",
                    now.len(),
                    then.len()
                ),
            );
        } else if !now.starts_with(then) {
            let at = now.iter().zip(then).position(|(a, b)| a != b).unwrap_or(0);
            let line = count_lines(&then[..at]) + 1;
            block(
                path,
                format!(
                    "segment rewritten since the base: line {line} differs (byte {at}); a ledger may only grow at its end"
                ),
            );
        }
    }
    Ok(())
}
