//! `vnx run` end to end through the other lanes and providers: claude in
//! tmux and under a PTY, codex and gemini headless (real pinned CLIs against the mock), and a
//! claude dispatch with the cross-model review on.

#![allow(clippy::unwrap_used)]

#[path = "run_common.rs"]
mod common;

use common::{Sandbox, WRITER, all, claude_env, claude_toml, clis, gate, kinds, receipt, serial};
use serde_json::Value;
use vnx_testkit::{MockServer, Script, write_claude_home, write_gemini_home};

const TASK: &str = "Create hello.txt containing Hello, world!";
const CONTENT: &str = "Hello, world!\n";

/// The checks every passing implement dispatch shares.
fn check_passed(sb: &Sandbox, r: &Value, id: &str, provider: &str, ctx: &str) {
    assert_eq!(r["status"], "passed", "{ctx}");
    assert_eq!(r["provider"], provider);
    assert_eq!(r["outcome"], "success");
    let head = r["git"]["head"].as_str().unwrap();
    assert_ne!(head, sb.base, "{ctx}");
    assert_eq!(
        sb.git(&["show", &format!("{head}:hello.txt")]),
        CONTENT.trim_end()
    );
    let branch = format!("vnx/{id}");
    let seg = vnx_ledger::default_segment_name(WRITER, &branch);
    assert!(
        sb.git(&["show", &format!("{branch}:ledger/{seg}")])
            .contains(id)
    );
    assert_eq!(
        kinds(&sb.main_segment()),
        ["segment.genesis", "dispatch.started", "dispatch.receipt"]
    );
    let ((v, vout), (g, gout)) = sb.audit();
    assert_eq!(v, 0, "{vout}");
    assert_eq!(g, 0, "{gout}");
}

#[test]
fn claude_in_tmux() {
    let _serial = serial();
    let clis = clis();
    let server = MockServer::start(Script::write_file("hello.txt", CONTENT)).unwrap();
    let sb = Sandbox::new(&claude_toml(&clis.claude, ""));
    let id = "d-20260101-000000-bbbbb1";
    let worktree = sb.repo.join(".vnx/worktrees").join(id);
    write_claude_home(&sb.home, &[worktree.as_path()]).unwrap();
    let out = sb.run_vnx(
        &claude_env(&server, &sb.home),
        &["run", "--json", "--lane", "tmux", "--dispatch-id", id, TASK],
    );
    let ctx = all(&out);
    assert_eq!(out.status.code(), Some(0), "{ctx}");
    let r = receipt(&out);
    assert_eq!(r["lane"], "tmux");
    check_passed(&sb, &r, id, "claude", &ctx);
}

#[test]
fn claude_in_a_pty() {
    let _serial = serial();
    let clis = clis();
    let server = MockServer::start(Script::write_file("hello.txt", CONTENT)).unwrap();
    let sb = Sandbox::new(&claude_toml(&clis.claude, ""));
    let id = "d-20260101-000000-bbbbb2";
    let out = sb.run_vnx(
        &claude_env(&server, &sb.home),
        &["run", "--json", "--lane", "pty", "--dispatch-id", id, TASK],
    );
    let ctx = all(&out);
    assert_eq!(out.status.code(), Some(0), "{ctx}");
    let r = receipt(&out);
    assert_eq!(r["lane"], "pty");
    assert!(
        r["session_id"].as_str().is_some_and(|s| !s.is_empty()),
        "{ctx}"
    );
    check_passed(&sb, &r, id, "claude", &ctx);
}

fn toml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

#[test]
fn codex_headless() {
    let _serial = serial();
    let clis = clis();
    let server = MockServer::start(Script::write_file("hello.txt", CONTENT)).unwrap();
    let args: Vec<String> = server.codex_args().iter().map(|a| toml_str(a)).collect();
    // The mock model provider's `env_key`: a variable the worker's
    // allow-list withholds unless vnx.toml names it.
    let toml = format!(
        "[run]\nprovider = \"codex\"\nmodel = \"gpt-6.1-sol\"\ntimeout = \"3m\"\ncross_review = false\n\n\
         [retry]\nmax_retries = 0\n\n[worker]\npass_env = [\"MOCK_API_KEY\"]\n\n[providers.codex]\nbinary = {}\nextra_args = [{}]\n\n\
         [providers.codex.prices.\"gpt-6.1-sol\"]\ninput = 1250000\noutput = 10000000\n",
        toml_str(&clis.codex.display().to_string()),
        args.join(", ")
    );
    let sb = Sandbox::new(&toml);
    let id = "d-20260101-000000-bbbbb2";
    let out = sb.run_vnx(
        &server.codex_env(&sb.home),
        &["run", "--json", "--dispatch-id", id, TASK],
    );
    let ctx = all(&out);
    assert_eq!(out.status.code(), Some(0), "{ctx}");
    let r = receipt(&out);
    assert_eq!(r["cost_source"], "estimated", "{ctx}");
    check_passed(&sb, &r, id, "codex", &ctx);
}

/// A sandbox whose provider is the pinned gemini (model gemini-2.5-flash),
/// logged in with the mock's GEMINI_API_KEY: API billing, so `billing =
/// "api"` (subscription mode would remove the key). One attempt per run.
fn gemini_sandbox(gemini: &std::path::Path, cross_review: bool) -> Sandbox {
    let toml = format!(
        "[run]\nprovider = \"gemini\"\nmodel = \"gemini-2.5-flash\"\ntimeout = \"3m\"\ncross_review = {cross_review}\n\
         billing = \"api\"\n\n\
         [retry]\nmax_retries = 0\n\n[providers.gemini]\nbinary = {}\n",
        toml_str(&gemini.display().to_string())
    );
    let sb = Sandbox::new(&toml);
    write_gemini_home(&sb.home).unwrap();
    let settings = serde_json::json!({
        "security": {"auth": {"selectedType": "gemini-api-key"}},
        "general": {"maxAttempts": 1},
    });
    std::fs::write(sb.home.join(".gemini/settings.json"), settings.to_string()).unwrap();
    sb
}

#[test]
fn gemini_headless() {
    let _serial = serial();
    let clis = clis();
    let server = MockServer::start(Script::write_file("hello.txt", CONTENT)).unwrap();
    let sb = gemini_sandbox(&clis.gemini, false);
    let id = "d-20260101-000000-bbbbb3";
    let out = sb.run_vnx(
        &server.gemini_env(&sb.home),
        &["run", "--json", "--dispatch-id", id, TASK],
    );
    let ctx = all(&out);
    assert_eq!(out.status.code(), Some(0), "{ctx}");
    let r = receipt(&out);
    assert_eq!(r["billing"], "api", "{ctx}");
    check_passed(&sb, &r, id, "gemini", &ctx);
}

#[test]
fn cross_model_review_approves_with_the_other_claude_model() {
    let _serial = serial();
    let clis = clis();
    let verdict = r#"{"approve":true,"blocking":[],"suggestions":[],"summary":"The file is created as asked."}"#;
    // The worker writes the file and ends with the verdict text; the review
    // (read-only: its Write is refused) ends with the same text, a valid verdict.
    let server =
        MockServer::start(Script::write_file("hello.txt", CONTENT).with_text(verdict)).unwrap();
    let toml = claude_toml(&clis.claude, "").replace("cross_review = false", "cross_review = true");
    let sb = Sandbox::new(&toml);
    let id = "d-20260101-000000-bbbbb5";
    let out = sb.run_vnx(
        &claude_env(&server, &sb.home),
        &[
            "run",
            "--json",
            "--model",
            "claude-sonnet-4-5",
            "--dispatch-id",
            id,
            TASK,
        ],
    );
    let ctx = all(&out);
    let r = receipt(&out);
    let review = gate(&r, "cross-review");
    assert_eq!(review["layer"], "cross-model", "{ctx}");
    assert_eq!(review["verdict"], "pass", "{ctx}");
    assert!(review["detail"].as_str().unwrap().contains("opus"), "{ctx}");
    let review_tokens = review["usage"]["output_tokens"].as_u64().unwrap();
    assert!(review_tokens > 0, "{ctx}");
    let worker_tokens: u64 = r["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["usage"]["output_tokens"].as_u64().unwrap())
        .sum();
    assert_eq!(
        r["usage"]["output_tokens"].as_u64().unwrap(),
        worker_tokens + review_tokens,
        "review tokens are in the totals: {ctx}"
    );
    // The review asked for the other model.
    assert!(
        server.model_requests().iter().any(|q| q
            .body
            .as_ref()
            .is_some_and(|b| b["model"].as_str().is_some_and(|m| m.contains("opus")))),
        "{ctx}"
    );
    assert_eq!(out.status.code(), Some(0), "{ctx}");
}

/// The verdict every review in these tests ends with.
const APPROVE: &str =
    r#"{"approve":true,"blocking":[],"suggestions":[],"summary":"The file is created as asked."}"#;

/// The model named by a recorded request: the body's `model`, else (Gemini)
/// the path `/v1beta/models/<model>:streamGenerateContent`.
fn requested_model(q: &vnx_testkit::RecordedRequest) -> String {
    q.body
        .as_ref()
        .and_then(|b| b["model"].as_str().map(str::to_owned))
        .unwrap_or_else(|| q.path.clone())
}

#[test]
fn cross_model_review_with_codex_asks_the_other_codex_model() {
    let _serial = serial();
    let clis = clis();
    let server =
        MockServer::start(Script::write_file("hello.txt", CONTENT).with_text(APPROVE)).unwrap();
    let args: Vec<String> = server.codex_args().iter().map(|a| toml_str(a)).collect();
    // The mock model provider's `env_key`: a variable the worker's
    // allow-list withholds unless vnx.toml names it.
    let toml = format!(
        "[run]\nprovider = \"codex\"\nmodel = \"gpt-6.1-sol\"\ntimeout = \"3m\"\ncross_review = true\n\n\
         [retry]\nmax_retries = 0\n\n[worker]\npass_env = [\"MOCK_API_KEY\"]\n\n[providers.codex]\nbinary = {}\nextra_args = [{}]\n",
        toml_str(&clis.codex.display().to_string()),
        args.join(", ")
    );
    let sb = Sandbox::new(&toml);
    let id = "d-20260101-000000-bbbbb6";
    let out = sb.run_vnx(
        &server.codex_env(&sb.home),
        &["run", "--json", "--dispatch-id", id, TASK],
    );
    let ctx = all(&out);
    let r = receipt(&out);
    let review = gate(&r, "cross-review");
    assert_eq!(review["verdict"], "pass", "{ctx}");
    assert!(
        review["detail"].as_str().unwrap().contains("gpt-5-codex"),
        "{ctx}"
    );
    assert!(
        review["usage"]["output_tokens"].as_u64().unwrap() > 0,
        "{ctx}"
    );
    let models: Vec<String> = server
        .model_requests()
        .iter()
        .map(requested_model)
        .collect();
    assert!(models.iter().any(|m| m == "gpt-6.1-sol"), "{models:?}");
    assert!(models.iter().any(|m| m == "gpt-5-codex"), "{models:?}");
    assert_eq!(out.status.code(), Some(0), "{ctx}");
}

#[test]
fn cross_model_review_with_gemini_asks_the_other_gemini_model() {
    let _serial = serial();
    let clis = clis();
    let server =
        MockServer::start(Script::write_file("hello.txt", CONTENT).with_text(APPROVE)).unwrap();
    let sb = gemini_sandbox(&clis.gemini, true);
    let id = "d-20260101-000000-bbbbb7";
    let out = sb.run_vnx(
        &server.gemini_env(&sb.home),
        &["run", "--json", "--dispatch-id", id, TASK],
    );
    let ctx = all(&out);
    let r = receipt(&out);
    let review = gate(&r, "cross-review");
    assert_eq!(review["verdict"], "pass", "{ctx}");
    assert!(
        review["detail"]
            .as_str()
            .unwrap()
            .contains("gemini-2.5-pro"),
        "{ctx}"
    );
    let models: Vec<String> = server
        .model_requests()
        .iter()
        .map(requested_model)
        .collect();
    assert!(
        models.iter().any(|m| m.contains("gemini-2.5-flash")),
        "{models:?}"
    );
    assert!(
        models.iter().any(|m| m.contains("gemini-2.5-pro")),
        "{models:?}"
    );
    assert_eq!(out.status.code(), Some(0), "{ctx}");
}
