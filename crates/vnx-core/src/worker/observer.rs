//! The parser as `vnx-exec`'s [`StreamObserver`].

use std::sync::Arc;

use vnx_agents::{AgentEvent, StreamParser};
use vnx_exec::{Flow, LineRef, StreamObserver};

/// A callback for live progress: every normalized event, as it is parsed.
/// Called on the lane's task; it must return quickly.
pub type EventSink = Arc<dyn Fn(&AgentEvent) + Send + Sync>;

/// Feeds every stdout line to the parser and answers [`Flow::Finished`] once,
/// when the final event has been parsed (the lane then gives the CLI its
/// grace period and stops it).
pub(crate) struct ParserObserver<'a> {
    pub(crate) parser: &'a mut (dyn StreamParser + Send),
    pub(crate) sink: Option<EventSink>,
    finished: bool,
}

impl<'a> ParserObserver<'a> {
    pub(crate) fn new(parser: &'a mut (dyn StreamParser + Send), sink: Option<EventSink>) -> Self {
        ParserObserver {
            parser,
            sink,
            finished: false,
        }
    }

    /// Feeds one line; returns whether the final event has just been seen.
    pub(crate) fn feed(&mut self, line: &[u8]) -> bool {
        let events = self.parser.feed_line(line);
        if let Some(sink) = &self.sink {
            for event in &events {
                sink(event);
            }
        }
        if !self.finished && self.parser.saw_final() {
            self.finished = true;
            return true;
        }
        false
    }
}

impl StreamObserver for ParserObserver<'_> {
    fn on_line(&mut self, line: LineRef<'_>) -> Flow {
        match line {
            // Oversize lines are counted by the lane and reach the parser
            // through `ProcessEnd::oversize_lines`.
            LineRef::Oversize { .. } => Flow::Continue,
            LineRef::Line(bytes) => {
                if self.feed(bytes) {
                    Flow::Finished
                } else {
                    Flow::Continue
                }
            }
        }
    }
}
