//! OpenSSH patterns (ssh_config(5) "PATTERNS"; OpenSSH `match.c`), as used
//! by allowed_signers for principals and `namespaces="…"`.

/// The result of matching a name against a comma-separated pattern list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListMatch {
    /// No pattern matched.
    None,
    /// A positive pattern matched and no negated one did.
    Positive,
    /// A negated (`!`) pattern matched: the name is excluded whatever else matches.
    Negated,
}

/// Whether `name` matches the single pattern `pattern`: `*` matches any run
/// of bytes (also none), `?` exactly one byte, anything else itself
/// (case-sensitive, byte-wise, as OpenSSH's `match_pattern`).
pub(crate) fn matches(name: &str, pattern: &str) -> bool {
    let (s, p) = (name.as_bytes(), pattern.as_bytes());
    // Iterative glob with one backtrack point: linear-ish, never exponential
    // on patterns with many `*`, and the same answers as OpenSSH's recursion.
    let (mut si, mut pi) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            si += 1;
            pi += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Matches `name` against a comma-separated list of patterns, each optionally
/// negated with a leading `!` (OpenSSH `match_pattern_list` without case
/// folding): a matching negated pattern wins over any positive one.
pub(crate) fn match_list(name: &str, list: &str) -> ListMatch {
    let mut positive = false;
    for sub in list.split(',') {
        let (negated, pattern) = match sub.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, sub),
        };
        if matches(name, pattern) {
            if negated {
                return ListMatch::Negated;
            }
            positive = true;
        }
    }
    if positive {
        ListMatch::Positive
    } else {
        ListMatch::None
    }
}

#[cfg(test)]
mod tests {
    use super::{ListMatch, match_list, matches};

    #[test]
    fn single_patterns() {
        assert!(matches("alice@example.com", "*@example.com"));
        assert!(matches("alice@example.com", "alice@example.com"));
        assert!(matches("bob", "b?b"));
        assert!(matches("", "*"));
        assert!(matches("abc", "a*b*c"));
        assert!(matches("aXbYc", "a*b*c"));
        assert!(!matches("ab", "a*b*c"));
        assert!(!matches("Alice@example.com", "alice@*"));
        assert!(!matches("alice@example.com", "*@example.org"));
        assert!(!matches("bb", "b?b"));
        assert!(matches("vnx-ledger", "vnx-*"));
        // Pathological pattern stays fast.
        let pattern = format!("{}b", "*a".repeat(30));
        assert!(!matches(&"a".repeat(200), &pattern));
    }

    #[test]
    fn lists_and_negation() {
        assert_eq!(match_list("git", "git,file"), ListMatch::Positive);
        assert_eq!(match_list("vnx-ledger", "git,file"), ListMatch::None);
        assert_eq!(
            match_list("mallory@example.com", "!mallory@example.com,*@example.com"),
            ListMatch::Negated
        );
        assert_eq!(
            match_list("alice@example.com", "!mallory@example.com,*@example.com"),
            ListMatch::Positive
        );
        assert_eq!(match_list("x", "!y"), ListMatch::None);
    }
}
