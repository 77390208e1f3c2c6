//! The auth guard: which credentials and session markers may reach a worker.
//!
//! In [`Billing::Subscription`] mode a claude worker must bill the user's own
//! login, so any variable that would make Claude Code bill an API account
//! instead refuses the dispatch before anything is spawned. Whatever the mode,
//! the variables that make a child claude believe it runs inside another claude
//! session are removed from every worker's environment.

use vnx_types::Billing;

use crate::config::ProviderKind;

/// Variables that switch Claude Code from the subscription login to per-token
/// billing (an API key, a bearer token, or a cloud provider).
pub const CLAUDE_API_BILLING_VARS: [&str; 5] = [
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "CLAUDE_CODE_USE_BEDROCK",
    "CLAUDE_CODE_USE_VERTEX",
    "CLAUDE_CODE_USE_FOUNDRY",
];

/// Variables set inside a running claude session that would make a child
/// claude think it is nested in it; never inherited by any worker.
pub const CLAUDE_SESSION_VARS: [&str; 3] = [
    "CLAUDECODE",
    "CLAUDE_CODE_SESSION_ID",
    "CLAUDE_CODE_ENTRYPOINT",
];

/// A dispatch refused by the auth guard.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Subscription mode, but API-billing variables are set (names only, never values).
    #[error(
        "refusing to start claude in subscription billing mode: {vars} set in the environment would bill an API account instead of your subscription; unset {them}, or pass `--billing api` to opt in to API billing",
        vars = .vars.join(", "),
        them = if .vars.len() == 1 { "it" } else { "them" }
    )]
    ApiKeyInSubscriptionMode {
        /// The offending variable names, in [`CLAUDE_API_BILLING_VARS`] order.
        vars: Vec<String>,
    },
}

/// Checks that a `provider` worker may start under `billing` given the parent
/// environment `env` (e.g. `std::env::vars()`) and the provider config's own
/// `env` table, both as `(name, value)` pairs.
///
/// Only claude in subscription mode is checked: a non-empty value of any of
/// [`CLAUDE_API_BILLING_VARS`] refuses the dispatch.
///
/// # Errors
/// [`AuthError::ApiKeyInSubscriptionMode`] naming every offending variable.
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
    if provider != ProviderKind::Claude || billing == Billing::Api {
        return Ok(());
    }
    let mut found = [false; CLAUDE_API_BILLING_VARS.len()];
    for (name, value) in env {
        if value.as_ref().is_empty() {
            continue;
        }
        if let Some(i) = CLAUDE_API_BILLING_VARS
            .iter()
            .position(|v| *v == name.as_ref())
        {
            found[i] = true;
        }
    }
    let vars: Vec<String> = CLAUDE_API_BILLING_VARS
        .iter()
        .zip(found)
        .filter(|(_, hit)| *hit)
        .map(|(name, _)| (*name).to_owned())
        .collect();
    if vars.is_empty() {
        Ok(())
    } else {
        Err(AuthError::ApiKeyInSubscriptionMode { vars })
    }
}

/// Variables the exec layer must not pass to a `provider` worker under `billing`.
///
/// Always the [`CLAUDE_SESSION_VARS`]. The [`CLAUDE_API_BILLING_VARS`] too,
/// except for a claude worker in [`Billing::Api`] mode, the only worker that
/// may use them (Anthropic credentials never reach codex or gemini).
pub fn env_to_remove(provider: ProviderKind, billing: Billing) -> Vec<String> {
    let mut vars: Vec<String> = CLAUDE_SESSION_VARS
        .iter()
        .map(|v| (*v).to_owned())
        .collect();
    if !(provider == ProviderKind::Claude && billing == Billing::Api) {
        vars.extend(CLAUDE_API_BILLING_VARS.iter().map(|v| (*v).to_owned()));
    }
    vars
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
