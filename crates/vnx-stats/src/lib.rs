//! Aggregates over a vnx ledger, for `vnx stats` and the dashboard.
//!
//! [`compute`] reads a ledger directory; [`aggregate`] does the arithmetic
//! on records already read. Both only read: nothing here writes or prints.
//!
//! What counts:
//!
//! - **one dispatch, one receipt.** `vnx run` appends a dispatch's receipt
//!   to the working ledger and commits a copy on the dispatch branch; after
//!   a merge both are in the ledger. Receipts are grouped by dispatch id and
//!   the latest (by record timestamp) counts.
//! - **time** is the receipt record's `ts` (when the dispatch ended), in UTC:
//!   `--since` compares it, and days are its UTC date.
//! - **units**: tokens are counts, money integer micro-USD (1 USD =
//!   1 000 000), durations milliseconds. Rates are fractions in `0.0..=1.0`,
//!   absent when nothing was counted.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize as _, Serialize};
use vnx_ledger::LedgerError;
use vnx_ledger::read::{SegmentReader, StoredRecord, segment_paths};
use vnx_ledger::record::{KIND_DISPATCH_RECEIPT, KIND_DISPATCH_STARTED};
use vnx_types::{Billing, CostSource, DispatchReceipt, DispatchStatus, Usage, Verdict};

/// Which receipts to count.
#[derive(Debug, Clone, Default)]
pub struct StatsFilter {
    /// Only receipts whose record timestamp is at or after this instant.
    pub since: Option<DateTime<Utc>>,
}

/// Everything `vnx stats` shows.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    /// The filter's lower bound, RFC 3339 UTC, when one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// All counted dispatches.
    pub totals: Bucket,
    /// By provider name (`claude`, `codex`, a configured `command` provider…).
    pub by_provider: BTreeMap<String, Bucket>,
    /// By the model that answered; `unknown` when the receipt names none.
    pub by_model: BTreeMap<String, Bucket>,
    /// By skill; `unknown` when the receipt names none.
    pub by_skill: BTreeMap<String, Bucket>,
    /// By UTC date of the receipt record, `YYYY-MM-DD`.
    pub by_day: BTreeMap<String, Bucket>,
    /// By batch id, for dispatches that belong to a batch.
    pub by_batch: BTreeMap<String, Bucket>,
    /// Verdict counts per gate name, over the counted dispatches.
    pub gates: BTreeMap<String, GateCounts>,
    /// How the counted dispatches were billed.
    pub billing: BillingCounts,
    /// Dispatches started (within the filter) that have no receipt anywhere
    /// in the ledger: vnx was killed mid-dispatch.
    pub orphans: u64,
    /// Receipt records not counted because another record of the same
    /// dispatch is later (the dispatch branch's copy, or a re-run).
    pub duplicate_receipts: u64,
    /// Receipt records that could not be read as receipts (schema errors;
    /// `vnx verify-ledger` names them).
    pub unreadable_receipts: u64,
}

/// Counts and sums over a set of dispatches.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Bucket {
    /// Dispatches counted.
    pub dispatches: u64,
    /// With status `passed`.
    pub passed: u64,
    /// With status `failed` (the worker finished, a gate failed).
    pub failed: u64,
    /// With status `error`.
    pub error: u64,
    /// With status `timeout`.
    pub timeout: u64,
    /// With status `interrupted`.
    pub interrupted: u64,
    /// `passed / dispatches`; absent when there are no dispatches.
    pub pass_rate: Option<f64>,
    /// Tokens, summed over attempts and reviews.
    pub tokens: Usage,
    /// The four token counters added up.
    pub total_tokens: u64,
    /// Cost, micro-USD.
    pub cost_usd_micros: u64,
    /// `cost_usd_micros / passed` (every dispatch's cost, failed ones
    /// included, spread over the passed ones), micro-USD rounded down;
    /// absent when none passed.
    pub cost_per_passed_usd_micros: Option<u64>,
    /// Dispatches whose cost is unknown (no price for the model): their cost
    /// counts as 0 above.
    pub cost_unknown: u64,
    /// Wall time of a dispatch, ms.
    pub duration: DurationStats,
}

/// Order statistics of dispatch wall times, ms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DurationStats {
    /// Median; with an even count, the mean of the two middle values rounded
    /// down. Absent when there is no dispatch.
    pub median_ms: Option<u64>,
    /// 90th percentile by the nearest-rank method: the smallest value at
    /// least 90 % of the dispatches do not exceed.
    pub p90_ms: Option<u64>,
    /// Longest.
    pub max_ms: Option<u64>,
}

/// Verdict counts of one gate.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GateCounts {
    /// Verdict `pass`.
    pub pass: u64,
    /// Verdict `fail`.
    pub fail: u64,
    /// Verdict `skipped`.
    pub skipped: u64,
    /// Verdict `error`.
    pub error: u64,
    /// `pass / (pass + fail + error)`: skipped runs do not count; absent
    /// when the gate never ran.
    pub pass_rate: Option<f64>,
}

/// Billing of the counted dispatches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BillingCounts {
    /// Run in subscription mode (the CLI's own login).
    pub subscription: u64,
    /// Run with `--billing api`.
    pub api: u64,
    /// Whose CLI reported a credential other than the login
    /// (`api_key_source` present and not `none`), whatever the mode: an API
    /// account may have been billed.
    pub api_key_source_reported: u64,
}

/// `--since` text that is none of the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{text:?} is not a date: expected YYYY-MM-DD (UTC midnight), an RFC 3339 time such as \
     2026-11-21T09:30:00Z, or an age such as 12h, 7d or 2w"
)]
pub struct SinceError {
    /// The refused text.
    pub text: String,
}

/// Parses a `--since` value: `YYYY-MM-DD` (midnight UTC), RFC 3339, or an
/// age before `now` — a whole number followed by `h` (hours), `d` (days) or
/// `w` (weeks).
///
/// # Errors
/// [`SinceError`] for anything else.
pub fn parse_since(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, SinceError> {
    let err = || SinceError {
        text: text.to_owned(),
    };
    let t = text.trim();
    if let Ok(date) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return date
            .and_hms_opt(0, 0, 0)
            .map(|d| d.and_utc())
            .ok_or_else(err);
    }
    if let Ok(time) = DateTime::parse_from_rfc3339(t) {
        return Ok(time.with_timezone(&Utc));
    }
    let unit = t.chars().last().ok_or_else(err)?;
    let n: i64 = t[..t.len() - unit.len_utf8()].parse().map_err(|_| err())?;
    let age = match unit {
        'h' => chrono::Duration::try_hours(n),
        'd' => chrono::Duration::try_days(n),
        'w' => chrono::Duration::try_weeks(n),
        _ => None,
    }
    .filter(|_| n >= 0)
    .ok_or_else(err)?;
    now.checked_sub_signed(age).ok_or_else(err)
}

/// Reads the ledger at `dir` and aggregates it (see [`aggregate`]), one
/// record at a time: memory grows with the number of dispatches (a few
/// hundred bytes each), not with the size of the ledger.
///
/// # Errors
/// [`LedgerError::NoLedger`] when `dir` is not a ledger; I/O errors reading
/// segments. Lines that are not records are skipped (`vnx verify-ledger`
/// reports them).
pub fn compute(dir: &Path, filter: &StatsFilter) -> Result<Stats, LedgerError> {
    compute_many(&[dir], filter)
}

/// [`compute`] over several ledger directories at once — the committed
/// ledger and the local journal of runs not merged yet — each dispatch
/// counted once however many of them hold a copy of its receipt.
///
/// # Errors
/// As [`compute`], for any of the directories.
pub fn compute_many(dirs: &[&Path], filter: &StatsFilter) -> Result<Stats, LedgerError> {
    let mut acc = Aggregator::new(filter);
    for dir in dirs {
        vnx_ledger::store::read_manifest(dir)?;
        for path in segment_paths(dir)? {
            for item in SegmentReader::open(&path)? {
                if let Ok(record) = item? {
                    acc.add(&record);
                }
            }
        }
    }
    Ok(acc.finish())
}

/// Aggregates `dispatch.started` and `dispatch.receipt` records (others are
/// ignored), in any order.
pub fn aggregate(records: &[StoredRecord], filter: &StatsFilter) -> Stats {
    let mut acc = Aggregator::new(filter);
    for record in records {
        acc.add(record);
    }
    acc.finish()
}

/// What of a receipt the figures need: the rest (report, attempts, git
/// facts, warnings…) is dropped as soon as the record is read.
struct Counted {
    ts: DateTime<Utc>,
    provider: String,
    model: Option<String>,
    skill: Option<String>,
    batch_id: Option<String>,
    status: DispatchStatus,
    usage: Usage,
    cost_usd_micros: u64,
    cost_source: CostSource,
    duration_ms: u64,
    gates: Vec<(String, Verdict)>,
    billing: Billing,
    api_key_reported: bool,
}

impl Counted {
    fn of(ts: DateTime<Utc>, r: DispatchReceipt) -> Counted {
        Counted {
            ts,
            api_key_reported: r.api_key_source.as_deref().is_some_and(|s| s != "none"),
            provider: r.provider,
            model: r.model,
            skill: r.skill,
            batch_id: r.batch_id,
            status: r.status,
            usage: r.usage,
            cost_usd_micros: r.cost_usd_micros,
            cost_source: r.cost_source,
            duration_ms: r.duration_ms,
            gates: r.gates.into_iter().map(|g| (g.name, g.verdict)).collect(),
            billing: r.billing,
        }
    }
}

/// The running state of [`aggregate`]: one entry per dispatch.
struct Aggregator {
    since: Option<DateTime<Utc>>,
    stats: Stats,
    /// The latest receipt of each dispatch within the filter.
    latest: HashMap<String, Counted>,
    /// Every dispatch with a receipt, whenever.
    with_receipt: HashSet<String>,
    /// Dispatches started within the filter.
    started: HashSet<String>,
}

impl Aggregator {
    fn new(filter: &StatsFilter) -> Aggregator {
        Aggregator {
            since: filter.since,
            stats: Stats {
                since: filter.since.map(vnx_ledger::record::format_ts),
                ..Stats::default()
            },
            latest: HashMap::new(),
            with_receipt: HashSet::new(),
            started: HashSet::new(),
        }
    }

    fn add(&mut self, record: &StoredRecord) {
        match record.kind.as_str() {
            KIND_DISPATCH_RECEIPT => self.add_receipt(record),
            KIND_DISPATCH_STARTED => {
                let within = self
                    .since
                    .is_none_or(|since| parse_ts(&record.ts).is_some_and(|ts| ts >= since));
                if within && let Some(id) = record.body["dispatch_id"].as_str() {
                    self.started.insert(id.to_owned());
                }
            }
            _ => {}
        }
    }

    fn add_receipt(&mut self, record: &StoredRecord) {
        let (Ok(receipt), Some(ts)) = (
            DispatchReceipt::deserialize(&record.body),
            parse_ts(&record.ts),
        ) else {
            self.stats.unreadable_receipts += 1;
            return;
        };
        self.with_receipt.insert(receipt.dispatch_id.clone());
        if self.since.is_some_and(|since| ts < since) {
            return;
        }
        match self.latest.get(&receipt.dispatch_id) {
            Some(seen) if seen.ts > ts => self.stats.duplicate_receipts += 1,
            Some(_) => {
                self.stats.duplicate_receipts += 1;
                let id = receipt.dispatch_id.clone();
                self.latest.insert(id, Counted::of(ts, receipt));
            }
            None => {
                let id = receipt.dispatch_id.clone();
                self.latest.insert(id, Counted::of(ts, receipt));
            }
        }
    }

    fn finish(self) -> Stats {
        let Aggregator {
            mut stats,
            latest,
            with_receipt,
            started,
            ..
        } = self;
        stats.orphans = started
            .iter()
            .filter(|id| !with_receipt.contains(*id))
            .count() as u64;
        let mut acc: Acc = Acc::default();
        for receipt in latest.values() {
            let unknown = || "unknown".to_owned();
            let keys = [
                (Key::Total, String::new()),
                (Key::Provider, receipt.provider.clone()),
                (Key::Model, receipt.model.clone().unwrap_or_else(unknown)),
                (Key::Skill, receipt.skill.clone().unwrap_or_else(unknown)),
                (
                    Key::Day,
                    receipt.ts.date_naive().format("%Y-%m-%d").to_string(),
                ),
            ];
            let batch = receipt.batch_id.clone().map(|b| (Key::Batch, b));
            for key in keys.into_iter().chain(batch) {
                acc.buckets.entry(key).or_default().add(receipt);
            }
            for (name, verdict) in &receipt.gates {
                let counts = stats.gates.entry(name.clone()).or_default();
                match verdict {
                    Verdict::Pass => counts.pass += 1,
                    Verdict::Fail => counts.fail += 1,
                    Verdict::Skipped => counts.skipped += 1,
                    Verdict::Error => counts.error += 1,
                }
            }
            match receipt.billing {
                Billing::Subscription => stats.billing.subscription += 1,
                Billing::Api => stats.billing.api += 1,
            }
            if receipt.api_key_reported {
                stats.billing.api_key_source_reported += 1;
            }
        }
        for counts in stats.gates.values_mut() {
            counts.pass_rate = rate(counts.pass, counts.pass + counts.fail + counts.error);
        }
        for ((kind, name), bucket) in acc.buckets {
            let bucket = bucket.finish();
            match kind {
                Key::Total => stats.totals = bucket,
                Key::Provider => drop(stats.by_provider.insert(name, bucket)),
                Key::Model => drop(stats.by_model.insert(name, bucket)),
                Key::Skill => drop(stats.by_skill.insert(name, bucket)),
                Key::Day => drop(stats.by_day.insert(name, bucket)),
                Key::Batch => drop(stats.by_batch.insert(name, bucket)),
            }
        }
        stats
    }
}

fn parse_ts(ts: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(ts)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn rate(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Total,
    Provider,
    Model,
    Skill,
    Day,
    Batch,
}

#[derive(Default)]
struct Acc {
    buckets: BTreeMap<(Key, String), BucketAcc>,
}

#[derive(Default)]
struct BucketAcc {
    bucket: Bucket,
    durations: Vec<u64>,
}

impl BucketAcc {
    fn add(&mut self, r: &Counted) {
        let b = &mut self.bucket;
        b.dispatches += 1;
        match r.status {
            DispatchStatus::Passed => b.passed += 1,
            DispatchStatus::Failed => b.failed += 1,
            DispatchStatus::Error => b.error += 1,
            DispatchStatus::Timeout => b.timeout += 1,
            DispatchStatus::Interrupted => b.interrupted += 1,
        }
        b.tokens = b.tokens.plus(&r.usage);
        b.cost_usd_micros = b.cost_usd_micros.saturating_add(r.cost_usd_micros);
        if r.cost_source == CostSource::Unknown {
            b.cost_unknown += 1;
        }
        self.durations.push(r.duration_ms);
    }

    fn finish(mut self) -> Bucket {
        let mut b = self.bucket;
        b.pass_rate = rate(b.passed, b.dispatches);
        b.total_tokens = b.tokens.total();
        b.cost_per_passed_usd_micros = (b.passed > 0).then(|| b.cost_usd_micros / b.passed);
        self.durations.sort_unstable();
        b.duration = durations(&self.durations);
        b
    }
}

/// Median, p90 (nearest rank) and maximum of sorted values.
fn durations(sorted: &[u64]) -> DurationStats {
    let n = sorted.len();
    if n == 0 {
        return DurationStats::default();
    }
    let median = if n % 2 == 1 {
        sorted[n / 2]
    } else {
        // Mean of the middle two, rounded down, without overflow.
        sorted[n / 2 - 1].midpoint(sorted[n / 2])
    };
    // Nearest rank: the ceil(0.9 n)-th smallest, 1-based.
    let rank = (9 * n).div_ceil(10);
    DurationStats {
        median_ms: Some(median),
        p90_ms: Some(sorted[rank.max(1) - 1]),
        max_ms: sorted.last().copied(),
    }
}
