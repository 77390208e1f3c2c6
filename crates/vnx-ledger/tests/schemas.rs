//! The JSON Schemas of the record bodies in `schemas/` are generated from the
//! `vnx-types` structs the ledger validates with, each with its `$id`
//! (`urn:vnx:ledger:v1:body:<kind>`, the version being the ledger format's).
//! This test fails when a committed schema is stale (run with
//! `VNX_UPDATE_SCHEMAS=1` to regenerate) or when FORMAT.md does not name a
//! schema by its `$id`, and checks that the schema and the types accept and
//! refuse the same example documents.

// Helpers outside #[test] functions may panic on setup failures.
#![allow(clippy::unwrap_used, clippy::format_collect)]

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_json::Value;
use vnx_types::{DispatchReceipt, DispatchStarted};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every body schema: file in `schemas/`, record kind, generated schema.
fn body_schemas() -> Vec<(&'static str, &'static str, schemars::Schema)> {
    use vnx_types::{ApprovalBody, GenesisBody, NoteBody, RepairBody};
    vec![
        (
            "genesis.schema.json",
            "segment.genesis",
            schemars::schema_for!(GenesisBody),
        ),
        (
            "dispatch-started.schema.json",
            "dispatch.started",
            schemars::schema_for!(DispatchStarted),
        ),
        (
            "receipt.schema.json",
            "dispatch.receipt",
            schemars::schema_for!(DispatchReceipt),
        ),
        (
            "repair.schema.json",
            "repair",
            schemars::schema_for!(RepairBody),
        ),
        ("note.schema.json", "note", schemars::schema_for!(NoteBody)),
        (
            "approval.schema.json",
            "approval",
            schemars::schema_for!(ApprovalBody),
        ),
    ]
}

/// The `$id` of a kind's body schema: a name, not a location, so it stays
/// the same wherever the files are published.
fn schema_id(kind: &str) -> String {
    format!("urn:vnx:ledger:v1:body:{kind}")
}

fn check_generated(file: &str, kind: &str, mut schema: schemars::Schema) {
    schema.insert("$id".into(), Value::String(schema_id(kind)));
    let path = root().join("schemas").join(file);
    let mut text = serde_json::to_string_pretty(&schema).unwrap();
    text.push('\n');
    if std::env::var_os("VNX_UPDATE_SCHEMAS").is_some() {
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == text,
        "{} is stale: the types changed. Run `VNX_UPDATE_SCHEMAS=1 cargo test -p vnx-ledger --test schemas` and commit it",
        path.display()
    );
}

#[test]
fn committed_schemas_match_the_types() {
    for (file, kind, schema) in body_schemas() {
        check_generated(file, kind, schema);
    }
}

#[test]
fn the_format_names_every_body_schema_by_its_id() {
    let format = std::fs::read_to_string(root().join("ledger/FORMAT.md")).unwrap();
    for (file, kind, _) in body_schemas() {
        let id = schema_id(kind);
        assert!(
            format.contains(&format!("`{id}`")),
            "ledger/FORMAT.md does not reference {file} by its $id {id}"
        );
    }
}

fn agree<T: DeserializeOwned>(schema_file: &str, examples: &str, kind: &str) {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("schemas").join(schema_file)).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let dir = root().join("schemas/examples").join(examples);
    let mut seen = (0, 0);
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let by_schema = validator.is_valid(&doc);
        let by_types = serde_json::from_value::<T>(doc.clone()).is_ok();
        let expected = name.starts_with("valid-");
        assert_eq!(
            by_schema, expected,
            "{name}: JSON Schema says valid={by_schema}"
        );
        assert_eq!(by_types, expected, "{name}: the types say valid={by_types}");
        if expected {
            seen.0 += 1;
        } else {
            seen.1 += 1;
        }
        // The ledger's own body check is the one that runs on append and verify.
        let canonical = String::from_utf8(serde_jcs::to_vec(&doc).unwrap()).unwrap();
        assert_eq!(
            vnx_ledger::schema::validate_body(kind, &canonical).is_ok(),
            expected,
            "{name}"
        );
    }
    assert!(
        seen.0 > 0 && seen.1 > 0,
        "need valid and invalid examples in {}",
        dir.display()
    );
}

#[test]
fn schema_and_types_agree_on_receipt_examples() {
    agree::<DispatchReceipt>("receipt.schema.json", "receipt", "dispatch.receipt");
}

#[test]
fn schema_and_types_agree_on_note_and_repair_examples() {
    agree::<vnx_types::NoteBody>("note.schema.json", "note", "note");
    agree::<vnx_types::RepairBody>("repair.schema.json", "repair", "repair");
}
