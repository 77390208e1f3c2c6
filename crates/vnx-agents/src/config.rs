//! Provider configuration: the `[providers.<name>]` tables of `vnx.toml`.
//!
//! ```toml
//! [providers.claude]              # kind inferred from the table name
//! binary = "/opt/claude/bin/claude"
//! default_model = "sonnet"
//! env = { CLAUDE_CODE_MAX_RETRIES = "2" }
//!
//! [providers.codex]
//! extra_args = ["-c", "model_reasoning_effort=high"]
//! prices = { "gpt-5" = { input = 1250000, output = 10000000, cache_read = 125000 } }
//!
//! [providers.fake]
//! kind = "command"
//! argv = ["fake-agent", "--prompt-file", "{prompt_file}", "--model", "{model}"]
//! output = "claude-stream-json"
//! ```
//!
//! Every field has a default, so an empty `[providers.claude]` table (or none at
//! all) works when the binary is on `PATH`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::price::ModelPrice;

/// Which CLI adapter a provider uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// Claude Code (`@anthropic-ai/claude-code`), tested range [`crate::CLAUDE_VERSIONS`].
    Claude,
    /// OpenAI Codex CLI (`@openai/codex`), tested range [`crate::CODEX_VERSIONS`].
    Codex,
    /// Gemini CLI (`@google/gemini-cli`), tested range [`crate::GEMINI_VERSIONS`].
    Gemini,
    /// Any CLI, started from an argv template (see [`ProviderConfig::argv`]).
    Command,
}

impl ProviderKind {
    /// The provider's conventional name and default binary: `claude`, `codex`, `gemini`, `command`.
    pub fn name(self) -> &'static str {
        match self {
            ProviderKind::Claude => "claude",
            ProviderKind::Codex => "codex",
            ProviderKind::Gemini => "gemini",
            ProviderKind::Command => "command",
        }
    }

    /// The kind a table named `name` has when it sets no `kind`: the three known
    /// CLI names map to themselves, anything else is `None`.
    pub fn from_name(name: &str) -> Option<ProviderKind> {
        match name {
            "claude" => Some(ProviderKind::Claude),
            "codex" => Some(ProviderKind::Codex),
            "gemini" => Some(ProviderKind::Gemini),
            _ => None,
        }
    }

    /// The stdout format the provider's headless invocation prints.
    pub fn default_output(self) -> OutputFormat {
        match self {
            ProviderKind::Claude => OutputFormat::ClaudeStreamJson,
            ProviderKind::Codex => OutputFormat::CodexJson,
            ProviderKind::Gemini => OutputFormat::GeminiStreamJson,
            ProviderKind::Command => OutputFormat::Text,
        }
    }
}

/// A worker's output format, which selects the parser (see [`crate::parser_for`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutputFormat {
    /// `claude -p --output-format stream-json --verbose`, one JSON object per line.
    ClaudeStreamJson,
    /// The claude interactive session transcript
    /// (`$HOME/.claude/projects/<cwd>/<session-id>.jsonl`), for the tmux lane.
    ClaudeTranscript,
    /// `codex exec --json`, one JSON object per line.
    CodexJson,
    /// `gemini -p --output-format stream-json`, one JSON object per line.
    GeminiStreamJson,
    /// Plain text: every line is agent text; success is a zero exit with output.
    Text,
}

/// One `[providers.<name>]` table. All fields are optional.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProviderConfig {
    /// Adapter to use; inferred from the table name for `claude`, `codex` and
    /// `gemini`, required (`"command"`) for any other name.
    pub kind: Option<ProviderKind>,
    /// Program to run: a path or a name looked up on `PATH`. Default: the kind's
    /// name (`claude`, `codex`, `gemini`). For `command`, default: `argv[0]`.
    pub binary: Option<String>,
    /// Model used when the request names none.
    pub default_model: Option<String>,
    /// Arguments added after vnx's own flags and before the request's `extra_args`.
    pub extra_args: Vec<String>,
    /// Environment variables set for the worker (after the auth guard checks them).
    pub env: BTreeMap<String, String>,
    /// Per-model prices that replace or extend the built-in table, micro-USD per
    /// million tokens, keyed by model name.
    pub prices: BTreeMap<String, ModelPrice>,
    /// `command` only: the argv template, `argv[0]` being the program unless
    /// `binary` is set. Placeholders: `{prompt_file}`, `{model}`, `{cwd}`,
    /// `{session_id}`, `{resume_session_id}`; `{{` and `}}` are literal braces.
    /// An argument that is exactly a placeholder whose value is absent is dropped
    /// together with the argument before it when that one starts with `-`
    /// (`"--model", "{model}"` disappears when no model is set).
    pub argv: Vec<String>,
    /// `command` only: the format the command prints. Default: `text`.
    pub output: Option<OutputFormat>,
    /// `command` only: whether the prompt is written to stdin. Default: true.
    pub prompt_on_stdin: Option<bool>,
}

/// The `[providers]` table of `vnx.toml`: provider name → config.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProvidersConfig(pub BTreeMap<String, ProviderConfig>);

/// A provider ready to build invocations: its name, adapter and config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    /// Name as configured (`claude`, or a custom name such as `fake`).
    pub name: String,
    /// Adapter.
    pub kind: ProviderKind,
    /// Its table from `vnx.toml` (defaults when absent).
    pub config: ProviderConfig,
}

/// A provider table that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The table's name is not a known CLI and it sets no `kind`.
    #[error(
        "provider `{name}` has no `kind`: set `kind = \"command\"` (with `argv`) in [providers.{name}], or name it claude, codex or gemini"
    )]
    MissingKind {
        /// Table name.
        name: String,
    },
    /// A `command` provider without `argv`.
    #[error(
        "provider `{name}` is a command provider without `argv`: set e.g. `argv = [\"my-agent\", \"--prompt-file\", \"{{prompt_file}}\"]` in [providers.{name}]"
    )]
    MissingArgv {
        /// Table name.
        name: String,
    },
    /// The requested provider is neither configured nor a built-in name.
    #[error(
        "unknown provider `{name}`: use claude, codex, gemini or add a [providers.{name}] table to vnx.toml"
    )]
    Unknown {
        /// Requested name.
        name: String,
    },
}

impl Provider {
    /// The built-in provider of `kind` with default config (binary on `PATH`).
    pub fn builtin(kind: ProviderKind) -> Provider {
        Provider {
            name: kind.name().to_owned(),
            kind,
            config: ProviderConfig::default(),
        }
    }

    /// Resolves the table `name` into a provider.
    ///
    /// # Errors
    /// [`ConfigError::MissingKind`] when `name` is not a known CLI and `kind` is
    /// unset; [`ConfigError::MissingArgv`] for a `command` provider with no `argv`.
    pub fn from_config(name: &str, config: ProviderConfig) -> Result<Provider, ConfigError> {
        let kind = config
            .kind
            .or_else(|| ProviderKind::from_name(name))
            .ok_or_else(|| ConfigError::MissingKind {
                name: name.to_owned(),
            })?;
        if kind == ProviderKind::Command && config.argv.is_empty() {
            return Err(ConfigError::MissingArgv {
                name: name.to_owned(),
            });
        }
        Ok(Provider {
            name: name.to_owned(),
            kind,
            config,
        })
    }

    /// The output format this provider's headless invocations print.
    pub fn output_format(&self) -> OutputFormat {
        match self.kind {
            ProviderKind::Command => self.config.output.unwrap_or(OutputFormat::Text),
            kind => kind.default_output(),
        }
    }

    /// The program to run: `binary`, else `argv[0]` for `command`, else the kind's name.
    pub fn program(&self) -> String {
        if let Some(binary) = &self.config.binary {
            return binary.clone();
        }
        match self.kind {
            ProviderKind::Command => self.config.argv.first().cloned().unwrap_or_default(),
            kind => kind.name().to_owned(),
        }
    }
}

impl ProvidersConfig {
    /// Parses the body of a `[providers]` table given as TOML text, e.g. the
    /// contents under `[providers]` of `vnx.toml` re-serialized, or a test string
    /// of `[claude]`, `[codex]`… tables.
    ///
    /// # Errors
    /// The TOML parse error (unknown fields are rejected).
    pub fn from_toml(text: &str) -> Result<ProvidersConfig, toml::de::Error> {
        toml::from_str(text)
    }

    /// Looks up `name`: its table if configured, else the built-in provider of
    /// the same name with defaults.
    ///
    /// # Errors
    /// [`ConfigError::Unknown`] for an unconfigured name that is not built in,
    /// and the errors of [`Provider::from_config`].
    pub fn provider(&self, name: &str) -> Result<Provider, ConfigError> {
        match self.0.get(name) {
            Some(config) => Provider::from_config(name, config.clone()),
            None => ProviderKind::from_name(name)
                .map(Provider::builtin)
                .ok_or_else(|| ConfigError::Unknown {
                    name: name.to_owned(),
                }),
        }
    }
}
