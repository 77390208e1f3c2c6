//! Deterministic gates. Each returns a [`GateResult`] of layer
//! [`GateLayer::Deterministic`] with a bounded, redacted detail and its wall time.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::LazyLock;
use std::time::Instant;

use regex::Regex;
use serde::{Deserialize, Serialize};
use vnx_git::{DiffFacts, added_lines};
use vnx_types::{GateLayer, GateResult, OutcomeClass, Verdict};

use crate::glob::ForbiddenPaths;
use crate::report::ReportResult;
use crate::secrets::{find_secrets, redact_secrets};

/// Longest gate detail, bytes.
pub const MAX_DETAIL_BYTES: usize = 4096;

/// Findings listed in a detail before "… and N more".
pub const MAX_FINDINGS: usize = 20;

/// Largest test file read by [`tests_have_assertions_gate`], bytes.
const MAX_TEST_FILE_BYTES: u64 = 2 * 1024 * 1024;

/// Gate names, as recorded in receipts.
pub mod names {
    /// [`super::worker_outcome_gate`].
    pub const WORKER_OUTCOME: &str = "worker-outcome";
    /// [`super::report_gate`].
    pub const REPORT_VALID: &str = "report-valid";
    /// [`super::non_empty_change_gate`].
    pub const NON_EMPTY_CHANGE: &str = "non-empty-change";
    /// [`super::no_placeholders_gate`].
    pub const NO_PLACEHOLDERS: &str = "no-placeholders";
    /// [`super::tests_have_assertions_gate`].
    pub const TESTS_HAVE_ASSERTIONS: &str = "tests-have-assertions";
    /// [`super::diff_size_gate`].
    pub const DIFF_SIZE: &str = "diff-size";
    /// [`super::forbidden_paths_gate`].
    pub const FORBIDDEN_PATHS: &str = "forbidden-paths";
    /// [`super::no_secrets_gate`].
    pub const NO_SECRETS: &str = "no-secrets";
    /// [`super::budget_gate`].
    pub const BUDGET: &str = "budget";
    /// [`crate::side_effects_gate`].
    pub const SIDE_EFFECTS: &str = "side-effects";
    /// [`crate::review_gate`].
    pub const CROSS_REVIEW: &str = "cross-review";
}

/// How a missing or invalid worker report counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateMode {
    /// A missing or invalid worker report fails the dispatch.
    Enforce,
    /// It is recorded (gate `skipped` with the reason) without failing; the default
    /// until a skill opts in to `enforce`.
    #[default]
    Shadow,
}

impl std::str::FromStr for GateMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "enforce" => Ok(GateMode::Enforce),
            "shadow" => Ok(GateMode::Shadow),
            other => Err(format!(
                "unknown gate mode {other:?}; expected enforce or shadow"
            )),
        }
    }
}

/// Whether the skill is expected to change files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeExpectation {
    /// An editing skill (`implement`, `test`, `docs`): an empty change fails.
    Edits,
    /// A read-only skill (`review`): the non-empty-change gate is skipped.
    ReadOnly,
}

/// Builds a deterministic gate result whose detail is redacted, then bounded
/// (in that order: a cut first could split a secret past recognition).
pub(crate) fn gate(name: &str, verdict: Verdict, detail: &str, started: Instant) -> GateResult {
    GateResult {
        name: name.to_owned(),
        layer: GateLayer::Deterministic,
        verdict,
        detail: bound_bytes(&redact_secrets(detail), MAX_DETAIL_BYTES),
        duration_ms: Some(started.elapsed().as_millis() as u64),
        usage: None,
        cost_usd_micros: None,
    }
}

/// `s` cut to at most `max` bytes on a char boundary, noting how much was cut.
/// Redact `s` before calling this.
pub(crate) fn bound_bytes(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max.saturating_sub(40);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} more bytes)", &s[..end], s.len() - end)
}

/// Joins findings, at most [`MAX_FINDINGS`], then "… and N more".
pub(crate) fn findings(items: &[String]) -> String {
    let mut s = items
        .iter()
        .take(MAX_FINDINGS)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if items.len() > MAX_FINDINGS {
        let _ = write!(s, "; … and {} more", items.len() - MAX_FINDINGS);
    }
    s
}

/// Pass when the worker's run ended in success; fail otherwise, naming the outcome.
pub fn worker_outcome_gate(outcome: OutcomeClass) -> GateResult {
    let t = Instant::now();
    let name = serde_json::to_value(outcome)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{outcome:?}"));
    if outcome.is_success() {
        gate(
            names::WORKER_OUTCOME,
            Verdict::Pass,
            "worker finished: success",
            t,
        )
    } else {
        gate(
            names::WORKER_OUTCOME,
            Verdict::Fail,
            &format!("worker did not succeed: {name}"),
            t,
        )
    }
}

/// Pass on a valid worker report. A missing, rejected or invalid one fails in
/// [`GateMode::Enforce`] and is `skipped` (recorded, not failing) in
/// [`GateMode::Shadow`]; the detail says what was wrong either way.
pub fn report_gate(result: &ReportResult, mode: GateMode) -> GateResult {
    let t = Instant::now();
    let what = result.describe();
    if result.is_valid() {
        return gate(names::REPORT_VALID, Verdict::Pass, &what, t);
    }
    match mode {
        GateMode::Enforce => gate(names::REPORT_VALID, Verdict::Fail, &what, t),
        GateMode::Shadow => gate(
            names::REPORT_VALID,
            Verdict::Skipped,
            &format!("shadow mode, not enforced: {what}"),
            t,
        ),
    }
}

/// For editing skills, fail when nothing changed between base and head;
/// skipped for read-only skills.
pub fn non_empty_change_gate(facts: &DiffFacts, expect: ChangeExpectation) -> GateResult {
    let t = Instant::now();
    match expect {
        ChangeExpectation::ReadOnly => gate(
            names::NON_EMPTY_CHANGE,
            Verdict::Skipped,
            "read-only skill: no change expected",
            t,
        ),
        ChangeExpectation::Edits if facts.is_empty() => gate(
            names::NON_EMPTY_CHANGE,
            Verdict::Fail,
            "editing skill produced no change: no commits and no changed files",
            t,
        ),
        ChangeExpectation::Edits => gate(
            names::NON_EMPTY_CHANGE,
            Verdict::Pass,
            &format!("{} in {} commit(s)", facts.stat, facts.commits.len()),
            t,
        ),
    }
}

static PLACEHOLDERS: LazyLock<Result<Regex, String>> = LazyLock::new(|| {
    Regex::new(r"\bTODO\b|\bFIXME\b|\btodo!|\bunimplemented!|^\s*pass\s+#")
        .map_err(|e| e.to_string())
});

/// Fail when a line *added* by the diff holds a placeholder: `TODO`, `FIXME`,
/// `todo!`, `unimplemented!`, or a Python `pass  # …`. Pre-existing ones do not
/// count. The detail lists `file:line: text` for each. When the diff was
/// truncated and nothing was found, the verdict is `error` (not all lines seen).
pub fn no_placeholders_gate(facts: &DiffFacts) -> GateResult {
    let t = Instant::now();
    let re = match PLACEHOLDERS.as_ref() {
        Ok(re) => re,
        Err(e) => return gate(names::NO_PLACEHOLDERS, Verdict::Error, e, t),
    };
    let hits: Vec<String> = added_lines(&facts.diff)
        .into_iter()
        .filter(|l| re.is_match(&l.text))
        .map(|l| {
            format!(
                "{}:{}: {}",
                l.path,
                l.line,
                redact_secrets(l.text.trim())
                    .chars()
                    .take(160)
                    .collect::<String>()
            )
        })
        .collect();
    diff_scan_result(
        names::NO_PLACEHOLDERS,
        facts,
        &hits,
        "placeholders added",
        "no placeholders added",
        t,
    )
}

/// Fail when a line added by the diff holds a secret (API keys, tokens, private
/// keys, long `*_KEY=` / `*_TOKEN=` values). The detail gives `file:line` and
/// the kind, never the secret. Truncated diffs are handled as in
/// [`no_placeholders_gate`].
pub fn no_secrets_gate(facts: &DiffFacts) -> GateResult {
    let t = Instant::now();
    let mut hits = Vec::new();
    for l in added_lines(&facts.diff) {
        match find_secrets(&l.text) {
            Ok(found) => {
                for f in found {
                    hits.push(format!("{}:{}: {}", l.path, l.line, f.kind));
                }
            }
            Err(e) => return gate(names::NO_SECRETS, Verdict::Error, &e.to_string(), t),
        }
    }
    diff_scan_result(
        names::NO_SECRETS,
        facts,
        &hits,
        "possible secrets added",
        "no secrets added",
        t,
    )
}

fn diff_scan_result(
    name: &str,
    facts: &DiffFacts,
    hits: &[String],
    bad: &str,
    good: &str,
    t: Instant,
) -> GateResult {
    if !hits.is_empty() {
        return gate(
            name,
            Verdict::Fail,
            &format!("{bad}: {}", findings(hits)),
            t,
        );
    }
    if facts.diff_truncated {
        return gate(
            name,
            Verdict::Error,
            &format!(
                "diff is {} bytes; only the first {} bytes were checked",
                facts.diff_bytes,
                facts.diff.len()
            ),
            t,
        );
    }
    gate(name, Verdict::Pass, good, t)
}

/// Languages the assertion heuristics know, by file extension.
fn assertion_rules(path: &str) -> Option<(&'static str, &'static str)> {
    // (has-tests pattern, has-assertions pattern)
    let ext = path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase())?;
    Some(match ext.as_str() {
        "rs" => (
            r"#\[\s*(?:[a-z_]+::)*test\b",
            r"\b(?:debug_)?assert\w*!|\bprop_assert\w*!|#\[\s*should_panic|\bpanic!",
        ),
        "py" => (
            r"(?m)^\s*(?:async\s+)?def\s+test\w*|^\s*class\s+Test\w*",
            r"\bassert\b|\.assert\w+\(|\bpytest\.raises\b|\bself\.fail\(",
        ),
        "go" => (
            r"\bfunc\s+Test\w*\s*\(",
            r"\bt\.(?:Error|Errorf|Fatal|Fatalf|Fail|FailNow)\b|\b(?:assert|require)\.\w+\(",
        ),
        "js" | "ts" | "jsx" | "tsx" | "mjs" | "cjs" => (
            r"\b(?:it|test|describe)\s*\(",
            r"\bexpect\s*\(|\bassert\b|\.should\b|\bt\.(?:is|deepEqual|true|false|throws)\(",
        ),
        "rb" => (
            r"\b(?:it|describe|context|test)\b|\bdef\s+test_",
            r"\bexpect\s*[({]|\bassert\w*|\.should\b|\bmust_\w+",
        ),
        "java" | "kt" | "scala" | "cs" => (
            r"@Test\b|\[(?:Test|Fact|Theory|TestMethod)\]|\btest\s*\(",
            r"\bassert\w*\s*\(|\bAssert\.\w+|\bassertThat\b|\bverify\s*\(|\bshouldBe\b",
        ),
        _ => return None,
    })
}

/// For each test file the diff touched (see `vnx_git::is_test_path`), read it
/// from `worktree` and check that, if it defines tests, it also asserts
/// something (language heuristics: Rust `#[test]` with `assert!`-family macros,
/// Python `assert`/`self.assert*`/`pytest.raises`, Go `t.Error`/`t.Fatal`/testify,
/// JS/TS `expect(`/`assert`, Ruby, JVM/.NET asserts). Helper modules and
/// fixtures without test definitions, and files in unknown languages, are not
/// judged. Skipped when no test file was touched; `error` when a file cannot be read.
pub fn tests_have_assertions_gate(facts: &DiffFacts, worktree: &Path) -> GateResult {
    let t = Instant::now();
    let name = names::TESTS_HAVE_ASSERTIONS;
    if facts.tests_touched.is_empty() {
        return gate(name, Verdict::Skipped, "no test files touched", t);
    }
    let mut without = Vec::new();
    let mut with = Vec::new();
    let mut not_judged = Vec::new();
    for path in &facts.tests_touched {
        let Some((defines, asserts)) = assertion_rules(path) else {
            not_judged.push(path.clone());
            continue;
        };
        let (Ok(defines), Ok(asserts)) = (Regex::new(defines), Regex::new(asserts)) else {
            return gate(
                name,
                Verdict::Error,
                &format!("assertion patterns for {path} do not compile"),
                t,
            );
        };
        let text = match read_text(&worktree.join(path)) {
            Ok(text) => text,
            Err(e) => {
                return gate(
                    name,
                    Verdict::Error,
                    &format!("could not read {path}: {e}"),
                    t,
                );
            }
        };
        if !defines.is_match(&text) {
            not_judged.push(path.clone());
        } else if asserts.is_match(&text) {
            with.push(path.clone());
        } else {
            without.push(path.clone());
        }
    }
    if !without.is_empty() {
        return gate(
            name,
            Verdict::Fail,
            &format!("test files without assertions: {}", findings(&without)),
            t,
        );
    }
    if with.is_empty() {
        return gate(
            name,
            Verdict::Skipped,
            &format!(
                "touched test files define no tests (helpers, fixtures or unknown languages): {}",
                findings(&not_judged)
            ),
            t,
        );
    }
    gate(
        name,
        Verdict::Pass,
        &format!("assertions found in {}", findings(&with)),
        t,
    )
}

fn read_text(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut buf = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_TEST_FILE_BYTES)
        .read_to_end(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Fail when lines added plus lines removed exceed `max_lines`; skipped when
/// there is no limit. Binary files count 0 lines.
pub fn diff_size_gate(facts: &DiffFacts, max_lines: Option<u64>) -> GateResult {
    let t = Instant::now();
    let lines = facts.stat.insertions + facts.stat.deletions;
    let Some(max) = max_lines else {
        return gate(
            names::DIFF_SIZE,
            Verdict::Skipped,
            &format!("no limit configured ({lines} lines changed)"),
            t,
        );
    };
    let detail = format!(
        "{lines} lines changed (+{} −{}), limit {max}",
        facts.stat.insertions, facts.stat.deletions
    );
    let verdict = if lines > max {
        Verdict::Fail
    } else {
        Verdict::Pass
    };
    gate(names::DIFF_SIZE, verdict, &detail, t)
}

/// Fail when a changed file (its path at head, or its old path for renames
/// and deletions) is forbidden by `patterns`, read as the lines of a
/// `.gitignore` at the repository root (semantics in [`ForbiddenPaths`]).
/// Skipped without patterns; `error` naming a malformed pattern.
pub fn forbidden_paths_gate(facts: &DiffFacts, patterns: &[String]) -> GateResult {
    let t = Instant::now();
    let name = names::FORBIDDEN_PATHS;
    if patterns.is_empty() {
        return gate(name, Verdict::Skipped, "no forbidden paths configured", t);
    }
    let forbidden = match ForbiddenPaths::new(patterns) {
        Ok(f) => f,
        Err(e) => return gate(name, Verdict::Error, &e.to_string(), t),
    };
    let mut hits = Vec::new();
    for f in &facts.files {
        for path in std::iter::once(&f.path).chain(f.old_path.as_ref()) {
            if let Some(pattern) = forbidden.matched(path) {
                hits.push(format!("{path} (matches {pattern:?})"));
            }
        }
    }
    if hits.is_empty() {
        gate(
            name,
            Verdict::Pass,
            &format!(
                "{} files checked against {} patterns",
                facts.files.len(),
                forbidden.len()
            ),
            t,
        )
    } else {
        gate(
            name,
            Verdict::Fail,
            &format!("forbidden paths touched: {}", findings(&hits)),
            t,
        )
    }
}

/// Fail when `cost_usd_micros` exceeds `budget_usd_micros` (both micro-USD);
/// skipped without a budget.
pub fn budget_gate(cost_usd_micros: u64, budget_usd_micros: Option<u64>) -> GateResult {
    let t = Instant::now();
    let usd = |m: u64| format!("${}.{:06}", m / 1_000_000, m % 1_000_000);
    let Some(budget) = budget_usd_micros else {
        return gate(
            names::BUDGET,
            Verdict::Skipped,
            &format!("no budget configured (cost {})", usd(cost_usd_micros)),
            t,
        );
    };
    let detail = format!("cost {} of budget {}", usd(cost_usd_micros), usd(budget));
    let verdict = if cost_usd_micros > budget {
        Verdict::Fail
    } else {
        Verdict::Pass
    };
    gate(names::BUDGET, verdict, &detail, t)
}

/// Whether the cross-model review should run: every deterministic gate passed
/// or was skipped (a `fail` or `error` stops it). Cross-model results in the
/// slice are ignored.
pub fn should_run_cross_review(gates: &[GateResult]) -> bool {
    gates
        .iter()
        .filter(|g| g.layer == GateLayer::Deterministic)
        .all(|g| matches!(g.verdict, Verdict::Pass | Verdict::Skipped))
}
