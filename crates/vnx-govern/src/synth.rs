//! Reports built from git facts when the worker's is missing or invalid.

use serde_json::{Value, json};
use std::fmt::Write as _;
use vnx_git::{ChangeKind, DiffFacts};

/// Commits and files named in the summary before it says "and N more".
const SUMMARY_ITEMS: usize = 5;

/// A report built only from git facts, marked `"origin": "synthesized"`. It
/// validates against `schemas/report.schema.json`: `summary` states what git
/// shows (commits with subjects, files changed with +/− lines, new and deleted
/// files, tests touched, the diff stat), `files_changed` lists every file with
/// its counts, `tests.added` counts new test files. Extra fields carry the raw
/// facts: `commits`, `new_files`, `deleted_files`, `tests_touched`, `diff_stat`,
/// `base`, `head`.
pub fn synthesize(facts: &DiffFacts) -> Value {
    let short = |sha: &str| sha.chars().take(12).collect::<String>();
    let mut summary = String::new();
    if facts.is_empty() {
        let _ = write!(
            summary,
            "No changes between base {} and head {}: nothing was committed and no uncommitted changes were left.",
            short(&facts.base),
            short(&facts.head)
        );
    } else {
        let commits: Vec<String> = facts
            .commits
            .iter()
            .take(SUMMARY_ITEMS)
            .map(|c| format!("{} {}", short(&c.sha), c.subject))
            .collect();
        let _ = write!(
            summary,
            "{} {} from {} to {}",
            facts.commits.len(),
            if facts.commits.len() == 1 {
                "commit"
            } else {
                "commits"
            },
            short(&facts.base),
            short(&facts.head)
        );
        if !commits.is_empty() {
            let _ = write!(summary, " ({}", commits.join("; "));
            if facts.commits.len() > SUMMARY_ITEMS {
                let _ = write!(
                    summary,
                    "; and {} more",
                    facts.commits.len() - SUMMARY_ITEMS
                );
            }
            summary.push(')');
        }
        let _ = write!(summary, ": {}.", facts.stat);
        let files: Vec<String> = facts
            .files
            .iter()
            .take(SUMMARY_ITEMS)
            .map(|f| match (f.added, f.removed) {
                (Some(a), Some(r)) => format!("{} (+{a} −{r})", f.path),
                _ => format!("{} (binary)", f.path),
            })
            .collect();
        let _ = write!(summary, " Files: {}", files.join(", "));
        if facts.files.len() > SUMMARY_ITEMS {
            let _ = write!(summary, ", and {} more", facts.files.len() - SUMMARY_ITEMS);
        }
        summary.push('.');
        if !facts.new_files.is_empty() {
            let _ = write!(summary, " New files: {}.", list(&facts.new_files));
        }
        if !facts.deleted_files.is_empty() {
            let _ = write!(summary, " Deleted files: {}.", list(&facts.deleted_files));
        }
        if facts.tests_touched.is_empty() {
            summary.push_str(" No test files touched.");
        } else {
            let _ = write!(summary, " Tests touched: {}.", list(&facts.tests_touched));
        }
    }
    summary.push_str(
        " (Synthesized by vnx from git facts; the worker's own report was missing or invalid.)",
    );

    let files_changed: Vec<Value> = facts
        .files
        .iter()
        .map(|f| {
            let mut o = json!({
                "path": f.path,
                "status": kind_name(f.kind),
                "added": f.added,
                "removed": f.removed,
                "binary": f.binary,
            });
            if let (Some(old), Some(map)) = (&f.old_path, o.as_object_mut()) {
                map.insert("old_path".to_owned(), json!(old));
            }
            o
        })
        .collect();
    let new_tests = facts
        .tests_touched
        .iter()
        .filter(|t| facts.new_files.contains(t))
        .count();
    let mut risks = vec![
        "The worker's report was missing or invalid; this report states only what git shows, not what the worker intended or verified.".to_owned(),
    ];
    if facts.diff_truncated {
        risks.push(format!(
            "The diff is {} bytes; only the first {} bytes were available to the gates.",
            facts.diff_bytes,
            facts.diff.len()
        ));
    }
    json!({
        "summary": summary,
        "files_changed": files_changed,
        "tests": { "added": new_tests },
        "risks": risks,
        "followups": [],
        "origin": "synthesized",
        "base": facts.base,
        "head": facts.head,
        "commits": facts.commits,
        "new_files": facts.new_files,
        "deleted_files": facts.deleted_files,
        "tests_touched": facts.tests_touched,
        "diff_stat": facts.stat,
    })
}

/// The synthesized report of a dispatch that ran outside a git repository.
pub(crate) fn synthesize_without_git() -> Value {
    json!({
        "summary": "The worker's report was missing or invalid and the dispatch ran outside a git repository, so no git facts are available: nothing is known about what changed. (Synthesized by vnx.)",
        "files_changed": [],
        "risks": ["No report and no git facts: the change, if any, is unverified."],
        "followups": [],
        "origin": "synthesized",
    })
}

fn list(items: &[String]) -> String {
    let mut s = items
        .iter()
        .take(SUMMARY_ITEMS)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > SUMMARY_ITEMS {
        let _ = write!(s, ", and {} more", items.len() - SUMMARY_ITEMS);
    }
    s
}

fn kind_name(kind: ChangeKind) -> &'static str {
    match kind {
        ChangeKind::Added => "added",
        ChangeKind::Modified => "modified",
        ChangeKind::Deleted => "deleted",
        ChangeKind::Renamed => "renamed",
        ChangeKind::Copied => "copied",
        ChangeKind::TypeChanged => "type_changed",
        ChangeKind::Other => "other",
    }
}
