//! Git facts between a base and a head commit: what a dispatch changed.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use serde::Serialize;

use crate::cmd;
use crate::error::{GitError, Result};
use crate::repo::resolve_commit;

/// Default bound of [`DiffFacts::diff`], bytes (1 MiB).
pub const DEFAULT_MAX_DIFF_BYTES: usize = 1024 * 1024;

/// Options of [`diff_facts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiffOptions {
    /// Largest unified diff kept in [`DiffFacts::diff`], bytes; longer diffs are
    /// cut at a line boundary and [`DiffFacts::diff_truncated`] is set.
    pub max_diff_bytes: usize,
}

impl Default for DiffOptions {
    fn default() -> Self {
        DiffOptions {
            max_diff_bytes: DEFAULT_MAX_DIFF_BYTES,
        }
    }
}

/// A commit between base and head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommitInfo {
    /// Full commit id.
    pub sha: String,
    /// First line of the message.
    pub subject: String,
}

/// How a file changed (git's `--name-status` letter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// `A`: a new file.
    Added,
    /// `M`: content changed.
    Modified,
    /// `D`: the file was deleted.
    Deleted,
    /// `R`: moved (possibly with edits); `old_path` is set.
    Renamed,
    /// `C`: copied from `old_path`.
    Copied,
    /// `T`: the type changed (file, symlink, submodule).
    TypeChanged,
    /// Anything else git reports (`U`, `X`).
    Other,
}

/// One changed file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileChange {
    /// Path at head (for a deletion, the deleted path), relative to the repository root.
    pub path: String,
    /// Path at base for renames and copies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_path: Option<String>,
    /// How it changed.
    pub kind: ChangeKind,
    /// Lines added; `None` for binary files.
    pub added: Option<u64>,
    /// Lines removed; `None` for binary files.
    pub removed: Option<u64>,
    /// git considers the file binary (no line counts, no text diff).
    pub binary: bool,
}

/// Totals over all changed files, like `git diff --shortstat`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DiffStat {
    /// Number of files changed.
    pub files_changed: u64,
    /// Lines added (binary files count 0).
    pub insertions: u64,
    /// Lines removed (binary files count 0).
    pub deletions: u64,
}

impl fmt::Display for DiffStat {
    /// `3 files changed, 10 insertions(+), 2 deletions(-)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural =
            |n: u64, one: &'static str, many: &'static str| if n == 1 { one } else { many };
        write!(
            f,
            "{} {} changed, {} {}(+), {} {}(-)",
            self.files_changed,
            plural(self.files_changed, "file", "files"),
            self.insertions,
            plural(self.insertions, "insertion", "insertions"),
            self.deletions,
            plural(self.deletions, "deletion", "deletions"),
        )
    }
}

/// Everything a dispatch changed between `base` and `head`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiffFacts {
    /// Base commit, full id.
    pub base: String,
    /// Head commit, full id (equal to `base` when nothing was committed).
    pub head: String,
    /// Tree of `head`, full id.
    pub head_tree: String,
    /// Commits in `base..head`, newest first.
    pub commits: Vec<CommitInfo>,
    /// Changed files, in git's order (renames detected).
    pub files: Vec<FileChange>,
    /// Paths of added files (copies included).
    pub new_files: Vec<String>,
    /// Paths of deleted files.
    pub deleted_files: Vec<String>,
    /// Paths at head of changed, still-existing files that look like tests (see [`is_test_path`]).
    pub tests_touched: Vec<String>,
    /// Totals.
    pub stat: DiffStat,
    /// Unified diff text (`git diff -M`), at most `max_diff_bytes`, cut at a line boundary.
    pub diff: String,
    /// Size of the whole unified diff, bytes.
    pub diff_bytes: u64,
    /// Whether [`DiffFacts::diff`] was cut.
    pub diff_truncated: bool,
}

impl DiffFacts {
    /// Whether nothing changed between base and head.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The receipt's view: base, head, branch and worktree path.
    pub fn to_git_facts(&self, branch: Option<&str>, worktree: &str) -> vnx_types::GitFacts {
        vnx_types::GitFacts {
            base: self.base.clone(),
            head: self.head.clone(),
            head_tree: Some(self.head_tree.clone()).filter(|t| !t.is_empty()),
            branch: branch.map(str::to_owned),
            worktree: worktree.to_owned(),
        }
    }
}

/// Collects the facts of `base..head` in the repository (or worktree) at `dir`.
/// Uncommitted changes are not included: run [`crate::commit_all`] first.
///
/// # Errors
/// [`GitError::InvalidRevision`] / [`GitError::Failed`] when a revision does not
/// resolve to a commit; [`GitError::Parse`] on output this crate cannot read.
pub fn diff_facts(dir: &Path, base: &str, head: &str, opts: DiffOptions) -> Result<DiffFacts> {
    let base = resolve_commit(dir, base)?;
    let (head, head_tree) = crate::range::commit_and_tree(dir, head)?;
    let range = format!("{base}..{head}");

    let log = cmd::ok(
        dir,
        &["log", "-z", "--no-color", "--format=%H%x1f%s", &range],
    )?;
    let commits = String::from_utf8_lossy(&log.stdout)
        .split('\0')
        .filter_map(|rec| {
            let rec = rec.trim_matches('\n');
            let (sha, subject) = rec.split_once('\x1f')?;
            Some(CommitInfo {
                sha: sha.to_owned(),
                subject: subject.to_owned(),
            })
        })
        .collect();

    let diff_args = |extra: &'static str| {
        vec![
            "-c",
            "core.quotepath=false",
            "diff",
            "--no-color",
            "--no-ext-diff",
            "--no-textconv",
            "-M",
            extra,
        ]
    };
    let mut args = diff_args("--numstat");
    args.extend(["-z", &base, &head]);
    let numstat = cmd::ok(dir, &args)?;
    let counts = parse_numstat(&numstat.stdout).map_err(|detail| GitError::Parse {
        command: numstat.command.clone(),
        detail,
    })?;

    let mut args = diff_args("--name-status");
    args.extend(["-z", &base, &head]);
    let names = cmd::ok(dir, &args)?;
    let kinds = parse_name_status(&names.stdout).map_err(|detail| GitError::Parse {
        command: names.command.clone(),
        detail,
    })?;

    let mut files = Vec::with_capacity(kinds.len());
    let mut stat = DiffStat::default();
    for (kind, old_path, path) in kinds {
        let (added, removed) = counts.get(&path).copied().unwrap_or((None, None));
        let binary = added.is_none() && removed.is_none() && counts.contains_key(&path);
        stat.files_changed += 1;
        stat.insertions += added.unwrap_or(0);
        stat.deletions += removed.unwrap_or(0);
        files.push(FileChange {
            path,
            old_path,
            kind,
            added,
            removed,
            binary,
        });
    }
    let new_files = files
        .iter()
        .filter(|f| matches!(f.kind, ChangeKind::Added | ChangeKind::Copied))
        .map(|f| f.path.clone())
        .collect();
    let deleted_files = files
        .iter()
        .filter(|f| f.kind == ChangeKind::Deleted)
        .map(|f| f.path.clone())
        .collect();
    let tests_touched = files
        .iter()
        .filter(|f| f.kind != ChangeKind::Deleted && is_test_path(&f.path))
        .map(|f| f.path.clone())
        .collect();

    let mut args = diff_args("--unified=3");
    // Fixed prefixes whatever `diff.noprefix` / `diff.mnemonicPrefix` say, so
    // `added_lines` can read the file names.
    args.extend([
        "--src-prefix=a/",
        "--dst-prefix=b/",
        base.as_str(),
        head.as_str(),
    ]);
    let (mut kept, diff_bytes) = cmd::ok_bounded(dir, &args, opts.max_diff_bytes)?;
    let diff_truncated = diff_bytes > kept.len() as u64;
    if diff_truncated {
        // Cut at the last full line so no gate sees half a line.
        let end = kept.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        kept.truncate(end);
    }
    let diff = String::from_utf8_lossy(&kept).into_owned();

    Ok(DiffFacts {
        base,
        head,
        head_tree,
        commits,
        files,
        new_files,
        deleted_files,
        tests_touched,
        stat,
        diff,
        diff_bytes,
        diff_truncated,
    })
}

type Counts = HashMap<String, (Option<u64>, Option<u64>)>;

/// `--numstat -z`: `A\tR\tpath\0`, or for renames and copies `A\tR\t\0old\0new\0`;
/// binary files have `-` counts. Keyed by the path at head.
fn parse_numstat(bytes: &[u8]) -> std::result::Result<Counts, String> {
    let text = String::from_utf8_lossy(bytes);
    let mut fields = text.split('\0');
    let mut out = HashMap::new();
    while let Some(field) = fields.next() {
        if field.is_empty() {
            continue;
        }
        let field = field.trim_start_matches('\n');
        let mut parts = field.splitn(3, '\t');
        let (Some(a), Some(r), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!("numstat entry {field:?}"));
        };
        let count = |s: &str| -> std::result::Result<Option<u64>, String> {
            if s == "-" {
                Ok(None)
            } else {
                s.parse().map(Some).map_err(|_| format!("line count {s:?}"))
            }
        };
        let path = if path.is_empty() {
            let _old = fields.next();
            fields.next().ok_or("rename without a new path")?.to_owned()
        } else {
            path.to_owned()
        };
        out.insert(path, (count(a)?, count(r)?));
    }
    Ok(out)
}

/// `--name-status -z`: `X\0path\0`, or `R100\0old\0new\0` for renames and copies.
fn parse_name_status(
    bytes: &[u8],
) -> std::result::Result<Vec<(ChangeKind, Option<String>, String)>, String> {
    let text = String::from_utf8_lossy(bytes);
    let mut fields = text.split('\0');
    let mut out = Vec::new();
    while let Some(status) = fields.next() {
        let status = status.trim_start_matches('\n');
        if status.is_empty() {
            continue;
        }
        let kind = match status.as_bytes()[0] {
            b'A' => ChangeKind::Added,
            b'M' => ChangeKind::Modified,
            b'D' => ChangeKind::Deleted,
            b'R' => ChangeKind::Renamed,
            b'C' => ChangeKind::Copied,
            b'T' => ChangeKind::TypeChanged,
            _ => ChangeKind::Other,
        };
        let first = fields
            .next()
            .ok_or_else(|| format!("status {status:?} without a path"))?;
        if matches!(kind, ChangeKind::Renamed | ChangeKind::Copied) {
            let new = fields
                .next()
                .ok_or_else(|| format!("{status:?} without a new path"))?;
            out.push((kind, Some(first.to_owned()), new.to_owned()));
        } else {
            out.push((kind, None, first.to_owned()));
        }
    }
    Ok(out)
}

/// Whether a path looks like a test by common conventions: a `tests/`, `test/`,
/// `__tests__/`, `spec/` or `testdata/`-style directory, or a file named
/// `test_*.py`, `*_test.py`, `*_test.go`, `*_test.rs`, `*.test.{js,ts,jsx,tsx,mjs,cjs}`,
/// `*.spec.{…}`, `*_spec.rb`, `*Test.java`, `*Test.kt`, `*Tests.cs`, `conftest.py`.
#[allow(clippy::case_sensitive_file_extension_comparisons)] // names are lowercased first
pub fn is_test_path(path: &str) -> bool {
    let path = path.replace('\\', "/");
    let mut components: Vec<&str> = path.split('/').collect();
    let Some(name) = components.pop() else {
        return false;
    };
    if components.iter().any(|c| {
        matches!(
            *c,
            "tests" | "test" | "__tests__" | "spec" | "specs" | "e2e" | "integration_tests"
        )
    }) {
        return true;
    }
    let lower = name.to_ascii_lowercase();
    let (stem, ext) = lower.rsplit_once('.').unwrap_or((&lower, ""));
    match ext {
        "py" => stem.starts_with("test_") || stem.ends_with("_test") || stem == "conftest",
        "go" | "rs" | "c" | "cc" | "cpp" => stem.ends_with("_test") || stem.starts_with("test_"),
        "js" | "ts" | "jsx" | "tsx" | "mjs" | "cjs" => {
            stem.ends_with(".test") || stem.ends_with(".spec")
        }
        "rb" => stem.ends_with("_spec") || stem.ends_with("_test"),
        "java" | "kt" | "scala" => {
            let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
            stem.ends_with("Test") || stem.ends_with("Tests") || stem.ends_with("IT")
        }
        "cs" => {
            let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
            stem.ends_with("Tests") || stem.ends_with("Test")
        }
        _ => false,
    }
}

/// A line added by a unified diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddedLine {
    /// File path at head.
    pub path: String,
    /// 1-based line number in the file at head.
    pub line: u64,
    /// The line's text, without the leading `+`.
    pub text: String,
}

/// The `+` lines of a unified diff (as produced by [`diff_facts`]), each with
/// its file and line number at head. Hunk lengths are followed exactly, so an
/// added line that itself starts with `++` is not mistaken for a header.
pub fn added_lines(diff: &str) -> Vec<AddedLine> {
    let mut out = Vec::new();
    let mut path: Option<String> = None;
    let (mut old_left, mut new_left, mut new_line) = (0u64, 0u64, 0u64);
    for raw in diff.split('\n') {
        if old_left > 0 || new_left > 0 {
            match raw.as_bytes().first() {
                Some(b'+') => {
                    if let Some(p) = &path {
                        out.push(AddedLine {
                            path: p.clone(),
                            line: new_line,
                            text: raw[1..].trim_end_matches('\r').to_owned(),
                        });
                    }
                    new_line += 1;
                    new_left = new_left.saturating_sub(1);
                }
                Some(b'-') => old_left = old_left.saturating_sub(1),
                Some(b'\\') => {}
                _ => {
                    new_line += 1;
                    old_left = old_left.saturating_sub(1);
                    new_left = new_left.saturating_sub(1);
                }
            }
            continue;
        }
        if raw.starts_with("diff --git ") {
            path = None;
        } else if let Some(p) = raw.strip_prefix("+++ ") {
            path = header_path(p);
        } else if let Some(h) = raw.strip_prefix("@@ ")
            && let Some((old_n, new_start, new_n)) = parse_hunk_header(h)
        {
            old_left = old_n;
            new_left = new_n;
            new_line = new_start;
        }
    }
    out
}

/// `b/src/x.rs` → `src/x.rs`; `/dev/null` → None; quoted names unquoted loosely.
fn header_path(p: &str) -> Option<String> {
    let p = p.trim_end_matches('\r');
    let p = p.split('\t').next().unwrap_or(p);
    if p == "/dev/null" {
        return None;
    }
    let p = p.trim_matches('"');
    Some(p.strip_prefix("b/").unwrap_or(p).to_owned())
}

/// `-l,s +l,s @@ …` → (old count, new start, new count).
fn parse_hunk_header(h: &str) -> Option<(u64, u64, u64)> {
    let mut parts = h.split_whitespace();
    let old = parts.next()?.strip_prefix('-')?;
    let new = parts.next()?.strip_prefix('+')?;
    let range = |r: &str| -> Option<(u64, u64)> {
        match r.split_once(',') {
            Some((s, n)) => Some((s.parse().ok()?, n.parse().ok()?)),
            None => Some((r.parse().ok()?, 1)),
        }
    };
    let (_, old_n) = range(old)?;
    let (new_start, new_n) = range(new)?;
    Some((old_n, new_start, new_n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_paths() {
        for yes in [
            "tests/it.rs",
            "crates/a/tests/x/main.rs",
            "pkg/foo_test.go",
            "app/test_views.py",
            "app/views_test.py",
            "src/a.test.ts",
            "src/a.spec.js",
            "spec/models/user_spec.rb",
            "src/parser_test.rs",
            "src/test/java/FooTest.java",
            "web/__tests__/a.js",
        ] {
            assert!(is_test_path(yes), "{yes} not a test");
        }
        for no in [
            "src/lib.rs",
            "src/testing_utils.rs",
            "attest.py",
            "contest.go",
            "README.md",
            "src/latest.ts",
        ] {
            assert!(!is_test_path(no), "{no} taken for a test");
        }
    }

    #[test]
    fn added_lines_follow_hunks() {
        let diff = "diff --git a/a.txt b/a.txt\n--- a/a.txt\n+++ b/a.txt\n@@ -1,2 +1,3 @@\n keep\n-old\n+new one\n+++ looks like a header\n@@ -10 +11,2 @@\n ctx\n+tail\ndiff --git a/gone b/gone\n--- a/gone\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n";
        let lines = added_lines(diff);
        let got: Vec<(&str, u64, &str)> = lines
            .iter()
            .map(|l| (l.path.as_str(), l.line, l.text.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("a.txt", 2, "new one"),
                ("a.txt", 3, "++ looks like a header"),
                ("a.txt", 12, "tail"),
            ]
        );
    }

    #[test]
    fn numstat_and_name_status_parse() {
        let counts =
            parse_numstat(b"1\t2\ta.txt\0-\t-\tbin.png\x000\t0\t\0old.rs\0new.rs\0").unwrap();
        assert_eq!(counts["a.txt"], (Some(1), Some(2)));
        assert_eq!(counts["bin.png"], (None, None));
        assert_eq!(counts["new.rs"], (Some(0), Some(0)));
        let kinds = parse_name_status(b"M\0a.txt\0R100\0old.rs\0new.rs\0D\0gone\0").unwrap();
        assert_eq!(
            kinds[1],
            (ChangeKind::Renamed, Some("old.rs".into()), "new.rs".into())
        );
        assert_eq!(kinds[2].0, ChangeKind::Deleted);
        assert!(parse_numstat(b"x\ty\n").is_err());
    }

    #[test]
    fn stat_display() {
        let s = DiffStat {
            files_changed: 1,
            insertions: 2,
            deletions: 1,
        };
        assert_eq!(
            s.to_string(),
            "1 file changed, 2 insertions(+), 1 deletion(-)"
        );
    }
}
