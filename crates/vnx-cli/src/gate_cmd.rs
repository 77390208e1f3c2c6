//! `vnx gate`: the CI check that blocks a merge on a failed, unapproved or
//! rejected receipt or a broken chain.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use vnx_ledger::gate::{ApprovalState, Block, BlockReason, GateReport, gate};

use crate::Outcome;
use crate::locate::locate_ledger;

/// Output formats of `vnx gate`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    /// Lines for people; text from commits, records and paths escaped onto one line.
    Text,
    /// One JSON document (paths absolute, as the libraries report them).
    Json,
    /// GitHub Actions workflow annotations (`::error file=…,line=…,title=…::…`,
    /// escaped as the runner unescapes them), paths relative to the repository.
    Github,
    /// JUnit XML valid against the Jenkins xUnit plugin's `junit-10.xsd` and
    /// Ant's `JUnit.xsd`, for CI systems that show test reports.
    Junit,
}

/// Arguments of `vnx gate`.
#[derive(Debug, Args)]
pub struct GateArgs {
    /// Ledger directory (default: `[ledger] dir` of vnx.toml, `ledger/` at the repository root).
    #[arg(long, value_name = "DIR")]
    ledger: Option<PathBuf>,
    /// Also require the ledger to be an append-only extension of the ledger at
    /// this git revision, every receipt added since to have passed, and those
    /// whose skill requires approval to be approved (`vnx approve`).
    #[arg(long, value_name = "REV")]
    base: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// Runs `vnx gate`: exit 0 pass, 1 blocked, 2 usage or I/O error.
pub fn run(args: &GateArgs) -> Result<Outcome> {
    let started = std::time::Instant::now();
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let location = locate_ledger(args.ledger.as_deref(), &cwd)?;
    if location.segment.is_some() {
        bail!("--ledger must name the ledger directory for `vnx gate`, not one segment");
    }
    let dir = cwd.join(location.dir);
    if !dir.is_dir() {
        return Err(vnx_ledger::LedgerError::NoLedger { path: dir }.into());
    }
    // Canonical, like git's work tree root, so that every path shown can be
    // made relative to the root whatever `--ledger` was (`../ledger`, `./ledger`).
    let dir = dir
        .canonicalize()
        .with_context(|| format!("cannot resolve the ledger directory {}", dir.display()))?;
    let repo = crate::locate::repo_root(&dir).map(|r| r.canonicalize().unwrap_or(r));
    let root = repo.clone().unwrap_or_else(|| cwd.clone());
    let view = match args.base.as_deref() {
        None => View::ledger_only(gate(&dir, None)?),
        Some(base) => {
            let repo = repo.with_context(|| {
                format!(
                    "--base needs a git repository, and {} is not in one",
                    dir.display()
                )
            })?;
            let now = chrono::Utc::now().timestamp();
            let report = vnx_gate::gate_range(&vnx_gate::GateInputs {
                repo: &repo,
                ledger_dir: &dir,
                base,
                now,
            })?;
            View::range(report)
        }
    };
    let paths = Paths { root };
    let text = match args.format {
        Format::Text => text(&view, &paths, args.base.as_deref()),
        Format::Json => view.json()? + "\n",
        Format::Github => github(&view, &paths),
        Format::Junit => junit(&view, &paths, args.base.as_deref(), &dir, started.elapsed()),
    };
    print!("{text}");
    Ok(if view.ledger.pass {
        Outcome::Ok
    } else {
        Outcome::Problems
    })
}

/// How paths are shown: relative to the repository root (or, outside git,
/// the current directory), as CI systems resolve annotation and report
/// paths against the checkout; a path elsewhere stays absolute.
struct Paths {
    root: PathBuf,
}

impl Paths {
    /// `p` relative to the root, `/`-separated; absolute when outside it.
    fn show(&self, p: &Path) -> String {
        match p.strip_prefix(&self.root) {
            Ok(rel) => rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/"),
            Err(_) => p.display().to_string(),
        }
    }

    /// Whether `p` can be named relative to the root.
    fn inside(&self, p: &Path) -> bool {
        p.strip_prefix(&self.root).is_ok()
    }

    /// A block's detail with the root taken out of the paths it names (the
    /// gate's libraries name files by absolute path).
    fn detail(&self, detail: &str) -> String {
        let root = self.root.display().to_string();
        if root == "/" {
            return detail.to_owned();
        }
        detail.replace(&format!("{root}/"), "")
    }
}

/// What the renderers show: the ledger's verdict and, with `--base`, the
/// range's commits.
struct View {
    ledger: GateReport,
    range: Option<vnx_gate::RangeReport>,
}

impl View {
    fn ledger_only(ledger: GateReport) -> View {
        View {
            ledger,
            range: None,
        }
    }

    fn range(report: vnx_gate::RangeReport) -> View {
        View {
            ledger: report.ledger.clone(),
            range: Some(report),
        }
    }

    fn json(&self) -> Result<String> {
        Ok(match &self.range {
            Some(range) => serde_json::to_string_pretty(range)?,
            None => serde_json::to_string_pretty(&self.ledger)?,
        })
    }
}

fn reason_label(reason: BlockReason) -> &'static str {
    match reason {
        BlockReason::Verification => "ledger does not verify",
        BlockReason::NotAppendOnly => "not append-only",
        BlockReason::FailedReceipt => "failed receipt",
        BlockReason::Orphan => "orphaned dispatch",
        BlockReason::Unapproved => "unapproved",
        BlockReason::Rejected => "rejected",
        BlockReason::Uncovered => "commit not covered",
        BlockReason::Unauthenticated => "unauthenticated",
        BlockReason::Unchecked => "could not be checked",
    }
}

/// The reason as `--format json` names it (`BlockReason`'s serde name).
fn reason_code(reason: BlockReason) -> &'static str {
    match reason {
        BlockReason::Verification => "verification",
        BlockReason::NotAppendOnly => "not_append_only",
        BlockReason::FailedReceipt => "failed_receipt",
        BlockReason::Orphan => "orphan",
        BlockReason::Unapproved => "unapproved",
        BlockReason::Rejected => "rejected",
        BlockReason::Uncovered => "uncovered",
        BlockReason::Unauthenticated => "unauthenticated",
        BlockReason::Unchecked => "unchecked",
    }
}

/// Where a block is, unescaped: `ledger/x.ndjson:3`, `ledger/x.ndjson` (the
/// whole file) or `commit 1a2b3c4d5e6f`.
fn location(b: &Block, paths: &Paths) -> String {
    if let Some(commit) = &b.commit
        && b.path.as_os_str().is_empty()
    {
        return format!("commit {}", commit.get(..12).unwrap_or(commit));
    }
    if b.line == 0 {
        paths.show(&b.path)
    } else {
        format!("{}:{}", paths.show(&b.path), b.line)
    }
}

/// `s` on one line for a terminal or a CI log: control characters (line
/// breaks, carriage returns, ANSI escapes), Unicode line and paragraph
/// separators and bidirectional overrides are written as Rust escapes
/// (`\n`, `\u{1b}`), so that text from a commit, a ledger record or a path
/// can neither start a line of its own (a forged `vnx gate: pass`) nor
/// drive the terminal.
fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let hidden = c.is_control()
            || matches!(
                c,
                '\u{2028}'
                    | '\u{2029}'
                    | '\u{061c}'
                    | '\u{200e}'
                    | '\u{200f}'
                    | '\u{202a}'..='\u{202e}'
                    | '\u{2066}'..='\u{2069}'
            );
        if hidden {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn text(view: &View, paths: &Paths, base: Option<&str>) -> String {
    let report = &view.ledger;
    let mut out = String::new();
    for b in &report.blocks {
        let _ = writeln!(
            out,
            "BLOCK {}: {}: {}",
            one_line(&location(b, paths)),
            reason_label(b.reason),
            one_line(&paths.detail(&b.detail))
        );
    }
    for line in summary(view, paths, base) {
        let _ = writeln!(out, "{}", one_line(&line));
    }
    out
}

/// The closing lines of the text output (and the JUnit report's
/// `system-out`), unescaped: with `--base`, the commits and the trust
/// anchors; then the verdict.
fn summary(view: &View, paths: &Paths, base: Option<&str>) -> Vec<String> {
    let report = &view.ledger;
    let mut lines = Vec::new();
    let passed = report
        .receipts
        .iter()
        .filter(|r| r.status.is_passed())
        .count();
    let awaiting = report
        .receipts
        .iter()
        .filter(|r| r.status.is_passed() && r.approval == ApprovalState::Awaiting)
        .count();
    let awaiting = if awaiting == 0 {
        String::new()
    } else {
        format!(", {awaiting} awaiting approval")
    };
    if let Some(range) = &view.range {
        lines.push(commit_summary(range));
        lines.push(format!("trust: {}", paths.detail(&range.trust)));
    }
    let scope = base.map_or_else(|| "in the ledger".to_owned(), |b| format!("since {b}"));
    lines.push(format!(
        "vnx gate: {} — {} record(s) verified; {} receipt(s) {scope}, {passed} passed{awaiting}",
        if report.pass { "pass" } else { "BLOCKED" },
        report.verify.records(),
        report.receipts.len(),
    ));
    lines
}

/// Escapes a workflow command's message (data) as the Actions runner
/// unescapes it (`ActionCommand.UnescapeData` of actions/runner: `%0D`,
/// `%0A`, then `%25`); a property value also gets `%3A` and `%2C`, since
/// `:` and `,` end a property. `%` goes first so that the runner's
/// `%25` → `%`, applied last, restores exactly what was written.
fn gh_escape(s: &str, property: bool) -> String {
    let mut out = s
        .replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A");
    if property {
        out = out.replace(':', "%3A").replace(',', "%2C");
    }
    out
}

/// GitHub Actions workflow commands: one `::error` per block, on the
/// ledger line it concerns (`file` relative to the repository root, as the
/// runner resolves it against the checkout), then a `::notice` verdict.
fn github(view: &View, paths: &Paths) -> String {
    let report = &view.ledger;
    let mut out = String::new();
    for b in &report.blocks {
        let title = gh_escape(reason_label(b.reason), true);
        let detail = paths.detail(&b.detail);
        if b.path.as_os_str().is_empty() || !paths.inside(&b.path) {
            // No file of the checkout to annotate: say where in the message.
            let _ = writeln!(
                out,
                "::error title={title}::{}",
                gh_escape(&format!("{}: {detail}", location(b, paths)), false)
            );
            continue;
        }
        let line = if b.line == 0 {
            String::new()
        } else {
            format!(",line={}", b.line)
        };
        // `title` last: the runner trims the properties' end, and ours has none.
        let _ = writeln!(
            out,
            "::error file={}{line},title={title}::{}",
            gh_escape(&paths.show(&b.path), true),
            gh_escape(&detail, false)
        );
    }
    let _ = writeln!(
        out,
        "::notice title=vnx gate::{}",
        gh_escape(
            &if !report.pass {
                "blocked: see the errors above".to_owned()
            } else if let Some(range) = &view.range {
                commit_summary(range)
            } else {
                "ledger verified; no failed, unapproved or rejected receipt".to_owned()
            },
            false
        )
    );
    out
}

/// `commits: 5 in the range — 3 covered by receipts, 1 signed, 1 clean merge, 0 ledger-only, 0 blocked`
fn commit_summary(range: &vnx_gate::RangeReport) -> String {
    use vnx_gate::CoveredBy;
    if !range.coverage_required {
        return "commits: coverage is off ([merge_gate] coverage = false at the base): \
                only the ledger was checked"
            .to_owned();
    }
    let count = |f: &dyn Fn(&CoveredBy) -> bool| {
        range
            .commits
            .iter()
            .filter(|c| c.covered_by.as_ref().is_some_and(f))
            .count()
    };
    let receipts = count(&|c| matches!(c, CoveredBy::Receipt { .. }));
    let signed = count(&|c| matches!(c, CoveredBy::Signature { .. }));
    let merges = count(&|c| matches!(c, CoveredBy::CleanMerge));
    let ledger = count(&|c| matches!(c, CoveredBy::LedgerOnly));
    let blocked = range
        .commits
        .iter()
        .filter(|c| c.covered_by.is_none())
        .count();
    format!(
        "commits: {} in {}..{} — {receipts} covered by receipts, {signed} signed, {merges} clean merge(s), \
         {ledger} ledger-only, {blocked} not covered",
        range.commits.len(),
        range.base.get(..12).unwrap_or(&range.base),
        range.head.get(..12).unwrap_or(&range.head),
    )
}

/// Escapes `s` for XML 1.0 character data (`attribute: false`) or a
/// double-quoted attribute value. Line breaks and tabs in attributes become
/// character references, which attribute-value normalization (XML 1.0
/// §3.3.3) keeps, so a message survives whole; CR becomes `&#13;` everywhere
/// because parsers turn a literal one into LF (§2.11). Characters XML 1.0
/// cannot carry at all (C0 controls, U+FFFE, U+FFFF) and those XML 1.1
/// would need as references (DEL, C1) are written as Rust escapes
/// (`\u{1b}`): visible, never dropped.
fn xml_escape(s: &str, attribute: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\r' => out.push_str("&#13;"),
            '\n' if attribute => out.push_str("&#10;"),
            '\t' if attribute => out.push_str("&#9;"),
            '\n' | '\t' => out.push(c),
            c if c.is_control() || matches!(c, '\u{fffe}' | '\u{ffff}') => {
                out.extend(c.escape_default());
            }
            c => out.push(c),
        }
    }
    out
}

/// One JUnit test case: a check of the gate and the blocks that fail it
/// (indices into the report's blocks).
struct Case {
    name: String,
    blocks: Vec<usize>,
}

/// The test cases of the JUnit report: the ledger verifies; with a base,
/// it is append-only and its new records are authenticated; one per receipt
/// added, per commit of the range and per orphan. Every block lands in at
/// least one case (any that no check claims, in a last case of its own),
/// so a blocked gate never reads as a passing report.
fn junit_cases(view: &View, base: Option<&str>) -> Vec<Case> {
    let blocks = &view.ledger.blocks;
    let matching = |f: &dyn Fn(&Block) -> bool| -> Vec<usize> {
        blocks
            .iter()
            .enumerate()
            .filter(|(_, b)| f(b))
            .map(|(i, _)| i)
            .collect()
    };
    let mut cases = vec![Case {
        name: "ledger verifies".to_owned(),
        blocks: matching(&|b| b.reason == BlockReason::Verification),
    }];
    if let Some(base) = base {
        cases.push(Case {
            name: format!("ledger is append-only since {base}"),
            blocks: matching(&|b| b.reason == BlockReason::NotAppendOnly),
        });
    }
    for r in &view.ledger.receipts {
        cases.push(Case {
            name: format!("dispatch {}", r.dispatch_id),
            blocks: matching(&|b| {
                matches!(
                    b.reason,
                    BlockReason::FailedReceipt | BlockReason::Unapproved | BlockReason::Rejected
                ) && b.dispatch_id.as_deref() == Some(&r.dispatch_id)
                    && b.path == r.path
                    && b.line == r.line
            }),
        });
    }
    if let Some(range) = &view.range {
        cases.push(Case {
            name: format!(
                "ledger records since {} are signed by allowed signers",
                base.unwrap_or("the base")
            ),
            blocks: matching(&|b| {
                matches!(
                    b.reason,
                    BlockReason::Unauthenticated | BlockReason::Unchecked
                )
            }),
        });
        for c in &range.commits {
            cases.push(Case {
                name: format!(
                    "commit {} {}",
                    c.commit.get(..12).unwrap_or(&c.commit),
                    c.subject
                ),
                blocks: matching(&|b| b.commit.as_deref() == Some(c.commit.as_str())),
            });
        }
    }
    for (i, b) in blocks.iter().enumerate() {
        if b.reason == BlockReason::Orphan {
            cases.push(Case {
                name: format!(
                    "dispatch {} has a receipt",
                    b.dispatch_id.as_deref().unwrap_or("?")
                ),
                blocks: vec![i],
            });
        }
    }
    let mut placed = vec![false; blocks.len()];
    for i in cases.iter().flat_map(|c| &c.blocks) {
        placed[*i] = true;
    }
    let rest: Vec<usize> = (0..blocks.len()).filter(|&i| !placed[i]).collect();
    if !rest.is_empty() {
        cases.push(Case {
            name: "nothing else blocks".to_owned(),
            blocks: rest,
        });
    }
    cases
}

/// This machine's name for the report's `hostname` (Ant's schema wants one:
/// `localhost` when it cannot be determined).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "localhost".to_owned())
}

/// JUnit XML valid against both the Jenkins xUnit plugin's `junit-10.xsd`
/// and the Ant JUnit schema (windyroad/JUnit-Schema `JUnit.xsd`), the
/// stricter: a `testsuites` root without attributes (Ant declares none),
/// one `testsuite` with every attribute Ant requires, `properties` first
/// and `system-out`, `system-err` last, and per test case at most one
/// `failure` (or `error` when nothing could be checked) with a `type`: the
/// blocks' reasons as `--format json` names them. A failure's `message`
/// and text both hold every block of the case whole, as
/// `location: reason: detail` lines. Test cases are not timed one by one
/// (`time="0"`); the suite's `time` is the whole gate's, in seconds.
fn junit(
    view: &View,
    paths: &Paths,
    base: Option<&str>,
    ledger_dir: &Path,
    elapsed: std::time::Duration,
) -> String {
    let report = &view.ledger;
    let cases = junit_cases(view, base);
    let failed = |c: &Case| !c.blocks.is_empty();
    let errored = |c: &Case| {
        failed(c)
            && c.blocks
                .iter()
                .all(|&i| report.blocks[i].reason == BlockReason::Unchecked)
    };
    let errors = cases.iter().filter(|c| errored(c)).count();
    let failures = cases.iter().filter(|c| failed(c)).count() - errors;
    let ms = elapsed.as_millis();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n");
    let _ = writeln!(
        out,
        "  <testsuite name=\"vnx gate\" package=\"vnx\" id=\"0\" tests=\"{}\" failures=\"{failures}\" \
         errors=\"{errors}\" skipped=\"0\" time=\"{}.{:03}\" timestamp=\"{}\" hostname=\"{}\">",
        cases.len(),
        ms / 1000,
        ms % 1000,
        chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S"),
        xml_escape(&hostname(), true),
    );
    out.push_str("    <properties>\n");
    let mut properties = vec![("ledger", paths.show(ledger_dir))];
    if let Some(range) = &view.range {
        properties.push(("base", range.base.clone()));
        properties.push(("head", range.head.clone()));
        properties.push(("trust", paths.detail(&range.trust)));
    }
    if let Some(base) = base {
        properties.push(("base_rev", base.to_owned()));
    }
    for (name, value) in properties {
        let _ = writeln!(
            out,
            "      <property name=\"{name}\" value=\"{}\"/>",
            xml_escape(&value, true)
        );
    }
    out.push_str("    </properties>\n");
    for case in &cases {
        let name = xml_escape(&case.name, true);
        if case.blocks.is_empty() {
            let _ = writeln!(
                out,
                "    <testcase classname=\"vnx.gate\" name=\"{name}\" time=\"0\"/>"
            );
            continue;
        }
        let blocks: Vec<&Block> = case.blocks.iter().map(|&i| &report.blocks[i]).collect();
        let message = blocks
            .iter()
            .map(|b| {
                format!(
                    "{}: {}: {}",
                    location(b, paths),
                    reason_label(b.reason),
                    paths.detail(&b.detail)
                )
            })
            .collect::<Vec<_>>()
            .join("\n");
        let mut types: Vec<&str> = Vec::new();
        for b in &blocks {
            if !types.contains(&reason_code(b.reason)) {
                types.push(reason_code(b.reason));
            }
        }
        let element = if errored(case) { "error" } else { "failure" };
        let _ = writeln!(
            out,
            "    <testcase classname=\"vnx.gate\" name=\"{name}\" time=\"0\">\n      \
             <{element} type=\"{}\" message=\"{}\">{}</{element}>\n    </testcase>",
            types.join(", "),
            xml_escape(&message, true),
            xml_escape(&message, false),
        );
    }
    let _ = writeln!(
        out,
        "    <system-out>{}</system-out>\n    <system-err></system-err>\n  </testsuite>\n</testsuites>",
        xml_escape(&(summary(view, paths, base).join("\n") + "\n"), false)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::{gh_escape, one_line, xml_escape};

    #[test]
    fn one_line_leaves_no_line_break_and_no_terminal_control() {
        let hostile = "reason\nvnx gate: pass\r\nBLOCK x\u{2028}y\u{1b}[2K\u{202e}z\ttab";
        let shown = one_line(hostile);
        assert_eq!(
            shown,
            "reason\\nvnx gate: pass\\r\\nBLOCK x\\u{2028}y\\u{1b}[2K\\u{202e}z\\ttab"
        );
        assert!(!shown.chars().any(char::is_control), "{shown}");
        assert_eq!(one_line("plain — text é"), "plain — text é");
    }

    #[test]
    fn xml_escaping_keeps_line_breaks_in_attributes_and_shows_what_xml_cannot_carry() {
        let s = "a\"b<c>&d ]]> e\nf\rg\th\u{1}\u{ffff}\u{85}";
        assert_eq!(
            xml_escape(s, true),
            "a&quot;b&lt;c&gt;&amp;d ]]&gt; e&#10;f&#13;g&#9;h\\u{1}\\u{ffff}\\u{85}"
        );
        assert_eq!(
            xml_escape(s, false),
            "a&quot;b&lt;c&gt;&amp;d ]]&gt; e\nf&#13;g\th\\u{1}\\u{ffff}\\u{85}"
        );
    }

    /// The Actions runner's `UnescapeProperty` (`UnescapeData` is the same
    /// without `%3A`, `%2C`): replacements in this order.
    fn runner_unescape(s: &str, property: bool) -> String {
        let mut out = s.replace("%0D", "\r").replace("%0A", "\n");
        if property {
            out = out.replace("%3A", ":").replace("%2C", ",");
        }
        out.replace("%25", "%")
    }

    #[test]
    fn workflow_command_escapes_round_trip_through_the_runner() {
        for s in ["a%0Ab", "%%0D%250A", "x:y,z::w", "line\r\nnext %", "%3A%2C"] {
            for property in [false, true] {
                let escaped = gh_escape(s, property);
                assert_eq!(runner_unescape(&escaped, property), s, "{escaped}");
                assert!(!escaped.contains(['\r', '\n']), "{escaped}");
                if property {
                    assert!(!escaped.contains([':', ',']), "{escaped}");
                }
            }
        }
    }
}
