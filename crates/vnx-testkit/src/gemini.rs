//! Gemini API (`POST /v1beta/models/{model}:streamGenerateContent?alt=sse`, and the
//! non-streaming `:generateContent`), as Gemini CLI 0.61.0 calls it with an API key.

use serde_json::{Value, json};

use crate::script::{Reply, Script};
use crate::sse::{self, BROKEN_DATA, data_only};

/// Whether the last `user` turn carries a `functionResponse` part (the CLI ran a tool).
pub(crate) fn carries_tool_result(body: &Value) -> bool {
    body["contents"]
        .as_array()
        .and_then(|c| c.iter().rev().find(|c| c["role"] == "user"))
        .and_then(|c| c["parts"].as_array())
        .is_some_and(|p| p.iter().any(|p| p.get("functionResponse").is_some()))
}

fn usage(input_bytes: usize, out_bytes: usize) -> Value {
    let input = sse::tokens(input_bytes);
    let output = sse::tokens(out_bytes);
    json!({"promptTokenCount": input, "candidatesTokenCount": output, "totalTokenCount": input + output})
}

fn chunk(model: &str, parts: &Value, finish: Option<&str>, usage: Option<Value>) -> Value {
    let mut candidate = json!({"content": {"role": "model", "parts": parts}, "index": 0});
    if let Some(finish) = finish {
        candidate["finishReason"] = json!(finish);
    }
    let mut out = json!({"candidates": [candidate], "modelVersion": model,
                         "responseId": sse::id("mock_")});
    if let Some(usage) = usage {
        out["usageMetadata"] = usage;
    }
    out
}

/// The response chunks (JSON objects) for a reply. `model` comes from the request path.
fn chunks(
    kind: &Reply,
    script: &Script,
    body: &Value,
    model: &str,
    input_bytes: usize,
) -> Vec<Value> {
    let mut out = Vec::new();
    if *kind == Reply::WriteFile && !carries_tool_result(body) {
        for text in sse::chunks(&script.preamble)
            .into_iter()
            .filter(|t| !t.is_empty())
        {
            out.push(chunk(model, &json!([{"text": text}]), None, None));
        }
        let call = json!([{"functionCall": {"name": "write_file",
            "args": {"file_path": script.file_path, "content": script.file_content}}}]);
        let out_bytes = call.to_string().len() + script.preamble.len();
        out.push(chunk(
            model,
            &call,
            Some("STOP"),
            Some(usage(input_bytes, out_bytes)),
        ));
    } else {
        let texts = sse::chunks(&script.text);
        let last = texts.len() - 1;
        for (i, text) in texts.into_iter().enumerate() {
            let end = i == last;
            out.push(chunk(
                model,
                &json!([{"text": text}]),
                end.then_some("STOP"),
                end.then(|| usage(input_bytes, script.text.len())),
            ));
        }
    }
    out
}

/// SSE frames (`data:` lines only) for `:streamGenerateContent?alt=sse`.
pub(crate) fn stream(
    kind: &Reply,
    script: &Script,
    body: &Value,
    model: &str,
    input_bytes: usize,
) -> Vec<String> {
    if *kind == Reply::Malformed {
        let first = chunk(model, &json!([{"text": "Hello "}]), None, None);
        return vec![data_only(&first), BROKEN_DATA.to_owned()];
    }
    chunks(kind, script, body, model, input_bytes)
        .iter()
        .map(data_only)
        .collect()
}

/// JSON body for a non-streaming `:generateContent` side call (model router, next-speaker
/// check, ...). When the request asks for JSON with a schema (`responseJsonSchema` or
/// `responseSchema`), the text is a minimal instance of that schema, e.g.
/// `{"complexity_reasoning":"mock","complexity_score":1}` for 0.61.0's model router; JSON
/// without a schema gets `{}`; anything else gets the script's text.
pub(crate) fn side_answer(
    body: &Value,
    model: &str,
    script: &Script,
    input_bytes: usize,
) -> String {
    let config = &body["generationConfig"];
    let schema = config
        .get("responseJsonSchema")
        .or_else(|| config.get("responseSchema"));
    let text = match schema {
        Some(schema) => minimal_instance(schema, 0).to_string(),
        None if config["responseMimeType"] == "application/json" => "{}".to_owned(),
        None => script.text.clone(),
    };
    chunk(
        model,
        &json!([{"text": text}]),
        Some("STOP"),
        Some(usage(input_bytes, text.len())),
    )
    .to_string()
}

/// The smallest value that satisfies a (JSON Schema or OpenAPI-style) schema: required object
/// properties, the first `enum` value, `"mock"`, `1`, `false`, `[]`. Depth is capped at 16.
fn minimal_instance(schema: &Value, depth: usize) -> Value {
    if depth > 16 {
        return Value::Null;
    }
    if let Some(first) = schema["enum"].as_array().and_then(|e| e.first()) {
        return first.clone();
    }
    let ty = match &schema["type"] {
        Value::String(t) => t.to_ascii_lowercase(),
        Value::Array(ts) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null")
            .to_ascii_lowercase(),
        _ if schema.get("properties").is_some() => "object".to_owned(),
        _ => String::new(),
    };
    match ty.as_str() {
        "object" => {
            let mut out = serde_json::Map::new();
            for name in schema["required"].as_array().into_iter().flatten() {
                if let Some(name) = name.as_str() {
                    let sub = &schema["properties"][name];
                    out.insert(name.to_owned(), minimal_instance(sub, depth + 1));
                }
            }
            Value::Object(out)
        }
        "string" => json!("mock"),
        "number" | "integer" => json!(schema["minimum"].as_f64().map_or(1, |m| m.ceil() as i64)),
        "boolean" => json!(false),
        "array" => json!([]),
        _ => Value::Null,
    }
}

/// The API's error body for an HTTP `status`.
pub(crate) fn error_body(status: u16) -> Value {
    let kind = match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        _ => "INTERNAL",
    };
    json!({"error": {"code": status, "message": format!("mock error {status}"), "status": kind}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_responses_count_as_tool_results() {
        let body = json!({"contents": [
            {"role": "user", "parts": [{"text": "hi"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "write_file", "args": {}}}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "write_file", "response": {}}}]},
        ]});
        assert!(carries_tool_result(&body));
        assert!(!carries_tool_result(&json!({})));
    }

    #[test]
    fn side_calls_get_a_minimal_instance_of_their_schema() {
        let body = json!({"generationConfig": {"responseMimeType": "application/json",
            "responseJsonSchema": {"type": "object",
                "required": ["complexity_reasoning", "complexity_score", "kind"],
                "properties": {"complexity_reasoning": {"type": "string"},
                               "complexity_score": {"type": "integer", "minimum": 1},
                               "kind": {"type": "STRING", "enum": ["flash", "pro"]},
                               "optional": {"type": "string"}}}}});
        let out: Value =
            serde_json::from_str(&side_answer(&body, "m", &Script::default(), 10)).unwrap();
        let text = out["candidates"][0]["content"]["parts"][0]["text"]
            .as_str()
            .unwrap();
        let value: Value = serde_json::from_str(text).unwrap();
        assert_eq!(
            value,
            json!({"complexity_reasoning": "mock", "complexity_score": 1, "kind": "flash"})
        );
    }

    #[test]
    fn text_stream_ends_with_stop_and_usage() {
        let frames = stream(&Reply::Text, &Script::text("a b"), &json!({}), "m", 40);
        assert_eq!(frames.len(), 2);
        assert!(frames[1].contains("\"finishReason\":\"STOP\""));
        assert!(frames[1].contains("usageMetadata"));
    }
}
