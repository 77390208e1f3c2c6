//! The per-line scanner: reads a segment in blocks cut at line boundaries and
//! checks each line on its own (UTF-8, JSON, layout, canonical form, schema,
//! hash) on worker threads.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use super::MAX_LINE_BYTES;
use super::link::Linker;
use super::report::Reason;
use crate::canonical::check_canonical;
use crate::error::LedgerError;
use crate::record::{
    EnvelopeRef, FORMAT_VERSION, Hash, KIND_GENESIS, parse_hex_hash, record_hash, split_line,
    to_hex, valid_ts,
};
use crate::schema::{BodyInfo, validate_body};

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

pub(super) fn scan_parallel(
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
pub(super) struct LineResult {
    pub(super) line: u64,
    pub(super) end_offset: u64,
    pub(super) parsed: Option<Parsed>,
    pub(super) problems: Vec<(Reason, String)>,
}

#[derive(Clone)]
pub(super) struct Parsed {
    pub(super) line: u64,
    pub(super) seq: u64,
    pub(super) prev: Hash,
    pub(super) stored: Hash,
    /// The stored hash did not match the content.
    pub(super) edited: bool,
    pub(super) computed: Hash,
    pub(super) kind_genesis: bool,
    pub(super) info: BodyInfo,
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
