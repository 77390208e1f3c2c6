//! The tmux lane, against a real tmux server on a socket in a temp dir, with
//! small bash scripts as the "agent".

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use vnx_exec::{
    CancelToken, ChildEnv, EndedBy, ExitStatus, Invocation, Readiness, RunOptions, Runner,
    TimeoutKind, TmuxLane,
};

use crate::common::{alive, assert_group_dead, eventually};

fn lane(dir: &Path, readiness: Readiness) -> TmuxLane {
    let mut lane = TmuxLane::new(
        dir.join("tmux.sock"),
        "vnx-test",
        readiness,
        dir.join("done.marker"),
    );
    lane.poll_interval = Duration::from_millis(100);
    lane.enter_delay = Duration::from_millis(300);
    lane.ready_timeout = Duration::from_secs(10);
    lane
}

fn opts(dir: &Path) -> RunOptions {
    let mut o = RunOptions::new(dir.join("pane.txt"));
    o.term_grace = Duration::from_millis(500);
    o.total_timeout = Some(Duration::from_secs(30));
    o
}

/// `bash -c SCRIPT agent ARGS...` with OUT and MARKER in its environment.
fn script(dir: &Path, script: &str, args: &[&str]) -> Invocation {
    let mut argv = vec!["-c", script, "agent"];
    argv.extend_from_slice(args);
    let mut inv = Invocation::new("bash", argv);
    inv.env = ChildEnv::default()
        .remove("HOME")
        .set("OUT", dir.join("out.txt").to_str().unwrap())
        .set("MARKER", dir.join("done.marker").to_str().unwrap());
    inv.cwd = Some(dir.to_path_buf());
    inv
}

fn assert_server_gone(dir: &Path) {
    let socket = dir.join("tmux.sock");
    eventually("the tmux server to exit", || {
        !Command::new("tmux")
            .arg("-S")
            .arg(&socket)
            .arg("ls")
            .output()
            .unwrap()
            .status
            .success()
    });
}

/// Whether any process's command line contains `needle`.
fn in_any_cmdline(needle: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        std::fs::read(e.path().join("cmdline"))
            .is_ok_and(|c| c.windows(needle.len()).any(|w| w == needle.as_bytes()))
    })
}

#[tokio::test]
async fn ready_paste_enter_marker_teardown() {
    let dir = tempfile::tempdir().unwrap();
    let secret = format!("s3cr3t-{}", std::process::id());
    let mut inv = script(
        dir.path(),
        r#"printf 'READY> '; IFS= read -r line; printf '%s|%s|%s|%s' "$line" "${HOME-unset}" "$1" "$VNX_SECRET" > "$OUT"; touch "$MARKER"; exec sleep 1000"#,
        &["arg;"],
    );
    inv.env = inv.env.set("VNX_SECRET", secret.as_str());
    inv.stdin = Some(b"hello tmux".to_vec());
    // Checked while the session runs: the environment never shows in a command line.
    let leaked = Arc::new(AtomicBool::new(false));
    let (leaked2, secret2) = (leaked.clone(), secret.clone());
    let ready = Readiness::Predicate(Arc::new(move |screen: &str| {
        let ready = screen.contains("READY>");
        if ready {
            leaked2.store(in_any_cmdline(&secret2), Ordering::SeqCst);
        }
        ready
    }));
    let report = Runner::Tmux(lane(dir.path(), ready))
        .run(
            &inv,
            &opts(dir.path()),
            &mut crate::common::Recorder::default(),
            &CancelToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(report.ended_by, EndedBy::Finished);
    // The pasted instruction arrived, HOME was removed, a trailing `;` in
    // argv survived tmux, the set variable arrived.
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out.txt")).unwrap(),
        format!("hello tmux|unset|arg;|{secret}")
    );
    assert!(
        !leaked.load(Ordering::SeqCst),
        "an environment value showed in a command line"
    );
    assert!(!dir.path().join(".vnx-test.env").exists());
    // The agent was still running (sleep 1000): vnx killed it.
    assert!(report.killed);
    assert_eq!(report.exit.signal(), Some(15), "{:?}", report.exit);
    let screen = std::fs::read_to_string(&report.event_log_path).unwrap();
    assert!(screen.contains("READY> hello tmux"), "{screen:?}");
    assert_eq!(report.stdout_bytes, 0);
    let pid = report.pid.unwrap();
    assert!(!alive(pid));
    assert_group_dead(pid);
    assert_server_gone(dir.path());
}

#[tokio::test]
async fn total_timeout_kills_everything() {
    let dir = tempfile::tempdir().unwrap();
    let mut inv = script(dir.path(), "printf 'READY> '; sleep 1000 & sleep 1000", &[]);
    inv.stdin = Some(b"never answered".to_vec());
    let mut o = opts(dir.path());
    o.total_timeout = Some(Duration::from_millis(1500));
    let started = Instant::now();
    let report = lane(dir.path(), Readiness::Contains("READY>".into()))
        .run(&inv, &o, &CancelToken::new())
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(
        report.ended_by,
        EndedBy::TimedOut {
            which: TimeoutKind::Total
        }
    );
    assert!(report.killed);
    assert_group_dead(report.pid.unwrap());
    assert_server_gone(dir.path());
}

#[tokio::test]
async fn an_agent_that_exits_early_reports_its_status() {
    let dir = tempfile::tempdir().unwrap();
    let mut inv = script(dir.path(), "printf 'READY> '; read -r line; exit 7", &[]);
    inv.stdin = Some(b"hi".to_vec());
    let report = lane(dir.path(), Readiness::Contains("READY>".into()))
        .run(&inv, &opts(dir.path()), &CancelToken::new())
        .await
        .unwrap();
    assert_eq!(report.ended_by, EndedBy::Exited);
    assert_eq!(report.exit, ExitStatus::Code(7));
    assert!(!report.killed);
    assert_server_gone(dir.path());
}

#[tokio::test]
async fn readiness_timeout_and_cancel() {
    let dir = tempfile::tempdir().unwrap();
    let inv = script(dir.path(), "printf 'booting'; exec sleep 1000", &[]);
    let mut l = lane(
        dir.path(),
        Readiness::Predicate(Arc::new(|s: &str| s.contains("NEVER"))),
    );
    l.ready_timeout = Duration::from_millis(500);
    let report = l
        .run(&inv, &opts(dir.path()), &CancelToken::new())
        .await
        .unwrap();
    assert_eq!(
        report.ended_by,
        EndedBy::TimedOut {
            which: TimeoutKind::Readiness
        }
    );
    assert!(
        std::fs::read_to_string(&report.event_log_path)
            .unwrap()
            .contains("booting")
    );
    assert_group_dead(report.pid.unwrap());
    assert_server_gone(dir.path());

    let cancel = CancelToken::new();
    let c = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        c.cancel();
    });
    let l = lane(dir.path(), Readiness::Immediate);
    let report = l.run(&inv, &opts(dir.path()), &cancel).await.unwrap();
    assert_eq!(report.ended_by, EndedBy::Interrupted);
    assert_group_dead(report.pid.unwrap());
    assert_server_gone(dir.path());
}
