//! The provider-neutral description of one worker run.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use vnx_types::{Billing, Lane};

/// What a worker may do to the files and the machine, mapped to each CLI's own
/// permission flag by [`crate::build_invocation`].
///
/// | profile | claude `--permission-mode` | codex `-s` | gemini `--approval-mode` |
/// |---|---|---|---|
/// | `read_only` | `default` (+ read tools allowed, edit tools disallowed) | `read-only` | `default` |
/// | `edit` | `acceptEdits` | `workspace-write` | `auto_edit` |
/// | `full` | `bypassPermissions` | `danger-full-access` | `yolo` |
///
/// Why `default` and not `plan` for claude `read_only`: in `-p` mode nobody can
/// answer a permission prompt, so `default` denies every tool that would ask
/// (edits, unlisted Bash) while read tools run; `plan` instead steers the model
/// into writing a plan and calling `ExitPlanMode`, which is wrong for review
/// and research skills that must answer. Gemini `default` behaves the same way
/// headless (tools needing approval are not offered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PermissionProfile {
    /// Read files and run read-only tools; never write.
    ReadOnly,
    /// Edit files in the working directory without asking.
    #[default]
    Edit,
    /// Everything, including arbitrary commands, without asking. Claude refuses
    /// `bypassPermissions` as root unless `IS_SANDBOX=1` is set.
    Full,
}

/// One worker run, independent of the CLI that will execute it.
///
/// Built by the pipeline, turned into an [`crate::Invocation`] by
/// [`crate::build_invocation`]. Fields a CLI has no flag for are reported in
/// [`crate::Invocation::warnings`] rather than silently dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatchRequest {
    /// The full instruction. Always delivered on stdin (or through the tmux
    /// lane), never in argv, so its size is not bounded by `ARG_MAX`.
    pub prompt: String,
    /// Path of a file that holds `prompt`, written by the caller; only needed by
    /// `command` providers whose argv template uses `{prompt_file}`.
    pub prompt_file: Option<PathBuf>,
    /// Model to request; `None` uses the provider's `default_model`, then the CLI's own default.
    pub model: Option<String>,
    /// Working directory of the worker (the dispatch worktree).
    pub cwd: PathBuf,
    /// Maximum agent turns (claude `--max-turns`).
    pub max_turns: Option<u32>,
    /// Spending cap in micro-USD (claude `--max-budget-usd`, printed as decimal USD).
    pub budget_usd_micros: Option<u64>,
    /// Tools the worker may use without asking, in claude's syntax
    /// (e.g. `Read`, `Bash(git diff:*)`).
    pub allowed_tools: Vec<String>,
    /// What the worker may do.
    pub permission: PermissionProfile,
    /// Resume this existing session (claude `--resume`, codex `exec resume`, gemini `-r`).
    pub resume_session_id: Option<String>,
    /// Start a new session with this id, a UUID chosen by vnx (claude and gemini
    /// `--session-id`; required for the claude tmux lane, whose transcript file is
    /// named after it).
    pub session_id: Option<String>,
    /// Billing mode; in [`Billing::Subscription`] API keys are refused.
    pub billing: Billing,
    /// Extra arguments appended after the provider's own and the config's `extra_args`.
    pub extra_args: Vec<String>,
    /// JSON Schema (JSON text) for structured output (claude `--json-schema`).
    pub json_schema: Option<String>,
    /// The same schema written to a file by the caller (codex `--output-schema <FILE>`).
    pub json_schema_file: Option<PathBuf>,
    /// Settings for claude `--settings`: a JSON string or a path to a JSON file
    /// (used for hooks, e.g. the tmux lane's `Stop` hook).
    pub settings: Option<String>,
    /// Lane the worker runs in.
    pub lane: Lane,
    /// Names of vnx's environment variables the worker receives besides its
    /// allow-list (`[worker] pass_env` in `vnx.toml`; see
    /// [`crate::worker_env_allow_list`]).
    pub pass_env: Vec<String>,
}

impl DispatchRequest {
    /// A request with the given prompt and working directory and defaults
    /// elsewhere: headless lane, subscription billing, `edit` profile.
    pub fn new(prompt: impl Into<String>, cwd: impl Into<PathBuf>) -> Self {
        DispatchRequest {
            prompt: prompt.into(),
            cwd: cwd.into(),
            prompt_file: None,
            model: None,
            max_turns: None,
            budget_usd_micros: None,
            allowed_tools: Vec::new(),
            permission: PermissionProfile::default(),
            resume_session_id: None,
            session_id: None,
            billing: Billing::default(),
            extra_args: Vec::new(),
            json_schema: None,
            json_schema_file: None,
            settings: None,
            lane: Lane::Headless,
            pass_env: Vec::new(),
        }
    }
}
