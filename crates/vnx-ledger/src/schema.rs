//! Which record kinds exist and what their bodies must look like.
//!
//! Bodies are checked by deserializing them into the `vnx-types` structs,
//! which deny unknown fields; `schemas/receipt.schema.json` is generated from
//! the same structs, so the JSON Schema and this check agree by construction.

use serde::de::DeserializeOwned;
use vnx_types::{
    ApprovalBody, DispatchReceipt, DispatchStarted, GenesisBody, NoteBody, RepairBody,
};

use crate::record::{
    EXTENSION_PREFIX, KIND_APPROVAL, KIND_DISPATCH_RECEIPT, KIND_DISPATCH_STARTED, KIND_GENESIS,
    KIND_NOTE, KIND_REPAIR,
};

/// Who may write a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writer {
    /// Anyone, including `vnx ledger append` from stdin.
    Anyone,
    /// Only the ledger library itself (genesis, repair records).
    LibraryOnly,
}

/// What verification needs to remember from a valid body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyInfo {
    /// Nothing beyond validity.
    Plain,
    /// A segment's genesis record.
    Genesis(GenesisBody),
    /// A `dispatch.started` record for this dispatch id.
    Started(String),
    /// A `dispatch.receipt` record for this dispatch id, with its status.
    Receipt(String, vnx_types::DispatchStatus),
}

/// Checks a kind name and its body (canonical JSON text).
///
/// # Errors
/// A message that names the kind and the first schema violation.
pub fn validate_body(kind: &str, body: &str) -> Result<BodyInfo, String> {
    match kind {
        KIND_GENESIS => check::<GenesisBody>(kind, body).map(BodyInfo::Genesis),
        KIND_DISPATCH_STARTED => {
            check::<DispatchStarted>(kind, body).map(|b| BodyInfo::Started(b.dispatch_id))
        }
        KIND_DISPATCH_RECEIPT => {
            check::<DispatchReceipt>(kind, body).map(|b| BodyInfo::Receipt(b.dispatch_id, b.status))
        }
        KIND_REPAIR => check::<RepairBody>(kind, body).map(|_| BodyInfo::Plain),
        KIND_NOTE => check::<NoteBody>(kind, body).map(|_| BodyInfo::Plain),
        KIND_APPROVAL => check::<ApprovalBody>(kind, body).map(|_| BodyInfo::Plain),
        _ if is_extension_kind(kind) => {
            if body.starts_with('{') {
                Ok(BodyInfo::Plain)
            } else {
                Err(format!(
                    "body of extension kind `{kind}` must be a JSON object"
                ))
            }
        }
        _ => Err(format!(
            "unknown kind `{kind}`: known kinds are {KIND_DISPATCH_STARTED}, {KIND_DISPATCH_RECEIPT}, \
             {KIND_NOTE}, {KIND_APPROVAL}, {KIND_REPAIR}, {KIND_GENESIS}; records from other tools use an extension kind \
             `x.<tool>.<name>`"
        )),
    }
}

/// Who may write `kind`.
pub fn writer_of(kind: &str) -> Writer {
    match kind {
        KIND_GENESIS | KIND_REPAIR => Writer::LibraryOnly,
        _ => Writer::Anyone,
    }
}

/// Whether `kind` is an extension kind: `x.` followed by dot-separated
/// lowercase words (`[a-z0-9_-]+`).
pub fn is_extension_kind(kind: &str) -> bool {
    kind.strip_prefix(EXTENSION_PREFIX).is_some_and(|rest| {
        !rest.is_empty()
            && rest.split('.').all(|word| {
                !word.is_empty()
                    && word.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                    })
            })
    })
}

fn check<T: DeserializeOwned>(kind: &str, body: &str) -> Result<T, String> {
    serde_json::from_str::<T>(body).map_err(|e| {
        // serde_json appends "at line 1 column N" of the canonical body, a
        // position the user never saw; the message before it is what helps.
        let message = e.to_string();
        let message = message.split(" at line ").next().unwrap_or(&message);
        format!("body of `{kind}` does not match its schema: {message}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn note_body_is_checked_strictly() {
        assert!(validate_body("note", r#"{"text":"hi"}"#).is_ok());
        assert!(validate_body("note", r#"{"text":"hi","extra":1}"#).is_err());
        assert!(validate_body("note", r"{}").unwrap_err().contains("text"));
    }

    #[test]
    fn extension_kinds_need_an_object_body() {
        assert!(validate_body("x.mytool.receipt", r#"{"anything":[1]}"#).is_ok());
        assert!(validate_body("x.mytool.receipt", "[1]").is_err());
        assert!(!is_extension_kind("x."));
        assert!(!is_extension_kind("x.My"));
        assert!(
            validate_body("dispatch.finished", "{}")
                .unwrap_err()
                .contains("unknown kind")
        );
    }
}
