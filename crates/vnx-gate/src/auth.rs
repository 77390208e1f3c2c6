//! Who vouches for each segment: its `<segment>.sig`, checked against the
//! base's `allowed_signers`; and which receipts and approvals the gate may
//! therefore believe.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;
use vnx_ledger::gate::{
    AddedReceipt, Approvals, BaseLedger, Block, BlockReason, approval_block, count_lines,
    status_word,
};
use vnx_ledger::read::{StoredRecord, read_segment, segment_paths};
use vnx_ledger::record::{KIND_APPROVAL, KIND_DISPATCH_RECEIPT, KIND_DISPATCH_STARTED};
use vnx_ledger::signature::SegmentSignature;
use vnx_types::{ApprovalBody, DispatchStatus, GitFacts};

use crate::error::GateError;
use crate::trust::Trust;

/// What vouches for one segment.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentAuth {
    /// Segment file name.
    pub segment: String,
    /// Records in it now.
    pub records: u64,
    /// Records it had at the base (0: new since the base).
    pub base_records: u64,
    /// Its signature's verdict.
    pub trust: SegmentTrust,
}

/// A segment signature's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SegmentTrust {
    /// An allowed signer vouches for the first `records` records.
    Signed {
        /// The signer's principal in `allowed_signers`.
        principal: String,
        /// The key's `SHA256:…` fingerprint.
        fingerprint: String,
        /// How many records the signature covers.
        records: u64,
    },
    /// There is no `<segment>.sig`.
    Unsigned,
    /// There is one, and it does not hold (the reason says why).
    Invalid {
        /// Why.
        reason: String,
    },
}

/// A receipt the gate may believe: in a vouched-for part of its segment.
#[derive(Debug, Clone)]
pub(crate) struct TrustedReceipt {
    pub record: StoredRecord,
    /// Added since the base.
    pub added: bool,
    pub status: DispatchStatus,
    pub git: Option<GitFacts>,
    pub failed_gates: Vec<String>,
}

/// A receipt the gate may not believe, kept to explain blocks.
#[derive(Debug, Clone)]
pub(crate) struct UntrustedReceipt {
    pub dispatch_id: String,
    pub path: PathBuf,
    pub line: u64,
    pub head: Option<String>,
    pub why: String,
}

/// The ledger as the gate may believe it.
#[derive(Debug)]
pub(crate) struct LedgerAuth {
    pub segments: Vec<SegmentAuth>,
    /// `unauthenticated` blocks: records added since the base that no
    /// allowed signer vouches for.
    pub blocks: Vec<Block>,
    pub receipts: Vec<TrustedReceipt>,
    pub untrusted: Vec<UntrustedReceipt>,
    /// Decisions from signed approvals by allowed approvers only (`by` is
    /// the verified principal).
    pub approvals: Approvals,
    /// Approvals that do not count, by dispatch id: why.
    pub refused_approvals: BTreeMap<String, Vec<String>>,
    /// `dispatch.started` records added since the base, in vouched-for parts.
    started_since_base: Vec<StoredRecord>,
}

/// Authenticates every segment of the ledger at `dir`.
///
/// # Errors
/// [`GateError::Ledger`] when the ledger cannot be read.
pub(crate) fn authenticate(
    dir: &Path,
    base: &BaseLedger,
    trust: &Trust,
    now: i64,
) -> Result<LedgerAuth, GateError> {
    let ledger_id = vnx_ledger::store::read_manifest(dir)?.ledger_id;
    let mut auth = LedgerAuth {
        segments: Vec::new(),
        blocks: Vec::new(),
        receipts: Vec::new(),
        untrusted: Vec::new(),
        approvals: Approvals::default(),
        refused_approvals: BTreeMap::new(),
        started_since_base: Vec::new(),
    };
    let mut believed: Vec<StoredRecord> = Vec::new();
    for path in segment_paths(dir)? {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let lines = read_segment(&path)?;
        let hashes: Vec<String> = lines
            .iter()
            .map(|l| l.as_ref().map(|r| r.hash.clone()).unwrap_or_default())
            .collect();
        let total = lines.len() as u64;
        let base_records = base.segments.get(&name).map_or(0, |b| count_lines(b));
        let verdict = match segment_trust(dir, &name, &ledger_id, &hashes, &trust.signers, now) {
            // Where nobody is trusted, say so with the reason.
            SegmentTrust::Invalid { reason } => SegmentTrust::Invalid {
                reason: format!("{reason}{}", trust.no_signers_hint()),
            },
            other => other,
        };
        let signed = match &verdict {
            SegmentTrust::Signed { records, .. } => *records,
            _ => 0,
        };
        let believed_upto = signed.max(base_records);
        if total > believed_upto {
            auth.blocks.push(unauthenticated_block(
                &path,
                &name,
                believed_upto,
                total,
                &verdict,
                trust,
            ));
        }
        for record in lines.into_iter().flatten() {
            let trusted = record.line <= believed_upto;
            let added = record.line > base_records;
            match record.kind.as_str() {
                KIND_DISPATCH_RECEIPT if trusted => {
                    if let Some(receipt) = trusted_receipt(record.clone(), added) {
                        believed.push(record);
                        auth.receipts.push(receipt);
                    }
                }
                KIND_DISPATCH_RECEIPT => auth.untrusted.push(UntrustedReceipt {
                    dispatch_id: record.body["dispatch_id"]
                        .as_str()
                        .unwrap_or("?")
                        .to_owned(),
                    path: record.path.clone(),
                    line: record.line,
                    head: record.body["git"]["head"].as_str().map(str::to_owned),
                    why: untrusted_why(&name, &verdict, trust),
                }),
                KIND_APPROVAL if trusted => match signed_approval(&record, trust, now) {
                    Ok(record) => believed.push(record),
                    Err(why) => {
                        let id = record.body["dispatch_id"]
                            .as_str()
                            .unwrap_or("?")
                            .to_owned();
                        auth.refused_approvals.entry(id).or_default().push(why);
                    }
                },
                KIND_DISPATCH_STARTED if trusted && added => auth.started_since_base.push(record),
                _ => {}
            }
        }
        auth.segments.push(SegmentAuth {
            segment: name,
            records: total,
            base_records,
            trust: verdict,
        });
    }
    auth.approvals = Approvals::from_records(&believed);
    Ok(auth)
}

/// What vouches for segment `name` of the ledger at `dir` (id `ledger_id`,
/// stored line hashes `hashes`), under `signers` at `now` (unix seconds).
pub fn segment_trust(
    dir: &Path,
    name: &str,
    ledger_id: &str,
    hashes: &[String],
    signers: &vnx_sign::AllowedSigners,
    now: i64,
) -> SegmentTrust {
    let sig = match SegmentSignature::read(dir, name) {
        Ok(Some(sig)) => sig,
        Ok(None) => return SegmentTrust::Unsigned,
        Err(e) => {
            return SegmentTrust::Invalid {
                reason: e.to_string(),
            };
        }
    };
    if let Err(reason) = sig.head.check(ledger_id, name, hashes) {
        return SegmentTrust::Invalid { reason };
    }
    match vnx_sign::verify(
        sig.head.message().as_bytes(),
        &sig.armored,
        vnx_sign::LEDGER_NAMESPACE,
        signers,
        now,
    ) {
        Ok(signer) => SegmentTrust::Signed {
            principal: signer.principal().to_owned(),
            fingerprint: signer.fingerprint,
            records: sig.head.records,
        },
        Err(e) => SegmentTrust::Invalid {
            reason: e.to_string(),
        },
    }
}

fn untrusted_why(name: &str, verdict: &SegmentTrust, trust: &Trust) -> String {
    match verdict {
        SegmentTrust::Unsigned => format!(
            "its segment {name} is not signed{}",
            trust.no_signers_hint()
        ),
        SegmentTrust::Invalid { reason } => {
            format!("its segment {name}'s signature does not hold: {reason}")
        }
        SegmentTrust::Signed {
            principal, records, ..
        } => format!(
            "it lies past the {records} record(s) of {name} that {principal}'s signature covers"
        ),
    }
}

fn unauthenticated_block(
    path: &Path,
    name: &str,
    believed_upto: u64,
    total: u64,
    verdict: &SegmentTrust,
    trust: &Trust,
) -> Block {
    let lines = if believed_upto + 1 == total {
        format!("line {total}")
    } else {
        format!("lines {}–{total}", believed_upto + 1)
    };
    let detail = match verdict {
        SegmentTrust::Unsigned => format!(
            "{lines} of {name} were added since the base, and no signature vouches for them: \
             the segment has no {name}.sig. Whoever wrote them signs with `vnx ledger sign {name}` \
             (a key set up as `vnx doctor` says, listed in {}){}",
            trust.source,
            trust.no_signers_hint()
        ),
        SegmentTrust::Invalid { reason } => format!(
            "{lines} of {name} were added since the base, and its signature does not vouch for them: {reason}"
        ),
        SegmentTrust::Signed {
            principal, records, ..
        } => format!(
            "{lines} of {name} were added after {principal} signed its first {records} record(s): \
             re-sign with `vnx ledger sign {name}`"
        ),
    };
    Block {
        reason: BlockReason::Unauthenticated,
        path: path.to_path_buf(),
        line: believed_upto + 1,
        dispatch_id: None,
        commit: None,
        detail,
    }
}

fn trusted_receipt(record: StoredRecord, added: bool) -> Option<TrustedReceipt> {
    // Schema errors are verification's to report; such a receipt covers nothing.
    let status = serde_json::from_value::<DispatchStatus>(record.body["status"].clone()).ok()?;
    let git = record
        .body
        .get("git")
        .filter(|g| !g.is_null())
        .and_then(|g| serde_json::from_value::<GitFacts>(g.clone()).ok());
    let failed_gates = vnx_ledger::gate::failed_gates(&record.body);
    Some(TrustedReceipt {
        record,
        added,
        status,
        git,
        failed_gates,
    })
}

/// The approval record with `by` set to its verified signer, or why it does
/// not count.
fn signed_approval(record: &StoredRecord, trust: &Trust, now: i64) -> Result<StoredRecord, String> {
    let body: ApprovalBody = serde_json::from_value(record.body.clone()).map_err(|e| {
        format!(
            "the approval at {}:{} is malformed: {e}",
            record.path.display(),
            record.line
        )
    })?;
    let Some(signature) = body.signature.as_deref() else {
        return Err(format!(
            "the {} by {:?} ({}:{}) is not signed: approvals count only when made with `vnx approve` and a signing key",
            decision_word(&record.body),
            body.by,
            record.path.display(),
            record.line
        ));
    };
    let message =
        vnx_ledger::signature::approval_message(&record.body).map_err(|e| e.to_string())?;
    let signer = vnx_sign::verify(
        &message,
        signature,
        vnx_sign::APPROVAL_NAMESPACE,
        &trust.signers,
        now,
    )
    .map_err(|e| {
        format!(
            "the {} by {:?} ({}:{}) does not count: {e}{}",
            decision_word(&record.body),
            body.by,
            record.path.display(),
            record.line,
            trust.no_signers_hint()
        )
    })?;
    if !trust.approver_allowed(&signer) {
        return Err(format!(
            "the {} signed by {} does not count: [merge_gate] approvers at the base lists {}",
            decision_word(&record.body),
            signer.principal(),
            trust.approvers.join(", ")
        ));
    }
    let mut record = record.clone();
    record.body["by"] = Value::String(signer.principal().to_owned());
    Ok(record)
}

fn decision_word(body: &Value) -> &'static str {
    if body["decision"] == "rejected" {
        "rejection"
    } else {
        "approval"
    }
}

impl LedgerAuth {
    /// Receipts added since the base, as the report lists them.
    pub fn added_receipts(&self) -> Vec<AddedReceipt> {
        self.receipts
            .iter()
            .filter(|r| r.added)
            .map(|r| AddedReceipt {
                path: r.record.path.clone(),
                line: r.record.line,
                dispatch_id: r.record.body["dispatch_id"]
                    .as_str()
                    .unwrap_or("?")
                    .to_owned(),
                status: r.status,
                failed_gates: r.failed_gates.clone(),
                approval: self.approvals.state_of(&r.record),
            })
            .collect()
    }

    /// Passed receipts added since the base whose skill requires approval
    /// and whose latest believed decision is missing or a rejection: a
    /// person's sign-off is part of the merge, whether or not the dispatch
    /// changed code.
    pub fn approval_blocks_since_base(&self) -> Vec<Block> {
        self.receipts
            .iter()
            .filter(|r| r.added && r.status.is_passed())
            .filter_map(|r| {
                let id = r.record.body["dispatch_id"].as_str().unwrap_or("?");
                approval_block(&r.record, id, &self.approvals.state_of(&r.record))
                    .map(|block| self.explain_approval(block))
            })
            .collect()
    }

    /// With coverage off: the ledger rules over believed records only — a
    /// receipt added since the base that did not pass, a dispatch started
    /// since without a receipt, a passed one awaiting or refused approval.
    pub fn receipt_blocks_since_base(&self) -> Vec<Block> {
        let mut blocks = Vec::new();
        for r in self.receipts.iter().filter(|r| r.added) {
            let id = r.record.body["dispatch_id"].as_str().unwrap_or("?");
            if !r.status.is_passed() {
                blocks.push(Block {
                    reason: BlockReason::FailedReceipt,
                    path: r.record.path.clone(),
                    line: r.record.line,
                    dispatch_id: Some(id.to_owned()),
                    commit: None,
                    detail: format!(
                        "dispatch {id} ended {}{}",
                        status_word(r.status),
                        gates(&r.failed_gates)
                    ),
                });
            }
        }
        for started in &self.started_since_base {
            let id = started.body["dispatch_id"].as_str().unwrap_or("?");
            if !self
                .receipts
                .iter()
                .any(|r| r.record.body["dispatch_id"] == id)
            {
                blocks.push(Block {
                    reason: BlockReason::Orphan,
                    path: started.path.clone(),
                    line: started.line,
                    dispatch_id: Some(id.to_owned()),
                    commit: None,
                    detail: format!(
                        "dispatch {id} started but has no receipt: vnx was killed mid-dispatch"
                    ),
                });
            }
        }
        blocks
    }

    /// Adds to an approval block why the approvals that exist do not count.
    pub fn explain_approval(&self, mut block: Block) -> Block {
        if let Some(refused) = block
            .dispatch_id
            .as_ref()
            .and_then(|id| self.refused_approvals.get(id))
        {
            block.detail.push_str("; ");
            block.detail.push_str(&refused.join("; "));
        }
        block
    }
}

/// ` (gates: a, b)` or nothing.
pub(crate) fn gates(failed: &[String]) -> String {
    if failed.is_empty() {
        String::new()
    } else {
        format!(" (gates: {})", failed.join(", "))
    }
}
