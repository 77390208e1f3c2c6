//! Shared helpers: sandboxes, providers, options, a gate on concurrent CLIs.

#![allow(dead_code)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};
use vnx_agents::{OutputFormat, Provider, ProviderConfig, ProviderKind};
use vnx_core::{Backoff, EnvSource, Jitter, WorkerOptions, WorkerRun};
use vnx_testkit::{AgentClis, MockServer};

/// The file every tool-call scenario writes, and its content.
pub const FILE: &str = "hello.txt";
pub const CONTENT: &str = "Hello, world!\n";
pub const PROMPT: &str = "Create hello.txt containing Hello, world!";

/// The pinned real CLIs; fails the test with the install hint when missing.
pub fn clis() -> AgentClis {
    match vnx_testkit::agent_clis() {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    }
}

/// At most two real CLIs at a time: the machine has two cores, and a starved
/// CLI hits its own timeouts.
pub async fn gate() -> SemaphorePermit<'static> {
    static GATE: Semaphore = Semaphore::const_new(2);
    match GATE.acquire().await {
        Ok(p) => p,
        Err(e) => panic!("gate closed: {e}"),
    }
}

/// A temp HOME, a temp git repository (the worker's cwd) and a run directory.
pub struct Sandbox {
    pub root: tempfile::TempDir,
    pub home: PathBuf,
    pub repo: PathBuf,
    pub run_dir: PathBuf,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let root = tempfile::tempdir().unwrap();
        // Canonical: claude keys projects and transcripts by its resolved cwd.
        let base = root.path().canonicalize().unwrap();
        let (home, repo, run_dir) = (base.join("home"), base.join("project"), base.join("run"));
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(&repo).unwrap();
        let out = Command::new("git")
            .args(["init", "-q"])
            .current_dir(&repo)
            .output()
            .unwrap();
        assert!(out.status.success(), "git init: {out:?}");
        Sandbox {
            root,
            home,
            repo,
            run_dir,
        }
    }

    pub fn written(&self) -> Option<String> {
        std::fs::read_to_string(self.repo.join(FILE)).ok()
    }
}

/// A built-in provider kind with an explicit binary and extras.
pub fn provider(kind: ProviderKind, binary: &Path, extra_args: Vec<String>) -> Provider {
    Provider::from_config(
        kind.name(),
        ProviderConfig {
            binary: Some(binary.display().to_string()),
            extra_args,
            ..ProviderConfig::default()
        },
    )
    .unwrap()
}

/// Test-sized options: one attempt, fast retries without jitter, bounded runs.
pub fn options(sb: &Sandbox, env: Vec<(String, String)>) -> WorkerOptions {
    let mut o = WorkerOptions::new(&sb.run_dir);
    o.env = EnvSource::Fixed(env);
    o.max_retries = 0;
    o.backoff = Backoff {
        initial: Duration::from_millis(200),
        max: Duration::from_secs(1),
        jitter: Jitter::None,
        max_rate_limit_wait: Duration::from_secs(2),
    };
    o.total_timeout = Some(Duration::from_secs(150));
    o.inactivity_timeout = Some(Duration::from_mins(2));
    o.finish_grace = Duration::from_millis(500);
    o.term_grace = Duration::from_secs(1);
    o.drain_timeout = Duration::from_secs(1);
    o
}

/// Input tokens the mock reported over all generation requests (it counts body bytes / 4).
pub fn mock_input_tokens(server: &MockServer) -> u64 {
    server
        .model_requests()
        .iter()
        .map(|r| (r.body_len as u64 / 4).max(1))
        .sum()
}

/// A readable account of a run for assertion messages.
pub fn describe(run: &WorkerRun, server: Option<&MockServer>) -> String {
    let mut out = format!(
        "outcome: {:#?}\nattempts: {:#?}\nwarnings: {:#?}\nreport: {:?}\n",
        run.outcome, run.attempts, run.warnings, run.last_report
    );
    if let Some(log) = run.event_log() {
        let text = std::fs::read_to_string(&log.path).unwrap_or_default();
        let cut: String = text.chars().take(6000).collect();
        let _ = writeln!(out, "event log {}:\n{cut}", log.path.display());
    }
    if let Some(server) = server {
        for r in server.requests() {
            let _ = writeln!(
                out,
                "  {} {} -> {} {:?} ({} bytes)",
                r.method, r.path, r.status, r.reply, r.body_len
            );
        }
    }
    out
}

/// Path to the fake agent, built once per test process (`VNX_FAKE_AGENT` overrides).
pub fn fake_agent() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(vnx_tests::fake_agent)
}

/// A `command` provider running the fake agent with `script`, parsed as claude stream-json.
pub fn fake_provider(script: &[&str]) -> Provider {
    let mut argv = vec!["fake-agent".to_owned()];
    // `{` and `}` are placeholder syntax in argv templates: double them.
    argv.extend(
        script
            .iter()
            .map(|s| s.replace('{', "{{").replace('}', "}}")),
    );
    Provider::from_config(
        "fake",
        ProviderConfig {
            kind: Some(ProviderKind::Command),
            binary: Some(fake_agent().display().to_string()),
            argv,
            output: Some(OutputFormat::ClaudeStreamJson),
            ..ProviderConfig::default()
        },
    )
    .unwrap()
}

/// A minimal environment for the fake agent.
pub fn plain_env(sb: &Sandbox) -> Vec<(String, String)> {
    vnx_testkit::base_env(&sb.home)
}

/// Upper bound on one `run_worker` call in these tests (retries included).
pub const TEST_BOUND: Duration = Duration::from_mins(4);

/// [`vnx_core::run_worker`], failing the test if it takes longer than
/// [`TEST_BOUND`] (dropping the future kills the worker's processes).
pub async fn run_worker(
    req: &vnx_agents::DispatchRequest,
    provider: &Provider,
    lane: vnx_types::Lane,
    options: &WorkerOptions,
    cancel: &vnx_exec::CancelToken,
) -> Result<WorkerRun, vnx_core::WorkerError> {
    tokio::time::timeout(
        TEST_BOUND,
        vnx_core::run_worker(req, provider, lane, options, cancel),
    )
    .await
    .unwrap_or_else(|elapsed| panic!("run_worker did not finish within {TEST_BOUND:?}: {elapsed}"))
}
