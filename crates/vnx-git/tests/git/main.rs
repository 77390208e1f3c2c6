//! Integration tests against real git repositories in temp dirs (no mocks).

// Helpers outside #[test] functions may unwrap too: a panic is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use vnx_git::{ChangeKind, DiffOptions, GitError, RemoveMode};

/// A scratch repository with one commit on `main`.
struct Repo {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

/// Runs git with a fixed identity and no user/system config.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "Test Author")
        .env("GIT_AUTHOR_EMAIL", "author@example.com")
        .env("GIT_COMMITTER_NAME", "Test Author")
        .env("GIT_COMMITTER_EMAIL", "author@example.com")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

impl Repo {
    fn new() -> Repo {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap().join("repo");
        fs::create_dir(&root).unwrap();
        git(&root, &["init", "-q", "-b", "main"]);
        git(&root, &["config", "commit.gpgsign", "false"]);
        write(&root, "README.md", "hello\n");
        write(&root, "src/lib.rs", "pub fn one() -> u32 {\n    1\n}\n");
        write(&root, "docs/old.md", "to be deleted\n");
        write(
            &root,
            "docs/moved.txt",
            "a file that will be renamed\nwith some lines\nso rename detection\nworks well\n",
        );
        git(&root, &["add", "-A"]);
        git(&root, &["commit", "-q", "-m", "initial"]);
        Repo { _dir: dir, root }
    }
}

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

#[test]
fn repository_facts() {
    let repo = Repo::new();
    let sub = repo.root.join("src");
    assert_eq!(vnx_git::repo_root(&sub).unwrap(), repo.root);
    let head = vnx_git::head_commit(&repo.root).unwrap();
    assert_eq!(head.len(), 40);
    assert!(head.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(head, git(&repo.root, &["rev-parse", "HEAD"]));
    assert_eq!(
        vnx_git::current_branch(&repo.root).unwrap().as_deref(),
        Some("main")
    );

    assert!(vnx_git::dirty_files(&repo.root).unwrap().is_empty());
    write(&repo.root, "README.md", "changed\n");
    write(&repo.root, "new dir/untracked file.txt", "x\n");
    let dirty = vnx_git::dirty_files(&repo.root).unwrap();
    let pairs: Vec<(&str, &str)> = dirty
        .iter()
        .map(|d| (d.code.as_str(), d.path.as_str()))
        .collect();
    assert_eq!(
        pairs,
        vec![(" M", "README.md"), ("??", "new dir/untracked file.txt")]
    );

    git(&repo.root, &["checkout", "-q", "--detach"]);
    assert_eq!(vnx_git::current_branch(&repo.root).unwrap(), None);
}

#[test]
fn not_a_repository_and_empty_repository() {
    let dir = tempfile::tempdir().unwrap();
    let err = vnx_git::repo_root(dir.path()).unwrap_err();
    assert!(matches!(err, GitError::NotARepository { .. }), "{err:?}");
    assert!(err.to_string().contains("not inside a git repository"));

    git(dir.path(), &["init", "-q", "-b", "main"]);
    let err = vnx_git::head_commit(dir.path()).unwrap_err();
    assert!(matches!(err, GitError::NoCommits { .. }), "{err:?}");
    let err = vnx_git::create(dir.path(), "d-1").unwrap_err();
    assert!(matches!(err, GitError::NoCommits { .. }), "{err:?}");
}

#[test]
fn failed_commands_keep_command_status_and_stderr() {
    let repo = Repo::new();
    match vnx_git::resolve_commit(&repo.root, "no-such-rev").unwrap_err() {
        GitError::Failed {
            command,
            status,
            stderr,
        } => {
            assert!(
                command.contains("rev-parse") && command.contains("no-such-rev"),
                "{command}"
            );
            assert!(status.contains("128"), "{status}");
            assert!(!stderr.is_empty());
        }
        other => panic!("unexpected {other:?}"),
    }
    let err = vnx_git::resolve_commit(&repo.root, "--all").unwrap_err();
    assert!(matches!(err, GitError::InvalidRevision { .. }), "{err:?}");
}

#[test]
fn worktree_lifecycle_commit_and_facts() {
    let repo = Repo::new();
    let head = vnx_git::head_commit(&repo.root).unwrap();
    let wt = vnx_git::create(&repo.root, "d-20261121-ab12cd").unwrap();
    assert_eq!(wt.path, repo.root.join(".vnx/worktrees/d-20261121-ab12cd"));
    assert_eq!(wt.branch, "vnx/d-20261121-ab12cd");
    assert_eq!(wt.base, head);
    assert!(wt.path.join("src/lib.rs").is_file());
    assert_eq!(
        vnx_git::current_branch(&wt.path).unwrap().as_deref(),
        Some("vnx/d-20261121-ab12cd")
    );
    assert_eq!(
        vnx_git::recorded_base(&wt.path).as_deref(),
        Some(head.as_str())
    );

    // The worktree directory is ignored through info/exclude, not .gitignore.
    let exclude = fs::read_to_string(repo.root.join(".git/info/exclude")).unwrap();
    assert_eq!(exclude.matches("/.vnx/worktrees/").count(), 1);
    assert!(!repo.root.join(".gitignore").exists());
    assert!(vnx_git::dirty_files(&repo.root).unwrap().is_empty());

    // Same id again: refused.
    let err = vnx_git::create(&repo.root, "d-20261121-ab12cd").unwrap_err();
    assert!(matches!(err, GitError::WorktreeExists { .. }), "{err:?}");

    // Nothing changed yet: no commit.
    assert_eq!(
        vnx_git::commit_all(&wt.path, "vnx: d-20261121-ab12cd").unwrap(),
        None
    );

    // The worker commits once itself, then leaves more uncommitted work behind.
    write(
        &wt.path,
        "src/lib.rs",
        "pub fn one() -> u32 {\n    1\n}\n\npub fn two() -> u32 {\n    2\n}\n",
    );
    git(&wt.path, &["commit", "-q", "-am", "add two"]);
    write(&wt.path, "src/new.rs", "pub const X: u8 = 1;\n");
    write(
        &wt.path,
        "tests/two_test.rs",
        "#[test]\nfn t() { assert_eq!(2, 2); }\n",
    );
    fs::remove_file(wt.path.join("docs/old.md")).unwrap();
    fs::write(wt.path.join("logo.png"), [0u8, 159, 146, 150, 0, 1, 2, 3]).unwrap();
    fs::create_dir_all(wt.path.join("notes")).unwrap();
    fs::rename(
        wt.path.join("docs/moved.txt"),
        wt.path.join("notes/moved.txt"),
    )
    .unwrap();
    write(&wt.path, "README.md", "hello\nmore\n");

    let commit = vnx_git::commit_all(&wt.path, "vnx: d-20261121-ab12cd worker changes")
        .unwrap()
        .expect("a commit");
    assert_eq!(commit, git(&wt.path, &["rev-parse", "HEAD"]));
    assert!(
        vnx_git::dirty_files(&wt.path).unwrap().is_empty(),
        "everything staged, new files too"
    );
    assert_eq!(
        git(&wt.path, &["log", "-1", "--format=%s"]),
        "vnx: d-20261121-ab12cd worker changes"
    );
    assert_eq!(vnx_git::commit_all(&wt.path, "again").unwrap(), None);

    let facts = vnx_git::diff_facts(&wt.path, &wt.base, "HEAD", DiffOptions::default()).unwrap();
    assert_eq!(facts.base, head);
    assert_eq!(facts.head, commit);
    let subjects: Vec<&str> = facts.commits.iter().map(|c| c.subject.as_str()).collect();
    assert_eq!(
        subjects,
        ["vnx: d-20261121-ab12cd worker changes", "add two"]
    );
    assert!(facts.commits.iter().all(|c| c.sha.len() == 40));

    let file = |p: &str| {
        facts
            .files
            .iter()
            .find(|f| f.path == p)
            .unwrap_or_else(|| panic!("{p} missing: {:?}", facts.files))
    };
    assert_eq!(file("src/lib.rs").kind, ChangeKind::Modified);
    assert_eq!(
        (file("src/lib.rs").added, file("src/lib.rs").removed),
        (Some(4), Some(0))
    );
    assert_eq!(file("README.md").added, Some(1));
    assert_eq!(file("src/new.rs").kind, ChangeKind::Added);
    assert_eq!(file("docs/old.md").kind, ChangeKind::Deleted);
    assert_eq!(file("docs/old.md").removed, Some(1));
    let png = file("logo.png");
    assert!(png.binary);
    assert_eq!((png.added, png.removed), (None, None));
    let moved = file("notes/moved.txt");
    assert_eq!(moved.kind, ChangeKind::Renamed);
    assert_eq!(moved.old_path.as_deref(), Some("docs/moved.txt"));
    assert_eq!((moved.added, moved.removed), (Some(0), Some(0)));
    assert!(!moved.binary);

    let mut new_files = facts.new_files.clone();
    new_files.sort();
    assert_eq!(new_files, ["logo.png", "src/new.rs", "tests/two_test.rs"]);
    assert_eq!(facts.deleted_files, ["docs/old.md"]);
    assert_eq!(facts.tests_touched, ["tests/two_test.rs"]);
    assert_eq!(facts.stat.files_changed, 7);
    assert_eq!(facts.stat.insertions, 4 + 1 + 1 + 2);
    assert_eq!(facts.stat.deletions, 1);
    assert!(facts.diff.contains("+pub fn two() -> u32 {"));
    assert!(facts.diff.contains("Binary files"));
    assert!(!facts.diff_truncated);
    assert_eq!(facts.diff_bytes, facts.diff.len() as u64);

    let added = vnx_git::added_lines(&facts.diff);
    assert!(
        added
            .iter()
            .any(|l| l.path == "src/lib.rs" && l.line == 5 && l.text == "pub fn two() -> u32 {")
    );
    assert!(
        added
            .iter()
            .any(|l| l.path == "tests/two_test.rs" && l.line == 2)
    );

    let gf = facts.to_git_facts(Some(&wt.branch), ".vnx/worktrees/d-20261121-ab12cd");
    assert_eq!(
        (gf.base.as_str(), gf.head.as_str()),
        (head.as_str(), commit.as_str())
    );

    // Remove keeps the branch and the work on it.
    vnx_git::remove(&repo.root, &wt.path, RemoveMode::IfClean).unwrap();
    assert!(!wt.path.exists());
    assert_eq!(
        git(&repo.root, &["rev-parse", "vnx/d-20261121-ab12cd"]),
        commit
    );
    assert!(vnx_git::list(&repo.root).unwrap().is_empty());
}

#[test]
fn remove_refuses_dirty_unless_forced() {
    let repo = Repo::new();
    let wt = vnx_git::create(&repo.root, "dirty").unwrap();
    write(&wt.path, "scratch.txt", "uncommitted\n");
    let err = vnx_git::remove(&repo.root, &wt.path, RemoveMode::IfClean).unwrap_err();
    assert!(matches!(err, GitError::Failed { .. }), "{err:?}");
    assert!(wt.path.exists());
    vnx_git::remove(&repo.root, &wt.path, RemoveMode::Force).unwrap();
    assert!(!wt.path.exists());
}

#[test]
fn list_and_prune() {
    let repo = Repo::new();
    let merged = vnx_git::create(&repo.root, "merged").unwrap();
    write(&merged.path, "m.txt", "m\n");
    vnx_git::commit_all(&merged.path, "vnx: merged")
        .unwrap()
        .unwrap();
    git(&repo.root, &["merge", "-q", "--ff-only", "vnx/merged"]);

    let unmerged = vnx_git::create(&repo.root, "unmerged").unwrap();
    write(&unmerged.path, "u.txt", "u\n");
    vnx_git::commit_all(&unmerged.path, "vnx: unmerged")
        .unwrap()
        .unwrap();

    let dirty = vnx_git::create(&repo.root, "dirty").unwrap();
    write(&dirty.path, "d.txt", "d\n");

    let gone = vnx_git::create(&repo.root, "gone").unwrap();
    fs::remove_dir_all(&gone.path).unwrap();

    // A worktree that is not vnx's is never listed.
    let other = repo.root.parent().unwrap().join("other-wt");
    git(
        &repo.root,
        &[
            "worktree",
            "add",
            "-q",
            "-b",
            "feature",
            other.to_str().unwrap(),
        ],
    );

    let exclude = fs::read_to_string(repo.root.join(".git/info/exclude")).unwrap();
    assert_eq!(
        exclude.matches("/.vnx/worktrees/").count(),
        1,
        "added once:\n{exclude}"
    );

    let mut listed = vnx_git::list(&repo.root).unwrap();
    listed.sort_by(|a, b| a.dispatch_id.cmp(&b.dispatch_id));
    let ids: Vec<&str> = listed.iter().map(|w| w.dispatch_id.as_str()).collect();
    assert_eq!(ids, ["dirty", "gone", "merged", "unmerged"]);
    let by = |id: &str| listed.iter().find(|w| w.dispatch_id == id).unwrap();
    assert!(by("merged").merged && !by("merged").dirty);
    assert_eq!(by("merged").base.as_deref(), Some(merged.base.as_str()));
    assert_eq!(by("merged").branch.as_deref(), Some("vnx/merged"));
    assert!(!by("unmerged").merged);
    assert!(
        by("dirty").dirty && !by("dirty").merged,
        "no commits beyond base is not merged"
    );
    assert!(by("gone").missing);

    let report = vnx_git::prune(&repo.root).unwrap();
    let mut removed = report.removed.clone();
    removed.sort();
    assert_eq!(removed, [gone.path.clone(), merged.path.clone()]);
    let kept: Vec<&PathBuf> = report.kept.iter().map(|(p, _)| p).collect();
    assert!(kept.contains(&&unmerged.path) && kept.contains(&&dirty.path));
    assert!(!merged.path.exists() && unmerged.path.exists() && dirty.path.exists());
    assert!(!git(&repo.root, &["worktree", "list"]).contains("/gone"));
    // Branches survive pruning.
    git(&repo.root, &["rev-parse", "--verify", "vnx/merged"]);
    let after: Vec<String> = vnx_git::list(&repo.root)
        .unwrap()
        .into_iter()
        .map(|w| w.dispatch_id)
        .collect();
    assert_eq!(after.len(), 2, "{after:?}");
}

#[test]
fn diff_is_bounded_at_a_line_boundary() {
    let repo = Repo::new();
    let base = vnx_git::head_commit(&repo.root).unwrap();
    let big: String = (0..2000)
        .map(|i| format!("line number {i}"))
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    write(&repo.root, "big.txt", &big);
    let head = vnx_git::commit_all(&repo.root, "big").unwrap().unwrap();
    let facts = vnx_git::diff_facts(
        &repo.root,
        &base,
        &head,
        DiffOptions {
            max_diff_bytes: 1000,
        },
    )
    .unwrap();
    assert!(facts.diff_truncated);
    assert!(
        facts.diff.len() <= 1000 && facts.diff.len() > 900,
        "{}",
        facts.diff.len()
    );
    assert!(facts.diff.ends_with('\n'));
    assert!(facts.diff_bytes > 20_000);
    assert_eq!(
        facts.stat.insertions, 2000,
        "counts come from numstat, not the cut diff"
    );
}

#[test]
fn empty_range_has_no_facts() {
    let repo = Repo::new();
    let head = vnx_git::head_commit(&repo.root).unwrap();
    let facts = vnx_git::diff_facts(&repo.root, &head, &head, DiffOptions::default()).unwrap();
    assert!(facts.is_empty() && facts.commits.is_empty() && facts.diff.is_empty());
    assert_eq!(
        facts.stat.to_string(),
        "0 files changed, 0 insertions(+), 0 deletions(-)"
    );
}

#[test]
fn commit_identity_from_config_or_fallback() {
    let repo = Repo::new();
    write(&repo.root, "a.txt", "a\n");
    vnx_git::commit_all(&repo.root, "vnx: d-ident")
        .unwrap()
        .unwrap();
    let author = git(&repo.root, &["log", "-1", "--format=%an <%ae>|%cn <%ce>"]);
    let expected_name = std::env::var("GIT_AUTHOR_NAME")
        .ok()
        .filter(|v| !v.is_empty())
        .or_else(|| {
            let out = Command::new("git")
                .arg("-C")
                .arg(&repo.root)
                .args(["config", "--get", "user.name"])
                .output()
                .ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        });
    match expected_name {
        None => assert!(author.starts_with("vnx <vnx@localhost>|"), "{author}"),
        Some(name) => assert!(author.starts_with(&name), "{author}"),
    }

    // A repository-local identity wins over the fallback.
    git(&repo.root, &["config", "user.name", "Repo Person"]);
    git(&repo.root, &["config", "user.email", "repo@example.com"]);
    write(&repo.root, "b.txt", "b\n");
    vnx_git::commit_all(&repo.root, "vnx: d-ident2")
        .unwrap()
        .unwrap();
    let author = git(&repo.root, &["log", "-1", "--format=%an <%ae>"]);
    if std::env::var("GIT_AUTHOR_NAME").is_err() {
        assert_eq!(author, "Repo Person <repo@example.com>");
    }
}

#[test]
fn invalid_dispatch_ids_touch_nothing() {
    let repo = Repo::new();
    for bad in ["../escape", "a/b", "-rf", ""] {
        let err = vnx_git::create(&repo.root, bad).unwrap_err();
        assert!(
            matches!(err, GitError::InvalidDispatchId { .. }),
            "{bad}: {err:?}"
        );
    }
    assert!(!repo.root.join(".vnx").exists());
    assert_eq!(git(&repo.root, &["branch", "--list", "vnx/*"]), "");
}

#[test]
fn user_diff_config_does_not_change_the_facts() {
    let repo = Repo::new();
    let base = vnx_git::head_commit(&repo.root).unwrap();
    git(&repo.root, &["config", "diff.noprefix", "true"]);
    git(&repo.root, &["config", "color.diff", "always"]);
    git(&repo.root, &["config", "diff.context", "0"]);
    write(
        &repo.root,
        "src/lib.rs",
        "pub fn one() -> u32 {\n    1\n}\n// added\n",
    );
    let head = vnx_git::commit_all(&repo.root, "vnx: cfg")
        .unwrap()
        .unwrap();
    let facts = vnx_git::diff_facts(&repo.root, &base, &head, DiffOptions::default()).unwrap();
    assert!(!facts.diff.contains('\u{1b}'), "no color codes");
    assert!(facts.diff.contains("+++ b/src/lib.rs"), "{}", facts.diff);
    let added = vnx_git::added_lines(&facts.diff);
    assert_eq!(added.len(), 1);
    assert_eq!(
        (
            added[0].path.as_str(),
            added[0].line,
            added[0].text.as_str()
        ),
        ("src/lib.rs", 4, "// added")
    );
}

/// An identity that is not the test environment's, so the tests see whose it is.
fn test_identity() -> vnx_git::Identity {
    vnx_git::Identity {
        author_name: "Ada Author".to_owned(),
        author_email: "ada@example.com".to_owned(),
        committer_name: "Cy Committer".to_owned(),
        committer_email: "cy@example.com".to_owned(),
    }
}

/// [`test_identity`], fsync as git's default.
fn test_settings() -> vnx_git::CommitSettings {
    vnx_git::CommitSettings {
        identity: test_identity(),
        fsync_configured: false,
    }
}

#[test]
fn commit_work_reports_head_with_or_without_a_commit() {
    let repo = Repo::new();
    let wt = vnx_git::create(&repo.root, "d-work").unwrap();
    let id = test_identity();

    // Nothing changed: no commit, HEAD is the base.
    let work = vnx_git::commit_work(&wt.path, "vnx: d-work", &id).unwrap();
    assert_eq!(
        (work.head.as_str(), work.committed),
        (wt.base.as_str(), false)
    );

    // The worker committed everything itself: no commit, HEAD is its commit.
    write(&wt.path, "a.txt", "a\n");
    git(&wt.path, &["add", "a.txt"]);
    git(&wt.path, &["commit", "-q", "-m", "worker"]);
    let worker_head = git(&wt.path, &["rev-parse", "HEAD"]);
    let work = vnx_git::commit_work(&wt.path, "vnx: d-work", &id).unwrap();
    assert_eq!(
        (work.head.as_str(), work.committed),
        (worker_head.as_str(), false)
    );

    // Left uncommitted (an untracked file in a new directory, a deletion): committed with the identity.
    write(&wt.path, "new dir/b.txt", "b\n");
    fs::remove_file(wt.path.join("README.md")).unwrap();
    let work = vnx_git::commit_work(&wt.path, "vnx: d-work\n\nbody\n", &id).unwrap();
    assert!(work.committed);
    assert_eq!(work.head, git(&wt.path, &["rev-parse", "HEAD"]));
    assert_eq!(git(&wt.path, &["rev-parse", "HEAD^"]), worker_head);
    assert_eq!(
        git(&wt.path, &["log", "-1", "--format=%an <%ae>|%cn <%ce>|%s"]),
        "Ada Author <ada@example.com>|Cy Committer <cy@example.com>|vnx: d-work"
    );
    assert_eq!(git(&wt.path, &["status", "--porcelain"]), "");
}

#[test]
fn commit_files_adds_exactly_the_files_on_top_of_the_branch() {
    let repo = Repo::new();
    // The base already has a ledger with a manifest and another segment.
    write(&repo.root, "ledger/ledger.json", "{\"id\":1}\n");
    write(&repo.root, "ledger/other.ndjson", "old\n");
    git(&repo.root, &["add", "-A"]);
    git(&repo.root, &["commit", "-q", "-m", "ledger"]);
    let wt = vnx_git::create(&repo.root, "d-receipt").unwrap();
    write(&wt.path, "src/work.rs", "pub fn work() {}\n");
    let work = vnx_git::commit_work(&wt.path, "vnx: d-receipt", &test_identity()).unwrap();
    assert!(work.committed);
    // Left behind by a command gate after the work commit: stays out.
    write(&wt.path, "target/out.txt", "build output\n");

    let segment = "ledger/alice@host--vnx_d-receipt.ndjson";
    let contents: &[u8] = b"{\"hash\":\"x\"}\n{\"hash\":\"y\"}\n";
    let files = [
        vnx_git::TreeFile {
            path: "ledger/ledger.json",
            contents: b"{\"id\":1}\n",
        },
        vnx_git::TreeFile {
            path: segment,
            contents,
        },
    ];
    let commit = vnx_git::commit_files(
        &repo.root,
        &wt.branch,
        &files,
        "vnx: receipt of dispatch d-receipt (passed)\n\nvnx-dispatch: d-receipt\n",
        &test_settings(),
    )
    .unwrap();

    // The branch moved to it; its only parent is the work commit.
    assert_eq!(git(&repo.root, &["rev-parse", &wt.branch]), commit);
    assert_eq!(
        git(&repo.root, &["rev-list", "--parents", "-n", "1", &commit]),
        format!("{commit} {}", work.head)
    );
    // Its tree is the work commit's plus the segment, nothing else (the
    // identical manifest is no change).
    assert_eq!(
        git(
            &repo.root,
            &[
                "diff-tree",
                "-r",
                "--no-commit-id",
                "--name-status",
                &work.head,
                &commit
            ]
        ),
        format!("A\t{segment}")
    );
    let mut expected = git(&repo.root, &["ls-tree", "-r", "--name-only", &work.head]);
    expected.push('\n');
    expected.push_str(segment);
    let mut expected: Vec<&str> = expected.lines().collect();
    expected.sort_unstable();
    assert_eq!(
        git(&repo.root, &["ls-tree", "-r", "--name-only", &commit])
            .lines()
            .collect::<Vec<_>>(),
        expected
    );
    assert_eq!(
        git(&repo.root, &["show", &format!("{commit}:{segment}")]).as_bytes(),
        contents.trim_ascii_end()
    );
    assert_eq!(
        git(
            &repo.root,
            &["log", "-1", "--format=%an <%ae>|%cn <%ce>|%s|%b", &commit]
        ),
        "Ada Author <ada@example.com>|Cy Committer <cy@example.com>|vnx: receipt of dispatch d-receipt (passed)|vnx-dispatch: d-receipt"
    );
    // The objects are loose, as a `git commit`'s: no pack per receipt.
    assert_eq!(
        git(&repo.root, &["count-objects", "-v"])
            .lines()
            .find(|l| l.starts_with("packs:")),
        Some("packs: 0")
    );

    // A kept worktree: the same files written there and their index entries
    // reset to the new HEAD leave it clean but for the gate's output.
    assert_eq!(git(&wt.path, &["rev-parse", "HEAD"]), commit);
    write(&wt.path, segment, std::str::from_utf8(contents).unwrap());
    vnx_git::reset_paths(
        &wt.path,
        &[Path::new(segment), Path::new("ledger/ledger.json")],
    )
    .unwrap();
    assert_eq!(git(&wt.path, &["status", "--porcelain"]), "?? target/");

    // A branch that does not exist: an error, nothing created.
    let err =
        vnx_git::commit_files(&repo.root, "vnx/none", &files, "m", &test_settings()).unwrap_err();
    assert!(matches!(err, GitError::Failed { .. }), "{err:?}");
    assert_eq!(git(&repo.root, &["branch", "--list", "vnx/none"]), "");
}

#[test]
fn commit_files_quotes_unusual_paths_and_new_directories() {
    let repo = Repo::new();
    let wt = vnx_git::create(&repo.root, "d-quote").unwrap();
    let path = "new ledger/a \"b\" \\c.ndjson";
    let commit = vnx_git::commit_files(
        &repo.root,
        &wt.branch,
        &[vnx_git::TreeFile {
            path,
            contents: b"x\n",
        }],
        "m",
        &test_settings(),
    )
    .unwrap();
    assert_eq!(
        git(
            &repo.root,
            &[
                "-c",
                "core.quotePath=false",
                "diff-tree",
                "-r",
                "-z",
                "--no-commit-id",
                "--name-only",
                &wt.base,
                &commit
            ]
        ),
        format!("{path}\0")
    );
}

#[test]
fn discard_removes_the_worktree_and_git_forgets_it() {
    let repo = Repo::new();
    let wt = vnx_git::create(&repo.root, "d-discard").unwrap();
    let other = vnx_git::create(&repo.root, "d-other").unwrap();
    let admin = wt.admin_dir.clone().expect("admin dir recorded");
    assert!(
        admin.starts_with(repo.root.join(".git/worktrees")),
        "{admin:?}"
    );
    write(&wt.path, "uncommitted.txt", "lost\n");
    write(&wt.path, "deep/er/file.txt", "lost\n");
    // The agent rewrites the worktree's `.git` file to point at another
    // worktree's git directory: only the recorded one is deleted.
    let other_admin = other.admin_dir.clone().unwrap();
    fs::write(
        wt.path.join(".git"),
        format!("gitdir: {}\n", other_admin.display()),
    )
    .unwrap();

    vnx_git::discard(&repo.root, &wt).unwrap();
    assert!(!wt.path.exists());
    assert!(!admin.exists());
    assert!(other_admin.exists() && other.path.exists());
    let listed = git(&repo.root, &["worktree", "list", "--porcelain"]);
    assert!(!listed.contains("d-discard"), "{listed}");
    assert!(listed.contains("d-other"), "{listed}");
    // Nothing for prune to do, the branch is kept.
    assert_eq!(
        git(&repo.root, &["worktree", "prune", "--dry-run", "-v"]),
        ""
    );
    assert_eq!(git(&repo.root, &["rev-parse", &wt.branch]), wt.base);

    // A directory already gone: the git directory still goes.
    fs::remove_dir_all(&other.path).unwrap();
    vnx_git::discard(&repo.root, &other).unwrap();
    assert!(!other_admin.exists());
    assert_eq!(
        git(&repo.root, &["worktree", "list", "--porcelain"])
            .lines()
            .filter(|l| l.starts_with("worktree "))
            .count(),
        1
    );
}

#[test]
fn discard_leaves_a_locked_worktree_to_git() {
    let repo = Repo::new();
    let wt = vnx_git::create(&repo.root, "d-locked").unwrap();
    git(&repo.root, &["worktree", "lock", wt.path.to_str().unwrap()]);
    // git refuses to remove a locked worktree without a double --force.
    let err = vnx_git::discard(&repo.root, &wt).unwrap_err();
    assert!(matches!(err, GitError::Failed { .. }), "{err:?}");
    assert!(wt.path.exists() && wt.admin_dir.as_ref().unwrap().exists());
}

#[test]
fn identity_prefers_author_and_committer_keys_over_user() {
    if [
        "GIT_AUTHOR_NAME",
        "GIT_AUTHOR_EMAIL",
        "GIT_COMMITTER_NAME",
        "GIT_COMMITTER_EMAIL",
    ]
    .iter()
    .any(|v| std::env::var_os(v).is_some())
    {
        return; // the environment decides; nothing to see here
    }
    let repo = Repo::new();
    git(&repo.root, &["config", "user.name", "User Name"]);
    git(&repo.root, &["config", "user.email", "user@example.com"]);
    git(&repo.root, &["config", "author.name", "Author Name"]);
    git(
        &repo.root,
        &["config", "committer.email", "committer@example.com"],
    );
    let id = vnx_git::identity(&repo.root).unwrap();
    assert_eq!(
        (
            id.author_name.as_str(),
            id.author_email.as_str(),
            id.committer_name.as_str(),
            id.committer_email.as_str()
        ),
        (
            "Author Name",
            "user@example.com",
            "User Name",
            "committer@example.com"
        )
    );
}

#[test]
fn commit_settings_notice_a_configured_fsync() {
    let repo = Repo::new();
    let settings = vnx_git::commit_settings(&repo.root).unwrap();
    assert_eq!(settings.identity, vnx_git::identity(&repo.root).unwrap());
    // The developer's own git configuration may set it; only a change is checked.
    let global = settings.fsync_configured;
    git(&repo.root, &["config", "core.fsyncObjectFiles", "true"]);
    assert!(
        vnx_git::commit_settings(&repo.root)
            .unwrap()
            .fsync_configured
    );
    git(&repo.root, &["config", "--unset", "core.fsyncObjectFiles"]);
    assert_eq!(
        vnx_git::commit_settings(&repo.root)
            .unwrap()
            .fsync_configured,
        global
    );
    git(&repo.root, &["config", "core.fsync", "all"]);
    assert!(
        vnx_git::commit_settings(&repo.root)
            .unwrap()
            .fsync_configured
    );
}
