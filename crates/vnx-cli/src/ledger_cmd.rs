//! `vnx ledger …` and `vnx verify-ledger`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use serde_json::json;
use vnx_ledger::read::{SegmentReader, StoredRecord, segment_paths};
use vnx_ledger::{Checkpoint, Ledger, NewRecord, Report, Severity, VerifyOptions, verify_paths};

use crate::Outcome;
use crate::locate::{default_segment, locate_ledger};
use crate::out::{Out, OutputError};
use crate::term::{escape, usd};

/// `vnx ledger` subcommands.
#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Append records read from stdin: one `{"kind":…,"body":…}` object, or many as NDJSON.
    ///
    /// All records are validated first and appended under one lock with one
    /// sync; if any is invalid, nothing is appended.
    Append {
        #[command(flatten)]
        at: LedgerArg,
        /// Segment file name (default: `<writer>--<branch>.ndjson` for this machine and branch).
        #[arg(long)]
        segment: Option<String>,
        /// Print what was appended as NDJSON.
        #[arg(long)]
        json: bool,
    },
    /// Print every record readably.
    Show {
        #[command(flatten)]
        at: LedgerArg,
        /// Print the raw stored lines instead.
        #[arg(long)]
        json: bool,
    },
    /// Print the last records, across segments, by time.
    Tail {
        #[command(flatten)]
        at: LedgerArg,
        /// How many records.
        #[arg(short = 'n', long, default_value_t = 10)]
        lines: usize,
        /// Print the raw stored lines instead.
        #[arg(long)]
        json: bool,
    },
    /// Move a torn last line (left by a crash mid-append) to a quarantine file
    /// beside the segment and record the repair.
    Repair {
        /// The segment file to repair (a bare file name is looked up in the
        /// ledger directory when it is not in the current one).
        segment: PathBuf,
    },
    /// Sign a segment's head with the key git signs commits with, writing
    /// `<segment>.sig` beside it (OpenSSH SSHSIG, namespace `vnx-ledger`).
    ///
    /// `vnx gate --base` believes the records of a segment only as far as
    /// such a signature by a key in the base's `ledger/allowed_signers`
    /// vouches for them. `vnx ledger append` and `vnx approve` sign on their
    /// own when a key is configured.
    Sign {
        #[command(flatten)]
        at: LedgerArg,
        /// Segment file name (default: `<writer>--<branch>.ndjson` for this machine and branch).
        segment: Option<String>,
    },
    /// Write each segment's size and head hash, to detect truncation or
    /// rollback later with `vnx verify-ledger --checkpoint FILE`.
    Checkpoint {
        #[command(flatten)]
        at: LedgerArg,
        /// Write the checkpoint here instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// The `--ledger` option.
#[derive(Debug, Args)]
pub struct LedgerArg {
    /// Ledger directory or segment file (default: `[ledger] dir` of vnx.toml, `ledger/` at the repository root).
    #[arg(long, value_name = "PATH")]
    ledger: Option<PathBuf>,
}

/// Arguments of `vnx verify-ledger`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Ledger directories or segment files (default: `[ledger] dir` of vnx.toml, `ledger/` at the repository root).
    paths: Vec<PathBuf>,
    /// Print a machine-readable JSON report.
    #[arg(long)]
    json: bool,
    /// Treat warnings (foreign files, unbound segments, orphaned dispatches) as failures.
    #[arg(long)]
    strict: bool,
    /// Also fail if any segment was truncated, rewritten or removed behind this checkpoint.
    #[arg(long, value_name = "FILE")]
    checkpoint: Option<PathBuf>,
    /// Verify only records appended after the checkpoint (needs --checkpoint).
    #[arg(long, requires = "checkpoint")]
    since_checkpoint: bool,
}

/// Runs a `vnx ledger` subcommand.
pub fn run(command: LedgerCommand) -> Result<Outcome> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    match command {
        LedgerCommand::Append { at, segment, json } => append(&at, segment, json, &cwd),
        LedgerCommand::Show { at, json } => show(&at, json, None, &cwd),
        LedgerCommand::Tail { at, lines, json } => show(&at, json, Some(lines), &cwd),
        LedgerCommand::Repair { segment } => repair(&segment, &cwd),
        LedgerCommand::Checkpoint { at, out } => checkpoint(&at, out.as_deref(), &cwd),
        LedgerCommand::Sign { at, segment } => sign(&at, segment, &cwd),
    }
}

fn append(at: &LedgerArg, segment: Option<String>, json: bool, cwd: &Path) -> Result<Outcome> {
    let location = locate_ledger(at.ledger.as_deref(), cwd)?;
    let segment = segment
        .or(location.segment)
        .unwrap_or_else(|| default_segment(cwd));
    let mut records = Vec::new();
    let mut input_lines = Vec::new();
    let stdin = std::io::stdin();
    let mut line_no = 0usize;
    for line in stdin.lock().split(b'\n') {
        let line = line.context("cannot read stdin")?;
        line_no += 1;
        let text = std::str::from_utf8(&line).map_err(|e| {
            anyhow::anyhow!("stdin line {line_no}: not valid UTF-8 ({e}). Nothing was appended")
        })?;
        if text.trim().is_empty() {
            continue;
        }
        let record = NewRecord::from_input(text).map_err(|reason| {
            anyhow::anyhow!("stdin line {line_no}: {reason}. Nothing was appended")
        })?;
        records.push(record);
        input_lines.push(line_no);
    }
    if records.is_empty() {
        bail!("no records on stdin: pipe one {{\"kind\":…,\"body\":…}} object, or many as NDJSON");
    }
    let existed = location.dir.join(vnx_ledger::store::MANIFEST_FILE).exists();
    let ledger = Ledger::open_or_create(&location.dir)?;
    if !existed {
        eprintln!(
            "created ledger {} (id {})",
            location.dir.display(),
            ledger.ledger_id()
        );
    }
    let appended = ledger.append(&segment, &records).map_err(|e| match e {
        // Name the input the way the user sees it: by stdin line.
        vnx_ledger::LedgerError::Input { entry, reason } => {
            let line = input_lines
                .get(entry.wrapping_sub(1))
                .copied()
                .unwrap_or(entry);
            anyhow::anyhow!("stdin line {line}: {reason}. Nothing was appended")
        }
        vnx_ledger::LedgerError::RecordTooLarge { entry, kind, bytes } => {
            let line = input_lines
                .get(entry.wrapping_sub(1))
                .copied()
                .unwrap_or(entry);
            anyhow::anyhow!(
                "stdin line {line}: the `{kind}` record needs a ledger line of at least {bytes} bytes, \
                 more than the {} bytes (64 MiB) a line may have. Nothing was appended; \
                 keep large content outside the ledger and record its SHA-256 instead",
                vnx_ledger::verify::MAX_LINE_BYTES
            )
        }
        other => other.into(),
    })?;
    // Re-sign the grown segment when a key is configured; without one the
    // records are there, and the gate will say they are unsigned.
    let repo = crate::locate::repo_root(&location.dir).unwrap_or_else(|| cwd.to_path_buf());
    match vnx_core::signing::signing_key(&repo) {
        Ok(Some(key)) => {
            if let Err(e) =
                vnx_core::signing::sign_segment(&location.dir, ledger.ledger_id(), &segment, &key)
            {
                eprintln!(
                    "warning: appended, but the segment was not signed: {e}; run `vnx ledger sign {segment}`"
                );
            }
        }
        Ok(None) => eprintln!(
            "note: {segment} is unsigned, so `vnx gate --base` will not believe records added to it: {}",
            vnx_core::signing::KEY_SETUP_HINT
        ),
        Err(e) => eprintln!("warning: appended, but not signed: {e}"),
    }
    let mut out = std::io::stdout().lock();
    for a in &appended {
        if json {
            writeln!(
                out,
                "{}",
                json!({"segment": segment, "seq": a.seq, "hash": a.hash})
            )?;
        } else {
            writeln!(
                out,
                "appended seq {} to {} ({})",
                a.seq,
                segment,
                &a.hash[..16]
            )?;
        }
    }
    Ok(Outcome::Ok)
}

fn sign(at: &LedgerArg, segment: Option<String>, cwd: &Path) -> Result<Outcome> {
    let location = locate_ledger(at.ledger.as_deref(), cwd)?;
    let segment = segment
        .or(location.segment)
        .unwrap_or_else(|| default_segment(cwd));
    let ledger = Ledger::open(&location.dir)?;
    let repo = crate::locate::repo_root(&location.dir).unwrap_or_else(|| cwd.to_path_buf());
    let Some(key) = vnx_core::signing::signing_key(&repo)? else {
        bail!(
            "no signing key is configured: {}",
            vnx_core::signing::KEY_SETUP_HINT
        );
    };
    let path = vnx_core::signing::sign_segment(&location.dir, ledger.ledger_id(), &segment, &key)?;
    let head =
        vnx_ledger::signature::SegmentSignature::read(&location.dir, &segment)?.map(|s| s.head);
    match head {
        Some(head) => println!(
            "signed {segment}: {} record(s), head {}, key {} → {}",
            head.records,
            &head.head[..16],
            key.fingerprint(),
            path.display()
        ),
        None => println!("signed {segment} → {}", path.display()),
    }
    Ok(Outcome::Ok)
}

fn segments_of(at: &LedgerArg, cwd: &Path) -> Result<Vec<PathBuf>> {
    let location = locate_ledger(at.ledger.as_deref(), cwd)?;
    if let Some(segment) = location.segment {
        return Ok(vec![location.dir.join(segment)]);
    }
    if !location.dir.is_dir() {
        return Err(vnx_ledger::LedgerError::NoLedger { path: location.dir }.into());
    }
    Ok(segment_paths(&location.dir)?)
}

/// Prints every record (`last: None`) or the last `n` by time, holding one
/// record at a time (or the `n` latest for `tail`) however large the ledger.
fn show(at: &LedgerArg, json: bool, last: Option<usize>, cwd: &Path) -> Result<Outcome> {
    let mut out = Out::new();
    let mut unreadable = 0usize;
    // For `tail`: the `n` latest records by (ts, seq, reading order), the
    // earliest of them on top so it is the one dropped.
    let mut latest: BinaryHeap<Reverse<Latest>> = BinaryHeap::new();
    let mut order = 0u64;
    for path in segments_of(at, cwd)? {
        for item in SegmentReader::open(&path)? {
            let record = match item? {
                Ok(r) => r,
                Err(u) => {
                    unreadable += 1;
                    errln!(
                        "warning: {}:{}: {}",
                        escape(&u.path.display().to_string()),
                        u.line,
                        escape(&u.reason)
                    );
                    continue;
                }
            };
            match last {
                None => print_record(&mut out, &record, json)?,
                Some(0) => {}
                Some(n) => {
                    order += 1;
                    latest.push(Reverse(Latest(
                        record.ts.clone(),
                        record.seq,
                        order,
                        record,
                    )));
                    if latest.len() > n {
                        latest.pop();
                    }
                }
            }
        }
    }
    let mut tail: Vec<Latest> = latest.into_iter().map(|Reverse(l)| l).collect();
    tail.sort();
    for Latest(_, _, _, record) in &tail {
        print_record(&mut out, record, json)?;
    }
    out.finish()?;
    if unreadable > 0 {
        errln!("{unreadable} line(s) could not be read; run `vnx verify-ledger` for details");
    }
    Ok(Outcome::Ok)
}

/// A record kept by `tail`, ordered by (ts, seq, reading order).
struct Latest(String, u64, u64, StoredRecord);

impl PartialEq for Latest {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Latest {}

impl PartialOrd for Latest {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Latest {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (&self.0, self.1, self.2).cmp(&(&other.0, other.1, other.2))
    }
}

fn print_record(out: &mut Out, r: &StoredRecord, json: bool) -> Result<(), OutputError> {
    if json {
        return writeln!(out, "{}", r.raw);
    }
    let segment = r
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    writeln!(
        out,
        "{} {:<24} {}#{} {} {}",
        escape(&r.ts),
        escape(&r.kind),
        escape(&segment),
        r.seq,
        &r.hash[..12],
        escape(&summary(r))
    )
}

/// One-line summary of a record's body.
fn summary(r: &StoredRecord) -> String {
    let b = &r.body;
    let s = |k: &str| b.get(k).and_then(|v| v.as_str()).unwrap_or("-").to_owned();
    let n = |k: &str| b.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
    match r.kind.as_str() {
        "dispatch.receipt" => {
            let usage = b.get("usage");
            let tokens: u64 = [
                "input_tokens",
                "output_tokens",
                "cache_read_tokens",
                "cache_write_tokens",
            ]
            .iter()
            .filter_map(|k| {
                usage
                    .and_then(|u| u.get(*k))
                    .and_then(serde_json::Value::as_u64)
            })
            .sum();
            format!(
                "{} {} {}/{} {} tokens {} {} ms",
                s("dispatch_id"),
                s("status"),
                s("provider"),
                s("model"),
                tokens,
                usd(n("cost_usd_micros")),
                n("duration_ms")
            )
        }
        "dispatch.started" => format!(
            "{} {}/{} lane {}",
            s("dispatch_id"),
            s("provider"),
            s("model"),
            s("lane")
        ),
        "note" => s("text"),
        "repair" => format!(
            "{} torn bytes moved to {}",
            n("torn_bytes"),
            s("quarantine")
        ),
        "segment.genesis" => format!("ledger {} segment {}", s("ledger_id"), s("segment")),
        _ => {
            let text = b.to_string();
            if text.len() > 120 {
                format!("{}…", &text[..text.floor_char_boundary(120)])
            } else {
                text
            }
        }
    }
}

fn repair(segment: &Path, cwd: &Path) -> Result<Outcome> {
    // A bare segment name that is not in the current directory is one of the
    // configured ledger's segments.
    let bare = segment.parent().is_none_or(|p| p.as_os_str().is_empty());
    let location = if bare && !cwd.join(segment).exists() {
        let mut location = locate_ledger(None, cwd)?;
        location.segment = Some(segment.to_string_lossy().into_owned());
        location
    } else {
        locate_ledger(Some(segment), cwd)?
    };
    let Some(name) = location.segment else {
        bail!(
            "{} is not a segment file; pass the .ndjson file to repair",
            segment.display()
        );
    };
    let ledger = Ledger::open(&location.dir)?;
    let outcome = ledger.repair(&name)?;
    println!(
        "moved {} torn byte(s) to {}; recorded the repair as seq {}",
        outcome.torn_bytes,
        outcome.quarantine.display(),
        outcome
            .record
            .map_or_else(|| "-".into(), |r| r.seq.to_string())
    );
    Ok(Outcome::Ok)
}

fn checkpoint(at: &LedgerArg, out: Option<&Path>, cwd: &Path) -> Result<Outcome> {
    let location = locate_ledger(at.ledger.as_deref(), cwd)?;
    if location.segment.is_some() {
        bail!("--ledger must name the ledger directory for a checkpoint, not one segment");
    }
    let (cp, report) = vnx_ledger::take_checkpoint(&location.dir)?;
    let Some(cp) = cp else {
        print_report(&report);
        eprintln!("no checkpoint written: the ledger does not verify");
        return Ok(Outcome::Problems);
    };
    let bytes = cp.to_bytes();
    match out {
        Some(path) => {
            std::fs::write(path, &bytes)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!(
                "checkpoint of {} segment(s) written to {}",
                cp.segments.len(),
                path.display()
            );
        }
        None => std::io::stdout().write_all(&bytes)?,
    }
    Ok(Outcome::Ok)
}

/// Runs `vnx verify-ledger`.
pub fn verify(args: &VerifyArgs) -> Result<Outcome> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let paths = if args.paths.is_empty() {
        vec![locate_ledger(None, &cwd)?.dir]
    } else {
        args.paths.clone()
    };
    let checkpoint = args
        .checkpoint
        .as_deref()
        .map(Checkpoint::read)
        .transpose()?;
    let options = VerifyOptions {
        strict: args.strict,
        checkpoint,
        since_checkpoint: args.since_checkpoint,
        threads: 0,
    };
    let report = verify_paths(&paths, &options)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(if report.ok {
        Outcome::Ok
    } else {
        Outcome::Problems
    })
}

fn print_report(report: &Report) {
    let mut out = std::io::stdout().lock();
    let (mut errors, mut warnings) = (0usize, 0usize);
    for segment in &report.segments {
        if segment.findings.is_empty() {
            let _ = writeln!(
                out,
                "ok   {}: {} records, head seq {} {}",
                segment.path.display(),
                segment.records,
                segment
                    .head_seq
                    .map_or_else(|| "-".into(), |s| s.to_string()),
                segment.head_hash.as_deref().map_or("-", |h| &h[..16])
            );
        }
    }
    for f in report.all_findings() {
        let tag = match f.severity {
            Severity::Error => {
                errors += 1;
                "FAIL"
            }
            Severity::Warning => {
                warnings += 1;
                "warn"
            }
        };
        let line = if f.line == 0 {
            String::new()
        } else {
            format!(":{}", f.line)
        };
        let seq = f.seq.map_or_else(String::new, |s| format!(" (seq {s})"));
        let _ = writeln!(
            out,
            "{tag} {}{line}{seq}: {}: {}",
            f.path.display(),
            f.reason.label(),
            escape(&f.detail)
        );
    }
    let _ = writeln!(
        out,
        "{}: {} segment(s), {} record(s), {errors} error(s), {warnings} warning(s){}",
        if report.ok {
            "verified"
        } else {
            "NOT VERIFIED"
        },
        report.segments.len(),
        report.records(),
        if report.strict && warnings > 0 {
            " (--strict: warnings fail)"
        } else {
            ""
        }
    );
}
