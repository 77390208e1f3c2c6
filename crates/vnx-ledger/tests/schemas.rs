//! The JSON Schemas in `schemas/` are generated from the `vnx-types` structs
//! the ledger validates with. This test fails when a committed schema is stale
//! (run with `VNX_UPDATE_SCHEMAS=1` to regenerate), and checks that the schema
//! and the types accept and refuse the same example documents.

// Helpers outside #[test] functions may panic on setup failures.
#![allow(clippy::unwrap_used, clippy::format_collect)]

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_json::Value;
use vnx_types::{DispatchReceipt, DispatchStarted};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn check_generated(file: &str, schema: &schemars::Schema) {
    let path = root().join("schemas").join(file);
    let mut text = serde_json::to_string_pretty(schema).unwrap();
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
    check_generated(
        "receipt.schema.json",
        &schemars::schema_for!(DispatchReceipt),
    );
    check_generated(
        "dispatch-started.schema.json",
        &schemars::schema_for!(DispatchStarted),
    );
    check_generated(
        "approval.schema.json",
        &schemars::schema_for!(vnx_types::ApprovalBody),
    );
}

fn agree<T: DeserializeOwned>(schema_file: &str, examples: &str) {
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
        let kind = if examples == "receipt" {
            "dispatch.receipt"
        } else {
            "dispatch.started"
        };
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
    agree::<DispatchReceipt>("receipt.schema.json", "receipt");
}
