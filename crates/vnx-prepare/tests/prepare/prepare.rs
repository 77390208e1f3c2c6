use std::path::{Path, PathBuf};

use chrono::{TimeZone, Utc};
use sha2::{Digest, Sha256};
use vnx_agents::{PermissionProfile, Provider, ProviderKind};
use vnx_ledger::{Clock, Ledger, NewRecord};
use vnx_prepare::{
    Config, DEFAULT_REPORT_SCHEMA_PATH, PART_SEPARATOR, PrepareError, PrepareInputs, Skill,
    SkillCatalog, prepare,
};
use vnx_types::{
    Billing, CostSource, DispatchReceipt, DispatchStatus, GateLayer, GateResult, InstructionHashes,
    Lane, OutcomeClass, ReportInfo, ReportOrigin, Usage, Verdict,
};

use crate::write;

const SCHEMA: &str = r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","required":["summary"],"properties":{"summary":{"type":"string"}}}"#;

fn sha(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

struct Fixture {
    repo: tempfile::TempDir,
    schema: PathBuf,
    worktree: PathBuf,
    report: PathBuf,
    forbidden: Vec<String>,
}

impl Fixture {
    fn new() -> Fixture {
        let repo = tempfile::tempdir().unwrap();
        let schema = write(repo.path(), "schemas/report.schema.json", SCHEMA);
        let worktree = repo.path().join(".vnx/worktrees/d-1");
        let report = worktree.join(".vnx-report.json");
        Fixture {
            repo,
            schema,
            worktree,
            report,
            forbidden: vec!["ledger/**".into(), "secrets/*.key".into()],
        }
    }

    fn skill(&self, name: &str) -> Skill {
        SkillCatalog::new(Some(self.repo.path()), None)
            .show(name)
            .unwrap()
    }

    fn inputs<'a>(&'a self, skill: &'a Skill, task: &'a str) -> PrepareInputs<'a> {
        let mut inputs = PrepareInputs::new(skill, task, &self.worktree, &self.report);
        inputs.repo_root = Some(self.repo.path());
        inputs.forbidden_paths = &self.forbidden;
        inputs.default_report_schema = &self.schema;
        inputs
    }
}

#[test]
fn parts_in_order_with_correct_hashes() {
    let f = Fixture::new();
    write(f.repo.path(), ".vnx/intelligence/b-style.md", "Use tabs.\n");
    write(
        f.repo.path(),
        ".vnx/intelligence/a-build.md",
        "Build with `make all`.\n",
    );
    write(f.repo.path(), ".vnx/intelligence/ignored.txt", "not a note");
    let skill = f.skill("implement");
    let prepared = prepare(&f.inputs(&skill, "Add a --verbose flag")).unwrap();

    let names: Vec<&str> = prepared.parts.iter().map(|p| p.name).collect();
    assert_eq!(
        names,
        [
            "skill",
            "permissions",
            "intelligence",
            "report_contract",
            "task"
        ]
    );
    for part in &prepared.parts {
        assert_eq!(part.sha256, sha(&part.text), "{}", part.name);
    }
    let joined = prepared
        .parts
        .iter()
        .map(|p| p.text.as_str())
        .collect::<Vec<_>>()
        .join(PART_SEPARATOR);
    assert_eq!(prepared.instruction, joined);
    assert_eq!(prepared.sha256, sha(&prepared.instruction));

    let part = |name: &str| {
        prepared
            .parts
            .iter()
            .find(|p| p.name == name)
            .unwrap()
            .text
            .as_str()
    };
    assert_eq!(part("skill"), skill.body);
    let permissions = part("permissions");
    assert!(permissions.contains(&f.worktree.display().to_string()));
    assert!(permissions.contains("**edit**"));
    assert!(permissions.contains("`ledger/**`") && permissions.contains("`secrets/*.key`"));
    let intelligence = part("intelligence");
    let (a, b) = (
        intelligence.find("make all").unwrap(),
        intelligence.find("Use tabs").unwrap(),
    );
    assert!(a < b, "notes are in file-name order");
    assert!(!intelligence.contains("not a note"));
    let contract = part("report_contract");
    assert!(contract.contains(&f.report.display().to_string()));
    assert!(contract.contains(SCHEMA));
    assert_eq!(part("task"), "## Task\n\nAdd a --verbose flag");

    // The parts appear in the instruction in order.
    let mut at = 0;
    for p in &prepared.parts {
        let found = prepared.instruction[at..].find(&p.text).unwrap();
        at += found + p.text.len();
    }

    // Deterministic: the same inputs give the same bytes and hashes.
    let again = prepare(&f.inputs(&skill, "Add a --verbose flag")).unwrap();
    assert_eq!(again, prepared);
    // A different task changes only the task part's hash and the whole.
    let other = prepare(&f.inputs(&skill, "Something else")).unwrap();
    for (x, y) in prepared.parts.iter().zip(&other.parts) {
        assert_eq!(x.sha256 == y.sha256, x.name != "task", "{}", x.name);
    }
    assert_ne!(other.sha256, prepared.sha256);

    let hashes: InstructionHashes = prepared.hashes();
    assert_eq!(hashes.sha256, prepared.sha256);
    assert_eq!(hashes.parts.len(), 5);
    assert_eq!(hashes.parts[4].name, "task");
    assert_eq!(hashes.parts[4].sha256, prepared.parts[4].sha256);
}

#[test]
fn read_only_profile_in_words_and_in_the_request() {
    let f = Fixture::new();
    let skill = f.skill("review");
    let prepared = prepare(&f.inputs(&skill, "Review the last commit")).unwrap();
    assert_eq!(prepared.profile, PermissionProfile::ReadOnly);
    assert!(prepared.parts[1].text.contains("**read-only**"));
    assert!(prepared.parts[1].text.contains("`Bash(git diff:*)`"));
    assert!(prepared.parts[3].text.contains("final message"));

    let mut config = Config::default();
    config.run.max_turns = Some(7);
    config.run.max_budget_usd_micros = Some(1_500_000);
    config.run.model = Some("opus".into());
    let claude = Provider::builtin(ProviderKind::Claude);
    let req = prepared.dispatch_request(&claude, &config.run, &f.worktree);
    assert_eq!(req.prompt, prepared.instruction);
    assert_eq!(req.permission, PermissionProfile::ReadOnly);
    assert_eq!(req.allowed_tools, skill.allowed_tools);
    assert_eq!(req.max_turns, Some(7));
    assert_eq!(req.budget_usd_micros, Some(1_500_000));
    assert_eq!(req.model.as_deref(), Some("opus"));
    assert_eq!(req.billing, Billing::Subscription);
    let schema: serde_json::Value =
        serde_json::from_str(req.json_schema.as_deref().unwrap()).unwrap();
    assert_eq!(
        schema,
        serde_json::from_str::<serde_json::Value>(SCHEMA).unwrap()
    );

    // vnx-agents turns it into claude's flags: permission mode, tools, schema.
    let inv = vnx_agents::build_invocation(&claude, &req, [("PATH", "/usr/bin")]).unwrap();
    let args = inv.args.join(" ");
    assert!(args.contains("--permission-mode default"), "{args}");
    assert!(args.contains("--json-schema"), "{args}");
    assert!(args.contains("Bash(git diff:*)"), "{args}");
    assert_eq!(inv.stdin.as_deref(), Some(prepared.instruction.as_bytes()));

    // No --json-schema for other CLIs or the tmux lane.
    let codex = Provider::builtin(ProviderKind::Codex);
    assert_eq!(
        prepared
            .dispatch_request(&codex, &config.run, &f.worktree)
            .json_schema,
        None
    );
    config.run.lane = Lane::Tmux;
    assert_eq!(
        prepared
            .dispatch_request(&claude, &config.run, &f.worktree)
            .json_schema,
        None
    );
}

#[test]
fn intelligence_is_bounded_with_a_marker() {
    let f = Fixture::new();
    let big = "lorem ipsum dolor sit amet ünïcödé ".repeat(3_000); // > 100 KiB
    assert!(big.len() > 100 * 1024);
    write(f.repo.path(), ".vnx/intelligence/big.md", &big);
    write(f.repo.path(), ".vnx/intelligence/small.md", "Small note.");
    let skill = f.skill("implement");
    let inputs = f.inputs(&skill, "task");
    let prepared = prepare(&inputs).unwrap();
    let intelligence = &prepared.parts[2].text;
    assert!(
        intelligence.len() <= inputs.intelligence_bytes,
        "{}",
        intelligence.len()
    );
    assert!(
        intelligence.ends_with("the rest was left out]"),
        "{}",
        &intelligence[intelligence.len() - 100..]
    );
    assert!(prepared.intelligence_truncated);
    assert!(
        !intelligence.contains("Small note."),
        "cut after the big note"
    );
    assert!(prepared.instruction.len() < 8 * 1024 + 16 * 1024);

    let mut tight = f.inputs(&skill, "task");
    tight.intelligence_bytes = 200;
    let prepared = prepare(&tight).unwrap();
    assert!(prepared.parts[2].text.len() <= 200);

    // Without notes or lessons the part says so.
    let empty = Fixture::new();
    let prepared = prepare(&empty.inputs(&skill, "task")).unwrap();
    assert!(prepared.parts[2].text.contains("Nothing recorded"));
    assert!(!prepared.intelligence_truncated);
}

fn receipt(id: &str, skill: &str, gates: &[(&str, Verdict, &str)]) -> NewRecord {
    let failed = gates.iter().any(|(_, v, _)| *v == Verdict::Fail);
    let body = DispatchReceipt {
        dispatch_id: id.into(),
        status: if failed {
            DispatchStatus::Failed
        } else {
            DispatchStatus::Passed
        },
        skill: Some(skill.into()),
        provider: "claude".into(),
        model: None,
        lane: Lane::Headless,
        billing: Billing::Subscription,
        cli_version: None,
        session_id: None,
        api_key_source: None,
        outcome: OutcomeClass::Success,
        usage: Usage::default(),
        cost_usd_micros: 0,
        cost_source: CostSource::Reported,
        duration_ms: 1000,
        instruction: InstructionHashes {
            sha256: "0".repeat(64),
            parts: vec![],
        },
        attempts: vec![],
        report: ReportInfo {
            origin: ReportOrigin::Worker,
            sha256: "0".repeat(64),
            valid: true,
            errors: vec![],
        },
        gates: gates
            .iter()
            .map(|(name, verdict, detail)| GateResult {
                name: (*name).into(),
                layer: GateLayer::Deterministic,
                verdict: *verdict,
                detail: (*detail).into(),
                duration_ms: None,
                usage: None,
                cost_usd_micros: None,
            })
            .collect(),
        git: None,
        event_log_sha256: None,
        batch_id: None,
        builds_on: vec![],
        approval_required: false,
        warnings: vec![],
    };
    NewRecord::new("dispatch.receipt", &body).unwrap()
}

fn ledger_at(dir: &Path, minute: u32) -> Ledger {
    Ledger::open_or_create(dir)
        .unwrap()
        .with_clock(Clock::Fixed(
            Utc.with_ymd_and_hms(2026, 11, 21, 12, minute, 0).unwrap(),
        ))
}

#[test]
fn lessons_come_from_this_skills_failed_gates_in_the_ledger() {
    let f = Fixture::new();
    let ledger_dir = f.repo.path().join("ledger");
    let seg = "alice--main.ndjson";
    ledger_at(&ledger_dir, 1)
        .append(
            seg,
            &[receipt(
                "d-old",
                "implement",
                &[(
                    "diff-size",
                    Verdict::Fail,
                    "diff of 5000 lines exceeds 2000",
                )],
            )],
        )
        .unwrap();
    ledger_at(&ledger_dir, 2)
        .append(
            seg,
            &[
                receipt(
                    "d-review",
                    "review",
                    &[("report-valid", Verdict::Fail, "REVIEW-ONLY failure")],
                ),
                receipt(
                    "d-mid",
                    "implement",
                    &[
                        ("worker-outcome", Verdict::Pass, "ok"),
                        (
                            "no-placeholders",
                            Verdict::Fail,
                            "added TODO in src/main.rs:12\nand FIXME in src/lib.rs:3",
                        ),
                        ("no-secrets", Verdict::Error, "scanner crashed"),
                    ],
                ),
            ],
        )
        .unwrap();
    // A later receipt in another segment (another writer).
    ledger_at(&ledger_dir, 3)
        .append(
            "bob--main.ndjson",
            &[receipt(
                "d-new",
                "implement",
                &[("command:tests", Verdict::Fail, "3 tests failed")],
            )],
        )
        .unwrap();
    // Noise that must be skipped: a started record and an unrelated note.
    ledger_at(&ledger_dir, 4)
        .append(
            seg,
            &[NewRecord::new(
                "note",
                &serde_json::json!({"text": "no-placeholders failed"}),
            )
            .unwrap()],
        )
        .unwrap();

    let skill = f.skill("implement");
    let mut inputs = f.inputs(&skill, "task");
    inputs.ledger_dir = Some(&ledger_dir);
    let prepared = prepare(&inputs).unwrap();
    let gates: Vec<(&str, &str)> = prepared
        .lessons
        .iter()
        .map(|l| (l.gate.as_str(), l.dispatch_id.as_str()))
        .collect();
    assert_eq!(
        gates,
        [
            ("command:tests", "d-new"),
            ("no-placeholders", "d-mid"),
            ("diff-size", "d-old")
        ]
    );
    assert_eq!(
        prepared.lessons[1].detail,
        "added TODO in src/main.rs:12 and FIXME in src/lib.rs:3"
    );
    let intelligence = &prepared.parts[2].text;
    assert!(intelligence.contains("`no-placeholders` failed (dispatch d-mid"));
    assert!(intelligence.contains("3 tests failed"));
    assert!(intelligence.contains("diff of 5000 lines"));
    assert!(
        !intelligence.contains("REVIEW-ONLY"),
        "another skill's failure leaked"
    );
    assert!(
        !intelligence.contains("scanner crashed"),
        "errors are not failures"
    );
    assert!(prepared.warnings.is_empty(), "{:?}", prepared.warnings);

    // Only the latest N.
    inputs.max_lessons = 2;
    let prepared = prepare(&inputs).unwrap();
    assert_eq!(prepared.lessons.len(), 2);
    assert!(!prepared.parts[2].text.contains("diff of 5000 lines"));

    // The review skill sees only its own.
    let review = f.skill("review");
    let mut inputs = f.inputs(&review, "task");
    inputs.ledger_dir = Some(&ledger_dir);
    let prepared = prepare(&inputs).unwrap();
    assert_eq!(prepared.lessons.len(), 1);
    assert_eq!(prepared.lessons[0].detail, "REVIEW-ONLY failure");

    // A ledger directory that does not exist gives no lessons and no error.
    let missing = f.repo.path().join("no-ledger");
    let mut inputs = f.inputs(&skill, "task");
    inputs.ledger_dir = Some(&missing);
    assert!(prepare(&inputs).unwrap().lessons.is_empty());
}

#[test]
fn bad_inputs_are_errors() {
    let f = Fixture::new();
    let skill = f.skill("implement");
    assert!(matches!(
        prepare(&f.inputs(&skill, "  \n")),
        Err(PrepareError::EmptyTask)
    ));

    let relative = PathBuf::from("rel/worktree");
    let mut inputs = f.inputs(&skill, "task");
    inputs.worktree = &relative;
    assert!(matches!(
        prepare(&inputs),
        Err(PrepareError::RelativePath { .. })
    ));

    let missing = f.repo.path().join("nope.json");
    let mut inputs = f.inputs(&skill, "task");
    inputs.default_report_schema = &missing;
    let err = prepare(&inputs).unwrap_err();
    assert!(matches!(err, PrepareError::Schema { .. }), "{err:?}");
    assert!(err.to_string().contains("nope.json"), "{err}");

    let not_json = write(f.repo.path(), "bad.json", "{ not json");
    let mut inputs = f.inputs(&skill, "task");
    inputs.default_report_schema = &not_json;
    assert!(
        prepare(&inputs)
            .unwrap_err()
            .to_string()
            .contains("not JSON")
    );
}

#[test]
fn a_skill_can_bring_its_own_schema() {
    let f = Fixture::new();
    write(
        f.repo.path(),
        ".vnx/skills/audit/SKILL.md",
        "---\nname: audit\ndescription: d\nreport_schema: audit.schema.json\n---\nAudit.\n",
    );
    write(
        f.repo.path(),
        ".vnx/skills/audit/audit.schema.json",
        r#"{"type":"object","title":"audit report"}"#,
    );
    let skill = f.skill("audit");
    let prepared = prepare(&f.inputs(&skill, "task")).unwrap();
    assert!(prepared.report_schema.contains("audit report"));
    assert!(prepared.parts[3].text.contains("audit report"));
    assert!(
        prepared
            .report_schema_path
            .ends_with("audit/audit.schema.json")
    );
}

#[test]
fn default_schema_is_the_workspace_report_schema() {
    let path = Path::new(DEFAULT_REPORT_SCHEMA_PATH);
    assert!(path.ends_with("schemas/report.schema.json"));
    // Built-in skills with default inputs read it from the workspace.
    let dir = tempfile::tempdir().unwrap();
    let skill = SkillCatalog::new(None, None).show("implement").unwrap();
    let worktree = dir.path().join("wt");
    let report = worktree.join("report.json");
    let prepared = prepare(&PrepareInputs::new(&skill, "task", &worktree, &report)).unwrap();
    assert_eq!(prepared.report_schema_path, path);
    let schema: serde_json::Value = serde_json::from_str(&prepared.report_schema).unwrap();
    assert_eq!(schema["type"], "object");
    assert!(prepared.parts[3].text.contains("\"files_changed\""));
}
