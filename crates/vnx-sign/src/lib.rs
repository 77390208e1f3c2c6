//! SSH signatures for vnx: ledger segments and approvals are signed with the
//! key git signs commits with, in OpenSSH's SSHSIG format (PROTOCOL.sshsig),
//! so `ssh-keygen -Y verify` with the project's `ledger/allowed_signers`
//! checks them exactly as vnx's gate does.
//!
//! - Signing: [`SigningKey::from_git_config`] finds the key as git does
//!   (`gpg.format = ssh`, `user.signingkey`, `gpg.ssh.program`);
//!   [`SigningKey::sign`] runs `ssh-keygen -Y sign` from an argv array with an
//!   explicitly built environment, so ssh-agent, hardware and FIDO keys work.
//!   [`SigningKey::check_usable`] tells `vnx doctor` whether it can sign now.
//! - Verification: [`verify`] checks an armored signature in-process (the
//!   `ssh-key` crate; no process per signature, a fraction of a millisecond each) and then
//!   the key against an [`AllowedSigners`] file parsed with OpenSSH's rules
//!   (ssh-keygen(1) "ALLOWED SIGNERS": principals and namespaces with
//!   wildcards and negation, `valid-after`/`valid-before`). Every reason for
//!   refusal is its own [`VerifyError`] variant.
//! - Trust bootstrap: [`allowed_signers_line`] is the line a user adds for
//!   their key.
//!
//! Namespaces: [`LEDGER_NAMESPACE`] for segment signatures,
//! [`APPROVAL_NAMESPACE`] for approvals. The crate never prints.

mod allowed;
mod error;
mod key;
mod pattern;

/// Whether `name` matches an OpenSSH pattern (`*` any run, `?` one
/// character), as `ssh_config(5)` "PATTERNS" and allowed_signers principals use them.
pub fn pattern_matches(name: &str, pattern: &str) -> bool {
    pattern::matches(name, pattern)
}
mod ssh;
mod verify;

pub use allowed::AllowedSigners;
pub use error::{SignError, VerifyError};
pub use key::{KeySource, SigningKey, allowed_signers_line};
pub use verify::{Signer, signature_key, verify};

/// Re-exported so callers name the same key type as this crate's API.
pub use ssh_key;

/// SSHSIG namespace of ledger segment signatures.
pub const LEDGER_NAMESPACE: &str = "vnx-ledger";
/// SSHSIG namespace of approval signatures.
pub const APPROVAL_NAMESPACE: &str = "vnx-approval";
