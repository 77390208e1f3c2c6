//! What the mock model says: a [`Script`] of [`Reply`] kinds plus the text and tool-call
//! payload they use. Plain data, no IO.

use std::collections::VecDeque;
use std::time::Duration;

/// One kind of answer to one model request (a `POST` to a generation endpoint).
///
/// The same kind is rendered in each API's own wire format: Anthropic Messages SSE,
/// OpenAI Responses SSE, or Gemini `streamGenerateContent` SSE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A streamed assistant message of [`Script::text`], stop reason "end of turn".
    Text,
    /// A tool call that writes [`Script::file_path`] with [`Script::file_content`]
    /// (Claude `Write`, Codex `apply_patch`, Gemini `write_file`), preceded by
    /// [`Script::preamble`] when it is not empty. When the request already carries a
    /// tool result (the CLI ran the tool and reports back), the reply is
    /// [`Reply::Text`] instead, so one `WriteFile` script drives a whole two-turn run.
    WriteFile,
    /// An HTTP error with the API's own JSON error body; `retry_after` (seconds) is
    /// sent as a `retry-after` header when set.
    Status {
        /// HTTP status code, e.g. 429 or 500. Codes outside 100..=999 are sent as 500.
        status: u16,
        /// Value of the `retry-after` header, in seconds.
        retry_after: Option<u64>,
    },
    /// A `200 text/event-stream` that starts like a good stream, then sends a `data:` line
    /// that is not JSON and ends without the terminating event.
    Malformed,
}

/// The scripted behaviour of a [`MockServer`](crate::MockServer).
///
/// Each model request takes the next reply from [`Script::queue`]; once the queue is
/// empty every request gets [`Script::reply`]. Requests the CLIs make that are not
/// generation requests (token counting, model lists, ...) never consume the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// Reply used once `queue` is exhausted.
    pub reply: Reply,
    /// Replies used first, one per model request, in order (e.g. the first K failing).
    pub queue: VecDeque<Reply>,
    /// Final assistant text of [`Reply::Text`] (and of [`Reply::WriteFile`] after the tool ran).
    /// Streamed in word-sized deltas, so it may be long, multi-line, JSON, ...
    pub text: String,
    /// Text said before the tool call of [`Reply::WriteFile`]; empty for none.
    pub preamble: String,
    /// Path the tool call writes. A relative path is resolved by each CLI against its
    /// working directory; for Claude Code (whose `Write` wants an absolute path) the mock
    /// joins it to the `Primary working directory` named in Claude's system prompt.
    pub file_path: String,
    /// Content the tool call writes, verbatim for Claude and Gemini. Codex's `apply_patch`
    /// ends every line with `\n`, so there content without a final newline gains one.
    pub file_content: String,
    /// Pause before each SSE event (the "slow" scenario); zero for none.
    pub event_delay: Duration,
}

impl Default for Script {
    fn default() -> Self {
        Self {
            reply: Reply::Text,
            queue: VecDeque::new(),
            text: "Hello from the vnx mock model.".to_owned(),
            preamble: String::new(),
            file_path: "hello.txt".to_owned(),
            file_content: "Hello, world!\n".to_owned(),
            event_delay: Duration::ZERO,
        }
    }
}

impl Script {
    /// Every model request answered with `text` ([`Reply::Text`]).
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            ..Self::default()
        }
    }

    /// Every model request answered with a tool call writing `path` with `content`,
    /// then (once the tool result comes back) the default final text.
    pub fn write_file(path: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            reply: Reply::WriteFile,
            preamble: "I'll create the file now.".to_owned(),
            text: "Done: I created the file.".to_owned(),
            file_path: path.into(),
            file_content: content.into(),
            ..Self::default()
        }
    }

    /// Every model request answered with HTTP `status` (e.g. 500).
    pub fn status(status: u16) -> Self {
        Self {
            reply: Reply::Status {
                status,
                retry_after: None,
            },
            ..Self::default()
        }
    }

    /// Every model request answered `429 Too Many Requests` with `retry-after: <secs>`.
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        Self {
            reply: Reply::Status {
                status: 429,
                retry_after: Some(retry_after_secs),
            },
            ..Self::default()
        }
    }

    /// Every model request answered with a broken stream ([`Reply::Malformed`]).
    pub fn malformed() -> Self {
        Self {
            reply: Reply::Malformed,
            ..Self::default()
        }
    }

    /// Sets the final text.
    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.text = text.into();
        self
    }

    /// Sets the text said before a tool call.
    pub fn with_preamble(mut self, preamble: impl Into<String>) -> Self {
        self.preamble = preamble.into();
        self
    }

    /// Pauses `delay` before each SSE event (the "slow" scenario).
    pub fn with_event_delay(mut self, delay: Duration) -> Self {
        self.event_delay = delay;
        self
    }

    /// Makes the first `k` model requests fail with HTTP `status`, before the script's
    /// own replies (prepended to the queue).
    pub fn failing_first(mut self, k: usize, status: u16) -> Self {
        for _ in 0..k {
            self.queue.push_front(Reply::Status {
                status,
                retry_after: None,
            });
        }
        self
    }

    /// Appends one reply to the queue.
    pub fn then(mut self, reply: Reply) -> Self {
        self.queue.push_back(reply);
        self
    }

    /// Takes the reply for the next model request.
    pub(crate) fn next_reply(&mut self) -> Reply {
        self.queue.pop_front().unwrap_or_else(|| self.reply.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_is_consumed_before_the_default_reply() {
        let mut s = Script::text("ok").failing_first(2, 500);
        assert!(matches!(s.next_reply(), Reply::Status { status: 500, .. }));
        assert!(matches!(s.next_reply(), Reply::Status { status: 500, .. }));
        assert_eq!(s.next_reply(), Reply::Text);
        assert_eq!(s.next_reply(), Reply::Text);
    }
}
