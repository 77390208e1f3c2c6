//! Signalling process groups and sessions.

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use crate::ExitStatus;

/// Sends `sig` to process group `pgid`. A group that no longer exists is not
/// an error (that is the point of killing it); other errors are ignored too,
/// since there is nothing better to do than carry on to `SIGKILL`.
pub(crate) fn signal_group(pgid: u32, sig: Signal) {
    let Ok(raw) = i32::try_from(pgid) else { return };
    if raw <= 1 {
        return; // never signal "every process" or init
    }
    // ESRCH (the group is gone) is the expected outcome of a late kill; any
    // other error leaves nothing better to do than carry on to SIGKILL.
    let _ = killpg(Pid::from_raw(raw), sig);
}

/// Sends `SIGKILL` to every process whose session id is `sid` (read from
/// `/proc`), so grandchildren that moved to their own process group inside
/// the session die too. Linux only; elsewhere a no-op.
pub(crate) fn kill_session(sid: u32) {
    if sid <= 1 {
        return;
    }
    for (pid, _pgrp, session) in proc_table() {
        if session == sid && pid > 1 {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
    }
}

/// `(pid, pgrp, session)` of every live (not zombie) process in `/proc`.
pub(crate) fn proc_table() -> Vec<(u32, u32, u32)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if let Some((state, pgrp, session)) = parse_stat(&stat)
            && state != 'Z'
            && state != 'X'
        {
            out.push((pid, pgrp, session));
        }
    }
    out
}

/// What `/proc` says about one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProcState {
    /// Alive (any state but zombie).
    Running,
    /// Exited, not yet reaped by its parent; its wait status if readable.
    Zombie(Option<ExitStatus>),
    /// No such process (reaped, or never existed).
    Gone,
}

/// Reads `/proc/<pid>/stat`. A zombie's wait status is its field 52
/// (`exit_code`, Linux ≥ 3.5), in `waitpid(2)` form.
pub(crate) fn proc_state(pid: u32) -> ProcState {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return ProcState::Gone;
    };
    match parse_stat(&stat) {
        Some(('Z' | 'X', _, _)) => ProcState::Zombie(zombie_status(&stat)),
        Some(_) => ProcState::Running,
        None => ProcState::Gone,
    }
}

fn zombie_status(stat: &str) -> Option<ExitStatus> {
    // Fields after the command name start at field 3 (state); exit_code is 52.
    let rest = &stat[stat.rfind(')')? + 1..];
    let raw: i32 = rest.split_whitespace().nth(52 - 3)?.parse().ok()?;
    let signal = raw & 0x7f;
    Some(if signal == 0 {
        ExitStatus::Code((raw >> 8) & 0xff)
    } else {
        ExitStatus::Signal {
            signal,
            core_dumped: raw & 0x80 != 0,
        }
    })
}

/// Parses `state`, `pgrp` and `session` out of a `/proc/<pid>/stat` line.
/// The command name is in parentheses and may itself contain spaces and
/// parentheses, so fields are counted from the last `)`.
fn parse_stat(stat: &str) -> Option<(char, u32, u32)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    let session = fields.next()?.parse().ok()?;
    Some((state, pgrp, session))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_comm() {
        let line = "123 (a b) c)) S 1 456 789 0 -1 4194560";
        assert_eq!(parse_stat(line), Some(('S', 456, 789)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn reads_a_zombie_status() {
        let mut line = String::from("9 (x) Z 1 9 9");
        for _ in 7..52 {
            line.push_str(" 0");
        }
        assert_eq!(
            zombie_status(&format!("{line} 768")),
            Some(ExitStatus::Code(3))
        );
        assert_eq!(
            zombie_status(&format!("{line} 15")),
            Some(ExitStatus::Signal {
                signal: 15,
                core_dumped: false
            })
        );
        assert_eq!(zombie_status(&line), None);
    }

    #[test]
    fn sees_itself() {
        assert_eq!(proc_state(std::process::id()), ProcState::Running);
        let me = std::process::id();
        assert!(proc_table().iter().any(|(pid, _, _)| *pid == me));
    }
}
