//! `vnx approve`: a person's decision on a receipt whose skill requires
//! approval, signed with the key git signs commits with and appended to the
//! committed ledger as an `approval` record (whose segment is signed too).
//! `vnx gate` counts it only when the base's `ledger/allowed_signers` allows
//! that key for the `vnx-approval` namespace.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use vnx_ledger::gate::{Approvals, requires_approval};
use vnx_ledger::read::{StoredRecord, read_segment, segment_paths};
use vnx_ledger::record::{KIND_APPROVAL, KIND_DISPATCH_RECEIPT};
use vnx_ledger::{Ledger, NewRecord};
use vnx_types::{ApprovalBody, ApprovalDecision};

use crate::Outcome;
use crate::admin_cmd::{ReceiptLookup, lookup_receipt};
use crate::locate::{default_segment, locate_ledger, writer_identity};
use crate::term::escape;

/// Arguments of `vnx approve`.
#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// Dispatch id, or a unique prefix of one.
    dispatch: String,
    /// Record a rejection: `vnx gate` then blocks the receipt.
    #[arg(long)]
    reject: bool,
    /// Why, recorded with the decision.
    #[arg(long, value_name = "TEXT")]
    reason: Option<String>,
    /// Ledger directory (default: `[ledger] dir` of vnx.toml, `ledger/` at the repository root).
    #[arg(long, value_name = "DIR")]
    ledger: Option<PathBuf>,
    /// Record the decision even though the receipt's skill does not require
    /// approval (`vnx gate` ignores it then).
    #[arg(long)]
    force: bool,
}

/// Runs `vnx approve`: exit 0 when the decision is recorded, 2 when refused.
pub fn run(args: &ApproveArgs) -> Result<Outcome> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let location = locate_ledger(args.ledger.as_deref(), &cwd)?;
    if location.segment.is_some() {
        bail!(
            "--ledger must name the ledger directory for `vnx approve`, not one segment: \
             the decision goes to this writer's segment"
        );
    }
    let dir = location.dir;
    let ledger = Ledger::open(&dir)?;
    let repo = crate::locate::repo_root(&dir).unwrap_or_else(|| cwd.clone());
    let Some(key) = vnx_core::signing::signing_key(&repo)? else {
        bail!(
            "vnx approve signs the decision, and no signing key is configured: {}",
            vnx_core::signing::KEY_SETUP_HINT
        );
    };
    let mut records = Vec::new();
    for path in segment_paths(&dir)? {
        records.extend(
            read_segment(&path)?
                .into_iter()
                .flatten()
                .filter(|r| r.kind == KIND_DISPATCH_RECEIPT || r.kind == KIND_APPROVAL),
        );
    }
    let approvals = Approvals::from_records(&records);
    let receipts: Vec<&StoredRecord> = records
        .iter()
        .filter(|r| r.kind == KIND_DISPATCH_RECEIPT)
        .collect();
    let receipt = match find_receipt(&receipts, &args.dispatch, &approvals, &dir) {
        Ok(receipt) => receipt,
        Err(e) => {
            let journal = repo.join(vnx_core::pipeline::JOURNAL_DIR);
            if in_journal(&journal, &args.dispatch) {
                bail!(
                    "the receipt of {:?} is only in the local journal ({}): merge its branch \
                     (`git merge vnx/<dispatch-id>`) so that its receipt is in {}, then approve it",
                    escape(&args.dispatch),
                    journal.display(),
                    dir.display()
                );
            }
            return Err(e);
        }
    };
    let id = receipt.body["dispatch_id"].as_str().unwrap_or_default();
    let status = receipt.body["status"].as_str().unwrap_or("unknown");
    let skill = receipt.body["skill"].as_str().unwrap_or("(no skill)");

    if !requires_approval(&receipt.body) && !args.force {
        bail!(
            "dispatch {id} ran skill {skill}, which does not require approval, so `vnx gate` \
             ignores decisions on it. Set `requires_approval: true` in the skill's SKILL.md for \
             future dispatches, or pass --force to record the decision anyway"
        );
    }
    if !args.reject && status != "passed" {
        bail!(
            "dispatch {id} ended {status}: only a passed receipt can be approved. \
             Reject it with `vnx approve {id} --reject --reason TEXT`, or run the task again"
        );
    }
    let decision = if args.reject {
        ApprovalDecision::Rejected
    } else {
        ApprovalDecision::Approved
    };
    let mut body = ApprovalBody {
        dispatch_id: id.to_owned(),
        receipt_hash: receipt.hash.clone(),
        decision,
        by: approver(&cwd),
        reason: args
            .reason
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_owned),
        signature: None,
    };
    vnx_core::signing::sign_approval(&mut body, &key)
        .context("cannot sign the approval (nothing was recorded)")?;
    let segment = default_segment(&cwd);
    let record = NewRecord::new(KIND_APPROVAL, &body)?;
    let appended = ledger.append(&segment, &[record])?;
    let seq = appended.first().map_or(0, |a| a.seq);
    let signed = vnx_core::signing::sign_segment(&dir, ledger.ledger_id(), &segment, &key)
        .with_context(|| {
            format!(
                "the decision is recorded, but its segment was not signed; run `vnx ledger sign {segment}`"
            )
        })?;

    let word = match decision {
        ApprovalDecision::Approved => "approved",
        ApprovalDecision::Rejected => "rejected",
    };
    println!(
        "{word} dispatch {} (skill {}, {status}; receipt {}…) by {}",
        escape(id),
        escape(skill),
        &receipt.hash[..12.min(receipt.hash.len())],
        escape(&body.by)
    );
    if let Some(reason) = &body.reason {
        println!("reason: {}", escape(reason));
    }
    if let Some(before) = approvals.latest_for(receipt) {
        let was = match before.decision {
            ApprovalDecision::Approved => "approval",
            ApprovalDecision::Rejected => "rejection",
        };
        println!(
            "replaces the {was} by {} at {}",
            escape(&before.by),
            before.ts
        );
    }
    println!(
        "recorded: approval seq {seq} in {}, signed by {} ({})",
        ledger.segment_path(&segment).display(),
        key.fingerprint(),
        signed.display()
    );
    if !requires_approval(&receipt.body) {
        println!("note: the skill does not require approval; `vnx gate` ignores this decision");
    }
    println!(
        "next: commit the ledger (`git add {} && git commit`) so that `vnx gate` in CI sees the decision",
        dir.display()
    );
    Ok(Outcome::Ok)
}

/// The receipt of the dispatch `wanted` names ([`lookup_receipt`]), or an
/// error listing what awaits approval.
fn find_receipt<'a>(
    receipts: &[&'a StoredRecord],
    wanted: &str,
    approvals: &Approvals,
    dir: &std::path::Path,
) -> Result<&'a StoredRecord> {
    match lookup_receipt(receipts.iter().copied(), wanted) {
        ReceiptLookup::Found(r) => Ok(r),
        ReceiptLookup::Ambiguous(ids) => bail!(
            "{:?} matches {} dispatches ({}); give more of the id",
            escape(wanted),
            ids.len(),
            ids.join(", ")
        ),
        ReceiptLookup::Missing => {
            let mut awaiting: Vec<&str> = receipts
                .iter()
                .filter(|r| approvals.awaits_approval(r))
                .filter_map(|r| r.body["dispatch_id"].as_str())
                .collect();
            awaiting.sort_unstable();
            awaiting.dedup();
            let hint = if awaiting.is_empty() {
                "no dispatch awaits approval".to_owned()
            } else {
                format!("awaiting approval: {}", awaiting.join(", "))
            };
            bail!(
                "no receipt for dispatch {:?} in {} ({hint}); `vnx receipts list` shows every dispatch",
                escape(wanted),
                dir.display()
            )
        }
    }
}

/// Whether the journal at `dir` holds a receipt for a dispatch id or prefix.
fn in_journal(dir: &std::path::Path, wanted: &str) -> bool {
    let Ok(paths) = segment_paths(dir) else {
        return false;
    };
    paths.iter().any(|p| {
        read_segment(p).is_ok_and(|lines| {
            lines.into_iter().flatten().any(|r| {
                r.kind == KIND_DISPATCH_RECEIPT
                    && r.body["dispatch_id"]
                        .as_str()
                        .is_some_and(|id| id.starts_with(wanted))
            })
        })
    })
}

/// The display name of who decides (the gate shows the signer's principal
/// from `allowed_signers` instead): `$VNX_APPROVER`, else the committer
/// identity git would use here (`GIT_COMMITTER_*`, then `committer.*` /
/// `user.*` config: [`vnx_git::identity`]) as `name <email>`, else the
/// writer id.
fn approver(cwd: &std::path::Path) -> String {
    let given = std::env::var("VNX_APPROVER")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());
    if let Some(by) = given {
        return by;
    }
    match vnx_git::identity(cwd) {
        Ok(id)
            if id.committer_name != vnx_git::FALLBACK_NAME
                || id.committer_email != vnx_git::FALLBACK_EMAIL =>
        {
            format!("{} <{}>", id.committer_name, id.committer_email)
        }
        _ => writer_identity(),
    }
}
