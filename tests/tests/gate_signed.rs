//! End to end: `vnx gate --base` decides on code, with real keys.
//!
//! Keys are made by the real `ssh-keygen`; vnx's segment signatures are also
//! checked by `ssh-keygen -Y verify` itself, and people's signed commits are
//! made by `git commit -S` and checked by `git verify-commit`. Dispatches
//! are real `vnx run`s whose worker is a `command` provider (`/bin/sh`)
//! that writes a file and prints a claude-format final event.

#![allow(clippy::unwrap_used)]

#[path = "run_common.rs"]
mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{Sandbox, WRITER, all, git, plain_env, receipt};
use serde_json::Value;
use vnx_tests::TestKey;

const APPROVE_SKILL: &str = "---\nname: release\ndescription: Release notes a person signs off.\n\
profile: read-only\nediting: false\nrequires_approval: true\n---\n# Release\n\nReport what the release holds.\n";

/// A sandbox whose default provider writes `change-<pid>.md` and reports
/// success; `empty` writes nothing; plus the `release` skill.
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
         output = \"claude-stream-json\"\n\n\
         [providers.empty]\nkind = \"command\"\nbinary = \"/bin/sh\"\nargv = [\"sh\", \"-c\", {}]\n\
         output = \"claude-stream-json\"\n",
        serde_json::to_string(&script).unwrap(),
        serde_json::to_string(&format!("cat {}", final_file.display())).unwrap(),
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

/// A dispatch run with `--json`; its receipt.
fn dispatch(sb: &Sandbox, args: &[&str]) -> Value {
    let mut argv = vec!["run", "--json"];
    if !args.contains(&"--skill") {
        argv.extend(["--skill", "docs"]);
    }
    argv.extend_from_slice(args);
    receipt(&vnx(sb, &argv))
}

fn gate(sb: &Sandbox, base: &str, format: &str) -> Output {
    vnx(sb, &["gate", "--base", base, "--format", format])
}

fn gate_json(sb: &Sandbox, base: &str) -> (i32, Value) {
    let out = gate(sb, base, "json");
    let code = out.status.code().unwrap_or(-1);
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("gate json: {e}\n{}", all(&out)));
    (code, json)
}

fn reasons(report: &Value) -> Vec<String> {
    report["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["reason"].as_str().unwrap().to_owned())
        .collect()
}

fn status_clean(sb: &Sandbox) -> String {
    sb.git(&["status", "--porcelain", "--untracked-files=all"])
}

fn commit_file(repo: &Path, name: &str, text: &str, extra: &[&str]) -> String {
    std::fs::write(repo.join(name), text).unwrap();
    git(repo, &["add", name]);
    let mut args = vec!["commit", "-q", "-m"];
    let msg = format!("add {name}");
    args.push(&msg);
    args.extend_from_slice(extra);
    git(repo, &args);
    git(repo, &["rev-parse", "HEAD"])
}

#[test]
fn the_honest_workflow_passes_and_leaves_git_status_clean() {
    let sb = sandbox();
    let base = sb.git(&["rev-parse", "HEAD"]);

    let first = dispatch(&sb, &["Write a note"]);
    assert_eq!(first["status"], "passed", "{first:#}");
    assert_eq!(status_clean(&sb), "", "git status after a run");
    let second = dispatch(&sb, &["Write another note"]);
    assert_eq!(second["status"], "passed", "{second:#}");
    // A failed run (nothing changed for a docs skill) stays local history.
    let failed = dispatch(&sb, &["--provider", "empty", "Write nothing"]);
    assert_ne!(failed["status"], "passed", "{failed:#}");
    assert_eq!(status_clean(&sb), "", "git status after three runs");

    // Each receipt names exactly its commits: base, head and the head's tree.
    let git_facts = &first["git"];
    let head = git_facts["head"].as_str().unwrap();
    assert_eq!(
        git_facts["head_tree"].as_str().unwrap(),
        sb.git(&["rev-parse", &format!("{head}^{{tree}}")])
    );
    // The dispatch commit names its dispatch in a trailer.
    let id1 = first["dispatch_id"].as_str().unwrap();
    let trailer = sb.git(&[
        "log",
        "-1",
        "--format=%(trailers:key=Vnx-Dispatch,valueonly)",
        head,
    ]);
    assert_eq!(trailer.trim(), id1);

    // The branch segment's signature verifies with ssh-keygen alone.
    let branch1 = format!("vnx/{id1}");
    let segment = vnx_ledger::default_segment_name(WRITER, &format!("vnx_{id1}"));
    let sig_text = sb.git(&["show", &format!("{branch1}:ledger/{segment}.sig")]) + "\n";
    let (message, signature) = sig_text.split_once("\n\n").unwrap();
    let dir = sb.tmp.path().join("check");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("msg"), format!("{message}\n")).unwrap();
    std::fs::write(dir.join("msg.sig"), signature).unwrap();
    std::fs::write(dir.join("allowed"), sb.key.allowed_line(WRITER, None)).unwrap();
    let verified = Command::new("ssh-keygen")
        .args(["-Y", "verify", "-f"])
        .arg(dir.join("allowed"))
        .args(["-I", WRITER, "-n", "vnx-ledger", "-s"])
        .arg(dir.join("msg.sig"))
        .stdin(std::fs::File::open(dir.join("msg")).unwrap())
        .output()
        .unwrap();
    assert!(
        verified.status.success(),
        "ssh-keygen -Y verify: {}",
        all(&verified)
    );

    // Merge both dispatch branches into a feature branch, one as a merge commit.
    sb.git(&["checkout", "-q", "-b", "feature"]);
    sb.git(&["merge", "-q", "--ff-only", &branch1]);
    let branch2 = format!("vnx/{}", second["dispatch_id"].as_str().unwrap());
    sb.git(&[
        "merge",
        "-q",
        "--no-ff",
        "-m",
        "merge the second note",
        &branch2,
    ]);
    let (code, report) = gate_json(&sb, &base);
    assert_eq!(code, 0, "{report:#}");
    let kinds: Vec<&str> = report["commits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["covered_by"]["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"receipt"), "{kinds:?}");
    assert!(kinds.contains(&"clean_merge"), "{kinds:?}");
    assert!(kinds.contains(&"ledger_only"), "{kinds:?}");
    let text = all(&gate(&sb, &base, "text"));
    assert!(text.contains("vnx gate: pass"), "{text}");
    // The merged receipts are listed as signed by their writer; the local
    // journal's copies as local.
    let list = all(&vnx(&sb, &["receipts", "list", "--json"]));
    let signers: Vec<String> = list
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| r["dispatch_id"] == id1)
        .map(|r| r["signed_by"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(signers.len(), 2, "{list}");
    assert!(
        signers.contains(&WRITER.to_owned()) && signers.contains(&"local".to_owned()),
        "{list}"
    );
    assert!(text.contains("0 not covered"), "{text}");
}

#[test]
fn code_that_no_dispatch_made_is_blocked_unless_a_trusted_person_signed_it() {
    let sb = sandbox();
    let base = sb.git(&["rev-parse", "HEAD"]);
    sb.git(&["checkout", "-q", "-b", "feature"]);
    // Omission: plain code, no dispatch, no signature.
    let unsigned = commit_file(&sb.repo, "hack.txt", "x\n", &["--no-gpg-sign"]);
    let (code, report) = gate_json(&sb, &base);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(reasons(&report), vec!["uncovered"]);
    let block = &report["blocks"][0];
    assert_eq!(block["commit"], unsigned.as_str());
    let detail = block["detail"].as_str().unwrap();
    assert!(
        detail.contains("not signed") && detail.contains("vnx run"),
        "{detail}"
    );
    assert!(detail.contains("add hack.txt"), "{detail}");

    // A person's own commit, signed with a key allowed_signers lists, passes.
    sb.git(&["reset", "-q", "--hard", &base]);
    let signed = commit_file(&sb.repo, "fix.txt", "y\n", &["-S"]);
    let verify = Command::new("git")
        .args(["-c"])
        .arg(format!(
            "gpg.ssh.allowedSignersFile={}",
            sb.repo.join("ledger/allowed_signers").display()
        ))
        .args(["verify-commit", &signed])
        .current_dir(&sb.repo)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "git verify-commit: {}",
        all(&verify)
    );
    let (code, report) = gate_json(&sb, &base);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["commits"][0]["covered_by"]["kind"], "signature");
    assert_eq!(report["commits"][0]["covered_by"]["principal"], WRITER);

    // Signed by a key nobody listed: blocked, and git's reason is given.
    let stranger = TestKey::new(&sb.tmp.path().join("keys"), "stranger");
    stranger.configure(&sb.repo);
    commit_file(&sb.repo, "other.txt", "z\n", &["-S"]);
    let (code, report) = gate_json(&sb, &base);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(reasons(&report), vec!["uncovered"]);
    assert!(
        report["blocks"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("not by a key"),
        "{report:#}"
    );
}

#[test]
fn forged_receipts_are_unauthenticated_even_when_the_branch_adds_their_key() {
    let sb = sandbox();
    let base = sb.git(&["rev-parse", "HEAD"]);
    sb.git(&["checkout", "-q", "-b", "feature"]);
    // The forger's own key, not in allowed_signers at the base.
    let forger = TestKey::new(&sb.tmp.path().join("keys"), "forger");
    forger.configure(&sb.repo);
    let code_commit = commit_file(&sb.repo, "evil.txt", "x\n", &["--no-gpg-sign"]);
    let tree = sb.git(&["rev-parse", &format!("{code_commit}^{{tree}}")]);
    let body = serde_json::json!({
        "dispatch_id": "d-forged", "status": "passed", "provider": "claude", "lane": "headless",
        "billing": "subscription", "outcome": "success",
        "usage": {"input_tokens": 1, "output_tokens": 1, "cache_read_tokens": 0, "cache_write_tokens": 0},
        "cost_usd_micros": 1, "cost_source": "reported", "duration_ms": 1,
        "instruction": {"sha256": "0".repeat(64), "parts": []}, "attempts": [],
        "report": {"origin": "synthesized", "sha256": "1".repeat(64), "valid": false}, "gates": [],
        "git": {"base": base, "head": code_commit, "head_tree": tree, "worktree": "."},
    });
    let input = serde_json::json!({"kind": "dispatch.receipt", "body": body}).to_string();
    let mut append = sb.vnx(&plain_env(&sb.home), &["ledger", "append"]);
    append.stdin(std::process::Stdio::piped());
    let mut child = append.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", all(&out));
    sb.git(&["add", "ledger"]);
    sb.git(&["commit", "-q", "--no-gpg-sign", "-m", "a receipt"]);

    let (code, report) = gate_json(&sb, &base);
    assert_eq!(code, 1, "{report:#}");
    let r = reasons(&report);
    assert!(r.contains(&"unauthenticated".to_owned()), "{r:?}");
    assert!(r.contains(&"uncovered".to_owned()), "{r:?}");
    let text = serde_json::to_string(&report["blocks"]).unwrap();
    assert!(
        text.contains("not listed") || text.contains("allowed_signers"),
        "{text}"
    );

    // `vnx receipts list` does not present the forged receipt as vouched for.
    let list = all(&vnx(&sb, &["receipts", "list", "--json"]));
    let row: Value = list
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|r| r["dispatch_id"] == "d-forged")
        .unwrap();
    assert_eq!(row["signed_by"], "unsigned", "{list}");

    // Adding the forger's key to allowed_signers on the same branch changes nothing.
    let mut signers = std::fs::read_to_string(sb.repo.join("ledger/allowed_signers")).unwrap();
    signers.push_str(&forger.allowed_line("forger@evil", None));
    std::fs::write(sb.repo.join("ledger/allowed_signers"), signers).unwrap();
    sb.git(&["commit", "-q", "-am", "trust me", "-S"]);
    let (code, report) = gate_json(&sb, &base);
    assert_eq!(code, 1, "{report:#}");
    assert!(
        reasons(&report).contains(&"unauthenticated".to_owned()),
        "{report:#}"
    );
}

#[test]
fn a_rewritten_and_re_signed_segment_is_still_caught_as_not_append_only() {
    let sb = sandbox();
    let first = dispatch(&sb, &["Write a note"]);
    assert_eq!(first["status"], "passed", "{first:#}");
    let branch = format!("vnx/{}", first["dispatch_id"].as_str().unwrap());
    sb.git(&["merge", "-q", "--ff-only", &branch]);
    let base = sb.git(&["rev-parse", "HEAD"]);

    // Rewrite that segment's receipt (status and all) and re-sign it with
    // the allowed key: the signature holds, the chain of a fresh segment too.
    let segment = vnx_ledger::default_segment_name(
        WRITER,
        &format!("vnx_{}", first["dispatch_id"].as_str().unwrap()),
    );
    let path = sb.repo.join("ledger").join(&segment);
    std::fs::remove_file(&path).unwrap();
    let records = "{\"kind\":\"note\",\"body\":{\"text\":\"nothing happened here\"}}\n";
    let mut append = sb.vnx(
        &plain_env(&sb.home),
        &["ledger", "append", "--segment", &segment],
    );
    append.stdin(std::process::Stdio::piped());
    let mut child = append.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), records.as_bytes()).unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
    sb.git(&["commit", "-q", "-am", "tidy the ledger", "--no-gpg-sign"]);
    let (code, report) = gate_json(&sb, &base);
    assert_eq!(code, 1, "{report:#}");
    assert!(
        reasons(&report).contains(&"not_append_only".to_owned()),
        "{report:#}"
    );
}

#[test]
fn approvals_count_only_when_signed_by_an_allowed_approver() {
    let sb = sandbox();
    let base = sb.git(&["rev-parse", "HEAD"]);
    let r = dispatch(&sb, &["--skill", "release", "Draft the notes"]);
    assert_eq!(r["status"], "passed", "{r:#}");
    let id = r["dispatch_id"].as_str().unwrap().to_owned();
    sb.git(&["checkout", "-q", "-b", "feature"]);
    sb.git(&["merge", "-q", "--ff-only", &format!("vnx/{id}")]);

    // Not approved yet: blocked, naming the dispatch.
    let (code, report) = gate_json(&sb, &base);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(reasons(&report), vec!["unapproved"], "{report:#}");

    // Approved by a key allowed_signers does not list: still blocked.
    let stranger = TestKey::new(&sb.tmp.path().join("keys"), "stranger");
    stranger.configure(&sb.repo);
    let out = vnx(&sb, &["approve", &id]);
    assert!(out.status.success(), "{}", all(&out));
    sb.git(&["add", "ledger"]);
    sb.git(&["commit", "-q", "--no-gpg-sign", "-m", "approve (stranger)"]);
    let (code, report) = gate_json(&sb, &base);
    assert_eq!(code, 1, "{report:#}");
    let r = reasons(&report);
    assert!(r.contains(&"unapproved".to_owned()), "{r:?}");
    assert!(r.contains(&"unauthenticated".to_owned()), "{r:?}");

    // Approved by the listed key: the stranger's segment still blocks (its
    // records are unauthenticated), so start again from the merge.
    sb.git(&["reset", "-q", "--hard", "HEAD~1"]);
    sb.key.configure(&sb.repo);
    let out = vnx(&sb, &["approve", &id]);
    assert!(out.status.success(), "{}", all(&out));
    assert!(all(&out).contains("signed by SHA256:"), "{}", all(&out));
    assert_eq!(
        status_clean(&sb).lines().count(),
        2,
        "the approval's segment and its signature: {}",
        status_clean(&sb)
    );
    sb.git(&["add", "ledger"]);
    sb.git(&["commit", "-q", "--no-gpg-sign", "-m", "approve"]);
    let (code, report) = gate_json(&sb, &base);
    assert_eq!(code, 0, "{report:#}");
    let approval = &report["receipts"][0]["approval"];
    assert_eq!(approval["state"], "approved", "{report:#}");
    assert_eq!(
        approval["by"], WRITER,
        "the verified principal, not a typed name"
    );
}

#[test]
fn what_cannot_be_checked_never_passes() {
    // A malformed allowed_signers at the base: an `unchecked` block naming
    // the file and line, and nobody trusted.
    let sb = sandbox();
    let mut signers = std::fs::read_to_string(sb.repo.join("ledger/allowed_signers")).unwrap();
    signers.push_str("broken-line-without-a-key\n");
    std::fs::write(sb.repo.join("ledger/allowed_signers"), signers).unwrap();
    sb.git(&["commit", "-q", "-am", "a typo in allowed_signers", "-S"]);
    let base = sb.git(&["rev-parse", "HEAD"]);
    sb.git(&["checkout", "-q", "-b", "feature"]);
    commit_file(&sb.repo, "fix.txt", "y\n", &["-S"]);
    let (code, report) = gate_json(&sb, &base);
    assert_eq!(code, 1, "{report:#}");
    let r = reasons(&report);
    assert!(r.contains(&"unchecked".to_owned()), "{r:?}");
    let text = serde_json::to_string(&report["blocks"]).unwrap();
    assert!(
        text.contains("allowed_signers") && text.contains("line 2"),
        "{text}"
    );

    // An expired key (valid-before in the past) signs nothing the gate takes.
    let sb = sandbox();
    std::fs::write(
        sb.repo.join("ledger/allowed_signers"),
        format!("{WRITER} valid-before=\"20200101Z\" {}\n", sb.key.key),
    )
    .unwrap();
    sb.git(&["commit", "-q", "-am", "an expired key"]);
    let base = sb.git(&["rev-parse", "HEAD"]);
    let r = dispatch(&sb, &["Write a note"]);
    assert_eq!(r["status"], "passed", "{r:#}");
    sb.git(&[
        "merge",
        "-q",
        "--ff-only",
        &format!("vnx/{}", r["dispatch_id"].as_str().unwrap()),
    ]);
    let (code, report) = gate_json(&sb, &base);
    assert_eq!(code, 1, "{report:#}");
    let text = serde_json::to_string(&report["blocks"]).unwrap();
    assert!(text.contains("expired") || text.contains("2020"), "{text}");

    // A shallow clone without the base: an error naming it, never a pass.
    let clone = sb.tmp.path().join("shallow");
    let url = format!("file://{}", sb.repo.display());
    git(
        sb.tmp.path(),
        &["clone", "-q", "--depth", "1", &url, clone.to_str().unwrap()],
    );
    let out = Command::new(vnx_tests::vnx())
        .args(["gate", "--base", &base])
        .current_dir(&clone)
        .env("VNX_WRITER", WRITER)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", all(&out));
    assert!(
        all(&out).contains("shallow") && all(&out).contains(&base),
        "{}",
        all(&out)
    );
}
