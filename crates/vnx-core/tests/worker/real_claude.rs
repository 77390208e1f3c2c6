//! Claude Code 2.1.330 end to end: headless, pty and tmux lanes; errors,
//! retries, resume, the auth guard.

use vnx_agents::{DispatchRequest, ProviderKind};
use vnx_core::WorkerError;
use vnx_exec::CancelToken;
use vnx_testkit::{MockServer, Script, write_claude_home};
use vnx_types::{Billing, CostSource, Lane, OutcomeClass};

use crate::common::{
    CONTENT, FILE, PROMPT, Sandbox, clis, describe, gate, mock_input_tokens, options, provider,
    run_worker,
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
    assert_eq!(
        run.cli_version.as_deref(),
        Some("2.1.330 (Claude Code)"),
        "{ctx}"
    );
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
    assert_eq!(
        run.attempts[0].session_id.as_deref(),
        Some(session),
        "{ctx}"
    );
    let log = run.event_log().unwrap();
    assert!(log.bytes > 0 && log.sha256.len() == 64, "{ctx}");
    assert!(
        std::fs::read_to_string(&log.path)
            .unwrap()
            .contains(session),
        "{ctx}"
    );
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

/// One claude headless run against `script` with `max_retries`.
async fn claude_run(
    script: Script,
    max_retries: u32,
) -> (vnx_core::WorkerRun, MockServer, Sandbox) {
    let clis = clis();
    let server = MockServer::start(script).unwrap();
    let sb = Sandbox::new();
    let mut opts = options(&sb, claude_env(&server, &sb));
    opts.max_retries = max_retries;
    let p = provider(ProviderKind::Claude, &clis.claude, Vec::new());
    let run = run_worker(
        &request(&sb),
        &p,
        Lane::Headless,
        &opts,
        &CancelToken::new(),
    )
    .await
    .unwrap();
    (run, server, sb)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_500_is_an_api_error_despite_subtype_success() {
    let _permit = gate().await;
    let (run, server, _sb) = claude_run(Script::status(500), 0).await;
    let ctx = describe(&run, Some(&server));
    assert_eq!(run.outcome.class, OutcomeClass::Api, "{ctx}");
    assert_eq!(run.outcome.http_status, Some(500), "{ctx}");
    assert_eq!(run.outcome.exit_code, Some(1), "{ctx}");
    assert!(
        run.outcome.saw_final,
        "classified from the result line: {ctx}"
    );
    assert!(run.outcome.retryable(), "{ctx}");
    assert_eq!(run.attempts.len(), 1, "{ctx}");
    assert!(
        run.attempts[0]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("500")),
        "{ctx}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_429_is_rate_limited() {
    let _permit = gate().await;
    let (run, server, _sb) = claude_run(Script::rate_limited(1), 0).await;
    let ctx = describe(&run, Some(&server));
    assert_eq!(run.outcome.class, OutcomeClass::RateLimited, "{ctx}");
    assert!(!run.succeeded(), "{ctx}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_first_requests_failing_succeed_after_retries() {
    let _permit = gate().await;
    let script = Script::write_file(FILE, CONTENT).failing_first(2, 500);
    let (run, server, sb) = claude_run(script, 3).await;
    let ctx = describe(&run, Some(&server));
    assert_eq!(run.outcome.class, OutcomeClass::Success, "{ctx}");
    assert_eq!(sb.written().as_deref(), Some(CONTENT), "{ctx}");
    let classes: Vec<_> = run.attempts.iter().map(|a| a.outcome).collect();
    assert_eq!(
        classes,
        [OutcomeClass::Api, OutcomeClass::Api, OutcomeClass::Success],
        "{ctx}"
    );
    // Each attempt its own session; usage and cost summed over attempts.
    let ids: Vec<_> = run.attempts.iter().map(|a| a.session_id.clone()).collect();
    assert!(ids.iter().all(Option::is_some), "{ctx}");
    assert!(ids[0] != ids[1] && ids[1] != ids[2], "{ctx}");
    assert_eq!(run.attempts[0].exit_code, Some(1), "{ctx}");
    let sum = run.attempts.iter().map(|a| a.usage.total()).sum::<u64>();
    assert_eq!(run.usage.total(), sum, "{ctx}");
    assert_eq!(
        run.cost_usd_micros,
        run.attempts.iter().map(|a| a.cost_usd_micros).sum::<u64>(),
        "{ctx}"
    );
    assert_eq!(run.event_logs.len(), 3, "{ctx}");
    assert!(run.warnings.iter().any(|w| w.contains("retrying")), "{ctx}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_malformed_stream_is_not_success() {
    let _permit = gate().await;
    let (run, server, _sb) = claude_run(Script::malformed(), 0).await;
    let ctx = describe(&run, Some(&server));
    assert!(!run.succeeded(), "{ctx}");
    assert!(run.outcome.error.is_some(), "{ctx}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_resume_continues_the_first_session() {
    let _permit = gate().await;
    let clis = clis();
    let server = MockServer::start(Script::text("First answer.")).unwrap();
    let sb = Sandbox::new();
    let opts = options(&sb, claude_env(&server, &sb));
    let p = provider(ProviderKind::Claude, &clis.claude, Vec::new());
    let mut req = request(&sb);
    req.prompt = "Remember the word PAPAYA.".to_owned();
    let first = run_worker(&req, &p, Lane::Headless, &opts, &CancelToken::new())
        .await
        .unwrap();
    assert!(first.succeeded(), "{}", describe(&first, Some(&server)));
    let id = first.session_id().unwrap().to_owned();

    server.set_script(Script::text("Second answer."));
    let mut follow = request(&sb);
    follow.prompt = "Which word did I ask you to remember?".to_owned();
    follow.resume_session_id = Some(id.clone());
    let mut opts2 = opts.clone();
    opts2.run_dir = sb.run_dir.join("follow-up");
    let second = run_worker(&follow, &p, Lane::Headless, &opts2, &CancelToken::new())
        .await
        .unwrap();
    let ctx = describe(&second, Some(&server));
    assert!(second.succeeded(), "{ctx}");
    assert_eq!(second.session_id(), Some(id.as_str()), "{ctx}");
    assert_eq!(
        second.outcome.final_text.as_deref(),
        Some("Second answer."),
        "{ctx}"
    );
    // The resumed conversation reached the model with the first turn in it.
    let last = server.model_requests().pop().unwrap();
    let body = serde_json::to_string(&last.body).unwrap();
    assert!(
        body.contains("PAPAYA") && body.contains("First answer."),
        "{ctx}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_mode_refuses_an_api_key_before_spawning() {
    let clis = clis();
    let server = MockServer::start(Script::text("never")).unwrap();
    let sb = Sandbox::new();
    let mut env = claude_env(&server, &sb);
    env.push((
        "ANTHROPIC_API_KEY".into(),
        "sk-ant-api03-secretsecretsecret".into(),
    ));
    let opts = options(&sb, env);
    let p = provider(ProviderKind::Claude, &clis.claude, Vec::new());
    let err = run_worker(
        &request(&sb),
        &p,
        Lane::Headless,
        &opts,
        &CancelToken::new(),
    )
    .await
    .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, WorkerError::Build(_)), "{msg}");
    assert!(
        msg.contains("ANTHROPIC_API_KEY") && msg.contains("--billing api"),
        "{msg}"
    );
    assert!(!msg.contains("secretsecret"), "{msg}");
    assert!(server.requests().is_empty(), "nothing may reach the model");
    assert!(!sb.run_dir.join("attempt-1.events.ndjson").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_billing_runs_with_the_key_and_reports_its_source() {
    let _permit = gate().await;
    let clis = clis();
    let server = MockServer::start(Script::text("Billed.")).unwrap();
    let sb = Sandbox::new();
    let mut env = claude_env(&server, &sb);
    env.retain(|(k, _)| k != "CLAUDE_CODE_OAUTH_TOKEN");
    env.push((
        "ANTHROPIC_API_KEY".into(),
        "sk-ant-api03-mockmockmockmock".into(),
    ));
    // An enclosing claude session's markers must not reach the worker.
    env.push(("CLAUDECODE".into(), "1".into()));
    let opts = options(&sb, env);
    let p = provider(ProviderKind::Claude, &clis.claude, Vec::new());
    let mut req = request(&sb);
    req.billing = Billing::Api;
    let run = run_worker(&req, &p, Lane::Headless, &opts, &CancelToken::new())
        .await
        .unwrap();
    let ctx = describe(&run, Some(&server));
    assert!(run.succeeded(), "{ctx}");
    assert_eq!(run.billing, Billing::Api);
    assert_eq!(
        run.outcome.api_key_source.as_deref(),
        Some("ANTHROPIC_API_KEY"),
        "{ctx}"
    );
    assert!(!run.api_key_source_flagged, "{ctx}");
    let sent = server.model_requests();
    assert!(
        sent.iter()
            .all(|r| r.header("x-api-key") == Some("sk-ant-api03-mockmockmockmock")),
        "{ctx}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_run_billed_through_an_api_key_helper_is_flagged() {
    let _permit = gate().await;
    let clis = clis();
    let server = MockServer::start(Script::text("Helper.")).unwrap();
    let sb = Sandbox::new();
    let mut env = claude_env(&server, &sb);
    env.retain(|(k, _)| k != "CLAUDE_CODE_OAUTH_TOKEN");
    let opts = options(&sb, env);
    let p = provider(ProviderKind::Claude, &clis.claude, Vec::new());
    let mut req = request(&sb);
    req.settings = Some(r#"{"apiKeyHelper":"echo sk-ant-api03-helperhelperhelper"}"#.to_owned());
    let run = run_worker(&req, &p, Lane::Headless, &opts, &CancelToken::new())
        .await
        .unwrap();
    let ctx = describe(&run, Some(&server));
    assert_eq!(
        run.outcome.api_key_source.as_deref(),
        Some("apiKeyHelper"),
        "{ctx}"
    );
    assert!(run.api_key_source_flagged, "{ctx}");
    assert!(
        run.warnings.iter().any(|w| w.contains("subscription mode")),
        "{ctx}"
    );
}

/// Command lines of live processes mentioning `needle` (zombies excluded).
fn live_processes_with(needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().filter_map(Result::ok) {
        let dir = entry.path();
        let stat = std::fs::read_to_string(dir.join("stat")).unwrap_or_default();
        if stat.contains(") Z ") {
            continue;
        }
        let cmdline = std::fs::read(dir.join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) {
            out.push(format!(
                "{} [{stat}]",
                cmdline.chars().take(120).collect::<String>()
            ));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_tmux_dispatch_that_never_completes_times_out_and_is_killed() {
    let _permit = gate().await;
    let clis = clis();
    // The model never finishes answering within the dispatch's timeout.
    let script = Script::text("slow").with_event_delay(std::time::Duration::from_mins(1));
    let server = MockServer::start(script).unwrap();
    let sb = Sandbox::new();
    write_claude_home(&sb.home, &[&sb.repo]).unwrap();
    let mut opts = options(&sb, claude_env(&server, &sb));
    opts.total_timeout = Some(std::time::Duration::from_secs(12));
    let p = provider(ProviderKind::Claude, &clis.claude, Vec::new());
    let mut req = request(&sb);
    let session = uuid::Uuid::new_v4().to_string();
    req.session_id = Some(session.clone());
    let started = std::time::Instant::now();
    let run = run_worker(&req, &p, Lane::Tmux, &opts, &CancelToken::new())
        .await
        .unwrap();
    let ctx = describe(&run, Some(&server));
    assert_eq!(run.outcome.class, OutcomeClass::Timeout, "{ctx}");
    assert_eq!(run.session_id(), Some(session.as_str()), "{ctx}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(45),
        "{ctx}"
    );
    assert!(run.last_report.killed, "{ctx}");
    // Nothing started for the dispatch outlives it: claude, and the private
    // tmux server (whose argv names the session too), which exits on its own
    // once its last session is killed. Both get a moment to finish exiting.
    let first_look = live_processes_with(&session);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !live_processes_with(&session).is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let left = live_processes_with(&session);
    if !first_look.is_empty() {
        eprintln!("just after the run returned: {first_look:?}");
    }
    assert!(left.is_empty(), "processes left: {left:?}\n{ctx}");
}
