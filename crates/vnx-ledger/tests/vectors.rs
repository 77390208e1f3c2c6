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
use vnx_ledger::{Checkpoint, Ledger, VerifyOptions, take_checkpoint, verify_paths};

struct Expect {
    description: &'static str,
    findings: Vec<(&'static str, u64, &'static str)>,
    checkpoint: bool,
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
        checkpoint: false,
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
            let mut cp = take_checkpoint(dir).unwrap().0.unwrap();
            cp.created = "2026-11-21T12:00:00.000Z".into();
            std::fs::write(
                dir.with_file_name("invalid-truncated.checkpoint.json"),
                cp.to_bytes(),
            )
            .unwrap();
            edit_lines(dir, |l| l.truncate(10));
            Expect {
                description: "the last three records cut after a checkpoint (verify with --checkpoint)",
                findings: vec![(S, 0, "truncated")],
                checkpoint: true,
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
                "a space inserted after a colon",
                vec![(S, 6, "not_canonical"), (S, 6, "edited")],
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
                vec![(S, 5, "schema"), (S, 3, "orphan")],
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
];

fn expected_json(name: &str, e: &Expect) -> Value {
    let findings: Vec<Value> = e
        .findings
        .iter()
        .map(|(s, line, reason)| json!({"file": s, "line": line, "reason": reason}))
        .collect();
    let errors = e.findings.iter().any(|(_, _, r)| *r != "foreign_file");
    let mut v = json!({
        "description": e.description,
        "ok": !errors,
        "ok_strict": e.findings.is_empty(),
        "findings": findings,
    });
    if e.checkpoint {
        v["checkpoint"] = json!(format!("{name}.checkpoint.json"));
    }
    v
}

/// All files under `dir` (relative path → bytes).
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
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
        for strict in [false, true] {
            let options = VerifyOptions {
                strict,
                checkpoint: checkpoint.clone(),
                ..Default::default()
            };
            let report = verify_paths(&[dir.join(name)], &options).unwrap();
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
