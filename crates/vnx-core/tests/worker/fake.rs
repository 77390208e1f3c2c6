//! The scripted fake agent (`tests/fake-agent`) for faults a real CLI can't be
//! made to show, and the errors around the run (missing binary, version range).

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use vnx_agents::{DispatchRequest, Provider, ProviderConfig, ProviderKind};
use vnx_core::WorkerError;
use vnx_exec::CancelToken;
use vnx_types::{Lane, OutcomeClass};

use crate::common::{Sandbox, describe, fake_provider, options, plain_env, run_worker};

async fn fake_run(script: &[&str], max_retries: u32) -> (vnx_core::WorkerRun, Sandbox) {
    let sb = Sandbox::new();
    let mut opts = options(&sb, plain_env(&sb));
    opts.max_retries = max_retries;
    opts.total_timeout = Some(Duration::from_secs(2));
    let req = DispatchRequest::new("do it", &sb.repo);
    let run = run_worker(
        &req,
        &fake_provider(script),
        Lane::Headless,
        &opts,
        &CancelToken::new(),
    )
    .await
    .unwrap();
    (run, sb)
}

#[tokio::test]
async fn a_hang_times_out_and_is_killed() {
    let started = Instant::now();
    let (run, _sb) = fake_run(
        &[
            "--line",
            r#"{"type":"system","subtype":"init","session_id":"s1"}"#,
            "--hang",
        ],
        2,
    )
    .await;
    let ctx = describe(&run, None);
    assert_eq!(run.outcome.class, OutcomeClass::Timeout, "{ctx}");
    assert_eq!(run.attempts.len(), 1, "a timeout is not retried: {ctx}");
    assert!(run.last_report.killed, "{ctx}");
    assert_eq!(run.outcome.session_id.as_deref(), Some("s1"), "{ctx}");
    assert!(started.elapsed() < Duration::from_secs(15), "{ctx}");
}

#[tokio::test]
async fn a_hang_after_the_final_event_is_success() {
    let (run, _sb) = fake_run(&["--hang-after-final"], 0).await;
    let ctx = describe(&run, None);
    assert_eq!(run.outcome.class, OutcomeClass::Success, "{ctx}");
    assert_eq!(
        run.last_report.ended_by,
        vnx_exec::EndedBy::Finished,
        "{ctx}"
    );
}

#[tokio::test]
async fn a_crash_before_any_output_is_crashed_and_retried() {
    let (run, _sb) = fake_run(&["--crash"], 1).await;
    let ctx = describe(&run, None);
    assert_eq!(run.outcome.class, OutcomeClass::Crashed, "{ctx}");
    assert_eq!(run.outcome.signal, Some(6), "SIGABRT: {ctx}");
    let classes: Vec<_> = run.attempts.iter().map(|a| a.outcome).collect();
    assert_eq!(
        classes,
        [OutcomeClass::Crashed, OutcomeClass::Crashed],
        "{ctx}"
    );
    assert!(
        run.attempts
            .iter()
            .all(|a| a.exit_code.is_none() && a.error.is_some()),
        "{ctx}"
    );
}

#[tokio::test]
async fn a_crash_after_output_is_not_retried() {
    let (run, _sb) = fake_run(
        &[
            "--line",
            r#"{"type":"system","subtype":"init","session_id":"s2"}"#,
            "--crash",
        ],
        2,
    )
    .await;
    let ctx = describe(&run, None);
    assert_eq!(run.outcome.class, OutcomeClass::Crashed, "{ctx}");
    assert_eq!(run.attempts.len(), 1, "{ctx}");
}

#[tokio::test]
async fn nothing_printed_and_exit_0_is_a_protocol_error() {
    let (run, _sb) = fake_run(&[], 2).await;
    let ctx = describe(&run, None);
    assert_eq!(run.outcome.class, OutcomeClass::Protocol, "{ctx}");
    assert_eq!(run.outcome.exit_code, Some(0), "{ctx}");
    assert_eq!(run.attempts.len(), 1, "{ctx}");
    assert_eq!(run.event_log().map(|l| l.bytes), Some(0), "{ctx}");
}

#[tokio::test]
async fn garbage_lines_are_kept_counted_and_not_success() {
    let (run, _sb) = fake_run(&["--garbage", "--non-utf8", "--exit", "0"], 0).await;
    let ctx = describe(&run, None);
    assert!(!run.succeeded(), "{ctx}");
    assert_eq!(run.outcome.class, OutcomeClass::Protocol, "{ctx}");
    assert!(run.outcome.unparseable_lines >= 4, "{ctx}");
    assert!(run.warnings.iter().any(|w| w.contains("not JSON")), "{ctx}");
    let log = run.event_log().unwrap();
    let bytes = std::fs::read(&log.path).unwrap();
    assert!(bytes.windows(16).any(|w| w == b"this is not json"), "{ctx}");
    assert_eq!(bytes.len() as u64, log.bytes);
}

#[tokio::test]
async fn a_prompt_beyond_the_argument_limit_goes_on_stdin() {
    let sb = Sandbox::new();
    let opts = options(&sb, plain_env(&sb));
    // 3 MB: far beyond Linux's 128 KiB per-argument and 2 MB total argv limits.
    let prompt = "p".repeat(3 * 1024 * 1024);
    let req = DispatchRequest::new(prompt.clone(), &sb.repo);
    let provider = fake_provider(&["--echo-stdin", "--final"]);
    let run = run_worker(&req, &provider, Lane::Headless, &opts, &CancelToken::new())
        .await
        .unwrap();
    let ctx = describe(&run, None);
    assert!(run.succeeded(), "{ctx}");
    let log = std::fs::read_to_string(&run.event_log().unwrap().path).unwrap();
    let first: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert_eq!(first["type"], "stdin");
    assert_eq!(first["len"].as_u64(), Some(prompt.len() as u64));
}

#[tokio::test]
async fn scrubbed_variables_never_reach_the_worker() {
    let sb = Sandbox::new();
    let mut env = plain_env(&sb);
    env.extend([
        (
            "ANTHROPIC_API_KEY".to_owned(),
            "sk-ant-api03-leakleakleakleak".to_owned(),
        ),
        ("CLAUDECODE".to_owned(), "1".to_owned()),
        ("CLAUDE_CODE_SESSION_ID".to_owned(), "outer".to_owned()),
    ]);
    let opts = options(&sb, env);
    let req = DispatchRequest::new("x", &sb.repo);
    let provider = fake_provider(&[
        "--print-env",
        "ANTHROPIC_API_KEY",
        "--print-env",
        "CLAUDECODE",
        "--print-env",
        "CLAUDE_CODE_SESSION_ID",
        "--print-env",
        "HOME",
        "--final",
    ]);
    let run = run_worker(&req, &provider, Lane::Headless, &opts, &CancelToken::new())
        .await
        .unwrap();
    let log = std::fs::read_to_string(&run.event_log().unwrap().path).unwrap();
    let seen: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|v: &serde_json::Value| v["type"] == "env")
        .collect();
    assert_eq!(seen.len(), 4, "{log}");
    for v in &seen[..3] {
        assert_eq!(v["set"], false, "{log}");
    }
    assert_eq!(seen[3]["set"], true, "{log}");
    assert!(!log.contains("leakleak"));
}

/// The outside finding: workers received every credential vnx had (AWS_*,
/// GITHUB_TOKEN, GH_TOKEN, cloud tokens). Now they inherit an allow-list plus
/// `[worker] pass_env`.
#[tokio::test]
async fn credentials_outside_the_allow_list_never_reach_the_worker() {
    let sb = Sandbox::new();
    let mut env = plain_env(&sb);
    env.extend(
        [
            ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEEXAMPLE00"),
            ("AWS_SECRET_ACCESS_KEY", "leakleak-aws"),
            ("GITHUB_TOKEN", "leakleak-github"),
            ("GH_TOKEN", "leakleak-gh"),
            ("GOOGLE_APPLICATION_CREDENTIALS", "/leakleak/sa.json"),
            ("AWS_PROFILE", "dev"),
            ("LC_ALL", "C.UTF-8"),
            ("https_proxy", "http://proxy.invalid:3128"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    let opts = options(&sb, env);
    let mut req = DispatchRequest::new("x", &sb.repo);
    req.pass_env = vec!["AWS_PROFILE".to_owned()];
    let vars = [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "GITHUB_TOKEN",
        "GH_TOKEN",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "AWS_PROFILE",
        "LC_ALL",
        "https_proxy",
        "PATH",
        "HOME",
    ];
    let mut script: Vec<&str> = vars.iter().flat_map(|v| ["--print-env", v]).collect();
    script.push("--final");
    let run = run_worker(
        &req,
        &fake_provider(&script),
        Lane::Headless,
        &opts,
        &CancelToken::new(),
    )
    .await
    .unwrap();
    let log = std::fs::read_to_string(&run.event_log().unwrap().path).unwrap();
    let seen: Vec<(String, bool)> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == "env")
        .map(|v| (v["var"].as_str().unwrap().to_owned(), v["set"] == true))
        .collect();
    let expected: Vec<(String, bool)> = vars
        .iter()
        .enumerate()
        .map(|(i, v)| ((*v).to_owned(), i >= 5))
        .collect();
    assert_eq!(seen, expected, "{log}");
    assert!(!log.contains("leakleak"), "{log}");
}

#[tokio::test]
async fn cancel_interrupts_and_stops_retrying() {
    let sb = Sandbox::new();
    let mut opts = options(&sb, plain_env(&sb));
    opts.max_retries = 3;
    let req = DispatchRequest::new("x", &sb.repo);
    let cancel = CancelToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        trigger.cancel();
    });
    let run = run_worker(
        &req,
        &fake_provider(&["--hang"]),
        Lane::Headless,
        &opts,
        &cancel,
    )
    .await
    .unwrap();
    assert_eq!(
        run.outcome.class,
        OutcomeClass::Interrupted,
        "{}",
        describe(&run, None)
    );
    assert_eq!(run.attempts.len(), 1);
}

#[tokio::test]
async fn a_missing_binary_names_provider_place_and_install_command() {
    let sb = Sandbox::new();
    let opts = options(
        &sb,
        vec![
            ("PATH".into(), "/nonexistent/bin".into()),
            ("HOME".into(), sb.home.display().to_string()),
        ],
    );
    let req = DispatchRequest::new("x", &sb.repo);
    let err = run_worker(
        &req,
        &Provider::builtin(ProviderKind::Gemini),
        Lane::Headless,
        &opts,
        &CancelToken::new(),
    )
    .await
    .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, WorkerError::BinaryNotFound { .. }), "{msg}");
    assert!(msg.contains("provider `gemini`"), "{msg}");
    assert!(msg.contains("/nonexistent/bin"), "{msg}");
    assert!(msg.contains("npm install -g @google/gemini-cli"), "{msg}");
    assert!(msg.contains("vnx doctor"), "{msg}");
}

#[tokio::test]
async fn a_version_outside_the_tested_range_is_a_warning() {
    let sb = Sandbox::new();
    let script = sb.root.path().join("claude-9");
    std::fs::write(
        &script,
        "#!/bin/sh\nif [ \"$1\" = --version ]; then echo '9.9.9 (Claude Code)'; exit 0; fi\ncat >/dev/null\n\
         echo '{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":false,\"session_id\":\"v9\",\"result\":\"ok\"}'\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let provider = Provider::from_config(
        "claude",
        ProviderConfig {
            binary: Some(script.display().to_string()),
            ..ProviderConfig::default()
        },
    )
    .unwrap();
    let opts = options(&sb, plain_env(&sb));
    let req = DispatchRequest::new("x", &sb.repo);
    let run = run_worker(&req, &provider, Lane::Headless, &opts, &CancelToken::new())
        .await
        .unwrap();
    let ctx = describe(&run, None);
    assert!(run.succeeded(), "{ctx}");
    assert_eq!(
        run.cli_version.as_deref(),
        Some("9.9.9 (Claude Code)"),
        "{ctx}"
    );
    assert!(
        run.warnings
            .iter()
            .any(|w| w.contains("claude 9.9.9 is outside the tested range 2.1.x")),
        "{ctx}"
    );
}

#[tokio::test]
async fn a_rejected_rate_limit_is_retried_after_its_reset_time() {
    let sb = Sandbox::new();
    let mut opts = options(&sb, plain_env(&sb));
    opts.max_retries = 1;
    opts.backoff.initial = Duration::from_millis(10);
    opts.backoff.max_rate_limit_wait = Duration::from_secs(5);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let limit = format!(
        r#"{{"type":"rate_limit_event","rate_limit_info":{{"status":"rejected","resetsAt":{},"rateLimitType":"five_hour"}}}}"#,
        now + 2
    );
    let provider = fake_provider(&["--line", &limit, "--exit", "1"]);
    let req = DispatchRequest::new("x", &sb.repo);
    let started = Instant::now();
    let run = run_worker(&req, &provider, Lane::Headless, &opts, &CancelToken::new())
        .await
        .unwrap();
    let ctx = describe(&run, None);
    let classes: Vec<_> = run.attempts.iter().map(|a| a.outcome).collect();
    assert_eq!(
        classes,
        [OutcomeClass::RateLimited, OutcomeClass::RateLimited],
        "{ctx}"
    );
    // Waited for the reset (1–2 s from now), not the 10 ms backoff.
    assert!(started.elapsed() >= Duration::from_millis(900), "{ctx}");
    assert!(started.elapsed() < Duration::from_secs(10), "{ctx}");
    assert!(
        run.warnings
            .iter()
            .any(|w| w.contains("ended rate_limited; retrying in")),
        "{ctx}"
    );
}

#[tokio::test]
async fn a_50_mb_line_is_counted_not_parsed_and_the_run_still_succeeds() {
    let (run, _sb) = fake_run(&["--huge-line", "52428800", "--final"], 0).await;
    let ctx = describe(&run, None);
    assert!(run.succeeded(), "{ctx}");
    assert_eq!(run.outcome.oversize_lines, 1, "{ctx}");
    assert!(
        run.warnings.iter().any(|w| w.contains("line size cap")),
        "{ctx}"
    );
    // Kept in the event log all the same.
    assert!(run.event_log().unwrap().bytes > 52_428_800, "{ctx}");
}

#[tokio::test]
async fn a_grandchild_holding_the_pipe_does_not_hold_the_run() {
    let started = Instant::now();
    let (run, _sb) = fake_run(&["--grandchild-holds-pipe", "--final"], 0).await;
    let ctx = describe(&run, None);
    assert!(run.succeeded(), "{ctx}");
    assert!(started.elapsed() < Duration::from_secs(10), "{ctx}");
    let log = std::fs::read_to_string(&run.event_log().unwrap().path).unwrap();
    let pid = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["type"] == "grandchild")
        .and_then(|v| v["pid"].as_u64())
        .unwrap();
    // The process group was killed: the grandchild is gone (or a zombie).
    // SIGKILL is asynchronous, so on a loaded machine give it a moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut stat;
    loop {
        stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat.is_empty() || stat.contains(") Z ") || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        stat.is_empty() || stat.contains(") Z "),
        "grandchild {pid} alive: {stat}"
    );
}

#[tokio::test]
async fn attempt_errors_are_redacted_and_events_reach_the_sink() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let sb = Sandbox::new();
    let mut opts = options(&sb, plain_env(&sb));
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&seen);
    opts.on_event = Some(Arc::new(move |_event: &vnx_agents::AgentEvent| {
        counter.fetch_add(1, Ordering::Relaxed);
    }));
    let result = r#"{"type":"result","subtype":"success","is_error":true,"api_error_status":401,"result":"Invalid API key sk-ant-api03-AbCdEfGhIjKlMnOp"}"#;
    let provider = fake_provider(&[
        "--line",
        r#"{"type":"system","subtype":"init","session_id":"r1"}"#,
        "--line",
        result,
        "--exit",
        "1",
    ]);
    let req = DispatchRequest::new("x", &sb.repo);
    let run = run_worker(&req, &provider, Lane::Headless, &opts, &CancelToken::new())
        .await
        .unwrap();
    let ctx = describe(&run, None);
    assert_eq!(run.outcome.class, OutcomeClass::Auth, "{ctx}");
    let error = run.attempts[0].error.as_deref().unwrap();
    assert!(
        error.contains("[REDACTED anthropic-api-key]") && !error.contains("AbCdEf"),
        "{ctx}"
    );
    assert_eq!(seen.load(Ordering::Relaxed), 2, "{ctx}");
}
