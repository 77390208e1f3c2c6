//! The ledger directory on disk: its manifest, its segments, and the durable
//! append and repair operations.
//!
//! Layout of a ledger directory (normally `ledger/` at the repository root):
//!
//! ```text
//! ledger/
//!   ledger.json                        {"format":"vnx-ledger","ledger_id":"<32 hex>","v":1}
//!   <writer>--<branch>.ndjson          one segment per writer and branch
//!   <segment>.quarantine-<ts>          torn bytes moved out by `vnx ledger repair`
//! ```

use std::collections::hash_map::RandomState;
use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::canonical::{check_canonical, parse_strict, to_canonical_vec};
use crate::error::LedgerError;
use crate::record::{
    EnvelopeRef, FORMAT_VERSION, Hash, KIND_GENESIS, KIND_REPAIR, build_line, format_ts,
    genesis_prev, parse_hex_hash, record_hash, split_line, to_hex,
};
use crate::schema::{Writer, validate_body, writer_of};
use crate::verify::MAX_LINE_BYTES;

/// File name of the manifest inside a ledger directory.
pub const MANIFEST_FILE: &str = "ledger.json";
/// File-name extension of segments.
pub const SEGMENT_EXTENSION: &str = ".ndjson";

/// The contents of `ledger.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always `vnx-ledger`.
    pub format: String,
    /// 32 lowercase hex chars chosen at creation; bound into every segment's genesis.
    pub ledger_id: String,
    /// Format version, 1.
    pub v: u64,
}

impl Manifest {
    fn validate(&self) -> Result<(), String> {
        if self.format != "vnx-ledger" {
            return Err(format!(
                "format is {:?}, expected \"vnx-ledger\"",
                self.format
            ));
        }
        if self.v != FORMAT_VERSION {
            return Err(format!(
                "format version {} is not supported by this vnx (it reads version {FORMAT_VERSION}); upgrade vnx",
                self.v
            ));
        }
        if !is_ledger_id(&self.ledger_id) {
            return Err(format!(
                "ledger_id {:?} is not 32 lowercase hex chars",
                self.ledger_id
            ));
        }
        Ok(())
    }
}

/// Whether `id` is a well-formed ledger id: 32 lowercase hex chars.
pub fn is_ledger_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Opens `path` with `O_NOFOLLOW`, so that a symbolic link in its last
/// component fails (`ELOOP`) instead of being followed.
fn open_nofollow(path: &Path, options: &mut OpenOptions) -> std::io::Result<File> {
    options.custom_flags(nix::libc::O_NOFOLLOW).open(path)
}

/// Whether an `open` with `O_NOFOLLOW` failed because the path is a link.
fn is_link_error(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(nix::libc::ELOOP)
}

/// Opens a segment for reading and writing without following a link, and
/// checks that it is a regular file (a FIFO or device is no segment).
/// `append` opens it `O_APPEND`; otherwise writes are positional.
fn open_segment_file(path: &Path, append: bool) -> Result<File, LedgerError> {
    let mut options = OpenOptions::new();
    options.read(true);
    if append {
        options.append(true);
    } else {
        options.write(true);
    }
    let file = open_nofollow(path, &mut options).map_err(|source| {
        if is_link_error(&source) {
            LedgerError::Symlink {
                path: path.to_path_buf(),
            }
        } else {
            LedgerError::Io {
                action: "open",
                path: path.to_path_buf(),
                source,
            }
        }
    })?;
    let meta = file.metadata().map_err(LedgerError::io("stat", path))?;
    if !meta.is_file() {
        return Err(LedgerError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    Ok(file)
}

/// Refuses a ledger directory that is itself a symbolic link (its last
/// component; links higher up the path, such as a linked home directory, are
/// the user's business). A missing directory passes: callers report that.
///
/// # Errors
/// [`LedgerError::Symlink`] for a link, [`LedgerError::Io`] when it cannot
/// be examined.
pub(crate) fn refuse_linked_dir(dir: &Path) -> Result<(), LedgerError> {
    // `ledger/` would resolve the link through its trailing slash; look at
    // the name itself.
    let name: PathBuf = dir.components().collect();
    match fs::symlink_metadata(&name) {
        Ok(meta) if meta.file_type().is_symlink() => Err(LedgerError::Symlink { path: name }),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(LedgerError::Io {
            action: "examine",
            path: name,
            source,
        }),
    }
}

/// Reads and validates a manifest file.
///
/// # Errors
/// [`LedgerError::NoLedger`] when it does not exist, [`LedgerError::Manifest`]
/// when it is not valid, [`LedgerError::Symlink`] when `dir` or its
/// `ledger.json` is a symbolic link.
pub fn read_manifest(dir: &Path) -> Result<Manifest, LedgerError> {
    refuse_linked_dir(dir)?;
    let path = dir.join(MANIFEST_FILE);
    let read = open_nofollow(&path, OpenOptions::new().read(true)).and_then(|mut file| {
        let mut text = String::new();
        file.read_to_string(&mut text).map(|_| text)
    });
    let text = match read {
        Ok(text) => text,
        Err(e) if is_link_error(&e) => return Err(LedgerError::Symlink { path }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(LedgerError::NoLedger {
                path: dir.to_path_buf(),
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            return Err(LedgerError::Manifest {
                path,
                reason: "not UTF-8".into(),
            });
        }
        Err(source) => {
            return Err(LedgerError::Io {
                action: "read",
                path,
                source,
            });
        }
    };
    let manifest: Manifest = serde_json::from_str(&text).map_err(|e| LedgerError::Manifest {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    manifest
        .validate()
        .map_err(|reason| LedgerError::Manifest { path, reason })?;
    Ok(manifest)
}

/// Whether `name` is an allowed segment file name.
pub fn is_segment_name(name: &str) -> bool {
    name.len() > SEGMENT_EXTENSION.len()
        && name.ends_with(SEGMENT_EXTENSION)
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b'+' | b'-'))
}

/// The default segment for a writer on a branch: `<writer>--<branch>.ndjson`,
/// with every character outside `[A-Za-z0-9._@+-]` replaced by `_` (so
/// `feature/x` becomes `feature_x`).
///
/// One segment per writer and branch means two machines or two branches never
/// append to the same file: each file only ever grows at its end, from one
/// writer, so git merges ledgers by taking the union of files, without conflicts.
pub fn default_segment_name(writer: &str, branch: &str) -> String {
    fn clean(s: &str) -> String {
        let cleaned: String = s
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '+' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        cleaned.trim_start_matches('.').to_owned()
    }
    let writer = clean(writer);
    let branch = clean(branch);
    let writer = if writer.is_empty() {
        "writer".to_owned()
    } else {
        writer
    };
    let branch = if branch.is_empty() {
        "detached".to_owned()
    } else {
        branch
    };
    format!("{writer}--{branch}{SEGMENT_EXTENSION}")
}

/// Where timestamps come from.
#[derive(Debug, Clone, Copy, Default)]
pub enum Clock {
    /// The system clock.
    #[default]
    System,
    /// A fixed instant, for reproducible tests and vectors.
    Fixed(DateTime<Utc>),
}

impl Clock {
    fn now(self) -> DateTime<Utc> {
        match self {
            Clock::System => Utc::now(),
            Clock::Fixed(t) => t,
        }
    }
}

/// A record to append: its kind and body. `seq`, `prev`, `ts`, `v` and the hash
/// are filled by [`Ledger::append`].
#[derive(Debug, Clone, PartialEq)]
pub struct NewRecord {
    /// Record kind, e.g. `dispatch.receipt` or `x.mytool.receipt`.
    pub kind: String,
    /// The kind's body; integers only.
    pub body: Value,
}

impl NewRecord {
    /// A record from any serializable body (a `vnx-types` struct).
    ///
    /// # Errors
    /// When the body does not serialize to JSON.
    pub fn new(kind: &str, body: &impl Serialize) -> Result<NewRecord, serde_json::Error> {
        Ok(NewRecord {
            kind: kind.to_owned(),
            body: serde_json::to_value(body)?,
        })
    }

    /// Parses the `vnx ledger append` input form `{"kind":…,"body":…}` strictly
    /// (no duplicate keys, integers only).
    ///
    /// # Errors
    /// A message saying what is wrong with the input.
    pub fn from_input(text: &str) -> Result<NewRecord, String> {
        let value = parse_strict(text).map_err(|e| e.0)?;
        let Value::Object(mut map) = value else {
            return Err("expected a JSON object {\"kind\":…,\"body\":…}".into());
        };
        let kind = match map.remove("kind") {
            Some(Value::String(kind)) => kind,
            Some(_) => return Err("\"kind\" must be a string".into()),
            None => return Err("missing \"kind\"".into()),
        };
        let body = map.remove("body").ok_or("missing \"body\"")?;
        if let Some(extra) = map.keys().next() {
            return Err(format!(
                "unexpected field {extra:?}: input records have only \"kind\" and \"body\""
            ));
        }
        Ok(NewRecord { kind, body })
    }
}

/// What one append wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// Sequence number given to the record.
    pub seq: u64,
    /// Its hash (lowercase hex).
    pub hash: String,
    /// Byte offset of the end of its line (the segment size right after it).
    pub end_offset: u64,
}

/// The last record of a segment, as found by [`read_tail`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tail {
    /// Its sequence number.
    pub seq: u64,
    /// Its hash.
    pub hash: Hash,
    /// Segment size in bytes (offset just past its `\n`).
    pub end_offset: u64,
}

/// An open ledger directory.
#[derive(Debug, Clone)]
pub struct Ledger {
    dir: PathBuf,
    manifest: Manifest,
    clock: Clock,
}

impl Ledger {
    /// Opens an existing ledger directory.
    ///
    /// # Errors
    /// [`LedgerError::NoLedger`] or [`LedgerError::Manifest`].
    pub fn open(dir: &Path) -> Result<Ledger, LedgerError> {
        let manifest = read_manifest(dir)?;
        Ok(Ledger {
            dir: dir.to_path_buf(),
            manifest,
            clock: Clock::System,
        })
    }

    /// Opens the ledger at `dir`, creating the directory and its manifest (with
    /// a fresh ledger id) if they do not exist. Creation is atomic: the manifest
    /// is written to a temporary file, synced and linked into place, so two
    /// processes racing to create it agree on one id.
    ///
    /// # Errors
    /// I/O errors, or an existing invalid manifest.
    pub fn open_or_create(dir: &Path) -> Result<Ledger, LedgerError> {
        match Ledger::open(dir) {
            Err(LedgerError::NoLedger { .. }) => {}
            other => return other,
        }
        fs::create_dir_all(dir).map_err(LedgerError::io("create directory", dir))?;
        let manifest = Manifest {
            format: "vnx-ledger".into(),
            ledger_id: fresh_ledger_id(dir),
            v: FORMAT_VERSION,
        };
        let mut bytes = serde_jcs::to_vec(&manifest).map_err(|e| LedgerError::Manifest {
            path: dir.join(MANIFEST_FILE),
            reason: e.to_string(),
        })?;
        bytes.push(b'\n');
        create_exclusive(dir, MANIFEST_FILE, &bytes)?;
        Ledger::open(dir)
    }

    /// Uses `clock` for record timestamps.
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Ledger {
        self.clock = clock;
        self
    }

    /// The ledger directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The ledger id from the manifest.
    pub fn ledger_id(&self) -> &str {
        &self.manifest.ledger_id
    }

    /// Path of a segment by file name.
    pub fn segment_path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Appends records to a segment, creating it (with its genesis record) if
    /// needed, under one exclusive lock and with one `fdatasync`.
    ///
    /// Every record is validated before anything is written: one bad record
    /// means nothing is appended. All lines go out in a single `write()` to an
    /// `O_APPEND` descriptor, so a crash leaves at most a torn tail, never an
    /// interleaving.
    ///
    /// # Errors
    /// [`LedgerError::Input`] for an invalid record, [`LedgerError::TornTail`]
    /// or [`LedgerError::CorruptTail`] when the segment's end does not verify,
    /// I/O errors.
    pub fn append(
        &self,
        segment: &str,
        records: &[NewRecord],
    ) -> Result<Vec<Appended>, LedgerError> {
        for (i, record) in records.iter().enumerate() {
            if writer_of(&record.kind) == Writer::LibraryOnly {
                return Err(LedgerError::Input {
                    entry: i + 1,
                    reason: format!(
                        "kind `{}` is written by vnx itself and cannot be appended",
                        record.kind
                    ),
                });
            }
        }
        self.append_inner(segment, records)
    }

    fn append_inner(
        &self,
        segment: &str,
        records: &[NewRecord],
    ) -> Result<Vec<Appended>, LedgerError> {
        if !is_segment_name(segment) {
            return Err(LedgerError::SegmentName {
                name: segment.to_owned(),
            });
        }
        // Validate and canonicalize bodies before taking the lock.
        let mut bodies = Vec::with_capacity(records.len());
        for (i, record) in records.iter().enumerate() {
            let entry = i + 1;
            let too_large = |bytes: usize| LedgerError::RecordTooLarge {
                entry,
                kind: record.kind.clone(),
                bytes: bytes as u64,
            };
            let compact = serde_json::to_string(&record.body).map_err(|e| LedgerError::Input {
                entry,
                reason: e.to_string(),
            })?;
            // A body this long cannot fit in a line: refuse it before the
            // strict parse and the lock (the exact line length is checked once
            // the line is built). Compact JSON of integers and strings is as
            // long as its canonical form: both escape the same characters.
            if compact.len() > MAX_LINE_BYTES {
                return Err(too_large(compact.len()));
            }
            let body =
                canonical_text(&compact).map_err(|reason| LedgerError::Input { entry, reason })?;
            drop(compact);
            if body.len() > MAX_LINE_BYTES {
                return Err(too_large(body.len()));
            }
            let text = std::str::from_utf8(&body).map_err(|e| LedgerError::Input {
                entry,
                reason: e.to_string(),
            })?;
            validate_body(&record.kind, text)
                .map_err(|reason| LedgerError::Input { entry, reason })?;
            bodies.push(body);
        }

        let path = self.segment_path(segment);
        let mut file = self.open_segment_for_append(segment, &path)?;
        file.lock().map_err(LedgerError::io("lock", &path))?;
        let tail = read_tail(&mut file, &path)?;
        let before = tail.as_ref().map_or(0, |t| t.end_offset);
        let entries: Vec<(&str, &[u8])> = records
            .iter()
            .zip(&bodies)
            .map(|(r, b)| (r.kind.as_str(), b.as_slice()))
            .collect();
        let (out, appended) = self.chain_lines(segment, tail.as_ref(), &entries)?;
        // On a failed write or sync, cut the segment back to where it was:
        // a full disk must not leave a torn tail that blocks every later
        // append until someone runs repair.
        let failed = |action: &'static str, source: std::io::Error| LedgerError::AppendFailed {
            action,
            segment: path.clone(),
            source,
            restored: cut_back(&file, before),
        };
        if let Err(e) = (&file).write_all(&out) {
            return Err(failed("append to", e));
        }
        if let Err(e) = file.sync_data() {
            return Err(failed("sync", e));
        }
        Ok(appended)
    }

    /// The lines that continue a segment's chain after `tail` (`None`: an
    /// empty segment, which gets its genesis record first) with `entries`
    /// (kind, canonical body) in order, all with one timestamp; and what each
    /// entry became.
    ///
    /// # Errors
    /// [`LedgerError::RecordTooLarge`] for a line longer than
    /// [`MAX_LINE_BYTES`]; nothing has been written then.
    fn chain_lines(
        &self,
        segment: &str,
        tail: Option<&Tail>,
        entries: &[(&str, &[u8])],
    ) -> Result<(Vec<u8>, Vec<Appended>), LedgerError> {
        let (mut seq, mut prev) = match tail {
            Some(t) => (t.seq + 1, t.hash),
            None => (0, genesis_prev(self.ledger_id(), segment)),
        };
        let mut offset = tail.map_or(0, |t| t.end_offset);
        let ts = format_ts(self.clock.now());
        // An empty file: another process created it and died before its
        // genesis, or it was created by hand. Start the chain properly.
        let genesis = tail
            .is_none()
            .then(|| genesis_body(self.ledger_id(), segment));
        let lines = genesis
            .iter()
            .map(|g| (None, KIND_GENESIS, g.as_slice()))
            .chain(
                entries
                    .iter()
                    .enumerate()
                    .map(|(i, (kind, body))| (Some(i + 1), *kind, *body)),
            );
        let mut out = Vec::new();
        let mut appended = Vec::new();
        for (entry, kind, body) in lines {
            let record = record_bytes(body, kind, &prev, seq, &ts);
            let (hash, line) = build_line(&record);
            // The limit counts the line without its `\n`.
            if line.len() - 1 > MAX_LINE_BYTES {
                return Err(LedgerError::RecordTooLarge {
                    entry: entry.unwrap_or(0),
                    kind: kind.to_owned(),
                    bytes: line.len() as u64 - 1,
                });
            }
            out.extend_from_slice(&line);
            offset += line.len() as u64;
            if entry.is_some() {
                appended.push(Appended {
                    seq,
                    hash: to_hex(&hash),
                    end_offset: offset,
                });
            }
            prev = hash;
            seq += 1;
        }
        Ok((out, appended))
    }

    /// Opens a segment for appending; creates it with its genesis record when
    /// missing (written to a temporary file, synced, linked into place, then
    /// the directory synced: a crash leaves either no segment or a complete one).
    /// Never follows a symbolic link.
    fn open_segment_for_append(&self, segment: &str, path: &Path) -> Result<File, LedgerError> {
        // `symlink_metadata`, not `exists`: a dangling link is not missing.
        if fs::symlink_metadata(path).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) {
            let genesis = genesis_body(self.ledger_id(), segment);
            let prev = genesis_prev(self.ledger_id(), segment);
            let ts = format_ts(self.clock.now());
            let record = record_bytes(&genesis, KIND_GENESIS, &prev, 0, &ts);
            let (_, line) = build_line(&record);
            create_exclusive(&self.dir, segment, &line)?;
        }
        open_segment_file(path, true)
    }

    /// Moves a torn tail out of a segment, all or nothing.
    ///
    /// The bytes after the last `\n` are copied, a block at a time, to
    /// `<segment>.quarantine-<ts>` beside it (through a temporary file,
    /// synced, then linked into place); then the `repair` record (with their
    /// offset, length and SHA-256) is written over them and the segment is
    /// cut just after it, and synced. If any step fails, the segment is put
    /// back byte for byte and the quarantine file removed: either the repair
    /// is complete and recorded, or nothing changed. Memory stays bounded by
    /// the copy buffer, whatever the size of the segment or of its torn tail.
    ///
    /// A crash between the write and the cut leaves the `repair` record
    /// followed by the rest of the torn bytes, which the quarantine file
    /// already holds; a second repair moves them too.
    ///
    /// # Errors
    /// [`LedgerError::NothingToRepair`] when the tail is intact;
    /// [`LedgerError::CorruptTail`] when the last complete line does not
    /// verify (nothing is touched: a repair record cannot chain onto it);
    /// [`LedgerError::Symlink`] / [`LedgerError::NotAFile`] for a segment
    /// that is not a plain file; [`LedgerError::RepairFailed`] when writing
    /// failed (its `kept` says whether anything changed); I/O errors.
    pub fn repair(&self, segment: &str) -> Result<RepairOutcome, LedgerError> {
        if !is_segment_name(segment) {
            return Err(LedgerError::SegmentName {
                name: segment.to_owned(),
            });
        }
        let path = self.segment_path(segment);
        let mut file = open_segment_file(&path, false)?;
        file.lock().map_err(LedgerError::io("lock", &path))?;
        let size = file
            .metadata()
            .map_err(LedgerError::io("stat", &path))?
            .len();
        let cut = last_newline_end(&mut file, &path, size)?;
        if cut == size {
            return Err(LedgerError::NothingToRepair { segment: path });
        }
        // The repair record chains onto the last complete line: check it
        // before anything changes.
        let tail = tail_at(&mut file, &path, cut)?;
        let moved = self.quarantine(&file, &path, segment, cut, size)?;
        let body = vnx_types::RepairBody {
            offset: cut,
            torn_bytes: size - cut,
            torn_sha256: moved.sha256.clone(),
            quarantine: moved.name.clone(),
        };
        let quarantine = self.dir.join(&moved.name);
        let undo = |action: &'static str, on: &Path, source: std::io::Error| {
            let restored = restore(&file, &quarantine, cut, size).is_ok();
            let kept = if restored {
                let _ = fs::remove_file(&quarantine);
                let _ = sync_dir(&self.dir);
                None
            } else {
                Some(quarantine.clone())
            };
            LedgerError::RepairFailed {
                segment: path.clone(),
                action,
                path: on.to_path_buf(),
                source,
                kept,
            }
        };
        // Checked as an appended body is, before the segment is touched.
        let built = NewRecord::new(KIND_REPAIR, &body)
            .map_err(|e| e.to_string())
            .and_then(|r| canonical_body(&r.body))
            .and_then(|bytes| {
                let text = std::str::from_utf8(&bytes).map_err(|e| e.to_string())?;
                validate_body(KIND_REPAIR, text)?;
                Ok(bytes)
            });
        let body_bytes = match built {
            Ok(bytes) => bytes,
            Err(reason) => {
                let source = std::io::Error::new(std::io::ErrorKind::InvalidData, reason);
                return Err(undo("build the repair record for", &path, source));
            }
        };
        let (out, appended) =
            match self.chain_lines(segment, tail.as_ref(), &[(KIND_REPAIR, &body_bytes)]) {
                Ok(built) => built,
                Err(e) => {
                    let source = std::io::Error::other(e.to_string());
                    return Err(undo("build the repair record for", &path, source));
                }
            };
        // Over the torn bytes, then cut: no step before the sync leaves the
        // segment without either its torn bytes or the record of their move.
        if let Err(e) = file.write_all_at(&out, cut) {
            return Err(undo("write", &path, e));
        }
        if let Err(e) = file.set_len(cut + out.len() as u64) {
            return Err(undo("truncate", &path, e));
        }
        if let Err(e) = file.sync_all() {
            return Err(undo("sync", &path, e));
        }
        Ok(RepairOutcome {
            quarantine,
            torn_bytes: size - cut,
            record: appended.into_iter().next(),
        })
    }

    /// Copies bytes `cut..size` of the segment to a new quarantine file
    /// beside it, hashing them on the way, through a temporary file that is
    /// synced and then hard-linked to a name no other file has (the time,
    /// moved on by a millisecond while the name is taken). On failure no
    /// file is left.
    fn quarantine(
        &self,
        file: &File,
        path: &Path,
        segment: &str,
        cut: u64,
        size: u64,
    ) -> Result<Quarantined, LedgerError> {
        let failed =
            |action: &'static str, on: &Path, source: std::io::Error| LedgerError::RepairFailed {
                segment: path.to_path_buf(),
                action,
                path: on.to_path_buf(),
                source,
                kept: None,
            };
        let tmp = temp_name(&self.dir, segment);
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| failed("create", &tmp, e))?;
        let copied = copy_range(file, path, &mut out, &tmp, cut, size).and_then(|sha256| {
            out.sync_all()
                .map_err(|e| failed("sync", &tmp, e))
                .map(|()| sha256)
        });
        drop(out);
        let sha256 = match copied {
            Ok(sha256) => sha256,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        };
        let start = self.clock.now();
        let mut linked = None;
        for ms in 0..1000 {
            let stamp = (start + chrono::Duration::milliseconds(ms)).format("%Y%m%dT%H%M%S%3fZ");
            let name = format!("{segment}.quarantine-{stamp}");
            match fs::hard_link(&tmp, self.dir.join(&name)) {
                Ok(()) => {
                    linked = Some(Ok(name));
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    linked = Some(Err(failed("link", &self.dir.join(name), e)));
                    break;
                }
            }
        }
        let _ = fs::remove_file(&tmp);
        let name = match linked {
            Some(Ok(name)) => name,
            Some(Err(e)) => return Err(e),
            None => {
                let source = std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "a quarantine file exists for every millisecond of the next second",
                );
                return Err(failed("name a quarantine file in", &self.dir, source));
            }
        };
        if let Err(e) = sync_dir(&self.dir) {
            let _ = fs::remove_file(self.dir.join(&name));
            return Err(failed("sync directory", &self.dir, e));
        }
        Ok(Quarantined { name, sha256 })
    }
}

/// A torn tail copied out by [`Ledger::repair`].
struct Quarantined {
    /// File name of the quarantine file, beside the segment.
    name: String,
    /// SHA-256 of the bytes, lowercase hex.
    sha256: String,
}

/// Bytes copied per read when moving a torn tail, and when scanning.
const COPY_BLOCK: usize = 64 * 1024;

/// Copies bytes `from..to` of `src` to the end of `dst`, a block at a time,
/// and returns their SHA-256 (lowercase hex).
fn copy_range(
    src: &File,
    src_path: &Path,
    dst: &mut File,
    dst_path: &Path,
    from: u64,
    to: u64,
) -> Result<String, LedgerError> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; COPY_BLOCK];
    let mut at = from;
    while at < to {
        let n = usize::try_from(to - at).map_or(buf.len(), |left| left.min(buf.len()));
        let chunk = &mut buf[..n];
        src.read_exact_at(chunk, at)
            .map_err(LedgerError::io("read", src_path))?;
        hasher.update(&*chunk);
        dst.write_all(chunk)
            .map_err(|source| LedgerError::RepairFailed {
                segment: src_path.to_path_buf(),
                action: "write",
                path: dst_path.to_path_buf(),
                source,
                kept: None,
            })?;
        at += n as u64;
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Puts a segment back as it was before a repair started writing: its
/// bytes `cut..size` from the quarantine file (overwriting what the repair
/// wrote, and whatever it cut away), its length `size`, synced.
fn restore(file: &File, quarantine: &Path, cut: u64, size: u64) -> std::io::Result<()> {
    let source = File::open(quarantine)?;
    let mut buf = vec![0u8; COPY_BLOCK];
    let mut at = 0u64;
    while cut + at < size {
        let n = usize::try_from(size - cut - at).map_or(buf.len(), |left| left.min(buf.len()));
        let chunk = &mut buf[..n];
        source.read_exact_at(chunk, at)?;
        file.write_all_at(chunk, cut + at)?;
        at += n as u64;
    }
    file.set_len(size)?;
    file.sync_all()
}

/// Cuts a segment back to `len` after a failed append. Whether it worked.
fn cut_back(file: &File, len: u64) -> bool {
    let cut = file.set_len(len).is_ok();
    // Best effort: after a failed write or sync, a second sync may fail too;
    // the length is what readers see.
    let _ = file.sync_data();
    cut
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir).and_then(|d| d.sync_all())
}

/// A temporary file name in `dir` for `name`, unique to this process and
/// moment; dot-prefixed so verification and listings skip it.
fn temp_name(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ))
}

/// What [`Ledger::repair`] did.
#[derive(Debug, Clone)]
pub struct RepairOutcome {
    /// The quarantine file now holding the torn bytes.
    pub quarantine: PathBuf,
    /// How many bytes were moved.
    pub torn_bytes: u64,
    /// The `repair` record written (always present since repairs are all or
    /// nothing; an `Option` for compatibility).
    pub record: Option<Appended>,
}

fn canonical_body(body: &Value) -> Result<Vec<u8>, String> {
    canonical_text(&serde_json::to_string(body).map_err(|e| e.to_string())?)
}

/// The canonical form of a body given as compact JSON text.
fn canonical_text(text: &str) -> Result<Vec<u8>, String> {
    // Re-check the body through the strict parser so bodies built in code obey
    // the same rules (integers only, within 2^53) as bodies read from stdin.
    let strict = parse_strict(text).map_err(|e| e.0)?;
    to_canonical_vec(&strict).map_err(|e| e.to_string())
}

fn genesis_body(ledger_id: &str, segment: &str) -> Vec<u8> {
    let body = json!({ "ledger_id": ledger_id, "segment": segment });
    to_canonical_vec(&body).unwrap_or_default()
}

/// Canonical record bytes: keys in RFC 8785 order (body, kind, prev, seq, ts, v).
fn record_bytes(body: &[u8], kind: &str, prev: &Hash, seq: u64, ts: &str) -> Vec<u8> {
    let kind = serde_json::to_string(kind).unwrap_or_default();
    let mut out = Vec::with_capacity(body.len() + 160);
    out.extend_from_slice(b"{\"body\":");
    out.extend_from_slice(body);
    out.extend_from_slice(b",\"kind\":");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b",\"prev\":\"");
    out.extend_from_slice(to_hex(prev).as_bytes());
    out.extend_from_slice(b"\",\"seq\":");
    out.extend_from_slice(seq.to_string().as_bytes());
    out.extend_from_slice(b",\"ts\":\"");
    out.extend_from_slice(ts.as_bytes());
    out.extend_from_slice(b"\",\"v\":");
    out.extend_from_slice(FORMAT_VERSION.to_string().as_bytes());
    out.push(b'}');
    debug_assert!(check_canonical(&out).is_ok());
    out
}

/// Writes `bytes` to `dir/name` only if it does not exist yet: temp file,
/// `fsync`, hard link (fails if the name exists), remove the temp file,
/// `fsync` the directory. On failure the temporary file is removed.
fn create_exclusive(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), LedgerError> {
    let target = dir.join(name);
    let tmp = temp_name(dir, name);
    // `create_new` (O_EXCL) never follows a link planted at the temp name.
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(LedgerError::io("create", &tmp))
        .and_then(|mut file| {
            file.write_all(bytes)
                .map_err(LedgerError::io("write", &tmp))?;
            file.sync_all().map_err(LedgerError::io("sync", &tmp))
        });
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    let linked = fs::hard_link(&tmp, &target);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(source) => {
            return Err(LedgerError::Io {
                action: "create",
                path: target,
                source,
            });
        }
    }
    sync_dir(dir).map_err(LedgerError::io("sync directory", dir))
}

fn fresh_ledger_id(dir: &Path) -> String {
    // Uniqueness, not secrecy, is what matters: mix the std hasher's random
    // keys with time, pid and path.
    let mut hasher = Sha256::new();
    for _ in 0..4 {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(0);
        hasher.update(h.finish().to_le_bytes());
    }
    hasher.update(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
            .to_le_bytes(),
    );
    hasher.update(std::process::id().to_le_bytes());
    hasher.update(dir.as_os_str().as_encoded_bytes());
    hex::encode(&hasher.finalize()[..16])
}

/// Offset just past the last `\n` in the first `size` bytes (0 if none).
fn last_newline_end(file: &mut File, path: &Path, size: u64) -> Result<u64, LedgerError> {
    let mut end = size;
    let mut buf = vec![0u8; COPY_BLOCK];
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))
            .map_err(LedgerError::io("seek", path))?;
        file.read_exact(chunk)
            .map_err(LedgerError::io("read", path))?;
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// Reads the last record of a segment and checks it: the file must end in
/// `\n`, and the last line must have the line layout, a matching hash and a
/// readable envelope. Returns `None` for an empty file.
///
/// # Errors
/// [`LedgerError::TornTail`], [`LedgerError::CorruptTail`], I/O errors.
pub fn read_tail(file: &mut File, path: &Path) -> Result<Option<Tail>, LedgerError> {
    let size = file
        .metadata()
        .map_err(LedgerError::io("stat", path))?
        .len();
    if size == 0 {
        return Ok(None);
    }
    let complete = last_newline_end(file, path, size)?;
    if complete != size {
        return Err(LedgerError::TornTail {
            segment: path.to_path_buf(),
            offset: complete,
            bytes: size - complete,
        });
    }
    tail_at(file, path, size)
}

/// The last record of the first `end` bytes of a segment, which end in `\n`
/// (checked as by [`read_tail`]); `None` when `end` is 0. Reads only that
/// line, and refuses one longer than [`MAX_LINE_BYTES`] without reading it.
fn tail_at(file: &mut File, path: &Path, end: u64) -> Result<Option<Tail>, LedgerError> {
    if end == 0 {
        return Ok(None);
    }
    let corrupt = |reason: &str| LedgerError::CorruptTail {
        segment: path.to_path_buf(),
        reason: reason.to_owned(),
    };
    let start = last_newline_end(file, path, end - 1)?;
    let len = end - 1 - start;
    if len > MAX_LINE_BYTES as u64 {
        return Err(corrupt(&format!(
            "its last line is {len} bytes, longer than the {MAX_LINE_BYTES} a ledger line may have"
        )));
    }
    let mut line = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.seek(SeekFrom::Start(start))
        .map_err(LedgerError::io("seek", path))?;
    file.take(len)
        .read_to_end(&mut line)
        .map_err(LedgerError::io("read", path))?;
    let split = split_line(&line).ok_or_else(|| corrupt("not a ledger line"))?;
    if record_hash(split.record) != split.stored_hash {
        return Err(corrupt("its hash does not match its content (edited)"));
    }
    let envelope: EnvelopeRef<'_> = serde_json::from_slice(split.record)
        .map_err(|e| corrupt(&format!("unreadable record: {e}")))?;
    parse_hex_hash(envelope.prev.as_bytes()).ok_or_else(|| corrupt("prev is not a hash"))?;
    Ok(Some(Tail {
        seq: envelope.seq,
        hash: split.stored_hash,
        end_offset: end,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_segment_names_are_safe_file_names() {
        assert_eq!(
            default_segment_name("alice@laptop", "main"),
            "alice@laptop--main.ndjson"
        );
        assert_eq!(
            default_segment_name("bob", "feature/x y"),
            "bob--feature_x_y.ndjson"
        );
        assert_eq!(default_segment_name("..", ""), "writer--detached.ndjson");
        assert!(is_segment_name(&default_segment_name("ünï", "../../etc")));
    }

    #[test]
    fn input_form_is_parsed_strictly() {
        let r = NewRecord::from_input(r#"{"kind":"note","body":{"text":"x"}}"#).unwrap();
        assert_eq!(r.kind, "note");
        assert!(
            NewRecord::from_input(r#"{"kind":"note","body":{},"x":1}"#)
                .unwrap_err()
                .contains("unexpected")
        );
        assert!(
            NewRecord::from_input(r#"{"kind":"note"}"#)
                .unwrap_err()
                .contains("body")
        );
        assert!(
            NewRecord::from_input(r#"{"kind":"note","kind":"note","body":{}}"#)
                .unwrap_err()
                .contains("duplicate")
        );
        assert!(NewRecord::from_input("[1]").is_err());
    }
}
