//! The dispatch commit: whatever the worker left uncommitted.

use std::path::Path;

use crate::cmd;
use crate::error::Result;

/// Identity used when neither the environment nor git's config has one.
pub const FALLBACK_NAME: &str = "vnx";
/// E-mail of the fallback identity.
pub const FALLBACK_EMAIL: &str = "vnx@localhost";

/// Stages everything the worker changed in `worktree` (modified, deleted and
/// new files; ignored files stay out) and commits it with `message`, which
/// should name the dispatch. Returns the new commit id, or `None` when there
/// was nothing to commit.
///
/// Author and committer come from `GIT_AUTHOR_*` / `GIT_COMMITTER_*` when set,
/// else from git's `user.name` / `user.email`, else the fallback identity
/// `vnx <vnx@localhost>`, so this works on a machine with no git identity.
/// Hooks are skipped (`--no-verify`) and signing is off: gates judge the work,
/// and a commit that waits for a passphrase would hang the dispatch.
///
/// # Errors
/// [`crate::GitError::Failed`] when `git add` or `git commit` fails.
pub fn commit_all(worktree: &Path, message: &str) -> Result<Option<String>> {
    // One `git status` answers "anything to commit?" for a worker that changed
    // nothing (a read-only skill) without staging first.
    let status = cmd::ok(
        worktree,
        &["status", "--porcelain=v1", "-z", "--untracked-files=all"],
    )?;
    if status.stdout.is_empty() {
        return Ok(None);
    }
    cmd::ok(worktree, &["add", "--all"])?;
    let env = identity_env(worktree)?;
    let committed = cmd::run_with(
        worktree,
        &[
            "-c",
            "commit.gpgsign=false",
            // No auto-maintenance spawned from a dispatch commit: it costs a
            // process per commit and is the user's git's business, not vnx's.
            "-c",
            "maintenance.auto=false",
            "commit",
            "--quiet",
            "--no-verify",
            "--allow-empty-message",
            "-m",
            message,
        ],
        &env,
    )?;
    if !committed.status.success() {
        // Status can list what `add --all` does not stage (a nested
        // repository's own changes): then there was nothing to commit.
        let staged = cmd::run(worktree, &["diff", "--cached", "--quiet", "--no-ext-diff"])?;
        if staged.code() == Some(0) {
            return Ok(None);
        }
        return Err(committed.failure());
    }
    let head = cmd::ok(worktree, &["rev-parse", "HEAD"])?.text();
    Ok(Some(head))
}

/// Like [`commit_all`], but stages and commits only `paths` (relative to
/// `worktree`, or absolute inside it); anything else that changed in the
/// worktree (build output of a command gate, a generated lock file) stays out
/// of the commit and uncommitted. Returns the new commit id, or `None` when
/// the paths had nothing to commit.
///
/// # Errors
/// [`crate::GitError::Failed`] when `git add` or `git commit` fails (e.g. a
/// path outside the worktree).
pub fn commit_paths(worktree: &Path, paths: &[&Path], message: &str) -> Result<Option<String>> {
    if paths.is_empty() {
        return Ok(None);
    }
    let mut add: Vec<&std::ffi::OsStr> = vec!["add".as_ref(), "--all".as_ref(), "--".as_ref()];
    add.extend(paths.iter().map(|p| p.as_os_str()));
    cmd::ok(worktree, &add)?;
    let env = identity_env(worktree)?;
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "-c".as_ref(),
        "commit.gpgsign=false".as_ref(),
        "-c".as_ref(),
        "maintenance.auto=false".as_ref(),
        "commit".as_ref(),
        "--quiet".as_ref(),
        "--no-verify".as_ref(),
        "--allow-empty-message".as_ref(),
        "-m".as_ref(),
        message.as_ref(),
        "--only".as_ref(),
        "--".as_ref(),
    ];
    args.extend(paths.iter().map(|p| p.as_os_str()));
    let committed = cmd::run_with(worktree, &args, &env)?;
    if !committed.status.success() {
        // Commit first, ask later: the usual caller has just written the
        // paths, so checking for staged changes beforehand would cost a git
        // process on every dispatch. A failed commit with nothing staged
        // under the paths meant there was nothing to commit.
        let mut check: Vec<&std::ffi::OsStr> = vec![
            "diff".as_ref(),
            "--cached".as_ref(),
            "--quiet".as_ref(),
            "--no-ext-diff".as_ref(),
            "--".as_ref(),
        ];
        check.extend(paths.iter().map(|p| p.as_os_str()));
        if cmd::run(worktree, &check)?.code() == Some(0) {
            return Ok(None);
        }
        return Err(committed.failure());
    }
    let head = cmd::ok(worktree, &["rev-parse", "HEAD"])?.text();
    Ok(Some(head))
}

/// Environment variables to set so the commit has an identity.
fn identity_env(dir: &Path) -> Result<Vec<(&'static str, String)>> {
    const VARS: [&str; 4] = [
        "GIT_AUTHOR_NAME",
        "GIT_COMMITTER_NAME",
        "GIT_AUTHOR_EMAIL",
        "GIT_COMMITTER_EMAIL",
    ];
    let from_env = |var: &str| std::env::var(var).is_ok_and(|v| !v.is_empty());
    if VARS.iter().all(|v| from_env(v)) {
        return Ok(Vec::new());
    }
    // One `git config` call for both keys: every git process costs a few ms
    // and a dispatch commits twice.
    let (name, email) = configured_identity(dir)?;
    let mut env = Vec::new();
    for (var, configured, fallback) in [
        (VARS[0], &name, FALLBACK_NAME),
        (VARS[1], &name, FALLBACK_NAME),
        (VARS[2], &email, FALLBACK_EMAIL),
        (VARS[3], &email, FALLBACK_EMAIL),
    ] {
        if !from_env(var) && configured.is_none() {
            env.push((var, fallback.to_owned()));
        }
    }
    Ok(env)
}

/// `user.name` and `user.email` from git's configuration, each if set and non-empty.
fn configured_identity(dir: &Path) -> Result<(Option<String>, Option<String>)> {
    let ran = cmd::run(dir, &["config", "--get-regexp", r"^user\.(name|email)$"])?;
    match ran.code() {
        Some(0) => {
            let text = ran.text();
            let value = |key: &str| {
                text.lines()
                    .filter_map(|l| l.strip_prefix(key))
                    .filter_map(|rest| rest.strip_prefix(' '))
                    .next_back()
                    .map(str::to_owned)
                    .filter(|v| !v.is_empty())
            };
            Ok((value("user.name"), value("user.email")))
        }
        Some(1) => Ok((None, None)),
        _ => Err(ran.failure()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn commit_paths_leaves_other_changes_out() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path();
        cmd::ok(repo, &["init", "-q"]).unwrap();
        std::fs::write(repo.join("a.txt"), "a\n").unwrap();
        assert!(commit_all(repo, "first").unwrap().is_some());
        std::fs::create_dir(repo.join("ledger")).unwrap();
        std::fs::write(repo.join("ledger/r.ndjson"), "r\n").unwrap();
        std::fs::write(repo.join("Cargo.lock"), "generated\n").unwrap();
        let head = commit_paths(repo, &[Path::new("ledger")], "receipt").unwrap();
        assert!(head.is_some());
        let files = cmd::ok(repo, &["show", "--name-only", "--format=", "HEAD"])
            .unwrap()
            .text();
        assert_eq!(files, "ledger/r.ndjson");
        let status = cmd::ok(repo, &["status", "--porcelain"]).unwrap().text();
        assert_eq!(status, "?? Cargo.lock");
        assert_eq!(
            commit_paths(repo, &[Path::new("ledger")], "again").unwrap(),
            None
        );
    }
}
