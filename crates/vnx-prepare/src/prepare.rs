//! PREPARE: one instruction from a skill, the permissions, what the repository
//! has learned, the report contract and the task — each part hashed.

use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};
use vnx_agents::{DispatchRequest, PermissionProfile, Provider, ProviderKind};
use vnx_types::{InstructionHashes, Lane, NamedHash};

use crate::config::RunConfig;
use crate::init::INTELLIGENCE_DIR;
use crate::skill::Skill;

/// Name of the skill-body part.
pub const PART_SKILL: &str = "skill";
/// Name of the permission-preamble part.
pub const PART_PERMISSIONS: &str = "permissions";
/// Name of the intelligence part (notes and lessons).
pub const PART_INTELLIGENCE: &str = "intelligence";
/// Name of the report-contract part.
pub const PART_REPORT_CONTRACT: &str = "report_contract";
/// Name of the task part.
pub const PART_TASK: &str = "task";

/// What separates two parts in the instruction.
pub const PART_SEPARATOR: &str = "\n\n";

/// Default bound of the intelligence part, bytes.
pub const DEFAULT_INTELLIGENCE_BYTES: usize = 8 * 1024;
/// Default number of failed-gate lessons taken from the ledger.
pub const DEFAULT_MAX_LESSONS: usize = 5;
/// Largest `detail` of one lesson kept, in characters.
pub const MAX_LESSON_DETAIL_CHARS: usize = 600;
/// Largest report schema read, bytes.
pub const MAX_SCHEMA_BYTES: u64 = 256 * 1024;

/// Where vnx's own report schema is read from when a skill names none: the
/// workspace's `schemas/report.schema.json`, found through this crate's source
/// location. It is read when a dispatch is prepared, not compiled in, because
/// the schema is still being written; the CLI may pass another path
/// ([`PrepareInputs::default_report_schema`]).
pub const DEFAULT_REPORT_SCHEMA_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../schemas/report.schema.json"
);

/// What [`prepare`] needs.
#[derive(Debug, Clone)]
pub struct PrepareInputs<'a> {
    /// The skill.
    pub skill: &'a Skill,
    /// The user's task, as given.
    pub task: &'a str,
    /// Absolute path of the directory the worker runs in (its worktree).
    pub worktree: &'a Path,
    /// Absolute path the worker must write its JSON report to. A sandboxed CLI
    /// (codex `workspace-write`) can write only inside the worktree, so a path
    /// under it (git-ignored) is the safe choice.
    pub report_path: &'a Path,
    /// Repository root, whose `.vnx/intelligence/*.md` notes are included; `None`: no notes.
    pub repo_root: Option<&'a Path>,
    /// Ledger directory, whose failed gates of this skill become lessons; `None`: no lessons.
    pub ledger_dir: Option<&'a Path>,
    /// Globs the worker must not touch (`[gates] forbidden_paths`).
    pub forbidden_paths: &'a [String],
    /// The report schema used when the skill names none. Default [`DEFAULT_REPORT_SCHEMA_PATH`].
    pub default_report_schema: &'a Path,
    /// Bound of the intelligence part, bytes. Default [`DEFAULT_INTELLIGENCE_BYTES`].
    pub intelligence_bytes: usize,
    /// How many of the latest failed gates of this skill become lessons. Default [`DEFAULT_MAX_LESSONS`].
    pub max_lessons: usize,
    /// Reports of the dispatches this one builds on (a batch's
    /// `depends_on`), shown first in the intelligence part, each cut to
    /// [`UPSTREAM_REPORT_BYTES`].
    pub upstream: &'a [Upstream],
}

/// Largest part of one upstream report put into the intelligence, bytes.
pub const UPSTREAM_REPORT_BYTES: usize = 8 * 1024;

/// A finished dispatch whose report a new one builds on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// Its dispatch id.
    pub dispatch_id: String,
    /// Its skill, if known.
    pub skill: Option<String>,
    /// Its task (first line shown).
    pub task: Option<String>,
    /// Its report, as JSON text.
    pub report: String,
}

impl<'a> PrepareInputs<'a> {
    /// Inputs with no notes, no lessons, no forbidden paths and the default bounds.
    pub fn new(skill: &'a Skill, task: &'a str, worktree: &'a Path, report_path: &'a Path) -> Self {
        PrepareInputs {
            skill,
            task,
            worktree,
            report_path,
            repo_root: None,
            ledger_dir: None,
            forbidden_paths: &[],
            default_report_schema: Path::new(DEFAULT_REPORT_SCHEMA_PATH),
            intelligence_bytes: DEFAULT_INTELLIGENCE_BYTES,
            max_lessons: DEFAULT_MAX_LESSONS,
            upstream: &[],
        }
    }
}

/// One part of the instruction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Part {
    /// `skill`, `permissions`, `intelligence`, `report_contract` or `task`.
    pub name: &'static str,
    /// The part's text exactly as it appears in the instruction.
    pub text: String,
    /// SHA-256 of `text`, lowercase hex.
    pub sha256: String,
}

/// A failed gate of an earlier dispatch of the same skill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lesson {
    /// Gate name.
    pub gate: String,
    /// The gate's reason, bounded to [`MAX_LESSON_DETAIL_CHARS`].
    pub detail: String,
    /// The dispatch it failed in.
    pub dispatch_id: String,
    /// The receipt's timestamp (RFC 3339 UTC).
    pub ts: String,
}

/// The prepared instruction and what goes with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Prepared {
    /// The full instruction: the parts joined by [`PART_SEPARATOR`].
    pub instruction: String,
    /// SHA-256 of `instruction`, lowercase hex.
    pub sha256: String,
    /// The parts, in order: skill, permissions, intelligence, report contract, task.
    pub parts: Vec<Part>,
    /// The report's JSON Schema text, as read.
    pub report_schema: String,
    /// Where it was read from.
    pub report_schema_path: PathBuf,
    /// The skill's profile.
    pub profile: PermissionProfile,
    /// The skill's allowed tools.
    pub allowed_tools: Vec<String>,
    /// The lessons included, newest first.
    pub lessons: Vec<Lesson>,
    /// Whether the intelligence part was cut at its bound.
    pub intelligence_truncated: bool,
    /// Problems that did not stop preparation (an unreadable note or ledger).
    pub warnings: Vec<String>,
}

impl Prepared {
    /// The hashes for the receipt's `instruction` field.
    pub fn hashes(&self) -> InstructionHashes {
        InstructionHashes {
            sha256: self.sha256.clone(),
            parts: self
                .parts
                .iter()
                .map(|p| NamedHash {
                    name: p.name.to_owned(),
                    sha256: p.sha256.clone(),
                })
                .collect(),
        }
    }

    /// The provider-neutral request for this instruction: prompt, profile and
    /// allowed tools from the skill; model, lane, turns, budget and billing from
    /// `run`; for claude on the headless lane also the report schema as
    /// `--json-schema` (compact JSON). `vnx_agents::build_invocation` turns it
    /// into argv. Codex takes a schema only as a file (`json_schema_file`),
    /// which the caller writes and sets.
    pub fn dispatch_request(
        &self,
        provider: &Provider,
        run: &RunConfig,
        cwd: &Path,
    ) -> DispatchRequest {
        let mut req = DispatchRequest::new(self.instruction.clone(), cwd);
        req.permission = self.profile;
        req.allowed_tools.clone_from(&self.allowed_tools);
        req.model.clone_from(&run.model);
        req.lane = run.lane;
        req.max_turns = run.max_turns;
        req.budget_usd_micros = run.max_budget_usd_micros;
        req.billing = run.billing;
        if provider.kind == ProviderKind::Claude && run.lane == Lane::Headless {
            req.json_schema = Some(
                serde_json::from_str::<serde_json::Value>(&self.report_schema)
                    .map_or_else(|_| self.report_schema.clone(), |v| v.to_string()),
            );
        }
        req
    }
}

/// Why an instruction could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// The task is empty.
    #[error("the task is empty: give it as an argument, with --task-file or on stdin")]
    EmptyTask,
    /// A path that must be absolute is not.
    #[error("{what} must be an absolute path, got {}", path.display())]
    RelativePath {
        /// Which input.
        what: &'static str,
        /// The path given.
        path: PathBuf,
    },
    /// The report schema cannot be read or is not JSON.
    #[error("report schema {}: {message}; fix the file or point the skill's `report_schema` at another", path.display())]
    Schema {
        /// The schema file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// SHA-256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Assembles the instruction for one dispatch. The output depends only on the
/// inputs and the files they name (notes are read in file-name order), so the
/// same inputs give the same hash.
///
/// # Errors
/// [`PrepareError::EmptyTask`], [`PrepareError::RelativePath`] for a relative
/// worktree or report path, [`PrepareError::Schema`] when the report schema
/// cannot be read or is not JSON. Unreadable notes or ledger segments are
/// warnings, not errors.
pub fn prepare(inputs: &PrepareInputs<'_>) -> Result<Prepared, PrepareError> {
    if inputs.task.trim().is_empty() {
        return Err(PrepareError::EmptyTask);
    }
    for (what, path) in [
        ("the worktree", inputs.worktree),
        ("the report path", inputs.report_path),
    ] {
        if !path.is_absolute() {
            return Err(PrepareError::RelativePath {
                what,
                path: path.to_path_buf(),
            });
        }
    }
    let skill = inputs.skill;
    let schema_path = skill
        .report_schema
        .clone()
        .unwrap_or_else(|| inputs.default_report_schema.to_path_buf());
    let report_schema = read_schema(&schema_path)?;

    let mut warnings = Vec::new();
    let lessons = match inputs.ledger_dir {
        Some(dir) => lessons(dir, &skill.name, inputs.max_lessons).unwrap_or_else(|e| {
            warnings.push(format!("lessons left out: {e}"));
            Vec::new()
        }),
        None => Vec::new(),
    };
    let notes = match inputs.repo_root {
        Some(root) => read_notes(
            &root.join(INTELLIGENCE_DIR),
            inputs.intelligence_bytes,
            &mut warnings,
        ),
        None => Vec::new(),
    };
    let (intelligence, intelligence_truncated) = intelligence_text(
        &skill.name,
        inputs.upstream,
        &lessons,
        &notes,
        inputs.intelligence_bytes,
    );

    let texts = [
        (PART_SKILL, skill.body.trim_end().to_owned()),
        (
            PART_PERMISSIONS,
            permissions_text(skill, inputs.worktree, inputs.forbidden_paths),
        ),
        (PART_INTELLIGENCE, intelligence),
        (
            PART_REPORT_CONTRACT,
            report_contract_text(inputs.report_path, &report_schema, skill.profile),
        ),
        (PART_TASK, format!("## Task\n\n{}", inputs.task.trim())),
    ];
    let parts: Vec<Part> = texts
        .into_iter()
        .map(|(name, text)| Part {
            name,
            sha256: sha256_hex(text.as_bytes()),
            text,
        })
        .collect();
    let instruction = parts
        .iter()
        .map(|p| p.text.as_str())
        .collect::<Vec<_>>()
        .join(PART_SEPARATOR);
    Ok(Prepared {
        sha256: sha256_hex(instruction.as_bytes()),
        instruction,
        parts,
        report_schema,
        report_schema_path: schema_path,
        profile: skill.profile,
        allowed_tools: skill.allowed_tools.clone(),
        lessons,
        intelligence_truncated,
        warnings,
    })
}

fn read_schema(path: &Path) -> Result<String, PrepareError> {
    let err = |message: String| PrepareError::Schema {
        path: path.to_path_buf(),
        message,
    };
    let file = std::fs::File::open(path).map_err(|e| err(format!("cannot open: {e}")))?;
    let mut bytes = Vec::new();
    file.take(MAX_SCHEMA_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| err(format!("cannot read: {e}")))?;
    if bytes.len() as u64 > MAX_SCHEMA_BYTES {
        return Err(err(format!("larger than {MAX_SCHEMA_BYTES} bytes")));
    }
    let text = String::from_utf8(bytes).map_err(|_| err("not UTF-8".to_owned()))?;
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(serde_json::Value::Object(_)) => Ok(text.trim().to_owned()),
        Ok(_) => Err(err("not a JSON object".to_owned())),
        Err(e) => Err(err(format!("not JSON: {e}"))),
    }
}

fn profile_words(profile: PermissionProfile) -> &'static str {
    match profile {
        PermissionProfile::ReadOnly => {
            "Profile: **read-only**. You may read files and run commands that change nothing \
             (search, list, `git status`, `git diff`, `git log`, read-only test listings). Do not \
             create, modify, move or delete any file; the only file you may write is the report \
             named below."
        }
        PermissionProfile::Edit => {
            "Profile: **edit**. You may read, create, modify and delete files inside the worktree \
             without asking. Run only the commands the task needs (builds, tests, formatters, \
             linters); do not install software system-wide, change global configuration, or use \
             the network unless the task says so."
        }
        PermissionProfile::Full => {
            "Profile: **full**. You may edit files and run any command the task needs without \
             asking. That trust is for the task: still keep every change inside the worktree and \
             do nothing irreversible outside it."
        }
    }
}

fn permissions_text(skill: &Skill, worktree: &Path, forbidden: &[String]) -> String {
    let mut out = String::from("## Permissions\n\n");
    let _ = write!(
        out,
        "You are working in a git worktree made for this task:\n\n    {}\n\n\
         Stay inside it: read and change files only under this directory and run commands from it. \
         Leave your changes in the working tree or commit them on the current branch; never push, \
         rebase, or switch or create branches — vnx records and commits the result itself.\n\n{}",
        worktree.display(),
        profile_words(skill.profile)
    );
    if !skill.allowed_tools.is_empty() {
        let _ = write!(
            out,
            "\n\nTools you may use without asking: {}.",
            skill
                .allowed_tools
                .iter()
                .map(|t| format!("`{t}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if !forbidden.is_empty() {
        out.push_str(
            "\n\nNever create, change or delete these paths (globs relative to the worktree root); \
             a gate rejects any work that touches them:\n",
        );
        for glob in forbidden {
            let _ = write!(out, "\n- `{glob}`");
        }
    }
    out
}

fn report_contract_text(report_path: &Path, schema: &str, profile: PermissionProfile) -> String {
    let fallback = match profile {
        PermissionProfile::ReadOnly => {
            "Your profile may not let you write files. If writing the report file is refused, \
             make your final message exactly that JSON object, with nothing before or after it."
        }
        _ => {
            "If you cannot write the file, make your final message exactly that JSON object, \
             with nothing before or after it."
        }
    };
    format!(
        "## Report\n\n\
         When you finish — also when you stop early or cannot do the task — write your report as \
         one JSON object to this file, replacing it if it exists:\n\n    {}\n\n\
         The report must validate against the JSON Schema below. Write only JSON to the file \
         (no Markdown fences, no comments). Report what you actually did and checked: list the \
         files you changed, and do not say tests passed unless you ran them and saw them pass. \
         {fallback}\n\n```json\n{schema}\n```",
        report_path.display()
    )
}

/// Reads `<dir>/*.md` in file-name order, each at most `limit + 1` bytes (the
/// part is bounded to `limit` anyway). A missing directory gives no notes.
fn read_notes(dir: &Path, limit: usize, warnings: &mut Vec<String>) -> Vec<(String, String)> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            warnings.push(format!(
                "notes left out: cannot list {}: {e}",
                dir.display()
            ));
            return Vec::new();
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "md") && p.is_file())
        .collect();
    paths.sort();
    let mut notes = Vec::new();
    for path in paths {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut bytes = Vec::new();
        let read = std::fs::File::open(&path)
            .and_then(|f| f.take(limit as u64 + 1).read_to_end(&mut bytes));
        match read {
            Ok(_) => notes.push((name, String::from_utf8_lossy(&bytes).trim().to_owned())),
            Err(e) => warnings.push(format!("note {} left out: {e}", path.display())),
        }
    }
    notes
}

fn intelligence_text(
    skill: &str,
    upstream: &[Upstream],
    lessons: &[Lesson],
    notes: &[(String, String)],
    limit: usize,
) -> (String, bool) {
    let mut out = String::from("## Project intelligence\n\n");
    if upstream.is_empty() && lessons.is_empty() && notes.is_empty() {
        out.push_str("Nothing recorded for this repository yet.");
        return bound(out, limit);
    }
    out.push_str(
        "What earlier work in this repository taught. Use it, but check it against the code: it may be out of date.",
    );
    if !upstream.is_empty() {
        out.push_str(
            "\n\n### Reports of the dispatches this one builds on\n\nThis task continues their work; their reports follow, oldest first.",
        );
        for u in upstream {
            let what = match (&u.skill, u.task.as_deref().and_then(|t| t.lines().next())) {
                (Some(skill), Some(task)) => format!(" ({skill}: {task})"),
                (Some(skill), None) => format!(" ({skill})"),
                (None, Some(task)) => format!(" ({task})"),
                (None, None) => String::new(),
            };
            let (report, _) = bound(u.report.clone(), UPSTREAM_REPORT_BYTES);
            let _ = write!(
                out,
                "\n\n#### Dispatch {}{what}\n\n```json\n{report}\n```",
                u.dispatch_id
            );
        }
    }
    if !lessons.is_empty() {
        let _ = write!(
            out,
            "\n\n### Gates that failed in recent `{skill}` dispatches — avoid repeating these\n"
        );
        for l in lessons {
            let _ = write!(
                out,
                "\n- `{}` failed (dispatch {}, {}): {}",
                l.gate, l.dispatch_id, l.ts, l.detail
            );
        }
    }
    for (name, text) in notes {
        let _ = write!(out, "\n\n### Note: {name}\n\n{text}");
    }
    bound(out, limit)
}

/// Cuts `text` to at most `limit` bytes (at a char boundary), ending it with a
/// marker saying so. Returns whether it was cut. The result never exceeds
/// `limit`, even when `limit` is smaller than the marker.
fn bound(text: String, limit: usize) -> (String, bool) {
    if text.len() <= limit {
        return (text, false);
    }
    let marker =
        format!("\n\n[vnx: intelligence truncated to {limit} bytes; the rest was left out]");
    let (head, tail) = if marker.len() <= limit {
        (limit - marker.len(), marker.as_str())
    } else {
        (limit, "")
    };
    let mut out = text
        .get(..floor_char_boundary(&text, head))
        .unwrap_or("")
        .to_owned();
    out.push_str(tail);
    (out, true)
}

fn floor_char_boundary(text: &str, mut at: usize) -> usize {
    at = at.min(text.len());
    while at > 0 && !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// The latest `max` failed gates (verdict `fail`) of dispatches of `skill`,
/// newest first, read from the `dispatch.receipt` records of every segment in
/// `ledger_dir`. Records are ordered by timestamp, then segment, then seq.
/// A missing ledger directory gives no lessons; unreadable lines are skipped.
///
/// # Errors
/// I/O errors listing or reading the ledger.
pub fn lessons(
    ledger_dir: &Path,
    skill: &str,
    max: usize,
) -> Result<Vec<Lesson>, vnx_ledger::LedgerError> {
    if max == 0 || !ledger_dir.is_dir() {
        return Ok(Vec::new());
    }
    // (ts, segment, seq, gate index) → lesson
    let mut found: Vec<((String, PathBuf, u64, usize), Lesson)> = Vec::new();
    for segment in vnx_ledger::read::segment_paths(ledger_dir)? {
        for record in vnx_ledger::read::read_segment(&segment)?
            .into_iter()
            .flatten()
        {
            if record.kind != "dispatch.receipt"
                || record.body.get("skill").and_then(|s| s.as_str()) != Some(skill)
            {
                continue;
            }
            let dispatch_id = record
                .body
                .get("dispatch_id")
                .and_then(|d| d.as_str())
                .unwrap_or("?")
                .to_owned();
            let Some(gates) = record.body.get("gates").and_then(|g| g.as_array()) else {
                continue;
            };
            for (i, gate) in gates.iter().enumerate() {
                if gate.get("verdict").and_then(|v| v.as_str()) != Some("fail") {
                    continue;
                }
                let text = |k: &str| gate.get(k).and_then(|v| v.as_str()).unwrap_or("");
                let detail = one_line(text("detail"), MAX_LESSON_DETAIL_CHARS);
                found.push((
                    (record.ts.clone(), segment.clone(), record.seq, i),
                    Lesson {
                        gate: one_line(text("name"), 100),
                        detail,
                        dispatch_id: dispatch_id.clone(),
                        ts: record.ts.clone(),
                    },
                ));
            }
        }
    }
    // Newest receipt first; within one receipt, gates in their order.
    found.sort_by(|(a, _), (b, _)| {
        (&b.0, &b.1, b.2)
            .cmp(&(&a.0, &a.1, a.2))
            .then(a.3.cmp(&b.3))
    });
    Ok(found.into_iter().take(max).map(|(_, l)| l).collect())
}

/// Collapses whitespace runs (newlines included) to one space and cuts to
/// `max` characters with `…`, so that a lesson stays one list item.
fn one_line(text: &str, max: usize) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if joined.chars().count() <= max {
        return joined;
    }
    let mut out: String = joined.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_never_exceeds_the_limit() {
        let text = "é".repeat(5_000);
        for limit in [0, 1, 2, 3, 10, 71, 200, 8192, 9_999, 10_000, 20_000] {
            let (out, cut) = bound(text.clone(), limit);
            assert!(out.len() <= limit, "{limit}: {}", out.len());
            assert_eq!(cut, text.len() > limit);
        }
        let (out, cut) = bound(text.clone(), 300);
        assert!(cut && out.ends_with("left out]") && out.starts_with('é'));
    }

    #[test]
    fn one_line_collapses_and_cuts() {
        assert_eq!(one_line(" a\n\tb  c ", 10), "a b c");
        assert_eq!(one_line("abcdef", 4), "abc…");
    }
}
