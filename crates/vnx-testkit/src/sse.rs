//! Small helpers shared by the three wire formats: SSE frames, text chunking, token guesses.

use serde_json::Value;

/// One SSE frame with an `event:` name (Anthropic, OpenAI style).
pub(crate) fn named(event: &str, data: &Value) -> String {
    format!("event: {event}\ndata: {data}\n\n")
}

/// One SSE frame with only a `data:` line (Gemini `alt=sse` style).
pub(crate) fn data_only(data: &Value) -> String {
    format!("data: {data}\r\n\r\n")
}

/// The bad line every malformed stream ends with: a `data:` line that is not JSON.
pub(crate) const BROKEN_DATA: &str = "data: {\"type\": \"this stream was cut o\n\n";

/// Splits `text` into word-sized deltas (each keeps its trailing whitespace), never empty.
pub(crate) fn chunks(text: &str) -> Vec<String> {
    let parts: Vec<String> = text
        .split_inclusive(char::is_whitespace)
        .map(str::to_owned)
        .collect();
    if parts.is_empty() {
        vec![String::new()]
    } else {
        parts
    }
}

/// A rough token count (bytes / 4, at least 1), used for the `usage` the mock reports.
pub(crate) fn tokens(bytes: usize) -> u64 {
    (bytes / 4).max(1) as u64
}

/// A fresh id with `prefix`, e.g. `msg_mock_0123...`.
pub(crate) fn id(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_keep_all_text() {
        let text = "Hello from\nthe  mock.";
        assert_eq!(chunks(text).concat(), text);
        assert_eq!(chunks(""), vec![String::new()]);
    }
}
