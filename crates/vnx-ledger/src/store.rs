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

/// Reads and validates a manifest file.
///
/// # Errors
/// [`LedgerError::NoLedger`] when it does not exist, [`LedgerError::Manifest`]
/// when it is not valid.
pub fn read_manifest(dir: &Path) -> Result<Manifest, LedgerError> {
    let path = dir.join(MANIFEST_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
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
            let body = canonical_body(&record.body)
                .map_err(|reason| LedgerError::Input { entry, reason })?;
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
        let (mut seq, mut prev) = match &tail {
            Some(t) => (t.seq + 1, t.hash),
            None => (0, genesis_prev(self.ledger_id(), segment)),
        };
        let mut offset = tail.as_ref().map_or(0, |t| t.end_offset);
        let ts = format_ts(self.clock.now());
        // An empty file: another process created it and died before its
        // genesis, or it was created by hand. Start the chain properly.
        let genesis = tail
            .is_none()
            .then(|| genesis_body(self.ledger_id(), segment));
        let lines = genesis
            .iter()
            .map(|g| (KIND_GENESIS, g.as_slice(), false))
            .chain(
                records
                    .iter()
                    .zip(&bodies)
                    .map(|(r, b)| (r.kind.as_str(), b.as_slice(), true)),
            );
        let mut out = Vec::new();
        let mut appended = Vec::new();
        for (kind, body, report) in lines {
            let record = record_bytes(body, kind, &prev, seq, &ts);
            let (hash, line) = build_line(&record);
            out.extend_from_slice(&line);
            offset += line.len() as u64;
            if report {
                appended.push(Appended {
                    seq,
                    hash: to_hex(&hash),
                    end_offset: offset,
                });
            }
            prev = hash;
            seq += 1;
        }
        file.write_all(&out)
            .map_err(LedgerError::io("append to", &path))?;
        file.sync_data().map_err(LedgerError::io("sync", &path))?;
        Ok(appended)
    }

    /// Opens a segment for appending; creates it with its genesis record when
    /// missing (written to a temporary file, synced, linked into place, then
    /// the directory synced: a crash leaves either no segment or a complete one).
    fn open_segment_for_append(&self, segment: &str, path: &Path) -> Result<File, LedgerError> {
        if !path.exists() {
            let genesis = genesis_body(self.ledger_id(), segment);
            let prev = genesis_prev(self.ledger_id(), segment);
            let ts = format_ts(self.clock.now());
            let record = record_bytes(&genesis, KIND_GENESIS, &prev, 0, &ts);
            let (_, line) = build_line(&record);
            create_exclusive(&self.dir, segment, &line)?;
        }
        OpenOptions::new()
            .read(true)
            .append(true)
            .open(path)
            .map_err(LedgerError::io("open", path))
    }

    /// Moves a torn tail out of a segment: the bytes after the last `\n` go to
    /// `<segment>.quarantine-<ts>` beside it (synced first, nothing is
    /// deleted), the segment is truncated to its last complete line, and a
    /// `repair` record with their length and SHA-256 is appended.
    ///
    /// # Errors
    /// [`LedgerError::NothingToRepair`] when the tail is intact, I/O errors.
    pub fn repair(&self, segment: &str) -> Result<RepairOutcome, LedgerError> {
        if !is_segment_name(segment) {
            return Err(LedgerError::SegmentName {
                name: segment.to_owned(),
            });
        }
        let path = self.segment_path(segment);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(LedgerError::io("open", &path))?;
        file.lock().map_err(LedgerError::io("lock", &path))?;
        let size = file
            .metadata()
            .map_err(LedgerError::io("stat", &path))?
            .len();
        let cut = last_newline_end(&mut file, &path, size)?;
        if cut == size {
            return Err(LedgerError::NothingToRepair { segment: path });
        }
        let mut torn = Vec::with_capacity((size - cut) as usize);
        file.seek(SeekFrom::Start(cut))
            .map_err(LedgerError::io("seek", &path))?;
        (&mut file)
            .take(size - cut)
            .read_to_end(&mut torn)
            .map_err(LedgerError::io("read", &path))?;
        let stamp = self.clock.now().format("%Y%m%dT%H%M%S%3fZ");
        let quarantine = format!("{segment}.quarantine-{stamp}");
        create_exclusive(&self.dir, &quarantine, &torn)?;
        file.set_len(cut)
            .map_err(LedgerError::io("truncate", &path))?;
        file.sync_all().map_err(LedgerError::io("sync", &path))?;
        drop(file);
        let body = vnx_types::RepairBody {
            offset: cut,
            torn_bytes: torn.len() as u64,
            torn_sha256: hex::encode(Sha256::digest(&torn)),
            quarantine: quarantine.clone(),
        };
        let record = NewRecord::new(KIND_REPAIR, &body).map_err(|e| LedgerError::Input {
            entry: 1,
            reason: e.to_string(),
        })?;
        let appended = self.append_inner(segment, &[record])?;
        Ok(RepairOutcome {
            quarantine: self.dir.join(quarantine),
            torn_bytes: torn.len() as u64,
            record: appended.into_iter().next(),
        })
    }
}

/// What [`Ledger::repair`] did.
#[derive(Debug, Clone)]
pub struct RepairOutcome {
    /// The quarantine file now holding the torn bytes.
    pub quarantine: PathBuf,
    /// How many bytes were moved.
    pub torn_bytes: u64,
    /// The `repair` record appended (absent only if the segment was empty and
    /// received a genesis record instead).
    pub record: Option<Appended>,
}

fn canonical_body(body: &Value) -> Result<Vec<u8>, String> {
    // Re-check the body through the strict parser so bodies built in code obey
    // the same rules (integers only, within 2^53) as bodies read from stdin.
    let text = serde_json::to_string(body).map_err(|e| e.to_string())?;
    let strict = parse_strict(&text).map_err(|e| e.0)?;
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
/// `fsync` the directory.
fn create_exclusive(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), LedgerError> {
    let target = dir.join(name);
    let tmp = dir.join(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    let mut file = File::create(&tmp).map_err(LedgerError::io("create", &tmp))?;
    file.write_all(bytes)
        .map_err(LedgerError::io("write", &tmp))?;
    file.sync_all().map_err(LedgerError::io("sync", &tmp))?;
    drop(file);
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
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(LedgerError::io("sync directory", dir))
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
    let mut buf = vec![0u8; 64 * 1024];
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
    let start = last_newline_end(file, path, size - 1)?;
    let mut line = Vec::with_capacity((size - 1 - start) as usize);
    file.seek(SeekFrom::Start(start))
        .map_err(LedgerError::io("seek", path))?;
    file.take(size - 1 - start)
        .read_to_end(&mut line)
        .map_err(LedgerError::io("read", path))?;
    let corrupt = |reason: &str| LedgerError::CorruptTail {
        segment: path.to_path_buf(),
        reason: reason.to_owned(),
    };
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
        end_offset: size,
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
