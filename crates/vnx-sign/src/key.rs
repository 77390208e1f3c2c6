//! The key vnx signs with, found the way git finds its commit-signing key
//! (`gpg.format = ssh`, `user.signingkey`, `gpg.ssh.program`; git's
//! `gpg-interface.c`), and signing through `ssh-keygen -Y sign`.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use ssh_key::{PrivateKey, PublicKey, SshSig};

use crate::allowed::fingerprint;
use crate::error::SignError;
use crate::ssh::{self, AgentHas};
use crate::verify::public_key_line;
use crate::{APPROVAL_NAMESPACE, LEDGER_NAMESPACE};

/// Where the key comes from, as git interprets `user.signingkey`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// An OpenSSH private key file (its private half may also be in
    /// ssh-agent, which ssh-keygen then prefers).
    PrivateFile(PathBuf),
    /// A public key file; ssh-keygen signs through ssh-agent, or with the
    /// private key file beside it (the same path without `.pub`).
    PublicFile(PathBuf),
    /// A literal public key, `ssh-ed25519 AAAA…` (git's `key::` prefix
    /// removed); the private half must be in ssh-agent.
    Literal(String),
}

/// The key vnx signs with, found as git finds its commit-signing key.
#[derive(Debug, Clone)]
pub struct SigningKey {
    source: KeySource,
    public: PublicKey,
    /// The spec as given (the `user.signingkey` value), for messages.
    spec: String,
    /// Where the spec came from, for messages.
    origin: &'static str,
    /// Whether a private key file is passphrase-protected.
    encrypted: bool,
    /// `ssh-keygen`, or git's `gpg.ssh.program`.
    program: PathBuf,
    /// An agent socket that overrides `SSH_AUTH_SOCK`.
    agent: Option<PathBuf>,
}

const ORIGIN_SPEC: &str = "signing key";
const ORIGIN_GIT: &str = "git config user.signingkey";

impl SigningKey {
    /// The signing key of `repo` as git would use it for `git commit -S`:
    /// `gpg.format` must be `ssh` and `user.signingkey` set; `gpg.ssh.program`
    /// (default `ssh-keygen`) is the program that signs. A relative key path
    /// is taken relative to `repo` (git resolves it from the top of the work
    /// tree, so pass the repository root). git's `gpg.ssh.defaultKeyCommand`
    /// (used when `user.signingkey` is unset) is not run.
    ///
    /// # Errors
    ///
    /// `Ok(None)` when `gpg.format` is unset, `openpgp` or `x509`, or
    /// `user.signingkey` is unset or empty. [`SignError::Git`] when git's
    /// configuration cannot be read; [`SignError::UnknownFormat`] for a
    /// `gpg.format` git does not know; [`SignError::KeySpec`] (naming the
    /// `user.signingkey` value and what to do) when the key cannot be used.
    pub fn from_git_config(repo: &Path) -> Result<Option<SigningKey>, SignError> {
        match vnx_git::config_get(repo, "gpg.format")?.as_deref() {
            None | Some("openpgp" | "x509") => return Ok(None),
            Some("ssh") => {}
            Some(other) => {
                return Err(SignError::UnknownFormat {
                    value: other.to_owned(),
                });
            }
        }
        let Some(spec) = vnx_git::config_get(repo, "user.signingkey")? else {
            return Ok(None);
        };
        if spec.trim().is_empty() {
            return Ok(None);
        }
        let mut key = SigningKey::resolve(&spec, Some(repo), ORIGIN_GIT)?;
        if let Some(program) = vnx_git::config_get(repo, "gpg.ssh.program")?
            && !program.trim().is_empty()
        {
            key.program = PathBuf::from(program.trim());
        }
        Ok(Some(key))
    }

    /// Interprets a `user.signingkey` value as git does: `key::` followed by
    /// a public key, or a value starting with `ssh-`, is a literal public key
    /// (e.g. `ssh-ed25519 AAAA… comment`); anything else is a path to a
    /// private or public OpenSSH key file, with a leading `~/` expanded from
    /// `HOME` and a relative path taken from the current directory.
    ///
    /// # Errors
    ///
    /// [`SignError::KeySpec`] naming `spec` and what to do: empty, an
    /// unparseable literal, a missing or unreadable file, a file that holds
    /// no OpenSSH key, `~user/` paths (not supported: write the full path).
    pub fn from_spec(spec: &str) -> Result<SigningKey, SignError> {
        SigningKey::resolve(spec, None, ORIGIN_SPEC)
    }

    fn resolve(
        spec: &str,
        base: Option<&Path>,
        origin: &'static str,
    ) -> Result<SigningKey, SignError> {
        let bad = |reason: String| SignError::KeySpec {
            origin,
            spec: spec.to_owned(),
            reason,
        };
        let trimmed = spec.trim();
        if trimmed.is_empty() {
            return Err(bad(
                "it is empty; give a key file (e.g. ~/.ssh/id_ed25519) or `key::ssh-ed25519 AAAA…`"
                    .to_owned(),
            ));
        }
        let (source, mut public, encrypted) = locate(trimmed, base).map_err(bad)?;
        public.set_comment("");
        Ok(SigningKey {
            source,
            public,
            spec: spec.to_owned(),
            origin,
            encrypted,
            program: PathBuf::from("ssh-keygen"),
            agent: None,
        })
    }

    /// Uses the ssh-agent listening on `socket` instead of `SSH_AUTH_SOCK`
    /// for [`SigningKey::sign`] and [`SigningKey::check_usable`].
    pub fn with_agent_socket(mut self, socket: impl Into<PathBuf>) -> SigningKey {
        self.agent = Some(socket.into());
        self
    }

    /// Signs with `program` instead of `ssh-keygen` (git's `gpg.ssh.program`,
    /// which [`SigningKey::from_git_config`] applies).
    pub fn with_program(mut self, program: impl Into<PathBuf>) -> SigningKey {
        self.program = program.into();
        self
    }

    /// Where the key comes from.
    pub fn source(&self) -> &KeySource {
        &self.source
    }

    /// The public key (without comment).
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// The public key in OpenSSH form without comment: `ssh-ed25519 AAAA…`.
    pub fn public_key_line(&self) -> String {
        public_key_line(&self.public)
    }

    /// `SHA256:…`, as `ssh-keygen -l` prints it.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.public)
    }

    /// The signature made without a process, for the common case where
    /// starting ssh-keygen would cost more than signing: an unencrypted
    /// ed25519 private key file, signed with `ssh-keygen` itself as the
    /// program (a `gpg.ssh.program` of the user's own is always run).
    /// `None`: let ssh-keygen sign (agent, passphrase, FIDO, other
    /// algorithms, anything unexpected). The bytes are the same SSHSIG that
    /// `ssh-keygen -Y sign` writes (ed25519 signatures are deterministic).
    fn sign_in_process(&self, message: &[u8], namespace: &str) -> Option<String> {
        let KeySource::PrivateFile(path) = &self.source else {
            return None;
        };
        if self.encrypted || self.program != Path::new("ssh-keygen") {
            return None;
        }
        let mut text = String::new();
        std::fs::File::open(path)
            .ok()?
            .take(64 * 1024)
            .read_to_string(&mut text)
            .ok()?;
        let key = PrivateKey::from_openssh(&text).ok()?;
        if key.is_encrypted()
            || key.algorithm() != ssh_key::Algorithm::Ed25519
            || key.public_key().key_data() != self.public.key_data()
        {
            return None;
        }
        let sig = SshSig::sign(&key, namespace, ssh_key::HashAlg::Sha512, message).ok()?;
        sig.to_pem(ssh_key::LineEnding::LF).ok()
    }

    /// Signs `message` in `namespace` and returns the armored SSHSIG
    /// (`-----BEGIN SSH SIGNATURE-----…`, as ssh-keygen printed it).
    ///
    /// Spawns `ssh-keygen -Y sign -n NAMESPACE -f KEYFILE` (argv, message on
    /// stdin, signature on stdout) as git does, so ssh-agent, hardware and
    /// FIDO keys work: ssh-keygen uses the agent when it holds the key, else
    /// the private key file (for a public key file: the file beside it
    /// without `.pub`). For a literal key, KEYFILE is a temporary file holding
    /// it and `-U` is passed, so the private half must be in the agent. The
    /// child's environment is only `PATH`, `HOME`, `SSH_AUTH_SOCK` (or the
    /// socket of [`SigningKey::with_agent_socket`]) and `SSH_ASKPASS` /
    /// `DISPLAY` when set. The signature is verified in-process before it is
    /// returned. A passphrase-protected key not in the agent makes ssh-keygen
    /// ask for the passphrase on the terminal.
    ///
    /// # Errors
    ///
    /// [`SignError::Namespace`] for an empty namespace; [`SignError::Spawn`]
    /// when ssh-keygen cannot start; [`SignError::SignFailed`] with its stderr
    /// and what to do (e.g. `ssh-add` the key); [`SignError::BadOutput`] when
    /// its output is not a valid signature by this key over `message`;
    /// [`SignError::TempFile`] when the literal key cannot be written.
    pub fn sign(&self, message: &[u8], namespace: &str) -> Result<String, SignError> {
        if namespace.is_empty() {
            return Err(SignError::Namespace {
                namespace: namespace.to_owned(),
                reason: "SSHSIG namespaces must not be empty",
            });
        }
        if let Some(armored) = self.sign_in_process(message, namespace) {
            return Ok(armored);
        }
        // Kept alive until ssh-keygen has finished with it.
        let mut literal_file = None;
        let key_file: PathBuf = match &self.source {
            KeySource::PrivateFile(p) | KeySource::PublicFile(p) => p.clone(),
            KeySource::Literal(line) => {
                let mut file = tempfile::Builder::new()
                    .prefix(".vnx_signing_key_tmp")
                    .tempfile()
                    .map_err(SignError::TempFile)?;
                writeln!(file, "{line}").map_err(SignError::TempFile)?;
                file.flush().map_err(SignError::TempFile)?;
                let path = file.path().to_owned();
                literal_file = Some(file);
                path
            }
        };
        let mut args: Vec<OsString> = ["-Y", "sign", "-n", namespace, "-f"]
            .iter()
            .map(OsString::from)
            .collect();
        args.push(key_file.into_os_string());
        if literal_file.is_some() {
            args.push(OsString::from("-U"));
        }
        let env = ssh::helper_env(self.agent.as_deref());
        let ran = ssh::run(&self.program, &args, &env, Some(message))?;
        drop(literal_file);
        if !ran.status.success() {
            let stderr = ran.stderr_tail();
            return Err(SignError::SignFailed {
                hint: self.sign_hint(&stderr),
                command: ran.command,
                status: ran.status.to_string(),
                spec: self.spec.clone(),
                stderr,
            });
        }
        let bad_output = |detail: String| SignError::BadOutput {
            command: ran.command.clone(),
            spec: self.spec.clone(),
            detail,
        };
        let armored = String::from_utf8(ran.stdout.clone())
            .map_err(|_| bad_output("output is not UTF-8".to_owned()))?;
        let sig = SshSig::from_pem(armored.trim())
            .map_err(|e| bad_output(format!("cannot decode it: {e}")))?;
        if sig.public_key() != self.public.key_data() {
            return Err(bad_output(format!(
                "signed by {} instead of {}",
                fingerprint(&PublicKey::from(sig.public_key().clone())),
                self.fingerprint()
            )));
        }
        self.public
            .verify(namespace, message, &sig)
            .map_err(|e| bad_output(format!("the signature does not verify: {e}")))?;
        Ok(armored)
    }

    /// What to tell the user after ssh-keygen failed with `stderr`.
    fn sign_hint(&self, stderr: &str) -> String {
        let lower = stderr.to_ascii_lowercase();
        let add = self.ssh_add_advice();
        if lower.contains("agent socket")
            || lower.contains("connection to your authentication agent")
        {
            format!("; no ssh-agent is reachable: start one (`eval \"$(ssh-agent)\"`) and {add}")
        } else if lower.contains("in agent") || lower.contains("no private key found") {
            format!(
                "; the private half of {} is not in ssh-agent: {add}",
                self.fingerprint()
            )
        } else if lower.contains("passphrase") {
            format!("; {add} so no passphrase has to be typed")
        } else if lower.contains("permissions") {
            "; make the private key file readable only by you (`chmod 600 FILE`)".to_owned()
        } else {
            String::new()
        }
    }

    /// "run `ssh-add FILE`" for this key's private file when vnx knows it.
    fn ssh_add_advice(&self) -> String {
        match &self.source {
            KeySource::PrivateFile(p) => format!("run `ssh-add {}`", p.display()),
            KeySource::PublicFile(p) => {
                format!("run `ssh-add {}`", strip_pub_suffix(p).display())
            }
            KeySource::Literal(_) => "add its private key file with `ssh-add FILE`".to_owned(),
        }
    }

    /// Whether the key can sign now, for `vnx doctor`: a private key file
    /// must be readable (and, when passphrase-protected, be in ssh-agent, so
    /// vnx never waits on a prompt); a public key file needs its private half
    /// in ssh-agent (asked with `ssh-add -L`) or an unencrypted private key
    /// file beside it; a literal key needs its private half in ssh-agent.
    ///
    /// # Errors
    ///
    /// [`SignError::KeySpec`] when the key file can no longer be read;
    /// [`SignError::Agent`] when the agent is unreachable or lacks the key
    /// (saying what to run); [`SignError::Spawn`] when `ssh-add` cannot start.
    pub fn check_usable(&self) -> Result<(), SignError> {
        let agent_err = |reason: String| SignError::Agent {
            spec: self.spec.clone(),
            fingerprint: self.fingerprint(),
            reason,
        };
        match &self.source {
            KeySource::PrivateFile(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| SignError::KeySpec {
                    origin: self.origin,
                    spec: self.spec.clone(),
                    reason: format!("cannot read {}: {e}", path.display()),
                })?;
                let encrypted =
                    PrivateKey::from_openssh(&text).map_or(self.encrypted, |k| k.is_encrypted());
                if !encrypted {
                    return Ok(());
                }
                match ssh::agent_has(&self.public, self.agent.as_deref())? {
                    AgentHas::Yes => Ok(()),
                    AgentHas::No => Err(agent_err(format!(
                        "{} is passphrase-protected and ssh-agent does not hold it; {} so vnx can sign without asking for the passphrase",
                        path.display(),
                        self.ssh_add_advice()
                    ))),
                    AgentHas::Unreachable(why) => Err(agent_err(format!(
                        "{} is passphrase-protected and {why}; start ssh-agent and {} so vnx can sign without asking for the passphrase",
                        path.display(),
                        self.ssh_add_advice()
                    ))),
                }
            }
            KeySource::PublicFile(path) => {
                let agent = ssh::agent_has(&self.public, self.agent.as_deref())?;
                if matches!(agent, AgentHas::Yes) {
                    return Ok(());
                }
                let beside = strip_pub_suffix(path);
                if beside != *path
                    && let Ok(text) = std::fs::read_to_string(&beside)
                    && let Ok(private) = PrivateKey::from_openssh(&text)
                    && private.public_key().key_data() == self.public.key_data()
                    && !private.is_encrypted()
                {
                    return Ok(());
                }
                let mut reason = match agent {
                    AgentHas::Unreachable(why) => format!("{why}; "),
                    _ => "ssh-agent does not hold this key; ".to_owned(),
                };
                let _ = write!(
                    reason,
                    "its private half must be in ssh-agent (or unencrypted in {}): {}",
                    beside.display(),
                    self.ssh_add_advice()
                );
                Err(agent_err(reason))
            }
            KeySource::Literal(_) => match ssh::agent_has(&self.public, self.agent.as_deref())? {
                AgentHas::Yes => Ok(()),
                AgentHas::No => Err(agent_err(format!(
                    "ssh-agent does not hold this key, and a literal key signs only through the agent: {}",
                    self.ssh_add_advice()
                ))),
                AgentHas::Unreachable(why) => Err(agent_err(format!(
                    "{why}, and a literal key signs only through the agent: start ssh-agent and {}",
                    self.ssh_add_advice()
                ))),
            },
        }
    }
}

/// One allowed_signers line for `key`:
/// `PRINCIPAL namespaces="vnx-ledger,vnx-approval,git" ssh-ed25519 AAAA…`
/// (no newline), what `vnx doctor` / `vnx init` tell users to add. A
/// principal containing whitespace is double-quoted.
pub fn allowed_signers_line(principal: &str, key: &SigningKey) -> String {
    let principal = if principal.contains([' ', '\t']) {
        format!("\"{principal}\"")
    } else {
        principal.to_owned()
    };
    format!(
        "{principal} namespaces=\"{LEDGER_NAMESPACE},{APPROVAL_NAMESPACE},git\" {}",
        key.public_key_line()
    )
}

/// Where a (trimmed, non-empty) spec points: the source, its public key and
/// whether a private key file is passphrase-protected. The error says what
/// is wrong and what to do.
fn locate(spec: &str, base: Option<&Path>) -> Result<(KeySource, PublicKey, bool), String> {
    let literal = spec
        .strip_prefix("key::")
        .or_else(|| spec.starts_with("ssh-").then_some(spec));
    if let Some(text) = literal {
        let public = parse_public_text(text).map_err(|e| {
            format!(
                "not a public key ({e}); write it as `key::ssh-ed25519 AAAA…` (the whole line of a .pub file) or give a key file path"
            )
        })?;
        return Ok((KeySource::Literal(public_key_line(&public)), public, false));
    }
    let path = expand_path(spec, base)?;
    let text = std::fs::read_to_string(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            format!(
                "no such file {}; point it at your SSH key (e.g. `git config user.signingkey ~/.ssh/id_ed25519.pub`) or create one with `ssh-keygen -t ed25519`",
                path.display()
            )
        } else {
            format!("cannot read {}: {e}", path.display())
        }
    })?;
    if text.contains("PRIVATE KEY-----") {
        return match PrivateKey::from_openssh(&text) {
            Ok(private) => {
                let encrypted = private.is_encrypted();
                Ok((
                    KeySource::PrivateFile(path),
                    private.public_key().clone(),
                    encrypted,
                ))
            }
            Err(e) => {
                // Legacy PEM keys (`BEGIN RSA PRIVATE KEY`) are signed by
                // ssh-keygen all the same; their public half comes from the
                // .pub beside them.
                let pub_path = with_pub_suffix(&path);
                let public = std::fs::read_to_string(&pub_path)
                    .ok()
                    .and_then(|t| parse_public_text(&t).ok())
                    .ok_or_else(|| {
                        format!(
                            "{} is not an OpenSSH private key vnx can read ({e}) and has no readable {} beside it; convert it with `ssh-keygen -p -f {}` or point at the .pub file",
                            path.display(),
                            pub_path.display(),
                            path.display()
                        )
                    })?;
                Ok((KeySource::PrivateFile(path), public, false))
            }
        };
    }
    let public = parse_public_text(&text).map_err(|e| {
        format!(
            "{} holds no OpenSSH public or private key ({e}); point it at a key file such as ~/.ssh/id_ed25519.pub",
            path.display()
        )
    })?;
    Ok((KeySource::PublicFile(path), public, false))
}

/// A public key from OpenSSH text `keytype base64 [comment]` (the first line
/// of a `.pub` file, or a line of `ssh-add -L`).
pub(crate) fn parse_public_text(text: &str) -> Result<PublicKey, ssh_key::Error> {
    let mut words = text.split_whitespace();
    let (Some(kind), Some(base64)) = (words.next(), words.next()) else {
        return Err(ssh_key::Error::FormatEncoding);
    };
    PublicKey::from_openssh(&format!("{kind} {base64}"))
}

/// `~` and `~/…` expanded from `HOME`; a relative path joined to `base`.
fn expand_path(spec: &str, base: Option<&Path>) -> Result<PathBuf, String> {
    let path = if spec == "~" || spec.starts_with("~/") {
        let home = std::env::var_os("HOME").ok_or_else(|| {
            "it starts with ~ but HOME is not set; write the full path".to_owned()
        })?;
        PathBuf::from(home).join(spec.trim_start_matches('~').trim_start_matches('/'))
    } else if spec.starts_with('~') {
        return Err("~user/ paths are not supported; write the full path".to_owned());
    } else {
        PathBuf::from(spec)
    };
    Ok(match base {
        Some(base) if path.is_relative() => base.join(path),
        _ => path,
    })
}

/// `path` + `.pub`.
fn with_pub_suffix(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".pub");
    PathBuf::from(s)
}

/// `path` without a trailing `.pub` (unchanged when it has none): where
/// ssh-keygen looks for the private half of a public key file.
fn strip_pub_suffix(path: &Path) -> PathBuf {
    path.to_str()
        .and_then(|s| s.strip_suffix(".pub"))
        .map_or_else(|| path.to_owned(), PathBuf::from)
}
