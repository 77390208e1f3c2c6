//! `vnx.toml`: the repository's vnx configuration, typed, with defaults for
//! every key so that no file at all is a valid configuration.
//!
//! The file lives at the repository root and is found by walking up from a
//! directory ([`Config::load`]). Unknown keys are errors that name the file,
//! the line and the key. [`default_toml`] is the commented file `vnx init`
//! writes; it parses back to [`Config::default`].

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use vnx_agents::ProvidersConfig;
use vnx_types::{Billing, Lane};

use crate::units::{duration_str, usd_opt};

/// File name of the configuration at the repository root.
pub const CONFIG_FILE: &str = "vnx.toml";

/// Largest `vnx.toml` read, bytes. A configuration is a few KiB; anything this
/// big is a mistake, and refusing it keeps a stray file from eating memory.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// Whether a governance failure fails the dispatch or is only recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateMode {
    /// Record a missing or invalid worker report without failing the dispatch
    /// (the default until a skill opts in to `enforce`).
    #[default]
    Shadow,
    /// Fail the dispatch on a missing or invalid worker report.
    Enforce,
}

impl GateMode {
    /// The mode's name as written in `vnx.toml`: `shadow` or `enforce`.
    pub fn as_str(self) -> &'static str {
        match self {
            GateMode::Shadow => "shadow",
            GateMode::Enforce => "enforce",
        }
    }
}

/// The whole `vnx.toml`. Every section and key is optional.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `[run]`: defaults of `vnx run`.
    pub run: RunConfig,
    /// `[providers.<name>]`: per-provider settings (see [`vnx_agents::ProviderConfig`]).
    pub providers: ProvidersConfig,
    /// `[gates]`: deterministic gate settings and command gates.
    pub gates: GatesConfig,
    /// `[retry]`: retries of failed worker attempts.
    pub retry: RetryConfig,
    /// `[ledger]`: where receipts go.
    pub ledger: LedgerConfig,
    /// `[batch]`: how many dispatches of a `vnx batch` run at once.
    pub batch: BatchConfig,
    /// `[merge_gate]`: what `vnx gate --base` requires. Read by the gate from
    /// the *base* revision's `vnx.toml`, never from the change being checked.
    pub merge_gate: MergeGateConfig,
    /// `[worker]`: what a worker receives from vnx's environment, and how
    /// its process is confined.
    pub worker: WorkerConfig,
}

/// `[merge_gate]`: the policy of `vnx gate --base B`, taken from `vnx.toml`
/// at `B` so that a change cannot loosen the rules it is judged by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MergeGateConfig {
    /// Require every commit in the range to be covered by a passed, signed
    /// receipt, signed by an allowed signer, or a clean merge of such
    /// commits. Default true; false only checks the ledger (and the gate says
    /// so in its output).
    pub coverage: bool,
    /// Principals (as written in `ledger/allowed_signers`, `*`/`?` patterns
    /// allowed) whose approvals count. Empty: any key that
    /// `allowed_signers` allows for the `vnx-approval` namespace.
    pub approvers: Vec<String>,
}

impl Default for MergeGateConfig {
    fn default() -> Self {
        MergeGateConfig {
            coverage: true,
            approvers: Vec::new(),
        }
    }
}

/// `[worker]`: the worker's environment and confinement. A worker inherits only an
/// allow-list of vnx's variables (`vnx_agents::worker_env_allow_list`: PATH,
/// HOME, locale, proxies, CA certificates, toolchain locations and its own
/// CLI's variables); anything else it needs is named here.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerConfig {
    /// Names of more variables of vnx's environment to pass to every worker
    /// (and to the cross-model reviewer), e.g. `["AWS_PROFILE", "MY_VAR"]`.
    /// The billing guard still applies: in subscription mode an API key named
    /// here is removed (or refuses the dispatch) all the same. Default: none.
    pub pass_env: Vec<String>,
    /// Run the worker in a sandbox (Linux, bubblewrap) where only its
    /// worktree, the run directory, temp and the agent CLIs' own state
    /// directories are writable (`vnx run --sandbox`). Default false.
    pub sandbox: bool,
}

/// `[batch]`: concurrency caps of `vnx batch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatchConfig {
    /// Dispatches running at once, all providers together (`--max-parallel`
    /// overrides it). Default 4.
    pub max_parallel: usize,
    /// `[batch.provider_caps]`: dispatches running at once per provider name,
    /// e.g. `claude = 2`, to stay inside a subscription's rate limits. A
    /// provider not listed is bounded by `max_parallel` only.
    pub provider_caps: std::collections::BTreeMap<String, usize>,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_parallel: 4,
            provider_caps: std::collections::BTreeMap::new(),
        }
    }
}

/// `[run]`: defaults for every dispatch, overridable by flags ([`Overrides`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    /// Provider name: `claude`, `codex`, `gemini` or a `[providers.<name>]` table. Default `claude`.
    pub provider: String,
    /// Model to request; `None` uses the provider's `default_model`, then the CLI's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Lane the worker runs in. Default headless.
    pub lane: Lane,
    /// Wall-time limit of one dispatch's worker. TOML: a string such as `"30m"`. Default 30 minutes.
    #[serde(with = "duration_str")]
    pub timeout: Duration,
    /// Maximum agent turns (claude `--max-turns`); `None` leaves the CLI's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_turns: Option<u32>,
    /// Spending cap per dispatch in micro-USD. TOML key `max_budget_usd`, a
    /// decimal string such as `"2.50"`. `None`: no cap.
    #[serde(
        rename = "max_budget_usd",
        with = "usd_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_budget_usd_micros: Option<u64>,
    /// Default gate mode for skills that set none. Default `shadow`.
    pub gate_mode: GateMode,
    /// Whether the cross-model review runs after the deterministic gates pass. Default true.
    pub cross_review: bool,
    /// Billing mode. Default `subscription` (API keys are refused).
    pub billing: Billing,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            provider: "claude".to_owned(),
            model: None,
            lane: Lane::Headless,
            timeout: Duration::from_mins(30),
            max_turns: None,
            max_budget_usd_micros: None,
            gate_mode: GateMode::Shadow,
            cross_review: true,
            billing: Billing::Subscription,
        }
    }
}

/// `[gates]`: limits for the deterministic gates and the command gates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatesConfig {
    /// Largest diff (lines added plus removed) the `diff-size` gate lets
    /// through; 0 disables the gate. Default 2000.
    pub diff_limit_lines: u64,
    /// Globs, relative to the repository root, of paths a worker must not
    /// touch (`forbidden-paths` gate; also listed in the instruction).
    /// Default: the ledger, vnx's own directory and this file.
    pub forbidden_paths: Vec<String>,
    /// `[[gates.command]]`: commands run in the worktree after the worker.
    #[serde(rename = "command", skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<CommandGate>,
}

impl Default for GatesConfig {
    fn default() -> Self {
        GatesConfig {
            diff_limit_lines: 2000,
            forbidden_paths: default_forbidden_paths(),
            commands: Vec::new(),
        }
    }
}

/// The default `forbidden_paths`: the ledger (a worker must not forge
/// receipts), `.vnx/` (skills and notes shape later instructions) and the root
/// `vnx.toml` (the gates themselves).
///
/// Syntax (the `forbidden-paths` gate's, `vnx_govern::ForbiddenPaths`): the
/// lines of a `.gitignore` at the repository root — `*` within one path
/// component, `**/` and `/**` across components, a pattern containing `/`
/// anchored at the root (a leading `/` only anchors), one without matching
/// that name in any directory, a trailing `/` directories only, `!` exempting.
pub fn default_forbidden_paths() -> Vec<String> {
    ["ledger/**", ".vnx/**", "/vnx.toml"]
        .into_iter()
        .map(str::to_owned)
        .collect()
}

/// One `[[gates.command]]`: a command whose zero exit is the gate's pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandGate {
    /// Gate name, unique; recorded as `command:<name>`.
    pub name: String,
    /// Program and arguments, run in the worktree without a shell.
    pub argv: Vec<String>,
    /// Time limit. TOML: a string such as `"10m"`. Default 10 minutes.
    #[serde(with = "duration_str", default = "default_command_timeout")]
    pub timeout: Duration,
    /// Names of variables of vnx's environment passed to the command besides
    /// the base allow-list (`vnx_agents::base_env_allow_list`: PATH, HOME,
    /// locale, proxies, CA certificates, toolchain locations). Default: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pass_env: Vec<String>,
}

fn default_command_timeout() -> Duration {
    Duration::from_mins(10)
}

/// `[retry]`: how failed worker attempts (rate limits, server errors) are retried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryConfig {
    /// Retries after the first attempt. Default 2.
    pub max_retries: u32,
    /// Cap on one wait between attempts. TOML: a string such as `"60s"`. Default 60 s.
    #[serde(with = "duration_str")]
    pub max_wait: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_retries: 2,
            max_wait: Duration::from_mins(1),
        }
    }
}

/// `[ledger]`: where receipts are appended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LedgerConfig {
    /// Ledger directory; relative paths are relative to the repository root. Default `ledger`.
    pub dir: PathBuf,
    /// Whether `dir` may lie outside the repository. Default false: a ledger
    /// outside is not committed with the work, so `vnx gate` in CI never sees
    /// its receipts, and a typo such as `../ledger` would write elsewhere
    /// unnoticed. `--ledger DIR` on the command line is explicit and sets it.
    pub allow_outside_repo: bool,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        LedgerConfig {
            dir: PathBuf::from("ledger"),
            allow_outside_repo: false,
        }
    }
}

/// A loaded configuration and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedConfig {
    /// The configuration (defaults where the file said nothing).
    pub config: Config,
    /// The `vnx.toml` that was read; `None` when there is none (defaults only).
    pub path: Option<PathBuf>,
    /// Repository root: the directory of `vnx.toml`, else the git root, else
    /// the start directory. Absolute.
    pub root: PathBuf,
}

impl LoadedConfig {
    /// The ledger directory, resolved against [`LoadedConfig::root`], as
    /// written: not checked. Commands that read or write the ledger use
    /// [`LoadedConfig::checked_ledger_dir`].
    pub fn ledger_dir(&self) -> PathBuf {
        self.root.join(&self.config.ledger.dir)
    }

    /// The ledger directory, resolved against [`LoadedConfig::root`], once it
    /// is known to lie inside the repository: after `..` and any symbolic
    /// link in the part of the path that exists, it must still be under the
    /// root. `[ledger] allow_outside_repo = true` (or `--ledger`, through
    /// [`Config::apply_overrides`]) lets it be anywhere.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] for key `ledger.dir`, naming the directory,
    /// the repository and the setting that allows it.
    pub fn checked_ledger_dir(&self) -> Result<PathBuf, ConfigError> {
        let dir = self.ledger_dir();
        if self.config.ledger.allow_outside_repo || is_inside(&self.root, &dir) {
            return Ok(dir);
        }
        Err(ConfigError::Invalid {
            path: self.path.clone(),
            key: "ledger.dir".into(),
            message: format!(
                "\"{}\" is outside the repository {}: a ledger there is not committed with the work, \
                 so `vnx gate` never sees its receipts. Use a directory inside the repository, \
                 or set `allow_outside_repo = true` under [ledger] if this is intended \
                 (`--ledger DIR` on the command line is also accepted anywhere)",
                self.config.ledger.dir.display(),
                self.root.display()
            ),
        })
    }
}

/// Whether `path` (absolute) stays inside `root` (absolute, canonical): first
/// lexically, then with the links of its longest existing ancestor resolved.
fn is_inside(root: &Path, path: &Path) -> bool {
    use std::path::Component;
    let mut lexical = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !lexical.pop() {
                    return false;
                }
            }
            other => lexical.push(other),
        }
    }
    if !lexical.starts_with(root) {
        return false;
    }
    let Some(existing) = lexical.ancestors().find(|p| p.exists()) else {
        return false;
    };
    let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    std::fs::canonicalize(existing).is_ok_and(|real| real.starts_with(root))
}

/// Values given on the command line, each replacing its `[run]` (or
/// `[ledger]`) key when set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Overrides {
    /// `--provider`.
    pub provider: Option<String>,
    /// `--model`.
    pub model: Option<String>,
    /// `--lane`.
    pub lane: Option<Lane>,
    /// `--timeout` (parse with [`crate::parse_duration`]).
    pub timeout: Option<Duration>,
    /// `--max-turns`.
    pub max_turns: Option<u32>,
    /// `--max-budget-usd`, in micro-USD (parse with [`crate::parse_usd`]).
    pub max_budget_usd_micros: Option<u64>,
    /// `--gate-mode`.
    pub gate_mode: Option<GateMode>,
    /// `--no-cross-review` is `Some(false)`.
    pub cross_review: Option<bool>,
    /// `--billing`.
    pub billing: Option<Billing>,
    /// `--ledger`: replaces `[ledger] dir` (relative to the repository root
    /// unless absolute; the CLI should pass an absolute path) and allows it
    /// outside the repository.
    pub ledger_dir: Option<PathBuf>,
    /// `--sandbox` is `Some(true)`: replaces `[worker] sandbox`.
    pub sandbox: Option<bool>,
}

/// A configuration that cannot be found, read or used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Reading the file or its directory failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was attempted.
        action: &'static str,
        /// On which path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_CONFIG_BYTES`].
    #[error("{} holds more than the {MAX_CONFIG_BYTES} bytes a vnx.toml may have (vnx stopped reading at {size}); is it the right file?", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Bytes read before vnx stopped (the limit plus one).
        size: u64,
    },
    /// The TOML does not parse or does not fit the schema (unknown key, wrong type).
    #[error("{}", render_parse(path, *line, *column, key.as_deref(), table.as_deref(), message))]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column (in characters).
        column: usize,
        /// The key on that line, when there is one.
        key: Option<String>,
        /// The table the key is in, e.g. `run` or `gates.command`.
        table: Option<String>,
        /// What is wrong, from the TOML parser.
        message: String,
    },
    /// A value parses but cannot be used (e.g. an empty command gate).
    #[error("{}: {key}: {message}", path.as_deref().map_or_else(|| "configuration".to_owned(), |p| p.display().to_string()))]
    Invalid {
        /// The file, if the value came from one (`None` for flags).
        path: Option<PathBuf>,
        /// Dotted key, e.g. `gates.command[1].argv`.
        key: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// A provider table or the chosen provider is unusable.
    #[error("{}: {source}", path.as_deref().map_or_else(|| "configuration".to_owned(), |p| p.display().to_string()))]
    Provider {
        /// The file, if any.
        path: Option<PathBuf>,
        /// The provider error.
        source: vnx_agents::ConfigError,
    },
}

impl Config {
    /// Finds `vnx.toml` by walking up from `start_dir` and loads it; with no
    /// file, returns the defaults. The walk stops at the first directory that
    /// holds `vnx.toml`, or at the git root (a directory with `.git`), or at
    /// the filesystem root.
    ///
    /// # Errors
    /// [`ConfigError::Io`] when `start_dir` does not exist or the file cannot
    /// be read; [`ConfigError::Parse`] with file, line and key for bad TOML or
    /// unknown keys; [`ConfigError::Invalid`] and [`ConfigError::Provider`] for
    /// unusable values.
    pub fn load(start_dir: &Path) -> Result<LoadedConfig, ConfigError> {
        let start = std::fs::canonicalize(start_dir).map_err(|source| ConfigError::Io {
            action: "open directory",
            path: start_dir.to_path_buf(),
            source,
        })?;
        let (path, root) = find_config(&start);
        let Some(path) = path else {
            let config = Config::default();
            config.validate(None)?;
            return Ok(LoadedConfig {
                config,
                path: None,
                root,
            });
        };
        let config = Config::from_file(&path)?;
        Ok(LoadedConfig {
            config,
            path: Some(path),
            root,
        })
    }

    /// Reads and validates one `vnx.toml`.
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let io = |action| {
            move |source| ConfigError::Io {
                action,
                path: path.to_path_buf(),
                source,
            }
        };
        // Read at most one byte past the limit: a size from metadata says
        // nothing about a FIFO or a device such as /dev/zero.
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| {
                std::io::Read::read_to_end(
                    &mut std::io::Read::take(f, MAX_CONFIG_BYTES + 1),
                    &mut bytes,
                )
            })
            .map_err(io("read"))?;
        if bytes.len() as u64 > MAX_CONFIG_BYTES {
            return Err(ConfigError::TooLarge {
                path: path.to_path_buf(),
                size: bytes.len() as u64,
            });
        }
        let text = String::from_utf8(bytes).map_err(|e| ConfigError::Io {
            action: "read",
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })?;
        Config::from_toml_str(&text, Some(path))
    }

    /// Parses and validates `vnx.toml` text; `path` is only used in errors
    /// (`None` names it `vnx.toml`).
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn from_toml_str(text: &str, path: Option<&Path>) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| {
            parse_error(
                text,
                path.unwrap_or_else(|| Path::new(CONFIG_FILE)),
                e.span(),
                e.message(),
            )
        })?;
        config.validate(path)?;
        Ok(config)
    }

    /// Applies command-line values over the file's.
    ///
    /// # Errors
    /// [`ConfigError::Provider`] when the overridden provider is unknown, and
    /// the other checks of [`Config::load`] on the result.
    pub fn apply_overrides(&mut self, overrides: &Overrides) -> Result<(), ConfigError> {
        let run = &mut self.run;
        let o = overrides.clone();
        if let Some(v) = o.provider {
            run.provider = v;
        }
        if let Some(v) = o.model {
            run.model = Some(v);
        }
        if let Some(v) = o.lane {
            run.lane = v;
        }
        if let Some(v) = o.timeout {
            run.timeout = v;
        }
        if let Some(v) = o.max_turns {
            run.max_turns = Some(v);
        }
        if let Some(v) = o.max_budget_usd_micros {
            run.max_budget_usd_micros = Some(v);
        }
        if let Some(v) = o.gate_mode {
            run.gate_mode = v;
        }
        if let Some(v) = o.cross_review {
            run.cross_review = v;
        }
        if let Some(v) = o.billing {
            run.billing = v;
        }
        if let Some(v) = o.ledger_dir {
            self.ledger.dir = v;
            // Named on the command line: explicit, so it may be anywhere.
            self.ledger.allow_outside_repo = true;
        }
        if let Some(v) = o.sandbox {
            self.worker.sandbox = v;
        }
        self.validate(None)
    }

    /// `[gates] forbidden_paths`, plus the ledger directory when `[ledger] dir`
    /// moved it inside the repository to a place the list does not cover
    /// literally (`<dir>/**`), so that a worker can never edit receipts.
    pub fn effective_forbidden_paths(&self) -> Vec<String> {
        let mut globs = self.gates.forbidden_paths.clone();
        let dir = &self.ledger.dir;
        if dir.is_relative()
            && !dir
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            let rel = dir.to_string_lossy().trim_end_matches('/').to_owned();
            let glob = format!("{rel}/**");
            if !rel.is_empty() && rel != "." && !globs.contains(&glob) {
                globs.push(glob);
            }
        }
        globs
    }

    /// The provider `[run] provider` names, resolved through `[providers]`.
    ///
    /// # Errors
    /// [`ConfigError::Provider`] when it is unknown or its table is unusable.
    pub fn provider(&self) -> Result<vnx_agents::Provider, ConfigError> {
        self.providers
            .provider(&self.run.provider)
            .map_err(|source| ConfigError::Provider { path: None, source })
    }

    /// Checks what serde cannot: every provider table resolves, the chosen
    /// provider exists, command gates have unique names and a program, and
    /// forbidden paths are relative globs.
    fn validate(&self, path: Option<&Path>) -> Result<(), ConfigError> {
        let invalid = |key: String, message: String| ConfigError::Invalid {
            path: path.map(Path::to_path_buf),
            key,
            message,
        };
        for (name, table) in &self.providers.0 {
            vnx_agents::Provider::from_config(name, table.clone()).map_err(|source| {
                ConfigError::Provider {
                    path: path.map(Path::to_path_buf),
                    source,
                }
            })?;
        }
        self.providers
            .provider(&self.run.provider)
            .map_err(|source| ConfigError::Provider {
                path: path.map(Path::to_path_buf),
                source,
            })?;
        if self.run.provider.is_empty() {
            return Err(invalid("run.provider".into(), "must not be empty".into()));
        }
        if self.batch.max_parallel == 0 {
            return Err(invalid(
                "batch.max_parallel".into(),
                "must be at least 1".into(),
            ));
        }
        for (name, cap) in &self.batch.provider_caps {
            if *cap == 0 {
                return Err(invalid(
                    format!("batch.provider_caps.{name}"),
                    "must be at least 1 (remove the key to leave the provider uncapped)".into(),
                ));
            }
        }
        if self.run.timeout.is_zero() {
            return Err(invalid(
                "run.timeout".into(),
                "must be longer than 0s, e.g. \"30m\"".into(),
            ));
        }
        let env_names = self
            .worker
            .pass_env
            .iter()
            .enumerate()
            .map(|(i, n)| (format!("worker.pass_env[{i}]"), n))
            .chain(self.gates.commands.iter().enumerate().flat_map(|(g, c)| {
                c.pass_env
                    .iter()
                    .enumerate()
                    .map(move |(i, n)| (format!("gates.command[{g}].pass_env[{i}]"), n))
            }));
        for (key, name) in env_names {
            if name.is_empty() || name.contains('=') || name.contains('\0') {
                return Err(invalid(
                    key,
                    format!(
                        "{name:?} is not a variable name; write the name alone, e.g. \"AWS_PROFILE\""
                    ),
                ));
            }
        }
        for (i, glob) in self.gates.forbidden_paths.iter().enumerate() {
            let key = format!("gates.forbidden_paths[{i}]");
            if glob.trim().is_empty() {
                return Err(invalid(
                    key,
                    "an empty glob matches nothing; remove it".into(),
                ));
            }
            if glob.split('/').any(|c| c == "..") {
                return Err(invalid(
                    key,
                    format!(
                        "{glob:?} leaves the repository: globs are matched against paths inside it (e.g. \"secrets/**\")"
                    ),
                ));
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, gate) in self.gates.commands.iter().enumerate() {
            if gate.name.trim().is_empty() {
                return Err(invalid(
                    format!("gates.command[{i}].name"),
                    "must not be empty; it names the gate in receipts".into(),
                ));
            }
            if !names.insert(gate.name.as_str()) {
                return Err(invalid(
                    format!("gates.command[{i}].name"),
                    format!(
                        "duplicate command gate name {:?}; names must be unique",
                        gate.name
                    ),
                ));
            }
            if gate.argv.first().is_none_or(String::is_empty) {
                return Err(invalid(
                    format!("gates.command[{i}].argv"),
                    "needs the program and its arguments, e.g. [\"cargo\", \"test\"]".into(),
                ));
            }
            if gate.timeout.is_zero() {
                return Err(invalid(
                    format!("gates.command[{i}].timeout"),
                    "must be longer than 0s".into(),
                ));
            }
        }
        Ok(())
    }
}

/// Walks up from `start` (absolute): returns the first `vnx.toml` found and the
/// repository root. The walk stops at a git root (a directory holding `.git`,
/// a directory in a clone and a file in a linked worktree).
fn find_config(start: &Path) -> (Option<PathBuf>, PathBuf) {
    for dir in start.ancestors() {
        let candidate = dir.join(CONFIG_FILE);
        if candidate.is_file() {
            return (Some(candidate), dir.to_path_buf());
        }
        if dir.join(".git").exists() {
            return (None, dir.to_path_buf());
        }
    }
    (None, start.to_path_buf())
}

fn render_parse(
    path: &Path,
    line: usize,
    column: usize,
    key: Option<&str>,
    table: Option<&str>,
    message: &str,
) -> String {
    let mut out = format!("{}:{line}:{column}: ", path.display());
    if let Some(key) = key {
        let _ = write!(out, "key `{key}`");
        if let Some(table) = table {
            let _ = write!(out, " in [{table}]");
        }
        out.push_str(": ");
    }
    out.push_str(message);
    if message.contains("unknown field") {
        out.push_str("; `vnx init` in an empty directory writes a vnx.toml that lists every key");
    }
    out
}

/// Builds a [`ConfigError::Parse`] from a TOML error's byte span: line and
/// column, the key on that line and the enclosing table header.
fn parse_error(
    text: &str,
    path: &Path,
    span: Option<std::ops::Range<usize>>,
    message: &str,
) -> ConfigError {
    let start = span.as_ref().map_or(0, |s| s.start).min(text.len());
    let before = text.get(..start).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = text
        .get(line_start..start)
        .map_or(1, |s| s.chars().count() + 1);
    let line_text = text
        .get(line_start..)
        .and_then(|rest| rest.lines().next())
        .unwrap_or("");
    let span_text = span
        .and_then(|s| text.get(s))
        .map(|t| t.trim().trim_matches('"').to_owned());
    let key = if message.contains("unknown field") {
        span_text
    } else {
        None
    };
    let key = key.or_else(|| {
        line_text
            .split_once('=')
            .map(|(k, _)| k.trim().trim_matches('"').to_owned())
            .filter(|k| !k.is_empty() && !k.starts_with('#') && !k.starts_with('['))
    });
    let table = before
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| {
            l.trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("")
                .trim()
                .to_owned()
        });
    ConfigError::Parse {
        path: path.to_path_buf(),
        line,
        column,
        key: key.clone(),
        table: key.and(table),
        message: message.trim().to_owned(),
    }
}

/// The commented default `vnx.toml` that `vnx init` writes: every key with a
/// comment saying what it does. It parses to [`Config::default`].
pub fn default_toml() -> &'static str {
    include_str!("default_vnx.toml")
}
