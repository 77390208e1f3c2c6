//! Verification of ledger segments: every line's UTF-8, JSON, canonical form,
//! schema and hash, then the chain — seq continuity, prev links, genesis
//! binding — and, given a checkpoint, that nothing behind it was truncated or
//! rewritten.
//!
//! Lines are checked in parallel (the per-line work is independent: hashing,
//! the canonical scan, the schema check); the chain is then linked in order on
//! one thread, which only compares 32-byte hashes. The file is read in blocks,
//! so memory stays bounded whatever the ledger's size.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::checkpoint::{Checkpoint, SegmentCheckpoint};
use crate::error::LedgerError;
use crate::record::{EnvelopeRef, record_hash, split_line, to_hex};
use crate::store::{MANIFEST_FILE, SEGMENT_EXTENSION, is_segment_name, read_manifest};

/// Lines longer than this are reported as malformed without being buffered whole.
pub const MAX_LINE_BYTES: usize = 64 << 20;
/// Largest block handed to one worker.
const BLOCK_BYTES: usize = 4 << 20;
/// Smallest block worth a hand-off between threads.
const MIN_BLOCK_BYTES: usize = 128 << 10;

mod link;
mod report;
mod scan;

use link::Linker;
use scan::scan_parallel;

pub use report::{Finding, Reason, Report, SegmentReport, Severity};
/// Options for [`verify_paths`].
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Treat warnings (foreign files, unbound segments, orphans) as errors.
    pub strict: bool,
    /// Also fail on truncation or rewriting behind this checkpoint.
    pub checkpoint: Option<Checkpoint>,
    /// Verify only what was appended after `checkpoint` (requires it).
    pub since_checkpoint: bool,
    /// Worker threads for line checks; 0 means one per available core.
    pub threads: usize,
}

/// Verifies ledgers and segments. Each path is a ledger directory (every
/// segment in it is verified) or a single segment file.
///
/// # Errors
/// Only for what prevents verification: a missing path, an unreadable file,
/// an invalid manifest, a checkpoint for another ledger. What verification
/// finds is in the [`Report`].
pub fn verify_paths(paths: &[PathBuf], options: &VerifyOptions) -> Result<Report, LedgerError> {
    let threads = if options.threads == 0 {
        std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
    } else {
        options.threads
    };
    if options.since_checkpoint && options.checkpoint.is_none() {
        return Err(LedgerError::Checkpoint {
            path: PathBuf::from("--since-checkpoint"),
            reason: "--since-checkpoint needs --checkpoint FILE".into(),
        });
    }
    let mut report = Report {
        ok: true,
        strict: options.strict,
        segments: Vec::new(),
        findings: Vec::new(),
    };
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                LedgerError::NoLedger { path: path.clone() }
            } else {
                LedgerError::Io {
                    action: "read",
                    path: path.clone(),
                    source,
                }
            }
        })?;
        if meta.is_dir() {
            verify_dir(path, options, threads, &mut report)?;
        } else {
            verify_lone_segment(path, options, threads, &mut report)?;
        }
    }
    orphans(&mut report);
    Ok(report.finish())
}

fn verify_dir(
    dir: &Path,
    options: &VerifyOptions,
    threads: usize,
    report: &mut Report,
) -> Result<(), LedgerError> {
    let manifest = read_manifest(dir)?;
    if let Some(cp) = &options.checkpoint
        && cp.ledger_id != manifest.ledger_id
    {
        {
            return Err(LedgerError::Checkpoint {
                path: dir.to_path_buf(),
                reason: format!(
                    "it was taken of ledger {}, but {} is ledger {}",
                    cp.ledger_id,
                    dir.display(),
                    manifest.ledger_id
                ),
            });
        }
    }
    let mut names = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(LedgerError::io("list", dir))?;
    for entry in entries {
        let entry = entry.map_err(LedgerError::io("list", dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if !is_file || name == MANIFEST_FILE || ignorable(&name) {
            continue;
        }
        if is_segment_name(&name) {
            names.push(name);
        } else {
            report.findings.push(Finding {
                path: entry.path(),
                line: 0,
                seq: None,
                reason: Reason::ForeignFile,
                severity: Reason::ForeignFile.severity(),
                detail: format!(
                    "{name} is not part of the ledger (segments are named *{SEGMENT_EXTENSION}); move it out of {}",
                    dir.display()
                ),
            });
        }
    }
    names.sort();
    for name in &names {
        let path = dir.join(name);
        let anchor = options.checkpoint.as_ref().and_then(|cp| cp.segment(name));
        let segment = verify_segment(
            &path,
            name,
            Some(&manifest.ledger_id),
            anchor,
            options.since_checkpoint,
            threads,
        )?;
        report.segments.push(segment);
    }
    if let Some(cp) = &options.checkpoint {
        for entry in &cp.segments {
            if !names.contains(&entry.segment) {
                report.findings.push(Finding {
                    path: dir.join(&entry.segment),
                    line: 0,
                    seq: None,
                    reason: Reason::Removed,
                    severity: Severity::Error,
                    detail: format!(
                        "the checkpoint recorded this segment with {} records (head seq {}), but it is gone; restore it from git",
                        entry.head_seq + 1,
                        entry.head_seq
                    ),
                });
            }
        }
    }
    Ok(())
}

fn verify_lone_segment(
    path: &Path,
    options: &VerifyOptions,
    threads: usize,
    report: &mut Report,
) -> Result<(), LedgerError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let ledger_id = match read_manifest(dir) {
        Ok(m) => Some(m.ledger_id),
        Err(LedgerError::NoLedger { .. }) => {
            report.findings.push(Finding {
                path: path.to_path_buf(),
                line: 0,
                seq: None,
                reason: Reason::Unbound,
                severity: Severity::Warning,
                detail: format!(
                    "no {MANIFEST_FILE} beside the segment: its genesis was checked against its own first record only; \
                     verify the ledger directory to check the binding"
                ),
            });
            None
        }
        Err(e) => return Err(e),
    };
    let anchor = options.checkpoint.as_ref().and_then(|cp| cp.segment(&name));
    let segment = verify_segment(
        path,
        &name,
        ledger_id.as_deref(),
        anchor,
        options.since_checkpoint,
        threads,
    )?;
    report.segments.push(segment);
    Ok(())
}

/// Names in a ledger directory that are neither segments nor foreign: hidden
/// files (temporary files of an append in progress, `.gitattributes`),
/// quarantine files, and Markdown notes.
fn ignorable(name: &str) -> bool {
    name.starts_with('.')
        || name.contains(".quarantine-")
        || Path::new(name)
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("md"))
}

fn orphans(report: &mut Report) {
    let receipts: BTreeSet<&String> = report
        .segments
        .iter()
        .flat_map(|s| s.receipts.iter())
        .collect();
    let mut found = Vec::new();
    for segment in &report.segments {
        for (id, (line, seq)) in &segment.started {
            if !receipts.contains(id) {
                found.push(Finding {
                    path: segment.path.clone(),
                    line: *line,
                    seq: Some(*seq),
                    reason: Reason::Orphan,
                    severity: Severity::Warning,
                    detail: format!(
                        "dispatch {id} started but has no receipt: vnx was killed mid-dispatch (or it is still running)"
                    ),
                });
            }
        }
    }
    report.findings.extend(found);
}

/// Verifies one segment file.
///
/// `ledger_id` is the manifest's id (None when verifying a lone file without
/// one). With `anchor` the checkpointed prefix is checked to be intact; with
/// `since` only the bytes after it are verified.
///
/// # Errors
/// I/O errors only.
pub fn verify_segment(
    path: &Path,
    name: &str,
    ledger_id: Option<&str>,
    anchor: Option<&SegmentCheckpoint>,
    since: bool,
    threads: usize,
) -> Result<SegmentReport, LedgerError> {
    let mut file = File::open(path).map_err(LedgerError::io("open", path))?;
    let size = file
        .metadata()
        .map_err(LedgerError::io("stat", path))?
        .len();
    let mut linker = Linker::new(path, name, ledger_id);
    let mut from_offset = 0;
    if let Some(cp) = anchor {
        if size < cp.size {
            linker.finding(0, None, Reason::Truncated, format!(
                "segment is {size} bytes but the checkpoint recorded {} bytes (head seq {}): records were removed from its end; restore it from git",
                cp.size, cp.head_seq
            ));
            return Ok(linker.into_report(0, 0));
        }
        if since {
            match check_anchor(&mut file, path, cp)? {
                Ok(()) => {
                    linker.resume_after(cp);
                    from_offset = cp.size;
                }
                Err(detail) => {
                    linker.finding(
                        cp.head_seq + 1,
                        Some(cp.head_seq),
                        Reason::Rewritten,
                        detail,
                    );
                    return Ok(linker.into_report(0, 0));
                }
            }
        } else {
            linker.anchor = Some(cp.clone());
        }
    }
    if size == 0 {
        linker.finding(
            0,
            None,
            Reason::Empty,
            "the segment is empty, without even its genesis record; \
            `vnx ledger append` initializes it, or remove the file"
                .into(),
        );
        return Ok(linker.into_report(0, 0));
    }
    file.seek(SeekFrom::Start(from_offset))
        .map_err(LedgerError::io("seek", path))?;
    let first_line = linker.next_line;
    // Blocks small enough that every worker gets one even for a short tail
    // past a checkpoint, large enough that hand-offs stay cheap; and no more
    // workers than blocks.
    let remaining = usize::try_from(size - from_offset).unwrap_or(usize::MAX);
    let block_bytes = (remaining / threads.max(1)).clamp(MIN_BLOCK_BYTES, BLOCK_BYTES);
    let threads = threads.min(remaining.div_ceil(block_bytes).max(1));
    scan_parallel(
        file,
        path,
        from_offset,
        first_line,
        threads,
        block_bytes,
        &mut linker,
    )?;
    linker.finish();
    if let Some(cp) = linker.anchor.take()
        && !linker.anchor_matched
    {
        {
            linker.finding(0, Some(cp.head_seq), Reason::Rewritten, format!(
                "no record with seq {} and hash {} ends at byte {} as the checkpoint recorded: the segment was rewritten or rolled back behind the checkpoint",
                cp.head_seq, cp.head_hash, cp.size
            ));
        }
    }
    Ok(linker.into_report(from_offset, size - from_offset))
}

/// Checks that the line ending at the checkpoint's offset is the checkpoint's head.
fn check_anchor(
    file: &mut File,
    path: &Path,
    cp: &SegmentCheckpoint,
) -> Result<Result<(), String>, LedgerError> {
    if cp.size == 0 {
        return Ok(Err("the checkpoint records an empty segment".into()));
    }
    // Read backwards from the checkpoint offset to the start of its last line.
    let mut line = Vec::new();
    let mut end = cp.size;
    let mut buf = vec![0u8; 8192];
    loop {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))
            .map_err(LedgerError::io("seek", path))?;
        file.read_exact(chunk)
            .map_err(LedgerError::io("read", path))?;
        let search_end = if end == cp.size {
            chunk.len().saturating_sub(1)
        } else {
            chunk.len()
        };
        if end == cp.size && chunk.last() != Some(&b'\n') {
            return Ok(Err(format!(
                "byte {} is not the end of a line: the segment was rewritten behind the checkpoint",
                cp.size
            )));
        }
        let found = chunk[..search_end].iter().rposition(|&b| b == b'\n');
        let take_from = found.map_or(0, |i| i + 1);
        let mut piece = chunk[take_from..search_end].to_vec();
        piece.extend_from_slice(&line);
        line = piece;
        if found.is_some() || start == 0 {
            break;
        }
        if line.len() > MAX_LINE_BYTES {
            return Ok(Err(
                "the checkpointed head line is too long to be a record".into()
            ));
        }
        end = start;
    }
    let Some(split) = split_line(&line) else {
        return Ok(Err(
            "the line at the checkpoint's head is not a ledger line".into(),
        ));
    };
    let head_hash = to_hex(&split.stored_hash);
    if head_hash != cp.head_hash || record_hash(split.record) != split.stored_hash {
        return Ok(Err(format!(
            "the record ending at byte {} has hash {head_hash}, the checkpoint recorded {}: the segment was rewritten behind the checkpoint",
            cp.size, cp.head_hash
        )));
    }
    match serde_json::from_slice::<EnvelopeRef<'_>>(split.record) {
        Ok(env) if env.seq == cp.head_seq => Ok(Ok(())),
        _ => Ok(Err(format!(
            "the record at the checkpoint's head does not have seq {}",
            cp.head_seq
        ))),
    }
}
