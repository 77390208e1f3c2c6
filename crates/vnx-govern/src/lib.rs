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
//! Architecture invariant: no async runtime of its own ([`run_command_gate`]
//! is async and runs on the caller's); the only processes this crate starts
//! are configured command gates, through `vnx-exec` with an allow-listed
//! environment (and git, through `vnx-git`).
//!
//! # Example
//!
//! The order the pipeline calls things in. Keep the report file *outside* the
//! worktree: [`vnx_git::commit_all`] stages everything in it.
//!
//! ```no_run
//! use std::path::Path;
//! use vnx_govern::*;
//! use vnx_types::OutcomeClass;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let repo = vnx_git::repo_root(Path::new("."))?;
//! let wt = vnx_git::create(&repo, "d-20261121-ab12cd")?;
//! let report_file = repo.join(".git/vnx/d-20261121-ab12cd.report.json");
//! // … the worker runs in wt.path and ends with `final_text` …
//! # let final_text = "";
//! vnx_git::commit_all(&wt.path, "vnx: dispatch d-20261121-ab12cd")?;
//! let facts = vnx_git::diff_facts(&wt.path, &wt.base, "HEAD", vnx_git::DiffOptions::default())?;
//!
//! let schema = report_schema()?;
//! let read = read_report(Some(&report_file), Some(final_text), &schema, DEFAULT_REPORT_LIMIT_BYTES);
//! let governed = govern_report(&read, Some(&facts)); // governed.info goes in the receipt
//!
//! let mut gates = vec![
//!     worker_outcome_gate(OutcomeClass::Success),
//!     report_gate(&read, GateMode::Shadow),
//!     non_empty_change_gate(&facts, ChangeExpectation::Edits),
//!     no_placeholders_gate(&facts),
//!     tests_have_assertions_gate(&facts, &wt.path),
//!     diff_size_gate(&facts, Some(2000)),
//!     forbidden_paths_gate(&facts, &["ledger/".to_owned(), ".github/workflows/**".to_owned()]),
//!     no_secrets_gate(&facts),
//!     budget_gate(123_456, Some(2_000_000)),
//! ];
//! let cancel = vnx_exec::CancelToken::new(); // the CLI cancels it on Ctrl-C
//! let tests = CommandGate::new(["cargo", "test"], 600_000);
//! let runtime = tokio::runtime::Runtime::new()?;
//! gates.push(runtime.block_on(run_command_gate(&tests, &wt.path, &cancel)));
//! if should_run_cross_review(&gates) {
//!     let prompt = review_prompt("Add a --verbose flag", &facts.diff, &governed.report, DEFAULT_REVIEW_DIFF_BYTES);
//!     // … dispatch `prompt` to another model; `answer` is its final text …
//!     # let answer = prompt;
//!     gates.push(review_gate(&parse_verdict(&answer), None, None));
//! }
//! # Ok(())
//! # }
//! ```

mod command;
mod extract;
pub mod gates;
mod glob;
mod report;
mod review;
mod secrets;
pub mod side_effects;
mod synth;

use serde_json::Value;

pub use command::{CommandGate, DEFAULT_TAIL_BYTES, DEFAULT_TERM_GRACE_MS, run_command_gate};
pub use extract::extract_json;
pub use gates::{
    ChangeExpectation, GateMode, budget_gate, diff_size_gate, forbidden_paths_gate,
    no_placeholders_gate, no_secrets_gate, non_empty_change_gate, report_gate,
    should_run_cross_review, tests_have_assertions_gate, worker_outcome_gate,
};
pub use glob::{ForbiddenPaths, GlobError};
pub use report::{
    DEFAULT_REPORT_LIMIT_BYTES, GovernedReport, MAX_ERRORS, ReportResult, ReportSource,
    canonical_sha256, compile_schema, govern_report, read_report,
};
pub use review::{
    BlockingIssue, DEFAULT_REVIEW_DIFF_BYTES, ReviewVerdict, parse_verdict, review_gate,
    review_prompt,
};
pub use secrets::{SecretMatch, find_secrets, redact_secrets};
pub use side_effects::side_effects_gate;
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
