//! Support for vnx's end-to-end tests: locating the binaries under test.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// Path to binary `bin` of workspace package `package`, built (once per test
/// process) with the same cargo and profile as the running tests.
///
/// Cargo only exposes `CARGO_BIN_EXE_*` for binaries of the package under
/// test, so binaries of other packages are built on demand; `cargo build`
/// reports the executable's path in its JSON messages.
///
/// # Panics
/// When the build fails: the test cannot run without the binary.
pub fn cargo_bin(package: &str, bin: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let built = BUILT.get_or_init(|| Mutex::new(HashMap::new()));
    let mut built = built
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let key = format!("{package}/{bin}");
    if let Some(path) = built.get(&key) {
        return path.clone();
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "--message-format=json",
            "-p",
            package,
            "--bin",
            bin,
        ])
        .current_dir(workspace_root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run cargo to build {key}: {e}"));
    assert!(
        output.status.success(),
        "building {key} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let path = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|m| {
            m["reason"] == "compiler-artifact"
                && m["target"]["name"] == bin
                && m["executable"].is_string()
        })
        .and_then(|m| m["executable"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| panic!("cargo did not report the {key} executable"));
    built.insert(key, path.clone());
    path
}

/// The `vnx` binary; `$VNX_BIN` overrides the path (to run a test against
/// another build, e.g. to show that it fails without a fix).
pub fn vnx() -> PathBuf {
    std::env::var_os("VNX_BIN").map_or_else(|| cargo_bin("vnx-cli", "vnx"), PathBuf::from)
}

/// The scripted fake agent (`tests/fake-agent`); `$VNX_FAKE_AGENT` overrides
/// the path.
pub fn fake_agent() -> PathBuf {
    std::env::var_os("VNX_FAKE_AGENT")
        .map_or_else(|| cargo_bin("vnx-tests", "fake-agent"), PathBuf::from)
}

/// The workspace root (the directory holding the virtual `Cargo.toml`).
pub fn workspace_root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// An ed25519 key pair made by the real `ssh-keygen` for a test: what a
/// person or CI uses to sign ledger segments, approvals and commits.
#[derive(Debug, Clone)]
pub struct TestKey {
    /// The private key file (no passphrase).
    pub private: PathBuf,
    /// The public key file (`<private>.pub`).
    pub public: PathBuf,
    /// The public key as OpenSSH writes it, without comment: `ssh-ed25519 AAAA…`.
    pub key: String,
}

impl TestKey {
    /// Makes a key `dir/name` with `ssh-keygen -t ed25519 -N ''`.
    ///
    /// # Panics
    /// When ssh-keygen cannot run: the test cannot go on without a key.
    pub fn new(dir: &Path, name: &str) -> TestKey {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        let private = dir.join(name);
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
            .arg(&private)
            .output()
            .unwrap_or_else(|e| panic!("cannot run ssh-keygen: {e}"));
        assert!(
            out.status.success(),
            "ssh-keygen failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let public = private.with_extension("pub");
        let public = if public.exists() {
            public
        } else {
            PathBuf::from(format!("{}.pub", private.display()))
        };
        let text = std::fs::read_to_string(&public)
            .unwrap_or_else(|e| panic!("read {}: {e}", public.display()));
        let key = text
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        TestKey {
            private,
            public,
            key,
        }
    }

    /// An `allowed_signers` line for this key as `principal`, optionally
    /// restricted to `namespaces` (e.g. `vnx-ledger,git`).
    pub fn allowed_line(&self, principal: &str, namespaces: Option<&str>) -> String {
        match namespaces {
            Some(ns) => format!("{principal} namespaces=\"{ns}\" {}\n", self.key),
            None => format!("{principal} {}\n", self.key),
        }
    }

    /// Makes git (and so vnx) in `repo` sign with this key:
    /// `gpg.format = ssh`, `user.signingkey = <private key file>`.
    ///
    /// # Panics
    /// When git config fails.
    pub fn configure(&self, repo: &Path) {
        for args in [
            ["config", "gpg.format", "ssh"],
            [
                "config",
                "user.signingkey",
                &self.private.display().to_string(),
            ],
        ] {
            let out = Command::new("git")
                .args(args)
                .current_dir(repo)
                .output()
                .unwrap_or_else(|e| panic!("cannot run git: {e}"));
            assert!(out.status.success(), "git {args:?} failed");
        }
    }
}
