//! Integration tests of vnx-prepare on real files in temporary directories:
//! configuration discovery and errors, init, skill lookup and errors, and
//! PREPARE with notes and a real ledger.

// Test helpers outside #[test] functions unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod config;
mod prepare;
mod skills;

use std::path::{Path, PathBuf};

/// Writes `text` to `root/rel`, creating parent directories.
pub fn write(root: &Path, rel: &str, text: &str) -> PathBuf {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

/// A temporary directory that looks like a git repository root (`.git/info`).
pub fn fake_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".git").join("info")).unwrap();
    dir
}
