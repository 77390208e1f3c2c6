//! Parser for `codex exec --json` (Codex CLI 0.169).
//!
//! Line types: `thread.started{thread_id}`, `turn.started`,
//! `item.started|updated|completed{item{id, type, …}}`, `turn.completed{usage}`,
//! `turn.failed{error}`, `error{message}`. The stream names no model and no
//! cost; `usage` is a running total for the thread, so the last
//! `turn.completed` wins, and its `input_tokens` include cached ones.

use std::collections::BTreeSet;

use serde_json::{Map, Value};
use vnx_types::{OutcomeClass, Usage};

use super::claude::MAX_TOOL_OUTPUT_CHARS;
use super::{
    Acc, Line, ParseContext, StreamParser, bound, class_of_error_text, estimate, http_status_in,
    str_of, type_of, u64_of, unknown,
};
use crate::event::{AgentEvent, FinalInfo, ToolCall};
use crate::outcome::{Outcome, ProcessEnd};
use crate::redact;

/// Parser for codex's `exec --json` JSONL.
#[derive(Debug, Clone)]
pub struct CodexJsonParser {
    acc: Acc,
    ctx: ParseContext,
    /// Item ids already reported as tool calls (`item.started` then `item.completed`).
    called: BTreeSet<String>,
}

impl CodexJsonParser {
    /// A parser for one run; `ctx.requested_model` becomes the outcome's model.
    pub fn new(ctx: ParseContext) -> Self {
        let acc = Acc {
            model: ctx.requested_model.clone(),
            ..Acc::default()
        };
        CodexJsonParser {
            acc,
            ctx,
            called: BTreeSet::new(),
        }
    }

    fn handle(&mut self, map: Map<String, Value>) -> Vec<AgentEvent> {
        match type_of(&map) {
            "thread.started" => vec![AgentEvent::Init {
                session_id: str_of(&map, "thread_id"),
                model: None,
                cli_version: None,
                api_key_source: None,
                tools: Vec::new(),
            }],
            "turn.started" => Vec::new(),
            "item.started" | "item.updated" | "item.completed" => {
                let completed = type_of(&map) == "item.completed";
                match map.get("item").and_then(Value::as_object) {
                    Some(item) => self.item(item, completed),
                    None => vec![unknown(type_of(&map).to_owned(), map)],
                }
            }
            "turn.completed" => {
                self.acc.turns += 1;
                let total = map
                    .get("usage")
                    .and_then(Value::as_object)
                    .map_or(self.acc.usage, normalize_usage);
                vec![
                    AgentEvent::Usage { total },
                    AgentEvent::Final(FinalInfo {
                        class: OutcomeClass::Success,
                        status: "turn.completed".to_owned(),
                        http_status: None,
                        error: None,
                        stop_reason: None,
                    }),
                ]
            }
            "turn.failed" => {
                let message = map.get("error").map_or_else(
                    || "codex turn failed".to_owned(),
                    |e| {
                        e.get("message")
                            .and_then(Value::as_str)
                            .map_or_else(|| e.to_string(), str::to_owned)
                    },
                );
                let message = redact(&message);
                vec![AgentEvent::Final(FinalInfo {
                    class: class_of_error_text(&message),
                    status: "turn.failed".to_owned(),
                    http_status: http_status_in(&message),
                    error: Some(message),
                    stop_reason: None,
                })]
            }
            "error" => {
                let message = redact(
                    &str_of(&map, "message")
                        .unwrap_or_else(|| Value::Object(map.clone()).to_string()),
                );
                vec![AgentEvent::Error {
                    http_status: http_status_in(&message),
                    message,
                }]
            }
            other => {
                let other = other.to_owned();
                vec![unknown(other, map)]
            }
        }
    }

    fn item(&mut self, item: &Map<String, Value>, completed: bool) -> Vec<AgentEvent> {
        let id = str_of(item, "id");
        let kind = item.get("type").and_then(Value::as_str).unwrap_or("");
        match kind {
            "agent_message" => {
                if !completed {
                    return Vec::new();
                }
                let text = str_of(item, "text").unwrap_or_default();
                self.acc.final_text = Some(text.clone());
                vec![AgentEvent::Text { text }]
            }
            "reasoning" => {
                if !completed {
                    return Vec::new();
                }
                str_of(item, "text")
                    .map(|text| vec![AgentEvent::Thinking { text }])
                    .unwrap_or_default()
            }
            "command_execution" | "file_change" | "mcp_tool_call" | "web_search" => {
                let mut events = Vec::new();
                let first_sight = id.as_ref().is_none_or(|id| self.called.insert(id.clone()));
                if first_sight {
                    events.push(AgentEvent::ToolCall(ToolCall {
                        id: id.clone(),
                        name: tool_name(kind, item),
                        input: tool_input(kind, item),
                    }));
                }
                if completed {
                    let status = str_of(item, "status");
                    let exit_code = item.get("exit_code").and_then(Value::as_i64);
                    let is_error = matches!(status.as_deref(), Some("failed" | "declined"))
                        || exit_code.is_some_and(|c| c != 0)
                        || item.get("error").is_some_and(|e| !e.is_null());
                    let output = str_of(item, "aggregated_output")
                        .filter(|o| !o.is_empty())
                        .map(|o| bound(&redact(&o), MAX_TOOL_OUTPUT_CHARS));
                    events.push(AgentEvent::ToolResult {
                        id,
                        is_error,
                        status,
                        output,
                    });
                }
                events
            }
            "error" => {
                if !completed {
                    return Vec::new();
                }
                let message = redact(&str_of(item, "message").unwrap_or_default());
                vec![AgentEvent::Error {
                    http_status: http_status_in(&message),
                    message,
                }]
            }
            // Plans and other bookkeeping items: known shape, nothing to report.
            "todo_list" => Vec::new(),
            other => vec![AgentEvent::Unknown {
                raw_type: format!("item/{other}"),
                raw: Value::Object(item.clone()),
            }],
        }
    }
}

impl StreamParser for CodexJsonParser {
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
        let cost = estimate(&self.ctx.prices, self.acc.model.as_deref(), &self.acc.usage);
        self.acc.outcome(end, cost, Some(self.ctx.prices.version))
    }
}

/// Codex (OpenAI Responses) usage → vnx [`Usage`]: `input_tokens` includes
/// `cached_input_tokens` (and cache writes), so both are subtracted;
/// `output_tokens` already includes `reasoning_output_tokens`.
pub(crate) fn normalize_usage(usage: &Map<String, Value>) -> Usage {
    let n = |key: &str| u64_of(usage.get(key)).unwrap_or(0);
    let cache_read = n("cached_input_tokens");
    let cache_write = n("cache_write_input_tokens");
    Usage {
        input_tokens: n("input_tokens")
            .saturating_sub(cache_read)
            .saturating_sub(cache_write),
        output_tokens: n("output_tokens"),
        cache_read_tokens: cache_read,
        cache_write_tokens: cache_write,
    }
}

fn tool_name(kind: &str, item: &Map<String, Value>) -> String {
    match kind {
        "mcp_tool_call" => match (str_of(item, "server"), str_of(item, "tool")) {
            (Some(server), Some(tool)) => format!("mcp:{server}/{tool}"),
            _ => kind.to_owned(),
        },
        _ => kind.to_owned(),
    }
}

fn tool_input(kind: &str, item: &Map<String, Value>) -> Value {
    let pick = |keys: &[&str]| {
        let mut out = Map::new();
        for key in keys {
            if let Some(v) = item.get(*key) {
                out.insert((*key).to_owned(), v.clone());
            }
        }
        Value::Object(out)
    };
    match kind {
        "command_execution" => pick(&["command"]),
        "file_change" => pick(&["changes"]),
        "mcp_tool_call" => pick(&["server", "tool", "arguments"]),
        "web_search" => pick(&["query"]),
        _ => Value::Null,
    }
}
