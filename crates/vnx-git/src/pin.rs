//! A dispatch worktree's git, pinned to the worktree vnx created.
//!
//! The agent runs inside the worktree and may rewrite anything there,
//! including the `.git` file that ties it to its git directory. Without that
//! file, `git -C <worktree>` walks up and finds the *enclosing* repository —
//! the user's main tree — so a dispatch commit would stage and commit the
//! user's uncommitted work onto their branch. A [`Pinned`] worktree therefore
//! runs every command as `git --git-dir=<admin dir> --work-tree=<worktree>`
//! (no discovery at all), and [`Pinned::settle`] refuses to go on when the
//! `.git` file, the git directories or the branch are not what vnx created.

use std::path::{Path, PathBuf};

use crate::cmd::{self, At};
use crate::commit::{Identity, WorkCommit, commit_work_at, reset_paths_at};
use crate::error::{GitError, Result};
use crate::worktree::Worktree;

/// A dispatch worktree whose git commands never leave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pinned {
    /// The worktree directory, absolute.
    pub work_tree: PathBuf,
    /// Its administrative git directory (`<common>/worktrees/<name>`), as
    /// read when the worktree was created, before any agent ran in it.
    pub git_dir: PathBuf,
    /// The repository's common git directory (`.git` of the main worktree).
    pub common_dir: PathBuf,
    /// The dispatch branch, e.g. `vnx/d-20261121-205334-740f63`.
    pub branch: String,
}

/// What [`Pinned::settle`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    /// The commit HEAD (and the dispatch branch) is at now.
    pub head: String,
    /// Set when the worker left HEAD detached or on another branch at a
    /// descendant of the dispatch branch: the branch was moved there.
    pub adopted: Option<Adopted>,
}

/// Commits the worker made off the dispatch branch, moved onto it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adopted {
    /// Where HEAD was: `detached HEAD` or the branch's full ref name.
    pub head_was: String,
    /// The dispatch branch's tip before the move.
    pub from: String,
    /// Its tip after the move (HEAD's commit).
    pub to: String,
}

impl Pinned {
    /// The pinned form of a worktree vnx created with [`crate::create`];
    /// `common_dir` is the repository's ([`crate::RepoInfo::common_dir`]).
    ///
    /// # Errors
    /// [`GitError::Tampered`] when the worktree's git directory could not
    /// be read at creation (nothing to pin it to).
    pub fn new(worktree: &Worktree, common_dir: &Path) -> Result<Pinned> {
        let git_dir = worktree
            .admin_dir
            .clone()
            .ok_or_else(|| GitError::Tampered {
                worktree: worktree.path.clone(),
                detail: "its git directory could not be read when it was created".to_owned(),
            })?;
        Ok(Pinned {
            work_tree: worktree.path.clone(),
            git_dir,
            common_dir: common_dir.to_path_buf(),
            branch: worktree.branch.clone(),
        })
    }

    fn at(&self) -> At<'_> {
        At::Pinned {
            git_dir: &self.git_dir,
            work_tree: &self.work_tree,
        }
    }

    fn tampered(&self, detail: String) -> GitError {
        GitError::Tampered {
            worktree: self.work_tree.clone(),
            detail,
        }
    }

    /// Checks that the worktree is still tied to its own git directory and
    /// that its work is on the dispatch branch, before vnx commits there:
    ///
    /// - its `.git` must still be the file git wrote, naming [`Pinned::git_dir`];
    /// - git must see [`Pinned::git_dir`] and [`Pinned::common_dir`] (an
    ///   admin directory rewritten to point at another repository is refused);
    /// - HEAD on the dispatch branch: nothing to do. HEAD detached (or on
    ///   another branch) at the branch tip or a descendant of it: the branch
    ///   is moved there (a fast-forward, checked against its old tip) and
    ///   HEAD re-attached, so nothing the worker committed is left
    ///   unreachable. Anywhere else: refused, both lines of work stay.
    ///
    /// One `git rev-parse` when HEAD is on the branch; a `merge-base`, an
    /// `update-ref` and a `symbolic-ref` more when it was not.
    ///
    /// # Errors
    /// [`GitError::Tampered`] naming what was found; [`GitError::Spawn`]
    /// when git cannot run; [`GitError::Failed`] when moving the branch fails.
    pub fn settle(&self) -> Result<Settled> {
        self.check_git_file()?;
        let branch_ref = format!("refs/heads/{}", self.branch);
        let ran = cmd::run(
            self.at(),
            &[
                "rev-parse",
                "--path-format=absolute",
                "--git-dir",
                "--git-common-dir",
                "HEAD",
                &branch_ref,
                "--symbolic-full-name",
                "HEAD",
            ],
        )?;
        if !ran.status.success() {
            return Err(self.tampered(format!(
                "git cannot read its HEAD or branch {} ({})",
                self.branch,
                ran.stderr_tail()
            )));
        }
        let text = ran.text();
        let lines: Vec<&str> = text.lines().collect();
        let [git_dir, common_dir, head, tip, symbolic] = lines[..] else {
            return Err(GitError::Parse {
                command: ran.command.clone(),
                detail: format!("expected 5 lines, got {text:?}"),
            });
        };
        for (seen, want, what) in [
            (git_dir, &self.git_dir, "git directory"),
            (common_dir, &self.common_dir, "common git directory"),
        ] {
            if !same_path(Path::new(seen), want) {
                return Err(self.tampered(format!("its {what} is {seen}, not {}", want.display())));
            }
        }
        if symbolic == branch_ref {
            return Ok(Settled {
                head: head.to_owned(),
                adopted: None,
            });
        }
        let head_was = if symbolic == "HEAD" {
            "detached HEAD".to_owned()
        } else {
            symbolic.to_owned()
        };
        if head != tip && !self.is_ancestor(tip, head)? {
            return Err(self.tampered(format!(
                "its HEAD ({head_was} at {head}) does not descend from {} at {tip}; moving the branch would drop commits, so both are left as they are",
                self.branch
            )));
        }
        if head != tip {
            let message = format!("vnx: the worker's commits on {head_was}");
            cmd::ok(
                self.at(),
                &["update-ref", "-m", &message, &branch_ref, head, tip],
            )?;
        }
        cmd::ok(
            self.at(),
            &[
                "symbolic-ref",
                "-m",
                "vnx: back on the dispatch branch",
                "HEAD",
                &branch_ref,
            ],
        )?;
        Ok(Settled {
            head: head.to_owned(),
            adopted: Some(Adopted {
                head_was,
                from: tip.to_owned(),
                to: head.to_owned(),
            }),
        })
    }

    /// The worktree's `.git` must be the file git wrote at creation.
    fn check_git_file(&self) -> Result<()> {
        let file = self.work_tree.join(".git");
        let meta = match std::fs::symlink_metadata(&file) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(self.tampered(
                    "its .git file is gone (git run there would have reached the enclosing repository)"
                        .to_owned(),
                ));
            }
            Err(e) => return Err(self.tampered(format!("its .git file cannot be read ({e})"))),
        };
        if !meta.is_file() {
            return Err(self.tampered(
                "its .git is no longer the file git wrote (a directory or a symlink now)"
                    .to_owned(),
            ));
        }
        let text = std::fs::read_to_string(&file)
            .map_err(|e| self.tampered(format!("its .git file cannot be read ({e})")))?;
        let points_at = text.trim().strip_prefix("gitdir:").map(str::trim);
        match points_at {
            Some(dir) if same_path(&self.work_tree.join(dir), &self.git_dir) => Ok(()),
            _ => Err(self.tampered(format!(
                "its .git file was rewritten ({:?} instead of naming {})",
                text.trim(),
                self.git_dir.display()
            ))),
        }
    }

    fn is_ancestor(&self, ancestor: &str, descendant: &str) -> Result<bool> {
        let ran = cmd::run(
            self.at(),
            &["merge-base", "--is-ancestor", ancestor, descendant],
        )?;
        match ran.code() {
            Some(0) => Ok(true),
            Some(1) => Ok(false),
            _ => Err(ran.failure()),
        }
    }

    /// [`crate::commit_work`] in the pinned worktree.
    ///
    /// # Errors
    /// As [`crate::commit_work`].
    pub fn commit_work(&self, message: &str, identity: &Identity) -> Result<WorkCommit> {
        commit_work_at(self.at(), message, identity)
    }

    /// [`crate::reset_paths`] in the pinned worktree.
    ///
    /// # Errors
    /// As [`crate::reset_paths`].
    pub fn reset_paths(&self, paths: &[&Path]) -> Result<()> {
        reset_paths_at(self.at(), paths)
    }
}

/// Whether two paths name the same directory (after resolving symlinks
/// where they exist).
fn same_path(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn git(dir: &Path, args: &[&str]) -> String {
        cmd::ok(dir, args).unwrap().text()
    }

    /// A repository with one commit and a dispatch worktree `vnx/t`.
    fn setup() -> (tempfile::TempDir, PathBuf, Pinned) {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().canonicalize().unwrap().join("repo");
        std::fs::create_dir(&repo).unwrap();
        git(&repo, &["init", "-q", "-b", "main"]);
        std::fs::write(repo.join("a.txt"), "a\n").unwrap();
        crate::commit_all(&repo, "first").unwrap();
        let wt = crate::create(&repo, "t").unwrap();
        let pinned = Pinned::new(&wt, &crate::common_dir(&repo).unwrap()).unwrap();
        (tmp, repo, pinned)
    }

    #[test]
    fn a_missing_git_file_is_refused_and_main_is_untouched() {
        let (_tmp, repo, pinned) = setup();
        std::fs::write(repo.join("a.txt"), "user's edit\n").unwrap();
        std::fs::write(pinned.work_tree.join("work.txt"), "w\n").unwrap();
        std::fs::remove_file(pinned.work_tree.join(".git")).unwrap();
        let err = pinned.settle().unwrap_err();
        assert!(matches!(err, GitError::Tampered { .. }), "{err}");
        assert!(err.to_string().contains(".git file is gone"), "{err}");
        // Even without settle, pinned commands stay in the worktree.
        let identity = crate::identity(&repo).unwrap();
        let c = pinned.commit_work("work", &identity).unwrap();
        assert!(c.committed);
        assert_eq!(git(&repo, &["rev-list", "--count", "main"]), "1");
        assert_eq!(git(&repo, &["status", "--porcelain"]), " M a.txt");
        assert_eq!(
            git(&repo, &["show", "--name-only", "--format=", "vnx/t"]),
            "work.txt"
        );
    }

    #[test]
    fn a_rewritten_git_file_is_refused() {
        let (_tmp, repo, pinned) = setup();
        std::fs::write(
            pinned.work_tree.join(".git"),
            format!("gitdir: {}\n", repo.join(".git").display()),
        )
        .unwrap();
        let err = pinned.settle().unwrap_err().to_string();
        assert!(err.contains("rewritten"), "{err}");
    }

    #[test]
    fn detached_descendants_are_adopted_and_others_refused() {
        let (_tmp, _repo, pinned) = setup();
        let wt = pinned.work_tree.clone();
        assert_eq!(pinned.settle().unwrap().adopted, None);
        git(&wt, &["checkout", "-q", "--detach"]);
        std::fs::write(wt.join("b.txt"), "b\n").unwrap();
        git(&wt, &["add", "b.txt"]);
        git(
            &wt,
            &[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@x",
                "commit",
                "-qm",
                "b",
            ],
        );
        let head = git(&wt, &["rev-parse", "HEAD"]);
        let settled = pinned.settle().unwrap();
        assert_eq!(settled.head, head);
        assert_eq!(settled.adopted.unwrap().head_was, "detached HEAD");
        assert_eq!(git(&wt, &["rev-parse", "vnx/t"]), head);
        assert_eq!(git(&wt, &["symbolic-ref", "HEAD"]), "refs/heads/vnx/t");

        // Detached at the parent, then a sibling commit: refused, nothing moves.
        git(&wt, &["checkout", "-q", "--detach", "HEAD~1"]);
        std::fs::write(wt.join("c.txt"), "c\n").unwrap();
        git(&wt, &["add", "c.txt"]);
        git(
            &wt,
            &[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@x",
                "commit",
                "-qm",
                "c",
            ],
        );
        let err = pinned.settle().unwrap_err().to_string();
        assert!(err.contains("does not descend"), "{err}");
        assert_eq!(git(&wt, &["rev-parse", "vnx/t"]), head);
    }
}
