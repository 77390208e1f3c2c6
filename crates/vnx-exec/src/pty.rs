//! The pty lane: stdout and stderr on a pseudo-terminal.
//!
//! Built on nix's `openpty` rather than `portable-pty`, because:
//! - stdin can stay a pipe (the prompt is written and closed exactly as in the
//!   headless lane; a terminal's canonical mode would cap an input line at
//!   4 KiB and echo it into the output stream);
//! - the child is spawned by tokio like the headless one, so the exit status
//!   keeps its signal number, the process group and `kill_on_drop` are the
//!   same, and one supervision loop serves both lanes;
//! - the master is read non-blocking through tokio's reactor, so no reader
//!   thread is left blocked when a grandchild holds the terminal open;
//! - no second `nix` version and no extra dependencies.
//!
//! The cost: with `unsafe_code` forbidden there is no `pre_exec` to call
//! `setsid`, so the terminal is not the child's *controlling* terminal
//! (opening `/dev/tty` fails with `ENXIO`). `isatty()` on its stdout and
//! stderr is true, which is what CLIs check to pick their TTY behaviour.

use std::os::fd::{AsFd, OwnedFd};
use std::process::Stdio;

use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
use nix::pty::{Winsize, openpty};
use tokio::net::unix::pipe;
use tokio::time::Instant;
use vnx_types::Lane;

use crate::eventlog::EventLog;
use crate::headless::command;
use crate::supervise::{Output, Spawned, feed_stdin, supervise};
use crate::{CancelToken, ExecError, Invocation, RunOptions, RunReport, StreamObserver};

/// Runs the CLI with stdout and stderr on a pseudo-terminal of the given
/// size, so that `isatty(1)` is true for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PtyLane {
    /// Terminal width in columns. Default 200 (wide, so CLIs wrap less).
    pub cols: u16,
    /// Terminal height in rows. Default 50.
    pub rows: u16,
}

impl Default for PtyLane {
    fn default() -> Self {
        PtyLane {
            cols: 200,
            rows: 50,
        }
    }
}

impl PtyLane {
    /// Like [`crate::HeadlessLane::run`], but stdout and stderr are the slave
    /// side of a new pseudo-terminal (stderr is therefore mixed into the
    /// stdout stream and the event log; the report's stderr fields stay
    /// empty). stdin is a pipe fed [`Invocation::stdin`] and closed, or the
    /// terminal itself when that is `None`. Lines arrive with the terminal's
    /// `\r\n`; the `\r` is stripped before the observer sees them, and the
    /// event log keeps the bytes as read from the terminal.
    ///
    /// # Errors
    /// [`ExecError::Pty`] if the pseudo-terminal cannot be opened, and the
    /// errors of [`crate::HeadlessLane::run`].
    pub async fn run(
        &self,
        inv: &Invocation,
        opts: &RunOptions,
        observer: &mut dyn StreamObserver,
        cancel: &CancelToken,
    ) -> Result<RunReport, ExecError> {
        let log = EventLog::create(&opts.event_log).await?;
        let size = Winsize {
            ws_row: self.rows,
            ws_col: self.cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = openpty(&size, None).map_err(ExecError::Pty)?;
        // Neither side may leak into the child beyond its stdio.
        set_cloexec(&pty.master)?;
        set_cloexec(&pty.slave)?;
        let flags = fcntl(&pty.master, FcntlArg::F_GETFL).map_err(ExecError::Pty)?;
        fcntl(
            &pty.master,
            FcntlArg::F_SETFL(OFlag::from_bits_retain(flags) | OFlag::O_NONBLOCK),
        )
        .map_err(ExecError::Pty)?;

        let dup = |fd: &OwnedFd| {
            fd.try_clone().map_err(|source| ExecError::Io {
                context: "duplicating the pty",
                source,
            })
        };
        let mut cmd = command(inv);
        cmd.stdout(Stdio::from(dup(&pty.slave)?))
            .stderr(Stdio::from(dup(&pty.slave)?));
        if inv.stdin.is_some() {
            cmd.stdin(Stdio::piped());
        } else {
            cmd.stdin(Stdio::from(dup(&pty.slave)?));
        }
        let start = Instant::now();
        let spawned = cmd.spawn();
        // Our copies of the slave must close now: the master reads EOF (EIO)
        // only once no process holds the slave side.
        drop(cmd);
        drop(pty.slave);
        let mut child = spawned.map_err(|source| ExecError::Spawn {
            program: inv.program.clone(),
            source,
        })?;
        let stdin_task = feed_stdin(child.stdin.take(), inv.stdin.as_deref());
        let master = pipe::Receiver::from_owned_fd_unchecked(pty.master).map_err(|source| {
            ExecError::Io {
                context: "registering the pty",
                source,
            }
        })?;
        let sp = Spawned {
            child,
            stdout: Output::Pty(master),
            stderr: None,
            stdin_task,
            strip_cr: true,
            lane: Lane::Pty,
            start,
        };
        supervise(sp, log, opts, observer, cancel).await
    }
}

fn set_cloexec(fd: &impl AsFd) -> Result<(), ExecError> {
    fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))
        .map(drop)
        .map_err(ExecError::Pty)
}
