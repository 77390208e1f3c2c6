//! GOVERN and gates for vnx: the worker's report and the verdicts on its work.
//!
//! - **Report.** [`read_report`] reads the report file, else the JSON in the
//!   worker's final message, bounded in size and validated with `jsonschema`
//!   against the skill's schema (default [`REPORT_SCHEMA`], the repository's
//!   `schemas/report.schema.json`). [`govern_report`] keeps a valid worker report
//!   or replaces it with [`synthesize`]d facts from git, and builds the receipt's
//!   [`vnx_types::ReportInfo`].
//! - **Deterministic gates** ([`gates`]), cheap and run first: worker outcome,
//!   report valid ([`GateMode`]), non-empty change, no placeholders added, tests
//!   with assertions, diff size, forbidden paths, no secrets added, budget, and
//!   configured command gates ([`run_command_gate`]).
//! - **Cross-model review**: [`should_run_cross_review`], [`review_prompt`],
//!   [`parse_verdict`] (strict, per `schemas/verdict.schema.json`) and
//!   [`review_gate`]. A malformed verdict is an `error`, never an approval.
//!
//! Every gate returns a [`vnx_types::GateResult`] whose detail is bounded and has
//! secrets redacted. Nothing here panics on input or prints.
//!
//! Architecture invariant: no async runtime; the only processes this crate
//! spawns are configured command gates (and git, through `vnx-git`).

mod command;
mod extract;
pub mod gates;
mod glob;
mod report;
mod review;
mod secrets;
mod synth;

use serde_json::Value;

pub use command::{CommandGate, DEFAULT_TAIL_BYTES, run_command_gate};
pub use extract::extract_json;
pub use gates::{
    ChangeExpectation, GateMode, budget_gate, diff_size_gate, forbidden_paths_gate,
    no_placeholders_gate, no_secrets_gate, non_empty_change_gate, report_gate,
    should_run_cross_review, tests_have_assertions_gate, worker_outcome_gate,
};
pub use glob::PathGlob;
pub use report::{
    DEFAULT_REPORT_LIMIT_BYTES, GovernedReport, MAX_ERRORS, ReportResult, ReportSource,
    canonical_sha256, compile_schema, govern_report, read_report,
};
pub use review::{
    BlockingIssue, DEFAULT_REVIEW_DIFF_BYTES, ReviewVerdict, parse_verdict, review_gate,
    review_prompt,
};
pub use secrets::{SecretMatch, find_secrets, redact_secrets};
pub use synth::synthesize;

/// The default worker report schema (`schemas/report.schema.json`), embedded.
pub const REPORT_SCHEMA: &str = include_str!("../../../schemas/report.schema.json");

/// The review verdict schema (`schemas/verdict.schema.json`), embedded.
pub const VERDICT_SCHEMA: &str = include_str!("../../../schemas/verdict.schema.json");

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum GovernError {
    /// A JSON Schema that does not compile (a skill's report schema).
    #[error("invalid JSON Schema: {0}")]
    Schema(String),
    /// An embedded schema that is not JSON (a build problem).
    #[error("embedded schema is not JSON: {0}")]
    EmbeddedSchema(String),
    /// A review answer that is not a usable verdict; the gate becomes `error`.
    #[error("{0}")]
    Verdict(String),
}

/// [`REPORT_SCHEMA`] parsed.
///
/// # Errors
/// [`GovernError::EmbeddedSchema`] if the embedded file is not JSON (tested never to happen).
pub fn report_schema() -> Result<Value, GovernError> {
    serde_json::from_str(REPORT_SCHEMA).map_err(|e| GovernError::EmbeddedSchema(e.to_string()))
}

/// [`VERDICT_SCHEMA`] parsed.
///
/// # Errors
/// [`GovernError::EmbeddedSchema`] if the embedded file is not JSON (tested never to happen).
pub fn verdict_schema() -> Result<Value, GovernError> {
    serde_json::from_str(VERDICT_SCHEMA).map_err(|e| GovernError::EmbeddedSchema(e.to_string()))
}
