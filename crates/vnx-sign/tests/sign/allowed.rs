//! allowed_signers parsing and every trust refusal, checked against what
//! `ssh-keygen -Y verify` decides for the same file.

use vnx_sign::{AllowedSigners, LEDGER_NAMESPACE, SignError, VerifyError, verify};

use crate::support::{Key, keygen, now, ssh_keygen_sign, ssh_keygen_verify};

const MESSAGE: &[u8] = b"segment bytes\n";

/// A key and a signature by it over [`MESSAGE`] in the ledger namespace.
fn signed(dir: &std::path::Path) -> (Key, String) {
    let pair = keygen(dir, "ed25519", "id");
    let sig = ssh_keygen_sign(&pair.private, LEDGER_NAMESPACE, MESSAGE);
    (pair, sig)
}

fn parse(text: &str) -> AllowedSigners {
    AllowedSigners::parse(text, "ledger/allowed_signers at 1a2b3c4").unwrap()
}

#[test]
fn comments_blank_lines_options_and_quotes_parse() {
    let dir = tempfile::tempdir().unwrap();
    let (pair, sig) = signed(dir.path());
    let other = keygen(dir.path(), "ecdsa", "other");
    let text = format!(
        "# project signers\n\n   \t\n\"Alice Example,alice@example.com\" NAMESPACES=\"vnx-*,git\",valid-after=\"20200101Z\" {} alice's laptop\n  # indented comment\nbob@example.com {} bob\n",
        pair.line, other.line
    );
    let signers = parse(&text);
    assert_eq!(signers.len(), 2);
    assert!(!signers.is_empty());
    let signer = verify(MESSAGE, &sig, LEDGER_NAMESPACE, &signers, now()).unwrap();
    assert_eq!(
        signer.principals,
        vec!["Alice Example", "alice@example.com"]
    );
    assert_eq!(signer.principal(), "Alice Example");
    let (ok, said) = ssh_keygen_verify(
        dir.path(),
        &text,
        "alice@example.com",
        LEDGER_NAMESPACE,
        &sig,
        MESSAGE,
    );
    assert!(ok, "{said}");
    assert!(parse("# nothing\n\n").is_empty());
}

#[test]
fn every_line_listing_the_key_counts() {
    let dir = tempfile::tempdir().unwrap();
    let (pair, sig) = signed(dir.path());
    let text = format!(
        "old@example.com valid-before=\"20000101Z\" {key}\nalice@example.com {key}\nci@example.com,alice@example.com namespaces=\"vnx-ledger\" {key}\nnot-here namespaces=\"git\" {key}\n",
        key = pair.line
    );
    let signer = verify(MESSAGE, &sig, LEDGER_NAMESPACE, &parse(&text), now()).unwrap();
    assert_eq!(
        signer.principals,
        vec!["alice@example.com", "ci@example.com"]
    );
}

#[test]
fn an_unlisted_key_names_its_fingerprint() {
    let dir = tempfile::tempdir().unwrap();
    let (pair, sig) = signed(dir.path());
    let other = keygen(dir.path(), "ed25519", "other");
    let text = format!("bob@example.com {}\n", other.line);
    let err = verify(MESSAGE, &sig, LEDGER_NAMESPACE, &parse(&text), now()).unwrap_err();
    assert_eq!(
        err,
        VerifyError::NotListed {
            fingerprint: pair.fingerprint(),
            source_name: "ledger/allowed_signers at 1a2b3c4".to_owned(),
        }
    );
    let msg = err.to_string();
    assert!(
        msg.contains(&pair.fingerprint()) && msg.contains("ledger/allowed_signers at 1a2b3c4"),
        "{msg}"
    );
    let err = verify(MESSAGE, &sig, LEDGER_NAMESPACE, &parse(""), now()).unwrap_err();
    assert!(matches!(err, VerifyError::NotListed { .. }), "{err:?}");
}

#[test]
fn a_namespace_restriction_refuses_other_namespaces() {
    let dir = tempfile::tempdir().unwrap();
    let (pair, sig) = signed(dir.path());
    let text = format!("alice@example.com namespaces=\"git,file\" {}\n", pair.line);
    let err = verify(MESSAGE, &sig, LEDGER_NAMESPACE, &parse(&text), now()).unwrap_err();
    assert_eq!(
        err,
        VerifyError::NamespaceNotAllowed {
            fingerprint: pair.fingerprint(),
            source_name: "ledger/allowed_signers at 1a2b3c4".to_owned(),
            line: 1,
            allowed: "git,file".to_owned(),
            namespace: "vnx-ledger".to_owned(),
        }
    );
    let (ok, _) = ssh_keygen_verify(
        dir.path(),
        &text,
        "alice@example.com",
        LEDGER_NAMESPACE,
        &sig,
        MESSAGE,
    );
    assert!(
        !ok,
        "ssh-keygen accepted a namespace the line does not allow"
    );
    // A negated pattern excludes even when a wildcard would allow.
    let text = format!(
        "alice@example.com namespaces=\"!vnx-ledger,vnx-*\" {}\n",
        pair.line
    );
    let err = verify(MESSAGE, &sig, LEDGER_NAMESPACE, &parse(&text), now()).unwrap_err();
    assert!(
        matches!(err, VerifyError::NamespaceNotAllowed { .. }),
        "{err:?}"
    );
}

#[test]
fn an_expired_key_names_the_date() {
    let dir = tempfile::tempdir().unwrap();
    let (pair, sig) = signed(dir.path());
    let text = format!(
        "# header\nalice@example.com valid-before=\"20200131Z\" {}\n",
        pair.line
    );
    let err = verify(MESSAGE, &sig, LEDGER_NAMESPACE, &parse(&text), now()).unwrap_err();
    let VerifyError::Expired {
        line, valid_before, ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!((*line, *valid_before), (2, 1_580_428_800));
    let msg = err.to_string();
    assert!(
        msg.contains("2020-01-31 00:00:00 UTC") && msg.contains("line 2"),
        "{msg}"
    );
    let (ok, _) = ssh_keygen_verify(
        dir.path(),
        &text,
        "alice@example.com",
        LEDGER_NAMESPACE,
        &sig,
        MESSAGE,
    );
    assert!(!ok, "ssh-keygen accepted an expired key");
    // Valid up to and including the bound itself, as in OpenSSH.
    assert!(
        verify(
            MESSAGE,
            &sig,
            LEDGER_NAMESPACE,
            &parse(&text),
            1_580_428_800
        )
        .is_ok()
    );
}

#[test]
fn a_key_not_yet_valid_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (pair, sig) = signed(dir.path());
    let text = format!(
        "alice@example.com valid-after=\"29990101000000Z\" {}\n",
        pair.line
    );
    let err = verify(MESSAGE, &sig, LEDGER_NAMESPACE, &parse(&text), now()).unwrap_err();
    assert!(
        matches!(err, VerifyError::NotYetValid { line: 1, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("2999-01-01 00:00:00 UTC"), "{err}");
    let (ok, _) = ssh_keygen_verify(
        dir.path(),
        &text,
        "alice@example.com",
        LEDGER_NAMESPACE,
        &sig,
        MESSAGE,
    );
    assert!(!ok, "ssh-keygen accepted a key before its valid-after");
}

#[test]
fn a_cert_authority_line_is_never_taken_as_trust() {
    let dir = tempfile::tempdir().unwrap();
    let (pair, sig) = signed(dir.path());
    // Even the signer's own key on a cert-authority line grants nothing.
    let text = format!("# CA\n*@example.com cert-authority {}\n", pair.line);
    let err = verify(MESSAGE, &sig, LEDGER_NAMESPACE, &parse(&text), now()).unwrap_err();
    assert!(
        matches!(err, VerifyError::CertAuthority { line: 2, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("line 2 is a cert-authority line"),
        "{err}"
    );
    let (ok, _) = ssh_keygen_verify(
        dir.path(),
        &text,
        "alice@example.com",
        LEDGER_NAMESPACE,
        &sig,
        MESSAGE,
    );
    assert!(!ok, "ssh-keygen took a plain key on a CA line as trusted");
    // A key listed on its own line is trusted whatever CA lines exist.
    let text = format!("{text}alice@example.com {}\n", pair.line);
    assert!(verify(MESSAGE, &sig, LEDGER_NAMESPACE, &parse(&text), now()).is_ok());
}

#[test]
fn wildcard_and_negated_principals_match_as_in_openssh() {
    let dir = tempfile::tempdir().unwrap();
    let (pair, sig) = signed(dir.path());
    let text = format!("!mallory@example.com,*@example.com,ci-?? {}\n", pair.line);
    let signers = parse(&text);
    let signer = verify(MESSAGE, &sig, LEDGER_NAMESPACE, &signers, now()).unwrap();
    assert_eq!(signer.principals, vec!["*@example.com", "ci-??"]);
    let key = vnx_sign::signature_key(&sig).unwrap();
    for (principal, expected) in [
        ("alice@example.com", true),
        ("ci-01", true),
        ("ci-001", false),
        ("mallory@example.com", false),
        ("alice@example.org", false),
    ] {
        let ours = signers.allows(principal, &key, LEDGER_NAMESPACE, now());
        let (theirs, said) = ssh_keygen_verify(
            dir.path(),
            &text,
            principal,
            LEDGER_NAMESPACE,
            &sig,
            MESSAGE,
        );
        assert_eq!(ours.is_ok(), expected, "{principal}: {ours:?}");
        assert_eq!(theirs, expected, "ssh-keygen for {principal}: {said}");
        if !expected {
            assert!(
                matches!(ours, Err(VerifyError::PrincipalNotAllowed { .. })),
                "{ours:?}"
            );
        }
    }
}

#[test]
fn a_malformed_line_is_an_error_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let pair = keygen(dir.path(), "ed25519", "id");
    let key = &pair.line;
    let truncated = &key[..key.len() - 8];
    let cases = [
        ("alice@example.com".to_owned(), "missing key"),
        (
            "alice@example.com namespaces=\"git\"".to_owned(),
            "missing key",
        ),
        (
            format!("alice@example.com {truncated}"),
            "invalid ssh-ed25519 key",
        ),
        (
            "alice@example.com ssh-ed25519 !!!!".to_owned(),
            "invalid ssh-ed25519 key",
        ),
        (
            format!("alice@example.com no-touch-required {key}"),
            "unknown option \"no-touch-required\"",
        ),
        (
            format!("alice@example.com namespaces=git {key}"),
            "double quotes",
        ),
        (
            format!("alice@example.com namespaces=\"a\",namespaces=\"b\" {key}"),
            "more than one namespaces",
        ),
        (
            format!("alice@example.com valid-before=\"2020-01-01\" {key}"),
            "not a valid time",
        ),
        (
            format!("alice@example.com valid-before=\"20201301Z\" {key}"),
            "no such date",
        ),
        (
            format!("alice@example.com valid-after=\"20210101Z\",valid-before=\"20200101Z\" {key}"),
            "not after",
        ),
        (
            format!("alice@example.com namespaces=\"git\", {key}"),
            "end with a comma",
        ),
        (
            format!("alice@example.com namespaces=\"git {key}"),
            "unterminated quote",
        ),
        (format!("\"alice@example.com {key}"), "unterminated quote"),
        (
            format!("\"Alice Example\",alice@example.com {key}"),
            "unknown option \",alice@example.com\"",
        ),
    ];
    for (bad, reason) in cases {
        let text = format!("# signers\nok@example.com {key}\n\n{bad}\nlater@example.com {key}\n");
        let err = AllowedSigners::parse(&text, "ledger/allowed_signers at 1a2b3c4").unwrap_err();
        let SignError::AllowedSignersLine { line, .. } = &err else {
            panic!("{bad}: {err:?}");
        };
        assert_eq!(*line, 4, "{bad}: {err}");
        let msg = err.to_string();
        assert!(
            msg.starts_with("ledger/allowed_signers at 1a2b3c4 line 4: ") && msg.contains(reason),
            "{bad}: {msg}"
        );
    }
}

#[test]
fn load_reads_a_file_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let pair = keygen(dir.path(), "ed25519", "id");
    let path = dir.path().join("allowed_signers");
    std::fs::write(&path, format!("alice {}\nbroken\n", pair.line)).unwrap();
    let err = AllowedSigners::load(&path).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("{} line 2: ", path.display())),
        "{err}"
    );
    std::fs::write(&path, format!("alice {}\n", pair.line)).unwrap();
    assert_eq!(AllowedSigners::load(&path).unwrap().len(), 1);
    let err = AllowedSigners::load(&dir.path().join("missing")).unwrap_err();
    assert!(matches!(err, SignError::Read { .. }), "{err:?}");
}
