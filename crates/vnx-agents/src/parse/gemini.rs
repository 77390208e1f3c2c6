//! Parser for `gemini -p … --output-format stream-json` (Gemini CLI 0.61).
//!
//! Line types: `init{session_id, model}`, `message{role, content, delta?}`,
//! `tool_use{tool_name, tool_id, parameters}`, `tool_result{tool_id, status}`,
//! `error{severity, message}`, `result{status, stats, error?}`. No cost; the
//! `stats` give tokens in total and per model (`init.model` is `auto` when the
//! CLI's router picks, so the model is taken from `stats.models`).

use serde_json::{Map, Value};
use vnx_types::{CostSource, OutcomeClass, Usage};

use super::claude::{MAX_TOOL_OUTPUT_CHARS, value_text};
use super::{
    Acc, Line, ParseContext, StreamParser, bound, class_of_error_text, class_of_status,
    http_status_in, str_of, type_of, u16_of, u64_of, unknown,
};
use crate::event::{AgentEvent, FinalInfo, ToolCall};
use crate::outcome::{Exit, Outcome, ProcessEnd};
use crate::price::Cost;
use crate::redact;

/// Parser for gemini's `stream-json`.
#[derive(Debug, Clone)]
pub struct GeminiStreamParser {
    acc: Acc,
    ctx: ParseContext,
    /// Assistant text since the last tool call: the final answer.
    current_text: String,
    /// Usage per model from `result.stats.models`, for the estimate.
    per_model: Vec<(String, Usage)>,
}

impl GeminiStreamParser {
    /// A parser for one run.
    pub fn new(ctx: ParseContext) -> Self {
        GeminiStreamParser {
            acc: Acc::default(),
            ctx,
            current_text: String::new(),
            per_model: Vec::new(),
        }
    }

    fn handle(&mut self, map: Map<String, Value>) -> Vec<AgentEvent> {
        match type_of(&map) {
            "init" => vec![AgentEvent::Init {
                session_id: str_of(&map, "session_id"),
                // `auto` names the router, not a model; the result names the real ones.
                model: str_of(&map, "model").filter(|m| m != "auto"),
                cli_version: None,
                api_key_source: None,
                tools: Vec::new(),
            }],
            "message" => {
                if map.get("role").and_then(Value::as_str) != Some("assistant") {
                    return Vec::new();
                }
                let text = map.get("content").map(value_text).unwrap_or_default();
                self.current_text.push_str(&text);
                self.acc.final_text = Some(self.current_text.clone());
                if map.get("delta").and_then(Value::as_bool).unwrap_or(false) {
                    vec![AgentEvent::TextDelta { text }]
                } else {
                    vec![AgentEvent::Text { text }]
                }
            }
            "tool_use" => {
                self.current_text.clear();
                vec![AgentEvent::ToolCall(ToolCall {
                    id: str_of(&map, "tool_id"),
                    name: str_of(&map, "tool_name").unwrap_or_default(),
                    input: map.get("parameters").cloned().unwrap_or(Value::Null),
                })]
            }
            "tool_result" => {
                let status = str_of(&map, "status");
                let error = map.get("error").filter(|e| !e.is_null());
                vec![AgentEvent::ToolResult {
                    id: str_of(&map, "tool_id"),
                    is_error: error.is_some() || status.as_deref().is_some_and(|s| s != "success"),
                    status,
                    output: map
                        .get("output")
                        .or(error)
                        .map(|o| bound(&redact(&value_text(o)), MAX_TOOL_OUTPUT_CHARS)),
                }]
            }
            "error" => {
                let message = redact(&error_message(&Value::Object(map.clone())));
                vec![AgentEvent::Error {
                    http_status: http_status_in(&message),
                    message,
                }]
            }
            "result" => self.result(&map),
            other => {
                let other = other.to_owned();
                vec![unknown(other, map)]
            }
        }
    }

    fn result(&mut self, map: &Map<String, Value>) -> Vec<AgentEvent> {
        let status = str_of(map, "status").unwrap_or_default();
        let mut events = Vec::new();
        if let Some(stats) = map.get("stats").and_then(Value::as_object) {
            if let Some(ms) = u64_of(stats.get("duration_ms")) {
                self.acc.duration_ms = Some(ms);
            }
            self.per_model = stats
                .get("models")
                .and_then(Value::as_object)
                .map(|models| {
                    models
                        .iter()
                        .filter_map(|(name, s)| s.as_object().map(|s| (name.clone(), usage_of(s))))
                        .collect()
                })
                .unwrap_or_default();
            if let Some((main, _)) = self.per_model.iter().max_by_key(|(_, u)| u.total()) {
                self.acc.model = Some(main.clone());
            }
            events.push(AgentEvent::Usage {
                total: usage_of(stats),
            });
        }
        self.acc.turns += 1;
        let (class, http_status, error) = if status == "success" {
            (OutcomeClass::Success, None, None)
        } else {
            let error = map.get("error").filter(|e| !e.is_null());
            let message = redact(
                &error.map_or_else(|| format!("gemini result status {status}"), error_message),
            );
            let code =
                error.and_then(|e| u16_of(e.get("code")).or_else(|| u16_of(e.get("status"))));
            let http_status = code
                .filter(|c| (400..=599).contains(c))
                .or_else(|| http_status_in(&message));
            let error_type = error
                .and_then(|e| e.get("type"))
                .and_then(Value::as_str)
                .unwrap_or("");
            let class =
                if error_type.contains("TurnLimit") || error_type.contains("MaxSessionTurns") {
                    OutcomeClass::MaxTurns
                } else {
                    http_status.map_or_else(|| class_of_error_text(&message), class_of_status)
                };
            (class, http_status, Some(message))
        };
        events.push(AgentEvent::Final(FinalInfo {
            class,
            status,
            http_status,
            error,
            stop_reason: None,
        }));
        events
    }
}

impl StreamParser for GeminiStreamParser {
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
        let cost = if self.per_model.is_empty() {
            super::estimate(&self.ctx.prices, self.acc.model.as_deref(), &self.acc.usage)
        } else {
            // Every model must have a price, or the sum would understate the cost.
            self.per_model
                .iter()
                .map(|(model, usage)| self.ctx.prices.estimate(model, usage))
                .try_fold(0u64, |sum, cost| match cost.source {
                    CostSource::Unknown => None,
                    _ => Some(sum.saturating_add(cost.usd_micros)),
                })
                .map_or(Cost::UNKNOWN, |usd_micros| Cost {
                    usd_micros,
                    source: CostSource::Estimated,
                })
        };
        let mut acc = self.acc.clone();
        // Gemini exits with the HTTP status mod 256 on an API error: when an error
        // event was seen but no result, recover the status from the exit code.
        if let Exit::Code(code) = end.exit
            && acc.final_info.is_none()
            && acc.last_error.is_some()
            && acc.last_error_status.is_none()
        {
            acc.last_error_status = status_from_exit_code(code);
        }
        acc.outcome(end, cost, Some(self.ctx.prices.version))
    }
}

/// Gemini stats → vnx [`Usage`]: `input` is the uncached input when present,
/// else `input_tokens − cached`; `cached` is the cache read. The stream's stats
/// carry no separate thought tokens, so output is `output_tokens`.
fn usage_of(stats: &Map<String, Value>) -> Usage {
    let n = |key: &str| u64_of(stats.get(key));
    let cached = n("cached").unwrap_or(0);
    let input = n("input").unwrap_or_else(|| n("input_tokens").unwrap_or(0).saturating_sub(cached));
    Usage {
        input_tokens: input,
        output_tokens: n("output_tokens").unwrap_or(0),
        cache_read_tokens: cached,
        cache_write_tokens: 0,
    }
}

fn error_message(error: &Value) -> String {
    error
        .get("message")
        .and_then(Value::as_str)
        .map_or_else(|| error.to_string(), str::to_owned)
}

/// The HTTP status an exit code of `status mod 256` stands for, for the
/// statuses vnx acts on: 429, 401, 403 and 500–511.
fn status_from_exit_code(code: i32) -> Option<u16> {
    [
        429u16, 401, 403, 500, 501, 502, 503, 504, 505, 506, 507, 508, 509, 510, 511,
    ]
    .into_iter()
    .find(|status| i32::from(*status) % 256 == code)
}
