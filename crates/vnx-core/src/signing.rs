//! Signing what vnx writes to a committed ledger: a segment's head (its
//! `<segment>.sig`) and an approval, with the key git signs commits with.
//!
//! The key comes from git's own configuration (`gpg.format = ssh`,
//! `user.signingkey`, see [`vnx_sign::SigningKey::from_git_config`]); the
//! signature is OpenSSH's SSHSIG made by `ssh-keygen -Y sign` (through
//! `vnx-sign`), so agent, hardware and FIDO keys work as they do for git.
//! The statements signed are specified in `ledger/FORMAT.md` ("Signatures").

use std::path::{Path, PathBuf};

use vnx_ledger::signature::{
    APPROVAL_NAMESPACE, LEDGER_NAMESPACE, SegmentHead, SegmentSignature, approval_message,
};
use vnx_sign::SigningKey;
use vnx_types::ApprovalBody;

/// How to set a key up, for warnings and errors: the two git settings and
/// the `allowed_signers` line.
pub const KEY_SETUP_HINT: &str = "set up the key git signs commits with — \
     `git config gpg.format ssh` and `git config user.signingkey ~/.ssh/id_ed25519.pub` \
     (a key file, or a public key whose private half is in ssh-agent) — and list it in \
     ledger/allowed_signers (`vnx doctor` prints the line to add)";

/// Why signing failed.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// The key is configured but unusable, or `ssh-keygen` refused.
    #[error(transparent)]
    Sign(#[from] vnx_sign::SignError),
    /// The segment could not be read or the signature file written.
    #[error(transparent)]
    Ledger(#[from] vnx_ledger::LedgerError),
    /// The approval body could not be serialized.
    #[error("cannot serialize the approval: {0}")]
    Serialize(#[from] serde_json::Error),
}

/// The signing key of the repository at `repo`, as git would find it.
///
/// # Errors
/// [`SigningError::Sign`] when a key is configured but cannot be used (a
/// missing file, an unparseable key): the message names the setting.
pub fn signing_key(repo: &Path) -> Result<Option<SigningKey>, SigningError> {
    Ok(SigningKey::from_git_config(repo)?)
}

/// Signs the head of `segment` in the ledger at `dir` (whose id is
/// `ledger_id`) and writes `<segment>.sig` beside it, replacing an older
/// signature. Returns the file's path.
///
/// # Errors
/// [`SigningError::Ledger`] reading the segment (empty, torn) or writing the
/// file; [`SigningError::Sign`] when `ssh-keygen` cannot sign (a key not in
/// the agent, a passphrase nobody can type).
pub fn sign_segment(
    dir: &Path,
    ledger_id: &str,
    segment: &str,
    key: &SigningKey,
) -> Result<PathBuf, SigningError> {
    let head = SegmentHead::of_segment(dir, ledger_id, segment)?;
    let armored = key.sign(head.message().as_bytes(), LEDGER_NAMESPACE)?;
    let signature = SegmentSignature { head, armored };
    Ok(signature.write(dir)?)
}

/// Signs an approval: sets `body.signature` to an SSHSIG (namespace
/// `vnx-approval`) over the canonical JSON of the body without it.
///
/// # Errors
/// [`SigningError::Sign`] when `ssh-keygen` cannot sign.
pub fn sign_approval(body: &mut ApprovalBody, key: &SigningKey) -> Result<(), SigningError> {
    body.signature = None;
    let value = serde_json::to_value(&*body)?;
    let message = approval_message(&value)?;
    body.signature = Some(key.sign(&message, APPROVAL_NAMESPACE)?);
    Ok(())
}
