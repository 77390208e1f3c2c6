//! `vnx serve` in a real browser: Debian's headless Chromium, driven by
//! `tests/browser/board.mjs` through playwright-core, watches a real `vnx
//! batch` (three governed dispatches, fake agent as a `command` provider,
//! `--max-parallel 2`) move across the board — queued, running, gating,
//! passed; running, failed — then opens two receipts and reads their gate
//! verdicts. Screenshots are kept in `$CARGO_TARGET_DIR/test-artifacts/serve/`
//! (default `target/…`).
//!
//! Nothing is timed: the agents and a command gate wait for release files
//! that the test creates only once the browser has seen the previous state.
//! Needs `/usr/bin/chromium` and `tests/browser/node_modules`: `bash
//! tests/run.sh` (its install step, `tests/browser/install.sh`) installs both.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

const WRITER: &str = "tester@host";
/// Batch entries: held then passing, held then failing, and one that waits
/// for a slot.
const PASS: &str = "pass";
const FAIL: &str = "fail";
const QUEUED: &str = "later";

/// Kills (SIGKILL) and reaps the children it holds when dropped: a failed
/// assertion leaves no server or held agent behind.
struct Reaper(Vec<Child>);

impl Drop for Reaper {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn require_browser(browser_dir: &Path) {
    let hint = "run `bash tests/run.sh` (its install step, `bash tests/browser/install.sh`, installs Debian's chromium and playwright-core)";
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "/usr/bin/chromium is missing: {hint}"
    );
    assert!(
        browser_dir.join("node_modules/playwright-core").is_dir(),
        "{} is missing: {hint}",
        browser_dir.join("node_modules/playwright-core").display()
    );
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "node is not on PATH: install Node.js 20+, then {hint}"
    );
}

fn artifacts_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| vnx_tests::workspace_root().join("target"), PathBuf::from);
    let dir = target.join("test-artifacts/serve");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn git(repo: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(args)
        .current_dir(repo)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A repository whose agents and one command gate wait for release files.
fn held_repo(root: &Path, release: &Path) -> PathBuf {
    let repo = root.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["config", "user.name", "Tester"]);
    git(&repo, &["config", "user.email", "tester@example.invalid"]);
    let out = Command::new(vnx_tests::vnx())
        .arg("init")
        .current_dir(&repo)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "vnx init: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fake = vnx_tests::fake_agent();
    let (fake, rel) = (fake.display(), release.display());
    let wait = |file: &str| format!("while [ ! -e '{rel}/{file}' ]; do sleep 0.05; done");
    let toml = format!(
        r#"[run]
provider = "held"
cross_review = false

[retry]
max_retries = 0

# Finishes successfully once released.
[providers.held]
kind = "command"
binary = "/bin/sh"
argv = ["sh", "-c", "{w}; exec '{fake}' --final"]
output = "claude-stream-json"

# Exits 1 without a final event once released: status error.
[providers.broken]
kind = "command"
binary = "/bin/sh"
argv = ["sh", "-c", "{w}; exec '{fake}' --exit 1"]
output = "claude-stream-json"

# Holds the dispatch in the gating column until released.
[[gates.command]]
name = "held-gate"
argv = ["sh", "-c", "{g}; echo released"]
timeout = "5m"
"#,
        w = wait("workers"),
        g = wait("gate"),
    );
    std::fs::write(repo.join("vnx.toml"), toml).unwrap();
    let entry = |id: &str, provider: &str| {
        format!(
            "[[dispatch]]\nid = \"{id}\"\nskill = \"review\"\nprovider = \"{provider}\"\nprompt = \"Look around\"\n\n"
        )
    };
    std::fs::write(
        root.join("batch.toml"),
        [
            entry(PASS, "held"),
            entry(FAIL, "broken"),
            entry(QUEUED, "held"),
        ]
        .concat(),
    )
    .unwrap();
    std::fs::write(repo.join("README.md"), "# served\n").unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-qm", "init"]);
    repo
}

fn log_file(dir: &Path, name: &str) -> std::fs::File {
    std::fs::File::create(dir.join(name)).unwrap()
}

#[test]
fn the_board_in_chromium_follows_dispatches_and_shows_gate_verdicts() {
    let browser_dir = vnx_tests::workspace_root().join("tests/browser");
    require_browser(&browser_dir);
    let artifacts = artifacts_dir();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().canonicalize().unwrap();
    let release = root.join("release");
    std::fs::create_dir_all(&release).unwrap();
    let repo = held_repo(&root, &release);
    let vnx = vnx_tests::vnx();
    let mut children = Reaper(Vec::new());

    // The dashboard, on a free port; its first line names the URL.
    let mut serve = Command::new(&vnx)
        .args(["serve", "--port", "0"])
        .current_dir(&repo)
        .stdout(Stdio::piped())
        .stderr(log_file(&artifacts, "serve.stderr.log"))
        .spawn()
        .unwrap();
    let mut serve_out = BufReader::new(serve.stdout.take().unwrap());
    children.0.push(serve);
    let mut first = String::new();
    serve_out.read_line(&mut first).unwrap();
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("vnx serve printed no URL: {first:?}"))
        .to_owned();

    // The batch: two dispatches held by their agents, the third queued.
    let batch = Command::new(&vnx)
        .arg("batch")
        .arg(root.join("batch.toml"))
        .args(["--max-parallel", "2"])
        .env("VNX_WRITER", WRITER)
        .current_dir(&repo)
        .stdin(Stdio::null())
        .stdout(log_file(&artifacts, "batch.log"))
        .stderr(log_file(&artifacts, "batch.stderr.log"))
        .spawn()
        .unwrap();
    children.0.push(batch);

    // The browser.
    let mut node = Command::new("node")
        .arg(browser_dir.join("board.mjs"))
        .args(["--url", &url, "--out"])
        .arg(&artifacts)
        .args(["--pass", PASS, "--fail", FAIL, "--queued", QUEUED])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let node_out = BufReader::new(node.stdout.take().unwrap());
    let mut done = None;
    let mut stages = Vec::new();
    for line in node_out.lines() {
        let line = line.unwrap();
        let Ok(msg) = serde_json::from_str::<Value>(&line) else {
            eprintln!("node: {line}");
            continue;
        };
        let stage = msg["stage"].as_str().unwrap_or_default().to_owned();
        match stage.as_str() {
            // Two cards seen in "running", one in "queued": let the agents finish.
            "running" => std::fs::write(release.join("workers"), "").unwrap(),
            // Both held ones seen in "gating": let their gate finish.
            "gating" => std::fs::write(release.join("gate"), "").unwrap(),
            "done" => done = Some(msg),
            _ => {}
        }
        stages.push(stage);
    }
    let status = node.wait().unwrap();
    assert!(
        status.success(),
        "the browser script failed after stages {stages:?} (its stderr is above; screenshots in {})",
        artifacts.display()
    );
    let done = done.expect("the browser script reported no result");
    assert_eq!(stages, ["running", "gating", "done"]);

    // The verdicts the page showed are the receipt's.
    let passed = &done["passed"];
    assert_eq!(passed["status"], "passed", "{done}");
    let shown: Vec<(String, String)> = passed["gates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["name"].as_str().unwrap().to_owned(),
                g["verdict"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let out = Command::new(&vnx)
        .args(["receipts", "show", passed["id"].as_str().unwrap()])
        .current_dir(&repo)
        .output()
        .unwrap();
    let shown_receipt: Value = serde_json::from_slice(&out.stdout).unwrap();
    let recorded: Vec<(String, String)> = shown_receipt["receipt"]["gates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["name"].as_str().unwrap().to_owned(),
                g["verdict"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(shown, recorded);
    assert!(shown.contains(&("command:held-gate".into(), "pass".into())));
    assert!(shown.contains(&("worker-outcome".into(), "pass".into())));
    let position: Vec<&str> = passed["position"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for want in ["segment", "seq", "hash", "prev"] {
        assert!(position.contains(&want), "{want} not shown: {position:?}");
    }
    assert_eq!(done["failed"]["status"], "error", "{done}");
    assert!(
        done["chain"].as_str().unwrap().contains("verified"),
        "{done}"
    );
    assert_eq!(
        done["foreign"],
        serde_json::json!([]),
        "the page fetched from elsewhere"
    );
    for shot in [
        "1-running.png",
        "2-gating.png",
        "3-done.png",
        "4-receipt-passed.png",
        "5-receipt-failed.png",
    ] {
        assert!(artifacts.join(shot).is_file(), "{shot} missing");
    }

    // Ctrl-C stops the server cleanly.
    let serve = &mut children.0[0];
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(serve.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = serve.wait().unwrap();
    assert!(status.success(), "vnx serve after SIGINT: {status}");
}
