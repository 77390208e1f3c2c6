//! Benchmarks of the worker (not a test; run by `tests/bench/worker.sh`).
//!
//! ```text
//! bench_worker overhead <fake-agent> [runs]     # headless lane overhead over a direct spawn
//! bench_worker rss <size-MiB> [dir]             # peak RSS parsing a generated claude stream
//! ```
//!
//! `overhead` runs the same fake-agent script (`--line <init> --final`, a
//! 1 KiB prompt on stdin) N times each way, interleaved: spawned directly
//! with `std::process::Command` (stdin written, stdout read to EOF, waited),
//! through `vnx-exec`'s headless lane with the claude parser as observer, and
//! through the whole `run_worker` (binary lookup, auth guard, argv, lane,
//! parser, event log with fsync, outcome). It prints median and p90 wall
//! times, the ratio to the direct spawn and the absolute difference in ms.
//!
//! `rss` writes a claude `stream-json` event stream of the given size to a
//! file (assistant messages with 16 KiB text blocks, tool results of 16 KiB,
//! a tool call every 8th turn, a final `result`), then runs `cat <file>` as
//! a `command` provider through `run_worker` on the headless lane, and
//! prints this process's peak RSS (`VmHWM`) before and after.
//!
//! The benchmark spawns its baseline child itself, which the library never
//! does: that is the point of the comparison.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vnx_agents::{
    DispatchRequest, OutputFormat, ParseContext, Provider, ProviderConfig, ProviderKind, parser_for,
};
use vnx_core::{EnvSource, WorkerOptions, run_worker};
use vnx_exec::{CancelToken, Flow, HeadlessLane, Invocation, LineRef, RunOptions};
use vnx_types::Lane;

const INIT: &str = r#"{"type":"system","subtype":"init","session_id":"bench","model":"claude-sonnet-4-5","apiKeySource":"none"}"#;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    match args.first().map(String::as_str) {
        Some("overhead") => {
            let fake = PathBuf::from(args.get(1).expect("fake-agent path"));
            let runs: usize = args.get(2).map_or(200, |n| n.parse().unwrap());
            rt.block_on(overhead(&fake, runs));
        }
        Some("rss") => {
            let mib: u64 = args.get(1).map_or(1024, |n| n.parse().unwrap());
            let dir = args.get(2).map_or_else(std::env::temp_dir, PathBuf::from);
            rt.block_on(rss(mib, &dir));
        }
        _ => {
            eprintln!("usage: bench_worker overhead <fake-agent> [runs] | rss <MiB> [dir]");
            std::process::exit(2);
        }
    }
}

fn env() -> Vec<(String, String)> {
    vec![
        ("PATH".into(), std::env::var("PATH").unwrap_or_default()),
        ("HOME".into(), std::env::var("HOME").unwrap_or_default()),
    ]
}

fn command_provider(program: &Path, argv: &[&str]) -> Provider {
    Provider::from_config(
        "bench",
        ProviderConfig {
            kind: Some(ProviderKind::Command),
            binary: Some(program.display().to_string()),
            argv: std::iter::once("bench")
                .chain(argv.iter().copied())
                .map(|s| s.replace('{', "{{").replace('}', "}}"))
                .collect(),
            output: Some(OutputFormat::ClaudeStreamJson),
            ..ProviderConfig::default()
        },
    )
    .unwrap()
}

fn direct(fake: &Path, prompt: &[u8]) -> Duration {
    let t = Instant::now();
    let mut child = Command::new(fake)
        .args(["--line", INIT, "--final"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The fake agent does not read stdin for this script; a 1 KiB write fits the pipe buffer.
    let _ = child.stdin.take().unwrap().write_all(prompt);
    let mut out = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    child.wait().unwrap();
    assert!(out.ends_with(b"\n"));
    t.elapsed()
}

async fn lane(fake: &Path, prompt: &[u8], dir: &Path) -> Duration {
    let t = Instant::now();
    let mut inv = Invocation::new(fake, ["--line", INIT, "--final"]);
    inv.stdin = Some(prompt.to_vec());
    let opts = RunOptions::new(dir.join("lane.ndjson"));
    let mut parser = parser_for(OutputFormat::ClaudeStreamJson, ParseContext::default());
    let mut observer = |line: LineRef<'_>| {
        if let LineRef::Line(bytes) = line {
            parser.feed_line(bytes);
            if parser.saw_final() {
                return Flow::Finished;
            }
        }
        Flow::Continue
    };
    let report = HeadlessLane
        .run(&inv, &opts, &mut observer, &CancelToken::new())
        .await
        .unwrap();
    assert_eq!(report.lines, 2);
    t.elapsed()
}

async fn worker(provider: &Provider, req: &DispatchRequest, opts: &WorkerOptions) -> Duration {
    let t = Instant::now();
    let run = run_worker(req, provider, Lane::Headless, opts, &CancelToken::new())
        .await
        .unwrap();
    assert!(run.succeeded(), "{:?}", run.outcome);
    t.elapsed()
}

fn stats(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (ms(v[v.len() / 2]), ms(v[v.len() * 9 / 10]))
}

async fn overhead(fake: &Path, runs: usize) {
    let dir = tempfile::tempdir().unwrap();
    let prompt = vec![b'p'; 1024];
    let provider = command_provider(fake, &["--line", INIT, "--final"]);
    let req = DispatchRequest::new(String::from_utf8(prompt.clone()).unwrap(), dir.path());
    let mut opts = WorkerOptions::new(dir.path().join("run"));
    opts.env = EnvSource::Fixed(env());
    opts.max_retries = 0;
    for _ in 0..5 {
        direct(fake, &prompt);
        lane(fake, &prompt, dir.path()).await;
        worker(&provider, &req, &opts).await;
    }
    let (mut d, mut l, mut w) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        d.push(direct(fake, &prompt));
        l.push(lane(fake, &prompt, dir.path()).await);
        w.push(worker(&provider, &req, &opts).await);
    }
    let (d50, d90) = stats(d);
    let (l50, l90) = stats(l);
    let (w50, w90) = stats(w);
    println!(
        "headless overhead, {runs} runs each, interleaved (fake agent: --line <init> --final, 1 KiB prompt on stdin)"
    );
    println!("  direct spawn            median {d50:7.3} ms   p90 {d90:7.3} ms");
    println!(
        "  vnx-exec headless lane  median {l50:7.3} ms   p90 {l90:7.3} ms   ratio {:.2}x   +{:.3} ms",
        l50 / d50,
        l50 - d50
    );
    println!(
        "  vnx-core run_worker     median {w50:7.3} ms   p90 {w90:7.3} ms   ratio {:.2}x   +{:.3} ms",
        w50 / d50,
        w50 - d50
    );
}

/// Peak resident set size of this process so far, KiB (`VmHWM`).
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn generate(path: &Path, bytes: u64) -> (u64, u64) {
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    let text = "lorem ipsum dolor sit amet ".repeat(16 * 1024 / 27);
    writeln!(out, "{INIT}").unwrap();
    let (mut written, mut lines, mut turn) = (INIT.len() as u64 + 1, 1u64, 0u64);
    while written < bytes {
        turn += 1;
        let assistant = serde_json::json!({
            "type": "assistant",
            "message": {"id": format!("msg_{turn:010}"), "model": "claude-sonnet-4-5",
                "content": [{"type": "text", "text": text}],
                "usage": {"input_tokens": 10, "output_tokens": 4000,
                          "cache_read_input_tokens": 1000, "cache_creation_input_tokens": 0}},
            "session_id": "bench"});
        let line = assistant.to_string();
        writeln!(out, "{line}").unwrap();
        written += line.len() as u64 + 1;
        let tool = if turn % 8 == 0 {
            serde_json::json!({"type": "assistant", "message": {"id": format!("msg_{turn:010}"),
                "content": [{"type": "tool_use", "id": format!("toolu_{turn}"), "name": "Bash",
                             "input": {"command": "ls"}}]}, "session_id": "bench"})
            .to_string()
        } else {
            serde_json::json!({"type": "user", "message": {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": format!("toolu_{turn}"), "content": text}]},
                "session_id": "bench"})
            .to_string()
        };
        writeln!(out, "{tool}").unwrap();
        written += tool.len() as u64 + 1;
        lines += 2;
    }
    let result = r#"{"type":"result","subtype":"success","is_error":false,"num_turns":1,"duration_ms":1,"total_cost_usd":1.5,"session_id":"bench","result":"done","usage":{"input_tokens":1,"output_tokens":1}}"#;
    writeln!(out, "{result}").unwrap();
    out.flush().unwrap();
    (written + result.len() as u64 + 1, lines + 1)
}

async fn rss(mib: u64, dir: &Path) {
    let dir = tempfile::tempdir_in(dir).unwrap();
    let stream = dir.path().join("stream.ndjson");
    let t = Instant::now();
    let (bytes, lines) = generate(&stream, mib * 1024 * 1024);
    let gen_s = t.elapsed().as_secs_f64();
    let before = peak_rss_kib();
    let cat = PathBuf::from("/bin/cat");
    let provider = command_provider(&cat, &[&stream.display().to_string()]);
    let req = DispatchRequest::new("", dir.path());
    let mut opts = WorkerOptions::new(dir.path().join("run"));
    opts.env = EnvSource::Fixed(env());
    opts.max_retries = 0;
    opts.total_timeout = Some(Duration::from_mins(30));
    let t = Instant::now();
    let run = run_worker(&req, &provider, Lane::Headless, &opts, &CancelToken::new())
        .await
        .unwrap();
    let secs = t.elapsed().as_secs_f64();
    let after = peak_rss_kib();
    assert!(run.succeeded(), "{:?}", run.outcome);
    let log = run.event_log().unwrap();
    assert_eq!(log.bytes, bytes);
    println!(
        "claude stream-json through run_worker (headless lane + parser): {:.1} MiB, {lines} lines (generated in {gen_s:.1} s)",
        bytes as f64 / 1_048_576.0
    );
    println!(
        "  parsed in {secs:.1} s ({:.0} MiB/s); events {}, tool calls {}, event log sha256 {}",
        bytes as f64 / 1_048_576.0 / secs,
        run.outcome.events,
        run.outcome.tool_calls.len(),
        &log.sha256[..16]
    );
    println!(
        "  peak RSS (VmHWM) of the vnx process: {:.1} MiB before the run, {:.1} MiB after (target < 64 MiB)",
        before as f64 / 1024.0,
        after as f64 / 1024.0
    );
}
