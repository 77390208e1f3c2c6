//! The governed dispatch pipeline behind `vnx run`: [`run_dispatch`].
//!
//! ```text
//! config + skill ─► dispatch id ─► worktree vnx/<id> (or in place) ─► PREPARE
//!     ─► dispatch.started (ledger) ─► worker ─► commit on vnx/<id> ─► git facts base..head
//!     ─► GOVERN (report file / final message / synthesized) ─► deterministic gates
//!     ─► cross-model review (only if all passed) ─► dispatch.receipt (always)
//!     ─► receipt also committed on vnx/<id> ─► worktree removed (passed) or kept
//! ```
//!
//! **The receipt is always written** once `dispatch.started` is: a worker
//! error, a timeout, a crashed gate or a cancellation ([`CancelToken`])
//! each end in a `dispatch.receipt` with the matching status; if the
//! pipeline's future is dropped or panics midway, a guard appends one with
//! status `interrupted` (or `error` on a panic) on the way out. Only a
//! killed vnx leaves a started record without a receipt: an orphan, which
//! `verify-ledger` and `gate` report.
//!
//! **The receipt reaches CI with the work.** The receipt goes to the
//! repository's ledger (segment chosen by the caller, normally
//! `<writer>--<current branch>.ndjson`), and — for worktree dispatches — the
//! same `dispatch.started` and `dispatch.receipt` bodies are appended to the
//! ledger *inside the dispatch worktree*, in segment
//! `<writer>--vnx_<dispatch-id>.ndjson`, and committed on the dispatch branch
//! on top of the work commit (with `git fast-import`, which moves the branch
//! without touching the worktree's index; a kept worktree's index is then
//! brought up to it). Merging `vnx/<id>` therefore brings a new
//! segment holding exactly this dispatch's receipt, which `vnx gate --base`
//! reads in CI. When the ledger's `ledger.json` is not committed yet, the
//! branch gets a copy (same ledger id); commit it on the main branch first so
//! that the merge does not meet an untracked `ledger.json`.
//!
//! **A hostile worker cannot reach the user's repository through vnx.** The
//! dispatch commit runs git pinned to the worktree's own git directory
//! ([`vnx_git::Pinned`]), after checking that its `.git` file, git
//! directories and branch are what vnx created — a worktree found tampered
//! with ends the dispatch in an `error` receipt and is kept as it is;
//! commits the worker made on a detached HEAD that descend from the branch
//! are moved onto it. The receipt is appended even when the worker deleted
//! the ledger: its `ledger.json` (read at setup) is written back and the
//! segment restarted with the started record.
//!
//! Files: `<root>/.vnx/runs/<id>/` holds the worker's event logs (`worker/`),
//! the review's (`review/`) and the report file the worker is asked to write
//! (`report.json`), outside the worktree so that the dispatch commit never
//! picks it up; `.vnx/runs/.gitignore` keeps the directory out of `git status`.
//!
//! **Cost.** Every git process costs milliseconds, so the pipeline runs as
//! few as it can (see `tests/bench/run-overhead.sh`): the main tree's
//! `git status` and the commit identity are read while `git worktree add`
//! runs; a worker that left nothing uncommitted costs one `git status`; the
//! receipt commit is one `git fast-import`; a passed dispatch's worktree is
//! deleted without git ([`vnx_git::discard`]).
//!
//! Units: durations in milliseconds, money in integer micro-USD.

mod error;
mod guard;
mod review;
mod side_effects;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;
use vnx_agents::{AgentEvent, DispatchRequest, Provider, ProviderKind};
use vnx_govern::{ChangeExpectation, GovernError, ReportResult};
use vnx_ledger::record::{KIND_DISPATCH_RECEIPT, KIND_DISPATCH_STARTED};
use vnx_ledger::{Ledger, NewRecord};
use vnx_prepare::{Config, LoadedConfig, Overrides, PrepareInputs, Prepared, Skill, SkillCatalog};
use vnx_types::{
    CostSource, DispatchReceipt, DispatchStarted, DispatchStatus, GateLayer, GateResult, Lane,
    OutcomeClass, Usage, Verdict,
};

pub use error::PipelineError;
pub use review::{ReviewSettings, default_review_model};
pub use vnx_exec::CancelToken;
/// The worker sandbox (`[worker] sandbox`), for `vnx doctor`'s check.
pub use vnx_exec::sandbox;

use crate::worker::{EnvSource, WorkerOptions, WorkerRun, run_worker};

/// Where per-dispatch files go, relative to the repository root.
pub const RUNS_DIR: &str = ".vnx/runs";

/// What one dispatch needs.
#[derive(Debug, Clone)]
pub struct DispatchInputs {
    /// Directory vnx was started in; `vnx.toml` and the repository are found from here.
    pub cwd: PathBuf,
    /// The user's task.
    pub task: String,
    /// Skill name, e.g. `implement`.
    pub skill: String,
    /// Command-line values over `vnx.toml`'s.
    pub overrides: Overrides,
    /// Run in the current tree instead of a fresh worktree. Works outside
    /// git (git facts are then absent).
    pub in_place: bool,
    /// Keep the worktree even when the dispatch passes.
    pub keep: bool,
    /// Writer identity for segment names, e.g. `alice@laptop`.
    pub writer: String,
    /// Segment of the repository's ledger the records go to; `None`:
    /// `<writer>--<current branch>.ndjson`.
    pub segment: Option<String>,
    /// Dispatch id to use; `None`: a fresh [`new_dispatch_id`].
    pub dispatch_id: Option<String>,
    /// Environment of the worker (and of the binary lookup). Default: vnx's own.
    pub env: EnvSource,
    /// Who reviews.
    pub review: ReviewSettings,
    /// Batch this dispatch belongs to, if any.
    pub batch_id: Option<String>,
    /// The entry's id in the batch file, if any (shown on the board).
    pub batch_entry: Option<String>,
    /// Receipts this dispatch builds on (`depends_on` in a batch): their
    /// record hashes go into the receipt's `builds_on`, their reports into
    /// the instruction's intelligence.
    pub builds_on: Vec<BuiltOn>,
    /// Provider-wide rate-limit pause shared with other dispatches of a batch.
    pub pause: Option<crate::worker::ProviderPause>,
}

/// A finished dispatch another one builds on (a batch's `depends_on`).
#[derive(Debug, Clone)]
pub struct BuiltOn {
    /// Its dispatch id.
    pub dispatch_id: String,
    /// Its receipt's record hash (lowercase hex).
    pub receipt_hash: String,
    /// Its report (the worker's or the synthesized one).
    pub report: Value,
    /// Its skill.
    pub skill: Option<String>,
    /// Its task.
    pub task: Option<String>,
}

impl DispatchInputs {
    /// Inputs for `task` with skill `skill` from `cwd`, everything else default.
    pub fn new(cwd: impl Into<PathBuf>, task: impl Into<String>, skill: impl Into<String>) -> Self {
        DispatchInputs {
            cwd: cwd.into(),
            task: task.into(),
            skill: skill.into(),
            overrides: Overrides::default(),
            in_place: false,
            keep: false,
            writer: "vnx".to_owned(),
            segment: None,
            dispatch_id: None,
            env: EnvSource::Inherit,
            review: ReviewSettings::default(),
            batch_id: None,
            batch_entry: None,
            builds_on: Vec::new(),
            pause: None,
        }
    }
}

/// The stage a dispatch is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The worker CLI runs.
    Worker,
    /// The worker's changes are committed on the dispatch branch.
    Commit,
    /// The report is read, validated or synthesized.
    Govern,
    /// Deterministic gates (command gates included) run.
    Gates,
    /// The cross-model review runs.
    Review,
    /// The receipt is appended.
    Receipt,
    /// The worktree is removed or kept.
    Cleanup,
}

impl Phase {
    /// Lowercase name for display: `worker`, `commit`…
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Worker => "worker",
            Phase::Commit => "commit",
            Phase::Govern => "govern",
            Phase::Gates => "gates",
            Phase::Review => "review",
            Phase::Receipt => "receipt",
            Phase::Cleanup => "cleanup",
        }
    }
}

/// Live figures of the running worker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// Since the worker started, ms.
    pub elapsed_ms: u64,
    /// Model turns so far (1 + tool results seen).
    pub turns: u64,
    /// Tool calls so far.
    pub tool_calls: u64,
    /// Running token usage.
    pub usage: Usage,
    /// Name of the last tool called.
    pub last_tool: Option<String>,
    /// Cost so far, micro-USD, estimated from `usage` and the price table for
    /// the requested model; `None` when no price is known (the receipt holds
    /// the CLI's own figure).
    pub estimated_cost_usd_micros: Option<u64>,
}

/// What the pipeline reports while it runs (only `vnx-cli` prints).
#[derive(Debug, Clone)]
pub enum PipelineEvent {
    /// Everything is prepared; the started record is about to be appended.
    Prepared {
        /// Dispatch id.
        dispatch_id: String,
        /// Skill name.
        skill: String,
        /// Provider name.
        provider: String,
        /// Requested model, if any.
        model: Option<String>,
        /// Lane.
        lane: Lane,
        /// Directory the worker runs in.
        workdir: PathBuf,
        /// Dispatch branch, for worktree dispatches.
        branch: Option<String>,
    },
    /// Something the user should know that does not stop the dispatch
    /// (dirty tree, version out of range…).
    Warning(String),
    /// A new stage began.
    Phase(Phase),
    /// Worker progress: on every parsed event and once a second.
    Progress(Progress),
    /// A gate finished.
    Gate(GateResult),
}

/// The receipt committed on the dispatch branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BranchReceipt {
    /// Segment file name in the branch's ledger.
    pub segment: String,
    /// The commit on the dispatch branch that adds it.
    pub commit: String,
}

/// A finished dispatch: its receipt and where things are.
#[derive(Debug, Clone)]
pub struct DispatchOutcome {
    /// The receipt as appended.
    pub receipt: DispatchReceipt,
    /// The receipt record's hash in the repository's ledger (lowercase hex).
    pub receipt_hash: String,
    /// Its sequence number in the segment.
    pub receipt_seq: u64,
    /// The repository's ledger directory.
    pub ledger_dir: PathBuf,
    /// The segment the receipt went to.
    pub segment: String,
    /// The report the dispatch ended with (worker's or synthesized).
    pub report: Value,
    /// The worktree, when it was kept (`None`: removed, or in place).
    pub kept_worktree: Option<PathBuf>,
    /// The dispatch branch, for worktree dispatches.
    pub branch: Option<String>,
    /// The receipt committed on the dispatch branch, if that worked.
    pub branch_receipt: Option<BranchReceipt>,
    /// `.vnx/runs/<id>/`: event logs and the report file.
    pub run_dir: PathBuf,
}

/// What `vnx run --dry-run` shows.
#[derive(Debug, Clone)]
pub struct DryRun {
    /// The dispatch id this run would have had.
    pub dispatch_id: String,
    /// The full instruction.
    pub instruction: String,
    /// Its SHA-256.
    pub instruction_sha256: String,
    /// The program (as configured; looked up on `PATH` when bare).
    pub program: String,
    /// The exact arguments.
    pub args: Vec<String>,
    /// Variables set for the worker (names and values from the provider's `env`).
    pub env_set: Vec<(String, String)>,
    /// Variables removed from the worker's environment.
    pub env_remove: Vec<String>,
    /// Working directory the worker would get.
    pub cwd: PathBuf,
    /// Lane.
    pub lane: Lane,
    /// Request fields the CLI has no flag for, and PREPARE warnings.
    pub warnings: Vec<String>,
}

/// A fresh dispatch id: `d-<UTC yyyymmdd-hhmmss>-<6 random hex>`.
pub fn new_dispatch_id() -> String {
    let now = chrono::Utc::now().format("%Y%m%d-%H%M%S");
    let hex = uuid::Uuid::new_v4().simple().to_string();
    format!("d-{now}-{}", &hex[..6])
}

/// What setup found and built; shared by the dry run and the real one.
struct Plan {
    id: String,
    loaded: LoadedConfig,
    skill: Skill,
    provider: Provider,
    /// The git work tree root, when in git.
    repo: Option<PathBuf>,
    /// Root, HEAD and branch of that repository, read once.
    repo_info: Option<vnx_git::RepoInfo>,
    /// Where the worker runs.
    workdir: PathBuf,
    branch: Option<String>,
    run_dir: PathBuf,
    report_path: PathBuf,
    prepared: Prepared,
    request: DispatchRequest,
    ledger_dir: PathBuf,
    forbidden: Vec<String>,
}

fn plan(inputs: &DispatchInputs) -> Result<Plan, PipelineError> {
    let mut loaded = Config::load(&inputs.cwd)?;
    loaded.config.apply_overrides(&inputs.overrides)?;
    let provider = loaded.config.provider()?;
    let skill = SkillCatalog::from_env(Some(&loaded.root)).show(&inputs.skill)?;
    let id = inputs.dispatch_id.clone().unwrap_or_else(new_dispatch_id);
    vnx_git::validate_dispatch_id(&id)?;
    let repo_info = if inputs.in_place {
        vnx_git::repo_info(&inputs.cwd).ok()
    } else {
        Some(vnx_git::repo_info(&inputs.cwd)?)
    };
    let repo = repo_info.as_ref().map(|info| info.root.clone());
    let (workdir, branch) = match (&repo, inputs.in_place) {
        (Some(repo), false) => (
            vnx_git::worktree_path(repo, &id),
            Some(format!("{}{id}", vnx_git::BRANCH_PREFIX)),
        ),
        (Some(repo), true) => (repo.clone(), None),
        (None, _) => (loaded.root.clone(), None),
    };
    let run_dir = loaded.root.join(RUNS_DIR).join(&id);
    let report_path = run_dir.join("report.json");
    let ledger_dir = loaded.checked_ledger_dir()?;
    let forbidden = loaded.config.effective_forbidden_paths();
    let mut pi = PrepareInputs::new(&skill, &inputs.task, &workdir, &report_path);
    pi.repo_root = Some(&loaded.root);
    pi.ledger_dir = Some(&ledger_dir);
    pi.forbidden_paths = &forbidden;
    let upstream: Vec<vnx_prepare::Upstream> = inputs
        .builds_on
        .iter()
        .map(|b| vnx_prepare::Upstream {
            dispatch_id: b.dispatch_id.clone(),
            skill: b.skill.clone(),
            task: b.task.clone(),
            report: serde_json::to_string_pretty(&b.report).unwrap_or_default(),
        })
        .collect();
    pi.upstream = &upstream;
    let prepared = vnx_prepare::prepare(&pi)?;
    let mut provider = provider;
    side_effects::worker_env(&mut provider.config.env, &inputs.env, &id, &run_dir);
    let mut request = prepared.dispatch_request(&provider, &loaded.config.run, &workdir);
    request.pass_env.clone_from(&loaded.config.worker.pass_env);
    request.json_schema = request.json_schema.as_deref().map(claude_schema);
    if provider.kind == ProviderKind::Claude && request.lane != Lane::Tmux {
        // The report file is outside the worktree; claude edits only its cwd
        // and the directories it is given. (Not in tmux: the interactive
        // session stops at a prompt about the added directory; the report
        // then comes from the final message.)
        request.extra_args.push("--add-dir".to_owned());
        request.extra_args.push(run_dir.display().to_string());
    }
    if provider.kind == ProviderKind::Codex {
        request.json_schema_file = Some(run_dir.join("report.schema.json"));
    }
    Ok(Plan {
        id,
        loaded,
        skill,
        provider,
        repo,
        repo_info,
        workdir,
        branch,
        run_dir,
        report_path,
        prepared,
        request,
        ledger_dir,
        forbidden,
    })
}

/// Prepares a dispatch without running anything: the instruction and the
/// exact argv the worker would get. Creates no worktree, no file, no record.
///
/// # Errors
/// As the setup of [`run_dispatch`]: configuration, skill, not a git
/// repository (without `in_place`), PREPARE; and [`PipelineError::Build`]
/// when the auth guard refuses or the lane does not fit the provider.
pub fn dry_run(inputs: &DispatchInputs) -> Result<DryRun, PipelineError> {
    let p = plan(inputs)?;
    let vars = inputs.env.vars();
    let inv = vnx_agents::build_invocation(
        &p.provider,
        &p.request,
        vars.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    )?;
    let mut warnings = p.prepared.warnings.clone();
    warnings.extend(inv.warnings.iter().cloned());
    Ok(DryRun {
        dispatch_id: p.id,
        instruction: p.prepared.instruction.clone(),
        instruction_sha256: p.prepared.sha256.clone(),
        program: inv.program,
        args: inv.args,
        env_set: inv.env,
        env_remove: inv.env_remove,
        cwd: inv.cwd,
        lane: p.request.lane,
        warnings,
    })
}

/// The schema as claude's `--json-schema` takes it: Claude Code 2.1 refuses
/// a `$schema` naming draft 2020-12 ("no schema with key or ref"), so the
/// meta keys are dropped; the schema itself is unchanged.
fn claude_schema(text: &str) -> String {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(mut map)) => {
            map.remove("$schema");
            map.remove("$id");
            Value::Object(map).to_string()
        }
        _ => text.to_owned(),
    }
}

/// Checks that the provider's binary exists before anything is recorded
/// (mirrors the worker's lookup: a path, else each `PATH` directory).
fn check_binary(provider: &Provider, env: &EnvSource, cwd: &Path) -> Result<(), PipelineError> {
    use std::os::unix::fs::PermissionsExt as _;
    let program = provider.program();
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    let not_found = |looked: String| PipelineError::BinaryNotFound {
        provider: provider.name.clone(),
        program: program.clone(),
        looked,
    };
    if program.is_empty() {
        return Err(not_found("the program name is empty".to_owned()));
    }
    if program.contains('/') {
        let path = cwd.join(&program);
        return if executable(&path) {
            Ok(())
        } else {
            Err(not_found(format!("no executable at {}", path.display())))
        };
    }
    let path_var = env.get("PATH").unwrap_or_default();
    if path_var
        .split(':')
        .filter(|d| !d.is_empty())
        .any(|d| executable(&Path::new(d).join(&program)))
    {
        return Ok(());
    }
    Err(not_found(format!("not on PATH = {path_var}")))
}

/// Files of the main tree that differ from HEAD, ignoring vnx's own (ledger, `.vnx/`).
fn dirty_warning(repo: &Path, ledger_rel: Option<&Path>) -> Option<String> {
    let dirty = vnx_git::dirty_files(repo).ok()?;
    let ledger_prefix = ledger_rel.map(|p| format!("{}/", p.display()));
    let relevant: Vec<&str> = dirty
        .iter()
        .map(|d| d.path.as_str())
        .filter(|p| !p.starts_with(".vnx/"))
        .filter(|p| ledger_prefix.as_deref().is_none_or(|l| !p.starts_with(l)))
        .collect();
    if relevant.is_empty() {
        return None;
    }
    let shown: Vec<&str> = relevant.iter().take(5).copied().collect();
    Some(format!(
        "the working tree has {} uncommitted change(s) ({}{}); the worktree starts from HEAD without them",
        relevant.len(),
        shown.join(", "),
        if relevant.len() > shown.len() {
            ", …"
        } else {
            ""
        }
    ))
}

fn ensure_run_dir(root: &Path, run_dir: &Path) -> Result<(), PipelineError> {
    std::fs::create_dir_all(run_dir).map_err(PipelineError::io("creating", run_dir))?;
    let ignore = root.join(RUNS_DIR).join(".gitignore");
    if !ignore.exists() {
        std::fs::write(&ignore, "# vnx dispatch runs: event logs and reports\n*\n")
            .map_err(PipelineError::io("writing", &ignore))?;
    }
    Ok(())
}

/// The local journal of dispatches, under the repository root: every
/// worktree dispatch's `dispatch.started` and `dispatch.receipt`, so a
/// dispatch killed halfway is still on record (an orphan), without leaving
/// an untracked segment in the committed ledger after every run.
pub const JOURNAL_DIR: &str = ".vnx/ledger";

/// Opens the journal at `dir`, creating it with the committed ledger's
/// `ledger.json` (same ledger id) and a `.gitignore` that keeps it out of git.
fn open_journal(dir: &Path, ledger_dir: &Path) -> Result<Ledger, PipelineError> {
    let manifest = dir.join(vnx_ledger::store::MANIFEST_FILE);
    if !manifest.exists() {
        std::fs::create_dir_all(dir).map_err(PipelineError::io("creating", dir))?;
        // Parallel dispatches of a batch may all create it: each writes a
        // complete file of its own and links it into place, so nobody ever
        // reads a half-written manifest (the first link wins, the rest fail
        // with "exists", which is fine: the bytes are the same).
        let tmp = dir.join(format!(
            ".journal-{}-{}.tmp",
            std::process::id(),
            new_dispatch_id()
        ));
        let result = std::fs::read(ledger_dir.join(vnx_ledger::store::MANIFEST_FILE))
            .and_then(|bytes| std::fs::write(&tmp, bytes))
            .and_then(|()| {
                std::fs::write(
                    tmp.with_extension("ignore"),
                    "# vnx's local journal of dispatches\n*\n",
                )
            })
            .and_then(|()| {
                let _ = std::fs::hard_link(tmp.with_extension("ignore"), dir.join(".gitignore"));
                match std::fs::hard_link(&tmp, &manifest) {
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
                    other => other,
                }
            });
        let _ = std::fs::remove_file(&tmp);
        let _ = std::fs::remove_file(tmp.with_extension("ignore"));
        result.map_err(PipelineError::io(
            "creating the journal's ledger.json in",
            dir,
        ))?;
    }
    Ledger::open(dir).map_err(PipelineError::ledger(dir))
}

/// Everything fixed before the started record.
struct Setup {
    plan: Plan,
    worktree: Option<vnx_git::Worktree>,
    base: Option<String>,
    ledger: Ledger,
    segment: String,
    started: DispatchStarted,
    requested_model: Option<String>,
    /// Shown as they happened and recorded in the receipt.
    warnings: Vec<String>,
    /// Receipt hashes this dispatch builds on.
    builds_on: Vec<String>,
    /// The ledger's `ledger.json` bytes, to put it back if a worker deletes it.
    manifest: Vec<u8>,
    /// The worker's sandbox (`[worker] sandbox`), if any.
    sandbox: Option<vnx_exec::Sandbox>,
    /// What the side-effects gate watches (`None` in place), and its
    /// snapshot from before the worker.
    watch: Option<vnx_govern::side_effects::Scope>,
    before: Option<Result<vnx_govern::side_effects::Snapshot, String>>,
    /// Who vnx's commits on the dispatch branch are by (and git's fsync
    /// choice), read while the worktree was created (`None`: in place, or
    /// the read failed and is retried when needed).
    commit_settings: Option<vnx_git::CommitSettings>,
    /// The key git signs commits with, which signs the dispatch branch's
    /// segment (or, in place, the repository's); `None`: receipts unsigned.
    signing_key: Option<vnx_sign::SigningKey>,
}

fn setup(
    inputs: &DispatchInputs,
    events: &mut dyn FnMut(PipelineEvent),
) -> Result<Setup, PipelineError> {
    let mut plan = plan(inputs)?;
    check_binary(&plan.provider, &inputs.env, &plan.workdir_parent())?;
    let sandbox = guard::sandbox(&plan, &inputs.env)?;
    let ledger_rel = plan
        .repo
        .as_deref()
        .and_then(|r| plan.ledger_dir.strip_prefix(r).ok())
        .map(Path::to_path_buf);
    let dirty_of = |repo: &Path| {
        dirty_warning(repo, ledger_rel.as_deref()).map(|w| {
            if inputs.in_place {
                w.replace(
                    "the worktree starts from HEAD without them",
                    "--in-place: they are in the worker's tree but not in the gates' git facts",
                )
            } else {
                w
            }
        })
    };
    let mut ledger = Ledger::open_or_create(&plan.ledger_dir)
        .map_err(PipelineError::ledger(&plan.ledger_dir))?;
    let manifest = guard::read_manifest(&plan.ledger_dir)?;
    if plan.repo_info.is_some() && !inputs.in_place {
        // A worktree dispatch's records go to the local journal; its
        // receipt reaches the committed ledger with the branch's merge.
        ledger = open_journal(&plan.loaded.root.join(JOURNAL_DIR), &plan.ledger_dir)?;
    }
    let segment = inputs.segment.clone().unwrap_or_else(|| {
        let branch = plan
            .repo_info
            .as_ref()
            .and_then(|info| info.branch.clone())
            .unwrap_or_else(|| "detached".to_owned());
        vnx_ledger::default_segment_name(&inputs.writer, &branch)
    });
    ensure_run_dir(&plan.loaded.root, &plan.run_dir)?;
    if let Some(schema_file) = &plan.request.json_schema_file {
        std::fs::write(schema_file, &plan.prepared.report_schema).map_err(PipelineError::io(
            "writing the report schema to",
            schema_file,
        ))?;
    }
    let mut commit_settings = None;
    let mut key = None;
    let watch = if inputs.in_place {
        None
    } else {
        side_effects::scope(
            plan.repo.as_deref(),
            &plan.ledger_dir,
            &segment,
            plan.branch.as_deref(),
        )
    };
    let mut before = None;
    let (worktree, base, dirty) = match (&plan.repo_info, inputs.in_place) {
        (Some(info), false) => {
            // The main tree's `git status` (for the warning), the commit
            // identity, the signing key and the side-effects snapshot are
            // read while git checks the worktree out: independent git
            // processes at once instead of in a row.
            let (created, dirty, ident, signing, snapshot) = std::thread::scope(|scope| {
                let dirty = scope.spawn(|| dirty_of(&info.root));
                let ident = scope.spawn(|| vnx_git::commit_settings(&info.root));
                let signing = scope.spawn(|| crate::signing::signing_key(&info.root));
                let snapshot = scope.spawn(|| side_effects::before(watch.as_ref()));
                let created = vnx_git::create_in(info, &plan.id);
                (
                    created,
                    dirty.join().ok().flatten(),
                    ident.join().ok().and_then(Result::ok),
                    signing.join().ok(),
                    snapshot.join().ok().flatten(),
                )
            });
            before = snapshot;
            let wt = created?;
            commit_settings = ident;
            key = signing;
            let base = wt.base.clone();
            plan.workdir.clone_from(&wt.path);
            (Some(wt), Some(base), dirty)
        }
        (Some(info), true) => {
            key = Some(crate::signing::signing_key(&info.root));
            (None, info.head.clone(), dirty_of(&info.root))
        }
        (None, _) => (None, None, None),
    };
    let (signing_key, key_warning) = match key {
        Some(Ok(Some(key))) => (Some(key), None),
        Some(Ok(None)) => (
            None,
            Some(format!(
                "this receipt is unsigned, so `vnx gate --base` will not accept it as covering its commits: {}",
                crate::signing::KEY_SETUP_HINT
            )),
        ),
        Some(Err(e)) => (
            None,
            Some(format!(
                "this receipt is unsigned: the signing key cannot be used: {e}"
            )),
        ),
        None => (None, None),
    };
    let mut warnings: Vec<String> = dirty.into_iter().chain(key_warning).collect();
    warnings.extend(plan.prepared.warnings.iter().cloned());
    for w in &warnings {
        events(PipelineEvent::Warning(w.clone()));
    }
    let requested_model = plan
        .loaded
        .config
        .run
        .model
        .clone()
        .or_else(|| plan.provider.config.default_model.clone());
    let started = DispatchStarted {
        dispatch_id: plan.id.clone(),
        skill: Some(plan.skill.name.clone()),
        provider: plan.provider.name.clone(),
        model: requested_model.clone(),
        lane: plan.loaded.config.run.lane,
        billing: plan.loaded.config.run.billing,
        instruction_sha256: plan.prepared.sha256.clone(),
        batch_id: inputs.batch_id.clone(),
    };
    Ok(Setup {
        plan,
        worktree,
        base,
        ledger,
        segment,
        started,
        requested_model,
        warnings,
        builds_on: inputs
            .builds_on
            .iter()
            .map(|b| b.receipt_hash.clone())
            .collect(),
        manifest,
        sandbox,
        watch,
        before,
        commit_settings,
        signing_key,
    })
}

impl Plan {
    /// A directory that exists now, for resolving a relative binary path.
    fn workdir_parent(&self) -> PathBuf {
        self.repo
            .clone()
            .unwrap_or_else(|| self.loaded.root.clone())
    }
}

/// Appends the receipt if the pipeline is abandoned (future dropped, panic)
/// after the started record.
struct ReceiptGuard {
    ledger: Ledger,
    segment: String,
    manifest: Vec<u8>,
    started: DispatchStarted,
    receipt: DispatchReceipt,
    start: Instant,
    armed: bool,
}

impl Drop for ReceiptGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let panicking = std::thread::panicking();
        self.receipt.status = if panicking {
            DispatchStatus::Error
        } else {
            DispatchStatus::Interrupted
        };
        self.receipt.warnings.push(if panicking {
            "vnx crashed during the dispatch; this receipt was written on the way out".to_owned()
        } else {
            "vnx stopped before the dispatch finished; this receipt was written on the way out"
                .to_owned()
        });
        self.receipt.duration_ms = self.start.elapsed().as_millis() as u64;
        let started_lost = guard::restore_ledger(
            self.ledger.dir(),
            &self.manifest,
            &self.segment,
            &mut self.receipt.warnings,
        );
        if let Ok(records) = guard::receipt_records(&self.started, &self.receipt, started_lost) {
            let _ = self.ledger.append(&self.segment, &records);
        }
    }
}

/// Runs one governed dispatch end to end (see the module docs for the order
/// and for where the receipt goes). `events` receives progress; `cancel`
/// interrupts the worker (and skips the gates): the receipt is still
/// written, with status `interrupted`.
///
/// # Errors
/// Before anything is recorded: [`PipelineError::Config`],
/// [`PipelineError::Skill`] (unknown skills list the known ones),
/// [`PipelineError::Git`] (not a repository without `in_place`, no commits,
/// worktree creation), [`PipelineError::BinaryNotFound`],
/// [`PipelineError::Prepare`], [`PipelineError::Ledger`],
/// [`PipelineError::Io`]. After the started record every failure becomes a
/// receipt with status `error` and `Ok` is returned; only a failure to
/// append that receipt is [`PipelineError::Ledger`].
pub async fn run_dispatch(
    inputs: &DispatchInputs,
    events: &mut dyn FnMut(PipelineEvent),
    cancel: &CancelToken,
) -> Result<DispatchOutcome, PipelineError> {
    let start = Instant::now();
    let s = setup(inputs, events)?;
    let started_record = NewRecord::new(KIND_DISPATCH_STARTED, &s.started)?;
    if let Err(e) = s.ledger.append(&s.segment, &[started_record]) {
        if let (Some(repo), Some(wt)) = (&s.plan.repo, &s.worktree) {
            let _ = vnx_git::discard(repo, wt);
        }
        return Err(PipelineError::Ledger {
            dir: s.plan.ledger_dir.clone(),
            source: e,
        });
    }
    events(PipelineEvent::Prepared {
        dispatch_id: s.plan.id.clone(),
        skill: s.plan.skill.name.clone(),
        provider: s.plan.provider.name.clone(),
        model: s.requested_model.clone(),
        lane: s.plan.loaded.config.run.lane,
        workdir: s.plan.workdir.clone(),
        branch: s.plan.branch.clone(),
    });
    let mut live_status = crate::live::new_live_status(
        &s.plan.id,
        &s.plan.skill.name,
        &s.plan.provider.name,
        s.requested_model.as_deref(),
        vnx_types::LivePhase::Worker,
    );
    live_status.batch_id.clone_from(&inputs.batch_id);
    live_status.batch_entry.clone_from(&inputs.batch_entry);
    let live = std::cell::RefCell::new(crate::live::LiveWriter::start(
        s.plan.run_dir.clone(),
        live_status,
    ));
    let events = &mut |e: PipelineEvent| {
        live.borrow_mut().observe(&e);
        events(e);
    };
    let initial_report = vnx_govern::govern_report(&ReportResult::Missing, None);
    let mut guard = ReceiptGuard {
        ledger: s.ledger.clone(),
        segment: s.segment.clone(),
        manifest: s.manifest.clone(),
        started: s.started.clone(),
        receipt: draft_receipt(&s, initial_report.info),
        start,
        armed: true,
    };
    let mut report = initial_report.report;
    match body(&s, inputs, &mut guard.receipt, events, cancel).await {
        Ok(r) => report = r,
        Err(e) => {
            guard.receipt.status = if cancel.is_cancelled() {
                DispatchStatus::Interrupted
            } else {
                DispatchStatus::Error
            };
            guard
                .receipt
                .warnings
                .push(vnx_agents::redact(&e.to_string()));
        }
    }
    events(PipelineEvent::Phase(Phase::Receipt));
    guard.receipt.duration_ms = start.elapsed().as_millis() as u64;
    guard.armed = false;
    let started_lost = guard::restore_ledger(
        s.ledger.dir(),
        &s.manifest,
        &s.segment,
        &mut guard.receipt.warnings,
    );
    let receipt = guard.receipt.clone();
    let records = guard::receipt_records(&s.started, &receipt, started_lost)?;
    // The branch's copy of the ledger is written while the repository's
    // ledger syncs: different files, each append waits on its own fsync.
    let (appended, branch_files) = std::thread::scope(|scope| {
        let branch = scope.spawn(|| write_branch_ledger(&s, inputs, &receipt));
        let appended = s.ledger.append(&s.segment, &records);
        let branch = branch
            .join()
            .unwrap_or_else(|_| Err("writing the branch's ledger panicked".to_owned()));
        (appended, branch)
    });
    let appended = appended.map_err(PipelineError::ledger(&s.plan.ledger_dir))?;
    let Some(appended) = appended.into_iter().last() else {
        return Err(PipelineError::Ledger {
            dir: s.plan.ledger_dir.clone(),
            source: vnx_ledger::LedgerError::Input {
                entry: 1,
                reason: "the append wrote no record".to_owned(),
            },
        });
    };
    if s.worktree.is_none()
        && s.plan.repo.is_some()
        && let Some(key) = &s.signing_key
        && let Err(e) =
            crate::signing::sign_segment(s.ledger.dir(), s.ledger.ledger_id(), &s.segment, key)
    {
        events(PipelineEvent::Warning(format!(
            "the receipt is in {} but its segment was not signed: {e}",
            s.segment
        )));
    }
    live.borrow_mut().finish(&receipt);
    events(PipelineEvent::Phase(Phase::Cleanup));
    let remove = receipt.status.is_passed() && !inputs.keep;
    // The receipt commit reads nothing from the worktree (the files are in
    // memory), so a passed dispatch's worktree is removed meanwhile.
    let (committed, removed) = std::thread::scope(|scope| {
        let removal = match (&s.plan.repo, &s.worktree) {
            (Some(repo), Some(wt)) if remove => {
                Some(scope.spawn(move || vnx_git::discard(repo, wt)))
            }
            _ => None,
        };
        let committed = match branch_files {
            Ok(Some(files)) => commit_branch_files(&s, files).map(Some),
            Ok(None) => Ok(None),
            Err(w) => Err(w),
        };
        let removed = removal.map(|h| {
            h.join().unwrap_or_else(|_| {
                Err(vnx_git::GitError::Io {
                    what: "could not remove (the removal panicked)",
                    path: s.plan.workdir.clone(),
                    source: std::io::Error::other("panic"),
                })
            })
        });
        (committed, removed)
    });
    let (branch_receipt, committed_paths) = match committed {
        Ok(Some((b, paths))) => (Some(b), paths),
        Ok(None) => (None, Vec::new()),
        Err(w) => {
            events(PipelineEvent::Warning(w));
            (None, Vec::new())
        }
    };
    let mut kept_worktree = None;
    if let Some(wt) = &s.worktree {
        match removed {
            Some(Ok(())) => {}
            Some(Err(e)) => {
                events(PipelineEvent::Warning(format!(
                    "could not remove the worktree {}: {e}",
                    wt.path.display()
                )));
                kept_worktree = Some(wt.path.clone());
            }
            None => kept_worktree = Some(wt.path.clone()),
        }
        // The receipt commit moved the branch under the kept worktree: bring
        // its index up to the files it already has, so it shows clean.
        if kept_worktree.is_some() && !committed_paths.is_empty() {
            let paths: Vec<&Path> = committed_paths.iter().map(PathBuf::as_path).collect();
            let reset = guard::pinned(&s)
                .map_err(|e| e.to_string())
                .and_then(|p| match p {
                    Some(p) => p.reset_paths(&paths).map_err(|e| e.to_string()),
                    None => Ok(()),
                });
            if let Err(e) = reset {
                events(PipelineEvent::Warning(format!(
                    "the receipt is committed on {}, but the kept worktree's index was not updated ({e}); `git status` there shows the ledger files as changed",
                    wt.branch
                )));
            }
        }
    }
    Ok(DispatchOutcome {
        receipt,
        receipt_hash: appended.hash,
        receipt_seq: appended.seq,
        ledger_dir: s.ledger.dir().to_path_buf(),
        segment: s.segment.clone(),
        report,
        kept_worktree,
        branch: s.plan.branch.clone(),
        branch_receipt,
        run_dir: s.plan.run_dir.clone(),
    })
}

/// The receipt before the worker ran: status `error`, outcome `crashed`,
/// no usage — what is true if nothing else gets recorded.
fn draft_receipt(s: &Setup, report: vnx_types::ReportInfo) -> DispatchReceipt {
    DispatchReceipt {
        dispatch_id: s.plan.id.clone(),
        status: DispatchStatus::Error,
        skill: Some(s.plan.skill.name.clone()),
        provider: s.plan.provider.name.clone(),
        model: s.requested_model.clone(),
        lane: s.plan.loaded.config.run.lane,
        billing: s.plan.loaded.config.run.billing,
        cli_version: None,
        session_id: None,
        api_key_source: None,
        outcome: OutcomeClass::Crashed,
        usage: Usage::default(),
        cost_usd_micros: 0,
        cost_source: CostSource::Unknown,
        duration_ms: 0,
        instruction: s.plan.prepared.hashes(),
        attempts: Vec::new(),
        report,
        gates: Vec::new(),
        git: s.base.as_ref().map(|base| vnx_types::GitFacts {
            base: base.clone(),
            head: base.clone(),
            head_tree: None,
            branch: s.plan.branch.clone(),
            worktree: rel_worktree(s),
        }),
        event_log_sha256: None,
        batch_id: s.started.batch_id.clone(),
        builds_on: s.builds_on.clone(),
        approval_required: s.plan.skill.requires_approval,
        warnings: s.warnings.clone(),
    }
}

/// The worktree path, relative to the repository root when inside it.
fn rel_worktree(s: &Setup) -> String {
    let path = &s.plan.workdir;
    match &s.plan.repo {
        Some(repo) => match path.strip_prefix(repo) {
            Ok(rel) if rel.as_os_str().is_empty() => ".".to_owned(),
            Ok(rel) => rel.display().to_string(),
            Err(_) => path.display().to_string(),
        },
        None => path.display().to_string(),
    }
}

fn worker_options(s: &Setup, inputs: &DispatchInputs, dir: &str) -> WorkerOptions {
    let config = &s.plan.loaded.config;
    let mut opts = WorkerOptions::new(s.plan.run_dir.join(dir));
    opts.env = inputs.env.clone();
    opts.max_retries = config.retry.max_retries;
    opts.backoff.max = config.retry.max_wait;
    opts.total_timeout = Some(config.run.timeout);
    opts.pause.clone_from(&inputs.pause);
    opts
}

/// A live summary of one agent event, sent from the lane's task.
enum Tick {
    Usage(Usage),
    Tool(String),
    ToolDone,
}

/// Runs the worker, forwarding progress to `events` as it goes.
async fn run_worker_live(
    s: &Setup,
    inputs: &DispatchInputs,
    events: &mut dyn FnMut(PipelineEvent),
    cancel: &CancelToken,
) -> Result<WorkerRun, PipelineError> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Tick>();
    let mut opts = worker_options(s, inputs, "worker");
    opts.sandbox.clone_from(&s.sandbox);
    opts.on_event = Some(Arc::new(move |event: &AgentEvent| {
        let tick = match event {
            AgentEvent::Usage { total } => Tick::Usage(*total),
            AgentEvent::ToolCall(call) => Tick::Tool(call.name.clone()),
            AgentEvent::ToolResult { .. } => Tick::ToolDone,
            _ => return,
        };
        let _ = tx.send(tick);
    }));
    let lane = s.plan.loaded.config.run.lane;
    let price = s.requested_model.as_deref().and_then(|m| {
        vnx_agents::PriceTable::builtin()
            .with_overrides(&s.plan.provider.config.prices)
            .lookup(m)
            .copied()
    });
    let started = Instant::now();
    let worker = run_worker(&s.plan.request, &s.plan.provider, lane, &opts, cancel);
    tokio::pin!(worker);
    let mut progress = Progress {
        turns: 1,
        ..Progress::default()
    };
    let mut second = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            result = &mut worker => return Ok(result?),
            Some(tick) = rx.recv() => {
                match tick {
                    Tick::Usage(u) => {
                        progress.usage = u;
                        progress.estimated_cost_usd_micros =
                            price.as_ref().map(|p| p.cost_micros(&u));
                    }
                    Tick::Tool(name) => {
                        progress.tool_calls += 1;
                        progress.last_tool = Some(name);
                    }
                    Tick::ToolDone => progress.turns += 1,
                }
                progress.elapsed_ms = started.elapsed().as_millis() as u64;
                events(PipelineEvent::Progress(progress.clone()));
            }
            _ = second.tick() => {
                progress.elapsed_ms = started.elapsed().as_millis() as u64;
                events(PipelineEvent::Progress(progress.clone()));
            }
        }
    }
}

/// Everything between the started record and the receipt. Fills `r`;
/// returns the dispatch's report.
async fn body(
    s: &Setup,
    inputs: &DispatchInputs,
    r: &mut DispatchReceipt,
    events: &mut dyn FnMut(PipelineEvent),
    cancel: &CancelToken,
) -> Result<Value, PipelineError> {
    let config = &s.plan.loaded.config;
    events(PipelineEvent::Phase(Phase::Worker));
    let run = run_worker_live(s, inputs, events, cancel).await?;
    r.model = run.outcome.model.clone().or_else(|| r.model.take());
    r.cli_version.clone_from(&run.cli_version);
    r.session_id = run.session_id().map(str::to_owned);
    r.api_key_source.clone_from(&run.outcome.api_key_source);
    r.outcome = run.outcome.class;
    r.usage = run.usage;
    r.cost_usd_micros = run.cost_usd_micros;
    r.cost_source = run.cost_source;
    r.attempts.clone_from(&run.attempts);
    r.event_log_sha256 = run.event_log().map(|l| l.sha256.clone());
    r.warnings.extend(run.warnings.iter().cloned());
    let cancelled = cancel.is_cancelled() || run.outcome.class == OutcomeClass::Interrupted;

    // The work, committed on the dispatch branch, while the side-effects
    // gate looks at what the worker did outside it.
    if s.base.is_some() {
        events(PipelineEvent::Phase(Phase::Commit));
    }
    let leftovers = side_effects::leftovers(&s.plan.id, &s.plan.workdir, &s.plan.run_dir);
    let (facts, side_effects) = std::thread::scope(|scope| {
        let side_effects =
            scope.spawn(|| side_effects::after(s.watch.as_ref(), s.before.as_ref(), leftovers));
        let facts = commit_and_facts(s, inputs, r);
        let side_effects = side_effects.join().unwrap_or_else(|_| GateResult {
            name: vnx_govern::gates::names::SIDE_EFFECTS.to_owned(),
            layer: GateLayer::Deterministic,
            verdict: Verdict::Error,
            detail: "the gate crashed".to_owned(),
            duration_ms: None,
            usage: None,
            cost_usd_micros: None,
        });
        (facts, side_effects)
    });
    let facts = match facts {
        Ok(facts) => facts,
        Err(e) => {
            // The receipt still shows what the worker did outside its worktree.
            events(PipelineEvent::Gate(side_effects.clone()));
            r.gates.push(side_effects);
            return Err(e);
        }
    };

    // GOVERN.
    events(PipelineEvent::Phase(Phase::Govern));
    let schema: Value = serde_json::from_str(&s.plan.prepared.report_schema)
        .or_else(|_| vnx_govern::report_schema())
        .map_err(|e| PipelineError::GateCrashed(e.to_string()))?;
    let final_text = run
        .outcome
        .structured_output
        .as_ref()
        .map(Value::to_string)
        .or_else(|| run.outcome.final_text.clone());
    let read = vnx_govern::read_report(
        Some(&s.plan.report_path),
        final_text.as_deref(),
        &schema,
        vnx_govern::DEFAULT_REPORT_LIMIT_BYTES,
    );
    let governed = vnx_govern::govern_report(&read, facts.as_ref());
    r.report = governed.info.clone();

    // Deterministic gates.
    events(PipelineEvent::Phase(Phase::Gates));
    let skill = &s.plan.skill;
    let selected = |name: &str| {
        // What the worker did outside its worktree is judged for every skill.
        name == vnx_govern::gates::names::WORKER_OUTCOME
            || name == vnx_govern::gates::names::SIDE_EFFECTS
            || (skill
                .gates
                .only
                .as_ref()
                .is_none_or(|only| only.iter().any(|o| o == name))
                && !skill.gates.skip.iter().any(|k| k == name))
    };
    let mut gates: Vec<GateResult> = Vec::new();
    let mut push = |g: GateResult, events: &mut dyn FnMut(PipelineEvent)| {
        let g = if selected(&g.name) {
            g
        } else {
            skipped(
                &g.name,
                GateLayer::Deterministic,
                "not selected by the skill",
            )
        };
        events(PipelineEvent::Gate(g.clone()));
        gates.push(g);
    };
    push(vnx_govern::worker_outcome_gate(run.outcome.class), events);
    push(side_effects, events);
    let mode = match skill.effective_gate_mode(&config.run) {
        vnx_prepare::GateMode::Shadow => vnx_govern::GateMode::Shadow,
        vnx_prepare::GateMode::Enforce => vnx_govern::GateMode::Enforce,
    };
    push(vnx_govern::report_gate(&read, mode), events);
    let expect = if skill.editing {
        ChangeExpectation::Edits
    } else {
        ChangeExpectation::ReadOnly
    };
    let limit = skill
        .gates
        .diff_limit_lines
        .unwrap_or(config.gates.diff_limit_lines);
    let limit = (limit > 0).then_some(limit);
    if let Some(f) = &facts {
        push(vnx_govern::non_empty_change_gate(f, expect), events);
        push(vnx_govern::no_placeholders_gate(f), events);
        push(
            vnx_govern::tests_have_assertions_gate(f, &s.plan.workdir),
            events,
        );
        push(vnx_govern::diff_size_gate(f, limit), events);
        push(
            vnx_govern::forbidden_paths_gate(f, &s.plan.forbidden),
            events,
        );
        push(vnx_govern::no_secrets_gate(f), events);
    } else {
        use vnx_govern::gates::names;
        for name in [
            names::NON_EMPTY_CHANGE,
            names::NO_PLACEHOLDERS,
            names::TESTS_HAVE_ASSERTIONS,
            names::DIFF_SIZE,
            names::FORBIDDEN_PATHS,
            names::NO_SECRETS,
        ] {
            push(
                skipped(
                    name,
                    GateLayer::Deterministic,
                    "no git facts: the dispatch ran outside a git repository",
                ),
                events,
            );
        }
    }
    push(
        vnx_govern::budget_gate(run.cost_usd_micros, config.run.max_budget_usd_micros),
        events,
    );
    for c in &config.gates.commands {
        let spec = vnx_govern::CommandGate {
            name: Some(format!("command:{}", c.name)),
            pass_env: c.pass_env.clone(),
            ..vnx_govern::CommandGate::new(c.argv.clone(), c.timeout.as_millis() as u64)
        };
        let name = spec.display_name();
        let g = if cancelled {
            skipped(
                &name,
                GateLayer::Deterministic,
                "the dispatch was interrupted",
            )
        } else if !run.succeeded() {
            skipped(
                &name,
                GateLayer::Deterministic,
                "the worker did not succeed",
            )
        } else if !selected(&name) {
            skipped(&name, GateLayer::Deterministic, "not selected by the skill")
        } else {
            vnx_govern::run_command_gate(&spec, &s.plan.workdir, cancel).await
        };
        push(g, events);
    }

    // Cross-model review.
    let review = if cancelled {
        skipped(
            vnx_govern::gates::names::CROSS_REVIEW,
            GateLayer::CrossModel,
            "the dispatch was interrupted",
        )
    } else if !config.run.cross_review {
        skipped(
            vnx_govern::gates::names::CROSS_REVIEW,
            GateLayer::CrossModel,
            "disabled (--no-cross-review or [run] cross_review = false)",
        )
    } else if !vnx_govern::should_run_cross_review(&gates) {
        skipped(
            vnx_govern::gates::names::CROSS_REVIEW,
            GateLayer::CrossModel,
            "a deterministic gate did not pass",
        )
    } else {
        events(PipelineEvent::Phase(Phase::Review));
        let diff = facts.as_ref().map_or("", |f| f.diff.as_str());
        cross_review(s, inputs, &run, diff, &governed.report, cancel).await
    };
    if let Some(u) = &review.usage {
        r.usage = r.usage.plus(u);
    }
    r.cost_usd_micros = r
        .cost_usd_micros
        .saturating_add(review.cost_usd_micros.unwrap_or(0));
    events(PipelineEvent::Gate(review.clone()));
    gates.push(review);

    r.status = status(
        run.outcome.class,
        cancelled || cancel.is_cancelled(),
        &gates,
    );
    r.gates = gates;
    Ok(governed.report)
}

/// Commits the worker's changes on the dispatch branch (worktree
/// dispatches) and reads the git facts of `base..head`; `None` outside git.
fn commit_and_facts(
    s: &Setup,
    inputs: &DispatchInputs,
    r: &mut DispatchReceipt,
) -> Result<Option<vnx_git::DiffFacts>, PipelineError> {
    let Some(base) = &s.base else {
        r.warnings
            .push("outside a git repository: git facts are unavailable".to_owned());
        return Ok(None);
    };
    let committed = if let Some(pinned) = guard::pinned(s)? {
        let message = commit_message(&s.plan.id, &s.plan.skill.name, &inputs.task);
        Some(guard::commit_work(s, &pinned, &message, r)?)
    } else {
        r.warnings.push(
            "--in-place: nothing was committed; the git facts cover only commits the worker made"
                .to_owned(),
        );
        None
    };
    let head = match committed {
        Some(head) => head,
        None => vnx_git::head_commit(&s.plan.workdir)?,
    };
    // Nothing committed (by vnx or the worker): the facts are known without
    // asking git. Commits only: read from the repository itself, whatever
    // the worktree's `.git` file says by now.
    let f = if head == *base {
        empty_facts(base)
    } else {
        vnx_git::diff_facts(
            s.plan.repo.as_deref().unwrap_or(&s.plan.workdir),
            base,
            &head,
            vnx_git::DiffOptions::default(),
        )?
    };
    r.git = Some(f.to_git_facts(s.plan.branch.as_deref(), &rel_worktree(s)));
    Ok(Some(f))
}

/// The dispatch's status from the worker's outcome, cancellation and the gates.
fn status(outcome: OutcomeClass, cancelled: bool, gates: &[GateResult]) -> DispatchStatus {
    if cancelled || outcome == OutcomeClass::Interrupted {
        return DispatchStatus::Interrupted;
    }
    match outcome {
        OutcomeClass::Success => {
            if gates.iter().any(|g| g.verdict == Verdict::Error) {
                DispatchStatus::Error
            } else if gates.iter().any(|g| g.verdict == Verdict::Fail) {
                DispatchStatus::Failed
            } else {
                DispatchStatus::Passed
            }
        }
        // The worker ran and stopped at a limit the user set: its work failed the gates.
        OutcomeClass::MaxTurns | OutcomeClass::MaxBudget => DispatchStatus::Failed,
        OutcomeClass::Timeout => DispatchStatus::Timeout,
        _ => DispatchStatus::Error,
    }
}

/// The facts of a dispatch that changed nothing: head is base.
fn empty_facts(base: &str) -> vnx_git::DiffFacts {
    vnx_git::DiffFacts {
        base: base.to_owned(),
        head: base.to_owned(),
        head_tree: String::new(),
        commits: Vec::new(),
        files: Vec::new(),
        new_files: Vec::new(),
        deleted_files: Vec::new(),
        tests_touched: Vec::new(),
        stat: vnx_git::DiffStat::default(),
        diff: String::new(),
        diff_bytes: 0,
        diff_truncated: false,
    }
}

fn skipped(name: &str, layer: GateLayer, why: &str) -> GateResult {
    GateResult {
        name: name.to_owned(),
        layer,
        verdict: Verdict::Skipped,
        detail: why.to_owned(),
        duration_ms: None,
        usage: None,
        cost_usd_micros: None,
    }
}

fn commit_message(id: &str, skill: &str, task: &str) -> String {
    let first: String = task
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default()
        .chars()
        .take(72)
        .collect();
    let body: String = task.chars().take(2000).collect();
    format!("vnx: dispatch {id} ({skill}): {first}\n\n{body}\n\nVnx-Dispatch: {id}\n")
}

/// The review dispatch and its gate. Never fails: every problem is a gate `error`.
async fn cross_review(
    s: &Setup,
    inputs: &DispatchInputs,
    worker: &WorkerRun,
    diff: &str,
    report: &Value,
    cancel: &CancelToken,
) -> GateResult {
    let started = Instant::now();
    let config = &s.plan.loaded.config;
    let error_gate = |msg: String| {
        let mut g = vnx_govern::review_gate(&Err(GovernError::Verdict(msg)), None, None);
        g.duration_ms = Some(started.elapsed().as_millis() as u64);
        g
    };
    let provider_name = inputs
        .review
        .provider
        .clone()
        .unwrap_or_else(|| s.plan.provider.name.clone());
    let provider = match config.providers.provider(&provider_name) {
        Ok(p) => p,
        Err(e) => return error_gate(format!("review provider `{provider_name}`: {e}")),
    };
    let model = inputs.review.model.clone().or_else(|| {
        if provider.name == s.plan.provider.name {
            let worker_model = worker
                .outcome
                .model
                .clone()
                .or_else(|| s.requested_model.clone());
            default_review_model(provider.kind, worker_model.as_deref())
        } else {
            provider.config.default_model.clone()
        }
    });
    let prompt = vnx_govern::review_prompt(
        &inputs.task,
        diff,
        report,
        vnx_govern::DEFAULT_REVIEW_DIFF_BYTES,
    );
    let mut req = DispatchRequest::new(prompt, &s.plan.workdir);
    req.permission = vnx_agents::PermissionProfile::ReadOnly;
    req.model = model;
    req.billing = config.run.billing;
    req.pass_env.clone_from(&config.worker.pass_env);
    if provider.kind == ProviderKind::Claude
        && let Ok(schema) = vnx_govern::verdict_schema()
    {
        req.json_schema = Some(claude_schema(&schema.to_string()));
    }
    let opts = worker_options(s, inputs, "review");
    let run = match run_worker(&req, &provider, Lane::Headless, &opts, cancel).await {
        Ok(run) => run,
        Err(e) => return error_gate(format!("the review could not run: {e}")),
    };
    let verdict = if run.succeeded() {
        let text = run
            .outcome
            .structured_output
            .as_ref()
            .map(Value::to_string)
            .or_else(|| run.outcome.final_text.clone())
            .unwrap_or_default();
        vnx_govern::parse_verdict(&text)
    } else {
        Err(GovernError::Verdict(format!(
            "the review run ended `{}`{}",
            serde_json::to_value(run.outcome.class)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            run.outcome
                .error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        )))
    };
    let mut g = vnx_govern::review_gate(&verdict, Some(run.usage), Some(run.cost_usd_micros));
    if let Some(m) = &run.outcome.model.clone().or(req.model) {
        g.detail = format!("reviewer {} {m}: {}", provider.name, g.detail);
    }
    g.duration_ms = Some(started.elapsed().as_millis() as u64);
    g
}

/// The files of a dispatch branch's receipt commit, as written into the
/// worktree's ledger.
struct BranchFiles {
    /// Segment file name.
    segment: String,
    /// The commit message, naming the dispatch and its status.
    message: String,
    /// Paths relative to the worktree, with their tree paths and bytes.
    files: Vec<(PathBuf, String, Vec<u8>)>,
}

/// Appends the dispatch's started record and receipt to the ledger inside
/// the worktree (segment `<writer>--vnx_<id>.ndjson`, beside a copy of
/// `ledger.json` when the branch has none) and reads back the two files for
/// [`commit_branch_files`]. `Ok(None)` for dispatches without a worktree;
/// `Err` is a warning to show.
fn write_branch_ledger(
    s: &Setup,
    inputs: &DispatchInputs,
    receipt: &DispatchReceipt,
) -> Result<Option<BranchFiles>, String> {
    let (Some(repo), Some(wt), Some(branch)) = (&s.plan.repo, &s.worktree, &s.plan.branch) else {
        return Ok(None);
    };
    let fail = |what: &str, e: &dyn std::fmt::Display| receipt_not_committed(branch, what, e);
    let rel = s.plan.ledger_dir.strip_prefix(repo).map_err(|_| {
        fail(
            "the ledger is outside the repository",
            &s.plan.ledger_dir.display(),
        )
    })?;
    let dir = wt.path.join(rel);
    let manifest = dir.join(vnx_ledger::store::MANIFEST_FILE);
    if !manifest.exists() {
        std::fs::create_dir_all(&dir).map_err(|e| fail("creating the ledger directory", &e))?;
        // The bytes read at setup: the repository's copy may be gone.
        std::fs::write(&manifest, &s.manifest).map_err(|e| fail("copying ledger.json", &e))?;
    }
    let ledger = Ledger::open(&dir).map_err(|e| fail("opening the branch's ledger", &e))?;
    let segment = vnx_ledger::default_segment_name(&inputs.writer, branch);
    let records = [
        NewRecord::new(KIND_DISPATCH_STARTED, &s.started).map_err(|e| fail("serializing", &e))?,
        NewRecord::new(KIND_DISPATCH_RECEIPT, receipt).map_err(|e| fail("serializing", &e))?,
    ];
    ledger
        .append(&segment, &records)
        .map_err(|e| fail("appending", &e))?;
    // Only the ledger's manifest, the new segment and its signature: what a
    // command gate left behind (build output, lock files) stays out of the
    // branch.
    let mut paths = vec![
        rel.join(vnx_ledger::store::MANIFEST_FILE),
        rel.join(&segment),
    ];
    if let Some(key) = &s.signing_key {
        crate::signing::sign_segment(&dir, ledger.ledger_id(), &segment, key)
            .map_err(|e| fail("signing the segment", &e))?;
        paths.push(rel.join(format!(
            "{segment}{}",
            vnx_ledger::signature::SIGNATURE_SUFFIX
        )));
    }
    let mut files = Vec::with_capacity(paths.len());
    for path in paths {
        let bytes = std::fs::read(wt.path.join(&path))
            .map_err(|e| fail(&format!("reading {}", path.display()), &e))?;
        let name = tree_path(&path)
            .ok_or_else(|| fail("the ledger path is not UTF-8", &path.display()))?;
        files.push((path, name, bytes));
    }
    let status = serde_json::to_value(receipt.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let message = format!(
        "vnx: receipt of dispatch {} ({status})\n\nVnx-Dispatch: {}\n",
        s.plan.id, s.plan.id
    );
    Ok(Some(BranchFiles {
        segment,
        message,
        files,
    }))
}

/// The warning for a receipt that stays out of the dispatch branch.
fn receipt_not_committed(branch: &str, what: &str, e: &dyn std::fmt::Display) -> String {
    format!(
        "the receipt was not committed on {branch} ({what}: {e}); it is in the repository's ledger only"
    )
}

/// Commits the branch ledger's files on the dispatch branch with `git
/// fast-import` (on top of the work commit; the worktree's index is left
/// alone). Returns the branch receipt and the committed paths (relative to
/// the worktree); `Err` is a warning to show.
fn commit_branch_files(
    s: &Setup,
    written: BranchFiles,
) -> Result<(BranchReceipt, Vec<PathBuf>), String> {
    let (Some(repo), Some(branch)) = (&s.plan.repo, &s.plan.branch) else {
        return Err(receipt_not_committed(
            "the dispatch branch",
            "no repository",
            &"",
        ));
    };
    let fail = |what: &str, e: &dyn std::fmt::Display| receipt_not_committed(branch, what, e);
    let files: Vec<vnx_git::TreeFile<'_>> = written
        .files
        .iter()
        .map(|(_, path, bytes)| vnx_git::TreeFile {
            path,
            contents: bytes,
        })
        .collect();
    let settings = match &s.commit_settings {
        Some(settings) => settings.clone(),
        None => vnx_git::commit_settings(repo).map_err(|e| fail("reading the git identity", &e))?,
    };
    let commit = vnx_git::commit_files(repo, branch, &files, &written.message, &settings)
        .map_err(|e| fail("committing", &e))?;
    Ok((
        BranchReceipt {
            segment: written.segment,
            commit,
        },
        written.files.into_iter().map(|(path, _, _)| path).collect(),
    ))
}

/// A relative path as git names it in a tree: components joined by `/`.
fn tree_path(path: &Path) -> Option<String> {
    let parts: Option<Vec<&str>> = path
        .components()
        .map(|c| match c {
            std::path::Component::Normal(part) => part.to_str(),
            _ => None,
        })
        .collect();
    parts.map(|p| p.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispatch_ids_have_the_documented_shape() {
        let id = new_dispatch_id();
        assert_eq!(id.len(), "d-20261121-203000-abcdef".len(), "{id}");
        assert!(id.starts_with("d-"));
        assert!(vnx_git::validate_dispatch_id(&id).is_ok());
        assert_ne!(id, new_dispatch_id());
    }

    #[test]
    fn status_follows_outcome_then_gates() {
        let pass = skipped("a", GateLayer::Deterministic, "x");
        let mut fail = pass.clone();
        fail.verdict = Verdict::Fail;
        let mut err = pass.clone();
        err.verdict = Verdict::Error;
        assert_eq!(
            status(OutcomeClass::Success, false, std::slice::from_ref(&pass)),
            DispatchStatus::Passed
        );
        assert_eq!(
            status(OutcomeClass::Success, false, &[pass.clone(), fail.clone()]),
            DispatchStatus::Failed
        );
        assert_eq!(
            status(OutcomeClass::Success, false, &[fail, err]),
            DispatchStatus::Error
        );
        assert_eq!(status(OutcomeClass::Api, false, &[]), DispatchStatus::Error);
        assert_eq!(
            status(OutcomeClass::Timeout, false, &[]),
            DispatchStatus::Timeout
        );
        assert_eq!(
            status(OutcomeClass::Success, true, &[pass]),
            DispatchStatus::Interrupted
        );
    }
}
