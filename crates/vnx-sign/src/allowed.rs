//! OpenSSH allowed_signers files: ssh-keygen(1) "ALLOWED SIGNERS", parsed
//! with the rules of OpenSSH's `sshsig.c` (`parse_principals_key_and_options`,
//! `sshsigopt_parse`) and `misc.c` (`strdelimw`, `parse_absolute_time`), as of
//! OpenSSH 9.x.
//!
//! Unlike ssh-keygen, which stops at the first malformed line it meets while
//! searching, the whole file is checked up front: a malformed line anywhere is
//! an error naming the file and line, so a gate can never pass because part
//! of its trust configuration could not be read.

use std::path::Path;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone as _, Utc};
use ssh_key::{HashAlg, PublicKey};

use crate::error::{SignError, VerifyError};
use crate::pattern::{ListMatch, match_list};

/// A parsed OpenSSH allowed_signers file (ssh-keygen(1) "ALLOWED SIGNERS"):
/// one entry per key line, `principals [options] keytype base64 [comment]`.
///
/// Supported options: `namespaces="pattern,…"`, `valid-after="TIME"`,
/// `valid-before="TIME"` and `cert-authority` (parsed, but never taken as
/// trust: vnx does not verify certificate signatures, see
/// [`VerifyError::CertAuthority`]). Option names are case-insensitive and
/// values must be double-quoted, as in OpenSSH.
///
/// TIME is `YYYYMMDD`, `YYYYMMDDHHMM` or `YYYYMMDDHHMMSS`, optionally followed
/// by `Z` or `UTC` for UTC. Without a suffix it is local time, as in OpenSSH
/// (`mktime`): vnx resolves it with the machine's time zone (`TZ`, else
/// `/etc/localtime`) at parse time, taking the earlier instant when a DST
/// change makes it ambiguous. CI machines usually run in UTC, so write `Z`
/// to make a bound mean the same everywhere.
#[derive(Debug, Clone, Default)]
pub struct AllowedSigners {
    source: String,
    entries: Vec<Entry>,
}

/// One key line.
#[derive(Debug, Clone)]
struct Entry {
    line: usize,
    /// The principals field, unquoted: a comma-separated pattern list.
    principals: String,
    key: PublicKey,
    cert_authority: bool,
    namespaces: Option<String>,
    valid_after: Option<Bound>,
    valid_before: Option<Bound>,
}

/// A `valid-after` / `valid-before` time.
#[derive(Debug, Clone)]
struct Bound {
    /// Unix seconds.
    at: i64,
    /// As written in the file (between the quotes).
    written: String,
}

impl AllowedSigners {
    /// Parses the text of an allowed_signers file. `source` names the file in
    /// errors, e.g. `ledger/allowed_signers at 1a2b3c4`. Blank lines and
    /// lines starting with `#` (after leading blanks) are skipped.
    ///
    /// # Errors
    ///
    /// [`SignError::AllowedSignersLine`] for the first malformed line (its
    /// 1-based number and what is wrong): a missing or unparseable key, an
    /// unknown or duplicated option, an unquoted option value, a bad time,
    /// `valid-before` not after `valid-after`, an unterminated quote.
    pub fn parse(text: &str, source: &str) -> Result<AllowedSigners, SignError> {
        let mut entries = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let err = |reason: String| SignError::AllowedSignersLine {
                source_name: source.to_owned(),
                line,
                reason,
            };
            if let Some(entry) = parse_line(raw, line).map_err(err)? {
                entries.push(entry);
            }
        }
        Ok(AllowedSigners {
            source: source.to_owned(),
            entries,
        })
    }

    /// Reads and parses the allowed_signers file at `path` (named by its path
    /// in errors).
    ///
    /// # Errors
    ///
    /// [`SignError::Read`] when the file cannot be read (or is not UTF-8),
    /// else as [`AllowedSigners::parse`].
    pub fn load(path: &Path) -> Result<AllowedSigners, SignError> {
        let text = std::fs::read_to_string(path).map_err(|source| SignError::Read {
            path: path.to_owned(),
            source,
        })?;
        AllowedSigners::parse(&text, &path.display().to_string())
    }

    /// Whether the file lists no key at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The number of key lines.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The name given to [`AllowedSigners::parse`] (or the path given to
    /// [`AllowedSigners::load`]).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Principals (as written in the file, one per comma-separated item,
    /// wildcards kept, negated `!` items left out, duplicates removed, in
    /// file order) allowed to use `key` for signatures in `namespace` at time
    /// `at` (unix seconds). Every line listing the key counts, as in
    /// `ssh-keygen -Y find-principals`. Valid means `valid-after <= at <=
    /// valid-before`, as in OpenSSH.
    ///
    /// # Errors
    ///
    /// When no line grants the key: [`VerifyError::NotYetValid`],
    /// [`VerifyError::Expired`] or [`VerifyError::NamespaceNotAllowed`] for
    /// the first line that lists the key but refuses it;
    /// [`VerifyError::CertAuthority`] when no line lists the key but the file
    /// has a `cert-authority` line (never taken as trust);
    /// [`VerifyError::NotListed`] otherwise.
    pub fn principals_for(
        &self,
        key: &PublicKey,
        namespace: &str,
        at: i64,
    ) -> Result<Vec<String>, VerifyError> {
        let mut principals: Vec<String> = Vec::new();
        let refusal = self.scan(key, namespace, at, |entry| {
            for item in entry.principals.split(',') {
                if !item.starts_with('!') && !principals.iter().any(|p| p == item) {
                    principals.push(item.to_owned());
                }
            }
        });
        if principals.is_empty() {
            Err(refusal)
        } else {
            Ok(principals)
        }
    }

    /// Whether `key` may sign as `principal` in `namespace` at `at` (unix
    /// seconds): what `ssh-keygen -Y verify -I PRINCIPAL` decides after the
    /// signature itself checks out. The principal is matched against each
    /// line's pattern list with OpenSSH's rules (`*`, `?`, `!` negation).
    ///
    /// # Errors
    ///
    /// [`VerifyError::PrincipalNotAllowed`] when lines grant the key but none
    /// for `principal`; otherwise as [`AllowedSigners::principals_for`].
    pub fn allows(
        &self,
        principal: &str,
        key: &PublicKey,
        namespace: &str,
        at: i64,
    ) -> Result<(), VerifyError> {
        let mut allowed = false;
        let mut listed: Vec<String> = Vec::new();
        let refusal = self.scan(key, namespace, at, |entry| {
            if match_list(principal, &entry.principals) == ListMatch::Positive {
                allowed = true;
            }
            listed.extend(
                entry
                    .principals
                    .split(',')
                    .filter(|p| !p.starts_with('!'))
                    .map(str::to_owned),
            );
        });
        if allowed {
            Ok(())
        } else if listed.is_empty() {
            Err(refusal)
        } else {
            Err(VerifyError::PrincipalNotAllowed {
                fingerprint: fingerprint(key),
                principal: principal.to_owned(),
                source_name: self.source.clone(),
                listed,
            })
        }
    }

    /// Calls `grant` for every line that grants `key` in `namespace` at `at`
    /// and returns the error to report if none does.
    fn scan(
        &self,
        key: &PublicKey,
        namespace: &str,
        at: i64,
        mut grant: impl FnMut(&Entry),
    ) -> VerifyError {
        let mut refusal: Option<VerifyError> = None;
        let mut cert_authority_line: Option<usize> = None;
        for entry in &self.entries {
            if entry.cert_authority {
                // A plain key never matches a CA line in OpenSSH either; vnx
                // has no certificates to check against it.
                cert_authority_line.get_or_insert(entry.line);
                continue;
            }
            if entry.key.key_data() != key.key_data() {
                continue;
            }
            match self.refuse(entry, key, namespace, at) {
                Some(err) => {
                    refusal.get_or_insert(err);
                }
                None => grant(entry),
            }
        }
        let fingerprint = fingerprint(key);
        refusal.unwrap_or_else(|| match cert_authority_line {
            Some(line) => VerifyError::CertAuthority {
                fingerprint,
                source_name: self.source.clone(),
                line,
            },
            None => VerifyError::NotListed {
                fingerprint,
                source_name: self.source.clone(),
            },
        })
    }

    /// Why the line `entry` (whose key is `key`) does not grant a signature in
    /// `namespace` at `at`, in OpenSSH's order: time, then namespace.
    fn refuse(
        &self,
        entry: &Entry,
        key: &PublicKey,
        namespace: &str,
        at: i64,
    ) -> Option<VerifyError> {
        if let Some(after) = &entry.valid_after
            && at < after.at
        {
            return Some(VerifyError::NotYetValid {
                fingerprint: fingerprint(key),
                source_name: self.source.clone(),
                line: entry.line,
                valid_after: after.at,
                written: after.written.clone(),
                at,
            });
        }
        if let Some(before) = &entry.valid_before
            && at > before.at
        {
            return Some(VerifyError::Expired {
                fingerprint: fingerprint(key),
                source_name: self.source.clone(),
                line: entry.line,
                valid_before: before.at,
                written: before.written.clone(),
                at,
            });
        }
        if let Some(allowed) = &entry.namespaces
            && match_list(namespace, allowed) != ListMatch::Positive
        {
            return Some(VerifyError::NamespaceNotAllowed {
                fingerprint: fingerprint(key),
                source_name: self.source.clone(),
                line: entry.line,
                allowed: allowed.clone(),
                namespace: namespace.to_owned(),
            });
        }
        None
    }
}

/// `SHA256:…` of `key`, as `ssh-keygen -l` prints it.
pub(crate) fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC` (the raw number when out of range).
pub(crate) fn utc_text(at: i64) -> String {
    DateTime::<Utc>::from_timestamp(at, 0).map_or_else(
        || format!("{at} (unix seconds)"),
        |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

const WHITESPACE: &[char] = &[' ', '\t', '\r', '\n'];

/// Parses one line; `Ok(None)` for blank and comment lines.
fn parse_line(raw: &str, line: usize) -> Result<Option<Entry>, String> {
    let text = raw.trim_start_matches(WHITESPACE);
    if text.is_empty() || text.starts_with('#') {
        return Ok(None);
    }
    let (principals, rest) = principals_token(text)?;
    if principals.is_empty() {
        return Err("empty principals".to_owned());
    }
    let mut options = Options::default();
    let key = match parse_key(rest) {
        Ok(key) => key,
        Err(key_err) => {
            let first = rest.split(WHITESPACE).next().unwrap_or_default();
            if looks_like_key_type(first) {
                // The key is where it belongs but broken: say that, not "unknown option".
                return Err(key_err);
            }
            let (text, after) = options_token(rest)?;
            parse_options(text, &mut options)?;
            let after = after.trim_start_matches(WHITESPACE);
            if after.is_empty() {
                return Err("missing key after the options".to_owned());
            }
            parse_key(after)?
        }
    };
    Ok(Some(Entry {
        line,
        principals,
        key,
        cert_authority: options.cert_authority,
        namespaces: options.namespaces,
        valid_after: options.valid_after,
        valid_before: options.valid_before,
    }))
}

/// The options of one line.
#[derive(Default)]
struct Options {
    cert_authority: bool,
    namespaces: Option<String>,
    valid_after: Option<Bound>,
    valid_before: Option<Bound>,
}

/// The principals field and the rest of the line, with OpenSSH's
/// `strdelimw` rules: the field ends at whitespace; a `"` opens a quoted
/// part (the quote removed) that runs to the next `"` and ends the field.
fn principals_token(text: &str) -> Result<(String, &str), String> {
    let Some(at) = text.find(|c: char| WHITESPACE.contains(&c) || c == '"') else {
        return Err("missing key after the principals".to_owned());
    };
    if text[at..].starts_with('"') {
        let quoted = &text[at + 1..];
        let Some(end) = quoted.find('"') else {
            return Err("unterminated quote in the principals".to_owned());
        };
        let token = format!("{}{}", &text[..at], &quoted[..end]);
        Ok((token, quoted[end + 1..].trim_start_matches(WHITESPACE)))
    } else {
        Ok((
            text[..at].to_owned(),
            text[at..].trim_start_matches(WHITESPACE),
        ))
    }
}

/// The options field (up to unquoted whitespace, OpenSSH
/// `sshkey_advance_past_options`) and the rest of the line.
fn options_token(text: &str) -> Result<(&str, &str), String> {
    let bytes = text.as_bytes();
    let mut quoted = false;
    let mut i = 0;
    while i < bytes.len() && (quoted || (bytes[i] != b' ' && bytes[i] != b'\t')) {
        if bytes[i] == b'\\' && bytes.get(i + 1) == Some(&b'"') {
            i += 1;
        } else if bytes[i] == b'"' {
            quoted = !quoted;
        }
        i += 1;
    }
    if quoted {
        return Err("unterminated quote in the options".to_owned());
    }
    Ok((&text[..i], &text[i..]))
}

/// Whether `word` names an SSH public key algorithm (so a line whose key
/// fails to parse gets a key error rather than an option error).
fn looks_like_key_type(word: &str) -> bool {
    word.starts_with("ssh-")
        || word.starts_with("ecdsa-")
        || word.starts_with("sk-")
        || word.starts_with("rsa-")
}

/// A `keytype base64` key at the start of `text`; the comment after it is
/// ignored.
fn parse_key(text: &str) -> Result<PublicKey, String> {
    let mut words = text.split(WHITESPACE).filter(|w| !w.is_empty());
    let (Some(kind), Some(base64)) = (words.next(), words.next()) else {
        return Err(format!(
            "expected `keytype base64` after the principals, found {text:?}"
        ));
    };
    PublicKey::from_openssh(&format!("{kind} {base64}"))
        .map(|mut key| {
            key.set_comment("");
            key
        })
        .map_err(|e| format!("invalid {kind} key: {e}"))
}

/// Parses the comma-separated options (OpenSSH `sshsigopt_parse`) into `entry`.
fn parse_options(options: &str, entry: &mut Options) -> Result<(), String> {
    let mut rest = options;
    while !rest.is_empty() {
        if let Some(after) = strip_prefix_ci(rest, "cert-authority") {
            entry.cert_authority = true;
            rest = after;
        } else if let Some(after) = option_value(rest, "namespaces") {
            let (value, after) = dequote(after, "namespaces")?;
            if entry.namespaces.replace(value).is_some() {
                return Err("more than one namespaces option".to_owned());
            }
            rest = after;
        } else if let Some(after) = option_value(rest, "valid-after") {
            let (value, after) = dequote(after, "valid-after")?;
            let bound = parse_bound(&value, "valid-after")?;
            if entry.valid_after.replace(bound).is_some() {
                return Err("more than one valid-after option".to_owned());
            }
            rest = after;
        } else if let Some(after) = option_value(rest, "valid-before") {
            let (value, after) = dequote(after, "valid-before")?;
            let bound = parse_bound(&value, "valid-before")?;
            if entry.valid_before.replace(bound).is_some() {
                return Err("more than one valid-before option".to_owned());
            }
            rest = after;
        } else {
            let name = rest.split('=').next().unwrap_or(rest);
            return Err(format!(
                "unknown option {name:?} (allowed: namespaces=\"…\", valid-after=\"…\", valid-before=\"…\", cert-authority)"
            ));
        }
        if rest.is_empty() {
            break;
        }
        let Some(after) = rest.strip_prefix(',') else {
            return Err(format!(
                "unexpected {rest:?} after an option; separate options with commas"
            ));
        };
        if after.is_empty() {
            return Err("options end with a comma".to_owned());
        }
        rest = after;
    }
    if let (Some(after), Some(before)) = (&entry.valid_after, &entry.valid_before)
        && before.at <= after.at
    {
        return Err(format!(
            "valid-before=\"{}\" is not after valid-after=\"{}\"",
            before.written, after.written
        ));
    }
    Ok(())
}

/// `text` without a case-insensitive ASCII `prefix`.
fn strip_prefix_ci<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// What follows `name=` (name case-insensitive).
fn option_value<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    strip_prefix_ci(text, name)?.strip_prefix('=')
}

/// A double-quoted value at the start of `text` (`\"` for a quote inside, as
/// OpenSSH `opt_dequote`) and what follows it.
fn dequote<'a>(text: &'a str, name: &str) -> Result<(String, &'a str), String> {
    let Some(body) = text.strip_prefix('"') else {
        return Err(format!(
            "the value of {name} must be in double quotes, e.g. {name}=\"…\""
        ));
    };
    let mut value = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' if body[i + 1..].starts_with('"') => {
                value.push('"');
                chars.next();
            }
            '"' => return Ok((value, &body[i + 1..])),
            _ => value.push(c),
        }
    }
    Err(format!("the value of {name} has no closing quote"))
}

/// A TIME of `valid-after` / `valid-before` (OpenSSH `parse_absolute_time`).
fn parse_bound(value: &str, name: &str) -> Result<Bound, String> {
    let bad = |why: &str| {
        format!(
            "{name}=\"{value}\" is not a valid time ({why}); use YYYYMMDD, YYYYMMDDHHMM or YYYYMMDDHHMMSS, with Z for UTC"
        )
    };
    let (digits, utc) = if let Some(d) = value
        .strip_suffix('Z')
        .or_else(|| value.strip_suffix('z'))
        .filter(|d| !d.is_empty())
    {
        (d, true)
    } else if let Some(d) = strip_suffix_ci(value, "UTC").filter(|d| !d.is_empty()) {
        (d, true)
    } else {
        (value, false)
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("only digits, then an optional Z"));
    }
    let field = |range: std::ops::Range<usize>| -> u32 {
        digits.get(range).and_then(|s| s.parse().ok()).unwrap_or(0)
    };
    let (hour, minute, second) = match digits.len() {
        8 => (0, 0, 0),
        12 => (field(8..10), field(10..12), 0),
        14 => (field(8..10), field(10..12), field(12..14)),
        _ => return Err(bad("8, 12 or 14 digits")),
    };
    let year = digits
        .get(0..4)
        .and_then(|s| s.parse::<i32>().ok())
        .unwrap_or(0);
    let naive: NaiveDateTime = NaiveDate::from_ymd_opt(year, field(4..6), field(6..8))
        .and_then(|d| d.and_hms_opt(hour, minute, second))
        .ok_or_else(|| bad("no such date or time"))?;
    let at = if utc {
        naive.and_utc().timestamp()
    } else {
        chrono::Local
            .from_local_datetime(&naive)
            .earliest()
            .ok_or_else(|| bad("that local time does not exist (DST gap)"))?
            .timestamp()
    };
    // OpenSSH rejects times at or before the epoch (0 means "unset" there).
    if at <= 0 {
        return Err(bad("not after 1970-01-01"));
    }
    Ok(Bound {
        at,
        written: value.to_owned(),
    })
}

/// `text` without a case-insensitive ASCII `suffix`.
fn strip_suffix_ci<'a>(text: &'a str, suffix: &str) -> Option<&'a str> {
    let cut = text.len().checked_sub(suffix.len())?;
    let tail = text.get(cut..)?;
    tail.eq_ignore_ascii_case(suffix).then(|| &text[..cut])
}

#[cfg(test)]
mod tests {
    use super::{parse_bound, principals_token};

    #[test]
    fn times() {
        assert_eq!(
            parse_bound("20240102Z", "valid-after").unwrap().at,
            1_704_153_600
        );
        assert_eq!(parse_bound("202401020304Z", "x").unwrap().at, 1_704_164_640);
        assert_eq!(
            parse_bound("20240102030405UTC", "x").unwrap().at,
            1_704_164_645
        );
        assert!(parse_bound("2024010", "x").is_err());
        assert!(parse_bound("20241301Z", "x").is_err());
        assert!(parse_bound("20240230Z", "x").is_err());
        assert!(parse_bound("2024-01-02", "x").is_err());
        assert!(parse_bound("Z", "x").is_err());
        assert!(parse_bound("19700101Z", "x").is_err());
    }

    #[test]
    fn crlf_lines_and_trailing_comments_parse() {
        let key = ssh_key::PublicKey::from(ssh_key::public::KeyData::Ed25519(
            ssh_key::public::Ed25519PublicKey([7; 32]),
        ));
        let line = key.to_openssh().unwrap();
        let text = format!("# c\r\n\r\nalice {line} laptop # not a comment\r\nbob\t{line}\r\n");
        let signers = super::AllowedSigners::parse(&text, "f").unwrap();
        assert_eq!(signers.len(), 2);
        let principals = signers.principals_for(&key, "git", 1).unwrap();
        assert_eq!(principals, vec!["alice", "bob"]);
    }

    #[test]
    fn quoted_principals() {
        let (p, rest) = principals_token("\"a b\" ssh-ed25519 AAAA").unwrap();
        assert_eq!((p.as_str(), rest), ("a b", "ssh-ed25519 AAAA"));
        let (p, rest) = principals_token("x\"a b\"\tssh").unwrap();
        assert_eq!((p.as_str(), rest), ("xa b", "ssh"));
        assert!(principals_token("\"a b ssh").is_err());
        assert!(principals_token("alone").is_err());
    }
}
