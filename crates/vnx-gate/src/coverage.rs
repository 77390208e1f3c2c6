//! Commit coverage: for every commit of `base..head`, what vouches for it.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use serde::Serialize;
use vnx_git::{CommitSignature, RangeCommit};
use vnx_ledger::gate::{ApprovalState, Block, BlockReason, approval_block, status_word};

use crate::auth::{LedgerAuth, TrustedReceipt, gates};
use crate::error::GateError;
use crate::trust::Trust;

/// One commit of the range and what covers it.
#[derive(Debug, Clone, Serialize)]
pub struct CommitVerdict {
    /// Full commit id.
    pub commit: String,
    /// `Name <email>` of its author.
    pub author: String,
    /// First line of its message.
    pub subject: String,
    /// What covers it; `None`: it blocks (see the report's blocks).
    pub covered_by: Option<CoveredBy>,
}

/// Why a commit may pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CoveredBy {
    /// A passed receipt in a signed segment names it (`base..head`).
    Receipt {
        /// The dispatch.
        dispatch_id: String,
        /// Where the receipt is.
        path: PathBuf,
        /// Its line.
        line: u64,
    },
    /// It is signed by an allowed signer (`git verify-commit`).
    Signature {
        /// The signer's principal.
        principal: String,
    },
    /// A merge whose tree is exactly git's clean merge of its two parents.
    CleanMerge,
    /// It changes only ledger segments, their signatures or `ledger.json`.
    LedgerOnly,
}

/// The coverage of a range.
#[derive(Debug, Clone, Default)]
pub struct Coverage {
    /// Every commit, newest first.
    pub commits: Vec<CommitVerdict>,
    /// What blocks.
    pub blocks: Vec<Block>,
}

impl Coverage {
    /// Decides every commit of `base..head`.
    ///
    /// # Errors
    /// [`GateError::Git`] when git cannot list the range or check a merge or
    /// a signature.
    pub(crate) fn check(
        repo: &std::path::Path,
        base: &str,
        head: &str,
        ledger_rel: &str,
        ledger: &LedgerAuth,
        trust: &Trust,
    ) -> Result<Coverage, GateError> {
        let commits = vnx_git::range_commits(repo, base, head)?;
        let index: HashMap<&str, usize> = commits
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id.as_str(), i))
            .collect();

        // Which receipts cover which commits of the range.
        let mut covering: Vec<Vec<usize>> = vec![Vec::new(); commits.len()];
        for (r, receipt) in ledger.receipts.iter().enumerate() {
            for c in covered_commits(receipt, &commits, &index) {
                covering[c].push(r);
            }
        }

        let mut out = Coverage::default();
        let mut approval_blocked: HashSet<usize> = HashSet::new();
        let mut signers_file = None;
        for (c, commit) in commits.iter().enumerate() {
            let mut verdict = CommitVerdict {
                commit: commit.id.clone(),
                author: commit.author.clone(),
                subject: commit.subject.clone(),
                covered_by: None,
            };
            // 1. A passed receipt whose approval (if required) holds.
            let passing = covering[c].iter().copied().find(|&r| {
                let receipt = &ledger.receipts[r];
                receipt.status.is_passed()
                    && matches!(
                        ledger.approvals.state_of(&receipt.record),
                        ApprovalState::NotRequired | ApprovalState::Approved(_)
                    )
            });
            if let Some(r) = passing {
                let receipt = &ledger.receipts[r];
                verdict.covered_by = Some(CoveredBy::Receipt {
                    dispatch_id: dispatch_id(receipt).to_owned(),
                    path: receipt.record.path.clone(),
                    line: receipt.record.line,
                });
                out.commits.push(verdict);
                continue;
            }
            // 2. A receipt covers it but does not let it pass.
            if let Some(&r) = covering[c].first() {
                let receipt = &ledger.receipts[r];
                let id = dispatch_id(receipt);
                if receipt.status.is_passed() {
                    // Awaiting or refused approval: one block per receipt
                    // (receipts added since the base get theirs from
                    // `approval_blocks_since_base`).
                    if !receipt.added
                        && approval_blocked.insert(r)
                        && let Some(block) = approval_block(
                            &receipt.record,
                            id,
                            &ledger.approvals.state_of(&receipt.record),
                        )
                    {
                        let mut block = ledger.explain_approval(block);
                        block.commit = Some(commit.id.clone());
                        out.blocks.push(block);
                    }
                } else {
                    out.blocks.push(Block {
                        reason: BlockReason::FailedReceipt,
                        path: receipt.record.path.clone(),
                        line: receipt.record.line,
                        dispatch_id: Some(id.to_owned()),
                        commit: Some(commit.id.clone()),
                        detail: format!(
                            "commit {} ({}, {:?}) is work of dispatch {id}, which ended {}{}: \
                             it may not be merged; run the task again",
                            commit.short(),
                            commit.author,
                            commit.subject,
                            status_word(receipt.status),
                            gates(&receipt.failed_gates)
                        ),
                    });
                }
                out.commits.push(verdict);
                continue;
            }
            // 3. Only the ledger changed: the ledger checks judge it.
            if !commit.is_merge() && is_ledger_only(commit, ledger_rel) {
                verdict.covered_by = Some(CoveredBy::LedgerOnly);
                out.commits.push(verdict);
                continue;
            }
            // 4. A clean merge adds nothing of its own.
            if commit.parents.len() == 2
                && vnx_git::clean_merge_tree(repo, &commit.parents[0], &commit.parents[1])?
                    .is_some_and(|tree| tree == commit.tree)
            {
                verdict.covered_by = Some(CoveredBy::CleanMerge);
                out.commits.push(verdict);
                continue;
            }
            // 5. A person's own signed commit.
            if signers_file.is_none() {
                signers_file = Some(trust.signers_file()?);
            }
            let file = signers_file.as_ref().map(tempfile::NamedTempFile::path);
            let signature = match file {
                Some(file) => vnx_git::verify_commit(repo, &commit.id, file)?,
                None => CommitSignature::Unsigned,
            };
            if let CommitSignature::Good { principal } = &signature {
                verdict.covered_by = Some(CoveredBy::Signature {
                    principal: principal.clone(),
                });
                out.commits.push(verdict);
                continue;
            }
            out.blocks
                .push(uncovered(commit, &signature, ledger, trust));
            out.commits.push(verdict);
        }
        Ok(out)
    }
}

fn dispatch_id(receipt: &TrustedReceipt) -> &str {
    receipt.record.body["dispatch_id"].as_str().unwrap_or("?")
}

/// The commits of the range a receipt covers: reachable from its head and
/// not from its base, and only if its head's tree is the one it names.
fn covered_commits(
    receipt: &TrustedReceipt,
    commits: &[RangeCommit],
    index: &HashMap<&str, usize>,
) -> Vec<usize> {
    let Some(git) = &receipt.git else {
        return Vec::new();
    };
    let Some(&head) = index.get(git.head.as_str()) else {
        return Vec::new();
    };
    if git
        .head_tree
        .as_ref()
        .is_some_and(|tree| *tree != commits[head].tree)
    {
        return Vec::new();
    }
    let excluded = index
        .get(git.base.as_str())
        .map(|&b| ancestors(b, commits, index, &HashSet::new()))
        .unwrap_or_default();
    ancestors(head, commits, index, &excluded)
        .into_iter()
        .collect()
}

/// `start` and its ancestors within the range, not entering `stop`.
fn ancestors(
    start: usize,
    commits: &[RangeCommit],
    index: &HashMap<&str, usize>,
    stop: &HashSet<usize>,
) -> HashSet<usize> {
    let mut seen = HashSet::new();
    let mut todo = vec![start];
    while let Some(c) = todo.pop() {
        if stop.contains(&c) || !seen.insert(c) {
            continue;
        }
        for parent in &commits[c].parents {
            if let Some(&p) = index.get(parent.as_str()) {
                todo.push(p);
            }
        }
    }
    seen
}

/// Whether a non-merge commit changes only ledger records: segments, their
/// signature files and `ledger.json`, directly in the ledger directory —
/// never `allowed_signers`, whose changes need a person's signature.
fn is_ledger_only(commit: &RangeCommit, ledger_rel: &str) -> bool {
    !commit.paths.is_empty()
        && commit.paths.iter().all(|path| {
            let name = if ledger_rel.is_empty() {
                Some(path.as_str())
            } else {
                path.strip_prefix(ledger_rel)
                    .and_then(|p| p.strip_prefix('/'))
            };
            name.is_some_and(|name| {
                !name.contains('/')
                    && (name == vnx_ledger::store::MANIFEST_FILE
                        || vnx_ledger::store::is_segment_name(name)
                        || name
                            .strip_suffix(vnx_ledger::signature::SIGNATURE_SUFFIX)
                            .is_some_and(vnx_ledger::store::is_segment_name))
            })
        })
}

fn uncovered(
    commit: &RangeCommit,
    signature: &CommitSignature,
    ledger: &LedgerAuth,
    trust: &Trust,
) -> Block {
    let mut why = Vec::new();
    if let Some(u) = ledger
        .untrusted
        .iter()
        .find(|u| u.head.as_deref() == Some(commit.id.as_str()))
    {
        why.push(format!(
            "the receipt of dispatch {} ({}:{}) names it, but {}",
            u.dispatch_id,
            u.path.display(),
            u.line,
            u.why
        ));
    } else {
        why.push("no passed receipt in a signed segment covers it".to_owned());
    }
    why.push(match signature {
        CommitSignature::Unsigned => "it is not signed".to_owned(),
        CommitSignature::NotSsh => {
            "it is signed with OpenPGP or X.509, and vnx trusts only SSH signatures checked against allowed_signers".to_owned()
        }
        CommitSignature::Untrusted { detail } => {
            format!("its signature is not by a key {} allows: {detail}", trust.source)
        }
        CommitSignature::Good { .. } => String::new(),
    });
    if commit.is_merge() {
        why.push(
            "it is a merge that changes more than its parents, or merges more than two".to_owned(),
        );
    }
    Block {
        reason: BlockReason::Uncovered,
        path: PathBuf::new(),
        line: 0,
        dispatch_id: None,
        commit: Some(commit.id.clone()),
        detail: format!(
            "commit {} by {} ({:?}): {}. To pass, make the change through `vnx run` (its receipt covers \
             its commits), or sign the commit with a key that {} lists (`git commit -S` with \
             gpg.format=ssh){}",
            commit.short(),
            commit.author,
            commit.subject,
            why.join("; "),
            trust.source,
            trust.no_signers_hint()
        ),
    }
}
