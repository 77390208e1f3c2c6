//! The pty lane.

use std::time::{Duration, Instant};

use vnx_exec::{CancelToken, EndedBy, ExitStatus, PtyLane, Runner};

use crate::common::{Recorder, alive, assert_group_dead, fake, opts};

async fn run(
    inv: &vnx_exec::Invocation,
    o: &vnx_exec::RunOptions,
) -> (vnx_exec::RunReport, Recorder) {
    let mut rec = Recorder::default();
    let report = Runner::Pty(PtyLane::default())
        .run(inv, o, &mut rec, &CancelToken::new())
        .await
        .unwrap();
    (report, rec)
}

#[tokio::test]
async fn the_child_sees_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let (report, rec) = run(&fake(&["--isatty", "--lines", "2"]), &opts(dir.path())).await;
    let tty = rec.of_type("isatty");
    assert_eq!(
        (&tty["stdin"], &tty["stdout"], &tty["stderr"]),
        (&true.into(), &true.into(), &true.into())
    );
    assert_eq!(report.ended_by, EndedBy::Exited);
    assert_eq!(report.exit, ExitStatus::Code(0));
    assert_eq!(report.lines, 3);
    // The terminal turned `\n` into `\r\n`; the observer got clean lines,
    // the event log keeps the bytes as read.
    assert_eq!(rec.json().len(), 3);
    let log = std::fs::read(&report.event_log_path).unwrap();
    assert!(
        log.ends_with(b"}\r\n"),
        "{:?}",
        String::from_utf8_lossy(&log)
    );
}

#[tokio::test]
async fn stdin_is_a_pipe_when_a_prompt_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let mut inv = fake(&["--isatty", "--echo-stdin"]);
    inv.stdin = Some(vec![b'p'; 10_000]); // longer than a terminal's 4 KiB line
    let (report, rec) = run(&inv, &opts(dir.path())).await;
    let tty = rec.of_type("isatty");
    assert_eq!(tty["stdin"], false);
    assert_eq!(tty["stdout"], true);
    assert_eq!(rec.of_type("stdin")["len"], 10_000);
    assert_eq!(report.exit, ExitStatus::Code(0));
}

#[tokio::test]
async fn hang_after_final_is_killed_after_grace() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let (report, rec) = run(
        &fake(&["--lines", "1", "--hang-after-final"]),
        &opts(dir.path()),
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(report.ended_by, EndedBy::Finished);
    assert!(report.killed);
    assert_eq!(rec.json().last().unwrap()["type"], "result");
    assert_group_dead(report.pid.unwrap());
}

#[tokio::test]
async fn inactivity_and_a_grandchild_holding_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path());
    o.inactivity_timeout = Some(Duration::from_secs(1));
    let (report, rec) = run(&fake(&["--grandchild-holds-pipe", "--hang"]), &o).await;
    assert_eq!(
        report.ended_by,
        EndedBy::TimedOut {
            which: vnx_exec::TimeoutKind::Inactivity
        }
    );
    assert_group_dead(report.pid.unwrap());
    let grandchild = rec.of_type("grandchild")["pid"].as_u64().unwrap() as u32;
    assert!(!alive(grandchild));

    let started = Instant::now();
    let (report, rec) = run(
        &fake(&["--grandchild-holds-pipe", "--exit", "4"]),
        &opts(dir.path()),
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(report.exit, ExitStatus::Code(4));
    assert!(report.pipes_abandoned);
    let grandchild = rec.of_type("grandchild")["pid"].as_u64().unwrap() as u32;
    crate::common::eventually("the grandchild to die", || !alive(grandchild));
}
