//! Why a dispatch could not be carried out (as opposed to a dispatch that ran
//! and failed, which is a receipt).

use std::path::PathBuf;

/// A dispatch that could not start, or whose bookkeeping failed.
///
/// Errors returned before the `dispatch.started` record was appended mean
/// nothing was spawned and no receipt exists. After it, every error path
/// still appends a `dispatch.receipt` with status `error` (the error's text
/// is in its `warnings`); [`PipelineError::Ledger`] on the receipt itself is
/// the one case where that was impossible.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// `vnx.toml` or a flag is unusable.
    #[error(transparent)]
    Config(#[from] vnx_prepare::ConfigError),
    /// The skill is unknown (the message lists the known ones) or malformed.
    #[error(transparent)]
    Skill(#[from] vnx_prepare::SkillError),
    /// The instruction could not be prepared (empty task, unreadable schema).
    #[error(transparent)]
    Prepare(#[from] vnx_prepare::PrepareError),
    /// A git operation failed (not a repository, no commits, worktree creation…).
    #[error(transparent)]
    Git(#[from] vnx_git::GitError),
    /// The ledger could not be opened or appended to.
    #[error("ledger {}: {source}", dir.display())]
    Ledger {
        /// The ledger directory.
        dir: PathBuf,
        /// What went wrong.
        #[source]
        source: vnx_ledger::LedgerError,
    },
    /// The provider's CLI is not installed where vnx looks.
    #[error(
        "provider `{provider}`: cannot find its binary `{program}` ({looked}); run `vnx doctor` to check every provider"
    )]
    BinaryNotFound {
        /// Provider name.
        provider: String,
        /// The configured program.
        program: String,
        /// Where vnx looked.
        looked: String,
    },
    /// The worker run could not be carried out at all (auth guard, spawn failure).
    #[error(transparent)]
    Worker(#[from] crate::worker::WorkerError),
    /// The request cannot be turned into an invocation (dry run).
    #[error(transparent)]
    Build(#[from] vnx_agents::BuildError),
    /// A file of the dispatch (run directory, schema copy) could not be written.
    #[error("{context} {}: {source}", path.display())]
    Io {
        /// What vnx was doing.
        context: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A receipt body could not be serialized (a bug).
    #[error("cannot serialize a ledger record: {0}")]
    Serialize(#[from] serde_json::Error),
    /// `[worker] sandbox` (or `--sandbox`) is on, but this machine cannot
    /// sandbox the worker; the dispatch does not start.
    #[error(
        "the worker sandbox is not available: {0}; run without --sandbox / [worker] sandbox, or see `vnx doctor`"
    )]
    Sandbox(String),
    /// A gate task crashed.
    #[error("a gate crashed: {0}")]
    GateCrashed(String),
}

impl PipelineError {
    pub(crate) fn io(
        context: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> PipelineError {
        let path = path.into();
        move |source| PipelineError::Io {
            context,
            path,
            source,
        }
    }

    pub(crate) fn ledger(dir: &std::path::Path) -> impl FnOnce(vnx_ledger::LedgerError) -> Self {
        let dir = dir.to_path_buf();
        move |source| PipelineError::Ledger { dir, source }
    }
}
