//! Benchmark client for `tests/bench/serve.sh` (not a test).
//!
//! `sse_bench populate ROOT N` appends N dispatches (started + receipt) to
//! `ROOT/ledger`. `sse_bench measure URL ROOT PID CLIENTS EVENTS` connects
//! CLIENTS SSE clients to a running `vnx serve` (process PID), then makes
//! EVENTS changes, alternately rewriting a dispatch's `live.json` (atomic
//! rename, as the pipeline does) and appending a receipt (durable append),
//! each after a random pause of 0–50 ms so that writes fall anywhere in the
//! server's poll interval. For every change it takes the time from the write
//! returning to each client receiving the matching `card` event. Prints the
//! latency percentiles and the server's RSS (VmRSS from /proc) idle, with
//! the clients connected, after the changes, and after the clients left.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use vnx_ledger::record::{KIND_DISPATCH_RECEIPT, KIND_DISPATCH_STARTED};
use vnx_ledger::{Ledger, NewRecord};
use vnx_types::LivePhase;

const SEGMENT: &str = "bench@host--main.ndjson";

fn started(id: &str) -> NewRecord {
    NewRecord {
        kind: KIND_DISPATCH_STARTED.into(),
        body: json!({"dispatch_id": id, "skill": "implement", "provider": "claude", "lane": "headless",
            "billing": "subscription", "instruction_sha256": "0".repeat(64)}),
    }
}

fn receipt(id: &str, n: u64) -> NewRecord {
    let status = if n.is_multiple_of(5) {
        "failed"
    } else {
        "passed"
    };
    NewRecord {
        kind: KIND_DISPATCH_RECEIPT.into(),
        body: json!({
            "dispatch_id": id, "status": status, "skill": "implement", "provider": "claude", "lane": "headless",
            "billing": "subscription", "outcome": "success", "model": "claude-sonnet-5",
            "usage": {"input_tokens": 1000 + n, "output_tokens": 200, "cache_read_tokens": 5000, "cache_write_tokens": 0},
            "cost_usd_micros": 12_000 + n, "cost_source": "reported", "duration_ms": 40_000 + n,
            "instruction": {"sha256": "0".repeat(64), "parts": []}, "attempts": [],
            "report": {"origin": "worker", "sha256": "1".repeat(64), "valid": true},
            "gates": [
                {"name": "worker-outcome", "layer": "deterministic", "verdict": "pass", "detail": "worker finished: success"},
                {"name": "no-secrets", "layer": "deterministic", "verdict": "pass", "detail": "no secrets added"},
            ],
        }),
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// One SSE client: sends `(key, arrival)` for every `card` event.
async fn client(
    addr: String,
    tx: mpsc::UnboundedSender<(String, Instant)>,
    ready: mpsc::UnboundedSender<()>,
) {
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(
        b"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n",
    )
    .await
    .unwrap();
    let mut buf = String::new();
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        let n = match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let now = Instant::now();
        buf.push_str(&String::from_utf8_lossy(&chunk[..n]));
        buf = buf.replace("\r\n", "\n");
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let mut event = "";
            let mut data = String::new();
            for line in block.lines() {
                if let Some(e) = line.strip_prefix("event: ") {
                    event = if e == "card" {
                        "card"
                    } else if e == "snapshot" {
                        "snapshot"
                    } else {
                        "other"
                    };
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push_str(d);
                }
            }
            match event {
                "snapshot" => {
                    let _ = ready.send(());
                }
                "card" => {
                    let v: Value = serde_json::from_str(&data).unwrap();
                    let key = format!(
                        "{}:{}:{}",
                        v["dispatch_id"].as_str().unwrap_or(""),
                        v["turns"],
                        v["has_receipt"]
                    );
                    if tx.send((key, now)).is_err() {
                        return;
                    }
                }
                _ => {}
            }
        }
    }
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[i.clamp(1, sorted.len()) - 1]
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

async fn measure(url: &str, root: &Path, pid: u32, clients: usize, events: u64, poll_ms: u64) {
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let ledger = Ledger::open(&root.join("ledger")).unwrap();
    // A dispatch in flight whose live.json the changes rewrite.
    let live_id = "d-bench-live";
    let run_dir = vnx_core::live::run_dir(root, live_id);
    let mut live =
        vnx_core::live::new_live_status(live_id, "implement", "claude", None, LivePhase::Worker);
    vnx_core::live::write_live_status(&run_dir, &live).unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;

    let idle = rss_kib(pid);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (ready_tx, mut ready) = mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        tasks.push(tokio::spawn(client(
            addr.clone(),
            tx.clone(),
            ready_tx.clone(),
        )));
    }
    drop(tx);
    for _ in 0..clients {
        ready.recv().await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let connected = rss_kib(pid);

    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut live_lat, mut receipt_lat) = (Vec::new(), Vec::new());
    let (mut live_all, mut receipt_all) = (Vec::new(), Vec::new());
    for i in 0..events {
        tokio::time::sleep(Duration::from_millis(rng.next() % poll_ms.max(1))).await;
        let (key, t0, is_live) = if i % 2 == 0 {
            live.turns = i + 1;
            live.elapsed_ms = i;
            vnx_core::live::write_live_status(&run_dir, &live).unwrap();
            (format!("{live_id}:{}:false", i + 1), Instant::now(), true)
        } else {
            let id = format!("d-bench-{i:06}");
            ledger
                .append(SEGMENT, &[started(&id), receipt(&id, i)])
                .unwrap();
            (format!("{id}:0:true"), Instant::now(), false)
        };
        let mut got = 0;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while got < clients {
            let (k, at) = tokio::time::timeout_at(deadline, rx.recv())
                .await
                .expect("every client gets the change within 30 s")
                .expect("clients alive");
            if k == key {
                got += 1;
                let ms = at.saturating_duration_since(t0).as_secs_f64() * 1000.0;
                if is_live {
                    &mut live_lat
                } else {
                    &mut receipt_lat
                }
                .push(ms);
                if got == clients {
                    if is_live {
                        &mut live_all
                    } else {
                        &mut receipt_all
                    }
                    .push(ms);
                }
            }
        }
    }
    let after = rss_kib(pid);
    for t in &tasks {
        t.abort();
    }
    for t in tasks {
        let _ = t.await;
    }
    // Let the server notice the closed connections (the next change makes it
    // write to every stream).
    live.turns = 0;
    vnx_core::live::write_live_status(&run_dir, &live).unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let left = rss_kib(pid);

    let show = |name: &str, v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        println!(
            "{name:<44} n={:<5} p50 {:>6.1} ms  p99 {:>6.1} ms  max {:>6.1} ms",
            v.len(),
            pct(v, 50.0),
            pct(v, 99.0),
            v[v.len() - 1]
        );
    };
    show("live.json rewrite -> event, per client", &mut live_lat);
    show("live.json rewrite -> event, all clients", &mut live_all);
    show("receipt append -> event, per client", &mut receipt_lat);
    show("receipt append -> event, all clients", &mut receipt_all);
    let mut all: Vec<f64> = live_lat.iter().chain(&receipt_lat).copied().collect();
    show("any change -> event, per client", &mut all);
    println!("LAT_P50={:.1}", pct(&all, 50.0));
    println!("LAT_P99={:.1}", pct(&all, 99.0));
    println!(
        "server RSS: idle {:.1} MiB · {clients} clients connected {:.1} MiB · after {events} changes {:.1} MiB · clients gone {:.1} MiB",
        idle as f64 / 1024.0,
        connected as f64 / 1024.0,
        after as f64 / 1024.0,
        left as f64 / 1024.0
    );
    println!("RSS_IDLE_KIB={idle}");
    println!("RSS_CLIENTS_KIB={connected}");
    println!("RSS_AFTER_KIB={after}");
    println!("RSS_LEFT_KIB={left}");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("populate") => {
            let root = PathBuf::from(&args[1]);
            let n: u64 = args[2].parse().unwrap();
            let ledger = Ledger::open_or_create(&root.join("ledger")).unwrap();
            let batch: Vec<NewRecord> = (0..n)
                .flat_map(|i| {
                    let id = format!("d-old-{i:06}");
                    [started(&id), receipt(&id, i)]
                })
                .collect();
            for chunk in batch.chunks(1000) {
                ledger.append(SEGMENT, chunk).unwrap();
            }
        }
        Some("measure") => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(measure(
                &args[1],
                Path::new(&args[2]),
                args[3].parse().unwrap(),
                args[4].parse().unwrap(),
                args[5].parse().unwrap(),
                args[6].parse().unwrap(),
            ));
        }
        _ => {
            eprintln!(
                "usage: sse_bench populate ROOT N | sse_bench measure URL ROOT PID CLIENTS EVENTS"
            );
            std::process::exit(2);
        }
    }
}
