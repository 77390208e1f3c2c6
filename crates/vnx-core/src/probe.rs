//! Read-only checks behind `vnx doctor`: where each provider's CLI is, its
//! version against the tested range, whether it is logged in, and the tools
//! vnx needs (git, tmux). Nothing here spends tokens: the login check is the
//! CLI's own local status command.
//!
//! Every program runs through `vnx-exec`'s headless lane, with the provider's
//! configured environment and the auth guard's removals applied — the same
//! environment a dispatch would give it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use vnx_agents::{
    Provider, ProviderKind, VersionCheck, api_billing_vars, env_to_remove, login_override_vars,
    worker_env_allow_list,
};
use vnx_exec::{
    CancelToken, ChildEnv, EnvBase, Flow, HeadlessLane, Invocation, LineRef, RunOptions,
};
use vnx_types::Billing;

use crate::worker::EnvSource;
use crate::worker::binary;

/// What the doctor learned about one provider.
#[derive(Debug, Clone)]
pub struct ProviderProbe {
    /// Provider name.
    pub provider: String,
    /// Its adapter.
    pub kind: ProviderKind,
    /// The binary, or why it was not found (names where vnx looked and how to install it).
    pub binary: Result<PathBuf, String>,
    /// First line of `--version`.
    pub version: Option<String>,
    /// The version against the tested range (`None` when not probed).
    pub version_check: Option<VersionCheck>,
    /// Why `--version` failed, if it did.
    pub version_error: Option<String>,
}

/// Finds a provider's binary and probes its `--version`.
pub async fn probe_provider(
    provider: &Provider,
    env: &EnvSource,
    cwd: &Path,
    scratch: &Path,
) -> ProviderProbe {
    let mut probe = ProviderProbe {
        provider: provider.name.clone(),
        kind: provider.kind,
        binary: Err(String::new()),
        version: None,
        version_check: None,
        version_error: None,
    };
    match binary::resolve(provider, env, cwd) {
        Err(e) => probe.binary = Err(e.to_string()),
        Ok(path) => {
            let child = provider_env(provider, env);
            let version = binary::probe(provider.kind, &path, &child, scratch).await;
            probe.version = version.text;
            probe.version_check = Some(version.check);
            probe.version_error = version.error;
            probe.binary = Ok(path);
        }
    }
    probe
}

/// The environment a subscription-mode dispatch would give the provider: the
/// source's variables on its allow-list ([`worker_env_allow_list`]; the
/// probes need no `[worker] pass_env`) minus the auth guard's removals, plus
/// the provider's `env` table.
fn provider_env(provider: &Provider, env: &EnvSource) -> ChildEnv {
    worker_env(provider, Billing::Subscription, &[], env)
}

/// A `provider` worker's environment under `billing` with `pass_env`, as
/// `vnx-core`'s worker builds it.
fn worker_env(
    provider: &Provider,
    billing: Billing,
    pass_env: &[String],
    env: &EnvSource,
) -> ChildEnv {
    let allow = worker_env_allow_list(provider.kind, pass_env);
    let remove = env_to_remove(provider.kind, billing);
    let mut child = ChildEnv {
        remove,
        ..ChildEnv::allow_list(allow.names, allow.prefixes)
    };
    if let EnvSource::Fixed(vars) = env {
        child.set = vars
            .iter()
            .filter(|(k, _)| child.inherits(std::ffi::OsStr::new(k)))
            .cloned()
            .collect();
        child.base = EnvBase::Empty;
    }
    // As in a dispatch, a billing variable in the provider's own `env` table is left out.
    let table: Vec<(String, String)> = provider
        .config
        .env
        .iter()
        .filter(|(k, _)| !child.remove.contains(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    child.set.extend(table);
    child
}

/// The names of the variables set in `env` that a `provider` worker would
/// not receive under `billing` with `[worker] pass_env` = `pass_env`: not on
/// its allow-list, or removed by the auth guard. Sorted names, never values;
/// `vnx doctor` lists them.
pub fn withheld_variables(
    provider: &Provider,
    billing: Billing,
    pass_env: &[String],
    env: &EnvSource,
) -> Vec<String> {
    let child = worker_env(provider, billing, pass_env, &EnvSource::Inherit);
    child.withheld(
        env.vars()
            .into_iter()
            .map(|(k, v)| (std::ffi::OsString::from(k), std::ffi::OsString::from(v))),
    )
}

/// The API-billing variables of one built-in CLI that are set in the
/// environment (names only, never values), and what a subscription-mode
/// dispatch does with them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingVars {
    /// The CLI they belong to.
    pub kind: ProviderKind,
    /// Set variables that override the CLI's login: a subscription-mode
    /// dispatch of `kind` refuses to start.
    pub refused: Vec<&'static str>,
    /// Set variables removed from the worker's environment instead (in
    /// subscription mode from every worker, `kind`'s own included).
    pub removed: Vec<&'static str>,
}

/// The billing variables of claude, codex and gemini that are set (non-empty)
/// in `env`; CLIs with none set are left out.
pub fn billing_variables(env: &EnvSource) -> Vec<BillingVars> {
    let is_set = |name: &str| match env {
        EnvSource::Inherit => std::env::var_os(name).is_some_and(|v| !v.is_empty()),
        EnvSource::Fixed(_) => env.get(name).is_some_and(|v| !v.is_empty()),
    };
    [
        ProviderKind::Claude,
        ProviderKind::Codex,
        ProviderKind::Gemini,
    ]
    .into_iter()
    .filter_map(|kind| {
        let (refused, removed): (Vec<&'static str>, Vec<&'static str>) = api_billing_vars(kind)
            .iter()
            .copied()
            .filter(|v| is_set(v))
            .partition(|v| login_override_vars(kind).contains(v));
        (!refused.is_empty() || !removed.is_empty()).then_some(BillingVars {
            kind,
            refused,
            removed,
        })
    })
    .collect()
}

/// The output of a short command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    /// Exit code; `None` when it was killed or timed out.
    pub code: Option<i32>,
    /// Its stdout, at most 64 KiB.
    pub stdout: String,
}

/// Looks `program` up in the `PATH` of `env`.
pub fn find_program(program: &str, env: &EnvSource) -> Option<PathBuf> {
    binary::find_on_path(program, &env.get("PATH").unwrap_or_default())
}

/// Runs a short, local command (e.g. `claude auth status`, `tmux -V`) with a
/// provider's environment, or vnx's own when `provider` is `None`, through the
/// headless lane, and captures its stdout.
///
/// # Errors
/// The lane's error when the program cannot be started.
pub async fn capture(
    program: &Path,
    args: &[&str],
    provider: Option<&Provider>,
    env: &EnvSource,
    timeout: Duration,
    scratch: &Path,
) -> Result<Captured, vnx_exec::ExecError> {
    let mut inv = Invocation::new(program, args.iter().copied());
    inv.env = match provider {
        Some(p) => provider_env(p, env),
        None => match env {
            EnvSource::Inherit => ChildEnv::default(),
            EnvSource::Fixed(vars) => ChildEnv {
                base: EnvBase::Empty,
                set: vars.clone(),
                ..ChildEnv::default()
            },
        },
    };
    std::fs::create_dir_all(scratch).map_err(|e| vnx_exec::ExecError::EventLog {
        path: scratch.to_path_buf(),
        source: e,
    })?;
    let log = scratch.join(format!("capture-{}.log", std::process::id()));
    let mut options = RunOptions::new(&log);
    options.total_timeout = Some(timeout);
    options.max_line_bytes = 64 * 1024;
    let mut stdout = String::new();
    let mut observer = |line: LineRef<'_>| {
        if let LineRef::Line(bytes) = line
            && stdout.len() < 64 * 1024
        {
            stdout.push_str(&String::from_utf8_lossy(bytes));
            stdout.push('\n');
        }
        Flow::Continue
    };
    let report = HeadlessLane
        .run(&inv, &options, &mut observer, &CancelToken::new())
        .await;
    let _ = std::fs::remove_file(&log);
    let report = report?;
    Ok(Captured {
        code: report.exit.code(),
        stdout,
    })
}
