//! `vnx run` end to end with the real Claude Code CLI (pinned) against the
//! mock model API, headless lane: pass, failed gate, API error, Ctrl-C,
//! kill -9; the receipt's way to CI through the dispatch branch.

#![allow(clippy::unwrap_used)]

#[path = "run_common.rs"]
mod common;

use std::time::Duration;

use common::{
    Sandbox, WRITER, all, claude_env, claude_toml, clis, gate, kill_strays, kinds, receipt, serial,
    wait_for,
};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use vnx_testkit::{MockServer, Script};

const TASK: &str = "Create hello.txt containing Hello, world!";

#[test]
fn implement_dispatch_passes_and_its_receipt_reaches_ci_with_the_branch() {
    let _serial = serial();
    let clis = clis();
    let server = MockServer::start(Script::write_file("hello.txt", "Hello, world!\n")).unwrap();
    let sb = Sandbox::new(&claude_toml(&clis.claude, ""));
    let id = "d-20260101-000000-aaaaa1";
    // An uncommitted file in the main tree: a warning, and not part of the dispatch.
    std::fs::write(sb.repo.join("notes.txt"), "mine\n").unwrap();
    let env = claude_env(&server, &sb.home);
    let out = sb.run_vnx(&env, &["run", "--json", "--dispatch-id", id, TASK]);
    let ctx = all(&out);
    assert_eq!(out.status.code(), Some(0), "{ctx}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("uncommitted change(s) (notes.txt)"),
        "{ctx}"
    );
    let r = receipt(&out);
    assert!(
        r["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("notes.txt")),
        "{ctx}"
    );
    assert_eq!(r["status"], "passed", "{ctx}");
    assert_eq!(r["dispatch_id"], id);
    assert_eq!(r["outcome"], "success");
    assert_eq!(r["cli_version"], "2.1.330 (Claude Code)");
    assert_eq!(r["session_id"].as_str().unwrap().len(), 36);
    assert!(r["usage"]["output_tokens"].as_u64().unwrap() > 0);
    assert!(r["cost_usd_micros"].as_u64().unwrap() > 0);
    assert_eq!(r["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(r["event_log_sha256"].as_str().unwrap().len(), 64);
    // The mock's final message is not a report: one is synthesized from git facts.
    assert_eq!(r["report"]["origin"], "synthesized", "{ctx}");
    assert_eq!(r["instruction"]["parts"].as_array().unwrap().len(), 5);
    for name in [
        "worker-outcome",
        "non-empty-change",
        "no-placeholders",
        "forbidden-paths",
        "no-secrets",
    ] {
        assert_eq!(gate(&r, name)["verdict"], "pass", "{name}: {ctx}");
    }
    assert_eq!(gate(&r, "cross-review")["verdict"], "skipped");
    let branch = format!("vnx/{id}");
    assert_eq!(r["git"]["base"], sb.base.as_str());
    assert_eq!(r["git"]["branch"], branch.as_str());
    assert_eq!(
        r["git"]["worktree"],
        format!(".vnx/worktrees/{id}").as_str()
    );
    let head = r["git"]["head"].as_str().unwrap();
    assert_ne!(head, sb.base);
    // The work commit on the branch, the receipt commit on top of it.
    assert_eq!(
        sb.git(&["show", &format!("{head}:hello.txt")]),
        "Hello, world!"
    );
    assert_eq!(sb.git(&["rev-parse", &format!("{branch}~1")]), head);
    let work_files = sb.git(&["show", "--name-only", "--format=", head]);
    assert_eq!(work_files, "hello.txt", "{ctx}");
    assert!(sb.git(&["log", "-1", "--format=%s", head]).contains(id));
    let branch_segment = vnx_ledger::default_segment_name(WRITER, &branch);
    let on_branch = sb.git(&["show", &format!("{branch}:ledger/{branch_segment}")]);
    assert!(on_branch.contains("dispatch.receipt") && on_branch.contains(id));
    // Passed: the worktree is gone, the branch stays.
    assert!(!sb.repo.join(".vnx/worktrees").join(id).exists());
    // The repository's own ledger: started, then receipt.
    assert_eq!(
        kinds(&sb.main_segment()),
        ["segment.genesis", "dispatch.started", "dispatch.receipt"]
    );
    assert!(!sb.git(&["status", "--porcelain"]).contains(".vnx"));
    let ((v, vout), (g, gout)) = sb.audit();
    assert_eq!(v, 0, "{vout}");
    assert_eq!(g, 0, "{gout}");

    // CI: merge the branch, clone what was pushed, gate against the base.
    sb.git(&["merge", "-q", "--ff-only", &branch]);
    let ci = sb.tmp.path().join("ci");
    common::git(
        sb.tmp.path(),
        &[
            "clone",
            "-q",
            sb.repo.to_str().unwrap(),
            ci.to_str().unwrap(),
        ],
    );
    assert!(ci.join("hello.txt").is_file());
    let out = std::process::Command::new(vnx_tests::vnx())
        .args(["gate", "--base", &sb.base, "--format", "json"])
        .current_dir(&ci)
        .env_clear()
        .envs(common::plain_env(&sb.home))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let receipts = report["receipts"].as_array().unwrap();
    assert_eq!(receipts.len(), 1, "{report:#}");
    assert_eq!(receipts[0]["dispatch_id"], id);
    assert_eq!(receipts[0]["status"], "passed");
}

#[test]
fn a_todo_fails_the_gate_and_blocks_ci() {
    let _serial = serial();
    let clis = clis();
    let server = MockServer::start(Script::write_file(
        "todo.rs",
        "fn main() {}\n// TODO: finish\n",
    ))
    .unwrap();
    let sb = Sandbox::new(&claude_toml(&clis.claude, ""));
    let id = "d-20260101-000000-aaaaa2";
    let out = sb.run_vnx(
        &claude_env(&server, &sb.home),
        &["run", "--json", "--dispatch-id", id, "Write todo.rs"],
    );
    let ctx = all(&out);
    assert_eq!(out.status.code(), Some(1), "{ctx}");
    let r = receipt(&out);
    assert_eq!(r["status"], "failed", "{ctx}");
    assert_eq!(gate(&r, "no-placeholders")["verdict"], "fail", "{ctx}");
    assert!(
        gate(&r, "no-placeholders")["detail"]
            .as_str()
            .unwrap()
            .contains("todo.rs")
    );
    // Failed: the worktree is kept for inspection.
    assert!(
        sb.repo
            .join(".vnx/worktrees")
            .join(id)
            .join("todo.rs")
            .is_file()
    );
    // A failed local run blocks nothing: main did not change.
    let ((v, vout), (g, gout)) = sb.audit();
    assert_eq!(v, 0, "{vout}");
    assert_eq!(g, 0, "{gout}");
    // Merging its branch brings its work, covered by its failed receipt: blocked.
    sb.git(&["merge", "-q", "--no-edit", &format!("vnx/{id}")]);
    let ((_, _), (g, gout)) = sb.audit();
    assert_eq!(g, 1, "{gout}");
    assert!(
        gout.contains(id) && gout.contains("failed receipt"),
        "{gout}"
    );
}

#[test]
fn an_api_error_is_a_receipt_with_status_error() {
    let _serial = serial();
    let clis = clis();
    let server = MockServer::start(Script::status(500)).unwrap();
    let sb = Sandbox::new(&claude_toml(&clis.claude, ""));
    let out = sb.run_vnx(&claude_env(&server, &sb.home), &["run", "--json", TASK]);
    let ctx = all(&out);
    assert_eq!(out.status.code(), Some(3), "{ctx}");
    let r = receipt(&out);
    assert_eq!(r["status"], "error", "{ctx}");
    assert_eq!(r["outcome"], "api", "{ctx}");
    assert_eq!(gate(&r, "worker-outcome")["verdict"], "fail");
    assert_eq!(
        kinds(&sb.main_segment()),
        ["segment.genesis", "dispatch.started", "dispatch.receipt"]
    );
    let ((v, vout), (g, gout)) = sb.audit();
    assert_eq!(v, 0, "{vout}");
    assert_eq!(g, 0, "a failed local run blocks nothing: {gout}");
}

/// Starts a slow dispatch and waits until claude is talking to the model.
fn slow_dispatch(sb: &Sandbox, server: &MockServer, id: &str) -> std::process::Child {
    let child = sb
        .vnx(
            &claude_env(server, &sb.home),
            &["run", "--json", "--dispatch-id", id, TASK],
        )
        .spawn()
        .unwrap();
    wait_for(
        "claude's first model request",
        Duration::from_secs(90),
        || !server.model_requests().is_empty(),
    );
    child
}

fn slow_server() -> MockServer {
    MockServer::start(
        Script::write_file("hello.txt", "Hello, world!\n")
            .with_event_delay(Duration::from_millis(1500)),
    )
    .unwrap()
}

#[test]
fn ctrl_c_during_the_worker_writes_an_interrupted_receipt() {
    let _serial = serial();
    let clis = clis();
    let server = slow_server();
    let sb = Sandbox::new(&claude_toml(&clis.claude, ""));
    let id = "d-20260101-000000-aaaaa4";
    let child = slow_dispatch(&sb, &server, id);
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let out = common::wait_bounded(child, Duration::from_mins(1));
    kill_strays(sb.tmp.path());
    let ctx = all(&out);
    assert_eq!(out.status.code(), Some(3), "{ctx}");
    let r = receipt(&out);
    assert_eq!(r["status"], "interrupted", "{ctx}");
    assert_eq!(r["outcome"], "interrupted", "{ctx}");
    assert_eq!(
        kinds(&sb.main_segment()),
        ["segment.genesis", "dispatch.started", "dispatch.receipt"]
    );
    let ((v, vout), (g, gout)) = sb.audit();
    assert_eq!(v, 0, "{vout}");
    assert_eq!(g, 0, "an interrupted local run blocks nothing: {gout}");
}

#[test]
fn kill_9_of_vnx_leaves_an_orphan_in_the_journal() {
    let _serial = serial();
    let clis = clis();
    let server = slow_server();
    let sb = Sandbox::new(&claude_toml(&clis.claude, ""));
    let id = "d-20260101-000000-aaaaa5";
    let mut child = slow_dispatch(&sb, &server, id);
    child.kill().unwrap();
    let _ = child.wait();
    kill_strays(sb.tmp.path());
    assert_eq!(
        kinds(&sb.main_segment()),
        ["segment.genesis", "dispatch.started"]
    );
    let ((_, vout), (g, gout)) = sb.audit();
    assert!(vout.contains("orphan") && vout.contains(id), "{vout}");
    // Nothing of it reached the committed ledger or main.
    assert_eq!(g, 0, "{gout}");
}

#[test]
fn a_worker_past_its_timeout_is_a_receipt_with_status_timeout() {
    let _serial = serial();
    let clis = clis();
    let server = slow_server();
    let sb = Sandbox::new(&claude_toml(&clis.claude, ""));
    let out = sb.run_vnx(
        &claude_env(&server, &sb.home),
        &["run", "--json", "--timeout", "5s", TASK],
    );
    let ctx = all(&out);
    assert_eq!(out.status.code(), Some(3), "{ctx}");
    let r = receipt(&out);
    assert_eq!(r["status"], "timeout", "{ctx}");
    assert_eq!(r["outcome"], "timeout", "{ctx}");
    assert_eq!(
        kinds(&sb.main_segment()),
        ["segment.genesis", "dispatch.started", "dispatch.receipt"]
    );
    let ((v, vout), (g, gout)) = sb.audit();
    assert_eq!(v, 0, "{vout}");
    assert_eq!(g, 0, "a timed-out local run blocks nothing: {gout}");
}

#[test]
fn the_worker_writes_its_report_file_outside_the_worktree() {
    let _serial = serial();
    let clis = clis();
    let sb = Sandbox::new(&claude_toml(&clis.claude, ""));
    let id = "d-20260101-000000-aaaaa7";
    let report_file = sb.repo.join(".vnx/runs").join(id).join("report.json");
    let report = r#"{"summary":"Wrote the report.","files_changed":[]}"#;
    let server = MockServer::start(Script::write_file(
        report_file.display().to_string(),
        report,
    ))
    .unwrap();
    let out = sb.run_vnx(
        &claude_env(&server, &sb.home),
        &["run", "--json", "--dispatch-id", id, TASK],
    );
    let ctx = all(&out);
    let r = receipt(&out);
    assert_eq!(r["report"]["origin"], "worker", "{ctx}");
    assert_eq!(r["report"]["valid"], true, "{ctx}");
    assert_eq!(gate(&r, "report-valid")["verdict"], "pass", "{ctx}");
    // The report is not part of the work: the change is empty, and the
    // implement skill fails on that.
    assert_eq!(gate(&r, "non-empty-change")["verdict"], "fail", "{ctx}");
    assert_eq!(r["status"], "failed", "{ctx}");
    assert_eq!(out.status.code(), Some(1), "{ctx}");
    assert!(report_file.is_file());
}
