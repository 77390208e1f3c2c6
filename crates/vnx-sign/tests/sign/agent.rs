//! Signing through a real ssh-agent: a public key file and a literal key
//! whose private half only the agent holds.

use vnx_sign::{AllowedSigners, KeySource, LEDGER_NAMESPACE, SignError, SigningKey, verify};

use crate::support::{Agent, keygen, now, ssh_keygen_verify};

const MESSAGE: &[u8] = b"approval of d-20260101\n";

/// A key whose private file is deleted after it is added to `agent`, and
/// whose public file is kept: the agent is the only way to sign.
fn agent_only_key(dir: &std::path::Path, agent: &Agent) -> crate::support::Key {
    let pair = keygen(dir, "ed25519", "id");
    agent.add(&pair.private);
    std::fs::remove_file(&pair.private).unwrap();
    pair
}

fn assert_verifies(dir: &std::path::Path, line: &str, sig: &str) {
    let allowed = format!("alice@example.com {line}\n");
    let (ok, said) = ssh_keygen_verify(
        dir,
        &allowed,
        "alice@example.com",
        LEDGER_NAMESPACE,
        sig,
        MESSAGE,
    );
    assert!(ok, "{said}");
    let signers = AllowedSigners::parse(&allowed, "f").unwrap();
    assert!(verify(MESSAGE, sig, LEDGER_NAMESPACE, &signers, now()).is_ok());
}

#[test]
fn a_public_key_file_signs_through_the_agent() {
    let dir = tempfile::tempdir().unwrap();
    let agent = Agent::start(dir.path());
    let pair = agent_only_key(dir.path(), &agent);
    let key = SigningKey::from_spec(pair.public.to_str().unwrap())
        .unwrap()
        .with_agent_socket(&agent.socket);
    assert_eq!(key.source(), &KeySource::PublicFile(pair.public.clone()));
    key.check_usable().unwrap();
    let sig = key.sign(MESSAGE, LEDGER_NAMESPACE).unwrap();
    assert_verifies(dir.path(), &pair.line, &sig);
}

#[test]
fn a_literal_key_signs_through_the_agent() {
    let dir = tempfile::tempdir().unwrap();
    let agent = Agent::start(dir.path());
    let pair = agent_only_key(dir.path(), &agent);
    for spec in [format!("key::{} a comment", pair.line), pair.line.clone()] {
        let key = SigningKey::from_spec(&spec)
            .unwrap()
            .with_agent_socket(&agent.socket);
        assert_eq!(key.source(), &KeySource::Literal(pair.line.clone()));
        assert_eq!(key.fingerprint(), pair.fingerprint());
        key.check_usable().unwrap();
        let sig = key.sign(MESSAGE, LEDGER_NAMESPACE).unwrap();
        assert_verifies(dir.path(), &pair.line, &sig);
    }
}

#[test]
fn a_key_the_agent_does_not_hold_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let agent = Agent::start(dir.path());
    let held = keygen(dir.path(), "ed25519", "held");
    agent.add(&held.private);
    let absent = keygen(dir.path(), "ed25519", "absent");
    std::fs::remove_file(&absent.private).unwrap();

    for spec in [
        absent.line.clone(),
        absent.public.to_str().unwrap().to_owned(),
    ] {
        let key = SigningKey::from_spec(&spec)
            .unwrap()
            .with_agent_socket(&agent.socket);
        let err = key.check_usable().unwrap_err();
        assert!(matches!(err, SignError::Agent { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains("ssh-agent does not hold this key") && msg.contains("ssh-add"),
            "{msg}"
        );
        let err = key.sign(MESSAGE, LEDGER_NAMESPACE).unwrap_err();
        assert!(matches!(err, SignError::SignFailed { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains(&absent.fingerprint())
                && msg.contains("not in ssh-agent")
                && msg.contains("ssh-add"),
            "{msg}"
        );
    }
}

#[test]
fn no_reachable_agent_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let pair = keygen(dir.path(), "ed25519", "id");
    let key = SigningKey::from_spec(&pair.line)
        .unwrap()
        .with_agent_socket(dir.path().join("nobody-listens.sock"));
    let err = key.check_usable().unwrap_err();
    assert!(err.to_string().contains("could not be reached"), "{err}");
    let err = key.sign(MESSAGE, LEDGER_NAMESPACE).unwrap_err();
    assert!(err.to_string().contains("ssh-agent"), "{err}");
}

#[test]
fn a_public_key_file_signs_with_the_private_file_beside_it() {
    // What ssh-keygen (and so git) does when the agent lacks the key.
    let dir = tempfile::tempdir().unwrap();
    let pair = keygen(dir.path(), "ed25519", "id");
    let key = SigningKey::from_spec(pair.public.to_str().unwrap())
        .unwrap()
        .with_agent_socket(dir.path().join("nobody-listens.sock"));
    key.check_usable().unwrap();
    let sig = key.sign(MESSAGE, LEDGER_NAMESPACE).unwrap();
    assert_verifies(dir.path(), &pair.line, &sig);
}

#[test]
fn a_passphrase_protected_key_must_be_in_the_agent() {
    let dir = tempfile::tempdir().unwrap();
    let private = dir.path().join("locked");
    crate::support::run_ok(
        std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "correct horse", "-f"])
            .arg(&private),
    );
    let agent = Agent::start(dir.path());
    let key = SigningKey::from_spec(private.to_str().unwrap())
        .unwrap()
        .with_agent_socket(&agent.socket);
    let err = key.check_usable().unwrap_err();
    assert!(err.to_string().contains("passphrase-protected"), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("ssh-add {}", private.display())),
        "{err}"
    );
}
