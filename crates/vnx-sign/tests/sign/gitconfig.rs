//! Finding the signing key in a real repository's git configuration.

use vnx_sign::{KeySource, LEDGER_NAMESPACE, SignError, SigningKey};

use crate::support::{git, git_repo, keygen};

#[test]
fn config_get_reads_set_and_unset_keys() {
    let dir = tempfile::tempdir().unwrap();
    let repo = git_repo(dir.path());
    git(&repo, &["config", "vnx.test", "a value "]);
    assert_eq!(
        vnx_git::config_get(&repo, "vnx.test").unwrap().as_deref(),
        Some("a value ")
    );
    assert_eq!(vnx_git::config_get(&repo, "vnx.unset").unwrap(), None);
    let err = vnx_git::config_get(&repo, "nosection").unwrap_err();
    assert!(err.to_string().contains("nosection"), "{err}");
    // A key can never be taken for an option.
    assert!(vnx_git::config_get(&repo, "--list").is_err());
}

#[test]
fn ssh_format_with_a_key_file_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let repo = git_repo(dir.path());
    let pair = keygen(dir.path(), "ed25519", "id");
    git(&repo, &["config", "gpg.format", "ssh"]);
    git(
        &repo,
        &["config", "user.signingkey", pair.private.to_str().unwrap()],
    );
    let key = SigningKey::from_git_config(&repo).unwrap().unwrap();
    assert_eq!(key.source(), &KeySource::PrivateFile(pair.private.clone()));
    assert_eq!(key.fingerprint(), pair.fingerprint());
    assert!(key.sign(b"x", LEDGER_NAMESPACE).is_ok());

    // A relative path is taken from the repository, as git does from its top.
    std::fs::copy(&pair.public, repo.join("signer.pub")).unwrap();
    git(&repo, &["config", "user.signingkey", "signer.pub"]);
    let key = SigningKey::from_git_config(&repo).unwrap().unwrap();
    assert_eq!(
        key.source(),
        &KeySource::PublicFile(repo.join("signer.pub"))
    );

    // A literal, with git's key:: prefix and without.
    for spec in [format!("key::{}", pair.line), pair.line.clone()] {
        git(&repo, &["config", "user.signingkey", &spec]);
        let key = SigningKey::from_git_config(&repo).unwrap().unwrap();
        assert_eq!(key.source(), &KeySource::Literal(pair.line.clone()));
    }
}

#[test]
fn other_formats_or_no_key_give_none() {
    let dir = tempfile::tempdir().unwrap();
    let repo = git_repo(dir.path());
    assert!(SigningKey::from_git_config(&repo).unwrap().is_none());
    git(&repo, &["config", "user.signingkey", "ABCDEF0123456789"]);
    for format in ["openpgp", "x509"] {
        git(&repo, &["config", "gpg.format", format]);
        assert!(
            SigningKey::from_git_config(&repo).unwrap().is_none(),
            "{format}"
        );
    }
    git(&repo, &["config", "gpg.format", "ssh"]);
    git(&repo, &["config", "--unset", "user.signingkey"]);
    assert!(SigningKey::from_git_config(&repo).unwrap().is_none());
}

#[test]
fn an_unusable_configuration_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let repo = git_repo(dir.path());
    git(&repo, &["config", "gpg.format", "ssh"]);
    git(
        &repo,
        &["config", "user.signingkey", "~/.ssh/vnx-test-no-such-key"],
    );
    let err = SigningKey::from_git_config(&repo).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, SignError::KeySpec { .. }), "{err:?}");
    assert!(
        msg.contains("git config user.signingkey \"~/.ssh/vnx-test-no-such-key\"")
            && msg.contains("no such file")
            && msg.contains("ssh-keygen -t ed25519"),
        "{msg}"
    );

    let junk = dir.path().join("junk");
    std::fs::write(&junk, "hello\n").unwrap();
    git(
        &repo,
        &["config", "user.signingkey", junk.to_str().unwrap()],
    );
    let msg = SigningKey::from_git_config(&repo).unwrap_err().to_string();
    assert!(
        msg.contains("holds no OpenSSH public or private key"),
        "{msg}"
    );

    git(
        &repo,
        &["config", "user.signingkey", "ssh-ed25519 AAAAnotbase64!"],
    );
    let msg = SigningKey::from_git_config(&repo).unwrap_err().to_string();
    assert!(
        msg.contains("not a public key") && msg.contains("key::"),
        "{msg}"
    );

    git(&repo, &["config", "gpg.format", "pgp"]);
    let err = SigningKey::from_git_config(&repo).unwrap_err();
    assert!(matches!(err, SignError::UnknownFormat { .. }), "{err:?}");
    assert!(
        err.to_string().contains("git config gpg.format ssh"),
        "{err}"
    );
}

#[test]
fn gpg_ssh_program_is_the_signing_program() {
    let dir = tempfile::tempdir().unwrap();
    let repo = git_repo(dir.path());
    let pair = keygen(dir.path(), "ed25519", "id");
    git(&repo, &["config", "gpg.format", "ssh"]);
    git(
        &repo,
        &["config", "user.signingkey", pair.private.to_str().unwrap()],
    );
    git(
        &repo,
        &["config", "gpg.ssh.program", "/nonexistent/vnx-ssh-keygen"],
    );
    let key = SigningKey::from_git_config(&repo).unwrap().unwrap();
    let err = key.sign(b"x", LEDGER_NAMESPACE).unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/vnx-ssh-keygen"),
        "{err}"
    );
}
