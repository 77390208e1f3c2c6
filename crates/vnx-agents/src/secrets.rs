//! vnx's one table of secret shapes, used both to redact text before vnx
//! writes it anywhere (error messages, stderr and command-gate tails, gate
//! details: the ledger, `receipts show`, the board) and by the `no-secrets`
//! gate (`vnx-govern`) to flag secrets a worker added.
//!
//! It lives here, not in `vnx-types`, because it needs `regex`; `vnx-govern`
//! uses it through [`find_secrets`] and [`redact`], so redaction and the gate
//! can never disagree about what a secret looks like.
//!
//! This is a filter on well-known credential shapes, not a proof of absence:
//! the worker's environment is built from an allow-list so that credentials do
//! not reach it in the first place.
//!
//! **Redact first, then cut.** A caller that bounds text must redact the whole
//! text it has and cut afterwards; a cut first can split a key so that no
//! pattern recognizes the half that is kept. PEM blocks are masked from their
//! `BEGIN` line to their `END` line; a `BEGIN` without an `END` is masked to the
//! end of the text and an `END` without a `BEGIN` from the start of the text,
//! so a block cut on either side by a tail or a head still leaks nothing.

use std::sync::LazyLock;

use regex::Regex;

/// Kind of a PEM private key block (`-----BEGIN … PRIVATE KEY-----` to its
/// `END` line; RFC 7468 labels, OpenSSH's `OPENSSH PRIVATE KEY` and OpenPGP's
/// `PGP PRIVATE KEY BLOCK`).
pub const PRIVATE_KEY: &str = "private-key";

/// One row of the table: a kind name, its regular expression, and which
/// capture group holds the secret (0: the whole match). Values of rows with
/// `mixed` set must mix letters and digits, as random keys do, so that names
/// (`sk-learn-compatible-estimators`, `cache_key = "user_profile"`) stay out.
struct Row {
    kind: &'static str,
    pattern: &'static str,
    group: usize,
    mixed: bool,
}

/// The table, most specific first: a later row never masks text an earlier
/// row already matched. Formats (checked against the issuers' documentation):
/// AWS access key ids are `AKIA`/`ASIA` + 16 base-32 characters and secret
/// keys 40 base-64 characters; GitHub tokens are `ghp_`/`gho_`/`ghu_`/`ghs_`/
/// `ghr_` + 36 or more alphanumerics, fine-grained ones `github_pat_` + 82;
/// Google API keys `AIza` + 35 characters (39 in all) and OAuth access tokens
/// `ya29.` + URL-safe characters; Slack `xox[abprs]-` + dash-separated parts;
/// Stripe `sk_live_`/`rk_live_` + 24 or more alphanumerics; Anthropic
/// `sk-ant-` (`api03-`, `oat01-`, `admin01-` …); OpenAI `sk-`, `sk-proj-`,
/// `sk-svcacct-`, `sk-admin-`; npm `npm_` + 36 alphanumerics; JWTs three
/// base64url parts of which the first two are JSON objects (`eyJ`).
const ROWS: &[Row] = &[
    Row {
        kind: "anthropic-api-key",
        pattern: r"\bsk-ant-[A-Za-z0-9_\-]{8,}",
        group: 0,
        mixed: false,
    },
    Row {
        kind: "openai-api-key",
        pattern: r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}",
        group: 0,
        mixed: true,
    },
    Row {
        kind: "stripe-secret-key",
        pattern: r"\b(?:sk|rk)_live_[0-9A-Za-z]{24,}",
        group: 0,
        mixed: false,
    },
    Row {
        kind: "google-api-key",
        pattern: r"\bAIza[0-9A-Za-z_\-]{35}",
        group: 0,
        mixed: false,
    },
    Row {
        kind: "google-oauth-token",
        pattern: r"\bya29\.[0-9A-Za-z_\-]{20,}",
        group: 0,
        mixed: true,
    },
    Row {
        kind: "github-token",
        pattern: r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,}",
        group: 0,
        mixed: false,
    },
    Row {
        kind: "github-token",
        pattern: r"\bgithub_pat_[A-Za-z0-9_]{22,}",
        group: 0,
        mixed: false,
    },
    Row {
        kind: "aws-access-key-id",
        pattern: r"\b(?:AKIA|ASIA)[A-Z2-7]{16}\b",
        group: 0,
        mixed: false,
    },
    Row {
        kind: "aws-secret-access-key",
        pattern: r#"(?i)\baws_?secret_?access_?key\b["']?\s*[:=]\s*["']?([A-Za-z0-9/+=]{40})"#,
        group: 1,
        mixed: true,
    },
    Row {
        kind: "slack-token",
        pattern: r"\bxox[abprs]-[A-Za-z0-9\-]{10,}",
        group: 0,
        mixed: true,
    },
    Row {
        kind: "npm-token",
        pattern: r"\bnpm_[A-Za-z0-9]{36}\b",
        group: 0,
        mixed: false,
    },
    Row {
        kind: "jwt",
        pattern: r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}",
        group: 0,
        mixed: true,
    },
    // Header forms: the header names the value a credential, whatever it looks like.
    Row {
        kind: "bearer-token",
        pattern: r"(?i)\bBearer\s+([A-Za-z0-9\-._~+/]{8,}=*)",
        group: 1,
        mixed: false,
    },
    Row {
        kind: "api-key-header",
        pattern: r"(?i)\b(?:x-api-key|x-goog-api-key)\s*:\s*([^\s,;\[]+)",
        group: 1,
        mixed: false,
    },
    // `NAME=value`, `NAME: value`, `"name": "value"` where the name ends in a
    // credential word; only values of 8 or more characters mixing letters and
    // digits, so that references (`os.environ["API_KEY"]`, `${{ secrets.X }}`)
    // stay out.
    Row {
        kind: "assignment",
        pattern: r#"(?i)\b(?:[a-z0-9]+[_\-])*(?:api[_\-]?key|apikey|key|token|secret|password|passwd|pwd|credentials?)\b["']?\s*[:=]\s*["']?([A-Za-z0-9_\-+/=.~!@#%^&*]{8,})"#,
        group: 1,
        mixed: true,
    },
];

/// The kinds [`find_secrets`] reports, in table order, [`PRIVATE_KEY`] first.
pub fn secret_kinds() -> Vec<&'static str> {
    let mut kinds = vec![PRIVATE_KEY];
    for row in ROWS {
        if !kinds.contains(&row.kind) {
            kinds.push(row.kind);
        }
    }
    kinds
}

/// A secret found in text: its kind (one of [`secret_kinds`]) and where it is,
/// as byte offsets into the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretMatch {
    /// Kind, e.g. `anthropic-api-key`, `aws-access-key-id`, `private-key`, `assignment`.
    pub kind: &'static str,
    /// Byte offset where the secret starts.
    pub start: usize,
    /// Byte offset just past the secret.
    pub end: usize,
}

/// A built-in pattern that does not compile: a bug, caught by the tests. The
/// gate then errors and [`redact`] withholds the whole text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "secret pattern {kind} does not compile: {message}; this is a bug in vnx, please report it"
)]
pub struct SecretPatternError {
    /// The row's kind.
    pub kind: &'static str,
    /// The regex error.
    pub message: String,
}

struct Compiled {
    rows: Vec<(&'static Row, Regex)>,
    pem_begin: Regex,
    pem_end: Regex,
}

static COMPILED: LazyLock<Result<Compiled, SecretPatternError>> = LazyLock::new(|| {
    let compile = |kind: &'static str, pattern: &str| {
        Regex::new(pattern).map_err(|e| SecretPatternError {
            kind,
            message: e.to_string(),
        })
    };
    let rows = ROWS
        .iter()
        .map(|row| compile(row.kind, row.pattern).map(|re| (row, re)))
        .collect::<Result<Vec<_>, _>>()?;
    // RFC 7468 labels are upper-case words; "PRIVATE KEY" ends every private
    // one (RSA, EC, DSA, OPENSSH, ENCRYPTED, plain PKCS#8), "PGP PRIVATE KEY
    // BLOCK" is OpenPGP's armor (RFC 4880).
    let label = r"((?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?)";
    Ok(Compiled {
        rows,
        pem_begin: compile(PRIVATE_KEY, &format!("-----BEGIN {label}-----"))?,
        pem_end: compile(PRIVATE_KEY, &format!("-----END {label}-----"))?,
    })
});

/// Whether a value mixes letters and digits, as random keys do.
fn mixed(v: &str) -> bool {
    v.bytes().any(|b| b.is_ascii_digit()) && v.bytes().any(|b| b.is_ascii_alphabetic())
}

/// PEM private key blocks: `BEGIN` to the matching `END`, else to the end of
/// the text; an `END` outside every block from the start of the text.
fn pem_blocks(c: &Compiled, text: &str) -> Vec<SecretMatch> {
    let mut found: Vec<SecretMatch> = Vec::new();
    let mut at = 0;
    while let Some(caps) = c.pem_begin.captures_at(text, at) {
        let (Some(whole), Some(label)) = (caps.get(0), caps.get(1)) else {
            break;
        };
        let end_marker = format!("-----END {}-----", label.as_str());
        let end = text[whole.end()..]
            .find(&end_marker)
            .map_or(text.len(), |i| whole.end() + i + end_marker.len());
        found.push(SecretMatch {
            kind: PRIVATE_KEY,
            start: whole.start(),
            end,
        });
        at = end;
    }
    // An END nobody began: the head of its block was cut off before vnx saw it.
    let first_begin = found.first().map_or(text.len(), |f| f.start);
    if let Some(orphan) = c.pem_end.find_iter(&text[..first_begin]).last() {
        found.insert(
            0,
            SecretMatch {
                kind: PRIVATE_KEY,
                start: 0,
                end: orphan.end(),
            },
        );
    }
    found
}

/// The secrets in `text`, non-overlapping, in order of position.
///
/// # Errors
/// [`SecretPatternError`] only if a built-in pattern does not compile (a bug).
pub fn find_secrets(text: &str) -> Result<Vec<SecretMatch>, SecretPatternError> {
    let c = COMPILED.as_ref().map_err(Clone::clone)?;
    let mut found = pem_blocks(c, text);
    for (row, re) in &c.rows {
        for caps in re.captures_iter(text) {
            let Some(m) = caps.get(row.group) else {
                continue;
            };
            if row.mixed && !mixed(m.as_str()) {
                continue;
            }
            if found.iter().any(|f| m.start() < f.end && f.start < m.end()) {
                continue; // already covered by a more specific row
            }
            found.push(SecretMatch {
                kind: row.kind,
                start: m.start(),
                end: m.end(),
            });
        }
    }
    found.sort_by_key(|f| f.start);
    Ok(found)
}

/// Returns `text` with every secret [`find_secrets`] finds replaced by
/// `[REDACTED <kind>]`; names around it are kept
/// (`ANTHROPIC_API_KEY=[REDACTED anthropic-api-key]`, `Bearer [REDACTED
/// bearer-token]`) so a reader still knows what leaked. Idempotent: redacted
/// text redacts to itself. If the patterns cannot be used, the whole text is
/// withheld rather than risk a leak.
///
/// Call it on the whole text before cutting it (see the module docs).
pub fn redact(text: &str) -> String {
    let Ok(found) = find_secrets(text) else {
        return "[REDACTED: secret patterns unavailable]".to_owned();
    };
    if found.is_empty() {
        return text.to_owned();
    }
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

    #[test]
    fn all_patterns_compile() {
        assert!(COMPILED.is_ok(), "{:?}", COMPILED.as_ref().err());
    }

    #[test]
    fn plain_text_is_untouched() {
        let text = "Done: I created hello.txt. Primary working directory: /home/dev/project";
        assert_eq!(redact(text), text);
    }
}
