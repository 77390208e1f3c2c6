//! Codex 0.169 and Gemini CLI 0.61 end to end: headless and pty lanes, errors.

use vnx_agents::{DispatchRequest, ModelPrice, ProviderKind};

use vnx_exec::CancelToken;
use vnx_testkit::{MockServer, Script, write_gemini_home};
use vnx_types::{Billing, CostSource, Lane, OutcomeClass};

use crate::common::{
    CONTENT, FILE, PROMPT, Sandbox, clis, describe, gate, mock_input_tokens, options, provider,
    run_worker,
};

const CODEX_MODEL: &str = "gpt-6.1-sol";

async fn codex(script: Script, lane: Lane) -> (vnx_core::WorkerRun, MockServer, Sandbox) {
    let clis = clis();
    let server = MockServer::start(script).unwrap();
    let sb = Sandbox::new();
    let opts = options(&sb, server.codex_env(&sb.home));
    let mut p = provider(ProviderKind::Codex, &clis.codex, server.codex_args());
    // Codex 0.169's default model; its metadata makes codex offer the
    // apply_patch tool the mock calls. Not in the built-in price table, so
    // the provider's own `prices` give the estimate.
    p.config.prices.insert(
        CODEX_MODEL.to_owned(),
        ModelPrice {
            input: 1_250_000,
            output: 10_000_000,
            cache_read: Some(125_000),
            cache_write: None,
        },
    );
    let mut req = DispatchRequest::new(PROMPT, &sb.repo);
    req.model = Some(CODEX_MODEL.to_owned());
    // The mock provider's `env_key`: not on codex's allow-list, so passed by name.
    req.pass_env = vec!["MOCK_API_KEY".to_owned()];
    let run = run_worker(&req, &p, lane, &opts, &CancelToken::new())
        .await
        .unwrap();
    (run, server, sb)
}

/// Gemini with `general.maxAttempts` = `max_attempts` (its own retries; 10 by default).
async fn gemini(
    script: Script,
    lane: Lane,
    max_attempts: u32,
) -> (vnx_core::WorkerRun, MockServer, Sandbox) {
    let clis = clis();
    let server = MockServer::start(script).unwrap();
    let sb = Sandbox::new();
    write_gemini_home(&sb.home).unwrap();
    let settings = serde_json::json!({
        "security": {"auth": {"selectedType": "gemini-api-key"}},
        "general": {"maxAttempts": max_attempts},
    });
    std::fs::write(sb.home.join(".gemini/settings.json"), settings.to_string()).unwrap();
    let opts = options(&sb, server.gemini_env(&sb.home));
    let p = provider(ProviderKind::Gemini, &clis.gemini, Vec::new());
    let mut req = DispatchRequest::new(PROMPT, &sb.repo);
    req.model = Some("gemini-2.5-flash".to_owned());
    // Offline gemini logs in with GEMINI_API_KEY (the mock's): API billing
    // (subscription mode would remove the key).
    req.billing = Billing::Api;
    let run = run_worker(&req, &p, lane, &opts, &CancelToken::new())
        .await
        .unwrap();
    (run, server, sb)
}

fn check_tool_run(run: &vnx_core::WorkerRun, server: &MockServer, sb: &Sandbox, model: &str) {
    let ctx = describe(run, Some(server));
    assert_eq!(run.outcome.class, OutcomeClass::Success, "{ctx}");
    assert_eq!(sb.written().as_deref(), Some(CONTENT), "{ctx}");
    assert!(run.session_id().is_some_and(|s| !s.is_empty()), "{ctx}");
    assert_eq!(run.outcome.model.as_deref(), Some(model), "{ctx}");
    assert_eq!(run.usage.input_tokens, mock_input_tokens(server), "{ctx}");
    assert!(run.usage.output_tokens > 0, "{ctx}");
    assert_eq!(run.cost_source, CostSource::Estimated, "{ctx}");
    assert!(run.cost_usd_micros > 0, "{ctx}");
    assert!(run.outcome.price_table_version.is_some(), "{ctx}");
    assert!(run.cli_version.is_some(), "{ctx}");
    assert!(!run.outcome.files_written().is_empty(), "{ctx}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_headless_writes_the_file() {
    let _permit = gate().await;
    let (run, server, sb) = codex(Script::write_file(FILE, CONTENT), Lane::Headless).await;
    check_tool_run(&run, &server, &sb, CODEX_MODEL);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_pty_writes_the_file() {
    let _permit = gate().await;
    let (run, server, sb) = codex(Script::write_file(FILE, CONTENT), Lane::Pty).await;
    check_tool_run(&run, &server, &sb, CODEX_MODEL);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_500_is_an_api_error() {
    let _permit = gate().await;
    let (run, server, _sb) = codex(Script::status(500), Lane::Headless).await;
    let ctx = describe(&run, Some(&server));
    assert_eq!(run.outcome.class, OutcomeClass::Api, "{ctx}");
    assert!(run.outcome.retryable(), "{ctx}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_headless_writes_the_file() {
    let _permit = gate().await;
    let (run, server, sb) = gemini(Script::write_file(FILE, CONTENT), Lane::Headless, 3).await;
    check_tool_run(&run, &server, &sb, "gemini-2.5-flash");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_pty_writes_the_file() {
    let _permit = gate().await;
    let (run, server, sb) = gemini(Script::write_file(FILE, CONTENT), Lane::Pty, 3).await;
    check_tool_run(&run, &server, &sb, "gemini-2.5-flash");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_429_is_rate_limited() {
    let _permit = gate().await;
    let (run, server, _sb) = gemini(Script::rate_limited(1), Lane::Headless, 1).await;
    let ctx = describe(&run, Some(&server));
    assert_eq!(run.outcome.class, OutcomeClass::RateLimited, "{ctx}");
}

/// Runs `first` then a follow-up resuming its session; returns both runs.
async fn resume_pair(kind: ProviderKind) -> (vnx_core::WorkerRun, vnx_core::WorkerRun, MockServer) {
    let clis = clis();
    let server = MockServer::start(Script::text("First answer.")).unwrap();
    let sb = Sandbox::new();
    let (env, p, model) = if kind == ProviderKind::Codex {
        let mut p = provider(kind, &clis.codex, server.codex_args());
        p.config.default_model = Some(CODEX_MODEL.to_owned());
        (server.codex_env(&sb.home), p, CODEX_MODEL)
    } else {
        write_gemini_home(&sb.home).unwrap();
        let p = provider(kind, &clis.gemini, Vec::new());
        (server.gemini_env(&sb.home), p, "gemini-2.5-flash")
    };
    let opts = options(&sb, env);
    let mut req = DispatchRequest::new("Remember the word PAPAYA.", &sb.repo);
    req.model = Some(model.to_owned());
    req.pass_env = vec!["MOCK_API_KEY".to_owned()];
    if kind == ProviderKind::Gemini {
        // GEMINI_API_KEY against the mock: API billing. Codex's mock provider
        // reads MOCK_API_KEY, which no billing mode touches.
        req.billing = Billing::Api;
    }
    let first = run_worker(&req, &p, Lane::Headless, &opts, &CancelToken::new())
        .await
        .unwrap();
    assert!(first.succeeded(), "{}", describe(&first, Some(&server)));
    server.set_script(Script::text("Second answer."));
    let mut follow = req.clone();
    "Which word did I ask you to remember?".clone_into(&mut follow.prompt);
    follow.resume_session_id = first.session_id().map(str::to_owned);
    let mut opts2 = opts.clone();
    opts2.run_dir = sb.run_dir.join("follow-up");
    let second = run_worker(&follow, &p, Lane::Headless, &opts2, &CancelToken::new())
        .await
        .unwrap();
    (first, second, server)
}

fn check_resumed(first: &vnx_core::WorkerRun, second: &vnx_core::WorkerRun, server: &MockServer) {
    let ctx = describe(second, Some(server));
    assert!(second.succeeded(), "{ctx}");
    assert_eq!(second.session_id(), first.session_id(), "{ctx}");
    let last = server.model_requests().pop().unwrap();
    let body = serde_json::to_string(&last.body).unwrap();
    assert!(
        body.contains("PAPAYA") && body.contains("First answer."),
        "{ctx}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_exec_resume_continues_the_thread() {
    let _permit = gate().await;
    let (first, second, server) = resume_pair(ProviderKind::Codex).await;
    check_resumed(&first, &second, &server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_resume_continues_the_session() {
    let _permit = gate().await;
    let (first, second, server) = resume_pair(ProviderKind::Gemini).await;
    check_resumed(&first, &second, &server);
}
