//! Durable append latency: `append_latency DIR WRITERS RECORDS_PER_WRITER`.
//!
//! Each writer is a thread with its own ledger handle (its own file
//! descriptor and lock, as separate processes would have) appending one
//! ~300-byte note per call, each call taking the lock, reading the tail,
//! writing and `fdatasync`ing. Prints p50, p99 and max in microseconds.

use std::path::PathBuf;
use std::time::Instant;

use serde_json::json;
use vnx_ledger::{Ledger, NewRecord};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: append_latency DIR WRITERS RECORDS_PER_WRITER";
    let dir = PathBuf::from(args.next().ok_or(usage)?);
    let writers: usize = args.next().ok_or(usage)?.parse()?;
    let per: usize = args.next().ok_or(usage)?.parse()?;
    Ledger::open_or_create(&dir)?;
    let mut all: Vec<u128> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..writers)
            .map(|w| {
                let dir = dir.clone();
                s.spawn(move || -> Vec<u128> {
                    let Ok(ledger) = Ledger::open(&dir) else { return Vec::new() };
                    (0..per)
                        .filter_map(|i| {
                            let body = json!({"text": format!("writer {w} record {i} {}", "x".repeat(240))});
                            let record = NewRecord { kind: "note".into(), body };
                            let start = Instant::now();
                            ledger.append("bench@host--main.ndjson", &[record]).ok()?;
                            Some(start.elapsed().as_micros())
                        })
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    all.sort_unstable();
    if all.is_empty() {
        return Err("no append succeeded".into());
    }
    let pct = |p: usize| all[(all.len() * p / 100).min(all.len() - 1)];
    println!(
        "writers={writers} appends={} p50_us={} p99_us={} max_us={}",
        all.len(),
        pct(50),
        pct(99),
        all[all.len() - 1]
    );
    Ok(())
}
