//! `vnx batch FILE`: many governed dispatches under caps (the scheduler is
//! `vnx_core::batch`). One live line per running dispatch plus a totals line
//! on a terminal (indicatif), plain lines otherwise; a table at the end.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use vnx_core::batch::{BatchEvent, BatchFile, BatchOptions, BatchOutcome, EntryStatus};
use vnx_core::pipeline::PipelineEvent;
use vnx_core::{CancelToken, EnvSource};

use crate::Outcome;
use crate::run_cmd::{DispatchArgs, watch_signals};
use crate::term::{escape, usd};

/// Arguments of `vnx batch`.
#[derive(Debug, Args)]
pub struct BatchArgs {
    /// The batch file: TOML with `[[dispatch]]` tables, or JSONL (one
    /// object per line). Fields: id, skill, prompt, provider, model, lane,
    /// depends_on, retry_with, timeout, max_turns.
    pub file: PathBuf,
    /// Dispatches running at once (default: `[batch] max_parallel`, 4).
    #[arg(long, value_name = "N")]
    pub max_parallel: Option<usize>,
    /// Check the file (ids, depends_on, cycles, skills, providers) and run nothing.
    #[arg(long)]
    pub check: bool,
    /// Provider, model, lane, limits, gates, billing, ledger, review: for
    /// the entries that set none themselves.
    #[command(flatten)]
    pub dispatch: DispatchArgs,
    /// Keep the worktrees of passed dispatches.
    #[arg(long)]
    pub keep: bool,
    /// Print the batch outcome as JSON.
    #[arg(long)]
    pub json: bool,
    /// Use this batch id instead of a fresh one (tests, scripted runs).
    #[arg(long, value_name = "ID", hide = true)]
    pub batch_id: Option<String>,
}

/// Runs `vnx batch`. Exit code as for `vnx run`, for the worst entry: 0 all
/// passed, 1 a dispatch failed its gates or an entry was skipped, 2 usage or
/// an invalid batch file, 3 a worker error, timeout or interruption.
pub fn run(args: &BatchArgs) -> Result<Outcome> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let file = BatchFile::read(&cwd.join(&args.file))?;
    let mut options = BatchOptions::new(&cwd);
    options.max_parallel = args.max_parallel;
    options.overrides = args.dispatch.overrides(&cwd)?;
    options.keep = args.keep;
    options.writer = crate::locate::writer_identity();
    options.env = EnvSource::Inherit;
    options.review = args.dispatch.review();
    options.batch_id.clone_from(&args.batch_id);
    if args.check {
        let n = vnx_core::batch::check_batch(&file, &options)?;
        outln!(
            "{}: {n} dispatches, all valid",
            escape(&file.path.display().to_string())
        )?;
        return Ok(Outcome::Ok);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let cancel = CancelToken::new();
        let signals = watch_signals(
            cancel.clone(),
            "vnx: interrupted; no new dispatches start, running ones are stopped and get their receipts… (Ctrl-C again to quit at once, leaving orphaned dispatches)",
        );
        let mut view = BatchView::new(&file);
        let result =
            vnx_core::batch::run_batch(&file, &options, &mut |e| view.on_event(e), &cancel).await;
        view.finish();
        signals.abort();
        let outcome = result?;
        if args.json {
            outln!("{}", serde_json::to_string_pretty(&outcome)?)?;
        } else {
            out!("{}", summary(&outcome))?;
        }
        Ok(match outcome.worst() {
            EntryStatus::Passed => Outcome::Ok,
            EntryStatus::Failed | EntryStatus::Skipped => Outcome::Problems,
            EntryStatus::Error
            | EntryStatus::Timeout
            | EntryStatus::Interrupted
            | EntryStatus::NotStarted => Outcome::WorkerFailed,
        })
    })
}

/// Running totals of the batch.
#[derive(Default)]
struct Totals {
    entries: usize,
    running: usize,
    passed: usize,
    not_passed: usize,
    tokens: u64,
    cost_micros: u64,
}

/// The live display: a bar per running dispatch and a totals bar on a
/// terminal; plain lines otherwise.
struct BatchView {
    multi: Option<MultiProgress>,
    totals_bar: Option<ProgressBar>,
    bars: HashMap<usize, ProgressBar>,
    ids: Vec<String>,
    totals: Totals,
    batch_id: String,
    /// Warnings already printed: the same one (a dirty tree…) from every
    /// dispatch is shown once.
    warned: std::collections::HashSet<String>,
}

impl BatchView {
    fn new(file: &BatchFile) -> Self {
        let multi = std::io::stderr().is_terminal().then(MultiProgress::new);
        let totals_bar = multi.as_ref().map(|m| {
            let bar = m.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        BatchView {
            multi,
            totals_bar,
            bars: HashMap::new(),
            ids: file.entries.iter().map(|e| e.id.clone()).collect(),
            totals: Totals {
                entries: file.entries.len(),
                ..Totals::default()
            },
            batch_id: String::new(),
            warned: std::collections::HashSet::new(),
        }
    }

    fn line(&self, text: &str) {
        match &self.multi {
            Some(m) => {
                let _ = m.println(text);
            }
            None => errln!("{text}"),
        }
    }

    fn refresh_totals(&self) {
        if let Some(bar) = &self.totals_bar {
            let t = &self.totals;
            bar.set_message(format!(
                "batch {} · {} running · {} passed · {} not passed · {} waiting · {} tokens · {}",
                self.batch_id,
                t.running,
                t.passed,
                t.not_passed,
                t.entries - t.running - t.passed - t.not_passed,
                t.tokens,
                usd(t.cost_micros)
            ));
        }
    }

    fn id(&self, entry: usize) -> String {
        escape(self.ids.get(entry).map_or("?", String::as_str))
    }

    fn on_event(&mut self, event: BatchEvent) {
        match event {
            BatchEvent::Begin {
                batch_id,
                entries,
                max_parallel,
            } => {
                self.batch_id.clone_from(&batch_id);
                self.line(&format!(
                    "vnx: batch {batch_id} · {entries} dispatches · at most {max_parallel} at once"
                ));
            }
            BatchEvent::Started {
                entry,
                dispatch_id,
                provider,
                model,
                retry,
                ..
            } => {
                self.totals.running += 1;
                let model = model.map(|m| format!("/{m}")).unwrap_or_default();
                let what = if retry { "retrying" } else { "started" };
                let text = escape(&format!(
                    "{what} {} · {dispatch_id} · {provider}{model}",
                    self.id(entry)
                ));
                if let Some(m) = &self.multi {
                    let bar = m.insert_before(
                        self.totals_bar.as_ref().unwrap_or(&ProgressBar::hidden()),
                        ProgressBar::new_spinner(),
                    );
                    bar.set_style(
                        ProgressStyle::with_template("  {spinner} {prefix} {msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    bar.set_prefix(self.id(entry));
                    bar.set_message(format!("{provider}{model} · starting"));
                    bar.enable_steady_tick(Duration::from_millis(120));
                    self.bars.insert(entry, bar);
                } else {
                    errln!("vnx: {text}");
                }
            }
            BatchEvent::Pipeline { entry, event } => self.on_pipeline(entry, event),
            BatchEvent::Finished { entry, dispatch } => {
                self.totals.running = self.totals.running.saturating_sub(1);
                self.totals.tokens += dispatch.usage.total();
                self.totals.cost_micros += dispatch.cost_usd_micros;
                if let Some(bar) = self.bars.remove(&entry) {
                    bar.finish_and_clear();
                }
                let status = dispatch
                    .status
                    .map_or("error", crate::run_cmd::run_view::status_name);
                let why = dispatch
                    .error
                    .as_deref()
                    .map(|e| format!(" · {e}"))
                    .unwrap_or_default();
                self.line(&escape(&format!(
                    "vnx: {status} {} · {} · {:.1}s · {} tokens · {}{why}",
                    self.id(entry),
                    if dispatch.dispatch_id.is_empty() {
                        "no dispatch"
                    } else {
                        &dispatch.dispatch_id
                    },
                    dispatch.duration_ms as f64 / 1000.0,
                    dispatch.usage.total(),
                    usd(dispatch.cost_usd_micros)
                )));
            }
            BatchEvent::EntryDone { entry, report } => {
                if report.status == EntryStatus::Passed {
                    self.totals.passed += 1;
                } else {
                    self.totals.not_passed += 1;
                }
                if report.dispatches.is_empty() {
                    self.line(&escape(&format!(
                        "vnx: {} {}{}",
                        report.status.as_str(),
                        self.id(entry),
                        report
                            .reason
                            .as_deref()
                            .map(|r| format!(" · {r}"))
                            .unwrap_or_default()
                    )));
                }
            }
            BatchEvent::Paused { provider, for_ms } => {
                self.line(&escape(&format!(
                    "vnx: {provider} is rate-limited; its dispatches wait {:.0}s",
                    for_ms as f64 / 1000.0
                )));
            }
            BatchEvent::Cancelling { running } => {
                self.line(&format!(
                    "vnx: cancelling: {running} running dispatch(es) will be interrupted and get receipts"
                ));
            }
        }
        self.refresh_totals();
    }

    fn on_pipeline(&mut self, entry: usize, event: PipelineEvent) {
        let bar = self.bars.get(&entry);
        match event {
            PipelineEvent::Phase(p) => {
                if let Some(bar) = bar {
                    bar.set_message(p.as_str());
                }
            }
            PipelineEvent::Progress(p) => {
                if let Some(bar) = bar {
                    let cost = p
                        .estimated_cost_usd_micros
                        .map_or_else(|| "cost —".to_owned(), |c| format!("~{}", usd(c)));
                    bar.set_message(format!(
                        "worker · {}s · turns {} · {} tokens · {cost}",
                        p.elapsed_ms / 1000,
                        p.turns,
                        p.usage.total()
                    ));
                }
            }
            PipelineEvent::Warning(w) => {
                if self.warned.insert(w.clone()) {
                    let id = self.id(entry);
                    self.line(&format!("warning: {id}: {}", escape(&w)));
                }
            }
            PipelineEvent::Prepared { .. } | PipelineEvent::Gate(_) => {}
        }
    }

    fn finish(&self) {
        for bar in self.bars.values() {
            bar.finish_and_clear();
        }
        if let Some(bar) = &self.totals_bar {
            bar.finish_and_clear();
        }
    }
}

/// The table printed at the end.
fn summary(o: &BatchOutcome) -> String {
    let mut out = String::new();
    let width = o
        .entries
        .iter()
        .map(|e| e.id.len())
        .max()
        .unwrap_or(2)
        .max(5);
    let _ = writeln!(
        out,
        "\nbatch {} · makespan {:.1}s · at most {} of {} running at once{}",
        o.batch_id,
        o.makespan_ms as f64 / 1000.0,
        o.max_running,
        o.max_parallel,
        if o.cancelled { " · cancelled" } else { "" }
    );
    let _ = writeln!(
        out,
        "{:<width$}  {:<11}  {:<28}  {:>8}  {:>10}  {:>9}  receipt",
        "entry", "status", "dispatch", "time", "tokens", "cost"
    );
    let (mut tokens, mut cost) = (0u64, 0u64);
    for e in &o.entries {
        let last = e.dispatches.last();
        tokens += e.dispatches.iter().map(|d| d.usage.total()).sum::<u64>();
        cost += e.dispatches.iter().map(|d| d.cost_usd_micros).sum::<u64>();
        let _ = writeln!(
            out,
            "{:<width$}  {:<11}  {:<28}  {:>7.1}s  {:>10}  {:>9}  {}",
            escape(&e.id),
            e.status.as_str(),
            last.map_or("—", |d| d.dispatch_id.as_str()),
            e.dispatches.iter().map(|d| d.duration_ms).sum::<u64>() as f64 / 1000.0,
            e.dispatches.iter().map(|d| d.usage.total()).sum::<u64>(),
            usd(e.dispatches.iter().map(|d| d.cost_usd_micros).sum()),
            last.and_then(|d| d.receipt_hash.as_deref())
                .map_or("—".to_owned(), |h| h[..h.len().min(16)].to_owned())
        );
        if e.status != EntryStatus::Passed
            && let Some(r) = &e.reason
        {
            let _ = writeln!(out, "{:<width$}  ↳ {}", "", escape(r));
        }
    }
    let passed = o
        .entries
        .iter()
        .filter(|e| e.status == EntryStatus::Passed)
        .count();
    let _ = writeln!(
        out,
        "{passed}/{} passed · {tokens} tokens · {}",
        o.entries.len(),
        usd(cost)
    );
    out
}
