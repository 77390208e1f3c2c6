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
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
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

/// `vnx` under `prlimit --data=BYTES`: a regression that reads without a
/// bound fails on an allocation instead of taking the machine's memory.
fn capped(sb: &Sandbox, data_bytes: u64, args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new("prlimit");
    cmd.arg(format!("--data={data_bytes}"))
        .arg(vnx_tests::vnx())
        .args(args)
        .current_dir(&sb.repo)
        .env_clear()
        .envs(plain_env(&sb.home))
        .env("VNX_WRITER", common::WRITER)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

const MIB: u64 = 1 << 20;

#[test]
fn a_nul_in_a_batch_id_is_refused_at_check_and_before_running() {
    let sb = Sandbox::new(&toml(&provider("fast", &["--final"])));
    let before = std::fs::read(sb.main_segment()).unwrap_or_default();
    std::fs::write(
        sb.repo.join("nul.toml"),
        "[defaults]\nskill = \"review\"\n\n[[dispatch]]\nid = \"ok\"\nprompt = \"p\"\n\n[[dispatch]]\nid = \"a\\u0000b\"\nprompt = \"p\"\n",
    )
    .unwrap();
    for args in [
        &["batch", "--check", "nul.toml"][..],
        &["batch", "nul.toml"],
    ] {
        let out = sb.run_vnx(&plain_env(&sb.home), args);
        let ctx = all(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {ctx}");
        assert!(!ctx.contains("panicked"), "{ctx}");
        for e in ["entry \"a\\0b\"", "not allowed", "ASCII letters, digits"] {
            assert!(ctx.contains(e), "{args:?}: expected {e:?} in\n{ctx}");
        }
    }
    assert_eq!(std::fs::read(sb.main_segment()).unwrap_or_default(), before);
}

#[test]
fn ten_thousand_dangling_depends_on_give_a_bounded_refusal() {
    let sb = Sandbox::new(&toml(&provider("fast", &["--final"])));
    let mut batch = String::new();
    for n in 0..10_000 {
        let _ = writeln!(
            batch,
            "{{\"id\":\"e{n}\",\"skill\":\"review\",\"prompt\":\"p\",\"depends_on\":[\"ghost{n}\"]}}"
        );
    }
    std::fs::write(sb.repo.join("many.jsonl"), batch).unwrap();
    let out = capped(&sb, 512 * MIB, &["batch", "--check", "many.jsonl"])
        .output()
        .unwrap();
    let ctx = all(&out);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        &ctx[..ctx.len().min(4000)]
    );
    assert!(
        out.stderr.len() < 16 * 1024,
        "{} bytes of errors",
        out.stderr.len()
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("entry \"e0\""), "{err}");
    assert!(err.contains("ghost0"), "{err}");
    assert!(err.contains("… and 9980 more"), "{err}");
}

#[test]
fn endless_task_and_batch_files_are_refused_at_their_limit() {
    let sb = Sandbox::new(&toml(&provider("fast", &["--final"])));
    let cases: [(&[&str], &str); 2] = [
        (
            &["run", "--skill", "review", "--task-file", "/dev/zero"],
            "the task file /dev/zero is longer than the limit of 16777216 bytes",
        ),
        (
            &["batch", "--check", "/dev/zero"],
            "the batch file /dev/zero is longer than the limit of 16777216 bytes",
        ),
    ];
    for (args, expect) in cases {
        let out = capped(&sb, 512 * MIB, args).output().unwrap();
        let ctx = all(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {ctx}");
        assert!(
            ctx.contains(expect),
            "{args:?}: expected {expect:?} in\n{ctx}"
        );
    }
    let mut stdin_task = capped(&sb, 512 * MIB, &["run", "--skill", "review"]);
    stdin_task.stdin(std::fs::File::open("/dev/zero").unwrap());
    let out = stdin_task.output().unwrap();
    let ctx = all(&out);
    assert_eq!(out.status.code(), Some(2), "{ctx}");
    assert!(
        ctx.contains("the task on stdin is longer than the limit of 16777216 bytes"),
        "{ctx}"
    );
    assert!(receipts(&sb.main_segment()).is_empty(), "{ctx}");
}

/// A receipt body as `vnx run` writes it, with a `warnings` entry of
/// `pad` bytes to make the record large.
fn big_receipt(n: u64, pad: usize) -> Value {
    let usage = serde_json::json!({"input_tokens": 1200, "output_tokens": 340, "cache_read_tokens": 0, "cache_write_tokens": 0});
    serde_json::json!({
        "dispatch_id": format!("d-big-{n:04}"), "status": "passed", "skill": "review",
        "provider": "fast", "lane": "headless", "billing": "subscription",
        "outcome": "success", "usage": usage,
        "cost_usd_micros": 1000, "cost_source": "reported", "duration_ms": 4000,
        "instruction": {"sha256": format!("{n:064x}"), "parts": []},
        "attempts": [{"outcome": "success", "duration_ms": 4000, "usage": usage, "cost_usd_micros": 1000, "exit_code": 0}],
        "report": {"origin": "worker", "sha256": format!("{n:064x}"), "valid": true},
        "gates": [{"name": "worker-outcome", "layer": "deterministic", "verdict": "pass", "detail": "ok"}],
        "warnings": ["w".repeat(pad)],
    })
}

#[test]
fn show_tail_and_stats_hold_one_record_at_a_time() {
    let sb = Sandbox::new(&toml(&provider("fast", &["--final"])));
    let ledger = vnx_ledger::Ledger::open(&sb.repo.join("ledger")).unwrap();
    // 64 records of 1 MiB: a 64 MiB segment, more than the memory allowed
    // (reading it whole holds each record twice: its line and its JSON).
    for chunk in 0..8u64 {
        let records: Vec<vnx_ledger::NewRecord> = (0..8)
            .map(|i| vnx_ledger::NewRecord {
                kind: "dispatch.receipt".into(),
                body: big_receipt(chunk * 8 + i, MIB as usize),
            })
            .collect();
        ledger.append("big@host--main.ndjson", &records).unwrap();
    }
    for args in [
        &["ledger", "show"][..],
        &["ledger", "show", "--json"],
        &["ledger", "tail", "-n", "3"],
        &["stats", "--json"],
    ] {
        let out = capped(&sb, 40 * MIB, args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?} within 40 MiB: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if args[0] == "stats" {
            let stats: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(stats["totals"]["dispatches"], 64);
        } else {
            let lines = out
                .stdout
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .count();
            let expect = if args[1] == "tail" { 3 } else { 65 }; // genesis + 64
            assert_eq!(lines, expect, "{args:?}");
        }
    }
}

/// Where a command's stdout goes in [`output_errors_never_panic`].
#[derive(Debug, Clone, Copy)]
enum Sink {
    /// A pipe whose reading end is closed (`| head -c 0`).
    ClosedPipe,
    /// `/dev/full`: every write fails with ENOSPC.
    Full,
}

fn stdout_to(sink: Sink) -> Stdio {
    match sink {
        Sink::ClosedPipe => {
            let (read, write) = nix::unistd::pipe().unwrap();
            drop(read);
            Stdio::from(write)
        }
        Sink::Full => Stdio::from(
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap(),
        ),
    }
}

#[test]
fn output_errors_never_panic() {
    let sb = Sandbox::new(&toml(&provider("fast", &["--final"])));
    let env = plain_env(&sb.home);
    let _strays = Strays(sb.tmp.path().to_path_buf());
    let out = sb.run_vnx(
        &env,
        &["run", "--skill", "review", "--dispatch-id", "d-out", "look"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    // Its receipt reaches the committed ledger with the branch.
    sb.git(&["merge", "-q", "--ff-only", "vnx/d-out"]);
    std::fs::write(
        sb.repo.join("good.toml"),
        "[[dispatch]]\nid = \"a\"\nskill = \"review\"\nprompt = \"p\"\n",
    )
    .unwrap();
    let commands: &[&[&str]] = &[
        &["ledger", "show"],
        &["ledger", "show", "--json"],
        &["ledger", "tail", "-n", "2"],
        &["ledger", "checkpoint"],
        &["verify-ledger"],
        &["verify-ledger", "--json"],
        &["gate"],
        &["stats"],
        &["stats", "--json"],
        &["batch", "--check", "good.toml"],
        &["batch", "good.toml", "--json"],
        &["run", "--dry-run", "--skill", "review", "look"],
        &["run", "--skill", "review", "--json", "look"],
        &["run", "--skill", "review", "look"],
        &["skills", "list"],
        &["receipts", "list"],
        &["receipts", "show", "d-out"],
        &["worktrees", "list"],
        &["approve", "d-out", "--force"],
        &["serve", "--port", "0"],
        &["doctor", "--json"],
    ];
    for sink in [Sink::ClosedPipe, Sink::Full] {
        for args in commands {
            let mut cmd = sb.vnx(&env, args);
            cmd.stdout(stdout_to(sink));
            let out = wait_bounded(cmd.spawn().unwrap(), Duration::from_mins(2));
            let err = String::from_utf8_lossy(&out.stderr);
            let what = format!("{args:?} to {sink:?}: exit {:?}\n{err}", out.status.code());
            assert!(!err.contains("panicked"), "{what}");
            match sink {
                Sink::ClosedPipe => {
                    assert_eq!(out.status.code(), Some(141), "{what}");
                }
                Sink::Full => {
                    assert_eq!(out.status.code(), Some(2), "{what}");
                    assert!(
                        err.contains("cannot write output: No space left on device"),
                        "{what}"
                    );
                }
            }
        }
    }
    // Every dispatch those runs started still has its receipt.
    let (verify, _) = sb.audit();
    assert_eq!(verify.0, 0, "{}", verify.1);
}

/// Sends `request` on a new connection to `addr` and reads until `until`
/// is in what came back (or the server closes), within 60 s.
fn http(addr: &str, request: &str, until: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_mins(1))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    read_until(&mut s, until)
}

fn read_until(s: &mut std::net::TcpStream, until: &str) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains(until) {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!(
                "reading {until:?}: {e}; got {}",
                String::from_utf8_lossy(&got)
            ),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn serve_closes_idle_connections_caps_them_and_keeps_sse_streams() {
    let sb = Sandbox::new(&toml(&provider("fast", &["--final"])));
    let mut child = sb
        .vnx(
            &plain_env(&sb.home),
            &[
                "serve",
                "--port",
                "0",
                "--max-connections",
                "4",
                "--idle-timeout-ms",
                "300",
            ],
        )
        .spawn()
        .unwrap();
    let _strays = Strays(sb.tmp.path().to_path_buf());
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
        &mut first,
    )
    .unwrap();
    let addr = first
        .trim()
        .strip_prefix("vnx serve: http://")
        .and_then(|a| a.strip_suffix('/'))
        .unwrap_or_else(|| panic!("no URL in {first:?}"))
        .to_owned();
    // A live SSE stream, opened before everything else.
    let mut sse = std::net::TcpStream::connect(&addr).unwrap();
    sse.set_read_timeout(Some(Duration::from_mins(1))).unwrap();
    sse.write_all(b"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    read_until(&mut sse, "event: snapshot");
    // Three times the cap of connections that never send a byte.
    let mut idle: Vec<std::net::TcpStream> = (0..12)
        .map(|_| std::net::TcpStream::connect(&addr).unwrap())
        .collect();
    // The board still answers: idle connections are closed to make room.
    let board = http(
        &addr,
        "GET /api/board HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        "\"cards\"",
    );
    assert!(board.starts_with("HTTP/1.1 200"), "{board}");
    // Every idle connection is closed by the server.
    for s in &mut idle {
        s.set_read_timeout(Some(Duration::from_mins(1))).unwrap();
        let mut buf = [0u8; 64];
        match s.read(&mut buf) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(e) => panic!("an idle connection was not closed: {e}"),
        }
    }
    // The SSE stream outlived all of them and still gets changes.
    let mut append = sb.vnx(&plain_env(&sb.home), &["ledger", "append"]);
    append.stdin(Stdio::piped());
    let mut append = append.spawn().unwrap();
    append
        .stdin
        .take()
        .unwrap()
        .write_all(br#"{"kind":"note","body":{"text":"hello"}}"#)
        .unwrap();
    let out = wait_bounded(append, Duration::from_mins(1));
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    read_until(&mut sse, "event: ledger");
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let out = wait_bounded(child, Duration::from_mins(1));
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
}
