//! `vnx batch` with the real Claude Code CLI against the mock model API: a
//! depends_on chain whose first report reaches the second instruction, under
//! a cap of 2, with the model API answering the first request `429` — the
//! batch pauses claude and every dispatch still passes.

#![allow(clippy::unwrap_used)]

#[path = "run_common.rs"]
mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{Sandbox, all, claude_env, claude_toml, clis, records, serial, wait_bounded};
use serde_json::Value;
use vnx_testkit::{MockServer, Reply, Script};

#[test]
fn a_claude_batch_chains_reports_and_rides_out_a_rate_limit() {
    let _serial = serial();
    let clis = clis();
    let report = serde_json::json!({
        "summary": "CHAIN-MARKER: wrote notes.txt",
        "files_changed": ["notes.txt"]
    })
    .to_string();
    let mut script = Script::write_file("notes.txt", "notes\n").with_text(report);
    script.queue.push_front(Reply::Status {
        status: 429,
        retry_after: Some(1),
    });
    let server = MockServer::start(script).unwrap();
    let toml = claude_toml(&clis.claude, "").replace(
        "[retry]\nmax_retries = 0",
        "[retry]\nmax_retries = 2\nmax_wait = \"5s\"",
    );
    let sb = Sandbox::new(&toml);
    std::fs::write(
        sb.repo.join("batch.toml"),
        r#"
[[dispatch]]
id = "first"
prompt = "Write notes.txt"

[[dispatch]]
id = "second"
prompt = "Write notes.txt again, building on the first"
depends_on = ["first"]

[[dispatch]]
id = "alone"
prompt = "Write notes.txt on your own"
"#,
    )
    .unwrap();
    let out = wait_bounded(
        sb.vnx(
            &claude_env(&server, &sb.home),
            &["batch", "batch.toml", "--max-parallel", "2", "--json"],
        )
        .spawn()
        .unwrap(),
        Duration::from_mins(6),
    );
    common::kill_strays(sb.tmp.path());
    let ctx = all(&out);
    assert_eq!(out.status.code(), Some(0), "{ctx}");
    assert!(ctx.contains("claude is rate-limited"), "{ctx}");
    let o: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: HashMap<String, String> = o["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e["status"], "passed", "{ctx}");
            let last = e["dispatches"].as_array().unwrap().last().unwrap();
            (
                e["id"].as_str().unwrap().to_owned(),
                last["dispatch_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();

    // Receipts: all passed, one rate-limited attempt among them, the chain linked.
    let mut receipts: HashMap<String, (String, Value)> = HashMap::new();
    for r in records(&sb.main_segment()) {
        if r["record"]["kind"] == "dispatch.receipt" {
            let body = r["record"]["body"].clone();
            receipts.insert(
                body["dispatch_id"].as_str().unwrap().to_owned(),
                (r["hash"].as_str().unwrap().to_owned(), body),
            );
        }
    }
    assert_eq!(receipts.len(), 3, "{ctx}");
    let limited = receipts
        .values()
        .flat_map(|(_, b)| b["attempts"].as_array().unwrap().clone())
        .filter(|a| a["outcome"] == "rate_limited")
        .count();
    assert_eq!(limited, 1, "{ctx}");
    let (first_hash, first) = &receipts[&ids["first"]];
    assert_eq!(first["report"]["origin"], "worker", "{first:#}");
    let (_, second) = &receipts[&ids["second"]];
    assert_eq!(second["builds_on"][0], first_hash.as_str());
    assert!(receipts[&ids["alone"]].1.get("builds_on").is_none());

    // What claude sent the model: the first report is in the second's prompt only.
    let with_report = server
        .model_requests()
        .iter()
        .filter_map(|r| r.body.as_ref().map(Value::to_string))
        .filter(|b| b.contains("CHAIN-MARKER") && b.contains(&ids["first"]))
        .count();
    assert!(
        with_report >= 1,
        "the second dispatch's request lacks the first report"
    );
    let (verify, _) = sb.audit();
    assert_eq!(verify.0, 0, "{}", verify.1);
}
