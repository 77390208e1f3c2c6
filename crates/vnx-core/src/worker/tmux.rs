//! The claude tmux lane's side files: the `--settings` file with the `Stop`
//! hook that writes the marker, and the session transcript that replaces
//! stdout as the event stream.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::{Instant, sleep};
use vnx_agents::{ProcessEnd, StreamParser};

use super::WorkerError;

/// `'text'` for `sh`, with embedded single quotes escaped.
fn sh_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Writes `path`: claude settings whose `Stop` hook creates `marker`, merged
/// into the request's own settings (`existing`: JSON text or a path to a JSON
/// file) so a caller's hooks are kept.
///
/// # Errors
/// [`WorkerError::Io`] when the caller's settings cannot be read or are not a
/// JSON object, or the file cannot be written.
pub(crate) fn write_settings(
    path: &Path,
    marker: &Path,
    existing: Option<&str>,
) -> Result<(), WorkerError> {
    let mut settings = match existing {
        None => json!({}),
        Some(text) => {
            let text = if text.trim_start().starts_with('{') {
                text.to_owned()
            } else {
                std::fs::read_to_string(text).map_err(WorkerError::io(
                    "reading the request's claude settings",
                    text,
                ))?
            };
            serde_json::from_str::<Value>(&text).map_err(|e| WorkerError::Io {
                context: "parsing the request's claude settings",
                path: PathBuf::from(
                    if existing.is_some_and(|t| t.trim_start().starts_with('{')) {
                        "<settings JSON>"
                    } else {
                        text.as_str()
                    },
                ),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            })?
        }
    };
    let hook = json!({"hooks": [{"type": "command",
        "command": format!("touch {}", sh_quote(&marker.display().to_string()))}]});
    let Some(obj) = settings.as_object_mut() else {
        return Err(WorkerError::Io {
            context: "claude settings must be a JSON object:",
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, "not an object"),
        });
    };
    let hooks = obj.entry("hooks").or_insert_with(|| json!({}));
    if !hooks.is_object() {
        *hooks = json!({});
    }
    if let Some(hooks) = hooks.as_object_mut() {
        let stop = hooks.entry("Stop").or_insert_with(|| json!([]));
        if !stop.is_array() {
            *stop = json!([]);
        }
        if let Some(stop) = stop.as_array_mut() {
            stop.push(hook);
        }
    }
    std::fs::write(path, settings.to_string()).map_err(WorkerError::io(
        "writing the tmux lane's claude settings",
        path,
    ))
}

/// Where the session transcript is: [`vnx_agents::claude_transcript_path`]
/// for the resolved `cwd` (then the cwd as given), falling back to any
/// project directory under `$HOME/.claude/projects` holding `<session>.jsonl`
/// (in case a future CLI names project directories differently).
pub(crate) fn find_transcript(home: &Path, cwd: &Path, session: &str) -> Option<PathBuf> {
    let resolved = cwd.canonicalize().unwrap_or_else(|_| cwd.to_path_buf());
    for dir in [resolved.as_path(), cwd] {
        let path = vnx_agents::claude_transcript_path(home, dir, session);
        if path.is_file() {
            return Some(path);
        }
    }
    let file = format!("{session}.jsonl");
    std::fs::read_dir(home.join(".claude/projects"))
        .ok()?
        .filter_map(Result::ok)
        .map(|entry| entry.path().join(&file))
        .find(|p| p.is_file())
}

/// Largest transcript read, bytes; beyond it the tail is ignored.
const MAX_TRANSCRIPT_BYTES: u64 = 512 * 1024 * 1024;

/// Reads the transcript into `parser`. The `Stop` hook can fire before the
/// turn's last lines are appended, so the file is re-read every 200 ms until
/// the parser has a final event (or a successful end of turn), for at most
/// `wait`. Returns the bytes finally parsed (to be saved as the event log).
pub(crate) async fn read_transcript(
    path: &Path,
    make_parser: &dyn Fn() -> Box<dyn StreamParser + Send>,
    end: &ProcessEnd,
    wait: Duration,
) -> Result<(Box<dyn StreamParser + Send>, Vec<u8>), WorkerError> {
    let until = Instant::now() + wait;
    loop {
        let bytes = read_bounded(path).await.map_err(WorkerError::io(
            "reading the claude session transcript",
            path,
        ))?;
        let mut parser = make_parser();
        for line in bytes.split(|b| *b == b'\n') {
            parser.feed_line(line);
        }
        let done = parser.saw_final() || parser.finish(end).class.is_success();
        if done || Instant::now() >= until {
            return Ok((parser, bytes));
        }
        sleep(Duration::from_millis(200)).await;
    }
}

async fn read_bounded(path: &Path) -> std::io::Result<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let file = tokio::fs::File::open(path).await?;
    let mut out = Vec::new();
    file.take(MAX_TRANSCRIPT_BYTES)
        .read_to_end(&mut out)
        .await?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_merge_keeps_caller_hooks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        let marker = dir.path().join("it's done");
        let existing =
            r#"{"model":"x","hooks":{"Stop":[{"hooks":[{"type":"command","command":"true"}]}]}}"#;
        write_settings(&path, &marker, Some(existing)).unwrap();
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(v["model"], "x");
        let stop = v["hooks"]["Stop"].as_array().unwrap();
        assert_eq!(stop.len(), 2);
        let cmd = stop[1]["hooks"][0]["command"].as_str().unwrap();
        assert!(
            cmd.starts_with("touch '") && cmd.contains(r"it'\''s done"),
            "{cmd}"
        );
    }

    #[test]
    fn finds_the_transcript_by_rule_or_by_scan() {
        let home = tempfile::tempdir().unwrap();
        let cwd = home.path().join("my_proj.v2");
        std::fs::create_dir_all(&cwd).unwrap();
        assert_eq!(find_transcript(home.path(), &cwd, "s1"), None);
        let by_rule =
            vnx_agents::claude_transcript_path(home.path(), &cwd.canonicalize().unwrap(), "s1");
        std::fs::create_dir_all(by_rule.parent().unwrap()).unwrap();
        std::fs::write(&by_rule, "{}\n").unwrap();
        assert_eq!(find_transcript(home.path(), &cwd, "s1"), Some(by_rule));
        let odd = home.path().join(".claude/projects/renamed/s2.jsonl");
        std::fs::create_dir_all(odd.parent().unwrap()).unwrap();
        std::fs::write(&odd, "{}\n").unwrap();
        assert_eq!(find_transcript(home.path(), &cwd, "s2"), Some(odd));
    }
}
