//! Finding a JSON object in an agent's final message.

use serde_json::Value;

/// Parses `text` as JSON, or finds the JSON object an agent put in it:
/// the whole text; else the last markdown fenced block (```` ``` ```` or `~~~`,
/// any info string) that parses; else the last balanced top-level `{…}` object.
///
/// # Errors
/// The reason nothing was found: the parse error of the whole text.
pub fn extract_json(text: &str) -> Result<Value, String> {
    let trimmed = text.trim().trim_start_matches('\u{feff}');
    let whole_err = match serde_json::from_str::<Value>(trimmed) {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    for block in fenced_blocks(trimmed).iter().rev() {
        if let Ok(v @ Value::Object(_)) = serde_json::from_str::<Value>(block.trim()) {
            return Ok(v);
        }
    }
    if let Some(v) = last_object(trimmed) {
        return Ok(v);
    }
    if trimmed.is_empty() {
        return Err("empty text".to_owned());
    }
    Err(format!(
        "not JSON ({whole_err}) and no JSON object found in the text"
    ))
}

/// Contents of the markdown fenced code blocks, in order. An unclosed last
/// block runs to the end of the text.
fn fenced_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<(String, String)> = None; // (fence, body)
    for line in text.lines() {
        let t = line.trim_start();
        match current.as_mut() {
            None => {
                let fence: String = t.chars().take_while(|c| *c == '`' || *c == '~').collect();
                if fence.len() >= 3
                    && fence
                        .chars()
                        .all(|c| c == fence.chars().next().unwrap_or('`'))
                {
                    current = Some((fence, String::new()));
                }
            }
            Some((fence, body)) => {
                if t.starts_with(fence.as_str())
                    && t.trim_start_matches(['`', '~']).trim().is_empty()
                {
                    blocks.push(std::mem::take(body));
                    current = None;
                } else {
                    body.push_str(line);
                    body.push('\n');
                }
            }
        }
    }
    if let Some((_, body)) = current {
        blocks.push(body);
    }
    blocks
}

/// Most candidate objects [`last_object`] tries to parse.
const MAX_ATTEMPTS: usize = 64;

/// The last JSON object in free text. One pass matches braces (ignoring those
/// inside JSON strings) and records every balanced `{…}` span; spans are then
/// tried by where they end, last first, so an unclosed `{` in the prose before
/// the object does not hide it. Only spans that can start an object (`{"` or
/// `{}` after optional whitespace) are parsed, at most [`MAX_ATTEMPTS`]: linear
/// work per attempt, whatever the text.
fn last_object(text: &str) -> Option<Value> {
    let mut stack: Vec<usize> = Vec::new();
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let (mut in_str, mut escaped) = (false, false);
    for (i, b) in text.bytes().enumerate() {
        if in_str {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_str = false;
            }
            continue;
        }
        match b {
            b'"' if !stack.is_empty() => in_str = true,
            b'{' => stack.push(i),
            b'}' => {
                if let Some(start) = stack.pop() {
                    spans.push((start, i + 1));
                }
            }
            _ => {}
        }
    }
    let mut attempts = 0;
    for &(start, end) in spans.iter().rev() {
        let next = text[start + 1..end].trim_start().chars().next();
        if !matches!(next, Some('"' | '}')) {
            continue;
        }
        attempts += 1;
        if attempts > MAX_ATTEMPTS {
            break;
        }
        if let Ok(v @ Value::Object(_)) = serde_json::from_str::<Value>(&text[start..end]) {
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn whole_text_fences_and_last_object() {
        assert_eq!(extract_json(" {\"a\":1}\n").unwrap(), json!({"a":1}));
        let fenced = "Done.\n```json\n{\"a\": 1}\n```\nand finally\n~~~\n{\"a\": 2}\n~~~\n";
        assert_eq!(extract_json(fenced).unwrap(), json!({"a":2}));
        let prose =
            "I wrote {not json} then {\"x\": {\"y\": [1, {\"z\": 2}]}} and {\"last\": true}.";
        assert_eq!(extract_json(prose).unwrap(), json!({"last": true}));
        let trailing = "{\"x\": {\"y\": 1}} then {not json} and an unclosed { brace";
        assert_eq!(extract_json(trailing).unwrap(), json!({"x": {"y": 1}}));
        let braces_in_strings = "report: {\"summary\": \"uses } and { in text\", \"n\": 1}";
        assert_eq!(extract_json(braces_in_strings).unwrap()["n"], 1);
        let nested = "result: {\"outer\": {\"inner\": 1}}";
        assert_eq!(
            extract_json(nested).unwrap(),
            json!({"outer": {"inner": 1}})
        );
        let unclosed = "```json\n{\"a\": 3}\n";
        assert_eq!(extract_json(unclosed).unwrap(), json!({"a":3}));
        assert!(
            extract_json("no json here")
                .unwrap_err()
                .contains("not JSON")
        );
        assert!(extract_json("").is_err());
        assert!(extract_json("{\"a\": ").is_err());
    }

    #[test]
    fn hostile_text_stays_fast() {
        let t = std::time::Instant::now();
        let mut text = "{\"k\": {\"x\": 1, ".repeat(20_000);
        text.push_str("and finally {\"ok\": true}");
        assert_eq!(extract_json(&text).unwrap(), json!({"ok": true}));
        let unclosed = format!("{{\"a\": \"{}", "{\"b\": 1, ".repeat(20_000));
        let _ = extract_json(&unclosed);
        assert!(
            t.elapsed() < std::time::Duration::from_secs(3),
            "{:?}",
            t.elapsed()
        );
    }
}
