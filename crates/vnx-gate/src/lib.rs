//! The merge gate, `vnx gate --base B`: does the code of `B..HEAD` carry the
//! proof that it was governed?
//!
//! Every commit in the range needs one of:
//!
//! - a **passed receipt that covers it** — the receipt names its dispatch's
//!   `base`, `head` and head tree, so it covers exactly `git rev-list
//!   base..head` — in a ledger segment signed by an allowed signer (and, when
//!   its skill requires it, an approval signed by an allowed approver);
//! - a **signature of the commit itself** by an allowed signer (a person's
//!   own `git commit -S`, checked by `git verify-commit`);
//! - being a **clean merge**: two parents whose automatic merge (`git
//!   merge-tree`) is exactly the commit's tree, so it adds nothing of its own;
//! - being **ledger-only**: it changes only ledger segments, their signature
//!   files or `ledger.json` (receipt and approval commits), whose content the
//!   ledger checks below judge.
//!
//! And the ledger must verify, extend the base's append-only, and every
//! record added since the base must lie in a prefix of its segment that an
//! allowed signer's signature vouches for ([`vnx_ledger::signature`]).
//!
//! **Trust anchors come from the base**: `ledger/allowed_signers` and
//! `[merge_gate]` of `vnx.toml` are read at `B`, never from the range being
//! checked, so a branch that adds its own key gains nothing until that change
//! has itself been merged under the old file. Anything that cannot be checked
//! blocks ([`BlockReason::Unchecked`]): the gate never passes by default.
//!
//! Git work is a fixed number of processes (`log` of the range, the base's
//! ledger files in one `cat-file --batch`), plus one `merge-tree` per merge
//! and one `verify-commit` per commit that nothing else covers; signatures
//! are verified in-process.

mod auth;
mod coverage;
mod error;
mod trust;

use std::path::{Path, PathBuf};

use serde::Serialize;
use vnx_ledger::gate::{Block, BlockReason, GateReport};

pub use auth::{SegmentAuth, SegmentTrust, segment_trust};
pub use coverage::{CommitVerdict, Coverage, CoveredBy};
pub use error::GateError;
pub use trust::Trust;

pub use vnx_ledger::signature::ALLOWED_SIGNERS_FILE;

/// What to check.
#[derive(Debug, Clone)]
pub struct GateInputs<'a> {
    /// The repository's work tree root, checked out at `HEAD`.
    pub repo: &'a Path,
    /// The ledger directory (inside `repo`).
    pub ledger_dir: &'a Path,
    /// The base revision, e.g. `origin/main`.
    pub base: &'a str,
    /// The time signatures are checked at (`valid-after` / `valid-before`),
    /// unix seconds.
    pub now: i64,
}

/// The verdict of `vnx gate --base`.
#[derive(Debug, Clone, Serialize)]
pub struct RangeReport {
    /// True when nothing blocks.
    pub pass: bool,
    /// The base commit, full id.
    pub base: String,
    /// The head commit, full id.
    pub head: String,
    /// The ledger's verdict, with every block of this gate added to its
    /// `blocks` (commit blocks carry `commit`).
    #[serde(flatten)]
    pub ledger: GateReport,
    /// Whether commit coverage was required (`[merge_gate] coverage` at the base).
    pub coverage_required: bool,
    /// Every commit of the range and what covers it (empty when coverage is off).
    pub commits: Vec<CommitVerdict>,
    /// Every segment and what vouches for it.
    pub segments: Vec<SegmentAuth>,
    /// Where the trust anchors came from, e.g. `ledger/allowed_signers at 1a2b3c4d5e6f`
    /// (and how many keys it lists).
    pub trust: String,
}

/// Runs the merge gate.
///
/// # Errors
/// [`GateError`] when the gate cannot run at all (not a repository, an
/// unknown base, an unreadable ledger). Problems with what is checked are
/// blocks in the report, never errors that could be mistaken for a pass.
pub fn gate_range(inputs: &GateInputs<'_>) -> Result<RangeReport, GateError> {
    let repo = inputs.repo;
    let base = vnx_git::resolve_commit(repo, inputs.base).map_err(|source| GateError::Base {
        rev: inputs.base.to_owned(),
        shallow: is_shallow(repo),
        source,
    })?;
    let head = vnx_git::resolve_commit(repo, "HEAD").map_err(GateError::Git)?;
    let ledger_rel = ledger_rel(repo, inputs.ledger_dir)?;

    let trust = trust::Trust::at_base(repo, &base, &ledger_rel)?;
    let base_ledger = trust::base_ledger(repo, &base, &ledger_rel)?;
    let mut report =
        vnx_ledger::gate::gate(inputs.ledger_dir, Some(&base_ledger)).map_err(GateError::Ledger)?;
    // The ledger gate's receipt rules are replaced below by coverage (or by
    // the same rules over authenticated records only): keep its verification
    // and append-only findings.
    report.blocks.retain(|b| {
        matches!(
            b.reason,
            BlockReason::Verification | BlockReason::NotAppendOnly
        )
    });
    let mut blocks = std::mem::take(&mut report.blocks);
    for problem in &trust.problems {
        blocks.push(unchecked(problem.clone()));
    }

    let ledger = auth::authenticate(inputs.ledger_dir, &base_ledger, &trust, inputs.now)?;
    blocks.extend(ledger.blocks.iter().cloned());

    let commits = if trust.coverage {
        let coverage = coverage::Coverage::check(repo, &base, &head, &ledger_rel, &ledger, &trust)?;
        blocks.extend(coverage.blocks);
        blocks.extend(ledger.approval_blocks_since_base());
        coverage.commits
    } else {
        blocks.extend(ledger.receipt_blocks_since_base());
        Vec::new()
    };
    report.receipts = ledger.added_receipts();
    report.pass = blocks.is_empty();
    report.blocks = blocks;
    Ok(RangeReport {
        pass: report.pass,
        base,
        head,
        ledger: report,
        coverage_required: trust.coverage,
        commits,
        segments: ledger.segments,
        trust: trust.describe(),
    })
}

fn unchecked(detail: String) -> Block {
    Block {
        reason: BlockReason::Unchecked,
        path: PathBuf::new(),
        line: 0,
        dispatch_id: None,
        commit: None,
        detail,
    }
}

fn is_shallow(repo: &Path) -> bool {
    vnx_git::common_dir(repo).is_ok_and(|git| git.join("shallow").exists())
}

/// The ledger directory relative to the repository root, `/`-separated.
fn ledger_rel(repo: &Path, ledger_dir: &Path) -> Result<String, GateError> {
    let outside = || GateError::LedgerOutside {
        ledger: ledger_dir.to_path_buf(),
        repo: repo.to_path_buf(),
    };
    let abs_dir = ledger_dir.canonicalize().map_err(|_| outside())?;
    let abs_root = repo.canonicalize().map_err(|_| outside())?;
    let rel = abs_dir.strip_prefix(&abs_root).map_err(|_| outside())?;
    let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
    Ok(parts.ok_or_else(outside)?.join("/"))
}
