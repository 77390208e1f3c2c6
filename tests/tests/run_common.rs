//! Shared helpers of the `vnx run` end-to-end tests (`run_*.rs` include this
//! file with `#[path]`; compiled alone it holds no test).

#![allow(
    dead_code,
    missing_docs,
    clippy::unwrap_used,
    clippy::missing_panics_doc
)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Writer identity every test uses (segment names follow from it).
pub const WRITER: &str = "tester@ci";

/// Upper bound of one `vnx run` in these tests.
pub const RUN_BOUND: Duration = Duration::from_mins(4);

/// One real CLI dispatch at a time per test binary: two cores are shared.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The pinned real CLIs.
pub fn clis() -> vnx_testkit::AgentClis {
    match vnx_testkit::agent_clis() {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    }
}

/// A temp HOME and a git repository with one commit holding `vnx.toml`,
/// a README, the ledger's `ledger.json` and an `allowed_signers` that lists
/// the key git (and so vnx) signs with in this repository.
pub struct Sandbox {
    pub tmp: tempfile::TempDir,
    pub home: PathBuf,
    pub repo: PathBuf,
    pub base: String,
    pub key: vnx_tests::TestKey,
}

impl Sandbox {
    pub fn new(vnx_toml: &str) -> Sandbox {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        let home = root.join("home");
        let repo = root.join("repo");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(&repo).unwrap();
        git(&repo, &["init", "-q", "-b", "main"]);
        git(&repo, &["config", "user.name", "Test"]);
        git(&repo, &["config", "user.email", "test@example.invalid"]);
        git(&repo, &["config", "commit.gpgsign", "false"]);
        std::fs::write(repo.join("README.md"), "# sandbox\n").unwrap();
        std::fs::write(repo.join("vnx.toml"), vnx_toml).unwrap();
        vnx_ledger::Ledger::open_or_create(&repo.join("ledger")).unwrap();
        let key = vnx_tests::TestKey::new(&root.join("keys"), "tester");
        key.configure(&repo);
        std::fs::write(
            repo.join("ledger/allowed_signers"),
            key.allowed_line(WRITER, None),
        )
        .unwrap();
        git(&repo, &["add", "-A"]);
        git(&repo, &["commit", "-q", "-m", "initial"]);
        let base = git(&repo, &["rev-parse", "HEAD"]);
        Sandbox {
            tmp,
            home,
            repo,
            base,
            key,
        }
    }

    pub fn git(&self, args: &[&str]) -> String {
        git(&self.repo, args)
    }

    /// `vnx <args>` in the repository with exactly `env` (plus the writer).
    pub fn vnx(&self, env: &[(String, String)], args: &[&str]) -> Command {
        let mut cmd = Command::new(vnx_tests::vnx());
        cmd.args(args)
            .current_dir(&self.repo)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("VNX_WRITER", WRITER)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Runs `vnx` to completion, bounded by [`RUN_BOUND`].
    pub fn run_vnx(&self, env: &[(String, String)], args: &[&str]) -> Output {
        let child = self.vnx(env, args).spawn().unwrap();
        let out = wait_bounded(child, RUN_BOUND);
        kill_strays(self.tmp.path());
        out
    }

    /// Path of the local journal's segment for branch `main`, where a
    /// worktree dispatch's records go (`.vnx/ledger/`).
    pub fn main_segment(&self) -> PathBuf {
        self.repo
            .join(".vnx/ledger")
            .join(vnx_ledger::default_segment_name(WRITER, "main"))
    }

    /// Path of the committed ledger's segment for branch `main`, where an
    /// in-place dispatch's records go.
    pub fn committed_main_segment(&self) -> PathBuf {
        self.repo
            .join("ledger")
            .join(vnx_ledger::default_segment_name(WRITER, "main"))
    }

    /// `vnx verify-ledger` of the local journal (where a worktree dispatch's
    /// records go) and `vnx gate --base <base>` of what is checked out:
    /// (exit code, output) each.
    pub fn audit(&self) -> ((i32, String), (i32, String)) {
        let env = plain_env(&self.home);
        let verify = self.run_vnx(&env, &["verify-ledger", ".vnx/ledger"]);
        let gate = self.run_vnx(&env, &["gate", "--base", &self.base]);
        (
            (verify.status.code().unwrap_or(-1), all(&verify)),
            (gate.status.code().unwrap_or(-1), all(&gate)),
        )
    }
}

pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// `HOME`, `PATH`, locale: enough for git and vnx itself.
pub fn plain_env(home: &Path) -> Vec<(String, String)> {
    vnx_testkit::base_env(home)
}

/// Waits for `child`, killing it (and failing the test) after `bound`.
pub fn wait_bounded(mut child: Child, bound: Duration) -> Output {
    let deadline = Instant::now() + bound;
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("vnx did not finish within {bound:?}:\n{}", all(&out));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Stdout and stderr, for assertion messages.
pub fn all(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The receipt `vnx run --json` printed.
pub fn receipt(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is not a receipt ({e}):\n{}", all(o)))
}

/// Records of a segment file, parsed.
pub fn records(segment: &Path) -> Vec<Value> {
    std::fs::read_to_string(segment)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Kinds of the records of a segment, in order.
pub fn kinds(segment: &Path) -> Vec<String> {
    records(segment)
        .iter()
        .map(|r| r["record"]["kind"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Kills every process whose working directory is under `root` (agent CLIs
/// a killed vnx left behind), with its process group.
pub fn kill_strays(root: &Path) {
    use nix::sys::signal::{Signal, kill, killpg};
    use nix::unistd::Pid;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    let me = std::process::id();
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid as u32 == me {
            continue;
        }
        let Ok(cwd) = std::fs::read_link(e.path().join("cwd")) else {
            continue;
        };
        if cwd.starts_with(root) {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// Polls `cond` every 50 ms until it holds; panics with `what` after `bound`.
pub fn wait_for(what: &str, bound: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + bound;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The gate named `name` in a receipt.
pub fn gate<'a>(receipt: &'a Value, name: &str) -> &'a Value {
    receipt["gates"]
        .as_array()
        .and_then(|g| g.iter().find(|g| g["name"] == name))
        .unwrap_or_else(|| panic!("no gate {name} in {receipt:#}"))
}

/// `vnx.toml` for a claude dispatch with the pinned binary.
pub fn claude_toml(claude: &Path, extra: &str) -> String {
    format!(
        "[run]\ntimeout = \"3m\"\ncross_review = false\n\n[retry]\nmax_retries = 0\n\n\
         [providers.claude]\nbinary = \"{}\"\n{extra}",
        claude.display()
    )
}

/// Claude's environment against the mock, its own retries off.
pub fn claude_env(server: &vnx_testkit::MockServer, home: &Path) -> Vec<(String, String)> {
    let mut env = server.claude_env(home);
    env.push(("CLAUDE_CODE_MAX_RETRIES".into(), "0".into()));
    env
}
