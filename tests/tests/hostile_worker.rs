//! A hostile worker, played by the scripted fake agent under the real `vnx
//! run`: it deletes its worktree's `.git` file, commits on a detached HEAD,
//! deletes the repository's ledger, touches files outside its worktree,
//! pushes, moves refs and leaves a daemon behind. The user's repository
//! must come out untouched, the work must stay reachable, and every
//! dispatch must end in a receipt.

#![allow(clippy::unwrap_used)]

#[path = "run_common.rs"]
mod common;

use common::{Sandbox, WRITER, all, gate, kinds, plain_env, receipt, records};
use serde_json::Value;

/// `vnx.toml` whose provider `fake` runs the fake agent with `actions`,
/// then prints a successful final event.
fn fake_toml(actions: &[&str], extra: &str) -> String {
    let argv: Vec<String> = std::iter::once("fake-agent")
        .chain(actions.iter().copied())
        .chain(std::iter::once("--final"))
        .map(|a| serde_json::to_string(&a.replace('{', "{{").replace('}', "}}")).unwrap())
        .collect();
    format!(
        "[run]\nprovider = \"fake\"\ncross_review = false\ntimeout = \"2m\"\n\n[retry]\nmax_retries = 0\n\n\
         [providers.fake]\nkind = \"command\"\nbinary = \"{}\"\nargv = [{}]\noutput = \"claude-stream-json\"\n{extra}",
        vnx_tests::fake_agent().display(),
        argv.join(", ")
    )
}

/// A sandbox whose main tree has an uncommitted README edit and an
/// untracked `notes.txt`, as a user's tree often has.
fn dirty_sandbox(actions: &[&str]) -> Sandbox {
    let sb = Sandbox::new(&fake_toml(actions, ""));
    std::fs::write(
        sb.repo.join("README.md"),
        "# sandbox\n\nedited, not committed\n",
    )
    .unwrap();
    std::fs::write(sb.repo.join("notes.txt"), "my notes\n").unwrap();
    sb
}

/// What the user's main tree looks like to git: HEAD, branch, status.
fn main_state(sb: &Sandbox) -> (String, String, String) {
    (
        sb.git(&["rev-parse", "HEAD"]),
        sb.git(&["symbolic-ref", "HEAD"]),
        sb.git(&[
            "status",
            "--porcelain=v1",
            "--untracked-files=all",
            "--",
            ".",
            ":!ledger",
        ]),
    )
}

fn run(sb: &Sandbox, id: &str) -> std::process::Output {
    sb.run_vnx(
        &plain_env(&sb.home),
        &["run", "--json", "--dispatch-id", id, "Do the work"],
    )
}

/// The receipt records of the repository's main segment.
fn main_receipts(sb: &Sandbox) -> Vec<Value> {
    records(&sb.main_segment())
        .into_iter()
        .filter(|r| r["record"]["kind"] == "dispatch.receipt")
        .map(|r| r["record"]["body"].clone())
        .collect()
}

fn branch_has(sb: &Sandbox, branch: &str, path: &str) -> bool {
    std::process::Command::new("git")
        .args(["cat-file", "-e", &format!("{branch}:{path}")])
        .current_dir(&sb.repo)
        .status()
        .unwrap()
        .success()
}

#[test]
fn a_worker_that_deletes_its_git_file_never_reaches_main() {
    let sb = dirty_sandbox(&["--write", "work.txt", "work", "--rm", ".git"]);
    let before = main_state(&sb);
    let id = "d-20260101-000000-0a0001";
    let out = run(&sb, id);
    let ctx = all(&out);

    // main: same commit, same branch, same uncommitted and untracked files.
    assert_eq!(main_state(&sb), before, "{ctx}");
    assert_eq!(
        std::fs::read_to_string(sb.repo.join("README.md")).unwrap(),
        "# sandbox\n\nedited, not committed\n"
    );
    assert_eq!(sb.git(&["rev-list", "--count", "main"]), "1", "{ctx}");

    // The dispatch fails with a receipt that says why, and keeps the worktree.
    assert_eq!(out.status.code(), Some(3), "{ctx}");
    let r = receipt(&out);
    assert_eq!(r["status"], "error", "{ctx}");
    let warnings = r["warnings"].to_string();
    assert!(warnings.contains(".git"), "{ctx}");
    assert_eq!(main_receipts(&sb).len(), 1, "{ctx}");
    let wt = sb.repo.join(".vnx/worktrees").join(id);
    assert!(wt.join("work.txt").exists(), "{ctx}");
}

#[test]
fn a_commit_on_a_detached_head_ends_up_on_the_dispatch_branch() {
    let actions = [
        "--run",
        "git",
        "checkout",
        "-q",
        "--detach",
        "--end",
        "--write",
        "work.txt",
        "work",
        "--run",
        "git",
        "add",
        "work.txt",
        "--end",
        "--run",
        "git",
        "commit",
        "-qm",
        "detached work",
        "--end",
    ];
    let sb = Sandbox::new(&fake_toml(&actions, ""));
    let id = "d-20260101-000000-0a0002";
    let out = run(&sb, id);
    let ctx = all(&out);
    let r = receipt(&out);
    assert_eq!(r["status"], "passed", "{ctx}");
    let branch = format!("vnx/{id}");
    assert!(branch_has(&sb, &branch, "work.txt"), "{ctx}");
    let subjects = sb.git(&["log", "--format=%s", &format!("{}..{branch}", sb.base)]);
    assert!(subjects.contains("detached work"), "{subjects}");
    assert_eq!(
        r["git"]["head"].as_str().unwrap(),
        sb.git(&["rev-parse", &format!("{branch}~1")])
    );
}

#[test]
fn a_detached_commit_that_does_not_descend_from_the_branch_keeps_the_worktree() {
    // Work committed on the branch, then a second commit on a detached
    // HEAD at the base: the two do not line up, and neither is dropped.
    let actions = [
        "--write",
        "one.txt",
        "one",
        "--run",
        "git",
        "add",
        "one.txt",
        "--end",
        "--run",
        "git",
        "commit",
        "-qm",
        "on the branch",
        "--end",
        "--run",
        "git",
        "checkout",
        "-q",
        "--detach",
        "HEAD~1",
        "--end",
        "--write",
        "two.txt",
        "two",
        "--run",
        "git",
        "add",
        "two.txt",
        "--end",
        "--run",
        "git",
        "commit",
        "-qm",
        "off the branch",
        "--end",
    ];
    let sb = Sandbox::new(&fake_toml(&actions, ""));
    let id = "d-20260101-000000-0a0003";
    let out = run(&sb, id);
    let ctx = all(&out);
    let r = receipt(&out);
    assert_eq!(r["status"], "error", "{ctx}");
    assert!(r["warnings"].to_string().contains("detached"), "{ctx}");
    let wt = sb.repo.join(".vnx/worktrees").join(id);
    assert!(wt.is_dir(), "{ctx}");
    // The detached commit is still what the kept worktree's HEAD names.
    let head = common::git(&wt, &["log", "-1", "--format=%s"]);
    assert_eq!(head, "off the branch");
}

#[test]
fn a_worker_that_deletes_the_ledger_still_gets_a_receipt() {
    // It deletes both the committed ledger and vnx's local journal, where
    // a worktree dispatch's records go.
    let sb = Sandbox::new(&fake_toml(
        &[
            "--write",
            "work.txt",
            "work",
            "--rm",
            "../../../ledger",
            "--rm",
            "../../ledger",
        ],
        "",
    ));
    let manifest = std::fs::read(sb.repo.join("ledger/ledger.json")).unwrap();
    let id = "d-20260101-000000-0a0004";
    let out = run(&sb, id);
    let ctx = all(&out);
    let r = receipt(&out);
    assert_eq!(r["status"], "failed", "{ctx}");
    let detail = gate(&r, "side-effects")["detail"].as_str().unwrap();
    assert!(detail.contains("ledger"), "{detail}");
    // The journal is back with the same id, holding this dispatch's records.
    assert_eq!(
        std::fs::read(sb.repo.join(".vnx/ledger/ledger.json")).unwrap(),
        manifest
    );
    assert_eq!(
        kinds(&sb.main_segment()),
        ["segment.genesis", "dispatch.started", "dispatch.receipt"],
        "{ctx}"
    );
    assert_eq!(main_receipts(&sb)[0]["dispatch_id"], id);
    let verify = sb.run_vnx(&plain_env(&sb.home), &["verify-ledger", ".vnx/ledger"]);
    assert_eq!(verify.status.code(), Some(0), "{}", all(&verify));
    // The branch holds the receipt too.
    let segment = vnx_ledger::default_segment_name(WRITER, &format!("vnx/{id}"));
    assert!(
        branch_has(&sb, &format!("vnx/{id}"), &format!("ledger/{segment}")),
        "{ctx}"
    );
}

#[test]
fn the_side_effects_gate_names_what_the_worker_did_outside_its_worktree() {
    let actions = [
        "--write",
        "work.txt",
        "work",
        "--write",
        "../../../README.md",
        "rewritten by the worker",
        "--run",
        "git",
        "tag",
        "evil",
        "--end",
        "--run",
        "git",
        "push",
        "-q",
        "origin",
        "HEAD:refs/heads/stolen",
        "--end",
        "--run",
        "setsid",
        "-f",
        "sleep",
        "1000",
        "--end",
    ];
    let sb = Sandbox::new(&fake_toml(&actions, ""));
    let remote = sb.tmp.path().join("remote.git");
    common::git(
        sb.tmp.path(),
        &["init", "-q", "--bare", remote.to_str().unwrap()],
    );
    sb.git(&["remote", "add", "origin", remote.to_str().unwrap()]);
    let id = "d-20260101-000000-0a0005";
    let out = run(&sb, id);
    let ctx = all(&out);
    assert_eq!(out.status.code(), Some(1), "{ctx}");
    let r = receipt(&out);
    assert_eq!(r["status"], "failed", "{ctx}");
    let g = gate(&r, "side-effects");
    assert_eq!(g["verdict"], "fail", "{ctx}");
    let detail = g["detail"].as_str().unwrap();
    for needle in [
        "README.md modified",
        "refs/tags/evil created",
        "tried to git push",
        "sleep 1000",
        "vnx killed it",
    ] {
        assert!(detail.contains(needle), "{needle} not in {detail}");
    }
    // Nothing reached the remote, and the daemon is gone.
    assert_eq!(common::git(&remote, &["for-each-ref"]), "", "{ctx}");
    let pid: i32 = detail
        .split("process ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|p| p.parse().ok())
        .unwrap();
    common::wait_for(
        "the daemon to be reaped",
        std::time::Duration::from_secs(10),
        || {
            std::fs::read_to_string(format!("/proc/{pid}/status")).map_or(true, |s| {
                s.lines()
                    .any(|l| l.starts_with("State:") && l.contains('Z'))
            })
        },
    );
}

#[test]
fn a_sandboxed_worker_cannot_write_outside_its_worktree() {
    // The worktree is <root>/repo/.vnx/worktrees/<id>, HOME is <root>/home.
    let actions = [
        "--write",
        "work.txt",
        "work",
        "--write",
        "../../../escape.txt",
        "written into the repository root",
        "--write",
        "../../../../home/outside.txt",
        "written into HOME",
    ];
    let sb = Sandbox::new(&fake_toml(&actions, "\n[worker]\nsandbox = true\n"));
    let id = "d-20260101-000000-0a0006";
    let out = run(&sb, id);
    let ctx = all(&out);
    let r = receipt(&out);
    assert!(!sb.repo.join("escape.txt").exists(), "{ctx}");
    assert!(!sb.home.join("outside.txt").exists(), "{ctx}");
    // The writes failed in the worker, not after it: its own output says so.
    let log = std::fs::read_to_string(
        sb.repo
            .join(".vnx/runs")
            .join(id)
            .join("worker/attempt-1.events.ndjson"),
    )
    .unwrap();
    let writes: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == "write")
        .collect();
    assert_eq!(writes.len(), 3, "{log}");
    assert_eq!(writes[0]["ok"], true, "{log}");
    for w in &writes[1..] {
        assert_eq!(w["ok"], false, "{log}");
        assert!(w["error"].as_str().unwrap().contains("Read-only"), "{log}");
    }
    // The dispatch ends as usual, with a receipt and the work on its branch.
    assert_eq!(r["status"], "passed", "{ctx}");
    assert_eq!(main_receipts(&sb).len(), 1, "{ctx}");
    assert!(branch_has(&sb, &format!("vnx/{id}"), "work.txt"), "{ctx}");
}
