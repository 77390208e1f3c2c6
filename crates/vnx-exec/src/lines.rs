//! Splitting a child's stdout into bounded lines, and the observer that
//! receives them.

/// One stdout line as the lane hands it to the observer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineRef<'a> {
    /// A line's bytes without its `\n` (and, in the pty lane, without the `\r`
    /// the terminal put before it). Passed through as received: not
    /// necessarily UTF-8, possibly empty. A final line without a newline is
    /// passed at EOF.
    Line(&'a [u8]),
    /// A line longer than [`crate::RunOptions::max_line_bytes`]. Its content
    /// was not kept (it is still in the event log); only its length is known.
    Oversize {
        /// Length of the line in bytes, without its newline.
        len: u64,
    },
}

/// What the observer wants the lane to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Flow {
    /// Keep going.
    Continue,
    /// The final event arrived (e.g. claude's `result` line). The lane gives
    /// the child [`crate::RunOptions::finish_grace`] to exit on its own, then
    /// kills its process group; the run ends as [`crate::EndedBy::Finished`].
    Finished,
    /// Stop the run now (e.g. the stream broke a protocol rule): the lane kills
    /// the process group and the run ends as [`crate::EndedBy::Aborted`].
    Abort,
}

/// The parser layer's side of a lane: told about every stdout line, in order.
/// Called from the lane's task; it should return quickly (no blocking I/O).
pub trait StreamObserver: Send {
    /// One line (or an oversize line's length). Lines after `Finished` are
    /// still delivered while the child drains; the return value is then only
    /// looked at for [`Flow::Abort`].
    fn on_line(&mut self, line: LineRef<'_>) -> Flow;
}

impl<F> StreamObserver for F
where
    F: FnMut(LineRef<'_>) -> Flow + Send,
{
    fn on_line(&mut self, line: LineRef<'_>) -> Flow {
        self(line)
    }
}

/// Splits a byte stream at `\n`, holding at most `max` bytes of a pending line.
#[derive(Debug)]
pub(crate) struct LineSplitter {
    buf: Vec<u8>,
    max: usize,
    /// Length so far of a line that already went over `max` (its bytes dropped).
    overflow: Option<u64>,
    strip_cr: bool,
    pub(crate) lines: u64,
    pub(crate) oversize: u64,
}

impl LineSplitter {
    pub(crate) fn new(max: usize, strip_cr: bool) -> Self {
        LineSplitter {
            buf: Vec::new(),
            max,
            overflow: None,
            strip_cr,
            lines: 0,
            oversize: 0,
        }
    }

    /// Feeds a chunk; returns the strongest [`Flow`] the observer answered.
    pub(crate) fn push(&mut self, mut chunk: &[u8], obs: &mut dyn StreamObserver) -> Flow {
        let mut flow = Flow::Continue;
        while !chunk.is_empty() {
            if let Some(pos) = chunk.iter().position(|&b| b == b'\n') {
                let seg = &chunk[..pos];
                chunk = &chunk[pos + 1..];
                flow = flow.max(self.end_line(seg, obs));
            } else {
                self.append(chunk);
                chunk = &[];
            }
        }
        flow
    }

    /// End of stream: a pending partial line is delivered.
    pub(crate) fn finish(&mut self, obs: &mut dyn StreamObserver) -> Flow {
        if self.buf.is_empty() && self.overflow.is_none() {
            return Flow::Continue;
        }
        self.end_line(&[], obs)
    }

    fn append(&mut self, seg: &[u8]) {
        if let Some(len) = self.overflow.as_mut() {
            *len += seg.len() as u64;
        } else if self.buf.len() + seg.len() > self.max {
            self.overflow = Some((self.buf.len() + seg.len()) as u64);
            self.buf = Vec::new(); // give the memory back, not just the length
        } else {
            self.buf.extend_from_slice(seg);
        }
    }

    fn end_line(&mut self, seg: &[u8], obs: &mut dyn StreamObserver) -> Flow {
        self.append(seg);
        if let Some(len) = self.overflow.take() {
            self.oversize += 1;
            return obs.on_line(LineRef::Oversize { len });
        }
        self.lines += 1;
        let mut line = self.buf.as_slice();
        if self.strip_cr {
            line = line.strip_suffix(b"\r").unwrap_or(line);
        }
        let flow = obs.on_line(LineRef::Line(line));
        self.buf.clear();
        flow
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Rec(Vec<Result<Vec<u8>, u64>>);
    impl StreamObserver for Rec {
        fn on_line(&mut self, line: LineRef<'_>) -> Flow {
            match line {
                LineRef::Line(l) => self.0.push(Ok(l.to_vec())),
                LineRef::Oversize { len } => self.0.push(Err(len)),
            }
            if line == LineRef::Line(b"fin") {
                Flow::Finished
            } else {
                Flow::Continue
            }
        }
    }

    #[test]
    fn splits_across_chunks_and_flushes_tail() {
        let mut s = LineSplitter::new(100, false);
        let mut rec = Rec::default();
        assert_eq!(s.push(b"ab", &mut rec), Flow::Continue);
        assert_eq!(s.push(b"c\n\nd\xff\r\nfi", &mut rec), Flow::Continue);
        assert_eq!(s.push(b"n\nlast", &mut rec), Flow::Finished);
        s.finish(&mut rec);
        let want: Vec<Result<Vec<u8>, u64>> = vec![
            Ok(b"abc".to_vec()),
            Ok(b"".to_vec()),
            Ok(b"d\xff\r".to_vec()),
            Ok(b"fin".to_vec()),
            Ok(b"last".to_vec()),
        ];
        assert_eq!(rec.0, want);
        assert_eq!((s.lines, s.oversize), (5, 0));
    }

    #[test]
    fn strips_cr_in_pty_mode() {
        let mut s = LineSplitter::new(100, true);
        let mut rec = Rec::default();
        s.push(b"a\r\nb\r\r\n", &mut rec);
        assert_eq!(rec.0, vec![Ok(b"a".to_vec()), Ok(b"b\r".to_vec())]);
    }

    #[test]
    fn oversize_lines_are_counted_not_kept() {
        let mut s = LineSplitter::new(4, false);
        let mut rec = Rec::default();
        s.push(b"1234\n12", &mut rec);
        s.push(b"345", &mut rec);
        assert!(s.buf.capacity() <= 4);
        s.push(b"67\nok\n123456789", &mut rec);
        s.finish(&mut rec);
        assert_eq!(
            rec.0,
            vec![Ok(b"1234".to_vec()), Err(7), Ok(b"ok".to_vec()), Err(9)]
        );
        assert_eq!((s.lines, s.oversize), (2, 2));
    }
}
