//! The dispatch commit: whatever the worker left uncommitted.

use std::path::Path;

use crate::cmd::{self, At};
use crate::error::{GitError, Result};

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
    add_all_and_commit(worktree.into(), message, &identity_env(worktree)?)
}

/// `git add --all` and a commit with `message` as `env`'s identity (no hooks,
/// no signing, no auto-maintenance); the new HEAD, or `None` when nothing
/// was staged after all.
fn add_all_and_commit(
    worktree: At<'_>,
    message: &str,
    env: &[(&str, String)],
) -> Result<Option<String>> {
    cmd::ok(worktree, &["add", "--all"])?;
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
        env,
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
    Ok(Some(cmd::ok(worktree, &["rev-parse", "HEAD"])?.text()))
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

/// Environment variables that give the commit [`identity`]'s identity.
fn identity_env(dir: &Path) -> Result<Vec<(&'static str, String)>> {
    Ok(identity(dir)?.env().into())
}

/// Who a commit is by: author and committer, each a name and an e-mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Author name.
    pub author_name: String,
    /// Author e-mail.
    pub author_email: String,
    /// Committer name.
    pub committer_name: String,
    /// Committer e-mail.
    pub committer_email: String,
}

impl Identity {
    /// The four `GIT_AUTHOR_*` / `GIT_COMMITTER_*` variables that make git use
    /// exactly this identity.
    pub fn env(&self) -> [(&'static str, String); 4] {
        [
            ("GIT_AUTHOR_NAME", self.author_name.clone()),
            ("GIT_AUTHOR_EMAIL", self.author_email.clone()),
            ("GIT_COMMITTER_NAME", self.committer_name.clone()),
            ("GIT_COMMITTER_EMAIL", self.committer_email.clone()),
        ]
    }
}

/// The identity vnx commits with in `dir`, resolved as git resolves it
/// (first non-empty of): `GIT_AUTHOR_NAME` (`…_EMAIL`, `GIT_COMMITTER_…`),
/// then `author.name` (`author.email`, `committer.…`) and `user.name`
/// (`user.email`) from git's configuration; else the fallback identity
/// `vnx <vnx@localhost>` — never git's guess from the host name, so that
/// commits work, and look the same, on machines with no identity.
///
/// Reads the configuration with one `git config` call, none when the
/// environment sets all four variables.
///
/// # Errors
/// [`crate::GitError::Failed`] when `git config` fails.
pub fn identity(dir: &Path) -> Result<Identity> {
    let vars = identity_vars();
    let config = if vars.iter().all(Option::is_some) {
        Vec::new()
    } else {
        read_config(dir)?
    };
    Ok(resolve_identity(vars, &config))
}

/// The non-empty `GIT_AUTHOR_NAME`, `…_EMAIL`, `GIT_COMMITTER_NAME`,
/// `…_EMAIL` of vnx's environment, in that order.
fn identity_vars() -> [Option<String>; 4] {
    [
        "GIT_AUTHOR_NAME",
        "GIT_AUTHOR_EMAIL",
        "GIT_COMMITTER_NAME",
        "GIT_COMMITTER_EMAIL",
    ]
    .map(|var| std::env::var(var).ok().filter(|v| !v.is_empty()))
}

/// What vnx's own commits take from git's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitSettings {
    /// Who the commits are by ([`identity`]).
    pub identity: Identity,
    /// `core.fsync` or `core.fsyncObjectFiles` is set: [`commit_files`]
    /// leaves git's fsync behaviour exactly as configured.
    pub fsync_configured: bool,
}

/// [`identity`] and whether the user chose what git fsyncs, read with one
/// `git config` call (always, also when the environment gives the identity).
///
/// # Errors
/// [`crate::GitError::Failed`] when `git config` fails.
pub fn commit_settings(dir: &Path) -> Result<CommitSettings> {
    let vars = identity_vars();
    let config = read_config(dir)?;
    let fsync_configured = config
        .iter()
        .any(|(k, _)| k == "core.fsync" || k == "core.fsyncobjectfiles");
    Ok(CommitSettings {
        identity: resolve_identity(vars, &config),
        fsync_configured,
    })
}

/// The identity from the `GIT_*` variables (author name, author e-mail,
/// committer name, committer e-mail) and the configuration read by
/// [`read_config`].
fn resolve_identity(vars: [Option<String>; 4], config: &[(String, String)]) -> Identity {
    // The last value of a key wins, as in git.
    let get = |key: &str| {
        config
            .iter()
            .rev()
            .find(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.clone())
    };
    let [author_name, author_email, committer_name, committer_email] = vars;
    Identity {
        author_name: author_name
            .or_else(|| get("author.name"))
            .or_else(|| get("user.name"))
            .unwrap_or_else(|| FALLBACK_NAME.to_owned()),
        author_email: author_email
            .or_else(|| get("author.email"))
            .or_else(|| get("user.email"))
            .unwrap_or_else(|| FALLBACK_EMAIL.to_owned()),
        committer_name: committer_name
            .or_else(|| get("committer.name"))
            .or_else(|| get("user.name"))
            .unwrap_or_else(|| FALLBACK_NAME.to_owned()),
        committer_email: committer_email
            .or_else(|| get("committer.email"))
            .or_else(|| get("user.email"))
            .unwrap_or_else(|| FALLBACK_EMAIL.to_owned()),
    }
}

/// The identity keys and the fsync keys set in git's configuration, as
/// `(key, value)` in configuration order (keys lowercased by git).
fn read_config(dir: &Path) -> Result<Vec<(String, String)>> {
    let ran = cmd::run(
        dir,
        &[
            "config",
            "--get-regexp",
            r"^((user|author|committer)\.(name|email)|core\.fsync(objectfiles)?)$",
        ],
    )?;
    match ran.code() {
        Some(0) => Ok(ran
            .text()
            .lines()
            .map(|l| {
                let (k, v) = l.split_once(' ').unwrap_or((l, ""));
                (k.to_owned(), v.to_owned())
            })
            .collect()),
        Some(1) => Ok(Vec::new()),
        _ => Err(ran.failure()),
    }
}

/// The dispatch commit, as [`commit_work`] left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkCommit {
    /// The worktree's HEAD afterwards: the new commit, or the commit HEAD
    /// was at when there was nothing to commit (the worker's own last
    /// commit, or the base).
    pub head: String,
    /// Whether vnx made a commit.
    pub committed: bool,
}

/// [`commit_all`] for a dispatch worktree, with the identity resolved
/// beforehand ([`identity`]) and HEAD always known: a worker that left
/// nothing uncommitted costs one `git status` (which also names HEAD), a
/// worker that did costs `status`, `add`, `commit` and `rev-parse`.
///
/// # Errors
/// [`crate::GitError::Failed`] when a git command fails;
/// [`crate::GitError::Parse`] when HEAD is unborn.
pub fn commit_work(worktree: &Path, message: &str, identity: &Identity) -> Result<WorkCommit> {
    commit_work_at(worktree.into(), message, identity)
}

/// [`commit_work`] at `worktree` (a directory or a pinned worktree).
pub(crate) fn commit_work_at(
    worktree: At<'_>,
    message: &str,
    identity: &Identity,
) -> Result<WorkCommit> {
    let status = cmd::ok(
        worktree,
        &[
            "status",
            "--porcelain=v2",
            "-z",
            "--branch",
            "--untracked-files=all",
        ],
    )?;
    let mut oid = None;
    let mut changes = false;
    // Headers (`# …`) come first; once an entry is seen, a field starting
    // with `#` is a path (a rename's original path), not a header.
    for field in status.stdout.split(|b| *b == 0).filter(|f| !f.is_empty()) {
        if changes {
            break;
        }
        if let Some(rest) = field.strip_prefix(b"# branch.oid ") {
            oid = Some(String::from_utf8_lossy(rest).into_owned());
        } else if !field.starts_with(b"# ") {
            changes = true;
        }
    }
    let head = oid
        .filter(|o| o.bytes().all(|b| b.is_ascii_hexdigit()) && !o.is_empty())
        .ok_or_else(|| GitError::Parse {
            command: status.command.clone(),
            detail: "no `# branch.oid` with a commit id (unborn HEAD?)".to_owned(),
        })?;
    if !changes {
        return Ok(WorkCommit {
            head,
            committed: false,
        });
    }
    Ok(
        match add_all_and_commit(worktree, message, &identity.env())? {
            Some(new_head) => WorkCommit {
                head: new_head,
                committed: true,
            },
            None => WorkCommit {
                head,
                committed: false,
            },
        },
    )
}

/// A file for [`commit_files`]: its path in the commit's tree (relative,
/// `/`-separated) and its contents.
#[derive(Debug, Clone, Copy)]
pub struct TreeFile<'a> {
    /// Path in the tree, e.g. `ledger/alice--vnx_d-1.ndjson`.
    pub path: &'a str,
    /// The file's bytes (mode `100644`).
    pub contents: &'a [u8],
}

/// Commits `files` on top of branch `branch` (e.g. `vnx/<id>`) without
/// touching any work tree or index: the new commit's tree is the branch
/// tip's tree with `files` added or replaced, its only parent the tip, and
/// `refs/heads/<branch>` moves to it (a fast-forward; git refuses anything
/// else). Returns the new commit id.
///
/// One `git fast-import` (plus the `unpack-objects` it runs itself, so the
/// objects end up loose, as a `git commit`'s would; its temporary pack is
/// not fsynced unless the user configured fsync, see [`CommitSettings`]).
/// No hooks, no signing, committed "now" in the local time zone
/// (`GIT_*_DATE` are not read).
///
/// A worktree that has `branch` checked out sees its HEAD move while its
/// index stays behind; write the files there too and call
/// [`reset_paths`] if it is kept.
///
/// # Errors
/// [`crate::GitError::Failed`] when the branch does not exist, a path is
/// invalid or git refuses the update; [`crate::GitError::Parse`] when git
/// does not print the commit id.
pub fn commit_files(
    repo: &Path,
    branch: &str,
    files: &[TreeFile<'_>],
    message: &str,
    settings: &CommitSettings,
) -> Result<String> {
    let identity = &settings.identity;
    let ident = |name: &str, email: &str| format!("{} <{}> now", clean(name), clean(email));
    let mut stream = Vec::new();
    let head = format!("refs/heads/{branch}");
    stream.extend_from_slice(format!("commit {head}\nmark :1\n").as_bytes());
    stream.extend_from_slice(
        format!(
            "author {}\ncommitter {}\n",
            ident(&identity.author_name, &identity.author_email),
            ident(&identity.committer_name, &identity.committer_email)
        )
        .as_bytes(),
    );
    data(&mut stream, message.as_bytes());
    // `^0`: the branch's current tip in the repository (the bare name
    // would mean the branch as built so far in this stream: nothing).
    stream.extend_from_slice(format!("from {head}^0\n").as_bytes());
    for f in files {
        stream.extend_from_slice(b"M 100644 inline ");
        stream.extend_from_slice(quote_path(f.path).as_bytes());
        stream.push(b'\n');
        data(&mut stream, f.contents);
    }
    stream.extend_from_slice(b"\nget-mark :1\n");
    let ran = cmd::run_stdin(repo, &fast_import_args(settings), &stream)?.check()?;
    let id = ran.text();
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(GitError::Parse {
            command: ran.command.clone(),
            detail: format!("expected a commit id, got {id:?}"),
        });
    }
    Ok(id)
}

/// Sets the index entries of `paths` (relative to `worktree`) to HEAD's:
/// for a worktree whose branch [`commit_files`] moved, after the same files
/// were written into it, so `git status` is clean again.
///
/// # Errors
/// [`crate::GitError::Failed`] when `git reset` fails.
pub fn reset_paths(worktree: &Path, paths: &[&Path]) -> Result<()> {
    reset_paths_at(worktree.into(), paths)
}

/// [`reset_paths`] at `worktree` (a directory or a pinned worktree).
pub(crate) fn reset_paths_at(worktree: At<'_>, paths: &[&Path]) -> Result<()> {
    let mut args: Vec<&std::ffi::OsStr> = vec!["reset".as_ref(), "--quiet".as_ref(), "--".as_ref()];
    args.extend(paths.iter().map(|p| p.as_os_str()));
    cmd::ok(worktree, &args)?;
    Ok(())
}

/// The arguments of [`commit_files`]' `git fast-import`.
///
/// fast-import writes its objects as a pack, fsyncs it, then (below
/// `fastimport.unpackLimit`, 100 objects) has `unpack-objects` turn it into
/// loose objects and deletes it. Unless the user configured fsync, the pack
/// component is left out (`-c core.fsync=-pack`: git's default minus packs):
/// the only pack written is that temporary one, so no lasting file loses an
/// fsync — the loose objects and the ref are not fsynced by default either,
/// exactly as for a `git commit`.
fn fast_import_args(settings: &CommitSettings) -> Vec<&'static str> {
    let mut args = Vec::new();
    if !settings.fsync_configured {
        args.extend(["-c", "core.fsync=-pack"]);
    }
    args.extend(["fast-import", "--quiet", "--date-format=now"]);
    args
}

/// A `data <n>` command of a fast-import stream with its bytes.
fn data(stream: &mut Vec<u8>, bytes: &[u8]) {
    stream.extend_from_slice(format!("data {}\n", bytes.len()).as_bytes());
    stream.extend_from_slice(bytes);
    stream.push(b'\n');
}

/// An identity part without the characters git's ident syntax cannot hold
/// (`<`, `>`, newlines), as `git commit` strips them.
fn clean(part: &str) -> String {
    part.chars()
        .filter(|c| !matches!(c, '<' | '>' | '\n' | '\r' | '\0'))
        .collect::<String>()
        .trim()
        .to_owned()
}

/// A path as a C-style quoted string for fast-import.
fn quote_path(path: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(path.len() + 2);
    out.push('"');
    for c in path.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_ascii_control() => {
                let _ = write!(out, "\\{:03o}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn fast_import_keeps_a_configured_fsync() {
        let identity = Identity {
            author_name: "a".into(),
            author_email: "a@x".into(),
            committer_name: "c".into(),
            committer_email: "c@x".into(),
        };
        let mut settings = CommitSettings {
            identity,
            fsync_configured: false,
        };
        assert_eq!(
            fast_import_args(&settings),
            [
                "-c",
                "core.fsync=-pack",
                "fast-import",
                "--quiet",
                "--date-format=now"
            ]
        );
        settings.fsync_configured = true;
        assert_eq!(
            fast_import_args(&settings),
            ["fast-import", "--quiet", "--date-format=now"]
        );
    }

    #[test]
    fn fast_import_quoting() {
        assert_eq!(quote_path("ledger/a.ndjson"), r#""ledger/a.ndjson""#);
        assert_eq!(
            quote_path("a \"b\"\\c\nd\te é"),
            r#""a \"b\"\\c\nd\011e é""#
        );
        assert_eq!(clean(" Ada <Lovelace>\n "), "Ada Lovelace");
    }

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
