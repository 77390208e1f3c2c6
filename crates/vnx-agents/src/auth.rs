//! The auth guard: which credentials and session markers may reach a worker.
//!
//! In [`Billing::Subscription`] mode a worker must bill the user's own login.
//! A variable that would make the CLI bill an API account *instead of* its
//! login refuses the dispatch before anything is spawned: for claude any of
//! [`CLAUDE_API_BILLING_VARS`], for codex [`CODEX_API_KEY`]. The other
//! billing variables ([`CODEX_API_BILLING_VARS`], [`GEMINI_API_BILLING_VARS`])
//! are removed from the worker's environment. A provider's billing variables
//! reach only that provider's worker in [`Billing::Api`] mode; whatever the
//! mode, the variables that make a child claude believe it runs inside
//! another claude session are removed from every worker's environment.
//!
//! Before any removal, a worker inherits only what it needs
//! ([`worker_env_allow_list`]): the base every child gets, its own CLI's
//! variables, and the names the user passes in `[worker] pass_env`.

use vnx_types::Billing;

use crate::config::ProviderKind;

/// Variables that switch Claude Code from the subscription login to per-token
/// billing (an API key, a bearer token, or a cloud provider). Checked against
/// Claude Code 2.1.
pub const CLAUDE_API_BILLING_VARS: [&str; 5] = [
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "CLAUDE_CODE_USE_BEDROCK",
    "CLAUDE_CODE_USE_VERTEX",
    "CLAUDE_CODE_USE_FOUNDRY",
];

/// The codex variable that overrides its login: `codex exec` (checked against
/// codex 0.169) sends `CODEX_API_KEY` as the bearer token in preference to the
/// credentials `codex login` stored, so a subscription-mode codex dispatch
/// with it set is refused.
pub const CODEX_API_KEY: &str = "CODEX_API_KEY";

/// OpenAI API-billing variables, checked against codex 0.169: [`CODEX_API_KEY`]
/// (honoured by `codex exec` over the stored login) and `OPENAI_API_KEY` (not
/// used by `codex exec` to authenticate, but offered by `codex login` and read
/// by tools and scripts the agent runs). Only a codex worker in
/// [`Billing::Api`] mode receives them.
pub const CODEX_API_BILLING_VARS: [&str; 2] = [CODEX_API_KEY, "OPENAI_API_KEY"];

/// Google API-billing variables, checked against gemini-cli 0.61: the API keys
/// it reads (`GEMINI_API_KEY`, `GOOGLE_API_KEY`) and the switch to Vertex AI
/// (`GOOGLE_GENAI_USE_VERTEXAI`). gemini-cli lets them choose the auth method
/// only when `~/.gemini/settings.json` selects none
/// (`security.auth.selectedType` wins), so they are removed, not refused.
/// `GOOGLE_GENAI_USE_GCA` is not here: it selects the Google login, the
/// subscription path. Only a gemini worker in [`Billing::Api`] mode receives them.
pub const GEMINI_API_BILLING_VARS: [&str; 3] = [
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "GOOGLE_GENAI_USE_VERTEXAI",
];

/// Variables set inside a running claude session that would make a child
/// claude think it is nested in it; never inherited by any worker.
pub const CLAUDE_SESSION_VARS: [&str; 3] = [
    "CLAUDECODE",
    "CLAUDE_CODE_SESSION_ID",
    "CLAUDE_CODE_ENTRYPOINT",
];

/// The API-billing variables of `provider`'s CLI: [`CLAUDE_API_BILLING_VARS`],
/// [`CODEX_API_BILLING_VARS`] or [`GEMINI_API_BILLING_VARS`]; none for a
/// custom [`ProviderKind::Command`].
pub fn api_billing_vars(provider: ProviderKind) -> &'static [&'static str] {
    match provider {
        ProviderKind::Claude => &CLAUDE_API_BILLING_VARS,
        ProviderKind::Codex => &CODEX_API_BILLING_VARS,
        ProviderKind::Gemini => &GEMINI_API_BILLING_VARS,
        ProviderKind::Command => &[],
    }
}

/// The variables that make `provider`'s CLI bill an API account instead of its
/// login, so that [`check_auth`] refuses them in subscription mode: all of
/// [`CLAUDE_API_BILLING_VARS`] for claude, [`CODEX_API_KEY`] for codex, none
/// for gemini (its settings file chooses the auth method) or a custom command.
pub fn login_override_vars(provider: ProviderKind) -> &'static [&'static str] {
    match provider {
        ProviderKind::Claude => &CLAUDE_API_BILLING_VARS,
        ProviderKind::Codex => &[CODEX_API_KEY],
        ProviderKind::Gemini | ProviderKind::Command => &[],
    }
}

/// A dispatch refused by the auth guard.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Subscription mode, but variables that override the CLI's login are set
    /// (names only, never values).
    #[error(
        "refusing to start {provider} in subscription billing mode: {vars} set in the environment would bill an API account instead of your {provider} subscription; unset {them}, or pass `--billing api` to opt in to API billing",
        provider = .provider.name(),
        vars = .vars.join(", "),
        them = if .vars.len() == 1 { "it" } else { "them" }
    )]
    ApiKeyInSubscriptionMode {
        /// The CLI that was refused.
        provider: ProviderKind,
        /// The offending variable names, in [`login_override_vars`] order.
        vars: Vec<String>,
    },
}

/// Checks that a `provider` worker may start under `billing` given the parent
/// environment `env` (e.g. `std::env::vars()`) and the provider config's own
/// `env` table, both as `(name, value)` pairs.
///
/// Only subscription mode is checked: a non-empty value of any of
/// [`login_override_vars`]`(provider)` refuses the dispatch (claude: any of
/// [`CLAUDE_API_BILLING_VARS`]; codex: [`CODEX_API_KEY`]).
///
/// # Errors
/// [`AuthError::ApiKeyInSubscriptionMode`] naming the provider and every
/// offending variable.
pub fn check_auth<I, K, V>(
    provider: ProviderKind,
    billing: Billing,
    env: I,
) -> Result<(), AuthError>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: AsRef<str>,
{
    if billing == Billing::Api {
        return Ok(());
    }
    let watched = login_override_vars(provider);
    if watched.is_empty() {
        return Ok(());
    }
    let mut found = vec![false; watched.len()];
    for (name, value) in env {
        if value.as_ref().is_empty() {
            continue;
        }
        if let Some(i) = watched.iter().position(|v| *v == name.as_ref()) {
            found[i] = true;
        }
    }
    let vars: Vec<String> = watched
        .iter()
        .zip(found)
        .filter(|(_, hit)| *hit)
        .map(|(name, _)| (*name).to_owned())
        .collect();
    if vars.is_empty() {
        Ok(())
    } else {
        Err(AuthError::ApiKeyInSubscriptionMode { provider, vars })
    }
}

/// Variables the exec layer must not pass to a `provider` worker under `billing`.
///
/// Always the [`CLAUDE_SESSION_VARS`]. Each CLI's API-billing variables
/// ([`CLAUDE_API_BILLING_VARS`], [`CODEX_API_BILLING_VARS`],
/// [`GEMINI_API_BILLING_VARS`]) too, except for that CLI's own worker in
/// [`Billing::Api`] mode, the only worker that may use them: one provider's
/// credentials never reach another CLI, and in subscription mode not even
/// their own.
///
/// A custom [`ProviderKind::Command`] loses only the Anthropic variables (as
/// every non-claude worker always has): vnx does not know which service a
/// custom tool bills, and such tools (aider, scripts calling an API) often
/// need an OpenAI or Google key on purpose; removing those would break them
/// without protecting any subscription vnx manages.
pub fn env_to_remove(provider: ProviderKind, billing: Billing) -> Vec<String> {
    let mut vars: Vec<String> = CLAUDE_SESSION_VARS
        .iter()
        .map(|v| (*v).to_owned())
        .collect();
    let own = |kind: ProviderKind| provider == kind && billing == Billing::Api;
    if !own(ProviderKind::Claude) {
        vars.extend(CLAUDE_API_BILLING_VARS.iter().map(|v| (*v).to_owned()));
    }
    if provider != ProviderKind::Command {
        for kind in [ProviderKind::Codex, ProviderKind::Gemini] {
            if !own(kind) {
                vars.extend(api_billing_vars(kind).iter().map(|v| (*v).to_owned()));
            }
        }
    }
    vars
}

/// Variables of vnx's environment that every worker and every command gate
/// receives when they are set: what finding programs, home, user, shell,
/// terminal, locale, time zone, temp directory, proxies and CA certificates
/// needs, and where the common toolchains live (a worker runs `cargo test` or
/// `npm test` too). No credential is here: `CARGO_*` as a whole would pass
/// `CARGO_REGISTRY_TOKEN`, so only the location variables are named.
pub const BASE_ENV_VARS: [&str; 38] = [
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "TERM",
    "COLORTERM",
    "NO_COLOR",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TMPDIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "NODE_EXTRA_CA_CERTS",
    "REQUESTS_CA_BUNDLE",
    "CARGO_HOME",
    "CARGO_TARGET_DIR",
    "RUSTUP_HOME",
    "RUSTUP_TOOLCHAIN",
    "GOPATH",
    "GOROOT",
    "GOCACHE",
    "GOMODCACHE",
    "JAVA_HOME",
    "VIRTUAL_ENV",
    "PYENV_ROOT",
    "NVM_DIR",
    "PNPM_HOME",
    "DOTNET_ROOT",
];

/// Name prefixes every worker and command gate receives: the locale
/// categories (`LC_ALL`, `LC_CTYPE`, …) and the XDG base directories
/// (`XDG_CONFIG_HOME`, `XDG_RUNTIME_DIR`, …).
pub const BASE_ENV_PREFIXES: [&str; 2] = ["LC_", "XDG_"];

/// The variables Claude Code reads besides the `CLAUDE_*` and `ANTHROPIC_*`
/// families ([`CLI_ENV_PREFIXES`]), from its settings documentation, checked
/// against Claude Code 2.1: telemetry and update switches, tool limits,
/// MCP timeouts, the Vertex region, the root-sandbox marker.
const CLAUDE_ENV_VARS: [&str; 16] = [
    "DISABLE_AUTOUPDATER",
    "DISABLE_TELEMETRY",
    "DISABLE_ERROR_REPORTING",
    "DISABLE_BUG_COMMAND",
    "DISABLE_COST_WARNINGS",
    "DISABLE_NON_ESSENTIAL_MODEL_CALLS",
    "DISABLE_PROMPT_CACHING",
    "MAX_THINKING_TOKENS",
    "MAX_MCP_OUTPUT_TOKENS",
    "MCP_TIMEOUT",
    "MCP_TOOL_TIMEOUT",
    "BASH_DEFAULT_TIMEOUT_MS",
    "BASH_MAX_TIMEOUT_MS",
    "BASH_MAX_OUTPUT_LENGTH",
    "CLOUD_ML_REGION",
    "IS_SANDBOX",
];

/// The variables codex 0.169 reads besides `CODEX_*`: the OpenAI endpoint and
/// account settings ([`CODEX_API_BILLING_VARS`] reach it only in
/// [`Billing::Api`] mode, through [`env_to_remove`]).
const CODEX_ENV_VARS: [&str; 4] = [
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_ORGANIZATION",
    "OPENAI_PROJECT",
];

/// The variables gemini-cli 0.61 reads besides `GEMINI_*`: the Google auth
/// switches and endpoints, the Cloud project and location, and `NO_BROWSER`
/// for its login ([`GEMINI_API_BILLING_VARS`] reach it only in
/// [`Billing::Api`] mode).
const GEMINI_ENV_VARS: [&str; 8] = [
    "GOOGLE_API_KEY",
    "GOOGLE_GENAI_USE_VERTEXAI",
    "GOOGLE_GENAI_USE_GCA",
    "GOOGLE_GEMINI_BASE_URL",
    "GOOGLE_VERTEX_BASE_URL",
    "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_CLOUD_LOCATION",
    "NO_BROWSER",
];

/// The variable families of each built-in CLI, passed to its own worker only:
/// `CLAUDE_`/`ANTHROPIC_` (claude), `CODEX_` (codex), `GEMINI_` (gemini).
pub const CLI_ENV_PREFIXES: [(ProviderKind, &str); 4] = [
    (ProviderKind::Claude, "CLAUDE_"),
    (ProviderKind::Claude, "ANTHROPIC_"),
    (ProviderKind::Codex, "CODEX_"),
    (ProviderKind::Gemini, "GEMINI_"),
];

/// Which of vnx's variables a child may inherit: exact names and name
/// prefixes. Turned into `vnx_exec::ChildEnv::allow_list` by the caller.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EnvAllowList {
    /// Exact names (case-sensitive).
    pub names: Vec<String>,
    /// Name prefixes, e.g. `LC_`.
    pub prefixes: Vec<String>,
}

impl EnvAllowList {
    /// Whether a variable named `name` may be inherited.
    pub fn allows(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
            || self.prefixes.iter().any(|p| name.starts_with(p.as_str()))
    }

    /// Adds the names in `extra` (e.g. `[worker] pass_env`), skipping
    /// duplicates and empty names.
    pub fn with_names<S: AsRef<str>>(mut self, extra: &[S]) -> Self {
        for name in extra {
            let name = name.as_ref().trim();
            if !name.is_empty() && !self.names.iter().any(|n| n == name) {
                self.names.push(name.to_owned());
            }
        }
        self
    }
}

/// What every child vnx starts may inherit: [`BASE_ENV_VARS`] and
/// [`BASE_ENV_PREFIXES`]. Command gates start from this.
pub fn base_env_allow_list() -> EnvAllowList {
    EnvAllowList {
        names: BASE_ENV_VARS.iter().map(|v| (*v).to_owned()).collect(),
        prefixes: BASE_ENV_PREFIXES.iter().map(|v| (*v).to_owned()).collect(),
    }
}

/// What a `provider` worker may inherit from vnx's environment: the base
/// ([`base_env_allow_list`]), its own CLI's variables ([`CLI_ENV_PREFIXES`]
/// and the names documented on this module's constants), and `pass_env`
/// (`[worker] pass_env` in `vnx.toml`, names the user passes explicitly).
/// A custom [`ProviderKind::Command`] also keeps the OpenAI and Google API
/// keys ([`CODEX_API_BILLING_VARS`], [`GEMINI_API_BILLING_VARS`]), as
/// [`env_to_remove`] lets it. Everything else vnx holds — `AWS_*`,
/// `GITHUB_TOKEN`, `GH_TOKEN`, cloud tokens, another CLI's variables — is
/// withheld.
///
/// The allow-list only decides what is inherited; [`env_to_remove`] still
/// applies on top (billing variables in subscription mode, session markers),
/// even to names in `pass_env`.
pub fn worker_env_allow_list<S: AsRef<str>>(
    provider: ProviderKind,
    pass_env: &[S],
) -> EnvAllowList {
    let mut allow = base_env_allow_list();
    allow.prefixes.extend(
        CLI_ENV_PREFIXES
            .iter()
            .filter(|(kind, _)| *kind == provider)
            .map(|(_, p)| (*p).to_owned()),
    );
    let own: &[&str] = match provider {
        ProviderKind::Claude => &CLAUDE_ENV_VARS,
        ProviderKind::Codex => &CODEX_ENV_VARS,
        ProviderKind::Gemini => &GEMINI_ENV_VARS,
        ProviderKind::Command => &[],
    };
    let mut allow = allow.with_names(own);
    if provider == ProviderKind::Command {
        allow = allow
            .with_names(&CODEX_API_BILLING_VARS)
            .with_names(&GEMINI_API_BILLING_VARS);
    }
    allow.with_names(pass_env)
}

/// The warning a receipt should carry when a run's credential source does not
/// match its billing mode: in subscription mode claude's `apiKeySource` must be
/// `none` (the login); anything else means an API account was billed.
///
/// `api_key_source` is `None` when the CLI does not report one (codex, gemini):
/// no warning then.
pub fn api_key_source_warning(api_key_source: Option<&str>, billing: Billing) -> Option<String> {
    match (billing, api_key_source) {
        (Billing::Subscription, Some(source)) if source != "none" => Some(format!(
            "api_key_source is \"{}\" in subscription mode: this run may have been billed to an API account",
            crate::redact(source)
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_refuses_api_key() {
        let env = [("ANTHROPIC_API_KEY", "sk-ant-x"), ("PATH", "/bin")];
        let err = check_auth(ProviderKind::Claude, Billing::Subscription, env).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("ANTHROPIC_API_KEY"), "{msg}");
        assert!(msg.contains("--billing api"), "{msg}");
        assert!(msg.contains("unset it"), "{msg}");
        assert!(!msg.contains("sk-ant-x"), "{msg}");
    }

    #[test]
    fn codex_refusal_names_codex() {
        let env = [("CODEX_API_KEY", "sk-proj-x"), ("OPENAI_API_KEY", "sk-y")];
        let err = check_auth(ProviderKind::Codex, Billing::Subscription, env).unwrap_err();
        assert_eq!(
            err,
            AuthError::ApiKeyInSubscriptionMode {
                provider: ProviderKind::Codex,
                vars: vec!["CODEX_API_KEY".into()],
            }
        );
        assert!(err.to_string().starts_with(
            "refusing to start codex in subscription billing mode: CODEX_API_KEY set"
        ));
        assert!(check_auth(ProviderKind::Codex, Billing::Api, env).is_ok());
    }

    #[test]
    fn empty_value_is_not_set() {
        let env = [("ANTHROPIC_API_KEY", "")];
        assert!(check_auth(ProviderKind::Claude, Billing::Subscription, env).is_ok());
    }

    #[test]
    fn warning_only_in_subscription_mode() {
        assert_eq!(
            api_key_source_warning(Some("none"), Billing::Subscription),
            None
        );
        assert_eq!(api_key_source_warning(None, Billing::Subscription), None);
        assert_eq!(
            api_key_source_warning(Some("ANTHROPIC_API_KEY"), Billing::Api),
            None
        );
        let w = api_key_source_warning(Some("ANTHROPIC_API_KEY"), Billing::Subscription).unwrap();
        assert!(w.starts_with("api_key_source is \"ANTHROPIC_API_KEY\" in subscription mode"));
    }
}
