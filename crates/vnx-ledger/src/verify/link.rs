//! The in-order linker: joins the scanned lines into a chain and classifies
//! every break.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::report::{Finding, Reason, SegmentReport};
use super::scan::{LineResult, Parsed};
use crate::checkpoint::SegmentCheckpoint;
use crate::record::{Hash, genesis_prev, parse_hex_hash, to_hex};
use crate::schema::BodyInfo;

#[derive(Clone, Copy)]
enum PrevRule {
    Exact(Hash),
    /// After an edited line, the next may link to its stored or its true hash.
    Either(Hash, Hash),
    /// No constraint (first record of a lone file without manifest).
    Any,
}

impl PrevRule {
    fn accepts(self, h: &Hash) -> bool {
        match self {
            PrevRule::Exact(a) => a == *h,
            PrevRule::Either(a, b) => a == *h || b == *h,
            PrevRule::Any => true,
        }
    }
}

#[derive(Clone, Copy)]
struct Expect {
    seq: u64,
    prev: PrevRule,
}

struct Pending {
    record: Parsed,
    before: Expect,
}

/// Links parsed lines into a chain and classifies every break. A line that
/// does not fit is held until the next line shows whether it was an intruder
/// (the chain continues as if it were absent: duplicated, spliced or moved) or
/// part of the chain (records missing before it, or a predecessor rewritten).
pub(super) struct Linker {
    path: PathBuf,
    name: String,
    ledger_id: Option<String>,
    /// None after an unreadable line: the next readable one re-anchors.
    expect: Option<Expect>,
    seq_base: u64,
    seq_hashes: Vec<Hash>,
    pending: Option<Pending>,
    last: Option<Parsed>,
    /// Lines that already have a finding, so one fault is reported once.
    flagged: BTreeSet<u64>,
    records: u64,
    findings: Vec<Finding>,
    pub(super) anchor: Option<SegmentCheckpoint>,
    pub(super) anchor_matched: bool,
    pub(super) next_line: u64,
    started: BTreeMap<String, (u64, u64)>,
    receipts: BTreeSet<String>,
    /// Records that appeared before their place (seq → stored hash).
    early: BTreeMap<u64, Hash>,
}

impl Linker {
    pub(super) fn new(path: &Path, name: &str, ledger_id: Option<&str>) -> Linker {
        let prev = ledger_id.map_or(PrevRule::Any, |id| PrevRule::Exact(genesis_prev(id, name)));
        Linker {
            path: path.to_path_buf(),
            name: name.to_owned(),
            ledger_id: ledger_id.map(str::to_owned),
            expect: Some(Expect { seq: 0, prev }),
            seq_base: 0,
            seq_hashes: Vec::new(),
            pending: None,
            last: None,
            flagged: BTreeSet::new(),
            records: 0,
            findings: Vec::new(),
            anchor: None,
            anchor_matched: false,
            next_line: 1,
            started: BTreeMap::new(),
            receipts: BTreeSet::new(),
            early: BTreeMap::new(),
        }
    }

    pub(super) fn resume_after(&mut self, cp: &SegmentCheckpoint) {
        let Some(hash) = parse_hex_hash(cp.head_hash.as_bytes()) else {
            return;
        };
        self.expect = Some(Expect {
            seq: cp.head_seq + 1,
            prev: PrevRule::Exact(hash),
        });
        self.seq_base = cp.head_seq + 1;
        // Line numbers past a checkpoint assume the verified prefix is intact:
        // one line per record, so record seq s is on line s + 1.
        self.next_line = cp.head_seq + 2;
    }

    pub(super) fn finding(&mut self, line: u64, seq: Option<u64>, reason: Reason, detail: String) {
        // One fault can be seen from two sides (a spliced genesis fails both
        // its link and its body); report it once.
        if line != 0
            && self
                .findings
                .iter()
                .any(|f| f.line == line && f.reason == reason)
        {
            return;
        }
        self.flagged.insert(line);
        self.findings.push(Finding {
            path: self.path.clone(),
            line,
            seq,
            reason,
            severity: reason.severity(),
            detail,
        });
    }

    pub(super) fn push(&mut self, r: LineResult) {
        let seq = r.parsed.as_ref().map(|p| p.seq);
        for (reason, detail) in r.problems {
            self.finding(r.line, seq, reason, detail);
        }
        if let Some(cp) = &self.anchor
            && r.end_offset == cp.size
        {
            {
                let ok = r.parsed.as_ref().is_some_and(|p| {
                    p.seq == cp.head_seq && to_hex(&p.stored) == cp.head_hash && !p.edited
                });
                if ok {
                    self.anchor_matched = true;
                }
            }
        }
        let Some(parsed) = r.parsed else {
            self.resolve(None);
            self.expect = None;
            return;
        };
        self.resolve(Some(&parsed));
        self.records += 1;
        match self.expect {
            None => self.advance(parsed),
            Some(e) if parsed.seq == e.seq && e.prev.accepts(&parsed.prev) => self.advance(parsed),
            // The expected record already appeared earlier, out of order (and
            // was reported there); this one links to it, so the chain goes on.
            Some(e) if parsed.seq == e.seq + 1 && self.early.get(&e.seq) == Some(&parsed.prev) => {
                self.advance(parsed);
            }
            Some(before) => {
                self.pending = Some(Pending {
                    record: parsed,
                    before,
                });
            }
        }
    }

    pub(super) fn finish(&mut self) {
        self.resolve(None);
    }

    fn seen_hash(&self, seq: u64) -> Option<&Hash> {
        seq.checked_sub(self.seq_base)
            .and_then(|i| self.seq_hashes.get(i as usize))
    }

    fn advance(&mut self, p: Parsed) {
        if p.seq == 0 && p.kind_genesis {
            self.check_genesis(&p);
        }
        let next_prev = if p.edited {
            PrevRule::Either(p.stored, p.computed)
        } else {
            PrevRule::Exact(p.stored)
        };
        self.expect = Some(Expect {
            seq: p.seq + 1,
            prev: next_prev,
        });
        if p.seq.checked_sub(self.seq_base) == Some(self.seq_hashes.len() as u64) {
            self.seq_hashes.push(p.stored);
        }
        match &p.info {
            BodyInfo::Started(id) => {
                self.started.insert(id.clone(), (p.line, p.seq));
            }
            BodyInfo::Receipt(id, _) => {
                self.receipts.insert(id.clone());
            }
            _ => {}
        }
        self.last = Some(p);
    }

    fn check_genesis(&mut self, p: &Parsed) {
        let BodyInfo::Genesis(g) = &p.info else {
            return;
        };
        let detail = if g.segment != self.name {
            format!(
                "genesis names segment {:?}, but the file is {:?}: it was renamed or copied from another segment",
                g.segment, self.name
            )
        } else if let Some(id) = self.ledger_id.as_deref().filter(|id| *id != g.ledger_id) {
            format!(
                "genesis names ledger {}, but this is ledger {id}: the segment comes from another ledger",
                g.ledger_id
            )
        } else if self.ledger_id.is_none() && p.prev != genesis_prev(&g.ledger_id, &self.name) {
            "the first record's prev is not the genesis value its own body names: the chain was spliced".to_owned()
        } else {
            return;
        };
        self.finding(p.line, Some(0), Reason::Spliced, detail);
    }

    /// Decides what a held line was, now that the next line (or the end) is known.
    fn resolve(&mut self, next: Option<&Parsed>) {
        let Some(Pending { record: n, before }) = self.pending.take() else {
            return;
        };
        let continues_without_n =
            next.is_some_and(|nx| nx.seq == before.seq && before.prev.accepts(&nx.prev));
        let duplicate = self.seen_hash(n.seq) == Some(&n.stored);
        if continues_without_n {
            // `n` is an intruder: the chain carries on as if it were absent.
            let (reason, detail) = if duplicate {
                (
                    Reason::Duplicated,
                    format!(
                        "repeats the record with seq {} that appeared earlier",
                        n.seq
                    ),
                )
            } else if n.seq > before.seq || next.is_some_and(|nx| nx.stored == n.prev) {
                self.early.insert(n.seq, n.stored);
                (
                    Reason::DeletedOrReordered,
                    format!(
                        "seq {} appears where seq {} belongs: records were reordered",
                        n.seq, before.seq
                    ),
                )
            } else {
                (
                    Reason::Spliced,
                    format!(
                        "record (seq {}) does not belong to this chain: its prev links to no record here; it was spliced in",
                        n.seq
                    ),
                )
            };
            self.finding(n.line, Some(n.seq), reason, detail);
            return;
        }
        match n.seq.cmp(&before.seq) {
            std::cmp::Ordering::Greater => {
                let missing = n.seq - before.seq;
                self.finding(n.line, Some(n.seq), Reason::DeletedOrReordered, format!(
                "expected seq {}, found seq {}: {missing} record(s) before this line were deleted or moved",
                before.seq, n.seq
            ));
            }
            std::cmp::Ordering::Less => {
                if duplicate {
                    self.finding(
                        n.line,
                        Some(n.seq),
                        Reason::Duplicated,
                        format!(
                            "repeats the record with seq {} that appeared earlier",
                            n.seq
                        ),
                    );
                } else {
                    self.finding(
                        n.line,
                        Some(n.seq),
                        Reason::DeletedOrReordered,
                        format!(
                            "seq {} comes after seq {}: records were reordered or deleted",
                            n.seq,
                            before.seq - 1
                        ),
                    );
                }
            }
            std::cmp::Ordering::Equal => {
                let links_to_n = next.is_some_and(|nx| nx.seq == n.seq + 1 && nx.prev == n.stored);
                match &self.last {
                    Some(last) if links_to_n && n.seq > 0 => {
                        if !self.flagged.contains(&last.line) {
                            let (line, seq) = (last.line, last.seq);
                            self.finding(line, Some(seq), Reason::Edited, format!(
                            "the record was rewritten and its hash recomputed: the next record (line {}) links to a different hash",
                            n.line
                        ));
                        }
                    }
                    _ => {
                        if n.seq == 0 {
                            self.finding(n.line, Some(0), Reason::Spliced, format!(
                            "the first record's prev is not the genesis value of ledger {} and segment {}: the chain was spliced in from elsewhere",
                            self.ledger_id.as_deref().unwrap_or("?"), self.name
                        ));
                        } else {
                            self.finding(n.line, Some(n.seq), Reason::Spliced, format!(
                            "prev does not link to the record before it (seq {}): this record was spliced in from another chain, or its predecessor rewritten",
                            n.seq - 1
                        ));
                        }
                    }
                }
            }
        }
        self.advance(n);
    }

    pub(super) fn into_report(self, from_offset: u64, bytes: u64) -> SegmentReport {
        let mut findings = self.findings;
        findings.sort_by_key(|f| f.line);
        SegmentReport {
            path: self.path,
            records: self.records,
            bytes,
            from_offset,
            head_seq: self.last.as_ref().map(|l| l.seq),
            head_hash: self.last.as_ref().map(|l| to_hex(&l.stored)),
            findings,
            started: self.started,
            receipts: self.receipts,
        }
    }
}
