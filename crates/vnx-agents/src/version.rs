//! CLI versions: the range each adapter is tested against, and parsing of
//! `--version` output.

use std::fmt;

use serde::Serialize;

use crate::config::ProviderKind;

/// A `major.minor.x` range of CLI versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct VersionRange {
    /// Major version.
    pub major: u64,
    /// Minor version; any patch matches.
    pub minor: u64,
}

impl VersionRange {
    /// Whether `version` lies in this range.
    pub fn contains(&self, version: &CliVersion) -> bool {
        version.major == self.major && version.minor == self.minor
    }
}

impl fmt::Display for VersionRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.x", self.major, self.minor)
    }
}

/// Claude Code versions the claude adapter is tested with (fixtures from 2.1.197 and 2.1.330).
pub const CLAUDE_VERSIONS: VersionRange = VersionRange { major: 2, minor: 1 };
/// Codex CLI versions the codex adapter is tested with.
pub const CODEX_VERSIONS: VersionRange = VersionRange {
    major: 0,
    minor: 169,
};
/// Gemini CLI versions the gemini adapter is tested with.
pub const GEMINI_VERSIONS: VersionRange = VersionRange {
    major: 0,
    minor: 61,
};

/// The tested range of a provider kind; `None` for `command` providers.
pub fn tested_range(kind: ProviderKind) -> Option<VersionRange> {
    match kind {
        ProviderKind::Claude => Some(CLAUDE_VERSIONS),
        ProviderKind::Codex => Some(CODEX_VERSIONS),
        ProviderKind::Gemini => Some(GEMINI_VERSIONS),
        ProviderKind::Command => None,
    }
}

/// A CLI version `major.minor.patch` (pre-release and build suffixes ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct CliVersion {
    /// Major.
    pub major: u64,
    /// Minor.
    pub minor: u64,
    /// Patch.
    pub patch: u64,
}

impl fmt::Display for CliVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The first `N.N.N` in `--version` output: `2.1.330 (Claude Code)`,
/// `codex-cli 0.169.0`, `0.61.0`.
pub fn parse_version(text: &str) -> Option<CliVersion> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .find_map(|token| {
            let mut parts = token.trim_matches('.').split('.');
            let major = parts.next()?.parse().ok()?;
            let minor = parts.next()?.parse().ok()?;
            let patch = parts.next()?.parse().ok()?;
            Some(CliVersion {
                major,
                minor,
                patch,
            })
        })
}

/// The result of comparing a CLI's `--version` output with its tested range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum VersionCheck {
    /// Within the tested range.
    InRange {
        /// Parsed version.
        version: CliVersion,
    },
    /// Outside it: the caller warns, naming the range.
    OutOfRange {
        /// Parsed version.
        version: CliVersion,
        /// Tested range.
        range: VersionRange,
    },
    /// No version could be read from the output.
    Unparseable,
    /// The provider has no tested range (`command`).
    Untested,
}

impl VersionCheck {
    /// A warning to show, if any, e.g. `claude 2.2.0 is outside the tested range 2.1.x`.
    pub fn warning(&self, kind: ProviderKind) -> Option<String> {
        match self {
            VersionCheck::InRange { .. } | VersionCheck::Untested => None,
            VersionCheck::OutOfRange { version, range } => Some(format!(
                "{} {version} is outside the tested range {range}; its output format may differ",
                kind.name()
            )),
            VersionCheck::Unparseable => Some(format!(
                "could not read the {} version from `--version`; tested range is {}",
                kind.name(),
                tested_range(kind).map_or_else(|| "none".to_owned(), |r| r.to_string())
            )),
        }
    }
}

/// Compares `--version` output of a `kind` CLI with its tested range.
pub fn check_version(kind: ProviderKind, version_output: &str) -> VersionCheck {
    let Some(range) = tested_range(kind) else {
        return VersionCheck::Untested;
    };
    match parse_version(version_output) {
        None => VersionCheck::Unparseable,
        Some(version) if range.contains(&version) => VersionCheck::InRange { version },
        Some(version) => VersionCheck::OutOfRange { version, range },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_cli() {
        let v = |major, minor, patch| CliVersion {
            major,
            minor,
            patch,
        };
        assert_eq!(parse_version("2.1.330 (Claude Code)"), Some(v(2, 1, 330)));
        assert_eq!(parse_version("codex-cli 0.169.0\n"), Some(v(0, 169, 0)));
        assert_eq!(parse_version("0.61.0"), Some(v(0, 61, 0)));
        assert_eq!(parse_version("0.62.0-nightly.20261120"), Some(v(0, 62, 0)));
        assert_eq!(parse_version("no version here"), None);
        assert_eq!(parse_version("1.2"), None);
    }

    #[test]
    fn checks_ranges() {
        assert!(matches!(
            check_version(ProviderKind::Claude, "2.1.330 (Claude Code)"),
            VersionCheck::InRange { .. }
        ));
        let out = check_version(ProviderKind::Codex, "codex-cli 0.170.1");
        assert_eq!(
            out.warning(ProviderKind::Codex).unwrap(),
            "codex 0.170.1 is outside the tested range 0.169.x; its output format may differ"
        );
        assert_eq!(
            check_version(ProviderKind::Gemini, "garbage"),
            VersionCheck::Unparseable
        );
        assert_eq!(
            check_version(ProviderKind::Command, "1.0.0"),
            VersionCheck::Untested
        );
    }
}
