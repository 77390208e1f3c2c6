//! End to end: what `vnx gate` prints is accepted by the CI systems that
//! read it, whatever text a commit, a rejection or a path carries.
//!
//! - `--format junit` is validated against the Jenkins xUnit plugin's
//!   `junit-10.xsd` and the strict Ant `JUnit.xsd` (vendored in `tests/xsd/`)
//!   by `tests/xsd/validate.py` in the venv `tests/xsd/install.sh` makes;
//!   what a consumer reads back must hold every block's whole detail.
//! - `--format github` is parsed with the GitHub Actions runner's own rules
//!   (`ActionCommand.TryParseV2` of actions/runner): `::error
//!   file=…,line=…,title=…::message`, properties split on `,` and the first
//!   `=`, then unescaped `%0D`, `%0A`, `%3A`, `%2C`, `%25` in that order; the
//!   message `%0D`, `%0A`, `%25`. Every block must come back exactly, with a
//!   repository-relative `file`.
//! - `--format text` must not let a hostile string start a line that looks
//!   like the gate's own (`vnx gate:` or `BLOCK`).
//!
//! Blocks of every kind come from a real repository: real `vnx run`
//! dispatches (a `/bin/sh` command provider), real `ssh-keygen` keys, a
//! signed rejection with a hostile reason, a commit with a hostile subject
//! and author, a signed failed receipt and a stranger's unsigned records.

#![allow(clippy::unwrap_used)]

#[path = "run_common.rs"]
mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{Sandbox, all, plain_env, receipt};
use serde_json::Value;
use vnx_tests::TestKey;

const APPROVE_SKILL: &str = "---\nname: release\ndescription: Release notes a person signs off.\n\
profile: read-only\nediting: false\nrequires_approval: true\n---\n# Release\n\nReport what the release holds.\n";

/// What a hostile commit subject, author, reason or gate name tries: XML
/// metacharacters, a CDATA end, workflow-command syntax and its escapes,
/// terminal controls, and fake gate lines after a line break.
const HOSTILE: &str = "say \"hi\" & 'bye' <b>x</b> ]]> %0A %25 ::error title=x::forged, a:b \
                       \u{1b}[31mred\u{1b}[0m \u{7}\u{1}\u{7f}\u{85}\u{ffff}";
const FORGED_SUMMARY: &str = "vnx gate: pass — 0 record(s) verified";
const FORGED_BLOCK: &str = "BLOCK ledger/x.ndjson:1: nothing";

/// A sandbox whose default provider writes `change-<pid>.md` and reports
/// success, plus the `release` skill, which requires approval.
fn sandbox() -> Sandbox {
    let sb = Sandbox::new("");
    let report = serde_json::json!({"summary": "wrote a note", "files_changed": []}).to_string();
    let final_event = serde_json::json!({"type": "result", "subtype": "success", "is_error": false, "result": report});
    let final_file = sb.tmp.path().join("final.json");
    std::fs::write(&final_file, format!("{final_event}\n")).unwrap();
    let script = format!(
        "echo 'a note' > change-$$.md && cat {}",
        final_file.display()
    );
    let toml = format!(
        "[run]\nprovider = \"writer\"\ncross_review = false\n\n[retry]\nmax_retries = 0\n\n\
         [providers.writer]\nkind = \"command\"\nbinary = \"/bin/sh\"\nargv = [\"sh\", \"-c\", {}]\n\
         output = \"claude-stream-json\"\n",
        serde_json::to_string(&script).unwrap(),
    );
    std::fs::write(sb.repo.join("vnx.toml"), toml).unwrap();
    let dir = sb.repo.join(".vnx/skills/release");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("SKILL.md"), APPROVE_SKILL).unwrap();
    sb.git(&["add", "-A"]);
    sb.git(&["commit", "-qm", "vnx config"]);
    sb
}

fn vnx(sb: &Sandbox, args: &[&str]) -> Output {
    sb.run_vnx(&plain_env(&sb.home), args)
}

/// `vnx <args>` run in `cwd` instead of the repository root.
fn vnx_in(sb: &Sandbox, cwd: &Path, args: &[&str]) -> Output {
    let mut cmd = sb.vnx(&plain_env(&sb.home), args);
    cmd.current_dir(cwd);
    cmd.output().unwrap()
}

fn vnx_stdin(sb: &Sandbox, args: &[&str], stdin: &str) -> Output {
    let mut cmd = sb.vnx(&plain_env(&sb.home), args);
    cmd.stdin(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "vnx {args:?}: {}", all(&out));
    out
}

/// A passed `release` dispatch fast-forwarded into the current branch; its id.
fn merged_release(sb: &Sandbox, task: &str) -> String {
    let r = receipt(&vnx(sb, &["run", "--json", "--skill", "release", task]));
    assert_eq!(r["status"], "passed", "{r:#}");
    let id = r["dispatch_id"].as_str().unwrap().to_owned();
    sb.git(&["merge", "-q", "--ff-only", &format!("vnx/{id}")]);
    id
}

/// A commit of `name` with `subject` by an author named `author`, unsigned.
fn hostile_commit(sb: &Sandbox, name: &str, subject: &str, author: &str) -> String {
    std::fs::write(sb.repo.join(name), "x\n").unwrap();
    sb.git(&["add", name]);
    let out = Command::new("git")
        .args(["-c", &format!("user.name={author}")])
        .args(["commit", "-q", "--no-gpg-sign", "-m", subject])
        .current_dir(&sb.repo)
        .output()
        .unwrap();
    assert!(out.status.success(), "git commit: {}", all(&out));
    sb.git(&["rev-parse", "HEAD"])
}

/// A failed receipt of a made-up dispatch that names `head` (whose parent
/// is its base), appended and signed with the sandbox's trusted key.
fn failed_receipt(sb: &Sandbox, head: &str, failed_gate: &str) {
    let base = sb.git(&["rev-parse", &format!("{head}~1")]);
    let tree = sb.git(&["rev-parse", &format!("{head}^{{tree}}")]);
    let gate = serde_json::json!({"name": failed_gate, "layer": "deterministic", "verdict": "fail", "detail": "d"});
    let body = serde_json::json!({
        "dispatch_id": "d-failed", "status": "failed", "provider": "claude", "lane": "headless",
        "billing": "subscription", "outcome": "success",
        "usage": {"input_tokens": 1, "output_tokens": 1, "cache_read_tokens": 0, "cache_write_tokens": 0},
        "cost_usd_micros": 1, "cost_source": "reported", "duration_ms": 1,
        "instruction": {"sha256": "0".repeat(64), "parts": []}, "attempts": [],
        "report": {"origin": "synthesized", "sha256": "1".repeat(64), "valid": false},
        "gates": [gate],
        "git": {"base": base, "head": head, "head_tree": tree, "worktree": "."},
    });
    let input = serde_json::json!({"kind": "dispatch.receipt", "body": body}).to_string();
    vnx_stdin(sb, &["ledger", "append"], &input);
}

fn commit_ledger(sb: &Sandbox, message: &str) {
    sb.git(&["add", "ledger"]);
    sb.git(&["commit", "-q", "--no-gpg-sign", "-m", message]);
}

/// A repository on branch `feature` whose range from the returned base
/// blocks in every way a branch can: unapproved, rejected (with a hostile
/// reason), uncovered (hostile subject and author), a failed receipt (with
/// a hostile gate name) and unauthenticated records.
fn every_block(sb: &Sandbox) -> String {
    let base = sb.git(&["rev-parse", "HEAD"]);
    sb.git(&["checkout", "-q", "-b", "feature"]);

    merged_release(sb, "Draft the notes");
    let rejected = merged_release(sb, "Draft other notes");
    let reason = format!("{HOSTILE}\n{FORGED_SUMMARY}\r\n{FORGED_BLOCK}\rend");
    let out = vnx(sb, &["approve", &rejected, "--reject", "--reason", &reason]);
    assert!(out.status.success(), "{}", all(&out));
    commit_ledger(sb, "reject the other notes");

    hostile_commit(
        sb,
        "hack.txt",
        &format!("{HOSTILE} {FORGED_SUMMARY}\r{FORGED_BLOCK}"),
        &format!("Eve {HOSTILE}"),
    );
    let failed = hostile_commit(sb, "failed.txt", "work of a failed dispatch", "Mallory");
    failed_receipt(sb, &failed, &format!("no-placeholders\n{FORGED_SUMMARY}"));
    commit_ledger(sb, "the failed dispatch's receipt");

    let stranger = TestKey::new(&sb.tmp.path().join("keys"), "stranger");
    stranger.configure(&sb.repo);
    vnx_stdin(
        sb,
        &[
            "ledger",
            "append",
            "--segment",
            "stranger@x--feature.ndjson",
        ],
        "{\"kind\":\"note\",\"body\":{\"text\":\"trust me\"}}\n",
    );
    commit_ledger(sb, "a stranger's records");
    sb.key.configure(&sb.repo);
    base
}

// ---- reading the formats as their consumers do --------------------------

/// The venv's Python, made by `tests/xsd/install.sh` (which `tests/run.sh` runs).
fn python() -> PathBuf {
    let python = vnx_tests::workspace_root().join("tests/.venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `bash tests/xsd/install.sh` (tests/run.sh does) to make the venv \
         with the pinned lxml that validates JUnit reports",
        python.display()
    );
    python
}

/// Validates `xml` against both vendored schemas; what a consumer reads
/// from it (see `tests/xsd/validate.py`).
fn junit_read(xml: &str, scratch: &Path) -> Value {
    let file = scratch.join("report.xml");
    std::fs::write(&file, xml).unwrap();
    let xsd = vnx_tests::workspace_root().join("tests/xsd");
    let out = Command::new(python())
        .arg(xsd.join("validate.py"))
        .arg(&file)
        .arg(xsd.join("junit-10.xsd"))
        .arg(xsd.join("JUnit.xsd"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the JUnit report is not valid:\n{}\n--- report\n{xml}",
        all(&out)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// One workflow command, as the Actions runner reads it.
#[derive(Debug)]
struct Annotation {
    command: String,
    properties: BTreeMap<String, String>,
    data: String,
}

/// `ActionCommand.TryParseV2` of actions/runner, line for line.
fn parse_workflow_command(line: &str) -> Option<Annotation> {
    let message = line.trim_start();
    let rest = message.strip_prefix("::")?;
    let end = rest.find("::")?;
    let info = &rest[..end];
    let (command, props) = match info.find(' ') {
        Some(i) => (&info[..i], Some(info[i + 1..].trim())),
        None => (info, None),
    };
    let mut properties = BTreeMap::new();
    for prop in props
        .into_iter()
        .flat_map(|p| p.split(','))
        .filter(|p| !p.is_empty())
    {
        let pair: Vec<&str> = prop.splitn(2, '=').filter(|s| !s.is_empty()).collect();
        if let [key, value] = pair[..] {
            let value = [
                ("%0D", "\r"),
                ("%0A", "\n"),
                ("%3A", ":"),
                ("%2C", ","),
                ("%25", "%"),
            ]
            .iter()
            .fold(value.to_owned(), |v, (from, to)| v.replace(from, to));
            properties.insert(key.to_ascii_lowercase(), value);
        }
    }
    let data = [("%0D", "\r"), ("%0A", "\n"), ("%25", "%")]
        .iter()
        .fold(rest[end + 2..].to_owned(), |v, (from, to)| {
            v.replace(from, to)
        });
    Some(Annotation {
        command: command.to_owned(),
        properties,
        data,
    })
}

fn annotations(stdout: &[u8]) -> Vec<Annotation> {
    let text = String::from_utf8(stdout.to_vec()).unwrap();
    text.split('\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            parse_workflow_command(l).unwrap_or_else(|| panic!("not a workflow command: {l:?}"))
        })
        .collect()
}

/// Lines as a terminal or a log viewer shows them: a CR starts one too.
fn screen_lines(text: &str) -> Vec<&str> {
    text.split(['\n', '\r']).collect()
}

/// How the JUnit report shows a character XML 1.0 cannot carry (C0
/// controls but tab, LF, CR; U+FFFE, U+FFFF) or that XML 1.1 would take
/// differently (DEL, C1 controls): as Rust's `\u{…}` escape.
fn xml_visible(s: &str) -> String {
    s.chars()
        .map(|c| {
            if (c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
                || matches!(c, '\u{fffe}' | '\u{ffff}')
            {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A block's path from `--format json` (absolute), relative to `root`.
fn rel_path(block: &Value, root: &Path) -> String {
    let path = Path::new(block["path"].as_str().unwrap());
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_str()
        .unwrap()
        .to_owned()
}

/// A block's detail with the repository root taken out of the paths it names.
fn rel_detail(block: &Value, root: &Path) -> String {
    block["detail"]
        .as_str()
        .unwrap()
        .replace(&format!("{}/", root.display()), "")
}

fn reason_label(reason: &str) -> &'static str {
    match reason {
        "verification" => "ledger does not verify",
        "not_append_only" => "not append-only",
        "failed_receipt" => "failed receipt",
        "orphan" => "orphaned dispatch",
        "unapproved" => "unapproved",
        "rejected" => "rejected",
        "uncovered" => "commit not covered",
        "unauthenticated" => "unauthenticated",
        "unchecked" => "could not be checked",
        other => panic!("unknown reason {other}"),
    }
}

// ---- the tests -----------------------------------------------------------

#[test]
fn every_kind_of_block_with_hostile_text_reaches_each_consumer_whole() {
    let sb = sandbox();
    let base = every_block(&sb);
    let root = sb.repo.clone();

    let out = vnx(&sb, &["gate", "--base", &base, "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", all(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let blocks = report["blocks"].as_array().unwrap().clone();
    let mut reasons: Vec<&str> = blocks
        .iter()
        .map(|b| b["reason"].as_str().unwrap())
        .collect();
    reasons.sort_unstable();
    reasons.dedup();
    assert_eq!(
        reasons,
        [
            "failed_receipt",
            "rejected",
            "unapproved",
            "unauthenticated",
            "uncovered"
        ],
        "{report:#}"
    );
    let details: Vec<&str> = blocks
        .iter()
        .map(|b| b["detail"].as_str().unwrap())
        .collect();
    for hostile in [HOSTILE, FORGED_SUMMARY, FORGED_BLOCK] {
        assert!(
            details.iter().any(|d| d.contains(hostile)),
            "the scenario carries {hostile:?} into a block: {details:#?}"
        );
    }

    // JUnit: valid for Jenkins and Ant; every block's whole detail is in a
    // failure's message and text; no absolute path.
    let out = vnx(&sb, &["gate", "--base", &base, "--format", "junit"]);
    assert_eq!(out.status.code(), Some(1), "{}", all(&out));
    let xml = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(
        !xml.contains(sb.tmp.path().to_str().unwrap()),
        "absolute paths in the report:\n{xml}"
    );
    let read = junit_read(&xml, sb.tmp.path());
    let suite = &read["suites"][0];
    let cases = suite["cases"].as_array().unwrap();
    let failed: Vec<&Value> = cases.iter().filter(|c| !c["failure"].is_null()).collect();
    assert_eq!(
        suite["attributes"]["failures"],
        failed.len().to_string(),
        "{suite:#}"
    );
    assert_eq!(suite["attributes"]["tests"], cases.len().to_string());
    for block in &blocks {
        let detail = xml_visible(&rel_detail(block, &root));
        let reason = block["reason"].as_str().unwrap();
        let hit = failed.iter().find(|c| {
            let f = &c["failure"];
            let message = f["attributes"]["message"].as_str().unwrap();
            let text = f["text"].as_str().unwrap();
            message.contains(&detail)
                && text.contains(&detail)
                && f["attributes"]["type"]
                    .as_str()
                    .unwrap()
                    .split(", ")
                    .any(|t| t == reason)
        });
        assert!(
            hit.is_some(),
            "no failure carries the whole {reason} detail {detail:?}:\n{xml}"
        );
        if !rel_path(block, &root).is_empty() {
            let located = format!("{}:{}", rel_path(block, &root), block["line"]);
            let location = if block["line"] == 0 {
                rel_path(block, &root)
            } else {
                located
            };
            assert!(
                failed.iter().any(|c| c["failure"]["text"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("{location}: {}: {detail}", reason_label(reason)))),
                "no failure names {location} for {detail:?}:\n{xml}"
            );
        }
    }
    assert_eq!(suite["properties"]["base"], report["base"], "{suite:#}");
    assert_eq!(suite["properties"]["head"], report["head"], "{suite:#}");

    // GitHub: every block comes back exactly, at a repository-relative file.
    let out = vnx(&sb, &["gate", "--base", &base, "--format", "github"]);
    assert_eq!(out.status.code(), Some(1), "{}", all(&out));
    let notes = annotations(&out.stdout);
    let errors: Vec<&Annotation> = notes.iter().filter(|a| a.command == "error").collect();
    assert_eq!(errors.len(), blocks.len(), "{notes:#?}");
    for (block, note) in blocks.iter().zip(&errors) {
        let reason = block["reason"].as_str().unwrap();
        assert_eq!(
            note.properties.get("title").map(String::as_str),
            Some(reason_label(reason)),
            "{note:#?}"
        );
        let detail = rel_detail(block, &root);
        let path = rel_path(block, &root);
        if path.is_empty() {
            assert_eq!(note.properties.get("file"), None, "{note:#?}");
            let commit = block["commit"].as_str().unwrap();
            assert_eq!(
                note.data,
                format!("commit {}: {detail}", &commit[..12]),
                "{note:#?}"
            );
        } else {
            assert_eq!(note.properties.get("file"), Some(&path), "{note:#?}");
            assert!(path.starts_with("ledger/"), "{path}");
            let line = block["line"].as_u64().unwrap();
            let want_line = (line > 0).then(|| line.to_string());
            assert_eq!(note.properties.get("line"), want_line.as_ref(), "{note:#?}");
            assert_eq!(note.data, detail, "{note:#?}");
        }
    }
    assert_eq!(notes.last().unwrap().command, "notice");

    // The same from a subdirectory with a relative --ledger, and with ./ledger.
    let sub = root.join("docs");
    std::fs::create_dir_all(&sub).unwrap();
    for (cwd, ledger) in [(&sub, "../ledger"), (&root, "./ledger"), (&root, "ledger")] {
        let out = vnx_in(
            &sb,
            cwd,
            &[
                "gate", "--base", &base, "--ledger", ledger, "--format", "github",
            ],
        );
        assert_eq!(out.status.code(), Some(1), "{}", all(&out));
        let files: Vec<String> = annotations(&out.stdout)
            .into_iter()
            .filter_map(|a| a.properties.get("file").cloned())
            .collect();
        assert!(!files.is_empty());
        for file in files {
            assert!(
                file.starts_with("ledger/") && !file.contains(".."),
                "--ledger {ledger} in {}: file={file}",
                cwd.display()
            );
        }
    }

    // Text: one summary line, one BLOCK line per block, none forged.
    let out = vnx(&sb, &["gate", "--base", &base]);
    assert_eq!(out.status.code(), Some(1), "{}", all(&out));
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    let lines = screen_lines(text.trim_end_matches('\n'));
    let summaries: Vec<&&str> = lines
        .iter()
        .filter(|l| l.starts_with("vnx gate:"))
        .collect();
    assert_eq!(summaries.len(), 1, "forged summary lines:\n{text}");
    assert!(
        lines.last().unwrap().starts_with("vnx gate: BLOCKED"),
        "{text}"
    );
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("BLOCK")).count(),
        blocks.len(),
        "forged BLOCK lines:\n{text}"
    );
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "{text}"
    );
    assert!(
        !text.contains(sb.tmp.path().to_str().unwrap()),
        "absolute paths:\n{text}"
    );
    assert!(
        text.contains("\\nvnx gate: pass") && text.contains("\\rBLOCK"),
        "the reason is shown, escaped:\n{text}"
    );
}

#[test]
fn a_hostile_ledger_path_is_whole_and_relative_in_every_format() {
    let sb = sandbox();
    let name = "led\nger, a:b%0A c";
    let dir = sb.repo.join(name);
    let started = serde_json::json!({"kind": "dispatch.started", "body": {"dispatch_id": "d-1",
        "provider": "claude", "lane": "headless", "billing": "subscription",
        "instruction_sha256": "0".repeat(64)}});
    vnx_stdin(
        &sb,
        &["ledger", "append", "--ledger", name],
        &format!("{started}\n"),
    );
    let segment = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .find(|n| n.ends_with(".ndjson"))
        .unwrap();
    let file = dir.join(&segment);
    let content = std::fs::read_to_string(&file)
        .unwrap()
        .replacen("\"d-1\"", "\"d-X\"", 1);
    std::fs::write(&file, content).unwrap();
    let rel = format!("{name}/{segment}");

    let sub = sb.repo.join("docs");
    std::fs::create_dir_all(&sub).unwrap();
    let relative = format!("../{name}");
    for (cwd, ledger) in [(&sb.repo, name), (&sub, relative.as_str())] {
        let gate = |format: &str| {
            let out = vnx_in(&sb, cwd, &["gate", "--ledger", ledger, "--format", format]);
            assert_eq!(out.status.code(), Some(1), "{format}: {}", all(&out));
            String::from_utf8(out.stdout).unwrap()
        };

        let notes = annotations(gate("github").as_bytes());
        let error = notes.iter().find(|a| a.command == "error").unwrap();
        assert_eq!(error.properties.get("file"), Some(&rel), "{notes:#?}");
        assert_eq!(
            error.properties.get("title").map(String::as_str),
            Some("ledger does not verify")
        );

        let xml = gate("junit");
        let read = junit_read(&xml, sb.tmp.path());
        let failure = read["suites"][0]["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find_map(|c| c["failure"].as_object())
            .unwrap_or_else(|| panic!("no failure:\n{xml}"))
            .clone();
        let message = failure["attributes"]["message"].as_str().unwrap();
        let (at, rest) = message.split_once(": ledger does not verify: ").unwrap();
        assert!(
            at.strip_prefix(&format!("{rel}:"))
                .is_some_and(|line| line.parse::<u64>().is_ok()),
            "{message:?}"
        );
        assert!(rest.contains("does not match its hash"), "{message:?}");
        assert!(failure["text"].as_str().unwrap().starts_with(&rel), "{xml}");

        let text = gate("text");
        assert!(
            text.contains(&format!("BLOCK {}:", rel.replace('\n', "\\n"))),
            "{text}"
        );
        assert_eq!(
            screen_lines(text.trim_end_matches('\n'))
                .iter()
                .filter(|l| l.starts_with("BLOCK"))
                .count(),
            1,
            "{text}"
        );
    }
}

#[test]
fn a_passing_gate_is_a_valid_report_without_failures() {
    let sb = sandbox();
    let base = sb.git(&["rev-parse", "HEAD"]);
    sb.git(&["checkout", "-q", "-b", "feature"]);
    let r = receipt(&vnx(
        &sb,
        &["run", "--json", "--skill", "docs", "Write a note"],
    ));
    assert_eq!(r["status"], "passed", "{r:#}");
    let id = r["dispatch_id"].as_str().unwrap();
    sb.git(&["merge", "-q", "--ff-only", &format!("vnx/{id}")]);

    let out = vnx(&sb, &["gate", "--base", &base, "--format", "junit"]);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    let xml = String::from_utf8(out.stdout).unwrap();
    let read = junit_read(&xml, sb.tmp.path());
    let suite = &read["suites"][0];
    assert_eq!(suite["attributes"]["failures"], "0", "{xml}");
    assert_eq!(suite["attributes"]["errors"], "0", "{xml}");
    let cases = suite["cases"].as_array().unwrap();
    assert!(
        cases
            .iter()
            .any(|c| c["attributes"]["name"] == format!("dispatch {id}")),
        "{xml}"
    );
    assert!(
        cases
            .iter()
            .all(|c| c["failure"].is_null() && c["error"].is_null()),
        "{xml}"
    );
    assert!(
        suite["system_out"]
            .as_str()
            .unwrap()
            .contains("vnx gate: pass"),
        "{xml}"
    );

    let out = vnx(&sb, &["gate", "--base", &base, "--format", "github"]);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    let notes = annotations(&out.stdout);
    assert_eq!(notes.len(), 1, "{notes:#?}");
    assert_eq!(notes[0].command, "notice");
    assert!(notes[0].data.starts_with("commits: "), "{notes:#?}");
}

#[test]
fn what_could_not_be_checked_is_a_junit_error() {
    let sb = sandbox();
    std::fs::write(
        sb.repo.join("ledger/allowed_signers"),
        "this is not an allowed_signers line\n",
    )
    .unwrap();
    sb.git(&["commit", "-qam", "break the trust anchors"]);

    let out = vnx(&sb, &["gate", "--base", "HEAD", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", all(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["blocks"][0]["reason"], "unchecked", "{report:#}");
    let detail = rel_detail(&report["blocks"][0], &sb.repo);

    let out = vnx(&sb, &["gate", "--base", "HEAD", "--format", "junit"]);
    assert_eq!(out.status.code(), Some(1), "{}", all(&out));
    let xml = String::from_utf8(out.stdout).unwrap();
    let read = junit_read(&xml, sb.tmp.path());
    let suite = &read["suites"][0];
    assert_eq!(suite["attributes"]["errors"], "1", "{xml}");
    assert_eq!(suite["attributes"]["failures"], "0", "{xml}");
    let error = suite["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|c| c["error"].as_object())
        .unwrap_or_else(|| panic!("no error:\n{xml}"));
    assert_eq!(error["attributes"]["type"], "unchecked");
    assert!(
        error["attributes"]["message"]
            .as_str()
            .unwrap()
            .contains(&xml_visible(&detail)),
        "{xml}"
    );
}
