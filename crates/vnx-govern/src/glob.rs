//! Forbidden-path patterns with `.gitignore` semantics, matched by the
//! `ignore` crate's gitignore matcher (the one ripgrep uses, built on
//! `globset`) rather than a glob parser of our own.

use std::path::Path;

use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder};

/// A forbidden-path pattern that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GlobError {
    /// The pattern is empty or only spaces.
    #[error("forbidden-path pattern {index} is empty; remove it from [gates] forbidden_paths")]
    Empty {
        /// Its position in the list, 0-based.
        index: usize,
    },
    /// The pattern starts with `#`, which `.gitignore` reads as a comment.
    #[error(
        "forbidden-path pattern {pattern:?} starts with '#', which .gitignore syntax reads as a comment; write \"\\\\#…\" for a name that starts with '#'"
    )]
    Comment {
        /// The pattern as written.
        pattern: String,
    },
    /// The pattern does not parse (e.g. an unclosed `[` class).
    #[error("forbidden-path pattern {pattern:?} is not a valid glob: {message}")]
    Syntax {
        /// The pattern as written.
        pattern: String,
        /// What is wrong, from `globset`.
        message: String,
    },
}

/// A list of forbidden-path patterns, with the meaning the same lines have in
/// a `.gitignore` at the repository root (gitignore(5)):
///
/// - `*` matches anything but `/`, `?` one character but `/`, `[…]` a class
///   (`[!…]` or `[^…]` negated; a `]` right after the opening `[` is a member,
///   so `[]x]` is `]` or `x`); `\` escapes the next character (`\*` is a star);
///   `{a,b}` is either alternative (a `globset` extension that git lacks);
/// - a pattern without a `/` (other than a trailing one) matches a file or
///   directory of that name at any depth (`.env`, `*.pem`, `node_modules`);
/// - a pattern with a `/` in it is anchored at the repository root; a leading
///   `/` only anchors (`/vnx.toml` is the root one, not `sub/vnx.toml`);
/// - a trailing `/` matches only directories: everything under them
///   (`build/`), never a file of that name;
/// - `**/x` matches `x` in any directory, `x/**` everything inside `x`,
///   `a/**/b` zero or more directories between; any other `**` is a `*` and
///   never crosses `/`;
/// - `!pattern` exempts what it matches from earlier patterns; the last
///   matching line wins, and a path is judged before the directories it is in,
///   so `ledger/` with `!ledger/README.md` forbids every file in `ledger/` but
///   the README.
///
/// Matching is case-sensitive. A path is forbidden when it, or a directory it
/// is in, matches.
#[derive(Debug, Clone)]
pub struct ForbiddenPaths {
    matcher: Gitignore,
}

impl ForbiddenPaths {
    /// Compiles `patterns` in order.
    ///
    /// # Errors
    /// [`GlobError`] naming the first pattern that is empty, reads as a
    /// comment, or does not parse (an unclosed `[` is an error, not a literal).
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<ForbiddenPaths, GlobError> {
        // Paths are given relative to the repository root; the builder's root
        // only strips prefixes, so an empty one leaves them as they are.
        let mut builder = GitignoreBuilder::new("");
        builder.allow_unclosed_class(false);
        for (index, pattern) in patterns.iter().enumerate() {
            let pattern = pattern.as_ref();
            if pattern.trim().is_empty() {
                return Err(GlobError::Empty { index });
            }
            if pattern.starts_with('#') {
                return Err(GlobError::Comment {
                    pattern: pattern.to_owned(),
                });
            }
            builder
                .add_line(None, pattern)
                .map_err(|e| GlobError::Syntax {
                    pattern: pattern.to_owned(),
                    message: e.to_string(),
                })?;
        }
        let matcher = builder.build().map_err(|e| GlobError::Syntax {
            pattern: patterns
                .iter()
                .map(AsRef::as_ref)
                .collect::<Vec<_>>()
                .join(", "),
            message: e.to_string(),
        })?;
        Ok(ForbiddenPaths { matcher })
    }

    /// The pattern (as written) that forbids the repository-relative file
    /// `path` (`/` separators, no leading `/`), or `None` when it is allowed.
    pub fn matched(&self, path: &str) -> Option<&str> {
        let path = path.trim_start_matches("./");
        if path.is_empty() || path.starts_with('/') {
            return None;
        }
        match self
            .matcher
            .matched_path_or_any_parents(Path::new(path), false)
        {
            Match::Ignore(glob) => Some(glob.original()),
            Match::None | Match::Whitelist(_) => None,
        }
    }

    /// Whether `path` is forbidden (see [`ForbiddenPaths::matched`]).
    pub fn is_match(&self, path: &str) -> bool {
        self.matched(path).is_some()
    }

    /// How many patterns the list has, negations included.
    pub fn len(&self) -> usize {
        self.matcher.len()
    }

    /// Whether the list has no pattern.
    pub fn is_empty(&self) -> bool {
        self.matcher.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(patterns: &[&str], path: &str) -> bool {
        ForbiddenPaths::new(patterns).unwrap().is_match(path)
    }

    // The four defects of the old hand-written matcher.

    #[test]
    fn a_bracket_right_after_the_opening_one_is_a_class_member() {
        assert!(m(&["file[]x].txt"], "filex.txt"));
        assert!(m(&["file[]x].txt"], "file].txt"));
        assert!(!m(&["file[]x].txt"], "filey.txt"));
        assert!(!m(&["file[]x].txt"], "file[]x].txt"));
    }

    #[test]
    fn an_escaped_star_is_a_literal_star() {
        assert!(m(&[r"notes\*.md"], "notes*.md"));
        assert!(!m(&[r"notes\*.md"], "notes1.md"));
        assert!(!m(&[r"notes\*.md"], "notes.md"));
    }

    #[test]
    fn a_double_star_inside_a_name_does_not_cross_slashes() {
        assert!(m(&["src/a**b"], "src/axyzb"));
        assert!(m(&["src/a**b"], "src/ab"));
        assert!(!m(&["src/a**b"], "src/ax/yb"));
    }

    #[test]
    fn braces_are_alternatives() {
        let p = ["*.{pem,key}", "/config/{prod,staging}.env"];
        assert!(m(&p, "certs/server.pem"));
        assert!(m(&p, "id.key"));
        assert!(!m(&p, "id.pub"));
        assert!(m(&p, "config/prod.env"));
        assert!(m(&p, "config/staging.env"));
        assert!(!m(&p, "config/dev.env"));
    }

    // The documented .gitignore semantics.

    #[test]
    fn a_pattern_without_slash_matches_at_any_depth() {
        assert!(m(&[".env"], ".env"));
        assert!(m(&[".env"], "app/deep/.env"));
        assert!(!m(&[".env"], ".env.example"));
        assert!(m(&["*.pem"], "a/b/c.pem"));
        assert!(m(&["node_modules"], "web/node_modules/x/index.js"));
    }

    #[test]
    fn a_slash_anchors_at_the_root() {
        assert!(m(&["/vnx.toml"], "vnx.toml"));
        assert!(!m(&["/vnx.toml"], "sub/vnx.toml"));
        assert!(m(&["docs/*.md"], "docs/a.md"));
        assert!(!m(&["docs/*.md"], "x/docs/a.md"));
        assert!(!m(&["docs/*.md"], "docs/sub/a.md"));
        assert!(m(&["/.github/workflows/*"], ".github/workflows/ci.yml"));
    }

    #[test]
    fn a_trailing_slash_matches_directories_only() {
        assert!(m(&["build/"], "build/out.o"));
        assert!(m(&["build/"], "sub/build/out.o"));
        assert!(!m(&["build/"], "build"), "a file named build");
        assert!(!m(&["ledger/"], "docs/ledger.md"));
    }

    #[test]
    fn double_stars_at_the_edges() {
        assert!(m(&["ledger/**"], "ledger/a.ndjson"));
        assert!(m(&["ledger/**"], "ledger/x/y.ndjson"));
        assert!(!m(&["ledger/**"], "sub/ledger/a.ndjson"));
        assert!(m(&["**/secret.txt"], "secret.txt"));
        assert!(m(&["**/secret.txt"], "a/b/secret.txt"));
        assert!(m(&["src/**/secret_*.rs"], "src/secret_x.rs"));
        assert!(m(&["src/**/secret_*.rs"], "src/a/b/secret_x.rs"));
        assert!(!m(&["src/**/secret_*.rs"], "lib/src/secret_x.rs"));
    }

    #[test]
    fn negation_exempts_and_the_last_match_wins() {
        let p = ["ledger/", "!ledger/README.md"];
        assert!(m(&p, "ledger/a.ndjson"));
        assert!(!m(&p, "ledger/README.md"));
        let p = ["*.env", "!example.env", "/secrets/example.env"];
        assert!(m(&p, "prod.env"));
        assert!(!m(&p, "config/example.env"));
        assert!(m(&p, "secrets/example.env"));
        let set = ForbiddenPaths::new(&p).unwrap();
        assert_eq!(
            set.matched("secrets/example.env"),
            Some("/secrets/example.env")
        );
        assert_eq!(set.len(), 3);
    }

    #[test]
    fn classes_and_question_marks() {
        assert!(m(&["file?.[ch]"], "dir/file1.c"));
        assert!(!m(&["file?.[!ch]"], "file1.c"));
        assert!(m(&["file?.[!ch]"], "file1.o"));
        assert!(!m(&["file?"], "file/x"), "? never matches a slash");
    }

    #[test]
    fn bad_patterns_are_named() {
        let err = ForbiddenPaths::new(&["ok", "a[b"]).unwrap_err();
        assert!(err.to_string().contains("\"a[b\""), "{err}");
        assert_eq!(
            ForbiddenPaths::new(&["x", " "]).unwrap_err(),
            GlobError::Empty { index: 1 }
        );
        let err = ForbiddenPaths::new(&["#notes"]).unwrap_err();
        assert!(err.to_string().contains("comment"), "{err}");
        assert!(m(&[r"\#notes"], "#notes"));
    }
}
