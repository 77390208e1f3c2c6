//! The ledger's edges, as an outside attack found them: symbolic links in
//! place of segments or the ledger directory, records over the line limit,
//! and appends and repairs on a full disk (a real, small tmpfs).

// Helpers outside #[test] functions may panic on setup failures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::json;
use vnx_ledger::read::segment_paths;
use vnx_ledger::verify::MAX_LINE_BYTES;
use vnx_ledger::{Ledger, NewRecord, VerifyOptions};

fn note(text: &str) -> NewRecord {
    NewRecord {
        kind: "note".into(),
        body: json!({ "text": text }),
    }
}

fn ledger_in(parent: &Path) -> (PathBuf, Ledger) {
    let dir = parent.join("ledger");
    let ledger = build(&dir, ID_A, SEGMENT, 3);
    (dir, ledger)
}

/// Every file name in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

// ---------------------------------------------------------------- symlinks

/// A file outside the ledger that a link points at, holding a copy of a
/// valid segment (so that following the link would "work").
fn outside_target(tmp: &Path, dir: &Path) -> PathBuf {
    let target = tmp.join("outside.ndjson");
    std::fs::copy(seg(dir), &target).unwrap();
    std::fs::remove_file(seg(dir)).unwrap();
    symlink(&target, seg(dir)).unwrap();
    target
}

#[test]
fn append_refuses_a_symlinked_segment_and_writes_nothing_outside() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, ledger) = ledger_in(tmp.path());
    let target = outside_target(tmp.path(), &dir);
    let before = std::fs::read(&target).unwrap();

    let err = ledger
        .append(SEGMENT, &[note("through the link")])
        .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("symbolic link"), "{message}");
    assert!(
        message.contains(&seg(&dir).display().to_string()),
        "{message}"
    );
    assert_eq!(std::fs::read(&target).unwrap(), before);
}

#[test]
fn append_refuses_a_dangling_symlinked_segment_and_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, ledger) = ledger_in(tmp.path());
    let target = tmp.path().join("created-through-link.ndjson");
    symlink(&target, dir.join("new--main.ndjson")).unwrap();

    let err = ledger.append("new--main.ndjson", &[note("x")]).unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert!(
        !target.exists(),
        "the append created a file outside the ledger"
    );
}

#[test]
fn repair_refuses_a_symlinked_segment_and_truncates_nothing_outside() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, ledger) = ledger_in(tmp.path());
    let target = outside_target(tmp.path(), &dir);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&target)
        .unwrap()
        .write_all(b"{\"torn")
        .unwrap();
    let before = std::fs::read(&target).unwrap();

    let err = ledger.repair(SEGMENT).unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert_eq!(std::fs::read(&target).unwrap(), before);
    assert!(
        !names(&dir).iter().any(|n| n.contains("quarantine")),
        "{:?}",
        names(&dir)
    );
}

#[test]
fn the_listing_reports_a_symlinked_segment_instead_of_skipping_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, _ledger) = ledger_in(tmp.path());
    std::fs::write(tmp.path().join("passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    let link = dir.join("zz--main.ndjson");
    symlink(tmp.path().join("passwd"), &link).unwrap();

    let err = segment_paths(&dir).expect_err("the link was skipped silently");
    let message = err.to_string();
    assert!(message.contains("symbolic link"), "{message}");
    assert!(message.contains(&link.display().to_string()), "{message}");
}

#[test]
fn a_symlinked_ledger_directory_is_refused_by_open_append_and_listing() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, _ledger) = ledger_in(tmp.path());
    let link = tmp.path().join("linked");
    symlink(&dir, &link).unwrap();
    let before = std::fs::read(seg(&dir)).unwrap();

    for path in [link.clone(), link.join("")] {
        let err = Ledger::open(&path).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{path:?}: {err}");
        let err = Ledger::open_or_create(&path).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{path:?}: {err}");
        let err = segment_paths(&path).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{path:?}: {err}");
    }
    assert_eq!(std::fs::read(seg(&dir)).unwrap(), before);
}

#[test]
fn a_symlinked_manifest_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, _ledger) = ledger_in(tmp.path());
    let elsewhere = tmp.path().join("ledger.json");
    std::fs::rename(dir.join("ledger.json"), &elsewhere).unwrap();
    symlink(&elsewhere, dir.join("ledger.json")).unwrap();
    let err = Ledger::open(&dir).unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");
}

#[test]
fn a_fifo_named_like_a_segment_is_refused_not_opened() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, ledger) = ledger_in(tmp.path());
    let fifo = dir.join("fifo--main.ndjson");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let err = ledger
        .append("fifo--main.ndjson", &[note("x")])
        .unwrap_err();
    assert!(err.to_string().contains("not a regular file"), "{err}");
}

// ---------------------------------------------------------- the line limit

/// Length of the line (without `\n`) that `note(text)` becomes as the next
/// record of a copy of `dir`, measured by appending it to the copy.
fn note_line_len(dir: &Path, scratch: &Path, text_len: usize) -> usize {
    let copy = scratch.join(format!("copy-{text_len}"));
    std::fs::create_dir_all(&copy).unwrap();
    for name in names(dir) {
        std::fs::copy(dir.join(&name), copy.join(&name)).unwrap();
    }
    let ledger = Ledger::open(&copy).unwrap().with_clock(fixed_clock());
    let before = std::fs::metadata(seg(&copy)).unwrap().len();
    ledger
        .append(SEGMENT, &[note(&"x".repeat(text_len))])
        .unwrap();
    let after = std::fs::metadata(seg(&copy)).unwrap().len();
    std::fs::remove_dir_all(&copy).unwrap();
    usize::try_from(after - before).unwrap() - 1
}

#[test]
fn append_takes_a_line_of_exactly_the_limit_and_refuses_one_byte_more() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, ledger) = ledger_in(tmp.path());
    let overhead = note_line_len(&dir, tmp.path(), 0);
    let fits = MAX_LINE_BYTES - overhead;

    let before = std::fs::read(seg(&dir)).unwrap();
    let err = ledger
        .append(SEGMENT, &[note("small"), note(&"x".repeat(fits + 1))])
        .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("input record 2"), "{message}");
    assert!(message.contains("`note`"), "{message}");
    assert!(
        message.contains(&(MAX_LINE_BYTES + 1).to_string()),
        "{message}"
    );
    assert_eq!(
        std::fs::read(seg(&dir)).unwrap(),
        before,
        "nothing may be written"
    );

    ledger
        .append(SEGMENT, &[note(&"x".repeat(fits))])
        .expect("a line of exactly MAX_LINE_BYTES is allowed");
    let last = lines(&seg(&dir)).pop().unwrap();
    assert_eq!(last.len() - 1, MAX_LINE_BYTES);
    let (ok, findings) = found(&dir, &VerifyOptions::default());
    assert!(ok, "{findings:?}");
}

#[test]
fn a_body_far_over_the_limit_is_refused_before_anything_is_built() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, ledger) = ledger_in(tmp.path());
    let before = std::fs::read(seg(&dir)).unwrap();
    let err = ledger
        .append(
            SEGMENT,
            &[NewRecord {
                kind: "x.tool.blob".into(),
                body: json!({ "data": "y".repeat(100 << 20) }),
            }],
        )
        .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("`x.tool.blob`"), "{message}");
    assert!(message.contains("Nothing was appended"), "{message}");
    assert_eq!(std::fs::read(seg(&dir)).unwrap(), before);
}

// --------------------------------------------------------------- repair

#[test]
fn repair_refuses_when_the_last_complete_line_was_edited_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, ledger) = ledger_in(tmp.path());
    let mut all = lines(&seg(&dir));
    let last = all.len() - 1;
    // Edit the last complete line without re-hashing, then tear the tail.
    let i = all[last].iter().position(|&b| b == b'n').unwrap();
    all[last][i] = b'N';
    all.push(b"{\"torn".to_vec());
    write_lines(&seg(&dir), &all);
    let before = std::fs::read(seg(&dir)).unwrap();
    let names_before = names(&dir);

    let err = ledger.repair(SEGMENT).unwrap_err();
    assert!(err.to_string().contains("does not verify"), "{err}");
    assert_eq!(std::fs::read(seg(&dir)).unwrap(), before);
    assert_eq!(names(&dir), names_before);
}

#[test]
fn repair_moves_a_large_torn_tail_and_records_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, ledger) = ledger_in(tmp.path());
    let cut = std::fs::metadata(seg(&dir)).unwrap().len();
    // Several copy blocks, not a multiple of the block size.
    let torn: Vec<u8> = (0..(5 << 20) + 17).map(|i| b'a' + (i % 26) as u8).collect();
    std::fs::OpenOptions::new()
        .append(true)
        .open(seg(&dir))
        .unwrap()
        .write_all(&torn)
        .unwrap();

    let outcome = ledger.repair(SEGMENT).unwrap();
    assert_eq!(outcome.torn_bytes, torn.len() as u64);
    assert_eq!(std::fs::read(&outcome.quarantine).unwrap(), torn);
    let record = outcome.record.expect("the repair is recorded");
    assert_eq!(
        record.end_offset,
        std::fs::metadata(seg(&dir)).unwrap().len()
    );
    let last = lines(&seg(&dir)).pop().unwrap();
    let text = String::from_utf8(last).unwrap();
    let sha = hex_sha256(&torn);
    assert!(text.contains(&format!("\"offset\":{cut}")), "{text}");
    assert!(text.contains(&sha), "{text}");
    let (ok, findings) = found(&dir, &VerifyOptions::default());
    assert!(ok, "{findings:?}");
    // A second tear and repair in the same (fixed) millisecond gets its own
    // quarantine file instead of losing the bytes to a name clash.
    std::fs::OpenOptions::new()
        .append(true)
        .open(seg(&dir))
        .unwrap()
        .write_all(b"second")
        .unwrap();
    let again = ledger.repair(SEGMENT).unwrap();
    assert_ne!(again.quarantine, outcome.quarantine);
    assert_eq!(std::fs::read(&again.quarantine).unwrap(), b"second");
    assert_eq!(std::fs::read(&outcome.quarantine).unwrap(), torn);
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

// ------------------------------------------------------------- full disk

/// A 1 MiB tmpfs mounted on a temporary directory, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// `None` (with the reason printed) where mounting is not permitted.
    fn mount() -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs { dir }),
            Ok(o) => {
                eprintln!(
                    "SKIPPED: cannot mount a tmpfs to fill ({}): {}",
                    o.status,
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: cannot run mount: {e}");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the filesystem with a filler file until a write fails with
    /// ENOSPC; returns the filler's path.
    fn fill(&self) -> PathBuf {
        let path = self.path().join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let block = vec![0u8; 4096];
        loop {
            match file.write(&block) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(nix::libc::ENOSPC) => break,
                Err(e) => panic!("filling: {e}"),
            }
        }
        file.sync_all().unwrap();
        path
    }

    /// Frees exactly one page of the filler (tmpfs counts whole pages).
    fn free_one_page(filler: &Path) {
        let len = std::fs::metadata(filler).unwrap().len();
        let pages = len.div_ceil(4096);
        std::fs::OpenOptions::new()
            .write(true)
            .open(filler)
            .unwrap()
            .set_len((pages - 1) * 4096)
            .unwrap();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

fn is_enospc(err: &vnx_ledger::LedgerError) -> bool {
    let mut source: Option<&dyn std::error::Error> = Some(err);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io.raw_os_error() == Some(nix::libc::ENOSPC)
        {
            return true;
        }
        source = e.source();
    }
    false
}

#[test]
fn a_failed_append_on_a_full_disk_leaves_the_segment_as_it_was() {
    let Some(fs) = Tmpfs::mount() else { return };
    let (dir, ledger) = ledger_in(fs.path());
    let before = std::fs::read(seg(&dir)).unwrap();
    let filler = fs.fill();

    // Larger than any slack in the segment's last page: part of it can be
    // written before the disk is full.
    let err = ledger
        .append(SEGMENT, &[note(&"z".repeat(20_000))])
        .unwrap_err();
    assert!(is_enospc(&err), "{err:?}");
    assert!(err.to_string().contains("nothing was appended"), "{err}");
    assert_eq!(
        std::fs::read(seg(&dir)).unwrap(),
        before,
        "a torn tail was left"
    );
    assert!(
        !names(&dir).iter().any(|n| n.contains(".tmp-")),
        "{:?}",
        names(&dir)
    );

    // With room again, the next append works and the ledger verifies.
    std::fs::remove_file(filler).unwrap();
    ledger.append(SEGMENT, &[note("after")]).unwrap();
    let (ok, findings) = found(&dir, &VerifyOptions::default());
    assert!(ok, "{findings:?}");
}

#[test]
fn creating_a_segment_on_a_full_disk_leaves_no_file() {
    let Some(fs) = Tmpfs::mount() else { return };
    let (dir, ledger) = ledger_in(fs.path());
    let names_before = names(&dir);
    fs.fill();
    let err = ledger.append("new--main.ndjson", &[note("x")]).unwrap_err();
    assert!(is_enospc(&err), "{err:?}");
    assert_eq!(names(&dir), names_before);
}

/// Tears the segment's tail with `torn` bytes.
fn tear(dir: &Path, torn: &[u8]) {
    std::fs::OpenOptions::new()
        .append(true)
        .open(seg(dir))
        .unwrap()
        .write_all(torn)
        .unwrap();
}

#[test]
fn a_repair_on_a_full_disk_changes_nothing_and_leaves_no_temp_file() {
    let Some(fs) = Tmpfs::mount() else { return };
    let (dir, ledger) = ledger_in(fs.path());
    tear(&dir, &[b'q'; 100]);
    let before = std::fs::read(seg(&dir)).unwrap();
    let names_before = names(&dir);
    let filler = fs.fill();

    let err = ledger.repair(SEGMENT).unwrap_err();
    assert!(is_enospc(&err), "{err:?}");
    assert!(err.to_string().contains("Nothing was changed"), "{err}");
    assert_eq!(std::fs::read(seg(&dir)).unwrap(), before);
    assert_eq!(
        names(&dir),
        names_before,
        "a temp or quarantine file was left"
    );

    std::fs::remove_file(filler).unwrap();
    let outcome = ledger.repair(SEGMENT).unwrap();
    assert_eq!(std::fs::read(outcome.quarantine).unwrap(), [b'q'; 100]);
    let (ok, findings) = found(&dir, &VerifyOptions::default());
    assert!(ok, "{findings:?}");
}

#[test]
fn a_repair_whose_record_does_not_fit_puts_the_segment_back() {
    let Some(fs) = Tmpfs::mount() else { return };
    let (dir, ledger) = ledger_in(fs.path());
    // Pad with a note so that the last complete line ends 100 bytes before
    // a page boundary; the 100 torn bytes then fill that page exactly, and
    // the repair record (longer than 100 bytes) needs one more page.
    let len = |dir: &Path| usize::try_from(std::fs::metadata(seg(dir)).unwrap().len()).unwrap();
    let overhead = note_line_len(&dir, fs.path(), 0) + 1;
    let want_end = (len(&dir) + overhead + 100).div_ceil(4096) * 4096 - 100;
    ledger
        .append(
            SEGMENT,
            &[note(&"p".repeat(want_end - len(&dir) - overhead))],
        )
        .unwrap();
    assert_eq!(len(&dir) % 4096, 4096 - 100);
    tear(&dir, &[b'q'; 100]);
    assert_eq!(len(&dir) % 4096, 0);
    let before = std::fs::read(seg(&dir)).unwrap();
    let names_before = names(&dir);
    // Room for the quarantine file's one page, none for the record.
    let filler = fs.fill();
    Tmpfs::free_one_page(&filler);

    let err = ledger.repair(SEGMENT).unwrap_err();
    assert!(is_enospc(&err), "{err:?}");
    // It failed writing the record into the segment, after the quarantine
    // file was complete.
    let message = err.to_string();
    assert!(
        message.contains(&format!("cannot write {}", seg(&dir).display())),
        "{message}"
    );
    assert!(message.contains("Nothing was changed"), "{message}");
    assert_eq!(
        std::fs::read(seg(&dir)).unwrap(),
        before,
        "the segment was not put back"
    );
    assert_eq!(names(&dir), names_before, "the quarantine file was left");

    std::fs::remove_file(filler).unwrap();
    ledger.repair(SEGMENT).unwrap();
    let (ok, findings) = found(&dir, &VerifyOptions::default());
    assert!(ok, "{findings:?}");
}
