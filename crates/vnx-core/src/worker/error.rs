//! Why a worker run could not produce an outcome at all.

use std::path::PathBuf;

/// A worker run that could not be carried out. A CLI that crashes, hangs,
/// prints garbage or reports an API error is *not* an error here: that is an
/// outcome class in [`super::WorkerRun`]. These are the cases where no
/// attempt could be made (or its output could not be kept).
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The provider's binary was not found.
    #[error(
        "provider `{provider}`: cannot find its binary `{program}` (looked in: {looked}); {hint}; run `vnx doctor` to check every provider"
    )]
    BinaryNotFound {
        /// Provider name, e.g. `claude`.
        provider: String,
        /// The program as configured (`binary` in `[providers.<name>]`, or the default name).
        program: String,
        /// Where vnx looked: the configured path, or each `PATH` directory, joined by `, `.
        looked: String,
        /// How to install it or point vnx at it.
        hint: String,
    },
    /// The auth guard refused the dispatch, or the request cannot be turned
    /// into an invocation (lane not supported, bad `command` template…).
    #[error(transparent)]
    Build(#[from] vnx_agents::BuildError),
    /// The lane could not run the CLI (spawn failure, event log not writable, tmux failure).
    #[error("provider `{provider}`: {source}")]
    Exec {
        /// Provider name.
        provider: String,
        /// The lane's error.
        #[source]
        source: vnx_exec::ExecError,
    },
    /// A file of the run (run directory, tmux settings, transcript copy) could not be written or read.
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
}

impl WorkerError {
    pub(crate) fn io(
        context: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> WorkerError {
        let path = path.into();
        move |source| WorkerError::Io {
            context,
            path,
            source,
        }
    }
}
