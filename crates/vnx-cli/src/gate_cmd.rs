//! `vnx gate`: the CI check that blocks a merge on a failed, unapproved or
//! rejected receipt or a broken chain.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use vnx_ledger::gate::{ApprovalState, BaseLedger, Block, BlockReason, GateReport, gate};

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
    let base = args
        .base
        .as_deref()
        .map(|rev| base_ledger(&dir, rev))
        .transpose()?;
    let report = gate(&dir, base.as_ref())?;
    let root = crate::locate::repo_root(&dir).unwrap_or_else(|| cwd.clone());
    let text = match args.format {
        Format::Text => text(&report, args.base.as_deref()),
        Format::Json => serde_json::to_string_pretty(&report)? + "\n",
        Format::Github => github(&report, &root),
        Format::Junit => junit(&report, args.base.as_deref()),
    };
    print!("{text}");
    Ok(if report.pass {
        Outcome::Ok
    } else {
        Outcome::Problems
    })
}

/// Reads the ledger directory's files at `rev` from git.
fn base_ledger(dir: &Path, rev: &str) -> Result<BaseLedger> {
    let root = crate::locate::repo_root(dir).with_context(|| {
        format!(
            "--base needs a git repository, and {} is not in one",
            dir.display()
        )
    })?;
    let abs_dir = dir
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", dir.display()))?;
    let abs_root = root
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", root.display()))?;
    let rel = abs_dir
        .strip_prefix(&abs_root)
        .with_context(|| {
            format!(
                "{} is outside the repository {}",
                dir.display(),
                root.display()
            )
        })?
        .to_string_lossy()
        .into_owned();
    let commit = git(
        &root,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{rev}^{{commit}}"),
        ],
    )
    .ok();
    let Some(commit) = commit.map(|c| String::from_utf8_lossy(&c).trim().to_owned()) else {
        bail!(
            "unknown revision {rev:?}: fetch it first (in GitHub Actions, check out with `fetch-depth: 0`), \
             or pass a commit that exists locally"
        );
    };
    let listing = git(
        &root,
        &[
            "ls-tree",
            "-z",
            "--name-only",
            &commit,
            "--",
            &format!("{rel}/"),
        ],
    )?;
    let mut base = BaseLedger::default();
    for path in listing.split(|&b| b == 0).filter(|p| !p.is_empty()) {
        let path = String::from_utf8_lossy(path).into_owned();
        let name = Path::new(&path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let is_manifest = name == vnx_ledger::store::MANIFEST_FILE;
        if !is_manifest && !vnx_ledger::store::is_segment_name(&name) {
            continue;
        }
        let bytes = git(&root, &["cat-file", "blob", &format!("{commit}:{path}")])?;
        if is_manifest {
            base.manifest = Some(bytes);
        } else {
            base.segments.insert(name, bytes);
        }
    }
    Ok(base)
}

fn git(root: &Path, args: &[&str]) -> Result<Vec<u8>> {
    let out = Command::new("git")
        .args(args)
        .current_dir(root)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .context("cannot run git: is it installed?")?;
    if !out.status.success() {
        bail!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out.stdout)
}

fn reason_label(reason: BlockReason) -> &'static str {
    match reason {
        BlockReason::Verification => "ledger does not verify",
        BlockReason::NotAppendOnly => "not append-only",
        BlockReason::FailedReceipt => "failed receipt",
        BlockReason::Orphan => "orphaned dispatch",
        BlockReason::Unapproved => "unapproved",
        BlockReason::Rejected => "rejected",
    }
}

fn location(b: &Block) -> String {
    if b.line == 0 {
        b.path.display().to_string()
    } else {
        format!("{}:{}", b.path.display(), b.line)
    }
}

fn text(report: &GateReport, base: Option<&str>) -> String {
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

fn github(report: &GateReport, root: &Path) -> String {
    let mut out = String::new();
    for b in &report.blocks {
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
        if report.pass {
            "ledger verified; no failed, unapproved or rejected receipt"
        } else {
            "blocked: see the errors above"
        }
    );
    out
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

fn junit(report: &GateReport, base: Option<&str>) -> String {
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
