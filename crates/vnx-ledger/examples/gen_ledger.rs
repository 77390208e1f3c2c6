//! Generates a ledger for benchmarks: `gen_ledger DIR RECORDS`.
//!
//! Records come as a realistic pair per dispatch — a `dispatch.started`, then
//! its `dispatch.receipt` of about 1.9 KB — appended through the library in
//! batches of 10 000 (one lock and one `fdatasync` per batch). Dispatch ids
//! carry a random run prefix so repeated runs into one ledger never collide.

use std::path::PathBuf;

use serde_json::json;
use vnx_ledger::{Ledger, NewRecord};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().ok_or("usage: gen_ledger DIR RECORDS")?);
    let total: u64 = args
        .next()
        .ok_or("usage: gen_ledger DIR RECORDS")?
        .parse()?;
    let ledger = Ledger::open_or_create(&dir)?;
    let segment = "bench@host--main.ndjson";
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos()
        % 1_000_000_007;
    let mut i = 0u64;
    while i < total {
        let batch: Vec<NewRecord> = (i..total.min(i + 10_000)).map(|i| record(run, i)).collect();
        i += batch.len() as u64;
        ledger.append(segment, &batch)?;
    }
    Ok(())
}

fn record(run: u128, i: u64) -> NewRecord {
    let id = format!("d-{run}-{:08}", i / 2);
    if i.is_multiple_of(2) {
        return NewRecord {
            kind: "dispatch.started".into(),
            body: json!({"dispatch_id": id, "skill": "implement", "provider": "claude", "model": "claude-sonnet-4-5",
                         "lane": "headless", "billing": "subscription", "instruction_sha256": format!("{:064x}", i)}),
        };
    }
    let usage = json!({"input_tokens": 1200 + i % 97, "output_tokens": 340 + i % 13, "cache_read_tokens": 5000, "cache_write_tokens": 800});
    NewRecord {
        kind: "dispatch.receipt".into(),
        body: json!({
            "dispatch_id": id, "status": if i.is_multiple_of(7) { "failed" } else { "passed" }, "skill": "implement",
            "provider": "claude", "model": "claude-sonnet-4-5", "lane": "headless", "billing": "subscription",
            "cli_version": "2.1.330 (Claude Code)", "session_id": format!("5f3c1e2a-0000-4000-8000-{i:012}"),
            "api_key_source": "none", "outcome": "success", "usage": usage,
            "cost_usd_micros": 12_345 + i % 1000, "cost_source": "reported", "duration_ms": 41_000 + i % 5000,
            "instruction": {"sha256": format!("{:064x}", i), "parts": [{"name": "skill", "sha256": format!("{:064x}", i + 1)}, {"name": "task", "sha256": format!("{:064x}", i + 2)}]},
            "attempts": [{"outcome": "success", "duration_ms": 40_000, "usage": usage, "cost_usd_micros": 12_345, "exit_code": 0}],
            "report": {"origin": "worker", "sha256": format!("{:064x}", i + 3), "valid": true},
            "gates": [
                {"name": "worker-success", "layer": "deterministic", "verdict": "pass", "detail": "outcome success"},
                {"name": "no-placeholders", "layer": "deterministic", "verdict": "pass", "detail": "no TODO, FIXME, todo!() added"},
                {"name": "command:cargo test", "layer": "deterministic", "verdict": "pass", "detail": "exit 0 in 12034 ms"},
                {"name": "cross-review", "layer": "cross-model", "verdict": "pass", "detail": "approved, no blocking issues"}
            ],
            "git": {"base": format!("{:040x}", i), "head": format!("{:040x}", i + 1), "branch": format!("vnx/{id}"), "worktree": format!(".vnx/worktrees/{id}")},
            "event_log_sha256": format!("{:064x}", i + 4)
        }),
    }
}
