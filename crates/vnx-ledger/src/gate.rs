//! The merge gate: is this ledger an append-only extension of the ledger at a
//! base revision, did every dispatch recorded since then pass, and did a
//! person approve the ones whose skill requires it?
//!
//! The caller (the CLI) fetches the base ledger's files from git; this module
//! compares bytes and reads the records added since. A segment that existed
//! at the base must still start with exactly the bytes it had then: anything
//! else means it was truncated, rewritten or removed.
//!
//! [`Approvals`] answers "what is the approval state of this receipt?" for
//! the gate, `vnx receipts` and the board alike.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;
use vnx_types::{ApprovalBody, ApprovalDecision, DispatchStatus};

use crate::error::LedgerError;
use crate::read::{StoredRecord, read_segment};
use crate::record::{KIND_APPROVAL, KIND_DISPATCH_RECEIPT, KIND_DISPATCH_STARTED};
use crate::store::{MANIFEST_FILE, is_segment_name};
use crate::verify::{Report, Severity, VerifyOptions, verify_paths};

/// The ledger directory's files at the base revision, by file name.
#[derive(Debug, Clone, Default)]
pub struct BaseLedger {
    /// `ledger.json` at the base, if the ledger existed then.
    pub manifest: Option<Vec<u8>>,
    /// Segment file name → its bytes at the base.
    pub segments: BTreeMap<String, Vec<u8>>,
}

/// Why the gate blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockReason {
    /// `verify-ledger` found an error.
    Verification,
    /// A segment that existed at the base was truncated, rewritten or removed,
    /// or the manifest changed.
    NotAppendOnly,
    /// A receipt added since the base has status failed, error, timeout or interrupted.
    FailedReceipt,
    /// A dispatch started since the base has no receipt.
    Orphan,
    /// A passed receipt added since the base requires a person's approval
    /// and has no decision yet.
    Unapproved,
    /// A passed receipt added since the base requires approval, and the
    /// latest decision on it is a rejection.
    Rejected,
    /// A commit in the range that no passed, signed receipt covers, that no
    /// allowed signer signed, and that is not a clean merge of such commits.
    Uncovered,
    /// Records added since the base that no allowed signer's signature
    /// vouches for (an unsigned segment, a bad signature, a key that the
    /// base's `allowed_signers` does not list), or an approval that is not
    /// signed by an allowed approver.
    Unauthenticated,
    /// Something the gate must check could not be checked (the base commit
    /// is missing, `allowed_signers` at the base is malformed): never a pass.
    Unchecked,
}

/// One reason the gate blocks.
#[derive(Debug, Clone, Serialize)]
pub struct Block {
    /// Why.
    pub reason: BlockReason,
    /// The file concerned.
    pub path: PathBuf,
    /// 1-based line (0: the whole file).
    pub line: u64,
    /// Dispatch id, for receipts and orphans.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dispatch_id: Option<String>,
    /// The commit concerned (full id), for coverage blocks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Human-readable detail.
    pub detail: String,
}

/// A receipt added since the base, passed or not.
#[derive(Debug, Clone, Serialize)]
pub struct AddedReceipt {
    /// Segment file.
    pub path: PathBuf,
    /// 1-based line.
    pub line: u64,
    /// Dispatch id.
    pub dispatch_id: String,
    /// Its status.
    pub status: DispatchStatus,
    /// Names of gates that did not pass.
    pub failed_gates: Vec<String>,
    /// Whether it needs a person's approval and, if so, the latest decision.
    pub approval: ApprovalState,
}

/// The gate's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct GateReport {
    /// True when nothing blocks.
    pub pass: bool,
    /// Everything that blocks, in order found.
    pub blocks: Vec<Block>,
    /// Receipts added since the base (all of them when no base was given).
    pub receipts: Vec<AddedReceipt>,
    /// The full verification report.
    pub verify: Report,
}

/// Runs the gate on the ledger at `dir`. With `base`, the ledger must extend
/// it append-only, every dispatch recorded since must have a passed receipt,
/// and every such receipt whose skill requires approval must be approved
/// (by an approval record anywhere in the ledger, added before or after the
/// base). Without `base`, only verification errors block: every receipt is
/// listed with its approval state, since past failures and pending approvals
/// are history, not a merge decision.
///
/// # Errors
/// What prevents checking: a missing ledger, unreadable files.
pub fn gate(dir: &Path, base: Option<&BaseLedger>) -> Result<GateReport, LedgerError> {
    let verify = verify_paths(&[dir.to_path_buf()], &VerifyOptions::default())?;
    let mut blocks: Vec<Block> = verify
        .all_findings()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| Block {
            reason: BlockReason::Verification,
            path: f.path.clone(),
            line: f.line,
            dispatch_id: None,
            commit: None,
            detail: format!("{}: {}", f.reason.label(), f.detail),
        })
        .collect();

    if let Some(base) = base {
        check_append_only(dir, base, &mut blocks)?;
    }

    // Records added since the base: past the base's bytes of each segment.
    // Approvals count from anywhere in the ledger, before or after the base.
    let mut all: Vec<StoredRecord> = Vec::new();
    let mut added: Vec<usize> = Vec::new();
    let mut all_receipts: BTreeSet<String> = BTreeSet::new();
    for path in crate::read::segment_paths(dir)? {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let base_lines = base
            .and_then(|b| b.segments.get(&name))
            .map_or(0, |bytes| count_lines(bytes));
        for record in read_segment(&path)?.into_iter().flatten() {
            if record.kind == KIND_DISPATCH_RECEIPT
                && let Some(id) = record.body.get("dispatch_id").and_then(|v| v.as_str())
            {
                all_receipts.insert(id.to_owned());
            }
            if record.line > base_lines {
                added.push(all.len());
                all.push(record);
            } else if record.kind == KIND_APPROVAL
                || (record.kind == KIND_DISPATCH_RECEIPT && requires_approval(&record.body))
            {
                // Older records matter only for approvals: keep those alone.
                all.push(record);
            }
        }
    }
    let approvals = Approvals::from_records(&all);

    let mut receipts = Vec::new();
    for record in added.iter().map(|&i| &all[i]) {
        let id = record
            .body
            .get("dispatch_id")
            .and_then(|v| v.as_str())
            .unwrap_or("?")
            .to_owned();
        match record.kind.as_str() {
            KIND_DISPATCH_RECEIPT => {
                let Ok(status) =
                    serde_json::from_value::<DispatchStatus>(record.body["status"].clone())
                else {
                    continue; // verification already reported the schema error
                };
                let failed_gates = failed_gates(&record.body);
                if base.is_some() && !status.is_passed() {
                    let gates = if failed_gates.is_empty() {
                        String::new()
                    } else {
                        format!(" (gates: {})", failed_gates.join(", "))
                    };
                    blocks.push(Block {
                        reason: BlockReason::FailedReceipt,
                        path: record.path.clone(),
                        line: record.line,
                        dispatch_id: Some(id.clone()),
                        commit: None,
                        detail: format!("dispatch {id} ended {}{gates}", status_word(status)),
                    });
                }
                let approval = approvals.state_of(record);
                if base.is_some()
                    && status.is_passed()
                    && let Some(block) = approval_block(record, &id, &approval)
                {
                    blocks.push(block);
                }
                receipts.push(AddedReceipt {
                    path: record.path.clone(),
                    line: record.line,
                    dispatch_id: id,
                    status,
                    failed_gates,
                    approval,
                });
            }
            KIND_DISPATCH_STARTED if base.is_some() && !all_receipts.contains(&id) => {
                blocks.push(Block {
                    reason: BlockReason::Orphan,
                    path: record.path.clone(),
                    line: record.line,
                    dispatch_id: Some(id.clone()),
                    commit: None,
                    detail: format!(
                        "dispatch {id} started but has no receipt: vnx was killed mid-dispatch"
                    ),
                });
            }
            _ => {}
        }
    }
    Ok(GateReport {
        pass: blocks.is_empty(),
        blocks,
        receipts,
        verify,
    })
}

/// The block for a passed receipt's approval state, if it blocks.
///
/// `id` is the receipt's dispatch id.
pub fn approval_block(record: &StoredRecord, id: &str, approval: &ApprovalState) -> Option<Block> {
    let skill = record.body["skill"]
        .as_str()
        .map_or_else(String::new, |s| format!(" (skill {s})"));
    let (reason, detail) = match approval {
        ApprovalState::NotRequired | ApprovalState::Approved(_) => return None,
        ApprovalState::Awaiting => (
            BlockReason::Unapproved,
            format!(
                "dispatch {id}{skill} requires a person's approval and has none: \
                 review it, then `vnx approve {id}` (or `vnx approve {id} --reject --reason TEXT`)"
            ),
        ),
        ApprovalState::Rejected(d) => (
            BlockReason::Rejected,
            format!(
                "dispatch {id}{skill} was rejected by {} at {}: {}",
                d.by,
                d.ts,
                d.reason.as_deref().unwrap_or("no reason given")
            ),
        ),
    };
    Some(Block {
        reason,
        path: record.path.clone(),
        line: record.line,
        dispatch_id: Some(id.to_owned()),
        commit: None,
        detail,
    })
}

/// Newlines in `bytes` (records in a segment's bytes). Off the hot path (the gate reads each base once), so
/// the plain loop is fine.
#[allow(clippy::naive_bytecount)]
pub fn count_lines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

/// Names of the gates of a `dispatch.receipt` body that neither passed nor
/// were skipped.
pub fn failed_gates(receipt_body: &Value) -> Vec<String> {
    receipt_body["gates"]
        .as_array()
        .map(|gates| {
            gates
                .iter()
                .filter(|g| g["verdict"] != "pass" && g["verdict"] != "skipped")
                .filter_map(|g| g["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// How a status reads in a sentence: "passed", "failed", "in error", ….
pub fn status_word(status: DispatchStatus) -> &'static str {
    match status {
        DispatchStatus::Passed => "passed",
        DispatchStatus::Failed => "failed",
        DispatchStatus::Error => "in error",
        DispatchStatus::Timeout => "in a timeout",
        DispatchStatus::Interrupted => "interrupted",
    }
}

/// Blocks for every way the ledger at `dir` fails to extend `base`
/// append-only: a changed or removed `ledger.json`, a segment removed,
/// truncated or rewritten.
///
/// # Errors
/// [`LedgerError::Io`] reading a segment.
pub fn check_append_only(
    dir: &Path,
    base: &BaseLedger,
    blocks: &mut Vec<Block>,
) -> Result<(), LedgerError> {
    let mut block = |path: PathBuf, detail: String| {
        blocks.push(Block {
            reason: BlockReason::NotAppendOnly,
            path,
            line: 0,
            dispatch_id: None,
            commit: None,
            detail,
        });
    };
    if let Some(manifest) = &base.manifest {
        let path = dir.join(MANIFEST_FILE);
        match std::fs::read(&path) {
            Ok(now) if &now == manifest => {}
            Ok(_) => block(
                path,
                "ledger.json changed since the base: the ledger id binds every segment".into(),
            ),
            Err(_) => block(path, "ledger.json was removed since the base".into()),
        }
    }
    for (name, then) in &base.segments {
        if !is_segment_name(name) {
            continue;
        }
        let path = dir.join(name);
        let now = match std::fs::read(&path) {
            Ok(now) => now,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                block(
                    path,
                    format!(
                        "segment removed since the base (it had {} bytes)",
                        then.len()
                    ),
                );
                continue;
            }
            Err(source) => {
                return Err(LedgerError::Io {
                    action: "read",
                    path,
                    source,
                });
            }
        };
        if now.len() < then.len() {
            block(
                path,
                format!(
                    "segment truncated since the base: {} bytes, was {}",
                    now.len(),
                    then.len()
                ),
            );
        } else if !now.starts_with(then) {
            let at = now.iter().zip(then).position(|(a, b)| a != b).unwrap_or(0);
            let line = count_lines(&then[..at]) + 1;
            block(
                path,
                format!(
                    "segment rewritten since the base: line {line} differs (byte {at}); a ledger may only grow at its end"
                ),
            );
        }
    }
    Ok(())
}

/// A person's decision on a receipt: an `approval` record, located.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Approved or rejected.
    pub decision: ApprovalDecision,
    /// Who decided (the record's `by`).
    pub by: String,
    /// Why, if given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When: the approval record's timestamp, RFC 3339 UTC.
    pub ts: String,
    /// Hash of the receipt record the decision names.
    pub receipt_hash: String,
    /// Segment file of the approval record.
    pub path: PathBuf,
    /// Its 1-based line.
    pub line: u64,
}

/// Where a receipt stands with respect to human approval.
///
/// Serialized as `{"state":"not_required"}`, `{"state":"awaiting"}`, or
/// `{"state":"approved"|"rejected", …the decision's fields}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ApprovalState {
    /// The receipt's skill does not require approval.
    NotRequired,
    /// Approval is required and nobody has decided yet. (A receipt that
    /// did not pass can be rejected but not approved: see
    /// [`Approvals::awaits_approval`].)
    Awaiting,
    /// The latest decision approves it.
    Approved(Decision),
    /// The latest decision rejects it.
    Rejected(Decision),
}

impl ApprovalState {
    /// The latest decision, if any.
    pub fn decision(&self) -> Option<&Decision> {
        match self {
            ApprovalState::Approved(d) | ApprovalState::Rejected(d) => Some(d),
            ApprovalState::NotRequired | ApprovalState::Awaiting => None,
        }
    }
}

/// Whether a receipt body asks for approval (`approval_required: true`).
pub fn requires_approval(receipt_body: &Value) -> bool {
    receipt_body["approval_required"].as_bool() == Some(true)
}

/// The approval records of a ledger, indexed to answer [`Approvals::state_of`].
///
/// A decision applies to the receipt record whose hash it names, and to every
/// other receipt record of the same dispatch with an identical body: the copy
/// `vnx run` commits on the dispatch branch has its own hash (another segment,
/// another chain) but is the same receipt, so approving the working ledger's
/// copy approves the merged one too. A receipt of the same dispatch with a
/// different body (a re-run) needs its own decision.
///
/// The latest decision wins: within one segment, the later line; across
/// segments, the later timestamp, and on equal timestamps a rejection.
#[derive(Debug, Clone, Default)]
pub struct Approvals {
    /// Dispatch id → its decisions, in reading order.
    decisions: HashMap<String, Vec<Decision>>,
    /// Receipt hash → body, for receipts some decision names.
    named: HashMap<String, Value>,
}

impl Approvals {
    /// Indexes the `approval` records among `records` (any order, any
    /// segments), keeping the bodies of the receipts they name. Approval
    /// records whose body does not match its schema are ignored
    /// (verification reports them).
    pub fn from_records<'a>(records: impl IntoIterator<Item = &'a StoredRecord>) -> Approvals {
        let mut approvals = Approvals::default();
        let mut receipts: HashMap<&str, &Value> = HashMap::new();
        for record in records {
            match record.kind.as_str() {
                KIND_APPROVAL => {
                    let Ok(body) = serde_json::from_value::<ApprovalBody>(record.body.clone())
                    else {
                        continue;
                    };
                    approvals
                        .decisions
                        .entry(body.dispatch_id)
                        .or_default()
                        .push(Decision {
                            decision: body.decision,
                            by: body.by,
                            reason: body.reason,
                            ts: record.ts.clone(),
                            receipt_hash: body.receipt_hash,
                            path: record.path.clone(),
                            line: record.line,
                        });
                }
                KIND_DISPATCH_RECEIPT => {
                    receipts.insert(&record.hash, &record.body);
                }
                _ => {}
            }
        }
        for decision in approvals.decisions.values().flatten() {
            if let Some(body) = receipts.get(decision.receipt_hash.as_str()) {
                approvals
                    .named
                    .insert(decision.receipt_hash.clone(), (*body).clone());
            }
        }
        approvals
    }

    /// Reads every segment of the ledger at `dir` and indexes its approvals.
    ///
    /// # Errors
    /// I/O errors listing or reading the segments.
    pub fn read(dir: &Path) -> Result<Approvals, LedgerError> {
        let mut records = Vec::new();
        for path in crate::read::segment_paths(dir)? {
            records.extend(
                read_segment(&path)?
                    .into_iter()
                    .flatten()
                    .filter(|r| r.kind == KIND_APPROVAL || r.kind == KIND_DISPATCH_RECEIPT),
            );
        }
        Ok(Approvals::from_records(&records))
    }

    /// The approval state of a `dispatch.receipt` record.
    pub fn state_of(&self, receipt: &StoredRecord) -> ApprovalState {
        if !requires_approval(&receipt.body) {
            return ApprovalState::NotRequired;
        }
        let latest = self.latest_for(receipt);
        match latest {
            None => ApprovalState::Awaiting,
            Some(d) if d.decision == ApprovalDecision::Approved => {
                ApprovalState::Approved(d.clone())
            }
            Some(d) => ApprovalState::Rejected(d.clone()),
        }
    }

    /// Whether `receipt` waits for a person: it passed, its skill requires
    /// approval, and nobody has decided yet. What `vnx receipts list
    /// --awaiting-approval` and the board list.
    pub fn awaits_approval(&self, receipt: &StoredRecord) -> bool {
        receipt.body["status"] == "passed" && self.state_of(receipt) == ApprovalState::Awaiting
    }

    /// The latest decision covering `receipt`, whether or not its skill
    /// requires approval.
    pub fn latest_for(&self, receipt: &StoredRecord) -> Option<&Decision> {
        let id = receipt.body["dispatch_id"].as_str()?;
        self.decisions
            .get(id)?
            .iter()
            .filter(|d| {
                d.receipt_hash == receipt.hash
                    || self.named.get(&d.receipt_hash) == Some(&receipt.body)
            })
            .reduce(|latest, d| if d.supersedes(latest) { d } else { latest })
    }
}

impl Decision {
    /// Whether this decision replaces `other` on the same receipt: the later
    /// line of one segment (order within a chain is certain), else the later
    /// timestamp, else the rejection (when in doubt, do not let work
    /// through). The one rule for `vnx gate`, `vnx receipts` and the board.
    pub fn supersedes(&self, other: &Decision) -> bool {
        if self.path == other.path {
            return self.line > other.line;
        }
        match self.ts.cmp(&other.ts) {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Less => false,
            std::cmp::Ordering::Equal => {
                self.decision == ApprovalDecision::Rejected
                    && other.decision == ApprovalDecision::Approved
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;
    use crate::{Clock, Ledger, NewRecord};

    fn ledger(dir: &Path, ts: &str) -> Ledger {
        let t = chrono::DateTime::parse_from_rfc3339(ts).unwrap().into();
        Ledger::open_or_create(dir)
            .unwrap()
            .with_clock(Clock::Fixed(t))
    }

    fn receipt(id: &str, status: &str, approval_required: bool, cost: u64) -> NewRecord {
        let mut body = json!({
            "dispatch_id": id, "status": status, "skill": "release", "provider": "claude", "lane": "headless",
            "billing": "subscription", "outcome": "success",
            "usage": {"input_tokens": 1, "output_tokens": 1, "cache_read_tokens": 0, "cache_write_tokens": 0},
            "cost_usd_micros": cost, "cost_source": "reported", "duration_ms": 5,
            "instruction": {"sha256": "0".repeat(64), "parts": []}, "attempts": [],
            "report": {"origin": "synthesized", "sha256": "1".repeat(64), "valid": false}, "gates": [],
        });
        if approval_required {
            body["approval_required"] = json!(true);
        }
        NewRecord {
            kind: KIND_DISPATCH_RECEIPT.into(),
            body,
        }
    }

    fn decision(id: &str, hash: &str, decision: &str, by: &str, reason: Option<&str>) -> NewRecord {
        let mut body =
            json!({"dispatch_id": id, "receipt_hash": hash, "decision": decision, "by": by});
        if let Some(r) = reason {
            body["reason"] = json!(r);
        }
        NewRecord {
            kind: KIND_APPROVAL.into(),
            body,
        }
    }

    const MAIN: &str = "a@h--main.ndjson";
    const T0: &str = "2026-11-21T10:00:00.000Z";

    fn reasons(report: &GateReport) -> Vec<BlockReason> {
        report.blocks.iter().map(|b| b.reason).collect()
    }

    #[test]
    fn an_approval_required_receipt_blocks_until_its_latest_decision_approves() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ledger");
        let l = ledger(&dir, T0);
        let hash = l
            .append(MAIN, &[receipt("d-1", "passed", true, 5)])
            .unwrap()[0]
            .hash
            .clone();
        let everything_new = BaseLedger::default();

        let report = gate(&dir, Some(&everything_new)).unwrap();
        assert_eq!(reasons(&report), vec![BlockReason::Unapproved]);
        assert!(report.blocks[0].detail.contains("vnx approve d-1"));
        assert_eq!(report.receipts[0].approval, ApprovalState::Awaiting);
        // Without a base nothing is a merge decision: listed, not blocked.
        let report = gate(&dir, None).unwrap();
        assert!(report.pass);
        assert_eq!(report.receipts[0].approval, ApprovalState::Awaiting);

        l.append(
            MAIN,
            &[decision("d-1", &hash, "rejected", "Ann", Some("no tests"))],
        )
        .unwrap();
        let report = gate(&dir, Some(&everything_new)).unwrap();
        assert_eq!(reasons(&report), vec![BlockReason::Rejected]);
        let detail = &report.blocks[0].detail;
        assert!(
            detail.contains("d-1") && detail.contains("Ann") && detail.contains("no tests"),
            "{detail}"
        );

        // A later line of the same segment wins, even with the same timestamp.
        l.append(MAIN, &[decision("d-1", &hash, "approved", "Ann", None)])
            .unwrap();
        let report = gate(&dir, Some(&everything_new)).unwrap();
        assert!(report.pass, "{:?}", report.blocks);
        let ApprovalState::Approved(d) = &report.receipts[0].approval else {
            panic!("{:?}", report.receipts[0].approval)
        };
        assert_eq!((d.by.as_str(), d.line), ("Ann", 4));
    }

    #[test]
    fn an_approval_covers_the_identical_copy_but_not_a_rerun() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ledger");
        let l = ledger(&dir, T0);
        let hash = l
            .append(MAIN, &[receipt("d-1", "passed", true, 5)])
            .unwrap()[0]
            .hash
            .clone();
        l.append(MAIN, &[decision("d-1", &hash, "approved", "Ann", None)])
            .unwrap();
        // The dispatch branch's copy: same body, another chain, another hash.
        let copy = l
            .append("a@h--vnx_d-1.ndjson", &[receipt("d-1", "passed", true, 5)])
            .unwrap();
        assert_ne!(copy[0].hash, hash);
        // The base holds the main segment: only the copy is new.
        let base = BaseLedger {
            manifest: None,
            segments: [(MAIN.to_owned(), std::fs::read(dir.join(MAIN)).unwrap())].into(),
        };
        let report = gate(&dir, Some(&base)).unwrap();
        assert!(report.pass, "{:?}", report.blocks);
        assert_eq!(report.receipts.len(), 1);

        // A re-run under the same id with another body needs its own decision.
        l.append("a@h--vnx_d-1.ndjson", &[receipt("d-1", "passed", true, 9)])
            .unwrap();
        let report = gate(&dir, Some(&base)).unwrap();
        assert_eq!(reasons(&report), vec![BlockReason::Unapproved]);
        // An approval naming another dispatch's receipt covers nothing.
        let approvals = Approvals::read(&dir).unwrap();
        let rerun = read_segment(&dir.join("a@h--vnx_d-1.ndjson"))
            .unwrap()
            .into_iter()
            .flatten()
            .last()
            .unwrap();
        assert_eq!(approvals.latest_for(&rerun), None);
    }

    #[test]
    fn across_segments_the_later_time_wins_and_a_tie_rejects() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ledger");
        let hash = ledger(&dir, T0)
            .append(MAIN, &[receipt("d-1", "passed", true, 5)])
            .unwrap()[0]
            .hash
            .clone();
        let at = |ts| ledger(&dir, ts);
        at("2026-11-21T11:00:00.000Z")
            .append(
                "b@h--main.ndjson",
                &[decision("d-1", &hash, "rejected", "Bo", None)],
            )
            .unwrap();
        at("2026-11-21T12:00:00.000Z")
            .append(
                "c@h--main.ndjson",
                &[decision("d-1", &hash, "approved", "Cy", None)],
            )
            .unwrap();
        let base = BaseLedger::default();
        assert!(gate(&dir, Some(&base)).unwrap().pass);
        at("2026-11-21T12:00:00.000Z")
            .append(
                "a@h--main.ndjson",
                &[decision("d-1", &hash, "rejected", "Al", None)],
            )
            .unwrap();
        let report = gate(&dir, Some(&base)).unwrap();
        assert_eq!(reasons(&report), vec![BlockReason::Rejected]);
        assert!(report.blocks[0].detail.contains("Al"));
    }

    #[test]
    fn a_failed_receipt_blocks_as_failed_only_and_others_need_no_approval() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ledger");
        let l = ledger(&dir, T0);
        l.append(
            MAIN,
            &[
                receipt("d-1", "failed", true, 5),
                receipt("d-2", "passed", false, 5),
            ],
        )
        .unwrap();
        let report = gate(&dir, Some(&BaseLedger::default())).unwrap();
        assert_eq!(reasons(&report), vec![BlockReason::FailedReceipt]);
        assert_eq!(report.receipts[1].approval, ApprovalState::NotRequired);
        let v = serde_json::to_value(&report.receipts[1]).unwrap();
        assert_eq!(v["approval"], json!({"state": "not_required"}));
    }
}
