//! The headless lane: pipes only.

use std::process::Stdio;

use tokio::process::Command;
use tokio::time::Instant;
use vnx_types::Lane;

use crate::eventlog::EventLog;
use crate::supervise::{Output, Spawned, feed_stdin, supervise};
use crate::{CancelToken, ExecError, Invocation, RunOptions, RunReport, StreamObserver};

/// Runs the CLI with stdin, stdout and stderr on pipes, e.g.
/// `claude -p --output-format stream-json` with the prompt on stdin.
#[derive(Debug, Clone, Copy, Default)]
pub struct HeadlessLane;

impl HeadlessLane {
    /// Spawns `inv` in a new process group (its pid is the group id) with
    /// exactly the environment [`crate::ChildEnv::resolve_current`] gives,
    /// writes [`Invocation::stdin`] to its stdin and closes it (or gives it
    /// `/dev/null`), and supervises it until it ends: stdout lines go to
    /// `observer` and the raw bytes to [`RunOptions::event_log`], the last
    /// stderr bytes are kept, and the timeouts, the grace after
    /// [`crate::Flow::Finished`] and `cancel` end it by killing the whole group.
    ///
    /// # Errors
    /// [`ExecError::EventLog`] if the event log cannot be created or written,
    /// [`ExecError::Spawn`] if the program cannot be started,
    /// [`ExecError::Io`] if reading its pipes fails.
    pub async fn run(
        &self,
        inv: &Invocation,
        opts: &RunOptions,
        observer: &mut dyn StreamObserver,
        cancel: &CancelToken,
    ) -> Result<RunReport, ExecError> {
        let log = EventLog::create(&opts.event_log).await?;
        let mut cmd = command(inv);
        cmd.stdin(if inv.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let start = Instant::now();
        let mut child = cmd.spawn().map_err(|source| ExecError::Spawn {
            program: inv.program.clone(),
            source,
        })?;
        let stdin_task = feed_stdin(child.stdin.take(), inv.stdin.as_deref());
        let (Some(stdout), stderr) = (child.stdout.take(), child.stderr.take()) else {
            return Err(ExecError::Invalid(
                "the child's stdout pipe is missing".into(),
            ));
        };
        let sp = Spawned {
            child,
            stdout: Output::Pipe(stdout),
            stderr,
            stdin_task,
            strip_cr: false,
            lane: Lane::Headless,
            start,
        };
        supervise(sp, log, opts, observer, cancel).await
    }
}

/// The command shared by the headless and pty lanes: argv, explicit
/// environment, cwd, own process group, killed if dropped.
pub(crate) fn command(inv: &Invocation) -> Command {
    let mut cmd = Command::new(&inv.program);
    cmd.args(&inv.args)
        .env_clear()
        .envs(inv.env.resolve_current())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(cwd) = &inv.cwd {
        cmd.current_dir(cwd);
    }
    cmd
}
