//! Locating the pinned real agent CLIs and building the offline environment each needs.
//!
//! Pins (see `tests/agent-clis/package.json`): `@anthropic-ai/claude-code` 2.1.330,
//! `@openai/codex` 0.169.0, `@google/gemini-cli` 0.61.0.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::server::MockServer;

/// Environment variable naming a directory that holds the CLIs' `node_modules`
/// (default: `<workspace>/tests/agent-clis`).
pub const AGENT_CLIS_DIR_ENV: &str = "VNX_AGENT_CLIS_DIR";

/// Fake credential handed to every CLI; the mock accepts anything.
pub const MOCK_TOKEN: &str = "vnx-mock-token";

/// Paths of the three real agent CLI binaries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentClis {
    /// Directory holding `node_modules` (`tests/agent-clis` or `$VNX_AGENT_CLIS_DIR`).
    pub dir: PathBuf,
    /// Claude Code's native binary (`@anthropic-ai/claude-code-linux-x64/claude`), or
    /// `node_modules/.bin/claude` when that is missing.
    pub claude: PathBuf,
    /// Codex's native binary inside `@openai/codex-linux-x64`, or the JS shim
    /// `node_modules/.bin/codex` (which spawns it: kill the process group).
    pub codex: PathBuf,
    /// Gemini CLI's `node_modules/.bin/gemini` (a node script; it may re-launch node as a
    /// child: kill the process group).
    pub gemini: PathBuf,
}

/// Errors locating the CLIs.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A binary is missing under the CLIs' directory.
    #[error(
        "agent CLI not installed: {missing} does not exist; run tests/agent-clis/install.sh \
         (or set {AGENT_CLIS_DIR_ENV} to a directory with the CLIs' node_modules)"
    )]
    NotInstalled {
        /// The first path that was looked for and not found.
        missing: PathBuf,
    },
    /// A config file for a CLI's home could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file being written.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
}

/// The workspace root, derived from this crate's `CARGO_MANIFEST_DIR` (`<root>/crates/vnx-testkit`).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .nth(2)
        .unwrap_or(manifest)
        .to_path_buf()
}

/// Locates the installed CLIs under `$VNX_AGENT_CLIS_DIR` or `<workspace>/tests/agent-clis`.
///
/// # Errors
/// [`CliError::NotInstalled`] naming the first missing binary.
pub fn agent_clis() -> Result<AgentClis, CliError> {
    let dir = std::env::var_os(AGENT_CLIS_DIR_ENV)
        .map_or_else(|| workspace_root().join("tests/agent-clis"), PathBuf::from);
    agent_clis_in(&dir)
}

/// Locates the installed CLIs under `dir/node_modules`.
///
/// # Errors
/// [`CliError::NotInstalled`] naming the first missing binary.
pub fn agent_clis_in(dir: &Path) -> Result<AgentClis, CliError> {
    let nm = dir.join("node_modules");
    let pick = |preferred: PathBuf, fallback: PathBuf| {
        if preferred.is_file() {
            Ok(preferred)
        } else if fallback.is_file() {
            Ok(fallback)
        } else {
            Err(CliError::NotInstalled { missing: preferred })
        }
    };
    Ok(AgentClis {
        dir: dir.to_path_buf(),
        claude: pick(
            nm.join("@anthropic-ai/claude-code-linux-x64/claude"),
            nm.join(".bin/claude"),
        )?,
        codex: pick(
            nm.join("@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex"),
            nm.join(".bin/codex"),
        )?,
        gemini: pick(
            nm.join(".bin/gemini"),
            nm.join("@google/gemini-cli/bundle/gemini.js"),
        )?,
    })
}

/// The minimal environment every CLI gets, meant for `Command::env_clear()`:
/// `HOME`, `PATH` (inherited), `LANG=C.UTF-8`, `TERM=dumb`, `NO_COLOR=1`.
///
/// Clearing the environment matters: variables such as `CLAUDECODE`,
/// `CLAUDE_CODE_SESSION_ID`, `CLAUDE_CODE_ENTRYPOINT` or real API keys must not leak from
/// the test's own environment into the CLI under test.
pub fn base_env(home: &Path) -> Vec<(String, String)> {
    vec![
        ("HOME".into(), home.display().to_string()),
        (
            "PATH".into(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
        ),
        ("LANG".into(), "C.UTF-8".into()),
        ("TERM".into(), "dumb".into()),
        ("NO_COLOR".into(), "1".into()),
    ]
}

fn write(path: &Path, text: &str) -> Result<(), CliError> {
    let err = |source| CliError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(err)?;
    }
    std::fs::write(path, text).map_err(err)
}

/// Writes `home/.claude.json` so interactive Claude Code 2.1.330 skips onboarding and the
/// trust dialog for each of `trusted_dirs` (use canonical paths: Claude keys projects by
/// its resolved cwd). Not needed for `-p` runs.
///
/// # Errors
/// [`CliError::Write`] when the file cannot be written.
pub fn write_claude_home(home: &Path, trusted_dirs: &[&Path]) -> Result<(), CliError> {
    let projects: serde_json::Map<String, serde_json::Value> = trusted_dirs
        .iter()
        .map(|d| {
            (
                d.display().to_string(),
                json!({"hasTrustDialogAccepted": true, "hasCompletedProjectOnboarding": true,
                       "allowedTools": []}),
            )
        })
        .collect();
    let config = json!({
        "hasCompletedOnboarding": true,
        "lastOnboardingVersion": "2.1.330",
        "numStartups": 1,
        "projects": projects,
    });
    write(&home.join(".claude.json"), &config.to_string())
}

/// Writes `home/.gemini/settings.json` selecting API-key auth (Gemini CLI 0.61.0).
///
/// # Errors
/// [`CliError::Write`] when the file cannot be written.
pub fn write_gemini_home(home: &Path) -> Result<(), CliError> {
    let settings = json!({"security": {"auth": {"selectedType": "gemini-api-key"}}});
    write(&home.join(".gemini/settings.json"), &settings.to_string())
}

impl MockServer {
    /// Environment for Claude Code 2.1.330 against this server (for `env_clear()`): [`base_env`]
    /// plus `ANTHROPIC_BASE_URL`, `CLAUDE_CODE_OAUTH_TOKEN` (so `apiKeySource` is `"none"`),
    /// `CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1`, `DISABLE_AUTOUPDATER=1`.
    pub fn claude_env(&self, home: &Path) -> Vec<(String, String)> {
        let mut env = base_env(home);
        env.extend([
            ("ANTHROPIC_BASE_URL".into(), self.base_url()),
            ("CLAUDE_CODE_OAUTH_TOKEN".into(), MOCK_TOKEN.into()),
            (
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC".into(),
                "1".into(),
            ),
            ("DISABLE_AUTOUPDATER".into(), "1".into()),
        ]);
        env
    }

    /// Environment for Codex 0.169.0 (for `env_clear()`): [`base_env`] plus `MOCK_API_KEY`
    /// (the provider's `env_key`). Codex creates `$HOME/.codex` itself.
    pub fn codex_env(&self, home: &Path) -> Vec<(String, String)> {
        let mut env = base_env(home);
        env.extend([("MOCK_API_KEY".into(), MOCK_TOKEN.into())]);
        env
    }

    /// `-c` arguments pointing Codex 0.169.0 at this server: a `mock` provider with
    /// `wire_api = "responses"` and no request/stream retries (so error scenarios end fast).
    /// Put them after `exec`, before the prompt.
    pub fn codex_args(&self) -> Vec<String> {
        let provider = format!(
            "model_providers.mock={{name=\"mock\",base_url=\"{}/v1\",env_key=\"MOCK_API_KEY\",\
             wire_api=\"responses\",request_max_retries=0,stream_max_retries=0}}",
            self.base_url()
        );
        vec![
            "-c".into(),
            "model_provider=mock".into(),
            "-c".into(),
            provider,
        ]
    }

    /// Environment for Gemini CLI 0.61.0 (for `env_clear()`): [`base_env`] plus
    /// `GOOGLE_GEMINI_BASE_URL`, `GEMINI_API_KEY`, and `TMPDIR=<home>` (on an API error it
    /// writes a `gemini-client-error-*.json` report into the temp dir). Also call
    /// [`write_gemini_home`].
    pub fn gemini_env(&self, home: &Path) -> Vec<(String, String)> {
        let mut env = base_env(home);
        env.extend([
            ("GOOGLE_GEMINI_BASE_URL".into(), self.base_url()),
            ("GEMINI_API_KEY".into(), MOCK_TOKEN.into()),
            ("TMPDIR".into(), home.display().to_string()),
        ]);
        env
    }
}
