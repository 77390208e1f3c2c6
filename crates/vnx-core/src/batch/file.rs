//! The batch file of `vnx batch`: TOML (`[[dispatch]]` tables) or JSONL (one
//! object per line), parsed into [`BatchEntry`]s.
//!
//! ```toml
//! [defaults]                 # optional: applies to every entry that says nothing
//! skill = "implement"
//! provider = "claude"
//!
//! [[dispatch]]
//! id = "plan"
//! skill = "docs"
//! prompt = "Write PLAN.md for a --verbose flag"
//!
//! [[dispatch]]
//! id = "impl"
//! prompt = "Implement PLAN.md"
//! depends_on = ["plan"]
//! retry_with = { provider = "codex" }   # or "codex", or "claude:opus"
//! ```
//!
//! The same entries as JSONL: `{"id":"plan","skill":"docs","prompt":"…"}` per
//! line; blank lines and lines starting with `//` are skipped; a line
//! `{"defaults":{…}}` sets the defaults.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use vnx_types::Lane;

/// Largest batch file read, bytes.
pub const MAX_BATCH_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// What to run instead when an entry's dispatch does not pass.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RetryWith {
    /// Another provider (`None`: the entry's own).
    pub provider: Option<String>,
    /// Another model (`None`: that provider's default).
    pub model: Option<String>,
}

/// One dispatch of a batch, as written (defaults not yet applied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchEntry {
    /// Unique id within the batch (`depends_on` refers to it). Default:
    /// `#<n>`, the entry's 1-based position.
    pub id: String,
    /// Where it was written: `line 4` (JSONL) or `[[dispatch]] #2` (TOML).
    pub location: String,
    /// Skill name; `None`: the defaults', else `implement`.
    pub skill: Option<String>,
    /// The task.
    pub prompt: String,
    /// Provider name; `None`: the defaults', else `vnx.toml`'s.
    pub provider: Option<String>,
    /// Model; `None`: the defaults', else the provider's default.
    pub model: Option<String>,
    /// Lane; `None`: the defaults', else `vnx.toml`'s.
    pub lane: Option<Lane>,
    /// Ids of entries whose dispatches must pass first; their reports reach
    /// this entry's instruction.
    pub depends_on: Vec<String>,
    /// Run once more with another provider or model when the dispatch fails.
    pub retry_with: Option<RetryWith>,
    /// Worker timeout, e.g. `"10m"`.
    pub timeout: Option<String>,
    /// Maximum agent turns.
    pub max_turns: Option<u32>,
}

/// A parsed batch file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchFile {
    /// The file read.
    pub path: PathBuf,
    /// Its entries with the defaults applied, in file order.
    pub entries: Vec<BatchEntry>,
}

/// A batch file that cannot be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum BatchFileError {
    /// Reading failed.
    #[error("cannot read the batch file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is longer than [`MAX_BATCH_FILE_BYTES`] (only that much
    /// and one byte more is read).
    #[error("the batch file {} is longer than the limit of {MAX_BATCH_FILE_BYTES} bytes (16 MiB); split it into several batches", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// Not valid TOML / JSON, or a field of the wrong type.
    #[error("{}: {where_}: {message}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// `line 4`, `[[dispatch]] #2`…
        where_: String,
        /// What is wrong and what was expected.
        message: String,
    },
    /// No entries at all.
    #[error("{}: no dispatches; write [[dispatch]] tables (TOML) or one JSON object per line (JSONL), each with at least a `prompt`", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    skill: Option<String>,
    provider: Option<String>,
    model: Option<String>,
    lane: Option<Lane>,
    timeout: Option<String>,
    max_turns: Option<u32>,
    retry_with: Option<RawRetryWith>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum RawRetryWith {
    /// `"codex"` (a provider) or `"claude:opus"` (provider and model).
    Text(String),
    Table {
        provider: Option<String>,
        model: Option<String>,
    },
}

impl RawRetryWith {
    fn resolve(self) -> RetryWith {
        match self {
            RawRetryWith::Text(t) => match t.split_once(':') {
                Some((p, m)) => RetryWith {
                    provider: (!p.is_empty()).then(|| p.to_owned()),
                    model: (!m.is_empty()).then(|| m.to_owned()),
                },
                None => RetryWith {
                    provider: Some(t),
                    model: None,
                },
            },
            RawRetryWith::Table { provider, model } => RetryWith { provider, model },
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    id: Option<String>,
    skill: Option<String>,
    prompt: String,
    provider: Option<String>,
    model: Option<String>,
    lane: Option<Lane>,
    #[serde(default)]
    depends_on: Vec<String>,
    retry_with: Option<RawRetryWith>,
    timeout: Option<String>,
    max_turns: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToml {
    #[serde(default)]
    defaults: RawDefaults,
    #[serde(default)]
    dispatch: Vec<toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJsonDefaults {
    defaults: RawDefaults,
}

impl BatchFile {
    /// Reads `path`: JSONL when the name ends in `.jsonl`/`.ndjson` or the
    /// first non-blank character is `{`, TOML otherwise.
    ///
    /// # Errors
    /// [`BatchFileError`] naming the file and the line or entry.
    pub fn read(path: &Path) -> Result<BatchFile, BatchFileError> {
        let io = |source| BatchFileError::Io {
            path: path.to_path_buf(),
            source,
        };
        // At most the limit and one byte more, whatever the metadata says
        // (`/dev/zero`, a FIFO and /proc files have no size).
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_BATCH_FILE_BYTES + 1).read_to_end(&mut bytes))
            .map_err(io)?;
        if bytes.len() as u64 > MAX_BATCH_FILE_BYTES {
            return Err(BatchFileError::TooLarge {
                path: path.to_path_buf(),
            });
        }
        let text = String::from_utf8(bytes).map_err(|e| BatchFileError::Syntax {
            path: path.to_path_buf(),
            where_: format!("byte {}", e.utf8_error().valid_up_to()),
            message: "not UTF-8 text".to_owned(),
        })?;
        Self::parse(path, &text)
    }

    /// Parses batch file text; `path` names it in errors and picks the format.
    ///
    /// # Errors
    /// As [`BatchFile::read`].
    pub fn parse(path: &Path, text: &str) -> Result<BatchFile, BatchFileError> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        let jsonl = match ext.as_deref() {
            Some("jsonl" | "ndjson") => true,
            Some("toml") => false,
            _ => text.trim_start().starts_with('{'),
        };
        let entries = if jsonl {
            parse_jsonl(path, text)?
        } else {
            parse_toml(path, text)?
        };
        if entries.is_empty() {
            return Err(BatchFileError::Empty {
                path: path.to_path_buf(),
            });
        }
        Ok(BatchFile {
            path: path.to_path_buf(),
            entries,
        })
    }
}

fn syntax(path: &Path, where_: String, message: impl std::fmt::Display) -> BatchFileError {
    BatchFileError::Syntax {
        path: path.to_path_buf(),
        where_,
        message: message.to_string().trim().replace('\n', " "),
    }
}

fn parse_toml(path: &Path, text: &str) -> Result<Vec<BatchEntry>, BatchFileError> {
    let raw: RawToml = toml::from_str(text).map_err(|e| {
        let where_ = e.span().map_or_else(
            || "the file".to_owned(),
            |s| {
                let before = text.get(..s.start).unwrap_or(text);
                format!("line {}", before.matches('\n').count() + 1)
            },
        );
        syntax(path, where_, e.message())
    })?;
    let mut entries = Vec::with_capacity(raw.dispatch.len());
    for (i, value) in raw.dispatch.into_iter().enumerate() {
        let location = format!("[[dispatch]] #{}", i + 1);
        let entry: RawEntry = value
            .try_into()
            .map_err(|e: toml::de::Error| syntax(path, location.clone(), e.message()))?;
        entries.push(finish(entry, i, location, &raw.defaults));
    }
    Ok(entries)
}

fn parse_jsonl(path: &Path, text: &str) -> Result<Vec<BatchEntry>, BatchFileError> {
    let mut defaults = RawDefaults::default();
    let mut entries = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with("//") {
            continue;
        }
        let location = format!("line {}", n + 1);
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| syntax(path, location.clone(), e))?;
        if value.get("defaults").is_some() {
            defaults = serde_json::from_value::<RawJsonDefaults>(value)
                .map_err(|e| syntax(path, location.clone(), e))?
                .defaults;
            continue;
        }
        let entry: RawEntry =
            serde_json::from_value(value).map_err(|e| syntax(path, location.clone(), e))?;
        entries.push(finish(entry, entries.len(), location, &defaults));
    }
    Ok(entries)
}

fn finish(raw: RawEntry, index: usize, location: String, d: &RawDefaults) -> BatchEntry {
    BatchEntry {
        id: raw.id.unwrap_or_else(|| format!("#{}", index + 1)),
        location,
        skill: raw.skill.or_else(|| d.skill.clone()),
        prompt: raw.prompt,
        provider: raw.provider.or_else(|| d.provider.clone()),
        model: raw.model.or_else(|| d.model.clone()),
        lane: raw.lane.or(d.lane),
        depends_on: raw.depends_on,
        retry_with: raw
            .retry_with
            .or_else(|| d.retry_with.clone())
            .map(RawRetryWith::resolve),
        timeout: raw.timeout.or_else(|| d.timeout.clone()),
        max_turns: raw.max_turns.or(d.max_turns),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_with_defaults_and_retry_forms() {
        let f = BatchFile::parse(
            Path::new("b.toml"),
            r#"
[defaults]
provider = "claude"
skill = "implement"

[[dispatch]]
id = "plan"
skill = "docs"
prompt = "plan it"
retry_with = "codex"

[[dispatch]]
prompt = "do it"
depends_on = ["plan"]
retry_with = "claude:opus"

[[dispatch]]
id = "c"
prompt = "x"
provider = "gemini"
retry_with = { model = "gemini-pro" }
"#,
        )
        .unwrap();
        let e = &f.entries;
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].skill.as_deref(), Some("docs"));
        assert_eq!(e[1].skill.as_deref(), Some("implement"));
        assert_eq!(e[1].id, "#2");
        assert_eq!(e[1].provider.as_deref(), Some("claude"));
        assert_eq!(e[2].provider.as_deref(), Some("gemini"));
        assert_eq!(
            e[0].retry_with,
            Some(RetryWith {
                provider: Some("codex".into()),
                model: None
            })
        );
        assert_eq!(
            e[1].retry_with,
            Some(RetryWith {
                provider: Some("claude".into()),
                model: Some("opus".into())
            })
        );
        assert_eq!(
            e[2].retry_with.as_ref().unwrap().model.as_deref(),
            Some("gemini-pro")
        );
        assert_eq!(e[2].location, "[[dispatch]] #3");
    }

    #[test]
    fn jsonl_names_the_bad_line() {
        let text = "{\"defaults\":{\"skill\":\"review\"}}\n\n{\"id\":\"a\",\"prompt\":\"p\"}\n{\"id\":\"b\",\"prompt\":3}\n";
        let err = BatchFile::parse(Path::new("b.jsonl"), text).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("b.jsonl: line 4"), "{msg}");
        let good = text.replace("{\"id\":\"b\",\"prompt\":3}\n", "");
        let ok = BatchFile::parse(Path::new("b.jsonl"), &good).unwrap();
        assert_eq!(ok.entries.len(), 1);
        assert_eq!(ok.entries[0].skill.as_deref(), Some("review"));
    }

    #[test]
    fn unknown_field_and_missing_prompt_are_named() {
        let err = BatchFile::parse(
            Path::new("b.toml"),
            "[[dispatch]]\nid = \"a\"\nprompt = \"p\"\n\n[[dispatch]]\nid = \"b\"\npromt = \"typo\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("[[dispatch]] #2"), "{err}");
        assert!(err.contains("promt"), "{err}");
        let err = BatchFile::parse(Path::new("x"), "# nothing\n").unwrap_err();
        assert!(matches!(err, BatchFileError::Empty { .. }));
    }
}
