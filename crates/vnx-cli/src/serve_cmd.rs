//! `vnx serve`: the read-only live dashboard (see `vnx-serve`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use crate::Outcome;
use crate::locate::{locate_ledger, repo_root};

/// Arguments of `vnx serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Port to listen on; 0 picks a free one (the URL printed says which).
    #[arg(long, default_value_t = vnx_serve::DEFAULT_PORT)]
    port: u16,
    /// Address to listen on. Anything but a loopback address exposes the
    /// ledger, receipts and reports to the network: give it only on purpose.
    #[arg(long, value_name = "ADDR", default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    bind: IpAddr,
    /// Ledger directory (default: `[ledger] dir` of vnx.toml, `ledger/` at the repository root).
    #[arg(long, value_name = "DIR")]
    ledger: Option<PathBuf>,
    /// How often to look for changes in the ledger and `.vnx/runs/`, ms: a
    /// change reaches the page within about this long.
    #[arg(long, value_name = "MS", default_value_t = 200, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    poll_ms: u64,
    /// Connections served at once; more wait until one closes. Idle or
    /// half-open connections are closed after --idle-timeout-ms.
    #[arg(long, value_name = "N", default_value_t = vnx_serve::DEFAULT_MAX_CONNECTIONS, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=65_536))]
    max_connections: usize,
    /// Close a connection that sends no complete request header this long
    /// after it opened or after its last response, ms (live SSE streams
    /// are never cut).
    #[arg(long, value_name = "MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(100..=3_600_000))]
    idle_timeout_ms: u64,
}

/// Runs `vnx serve` until Ctrl-C, SIGTERM or SIGHUP.
pub fn run(args: &ServeArgs) -> Result<Outcome> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let location = locate_ledger(args.ledger.as_deref(), &cwd)?;
    if location.segment.is_some() {
        anyhow::bail!(
            "--ledger must be a ledger directory for `vnx serve`, not one segment: {}",
            args.ledger
                .as_deref()
                .unwrap_or(location.dir.as_path())
                .display()
        );
    }
    let root = repo_root(&cwd).unwrap_or(cwd);
    let addr = SocketAddr::new(args.bind, args.port);
    if !args.bind.is_loopback() {
        errln!(
            "warning: listening on {addr}, not a loopback address: anyone who can reach it can read this ledger, its receipts and reports (the dashboard has no authentication)"
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let mut options = vnx_serve::ServeOptions::new(location.dir.clone(), root);
        options.poll_interval = std::time::Duration::from_millis(args.poll_ms);
        options.max_connections = args.max_connections;
        options.idle_timeout = std::time::Duration::from_millis(args.idle_timeout_ms);
        let dashboard = vnx_serve::Dashboard::start(options)?;
        let listener = vnx_serve::bind(addr).await?;
        let local = listener
            .local_addr()
            .context("cannot read the bound address")?;
        let host = match local.ip() {
            IpAddr::V6(ip) => format!("[{ip}]"),
            IpAddr::V4(ip) => ip.to_string(),
        };
        outln!("vnx serve: http://{host}:{}/", local.port())?;
        outln!(
            "ledger: {} (read only) · Ctrl-C stops",
            location.dir.display()
        )?;
        dashboard.serve(listener, shutdown_signal()).await?;
        anyhow::Ok(())
    })?;
    Ok(Outcome::Ok)
}

/// Ctrl-C, SIGTERM or SIGHUP (the terminal closed). The handlers are
/// installed before the returned future is first polled.
fn shutdown_signal() -> impl Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).ok();
    let mut terminate = signal(SignalKind::terminate()).ok();
    let mut hangup = signal(SignalKind::hangup()).ok();
    async move {
        tokio::select! {
            () = crate::run_cmd::next(&mut interrupt) => {}
            () = crate::run_cmd::next(&mut terminate) => {}
            () = crate::run_cmd::next(&mut hangup) => {}
        }
    }
}
