//! Secret patterns: API keys, tokens, private keys, long `*_KEY=` values.

use std::sync::LazyLock;

use regex::Regex;

/// A secret found in a line of text: what it looks like and where, byte offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretMatch {
    /// Kind, e.g. `anthropic-api-key`, `aws-access-key-id`, `assignment`.
    pub kind: &'static str,
    /// Byte offset where the secret starts.
    pub start: usize,
    /// Byte offset just past the secret.
    pub end: usize,
}

/// (kind, pattern, capture group holding the secret).
const PATTERNS: &[(&str, &str, usize)] = &[
    ("anthropic-api-key", r"\bsk-ant-[A-Za-z0-9_\-]{20,}", 0),
    (
        "openai-api-key",
        r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}",
        0,
    ),
    ("google-api-key", r"\bAIza[0-9A-Za-z_\-]{35}", 0),
    (
        "github-token",
        r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,}",
        0,
    ),
    ("github-token", r"\bgithub_pat_[A-Za-z0-9_]{22,}", 0),
    ("aws-access-key-id", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", 0),
    ("slack-token", r"\bxox[abposr]-[A-Za-z0-9\-]{10,}", 0),
    (
        "private-key",
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----",
        0,
    ),
    (
        "assignment",
        r#"(?i)\b(?:[a-z0-9]+[_\-])*(?:api[_\-]?key|apikey|key|token|secret|password|passwd)\b["']?\s*[:=]\s*["']?([A-Za-z0-9_\-+/=.]{20,})"#,
        1,
    ),
];

type Compiled = Result<Vec<(&'static str, Regex, usize)>, String>;

static COMPILED: LazyLock<Compiled> = LazyLock::new(|| {
    PATTERNS
        .iter()
        .map(|(kind, pat, group)| {
            Regex::new(pat)
                .map(|re| (*kind, re, *group))
                .map_err(|e| format!("secret pattern {kind}: {e}"))
        })
        .collect()
});

/// Whether a generic assignment's value looks like a credential rather than a
/// name or a reference: letters and digits mixed.
fn plausible_value(v: &str) -> bool {
    v.bytes().any(|b| b.is_ascii_digit()) && v.bytes().any(|b| b.is_ascii_alphabetic())
}

/// The secrets in `text`, non-overlapping, in order of position.
///
/// # Errors
/// Only if a built-in pattern does not compile (a bug; the gate then errors).
pub fn find_secrets(text: &str) -> Result<Vec<SecretMatch>, String> {
    let patterns = COMPILED.as_ref().map_err(Clone::clone)?;
    let mut found: Vec<SecretMatch> = Vec::new();
    for (kind, re, group) in patterns {
        for caps in re.captures_iter(text) {
            let Some(m) = caps.get(*group) else { continue };
            // Real keys are random: letters and digits mixed. This keeps
            // `sk-learn-compatible-estimator` and `cache_key = "user_profile"` out.
            if *kind != "private-key" && !plausible_value(m.as_str()) {
                continue;
            }
            if found.iter().any(|f| m.start() < f.end && f.start < m.end()) {
                continue; // already covered by a more specific pattern
            }
            found.push(SecretMatch {
                kind,
                start: m.start(),
                end: m.end(),
            });
        }
    }
    found.sort_by_key(|f| f.start);
    Ok(found)
}

/// `text` with every secret replaced by `[REDACTED <kind>]`. If the patterns
/// cannot be used, the whole text is withheld rather than risk a leak.
pub fn redact_secrets(text: &str) -> String {
    let Ok(found) = find_secrets(text) else {
        return "[REDACTED: secret patterns unavailable]".to_owned();
    };
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for f in found {
        out.push_str(&text[last..f.start]);
        out.push_str("[REDACTED ");
        out.push_str(f.kind);
        out.push(']');
        last = f.end;
    }
    out.push_str(&text[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<&'static str> {
        find_secrets(text)
            .unwrap()
            .into_iter()
            .map(|f| f.kind)
            .collect()
    }

    #[test]
    fn patterns_compile() {
        assert!(COMPILED.is_ok(), "{:?}", COMPILED.as_ref().err());
    }

    #[test]
    fn known_token_shapes() {
        let body = "Ab1".repeat(14);
        assert_eq!(
            kinds(&format!("x = \"sk-ant-api03-{body}\"")),
            ["anthropic-api-key"]
        );
        assert_eq!(kinds(&format!("sk-proj-{body}")), ["openai-api-key"]);
        assert_eq!(kinds(&format!("AIza{}", &body[..35])), ["google-api-key"]);
        assert_eq!(kinds(&format!("ghp_{body}")), ["github-token"]);
        assert_eq!(
            kinds(&format!("key: AKIA{}", "ABCDEFGH23456789")),
            ["aws-access-key-id"]
        );
        assert_eq!(kinds("-----BEGIN RSA PRIVATE KEY-----"), ["private-key"]);
        assert_eq!(
            kinds("-----BEGIN OPENSSH PRIVATE KEY-----"),
            ["private-key"]
        );
        assert_eq!(
            kinds(&format!("export MY_SERVICE_TOKEN={body}")),
            ["assignment"]
        );
        assert_eq!(kinds(&format!("\"api_key\": \"{body}\"")), ["assignment"]);
    }

    #[test]
    fn harmless_lines() {
        for ok in [
            "let key = config.api_key;",
            "API_KEY = os.environ[\"API_KEY\"]",
            "const token = process.env.GITHUB_TOKEN_FOR_PUBLISHING;",
            "monkey = \"a1b2c3d4e5f6g7h8i9j0k1\"",
            "password: ${{ secrets.PASSWORD }}",
            "-----BEGIN PUBLIC KEY-----",
            "skip-ant-colony = 1",
            "pip install sk-learn-compatible-estimators",
            "cache_key = \"user_profile_cache_entry\"",
        ] {
            assert!(kinds(ok).is_empty(), "{ok:?} flagged: {:?}", kinds(ok));
        }
    }

    #[test]
    fn redaction_keeps_names_and_hides_values() {
        let body = "Zz9".repeat(10);
        let line = format!("ANTHROPIC_API_KEY=sk-ant-{body} # mine");
        let red = redact_secrets(&line);
        assert!(!red.contains(&body), "{red}");
        assert!(
            red.starts_with("ANTHROPIC_API_KEY=[REDACTED anthropic-api-key]"),
            "{red}"
        );
        assert!(red.ends_with(" # mine"));
        assert_eq!(redact_secrets("nothing here"), "nothing here");
    }
}
