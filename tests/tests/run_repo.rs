//! `vnx run` on a real Rust crate with a real command gate (`cargo test`),
//! `--in-place` outside git, `--dry-run`, and the bad inputs: not a git
//! repository, unknown skill, provider missing.

#![allow(clippy::unwrap_used)]

#[path = "run_common.rs"]
mod common;

use std::path::Path;

use common::{Sandbox, WRITER, all, claude_env, claude_toml, clis, gate, receipt, serial};
use vnx_testkit::{MockServer, Script};

/// The environment cargo needs on top of claude's (its own HOME is the sandbox's).
fn cargo_env(sb: &Sandbox, server: &MockServer) -> Vec<(String, String)> {
    let mut env = claude_env(server, &sb.home);
    let real_home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    for (var, default) in [
        ("RUSTUP_HOME", format!("{real_home}/.rustup")),
        ("CARGO_HOME", format!("{real_home}/.cargo")),
    ] {
        env.push((var.into(), std::env::var(var).unwrap_or(default)));
    }
    if let Ok(t) = std::env::var("RUSTUP_TOOLCHAIN") {
        env.push(("RUSTUP_TOOLCHAIN".into(), t));
    }
    env.push((
        "CARGO_TARGET_DIR".into(),
        sb.tmp.path().join("target").display().to_string(),
    ));
    env
}

/// A sandbox holding a tiny dependency-free crate and a `cargo test` gate.
fn crate_sandbox(claude: &Path) -> Sandbox {
    let gate = "\n[[gates.command]]\nname = \"cargo-test\"\nargv = [\"cargo\", \"test\", \"--offline\", \"--quiet\"]\ntimeout = \"5m\"\n";
    let sb = Sandbox::new(&claude_toml(claude, gate));
    std::fs::write(
        sb.repo.join("Cargo.toml"),
        "[package]\nname = \"tiny\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n",
    )
    .unwrap();
    std::fs::create_dir_all(sb.repo.join("src")).unwrap();
    std::fs::write(
        sb.repo.join("src/lib.rs"),
        "pub fn add(a: u32, b: u32) -> u32 {\n    a + b\n}\n",
    )
    .unwrap();
    sb.git(&["add", "-A"]);
    sb.git(&["commit", "-qm", "tiny crate"]);
    sb
}

#[test]
fn cargo_test_command_gate_on_a_real_crate() {
    let _serial = serial();
    let clis = clis();

    // A passing test: the command gate passes.
    let test = "#[test]\nfn adds() {\n    assert_eq!(tiny::add(1, 1), 2);\n}\n";
    let server = MockServer::start(Script::write_file("tests/add.rs", test)).unwrap();
    let sb = crate_sandbox(&clis.claude);
    let base = sb.git(&["rev-parse", "HEAD"]);
    let id = "d-20260101-000000-ccccc1";
    let out = sb.run_vnx(
        &cargo_env(&sb, &server),
        &["run", "--json", "--dispatch-id", id, "Add a test of add"],
    );
    let ctx = all(&out);
    assert_eq!(out.status.code(), Some(0), "{ctx}");
    let r = receipt(&out);
    assert_eq!(r["status"], "passed", "{ctx}");
    assert_eq!(gate(&r, "command:cargo-test")["verdict"], "pass", "{ctx}");
    assert_eq!(
        gate(&r, "tests-have-assertions")["verdict"],
        "pass",
        "{ctx}"
    );
    assert_eq!(r["git"]["base"], base.as_str());
    // The receipt commit holds only the ledger (the segment and its
    // signature): nothing cargo left behind.
    let branch = format!("vnx/{id}");
    let files = sb.git(&["show", "--name-only", "--format=", &branch]);
    let segment = vnx_ledger::default_segment_name(WRITER, &branch);
    assert_eq!(files, format!("ledger/{segment}\nledger/{segment}.sig"));

    // A failing test: the command gate fails, and so does the dispatch.
    let bad = "#[test]\nfn adds() {\n    assert_eq!(tiny::add(1, 1), 3);\n}\n";
    let server = MockServer::start(Script::write_file("tests/add.rs", bad)).unwrap();
    let sb = crate_sandbox(&clis.claude);
    let out = sb.run_vnx(
        &cargo_env(&sb, &server),
        &["run", "--json", "Add a test of add"],
    );
    let ctx = all(&out);
    assert_eq!(out.status.code(), Some(1), "{ctx}");
    let r = receipt(&out);
    assert_eq!(r["status"], "failed", "{ctx}");
    let g = gate(&r, "command:cargo-test");
    assert_eq!(g["verdict"], "fail", "{ctx}");
    assert!(g["detail"].as_str().unwrap().contains("adds"), "{ctx}");
}

#[test]
fn in_place_outside_git_runs_with_git_facts_absent() {
    let _serial = serial();
    let clis = clis();
    let server = MockServer::start(Script::write_file("hello.txt", "Hello, world!\n")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().canonicalize().unwrap();
    let (home, dir) = (root.join("home"), root.join("plain"));
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("vnx.toml"), claude_toml(&clis.claude, "")).unwrap();
    let run = |args: &[&str]| {
        let child = std::process::Command::new(vnx_tests::vnx())
            .args(args)
            .current_dir(&dir)
            .env_clear()
            .envs(claude_env(&server, &home))
            .env("VNX_WRITER", WRITER)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let out = common::wait_bounded(child, common::RUN_BOUND);
        common::kill_strays(&root);
        out
    };

    // Without --in-place: a clear error, nothing recorded.
    let out = run(&["run", "Create hello.txt"]);
    assert_eq!(out.status.code(), Some(2), "{}", all(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not inside a git repository") && err.contains("--in-place"),
        "{err}"
    );
    assert!(!dir.join("ledger").exists());

    let out = run(&["run", "--json", "--in-place", "Create hello.txt"]);
    let ctx = all(&out);
    assert_eq!(out.status.code(), Some(0), "{ctx}");
    let r = receipt(&out);
    assert_eq!(r["status"], "passed", "{ctx}");
    assert!(r.get("git").is_none(), "{ctx}");
    assert_eq!(gate(&r, "non-empty-change")["verdict"], "skipped");
    assert_eq!(
        std::fs::read_to_string(dir.join("hello.txt")).unwrap(),
        "Hello, world!\n"
    );
    let verify = run(&["verify-ledger"]);
    assert_eq!(verify.status.code(), Some(0), "{}", all(&verify));
}

#[test]
fn dry_run_prints_the_instruction_and_argv_and_runs_nothing() {
    let clis = clis();
    let sb = Sandbox::new(&claude_toml(&clis.claude, ""));
    let env = common::plain_env(&sb.home);
    let out = sb.run_vnx(
        &env,
        &[
            "run",
            "--dry-run",
            "--model",
            "claude-sonnet-4-5",
            "Add a --verbose flag",
        ],
    );
    let ctx = all(&out);
    assert_eq!(out.status.code(), Some(0), "{ctx}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&clis.claude.display().to_string()), "{ctx}");
    for needle in [
        "-p",
        "--output-format",
        "stream-json",
        "--model",
        "claude-sonnet-4-5",
        "--json-schema",
        "Add a --verbose flag",
        ".vnx/worktrees/",
    ] {
        assert!(text.contains(needle), "{needle}: {ctx}");
    }
    // Nothing ran: no record, no worktree, no branch.
    assert!(!sb.main_segment().exists());
    assert!(!sb.repo.join(".vnx/worktrees").exists());
    assert_eq!(sb.git(&["branch", "--list", "vnx/*"]), "");
}

#[test]
fn unknown_skill_and_missing_provider_are_usage_errors() {
    let clis = clis();
    let sb = Sandbox::new(&claude_toml(&clis.claude, ""));
    let env = common::plain_env(&sb.home);
    let out = sb.run_vnx(&env, &["run", "--skill", "implemnt", "Do it"]);
    assert_eq!(out.status.code(), Some(2), "{}", all(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown skill") && err.contains("implement") && err.contains("review"),
        "{err}"
    );

    let sb = Sandbox::new(&claude_toml(Path::new("/nonexistent/bin/claude"), ""));
    let out = sb.run_vnx(&env, &["run", "Do it"]);
    assert_eq!(out.status.code(), Some(2), "{}", all(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("vnx doctor"), "{err}");
    // Nothing was started: no record, no worktree.
    assert!(!sb.main_segment().exists());
    assert!(!sb.repo.join(".vnx/worktrees").exists());
}
