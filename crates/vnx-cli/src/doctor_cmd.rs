//! `vnx doctor`: is this machine and repository ready for governed dispatches?
//! Every finding says what is wrong and how to fix it; nothing spends tokens.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;
use vnx_agents::{ProviderKind, VersionCheck};
use vnx_core::EnvSource;
use vnx_core::probe::{
    BillingVars, billing_variables, capture, find_program, probe_provider, withheld_variables,
};
use vnx_types::Billing;

use crate::Outcome;
use crate::term::escape;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Status {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Clone, Serialize)]
struct Finding {
    check: String,
    status: Status,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<String>,
}

fn finding(
    check: impl Into<String>,
    status: Status,
    detail: impl Into<String>,
    fix: Option<&str>,
) -> Finding {
    Finding {
        check: check.into(),
        status,
        detail: detail.into(),
        fix: fix.map(str::to_owned),
    }
}

/// Runs `vnx doctor`: exit 0 when nothing fails (warnings allowed), 1 otherwise.
pub fn run(json: bool) -> Result<Outcome> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let scratch = std::env::temp_dir().join(format!("vnx-doctor-{}", std::process::id()));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let findings = runtime.block_on(checks(&cwd, &scratch));
    let _ = std::fs::remove_dir_all(&scratch);
    if json {
        println!("{}", serde_json::to_string_pretty(&findings)?);
    } else {
        for f in &findings {
            let tag = match f.status {
                Status::Ok => "ok  ",
                Status::Warn => "warn",
                Status::Fail => "FAIL",
            };
            println!("{tag} {:<22} {}", f.check, escape(&f.detail));
            if let Some(fix) = &f.fix {
                println!("     {:<22} fix: {}", "", escape(fix));
            }
        }
    }
    Ok(if findings.iter().any(|f| f.status == Status::Fail) {
        Outcome::Problems
    } else {
        Outcome::Ok
    })
}

async fn checks(cwd: &Path, scratch: &Path) -> Vec<Finding> {
    let mut out = Vec::new();
    let env = EnvSource::Inherit;

    // Configuration.
    let loaded = match vnx_prepare::Config::load(cwd) {
        Ok(loaded) => {
            let where_ = loaded.path.as_ref().map_or_else(
                || "no vnx.toml: defaults".to_owned(),
                |p| p.display().to_string(),
            );
            out.push(finding("config", Status::Ok, where_, None));
            Some(loaded)
        }
        Err(e) => {
            out.push(finding(
                "config",
                Status::Fail,
                e.to_string(),
                Some("fix vnx.toml as the message says (`vnx init` writes a commented one)"),
            ));
            None
        }
    };
    let config = loaded
        .as_ref()
        .map(|l| l.config.clone())
        .unwrap_or_default();

    // Providers: the three built-in CLIs and any configured one.
    let mut names: Vec<String> = ["claude", "codex", "gemini"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    for name in config.providers.0.keys() {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    for name in &names {
        let provider = match config.providers.provider(name) {
            Ok(p) => p,
            Err(e) => {
                out.push(finding(
                    format!("provider {name}"),
                    Status::Fail,
                    e.to_string(),
                    Some("fix its [providers] table in vnx.toml"),
                ));
                continue;
            }
        };
        let is_default = *name == config.run.provider;
        let probe = probe_provider(&provider, &env, cwd, scratch).await;
        match &probe.binary {
            Err(why) => out.push(finding(
                format!("provider {name}"),
                if is_default { Status::Fail } else { Status::Warn },
                format!("not found{}: {why}", if is_default { " (it is the default provider)" } else { "" }),
                Some("install it (see the message), or set [run] provider in vnx.toml to one you have"),
            )),
            Ok(path) => {
                let version = probe.version.clone().unwrap_or_else(|| "version unknown".into());
                let (status, fix) = match (&probe.version_check, &probe.version_error) {
                    (_, Some(_)) => (Status::Warn, Some("check that the binary runs: `<binary> --version`")),
                    (Some(VersionCheck::OutOfRange { .. }), _) => {
                        (Status::Warn, Some("install a version in the tested range, or expect parser surprises"))
                    }
                    (Some(VersionCheck::Unparseable), _) => (Status::Warn, Some("check `<binary> --version` prints a version")),
                    _ => (Status::Ok, None),
                };
                let range = probe.version_check.as_ref().and_then(|c| c.warning(provider.kind));
                let mut detail = format!("{version} at {}", path.display());
                if let Some(range) = range {
                    detail = format!("{detail}; {range}");
                }
                if let Some(err) = &probe.version_error {
                    detail = format!("{detail}; {err}");
                }
                out.push(finding(format!("provider {name}"), status, detail, fix));
                if provider.kind == ProviderKind::Claude {
                    out.push(claude_login(path, &provider, &env, scratch).await);
                }
            }
        }
    }

    // Credentials that would move a subscription user onto API billing.
    out.extend(billing_findings(
        &billing_variables(&env),
        config.run.billing,
    ));

    // What a worker of the default provider would not inherit (names only).
    if let Ok(provider) = config.provider() {
        let withheld =
            withheld_variables(&provider, config.run.billing, &config.worker.pass_env, &env);
        out.push(withheld_finding(&provider.name, &withheld));
    }

    // Tools.
    out.push(
        tool(
            "git",
            &["--version"],
            &env,
            scratch,
            Status::Fail,
            "install git (Debian: apt-get install git)",
        )
        .await,
    );
    out.push(
        tool(
            "tmux",
            &["-V"],
            &env,
            scratch,
            Status::Warn,
            "install tmux for `--lane tmux` (Debian: apt-get install tmux)",
        )
        .await,
    );

    out.push(sandbox_check(
        loaded.as_ref().is_some_and(|l| l.config.worker.sandbox),
    ));

    // Skills.
    let root = loaded.as_ref().map(|l| l.root.clone());
    match vnx_prepare::SkillCatalog::from_env(root.as_deref()).list() {
        Ok(entries) => {
            let broken: Vec<String> = entries
                .iter()
                .filter_map(|e| e.error.as_ref().map(|err| format!("{}: {err}", e.name)))
                .collect();
            if broken.is_empty() {
                let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
                out.push(finding("skills", Status::Ok, names.join(", "), None));
            } else {
                out.push(finding(
                    "skills",
                    Status::Fail,
                    broken.join("; "),
                    Some("fix the SKILL.md front matter named above"),
                ));
            }
        }
        Err(e) => out.push(finding("skills", Status::Fail, e.to_string(), None)),
    }

    // Ledger.
    match loaded.as_ref().map_or_else(
        || Ok(cwd.join("ledger")),
        vnx_prepare::LoadedConfig::checked_ledger_dir,
    ) {
        Ok(ledger) => {
            out.push(ledger_check(&ledger));
            out.extend(signing_checks(cwd, &ledger));
        }
        Err(e) => out.push(finding(
            "ledger",
            Status::Fail,
            e.to_string(),
            Some("fix [ledger] in vnx.toml as the message says"),
        )),
    }
    out
}

/// The signing key (git's `gpg.format` / `user.signingkey`), whether
/// ssh-keygen can use it now (file or agent), and whether the ledger's
/// `allowed_signers` parses and lists it for the ledger and approval
/// namespaces.
fn signing_checks(cwd: &Path, ledger: &Path) -> Vec<Finding> {
    let mut out = Vec::new();
    let repo = crate::locate::repo_root(cwd).unwrap_or_else(|| cwd.to_path_buf());
    let key = match vnx_core::signing::signing_key(&repo) {
        Ok(Some(key)) => {
            let usable = key.check_usable();
            out.push(match &usable {
                Ok(()) => finding(
                    "signing key",
                    Status::Ok,
                    format!("{} ({})", key.fingerprint(), key.public_key_line()),
                    None,
                ),
                Err(e) => finding(
                    "signing key",
                    Status::Fail,
                    format!("{} is configured but cannot sign now: {e}", key.fingerprint()),
                    Some("add it to ssh-agent (`ssh-add KEYFILE`), or point user.signingkey at the private key file"),
                ),
            });
            Some(key)
        }
        Ok(None) => {
            out.push(finding(
                "signing key",
                Status::Warn,
                "none: receipts and approvals are unsigned, and `vnx gate --base` does not believe them",
                Some(vnx_core::signing::KEY_SETUP_HINT),
            ));
            None
        }
        Err(e) => {
            out.push(finding("signing key", Status::Fail, e.to_string(), None));
            None
        }
    };
    let path = ledger.join(vnx_gate::ALLOWED_SIGNERS_FILE);
    if !path.is_file() {
        let line = key.as_ref().map_or_else(String::new, |k| {
            format!(
                ": `{}`",
                vnx_sign::allowed_signers_line(&crate::locate::writer_identity(), k)
            )
        });
        out.push(finding(
            "allowed_signers",
            Status::Warn,
            format!("no {}: nobody's signature is trusted by `vnx gate`", path.display()),
            Some(&format!(
                "create it with one line per person or CI key{line}, commit it signed (`git commit -S`), and merge it"
            )),
        ));
        return out;
    }
    let signers = match vnx_sign::AllowedSigners::load(&path) {
        Ok(signers) => signers,
        Err(e) => {
            out.push(finding(
                "allowed_signers",
                Status::Fail,
                e.to_string(),
                None,
            ));
            return out;
        }
    };
    let Some(key) = key else {
        out.push(finding(
            "allowed_signers",
            Status::Ok,
            format!("{} lists {} key line(s)", path.display(), signers.len()),
            None,
        ));
        return out;
    };
    let now = chrono::Utc::now().timestamp();
    for namespace in [vnx_sign::LEDGER_NAMESPACE, vnx_sign::APPROVAL_NAMESPACE] {
        out.push(
            match signers.principals_for(key.public_key(), namespace, now) {
                Ok(principals) => finding(
                    format!("allowed_signers ({namespace})"),
                    Status::Ok,
                    format!("your key signs as {}", principals.join(", ")),
                    None,
                ),
                Err(e) => finding(
                    format!("allowed_signers ({namespace})"),
                    Status::Warn,
                    e.to_string(),
                    Some(&format!(
                        "add `{}` to {} in a signed commit, and merge it",
                        vnx_sign::allowed_signers_line(&crate::locate::writer_identity(), &key),
                        path.display()
                    )),
                ),
            },
        );
    }
    out
}

/// The variables set in vnx's environment that a `provider` worker does not
/// receive (its allow-list and the billing guard), by name; informational.
fn withheld_finding(provider: &str, withheld: &[String]) -> Finding {
    if withheld.is_empty() {
        return finding(
            "worker environment",
            Status::Ok,
            format!("a {provider} worker receives every variable set here"),
            None,
        );
    }
    finding(
        "worker environment",
        Status::Ok,
        format!(
            "{} variable(s) set here are withheld from a {provider} worker: {}; name in [worker] pass_env in vnx.toml any that workers need",
            withheld.len(),
            withheld.join(", ")
        ),
        None,
    )
}

/// Whether workers can run in the sandbox (`--sandbox`, `[worker]
/// sandbox`): bwrap on `PATH` and a kernel that lets it create its
/// namespaces. A failure only when vnx.toml turns the sandbox on.
fn sandbox_check(configured: bool) -> Finding {
    use vnx_core::pipeline::sandbox::{Support, support};
    match support(std::env::var_os("PATH").as_deref()) {
        Support::Available { bwrap } => finding(
            "sandbox",
            Status::Ok,
            format!(
                "{} can sandbox workers (`vnx run --sandbox`){}",
                bwrap.display(),
                if configured { "; on in vnx.toml" } else { "" }
            ),
            None,
        ),
        Support::Unavailable(why) => finding(
            "sandbox",
            if configured {
                Status::Fail
            } else {
                Status::Warn
            },
            why,
            Some(
                "install bubblewrap (Debian: apt-get install bubblewrap) on Linux with unprivileged user namespaces, or leave [worker] sandbox off",
            ),
        ),
    }
}

/// One finding per CLI whose billing variables are set (names only), saying
/// what a dispatch in the configured default `mode` does with them; a single
/// `ok` finding when none is set.
fn billing_findings(set: &[BillingVars], mode: Billing) -> Vec<Finding> {
    if set.is_empty() {
        return vec![finding(
            "billing variables",
            Status::Ok,
            "none of the API-billing variables is set",
            None,
        )];
    }
    set.iter()
        .map(|b| {
            let cli = b.kind.name();
            let check = format!("billing {cli}");
            let all: Vec<&str> = b.refused.iter().chain(&b.removed).copied().collect();
            let them = if all.len() == 1 { "it" } else { "them" };
            if mode == Billing::Api {
                return finding(
                    check,
                    Status::Warn,
                    format!(
                        "{} set: vnx.toml sets billing = \"api\", so {cli} dispatches get {them} and bill per token; removed from every other worker",
                        all.join(", ")
                    ),
                    Some(&format!(
                        "to stay on your subscription, set [run] billing = \"subscription\" in vnx.toml, or unset {them}"
                    )),
                );
            }
            let mut detail = Vec::new();
            if !b.refused.is_empty() {
                detail.push(format!(
                    "{} set: subscription-mode {cli} dispatches will refuse to start ({} would bill an API account instead of your login)",
                    b.refused.join(", "),
                    if b.refused.len() == 1 { "it" } else { "they" }
                ));
            }
            if !b.removed.is_empty() {
                detail.push(format!(
                    "{} set: removed from every claude, codex and gemini worker in subscription mode, so {cli} runs on its own login",
                    b.removed.join(", ")
                ));
            }
            let (status, fix) = if b.refused.is_empty() {
                (
                    Status::Warn,
                    format!(
                        "nothing to do to stay on your subscription; unset {them} if unused, or pass `--billing api` to let {cli} bill per token on purpose"
                    ),
                )
            } else {
                (
                    Status::Fail,
                    format!(
                        "unset {} to stay on your subscription, or pass `--billing api` to pay per token on purpose",
                        b.refused.join(", ")
                    ),
                )
            };
            finding(check, status, detail.join("; "), Some(&fix))
        })
        .collect()
}

async fn claude_login(
    binary: &Path,
    provider: &vnx_agents::Provider,
    env: &EnvSource,
    scratch: &Path,
) -> Finding {
    // `claude auth status` reads the local login state and prints JSON; it
    // makes no model request.
    let result = capture(
        binary,
        &["auth", "status"],
        Some(provider),
        env,
        Duration::from_secs(30),
        scratch,
    )
    .await;
    let parsed = result
        .as_ref()
        .ok()
        .and_then(|c| serde_json::from_str::<serde_json::Value>(c.stdout.trim()).ok());
    match parsed {
        Some(v) if v["loggedIn"] == true => finding(
            "claude login",
            Status::Ok,
            format!(
                "logged in ({})",
                v["authMethod"].as_str().unwrap_or("unknown method")
            ),
            None,
        ),
        Some(_) => finding(
            "claude login",
            Status::Fail,
            "not logged in",
            Some("run `claude` once and log in with your subscription (`claude auth login`)"),
        ),
        None => finding(
            "claude login",
            Status::Warn,
            match result {
                Ok(c) => format!("`claude auth status` gave no status (exit {:?})", c.code),
                Err(e) => format!("`claude auth status` did not run: {e}"),
            },
            Some("run `claude auth status` yourself to see why"),
        ),
    }
}

async fn tool(
    name: &str,
    args: &[&str],
    env: &EnvSource,
    scratch: &Path,
    missing: Status,
    fix: &str,
) -> Finding {
    let Some(path) = find_program(name, env) else {
        return finding(name, missing, "not found on PATH", Some(fix));
    };
    match capture(&path, args, None, env, Duration::from_secs(10), scratch).await {
        Ok(c) if c.code == Some(0) => finding(
            name,
            Status::Ok,
            c.stdout.lines().next().unwrap_or("").trim().to_owned(),
            None,
        ),
        Ok(c) => finding(
            name,
            missing,
            format!("{} exited with {:?}", path.display(), c.code),
            Some(fix),
        ),
        Err(e) => finding(name, missing, e.to_string(), Some(fix)),
    }
}

fn ledger_check(dir: &PathBuf) -> Finding {
    if !dir.join(vnx_ledger::store::MANIFEST_FILE).is_file() {
        return finding(
            "ledger",
            Status::Warn,
            format!("no ledger at {}", dir.display()),
            Some("`vnx init` creates it (the first dispatch does too)"),
        );
    }
    match vnx_ledger::verify_paths(
        std::slice::from_ref(dir),
        &vnx_ledger::VerifyOptions::default(),
    ) {
        Ok(report) if report.ok => finding(
            "ledger",
            Status::Ok,
            format!(
                "{} verifies: {} record(s) in {} segment(s)",
                dir.display(),
                report.records(),
                report.segments.len()
            ),
            None,
        ),
        Ok(report) => {
            let first = report
                .all_findings()
                .find(|f| f.severity == vnx_ledger::Severity::Error);
            let detail = first.map_or_else(String::new, |f| {
                format!("{}:{}: {}", f.path.display(), f.line, f.reason.label())
            });
            finding(
                "ledger",
                Status::Fail,
                format!("does not verify: {detail}"),
                Some("run `vnx verify-ledger` for the full report"),
            )
        }
        Err(e) => finding("ledger", Status::Fail, e.to_string(), None),
    }
}
