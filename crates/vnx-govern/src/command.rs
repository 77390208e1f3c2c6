//! Configured command gates (`cargo test`, `npm test`…), run in the worktree.

use std::fmt::Write as _;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use vnx_types::{GateResult, Verdict};

use crate::gates::gate;
use crate::secrets::redact_secrets;

/// Default bytes of stdout and of stderr kept for the detail (1.5 KiB each).
pub const DEFAULT_TAIL_BYTES: usize = 1536;

/// How long to wait for output pipes after the process ended, ms. Processes
/// that left the process group can hold them open forever.
const PIPE_GRACE_MS: u64 = 1000;

/// Poll interval while waiting for the command, ms.
const POLL_MS: u64 = 10;

/// A command gate from the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandGate {
    /// Gate name; default `command:<argv joined by spaces>`.
    #[serde(default)]
    pub name: Option<String>,
    /// Program and arguments, run directly (no shell). Use
    /// `["sh", "-c", "…"]` explicitly when a shell is wanted.
    pub argv: Vec<String>,
    /// Wall-time limit, ms; the whole process group is killed when it is reached.
    pub timeout_ms: u64,
    /// Extra environment variables, added to vnx's own environment.
    #[serde(default)]
    pub env: Vec<(String, String)>,
    /// Bytes of stdout and of stderr kept for the detail (each); default [`DEFAULT_TAIL_BYTES`].
    #[serde(default)]
    pub tail_bytes: Option<usize>,
}

impl CommandGate {
    /// A gate for `argv` with a timeout in ms.
    pub fn new<S: Into<String>>(argv: impl IntoIterator<Item = S>, timeout_ms: u64) -> CommandGate {
        CommandGate {
            name: None,
            argv: argv.into_iter().map(Into::into).collect(),
            timeout_ms,
            env: Vec::new(),
            tail_bytes: None,
        }
    }

    /// The name recorded in the receipt.
    pub fn display_name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("command:{}", self.argv.join(" ")))
    }
}

/// Keeps the last `cap` bytes of everything read.
fn read_tail(mut r: impl Read, cap: usize) -> Vec<u8> {
    let mut tail: Vec<u8> = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                tail.extend_from_slice(&buf[..n]);
                if tail.len() > cap * 2 {
                    tail.drain(..tail.len() - cap);
                }
            }
        }
    }
    if tail.len() > cap {
        tail.drain(..tail.len() - cap);
    }
    tail
}

/// Runs a command gate in `worktree`, in its own process group with stdin
/// closed. Verdicts: exit 0 → `pass`; non-zero exit → `fail`; killed at the
/// timeout (the whole group, SIGKILL) → `error`; could not start, or ended by
/// a signal vnx did not send → `error`. The detail holds the exit status, the
/// duration and the (redacted) tails of stderr and stdout.
pub fn run_command_gate(spec: &CommandGate, worktree: &Path) -> GateResult {
    let t = Instant::now();
    let name = spec.display_name();
    let Some((program, args)) = spec.argv.split_first() else {
        return gate(&name, Verdict::Error, "command gate has an empty argv", t);
    };
    let cap = spec.tail_bytes.unwrap_or(DEFAULT_TAIL_BYTES).max(1);
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(worktree)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    for (k, v) in &spec.env {
        cmd.env(k, v);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return gate(
                &name,
                Verdict::Error,
                &format!("could not start {program:?} in {}: {e}", worktree.display()),
                t,
            );
        }
    };
    let pgid = Pid::from_raw(child.id() as i32);
    let (tx, rx) = mpsc::channel();
    for (which, pipe) in [
        (
            "stdout",
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ),
        (
            "stderr",
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ),
    ] {
        if let Some(pipe) = pipe {
            let tx = tx.clone();
            thread::spawn(move || {
                let _ = tx.send((which, read_tail(pipe, cap)));
            });
        }
    }
    drop(tx);

    let deadline = t + Duration::from_millis(spec.timeout_ms);
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if Instant::now() >= deadline => {
                timed_out = true;
                let _ = killpg(pgid, Signal::SIGKILL);
                break child.wait();
            }
            Ok(None) => thread::sleep(Duration::from_millis(POLL_MS)),
            Err(e) => {
                let _ = killpg(pgid, Signal::SIGKILL);
                let _ = child.wait();
                break Err(e);
            }
        }
    };
    // Whatever the command left running in its group goes too, so the pipes close.
    let _ = killpg(pgid, Signal::SIGKILL);
    let elapsed_ms = t.elapsed().as_millis();

    let (mut out, mut err) = (Vec::new(), Vec::new());
    let grace = Instant::now() + Duration::from_millis(PIPE_GRACE_MS);
    for _ in 0..2 {
        let left = grace.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(("stdout", bytes)) => out = bytes,
            Ok((_, bytes)) => err = bytes,
            Err(_) => break,
        }
    }
    let tails = format_tails(&err, &out);

    let (verdict, head) = match status {
        Err(e) => (
            Verdict::Error,
            format!("could not wait for the command: {e}"),
        ),
        Ok(_) if timed_out => (
            Verdict::Error,
            format!("killed after the {} ms timeout", spec.timeout_ms),
        ),
        Ok(s) => match s.code() {
            Some(0) => (Verdict::Pass, format!("exit 0 in {elapsed_ms} ms")),
            Some(code) => (Verdict::Fail, format!("exit {code} in {elapsed_ms} ms")),
            None => (
                Verdict::Error,
                format!("ended by a signal ({s}) after {elapsed_ms} ms"),
            ),
        },
    };
    let mut result = gate(&name, verdict, "", t);
    result.detail = crate::gates::bound_bytes(&format!("{head}{tails}"), 2 * cap + 512);
    result
}

fn format_tails(err: &[u8], out: &[u8]) -> String {
    let mut s = String::new();
    for (label, bytes) in [("stderr", err), ("stdout", out)] {
        let text = String::from_utf8_lossy(bytes);
        let text = text.trim();
        if !text.is_empty() {
            let _ = write!(s, "\n--- {label} tail ---\n{}", redact_secrets(text));
        }
    }
    s
}
