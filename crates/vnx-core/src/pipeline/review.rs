//! The cross-model review: which model reviews, and the review dispatch.

use vnx_agents::ProviderKind;

/// Who reviews a dispatch's work. Both fields `None`: the worker's provider
/// with its "other" model ([`default_review_model`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReviewSettings {
    /// Provider of the review dispatch; `None`: the worker's provider.
    pub provider: Option<String>,
    /// Model of the review dispatch; `None`: [`default_review_model`] of the
    /// worker's model when the provider is the worker's, else the reviewing
    /// provider's default.
    pub model: Option<String>,
}

/// The same provider's other model, so that the review is a second opinion:
///
/// | provider | worker model contains | reviewer |
/// |---|---|---|
/// | claude | `opus` | `sonnet` |
/// | claude | anything else (`sonnet`, `haiku`, unknown) | `opus` |
/// | codex | `codex` | `gpt-5` |
/// | codex | anything else | `gpt-5-codex` |
/// | gemini | `pro` | `gemini-2.5-flash` |
/// | gemini | anything else | `gemini-2.5-pro` |
/// | command | — | `None` (the provider's own default) |
///
/// `worker_model` is the model the CLI reported (or the requested one).
pub fn default_review_model(kind: ProviderKind, worker_model: Option<&str>) -> Option<String> {
    let model = worker_model.unwrap_or_default().to_ascii_lowercase();
    let pick = match kind {
        ProviderKind::Claude => {
            if model.contains("opus") {
                "sonnet"
            } else {
                "opus"
            }
        }
        ProviderKind::Codex => {
            if model.contains("codex") {
                "gpt-5"
            } else {
                "gpt-5-codex"
            }
        }
        ProviderKind::Gemini => {
            if model.contains("pro") {
                "gemini-2.5-flash"
            } else {
                "gemini-2.5-pro"
            }
        }
        ProviderKind::Command => return None,
    };
    Some(pick.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_other_model_of_the_same_provider() {
        let c = ProviderKind::Claude;
        assert_eq!(
            default_review_model(c, Some("claude-sonnet-4-5")).as_deref(),
            Some("opus")
        );
        assert_eq!(
            default_review_model(c, Some("claude-opus-4-1")).as_deref(),
            Some("sonnet")
        );
        assert_eq!(default_review_model(c, None).as_deref(), Some("opus"));
        assert_eq!(
            default_review_model(ProviderKind::Gemini, Some("gemini-2.5-pro")).as_deref(),
            Some("gemini-2.5-flash")
        );
        assert_eq!(
            default_review_model(ProviderKind::Codex, Some("gpt-5-codex")).as_deref(),
            Some("gpt-5")
        );
        assert_eq!(default_review_model(ProviderKind::Command, None), None);
    }
}
