//! Conformance vectors in `ledger/vectors/`: ledgers, valid and invalid, each
//! with `<name>.expected.json` giving the verdict and the findings an
//! independent verifier must report (segment, line, reason).
//!
//! The vectors are generated here deterministically (fixed clock and ledger
//! ids). The test fails when the committed vectors differ from what the
//! generator produces; run with `VNX_UPDATE_VECTORS=1` to rewrite them. It then
//! verifies every committed vector and compares with its expectations.

// Helpers outside #[test] functions may panic on setup failures.
#![allow(clippy::unwrap_used, clippy::format_collect)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::*;
use serde_json::{Value, json};
use vnx_ledger::{
    Checkpoint, Clock, Ledger, NewRecord, VerifyOptions, take_checkpoint, verify_paths,
};

#[derive(Default)]
struct Expect {
    description: &'static str,
    findings: Vec<(&'static str, u64, &'static str)>,
    checkpoint: bool,
    /// Verify only past the checkpoint (`--since-checkpoint`).
    since: bool,
    /// What to verify, relative to the vectors directory, when not the
    /// vector's directory itself.
    target: Option<String>,
    /// A conforming verifier must refuse to verify (an error, not findings).
    refused: bool,
}

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ledger/vectors")
}

fn base(dir: &Path) -> Ledger {
    build(dir, ID_A, SEGMENT, 12)
}

fn edit_lines(dir: &Path, f: impl FnOnce(&mut Vec<Vec<u8>>)) {
    let mut all = lines(&seg(dir));
    f(&mut all);
    write_lines(&seg(dir), &all);
}

const S: &str = SEGMENT;

/// Builds one vector into `dir` and says what verifying it must find.
fn generate(name: &str, dir: &Path) -> Expect {
    let e = |description, findings| Expect {
        description,
        findings,
        ..Default::default()
    };
    let with_checkpoint = |dir: &Path, file: &str| {
        let mut cp = take_checkpoint(dir).unwrap().0.unwrap();
        cp.created = "2026-11-21T12:00:00.000Z".into();
        std::fs::write(dir.with_file_name(file), cp.to_bytes()).unwrap();
    };
    match name {
        "valid-basic" => {
            base(dir);
            e(
                "genesis, notes, dispatch.started, dispatch.receipt and an extension kind",
                vec![],
            )
        }
        "valid-two-segments" => {
            base(dir);
            build(dir, ID_A, "bob@desk--feature_x.ndjson", 3);
            e("two writers' segments in one ledger", vec![])
        }
        "valid-after-repair" => {
            let ledger = base(dir);
            let mut bytes = std::fs::read(seg(dir)).unwrap();
            bytes.extend_from_slice(br#"{"hash":"9a","rec"#);
            std::fs::write(seg(dir), bytes).unwrap();
            ledger.repair(SEGMENT).unwrap();
            e(
                "a torn tail moved to a quarantine file and recorded by a repair record",
                vec![],
            )
        }
        "warn-foreign-file" => {
            base(dir);
            std::fs::write(dir.join("notes.txt"), "not a segment\n").unwrap();
            e(
                "a foreign file is a warning: valid, but not with --strict",
                vec![("notes.txt", 0, "foreign_file")],
            )
        }
        "invalid-edited-body" => {
            base(dir);
            edit_lines(dir, |l| {
                let s = String::from_utf8(l[5].clone())
                    .unwrap()
                    .replace("note 5", "note 6");
                l[5] = s.into_bytes();
            });
            e(
                "a body value changed; the stored hash no longer matches",
                vec![(S, 6, "edited")],
            )
        }
        "invalid-edited-hash" => {
            base(dir);
            edit_lines(dir, |l| {
                l[3][20] = if l[3][20] == b'0' { b'1' } else { b'0' }
            });
            e(
                "one hex digit of a stored hash changed",
                vec![(S, 4, "edited")],
            )
        }
        "invalid-rehashed-edit" => {
            base(dir);
            rehash_edit(&seg(dir), 5, |r| r["body"]["text"] = json!("forged"));
            e(
                "a record rewritten with its hash recomputed: the next record no longer links to it",
                vec![(S, 6, "edited")],
            )
        }
        "invalid-deleted" => {
            base(dir);
            edit_lines(dir, |l| {
                l.remove(5);
            });
            e("record seq 5 deleted", vec![(S, 6, "deleted_or_reordered")])
        }
        "invalid-deleted-genesis" => {
            base(dir);
            edit_lines(dir, |l| {
                l.remove(0);
            });
            e(
                "the genesis record deleted",
                vec![(S, 1, "deleted_or_reordered")],
            )
        }
        "invalid-reordered" => {
            base(dir);
            edit_lines(dir, |l| l.swap(5, 6));
            e(
                "records seq 5 and 6 swapped",
                vec![(S, 6, "deleted_or_reordered")],
            )
        }
        "invalid-duplicated" => {
            base(dir);
            edit_lines(dir, |l| {
                let c = l[5].clone();
                l.insert(6, c);
            });
            e("record seq 5 appears twice", vec![(S, 7, "duplicated")])
        }
        "invalid-torn-tail" => {
            base(dir);
            let mut bytes = std::fs::read(seg(dir)).unwrap();
            bytes.extend_from_slice(br#"{"hash":"9a","rec"#);
            std::fs::write(seg(dir), bytes).unwrap();
            e(
                "an append cut short: the last line has no newline",
                vec![(S, 14, "torn_tail")],
            )
        }
        "invalid-truncated" => {
            base(dir);
            with_checkpoint(dir, "invalid-truncated.checkpoint.json");
            edit_lines(dir, |l| l.truncate(10));
            Expect {
                description: "the last three records cut after a checkpoint (verify with --checkpoint)",
                findings: vec![(S, 0, "truncated")],
                checkpoint: true,
                ..Default::default()
            }
        }
        "invalid-spliced-record" => {
            base(dir);
            let other = dir.with_file_name(".tmp-other");
            build(&other, ID_B, SEGMENT, 12);
            let foreign = lines(&seg(&other))[5].clone();
            std::fs::remove_dir_all(&other).unwrap();
            edit_lines(dir, |l| l.insert(5, foreign));
            e(
                "a record from another ledger inserted",
                vec![(S, 6, "spliced")],
            )
        }
        "invalid-spliced-segment" => {
            base(dir);
            let other = dir.with_file_name(".tmp-other");
            build(&other, ID_B, "bob@desk--main.ndjson", 3);
            std::fs::copy(
                other.join("bob@desk--main.ndjson"),
                dir.join("bob@desk--main.ndjson"),
            )
            .unwrap();
            std::fs::remove_dir_all(&other).unwrap();
            e(
                "a whole segment copied from another ledger",
                vec![("bob@desk--main.ndjson", 1, "spliced")],
            )
        }
        "invalid-renamed-segment" => {
            base(dir);
            std::fs::rename(seg(dir), dir.join("mallory@x--main.ndjson")).unwrap();
            e(
                "a segment renamed: its genesis names another file",
                vec![("mallory@x--main.ndjson", 1, "spliced")],
            )
        }
        "invalid-not-canonical-whitespace" => {
            base(dir);
            edit_lines(dir, |l| {
                let s = String::from_utf8(l[5].clone()).unwrap().replacen(
                    "\"body\":{",
                    "\"body\": {",
                    1,
                );
                l[5] = s.into_bytes();
            });
            e(
                "a space inserted after a colon, hash not recomputed: a line gets one finding, not_canonical before edited",
                vec![(S, 6, "not_canonical")],
            )
        }
        "invalid-not-canonical-escape" => {
            base(dir);
            edit_lines(dir, |l| {
                let s = String::from_utf8(l[5].clone()).unwrap();
                let split = vnx_ledger::record::split_line(&s.as_bytes()[..s.len() - 1]).unwrap();
                let record = String::from_utf8(split.record.to_vec()).unwrap().replacen(
                    "note",
                    "\\u006eote",
                    1,
                );
                l[5] = vnx_ledger::record::build_line(record.as_bytes()).1;
            });
            e(
                "a character escaped that RFC 8785 writes raw, hash recomputed",
                vec![(S, 6, "not_canonical")],
            )
        }
        "invalid-float" => {
            base(dir);
            rehash_edit(&seg(dir), 3, |r| r["body"]["n"] = json!(1.5));
            e(
                "a float in an extension record, hash recomputed",
                vec![(S, 4, "not_canonical")],
            )
        }
        "invalid-unknown-kind" => {
            base(dir);
            rehash_edit(&seg(dir), 5, |r| r["kind"] = json!("dispatch.finished"));
            e(
                "a kind the format does not define, hash recomputed",
                vec![(S, 6, "schema")],
            )
        }
        "invalid-receipt-schema" => {
            base(dir);
            rehash_edit(&seg(dir), 4, |r| r["body"]["status"] = json!("great"));
            e(
                "a receipt with an unknown status, hash recomputed; its dispatch (started on line 3) now has no valid receipt",
                vec![(S, 3, "orphan"), (S, 5, "schema")],
            )
        }
        "invalid-malformed" => {
            base(dir);
            replace_raw(&seg(dir), 5, b"{\"hash\":");
            e("a line that is not JSON", vec![(S, 6, "malformed")])
        }
        "invalid-not-utf8" => {
            base(dir);
            edit_lines(dir, |l| l[5][120] = 0xff);
            e("a byte that is not UTF-8", vec![(S, 6, "malformed")])
        }
        "invalid-empty-segment" => {
            base(dir);
            std::fs::write(dir.join("carol@pc--main.ndjson"), b"").unwrap();
            e(
                "an empty segment file, without its genesis record",
                vec![("carol@pc--main.ndjson", 0, "empty")],
            )
        }
        "valid-depth-64" => {
            let ledger = base(dir);
            // The record is level 1 and its body level 2: 62 arrays inside
            // the body reach level 64, the deepest allowed.
            let body = format!("{{\"d\":{}{}}}", "[".repeat(62), "]".repeat(62));
            let record = NewRecord {
                kind: "x.depth.test".into(),
                body: serde_json::from_str(&body).unwrap(),
            };
            ledger.append(SEGMENT, &[record]).unwrap();
            e(
                "a record nested exactly 64 levels deep, counting the record itself as level 1",
                vec![],
            )
        }
        "invalid-depth-65" => {
            base(dir);
            rehash_edit(&seg(dir), 3, |r| {
                let body = format!("{{\"d\":{}{}}}", "[".repeat(63), "]".repeat(63));
                r["body"] = serde_json::from_str(&body).unwrap();
            });
            e(
                "a record nested 65 levels deep (record = level 1), hash recomputed",
                vec![(S, 4, "not_canonical")],
            )
        }
        "invalid-bom" => {
            base(dir);
            edit_lines(dir, |l| {
                l[0].splice(0..0, [0xef, 0xbb, 0xbf]).for_each(drop);
            });
            e(
                "a UTF-8 byte order mark before the first line: not JSON, so malformed; the next line re-anchors the chain",
                vec![(S, 1, "malformed")],
            )
        }
        "invalid-crlf" => {
            base(dir);
            edit_lines(dir, |l| {
                let at = l[5].len() - 1;
                l[5].insert(at, b'\r');
            });
            e(
                "a line ending in \\r\\n: JSON (\\r is whitespace), but not the layout",
                vec![(S, 6, "not_canonical")],
            )
        }
        "invalid-blank-line" => {
            base(dir);
            edit_lines(dir, |l| l.insert(5, b"\n".to_vec()));
            e(
                "an empty line between two records: not JSON; the chain re-anchors after it",
                vec![(S, 6, "malformed")],
            )
        }
        "invalid-uppercase-hash" => {
            base(dir);
            edit_lines(dir, |l| {
                let s = String::from_utf8(l[5].clone()).unwrap();
                let (head, rest) = s.split_at(9 + 64);
                l[5] = format!("{}{rest}", head.to_uppercase()).into_bytes();
            });
            e(
                "a stored hash in uppercase hex: not the layout, so no record is read from the line",
                vec![(S, 6, "not_canonical")],
            )
        }
        "invalid-layout-order" => {
            base(dir);
            edit_lines(dir, |l| {
                let line = &l[5];
                let split = vnx_ledger::record::split_line(&line[..line.len() - 1]).unwrap();
                let record = String::from_utf8(split.record.to_vec()).unwrap();
                let hash = vnx_ledger::record::to_hex(&split.stored_hash);
                l[5] = format!("{{\"record\":{record},\"hash\":\"{hash}\"}}\n").into_bytes();
            });
            e(
                "the line's two members swapped: JSON, not the layout, and the hashed region is not searched for",
                vec![(S, 6, "not_canonical")],
            )
        }
        "invalid-extension-body-space" => {
            base(dir);
            edit_lines(dir, |l| {
                let line = &l[3];
                let split = vnx_ledger::record::split_line(&line[..line.len() - 1]).unwrap();
                let record = String::from_utf8(split.record.to_vec()).unwrap().replacen(
                    "\"body\":{",
                    "\"body\": {",
                    1,
                );
                l[3] = vnx_ledger::record::build_line(record.as_bytes()).1;
            });
            e(
                "a space after \"body\": in an extension record, hash recomputed: not canonical (not a schema error)",
                vec![(S, 4, "not_canonical")],
            )
        }
        "invalid-note-schema" => {
            base(dir);
            rehash_edit(&seg(dir), 5, |r| r["body"]["author"] = json!(7));
            e(
                "a note whose author is a number, not a string (note.schema.json), hash recomputed",
                vec![(S, 6, "schema")],
            )
        }
        "invalid-repair-schema" => {
            let ledger = base(dir);
            let mut bytes = std::fs::read(seg(dir)).unwrap();
            bytes.extend_from_slice(br#"{"hash":"9a","rec"#);
            std::fs::write(seg(dir), bytes).unwrap();
            ledger.repair(SEGMENT).unwrap();
            rehash_edit(&seg(dir), 13, |r| r["body"]["torn_bytes"] = json!("17"));
            e(
                "a repair record whose torn_bytes is a string, not an integer (repair.schema.json), hash recomputed",
                vec![(S, 14, "schema")],
            )
        }
        "invalid-ts-calendar" => {
            base(dir);
            rehash_edit(&seg(dir), 5, |r| {
                r["ts"] = json!("2026-02-30T12:00:00.000Z");
            });
            e(
                "a ts on 30 February, hash recomputed",
                vec![(S, 6, "schema")],
            )
        }
        "invalid-ts-leap-second-midday" => {
            base(dir);
            rehash_edit(&seg(dir), 5, |r| {
                r["ts"] = json!("2026-11-21T12:00:60.000Z");
            });
            e(
                "a ts with second 60 other than at 23:59:60, hash recomputed",
                vec![(S, 6, "schema")],
            )
        }
        "valid-leap-second" => {
            let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
                .unwrap()
                .and_hms_milli_opt(23, 59, 59, 1000)
                .unwrap()
                .and_utc();
            let ledger = ledger_with_id(dir, ID_A).with_clock(Clock::Fixed(leap));
            ledger.append(SEGMENT, &[record_for(1)]).unwrap();
            e(
                "records written during the leap second 2016-12-31T23:59:60.000Z",
                vec![],
            )
        }
        "invalid-edited-prev" => {
            base(dir);
            edit_lines(dir, |l| {
                let at = l[5].windows(8).position(|w| w == b"\"prev\":\"").unwrap() + 8;
                l[5][at] = if l[5][at] == b'0' { b'1' } else { b'0' };
            });
            e(
                "one hex digit of a record's prev changed, hash not recomputed: only that line is edited, its untouched predecessor is not blamed",
                vec![(S, 6, "edited")],
            )
        }
        "invalid-moved-back" => {
            base(dir);
            edit_lines(dir, |l| {
                let moved = l.remove(5);
                l.insert(9, moved);
            });
            e(
                "record seq 5 moved four lines later: the line where it is missing and the line it moved to, both deleted_or_reordered (not spliced)",
                vec![
                    (S, 6, "deleted_or_reordered"),
                    (S, 10, "deleted_or_reordered"),
                ],
            )
        }
        "warn-unbound-segment" => {
            build(dir, ID_A, SEGMENT, 4);
            std::fs::remove_file(dir.join("ledger.json")).unwrap();
            Expect {
                description: "a segment file verified on its own, with no ledger.json beside it",
                findings: vec![(S, 0, "unbound")],
                target: Some(format!("warn-unbound-segment/{SEGMENT}")),
                ..Default::default()
            }
        }
        "refused-no-manifest" => {
            build(dir, ID_A, SEGMENT, 4);
            std::fs::remove_file(dir.join("ledger.json")).unwrap();
            Expect {
                description: "a directory without ledger.json is not a ledger: verification is refused",
                refused: true,
                ..Default::default()
            }
        }
        "invalid-manifest-not-canonical" => {
            base(dir);
            std::fs::write(
                dir.join("ledger.json"),
                format!("{{\"format\": \"vnx-ledger\", \"ledger_id\": \"{ID_A}\", \"v\": 1}}\n"),
            )
            .unwrap();
            e(
                "ledger.json with spaces: the manifest must be its canonical bytes; no segment is verified",
                vec![("ledger.json", 0, "manifest")],
            )
        }
        "invalid-manifest-malformed" => {
            base(dir);
            std::fs::write(dir.join("ledger.json"), "{\"format\":\"vnx-ledger\"\n").unwrap();
            e(
                "ledger.json that is not JSON",
                vec![("ledger.json", 0, "manifest")],
            )
        }
        "warn-foreign-names" => {
            base(dir);
            let quarantine = format!("{SEGMENT}.quarantine-20261121T120000000Z");
            std::fs::write(dir.join(quarantine), b"torn").unwrap();
            std::fs::write(dir.join(format!("{SEGMENT}.quarantine-yesterday")), b"torn").unwrap();
            std::fs::write(dir.join("NOTES.MD"), b"# notes\n").unwrap();
            std::fs::write(dir.join(".gitattributes"), b"*.ndjson -diff\n").unwrap();
            std::fs::create_dir(dir.join("archive")).unwrap();
            std::fs::write(dir.join("archive/old.ndjson"), b"not verified\n").unwrap();
            std::fs::write(dir.join("a b.ndjson"), b"").unwrap();
            e(
                "ignored: a quarantine file, *.md in any case, hidden files, subdirectories; foreign: a quarantine name without its timestamp, a segment name with a space",
                vec![
                    ("a b.ndjson", 0, "foreign_file"),
                    (
                        "alice@laptop--main.ndjson.quarantine-yesterday",
                        0,
                        "foreign_file",
                    ),
                ],
            )
        }
        "invalid-symlinked-segment" => {
            base(dir);
            std::os::unix::fs::symlink(SEGMENT, dir.join("bob@desk--main.ndjson")).unwrap();
            e(
                "a segment that is a symbolic link (here to another segment): reported, never followed",
                vec![("bob@desk--main.ndjson", 0, "symlink")],
            )
        }
        "invalid-truncated-deleted" => {
            base(dir);
            with_checkpoint(dir, "invalid-truncated-deleted.checkpoint.json");
            edit_lines(dir, |l| {
                l.remove(5);
            });
            Expect {
                description: "a middle record deleted after a checkpoint: truncated, and the deleted line as without a checkpoint",
                findings: vec![(S, 0, "truncated"), (S, 6, "deleted_or_reordered")],
                checkpoint: true,
                ..Default::default()
            }
        }
        "invalid-truncated-deleted-since" => {
            base(dir);
            with_checkpoint(dir, "invalid-truncated-deleted-since.checkpoint.json");
            edit_lines(dir, |l| {
                l.remove(5);
            });
            Expect {
                description: "the same with --since-checkpoint: a broken prefix is verified in full",
                findings: vec![(S, 0, "truncated"), (S, 6, "deleted_or_reordered")],
                checkpoint: true,
                since: true,
                ..Default::default()
            }
        }
        "invalid-rewritten-since" => {
            base(dir);
            with_checkpoint(dir, "invalid-rewritten-since.checkpoint.json");
            rehash_edit(&seg(dir), 12, |r| {
                r["body"]["model"] = json!("claude-sonnet-4-6");
            });
            Expect {
                description: "the checkpointed head rewritten and re-hashed, verified --since-checkpoint: rewritten, on line 0",
                findings: vec![(S, 0, "rewritten")],
                checkpoint: true,
                since: true,
                ..Default::default()
            }
        }
        "warn-orphan-since-checkpoint" => {
            let ledger = base(dir);
            with_checkpoint(dir, "warn-orphan-since-checkpoint.checkpoint.json");
            ledger.append(SEGMENT, &[record_for(14)]).unwrap();
            Expect {
                description: "a dispatch.started past the checkpoint with no receipt in the verified bytes is an orphan",
                findings: vec![(S, 14, "orphan")],
                checkpoint: true,
                since: true,
                ..Default::default()
            }
        }
        "refused-checkpoint-other-ledger" => {
            let other = dir.with_file_name(".tmp-other");
            build(&other, ID_B, SEGMENT, 12);
            with_checkpoint(&other, "refused-checkpoint-other-ledger.checkpoint.json");
            std::fs::remove_dir_all(&other).unwrap();
            base(dir);
            Expect {
                description: "a checkpoint taken of another ledger: verification is refused",
                checkpoint: true,
                refused: true,
                ..Default::default()
            }
        }
        "invalid-many-findings" => {
            base(dir);
            build(dir, ID_A, "bob@desk--main.ndjson", 4);
            edit_lines(dir, |l| {
                let s = String::from_utf8(l[5].clone())
                    .unwrap()
                    .replace("note 5", "note 6");
                l[5] = s.into_bytes();
            });
            let bob = dir.join("bob@desk--main.ndjson");
            let mut all = lines(&bob);
            all.remove(2);
            write_lines(&bob, &all);
            std::fs::write(dir.join("notes.txt"), b"x\n").unwrap();
            e(
                "findings in report order: by file name, then line, then reason",
                vec![
                    (S, 6, "edited"),
                    ("bob@desk--main.ndjson", 3, "deleted_or_reordered"),
                    ("notes.txt", 0, "foreign_file"),
                ],
            )
        }
        other => panic!("unknown vector {other}"),
    }
}

const NAMES: &[&str] = &[
    "valid-basic",
    "valid-two-segments",
    "valid-after-repair",
    "warn-foreign-file",
    "invalid-edited-body",
    "invalid-edited-hash",
    "invalid-rehashed-edit",
    "invalid-deleted",
    "invalid-deleted-genesis",
    "invalid-reordered",
    "invalid-duplicated",
    "invalid-torn-tail",
    "invalid-truncated",
    "invalid-spliced-record",
    "invalid-spliced-segment",
    "invalid-renamed-segment",
    "invalid-not-canonical-whitespace",
    "invalid-not-canonical-escape",
    "invalid-float",
    "invalid-unknown-kind",
    "invalid-receipt-schema",
    "invalid-malformed",
    "invalid-not-utf8",
    "invalid-empty-segment",
    "valid-depth-64",
    "invalid-depth-65",
    "invalid-bom",
    "invalid-crlf",
    "invalid-blank-line",
    "invalid-uppercase-hash",
    "invalid-layout-order",
    "invalid-extension-body-space",
    "invalid-note-schema",
    "invalid-repair-schema",
    "invalid-ts-calendar",
    "invalid-ts-leap-second-midday",
    "valid-leap-second",
    "invalid-edited-prev",
    "invalid-moved-back",
    "warn-unbound-segment",
    "refused-no-manifest",
    "invalid-manifest-not-canonical",
    "invalid-manifest-malformed",
    "warn-foreign-names",
    "invalid-symlinked-segment",
    "invalid-truncated-deleted",
    "invalid-truncated-deleted-since",
    "invalid-rewritten-since",
    "warn-orphan-since-checkpoint",
    "refused-checkpoint-other-ledger",
    "invalid-many-findings",
];

fn expected_json(name: &str, e: &Expect) -> Value {
    let findings: Vec<Value> = e
        .findings
        .iter()
        .map(|(s, line, reason)| json!({"file": s, "line": line, "reason": reason}))
        .collect();
    let warning = |r: &str| matches!(r, "foreign_file" | "unbound" | "orphan");
    let errors = e.findings.iter().any(|(_, _, r)| !warning(r));
    let mut v = if e.refused {
        json!({"description": e.description, "refused": true})
    } else {
        json!({
            "description": e.description,
            "ok": !errors,
            "ok_strict": e.findings.is_empty(),
            "findings": findings,
        })
    };
    if e.checkpoint {
        v["checkpoint"] = json!(format!("{name}.checkpoint.json"));
    }
    if e.since {
        v["since_checkpoint"] = json!(true);
    }
    if let Some(target) = &e.target {
        v["verify"] = json!(target);
    }
    v
}

/// All files under `dir` (relative path → bytes).
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_symlink() {
            let target = std::fs::read_link(&path).unwrap();
            let mut link = b"symlink to ".to_vec();
            link.extend_from_slice(target.as_os_str().as_encoded_bytes());
            out.insert(name, link);
        } else if path.is_dir() {
            for (k, v) in snapshot(&path) {
                out.insert(format!("{name}/{k}"), v);
            }
        } else {
            out.insert(name, std::fs::read(&path).unwrap());
        }
    }
    out
}

fn generate_all(into: &Path) {
    for name in NAMES {
        let dir = into.join(name);
        let expect = generate(name, &dir);
        let mut text = serde_json::to_string_pretty(&expected_json(name, &expect)).unwrap();
        text.push('\n');
        std::fs::write(into.join(format!("{name}.expected.json")), text).unwrap();
    }
}

#[test]
fn committed_vectors_are_what_the_generator_produces() {
    let committed = vectors_dir();
    if std::env::var_os("VNX_UPDATE_VECTORS").is_some() {
        for name in NAMES {
            let _ = std::fs::remove_dir_all(committed.join(name));
        }
        generate_all(&committed);
    }
    let tmp = tempfile::tempdir().unwrap();
    generate_all(tmp.path());
    let mut fresh = snapshot(tmp.path());
    let mut have = snapshot(&committed);
    have.remove("README.md");
    fresh.retain(|k, _| !k.starts_with(".tmp"));
    let stale: Vec<&String> = fresh
        .keys()
        .filter(|k| have.get(*k) != fresh.get(*k))
        .chain(have.keys().filter(|k| !fresh.contains_key(*k)))
        .collect();
    assert!(
        stale.is_empty(),
        "stale vectors {stale:?}: run `VNX_UPDATE_VECTORS=1 cargo test -p vnx-ledger --test vectors`"
    );
}

#[test]
fn every_vector_verifies_as_expected() {
    let dir = vectors_dir();
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let Some(name) = path
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .strip_suffix(".expected.json")
        else {
            continue;
        };
        count += 1;
        let expected: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let checkpoint = expected
            .get("checkpoint")
            .map(|c| Checkpoint::read(&dir.join(c.as_str().unwrap())).unwrap());
        let target = expected
            .get("verify")
            .map_or_else(|| dir.join(name), |t| dir.join(t.as_str().unwrap()));
        for strict in [false, true] {
            let options = VerifyOptions {
                strict,
                checkpoint: checkpoint.clone(),
                since_checkpoint: expected.get("since_checkpoint").is_some(),
                ..Default::default()
            };
            let result = verify_paths(std::slice::from_ref(&target), &options);
            if expected.get("refused").is_some() {
                assert!(result.is_err(), "{name}: must be refused");
                continue;
            }
            let report = result.unwrap();
            let key = if strict { "ok_strict" } else { "ok" };
            assert_eq!(report.ok, expected[key].as_bool().unwrap(), "{name}: {key}");
            let got: Vec<Value> = report
                .all_findings()
                .map(|f| json!({"file": f.path.file_name().unwrap().to_string_lossy(), "line": f.line, "reason": f.reason}))
                .collect();
            assert_eq!(Value::Array(got), expected["findings"], "{name}");
        }
    }
    assert_eq!(count, NAMES.len(), "every vector has an expectation");
}
