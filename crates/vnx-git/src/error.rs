//! The one error type of this crate.

use std::io;
use std::path::PathBuf;

/// What went wrong running git. Every variant names the input it failed on;
/// a failed command keeps the command line, its exit status and the tail of
/// its stderr.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// `git` could not be started at all.
    #[error("could not run `{command}`: {source}; is git installed and on PATH?")]
    Spawn {
        /// The command line, for display.
        command: String,
        /// The spawn error.
        #[source]
        source: io::Error,
    },
    /// `git` ran and exited unsuccessfully.
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        /// The command line, for display.
        command: String,
        /// How it ended, e.g. `exit status: 128`.
        status: String,
        /// The last bytes of stderr (lossy UTF-8, trimmed).
        stderr: String,
    },
    /// The directory is not inside a git work tree.
    #[error("{} is not inside a git repository ({stderr}); run `git init` there or use --in-place", path.display())]
    NotARepository {
        /// The directory that was asked about.
        path: PathBuf,
        /// git's explanation.
        stderr: String,
    },
    /// The repository has no commit yet, so there is no HEAD to start from.
    #[error("{} has no commits yet; make a first commit so vnx has a base to start worktrees from", path.display())]
    NoCommits {
        /// The repository.
        path: PathBuf,
    },
    /// A dispatch id that cannot be used as a branch name and a directory name.
    #[error("invalid dispatch id {id:?}: {reason}")]
    InvalidDispatchId {
        /// The id given.
        id: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A revision argument that vnx refuses to pass to git.
    #[error("invalid revision {rev:?}: {reason}")]
    InvalidRevision {
        /// The revision given.
        rev: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The worktree directory for a dispatch id already exists.
    #[error("worktree directory {} already exists; use a fresh dispatch id or run `vnx worktrees prune`", path.display())]
    WorktreeExists {
        /// The existing directory.
        path: PathBuf,
    },
    /// A file operation vnx does itself (not through git) failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What vnx was doing, e.g. `could not update`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A dispatch worktree is no longer what vnx created: its `.git` file is
    /// gone or points elsewhere, its branch is gone, or its HEAD holds
    /// commits the dispatch branch cannot take without losing others. vnx
    /// then runs no git command there and leaves the worktree as it is.
    #[error("the dispatch worktree {} was tampered with: {detail}; vnx committed nothing and kept the worktree as it is for inspection", worktree.display())]
    Tampered {
        /// The worktree.
        worktree: PathBuf,
        /// What was found.
        detail: String,
    },
    /// git printed something this crate does not understand.
    #[error("unexpected output from `{command}`: {detail}")]
    Parse {
        /// The command line, for display.
        command: String,
        /// What could not be parsed.
        detail: String,
    },
}

/// Result alias of this crate.
pub type Result<T, E = GitError> = std::result::Result<T, E>;
