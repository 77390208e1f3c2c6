//! End to end: `vnx doctor` with the real pinned claude CLI (installed by
//! `tests/agent-clis/install.sh`).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn claude() -> PathBuf {
    let path = vnx_tests::workspace_root()
        .join("tests/agent-clis/node_modules/@anthropic-ai/claude-code-linux-x64/claude");
    assert!(
        path.is_file(),
        "{} is missing: run tests/agent-clis/install.sh",
        path.display()
    );
    path
}

/// Every variable `vnx doctor` reports on (vnx-agents' `*_API_BILLING_VARS`),
/// cleared so the runner's own environment does not leak into the findings.
const BILLING_VARS: [&str; 10] = [
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "CLAUDE_CODE_USE_BEDROCK",
    "CLAUDE_CODE_USE_VERTEX",
    "CLAUDE_CODE_USE_FOUNDRY",
    "CODEX_API_KEY",
    "OPENAI_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "GOOGLE_GENAI_USE_VERTEXAI",
];

fn doctor(root: &Path, env: &[(&str, &str)]) -> (Output, Vec<Value>) {
    let mut cmd = Command::new(vnx_tests::vnx());
    cmd.args(["doctor", "--json"]).current_dir(root);
    for var in BILLING_VARS {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let findings: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap_or_default();
    (out, findings)
}

fn check<'a>(findings: &'a [Value], name: &str) -> &'a Value {
    findings
        .iter()
        .find(|f| f["check"] == name)
        .unwrap_or_else(|| panic!("no {name} check in {findings:?}"))
}

fn repo(claude_toml: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("repo");
    std::fs::create_dir(&root).unwrap();
    assert!(
        Command::new("git")
            .args(["init", "-q"])
            .current_dir(&root)
            .status()
            .unwrap()
            .success()
    );
    assert!(
        Command::new(vnx_tests::vnx())
            .arg("init")
            .current_dir(&root)
            .output()
            .unwrap()
            .status
            .success()
    );
    let mut config = std::fs::read_to_string(root.join("vnx.toml")).unwrap();
    config.push_str(claude_toml);
    std::fs::write(root.join("vnx.toml"), config).unwrap();
    (tmp, root)
}

#[test]
fn a_ready_machine_passes_and_the_login_check_spends_nothing() {
    let home = tempfile::tempdir().unwrap();
    let toml = format!(
        "\n[providers.claude]\nbinary = {:?}\n[providers.claude.env]\nHOME = {:?}\nCLAUDE_CODE_OAUTH_TOKEN = \"t\"\n\
         ANTHROPIC_BASE_URL = \"http://127.0.0.1:9\"\n",
        claude().display().to_string(),
        home.path().display().to_string()
    );
    let (_tmp, root) = repo(&toml);
    let (out, findings) = doctor(&root, &[]);
    let provider = check(&findings, "provider claude");
    assert_eq!(provider["status"], "ok", "{provider}");
    assert!(
        provider["detail"].as_str().unwrap().contains("2.1."),
        "{provider}"
    );
    let login = check(&findings, "claude login");
    assert_eq!(login["status"], "ok", "{login}");
    assert!(
        login["detail"].as_str().unwrap().contains("oauth_token"),
        "{login}"
    );
    assert_eq!(check(&findings, "ledger")["status"], "ok");
    assert_eq!(check(&findings, "skills")["status"], "ok");
    assert_eq!(out.status.code(), Some(0), "{findings:#?}");
}

#[test]
fn missing_login_billing_variables_and_binary_are_failures_with_fixes() {
    let home = tempfile::tempdir().unwrap();
    let toml = format!(
        "\n[providers.claude]\nbinary = {:?}\n[providers.claude.env]\nHOME = {:?}\n",
        claude().display().to_string(),
        home.path().display().to_string()
    );
    let (_tmp, root) = repo(&toml);
    let (out, findings) = doctor(&root, &[("ANTHROPIC_API_KEY", "sk-ant-not-a-real-key")]);
    assert_eq!(out.status.code(), Some(1));
    let login = check(&findings, "claude login");
    assert_eq!(login["status"], "fail", "{login}");
    assert!(login["fix"].as_str().unwrap().contains("claude auth login"));
    let billing = check(&findings, "billing claude");
    assert_eq!(billing["status"], "fail");
    assert!(
        billing["detail"]
            .as_str()
            .unwrap()
            .contains("ANTHROPIC_API_KEY")
    );
    assert!(billing["fix"].as_str().unwrap().contains("--billing api"));
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("sk-ant-not-a-real-key"),
        "the key's value is never printed"
    );

    let (_tmp2, root2) = repo("\n[providers.claude]\nbinary = \"/nonexistent/claude\"\n");
    let (out, findings) = doctor(&root2, &[]);
    assert_eq!(out.status.code(), Some(1));
    let provider = check(&findings, "provider claude");
    assert_eq!(provider["status"], "fail");
    assert!(
        provider["detail"]
            .as_str()
            .unwrap()
            .contains("npm install -g @anthropic-ai/claude-code"),
        "{provider}"
    );
}

#[test]
fn codex_and_gemini_billing_variables_are_reported_by_provider() {
    let (_tmp, root) = repo("\n[providers.claude]\nbinary = \"/nonexistent/claude\"\n");
    let (_, findings) = doctor(&root, &[]);
    assert_eq!(check(&findings, "billing variables")["status"], "ok");

    let env = [
        ("CODEX_API_KEY", "sk-proj-codexsecret"),
        ("OPENAI_API_KEY", "sk-openaisecret"),
        ("GEMINI_API_KEY", "AIza-geminisecret"),
    ];
    let (out, findings) = doctor(&root, &env);
    let stdout = String::from_utf8_lossy(&out.stdout);
    for (_, value) in env {
        assert!(
            !stdout.contains(value),
            "the value of a key is never printed"
        );
    }
    assert!(findings.iter().all(|f| f["check"] != "billing claude"));
    let codex = check(&findings, "billing codex");
    assert_eq!(codex["status"], "fail", "{codex}");
    let detail = codex["detail"].as_str().unwrap();
    assert!(
        detail.starts_with(
            "CODEX_API_KEY set: subscription-mode codex dispatches will refuse to start"
        ),
        "{detail}"
    );
    assert!(
        detail.contains("OPENAI_API_KEY set: removed from every"),
        "{detail}"
    );
    let fix = codex["fix"].as_str().unwrap();
    assert!(
        fix.contains("unset CODEX_API_KEY") && fix.contains("--billing api"),
        "{fix}"
    );
    let gemini = check(&findings, "billing gemini");
    assert_eq!(gemini["status"], "warn", "{gemini}");
    assert!(
        gemini["detail"]
            .as_str()
            .unwrap()
            .starts_with("GEMINI_API_KEY set: removed from every"),
        "{gemini}"
    );
    assert!(gemini["fix"].as_str().unwrap().contains("--billing api"));

    // With `billing = "api"` in vnx.toml nothing is refused.
    let (_tmp2, root2) = repo("\n[providers.claude]\nbinary = \"/nonexistent/claude\"\n");
    let config = std::fs::read_to_string(root2.join("vnx.toml")).unwrap();
    assert!(config.contains("billing = \"subscription\""));
    let config = config.replace("billing = \"subscription\"", "billing = \"api\"");
    std::fs::write(root2.join("vnx.toml"), config).unwrap();
    let (_, findings) = doctor(&root2, &env);
    let codex = check(&findings, "billing codex");
    assert_eq!(codex["status"], "warn", "{codex}");
    assert!(
        codex["detail"]
            .as_str()
            .unwrap()
            .contains("codex dispatches get them"),
        "{codex}"
    );
}

#[test]
fn withheld_variables_are_listed_by_name_only() {
    let (_tmp, root) = repo("\n[providers.claude]\nbinary = \"/nonexistent/claude\"\n");
    let config = std::fs::read_to_string(root.join("vnx.toml")).unwrap();
    let config = config.replace("pass_env = []", "pass_env = [\"AWS_PROFILE\"]");
    std::fs::write(root.join("vnx.toml"), config).unwrap();
    let env = [
        ("GITHUB_TOKEN", "ghp-value-never-printed"),
        ("VNX_TEST_MY_VAR", "my-value-never-printed"),
        ("AWS_PROFILE", "dev"),
        ("CLAUDE_CONFIG_DIR", "/tmp/claude-config"),
    ];
    let (out, findings) = doctor(&root, &env);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("never-printed"), "{stdout}");
    let w = check(&findings, "worker environment");
    let detail = w["detail"].as_str().unwrap();
    assert!(detail.contains("withheld from a claude worker"), "{detail}");
    let names: Vec<&str> = detail
        .split_once(": ")
        .unwrap()
        .1
        .split("; ")
        .next()
        .unwrap()
        .split(", ")
        .collect();
    for name in ["GITHUB_TOKEN", "VNX_TEST_MY_VAR"] {
        assert!(names.contains(&name), "{name} not in {detail}");
    }
    for name in ["AWS_PROFILE", "CLAUDE_CONFIG_DIR", "PATH", "HOME"] {
        assert!(!names.contains(&name), "{name} in {detail}");
    }
}
