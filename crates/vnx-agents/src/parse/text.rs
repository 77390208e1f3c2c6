//! Parser for `command` providers that print plain text.
//!
//! Every line is agent text; the final text is the whole output. With no
//! final event to read, the class comes from the process end: exit 0 with
//! output → success, exit 0 with none → protocol, anything else → crashed.

use vnx_types::OutcomeClass;

use super::{Acc, StreamParser};
use crate::event::{AgentEvent, FinalInfo};
use crate::outcome::{EndCause, Exit, Outcome, ProcessEnd};
use crate::price::Cost;

/// Longest final text kept, bytes.
const MAX_TEXT_BYTES: usize = 1 << 20;

/// Parser for plain-text output.
#[derive(Debug, Clone, Default)]
pub struct TextParser {
    acc: Acc,
    text: String,
}

impl TextParser {
    /// A parser for one run.
    pub fn new() -> Self {
        TextParser::default()
    }
}

impl StreamParser for TextParser {
    fn feed_line(&mut self, line: &[u8]) -> Vec<AgentEvent> {
        let line = String::from_utf8_lossy(line);
        let line = line.trim_end_matches(['\n', '\r']);
        if self.text.len() < MAX_TEXT_BYTES {
            if !self.text.is_empty() {
                self.text.push('\n');
            }
            self.text.push_str(line);
        }
        let events = vec![AgentEvent::Text {
            text: line.to_owned(),
        }];
        self.acc.observe(&events);
        events
    }

    /// Plain text has no final event: always false.
    fn saw_final(&self) -> bool {
        false
    }

    fn finish(&mut self, end: &ProcessEnd) -> Outcome {
        let mut acc = self.acc.clone();
        let has_output = !self.text.trim().is_empty();
        if end.cause == EndCause::Exited && end.exit == Exit::Code(0) && has_output {
            acc.final_info = Some(FinalInfo {
                class: OutcomeClass::Success,
                status: "exit 0".to_owned(),
                http_status: None,
                error: None,
                stop_reason: None,
            });
        }
        if has_output {
            acc.final_text = Some(self.text.clone());
        }
        acc.outcome(end, Cost::UNKNOWN, None)
    }
}
