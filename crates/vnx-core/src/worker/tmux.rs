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

/// Claude Code's project directory name for `cwd`: every character that is
/// not an ASCII letter or digit becomes `-` (so `/` → `-`).
pub(crate) fn project_dir_name(cwd: &Path) -> String {
    cwd.display()
        .to_string()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// Where the session transcript is: `$HOME/.claude/projects/<cwd, / → ->/<session>.jsonl`,
/// falling back to any project directory holding `<session>.jsonl`.
pub(crate) fn find_transcript(home: &Path, cwd: &Path, session: &str) -> Option<PathBuf> {
    let projects = home.join(".claude/projects");
    let file = format!("{session}.jsonl");
    let cwd = cwd.canonicalize().unwrap_or_else(|_| cwd.to_path_buf());
    let candidates = [
        project_dir_name(&cwd),
        cwd.display().to_string().replace('/', "-"),
    ];
    for dir in candidates {
        let path = projects.join(dir).join(&file);
        if path.is_file() {
            return Some(path);
        }
    }
    std::fs::read_dir(&projects)
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
    fn project_dir_replaces_separators() {
        assert_eq!(project_dir_name(Path::new("/tmp/a.b/c")), "-tmp-a-b-c");
    }
}
