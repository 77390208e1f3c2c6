//! `vnx init`, `vnx skills`, `vnx worktrees` and `vnx receipts`: setting a
//! repository up and looking at what vnx keeps.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use serde_json::json;
use vnx_ledger::gate::{ApprovalState, Approvals};
use vnx_ledger::read::{StoredRecord, read_segment, segment_paths};
use vnx_prepare::SkillCatalog;

use crate::Outcome;
use crate::locate::{locate_ledger, repo_root};
use crate::term::{escape, usd};

fn cwd() -> Result<PathBuf> {
    std::env::current_dir().context("cannot read the current directory")
}

/// `vnx init`: writes a commented `vnx.toml`, creates `ledger/` and `.vnx/skills/`.
pub fn init() -> Result<Outcome> {
    let cwd = cwd()?;
    let root = repo_root(&cwd).unwrap_or(cwd);
    let report = vnx_prepare::init(&root)?;
    println!("wrote {}", report.config.display());
    println!(
        "ledger {} (id {})",
        report.ledger_dir.display(),
        report.ledger_id
    );
    for dir in &report.created_dirs {
        println!("created {}", dir.display());
    }
    if let Some(exclude) = &report.exclude_updated {
        println!("added .vnx/worktrees/ to {}", exclude.display());
    }
    for note in &report.notes {
        println!("note: {note}");
    }
    init_allowed_signers(&root, &report.ledger_dir);
    println!("next: commit vnx.toml and ledger/, then `vnx run --skill implement \"<task>\"`");
    Ok(Outcome::Ok)
}

/// Creates `ledger/allowed_signers` when there is none: a commented file
/// listing this person's signing key (when git has one configured), so the
/// first signed receipts are trusted once the file is committed.
fn init_allowed_signers(root: &std::path::Path, ledger_dir: &std::path::Path) {
    let path = ledger_dir.join(vnx_gate::ALLOWED_SIGNERS_FILE);
    if path.exists() {
        return;
    }
    let mut text = String::from(
        "# Keys whose signatures `vnx gate --base` trusts (OpenSSH allowed_signers format,\n\
         # as git's gpg.ssh.allowedSignersFile): one line per person or CI key,\n\
         #   PRINCIPAL namespaces=\"vnx-ledger,vnx-approval,git\" ssh-ed25519 AAAA…\n\
         # vnx-ledger: receipts and ledger records; vnx-approval: approvals; git: signed commits.\n\
         # The gate reads this file at the base revision: changes count once merged.\n",
    );
    match vnx_core::signing::signing_key(root) {
        Ok(Some(key)) => {
            text.push_str(&vnx_sign::allowed_signers_line(
                &crate::locate::writer_identity(),
                &key,
            ));
            text.push('\n');
        }
        _ => println!(
            "note: no signing key: {}",
            vnx_core::signing::KEY_SETUP_HINT
        ),
    }
    match std::fs::write(&path, text) {
        Ok(()) => println!("wrote {}", path.display()),
        Err(e) => println!("note: could not write {}: {e}", path.display()),
    }
}

/// `vnx skills` subcommands.
#[derive(Debug, Subcommand)]
pub enum SkillsCommand {
    /// List the skills: repository (.vnx/skills), user (~/.config/vnx/skills), built-in.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one skill: its settings and its instructions.
    Show {
        /// Skill name.
        name: String,
    },
}

/// Runs `vnx skills …`.
pub fn skills(command: &SkillsCommand) -> Result<Outcome> {
    let cwd = cwd()?;
    let root = repo_root(&cwd);
    let catalog = SkillCatalog::from_env(root.as_deref());
    match command {
        SkillsCommand::List { json } => {
            let entries = catalog.list()?;
            let mut broken = false;
            let mut out = std::io::stdout().lock();
            for e in &entries {
                broken |= e.error.is_some();
                if *json {
                    let v = json!({
                        "name": e.name, "source": e.source.to_string(), "path": e.path,
                        "description": e.description, "error": e.error,
                    });
                    writeln!(out, "{v}")?;
                } else {
                    let what = match (&e.description, &e.error) {
                        (_, Some(err)) => format!("BROKEN: {err}"),
                        (Some(d), None) => d.clone(),
                        (None, None) => String::new(),
                    };
                    writeln!(
                        out,
                        "{:<16} {:<8} {}",
                        e.name,
                        e.source.to_string(),
                        escape(&what)
                    )?;
                }
            }
            Ok(if broken {
                Outcome::Problems
            } else {
                Outcome::Ok
            })
        }
        SkillsCommand::Show { name } => {
            let skill = catalog.show(name)?;
            println!("name:        {}", skill.name);
            println!("description: {}", escape(&skill.description));
            println!("source:      {} ({})", skill.source, skill.path.display());
            let profile = serde_json::to_value(skill.profile)?;
            println!("profile:     {}", profile.as_str().unwrap_or("?"));
            if !skill.allowed_tools.is_empty() {
                println!("tools:       {}", skill.allowed_tools.join(", "));
            }
            println!("editing:     {}", skill.editing);
            if let Some(mode) = &skill.gate_mode {
                let mode = serde_json::to_value(mode)?;
                println!("gate mode:   {}", mode.as_str().unwrap_or("?"));
            }
            if let Some(schema) = &skill.report_schema {
                println!("report:      {}", schema.display());
            }
            println!("\n{}", escape(&skill.body));
            Ok(Outcome::Ok)
        }
    }
}

/// `vnx worktrees` subcommands.
#[derive(Debug, Subcommand)]
pub enum WorktreesCommand {
    /// List vnx's dispatch worktrees.
    List,
    /// Remove worktrees whose branch is merged or whose directory is gone
    /// (dirty or unmerged ones are kept, and the reason printed).
    Prune,
}

/// Runs `vnx worktrees …`.
pub fn worktrees(command: &WorktreesCommand) -> Result<Outcome> {
    let cwd = cwd()?;
    let Some(root) = repo_root(&cwd) else {
        bail!(
            "{} is not in a git repository; dispatch worktrees live in one",
            cwd.display()
        );
    };
    match command {
        WorktreesCommand::List => {
            let list = vnx_git::list(&root)?;
            if list.is_empty() {
                println!("no vnx worktrees");
            }
            for w in list {
                let mut state = Vec::new();
                if w.missing {
                    state.push("missing");
                }
                if w.dirty {
                    state.push("dirty");
                }
                if w.merged {
                    state.push("merged");
                }
                println!(
                    "{:<28} {:<36} {} {}",
                    w.dispatch_id,
                    w.branch.as_deref().unwrap_or("-"),
                    w.path.display(),
                    state.join(",")
                );
            }
            Ok(Outcome::Ok)
        }
        WorktreesCommand::Prune => {
            let report = vnx_git::prune(&root)?;
            for path in &report.removed {
                println!("removed {}", path.display());
            }
            for (path, why) in &report.kept {
                println!("kept    {} ({why})", path.display());
            }
            Ok(Outcome::Ok)
        }
    }
}

/// `vnx receipts` subcommands.
#[derive(Debug, Subcommand)]
pub enum ReceiptsCommand {
    /// List receipts: status, provider, model, tokens and cost.
    List {
        /// Ledger directory or segment (default: `[ledger] dir` of vnx.toml, `ledger/` at the repository root).
        #[arg(long, value_name = "PATH")]
        ledger: Option<PathBuf>,
        /// Print one JSON object per receipt.
        #[arg(long)]
        json: bool,
        /// Only passed receipts whose skill requires approval and that nobody
        /// has approved or rejected yet (`vnx approve`).
        #[arg(long)]
        awaiting_approval: bool,
    },
    /// Show one receipt in full, by dispatch id (or a unique prefix).
    Show {
        /// Dispatch id.
        dispatch: String,
        /// Ledger directory or segment.
        #[arg(long, value_name = "PATH")]
        ledger: Option<PathBuf>,
    },
}

/// The receipts of `--ledger` (a directory or one segment) and the
/// approvals of its whole directory (a decision may be in any segment).
/// Without `--ledger`, the local journal's receipts (`.vnx/ledger/`: runs not
/// merged yet, failed ones included) are listed too.
fn receipts_in(ledger: Option<&Path>) -> Result<(Vec<StoredRecord>, Approvals)> {
    let cwd = cwd()?;
    let location = locate_ledger(ledger, &cwd)?;
    let journal = ledger
        .is_none()
        .then(|| repo_root(&cwd).map(|r| r.join(vnx_core::pipeline::JOURNAL_DIR)))
        .flatten()
        .filter(|j| j.is_dir());
    let mut paths = match location.segment {
        Some(segment) => vec![location.dir.join(segment)],
        None if location.dir.is_dir() => segment_paths(&location.dir)?,
        None if journal.is_some() => Vec::new(),
        None => return Err(vnx_ledger::LedgerError::NoLedger { path: location.dir }.into()),
    };
    if let Some(journal) = &journal {
        paths.extend(segment_paths(journal)?);
    }
    let mut out = Vec::new();
    for path in paths {
        out.extend(
            read_segment(&path)?
                .into_iter()
                .flatten()
                .filter(|r| r.kind == "dispatch.receipt"),
        );
    }
    out.sort_by(|a, b| a.ts.cmp(&b.ts));
    let approvals = Approvals::read(&location.dir)?;
    Ok((out, approvals))
}

/// How a dispatch id, or a prefix of one, matched a set of receipts.
pub(crate) enum ReceiptLookup<'a> {
    /// One dispatch: its latest receipt by time. A dispatch can have several:
    /// the working segment's and the merged dispatch branch's copy.
    Found(&'a StoredRecord),
    /// No dispatch.
    Missing,
    /// Several dispatches: their ids, sorted.
    Ambiguous(Vec<String>),
}

/// Finds the receipt of dispatch `wanted` among `receipts`: an exact id
/// wins, else every dispatch whose id starts with `wanted`.
pub(crate) fn lookup_receipt<'a>(
    receipts: impl IntoIterator<Item = &'a StoredRecord>,
    wanted: &str,
) -> ReceiptLookup<'a> {
    let id_of = |r: &StoredRecord| {
        r.body["dispatch_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let receipts: Vec<&StoredRecord> = receipts.into_iter().collect();
    let exact: Vec<&StoredRecord> = receipts
        .iter()
        .copied()
        .filter(|r| id_of(r) == wanted)
        .collect();
    let matching = if exact.is_empty() && !wanted.is_empty() {
        receipts
            .into_iter()
            .filter(|r| id_of(r).starts_with(wanted))
            .collect()
    } else {
        exact
    };
    let mut ids: Vec<String> = matching.iter().map(|r| id_of(r)).collect();
    ids.sort();
    ids.dedup();
    match (
        ids.len(),
        matching
            .into_iter()
            .reduce(|a, b| if b.ts >= a.ts { b } else { a }),
    ) {
        (1, Some(latest)) => ReceiptLookup::Found(latest),
        (0, _) | (_, None) => ReceiptLookup::Missing,
        _ => ReceiptLookup::Ambiguous(ids),
    }
}

/// Who vouches for each listed receipt, under the working tree's
/// `allowed_signers` beside its segment: the signer's principal, `local`
/// for the journal's records (never committed, never signed), `unsigned`
/// otherwise — a receipt anyone could have appended, which `vnx gate
/// --base` does not believe.
struct Signatures {
    /// Segment path → (principal, records its signature vouches for).
    vouched: std::collections::HashMap<PathBuf, (String, u64)>,
}

impl Signatures {
    fn of(receipts: &[StoredRecord]) -> Signatures {
        let now = chrono::Utc::now().timestamp();
        let mut vouched = std::collections::HashMap::new();
        let mut seen = std::collections::HashSet::new();
        for path in receipts.iter().map(|r| r.path.clone()) {
            if !seen.insert(path.clone()) {
                continue;
            }
            let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
                continue;
            };
            let name = name.to_string_lossy();
            let Ok(signers) =
                vnx_sign::AllowedSigners::load(&dir.join(vnx_gate::ALLOWED_SIGNERS_FILE))
            else {
                continue;
            };
            let (Ok(manifest), Ok(lines)) =
                (vnx_ledger::store::read_manifest(dir), read_segment(&path))
            else {
                continue;
            };
            let hashes: Vec<String> = lines
                .iter()
                .map(|l| l.as_ref().map(|r| r.hash.clone()).unwrap_or_default())
                .collect();
            if let vnx_gate::SegmentTrust::Signed {
                principal, records, ..
            } = vnx_gate::segment_trust(dir, &name, &manifest.ledger_id, &hashes, &signers, now)
            {
                vouched.insert(path, (principal, records));
            }
        }
        Signatures { vouched }
    }

    fn cell(&self, receipt: &StoredRecord) -> String {
        match self.vouched.get(&receipt.path) {
            Some((principal, records)) if receipt.line <= *records => principal.clone(),
            _ if receipt
                .path
                .parent()
                .is_some_and(|d| d.ends_with(vnx_core::pipeline::JOURNAL_DIR)) =>
            {
                "local".to_owned()
            }
            _ => "unsigned".to_owned(),
        }
    }
}

/// The approval column: `-` when not required, else the state.
fn approval_cell(receipt: &StoredRecord, approvals: &Approvals) -> String {
    match approvals.state_of(receipt) {
        ApprovalState::Awaiting if approvals.awaits_approval(receipt) => {
            "awaiting approval".to_owned()
        }
        // Not required, or required of a receipt that did not pass (which
        // cannot be approved).
        ApprovalState::NotRequired | ApprovalState::Awaiting => "-".to_owned(),
        ApprovalState::Approved(d) => format!("approved by {}", d.by),
        ApprovalState::Rejected(d) => format!("rejected by {}", d.by),
    }
}

/// Runs `vnx receipts …`.
pub fn receipts(command: &ReceiptsCommand) -> Result<Outcome> {
    match command {
        ReceiptsCommand::List {
            ledger,
            json,
            awaiting_approval,
        } => {
            let (receipts, approvals) = receipts_in(ledger.as_deref())?;
            let signed = Signatures::of(&receipts);
            let mut out = std::io::stdout().lock();
            if !json {
                writeln!(
                    out,
                    "{:<24} {:<28} {:<11} {:<22} {:>10} {:>10}  {:<20} approval",
                    "time", "dispatch", "status", "provider/model", "tokens", "cost", "signed by"
                )?;
            }
            for r in receipts
                .iter()
                .filter(|r| !awaiting_approval || approvals.awaits_approval(r))
            {
                let b = &r.body;
                let s = |k: &str| b[k].as_str().unwrap_or("-").to_owned();
                let tokens: u64 = [
                    "input_tokens",
                    "output_tokens",
                    "cache_read_tokens",
                    "cache_write_tokens",
                ]
                .iter()
                .filter_map(|k| b["usage"][k].as_u64())
                .sum();
                let cost = b["cost_usd_micros"].as_u64().unwrap_or(0);
                if *json {
                    let v = json!({"ts": r.ts, "dispatch_id": s("dispatch_id"), "status": s("status"), "skill": b["skill"],
                        "provider": s("provider"), "model": b["model"], "tokens": tokens, "cost_usd_micros": cost,
                        "hash": r.hash, "segment": r.path, "line": r.line, "approval": approvals.state_of(r),
                        "awaiting_approval": approvals.awaits_approval(r), "signed_by": signed.cell(r)});
                    writeln!(out, "{v}")?;
                } else {
                    writeln!(
                        out,
                        "{:<24} {:<28} {:<11} {:<22} {:>10} {:>10}  {:<20} {}",
                        r.ts,
                        escape(&s("dispatch_id")),
                        s("status"),
                        escape(&format!("{}/{}", s("provider"), s("model"))),
                        tokens,
                        usd(cost),
                        escape(&signed.cell(r)),
                        escape(&approval_cell(r, &approvals))
                    )?;
                }
            }
            Ok(Outcome::Ok)
        }
        ReceiptsCommand::Show { dispatch, ledger } => {
            let (receipts, approvals) = receipts_in(ledger.as_deref())?;
            match lookup_receipt(&receipts, dispatch) {
                ReceiptLookup::Missing => {
                    bail!("no receipt for dispatch {dispatch:?}; `vnx receipts list` shows the ids")
                }
                ReceiptLookup::Found(r) => {
                    let shown = json!({"segment": r.path, "line": r.line, "seq": r.seq, "ts": r.ts, "hash": r.hash,
                        "approval": approvals.state_of(r), "receipt": r.body});
                    println!("{}", escape(&serde_json::to_string_pretty(&shown)?));
                    Ok(Outcome::Ok)
                }
                ReceiptLookup::Ambiguous(ids) => bail!(
                    "{dispatch:?} matches {} receipts ({}); give more of the id",
                    ids.len(),
                    ids.join(", ")
                ),
            }
        }
    }
}
