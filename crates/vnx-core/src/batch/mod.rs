//! `vnx batch`: many governed dispatches at once, under caps.
//!
//! ```text
//! batch file ─► validate (ids, depends_on, cycles, skills, providers) ─► batch id
//!     ─► every entry queued (live.json phase `queued`)
//!     ─► loop: start each ready entry in file order while a slot is free:
//!          its dependencies passed · fewer than max_parallel running ·
//!          fewer than its provider's cap running · its provider not paused
//!        each dispatch = run_dispatch on its own thread (own runtime), so one
//!        dispatch's blocking git and fsync calls never stall another's
//!     ─► finished: passed → dependents may start; not passed → retry_with once,
//!        else its dependents are skipped (never started, no records)
//! ```
//!
//! **Rate limits.** Every provider has one [`ProviderPause`] shared by all
//! its dispatches: an attempt that the CLI reports as rate limited pauses the
//! provider until the reported reset (or the backoff delay), no new dispatch
//! of that provider starts before then, and running ones wait for it before
//! their next attempt.
//!
//! **Receipts.** Each started dispatch writes its own `dispatch.started` and
//! `dispatch.receipt` (with the batch id, and `builds_on` = the receipt
//! hashes of its dependencies). Cancelling (Ctrl-C) stops new starts and
//! interrupts the running dispatches, each of which still ends in a receipt
//! with status `interrupted`. An entry that never started (cancelled while
//! queued, or a dependency did not pass) has no ledger record: it was never
//! dispatched; the [`BatchOutcome`] lists it as not started, with why.

mod file;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;
use tokio::time::Instant;
use vnx_prepare::{Config, Overrides, SkillCatalog};
use vnx_types::{DispatchStatus, LivePhase, Usage};

pub use file::{BatchEntry, BatchFile, BatchFileError, MAX_BATCH_FILE_BYTES, RetryWith};

use crate::live;
use crate::pipeline::{
    BuiltOn, CancelToken, DispatchInputs, DispatchOutcome, PipelineError, PipelineEvent,
    ReviewSettings, new_dispatch_id,
};
use crate::worker::{EnvSource, ProviderPause};

/// Skill of an entry that names none (and whose defaults name none).
pub const DEFAULT_SKILL: &str = "implement";

/// How a batch runs, beyond its file.
#[derive(Debug, Clone)]
pub struct BatchOptions {
    /// Directory vnx was started in; `vnx.toml` and the repository are found from here.
    pub cwd: PathBuf,
    /// Dispatches running at once; `None`: `[batch] max_parallel` (default 4).
    pub max_parallel: Option<usize>,
    /// Command-line values over `vnx.toml`'s, for every entry (an entry's own
    /// provider, model, lane, timeout and max turns win over these).
    pub overrides: Overrides,
    /// Keep worktrees of passed dispatches.
    pub keep: bool,
    /// Writer identity for segment names.
    pub writer: String,
    /// Environment of the workers.
    pub env: EnvSource,
    /// Who reviews.
    pub review: ReviewSettings,
    /// Batch id to use; `None`: a fresh [`new_batch_id`].
    pub batch_id: Option<String>,
}

impl BatchOptions {
    /// Options for a batch started in `cwd`, everything else default.
    pub fn new(cwd: impl Into<PathBuf>) -> Self {
        BatchOptions {
            cwd: cwd.into(),
            max_parallel: None,
            overrides: Overrides::default(),
            keep: false,
            writer: "vnx".to_owned(),
            env: EnvSource::Inherit,
            review: ReviewSettings::default(),
            batch_id: None,
        }
    }
}

/// A fresh batch id: `b-<UTC yyyymmdd-hhmmss>-<6 random hex>`.
pub fn new_batch_id() -> String {
    let now = chrono::Utc::now().format("%Y%m%d-%H%M%S");
    let hex = uuid::Uuid::new_v4().simple().to_string();
    format!("b-{now}-{}", &hex[..6])
}

/// A batch that cannot start.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// The file cannot be read or parsed.
    #[error(transparent)]
    File(#[from] BatchFileError),
    /// The configuration cannot be loaded.
    #[error(transparent)]
    Config(#[from] vnx_prepare::ConfigError),
    /// Entries that refer to unknown things or form a cycle; nothing was
    /// started. Its message lists the first [`SHOWN_PROBLEMS`] problems and
    /// how many more there are.
    #[error("{} is refused, nothing was started:\n{}", path.display(), problem_list(problems))]
    Invalid {
        /// The batch file.
        path: PathBuf,
        /// One line per problem, each naming the entry.
        problems: Vec<String>,
    },
    /// `max_parallel` of 0.
    #[error("--max-parallel must be at least 1")]
    ZeroParallel,
}

/// Problems listed in a [`BatchError::Invalid`] message; the rest are counted.
pub const SHOWN_PROBLEMS: usize = 20;

/// The first [`SHOWN_PROBLEMS`] problems, one per line, and `… and N more`.
fn problem_list(problems: &[String]) -> String {
    let mut lines: Vec<String> = problems
        .iter()
        .take(SHOWN_PROBLEMS)
        .map(|p| format!("  - {p}"))
        .collect();
    if problems.len() > SHOWN_PROBLEMS {
        lines.push(format!(
            "  … and {} more problem(s); fix these and check again (vnx batch --check)",
            problems.len() - SHOWN_PROBLEMS
        ));
    }
    lines.join("\n")
}

/// How one entry of the batch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryStatus {
    /// Its (last) dispatch passed.
    Passed,
    /// Gates failed.
    Failed,
    /// Worker or gate error, or the dispatch could not be set up.
    Error,
    /// The worker timed out.
    Timeout,
    /// Interrupted (Ctrl-C) while running.
    Interrupted,
    /// Never started: a dependency did not pass.
    Skipped,
    /// Never started: the batch was cancelled first.
    NotStarted,
}

impl EntryStatus {
    fn of(status: DispatchStatus) -> Self {
        match status {
            DispatchStatus::Passed => EntryStatus::Passed,
            DispatchStatus::Failed => EntryStatus::Failed,
            DispatchStatus::Error => EntryStatus::Error,
            DispatchStatus::Timeout => EntryStatus::Timeout,
            DispatchStatus::Interrupted => EntryStatus::Interrupted,
        }
    }

    /// Lowercase name: `passed`, `not_started`…
    pub fn as_str(self) -> &'static str {
        match self {
            EntryStatus::Passed => "passed",
            EntryStatus::Failed => "failed",
            EntryStatus::Error => "error",
            EntryStatus::Timeout => "timeout",
            EntryStatus::Interrupted => "interrupted",
            EntryStatus::Skipped => "skipped",
            EntryStatus::NotStarted => "not_started",
        }
    }
}

/// One dispatch an entry ran (an entry with `retry_with` may run two).
#[derive(Debug, Clone, Serialize)]
pub struct EntryDispatch {
    /// Dispatch id.
    pub dispatch_id: String,
    /// Provider name.
    pub provider: String,
    /// Model reported (or requested).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The receipt's status; `None` when the dispatch could not be set up
    /// (nothing was recorded; see `error`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<DispatchStatus>,
    /// The receipt record's hash.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt_hash: Option<String>,
    /// Why it could not be set up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The receipt's duration (start of the dispatch to its receipt), ms.
    pub duration_ms: u64,
    /// The dispatch's whole slot in the batch, ms: setup, worker, gates,
    /// receipt and cleanup (worktree removal, receipt commit on the branch).
    pub wall_ms: u64,
    /// Tokens.
    pub usage: Usage,
    /// Cost, micro-USD.
    pub cost_usd_micros: u64,
}

/// How one entry ended.
#[derive(Debug, Clone, Serialize)]
pub struct EntryReport {
    /// The entry's id in the batch file.
    pub id: String,
    /// Skill.
    pub skill: String,
    /// Final status.
    pub status: EntryStatus,
    /// Why it did not start or did not pass, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Its dispatches, in order (empty when it never started).
    pub dispatches: Vec<EntryDispatch>,
}

/// A finished batch.
#[derive(Debug, Clone, Serialize)]
pub struct BatchOutcome {
    /// Batch id (in every receipt of the batch).
    pub batch_id: String,
    /// Per entry, in file order.
    pub entries: Vec<EntryReport>,
    /// From the first start to the last end, ms.
    pub makespan_ms: u64,
    /// Most dispatches that ran at once.
    pub max_running: usize,
    /// The global cap used.
    pub max_parallel: usize,
    /// Whether the batch was cancelled.
    pub cancelled: bool,
}

impl BatchOutcome {
    /// The worst entry status, by `vnx run`'s exit-code order: error,
    /// timeout or interruption first, then failed or skipped, then passed.
    pub fn worst(&self) -> EntryStatus {
        let rank = |s: EntryStatus| match s {
            EntryStatus::Passed => 0,
            EntryStatus::Skipped | EntryStatus::Failed => 1,
            EntryStatus::NotStarted => 2,
            EntryStatus::Timeout | EntryStatus::Error | EntryStatus::Interrupted => 3,
        };
        self.entries
            .iter()
            .map(|e| e.status)
            .max_by_key(|s| rank(*s))
            .unwrap_or(EntryStatus::Passed)
    }
}

/// What the batch reports while it runs (only `vnx-cli` prints).
#[derive(Debug, Clone)]
pub enum BatchEvent {
    /// Validated; about to start.
    Begin {
        /// Batch id.
        batch_id: String,
        /// Number of entries.
        entries: usize,
        /// Global cap.
        max_parallel: usize,
    },
    /// An entry's dispatch started (`retry` is true for a `retry_with` run).
    Started {
        /// Entry index (file order).
        entry: usize,
        /// Entry id.
        id: String,
        /// Dispatch id.
        dispatch_id: String,
        /// Provider name.
        provider: String,
        /// Requested model.
        model: Option<String>,
        /// Whether this is the `retry_with` run.
        retry: bool,
    },
    /// Something a running dispatch reported.
    Pipeline {
        /// Entry index.
        entry: usize,
        /// The event.
        event: PipelineEvent,
    },
    /// An entry's dispatch ended (the entry may still retry).
    Finished {
        /// Entry index.
        entry: usize,
        /// The dispatch.
        dispatch: EntryDispatch,
    },
    /// An entry is final.
    EntryDone {
        /// Entry index.
        entry: usize,
        /// Its report.
        report: EntryReport,
    },
    /// A provider was found rate limited; its dispatches wait.
    Paused {
        /// Provider name.
        provider: String,
        /// For how long, ms.
        for_ms: u64,
    },
    /// Cancelled: no new starts; running dispatches are interrupted.
    Cancelling {
        /// Dispatches still running.
        running: usize,
    },
}

/// A validated entry with everything resolved.
#[derive(Debug, Clone)]
struct Job {
    entry: BatchEntry,
    skill: String,
    provider: String,
    deps: Vec<usize>,
    /// Pre-assigned dispatch id of the first run (shown while queued).
    dispatch_id: String,
}

/// Validates `file` against the configuration and skills found from
/// `options.cwd`: unique ids, known `depends_on` targets, no cycles, known
/// skills and providers (including `retry_with`'s). Every problem is listed,
/// each naming its entry.
fn validate(
    file: &BatchFile,
    options: &BatchOptions,
) -> Result<(Vec<Job>, Config, PathBuf), BatchError> {
    let mut loaded = Config::load(&options.cwd)?;
    loaded.config.apply_overrides(&options.overrides)?;
    // Refuse a ledger outside the repository before any entry starts.
    loaded.checked_ledger_dir()?;
    let catalog = SkillCatalog::from_env(Some(&loaded.root));
    let mut problems = Vec::new();
    let name = |e: &BatchEntry| format!("entry {:?} ({})", shorten(&e.id), e.location);
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, e) in file.entries.iter().enumerate() {
        if let Some(why) = bad_id(&e.id) {
            problems.push(format!("{}: {why}", name(e)));
        }
        if let Some(first) = index.insert(e.id.as_str(), i) {
            problems.push(format!(
                "{}: duplicate id; {} has it already",
                name(e),
                file.entries[first].location
            ));
            index.insert(e.id.as_str(), first);
        }
        if e.prompt.trim().is_empty() {
            problems.push(format!("{}: empty prompt", name(e)));
        }
    }
    let mut skills_checked: HashMap<String, bool> = HashMap::new();
    let mut jobs = Vec::with_capacity(file.entries.len());
    for e in &file.entries {
        let skill = e.skill.clone().unwrap_or_else(|| DEFAULT_SKILL.to_owned());
        if !skills_checked.contains_key(&skill) {
            let ok = catalog.show(&skill).map_err(|err| {
                problems.push(format!("{}: {err}", name(e)));
            });
            skills_checked.insert(skill.clone(), ok.is_ok());
        } else if skills_checked.get(&skill) == Some(&false) {
            problems.push(format!("{}: unknown skill `{skill}` (see above)", name(e)));
        }
        let provider = e
            .provider
            .clone()
            .unwrap_or_else(|| loaded.config.run.provider.clone());
        if let Err(err) = loaded.config.providers.provider(&provider) {
            problems.push(format!("{}: provider {provider:?}: {err}", name(e)));
        }
        if let Some(rw) = &e.retry_with
            && let Some(p) = &rw.provider
            && let Err(err) = loaded.config.providers.provider(p)
        {
            problems.push(format!("{}: retry_with provider {p:?}: {err}", name(e)));
        }
        if let Some(t) = &e.timeout
            && vnx_prepare::parse_duration(t).is_none()
        {
            problems.push(format!(
                "{}: timeout {t:?}: expected {}",
                name(e),
                vnx_prepare::DURATION_EXPECTED
            ));
        }
        let mut deps = Vec::new();
        for d in &e.depends_on {
            match index.get(d.as_str()) {
                Some(&j) if file.entries[j].id == e.id => {
                    problems.push(format!("{}: depends on itself", name(e)));
                }
                Some(&j) => {
                    if !deps.contains(&j) {
                        deps.push(j);
                    }
                }
                None => problems.push(format!(
                    "{}: depends_on {:?}, which is no entry's id",
                    name(e),
                    shorten(d)
                )),
            }
        }
        jobs.push(Job {
            entry: e.clone(),
            skill,
            provider,
            deps,
            dispatch_id: new_dispatch_id(),
        });
    }
    if let Some(cycle) = find_cycle(&jobs) {
        let mut path: Vec<String> = cycle
            .iter()
            .take(SHOWN_PROBLEMS)
            .map(|&i| shorten(&jobs[i].entry.id))
            .collect();
        if cycle.len() > SHOWN_PROBLEMS {
            path.push(format!("… ({} entries in all)", cycle.len() - 1));
        }
        problems.push(format!(
            "depends_on forms a cycle: {} (entry {:?} at {})",
            path.join(" → "),
            shorten(&jobs[cycle[0]].entry.id),
            jobs[cycle[0]].entry.location
        ));
    }
    if !problems.is_empty() {
        return Err(BatchError::Invalid {
            path: file.path.clone(),
            problems,
        });
    }
    Ok((jobs, loaded.config, loaded.root))
}

/// Longest entry id, bytes.
pub const MAX_ENTRY_ID_BYTES: usize = 128;

/// The characters an entry id may use, for messages.
pub const ENTRY_ID_CHARS: &str = "ASCII letters, digits and - _ . : # @ +";

/// Why `id` is not a valid entry id: empty, longer than
/// [`MAX_ENTRY_ID_BYTES`], or a character outside [`ENTRY_ID_CHARS`] (ids
/// name threads, live files and receipts' `batch_entry`; a NUL or a control
/// character there breaks them).
fn bad_id(id: &str) -> Option<String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-_.:#@+".contains(c);
    let rule = format!("an id is 1 to {MAX_ENTRY_ID_BYTES} of: {ENTRY_ID_CHARS}");
    if id.is_empty() {
        return Some(format!("empty id; {rule}"));
    }
    if id.len() > MAX_ENTRY_ID_BYTES {
        return Some(format!("id of {} bytes is too long; {rule}", id.len()));
    }
    let (at, c) = id.char_indices().find(|&(_, c)| !allowed(c))?;
    Some(format!(
        "id has {:?} (U+{:04X}) at byte {at}, which is not allowed; {rule}",
        c, c as u32
    ))
}

/// `text` cut to [`MAX_ENTRY_ID_BYTES`] for a message.
fn shorten(text: &str) -> String {
    if text.len() <= MAX_ENTRY_ID_BYTES {
        return text.to_owned();
    }
    format!("{}…", &text[..text.floor_char_boundary(MAX_ENTRY_ID_BYTES)])
}

/// A cycle in the dependency graph, as entry indices with the first repeated
/// at the end; `None` when the graph is acyclic.
fn find_cycle(jobs: &[Job]) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit(
        i: usize,
        jobs: &[Job],
        marks: &mut [Mark],
        stack: &mut Vec<usize>,
    ) -> Option<Vec<usize>> {
        marks[i] = Mark::Open;
        stack.push(i);
        for &d in &jobs[i].deps {
            match marks[d] {
                Mark::Open => {
                    let from = stack.iter().position(|&s| s == d).unwrap_or(0);
                    let mut cycle = stack[from..].to_vec();
                    cycle.push(d);
                    return Some(cycle);
                }
                Mark::New => {
                    if let Some(c) = visit(d, jobs, marks, stack) {
                        return Some(c);
                    }
                }
                Mark::Done => {}
            }
        }
        stack.pop();
        marks[i] = Mark::Done;
        None
    }
    let mut marks = vec![Mark::New; jobs.len()];
    let mut stack = Vec::new();
    (0..jobs.len()).find_map(|i| {
        if marks[i] == Mark::New {
            visit(i, jobs, &mut marks, &mut stack)
        } else {
            None
        }
    })
}

/// Checks a batch file without running anything (what `vnx batch --check` prints).
///
/// # Errors
/// As [`run_batch`] before anything starts.
pub fn check_batch(file: &BatchFile, options: &BatchOptions) -> Result<usize, BatchError> {
    validate(file, options).map(|(jobs, _, _)| jobs.len())
}

/// Where an entry is.
#[derive(Debug, Clone)]
enum State {
    Waiting,
    Running { provider: String },
    Done(EntryStatus),
}

/// A message from a dispatch thread.
enum Msg {
    Event(usize, PipelineEvent),
    /// The dispatch's outcome, or why it has none (its error, or the panic
    /// that ended its thread), and its wall time, ms.
    Done(usize, Box<Result<DispatchOutcome, String>>, u64),
}

/// The dispatch threads still running. If the scheduler unwinds (a panic,
/// in it or in the caller's event handler), dropping this cancels the
/// batch and waits for every thread: each running dispatch still ends in
/// its receipt and kills its worker, instead of being orphaned when the
/// process exits.
struct Threads {
    running: HashMap<usize, std::thread::JoinHandle<()>>,
    cancel: CancelToken,
}

impl Threads {
    /// Joins entry `i`'s thread, which has sent its last message.
    fn finished(&mut self, i: usize) {
        if let Some(t) = self.running.remove(&i) {
            let _ = t.join();
        }
    }

    /// Joins every thread.
    fn join_all(&mut self) {
        for (_, t) in self.running.drain() {
            let _ = t.join();
        }
    }
}

impl Drop for Threads {
    fn drop(&mut self) {
        if !self.running.is_empty() {
            self.cancel.cancel();
            self.join_all();
        }
    }
}

/// Runs every entry of `file` (see the module docs). `events` receives
/// progress; `cancel` stops new starts and interrupts running dispatches.
///
/// # Errors
/// Before anything starts: [`BatchError`] (unreadable config, invalid
/// entries — all listed). Once started, every outcome is in [`BatchOutcome`].
pub async fn run_batch(
    file: &BatchFile,
    options: &BatchOptions,
    events: &mut dyn FnMut(BatchEvent),
    cancel: &CancelToken,
) -> Result<BatchOutcome, BatchError> {
    let (jobs, config, root) = validate(file, options)?;
    let max_parallel = options.max_parallel.unwrap_or(config.batch.max_parallel);
    if max_parallel == 0 {
        return Err(BatchError::ZeroParallel);
    }
    let batch_id = options.batch_id.clone().unwrap_or_else(new_batch_id);
    events(BatchEvent::Begin {
        batch_id: batch_id.clone(),
        entries: jobs.len(),
        max_parallel,
    });
    let mut queued_reason: Vec<Option<String>> = vec![None; jobs.len()];
    for (i, job) in jobs.iter().enumerate() {
        let reason = wait_reason(&jobs, i);
        write_queued(&root, &batch_id, job, &reason);
        queued_reason[i] = Some(reason);
    }

    let pauses: HashMap<String, ProviderPause> = jobs
        .iter()
        .flat_map(|j| {
            let retry = j.entry.retry_with.as_ref().and_then(|r| r.provider.clone());
            std::iter::once(j.provider.clone()).chain(retry)
        })
        .map(|p| (p, ProviderPause::new()))
        .collect();
    let mut announced_pause: HashMap<String, bool> = HashMap::new();
    let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
    let mut state: Vec<State> = vec![State::Waiting; jobs.len()];
    let mut reports: Vec<Option<EntryReport>> = vec![None; jobs.len()];
    let mut dispatches: Vec<Vec<EntryDispatch>> = vec![Vec::new(); jobs.len()];
    // What a dependent needs of a finished entry (only kept for entries
    // something depends on): the rest of each outcome is dropped at once,
    // so memory does not grow with the number of finished dispatches.
    let mut needed = vec![false; jobs.len()];
    for job in &jobs {
        for &d in &job.deps {
            needed[d] = true;
        }
    }
    let mut finals: Vec<Option<BuiltOn>> = vec![None; jobs.len()];
    let mut retried = vec![false; jobs.len()];
    let mut running = 0usize;
    let mut max_running = 0usize;
    let mut per_provider: BTreeMap<String, usize> = BTreeMap::new();
    let mut threads = Threads {
        running: HashMap::new(),
        cancel: cancel.clone(),
    };
    let mut cancelling = false;
    let mut first_start: Option<Instant> = None;
    let mut last_end: Option<Instant> = None;

    loop {
        if cancel.is_cancelled() && !cancelling {
            cancelling = true;
            events(BatchEvent::Cancelling { running });
        }
        // Entries whose dependencies can no longer pass, or that can no longer start.
        for i in 0..jobs.len() {
            if !matches!(state[i], State::Waiting) {
                continue;
            }
            let failed_dep = jobs[i]
                .deps
                .iter()
                .find(|&&d| matches!(state[d], State::Done(s) if s != EntryStatus::Passed));
            let status_reason = if let Some(&d) = failed_dep {
                Some((
                    EntryStatus::Skipped,
                    format!(
                        "not started: dependency {:?} ended {}",
                        jobs[d].entry.id,
                        match &state[d] {
                            State::Done(s) => s.as_str(),
                            _ => "unfinished",
                        }
                    ),
                ))
            } else if cancelling {
                Some((
                    EntryStatus::NotStarted,
                    "not started: the batch was cancelled".to_owned(),
                ))
            } else {
                None
            };
            if let Some((status, reason)) = status_reason {
                end_unstarted(
                    &root,
                    &jobs,
                    i,
                    status,
                    reason,
                    &mut state,
                    &mut reports,
                    events,
                );
            }
        }
        // Announce each provider pause once (a running dispatch's worker
        // sets it; the loop wakes at least once a second on progress).
        for (provider, pause) in &pauses {
            let paused = pause.remaining();
            let announced = announced_pause.get(provider).copied().unwrap_or(false);
            if let (Some(left), false) = (paused, announced) {
                events(BatchEvent::Paused {
                    provider: provider.clone(),
                    for_ms: left.as_millis() as u64,
                });
            }
            announced_pause.insert(provider.clone(), paused.is_some());
        }
        // Start what can start, in file order.
        let mut next_pause: Option<Duration> = None;
        if !cancelling {
            for i in 0..jobs.len() {
                if !matches!(state[i], State::Waiting) || running >= max_parallel {
                    continue;
                }
                if !jobs[i]
                    .deps
                    .iter()
                    .all(|&d| matches!(state[d], State::Done(EntryStatus::Passed)))
                {
                    continue;
                }
                let (provider, model) = run_target(&jobs[i], retried[i]);
                let cap = config.batch.provider_caps.get(&provider).copied();
                let busy = per_provider.get(&provider).copied().unwrap_or(0);
                if cap.is_some_and(|c| busy >= c) {
                    update_queued(
                        &root,
                        &batch_id,
                        &jobs[i],
                        &mut queued_reason[i],
                        format!("{provider} cap of {} reached", cap.unwrap_or(0)),
                    );
                    continue;
                }
                if let Some(left) = pauses.get(&provider).and_then(ProviderPause::remaining) {
                    update_queued(
                        &root,
                        &batch_id,
                        &jobs[i],
                        &mut queued_reason[i],
                        format!("{provider} rate-limited for {} s", left.as_secs() + 1),
                    );
                    next_pause = Some(next_pause.map_or(left, |n: Duration| n.min(left)));
                    continue;
                }
                // Start it.
                let dispatch_id = if retried[i] {
                    new_dispatch_id()
                } else {
                    jobs[i].dispatch_id.clone()
                };
                let inputs = dispatch_inputs(
                    &jobs,
                    i,
                    options,
                    &batch_id,
                    &dispatch_id,
                    &provider,
                    model.as_deref(),
                    &finals,
                    pauses.get(&provider).cloned(),
                );
                events(BatchEvent::Started {
                    entry: i,
                    id: jobs[i].entry.id.clone(),
                    dispatch_id: dispatch_id.clone(),
                    provider: provider.clone(),
                    model: model.clone(),
                    retry: retried[i],
                });
                let tx = tx.clone();
                let cancel = cancel.clone();
                // Named by position: an id is the user's text.
                let spawned = std::thread::Builder::new()
                    .name(format!("vnx-batch-{}", i + 1))
                    .spawn(move || dispatch_thread(i, &inputs, &tx, &cancel));
                match spawned {
                    Ok(handle) => {
                        threads.running.insert(i, handle);
                        first_start.get_or_insert_with(Instant::now);
                        state[i] = State::Running {
                            provider: provider.clone(),
                        };
                        running += 1;
                        max_running = max_running.max(running);
                        *per_provider.entry(provider).or_insert(0) += 1;
                    }
                    Err(e) => end_unstarted(
                        &root,
                        &jobs,
                        i,
                        EntryStatus::Error,
                        format!("cannot start a thread for the dispatch: {e}"),
                        &mut state,
                        &mut reports,
                        events,
                    ),
                }
            }
        }
        if running == 0 {
            let waiting = state.iter().any(|s| matches!(s, State::Waiting));
            if !waiting {
                break;
            }
            if next_pause.is_none() {
                // Nothing runs, nothing can start, nothing is paused: only
                // possible if the bookkeeping above is wrong; end rather than hang.
                for i in 0..jobs.len() {
                    if matches!(state[i], State::Waiting) {
                        end_unstarted(
                            &root,
                            &jobs,
                            i,
                            EntryStatus::NotStarted,
                            "not started: nothing could run it".to_owned(),
                            &mut state,
                            &mut reports,
                            events,
                        );
                    }
                }
                break;
            }
        }
        let pause_sleep =
            next_pause.map_or(Duration::from_hours(1), |d| d + Duration::from_millis(5));
        let msg = tokio::select! {
            m = rx.recv() => m,
            () = tokio::time::sleep(pause_sleep), if next_pause.is_some() => continue,
            () = cancel.cancelled(), if !cancelling => continue,
        };
        let Some(msg) = msg else { break };
        match msg {
            Msg::Event(i, event) => events(BatchEvent::Pipeline { entry: i, event }),
            Msg::Done(i, result, duration_ms) => {
                threads.finished(i);
                last_end = Some(Instant::now());
                running = running.saturating_sub(1);
                if let State::Running { provider } = &state[i]
                    && let Some(n) = per_provider.get_mut(provider)
                {
                    *n = n.saturating_sub(1);
                }
                let (provider, model) = run_target(&jobs[i], retried[i]);
                let (d, status, outcome) = match *result {
                    Ok(o) => (
                        EntryDispatch {
                            dispatch_id: o.receipt.dispatch_id.clone(),
                            provider: o.receipt.provider.clone(),
                            model: o.receipt.model.clone(),
                            status: Some(o.receipt.status),
                            receipt_hash: Some(o.receipt_hash.clone()),
                            error: None,
                            duration_ms: o.receipt.duration_ms,
                            wall_ms: duration_ms,
                            usage: o.receipt.usage,
                            cost_usd_micros: o.receipt.cost_usd_micros,
                        },
                        EntryStatus::of(o.receipt.status),
                        Some(o),
                    ),
                    Err(e) => (
                        EntryDispatch {
                            dispatch_id: String::new(),
                            provider,
                            model,
                            status: None,
                            receipt_hash: None,
                            error: Some(vnx_agents::redact(&e)),
                            duration_ms,
                            wall_ms: duration_ms,
                            usage: Usage::default(),
                            cost_usd_micros: 0,
                        },
                        EntryStatus::Error,
                        None,
                    ),
                };
                events(BatchEvent::Finished {
                    entry: i,
                    dispatch: d.clone(),
                });
                dispatches[i].push(d);
                let can_retry = status != EntryStatus::Passed
                    && status != EntryStatus::Interrupted
                    && !retried[i]
                    && !cancel.is_cancelled()
                    && jobs[i].entry.retry_with.is_some();
                if can_retry {
                    retried[i] = true;
                    state[i] = State::Waiting;
                    continue;
                }
                state[i] = State::Done(status);
                let reason = match (&outcome, dispatches[i].last()) {
                    (_, Some(EntryDispatch { error: Some(e), .. })) => Some(e.clone()),
                    (Some(o), _) if status != EntryStatus::Passed => o
                        .receipt
                        .gates
                        .iter()
                        .find(|g| {
                            matches!(
                                g.verdict,
                                vnx_types::Verdict::Fail | vnx_types::Verdict::Error
                            )
                        })
                        .map(|g| format!("gate {}: {}", g.name, g.detail))
                        .or_else(|| o.receipt.warnings.last().cloned()),
                    _ => None,
                };
                if needed[i] {
                    finals[i] = outcome.map(|o| BuiltOn {
                        dispatch_id: o.receipt.dispatch_id,
                        receipt_hash: o.receipt_hash,
                        report: o.report,
                        skill: Some(jobs[i].skill.clone()),
                        task: Some(jobs[i].entry.prompt.clone()),
                    });
                }
                let report = EntryReport {
                    id: jobs[i].entry.id.clone(),
                    skill: jobs[i].skill.clone(),
                    status,
                    reason: reason.map(|r| cut(&r, MAX_REASON_BYTES)),
                    dispatches: dispatches[i].clone(),
                };
                events(BatchEvent::EntryDone {
                    entry: i,
                    report: report.clone(),
                });
                reports[i] = Some(report);
            }
        }
    }
    drop(tx);
    threads.join_all();
    let makespan_ms = match (first_start, last_end) {
        (Some(a), Some(b)) => b.saturating_duration_since(a).as_millis() as u64,
        _ => 0,
    };
    let entries = reports
        .into_iter()
        .zip(&jobs)
        .map(|(r, job)| {
            r.unwrap_or_else(|| EntryReport {
                id: job.entry.id.clone(),
                skill: job.skill.clone(),
                status: EntryStatus::NotStarted,
                reason: Some("not started".to_owned()),
                dispatches: Vec::new(),
            })
        })
        .collect();
    Ok(BatchOutcome {
        batch_id,
        entries,
        makespan_ms,
        max_running,
        max_parallel,
        cancelled: cancel.is_cancelled(),
    })
}

/// Longest `reason` kept in an entry's report, bytes (a gate's detail can
/// be long; the receipt has all of it).
const MAX_REASON_BYTES: usize = 2048;

/// `text` cut to at most `max` bytes (at a character boundary), marked `…`.
fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    format!("{}…", &text[..text.floor_char_boundary(max)])
}

/// Provider and model of an entry's next run: its own, or `retry_with`'s.
fn run_target(job: &Job, retry: bool) -> (String, Option<String>) {
    match (&job.entry.retry_with, retry) {
        (Some(rw), true) => {
            let provider = rw.provider.clone().unwrap_or_else(|| job.provider.clone());
            // A retry on another provider does not inherit a model name of the first.
            let model = rw.model.clone().or_else(|| {
                if provider == job.provider {
                    job.entry.model.clone()
                } else {
                    None
                }
            });
            (provider, model)
        }
        _ => (job.provider.clone(), job.entry.model.clone()),
    }
}

#[allow(clippy::too_many_arguments)]
fn dispatch_inputs(
    jobs: &[Job],
    i: usize,
    options: &BatchOptions,
    batch_id: &str,
    dispatch_id: &str,
    provider: &str,
    model: Option<&str>,
    finals: &[Option<BuiltOn>],
    pause: Option<ProviderPause>,
) -> DispatchInputs {
    let job = &jobs[i];
    let mut inputs = DispatchInputs::new(&options.cwd, job.entry.prompt.clone(), job.skill.clone());
    let mut overrides = options.overrides.clone();
    overrides.provider = Some(provider.to_owned());
    overrides.model = model
        .map(str::to_owned)
        .or(overrides.model.filter(|_| provider == job.provider));
    if let Some(lane) = job.entry.lane {
        overrides.lane = Some(lane);
    }
    if let Some(t) = job
        .entry
        .timeout
        .as_deref()
        .and_then(vnx_prepare::parse_duration)
    {
        overrides.timeout = Some(t);
    }
    if let Some(n) = job.entry.max_turns {
        overrides.max_turns = Some(n);
    }
    inputs.overrides = overrides;
    inputs.keep = options.keep;
    inputs.writer.clone_from(&options.writer);
    inputs.env = options.env.clone();
    inputs.review = options.review.clone();
    inputs.dispatch_id = Some(dispatch_id.to_owned());
    inputs.batch_id = Some(batch_id.to_owned());
    inputs.batch_entry = Some(job.entry.id.clone());
    inputs.pause = pause;
    inputs.builds_on = job.deps.iter().filter_map(|&d| finals[d].clone()).collect();
    inputs
}

/// Runs one dispatch on this (dedicated) thread with its own runtime and
/// sends its events and result to the scheduler.
fn dispatch_thread(
    i: usize,
    inputs: &DispatchInputs,
    tx: &mpsc::UnboundedSender<Msg>,
    cancel: &CancelToken,
) {
    let start = std::time::Instant::now();
    // A panic here must still reach the scheduler as this entry's end, or
    // the batch would wait for it forever.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt.block_on(crate::pipeline::run_dispatch(
                inputs,
                &mut |e| {
                    let _ = tx.send(Msg::Event(i, e));
                },
                cancel,
            )),
            Err(e) => Err(PipelineError::Io {
                context: "starting the dispatch's async runtime",
                path: inputs.cwd.clone(),
                source: e,
            }),
        }
    }));
    let result = match result {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(panic) => Err(format!(
            "the dispatch's thread panicked: {}",
            panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)")
        )),
    };
    let _ = tx.send(Msg::Done(
        i,
        Box::new(result),
        start.elapsed().as_millis() as u64,
    ));
}

/// Ends entry `i` without a dispatch (a dependency failed, the batch was
/// cancelled, it could not be started): its queued card goes away and its
/// report says why.
#[allow(clippy::too_many_arguments)]
fn end_unstarted(
    root: &std::path::Path,
    jobs: &[Job],
    i: usize,
    status: EntryStatus,
    reason: String,
    state: &mut [State],
    reports: &mut [Option<EntryReport>],
    events: &mut dyn FnMut(BatchEvent),
) {
    state[i] = State::Done(status);
    forget_queued(root, &jobs[i].dispatch_id);
    let report = EntryReport {
        id: jobs[i].entry.id.clone(),
        skill: jobs[i].skill.clone(),
        status,
        reason: Some(reason),
        dispatches: Vec::new(),
    };
    events(BatchEvent::EntryDone {
        entry: i,
        report: report.clone(),
    });
    reports[i] = Some(report);
}

/// Why entry `i` waits before anything ran: its dependencies, else a slot.
fn wait_reason(jobs: &[Job], i: usize) -> String {
    let pending: Vec<&str> = jobs[i]
        .deps
        .iter()
        .map(|&d| jobs[d].entry.id.as_str())
        .collect();
    if pending.is_empty() {
        "a free slot".to_owned()
    } else {
        format!("depends on {}", pending.join(", "))
    }
}

fn queued_status(batch_id: &str, job: &Job, reason: &str) -> vnx_types::LiveStatus {
    let mut s = live::new_live_status(
        &job.dispatch_id,
        &job.skill,
        &job.provider,
        job.entry.model.as_deref(),
        LivePhase::Queued,
    );
    s.batch_id = Some(batch_id.to_owned());
    s.batch_entry = Some(job.entry.id.clone());
    s.waiting_for = Some(reason.to_owned());
    s
}

fn write_queued(root: &std::path::Path, batch_id: &str, job: &Job, reason: &str) {
    let _ = live::write_live_status(
        &live::run_dir(root, &job.dispatch_id),
        &queued_status(batch_id, job, reason),
    );
}

/// Rewrites a queued entry's live status when why it waits changed.
fn update_queued(
    root: &std::path::Path,
    batch_id: &str,
    job: &Job,
    last: &mut Option<String>,
    reason: String,
) {
    if last.as_deref() != Some(reason.as_str()) {
        write_queued(root, batch_id, job, &reason);
        *last = Some(reason);
    }
}

/// Removes the run directory of an entry that never started (it holds only
/// the queued `live.json`), so no board shows it as queued forever.
fn forget_queued(root: &std::path::Path, dispatch_id: &str) {
    let dir = live::run_dir(root, dispatch_id);
    let _ = std::fs::remove_file(dir.join(vnx_types::LIVE_STATUS_FILE));
    let _ = std::fs::remove_dir(&dir);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str, deps: &[usize]) -> Job {
        Job {
            entry: BatchEntry {
                id: id.to_owned(),
                location: String::new(),
                skill: None,
                prompt: "p".to_owned(),
                provider: None,
                model: None,
                lane: None,
                depends_on: Vec::new(),
                retry_with: None,
                timeout: None,
                max_turns: None,
            },
            skill: "implement".to_owned(),
            provider: "claude".to_owned(),
            deps: deps.to_vec(),
            dispatch_id: String::new(),
        }
    }

    #[test]
    fn finds_cycles_and_only_cycles() {
        let acyclic = [job("a", &[]), job("b", &[0]), job("c", &[0, 1])];
        assert_eq!(find_cycle(&acyclic), None);
        let cyclic = [
            job("a", &[2]),
            job("b", &[0]),
            job("c", &[1]),
            job("d", &[]),
        ];
        let c = find_cycle(&cyclic).unwrap_or_default();
        assert_eq!(c.first(), c.last());
        assert_eq!(c.len(), 4, "{c:?}");
    }

    #[test]
    fn retry_target_drops_the_first_providers_model() {
        let mut j = job("a", &[]);
        j.entry.model = Some("sonnet".into());
        j.entry.retry_with = Some(RetryWith {
            provider: Some("codex".into()),
            model: None,
        });
        assert_eq!(
            run_target(&j, false),
            ("claude".into(), Some("sonnet".into()))
        );
        assert_eq!(run_target(&j, true), ("codex".into(), None));
        j.entry.retry_with = Some(RetryWith {
            provider: None,
            model: Some("opus".into()),
        });
        assert_eq!(run_target(&j, true), ("claude".into(), Some("opus".into())));
    }
}
