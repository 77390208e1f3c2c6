//! Real-format secret samples and near misses, shared by the redaction tests
//! here and the `no-secrets` gate tests of vnx-govern (`#[path]`-included), so
//! both are held to one list.
//!
//! Every sample is built at run time from a seeded generator: no
//! secret-shaped literal sits in the source (scanners would flag it, and a
//! fixed literal could be a real key). Formats follow the issuers'
//! documentation; lengths are the real ones.

#![allow(dead_code)]

/// A secret sample: the kind the table must report, the text it sits in, and
/// the secret itself (which must not survive redaction).
pub struct Sample {
    pub kind: &'static str,
    pub text: String,
    pub secret: String,
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const BASE32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URLSAFE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const DIGITS: &[u8] = b"0123456789";

/// `n` characters of `alphabet`, deterministic per `seed` (xorshift).
pub fn chars(alphabet: &[u8], n: usize, seed: u64) -> String {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            alphabet[(x % alphabet.len() as u64) as usize] as char
        })
        .collect()
}

fn s(kind: &'static str, secret: String, text: impl FnOnce(&str) -> String) -> Sample {
    Sample {
        kind,
        text: text(&secret),
        secret,
    }
}

/// A PEM private key block with `label`, 64-column body lines as
/// OpenSSL/OpenSSH write them.
pub fn pem(label: &str, lines: usize, seed: u64) -> (String, String) {
    let body: Vec<String> = (0..lines)
        .map(|i| chars(BASE64, 64, seed + i as u64))
        .collect();
    let body = body.join("\n");
    (
        format!("-----BEGIN {label}-----\n{body}\n-----END {label}-----"),
        body,
    )
}

/// One sample per pattern of the table (several where a kind has variants).
pub fn samples() -> Vec<Sample> {
    let mut out = vec![
        s(
            "aws-access-key-id",
            format!("AKIA{}", chars(BASE32, 16, 1)),
            |k| format!("aws_access_key_id = {k}"),
        ),
        s(
            "aws-access-key-id",
            format!("ASIA{}", chars(BASE32, 16, 2)),
            |k| format!("export AWS_ACCESS_KEY_ID={k}"),
        ),
        s("aws-secret-access-key", chars(BASE64, 40, 3), |k| {
            format!("aws_secret_access_key = {k}")
        }),
        s("aws-secret-access-key", chars(BASE64, 40, 4), |k| {
            format!("AWS_SECRET_ACCESS_KEY=\"{k}\"")
        }),
        s(
            "github-token",
            format!("ghp_{}", chars(ALNUM, 36, 5)),
            |k| format!("token: {k}"),
        ),
        s(
            "github-token",
            format!("gho_{}", chars(ALNUM, 36, 6)),
            |k| format!("oauth {k} granted"),
        ),
        s(
            "github-token",
            format!("ghs_{}", chars(ALNUM, 36, 7)),
            |k| format!("git clone https://x-access-token:{k}@github.com/o/r"),
        ),
        s(
            "github-token",
            format!("github_pat_{}_{}", chars(ALNUM, 22, 8), chars(ALNUM, 59, 9)),
            |k| format!("GH_TOKEN {k}"),
        ),
        s(
            "google-api-key",
            format!("AIza{}", chars(URLSAFE, 35, 10)),
            |k| format!("https://maps.googleapis.com/maps/api/js?key={k}&v=3"),
        ),
        s(
            "google-oauth-token",
            format!("ya29.{}", chars(URLSAFE, 120, 11)),
            |k| format!("access_token: {k}"),
        ),
        s(
            "slack-token",
            format!(
                "xoxb-{}-{}-{}",
                chars(DIGITS, 12, 12),
                chars(DIGITS, 13, 13),
                chars(ALNUM, 24, 14)
            ),
            |k| format!("SLACK_BOT={k}"),
        ),
        s(
            "slack-token",
            format!(
                "xoxp-{}-{}-{}-{}",
                chars(DIGITS, 12, 15),
                chars(DIGITS, 12, 16),
                chars(DIGITS, 13, 17),
                chars(ALNUM, 32, 18)
            ),
            |k| format!("user token {k}"),
        ),
        s(
            "slack-token",
            format!("xoxa-2-{}", chars(ALNUM, 40, 19)),
            |k| format!("app {k}"),
        ),
        s(
            "slack-token",
            format!("xoxr-{}", chars(ALNUM, 40, 20)),
            |k| format!("refresh {k}"),
        ),
        s(
            "stripe-secret-key",
            format!("sk_live_{}", chars(ALNUM, 99, 21)),
            |k| format!("Stripe.api_key = '{k}'"),
        ),
        s(
            "anthropic-api-key",
            format!("sk-ant-api03-{}AA", chars(URLSAFE, 93, 22)),
            |k| format!("Invalid API key {k} (401)"),
        ),
        s(
            "anthropic-api-key",
            format!("sk-ant-oat01-{}AA", chars(URLSAFE, 93, 23)),
            |k| format!("CLAUDE_CODE_OAUTH_TOKEN {k}"),
        ),
        s(
            "openai-api-key",
            format!("sk-{}", chars(ALNUM, 48, 24)),
            |k| format!("openai.api_key = \"{k}\""),
        ),
        s(
            "openai-api-key",
            format!("sk-proj-{}", chars(URLSAFE, 156, 25)),
            |k| format!("Incorrect API key provided: {k}."),
        ),
        s(
            "jwt",
            format!(
                "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.{}",
                chars(URLSAFE, 43, 26)
            ),
            |k| format!("cookie session={k}; Path=/"),
        ),
        s("npm-token", format!("npm_{}", chars(ALNUM, 36, 27)), |k| {
            format!("//registry.npmjs.org/:_authToken {k}")
        }),
        s("bearer-token", chars(URLSAFE, 40, 28), |k| {
            format!("Authorization: Bearer {k}")
        }),
        s("api-key-header", chars(ALNUM, 32, 29), |k| {
            format!("x-api-key: {k}")
        }),
        s("assignment", chars(ALNUM, 24, 30), |k| {
            format!("DB_PASSWORD={k}")
        }),
        s("assignment", chars(ALNUM, 32, 31), |k| {
            format!(r#"{{"client_secret": "{k}"}}"#)
        }),
        s("assignment", chars(ALNUM, 16, 32), |k| {
            format!("password: {k}")
        }),
    ];
    for (i, label) in [
        "RSA PRIVATE KEY",
        "OPENSSH PRIVATE KEY",
        "EC PRIVATE KEY",
        "ENCRYPTED PRIVATE KEY",
        "PRIVATE KEY",
        "DSA PRIVATE KEY",
        "PGP PRIVATE KEY BLOCK",
    ]
    .into_iter()
    .enumerate()
    {
        let (block, body) = pem(label, 6, 100 + 10 * i as u64);
        out.push(Sample {
            kind: "private-key",
            text: format!("wrote key:\n{block}\ndone"),
            secret: body,
        });
    }
    out
}

/// Text that looks a little like a secret but is not one: neither redacted
/// nor flagged.
pub fn near_misses() -> Vec<String> {
    vec![
        format!("AKIA{}", chars(BASE32, 15, 40)),
        format!("id AKIA{}", chars(BASE32, 16, 41).to_lowercase()),
        format!("ghp_{}", chars(ALNUM, 20, 42)),
        format!("AIza{}", chars(URLSAFE, 30, 43)),
        "ya29 is a prefix".to_owned(),
        "xoxb-short".to_owned(),
        "npm_config_cache=/tmp/npm-cache-2024".to_owned(),
        "pip install sk-learn-compatible-estimators".to_owned(),
        "skip-ant-colony = 1".to_owned(),
        "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----".to_owned(),
        "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----".to_owned(),
        "eyJhbGciOiJIUzI1NiJ9 is a JWT header alone".to_owned(),
        "let key = config.api_key;".to_owned(),
        "API_KEY = os.environ[\"API_KEY\"]".to_owned(),
        "password: ${{ secrets.PASSWORD }}".to_owned(),
        "cache_key = \"user_profile_cache_entry\"".to_owned(),
        "monkey = \"a1b2c3d4e5f6g7h8i9j0k1\"".to_owned(),
        "commit a94a8fe5ccb19ba61c4c0873d391e987982fbbd3".to_owned(),
        "Authorization: Bearer ${TOKEN}".to_owned(),
        "sk_test_ is Stripe's test-mode prefix".to_owned(),
    ]
}
