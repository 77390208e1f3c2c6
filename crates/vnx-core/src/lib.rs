//! vnx's pipeline core: [`worker`], one governed agent run end to end, and
//! [`pipeline`], the whole governed dispatch behind `vnx run` (PREPARE,
//! worktree, worker, GOVERN, gates, cross-model review, RECEIPT).
//!
//! A run goes: resolve the provider's binary → probe its `--version` (once
//! per process) → apply the auth guard and build the argv (`vnx-agents`) →
//! run it in a lane (`vnx-exec`) with the provider's stream parser as the
//! lane's observer → classify the outcome from the final event → retry
//! retryable failures with backoff → sum every attempt up in a
//! [`worker::WorkerRun`].
//!
//! **Architecture invariants**: this crate spawns no process itself (every
//! agent CLI, the `--version` probe included, runs through a `vnx-exec` lane;
//! the pipeline's git calls and command gates run through `vnx-git` and
//! `vnx-govern`); it never prints; it reads the process environment only when
//! [`worker::EnvSource::Inherit`] is chosen (tests pass a fixed one).
//!
//! Units: durations in milliseconds, money in integer micro-USD, tokens as
//! integers in [`vnx_types::Usage`]'s convention.

pub mod batch;
pub mod live;
pub mod pipeline;
pub mod probe;
pub mod signing;
pub mod worker;

pub use pipeline::{
    BuiltOn, CancelToken, DispatchInputs, DispatchOutcome, DryRun, PipelineError, PipelineEvent,
    ReviewSettings, dry_run, new_dispatch_id, run_dispatch,
};
pub use worker::{
    Backoff, EnvSource, EventLogFile, EventSink, Jitter, ProviderPause, TmuxOptions, WorkerError,
    WorkerOptions, WorkerRun, run_worker,
};
