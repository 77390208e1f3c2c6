//! A scripted fake agent CLI, for the faults a real CLI can't be made to show.
//!
//! Std only. Its arguments are a script, run left to right (like jj's
//! `fake-editor`); with no arguments it prints nothing and exits 0. Every
//! line it prints itself is one JSON object with a `type`, like the real
//! stream-json CLIs.
//!
//! | action | effect |
//! |---|---|
//! | `--line TEXT` | print TEXT and a newline |
//! | `--emit FILE` | copy FILE's bytes to stdout |
//! | `--lines N` | print N lines `{"type":"line","n":i}` |
//! | `--final` | print `{"type":"result","subtype":"success","is_error":false}` |
//! | `--stderr TEXT` | print TEXT and a newline to stderr |
//! | `--sleep-ms MS` | sleep |
//! | `--hang` | sleep forever |
//! | `--hang-after-final` | `--final`, then `--hang` |
//! | `--crash` | abort (the process dies by `SIGABRT`) |
//! | `--exit CODE` | exit with CODE |
//! | `--garbage` | print lines that are not JSON (control characters, half objects) |
//! | `--huge-line BYTES` | print one line of BYTES `x`s, written in 64 KiB chunks |
//! | `--non-utf8` | print a line with invalid UTF-8 bytes |
//! | `--grandchild-holds-pipe` | start `sleep 1000` sharing our stdout/stderr, print `{"type":"grandchild","pid":N}` |
//! | `--echo-stdin` | read stdin to EOF, print `{"type":"stdin","len":N,"text":"..."}` |
//! | `--print-env VAR` | print `{"type":"env","var":"VAR","set":bool,"value":"..."}` |
//! | `--isatty` | print `{"type":"isatty","stdin":bool,"stdout":bool,"stderr":bool}` |
//! | `--pid` | print `{"type":"pid","pid":N}` |
//! | `--write PATH TEXT` | try to write TEXT and a newline to PATH (relative to the cwd), print `{"type":"write","path":"...","ok":bool,"error":"..."}` and go on either way |
//! | `--rm PATH` | remove PATH (a file, or a directory with everything in it), print `{"type":"rm","path":"...","ok":bool}` |
//! | `--run PROG ARG… --end` | run PROG with the ARGs (no shell), wait, print `{"type":"run","program":"...","code":N}` (`-1`: killed by a signal) |
//! | `--once MARKER … --else …` | the first run that creates MARKER (atomically) runs the actions up to `--else` and stops there; later runs skip to after `--else` |
//!
//! Output is flushed after every action, so a reader sees it before a hang.

use std::fmt::Write as _;
use std::io::{IsTerminal, Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut out = std::io::stdout().lock();
    let mut it = args.iter();
    while let Some(action) = it.next() {
        let mut value = || match it.next() {
            Some(v) => v.clone(),
            None => fail(&format!("{action} needs a value")),
        };
        let res = match action.as_str() {
            "--line" => writeln!(out, "{}", value()),
            "--emit" => {
                let path = value();
                match std::fs::read(&path) {
                    Ok(bytes) => out.write_all(&bytes),
                    Err(e) => fail(&format!("--emit {path}: {e}")),
                }
            }
            "--lines" => {
                let n: u64 = number(&value());
                (0..n).try_for_each(|i| writeln!(out, r#"{{"type":"line","n":{i}}}"#))
            }
            "--final" => print_final(&mut out),
            "--stderr" => writeln!(std::io::stderr(), "{}", value()),
            "--sleep-ms" => {
                std::thread::sleep(Duration::from_millis(number(&value())));
                Ok(())
            }
            "--hang" => hang(&mut out),
            "--hang-after-final" => print_final(&mut out).and_then(|()| hang(&mut out)),
            "--crash" => {
                let _ = out.flush();
                std::process::abort();
            }
            "--exit" => {
                let _ = out.flush();
                let code: i32 = value()
                    .parse()
                    .unwrap_or_else(|_| fail("--exit needs a number"));
                std::process::exit(code);
            }
            "--garbage" => out.write_all(
                b"this is not json\n{\"type\":\"half\n\x1b[31mred\x1b[0m \x07bell\t\x00nul\n}}{{\n",
            ),
            "--huge-line" => {
                let mut left: u64 = number(&value());
                let chunk = vec![b'x'; 64 * 1024];
                let mut res = Ok(());
                while left > 0 && res.is_ok() {
                    let n = left.min(chunk.len() as u64) as usize;
                    res = out.write_all(&chunk[..n]);
                    left -= n as u64;
                }
                res.and_then(|()| out.write_all(b"\n"))
            }
            "--non-utf8" => out.write_all(b"{\"type\":\"bytes\",\"v\":\"\xff\xfe\xc3\x28\"}\n"),
            "--grandchild-holds-pipe" => {
                // Inherits our stdout and stderr (and our process group).
                match Command::new("sleep")
                    .arg("1000")
                    .stdin(Stdio::null())
                    .spawn()
                {
                    Ok(child) => writeln!(out, r#"{{"type":"grandchild","pid":{}}}"#, child.id()),
                    Err(e) => fail(&format!("could not start sleep: {e}")),
                }
            }
            "--echo-stdin" => {
                let mut input = Vec::new();
                if let Err(e) = std::io::stdin().read_to_end(&mut input) {
                    fail(&format!("reading stdin: {e}"));
                }
                let text = json_str(&String::from_utf8_lossy(&input));
                writeln!(
                    out,
                    r#"{{"type":"stdin","len":{},"text":{text}}}"#,
                    input.len()
                )
            }
            "--print-env" => {
                let var = value();
                let (set, val) = match std::env::var_os(&var) {
                    Some(v) => (true, v.to_string_lossy().into_owned()),
                    None => (false, String::new()),
                };
                let (var, val) = (json_str(&var), json_str(&val));
                writeln!(
                    out,
                    r#"{{"type":"env","var":{var},"set":{set},"value":{val}}}"#
                )
            }
            "--isatty" => writeln!(
                out,
                r#"{{"type":"isatty","stdin":{},"stdout":{},"stderr":{}}}"#,
                std::io::stdin().is_terminal(),
                std::io::stdout().is_terminal(),
                std::io::stderr().is_terminal()
            ),
            "--write" => {
                let path = value();
                let text = value();
                let (ok, error) = match std::fs::write(&path, format!("{text}\n")) {
                    Ok(()) => (true, String::new()),
                    Err(e) => (false, e.to_string()),
                };
                let (path, error) = (json_str(&path), json_str(&error));
                writeln!(
                    out,
                    r#"{{"type":"write","path":{path},"ok":{ok},"error":{error}}}"#
                )
            }
            "--rm" => {
                let path = value();
                let ok = match std::fs::symlink_metadata(&path) {
                    Ok(m) if m.is_dir() => std::fs::remove_dir_all(&path).is_ok(),
                    Ok(_) => std::fs::remove_file(&path).is_ok(),
                    Err(_) => false,
                };
                let path = json_str(&path);
                writeln!(out, r#"{{"type":"rm","path":{path},"ok":{ok}}}"#)
            }
            "--run" => {
                let program = value();
                let args: Vec<String> =
                    it.by_ref().take_while(|a| *a != "--end").cloned().collect();
                let code = match Command::new(&program)
                    .args(&args)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .status()
                {
                    Ok(status) => status.code().unwrap_or(-1),
                    Err(e) => fail(&format!("--run {program}: {e}")),
                };
                let program = json_str(&program);
                writeln!(out, r#"{{"type":"run","program":{program},"code":{code}}}"#)
            }
            "--pid" => writeln!(out, r#"{{"type":"pid","pid":{}}}"#, std::process::id()),
            "--once" => {
                let marker = value();
                let first = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&marker)
                    .is_ok();
                if !first {
                    for skipped in it.by_ref() {
                        if skipped == "--else" {
                            break;
                        }
                    }
                }
                Ok(())
            }
            // Reached only by the run that created the `--once` marker.
            "--else" => break,
            other => fail(&format!("unknown action {other}")),
        };
        // A closed stdout (the reader went away) ends the script quietly.
        if res.and_then(|()| out.flush()).is_err() {
            std::process::exit(141);
        }
    }
}

fn print_final(out: &mut impl Write) -> std::io::Result<()> {
    writeln!(
        out,
        r#"{{"type":"result","subtype":"success","is_error":false}}"#
    )
}

fn hang(out: &mut impl Write) -> std::io::Result<()> {
    out.flush()?;
    loop {
        std::thread::sleep(Duration::from_hours(1));
    }
}

fn number<T: std::str::FromStr>(s: &str) -> T {
    s.parse()
        .unwrap_or_else(|_| fail(&format!("not a number: {s}")))
}

fn fail(msg: &str) -> ! {
    eprintln!("fake-agent: {msg}");
    std::process::exit(2);
}

/// `s` as a JSON string literal.
fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
