//! `vnx batch` end to end with scripted fake agents: the cap holds, a
//! rate-limited provider pauses for the whole batch, depends_on chains carry
//! reports forward, failures skip their dependents, retry_with runs once,
//! Ctrl-C interrupts with receipts, and bad batch files are refused before
//! anything starts.

#![allow(clippy::unwrap_used, clippy::format_collect)]

#[path = "run_common.rs"]
mod common;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use common::{Sandbox, all, plain_env, records, wait_bounded, wait_for};
use serde_json::Value;

/// A `command` provider table running the fake agent with `argv` (braces
/// doubled: argv entries are templates).
fn provider(name: &str, argv: &[&str]) -> String {
    let argv: Vec<String> = std::iter::once("fake-agent")
        .chain(argv.iter().copied())
        .map(|a| serde_json::to_string(&a.replace('{', "{{").replace('}', "}}")).unwrap())
        .collect();
    format!(
        "\n[providers.{name}]\nkind = \"command\"\nbinary = \"{}\"\nargv = [{}]\noutput = \"claude-stream-json\"\n",
        vnx_tests::fake_agent().display(),
        argv.join(", ")
    )
}

/// `vnx.toml`: review skill by default (an empty change passes), no review,
/// retries on, plus `extra`.
fn toml(extra: &str) -> String {
    format!(
        "[run]\nprovider = \"fast\"\ncross_review = false\ntimeout = \"2m\"\n\n[retry]\nmax_retries = 2\nmax_wait = \"10s\"\n{extra}"
    )
}

/// A claude-format final event whose result text is a valid report.
fn final_with_report(summary: &str) -> String {
    let report = serde_json::json!({"summary": summary, "files_changed": []}).to_string();
    serde_json::json!({"type": "result", "subtype": "success", "is_error": false, "result": report})
        .to_string()
}

/// Body, kind, hash and ts of every record of the main segment.
struct Rec {
    kind: String,
    ts: chrono::DateTime<chrono::Utc>,
    hash: String,
    body: Value,
}

fn recs(sb: &Sandbox) -> Vec<Rec> {
    records(&sb.main_segment())
        .into_iter()
        .map(|r| Rec {
            kind: r["record"]["kind"].as_str().unwrap().to_owned(),
            ts: r["record"]["ts"].as_str().unwrap().parse().unwrap(),
            hash: r["hash"].as_str().unwrap().to_owned(),
            body: r["record"]["body"].clone(),
        })
        .collect()
}

/// Per dispatch id: (started ts, receipt ts, receipt hash, receipt body).
type Span = (
    chrono::DateTime<chrono::Utc>,
    chrono::DateTime<chrono::Utc>,
    String,
    Value,
);

fn spans(sb: &Sandbox) -> HashMap<String, Span> {
    let mut started = HashMap::new();
    let mut out = HashMap::new();
    for r in recs(sb) {
        let id = r.body["dispatch_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        match r.kind.as_str() {
            "dispatch.started" => {
                started.insert(id, r.ts);
            }
            "dispatch.receipt" => {
                let s = started
                    .remove(&id)
                    .unwrap_or_else(|| panic!("receipt of {id} without a started record"));
                out.insert(id, (s, r.ts, r.hash, r.body));
            }
            _ => {}
        }
    }
    assert!(started.is_empty(), "started without receipt: {started:?}");
    out
}

/// Most intervals open at once (an end and a start at the same ms: the end first).
fn max_overlap<'a>(spans: impl Iterator<Item = &'a Span>) -> usize {
    let mut points: Vec<(chrono::DateTime<chrono::Utc>, i32)> = Vec::new();
    for (s, e, _, _) in spans {
        points.push((*s, 1));
        points.push((*e, -1));
    }
    points.sort();
    let (mut open, mut most) = (0i32, 0i32);
    for (_, d) in points {
        open += d;
        most = most.max(open);
    }
    most as usize
}

/// The batch outcome `vnx batch --json` printed.
fn outcome(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not a batch outcome ({e}):\n{}", all(out)))
}

/// Entry id → its last dispatch id, from the outcome.
fn dispatch_of(o: &Value, entry: &str) -> String {
    o["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == entry)
        .and_then(|e| e["dispatches"].as_array()?.last()?["dispatch_id"].as_str())
        .unwrap_or_else(|| panic!("no dispatch for {entry} in {o:#}"))
        .to_owned()
}

#[test]
fn twenty_dispatches_under_a_cap_of_three_with_chains_and_a_rate_limited_provider() {
    let tmp = tempfile::tempdir().unwrap();
    let marker = tmp.path().join("limited-once");
    let now = chrono::Utc::now().timestamp();
    let resets_at = now + 5;
    let limit = format!(
        r#"{{"type":"rate_limit_event","rate_limit_info":{{"status":"rejected","resetsAt":{resets_at},"rateLimitType":"five_hour"}}}}"#
    );
    let extra = format!(
        "\n[batch]\nmax_parallel = 8\n\n[batch.provider_caps]\nfast = 2\n{}{}",
        provider("fast", &["--sleep-ms", "300", "--final"]),
        provider(
            "limited",
            &[
                "--once",
                marker.to_str().unwrap(),
                "--line",
                &limit,
                "--exit",
                "1",
                "--else",
                "--sleep-ms",
                "200",
                "--final"
            ]
        ),
    );
    let sb = Sandbox::new(&toml(&extra));
    let mut batch = String::from("[defaults]\nskill = \"review\"\n");
    for n in 1..=20 {
        let provider = if [1, 10, 15].contains(&n) {
            "limited"
        } else {
            "fast"
        };
        let deps = match n {
            12 => "depends_on = [\"e11\"]\n",
            13 => "depends_on = [\"e12\"]\n",
            14 => "depends_on = [\"e02\", \"e13\"]\n",
            _ => "",
        };
        let _ = write!(
            batch,
            "\n[[dispatch]]\nid = \"e{n:02}\"\nprovider = \"{provider}\"\nprompt = \"Review part {n}\"\n{deps}"
        );
    }
    std::fs::write(sb.repo.join("batch.toml"), &batch).unwrap();

    let out = wait_bounded(
        sb.vnx(
            &plain_env(&sb.home),
            &["batch", "batch.toml", "--max-parallel", "3", "--json"],
        )
        .spawn()
        .unwrap(),
        Duration::from_mins(5),
    );
    let ctx = all(&out);
    assert_eq!(out.status.code(), Some(0), "{ctx}");
    let o = outcome(&out);
    let batch_id = o["batch_id"].as_str().unwrap();
    assert_eq!(o["max_parallel"], 3, "{ctx}");
    assert!(
        o["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["status"] == "passed"),
        "{ctx}"
    );
    assert!(ctx.contains("limited is rate-limited"), "{ctx}");

    // All 20 receipts, valid, of this batch; never more than 3 running.
    let spans = spans(&sb);
    assert_eq!(spans.len(), 20, "{ctx}");
    assert!(
        spans
            .values()
            .all(|(_, _, _, r)| r["batch_id"] == batch_id && r["status"] == "passed"),
        "{ctx}"
    );
    let (verify, _) = sb.audit();
    assert_eq!(verify.0, 0, "{}", verify.1);
    assert_eq!(max_overlap(spans.values()), 3, "{ctx}");

    // The per-provider cap held: never more than 2 `fast` at once.
    let fast: Vec<&Span> = spans
        .values()
        .filter(|s| s.3["provider"] == "fast")
        .collect();
    assert_eq!(fast.len(), 17);
    assert_eq!(max_overlap(fast.iter().copied()), 2, "{ctx}");

    // The limited provider: the first attempt was rejected, and no other
    // limited dispatch started before the reset it reported.
    let limited: Vec<&Span> = ["e01", "e10", "e15"]
        .iter()
        .map(|e| &spans[&dispatch_of(&o, e)])
        .collect();
    let first = &limited[0].3;
    let classes: Vec<&str> = first["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(classes, ["rate_limited", "success"], "{first:#}");
    for later in &limited[1..] {
        assert!(
            later.0.timestamp() >= resets_at,
            "a limited dispatch started at {} before the reset {resets_at}\n{ctx}",
            later.0
        );
    }

    // Chains: each started after what it depends on, and built on its receipt.
    let span = |e: &str| &spans[&dispatch_of(&o, e)];
    for (after, before) in [
        ("e12", "e11"),
        ("e13", "e12"),
        ("e14", "e13"),
        ("e14", "e02"),
    ] {
        assert!(span(after).0 >= span(before).1, "{after} before {before}");
        let builds_on = span(after).3["builds_on"].as_array().unwrap();
        assert!(
            builds_on.iter().any(|h| *h == span(before).2),
            "{after} does not build on {before}: {builds_on:?}"
        );
    }
    assert!(span("e05").3.get("builds_on").is_none());
}

#[test]
fn a_chain_of_three_carries_each_report_into_the_next_instruction() {
    let extra = provider("fast", &["--final"])
        + &[1, 2, 3]
            .iter()
            .map(|n| {
                provider(
                    &format!("step{n}"),
                    &[
                        "--echo-stdin",
                        "--line",
                        &final_with_report(&format!("REPORT-OF-STEP-{n}")),
                    ],
                )
            })
            .collect::<String>();
    let sb = Sandbox::new(&toml(&extra));
    let batch = r#"{"defaults":{"skill":"review"}}
{"id":"plan","provider":"step1","prompt":"Plan the --verbose flag"}
{"id":"implement","provider":"step2","prompt":"Implement the plan","depends_on":["plan"]}
{"id":"test","provider":"step3","prompt":"Test it","depends_on":["implement"]}
"#;
    std::fs::write(sb.repo.join("chain.jsonl"), batch).unwrap();
    let out = sb.run_vnx(&plain_env(&sb.home), &["batch", "chain.jsonl", "--json"]);
    let ctx = all(&out);
    assert_eq!(out.status.code(), Some(0), "{ctx}");
    let o = outcome(&out);
    let spans = spans(&sb);
    // What each worker read on stdin: its instruction.
    let instruction = |entry: &str| -> String {
        let id = dispatch_of(&o, entry);
        let log = sb
            .repo
            .join(".vnx/runs")
            .join(&id)
            .join("worker/attempt-1.events.ndjson");
        let text = std::fs::read_to_string(&log).unwrap();
        let echo: Value = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| v["type"] == "stdin")
            .unwrap_or_else(|| panic!("no stdin echo in {}", log.display()));
        echo["text"].as_str().unwrap().to_owned()
    };
    let (plan, implement, test) = (
        instruction("plan"),
        instruction("implement"),
        instruction("test"),
    );
    assert!(!plan.contains("REPORT-OF-STEP"), "{plan}");
    assert!(implement.contains("REPORT-OF-STEP-1"), "{implement}");
    assert!(implement.contains(&dispatch_of(&o, "plan")), "{implement}");
    assert!(test.contains("REPORT-OF-STEP-2"), "{test}");
    assert!(
        !test.contains("REPORT-OF-STEP-1"),
        "only direct dependencies: {test}"
    );
    // The receipts name what they built on; the reports were the workers'.
    let r = |e: &str| &spans[&dispatch_of(&o, e)];
    assert_eq!(r("implement").3["builds_on"][0], r("plan").2.as_str());
    assert_eq!(r("test").3["builds_on"][0], r("implement").2.as_str());
    assert_eq!(
        r("plan").3["report"]["origin"],
        "worker",
        "{:#}",
        r("plan").3
    );
}

#[test]
fn failures_skip_dependents_and_retry_with_runs_once() {
    let extra = format!(
        "{}{}",
        provider("fast", &["--final"]),
        provider("broken", &["--stderr", "boom", "--exit", "1"]),
    );
    let sb = Sandbox::new(&toml(&extra).replace("max_retries = 2", "max_retries = 0"));
    let batch = r#"
[defaults]
skill = "review"

[[dispatch]]
id = "rescued"
provider = "broken"
prompt = "x"
retry_with = "fast"

[[dispatch]]
id = "lost"
provider = "broken"
prompt = "y"

[[dispatch]]
id = "after-lost"
prompt = "z"
depends_on = ["lost"]

[[dispatch]]
id = "after-rescued"
prompt = "w"
depends_on = ["rescued"]
"#;
    std::fs::write(sb.repo.join("b.toml"), batch).unwrap();
    let out = sb.run_vnx(&plain_env(&sb.home), &["batch", "b.toml", "--json"]);
    let ctx = all(&out);
    // Worst entry: a worker error.
    assert_eq!(out.status.code(), Some(3), "{ctx}");
    let o = outcome(&out);
    let entry = |id: &str| {
        o["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["id"] == id)
            .unwrap()
            .clone()
    };
    let rescued = entry("rescued");
    assert_eq!(rescued["status"], "passed", "{ctx}");
    let runs = rescued["dispatches"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{rescued:#}");
    assert_eq!(runs[0]["provider"], "broken");
    assert_eq!(runs[0]["status"], "error");
    assert_eq!(runs[1]["provider"], "fast");
    assert_eq!(entry("lost")["status"], "error");
    assert_eq!(entry("lost")["dispatches"].as_array().unwrap().len(), 1);
    assert_eq!(entry("after-lost")["status"], "skipped");
    assert!(
        entry("after-lost")["reason"]
            .as_str()
            .unwrap()
            .contains("\"lost\""),
        "{ctx}"
    );
    assert_eq!(entry("after-rescued")["status"], "passed");
    // Every dispatch that ran has its receipt; the skipped one has none.
    let spans = spans(&sb);
    assert_eq!(spans.len(), 4, "{ctx}");
    let (verify, _) = sb.audit();
    assert_eq!(verify.0, 0, "{}", verify.1);
}

#[test]
fn ctrl_c_interrupts_running_dispatches_and_starts_no_more() {
    let extra = provider("fast", &["--sleep-ms", "60000", "--final"]);
    let sb = Sandbox::new(&toml(&extra));
    let mut batch = String::from("[defaults]\nskill = \"review\"\n");
    for n in 1..=6 {
        let _ = write!(batch, "\n[[dispatch]]\nid = \"s{n}\"\nprompt = \"p{n}\"\n");
    }
    std::fs::write(sb.repo.join("b.toml"), batch).unwrap();
    let child = sb
        .vnx(
            &plain_env(&sb.home),
            &["batch", "b.toml", "--max-parallel", "2", "--json"],
        )
        .spawn()
        .unwrap();
    let segment = sb.main_segment();
    let started = |p: &Path| {
        records(p)
            .iter()
            .filter(|r| r["record"]["kind"] == "dispatch.started")
            .count()
    };
    wait_for("two started dispatches", Duration::from_mins(1), || {
        started(&segment) == 2
    });
    // Queued entries are on the board as queued meanwhile (the two started
    // ones leave `queued` right after their started record).
    let runs = sb.repo.join(".vnx/runs");
    let queued = || {
        std::fs::read_dir(&runs)
            .unwrap()
            .flatten()
            .filter_map(|d| std::fs::read_to_string(d.path().join("live.json")).ok())
            .filter(|t| t.contains("\"phase\":\"queued\""))
            .count()
    };
    wait_for("four queued entries", Duration::from_secs(30), || {
        queued() == 4
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = wait_bounded(child, Duration::from_mins(1));
    let ctx = all(&out);
    assert_eq!(out.status.code(), Some(3), "{ctx}");
    let o = outcome(&out);
    let statuses: Vec<&str> = o["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "interrupted",
            "interrupted",
            "not_started",
            "not_started",
            "not_started",
            "not_started"
        ],
        "{ctx}"
    );
    let spans = spans(&sb);
    assert_eq!(spans.len(), 2, "{ctx}");
    assert!(spans.values().all(|s| s.3["status"] == "interrupted"));
    let (verify, _) = sb.audit();
    assert_eq!(verify.0, 0, "no orphans: {}", verify.1);
    // No queued card is left behind.
    let leftover = std::fs::read_dir(sb.repo.join(".vnx/runs"))
        .unwrap()
        .flatten()
        .filter(|d| d.path().join("live.json").exists())
        .count();
    assert_eq!(leftover, 2, "{ctx}");
}

#[test]
fn bad_batch_files_are_refused_before_anything_starts() {
    let extra = provider("fast", &["--final"]);
    let sb = Sandbox::new(&toml(&extra));
    let before = std::fs::read(sb.main_segment()).unwrap_or_default();
    let cases: [(&str, &str, &[&str]); 6] = [
        (
            "cycle.toml",
            "[[dispatch]]\nid = \"a\"\nprompt = \"p\"\ndepends_on = [\"c\"]\n[[dispatch]]\nid = \"b\"\nprompt = \"p\"\ndepends_on = [\"a\"]\n[[dispatch]]\nid = \"c\"\nprompt = \"p\"\ndepends_on = [\"b\"]\n",
            &["cycle", "a → c → b → a"],
        ),
        (
            "skill.toml",
            "[[dispatch]]\nid = \"a\"\nskill = \"no-such-skill\"\nprompt = \"p\"\n",
            &["entry \"a\"", "no-such-skill", "known skills"],
        ),
        (
            "provider.jsonl",
            "{\"id\":\"a\",\"prompt\":\"p\",\"provider\":\"nobody\"}\n",
            &["entry \"a\" (line 1)", "nobody"],
        ),
        (
            "dup.toml",
            "[[dispatch]]\nid = \"a\"\nprompt = \"p\"\n[[dispatch]]\nid = \"a\"\nprompt = \"q\"\n",
            &["entry \"a\" ([[dispatch]] #2)", "duplicate id"],
        ),
        (
            "dangling.toml",
            "[[dispatch]]\nid = \"a\"\nprompt = \"p\"\ndepends_on = [\"ghost\"]\n",
            &["entry \"a\"", "ghost"],
        ),
        (
            "syntax.jsonl",
            "{\"id\":\"a\",\"prompt\":\"p\"}\n{\"id\":\"b\",\"prompt\":\n",
            &["syntax.jsonl: line 2"],
        ),
    ];
    for (name, text, expect) in cases {
        std::fs::write(sb.repo.join(name), text).unwrap();
        let out = sb.run_vnx(&plain_env(&sb.home), &["batch", name]);
        let ctx = all(&out);
        assert_eq!(out.status.code(), Some(2), "{name}: {ctx}");
        for e in expect {
            assert!(ctx.contains(e), "{name}: expected {e:?} in\n{ctx}");
        }
    }
    // `--check` on a good file runs nothing either.
    std::fs::write(
        sb.repo.join("good.toml"),
        "[[dispatch]]\nid = \"a\"\nskill = \"review\"\nprompt = \"p\"\n",
    )
    .unwrap();
    let out = sb.run_vnx(&plain_env(&sb.home), &["batch", "--check", "good.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    assert_eq!(std::fs::read(sb.main_segment()).unwrap_or_default(), before);
    assert!(!sb.repo.join(".vnx/runs").exists());
}
