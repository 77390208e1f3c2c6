//! Running OpenSSH's helpers (`ssh-keygen`, `ssh-add`): argv arrays, never a
//! shell, and an environment built from only what they need.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use ssh_key::PublicKey;

use crate::error::SignError;

/// How much of stderr an error keeps, bytes.
const STDERR_TAIL_BYTES: usize = 1024;

/// The environment of an OpenSSH helper: `PATH` and `HOME` (to find the
/// program and `~/.ssh`), `SSH_AUTH_SOCK` (the agent; `agent` overrides the
/// inherited one), and `SSH_ASKPASS` / `DISPLAY` only when set, so a
/// passphrase prompt can use the user's askpass program. Nothing else: no
/// secrets of the parent reach the helper.
pub(crate) fn helper_env(agent: Option<&Path>) -> Vec<(&'static str, OsString)> {
    let mut env = Vec::new();
    for name in ["PATH", "HOME"] {
        if let Some(value) = std::env::var_os(name) {
            env.push((name, value));
        }
    }
    match agent {
        Some(socket) => env.push(("SSH_AUTH_SOCK", socket.as_os_str().to_owned())),
        None => {
            if let Some(value) = std::env::var_os("SSH_AUTH_SOCK") {
                env.push(("SSH_AUTH_SOCK", value));
            }
        }
    }
    for name in ["SSH_ASKPASS", "DISPLAY"] {
        if let Some(value) = std::env::var_os(name) {
            env.push((name, value));
        }
    }
    env
}

/// The output of a helper that ran to completion.
pub(crate) struct Ran {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub command: String,
}

impl Ran {
    /// The last bytes of stderr, lossy UTF-8, trimmed.
    pub fn stderr_tail(&self) -> String {
        let start = self.stderr.len().saturating_sub(STDERR_TAIL_BYTES);
        String::from_utf8_lossy(&self.stderr[start..])
            .trim()
            .to_owned()
    }
}

/// Runs `program args…` with `env` only, `input` on stdin (written from a
/// thread, so the child's output cannot block it; none: stdin is `/dev/null`).
pub(crate) fn run(
    program: &Path,
    args: &[OsString],
    env: &[(&'static str, OsString)],
    input: Option<&[u8]>,
) -> Result<Ran, SignError> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut command = program.display().to_string();
    for a in args {
        command.push(' ');
        command.push_str(&a.to_string_lossy());
    }
    let spawn_err = |source| SignError::Spawn {
        program: program.display().to_string(),
        source,
    };
    let mut child = cmd.spawn().map_err(spawn_err)?;
    let out = std::thread::scope(|scope| {
        if let (Some(mut stdin), Some(input)) = (child.stdin.take(), input) {
            // A write error means the child exited early; its status says why.
            scope.spawn(move || {
                let _ = stdin.write_all(input);
            });
        }
        child.wait_with_output()
    })
    .map_err(spawn_err)?;
    Ok(Ran {
        status: out.status,
        stdout: out.stdout,
        stderr: out.stderr,
        command,
    })
}

/// What the agent says about a key.
pub(crate) enum AgentHas {
    /// The agent holds the key.
    Yes,
    /// The agent answered and does not hold it.
    No,
    /// No agent could be reached; the reason for the user.
    Unreachable(String),
}

/// Asks the agent (`ssh-add -L`) whether it holds `key`.
pub(crate) fn agent_has(key: &PublicKey, agent: Option<&Path>) -> Result<AgentHas, SignError> {
    let env = helper_env(agent);
    if !env.iter().any(|(k, _)| *k == "SSH_AUTH_SOCK") {
        return Ok(AgentHas::Unreachable(
            "SSH_AUTH_SOCK is not set, so there is no ssh-agent to ask".to_owned(),
        ));
    }
    let ran = run(
        &PathBuf::from("ssh-add"),
        &[OsString::from("-L")],
        &env,
        None,
    )?;
    match ran.status.code() {
        Some(0) => {
            let listed = String::from_utf8_lossy(&ran.stdout);
            let holds = listed
                .lines()
                .filter_map(|line| crate::key::parse_public_text(line).ok())
                .any(|k| k.key_data() == key.key_data());
            Ok(if holds { AgentHas::Yes } else { AgentHas::No })
        }
        // ssh-add exits 1 for "The agent has no identities."
        Some(1) => Ok(AgentHas::No),
        _ => Ok(AgentHas::Unreachable(format!(
            "ssh-agent could not be reached ({})",
            ran.stderr_tail()
        ))),
    }
}
