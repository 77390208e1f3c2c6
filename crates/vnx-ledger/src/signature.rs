//! Segment signatures: the signed statement of a segment's head, kept beside
//! the segment in `<segment>.sig`.
//!
//! A hash chain proves that nothing was edited after the fact; it does not
//! say who wrote the chain. A segment's writer therefore signs a short text
//! statement naming the ledger, the segment, how many records it vouches for
//! and the hash of the last of them. Because every record's hash covers its
//! predecessor's, that one signature vouches for every record up to that
//! head; the writer signs again (overwriting the file) as the segment grows.
//!
//! This module is crypto-agnostic: it builds and parses the statement and the
//! file, and checks a statement against a segment's records. Making and
//! checking the signature itself (OpenSSH SSHSIG, namespace `vnx-ledger`) is
//! `vnx-sign`'s job. `ledger/FORMAT.md` ("Signatures") is the specification.
//!
//! File layout (UTF-8, `\n` line ends):
//!
//! ```text
//! vnx-segment-head v1
//! ledger <ledger id, 32 hex>
//! segment <segment file name>
//! records <decimal count, ≥ 1>
//! head <record hash of line `records`, 64 lowercase hex>
//!
//! -----BEGIN SSH SIGNATURE-----
//! …
//! -----END SSH SIGNATURE-----
//! ```
//!
//! The signed message is exactly the first five lines, each with its `\n`.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use crate::error::LedgerError;
use crate::record::split_line;
use crate::store::is_segment_name;

/// File name of the ledger's OpenSSH allowed-signers file, in the ledger
/// directory: whose signatures `vnx gate` trusts (read at the base revision).
pub const ALLOWED_SIGNERS_FILE: &str = "allowed_signers";
/// File-name suffix of a segment's signature file: `<segment>.sig`.
pub const SIGNATURE_SUFFIX: &str = ".sig";
/// First line of a head statement (format and version).
pub const STATEMENT_TAG: &str = "vnx-segment-head v1";

/// What a segment signature vouches for: the first `records` records of
/// `segment` in the ledger `ledger_id`, the last of which has hash `head`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentHead {
    /// The ledger's id (`ledger.json`), 32 lowercase hex.
    pub ledger_id: String,
    /// The segment's file name, e.g. `alice@laptop--main.ndjson`.
    pub segment: String,
    /// Number of records (lines) vouched for, counted from the first; ≥ 1.
    pub records: u64,
    /// Stored hash of record number `records` (1-based line), lowercase hex.
    pub head: String,
}

impl SegmentHead {
    /// The statement's five lines, each ending in `\n`: the signed message.
    pub fn message(&self) -> String {
        format!(
            "{STATEMENT_TAG}\nledger {}\nsegment {}\nrecords {}\nhead {}\n",
            self.ledger_id, self.segment, self.records, self.head
        )
    }

    /// The head of the segment file `dir/segment` as it is now: its line
    /// count and its last line's stored hash. Reads the whole file once
    /// (line by line, without keeping it).
    ///
    /// # Errors
    /// [`LedgerError::Io`] reading the file; [`LedgerError::Input`] when the
    /// segment is empty, ends in a torn line or its last line does not have
    /// the record layout (nothing to vouch for: repair or verify it first).
    pub fn of_segment(
        dir: &Path,
        ledger_id: &str,
        segment: &str,
    ) -> Result<SegmentHead, LedgerError> {
        let path = dir.join(segment);
        let file = fs::File::open(&path).map_err(LedgerError::io("open", &path))?;
        let mut reader = BufReader::new(file);
        let mut buf = Vec::new();
        let mut last = Vec::new();
        let mut records = 0u64;
        loop {
            buf.clear();
            let n = reader
                .read_until(b'\n', &mut buf)
                .map_err(LedgerError::io("read", &path))?;
            if n == 0 {
                break;
            }
            if buf.last() != Some(&b'\n') {
                return Err(unsignable(
                    &path,
                    "it ends in a torn line: run `vnx ledger repair` first",
                ));
            }
            records += 1;
            std::mem::swap(&mut last, &mut buf);
        }
        if records == 0 {
            return Err(unsignable(&path, "it is empty"));
        }
        let line = &last[..last.len() - 1];
        let split = split_line(line).ok_or_else(|| {
            unsignable(
                &path,
                "its last line is not a record: run `vnx verify-ledger` on it",
            )
        })?;
        Ok(SegmentHead {
            ledger_id: ledger_id.to_owned(),
            segment: segment.to_owned(),
            records,
            head: hex::encode(split.stored_hash),
        })
    }

    /// Checks this statement against a segment's stored record hashes
    /// (`hashes[i]` is line `i + 1`'s stored hash, lowercase hex) and the
    /// ledger it is in.
    ///
    /// # Errors
    /// A sentence saying what does not match.
    pub fn check(&self, ledger_id: &str, segment: &str, hashes: &[String]) -> Result<(), String> {
        if self.ledger_id != ledger_id {
            return Err(format!(
                "the signature names ledger {}, but this ledger is {ledger_id}",
                self.ledger_id
            ));
        }
        if self.segment != segment {
            return Err(format!(
                "the signature names segment {:?}: it was copied from another segment",
                self.segment
            ));
        }
        let n = usize::try_from(self.records).unwrap_or(usize::MAX);
        if n == 0 || n > hashes.len() {
            return Err(format!(
                "the signature vouches for {} records, but the segment has {}",
                self.records,
                hashes.len()
            ));
        }
        if hashes[n - 1] != self.head {
            return Err(format!(
                "the signature's head {} is not the hash of line {} ({}): the segment was rewritten after it was signed",
                short(&self.head),
                self.records,
                short(&hashes[n - 1])
            ));
        }
        Ok(())
    }
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

fn unsignable(path: &Path, why: &str) -> LedgerError {
    LedgerError::Input {
        entry: 0,
        reason: format!("cannot sign segment {}: {why}", path.display()),
    }
}

/// A segment's signature file: the statement and its armored SSHSIG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentSignature {
    /// What is signed.
    pub head: SegmentHead,
    /// The OpenSSH signature (`-----BEGIN SSH SIGNATURE-----` … `-----END SSH SIGNATURE-----`),
    /// over [`SegmentHead::message`] in namespace `vnx-ledger`.
    pub armored: String,
}

impl SegmentSignature {
    /// The signature file's path for `segment` in `dir`: `dir/<segment>.sig`.
    pub fn path_for(dir: &Path, segment: &str) -> PathBuf {
        dir.join(format!("{segment}{SIGNATURE_SUFFIX}"))
    }

    /// The file's text: the statement, an empty line, the armored signature.
    pub fn file_text(&self) -> String {
        let mut text = self.head.message();
        text.push('\n');
        text.push_str(self.armored.trim_end());
        text.push('\n');
        text
    }

    /// Parses a signature file's text.
    ///
    /// # Errors
    /// A sentence naming the first thing that does not follow the layout.
    pub fn parse(text: &str) -> Result<SegmentSignature, String> {
        let mut lines = text.split_inclusive('\n');
        let mut field = |name: &str| -> Result<String, String> {
            let line = lines
                .next()
                .ok_or_else(|| format!("it ends before the `{name}` line"))?;
            let line = line
                .strip_suffix('\n')
                .ok_or_else(|| format!("the `{name}` line does not end in a newline"))?;
            if name == "tag" {
                return (line == STATEMENT_TAG).then(String::new).ok_or_else(|| {
                    format!("the first line is {line:?}, expected {STATEMENT_TAG:?}")
                });
            }
            line.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix(' '))
                .map(str::to_owned)
                .ok_or_else(|| format!("expected a `{name} …` line, found {line:?}"))
        };
        field("tag")?;
        let ledger_id = field("ledger")?;
        let segment = field("segment")?;
        let records = field("records")?;
        let head = field("head")?;
        if !crate::store::is_ledger_id(&ledger_id) {
            return Err(format!("ledger {ledger_id:?} is not 32 lowercase hex"));
        }
        if !is_segment_name(&segment) {
            return Err(format!("segment {segment:?} is not a segment file name"));
        }
        let records: u64 = records
            .parse()
            .ok()
            .filter(|n: &u64| {
                *n >= 1 && records.bytes().all(|b| b.is_ascii_digit()) && !records.starts_with('0')
            })
            .ok_or_else(|| format!("records {records:?} is not a count ≥ 1 in plain decimal"))?;
        if head.len() != 64
            || !head
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(format!("head {head:?} is not 64 lowercase hex"));
        }
        let rest: String = lines.collect();
        let armored = rest
            .strip_prefix('\n')
            .ok_or("the statement must be followed by an empty line, then the signature")?;
        if !armored.starts_with("-----BEGIN SSH SIGNATURE-----") {
            return Err("no `-----BEGIN SSH SIGNATURE-----` after the statement".into());
        }
        Ok(SegmentSignature {
            head: SegmentHead {
                ledger_id,
                segment,
                records,
                head,
            },
            armored: armored.to_owned(),
        })
    }

    /// Reads `dir/<segment>.sig`; `Ok(None)` when there is none.
    ///
    /// # Errors
    /// [`LedgerError::Io`] reading it (a symlink is refused: it could point
    /// anywhere); [`LedgerError::Input`] when it is not a signature file.
    pub fn read(dir: &Path, segment: &str) -> Result<Option<SegmentSignature>, LedgerError> {
        let path = Self::path_for(dir, segment);
        match fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(LedgerError::io("read", &path)(e)),
            Ok(meta) if !meta.is_file() => {
                return Err(LedgerError::Input {
                    entry: 0,
                    reason: format!("{} is not a regular file (a symlink?)", path.display()),
                });
            }
            Ok(_) => {}
        }
        let text = fs::read_to_string(&path).map_err(LedgerError::io("read", &path))?;
        SegmentSignature::parse(&text)
            .map(Some)
            .map_err(|why| LedgerError::Input {
                entry: 0,
                reason: format!("{} is not a segment signature file: {why}", path.display()),
            })
    }

    /// Writes `dir/<segment>.sig` atomically (a temporary file, synced, then
    /// renamed over the old one), so a crash leaves the old or the new file.
    ///
    /// # Errors
    /// [`LedgerError::Io`].
    pub fn write(&self, dir: &Path) -> Result<PathBuf, LedgerError> {
        let path = Self::path_for(dir, &self.head.segment);
        let tmp = dir.join(format!(
            ".{}{SIGNATURE_SUFFIX}.tmp-{}",
            self.head.segment,
            std::process::id()
        ));
        let result = (|| {
            let mut file = fs::File::create(&tmp)?;
            file.write_all(self.file_text().as_bytes())?;
            file.sync_data()?;
            fs::rename(&tmp, &path)
        })();
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp);
            return Err(LedgerError::io("write", &path)(e));
        }
        Ok(path)
    }
}

/// SSHSIG namespace of segment signatures.
pub const LEDGER_NAMESPACE: &str = "vnx-ledger";
/// SSHSIG namespace of approval signatures.
pub const APPROVAL_NAMESPACE: &str = "vnx-approval";

/// The message an approval's signature covers: the RFC 8785 canonical JSON
/// of the `approval` record's body without its `signature` member.
///
/// # Errors
/// When the body cannot be serialized (never for a JSON object).
pub fn approval_message(body: &serde_json::Value) -> Result<Vec<u8>, serde_json::Error> {
    let mut unsigned = body.clone();
    if let Some(object) = unsigned.as_object_mut() {
        object.remove("signature");
    }
    crate::canonical::to_canonical_vec(&unsigned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head() -> SegmentHead {
        SegmentHead {
            ledger_id: "0123456789abcdef0123456789abcdef".into(),
            segment: "alice@host--vnx_d-1.ndjson".into(),
            records: 2,
            head: "ab".repeat(32),
        }
    }

    #[test]
    fn a_signature_file_round_trips_and_its_message_is_the_first_five_lines() {
        let sig = SegmentSignature {
            head: head(),
            armored: "-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----\n".into(),
        };
        let text = sig.file_text();
        assert!(text.starts_with(&sig.head.message()));
        assert_eq!(sig.head.message().lines().count(), 5);
        assert_eq!(SegmentSignature::parse(&text).as_ref(), Ok(&sig));
    }

    #[test]
    fn malformed_signature_files_are_refused_with_the_reason() {
        let good = SegmentSignature {
            head: head(),
            armored: "-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----\n".into(),
        }
        .file_text();
        for (bad, why) in [
            (good.replacen("v1", "v2", 1), "first line"),
            (good.replacen("records 2", "records 02", 1), "records"),
            (good.replacen("records 2", "records 0", 1), "records"),
            (good.replacen(&"ab".repeat(32), &"AB".repeat(32), 1), "head"),
            (good.replacen("\n\n", "\n", 1), "empty line"),
            (
                good.replacen("segment alice", "segment ../alice", 1),
                "segment",
            ),
        ] {
            let err = SegmentSignature::parse(&bad).expect_err(why);
            assert!(err.contains(why), "{why}: {err}");
        }
    }

    #[test]
    fn check_names_what_does_not_match() {
        let h = head();
        let hashes = vec!["00".repeat(32), "ab".repeat(32), "cd".repeat(32)];
        assert_eq!(h.check(&h.ledger_id, &h.segment, &hashes), Ok(()));
        let other = h.check("f".repeat(32).as_str(), &h.segment, &hashes);
        assert!(other.unwrap_err().contains("ledger"));
        let moved = h.check(&h.ledger_id, "bob--main.ndjson", &hashes);
        assert!(moved.unwrap_err().contains("copied"));
        let short = h.check(&h.ledger_id, &h.segment, &hashes[..1]);
        assert!(short.unwrap_err().contains("has 1"));
        let mut edited = hashes.clone();
        edited[1] = "ee".repeat(32);
        assert!(
            h.check(&h.ledger_id, &h.segment, &edited)
                .unwrap_err()
                .contains("rewritten")
        );
    }
}
