//! Claude Code 2.1.330 end to end: headless, pty and tmux lanes; errors,
//! retries, resume, the auth guard.

use vnx_agents::{DispatchRequest, ProviderKind};
use vnx_core::{WorkerError, run_worker};
use vnx_exec::CancelToken;
use vnx_testkit::{MockServer, Script, write_claude_home};
use vnx_types::{Billing, CostSource, Lane, OutcomeClass};

use crate::common::{
    CONTENT, FILE, PROMPT, Sandbox, clis, describe, gate, mock_input_tokens, options, provider,
};

const MODEL: &str = "claude-sonnet-4-5";

fn request(sb: &Sandbox) -> DispatchRequest {
    let mut req = DispatchRequest::new(PROMPT, &sb.repo);
    req.model = Some(MODEL.to_owned());
    req
}

/// The claude environment with its own retries off (vnx's retries are tested).
fn claude_env(server: &MockServer, sb: &Sandbox) -> Vec<(String, String)> {
    let mut env = server.claude_env(&sb.home);
    env.push(("CLAUDE_CODE_MAX_RETRIES".into(), "0".into()));
    env
}

async fn tool_call_in(lane: Lane) {
    let _permit = gate().await;
    let clis = clis();
    let server = MockServer::start(Script::write_file(FILE, CONTENT)).unwrap();
    let sb = Sandbox::new();
    write_claude_home(&sb.home, &[&sb.repo]).unwrap();
    let opts = options(&sb, claude_env(&server, &sb));
    let p = provider(ProviderKind::Claude, &clis.claude, Vec::new());
    let run = run_worker(&request(&sb), &p, lane, &opts, &CancelToken::new())
        .await
        .unwrap();
    let ctx = describe(&run, Some(&server));
    assert_eq!(run.outcome.class, OutcomeClass::Success, "{ctx}");
    assert_eq!(sb.written().as_deref(), Some(CONTENT), "{ctx}");
    let session = run.session_id().unwrap_or_default();
    assert_eq!(session.len(), 36, "a UUID session id: {ctx}");
    assert_eq!(run.outcome.model.as_deref(), Some(MODEL), "{ctx}");
    assert_eq!(run.cli_version.as_deref(), Some("2.1.330 (Claude Code)"), "{ctx}");
    // Usage: input tokens are exactly what the mock reported over its requests.
    assert_eq!(run.usage.input_tokens, mock_input_tokens(&server), "{ctx}");
    assert!(run.usage.output_tokens > 0, "{ctx}");
    assert_eq!(run.usage.cache_read_tokens, 0, "{ctx}");
    assert_eq!(run.outcome.files_written().len(), 1, "{ctx}");
    assert!(run.outcome.files_written()[0].ends_with(FILE), "{ctx}");
    // Reported by claude: `result.total_cost_usd`, or the transcript's cost-state lines.
    assert_eq!(run.cost_source, CostSource::Reported, "{ctx}");
    if lane != Lane::Tmux {
        assert_eq!(run.outcome.api_key_source.as_deref(), Some("none"), "{ctx}");
    }
    assert!(run.cost_usd_micros > 0, "{ctx}");
    assert!(!run.api_key_source_flagged, "{ctx}");
    assert_eq!(run.attempts.len(), 1, "{ctx}");
    assert_eq!(run.attempts[0].session_id.as_deref(), Some(session), "{ctx}");
    let log = run.event_log().unwrap();
    assert!(log.bytes > 0 && log.sha256.len() == 64, "{ctx}");
    assert!(std::fs::read_to_string(&log.path).unwrap().contains(session), "{ctx}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_headless_writes_the_file() {
    tool_call_in(Lane::Headless).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_pty_writes_the_file() {
    tool_call_in(Lane::Pty).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_tmux_writes_the_file() {
    tool_call_in(Lane::Tmux).await;
}
