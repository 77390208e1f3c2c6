//! The child's environment, built explicitly.

use std::collections::BTreeMap;
use std::ffi::OsString;

/// Where a child's environment starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EnvBase {
    /// vnx's own environment (then removals, then sets).
    #[default]
    Inherit,
    /// Nothing: only the sets.
    Empty,
}

/// The child's environment: a base, minus removals, plus sets — applied in
/// that order, so a variable both removed and set ends up set.
///
/// Removals are how credentials that must never reach a worker (an
/// `ANTHROPIC_API_KEY` in subscription mode, `CLAUDECODE` from an enclosing
/// session) are kept out; every lane passes exactly [`ChildEnv::resolve`]'s
/// result to the child and nothing else.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChildEnv {
    /// What to start from.
    pub base: EnvBase,
    /// Variable names to remove from the base (exact, case-sensitive).
    pub remove: Vec<String>,
    /// Name prefixes to remove from the base, e.g. `CLAUDE_CODE_`.
    pub remove_prefixes: Vec<String>,
    /// Variables to set, in order (a later entry wins).
    pub set: Vec<(String, String)>,
}

impl ChildEnv {
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
        if self.base == EnvBase::Inherit {
            for (k, v) in parent {
                if self.is_removed(&k) {
                    continue;
                }
                out.insert(k, v);
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

    fn is_removed(&self, key: &OsString) -> bool {
        let Some(key) = key.to_str() else {
            // A non-UTF-8 name cannot be named by a removal; keep it.
            return false;
        };
        self.remove.iter().any(|r| r == key)
            || self
                .remove_prefixes
                .iter()
                .any(|p| key.starts_with(p.as_str()))
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
