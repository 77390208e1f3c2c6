//! Pure, incremental parsers for each CLI's output, one line at a time.
//!
//! The exec layer splits stdout into lines (dropping lines above its size cap
//! and counting them in [`ProcessEnd::oversize_lines`]), feeds each line to
//! [`StreamParser::feed_line`], and calls [`StreamParser::finish`] once the
//! process has ended. Parsers never fail: unknown event types become
//! [`AgentEvent::Unknown`], lines that are not JSON objects become
//! [`AgentEvent::Unparseable`], and what is missing shows in the outcome class.

mod claude;
mod codex;
mod gemini;
mod text;
mod transcript;

pub use claude::ClaudeStreamParser;
pub use codex::CodexJsonParser;
pub use gemini::GeminiStreamParser;
pub use text::TextParser;
pub use transcript::{ClaudeTranscriptParser, claude_transcript_path};

use serde_json::{Map, Value};
use vnx_types::{CostSource, OutcomeClass, Usage};

use crate::config::{OutputFormat, Provider};
use crate::event::{AgentEvent, FinalInfo, RateLimit, ToolCall};
use crate::outcome::{EndCause, Exit, MAX_ERROR_CHARS, Outcome, ProcessEnd};
use crate::price::{Cost, PriceTable};
use crate::redact;
use crate::request::DispatchRequest;

/// An incremental parser of one worker's stdout.
pub trait StreamParser {
    /// Parses one line (without or with its trailing newline) and returns the
    /// events it carried, often one, none for blank lines and for known lines
    /// with nothing to report (e.g. a claude `message_stop`).
    fn feed_line(&mut self, line: &[u8]) -> Vec<AgentEvent>;

    /// Whether the run's final event has been seen (the exec layer may then stop
    /// waiting for more output after a grace period).
    fn saw_final(&self) -> bool;

    /// Sums the run up. The class comes from the final event when there is one
    /// (claude API errors exit 1 but print a `result`); otherwise from `end`:
    /// timed out → `timeout`, interrupted → `interrupted`, aborted by the
    /// observer → `protocol`, a rejected rate limit
    /// → `rate_limited`, an error event with a known HTTP status → that class,
    /// a signal or non-zero exit → `crashed`, exit 0 → `protocol` (a CLI that
    /// printed nothing and exited 0 never counts as success).
    ///
    /// May be called more than once; it does not consume the parser's state.
    fn finish(&mut self, end: &ProcessEnd) -> Outcome;
}

/// What a parser needs besides the stream: prices and the requested model
/// (codex never names the model it used).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseContext {
    /// Price table for estimates (built-in plus the provider's overrides).
    pub prices: PriceTable,
    /// The model vnx asked for, if any.
    pub requested_model: Option<String>,
}

impl ParseContext {
    /// The context for a run of `provider` for `req`: the built-in prices with
    /// the provider's `prices` overrides, and the request's model (else the
    /// provider's `default_model`).
    pub fn new(provider: &Provider, req: &DispatchRequest) -> ParseContext {
        ParseContext {
            prices: PriceTable::builtin().with_overrides(&provider.config.prices),
            requested_model: req
                .model
                .clone()
                .or_else(|| provider.config.default_model.clone()),
        }
    }
}

impl Default for ParseContext {
    fn default() -> Self {
        ParseContext {
            prices: PriceTable::builtin(),
            requested_model: None,
        }
    }
}

/// The parser for `format`.
pub fn parser_for(format: OutputFormat, ctx: ParseContext) -> Box<dyn StreamParser + Send> {
    match format {
        OutputFormat::ClaudeStreamJson => Box::new(ClaudeStreamParser::new(ctx)),
        OutputFormat::ClaudeTranscript => Box::new(ClaudeTranscriptParser::new(ctx)),
        OutputFormat::CodexJson => Box::new(CodexJsonParser::new(ctx)),
        OutputFormat::GeminiStreamJson => Box::new(GeminiStreamParser::new(ctx)),
        OutputFormat::Text => Box::new(TextParser::new()),
    }
}

/// State every parser accumulates, turned into an [`Outcome`] by [`Acc::outcome`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Acc {
    pub session_id: Option<String>,
    pub model: Option<String>,
    pub cli_version: Option<String>,
    pub api_key_source: Option<String>,
    pub usage: Usage,
    pub reported_cost: Option<u64>,
    pub turns: u64,
    pub duration_ms: Option<u64>,
    pub final_text: Option<String>,
    pub structured_output: Option<Value>,
    pub tool_calls: Vec<ToolCall>,
    pub rate_limits: Vec<RateLimit>,
    pub api_retries: u64,
    pub last_error: Option<String>,
    pub last_error_status: Option<u16>,
    pub final_info: Option<FinalInfo>,
    pub events: u64,
    pub unknown: u64,
    pub unparseable: u64,
}

/// Result of decoding one line.
pub(crate) enum Line {
    /// Blank: nothing to do.
    Blank,
    /// A JSON object.
    Object(Map<String, Value>),
    /// Not a JSON object; the event to emit is already counted.
    Bad(AgentEvent),
}

impl Acc {
    /// The cost the CLI reported, else an estimate from `prices` for the
    /// model and usage seen (claude reports; its transcript sometimes does).
    pub(crate) fn reported_or_estimated(&self, prices: &PriceTable) -> Cost {
        match self.reported_cost {
            Some(micros) => Cost {
                usd_micros: micros,
                source: CostSource::Reported,
            },
            None => estimate(prices, self.model.as_deref(), &self.usage),
        }
    }

    /// Decodes `line` into a JSON object, counting it if it is not one.
    pub fn decode(&mut self, line: &[u8]) -> Line {
        let trimmed = trim_ascii(line);
        if trimmed.is_empty() {
            return Line::Blank;
        }
        if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(trimmed) {
            Line::Object(map)
        } else {
            self.unparseable += 1;
            Line::Bad(AgentEvent::Unparseable {
                raw: trimmed.to_vec(),
            })
        }
    }

    /// Records what `events` imply for the outcome. Parsers call this on every
    /// batch they return, so the outcome and the event stream cannot disagree.
    pub fn observe(&mut self, events: &[AgentEvent]) {
        for event in events {
            match event {
                AgentEvent::Unparseable { .. } => continue,
                AgentEvent::Unknown { .. } => self.unknown += 1,
                AgentEvent::Init {
                    session_id,
                    model,
                    cli_version,
                    api_key_source,
                    ..
                } => {
                    set_if_some(&mut self.session_id, session_id.as_ref());
                    set_if_some(&mut self.model, model.as_ref());
                    set_if_some(&mut self.cli_version, cli_version.as_ref());
                    set_if_some(&mut self.api_key_source, api_key_source.as_ref());
                }
                AgentEvent::ToolCall(call) => self.tool_calls.push(call.clone()),
                AgentEvent::RateLimit(limit) => self.rate_limits.push(limit.clone()),
                AgentEvent::ApiRetry { .. } => self.api_retries += 1,
                AgentEvent::Error {
                    message,
                    http_status,
                } => {
                    self.last_error = Some(message.clone());
                    if http_status.is_some() {
                        self.last_error_status = *http_status;
                    }
                }
                AgentEvent::Usage { total } => self.usage = *total,
                AgentEvent::Final(info) => self.final_info = Some(info.clone()),
                AgentEvent::Text { .. }
                | AgentEvent::TextDelta { .. }
                | AgentEvent::Thinking { .. }
                | AgentEvent::ToolResult { .. } => {}
            }
            self.events += 1;
        }
    }

    /// Builds the outcome; `cost` is the parser's reported or estimated cost.
    pub fn outcome(
        &self,
        end: &ProcessEnd,
        cost: Cost,
        price_table_version: Option<u32>,
    ) -> Outcome {
        let class = self.classify(end);
        let http_status =
            self.final_info
                .as_ref()
                .and_then(|f| f.http_status)
                .or(if class.is_success() {
                    None
                } else {
                    self.last_error_status
                });
        let final_error = self.final_info.as_ref().and_then(|f| f.error.clone());
        let stderr = {
            let tail = end.stderr_tail.trim();
            // Redact the whole tail first: a cut first could split a key so
            // that the kept half is no longer recognizable.
            (!tail.is_empty()).then(|| last_chars(&redact(tail), STDERR_CHARS_IN_ERROR))
        };
        let text = match default_error_text(class, end) {
            // The process end explains the failure; the CLI's own words follow.
            Some(how) if final_error.is_none() => {
                Some(match stderr.or_else(|| self.last_error.clone()) {
                    Some(detail) => format!("{how}: {detail}"),
                    None => how,
                })
            }
            _ if class.is_success() => None,
            _ => final_error
                .or_else(|| self.last_error.clone())
                .or(stderr)
                .or_else(|| Some(format!("{class:?} error"))),
        };
        let error = text.map(|t| bound(&redact(&t), MAX_ERROR_CHARS));
        Outcome {
            class,
            session_id: self.session_id.clone(),
            model: self.model.clone(),
            cli_version: self.cli_version.clone(),
            api_key_source: self.api_key_source.clone(),
            usage: self.usage,
            cost_usd_micros: cost.usd_micros,
            cost_source: cost.source,
            price_table_version: (cost.source == CostSource::Estimated)
                .then_some(price_table_version)
                .flatten(),
            turns: self.turns,
            duration_ms: self.duration_ms.or(end.wall_ms),
            final_text: self.final_text.clone(),
            structured_output: self.structured_output.clone(),
            tool_calls: self.tool_calls.clone(),
            rate_limits: self.rate_limits.clone(),
            api_retries: self.api_retries,
            http_status,
            stop_reason: self.final_info.as_ref().and_then(|f| f.stop_reason.clone()),
            error,
            exit_code: end.exit_code(),
            signal: match end.exit {
                Exit::Signal(sig) => Some(sig),
                _ => None,
            },
            saw_final: self.final_info.is_some(),
            events: self.events,
            unknown_events: self.unknown,
            unparseable_lines: self.unparseable,
            oversize_lines: end.oversize_lines,
        }
    }

    fn classify(&self, end: &ProcessEnd) -> OutcomeClass {
        if let Some(info) = &self.final_info {
            return info.class;
        }
        match end.cause {
            EndCause::TimedOut => return OutcomeClass::Timeout,
            EndCause::Interrupted => return OutcomeClass::Interrupted,
            EndCause::Aborted => return OutcomeClass::Protocol,
            EndCause::Exited => {}
        }
        if self.rate_limits.iter().any(RateLimit::is_rejected) {
            return OutcomeClass::RateLimited;
        }
        match end.exit {
            Exit::Code(0) => OutcomeClass::Protocol,
            Exit::Code(_) | Exit::NotCollected if self.last_error.is_some() => {
                match self.last_error_status.map(class_of_status) {
                    Some(class) => class,
                    None => OutcomeClass::Crashed,
                }
            }
            _ => OutcomeClass::Crashed,
        }
    }
}

fn default_error_text(class: OutcomeClass, end: &ProcessEnd) -> Option<String> {
    let how = match end.exit {
        Exit::Code(code) => format!("exit code {code}"),
        Exit::Signal(sig) => format!("signal {sig}"),
        Exit::NotCollected => "unknown exit status".to_owned(),
    };
    match class {
        OutcomeClass::Protocol if end.cause == EndCause::Aborted => Some(format!(
            "vnx stopped the CLI: its output broke the protocol ({how})"
        )),
        OutcomeClass::Protocol => Some(format!("the CLI printed no final event ({how})")),
        OutcomeClass::Crashed => Some(format!("the CLI died before its final event ({how})")),
        OutcomeClass::Timeout => Some(format!("stopped at the timeout ({how})")),
        OutcomeClass::Interrupted => Some(format!("interrupted by the user ({how})")),
        _ => None,
    }
}

/// How much of the stderr tail goes into [`Outcome::error`], chars.
const STDERR_CHARS_IN_ERROR: usize = 1500;

/// The last `n` chars of `text`, with `…` marking a cut.
fn last_chars(text: &str, n: usize) -> String {
    let count = text.chars().count();
    if count <= n {
        return text.to_owned();
    }
    let mut out = String::from("…");
    out.extend(text.chars().skip(count - n));
    out
}

fn set_if_some(slot: &mut Option<String>, value: Option<&String>) {
    if let Some(v) = value {
        *slot = Some(v.clone());
    }
}

/// `text` cut to at most `max` chars, with `…` marking a cut.
pub(crate) fn bound(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn trim_ascii(mut bytes: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = bytes {
        if first.is_ascii_whitespace() {
            bytes = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = bytes {
        if last.is_ascii_whitespace() {
            bytes = rest;
        } else {
            break;
        }
    }
    bytes
}

/// The class an HTTP error status implies: 429 → rate limited, 401/403 → auth,
/// anything else → api.
pub fn class_of_status(status: u16) -> OutcomeClass {
    match status {
        429 => OutcomeClass::RateLimited,
        401 | 403 => OutcomeClass::Auth,
        _ => OutcomeClass::Api,
    }
}

/// Classifies an API error from its text when no status is given: rate-limit
/// and quota wording → rate limited; authentication wording → auth; else api.
pub fn class_of_error_text(text: &str) -> OutcomeClass {
    if let Some(status) = http_status_in(text) {
        return class_of_status(status);
    }
    let lower = text.to_ascii_lowercase();
    let rate = [
        "rate limit",
        "rate_limit",
        "ratelimit",
        "too many requests",
        "resource_exhausted",
        "quota",
        "usage limit",
    ];
    let auth = [
        "unauthorized",
        "unauthenticated",
        "forbidden",
        "permission_denied",
        "authentication",
        "invalid api key",
        "invalid x-api-key",
        "not logged in",
        "please run /login",
        "oauth token",
    ];
    if rate.iter().any(|w| lower.contains(w)) {
        OutcomeClass::RateLimited
    } else if auth.iter().any(|w| lower.contains(w)) {
        OutcomeClass::Auth
    } else {
        OutcomeClass::Api
    }
}

/// Whether an API error text without a status describes a temporary
/// server-side failure, e.g. codex 0.169's message for an HTTP 500: "We're
/// currently experiencing high demand, which may cause temporary errors."
pub fn is_transient_error_text(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    [
        "high demand",
        "temporar",
        "overloaded",
        "internal server error",
        "service unavailable",
        "bad gateway",
        "gateway timeout",
        "server error",
        "try again",
        "connection reset",
        "stream disconnected",
    ]
    .iter()
    .any(|w| lower.contains(w))
}

/// The first HTTP error status (400–599) standing alone as a 3-digit number in
/// `text`, e.g. `500` in `API Error: 500 {"type":"error"…}`.
pub fn http_status_in(text: &str) -> Option<u16> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            let before_ok = start == 0
                || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'.');
            let after_ok =
                i == bytes.len() || !(bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.');
            if i - start == 3
                && before_ok
                && after_ok
                && let Ok(n) = text[start..i].parse::<u16>()
                && (400..=599).contains(&n)
            {
                return Some(n);
            }
        } else {
            i += 1;
        }
    }
    None
}

/// JSON helpers shared by the parsers.
pub(crate) fn str_of(map: &Map<String, Value>, key: &str) -> Option<String> {
    map.get(key).and_then(Value::as_str).map(str::to_owned)
}

pub(crate) fn u64_of(value: Option<&Value>) -> Option<u64> {
    let value = value?;
    value.as_u64().or_else(|| {
        value
            .as_f64()
            .filter(|f| f.is_finite() && *f >= 0.0)
            .map(|f| f as u64)
    })
}

pub(crate) fn u16_of(value: Option<&Value>) -> Option<u16> {
    u64_of(value)
        .and_then(|n| u16::try_from(n).ok())
        .or_else(|| {
            value
                .and_then(Value::as_str)
                .and_then(|s| s.trim().parse::<u16>().ok())
        })
}

/// The `type` of a line, or `""`.
pub(crate) fn type_of(map: &Map<String, Value>) -> &str {
    map.get("type").and_then(Value::as_str).unwrap_or("")
}

pub(crate) fn unknown(raw_type: impl Into<String>, map: Map<String, Value>) -> AgentEvent {
    AgentEvent::Unknown {
        raw_type: raw_type.into(),
        raw: Value::Object(map),
    }
}

/// Estimates the cost of `usage` on `model`, or unknown without a model.
pub(crate) fn estimate(prices: &PriceTable, model: Option<&str>, usage: &Usage) -> Cost {
    match model {
        Some(model) => prices.estimate(model, usage),
        None => Cost::UNKNOWN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_http_status() {
        assert_eq!(
            http_status_in("API Error: 500 {\"type\":\"error\"}"),
            Some(500)
        );
        assert_eq!(
            http_status_in("unexpected status 429 Too Many Requests"),
            Some(429)
        );
        assert_eq!(http_status_in("version 2.1.330"), None);
        assert_eq!(http_status_in("id 14290 and 200"), None);
        assert_eq!(http_status_in(""), None);
        assert_eq!(http_status_in("é403é"), Some(403));
    }

    #[test]
    fn classifies_error_text() {
        assert_eq!(
            class_of_error_text("Rate limit reached"),
            OutcomeClass::RateLimited
        );
        assert_eq!(
            class_of_error_text("Invalid API key · Please run /login"),
            OutcomeClass::Auth
        );
        assert_eq!(
            class_of_error_text("stream disconnected before completion"),
            OutcomeClass::Api
        );
        assert_eq!(
            class_of_error_text("HTTP 503 overloaded"),
            OutcomeClass::Api
        );
    }

    #[test]
    fn bounds_text() {
        assert_eq!(bound("abc", 5), "abc");
        assert_eq!(bound("abcdef", 4), "abc…");
    }
}
