//! The board: one [`Card`] per dispatch, derived from what the ledger and the
//! dispatch's `live.json` say. Receipts are the truth; `live.json` is a hint
//! used only until a receipt exists.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use vnx_types::{ApprovalDecision, DispatchStatus, LivePhase, LiveStatus, Usage};

/// The board's columns, left to right.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Column {
    /// Waiting in a batch: live phase `queued` and no `dispatch.started` yet.
    Queued,
    /// Started (record or live phase `worker`), no receipt yet.
    Running,
    /// Past the worker (commit, govern, gates, review, receipt), no receipt yet.
    Gating,
    /// Receipt with status `passed`.
    Passed,
    /// Receipt with any other status, or an orphan (its vnx process died
    /// without writing a receipt).
    Failed,
}

impl Column {
    /// The column's name as serialized: `queued`, `running`, …
    pub fn name(self) -> &'static str {
        match self {
            Column::Queued => "queued",
            Column::Running => "running",
            Column::Gating => "gating",
            Column::Passed => "passed",
            Column::Failed => "failed",
        }
    }
}

/// Where a record sits in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordLoc {
    /// Segment file name, e.g. `alice@laptop--main.ndjson`.
    pub segment: String,
    /// 1-based line number in the segment.
    pub line: u64,
    /// The record's seq (0-based position in its segment's chain).
    pub seq: u64,
    /// The record's hash, lowercase hex.
    pub hash: String,
    /// The record's timestamp, RFC 3339 UTC.
    pub ts: String,
    /// The segment file.
    #[serde(skip)]
    pub path: PathBuf,
    /// Byte offset of the line in the segment.
    #[serde(skip)]
    pub offset: u64,
    /// Length of the line in bytes, without its `\n`.
    #[serde(skip)]
    pub len: u64,
}

/// What the board needs from a `dispatch.started` body (tolerant of fields
/// added later).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct StartedLite {
    pub dispatch_id: String,
    #[serde(default)]
    pub skill: Option<String>,
    pub provider: String,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub batch_id: Option<String>,
}

/// What the board needs from a `dispatch.receipt` body.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct ReceiptLite {
    pub dispatch_id: String,
    pub status: DispatchStatus,
    #[serde(default)]
    pub skill: Option<String>,
    pub provider: String,
    #[serde(default)]
    pub model: Option<String>,
    pub usage: Usage,
    pub cost_usd_micros: u64,
    pub duration_ms: u64,
    #[serde(default)]
    pub batch_id: Option<String>,
    #[serde(default)]
    pub approval_required: bool,
}

/// What the board needs from an `approval` body.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub(crate) struct ApprovalLite {
    pub dispatch_id: String,
    pub receipt_hash: String,
    pub decision: ApprovalDecision,
    pub by: String,
    #[serde(default)]
    pub reason: Option<String>,
}

impl ApprovalLite {
    /// The decision as `vnx_ledger::gate` orders decisions, recorded at `loc`.
    pub(crate) fn as_decision(&self, loc: &RecordLoc) -> vnx_ledger::gate::Decision {
        vnx_ledger::gate::Decision {
            decision: self.decision,
            by: self.by.clone(),
            reason: self.reason.clone(),
            ts: loc.ts.clone(),
            receipt_hash: self.receipt_hash.clone(),
            path: loc.path.clone(),
            line: loc.line,
        }
    }
}

/// Everything known about one dispatch.
#[derive(Debug, Clone, Default)]
pub(crate) struct Facts {
    pub started: Option<(StartedLite, RecordLoc)>,
    pub receipt: Option<(ReceiptLite, RecordLoc)>,
    /// The latest approval record, with its location.
    pub approval: Option<(ApprovalLite, RecordLoc)>,
    pub live: Option<LiveStatus>,
    /// Lines in the worker's raw event logs, all attempts.
    pub events: u64,
    /// `type` of the latest worker event.
    pub last_event: Option<String>,
}

impl Facts {
    /// Nothing left to learn from `live.json` or the event logs.
    pub fn settled(&self) -> bool {
        self.receipt.is_some()
            && self
                .live
                .as_ref()
                .is_none_or(|l| l.phase == LivePhase::Done)
    }

    /// Nothing known at all (a run directory without `live.json`, say).
    pub fn is_empty(&self) -> bool {
        self.started.is_none() && self.receipt.is_none() && self.live.is_none()
    }
}

/// One dispatch on the board. Units: ms, tokens, micro-USD.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Card {
    /// Dispatch id.
    pub dispatch_id: String,
    /// Column.
    pub column: Column,
    /// Skill name.
    pub skill: Option<String>,
    /// Provider name.
    pub provider: Option<String>,
    /// Model: as reported in the receipt, else as requested.
    pub model: Option<String>,
    /// Batch id, for dispatches of a `vnx batch`.
    pub batch_id: Option<String>,
    /// The entry's id in the batch file.
    pub batch_entry: Option<String>,
    /// Live phase, when `live.json` exists.
    pub phase: Option<LivePhase>,
    /// Final status: from the receipt, else from `live.json` phase `done`.
    pub status: Option<DispatchStatus>,
    /// Whether a receipt for this dispatch is in the ledger.
    pub has_receipt: bool,
    /// The dispatch's vnx process is gone and no receipt was written.
    pub orphan: bool,
    /// Why a queued dispatch waits.
    pub waiting_for: Option<String>,
    /// When the dispatch started (RFC 3339 UTC), if it did.
    pub started_at: Option<String>,
    /// When the receipt was written (RFC 3339 UTC).
    pub ended_at: Option<String>,
    /// Elapsed ms: the receipt's duration, else the latest live figure.
    pub elapsed_ms: u64,
    /// Tokens, all four counters summed.
    pub tokens: u64,
    /// Cost in micro-USD (estimated while running); `None` when unknown.
    pub cost_usd_micros: Option<u64>,
    /// Worker turns so far (live only).
    pub turns: u64,
    /// The last tool the worker called (live only).
    pub last_tool: Option<String>,
    /// Lines in the worker's raw event logs.
    pub events: u64,
    /// `type` of the latest worker event.
    pub last_event: Option<String>,
    /// Hash of the receipt record.
    pub receipt_hash: Option<String>,
    /// The skill requires a person's approval.
    pub approval_required: bool,
    /// The latest approval decision on this dispatch.
    pub approval: Option<ApprovalDecision>,
}

/// Derives a dispatch's card. `alive(pid)` tells whether a process exists.
pub(crate) fn card(id: &str, f: &Facts, alive: &dyn Fn(u32) -> bool) -> Card {
    let live = f.live.as_ref();
    let started = f.started.as_ref().map(|(s, _)| s);
    let receipt = f.receipt.as_ref().map(|(r, _)| r);
    let mut orphan = false;
    let (column, status) = if let Some(r) = receipt {
        (status_column(r.status), Some(r.status))
    } else {
        match live {
            Some(l) if l.phase == LivePhase::Done => {
                let status = l.status;
                (status.map_or(Column::Failed, status_column), status)
            }
            Some(l) if !alive(l.pid) => {
                orphan = true;
                (Column::Failed, None)
            }
            Some(l) if l.phase.is_gating() => (Column::Gating, None),
            Some(l) if l.phase == LivePhase::Queued && started.is_none() => (Column::Queued, None),
            _ => (Column::Running, None),
        }
    };
    let pick =
        |a: Option<&Option<String>>, b: Option<&Option<String>>, c: Option<&Option<String>>| {
            [a, b, c].into_iter().flatten().flatten().next().cloned()
        };
    let approval = f
        .approval
        .as_ref()
        .filter(|(a, _)| {
            f.receipt
                .as_ref()
                .is_none_or(|(_, loc)| loc.hash == a.receipt_hash)
        })
        .map(|(a, _)| a.decision);
    Card {
        dispatch_id: id.to_owned(),
        column,
        skill: pick(
            receipt.map(|r| &r.skill),
            started.map(|s| &s.skill),
            live.map(|l| Some(l.skill.clone())).as_ref(),
        ),
        provider: receipt
            .map(|r| r.provider.clone())
            .or_else(|| started.map(|s| s.provider.clone()))
            .or_else(|| live.map(|l| l.provider.clone())),
        model: pick(
            receipt.map(|r| &r.model),
            live.map(|l| &l.model),
            started.map(|s| &s.model),
        ),
        batch_id: pick(
            receipt.map(|r| &r.batch_id),
            started.map(|s| &s.batch_id),
            live.map(|l| &l.batch_id),
        ),
        batch_entry: live.and_then(|l| l.batch_entry.clone()),
        phase: live.map(|l| l.phase),
        status,
        has_receipt: receipt.is_some(),
        orphan,
        waiting_for: live
            .filter(|l| l.phase == LivePhase::Queued)
            .and_then(|l| l.waiting_for.clone()),
        started_at: live
            .and_then(|l| l.started_at.clone())
            .or_else(|| f.started.as_ref().map(|(_, loc)| loc.ts.clone())),
        ended_at: f.receipt.as_ref().map(|(_, loc)| loc.ts.clone()),
        elapsed_ms: receipt.map_or_else(|| live.map_or(0, |l| l.elapsed_ms), |r| r.duration_ms),
        tokens: receipt.map_or_else(|| live.map_or(0, |l| l.usage.total()), |r| r.usage.total()),
        cost_usd_micros: receipt
            .map(|r| r.cost_usd_micros)
            .or_else(|| live.and_then(|l| l.cost_usd_micros)),
        turns: live.map_or(0, |l| l.turns),
        last_tool: live.and_then(|l| l.last_tool.clone()),
        events: f.events,
        last_event: f.last_event.clone(),
        receipt_hash: f.receipt.as_ref().map(|(_, loc)| loc.hash.clone()),
        approval_required: receipt.is_some_and(|r| r.approval_required),
        approval,
    }
}

fn status_column(status: DispatchStatus) -> Column {
    if status.is_passed() {
        Column::Passed
    } else {
        Column::Failed
    }
}

/// Whether process `pid` exists (signal 0; `EPERM` means it exists but is
/// someone else's).
pub(crate) fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) | Err(nix::errno::Errno::EPERM) => true,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn loc(hash: &str) -> RecordLoc {
        RecordLoc {
            segment: "w--main.ndjson".into(),
            line: 2,
            seq: 1,
            hash: hash.into(),
            ts: "2026-11-21T10:00:00.000Z".into(),
            path: PathBuf::from("ledger/w--main.ndjson"),
            offset: 0,
            len: 0,
        }
    }

    fn live(phase: LivePhase, pid: u32) -> LiveStatus {
        let mut l = vnx_core::live::new_live_status("d-1", "implement", "claude", None, phase);
        l.pid = pid;
        l
    }

    fn started() -> (StartedLite, RecordLoc) {
        (
            StartedLite {
                dispatch_id: "d-1".into(),
                skill: Some("implement".into()),
                provider: "claude".into(),
                model: None,
                batch_id: None,
            },
            loc("aa"),
        )
    }

    fn receipt(status: DispatchStatus) -> (ReceiptLite, RecordLoc) {
        (
            ReceiptLite {
                dispatch_id: "d-1".into(),
                status,
                skill: Some("implement".into()),
                provider: "claude".into(),
                model: Some("claude-sonnet-5".into()),
                usage: Usage {
                    input_tokens: 10,
                    output_tokens: 5,
                    cache_read_tokens: 0,
                    cache_write_tokens: 1,
                },
                cost_usd_micros: 1234,
                duration_ms: 4000,
                batch_id: None,
                approval_required: false,
            },
            loc("bb"),
        )
    }

    #[test]
    fn columns_follow_the_rules() {
        let yes = |_| true;
        let no = |_| false;
        let mut f = Facts {
            live: Some(live(LivePhase::Queued, 1)),
            ..Facts::default()
        };
        assert_eq!(card("d-1", &f, &yes).column, Column::Queued);
        f.started = Some(started());
        assert_eq!(card("d-1", &f, &yes).column, Column::Running);
        f.live = Some(live(LivePhase::Worker, 1));
        assert_eq!(card("d-1", &f, &yes).column, Column::Running);
        f.live = Some(live(LivePhase::Gates, 1));
        assert_eq!(card("d-1", &f, &yes).column, Column::Gating);
        // The vnx process died and no receipt came: an orphan.
        let c = card("d-1", &f, &no);
        assert_eq!((c.column, c.orphan), (Column::Failed, true));
        // A started record alone (no live.json) is running.
        f.live = None;
        assert_eq!(card("d-1", &f, &no).column, Column::Running);
        // The receipt decides, whatever live.json says.
        f.live = Some(live(LivePhase::Gates, 1));
        f.receipt = Some(receipt(DispatchStatus::Passed));
        let c = card("d-1", &f, &no);
        assert_eq!((c.column, c.orphan), (Column::Passed, false));
        assert_eq!(
            (c.tokens, c.cost_usd_micros, c.elapsed_ms),
            (16, Some(1234), 4000)
        );
        assert_eq!(c.model.as_deref(), Some("claude-sonnet-5"));
        f.receipt = Some(receipt(DispatchStatus::Timeout));
        assert_eq!(card("d-1", &f, &yes).column, Column::Failed);
    }

    #[test]
    fn approval_counts_only_for_the_receipt_it_names() {
        let mut f = Facts {
            receipt: Some(receipt(DispatchStatus::Passed)),
            ..Facts::default()
        };
        let a = ApprovalLite {
            dispatch_id: "d-1".into(),
            receipt_hash: "zz".into(),
            decision: ApprovalDecision::Approved,
            by: "me".into(),
            reason: None,
        };
        f.approval = Some((a.clone(), loc("cc")));
        assert_eq!(card("d-1", &f, &|_| true).approval, None);
        f.approval = Some((
            ApprovalLite {
                receipt_hash: "bb".into(),
                ..a
            },
            loc("cc"),
        ));
        assert_eq!(
            card("d-1", &f, &|_| true).approval,
            Some(ApprovalDecision::Approved)
        );
    }

    #[test]
    fn own_pid_is_alive_and_pid_zero_is_not() {
        assert!(pid_alive(std::process::id()));
        assert!(!pid_alive(0));
        assert!(!pid_alive(u32::MAX));
    }
}
