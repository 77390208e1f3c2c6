//! `vnx run`: one governed dispatch (the pipeline is `vnx_core::pipeline`).

#[path = "run_view.rs"]
pub(crate) mod run_view;

use std::io::{IsTerminal as _, Read as _};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use vnx_core::pipeline::{DispatchInputs, ReviewSettings};
use vnx_core::{CancelToken, EnvSource};
use vnx_prepare::{GateMode, Overrides};
use vnx_types::{Billing, DispatchStatus, Lane};

use crate::Outcome;
use crate::term::escape;

/// Arguments of `vnx run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The task. Without it, `--task-file` or stdin gives the task.
    pub prompt: Option<String>,
    /// Read the task from this file.
    #[arg(long, value_name = "FILE", conflicts_with = "prompt")]
    pub task_file: Option<PathBuf>,
    /// Skill to run (`vnx skills list`).
    #[arg(long, default_value = "implement")]
    pub skill: String,
    /// Run in the current tree instead of a fresh worktree.
    #[arg(long)]
    pub in_place: bool,
    /// Keep the worktree even when the dispatch passes.
    #[arg(long)]
    pub keep: bool,
    /// Provider, model, lane, limits, gates, billing, ledger, review.
    #[command(flatten)]
    pub dispatch: DispatchArgs,
    /// Print the receipt as JSON.
    #[arg(long)]
    pub json: bool,
    /// Print the instruction and the exact argv; run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Use this dispatch id instead of a fresh one (tests, scripted batches).
    #[arg(long, value_name = "ID", hide = true)]
    pub dispatch_id: Option<String>,
}

/// Runs `vnx run`. Exit codes: 0 passed, 1 gates failed, 2 usage or
/// configuration error, 3 worker error, timeout or interruption.
pub fn run(args: &RunArgs) -> Result<Outcome> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let task = read_task(args)?;
    let inputs = inputs(args, &cwd, task)?;
    if args.dry_run {
        return dry_run(&inputs);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(dispatch(args, &inputs))
}

async fn dispatch(args: &RunArgs, inputs: &DispatchInputs) -> Result<Outcome> {
    let cancel = CancelToken::new();
    let signals = watch_signals(
        cancel.clone(),
        "vnx: interrupted; stopping the worker and writing the receipt… (Ctrl-C again to quit at once, leaving an orphaned dispatch)",
    );
    let mut view = run_view::LiveView::new();
    let result = vnx_core::pipeline::run_dispatch(inputs, &mut |e| view.on_event(e), &cancel).await;
    view.finish();
    signals.abort();
    let outcome = result.map_err(|e| anyhow::anyhow!(e))?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&outcome.receipt)?)?;
    } else {
        out!("{}", run_view::summary(&outcome, view.shown_warnings()))?;
    }
    Ok(match outcome.receipt.status {
        DispatchStatus::Passed => Outcome::Ok,
        DispatchStatus::Failed => Outcome::Problems,
        DispatchStatus::Error | DispatchStatus::Timeout | DispatchStatus::Interrupted => {
            Outcome::WorkerFailed
        }
    })
}

/// Cancels `cancel` on the first Ctrl-C (SIGINT), SIGTERM or SIGHUP (the
/// terminal or SSH session closed), printing `message`; a second Ctrl-C
/// quits at once with exit code 130, leaving orphaned dispatches that `vnx
/// verify-ledger` reports.
///
/// The handlers are installed before this returns, so a signal that
/// arrives once the dispatch has started is never the default action
/// (which would end vnx without a receipt and leave the worker running).
/// Must be called inside a tokio runtime.
pub(crate) fn watch_signals(
    cancel: CancelToken,
    message: &'static str,
) -> tokio::task::JoinHandle<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).ok();
    let mut terminate = signal(SignalKind::terminate()).ok();
    let mut hangup = signal(SignalKind::hangup()).ok();
    tokio::spawn(async move {
        tokio::select! {
            () = next(&mut interrupt) => {}
            () = next(&mut terminate) => {}
            () = next(&mut hangup) => {}
        }
        errln!("{message}");
        cancel.cancel();
        next(&mut interrupt).await;
        errln!(
            "vnx: quit without a receipt; `vnx verify-ledger` will report the dispatch as orphaned"
        );
        std::process::exit(130);
    })
}

/// The next delivery of a signal; never, when its handler could not be installed.
pub(crate) async fn next(signal: &mut Option<tokio::signal::unix::Signal>) {
    match signal.as_mut() {
        Some(s) => {
            if s.recv().await.is_none() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending::<()>().await,
    }
}

fn dry_run(inputs: &DispatchInputs) -> Result<Outcome> {
    let d = vnx_core::pipeline::dry_run(inputs)?;
    outln!("# vnx run --dry-run: nothing was run")?;
    outln!("# dispatch id (not reserved): {}", d.dispatch_id)?;
    outln!("# working directory: {}", d.cwd.display())?;
    let mut argv = vec![shell_quote(&d.program)];
    argv.extend(d.args.iter().map(|a| shell_quote(a)));
    outln!("# argv (the instruction goes on stdin):")?;
    outln!("{}", escape(&argv.join(" ")))?;
    for (k, v) in &d.env_set {
        outln!("# env set: {k}={}", escape(v))?;
    }
    if !d.env_remove.is_empty() {
        outln!("# env removed: {}", d.env_remove.join(" "))?;
    }
    for w in &d.warnings {
        outln!("# warning: {}", escape(w))?;
    }
    outln!(
        "# instruction ({} bytes, sha256 {}):",
        d.instruction.len(),
        d.instruction_sha256
    )?;
    outln!("{}", escape(&d.instruction))?;
    Ok(Outcome::Ok)
}

/// A word as a POSIX shell would need it, for display only.
fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@+%".contains(&b));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// Largest task read from `--task-file` or stdin, bytes.
pub const MAX_TASK_BYTES: u64 = 16 * 1024 * 1024;

/// The task: the argument, else `--task-file`, else stdin (when it is not a terminal).
fn read_task(args: &RunArgs) -> Result<String> {
    if let Some(p) = &args.prompt {
        return Ok(p.clone());
    }
    if let Some(file) = &args.task_file {
        let what = format!("the task file {}", file.display());
        let f = std::fs::File::open(file).with_context(|| format!("cannot read {what}"))?;
        return read_bounded(f, &what);
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        bail!("no task: give it as an argument (vnx run \"…\"), with --task-file FILE or on stdin");
    }
    read_bounded(stdin.lock(), "the task on stdin")
}

/// Reads at most [`MAX_TASK_BYTES`] of UTF-8 text from `input` (never more,
/// whatever its metadata says: `/dev/zero` and pipes have none), refusing
/// a longer input by name (`what`) and limit.
fn read_bounded(input: impl std::io::Read, what: &str) -> Result<String> {
    let mut bytes = Vec::new();
    input
        .take(MAX_TASK_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {what}"))?;
    if bytes.len() as u64 > MAX_TASK_BYTES {
        bail!(
            "{what} is longer than the limit of {MAX_TASK_BYTES} bytes (16 MiB); give a shorter task, e.g. point the agent at a file in the repository"
        );
    }
    String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{what} is not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}

/// Flags shared by `vnx run` and `vnx batch` that replace `vnx.toml`'s values
/// (in a batch: for the entries that set none themselves).
#[derive(Debug, Args)]
pub struct DispatchArgs {
    /// Provider: claude, codex, gemini, or one configured in vnx.toml.
    #[arg(long)]
    pub provider: Option<String>,
    /// Model to ask for.
    #[arg(long)]
    pub model: Option<String>,
    /// Lane: headless, pty or tmux.
    #[arg(long)]
    pub lane: Option<String>,
    /// Maximum agent turns.
    #[arg(long)]
    pub max_turns: Option<u32>,
    /// Budget in USD, e.g. 2.50.
    #[arg(long, value_name = "USD")]
    pub max_budget_usd: Option<String>,
    /// Total timeout, e.g. 30m.
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// shadow (record report problems) or enforce (fail on them).
    #[arg(long, value_name = "MODE")]
    pub gate_mode: Option<String>,
    /// Skip the cross-model review.
    #[arg(long)]
    pub no_cross_review: bool,
    /// Run the worker in a sandbox where only its worktree, temp and the
    /// agent CLI's own state are writable (Linux, bubblewrap; see `vnx doctor`).
    #[arg(long)]
    pub sandbox: bool,
    /// Billing: subscription (default; API keys refused) or api.
    #[arg(long)]
    pub billing: Option<String>,
    /// Ledger directory (default: `[ledger] dir` of vnx.toml, `ledger/` at the repository root).
    #[arg(long, value_name = "PATH")]
    pub ledger: Option<PathBuf>,
    /// Provider of the cross-model review (default: the worker's).
    #[arg(long, value_name = "NAME", env = "VNX_REVIEW_PROVIDER")]
    pub review_provider: Option<String>,
    /// Model of the cross-model review (default: the provider's other model,
    /// e.g. opus for a sonnet worker).
    #[arg(long, value_name = "MODEL", env = "VNX_REVIEW_MODEL")]
    pub review_model: Option<String>,
}

impl DispatchArgs {
    /// Who reviews.
    pub(crate) fn review(&self) -> ReviewSettings {
        ReviewSettings {
            provider: self.review_provider.clone(),
            model: self.review_model.clone(),
        }
    }

    /// The flags as [`Overrides`]; errors name the flag and the accepted values.
    pub(crate) fn overrides(&self, cwd: &Path) -> Result<Overrides> {
        let f = self;
        let lane = f
            .lane
            .as_deref()
            .map(|l| match l {
                "headless" => Ok(Lane::Headless),
                "pty" => Ok(Lane::Pty),
                "tmux" => Ok(Lane::Tmux),
                other => Err(anyhow::anyhow!(
                    "unknown lane {other:?}: use headless, pty or tmux"
                )),
            })
            .transpose()?;
        let timeout = f
            .timeout
            .as_deref()
            .map(|t| {
                vnx_prepare::parse_duration(t).with_context(|| {
                    format!(
                        "--timeout {t:?}: expected {}",
                        vnx_prepare::DURATION_EXPECTED
                    )
                })
            })
            .transpose()?;
        let budget = f
            .max_budget_usd
            .as_deref()
            .map(|b| {
                vnx_prepare::parse_usd(b).with_context(|| {
                    format!(
                        "--max-budget-usd {b:?}: expected {}",
                        vnx_prepare::USD_EXPECTED
                    )
                })
            })
            .transpose()?;
        let gate_mode = f
            .gate_mode
            .as_deref()
            .map(|m| match m {
                "shadow" => Ok(GateMode::Shadow),
                "enforce" => Ok(GateMode::Enforce),
                other => Err(anyhow::anyhow!(
                    "unknown gate mode {other:?}: use shadow or enforce"
                )),
            })
            .transpose()?;
        let billing = f
            .billing
            .as_deref()
            .map(|b| match b {
                "subscription" => Ok(Billing::Subscription),
                "api" => Ok(Billing::Api),
                other => Err(anyhow::anyhow!(
                    "unknown billing {other:?}: use subscription or api"
                )),
            })
            .transpose()?;
        Ok(Overrides {
            provider: f.provider.clone(),
            model: f.model.clone(),
            lane,
            timeout,
            max_turns: f.max_turns,
            max_budget_usd_micros: budget,
            gate_mode,
            cross_review: f.no_cross_review.then_some(false),
            billing,
            ledger_dir: f.ledger.as_ref().map(|l| cwd.join(l)),
            sandbox: f.sandbox.then_some(true),
        })
    }
}

fn inputs(args: &RunArgs, cwd: &Path, task: String) -> Result<DispatchInputs> {
    let mut inputs = DispatchInputs::new(cwd, task, args.skill.clone());
    inputs.overrides = args.dispatch.overrides(cwd)?;
    inputs.in_place = args.in_place;
    inputs.keep = args.keep;
    inputs.writer = crate::locate::writer_identity();
    // The segment (`<writer>--<branch>`) is derived by the pipeline from the
    // repository facts it reads anyway.
    inputs.dispatch_id.clone_from(&args.dispatch_id);
    inputs.env = EnvSource::Inherit;
    inputs.review = args.dispatch.review();
    Ok(inputs)
}
