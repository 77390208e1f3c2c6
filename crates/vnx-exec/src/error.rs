//! Errors of the lanes.

use std::path::PathBuf;

/// Why a lane could not run an invocation to a report. A child that crashes,
/// hangs or prints garbage is not an error — that is what
/// [`crate::RunReport`] describes.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The program could not be started (not found, not executable, bad cwd).
    #[error(
        "could not start `{program}`: {source}; check that it is installed and on PATH and that the working directory exists"
    )]
    Spawn {
        /// The program as given in the invocation.
        program: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The event log file could not be created or written.
    #[error("could not write the event log {path}: {source}")]
    EventLog {
        /// The event log path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Reading the child's output or waiting for it failed.
    #[error("I/O error while {context}: {source}")]
    Io {
        /// What vnx was doing.
        context: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// The pseudo-terminal could not be set up.
    #[error("could not set up a pseudo-terminal: {0}")]
    Pty(#[source] nix::Error),
    /// A tmux command failed or printed something unexpected.
    #[error(
        "tmux {command} failed: {detail}; is tmux installed and the socket directory writable?"
    )]
    Tmux {
        /// The tmux subcommand, e.g. `new-session`.
        command: String,
        /// Exit status and stderr tail, or what was unexpected.
        detail: String,
    },
    /// The invocation cannot be run by this lane (e.g. an empty program name).
    #[error("invalid invocation: {0}")]
    Invalid(String),
}
