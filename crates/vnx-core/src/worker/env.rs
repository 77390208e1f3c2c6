//! The environment a worker sees: where it starts from, and the conversion of
//! `vnx-agents`' invocation (sets and removals) into `vnx-exec`'s [`ChildEnv`].

use vnx_exec::{ChildEnv, EnvBase};

/// Where the worker's environment comes from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum EnvSource {
    /// vnx's own process environment (the normal case).
    #[default]
    Inherit,
    /// Exactly these variables, as if they were vnx's environment: the auth
    /// guard checks them, `PATH` among them is where binaries are looked up,
    /// and the child gets them minus the guard's removals. Tests use this to
    /// stay hermetic (the process environment cannot be changed safely).
    Fixed(Vec<(String, String)>),
}

impl EnvSource {
    /// The variables the auth guard checks, as `(name, value)` pairs.
    pub(crate) fn vars(&self) -> Vec<(String, String)> {
        match self {
            EnvSource::Inherit => std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
            EnvSource::Fixed(vars) => vars.clone(),
        }
    }

    /// The value of `name`, if set.
    pub(crate) fn get(&self, name: &str) -> Option<String> {
        match self {
            EnvSource::Inherit => std::env::var(name).ok(),
            EnvSource::Fixed(vars) => vars
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone()),
        }
    }
}

/// The child's environment: the source's variables that `inv.env_pass`
/// allows (the worker's allow-list: base, its CLI's variables, `[worker]
/// pass_env`), minus `inv.env_remove`, plus `inv.env` (the provider's `env`
/// table). `drop_extra` names more variables to leave out (the tmux lane
/// drops `TERM` so tmux sets its own).
pub(crate) fn child_env(
    source: &EnvSource,
    inv: &vnx_agents::Invocation,
    drop_extra: &[&str],
) -> ChildEnv {
    let mut remove = inv.env_remove.clone();
    remove.extend(drop_extra.iter().map(|s| (*s).to_owned()));
    let mut env = ChildEnv {
        remove,
        ..ChildEnv::allow_list(inv.env_pass.names.clone(), inv.env_pass.prefixes.clone())
    };
    match source {
        EnvSource::Inherit => env.set.clone_from(&inv.env),
        EnvSource::Fixed(vars) => {
            // The fixed list stands in for vnx's environment: filtered the
            // same way, then set on an empty base.
            env.set = vars
                .iter()
                .filter(|(k, _)| env.inherits(std::ffi::OsStr::new(k)))
                .cloned()
                .collect();
            env.set.extend(inv.env.iter().cloned());
            env.base = EnvBase::Empty;
        }
    }
    env
}

/// The value of `name` the child will see.
pub(crate) fn child_var(env: &ChildEnv, source: &EnvSource, name: &str) -> Option<String> {
    if let Some((_, v)) = env.set.iter().rev().find(|(k, _)| k == name) {
        return Some(v.clone());
    }
    if env.base != EnvBase::Empty && env.inherits(std::ffi::OsStr::new(name)) {
        return source.get(name);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use vnx_agents::OutputFormat;

    fn inv() -> vnx_agents::Invocation {
        vnx_agents::Invocation {
            program: "claude".into(),
            args: Vec::new(),
            env: vec![("CLAUDE_CODE_MAX_RETRIES".into(), "0".into())],
            env_pass: vnx_agents::worker_env_allow_list(
                vnx_agents::ProviderKind::Claude,
                &["MINE"],
            ),
            env_remove: vec!["ANTHROPIC_API_KEY".into(), "CLAUDECODE".into()],
            stdin: None,
            cwd: PathBuf::from("/"),
            output: OutputFormat::ClaudeStreamJson,
            warnings: Vec::new(),
        }
    }

    #[test]
    fn fixed_source_drops_removed_and_adds_config_env() {
        let source = EnvSource::Fixed(vec![
            ("HOME".into(), "/h".into()),
            ("ANTHROPIC_API_KEY".into(), "sk-ant-x".into()),
            ("CLAUDECODE".into(), "1".into()),
            ("TERM".into(), "dumb".into()),
            ("GITHUB_TOKEN".into(), "gh".into()),
            ("MINE".into(), "passed".into()),
        ]);
        let env = child_env(&source, &inv(), &["TERM"]);
        let resolved = env.resolve(Vec::new());
        let names: Vec<_> = resolved
            .iter()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["CLAUDE_CODE_MAX_RETRIES", "HOME", "MINE"]);
        assert_eq!(child_var(&env, &source, "HOME").as_deref(), Some("/h"));
        assert_eq!(child_var(&env, &source, "ANTHROPIC_API_KEY"), None);
        assert_eq!(child_var(&env, &source, "GITHUB_TOKEN"), None);
    }

    #[test]
    fn inherit_source_passes_only_the_allow_list() {
        let env = child_env(&EnvSource::Inherit, &inv(), &[]);
        assert_eq!(env.base, EnvBase::AllowList);
        assert!(env.remove.iter().any(|r| r == "ANTHROPIC_API_KEY"));
        let resolved = env.resolve(vec![
            ("ANTHROPIC_API_KEY".into(), "k".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "k".into()),
            ("PATH".into(), "/bin".into()),
        ]);
        let names: Vec<_> = resolved
            .iter()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["CLAUDE_CODE_MAX_RETRIES", "PATH"]);
    }
}
