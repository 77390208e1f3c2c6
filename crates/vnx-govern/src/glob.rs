//! Path globs for forbidden paths, compiled to regular expressions.

use regex::Regex;

/// A compiled path pattern.
///
/// - `*` matches within one path component, `?` one character, `[…]` a class,
///   `**` any number of components;
/// - a pattern without `/` matches any component (`.env`, `*.pem`, `node_modules`);
/// - a pattern with `/` is anchored at the repository root and also matches
///   everything under a matching directory (`ledger/` = `ledger/**`).
#[derive(Debug, Clone)]
pub struct PathGlob {
    pattern: String,
    re: Regex,
}

impl PathGlob {
    /// Compiles `pattern`.
    ///
    /// # Errors
    /// A message naming the pattern when it is empty or its class is malformed.
    pub fn new(pattern: &str) -> Result<PathGlob, String> {
        let p = pattern.trim();
        if p.is_empty() {
            return Err("empty forbidden-path pattern".to_owned());
        }
        let anchored = p.trim_end_matches('/').contains('/');
        let body = p.trim_start_matches('/').trim_end_matches('/');
        let mut re = String::from(if anchored { "^" } else { "(?:^|/)" });
        let chars: Vec<char> = body.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            match c {
                '*' if chars.get(i + 1) == Some(&'*') => {
                    i += 1;
                    if chars.get(i + 1) == Some(&'/') {
                        i += 1;
                        re.push_str("(?:.*/)?");
                    } else {
                        re.push_str(".*");
                    }
                }
                '*' => re.push_str("[^/]*"),
                '?' => re.push_str("[^/]"),
                '[' => {
                    let close = chars[i + 1..]
                        .iter()
                        .position(|c| *c == ']')
                        .map(|o| i + 1 + o);
                    let Some(close) = close else {
                        return Err(format!("pattern {pattern:?}: unclosed '['"));
                    };
                    let mut class: String = chars[i + 1..close].iter().collect();
                    if let Some(rest) = class.strip_prefix('!') {
                        class = format!("^{rest}");
                    }
                    re.push('[');
                    re.push_str(&class.replace('\\', "\\\\").replace('[', "\\["));
                    re.push(']');
                    i = close;
                }
                c => re.push_str(&regex::escape(&c.to_string())),
            }
            i += 1;
        }
        re.push_str("(?:/.*)?$");
        let re = Regex::new(&re).map_err(|e| format!("pattern {pattern:?}: {e}"))?;
        Ok(PathGlob {
            pattern: pattern.to_owned(),
            re,
        })
    }

    /// Whether the repository-relative `path` (with `/` separators) matches.
    pub fn is_match(&self, path: &str) -> bool {
        self.re.is_match(path.trim_start_matches("./"))
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, path: &str) -> bool {
        PathGlob::new(p).unwrap().is_match(path)
    }

    #[test]
    fn globs() {
        assert!(m(".env", ".env"));
        assert!(m(".env", "app/.env"));
        assert!(!m(".env", ".env.example"));
        assert!(m("*.pem", "certs/server.pem"));
        assert!(m("ledger/", "ledger/a.ndjson"));
        assert!(m("ledger", "ledger/a.ndjson"));
        assert!(!m("ledger/", "docs/ledger.md"));
        assert!(m("/.github/workflows/*", ".github/workflows/ci.yml"));
        assert!(!m(".github/workflows/*.yml", "x/.github/workflows/ci.yml"));
        assert!(m("src/**/secret_*.rs", "src/a/b/secret_x.rs"));
        assert!(m("src/**/secret_*.rs", "src/secret_x.rs"));
        assert!(m("file?.[ch]", "dir/file1.c"));
        assert!(!m("file?.[!ch]", "file1.c"));
        assert!(PathGlob::new("a[b").is_err());
        assert!(PathGlob::new(" ").is_err());
    }
}
