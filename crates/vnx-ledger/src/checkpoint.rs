//! Checkpoints: a small file recording each segment's size and head, kept
//! outside the ledger (in CI artifacts, a release note, another machine).
//!
//! A hash chain alone cannot show that records were cut from its end: the
//! shorter chain is still a valid chain. A checkpoint can: verification fails
//! when a segment is shorter than recorded, when the record at the recorded
//! offset is not the recorded head, or when a recorded segment is gone. It also
//! lets `--since-checkpoint` verify only what was appended after it.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::LedgerError;
use crate::verify::{Report, VerifyOptions, verify_paths};

/// A checkpoint file: `{"created":…,"ledger_id":…,"segments":[…],"v":1}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// When it was taken, RFC 3339 UTC.
    pub created: String,
    /// The ledger it was taken of.
    pub ledger_id: String,
    /// One entry per segment, sorted by name.
    pub segments: Vec<SegmentCheckpoint>,
    /// Checkpoint format version, 1.
    pub v: u64,
}

/// One segment's state at checkpoint time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentCheckpoint {
    /// Hash of the last record (lowercase hex).
    pub head_hash: String,
    /// Seq of the last record.
    pub head_seq: u64,
    /// Segment file name.
    pub segment: String,
    /// Segment size in bytes, just past the head record's `\n`.
    pub size: u64,
}

impl Checkpoint {
    /// The entry for a segment, by file name.
    pub fn segment(&self, name: &str) -> Option<&SegmentCheckpoint> {
        self.segments.iter().find(|s| s.segment == name)
    }

    /// Reads a checkpoint file.
    ///
    /// # Errors
    /// [`LedgerError::Checkpoint`] when it is missing or invalid.
    pub fn read(path: &Path) -> Result<Checkpoint, LedgerError> {
        let bad = |reason: String| LedgerError::Checkpoint {
            path: path.to_path_buf(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let cp: Checkpoint =
            serde_json::from_str(&text).map_err(|e| bad(format!("not a checkpoint: {e}")))?;
        if cp.v != 1 {
            return Err(bad(format!(
                "checkpoint version {} is not supported; upgrade vnx",
                cp.v
            )));
        }
        Ok(cp)
    }

    /// Serializes as canonical JSON with a trailing newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_jcs::to_vec(self).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }
}

/// Takes a checkpoint of a ledger directory. The ledger is verified first: a
/// checkpoint vouches for what it records, so it is refused for a ledger that
/// does not verify (the report says why).
///
/// # Errors
/// I/O and manifest errors; `Err(Ok(report))`-style failures are returned as
/// `Ok((None, report))`.
pub fn take_checkpoint(dir: &Path) -> Result<(Option<Checkpoint>, Report), LedgerError> {
    let manifest = crate::store::read_manifest(dir)?;
    let report = verify_paths(&[dir.to_path_buf()], &VerifyOptions::default())?;
    if !report.ok {
        return Ok((None, report));
    }
    let mut segments: Vec<SegmentCheckpoint> = report
        .segments
        .iter()
        .filter_map(|s| {
            Some(SegmentCheckpoint {
                head_hash: s.head_hash.clone()?,
                head_seq: s.head_seq?,
                segment: file_name(&s.path),
                size: s.from_offset + s.bytes,
            })
        })
        .collect();
    segments.sort_by(|a, b| a.segment.cmp(&b.segment));
    let cp = Checkpoint {
        created: crate::record::format_ts(chrono::Utc::now()),
        ledger_id: manifest.ledger_id,
        segments,
        v: 1,
    };
    Ok((Some(cp), report))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
