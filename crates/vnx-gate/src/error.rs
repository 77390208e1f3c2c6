//! What stops the gate from running at all. Everything it finds wrong with
//! the change is a block in the report instead.

use std::path::PathBuf;

/// Why `vnx gate --base` could not run.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// The base revision does not resolve to a commit here.
    #[error(
        "base {rev:?} is not a commit in this repository{}: {source}",
        if *shallow {
            ". This clone is shallow: fetch the base (in GitHub Actions, `actions/checkout` with `fetch-depth: 0`)"
        } else {
            ". Fetch it first (`git fetch origin`), or pass a commit that exists locally"
        }
    )]
    Base {
        /// The revision given.
        rev: String,
        /// Whether the clone is shallow (the usual cause in CI).
        shallow: bool,
        /// git's error.
        #[source]
        source: vnx_git::GitError,
    },
    /// A git command failed.
    #[error(transparent)]
    Git(#[from] vnx_git::GitError),
    /// The ledger could not be read.
    #[error(transparent)]
    Ledger(#[from] vnx_ledger::LedgerError),
    /// The ledger directory is not inside the repository, so its files at the
    /// base cannot be read from git.
    #[error(
        "the ledger {} is not inside the repository {}: `vnx gate --base` reads the base's ledger from git",
        ledger.display(), repo.display()
    )]
    LedgerOutside {
        /// The ledger directory.
        ledger: PathBuf,
        /// The repository root.
        repo: PathBuf,
    },
    /// A temporary file for `git verify-commit` could not be written.
    #[error("cannot write a temporary allowed-signers file for git verify-commit: {0}")]
    TempFile(#[source] std::io::Error),
}
