//! Turning a [`DispatchRequest`] into a concrete [`Invocation`] of one CLI.
//!
//! Argv is always an array, never a shell string, and the prompt never lands
//! in it: it goes to stdin (claude `-p` reads stdin; codex `exec -` reads
//! stdin; gemini prepends stdin to the `-p` text, so vnx passes `-p ""`), or,
//! on the tmux lane, as the text the lane pastes into the terminal.
//!
//! Checked against the pinned CLIs (claude 2.1.330, codex 0.169.0, gemini
//! 0.61.0) with a loopback mock model: every flag combination built here is
//! accepted; claude `--resume=<id>` and gemini `-r <uuid>` continue the session;
//! codex reads `-` from stdin (also after `resume <id>`); gemini with `-p ""`
//! sends exactly the stdin text as the user message.

use std::path::PathBuf;

use vnx_types::{Billing, Lane};

use crate::auth::{AuthError, EnvAllowList, check_auth, env_to_remove, worker_env_allow_list};
use crate::config::{OutputFormat, Provider, ProviderKind};
use crate::money::format_usd;
use crate::request::{DispatchRequest, PermissionProfile};

/// Read-only tools claude may use in the `read_only` profile when the request
/// allows none explicitly.
pub const CLAUDE_READ_TOOLS: [&str; 3] = ["Read", "Grep", "Glob"];

/// Tools claude is denied in the `read_only` profile.
pub const CLAUDE_WRITE_TOOLS: [&str; 4] = ["Edit", "MultiEdit", "Write", "NotebookEdit"];

/// A fully resolved command to spawn. The exec layer builds the child
/// environment explicitly: the parent's variables that `env_pass` allows,
/// minus `env_remove`, plus `env`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// Program: a path or a name to look up on `PATH`.
    pub program: String,
    /// Arguments, `argv[1..]`.
    pub args: Vec<String>,
    /// Variables to set in the child.
    pub env: Vec<(String, String)>,
    /// Which of the parent's variables the child may inherit
    /// ([`crate::worker_env_allow_list`] with the request's `pass_env`).
    pub env_pass: EnvAllowList,
    /// Variables the child must not inherit, even when `env_pass` allows them.
    pub env_remove: Vec<String>,
    /// The prompt: bytes to write to stdin, then close it (headless and pty
    /// lanes), or the instruction the tmux lane pastes into the interactive
    /// session. `None` only for a `command` provider with `prompt_on_stdin = false`.
    pub stdin: Option<Vec<u8>>,
    /// Working directory.
    pub cwd: PathBuf,
    /// What the worker prints, which selects the parser ([`crate::parser_for`]).
    /// On the tmux lane this is the session transcript, not stdout.
    pub output: OutputFormat,
    /// Request fields this CLI has no flag for (not enforced by the CLI), for
    /// the caller to show or record.
    pub warnings: Vec<String>,
}

/// A request that cannot be turned into an invocation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// The auth guard refused the dispatch.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The provider cannot run on the requested lane.
    #[error(
        "provider `{provider}` cannot run on the {lane:?} lane: use the headless lane (`--lane headless`)"
    )]
    UnsupportedLane {
        /// Provider name.
        provider: String,
        /// Requested lane.
        lane: Lane,
    },
    /// The claude tmux lane needs a pre-assigned session id (the transcript file is named after it).
    #[error(
        "the claude tmux lane needs a pre-assigned session id (a UUID) to find the session transcript; set `session_id` on the request"
    )]
    MissingSessionId,
    /// A `command` template uses `{prompt_file}` but the request has no prompt file.
    #[error(
        "provider `{provider}` passes the prompt as `{{prompt_file}}` but no prompt file was written; write the prompt to a file and set `prompt_file`"
    )]
    MissingPromptFile {
        /// Provider name.
        provider: String,
    },
    /// A `command` template uses a placeholder vnx does not know.
    #[error(
        "provider `{provider}`: unknown placeholder `{{{placeholder}}}` in argv template; known: {{prompt_file}}, {{model}}, {{cwd}}, {{session_id}}, {{resume_session_id}} (write `{{{{` and `}}}}` for literal braces)"
    )]
    UnknownPlaceholder {
        /// Provider name.
        provider: String,
        /// The placeholder's name, without braces.
        placeholder: String,
    },
    /// A `command` template has an unclosed `{` or a stray `}`.
    #[error(
        "provider `{provider}`: malformed argv template argument `{arg}`: close every `{{` or double it for a literal brace"
    )]
    MalformedTemplate {
        /// Provider name.
        provider: String,
        /// The argument.
        arg: String,
    },
}

/// Builds the invocation of `provider` for `req`, after the auth guard has
/// checked `parent_env` (e.g. `std::env::vars()`) and the provider's own `env`.
///
/// # Errors
/// [`BuildError::Auth`] when subscription billing meets an API key; lane,
/// session-id and `command` template errors as documented on [`BuildError`].
pub fn build_invocation<I, K, V>(
    provider: &Provider,
    req: &DispatchRequest,
    parent_env: I,
) -> Result<Invocation, BuildError>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: AsRef<str>,
{
    let config_env = provider
        .config
        .env
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()));
    let env = parent_env
        .into_iter()
        .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned()))
        .chain(config_env);
    check_auth(provider.kind, req.billing, env)?;
    let env_remove = env_to_remove(provider.kind, req.billing);
    // The provider's own `env` table is set after the removals, so a billing
    // variable in it would slip past them: it is left out, with a warning.
    let mut env = Vec::new();
    let mut dropped = Vec::new();
    for (k, v) in &provider.config.env {
        if env_remove.contains(k) {
            dropped.push(k.clone());
        } else {
            env.push((k.clone(), v.clone()));
        }
    }
    let mut inv = Invocation {
        program: provider.program(),
        args: Vec::new(),
        env,
        env_pass: worker_env_allow_list(provider.kind, &req.pass_env),
        env_remove,
        stdin: Some(req.prompt.as_bytes().to_vec()),
        cwd: req.cwd.clone(),
        output: provider.output_format(),
        warnings: Vec::new(),
    };
    for name in dropped {
        inv.warnings.push(format!(
            "providers.{}.env sets {name}: not passed to the worker in {} billing mode",
            provider.name,
            match req.billing {
                Billing::Subscription => "subscription",
                Billing::Api => "api",
            }
        ));
    }
    let model = req
        .model
        .clone()
        .or_else(|| provider.config.default_model.clone());
    match provider.kind {
        ProviderKind::Claude if req.lane == Lane::Tmux => {
            claude_tmux(&mut inv, req, model.as_deref())?;
        }
        ProviderKind::Claude => claude_headless(&mut inv, req, model.as_deref()),
        _ if req.lane == Lane::Tmux => {
            return Err(BuildError::UnsupportedLane {
                provider: provider.name.clone(),
                lane: req.lane,
            });
        }
        ProviderKind::Codex => codex(&mut inv, req, model.as_deref()),
        ProviderKind::Gemini => gemini(&mut inv, req, model.as_deref()),
        ProviderKind::Command => {
            command(&mut inv, provider, req, model.as_deref())?;
        }
    }
    if provider.kind != ProviderKind::Command {
        inv.args.extend(provider.config.extra_args.iter().cloned());
        inv.args.extend(req.extra_args.iter().cloned());
        if provider.kind == ProviderKind::Codex {
            // The positional prompt (and `resume <id>`) must come after every flag.
            codex_tail(&mut inv, req);
        }
    }
    Ok(inv)
}

fn push(args: &mut Vec<String>, items: &[&str]) {
    args.extend(items.iter().map(|s| (*s).to_owned()));
}

fn unsupported(inv: &mut Invocation, cli: &str, what: &str) {
    inv.warnings.push(format!(
        "{cli} has no flag for {what}; not enforced by the CLI"
    ));
}

/// The claude `--permission-mode` of a profile. Headless: `default` for
/// `read_only` (no one can approve a prompt in `-p`, so unlisted tools are
/// denied). Tmux: `dontAsk`, which denies instead of prompting, so a read-only
/// session never blocks on a permission dialog.
fn claude_permission_mode(profile: PermissionProfile, lane: Lane) -> &'static str {
    match (profile, lane) {
        (PermissionProfile::ReadOnly, Lane::Tmux) => "dontAsk",
        (PermissionProfile::ReadOnly, _) => "default",
        (PermissionProfile::Edit, _) => "acceptEdits",
        (PermissionProfile::Full, _) => "bypassPermissions",
    }
}

fn claude_tools(inv: &mut Invocation, req: &DispatchRequest) {
    let mut allowed: Vec<String> = req.allowed_tools.clone();
    if allowed.is_empty() && req.permission == PermissionProfile::ReadOnly {
        allowed = CLAUDE_READ_TOOLS.iter().map(|t| (*t).to_owned()).collect();
    }
    // `--allowedTools <tools...>` is variadic: the `=` form keeps it to one argv element.
    if !allowed.is_empty() {
        inv.args
            .push(format!("--allowedTools={}", allowed.join(",")));
    }
    if req.permission == PermissionProfile::ReadOnly {
        inv.args.push(format!(
            "--disallowedTools={}",
            CLAUDE_WRITE_TOOLS.join(",")
        ));
    }
}

fn claude_session(inv: &mut Invocation, req: &DispatchRequest) {
    if let Some(id) = &req.resume_session_id {
        inv.args.push(format!("--resume={id}"));
        if req.session_id.is_some() {
            inv.warnings
                .push("both session_id and resume_session_id set: resuming, the pre-assigned id is ignored".to_owned());
        }
    } else if let Some(id) = &req.session_id {
        push(&mut inv.args, &["--session-id", id]);
    }
}

/// `claude -p --output-format stream-json --verbose …`, prompt on stdin.
fn claude_headless(inv: &mut Invocation, req: &DispatchRequest, model: Option<&str>) {
    push(
        &mut inv.args,
        &["-p", "--output-format", "stream-json", "--verbose"],
    );
    if let Some(model) = model {
        push(&mut inv.args, &["--model", model]);
    }
    if let Some(turns) = req.max_turns {
        push(&mut inv.args, &["--max-turns", &turns.to_string()]);
    }
    if let Some(budget) = req.budget_usd_micros {
        push(&mut inv.args, &["--max-budget-usd", &format_usd(budget)]);
    }
    push(
        &mut inv.args,
        &[
            "--permission-mode",
            claude_permission_mode(req.permission, req.lane),
        ],
    );
    claude_tools(inv, req);
    claude_session(inv, req);
    if let Some(schema) = &req.json_schema {
        push(&mut inv.args, &["--json-schema", schema]);
    }
    if let Some(settings) = &req.settings {
        push(&mut inv.args, &["--settings", settings]);
    }
}

/// Interactive `claude --session-id <uuid> --permission-mode … --settings …`
/// for a tmux window; the lane pastes `stdin` (the prompt) as the instruction,
/// and the caller parses the session transcript.
fn claude_tmux(
    inv: &mut Invocation,
    req: &DispatchRequest,
    model: Option<&str>,
) -> Result<(), BuildError> {
    inv.output = OutputFormat::ClaudeTranscript;
    if req.resume_session_id.is_none() {
        let id = req
            .session_id
            .as_deref()
            .ok_or(BuildError::MissingSessionId)?;
        push(&mut inv.args, &["--session-id", id]);
    } else {
        claude_session(inv, req);
    }
    push(
        &mut inv.args,
        &[
            "--permission-mode",
            claude_permission_mode(req.permission, req.lane),
        ],
    );
    if let Some(settings) = &req.settings {
        push(&mut inv.args, &["--settings", settings]);
    }
    if let Some(model) = model {
        push(&mut inv.args, &["--model", model]);
    }
    claude_tools(inv, req);
    if req.max_turns.is_some() {
        unsupported(inv, "interactive claude", "max turns");
    }
    if req.budget_usd_micros.is_some() {
        unsupported(
            inv,
            "interactive claude",
            "a budget (--max-budget-usd only works with -p)",
        );
    }
    if req.json_schema.is_some() {
        unsupported(
            inv,
            "interactive claude",
            "structured output (--json-schema only works with -p)",
        );
    }
    Ok(())
}

/// `codex exec --json --skip-git-repo-check -C <cwd> -s <sandbox> [-m <model>] … [resume <id>] -`.
fn codex(inv: &mut Invocation, req: &DispatchRequest, model: Option<&str>) {
    let sandbox = match req.permission {
        PermissionProfile::ReadOnly => "read-only",
        PermissionProfile::Edit => "workspace-write",
        PermissionProfile::Full => "danger-full-access",
    };
    let cwd = req.cwd.to_string_lossy().into_owned();
    push(
        &mut inv.args,
        &[
            "exec",
            "--json",
            "--skip-git-repo-check",
            "-C",
            &cwd,
            "-s",
            sandbox,
        ],
    );
    if let Some(model) = model {
        push(&mut inv.args, &["-m", model]);
    }
    match (&req.json_schema_file, &req.json_schema) {
        (Some(file), _) => push(&mut inv.args, &["--output-schema", &file.to_string_lossy()]),
        (None, Some(_)) => inv.warnings.push(
            "codex needs the JSON schema in a file (--output-schema <FILE>) and none was given; structured output not enforced by the CLI"
                .to_owned(),
        ),
        (None, None) => {}
    }
    if req.max_turns.is_some() {
        unsupported(inv, "codex", "max turns");
    }
    if req.budget_usd_micros.is_some() {
        unsupported(inv, "codex", "a budget");
    }
    if !req.allowed_tools.is_empty() {
        unsupported(
            inv,
            "codex",
            "allowed tools (the sandbox mode applies instead)",
        );
    }
    if req.session_id.is_some() && req.resume_session_id.is_none() {
        inv.warnings.push(
            "codex cannot pre-assign a session id; the id comes from its thread.started event"
                .to_owned(),
        );
    }
    if req.settings.is_some() {
        unsupported(inv, "codex", "claude settings");
    }
}

fn codex_tail(inv: &mut Invocation, req: &DispatchRequest) {
    if let Some(id) = &req.resume_session_id {
        push(&mut inv.args, &["resume", id]);
    }
    // `-`: read the prompt from stdin.
    inv.args.push("-".to_owned());
}

/// `gemini -p "" --output-format stream-json --skip-trust --approval-mode … [-m …] [-r|--session-id …]`.
///
/// Gemini reads stdin when it is not a terminal and prepends it to the `-p`
/// text (`<stdin>\n\n<-p text>`), so the prompt goes to stdin and `-p` is empty.
/// `--skip-trust` trusts the dispatch worktree vnx itself created.
fn gemini(inv: &mut Invocation, req: &DispatchRequest, model: Option<&str>) {
    let mode = match req.permission {
        PermissionProfile::ReadOnly => "default",
        PermissionProfile::Edit => "auto_edit",
        PermissionProfile::Full => "yolo",
    };
    push(
        &mut inv.args,
        &[
            "-p",
            "",
            "--output-format",
            "stream-json",
            "--skip-trust",
            "--approval-mode",
            mode,
        ],
    );
    if let Some(model) = model {
        push(&mut inv.args, &["-m", model]);
    }
    if let Some(id) = &req.resume_session_id {
        push(&mut inv.args, &["-r", id]);
    } else if let Some(id) = &req.session_id {
        push(&mut inv.args, &["--session-id", id]);
    }
    if req.max_turns.is_some() {
        unsupported(inv, "gemini", "max turns");
    }
    if req.budget_usd_micros.is_some() {
        unsupported(inv, "gemini", "a budget");
    }
    if !req.allowed_tools.is_empty() {
        unsupported(
            inv,
            "gemini",
            "allowed tools (the approval mode applies instead)",
        );
    }
    if req.json_schema.is_some() || req.json_schema_file.is_some() {
        unsupported(inv, "gemini", "structured output");
    }
    if req.settings.is_some() {
        unsupported(inv, "gemini", "claude settings");
    }
}

/// A `command` provider: argv from the template, prompt on stdin unless disabled.
fn command(
    inv: &mut Invocation,
    provider: &Provider,
    req: &DispatchRequest,
    model: Option<&str>,
) -> Result<(), BuildError> {
    if provider.config.prompt_on_stdin == Some(false) {
        inv.stdin = None;
    }
    let cwd = req.cwd.to_string_lossy().into_owned();
    let prompt_file = req
        .prompt_file
        .as_ref()
        .map(|p| p.to_string_lossy().into_owned());
    let lookup = |name: &str| -> Result<Option<String>, BuildError> {
        match name {
            "prompt_file" => {
                prompt_file
                    .clone()
                    .map(Some)
                    .ok_or_else(|| BuildError::MissingPromptFile {
                        provider: provider.name.clone(),
                    })
            }
            "model" => Ok(model.map(str::to_owned)),
            "cwd" => Ok(Some(cwd.clone())),
            "session_id" => Ok(req.session_id.clone()),
            "resume_session_id" => Ok(req.resume_session_id.clone()),
            other => Err(BuildError::UnknownPlaceholder {
                provider: provider.name.clone(),
                placeholder: other.to_owned(),
            }),
        }
    };
    let mut args: Vec<String> = Vec::new();
    // Whether `args.last()` came from a template literal with no placeholder.
    let mut last_is_literal_flag = false;
    for arg in provider.config.argv.iter().skip(1) {
        let pieces = split_template(arg).ok_or_else(|| BuildError::MalformedTemplate {
            provider: provider.name.clone(),
            arg: arg.clone(),
        })?;
        let mut out = String::new();
        let mut missing = false;
        let mut has_placeholder = false;
        for piece in &pieces {
            match piece {
                Piece::Literal(text) => out.push_str(text),
                Piece::Placeholder(name) => {
                    has_placeholder = true;
                    match lookup(name)? {
                        Some(value) => out.push_str(&value),
                        None => missing = true,
                    }
                }
            }
        }
        if missing {
            let whole = matches!(pieces.as_slice(), [Piece::Placeholder(_)]);
            if whole && last_is_literal_flag {
                args.pop();
            }
            last_is_literal_flag = false;
            continue;
        }
        last_is_literal_flag = !has_placeholder && out.starts_with('-');
        args.push(out);
    }
    args.extend(provider.config.extra_args.iter().cloned());
    args.extend(req.extra_args.iter().cloned());
    inv.args = args;
    Ok(())
}

#[derive(Debug, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Placeholder(String),
}

/// Splits `a{b}c{{d}}` into literal and placeholder pieces; `None` if malformed.
fn split_template(arg: &str) -> Option<Vec<Piece>> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut chars = arg.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                literal.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                literal.push('}');
            }
            '{' => {
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some('{') | None => return None,
                        Some(c) => name.push(c),
                    }
                }
                if !literal.is_empty() {
                    pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                }
                pieces.push(Piece::Placeholder(name));
            }
            '}' => return None,
            c => literal.push(c),
        }
    }
    if !literal.is_empty() || pieces.is_empty() {
        pieces.push(Piece::Literal(literal));
    }
    Some(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_templates() {
        assert_eq!(
            split_template("--model={model}"),
            Some(vec![
                Piece::Literal("--model=".into()),
                Piece::Placeholder("model".into())
            ])
        );
        assert_eq!(
            split_template("{{x}}"),
            Some(vec![Piece::Literal("{x}".into())])
        );
        assert_eq!(
            split_template(""),
            Some(vec![Piece::Literal(String::new())])
        );
        assert_eq!(split_template("{open"), None);
        assert_eq!(split_template("close}"), None);
    }
}
