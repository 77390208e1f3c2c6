//! Finding the repository, the ledger and this writer's default segment.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The git work tree containing `cwd`, if any (`git rev-parse --show-toplevel`).
pub fn repo_root(cwd: &Path) -> Option<PathBuf> {
    git(cwd, &["rev-parse", "--show-toplevel"]).map(PathBuf::from)
}

/// The current branch (`git symbolic-ref --short HEAD`), if on one.
pub fn current_branch(cwd: &Path) -> Option<String> {
    git(cwd, &["symbolic-ref", "--quiet", "--short", "HEAD"])
}

fn git(cwd: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(cwd)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// Where a `--ledger` argument (or its default) points.
#[derive(Debug, Clone)]
pub struct LedgerLocation {
    /// The ledger directory.
    pub dir: PathBuf,
    /// A specific segment file, when `--ledger` named a file.
    pub segment: Option<String>,
}

/// The ledger a command works on: the one function every command uses, so
/// that `vnx run`, `verify-ledger`, `gate`, `ledger …`, `receipts`, `stats`,
/// `approve` and `serve` agree.
///
/// `--ledger PATH` wins and may be anywhere, since it is explicit: a
/// directory is a ledger; an existing file, or a path ending in `.ndjson`,
/// is one segment of the ledger in its parent directory. Without it, the
/// ledger is `[ledger] dir` of the `vnx.toml` found from `cwd` (default
/// `ledger/`), resolved against the repository root
/// ([`vnx_prepare::LoadedConfig::checked_ledger_dir`]).
///
/// # Errors
/// An unreadable or invalid `vnx.toml`, or a `[ledger] dir` outside the
/// repository without `allow_outside_repo = true`; the message names the
/// file and the setting.
pub fn locate_ledger(arg: Option<&Path>, cwd: &Path) -> anyhow::Result<LedgerLocation> {
    let Some(path) = arg else {
        let loaded = vnx_prepare::Config::load(cwd)?;
        return Ok(LedgerLocation {
            dir: loaded.checked_ledger_dir()?,
            segment: None,
        });
    };
    let is_segment =
        path.is_file() || (!path.is_dir() && path.extension().is_some_and(|e| e == "ndjson"));
    if !is_segment {
        return Ok(LedgerLocation {
            dir: path.to_path_buf(),
            segment: None,
        });
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let segment = path.file_name().map(|n| n.to_string_lossy().into_owned());
    Ok(LedgerLocation { dir, segment })
}

/// This writer's identity for segment names: `$VNX_WRITER`, else
/// `user@hostname`.
pub fn writer_identity() -> String {
    if let Ok(w) = std::env::var("VNX_WRITER")
        && !w.is_empty()
    {
        return w;
    }
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "user".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "host".into());
    format!("{user}@{host}")
}

/// The default segment for this writer on the current branch of `cwd`.
pub fn default_segment(cwd: &Path) -> String {
    let branch = current_branch(cwd).unwrap_or_else(|| "detached".into());
    vnx_ledger::default_segment_name(&writer_identity(), &branch)
}
