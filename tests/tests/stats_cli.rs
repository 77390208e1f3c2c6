//! End to end: `vnx stats` over dispatches run by `vnx run` with the scripted
//! fake agent — one passed with a reported cost, one failed at a gate, one
//! worker error — before and after merging a dispatch branch.

#![allow(clippy::unwrap_used)]

#[path = "run_common.rs"]
mod common;

use serde_json::Value;

use common::{Sandbox, all, plain_env, receipt};

/// The claude stream-json final event the `paid` provider prints: 1,200
/// input, 300 output, 50,000 cache-read tokens, $0.0123.
const RESULT: &str = r#"{"type":"result","subtype":"success","is_error":false,"total_cost_usd":0.0123,"usage":{"input_tokens":1200,"output_tokens":300,"cache_read_input_tokens":50000,"cache_creation_input_tokens":0}}"#;

fn sandbox() -> Sandbox {
    let sb = Sandbox::new("");
    let result = sb.tmp.path().join("result.json");
    std::fs::write(&result, format!("{RESULT}\n")).unwrap();
    let fake = vnx_tests::fake_agent();
    let toml = format!(
        "[run]\nprovider = \"paid\"\ncross_review = false\n\n[retry]\nmax_retries = 0\n\n\
         [providers.paid]\nkind = \"command\"\nbinary = \"{fake}\"\nargv = [\"fake-agent\", \"--emit\", \"{result}\"]\n\
         output = \"claude-stream-json\"\n\n\
         [providers.broken]\nkind = \"command\"\nbinary = \"{fake}\"\nargv = [\"fake-agent\", \"--exit\", \"1\"]\n\
         output = \"claude-stream-json\"\n",
        fake = fake.display(),
        result = result.display(),
    );
    std::fs::write(sb.repo.join("vnx.toml"), toml).unwrap();
    sb.git(&["commit", "-qam", "providers"]);
    sb
}

fn vnx(sb: &Sandbox, args: &[&str]) -> std::process::Output {
    sb.run_vnx(&plain_env(&sb.home), args)
}

fn stats(sb: &Sandbox, args: &[&str]) -> Value {
    let mut argv = vec!["stats", "--json"];
    argv.extend_from_slice(args);
    let out = vnx(sb, &argv);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn stats_count_tokens_cost_statuses_and_gates_of_real_dispatches() {
    let sb = sandbox();
    // Passed: the read-only review skill needs no change.
    let passed = receipt(&vnx(&sb, &["run", "--json", "--skill", "review", "Review"]));
    assert_eq!(passed["status"], "passed", "{passed:#}");
    // Failed: the implement skill changed nothing (non-empty-change fails).
    let failed = receipt(&vnx(
        &sb,
        &["run", "--json", "--skill", "implement", "Do it"],
    ));
    assert_eq!(failed["status"], "failed", "{failed:#}");
    // Error: the worker exits 1 without a final event.
    let error = receipt(&vnx(
        &sb,
        &[
            "run",
            "--json",
            "--provider",
            "broken",
            "--skill",
            "review",
            "Review",
        ],
    ));
    assert_eq!(error["status"], "error", "{error:#}");

    let s = stats(&sb, &[]);
    let t = &s["totals"];
    assert_eq!(t["dispatches"], 3, "{s:#}");
    assert_eq!(
        (&t["passed"], &t["failed"], &t["error"]),
        (&1.into(), &1.into(), &1.into())
    );
    // Two paid dispatches: 2 × (1,200 + 300 + 50,000) tokens, 2 × $0.0123.
    assert_eq!(t["tokens"]["input_tokens"], 2_400);
    assert_eq!(t["tokens"]["cache_read_tokens"], 100_000);
    assert_eq!(t["total_tokens"], 103_000);
    assert_eq!(t["cost_usd_micros"], 24_600);
    assert_eq!(t["cost_per_passed_usd_micros"], 24_600, "one passed");
    assert_eq!(s["by_provider"]["paid"]["dispatches"], 2);
    assert_eq!(s["by_provider"]["broken"]["pass_rate"], 0.0);
    assert_eq!(
        s["by_provider"]["broken"]["cost_per_passed_usd_micros"],
        Value::Null
    );
    assert_eq!(s["by_skill"]["review"]["dispatches"], 2);
    assert_eq!(s["by_skill"]["review"]["pass_rate"], 0.5);
    assert_eq!(s["by_skill"]["implement"]["failed"], 1);
    assert_eq!(s["gates"]["non-empty-change"]["fail"], 1);
    assert_eq!(s["gates"]["worker-outcome"]["pass"], 2);
    assert_eq!(s["gates"]["worker-outcome"]["fail"], 1);
    assert_eq!(s["billing"]["subscription"], 3);
    assert_eq!(s["billing"]["api"], 0);
    assert_eq!(s["orphans"], 0);
    let days: Vec<&String> = s["by_day"].as_object().unwrap().keys().collect();
    assert_eq!(days.len(), 1, "{s:#}");

    // Text: aligned tables, money in dollars, tokens with separators.
    let out = vnx(&sb, &["stats"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    for needle in [
        "3 dispatches, 1 passed (33.3%)",
        "103,000 tokens",
        "$0.0246",
        "non-empty-change",
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
    }

    // Merging the passed dispatch's branch brings a copy of its receipt:
    // still one dispatch.
    let id = passed["dispatch_id"].as_str().unwrap();
    sb.git(&["merge", "-q", "--no-edit", &format!("vnx/{id}")]);
    let s = stats(&sb, &[]);
    assert_eq!(s["totals"]["dispatches"], 3, "{s:#}");
    assert_eq!(s["duplicate_receipts"], 1);

    // --since: relative, a date in the future, and nonsense.
    assert_eq!(stats(&sb, &["--since", "1d"])["totals"]["dispatches"], 3);
    let later = stats(&sb, &["--since", "2999-01-01"]);
    assert_eq!(later["totals"]["dispatches"], 0);
    assert_eq!(later["since"], "2999-01-01T00:00:00.000Z");
    let out = vnx(&sb, &["stats", "--since", "last tuesday"]);
    assert_eq!(out.status.code(), Some(2));
    let err = all(&out);
    assert!(
        err.contains("--since") && err.contains("YYYY-MM-DD"),
        "{err}"
    );
}
