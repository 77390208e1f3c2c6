//! The tmux lane: an interactive CLI in an ephemeral tmux session on vnx's own
//! tmux server.
//!
//! Mechanics only; what makes a given CLI ready and how its `Stop` hook
//! writes the marker is the caller's business. The screen text is used for
//! exactly one thing, the readiness check; completion comes only from the
//! marker file, never from what the screen shows.
//!
//! The server runs on the socket the caller names (`tmux -S`), never the
//! user's default server, is started with `-f /dev/null` (the user's
//! `.tmux.conf` cannot change its behaviour) and an empty environment. Each
//! pane's environment is exactly the invocation's resolved environment plus
//! what tmux adds (`TERM`, `TMUX`, `TMUX_PANE`, `TERM_PROGRAM*`); it reaches
//! the pane through a `0600` file that a `/bin/sh` launcher sources and
//! deletes before `exec`ing the program, never through tmux's command line
//! (the server keeps the argv of the client that started it, visible in `ps`).
//! `remain-on-exit` is on, so a pane that dies keeps its exit status until
//! vnx reads it and kills the session. With its last session gone the server
//! exits (`exit-empty`).

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use tokio::time::{Instant, sleep, timeout};
use vnx_types::Lane;

use crate::eventlog::EventLog;
use crate::kill::{ProcState, kill_session, proc_state, signal_group};
use crate::{
    CancelToken, EndedBy, ExecError, ExitStatus, Invocation, RunOptions, RunReport, TimeoutKind,
};

/// How the tmux lane knows the CLI is ready for its instruction, judged on
/// the visible pane text (`tmux capture-pane -p`).
#[derive(Clone)]
pub enum Readiness {
    /// Do not wait.
    Immediate,
    /// The screen contains this text (e.g. claude's `❯` prompt).
    Contains(String),
    /// The predicate returns true for the screen text (e.g. a regex match).
    Predicate(Arc<dyn Fn(&str) -> bool + Send + Sync>),
}

impl Readiness {
    fn is_ready(&self, screen: &str) -> bool {
        match self {
            Readiness::Immediate => true,
            Readiness::Contains(s) => screen.contains(s.as_str()),
            Readiness::Predicate(f) => f(screen),
        }
    }
}

impl fmt::Debug for Readiness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Readiness::Immediate => f.write_str("Immediate"),
            Readiness::Contains(s) => f.debug_tuple("Contains").field(s).finish(),
            Readiness::Predicate(_) => f.write_str("Predicate(..)"),
        }
    }
}

/// One dispatch's tmux session: where, how to tell it is ready, and which
/// marker file means "the turn ended".
#[derive(Debug, Clone)]
pub struct TmuxLane {
    /// The tmux binary. Default `tmux` (looked up in vnx's `PATH`).
    pub tmux: PathBuf,
    /// vnx's own tmux server socket (`tmux -S`). Its directory is created if
    /// missing.
    pub socket: PathBuf,
    /// The session name, unique per dispatch: ASCII letters, digits, `-`, `_`.
    pub session: String,
    /// When the CLI is ready for the instruction.
    pub readiness: Readiness,
    /// How long readiness may take. Default 60 s.
    pub ready_timeout: Duration,
    /// The marker file the caller's `Stop` hook creates when the turn ends.
    /// One left from before is deleted when the run starts.
    pub marker: PathBuf,
    /// Pause between pasting the instruction and pressing Enter. Default 1 s.
    pub enter_delay: Duration,
    /// How often the screen, the marker and the pane are polled. Default 200 ms.
    pub poll_interval: Duration,
    /// Window width in columns. Default 200.
    pub cols: u16,
    /// Window height in rows. Default 50.
    pub rows: u16,
    /// Scrollback lines kept for the final capture. Default 50 000.
    pub history_lines: u32,
}

impl TmuxLane {
    /// A lane with the defaults above.
    pub fn new(
        socket: impl Into<PathBuf>,
        session: impl Into<String>,
        readiness: Readiness,
        marker: impl Into<PathBuf>,
    ) -> Self {
        TmuxLane {
            tmux: PathBuf::from("tmux"),
            socket: socket.into(),
            session: session.into(),
            readiness,
            ready_timeout: Duration::from_mins(1),
            marker: marker.into(),
            enter_delay: Duration::from_secs(1),
            poll_interval: Duration::from_millis(200),
            cols: 200,
            rows: 50,
            history_lines: 50_000,
        }
    }

    /// Runs `inv` in a new detached tmux session: waits for
    /// [`TmuxLane::readiness`], pastes [`Invocation::stdin`] as the
    /// instruction (`load-buffer` from stdin, `paste-buffer -p -d`, so a
    /// multi-line instruction arrives as one bracketed paste), presses Enter
    /// after [`TmuxLane::enter_delay`], then polls for [`TmuxLane::marker`].
    /// Ends as [`EndedBy::Finished`] when the marker appears, `Exited` if the
    /// CLI dies first, `TimedOut` at [`RunOptions::total_timeout`] or the
    /// ready timeout, `Interrupted` on `cancel`. Either way the final pane
    /// text (with scrollback) is saved to the event log, the pane's process
    /// group gets `SIGTERM` then `SIGKILL` after [`RunOptions::term_grace`],
    /// every process left in the pane's session is killed, and the tmux
    /// session is killed. Dropping the future does the same kills.
    ///
    /// # Errors
    /// [`ExecError::Invalid`] for a bad session name, [`ExecError::Spawn`]
    /// if tmux cannot be run, [`ExecError::Tmux`] if creating the session or
    /// delivering the instruction fails, [`ExecError::EventLog`].
    pub async fn run(
        &self,
        inv: &Invocation,
        opts: &RunOptions,
        cancel: &CancelToken,
    ) -> Result<RunReport, ExecError> {
        let start = Instant::now();
        if self.session.is_empty()
            || !self
                .session
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(ExecError::Invalid(format!(
                "tmux session name {:?} must be non-empty ASCII letters, digits, '-' or '_'",
                self.session
            )));
        }
        match tokio::fs::remove_file(&self.marker).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(ExecError::Io {
                    context: "removing a stale marker file",
                    source,
                });
            }
        }
        if let Some(dir) = self.socket.parent().filter(|d| !d.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|source| ExecError::Io {
                    context: "creating the tmux socket directory",
                    source,
                })?;
        }
        let mut log = EventLog::create(&opts.event_log).await?;

        let created = self.new_session(inv).await;
        let (pane_id, pane_pid) = created.inspect_err(|_| {
            let _ = std::fs::remove_file(self.env_file());
        })?;
        let mut guard = SessionGuard {
            env_file: self.env_file(),
            tmux: self.tmux.clone(),
            socket: self.socket.clone(),
            session: self.session.clone(),
            pane_pid,
            armed: true,
        };
        let total = opts.total_timeout.map(|d| start + d);

        let ended = self.drive(inv, (&pane_id, pane_pid), total, cancel).await?;

        let screen = self
            .tmux_cmd(
                &[
                    "capture-pane",
                    "-p",
                    "-J",
                    "-S",
                    "-",
                    "-E",
                    "-",
                    "-t",
                    &pane_id,
                ],
                None,
            )
            .await
            .unwrap_or_default();
        log.write(&screen).await?;
        let (exit, killed) = self.stop_pane(&pane_id, pane_pid, opts.term_grace).await;
        // Best effort: the pane may already be gone with its session.
        let _ = self
            .tmux_cmd(&["kill-session", "-t", &format!("={}", self.session)], None)
            .await;
        guard.armed = false;
        // Normally the launcher already deleted it.
        let _ = tokio::fs::remove_file(self.env_file()).await;
        let (event_log_path, event_log_sha256, _) = log.finish().await?;
        Ok(RunReport {
            lane: Lane::Tmux,
            pid: Some(pane_pid),
            exit,
            ended_by: ended,
            killed,
            pipes_abandoned: false,
            duration_ms: start.elapsed().as_millis() as u64,
            stdout_bytes: 0,
            lines: 0,
            oversize_lines: 0,
            stderr_bytes: 0,
            stderr_tail: Vec::new(),
            event_log_path,
            event_log_sha256,
        })
    }

    /// Readiness, delivery, then the marker. Returns how the run ended.
    async fn drive(
        &self,
        inv: &Invocation,
        (pane, pane_pid): (&str, u32),
        total: Option<Instant>,
        cancel: &CancelToken,
    ) -> Result<EndedBy, ExecError> {
        let ready_by = Instant::now() + self.ready_timeout;
        loop {
            if let Some(end) = self.check_common((pane, pane_pid), total, cancel).await {
                return Ok(end);
            }
            let screen = self
                .tmux_cmd(&["capture-pane", "-p", "-t", pane], None)
                .await?;
            if self.readiness.is_ready(&String::from_utf8_lossy(&screen)) {
                break;
            }
            if Instant::now() >= ready_by {
                return Ok(EndedBy::TimedOut {
                    which: TimeoutKind::Readiness,
                });
            }
            self.pause(self.poll_interval, cancel).await;
        }

        if let Some(text) = &inv.stdin {
            let buffer = format!("vnx-{}", self.session);
            self.tmux_cmd(&["load-buffer", "-b", &buffer, "-"], Some(text))
                .await?;
            self.tmux_cmd(
                &["paste-buffer", "-p", "-d", "-b", &buffer, "-t", pane],
                None,
            )
            .await?;
            self.pause(self.enter_delay, cancel).await;
            if let Some(end) = self.check_common((pane, pane_pid), total, cancel).await {
                return Ok(end);
            }
            self.tmux_cmd(&["send-keys", "-t", pane, "Enter"], None)
                .await?;
        }

        loop {
            if self.marker_exists().await {
                return Ok(EndedBy::Finished);
            }
            if let Some(end) = self.check_common((pane, pane_pid), total, cancel).await {
                // The hook may have written the marker just before the CLI exited.
                if end == EndedBy::Exited && self.marker_exists().await {
                    return Ok(EndedBy::Finished);
                }
                return Ok(end);
            }
            self.pause(self.poll_interval, cancel).await;
        }
    }

    /// Cancel, total timeout, dead pane — in that order.
    async fn check_common(
        &self,
        (pane, pane_pid): (&str, u32),
        total: Option<Instant>,
        cancel: &CancelToken,
    ) -> Option<EndedBy> {
        if cancel.is_cancelled() {
            return Some(EndedBy::Interrupted);
        }
        if total.is_some_and(|t| Instant::now() >= t) {
            return Some(EndedBy::TimedOut {
                which: TimeoutKind::Total,
            });
        }
        if self.pane_state(pane, pane_pid).await.is_some() {
            return Some(EndedBy::Exited);
        }
        None
    }

    async fn marker_exists(&self) -> bool {
        tokio::fs::try_exists(&self.marker).await.unwrap_or(false)
    }

    /// Sleeps `d`, waking early on cancel.
    async fn pause(&self, d: Duration, cancel: &CancelToken) {
        tokio::select! {
            () = sleep(d) => {}
            () = cancel.cancelled() => {}
        }
    }

    /// `Some(status)` once the pane's process is dead (or the pane is gone).
    ///
    /// tmux 3.3 can mark a pane dead (its terminal closed) before it has
    /// reaped the process, and has been seen to leave the status empty for
    /// good (a race fixed upstream later); then the status is read from the
    /// zombie's `/proc` entry, and a process still running is not dead.
    async fn pane_state(&self, pane: &str, pane_pid: u32) -> Option<ExitStatus> {
        let fmt = "#{pane_dead} #{pane_dead_status} #{pane_dead_signal}";
        let Ok(out) = self
            .tmux_cmd(&["display-message", "-p", "-t", pane, fmt], None)
            .await
        else {
            return Some(ExitStatus::Unknown);
        };
        match parse_pane_state(&String::from_utf8_lossy(&out)) {
            Some(ExitStatus::Unknown) => match proc_state(pane_pid) {
                ProcState::Running => None,
                ProcState::Zombie(Some(status)) => Some(status),
                ProcState::Zombie(None) | ProcState::Gone => Some(ExitStatus::Unknown),
            },
            other => other,
        }
    }

    /// Stops the pane's processes; returns its exit status and whether vnx
    /// had to signal it.
    async fn stop_pane(
        &self,
        pane: &str,
        pane_pid: u32,
        term_grace: Duration,
    ) -> (ExitStatus, bool) {
        let mut killed = false;
        let mut status = self.pane_state(pane, pane_pid).await;
        if status.is_none() {
            killed = true;
            signal_group(pane_pid, Signal::SIGTERM);
            let until = Instant::now() + term_grace;
            while status.is_none() && Instant::now() < until {
                sleep(Duration::from_millis(50)).await;
                status = self.pane_state(pane, pane_pid).await;
            }
            if status.is_none() {
                signal_group(pane_pid, Signal::SIGKILL);
                for _ in 0..20 {
                    sleep(Duration::from_millis(50)).await;
                    status = self.pane_state(pane, pane_pid).await;
                    if status.is_some() {
                        break;
                    }
                }
            }
        }
        // tmux may mark the pane dead (its terminal closed) a moment before it
        // has reaped the process and knows the status.
        for _ in 0..20 {
            if status != Some(ExitStatus::Unknown) {
                break;
            }
            sleep(Duration::from_millis(50)).await;
            status = self.pane_state(pane, pane_pid).await;
        }
        // Whatever is left in the pane's session (tmux makes the pane process
        // a session leader), including grandchildren in other process groups.
        signal_group(pane_pid, Signal::SIGKILL);
        kill_session(pane_pid);
        (status.unwrap_or(ExitStatus::Unknown), killed)
    }

    /// Creates the session running the invocation; returns `(pane id, pane pid)`.
    ///
    /// The environment does not go on tmux's command line (the server keeps
    /// the argv of the client that started it for its whole life, visible in
    /// `ps`): it is written to a `0600` file beside the socket, which a small
    /// `/bin/sh` launcher in the pane sources, deletes, and then `exec`s the
    /// program, so the pane's pid is the program's.
    async fn new_session(&self, inv: &Invocation) -> Result<(String, u32), ExecError> {
        if inv.program.as_os_str().is_empty() {
            return Err(ExecError::Invalid("empty program".into()));
        }
        let env_file = self.env_file();
        write_env_file(&env_file, &pane_env(inv)).map_err(|source| ExecError::Io {
            context: "writing the pane's environment file",
            source,
        })?;
        let history = self.history_lines.to_string();
        let (cols, rows) = (self.cols.to_string(), self.rows.to_string());
        let mut args: Vec<OsString> = [
            "start-server",
            ";",
            "set-option",
            "-g",
            "remain-on-exit",
            "on",
            ";",
            "set-option",
            "-g",
            "exit-empty",
            "on",
            ";",
            "set-option",
            "-g",
            "history-limit",
            &history,
            ";",
            "new-session",
            "-d",
            "-P",
            "-F",
            "#{pane_id} #{pane_pid}",
            "-s",
            &self.session,
            "-x",
            &cols,
            "-y",
            &rows,
        ]
        .iter()
        .map(OsString::from)
        .collect();
        if let Some(cwd) = &inv.cwd {
            args.push("-c".into());
            args.push(escape_arg(cwd.as_os_str()));
        }
        for a in ["--", "/bin/sh", "-c", LAUNCHER] {
            args.push(a.into());
        }
        args.push(escape_arg(env_file.as_os_str()));
        args.push(escape_arg(inv.program.as_os_str()));
        args.extend(inv.args.iter().map(|a| escape_arg(OsStr::new(a))));
        let out = self.run_tmux(&args, None).await?;
        let out = String::from_utf8_lossy(&out);
        let mut parts = out.split_whitespace();
        match (
            parts.next(),
            parts.next().and_then(|p| p.parse::<u32>().ok()),
        ) {
            (Some(id), Some(pid)) if id.starts_with('%') => Ok((id.to_string(), pid)),
            _ => Err(ExecError::Tmux {
                command: "new-session".into(),
                detail: format!("unexpected output {out:?}"),
            }),
        }
    }

    /// The environment file for this session, beside the socket.
    fn env_file(&self) -> PathBuf {
        let dir = self.socket.parent().filter(|d| !d.as_os_str().is_empty());
        dir.unwrap_or(std::path::Path::new("."))
            .join(format!(".{}.env", self.session))
    }

    async fn tmux_cmd(&self, args: &[&str], stdin: Option<&[u8]>) -> Result<Vec<u8>, ExecError> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        self.run_tmux(&args, stdin).await
    }

    /// Runs one tmux client command (10 s cap) on vnx's socket, with an empty
    /// environment so a server it starts has an empty global environment.
    async fn run_tmux(
        &self,
        args: &[OsString],
        stdin: Option<&[u8]>,
    ) -> Result<Vec<u8>, ExecError> {
        // For error messages: the subcommand (the session-creating chain
        // starts with `start-server`).
        let name = match args.first().and_then(|a| a.to_str()) {
            Some("start-server") => "new-session".to_string(),
            Some(first) => first.to_string(),
            None => String::new(),
        };
        let mut cmd = Command::new(&self.tmux);
        cmd.arg("-u")
            .arg("-S")
            .arg(&self.socket)
            .arg("-f")
            .arg("/dev/null")
            .args(args)
            .env_clear()
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|source| ExecError::Spawn {
            program: self.tmux.clone(),
            source,
        })?;
        if let (Some(mut pipe), Some(bytes)) = (child.stdin.take(), stdin) {
            let bytes = bytes.to_vec();
            tokio::spawn(async move {
                let _ = pipe.write_all(&bytes).await;
                let _ = pipe.shutdown().await;
            });
        }
        let out = match timeout(Duration::from_secs(10), child.wait_with_output()).await {
            Ok(Ok(out)) => out,
            Ok(Err(e)) => {
                return Err(ExecError::Tmux {
                    command: name,
                    detail: e.to_string(),
                });
            }
            Err(_) => {
                return Err(ExecError::Tmux {
                    command: name,
                    detail: "timed out after 10 s".into(),
                });
            }
        };
        if out.status.success() {
            Ok(out.stdout)
        } else {
            let stderr = String::from_utf8_lossy(&out.stderr);
            Err(ExecError::Tmux {
                command: name,
                detail: format!("{}: {}", out.status, stderr.trim()),
            })
        }
    }
}

/// Run in the pane as `sh -c LAUNCHER ENV_FILE PROGRAM ARGS...`: export every
/// assignment in the file, delete it, become the program.
const LAUNCHER: &str = r#"set -a; . "$0" || exit 126; rm -f -- "$0"; set +a; exec "$@""#;

/// The pane's environment: the invocation's, minus the outer terminal's
/// `TMUX`/`TMUX_PANE` and (unless the invocation sets it) `TERM`, which tmux
/// sets for the pane itself.
fn pane_env(inv: &Invocation) -> Vec<(OsString, OsString)> {
    let term_set = inv.env.set.iter().any(|(k, _)| k == "TERM");
    inv.env
        .resolve_current()
        .into_iter()
        .filter(|(k, _)| k != "TMUX" && k != "TMUX_PANE" && (term_set || k != "TERM"))
        .collect()
}

/// Writes `NAME='value'` lines for `sh`, mode 0600. Names that are not shell
/// identifiers cannot be set by `sh` and are left out.
fn write_env_file(path: &std::path::Path, env: &[(OsString, OsString)]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::OpenOptionsExt;
    let mut out = Vec::new();
    for (k, v) in env {
        let Some(k) = k.to_str().filter(|k| is_identifier(k)) else {
            continue;
        };
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b"='");
        for &b in v.as_bytes() {
            if b == b'\'' {
                out.extend_from_slice(b"'\\''");
            } else {
                out.push(b);
            }
        }
        out.extend_from_slice(b"'\n");
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(&out)
}

fn is_identifier(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes
        .next()
        .is_some_and(|b| b == b'_' || b.is_ascii_alphabetic())
        && bytes.all(|b| b == b'_' || b.is_ascii_alphanumeric())
}

/// Parses `#{pane_dead} #{pane_dead_status} #{pane_dead_signal}`.
fn parse_pane_state(line: &str) -> Option<ExitStatus> {
    let mut parts = line.trim_end_matches('\n').split(' ');
    if parts.next()? != "1" {
        return None;
    }
    let code = parts.next().and_then(|s| s.parse::<i32>().ok());
    let signal = parts.next().and_then(|s| s.parse::<i32>().ok());
    Some(match (code, signal) {
        (_, Some(signal)) => ExitStatus::Signal {
            signal,
            core_dumped: false,
        },
        (Some(code), None) => ExitStatus::Code(code),
        (None, None) => ExitStatus::Unknown,
    })
}

/// tmux treats an argument ending in `;` as a command separator, and
/// `\;` at the end as a literal `;`. Every argument vnx passes through is
/// escaped so that it arrives unchanged.
fn escape_arg(arg: &OsStr) -> OsString {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let bytes = arg.as_bytes();
    match bytes.split_last() {
        Some((b';', head)) => {
            let mut v = head.to_vec();
            v.extend_from_slice(b"\\;");
            OsString::from_vec(v)
        }
        _ => arg.to_os_string(),
    }
}

/// Kills the pane's processes and the session if the run's future is dropped
/// half-way (blocking, but brief: one `tmux kill-session`).
struct SessionGuard {
    env_file: PathBuf,
    tmux: PathBuf,
    socket: PathBuf,
    session: String,
    pane_pid: u32,
    armed: bool,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        signal_group(self.pane_pid, Signal::SIGKILL);
        kill_session(self.pane_pid);
        let _ = std::fs::remove_file(&self.env_file);
        let _ = std::process::Command::new(&self.tmux)
            .arg("-S")
            .arg(&self.socket)
            .args(["kill-session", "-t", &format!("={}", self.session)])
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_trailing_semicolons_only() {
        let e = |s: &str| escape_arg(OsStr::new(s)).into_string().unwrap();
        assert_eq!(e("a;"), "a\\;");
        assert_eq!(e(";"), "\\;");
        assert_eq!(e("b\\;"), "b\\\\;");
        assert_eq!(e("a;b"), "a;b");
        assert_eq!(e(""), "");
    }

    #[test]
    fn env_file_is_sh_quoted_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("env");
        let env: Vec<(OsString, OsString)> = [
            ("A", "it's $HOME `x` \\ \n"),
            ("B_2", ""),
            ("not-an-identifier", "x"),
            ("1X", "y"),
        ]
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
        write_env_file(&path, &env).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let out = std::process::Command::new("/bin/sh")
            .args([
                "-c",
                "set -a; . \"$0\"; printf '%s|%s' \"$A\" \"${B_2-unset}\"",
                path.to_str().unwrap(),
            ])
            .env_clear()
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "it's $HOME `x` \\ \n|"
        );
    }

    #[test]
    fn parses_pane_state() {
        assert_eq!(parse_pane_state("0  \n"), None);
        assert_eq!(parse_pane_state("1 3 \n"), Some(ExitStatus::Code(3)));
        assert_eq!(
            parse_pane_state("1  11\n"),
            Some(ExitStatus::Signal {
                signal: 11,
                core_dumped: false
            })
        );
        assert_eq!(parse_pane_state("1  \n"), Some(ExitStatus::Unknown));
    }
}
