//! The `vnx` binary: the only crate that prints and chooses exit codes.
//!
//! Exit codes: 0 success; 1 a verification or gate found a problem; 2 usage,
//! configuration or I/O error (a full device for stdout included); 141 when
//! stdout is a closed pipe (quietly, as if SIGPIPE had ended vnx).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[macro_use]
mod out;
mod admin_cmd;
mod approve_cmd;
mod batch_cmd;
mod doctor_cmd;
mod gate_cmd;
mod ledger_cmd;
mod locate;
mod run_cmd;
mod serve_cmd;
mod stats_cmd;
mod term;

/// vnx: governed dispatches of coding-agent CLIs, with a tamper-evident receipt ledger.
#[derive(Debug, Parser)]
#[command(name = "vnx", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Append to, read, repair and checkpoint the receipt ledger.
    Ledger {
        #[command(subcommand)]
        command: ledger_cmd::LedgerCommand,
    },
    /// Verify ledger segments: hashes, chain links, canonical form, schema.
    ///
    /// Exit 0 when everything verifies, 1 when something is wrong (each problem
    /// is printed with its segment, line, seq and reason), 2 on usage or I/O errors.
    VerifyLedger(ledger_cmd::VerifyArgs),
    /// CI check: block a merge when the ledger does not verify, was rewritten
    /// since a base revision, or gained a failed or orphaned dispatch.
    ///
    /// Exit 0 pass, 1 blocked, 2 usage or I/O error.
    Gate(gate_cmd::GateArgs),
    /// Run one governed dispatch: prepare, dispatch the agent CLI in a
    /// worktree, govern its report, run the gates, append the receipt.
    ///
    /// Exit 0 passed, 1 gates failed, 2 usage or configuration error,
    /// 3 worker error, timeout or interruption (a receipt is written).
    Run(Box<run_cmd::RunArgs>),
    /// Run many governed dispatches from a TOML or JSONL file, under a cap
    /// (`--max-parallel`, per-provider caps in vnx.toml), with depends_on
    /// chains, retry_with and a shared rate-limit pause per provider.
    ///
    /// Exit as `vnx run`, for the worst dispatch: 0 all passed, 1 gates
    /// failed or skipped, 2 usage or invalid file, 3 worker error, timeout
    /// or interruption.
    Batch(Box<batch_cmd::BatchArgs>),
    /// Set up vnx in this repository: a commented vnx.toml, ledger/, .vnx/skills/.
    Init,
    /// List and show skills.
    Skills {
        #[command(subcommand)]
        command: admin_cmd::SkillsCommand,
    },
    /// List and prune dispatch worktrees.
    Worktrees {
        #[command(subcommand)]
        command: admin_cmd::WorktreesCommand,
    },
    /// List and show dispatch receipts.
    Receipts {
        #[command(subcommand)]
        command: admin_cmd::ReceiptsCommand,
    },
    /// Record a person's decision on a receipt whose skill requires approval
    /// (`requires_approval: true`): approve it, or reject it with --reject.
    /// `vnx gate` blocks such receipts until approved.
    ///
    /// Exit 0 recorded, 2 refused (unknown dispatch, not approvable) or I/O error.
    Approve(approve_cmd::ApproveArgs),
    /// Tokens and cost by provider, model, skill and day; pass rates per
    /// skill and gate; durations; cost per passed dispatch; billing.
    Stats(stats_cmd::StatsArgs),
    /// Serve a read-only live dashboard of this repository's dispatches on
    /// http://127.0.0.1:7341/: a board (queued, running, gating, passed,
    /// failed), receipts with their gates and place in the chain, the chain's
    /// verification and the costs. Reads the ledger and `.vnx/runs/`, never
    /// writes them. Ctrl-C stops it.
    Serve(serve_cmd::ServeArgs),
    /// Check this machine and repository: agent CLIs and their versions, claude
    /// login (no tokens spent), billing variables, git and tmux, config,
    /// skills and the ledger. Each finding says how to fix it.
    Doctor {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// What a command reports back to `main`.
pub enum Outcome {
    /// Everything fine: exit 0.
    Ok,
    /// The command ran and found a problem: exit 1.
    Problems,
    /// The worker failed, timed out or was interrupted: exit 3.
    WorkerFailed,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    quiet_print_panics();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(cli)));
    let result = match result {
        Ok(r) => r.and_then(|outcome| {
            out::flush().map_err(anyhow::Error::from)?;
            Ok(outcome)
        }),
        Err(payload) => match out::print_panic_reason(payload.as_ref()) {
            // A `println!` not yet moved to `out` failed: the same answer
            // as for an `OutputError`.
            Some(reason) => Err(anyhow::Error::from(out::OutputError(
                std::io::Error::other(reason.to_owned()),
            ))),
            None => std::panic::resume_unwind(payload),
        },
    };
    match result {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Problems) => ExitCode::from(1),
        Ok(Outcome::WorkerFailed) => ExitCode::from(3),
        Err(err) => {
            if let Some(code) = output_failure(&err) {
                return code;
            }
            errln!("error: {}", term::escape(&error_text(&err)));
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<Outcome> {
    match cli.command {
        Command::Ledger { command } => ledger_cmd::run(command),
        Command::VerifyLedger(args) => ledger_cmd::verify(&args),
        Command::Gate(args) => gate_cmd::run(&args),
        Command::Run(args) => run_cmd::run(&args),
        Command::Batch(args) => batch_cmd::run(&args),
        Command::Init => admin_cmd::init(),
        Command::Skills { command } => admin_cmd::skills(&command),
        Command::Worktrees { command } => admin_cmd::worktrees(&command),
        Command::Receipts { command } => admin_cmd::receipts(&command),
        Command::Approve(args) => approve_cmd::run(&args),
        Command::Stats(args) => stats_cmd::run(&args),
        Command::Serve(args) => serve_cmd::run(&args),
        Command::Doctor { json } => doctor_cmd::run(json),
    }
}

/// The exit for an error writing stdout: 141 and no message for a closed
/// pipe; `cannot write output: <reason>` and 2 otherwise. `None` for any
/// other error.
///
/// Besides an [`out::OutputError`], a bare `std::io::Error` (no context)
/// counts when it is a closed pipe or a full device: commands that write
/// with `writeln!(stdout, …)?` return exactly that, and every other I/O a
/// command does carries the context of what it was doing.
fn output_failure(err: &anyhow::Error) -> Option<ExitCode> {
    /// ENOSPC on Linux.
    const NO_SPACE: i32 = 28;
    let bare = err.downcast_ref::<std::io::Error>().filter(|e| {
        e.kind() == std::io::ErrorKind::BrokenPipe || e.raw_os_error() == Some(NO_SPACE)
    });
    let converted;
    let failed = match bare {
        Some(e) => {
            converted = out::OutputError(std::io::Error::new(e.kind(), out::os_reason(e)));
            &converted
        }
        None => err
            .chain()
            .find_map(|e| e.downcast_ref::<out::OutputError>())?,
    };
    let closed = failed.is_closed_pipe() || failed.0.to_string().starts_with("Broken pipe");
    if closed {
        return Some(ExitCode::from(out::CLOSED_PIPE_EXIT));
    }
    errln!("error: {failed}");
    Some(ExitCode::from(2))
}

/// Keeps std's `failed printing to stdout` panic (from a `println!` that
/// has not moved to [`out`]) from printing "panicked at …": `main` turns it
/// into the usual output error. Every other panic prints as before.
fn quiet_print_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if out::print_panic_reason(info.payload()).is_none() {
            default(info);
        }
    }));
}

/// The error and its causes joined by `: `, leaving out a cause whose text the
/// message already contains (library errors often print their source too).
fn error_text(err: &anyhow::Error) -> String {
    let mut text = err.to_string();
    for cause in err.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}
