//! Keys, ssh-keygen, ssh-agent and git for the tests.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A key pair made by `ssh-keygen -N ''` in a temp dir.
pub struct Key {
    pub private: PathBuf,
    pub public: PathBuf,
    /// `keytype base64` (no comment).
    pub line: String,
}

impl Key {
    /// The fingerprint as `ssh-keygen -l` prints it.
    pub fn fingerprint(&self) -> String {
        let out = run_ok(
            Command::new("ssh-keygen")
                .arg("-l")
                .arg("-f")
                .arg(&self.public),
        );
        out.split_whitespace().nth(1).unwrap().to_owned()
    }
}

/// Makes a key of `kind` (`ed25519`, `ecdsa`, `rsa`, `dsa`) named `name` in `dir`.
pub fn keygen(dir: &Path, kind: &str, name: &str) -> Key {
    let private = dir.join(name);
    let mut cmd = Command::new("ssh-keygen");
    cmd.args(["-q", "-t", kind, "-N", "", "-C", &format!("{name}@test")]);
    if kind == "rsa" {
        // Smaller than the default only to keep the test fast; still accepted.
        cmd.args(["-b", "2048"]);
    }
    cmd.arg("-f").arg(&private);
    run_ok(&mut cmd);
    let public = dir.join(format!("{name}.pub"));
    let text = std::fs::read_to_string(&public).unwrap();
    let mut words = text.split_whitespace();
    let line = format!("{} {}", words.next().unwrap(), words.next().unwrap());
    Key {
        private,
        public,
        line,
    }
}

/// Runs `cmd`, asserts success, returns stdout.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `ssh-keygen -Y sign -n NS -f KEY` over `message` (stdin), the armored signature.
pub fn ssh_keygen_sign(key: &Path, namespace: &str, message: &[u8]) -> String {
    let mut child = Command::new("ssh-keygen")
        .args(["-Y", "sign", "-n", namespace, "-f"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(message).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "ssh-keygen -Y sign failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `ssh-keygen -Y verify -f ALLOWED -I PRINCIPAL -n NS -s SIG < message`:
/// whether it accepted, and its output.
pub fn ssh_keygen_verify(
    dir: &Path,
    allowed: &str,
    principal: &str,
    namespace: &str,
    signature: &str,
    message: &[u8],
) -> (bool, String) {
    let allowed_path = dir.join("allowed_signers.verify");
    std::fs::write(&allowed_path, allowed).unwrap();
    let sig_path = dir.join("message.sig");
    std::fs::write(&sig_path, signature).unwrap();
    let mut child = Command::new("ssh-keygen")
        .args(["-Y", "verify", "-f"])
        .arg(&allowed_path)
        .args(["-I", principal, "-n", namespace, "-s"])
        .arg(&sig_path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(message).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The current time, unix seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A real `ssh-agent -D -a SOCKET`, killed and reaped on drop.
pub struct Agent {
    child: Child,
    pub socket: PathBuf,
}

impl Agent {
    /// Starts an agent on `dir/agent.sock` and waits until it listens: in
    /// `-D` mode it prints `SSH_AUTH_SOCK=…` only after bind and listen.
    pub fn start(dir: &Path) -> Agent {
        let socket = dir.join("agent.sock");
        let mut child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        assert!(
            first.starts_with("SSH_AUTH_SOCK="),
            "ssh-agent said {first:?}"
        );
        Agent { child, socket }
    }

    /// `ssh-add KEY` into this agent.
    pub fn add(&self, private: &Path) {
        run_ok(
            Command::new("ssh-add")
                .arg(private)
                .env("SSH_AUTH_SOCK", &self.socket)
                .stdin(Stdio::null()),
        );
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh git repository in `dir`.
pub fn git_repo(dir: &Path) -> PathBuf {
    let root = dir.join("repo");
    std::fs::create_dir(&root).unwrap();
    git(&root, &["init", "-q"]);
    root
}

/// `git -C dir args…` with no system config.
pub fn git(dir: &Path, args: &[&str]) {
    run_ok(
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .env("GIT_CONFIG_NOSYSTEM", "1"),
    );
}
