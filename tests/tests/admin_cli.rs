//! End to end: `vnx init`, `vnx skills`, `vnx worktrees` and `vnx receipts`.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

fn run(cwd: &Path, program: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .env("VNX_WRITER", "me@box")
        .env("XDG_CONFIG_HOME", cwd.join(".no-user-config"))
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

fn vnx(cwd: &Path, args: &[&str]) -> Output {
    run(cwd, &vnx_tests::vnx(), args, b"")
}

fn out(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn repo() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("repo");
    std::fs::create_dir(&root).unwrap();
    assert!(
        run(&root, Path::new("git"), &["init", "-q", "-b", "main"], b"")
            .status
            .success()
    );
    std::fs::write(root.join("README"), "hi\n").unwrap();
    assert!(
        run(&root, Path::new("git"), &["add", "-A"], b"")
            .status
            .success()
    );
    assert!(
        run(
            &root,
            Path::new("git"),
            &["commit", "-q", "-m", "init"],
            b""
        )
        .status
        .success()
    );
    (tmp, root)
}

#[test]
fn init_sets_up_the_repository_once() {
    let (_tmp, root) = repo();
    let o = vnx(&root, &["init"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert!(
        root.join("vnx.toml").is_file()
            && root.join("ledger/ledger.json").is_file()
            && root.join(".vnx/skills").is_dir()
    );
    assert_eq!(vnx(&root, &["verify-ledger"]).status.code(), Some(0));
    let exclude = std::fs::read_to_string(root.join(".git/info/exclude")).unwrap();
    assert!(exclude.contains(".vnx/worktrees/"), "{exclude}");
    let before = std::fs::read(root.join("vnx.toml")).unwrap();
    let o = vnx(&root, &["init"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(out(&o).contains("already exists"), "{}", out(&o));
    assert_eq!(std::fs::read(root.join("vnx.toml")).unwrap(), before);
}

#[test]
fn skills_list_shows_builtins_and_repo_skills_and_flags_broken_ones() {
    let (_tmp, root) = repo();
    let o = vnx(&root, &["skills", "list"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    for name in ["implement", "review", "test", "docs"] {
        assert!(out(&o).contains(name), "{}", out(&o));
    }
    let dir = root.join(".vnx/skills/implement");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("SKILL.md"), "---\nname: implement\ndescription: Our own implement\nprofile: edit\n---\nDo it our way.\n").unwrap();
    let o = vnx(&root, &["skills", "list", "--json"]);
    let implement: Value = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["name"] == "implement")
        .unwrap();
    assert_eq!(
        implement["source"], "repo",
        "the repository's skill shadows the built-in"
    );
    let o = vnx(&root, &["skills", "show", "implement"]);
    assert!(
        out(&o).contains("Do it our way.") && out(&o).contains("profile:     edit"),
        "{}",
        out(&o)
    );

    let bad = root.join(".vnx/skills/broken");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(
        bad.join("SKILL.md"),
        "---\nname: broken\ndescription: x\nprofile: sideways\n---\nbody\n",
    )
    .unwrap();
    let o = vnx(&root, &["skills", "list"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "a broken skill fails the listing: {}",
        out(&o)
    );
    assert!(
        out(&o).contains("BROKEN") && out(&o).contains("profile"),
        "{}",
        out(&o)
    );
    let o = vnx(&root, &["skills", "show", "broken"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        out(&o).contains("broken/SKILL.md:4") && out(&o).contains("`profile`"),
        "file, line and field named: {}",
        out(&o)
    );
    let o = vnx(&root, &["skills", "show", "nope"]);
    assert!(
        out(&o).contains("known skills") && out(&o).contains("implement"),
        "{}",
        out(&o)
    );
}

#[test]
fn receipts_list_and_show() {
    let (_tmp, root) = repo();
    let usage = json!({"input_tokens": 100, "output_tokens": 50, "cache_read_tokens": 1000, "cache_write_tokens": 0});
    let body = |id: &str, status: &str| {
        json!({"kind": "dispatch.receipt", "body": {
        "dispatch_id": id, "status": status, "provider": "claude", "model": "claude-sonnet-4-5", "lane": "headless",
        "billing": "subscription", "outcome": "success", "usage": usage, "cost_usd_micros": 12_345,
        "cost_source": "reported", "duration_ms": 5, "instruction": {"sha256": "0".repeat(64), "parts": []},
        "attempts": [], "report": {"origin": "worker", "sha256": "1".repeat(64), "valid": true}, "gates": []}})
    .to_string()
    };
    let input = format!(
        "{}\n{}\n",
        body("d-20261121-aaaaaa", "passed"),
        body("d-20261121-bbbbbb", "failed")
    );
    assert!(
        run(
            &root,
            &vnx_tests::vnx(),
            &["ledger", "append"],
            input.as_bytes()
        )
        .status
        .success()
    );
    let o = vnx(&root, &["receipts", "list"]);
    let text = out(&o);
    assert!(
        text.contains("d-20261121-aaaaaa")
            && text.contains("passed")
            && text.contains("1150")
            && text.contains("$0.0123"),
        "{text}"
    );
    assert!(
        text.contains("d-20261121-bbbbbb") && text.contains("failed"),
        "{text}"
    );
    let o = vnx(&root, &["receipts", "show", "d-20261121-b"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let shown: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(shown["receipt"]["status"], "failed");
    let o = vnx(&root, &["receipts", "show", "d-2026"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(out(&o).contains("matches 2 receipts"), "{}", out(&o));
}

#[test]
fn worktrees_list_and_prune() {
    let (_tmp, root) = repo();
    assert_eq!(vnx(&root, &["init"]).status.code(), Some(0));
    let git = |args: &[&str]| {
        assert!(
            run(&root, Path::new("git"), args, b"").status.success(),
            "git {args:?}"
        );
    };
    git(&[
        "worktree",
        "add",
        "-q",
        ".vnx/worktrees/d-1",
        "-b",
        "vnx/d-1",
    ]);
    let o = vnx(&root, &["worktrees", "list"]);
    assert!(
        out(&o).contains("d-1") && out(&o).contains("vnx/d-1"),
        "{}",
        out(&o)
    );
    // A worktree whose directory is gone is pruned.
    std::fs::remove_dir_all(root.join(".vnx/worktrees/d-1")).unwrap();
    let o = vnx(&root, &["worktrees", "prune"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let o = vnx(&root, &["worktrees", "list"]);
    assert!(out(&o).contains("no vnx worktrees"), "{}", out(&o));
}
