//! `cargo xtask`: project tasks.
//!
//! `cargo xtask demo [--keep]` shows vnx doing its main job on a machine with
//! no agent logged in: it installs the pinned Claude Code CLI from the npm
//! registry, starts the test harness's mock model API on loopback, creates a
//! temporary git repository and runs a real governed dispatch into it —
//! the real `claude` binary, the real worktree, gates and ledger — with only
//! the model's answers scripted. It prints vnx's live status, the gate table
//! and the receipt, then verifies the ledger and runs the CI gate.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};
use vnx_testkit::{MockServer, Script, agent_clis, workspace_root, write_claude_home};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) != Some("demo") {
        eprintln!(
            "usage: cargo xtask demo [--keep]\n\n  demo   a real governed dispatch with a scripted model, offline"
        );
        return ExitCode::from(2);
    }
    let result = demo(args.iter().any(|a| a == "--keep"));
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("xtask: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn banner(text: &str) {
    println!("\n\x1b[1m== {text}\x1b[0m");
}

fn demo(keep: bool) -> Result<ExitCode> {
    let root = workspace_root();
    println!(
        "DEMONSTRATION: the agent CLI, worktree, gates and ledger are real; the model is a script"
    );
    println!("served by vnx's test mock on 127.0.0.1 (no account, no network, no tokens spent).");

    banner("installing the pinned Claude Code CLI (npm registry) and building vnx");
    run(Command::new("bash")
        .arg(root.join("tests/agent-clis/install.sh"))
        .stdout(std::process::Stdio::null()))?;
    let clis = agent_clis().context("the pinned CLIs are not installed")?;
    run(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--quiet", "-p", "vnx-cli", "--bin", "vnx"])
            .current_dir(&root),
    )?;
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let vnx = target.join("debug/vnx");

    banner("starting the scripted model API");
    let report = serde_json::json!({
        "summary": "Added GREETING.md with a one-line greeting, as the task asked.",
        "files_changed": [{"path": "GREETING.md", "status": "added", "added": 1, "removed": 0}],
        "tests": {"added": 0, "run": 0, "passed": 0},
        "risks": [],
        "followups": []
    });
    let final_text = format!("Created GREETING.md.\n\n```json\n{report:#}\n```");
    let server = MockServer::start(
        Script::write_file("GREETING.md", "Hello from a governed dispatch.\n")
            .with_text(final_text),
    )?;
    println!("mock model API at {}", server.base_url());

    banner("creating a temporary repository");
    let tmp = tempfile::Builder::new().prefix("vnx-demo-").tempdir()?;
    let repo = tmp.path().join("repo");
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&repo)?;
    std::fs::create_dir_all(&home)?;
    git(&repo, &["init", "-q", "-b", "main"])?;
    std::fs::write(
        repo.join("README.md"),
        "# demo\n\nA repository for the vnx demonstration.\n",
    )?;
    git(&repo, &["add", "-A"])?;
    git(&repo, &["commit", "-q", "-m", "initial commit"])?;
    run(Command::new(&vnx).arg("init").current_dir(&repo))?;
    // Point the claude provider at the pinned binary and the mock, with its own HOME.
    let worktrees = repo.join(".vnx/worktrees");
    write_claude_home(&home, &[&repo, &worktrees])?;
    let mut config = std::fs::read_to_string(repo.join("vnx.toml"))?;
    let _ = write!(
        config,
        "\n# Added by `cargo xtask demo`: the real claude binary, offline against the mock.\n\
         [providers.claude]\nbinary = {:?}\n[providers.claude.env]\nHOME = {:?}\n\
         ANTHROPIC_BASE_URL = {:?}\nCLAUDE_CODE_OAUTH_TOKEN = \"demo-token\"\n\
         CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC = \"1\"\n",
        clis.claude.display().to_string(),
        home.display().to_string(),
        server.base_url()
    );
    std::fs::write(repo.join("vnx.toml"), config)?;
    git(&repo, &["add", "-A"])?;
    git(&repo, &["commit", "-q", "-m", "vnx init"])?;
    let base = String::from_utf8(
        Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(&repo)
            .output()?
            .stdout,
    )?;
    println!("repository: {}", repo.display());

    banner("vnx run --skill implement \"Add a GREETING.md with a one-line greeting\"");
    let status = Command::new(&vnx)
        .args([
            "run",
            "--skill",
            "implement",
            "--no-cross-review",
            "--keep",
            "Add a GREETING.md with a one-line greeting",
        ])
        .current_dir(&repo)
        .status()?;
    println!(
        "(vnx run exited with {})",
        status
            .code()
            .map_or_else(|| "a signal".into(), |c| c.to_string())
    );

    banner("the receipt in the ledger");
    run(Command::new(&vnx)
        .args(["receipts", "list"])
        .current_dir(&repo))?;
    banner("vnx verify-ledger");
    let verified = Command::new(&vnx)
        .arg("verify-ledger")
        .current_dir(&repo)
        .status()?;
    banner(&format!("vnx gate --base {}", &base.trim()[..12]));
    let gated = Command::new(&vnx)
        .args(["gate", "--base", base.trim()])
        .current_dir(&repo)
        .status()?;

    println!(
        "\nmodel requests served by the mock: {}",
        server.model_requests().len()
    );
    if keep {
        let kept = tmp.keep();
        println!("kept the demo repository at {}", kept.display());
    }
    Ok(
        if status.success() && verified.success() && gated.success() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        },
    )
}

fn git(repo: &Path, args: &[&str]) -> Result<()> {
    run(Command::new("git")
        .args(args)
        .current_dir(repo)
        .env("GIT_AUTHOR_NAME", "vnx demo")
        .env("GIT_AUTHOR_EMAIL", "demo@vnx.invalid")
        .env("GIT_COMMITTER_NAME", "vnx demo")
        .env("GIT_COMMITTER_EMAIL", "demo@vnx.invalid"))
}

fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}
