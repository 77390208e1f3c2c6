//! vnx's signatures against OpenSSH's own `ssh-keygen -Y sign` / `-Y verify`.

use std::os::unix::fs::PermissionsExt as _;

use vnx_sign::{
    APPROVAL_NAMESPACE, AllowedSigners, KeySource, LEDGER_NAMESPACE, SignError, SigningKey,
    VerifyError, allowed_signers_line, signature_key, verify,
};

use crate::support::{keygen, now, ssh_keygen_sign, ssh_keygen_verify};

const MESSAGE: &[u8] = b"{\"seq\":1,\"kind\":\"segment\"}\n";

fn vnx_signs_and_ssh_keygen_verifies(kind: &str) {
    let dir = tempfile::tempdir().unwrap();
    let pair = keygen(dir.path(), kind, "id");
    let key = SigningKey::from_spec(pair.private.to_str().unwrap()).unwrap();
    assert_eq!(key.source(), &KeySource::PrivateFile(pair.private.clone()));
    assert_eq!(key.fingerprint(), pair.fingerprint());
    assert_eq!(key.public_key_line(), pair.line);

    let line = allowed_signers_line("alice@example.com", &key);
    assert_eq!(
        line,
        format!(
            "alice@example.com namespaces=\"vnx-ledger,vnx-approval,git\" {}",
            pair.line
        )
    );
    for namespace in [LEDGER_NAMESPACE, APPROVAL_NAMESPACE] {
        let sig = key.sign(MESSAGE, namespace).unwrap();
        assert!(sig.starts_with("-----BEGIN SSH SIGNATURE-----"), "{sig}");
        let (ok, said) = ssh_keygen_verify(
            dir.path(),
            &line,
            "alice@example.com",
            namespace,
            &sig,
            MESSAGE,
        );
        assert!(
            ok,
            "ssh-keygen -Y verify refused vnx's {kind} signature: {said}"
        );

        let signers = AllowedSigners::parse(&line, "allowed_signers").unwrap();
        let signer = verify(MESSAGE, &sig, namespace, &signers, now()).unwrap();
        assert_eq!(signer.principal(), "alice@example.com");
        assert_eq!(signer.fingerprint, pair.fingerprint());
        assert_eq!(signer.public_key, pair.line);
        assert_eq!(signer.algorithm, pair.line.split(' ').next().unwrap());
    }
}

#[test]
fn vnx_signs_ed25519_and_ssh_keygen_verifies() {
    vnx_signs_and_ssh_keygen_verifies("ed25519");
}

#[test]
fn vnx_signs_ecdsa_and_ssh_keygen_verifies() {
    vnx_signs_and_ssh_keygen_verifies("ecdsa");
}

#[test]
fn vnx_signs_rsa_and_ssh_keygen_verifies() {
    vnx_signs_and_ssh_keygen_verifies("rsa");
}

#[test]
fn ssh_keygen_signatures_verify_in_process() {
    let dir = tempfile::tempdir().unwrap();
    for kind in ["ed25519", "ecdsa", "rsa"] {
        let pair = keygen(dir.path(), kind, kind);
        let sig = ssh_keygen_sign(&pair.private, LEDGER_NAMESPACE, MESSAGE);
        let signers =
            AllowedSigners::parse(&format!("{kind}@example.com {}", pair.line), "f").unwrap();
        let signer = verify(MESSAGE, &sig, LEDGER_NAMESPACE, &signers, now())
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(signer.principals, vec![format!("{kind}@example.com")]);
        assert_eq!(signer.fingerprint, pair.fingerprint());
        let key = signature_key(&sig).unwrap();
        assert_eq!(
            key.fingerprint(vnx_sign::ssh_key::HashAlg::Sha256)
                .to_string(),
            pair.fingerprint()
        );
    }
}

#[test]
fn a_signature_over_other_bytes_is_a_bad_signature() {
    let dir = tempfile::tempdir().unwrap();
    let pair = keygen(dir.path(), "ed25519", "id");
    let sig = ssh_keygen_sign(&pair.private, LEDGER_NAMESPACE, MESSAGE);
    let signers = AllowedSigners::parse(&format!("alice {}", pair.line), "f").unwrap();
    let mut altered = MESSAGE.to_vec();
    altered[3] ^= 1;
    let err = verify(&altered, &sig, LEDGER_NAMESPACE, &signers, now()).unwrap_err();
    assert_eq!(
        err,
        VerifyError::BadSignature {
            fingerprint: pair.fingerprint(),
            namespace: LEDGER_NAMESPACE.to_owned(),
        }
    );
    assert!(err.to_string().contains("altered"), "{err}");
    // OpenSSH agrees.
    let (ok, _) = ssh_keygen_verify(
        dir.path(),
        &format!("alice {}", pair.line),
        "alice",
        LEDGER_NAMESPACE,
        &sig,
        &altered,
    );
    assert!(!ok);
}

#[test]
fn a_signature_from_another_namespace_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pair = keygen(dir.path(), "ed25519", "id");
    let sig = ssh_keygen_sign(&pair.private, APPROVAL_NAMESPACE, MESSAGE);
    let signers = AllowedSigners::parse(&format!("alice {}", pair.line), "f").unwrap();
    let err = verify(MESSAGE, &sig, LEDGER_NAMESPACE, &signers, now()).unwrap_err();
    assert_eq!(
        err,
        VerifyError::WrongNamespace {
            expected: "vnx-ledger".to_owned(),
            found: "vnx-approval".to_owned(),
        }
    );
    assert!(err.to_string().contains("expected \"vnx-ledger\""), "{err}");
}

#[test]
fn garbage_and_truncated_signatures_are_malformed() {
    let dir = tempfile::tempdir().unwrap();
    let pair = keygen(dir.path(), "ed25519", "id");
    let sig = ssh_keygen_sign(&pair.private, LEDGER_NAMESPACE, MESSAGE);
    let signers = AllowedSigners::parse(&format!("alice {}", pair.line), "f").unwrap();
    let truncated: String = {
        let lines: Vec<&str> = sig.lines().collect();
        format!("{}\n{}\n{}\n", lines[0], lines[1], lines[lines.len() - 1])
    };
    for bad in ["", "not a signature", truncated.as_str()] {
        let err = verify(MESSAGE, bad, LEDGER_NAMESPACE, &signers, now()).unwrap_err();
        assert!(
            matches!(err, VerifyError::Malformed { .. }),
            "{bad:?}: {err:?}"
        );
        assert!(signature_key(bad).is_err());
    }
}

#[test]
fn a_dsa_signature_is_an_unsupported_algorithm() {
    let dir = tempfile::tempdir().unwrap();
    let pair = keygen(dir.path(), "dsa", "id");
    let sig = ssh_keygen_sign(&pair.private, LEDGER_NAMESPACE, MESSAGE);
    let signers = AllowedSigners::parse(&format!("alice {}", pair.line), "f").unwrap();
    let err = verify(MESSAGE, &sig, LEDGER_NAMESPACE, &signers, now()).unwrap_err();
    assert_eq!(
        err,
        VerifyError::UnsupportedAlgorithm {
            algorithm: "ssh-dss".to_owned()
        }
    );
    assert!(err.to_string().contains("ssh-keygen -t ed25519"), "{err}");
}

#[test]
fn the_signing_child_gets_only_the_environment_it_needs() {
    let dir = tempfile::tempdir().unwrap();
    let pair = keygen(dir.path(), "ed25519", "id");
    // A wrapper in place of ssh-keygen (as git's gpg.ssh.program) that
    // records its environment, then signs.
    let wrapper = dir.path().join("keygen-wrapper");
    let env_file = dir.path().join("env.txt");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nenv > '{}'\nexec ssh-keygen \"$@\"\n",
            env_file.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let key = SigningKey::from_spec(pair.private.to_str().unwrap())
        .unwrap()
        .with_program(&wrapper)
        .with_agent_socket(dir.path().join("no-agent.sock"));
    let sig = key.sign(MESSAGE, LEDGER_NAMESPACE).unwrap();
    assert!(sig.contains("BEGIN SSH SIGNATURE"));
    let env = std::fs::read_to_string(&env_file).unwrap();
    let names: Vec<&str> = env.lines().filter_map(|l| l.split('=').next()).collect();
    for name in &names {
        // PWD is added by /bin/sh itself.
        assert!(
            [
                "PATH",
                "HOME",
                "SSH_AUTH_SOCK",
                "SSH_ASKPASS",
                "DISPLAY",
                "PWD"
            ]
            .contains(name),
            "the signing child got {name}; its environment: {env}"
        );
    }
    assert!(env.contains(&format!(
        "SSH_AUTH_SOCK={}",
        dir.path().join("no-agent.sock").display()
    )));
}

#[test]
fn a_missing_program_and_an_empty_namespace_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let pair = keygen(dir.path(), "ed25519", "id");
    let key = SigningKey::from_spec(pair.private.to_str().unwrap()).unwrap();
    let err = key.sign(MESSAGE, "").unwrap_err();
    assert!(matches!(err, SignError::Namespace { .. }), "{err:?}");
    let err = key
        .with_program(dir.path().join("no-such-ssh-keygen"))
        .sign(MESSAGE, LEDGER_NAMESPACE)
        .unwrap_err();
    assert!(matches!(err, SignError::Spawn { .. }), "{err:?}");
    assert!(err.to_string().contains("no-such-ssh-keygen"), "{err}");
}

/// An unencrypted ed25519 key file is signed in-process (no ssh-keygen
/// start per dispatch); ed25519 is deterministic, so the armored SSHSIG is
/// byte for byte what `ssh-keygen -Y sign` writes for the same key.
#[test]
fn an_ed25519_key_file_signs_in_process_exactly_as_ssh_keygen() {
    let dir = tempfile::tempdir().unwrap();
    let pair = keygen(dir.path(), "ed25519", "id");
    let key = SigningKey::from_spec(pair.private.to_str().unwrap()).unwrap();
    for namespace in [LEDGER_NAMESPACE, APPROVAL_NAMESPACE] {
        let ours = key.sign(MESSAGE, namespace).unwrap();
        let theirs = ssh_keygen_sign(&pair.private, namespace, MESSAGE);
        assert_eq!(ours.trim_end(), theirs.trim_end(), "{namespace}");
    }
    // A program of the user's own (git's gpg.ssh.program) is still run.
    let fake = dir.path().join("not-ssh-keygen");
    std::fs::write(&fake, "#!/bin/sh\necho refused >&2\nexit 3\n").unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let custom = key.clone().with_program(&fake);
    assert!(custom.sign(MESSAGE, LEDGER_NAMESPACE).is_err());
}
