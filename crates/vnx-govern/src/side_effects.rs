//! The side-effects gate: what a worker did outside its worktree.
//!
//! A worker runs with the user's permissions in a worktree *inside* the
//! user's repository, so it can reach the main tree, its refs and the
//! ledger. The pipeline takes a [`Snapshot`] before the worker and one
//! after, and [`compare`] names every difference:
//!
//! - the main tree's files that git tracks or lists as untracked (size,
//!   mtime in ns and inode of each; ignored files and vnx's own
//!   `.vnx/worktrees` and `.vnx/runs` are not looked at) with their index
//!   entries (not the index file's mtime: any `git status`, a shell
//!   prompt's too, rewrites it), and its `HEAD` file;
//! - every ref (`git show-ref --head`); refs under `refs/heads/vnx/` may be
//!   created or fast-forwarded (parallel dispatches do that), never moved
//!   back or deleted; the dispatch's own branch is left out;
//! - the ledger's files: segments may only grow (a parallel dispatch
//!   appends), with the same inode and the same bytes before their old end
//!   (the last [`TAIL_BYTES`] are compared); other files must not change;
//!   a new file is allowed only for the dispatch's own segment.
//!
//! Besides: [`leftover_processes`] finds (and kills) processes that outlived
//! the worker's process group — a daemon started with `setsid` — by the
//! `VNX_DISPATCH_ID` in their environment or a working directory inside
//! the worktree; [`push_trap_env`] makes any `git push` of the worker fail
//! and leave a marker file that [`push_attempted`] finds.
//!
//! Cost: two git processes per snapshot (run side by side) and one `stat`
//! per listed file; one pass over `/proc` after the worker.

use std::collections::BTreeMap;
use std::os::unix::fs::{FileExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};
use std::time::Instant;

use vnx_types::{GateResult, Verdict};

use crate::gates::{gate, names};

/// Bytes before a segment's old end that must be unchanged after the worker.
pub const TAIL_BYTES: u64 = 512;

/// Directories of the repository the file listing leaves out: vnx's own.
pub const EXCLUDED_DIRS: [&str; 2] = [".vnx/worktrees", ".vnx/runs"];

/// The name of the environment variable that carries the dispatch id into
/// the worker's environment (and so into every process it starts).
pub const DISPATCH_ID_VAR: &str = "VNX_DISPATCH_ID";

/// What a snapshot covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// The repository's main work tree root, absolute.
    pub repo: PathBuf,
    /// Its git directory (where `HEAD` and `index` are).
    pub git_dir: PathBuf,
    /// The ledger directory, absolute.
    pub ledger_dir: PathBuf,
    /// The segment the dispatch itself appends to (may be created).
    pub own_segment: String,
    /// The dispatch branch, e.g. `vnx/d-…` (its moves are the work).
    pub own_branch: String,
}

/// Size, mtime (ns since the epoch) and inode of a file; `None`: missing.
type Stamp = Option<(u64, i128, u64)>;

fn stamp(path: &Path) -> Stamp {
    let m = std::fs::symlink_metadata(path).ok()?;
    let mtime = i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec());
    Some((m.len(), mtime, m.ino()))
}

/// A ledger file: its stamp and, for a segment, the bytes before its end.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LedgerFile {
    stamp: Stamp,
    tail: Vec<u8>,
}

/// The state of everything a worker should not touch, at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    head_file: Option<Vec<u8>>,
    refs: BTreeMap<String, String>,
    /// Path → (index entry, stamp).
    files: BTreeMap<String, (String, Stamp)>,
    ledger: BTreeMap<String, LedgerFile>,
}

impl Snapshot {
    /// Takes a snapshot of `scope` (the git listing and the refs are read by
    /// two git processes at once).
    ///
    /// # Errors
    /// A message naming the git command or directory that failed.
    pub fn capture(scope: &Scope) -> Result<Snapshot, String> {
        let ledger_rel = scope
            .ledger_dir
            .strip_prefix(&scope.repo)
            .ok()
            .and_then(Path::to_str)
            .map(str::to_owned);
        let (files, refs) = std::thread::scope(|s| {
            let refs = s.spawn(|| vnx_git::refs(&scope.repo));
            let mut exclude: Vec<&str> = EXCLUDED_DIRS.to_vec();
            if let Some(rel) = ledger_rel.as_deref().filter(|r| !r.is_empty()) {
                exclude.push(rel);
            }
            let files = vnx_git::listed_files(&scope.repo, &exclude);
            let refs = refs.join().unwrap_or_else(|_| {
                Err(vnx_git::GitError::Parse {
                    command: "git show-ref".into(),
                    detail: "the reader panicked".into(),
                })
            });
            (files, refs)
        });
        let files = files.map_err(|e| e.to_string())?;
        let refs = refs.map_err(|e| e.to_string())?;
        let files = files
            .into_iter()
            .map(|(f, entry)| {
                let s = stamp(&scope.repo.join(&f));
                (f, (entry, s))
            })
            .collect();
        Ok(Snapshot {
            head_file: std::fs::read(scope.git_dir.join("HEAD")).ok(),
            refs: refs.into_iter().collect(),
            files,
            ledger: ledger_files(&scope.ledger_dir)?,
        })
    }
}

fn ledger_files(dir: &Path) -> Result<BTreeMap<String, LedgerFile>, String> {
    let mut out = BTreeMap::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        // A ledger that is gone is a state like any other: compare says so.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(format!("reading {}: {e}", dir.display())),
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let stamp = stamp(&path);
        let tail = match (&stamp, is_segment(&name)) {
            (Some((len, _, _)), true) => read_tail(&path, *len),
            _ => Vec::new(),
        };
        out.insert(name, LedgerFile { stamp, tail });
    }
    Ok(out)
}

/// Segment files end in `.ndjson` (`ledger/FORMAT.md`).
fn is_segment(name: &str) -> bool {
    name.ends_with(".ndjson")
}

/// The [`TAIL_BYTES`] bytes before offset `end` of the file.
fn read_tail(path: &Path, end: u64) -> Vec<u8> {
    let start = end.saturating_sub(TAIL_BYTES);
    let mut buf = vec![0; usize::try_from(end - start).unwrap_or(0)];
    match std::fs::File::open(path).and_then(|f| f.read_exact_at(&mut buf, start)) {
        Ok(()) => buf,
        Err(_) => Vec::new(),
    }
}

/// Every difference between `before` and `after` that the worker may have
/// caused, one sentence each, in a stable order.
pub fn compare(before: &Snapshot, after: &Snapshot, scope: &Scope) -> Vec<String> {
    let mut out = Vec::new();
    if before.head_file != after.head_file {
        let show = |h: &Option<Vec<u8>>| {
            h.as_deref().map_or("missing".to_owned(), |b| {
                String::from_utf8_lossy(b).trim().to_owned()
            })
        };
        out.push(format!(
            "the main tree's HEAD changed ({} → {})",
            show(&before.head_file),
            show(&after.head_file)
        ));
    }
    for (path, (was_entry, was)) in &before.files {
        match after.files.get(path) {
            Some((now_entry, now)) => {
                if now != was {
                    out.push(describe_file(path, *was, *now));
                }
                if now_entry != was_entry {
                    out.push(format!(
                        "main tree: {path} staged differently (the index changed)"
                    ));
                }
            }
            // No longer listed: deleted from the index and the disk, or
            // now ignored.
            None => out.push(format!(
                "main tree: {path} deleted or no longer listed by git"
            )),
        }
    }
    for (path, (_, now)) in &after.files {
        if !before.files.contains_key(path) && now.is_some() {
            out.push(format!("main tree: {path} created"));
        }
    }
    out.extend(compare_refs(&before.refs, &after.refs, scope));
    out.extend(compare_ledger(&before.ledger, &after.ledger, scope));
    out
}

fn describe_file(path: &str, was: Stamp, now: Stamp) -> String {
    match (was, now) {
        (None, Some(_)) => format!("main tree: {path} created"),
        (Some(_), None) => format!("main tree: {path} deleted"),
        (Some((a, _, ia)), Some((b, _, ib))) if ia != ib => {
            format!("main tree: {path} replaced ({a} → {b} bytes)")
        }
        (Some((a, _, _)), Some((b, _, _))) => {
            format!("main tree: {path} modified ({a} → {b} bytes)")
        }
        (None, None) => format!("main tree: {path} changed"),
    }
}

fn compare_refs(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
    scope: &Scope,
) -> Vec<String> {
    let own = format!("refs/heads/{}", scope.own_branch);
    let dispatch_branch = |name: &str| name.starts_with("refs/heads/vnx/");
    let short = |oid: &str| oid.get(..12).unwrap_or(oid).to_owned();
    let mut out = Vec::new();
    for (name, was) in before {
        if *name == own || name == "HEAD" {
            continue;
        }
        match after.get(name) {
            Some(now) if now == was => {}
            Some(now) => {
                // Another dispatch of a batch moves its own branch forward.
                if dispatch_branch(name)
                    && vnx_git::is_ancestor(&scope.repo, was, now).unwrap_or(false)
                {
                    continue;
                }
                out.push(format!(
                    "ref {name} moved ({} → {})",
                    short(was),
                    short(now)
                ));
            }
            None => out.push(format!("ref {name} deleted (was {})", short(was))),
        }
    }
    for (name, now) in after {
        if *name == own || name == "HEAD" || before.contains_key(name) || dispatch_branch(name) {
            continue;
        }
        out.push(format!("ref {name} created at {}", short(now)));
    }
    out
}

fn compare_ledger(
    before: &BTreeMap<String, LedgerFile>,
    after: &BTreeMap<String, LedgerFile>,
    scope: &Scope,
) -> Vec<String> {
    let dir = scope.ledger_dir.display();
    let mut out = Vec::new();
    if !before.is_empty() && after.is_empty() {
        out.push(format!("the ledger {dir} was deleted"));
        return out;
    }
    for (name, was) in before {
        let Some(now) = after.get(name) else {
            out.push(format!("ledger: {name} deleted"));
            continue;
        };
        let (Some((was_len, _, was_ino)), Some((now_len, _, now_ino))) = (was.stamp, now.stamp)
        else {
            continue;
        };
        if was_ino != now_ino {
            out.push(format!("ledger: {name} replaced by another file"));
        } else if !is_segment(name) {
            if was.stamp != now.stamp {
                out.push(format!("ledger: {name} modified"));
            }
        } else if now_len < was_len {
            out.push(format!(
                "ledger: {name} truncated ({was_len} → {now_len} bytes)"
            ));
        } else if read_tail(&scope.ledger_dir.join(name), was_len) != was.tail {
            out.push(format!(
                "ledger: {name} rewritten before its old end ({was_len} bytes)"
            ));
        }
    }
    for name in after.keys() {
        if !before.contains_key(name) && *name != scope.own_segment {
            out.push(format!("ledger: {name} created"));
        }
    }
    out
}

/// A process that outlived the worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    /// Its pid.
    pub pid: i32,
    /// Its command line, arguments joined by spaces (cut to 200 bytes).
    pub command: String,
    /// Whether vnx killed it (`SIGKILL`).
    pub killed: bool,
}

/// Processes still running after the worker's process group was killed
/// that belong to the dispatch: `VNX_DISPATCH_ID=<dispatch_id>` in their
/// environment, or a working directory inside `worktree`. Each is killed
/// with `SIGKILL` (with its process group when it leads one). Processes
/// already dying (a pending `SIGKILL`, zombies) are not counted. Linux
/// only (`/proc`); elsewhere the list is empty.
pub fn leftover_processes(dispatch_id: &str, worktree: &Path) -> Vec<Leftover> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id();
    let marker = format!("{DISPATCH_ID_VAR}={dispatch_id}");
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if pid.unsigned_abs() == me {
            continue;
        }
        let dir = entry.path();
        // vnx's own git processes (this or a parallel dispatch's) are not
        // the worker's.
        if parent(&dir) == Some(me) {
            continue;
        }
        let in_worktree =
            std::fs::read_link(dir.join("cwd")).is_ok_and(|c| c.starts_with(worktree));
        let carries_id = !in_worktree
            && std::fs::read(dir.join("environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == marker.as_bytes()));
        if !(in_worktree || carries_id) || dying(&dir) {
            continue;
        }
        let command = std::fs::read(dir.join("cmdline"))
            .map(|c| {
                let text = String::from_utf8_lossy(&c).replace('\0', " ");
                crate::gates::bound_bytes(text.trim(), 200)
            })
            .unwrap_or_default();
        out.push(Leftover {
            pid,
            command,
            killed: kill(pid),
        });
    }
    out
}

/// The parent pid from `/proc/<pid>/stat` (the field after the `)` that
/// ends the command name, which may itself hold spaces and parentheses).
fn parent(proc_dir: &Path) -> Option<u32> {
    let stat = std::fs::read_to_string(proc_dir.join("stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// A zombie, or a process with `SIGKILL` pending (the group kill reached it).
fn dying(proc_dir: &Path) -> bool {
    let Ok(status) = std::fs::read_to_string(proc_dir.join("status")) else {
        return true;
    };
    status.lines().any(|l| {
        if let Some(state) = l.strip_prefix("State:") {
            let state = state.trim_start();
            return state.starts_with('Z') || state.starts_with('X');
        }
        let mask = l
            .strip_prefix("SigPnd:")
            .or_else(|| l.strip_prefix("ShdPnd:"))
            .and_then(|m| u64::from_str_radix(m.trim(), 16).ok());
        // Bit 8 is signal 9 (SIGKILL).
        mask.is_some_and(|m| m & (1 << 8) != 0)
    })
}

fn kill(pid: i32) -> bool {
    use nix::sys::signal::{Signal, kill, killpg};
    use nix::unistd::{Pid, getpgid};
    let pid = Pid::from_raw(pid);
    if getpgid(Some(pid)).is_ok_and(|g| g == pid) {
        let _ = killpg(pid, Signal::SIGKILL);
    }
    kill(pid, Signal::SIGKILL).is_ok()
}

/// The file a blocked `git push` of the worker creates: `<run_dir>/push-attempted`.
pub fn push_marker(run_dir: &Path) -> PathBuf {
    run_dir.join("push-attempted")
}

/// Environment variables that make every `git push` of the worker fail and
/// leave [`push_marker`] behind, appended to the `count` `GIT_CONFIG_KEY_<n>`
/// entries the environment already has (git ≥ 2.31 reads them,
/// git-config(1) "ENVIRONMENT"):
///
/// - `url.<trap>.pushInsteadOf = ""`: the empty prefix matches every push
///   URL (a remote's `url`, or one given on the command line), which is
///   rewritten to `ext::touch <marker> <run_dir>/push-url/<url>` — git runs
///   `touch`, which creates the marker and does not speak git's protocol,
///   so the push fails before anything leaves;
/// - `protocol.ext.allow = user`: `ext::` only for commands the worker
///   runs itself, never for submodules (`GIT_PROTOCOL_FROM_USER=0`).
///
/// Not covered: a remote with its own `pushurl` (git does not rewrite
/// those), a worker that clears the variables, pushes without git. A push
/// that went through still shows as a moved `refs/remotes/…` ref.
pub fn push_trap_env(run_dir: &Path, count: usize) -> Vec<(String, String)> {
    let escape = |p: &Path| {
        p.display()
            .to_string()
            .replace('%', "%%")
            .replace(' ', "% ")
    };
    let trap = format!(
        "ext::touch {} {}/push-url/",
        escape(&push_marker(run_dir)),
        escape(run_dir)
    );
    vec![
        ("GIT_CONFIG_COUNT".to_owned(), (count + 2).to_string()),
        (
            format!("GIT_CONFIG_KEY_{count}"),
            format!("url.{trap}.pushInsteadOf"),
        ),
        (format!("GIT_CONFIG_VALUE_{count}"), String::new()),
        (
            format!("GIT_CONFIG_KEY_{}", count + 1),
            "protocol.ext.allow".to_owned(),
        ),
        (format!("GIT_CONFIG_VALUE_{}", count + 1), "user".to_owned()),
    ]
}

/// Whether the worker tried to push ([`push_trap_env`]).
pub fn push_attempted(run_dir: &Path) -> bool {
    push_marker(run_dir).exists()
}

/// The side-effects gate: `fail` with every finding as evidence, `pass`
/// naming what was checked, `error` when a snapshot could not be taken
/// (`findings` is then the reason).
pub fn side_effects_gate(findings: Result<&[String], &str>, checked: &str) -> GateResult {
    let t = Instant::now();
    let name = names::SIDE_EFFECTS;
    match findings {
        Err(why) => gate(name, Verdict::Error, &format!("not checked: {why}"), t),
        Ok([]) => gate(
            name,
            Verdict::Pass,
            &format!("nothing changed outside the worktree ({checked})"),
            t,
        ),
        Ok(items) => gate(
            name,
            Verdict::Fail,
            &format!(
                "the worker acted outside its worktree: {}",
                crate::gates::findings(items)
            ),
            t,
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn git(dir: &Path, args: &[&str]) {
        let ok = std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@x")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@x")
            .status()
            .unwrap()
            .success();
        assert!(ok, "git {args:?}");
    }

    fn repo() -> (tempfile::TempDir, Scope) {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().canonicalize().unwrap();
        git(&repo, &["init", "-q", "-b", "main"]);
        std::fs::write(repo.join("a.txt"), "a\n").unwrap();
        std::fs::create_dir(repo.join("ledger")).unwrap();
        std::fs::write(repo.join("ledger/ledger.json"), "{}\n").unwrap();
        std::fs::write(repo.join("ledger/w--main.ndjson"), "line 1\n").unwrap();
        git(&repo, &["add", "-A"]);
        git(&repo, &["commit", "-qm", "first"]);
        git(&repo, &["branch", "vnx/d-1"]);
        let scope = Scope {
            git_dir: repo.join(".git"),
            ledger_dir: repo.join("ledger"),
            own_segment: "w--vnx_d-1.ndjson".into(),
            own_branch: "vnx/d-1".into(),
            repo,
        };
        (tmp, scope)
    }

    #[test]
    fn an_untouched_repository_has_no_findings_and_appends_are_allowed() {
        use std::io::Write as _;
        let (_tmp, scope) = repo();
        let before = Snapshot::capture(&scope).unwrap();
        // What vnx itself and parallel dispatches do.
        std::fs::OpenOptions::new()
            .append(true)
            .open(scope.ledger_dir.join("w--main.ndjson"))
            .unwrap()
            .write_all(b"line 2\n")
            .unwrap();
        std::fs::write(scope.ledger_dir.join(&scope.own_segment), "x\n").unwrap();
        git(&scope.repo, &["branch", "-f", "vnx/d-1", "HEAD"]);
        git(&scope.repo, &["branch", "vnx/d-2"]);
        let after = Snapshot::capture(&scope).unwrap();
        assert_eq!(compare(&before, &after, &scope), Vec::<String>::new());
    }

    #[test]
    fn edits_refs_and_ledger_rewrites_are_named() {
        let (_tmp, scope) = repo();
        std::fs::write(scope.repo.join("notes.txt"), "mine\n").unwrap();
        let before = Snapshot::capture(&scope).unwrap();
        std::fs::write(scope.repo.join("a.txt"), "changed by the worker\n").unwrap();
        std::fs::remove_file(scope.repo.join("notes.txt")).unwrap();
        std::fs::write(scope.repo.join("new.txt"), "n\n").unwrap();
        git(&scope.repo, &["tag", "v1"]);
        std::fs::write(scope.repo.join("staged.txt"), "s\n").unwrap();
        git(&scope.repo, &["add", "staged.txt"]);
        std::fs::write(scope.ledger_dir.join("w--main.ndjson"), "LINE 1\n").unwrap();
        let after = Snapshot::capture(&scope).unwrap();
        let found = compare(&before, &after, &scope).join("\n");
        for needle in [
            "a.txt modified",
            "notes.txt deleted",
            "new.txt created",
            "ref refs/tags/v1 created",
            "staged.txt created",
            "w--main.ndjson",
        ] {
            assert!(found.contains(needle), "{needle} not in:\n{found}");
        }
        let g = side_effects_gate(Ok(&compare(&before, &after, &scope)), "");
        assert_eq!(g.verdict, Verdict::Fail);
    }

    #[test]
    fn a_push_is_refused_and_leaves_the_marker() {
        let (tmp, scope) = repo();
        let remote = tmp.path().join("remote.git");
        git(
            tmp.path(),
            &["init", "-q", "--bare", remote.to_str().unwrap()],
        );
        git(
            &scope.repo,
            &["remote", "add", "origin", remote.to_str().unwrap()],
        );
        let run_dir = tmp.path().join("run dir");
        std::fs::create_dir(&run_dir).unwrap();
        let ok = std::process::Command::new("git")
            .args(["push", "-q", "origin", "main"])
            .current_dir(&scope.repo)
            .envs(push_trap_env(&run_dir, 0))
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(!ok, "the push went through");
        assert!(push_attempted(&run_dir));
        let refs = vnx_git::refs(&remote).unwrap();
        assert!(refs.is_empty(), "{refs:?}");
    }
}
