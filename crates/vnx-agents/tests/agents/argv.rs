//! Request → invocation: exact argv per provider, prompt never in argv.

use std::path::PathBuf;

use vnx_agents::{
    BuildError, ConfigError, DispatchRequest, OutputFormat, PermissionProfile, Provider,
    ProviderKind, ProvidersConfig, build_invocation,
};
use vnx_types::{Billing, Lane};

const NO_ENV: [(&str, &str); 0] = [];

fn req() -> DispatchRequest {
    DispatchRequest::new("Create hello.txt", "/work/wt")
}

fn provider(kind: ProviderKind) -> Provider {
    Provider::builtin(kind)
}

fn args(inv: &vnx_agents::Invocation) -> Vec<&str> {
    inv.args.iter().map(String::as_str).collect()
}

#[test]
fn claude_headless_full_argv() {
    let mut r = req();
    r.model = Some("sonnet".into());
    r.max_turns = Some(12);
    r.budget_usd_micros = Some(2_500_000);
    r.allowed_tools = vec!["Read".into(), "Bash(git diff:*)".into()];
    r.session_id = Some("0b7c1f0e-1111-4222-8333-444455556666".into());
    r.json_schema = Some(r#"{"type":"object"}"#.into());
    r.settings = Some("/tmp/settings.json".into());
    r.extra_args = vec!["--append-system-prompt-file".into(), "/tmp/sys.md".into()];
    let mut p = provider(ProviderKind::Claude);
    p.config.extra_args = vec!["--fallback-model".into(), "haiku".into()];
    let inv = build_invocation(&p, &r, NO_ENV).unwrap();
    assert_eq!(inv.program, "claude");
    assert_eq!(
        args(&inv),
        [
            "-p",
            "--output-format",
            "stream-json",
            "--verbose",
            "--model",
            "sonnet",
            "--max-turns",
            "12",
            "--max-budget-usd",
            "2.5",
            "--permission-mode",
            "acceptEdits",
            "--allowedTools=Read,Bash(git diff:*)",
            "--session-id",
            "0b7c1f0e-1111-4222-8333-444455556666",
            "--json-schema",
            r#"{"type":"object"}"#,
            "--settings",
            "/tmp/settings.json",
            "--fallback-model",
            "haiku",
            "--append-system-prompt-file",
            "/tmp/sys.md",
        ]
    );
    assert_eq!(inv.stdin.as_deref(), Some(&b"Create hello.txt"[..]));
    assert_eq!(inv.cwd, PathBuf::from("/work/wt"));
    assert_eq!(inv.output, OutputFormat::ClaudeStreamJson);
    assert!(inv.warnings.is_empty());
}

#[test]
fn claude_permission_profiles() {
    let mut r = req();
    r.permission = PermissionProfile::ReadOnly;
    let inv = build_invocation(&provider(ProviderKind::Claude), &r, NO_ENV).unwrap();
    assert_eq!(
        args(&inv),
        [
            "-p",
            "--output-format",
            "stream-json",
            "--verbose",
            "--permission-mode",
            "default",
            "--allowedTools=Read,Grep,Glob",
            "--disallowedTools=Edit,MultiEdit,Write,NotebookEdit",
        ]
    );
    r.permission = PermissionProfile::Full;
    let inv = build_invocation(&provider(ProviderKind::Claude), &r, NO_ENV).unwrap();
    assert!(
        args(&inv)
            .windows(2)
            .any(|w| w == ["--permission-mode", "bypassPermissions"])
    );
}

#[test]
fn claude_resume_uses_equals_form() {
    let mut r = req();
    r.resume_session_id = Some("abc-123".into());
    r.session_id = Some("ignored".into());
    let inv = build_invocation(&provider(ProviderKind::Claude), &r, NO_ENV).unwrap();
    assert!(args(&inv).contains(&"--resume=abc-123"));
    assert!(!args(&inv).contains(&"--session-id"));
    assert_eq!(inv.warnings.len(), 1);
}

#[test]
fn claude_default_model_from_config_and_binary_path() {
    let config = ProvidersConfig::from_toml(
        r#"
        [claude]
        binary = "/opt/claude/bin/claude"
        default_model = "opus"
        env = { CLAUDE_CODE_MAX_RETRIES = "2" }
        "#,
    )
    .unwrap();
    let p = config.provider("claude").unwrap();
    let inv = build_invocation(&p, &req(), NO_ENV).unwrap();
    assert_eq!(inv.program, "/opt/claude/bin/claude");
    assert!(args(&inv).windows(2).any(|w| w == ["--model", "opus"]));
    assert_eq!(
        inv.env,
        vec![("CLAUDE_CODE_MAX_RETRIES".to_owned(), "2".to_owned())]
    );
    // The request's model wins over the default.
    let mut r = req();
    r.model = Some("haiku".into());
    let inv = build_invocation(&p, &r, NO_ENV).unwrap();
    assert!(args(&inv).windows(2).any(|w| w == ["--model", "haiku"]));
}

#[test]
fn claude_tmux_lane_is_interactive() {
    let mut r = req();
    r.lane = Lane::Tmux;
    r.session_id = Some("11111111-2222-3333-4444-555555555556".into());
    r.settings = Some("/tmp/vnx-stop-hook.json".into());
    r.max_turns = Some(5);
    let inv = build_invocation(&provider(ProviderKind::Claude), &r, NO_ENV).unwrap();
    assert_eq!(
        args(&inv),
        [
            "--session-id",
            "11111111-2222-3333-4444-555555555556",
            "--permission-mode",
            "acceptEdits",
            "--settings",
            "/tmp/vnx-stop-hook.json",
        ]
    );
    assert!(!args(&inv).contains(&"-p"));
    // The tmux lane pastes the prompt into the session.
    assert_eq!(inv.stdin.as_deref(), Some(&b"Create hello.txt"[..]));
    assert_eq!(inv.output, OutputFormat::ClaudeTranscript);
    assert_eq!(inv.warnings.len(), 1, "{:?}", inv.warnings);

    r.session_id = None;
    let err = build_invocation(&provider(ProviderKind::Claude), &r, NO_ENV).unwrap_err();
    assert_eq!(err, BuildError::MissingSessionId);
}

#[test]
fn codex_argv() {
    let mut r = req();
    r.model = Some("gpt-5".into());
    let mut p = provider(ProviderKind::Codex);
    p.config.extra_args = vec!["-c".into(), "model_provider=mock".into()];
    let inv = build_invocation(&p, &r, NO_ENV).unwrap();
    assert_eq!(inv.program, "codex");
    assert_eq!(
        args(&inv),
        [
            "exec",
            "--json",
            "--skip-git-repo-check",
            "-C",
            "/work/wt",
            "-s",
            "workspace-write",
            "-m",
            "gpt-5",
            "-c",
            "model_provider=mock",
            "-",
        ]
    );
    assert_eq!(inv.stdin.as_deref(), Some(&b"Create hello.txt"[..]));
    assert_eq!(inv.output, OutputFormat::CodexJson);
}

#[test]
fn codex_resume_read_only_and_unsupported_fields() {
    let mut r = req();
    r.permission = PermissionProfile::ReadOnly;
    r.resume_session_id = Some("01a1ff9b-7847-7a13-bd14-ee4814867c8c".into());
    r.max_turns = Some(3);
    r.budget_usd_micros = Some(1);
    r.json_schema_file = Some("/tmp/schema.json".into());
    let inv = build_invocation(&provider(ProviderKind::Codex), &r, NO_ENV).unwrap();
    assert_eq!(
        args(&inv),
        [
            "exec",
            "--json",
            "--skip-git-repo-check",
            "-C",
            "/work/wt",
            "-s",
            "read-only",
            "--output-schema",
            "/tmp/schema.json",
            "resume",
            "01a1ff9b-7847-7a13-bd14-ee4814867c8c",
            "-",
        ]
    );
    assert_eq!(inv.warnings.len(), 2, "{:?}", inv.warnings);
    assert!(inv.warnings[0].contains("max turns"));

    r.permission = PermissionProfile::Full;
    let inv = build_invocation(&provider(ProviderKind::Codex), &r, NO_ENV).unwrap();
    assert!(
        args(&inv)
            .windows(2)
            .any(|w| w == ["-s", "danger-full-access"])
    );
}

#[test]
fn gemini_argv() {
    let mut r = req();
    r.model = Some("gemini-2.5-pro".into());
    r.session_id = Some("6f35b56b-2f7f-42b7-b4ab-a51964dfec64".into());
    let inv = build_invocation(&provider(ProviderKind::Gemini), &r, NO_ENV).unwrap();
    assert_eq!(inv.program, "gemini");
    assert_eq!(
        args(&inv),
        [
            "-p",
            "",
            "--output-format",
            "stream-json",
            "--skip-trust",
            "--approval-mode",
            "auto_edit",
            "-m",
            "gemini-2.5-pro",
            "--session-id",
            "6f35b56b-2f7f-42b7-b4ab-a51964dfec64",
        ]
    );
    assert_eq!(inv.stdin.as_deref(), Some(&b"Create hello.txt"[..]));
    assert_eq!(inv.output, OutputFormat::GeminiStreamJson);

    r.resume_session_id = Some("latest".into());
    r.permission = PermissionProfile::Full;
    let inv = build_invocation(&provider(ProviderKind::Gemini), &r, NO_ENV).unwrap();
    assert!(args(&inv).windows(2).any(|w| w == ["-r", "latest"]));
    assert!(
        args(&inv)
            .windows(2)
            .any(|w| w == ["--approval-mode", "yolo"])
    );
    r.permission = PermissionProfile::ReadOnly;
    let inv = build_invocation(&provider(ProviderKind::Gemini), &r, NO_ENV).unwrap();
    assert!(
        args(&inv)
            .windows(2)
            .any(|w| w == ["--approval-mode", "default"])
    );
}

#[test]
fn tmux_lane_is_claude_only() {
    let mut r = req();
    r.lane = Lane::Tmux;
    r.session_id = Some("x".into());
    for kind in [ProviderKind::Codex, ProviderKind::Gemini] {
        let err = build_invocation(&provider(kind), &r, NO_ENV).unwrap_err();
        assert!(matches!(
            err,
            BuildError::UnsupportedLane {
                lane: Lane::Tmux,
                ..
            }
        ));
        assert!(err.to_string().contains("--lane headless"));
    }
}

fn command_provider(argv: &[&str]) -> Provider {
    let toml = format!(
        "[fake]\nkind = \"command\"\nargv = [{}]\noutput = \"claude-stream-json\"\n",
        argv.iter()
            .map(|a| format!("{a:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    ProvidersConfig::from_toml(&toml)
        .unwrap()
        .provider("fake")
        .unwrap()
}

#[test]
fn command_template() {
    let p = command_provider(&[
        "fake-agent",
        "--prompt-file",
        "{prompt_file}",
        "--model",
        "{model}",
        "--cwd={cwd}",
        "--session",
        "{session_id}",
        "{{literal}}",
    ]);
    let mut r = req();
    r.prompt_file = Some("/tmp/p.md".into());
    let inv = build_invocation(&p, &r, NO_ENV).unwrap();
    assert_eq!(inv.program, "fake-agent");
    // No model and no session id: those flags disappear with their values.
    assert_eq!(
        args(&inv),
        ["--prompt-file", "/tmp/p.md", "--cwd=/work/wt", "{literal}"]
    );
    assert_eq!(inv.output, OutputFormat::ClaudeStreamJson);
    assert_eq!(inv.stdin.as_deref(), Some(&b"Create hello.txt"[..]));

    r.model = Some("m1".into());
    r.session_id = Some("s1".into());
    let inv = build_invocation(&p, &r, NO_ENV).unwrap();
    assert_eq!(
        args(&inv),
        [
            "--prompt-file",
            "/tmp/p.md",
            "--model",
            "m1",
            "--cwd=/work/wt",
            "--session",
            "s1",
            "{literal}"
        ]
    );

    r.prompt_file = None;
    let err = build_invocation(&p, &r, NO_ENV).unwrap_err();
    assert!(matches!(err, BuildError::MissingPromptFile { .. }));

    let bad = command_provider(&["x", "{prompt}"]);
    let err = build_invocation(&bad, &req(), NO_ENV).unwrap_err();
    assert_eq!(
        err,
        BuildError::UnknownPlaceholder {
            provider: "fake".into(),
            placeholder: "prompt".into()
        }
    );
    let bad = command_provider(&["x", "{unclosed"]);
    assert!(matches!(
        build_invocation(&bad, &req(), NO_ENV).unwrap_err(),
        BuildError::MalformedTemplate { .. }
    ));
}

#[test]
fn command_prompt_on_stdin_can_be_disabled() {
    let toml =
        "[fake]\nkind = \"command\"\nargv = [\"a\", \"{prompt_file}\"]\nprompt_on_stdin = false\n";
    let p = ProvidersConfig::from_toml(toml)
        .unwrap()
        .provider("fake")
        .unwrap();
    let mut r = req();
    r.prompt_file = Some("/tmp/p".into());
    let inv = build_invocation(&p, &r, NO_ENV).unwrap();
    assert_eq!(inv.stdin, None);
    assert_eq!(inv.output, OutputFormat::Text);
}

#[test]
fn huge_prompt_never_in_argv() {
    let prompt = "x".repeat(3 * 1024 * 1024);
    let mut r = DispatchRequest::new(prompt.clone(), "/work/wt");
    r.prompt_file = Some("/tmp/p.md".into());
    r.session_id = Some("00000000-0000-4000-8000-000000000000".into());
    let providers = [
        provider(ProviderKind::Claude),
        provider(ProviderKind::Codex),
        provider(ProviderKind::Gemini),
        command_provider(&["agent", "--prompt-file", "{prompt_file}"]),
    ];
    for p in &providers {
        let inv = build_invocation(p, &r, NO_ENV).unwrap();
        let argv_bytes: usize = inv.args.iter().map(String::len).sum::<usize>() + inv.program.len();
        assert!(argv_bytes < 4096, "{}: argv is {argv_bytes} bytes", p.name);
        assert!(
            inv.args.iter().all(|a| !a.contains("xxxxxxxx")),
            "{}",
            p.name
        );
        assert_eq!(
            inv.stdin.as_ref().map(Vec::len),
            Some(prompt.len()),
            "{}",
            p.name
        );
    }
    // The tmux lane: the prompt is pasted into the terminal, never in argv.
    r.lane = Lane::Tmux;
    let inv = build_invocation(&provider(ProviderKind::Claude), &r, NO_ENV).unwrap();
    assert!(inv.args.iter().all(|a| a.len() < 100));
    assert_eq!(inv.stdin.as_ref().map(Vec::len), Some(prompt.len()));
}

#[test]
fn providers_config_from_toml() {
    let config = ProvidersConfig::from_toml(
        r#"
        [codex]
        default_model = "gpt-5"
        prices = { "gpt-5" = { input = 1, output = 2 } }

        [fake]
        kind = "command"
        argv = ["fake-agent"]

        [broken]
        binary = "x"
        "#,
    )
    .unwrap();
    let codex = config.provider("codex").unwrap();
    assert_eq!(codex.kind, ProviderKind::Codex);
    assert_eq!(codex.config.prices["gpt-5"].output, 2);
    assert_eq!(
        config.provider("gemini").unwrap(),
        Provider::builtin(ProviderKind::Gemini)
    );
    assert_eq!(
        config.provider("fake").unwrap().output_format(),
        OutputFormat::Text
    );
    assert_eq!(
        config.provider("broken").unwrap_err(),
        ConfigError::MissingKind {
            name: "broken".into()
        }
    );
    let err = config.provider("nope").unwrap_err();
    assert!(err.to_string().contains("[providers.nope]"), "{err}");
    assert!(ProvidersConfig::from_toml("[claude]\nbinnary = \"typo\"\n").is_err());
    let no_argv = ProvidersConfig::from_toml("[c]\nkind = \"command\"\n").unwrap();
    assert_eq!(
        no_argv.provider("c").unwrap_err(),
        ConfigError::MissingArgv { name: "c".into() }
    );
}

#[test]
fn billing_default_is_subscription() {
    assert_eq!(req().billing, Billing::Subscription);
    assert_eq!(req().lane, Lane::Headless);
    assert_eq!(req().permission, PermissionProfile::Edit);
}

#[test]
fn parse_context_from_provider() {
    let mut p = provider(ProviderKind::Codex);
    p.config.default_model = Some("my-model".into());
    p.config.prices.insert(
        "my-model".into(),
        vnx_agents::ModelPrice {
            input: 1_000_000,
            output: 0,
            cache_read: None,
            cache_write: None,
        },
    );
    let ctx = vnx_agents::ParseContext::new(&p, &req());
    assert_eq!(ctx.requested_model.as_deref(), Some("my-model"));
    assert!(ctx.prices.lookup("my-model").is_some());
    assert!(ctx.prices.lookup("gpt-5").is_some());
}
