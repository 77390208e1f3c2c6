//! Facts about the repository itself: root, HEAD, branch, dirty files.

use std::path::{Path, PathBuf};

use crate::cmd;
use crate::error::{GitError, Result};

/// The top-level directory of the work tree containing `dir`.
///
/// Inside a linked worktree this is the worktree's root, not the main one.
///
/// # Errors
/// [`GitError::NotARepository`] when `dir` is not inside a git work tree;
/// [`GitError::Spawn`] when git cannot be run.
pub fn repo_root(dir: &Path) -> Result<PathBuf> {
    let ran = cmd::run(dir, &["rev-parse", "--show-toplevel"])?;
    if !ran.status.success() {
        return Err(GitError::NotARepository {
            path: dir.to_path_buf(),
            stderr: ran.stderr_tail(),
        });
    }
    let text = ran.text();
    if text.is_empty() {
        // A bare repository or the inside of `.git`: no work tree.
        return Err(GitError::NotARepository {
            path: dir.to_path_buf(),
            stderr: "no work tree (bare repository or inside .git)".to_owned(),
        });
    }
    Ok(PathBuf::from(text))
}

/// The commit HEAD points at, 40 lowercase hex characters (64 in SHA-256 repositories).
///
/// # Errors
/// [`GitError::NoCommits`] in a repository without commits; [`GitError::Failed`]
/// or [`GitError::Spawn`] otherwise.
pub fn head_commit(repo: &Path) -> Result<String> {
    let ran = cmd::run(repo, &["rev-parse", "--verify", "--quiet", "HEAD^{commit}"])?;
    match ran.code() {
        Some(0) => Ok(ran.text()),
        Some(1) => Err(GitError::NoCommits {
            path: repo.to_path_buf(),
        }),
        _ => Err(ran.failure()),
    }
}

/// Resolves a revision to its full commit id.
///
/// # Errors
/// [`GitError::InvalidRevision`] for revisions starting with `-` or empty;
/// [`GitError::Failed`] when git cannot resolve it to a commit.
pub fn resolve_commit(repo: &Path, rev: &str) -> Result<String> {
    check_rev(rev)?;
    let spec = format!("{rev}^{{commit}}");
    Ok(cmd::ok(repo, &["rev-parse", "--verify", "--end-of-options", &spec])?.text())
}

pub(crate) fn check_rev(rev: &str) -> Result<()> {
    if rev.is_empty() {
        return Err(GitError::InvalidRevision {
            rev: rev.to_owned(),
            reason: "empty",
        });
    }
    if rev.starts_with('-') {
        return Err(GitError::InvalidRevision {
            rev: rev.to_owned(),
            reason: "starts with '-' (would be read as an option)",
        });
    }
    Ok(())
}

/// The short name of the checked-out branch (`main`), or `None` on a detached HEAD.
///
/// # Errors
/// [`GitError::Failed`] or [`GitError::Spawn`] when git fails otherwise.
pub fn current_branch(repo: &Path) -> Result<Option<String>> {
    let ran = cmd::run(repo, &["symbolic-ref", "--quiet", "--short", "HEAD"])?;
    match ran.code() {
        Some(0) => Ok(Some(ran.text())),
        Some(1) => Ok(None),
        _ => Err(ran.failure()),
    }
}

/// What a dispatch needs to know about the repository, read with one `git
/// rev-parse` (every git process costs a few milliseconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoInfo {
    /// Work tree root, absolute.
    pub root: PathBuf,
    /// Common git directory (`.git` of the main worktree), absolute.
    pub common_dir: PathBuf,
    /// Commit of `HEAD`; `None` in a repository with no commits yet.
    pub head: Option<String>,
    /// Current branch; `None` when `HEAD` is detached (or unborn).
    pub branch: Option<String>,
}

/// Reads [`RepoInfo`] for the repository containing `dir`.
///
/// # Errors
/// [`GitError::NotARepository`] outside a work tree.
pub fn repo_info(dir: &Path) -> Result<RepoInfo> {
    let ran = cmd::run(
        dir,
        &[
            "rev-parse",
            "--path-format=absolute",
            "--show-toplevel",
            "--git-common-dir",
            "HEAD",
            "--abbrev-ref",
            "HEAD",
        ],
    )?;
    let text = ran.text();
    let lines: Vec<&str> = text.lines().collect();
    if ran.status.success() && lines.len() == 4 && !lines[0].is_empty() {
        return Ok(RepoInfo {
            root: PathBuf::from(lines[0]),
            common_dir: PathBuf::from(lines[1]),
            head: Some(lines[2].to_owned()),
            branch: (lines[3] != "HEAD").then(|| lines[3].to_owned()),
        });
    }
    // No commits yet, or not a repository: ask one question at a time, so the
    // error says which.
    Ok(RepoInfo {
        root: repo_root(dir)?,
        common_dir: common_dir(dir)?,
        head: None,
        branch: current_branch(dir)?,
    })
}

/// One entry of `git status --porcelain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirtyFile {
    /// The two-letter `XY` status, e.g. ` M`, `A `, `??` (untracked).
    pub code: String,
    /// Path relative to the repository root (the new path of a rename).
    pub path: String,
}

/// Files that differ from HEAD: staged, unstaged and untracked (ignored files
/// excluded). Empty when the tree is clean. The caller decides whether to warn;
/// worktrees always start from HEAD regardless.
///
/// # Errors
/// [`GitError::Failed`] / [`GitError::Spawn`] when `git status` fails.
pub fn dirty_files(repo: &Path) -> Result<Vec<DirtyFile>> {
    let ran = cmd::ok(
        repo,
        &["status", "--porcelain=v1", "-z", "--untracked-files=all"],
    )?;
    let mut out = Vec::new();
    let mut fields = ran.stdout.split(|b| *b == 0).filter(|f| !f.is_empty());
    while let Some(entry) = fields.next() {
        if entry.len() < 4 {
            return Err(GitError::Parse {
                command: ran.command.clone(),
                detail: format!("short status entry {:?}", String::from_utf8_lossy(entry)),
            });
        }
        let code = String::from_utf8_lossy(&entry[..2]).into_owned();
        let path = String::from_utf8_lossy(&entry[3..]).into_owned();
        // Renames and copies are followed by the original path.
        if code.contains('R') || code.contains('C') {
            fields.next();
        }
        out.push(DirtyFile { code, path });
    }
    Ok(out)
}

/// The repository's common git directory (`.git` of the main worktree), absolute.
///
/// # Errors
/// [`GitError::Failed`] / [`GitError::Spawn`].
pub fn common_dir(repo: &Path) -> Result<PathBuf> {
    let text = cmd::ok(
        repo,
        &["rev-parse", "--path-format=absolute", "--git-common-dir"],
    )?
    .text();
    Ok(PathBuf::from(text))
}
