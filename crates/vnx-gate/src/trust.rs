//! The trust anchors, read at the base revision: `ledger/allowed_signers`
//! and `[merge_gate]` of `vnx.toml`.

use std::io::Write as _;
use std::path::Path;

use vnx_ledger::gate::BaseLedger;
use vnx_prepare::{CONFIG_FILE, Config, MergeGateConfig};
use vnx_sign::{AllowedSigners, Signer};

use crate::ALLOWED_SIGNERS_FILE;
use crate::error::GateError;

/// What the base revision says to trust.
#[derive(Debug)]
pub struct Trust {
    /// The keys of `allowed_signers` at the base (empty when there is none).
    pub signers: AllowedSigners,
    /// Its bytes, for `git verify-commit`.
    signers_text: Vec<u8>,
    /// Whether the base has an `allowed_signers` file at all.
    pub has_signers_file: bool,
    /// Where it was read: `ledger/allowed_signers at 1a2b3c4d5e6f`.
    pub source: String,
    /// `[merge_gate] coverage` at the base.
    pub coverage: bool,
    /// `[merge_gate] approvers` at the base (empty: any allowed signer).
    pub approvers: Vec<String>,
    /// What could not be read: each becomes an `unchecked` block.
    pub problems: Vec<String>,
}

impl Trust {
    /// Reads the trust anchors at `base` (a full commit id).
    ///
    /// A missing file means nobody is trusted (and coverage's defaults); a
    /// malformed one is a problem that blocks, with no key trusted.
    ///
    /// # Errors
    /// [`GateError::Git`] when git cannot read the base at all.
    pub fn at_base(repo: &Path, base: &str, ledger_rel: &str) -> Result<Trust, GateError> {
        let short = base.get(..12).unwrap_or(base);
        let path = if ledger_rel.is_empty() {
            ALLOWED_SIGNERS_FILE.to_owned()
        } else {
            format!("{ledger_rel}/{ALLOWED_SIGNERS_FILE}")
        };
        let source = format!("{path} at {short}");
        let mut problems = Vec::new();
        let text = vnx_git::file_at(repo, base, &path)?;
        let has_signers_file = text.is_some();
        let signers_text = text.unwrap_or_default();
        let signers = match std::str::from_utf8(&signers_text)
            .map_err(|_| format!("{source} is not UTF-8"))
            .and_then(|t| AllowedSigners::parse(t, &source).map_err(|e| e.to_string()))
        {
            Ok(signers) => signers,
            Err(e) => {
                problems.push(format!(
                    "{e}. Fix the file in a commit of its own, signed by a person it lists, and merge that first"
                ));
                AllowedSigners::default()
            }
        };
        let policy = match vnx_git::file_at(repo, base, CONFIG_FILE)? {
            None => MergeGateConfig::default(),
            Some(bytes) => match std::str::from_utf8(&bytes)
                .map_err(|_| format!("{CONFIG_FILE} at {short} is not UTF-8"))
                .and_then(|t| {
                    Config::from_toml_str(t, Some(Path::new(&format!("{CONFIG_FILE} at {short}"))))
                        .map_err(|e| e.to_string())
                }) {
                Ok(config) => config.merge_gate,
                Err(e) => {
                    problems.push(format!(
                        "the gate's policy could not be read: {e} (the strictest policy applies)"
                    ));
                    MergeGateConfig::default()
                }
            },
        };
        Ok(Trust {
            signers,
            signers_text,
            has_signers_file,
            source,
            coverage: policy.coverage,
            approvers: policy.approvers,
            problems,
        })
    }

    /// One line for the report: where trust came from.
    pub fn describe(&self) -> String {
        if self.has_signers_file {
            format!("{} ({} key line(s))", self.source, self.signers.len())
        } else {
            format!("no {} (nobody is trusted to sign)", self.source)
        }
    }

    /// Why a signature by nobody in particular cannot be trusted, for block
    /// details: names the file and what to do.
    pub fn no_signers_hint(&self) -> String {
        if !self.has_signers_file {
            format!(
                "; there is no {}: add one (`vnx doctor` prints your line) in a commit of its own and merge it first",
                self.source
            )
        } else if self.signers.is_empty() {
            format!(
                "; {} lists no key: add one line per person or CI key (`vnx doctor` prints yours) in a commit of its own and merge it first",
                self.source
            )
        } else {
            String::new()
        }
    }

    /// Whether `signer`'s approvals count under `[merge_gate] approvers`.
    pub fn approver_allowed(&self, signer: &Signer) -> bool {
        self.approvers.is_empty()
            || signer.principals.iter().any(|p| {
                self.approvers
                    .iter()
                    .any(|a| vnx_sign::pattern_matches(p, a))
            })
    }

    /// The base's allowed-signers bytes in a temporary file, for `git
    /// verify-commit` (`gpg.ssh.allowedSignersFile`).
    ///
    /// # Errors
    /// [`GateError::TempFile`].
    pub fn signers_file(&self) -> Result<tempfile::NamedTempFile, GateError> {
        let mut file = tempfile::NamedTempFile::new().map_err(GateError::TempFile)?;
        file.write_all(&self.signers_text)
            .and_then(|()| file.flush())
            .map_err(GateError::TempFile)?;
        Ok(file)
    }
}

/// The ledger directory's files at `base`: the manifest and the segments
/// (one `ls-tree` and one `cat-file --batch`).
///
/// # Errors
/// [`GateError::Git`].
pub fn base_ledger(repo: &Path, base: &str, ledger_rel: &str) -> Result<BaseLedger, GateError> {
    let mut ledger = BaseLedger::default();
    for (name, bytes) in vnx_git::dir_files_at(repo, base, ledger_rel)? {
        if name == vnx_ledger::store::MANIFEST_FILE {
            ledger.manifest = Some(bytes);
        } else if vnx_ledger::store::is_segment_name(&name) {
            ledger.segments.insert(name, bytes);
        }
    }
    Ok(ledger)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trust(approvers: &[&str]) -> Trust {
        Trust {
            signers: AllowedSigners::default(),
            signers_text: Vec::new(),
            has_signers_file: true,
            source: "ledger/allowed_signers at 000000000000".into(),
            coverage: true,
            approvers: approvers.iter().map(|a| (*a).to_owned()).collect(),
            problems: Vec::new(),
        }
    }

    fn signer(principals: &[&str]) -> Signer {
        Signer {
            principals: principals.iter().map(|p| (*p).to_owned()).collect(),
            fingerprint: "SHA256:x".into(),
            algorithm: "ssh-ed25519".into(),
            public_key: "ssh-ed25519 AAAA".into(),
        }
    }

    #[test]
    fn approvers_are_principal_patterns_and_empty_allows_any_signer() {
        assert!(trust(&[]).approver_allowed(&signer(&["bob@x"])));
        let leads = trust(&["alice@example.com", "*@leads.example.com"]);
        assert!(leads.approver_allowed(&signer(&["alice@example.com"])));
        assert!(leads.approver_allowed(&signer(&["bob@x", "carol@leads.example.com"])));
        assert!(!leads.approver_allowed(&signer(&["bob@example.com"])));
        assert!(!leads.approver_allowed(&signer(&["alice@example.com.evil"])));
    }

    #[test]
    fn the_hint_names_a_missing_or_empty_allowed_signers() {
        let mut t = trust(&[]);
        assert!(t.no_signers_hint().contains("lists no key"));
        t.has_signers_file = false;
        assert!(t.no_signers_hint().contains("there is no"));
    }
}
