//! The supervision loop shared by the headless and pty lanes: read stdout
//! into lines and the event log, keep a stderr tail, watch the timeouts, the
//! cancel token and the observer's verdict, and kill the process group.

use nix::sys::signal::Signal;
use std::io;
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tokio::process::{Child, ChildStderr, ChildStdout};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};
use vnx_types::Lane;

use crate::eventlog::EventLog;
use crate::kill::signal_group;
use crate::lines::LineSplitter;
use crate::tail::TailBuffer;
use crate::{
    CancelToken, EndedBy, ExecError, ExitStatus, Flow, RunOptions, RunReport, StreamObserver,
    TimeoutKind,
};

/// Where the child's stdout comes from.
pub(crate) enum Output {
    /// A pipe (headless).
    Pipe(ChildStdout),
    /// The master side of a pseudo-terminal, in non-blocking mode (pty).
    /// tokio's pipe receiver is a plain non-blocking `read(2)` on a
    /// registered fd, which is what a pty master needs too.
    Pty(pipe::Receiver),
}

impl Output {
    /// Reads some bytes; `Ok(0)` is EOF. Cancel-safe.
    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Output::Pipe(pipe) => pipe.read(buf).await,
            Output::Pty(master) => match master.read(buf).await {
                // Linux reports "no process holds the slave side any more" as
                // EIO: that is EOF.
                Err(e) if e.raw_os_error() == Some(nix::errno::Errno::EIO as i32) => Ok(0),
                other => other,
            },
        }
    }
}

/// A spawned child ready to be supervised.
pub(crate) struct Spawned {
    pub(crate) child: Child,
    pub(crate) stdout: Output,
    pub(crate) stderr: Option<ChildStderr>,
    /// The task feeding stdin, aborted at the end so the pipe is closed.
    pub(crate) stdin_task: Option<JoinHandle<()>>,
    /// Strip `\r` before `\n` (a terminal's `ONLCR`).
    pub(crate) strip_cr: bool,
    pub(crate) lane: Lane,
    pub(crate) start: Instant,
}

/// Kills the process group when dropped: the final sweep after a normal end,
/// and the cleanup when the run's future is dropped half-way.
struct GroupGuard {
    pgid: u32,
    stdin_task: Option<JoinHandle<()>>,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        signal_group(self.pgid, Signal::SIGKILL);
        if let Some(task) = self.stdin_task.take() {
            task.abort();
        }
    }
}

/// The kill escalation: `SIGTERM` to the group now, `SIGKILL` at `kill_at`.
#[derive(Debug, Default)]
struct Stop {
    pgid: u32,
    term_grace: std::time::Duration,
    terminating: bool,
    kill_at: Option<Instant>,
    /// After `SIGKILL`, when to stop waiting for the exit (a process stuck
    /// in the kernel cannot be waited for forever).
    give_up_at: Option<Instant>,
    killed: bool,
}

impl Stop {
    fn terminate(&mut self) {
        if !self.terminating {
            self.terminating = true;
            self.killed = true;
            signal_group(self.pgid, Signal::SIGTERM);
            self.kill_at = Some(Instant::now() + self.term_grace);
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Deadline {
    Total,
    Inactivity,
    Grace,
    Kill,
    GiveUp,
    Drain,
}

async fn read_stderr(err: &mut Option<ChildStderr>, buf: &mut [u8]) -> io::Result<usize> {
    match err {
        Some(e) => e.read(buf).await,
        None => std::future::pending().await,
    }
}

async fn sleep_to(next: Option<(Instant, Deadline)>) -> Deadline {
    match next {
        Some((at, what)) => {
            sleep_until(at).await;
            what
        }
        None => std::future::pending().await,
    }
}

fn earliest(next: &mut Option<(Instant, Deadline)>, at: Option<Instant>, what: Deadline) {
    if let Some(at) = at
        && next.is_none_or(|(n, _)| at < n)
    {
        *next = Some((at, what));
    }
}

fn io_err(context: &'static str) -> impl FnOnce(io::Error) -> ExecError {
    move |source| ExecError::Io { context, source }
}

pub(crate) async fn supervise(
    sp: Spawned,
    mut log: EventLog,
    opts: &RunOptions,
    obs: &mut dyn StreamObserver,
    cancel: &CancelToken,
) -> Result<RunReport, ExecError> {
    let Spawned {
        mut child,
        mut stdout,
        stderr: mut err,
        stdin_task,
        strip_cr,
        lane,
        start,
    } = sp;
    let pid = child.id();
    let pgid = pid.unwrap_or(0);
    let _guard = GroupGuard { pgid, stdin_task };

    let mut splitter = LineSplitter::new(opts.max_line_bytes, strip_cr);
    let mut tail = TailBuffer::new(opts.stderr_tail_bytes);
    let mut out_buf = vec![0u8; 64 * 1024];
    let mut err_buf = vec![0u8; 16 * 1024];
    let mut out_open = true;
    let mut err_open = err.is_some();
    let mut stdout_bytes = 0u64;

    let mut status: Option<ExitStatus> = None;
    let mut ended: Option<EndedBy> = None;
    let mut finished_at: Option<Instant> = None;
    let mut last_activity = start;
    let mut exited_at: Option<Instant> = None;
    let mut stop = Stop {
        pgid,
        term_grace: opts.term_grace,
        ..Stop::default()
    };
    let mut pipes_abandoned = false;
    let total_deadline = opts.total_timeout.map(|d| start + d);

    loop {
        if status.is_some() && !out_open && !err_open {
            break;
        }
        let mut next = None;
        if status.is_none() && !stop.terminating {
            earliest(&mut next, total_deadline, Deadline::Total);
            earliest(
                &mut next,
                opts.inactivity_timeout.map(|d| last_activity + d),
                Deadline::Inactivity,
            );
            earliest(
                &mut next,
                finished_at.map(|t| t + opts.finish_grace),
                Deadline::Grace,
            );
        }
        earliest(&mut next, stop.kill_at, Deadline::Kill);
        if status.is_none() {
            earliest(&mut next, stop.give_up_at, Deadline::GiveUp);
        }
        earliest(
            &mut next,
            exited_at.map(|t| t + opts.drain_timeout),
            Deadline::Drain,
        );

        let mut flow = Flow::Continue;
        tokio::select! {
            biased;
            () = cancel.cancelled(), if !stop.terminating && status.is_none() => {
                ended.get_or_insert(EndedBy::Interrupted);
                stop.terminate();
            }
            what = sleep_to(next) => match what {
                Deadline::Total | Deadline::Inactivity => {
                    let which = if matches!(what, Deadline::Total) {
                        TimeoutKind::Total
                    } else {
                        TimeoutKind::Inactivity
                    };
                    ended.get_or_insert(EndedBy::TimedOut { which });
                    stop.terminate();
                }
                Deadline::Grace => stop.terminate(),
                Deadline::Kill => {
                    signal_group(pgid, Signal::SIGKILL);
                    stop.kill_at = None;
                    stop.give_up_at = Some(Instant::now() + opts.drain_timeout);
                }
                Deadline::GiveUp => {
                    // SIGKILL did not end it: report what is known.
                    pipes_abandoned = out_open || err_open;
                    break;
                }
                Deadline::Drain => {
                    // A grandchild holds a pipe open after the child is gone.
                    signal_group(pgid, Signal::SIGKILL);
                    stop.killed = true;
                    pipes_abandoned = true;
                    break;
                }
            },
            r = stdout.read(&mut out_buf), if out_open => {
                let n = r.map_err(io_err("reading the child's stdout"))?;
                if n == 0 {
                    out_open = false;
                    flow = splitter.finish(obs);
                } else {
                    last_activity = Instant::now();
                    stdout_bytes += n as u64;
                    log.write(&out_buf[..n]).await?;
                    flow = splitter.push(&out_buf[..n], obs);
                }
            }
            r = read_stderr(&mut err, &mut err_buf), if err_open => {
                let n = r.map_err(io_err("reading the child's stderr"))?;
                if n == 0 {
                    err_open = false;
                } else {
                    last_activity = Instant::now();
                    tail.push(&err_buf[..n]);
                }
            }
            r = child.wait(), if status.is_none() => {
                status = Some(r.map_err(io_err("waiting for the child"))?.into());
                exited_at = Some(Instant::now());
            }
        }
        match flow {
            Flow::Continue => {}
            Flow::Finished => {
                if finished_at.is_none() {
                    finished_at = Some(Instant::now());
                    ended.get_or_insert(EndedBy::Finished);
                }
            }
            Flow::Abort => {
                ended.get_or_insert(EndedBy::Aborted);
                stop.terminate();
            }
        }
    }
    if out_open {
        splitter.finish(obs);
    }
    let (event_log_path, event_log_sha256, _) = log.finish().await?;
    Ok(RunReport {
        lane,
        pid,
        exit: status.unwrap_or(ExitStatus::Unknown),
        ended_by: ended.unwrap_or(EndedBy::Exited),
        killed: stop.killed,
        pipes_abandoned,
        duration_ms: start.elapsed().as_millis() as u64,
        stdout_bytes,
        lines: splitter.lines,
        oversize_lines: splitter.oversize,
        stderr_bytes: tail.total(),
        stderr_tail: tail.into_vec(),
        event_log_path,
        event_log_sha256,
    })
}

/// Writes `bytes` to the child's stdin in the background, then closes it. A
/// child that exits without reading gives `EPIPE`, which is not an error here.
pub(crate) fn feed_stdin(
    stdin: Option<tokio::process::ChildStdin>,
    bytes: Option<&[u8]>,
) -> Option<JoinHandle<()>> {
    let mut stdin = stdin?;
    let bytes = bytes.unwrap_or_default().to_vec();
    Some(tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let _ = stdin.write_all(&bytes).await;
        let _ = stdin.shutdown().await;
        drop(stdin);
    }))
}
