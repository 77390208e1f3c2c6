//! Test support for vnx: the real agent CLIs, offline.
//!
//! vnx's integration tests run the real Claude Code, Codex and Gemini CLI binaries (pinned in
//! `tests/agent-clis/package.json`, installed by `tests/agent-clis/install.sh`) against
//! [`MockServer`], a small mock of the three model APIs on `127.0.0.1`. Only the model is
//! scripted ([`Script`], [`Reply`]); the binaries, their flags, their event streams and their
//! file edits are real.
//!
//! ```no_run
//! use vnx_testkit::{MockServer, Script, agent_clis};
//! let server = MockServer::start(Script::write_file("hello.txt", "Hello, world!\n"))?;
//! let clis = agent_clis()?;
//! let home = tempfile::tempdir()?;
//! let mut cmd = std::process::Command::new(&clis.claude);
//! cmd.env_clear().envs(server.claude_env(home.path()));
//! // ... run `claude -p`, then assert on the file and on `server.model_requests()`.
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Test support only: never a dependency of a shipped crate.

mod anthropic;
mod clis;
mod gemini;
mod openai;
mod script;
mod server;
mod sse;

pub use clis::{
    AGENT_CLIS_DIR_ENV, AgentClis, CliError, MOCK_TOKEN, agent_clis, agent_clis_in, base_env,
    workspace_root, write_claude_home, write_gemini_home,
};
pub use script::{Reply, Script};
pub use server::{Api, MockServer, RecordedRequest, ServerError};
