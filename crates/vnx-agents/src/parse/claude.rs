//! Parser for `claude -p --output-format stream-json --verbose` (Claude Code 2.1.x).
//!
//! Line types: `system` (`init`, `api_retry`, `status`…), `assistant` and
//! `user` (whole messages), `stream_event` (partial messages with
//! `--include-partial-messages`), `rate_limit_event`, and the final `result`.
//! An API failure still ends in `result` with `subtype: "success"`,
//! `is_error: true` and `api_error_status`, and exit code 1.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use vnx_types::{OutcomeClass, Usage};

use super::{
    Acc, Line, ParseContext, StreamParser, bound, class_of_error_text, class_of_status, str_of,
    type_of, u16_of, u64_of, unknown,
};
use crate::event::{AgentEvent, FinalInfo, RateLimit, ToolCall};
use crate::money::usd_to_micros;
use crate::outcome::{Outcome, ProcessEnd};
use crate::redact;

/// Longest tool output kept in a [`AgentEvent::ToolResult`], chars.
pub(crate) const MAX_TOOL_OUTPUT_CHARS: usize = 8000;

/// Parser for claude's headless `stream-json`.
#[derive(Debug, Clone)]
pub struct ClaudeStreamParser {
    acc: Acc,
    ctx: ParseContext,
    /// Usage per assistant message id: one message spans several lines.
    message_usage: BTreeMap<String, Usage>,
}

impl ClaudeStreamParser {
    /// A parser for one run.
    pub fn new(ctx: ParseContext) -> Self {
        ClaudeStreamParser {
            acc: Acc::default(),
            ctx,
            message_usage: BTreeMap::new(),
        }
    }

    fn handle(&mut self, map: Map<String, Value>) -> Vec<AgentEvent> {
        match type_of(&map) {
            "system" => system(map),
            "assistant" => self.assistant(&map),
            "user" => tool_results(&map),
            "stream_event" => stream_event(&map),
            "rate_limit_event" => vec![AgentEvent::RateLimit(rate_limit(&map))],
            "result" => self.result(&map),
            other => {
                let other = other.to_owned();
                vec![unknown(other, map)]
            }
        }
    }

    fn assistant(&mut self, map: &Map<String, Value>) -> Vec<AgentEvent> {
        let Some(message) = map.get("message").and_then(Value::as_object) else {
            return Vec::new();
        };
        if let Some(error) = api_error_message(map, message) {
            return vec![error];
        }
        let mut events = content_events(message);
        if let (Some(id), Some(usage)) = (
            message.get("id").and_then(Value::as_str),
            message.get("usage").and_then(Value::as_object),
        ) {
            self.message_usage.insert(id.to_owned(), usage_of(usage));
            let total = self
                .message_usage
                .values()
                .fold(Usage::default(), |acc, u| acc.plus(u));
            events.push(AgentEvent::Usage { total });
        }
        events
    }

    fn result(&mut self, map: &Map<String, Value>) -> Vec<AgentEvent> {
        let subtype = str_of(map, "subtype").unwrap_or_default();
        let is_error = map
            .get("is_error")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let api_status = u16_of(map.get("api_error_status"));
        let result_text = str_of(map, "result");
        let errors_text = map
            .get("errors")
            .and_then(Value::as_array)
            .map(|errs| errs.iter().map(value_text).collect::<Vec<_>>().join("; "));
        let failed = is_error || subtype != "success";
        let error_text = failed.then(|| {
            let mut parts: Vec<String> = Vec::new();
            if let Some(t) = &result_text {
                parts.push(t.clone());
            }
            if let Some(t) = errors_text.filter(|t| !t.is_empty()) {
                parts.push(t);
            }
            if parts.is_empty() {
                parts.push(format!("claude result subtype {subtype}"));
            }
            parts.join("; ")
        });
        let class = if subtype == "error_max_turns" {
            OutcomeClass::MaxTurns
        } else if subtype.contains("budget") {
            OutcomeClass::MaxBudget
        } else if !failed {
            OutcomeClass::Success
        } else if let Some(status) = api_status {
            class_of_status(status)
        } else if self.acc.rate_limits.iter().any(RateLimit::is_rejected) {
            OutcomeClass::RateLimited
        } else {
            class_of_error_text(error_text.as_deref().unwrap_or(""))
        };

        if let Some(turns) = u64_of(map.get("num_turns")) {
            self.acc.turns = turns;
        }
        if let Some(ms) = u64_of(map.get("duration_ms")) {
            self.acc.duration_ms = Some(ms);
        }
        if !failed {
            self.acc.final_text = result_text;
        }
        if let Some(cost) = map
            .get("total_cost_usd")
            .and_then(Value::as_f64)
            .and_then(usd_to_micros)
        {
            self.acc.reported_cost = Some(cost);
        }
        if let Some(structured) = map.get("structured_output").filter(|v| !v.is_null()) {
            self.acc.structured_output = Some(structured.clone());
        }
        if let Some(id) = str_of(map, "session_id") {
            self.acc.session_id = Some(id);
        }

        let mut events = Vec::new();
        if let Some(usage) = map.get("usage").and_then(Value::as_object) {
            events.push(AgentEvent::Usage {
                total: usage_of(usage),
            });
        }
        events.push(AgentEvent::Final(FinalInfo {
            class,
            status: subtype,
            http_status: api_status
                .or_else(|| error_text.as_deref().and_then(super::http_status_in)),
            error: error_text.map(|t| redact(&t)),
            stop_reason: str_of(map, "stop_reason"),
        }));
        events
    }
}

impl StreamParser for ClaudeStreamParser {
    fn feed_line(&mut self, line: &[u8]) -> Vec<AgentEvent> {
        let events = match self.acc.decode(line) {
            Line::Blank => return Vec::new(),
            Line::Bad(event) => return vec![event],
            Line::Object(map) => self.handle(map),
        };
        self.acc.observe(&events);
        events
    }

    fn saw_final(&self) -> bool {
        self.acc.final_info.is_some()
    }

    fn finish(&mut self, end: &ProcessEnd) -> Outcome {
        let cost = self.acc.reported_or_estimated(&self.ctx.prices);
        self.acc.outcome(end, cost, Some(self.ctx.prices.version))
    }
}

fn system(map: Map<String, Value>) -> Vec<AgentEvent> {
    let subtype = map.get("subtype").and_then(Value::as_str).unwrap_or("");
    match subtype {
        "init" => vec![AgentEvent::Init {
            session_id: str_of(&map, "session_id"),
            model: str_of(&map, "model"),
            cli_version: str_of(&map, "claude_code_version"),
            api_key_source: str_of(&map, "apiKeySource"),
            tools: map
                .get("tools")
                .and_then(Value::as_array)
                .map(|tools| {
                    tools
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
        }],
        "api_retry" => vec![AgentEvent::ApiRetry {
            attempt: u64_of(map.get("attempt")),
            max_retries: u64_of(map.get("max_retries")),
            delay_ms: u64_of(map.get("retry_delay_ms")),
            http_status: u16_of(map.get("error_status")),
            error: map.get("error").map(|e| redact(&value_text(e))),
        }],
        other => {
            let raw_type = format!("system/{other}");
            vec![unknown(raw_type, map)]
        }
    }
}

/// The synthetic assistant message Claude Code writes for an API error
/// (`model: "<synthetic>"`, `is_api_error_message: true` in `stream-json`,
/// `isApiErrorMessage: true` in the transcript) as an [`AgentEvent::Error`];
/// `None` for a real model message.
pub(crate) fn api_error_message(
    map: &Map<String, Value>,
    message: &Map<String, Value>,
) -> Option<AgentEvent> {
    let flagged = ["is_api_error_message", "isApiErrorMessage"]
        .iter()
        .any(|k| map.get(*k).and_then(Value::as_bool) == Some(true));
    if !flagged {
        return None;
    }
    let text = message.get("content").map(value_text).unwrap_or_default();
    let text = redact(&match str_of(map, "error") {
        Some(kind) if !text.contains(&kind) => format!("{kind}: {text}"),
        _ => text,
    });
    Some(AgentEvent::Error {
        http_status: u16_of(map.get("api_error_status")).or_else(|| super::http_status_in(&text)),
        message: text,
    })
}

/// Anthropic usage (snake_case; `input_tokens` excludes cache reads and writes,
/// which is vnx's convention already).
pub(crate) fn usage_of(usage: &Map<String, Value>) -> Usage {
    let n = |key: &str| u64_of(usage.get(key)).unwrap_or(0);
    Usage {
        input_tokens: n("input_tokens"),
        output_tokens: n("output_tokens"),
        cache_read_tokens: n("cache_read_input_tokens"),
        cache_write_tokens: n("cache_creation_input_tokens"),
    }
}

/// Events for the content blocks of an assistant message.
pub(crate) fn content_events(message: &Map<String, Value>) -> Vec<AgentEvent> {
    let Some(blocks) = message.get("content").and_then(Value::as_array) else {
        return match message.get("content").and_then(Value::as_str) {
            Some(text) => vec![AgentEvent::Text {
                text: text.to_owned(),
            }],
            None => Vec::new(),
        };
    };
    blocks
        .iter()
        .filter_map(Value::as_object)
        .filter_map(|block| match block.get("type").and_then(Value::as_str) {
            Some("text") => str_of(block, "text").map(|text| AgentEvent::Text { text }),
            Some("thinking") => str_of(block, "thinking").map(|text| AgentEvent::Thinking { text }),
            Some("tool_use" | "server_tool_use") => Some(AgentEvent::ToolCall(ToolCall {
                id: str_of(block, "id"),
                name: str_of(block, "name").unwrap_or_default(),
                input: block.get("input").cloned().unwrap_or(Value::Null),
            })),
            _ => None,
        })
        .collect()
}

/// `tool_result` blocks of a `user` line.
pub(crate) fn tool_results(map: &Map<String, Value>) -> Vec<AgentEvent> {
    let Some(blocks) = map
        .get("message")
        .and_then(|m| m.get("content"))
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    blocks
        .iter()
        .filter_map(Value::as_object)
        .filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
        .map(|b| {
            let is_error = b.get("is_error").and_then(Value::as_bool).unwrap_or(false);
            AgentEvent::ToolResult {
                id: str_of(b, "tool_use_id"),
                is_error,
                status: Some(if is_error { "error" } else { "success" }.to_owned()),
                output: b
                    .get("content")
                    .map(|c| bound(&redact(&value_text(c)), MAX_TOOL_OUTPUT_CHARS)),
            }
        })
        .collect()
}

fn stream_event(map: &Map<String, Value>) -> Vec<AgentEvent> {
    let Some(event) = map.get("event").and_then(Value::as_object) else {
        return Vec::new();
    };
    if event.get("type").and_then(Value::as_str) != Some("content_block_delta") {
        return Vec::new();
    }
    let delta = event.get("delta");
    match delta.and_then(|d| d.get("type")).and_then(Value::as_str) {
        Some("text_delta") => delta
            .and_then(|d| d.get("text"))
            .and_then(Value::as_str)
            .map(|text| {
                vec![AgentEvent::TextDelta {
                    text: text.to_owned(),
                }]
            })
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

fn rate_limit(map: &Map<String, Value>) -> RateLimit {
    let info = map.get("rate_limit_info").and_then(Value::as_object);
    let get = |key: &str| info.and_then(|i| i.get(key));
    RateLimit {
        status: get("status")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_owned(),
        resets_at_unix_s: u64_of(get("resetsAt")).map(seconds_from_maybe_ms),
        kind: get("rateLimitType")
            .and_then(Value::as_str)
            .map(str::to_owned),
    }
}

/// Claude reports `resetsAt` in Unix seconds; accept milliseconds too.
fn seconds_from_maybe_ms(t: u64) -> u64 {
    if t > 100_000_000_000 { t / 1000 } else { t }
}

/// A JSON value as text: strings as-is, `[{type: text, text}]` joined, else JSON.
pub(crate) fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|item| match item.get("text").and_then(Value::as_str) {
                Some(text) => text.to_owned(),
                None => value_text(item),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        other => other.to_string(),
    }
}
