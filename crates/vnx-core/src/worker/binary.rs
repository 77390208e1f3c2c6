//! Finding a provider's binary and probing its `--version`, once per process.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use vnx_agents::{Provider, ProviderKind, VersionCheck, check_version};
use vnx_exec::{CancelToken, ChildEnv, Flow, HeadlessLane, Invocation, LineRef, RunOptions};

use super::WorkerError;
use super::env::EnvSource;

/// How to get a provider's CLI, for the "binary not found" error.
pub(crate) fn install_hint(provider: &Provider) -> String {
    let name = &provider.name;
    match provider.kind {
        ProviderKind::Claude => format!(
            "install Claude Code with `npm install -g @anthropic-ai/claude-code`, or set `binary` in [providers.{name}] of vnx.toml"
        ),
        ProviderKind::Codex => format!(
            "install the Codex CLI with `npm install -g @openai/codex`, or set `binary` in [providers.{name}] of vnx.toml"
        ),
        ProviderKind::Gemini => format!(
            "install the Gemini CLI with `npm install -g @google/gemini-cli` (needs node >= 20), or set `binary` in [providers.{name}] of vnx.toml"
        ),
        ProviderKind::Command => format!(
            "install the command or fix `binary` / `argv[0]` in [providers.{name}] of vnx.toml"
        ),
    }
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The first executable `program` in the directories of `path_var` (a
/// `PATH` value).
pub(crate) fn find_on_path(program: &str, path_var: &str) -> Option<PathBuf> {
    path_var
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|dir| Path::new(dir).join(program))
        .find(|candidate| is_executable(candidate))
}

/// Resolves the provider's program to an absolute (or as-given relative)
/// path: a program containing `/` is used as is (relative to `cwd` when
/// relative); a bare name is looked up in the `PATH` of `env`.
///
/// # Errors
/// [`WorkerError::BinaryNotFound`] naming the provider, where vnx looked and
/// how to install it.
pub(crate) fn resolve(
    provider: &Provider,
    env: &EnvSource,
    cwd: &Path,
) -> Result<PathBuf, WorkerError> {
    let program = provider.program();
    let not_found = |looked: String| WorkerError::BinaryNotFound {
        provider: provider.name.clone(),
        program: program.clone(),
        looked,
        hint: install_hint(provider),
    };
    if program.is_empty() {
        return Err(not_found("nowhere: the program name is empty".to_owned()));
    }
    if program.contains('/') {
        let path = if Path::new(&program).is_absolute() {
            PathBuf::from(&program)
        } else {
            cwd.join(&program)
        };
        return if is_executable(&path) {
            Ok(path)
        } else {
            Err(not_found(path.display().to_string()))
        };
    }
    let path_var = env.get("PATH").unwrap_or_default();
    if let Some(found) = find_on_path(&program, &path_var) {
        return Ok(found);
    }
    let dirs: Vec<&str> = path_var.split(':').filter(|d| !d.is_empty()).collect();
    Err(not_found(if dirs.is_empty() {
        "PATH, which is empty".to_owned()
    } else {
        format!("PATH = {}", dirs.join(":"))
    }))
}

/// What `--version` said, cached per binary path for the life of the process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VersionProbe {
    /// First non-empty line of the output, e.g. `2.1.330 (Claude Code)`.
    pub(crate) text: Option<String>,
    /// Comparison with the tested range.
    pub(crate) check: VersionCheck,
    /// Why the probe failed, if it did.
    pub(crate) error: Option<String>,
}

impl VersionProbe {
    /// The warning to record, if any.
    pub(crate) fn warning(&self, kind: ProviderKind) -> Option<String> {
        if let Some(err) = &self.error {
            return Some(format!("{}: `--version` failed: {err}", kind.name()));
        }
        self.check.warning(kind)
    }
}

fn cache() -> &'static Mutex<HashMap<PathBuf, VersionProbe>> {
    static CACHE: OnceLock<Mutex<HashMap<PathBuf, VersionProbe>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Runs `binary --version` once per process (through the headless lane, with
/// the worker's environment) and compares it with the tested range. `command`
/// providers are not probed.
pub(crate) async fn probe(
    kind: ProviderKind,
    binary: &Path,
    env: &ChildEnv,
    scratch: &Path,
) -> VersionProbe {
    if kind == ProviderKind::Command {
        return VersionProbe {
            text: None,
            check: VersionCheck::Untested,
            error: None,
        };
    }
    if let Some(hit) = cache()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(binary)
    {
        return hit.clone();
    }
    let probe = run_probe(kind, binary, env, scratch).await;
    cache()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(binary.to_path_buf(), probe.clone());
    probe
}

async fn run_probe(
    kind: ProviderKind,
    binary: &Path,
    env: &ChildEnv,
    scratch: &Path,
) -> VersionProbe {
    let mut inv = Invocation::new(binary, ["--version"]);
    inv.env = env.clone();
    let log = scratch.join("version.txt");
    let mut opts = RunOptions::new(&log);
    opts.total_timeout = Some(Duration::from_secs(30));
    opts.finish_grace = Duration::from_millis(500);
    opts.term_grace = Duration::from_millis(500);
    opts.drain_timeout = Duration::from_millis(500);
    opts.max_line_bytes = 4096;
    let mut first: Option<String> = None;
    let mut observer = |line: LineRef<'_>| {
        if let LineRef::Line(bytes) = line {
            let text = String::from_utf8_lossy(bytes).trim().to_owned();
            if first.is_none() && !text.is_empty() {
                first = Some(text);
            }
        }
        Flow::Continue
    };
    let result = HeadlessLane
        .run(&inv, &opts, &mut observer, &CancelToken::new())
        .await;
    let _ = std::fs::remove_file(&log);
    match result {
        Ok(report) if report.exit.code() == Some(0) => VersionProbe {
            check: check_version(kind, first.as_deref().unwrap_or("")),
            text: first,
            error: None,
        },
        Ok(report) => VersionProbe {
            check: VersionCheck::Unparseable,
            text: first,
            error: Some(format!(
                "it ended with {:?}: {}",
                report.exit,
                vnx_agents::redact(String::from_utf8_lossy(&report.stderr_tail).trim())
            )),
        },
        Err(e) => VersionProbe {
            text: None,
            check: VersionCheck::Unparseable,
            error: Some(e.to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vnx_agents::ProviderConfig;

    #[test]
    fn missing_binary_names_provider_place_and_fix() {
        let provider = Provider::builtin(ProviderKind::Claude);
        let env = EnvSource::Fixed(vec![(
            "PATH".into(),
            "/nonexistent-a:/nonexistent-b".into(),
        )]);
        let err = resolve(&provider, &env, Path::new("/")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("provider `claude`"), "{msg}");
        assert!(msg.contains("/nonexistent-a:/nonexistent-b"), "{msg}");
        assert!(
            msg.contains("npm install -g @anthropic-ai/claude-code"),
            "{msg}"
        );
        assert!(msg.contains("vnx doctor"), "{msg}");

        let config = ProviderConfig {
            binary: Some("/no/such/codex".into()),
            ..ProviderConfig::default()
        };
        let provider = Provider::from_config("codex", config).unwrap();
        let msg = resolve(&provider, &env, Path::new("/"))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("/no/such/codex") && msg.contains("@openai/codex"),
            "{msg}"
        );
    }

    #[test]
    fn finds_a_name_on_path() {
        let provider = Provider::from_config(
            "sh",
            ProviderConfig {
                kind: Some(ProviderKind::Command),
                argv: vec!["sh".into()],
                ..ProviderConfig::default()
            },
        )
        .unwrap();
        let env = EnvSource::Fixed(vec![("PATH".into(), "/nonexistent:/bin:/usr/bin".into())]);
        let path = resolve(&provider, &env, Path::new("/")).unwrap();
        assert!(path.ends_with("sh") && path.is_absolute(), "{path:?}");
    }
}
