//! End to end: a skill with `requires_approval: true`, dispatched by `vnx
//! run` with the scripted fake agent; once its branch is merged, `vnx gate`
//! blocks its receipt until `vnx approve` records a signed approval, and a
//! rejection keeps it blocked.

#![allow(clippy::unwrap_used)]

#[path = "run_common.rs"]
mod common;

use serde_json::Value;

use common::{Sandbox, all, plain_env, receipt, records};

/// `vnx.toml` with two fake-agent providers: `ok` finishes successfully,
/// `broken` exits 1 without a final event (a worker error).
fn vnx_toml() -> String {
    let fake = vnx_tests::fake_agent();
    format!(
        "[run]\nprovider = \"ok\"\ncross_review = false\n\n[retry]\nmax_retries = 0\n\n\
         [providers.ok]\nkind = \"command\"\nbinary = \"{fake}\"\nargv = [\"fake-agent\", \"--final\"]\n\
         output = \"claude-stream-json\"\n\n\
         [providers.broken]\nkind = \"command\"\nbinary = \"{fake}\"\nargv = [\"fake-agent\", \"--exit\", \"1\"]\n\
         output = \"claude-stream-json\"\n",
        fake = fake.display()
    )
}

const RELEASE_SKILL: &str = "---\nname: release\ndescription: Draft release notes; a person signs them off.\n\
profile: read-only\nediting: false\nrequires_approval: true\n---\n# Release\n\nReport what the release holds.\n";

/// A sandbox with the `release` skill committed; returns it and the commit
/// before any dispatch.
fn sandbox() -> (Sandbox, String) {
    let sb = Sandbox::new(&vnx_toml());
    let dir = sb.repo.join(".vnx/skills/release");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("SKILL.md"), RELEASE_SKILL).unwrap();
    sb.git(&["add", "-A"]);
    sb.git(&["commit", "-qm", "release skill"]);
    let base = sb.git(&["rev-parse", "HEAD"]);
    (sb, base)
}

fn vnx(sb: &Sandbox, args: &[&str]) -> std::process::Output {
    sb.run_vnx(&plain_env(&sb.home), args)
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs a dispatch and returns its receipt.
fn dispatch(sb: &Sandbox, args: &[&str]) -> Value {
    let mut argv = vec!["run", "--json"];
    argv.extend_from_slice(args);
    let out = vnx(sb, &argv);
    receipt(&out)
}

#[test]
fn an_approval_required_skill_blocks_the_gate_until_approved() {
    let (sb, base) = sandbox();
    let r = dispatch(&sb, &["--skill", "release", "Draft the release notes"]);
    assert_eq!(r["status"], "passed", "{r:#}");
    assert_eq!(r["approval_required"], true, "{r:#}");
    let id = r["dispatch_id"].as_str().unwrap().to_owned();

    // Before the merge its receipt is only in the local journal: approve says so.
    let out = vnx(&sb, &["approve", &id]);
    assert_eq!(out.status.code(), Some(2), "{}", all(&out));
    assert!(all(&out).contains("merge its branch"), "{}", all(&out));
    sb.git(&["merge", "-q", "--ff-only", &format!("vnx/{id}")]);

    // No decision yet: every format names the block.
    let gate = vnx(&sb, &["gate", "--base", &base]);
    assert_eq!(gate.status.code(), Some(1), "{}", all(&gate));
    let text = stdout(&gate);
    assert!(
        text.contains("unapproved") && text.contains(&format!("vnx approve {id}")),
        "{text}"
    );
    assert!(text.contains("1 awaiting approval"), "{text}");
    let json: Value =
        serde_json::from_slice(&vnx(&sb, &["gate", "--base", &base, "--format", "json"]).stdout)
            .unwrap();
    assert_eq!(json["pass"], false);
    assert_eq!(json["blocks"][0]["reason"], "unapproved", "{json:#}");
    assert_eq!(json["blocks"][0]["dispatch_id"], id.as_str());
    assert_eq!(json["receipts"][0]["approval"]["state"], "awaiting");
    let github = stdout(&vnx(&sb, &["gate", "--base", &base, "--format", "github"]));
    assert!(github.contains("title=unapproved::"), "{github}");
    let junit = stdout(&vnx(&sb, &["gate", "--base", &base, "--format", "junit"]));
    assert!(
        junit.contains("failures=\"1\"") && junit.contains("unapproved"),
        "{junit}"
    );

    let list = stdout(&vnx(&sb, &["receipts", "list"]));
    assert!(list.contains("awaiting approval"), "{list}");
    let awaiting = stdout(&vnx(
        &sb,
        &["receipts", "list", "--awaiting-approval", "--json"],
    ));
    let awaiting: Vec<Value> = awaiting
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!awaiting.is_empty(), "{awaiting:?}");
    assert!(
        awaiting.iter().all(|a| a["dispatch_id"] == id.as_str()),
        "{awaiting:?}"
    );

    // A rejection keeps it blocked, and says who (the signer's principal) and why.
    let out = vnx(
        &sb,
        &[
            "approve",
            &id,
            "--reject",
            "--reason",
            "the notes miss the migration",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    let said = stdout(&out);
    assert!(
        said.contains(&format!("rejected dispatch {id}"))
            && said.contains("by Test <test@example.invalid>")
            && said.contains("signed by SHA256:"),
        "{said}"
    );
    let gate = vnx(&sb, &["gate", "--base", &base]);
    assert_eq!(gate.status.code(), Some(1), "{}", all(&gate));
    let text = stdout(&gate);
    assert!(
        text.contains("rejected")
            && text.contains(common::WRITER)
            && text.contains("the notes miss the migration"),
        "{text}"
    );

    // The approval, later, wins.
    let out = vnx(&sb, &["approve", &id[..12]]);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    assert!(
        stdout(&out).contains("replaces the rejection by Test"),
        "{}",
        all(&out)
    );
    sb.git(&["add", "ledger"]);
    sb.git(&["commit", "-qm", "approve the release notes"]);
    let gate = vnx(&sb, &["gate", "--base", &base]);
    assert_eq!(gate.status.code(), Some(0), "{}", all(&gate));
    assert_eq!(
        vnx(&sb, &["verify-ledger", "--strict"]).status.code(),
        Some(0),
        "the approval records and signature files verify"
    );

    // Both decisions are in the committed segment, linked to the merged receipt.
    let recs = records(&sb.committed_main_segment());
    let decisions: Vec<&Value> = recs
        .iter()
        .filter(|r| r["record"]["kind"] == "approval")
        .map(|r| &r["record"]["body"])
        .collect();
    assert_eq!(decisions.len(), 2);
    assert_eq!(decisions[0]["decision"], "rejected");
    assert_eq!(decisions[1]["decision"], "approved");
    assert!(decisions.iter().all(|d| {
        d["signature"]
            .as_str()
            .is_some_and(|s| s.starts_with("-----BEGIN SSH SIGNATURE-----"))
    }));
    let merged = json["receipts"][0]["path"].as_str().unwrap().to_owned();
    let merged_hash = records(std::path::Path::new(&merged))
        .iter()
        .find(|r| r["record"]["kind"] == "dispatch.receipt")
        .map(|r| r["hash"].clone())
        .unwrap();
    assert!(decisions.iter().all(|d| d["receipt_hash"] == merged_hash));
}

#[test]
fn approve_refuses_what_it_cannot_decide_and_needs_a_key() {
    let (sb, _base) = sandbox();
    let release = dispatch(&sb, &["--skill", "release", "Draft the release notes"]);
    let release_id = release["dispatch_id"].as_str().unwrap().to_owned();
    let review = dispatch(&sb, &["--skill", "review", "Review the change"]);
    let review_id = review["dispatch_id"].as_str().unwrap().to_owned();
    let broken = dispatch(
        &sb,
        &["--skill", "release", "--provider", "broken", "Draft again"],
    );
    assert_eq!(broken["status"], "error", "{broken:#}");
    let broken_id = broken["dispatch_id"].as_str().unwrap().to_owned();
    for id in [&release_id, &review_id, &broken_id] {
        sb.git(&["merge", "-q", "--no-edit", &format!("vnx/{id}")]);
    }

    // An unknown dispatch: named, with what awaits approval.
    let out = vnx(&sb, &["approve", "d-nope"]);
    assert_eq!(out.status.code(), Some(2), "{}", all(&out));
    let err = all(&out);
    assert!(
        err.contains("no receipt for dispatch \"d-nope\"")
            && err.contains(&format!("awaiting approval: {release_id}"))
            && !err.contains(&broken_id),
        "{err}"
    );

    // A skill that does not require approval: refused unless forced.
    let out = vnx(&sb, &["approve", &review_id]);
    assert_eq!(out.status.code(), Some(2), "{}", all(&out));
    assert!(
        all(&out).contains("does not require approval"),
        "{}",
        all(&out)
    );
    let out = vnx(&sb, &["approve", &review_id, "--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));

    // A receipt that did not pass can be rejected, never approved.
    let out = vnx(&sb, &["approve", &broken_id]);
    assert_eq!(out.status.code(), Some(2), "{}", all(&out));
    assert!(
        all(&out).contains("only a passed receipt can be approved"),
        "{}",
        all(&out)
    );
    let out = vnx(&sb, &["approve", &broken_id, "--reject"]);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));

    // The display name: VNX_APPROVER, else git's identity; --by is gone.
    let mut env = plain_env(&sb.home);
    env.push(("VNX_APPROVER".into(), "Bo Reviewer".into()));
    let out = sb.run_vnx(&env, &["approve", &release_id]);
    assert!(stdout(&out).contains("by Bo Reviewer"), "{}", all(&out));
    let out = sb.run_vnx(&env, &["approve", &release_id, "--by", "Cy"]);
    assert_eq!(out.status.code(), Some(2), "--by is refused: {}", all(&out));

    // Without a signing key nothing is recorded, and the fix is named.
    let segment = sb.committed_main_segment();
    let before = std::fs::read(&segment).unwrap();
    sb.git(&["config", "--unset", "user.signingkey"]);
    let out = vnx(&sb, &["approve", &release_id]);
    assert_eq!(out.status.code(), Some(2), "{}", all(&out));
    assert!(
        all(&out).contains("gpg.format ssh") && all(&out).contains("allowed_signers"),
        "{}",
        all(&out)
    );
    assert_eq!(std::fs::read(&segment).unwrap(), before, "nothing appended");
}
