//! A thin, tested wrapper over the `git` CLI for vnx.
//!
//! Every call runs `git -C <dir> …` (a [`Pinned`] dispatch worktree: `git
//! --git-dir=<its git dir> --work-tree=<it> …`) from an argv array (never a shell) with
//! `GIT_TERMINAL_PROMPT=0`, the C locale and no inherited `GIT_DIR`-style
//! variables; a failure keeps the command line, its exit status and the tail
//! of its stderr ([`GitError::Failed`]).
//!
//! - [`repo_root`], [`head_commit`], [`current_branch`], [`dirty_files`]: facts
//!   about the user's repository.
//! - [`create`], [`remove`], [`list`], [`prune`]: one worktree per dispatch on
//!   branch `vnx/<dispatch-id>` under `<repo>/.vnx/worktrees/`.
//! - [`commit_all`], [`commit_work`]: commit what the worker left uncommitted,
//!   with an [`identity`] that falls back to vnx's own on machines that have
//!   none; [`commit_files`]: a commit of given files on top of a branch,
//!   through `git fast-import`, touching no work tree (the receipt commit).
//! - [`Pinned`]: a dispatch worktree whose git commands name its own git
//!   directory and work tree (no discovery, so a deleted `.git` file cannot
//!   send them to the user's repository); [`Pinned::settle`] checks it before
//!   the dispatch commit and moves the dispatch branch onto commits the
//!   worker made on a detached HEAD.
//! - [`refs`], [`listed_files`], [`is_ancestor`]: what the side-effects gate
//!   compares before and after a worker.
//! - [`discard`]: remove a dispatch worktree without starting git.
//! - [`diff_facts`]: commits, changed files with line counts, new/deleted files,
//!   tests touched, diff stat and the bounded unified diff between base and head;
//!   [`added_lines`] reads the `+` lines of that diff for the gates.
//!
//! Architecture invariant: this crate only ever runs `git`, and only reads or
//! writes files inside the repository's git directory (the exclude file and the
//! worktree's base record) — except that [`discard`] deletes a dispatch
//! worktree and its administrative directory, as `git worktree remove` would.

mod cmd;
mod commit;
mod config;
mod error;
mod facts;
mod pin;
mod range;
mod repo;
mod state;
mod worktree;

pub use commit::{
    CommitSettings, FALLBACK_EMAIL, FALLBACK_NAME, Identity, TreeFile, WorkCommit, commit_all,
    commit_files, commit_paths, commit_settings, commit_work, identity, reset_paths,
};
pub use config::config_get;
pub use error::{GitError, Result};
pub use facts::{
    AddedLine, ChangeKind, CommitInfo, DEFAULT_MAX_DIFF_BYTES, DiffFacts, DiffOptions, DiffStat,
    FileChange, added_lines, diff_facts, is_test_path,
};
pub use pin::{Adopted, Pinned, Settled};
pub use range::{
    CommitSignature, RangeCommit, clean_merge_tree, commit_and_tree, dir_files_at, file_at,
    range_commits, verify_commit,
};
pub use repo::{
    DirtyFile, RepoInfo, common_dir, current_branch, dirty_files, head_commit, repo_info,
    repo_root, resolve_commit,
};
pub use state::{is_ancestor, listed_files, refs};
pub use worktree::{
    BRANCH_PREFIX, PruneReport, RemoveMode, WORKTREES_DIR, Worktree, WorktreeInfo, create,
    create_in, discard, ensure_excluded, list, prune, recorded_base, remove, validate_dispatch_id,
    worktree_path,
};
