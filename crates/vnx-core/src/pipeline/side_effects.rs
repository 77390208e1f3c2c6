//! The pipeline's side of the side-effects gate
//! ([`vnx_govern::side_effects`]): the worker's environment carries the
//! dispatch id and the push trap; a snapshot is taken before the worker
//! (while the worktree is created) and one after it (while the work is
//! committed); leftover processes are looked for once the worker is gone.

use std::path::{Path, PathBuf};

use vnx_govern::side_effects::{self as fx, Scope, Snapshot};
use vnx_types::GateResult;

use crate::worker::EnvSource;

/// Adds `VNX_DISPATCH_ID` and the push trap ([`fx::push_trap_env`]) to
/// the worker's environment (the provider's `env` table of this dispatch,
/// so `--dry-run` shows them too).
pub(super) fn worker_env(
    env: &mut std::collections::BTreeMap<String, String>,
    source: &EnvSource,
    dispatch_id: &str,
    run_dir: &Path,
) {
    // Entries the user's environment (or the provider's table) already
    // passes to git keep their indices; the trap comes after them.
    let count = env
        .get("GIT_CONFIG_COUNT")
        .cloned()
        .or_else(|| source.get("GIT_CONFIG_COUNT"))
        .and_then(|c| c.trim().parse::<usize>().ok())
        .unwrap_or(0);
    env.insert(fx::DISPATCH_ID_VAR.to_owned(), dispatch_id.to_owned());
    env.extend(fx::push_trap_env(run_dir, count));
}

/// What the gate watches for a worktree dispatch; `None` in place (the
/// worker's changes to the main tree are then its work).
pub(super) fn scope(
    repo: Option<&Path>,
    ledger_dir: &Path,
    segment: &str,
    branch: Option<&str>,
) -> Option<Scope> {
    let (repo, branch) = (repo?, branch?);
    Some(Scope {
        repo: repo.to_path_buf(),
        git_dir: git_dir(repo),
        ledger_dir: ledger_dir.to_path_buf(),
        own_segment: segment.to_owned(),
        own_branch: branch.to_owned(),
    })
}

/// The main tree's git directory: `.git`, or where a `.git` file points
/// (the main tree may itself be a linked worktree).
fn git_dir(root: &Path) -> PathBuf {
    let dot_git = root.join(".git");
    if dot_git.is_file()
        && let Ok(text) = std::fs::read_to_string(&dot_git)
        && let Some(dir) = text.trim().strip_prefix("gitdir:")
    {
        return root.join(dir.trim());
    }
    dot_git
}

/// The snapshot before the worker.
pub(super) fn before(scope: Option<&Scope>) -> Option<Result<Snapshot, String>> {
    scope.map(Snapshot::capture)
}

/// Processes the worker left running (killed) and a push attempt, as
/// findings of the gate. Runs as soon as the worker is gone, before vnx
/// starts git in the worktree itself.
pub(super) fn leftovers(dispatch_id: &str, worktree: &Path, run_dir: &Path) -> Vec<String> {
    let mut findings = Vec::new();
    for p in fx::leftover_processes(dispatch_id, worktree) {
        findings.push(format!(
            "process {} ({}) was still running after the worker{}",
            p.pid,
            p.command,
            if p.killed { "; vnx killed it" } else { "" }
        ));
    }
    if fx::push_attempted(run_dir) {
        findings.push(format!(
            "the worker tried to git push (the push was refused; marker {})",
            fx::push_marker(run_dir).display()
        ));
    }
    findings
}

/// The side-effects gate: `findings` ([`leftovers`]) and the snapshots'
/// differences. Runs while the work is committed: vnx's own commit touches
/// only the dispatch branch and the worktree, which the gate leaves out.
pub(super) fn after(
    scope: Option<&Scope>,
    before: Option<&Result<Snapshot, String>>,
    mut findings: Vec<String>,
) -> GateResult {
    let mut checked = vec!["processes", "git push"];
    match (scope, before) {
        (Some(scope), Some(Ok(before))) => match Snapshot::capture(scope) {
            Ok(after) => findings.extend(fx::compare(before, &after, scope)),
            Err(e) => return fx::side_effects_gate(Err(&e), ""),
        },
        (Some(_), Some(Err(e))) => return fx::side_effects_gate(Err(e), ""),
        _ => checked.insert(0, "in place: main tree not compared"),
    }
    if scope.is_some() {
        checked.splice(0..0, ["main tree", "refs", "ledger"]);
    }
    fx::side_effects_gate(Ok(&findings), &checked.join(", "))
}
