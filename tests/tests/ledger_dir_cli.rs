//! End to end: `[ledger] dir` in vnx.toml is the ledger of every command,
//! a directory outside the repository is refused unless vnx.toml allows it,
//! and `--ledger` on the command line still wins.

// Helpers outside #[test] functions may panic on setup failures.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

fn vnx(cwd: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(vnx_tests::vnx())
        .args(args)
        .current_dir(cwd)
        .env("VNX_WRITER", "tester@ci")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    pipe.write_all(stdin).unwrap();
    drop(pipe);
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// A scratch git repository with `toml` as its vnx.toml.
fn repo(toml: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("repo");
    std::fs::create_dir(&root).unwrap();
    let ok = Command::new("git")
        .args(["init", "-q", "-b", "main"])
        .current_dir(&root)
        .status()
        .unwrap();
    assert!(ok.success());
    std::fs::write(root.join("vnx.toml"), toml).unwrap();
    (tmp, root)
}

/// A receipt body that the ledger's schema accepts.
fn receipt(id: &str, status: &str) -> Value {
    let sha = |s: &str| format!("{s:0>64}");
    json!({
        "dispatch_id": id,
        "status": status,
        "skill": "implement",
        "provider": "claude",
        "model": "claude-sonnet-4-5",
        "lane": "headless",
        "billing": "subscription",
        "cli_version": "2.1.330 (Claude Code)",
        "session_id": "5f3c1e2a-0000-4000-8000-000000000001",
        "api_key_source": "none",
        "outcome": "success",
        "usage": {"input_tokens": 1000, "output_tokens": 200, "cache_read_tokens": 0, "cache_write_tokens": 0},
        "cost_usd_micros": 12_345,
        "cost_source": "reported",
        "duration_ms": 41_000,
        "instruction": {"sha256": sha("a1"), "parts": [{"name": "task", "sha256": sha("c3")}]},
        "attempts": [{"outcome": "success", "duration_ms": 40_000, "usage": {"input_tokens": 1000, "output_tokens": 200, "cache_read_tokens": 0, "cache_write_tokens": 0}, "cost_usd_micros": 12_345, "exit_code": 0}],
        "report": {"origin": "worker", "sha256": sha("d4"), "valid": true},
        "gates": [{"name": "worker-outcome", "layer": "deterministic", "verdict": "pass", "detail": "ok"}],
        "git": {"base": "a".repeat(40), "head": "b".repeat(40), "branch": format!("vnx/{id}"), "worktree": format!(".vnx/worktrees/{id}")},
        "event_log_sha256": sha("e5")
    })
}

fn append(root: &Path, extra: &[&str], records: &[Value]) -> Output {
    let mut args = vec!["ledger", "append"];
    args.extend_from_slice(extra);
    let input: String = records.iter().map(|r| r.to_string() + "\n").collect();
    vnx(root, &args, input.as_bytes())
}

#[test]
fn every_command_uses_the_ledger_dir_of_vnx_toml() {
    let (_tmp, root) = repo("[ledger]\ndir = \"audit\"\n");
    // A decoy at the old default place: a passed receipt there would be
    // counted, and its torn tail would fail verification and the gate.
    let decoy = append(
        &root,
        &["--ledger", "ledger"],
        &[json!({"kind": "dispatch.receipt", "body": receipt("d-decoy", "passed")})],
    );
    assert_eq!(code(&decoy), 0, "{}", text(&decoy));
    let decoy_segment = root.join("ledger/tester@ci--main.ndjson");
    std::fs::OpenOptions::new()
        .append(true)
        .open(&decoy_segment)
        .unwrap()
        .write_all(b"{\"torn")
        .unwrap();

    let out = append(
        &root,
        &[],
        &[
            json!({"kind": "note", "body": {"text": "in the audit ledger"}}),
            json!({"kind": "dispatch.receipt", "body": receipt("d-audit", "passed")}),
        ],
    );
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(root.join("audit/tester@ci--main.ndjson").is_file());

    let out = vnx(&root, &["verify-ledger"], b"");
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(
        text(&out).contains("audit/tester@ci--main.ndjson"),
        "{}",
        text(&out)
    );

    let out = vnx(&root, &["ledger", "show"], b"");
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("in the audit ledger"), "{}", text(&out));

    let out = vnx(&root, &["receipts", "list", "--json"], b"");
    assert_eq!(code(&out), 0, "{}", text(&out));
    let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["dispatch_id"].to_string())
        .collect();
    assert_eq!(ids, ["\"d-audit\""], "{}", text(&out));

    let out = vnx(&root, &["stats", "--json"], b"");
    assert_eq!(code(&out), 0, "{}", text(&out));
    let stats: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["totals"]["dispatches"], 1, "{stats:#}");

    let out = vnx(&root, &["gate"], b"");
    assert_eq!(code(&out), 0, "{}", text(&out));

    let out = vnx(&root, &["ledger", "checkpoint"], b"");
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("tester@ci--main.ndjson"),
        "{}",
        text(&out)
    );

    // A bare segment name is repaired in the configured ledger.
    std::fs::OpenOptions::new()
        .append(true)
        .open(root.join("audit/tester@ci--main.ndjson"))
        .unwrap()
        .write_all(b"{\"torn")
        .unwrap();
    let out = vnx(&root, &["ledger", "repair", "tester@ci--main.ndjson"], b"");
    assert_eq!(code(&out), 0, "{}", text(&out));
    let out = vnx(&root, &["verify-ledger"], b"");
    assert_eq!(code(&out), 0, "{}", text(&out));

    // The decoy was never touched, and still fails on its own.
    let out = vnx(&root, &["verify-ledger", "ledger"], b"");
    assert_eq!(code(&out), 1, "{}", text(&out));
}

#[test]
fn a_ledger_dir_outside_the_repository_is_refused_unless_allowed() {
    let (tmp, root) = repo("[ledger]\ndir = \"../outside\"\n");
    let outside = tmp.path().join("outside");
    let note = [json!({"kind": "note", "body": {"text": "x"}})];

    let out = append(&root, &[], &note);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(text(&out).contains("ledger.dir"), "{}", text(&out));
    assert!(text(&out).contains("allow_outside_repo"), "{}", text(&out));
    assert!(!outside.exists(), "the refused ledger was created");

    for args in [
        &["verify-ledger"][..],
        &["gate"],
        &["stats"],
        &["receipts", "list"],
        &["ledger", "show"],
        &["run", "--dry-run", "--skill", "review", "Review the code"],
    ] {
        let out = vnx(&root, args, b"");
        assert_eq!(code(&out), 2, "{args:?}: {}", text(&out));
        assert!(
            text(&out).contains("ledger.dir"),
            "{args:?}: {}",
            text(&out)
        );
    }
    assert!(!outside.exists());

    // The command line is explicit, and wins.
    let elsewhere = tmp.path().join("elsewhere");
    let out = append(&root, &["--ledger", elsewhere.to_str().unwrap()], &note);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(elsewhere.join("ledger.json").is_file());

    // vnx.toml can allow it.
    std::fs::write(
        root.join("vnx.toml"),
        "[ledger]\ndir = \"../outside\"\nallow_outside_repo = true\n",
    )
    .unwrap();
    let out = append(&root, &[], &note);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(outside.join("tester@ci--main.ndjson").is_file());
    let out = vnx(&root, &["verify-ledger"], b"");
    assert_eq!(code(&out), 0, "{}", text(&out));
}

#[test]
fn a_ledger_dir_that_links_out_of_the_repository_is_refused() {
    let (tmp, root) = repo("[ledger]\ndir = \"audit\"\n");
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("audit")).unwrap();

    let out = append(
        &root,
        &[],
        &[json!({"kind": "note", "body": {"text": "x"}})],
    );
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(text(&out).contains("allow_outside_repo"), "{}", text(&out));
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
}

#[test]
fn a_symlinked_segment_stops_the_gate_and_the_readers_naming_the_link() {
    let (tmp, root) = repo("");
    let out = append(
        &root,
        &[],
        &[json!({"kind": "dispatch.receipt", "body": receipt("d-1", "passed")})],
    );
    assert_eq!(code(&out), 0, "{}", text(&out));
    let passwd = tmp.path().join("passwd");
    std::fs::write(&passwd, "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::os::unix::fs::symlink(&passwd, root.join("ledger/zz--main.ndjson")).unwrap();

    for args in [
        &["gate"][..],
        &["ledger", "show"],
        &["ledger", "tail"],
        &["receipts", "list"],
        &["stats"],
    ] {
        let out = vnx(&root, args, b"");
        assert_ne!(code(&out), 0, "{args:?}: {}", text(&out));
        assert!(
            text(&out).contains("zz--main.ndjson is a symbolic link"),
            "{args:?}: {}",
            text(&out)
        );
    }
    let out = append(
        &root,
        &["--segment", "zz--main.ndjson"],
        &[json!({"kind": "note", "body": {"text": "x"}})],
    );
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(text(&out).contains("symbolic link"), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(&passwd).unwrap(),
        "root:x:0:0:root:/root:/bin/sh\n"
    );
}
