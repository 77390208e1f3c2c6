//! The tamper matrix: every kind of change to a ledger is detected, with the
//! right reason on the right line.

// Helpers outside #[test] functions may panic on setup failures.
#![allow(clippy::unwrap_used, clippy::format_collect)]

mod common;

use common::*;
use serde_json::json;
use vnx_ledger::{Checkpoint, LedgerError, NewRecord, Reason, VerifyOptions, take_checkpoint};

const N: u64 = 40;

fn setup() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ledger");
    build(&dir, ID_A, SEGMENT, N);
    (tmp, dir)
}

/// The first error finding (an orphan warning may come before it).
fn first(dir: &std::path::Path) -> (u64, Reason) {
    let (ok, findings) = found(dir, &VerifyOptions::default());
    assert!(!ok, "tampering went undetected");
    findings
        .into_iter()
        .find(|(_, r)| r.severity() == vnx_ledger::Severity::Error)
        .unwrap()
}

#[test]
fn an_untouched_ledger_verifies() {
    let (_tmp, dir) = setup();
    let (ok, findings) = found(&dir, &VerifyOptions::default());
    assert!(ok, "{findings:?}");
    assert!(findings.is_empty());
    assert_eq!(lines(&seg(&dir)).len() as u64, N + 1);
}

/// Flips one byte at a position found by `locate` in line 13 (a receipt) and
/// returns the first finding.
fn flip(locate: impl Fn(&[u8]) -> usize, replacement: u8) -> (u64, Reason) {
    let (_tmp, dir) = setup();
    let path = seg(&dir);
    let mut all = lines(&path);
    let line = &mut all[12];
    let at = locate(line);
    assert_ne!(line[at], replacement, "the flip must change the byte");
    line[at] = replacement;
    write_lines(&path, &all);
    first(&dir)
}

fn after(pattern: &'static str) -> impl Fn(&[u8]) -> usize {
    move |line: &[u8]| {
        let p = pattern.as_bytes();
        line.windows(p.len()).position(|w| w == p).unwrap() + p.len()
    }
}

#[test]
fn one_flipped_byte_in_each_kind_of_position_is_detected_on_its_line() {
    // Line 13 holds seq 12, a dispatch.receipt.
    assert_eq!(
        flip(after("{\"hash\":\""), b'g'),
        (13, Reason::NotCanonical),
        "hash: non-hex char"
    );
    assert_eq!(
        flip(|l| after("{\"hash\":\"")(l) + 5, b'x'),
        (13, Reason::NotCanonical)
    );
    // A different hex digit in the stored hash.
    let (line, reason) = {
        let (_tmp, dir) = setup();
        let path = seg(&dir);
        let mut all = lines(&path);
        let at = after("{\"hash\":\"")(&all[12]);
        all[12][at] = if all[12][at] == b'a' { b'b' } else { b'a' };
        write_lines(&path, &all);
        first(&dir)
    };
    assert_eq!((line, reason), (13, Reason::Edited), "stored hash digit");
    // A change that also breaks the schema is reported as schema: a line
    // gets one finding, the first of malformed, not canonical, schema, edited.
    assert_eq!(
        flip(|l| after("\"prev\":\"")(l), b'z'),
        (13, Reason::Schema),
        "prev"
    );
    assert_eq!(
        flip(|l| after("\"seq\":")(l), b'9'),
        (13, Reason::Edited),
        "seq digit"
    );
    assert_eq!(
        flip(|l| after("\"ts\":\"2026-11-2")(l), b'2'),
        (13, Reason::Edited),
        "timestamp"
    );
    assert_eq!(
        flip(|l| after("\"kind\":\"dispatch.")(l), b'x'),
        (13, Reason::Schema),
        "kind"
    );
    assert_eq!(
        flip(|l| after("\"dispatch_")(l), b'J'),
        (13, Reason::Schema),
        "body key"
    );
    assert_eq!(
        flip(|l| after("\"model\":\"claude-")(l), b'X'),
        (13, Reason::Edited),
        "string value"
    );
    assert_eq!(
        flip(|l| after("\"cost_usd_micros\":")(l) + 1, b'7'),
        (13, Reason::Edited),
        "integer"
    );
    assert_eq!(
        flip(|l| after("\"status\"")(l), b';'),
        (13, Reason::Malformed),
        "structural ':'"
    );
    assert_eq!(
        flip(|l| after("\"origin\":")(l) - 1, b'\''),
        (13, Reason::Malformed),
        "quote"
    );
    assert_eq!(
        flip(|l| l.len() - 1, b' '),
        (13, Reason::Malformed),
        "newline joins two lines"
    );
    assert_eq!(
        flip(|l| after("\"duration_ms\":")(l), 0xff),
        (13, Reason::Malformed),
        "invalid UTF-8"
    );
}

#[test]
fn deleting_a_record_is_detected_where_the_gap_is() {
    let (_tmp, dir) = setup();
    let path = seg(&dir);
    let mut all = lines(&path);
    all.remove(21); // a note; deleting a receipt would also orphan its dispatch
    write_lines(&path, &all);
    let (ok, findings) = found(&dir, &VerifyOptions::default());
    assert!(!ok);
    assert_eq!(findings, vec![(22, Reason::DeletedOrReordered)]);
}

#[test]
fn deleting_the_genesis_record_is_detected_on_line_one() {
    let (_tmp, dir) = setup();
    let path = seg(&dir);
    let mut all = lines(&path);
    all.remove(0);
    write_lines(&path, &all);
    assert_eq!(first(&dir), (1, Reason::DeletedOrReordered));
}

#[test]
fn swapping_two_records_is_detected_as_reordered() {
    let (_tmp, dir) = setup();
    let path = seg(&dir);
    let mut all = lines(&path);
    all.swap(10, 11);
    write_lines(&path, &all);
    assert_eq!(first(&dir), (11, Reason::DeletedOrReordered));
}

#[test]
fn a_duplicated_record_is_named_as_such() {
    let (_tmp, dir) = setup();
    let path = seg(&dir);
    let mut all = lines(&path);
    let copy = all[7].clone();
    all.insert(8, copy);
    write_lines(&path, &all);
    let (ok, findings) = found(&dir, &VerifyOptions::default());
    assert!(!ok);
    assert_eq!(findings, vec![(9, Reason::Duplicated)]);
}

#[test]
fn a_duplicated_last_record_is_detected() {
    let (_tmp, dir) = setup();
    let path = seg(&dir);
    let mut all = lines(&path);
    all.push(all.last().unwrap().clone());
    write_lines(&path, &all);
    assert_eq!(first(&dir), (N + 2, Reason::Duplicated));
}

#[test]
fn truncation_needs_a_checkpoint_and_is_caught_with_one() {
    let (tmp, dir) = setup();
    let (cp, _) = take_checkpoint(&dir).unwrap();
    let cp_path = tmp.path().join("cp.json");
    std::fs::write(&cp_path, cp.unwrap().to_bytes()).unwrap();
    let path = seg(&dir);
    let mut all = lines(&path);
    all.truncate(all.len() - 3);
    write_lines(&path, &all);
    // The shorter chain is a valid chain: only the checkpoint can tell.
    assert!(found(&dir, &VerifyOptions::default()).0);
    let options = VerifyOptions {
        checkpoint: Some(Checkpoint::read(&cp_path).unwrap()),
        ..Default::default()
    };
    let (ok, findings) = found(&dir, &options);
    assert!(!ok);
    assert_eq!(findings, vec![(0, Reason::Truncated)]);
}

#[test]
fn a_rollback_behind_a_checkpoint_is_caught() {
    let (_tmp, dir) = setup();
    let (cp, _) = take_checkpoint(&dir).unwrap();
    let path = seg(&dir);
    // Roll back three records, then append three others: the file is as long
    // as before, but the head the checkpoint recorded is gone.
    let mut all = lines(&path);
    all.truncate(all.len() - 3);
    write_lines(&path, &all);
    let ledger = vnx_ledger::Ledger::open(&dir)
        .unwrap()
        .with_clock(fixed_clock());
    let records: Vec<NewRecord> = (0..3).map(|i| NewRecord { kind: "note".into(), body: json!({"text": format!("other {i} {}", "padded to be longer than a receipt ".repeat(80))}) }).collect();
    ledger.append(SEGMENT, &records).unwrap();
    let options = VerifyOptions {
        checkpoint: cp,
        ..Default::default()
    };
    let (ok, findings) = found(&dir, &options);
    assert!(!ok);
    assert!(findings.contains(&(0, Reason::Rewritten)), "{findings:?}");
}

#[test]
fn a_removed_segment_is_caught_with_a_checkpoint() {
    let (_tmp, dir) = setup();
    build(&dir, ID_A, "bob@desk--main.ndjson", 3);
    let (cp, _) = take_checkpoint(&dir).unwrap();
    std::fs::remove_file(dir.join("bob@desk--main.ndjson")).unwrap();
    let (ok, findings) = found(
        &dir,
        &VerifyOptions {
            checkpoint: cp,
            ..Default::default()
        },
    );
    assert!(!ok);
    assert_eq!(findings, vec![(0, Reason::Removed)]);
}

#[test]
fn a_torn_tail_is_detected_refused_and_repaired_without_losing_bytes() {
    let (_tmp, dir) = setup();
    let path = seg(&dir);
    let before = std::fs::read(&path).unwrap();
    let torn = br#"{"hash":"3f2a","record":{"body":{"text":"half a"#;
    let mut bytes = before.clone();
    bytes.extend_from_slice(torn);
    std::fs::write(&path, &bytes).unwrap();

    let (ok, findings) = found(&dir, &VerifyOptions::default());
    assert!(!ok);
    assert_eq!(findings, vec![(N + 2, Reason::TornTail)]);

    let ledger = vnx_ledger::Ledger::open(&dir).unwrap();
    let err = ledger.append(SEGMENT, &[record_for(1)]).unwrap_err();
    assert!(matches!(err, LedgerError::TornTail { bytes, .. } if bytes == torn.len() as u64));
    assert!(err.to_string().contains("vnx ledger repair"), "{err}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "a refused append writes nothing"
    );

    let outcome = ledger.repair(SEGMENT).unwrap();
    assert_eq!(
        std::fs::read(&outcome.quarantine).unwrap(),
        torn,
        "quarantine keeps the torn bytes"
    );
    assert!(
        found(&dir, &VerifyOptions::default()).0,
        "repaired ledger verifies"
    );
    let after = std::fs::read(&path).unwrap();
    assert!(after.starts_with(&before), "every complete record is kept");
    let repair_line = String::from_utf8(lines(&path).last().unwrap().clone()).unwrap();
    assert!(
        repair_line.contains("\"kind\":\"repair\"")
            && repair_line.contains(&format!("\"torn_bytes\":{}", torn.len()))
    );
    ledger.append(SEGMENT, &[record_for(1)]).unwrap();
    assert!(found(&dir, &VerifyOptions::default()).0);
    assert!(matches!(
        ledger.repair(SEGMENT),
        Err(LedgerError::NothingToRepair { .. })
    ));
}

#[test]
fn a_record_spliced_in_from_another_ledger_is_detected() {
    let (tmp, dir) = setup();
    let other = tmp.path().join("other");
    build(&other, ID_B, SEGMENT, N);
    let foreign = lines(&seg(&other))[15].clone();

    // Inserted: the chain continues around it.
    let path = seg(&dir);
    let mut all = lines(&path);
    all.insert(15, foreign.clone());
    write_lines(&path, &all);
    let (ok, findings) = found(&dir, &VerifyOptions::default());
    assert!(!ok);
    assert_eq!(findings, vec![(16, Reason::Spliced)]);

    // Replacing the record with the same seq.
    build(&dir.with_file_name("l2"), ID_A, SEGMENT, N);
    let dir2 = dir.with_file_name("l2");
    let mut all = lines(&seg(&dir2));
    all[15] = foreign;
    write_lines(&seg(&dir2), &all);
    assert_eq!(first(&dir2), (16, Reason::Spliced));
}

#[test]
fn a_segment_copied_from_another_ledger_or_renamed_fails_its_genesis_binding() {
    let (tmp, dir) = setup();
    let other = tmp.path().join("other");
    build(&other, ID_B, "bob@desk--main.ndjson", 5);
    std::fs::copy(
        other.join("bob@desk--main.ndjson"),
        dir.join("bob@desk--main.ndjson"),
    )
    .unwrap();
    let report =
        vnx_ledger::verify_paths(std::slice::from_ref(&dir), &VerifyOptions::default()).unwrap();
    assert!(!report.ok);
    let f: Vec<_> = report.all_findings().collect();
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!((f[0].line, f[0].reason), (1, Reason::Spliced));
    assert!(f[0].path.ends_with("bob@desk--main.ndjson"));

    std::fs::remove_file(dir.join("bob@desk--main.ndjson")).unwrap();
    std::fs::rename(seg(&dir), dir.join("mallory@x--main.ndjson")).unwrap();
    assert_eq!(first(&dir), (1, Reason::Spliced));
}

#[test]
fn a_non_canonical_rewrite_is_detected_even_with_a_matching_hash() {
    let (_tmp, dir) = setup();
    let path = seg(&dir);
    let all = lines(&path);
    let line = &all[9];
    let split = vnx_ledger::record::split_line(&line[..line.len() - 1]).unwrap();
    let value: serde_json::Value = serde_json::from_slice(split.record).unwrap();
    // serde_json's pretty printer: same data, whitespace and all.
    let pretty = serde_json::to_vec_pretty(&value).unwrap();
    let (_, rewritten) = vnx_ledger::record::build_line(&pretty);
    let mut joined: Vec<u8> = rewritten.iter().copied().filter(|&b| b != b'\n').collect();
    joined.push(b'\n');
    let mut all = all.clone();
    all[9] = joined;
    write_lines(&path, &all);
    let (ok, findings) = found(&dir, &VerifyOptions::default());
    assert!(!ok);
    assert_eq!(findings[0], (10, Reason::NotCanonical));
}

#[test]
fn a_rewritten_and_rehashed_record_is_named_as_edited() {
    let (_tmp, dir) = setup();
    rehash_edit(&seg(&dir), 9, |r| r["body"]["text"] = json!("forged note"));
    let (ok, findings) = found(&dir, &VerifyOptions::default());
    assert!(!ok);
    assert_eq!(findings, vec![(10, Reason::Edited)]);
}

#[test]
fn schema_violations_are_reported_even_when_rehashed() {
    for (what, edit) in [
        (
            "unknown kind",
            Box::new(|r: &mut serde_json::Value| r["kind"] = json!("dispatch.finished"))
                as Box<dyn Fn(&mut serde_json::Value)>,
        ),
        (
            "missing field",
            Box::new(|r: &mut serde_json::Value| {
                r["body"].as_object_mut().unwrap().remove("status");
            }),
        ),
        (
            "bad status",
            Box::new(|r: &mut serde_json::Value| r["body"]["status"] = json!("great")),
        ),
        (
            "format version",
            Box::new(|r: &mut serde_json::Value| r["v"] = json!(2)),
        ),
        (
            "timestamp",
            Box::new(|r: &mut serde_json::Value| r["ts"] = json!("yesterday")),
        ),
    ] {
        let (_tmp, dir) = setup();
        rehash_edit(&seg(&dir), 12, edit);
        assert_eq!(first(&dir), (13, Reason::Schema), "{what}");
    }
}

#[test]
fn a_float_is_refused_as_not_canonical() {
    let (_tmp, dir) = setup();
    rehash_edit(&seg(&dir), 12, |r| {
        r["body"]["cost_usd_micros"] = json!(0.5);
    });
    assert_eq!(first(&dir), (13, Reason::NotCanonical));
}

#[test]
fn garbage_lines_are_reported_once_without_a_cascade() {
    let (_tmp, dir) = setup();
    replace_raw(&seg(&dir), 5, b"this is not json");
    let (ok, findings) = found(&dir, &VerifyOptions::default());
    assert!(!ok);
    assert_eq!(findings, vec![(6, Reason::Malformed)]);

    let (_tmp, dir) = setup();
    replace_raw(&seg(&dir), 5, b"\xff\xfe\x00garbage");
    assert_eq!(
        found(&dir, &VerifyOptions::default()).1,
        vec![(6, Reason::Malformed)]
    );
}

#[test]
fn an_empty_segment_and_foreign_files_are_reported() {
    let (_tmp, dir) = setup();
    std::fs::write(dir.join("empty@x--main.ndjson"), b"").unwrap();
    std::fs::write(dir.join("notes.txt"), b"hello").unwrap();
    let (ok, findings) = found(&dir, &VerifyOptions::default());
    assert!(!ok);
    assert!(findings.contains(&(0, Reason::Empty)), "{findings:?}");
    assert!(findings.contains(&(0, Reason::ForeignFile)), "{findings:?}");

    std::fs::remove_file(dir.join("empty@x--main.ndjson")).unwrap();
    assert!(
        found(&dir, &VerifyOptions::default()).0,
        "a foreign file alone is a warning"
    );
    assert!(
        !found(
            &dir,
            &VerifyOptions {
                strict: true,
                ..Default::default()
            }
        )
        .0,
        "--strict fails on it"
    );
}

#[test]
fn verifying_since_a_checkpoint_checks_only_new_records_but_still_its_anchor() {
    let (_tmp, dir) = setup();
    let (cp, _) = take_checkpoint(&dir).unwrap();
    let cp = cp.unwrap();
    let ledger = vnx_ledger::Ledger::open(&dir)
        .unwrap()
        .with_clock(fixed_clock());
    ledger
        .append(SEGMENT, &(100..105).map(record_for).collect::<Vec<_>>())
        .unwrap();
    let since = VerifyOptions {
        checkpoint: Some(cp.clone()),
        since_checkpoint: true,
        ..Default::default()
    };
    let report = vnx_ledger::verify_paths(std::slice::from_ref(&dir), &since).unwrap();
    assert!(report.ok);
    assert_eq!(report.records(), 5);
    assert_eq!(report.segments[0].head_seq, Some(N + 5));

    // A new record that breaks the chain is still caught, on its line.
    rehash_edit(&seg(&dir), (N + 3) as usize, |r| {
        r["prev"] = json!("0".repeat(64));
    });
    let (ok, findings) = found(&dir, &since);
    assert!(!ok);
    assert_eq!(findings[0].0, N + 4);

    // A rewrite of the checkpointed head is caught without reading the prefix.
    let (_tmp2, dir2) = setup();
    let (cp2, _) = take_checkpoint(&dir2).unwrap();
    rehash_edit(&seg(&dir2), N as usize, |r| r["body"]["text"] = json!("x"));
    let since2 = VerifyOptions {
        checkpoint: cp2,
        since_checkpoint: true,
        ..Default::default()
    };
    let (ok, findings) = found(&dir2, &since2);
    assert!(!ok);
    assert_eq!(findings[0].1, Reason::Rewritten);
}

#[test]
fn findings_keep_their_line_numbers_across_parallel_blocks() {
    // About 1 MB: verified in several blocks by several threads, whose line
    // numbers are assigned in order afterwards.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ledger");
    build(&dir, ID_A, SEGMENT, 1500);
    let path = seg(&dir);
    assert!(std::fs::metadata(&path).unwrap().len() > 512 << 10);
    let mut all = lines(&path);
    // Notes (seq ≡ 1 mod 4): edit one, delete another before it.
    let text = String::from_utf8(all[1233].clone())
        .unwrap()
        .replacen("note 1233", "note 9999", 1);
    all[1233] = text.into_bytes();
    all.remove(701);
    write_lines(&path, &all);
    for threads in [1, 2, 4] {
        let options = VerifyOptions {
            threads,
            ..Default::default()
        };
        let (ok, findings) = found(&dir, &options);
        assert!(!ok);
        assert_eq!(
            findings,
            vec![(702, Reason::DeletedOrReordered), (1233, Reason::Edited)],
            "threads={threads}"
        );
    }
}

/// A valid line (hash and chain correct) of exactly `len` bytes without its
/// `\n`: a note whose text pads it, linked after `prev` with seq `seq`.
fn note_line_of(len: usize, seq: u64, prev: &str) -> Vec<u8> {
    let record = |text: &str| {
        format!(
            r#"{{"body":{{"text":"{text}"}},"kind":"note","prev":"{prev}","seq":{seq},"ts":"2026-11-21T12:00:00.000Z","v":1}}"#
        )
    };
    let overhead = vnx_ledger::record::build_line(record("").as_bytes())
        .1
        .len()
        - 1;
    let text = "a".repeat(len - overhead);
    let line = vnx_ledger::record::build_line(record(&text).as_bytes()).1;
    assert_eq!(line.len(), len + 1);
    line
}

fn head_hash(path: &std::path::Path) -> String {
    let last = lines(path).pop().unwrap();
    String::from_utf8(last[9..9 + 64].to_vec()).unwrap()
}

#[test]
fn the_line_limit_is_64_mib_without_the_newline() {
    let max = vnx_ledger::verify::MAX_LINE_BYTES;
    assert_eq!(max, 64 << 20);
    for (len, ok) in [(max, true), (max + 1, false), (70_000_000, false)] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ledger");
        build(&dir, ID_A, SEGMENT, 1);
        let path = seg(&dir);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(&note_line_of(len, 2, &head_hash(&path)));
        std::fs::write(&path, bytes).unwrap();
        let (verified, findings) = found(&dir, &VerifyOptions::default());
        if ok {
            assert!(
                verified,
                "a line of exactly {len} bytes is allowed: {findings:?}"
            );
        } else {
            assert_eq!(findings, vec![(3, Reason::Malformed)], "{len} bytes");
        }
    }
}

#[test]
fn symbolic_links_are_reported_and_never_followed() {
    // A segment replaced by a link to a file outside the ledger.
    let (tmp, dir) = setup();
    std::fs::remove_file(seg(&dir)).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", seg(&dir)).unwrap();
    for strict in [false, true] {
        let options = VerifyOptions {
            strict,
            ..Default::default()
        };
        let report = vnx_ledger::verify_paths(std::slice::from_ref(&dir), &options).unwrap();
        assert!(!report.ok);
        let f: Vec<_> = report.all_findings().collect();
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!((f[0].line, f[0].reason), (0, Reason::Symlink));
        assert_eq!(f[0].path, seg(&dir));
        assert!(f[0].detail.contains("/etc/passwd"), "{}", f[0].detail);
    }
    // The same link given as the path to verify.
    let (ok, findings) = found(&seg(&dir), &VerifyOptions::default());
    assert!(!ok);
    assert_eq!(findings, vec![(0, Reason::Symlink)]);

    // A ledger directory that is a link, with or without a trailing slash.
    let (_tmp2, real) = setup();
    let link = tmp.path().join("linked-ledger");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    for path in [link.clone(), tmp.path().join("linked-ledger/")] {
        let (ok, findings) = found(&path, &VerifyOptions::default());
        assert!(!ok);
        assert_eq!(findings, vec![(0, Reason::Symlink)], "{}", path.display());
    }

    // A manifest that is a link: nothing in the directory is verified.
    let (_tmp3, dir3) = setup();
    let manifest = dir3.join("ledger.json");
    let copy = dir3.with_file_name("manifest-copy.json");
    std::fs::rename(&manifest, &copy).unwrap();
    std::os::unix::fs::symlink(&copy, &manifest).unwrap();
    let report =
        vnx_ledger::verify_paths(std::slice::from_ref(&dir3), &VerifyOptions::default()).unwrap();
    assert!(!report.ok);
    assert!(report.segments.is_empty());
    let f: Vec<_> = report.all_findings().collect();
    assert_eq!((f.len(), f[0].reason), (1, Reason::Symlink));
}

#[test]
fn a_checkpoint_of_another_ledger_or_without_a_manifest_is_refused() {
    let (tmp, dir) = setup();
    let other = tmp.path().join("other");
    build(&other, ID_B, SEGMENT, 3);
    let (cp, _) = take_checkpoint(&other).unwrap();
    let options = VerifyOptions {
        checkpoint: cp.clone(),
        ..Default::default()
    };
    for path in [dir.clone(), seg(&dir)] {
        let err = vnx_ledger::verify_paths(std::slice::from_ref(&path), &options).unwrap_err();
        assert!(matches!(err, LedgerError::Checkpoint { .. }), "{err}");
        assert!(err.to_string().contains(ID_B), "{err}");
    }
    // A lone segment without ledger.json: nothing ties the checkpoint to it.
    std::fs::remove_file(dir.join("ledger.json")).unwrap();
    let err = vnx_ledger::verify_paths(&[seg(&dir)], &options).unwrap_err();
    assert!(err.to_string().contains("ledger.json"), "{err}");
}

#[test]
fn a_manifest_that_is_not_exactly_canonical_is_a_finding() {
    for text in [
        format!("{{\"format\":\"vnx-ledger\",\"ledger_id\":\"{ID_A}\",\"v\":1}}"),
        format!("{{\"ledger_id\":\"{ID_A}\",\"format\":\"vnx-ledger\",\"v\":1}}\n"),
        format!("{{\"format\":\"vnx-ledger\",\"ledger_id\":\"{ID_A}\",\"v\":2}}\n"),
        format!(
            "{{\"format\":\"vnx-ledger\",\"ledger_id\":\"{}\",\"v\":1}}\n",
            ID_A.to_uppercase()
        ),
        "not json\n".to_owned(),
    ] {
        let (_tmp, dir) = setup();
        std::fs::write(dir.join("ledger.json"), &text).unwrap();
        let (ok, findings) = found(&dir, &VerifyOptions::default());
        assert!(!ok, "{text:?}");
        assert_eq!(findings, vec![(0, Reason::Manifest)], "{text:?}");
    }
}
