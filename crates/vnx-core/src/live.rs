//! Writing and reading `.vnx/runs/<dispatch-id>/live.json` (see
//! [`vnx_types::LiveStatus`]): the hint dashboards read while a dispatch runs.
//!
//! Writes are atomic (temporary file in the same directory, then rename) and
//! best effort: a failed write never fails a dispatch, it only leaves the
//! board a step behind. Progress rewrites are throttled to one per
//! [`PROGRESS_INTERVAL`]; phase changes are written at once.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use vnx_types::{LIVE_STATUS_FILE, LivePhase, LiveStatus, Usage};

use crate::pipeline::{Phase, PipelineEvent, RUNS_DIR};

/// Least time between two progress rewrites of `live.json`.
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);

/// `<root>/.vnx/runs/<dispatch_id>`: a dispatch's run directory.
pub fn run_dir(root: &Path, dispatch_id: &str) -> PathBuf {
    root.join(RUNS_DIR).join(dispatch_id)
}

/// Writes `status` to `<run_dir>/live.json` atomically, creating `run_dir`.
///
/// # Errors
/// The I/O error of creating the directory, writing or renaming.
pub fn write_live_status(run_dir: &Path, status: &LiveStatus) -> std::io::Result<()> {
    std::fs::create_dir_all(run_dir)?;
    let tmp = run_dir.join(format!(".{LIVE_STATUS_FILE}.{}.tmp", std::process::id()));
    let text = serde_json::to_vec(status).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, run_dir.join(LIVE_STATUS_FILE))
}

/// Reads `<run_dir>/live.json`; `None` when absent or unreadable (a hint,
/// never an error).
pub fn read_live_status(run_dir: &Path) -> Option<LiveStatus> {
    let text = std::fs::read(run_dir.join(LIVE_STATUS_FILE)).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Now, RFC 3339 UTC with milliseconds.
pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Follows a dispatch's [`PipelineEvent`]s and keeps `live.json` current.
pub(crate) struct LiveWriter {
    dir: PathBuf,
    status: LiveStatus,
    started: Instant,
    last_write: Option<Instant>,
}

impl LiveWriter {
    /// Starts with phase `worker` (the started record is written) and writes once.
    pub(crate) fn start(dir: PathBuf, mut status: LiveStatus) -> Self {
        status.phase = LivePhase::Worker;
        status.started_at = Some(now_rfc3339());
        status.waiting_for = None;
        let mut w = LiveWriter {
            dir,
            status,
            started: Instant::now(),
            last_write: None,
        };
        w.write();
        w
    }

    fn write(&mut self) {
        self.status.updated_at = now_rfc3339();
        self.status.elapsed_ms = self.started.elapsed().as_millis() as u64;
        let _ = write_live_status(&self.dir, &self.status);
        self.last_write = Some(Instant::now());
    }

    /// Takes one pipeline event into account.
    pub(crate) fn observe(&mut self, event: &PipelineEvent) {
        match event {
            PipelineEvent::Phase(phase) => {
                self.status.phase = match phase {
                    Phase::Worker => LivePhase::Worker,
                    Phase::Commit => LivePhase::Commit,
                    Phase::Govern => LivePhase::Govern,
                    Phase::Gates => LivePhase::Gates,
                    Phase::Review => LivePhase::Review,
                    Phase::Receipt | Phase::Cleanup => LivePhase::Receipt,
                };
                self.write();
            }
            PipelineEvent::Progress(p) => {
                self.status.turns = p.turns;
                self.status.usage = p.usage;
                self.status.cost_usd_micros = p.estimated_cost_usd_micros;
                self.status.last_tool.clone_from(&p.last_tool);
                if self
                    .last_write
                    .is_none_or(|t| t.elapsed() >= PROGRESS_INTERVAL)
                {
                    self.write();
                }
            }
            PipelineEvent::Prepared { .. } | PipelineEvent::Warning(_) | PipelineEvent::Gate(_) => {
            }
        }
    }

    /// The receipt is written: final figures and status.
    pub(crate) fn finish(&mut self, receipt: &vnx_types::DispatchReceipt) {
        self.status.phase = LivePhase::Done;
        self.status.status = Some(receipt.status);
        self.status.usage = receipt.usage;
        self.status.cost_usd_micros = Some(receipt.cost_usd_micros);
        self.status.model.clone_from(&receipt.model);
        self.write();
    }
}

/// A fresh status for `dispatch_id` in phase `phase`, nothing measured yet.
pub fn new_live_status(
    dispatch_id: &str,
    skill: &str,
    provider: &str,
    model: Option<&str>,
    phase: LivePhase,
) -> LiveStatus {
    LiveStatus {
        dispatch_id: dispatch_id.to_owned(),
        batch_id: None,
        batch_entry: None,
        skill: skill.to_owned(),
        provider: provider.to_owned(),
        model: model.map(str::to_owned),
        phase,
        waiting_for: None,
        started_at: None,
        updated_at: now_rfc3339(),
        elapsed_ms: 0,
        turns: 0,
        usage: Usage::default(),
        cost_usd_micros: None,
        last_tool: None,
        status: None,
        pid: std::process::id(),
    }
}
