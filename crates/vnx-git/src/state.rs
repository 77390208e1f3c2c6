//! The repository's state as the side-effects gate compares it: refs and
//! the files git knows of (tracked and untracked, not ignored).

use std::path::Path;

use crate::cmd;
use crate::error::Result;

/// Every ref of the repository and `HEAD`, as `(name, object id)`, in
/// `git show-ref --head` order (`HEAD` first). Empty in a repository
/// without commits.
///
/// # Errors
/// [`crate::GitError::Failed`] / [`crate::GitError::Spawn`].
pub fn refs(repo: &Path) -> Result<Vec<(String, String)>> {
    let ran = cmd::run(repo, &["show-ref", "--head"])?;
    // Exit 1: no refs at all.
    if ran.code() == Some(1) && ran.stdout.is_empty() {
        return Ok(Vec::new());
    }
    let ran = ran.check()?;
    Ok(ran
        .text()
        .lines()
        .filter_map(|l| {
            let (oid, name) = l.split_once(' ')?;
            Some((name.to_owned(), oid.to_owned()))
        })
        .collect())
}

/// The files of the work tree at `repo` that git tracks or would list as
/// untracked (ignored files left out), relative to its root, each with its
/// index entry (`<mode> <object id> <stage>`, several joined by `,` for a
/// conflict; empty for an untracked file), so a `git add` shows even where
/// the file itself did not change. Paths under `exclude`
/// (repository-relative directories, e.g. `.vnx/worktrees`) are left out.
/// One `git ls-files`; it does not write the index.
///
/// # Errors
/// [`crate::GitError::Failed`] / [`crate::GitError::Spawn`].
pub fn listed_files(
    repo: &Path,
    exclude: &[&str],
) -> Result<std::collections::BTreeMap<String, String>> {
    let mut args: Vec<String> = [
        "-c",
        "core.quotepath=false",
        "ls-files",
        "-z",
        "--stage",
        "--cached",
        "--others",
        "--exclude-standard",
        "--",
        ".",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    args.extend(exclude.iter().map(|e| format!(":(top,exclude){e}")));
    let ran = cmd::ok(repo, &args)?;
    let mut files = std::collections::BTreeMap::<String, String>::new();
    for record in ran.stdout.split(|b| *b == 0).filter(|f| !f.is_empty()) {
        let record = String::from_utf8_lossy(record);
        // `--stage` prints `<mode> <oid> <stage>\t<path>` for index
        // entries and the bare path for untracked files.
        let (entry, path) = match record.split_once('\t') {
            Some((entry, path)) if entry.split(' ').count() == 3 => (entry, path),
            _ => ("", record.as_ref()),
        };
        let kept = files.entry(path.to_owned()).or_default();
        if !entry.is_empty() {
            if !kept.is_empty() {
                kept.push(',');
            }
            kept.push_str(entry);
        }
    }
    Ok(files)
}

/// Whether commit `ancestor` is reachable from commit `descendant`.
///
/// # Errors
/// [`crate::GitError::Failed`] when either is not a commit.
pub fn is_ancestor(repo: &Path, ancestor: &str, descendant: &str) -> Result<bool> {
    let ran = cmd::run(repo, &["merge-base", "--is-ancestor", ancestor, descendant])?;
    match ran.code() {
        Some(0) => Ok(true),
        Some(1) => Ok(false),
        _ => Err(ran.failure()),
    }
}
