//! End to end: the `vnx ledger` and `vnx verify-ledger` commands as users and
//! CI run them — real processes, real files, real signals.

// Helpers outside #[test] functions may panic on setup failures.
#![allow(clippy::unwrap_used, clippy::format_collect)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn vnx(cwd: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(vnx_tests::vnx())
        .args(args)
        .current_dir(cwd)
        .env("VNX_WRITER", "tester@ci")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    pipe.write_all(stdin).unwrap();
    drop(pipe);
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// A scratch git repository (the ledger defaults to `ledger/` at its root).
fn repo() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("repo");
    std::fs::create_dir(&root).unwrap();
    let ok = Command::new("git")
        .args(["init", "-q", "-b", "main"])
        .current_dir(&root)
        .status()
        .unwrap();
    assert!(ok.success());
    (tmp, root)
}

fn segment(root: &Path) -> PathBuf {
    root.join("ledger/tester@ci--main.ndjson")
}

#[test]
fn append_show_tail_and_verify_round_trip() {
    let (_tmp, root) = repo();
    let sub = root.join("src/deep");
    std::fs::create_dir_all(&sub).unwrap();
    let out = vnx(
        &sub,
        &["ledger", "append"],
        br#"{"kind":"note","body":{"text":"first"}}"#,
    );
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("created ledger"), "{}", text(&out));
    let many = (0..5)
        .map(|i| format!("{{\"kind\":\"note\",\"body\":{{\"text\":\"n{i}\"}}}}\n"))
        .collect::<String>();
    let out = vnx(&root, &["ledger", "append", "--json"], many.as_bytes());
    assert_eq!(code(&out), 0, "{}", text(&out));
    let seqs: Vec<u64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(
        seqs,
        vec![2, 3, 4, 5, 6],
        "the ledger is found from a subdirectory, seqs continue"
    );
    assert_eq!(
        std::fs::read_to_string(segment(&root))
            .unwrap()
            .lines()
            .count(),
        7
    );

    let out = vnx(&root, &["ledger", "show"], b"");
    assert_eq!(code(&out), 0);
    let shown = text(&out);
    assert!(
        shown.contains("segment.genesis") && shown.contains("first") && shown.contains("n4"),
        "{shown}"
    );

    let out = vnx(&root, &["ledger", "tail", "-n", "2"], b"");
    let tail = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(tail.lines().count(), 2);
    assert!(
        tail.contains("n3") && tail.contains("n4") && !tail.contains("n2"),
        "{tail}"
    );

    let out = vnx(&root, &["ledger", "tail", "-n", "1", "--json"], b"");
    let raw = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        raw,
        std::fs::read_to_string(segment(&root))
            .unwrap()
            .lines()
            .last()
            .unwrap()
            .to_owned()
            + "\n"
    );

    let out = vnx(&root, &["verify-ledger"], b"");
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("7 record(s)"), "{}", text(&out));
}

#[test]
fn bad_input_is_refused_with_a_clear_error_and_nothing_written() {
    let (_tmp, root) = repo();
    assert_eq!(
        code(&vnx(
            &root,
            &["ledger", "append"],
            br#"{"kind":"note","body":{"text":"x"}}"#
        )),
        0
    );
    let before = std::fs::read(segment(&root)).unwrap();
    let cases: &[(&[u8], &str)] = &[
        (b"not json at all\n", "stdin line 1"),
        (b"{\"kind\":\"note\",\"body\":{\"text\":\"ok\"}}\n{\"kind\":\"note\",\"body\":{\"txt\":1}}\n", "stdin line 2"),
        (br#"{"kind":"dispatch.receipt","body":{"dispatch_id":"d"}}"#, "schema"),
        (br#"{"kind":"x.tool.r","body":{"cost":0.25}}"#, "not an integer"),
        (br#"{"kind":"x.tool.r","body":{"a":1,"a":2}}"#, "duplicate key"),
        (br#"{"kind":"x.tool.r","body":{"n":9007199254740993}}"#, "2^53"),
        (br#"{"kind":"launch.missiles","body":{}}"#, "unknown kind"),
        (br#"{"kind":"repair","body":{}}"#, "written by vnx itself"),
        (b"{\"kind\":\"note\",\"body\":{\"text\":\"\xff\"}}", "UTF-8"),
        (b"", "no records on stdin"),
    ];
    for (input, expected) in cases {
        let out = vnx(&root, &["ledger", "append"], input);
        assert_eq!(code(&out), 2, "{}", text(&out));
        assert!(
            text(&out).contains(expected),
            "expected {expected:?} in: {}",
            text(&out)
        );
        assert_eq!(
            std::fs::read(segment(&root)).unwrap(),
            before,
            "nothing written for {expected:?}"
        );
    }
}

#[test]
fn verify_ledger_exit_codes_and_json_report() {
    let (_tmp, root) = repo();
    let records = (0..10)
        .map(|i| format!("{{\"kind\":\"note\",\"body\":{{\"text\":\"n{i}\"}}}}\n"))
        .collect::<String>();
    assert_eq!(
        code(&vnx(&root, &["ledger", "append"], records.as_bytes())),
        0
    );

    // Missing ledger: usage/I-O error, exit 2, naming the path.
    let out = vnx(&root, &["verify-ledger", "nowhere"], b"");
    assert_eq!(code(&out), 2);
    assert!(
        text(&out).contains("nowhere") && text(&out).contains("vnx init"),
        "{}",
        text(&out)
    );

    // A foreign file warns; --strict fails.
    std::fs::write(root.join("ledger/stray.log"), "x").unwrap();
    let out = vnx(&root, &["verify-ledger"], b"");
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("stray.log"));
    assert_eq!(code(&vnx(&root, &["verify-ledger", "--strict"], b"")), 1);
    std::fs::remove_file(root.join("ledger/stray.log")).unwrap();

    // Tamper: exit 1, and the report names segment, line, seq and reason.
    let path = segment(&root);
    let content = std::fs::read_to_string(&path)
        .unwrap()
        .replace("\"n4\"", "\"N4\"");
    std::fs::write(&path, content).unwrap();
    let out = vnx(&root, &["verify-ledger"], b"");
    assert_eq!(code(&out), 1);
    assert!(
        text(&out).contains("tester@ci--main.ndjson:6 (seq 5): edited"),
        "{}",
        text(&out)
    );
    let out = vnx(&root, &["verify-ledger", "--json"], b"");
    assert_eq!(code(&out), 1);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], false);
    let finding = &report["segments"][0]["findings"][0];
    assert_eq!(
        (
            finding["line"].as_u64(),
            finding["seq"].as_u64(),
            finding["reason"].as_str()
        ),
        (Some(6), Some(5), Some("edited"))
    );

    // A non-UTF-8 file and an empty file: exit 1 with their names.
    std::fs::write(&path, b"\xff\xfe\n").unwrap();
    std::fs::write(root.join("ledger/empty@x--main.ndjson"), b"").unwrap();
    let out = vnx(&root, &["verify-ledger"], b"");
    assert_eq!(code(&out), 1);
    let t = text(&out);
    assert!(
        t.contains("not valid UTF-8") && t.contains("empty@x--main.ndjson") && t.contains("empty"),
        "{t}"
    );
}

#[test]
fn checkpoint_then_truncation_and_since_checkpoint() {
    let (tmp, root) = repo();
    let records = (0..20)
        .map(|i| format!("{{\"kind\":\"note\",\"body\":{{\"text\":\"n{i}\"}}}}\n"))
        .collect::<String>();
    assert_eq!(
        code(&vnx(&root, &["ledger", "append"], records.as_bytes())),
        0
    );
    let cp = tmp.path().join("cp.json");
    let out = vnx(
        &root,
        &["ledger", "checkpoint", "--out", cp.to_str().unwrap()],
        b"",
    );
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(
        code(&vnx(
            &root,
            &["ledger", "append"],
            br#"{"kind":"note","body":{"text":"after"}}"#
        )),
        0
    );

    let out = vnx(
        &root,
        &[
            "verify-ledger",
            "--checkpoint",
            cp.to_str().unwrap(),
            "--since-checkpoint",
            "--json",
        ],
        b"",
    );
    assert_eq!(code(&out), 0, "{}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["segments"][0]["records"], 1,
        "only the record past the checkpoint is verified"
    );

    // Cut two records: the chain is still a chain, but the checkpoint knows.
    let path = segment(&root);
    let lines: Vec<String> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    std::fs::write(&path, lines[..lines.len() - 3].join("\n") + "\n").unwrap();
    assert_eq!(code(&vnx(&root, &["verify-ledger"], b"")), 0);
    let out = vnx(
        &root,
        &["verify-ledger", "--checkpoint", cp.to_str().unwrap()],
        b"",
    );
    assert_eq!(code(&out), 1);
    assert!(text(&out).contains("truncated"), "{}", text(&out));

    // --since-checkpoint without --checkpoint is a usage error.
    assert_eq!(
        code(&vnx(&root, &["verify-ledger", "--since-checkpoint"], b"")),
        2
    );
}

#[test]
fn many_processes_appending_at_once_lose_and_interleave_nothing() {
    let (_tmp, root) = repo();
    assert_eq!(
        code(&vnx(
            &root,
            &["ledger", "append"],
            br#"{"kind":"note","body":{"text":"init"}}"#
        )),
        0
    );
    let writers = 6;
    let rounds = 12;
    std::thread::scope(|s| {
        for w in 0..writers {
            let root = root.clone();
            s.spawn(move || {
                for r in 0..rounds {
                    // Alternate single records and batches of three.
                    let input: String = (0..=(2 * (r % 2)))
                        .map(|k| format!("{{\"kind\":\"note\",\"body\":{{\"text\":\"w{w}-r{r}-k{k}-{}\"}}}}\n", "x".repeat(2000)))
                        .collect();
                    let out = vnx(&root, &["ledger", "append"], input.as_bytes());
                    assert_eq!(code(&out), 0, "{}", text(&out));
                }
            });
        }
    });
    let out = vnx(&root, &["verify-ledger", "--json"], b"");
    assert_eq!(code(&out), 0, "{}", text(&out));
    let expected: usize = writers * (rounds / 2) * 4 + 2;
    let content = std::fs::read_to_string(segment(&root)).unwrap();
    assert_eq!(content.lines().count(), expected);
    let mut texts: Vec<String> = content
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["record"]["body"]["text"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    texts.sort();
    texts.dedup();
    assert_eq!(
        texts.len(),
        expected,
        "every record is present exactly once"
    );
}

#[test]
fn a_process_killed_mid_append_leaves_a_repairable_ledger() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;

    let (_tmp, root) = repo();
    assert_eq!(
        code(&vnx(
            &root,
            &["ledger", "append"],
            br#"{"kind":"note","body":{"text":"before"}}"#
        )),
        0
    );
    let path = segment(&root);
    let big: String = (0..15_000)
        .map(|i| {
            format!(
                "{{\"kind\":\"note\",\"body\":{{\"text\":\"{i}-{}\"}}}}\n",
                "y".repeat(3000)
            )
        })
        .collect();
    let mut torn_seen = false;
    for _attempt in 0..5 {
        let committed = std::fs::read(&path).unwrap();
        let mut child = Command::new(vnx_tests::vnx())
            .args(["ledger", "append"])
            .current_dir(&root)
            .env("VNX_WRITER", "tester@ci")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let input = big.clone();
        let feeder = std::thread::spawn(move || {
            let _ = stdin.write_all(input.as_bytes());
        });
        // Kill as soon as the segment starts growing: mid-write.
        let deadline = std::time::Instant::now() + std::time::Duration::from_mins(1);
        while std::fs::metadata(&path).unwrap().len() == committed.len() as u64
            && std::time::Instant::now() < deadline
        {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::yield_now();
        }
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
        let _ = child.wait();
        let _ = feeder.join();

        let now = std::fs::read(&path).unwrap();
        assert!(
            now.starts_with(&committed),
            "committed records are never touched"
        );
        let out = vnx(&root, &["verify-ledger", "--json"], b"");
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        let findings = report["segments"][0]["findings"]
            .as_array()
            .unwrap()
            .clone();
        if now.last() == Some(&b'\n') {
            assert_eq!(code(&out), 0, "a complete append verifies: {findings:?}");
            continue;
        }
        torn_seen = true;
        assert_eq!(
            findings.len(),
            1,
            "only the torn tail is wrong: {findings:?}"
        );
        assert_eq!(findings[0]["reason"], "torn_tail");
        // Appends refuse until repaired, and say how.
        let out = vnx(
            &root,
            &["ledger", "append"],
            br#"{"kind":"note","body":{"text":"refused"}}"#,
        );
        assert_eq!(code(&out), 2);
        assert!(text(&out).contains("vnx ledger repair"), "{}", text(&out));
        let out = vnx(&root, &["ledger", "repair", path.to_str().unwrap()], b"");
        assert_eq!(code(&out), 0, "{}", text(&out));
        assert_eq!(code(&vnx(&root, &["verify-ledger"], b"")), 0);
        assert_eq!(
            code(&vnx(
                &root,
                &["ledger", "append"],
                br#"{"kind":"note","body":{"text":"after"}}"#
            )),
            0
        );
        assert_eq!(code(&vnx(&root, &["verify-ledger"], b"")), 0);
        let quarantined_count = std::fs::read_dir(root.join("ledger"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains(".quarantine-")
            })
            .count();
        assert!(quarantined_count >= 1, "the torn bytes are kept");
        break;
    }
    eprintln!("torn tail produced by a real SIGKILL: {torn_seen}");
}
