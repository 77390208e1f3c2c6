//! `vnx stats`: tokens, cost, pass rates and durations of the ledger's
//! dispatches (the arithmetic is `vnx_stats`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use vnx_stats::{Bucket, Stats, StatsFilter};

use crate::Outcome;
use crate::locate::locate_ledger;
use crate::term::{escape, usd};

/// Arguments of `vnx stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Only dispatches that ended at or after DATE: YYYY-MM-DD (UTC), an
    /// RFC 3339 time, or an age such as 12h, 7d or 2w.
    #[arg(long, value_name = "DATE")]
    since: Option<String>,
    /// Print the figures as one JSON document (tokens, micro-USD, ms).
    #[arg(long)]
    json: bool,
    /// Ledger directory (default: `[ledger] dir` of vnx.toml, `ledger/` at the repository root).
    #[arg(long, value_name = "DIR")]
    ledger: Option<PathBuf>,
}

/// Runs `vnx stats`: exit 0, or 2 on a bad flag or an unreadable ledger.
pub fn run(args: &StatsArgs) -> Result<Outcome> {
    let since = args
        .since
        .as_deref()
        .map(|s| vnx_stats::parse_since(s, chrono::Utc::now()).context("--since"))
        .transpose()?;
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let location = locate_ledger(args.ledger.as_deref(), &cwd)?;
    if location.segment.is_some() {
        bail!("--ledger must name the ledger directory for `vnx stats`, not one segment");
    }
    // Without --ledger, runs not merged yet (the local journal) count too.
    let journal = args
        .ledger
        .is_none()
        .then(|| crate::locate::repo_root(&cwd).map(|r| r.join(vnx_core::pipeline::JOURNAL_DIR)))
        .flatten()
        .filter(|j| j.join(vnx_ledger::store::MANIFEST_FILE).is_file());
    let mut dirs = vec![location.dir.as_path()];
    dirs.extend(journal.as_deref());
    let stats = vnx_stats::compute_many(&dirs, &StatsFilter { since })?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&stats)?)?;
    } else {
        out!("{}", text(&stats))?;
    }
    Ok(Outcome::Ok)
}

/// `1234567` → `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn percent(rate: Option<f64>) -> String {
    rate.map_or_else(|| "-".to_owned(), |r| format!("{:.1}%", r * 100.0))
}

/// Milliseconds for people: `850ms`, `41.0s`, `12m 05s`.
fn duration(ms: Option<u64>) -> String {
    match ms {
        None => "-".to_owned(),
        Some(ms) if ms < 1_000 => format!("{ms}ms"),
        Some(ms) if ms < 60_000 => format!("{:.1}s", ms as f64 / 1_000.0),
        Some(ms) => format!("{}m {:02}s", ms / 60_000, (ms % 60_000) / 1_000),
    }
}

fn text(stats: &Stats) -> String {
    let mut out = String::new();
    let t = &stats.totals;
    let scope = stats
        .since
        .as_deref()
        .map_or_else(|| "all time".to_owned(), |s| format!("since {s}"));
    let _ = writeln!(out, "vnx stats ({scope})");
    if t.dispatches == 0 {
        let _ = writeln!(out, "no dispatch receipts");
    } else {
        let per_passed = t.cost_per_passed_usd_micros.map_or_else(
            || "no dispatch passed".to_owned(),
            |c| format!("{} per passed dispatch", usd(c)),
        );
        let _ = writeln!(
            out,
            "{} dispatches, {} passed ({}); {} tokens; {}, {per_passed}; median {}, p90 {}",
            thousands(t.dispatches),
            thousands(t.passed),
            percent(t.pass_rate),
            thousands(t.total_tokens),
            usd(t.cost_usd_micros),
            duration(t.duration.median_ms),
            duration(t.duration.p90_ms),
        );
        if t.cost_unknown > 0 {
            let _ = writeln!(
                out,
                "note: {} dispatch(es) have no known price; their cost counts as $0",
                thousands(t.cost_unknown)
            );
        }
        for (title, map) in [
            ("provider", &stats.by_provider),
            ("model", &stats.by_model),
            ("skill", &stats.by_skill),
            ("day (UTC)", &stats.by_day),
            ("batch", &stats.by_batch),
        ] {
            if !map.is_empty() {
                out.push('\n');
                out.push_str(&table(title, map));
            }
        }
        if !stats.gates.is_empty() {
            out.push('\n');
            out.push_str(&gates(stats));
        }
        let b = &stats.billing;
        let _ = writeln!(
            out,
            "\nbilling: {} subscription, {} api",
            thousands(b.subscription),
            thousands(b.api)
        );
        if b.api_key_source_reported > 0 {
            let _ = writeln!(
                out,
                "warning: {} dispatch(es) ran on an API key (the CLI's api_key_source was not the login)",
                thousands(b.api_key_source_reported)
            );
        }
    }
    if stats.orphans > 0 {
        let _ = writeln!(
            out,
            "orphans: {} dispatch(es) started without a receipt (vnx was killed mid-dispatch)",
            thousands(stats.orphans)
        );
    }
    if stats.unreadable_receipts > 0 {
        let _ = writeln!(
            out,
            "warning: {} receipt record(s) could not be read; run `vnx verify-ledger`",
            thousands(stats.unreadable_receipts)
        );
    }
    out
}

/// Right-aligned columns after a left-aligned name, widths from the content.
fn aligned(rows: &[Vec<String>]) -> String {
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            let pad = widths[c] - cell.chars().count();
            if c == 0 {
                let _ = write!(line, "{cell}{}", " ".repeat(pad));
            } else {
                let _ = write!(line, "  {}{cell}", " ".repeat(pad));
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

fn table(title: &str, map: &BTreeMap<String, Bucket>) -> String {
    let mut rows = vec![
        [
            title,
            "dispatches",
            "passed",
            "pass rate",
            "tokens",
            "cost",
            "per passed",
            "median",
            "p90",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    for (name, b) in map {
        rows.push(vec![
            escape(name),
            thousands(b.dispatches),
            thousands(b.passed),
            percent(b.pass_rate),
            thousands(b.total_tokens),
            usd(b.cost_usd_micros),
            b.cost_per_passed_usd_micros
                .map_or_else(|| "-".to_owned(), usd),
            duration(b.duration.median_ms),
            duration(b.duration.p90_ms),
        ]);
    }
    aligned(&rows)
}

fn gates(stats: &Stats) -> String {
    let mut rows = vec![
        ["gate", "pass", "fail", "skipped", "error", "pass rate"]
            .map(str::to_owned)
            .to_vec(),
    ];
    for (name, g) in &stats.gates {
        rows.push(vec![
            escape(name),
            thousands(g.pass),
            thousands(g.fail),
            thousands(g.skipped),
            thousands(g.error),
            percent(g.pass_rate),
        ]);
    }
    aligned(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(duration(Some(850)), "850ms");
        assert_eq!(duration(Some(41_049)), "41.0s");
        assert_eq!(duration(Some(725_000)), "12m 05s");
        assert_eq!(duration(None), "-");
        assert_eq!(percent(Some(2.0 / 3.0)), "66.7%");
    }

    #[test]
    fn columns_line_up() {
        let rows = vec![
            vec!["a".to_owned(), "1".to_owned()],
            vec!["long name".to_owned(), "1,000".to_owned()],
        ];
        assert_eq!(aligned(&rows), "a              1\nlong name  1,000\n");
    }
}
