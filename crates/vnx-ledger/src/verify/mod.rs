//! Verification of ledger segments: every line's UTF-8, JSON, canonical form,
//! schema and hash, then the chain — seq continuity, prev links, genesis
//! binding — and, given a checkpoint, that nothing behind it was truncated or
//! rewritten.
//!
//! - [`report`]: what verification returns (findings, reasons, reports);
//! - `scan`: the per-line checks, run on worker threads over blocks of the file;
//! - `link`: the in-order linker that classifies every break in the chain;
//! - this module: which files are verified (directory listing, manifest,
//!   symbolic links) and the checkpoint anchor.
//!
//! Lines are checked in parallel (the per-line work is independent: hashing,
//! the canonical scan, the schema check); the chain is then linked in order on
//! one thread, which only compares 32-byte hashes. The file is read in blocks,
//! so memory stays bounded whatever the ledger's size.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::checkpoint::{Checkpoint, SegmentCheckpoint};
use crate::error::LedgerError;
use crate::record::{EnvelopeRef, record_hash, split_line, to_hex};
use crate::store::{MANIFEST_FILE, SEGMENT_EXTENSION, is_ledger_id, is_segment_name};

/// The longest line a segment may hold, in bytes, not counting its `\n`:
/// 64 MiB (FORMAT.md §2). Verification reports a longer line as `malformed`
/// (without buffering it whole); appends must refuse a record whose line
/// would be longer.
pub const MAX_LINE_BYTES: usize = 64 << 20;
/// Largest block handed to one worker.
const BLOCK_BYTES: usize = 4 << 20;
/// Smallest block worth a hand-off between threads.
const MIN_BLOCK_BYTES: usize = 128 << 10;

mod link;
pub mod report;
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

/// Verifies ledgers and segments (FORMAT.md §8). Each path is a ledger
/// directory (every segment in it is verified) or a single segment file.
/// No symbolic link is followed: a path, segment or manifest that is one is
/// reported as a [`Reason::Symlink`] finding and not read.
///
/// # Errors
/// Only for what prevents verification: a missing path, a directory without
/// `ledger.json`, an unreadable file, a checkpoint taken of another ledger or
/// given for a segment without `ledger.json`. What verification finds is in
/// the [`Report`].
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
        // `ledger/` would make lstat follow a link named `ledger`.
        let path: PathBuf = path.components().collect();
        let meta = std::fs::symlink_metadata(&path).map_err(|source| {
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
        if meta.file_type().is_symlink() {
            report.findings.push(symlink_finding(&path));
        } else if meta.is_dir() {
            verify_dir(&path, options, threads, &mut report)?;
        } else if meta.is_file() {
            verify_lone_segment(&path, options, threads, &mut report)?;
        } else {
            return Err(LedgerError::NoLedger { path });
        }
    }
    orphans(&mut report);
    Ok(report.finish())
}

fn finding(path: PathBuf, reason: Reason, detail: String) -> Finding {
    Finding {
        path,
        line: 0,
        seq: None,
        reason,
        severity: reason.severity(),
        detail,
    }
}

fn symlink_finding(path: &Path) -> Finding {
    let target = std::fs::read_link(path)
        .map(|t| format!(" (to {})", t.display()))
        .unwrap_or_default();
    finding(
        path.to_path_buf(),
        Reason::Symlink,
        format!(
            "{} is a symbolic link{target}: vnx does not follow links in a ledger, since one can stand for any file; \
             replace it with the file itself (restore it from git) or verify the real path",
            path.display()
        ),
    )
}

/// Opens a file only if `path` itself is a regular file, not a symbolic link
/// (checked before opening and, against a swap in between, by comparing the
/// opened file's device and inode with what `lstat` saw).
fn open_regular(path: &Path) -> Result<Result<File, Reason>, LedgerError> {
    let before = std::fs::symlink_metadata(path).map_err(LedgerError::io("read", path))?;
    if before.file_type().is_symlink() {
        return Ok(Err(Reason::Symlink));
    }
    let file = File::open(path).map_err(LedgerError::io("open", path))?;
    let after = file.metadata().map_err(LedgerError::io("stat", path))?;
    if (after.dev(), after.ino()) != (before.dev(), before.ino()) {
        return Ok(Err(Reason::Symlink));
    }
    Ok(Ok(file))
}

/// Reads `dir/ledger.json` and checks it is exactly the canonical manifest
/// (FORMAT.md §1). `Ok(None)` after a finding about it was recorded.
///
/// # Errors
/// [`LedgerError::NoLedger`] when it does not exist; I/O errors.
fn load_manifest(dir: &Path, report: &mut Report) -> Result<Option<String>, LedgerError> {
    let path = dir.join(MANIFEST_FILE);
    let file = match open_regular(&path) {
        Err(LedgerError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Err(LedgerError::NoLedger {
                path: dir.to_path_buf(),
            });
        }
        other => other?,
    };
    let Ok(mut file) = file else {
        report.findings.push(symlink_finding(&path));
        return Ok(None);
    };
    let mut bytes = Vec::new();
    // A manifest is 78 bytes; anything much longer is not one.
    (&mut file)
        .take(4096)
        .read_to_end(&mut bytes)
        .map_err(LedgerError::io("read", &path))?;
    match manifest_id(&bytes) {
        Ok(id) => Ok(Some(id)),
        Err(why) => {
            report.findings.push(finding(
                path.clone(),
                Reason::Manifest,
                format!(
                    "{why}; the manifest must be exactly {{\"format\":\"vnx-ledger\",\"ledger_id\":\"<32 lowercase hex>\",\"v\":1}} \
                     and a newline. No segment of {} was verified: restore it from git (`git checkout -- {}`)",
                    dir.display(),
                    path.display()
                ),
            ));
            Ok(None)
        }
    }
}

/// The ledger id of a manifest's bytes, or why they are not a manifest.
fn manifest_id(bytes: &[u8]) -> Result<String, String> {
    #[derive(serde::Deserialize)]
    struct Loose {
        ledger_id: serde_json::Value,
    }
    let text = std::str::from_utf8(bytes).map_err(|_| "it is not UTF-8".to_owned())?;
    let loose: Loose = serde_json::from_str(text)
        .map_err(|e| format!("it is not a JSON object with a ledger_id: {e}"))?;
    let Some(id) = loose.ledger_id.as_str().filter(|id| is_ledger_id(id)) else {
        return Err(format!(
            "its ledger_id {} is not 32 lowercase hex chars",
            loose.ledger_id
        ));
    };
    let canonical = format!("{{\"format\":\"vnx-ledger\",\"ledger_id\":\"{id}\",\"v\":1}}\n");
    if text != canonical {
        return Err(
            "it is not byte for byte the canonical manifest (another member, format or version, \
             whitespace, key order, or a missing final newline)"
                .to_owned(),
        );
    }
    Ok(id.to_owned())
}

fn check_checkpoint_ledger(
    options: &VerifyOptions,
    path: &Path,
    ledger_id: Option<&str>,
) -> Result<(), LedgerError> {
    let Some(cp) = &options.checkpoint else {
        return Ok(());
    };
    match ledger_id {
        Some(id) if id == cp.ledger_id => Ok(()),
        Some(id) => Err(LedgerError::Checkpoint {
            path: path.to_path_buf(),
            reason: format!(
                "it was taken of ledger {}, but {} is ledger {id}; use that ledger's checkpoint",
                cp.ledger_id,
                path.display(),
            ),
        }),
        None => Err(LedgerError::Checkpoint {
            path: path.to_path_buf(),
            reason: format!(
                "{} has no {MANIFEST_FILE} beside it, so nothing shows the checkpoint is of its ledger; \
                 verify the ledger directory",
                path.display()
            ),
        }),
    }
}

/// What a directory entry is to the ledger (FORMAT.md §1).
enum Entry {
    Segment,
    Ignored,
    Symlink,
    Foreign,
}

fn classify(name: &str, file_type: std::fs::FileType) -> Entry {
    if name == MANIFEST_FILE
        || name.starts_with('.')
        || Path::new(name)
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("md"))
    {
        Entry::Ignored
    } else if file_type.is_symlink() {
        Entry::Symlink
    } else if file_type.is_dir() {
        Entry::Ignored
    } else if !file_type.is_file() {
        Entry::Foreign
    } else if is_segment_name(name) {
        Entry::Segment
    } else if is_quarantine_name(name)
        || name == crate::signature::ALLOWED_SIGNERS_FILE
        || name
            .strip_suffix(crate::signature::SIGNATURE_SUFFIX)
            .is_some_and(is_segment_name)
    {
        // Quarantined bytes, segment signatures and the allowed-signers
        // file belong to the ledger without being segments.
        Entry::Ignored
    } else {
        Entry::Foreign
    }
}

/// `<segment>.quarantine-<YYYYMMDDTHHMMSSmmmZ>`, the name `vnx ledger repair`
/// gives the bytes it moves out of a segment.
pub fn is_quarantine_name(name: &str) -> bool {
    const STAMP: &[u8] = b"dddddddddTdddddddddZ";
    let Some((segment, stamp)) = name.rsplit_once(".quarantine-") else {
        return false;
    };
    is_segment_name(segment)
        && stamp.len() == STAMP.len() - 1
        && stamp.bytes().zip(&STAMP[1..]).all(|(c, &s)| {
            if s == b'd' {
                c.is_ascii_digit()
            } else {
                c == s
            }
        })
}

fn verify_dir(
    dir: &Path,
    options: &VerifyOptions,
    threads: usize,
    report: &mut Report,
) -> Result<(), LedgerError> {
    let Some(ledger_id) = load_manifest(dir, report)? else {
        return Ok(());
    };
    check_checkpoint_ledger(options, dir, Some(&ledger_id))?;
    let mut names = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(LedgerError::io("list", dir))?;
    for entry in entries {
        let entry = entry.map_err(LedgerError::io("list", dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let file_type = entry
            .file_type()
            .map_err(LedgerError::io("stat", entry.path()))?;
        match classify(&name, file_type) {
            Entry::Segment => names.push(name),
            Entry::Ignored => {}
            Entry::Symlink => report.findings.push(symlink_finding(&entry.path())),
            Entry::Foreign => report.findings.push(finding(
                entry.path(),
                Reason::ForeignFile,
                format!(
                    "{name} is not part of the ledger (segments are regular files named *{SEGMENT_EXTENSION}); move it out of {}",
                    dir.display()
                ),
            )),
        }
    }
    names.sort();
    for name in &names {
        let path = dir.join(name);
        let anchor = options.checkpoint.as_ref().and_then(|cp| cp.segment(name));
        let segment = verify_segment(
            &path,
            name,
            Some(&ledger_id),
            anchor,
            options.since_checkpoint,
            threads,
        )?;
        report.segments.push(segment);
    }
    if let Some(cp) = &options.checkpoint {
        for entry in &cp.segments {
            if !names.contains(&entry.segment) {
                report.findings.push(finding(
                    dir.join(&entry.segment),
                    Reason::Removed,
                    format!(
                        "the checkpoint recorded this segment with {} records (head seq {}), but it is gone; restore it from git",
                        entry.head_seq + 1,
                        entry.head_seq
                    ),
                ));
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
    let ledger_id = match load_manifest(dir, report) {
        Ok(Some(id)) => Some(id),
        Ok(None) => return Ok(()),
        Err(LedgerError::NoLedger { .. }) => {
            check_checkpoint_ledger(options, path, None)?;
            report.findings.push(finding(
                path.to_path_buf(),
                Reason::Unbound,
                format!(
                    "no {MANIFEST_FILE} beside the segment: its genesis was checked against its own first record only; \
                     verify the ledger directory to check the binding"
                ),
            ));
            None
        }
        Err(e) => return Err(e),
    };
    check_checkpoint_ledger(options, path, ledger_id.as_deref())?;
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

/// One orphan per dispatch id and segment, on the line of the first
/// `dispatch.started` for it that the chain accepted.
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
/// `since` (and an intact prefix) only the bytes after it are verified.
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
    let mut linker = Linker::new(path, name, ledger_id);
    let Ok(mut file) = open_regular(path)? else {
        let f = symlink_finding(path);
        linker.finding(0, None, f.reason, f.detail);
        return Ok(linker.into_report(0, 0));
    };
    let size = file
        .metadata()
        .map_err(LedgerError::io("stat", path))?
        .len();
    let mut from_offset = 0;
    if let Some(cp) = anchor {
        let intact = if size < cp.size {
            linker.finding(0, Some(cp.head_seq), Reason::Truncated, format!(
                "segment is {size} bytes but the checkpoint recorded {} bytes (head seq {}): records were removed from its end; restore it from git",
                cp.size, cp.head_seq
            ));
            false
        } else if let Err(detail) = check_anchor(&mut file, path, cp)? {
            linker.finding(0, Some(cp.head_seq), Reason::Rewritten, detail);
            false
        } else {
            true
        };
        // A broken prefix is verified in full, so its findings name lines.
        if since && intact {
            linker.resume_after(cp);
            from_offset = cp.size;
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
    scan_parallel(file, path, first_line, threads, block_bytes, &mut linker)?;
    linker.finish();
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
