//! Property tests: random edits are always detected; the canonical-form
//! scanner agrees with the RFC 8785 canonicalizer; concurrent appends lose
//! nothing.

// Helpers outside #[test] functions may panic on setup failures.
#![allow(clippy::unwrap_used, clippy::format_collect)]

mod common;

use common::*;
use proptest::prelude::*;
use serde_json::{Value, json};
use vnx_ledger::canonical::{check_canonical, to_canonical_vec};
use vnx_ledger::{NewRecord, VerifyOptions, take_checkpoint};

const N: u64 = 12;

fn fresh() -> (tempfile::TempDir, std::path::PathBuf, Vec<u8>) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ledger");
    build(&dir, ID_A, SEGMENT, N);
    let bytes = std::fs::read(seg(&dir)).unwrap();
    (tmp, dir, bytes)
}

fn detected(dir: &std::path::Path) -> bool {
    !found(dir, &VerifyOptions::default()).0
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn any_single_byte_change_is_detected(pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let (_tmp, dir, mut bytes) = fresh();
        let at = pos.index(bytes.len());
        prop_assume!(bytes[at] != byte);
        bytes[at] = byte;
        std::fs::write(seg(&dir), &bytes).unwrap();
        prop_assert!(detected(&dir), "byte {at} changed to {byte:#x} went unnoticed");
    }

    #[test]
    fn deleting_any_records_except_at_the_end_is_detected(start in 0usize..(N as usize), len in 1usize..4) {
        let (_tmp, dir, _) = fresh();
        let mut all = lines(&seg(&dir));
        let end = (start + len).min(all.len() - 1);
        prop_assume!(end > start);
        all.drain(start..end);
        write_lines(&seg(&dir), &all);
        prop_assert!(detected(&dir));
    }

    #[test]
    fn any_cut_from_the_end_is_detected_with_a_checkpoint(cut in 1u64..4000) {
        let (_tmp, dir, bytes) = fresh();
        let (cp, _) = take_checkpoint(&dir).unwrap();
        let keep = bytes.len().saturating_sub(cut as usize);
        std::fs::write(seg(&dir), &bytes[..keep]).unwrap();
        let (ok, _) = found(&dir, &VerifyOptions { checkpoint: cp, ..Default::default() });
        prop_assert!(!ok);
    }

    #[test]
    fn moving_any_record_is_detected(from in 0usize..=(N as usize), to in 0usize..=(N as usize)) {
        prop_assume!(from != to);
        let (_tmp, dir, _) = fresh();
        let mut all = lines(&seg(&dir));
        let line = all.remove(from);
        all.insert(to, line);
        write_lines(&seg(&dir), &all);
        prop_assert!(detected(&dir));
    }

    #[test]
    fn inserting_a_copy_of_any_record_anywhere_is_detected(from in 0usize..=(N as usize), to in 0usize..=(N as usize + 1)) {
        let (_tmp, dir, _) = fresh();
        let mut all = lines(&seg(&dir));
        let copy = all[from].clone();
        all.insert(to, copy);
        write_lines(&seg(&dir), &all);
        prop_assert!(detected(&dir));
    }

    #[test]
    fn the_scanner_accepts_exactly_what_the_canonicalizer_writes(value in json_value()) {
        let canonical = to_canonical_vec(&value).unwrap();
        prop_assert_eq!(check_canonical(&canonical), Ok(()), "{}", String::from_utf8_lossy(&canonical));
        // Any other serialization that differs from the canonical bytes is refused.
        for other in [serde_json::to_vec(&value).unwrap(), serde_json::to_vec_pretty(&value).unwrap()] {
            if other != canonical {
                prop_assert!(check_canonical(&other).is_err(), "{}", String::from_utf8_lossy(&other));
            }
        }
    }
}

fn json_value() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        "[a-z]{0,6}",
        "[\\x{0}-\\x{7f}]{0,4}",
        "[\\x{e000}-\\x{e010}\\x{10000}-\\x{10010}éz]{1,3}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-(1i64 << 53) + 1..(1i64 << 53)).prop_map(|n| json!(n)),
        "[\\x{0}-\\x{ff}\\x{2028}\\x{10000}]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[test]
fn concurrent_appenders_in_threads_lose_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ledger");
    ledger_with_id(&dir, ID_A);
    let threads = 6;
    let per = 40;
    std::thread::scope(|s| {
        for t in 0..threads {
            let dir = dir.clone();
            s.spawn(move || {
                // Each thread opens its own handle, like a separate process would.
                let ledger = vnx_ledger::Ledger::open(&dir).unwrap();
                for i in 0..per {
                    let body = json!({"text": format!("t{t}-{i}")});
                    ledger
                        .append(
                            SEGMENT,
                            &[NewRecord {
                                kind: "note".into(),
                                body,
                            }],
                        )
                        .unwrap();
                }
            });
        }
    });
    let (ok, findings) = found(&dir, &VerifyOptions::default());
    assert!(ok, "{findings:?}");
    let texts: std::collections::BTreeSet<String> = lines(&seg(&dir))
        .iter()
        .skip(1)
        .map(|l| {
            let v: Value = serde_json::from_slice(l).unwrap();
            v["record"]["body"]["text"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(texts.len(), threads * per);
}
