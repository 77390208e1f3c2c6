//! Integration tests of vnx-agents: parsers on recorded CLI streams (fixtures
//! copied from real claude 2.1.x, codex 0.169 and gemini 0.61 runs against
//! mock model servers), edge cases, argv building and the auth guard.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod argv;
mod auth;
mod parsers;
mod recordings;
mod samples;
mod secrets;

use vnx_agents::{AgentEvent, Outcome, ParseContext, ProcessEnd, StreamParser};

/// Feeds every line of `stream` to `parser`; returns all events and the outcome.
pub fn run(
    mut parser: impl StreamParser,
    stream: &[u8],
    end: &ProcessEnd,
) -> (Vec<AgentEvent>, Outcome) {
    let mut events = Vec::new();
    for line in stream.split(|b| *b == b'\n') {
        events.extend(parser.feed_line(line));
    }
    let outcome = parser.finish(end);
    (events, outcome)
}

/// A parse context asking for `model`.
pub fn ctx(model: Option<&str>) -> ParseContext {
    ParseContext {
        requested_model: model.map(str::to_owned),
        ..ParseContext::default()
    }
}
