//! The one secret table: every pattern on real-format samples, near misses,
//! PEM blocks, and redaction before every cut of worker output.

use vnx_agents::{
    ClaudeStreamParser, ParseContext, ProcessEnd, StreamParser, find_secrets, redact, secret_kinds,
};

use crate::samples::{near_misses, pem, samples};

#[test]
fn every_sample_is_redacted_and_found_as_its_kind() {
    for s in samples() {
        let red = redact(&s.text);
        assert!(!red.contains(&s.secret), "{} leaked: {red}", s.kind);
        assert!(
            red.contains(&format!("[REDACTED {}]", s.kind)),
            "{}: {red}",
            s.kind
        );
        let kinds: Vec<&str> = find_secrets(&s.text)
            .unwrap()
            .into_iter()
            .map(|f| f.kind)
            .collect();
        assert!(
            kinds.contains(&s.kind),
            "{}: {kinds:?} in {}",
            s.kind,
            s.text
        );
        assert_eq!(redact(&red), red, "redaction is idempotent");
    }
}

#[test]
fn every_kind_has_a_sample() {
    let sampled: Vec<&str> = samples().iter().map(|s| s.kind).collect();
    for kind in secret_kinds() {
        assert!(sampled.contains(&kind), "no sample for {kind}");
    }
}

#[test]
fn near_misses_are_left_alone() {
    for text in near_misses() {
        assert_eq!(redact(&text), text);
        assert!(find_secrets(&text).unwrap().is_empty(), "{text}");
    }
}

#[test]
fn pem_blocks_are_masked_whole() {
    for label in [
        "RSA PRIVATE KEY",
        "OPENSSH PRIVATE KEY",
        "ENCRYPTED PRIVATE KEY",
    ] {
        let (block, body) = pem(label, 25, 7);
        let text = format!("before\n{block}\nafter");
        let red = redact(&text);
        assert_eq!(red, "before\n[REDACTED private-key]\nafter", "{label}");
        for line in body.lines() {
            assert!(!red.contains(line));
        }
    }
}

#[test]
fn pem_without_end_masks_to_the_end_and_end_without_begin_from_the_start() {
    let (block, body) = pem("RSA PRIVATE KEY", 10, 3);
    let lines: Vec<&str> = body.lines().collect();
    // A head cut: the text ends inside the block.
    let cut = block.find(lines[4]).unwrap();
    let head = format!("log line\n{}", &block[..cut]);
    assert_eq!(redact(&head), "log line\n[REDACTED private-key]");
    // A tail cut: the text starts inside the block.
    let tail = format!("{}\nnext line", &block[cut..]);
    assert_eq!(redact(&tail), "[REDACTED private-key]\nnext line");
    for line in &lines {
        assert!(!redact(&head).contains(line) && !redact(&tail).contains(line));
    }
}

/// The outside finding: a worker's stderr is cut to its last 1,500 chars
/// before redaction, so a key straddling the cut leaks its tail; and a PEM
/// key printed by a worker reaches `attempts[].error`.
#[test]
fn worker_stderr_is_redacted_before_it_is_cut() {
    let (block, body) = pem("OPENSSH PRIVATE KEY", 30, 11);
    // The cut (1,500 chars from the end) falls inside the block.
    let stderr = format!("{block}\n{}", "x".repeat(400));
    assert!(stderr.len() > 1500 && stderr.len() - 1500 > block.find('\n').unwrap());
    let end = ProcessEnd {
        stderr_tail: stderr,
        ..ProcessEnd::exited(1)
    };
    let mut parser = ClaudeStreamParser::new(ParseContext::default());
    let outcome = parser.finish(&end);
    let error = outcome.error.unwrap();
    for line in body.lines() {
        assert!(!error.contains(line), "key line leaked into {error}");
    }
    for piece in body.lines().flat_map(|l| [&l[..20], &l[44..]]) {
        assert!(
            !error.contains(piece),
            "key piece {piece} leaked into {error}"
        );
    }
    assert!(error.contains("[REDACTED private-key]"), "{error}");
}

#[test]
fn an_api_key_straddling_the_stderr_cut_is_masked() {
    let key = samples()
        .into_iter()
        .find(|s| s.kind == "anthropic-api-key")
        .unwrap()
        .secret;
    // The key's first 50 chars fall before the cut, the rest after it.
    let after = 1500 - (key.len() - 50);
    let stderr = format!("error: {key}{}", "y".repeat(after));
    let end = ProcessEnd {
        stderr_tail: stderr,
        ..ProcessEnd::exited(1)
    };
    let mut parser = ClaudeStreamParser::new(ParseContext::default());
    let error = parser.finish(&end).error.unwrap();
    assert!(!error.contains(&key[50..]), "{error}");
    assert!(error.contains("[REDACTED anthropic-api-key]"), "{error}");
}
