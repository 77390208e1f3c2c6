//! Signalling process groups and sessions.

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

/// Sends `sig` to process group `pgid`. A group that no longer exists is not
/// an error (that is the point of killing it); other errors are ignored too,
/// since there is nothing better to do than carry on to `SIGKILL`.
pub(crate) fn signal_group(pgid: u32, sig: Signal) {
    let Ok(raw) = i32::try_from(pgid) else { return };
    if raw <= 1 {
        return; // never signal "every process" or init
    }
    match killpg(Pid::from_raw(raw), sig) {
        Ok(()) | Err(Errno::ESRCH | Errno::EPERM | Errno::EINVAL) | Err(_) => {}
    }
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
    fn sees_itself() {
        let me = std::process::id();
        assert!(proc_table().iter().any(|(pid, _, _)| *pid == me));
    }
}
