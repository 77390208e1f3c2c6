//! Integration tests of vnx-govern: reports, gates and review verdicts, with
//! git facts from real repositories in temp dirs.

// Helpers outside #[test] functions may unwrap too: a panic is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vnx_git::{DiffFacts, DiffOptions};
use vnx_govern::*;
use vnx_types::{GateLayer, GateResult, OutcomeClass, ReportOrigin, Usage, Verdict};

// ---------------------------------------------------------------- helpers

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
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A repository with `base` files committed; `change` applies edits
/// (`None` deletes) and returns the facts of base..head.
struct Scratch {
    _dir: tempfile::TempDir,
    root: PathBuf,
    base: String,
}

impl Scratch {
    fn new(base: &[(&str, &str)]) -> Scratch {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        git(&root, &["init", "-q", "-b", "main"]);
        fs::write(root.join(".keep"), "").unwrap();
        for (p, text) in base {
            put(&root, p, Some(text));
        }
        git(&root, &["add", "-A"]);
        git(&root, &["commit", "-q", "-m", "base"]);
        let base = git(&root, &["rev-parse", "HEAD"]);
        Scratch {
            _dir: dir,
            root,
            base,
        }
    }

    fn change(&self, edits: &[(&str, Option<&str>)]) -> DiffFacts {
        self.change_with(edits, DiffOptions::default())
    }

    fn change_with(&self, edits: &[(&str, Option<&str>)], opts: DiffOptions) -> DiffFacts {
        for (p, text) in edits {
            put(&self.root, p, *text);
        }
        git(&self.root, &["add", "-A"]);
        git(
            &self.root,
            &["commit", "-q", "--allow-empty", "-m", "worker change"],
        );
        vnx_git::diff_facts(&self.root, &self.base, "HEAD", opts).unwrap()
    }
}

fn put(root: &Path, rel: &str, text: Option<&str>) {
    let p = root.join(rel);
    match text {
        Some(t) => {
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, t).unwrap();
        }
        None => fs::remove_file(p).unwrap(),
    }
}

fn schema() -> Value {
    report_schema().unwrap()
}

fn valid_report() -> Value {
    json!({
        "summary": "Added a --verbose flag and a test.",
        "files_changed": ["src/main.rs", {"path": "tests/cli.rs", "added": 12, "removed": 0}],
        "tests": {"added": 1, "run": 30, "passed": 30},
        "risks": [],
        "followups": ["document the flag"],
        "notes": "extra fields are allowed"
    })
}

fn fake_key(prefix: &str) -> String {
    // Built at run time so no secret-shaped literal sits in the source.
    format!("{prefix}{}", "Qx7".repeat(14))
}

// ---------------------------------------------------------------- schemas and reports

#[test]
fn embedded_schemas_compile_and_match_the_files() {
    compile_schema(&schema()).unwrap();
    compile_schema(&verdict_schema().unwrap()).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
    assert_eq!(
        fs::read_to_string(root.join("report.schema.json")).unwrap(),
        REPORT_SCHEMA
    );
    assert_eq!(
        fs::read_to_string(root.join("verdict.schema.json")).unwrap(),
        VERDICT_SCHEMA
    );
    assert_eq!(
        verdict_schema().unwrap()["additionalProperties"],
        json!(false)
    );
}

#[test]
fn report_from_file_wins_over_final_message() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.json");
    fs::write(&file, serde_json::to_string(&valid_report()).unwrap()).unwrap();
    let r = read_report(
        Some(&file),
        Some("{\"summary\": \"other\"}"),
        &schema(),
        DEFAULT_REPORT_LIMIT_BYTES,
    );
    match &r {
        ReportResult::Valid { report, source } => {
            assert_eq!(report, &valid_report());
            assert_eq!(source, &ReportSource::File(file.clone()));
        }
        other => panic!("{other:?}"),
    }
    assert!(r.errors().is_empty());
}

#[test]
fn report_from_fenced_final_message_when_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.json");
    let text = format!(
        "All done! Here is my report:\n\n```json\n{}\n```\n\nLet me know.",
        serde_json::to_string_pretty(&valid_report()).unwrap()
    );
    let r = read_report(
        Some(&missing),
        Some(&text),
        &schema(),
        DEFAULT_REPORT_LIMIT_BYTES,
    );
    assert!(
        matches!(
            &r,
            ReportResult::Valid {
                source: ReportSource::FinalMessage,
                ..
            }
        ),
        "{r:?}"
    );
    // The last {...} object in prose works too.
    let prose = format!(
        "Report follows {} — end.",
        serde_json::to_string(&valid_report()).unwrap()
    );
    assert!(read_report(None, Some(&prose), &schema(), DEFAULT_REPORT_LIMIT_BYTES).is_valid());
}

#[test]
fn huge_reports_are_rejected_with_their_size() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.json");
    let mut big = valid_report();
    big["summary"] = json!("x".repeat(2000));
    let text = serde_json::to_string(&big).unwrap();
    fs::write(&file, &text).unwrap();
    let r = read_report(Some(&file), None, &schema(), 1024);
    match &r {
        ReportResult::Rejected {
            size_bytes,
            reason,
            source,
        } => {
            assert_eq!(*size_bytes, text.len() as u64);
            assert!(reason.contains("1024-byte limit"), "{reason}");
            assert!(matches!(source, ReportSource::File(_)));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        r.errors()[0].contains(&format!("{} bytes", text.len())),
        "{:?}",
        r.errors()
    );
    let r = read_report(None, Some(&text), &schema(), 1024);
    assert!(
        matches!(
            r,
            ReportResult::Rejected {
                source: ReportSource::FinalMessage,
                ..
            }
        ),
        "{r:?}"
    );
}

#[test]
fn non_json_and_non_utf8_reports_are_rejected() {
    let r = read_report(
        None,
        Some("I changed three files and all tests pass."),
        &schema(),
        4096,
    );
    match &r {
        ReportResult::Rejected {
            reason, size_bytes, ..
        } => {
            assert!(reason.contains("not JSON"), "{reason}");
            assert_eq!(*size_bytes, 41);
        }
        other => panic!("{other:?}"),
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.json");
    fs::write(&file, [b'{', 0xff, 0xfe, b'}']).unwrap();
    let r = read_report(Some(&file), None, &schema(), 4096);
    assert!(
        matches!(&r, ReportResult::Rejected { reason, .. } if reason.contains("UTF-8")),
        "{r:?}"
    );
    assert_eq!(
        read_report(None, None, &schema(), 4096),
        ReportResult::Missing
    );
    assert_eq!(
        read_report(None, Some("  \n"), &schema(), 4096),
        ReportResult::Missing
    );
}

#[test]
fn schema_invalid_report_keeps_bounded_redacted_errors() {
    let bad = json!({
        "summary": "",
        "files_changed": "src/main.rs",
        "tests": {"run": -1, "flaky": 2},
        "origin": "me"
    });
    let r = read_report(None, Some(&bad.to_string()), &schema(), 4096);
    let ReportResult::Invalid { errors, report, .. } = &r else {
        panic!("{r:?}")
    };
    assert_eq!(report, &bad);
    let joined = errors.join("\n");
    for path in [
        "/summary",
        "/files_changed",
        "/tests/run",
        "/tests",
        "/origin",
    ] {
        assert!(
            errors.iter().any(|e| e.starts_with(&format!("{path}: "))),
            "{path} missing in:\n{joined}"
        );
    }

    // Bounded: many errors are cut to MAX_ERRORS plus one line.
    let many =
        json!({"summary": "s", "files_changed": (0..50).map(|_| json!(1)).collect::<Vec<_>>()});
    let r = read_report(None, Some(&many.to_string()), &schema(), 65536);
    let errors = r.errors();
    assert_eq!(errors.len(), MAX_ERRORS + 1, "{errors:?}");
    assert!(errors.last().unwrap().contains("more validation errors"));

    // Redacted: a secret in an invalid value does not reach the receipt.
    let key = fake_key("sk-ant-api03-");
    let leaky = json!({"summary": "s", "files_changed": [], "risks": key});
    let errors = read_report(None, Some(&leaky.to_string()), &schema(), 4096).errors();
    assert!(!errors.is_empty());
    assert!(errors.iter().all(|e| !e.contains(&key)), "{errors:?}");
}

#[test]
fn govern_report_keeps_valid_worker_reports_and_synthesizes_otherwise() {
    let valid = ReportResult::Valid {
        report: valid_report(),
        source: ReportSource::FinalMessage,
    };
    let g = govern_report(&valid, None);
    assert_eq!(g.info.origin, ReportOrigin::Worker);
    assert!(g.info.valid && g.info.errors.is_empty());
    assert_eq!(g.report, valid_report());
    // RFC 8785: key order does not change the hash.
    let reordered: Value = serde_json::from_str(
        r#"{"notes":"extra fields are allowed","followups":["document the flag"],"risks":[],"tests":{"passed":30,"run":30,"added":1},"files_changed":["src/main.rs",{"removed":0,"added":12,"path":"tests/cli.rs"}],"summary":"Added a --verbose flag and a test."}"#,
    )
    .unwrap();
    assert_eq!(g.info.sha256, canonical_sha256(&reordered));
    assert_eq!(g.info.sha256.len(), 64);

    let s = Scratch::new(&[("src/lib.rs", "pub fn a() {}\n")]);
    let facts = s.change(&[("src/lib.rs", Some("pub fn a() {}\npub fn b() {}\n"))]);
    let g = govern_report(&ReportResult::Missing, Some(&facts));
    assert_eq!(g.info.origin, ReportOrigin::Synthesized);
    assert!(!g.info.valid);
    assert!(g.info.errors[0].contains("no report"));
    assert_eq!(g.report["origin"], "synthesized");
    assert_eq!(g.info.sha256, canonical_sha256(&g.report));

    let outside = govern_report(&ReportResult::Missing, None);
    assert!(read_report(None, Some(&outside.report.to_string()), &schema(), 65536).is_valid());
}

#[test]
fn synthesized_reports_validate_and_state_the_facts() {
    let s = Scratch::new(&[
        ("src/lib.rs", "pub fn a() {}\n"),
        ("old.txt", "old\n"),
        ("docs/guide.md", "one\ntwo\nthree\nfour\nfive\n"),
    ]);
    let facts = s.change(&[
        ("src/lib.rs", Some("pub fn a() {}\npub fn b() {}\n")),
        (
            "tests/b_test.rs",
            Some("#[test]\nfn b() { assert!(true); }\n"),
        ),
        ("old.txt", None),
        ("docs/guide.md", None),
        ("docs/manual.md", Some("one\ntwo\nthree\nfour\nfive\n")),
        ("img.bin", Some("\u{0}\u{1}\u{2}binary")),
    ]);
    let report = synthesize(&facts);
    let r = read_report(
        None,
        Some(&report.to_string()),
        &schema(),
        DEFAULT_REPORT_LIMIT_BYTES,
    );
    assert!(r.is_valid(), "{:?}", r.errors());
    assert_eq!(report["origin"], "synthesized");
    let summary = report["summary"].as_str().unwrap();
    for needle in [
        "1 commit",
        "worker change",
        "src/lib.rs (+1 −0)",
        "tests/b_test.rs",
        "Deleted files: old.txt",
        "img.bin (binary)",
        "Tests touched: tests/b_test.rs",
        &facts.base[..12],
    ] {
        assert!(summary.contains(needle), "{needle:?} not in {summary:?}");
    }
    assert_eq!(report["tests"]["added"], 1);
    let files = report["files_changed"].as_array().unwrap();
    assert_eq!(files.len(), facts.files.len());
    let renamed = files
        .iter()
        .find(|f| f["path"] == "docs/manual.md")
        .unwrap();
    assert_eq!(renamed["status"], "renamed");
    assert_eq!(renamed["old_path"], "docs/guide.md");
    assert_eq!(
        report["diff_stat"]["files_changed"],
        facts.stat.files_changed
    );

    // Nothing changed: still a factual, valid report.
    let empty = Scratch::new(&[]).change(&[]);
    let report = synthesize(&empty);
    assert!(
        report["summary"]
            .as_str()
            .unwrap()
            .starts_with("No changes between base")
    );
    assert!(read_report(None, Some(&report.to_string()), &schema(), 65536).is_valid());
}

#[test]
fn report_gate_enforce_and_shadow() {
    let valid = ReportResult::Valid {
        report: valid_report(),
        source: ReportSource::FinalMessage,
    };
    assert_eq!(
        report_gate(&valid, GateMode::Enforce).verdict,
        Verdict::Pass
    );
    let invalid = read_report(None, Some("{\"summary\": 3}"), &schema(), 4096);
    let g = report_gate(&invalid, GateMode::Enforce);
    assert_eq!(
        (g.name.as_str(), g.verdict),
        ("report-valid", Verdict::Fail)
    );
    assert!(g.detail.contains("/summary"), "{}", g.detail);
    let g = report_gate(&invalid, GateMode::Shadow);
    assert_eq!(g.verdict, Verdict::Skipped);
    assert!(
        g.detail.starts_with("shadow mode, not enforced"),
        "{}",
        g.detail
    );
    assert_eq!(
        report_gate(&ReportResult::Missing, GateMode::Enforce).verdict,
        Verdict::Fail
    );
    assert_eq!(
        report_gate(&ReportResult::Missing, GateMode::Shadow).verdict,
        Verdict::Skipped
    );
    assert_eq!("enforce".parse::<GateMode>().unwrap(), GateMode::Enforce);
    assert!("strict".parse::<GateMode>().is_err());
    assert_eq!(GateMode::default(), GateMode::Shadow);
}

// ---------------------------------------------------------------- deterministic gates

#[test]
fn worker_outcome_and_non_empty_change() {
    assert_eq!(
        worker_outcome_gate(OutcomeClass::Success).verdict,
        Verdict::Pass
    );
    let g = worker_outcome_gate(OutcomeClass::MaxTurns);
    assert_eq!(g.verdict, Verdict::Fail);
    assert!(g.detail.contains("max_turns"), "{}", g.detail);
    assert_eq!(g.layer, GateLayer::Deterministic);
    assert!(g.duration_ms.is_some());

    let s = Scratch::new(&[("a.txt", "a\n")]);
    let empty = s.change(&[]);
    // An empty commit is a commit but not a change.
    assert_eq!(
        non_empty_change_gate(&empty, ChangeExpectation::Edits).verdict,
        Verdict::Fail
    );
    assert_eq!(
        non_empty_change_gate(&empty, ChangeExpectation::ReadOnly).verdict,
        Verdict::Skipped
    );
    let changed = s.change(&[("a.txt", Some("b\n"))]);
    let g = non_empty_change_gate(&changed, ChangeExpectation::Edits);
    assert_eq!(g.verdict, Verdict::Pass);
    assert!(g.detail.contains("1 file changed"), "{}", g.detail);
}

#[test]
fn placeholders_added_fail_but_pre_existing_ones_do_not() {
    let s = Scratch::new(&[
        ("src/lib.rs", "// TODO: an old note\npub fn a() {}\n"),
        ("app.py", "def f():\n    return 1\n"),
    ]);
    let clean = s.change(&[(
        "src/lib.rs",
        Some("// TODO: an old note\npub fn a() {}\npub fn b() {}\n"),
    )]);
    let g = no_placeholders_gate(&clean);
    assert_eq!(g.verdict, Verdict::Pass, "{}", g.detail);

    let dirty = s.change(&[
        ("src/lib.rs", Some("// TODO: an old note\npub fn a() {}\npub fn b() {}\npub fn c() -> u8 {\n    todo!()\n}\n")),
        ("app.py", Some("def f():\n    return 1\n\ndef g():\n    pass  # later\n")),
        ("notes.txt", Some("FIXME before release\nTODOS is not a placeholder\n")),
    ]);
    let g = no_placeholders_gate(&dirty);
    assert_eq!(g.verdict, Verdict::Fail);
    for needle in [
        "src/lib.rs:5: todo!()",
        "app.py:5: pass  # later",
        "notes.txt:1: FIXME before release",
    ] {
        assert!(g.detail.contains(needle), "{needle:?} not in {}", g.detail);
    }
    assert!(
        !g.detail.contains("an old note"),
        "pre-existing TODO reported: {}",
        g.detail
    );
    assert!(!g.detail.contains("TODOS"), "{}", g.detail);
}

#[test]
fn truncated_diffs_are_not_passed_blindly() {
    let s = Scratch::new(&[]);
    let body: String = (0..500)
        .map(|i| format!("clean line {i}\n"))
        .collect::<Vec<_>>()
        .concat();
    let facts = s.change_with(
        &[("big.txt", Some(&body))],
        DiffOptions {
            max_diff_bytes: 512,
        },
    );
    assert!(facts.diff_truncated);
    assert_eq!(no_placeholders_gate(&facts).verdict, Verdict::Error);
    assert_eq!(no_secrets_gate(&facts).verdict, Verdict::Error);
}

#[test]
fn secrets_added_fail_and_are_redacted() {
    let old_key = fake_key("ghp_");
    let s = Scratch::new(&[("config/dev.env", &format!("OLD_TOKEN={old_key}\n"))]);
    let harmless = s.change(&[("src/a.rs", Some("let key = std::env::var(\"API_KEY\")?;\n"))]);
    assert_eq!(
        no_secrets_gate(&harmless).verdict,
        Verdict::Pass,
        "pre-existing secret is not 'added'"
    );

    let anthropic = fake_key("sk-ant-api03-");
    let aws = "AKIAQX7QX7QX7QX7QX7Q";
    let facts = s.change(&[
        ("config/prod.env", Some(&format!("ANTHROPIC_API_KEY={anthropic}\nAWS_ACCESS_KEY_ID={aws}\n"))),
        ("keys/id_rsa", Some("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\n")),
    ]);
    let g = no_secrets_gate(&facts);
    assert_eq!(g.verdict, Verdict::Fail);
    for needle in [
        "config/prod.env:1: anthropic-api-key",
        "config/prod.env:2: aws-access-key-id",
        "keys/id_rsa:1: private-key",
    ] {
        assert!(g.detail.contains(needle), "{needle:?} not in {}", g.detail);
    }
    assert!(
        !g.detail.contains(&anthropic) && !g.detail.contains(aws),
        "secret leaked: {}",
        g.detail
    );
    assert!(!g.detail.contains(&anthropic[..20]), "{}", g.detail);
}

/// The same real-format samples the redaction tests use (one list for both).
#[path = "../../../vnx-agents/tests/agents/samples.rs"]
mod samples;

#[test]
fn no_secrets_gate_flags_every_sample_and_no_near_miss() {
    for (i, sample) in samples::samples().iter().enumerate() {
        let s = Scratch::new(&[]);
        let path = format!("conf/f{i}.txt");
        let facts = s.change(&[(&path, Some(&format!("first line\n{}\n", sample.text)))]);
        let g = no_secrets_gate(&facts);
        assert_eq!(g.verdict, Verdict::Fail, "{}: {}", sample.kind, g.detail);
        assert!(
            g.detail.contains(&format!("{path}:"))
                && g.detail.contains(&format!(": {}", sample.kind)),
            "{}: {}",
            sample.kind,
            g.detail
        );
        for line in sample.secret.lines() {
            assert!(!g.detail.contains(line), "{}", g.detail);
        }
    }
    let s = Scratch::new(&[]);
    let misses = samples::near_misses().join("\n");
    let facts = s.change(&[("notes.txt", Some(&format!("{misses}\n")))]);
    let g = no_secrets_gate(&facts);
    assert_eq!(g.verdict, Verdict::Pass, "{}", g.detail);
}

#[test]
fn tests_touched_must_assert() {
    let s = Scratch::new(&[("src/lib.rs", "pub fn a() -> u8 { 1 }\n")]);
    let good = s.change(&[
        (
            "tests/a_test.rs",
            Some("#[test]\nfn a() {\n    assert_eq!(mylib::a(), 1);\n}\n"),
        ),
        (
            "pkg/a_test.go",
            Some(
                "package pkg\nfunc TestA(t *testing.T) {\n  if A() != 1 { t.Fatalf(\"bad\") }\n}\n",
            ),
        ),
        ("tests/fixtures/data.json", Some("{}\n")),
    ]);
    let g = tests_have_assertions_gate(&good, &s.root);
    assert_eq!(g.verdict, Verdict::Pass, "{}", g.detail);
    assert!(
        g.detail.contains("tests/a_test.rs") && g.detail.contains("pkg/a_test.go"),
        "{}",
        g.detail
    );

    let bad = s.change(&[
        (
            "tests/b_test.rs",
            Some("#[test]\nfn b() {\n    let _ = mylib::a();\n}\n"),
        ),
        ("test_views.py", Some("def test_view():\n    render()\n")),
        (
            "web/a.test.ts",
            Some("test('renders', () => { expect(render()).toBe(1) })\n"),
        ),
    ]);
    let g = tests_have_assertions_gate(&bad, &s.root);
    assert_eq!(g.verdict, Verdict::Fail);
    assert!(
        g.detail.contains("tests/b_test.rs") && g.detail.contains("test_views.py"),
        "{}",
        g.detail
    );
    assert!(!g.detail.contains("web/a.test.ts"), "{}", g.detail);

    let helpers = Scratch::new(&[]);
    let facts = helpers.change(&[("tests/common/mod.rs", Some("pub fn setup() {}\n"))]);
    assert_eq!(
        tests_have_assertions_gate(&facts, &helpers.root).verdict,
        Verdict::Skipped
    );
    let plain = Scratch::new(&[]);
    let none = plain.change(&[("src/x.rs", Some("pub fn x() {}\n"))]);
    let g = tests_have_assertions_gate(&none, &plain.root);
    assert_eq!(
        (g.verdict, g.detail.as_str()),
        (Verdict::Skipped, "no test files touched")
    );
}

#[test]
fn forbidden_paths_diff_size_and_budget() {
    let s = Scratch::new(&[("ledger/main.ndjson", "{}\n"), ("src/a.rs", "a\n")]);
    let facts = s.change(&[
        (".github/workflows/ci.yml", Some("on: push\n")),
        ("ledger/main.ndjson", None),
        ("src/a.rs", Some("a\nb\nc\n")),
    ]);
    let patterns = vec![
        ".github/workflows/**".to_owned(),
        "ledger/".to_owned(),
        "*.pem".to_owned(),
    ];
    let g = forbidden_paths_gate(&facts, &patterns);
    assert_eq!(g.verdict, Verdict::Fail);
    assert!(
        g.detail.contains(".github/workflows/ci.yml") && g.detail.contains("ledger/main.ndjson"),
        "{}",
        g.detail
    );
    assert!(!g.detail.contains("src/a.rs"));
    assert_eq!(
        forbidden_paths_gate(&facts, &["docs/**".to_owned()]).verdict,
        Verdict::Pass
    );
    assert_eq!(forbidden_paths_gate(&facts, &[]).verdict, Verdict::Skipped);
    assert_eq!(
        forbidden_paths_gate(&facts, &["[oops".to_owned()]).verdict,
        Verdict::Error
    );

    // Moving a file out of a forbidden directory touches it too.
    let r = Scratch::new(&[("secrets/cfg.txt", "one\ntwo\nthree\n")]);
    let moved = r.change(&[
        ("secrets/cfg.txt", None),
        ("public/cfg.txt", Some("one\ntwo\nthree\n")),
    ]);
    let g = forbidden_paths_gate(&moved, &["secrets/".to_owned()]);
    assert_eq!(g.verdict, Verdict::Fail, "{}", g.detail);

    // .gitignore semantics on a real diff: a negation exempts, an escaped
    // star is literal, braces are alternatives, a bad class names itself.
    let q = Scratch::new(&[]);
    let docs = q.change(&[
        ("ledger/README.md", Some("how to read the ledger\n")),
        ("notes*.md", Some("star\n")),
    ]);
    let exempt = ["ledger/".to_owned(), "!ledger/README.md".to_owned()];
    assert_eq!(forbidden_paths_gate(&docs, &exempt).verdict, Verdict::Pass);
    let g = forbidden_paths_gate(&docs, &[r"notes\*.{md,txt}".to_owned()]);
    assert_eq!(g.verdict, Verdict::Fail, "{}", g.detail);
    assert!(g.detail.contains("notes*.md (matches"), "{}", g.detail);
    let g = forbidden_paths_gate(&docs, &["ok/".to_owned(), "[oops".to_owned()]);
    assert!(g.detail.contains("\"[oops\""), "{}", g.detail);

    // 1 + 1 + 2 lines.
    assert_eq!(diff_size_gate(&facts, Some(4)).verdict, Verdict::Pass);
    let g = diff_size_gate(&facts, Some(3));
    assert_eq!(g.verdict, Verdict::Fail);
    assert!(g.detail.starts_with("4 lines changed"), "{}", g.detail);
    assert_eq!(diff_size_gate(&facts, None).verdict, Verdict::Skipped);

    assert_eq!(
        budget_gate(1_500_000, Some(1_500_000)).verdict,
        Verdict::Pass
    );
    let g = budget_gate(1_500_001, Some(1_500_000));
    assert_eq!(g.verdict, Verdict::Fail);
    assert_eq!(g.detail, "cost $1.500001 of budget $1.500000");
    assert_eq!(budget_gate(7, None).verdict, Verdict::Skipped);
}

// ---------------------------------------------------------------- command gates

async fn gate_in(spec: &CommandGate, dir: &Path) -> GateResult {
    run_command_gate(spec, dir, &vnx_exec::CancelToken::new()).await
}

#[tokio::test]
async fn command_gate_pass_fail_and_cwd() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("marker"), "").unwrap();
    let g = gate_in(
        &CommandGate::new(["sh", "-c", "test -f marker"], 10_000),
        dir.path(),
    )
    .await;
    assert_eq!(
        (g.name.as_str(), g.verdict),
        ("command:sh -c test -f marker", Verdict::Pass)
    );
    assert!(g.detail.starts_with("exit 0"), "{}", g.detail);

    let script = "for i in $(seq 1 3000); do echo \"out line $i\"; done; echo boom >&2; exit 3";
    let mut spec = CommandGate::new(["sh", "-c", script], 10_000);
    spec.name = Some("unit tests".to_owned());
    let g = gate_in(&spec, dir.path()).await;
    assert_eq!((g.name.as_str(), g.verdict), ("unit tests", Verdict::Fail));
    assert!(g.detail.starts_with("exit 3"), "{}", g.detail);
    assert!(
        g.detail.contains("--- stderr tail ---\nboom"),
        "{}",
        g.detail
    );
    assert!(
        g.detail.contains("out line 3000"),
        "the tail, not the head: {}",
        g.detail
    );
    assert!(!g.detail.contains("out line 1\n"), "{}", g.detail);
    assert!(
        g.detail.len() < 2 * DEFAULT_TAIL_BYTES + 600,
        "{}",
        g.detail.len()
    );

    let key = fake_key("sk-ant-api03-");
    let spec = CommandGate::new(["sh", "-c", &format!("echo using {key}; exit 1")], 10_000);
    let g = gate_in(&spec, dir.path()).await;
    assert!(
        !g.detail.contains(&key) && g.detail.contains("[REDACTED anthropic-api-key]"),
        "{}",
        g.detail
    );
}

/// The outside finding: a PEM key printed by a command gate had only its
/// BEGIN line masked, and the tail was cut before redaction.
#[tokio::test]
async fn a_private_key_printed_by_a_gate_never_reaches_the_detail() {
    let dir = tempfile::tempdir().unwrap();
    let (block, body) = samples::pem("RSA PRIVATE KEY", 25, 77);
    fs::write(dir.path().join("key.pem"), format!("{block}\n")).unwrap();
    // Whole block in the tail, on stdout and on stderr.
    let g = gate_in(
        &CommandGate::new(["sh", "-c", "cat key.pem; cat key.pem >&2; exit 1"], 10_000),
        dir.path(),
    )
    .await;
    assert_eq!(g.verdict, Verdict::Fail);
    assert!(g.detail.contains("[REDACTED private-key]"), "{}", g.detail);
    for line in body.lines() {
        assert!(!g.detail.contains(line), "key line leaked: {}", g.detail);
    }
    // The tail's cut falls inside the block: its BEGIN line is cut away.
    let filler = "z".repeat(DEFAULT_TAIL_BYTES - 600);
    fs::write(dir.path().join("after.txt"), format!("{filler}\n")).unwrap();
    let g = gate_in(
        &CommandGate::new(["sh", "-c", "cat key.pem after.txt; exit 1"], 10_000),
        dir.path(),
    )
    .await;
    assert!(!g.detail.contains("BEGIN RSA"), "{}", g.detail);
    for line in body.lines() {
        assert!(!g.detail.contains(line), "key line leaked: {}", g.detail);
        assert!(
            !g.detail.contains(&line[..24]),
            "key piece leaked: {}",
            g.detail
        );
    }
    assert!(g.detail.contains("[REDACTED private-key]"), "{}", g.detail);
}

/// The outside finding: command gates inherited vnx's whole environment.
#[tokio::test]
async fn a_gate_inherits_only_the_allow_list_and_its_pass_env() {
    assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some() && std::env::var_os("PATH").is_some());
    let dir = tempfile::tempdir().unwrap();
    let mut spec = CommandGate::new(["sh", "-c", "env | sed 's/=.*//' | sort; exit 1"], 10_000);
    spec.tail_bytes = Some(16 * 1024);
    let g = gate_in(&spec, dir.path()).await;
    let names: Vec<&str> = g
        .detail
        .split("--- stdout tail ---\n")
        .nth(1)
        .unwrap()
        .lines()
        .collect();
    assert!(names.contains(&"PATH"), "{names:?}");
    assert!(!names.contains(&"CARGO_MANIFEST_DIR"), "{names:?}");
    let allowed = vnx_agents::base_env_allow_list();
    for name in &names {
        // sh adds PWD, SHLVL and `_` itself.
        assert!(
            allowed.allows(name) || ["PWD", "SHLVL", "_", "OLDPWD"].contains(name),
            "{name} reached the gate: {names:?}"
        );
    }
    spec.pass_env = vec!["CARGO_MANIFEST_DIR".to_owned()];
    spec.env = vec![("GATE_SET".to_owned(), "1".to_owned())];
    let g = gate_in(&spec, dir.path()).await;
    assert!(
        g.detail.contains("\nCARGO_MANIFEST_DIR\n") && g.detail.contains("\nGATE_SET\n"),
        "{}",
        g.detail
    );

    // What vnx holds and the gate does not get, resolved against a fixed parent.
    let parent = [
        ("ANTHROPIC_API_KEY", "k"),
        ("OPENAI_API_KEY", "k"),
        ("AWS_SECRET_ACCESS_KEY", "k"),
        ("GITHUB_TOKEN", "k"),
        ("CARGO_REGISTRY_TOKEN", "k"),
        ("HOME", "/h"),
        ("LC_ALL", "C"),
    ]
    .map(|(k, v)| (k.into(), v.into()));
    let resolved = CommandGate::new(["true"], 1000).child_env().resolve(parent);
    let names: Vec<_> = resolved.iter().map(|(k, _)| k.to_str().unwrap()).collect();
    assert_eq!(names, ["HOME", "LC_ALL"]);
}

#[tokio::test]
async fn command_gate_timeout_terms_then_kills_the_group() {
    let dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    // A grandchild holds the pipes open: the whole group must go.
    let g = gate_in(
        &CommandGate::new(["sh", "-c", "sleep 30 & sleep 30"], 300),
        dir.path(),
    )
    .await;
    let took = t.elapsed();
    assert_eq!(g.verdict, Verdict::Error);
    assert!(
        g.detail.starts_with("killed after the 300 ms timeout"),
        "{}",
        g.detail
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(g.duration_ms.unwrap() >= 300);

    // A command that ignores SIGTERM sees it first, then SIGKILL ends it.
    let script = "trap 'echo got TERM >&2' TERM; echo ready >&2; while :; do sleep 1; done";
    let mut spec = CommandGate::new(["sh", "-c", script], 1500);
    spec.term_grace_ms = Some(500);
    let g = gate_in(&spec, dir.path()).await;
    assert_eq!(g.verdict, Verdict::Error, "{}", g.detail);
    assert!(g.detail.contains("SIGKILL 500 ms later"), "{}", g.detail);
    assert!(g.detail.contains("got TERM"), "{}", g.detail);
}

#[tokio::test]
async fn a_cancelled_gate_is_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let cancel = vnx_exec::CancelToken::new();
    cancel.cancel();
    let t = Instant::now();
    let g = run_command_gate(
        &CommandGate::new(["sleep", "30"], 60_000),
        dir.path(),
        &cancel,
    )
    .await;
    assert_eq!(g.verdict, Verdict::Error, "{}", g.detail);
    assert!(g.detail.starts_with("interrupted"), "{}", g.detail);
    assert!(t.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn command_gate_that_cannot_start_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let g = gate_in(&CommandGate::new(["/no/such/program"], 1000), dir.path()).await;
    assert_eq!(g.verdict, Verdict::Error);
    assert!(g.detail.contains("could not start"), "{}", g.detail);
    let g = gate_in(&CommandGate::new(Vec::<String>::new(), 1000), dir.path()).await;
    assert_eq!(g.verdict, Verdict::Error);
    let g = gate_in(
        &CommandGate::new(["sh", "-c", "kill -9 $$"], 5000),
        dir.path(),
    )
    .await;
    assert_eq!(g.verdict, Verdict::Error, "{}", g.detail);
    assert!(g.detail.contains("signal"), "{}", g.detail);
}

// ---------------------------------------------------------------- cross-model review

#[test]
fn verdicts_parse_strictly() {
    let ok = r#"{"approve": true, "blocking": [], "suggestions": ["rename x"], "summary": "Looks right."}"#;
    let v = parse_verdict(ok).unwrap();
    assert!(v.approve && v.blocking.is_empty());
    assert_eq!(v.suggestions, ["rename x"]);
    let fenced = "Here you go:\n```json\n{\"approve\": false, \"blocking\": [{\"file\": \"src/a.rs\", \"line\": 3, \"issue\": \"off by one\"}], \"suggestions\": [], \"summary\": \"Bug.\"}\n```";
    let v = parse_verdict(fenced).unwrap();
    assert_eq!(v.blocking[0].file.as_deref(), Some("src/a.rs"));
    assert_eq!(v.blocking[0].line, Some(3));

    for bad in [
        "LGTM, approve!",
        r#"{"approve": true}"#,
        r#"{"approve": "yes", "blocking": [], "suggestions": [], "summary": "s"}"#,
        r#"{"approve": true, "blocking": [], "suggestions": [], "summary": "s", "confidence": 0.9}"#,
        r#"{"approve": true, "blocking": [{"file": "a"}], "suggestions": [], "summary": "s"}"#,
        r#"{"approve": true, "blocking": [], "suggestions": [], "summary": ""}"#,
        "",
    ] {
        let err = parse_verdict(bad).unwrap_err();
        assert!(matches!(err, GovernError::Verdict(_)), "{bad}: {err:?}");
        let g = review_gate(&Err(err), None, None);
        assert_eq!(g.verdict, Verdict::Error, "{bad} must never approve");
    }
    let missing = parse_verdict(r#"{"approve": true}"#)
        .unwrap_err()
        .to_string();
    assert!(
        missing.contains("blocking") && missing.contains("summary"),
        "{missing}"
    );
    assert!(parse_verdict(&"{".repeat(300_000)).is_err());
}

#[test]
fn review_gate_records_usage_and_judges_contradictions() {
    let usage = Usage {
        input_tokens: 1200,
        output_tokens: 80,
        cache_read_tokens: 0,
        cache_write_tokens: 0,
    };
    let approve = parse_verdict(
        r#"{"approve": true, "blocking": [], "suggestions": [], "summary": "Fine."}"#,
    );
    let g = review_gate(&approve, Some(usage), Some(4200));
    assert_eq!(
        (g.name.as_str(), g.layer, g.verdict),
        ("cross-review", GateLayer::CrossModel, Verdict::Pass)
    );
    assert_eq!((g.usage, g.cost_usd_micros), (Some(usage), Some(4200)));
    assert!(g.detail.contains("Fine."));

    let contradictory = parse_verdict(
        r#"{"approve": true, "blocking": [{"issue": "no tests"}], "suggestions": [], "summary": "ok"}"#,
    );
    let g = review_gate(&contradictory, None, None);
    assert_eq!(g.verdict, Verdict::Fail);
    assert!(g.detail.contains("blocking: no tests"), "{}", g.detail);

    let reject = parse_verdict(
        r#"{"approve": false, "blocking": [{"file": "a.rs", "line": 9, "issue": "panics on empty input"}], "suggestions": [], "summary": "Unsafe."}"#,
    );
    let g = review_gate(&reject, None, None);
    assert_eq!(g.verdict, Verdict::Fail);
    assert!(
        g.detail.contains("a.rs:9: panics on empty input"),
        "{}",
        g.detail
    );
}

#[test]
fn review_prompt_bounds_the_diff_and_asks_for_the_schema() {
    let diff = "diff --git a/a b/a\n+```rust\n+fn x() {}\n+```\n".repeat(100);
    let p = review_prompt("Add a --verbose flag", &diff, &valid_report(), 200);
    assert!(p.contains("Add a --verbose flag"));
    assert!(
        p.contains("\"approve\"") && p.contains("\"additionalProperties\": false"),
        "schema included"
    );
    assert!(
        p.contains(&format!("of {} bytes", diff.len())),
        "cut stated"
    );
    assert!(p.len() < 200 + 4000 + serde_json::to_string_pretty(&valid_report()).unwrap().len());
    assert!(
        p.contains("````diff"),
        "fence longer than the diff's own backtick runs"
    );
    assert!(p.contains("Added a --verbose flag and a test."));
    let full = review_prompt("t", "+x\n", &json!({}), DEFAULT_REVIEW_DIFF_BYTES);
    assert!(full.contains("+x\n") && !full.contains("bytes; the rest"));
}

#[test]
fn cross_review_runs_only_after_clean_deterministic_gates() {
    use GateLayer::{CrossModel, Deterministic};
    let gate = |verdict, layer| GateResult {
        name: "g".into(),
        layer,
        verdict,
        detail: String::new(),
        duration_ms: None,
        usage: None,
        cost_usd_micros: None,
    };
    assert!(should_run_cross_review(&[]));
    assert!(should_run_cross_review(&[
        gate(Verdict::Pass, Deterministic),
        gate(Verdict::Skipped, Deterministic)
    ]));
    assert!(!should_run_cross_review(&[
        gate(Verdict::Pass, Deterministic),
        gate(Verdict::Fail, Deterministic)
    ]));
    assert!(!should_run_cross_review(&[gate(
        Verdict::Error,
        Deterministic
    )]));
    assert!(should_run_cross_review(&[
        gate(Verdict::Pass, Deterministic),
        gate(Verdict::Error, CrossModel)
    ]));
}
