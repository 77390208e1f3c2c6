//! The in-order linker: joins the scanned lines into a chain and classifies
//! every break, by the rules of FORMAT.md §8.3.

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
    /// No constraint: the first record of an unbound segment, or the first
    /// linkable line after one that could not be linked (a re-anchor).
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

/// What the next record must be: FORMAT.md's *expected*.
#[derive(Clone, Copy)]
struct Expect {
    seq: u64,
    prev: PrevRule,
}

/// A line that did not fit, held until the next line shows what it was.
struct Pending {
    record: Parsed,
    before: Expect,
}

/// Links parsed lines into a chain and classifies every break. A line that
/// does not fit is held until the next line shows whether it was an intruder
/// (the chain continues as if it were absent: duplicated, moved or spliced) or
/// part of the chain (records missing before it, or a predecessor rewritten).
pub(super) struct Linker {
    path: PathBuf,
    name: String,
    ledger_id: Option<String>,
    expect: Expect,
    /// The last line could not be linked: the next linkable line is accepted
    /// whatever its seq and prev.
    reanchor: bool,
    /// Stored hashes of accepted records by seq: the contiguous run from
    /// `seq_base` (the common case, a plain vector) and any other.
    seq_base: u64,
    run: Vec<Hash>,
    scattered: BTreeMap<u64, Hash>,
    pending: Option<Pending>,
    last: Option<Parsed>,
    /// Lines that already have a finding: a line gets at most one.
    flagged: BTreeSet<u64>,
    records: u64,
    findings: Vec<Finding>,
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
            expect: Expect { seq: 0, prev },
            reanchor: false,
            seq_base: 0,
            run: Vec::new(),
            scattered: BTreeMap::new(),
            pending: None,
            last: None,
            flagged: BTreeSet::new(),
            records: 0,
            findings: Vec::new(),
            next_line: 1,
            started: BTreeMap::new(),
            receipts: BTreeSet::new(),
            early: BTreeMap::new(),
        }
    }

    /// Starts after a checkpoint's verified head: expected is (head_seq + 1,
    /// head_hash), and line numbers assume the prefix is intact (one line per
    /// record, so record seq s is on line s + 1).
    pub(super) fn resume_after(&mut self, cp: &SegmentCheckpoint) {
        let Some(hash) = parse_hex_hash(cp.head_hash.as_bytes()) else {
            return;
        };
        self.expect = Expect {
            seq: cp.head_seq + 1,
            prev: PrevRule::Exact(hash),
        };
        self.seq_base = cp.head_seq + 1;
        self.next_line = cp.head_seq + 2;
    }

    /// Records a finding, unless its line (≥ 1) already has one, or a
    /// line-0 finding with the same reason exists.
    pub(super) fn finding(&mut self, line: u64, seq: Option<u64>, reason: Reason, detail: String) {
        if line == 0 {
            if self
                .findings
                .iter()
                .any(|f| f.line == 0 && f.reason == reason)
            {
                return;
            }
        } else if !self.flagged.insert(line) {
            return;
        }
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
        if let Some((reason, detail)) = r.problem {
            let seq = r.parsed.as_ref().map(|p| p.seq);
            self.finding(r.line, seq, reason, detail);
        }
        let Some(parsed) = r.parsed else {
            // Not linkable: the next linkable line re-anchors the chain.
            self.resolve(None);
            self.reanchor = true;
            return;
        };
        self.resolve(Some(&parsed));
        self.records += 1;
        let e = self.expect;
        if std::mem::take(&mut self.reanchor)
            || (parsed.seq == e.seq && e.prev.accepts(&parsed.prev))
            // The expected record already appeared earlier, out of order (and
            // was reported there); this one links to it, so the chain goes on.
            || (parsed.seq == e.seq + 1 && self.early.get(&e.seq) == Some(&parsed.prev))
        {
            self.advance(parsed);
        } else {
            self.pending = Some(Pending {
                record: parsed,
                before: e,
            });
        }
    }

    pub(super) fn finish(&mut self) {
        self.resolve(None);
    }

    fn accepted_hash(&self, seq: u64) -> Option<&Hash> {
        seq.checked_sub(self.seq_base)
            .and_then(|i| self.run.get(i as usize))
            .or_else(|| self.scattered.get(&seq))
    }

    /// Whether `p` links where a record with its seq belongs in this chain:
    /// to the genesis prev for seq 0, else to the stored hash of the accepted
    /// record with seq − 1.
    fn belongs_here(&self, p: &Parsed) -> bool {
        match p.seq.checked_sub(1) {
            None => self
                .ledger_id
                .as_deref()
                .is_some_and(|id| genesis_prev(id, &self.name) == p.prev),
            Some(before) => self.accepted_hash(before) == Some(&p.prev),
        }
    }

    fn advance(&mut self, p: Parsed) {
        if p.seq == 0 {
            self.check_genesis(&p);
        }
        let next_prev = if p.edited {
            PrevRule::Either(p.stored, p.computed)
        } else {
            PrevRule::Exact(p.stored)
        };
        self.expect = Expect {
            seq: p.seq + 1,
            prev: next_prev,
        };
        if p.seq.checked_sub(self.seq_base) == Some(self.run.len() as u64) {
            self.run.push(p.stored);
        } else if self.accepted_hash(p.seq).is_none() {
            self.scattered.insert(p.seq, p.stored);
        }
        match &p.info {
            BodyInfo::Started(id) => {
                self.started.entry(id.clone()).or_insert((p.line, p.seq));
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

    /// Decides what a held line was, now that the next linkable line (or
    /// `None`: an unlinkable line or the end of the file) is known.
    fn resolve(&mut self, next: Option<&Parsed>) {
        let Some(Pending { record: n, before }) = self.pending.take() else {
            return;
        };
        let continues_without_n =
            next.is_some_and(|nx| nx.seq == before.seq && before.prev.accepts(&nx.prev));
        let duplicate = self.accepted_hash(n.seq) == Some(&n.stored);
        let repeats = || {
            (
                Reason::Duplicated,
                format!(
                    "repeats the record with seq {} that appeared earlier",
                    n.seq
                ),
            )
        };
        if continues_without_n {
            // `n` is an intruder: the chain carries on as if it were absent.
            let (reason, detail) = if duplicate {
                repeats()
            } else if n.seq > before.seq {
                self.early.insert(n.seq, n.stored);
                (
                    Reason::DeletedOrReordered,
                    format!(
                        "seq {} appears where seq {} belongs: it was moved ahead of its place",
                        n.seq, before.seq
                    ),
                )
            } else if self.belongs_here(&n) {
                (
                    Reason::DeletedOrReordered,
                    format!(
                        "seq {} appears where seq {} belongs: it was moved behind its place",
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
                let (reason, detail) = if duplicate {
                    repeats()
                } else {
                    (
                        Reason::DeletedOrReordered,
                        format!(
                            "seq {} comes where seq {} belongs: records were reordered or deleted",
                            n.seq, before.seq
                        ),
                    )
                };
                self.finding(n.line, Some(n.seq), reason, detail);
            }
            // Right seq, wrong prev. An edited line's own finding already
            // says it changed (its prev may be what changed): nothing more.
            std::cmp::Ordering::Equal if n.edited => {}
            std::cmp::Ordering::Equal => {
                let links_to_n = next.is_some_and(|nx| nx.seq == n.seq + 1 && nx.prev == n.stored);
                match self.last.as_ref().map(|l| (l.line, l.seq)) {
                    Some((line, seq)) if links_to_n && n.seq > 0 => {
                        self.finding(line, Some(seq), Reason::Edited, format!(
                            "the record was rewritten and its hash recomputed: the next record (line {}) links to a different hash",
                            n.line
                        ));
                    }
                    _ if n.seq == 0 => {
                        self.finding(n.line, Some(0), Reason::Spliced, format!(
                            "the first record's prev is not the genesis value of ledger {} and segment {}: the chain was spliced in from elsewhere",
                            self.ledger_id.as_deref().unwrap_or("?"), self.name
                        ));
                    }
                    _ => {
                        self.finding(n.line, Some(n.seq), Reason::Spliced, format!(
                            "prev does not link to the record before it (seq {}): this record was spliced in from another chain, or rewritten with a new prev",
                            n.seq - 1
                        ));
                    }
                }
            }
        }
        self.advance(n);
    }

    pub(super) fn into_report(self, from_offset: u64, bytes: u64) -> SegmentReport {
        let mut findings = self.findings;
        findings.sort_by_key(|f| (f.line, f.reason));
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
