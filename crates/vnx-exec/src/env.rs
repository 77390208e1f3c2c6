//! The child's environment, built explicitly.

use std::collections::BTreeMap;
use std::ffi::OsString;

/// Where a child's environment starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EnvBase {
    /// vnx's own environment, all of it (then removals, then sets).
    #[default]
    Inherit,
    /// Only the variables of vnx's environment that [`ChildEnv::keep`] or
    /// [`ChildEnv::keep_prefixes`] name (then removals, then sets): how
    /// workers and command gates are started, so that a credential vnx holds
    /// reaches them only when it is asked for.
    AllowList,
    /// Nothing: only the sets.
    Empty,
}

/// The child's environment: a base, minus removals, plus sets — applied in
/// that order, so a variable both removed and set ends up set.
///
/// Removals are how credentials that must never reach a worker (an
/// `ANTHROPIC_API_KEY` in subscription mode, `CLAUDECODE` from an enclosing
/// session) are kept out even when an allow-list would pass them; every lane
/// passes exactly [`ChildEnv::resolve`]'s result to the child and nothing else.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChildEnv {
    /// What to start from.
    pub base: EnvBase,
    /// With [`EnvBase::AllowList`]: names of vnx's variables passed on (exact,
    /// case-sensitive). Ignored by the other bases.
    pub keep: Vec<String>,
    /// With [`EnvBase::AllowList`]: name prefixes of vnx's variables passed
    /// on, e.g. `LC_`. Ignored by the other bases.
    pub keep_prefixes: Vec<String>,
    /// Variable names to remove from the base (exact, case-sensitive).
    pub remove: Vec<String>,
    /// Name prefixes to remove from the base, e.g. `CLAUDE_CODE_`.
    pub remove_prefixes: Vec<String>,
    /// Variables to set, in order (a later entry wins).
    pub set: Vec<(String, String)>,
}

impl ChildEnv {
    /// An [`EnvBase::AllowList`] environment passing vnx's variables named
    /// in `keep` or starting with one of `keep_prefixes`.
    pub fn allow_list<K, P>(keep: K, keep_prefixes: P) -> Self
    where
        K: IntoIterator,
        K::Item: Into<String>,
        P: IntoIterator,
        P::Item: Into<String>,
    {
        ChildEnv {
            base: EnvBase::AllowList,
            keep: keep.into_iter().map(Into::into).collect(),
            keep_prefixes: keep_prefixes.into_iter().map(Into::into).collect(),
            ..ChildEnv::default()
        }
    }

    /// Adds a variable to set.
    pub fn set(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.set.push((key.into(), value.into()));
        self
    }

    /// Adds a variable name to remove.
    pub fn remove(mut self, key: impl Into<String>) -> Self {
        self.remove.push(key.into());
        self
    }

    /// The environment for the child, computed from `parent` (the caller
    /// passes `std::env::vars_os()`; tests pass a fixed list). Sorted by name.
    pub fn resolve<I>(&self, parent: I) -> Vec<(OsString, OsString)>
    where
        I: IntoIterator<Item = (OsString, OsString)>,
    {
        let mut out: BTreeMap<OsString, OsString> = BTreeMap::new();
        if self.base != EnvBase::Empty {
            for (k, v) in parent {
                if self.inherits(&k) {
                    out.insert(k, v);
                }
            }
        }
        for (k, v) in &self.set {
            out.insert(OsString::from(k), OsString::from(v));
        }
        out.into_iter().collect()
    }

    /// [`ChildEnv::resolve`] on vnx's own environment.
    pub fn resolve_current(&self) -> Vec<(OsString, OsString)> {
        self.resolve(std::env::vars_os())
    }

    /// Whether a variable of the parent named `name` reaches the child from
    /// the base (sets aside: a set variable always does).
    pub fn inherits(&self, name: &std::ffi::OsStr) -> bool {
        let Some(name) = name.to_str() else {
            // A non-UTF-8 name cannot be named by an allow-list or a removal:
            // kept only when everything is.
            return self.base == EnvBase::Inherit;
        };
        let base = match self.base {
            EnvBase::Inherit => true,
            EnvBase::AllowList => {
                self.keep.iter().any(|k| k == name)
                    || self
                        .keep_prefixes
                        .iter()
                        .any(|p| name.starts_with(p.as_str()))
            }
            EnvBase::Empty => false,
        };
        base && !self.remove.iter().any(|r| r == name)
            && !self
                .remove_prefixes
                .iter()
                .any(|p| name.starts_with(p.as_str()))
    }

    /// The names of `parent`'s variables that the child does not receive
    /// (neither inherited nor set), sorted: what `vnx doctor` reports as
    /// withheld. Names only, never values.
    pub fn withheld<I>(&self, parent: I) -> Vec<String>
    where
        I: IntoIterator<Item = (OsString, OsString)>,
    {
        let mut names: Vec<String> = parent
            .into_iter()
            .filter(|(k, _)| !self.inherits(k) && !self.set.iter().any(|(s, _)| k == s.as_str()))
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parent() -> Vec<(OsString, OsString)> {
        [
            ("PATH", "/bin"),
            ("SECRET", "x"),
            ("CLAUDE_CODE_A", "1"),
            ("HOME", "/h"),
        ]
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect()
    }

    #[test]
    fn removes_then_sets() {
        let env = ChildEnv {
            remove: vec!["SECRET".into(), "HOME".into()],
            remove_prefixes: vec!["CLAUDE_CODE_".into()],
            ..ChildEnv::default()
        }
        .set("HOME", "/tmp/h")
        .set("NEW", "v");
        let got = env.resolve(parent());
        let names: Vec<_> = got.iter().map(|(k, _)| k.to_str().unwrap()).collect();
        assert_eq!(names, ["HOME", "NEW", "PATH"]);
        assert_eq!(got[0].1, "/tmp/h");
    }

    #[test]
    fn allow_list_passes_only_what_it_names_and_removals_still_win() {
        let env = ChildEnv {
            remove: vec!["CLAUDE_CODE_A".into()],
            ..ChildEnv::allow_list(["PATH", "SECRET_NOT"], ["CLAUDE_"])
        }
        .set("NEW", "v");
        let got = env.resolve(parent());
        let names: Vec<_> = got.iter().map(|(k, _)| k.to_str().unwrap()).collect();
        assert_eq!(names, ["NEW", "PATH"]);
        assert_eq!(env.withheld(parent()), ["CLAUDE_CODE_A", "HOME", "SECRET"]);
    }

    #[test]
    fn empty_base_has_only_sets() {
        let env = ChildEnv {
            base: EnvBase::Empty,
            ..ChildEnv::default()
        }
        .set("A", "b");
        assert_eq!(
            env.resolve(parent()),
            vec![(OsString::from("A"), OsString::from("b"))]
        );
    }
}
