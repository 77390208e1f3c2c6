//! Facts about a range of commits for the merge gate (`vnx gate --base`):
//! the commits of `base..head` with their parents, trees, authors, subjects
//! and changed paths; files at a revision; clean-merge and signature checks.
//!
//! Each function is one git process, whatever the size of the range: the
//! gate's cost must not grow with a process per commit.

use std::path::Path;

use crate::cmd;
use crate::error::{GitError, Result};
use crate::repo::check_rev;

/// One commit of a range, as `git log` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeCommit {
    /// Full commit id (lowercase hex).
    pub id: String,
    /// Parent ids, first parent first.
    pub parents: Vec<String>,
    /// Its tree id.
    pub tree: String,
    /// `Name <email>` of the author.
    pub author: String,
    /// First line of the message.
    pub subject: String,
    /// Paths changed against the first parent (non-merge commits only; empty
    /// for merges, whose changes the gate judges with [`clean_merge_tree`]).
    pub paths: Vec<String>,
}

impl RangeCommit {
    /// Whether it has more than one parent.
    pub fn is_merge(&self) -> bool {
        self.parents.len() > 1
    }

    /// The first 12 characters of the id, for messages.
    pub fn short(&self) -> &str {
        self.id.get(..12).unwrap_or(&self.id)
    }
}

/// The commits reachable from `head` and not from `base` (`git log
/// base..head`), newest first, with their changed paths.
///
/// # Errors
/// [`GitError::InvalidRevision`] for revisions that look like options;
/// [`GitError::Failed`] when git cannot list the range (an unknown revision
/// — in a shallow clone, the base may be missing: fetch it);
/// [`GitError::Parse`] when git's output does not have the expected layout
/// (never guessed around: the gate must not pass on what it could not read).
pub fn range_commits(repo: &Path, base: &str, head: &str) -> Result<Vec<RangeCommit>> {
    check_rev(base)?;
    check_rev(head)?;
    let range = format!("{base}..{head}");
    let ran = cmd::ok(
        repo,
        &[
            "log",
            "-z",
            "--name-only",
            "--no-renames",
            "--format=%x1e%H%x1f%P%x1f%T%x1f%an <%ae>%x1f%s",
            "--end-of-options",
            &range,
        ],
    )?;
    parse_log(&ran.stdout)
}

fn parse_log(out: &[u8]) -> Result<Vec<RangeCommit>> {
    let bad = |why: &str| GitError::Parse {
        command: "git log base..head".to_owned(),
        detail: why.to_owned(),
    };
    let mut commits = Vec::new();
    // Records start with 0x1e; a record is its header, NUL, then NUL-ended paths.
    for record in out.split(|&b| b == 0x1e).skip(1) {
        let mut pieces = record.split(|&b| b == 0);
        let header = pieces
            .next()
            .ok_or_else(|| bad("a record without a header"))?;
        let header = String::from_utf8_lossy(header);
        let mut fields = header.splitn(5, '\u{1f}');
        let mut field = |name: &str| {
            fields
                .next()
                .map(str::to_owned)
                .ok_or_else(|| bad(&format!("a record without its {name}")))
        };
        let id = field("id")?;
        let parents = field("parents")?;
        let tree = field("tree")?;
        let author = field("author")?;
        let subject = field("subject")?;
        if !is_object_id(&id) || !is_object_id(&tree) {
            return Err(bad(&format!("{id:?} / {tree:?} are not object ids")));
        }
        let parents: Vec<String> = parents.split_whitespace().map(str::to_owned).collect();
        if !parents.iter().all(|p| is_object_id(p)) {
            return Err(bad(&format!("parents of {id} are not object ids")));
        }
        let paths = pieces
            .map(|p| p.strip_prefix(b"\n").unwrap_or(p))
            .filter(|p| !p.is_empty())
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect();
        commits.push(RangeCommit {
            id,
            parents,
            tree,
            author,
            subject,
            paths,
        });
    }
    Ok(commits)
}

fn is_object_id(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The full commit id `rev` resolves to, and that commit's tree id: one
/// `git rev-parse`.
///
/// # Errors
/// [`GitError::InvalidRevision`]; [`GitError::Failed`] when `rev` is not a commit.
pub fn commit_and_tree(repo: &Path, rev: &str) -> Result<(String, String)> {
    check_rev(rev)?;
    let commit = format!("{rev}^{{commit}}");
    let tree = format!("{rev}^{{tree}}");
    let ran = cmd::ok(repo, &["rev-parse", &commit, &tree])?;
    let text = ran.text();
    let mut lines = text.lines();
    match (lines.next(), lines.next()) {
        (Some(id), Some(tree)) if is_object_id(id) && is_object_id(tree) => {
            Ok((id.to_owned(), tree.to_owned()))
        }
        _ => Err(GitError::Parse {
            command: ran.command.clone(),
            detail: format!("expected a commit and a tree id, got {text:?}"),
        }),
    }
}

/// The bytes of `path` (repository-relative, `/`-separated) at `rev`, or
/// `None` when the revision has no such file.
///
/// # Errors
/// [`GitError::InvalidRevision`]; [`GitError::Failed`] when `rev` is not a
/// commit that exists here.
pub fn file_at(repo: &Path, rev: &str, path: &str) -> Result<Option<Vec<u8>>> {
    check_rev(rev)?;
    let spec = format!("{rev}:{path}");
    let ran = cmd::run(repo, &["cat-file", "blob", &spec])?;
    if ran.status.success() {
        return Ok(Some(ran.stdout));
    }
    // Tell "no such file" from "no such commit": the latter must be an error.
    crate::repo::resolve_commit(repo, rev)?;
    Ok(None)
}

/// The files directly inside directory `dir` (repository-relative, `/`-
/// separated, no trailing slash) at `rev`: file name → bytes. Two git
/// processes however many files (`ls-tree`, then one `cat-file --batch`).
/// Subdirectories, symlinks and submodules are left out.
///
/// # Errors
/// [`GitError::InvalidRevision`]; [`GitError::Failed`] when `rev` is not a
/// commit here; [`GitError::Parse`] on output that does not have git's layout.
pub fn dir_files_at(repo: &Path, rev: &str, dir: &str) -> Result<Vec<(String, Vec<u8>)>> {
    check_rev(rev)?;
    let commit = crate::repo::resolve_commit(repo, rev)?;
    let spec = if dir.is_empty() {
        commit.clone()
    } else {
        format!("{commit}:{dir}")
    };
    let listing = cmd::run(repo, &["ls-tree", "-z", "--end-of-options", &spec])?;
    if !listing.status.success() {
        // No such directory at that commit: no files.
        return Ok(Vec::new());
    }
    let mut names = Vec::new();
    let mut ids = String::new();
    for entry in listing.stdout.split(|&b| b == 0).filter(|e| !e.is_empty()) {
        // `<mode> SP <type> SP <object> TAB <name>`
        let text = String::from_utf8_lossy(entry);
        let (meta, name) = text.split_once('\t').ok_or_else(|| GitError::Parse {
            command: listing.command.clone(),
            detail: format!("entry without a tab: {text:?}"),
        })?;
        let mut meta = meta.split(' ');
        let (Some(mode), Some(kind), Some(id)) = (meta.next(), meta.next(), meta.next()) else {
            return Err(GitError::Parse {
                command: listing.command.clone(),
                detail: format!("entry without mode, type and id: {text:?}"),
            });
        };
        if kind != "blob" || mode == "120000" {
            continue;
        }
        names.push(name.to_owned());
        ids.push_str(id);
        ids.push('\n');
    }
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let ran = cmd::run_stdin(repo, &["cat-file", "--batch"], ids.as_bytes())?.check()?;
    let mut out = Vec::with_capacity(names.len());
    let mut rest: &[u8] = &ran.stdout;
    for name in names {
        let bad = |detail: String| GitError::Parse {
            command: ran.command.clone(),
            detail,
        };
        let nl = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| bad(format!("no header for {name}")))?;
        let header = String::from_utf8_lossy(&rest[..nl]).into_owned();
        let size: usize = header
            .rsplit(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| bad(format!("header {header:?} for {name}")))?;
        let body = rest
            .get(nl + 1..nl + 1 + size)
            .ok_or_else(|| bad(format!("{name} is cut short")))?;
        out.push((name, body.to_vec()));
        rest = rest.get(nl + 2 + size..).unwrap_or_default();
    }
    Ok(out)
}

/// The tree git's own merge (`git merge-tree --write-tree`, git ≥ 2.38)
/// makes of `ours` and `theirs`, or `None` when they conflict. Writes the
/// merged objects to the object store, touches no work tree or ref.
///
/// # Errors
/// [`GitError::Failed`] when git cannot merge them at all (unknown commits,
/// a git older than 2.38).
pub fn clean_merge_tree(repo: &Path, ours: &str, theirs: &str) -> Result<Option<String>> {
    check_rev(ours)?;
    check_rev(theirs)?;
    let ran = cmd::run(
        repo,
        &[
            "merge-tree",
            "--write-tree",
            "--no-messages",
            "--end-of-options",
            ours,
            theirs,
        ],
    )?;
    match ran.code() {
        Some(0) => Ok(Some(
            ran.text().lines().next().unwrap_or_default().to_owned(),
        )),
        Some(1) => Ok(None),
        _ => Err(ran.failure()),
    }
}

/// The outcome of `git verify-commit` against an allowed-signers file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitSignature {
    /// Signed by a key the file allows for namespace `git`: the principal.
    Good {
        /// The principal git names (`Good "git" signature for PRINCIPAL with …`).
        principal: String,
    },
    /// Signed with SSH, but not by a key the file allows (git's explanation).
    Untrusted {
        /// What git said, trimmed.
        detail: String,
    },
    /// Signed with OpenPGP or X.509: vnx trusts only SSH signatures checked
    /// against the project's allowed-signers file.
    NotSsh,
    /// Not signed.
    Unsigned,
}

/// Checks `commit`'s signature as `git verify-commit` does, with
/// `gpg.ssh.allowedSignersFile` set to `allowed_signers` (a file the caller
/// wrote from the base revision) and nothing else of the user's signing
/// configuration trusted.
///
/// # Errors
/// [`GitError::Spawn`] / [`GitError::Failed`] when git cannot read the commit.
pub fn verify_commit(repo: &Path, commit: &str, allowed_signers: &Path) -> Result<CommitSignature> {
    check_rev(commit)?;
    let object = cmd::ok(repo, &["cat-file", "commit", commit])?.stdout;
    let header_end = find(&object, b"\n\n").unwrap_or(object.len());
    let header = &object[..header_end];
    let Some(at) = find(header, b"\ngpgsig ") else {
        return Ok(CommitSignature::Unsigned);
    };
    if !header[at + 8..].starts_with(b"-----BEGIN SSH SIGNATURE-----") {
        return Ok(CommitSignature::NotSsh);
    }
    let config = format!("gpg.ssh.allowedSignersFile={}", allowed_signers.display());
    let ran = cmd::run(
        repo,
        &[
            "-c",
            "gpg.format=ssh",
            "-c",
            &config,
            "-c",
            "gpg.ssh.revocationFile=",
            "verify-commit",
            "-v",
            "--end-of-options",
            commit,
        ],
    )?;
    let said = String::from_utf8_lossy(&ran.stderr).trim().to_owned();
    if ran.status.success() {
        // `Good "git" signature for alice@example.com with ED25519 key SHA256:…`
        let principal = said
            .lines()
            .find_map(|l| {
                l.strip_prefix("Good \"git\" signature for ")
                    .and_then(|rest| rest.split(" with ").next())
            })
            .unwrap_or_default()
            .to_owned();
        if !principal.is_empty() {
            return Ok(CommitSignature::Good { principal });
        }
    }
    let detail = said
        .lines()
        .rfind(|l| !l.starts_with("tree ") && !l.starts_with("parent ") && !l.trim().is_empty())
        .unwrap_or("git verify-commit failed")
        .to_owned();
    Ok(CommitSignature::Untrusted { detail })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_record_parses_into_its_fields_and_paths() {
        let a = "a".repeat(40);
        let b = "b".repeat(40);
        let t = "c".repeat(40);
        let out = format!(
            "\u{1e}{a}\u{1f}{b}\u{1f}{t}\u{1f}A <a@x>\u{1f}two \u{1f} two\0\nb\0d/x y\0\u{1e}{b}\u{1f}\u{1f}{t}\u{1f}B <b@x>\u{1f}root\0"
        );
        let commits = parse_log(out.as_bytes()).unwrap();
        assert_eq!(commits.len(), 2);
        assert_eq!(commits[0].parents, vec![b.clone()]);
        assert_eq!(commits[0].subject, "two \u{1f} two");
        assert_eq!(commits[0].paths, vec!["b", "d/x y"]);
        assert!(commits[1].parents.is_empty() && commits[1].paths.is_empty());
        assert!(parse_log(b"\x1enot-an-id\x1f\x1f\x1f\x1f\0").is_err());
    }
}
