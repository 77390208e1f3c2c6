use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Token usage of one agent run, as reported by the CLI.
///
/// `input_tokens` excludes cache reads and cache writes (Anthropic's convention,
/// which vnx normalizes every provider to), so the four fields add up to the
/// tokens processed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Usage {
    /// Uncached input tokens.
    pub input_tokens: u64,
    /// Output tokens, reasoning tokens included.
    pub output_tokens: u64,
    /// Input tokens served from the prompt cache.
    pub cache_read_tokens: u64,
    /// Input tokens written to the prompt cache.
    pub cache_write_tokens: u64,
}

impl Usage {
    /// Sum of all four counters, saturating.
    pub fn total(&self) -> u64 {
        self.input_tokens
            .saturating_add(self.output_tokens)
            .saturating_add(self.cache_read_tokens)
            .saturating_add(self.cache_write_tokens)
    }

    /// Field-wise saturating sum, for adding up attempts or review dispatches.
    #[must_use]
    pub fn plus(&self, other: &Usage) -> Usage {
        Usage {
            input_tokens: self.input_tokens.saturating_add(other.input_tokens),
            output_tokens: self.output_tokens.saturating_add(other.output_tokens),
            cache_read_tokens: self
                .cache_read_tokens
                .saturating_add(other.cache_read_tokens),
            cache_write_tokens: self
                .cache_write_tokens
                .saturating_add(other.cache_write_tokens),
        }
    }
}

/// Where a cost figure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CostSource {
    /// The CLI reported the cost itself (claude's `total_cost_usd`).
    Reported,
    /// vnx estimated it from usage and its versioned price table
    /// (codex and gemini report no cost).
    Estimated,
    /// Neither: no price is known for the model.
    Unknown,
}

/// How one agent run ended, classified from its final event — never from the
/// exit code alone (claude reports API errors as `subtype: "success"` with
/// `is_error: true` and exit code 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeClass {
    /// The agent finished its turn without error.
    Success,
    /// The model API returned an error (4xx other than 401/403/429, or 5xx).
    Api,
    /// The provider refused for rate or quota reasons (HTTP 429, a rejected
    /// `rate_limit_event`).
    RateLimited,
    /// Authentication failed (HTTP 401/403, not logged in).
    Auth,
    /// The run stopped at its `--max-turns` limit.
    MaxTurns,
    /// The run stopped at its budget limit.
    MaxBudget,
    /// vnx stopped the run: total timeout or inactivity watchdog.
    Timeout,
    /// The process died (signal, or non-zero exit with no final event).
    Crashed,
    /// The user interrupted the run (Ctrl-C).
    Interrupted,
    /// The output could not be understood: no final event, garbage only, or a
    /// CLI that printed nothing and exited 0.
    Protocol,
}

impl OutcomeClass {
    /// Whether a new attempt may succeed where this one failed
    /// (rate limits, server errors, a crash before any output is decided by the caller).
    pub fn is_success(self) -> bool {
        matches!(self, OutcomeClass::Success)
    }
}

/// The lane a dispatch ran through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Lane {
    /// `claude -p --output-format stream-json` and equivalents, pipes only.
    Headless,
    /// The same CLI under a pseudo-terminal.
    Pty,
    /// An interactive session in an ephemeral tmux window.
    Tmux,
}

/// How the worker is billed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum Billing {
    /// The user's flat subscription (the CLI's own login). API keys are refused.
    #[default]
    Subscription,
    /// Explicit opt-in to per-token API billing (`--billing api`).
    Api,
}
