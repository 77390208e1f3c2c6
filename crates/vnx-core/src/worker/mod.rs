//! One governed agent run, end to end: [`run_worker`].
//!
//! ```text
//! resolve binary ─► --version (cached) ─► auth guard + argv ─► lane (headless | pty | tmux)
//!        │                                                        │ stdout lines / transcript
//!        ▼                                                        ▼
//!   BinaryNotFound                                   parser ─► Outcome (from the final event)
//!                                                                 │ retryable? backoff, next attempt
//!                                                                 ▼
//!                                                            WorkerRun (attempts summed)
//! ```

pub(crate) mod binary;
mod env;
mod error;
mod observer;
mod pause;
mod retry;
mod tmux;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::time::Instant;
use vnx_agents::{
    DispatchRequest, EndCause, Exit, Outcome, ParseContext, PriceTable, ProcessEnd, Provider,
    ProviderKind, VersionCheck, build_invocation, parser_for,
};
use vnx_exec::{
    CancelToken, EndedBy, ExitStatus, HeadlessLane, PtyLane, Readiness, RunOptions, RunReport,
    Runner, TmuxLane,
};
use vnx_types::{Attempt, Billing, CostSource, Lane, Usage};

pub use env::EnvSource;
pub use error::WorkerError;
pub use observer::EventSink;
pub use pause::ProviderPause;
pub use retry::{Backoff, Jitter};

use observer::ParserObserver;

/// Settings of the tmux lane (claude only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TmuxOptions {
    /// The tmux binary. Default `tmux`.
    pub tmux: PathBuf,
    /// vnx's tmux server socket. `None`: `<run_dir>/tmux.sock` when that path
    /// is short enough for a Unix socket, else one under the temp directory.
    pub socket: Option<PathBuf>,
    /// How long claude may take to show its `❯` prompt. Default 60 s.
    pub ready_timeout: Duration,
    /// Pause between pasting the instruction and pressing Enter. Default 1 s.
    pub enter_delay: Duration,
    /// After the `Stop` hook's marker appears, how long to wait for the
    /// turn's last lines to land in the session transcript. Default 15 s.
    pub transcript_wait: Duration,
}

impl Default for TmuxOptions {
    fn default() -> Self {
        TmuxOptions {
            tmux: PathBuf::from("tmux"),
            socket: None,
            ready_timeout: Duration::from_mins(1),
            enter_delay: Duration::from_secs(1),
            transcript_wait: Duration::from_secs(15),
        }
    }
}

/// How one worker run is carried out.
#[derive(Clone)]
pub struct WorkerOptions {
    /// Directory for this run's files, created if missing: per attempt `n`
    /// (1-based) `attempt-<n>.events.ndjson` (the raw event log: stdout bytes,
    /// or for the tmux lane the session transcript), and for tmux
    /// `attempt-<n>.screen.txt`, `attempt-<n>.settings.json`, `attempt-<n>.stop`.
    pub run_dir: PathBuf,
    /// Where the worker's environment comes from. Default: vnx's own.
    pub env: EnvSource,
    /// Retries after a retryable failure (rate limited, API 5xx, crash before
    /// any output); 0 = one attempt only. Default 2.
    pub max_retries: u32,
    /// Delays between attempts.
    pub backoff: Backoff,
    /// Per attempt: stop the CLI after this much wall time. Default 30 min.
    pub total_timeout: Option<Duration>,
    /// Per attempt: stop the CLI after this long without output (headless
    /// and pty lanes). Default 10 min.
    pub inactivity_timeout: Option<Duration>,
    /// After the final event, how long the CLI may take to exit before its
    /// process group is killed. Default 2 s.
    pub finish_grace: Duration,
    /// Between `SIGTERM` and `SIGKILL`. Default 2 s.
    pub term_grace: Duration,
    /// How long to wait for pipe EOF after the CLI ended. Default 2 s.
    pub drain_timeout: Duration,
    /// Longest stdout line parsed, bytes; longer ones are counted and dropped
    /// (still in the event log). Default 16 MiB.
    pub max_line_bytes: usize,
    /// Price table for cost estimates; `None`: the built-in table. The
    /// provider's own `prices` are applied on top either way.
    pub prices: Option<PriceTable>,
    /// The tmux lane's settings.
    pub tmux: TmuxOptions,
    /// Live progress: called with every parsed event.
    pub on_event: Option<EventSink>,
    /// Provider-wide pause shared with other dispatches (a batch): waited
    /// for before every attempt, and extended to the reset time when an
    /// attempt is rate limited. `None`: this run's own backoff only.
    pub pause: Option<ProviderPause>,
    /// Run the agent inside this sandbox (`[worker] sandbox`); `None`: as is.
    pub sandbox: Option<vnx_exec::Sandbox>,
}

impl fmt::Debug for WorkerOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerOptions")
            .field("run_dir", &self.run_dir)
            .field("env", &self.env)
            .field("max_retries", &self.max_retries)
            .field("backoff", &self.backoff)
            .field("total_timeout", &self.total_timeout)
            .field("inactivity_timeout", &self.inactivity_timeout)
            .field("finish_grace", &self.finish_grace)
            .field("term_grace", &self.term_grace)
            .field("drain_timeout", &self.drain_timeout)
            .field("max_line_bytes", &self.max_line_bytes)
            .field("tmux", &self.tmux)
            .field(
                "on_event",
                &self.on_event.as_ref().map(|_| "Fn(&AgentEvent)"),
            )
            .field("pause", &self.pause)
            .field("sandbox", &self.sandbox)
            .finish_non_exhaustive()
    }
}

impl WorkerOptions {
    /// Defaults (see each field) with the run's files in `run_dir`.
    pub fn new(run_dir: impl Into<PathBuf>) -> Self {
        WorkerOptions {
            run_dir: run_dir.into(),
            env: EnvSource::Inherit,
            max_retries: 2,
            backoff: Backoff::default(),
            total_timeout: Some(Duration::from_mins(30)),
            inactivity_timeout: Some(Duration::from_mins(10)),
            finish_grace: Duration::from_secs(2),
            term_grace: Duration::from_secs(2),
            drain_timeout: Duration::from_secs(2),
            max_line_bytes: 16 * 1024 * 1024,
            prices: None,
            tmux: TmuxOptions::default(),
            on_event: None,
            pause: None,
            sandbox: None,
        }
    }
}

/// One attempt's raw event log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventLogFile {
    /// The file: raw stdout bytes (headless, pty) or a copy of the claude
    /// session transcript (tmux).
    pub path: PathBuf,
    /// SHA-256 of its bytes, lowercase hex.
    pub sha256: String,
    /// Its size, bytes.
    pub bytes: u64,
}

/// Everything a worker run produced: the last attempt's outcome and every
/// attempt summed up.
#[derive(Debug, Clone)]
pub struct WorkerRun {
    /// Provider name.
    pub provider: String,
    /// Lane it ran in.
    pub lane: Lane,
    /// Billing mode it ran under.
    pub billing: Billing,
    /// The binary that ran (absolute unless configured relative).
    pub binary: PathBuf,
    /// First line of `binary --version`, e.g. `2.1.330 (Claude Code)`.
    pub cli_version: Option<String>,
    /// The version compared with the tested range.
    pub version_check: VersionCheck,
    /// The last attempt's outcome (class, session, model, usage, cost, text, tool calls…).
    pub outcome: Outcome,
    /// Every attempt, in order, for the receipt.
    pub attempts: Vec<Attempt>,
    /// Token usage summed over all attempts.
    pub usage: Usage,
    /// Cost summed over all attempts, micro-USD.
    pub cost_usd_micros: u64,
    /// Weakest source among attempts that used tokens: `unknown` <
    /// `estimated` < `reported`.
    pub cost_source: CostSource,
    /// Wall time of the whole run (attempts and backoff waits), ms.
    pub duration_ms: u64,
    /// Whether any attempt of a subscription-mode run reported an
    /// `apiKeySource` other than `none` (an API account may have been
    /// billed). Also in `warnings`.
    pub api_key_source_flagged: bool,
    /// Raw event log of each attempt, in order.
    pub event_logs: Vec<EventLogFile>,
    /// Things to record that did not change the outcome: version out of
    /// range, flags the CLI lacks, unknown events, unparseable lines,
    /// credential source, backoff waits.
    pub warnings: Vec<String>,
    /// What the lane reported for the last attempt.
    pub last_report: RunReport,
}

impl WorkerRun {
    /// Whether the last attempt succeeded.
    pub fn succeeded(&self) -> bool {
        self.outcome.class.is_success()
    }

    /// The session id of the last attempt (what a follow-up resumes).
    pub fn session_id(&self) -> Option<&str> {
        self.outcome.session_id.as_deref()
    }

    /// The last attempt's raw event log.
    pub fn event_log(&self) -> Option<&EventLogFile> {
        self.event_logs.last()
    }
}

/// Runs one governed agent run: `request` through `provider`'s CLI in `lane`
/// (which replaces `request.lane`), retrying retryable failures.
///
/// Each attempt: the auth guard checks [`WorkerOptions::env`] and the
/// scrubbed variables never reach the child; the CLI runs in the lane with
/// the provider's parser as the lane's observer (claude tmux: the session
/// transcript is parsed once the `Stop` hook's marker appears); the outcome
/// is classified from the final event and how the process ended, never the
/// exit code alone. Retryable failures (rate limited, API 5xx, crash before
/// any output) are retried up to [`WorkerOptions::max_retries`] times after
/// [`Backoff::wait_after`]. Claude attempts get a fresh pre-assigned
/// `--session-id` each (unless resuming), so a retry never collides with
/// the session of the attempt before it. Cancelling `cancel` stops the
/// current attempt (outcome `interrupted`) and any further retry.
///
/// # Errors
/// [`WorkerError::BinaryNotFound`] when the CLI is not installed;
/// [`WorkerError::Build`] when the auth guard refuses (e.g. `ANTHROPIC_API_KEY`
/// set in subscription mode) or the request does not fit the provider/lane —
/// in both cases nothing was spawned; [`WorkerError::Exec`] when the lane
/// cannot start the CLI; [`WorkerError::Io`] for the run's own files.
pub async fn run_worker(
    request: &DispatchRequest,
    provider: &Provider,
    lane: Lane,
    options: &WorkerOptions,
    cancel: &CancelToken,
) -> Result<WorkerRun, WorkerError> {
    let start = Instant::now();
    let mut req = request.clone();
    req.lane = lane;
    std::fs::create_dir_all(&options.run_dir).map_err(WorkerError::io(
        "creating the run directory",
        &options.run_dir,
    ))?;
    let binary = binary::resolve(provider, &options.env, &req.cwd)?;
    let env_vars = options.env.vars();
    // The auth guard and the request checks run before anything is spawned.
    let first_req = attempt_request(&req, provider.kind, 0);
    let first = build_invocation(provider, &first_req, env_vars.iter().map(|(k, v)| (k, v)))?;
    let probe = binary::probe(
        provider.kind,
        &binary,
        &env::child_env(&options.env, &first, &[]),
        &options.run_dir,
    )
    .await;
    let mut warnings: Vec<String> = probe.warning(provider.kind).into_iter().collect();
    warnings.extend(first.warnings.iter().cloned());

    let mut attempts: Vec<Attempt> = Vec::new();
    let mut event_logs: Vec<EventLogFile> = Vec::new();
    let mut outcomes: Vec<Outcome> = Vec::new();
    let mut last: Option<(Outcome, RunReport)> = None;
    for n in 0..=options.max_retries {
        let attempt_req = if n == 0 {
            first_req.clone()
        } else {
            attempt_request(&req, provider.kind, n)
        };
        if let Some(pause) = &options.pause
            && pause.remaining().is_some()
        {
            let waited = pause.wait(cancel).await;
            warnings.push(format!(
                "waited {} ms for the provider's rate-limit pause before attempt {}",
                waited.as_millis(),
                n + 1
            ));
            if cancel.is_cancelled() {
                break;
            }
        }
        let (outcome, report, log, attempt_warnings) = run_attempt(
            &attempt_req,
            provider,
            &binary,
            n + 1,
            options,
            cancel,
            &env_vars,
        )
        .await?;
        for w in attempt_warnings {
            if !warnings.contains(&w) {
                warnings.push(w);
            }
        }
        attempts.push(Attempt {
            outcome: outcome.class,
            session_id: outcome.session_id.clone(),
            duration_ms: report.duration_ms,
            usage: outcome.usage,
            cost_usd_micros: outcome.cost_usd_micros,
            exit_code: outcome.exit_code.map(i64::from),
            error: outcome.error.clone(),
        });
        event_logs.push(log);
        outcomes.push(outcome.clone());
        let outcome_class = outcome.class;
        let retry = outcome.retryable() && n < options.max_retries && !cancel.is_cancelled();
        if outcome_class == vnx_types::OutcomeClass::RateLimited
            && let Some(pause) = &options.pause
        {
            pause.pause_for(options.backoff.wait_after(&outcome, n, retry::now_unix_s()));
        }
        let wait = retry.then(|| options.backoff.wait_after(&outcome, n, retry::now_unix_s()));
        last = Some((outcome, report));
        let Some(wait) = wait else { break };
        warnings.push(format!(
            "attempt {} ended {}; retrying in {} ms",
            n + 1,
            class_name(outcome_class),
            wait.as_millis()
        ));
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = cancel.cancelled() => {
                warnings.push("interrupted while waiting to retry".to_owned());
                break;
            }
        }
    }
    let Some((outcome, last_report)) = last else {
        // `0..=max_retries` always runs at least once.
        return Err(WorkerError::Io {
            context: "no attempt was made in",
            path: options.run_dir.clone(),
            source: std::io::Error::other("empty attempt loop"),
        });
    };
    // Any attempt that billed an API account in subscription mode is flagged,
    // not just the last one.
    let mut api_key_source_flagged = false;
    for o in &outcomes {
        if let Some(w) =
            vnx_agents::api_key_source_warning(o.api_key_source.as_deref(), req.billing)
        {
            api_key_source_flagged = true;
            if !warnings.contains(&w) {
                warnings.push(w);
            }
        }
    }
    for w in outcome.warnings(req.billing) {
        if !warnings.contains(&w) {
            warnings.push(w);
        }
    }
    let usage = attempts
        .iter()
        .fold(Usage::default(), |acc, a| acc.plus(&a.usage));
    let cost_usd_micros = attempts
        .iter()
        .fold(0u64, |acc, a| acc.saturating_add(a.cost_usd_micros));
    Ok(WorkerRun {
        provider: provider.name.clone(),
        lane,
        billing: req.billing,
        binary,
        cli_version: probe.text,
        version_check: probe.check,
        cost_source: weakest_cost_source(&outcomes),
        outcome,
        attempts,
        usage,
        cost_usd_micros,
        duration_ms: start.elapsed().as_millis() as u64,
        api_key_source_flagged,
        event_logs,
        warnings,
        last_report,
    })
}

/// The request of attempt `n` (0-based): claude gets a pre-assigned session
/// id (the caller's on the first attempt, a fresh UUID otherwise) unless it
/// resumes a session.
fn attempt_request(req: &DispatchRequest, kind: ProviderKind, n: u32) -> DispatchRequest {
    let mut r = req.clone();
    if kind == ProviderKind::Claude
        && r.resume_session_id.is_none()
        && (n > 0 || r.session_id.is_none())
    {
        r.session_id = Some(uuid::Uuid::new_v4().to_string());
    }
    r
}

/// The class as it is serialized (`rate_limited`, `api`…).
fn class_name(class: vnx_types::OutcomeClass) -> String {
    serde_json::to_value(class)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{class:?}"))
}

fn weakest_cost_source(outcomes: &[Outcome]) -> CostSource {
    let rank = |s: CostSource| match s {
        CostSource::Unknown => 0,
        CostSource::Estimated => 1,
        CostSource::Reported => 2,
    };
    outcomes
        .iter()
        .filter(|o| o.usage.total() > 0)
        .map(|o| o.cost_source)
        .min_by_key(|s| rank(*s))
        .or_else(|| outcomes.last().map(|o| o.cost_source))
        .unwrap_or(CostSource::Unknown)
}

/// What the lane saw, in the parsers' terms.
fn process_end(report: &RunReport) -> ProcessEnd {
    ProcessEnd {
        exit: match report.exit {
            ExitStatus::Code(c) => Exit::Code(c),
            ExitStatus::Signal { signal, .. } => Exit::Signal(signal),
            ExitStatus::Unknown => Exit::NotCollected,
        },
        cause: match report.ended_by {
            EndedBy::Finished | EndedBy::Exited => EndCause::Exited,
            EndedBy::TimedOut { .. } => EndCause::TimedOut,
            EndedBy::Interrupted => EndCause::Interrupted,
            EndedBy::Aborted => EndCause::Aborted,
        },
        oversize_lines: report.oversize_lines,
        stderr_tail: String::from_utf8_lossy(&report.stderr_tail).into_owned(),
        wall_ms: Some(report.duration_ms),
    }
}

fn sha256_file_info(path: &Path, bytes: &[u8]) -> EventLogFile {
    EventLogFile {
        path: path.to_path_buf(),
        sha256: hex::encode(Sha256::digest(bytes)),
        bytes: bytes.len() as u64,
    }
}

/// A tmux socket path: `<run_dir>/tmux.sock` if it fits in `sun_path`
/// (108 bytes with its NUL), else a short one under the temp directory.
fn tmux_socket(options: &WorkerOptions) -> PathBuf {
    if let Some(socket) = &options.tmux.socket {
        return socket.clone();
    }
    let local = options.run_dir.join("tmux.sock");
    if local.as_os_str().len() < 100 {
        return local;
    }
    let tag = &hex::encode(Sha256::digest(
        options.run_dir.as_os_str().as_encoded_bytes(),
    ))[..12];
    std::env::temp_dir()
        .join(format!("vnx-tmux-{tag}"))
        .join("s")
}

type AttemptResult = (Outcome, RunReport, EventLogFile, Vec<String>);

async fn run_attempt(
    req: &DispatchRequest,
    provider: &Provider,
    binary: &Path,
    number: u32,
    options: &WorkerOptions,
    cancel: &CancelToken,
    env_vars: &[(String, String)],
) -> Result<AttemptResult, WorkerError> {
    let dir = &options.run_dir;
    let tmux_files = (req.lane == Lane::Tmux && provider.kind == ProviderKind::Claude).then(|| {
        (
            dir.join(format!("attempt-{number}.settings.json")),
            dir.join(format!("attempt-{number}.stop")),
        )
    });
    let mut req = req.clone();
    if let Some((settings, marker)) = &tmux_files {
        tmux::write_settings(settings, marker, req.settings.as_deref())?;
        req.settings = Some(settings.display().to_string());
    }
    let inv = build_invocation(provider, &req, env_vars.iter().map(|(k, v)| (k, v)))?;
    let warnings = inv.warnings.clone();
    // tmux sets TERM for its panes; an inherited `TERM=dumb` would cripple the TUI.
    let drop_extra: &[&str] = if req.lane == Lane::Tmux {
        &["TERM"]
    } else {
        &[]
    };
    let child_env = env::child_env(&options.env, &inv, drop_extra);
    let exec_inv = vnx_exec::Invocation {
        program: binary.to_path_buf(),
        args: inv.args.clone(),
        env: child_env.clone(),
        stdin: inv.stdin.clone(),
        cwd: Some(inv.cwd.clone()),
    };
    let exec_inv = match &options.sandbox {
        Some(sandbox) => sandbox.wrap(exec_inv),
        None => exec_inv,
    };
    let prices = options
        .prices
        .clone()
        .unwrap_or_else(PriceTable::builtin)
        .with_overrides(&provider.config.prices);
    let ctx = ParseContext {
        prices,
        requested_model: req
            .model
            .clone()
            .or_else(|| provider.config.default_model.clone()),
    };
    let events_path = dir.join(format!("attempt-{number}.events.ndjson"));
    let mut run_opts = RunOptions::new(&events_path);
    run_opts.total_timeout = options.total_timeout;
    run_opts.inactivity_timeout = options.inactivity_timeout;
    run_opts.finish_grace = options.finish_grace;
    run_opts.term_grace = options.term_grace;
    run_opts.drain_timeout = options.drain_timeout;
    run_opts.max_line_bytes = options.max_line_bytes;
    let exec_err = |source| WorkerError::Exec {
        provider: provider.name.clone(),
        source,
    };

    let Some((_, marker)) = tmux_files else {
        let runner = match req.lane {
            Lane::Pty => Runner::Pty(PtyLane::default()),
            // A non-claude provider asked for tmux was refused by build_invocation.
            Lane::Headless | Lane::Tmux => Runner::Headless(HeadlessLane),
        };
        let mut parser = parser_for(inv.output, ctx);
        let mut observer = ParserObserver::new(parser.as_mut(), options.on_event.clone());
        let report = runner
            .run(&exec_inv, &run_opts, &mut observer, cancel)
            .await
            .map_err(exec_err)?;
        let outcome = parser.finish(&process_end(&report));
        let log = EventLogFile {
            path: report.event_log_path.clone(),
            sha256: report.event_log_sha256.clone(),
            bytes: report.stdout_bytes,
        };
        return Ok((outcome, report, log, warnings));
    };

    // Claude in tmux: the pane's screen is kept for the record; the events
    // come from the session transcript.
    let session = req
        .resume_session_id
        .clone()
        .or_else(|| req.session_id.clone())
        .unwrap_or_default();
    run_opts.event_log = dir.join(format!("attempt-{number}.screen.txt"));
    let tag: String = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    let mut lane = TmuxLane::new(
        tmux_socket(options),
        format!("vnx-{tag}-{number}"),
        Readiness::Contains("❯".to_owned()),
        &marker,
    );
    lane.tmux.clone_from(&options.tmux.tmux);
    lane.ready_timeout = options.tmux.ready_timeout;
    lane.enter_delay = options.tmux.enter_delay;
    let report = Runner::Tmux(lane)
        .run(
            &exec_inv,
            &run_opts,
            &mut |_: vnx_exec::LineRef<'_>| vnx_exec::Flow::Continue,
            cancel,
        )
        .await
        .map_err(exec_err)?;
    let end = process_end(&report);
    let home = env::child_var(&child_env, &options.env, "HOME").map(PathBuf::from);
    let transcript = home
        .as_deref()
        .and_then(|home| tmux::find_transcript(home, &req.cwd, &session));
    let mut warnings = warnings;
    let make_parser = || parser_for(inv.output, ctx.clone());
    let (mut parser, bytes) = if let Some(path) = &transcript {
        let wait = if report.ended_by == EndedBy::Finished {
            options.tmux.transcript_wait
        } else {
            Duration::ZERO
        };
        tmux::read_transcript(path, &make_parser, &end, wait).await?
    } else {
        warnings.push(format!(
            "no claude session transcript {session}.jsonl under {}/.claude/projects",
            home.as_deref()
                .map_or_else(|| "$HOME".to_owned(), |h| h.display().to_string())
        ));
        (make_parser(), Vec::new())
    };
    if let Some(sink) = &options.on_event {
        // Replay for live observers: the transcript is read after the fact.
        let mut replay = make_parser();
        for line in bytes.split(|b| *b == b'\n') {
            for event in replay.feed_line(line) {
                sink(&event);
            }
        }
    }
    tokio::fs::write(&events_path, &bytes)
        .await
        .map_err(WorkerError::io(
            "saving the transcript as the event log",
            &events_path,
        ))?;
    let outcome = parser.finish(&end);
    Ok((
        outcome,
        report,
        sha256_file_info(&events_path, &bytes),
        warnings,
    ))
}
