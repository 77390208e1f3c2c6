//! The auth guard through `build_invocation`.

use vnx_agents::{
    AuthError, BuildError, CLAUDE_API_BILLING_VARS, CLAUDE_SESSION_VARS, CODEX_API_BILLING_VARS,
    DispatchRequest, GEMINI_API_BILLING_VARS, Provider, ProviderKind, build_invocation,
    env_to_remove, redact, worker_env_allow_list,
};
use vnx_types::Billing;

fn req(billing: Billing) -> DispatchRequest {
    let mut r = DispatchRequest::new("hi", "/w");
    r.billing = billing;
    r
}

fn claude() -> Provider {
    Provider::builtin(ProviderKind::Claude)
}

#[test]
fn subscription_refuses_each_api_billing_variable() {
    for var in CLAUDE_API_BILLING_VARS {
        let env = [("PATH", "/usr/bin"), (var, "1")];
        let err = build_invocation(&claude(), &req(Billing::Subscription), env).unwrap_err();
        let BuildError::Auth(AuthError::ApiKeyInSubscriptionMode { provider, vars }) = &err else {
            panic!("{err:?}");
        };
        assert_eq!(*provider, ProviderKind::Claude);
        assert_eq!(vars, &vec![var.to_owned()]);
        let msg = err.to_string();
        assert!(msg.contains(var), "{msg}");
        assert!(msg.contains("unset it"), "{msg}");
        assert!(msg.contains("--billing api"), "{msg}");
    }
}

#[test]
fn refusal_names_every_variable_and_no_value() {
    let env = [
        ("ANTHROPIC_API_KEY", "sk-ant-api03-supersecretvalue"),
        ("CLAUDE_CODE_USE_BEDROCK", "1"),
    ];
    let err = build_invocation(&claude(), &req(Billing::Subscription), env).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("ANTHROPIC_API_KEY, CLAUDE_CODE_USE_BEDROCK"),
        "{msg}"
    );
    assert!(msg.contains("unset them"), "{msg}");
    assert!(!msg.contains("supersecret"), "{msg}");
}

#[test]
fn empty_values_do_not_count() {
    let env = [("ANTHROPIC_API_KEY", ""), ("ANTHROPIC_AUTH_TOKEN", "")];
    assert!(build_invocation(&claude(), &req(Billing::Subscription), env).is_ok());
}

#[test]
fn provider_config_env_is_checked_too() {
    let mut p = claude();
    p.config.env.insert("ANTHROPIC_API_KEY".into(), "k".into());
    let no_env: [(&str, &str); 0] = [];
    assert!(build_invocation(&p, &req(Billing::Subscription), no_env).is_err());
    assert!(build_invocation(&p, &req(Billing::Api), no_env).is_ok());
}

#[test]
fn api_mode_lets_keys_through_to_claude_only() {
    let env = [("ANTHROPIC_API_KEY", "sk-ant-x")];
    let inv = build_invocation(&claude(), &req(Billing::Api), env).unwrap();
    assert!(!inv.env_remove.contains(&"ANTHROPIC_API_KEY".to_owned()));
    for var in CLAUDE_SESSION_VARS {
        assert!(inv.env_remove.contains(&var.to_owned()), "{var}");
    }
    // Anthropic credentials never reach another CLI.
    let codex = Provider::builtin(ProviderKind::Codex);
    let inv = build_invocation(&codex, &req(Billing::Api), env).unwrap();
    assert!(inv.env_remove.contains(&"ANTHROPIC_API_KEY".to_owned()));
}

#[test]
fn session_markers_never_reach_any_worker() {
    let env = [
        ("CLAUDECODE", "1"),
        ("CLAUDE_CODE_SESSION_ID", "abc"),
        ("CLAUDE_CODE_ENTRYPOINT", "cli"),
    ];
    for kind in [
        ProviderKind::Claude,
        ProviderKind::Codex,
        ProviderKind::Gemini,
    ] {
        for billing in [Billing::Subscription, Billing::Api] {
            let inv = build_invocation(&Provider::builtin(kind), &req(billing), env).unwrap();
            for var in CLAUDE_SESSION_VARS {
                assert!(
                    inv.env_remove.contains(&var.to_owned()),
                    "{kind:?} {billing:?} {var}"
                );
            }
        }
    }
    let all = env_to_remove(ProviderKind::Claude, Billing::Subscription);
    assert_eq!(all.len(), 13);
}

/// Every built-in CLI's billing variables, as `(owner, names)`.
const FAMILIES: [(ProviderKind, &[&str]); 3] = [
    (ProviderKind::Claude, &CLAUDE_API_BILLING_VARS),
    (ProviderKind::Codex, &CODEX_API_BILLING_VARS),
    (ProviderKind::Gemini, &GEMINI_API_BILLING_VARS),
];

fn builtin(kind: ProviderKind) -> Provider {
    Provider::builtin(kind)
}

#[test]
fn only_login_overrides_are_refused_in_subscription_mode() {
    // codex: OPENAI_API_KEY is not how `codex exec` logs in, so it is removed, not refused.
    // gemini: its settings file picks the auth method, so its variables are removed, not refused.
    let env = [
        ("ANTHROPIC_API_KEY", "sk-ant-x"),
        ("OPENAI_API_KEY", "sk-y"),
        ("GEMINI_API_KEY", "AIza-z"),
        ("GOOGLE_API_KEY", "AIza-w"),
        ("GOOGLE_GENAI_USE_VERTEXAI", "true"),
    ];
    for kind in [ProviderKind::Codex, ProviderKind::Gemini] {
        let inv = build_invocation(&builtin(kind), &req(Billing::Subscription), env).unwrap();
        for (name, _) in env {
            assert!(inv.env_remove.contains(&name.to_owned()), "{kind:?} {name}");
        }
    }
}

#[test]
fn codex_api_key_refuses_codex_in_subscription_mode() {
    let env = [
        ("CODEX_API_KEY", "sk-proj-supersecretvalue"),
        ("OPENAI_API_KEY", "sk-other"),
    ];
    let err = build_invocation(
        &builtin(ProviderKind::Codex),
        &req(Billing::Subscription),
        env,
    )
    .unwrap_err();
    let BuildError::Auth(AuthError::ApiKeyInSubscriptionMode { provider, vars }) = &err else {
        panic!("{err:?}");
    };
    assert_eq!(*provider, ProviderKind::Codex);
    assert_eq!(vars, &vec!["CODEX_API_KEY".to_owned()]);
    let msg = err.to_string();
    assert!(msg.contains("start codex"), "{msg}");
    assert!(msg.contains("CODEX_API_KEY"), "{msg}");
    assert!(!msg.contains("OPENAI_API_KEY"), "{msg}");
    assert!(msg.contains("unset it"), "{msg}");
    assert!(msg.contains("--billing api"), "{msg}");
    assert!(!msg.contains("supersecret"), "{msg}");
    assert!(!msg.contains("sk-other"), "{msg}");
    // Another CLI is not refused over it: the key is just removed.
    for kind in [ProviderKind::Claude, ProviderKind::Gemini] {
        let inv = build_invocation(&builtin(kind), &req(Billing::Subscription), env).unwrap();
        assert!(
            inv.env_remove.contains(&"CODEX_API_KEY".to_owned()),
            "{kind:?}"
        );
    }
    // API mode lets codex start with it.
    let inv = build_invocation(&builtin(ProviderKind::Codex), &req(Billing::Api), env).unwrap();
    assert!(!inv.env_remove.contains(&"CODEX_API_KEY".to_owned()));
}

#[test]
fn each_providers_variables_are_removed_from_the_others() {
    for (owner, vars) in FAMILIES {
        for (kind, _) in FAMILIES {
            for billing in [Billing::Subscription, Billing::Api] {
                let remove = env_to_remove(kind, billing);
                let passes = kind == owner && billing == Billing::Api;
                for var in vars {
                    assert_eq!(
                        !remove.contains(&(*var).to_owned()),
                        passes,
                        "{var} for {kind:?} in {billing:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn api_mode_lets_only_its_own_variables_through() {
    let env: Vec<(&str, &str)> = FAMILIES
        .iter()
        .flat_map(|(_, vars)| vars.iter().map(|v| (*v, "1")))
        .collect();
    for (kind, _) in FAMILIES {
        let inv = build_invocation(&builtin(kind), &req(Billing::Api), env.clone()).unwrap();
        for (other, vars) in FAMILIES {
            for var in vars {
                assert_eq!(
                    inv.env_remove.contains(&(*var).to_owned()),
                    other != kind,
                    "{var} for {kind:?}"
                );
            }
        }
    }
}

#[test]
fn custom_commands_lose_only_the_anthropic_variables() {
    for billing in [Billing::Subscription, Billing::Api] {
        let remove = env_to_remove(ProviderKind::Command, billing);
        for var in CLAUDE_API_BILLING_VARS.iter().chain(&CLAUDE_SESSION_VARS) {
            assert!(remove.contains(&(*var).to_owned()), "{var}");
        }
        for var in CODEX_API_BILLING_VARS
            .iter()
            .chain(&GEMINI_API_BILLING_VARS)
        {
            assert!(!remove.contains(&(*var).to_owned()), "{var}");
        }
    }
}

#[test]
fn gemini_is_never_refused() {
    let env: Vec<(&str, &str)> = GEMINI_API_BILLING_VARS.iter().map(|v| (*v, "1")).collect();
    for billing in [Billing::Subscription, Billing::Api] {
        assert!(
            build_invocation(&builtin(ProviderKind::Gemini), &req(billing), env.clone()).is_ok()
        );
    }
}

#[test]
fn billing_variables_in_the_provider_env_table_are_left_out() {
    let mut p = builtin(ProviderKind::Gemini);
    p.config.env.insert("GEMINI_API_KEY".into(), "k".into());
    p.config.env.insert("OPENAI_API_KEY".into(), "o".into());
    p.config.env.insert("HOME".into(), "/h".into());
    let no_env: [(&str, &str); 0] = [];
    let inv = build_invocation(&p, &req(Billing::Subscription), no_env).unwrap();
    let set: Vec<&str> = inv.env.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(set, ["HOME"]);
    assert_eq!(inv.warnings.len(), 2, "{:?}", inv.warnings);
    assert!(
        inv.warnings
            .iter()
            .any(|w| w.contains("GEMINI_API_KEY") && w.contains("subscription")),
        "{:?}",
        inv.warnings
    );
    assert!(inv.warnings.iter().all(|w| !w.contains("\"k\"")));
    let inv = build_invocation(&p, &req(Billing::Api), no_env).unwrap();
    let set: Vec<&str> = inv.env.iter().map(|(k, _)| k.as_str()).collect();
    assert!(set.contains(&"GEMINI_API_KEY"), "{set:?}");
    assert!(!set.contains(&"OPENAI_API_KEY"), "{set:?}");
}

#[test]
fn redact_before_ledger() {
    let text = "failed: GEMINI_API_KEY=AIzaSyDdI0hCZtE6vySjMm-WEfRq3CPzqKqqsHI and header Authorization: Bearer sk-proj-aaaaaaaaaaaaaaaaaaaa";
    let out = redact(text);
    assert_eq!(
        out,
        "failed: GEMINI_API_KEY=[REDACTED google-api-key] and header Authorization: Bearer [REDACTED bearer-token]"
    );
}

#[test]
fn each_worker_inherits_its_own_clis_variables_and_the_base_only() {
    let base = [
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "SHELL",
        "TERM",
        "LANG",
        "LC_ALL",
        "LC_CTYPE",
        "TZ",
        "TMPDIR",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "NODE_EXTRA_CA_CERTS",
        "XDG_CONFIG_HOME",
        "XDG_CACHE_HOME",
        "CARGO_HOME",
        "RUSTUP_HOME",
    ];
    let never = [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "GITHUB_TOKEN",
        "GH_TOKEN",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "AZURE_CLIENT_SECRET",
        "NPM_TOKEN",
        "CARGO_REGISTRY_TOKEN",
        "SSH_AUTH_SOCK",
        "DATABASE_URL",
    ];
    let own: [(ProviderKind, &[&str]); 3] = [
        (
            ProviderKind::Claude,
            &[
                "ANTHROPIC_BASE_URL",
                "CLAUDE_CODE_OAUTH_TOKEN",
                "CLAUDE_CONFIG_DIR",
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC",
                "CLAUDE_CODE_MAX_RETRIES",
                "DISABLE_AUTOUPDATER",
                "ANTHROPIC_MODEL",
            ],
        ),
        (ProviderKind::Codex, &["CODEX_HOME", "OPENAI_BASE_URL"]),
        (
            ProviderKind::Gemini,
            &[
                "GEMINI_API_KEY",
                "GOOGLE_GEMINI_BASE_URL",
                "GOOGLE_CLOUD_PROJECT",
                "GEMINI_MODEL",
            ],
        ),
    ];
    for (kind, vars) in own {
        let allow = worker_env_allow_list::<&str>(kind, &[]);
        for v in base.iter().chain(vars) {
            assert!(allow.allows(v), "{kind:?} should get {v}");
        }
        for v in never {
            assert!(!allow.allows(v), "{kind:?} must not get {v}");
        }
        for (other, vars) in own {
            if other != kind {
                for v in vars {
                    assert!(!allow.allows(v), "{kind:?} must not get {other:?}'s {v}");
                }
            }
        }
    }
    // A custom command keeps the OpenAI and Google keys, as before.
    let command = worker_env_allow_list::<&str>(ProviderKind::Command, &[]);
    for v in CODEX_API_BILLING_VARS
        .iter()
        .chain(&GEMINI_API_BILLING_VARS)
    {
        assert!(command.allows(v), "{v}");
    }
    assert!(!command.allows("ANTHROPIC_BASE_URL") && !command.allows("GITHUB_TOKEN"));
}

#[test]
fn pass_env_adds_names_and_billing_removals_still_win() {
    let mut r = req(Billing::Subscription);
    r.pass_env = vec!["AWS_PROFILE".into(), "OPENAI_API_KEY".into()];
    let inv = build_invocation(&builtin(ProviderKind::Claude), &r, [("PATH", "/bin")]).unwrap();
    assert!(inv.env_pass.allows("AWS_PROFILE"));
    assert!(!inv.env_pass.allows("AWS_SECRET_ACCESS_KEY"));
    // Named, but a billing variable of another CLI: still removed.
    assert!(inv.env_pass.allows("OPENAI_API_KEY"));
    assert!(inv.env_remove.contains(&"OPENAI_API_KEY".to_owned()));
    // Named in subscription mode: still refused.
    r.pass_env = vec!["ANTHROPIC_API_KEY".into()];
    let env = [("ANTHROPIC_API_KEY", "k")];
    assert!(build_invocation(&claude(), &r, env).is_err());
}
