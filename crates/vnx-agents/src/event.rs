//! The normalized events every parser emits, whatever the CLI.

use serde::Serialize;
use serde_json::Value;
use vnx_types::{OutcomeClass, Usage};

/// One thing a worker CLI reported, normalized across CLIs.
///
/// Parsers emit these as lines arrive (for live progress and the inactivity
/// watchdog); the [`crate::Outcome`] sums them up at the end. Nothing a CLI
/// prints is dropped silently: lines of an unknown type become
/// [`AgentEvent::Unknown`] and lines that are not JSON objects become
/// [`AgentEvent::Unparseable`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum AgentEvent {
    /// The session started (claude `system/init`, codex `thread.started`, gemini `init`).
    Init {
        /// Session id (claude `session_id`, codex `thread_id`, gemini `session_id`).
        session_id: Option<String>,
        /// Model the CLI reports (gemini reports `auto` when its router picks).
        model: Option<String>,
        /// CLI version (claude `claude_code_version`; the transcript's `version`).
        cli_version: Option<String>,
        /// Credential source (claude `apiKeySource`; `none` = subscription login).
        api_key_source: Option<String>,
        /// Tool names offered to the model (claude only).
        tools: Vec<String>,
    },
    /// A complete piece of assistant text (claude `assistant` text block, codex
    /// `agent_message`, gemini non-delta `message`).
    Text {
        /// The text.
        text: String,
    },
    /// A streamed fragment of assistant text (claude `stream_event` `text_delta`
    /// with `--include-partial-messages`, gemini `message` with `delta: true`).
    TextDelta {
        /// The fragment.
        text: String,
    },
    /// Model reasoning text (claude `thinking` blocks, codex `reasoning` items).
    Thinking {
        /// The text.
        text: String,
    },
    /// The agent called a tool.
    ToolCall(ToolCall),
    /// A tool call finished.
    ToolResult {
        /// Id of the call it answers, when the CLI gives one.
        id: Option<String>,
        /// Whether the tool reported failure.
        is_error: bool,
        /// CLI-specific status text (`success`, `completed`, `failed`…).
        status: Option<String>,
        /// The tool's output as text, when given: secrets redacted, then cut
        /// to 8,000 chars.
        output: Option<String>,
    },
    /// Token usage so far: the running total for the whole run as best known at
    /// this point (deduplicated by message id for claude, the thread total for codex).
    Usage {
        /// Running total.
        total: Usage,
    },
    /// A rate-limit status report (claude `rate_limit_event`).
    RateLimit(RateLimit),
    /// The CLI retries a failed API request (claude `system/api_retry`).
    ApiRetry {
        /// Attempt number, 1-based.
        attempt: Option<u64>,
        /// Retry cap.
        max_retries: Option<u64>,
        /// Delay before the retry, ms.
        delay_ms: Option<u64>,
        /// HTTP status of the failed request.
        http_status: Option<u16>,
        /// Error text (redacted).
        error: Option<String>,
    },
    /// An error the CLI reported that did not (yet) end the run (codex `error`,
    /// gemini `error`, a codex `error` item).
    Error {
        /// Message (redacted).
        message: String,
        /// HTTP status found in the event, if any.
        http_status: Option<u16>,
    },
    /// The run's final event (claude `result`, codex `turn.completed`/`turn.failed`,
    /// gemini `result`, transcript `turn_duration`).
    Final(FinalInfo),
    /// A well-formed JSON line of a type this parser does not know. Kept whole:
    /// new event types appear between CLI versions.
    Unknown {
        /// The line's `type` (with `/subtype` for claude `system` lines), or empty.
        raw_type: String,
        /// The whole line.
        raw: Value,
    },
    /// A line that is not a JSON object. Kept as raw bytes and counted.
    Unparseable {
        /// The bytes of the line, without the newline.
        raw: Vec<u8>,
    },
}

/// A tool call by the agent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolCall {
    /// Call id (claude `toolu_…`, codex item id, gemini `tool_id`).
    pub id: Option<String>,
    /// Tool name as the CLI names it: claude `Write`, `Bash`…; gemini
    /// `write_file`…; codex item types `command_execution`, `file_change`,
    /// `mcp_tool_call`, `web_search`.
    pub name: String,
    /// The tool's input: claude and gemini parameters as given; codex
    /// `{command}` or `{changes: [{path, kind}]}`.
    pub input: Value,
}

impl ToolCall {
    /// Paths this call writes, if it is a known file-writing tool: claude
    /// `Write`/`Edit`/`MultiEdit`/`NotebookEdit`, gemini `write_file`/`replace`,
    /// codex `file_change` (every change but deletions).
    pub fn written_paths(&self) -> Vec<String> {
        let str_field = |key: &str| {
            self.input
                .get(key)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        match self.name.as_str() {
            "Write" | "Edit" | "MultiEdit" | "write_file" | "replace" => {
                str_field("file_path").into_iter().collect()
            }
            "NotebookEdit" => str_field("notebook_path").into_iter().collect(),
            "file_change" => self
                .input
                .get("changes")
                .and_then(Value::as_array)
                .map(|changes| {
                    changes
                        .iter()
                        .filter(|c| c.get("kind").and_then(Value::as_str) != Some("delete"))
                        .filter_map(|c| c.get("path").and_then(Value::as_str).map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }
}

/// A rate-limit report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RateLimit {
    /// Status as reported: claude `allowed`, `allowed_warning`, `rejected`.
    pub status: String,
    /// When the limit resets, Unix seconds (claude `rate_limit_info.resetsAt`).
    pub resets_at_unix_s: Option<u64>,
    /// Which limit (claude `rateLimitType`, e.g. `five_hour`).
    pub kind: Option<String>,
}

impl RateLimit {
    /// Whether the provider refused the request.
    pub fn is_rejected(&self) -> bool {
        self.status == "rejected"
    }
}

/// What a run's final event said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FinalInfo {
    /// The class this final event alone implies.
    pub class: OutcomeClass,
    /// The CLI's own status or subtype (claude `subtype`, gemini `status`,
    /// codex `turn.completed`/`turn.failed`).
    pub status: String,
    /// HTTP status of an API error (claude `api_error_status`, or found in the error text).
    pub http_status: Option<u16>,
    /// Error text (redacted), for failed runs.
    pub error: Option<String>,
    /// Why the model stopped (claude `stop_reason`, e.g. `end_turn`).
    pub stop_reason: Option<String>,
}
