//! `vnx init`: the files a repository needs before its first dispatch.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::config::{CONFIG_FILE, default_toml};

/// Directory of repository skills, relative to the repository root.
pub const SKILLS_DIR: &str = ".vnx/skills";
/// Directory of intelligence notes, relative to the repository root.
pub const INTELLIGENCE_DIR: &str = ".vnx/intelligence";
/// Directory of dispatch worktrees, relative to the repository root (kept out
/// of git through `.git/info/exclude`).
pub const WORKTREES_DIR: &str = ".vnx/worktrees";

/// What [`init`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitReport {
    /// The `vnx.toml` written.
    pub config: PathBuf,
    /// The ledger directory (created or already there).
    pub ledger_dir: PathBuf,
    /// The ledger's id from its `ledger.json`.
    pub ledger_id: String,
    /// Directories created by this call (those that existed are not listed).
    pub created_dirs: Vec<PathBuf>,
    /// The exclude file `.vnx/worktrees/` was added to; `None` when the line
    /// was already there or `repo_root` is not a git repository.
    pub exclude_updated: Option<PathBuf>,
    /// Things the user should know, e.g. that `repo_root` is not a git repository.
    pub notes: Vec<String>,
}

/// Why [`init`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// `vnx.toml` is already there; nothing was changed.
    #[error("{} already exists; vnx init does not overwrite it (delete or rename it to start over)", path.display())]
    ConfigExists {
        /// The existing file.
        path: PathBuf,
    },
    /// A file or directory could not be written.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was attempted.
        action: &'static str,
        /// On which path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The ledger could not be created or opened.
    #[error(transparent)]
    Ledger(#[from] vnx_ledger::LedgerError),
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> InitError {
    let path = path.to_path_buf();
    move |source| InitError::Io {
        action,
        path,
        source,
    }
}

/// Sets up `repo_root` for vnx: writes the commented default `vnx.toml`
/// (refusing to overwrite one), creates the ledger (`ledger/` with its
/// `ledger.json`), `.vnx/skills/` and `.vnx/intelligence/`, and adds
/// `.vnx/worktrees/` to the git exclude file.
///
/// # Errors
/// [`InitError::ConfigExists`] before anything is touched when `vnx.toml` is
/// there; I/O and ledger errors otherwise.
pub fn init(repo_root: &Path) -> Result<InitReport, InitError> {
    let config = repo_root.join(CONFIG_FILE);
    let mut file = match OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&config)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(InitError::ConfigExists { path: config });
        }
        Err(e) => return Err(io("create", &config)(e)),
    };
    file.write_all(default_toml().as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io("write", &config))?;

    let mut created_dirs = Vec::new();
    let ledger_dir = repo_root.join("ledger");
    let ledger_existed = ledger_dir.exists();
    let ledger = vnx_ledger::Ledger::open_or_create(&ledger_dir)?;
    if !ledger_existed {
        created_dirs.push(ledger_dir.clone());
    }
    for dir in [SKILLS_DIR, INTELLIGENCE_DIR] {
        let path = repo_root.join(dir);
        if !path.is_dir() {
            fs::create_dir_all(&path).map_err(io("create directory", &path))?;
            created_dirs.push(path);
        }
    }

    let mut notes = Vec::new();
    let exclude_updated = if let Some(exclude) = git_exclude_file(repo_root) {
        add_exclude_line(&exclude, &format!("/{WORKTREES_DIR}/"))?
    } else {
        notes.push(format!(
            "{} is not the root of a git repository: dispatch worktrees need git (`git init`), `vnx run --in-place` works without",
            repo_root.display()
        ));
        None
    };
    Ok(InitReport {
        config,
        ledger_dir,
        ledger_id: ledger.ledger_id().to_owned(),
        created_dirs,
        exclude_updated,
        notes,
    })
}

/// The `info/exclude` file of the repository at `repo_root`: `.git/info/exclude`
/// in a clone; in a linked worktree (`.git` is a file `gitdir: …`), the one in
/// the common git directory, which git reads for every worktree.
fn git_exclude_file(repo_root: &Path) -> Option<PathBuf> {
    let dot_git = repo_root.join(".git");
    if dot_git.is_dir() {
        return Some(dot_git.join("info").join("exclude"));
    }
    let text = fs::read_to_string(&dot_git).ok()?;
    let gitdir = text.lines().find_map(|l| l.strip_prefix("gitdir:"))?.trim();
    let gitdir = repo_root.join(gitdir);
    let common = match fs::read_to_string(gitdir.join("commondir")) {
        Ok(rel) => gitdir.join(rel.trim()),
        Err(_) => gitdir,
    };
    Some(common.join("info").join("exclude"))
}

/// Appends `line` to `exclude` unless it is already there. Returns the file
/// when it was changed.
fn add_exclude_line(exclude: &Path, line: &str) -> Result<Option<PathBuf>, InitError> {
    let existing = match fs::read_to_string(exclude) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io("read", exclude)(e)),
    };
    let bare = line.trim_start_matches('/');
    if existing
        .lines()
        .map(str::trim)
        .any(|l| l.trim_start_matches('/') == bare)
    {
        return Ok(None);
    }
    if let Some(parent) = exclude.parent() {
        fs::create_dir_all(parent).map_err(io("create directory", parent))?;
    }
    let mut text = String::new();
    if !existing.is_empty() && !existing.ends_with('\n') {
        text.push('\n');
    }
    text.push_str("# vnx dispatch worktrees\n");
    text.push_str(line);
    text.push('\n');
    let mut file = OpenOptions::new()
        .append(true)
        .create(true)
        .open(exclude)
        .map_err(io("open", exclude))?;
    file.write_all(text.as_bytes())
        .map_err(io("write", exclude))?;
    Ok(Some(exclude.to_path_buf()))
}
