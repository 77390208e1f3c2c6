//! What `vnx run` shows while a dispatch runs (stderr) and after it (stdout).

use std::fmt::Write as _;
use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use vnx_core::pipeline::{DispatchOutcome, Phase, PipelineEvent, Progress};
use vnx_types::{DispatchStatus, GateLayer, Verdict};

use crate::term::{escape, usd};

/// Plain-line mode prints worker progress at most this often.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// The live status: a spinner on a terminal, plain lines otherwise.
pub struct LiveView {
    bar: Option<ProgressBar>,
    phase: &'static str,
    last_plain: Option<Instant>,
    last_turns: u64,
    shown: Vec<String>,
}

impl LiveView {
    /// A spinner when stderr is a terminal, plain lines otherwise.
    pub fn new() -> LiveView {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        LiveView {
            bar,
            phase: "prepare",
            last_plain: None,
            last_turns: 0,
            shown: Vec::new(),
        }
    }

    fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| errln!("{text}")),
            None => errln!("{text}"),
        }
    }

    /// Shows one pipeline event.
    pub fn on_event(&mut self, event: PipelineEvent) {
        match event {
            PipelineEvent::Prepared {
                dispatch_id,
                skill,
                provider,
                model,
                lane,
                workdir,
                branch,
            } => {
                let model = model.map(|m| format!("/{m}")).unwrap_or_default();
                let branch = branch.map(|b| format!(" on {b}")).unwrap_or_default();
                self.line(&escape(&format!(
                    "vnx: dispatch {dispatch_id} · {skill} · {provider}{model} · {} lane · {}{branch}",
                    lane_name(lane),
                    workdir.display()
                )));
            }
            PipelineEvent::Warning(w) => {
                self.line(&format!("warning: {}", escape(&w)));
                self.shown.push(w);
            }
            PipelineEvent::Phase(p) => {
                self.phase = p.as_str();
                if let Some(bar) = &self.bar {
                    bar.set_message(self.phase);
                } else if p != Phase::Worker {
                    errln!("vnx: {}", self.phase);
                } else {
                    errln!("vnx: worker running");
                }
            }
            PipelineEvent::Progress(p) => {
                let text = progress_text(&p);
                if let Some(bar) = &self.bar {
                    bar.set_message(format!("{} · {text}", self.phase));
                } else {
                    let due = self.last_plain.is_none_or(|t| t.elapsed() >= PLAIN_EVERY);
                    if due || p.turns != self.last_turns {
                        errln!("vnx: {} · {text}", self.phase);
                        self.last_plain = Some(Instant::now());
                        self.last_turns = p.turns;
                    }
                }
            }
            PipelineEvent::Gate(g) => {
                if self.bar.is_none() && g.verdict != Verdict::Skipped {
                    errln!("vnx: gate {} {}", g.name, verdict_name(g.verdict));
                }
            }
        }
    }

    /// Warnings already shown live (the summary does not repeat them).
    pub fn shown_warnings(&self) -> &[String] {
        &self.shown
    }

    /// Removes the spinner.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn progress_text(p: &Progress) -> String {
    let cost = p
        .estimated_cost_usd_micros
        .map_or_else(|| "cost —".to_owned(), |c| format!("~{}", usd(c)));
    let tool = p
        .last_tool
        .as_deref()
        .map(|t| format!(" · last tool {}", escape(t)))
        .unwrap_or_default();
    format!(
        "{}s · turns {} · {} tokens · {cost}{tool}",
        p.elapsed_ms / 1000,
        p.turns,
        p.usage.total()
    )
}

fn lane_name(lane: vnx_types::Lane) -> &'static str {
    match lane {
        vnx_types::Lane::Headless => "headless",
        vnx_types::Lane::Pty => "pty",
        vnx_types::Lane::Tmux => "tmux",
    }
}

/// `pass`, `fail`, `skipped`, `error`.
pub fn verdict_name(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "pass",
        Verdict::Fail => "FAIL",
        Verdict::Skipped => "skipped",
        Verdict::Error => "ERROR",
    }
}

/// `passed`, `failed`…
pub fn status_name(s: DispatchStatus) -> &'static str {
    match s {
        DispatchStatus::Passed => "passed",
        DispatchStatus::Failed => "failed",
        DispatchStatus::Error => "error",
        DispatchStatus::Timeout => "timeout",
        DispatchStatus::Interrupted => "interrupted",
    }
}

/// The gate table, the totals and where the receipt went; the receipt's
/// warnings except those in `shown`.
pub fn summary(o: &DispatchOutcome, shown: &[String]) -> String {
    let r = &o.receipt;
    let mut out = String::new();
    let width = r
        .gates
        .iter()
        .map(|g| g.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let _ = writeln!(
        out,
        "{:<width$}  {:<13}  {:<7}  detail",
        "gate", "layer", "verdict"
    );
    for g in &r.gates {
        let layer = match g.layer {
            GateLayer::Deterministic => "deterministic",
            GateLayer::CrossModel => "cross-model",
        };
        let detail: String = g
            .detail
            .lines()
            .next()
            .unwrap_or_default()
            .chars()
            .take(100)
            .collect();
        let _ = writeln!(
            out,
            "{:<width$}  {layer:<13}  {:<7}  {}",
            escape(&g.name),
            verdict_name(g.verdict),
            escape(&detail)
        );
    }
    let model = r
        .model
        .as_deref()
        .map(|m| format!("/{m}"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "\nstatus: {} · {}{model} · {} tokens · {} · {:.1}s",
        status_name(r.status),
        r.provider,
        r.usage.total(),
        usd(r.cost_usd_micros),
        r.duration_ms as f64 / 1000.0
    );
    let origin = match r.report.origin {
        vnx_types::ReportOrigin::Worker => "worker",
        vnx_types::ReportOrigin::Synthesized => "synthesized",
    };
    let _ = writeln!(out, "report: {origin} (sha256 {})", r.report.sha256);
    for w in r.warnings.iter().filter(|w| !shown.contains(w)) {
        let _ = writeln!(out, "warning: {}", escape(w));
    }
    let _ = writeln!(
        out,
        "receipt: {} (seq {} in {})",
        o.receipt_hash,
        o.receipt_seq,
        o.ledger_dir.join(&o.segment).display()
    );
    if let Some(b) = &o.branch_receipt {
        let _ = writeln!(
            out,
            "branch: {} holds the work and the receipt (commit {}, segment {})",
            o.branch.as_deref().unwrap_or("?"),
            &b.commit[..b.commit.len().min(12)],
            b.segment
        );
    } else if let Some(branch) = &o.branch {
        let _ = writeln!(out, "branch: {branch}");
    }
    match &o.kept_worktree {
        Some(p) => {
            let _ = writeln!(out, "worktree kept: {}", p.display());
        }
        None if o.branch.is_some() => {
            let _ = writeln!(out, "worktree removed (the branch keeps the work)");
        }
        None => {}
    }
    out
}
