//! Benchmark (not a test) behind `tests/bench/sign.sh`: the cost of
//! `SigningKey::sign` (one `ssh-keygen -Y sign` process per call) and of
//! in-process `verify` (including the allowed_signers lookup). Verify time is
//! printed as wall time and as on-CPU time (Linux), which stays meaningful on
//! a loaded machine.
//!
//! Usage: `sign_bench KEYFILE [SIGNS] [VERIFIES] [EXTRA_SIGNERS]`
//! (defaults 20, 1000, 0). EXTRA_SIGNERS adds that many other keys' lines
//! before the signer's own line, to see the cost of a larger file.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Instant;

use vnx_sign::{AllowedSigners, LEDGER_NAMESPACE, SigningKey, allowed_signers_line, verify};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sign_bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let keyfile = args
        .first()
        .ok_or("usage: sign_bench KEYFILE [SIGNS] [VERIFIES] [EXTRA_SIGNERS]")?;
    let signs: usize = args.get(1).map_or(Ok(20), |s| s.parse())?;
    let verifies: usize = args.get(2).map_or(Ok(1000), |s| s.parse())?;
    let extra: usize = args.get(3).map_or(Ok(0), |s| s.parse())?;

    let key = SigningKey::from_spec(keyfile)?;
    // A segment-sized message: 64 KiB.
    let message: Vec<u8> = (0..65_536u32).map(|i| (i % 251) as u8).collect();

    let mut sign_ms = Vec::with_capacity(signs);
    let mut armored = String::new();
    for _ in 0..signs {
        let t = Instant::now();
        armored = key.sign(&message, LEDGER_NAMESPACE)?;
        sign_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    sign_ms.sort_by(f64::total_cmp);
    let median = sign_ms.get(sign_ms.len() / 2).copied().unwrap_or(f64::NAN);

    // Other keys are distinct 32-byte ed25519 keys, so the lookup scans them all.
    let mut text = String::new();
    for i in 0..extra {
        let mut raw = [0u8; 32];
        raw[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
        let other =
            vnx_sign::ssh_key::PublicKey::from(vnx_sign::ssh_key::public::KeyData::Ed25519(
                vnx_sign::ssh_key::public::Ed25519PublicKey(raw),
            ));
        writeln!(text, "other{i}@example.com {}", other.to_openssh()?)?;
    }
    text.push_str(&allowed_signers_line("bench@example.com", &key));
    text.push('\n');
    let signers = AllowedSigners::parse(&text, "bench allowed_signers")?;
    let at = chrono::Utc::now().timestamp();

    let t = Instant::now();
    let cpu0 = cpu_ns();
    for _ in 0..verifies {
        let signer = verify(&message, &armored, LEDGER_NAMESPACE, &signers, at)?;
        std::hint::black_box(signer);
    }
    let per_verify_us = t.elapsed().as_secs_f64() * 1e6 / verifies.max(1) as f64;
    let cpu_us = match (cpu0, cpu_ns()) {
        (Some(a), Some(b)) => format!(
            "{:.0}",
            b.saturating_sub(a) as f64 / 1e3 / verifies.max(1) as f64
        ),
        _ => "?".to_owned(),
    };

    println!(
        "{:<22} sign: median {median:.1} ms of {signs} (ssh-keygen process)   verify: {per_verify_us:.0} µs wall, {cpu_us} µs on-CPU per verify over {verifies} (64 KiB message, {} allowed_signers lines)",
        key.public_key().algorithm().as_str(),
        signers.len()
    );
    Ok(())
}

/// Time this (single-threaded) process has spent on a CPU, ns, from Linux's
/// `/proc/self/schedstat`: unlike wall time it does not grow when other
/// processes compete for the cores.
fn cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
