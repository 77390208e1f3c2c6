//! The headless lane.

use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use vnx_exec::{
    CancelToken, ChildEnv, EndedBy, ExecError, ExitStatus, HeadlessLane, Invocation, Runner,
    TimeoutKind,
};

use crate::common::{Recorder, Seen, alive, assert_group_dead, fake, opts};

async fn run(inv: &Invocation, o: &vnx_exec::RunOptions) -> (vnx_exec::RunReport, Recorder) {
    let mut rec = Recorder::default();
    let report = HeadlessLane
        .run(inv, o, &mut rec, &CancelToken::new())
        .await
        .unwrap();
    (report, rec)
}

#[tokio::test]
async fn stdin_is_delivered_and_closed() {
    let dir = tempfile::tempdir().unwrap();
    let mut inv = fake(&["--echo-stdin"]);
    inv.stdin = Some(b"line one\nline \"two\"".to_vec());
    let (report, rec) = run(&inv, &opts(dir.path())).await;
    // --echo-stdin reads to EOF: it only got here because stdin was closed.
    let echo = rec.of_type("stdin");
    assert_eq!(echo["len"], 19);
    assert_eq!(echo["text"], "line one\nline \"two\"");
    assert_eq!(report.ended_by, EndedBy::Exited);
    assert_eq!(report.exit, ExitStatus::Code(0));
    assert!(!report.killed);
}

#[tokio::test]
async fn no_stdin_means_dev_null() {
    let dir = tempfile::tempdir().unwrap();
    let (_, rec) = run(&fake(&["--echo-stdin"]), &opts(dir.path())).await;
    assert_eq!(rec.of_type("stdin")["len"], 0);
}

#[tokio::test]
async fn environment_is_explicit() {
    assert!(
        std::env::var_os("PATH").is_some(),
        "the test needs PATH in its environment"
    );
    assert!(
        std::env::var_os("HOME").is_some(),
        "the test needs HOME in its environment"
    );
    let dir = tempfile::tempdir().unwrap();
    let mut inv = fake(&[
        "--print-env",
        "HOME",
        "--print-env",
        "PATH",
        "--print-env",
        "VNX_SET",
        "--print-env",
        "CARGO_MANIFEST_DIR",
    ]);
    inv.env = ChildEnv {
        remove_prefixes: vec!["CARGO_".into()],
        ..ChildEnv::default()
    }
    .remove("HOME")
    .set("VNX_SET", "a b=c");
    let (_, rec) = run(&inv, &opts(dir.path())).await;
    let env: Vec<_> = rec
        .json()
        .into_iter()
        .filter(|v| v["type"] == "env")
        .collect();
    assert_eq!(env[0]["set"], false, "HOME was removed: {env:?}");
    assert_eq!(env[1]["set"], true, "PATH is inherited");
    assert_eq!(env[2]["value"], "a b=c");
    assert_eq!(env[3]["set"], false, "CARGO_* was removed by prefix");

    inv.env = ChildEnv {
        base: vnx_exec::EnvBase::Empty,
        ..ChildEnv::default()
    };
    let (_, rec) = run(&inv, &opts(dir.path())).await;
    assert_eq!(rec.of_type("env")["set"], false);
    assert!(
        rec.json()
            .iter()
            .filter(|v| v["type"] == "env")
            .all(|v| v["set"] == false)
    );
}

#[tokio::test]
async fn an_allow_list_passes_only_the_named_variables() {
    assert!(std::env::var_os("HOME").is_some() && std::env::var_os("CARGO_PKG_NAME").is_some());
    let dir = tempfile::tempdir().unwrap();
    let mut inv = fake(&[
        "--print-env",
        "PATH",
        "--print-env",
        "CARGO_PKG_NAME",
        "--print-env",
        "HOME",
        "--print-env",
        "CARGO_MANIFEST_DIR",
        "--print-env",
        "CARGO_PKG_VERSION",
    ]);
    inv.env = ChildEnv {
        remove: vec!["CARGO_PKG_VERSION".into()],
        ..ChildEnv::allow_list(["PATH"], ["CARGO_PKG_"])
    };
    let (_, rec) = run(&inv, &opts(dir.path())).await;
    let set: Vec<bool> = rec
        .json()
        .into_iter()
        .filter(|v| v["type"] == "env")
        .map(|v| v["set"] == true)
        .collect();
    assert_eq!(set, [true, true, false, false, false]);
    assert_eq!(
        inv.env
            .withheld([("HOME".into(), "/h".into()), ("PATH".into(), "/bin".into())]),
        ["HOME"]
    );
}

#[tokio::test]
async fn hang_hits_inactivity_timeout_and_the_group_dies() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path());
    o.inactivity_timeout = Some(Duration::from_secs(1));
    let started = Instant::now();
    let (report, rec) = run(
        &fake(&["--grandchild-holds-pipe", "--lines", "1", "--hang"]),
        &o,
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(
        report.ended_by,
        EndedBy::TimedOut {
            which: TimeoutKind::Inactivity
        }
    );
    assert!(report.killed);
    assert_eq!(
        report.exit.signal(),
        Some(15),
        "SIGTERM ended it: {:?}",
        report.exit
    );
    let pgid = report.pid.unwrap();
    let grandchild = rec.of_type("grandchild")["pid"].as_u64().unwrap() as u32;
    assert_group_dead(pgid);
    assert!(!alive(grandchild));
}

#[tokio::test]
async fn total_timeout_fires_despite_steady_output() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path());
    o.total_timeout = Some(Duration::from_millis(1500));
    o.inactivity_timeout = Some(Duration::from_secs(5));
    let inv = Invocation::new("bash", ["-c", "while :; do echo tick; sleep 0.05; done"]);
    let (report, rec) = run(&inv, &o).await;
    assert_eq!(
        report.ended_by,
        EndedBy::TimedOut {
            which: TimeoutKind::Total
        }
    );
    assert!(rec.seen.len() > 3);
    assert_group_dead(report.pid.unwrap());
}

#[tokio::test]
async fn sigterm_ignored_escalates_to_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path());
    o.inactivity_timeout = Some(Duration::from_millis(300));
    let inv = Invocation::new("bash", ["-c", "trap '' TERM; echo go; exec sleep 1000"]);
    let (report, _) = run(&inv, &o).await;
    assert_eq!(
        report.ended_by,
        EndedBy::TimedOut {
            which: TimeoutKind::Inactivity
        }
    );
    assert_eq!(report.exit.signal(), Some(9), "{:?}", report.exit);
    assert_group_dead(report.pid.unwrap());
}

#[tokio::test]
async fn hang_after_final_is_finished_then_killed_after_grace() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts(dir.path()); // no timeouts at all: only the grace can end it
    let started = Instant::now();
    let (report, rec) = run(&fake(&["--lines", "2", "--hang-after-final"]), &o).await;
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(report.ended_by, EndedBy::Finished);
    assert!(report.killed);
    assert_eq!(report.exit.signal(), Some(15));
    assert_eq!(report.lines, 3);
    assert_eq!(rec.json().last().unwrap()["type"], "result");
    assert_group_dead(report.pid.unwrap());
}

#[tokio::test]
async fn final_then_exit_is_finished_without_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let (report, _) = run(&fake(&["--final", "--exit", "0"]), &opts(dir.path())).await;
    assert_eq!(report.ended_by, EndedBy::Finished);
    assert_eq!(report.exit, ExitStatus::Code(0));
    assert!(!report.killed);
    assert!(!report.pipes_abandoned);
}

#[tokio::test]
async fn crash_reports_the_signal() {
    let dir = tempfile::tempdir().unwrap();
    let (report, rec) = run(
        &fake(&["--lines", "1", "--stderr", "boom", "--crash"]),
        &opts(dir.path()),
    )
    .await;
    assert_eq!(report.ended_by, EndedBy::Exited);
    assert_eq!(report.exit.signal(), Some(6), "SIGABRT: {:?}", report.exit);
    assert!(!report.killed);
    assert_eq!(rec.seen.len(), 1);
    assert_eq!(report.stderr_tail, b"boom\n");
}

#[tokio::test]
async fn exit_code_and_stderr_tail() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path());
    o.stderr_tail_bytes = 8;
    let (report, _) = run(
        &fake(&[
            "--stderr",
            "0123456789",
            "--stderr",
            "abcdef",
            "--exit",
            "3",
        ]),
        &o,
    )
    .await;
    assert_eq!(report.exit, ExitStatus::Code(3));
    assert_eq!(report.ended_by, EndedBy::Exited);
    assert_eq!(report.stderr_bytes, 18);
    assert_eq!(report.stderr_tail, b"9\nabcdef\n"[1..]);
}

#[tokio::test]
async fn garbage_and_non_utf8_pass_through_intact() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts(dir.path());
    let (report, rec) = run(
        &fake(&["--garbage", "--non-utf8", "--line", "tail-without-newline?"]),
        &o,
    )
    .await;
    let want: Vec<Seen> = [
        &b"this is not json"[..],
        b"{\"type\":\"half",
        b"\x1b[31mred\x1b[0m \x07bell\t\x00nul",
        b"}}{{",
        b"{\"type\":\"bytes\",\"v\":\"\xff\xfe\xc3\x28\"}",
        b"tail-without-newline?",
    ]
    .iter()
    .map(|l| Seen::Line(l.to_vec()))
    .collect();
    assert_eq!(rec.seen, want);
    // The event log is exactly the bytes the child wrote, and its hash.
    let log = std::fs::read(&report.event_log_path).unwrap();
    assert_eq!(log.len() as u64, report.stdout_bytes);
    let mut expected = Vec::new();
    for l in &want {
        let Seen::Line(l) = l else { unreachable!() };
        expected.extend_from_slice(l);
        expected.push(b'\n');
    }
    assert_eq!(log, expected);
    assert_eq!(report.event_log_sha256, hex::encode(Sha256::digest(&log)));
}

#[tokio::test]
async fn a_final_line_without_newline_is_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stream");
    std::fs::write(&path, b"{\"a\":1}\n{\"type\":\"result\"}").unwrap();
    let (report, rec) = run(
        &fake(&["--emit", path.to_str().unwrap()]),
        &opts(dir.path()),
    )
    .await;
    assert_eq!(rec.seen.len(), 2);
    assert_eq!(report.ended_by, EndedBy::Finished);
}

/// Peak resident memory of this test process, KiB.
fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_50_mb_line_is_reported_by_length_with_bounded_memory() {
    const HUGE: u64 = 50_000_000;
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path());
    o.max_line_bytes = 1024 * 1024;
    let before = vm_hwm_kib();
    let (report, rec) = run(
        &fake(&[
            "--line",
            "a",
            "--huge-line",
            &HUGE.to_string(),
            "--line",
            "b",
            "--final",
        ]),
        &o,
    )
    .await;
    let grown_mib = (vm_hwm_kib() - before) / 1024;
    assert_eq!(
        rec.seen,
        vec![
            Seen::Line(b"a".to_vec()),
            Seen::Oversize(HUGE),
            Seen::Line(b"b".to_vec()),
            Seen::Line(br#"{"type":"result","subtype":"success","is_error":false}"#.to_vec()),
        ]
    );
    assert_eq!(report.oversize_lines, 1);
    assert_eq!(report.lines, 3);
    assert_eq!(report.ended_by, EndedBy::Finished);
    // Everything still reaches the event log.
    assert_eq!(
        std::fs::metadata(&report.event_log_path).unwrap().len(),
        report.stdout_bytes
    );
    assert!(report.stdout_bytes > HUGE);
    // Holding the line would take 50 MB; the cap is 1 MiB plus buffers.
    assert!(grown_mib < 30, "peak memory grew by {grown_mib} MiB");
}

#[tokio::test]
async fn a_grandchild_holding_the_pipe_does_not_stall_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let (report, rec) = run(
        &fake(&["--grandchild-holds-pipe", "--exit", "0"]),
        &opts(dir.path()),
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(report.ended_by, EndedBy::Exited);
    assert_eq!(report.exit, ExitStatus::Code(0));
    assert!(report.pipes_abandoned);
    assert!(report.killed);
    let grandchild = rec.of_type("grandchild")["pid"].as_u64().unwrap() as u32;
    crate::common::eventually("the grandchild to die", || !alive(grandchild));
    assert_group_dead(report.pid.unwrap());
}

#[tokio::test]
async fn cancel_interrupts_and_kills_the_group() {
    let dir = tempfile::tempdir().unwrap();
    let cancel = CancelToken::new();
    let c = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        c.cancel();
    });
    let mut rec = Recorder::default();
    let report = Runner::Headless(HeadlessLane)
        .run(
            &fake(&["--grandchild-holds-pipe", "--hang"]),
            &opts(dir.path()),
            &mut rec,
            &cancel,
        )
        .await
        .unwrap();
    assert_eq!(report.ended_by, EndedBy::Interrupted);
    assert!(report.killed);
    assert_group_dead(report.pid.unwrap());
    let grandchild = rec.of_type("grandchild")["pid"].as_u64().unwrap() as u32;
    assert!(!alive(grandchild));
}

#[tokio::test]
async fn observer_abort_stops_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut rec = Recorder {
        abort: true,
        ..Recorder::default()
    };
    let report = HeadlessLane
        .run(
            &fake(&["--lines", "3", "--hang"]),
            &opts(dir.path()),
            &mut rec,
            &CancelToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(report.ended_by, EndedBy::Aborted);
    assert!(report.killed);
    assert_group_dead(report.pid.unwrap());
}

#[tokio::test]
async fn dropping_the_run_kills_the_group() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    // The child writes its pid where the test can see it, then hangs.
    let script = format!(
        "echo $$ > {}.tmp; mv {0}.tmp {0}; exec sleep 1000",
        pid_file.display()
    );
    let inv = Invocation::new("bash", ["-c", script.as_str()]);
    let o = opts(dir.path());
    let mut rec = Recorder::default();
    let cancel = CancelToken::new();
    let run = HeadlessLane.run(&inv, &o, &mut rec, &cancel);
    let pid_written = async {
        while !pid_file.exists() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::select! {
        r = run => panic!("the run ended on its own: {r:?}"),
        () = pid_written => {} // the run's future is dropped here
    }
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_group_dead(pid);
}

#[tokio::test]
async fn a_missing_program_is_a_spawn_error() {
    let dir = tempfile::tempdir().unwrap();
    let inv = Invocation::new("/nonexistent/agent", Vec::<String>::new());
    let err = HeadlessLane
        .run(
            &inv,
            &opts(dir.path()),
            &mut Recorder::default(),
            &CancelToken::new(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ExecError::Spawn { .. }), "{err}");
    assert!(err.to_string().contains("/nonexistent/agent"));
}
