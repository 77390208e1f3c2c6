//! `vnx gate`: the CI check that blocks a merge on a failed, unapproved or
//! rejected receipt or a broken chain.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use vnx_ledger::gate::{ApprovalState, Block, BlockReason, GateReport, gate};

use crate::Outcome;
use crate::locate::locate_ledger;
use crate::term::escape;

/// Output formats of `vnx gate`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    /// Lines for people.
    Text,
    /// One JSON document.
    Json,
    /// GitHub Actions workflow annotations (`::error file=…,line=…::…`).
    Github,
    /// JUnit XML, for CI systems that show test reports.
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
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let location = locate_ledger(args.ledger.as_deref(), &cwd)?;
    if location.segment.is_some() {
        bail!("--ledger must name the ledger directory for `vnx gate`, not one segment");
    }
    let dir = location.dir;
    if !dir.is_dir() {
        return Err(vnx_ledger::LedgerError::NoLedger { path: dir }.into());
    }
    let root = crate::locate::repo_root(&dir).unwrap_or_else(|| cwd.clone());
    let view = match args.base.as_deref() {
        None => View::ledger_only(gate(&dir, None)?),
        Some(base) => {
            let repo = crate::locate::repo_root(&dir).with_context(|| {
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
    let text = match args.format {
        Format::Text => text(&view, args.base.as_deref()),
        Format::Json => view.json()? + "\n",
        Format::Github => github(&view, &root),
        Format::Junit => junit(&view, args.base.as_deref()),
    };
    print!("{text}");
    Ok(if view.ledger.pass {
        Outcome::Ok
    } else {
        Outcome::Problems
    })
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

fn location(b: &Block) -> String {
    if let Some(commit) = &b.commit
        && b.path.as_os_str().is_empty()
    {
        return format!("commit {}", commit.get(..12).unwrap_or(commit));
    }
    if b.line == 0 {
        b.path.display().to_string()
    } else {
        format!("{}:{}", b.path.display(), b.line)
    }
}

fn text(view: &View, base: Option<&str>) -> String {
    let report = &view.ledger;
    let mut out = String::new();
    for b in &report.blocks {
        let _ = writeln!(
            out,
            "BLOCK {}: {}: {}",
            location(b),
            reason_label(b.reason),
            escape(&b.detail)
        );
    }
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
        let _ = writeln!(out, "{}", commit_summary(range));
        let _ = writeln!(out, "trust: {}", range.trust);
    }
    let scope = base.map_or_else(|| "in the ledger".to_owned(), |b| format!("since {b}"));
    let _ = writeln!(
        out,
        "vnx gate: {} — {} record(s) verified; {} receipt(s) {scope}, {passed} passed{awaiting}",
        if report.pass { "pass" } else { "BLOCKED" },
        report.verify.records(),
        report.receipts.len(),
    );
    out
}

/// GitHub workflow commands escape `%`, `\r` and `\n` in messages and also
/// `:` and `,` in properties.
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

fn github(view: &View, root: &Path) -> String {
    let report = &view.ledger;
    let mut out = String::new();
    for b in &report.blocks {
        if b.path.as_os_str().is_empty() {
            let _ = writeln!(
                out,
                "::error title={}::{}",
                gh_escape(reason_label(b.reason), true),
                gh_escape(&format!("{}: {}", location(b), b.detail), false)
            );
            continue;
        }
        let file = b
            .path
            .strip_prefix(root)
            .unwrap_or(&b.path)
            .display()
            .to_string();
        let line = if b.line == 0 {
            String::new()
        } else {
            format!(",line={}", b.line)
        };
        let _ = writeln!(
            out,
            "::error file={}{line},title={}::{}",
            gh_escape(&file, true),
            gh_escape(reason_label(b.reason), true),
            gh_escape(&b.detail, false)
        );
    }
    let _ = writeln!(
        out,
        "::notice title=vnx gate::{}",
        if !report.pass {
            "blocked: see the errors above".to_owned()
        } else if let Some(range) = &view.range {
            commit_summary(range)
        } else {
            "ledger verified; no failed, unapproved or rejected receipt".to_owned()
        }
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

fn xml_escape(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&apos;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

fn junit(view: &View, base: Option<&str>) -> String {
    let report = &view.ledger;
    let mut cases = Vec::new();
    let of = |reason: BlockReason| report.blocks.iter().filter(move |b| b.reason == reason);
    let failure = |blocks: Vec<&Block>| -> Option<String> {
        (!blocks.is_empty()).then(|| {
            blocks
                .iter()
                .map(|b| format!("{}: {}: {}", location(b), reason_label(b.reason), b.detail))
                .collect::<Vec<_>>()
                .join("\n")
        })
    };
    cases.push((
        "ledger verifies".to_owned(),
        failure(of(BlockReason::Verification).collect()),
    ));
    if let Some(base) = base {
        cases.push((
            format!("ledger is append-only since {base}"),
            failure(of(BlockReason::NotAppendOnly).collect()),
        ));
    }
    for r in &report.receipts {
        let blocks: Vec<&Block> = report
            .blocks
            .iter()
            .filter(|b| {
                matches!(
                    b.reason,
                    BlockReason::FailedReceipt | BlockReason::Unapproved | BlockReason::Rejected
                ) && b.dispatch_id.as_deref() == Some(&r.dispatch_id)
                    && b.path == r.path
                    && b.line == r.line
            })
            .collect();
        cases.push((format!("dispatch {}", r.dispatch_id), failure(blocks)));
    }
    if let Some(range) = &view.range {
        cases.push((
            format!(
                "ledger records since {} are signed by allowed signers",
                base.unwrap_or("the base")
            ),
            failure(
                report
                    .blocks
                    .iter()
                    .filter(|b| {
                        matches!(
                            b.reason,
                            BlockReason::Unauthenticated | BlockReason::Unchecked
                        )
                    })
                    .collect(),
            ),
        ));
        for c in &range.commits {
            let blocks: Vec<&Block> = report
                .blocks
                .iter()
                .filter(|b| b.commit.as_deref() == Some(c.commit.as_str()))
                .collect();
            cases.push((
                format!(
                    "commit {} {}",
                    c.commit.get(..12).unwrap_or(&c.commit),
                    c.subject
                ),
                failure(blocks),
            ));
        }
    }
    for b in of(BlockReason::Orphan) {
        cases.push((
            format!(
                "dispatch {} has a receipt",
                b.dispatch_id.as_deref().unwrap_or("?")
            ),
            Some(b.detail.clone()),
        ));
    }
    let failures = cases.iter().filter(|(_, f)| f.is_some()).count();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"vnx gate\" tests=\"{}\" failures=\"{failures}\">",
        cases.len()
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"vnx gate\" tests=\"{}\" failures=\"{failures}\">",
        cases.len()
    );
    for (name, failure) in &cases {
        match failure {
            None => {
                let _ = writeln!(
                    out,
                    "    <testcase classname=\"vnx.gate\" name=\"{}\"/>",
                    xml_escape(name)
                );
            }
            Some(message) => {
                let _ = writeln!(
                    out,
                    "    <testcase classname=\"vnx.gate\" name=\"{}\">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                    xml_escape(name),
                    xml_escape(message.lines().next().unwrap_or("")),
                    xml_escape(message)
                );
            }
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}
