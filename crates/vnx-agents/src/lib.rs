//! Agent CLI adapters for vnx: the part of a dispatch that knows each CLI.
//!
//! - **Request → invocation.** A provider-neutral [`DispatchRequest`] and a
//!   [`Provider`] (from `[providers.<name>]` in `vnx.toml`, see [`ProviderConfig`])
//!   become an [`Invocation`]: program, argv array, environment to set and to
//!   remove, stdin bytes. The prompt always travels on stdin (or the tmux
//!   lane's terminal), never in argv.
//! - **Auth guard.** [`check_auth`] refuses claude or codex in subscription
//!   billing mode when a variable that overrides its login is in the
//!   environment; [`worker_env_allow_list`] is what a worker may inherit (the
//!   base, its own CLI's variables, `[worker] pass_env`), [`env_to_remove`]
//!   what it must not even then (each
//!   CLI's billing variables reach only that CLI, and only in API mode);
//!   [`api_key_source_warning`] flags a run that billed an
//!   API account anyway; [`redact`] masks secrets before anything is written.
//! - **Parsers.** One pure, incremental [`StreamParser`] per output format
//!   ([`parser_for`]): claude `stream-json`, codex `exec --json`, gemini
//!   `stream-json`, the claude interactive transcript, and plain text. Each emits
//!   normalized [`AgentEvent`]s and ends in an [`Outcome`] classified from the
//!   final event, not the exit code.
//! - **Versions.** [`check_version`] compares `--version` output with the
//!   tested range of each CLI ([`CLAUDE_VERSIONS`], [`CODEX_VERSIONS`],
//!   [`GEMINI_VERSIONS`]).
//!
//! ```
//! use vnx_agents::{DispatchRequest, ParseContext, ProcessEnd, Provider, ProviderKind};
//!
//! let provider = Provider::builtin(ProviderKind::Claude);
//! let req = DispatchRequest::new("Say hello", "/tmp/worktree");
//! let inv = vnx_agents::build_invocation(&provider, &req, [("PATH", "/usr/bin")])?;
//! assert_eq!(inv.program, "claude");
//! assert_eq!(inv.stdin.as_deref(), Some(&b"Say hello"[..]));
//!
//! // The exec layer spawns `inv` and feeds stdout lines to the parser.
//! let mut parser = vnx_agents::parser_for(inv.output, ParseContext::new(&provider, &req));
//! parser.feed_line(br#"{"type":"result","subtype":"success","is_error":false,"result":"hi","total_cost_usd":0.01}"#);
//! let outcome = parser.finish(&ProcessEnd::exited(0));
//! assert!(outcome.class.is_success());
//! assert_eq!(outcome.cost_usd_micros, 10_000);
//! # Ok::<(), vnx_agents::BuildError>(())
//! ```
//!
//! Architecture invariant: this crate spawns no process, reads no environment
//! and no file at run time, and has no async runtime. Callers pass the
//! environment in and feed output lines to the parsers.
//!
//! Units: durations in milliseconds, money in integer micro-USD (1 USD =
//! 1 000 000), tokens as integers in [`vnx_types::Usage`]'s convention (input
//! excludes cache reads and writes).

mod auth;
mod config;
mod event;
mod invocation;
mod money;
mod outcome;
mod parse;
mod price;
mod request;
mod secrets;
mod version;

pub use auth::{
    AuthError, BASE_ENV_PREFIXES, BASE_ENV_VARS, CLAUDE_API_BILLING_VARS, CLAUDE_SESSION_VARS,
    CLI_ENV_PREFIXES, CODEX_API_BILLING_VARS, CODEX_API_KEY, EnvAllowList, GEMINI_API_BILLING_VARS,
    api_billing_vars, api_key_source_warning, base_env_allow_list, check_auth, env_to_remove,
    login_override_vars, worker_env_allow_list,
};
pub use config::{
    ConfigError, OutputFormat, Provider, ProviderConfig, ProviderKind, ProvidersConfig,
};
pub use event::{AgentEvent, FinalInfo, RateLimit, ToolCall};
pub use invocation::{
    BuildError, CLAUDE_READ_TOOLS, CLAUDE_WRITE_TOOLS, Invocation, build_invocation,
};
pub use money::{MICROS_PER_USD, decimal_usd_to_micros, format_usd, usd_to_micros};
pub use outcome::{EndCause, Exit, MAX_ERROR_CHARS, Outcome, ProcessEnd};
pub use parse::{
    ClaudeStreamParser, ClaudeTranscriptParser, CodexJsonParser, GeminiStreamParser, ParseContext,
    StreamParser, TextParser, class_of_error_text, class_of_status, claude_transcript_path,
    http_status_in, is_transient_error_text, parser_for,
};
pub use price::{BUILTIN_PRICES_TOML, Cost, ModelPrice, PriceTable};
pub use request::{DispatchRequest, PermissionProfile};
pub use secrets::{
    PRIVATE_KEY, SecretMatch, SecretPatternError, find_secrets, redact, secret_kinds,
};
pub use version::{
    CLAUDE_VERSIONS, CODEX_VERSIONS, CliVersion, GEMINI_VERSIONS, VersionCheck, VersionRange,
    check_version, parse_version, tested_range,
};
