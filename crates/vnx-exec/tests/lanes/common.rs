//! Shared helpers: locating the fake agent, a recording observer, and
//! checking from `/proc` that processes are gone.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use vnx_exec::{Flow, Invocation, LineRef, RunOptions, StreamObserver};

/// Path to the fake agent binary, built once per test process.
pub fn fake_agent() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(vnx_tests::fake_agent)
}

/// An invocation of the fake agent with a script.
pub fn fake(script: &[&str]) -> Invocation {
    Invocation::new(fake_agent(), script.iter().copied())
}

/// Options with the event log in `dir` and short, test-sized graces.
pub fn opts(dir: &Path) -> RunOptions {
    let mut o = RunOptions::new(dir.join("events.ndjson"));
    o.finish_grace = Duration::from_millis(300);
    o.term_grace = Duration::from_millis(500);
    o.drain_timeout = Duration::from_millis(500);
    o
}

/// What the observer saw, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    Line(Vec<u8>),
    Oversize(u64),
}

/// Records every line; answers `Finished` to a `{"type":"result"...}` line,
/// and `Abort` to the first line when `abort` is set.
#[derive(Debug, Default)]
pub struct Recorder {
    pub seen: Vec<Seen>,
    pub abort: bool,
}

impl StreamObserver for Recorder {
    fn on_line(&mut self, line: LineRef<'_>) -> Flow {
        match line {
            LineRef::Line(l) => {
                self.seen.push(Seen::Line(l.to_vec()));
                if self.abort {
                    return Flow::Abort;
                }
                if l.starts_with(br#"{"type":"result""#) {
                    return Flow::Finished;
                }
            }
            LineRef::Oversize { len } => self.seen.push(Seen::Oversize(len)),
        }
        Flow::Continue
    }
}

impl Recorder {
    /// Lines parsed as JSON (non-JSON lines skipped).
    pub fn json(&self) -> Vec<serde_json::Value> {
        self.seen
            .iter()
            .filter_map(|s| match s {
                Seen::Line(l) => serde_json::from_slice(l).ok(),
                Seen::Oversize(_) => None,
            })
            .collect()
    }

    /// The first JSON line of the given type.
    pub fn of_type(&self, ty: &str) -> serde_json::Value {
        self.json()
            .into_iter()
            .find(|v| v["type"] == ty)
            .unwrap_or_else(|| panic!("no {ty} line in {:?}", self.seen))
    }
}

/// `(state, pgrp, session)` from `/proc/<pid>/stat`, if the process exists.
fn stat(pid: u32) -> Option<(char, u32, u32)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 1..];
    let mut f = rest.split_whitespace();
    let state = f.next()?.chars().next()?;
    f.next()?;
    Some((state, f.next()?.parse().ok()?, f.next()?.parse().ok()?))
}

/// Whether `pid` is a live (not zombie) process.
pub fn alive(pid: u32) -> bool {
    stat(pid).is_some_and(|(state, _, _)| state != 'Z' && state != 'X')
}

/// Live processes in process group `pgid` or session `sid`.
pub fn live_members(pgid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| {
            stat(pid).is_some_and(|(state, pgrp, sid)| {
                state != 'Z' && state != 'X' && (pgrp == pgid || sid == pgid)
            })
        })
        .collect()
}

/// Waits up to 5 s for `cond` (signals are delivered asynchronously).
pub fn eventually(what: &str, cond: impl Fn() -> bool) {
    let until = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < until, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Asserts the process group (or session) `pgid` has no live process left.
pub fn assert_group_dead(pgid: u32) {
    eventually(&format!("process group {pgid} to be empty"), || {
        live_members(pgid).is_empty()
    });
}
