use std::fmt::Write as _;
use std::path::Path;

use vnx_agents::PermissionProfile;
use vnx_prepare::{BUILTIN_SKILLS, GateMode, SkillCatalog, SkillError, SkillSource, parse_skill};

use crate::write;

fn skill_md(name: &str, description: &str) -> String {
    format!("---\nname: {name}\ndescription: {description}\n---\nDo the {name} thing.\n")
}

struct Dirs {
    repo: tempfile::TempDir,
    user: tempfile::TempDir,
}

impl Dirs {
    fn new() -> Dirs {
        Dirs {
            repo: tempfile::tempdir().unwrap(),
            user: tempfile::tempdir().unwrap(),
        }
    }
    fn repo_skill(&self, name: &str, text: &str) -> std::path::PathBuf {
        write(
            self.repo.path(),
            &format!(".vnx/skills/{name}/SKILL.md"),
            text,
        )
    }
    fn user_skill(&self, name: &str, text: &str) -> std::path::PathBuf {
        write(self.user.path(), &format!("{name}/SKILL.md"), text)
    }
    fn catalog(&self) -> SkillCatalog {
        SkillCatalog::new(Some(self.repo.path()), Some(self.user.path().to_path_buf()))
    }
}

#[test]
fn lookup_order_repo_then_user_then_builtin() {
    let d = Dirs::new();
    let repo_impl = d.repo_skill("implement", &skill_md("implement", "repo implement"));
    d.repo_skill("alpha", &skill_md("alpha", "repo only"));
    d.user_skill("implement", &skill_md("implement", "user implement"));
    let user_review = d.user_skill("review", &skill_md("review", "user review"));
    d.user_skill("beta", &skill_md("beta", "user only"));
    // Folders without SKILL.md and files are not skills.
    std::fs::create_dir_all(d.repo.path().join(".vnx/skills/empty")).unwrap();
    write(d.repo.path(), ".vnx/skills/README.md", "notes");
    let catalog = d.catalog();

    let implement = catalog.show("implement").unwrap();
    assert_eq!(implement.source, SkillSource::Repo);
    assert_eq!(implement.description, "repo implement");
    assert_eq!(implement.path, repo_impl);
    assert_eq!(implement.body, "Do the implement thing.");

    let review = catalog.show("review").unwrap();
    assert_eq!(
        (review.source, review.path),
        (SkillSource::User, user_review)
    );

    let test = catalog.show("test").unwrap();
    assert_eq!(test.source, SkillSource::Builtin);
    assert!(test.path.starts_with("<builtin>"));

    let list = catalog.list().unwrap();
    let names: Vec<&str> = list.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        ["alpha", "beta", "docs", "implement", "review", "test"]
    );
    let entry = |n: &str| list.iter().find(|e| e.name == n).unwrap();
    assert_eq!(entry("implement").source, SkillSource::Repo);
    assert_eq!(
        entry("implement").shadows,
        [SkillSource::User, SkillSource::Builtin]
    );
    assert_eq!(entry("review").shadows, [SkillSource::Builtin]);
    assert_eq!(entry("beta").source, SkillSource::User);
    assert!(entry("alpha").shadows.is_empty());
    assert_eq!(entry("docs").source, SkillSource::Builtin);
    assert_eq!(entry("alpha").description.as_deref(), Some("repo only"));

    // Without a repository or user directory only the built-ins remain.
    let bare = SkillCatalog::new(None, None);
    assert_eq!(bare.show("implement").unwrap().source, SkillSource::Builtin);
    assert_eq!(bare.list().unwrap().len(), BUILTIN_SKILLS.len());
}

#[test]
fn user_dir_from_environment_values() {
    use vnx_prepare::user_skills_dir;
    assert_eq!(
        user_skills_dir(Some(Path::new("/x/cfg")), Some(Path::new("/home/u"))),
        Some(Path::new("/x/cfg/vnx/skills").to_path_buf())
    );
    // A relative XDG_CONFIG_HOME is ignored, as the XDG spec says.
    assert_eq!(
        user_skills_dir(Some(Path::new("cfg")), Some(Path::new("/home/u"))),
        Some(Path::new("/home/u/.config/vnx/skills").to_path_buf())
    );
    assert_eq!(user_skills_dir(None, None), None);
}

#[test]
fn unknown_skill_lists_the_known_ones() {
    let d = Dirs::new();
    d.repo_skill("deploy", &skill_md("deploy", "ship it"));
    let err = d.catalog().show("implment").unwrap_err();
    let SkillError::Unknown { name, known } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(name, "implment");
    assert_eq!(known, &["deploy", "docs", "implement", "review", "test"]);
    let text = err.to_string();
    assert!(
        text.contains("deploy, docs, implement, review, test"),
        "{text}"
    );

    for bad in ["../etc", "", "Implement", "a/b", ".hidden"] {
        let err = d.catalog().show(bad).unwrap_err();
        assert!(
            matches!(err, SkillError::InvalidName { .. }),
            "{bad}: {err:?}"
        );
    }
}

/// Loads a repo skill named `x` whose SKILL.md is `text` and returns the error.
fn load_err(text: &str) -> (SkillError, std::path::PathBuf) {
    let d = Dirs::new();
    let path = d.repo_skill("x", text);
    let err = d.catalog().show("x").unwrap_err();
    (err, path)
}

fn front_matter_err(text: &str) -> (usize, Option<String>, String) {
    let (err, path) = load_err(text);
    let rendered = err.to_string();
    assert!(
        rendered.starts_with(&path.display().to_string()),
        "error does not name the file: {rendered}"
    );
    match err {
        SkillError::FrontMatter { line, field, .. } => (line, field, rendered),
        other => panic!("expected a front matter error, got {other:?}"),
    }
}

#[test]
fn malformed_front_matter_names_file_line_and_field() {
    let (line, field, text) =
        front_matter_err("---\nname: x\ndescription: d\nprofile: readonly\n---\nbody\n");
    assert_eq!((line, field.as_deref()), (4, Some("profile")));
    assert!(text.contains(":4:"), "{text}");
    assert!(text.contains("read-only, edit, full"), "{text}");

    let (line, field, text) =
        front_matter_err("---\nname: x\ndescription: d\n\nprofle: edit\n---\nbody\n");
    assert_eq!((line, field.as_deref()), (5, Some("profle")), "{text}");
    assert!(text.contains("unknown field"), "{text}");

    let (line, field, text) = front_matter_err("---\nname: x\n---\nbody\n");
    assert_eq!(field.as_deref(), Some("description"), "{text}");
    assert_eq!(line, 2);

    let (line, field, text) =
        front_matter_err("---\nname: x\ndescription: d\nediting: maybe\n---\nbody\n");
    assert_eq!((line, field.as_deref()), (4, Some("editing")));
    assert!(text.contains("true or false"), "{text}");

    let (line, field, text) = front_matter_err(
        "---\nname: x\ndescription: d\nallowed_tools:\n  - Read\n  - [nested]\n---\nbody\n",
    );
    assert_eq!(
        (line, field.as_deref()),
        (6, Some("allowed_tools")),
        "{text}"
    );
    assert!(text.contains("list of tool names"), "{text}");

    let (line, field, text) =
        front_matter_err("---\nname: x\ndescription: d\ngates: 3\n---\nbody\n");
    assert_eq!((line, field.as_deref()), (4, Some("gates")), "{text}");
    assert!(text.contains("list of gate names"), "{text}");

    let (line, field, text) = front_matter_err(
        "---\nname: x\ndescription: d\ngates: {only: [a], skipp: [b]}\n---\nbody\n",
    );
    assert_eq!((line, field.as_deref()), (4, Some("skipp")), "{text}");

    let (line, field, text) = front_matter_err("---\nname: y\ndescription: d\n---\nbody\n");
    assert_eq!((line, field.as_deref()), (2, Some("name")));
    assert!(text.contains("folder"), "{text}");

    let (line, _, text) = front_matter_err("---\nname: x\ndescription: [unclosed\n---\nbody\n");
    assert!((3..=4).contains(&line), "{text}");
}

#[test]
fn malformed_structure_is_reported_with_its_line() {
    let cases = [
        ("no front matter\n", 1, "`---` on the first line"),
        ("---\nname: x\ndescription: d\n", 1, "never closed"),
        ("---\nname: x\ndescription: d\n---\n\n  \n", 4, "no body"),
    ];
    for (text, want_line, want) in cases {
        let (err, path) = load_err(text);
        let SkillError::Malformed { line, .. } = &err else {
            panic!("{text:?}: {err:?}")
        };
        assert_eq!(*line, want_line, "{text:?}");
        let rendered = err.to_string();
        assert!(rendered.contains(&path.display().to_string()), "{rendered}");
        assert!(rendered.contains(want), "{rendered}");
    }
    let (err, _) = load_err(&"x".repeat(300 * 1024));
    assert!(err.to_string().contains("larger than"), "{err}");
    let d = Dirs::new();
    let path = d.repo.path().join(".vnx/skills/x/SKILL.md");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, b"---\nname: x\n\xff\n---\n").unwrap();
    let err = d.catalog().show("x").unwrap_err();
    assert!(
        matches!(err, SkillError::Malformed { line: 3, .. }),
        "{err:?}"
    );
}

#[test]
fn hostile_front_matter_is_an_error_not_a_panic() {
    let mut bomb = String::from(
        "---\nname: x\ndescription: d\nmetadata:\n  a: &a [x, x, x, x, x, x, x, x, x]\n",
    );
    for (name, prev) in [
        ("b", "a"),
        ("c", "b"),
        ("d", "c"),
        ("e", "d"),
        ("f", "e"),
        ("g", "f"),
        ("h", "g"),
    ] {
        let refs = vec![format!("*{prev}"); 9].join(", ");
        writeln!(bomb, "  {name}: &{name} [{refs}]").unwrap();
    }
    bomb.push_str("---\nbody\n");
    let deep = format!(
        "---\nname: x\ndescription: d\nmetadata: {{k: {}{}}}\n---\nbody\n",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let cases = [
        bomb,
        deep,
        "---\nname: x\ndescription: d\ngates: {diff_limit_lines: 99999999999999999999999}\n---\nb\n".to_owned(),
        "---\nname: x\ndescription: d\n\tprofile: edit\n---\nb\n".to_owned(),
        "---\n- just\n- a list\n---\nb\n".to_owned(),
        "---\n\n---\nb\n".to_owned(),
        "---\n---\n".to_owned(),
        "---".to_owned(),
        "---\nname: x\ndescription: d\nname: x\n---\nb\n".to_owned(),
    ];
    for text in cases {
        let result = parse_skill(&text, Path::new("x/SKILL.md"), SkillSource::Repo);
        assert!(result.is_err(), "accepted: {}", &text[..text.len().min(80)]);
    }
}

#[test]
fn a_broken_skill_is_listed_with_its_error() {
    let d = Dirs::new();
    d.repo_skill("broken", "---\nname: broken\n---\nbody\n");
    let list = d.catalog().list().unwrap();
    let broken = list.iter().find(|e| e.name == "broken").unwrap();
    assert_eq!(broken.description, None);
    assert!(broken.error.as_deref().unwrap().contains("description"));
}

#[test]
fn all_fields_and_both_gate_forms() {
    let d = Dirs::new();
    d.repo_skill(
        "audit",
        "---\nname: audit\ndescription: Audit things.\nprofile: read-only\n\
         allowed-tools: [Read, \"Bash(git diff:*)\"]\nreport_schema: schema.json\n\
         gates: [no-secrets, \"command:tests\"]\ngate_mode: enforce\nrequires_approval: true\n\
         license: MIT\nmetadata: {owner: me}\n---\n\n# Audit\n\nLook.\n",
    );
    let skill = d.catalog().show("audit").unwrap();
    assert_eq!(skill.profile, PermissionProfile::ReadOnly);
    assert_eq!(skill.allowed_tools, ["Read", "Bash(git diff:*)"]);
    assert_eq!(
        skill.report_schema.as_deref(),
        Some(
            d.repo
                .path()
                .join(".vnx/skills/audit/schema.json")
                .as_path()
        )
    );
    assert_eq!(
        skill.gates.only.as_deref(),
        Some(&["no-secrets".to_owned(), "command:tests".to_owned()][..])
    );
    assert_eq!(skill.gate_mode, Some(GateMode::Enforce));
    let run = vnx_prepare::RunConfig::default();
    assert_eq!(skill.effective_gate_mode(&run), GateMode::Enforce);
    assert!(!skill.editing, "read-only skills do not edit by default");
    assert!(skill.requires_approval);
    assert_eq!(skill.body, "# Audit\n\nLook.");

    let table = parse_skill(
        "---\nname: t\ndescription: d\ngates:\n  skip: [cross-review]\n  diff_limit_lines: 300\n---\nb\n",
        Path::new("t/SKILL.md"),
        SkillSource::Repo,
    )
    .unwrap();
    assert_eq!(table.gates.only, None);
    assert_eq!(table.gates.skip, ["cross-review"]);
    assert_eq!(table.gates.diff_limit_lines, Some(300));
    assert_eq!(table.profile, PermissionProfile::Edit);
    assert!(table.editing);
    assert_eq!(table.gate_mode, None);
    assert_eq!(
        table.effective_gate_mode(&vnx_prepare::RunConfig::default()),
        GateMode::Shadow
    );

    // CRLF line endings and a byte-order mark are fine.
    let crlf = parse_skill(
        "\u{feff}---\r\nname: t\r\ndescription: d\r\n---\r\nbody\r\n",
        Path::new("t/SKILL.md"),
        SkillSource::Repo,
    )
    .unwrap();
    assert_eq!(crlf.body, "body");
}

#[test]
fn builtins_parse_and_ask_for_the_json_report() {
    let catalog = SkillCatalog::new(None, None);
    for name in ["implement", "review", "test", "docs"] {
        let skill = catalog.show(name).unwrap();
        assert_eq!(skill.name, name);
        assert_eq!(skill.source, SkillSource::Builtin);
        assert!(!skill.description.is_empty());
        assert!(skill.body.len() > 500, "{name} is too thin");
        assert!(
            skill.body.contains("JSON report"),
            "{name} does not tell the agent to write the JSON report"
        );
        assert_eq!(skill.report_schema, None, "{name} uses the default schema");
    }
    let review = catalog.show("review").unwrap();
    assert_eq!(review.profile, PermissionProfile::ReadOnly);
    assert!(!review.editing);
    assert!(catalog.show("implement").unwrap().editing);
}
