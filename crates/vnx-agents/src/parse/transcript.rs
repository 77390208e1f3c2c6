//! Parser for the claude interactive session transcript
//! (`$HOME/.claude/projects/<cwd with / replaced by ->/<session-id>.jsonl`,
//! Claude Code 2.1.x), read by the tmux lane while the session runs.
//!
//! Each content block of an assistant message is its own `assistant` line
//! carrying the same `message.id` and `message.usage`, so usage is
//! deduplicated by message id. A turn ends with a `system` line of subtype
//! `turn_duration`; `cost-state` lines carry the session's cost so far.
//! Session bookkeeping lines (`mode`, `attachment`, `file-history-snapshot`…)
//! are known and produce no events.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use vnx_types::{OutcomeClass, Usage};

use super::claude::{api_error_message, content_events, tool_results, usage_of, value_text};
use super::{
    Acc, Line, ParseContext, StreamParser, class_of_error_text, http_status_in, str_of, type_of,
    u64_of, unknown,
};
use crate::event::{AgentEvent, FinalInfo};
use crate::money::usd_to_micros;
use crate::outcome::{Outcome, ProcessEnd};
use crate::redact;

/// Line types that are session bookkeeping, not agent activity.
const BOOKKEEPING: [&str; 15] = [
    "mode",
    "permission-mode",
    "atis-latch",
    "file-history-snapshot",
    "attachment",
    "last-prompt",
    "summary",
    "custom-title",
    "queue-operation",
    "progress",
    "api-request",
    "api-request-shape",
    "api-request-blob",
    "tools-used",
    "file-history-delta",
];

/// Where Claude Code writes the transcript of session `session_id` started in
/// `cwd`: `<home>/.claude/projects/<cwd with every non-alphanumeric char
/// replaced by ->/<session_id>.jsonl` (checked with 2.1.330:
/// `/tmp/my_proj.v2 x` → `-tmp-my-proj-v2-x`).
pub fn claude_transcript_path(home: &Path, cwd: &Path, session_id: &str) -> PathBuf {
    let project: String = cwd
        .to_string_lossy()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    home.join(".claude")
        .join("projects")
        .join(project)
        .join(format!("{session_id}.jsonl"))
}

/// Parser for the claude interactive transcript.
#[derive(Debug, Clone)]
pub struct ClaudeTranscriptParser {
    acc: Acc,
    ctx: ParseContext,
    message_usage: BTreeMap<String, Usage>,
    /// An API error message seen in the current turn.
    turn_error: Option<String>,
    /// Text blocks of the current turn's last assistant message that had text
    /// (like claude's `result`, the final text is the last message, not the turn).
    turn_text: Vec<String>,
    /// Id of the message `turn_text` belongs to.
    text_message_id: Option<String>,
    /// Whether the last assistant message ended its turn (`stop_reason: end_turn`).
    ended_turn: bool,
}

impl ClaudeTranscriptParser {
    /// A parser for one session transcript.
    pub fn new(ctx: ParseContext) -> Self {
        ClaudeTranscriptParser {
            acc: Acc::default(),
            ctx,
            message_usage: BTreeMap::new(),
            turn_error: None,
            turn_text: Vec::new(),
            text_message_id: None,
            ended_turn: false,
        }
    }

    fn handle(&mut self, map: Map<String, Value>) -> Vec<AgentEvent> {
        let kind = type_of(&map).to_owned();
        let mut events = Vec::new();
        if self.acc.session_id.is_none() || self.acc.cli_version.is_none() {
            let session_id = str_of(&map, "sessionId").or_else(|| str_of(&map, "session_id"));
            let cli_version = str_of(&map, "version");
            if (session_id.is_some() && self.acc.session_id.is_none())
                || (cli_version.is_some() && self.acc.cli_version.is_none())
            {
                events.push(AgentEvent::Init {
                    session_id,
                    model: None,
                    cli_version,
                    api_key_source: None,
                    tools: Vec::new(),
                });
            }
        }
        match kind.as_str() {
            "assistant" => events.extend(self.assistant(&map)),
            "user" => {
                let results = tool_results(&map);
                if results.is_empty() && map.get("toolUseResult").is_none() {
                    // A new human prompt starts a new turn.
                    self.turn_error = None;
                    self.turn_text.clear();
                    self.ended_turn = false;
                }
                events.extend(results);
            }
            "system" => events.extend(self.system(map)),
            "cost-state" => {
                if let Some(micros) = map
                    .get("totalCostUSD")
                    .and_then(Value::as_f64)
                    .and_then(usd_to_micros)
                {
                    self.acc.reported_cost = Some(micros);
                }
            }
            k if BOOKKEEPING.contains(&k) => {}
            _ => events.push(unknown(kind, map)),
        }
        events
    }

    fn assistant(&mut self, map: &Map<String, Value>) -> Vec<AgentEvent> {
        let Some(message) = map.get("message").and_then(Value::as_object) else {
            return Vec::new();
        };
        if let Some(error) = api_error_message(map, message) {
            if let AgentEvent::Error { message, .. } = &error {
                self.turn_error = Some(message.clone());
            }
            return vec![error];
        }
        let mut events = Vec::new();
        if let Some(model) = str_of(message, "model").filter(|m| m != "<synthetic>")
            && self.acc.model.as_deref() != Some(model.as_str())
        {
            events.push(AgentEvent::Init {
                session_id: None,
                model: Some(model),
                cli_version: None,
                api_key_source: None,
                tools: Vec::new(),
            });
        }
        self.ended_turn = message.get("stop_reason").and_then(Value::as_str) == Some("end_turn");
        let content = content_events(message);
        let id = str_of(message, "id");
        for event in &content {
            if let AgentEvent::Text { text } = event {
                if id.is_none() || id != self.text_message_id {
                    self.turn_text.clear();
                    self.text_message_id.clone_from(&id);
                }
                self.turn_text.push(text.clone());
            }
        }
        events.extend(content);
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

    fn system(&mut self, map: Map<String, Value>) -> Vec<AgentEvent> {
        match map.get("subtype").and_then(Value::as_str) {
            Some("turn_duration") => {
                self.acc.turns += 1;
                let ms = u64_of(map.get("durationMs"));
                if let Some(ms) = ms {
                    self.acc.duration_ms =
                        Some(self.acc.duration_ms.unwrap_or(0).saturating_add(ms));
                }
                if !self.turn_text.is_empty() {
                    self.acc.final_text = Some(self.turn_text.join("\n"));
                }
                let (class, error, http_status) = match &self.turn_error {
                    None => (OutcomeClass::Success, None, None),
                    Some(text) => (
                        class_of_error_text(text),
                        Some(text.clone()),
                        http_status_in(text),
                    ),
                };
                vec![AgentEvent::Final(FinalInfo {
                    class,
                    status: "turn_duration".to_owned(),
                    http_status,
                    error,
                    stop_reason: None,
                })]
            }
            // The Stop hook ran (the tmux lane's completion marker): bookkeeping.
            Some("stop_hook_summary") => Vec::new(),
            Some("api_error") => {
                let text = redact(
                    &map.get("error")
                        .map_or_else(|| "api error".to_owned(), value_text),
                );
                vec![AgentEvent::ApiRetry {
                    attempt: u64_of(map.get("retryAttempt")),
                    max_retries: u64_of(map.get("maxRetries")),
                    delay_ms: u64_of(map.get("retryInMs")),
                    http_status: http_status_in(&text),
                    error: Some(text),
                }]
            }
            other => {
                let raw_type = format!("system/{}", other.unwrap_or(""));
                vec![unknown(raw_type, map)]
            }
        }
    }
}

impl StreamParser for ClaudeTranscriptParser {
    fn feed_line(&mut self, line: &[u8]) -> Vec<AgentEvent> {
        let events = match self.acc.decode(line) {
            Line::Blank => return Vec::new(),
            Line::Bad(event) => return vec![event],
            Line::Object(map) => self.handle(map),
        };
        self.acc.observe(&events);
        events
    }

    /// True once a turn has ended (`system/turn_duration`). [`StreamParser::finish`]
    /// also accepts an assistant message with `stop_reason: end_turn` as the end.
    fn saw_final(&self) -> bool {
        self.acc.final_info.is_some()
    }

    fn finish(&mut self, end: &ProcessEnd) -> Outcome {
        let cost = self.acc.reported_or_estimated(&self.ctx.prices);
        let mut acc = self.acc.clone();
        // The Stop hook may fire before `turn_duration` is written: an assistant
        // message that ended its turn without an API error is a finished turn.
        if acc.final_info.is_none() && self.ended_turn && self.turn_error.is_none() {
            acc.final_text = Some(self.turn_text.join("\n"));
            acc.final_info = Some(FinalInfo {
                class: OutcomeClass::Success,
                status: "end_turn".to_owned(),
                http_status: None,
                error: None,
                stop_reason: Some("end_turn".to_owned()),
            });
        }
        acc.outcome(end, cost, Some(self.ctx.prices.version))
    }
}
