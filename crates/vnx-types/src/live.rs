//! The live status of one dispatch, for dashboards (`vnx serve`).
//!
//! Not ledger data: the pipeline rewrites `<root>/.vnx/runs/<dispatch-id>/live.json`
//! (write to a temporary file, then rename, so a reader never sees half a
//! file) as the dispatch moves through its phases, and `vnx batch` writes it
//! with phase `queued` for dispatches that wait for a slot. Readers treat it as
//! a hint: the ledger's `dispatch.receipt` is the truth about how a dispatch
//! ended.

use serde::{Deserialize, Serialize};

use crate::{DispatchStatus, Usage};

/// File name of the live status inside a dispatch's run directory.
pub const LIVE_STATUS_FILE: &str = "live.json";

/// Where a dispatch is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LivePhase {
    /// Waiting in a batch for a slot, its dependencies, or a rate-limit reset.
    Queued,
    /// The worker CLI runs.
    Worker,
    /// The worker's changes are committed on the dispatch branch.
    Commit,
    /// The report is read, validated or synthesized.
    Govern,
    /// Deterministic gates run.
    Gates,
    /// The cross-model review runs.
    Review,
    /// The receipt is being appended.
    Receipt,
    /// The receipt is written; the worktree is removed or kept.
    Done,
}

impl LivePhase {
    /// Whether the dispatch is past its worker and being judged (govern,
    /// gates, review): the board's "gating" column.
    pub fn is_gating(self) -> bool {
        matches!(
            self,
            LivePhase::Commit
                | LivePhase::Govern
                | LivePhase::Gates
                | LivePhase::Review
                | LivePhase::Receipt
        )
    }
}

/// Contents of `live.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveStatus {
    /// Dispatch id.
    pub dispatch_id: String,
    /// Batch id, for dispatches of a `vnx batch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<String>,
    /// The entry's id in the batch file, for dispatches of a `vnx batch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_entry: Option<String>,
    /// Skill name.
    pub skill: String,
    /// Provider name.
    pub provider: String,
    /// Requested (later: reported) model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Current phase.
    pub phase: LivePhase,
    /// Why a queued dispatch waits (`slot`, `depends on plan`, `claude rate-limited until …`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<String>,
    /// When the dispatch started (RFC 3339, UTC); absent while queued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// When this file was last written (RFC 3339, UTC).
    pub updated_at: String,
    /// Since the dispatch started, ms.
    pub elapsed_ms: u64,
    /// Worker turns so far.
    pub turns: u64,
    /// Token usage so far.
    pub usage: Usage,
    /// Cost so far, micro-USD (estimated while running); `None` when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd_micros: Option<u64>,
    /// The last tool the worker called.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_tool: Option<String>,
    /// The receipt's status, once phase is `done`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<DispatchStatus>,
    /// Process id of the vnx process running the dispatch: a reader can tell
    /// a dispatch whose vnx died (no process, no receipt) from a running one.
    pub pid: u32,
}
