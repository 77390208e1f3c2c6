//! `vnx_stats` on hand-built ledgers: every figure checked against numbers
//! worked out by hand.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use vnx_ledger::{Clock, Ledger, NewRecord};
use vnx_stats::{StatsFilter, compute, parse_since};

fn at(ts: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(ts).unwrap().into()
}

/// A receipt body with the figures the tests vary.
struct R<'a> {
    id: &'a str,
    status: &'a str,
    provider: &'a str,
    model: Option<&'a str>,
    skill: Option<&'a str>,
    tokens: [u64; 4],
    cost: u64,
    cost_source: &'a str,
    duration_ms: u64,
    billing: &'a str,
    api_key_source: Option<&'a str>,
    gates: &'a [(&'a str, &'a str)],
    batch: Option<&'a str>,
}

impl Default for R<'_> {
    fn default() -> Self {
        R {
            id: "d-1",
            status: "passed",
            provider: "claude",
            model: Some("claude-sonnet-5"),
            skill: Some("implement"),
            tokens: [0; 4],
            cost: 0,
            cost_source: "reported",
            duration_ms: 0,
            billing: "subscription",
            api_key_source: None,
            gates: &[],
            batch: None,
        }
    }
}

impl R<'_> {
    fn body(&self) -> Value {
        let gates: Vec<Value> = self
            .gates
            .iter()
            .map(|(name, verdict)| json!({"name": name, "layer": "deterministic", "verdict": verdict, "detail": "d"}))
            .collect();
        let mut body = json!({
            "dispatch_id": self.id, "status": self.status, "provider": self.provider, "lane": "headless",
            "billing": self.billing, "outcome": "success",
            "usage": {"input_tokens": self.tokens[0], "output_tokens": self.tokens[1],
                      "cache_read_tokens": self.tokens[2], "cache_write_tokens": self.tokens[3]},
            "cost_usd_micros": self.cost, "cost_source": self.cost_source, "duration_ms": self.duration_ms,
            "instruction": {"sha256": "0".repeat(64), "parts": []}, "attempts": [],
            "report": {"origin": "synthesized", "sha256": "1".repeat(64), "valid": false}, "gates": gates,
        });
        for (key, value) in [
            ("model", self.model),
            ("skill", self.skill),
            ("api_key_source", self.api_key_source),
            ("batch_id", self.batch),
        ] {
            if let Some(v) = value {
                body[key] = json!(v);
            }
        }
        body
    }
}

fn append(dir: &Path, segment: &str, ts: &str, records: &[(&str, Value)]) {
    let ledger = Ledger::open_or_create(dir)
        .unwrap()
        .with_clock(Clock::Fixed(at(ts)));
    let records: Vec<NewRecord> = records
        .iter()
        .map(|(kind, body)| NewRecord {
            kind: (*kind).to_owned(),
            body: body.clone(),
        })
        .collect();
    ledger.append(segment, &records).unwrap();
}

fn receipt(dir: &Path, ts: &str, r: &R<'_>) {
    append(
        dir,
        "a@h--main.ndjson",
        ts,
        &[("dispatch.receipt", r.body())],
    );
}

fn started(id: &str) -> Value {
    json!({"dispatch_id": id, "provider": "claude", "lane": "headless", "billing": "subscription",
           "instruction_sha256": "0".repeat(64)})
}

#[test]
fn totals_breakdowns_medians_and_cost_per_passed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ledger");
    let day = "2026-11-21T10:00:00.000Z";
    receipt(
        &dir,
        day,
        &R {
            id: "d-1",
            tokens: [100, 50, 1_000, 10],
            cost: 120_000,
            duration_ms: 300,
            gates: &[("no-secrets", "pass"), ("cross-review", "pass")],
            ..R::default()
        },
    );
    receipt(
        &dir,
        day,
        &R {
            id: "d-2",
            status: "failed",
            tokens: [10, 5, 0, 0],
            cost: 30_000,
            duration_ms: 100,
            gates: &[("no-secrets", "fail"), ("cross-review", "skipped")],
            ..R::default()
        },
    );
    receipt(
        &dir,
        day,
        &R {
            id: "d-3",
            provider: "codex",
            model: Some("gpt-5-codex"),
            skill: Some("review"),
            tokens: [1, 1, 1, 1],
            cost: 7,
            cost_source: "estimated",
            duration_ms: 1_000,
            billing: "api",
            gates: &[("no-secrets", "pass"), ("cross-review", "error")],
            ..R::default()
        },
    );
    receipt(
        &dir,
        day,
        &R {
            id: "d-4",
            status: "timeout",
            provider: "gemini",
            model: None,
            skill: None,
            cost_source: "unknown",
            duration_ms: 200,
            api_key_source: Some("ANTHROPIC_API_KEY"),
            ..R::default()
        },
    );

    let s = compute(&dir, &StatsFilter::default()).unwrap();
    let t = &s.totals;
    assert_eq!(
        (t.dispatches, t.passed, t.failed, t.timeout, t.error),
        (4, 2, 1, 1, 0)
    );
    assert_eq!(t.pass_rate, Some(0.5));
    assert_eq!(t.tokens.input_tokens, 111);
    assert_eq!(t.tokens.cache_read_tokens, 1_001);
    assert_eq!(t.total_tokens, 111 + 56 + 1_001 + 11);
    assert_eq!(t.cost_usd_micros, 150_007);
    // Every dispatch's cost over the passed ones, rounded down.
    assert_eq!(t.cost_per_passed_usd_micros, Some(75_003));
    assert_eq!(t.cost_unknown, 1);
    // Durations 100, 200, 300, 1000: an even count's median is the mean of
    // the middle two; p90 is the 4th smallest (ceil(0.9 × 4)).
    assert_eq!(t.duration.median_ms, Some(250));
    assert_eq!(t.duration.p90_ms, Some(1_000));
    assert_eq!(t.duration.max_ms, Some(1_000));

    let claude = &s.by_provider["claude"];
    assert_eq!((claude.dispatches, claude.passed), (2, 1));
    assert_eq!(claude.cost_usd_micros, 150_000);
    assert_eq!(claude.duration.median_ms, Some(200));
    assert_eq!(s.by_provider["gemini"].pass_rate, Some(0.0));
    assert_eq!(s.by_provider["gemini"].cost_per_passed_usd_micros, None);
    assert_eq!(s.by_model["unknown"].dispatches, 1);
    assert_eq!(s.by_model["claude-sonnet-5"].dispatches, 2);
    assert_eq!(s.by_skill["implement"].pass_rate, Some(0.5));
    assert_eq!(s.by_skill["review"].pass_rate, Some(1.0));
    assert_eq!(s.by_skill["unknown"].timeout, 1);
    assert_eq!(s.by_day.keys().collect::<Vec<_>>(), vec!["2026-11-21"]);

    let secrets = &s.gates["no-secrets"];
    assert_eq!((secrets.pass, secrets.fail), (2, 1));
    assert_eq!(secrets.pass_rate, Some(2.0 / 3.0));
    // Skipped runs do not count towards a gate's pass rate.
    let review = &s.gates["cross-review"];
    assert_eq!(
        (review.pass, review.fail, review.skipped, review.error),
        (1, 0, 1, 1)
    );
    assert_eq!(review.pass_rate, Some(0.5));

    assert_eq!(s.billing.subscription, 3);
    assert_eq!(s.billing.api, 1);
    assert_eq!(s.billing.api_key_source_reported, 1);
    assert_eq!((s.orphans, s.duplicate_receipts), (0, 0));

    // The JSON shape the dashboard and `vnx stats --json` get.
    let v = serde_json::to_value(&s).unwrap();
    assert_eq!(v["totals"]["cost_per_passed_usd_micros"], 75_003);
    assert_eq!(
        v["by_provider"]["gemini"]["cost_per_passed_usd_micros"],
        Value::Null
    );
    assert!(v.get("since").is_none());
}

#[test]
fn days_are_utc_dates_of_the_receipt_either_side_of_midnight() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ledger");
    let r = |id| R {
        id,
        cost: 10,
        duration_ms: 5,
        ..R::default()
    };
    receipt(&dir, "2026-11-21T23:59:59.999Z", &r("d-1"));
    receipt(&dir, "2026-11-22T00:00:00.000Z", &r("d-2"));
    receipt(&dir, "2026-11-22T00:00:00.001Z", &r("d-3"));
    let s = compute(&dir, &StatsFilter::default()).unwrap();
    let days: Vec<(&str, u64)> = s
        .by_day
        .iter()
        .map(|(d, b)| (d.as_str(), b.dispatches))
        .collect();
    assert_eq!(days, vec![("2026-11-21", 1), ("2026-11-22", 2)]);
    assert_eq!(s.by_day["2026-11-22"].cost_usd_micros, 20);

    // --since at midnight keeps exactly the receipts from midnight on.
    let since = parse_since("2026-11-22", Utc::now()).unwrap();
    let s = compute(&dir, &StatsFilter { since: Some(since) }).unwrap();
    assert_eq!(s.totals.dispatches, 2);
    assert_eq!(s.since.as_deref(), Some("2026-11-22T00:00:00.000Z"));
    assert!(!s.by_day.contains_key("2026-11-21"));
}

#[test]
fn a_dispatch_counts_once_and_orphans_are_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ledger");
    let passed = R {
        id: "d-1",
        cost: 100,
        duration_ms: 10,
        ..R::default()
    };
    // The working ledger's copy and the dispatch branch's copy.
    append(
        &dir,
        "a@h--main.ndjson",
        "2026-11-21T10:00:00.000Z",
        &[
            ("dispatch.started", started("d-1")),
            ("dispatch.receipt", passed.body()),
        ],
    );
    append(
        &dir,
        "a@h--vnx_d-1.ndjson",
        "2026-11-21T10:00:00.000Z",
        &[
            ("dispatch.started", started("d-1")),
            ("dispatch.receipt", passed.body()),
        ],
    );
    // Started, never ended.
    append(
        &dir,
        "a@h--main.ndjson",
        "2026-11-21T11:00:00.000Z",
        &[("dispatch.started", started("d-2"))],
    );
    let s = compute(&dir, &StatsFilter::default()).unwrap();
    assert_eq!(s.totals.dispatches, 1);
    assert_eq!(s.totals.cost_usd_micros, 100);
    assert_eq!(s.duplicate_receipts, 1);
    assert_eq!(s.orphans, 1);

    // An orphan before --since is outside the window.
    let s = compute(
        &dir,
        &StatsFilter {
            since: Some(at("2026-11-21T12:00:00Z")),
        },
    )
    .unwrap();
    assert_eq!((s.totals.dispatches, s.orphans), (0, 0));
    assert_eq!(s.totals.pass_rate, None);
    assert_eq!(s.totals.duration.median_ms, None);
    assert!(s.by_provider.is_empty());
}

#[test]
fn batches_and_odd_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ledger");
    for (i, ms) in [7, 3, 5].into_iter().enumerate() {
        let id = format!("d-{i}");
        receipt(
            &dir,
            "2026-11-21T10:00:00.000Z",
            &R {
                id: &id,
                duration_ms: ms,
                batch: Some("b-1"),
                ..R::default()
            },
        );
    }
    let s = compute(&dir, &StatsFilter::default()).unwrap();
    let b = &s.by_batch["b-1"];
    assert_eq!(b.dispatches, 3);
    assert_eq!(b.duration.median_ms, Some(5));
    // ceil(0.9 × 3) = 3rd smallest.
    assert_eq!(b.duration.p90_ms, Some(7));
}

#[test]
fn since_accepts_dates_times_and_ages_and_nothing_else() {
    let now = at("2026-11-21T12:00:00Z");
    assert_eq!(
        parse_since("2026-11-20", now).unwrap(),
        at("2026-11-20T00:00:00Z")
    );
    assert_eq!(
        parse_since("2026-11-20T09:30:00+02:00", now).unwrap(),
        at("2026-11-20T07:30:00Z")
    );
    assert_eq!(parse_since("7d", now).unwrap(), at("2026-11-14T12:00:00Z"));
    assert_eq!(parse_since("12h", now).unwrap(), at("2026-11-21T00:00:00Z"));
    assert_eq!(parse_since("2w", now).unwrap(), at("2026-11-07T12:00:00Z"));
    for bad in [
        "",
        "yesterday",
        "7",
        "7x",
        "-1d",
        "2026-13-01",
        "d",
        "99999999999999999d",
    ] {
        let err = parse_since(bad, now).unwrap_err().to_string();
        assert!(
            err.contains("YYYY-MM-DD") && err.contains("7d"),
            "{bad}: {err}"
        );
    }
}

#[test]
fn a_missing_ledger_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let err = compute(&tmp.path().join("nope"), &StatsFilter::default()).unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
}
