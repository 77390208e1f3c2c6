//! Masking of secrets in text that vnx writes to the ledger or the terminal
//! (error messages, stderr tails, agent text excerpts).
//!
//! This is a best-effort filter on well-known credential shapes, not a proof of
//! absence: the auth guard keeps credentials out of workers' environments in the
//! first place.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;

/// What a masked secret is replaced with (after any kept, non-secret prefix).
pub const MASK: &str = "***";

struct Rule {
    re: Regex,
    replacement: &'static str,
}

static RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    let specs: [(&str, &'static str); 11] = [
        // NAME=value / export NAME="value" where NAME ends in _KEY, _TOKEN, ...
        (
            r#"\b([A-Za-z0-9_]*(?i:_KEY|_TOKEN|_SECRET|_PASSWORD|_PASSWD|_CREDENTIALS))\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'`]+)"#,
            "${1}=***",
        ),
        // "NAME": "value" in JSON.
        (
            r#""([A-Za-z0-9_]*(?i:_KEY|_TOKEN|_SECRET|_PASSWORD|_PASSWD|_CREDENTIALS))"\s*:\s*"[^"]*""#,
            r#""${1}": "***""#,
        ),
        // Header forms before bare tokens, so the whole credential after them is masked.
        (r"(?i)\b(Bearer)\s+[A-Za-z0-9\-._~+/]{8,}=*", "${1} ***"),
        (
            r"(?i)\b(x-api-key|x-goog-api-key)(\s*:\s*)[^\s,;]+",
            "${1}${2}***",
        ),
        (r"\bsk-ant-[A-Za-z0-9_\-]{8,}", "sk-ant-***"),
        (r"\bsk-[A-Za-z0-9_\-]{16,}", "sk-***"),
        (r"\bAIza[0-9A-Za-z_\-]{20,}", "AIza***"),
        (r"\b(ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}", "${1}_***"),
        (r"\bgithub_pat_[A-Za-z0-9_]{20,}", "github_pat_***"),
        (r"\b(xox[abprs])-[A-Za-z0-9\-]{10,}", "${1}-***"),
        (r"\bAKIA[0-9A-Z]{16}\b", "AKIA***"),
    ];
    specs
        .into_iter()
        .filter_map(|(pattern, replacement)| {
            Regex::new(pattern).ok().map(|re| Rule { re, replacement })
        })
        .collect()
});

/// Returns `text` with API keys and tokens masked: `sk-ant-…`, `sk-…`, `AIza…`,
/// GitHub (`ghp_…`, `github_pat_…`), Slack and AWS key ids, `Bearer` tokens,
/// `x-api-key:` headers, and the values of `*_KEY`, `*_TOKEN`, `*_SECRET`,
/// `*_PASSWORD` assignments (`NAME=value`, `"NAME": "value"`).
///
/// A recognizable prefix is kept (`sk-ant-***`, `ANTHROPIC_API_KEY=***`) so a
/// reader still knows which credential leaked.
pub fn redact(text: &str) -> String {
    let mut out = Cow::Borrowed(text);
    for rule in RULES.iter() {
        if let Cow::Owned(replaced) = rule.re.replace_all(&out, rule.replacement) {
            out = Cow::Owned(replaced);
        }
    }
    out.into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_rules_compile() {
        assert_eq!(RULES.len(), 11);
    }

    #[test]
    fn masks_known_shapes() {
        let cases = [
            (
                "key sk-ant-api03-AbCdEf123456_-xyz end",
                "key sk-ant-*** end",
            ),
            ("sk-proj-abcdefghijklmnopqrstuvwx", "sk-***"),
            ("AIzaSyA1234567890abcdefghijklmnopqrstu", "AIza***"),
            (
                "token ghp_abcdefghijklmnopqrstuvwxyz0123456789",
                "token ghp_***",
            ),
            (
                "Authorization: Bearer eyJhbGciOi.J9abc-def",
                "Authorization: Bearer ***",
            ),
            (
                "ANTHROPIC_API_KEY=abc123 next",
                "ANTHROPIC_API_KEY=*** next",
            ),
            ("export GH_TOKEN=\"x y z\"", "export GH_TOKEN=***"),
            (
                r#"{"OPENAI_API_KEY": "hunter2"}"#,
                r#"{"OPENAI_API_KEY": "***"}"#,
            ),
            ("x-api-key: abcdef", "x-api-key: ***"),
            (
                "nothing secret here: sk-short",
                "nothing secret here: sk-short",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(redact(input), want, "input: {input}");
        }
    }

    #[test]
    fn plain_text_is_untouched() {
        let text = "Done: I created hello.txt. Primary working directory: /home/dev/project";
        assert_eq!(redact(text), text);
    }
}
