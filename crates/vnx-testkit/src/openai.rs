//! OpenAI Responses API (`POST /v1/responses`, SSE), as Codex 0.169.0 calls it through a
//! custom `model_providers` entry with `wire_api = "responses"`.

use serde_json::{Value, json};

use crate::script::{Reply, Script};
use crate::sse::{self, BROKEN_DATA, named};

/// Whether an `*_output` input item (a tool result) follows the last user message.
pub(crate) fn carries_tool_result(body: &Value) -> bool {
    let Some(items) = body["input"].as_array() else {
        return false;
    };
    let last_user = items.iter().rposition(|i| i["role"] == "user");
    let last_output = items.iter().rposition(|i| {
        i["type"]
            .as_str()
            .is_some_and(|t| t.ends_with("_call_output"))
    });
    match (last_user, last_output) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(u), Some(o)) => o > u,
    }
}

/// The `apply_patch` body that adds `path` with `content`. Each content line becomes a `+`
/// line; apply_patch ends every line with `\n`, so content without a final newline gains one.
pub(crate) fn add_file_patch(path: &str, content: &str) -> String {
    let mut patch = format!("*** Begin Patch\n*** Add File: {path}\n");
    for line in content.lines() {
        patch.push('+');
        patch.push_str(line);
        patch.push('\n');
    }
    patch.push_str("*** End Patch\n");
    patch
}

/// The tool-call output item: an `apply_patch` call adding the file.
///
/// Codex 0.169.0 offers no top-level tools: everything sits in the `additional_tools` input
/// item under a `functions` namespace, behind a JavaScript `exec` "code mode" tool, with
/// `apply_patch` among the nested tools. A direct freeform `custom_tool_call` named
/// `apply_patch` is still accepted and gives a `file_change` item in `codex exec --json`,
/// while calls to undeclared tools such as `shell` fail with "unsupported call". Should a
/// request offer `apply_patch` as a JSON `function` tool, the call takes that shape instead.
fn tool_call_item(script: &Script, body: &Value) -> Value {
    let call_id = sse::id("call_mock_");
    let patch = add_file_patch(&script.file_path, &script.file_content);
    let function_tool = body["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|t| t["name"] == "apply_patch" && t["type"] == "function");
    if function_tool {
        json!({"type": "function_call", "id": sse::id("fc_mock_"), "status": "completed",
               "call_id": call_id, "name": "apply_patch",
               "arguments": json!({"input": patch}).to_string()})
    } else {
        json!({"type": "custom_tool_call", "id": sse::id("ctc_mock_"), "status": "completed",
               "call_id": call_id, "name": "apply_patch", "input": patch})
    }
}

fn message_item(id: &str, text: &str, status: &str) -> Value {
    let content = if status == "completed" {
        json!([{"type": "output_text", "text": text, "annotations": []}])
    } else {
        json!([])
    };
    json!({"type": "message", "id": id, "role": "assistant", "status": status, "content": content})
}

/// SSE frames for one request: `response.created`, output items, `response.completed` with usage.
pub(crate) fn stream(
    kind: &Reply,
    script: &Script,
    body: &Value,
    input_bytes: usize,
) -> Vec<String> {
    let response_id = sse::id("resp_mock_");
    let model = body["model"].as_str().unwrap_or("gpt-mock").to_owned();
    let mut frames = vec![named(
        "response.created",
        &json!({"type": "response.created", "sequence_number": 0, "response": {
            "id": response_id, "object": "response", "status": "in_progress",
            "model": model, "output": []}}),
    )];
    if *kind == Reply::Malformed {
        frames.push(BROKEN_DATA.to_owned());
        return frames;
    }
    let mut items = Vec::new();
    let tool = *kind == Reply::WriteFile && !carries_tool_result(body);
    let text = if tool { &script.preamble } else { &script.text };
    if !text.is_empty() {
        items.push((
            message_item(&sse::id("msg_mock_"), text, "completed"),
            Some(text),
        ));
    }
    if tool {
        items.push((tool_call_item(script, body), None));
    }
    let mut out_bytes = 0;
    for (index, (item, text)) in items.iter().enumerate() {
        out_bytes += item.to_string().len();
        if let Some(text) = text {
            let id = item["id"].as_str().unwrap_or_default();
            frames.push(named(
                "response.output_item.added",
                &json!({"type": "response.output_item.added", "output_index": index,
                        "item": message_item(id, "", "in_progress")}),
            ));
            for chunk in sse::chunks(text) {
                frames.push(named(
                    "response.output_text.delta",
                    &json!({"type": "response.output_text.delta", "item_id": id,
                            "output_index": index, "content_index": 0, "delta": chunk}),
                ));
            }
        }
        frames.push(named(
            "response.output_item.done",
            &json!({"type": "response.output_item.done", "output_index": index, "item": item}),
        ));
    }
    let input_tokens = sse::tokens(input_bytes);
    let output_tokens = sse::tokens(out_bytes);
    frames.push(named(
        "response.completed",
        &json!({"type": "response.completed", "response": {
            "id": response_id, "object": "response", "status": "completed", "model": model,
            "output": items.iter().map(|(i, _)| i.clone()).collect::<Vec<_>>(),
            "usage": {"input_tokens": input_tokens,
                      "input_tokens_details": {"cached_tokens": 0},
                      "output_tokens": output_tokens,
                      "output_tokens_details": {"reasoning_tokens": 0},
                      "total_tokens": input_tokens + output_tokens}}}),
    ));
    frames
}

/// The API's error body for an HTTP `status`.
pub(crate) fn error_body(status: u16) -> Value {
    let (kind, code) = match status {
        429 => ("rate_limit_exceeded", "rate_limit_exceeded"),
        400 => ("invalid_request_error", "invalid_request"),
        401 => ("invalid_request_error", "invalid_api_key"),
        _ => ("server_error", "server_error"),
    };
    json!({"error": {"message": format!("mock error {status}"), "type": kind, "code": code, "param": null}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_results_after_the_last_user_message_count() {
        let before = json!({"input": [
            {"type": "message", "role": "user", "content": []},
        ]});
        let after = json!({"input": [
            {"type": "message", "role": "user", "content": []},
            {"type": "custom_tool_call", "call_id": "c"},
            {"type": "custom_tool_call_output", "call_id": "c", "output": "ok"},
        ]});
        assert!(!carries_tool_result(&before));
        assert!(carries_tool_result(&after));
    }

    #[test]
    fn add_file_patch_prefixes_every_line() {
        assert_eq!(
            add_file_patch("a.txt", "x\ny\n"),
            "*** Begin Patch\n*** Add File: a.txt\n+x\n+y\n*** End Patch\n"
        );
    }
}
