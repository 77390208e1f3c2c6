//! The real agent CLIs (pinned in `tests/agent-clis`: Claude Code 2.1.330, Codex 0.169.0,
//! Gemini CLI 0.61.0) against the mock model API, offline.
//!
//! Needs `tests/agent-clis/install.sh` to have run (or `VNX_AGENT_CLIS_DIR`). Every run is
//! bounded by a timeout and its whole process group is killed at the end. The ignored test
//! `record_fixtures` rewrites `recordings/` from the same scenarios.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde_json::Value;
use vnx_testkit::{
    Api, MockServer, Reply, Script, agent_clis, workspace_root, write_claude_home,
    write_gemini_home,
};

/// Upper bound for one CLI run.
const TIMEOUT: Duration = Duration::from_secs(90);
/// The file every tool-use scenario writes, and its content.
const FILE: &str = "hello.txt";
const CONTENT: &str = "Hello, world!\n";
const FINAL: &str = "Done: I created hello.txt.";

/// What a CLI run left behind.
struct Run {
    /// Exit code; `None` when killed (timeout) or ended by a signal.
    status: Option<i32>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

impl Run {
    /// Every stdout line that is JSON.
    fn events(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The first event with `type == ty` (and `subtype == sub` when given).
    fn event(&self, ty: &str, sub: Option<&str>) -> Option<Value> {
        self.events()
            .into_iter()
            .find(|e| e["type"] == ty && sub.is_none_or(|s| e["subtype"] == s))
    }
}

/// Runs `cmd` in its own process group with `stdin` written then closed. Kills the group after
/// `timeout`, and always at the end: grandchildren (gemini's re-launched node, codex's shim
/// child) may outlive the leader and hold the pipes open.
fn run(mut cmd: Command, stdin: &str, timeout: Duration) -> Result<Run> {
    cmd.process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().with_context(|| format!("spawn {cmd:?}"))?;
    let pgid = Pid::from_raw(child.id() as i32);
    if let Some(mut input) = child.stdin.take() {
        let _ = input.write_all(stdin.as_bytes());
    }
    let mut out = child.stdout.take().context("child stdout")?;
    let mut err = child.stderr.take().context("child stderr")?;
    let out_thread = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        s
    });
    let err_thread = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status.code();
        }
        if start.elapsed() > timeout {
            let _ = killpg(pgid, Signal::SIGKILL);
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(25));
    };
    let elapsed = start.elapsed();
    let _ = killpg(pgid, Signal::SIGKILL);
    let stdout = String::from_utf8_lossy(&out_thread.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&err_thread.join().unwrap_or_default()).into_owned();
    let program = Path::new(cmd.get_program());
    eprintln!("{}: exit {status:?} in {elapsed:?}", program.display());
    Ok(Run {
        status,
        stdout,
        stderr,
        elapsed,
    })
}

/// A temp HOME and a temp git repository as the working directory.
struct Sandbox {
    root: tempfile::TempDir,
    home: PathBuf,
    repo: PathBuf,
}

impl Sandbox {
    fn new() -> Result<Self> {
        let root = tempfile::tempdir()?;
        // Canonical paths: Claude Code keys projects by its resolved cwd.
        let base = root.path().canonicalize()?;
        let home = base.join("home");
        let repo = base.join("project");
        std::fs::create_dir_all(&home)?;
        std::fs::create_dir_all(&repo)?;
        let out = Command::new("git")
            .args(["init", "-q"])
            .current_dir(&repo)
            .output()?;
        ensure!(
            out.status.success(),
            "git init in {}: {out:?}",
            repo.display()
        );
        Ok(Self { root, home, repo })
    }

    fn written(&self) -> Option<String> {
        std::fs::read_to_string(self.repo.join(FILE)).ok()
    }
}

/// A readable account of a run and of what the server saw, for assertion messages.
fn dump(server: &MockServer, run: &Run) -> String {
    let reqs: Vec<String> = server
        .requests()
        .iter()
        .map(|r| {
            let q = r
                .query
                .as_deref()
                .map(|q| format!("?{q}"))
                .unwrap_or_default();
            format!("{} {}{q} -> {} {:?}", r.method, r.path, r.status, r.reply)
        })
        .collect();
    let tail: String = run
        .stderr
        .chars()
        .rev()
        .take(3000)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!(
        "exit {:?} after {:?}\nrequests:\n  {}\nstdout:\n{}\nstderr (tail):\n{tail}",
        run.status,
        run.elapsed,
        reqs.join("\n  "),
        run.stdout,
    )
}

// ---------------------------------------------------------------------------------------
// Claude Code

fn claude_p(server: &MockServer, sb: &Sandbox, extra: &[&str], retries: u32) -> Result<Run> {
    let clis = agent_clis()?;
    let mut cmd = Command::new(&clis.claude);
    cmd.env_clear()
        .envs(server.claude_env(&sb.home))
        .env("CLAUDE_CODE_MAX_RETRIES", retries.to_string())
        .current_dir(&sb.repo)
        .args(["-p", "--output-format", "stream-json", "--verbose"])
        .args(extra);
    run(cmd, "Create hello.txt containing Hello, world!", TIMEOUT)
}

fn claude_plain() -> Result<Run> {
    let server = MockServer::start(Script::text("Hello from the mock Anthropic server."))?;
    let sb = Sandbox::new()?;
    let run = claude_p(&server, &sb, &[], 0)?;
    let ctx = dump(&server, &run);
    ensure!(run.status == Some(0), "{ctx}");
    let init = run
        .event("system", Some("init"))
        .context("no system/init")?;
    ensure!(init["apiKeySource"] == "none", "{ctx}");
    ensure!(init["claude_code_version"] == "2.1.330", "{ctx}");
    let result = run.event("result", None).context("no result")?;
    ensure!(
        result["is_error"] == false && result["subtype"] == "success",
        "{ctx}"
    );
    ensure!(
        result["result"] == "Hello from the mock Anthropic server.",
        "{ctx}"
    );
    ensure!(result["usage"]["input_tokens"].as_u64() > Some(0), "{ctx}");
    ensure!(result["total_cost_usd"].as_f64() > Some(0.0), "{ctx}");
    ensure!(result["session_id"] == init["session_id"], "{ctx}");
    let model = server.model_requests();
    ensure!(model.len() == 1, "{ctx}");
    ensure!(
        model[0].path == "/v1/messages" && model[0].query.as_deref() == Some("beta=true"),
        "{ctx}"
    );
    ensure!(model[0].api == Some(Api::Anthropic), "{ctx}");
    ensure!(
        model[0]
            .header("authorization")
            .is_some_and(|a| a.starts_with("Bearer ")),
        "{ctx}"
    );
    Ok(run)
}

fn claude_tool_use() -> Result<Run> {
    let server = MockServer::start(Script::write_file(FILE, CONTENT).with_text(FINAL))?;
    let sb = Sandbox::new()?;
    let run = claude_p(&server, &sb, &["--permission-mode", "acceptEdits"], 0)?;
    let ctx = dump(&server, &run);
    ensure!(run.status == Some(0), "{ctx}");
    ensure!(
        sb.written().as_deref() == Some(CONTENT),
        "hello.txt not written\n{ctx}"
    );
    let tool_use = run
        .events()
        .into_iter()
        .flat_map(|e| {
            e["message"]["content"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .find(|b| b["type"] == "tool_use")
        .context("no tool_use block")?;
    ensure!(tool_use["name"] == "Write", "{ctx}");
    ensure!(
        tool_use["input"]["file_path"] == sb.repo.join(FILE).display().to_string(),
        "{ctx}"
    );
    let result = run.event("result", None).context("no result")?;
    ensure!(
        result["result"] == FINAL && result["num_turns"] == 2,
        "{ctx}"
    );
    let model = server.model_requests();
    ensure!(model.len() == 2, "{ctx}");
    let second = serde_json::to_string(&model[1].body)?;
    ensure!(
        second.contains("\"tool_result\""),
        "second request lacks the tool_result\n{ctx}"
    );
    Ok(run)
}

fn claude_server_error() -> Result<Run> {
    let server = MockServer::start(Script::status(500))?;
    let sb = Sandbox::new()?;
    let run = claude_p(&server, &sb, &[], 1)?;
    let ctx = dump(&server, &run);
    ensure!(run.status == Some(1), "{ctx}");
    let result = run.event("result", None).context("no result")?;
    ensure!(
        result["is_error"] == true && result["api_error_status"] == 500,
        "{ctx}"
    );
    ensure!(
        run.event("system", Some("api_retry")).is_some(),
        "no api_retry\n{ctx}"
    );
    ensure!(
        server.model_requests().len() == 2,
        "one try + one retry\n{ctx}"
    );
    Ok(run)
}

fn claude_rate_limited() -> Result<Run> {
    let server = MockServer::start(Script::rate_limited(1))?;
    let sb = Sandbox::new()?;
    let run = claude_p(&server, &sb, &[], 1)?;
    let ctx = dump(&server, &run);
    ensure!(run.status == Some(1), "{ctx}");
    let result = run.event("result", None).context("no result")?;
    ensure!(
        result["is_error"] == true && result["api_error_status"] == 429,
        "{ctx}"
    );
    // 2.1.330 does retry a 429 (after about `retry-after` plus jitter), then reports it
    // as rejected.
    let retry = run
        .event("system", Some("api_retry"))
        .context("no api_retry")?;
    ensure!(retry["error_status"] == 429, "{ctx}");
    let limit = run
        .event("rate_limit_event", None)
        .context("no rate_limit_event")?;
    ensure!(limit["rate_limit_info"]["status"] == "rejected", "{ctx}");
    ensure!(
        server.model_requests().len() == 2,
        "one try + one retry\n{ctx}"
    );
    Ok(run)
}

#[test]
fn claude_print_mode_plain_text() -> Result<()> {
    claude_plain().map(drop)
}

#[test]
fn claude_print_mode_writes_a_file_with_the_write_tool() -> Result<()> {
    claude_tool_use().map(drop)
}

#[test]
fn claude_500_gives_an_error_result_after_retries() -> Result<()> {
    claude_server_error().map(drop)
}

#[test]
fn claude_429_gives_a_rejected_rate_limit_after_retries() -> Result<()> {
    claude_rate_limited().map(drop)
}

#[test]
fn claude_recovers_when_the_first_request_fails() -> Result<()> {
    let server = MockServer::start(Script::text("second time lucky").failing_first(1, 503))?;
    let sb = Sandbox::new()?;
    let run = claude_p(&server, &sb, &[], 2)?;
    let ctx = dump(&server, &run);
    ensure!(run.status == Some(0), "{ctx}");
    let result = run.event("result", None).context("no result")?;
    ensure!(
        result["is_error"] == false && result["result"] == "second time lucky",
        "{ctx}"
    );
    let replies: Vec<_> = server
        .model_requests()
        .into_iter()
        .filter_map(|r| r.reply)
        .collect();
    ensure!(
        replies
            == [
                Reply::Status {
                    status: 503,
                    retry_after: None
                },
                Reply::Text
            ],
        "{ctx}"
    );
    Ok(())
}

#[test]
fn claude_falls_back_to_a_plain_request_after_a_malformed_stream() -> Result<()> {
    let server = MockServer::start(Script::text("recovered").then(Reply::Malformed))?;
    let sb = Sandbox::new()?;
    let run = claude_p(&server, &sb, &[], 0)?;
    let ctx = dump(&server, &run);
    let result = run.event("result", None).context("no result")?;
    ensure!(
        result["is_error"] == false && result["result"] == "recovered",
        "{ctx}"
    );
    let model = server.model_requests();
    ensure!(
        model.len() == 2 && model[0].reply == Some(Reply::Malformed),
        "{ctx}"
    );
    ensure!(
        model[1].body.as_ref().is_some_and(|b| b["stream"] != true),
        "{ctx}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Codex

fn codex_exec(server: &MockServer, sb: &Sandbox, prompt: &str) -> Result<Run> {
    let clis = agent_clis()?;
    let mut cmd = Command::new(&clis.codex);
    cmd.env_clear()
        .envs(server.codex_env(&sb.home))
        .current_dir(&sb.repo)
        .args(["exec", "--json", "--ephemeral", "-s", "workspace-write"])
        .args(server.codex_args())
        .arg(prompt);
    run(cmd, "", TIMEOUT)
}

fn codex_plain() -> Result<Run> {
    let server = MockServer::start(Script::text("Hello from the mock OpenAI server."))?;
    let sb = Sandbox::new()?;
    let run = codex_exec(&server, &sb, "hi")?;
    let ctx = dump(&server, &run);
    ensure!(run.status == Some(0), "{ctx}");
    ensure!(
        run.event("thread.started", None)
            .is_some_and(|e| e["thread_id"].is_string()),
        "{ctx}"
    );
    let msg = run
        .event("item.completed", None)
        .context("no item.completed")?;
    ensure!(msg["item"]["type"] == "agent_message", "{ctx}");
    ensure!(
        msg["item"]["text"] == "Hello from the mock OpenAI server.",
        "{ctx}"
    );
    let done = run
        .event("turn.completed", None)
        .context("no turn.completed")?;
    ensure!(done["usage"]["input_tokens"].as_u64() > Some(0), "{ctx}");
    ensure!(done["usage"]["output_tokens"].as_u64() > Some(0), "{ctx}");
    let model = server.model_requests();
    ensure!(
        model.len() == 1 && model[0].path == "/v1/responses",
        "{ctx}"
    );
    ensure!(
        model[0].header("authorization") == Some("Bearer vnx-mock-token"),
        "{ctx}"
    );
    Ok(run)
}

fn codex_tool_use() -> Result<Run> {
    let server = MockServer::start(Script::write_file(FILE, CONTENT).with_text(FINAL))?;
    let sb = Sandbox::new()?;
    let run = codex_exec(&server, &sb, "Create hello.txt containing Hello, world!")?;
    let ctx = dump(&server, &run);
    ensure!(run.status == Some(0), "{ctx}");
    ensure!(
        sb.written().as_deref() == Some(CONTENT),
        "hello.txt not written\n{ctx}"
    );
    let change = run
        .events()
        .into_iter()
        .find(|e| e["type"] == "item.completed" && e["item"]["type"] == "file_change")
        .context("no file_change item")?;
    ensure!(change["item"]["status"] == "completed", "{ctx}");
    ensure!(change["item"]["changes"][0]["kind"] == "add", "{ctx}");
    ensure!(server.model_requests().len() == 2, "{ctx}");
    Ok(run)
}

fn codex_server_error() -> Result<Run> {
    let server = MockServer::start(Script::status(500))?;
    let sb = Sandbox::new()?;
    let run = codex_exec(&server, &sb, "hi")?;
    let ctx = dump(&server, &run);
    ensure!(run.status.is_some_and(|c| c != 0), "{ctx}");
    ensure!(
        run.event("turn.failed", None).is_some(),
        "no turn.failed\n{ctx}"
    );
    // codex_args() sets request_max_retries=0.
    ensure!(server.model_requests().len() == 1, "{ctx}");
    Ok(run)
}

fn codex_malformed() -> Result<Run> {
    let server = MockServer::start(Script::malformed())?;
    let sb = Sandbox::new()?;
    let run = codex_exec(&server, &sb, "hi")?;
    let ctx = dump(&server, &run);
    ensure!(run.status == Some(1), "{ctx}");
    let failed = run.event("turn.failed", None).context("no turn.failed")?;
    let message = failed["error"]["message"].as_str().unwrap_or_default();
    ensure!(message.contains("response.completed"), "{ctx}");
    Ok(run)
}

fn codex_rate_limited() -> Result<Run> {
    let server = MockServer::start(Script::rate_limited(1))?;
    let sb = Sandbox::new()?;
    let run = codex_exec(&server, &sb, "hi")?;
    let ctx = dump(&server, &run);
    ensure!(run.status == Some(1), "{ctx}");
    let failed = run.event("turn.failed", None).context("no turn.failed")?;
    ensure!(
        failed["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("429"),
        "{ctx}"
    );
    // codex_args() sets request_max_retries=0.
    ensure!(server.model_requests().len() == 1, "{ctx}");
    Ok(run)
}

#[test]
fn codex_exec_plain_text() -> Result<()> {
    codex_plain().map(drop)
}

#[test]
fn codex_exec_writes_a_file_with_apply_patch() -> Result<()> {
    codex_tool_use().map(drop)
}

#[test]
fn codex_exec_500_fails_the_turn() -> Result<()> {
    codex_server_error().map(drop)
}

#[test]
fn codex_exec_malformed_stream_fails_the_turn() -> Result<()> {
    codex_malformed().map(drop)
}

#[test]
fn codex_exec_429_fails_the_turn_without_retry() -> Result<()> {
    codex_rate_limited().map(drop)
}

#[test]
fn codex_exec_waits_out_a_slow_stream() -> Result<()> {
    let delay = Duration::from_millis(100);
    let server = MockServer::start(Script::text("one two three").with_event_delay(delay))?;
    let sb = Sandbox::new()?;
    let run = codex_exec(&server, &sb, "hi")?;
    let ctx = dump(&server, &run);
    ensure!(run.status == Some(0), "{ctx}");
    let msg = run
        .event("item.completed", None)
        .context("no item.completed")?;
    ensure!(msg["item"]["text"] == "one two three", "{ctx}");
    // created, item added, 3 deltas, item done, completed: 7 pauses at least.
    ensure!(run.elapsed >= delay * 7, "{ctx}");
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Gemini CLI

/// The model named with `-m`: it skips Gemini CLI's model router (a `:generateContent` side call).
const GEMINI_MODEL: &str = "gemini-2.5-flash";

fn gemini_p(server: &MockServer, sb: &Sandbox, prompt: &str) -> Result<Run> {
    let clis = agent_clis()?;
    write_gemini_home(&sb.home)?;
    let mut cmd = Command::new(&clis.gemini);
    cmd.env_clear()
        .envs(server.gemini_env(&sb.home))
        .current_dir(&sb.repo)
        .args([
            "-p",
            prompt,
            "--output-format",
            "stream-json",
            "--skip-trust",
        ])
        .args(["--approval-mode", "auto_edit", "-m", GEMINI_MODEL]);
    run(cmd, "", TIMEOUT)
}

fn gemini_plain() -> Result<Run> {
    let server = MockServer::start(Script::text("Hello from the mock Gemini server."))?;
    let sb = Sandbox::new()?;
    let run = gemini_p(&server, &sb, "hi")?;
    let ctx = dump(&server, &run);
    ensure!(run.status == Some(0), "{ctx}");
    let init = run.event("init", None).context("no init")?;
    ensure!(
        init["model"] == GEMINI_MODEL && init["session_id"].is_string(),
        "{ctx}"
    );
    let text: String = run
        .events()
        .iter()
        .filter(|e| e["type"] == "message" && e["role"] == "assistant")
        .filter_map(|e| e["content"].as_str().map(str::to_owned))
        .collect();
    ensure!(text == "Hello from the mock Gemini server.", "{ctx}");
    let result = run.event("result", None).context("no result")?;
    ensure!(result["status"] == "success", "{ctx}");
    ensure!(result["stats"]["input_tokens"].as_u64() > Some(0), "{ctx}");
    let model = server.model_requests();
    ensure!(model.len() == 1, "{ctx}");
    ensure!(
        model[0].path == format!("/v1beta/models/{GEMINI_MODEL}:streamGenerateContent")
            && model[0].query.as_deref() == Some("alt=sse"),
        "{ctx}"
    );
    ensure!(
        model[0].header("x-goog-api-key") == Some("vnx-mock-token"),
        "{ctx}"
    );
    Ok(run)
}

fn gemini_tool_use() -> Result<Run> {
    let server = MockServer::start(Script::write_file(FILE, CONTENT).with_text(FINAL))?;
    let sb = Sandbox::new()?;
    let run = gemini_p(&server, &sb, "Create hello.txt containing Hello, world!")?;
    let ctx = dump(&server, &run);
    ensure!(run.status == Some(0), "{ctx}");
    ensure!(
        sb.written().as_deref() == Some(CONTENT),
        "hello.txt not written\n{ctx}"
    );
    let tool_use = run.event("tool_use", None).context("no tool_use")?;
    ensure!(tool_use["tool_name"] == "write_file", "{ctx}");
    let tool_result = run.event("tool_result", None).context("no tool_result")?;
    ensure!(
        tool_result["status"] == "success" && tool_result["tool_id"] == tool_use["tool_id"],
        "{ctx}"
    );
    let result = run.event("result", None).context("no result")?;
    ensure!(result["stats"]["tool_calls"] == 1, "{ctx}");
    ensure!(server.model_requests().len() == 2, "{ctx}");
    Ok(run)
}

fn gemini_error() -> Result<Run> {
    let server = MockServer::start(Script::status(400))?;
    let sb = Sandbox::new()?;
    let run = gemini_p(&server, &sb, "hi")?;
    let ctx = dump(&server, &run);
    // Gemini CLI exits with the HTTP status mod 256: 400 -> 144.
    ensure!(run.status == Some(144), "{ctx}");
    Ok(run)
}

fn gemini_malformed() -> Result<Run> {
    let server = MockServer::start(Script::malformed())?;
    let sb = Sandbox::new()?;
    let run = gemini_p(&server, &sb, "hi")?;
    let ctx = dump(&server, &run);
    ensure!(run.status == Some(1), "{ctx}");
    let result = run.event("result", None).context("no result")?;
    ensure!(result["status"] == "error", "{ctx}");
    Ok(run)
}

#[test]
fn gemini_plain_text() -> Result<()> {
    gemini_plain().map(drop)
}

#[test]
fn gemini_writes_a_file_with_write_file() -> Result<()> {
    gemini_tool_use().map(drop)
}

#[test]
fn gemini_auto_model_goes_through_the_router_side_call() -> Result<()> {
    let server = MockServer::start(Script::text("routed"))?;
    let sb = Sandbox::new()?;
    write_gemini_home(&sb.home)?;
    let mut cmd = Command::new(&agent_clis()?.gemini);
    cmd.env_clear()
        .envs(server.gemini_env(&sb.home))
        .current_dir(&sb.repo)
        .args(["-p", "hi", "--output-format", "stream-json", "--skip-trust"]);
    let run = run(cmd, "", TIMEOUT)?;
    let ctx = dump(&server, &run);
    ensure!(run.status == Some(0), "{ctx}");
    ensure!(
        run.event("init", None)
            .is_some_and(|e| e["model"] == "auto"),
        "{ctx}"
    );
    // The router asks a flash-lite model for JSON (`complexity_score`); the mock answers a
    // minimal instance of the schema and the script is not consumed by it.
    let requests = server.requests();
    let router = requests
        .iter()
        .find(|r| r.path.ends_with(":generateContent"))
        .context("no router call")?;
    ensure!(router.reply.is_none() && router.status == 200, "{ctx}");
    ensure!(server.model_requests().len() == 1, "{ctx}");
    let result = run.event("result", None).context("no result")?;
    ensure!(result["status"] == "success", "{ctx}");
    Ok(())
}

#[test]
fn gemini_api_error_sets_the_exit_code() -> Result<()> {
    gemini_error().map(drop)
}

#[test]
fn gemini_malformed_stream_is_an_error_result() -> Result<()> {
    gemini_malformed().map(drop)
}

// ---------------------------------------------------------------------------------------
// Claude Code, interactive, under a private tmux server

/// `tmux -S <socket>` with a clean environment (the panes inherit it).
struct Tmux {
    socket: PathBuf,
    env: Vec<(String, String)>,
}

impl Tmux {
    fn cmd(&self, args: &[&str]) -> Result<String> {
        let out = Command::new("tmux")
            .env_clear()
            .envs(self.env.iter().cloned())
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output()
            .context("run tmux (tests/agent-clis/install.sh installs it)")?;
        ensure!(out.status.success(), "tmux {args:?}: {out:?}");
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn screen(&self) -> String {
        self.cmd(&["capture-pane", "-p", "-t", "vnx"])
            .unwrap_or_default()
    }

    fn wait_for(&self, what: &str, timeout: Duration, done: impl Fn() -> bool) -> Result<()> {
        let start = Instant::now();
        while !done() {
            if start.elapsed() > timeout {
                bail!("timed out waiting for {what}; screen:\n{}", self.screen());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(())
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

fn claude_interactive() -> Result<PathBuf> {
    let clis = agent_clis()?;
    let server = MockServer::start(Script::write_file(FILE, CONTENT).with_text(FINAL))?;
    let sb = Sandbox::new()?;
    write_claude_home(&sb.home, &[&sb.repo])?;
    let marker = sb.root.path().join("stop-hook-fired");
    let settings = sb.root.path().join("settings.json");
    let hook = format!("touch '{}'", marker.display());
    let hooks =
        serde_json::json!({"hooks": {"Stop": [{"hooks": [{"type": "command", "command": hook}]}]}});
    std::fs::write(&settings, hooks.to_string())?;
    let session = uuid::Uuid::new_v4().to_string();

    let mut env = server.claude_env(&sb.home);
    env.retain(|(k, _)| k != "TERM" && k != "NO_COLOR");
    env.push(("TERM".into(), "xterm-256color".into()));
    let tmux = Tmux {
        socket: sb.root.path().join("tmux.sock"),
        env,
    };
    let repo = sb.repo.display().to_string();
    let settings = settings.display().to_string();
    let claude = clis.claude.display().to_string();
    tmux.cmd(&[
        "-f",
        "/dev/null",
        "new-session",
        "-d",
        "-s",
        "vnx",
        "-x",
        "160",
        "-y",
        "48",
        "-c",
        &repo,
        &claude,
        "--session-id",
        &session,
        "--permission-mode",
        "acceptEdits",
        "--settings",
        &settings,
    ])?;
    tmux.wait_for("the ❯ prompt", Duration::from_secs(45), || {
        tmux.screen().contains('❯')
    })?;

    let instruction = sb.root.path().join("instruction.txt");
    std::fs::write(&instruction, "Create hello.txt\ncontaining Hello, world!")?;
    tmux.cmd(&[
        "load-buffer",
        "-b",
        "vnx",
        &instruction.display().to_string(),
    ])?;
    tmux.cmd(&["paste-buffer", "-p", "-d", "-b", "vnx", "-t", "vnx"])?;
    std::thread::sleep(Duration::from_secs(1));
    tmux.cmd(&["send-keys", "-t", "vnx", "Enter"])?;
    tmux.wait_for("the Stop hook's marker", Duration::from_secs(75), || {
        marker.exists()
    })?;

    ensure!(
        sb.written().as_deref() == Some(CONTENT),
        "hello.txt not written; screen:\n{}",
        tmux.screen()
    );
    // The transcript is appended asynchronously: the Stop hook can fire before the last
    // assistant line lands, so wait for the final text to be there.
    let projects = sb.home.join(".claude/projects");
    let assistant_lines = || -> Vec<Value> {
        let Ok(transcript) = find_transcript(&projects, &session) else {
            return Vec::new();
        };
        std::fs::read_to_string(transcript)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["type"] == "assistant")
            .collect()
    };
    tmux.wait_for(
        "the final assistant line in the transcript",
        Duration::from_secs(15),
        || {
            assistant_lines()
                .iter()
                .any(|a| a["message"]["content"].to_string().contains(FINAL))
        },
    )?;
    let transcript = find_transcript(&projects, &session)?;
    let assistant = assistant_lines();
    ensure!(
        !assistant.is_empty(),
        "no assistant line in {}",
        transcript.display()
    );
    ensure!(
        assistant
            .iter()
            .all(|a| a["message"]["usage"].is_object() && a["message"]["model"].is_string())
    );
    let pasted = server.model_requests().iter().any(|r| {
        serde_json::to_string(&r.body)
            .unwrap_or_default()
            .contains("Create hello.txt\\ncontaining")
    });
    ensure!(
        pasted,
        "the multi-line instruction did not reach the model as one message"
    );
    for r in server.requests() {
        eprintln!(
            "interactive claude sent {} {} -> {}",
            r.method, r.path, r.status
        );
    }
    // Keep the transcript for recording before the sandbox goes.
    let keep = std::env::temp_dir().join(format!("vnx-claude-interactive-{session}.jsonl"));
    std::fs::copy(&transcript, &keep)?;
    Ok(keep)
}

/// `<projects>/<sanitized cwd>/<session>.jsonl`, found by walking (the sanitizing rule is Claude's).
fn find_transcript(projects: &Path, session: &str) -> Result<PathBuf> {
    for dir in
        std::fs::read_dir(projects).with_context(|| format!("read {}", projects.display()))?
    {
        let path = dir?.path().join(format!("{session}.jsonl"));
        if path.is_file() {
            return Ok(path);
        }
    }
    bail!("no {session}.jsonl under {}", projects.display())
}

#[test]
fn claude_interactive_under_tmux_writes_a_file_and_fires_the_stop_hook() -> Result<()> {
    let transcript = claude_interactive()?;
    let _ = std::fs::remove_file(transcript);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Recordings

/// Rewrites `crates/vnx-testkit/recordings/` (stdout bytes of each scenario) from the real
/// CLIs. Run: `cargo test -p vnx-testkit --test real_clis -- --ignored record_fixtures`.
#[test]
#[ignore = "rewrites the recordings; run by hand after bumping a CLI pin"]
fn record_fixtures() -> Result<()> {
    type Scenario = fn() -> Result<Run>;
    let dir = workspace_root().join("crates/vnx-testkit/recordings");
    std::fs::create_dir_all(&dir)?;
    let runs: [(&str, Scenario); 12] = [
        ("claude-plain", claude_plain),
        ("claude-tooluse", claude_tool_use),
        ("claude-500", claude_server_error),
        ("claude-429", claude_rate_limited),
        ("codex-plain", codex_plain),
        ("codex-tooluse", codex_tool_use),
        ("codex-500", codex_server_error),
        ("codex-429", codex_rate_limited),
        ("codex-malformed", codex_malformed),
        ("gemini-plain", gemini_plain),
        ("gemini-tooluse", gemini_tool_use),
        ("gemini-malformed", gemini_malformed),
    ];
    for (name, scenario) in runs {
        let run = scenario().with_context(|| format!("scenario {name}"))?;
        std::fs::write(dir.join(format!("{name}.jsonl")), run.stdout.as_bytes())?;
    }
    let run = gemini_error()?;
    std::fs::write(dir.join("gemini-400.jsonl"), run.stdout.as_bytes())?;
    std::fs::write(dir.join("gemini-400.stderr.txt"), run.stderr.as_bytes())?;
    let transcript = claude_interactive()?;
    std::fs::copy(&transcript, dir.join("claude-interactive-transcript.jsonl"))?;
    let _ = std::fs::remove_file(transcript);
    Ok(())
}
