//! `vnx run`: one governed dispatch.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;

use crate::Outcome;

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
    /// Provider: claude, codex, gemini, or one configured in vnx.toml.
    #[arg(long)]
    pub provider: Option<String>,
    /// Model to ask for.
    #[arg(long)]
    pub model: Option<String>,
    /// Lane: headless, pty or tmux.
    #[arg(long)]
    pub lane: Option<String>,
    /// Run in the current tree instead of a fresh worktree.
    #[arg(long)]
    pub in_place: bool,
    /// Keep the worktree even when the dispatch passes.
    #[arg(long)]
    pub keep: bool,
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
    /// Billing: subscription (default; API keys refused) or api.
    #[arg(long)]
    pub billing: Option<String>,
    /// Ledger directory (default: `ledger/` at the repository root).
    #[arg(long, value_name = "PATH")]
    pub ledger: Option<PathBuf>,
    /// Print the receipt as JSON.
    #[arg(long)]
    pub json: bool,
    /// Print the instruction and the exact argv; run nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Runs `vnx run`. Exit codes: 0 passed, 1 gates failed, 2 usage or
/// configuration error, 3 worker error, timeout or interruption.
pub fn run(args: &RunArgs) -> Result<Outcome> {
    let _ = args;
    bail!("vnx run is being wired up in this change; use the libraries meanwhile")
}
