//! The auth guard through `build_invocation`.

use vnx_agents::{
    AuthError, BuildError, CLAUDE_API_BILLING_VARS, CLAUDE_SESSION_VARS, DispatchRequest, Provider,
    ProviderKind, build_invocation, env_to_remove, redact,
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
        let BuildError::Auth(AuthError::ApiKeyInSubscriptionMode { vars }) = &err else {
            panic!("{err:?}");
        };
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
    assert_eq!(all.len(), 8);
}

#[test]
fn other_clis_are_not_refused_in_subscription_mode() {
    let env = [
        ("ANTHROPIC_API_KEY", "sk-ant-x"),
        ("OPENAI_API_KEY", "sk-y"),
    ];
    for kind in [ProviderKind::Codex, ProviderKind::Gemini] {
        let inv =
            build_invocation(&Provider::builtin(kind), &req(Billing::Subscription), env).unwrap();
        assert!(inv.env_remove.contains(&"ANTHROPIC_API_KEY".to_owned()));
        assert!(!inv.env_remove.contains(&"OPENAI_API_KEY".to_owned()));
    }
}

#[test]
fn redact_before_ledger() {
    let text = "failed: GEMINI_API_KEY=AIzaSyDdI0hCZtE6vySjMm-WEfRq3CPzqKqqsHI and header Authorization: Bearer sk-proj-aaaaaaaaaaaaaaaaaaaa";
    let out = redact(text);
    assert_eq!(
        out,
        "failed: GEMINI_API_KEY=*** and header Authorization: Bearer ***"
    );
}
