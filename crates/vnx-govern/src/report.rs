//! Reading and validating the worker's report; the report info of the receipt.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};
use vnx_git::DiffFacts;
use vnx_types::{ReportInfo, ReportOrigin};

use crate::extract::extract_json;
use crate::secrets::redact_secrets;
use crate::{GovernError, synthesize};

/// Default largest report accepted, bytes (256 KiB).
pub const DEFAULT_REPORT_LIMIT_BYTES: usize = 256 * 1024;

/// Most validation errors kept per report.
pub const MAX_ERRORS: usize = 20;

/// Longest validation error kept, characters.
const MAX_ERROR_CHARS: usize = 300;

/// Where a worker report was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportSource {
    /// The report file the instruction asked the worker to write.
    File(PathBuf),
    /// The worker's final message.
    FinalMessage,
}

impl fmt::Display for ReportSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReportSource::File(p) => write!(f, "report file {}", p.display()),
            ReportSource::FinalMessage => f.write_str("final message"),
        }
    }
}

/// What [`read_report`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum ReportResult {
    /// A JSON report that validates against the schema.
    Valid {
        /// The report.
        report: Value,
        /// Where it came from.
        source: ReportSource,
    },
    /// A JSON report that does not validate.
    Invalid {
        /// The report as the worker wrote it.
        report: Value,
        /// Where it came from.
        source: ReportSource,
        /// Validation errors, `"<instance path>: <message>"`, at most [`MAX_ERRORS`]
        /// (plus one line saying how many more), secrets redacted.
        errors: Vec<String>,
    },
    /// Something was there but is not usable JSON: too big, not UTF-8, not JSON.
    Rejected {
        /// Where it came from.
        source: ReportSource,
        /// Its size, bytes.
        size_bytes: u64,
        /// Why it was rejected.
        reason: String,
    },
    /// No report file and no final message.
    Missing,
}

impl ReportResult {
    /// Whether the worker's report is usable as is.
    pub fn is_valid(&self) -> bool {
        matches!(self, ReportResult::Valid { .. })
    }

    /// The worker's parsed report, valid or not.
    pub fn worker_report(&self) -> Option<&Value> {
        match self {
            ReportResult::Valid { report, .. } | ReportResult::Invalid { report, .. } => {
                Some(report)
            }
            _ => None,
        }
    }

    /// The problems with the worker's report, for the receipt's `report.errors`:
    /// empty when valid.
    pub fn errors(&self) -> Vec<String> {
        match self {
            ReportResult::Valid { .. } => Vec::new(),
            ReportResult::Invalid { errors, .. } => errors.clone(),
            ReportResult::Rejected {
                source,
                size_bytes,
                reason,
            } => {
                vec![format!("{source} rejected ({size_bytes} bytes): {reason}")]
            }
            ReportResult::Missing => {
                vec!["no report: no report file and no final message".to_owned()]
            }
        }
    }

    /// One line for a gate detail.
    pub fn describe(&self) -> String {
        match self {
            ReportResult::Valid { source, .. } => format!("valid report from the {source}"),
            ReportResult::Invalid { source, errors, .. } => format!(
                "report from the {source} does not match the schema: {}",
                errors.join("; ")
            ),
            ReportResult::Rejected {
                source,
                size_bytes,
                reason,
            } => {
                format!("{source} rejected ({size_bytes} bytes): {reason}")
            }
            ReportResult::Missing => {
                "no report: the worker wrote no report file and no final message".to_owned()
            }
        }
    }
}

/// Compiles a report (or verdict) schema, so a broken skill schema is caught
/// when the skill is loaded rather than blamed on the worker.
///
/// # Errors
/// [`GovernError::Schema`] with jsonschema's message.
pub fn compile_schema(schema: &Value) -> Result<jsonschema::Validator, GovernError> {
    jsonschema::validator_for(schema).map_err(|e| GovernError::Schema(e.to_string()))
}

/// Reads the worker's report: the report file if it exists (it is then
/// authoritative, even when unusable), else JSON in the final message
/// (the whole text, the last fenced block, or the last `{…}` object). Input
/// larger than `limit_bytes` is rejected with its size; JSON is validated
/// against `schema`. Never panics on input.
///
/// A schema that does not compile yields [`ReportResult::Rejected`] naming the
/// schema; check skill schemas with [`compile_schema`] when loading them.
pub fn read_report(
    report_file: Option<&Path>,
    final_text: Option<&str>,
    schema: &Value,
    limit_bytes: usize,
) -> ReportResult {
    let (source, text) = match report_file.map(|p| (p, File::open(p))) {
        Some((path, Ok(file))) => {
            let source = ReportSource::File(path.to_path_buf());
            match read_bounded(file, limit_bytes) {
                Ok(Ok(text)) => (source, text),
                Ok(Err(size_bytes)) => {
                    return too_big(source, size_bytes, limit_bytes);
                }
                Err((size_bytes, reason)) => {
                    return ReportResult::Rejected {
                        source,
                        size_bytes,
                        reason,
                    };
                }
            }
        }
        Some((path, Err(e))) if e.kind() != std::io::ErrorKind::NotFound => {
            return ReportResult::Rejected {
                source: ReportSource::File(path.to_path_buf()),
                size_bytes: 0,
                reason: format!("could not open: {e}"),
            };
        }
        _ => match final_text {
            Some(t) if !t.trim().is_empty() => {
                if t.len() > limit_bytes {
                    return too_big(ReportSource::FinalMessage, t.len() as u64, limit_bytes);
                }
                (ReportSource::FinalMessage, t.to_owned())
            }
            _ => return ReportResult::Missing,
        },
    };
    let size_bytes = text.len() as u64;
    let report = match extract_json(&text) {
        Ok(v) => v,
        Err(reason) => {
            return ReportResult::Rejected {
                source,
                size_bytes,
                reason,
            };
        }
    };
    let validator = match compile_schema(schema) {
        Ok(v) => v,
        Err(e) => {
            return ReportResult::Rejected {
                source,
                size_bytes,
                reason: e.to_string(),
            };
        }
    };
    let errors = validation_errors(&validator, &report);
    if errors.is_empty() {
        ReportResult::Valid { report, source }
    } else {
        ReportResult::Invalid {
            report,
            source,
            errors,
        }
    }
}

fn too_big(source: ReportSource, size_bytes: u64, limit: usize) -> ReportResult {
    ReportResult::Rejected {
        source,
        size_bytes,
        reason: format!("larger than the {limit}-byte limit"),
    }
}

/// Reads at most `limit` bytes. `Ok(Err(size))` when larger; `Err` on I/O or UTF-8 errors.
fn read_bounded(file: File, limit: usize) -> Result<Result<String, u64>, (u64, String)> {
    let size = file.metadata().map_or(0, |m| m.len());
    if size > limit as u64 {
        return Ok(Err(size));
    }
    let mut buf = Vec::new();
    file.take(limit as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| (size, format!("could not read: {e}")))?;
    if buf.len() > limit {
        return Ok(Err(buf.len() as u64));
    }
    let len = buf.len() as u64;
    String::from_utf8(buf).map(Ok).map_err(|e| {
        (
            len,
            format!(
                "not UTF-8 (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

/// Bounded, redacted validation errors: `"<instance path>: <message>"`.
pub(crate) fn validation_errors(
    validator: &jsonschema::Validator,
    instance: &Value,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut more = 0usize;
    for err in validator.iter_errors(instance) {
        if out.len() >= MAX_ERRORS {
            more += 1;
            continue;
        }
        let path = err.instance_path().as_str();
        let path = if path.is_empty() { "/" } else { path };
        let msg = redact_secrets(&err.to_string());
        out.push(bound_chars(&format!("{path}: {msg}"), MAX_ERROR_CHARS));
    }
    if more > 0 {
        out.push(format!("… and {more} more validation errors"));
    }
    out
}

/// `s` cut to at most `max` characters, with an ellipsis when cut.
pub(crate) fn bound_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_owned(),
        Some((i, _)) => format!("{}…", &s[..i]),
    }
}

/// The report a dispatch ends with and its entry in the receipt.
#[derive(Debug, Clone, PartialEq)]
pub struct GovernedReport {
    /// The worker's report when valid, else the synthesized one.
    pub report: Value,
    /// The receipt's `report` field.
    pub info: ReportInfo,
}

/// Chooses the dispatch's report: the worker's when valid; otherwise one
/// synthesized from `facts` (see [`synthesize`]), keeping the worker report's
/// errors in the info. `facts` is `None` outside a git repository; the
/// synthesized report then says that nothing is known about the change.
pub fn govern_report(result: &ReportResult, facts: Option<&DiffFacts>) -> GovernedReport {
    if let ReportResult::Valid { report, .. } = result {
        return GovernedReport {
            info: ReportInfo {
                origin: ReportOrigin::Worker,
                sha256: canonical_sha256(report),
                valid: true,
                errors: Vec::new(),
            },
            report: report.clone(),
        };
    }
    let report = match facts {
        Some(f) => synthesize(f),
        None => crate::synth::synthesize_without_git(),
    };
    GovernedReport {
        info: ReportInfo {
            origin: ReportOrigin::Synthesized,
            sha256: canonical_sha256(&report),
            valid: false,
            errors: result.errors(),
        },
        report,
    }
}

/// SHA-256 of the value's canonical JSON (RFC 8785), lowercase hex.
pub fn canonical_sha256(value: &Value) -> String {
    let text = serde_jcs::to_string(value).unwrap_or_else(|_| value.to_string());
    hex::encode(Sha256::digest(text.as_bytes()))
}
