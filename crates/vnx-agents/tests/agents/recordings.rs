//! Every stream recorded by vnx's own harness (`crates/vnx-testkit/recordings/`,
//! real CLIs against the loopback mock) goes through its parser and gives the
//! outcome the recording's script implies. When a pin is bumped and the
//! recordings are regenerated, this is what proves the parsers still read the
//! new CLI right.

use vnx_agents::{
    ClaudeStreamParser, ClaudeTranscriptParser, CodexJsonParser, GeminiStreamParser, Outcome,
    ParseContext, ProcessEnd, StreamParser,
};
use vnx_types::OutcomeClass;

use crate::run;

fn recording(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../vnx-testkit/recordings")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn parse(parser: impl StreamParser, name: &str, exit: i32) -> Outcome {
    run(parser, &recording(name), &ProcessEnd::exited(exit)).1
}

fn claude(name: &str, exit: i32) -> Outcome {
    parse(ClaudeStreamParser::new(ParseContext::default()), name, exit)
}
fn codex(name: &str, exit: i32) -> Outcome {
    parse(CodexJsonParser::new(ParseContext::default()), name, exit)
}
fn gemini(name: &str, exit: i32) -> Outcome {
    parse(GeminiStreamParser::new(ParseContext::default()), name, exit)
}

fn assert_worked(out: &Outcome) {
    assert_eq!(out.class, OutcomeClass::Success, "{out:?}");
    assert!(
        out.session_id.as_deref().is_some_and(|s| !s.is_empty()),
        "session id: {out:?}"
    );
    assert!(
        out.usage.input_tokens + out.usage.cache_read_tokens > 0,
        "usage: {:?}",
        out.usage
    );
    assert!(out.usage.output_tokens > 0, "usage: {:?}", out.usage);
}

#[test]
fn claude_recordings() {
    let plain = claude("claude-plain.jsonl", 0);
    assert_worked(&plain);
    assert_eq!(
        plain.api_key_source.as_deref(),
        Some("none"),
        "the OAuth token is the subscription path"
    );
    assert!(
        plain
            .cli_version
            .as_deref()
            .is_some_and(|v| v.starts_with("2.1.")),
        "{:?}",
        plain.cli_version
    );

    let tool = claude("claude-tooluse.jsonl", 0);
    assert_worked(&tool);
    assert!(
        tool.files_written()
            .iter()
            .any(|f| f.ends_with("hello.txt")),
        "{:?}",
        tool.files_written()
    );

    let e500 = claude("claude-500.jsonl", 1);
    assert_eq!(
        (e500.class, e500.http_status),
        (OutcomeClass::Api, Some(500)),
        "{e500:?}"
    );
    assert!(e500.retryable());
    let e429 = claude("claude-429.jsonl", 1);
    assert_eq!(e429.class, OutcomeClass::RateLimited, "{e429:?}");
}

#[test]
fn claude_interactive_transcript_recording() {
    let out = parse(
        ClaudeTranscriptParser::new(ParseContext::default()),
        "claude-interactive-transcript.jsonl",
        0,
    );
    assert!(out.model.is_some(), "{out:?}");
    assert!(out.usage.output_tokens > 0, "{:?}", out.usage);
    assert!(
        out.files_written().iter().any(|f| f.ends_with("hello.txt")),
        "{:?}",
        out.files_written()
    );
}

#[test]
fn codex_recordings() {
    assert_worked(&codex("codex-plain.jsonl", 0));
    let tool = codex("codex-tooluse.jsonl", 0);
    assert_worked(&tool);
    assert!(
        tool.files_written()
            .iter()
            .any(|f| f.ends_with("hello.txt")),
        "{:?}",
        tool.files_written()
    );
    assert_eq!(codex("codex-500.jsonl", 1).class, OutcomeClass::Api);
    assert_eq!(codex("codex-429.jsonl", 1).class, OutcomeClass::RateLimited);
    assert_ne!(
        codex("codex-malformed.jsonl", 1).class,
        OutcomeClass::Success
    );
}

#[test]
fn gemini_recordings() {
    assert_worked(&gemini("gemini-plain.jsonl", 0));
    let tool = gemini("gemini-tooluse.jsonl", 0);
    assert_worked(&tool);
    assert!(
        tool.files_written()
            .iter()
            .any(|f| f.ends_with("hello.txt")),
        "{:?}",
        tool.files_written()
    );
    let e400 = gemini("gemini-400.jsonl", 144);
    assert_eq!(e400.class, OutcomeClass::Api, "{e400:?}");
    assert_ne!(
        gemini("gemini-malformed.jsonl", 1).class,
        OutcomeClass::Success
    );
}
