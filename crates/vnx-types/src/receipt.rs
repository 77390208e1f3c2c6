//! Bodies of the ledger's record kinds. The envelope (`v`, `seq`, `prev`, `ts`,
//! `kind`, `hash`) belongs to `vnx-ledger`; these are what goes in `body`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Billing, CostSource, Lane, OutcomeClass, Usage};

/// Final status of a dispatch, as recorded in its `dispatch.receipt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DispatchStatus {
    /// The worker succeeded and every gate passed (or was skipped).
    Passed,
    /// The worker succeeded but at least one gate failed.
    Failed,
    /// The worker or a gate errored (API error, crash, protocol error).
    Error,
    /// vnx stopped the worker at its timeout.
    Timeout,
    /// The user interrupted the dispatch (Ctrl-C, SIGTERM).
    Interrupted,
}

impl DispatchStatus {
    /// Whether `vnx gate` lets a receipt with this status through.
    pub fn is_passed(self) -> bool {
        matches!(self, DispatchStatus::Passed)
    }
}

/// Body of the first record of every segment, written when the segment file is
/// created. Its `prev` is derived from `ledger_id` and `segment` (see
/// `ledger/FORMAT.md`), which binds the whole chain to one ledger and one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GenesisBody {
    /// The ledger id from the ledger directory's `ledger.json`: 32 lowercase hex chars.
    pub ledger_id: String,
    /// The segment's file name, e.g. `alice@laptop--main.ndjson`.
    pub segment: String,
}

/// Body of a `dispatch.started` record, appended before the worker is spawned so
/// that a dispatch whose vnx process dies still leaves a trace (an orphan).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DispatchStarted {
    /// Dispatch id, unique per dispatch (also the worktree branch suffix).
    pub dispatch_id: String,
    /// Skill name, e.g. `implement`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skill: Option<String>,
    /// Provider name: `claude`, `codex`, `gemini` or a configured `command` provider.
    pub provider: String,
    /// Requested model, if one was chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Lane the worker runs in.
    pub lane: Lane,
    /// Billing mode the dispatch was started under.
    pub billing: Billing,
    /// SHA-256 (lowercase hex) of the full instruction sent to the worker.
    pub instruction_sha256: String,
    /// Batch this dispatch belongs to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<String>,
}

/// Body of a `dispatch.receipt` record: everything a dispatch produced, the
/// record an auditor and `vnx gate` read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DispatchReceipt {
    /// Dispatch id; matches the `dispatch.started` record.
    pub dispatch_id: String,
    /// Final status.
    pub status: DispatchStatus,
    /// Skill name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skill: Option<String>,
    /// Provider name.
    pub provider: String,
    /// Model that actually answered, as the CLI reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Lane the worker ran in.
    pub lane: Lane,
    /// Billing mode.
    pub billing: Billing,
    /// CLI version string as printed by `--version`, e.g. `2.1.330 (Claude Code)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cli_version: Option<String>,
    /// The agent session id (claude `session_id`, codex `thread_id`, gemini `session_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Where the CLI said its credential came from (claude `apiKeySource`:
    /// `none` means the subscription login).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_source: Option<String>,
    /// How the worker run ended.
    pub outcome: OutcomeClass,
    /// Token usage summed over all attempts and the cross-model review.
    pub usage: Usage,
    /// Cost in micro-USD (1 USD = 1 000 000), summed like `usage`.
    pub cost_usd_micros: u64,
    /// Whether the CLI reported the cost or vnx estimated it.
    pub cost_source: CostSource,
    /// Wall time of the whole dispatch, ms.
    pub duration_ms: u64,
    /// Hashes of the instruction and each of its parts.
    pub instruction: InstructionHashes,
    /// Every attempt of the worker, in order (retries included).
    pub attempts: Vec<Attempt>,
    /// The worker's structured report.
    pub report: ReportInfo,
    /// Gate verdicts, deterministic first.
    pub gates: Vec<GateResult>,
    /// Git facts; absent when the dispatch ran outside a git repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitFacts>,
    /// SHA-256 of the raw event log the worker printed (stdout bytes, as saved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_log_sha256: Option<String>,
    /// Batch this dispatch belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<String>,
    /// Hashes of the receipts whose reports this dispatch built on (`depends_on`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub builds_on: Vec<String>,
    /// The skill requires a person's approval (an `approval` record with
    /// decision `approved`) before `vnx gate` lets this receipt through.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub approval_required: bool,
    /// Things an auditor should see that did not change the status, e.g.
    /// `api_key_source is "ANTHROPIC_API_KEY" in subscription mode`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// SHA-256 of the assembled instruction and of each part that went into it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InstructionHashes {
    /// SHA-256 of the full instruction, lowercase hex.
    pub sha256: String,
    /// Each part (`skill`, `permissions`, `intelligence`, `report_contract`, `task`), in order.
    pub parts: Vec<NamedHash>,
}

/// A name and the SHA-256 of the bytes it names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NamedHash {
    /// What was hashed.
    pub name: String,
    /// SHA-256, lowercase hex.
    pub sha256: String,
}

/// One run of the worker CLI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Attempt {
    /// How this attempt ended.
    pub outcome: OutcomeClass,
    /// Session id of this attempt, if the CLI reported one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Wall time, ms.
    pub duration_ms: u64,
    /// Token usage of this attempt.
    pub usage: Usage,
    /// Cost of this attempt, micro-USD.
    pub cost_usd_micros: u64,
    /// Process exit code, if it exited (absent when killed by a signal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    /// Short error text (redacted), when the attempt failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Where the report came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReportOrigin {
    /// Written by the worker and read from the report file or its final message.
    Worker,
    /// Synthesized by vnx from git facts because the worker's was missing or invalid.
    Synthesized,
}

/// The structured report the dispatch ended with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportInfo {
    /// Worker-written or synthesized.
    pub origin: ReportOrigin,
    /// SHA-256 of the report's canonical JSON (RFC 8785), lowercase hex.
    pub sha256: String,
    /// Whether the worker's report validated against the skill's schema
    /// (false when a synthesized report replaced it).
    pub valid: bool,
    /// Validation errors of the worker's report, if any (bounded, redacted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// Which layer a gate belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum GateLayer {
    /// Cheap, deterministic checks run first.
    #[serde(rename = "deterministic")]
    Deterministic,
    /// A review by a different model, only for work that passed the first layer.
    #[serde(rename = "cross-model")]
    CrossModel,
}

/// A gate's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The check passed.
    Pass,
    /// The check ran and found a problem.
    Fail,
    /// The check did not apply or was not run (reason in `detail`).
    Skipped,
    /// The check itself could not run to a verdict.
    Error,
}

/// One gate's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GateResult {
    /// Gate name, e.g. `no-placeholders`, `command:cargo test`, `cross-review`.
    pub name: String,
    /// Layer.
    pub layer: GateLayer,
    /// Verdict.
    pub verdict: Verdict,
    /// Why: the reason for the verdict (bounded, redacted).
    pub detail: String,
    /// Wall time of the gate, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Tokens the gate spent (cross-model review only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// Cost the gate spent, micro-USD (cross-model review only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd_micros: Option<u64>,
}

/// Git facts of a dispatch's worktree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GitFacts {
    /// Commit the worktree started from (40 hex).
    pub base: String,
    /// Commit the dispatch ended at (40 hex); equals `base` when nothing was committed.
    pub head: String,
    /// Tree of `head` (40 hex). With `base` and `head` it names exactly the
    /// commits the receipt covers: `git rev-list base..head`, whose last tree
    /// is this one. Absent in receipts written before vnx recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_tree: Option<String>,
    /// Dispatch branch, e.g. `vnx/d-20261121-ab12cd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Worktree path, relative to the repository root when inside it.
    pub worktree: String,
}

/// Body of a `repair` record, appended by `vnx ledger repair` after it moved a
/// torn tail out of the segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RepairBody {
    /// Byte offset in the segment where the torn bytes started.
    pub offset: u64,
    /// Number of torn bytes moved out.
    pub torn_bytes: u64,
    /// SHA-256 of the torn bytes, lowercase hex.
    pub torn_sha256: String,
    /// File name of the quarantine file that now holds them (beside the segment).
    pub quarantine: String,
}

/// Body of a `note` record: free text an operator adds to the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteBody {
    /// The note.
    pub text: String,
    /// Who wrote it, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
}

/// A person's decision on a dispatch whose skill requires approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalDecision {
    /// The work may count as passed.
    Approved,
    /// The work must not be merged.
    Rejected,
}

/// Body of an `approval` record, appended by `vnx approve`. The record's own
/// timestamp says when; the latest approval record for a dispatch wins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalBody {
    /// The dispatch decided on.
    pub dispatch_id: String,
    /// Hash of the `dispatch.receipt` record decided on (lowercase hex), which
    /// links the decision to exactly that receipt.
    pub receipt_hash: String,
    /// Approved or rejected.
    pub decision: ApprovalDecision,
    /// Who decided: `VNX_APPROVER`, else git's `user.name <user.email>`, else the writer id.
    pub by: String,
    /// Why, in the person's words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The approver's OpenSSH signature (armored SSHSIG, namespace
    /// `vnx-approval`) over the RFC 8785 canonical JSON of this body without
    /// `signature`. The gate accepts a decision only when this verifies
    /// against a key that the base revision's `ledger/allowed_signers`
    /// allows for `vnx-approval`; `by` is then only a display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}
