//! Signals and resources, end to end with the real `vnx` binary: a closed
//! terminal (SIGHUP) interrupts like Ctrl-C; bad batch ids are refused at
//! `--check`; user input is read only up to its limit; ledger reading holds
//! one record at a time; batch error output is bounded; `vnx serve` closes
//! idle connections and caps them; a closed pipe or a full device on stdout
//! never panics a command.

#![allow(clippy::unwrap_used)]

#[path = "run_common.rs"]
mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

use common::{Sandbox, all, plain_env, records, wait_bounded, wait_for};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

/// A `command` provider table running the fake agent with `argv` (braces
/// doubled: argv entries are templates).
fn provider(name: &str, argv: &[&str]) -> String {
    let argv: Vec<String> = std::iter::once("fake-agent")
        .chain(argv.iter().copied())
        .map(|a| serde_json::to_string(&a.replace('{', "{{").replace('}', "}}")).unwrap())
        .collect();
    format!(
        "\n[providers.{name}]\nkind = \"command\"\nbinary = \"{}\"\nargv = [{}]\noutput = \"claude-stream-json\"\n",
        vnx_tests::fake_agent().display(),
        argv.join(", ")
    )
}

/// `vnx.toml`: the `fast` provider, no review, no retries, plus `extra`.
fn toml(extra: &str) -> String {
    format!(
        "[run]\nprovider = \"fast\"\ncross_review = false\ntimeout = \"2m\"\n\n[retry]\nmax_retries = 0\n{extra}"
    )
}

/// An agent that sleeps far longer than any test.
fn sleeping_agent() -> String {
    provider("fast", &["--sleep-ms", "600000", "--final"])
}

/// The fake agents running in this sandbox's worktrees (their working
/// directory is inside it), found in `/proc`.
fn agent_pids(sb: &Sandbox) -> Vec<i32> {
    let root = sb.tmp.path().canonicalize().unwrap();
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
        let in_sandbox =
            std::fs::read_link(e.path().join("cwd")).is_ok_and(|c| c.starts_with(&root));
        if comm.trim() == "fake-agent" && in_sandbox && !gone(pid) {
            pids.push(pid);
        }
    }
    pids
}

/// Whether `pid` is gone (or a zombie nobody has reaped yet: it runs nothing).
fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

fn receipts(segment: &Path) -> Vec<Value> {
    records(segment)
        .into_iter()
        .filter(|r| r["record"]["kind"] == "dispatch.receipt")
        .map(|r| r["record"]["body"].clone())
        .collect()
}

/// Kills what a failed test left running in its sandbox (a vnx killed by a
/// signal leaves its sleeping agents behind).
struct Strays(PathBuf);

impl Drop for Strays {
    fn drop(&mut self) {
        common::kill_strays(&self.0);
    }
}

fn hangup(child: &Child) {
    kill(Pid::from_raw(child.id() as i32), Signal::SIGHUP).unwrap();
}

#[test]
fn sighup_interrupts_vnx_run_with_a_receipt_and_kills_the_worker() {
    let sb = Sandbox::new(&toml(&sleeping_agent()));
    let _strays = Strays(sb.tmp.path().to_path_buf());
    let child = sb
        .vnx(
            &plain_env(&sb.home),
            &["run", "--skill", "review", "--dispatch-id", "d-hup", "look"],
        )
        .spawn()
        .unwrap();
    wait_for("the agent's pid", Duration::from_mins(1), || {
        !agent_pids(&sb).is_empty()
    });
    let pid = agent_pids(&sb)[0];
    hangup(&child);
    let out = wait_bounded(child, Duration::from_mins(1));
    let ctx = all(&out);
    assert_eq!(out.status.code(), Some(3), "{ctx}");
    let receipts = receipts(&sb.main_segment());
    assert_eq!(receipts.len(), 1, "{ctx}");
    assert_eq!(receipts[0]["status"], "interrupted", "{ctx}");
    wait_for("the agent to be gone", Duration::from_secs(30), || {
        gone(pid)
    });
}

#[test]
fn sighup_interrupts_vnx_batch_with_receipts_and_kills_the_workers() {
    let sb = Sandbox::new(&toml(&sleeping_agent()));
    let _strays = Strays(sb.tmp.path().to_path_buf());
    let mut batch = String::from("[defaults]\nskill = \"review\"\n");
    for n in 1..=3 {
        let _ = write!(batch, "\n[[dispatch]]\nid = \"s{n}\"\nprompt = \"p{n}\"\n");
    }
    std::fs::write(sb.repo.join("b.toml"), batch).unwrap();
    let child = sb
        .vnx(
            &plain_env(&sb.home),
            &["batch", "b.toml", "--max-parallel", "2", "--json"],
        )
        .spawn()
        .unwrap();
    wait_for("two agents", Duration::from_mins(1), || {
        agent_pids(&sb).len() == 2
    });
    let pids = agent_pids(&sb);
    hangup(&child);
    let out = wait_bounded(child, Duration::from_mins(1));
    let ctx = all(&out);
    assert_eq!(out.status.code(), Some(3), "{ctx}");
    let receipts = receipts(&sb.main_segment());
    assert_eq!(receipts.len(), 2, "{ctx}");
    assert!(
        receipts.iter().all(|r| r["status"] == "interrupted"),
        "{ctx}"
    );
    for pid in pids {
        wait_for("the agents to be gone", Duration::from_secs(30), || {
            gone(pid)
        });
    }
}
