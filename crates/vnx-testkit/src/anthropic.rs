//! Anthropic Messages API (`POST /v1/messages?beta=true`), as Claude Code 2.1.330 calls it.

use serde_json::{Value, json};

use crate::script::{Reply, Script};
use crate::sse::{self, BROKEN_DATA, named};

/// Whether the last user message carries a `tool_result` block (Claude ran a tool).
pub(crate) fn carries_tool_result(body: &Value) -> bool {
    body["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_array())
        .is_some_and(|c| c.iter().any(|b| b["type"] == "tool_result"))
}

/// Text of a `system` or `content` value: a string, or the `text` of each block.
fn texts(value: &Value) -> Vec<&str> {
    match value {
        Value::String(s) => vec![s.as_str()],
        Value::Array(blocks) => blocks.iter().filter_map(|b| b["text"].as_str()).collect(),
        _ => Vec::new(),
    }
}

/// The working directory Claude Code names in its prompt (`Primary working directory: <cwd>`),
/// if any. Claude Code 2.1.330 puts that environment block in the first user message; older
/// versions had it in `system`: both are searched.
pub(crate) fn primary_working_directory(body: &Value) -> Option<String> {
    const KEY: &str = "Primary working directory: ";
    let messages = body["messages"].as_array().into_iter().flatten();
    texts(&body["system"])
        .into_iter()
        .chain(messages.flat_map(|m| texts(&m["content"])))
        .find_map(|text| {
            let start = text.find(KEY)? + KEY.len();
            let line = text[start..].lines().next()?.trim();
            (!line.is_empty()).then(|| line.to_owned())
        })
}

/// The content blocks of the reply, as final `content` JSON, with the stop reason.
fn blocks(kind: &Reply, script: &Script, body: &Value) -> (Vec<Value>, &'static str) {
    if *kind == Reply::WriteFile && !carries_tool_result(body) {
        let mut path = script.file_path.clone();
        if !std::path::Path::new(&path).is_absolute()
            && let Some(cwd) = primary_working_directory(body)
        {
            path = format!("{}/{}", cwd.trim_end_matches('/'), path);
        }
        let mut out = Vec::new();
        if !script.preamble.is_empty() {
            out.push(json!({"type": "text", "text": script.preamble}));
        }
        out.push(json!({
            "type": "tool_use",
            "id": sse::id("toolu_mock_"),
            "name": "Write",
            "input": {"file_path": path, "content": script.file_content},
        }));
        (out, "tool_use")
    } else {
        (
            vec![json!({"type": "text", "text": script.text})],
            "end_turn",
        )
    }
}

fn model(body: &Value) -> String {
    body["model"].as_str().unwrap_or("claude-mock").to_owned()
}

/// SSE frames for a streaming request.
pub(crate) fn stream(
    kind: &Reply,
    script: &Script,
    body: &Value,
    input_bytes: usize,
) -> Vec<String> {
    let (content, stop_reason) = blocks(kind, script, body);
    let input_tokens = sse::tokens(input_bytes);
    let mut frames = vec![named(
        "message_start",
        &json!({"type": "message_start", "message": {
            "id": sse::id("msg_mock_"), "type": "message", "role": "assistant",
            "model": model(body), "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": input_tokens, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": 0, "output_tokens": 1}}}),
    )];
    if *kind == Reply::Malformed {
        frames.push(BROKEN_DATA.to_owned());
        return frames;
    }
    let mut out_bytes = 0;
    for (index, block) in content.iter().enumerate() {
        if block["type"] == "text" {
            let text = block["text"].as_str().unwrap_or_default();
            out_bytes += text.len();
            frames.push(named(
                "content_block_start",
                &json!({"type": "content_block_start", "index": index,
                        "content_block": {"type": "text", "text": ""}}),
            ));
            for chunk in sse::chunks(text) {
                frames.push(named(
                    "content_block_delta",
                    &json!({"type": "content_block_delta", "index": index,
                            "delta": {"type": "text_delta", "text": chunk}}),
                ));
            }
        } else {
            let input = block["input"].to_string();
            out_bytes += input.len();
            frames.push(named(
                "content_block_start",
                &json!({"type": "content_block_start", "index": index,
                        "content_block": {"type": "tool_use", "id": block["id"],
                                          "name": block["name"], "input": {}}}),
            ));
            frames.push(named(
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": index,
                        "delta": {"type": "input_json_delta", "partial_json": input}}),
            ));
        }
        frames.push(named(
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": index}),
        ));
    }
    frames.push(named(
        "message_delta",
        &json!({"type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": null},
                "usage": {"output_tokens": sse::tokens(out_bytes)}}),
    ));
    frames.push(named("message_stop", &json!({"type": "message_stop"})));
    frames
}

/// JSON body for a non-streaming request (`"stream": false`, Claude's fallback after a
/// broken stream). A [`Reply::Malformed`] reply gives a truncated body.
pub(crate) fn message(kind: &Reply, script: &Script, body: &Value, input_bytes: usize) -> String {
    if *kind == Reply::Malformed {
        return "{\"id\": \"msg_mock_broken\", \"content\": [".to_owned();
    }
    let (content, stop_reason) = blocks(kind, script, body);
    let out_bytes: usize = content.iter().map(|b| b.to_string().len()).sum();
    json!({
        "id": sse::id("msg_mock_"), "type": "message", "role": "assistant",
        "model": model(body), "content": content, "stop_reason": stop_reason,
        "stop_sequence": null,
        "usage": {"input_tokens": sse::tokens(input_bytes), "cache_creation_input_tokens": 0,
                  "cache_read_input_tokens": 0, "output_tokens": sse::tokens(out_bytes)},
    })
    .to_string()
}

/// The API's error body for an HTTP `status`.
pub(crate) fn error_body(status: u16) -> Value {
    let kind = match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ => "api_error",
    };
    json!({"type": "error", "error": {"type": kind, "message": format!("mock error {status}")}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_working_directory_and_tool_results() {
        let body = json!({
            "system": [{"type": "text", "text": "x\n - Primary working directory: /tmp/p\n - y"}],
            "messages": [{"role": "user", "content": [{"type": "tool_result", "content": "ok"}]}],
        });
        assert_eq!(primary_working_directory(&body).as_deref(), Some("/tmp/p"));
        assert!(carries_tool_result(&body));
        assert!(!carries_tool_result(&json!({"messages": "nonsense"})));
    }

    #[test]
    fn tool_use_paths_are_made_absolute() {
        let body = json!({"system": "Primary working directory: /w\n", "messages": []});
        let frames = stream(
            &Reply::WriteFile,
            &Script::write_file("a.txt", "x"),
            &body,
            10,
        );
        let all = frames.concat();
        assert!(all.contains(r#"\"file_path\":\"/w/a.txt\""#), "{all}");
        assert!(all.contains(r#""stop_reason":"tool_use""#));
    }
}
