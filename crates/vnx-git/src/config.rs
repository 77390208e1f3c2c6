//! Reading one value of git's configuration.

use std::path::Path;

use crate::cmd;
use crate::error::Result;

/// The value of configuration `key` (e.g. `user.signingkey`) as git sees it
/// from `repo` (local, global and system files, in git's order; the last
/// value of a multi-valued key), with the trailing newline removed.
///
/// Runs `git config --get --end-of-options KEY` (git ≥ 2.24) through the
/// crate's clean git environment, so a key can never be taken for an option.
///
/// # Errors
///
/// `Ok(None)` when the key is unset (git exits 1 and says nothing).
/// [`crate::GitError::Spawn`] when git cannot start,
/// [`crate::GitError::Failed`] for any other failure: an invalid key name
/// (git also exits 1 for it, but explains on stderr), `repo` not a
/// directory, an unreadable or invalid config file.
pub fn config_get(repo: &Path, key: &str) -> Result<Option<String>> {
    let ran = cmd::run(repo, &["config", "--get", "--end-of-options", key])?;
    match ran.code() {
        Some(0) => Ok(Some(ran.text())),
        Some(1) if ran.stderr_tail().is_empty() => Ok(None),
        _ => Err(ran.failure()),
    }
}
