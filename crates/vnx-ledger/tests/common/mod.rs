//! Shared helpers for the ledger's integration tests: deterministic ledgers
//! and the tampering operations an attacker (or an accident) would apply.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use vnx_ledger::record::{build_line, split_line};
use vnx_ledger::{Clock, Finding, Ledger, NewRecord, Reason, VerifyOptions, verify_paths};

/// A fixed instant, so generated ledgers are byte-for-byte reproducible.
pub fn fixed_clock() -> Clock {
    Clock::Fixed(
        chrono::DateTime::parse_from_rfc3339("2026-11-21T12:00:00.000Z")
            .unwrap()
            .into(),
    )
}

/// Creates a ledger directory with a chosen id (instead of a random one).
pub fn ledger_with_id(dir: &Path, id: &str) -> Ledger {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("ledger.json"),
        format!("{{\"format\":\"vnx-ledger\",\"ledger_id\":\"{id}\",\"v\":1}}\n"),
    )
    .unwrap();
    Ledger::open(dir).unwrap().with_clock(fixed_clock())
}

pub const ID_A: &str = "0123456789abcdef0123456789abcdef";
pub const ID_B: &str = "fedcba9876543210fedcba9876543210";
pub const SEGMENT: &str = "alice@laptop--main.ndjson";

/// A realistic receipt body.
pub fn receipt(i: u64) -> Value {
    let sha = |s: &str| format!("{s:0>64}");
    json!({
        "dispatch_id": format!("d-{i:04}"),
        "status": if i.is_multiple_of(5) { "failed" } else { "passed" },
        "skill": "implement",
        "provider": "claude",
        "model": "claude-sonnet-4-5",
        "lane": "headless",
        "billing": "subscription",
        "cli_version": "2.1.330 (Claude Code)",
        "session_id": format!("5f3c1e2a-0000-4000-8000-{i:012}"),
        "api_key_source": "none",
        "outcome": "success",
        "usage": {"input_tokens": 1200 + i, "output_tokens": 340, "cache_read_tokens": 5000, "cache_write_tokens": 800},
        "cost_usd_micros": 12_345 + i,
        "cost_source": "reported",
        "duration_ms": 41_000 + i,
        "instruction": {"sha256": sha("a1"), "parts": [{"name": "skill", "sha256": sha("b2")}, {"name": "task", "sha256": sha("c3")}]},
        "attempts": [{"outcome": "success", "duration_ms": 40_000, "usage": {"input_tokens": 1200, "output_tokens": 340, "cache_read_tokens": 5000, "cache_write_tokens": 800}, "cost_usd_micros": 12_345, "exit_code": 0}],
        "report": {"origin": "worker", "sha256": sha("d4"), "valid": true},
        "gates": [
            {"name": "worker-success", "layer": "deterministic", "verdict": "pass", "detail": "outcome success"},
            {"name": "no-placeholders", "layer": "deterministic", "verdict": "pass", "detail": "no TODO/FIXME added"},
            {"name": "cross-review", "layer": "cross-model", "verdict": "pass", "detail": "approved: ✓ naïve ‘quotes’ and \"escapes\"\n"}
        ],
        "git": {"base": "a".repeat(40), "head": "b".repeat(40), "branch": format!("vnx/d-{i:04}"), "worktree": format!(".vnx/worktrees/d-{i:04}")},
        "event_log_sha256": sha("e5")
    })
}

/// A ledger at `dir` with `n` records after genesis: notes, started, receipts
/// and an extension record, in a fixed pattern.
pub fn build(dir: &Path, id: &str, segment: &str, n: u64) -> Ledger {
    let ledger = ledger_with_id(dir, id);
    let records: Vec<NewRecord> = (1..=n).map(record_for).collect();
    if records.is_empty() {
        // An empty append still creates the segment with its genesis.
        ledger.append(segment, &[]).unwrap();
    } else {
        ledger.append(segment, &records).unwrap();
    }
    ledger
}

pub fn record_for(i: u64) -> NewRecord {
    match i % 4 {
        0 => NewRecord {
            kind: "dispatch.receipt".into(),
            body: receipt(i),
        },
        1 => NewRecord {
            kind: "note".into(),
            body: json!({"text": format!("note {i}: ünïcödé \u{1f600} \t tab")}),
        },
        2 => NewRecord {
            kind: "dispatch.started".into(),
            body: json!({"dispatch_id": format!("d-{:04}", i + 2), "provider": "claude", "lane": "headless", "billing": "subscription", "instruction_sha256": "0".repeat(64)}),
        },
        _ => NewRecord {
            kind: "x.importer.receipt".into(),
            body: json!({"tool": "other", "n": i, "nested": {"z": [1, 2], "a": null}}),
        },
    }
}

pub fn lines(path: &Path) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(path).unwrap();
    let mut out: Vec<Vec<u8>> = bytes
        .split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect();
    if out.last().is_some_and(Vec::is_empty) {
        out.pop();
    }
    out
}

pub fn write_lines(path: &Path, lines: &[Vec<u8>]) {
    std::fs::write(path, lines.concat()).unwrap();
}

/// Rewrites line `index` (0-based) with `edit` applied to its record, and
/// recomputes its hash, as an attacker who knows the format would.
pub fn rehash_edit(path: &Path, index: usize, edit: impl FnOnce(&mut Value)) {
    let mut all = lines(path);
    let line = &all[index];
    let split = split_line(&line[..line.len() - 1]).unwrap();
    let mut record: Value = serde_json::from_slice(split.record).unwrap();
    edit(&mut record);
    let bytes = serde_jcs::to_vec(&record).unwrap();
    all[index] = build_line(&bytes).1;
    write_lines(path, &all);
}

/// Replaces line `index` with raw bytes (plus `\n`).
pub fn replace_raw(path: &Path, index: usize, raw: &[u8]) {
    let mut all = lines(path);
    let mut line = raw.to_vec();
    line.push(b'\n');
    all[index] = line;
    write_lines(path, &all);
}

/// (line, reason) pairs of all findings, for compact assertions.
pub fn found(dir: &Path, options: &VerifyOptions) -> (bool, Vec<(u64, Reason)>) {
    let report = verify_paths(&[dir.to_path_buf()], options).unwrap();
    let findings: Vec<(u64, Reason)> = report
        .all_findings()
        .map(|f: &Finding| (f.line, f.reason))
        .collect();
    (report.ok, findings)
}

pub fn seg(dir: &Path) -> PathBuf {
    dir.join(SEGMENT)
}
