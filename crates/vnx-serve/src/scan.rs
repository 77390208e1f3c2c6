//! Following the ledger and the run directories by polling: each scan stats
//! every segment and the `live.json` of every dispatch still in flight, and
//! reads only what was appended since the previous scan. Only reads: nothing
//! here opens a file for writing.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Serialize;
use vnx_ledger::read::read_line_bounded;
use vnx_ledger::record::{
    EnvelopeRef, KIND_APPROVAL, KIND_DISPATCH_RECEIPT, KIND_DISPATCH_STARTED, split_line, to_hex,
};
use vnx_ledger::verify::MAX_LINE_BYTES;
use vnx_types::LIVE_STATUS_FILE;

use crate::board::{ApprovalLite, Facts, ReceiptLite, RecordLoc, StartedLite};

/// Size and modification time of a file: when neither changed, it is not re-read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    mtime: Option<SystemTime>,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some(Stamp {
        len: meta.len(),
        mtime: meta.modified().ok(),
    })
}

/// How far a segment has been read.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    stamp: Stamp,
    /// Bytes consumed: up to the end of the last complete line.
    offset: u64,
    /// Complete lines consumed.
    lines: u64,
}

/// The head of a segment's chain as last read, for "position in the chain".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SegmentHead {
    /// Records read (lines that parsed as records).
    pub records: u64,
    /// Seq of the last record.
    pub head_seq: Option<u64>,
    /// Hash of the last record, lowercase hex.
    pub head_hash: Option<String>,
    /// Lines that are not ledger records (verification says why).
    pub unreadable: u64,
}

/// What one scan changed.
#[derive(Debug, Default)]
pub(crate) struct ScanResult {
    /// Dispatches whose facts changed.
    pub changed: BTreeSet<String>,
    /// Something in the ledger directory changed.
    pub ledger_changed: bool,
}

/// The scanner's memory between scans.
pub(crate) struct Tracker {
    ledger_dir: PathBuf,
    /// The local journal (`.vnx/ledger/`): runs not merged yet.
    journal_dir: PathBuf,
    runs_dir: PathBuf,
    segments: BTreeMap<PathBuf, Cursor>,
    pub heads: BTreeMap<String, SegmentHead>,
    pub facts: BTreeMap<String, Facts>,
    runs_stamp: Option<Stamp>,
    run_ids: BTreeSet<String>,
    live_stamps: HashMap<String, Stamp>,
    event_logs: HashMap<PathBuf, u64>,
    /// The latest problem reading the ledger directory, for the page.
    pub ledger_error: Option<String>,
}

impl Tracker {
    pub fn new(ledger_dir: PathBuf, journal_dir: PathBuf, runs_dir: PathBuf) -> Tracker {
        Tracker {
            ledger_dir,
            journal_dir,
            runs_dir,
            segments: BTreeMap::new(),
            heads: BTreeMap::new(),
            facts: BTreeMap::new(),
            runs_stamp: None,
            run_ids: BTreeSet::new(),
            live_stamps: HashMap::new(),
            event_logs: HashMap::new(),
            ledger_error: None,
        }
    }

    /// One pass over the ledger and the run directories.
    pub fn scan(&mut self) -> ScanResult {
        let mut out = ScanResult::default();
        self.scan_ledger(&mut out);
        self.scan_runs(&mut out);
        out
    }

    fn scan_ledger(&mut self, out: &mut ScanResult) {
        let listed = vnx_ledger::read::segment_paths(&self.ledger_dir).and_then(|mut p| {
            if self
                .journal_dir
                .join(vnx_ledger::store::MANIFEST_FILE)
                .is_file()
            {
                p.extend(vnx_ledger::read::segment_paths(&self.journal_dir)?);
            }
            Ok(p)
        });
        let paths = match listed {
            Ok(p) => {
                if self.ledger_error.take().is_some() {
                    out.ledger_changed = true;
                }
                p
            }
            Err(e) => {
                let msg = e.to_string();
                if self.ledger_error.as_deref() != Some(msg.as_str()) {
                    self.ledger_error = Some(msg);
                    out.ledger_changed = true;
                }
                Vec::new()
            }
        };
        // A segment that shrank or vanished (a repair, or someone editing
        // the ledger): forget what was read and read everything again.
        let shrank = self.segments.iter().any(|(path, cursor)| {
            stamp(path).is_none_or(|s| s.len < cursor.offset) || !paths.contains(path)
        });
        if shrank {
            self.reset_ledger(out);
        }
        for path in paths {
            let Some(now) = stamp(&path) else { continue };
            let prev = self.segments.get(&path).copied();
            if prev.is_some_and(|c| c.stamp == now) {
                continue;
            }
            let cursor = prev.unwrap_or(Cursor {
                stamp: now,
                offset: 0,
                lines: 0,
            });
            out.ledger_changed = true;
            let cursor = self.read_segment_from(&path, cursor, now, out);
            self.segments.insert(path, cursor);
        }
    }

    fn reset_ledger(&mut self, out: &mut ScanResult) {
        self.segments.clear();
        self.heads.clear();
        for (id, f) in &mut self.facts {
            if f.started.is_some() || f.receipt.is_some() || f.approval.is_some() {
                out.changed.insert(id.clone());
            }
            f.started = None;
            f.receipt = None;
            f.approval = None;
        }
        out.ledger_changed = true;
    }

    /// Reads the complete lines appended after `cursor`.
    fn read_segment_from(
        &mut self,
        path: &Path,
        mut cursor: Cursor,
        now: Stamp,
        out: &mut ScanResult,
    ) -> Cursor {
        cursor.stamp = now;
        let Ok(mut file) = File::open(path) else {
            return cursor;
        };
        if file.seek(SeekFrom::Start(cursor.offset)).is_err() {
            return cursor;
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // The journal's segments may share a name with the ledger's.
        let segment = if path.parent() == Some(self.journal_dir.as_path()) {
            format!("{}/{name}", vnx_core::pipeline::JOURNAL_DIR)
        } else {
            name
        };
        let mut reader = BufReader::new(file);
        let mut buf = Vec::new();
        // One line at a time, and at most MAX_LINE_BYTES of it: a huge
        // segment or a huge line costs time, not memory. The end, an error,
        // or a torn or half-written line stops it: the rest waits.
        while let Ok(Some((len, true))) = read_line_bounded(&mut reader, &mut buf, MAX_LINE_BYTES) {
            let offset = cursor.offset;
            cursor.offset += len + 1;
            cursor.lines += 1;
            let head = self.heads.entry(segment.clone()).or_default();
            let Some(rec) = (len <= MAX_LINE_BYTES as u64)
                .then(|| parse_record(&buf))
                .flatten()
            else {
                head.unreadable += 1;
                continue;
            };
            head.records += 1;
            head.head_seq = Some(rec.seq);
            head.head_hash = Some(rec.hash.clone());
            let loc = RecordLoc {
                segment: segment.clone(),
                line: cursor.lines,
                seq: rec.seq,
                hash: rec.hash,
                ts: rec.ts,
                path: path.to_path_buf(),
                offset,
                len: buf.len() as u64,
            };
            self.apply_record(&rec.kind, &rec.body, loc, out);
        }
        cursor
    }

    fn apply_record(&mut self, kind: &str, body: &str, loc: RecordLoc, out: &mut ScanResult) {
        match kind {
            KIND_DISPATCH_STARTED => {
                if let Ok(s) = serde_json::from_str::<StartedLite>(body) {
                    let f = self.facts.entry(s.dispatch_id.clone()).or_default();
                    if f.started.is_none() {
                        out.changed.insert(s.dispatch_id.clone());
                        f.started = Some((s, loc));
                    }
                }
            }
            KIND_DISPATCH_RECEIPT => {
                // A merged dispatch branch brings a second copy of the same
                // receipt in its own segment: the first one read stays.
                if let Ok(r) = serde_json::from_str::<ReceiptLite>(body) {
                    let f = self.facts.entry(r.dispatch_id.clone()).or_default();
                    if f.receipt.is_none() {
                        out.changed.insert(r.dispatch_id.clone());
                        f.receipt = Some((r, loc));
                    }
                }
            }
            KIND_APPROVAL => {
                if let Ok(a) = serde_json::from_str::<ApprovalLite>(body) {
                    let f = self.facts.entry(a.dispatch_id.clone()).or_default();
                    // The latest decision wins, by the gate's rule.
                    let newer = f.approval.as_ref().is_none_or(|(old_a, old_loc)| {
                        a.as_decision(&loc).supersedes(&old_a.as_decision(old_loc))
                    });
                    if newer {
                        out.changed.insert(a.dispatch_id.clone());
                        f.approval = Some((a, loc));
                    }
                }
            }
            _ => {}
        }
    }

    fn scan_runs(&mut self, out: &mut ScanResult) {
        let now = stamp(&self.runs_dir);
        if now != self.runs_stamp {
            self.runs_stamp = now;
            let mut ids = BTreeSet::new();
            if let Ok(entries) = std::fs::read_dir(&self.runs_dir) {
                for entry in entries.flatten() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if valid_dispatch_id(&name) && entry.file_type().is_ok_and(|t| t.is_dir()) {
                        ids.insert(name);
                    }
                }
            }
            for gone in self.run_ids.difference(&ids) {
                if let Some(f) = self.facts.get_mut(gone)
                    && f.live.take().is_some()
                {
                    out.changed.insert(gone.clone());
                }
                self.live_stamps.remove(gone);
            }
            self.run_ids = ids;
        }
        for id in &self.run_ids {
            let f = self.facts.entry(id.clone()).or_default();
            if f.settled() && self.live_stamps.contains_key(id) {
                continue;
            }
            let dir = self.runs_dir.join(id);
            let live_path = dir.join(LIVE_STATUS_FILE);
            let now = stamp(&live_path);
            if now.as_ref() != self.live_stamps.get(id) {
                match now {
                    Some(s) => {
                        self.live_stamps.insert(id.clone(), s);
                    }
                    None => {
                        self.live_stamps.remove(id);
                    }
                }
                let live = vnx_core::live::read_live_status(&dir);
                // A half-replaced or unreadable file keeps the last good status.
                if live.is_some() && live != f.live {
                    f.live = live;
                    out.changed.insert(id.clone());
                }
            }
            if !f.settled()
                && f.live
                    .as_ref()
                    .is_some_and(|l| l.phase != vnx_types::LivePhase::Queued)
                && follow_event_logs(&dir.join("worker"), &mut self.event_logs, f)
            {
                out.changed.insert(id.clone());
            }
        }
    }
}

/// Counts the lines appended to `attempt-*.events.ndjson` since the last
/// look and notes the latest event's `type`. Returns whether anything changed.
fn follow_event_logs(
    worker_dir: &Path,
    cursors: &mut HashMap<PathBuf, u64>,
    f: &mut Facts,
) -> bool {
    let Ok(entries) = std::fs::read_dir(worker_dir) else {
        return false;
    };
    let mut logs: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("attempt-") && n.ends_with(".events.ndjson"))
        })
        .collect();
    logs.sort();
    let mut changed = false;
    for path in logs {
        let Some(s) = stamp(&path) else { continue };
        let seen = cursors.get(&path).copied().unwrap_or(0);
        if s.len <= seen {
            continue;
        }
        let Some((lines, consumed, last)) = count_lines(&path, seen, s.len) else {
            continue;
        };
        if lines > 0 {
            f.events += lines;
            if last.is_some() {
                f.last_event = last;
            }
            changed = true;
        }
        cursors.insert(path, seen + consumed);
    }
    changed
}

/// Counts complete lines in `[from, to)` of `path`; returns the count, the
/// bytes through the last complete line, and the last line's `type` (when
/// it is a JSON object of at most 64 KiB).
fn count_lines(path: &Path, from: u64, to: u64) -> Option<(u64, u64, Option<String>)> {
    const LAST_LINE_MAX: usize = 64 << 10;
    let mut file = File::open(path).ok()?;
    file.seek(SeekFrom::Start(from)).ok()?;
    let mut reader = file.take(to - from);
    let mut chunk = vec![0u8; 64 << 10];
    let (mut lines, mut consumed, mut pos) = (0u64, 0u64, 0u64);
    let mut line = Vec::new();
    let mut last_complete: Option<Vec<u8>> = None;
    loop {
        let n = reader.read(&mut chunk).ok()?;
        if n == 0 {
            break;
        }
        for &b in &chunk[..n] {
            pos += 1;
            if b == b'\n' {
                lines += 1;
                consumed = pos;
                if line.len() <= LAST_LINE_MAX {
                    last_complete = Some(std::mem::take(&mut line));
                }
                line.clear();
            } else if line.len() <= LAST_LINE_MAX {
                line.push(b);
            }
        }
    }
    let last = last_complete.and_then(|l| {
        let v: serde_json::Value = serde_json::from_slice(&l).ok()?;
        v.get("type")?.as_str().map(str::to_owned)
    });
    Some((lines, consumed, last))
}

/// A record read back from a line.
struct ParsedRecord {
    seq: u64,
    ts: String,
    kind: String,
    body: String,
    hash: String,
}

fn parse_record(line: &[u8]) -> Option<ParsedRecord> {
    let split = split_line(line)?;
    let env: EnvelopeRef<'_> = serde_json::from_slice(split.record).ok()?;
    Some(ParsedRecord {
        seq: env.seq,
        ts: env.ts.to_owned(),
        kind: env.kind.to_owned(),
        body: env.body.get().to_owned(),
        hash: to_hex(&split.stored_hash),
    })
}

/// Reads the record (envelope and body) on the line `loc` points at, and
/// checks it is still the record read before (a repaired segment may have
/// moved it).
pub(crate) fn read_record_at(loc: &RecordLoc) -> Result<serde_json::Value, String> {
    let what = || format!("{} line {}", loc.path.display(), loc.line);
    let mut file = File::open(&loc.path).map_err(|e| format!("cannot open {}: {e}", what()))?;
    file.seek(SeekFrom::Start(loc.offset))
        .map_err(|e| format!("cannot read {}: {e}", what()))?;
    let len = usize::try_from(loc.len).map_err(|_| format!("{} is too long", what()))?;
    let mut buf = vec![0u8; len];
    file.read_exact(&mut buf)
        .map_err(|e| format!("cannot read {}: {e}", what()))?;
    let rec = parse_record(&buf).ok_or_else(|| format!("{} is no longer a record", what()))?;
    if rec.hash != loc.hash {
        return Err(format!("{} changed since it was read; reload", what()));
    }
    serde_json::from_slice(&buf[vnx_ledger::record::RECORD_OFFSET..buf.len() - 1])
        .map_err(|e| format!("{}: {e}", what()))
}

/// Dispatch ids as vnx makes them: letters, digits, `-`, `_` and `.`, not
/// starting with `.`, at most 200 bytes. Anything else is never used to
/// build a path.
pub(crate) fn valid_dispatch_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 200
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn ids_that_could_escape_a_directory_are_refused() {
        assert!(valid_dispatch_id("d-20261121-205334-740f63"));
        for bad in ["", ".", "..", "../x", "a/b", ".hidden", "a b", "é"] {
            assert!(!valid_dispatch_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn event_logs_are_counted_incrementally_and_half_lines_wait() {
        let tmp = tempfile::tempdir().unwrap();
        let worker = tmp.path().join("worker");
        std::fs::create_dir_all(&worker).unwrap();
        let log = worker.join("attempt-1.events.ndjson");
        std::fs::write(&log, "{\"type\":\"system\"}\n{\"type\":\"assis").unwrap();
        let mut cursors = HashMap::new();
        let mut f = Facts::default();
        assert!(follow_event_logs(&worker, &mut cursors, &mut f));
        assert_eq!((f.events, f.last_event.as_deref()), (1, Some("system")));
        assert!(!follow_event_logs(&worker, &mut cursors, &mut f));
        std::fs::write(
            &log,
            "{\"type\":\"system\"}\n{\"type\":\"assistant\"}\n{\"type\":\"result\"}\n",
        )
        .unwrap();
        assert!(follow_event_logs(&worker, &mut cursors, &mut f));
        assert_eq!((f.events, f.last_event.as_deref()), (3, Some("result")));
    }
}
