//! End to end: `vnx gate` in a real git repository, as CI runs it.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

fn run(cwd: &Path, program: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .env("VNX_WRITER", "ci@runner")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn vnx(cwd: &Path, args: &[&str], stdin: &[u8]) -> Output {
    run(cwd, &vnx_tests::vnx(), args, stdin)
}

fn git(cwd: &Path, args: &[&str]) {
    let out = run(cwd, Path::new("git"), args, b"");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn all(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn receipt(id: &str, status: &str, failed_gate: Option<&str>) -> String {
    let usage = json!({"input_tokens": 10, "output_tokens": 5, "cache_read_tokens": 0, "cache_write_tokens": 0});
    let gate = |name: &str, verdict: &str| json!({"name": name, "layer": "deterministic", "verdict": verdict, "detail": "d"});
    let mut gates = vec![gate("worker-success", "pass")];
    if let Some(name) = failed_gate {
        gates.push(gate(name, "fail"));
    }
    let body = json!({
        "dispatch_id": id, "status": status, "provider": "claude", "lane": "headless", "billing": "subscription",
        "outcome": "success", "usage": usage, "cost_usd_micros": 10, "cost_source": "reported", "duration_ms": 5,
        "instruction": {"sha256": "0".repeat(64), "parts": []}, "attempts": [],
        "report": {"origin": "synthesized", "sha256": "1".repeat(64), "valid": false}, "gates": gates,
    });
    json!({"kind": "dispatch.receipt", "body": body}).to_string() + "\n"
}

fn started(id: &str) -> String {
    json!({"kind": "dispatch.started", "body": {"dispatch_id": id, "provider": "claude", "lane": "headless",
        "billing": "subscription", "instruction_sha256": "0".repeat(64)}})
    .to_string()
        + "\n"
}

/// A repository whose main branch has a ledger with one passed dispatch,
/// written by a key its `allowed_signers` lists, and commit coverage off:
/// these tests check the ledger rules (`gate_signed.rs` checks coverage).
fn repo() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("repo");
    std::fs::create_dir(&root).unwrap();
    git(&root, &["init", "-q", "-b", "main"]);
    let key = vnx_tests::TestKey::new(&tmp.path().join("keys"), "ci");
    key.configure(&root);
    std::fs::create_dir_all(root.join("ledger")).unwrap();
    std::fs::write(
        root.join("ledger/allowed_signers"),
        key.allowed_line("ci@runner", None),
    )
    .unwrap();
    std::fs::write(root.join("vnx.toml"), "[merge_gate]\ncoverage = false\n").unwrap();
    let input = started("d-1") + &receipt("d-1", "passed", None);
    assert!(
        vnx(&root, &["ledger", "append"], input.as_bytes())
            .status
            .success()
    );
    git(&root, &["add", "-A"]);
    git(&root, &["commit", "-q", "-m", "base"]);
    (tmp, root)
}

#[test]
fn a_clean_extension_passes_in_every_format() {
    let (_tmp, root) = repo();
    let input = started("d-2") + &receipt("d-2", "passed", None);
    assert!(
        vnx(&root, &["ledger", "append"], input.as_bytes())
            .status
            .success()
    );
    for format in ["text", "json", "github", "junit"] {
        let out = vnx(&root, &["gate", "--base", "HEAD", "--format", format], b"");
        assert_eq!(out.status.code(), Some(0), "{format}: {}", all(&out));
    }
    let out = vnx(&root, &["gate", "--base", "HEAD", "--format", "json"], b"");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["pass"], true);
    let ids: Vec<&str> = report["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["dispatch_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["d-2"], "only receipts added since the base count");
}

#[test]
fn a_failed_receipt_since_the_base_blocks_with_annotations() {
    let (_tmp, root) = repo();
    let input = started("d-2") + &receipt("d-2", "failed", Some("no-placeholders"));
    assert!(
        vnx(&root, &["ledger", "append"], input.as_bytes())
            .status
            .success()
    );

    let out = vnx(&root, &["gate", "--base", "HEAD"], b"");
    assert_eq!(out.status.code(), Some(1), "{}", all(&out));
    assert!(
        all(&out).contains("dispatch d-2 ended failed (gates: no-placeholders)"),
        "{}",
        all(&out)
    );

    let out = vnx(
        &root,
        &["gate", "--base", "HEAD", "--format", "github"],
        b"",
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("::error file=ledger/ci@runner--main.ndjson,line=5,title=failed receipt::"),
        "{text}"
    );

    let out = vnx(&root, &["gate", "--base", "HEAD", "--format", "junit"], b"");
    let xml = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        xml.contains("failures=\"1\"")
            && xml.contains("name=\"dispatch d-2\"")
            && xml.contains("<failure"),
        "{xml}"
    );

    // Without a base, history is not judged: the chain verifies, so it passes.
    assert_eq!(vnx(&root, &["gate"], b"").status.code(), Some(0));
}

#[test]
fn rewriting_history_behind_the_base_blocks_even_if_the_chain_verifies() {
    let (_tmp, root) = repo();
    // Replace the whole committed segment with a fresh, valid chain.
    let segment = root.join("ledger/ci@runner--main.ndjson");
    std::fs::remove_file(&segment).unwrap();
    let input = started("d-1") + &receipt("d-1", "passed", None);
    assert!(
        vnx(&root, &["ledger", "append"], input.as_bytes())
            .status
            .success()
    );
    assert_eq!(
        vnx(&root, &["verify-ledger"], b"").status.code(),
        Some(0),
        "the new chain is valid on its own"
    );
    let out = vnx(&root, &["gate", "--base", "HEAD"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        all(&out).contains("not append-only") && all(&out).contains("rewritten since the base"),
        "{}",
        all(&out)
    );

    std::fs::remove_file(&segment).unwrap();
    let out = vnx(&root, &["gate", "--base", "HEAD"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        all(&out).contains("segment removed since the base"),
        "{}",
        all(&out)
    );
}

#[test]
fn an_orphaned_dispatch_and_a_broken_chain_block() {
    let (_tmp, root) = repo();
    assert!(
        vnx(&root, &["ledger", "append"], started("d-9").as_bytes())
            .status
            .success()
    );
    let out = vnx(&root, &["gate", "--base", "HEAD"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        all(&out).contains("orphaned dispatch") && all(&out).contains("d-9"),
        "{}",
        all(&out)
    );

    let segment = root.join("ledger/ci@runner--main.ndjson");
    let content = std::fs::read_to_string(&segment)
        .unwrap()
        .replace("\"d-1\"", "\"d-X\"");
    std::fs::write(&segment, content).unwrap();
    let out = vnx(&root, &["gate"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        all(&out).contains("ledger does not verify"),
        "{}",
        all(&out)
    );
}

#[test]
fn an_unknown_base_is_a_usage_error() {
    let (_tmp, root) = repo();
    let out = vnx(&root, &["gate", "--base", "no-such-branch"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        all(&out).contains("no-such-branch")
            && all(&out).contains("is not a commit")
            && all(&out).contains("fetch"),
        "{}",
        all(&out)
    );
}
