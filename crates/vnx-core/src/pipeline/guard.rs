//! What keeps a hostile worker from damaging the user's repository or losing
//! its own work: the dispatch commit runs only in the worktree vnx created
//! (pinned, checked, the branch moved onto commits made on a detached HEAD),
//! and the receipt reaches a ledger even when the worker deleted it.

use std::path::Path;

use vnx_ledger::NewRecord;
use vnx_types::DispatchReceipt;

use super::{PipelineError, Setup};

/// The pinned form of the dispatch worktree, `None` for in-place dispatches.
///
/// # Errors
/// [`PipelineError::Git`] ([`vnx_git::GitError::Tampered`]) when the
/// worktree's git directory was not known at creation.
pub(super) fn pinned(s: &Setup) -> Result<Option<vnx_git::Pinned>, PipelineError> {
    match (&s.worktree, &s.plan.repo_info) {
        (Some(wt), Some(info)) => Ok(Some(vnx_git::Pinned::new(wt, &info.common_dir)?)),
        _ => Ok(None),
    }
}

/// Commits what the worker left in its worktree on the dispatch branch,
/// after checking that the worktree is still the one vnx created
/// ([`vnx_git::Pinned::settle`]); returns the branch's new head. A move of
/// the branch onto commits the worker made on a detached HEAD (or another
/// branch) is recorded as a warning of the receipt.
///
/// # Errors
/// [`PipelineError::Git`]: a tampered worktree (its `.git` file gone or
/// rewritten, its HEAD off the branch at commits that do not descend from
/// it) — nothing is committed and the worktree is kept; or a failing git.
pub(super) fn commit_work(
    s: &Setup,
    pinned: &vnx_git::Pinned,
    message: &str,
    r: &mut DispatchReceipt,
) -> Result<String, PipelineError> {
    let settled = pinned.settle()?;
    if let Some(a) = &settled.adopted {
        r.warnings.push(format!(
            "the worker left its commits on {} at {}; {} was moved there from {}",
            a.head_was,
            short(&a.to),
            pinned.branch,
            short(&a.from)
        ));
    }
    let identity = match &s.commit_settings {
        Some(settings) => settings.identity.clone(),
        None => vnx_git::identity(&pinned.common_dir)?,
    };
    Ok(pinned.commit_work(message, &identity)?.head)
}

fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

/// The ledger's `ledger.json` as it was when the dispatch started, so the
/// ledger can be put back if a worker deletes it.
///
/// # Errors
/// [`PipelineError::Io`] when it cannot be read.
pub(super) fn read_manifest(ledger_dir: &Path) -> Result<Vec<u8>, PipelineError> {
    let path = ledger_dir.join(vnx_ledger::store::MANIFEST_FILE);
    std::fs::read(&path).map_err(PipelineError::io("reading", &path))
}

/// Before the receipt is appended: puts the ledger directory and its
/// manifest back (the same bytes, so the same ledger id) when they are gone,
/// and says whether the segment lost the dispatch's started record (the
/// segment is gone), in which case the caller appends it again before the
/// receipt. What was restored is added to the receipt's warnings.
///
/// Best effort: when the ledger cannot be restored, the append that follows
/// fails with the ledger's own error.
pub(super) fn restore_ledger(
    dir: &Path,
    manifest: &[u8],
    segment: &str,
    warnings: &mut Vec<String>,
) -> bool {
    let manifest_path = dir.join(vnx_ledger::store::MANIFEST_FILE);
    if !manifest_path.exists() {
        let restored = std::fs::create_dir_all(dir).and_then(|()| {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&manifest_path)
                .and_then(|mut f| {
                    use std::io::Write as _;
                    f.write_all(manifest)?;
                    f.sync_all()
                })
        });
        if restored.is_ok() {
            warnings.push(format!(
                "the ledger's {} was deleted during the dispatch; vnx wrote it back (same ledger id) to record this receipt",
                manifest_path.display()
            ));
        }
    }
    let segment_gone = !dir.join(segment).exists();
    if segment_gone {
        warnings.push(format!(
            "the ledger segment {segment} was deleted during the dispatch; it starts again with this dispatch's started record and receipt"
        ));
    }
    segment_gone
}

/// The records to append for the receipt: the started record again when
/// the segment lost it ([`restore_ledger`]), then the receipt.
///
/// # Errors
/// A record that does not serialize.
pub(super) fn receipt_records(
    started: &vnx_types::DispatchStarted,
    receipt: &DispatchReceipt,
    started_lost: bool,
) -> Result<Vec<NewRecord>, serde_json::Error> {
    use vnx_ledger::record::{KIND_DISPATCH_RECEIPT, KIND_DISPATCH_STARTED};
    let mut records = Vec::with_capacity(2);
    if started_lost {
        records.push(NewRecord::new(KIND_DISPATCH_STARTED, started)?);
    }
    records.push(NewRecord::new(KIND_DISPATCH_RECEIPT, receipt)?);
    Ok(records)
}

/// The sandbox of a dispatch with `[worker] sandbox = true`: over a
/// read-only file system, temp is writable, then the repository and the
/// home directory are read-only again (they may live under temp), then the
/// agent CLIs' state directories in the home, the worktree and the run
/// directory (the report file) are writable.
///
/// # Errors
/// [`PipelineError::Sandbox`] when bwrap is missing or cannot create a
/// sandbox on this machine: a sandboxed dispatch never runs unconfined.
pub(super) fn sandbox(
    plan: &super::Plan,
    env: &crate::worker::EnvSource,
) -> Result<Option<vnx_exec::Sandbox>, PipelineError> {
    use vnx_exec::sandbox::{Access, Support, default_writable, support};
    if !plan.loaded.config.worker.sandbox {
        return Ok(None);
    }
    let bwrap = match support(env.get("PATH").as_deref().map(std::ffi::OsStr::new)) {
        Support::Available { bwrap } => bwrap,
        Support::Unavailable(why) => return Err(PipelineError::Sandbox(why)),
    };
    let home = env.get("HOME").map(std::path::PathBuf::from);
    let tmpdir = env.get("TMPDIR").map(std::path::PathBuf::from);
    let (temp, state) = default_writable(home.as_deref(), tmpdir.as_deref());
    let mut sandbox = vnx_exec::Sandbox::new(bwrap);
    for dir in temp {
        sandbox = sandbox.mount(dir, Access::Writable);
    }
    for dir in home
        .iter()
        .chain(plan.repo.iter())
        .chain(std::iter::once(&plan.loaded.root))
    {
        sandbox = sandbox.mount(dir, Access::ReadOnly);
    }
    for dir in state {
        sandbox = sandbox.mount(dir, Access::Writable);
    }
    Ok(Some(
        sandbox
            .mount(&plan.workdir, Access::Writable)
            .mount(&plan.run_dir, Access::Writable),
    ))
}
