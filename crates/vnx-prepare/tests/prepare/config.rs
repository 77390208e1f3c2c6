use std::path::Path;
use std::process::Command;
use std::time::Duration;

use vnx_prepare::{
    CONFIG_FILE, Config, ConfigError, GateMode, InitError, Overrides, default_toml, init,
};
use vnx_types::{Billing, Lane};

use crate::{fake_repo, write};

#[test]
fn discovered_from_a_subdirectory() {
    let repo = fake_repo();
    write(
        repo.path(),
        CONFIG_FILE,
        "[run]\nprovider = \"codex\"\ntimeout = \"1h30m\"\nmax_budget_usd = \"2.50\"\n",
    );
    let sub = repo.path().join("src").join("deep");
    std::fs::create_dir_all(&sub).unwrap();

    let loaded = Config::load(&sub).unwrap();
    let root = repo.path().canonicalize().unwrap();
    assert_eq!(loaded.root, root);
    assert_eq!(loaded.path, Some(root.join(CONFIG_FILE)));
    assert_eq!(loaded.config.run.provider, "codex");
    assert_eq!(loaded.config.run.timeout, Duration::from_mins(90));
    assert_eq!(loaded.config.run.max_budget_usd_micros, Some(2_500_000));
    assert_eq!(loaded.ledger_dir(), root.join("ledger"));
    // Keys not written keep their defaults.
    assert_eq!(loaded.config.gates, Config::default().gates);
}

#[test]
fn no_file_means_defaults_and_the_walk_stops_at_the_git_root() {
    let outer = tempfile::tempdir().unwrap();
    // A vnx.toml above the repository must not be picked up.
    write(outer.path(), CONFIG_FILE, "[run]\nprovider = \"gemini\"\n");
    let repo = outer.path().join("repo");
    std::fs::create_dir_all(repo.join(".git")).unwrap();
    std::fs::create_dir_all(repo.join("a")).unwrap();

    let loaded = Config::load(&repo.join("a")).unwrap();
    assert_eq!(loaded.path, None);
    assert_eq!(loaded.root, repo.canonicalize().unwrap());
    assert_eq!(loaded.config, Config::default());
    assert_eq!(loaded.config.run.provider, "claude");
}

#[test]
fn missing_start_directory_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = Config::load(&dir.path().join("nope")).unwrap_err();
    assert!(matches!(err, ConfigError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("nope"), "{err}");
}

fn parse_err(text: &str) -> ConfigError {
    let repo = fake_repo();
    write(repo.path(), CONFIG_FILE, text);
    Config::load(repo.path()).unwrap_err()
}

#[test]
fn unknown_key_names_file_line_and_key() {
    let err = parse_err("[run]\nprovider = \"claude\"\n\n# comment\nprovidr = \"codex\"\n");
    match &err {
        ConfigError::Parse {
            path,
            line,
            key,
            table,
            message,
            ..
        } => {
            assert!(path.ends_with(CONFIG_FILE), "{}", path.display());
            assert_eq!(*line, 5);
            assert_eq!(key.as_deref(), Some("providr"));
            assert_eq!(table.as_deref(), Some("run"));
            assert!(message.contains("unknown field"), "{message}");
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains("vnx.toml:5:1"), "{text}");
    assert!(text.contains("`providr`"), "{text}");
    assert!(text.contains("[run]"), "{text}");
}

#[test]
fn unknown_key_in_a_provider_table_and_unknown_table() {
    let err = parse_err("[providers.claude]\ndefault_model = \"sonnet\"\nbinaryy = \"x\"\n");
    let ConfigError::Parse { line, key, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!((*line, key.as_deref()), (3, Some("binaryy")), "{err}");

    let err = parse_err("[run]\nprovider = \"claude\"\n[runn]\nx = 1\n");
    let ConfigError::Parse { line, key, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!((*line, key.as_deref()), (3, Some("runn")), "{err}");
}

#[test]
fn bad_values_name_the_key_and_what_is_expected() {
    let err = parse_err("[run]\ntimeout = \"soon\"\n");
    let text = err.to_string();
    assert!(text.contains(":2:"), "{text}");
    assert!(text.contains("`timeout`"), "{text}");
    assert!(text.contains("30m"), "{text}");

    let err = parse_err("[run]\n\nmax_budget_usd = 2.5\n");
    let text = err.to_string();
    assert!(
        text.contains(":3:") && text.contains("max_budget_usd"),
        "{text}"
    );

    let err = parse_err("[run]\ngate_mode = \"strict\"\n");
    let text = err.to_string();
    assert!(
        text.contains("gate_mode") && text.contains("enforce"),
        "{text}"
    );

    let err = parse_err("[run]\nprovider = \"nobody\"\n");
    assert!(matches!(err, ConfigError::Provider { .. }), "{err:?}");
    assert!(err.to_string().contains("[providers.nobody]"), "{err}");

    let err = parse_err("[providers.mine]\nbinary = \"x\"\n");
    assert!(err.to_string().contains("kind"), "{err}");

    let err = parse_err("[[gates.command]]\nname = \"t\"\nargv = []\n");
    assert!(err.to_string().contains("gates.command[0].argv"), "{err}");

    let err = parse_err(
        "[[gates.command]]\nname = \"t\"\nargv = [\"a\"]\n[[gates.command]]\nname = \"t\"\nargv = [\"b\"]\n",
    );
    assert!(err.to_string().contains("duplicate"), "{err}");

    let err = parse_err("[gates]\nforbidden_paths = [\"ok/**\", \"../outside\"]\n");
    assert!(err.to_string().contains("forbidden_paths[1]"), "{err}");

    let err = parse_err("[run\nprovider = 1\n");
    assert!(matches!(err, ConfigError::Parse { line: 1, .. }), "{err:?}");
}

#[test]
fn full_config_parses() {
    let text = r#"
[run]
provider = "fake"
model = "opus"
lane = "tmux"
timeout = "45s"
max_turns = 12
max_budget_usd = "0.75"
gate_mode = "enforce"
cross_review = false
billing = "api"

[providers.fake]
kind = "command"
argv = ["fake-agent", "{prompt_file}"]

[gates]
diff_limit_lines = 0
forbidden_paths = ["secrets/**"]

[[gates.command]]
name = "tests"
argv = ["cargo", "test"]
timeout = "5m"

[[gates.command]]
name = "fmt"
argv = ["cargo", "fmt", "--check"]

[retry]
max_retries = 0
max_wait = "5s"

[ledger]
dir = "receipts"
"#;
    let config = Config::from_toml_str(text, None).unwrap();
    assert_eq!(config.run.lane, Lane::Tmux);
    assert_eq!(config.run.max_turns, Some(12));
    assert_eq!(config.run.max_budget_usd_micros, Some(750_000));
    assert_eq!(config.run.gate_mode, GateMode::Enforce);
    assert!(!config.run.cross_review);
    assert_eq!(config.run.billing, Billing::Api);
    assert_eq!(config.provider().unwrap().name, "fake");
    assert_eq!(config.gates.commands.len(), 2);
    assert_eq!(config.gates.commands[0].timeout, Duration::from_mins(5));
    assert_eq!(config.gates.commands[1].timeout, Duration::from_mins(10));
    assert_eq!(config.retry.max_wait, Duration::from_secs(5));
    assert_eq!(config.ledger.dir, Path::new("receipts"));

    // Serializing and parsing again gives the same configuration.
    let again = Config::from_toml_str(&toml::to_string(&config).unwrap(), None).unwrap();
    assert_eq!(again, config);
}

#[test]
fn the_ledger_is_always_forbidden() {
    let config = Config::default();
    assert_eq!(
        config.effective_forbidden_paths(),
        ["ledger/**", ".vnx/**", "/vnx.toml"]
    );
    let config = Config::from_toml_str(
        "[gates]\nforbidden_paths = [\"*.pem\"]\n[ledger]\ndir = \"audit/receipts/\"\n",
        None,
    )
    .unwrap();
    assert_eq!(
        config.effective_forbidden_paths(),
        ["*.pem", "audit/receipts/**"]
    );
    let outside = Config::from_toml_str("[ledger]\ndir = \"/var/vnx/ledger\"\n", None).unwrap();
    assert_eq!(
        outside.effective_forbidden_paths(),
        Config::default().gates.forbidden_paths
    );
}

#[test]
fn overrides_replace_file_values() {
    let mut config =
        Config::from_toml_str("[run]\nprovider = \"codex\"\nmodel = \"gpt-5\"\n", None).unwrap();
    config
        .apply_overrides(&Overrides {
            provider: Some("claude".into()),
            timeout: Some(vnx_prepare::parse_duration("2m").unwrap()),
            max_budget_usd_micros: vnx_prepare::parse_usd("1.25"),
            gate_mode: Some(GateMode::Enforce),
            cross_review: Some(false),
            ledger_dir: Some("/elsewhere/ledger".into()),
            ..Overrides::default()
        })
        .unwrap();
    assert_eq!(config.run.provider, "claude");
    assert_eq!(config.run.model.as_deref(), Some("gpt-5"), "not overridden");
    assert_eq!(config.run.timeout, Duration::from_mins(2));
    assert_eq!(config.run.max_budget_usd_micros, Some(1_250_000));
    assert_eq!(config.run.gate_mode, GateMode::Enforce);
    assert!(!config.run.cross_review);
    assert_eq!(config.ledger.dir, Path::new("/elsewhere/ledger"));

    let err = config
        .apply_overrides(&Overrides {
            provider: Some("nobody".into()),
            ..Overrides::default()
        })
        .unwrap_err();
    assert!(matches!(err, ConfigError::Provider { .. }), "{err:?}");
}

#[test]
fn commented_default_round_trips_and_documents_every_key() {
    let text = default_toml();
    assert_eq!(
        Config::from_toml_str(text, None).unwrap(),
        Config::default()
    );
    for key in [
        "provider",
        "model",
        "lane",
        "timeout",
        "max_turns",
        "max_budget_usd",
        "gate_mode",
        "cross_review",
        "billing",
        "[providers.claude]",
        "binary",
        "default_model",
        "extra_args",
        "env",
        "prices",
        "kind",
        "argv",
        "output",
        "prompt_on_stdin",
        "diff_limit_lines",
        "forbidden_paths",
        "[[gates.command]]",
        "name",
        "max_retries",
        "max_wait",
        "dir",
    ] {
        let documented = text.lines().any(|l| {
            let l = l.trim_start_matches('#').trim();
            l.starts_with(&format!("{key} =")) || l.starts_with(key) && key.starts_with('[')
        });
        assert!(documented, "default vnx.toml does not show `{key}`");
    }
    // Every key line is preceded by a comment line explaining it (or is part
    // of a commented example block).
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if !line.starts_with('#') && line.contains(" = ") {
            assert!(
                lines[..i].last().is_some_and(|prev| prev.starts_with('#')),
                "key line without a comment above it: {line}"
            );
        }
    }
    // Uncommenting the examples gives a valid configuration too.
    let is_key_line = |l: &str| {
        (l.starts_with('[') && l.ends_with(']') && !l.contains(' '))
            || l.split_once(" = ").is_some_and(|(k, _)| {
                !k.is_empty() && k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
            })
    };
    let uncommented: String = text
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(stripped) if is_key_line(stripped) => format!("{stripped}\n"),
            _ => format!("{l}\n"),
        })
        .collect();
    let config = Config::from_toml_str(&uncommented, None)
        .unwrap_or_else(|e| panic!("{e}\n---\n{uncommented}"));
    assert_eq!(config.run.model.as_deref(), Some("sonnet"));
    assert_eq!(config.run.max_budget_usd_micros, Some(2_500_000));
    assert_eq!(config.gates.commands.len(), 1);
    assert!(config.providers.0.contains_key("my-agent"));
}

#[test]
fn init_creates_everything_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let git = Command::new("git").arg("init").arg("-q").arg(root).status();
    let have_git = git.is_ok_and(|s| s.success());
    if !have_git {
        std::fs::create_dir_all(root.join(".git")).unwrap();
    }

    let report = init(root).unwrap();
    assert_eq!(report.config, root.join(CONFIG_FILE));
    assert_eq!(
        std::fs::read_to_string(&report.config).unwrap(),
        default_toml()
    );
    assert!(root.join("ledger").join("ledger.json").is_file());
    assert_eq!(
        vnx_ledger::Ledger::open(&root.join("ledger"))
            .unwrap()
            .ledger_id(),
        report.ledger_id
    );
    assert!(root.join(".vnx/skills").is_dir());
    assert!(root.join(".vnx/intelligence").is_dir());
    let exclude = root.join(".git/info/exclude");
    assert_eq!(report.exclude_updated.as_deref(), Some(exclude.as_path()));
    let excluded = std::fs::read_to_string(&exclude).unwrap();
    assert!(excluded.contains(".vnx/worktrees/"), "{excluded}");
    assert!(report.notes.is_empty(), "{:?}", report.notes);
    if have_git {
        std::fs::create_dir_all(root.join(".vnx/worktrees/d-1")).unwrap();
        std::fs::write(root.join(".vnx/worktrees/d-1/file"), "x").unwrap();
        let ignored = Command::new("git")
            .current_dir(root)
            .args(["check-ignore", "-q", ".vnx/worktrees/d-1/file"])
            .status()
            .unwrap();
        assert!(
            ignored.success(),
            "git does not ignore the worktrees directory"
        );
    }
    // The config that init wrote loads.
    assert_eq!(Config::load(root).unwrap().config, Config::default());

    // Second run: refused, nothing changed.
    std::fs::write(root.join(CONFIG_FILE), "[run]\nprovider = \"codex\"\n").unwrap();
    let err = init(root).unwrap_err();
    assert!(matches!(err, InitError::ConfigExists { .. }), "{err:?}");
    assert!(err.to_string().contains("does not overwrite"), "{err}");
    assert_eq!(
        std::fs::read_to_string(root.join(CONFIG_FILE)).unwrap(),
        "[run]\nprovider = \"codex\"\n"
    );
    assert_eq!(std::fs::read_to_string(&exclude).unwrap(), excluded);
}

#[test]
fn init_outside_git_notes_it_and_keeps_an_existing_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = vnx_ledger::Ledger::open_or_create(&dir.path().join("ledger")).unwrap();
    let report = init(dir.path()).unwrap();
    assert_eq!(report.ledger_id, ledger.ledger_id());
    assert_eq!(report.exclude_updated, None);
    assert!(report.notes[0].contains("not the root of a git repository"));
    assert!(!report.created_dirs.contains(&dir.path().join("ledger")));
}

#[test]
fn pass_env_names_are_typed_and_checked() {
    let config = Config::from_toml_str(
        "[worker]\npass_env = [\"AWS_PROFILE\"]\n[[gates.command]]\nname = \"t\"\nargv = [\"true\"]\npass_env = [\"DATABASE_URL\"]\n",
        None,
    )
    .unwrap();
    assert_eq!(config.worker.pass_env, ["AWS_PROFILE"]);
    assert_eq!(config.gates.commands[0].pass_env, ["DATABASE_URL"]);
    let err = parse_err("[worker]\npass_env = [\"AWS_PROFILE=dev\"]\n");
    let msg = err.to_string();
    assert!(
        msg.contains("worker.pass_env[0]") && msg.contains("name alone"),
        "{msg}"
    );
    let err = parse_err("[[gates.command]]\nname = \"t\"\nargv = [\"true\"]\npass_env = [\"\"]\n");
    assert!(
        err.to_string().contains("gates.command[0].pass_env[0]"),
        "{err}"
    );
}

#[test]
fn an_endless_vnx_toml_is_refused_at_the_limit_without_reading_it_all() {
    // /dev/zero has size 0 in its metadata and never ends: only a bounded
    // read can refuse it.
    let err = vnx_prepare::Config::from_file(std::path::Path::new("/dev/zero")).unwrap_err();
    assert!(
        matches!(err, vnx_prepare::ConfigError::TooLarge { size, .. } if size == vnx_prepare::MAX_CONFIG_BYTES + 1),
        "{err}"
    );
    assert!(err.to_string().contains("/dev/zero"), "{err}");
}
