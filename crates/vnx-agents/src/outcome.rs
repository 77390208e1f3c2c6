//! How a worker process ended ([`ProcessEnd`]) and what its run amounted to ([`Outcome`]).

use serde::Serialize;
use serde_json::Value;
use vnx_types::{Billing, CostSource, OutcomeClass, Usage};

use crate::event::{RateLimit, ToolCall};

/// How the process exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Exit {
    /// Exited with this code.
    Code(i32),
    /// Killed by this signal number.
    Signal(i32),
    /// The status could not be collected.
    NotCollected,
}

/// Why the process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum EndCause {
    /// On its own.
    #[default]
    Exited,
    /// vnx killed it at its total timeout or inactivity watchdog.
    TimedOut,
    /// The user interrupted the dispatch (Ctrl-C, SIGTERM to vnx).
    Interrupted,
    /// vnx stopped it because its output broke the protocol (the observer aborted).
    Aborted,
}

/// What the exec layer observed when the worker process ended; input to
/// [`crate::StreamParser::finish`].
///
/// From `vnx-exec`'s `RunReport`: `exit` ← `exit` (`Unknown` → `NotCollected`);
/// `cause` ← `ended_by` (`TimedOut` → `TimedOut`, `Interrupted` → `Interrupted`,
/// `Aborted` → `Aborted`, `Finished`/`Exited` → `Exited`); `oversize_lines`,
/// `stderr_tail` (lossy UTF-8) and `wall_ms` ← `duration_ms` as they are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcessEnd {
    /// Exit status.
    pub exit: Exit,
    /// Why it ended.
    pub cause: EndCause,
    /// Lines longer than the exec layer's line cap, dropped before parsing.
    pub oversize_lines: u64,
    /// The last bytes of stderr, lossily decoded (bounded by the exec layer).
    pub stderr_tail: String,
    /// Wall time of the process, ms, used when the CLI reports no duration.
    pub wall_ms: Option<u64>,
}

impl ProcessEnd {
    /// A process that exited on its own with `code`.
    pub fn exited(code: i32) -> ProcessEnd {
        ProcessEnd {
            exit: Exit::Code(code),
            cause: EndCause::Exited,
            oversize_lines: 0,
            stderr_tail: String::new(),
            wall_ms: None,
        }
    }

    /// A process killed by `signal` that vnx did not kill.
    pub fn signaled(signal: i32) -> ProcessEnd {
        ProcessEnd {
            exit: Exit::Signal(signal),
            ..ProcessEnd::exited(0)
        }
    }

    /// A process vnx killed with `signal` because `cause` (timeout or interrupt).
    pub fn killed(signal: i32, cause: EndCause) -> ProcessEnd {
        ProcessEnd {
            exit: Exit::Signal(signal),
            cause,
            ..ProcessEnd::exited(0)
        }
    }

    /// The same end with a stderr tail.
    #[must_use]
    pub fn with_stderr(mut self, tail: impl Into<String>) -> ProcessEnd {
        self.stderr_tail = tail.into();
        self
    }

    /// The exit code, if the process exited.
    pub fn exit_code(&self) -> Option<i32> {
        match self.exit {
            Exit::Code(code) => Some(code),
            _ => None,
        }
    }
}

/// Everything a run produced, summed up from its events and its end.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    /// How the run ended, classified from its final event (see [`crate::StreamParser::finish`]).
    pub class: OutcomeClass,
    /// Session id the CLI reported.
    pub session_id: Option<String>,
    /// Model that answered, as the CLI reported it (codex reports none: the
    /// requested model is used; gemini: the model with most tokens in `stats.models`).
    pub model: Option<String>,
    /// CLI version the stream reported (claude only; `--version` otherwise).
    pub cli_version: Option<String>,
    /// Credential source (claude `apiKeySource`).
    pub api_key_source: Option<String>,
    /// Token usage, normalized to [`Usage`]'s convention (input excludes cache reads and writes).
    pub usage: Usage,
    /// Cost, micro-USD (0 when `cost_source` is `unknown`).
    pub cost_usd_micros: u64,
    /// Reported by the CLI, estimated from the price table, or unknown.
    pub cost_source: CostSource,
    /// Version of the price table used for an estimate.
    pub price_table_version: Option<u32>,
    /// Agent turns (claude `num_turns`; codex and transcript: completed turns).
    pub turns: u64,
    /// Run duration, ms: the CLI's own figure, else the process wall time.
    pub duration_ms: Option<u64>,
    /// The agent's final text (claude `result`, codex last `agent_message`,
    /// gemini assistant text after the last tool call). As the agent wrote it:
    /// not redacted, control characters not escaped.
    pub final_text: Option<String>,
    /// Structured output (claude `result.structured_output` with `--json-schema`).
    pub structured_output: Option<Value>,
    /// Tool calls, in order.
    pub tool_calls: Vec<ToolCall>,
    /// Rate-limit reports, in order.
    pub rate_limits: Vec<RateLimit>,
    /// API retries the CLI made on its own.
    pub api_retries: u64,
    /// HTTP status of the API error that ended the run, if any.
    pub http_status: Option<u16>,
    /// Why the model stopped (claude `stop_reason`).
    pub stop_reason: Option<String>,
    /// Error text (redacted, at most [`MAX_ERROR_CHARS`] chars) for failed runs.
    pub error: Option<String>,
    /// Process exit code, if it exited.
    pub exit_code: Option<i32>,
    /// Killing signal, if any.
    pub signal: Option<i32>,
    /// Whether a final event was seen.
    pub saw_final: bool,
    /// Parsed events, `Unknown` ones included.
    pub events: u64,
    /// Events of unknown type.
    pub unknown_events: u64,
    /// Lines that were not JSON objects.
    pub unparseable_lines: u64,
    /// Lines dropped by the exec layer for exceeding its size cap.
    pub oversize_lines: u64,
}

/// Cap on [`Outcome::error`], in chars.
pub const MAX_ERROR_CHARS: usize = 2000;

impl Outcome {
    /// Whether another attempt may succeed: rate limits, API 5xx errors (or,
    /// without a status, an error text that says the failure is temporary, see
    /// [`crate::is_transient_error_text`]), and crashes before the CLI printed anything.
    pub fn retryable(&self) -> bool {
        match self.class {
            OutcomeClass::RateLimited => true,
            OutcomeClass::Api => match self.http_status {
                Some(status) => (500..=599).contains(&status),
                None => self
                    .error
                    .as_deref()
                    .is_some_and(crate::parse::is_transient_error_text),
            },
            OutcomeClass::Crashed => self.events == 0 && self.unparseable_lines == 0,
            _ => false,
        }
    }

    /// When a retry makes sense, Unix seconds: the `resets_at` of the last
    /// rejected rate-limit report, else of the last report that has one.
    pub fn rate_limit_resets_at(&self) -> Option<u64> {
        self.rate_limits
            .iter()
            .rev()
            .find(|r| r.is_rejected() && r.resets_at_unix_s.is_some())
            .or_else(|| {
                self.rate_limits
                    .iter()
                    .rev()
                    .find(|r| r.resets_at_unix_s.is_some())
            })
            .and_then(|r| r.resets_at_unix_s)
    }

    /// Paths written by the run's tool calls, in call order, without duplicates
    /// (see [`ToolCall::written_paths`]).
    pub fn files_written(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for path in self.tool_calls.iter().flat_map(ToolCall::written_paths) {
            if !out.contains(&path) {
                out.push(path);
            }
        }
        out
    }

    /// Warnings a receipt should carry: credential source vs billing mode,
    /// unknown events, unparseable or oversize lines, unknown cost.
    pub fn warnings(&self, billing: Billing) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(w) =
            crate::auth::api_key_source_warning(self.api_key_source.as_deref(), billing)
        {
            out.push(w);
        }
        if self.unknown_events > 0 {
            out.push(format!(
                "{} event(s) of unknown type kept as-is",
                self.unknown_events
            ));
        }
        if self.unparseable_lines > 0 {
            out.push(format!(
                "{} output line(s) were not JSON",
                self.unparseable_lines
            ));
        }
        if self.oversize_lines > 0 {
            out.push(format!(
                "{} output line(s) exceeded the line size cap and were dropped",
                self.oversize_lines
            ));
        }
        if self.cost_source == CostSource::Unknown {
            out.push(format!(
                "cost unknown: no price for model {}",
                self.model.as_deref().unwrap_or("(not reported)")
            ));
        }
        out
    }
}
