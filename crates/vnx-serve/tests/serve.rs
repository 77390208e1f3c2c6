//! The dashboard over real HTTP on loopback: it only reads, it follows the
//! ledger and live.json as they change, a client that disconnects costs
//! nothing, and a port in use is a clear error.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use vnx_ledger::record::{KIND_APPROVAL, KIND_DISPATCH_RECEIPT, KIND_DISPATCH_STARTED};
use vnx_ledger::{Ledger, NewRecord};
use vnx_serve::{Dashboard, ServeOptions};
use vnx_types::{LivePhase, LiveStatus};

const SEGMENT: &str = "t@h--main.ndjson";
/// Generous: a loaded CI machine may be slow; nothing here measures speed.
const DEADLINE: Duration = Duration::from_secs(30);

fn started(id: &str) -> NewRecord {
    NewRecord {
        kind: KIND_DISPATCH_STARTED.into(),
        body: json!({"dispatch_id": id, "skill": "implement", "provider": "claude", "lane": "headless",
            "billing": "subscription", "instruction_sha256": "0".repeat(64)}),
    }
}

fn receipt(id: &str, status: &str) -> NewRecord {
    NewRecord {
        kind: KIND_DISPATCH_RECEIPT.into(),
        body: json!({
            "dispatch_id": id, "status": status, "skill": "implement", "provider": "claude", "lane": "headless",
            "billing": "subscription", "outcome": "success", "model": "claude-sonnet-5",
            "usage": {"input_tokens": 100, "output_tokens": 20, "cache_read_tokens": 0, "cache_write_tokens": 0},
            "cost_usd_micros": 1500, "cost_source": "reported", "duration_ms": 4200,
            "instruction": {"sha256": "0".repeat(64), "parts": []}, "attempts": [],
            "report": {"origin": "synthesized", "sha256": "1".repeat(64), "valid": false},
            "gates": [
                {"name": "worker-outcome", "layer": "deterministic", "verdict": "pass", "detail": "worker finished: success"},
                {"name": "no-secrets", "layer": "deterministic", "verdict": if status == "passed" { "pass" } else { "fail" }, "detail": "checked"},
            ],
            "approval_required": true,
        }),
    }
}

fn write_live(root: &Path, id: &str, phase: LivePhase, pid: u32) {
    let mut live: LiveStatus =
        vnx_core::live::new_live_status(id, "implement", "claude", Some("claude-sonnet-5"), phase);
    live.pid = pid;
    if phase != LivePhase::Queued {
        live.started_at = Some("2026-11-21T10:00:00.000Z".into());
    }
    vnx_core::live::write_live_status(&vnx_core::live::run_dir(root, id), &live).unwrap();
}

/// A repository root with a ledger and run directories.
struct Fixture {
    _tmp: tempfile::TempDir,
    root: std::path::PathBuf,
    ledger: Ledger,
}

impl Fixture {
    fn new() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let ledger = Ledger::open_or_create(&root.join("ledger")).unwrap();
        Fixture {
            _tmp: tmp,
            root,
            ledger,
        }
    }

    fn options(&self) -> ServeOptions {
        let mut o = ServeOptions::new(self.root.join("ledger"), self.root.clone());
        o.poll_interval = Duration::from_millis(20);
        o
    }

    fn append(&self, record: NewRecord) -> String {
        self.ledger.append(SEGMENT, &[record]).unwrap()[0]
            .hash
            .clone()
    }
}

/// A served dashboard and how to stop it.
struct Served {
    dashboard: Arc<Dashboard>,
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), vnx_serve::ServeError>>,
}

async fn serve(options: ServeOptions) -> Served {
    let dashboard = Arc::new(Dashboard::start(options).unwrap());
    let listener = vnx_serve::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let d = Arc::clone(&dashboard);
    let task = tokio::spawn(async move {
        d.serve(listener, async {
            let _ = stopped.await;
        })
        .await
    });
    Served {
        dashboard,
        addr,
        stop: Some(stop),
        task,
    }
}

impl Served {
    async fn shutdown(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(DEADLINE, self.task)
            .await
            .expect("the server stops after its shutdown signal")
            .unwrap()
            .unwrap();
    }
}

/// One HTTP/1.1 GET; returns status and body.
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    get_with_host(addr, path, "localhost").await
}

async fn get_with_host(addr: SocketAddr, path: &str, host: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

async fn get_json(addr: SocketAddr, path: &str) -> Value {
    let (status, body) = get(addr, path).await;
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

/// An SSE client reading events as `(event, data)`.
struct SseClient {
    stream: TcpStream,
    buf: String,
}

impl SseClient {
    async fn connect(addr: SocketAddr) -> SseClient {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(
                b"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n",
            )
            .await
            .unwrap();
        SseClient {
            stream,
            buf: String::new(),
        }
    }

    /// The next event (chunked-encoding framing is skipped: lines that are
    /// not `event:`/`data:` are ignored).
    async fn next(&mut self) -> (String, Value) {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut event = String::new();
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(e) = line.strip_prefix("event: ") {
                        e.clone_into(&mut event);
                    } else if let Some(d) = line.strip_prefix("data: ") {
                        data.push_str(d);
                    }
                }
                if !event.is_empty() {
                    return (event, serde_json::from_str(&data).unwrap());
                }
                continue;
            }
            let mut chunk = [0u8; 8192];
            let n = tokio::time::timeout(DEADLINE, self.stream.read(&mut chunk))
                .await
                .expect("an event within the deadline")
                .unwrap();
            assert!(n > 0, "the server closed the event stream");
            self.buf.push_str(&String::from_utf8_lossy(&chunk[..n]));
            // Chunk-size lines of the chunked encoding sit between events.
            self.buf = self.buf.replace("\r\n", "\n");
        }
    }

    /// Events until one `card` event for `id` satisfies `pred`.
    async fn until_card(&mut self, id: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + DEADLINE;
        loop {
            assert!(Instant::now() < deadline, "no matching card for {id}");
            let (event, data) = self.next().await;
            if event == "card" && data["dispatch_id"] == id && pred(&data) {
                return data;
            }
        }
    }
}

/// Every file under `dir` with its bytes.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                out.insert(format!("{}/", p.display()), Vec::new());
                stack.push(p);
            } else {
                out.insert(p.display().to_string(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

#[tokio::test]
async fn cards_move_across_columns_as_live_json_and_receipts_arrive() {
    let fx = Fixture::new();
    let me = std::process::id();
    write_live(&fx.root, "d-queued", LivePhase::Queued, me);
    let served = serve(fx.options()).await;
    let addr = served.addr;
    let mut sse = SseClient::connect(addr).await;
    let (event, snap) = sse.next().await;
    assert_eq!(event, "snapshot");
    assert_eq!(snap["cards"][0]["dispatch_id"], "d-queued");
    assert_eq!(snap["cards"][0]["column"], "queued");

    // queued → running → gating → passed, each pushed as it happens.
    fx.append(started("d-queued"));
    write_live(&fx.root, "d-queued", LivePhase::Worker, me);
    sse.until_card("d-queued", |c| c["column"] == "running")
        .await;
    write_live(&fx.root, "d-queued", LivePhase::Gates, me);
    sse.until_card("d-queued", |c| c["column"] == "gating")
        .await;
    let hash = fx.append(receipt("d-queued", "passed"));
    let card = sse
        .until_card("d-queued", |c| c["column"] == "passed")
        .await;
    assert_eq!(card["receipt_hash"], hash.as_str());
    assert_eq!(card["tokens"], 120);
    assert_eq!(card["cost_usd_micros"], 1500);
    assert_eq!(card["approval_required"], true);
    assert_eq!(card["approval"], Value::Null);

    // An approval of that receipt shows on its card.
    fx.append(NewRecord {
        kind: KIND_APPROVAL.into(),
        body: json!({"dispatch_id": "d-queued", "receipt_hash": hash, "decision": "approved", "by": "alice"}),
    });
    sse.until_card("d-queued", |c| c["approval"] == "approved")
        .await;

    // The receipt view: gates, position in the chain, the started record.
    let r = get_json(addr, "/api/receipts/d-queued").await;
    assert_eq!(r["receipt"]["gates"][1]["name"], "no-secrets");
    assert_eq!(r["receipt"]["gates"][1]["verdict"], "pass");
    assert_eq!(r["position"]["segment"], SEGMENT);
    assert_eq!(r["position"]["hash"], hash.as_str());
    assert_eq!(r["position"]["seq"], 2);
    assert_eq!(r["position"]["line"], 3);
    assert_eq!(r["started"]["seq"], 1);
    assert_eq!(r["approval"]["decision"], "approved");
    assert_eq!(r["approval"]["matches_receipt"], true);

    // A dispatch whose vnx process is gone, with no receipt: an orphan.
    fx.append(started("d-dead"));
    write_live(&fx.root, "d-dead", LivePhase::Worker, u32::MAX - 1);
    let card = sse.until_card("d-dead", |c| c["column"] == "failed").await;
    assert_eq!(card["orphan"], true);

    // A failed receipt.
    fx.append(started("d-bad"));
    fx.append(receipt("d-bad", "failed"));
    sse.until_card("d-bad", |c| c["column"] == "failed").await;

    let v = get_json(addr, "/api/verify").await;
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["records"], 7);
    let s = get_json(addr, "/api/stats").await;
    assert_eq!(s["stats"]["totals"]["dispatches"], 2, "{s}");
    assert_eq!(s["stats"]["totals"]["passed"], 1, "{s}");
    assert_eq!(s["in_flight"]["failed"], 1, "{s}");

    let (status, _) = get(addr, "/api/receipts/nope").await;
    assert_eq!(status, 404);
    let (status, _) = get(addr, "/api/receipts/..%2Fetc").await;
    assert_eq!(status, 400);
    served.shutdown().await;
}

#[tokio::test]
async fn serving_changes_nothing_in_the_ledger_or_the_run_directories() {
    let fx = Fixture::new();
    fx.append(started("d-1"));
    let hash = fx.append(receipt("d-1", "passed"));
    fx.append(started("d-2"));
    write_live(&fx.root, "d-1", LivePhase::Done, 1);
    write_live(&fx.root, "d-2", LivePhase::Worker, std::process::id());
    let run2 = vnx_core::live::run_dir(&fx.root, "d-2");
    std::fs::create_dir_all(run2.join("worker")).unwrap();
    std::fs::write(
        run2.join("worker/attempt-1.events.ndjson"),
        "{\"type\":\"system\"}\n{\"type\":\"assistant\"}\n",
    )
    .unwrap();
    std::fs::write(
        vnx_core::live::run_dir(&fx.root, "d-1").join("report.json"),
        "{\"summary\":\"done\"}",
    )
    .unwrap();
    let before = tree(&fx.root);

    let served = serve(fx.options()).await;
    let addr = served.addr;
    for path in [
        "/",
        "/app.js",
        "/style.css",
        "/api/board",
        "/api/verify",
        "/api/stats",
    ] {
        let (status, body) = get(addr, path).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    let r = get_json(addr, "/api/receipts/d-1").await;
    assert_eq!(r["report"]["summary"], "done");
    assert_eq!(r["position"]["hash"], hash.as_str());
    let board = get_json(addr, "/api/board").await;
    let d2 = board["cards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["dispatch_id"] == "d-2")
        .unwrap();
    assert_eq!(d2["column"], "running");
    assert_eq!(d2["events"], 2);
    assert_eq!(d2["last_event"], "assistant");
    let mut sse = SseClient::connect(addr).await;
    assert_eq!(sse.next().await.0, "snapshot");
    drop(sse);
    served.shutdown().await;

    assert_eq!(
        tree(&fx.root),
        before,
        "serving wrote to the ledger or the run directories"
    );
}

#[tokio::test]
async fn a_client_that_disconnects_mid_stream_costs_nothing() {
    let fx = Fixture::new();
    let served = serve(fx.options()).await;
    let addr = served.addr;
    let mut clients = Vec::new();
    for _ in 0..5 {
        let mut c = SseClient::connect(addr).await;
        assert_eq!(c.next().await.0, "snapshot");
        clients.push(c);
    }
    assert_eq!(served.dashboard.clients(), 5);
    drop(clients);
    // Each dropped connection drops its receiver; a change makes the server
    // write to every stream, so even an unnoticed close is found then.
    let deadline = Instant::now() + DEADLINE;
    let mut n = 0;
    while served.dashboard.clients() > 0 {
        assert!(
            Instant::now() < deadline,
            "receivers leaked: {}",
            served.dashboard.clients()
        );
        n += 1;
        fx.append(started(&format!("d-{n}")));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // And the server keeps serving.
    let mut c = SseClient::connect(addr).await;
    assert_eq!(c.next().await.0, "snapshot");
    assert_eq!(get(addr, "/api/board").await.0, 200);
    drop(c);
    served.shutdown().await;
}

#[tokio::test]
async fn shutdown_ends_open_event_streams() {
    let fx = Fixture::new();
    let served = serve(fx.options()).await;
    let mut c = SseClient::connect(served.addr).await;
    assert_eq!(c.next().await.0, "snapshot");
    // Returns only if the open stream ends.
    served.shutdown().await;
}

#[tokio::test]
async fn a_port_in_use_is_a_clear_error() {
    let taken = vnx_serve::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = taken.local_addr().unwrap();
    let err = vnx_serve::bind(addr).await.unwrap_err().to_string();
    assert!(err.contains(&addr.to_string()), "{err}");
    assert!(err.contains("already in use"), "{err}");
    assert!(err.contains("--port"), "{err}");
}

#[tokio::test]
async fn foreign_host_names_are_refused_on_loopback() {
    let fx = Fixture::new();
    let served = serve(fx.options()).await;
    let (status, body) = get_with_host(served.addr, "/api/board", "attacker.example").await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = get_with_host(served.addr, "/api/board", &served.addr.to_string()).await;
    assert_eq!(status, 200);
    served.shutdown().await;
}

#[test]
fn a_missing_ledger_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ledger");
    let Err(err) = Dashboard::start(ServeOptions::new(dir.clone(), tmp.path().to_path_buf()))
    else {
        panic!("started without a ledger");
    };
    let msg = err.to_string();
    assert!(
        msg.contains(&dir.display().to_string()) && msg.contains("--ledger"),
        "{msg}"
    );
}
