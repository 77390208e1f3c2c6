//! Parsers on recorded streams and on hand-made edge cases.

use serde_json::json;
use vnx_agents::{
    AgentEvent, ClaudeStreamParser, ClaudeTranscriptParser, CodexJsonParser, EndCause,
    GeminiStreamParser, ModelPrice, OutputFormat, ParseContext, PriceTable, ProcessEnd,
    StreamParser, TextParser, parser_for,
};
use vnx_types::{Billing, CostSource, OutcomeClass, Usage};

use crate::{ctx, run};

const CLAUDE: &[u8] = include_bytes!("../fixtures/claude-events.jsonl");
const CLAUDE_TOOLUSE: &[u8] = include_bytes!("../fixtures/claude-tooluse-events.jsonl");
const CLAUDE_PARTIAL: &[u8] = include_bytes!("../fixtures/claude-partial-events.jsonl");
const CLAUDE_TRANSCRIPT: &[u8] = include_bytes!("../fixtures/claude-interactive-transcript.jsonl");
const CODEX: &[u8] = include_bytes!("../fixtures/codex-events.jsonl");
const CODEX_TOOLUSE: &[u8] = include_bytes!("../fixtures/codex-tooluse-events.jsonl");
const CODEX_EXEC: &[u8] = include_bytes!("../fixtures/codex-tooluse-exec-events.jsonl");
const GEMINI: &[u8] = include_bytes!("../fixtures/gemini-events.jsonl");
const GEMINI_TOOLUSE: &[u8] = include_bytes!("../fixtures/gemini-tooluse-events.jsonl");

fn claude() -> ClaudeStreamParser {
    ClaudeStreamParser::new(ParseContext::default())
}

fn usage(input: u64, output: u64, cache_read: u64, cache_write: u64) -> Usage {
    Usage {
        input_tokens: input,
        output_tokens: output,
        cache_read_tokens: cache_read,
        cache_write_tokens: cache_write,
    }
}

fn lines(values: &[serde_json::Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for v in values {
        out.extend(serde_json::to_vec(v).unwrap());
        out.push(b'\n');
    }
    out
}

const INIT: &str = r#"{"type":"system","subtype":"init","session_id":"s-1","model":"claude-sonnet-5","apiKeySource":"none","claude_code_version":"2.1.330","tools":["Read"]}"#;

fn claude_error_result(status: Option<u16>, text: &str) -> serde_json::Value {
    json!({
        "type": "result", "subtype": "success", "is_error": true,
        "api_error_status": status, "duration_ms": 900, "num_turns": 1,
        "result": text, "session_id": "s-1", "total_cost_usd": 0,
        "usage": {"input_tokens": 0, "output_tokens": 0,
                  "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}
    })
}

fn stream_with(init: bool, rest: &[serde_json::Value]) -> Vec<u8> {
    let mut out = Vec::new();
    if init {
        out.extend(INIT.as_bytes());
        out.push(b'\n');
    }
    out.extend(lines(rest));
    out
}

// ---------------------------------------------------------------- claude

#[test]
fn claude_plain_run() {
    let (events, out) = run(claude(), CLAUDE, &ProcessEnd::exited(0));
    assert_eq!(out.class, OutcomeClass::Success);
    assert_eq!(
        out.session_id.as_deref(),
        Some("034e72a8-b03c-49a4-a8a1-162272ef933b")
    );
    assert_eq!(out.model.as_deref(), Some("claude-sonnet-5"));
    assert_eq!(out.cli_version.as_deref(), Some("2.1.197"));
    assert_eq!(out.api_key_source.as_deref(), Some("none"));
    assert_eq!(out.usage, usage(8603, 16, 0, 0));
    assert_eq!(out.cost_usd_micros, 26_049);
    assert_eq!(out.cost_source, CostSource::Reported);
    assert_eq!(out.price_table_version, None);
    assert_eq!(out.turns, 1);
    assert_eq!(out.duration_ms, Some(212));
    assert_eq!(
        out.final_text.as_deref(),
        Some("Hello from the mock Anthropic server.")
    );
    assert_eq!(out.stop_reason.as_deref(), Some("end_turn"));
    assert_eq!(out.rate_limits.len(), 1);
    assert_eq!(out.rate_limits[0].status, "allowed");
    assert!(out.saw_final);
    assert_eq!(out.error, None);
    assert_eq!((out.unknown_events, out.unparseable_lines), (0, 0));
    assert!(out.warnings(Billing::Subscription).is_empty());
    assert!(!out.retryable());
    match &events[0] {
        AgentEvent::Init { tools, .. } => assert!(tools.contains(&"Write".to_owned())),
        other => panic!("first event {other:?}"),
    }
    assert!(matches!(events.last(), Some(AgentEvent::Final(_))));
}

#[test]
fn claude_class_comes_from_result_not_exit_code() {
    let (_, out) = run(claude(), CLAUDE, &ProcessEnd::exited(1));
    assert_eq!(out.class, OutcomeClass::Success);
    assert_eq!(out.exit_code, Some(1));
    // Killed by vnx after the finish grace: still the result's class.
    let (_, out) = run(
        claude(),
        CLAUDE,
        &ProcessEnd::killed(15, EndCause::TimedOut),
    );
    assert_eq!(out.class, OutcomeClass::Success);
    assert_eq!(out.signal, Some(15));
}

#[test]
fn claude_tool_use_run_writes_hello() {
    let (events, out) = run(claude(), CLAUDE_TOOLUSE, &ProcessEnd::exited(0));
    assert_eq!(out.class, OutcomeClass::Success);
    assert_eq!(
        out.session_id.as_deref(),
        Some("9ded47c8-5038-4ef9-8dde-4b0374189766")
    );
    assert_eq!(out.usage, usage(17_356, 68, 0, 0));
    assert_eq!(out.cost_usd_micros, 53_088);
    assert_eq!(out.turns, 2);
    assert_eq!(out.tool_calls.len(), 1);
    let call = &out.tool_calls[0];
    assert_eq!(call.name, "Write");
    assert_eq!(call.id.as_deref(), Some("toolu_mock_81972f1df14f4469"));
    assert_eq!(call.input["content"], "Hello, world!\n");
    assert_eq!(
        out.files_written(),
        vec!["/home/dev/project/hello.txt".to_owned()]
    );
    let result = events
        .iter()
        .find_map(|e| match e {
            AgentEvent::ToolResult {
                id,
                is_error,
                output,
                ..
            } => Some((id, is_error, output)),
            _ => None,
        })
        .unwrap();
    assert_eq!(result.0.as_deref(), Some("toolu_mock_81972f1df14f4469"));
    assert!(!result.1);
    assert!(
        result
            .2
            .as_deref()
            .unwrap()
            .starts_with("File created successfully")
    );
    assert_eq!(
        out.final_text.as_deref(),
        Some("Done: I created hello.txt.")
    );
}

#[test]
fn claude_usage_events_dedupe_by_message_id() {
    let (events, _) = run(claude(), CLAUDE_TOOLUSE, &ProcessEnd::exited(0));
    let totals: Vec<Usage> = events
        .iter()
        .filter_map(|e| match e {
            AgentEvent::Usage { total } => Some(*total),
            _ => None,
        })
        .collect();
    // Two lines of message c52e… count once; then 65ed…; then the result's figure.
    assert_eq!(totals[0], usage(8613, 1, 0, 0));
    assert_eq!(totals[1], usage(8613, 1, 0, 0));
    assert_eq!(totals[2], usage(8613 + 8743, 2, 0, 0));
    assert_eq!(totals[3], usage(17_356, 68, 0, 0));
}

#[test]
fn claude_partial_messages() {
    let (events, out) = run(claude(), CLAUDE_PARTIAL, &ProcessEnd::exited(0));
    let streamed: String = events
        .iter()
        .filter_map(|e| match e {
            AgentEvent::TextDelta { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(streamed, "Hello from the mock Anthropic server.");
    assert_eq!(out.class, OutcomeClass::Success);
    assert_eq!(out.cost_usd_micros, 26_055);
    // `system/status` is not a type the parser knows: kept, counted, not fatal.
    assert_eq!(out.unknown_events, 1);
    let unknown = events
        .iter()
        .find_map(|e| match e {
            AgentEvent::Unknown { raw_type, raw } => Some((raw_type, raw)),
            _ => None,
        })
        .unwrap();
    assert_eq!(unknown.0, "system/status");
    assert_eq!(unknown.1["status"], "requesting");
}

#[test]
fn unknown_event_type_is_kept_and_not_fatal() {
    let mut stream = b"{\"type\":\"brand_new_event\",\"payload\":{\"x\":1}}\n".to_vec();
    stream.extend_from_slice(CLAUDE);
    let (events, out) = run(claude(), &stream, &ProcessEnd::exited(0));
    assert_eq!(out.class, OutcomeClass::Success);
    assert_eq!(out.unknown_events, 1);
    match &events[0] {
        AgentEvent::Unknown { raw_type, raw } => {
            assert_eq!(raw_type, "brand_new_event");
            assert_eq!(raw["payload"]["x"], 1);
        }
        other => panic!("{other:?}"),
    }
    let warnings = out.warnings(Billing::Subscription);
    assert_eq!(
        warnings,
        vec!["1 event(s) of unknown type kept as-is".to_owned()]
    );
}

#[test]
fn garbage_lines_are_kept_raw_and_counted() {
    let mut stream = b"Warning: something on stdout\n\xff\xfe not utf8\n[1,2]\n\n   \n".to_vec();
    stream.extend_from_slice(CLAUDE);
    let (events, out) = run(claude(), &stream, &ProcessEnd::exited(0));
    assert_eq!(out.class, OutcomeClass::Success);
    assert_eq!(out.unparseable_lines, 3);
    assert_eq!(
        events[0],
        AgentEvent::Unparseable {
            raw: b"Warning: something on stdout".to_vec()
        }
    );
    assert_eq!(
        events[1],
        AgentEvent::Unparseable {
            raw: b"\xff\xfe not utf8".to_vec()
        }
    );
}

#[test]
fn crlf_and_trailing_whitespace_are_tolerated() {
    let stream: Vec<u8> = CLAUDE
        .split(|b| *b == b'\n')
        .flat_map(|l| [l, b"  \r\n"].concat())
        .collect();
    let (_, out) = run(claude(), &stream, &ProcessEnd::exited(0));
    assert_eq!(out.class, OutcomeClass::Success);
    assert_eq!(out.unparseable_lines, 0);
}

#[test]
fn empty_stream_exit_zero_is_protocol() {
    let (events, out) = run(claude(), b"", &ProcessEnd::exited(0));
    assert!(events.is_empty());
    assert_eq!(out.class, OutcomeClass::Protocol);
    assert!(!out.saw_final);
    assert!(!out.retryable());
    assert!(out.error.unwrap().contains("no final event"));
}

#[test]
fn empty_stream_non_zero_exit_is_a_retryable_crash() {
    let end =
        ProcessEnd::exited(1).with_stderr("Error: boom ANTHROPIC_API_KEY=sk-ant-secretsecret");
    let (_, out) = run(claude(), b"", &end);
    assert_eq!(out.class, OutcomeClass::Crashed);
    assert!(out.retryable());
    let error = out.error.unwrap();
    assert!(error.contains("boom"));
    assert!(!error.contains("secretsecret"), "{error}");
}

#[test]
fn garbage_only_exit_zero_is_protocol() {
    let (_, out) = run(claude(), b"hello\nworld\n", &ProcessEnd::exited(0));
    assert_eq!(out.class, OutcomeClass::Protocol);
    assert_eq!(out.unparseable_lines, 2);
}

#[test]
fn truncated_stream_killed_by_signal_is_crashed() {
    // init + first assistant line, then the process died.
    let truncated: Vec<u8> = CLAUDE_TOOLUSE
        .split(|b| *b == b'\n')
        .take(2)
        .flat_map(|l| [l, b"\n"].concat())
        .collect();
    let (_, out) = run(claude(), &truncated, &ProcessEnd::signaled(9));
    assert_eq!(out.class, OutcomeClass::Crashed);
    assert!(!out.saw_final);
    assert_eq!(out.signal, Some(9));
    // It printed output before dying: not retried blindly.
    assert!(!out.retryable());
    assert_eq!(
        out.session_id.as_deref(),
        Some("9ded47c8-5038-4ef9-8dde-4b0374189766")
    );
    assert_eq!(out.usage, usage(8613, 1, 0, 0));
    // claude-sonnet-5 is not in the price table: cost unknown, not zero-as-fact.
    assert_eq!(out.cost_source, CostSource::Unknown);
    assert!(out.error.unwrap().contains("signal 9"));
}

#[test]
fn truncated_stream_timeout_and_interrupt() {
    let init = format!("{INIT}\n");
    let (_, out) = run(
        claude(),
        init.as_bytes(),
        &ProcessEnd::killed(15, EndCause::TimedOut),
    );
    assert_eq!(out.class, OutcomeClass::Timeout);
    let (_, out) = run(
        claude(),
        init.as_bytes(),
        &ProcessEnd::killed(2, EndCause::Interrupted),
    );
    assert_eq!(out.class, OutcomeClass::Interrupted);
    let (_, out) = run(
        claude(),
        init.as_bytes(),
        &ProcessEnd::killed(9, EndCause::Aborted),
    );
    assert_eq!(out.class, OutcomeClass::Protocol);
}

#[test]
fn claude_api_500_is_api_and_retryable() {
    let stream = stream_with(
        true,
        &[
            json!({"type":"system","subtype":"api_retry","attempt":1,"max_retries":2,
                   "retry_delay_ms":500,"error_status":500,"error":"Internal server error"}),
            json!({"type":"system","subtype":"api_retry","attempt":2,"max_retries":2,
                   "retry_delay_ms":1000,"error_status":500,"error":"Internal server error"}),
            claude_error_result(Some(500), "API Error: 500 {\"type\":\"error\"}"),
        ],
    );
    let (events, out) = run(claude(), &stream, &ProcessEnd::exited(1));
    assert_eq!(out.class, OutcomeClass::Api);
    assert_eq!(out.http_status, Some(500));
    assert_eq!(out.api_retries, 2);
    assert!(out.retryable());
    assert_eq!(out.final_text, None);
    assert!(out.error.unwrap().starts_with("API Error: 500"));
    assert!(events.iter().any(|e| matches!(
        e,
        AgentEvent::ApiRetry {
            attempt: Some(2),
            http_status: Some(500),
            delay_ms: Some(1000),
            ..
        }
    )));
}

#[test]
fn claude_429_is_rate_limited_with_reset_time() {
    let stream = stream_with(
        true,
        &[
            json!({"type":"rate_limit_event","rate_limit_info":{"status":"rejected",
                   "resetsAt":1_795_300_000u64,"rateLimitType":"five_hour"}}),
            claude_error_result(Some(429), "API Error: Rate limit reached"),
        ],
    );
    let (_, out) = run(claude(), &stream, &ProcessEnd::exited(1));
    assert_eq!(out.class, OutcomeClass::RateLimited);
    assert!(out.retryable());
    assert_eq!(out.rate_limit_resets_at(), Some(1_795_300_000));
    assert_eq!(out.rate_limits[0].kind.as_deref(), Some("five_hour"));
}

#[test]
fn claude_rejected_rate_limit_without_status_is_rate_limited() {
    let stream = stream_with(
        true,
        &[
            json!({"type":"rate_limit_event","rate_limit_info":{"status":"rejected","resetsAt":1_795_300_000_000u64}}),
            claude_error_result(None, "Claude usage limit reached"),
        ],
    );
    let (_, out) = run(claude(), &stream, &ProcessEnd::exited(1));
    assert_eq!(out.class, OutcomeClass::RateLimited);
    // Milliseconds are normalized to seconds.
    assert_eq!(out.rate_limit_resets_at(), Some(1_795_300_000));
    // Rejected but no result line at all: still rate limited.
    let stream = stream_with(
        true,
        &[json!({"type":"rate_limit_event","rate_limit_info":{"status":"rejected"}})],
    );
    let (_, out) = run(claude(), &stream, &ProcessEnd::exited(1));
    assert_eq!(out.class, OutcomeClass::RateLimited);
}

#[test]
fn claude_auth_errors() {
    for status in [401u16, 403] {
        let stream = stream_with(
            true,
            &[claude_error_result(Some(status), "Invalid API key")],
        );
        let (_, out) = run(claude(), &stream, &ProcessEnd::exited(1));
        assert_eq!(out.class, OutcomeClass::Auth, "status {status}");
        assert!(!out.retryable());
    }
    let stream = stream_with(
        true,
        &[claude_error_result(
            None,
            "Invalid API key · Please run /login",
        )],
    );
    let (_, out) = run(claude(), &stream, &ProcessEnd::exited(1));
    assert_eq!(out.class, OutcomeClass::Auth);
}

#[test]
fn claude_other_4xx_is_api_not_retryable() {
    let stream = stream_with(
        true,
        &[claude_error_result(Some(400), "Prompt is too long")],
    );
    let (_, out) = run(claude(), &stream, &ProcessEnd::exited(1));
    assert_eq!(out.class, OutcomeClass::Api);
    assert!(!out.retryable());
}

#[test]
fn claude_limits() {
    let max_turns = json!({"type":"result","subtype":"error_max_turns","is_error":true,
        "num_turns":3,"duration_ms":10,"total_cost_usd":0.5,"session_id":"s-1"});
    let (_, out) = run(
        claude(),
        &stream_with(true, &[max_turns]),
        &ProcessEnd::exited(1),
    );
    assert_eq!(out.class, OutcomeClass::MaxTurns);
    assert_eq!(out.turns, 3);
    assert_eq!(out.cost_usd_micros, 500_000);
    let budget = json!({"type":"result","subtype":"error_max_budget_usd","is_error":true,
        "num_turns":2,"total_cost_usd":1.000_000_4,"session_id":"s-1"});
    let (_, out) = run(
        claude(),
        &stream_with(true, &[budget]),
        &ProcessEnd::exited(1),
    );
    assert_eq!(out.class, OutcomeClass::MaxBudget);
    assert_eq!(out.cost_usd_micros, 1_000_000);
}

#[test]
fn claude_structured_output_and_redacted_error() {
    let ok = json!({"type":"result","subtype":"success","is_error":false,"result":"{}",
        "structured_output":{"status":"done","files":["a.rs"]},"total_cost_usd":0.001,"num_turns":1});
    let (_, out) = run(claude(), &stream_with(true, &[ok]), &ProcessEnd::exited(0));
    assert_eq!(out.structured_output.unwrap()["files"][0], "a.rs");
    let leaky = claude_error_result(
        Some(500),
        "upstream said Bearer abcdefghijklmnop and sk-ant-api03-XYZXYZXYZXYZ",
    );
    let (_, out) = run(
        claude(),
        &stream_with(true, &[leaky]),
        &ProcessEnd::exited(1),
    );
    let error = out.error.unwrap();
    assert!(
        error.contains("Bearer [REDACTED bearer-token]")
            && error.contains("[REDACTED anthropic-api-key]"),
        "{error}"
    );
    assert!(!error.contains("XYZXYZ"));
}

#[test]
fn api_key_source_warning_in_outcome() {
    let stream = String::from_utf8(CLAUDE.to_vec()).unwrap().replace(
        r#""apiKeySource":"none""#,
        r#""apiKeySource":"ANTHROPIC_API_KEY""#,
    );
    let (_, out) = run(claude(), stream.as_bytes(), &ProcessEnd::exited(0));
    assert_eq!(out.api_key_source.as_deref(), Some("ANTHROPIC_API_KEY"));
    let warnings = out.warnings(Billing::Subscription);
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0].starts_with("api_key_source is \"ANTHROPIC_API_KEY\" in subscription mode")
    );
    assert!(out.warnings(Billing::Api).is_empty());
}

#[test]
fn saw_final_flips_on_result_line() {
    let mut p = claude();
    let all: Vec<&[u8]> = CLAUDE.split(|b| *b == b'\n').collect();
    for line in &all[..3] {
        p.feed_line(line);
        assert!(!p.saw_final());
    }
    p.feed_line(all[3]);
    assert!(p.saw_final());
    // finish can be called again with the same answer.
    let a = p.finish(&ProcessEnd::exited(0));
    let b = p.finish(&ProcessEnd::exited(0));
    assert_eq!(a, b);
}

// ---------------------------------------------------------------- transcript

#[test]
fn claude_transcript() {
    let parser = ClaudeTranscriptParser::new(ParseContext::default());
    let (events, out) = run(parser, CLAUDE_TRANSCRIPT, &ProcessEnd::exited(0));
    assert_eq!(out.class, OutcomeClass::Success);
    assert_eq!(
        out.session_id.as_deref(),
        Some("11111111-2222-3333-4444-555555555556")
    );
    assert_eq!(out.cli_version.as_deref(), Some("2.1.330"));
    assert_eq!(out.model.as_deref(), Some("claude-sonnet-5-5"));
    assert_eq!(out.usage, usage(12, 7, 0, 0));
    assert_eq!(out.cost_usd_micros, 94);
    assert_eq!(out.cost_source, CostSource::Reported);
    assert_eq!(out.turns, 1);
    assert_eq!(out.duration_ms, Some(179));
    assert_eq!(
        out.final_text.as_deref(),
        Some("Hello from the local model.")
    );
    assert_eq!(out.unknown_events, 0);
    assert_eq!(out.unparseable_lines, 0);
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, AgentEvent::Final(_)))
            .count(),
        1
    );
}

#[test]
fn claude_transcript_dedupes_usage_by_message_id() {
    let assistant = CLAUDE_TRANSCRIPT
        .split(|b| *b == b'\n')
        .find(|l| l.windows(21).any(|w| w == b"\"type\": \"assistant\", "))
        .unwrap();
    let mut p = ClaudeTranscriptParser::new(ParseContext::default());
    p.feed_line(assistant);
    p.feed_line(assistant);
    let other = String::from_utf8(assistant.to_vec())
        .unwrap()
        .replace("\"msg_1\"", "\"msg_2\"");
    p.feed_line(other.as_bytes());
    // No turn_duration line, but the last message ended its turn.
    let out = p.finish(&ProcessEnd::exited(0));
    assert_eq!(out.usage, usage(24, 14, 0, 0));
    assert_eq!(out.class, OutcomeClass::Success);
    // No cost-state line and an unpriced model: unknown.
    assert_eq!(out.cost_source, CostSource::Unknown);
}

#[test]
fn claude_transcript_api_error_turn() {
    let lines = lines(&[
        json!({"type":"user","message":{"role":"user","content":"go"},"sessionId":"s","version":"2.1.330"}),
        json!({"type":"assistant","isApiErrorMessage":true,"error":"rate_limit",
               "message":{"id":"e1","model":"<synthetic>","role":"assistant",
                          "content":[{"type":"text","text":"API Error: Rate limit reached"}]}}),
        json!({"type":"system","subtype":"turn_duration","durationMs":40}),
    ]);
    let parser = ClaudeTranscriptParser::new(ParseContext::default());
    let (_, out) = run(parser, &lines, &ProcessEnd::exited(0));
    assert_eq!(out.class, OutcomeClass::RateLimited);
    assert_eq!(out.model, None);
}

// ---------------------------------------------------------------- codex

#[test]
fn codex_plain_run_with_estimated_cost() {
    let (_, out) = run(
        CodexJsonParser::new(ctx(Some("gpt-5"))),
        CODEX,
        &ProcessEnd::exited(0),
    );
    assert_eq!(out.class, OutcomeClass::Success);
    assert_eq!(
        out.session_id.as_deref(),
        Some("01a1ff9b-7847-7a13-bd14-ee4814867c8c")
    );
    assert_eq!(out.model.as_deref(), Some("gpt-5"));
    assert_eq!(out.usage, usage(13_563, 51, 0, 0));
    // 13563 × $1.25/M + 51 × $10/M = 17463.75 micro-USD → 17464.
    assert_eq!(out.cost_usd_micros, 17_464);
    assert_eq!(out.cost_source, CostSource::Estimated);
    assert_eq!(out.price_table_version, Some(1));
    assert_eq!(out.turns, 1);
    assert_eq!(
        out.final_text.as_deref(),
        Some("Hello from the mock OpenAI server.")
    );
    assert_eq!(out.api_key_source, None);
}

#[test]
fn codex_without_model_has_unknown_cost() {
    let (_, out) = run(
        CodexJsonParser::new(ctx(None)),
        CODEX,
        &ProcessEnd::exited(0),
    );
    assert_eq!(out.cost_source, CostSource::Unknown);
    assert_eq!(out.cost_usd_micros, 0);
    assert!(
        out.warnings(Billing::Subscription)
            .iter()
            .any(|w| w.starts_with("cost unknown"))
    );
}

#[test]
fn codex_file_change() {
    let (events, out) = run(
        CodexJsonParser::new(ctx(None)),
        CODEX_TOOLUSE,
        &ProcessEnd::exited(0),
    );
    assert_eq!(out.class, OutcomeClass::Success);
    assert_eq!(
        out.session_id.as_deref(),
        Some("01a1ff9b-9378-7670-8fe5-43a09e23ffc8")
    );
    assert_eq!(out.usage, usage(27_632, 122, 0, 0));
    // item.started + item.completed of the same item: one call, one result.
    assert_eq!(out.tool_calls.len(), 1);
    assert_eq!(out.tool_calls[0].name, "file_change");
    assert_eq!(
        out.files_written(),
        vec!["/home/dev/project/hello.txt".to_owned()]
    );
    let results: Vec<_> = events
        .iter()
        .filter(|e| matches!(e, AgentEvent::ToolResult { .. }))
        .collect();
    assert_eq!(results.len(), 1);
    assert_eq!(
        out.final_text.as_deref(),
        Some("Done: I created hello.txt.")
    );
}

#[test]
fn codex_command_execution() {
    let (events, out) = run(
        CodexJsonParser::new(ctx(None)),
        CODEX_EXEC,
        &ProcessEnd::exited(0),
    );
    assert_eq!(out.tool_calls.len(), 1);
    let call = &out.tool_calls[0];
    assert_eq!(call.name, "command_execution");
    assert_eq!(call.id.as_deref(), Some("item_0"));
    assert!(
        call.input["command"]
            .as_str()
            .unwrap()
            .contains("> hello.txt")
    );
    assert!(events.iter().any(|e| matches!(
        e,
        AgentEvent::ToolResult { is_error: false, status: Some(s), .. } if s == "completed"
    )));
    assert_eq!(out.usage, usage(27_676, 114, 0, 0));
}

#[test]
fn codex_usage_normalized_and_last_turn_wins() {
    let stream = lines(&[
        json!({"type":"thread.started","thread_id":"t-1"}),
        json!({"type":"turn.completed","usage":{"input_tokens":1000,"cached_input_tokens":400,
               "cache_write_input_tokens":0,"output_tokens":50,"reasoning_output_tokens":20}}),
        json!({"type":"turn.completed","usage":{"input_tokens":3000,"cached_input_tokens":1200,
               "cache_write_input_tokens":300,"output_tokens":90,"reasoning_output_tokens":30}}),
    ]);
    let (_, out) = run(
        CodexJsonParser::new(ctx(Some("gpt-5"))),
        &stream,
        &ProcessEnd::exited(0),
    );
    assert_eq!(out.usage, usage(1500, 90, 1200, 300));
    assert_eq!(out.turns, 2);
    // 1500×1.25 + 90×10 + 1200×0.125 + 300×1.25 = 1875 + 900 + 150 + 375 = 3300
    assert_eq!(out.cost_usd_micros, 3300);
}

#[test]
fn codex_failures() {
    let failed = lines(&[
        json!({"type":"thread.started","thread_id":"t-1"}),
        json!({"type":"error","message":"Reconnecting... 1/5"}),
        json!({"type":"turn.failed","error":{"message":"unexpected status 429 Too Many Requests: slow down"}}),
    ]);
    let (_, out) = run(
        CodexJsonParser::new(ctx(None)),
        &failed,
        &ProcessEnd::exited(1),
    );
    assert_eq!(out.class, OutcomeClass::RateLimited);
    assert_eq!(out.http_status, Some(429));
    assert!(out.retryable());

    let server = lines(&[
        json!({"type":"turn.failed","error":{"message":"stream error: 503 Service Unavailable"}}),
    ]);
    let (_, out) = run(
        CodexJsonParser::new(ctx(None)),
        &server,
        &ProcessEnd::exited(1),
    );
    assert_eq!((out.class, out.http_status), (OutcomeClass::Api, Some(503)));
    assert!(out.retryable());

    // An error event and a non-zero exit but no turn.failed: class from the status.
    let no_final = lines(&[
        json!({"type":"thread.started","thread_id":"t-1"}),
        json!({"type":"error","message":"unexpected status 401 Unauthorized"}),
    ]);
    let (_, out) = run(
        CodexJsonParser::new(ctx(None)),
        &no_final,
        &ProcessEnd::exited(1),
    );
    assert_eq!(out.class, OutcomeClass::Auth);
    assert_eq!(
        out.error.as_deref(),
        Some("unexpected status 401 Unauthorized")
    );
}

#[test]
fn codex_unknown_item_type_is_kept() {
    let stream = lines(&[
        json!({"type":"item.completed","item":{"id":"item_9","type":"hologram","x":1}}),
        json!({"type":"turn.completed","usage":{"input_tokens":1,"output_tokens":1}}),
    ]);
    let (events, out) = run(
        CodexJsonParser::new(ctx(None)),
        &stream,
        &ProcessEnd::exited(0),
    );
    assert_eq!(out.class, OutcomeClass::Success);
    assert_eq!(out.unknown_events, 1);
    assert!(
        matches!(&events[0], AgentEvent::Unknown { raw_type, .. } if raw_type == "item/hologram")
    );
}

// ---------------------------------------------------------------- gemini

fn gemini_prices() -> ParseContext {
    let mut overrides = std::collections::BTreeMap::new();
    overrides.insert(
        "gemini-3.5-flash-lite".to_owned(),
        ModelPrice {
            input: 100_000,
            output: 400_000,
            cache_read: None,
            cache_write: None,
        },
    );
    overrides.insert(
        "gemini-3.8-flash".to_owned(),
        ModelPrice {
            input: 300_000,
            output: 2_500_000,
            cache_read: None,
            cache_write: None,
        },
    );
    ParseContext {
        prices: PriceTable::builtin().with_overrides(&overrides),
        requested_model: None,
    }
}

#[test]
fn gemini_plain_run() {
    let (events, out) = run(
        GeminiStreamParser::new(ParseContext::default()),
        GEMINI,
        &ProcessEnd::exited(0),
    );
    assert_eq!(out.class, OutcomeClass::Success);
    assert_eq!(
        out.session_id.as_deref(),
        Some("6f35b56b-2f7f-42b7-b4ab-a51964dfec64")
    );
    // `init.model` is `auto`; the model with most tokens in stats answered.
    assert_eq!(out.model.as_deref(), Some("gemini-3.8-flash"));
    assert_eq!(out.usage, usage(9050, 30, 0, 0));
    assert_eq!(out.duration_ms, Some(83));
    assert_eq!(
        out.final_text.as_deref(),
        Some("Hello from the mock Gemini server.")
    );
    assert_eq!(out.cost_source, CostSource::Unknown);
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, AgentEvent::TextDelta { .. }))
            .count(),
        6
    );
}

#[test]
fn gemini_cost_is_summed_over_models() {
    let (_, out) = run(
        GeminiStreamParser::new(gemini_prices()),
        GEMINI,
        &ProcessEnd::exited(0),
    );
    // lite: 773×0.1 + 18×0.4 = 84.5 → 85; flash: 8277×0.3 + 12×2.5 = 2513.1 → 2513.
    assert_eq!(out.cost_usd_micros, 2598);
    assert_eq!(out.cost_source, CostSource::Estimated);
    // One model without a price: the whole cost is unknown, not understated.
    let mut ctx = gemini_prices();
    ctx.prices.models.remove("gemini-3.5-flash-lite");
    let (_, out) = run(GeminiStreamParser::new(ctx), GEMINI, &ProcessEnd::exited(0));
    assert_eq!(out.cost_source, CostSource::Unknown);
}

#[test]
fn gemini_tool_use() {
    let (events, out) = run(
        GeminiStreamParser::new(ParseContext::default()),
        GEMINI_TOOLUSE,
        &ProcessEnd::exited(0),
    );
    assert_eq!(out.class, OutcomeClass::Success);
    assert_eq!(out.tool_calls.len(), 1);
    assert_eq!(out.tool_calls[0].name, "write_file");
    assert_eq!(out.tool_calls[0].input["content"], "Hello, world!\n");
    assert_eq!(out.files_written(), vec!["hello.txt".to_owned()]);
    assert!(events.iter().any(|e| matches!(
        e,
        AgentEvent::ToolResult { is_error: false, id: Some(id), .. } if id == "write_file__write_file_1795289751484_0"
    )));
    assert_eq!(
        out.final_text.as_deref(),
        Some("Done: I created hello.txt.")
    );
    assert_eq!(out.usage, usage(17_481, 55, 0, 0));
}

#[test]
fn gemini_errors() {
    let result_error = lines(&[
        json!({"type":"init","session_id":"g-1","model":"gemini-2.5-pro"}),
        json!({"type":"result","status":"error","error":{"type":"FatalApiError","message":"[API Error: 429 RESOURCE_EXHAUSTED]"},
               "stats":{"input_tokens":10,"output_tokens":0,"cached":0,"duration_ms":5}}),
    ]);
    let (_, out) = run(
        GeminiStreamParser::new(ParseContext::default()),
        &result_error,
        &ProcessEnd::exited(173),
    );
    assert_eq!(out.class, OutcomeClass::RateLimited);
    assert_eq!(out.model.as_deref(), Some("gemini-2.5-pro"));

    // An error event and the HTTP status mod 256 as exit code, no result.
    let error_only = lines(&[
        json!({"type":"init","session_id":"g-1","model":"auto"}),
        json!({"type":"error","severity":"error","message":"Request failed"}),
    ]);
    let (_, out) = run(
        GeminiStreamParser::new(ParseContext::default()),
        &error_only,
        &ProcessEnd::exited(244),
    );
    assert_eq!((out.class, out.http_status), (OutcomeClass::Api, Some(500)));
    assert!(out.retryable());
    let (_, out) = run(
        GeminiStreamParser::new(ParseContext::default()),
        &error_only,
        &ProcessEnd::exited(145),
    );
    assert_eq!(out.class, OutcomeClass::Auth);
    // Without an error event the exit code alone means nothing: crashed.
    let init_only = lines(&[json!({"type":"init","session_id":"g-1","model":"auto"})]);
    let (_, out) = run(
        GeminiStreamParser::new(ParseContext::default()),
        &init_only,
        &ProcessEnd::exited(173),
    );
    assert_eq!(out.class, OutcomeClass::Crashed);
}

// ---------------------------------------------------------------- text, dyn

#[test]
fn text_parser() {
    let (_, out) = run(
        TextParser::new(),
        b"line one\nline two\n",
        &ProcessEnd::exited(0),
    );
    assert_eq!(out.class, OutcomeClass::Success);
    assert_eq!(out.final_text.as_deref(), Some("line one\nline two\n"));
    let (_, out) = run(TextParser::new(), b"", &ProcessEnd::exited(0));
    assert_eq!(out.class, OutcomeClass::Protocol);
    let (_, out) = run(TextParser::new(), b"partial", &ProcessEnd::exited(2));
    assert_eq!(out.class, OutcomeClass::Crashed);
}

#[test]
fn parser_for_each_format() {
    let cases: [(OutputFormat, &[u8]); 4] = [
        (OutputFormat::ClaudeStreamJson, CLAUDE),
        (OutputFormat::ClaudeTranscript, CLAUDE_TRANSCRIPT),
        (OutputFormat::CodexJson, CODEX),
        (OutputFormat::GeminiStreamJson, GEMINI),
    ];
    for (format, stream) in cases {
        let mut p = parser_for(format, ParseContext::default());
        for line in stream.split(|b| *b == b'\n') {
            p.feed_line(line);
        }
        assert!(p.saw_final(), "{format:?}");
        let out = p.finish(&ProcessEnd::exited(0));
        assert_eq!(out.class, OutcomeClass::Success, "{format:?}");
        assert!(out.session_id.is_some(), "{format:?}");
    }
}

#[test]
fn no_panic_on_hostile_lines() {
    let hostile: [&[u8]; 12] = [
        b"{\"type\":\"result\"}",
        b"{\"type\":\"result\",\"total_cost_usd\":-5,\"num_turns\":-1,\"usage\":\"x\"}",
        b"{\"type\":\"result\",\"total_cost_usd\":1e308,\"api_error_status\":99999}",
        b"{\"type\":\"assistant\",\"message\":{\"content\":\"just a string\",\"usage\":{}}}",
        b"{\"type\":\"assistant\",\"message\":[]}",
        b"{\"type\":\"user\",\"message\":{\"content\":[{\"type\":\"tool_result\",\"content\":[{\"x\":1}]}]}}",
        b"{\"type\":\"system\"}",
        b"{\"type\":42}",
        b"{\"type\":\"rate_limit_event\",\"rate_limit_info\":null}",
        b"{\"type\":\"item.completed\",\"item\":{\"type\":\"file_change\",\"changes\":7}}",
        b"{\"type\":\"stream_event\",\"event\":{\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\"}}}",
        b"{\"type\":\"tool_use\",\"parameters\":null}",
    ];
    for format in [
        OutputFormat::ClaudeStreamJson,
        OutputFormat::ClaudeTranscript,
        OutputFormat::CodexJson,
        OutputFormat::GeminiStreamJson,
        OutputFormat::Text,
    ] {
        let mut p = parser_for(format, ParseContext::default());
        for line in hostile {
            p.feed_line(line);
        }
        let out = p.finish(&ProcessEnd::exited(0));
        let _ = out.files_written();
        let _ = out.retryable();
    }
}

// ---------------------------------------------------------------- recorded errors
// Recorded with the pinned CLIs against a mock answering an HTTP error (see
// fixtures/README.md).

const CLAUDE_READONLY: &[u8] = include_bytes!("../fixtures/claude-readonly-events.jsonl");
const CLAUDE_500: &[u8] = include_bytes!("../fixtures/claude-api500-events.jsonl");
const CLAUDE_429: &[u8] = include_bytes!("../fixtures/claude-ratelimit429-events.jsonl");
const CLAUDE_401: &[u8] = include_bytes!("../fixtures/claude-auth401-events.jsonl");
const CODEX_CACHED: &[u8] = include_bytes!("../fixtures/codex-cached-events.jsonl");
const CODEX_500: &[u8] = include_bytes!("../fixtures/codex-api500-events.jsonl");
const CODEX_429: &[u8] = include_bytes!("../fixtures/codex-ratelimit429-events.jsonl");
const CODEX_401: &[u8] = include_bytes!("../fixtures/codex-auth401-events.jsonl");
const GEMINI_STDIN: &[u8] = include_bytes!("../fixtures/gemini-stdin-events.jsonl");
const GEMINI_401: &[u8] = include_bytes!("../fixtures/gemini-auth401-events.jsonl");

#[test]
fn recorded_claude_readonly_run() {
    let (events, out) = run(claude(), CLAUDE_READONLY, &ProcessEnd::exited(0));
    assert_eq!(out.class, OutcomeClass::Success);
    assert_eq!(
        out.session_id.as_deref(),
        Some("0b7c1f0e-1111-4222-8333-444455556666")
    );
    assert_eq!(out.cli_version.as_deref(), Some("2.1.330"));
    // total_cost_usd 0.000039999999999999996 → 40 micro-USD.
    assert_eq!(out.cost_usd_micros, 40);
    assert_eq!(out.usage, usage(10, 2, 0, 0));
    let AgentEvent::Init { tools, .. } = &events[0] else {
        panic!("{:?}", events[0])
    };
    assert!(tools.contains(&"Read".to_owned()));
    assert!(!tools.contains(&"Write".to_owned()) && !tools.contains(&"Edit".to_owned()));
}

#[test]
fn recorded_claude_api_500() {
    let (events, out) = run(claude(), CLAUDE_500, &ProcessEnd::exited(1));
    assert_eq!(out.class, OutcomeClass::Api);
    assert_eq!(out.http_status, Some(500));
    assert_eq!(out.api_retries, 1);
    assert!(out.retryable());
    assert!(
        out.error
            .as_deref()
            .unwrap()
            .starts_with("API Error: 500 mock 500")
    );
    // The synthetic `<synthetic>` assistant message is an error, not agent text.
    assert!(events.iter().any(|e| matches!(
        e,
        AgentEvent::Error {
            http_status: Some(500),
            ..
        }
    )));
    assert!(!events.iter().any(|e| matches!(e, AgentEvent::Text { .. })));
    assert_eq!(out.final_text, None);
    assert_eq!(
        (out.cost_usd_micros, out.cost_source),
        (0, CostSource::Reported)
    );
}

#[test]
fn recorded_claude_rate_limit_429() {
    let (_, out) = run(claude(), CLAUDE_429, &ProcessEnd::exited(1));
    assert_eq!(out.class, OutcomeClass::RateLimited);
    assert_eq!(out.http_status, Some(429));
    assert!(out.retryable());
    assert_eq!(out.rate_limit_resets_at(), Some(1_795_294_412));
    assert_eq!(out.api_retries, 0);
    assert!(out.error.unwrap().contains("5-hour limit"));
}

#[test]
fn recorded_claude_auth_401() {
    let (_, out) = run(claude(), CLAUDE_401, &ProcessEnd::exited(1));
    assert_eq!(out.class, OutcomeClass::Auth);
    assert!(!out.retryable());
    assert_eq!(out.api_retries, 2);
}

#[test]
fn recorded_codex_cached_usage() {
    let (_, out) = run(
        CodexJsonParser::new(ctx(Some("gpt-5"))),
        CODEX_CACHED,
        &ProcessEnd::exited(0),
    );
    assert_eq!(out.class, OutcomeClass::Success);
    // input_tokens 100 include 40 cached: 60 uncached + 40 cache reads.
    assert_eq!(out.usage, usage(60, 5, 40, 0));
    // 60 × 1.25 + 5 × 10 + 40 × 0.125 = 75 + 50 + 5 = 130 micro-USD.
    assert_eq!(out.cost_usd_micros, 130);
    assert_eq!(out.final_text.as_deref(), Some("ok"));
    // The model-metadata warning item is an error event, but not the outcome's error.
    assert_eq!(out.error, None);
}

#[test]
fn recorded_codex_errors() {
    let p = || CodexJsonParser::new(ctx(Some("gpt-5")));
    let (_, out) = run(p(), CODEX_500, &ProcessEnd::exited(1));
    // Codex turns a 500 into "high demand" with no status: api, and retryable.
    assert_eq!((out.class, out.http_status), (OutcomeClass::Api, None));
    assert!(out.retryable(), "{:?}", out.error);
    let (_, out) = run(p(), CODEX_429, &ProcessEnd::exited(1));
    assert_eq!(
        (out.class, out.http_status),
        (OutcomeClass::RateLimited, Some(429))
    );
    assert!(out.retryable());
    let (_, out) = run(p(), CODEX_401, &ProcessEnd::exited(1));
    assert_eq!(
        (out.class, out.http_status),
        (OutcomeClass::Auth, Some(401))
    );
    assert!(!out.retryable());
}

#[test]
fn recorded_gemini_stdin_prompt_and_cache() {
    let (events, out) = run(
        GeminiStreamParser::new(ParseContext::default()),
        GEMINI_STDIN,
        &ProcessEnd::exited(0),
    );
    assert_eq!(out.class, OutcomeClass::Success);
    assert_eq!(out.model.as_deref(), Some("gemini-2.5-flash"));
    // input_tokens 50 include cached 20: `input` 30 is the uncached part.
    assert_eq!(out.usage, usage(30, 1, 20, 0));
    // 30 × 0.30 + 1 × 2.50 + 20 × 0.075 = 9 + 2.5 + 1.5 = 13 micro-USD.
    assert_eq!(
        (out.cost_usd_micros, out.cost_source),
        (13, CostSource::Estimated)
    );
    assert_eq!(out.final_text.as_deref(), Some("ok"));
    // The user message echo is not agent text.
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, AgentEvent::Text { text } if text.contains("MARKER")))
    );
}

#[test]
fn recorded_gemini_auth_401() {
    let (_, out) = run(
        GeminiStreamParser::new(ParseContext::default()),
        GEMINI_401,
        &ProcessEnd::exited(145),
    );
    assert_eq!(out.class, OutcomeClass::Auth);
    assert_eq!(out.http_status, Some(401));
    assert!(!out.retryable());
}

#[test]
fn recorded_claude_schema_unmet_is_success_without_structured_output() {
    const STREAM: &[u8] = include_bytes!("../fixtures/claude-schema-unmet-events.jsonl");
    let (_, out) = run(claude(), STREAM, &ProcessEnd::exited(0));
    assert_eq!(out.class, OutcomeClass::Success);
    assert_eq!(
        out.session_id.as_deref(),
        Some("22222222-3333-4444-8555-666666666666")
    );
    assert_eq!(out.turns, 2);
    assert_eq!(out.structured_output, None);
    assert_eq!(out.cost_usd_micros, 80);
}

#[test]
fn recorded_print_transcript_ends_with_end_turn() {
    const STREAM: &[u8] = include_bytes!("../fixtures/claude-print-transcript.jsonl");
    let parser = ClaudeTranscriptParser::new(ParseContext::default());
    let (_, out) = run(parser, STREAM, &ProcessEnd::exited(0));
    assert_eq!(out.class, OutcomeClass::Success);
    assert_eq!(
        out.session_id.as_deref(),
        Some("33333333-3333-4444-8555-666666666666")
    );
    assert_eq!(out.final_text.as_deref(), Some("ok"));
    assert_eq!(out.usage.input_tokens, 10);
    assert_eq!(out.cost_source, CostSource::Reported);
    assert_eq!(out.unknown_events, 0);
    assert_eq!(out.unparseable_lines, 0);
}

#[test]
fn transcript_path_matches_claude() {
    let path = vnx_agents::claude_transcript_path(
        std::path::Path::new("/home/dev"),
        std::path::Path::new("/tmp/vnxmock/my_proj.v2 x"),
        "33333333-3333-4444-8555-666666666666",
    );
    assert_eq!(
        path,
        std::path::Path::new(
            "/home/dev/.claude/projects/-tmp-vnxmock-my-proj-v2-x/33333333-3333-4444-8555-666666666666.jsonl"
        )
    );
}

#[test]
fn recorded_interactive_tool_use_transcript() {
    const STREAM: &[u8] = include_bytes!("../fixtures/claude-interactive-tooluse-transcript.jsonl");
    let parser = ClaudeTranscriptParser::new(ParseContext::default());
    let (events, out) = run(parser, STREAM, &ProcessEnd::exited(0));
    assert_eq!(out.class, OutcomeClass::Success);
    assert_eq!(
        out.files_written(),
        vec!["/home/dev/project/hello.txt".to_owned()]
    );
    assert_eq!(
        out.tool_calls[0].id.as_deref(),
        Some("toolu_mock_30d9d03604484d2b85e3c8f2d0aefcc1")
    );
    // Two lines of the first message count once.
    assert_eq!(out.usage, usage(13_903 + 14_024, 25 + 6, 0, 0));
    assert_eq!(out.turns, 1);
    // Like claude's `result`: the last message's text, not the whole turn's.
    assert_eq!(
        out.final_text.as_deref(),
        Some("Done: I created hello.txt.")
    );
    assert_eq!((out.unknown_events, out.unparseable_lines), (0, 0));
    assert!(events.iter().any(|e| matches!(
        e,
        AgentEvent::ToolResult {
            is_error: false,
            ..
        }
    )));
}
