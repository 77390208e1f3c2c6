//! `vnx serve`: a read-only live dashboard of a repository's dispatches.
//!
//! A board with one card per dispatch in columns queued, running, gating,
//! passed and failed; each receipt's gates, report, hashes and position in
//! the chain; the chain status from verification; tokens and cost.
//!
//! Sources, all only read:
//! - the ledger directory's segments (`dispatch.started`, `dispatch.receipt`,
//!   `approval` records), read incrementally: each poll reads only the
//!   complete lines appended since the previous one;
//! - `<root>/.vnx/runs/<dispatch-id>/live.json` (a hint while a dispatch is in
//!   flight; the receipt is the truth) and the worker's raw event logs
//!   `worker/attempt-N.events.ndjson`, whose lines are counted.
//!
//! Changes are found by polling (default every 200 ms: size and mtime of each
//! segment and of the `live.json` of every dispatch still in flight) on one
//! std thread, and pushed to browsers as Server-Sent Events through a
//! `tokio::sync::broadcast` channel. A client that disconnects drops its
//! receiver; a client too slow to keep up gets a fresh snapshot instead of
//! the updates it missed.
//!
//! HTTP routes (JSON unless said otherwise; units: ms, tokens, micro-USD):
//! - `GET /` the page; `GET /app.js`, `GET /style.css` its assets, embedded
//!   in the binary (nothing is fetched from elsewhere, and the page's
//!   Content-Security-Policy forbids it);
//! - `GET /api/board`: `{version, ledger_version, cards: [Card], segments, …}`;
//! - `GET /api/events`: SSE; event `snapshot` (the board, first), `card` (one
//!   [`Card`] changed), `remove` (`{dispatch_id}`), `ledger` (`{ledger_version}`:
//!   refetch verification and stats); keep-alive comments;
//! - `GET /api/receipts/{dispatch_id}`: the receipt body, its position in the
//!   chain, the started record, the approval, `report.json`, `live.json`;
//! - `GET /api/verify`: `vnx_ledger::verify_paths` of the ledger, cached
//!   until the ledger changes;
//! - `GET /api/stats`: `{stats, in_flight}`: `vnx_stats::compute` of the
//!   ledger (as `vnx stats --json`), cached until the ledger changes, and
//!   the dispatches without a receipt by column.
//!
//! When bound to a loopback address, requests whose `Host` is not a loopback
//! name are refused (a web page elsewhere cannot read the ledger through DNS
//! rebinding).

mod board;
mod http;
mod scan;
mod stats;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{broadcast, watch};

pub use board::{Card, Column, RecordLoc};
pub use scan::SegmentHead;

use board::Facts;
use scan::Tracker;

/// Default port of `vnx serve`.
pub const DEFAULT_PORT: u16 = 7341;

/// Default time between two polls of the ledger and the run directories.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(200);

/// What to serve and how.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The ledger directory (segments and `ledger.json`).
    pub ledger_dir: PathBuf,
    /// The repository root: run directories are `<root>/.vnx/runs/<id>/`.
    pub root: PathBuf,
    /// Time between two polls for changes.
    pub poll_interval: Duration,
    /// Time between two SSE keep-alive comments.
    pub keep_alive: Duration,
    /// A connection that has not sent a request's whole header this long
    /// after it opened, or after its previous response ended, is closed
    /// (slow, half-open and idle keep-alive connections). An SSE stream is
    /// a response in progress, so this never cuts it.
    pub idle_timeout: Duration,
    /// Connections served at once; more wait in the listen backlog until
    /// one closes.
    pub max_connections: usize,
}

/// Default [`ServeOptions::idle_timeout`]: 10 s.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Default [`ServeOptions::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;

impl ServeOptions {
    /// Options with the default poll interval (200 ms), keep-alive (15 s),
    /// idle timeout (10 s) and connection cap (256).
    pub fn new(ledger_dir: PathBuf, root: PathBuf) -> ServeOptions {
        ServeOptions {
            ledger_dir,
            root,
            poll_interval: DEFAULT_POLL_INTERVAL,
            keep_alive: Duration::from_secs(15),
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// Why the dashboard could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Another process listens on the address.
    #[error(
        "cannot listen on {addr}: the address is already in use (another `vnx serve`?); pick another port with --port, or --port 0 for any free one"
    )]
    AddrInUse {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// Any other error binding the address.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The ledger directory does not exist.
    #[error(
        "no ledger at {}: run `vnx init` in the repository, or pass --ledger DIR",
        path.display()
    )]
    NoLedger {
        /// The directory looked for.
        path: PathBuf,
    },
    /// The polling thread could not be started.
    #[error("cannot start the dashboard's polling thread: {0}")]
    Watcher(std::io::Error),
    /// The HTTP server failed.
    #[error("the dashboard's HTTP server stopped: {0}")]
    Serve(std::io::Error),
}

/// Binds `addr` for [`Dashboard::serve`]. Port 0 picks a free port: read it
/// back with `local_addr()`.
///
/// # Errors
/// [`ServeError::AddrInUse`] when another process listens there, else
/// [`ServeError::Bind`].
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, ServeError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::AddrInUse => ServeError::AddrInUse { addr },
            _ => ServeError::Bind { addr, source },
        })
}

/// One change pushed to SSE clients, serialized once for all of them.
#[derive(Debug, Clone)]
struct Update {
    /// SSE event name: `card`, `remove` or `ledger`.
    event: &'static str,
    /// Board version after the change (the SSE `id`).
    version: u64,
    /// JSON data.
    data: Arc<str>,
}

/// The board as handlers see it.
#[derive(Debug, Default)]
struct BoardState {
    /// Bumped on every change pushed to clients.
    version: u64,
    /// Bumped whenever something in the ledger directory changed.
    ledger_version: u64,
    cards: BTreeMap<String, Card>,
    facts: BTreeMap<String, Facts>,
    heads: BTreeMap<String, SegmentHead>,
    ledger_error: Option<String>,
}

/// The board's JSON snapshot (`GET /api/board`, SSE event `snapshot`).
#[derive(Debug, Serialize)]
struct Snapshot<'a> {
    version: u64,
    ledger_version: u64,
    cards: Vec<&'a Card>,
    segments: &'a BTreeMap<String, SegmentHead>,
    ledger_dir: String,
    root: String,
    ledger_error: Option<&'a str>,
    poll_ms: u64,
}

/// A JSON answer computed from the whole ledger, kept until the ledger
/// changes (keyed by `ledger_version`); the lock makes concurrent requests
/// wait for one computation instead of each starting its own.
type Cache = tokio::sync::Mutex<Option<(u64, Arc<str>)>>;

struct Shared {
    options: ServeOptions,
    board: RwLock<BoardState>,
    tx: broadcast::Sender<Update>,
    verify_cache: Cache,
    stats_cache: Cache,
    shutdown: watch::Sender<bool>,
    /// Only loopback `Host` names are accepted (bound to a loopback address).
    loopback_only: AtomicBool,
}

impl Shared {
    fn read_board(&self) -> std::sync::RwLockReadGuard<'_, BoardState> {
        self.board
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn snapshot_json(&self) -> (u64, String) {
        let board = self.read_board();
        let snap = Snapshot {
            version: board.version,
            ledger_version: board.ledger_version,
            cards: board.cards.values().collect(),
            segments: &board.heads,
            ledger_dir: self.options.ledger_dir.display().to_string(),
            root: self.options.root.display().to_string(),
            ledger_error: board.ledger_error.as_deref(),
            poll_ms: self.options.poll_interval.as_millis() as u64,
        };
        (
            board.version,
            serde_json::to_string(&snap).unwrap_or_else(|_| "{}".into()),
        )
    }

    /// Takes one scan's results into the board and tells the clients.
    fn apply(&self, tracker: &Tracker, result: &scan::ScanResult) {
        let mut board = self
            .board
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let board = &mut *board;
        // Changed dispatches, and every one still in flight: its vnx process
        // may have died since the last look.
        let mut ids: Vec<&String> = result.changed.iter().collect();
        ids.extend(
            tracker
                .facts
                .iter()
                .filter(|(id, f)| !f.settled() && !result.changed.contains(*id))
                .map(|(id, _)| id),
        );
        for id in ids {
            match tracker.facts.get(id).filter(|f| !f.is_empty()) {
                None => {
                    board.facts.remove(id);
                    if board.cards.remove(id).is_some() {
                        board.version += 1;
                        let data = serde_json::json!({ "dispatch_id": id }).to_string();
                        self.send("remove", board.version, data);
                    }
                }
                Some(f) => {
                    let card = board::card(id, f, &board::pid_alive);
                    board.facts.insert(id.clone(), f.clone());
                    if board.cards.get(id) != Some(&card) {
                        board.version += 1;
                        let data = serde_json::to_string(&card).unwrap_or_default();
                        board.cards.insert(id.clone(), card);
                        self.send("card", board.version, data);
                    }
                }
            }
        }
        if result.ledger_changed {
            board.ledger_version += 1;
            board.version += 1;
            board.heads.clone_from(&tracker.heads);
            board.ledger_error.clone_from(&tracker.ledger_error);
            let data = serde_json::json!({
                "ledger_version": board.ledger_version,
                "segments": board.heads,
                "ledger_error": board.ledger_error,
            })
            .to_string();
            self.send("ledger", board.version, data);
        }
    }

    fn send(&self, event: &'static str, version: u64, data: String) {
        // No receivers is not an error: nobody is watching.
        let _ = self.tx.send(Update {
            event,
            version,
            data: data.into(),
        });
    }
}

/// A running dashboard: the board kept current by a polling thread, ready to
/// be served.
pub struct Dashboard {
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    watcher: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Dashboard {
    /// Reads the ledger and the run directories once, then starts polling
    /// them on a thread of its own.
    ///
    /// # Errors
    /// [`ServeError::NoLedger`] when the ledger directory does not exist;
    /// [`ServeError::Watcher`] when the thread cannot be spawned.
    pub fn start(options: ServeOptions) -> Result<Dashboard, ServeError> {
        if !options.ledger_dir.is_dir() {
            return Err(ServeError::NoLedger {
                path: options.ledger_dir.clone(),
            });
        }
        let (tx, _) = broadcast::channel(1024);
        let (shutdown, _) = watch::channel(false);
        let mut tracker = Tracker::new(
            options.ledger_dir.clone(),
            options.root.join(vnx_core::pipeline::JOURNAL_DIR),
            options.root.join(vnx_core::pipeline::RUNS_DIR),
        );
        let shared = Arc::new(Shared {
            options,
            board: RwLock::new(BoardState::default()),
            tx,
            verify_cache: Cache::default(),
            stats_cache: Cache::default(),
            shutdown,
            loopback_only: AtomicBool::new(true),
        });
        let first = tracker.scan();
        shared.apply(&tracker, &first);
        let stop = Arc::new(AtomicBool::new(false));
        let watcher = {
            let (shared, stop) = (Arc::clone(&shared), Arc::clone(&stop));
            std::thread::Builder::new()
                .name("vnx-serve-poll".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::park_timeout(shared.options.poll_interval);
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let result = tracker.scan();
                        shared.apply(&tracker, &result);
                    }
                })
                .map_err(ServeError::Watcher)?
        };
        Ok(Dashboard {
            shared,
            stop,
            watcher: std::sync::Mutex::new(Some(watcher)),
        })
    }

    /// The HTTP routes (see the crate docs).
    pub fn router(&self) -> axum::Router {
        http::router(Arc::clone(&self.shared))
    }

    /// SSE clients connected now (receivers of the update channel).
    pub fn clients(&self) -> usize {
        self.shared.tx.receiver_count()
    }

    /// Cards on the board now, in dispatch-id order.
    pub fn cards(&self) -> Vec<Card> {
        self.shared.read_board().cards.values().cloned().collect()
    }

    /// Serves HTTP/1.1 on `listener` until `shutdown` completes; then ends
    /// every SSE stream, waits for the connections to close and stops
    /// polling.
    ///
    /// At most [`ServeOptions::max_connections`] connections are served at
    /// once (the next is accepted when one closes), and a connection that
    /// sends no complete request header within
    /// [`ServeOptions::idle_timeout`] of opening or of its previous
    /// response is closed, so idle or half-open connections cannot make the
    /// board unreachable.
    ///
    /// # Errors
    /// None today: a failed `accept` (e.g. too many open files) is retried
    /// after 50 ms; the `Result` is kept for the callers.
    pub async fn serve(
        &self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let loopback = listener.local_addr().is_ok_and(|a| a.ip().is_loopback());
        self.shared.loopback_only.store(loopback, Ordering::Relaxed);
        let options = &self.shared.options;
        let slots = Arc::new(tokio::sync::Semaphore::new(options.max_connections.max(1)));
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let service = hyper_util::service::TowerToHyperService::new(self.router());
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(options.idle_timeout);
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let slot = tokio::select! {
                () = &mut shutdown => break,
                slot = Arc::clone(&slots).acquire_owned() => slot,
            };
            let Ok(slot) = slot else { break };
            let accepted = tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => accepted,
            };
            let Ok((stream, _)) = accepted else {
                // Out of file descriptors and the like: let connections
                // close, then accept again.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let conn = http.serve_connection(hyper_util::rt::TokioIo::new(stream), service.clone());
            let conn = graceful.watch(conn);
            tokio::spawn(async move {
                let _ = conn.await;
                drop(slot);
            });
        }
        let _ = self.shared.shutdown.send(true);
        graceful.shutdown().await;
        self.stop_polling();
        Ok(())
    }

    fn stop_polling(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let watcher = self
            .watcher
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(w) = watcher {
            w.thread().unpark();
            let _ = w.join();
        }
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        let _ = self.shared.shutdown.send(true);
        self.stop_polling();
    }
}
