//! One git worktree per dispatch, on branch `vnx/<dispatch-id>`, under
//! `<repo>/.vnx/worktrees/<dispatch-id>`.
//!
//! The directory is kept out of the user's `git status` through the
//! repository's `.git/info/exclude`, never by editing their `.gitignore`.
//! The commit a worktree started from is written beside git's own metadata
//! for the worktree (`.git/worktrees/<name>/vnx-base`) so `list` can report it
//! without a config write (concurrent dispatches would fight over `config.lock`).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::cmd;
use crate::error::{GitError, Result};
use crate::repo::{RepoInfo, common_dir, dirty_files, head_commit};

/// Where vnx's worktrees live, relative to the repository root.
pub const WORKTREES_DIR: &str = ".vnx/worktrees";

/// Prefix of every dispatch branch.
pub const BRANCH_PREFIX: &str = "vnx/";

/// The line vnx adds to `.git/info/exclude`.
const EXCLUDE_LINE: &str = "/.vnx/worktrees/";

/// File in the worktree's git admin directory that records its base commit.
const BASE_FILE: &str = "vnx-base";

/// A dispatch's worktree, as created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Worktree {
    /// Absolute path of the worktree directory.
    pub path: PathBuf,
    /// Branch checked out in it: `vnx/<dispatch-id>`.
    pub branch: String,
    /// Commit it started from (HEAD of the repository at creation), full hex id.
    pub base: String,
    /// git's administrative directory for it (`.git/worktrees/<name>`), as
    /// read right after creation, before any agent ran in it; `None` if it
    /// could not be read.
    pub admin_dir: Option<PathBuf>,
}

/// How [`remove`] treats uncommitted changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoveMode {
    /// Refuse (git's error) when the worktree has modified or untracked files.
    IfClean,
    /// Remove even if the worktree has uncommitted changes (they are lost).
    Force,
}

/// A vnx worktree found by [`list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorktreeInfo {
    /// Directory of the worktree (as git recorded it).
    pub path: PathBuf,
    /// Dispatch id: the branch suffix, else the directory name.
    pub dispatch_id: String,
    /// Checked-out branch (`vnx/<id>`), `None` if detached.
    pub branch: Option<String>,
    /// Commit the worktree's HEAD is at.
    pub head: Option<String>,
    /// Commit it started from, when recorded (absent for a missing directory).
    pub base: Option<String>,
    /// The directory is gone (git still has its metadata until pruned).
    pub missing: bool,
    /// It has uncommitted or untracked files (false when missing).
    pub dirty: bool,
    /// Its branch has commits beyond the base and all of them are reachable from
    /// the repository's HEAD. A branch without new commits is not "merged".
    pub merged: bool,
    /// git has it locked (`git worktree lock`); prune leaves it alone.
    pub locked: bool,
}

/// What [`prune`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Worktrees removed (merged and clean, or whose directory was gone).
    pub removed: Vec<PathBuf>,
    /// Worktrees kept, each with the reason.
    pub kept: Vec<(PathBuf, String)>,
}

/// Checks that `id` can serve both as a branch-name component and a directory
/// name: 1–128 characters of `[A-Za-z0-9._-]`, not starting with `.` or `-`,
/// no `..`, not ending in `.` or `.lock`.
///
/// # Errors
/// [`GitError::InvalidDispatchId`] with the rule it broke.
#[allow(clippy::case_sensitive_file_extension_comparisons)] // git's `.lock` rule is case-sensitive
pub fn validate_dispatch_id(id: &str) -> Result<()> {
    let bad = |reason| {
        Err(GitError::InvalidDispatchId {
            id: id.to_owned(),
            reason,
        })
    };
    if id.is_empty() || id.len() > 128 {
        return bad("must be 1 to 128 characters");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return bad("only letters, digits, '.', '_' and '-' are allowed");
    }
    if id.starts_with(['.', '-']) {
        return bad("must not start with '.' or '-'");
    }
    if id.contains("..") || id.ends_with('.') || id.ends_with(".lock") {
        return bad("must not contain '..' or end with '.' or '.lock'");
    }
    Ok(())
}

/// The directory a dispatch's worktree gets: `<repo>/.vnx/worktrees/<dispatch-id>`.
pub fn worktree_path(repo: &Path, dispatch_id: &str) -> PathBuf {
    repo.join(WORKTREES_DIR).join(dispatch_id)
}

/// Creates a worktree for `dispatch_id` from the repository's HEAD, on a new
/// branch `vnx/<dispatch-id>`, and makes sure `.vnx/worktrees/` is listed in
/// `.git/info/exclude`. Uncommitted changes of the main tree are not carried
/// over (check [`crate::dirty_files`] first to warn).
///
/// `repo` is the repository root (see [`crate::repo_root`]).
///
/// # Errors
/// [`GitError::InvalidDispatchId`]; [`GitError::NoCommits`] in an empty
/// repository; [`GitError::WorktreeExists`]; [`GitError::Failed`] when
/// `git worktree add` fails (e.g. the branch already exists); [`GitError::Io`]
/// when the exclude file cannot be updated.
pub fn create(repo: &Path, dispatch_id: &str) -> Result<Worktree> {
    create_in(&crate::repo::repo_info(repo)?, dispatch_id)
}

/// [`create`] for a repository already described by `info` (saves the git
/// calls that read it again).
///
/// # Errors
/// As [`create`].
pub fn create_in(info: &RepoInfo, dispatch_id: &str) -> Result<Worktree> {
    validate_dispatch_id(dispatch_id)?;
    let repo = info.root.as_path();
    let base = info.head.clone().ok_or_else(|| GitError::NoCommits {
        path: repo.to_path_buf(),
    })?;
    exclude_worktrees(&info.common_dir)?;
    let path = worktree_path(repo, dispatch_id);
    if path.exists() {
        return Err(GitError::WorktreeExists { path });
    }
    let branch = format!("{BRANCH_PREFIX}{dispatch_id}");
    let path_arg = path.as_os_str().to_owned();
    let _lock = WorktreeLock::acquire(repo)?;
    cmd::ok(
        repo,
        &[
            "worktree".as_ref(),
            "add".as_ref(),
            "--quiet".as_ref(),
            "-b".as_ref(),
            branch.as_ref(),
            path_arg.as_os_str(),
            base.as_ref(),
        ] as &[&std::ffi::OsStr],
    )?;
    let admin = admin_dir(&path);
    if let Some(admin) = &admin {
        let file = admin.join(BASE_FILE);
        fs::write(&file, format!("{base}\n")).map_err(|source| GitError::Io {
            what: "could not record the base commit in",
            path: file,
            source,
        })?;
    }
    Ok(Worktree {
        path,
        branch,
        base,
        admin_dir: admin,
    })
}

/// An exclusive lock on `<repo>/.vnx/worktrees/.lock`, held while a
/// worktree is added or removed. Git does not lock its list of worktrees: a
/// `git worktree add` that runs while another one is half-way through
/// creating `.git/worktrees/<name>/` fails with "failed to read
/// .git/worktrees/<name>/commondir". Parallel dispatches (`vnx batch`,
/// several `vnx run`s) therefore take turns, across threads and processes
/// (an OS file lock, released when the file is closed, also on a crash).
struct WorktreeLock {
    _file: fs::File,
}

impl WorktreeLock {
    fn acquire(repo: &Path) -> Result<WorktreeLock> {
        let dir = repo.join(WORKTREES_DIR);
        let path = dir.join(".lock");
        let io = |source| GitError::Io {
            what: "could not take the worktree lock",
            path: path.clone(),
            source,
        };
        fs::create_dir_all(&dir).map_err(io)?;
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io)?;
        file.lock().map_err(io)?;
        Ok(WorktreeLock { _file: file })
    }
}

/// Adds `/.vnx/worktrees/` to the repository's `info/exclude` unless present.
///
/// # Errors
/// [`GitError::Io`] when the file cannot be read or appended to.
pub fn ensure_excluded(repo: &Path) -> Result<()> {
    exclude_worktrees(&common_dir(repo)?)
}

/// [`ensure_excluded`] given the common git directory.
fn exclude_worktrees(common_dir: &Path) -> Result<()> {
    let info = common_dir.join("info");
    let file = info.join("exclude");
    let existing = match fs::read_to_string(&file) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => {
            return Err(GitError::Io {
                what: "could not read",
                path: file,
                source,
            });
        }
    };
    let present = existing.lines().any(|l| {
        matches!(
            l.trim(),
            "/.vnx/worktrees/"
                | "/.vnx/worktrees"
                | ".vnx/worktrees/"
                | ".vnx/worktrees"
                | "/.vnx/"
                | ".vnx/"
                | "/.vnx"
                | ".vnx"
        )
    });
    if present {
        return Ok(());
    }
    let io = |source| GitError::Io {
        what: "could not update",
        path: file.clone(),
        source,
    };
    fs::create_dir_all(&info).map_err(io)?;
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&file)
        .map_err(io)?;
    let sep = if existing.is_empty() || existing.ends_with('\n') {
        ""
    } else {
        "\n"
    };
    f.write_all(format!("{sep}# vnx dispatch worktrees\n{EXCLUDE_LINE}\n").as_bytes())
        .map_err(io)?;
    Ok(())
}

/// The worktree's private git directory, read from its `.git` file.
fn admin_dir(worktree: &Path) -> Option<PathBuf> {
    let text = fs::read_to_string(worktree.join(".git")).ok()?;
    let dir = text.trim().strip_prefix("gitdir:")?.trim();
    let dir = PathBuf::from(dir);
    Some(if dir.is_absolute() {
        dir
    } else {
        worktree.join(dir)
    })
}

/// The base commit recorded when vnx created the worktree at `worktree`, if any.
pub fn recorded_base(worktree: &Path) -> Option<String> {
    let text = fs::read_to_string(admin_dir(worktree)?.join(BASE_FILE)).ok()?;
    let base = text.trim();
    (!base.is_empty()).then(|| base.to_owned())
}

/// Removes a worktree directory and git's record of it. The branch is kept
/// (it holds the dispatch's work). A directory that is already gone is
/// forgotten with `git worktree prune`.
///
/// # Errors
/// [`GitError::Failed`] when git refuses, e.g. a dirty worktree with
/// [`RemoveMode::IfClean`].
pub fn remove(repo: &Path, worktree: &Path, mode: RemoveMode) -> Result<()> {
    let _lock = WorktreeLock::acquire(repo)?;
    if !worktree.exists() {
        cmd::ok(repo, &["worktree", "prune"])?;
        return Ok(());
    }
    let mut args: Vec<&std::ffi::OsStr> = vec!["worktree".as_ref(), "remove".as_ref()];
    if mode == RemoveMode::Force {
        args.push("--force".as_ref());
    }
    args.push(worktree.as_os_str());
    cmd::ok(repo, &args)?;
    Ok(())
}

/// Removes a dispatch's worktree as `git worktree remove --force` does —
/// the directory with everything in it, then git's administrative directory
/// for it — without starting git. The branch is kept.
///
/// Only the administrative directory recorded at creation
/// ([`Worktree::admin_dir`]) is ever deleted, and only while it still
/// describes this worktree (its `gitdir` names `<path>/.git`, it sits in a
/// `worktrees/` directory, it is not locked): the worktree's own `.git` file
/// is the agent's to rewrite and is not trusted. Otherwise, and when the
/// directory removal fails, it falls back to `git worktree remove --force`
/// (and `git worktree prune` for a directory already gone).
///
/// # Errors
/// As [`remove`] in the fallback; [`GitError::Io`] when the administrative
/// directory cannot be deleted.
pub fn discard(repo: &Path, worktree: &Worktree) -> Result<()> {
    let Some(admin) = worktree
        .admin_dir
        .as_deref()
        .filter(|admin| describes(admin, &worktree.path))
    else {
        return remove(repo, &worktree.path, RemoveMode::Force);
    };
    // Under the worktree lock, like `remove`: a `git worktree add` running
    // meanwhile would fail on a half-deleted administrative directory.
    let lock = WorktreeLock::acquire(repo)?;
    match fs::remove_dir_all(&worktree.path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(_) => {
            drop(lock);
            return remove(repo, &worktree.path, RemoveMode::Force);
        }
    }
    fs::remove_dir_all(admin).map_err(|source| GitError::Io {
        what: "could not delete the worktree's git directory",
        path: admin.to_path_buf(),
        source,
    })
}

/// Whether `admin` is git's unlocked administrative directory for the
/// worktree at `path`.
fn describes(admin: &Path, path: &Path) -> bool {
    let in_worktrees_dir = admin
        .parent()
        .and_then(Path::file_name)
        .is_some_and(|n| n == "worktrees");
    if !in_worktrees_dir || admin.join("locked").exists() {
        return false;
    }
    fs::read_to_string(admin.join("gitdir"))
        .is_ok_and(|gitdir| Path::new(gitdir.trim()) == path.join(".git"))
}

/// vnx's worktrees of the repository: those on a `vnx/` branch or under
/// `.vnx/worktrees/`, with their state. `merged` is judged against the
/// repository's HEAD. A worktree whose state git cannot read is reported as
/// dirty and not merged.
///
/// # Errors
/// [`GitError::Failed`] / [`GitError::Spawn`] when git fails.
pub fn list(repo: &Path) -> Result<Vec<WorktreeInfo>> {
    let ran = cmd::ok(repo, &["worktree", "list", "--porcelain", "-z"])?;
    let root_dir = repo.join(WORKTREES_DIR);
    let target = head_commit(repo).ok();
    let mut out = Vec::new();
    for record in parse_worktree_list(&ran.stdout) {
        let branch = record
            .branch
            .as_deref()
            .and_then(|b| b.strip_prefix("refs/heads/"))
            .map(str::to_owned);
        let on_vnx_branch = branch
            .as_deref()
            .is_some_and(|b| b.starts_with(BRANCH_PREFIX));
        if !on_vnx_branch && !record.path.starts_with(&root_dir) {
            continue;
        }
        let dispatch_id = branch
            .as_deref()
            .and_then(|b| b.strip_prefix(BRANCH_PREFIX))
            .map(str::to_owned)
            .or_else(|| {
                record
                    .path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
            })
            .unwrap_or_default();
        let missing = !record.path.is_dir();
        let base = if missing {
            None
        } else {
            recorded_base(&record.path)
        };
        // A worktree git cannot read counts as dirty and unmerged, so prune
        // leaves it alone and one broken entry does not hide the others.
        let dirty = !missing && dirty_files(&record.path).map_or(true, |d| !d.is_empty());
        let merged = match (&record.head, &base, &target) {
            (Some(head), Some(base), Some(target)) if head != base => {
                is_ancestor(repo, head, target).unwrap_or(false)
            }
            _ => false,
        };
        out.push(WorktreeInfo {
            path: record.path,
            dispatch_id,
            branch,
            head: record.head,
            base,
            missing,
            dirty,
            merged,
            locked: record.locked,
        });
    }
    Ok(out)
}

/// Removes vnx worktrees whose branch is merged into HEAD (and that have no
/// uncommitted changes) or whose directory is gone, then runs
/// `git worktree prune`. Branches are kept. Locked, unmerged and dirty
/// worktrees are reported in [`PruneReport::kept`].
///
/// # Errors
/// [`GitError`] from listing or removing.
pub fn prune(repo: &Path) -> Result<PruneReport> {
    let mut report = PruneReport::default();
    for wt in list(repo)? {
        if wt.locked {
            report.kept.push((wt.path, "locked".to_owned()));
        } else if wt.missing {
            report.removed.push(wt.path);
        } else if !wt.merged {
            report
                .kept
                .push((wt.path, "branch not merged into HEAD".to_owned()));
        } else if wt.dirty {
            report
                .kept
                .push((wt.path, "merged, but has uncommitted changes".to_owned()));
        } else {
            remove(repo, &wt.path, RemoveMode::IfClean)?;
            report.removed.push(wt.path);
        }
    }
    cmd::ok(repo, &["worktree", "prune"])?;
    Ok(report)
}

/// Whether `ancestor` is reachable from `descendant`.
fn is_ancestor(repo: &Path, ancestor: &str, descendant: &str) -> Result<bool> {
    let ran = cmd::run(repo, &["merge-base", "--is-ancestor", ancestor, descendant])?;
    match ran.code() {
        Some(0) => Ok(true),
        Some(1) => Ok(false),
        _ => Err(ran.failure()),
    }
}

#[derive(Debug, Default)]
struct ListRecord {
    path: PathBuf,
    head: Option<String>,
    branch: Option<String>,
    locked: bool,
}

/// Parses `git worktree list --porcelain -z`: attributes separated by NUL,
/// records by an empty attribute.
fn parse_worktree_list(bytes: &[u8]) -> Vec<ListRecord> {
    let mut out = Vec::new();
    let mut cur: Option<ListRecord> = None;
    for field in bytes.split(|b| *b == 0) {
        let field = String::from_utf8_lossy(field);
        if field.is_empty() {
            if let Some(r) = cur.take() {
                out.push(r);
            }
            continue;
        }
        let (key, value) = field.split_once(' ').unwrap_or((&field, ""));
        match key {
            "worktree" => {
                if let Some(r) = cur.take() {
                    out.push(r);
                }
                cur = Some(ListRecord {
                    path: PathBuf::from(value),
                    ..ListRecord::default()
                });
            }
            "HEAD" => {
                if let Some(r) = cur.as_mut() {
                    r.head = Some(value.to_owned());
                }
            }
            "branch" => {
                if let Some(r) = cur.as_mut() {
                    r.branch = Some(value.to_owned());
                }
            }
            "locked" => {
                if let Some(r) = cur.as_mut() {
                    r.locked = true;
                }
            }
            _ => {}
        }
    }
    if let Some(r) = cur.take() {
        out.push(r);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispatch_ids() {
        assert!(validate_dispatch_id("d-20261121-ab12cd").is_ok());
        assert!(validate_dispatch_id("a.b_c").is_ok());
        for bad in ["", "-x", ".x", "a..b", "a/b", "a b", "x.lock", "x.", "é"] {
            assert!(validate_dispatch_id(bad).is_err(), "{bad:?} accepted");
        }
        assert!(validate_dispatch_id(&"a".repeat(129)).is_err());
    }

    #[test]
    fn worktree_list_parsing() {
        let raw = b"worktree /r\0HEAD aaa\0branch refs/heads/main\0\0worktree /r/.vnx/worktrees/x\0HEAD bbb\0branch refs/heads/vnx/x\0locked\0\0worktree /d\0HEAD ccc\0detached\0\0";
        let recs = parse_worktree_list(raw);
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[1].path, PathBuf::from("/r/.vnx/worktrees/x"));
        assert_eq!(recs[1].branch.as_deref(), Some("refs/heads/vnx/x"));
        assert!(recs[1].locked);
        assert_eq!(recs[2].branch, None);
        assert_eq!(recs[2].head.as_deref(), Some("ccc"));
    }
}
