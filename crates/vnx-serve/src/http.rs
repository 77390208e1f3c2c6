//! The HTTP routes. Every handler only reads: the board in memory, ledger
//! lines at known offsets, `report.json`, and verification.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use crate::Shared;
use crate::scan::{read_record_at, valid_dispatch_id};

const INDEX_HTML: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");
const STYLE_CSS: &str = include_str!("../assets/style.css");

/// The page may load only its own assets and talk only to this server.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// `report.json` larger than this is not shown.
const REPORT_MAX_BYTES: u64 = 1 << 20;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { asset(INDEX_HTML, "text/html; charset=utf-8") }),
        )
        .route(
            "/app.js",
            get(|| async { asset(APP_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/style.css",
            get(|| async { asset(STYLE_CSS, "text/css; charset=utf-8") }),
        )
        .route("/api/board", get(board))
        .route("/api/events", get(events))
        .route("/api/receipts/{id}", get(receipt))
        .route("/api/verify", get(verify))
        .route("/api/stats", get(stats))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&shared),
            host_guard,
        ))
        .with_state(shared)
}

fn asset(text: &'static str, content_type: &'static str) -> Response {
    let mut r = Response::new(Body::from(text));
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

fn json_text(status: StatusCode, text: String) -> Response {
    let mut r = Response::new(Body::from(text));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn json_of(status: StatusCode, value: &impl Serialize) -> Response {
    match serde_json::to_string(value) {
        Ok(text) => json_text(status, text),
        Err(e) => json_text(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({ "error": e.to_string() }).to_string(),
        ),
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    json_of(status, &json!({ "error": message }))
}

/// Refuses requests whose `Host` is not a loopback name while bound to a
/// loopback address.
async fn host_guard(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    if shared.loopback_only.load(Ordering::Relaxed) {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        if !is_loopback_host(host) {
            return error(
                StatusCode::FORBIDDEN,
                "this dashboard answers only to localhost, 127.0.0.1 or [::1]",
            );
        }
    }
    next.run(req).await
}

fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(n, _)| n)
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

async fn board(State(shared): State<Arc<Shared>>) -> Response {
    json_text(StatusCode::OK, shared.snapshot_json().1)
}

/// What an SSE stream holds between two events.
struct Stream {
    shared: Arc<Shared>,
    first: Option<Event>,
    rx: tokio::sync::broadcast::Receiver<crate::Update>,
    shutdown: tokio::sync::watch::Receiver<bool>,
}

fn snapshot_event(shared: &Shared) -> Event {
    let (version, data) = shared.snapshot_json();
    Event::default()
        .event("snapshot")
        .id(version.to_string())
        .data(data)
}

async fn events(State(shared): State<Arc<Shared>>) -> Response {
    // Subscribe before taking the snapshot: no change can fall between them.
    let rx = shared.tx.subscribe();
    let shutdown = shared.shutdown.subscribe();
    let keep_alive = shared.options.keep_alive;
    let state = Stream {
        first: Some(snapshot_event(&shared)),
        shared,
        rx,
        shutdown,
    };
    let stream = futures_util::stream::unfold(state, |mut st| async move {
        if let Some(ev) = st.first.take() {
            return Some((Ok::<_, Infallible>(ev), st));
        }
        if *st.shutdown.borrow() {
            return None;
        }
        let ev = tokio::select! {
            r = st.rx.recv() => match r {
                Ok(u) => Event::default().event(u.event).id(u.version.to_string()).data(&*u.data),
                // Too slow to keep up: start over from a fresh snapshot.
                Err(RecvError::Lagged(_)) => {
                    st.rx = st.rx.resubscribe();
                    snapshot_event(&st.shared)
                }
                Err(RecvError::Closed) => return None,
            },
            _ = st.shutdown.changed() => return None,
        };
        Some((Ok(ev), st))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(keep_alive))
        .into_response()
}

async fn receipt(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    if !valid_dispatch_id(&id) {
        return error(StatusCode::BAD_REQUEST, "not a dispatch id");
    }
    let (card, facts, head) = {
        let board = shared.read_board();
        let Some(card) = board.cards.get(&id).cloned() else {
            return error(
                StatusCode::NOT_FOUND,
                &format!("no dispatch {id} on the board"),
            );
        };
        let facts = board.facts.get(&id).cloned().unwrap_or_default();
        let head = facts
            .receipt
            .as_ref()
            .and_then(|(_, loc)| board.heads.get(&loc.segment).cloned());
        (card, facts, head)
    };
    let run_dir = vnx_core::live::run_dir(&shared.options.root, &id);
    let result = tokio::task::spawn_blocking(move || {
        let (receipt, receipt_error, position) = match &facts.receipt {
            None => (Value::Null, Value::Null, Value::Null),
            Some((_, loc)) => match read_record_at(loc) {
                Ok(mut record) => {
                    let position = json!({
                        "segment": loc.segment,
                        "line": loc.line,
                        "seq": loc.seq,
                        "hash": loc.hash,
                        "prev": record["prev"],
                        "ts": loc.ts,
                        "segment_records": head.as_ref().map(|h| h.records),
                        "segment_head_seq": head.as_ref().and_then(|h| h.head_seq),
                        "segment_head_hash": head.as_ref().and_then(|h| h.head_hash.clone()),
                    });
                    (record["body"].take(), Value::Null, position)
                }
                Err(e) => (Value::Null, Value::String(e), Value::Null),
            },
        };
        let (report, report_error) = read_report(&run_dir.join("report.json"));
        let approval = facts.approval.as_ref().map(|(a, loc)| {
            json!({
                "decision": a.decision,
                "by": a.by,
                "reason": a.reason,
                "receipt_hash": a.receipt_hash,
                "matches_receipt": facts.receipt.as_ref().is_some_and(|(_, r)| r.hash == a.receipt_hash),
                "record": loc,
            })
        });
        json!({
            "dispatch_id": card.dispatch_id,
            "card": card,
            "receipt": receipt,
            "receipt_error": receipt_error,
            "position": position,
            "started": facts.started.as_ref().map(|(_, loc)| loc),
            "approval": approval,
            "report": report,
            "report_error": report_error,
            "live": facts.live,
        })
    })
    .await;
    match result {
        Ok(v) => json_of(StatusCode::OK, &v),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// `report.json` as JSON (or as text when it is not JSON); `(null, null)` when absent.
fn read_report(path: &std::path::Path) -> (Value, Value) {
    let Ok(meta) = std::fs::metadata(path) else {
        return (Value::Null, Value::Null);
    };
    if meta.len() > REPORT_MAX_BYTES {
        let msg = format!(
            "{} is {} bytes; over {REPORT_MAX_BYTES}, not shown",
            path.display(),
            meta.len()
        );
        return (Value::Null, Value::String(msg));
    }
    match std::fs::read(path) {
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(v) => (v, Value::Null),
            Err(_) => (
                Value::String(String::from_utf8_lossy(&bytes).into_owned()),
                Value::Null,
            ),
        },
        Err(e) => (
            Value::Null,
            Value::String(format!("cannot read {}: {e}", path.display())),
        ),
    }
}

/// Answers from `cache` while the ledger is unchanged, else computes
/// `compute()` on a blocking thread and keeps it.
async fn cached(
    shared: &Shared,
    cache: &crate::Cache,
    compute: impl FnOnce(u64) -> Value + Send + 'static,
) -> Arc<str> {
    let ledger_version = shared.read_board().ledger_version;
    let mut cache = cache.lock().await;
    if let Some((v, text)) = cache.as_ref()
        && *v == ledger_version
    {
        return Arc::clone(text);
    }
    let value = tokio::task::spawn_blocking(move || compute(ledger_version))
        .await
        .unwrap_or_else(|e| json!({ "ok": false, "error": e.to_string() }));
    let text: Arc<str> = value.to_string().into();
    *cache = Some((ledger_version, Arc::clone(&text)));
    text
}

async fn verify(State(shared): State<Arc<Shared>>) -> Response {
    let dir = shared.options.ledger_dir.clone();
    let text = cached(&shared, &shared.verify_cache, move |ledger_version| {
        let started = Instant::now();
        let report = vnx_ledger::verify_paths(&[dir], &vnx_ledger::VerifyOptions::default());
        let elapsed_ms = started.elapsed().as_millis() as u64;
        match report {
            Ok(report) => verify_json(&report, ledger_version, elapsed_ms),
            Err(e) => {
                json!({ "ok": false, "error": e.to_string(), "ledger_version": ledger_version })
            }
        }
    })
    .await;
    json_text(StatusCode::OK, text.to_string())
}

fn file_name(path: &std::path::Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn verify_json(report: &vnx_ledger::Report, ledger_version: u64, elapsed_ms: u64) -> Value {
    const SHOWN: usize = 200;
    let findings: Vec<Value> = report
        .all_findings()
        .take(SHOWN)
        .map(|f| {
            json!({
                "segment": file_name(&f.path),
                "line": f.line,
                "seq": f.seq,
                "reason": f.reason,
                "label": f.reason.label(),
                "severity": f.severity,
                "detail": f.detail,
            })
        })
        .collect();
    let segments: Vec<Value> = report
        .segments
        .iter()
        .map(|s| {
            json!({
                "segment": file_name(&s.path),
                "records": s.records,
                "bytes": s.bytes,
                "head_seq": s.head_seq,
                "head_hash": s.head_hash,
                "findings": s.findings.len(),
            })
        })
        .collect();
    json!({
        "ok": report.ok,
        "records": report.records(),
        "segments": segments,
        "findings": findings,
        "findings_total": report.all_findings().count(),
        "ledger_version": ledger_version,
        "verified_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "duration_ms": elapsed_ms,
    })
}

async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    let dir = shared.options.ledger_dir.clone();
    let in_flight = crate::stats::in_flight(shared.read_board().cards.values());
    let text = cached(
        &shared,
        &shared.stats_cache,
        move |ledger_version| match vnx_stats::compute(&dir, &vnx_stats::StatsFilter::default()) {
            Ok(stats) => json!({ "stats": stats, "ledger_version": ledger_version }),
            Err(e) => json!({ "error": e.to_string(), "ledger_version": ledger_version }),
        },
    )
    .await;
    // What is in flight changes without the ledger changing: not cached.
    let mut value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    value["in_flight"] = serde_json::to_value(in_flight).unwrap_or(Value::Null);
    json_of(StatusCode::OK, &value)
}

#[cfg(test)]
mod tests {
    use super::is_loopback_host;

    #[test]
    fn loopback_hosts() {
        for ok in [
            "localhost",
            "localhost:7341",
            "127.0.0.1:80",
            "127.0.0.1",
            "[::1]:7341",
            "[::1]",
            "LOCALHOST:1",
        ] {
            assert!(is_loopback_host(ok), "{ok}");
        }
        for bad in [
            "",
            "evil.example:7341",
            "192.168.1.2:7341",
            "[::2]:1",
            "localhost.evil.example",
        ] {
            assert!(!is_loopback_host(bad), "{bad}");
        }
    }
}
