//! Verification of ledger segments: every line's UTF-8, JSON, canonical form,
//! schema and hash, then the chain — seq continuity, prev links, genesis
//! binding — and, given a checkpoint, that nothing behind it was truncated or
//! rewritten.
//!
//! Lines are checked in parallel (the per-line work is independent: hashing,
//! the canonical scan, the schema check); the chain is then linked in order on
//! one thread, which only compares 32-byte hashes. The file is read in blocks,
//! so memory stays bounded whatever the ledger's size.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::canonical::check_canonical;
use crate::checkpoint::{Checkpoint, SegmentCheckpoint};
use crate::error::LedgerError;
use crate::record::{
    EnvelopeRef, FORMAT_VERSION, Hash, KIND_GENESIS, genesis_prev, parse_hex_hash, record_hash,
    split_line, to_hex, valid_ts,
};
use crate::schema::{BodyInfo, validate_body};
use crate::store::{MANIFEST_FILE, SEGMENT_EXTENSION, is_segment_name, read_manifest};

/// Lines longer than this are reported as malformed without being buffered whole.
pub const MAX_LINE_BYTES: usize = 64 << 20;
/// Largest block handed to one worker.
const BLOCK_BYTES: usize = 4 << 20;
/// Smallest block worth a hand-off between threads.
const MIN_BLOCK_BYTES: usize = 128 << 10;

/// Why verification flagged something. Serialized in snake_case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// A line's content no longer matches its hash, or a record was rewritten
    /// and re-hashed so the next record no longer links to it.
    Edited,
    /// Records are missing or out of order (a seq gap, or a seq that goes back).
    DeletedOrReordered,
    /// A record appears twice.
    Duplicated,
    /// The last line is incomplete (no `\n`): a crash or kill mid-append.
    TornTail,
    /// A record belongs to another chain: the first record is not bound to
    /// this ledger id and segment name, or a record links to nothing here.
    Spliced,
    /// Valid JSON, but not the RFC 8785 canonical form / line layout.
    NotCanonical,
    /// Not valid JSON (or not valid UTF-8).
    Malformed,
    /// The envelope or the kind's body does not match the format's schema.
    Schema,
    /// The segment is shorter than a checkpoint recorded.
    Truncated,
    /// The record at a checkpoint's head is not the one the checkpoint recorded.
    Rewritten,
    /// A segment listed in a checkpoint is gone.
    Removed,
    /// The segment file is empty: it has not even its genesis record.
    Empty,
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
    /// Findings about directories rather than one segment (foreign files,
    /// removed segments, orphans).
    pub findings: Vec<Finding>,
}

impl Report {
    /// All findings, segment ones first.
    pub fn all_findings(&self) -> impl Iterator<Item = &Finding> {
        self.segments
            .iter()
            .flat_map(|s| s.findings.iter())
            .chain(self.findings.iter())
    }

    /// Total records verified.
    pub fn records(&self) -> u64 {
        self.segments.iter().map(|s| s.records).sum()
    }

    fn finish(mut self) -> Report {
        let strict = self.strict;
        let failed = self
            .all_findings()
            .any(|f| f.severity == Severity::Error || strict);
        self.ok = !failed;
        self
    }
}

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
/// quarantine files, segment signatures (`<segment>.sig`), the
/// `allowed_signers` file, and Markdown notes.
fn ignorable(name: &str) -> bool {
    name.starts_with('.')
        || name.contains(".quarantine-")
        || name == "allowed_signers"
        || name
            .strip_suffix(crate::signature::SIGNATURE_SUFFIX)
            .is_some_and(crate::store::is_segment_name)
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

/// A block of complete lines handed to a worker.
struct Block {
    index: u64,
    base_offset: u64,
    bytes: Vec<u8>,
    /// The block ends in bytes with no `\n` at end of file.
    torn: bool,
    /// A line too long to buffer: (length) — reported without its content.
    oversize: Option<u64>,
}

fn scan_parallel(
    mut file: File,
    path: &Path,
    start_offset: u64,
    first_line: u64,
    threads: usize,
    block_bytes: usize,
    linker: &mut Linker,
) -> Result<(), LedgerError> {
    let (block_tx, block_rx) = mpsc::sync_channel::<Block>(threads * 2);
    let block_rx = Arc::new(Mutex::new(block_rx));
    let (result_tx, result_rx) = mpsc::channel::<(u64, Vec<LineResult>)>();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let rx = Arc::clone(&block_rx);
            let tx = result_tx.clone();
            scope.spawn(move || {
                loop {
                    let block = match rx.lock() {
                        Ok(guard) => guard.recv(),
                        Err(_) => return,
                    };
                    let Ok(block) = block else { return };
                    let results = scan_block(&block);
                    if tx.send((block.index, results)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(result_tx);
        let reader =
            scope.spawn(move || read_blocks(&mut file, start_offset, block_bytes, &block_tx));
        // Link results in block order as they arrive. Workers number lines
        // within their block; the absolute number is assigned here, in order,
        // so the reader never has to count newlines.
        let mut waiting = BTreeMap::new();
        let mut next = 0u64;
        let mut line = first_line;
        for (index, results) in result_rx {
            waiting.insert(index, results);
            while let Some(results) = waiting.remove(&next) {
                for mut r in results {
                    r.line = line;
                    if let Some(p) = r.parsed.as_mut() {
                        p.line = line;
                    }
                    line += 1;
                    linker.push(r);
                }
                next += 1;
            }
        }
        match reader.join() {
            Ok(result) => result.map_err(|source| LedgerError::Io {
                action: "read",
                path: path.to_path_buf(),
                source,
            }),
            Err(_) => Err(LedgerError::Io {
                action: "read",
                path: path.to_path_buf(),
                source: std::io::Error::other("reader thread panicked"),
            }),
        }
    })
}

/// Reads the file in blocks cut at line boundaries.
fn read_blocks(
    file: &mut File,
    start_offset: u64,
    block_bytes: usize,
    tx: &mpsc::SyncSender<Block>,
) -> std::io::Result<()> {
    let mut index = 0u64;
    let mut offset = start_offset;
    let mut carry: Vec<u8> = Vec::new();
    let mut skipping: Option<u64> = None; // length so far of an oversize line being skipped
    loop {
        let mut buf = std::mem::take(&mut carry);
        buf.reserve(block_bytes);
        // `read_to_end` through `take` fills spare capacity without zeroing it first.
        let n = (&mut *file)
            .take(block_bytes as u64)
            .read_to_end(&mut buf)?;
        let eof = n == 0;
        if let Some(len) = skipping {
            match buf.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    let total = len + i as u64 + 1;
                    let block = Block {
                        index,
                        base_offset: offset,
                        bytes: Vec::new(),
                        torn: false,
                        oversize: Some(total),
                    };
                    index += 1;
                    offset += total;
                    skipping = None;
                    if tx.send(block).is_err() {
                        return Ok(());
                    }
                    carry = buf[i + 1..].to_vec();
                    continue;
                }
                None if eof => {
                    let block = Block {
                        index,
                        base_offset: offset,
                        bytes: Vec::new(),
                        torn: true,
                        oversize: Some(len),
                    };
                    let _ = tx.send(block);
                    return Ok(());
                }
                None => {
                    skipping = Some(len + buf.len() as u64);
                    continue;
                }
            }
        }
        if eof {
            if !buf.is_empty() {
                let block = Block {
                    index,
                    base_offset: offset,
                    bytes: buf,
                    torn: true,
                    oversize: None,
                };
                let _ = tx.send(block);
            }
            return Ok(());
        }
        match buf.iter().rposition(|&b| b == b'\n') {
            Some(i) => {
                carry = buf[i + 1..].to_vec();
                buf.truncate(i + 1);
                let len = buf.len() as u64;
                let block = Block {
                    index,
                    base_offset: offset,
                    bytes: buf,
                    torn: false,
                    oversize: None,
                };
                index += 1;
                offset += len;
                if tx.send(block).is_err() {
                    return Ok(());
                }
            }
            None if buf.len() > MAX_LINE_BYTES => {
                skipping = Some(buf.len() as u64);
            }
            None => carry = buf,
        }
    }
}

/// Index of the first `\n`, eight bytes at a time (the bit trick of
/// `canonical::Scanner::skip_plain`): line splitting touches every byte.
fn find_newline(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut i = 0;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word) ^ (ONES * u64::from(b'\n'));
        if w.wrapping_sub(ONES) & !w & HIGHS != 0 {
            break;
        }
        i += 8;
    }
    bytes[i..].iter().position(|&b| b == b'\n').map(|p| p + i)
}

/// What a worker learned about one line.
struct LineResult {
    line: u64,
    end_offset: u64,
    parsed: Option<Parsed>,
    problems: Vec<(Reason, String)>,
}

#[derive(Clone)]
struct Parsed {
    line: u64,
    seq: u64,
    prev: Hash,
    stored: Hash,
    /// The stored hash did not match the content.
    edited: bool,
    computed: Hash,
    kind_genesis: bool,
    info: BodyInfo,
}

fn scan_block(block: &Block) -> Vec<LineResult> {
    if let Some(len) = block.oversize {
        let (reason, detail) = if block.torn {
            (
                Reason::TornTail,
                format!("the file ends in an incomplete line of {len} bytes"),
            )
        } else {
            (
                Reason::Malformed,
                format!(
                    "line of {len} bytes is longer than any record ({} MiB)",
                    MAX_LINE_BYTES >> 20
                ),
            )
        };
        return vec![LineResult {
            line: 0,
            end_offset: block.base_offset + len,
            parsed: None,
            problems: vec![(reason, detail)],
        }];
    }
    let mut out = Vec::with_capacity(block.bytes.len() / 512 + 1);
    let mut line_no = 0;
    let mut start = 0usize;
    let bytes = &block.bytes;
    while start < bytes.len() {
        let (line, next, complete) = match find_newline(&bytes[start..]) {
            Some(i) => (&bytes[start..start + i], start + i + 1, true),
            None => (&bytes[start..], bytes.len(), false),
        };
        let end_offset = block.base_offset + next as u64;
        if complete {
            out.push(scan_line(line, line_no, end_offset));
        } else {
            out.push(LineResult {
                line: line_no,
                end_offset,
                parsed: None,
                problems: vec![(
                    Reason::TornTail,
                    format!(
                        "the last {} bytes have no terminating newline: an append was cut short; \
                         run `vnx ledger repair` to quarantine them",
                        line.len()
                    ),
                )],
            });
        }
        line_no += 1;
        start = next;
    }
    out
}

fn scan_line(line: &[u8], line_no: u64, end_offset: u64) -> LineResult {
    let mut result = LineResult {
        line: line_no,
        end_offset,
        parsed: None,
        problems: Vec::new(),
    };
    if let Err(e) = std::str::from_utf8(line) {
        result.problems.push((
            Reason::Malformed,
            format!("not valid UTF-8 (byte {} of the line)", e.valid_up_to()),
        ));
        return result;
    }
    let Some(split) = split_line(line) else {
        let detail = match serde_json::from_slice::<serde::de::IgnoredAny>(line) {
            Ok(_) => (Reason::NotCanonical, "valid JSON but not the ledger's line layout {\"hash\":\"<64 hex>\",\"record\":{…}} in RFC 8785 form".to_owned()),
            Err(e) => (Reason::Malformed, format!("not JSON: {e}")),
        };
        result.problems.push(detail);
        return result;
    };
    if let Err(e) = check_canonical(split.record) {
        let reason = if serde_json::from_slice::<serde::de::IgnoredAny>(line).is_ok() {
            Reason::NotCanonical
        } else {
            Reason::Malformed
        };
        result.problems.push((
            reason,
            format!("record is not RFC 8785 canonical JSON: {e}"),
        ));
    }
    let computed = record_hash(split.record);
    let edited = computed != split.stored_hash;
    if edited {
        result.problems.push((
            Reason::Edited,
            format!(
                "content does not match its hash: stored {}, computed {}",
                to_hex(&split.stored_hash),
                to_hex(&computed)
            ),
        ));
    }
    let parsed_envelope = match fast_envelope(split.record) {
        Some(env) => Ok(env),
        None => serde_json::from_slice::<EnvelopeRef<'_>>(split.record).map(|e| Envelope {
            body: e.body.get(),
            kind: e.kind,
            prev: e.prev,
            seq: e.seq,
            ts: e.ts,
            v: e.v,
        }),
    };
    let envelope = match parsed_envelope {
        Ok(env) => env,
        Err(e) => {
            if result.problems.is_empty() {
                result
                    .problems
                    .push((Reason::Schema, format!("record envelope: {e}")));
            }
            return result;
        }
    };
    let schema = |result: &mut LineResult, detail: String| {
        result.problems.push((Reason::Schema, detail));
    };
    if envelope.v != FORMAT_VERSION {
        schema(
            &mut result,
            format!(
                "format version {} is not supported (this vnx reads version {FORMAT_VERSION}); upgrade vnx",
                envelope.v
            ),
        );
    }
    if !valid_ts(envelope.ts) {
        schema(
            &mut result,
            format!(
                "ts {:?} is not RFC 3339 UTC with milliseconds (YYYY-MM-DDTHH:MM:SS.mmmZ)",
                envelope.ts
            ),
        );
    }
    let Some(prev) = parse_hex_hash(envelope.prev.as_bytes()) else {
        schema(&mut result, "prev is not 64 lowercase hex chars".into());
        return result;
    };
    let kind_genesis = envelope.kind == KIND_GENESIS;
    if kind_genesis != (envelope.seq == 0) {
        schema(
            &mut result,
            if kind_genesis {
                format!(
                    "a {KIND_GENESIS} record may only be the first record (it has seq {})",
                    envelope.seq
                )
            } else {
                format!(
                    "the first record (seq 0) must be {KIND_GENESIS}, not {}",
                    envelope.kind
                )
            },
        );
    }
    let info = match validate_body(envelope.kind, envelope.body) {
        Ok(info) => info,
        Err(detail) => {
            schema(&mut result, detail);
            BodyInfo::Plain
        }
    };
    result.parsed = Some(Parsed {
        line: line_no,
        seq: envelope.seq,
        prev,
        stored: split.stored_hash,
        edited,
        computed,
        kind_genesis,
        info,
    });
    result
}

/// A record's envelope with its body as text.
struct Envelope<'a> {
    body: &'a str,
    kind: &'a str,
    prev: &'a str,
    seq: u64,
    ts: &'a str,
    v: u64,
}

/// Reads the envelope without walking the body a second time. In canonical
/// form a record is `{"body":<body>,"kind":"…","prev":"…","seq":…,"ts":"…","v":…}`;
/// the last raw `,"kind":"` is the envelope's (inside a string the quotes
/// would be escaped, and any key of the body comes before it). Only the short
/// tail is read, by its fixed layout. Returns `None` when the record does not
/// have exactly that shape; the caller then parses it with serde, which also
/// gives the error message.
fn fast_envelope(record: &[u8]) -> Option<Envelope<'_>> {
    const HEAD: &[u8] = b"{\"body\":";
    const KIND: &[u8] = b",\"kind\":\"";
    let rest = record.strip_prefix(HEAD)?;
    let at = rest.windows(KIND.len()).rposition(|w| w == KIND)?;
    let body = std::str::from_utf8(&rest[..at]).ok()?;
    let mut tail = std::str::from_utf8(&rest[at + KIND.len()..]).ok()?;
    let mut take_until = |end: &str| -> Option<&str> {
        let i = tail.find(end)?;
        let field = &tail[..i];
        tail = &tail[i + end.len()..];
        Some(field)
    };
    let kind = take_until("\",\"prev\":\"")?;
    let prev = take_until("\",\"seq\":")?;
    let seq = take_until(",\"ts\":\"")?;
    let ts = take_until("\",\"v\":")?;
    let v = take_until("}")?;
    let int = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok())?
    };
    if !tail.is_empty() || kind.contains(['"', '\\']) || ts.contains(['"', '\\']) {
        return None;
    }
    Some(Envelope {
        body,
        kind,
        prev,
        seq: int(seq)?,
        ts,
        v: int(v)?,
    })
}

#[derive(Clone, Copy)]
enum PrevRule {
    Exact(Hash),
    /// After an edited line, the next may link to its stored or its true hash.
    Either(Hash, Hash),
    /// No constraint (first record of a lone file without manifest).
    Any,
}

impl PrevRule {
    fn accepts(self, h: &Hash) -> bool {
        match self {
            PrevRule::Exact(a) => a == *h,
            PrevRule::Either(a, b) => a == *h || b == *h,
            PrevRule::Any => true,
        }
    }
}

#[derive(Clone, Copy)]
struct Expect {
    seq: u64,
    prev: PrevRule,
}

struct Pending {
    record: Parsed,
    before: Expect,
}

/// Links parsed lines into a chain and classifies every break. A line that
/// does not fit is held until the next line shows whether it was an intruder
/// (the chain continues as if it were absent: duplicated, spliced or moved) or
/// part of the chain (records missing before it, or a predecessor rewritten).
struct Linker {
    path: PathBuf,
    name: String,
    ledger_id: Option<String>,
    /// None after an unreadable line: the next readable one re-anchors.
    expect: Option<Expect>,
    seq_base: u64,
    seq_hashes: Vec<Hash>,
    pending: Option<Pending>,
    last: Option<Parsed>,
    /// Lines that already have a finding, so one fault is reported once.
    flagged: BTreeSet<u64>,
    records: u64,
    findings: Vec<Finding>,
    anchor: Option<SegmentCheckpoint>,
    anchor_matched: bool,
    next_line: u64,
    started: BTreeMap<String, (u64, u64)>,
    receipts: BTreeSet<String>,
    /// Records that appeared before their place (seq → stored hash).
    early: BTreeMap<u64, Hash>,
}

impl Linker {
    fn new(path: &Path, name: &str, ledger_id: Option<&str>) -> Linker {
        let prev = ledger_id.map_or(PrevRule::Any, |id| PrevRule::Exact(genesis_prev(id, name)));
        Linker {
            path: path.to_path_buf(),
            name: name.to_owned(),
            ledger_id: ledger_id.map(str::to_owned),
            expect: Some(Expect { seq: 0, prev }),
            seq_base: 0,
            seq_hashes: Vec::new(),
            pending: None,
            last: None,
            flagged: BTreeSet::new(),
            records: 0,
            findings: Vec::new(),
            anchor: None,
            anchor_matched: false,
            next_line: 1,
            started: BTreeMap::new(),
            receipts: BTreeSet::new(),
            early: BTreeMap::new(),
        }
    }

    fn resume_after(&mut self, cp: &SegmentCheckpoint) {
        let Some(hash) = parse_hex_hash(cp.head_hash.as_bytes()) else {
            return;
        };
        self.expect = Some(Expect {
            seq: cp.head_seq + 1,
            prev: PrevRule::Exact(hash),
        });
        self.seq_base = cp.head_seq + 1;
        // Line numbers past a checkpoint assume the verified prefix is intact:
        // one line per record, so record seq s is on line s + 1.
        self.next_line = cp.head_seq + 2;
    }

    fn finding(&mut self, line: u64, seq: Option<u64>, reason: Reason, detail: String) {
        // One fault can be seen from two sides (a spliced genesis fails both
        // its link and its body); report it once.
        if line != 0
            && self
                .findings
                .iter()
                .any(|f| f.line == line && f.reason == reason)
        {
            return;
        }
        self.flagged.insert(line);
        self.findings.push(Finding {
            path: self.path.clone(),
            line,
            seq,
            reason,
            severity: reason.severity(),
            detail,
        });
    }

    fn push(&mut self, r: LineResult) {
        let seq = r.parsed.as_ref().map(|p| p.seq);
        for (reason, detail) in r.problems {
            self.finding(r.line, seq, reason, detail);
        }
        if let Some(cp) = &self.anchor
            && r.end_offset == cp.size
        {
            {
                let ok = r.parsed.as_ref().is_some_and(|p| {
                    p.seq == cp.head_seq && to_hex(&p.stored) == cp.head_hash && !p.edited
                });
                if ok {
                    self.anchor_matched = true;
                }
            }
        }
        let Some(parsed) = r.parsed else {
            self.resolve(None);
            self.expect = None;
            return;
        };
        self.resolve(Some(&parsed));
        self.records += 1;
        match self.expect {
            None => self.advance(parsed),
            Some(e) if parsed.seq == e.seq && e.prev.accepts(&parsed.prev) => self.advance(parsed),
            // The expected record already appeared earlier, out of order (and
            // was reported there); this one links to it, so the chain goes on.
            Some(e) if parsed.seq == e.seq + 1 && self.early.get(&e.seq) == Some(&parsed.prev) => {
                self.advance(parsed);
            }
            Some(before) => {
                self.pending = Some(Pending {
                    record: parsed,
                    before,
                });
            }
        }
    }

    fn finish(&mut self) {
        self.resolve(None);
    }

    fn seen_hash(&self, seq: u64) -> Option<&Hash> {
        seq.checked_sub(self.seq_base)
            .and_then(|i| self.seq_hashes.get(i as usize))
    }

    fn advance(&mut self, p: Parsed) {
        if p.seq == 0 && p.kind_genesis {
            self.check_genesis(&p);
        }
        let next_prev = if p.edited {
            PrevRule::Either(p.stored, p.computed)
        } else {
            PrevRule::Exact(p.stored)
        };
        self.expect = Some(Expect {
            seq: p.seq + 1,
            prev: next_prev,
        });
        if p.seq.checked_sub(self.seq_base) == Some(self.seq_hashes.len() as u64) {
            self.seq_hashes.push(p.stored);
        }
        match &p.info {
            BodyInfo::Started(id) => {
                self.started.insert(id.clone(), (p.line, p.seq));
            }
            BodyInfo::Receipt(id, _) => {
                self.receipts.insert(id.clone());
            }
            _ => {}
        }
        self.last = Some(p);
    }

    fn check_genesis(&mut self, p: &Parsed) {
        let BodyInfo::Genesis(g) = &p.info else {
            return;
        };
        let detail = if g.segment != self.name {
            format!(
                "genesis names segment {:?}, but the file is {:?}: it was renamed or copied from another segment",
                g.segment, self.name
            )
        } else if let Some(id) = self.ledger_id.as_deref().filter(|id| *id != g.ledger_id) {
            format!(
                "genesis names ledger {}, but this is ledger {id}: the segment comes from another ledger",
                g.ledger_id
            )
        } else if self.ledger_id.is_none() && p.prev != genesis_prev(&g.ledger_id, &self.name) {
            "the first record's prev is not the genesis value its own body names: the chain was spliced".to_owned()
        } else {
            return;
        };
        self.finding(p.line, Some(0), Reason::Spliced, detail);
    }

    /// Decides what a held line was, now that the next line (or the end) is known.
    fn resolve(&mut self, next: Option<&Parsed>) {
        let Some(Pending { record: n, before }) = self.pending.take() else {
            return;
        };
        let continues_without_n =
            next.is_some_and(|nx| nx.seq == before.seq && before.prev.accepts(&nx.prev));
        let duplicate = self.seen_hash(n.seq) == Some(&n.stored);
        if continues_without_n {
            // `n` is an intruder: the chain carries on as if it were absent.
            let (reason, detail) = if duplicate {
                (
                    Reason::Duplicated,
                    format!(
                        "repeats the record with seq {} that appeared earlier",
                        n.seq
                    ),
                )
            } else if n.seq > before.seq || next.is_some_and(|nx| nx.stored == n.prev) {
                self.early.insert(n.seq, n.stored);
                (
                    Reason::DeletedOrReordered,
                    format!(
                        "seq {} appears where seq {} belongs: records were reordered",
                        n.seq, before.seq
                    ),
                )
            } else {
                (
                    Reason::Spliced,
                    format!(
                        "record (seq {}) does not belong to this chain: its prev links to no record here; it was spliced in",
                        n.seq
                    ),
                )
            };
            self.finding(n.line, Some(n.seq), reason, detail);
            return;
        }
        match n.seq.cmp(&before.seq) {
            std::cmp::Ordering::Greater => {
                let missing = n.seq - before.seq;
                self.finding(n.line, Some(n.seq), Reason::DeletedOrReordered, format!(
                "expected seq {}, found seq {}: {missing} record(s) before this line were deleted or moved",
                before.seq, n.seq
            ));
            }
            std::cmp::Ordering::Less => {
                if duplicate {
                    self.finding(
                        n.line,
                        Some(n.seq),
                        Reason::Duplicated,
                        format!(
                            "repeats the record with seq {} that appeared earlier",
                            n.seq
                        ),
                    );
                } else {
                    self.finding(
                        n.line,
                        Some(n.seq),
                        Reason::DeletedOrReordered,
                        format!(
                            "seq {} comes after seq {}: records were reordered or deleted",
                            n.seq,
                            before.seq - 1
                        ),
                    );
                }
            }
            std::cmp::Ordering::Equal => {
                let links_to_n = next.is_some_and(|nx| nx.seq == n.seq + 1 && nx.prev == n.stored);
                match &self.last {
                    Some(last) if links_to_n && n.seq > 0 => {
                        if !self.flagged.contains(&last.line) {
                            let (line, seq) = (last.line, last.seq);
                            self.finding(line, Some(seq), Reason::Edited, format!(
                            "the record was rewritten and its hash recomputed: the next record (line {}) links to a different hash",
                            n.line
                        ));
                        }
                    }
                    _ => {
                        if n.seq == 0 {
                            self.finding(n.line, Some(0), Reason::Spliced, format!(
                            "the first record's prev is not the genesis value of ledger {} and segment {}: the chain was spliced in from elsewhere",
                            self.ledger_id.as_deref().unwrap_or("?"), self.name
                        ));
                        } else {
                            self.finding(n.line, Some(n.seq), Reason::Spliced, format!(
                            "prev does not link to the record before it (seq {}): this record was spliced in from another chain, or its predecessor rewritten",
                            n.seq - 1
                        ));
                        }
                    }
                }
            }
        }
        self.advance(n);
    }

    fn into_report(self, from_offset: u64, bytes: u64) -> SegmentReport {
        let mut findings = self.findings;
        findings.sort_by_key(|f| f.line);
        SegmentReport {
            path: self.path,
            records: self.records,
            bytes,
            from_offset,
            head_seq: self.last.as_ref().map(|l| l.seq),
            head_hash: self.last.as_ref().map(|l| to_hex(&l.stored)),
            findings,
            started: self.started,
            receipts: self.receipts,
        }
    }
}
