//! What a run reports.

use std::path::PathBuf;

use vnx_types::Lane;

/// How the child process ended, as far as vnx saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// It exited with this code.
    Code(i32),
    /// It was terminated by this signal number (by vnx or anyone else).
    Signal {
        /// The signal number, e.g. 9 for `SIGKILL`.
        signal: i32,
        /// Whether it dumped core.
        core_dumped: bool,
    },
    /// Not known (e.g. a tmux pane whose status tmux did not report).
    Unknown,
}

impl ExitStatus {
    /// The exit code, if it exited normally.
    pub fn code(self) -> Option<i32> {
        match self {
            ExitStatus::Code(c) => Some(c),
            _ => None,
        }
    }

    /// The signal number, if a signal terminated it.
    pub fn signal(self) -> Option<i32> {
        match self {
            ExitStatus::Signal { signal, .. } => Some(signal),
            _ => None,
        }
    }
}

impl From<std::process::ExitStatus> for ExitStatus {
    fn from(s: std::process::ExitStatus) -> Self {
        use std::os::unix::process::ExitStatusExt;
        if let Some(code) = s.code() {
            ExitStatus::Code(code)
        } else if let Some(signal) = s.signal() {
            ExitStatus::Signal {
                signal,
                core_dumped: s.core_dumped(),
            }
        } else {
            ExitStatus::Unknown
        }
    }
}

/// Which timeout fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutKind {
    /// [`crate::RunOptions::total_timeout`].
    Total,
    /// [`crate::RunOptions::inactivity_timeout`].
    Inactivity,
    /// The tmux lane's readiness check did not pass in time.
    Readiness,
}

/// Why the run ended. Decided by the first thing that happened; a later kill
/// by vnx does not change it (see [`RunReport::killed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndedBy {
    /// The observer reported the final event ([`crate::Flow::Finished`]), or
    /// (tmux) the marker file appeared. The child may have been killed after
    /// the grace period; that is normal.
    Finished,
    /// The child exited on its own without a final event.
    Exited,
    /// vnx stopped it at a timeout.
    TimedOut {
        /// Which one.
        which: TimeoutKind,
    },
    /// The cancel token fired (Ctrl-C).
    Interrupted,
    /// The observer asked to stop ([`crate::Flow::Abort`]).
    Aborted,
}

/// Everything a lane knows about one run. Units: milliseconds and bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    /// The lane that ran it.
    pub lane: Lane,
    /// Process id of the child (the tmux pane's process for the tmux lane),
    /// which is also its process group id. `None` if it never started.
    pub pid: Option<u32>,
    /// How the child process ended.
    pub exit: ExitStatus,
    /// Why the run ended.
    pub ended_by: EndedBy,
    /// Whether vnx had to signal the process group (grace, timeout, cancel,
    /// abort, or a pipe held open past the drain timeout).
    pub killed: bool,
    /// Whether vnx stopped waiting for pipe EOF after
    /// [`crate::RunOptions::drain_timeout`] (a grandchild held the pipe).
    pub pipes_abandoned: bool,
    /// Wall time from spawn to the end of supervision, ms.
    pub duration_ms: u64,
    /// Bytes read from stdout (all saved in the event log). 0 for tmux.
    pub stdout_bytes: u64,
    /// stdout lines handed to the observer with their content.
    pub lines: u64,
    /// stdout lines longer than the line cap, reported by length only.
    pub oversize_lines: u64,
    /// Bytes read from stderr (0 for pty and tmux, where stderr is the terminal).
    pub stderr_bytes: u64,
    /// The last [`crate::RunOptions::stderr_tail_bytes`] bytes of stderr, raw.
    pub stderr_tail: Vec<u8>,
    /// The event log file: raw stdout bytes (headless, pty) or the final pane
    /// text (tmux).
    pub event_log_path: PathBuf,
    /// SHA-256 of the event log file's bytes, lowercase hex.
    pub event_log_sha256: String,
}
