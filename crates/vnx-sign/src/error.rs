//! The two error types of this crate: [`SignError`] (reading keys and
//! allowed_signers files, signing) and [`VerifyError`] (checking a signature
//! and the trust in its key).

use std::io;
use std::path::PathBuf;

use crate::allowed::utc_text;

/// What went wrong finding a signing key, reading an allowed_signers file or
/// signing. Every variant names its input (file and line, the key spec, the
/// namespace, the command) and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// A file could not be read.
    #[error("could not read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A line of an allowed_signers file that does not follow ssh-keygen(1)
    /// "ALLOWED SIGNERS" (`principals [options] keytype base64 [comment]`).
    #[error(
        "{source_name} line {line}: {reason}; fix the line (format: `principals [options] keytype base64 [comment]`, see ssh-keygen(1) ALLOWED SIGNERS)"
    )]
    AllowedSignersLine {
        /// The file, as the caller named it (e.g. `ledger/allowed_signers at 1a2b3c4`).
        source_name: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong with the line.
        reason: String,
    },
    /// git's configuration could not be read.
    #[error("could not read git's signing configuration: {0}")]
    Git(#[from] vnx_git::GitError),
    /// `gpg.format` holds a value git itself does not accept.
    #[error(
        "git config gpg.format is {value:?}, which git does not know; set it to `ssh` (`git config gpg.format ssh`) so vnx signs with your SSH key"
    )]
    UnknownFormat {
        /// The configured value.
        value: String,
    },
    /// A `user.signingkey` value (or key spec) that cannot be used.
    #[error("{origin} {spec:?}: {reason}")]
    KeySpec {
        /// Where the spec came from: `git config user.signingkey` or `signing key`.
        origin: &'static str,
        /// The spec as given (the `user.signingkey` value).
        spec: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// A namespace that SSHSIG does not allow (it must not be empty).
    #[error("invalid signature namespace {namespace:?}: {reason}")]
    Namespace {
        /// The namespace given.
        namespace: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A helper program (`ssh-keygen`, `ssh-add`) could not be started.
    #[error(
        "could not run `{program}`: {source}; is OpenSSH (ssh-keygen, ssh-add) installed and on PATH?"
    )]
    Spawn {
        /// The program.
        program: String,
        /// The spawn error.
        #[source]
        source: io::Error,
    },
    /// `ssh-keygen -Y sign` failed.
    #[error("`{command}` failed ({status}) signing with {spec:?}: {stderr}{hint}")]
    SignFailed {
        /// The command line, for display.
        command: String,
        /// How it ended, e.g. `exit status: 255`.
        status: String,
        /// The key spec.
        spec: String,
        /// The tail of ssh-keygen's stderr.
        stderr: String,
        /// What to do (starts with `; ` when present).
        hint: String,
    },
    /// ssh-keygen succeeded but did not print a usable signature.
    #[error(
        "`{command}` printed no valid SSH signature ({detail}); check the program (git config gpg.ssh.program) and the key {spec:?}"
    )]
    BadOutput {
        /// The command line, for display.
        command: String,
        /// The key spec.
        spec: String,
        /// What is wrong with the output.
        detail: String,
    },
    /// The private half of a key must be in ssh-agent and is not (or the
    /// agent cannot be reached).
    #[error("signing key {spec:?} ({fingerprint}): {reason}")]
    Agent {
        /// The key spec.
        spec: String,
        /// `SHA256:…` of the key.
        fingerprint: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// A temporary file for ssh-keygen could not be written.
    #[error("could not write a temporary key file for ssh-keygen: {0}")]
    TempFile(#[source] io::Error),
}

/// Why a signature is not accepted. Each variant is a distinct reason so the
/// gate can say exactly what failed; messages name the key's fingerprint,
/// the namespace, and for allowed_signers the file and line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Not an armored SSHSIG (`-----BEGIN SSH SIGNATURE-----`, PROTOCOL.sshsig).
    #[error(
        "malformed SSH signature: {detail}; expected the armored output of `ssh-keygen -Y sign`"
    )]
    Malformed {
        /// What could not be decoded.
        detail: String,
    },
    /// The signature was made for another namespace (purpose).
    #[error(
        "signature is in namespace {found:?}, expected {expected:?}: it was made for another purpose and is not valid here"
    )]
    WrongNamespace {
        /// The namespace the caller asked for.
        expected: String,
        /// The namespace in the signature.
        found: String,
    },
    /// The signature does not match the message (altered message or signature).
    #[error(
        "bad signature by {fingerprint} in namespace {namespace:?}: the signed data was altered after signing (or the signature belongs to other data)"
    )]
    BadSignature {
        /// `SHA256:…` of the key in the signature.
        fingerprint: String,
        /// The namespace.
        namespace: String,
    },
    /// The key is not listed in allowed_signers.
    #[error(
        "signed by {fingerprint}, which {source_name} does not list; if this key is trusted, add a line for it (`vnx doctor` prints it)"
    )]
    NotListed {
        /// `SHA256:…` of the signing key.
        fingerprint: String,
        /// The allowed_signers file.
        source_name: String,
    },
    /// The key is listed, but not for this namespace.
    #[error(
        "{source_name} line {line}: key {fingerprint} may sign only in namespaces {allowed:?}, not {namespace:?}; add {namespace:?} to its namespaces=\"…\" option if it should"
    )]
    NamespaceNotAllowed {
        /// `SHA256:…` of the signing key.
        fingerprint: String,
        /// The allowed_signers file.
        source_name: String,
        /// 1-based line number.
        line: usize,
        /// The line's `namespaces` pattern list, as written.
        allowed: String,
        /// The namespace of the signature.
        namespace: String,
    },
    /// The key's `valid-before` time has passed.
    #[error(
        "{source_name} line {line}: key {fingerprint} expired at {} (valid-before=\"{written}\"); the time checked is {}; if the key is still trusted, extend or remove valid-before",
        utc_text(*valid_before),
        utc_text(*at)
    )]
    Expired {
        /// `SHA256:…` of the signing key.
        fingerprint: String,
        /// The allowed_signers file.
        source_name: String,
        /// 1-based line number.
        line: usize,
        /// The expiry, unix seconds.
        valid_before: i64,
        /// The option value as written in the file.
        written: String,
        /// The time checked, unix seconds.
        at: i64,
    },
    /// The key's `valid-after` time has not come yet.
    #[error(
        "{source_name} line {line}: key {fingerprint} is not valid before {} (valid-after=\"{written}\"); the time checked is {}",
        utc_text(*valid_after),
        utc_text(*at)
    )]
    NotYetValid {
        /// `SHA256:…` of the signing key.
        fingerprint: String,
        /// The allowed_signers file.
        source_name: String,
        /// 1-based line number.
        line: usize,
        /// The start of validity, unix seconds.
        valid_after: i64,
        /// The option value as written in the file.
        written: String,
        /// The time checked, unix seconds.
        at: i64,
    },
    /// The key is trusted only through a `cert-authority` line, which vnx
    /// does not support: such a line is never taken as trust.
    #[error(
        "signed by {fingerprint}, which {source_name} does not list as a key; line {line} is a cert-authority line, and vnx does not verify certificate signatures: list the signer's own key instead"
    )]
    CertAuthority {
        /// `SHA256:…` of the signing key.
        fingerprint: String,
        /// The allowed_signers file.
        source_name: String,
        /// 1-based line number of the (first) cert-authority line.
        line: usize,
    },
    /// The key is listed, but not for the principal asked about.
    #[error(
        "key {fingerprint} is not allowed to sign as {principal:?} in {source_name} (it is listed for {listed:?})"
    )]
    PrincipalNotAllowed {
        /// `SHA256:…` of the signing key.
        fingerprint: String,
        /// The principal asked about.
        principal: String,
        /// The allowed_signers file.
        source_name: String,
        /// The principals the key is listed for.
        listed: Vec<String>,
    },
    /// The signature or key uses an algorithm vnx cannot verify.
    #[error(
        "unsupported signature algorithm {algorithm}: vnx verifies ssh-ed25519, sk-ssh-ed25519, ecdsa-sha2-nistp256/384/521, sk-ecdsa-sha2-nistp256 and rsa-sha2-256/512; sign with one of those (e.g. `ssh-keygen -t ed25519`)"
    )]
    UnsupportedAlgorithm {
        /// The algorithm named in the signature.
        algorithm: String,
    },
}
