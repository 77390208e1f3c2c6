//! vnx's lanes: the only crate that spawns agent processes.
//!
//! A lane runs an already-built [`Invocation`] (program, argv, environment,
//! stdin bytes, working directory; argv building belongs to `vnx-agents`) and
//! supervises it until it ends, returning a [`RunReport`]. Three lanes share one
//! interface, [`Runner`]:
//!
//! - [`Runner::Headless`]: pipes only. The child runs in its own process group,
//!   stdin is fed the prompt and closed, stdout is split into lines of bounded
//!   size and handed to a [`StreamObserver`] (the parser layer) while its raw
//!   bytes are saved to the event log file and hashed.
//! - [`Runner::Pty`]: the same, with stdout and stderr on a pseudo-terminal so
//!   the child sees `isatty(1) == true`.
//! - [`Runner::Tmux`]: an interactive session in an ephemeral tmux session on
//!   vnx's own tmux server; the instruction is pasted, completion comes from a
//!   marker file the caller's `Stop` hook writes.
//!
//! Every run ends the same way: the whole process group is signalled
//! (`SIGTERM`, then `SIGKILL` after [`RunOptions::term_grace`]) unless it ended
//! on its own, and a final `SIGKILL` sweep of the group catches stragglers.
//! Waiting for pipe EOF after the child exits is capped by
//! [`RunOptions::drain_timeout`], because a grandchild may hold the pipe open.
//!
//! **Architecture invariants**: no other vnx crate spawns an agent process;
//! this crate never prints; it never interprets the agent's events (the
//! observer does) — it only learns "the final event arrived" through
//! [`Flow::Finished`].

mod cancel;
mod env;
mod error;
mod eventlog;
mod headless;
mod kill;
mod lines;
mod pty;
mod report;
pub mod sandbox;
mod supervise;
mod tail;
mod tmux;

use std::path::PathBuf;
use std::time::Duration;

pub use cancel::CancelToken;
pub use env::{ChildEnv, EnvBase};
pub use error::ExecError;
pub use headless::HeadlessLane;
pub use lines::{Flow, LineRef, StreamObserver};
pub use pty::PtyLane;
pub use report::{EndedBy, ExitStatus, RunReport, TimeoutKind};
pub use sandbox::Sandbox;
pub use tmux::{Readiness, TmuxLane};

/// What to run: an already-built command line. Built by the agent layer, run
/// unchanged by every lane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// The program: a path, or a bare name looked up in the child's `PATH`.
    pub program: PathBuf,
    /// Arguments after the program name, passed as an argv array (never
    /// through a shell).
    pub args: Vec<String>,
    /// The child's environment, built explicitly (see [`ChildEnv`]).
    pub env: ChildEnv,
    /// Bytes for the child's standard input. Headless and pty lanes write
    /// them to a pipe and then close it; `None` gives the headless child
    /// `/dev/null` and the pty child the terminal itself. The tmux lane pastes
    /// them into the pane as the instruction.
    pub stdin: Option<Vec<u8>>,
    /// Working directory; `None` inherits vnx's.
    pub cwd: Option<PathBuf>,
}

impl Invocation {
    /// An invocation of `program` with `args`, the parent's environment,
    /// no stdin and the current directory.
    pub fn new<I, S>(program: impl Into<PathBuf>, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Invocation {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
            env: ChildEnv::default(),
            stdin: None,
            cwd: None,
        }
    }
}

/// Limits and file locations of one run, shared by all lanes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOptions {
    /// Where the raw stdout bytes are saved (created or truncated). The tmux
    /// lane saves the final pane text there instead.
    pub event_log: PathBuf,
    /// Stop the run after this much wall time. `None`: no limit.
    pub total_timeout: Option<Duration>,
    /// Stop the run when neither stdout nor stderr produced a byte for this
    /// long. `None`: no watchdog. Ignored by the tmux lane (the screen is
    /// never used to judge progress).
    pub inactivity_timeout: Option<Duration>,
    /// After the observer returned [`Flow::Finished`], how long the child may
    /// take to exit on its own before its group is killed. Default 2 s.
    pub finish_grace: Duration,
    /// Time between `SIGTERM` and `SIGKILL` to the process group. Default 2 s.
    pub term_grace: Duration,
    /// After the child exited (or was killed), how long to keep reading its
    /// pipes waiting for EOF; a grandchild holding them open is killed and the
    /// pipes abandoned when this passes. Default 2 s.
    pub drain_timeout: Duration,
    /// Longest stdout line, in bytes without its newline, handed to the
    /// observer with its content; longer lines are reported by length only
    /// ([`LineRef::Oversize`]) and never held in memory beyond this cap.
    /// Default 16 MiB.
    pub max_line_bytes: usize,
    /// How many trailing stderr bytes to keep for the report. Default 64 KiB.
    pub stderr_tail_bytes: usize,
}

impl RunOptions {
    /// Defaults for a run whose event log goes to `event_log`: no total
    /// timeout, no inactivity watchdog, 2 s graces and drain, 16 MiB lines,
    /// 64 KiB stderr tail.
    pub fn new(event_log: impl Into<PathBuf>) -> Self {
        RunOptions {
            event_log: event_log.into(),
            total_timeout: None,
            inactivity_timeout: None,
            finish_grace: Duration::from_secs(2),
            term_grace: Duration::from_secs(2),
            drain_timeout: Duration::from_secs(2),
            max_line_bytes: 16 * 1024 * 1024,
            stderr_tail_bytes: 64 * 1024,
        }
    }
}

/// One of the three lanes, ready to run invocations. The pipeline holds a
/// `Runner` and does not care which lane it is.
///
/// ```no_run
/// use std::time::Duration;
/// use vnx_exec::{CancelToken, ChildEnv, Flow, HeadlessLane, Invocation, LineRef, RunOptions, Runner};
///
/// # async fn demo() -> Result<(), vnx_exec::ExecError> {
/// let mut inv = Invocation::new("claude", ["-p", "--output-format", "stream-json", "--verbose"]);
/// inv.env = ChildEnv::default().remove("ANTHROPIC_API_KEY").remove("CLAUDECODE");
/// inv.stdin = Some(b"Write hello.txt".to_vec());
/// let mut opts = RunOptions::new("/tmp/d-1/events.ndjson");
/// opts.total_timeout = Some(Duration::from_secs(1800));
/// opts.inactivity_timeout = Some(Duration::from_secs(300));
/// // The parser layer's observer; a closure works too.
/// let mut observer = |line: LineRef<'_>| match line {
///     LineRef::Line(l) if l.starts_with(br#"{"type":"result""#) => Flow::Finished,
///     _ => Flow::Continue,
/// };
/// let cancel = CancelToken::new(); // the CLI calls cancel.cancel() on Ctrl-C
/// let report = Runner::Headless(HeadlessLane).run(&inv, &opts, &mut observer, &cancel).await?;
/// println!("{:?} after {} ms, log sha256 {}", report.ended_by, report.duration_ms, report.event_log_sha256);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub enum Runner {
    /// Pipes only.
    Headless(HeadlessLane),
    /// stdout and stderr on a pseudo-terminal.
    Pty(PtyLane),
    /// An interactive session in tmux, completion by marker file.
    Tmux(TmuxLane),
}

impl Runner {
    /// Which lane this is, as recorded in receipts.
    pub fn lane(&self) -> vnx_types::Lane {
        match self {
            Runner::Headless(_) => vnx_types::Lane::Headless,
            Runner::Pty(_) => vnx_types::Lane::Pty,
            Runner::Tmux(_) => vnx_types::Lane::Tmux,
        }
    }

    /// Runs `inv` to its end (see the lane's own `run` for details) and
    /// reports how it ended. Cancelling `cancel` (the caller wires it to
    /// Ctrl-C) stops the run and kills its processes; so does dropping the
    /// returned future. The tmux lane has no stdout stream, so it never calls
    /// `observer` (its transcript file is the caller's to read).
    ///
    /// # Errors
    /// [`ExecError`] when the process cannot be started, the event log cannot
    /// be written, or (tmux) a tmux command fails. A child that crashes, hangs
    /// or prints garbage is not an error: that is in the [`RunReport`].
    pub async fn run(
        &self,
        inv: &Invocation,
        opts: &RunOptions,
        observer: &mut dyn StreamObserver,
        cancel: &CancelToken,
    ) -> Result<RunReport, ExecError> {
        match self {
            Runner::Headless(lane) => lane.run(inv, opts, observer, cancel).await,
            Runner::Pty(lane) => lane.run(inv, opts, observer, cancel).await,
            Runner::Tmux(lane) => lane.run(inv, opts, cancel).await,
        }
    }
}
