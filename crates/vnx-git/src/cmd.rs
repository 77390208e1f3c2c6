//! Running git: argv arrays, never a shell, a fixed environment.

use std::ffi::OsStr;
use std::io::Read;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};

use crate::error::{GitError, Result};

/// How much of stderr an error keeps, bytes.
const STDERR_TAIL_BYTES: usize = 2048;

/// The output of a git command that ran to completion.
pub(crate) struct Ran {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub command: String,
}

impl Ran {
    /// stdout as (lossy) UTF-8 with the trailing newline removed.
    pub fn text(&self) -> String {
        let s = String::from_utf8_lossy(&self.stdout);
        s.trim_end_matches(['\n', '\r']).to_owned()
    }

    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Turns a non-zero exit into [`GitError::Failed`].
    pub fn check(self) -> Result<Ran> {
        if self.status.success() {
            Ok(self)
        } else {
            Err(self.failure())
        }
    }

    pub fn failure(&self) -> GitError {
        GitError::Failed {
            command: self.command.clone(),
            status: self.status.to_string(),
            stderr: tail(&self.stderr, STDERR_TAIL_BYTES),
        }
    }

    pub fn stderr_tail(&self) -> String {
        tail(&self.stderr, STDERR_TAIL_BYTES)
    }
}

/// The last `max` bytes of `bytes`, lossy UTF-8, trimmed.
pub(crate) fn tail(bytes: &[u8], max: usize) -> String {
    let start = bytes.len().saturating_sub(max);
    String::from_utf8_lossy(&bytes[start..]).trim().to_owned()
}

/// Where a git command runs.
#[derive(Debug, Clone, Copy)]
pub(crate) enum At<'a> {
    /// `git -C <dir>`: git finds the repository from `dir` upwards.
    Dir(&'a Path),
    /// `git --git-dir=<git_dir> --work-tree=<work_tree> -C <work_tree>`:
    /// no discovery at all, so a work tree whose `.git` file is gone or
    /// rewritten can never send the command to another repository.
    Pinned {
        git_dir: &'a Path,
        work_tree: &'a Path,
    },
}

impl<'a> From<&'a Path> for At<'a> {
    fn from(dir: &'a Path) -> At<'a> {
        At::Dir(dir)
    }
}

impl<'a> From<&'a std::path::PathBuf> for At<'a> {
    fn from(dir: &'a std::path::PathBuf) -> At<'a> {
        At::Dir(dir)
    }
}

/// A git command at `at` with vnx's environment: no terminal prompts, C
/// locale (stable messages), no inherited `GIT_DIR`-style variables (vnx
/// may itself run inside a git hook).
pub(crate) fn git_command<'a, S: AsRef<OsStr>>(
    at: impl Into<At<'a>>,
    args: &[S],
) -> (Command, String) {
    let mut cmd = Command::new("git");
    let mut display;
    match at.into() {
        At::Dir(dir) => {
            cmd.arg("-C").arg(dir);
            display = format!("git -C {}", dir.display());
        }
        At::Pinned { git_dir, work_tree } => {
            let mut git_dir_arg = std::ffi::OsString::from("--git-dir=");
            git_dir_arg.push(git_dir);
            let mut work_tree_arg = std::ffi::OsString::from("--work-tree=");
            work_tree_arg.push(work_tree);
            cmd.arg(git_dir_arg)
                .arg(work_tree_arg)
                .arg("-C")
                .arg(work_tree);
            display = format!(
                "git --git-dir={} --work-tree={} -C {}",
                git_dir.display(),
                work_tree.display(),
                work_tree.display()
            );
        }
    }
    cmd.args(args);
    cmd.env("GIT_TERMINAL_PROMPT", "0")
        .env("LC_ALL", "C")
        .env("GIT_OPTIONAL_LOCKS", "0")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .env_remove("GIT_PREFIX")
        .env_remove("GIT_COMMON_DIR")
        .stdin(Stdio::null());
    for a in args {
        display.push(' ');
        display.push_str(&a.as_ref().to_string_lossy());
    }
    (cmd, display)
}

/// Runs git to completion and returns its output whatever the exit status.
pub(crate) fn run<'a, S: AsRef<OsStr>>(at: impl Into<At<'a>>, args: &[S]) -> Result<Ran> {
    run_with(at, args, &[])
}

/// Like [`run`] with extra environment variables.
pub(crate) fn run_with<'a, S: AsRef<OsStr>>(
    at: impl Into<At<'a>>,
    args: &[S],
    env: &[(&str, String)],
) -> Result<Ran> {
    let (mut cmd, command) = git_command(at, args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().map_err(|source| GitError::Spawn {
        command: command.clone(),
        source,
    })?;
    Ok(Ran {
        status: out.status,
        stdout: out.stdout,
        stderr: out.stderr,
        command,
    })
}

/// Runs git with `input` on its stdin (written from a thread, so git's
/// output cannot block it) and returns its output whatever the exit status.
pub(crate) fn run_stdin<'a, S: AsRef<OsStr>>(
    at: impl Into<At<'a>>,
    args: &[S],
    input: &[u8],
) -> Result<Ran> {
    use std::io::Write as _;
    let (mut cmd, command) = git_command(at, args);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let spawn_err = |source| GitError::Spawn {
        command: command.clone(),
        source,
    };
    let mut child = cmd.spawn().map_err(spawn_err)?;
    let out = std::thread::scope(|scope| {
        if let Some(mut stdin) = child.stdin.take() {
            // A write error means git exited early; its status says why.
            scope.spawn(move || {
                let _ = stdin.write_all(input);
            });
        }
        child.wait_with_output()
    })
    .map_err(spawn_err)?;
    Ok(Ran {
        status: out.status,
        stdout: out.stdout,
        stderr: out.stderr,
        command,
    })
}

/// Runs git and fails on a non-zero exit.
pub(crate) fn ok<'a, S: AsRef<OsStr>>(at: impl Into<At<'a>>, args: &[S]) -> Result<Ran> {
    run(at, args)?.check()
}

/// Runs git, keeping at most `limit` bytes of stdout (the rest is read and
/// dropped so git can finish). Returns the kept bytes and the total size.
pub(crate) fn ok_bounded<'a, S: AsRef<OsStr>>(
    at: impl Into<At<'a>>,
    args: &[S],
    limit: usize,
) -> Result<(Vec<u8>, u64)> {
    let (mut cmd, command) = git_command(at, args);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let spawn_err = |source| GitError::Spawn {
        command: command.clone(),
        source,
    };
    let mut child = cmd.spawn().map_err(spawn_err)?;
    // stderr on its own thread so a chatty git cannot deadlock on a full pipe.
    let stderr_thread = child.stderr.take().map(|mut e| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = e.read_to_end(&mut buf);
            buf
        })
    });
    let mut kept = Vec::new();
    let mut total: u64 = 0;
    if let Some(mut out) = child.stdout.take() {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match out.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    total += n as u64;
                    let room = limit.saturating_sub(kept.len());
                    kept.extend_from_slice(&chunk[..n.min(room)]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(source) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(GitError::Spawn { command, source });
                }
            }
        }
    }
    let status = child.wait().map_err(|source| GitError::Spawn {
        command: command.clone(),
        source,
    })?;
    let stderr = stderr_thread
        .and_then(|t| t.join().ok())
        .unwrap_or_default();
    let ran = Ran {
        status,
        stdout: Vec::new(),
        stderr,
        command,
    };
    ran.check()?;
    Ok((kept, total))
}
