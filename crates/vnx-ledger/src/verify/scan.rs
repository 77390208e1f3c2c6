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
use crate::canonical::{check_canonical, is_json};
use crate::error::LedgerError;
use crate::record::{
    EnvelopeRef, FORMAT_VERSION, Hash, KIND_GENESIS, parse_hex_hash, record_hash, split_line,
    to_hex, valid_ts,
};
use crate::schema::{BodyInfo, validate_body};

/// A block of complete lines handed to a worker.
struct Block {
    index: u64,
    bytes: Vec<u8>,
    /// The block ends in bytes with no `\n` at end of file.
    torn: bool,
    /// A line too long to buffer: its length in bytes (without the `\n`),
    /// reported without its content.
    oversize: Option<u64>,
}

pub(super) fn scan_parallel(
    mut file: File,
    path: &Path,
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
        let reader = scope.spawn(move || read_blocks(&mut file, block_bytes, &block_tx));
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
    block_bytes: usize,
    tx: &mpsc::SyncSender<Block>,
) -> std::io::Result<()> {
    let mut index = 0u64;
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
                        bytes: Vec::new(),
                        torn: false,
                        oversize: Some(total - 1),
                    };
                    index += 1;
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

                let block = Block {
                    index,
                    bytes: buf,
                    torn: false,
                    oversize: None,
                };
                index += 1;
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
    /// Set when the line can be linked: its own checks found nothing, or only
    /// `edited` (FORMAT.md §8.2).
    pub(super) parsed: Option<Parsed>,
    /// The line's own finding: the first of malformed, torn_tail,
    /// not_canonical, schema, edited that applies.
    pub(super) problem: Option<(Reason, String)>,
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
            (Reason::Malformed, too_long(len as usize))
        };
        return vec![LineResult {
            line: 0,
            parsed: None,
            problem: Some((reason, detail)),
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
        if complete {
            out.push(scan_line(line, line_no));
        } else {
            out.push(LineResult {
                line: line_no,
                parsed: None,
                problem: Some((
                    Reason::TornTail,
                    format!(
                        "the last {} bytes have no terminating newline: an append was cut short; \
                         run `vnx ledger repair` to quarantine them",
                        line.len()
                    ),
                )),
            });
        }
        line_no += 1;
        start = next;
    }
    out
}

fn too_long(len: usize) -> String {
    format!(
        "line of {len} bytes is longer than any record may be ({MAX_LINE_BYTES} bytes, 64 MiB, without its newline)"
    )
}

/// The checks of one complete line (without its `\n`), in the order of
/// FORMAT.md §8.1; the first that fails is the line's only finding.
fn scan_line(line: &[u8], line_no: u64) -> LineResult {
    let mut result = LineResult {
        line: line_no,
        parsed: None,
        problem: None,
    };
    match check_line(line) {
        Ok(parsed) => {
            if parsed.edited {
                result.problem = Some((
                    Reason::Edited,
                    format!(
                        "content does not match its hash: stored {}, computed {}",
                        to_hex(&parsed.stored),
                        to_hex(&parsed.computed)
                    ),
                ));
            }
            result.parsed = Some(Parsed {
                line: line_no,
                ..parsed
            });
        }
        Err(problem) => result.problem = Some(problem),
    }
    result
}

fn check_line(line: &[u8]) -> Result<Parsed, (Reason, String)> {
    if line.len() > MAX_LINE_BYTES {
        return Err((Reason::Malformed, too_long(line.len())));
    }
    if let Err(e) = std::str::from_utf8(line) {
        return Err((
            Reason::Malformed,
            format!("not valid UTF-8 (byte {} of the line)", e.valid_up_to()),
        ));
    }
    // Not JSON is malformed; JSON in any other form is not canonical.
    let not_canonical = |detail: String| {
        if is_json(line) {
            (Reason::NotCanonical, detail)
        } else {
            (
                Reason::Malformed,
                "not JSON (RFC 8259): the line cannot be read at all".to_owned(),
            )
        }
    };
    let Some(split) = split_line(line) else {
        return Err(not_canonical(
            "not the ledger's line layout {\"hash\":\"<64 lowercase hex>\",\"record\":{…}}, so no record can be located in it".to_owned(),
        ));
    };
    if let Err(e) = check_canonical(split.record) {
        return Err(not_canonical(format!(
            "record is not RFC 8785 canonical JSON: {e}"
        )));
    }
    let computed = record_hash(split.record);
    let edited = computed != split.stored_hash;
    let schema = |detail: String| {
        let also = if edited {
            " (its stored hash does not match its content either)"
        } else {
            ""
        };
        (Reason::Schema, format!("{detail}{also}"))
    };
    let envelope = match fast_envelope(split.record) {
        Some(env) => env,
        None => match serde_json::from_slice::<EnvelopeRef<'_>>(split.record) {
            Ok(e) => Envelope {
                body: e.body.get(),
                kind: e.kind,
                prev: e.prev,
                seq: e.seq,
                ts: e.ts,
                v: e.v,
            },
            Err(e) => {
                let message = e.to_string();
                let message = message.split(" at line ").next().unwrap_or(&message);
                return Err(schema(format!("record envelope: {message}")));
            }
        },
    };
    if envelope.v != FORMAT_VERSION {
        return Err(schema(format!(
            "format version {} is not supported (this vnx reads version {FORMAT_VERSION}); upgrade vnx",
            envelope.v
        )));
    }
    if !valid_ts(envelope.ts) {
        return Err(schema(format!(
            "ts {:?} is not an RFC 3339 UTC time with milliseconds (YYYY-MM-DDTHH:MM:SS.mmmZ) on a real calendar date",
            envelope.ts
        )));
    }
    let Some(prev) = parse_hex_hash(envelope.prev.as_bytes()) else {
        return Err(schema("prev is not 64 lowercase hex chars".into()));
    };
    let kind_genesis = envelope.kind == KIND_GENESIS;
    if kind_genesis != (envelope.seq == 0) {
        return Err(schema(if kind_genesis {
            format!(
                "a {KIND_GENESIS} record may only be the first record (it has seq {})",
                envelope.seq
            )
        } else {
            format!(
                "the first record (seq 0) must be {KIND_GENESIS}, not {}",
                envelope.kind
            )
        }));
    }
    let info = validate_body(envelope.kind, envelope.body).map_err(schema)?;
    Ok(Parsed {
        line: 0,
        seq: envelope.seq,
        prev,
        stored: split.stored_hash,
        edited,
        computed,
        info,
    })
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
