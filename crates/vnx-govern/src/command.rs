//! Configured command gates (`cargo test`, `npm test`…), run in the worktree.
//!
//! A command gate runs code the worker wrote, so it is started like every
//! other process vnx starts: through `vnx-exec`'s headless lane, from an argv
//! array, with an environment built from an allow-list (never vnx's whole
//! environment: no API key or token reaches it unless named), in its own
//! process group, cancellable, stopped at its timeout with `SIGTERM` and then
//! `SIGKILL` to the whole group, its output bounded (a tail is kept).

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use vnx_exec::{
    CancelToken, ChildEnv, EndedBy, ExitStatus, Flow, HeadlessLane, LineRef, RunOptions,
};
use vnx_types::{GateResult, Verdict};

use crate::gates::gate;
use crate::secrets::redact_secrets;

/// Default bytes of stdout and of stderr kept for the detail (1.5 KiB each).
pub const DEFAULT_TAIL_BYTES: usize = 1536;

/// Default time between `SIGTERM` and `SIGKILL` at the timeout, ms.
pub const DEFAULT_TERM_GRACE_MS: u64 = 2000;

/// How long to wait for output pipes after the process ended, ms. Processes
/// that left the process group can hold them open forever.
const PIPE_GRACE_MS: u64 = 1000;

/// Bytes read before the kept tail, redacted with it and then dropped: a
/// secret that straddles the tail's start is recognized whole (a PEM block
/// longer than this is masked from its start by its `END` line).
const REDACT_MARGIN_BYTES: usize = 16 * 1024;

/// A command gate from the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandGate {
    /// Gate name; default `command:<argv joined by spaces>`.
    #[serde(default)]
    pub name: Option<String>,
    /// Program and arguments, run directly (no shell). Use
    /// `["sh", "-c", "…"]` explicitly when a shell is wanted.
    pub argv: Vec<String>,
    /// Wall-time limit, ms; at the limit the whole process group gets
    /// `SIGTERM`, then `SIGKILL` after [`CommandGate::term_grace_ms`].
    pub timeout_ms: u64,
    /// Variables set for the command, on top of the environment it inherits.
    #[serde(default)]
    pub env: Vec<(String, String)>,
    /// Names of vnx's variables the command inherits besides the base
    /// allow-list ([`vnx_agents::base_env_allow_list`]: PATH, HOME, locale,
    /// proxies, CA certificates, toolchain locations).
    #[serde(default)]
    pub pass_env: Vec<String>,
    /// Bytes of stdout and of stderr kept for the detail (each); default [`DEFAULT_TAIL_BYTES`].
    #[serde(default)]
    pub tail_bytes: Option<usize>,
    /// Time between `SIGTERM` and `SIGKILL` at the timeout, ms; default
    /// [`DEFAULT_TERM_GRACE_MS`].
    #[serde(default)]
    pub term_grace_ms: Option<u64>,
}

impl CommandGate {
    /// A gate for `argv` with a timeout in ms.
    pub fn new<S: Into<String>>(argv: impl IntoIterator<Item = S>, timeout_ms: u64) -> CommandGate {
        CommandGate {
            name: None,
            argv: argv.into_iter().map(Into::into).collect(),
            timeout_ms,
            env: Vec::new(),
            pass_env: Vec::new(),
            tail_bytes: None,
            term_grace_ms: None,
        }
    }

    /// The name recorded in the receipt.
    pub fn display_name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("command:{}", self.argv.join(" ")))
    }

    /// The command's environment: vnx's variables on the base allow-list or
    /// in [`CommandGate::pass_env`], then [`CommandGate::env`] set on top.
    pub fn child_env(&self) -> ChildEnv {
        let allow = vnx_agents::base_env_allow_list().with_names(&self.pass_env);
        ChildEnv {
            set: self.env.clone(),
            ..ChildEnv::allow_list(allow.names, allow.prefixes)
        }
    }
}

/// The last `cap` bytes of the stdout lines seen, plus a margin for redaction.
struct StdoutTail {
    buf: Vec<u8>,
    keep: usize,
}

impl StdoutTail {
    fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        self.buf.push(b'\n');
        if self.buf.len() > 2 * self.keep {
            self.buf.drain(..self.buf.len() - self.keep);
        }
    }
}

/// Runs a command gate in `worktree` with stdin on `/dev/null`, through
/// `vnx-exec`'s headless lane (see the module docs). Verdicts: exit 0 →
/// `pass`; non-zero exit → `fail`; stopped at the timeout → `error`; could not
/// start, ended by a signal vnx did not send, or interrupted through `cancel`
/// → `error`. The detail holds the exit status, the duration and the tails of
/// stderr and stdout, each redacted as a whole and only then cut to
/// [`CommandGate::tail_bytes`].
pub async fn run_command_gate(
    spec: &CommandGate,
    worktree: &Path,
    cancel: &CancelToken,
) -> GateResult {
    let t = Instant::now();
    let name = spec.display_name();
    let Some((program, args)) = spec.argv.split_first() else {
        return gate(&name, Verdict::Error, "command gate has an empty argv", t);
    };
    let cap = spec.tail_bytes.unwrap_or(DEFAULT_TAIL_BYTES).max(1);
    let window = cap + REDACT_MARGIN_BYTES;
    // The lane saves raw stdout to an event log; a gate keeps only its tail,
    // so the log goes to a private directory removed when this returns.
    let scratch = match tempfile::Builder::new().prefix("vnx-gate-").tempdir() {
        Ok(d) => d,
        Err(e) => {
            return gate(
                &name,
                Verdict::Error,
                &format!("could not create a temporary directory for the gate's output: {e}"),
                t,
            );
        }
    };
    let mut inv = vnx_exec::Invocation::new(program, args.iter().cloned());
    inv.env = spec.child_env();
    inv.cwd = Some(worktree.to_path_buf());
    let mut opts = RunOptions::new(scratch.path().join("stdout.log"));
    opts.total_timeout = Some(Duration::from_millis(spec.timeout_ms));
    opts.term_grace = Duration::from_millis(spec.term_grace_ms.unwrap_or(DEFAULT_TERM_GRACE_MS));
    opts.drain_timeout = Duration::from_millis(PIPE_GRACE_MS);
    opts.max_line_bytes = window;
    opts.stderr_tail_bytes = window;
    let mut stdout = StdoutTail {
        buf: Vec::new(),
        keep: window,
    };
    let mut observer = |line: LineRef<'_>| {
        match line {
            LineRef::Line(bytes) => stdout.push(bytes),
            LineRef::Oversize { len } => {
                stdout.push(format!("[a line of {len} bytes, not kept]").as_bytes());
            }
        }
        Flow::Continue
    };
    let report = HeadlessLane.run(&inv, &opts, &mut observer, cancel).await;
    drop(scratch);
    let elapsed_ms = t.elapsed().as_millis();
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            return gate(
                &name,
                Verdict::Error,
                &format!("could not start {program:?} in {}: {e}", worktree.display()),
                t,
            );
        }
    };
    let tails = format_tails(&report.stderr_tail, &stdout.buf, cap);
    let (verdict, head) = match (report.ended_by, report.exit) {
        (EndedBy::TimedOut { .. }, _) => (
            Verdict::Error,
            format!(
                "killed after the {} ms timeout (SIGTERM to its process group, SIGKILL {} ms later)",
                spec.timeout_ms,
                opts.term_grace.as_millis()
            ),
        ),
        (EndedBy::Interrupted, _) => (
            Verdict::Error,
            format!("interrupted after {elapsed_ms} ms: the dispatch was cancelled"),
        ),
        (_, ExitStatus::Code(0)) => (Verdict::Pass, format!("exit 0 in {elapsed_ms} ms")),
        (_, ExitStatus::Code(code)) => (Verdict::Fail, format!("exit {code} in {elapsed_ms} ms")),
        (_, ExitStatus::Signal { signal, .. }) => (
            Verdict::Error,
            format!("ended by a signal ({signal}) after {elapsed_ms} ms"),
        ),
        (_, ExitStatus::Unknown) => (
            Verdict::Error,
            format!("exit status unknown after {elapsed_ms} ms"),
        ),
    };
    let mut result = gate(&name, verdict, "", t);
    // The tails are redacted already; the head holds no output.
    result.detail = crate::gates::bound_bytes(&format!("{head}{tails}"), 2 * cap + 512);
    result
}

/// `--- stderr tail ---` and `--- stdout tail ---` sections: each stream's
/// window redacted whole, then cut to its last `cap` bytes.
fn format_tails(err: &[u8], out: &[u8], cap: usize) -> String {
    let mut s = String::new();
    for (label, bytes) in [("stderr", err), ("stdout", out)] {
        let redacted = redact_secrets(&String::from_utf8_lossy(bytes));
        let text = last_bytes(redacted.trim(), cap);
        if !text.is_empty() {
            let _ = write!(s, "\n--- {label} tail ---\n{text}");
        }
    }
    s
}

/// The last at most `cap` bytes of `s`, starting on a char boundary.
fn last_bytes(s: &str, cap: usize) -> &str {
    let mut start = s.len().saturating_sub(cap);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}
