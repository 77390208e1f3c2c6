//! Skills: what a dispatch asks the agent to do and under which rules.
//!
//! A skill is a folder holding `SKILL.md`: YAML front matter between `---`
//! lines, then the Markdown body that becomes the first part of the
//! instruction.
//!
//! ```markdown
//! ---
//! name: review
//! description: Review the current branch and report findings without editing.
//! profile: read-only            # read-only | edit | full
//! allowed_tools: [Read, Grep, Glob, "Bash(git diff:*)"]
//! report_schema: report.schema.json   # relative to this folder; default: vnx's report schema
//! gates: [report-valid, no-secrets]   # or a table: { only: [...], skip: [...], diff_limit_lines: 300 }
//! gate_mode: enforce            # shadow | enforce; default: [run] gate_mode
//! editing: false                # default: true unless profile is read-only
//! requires_approval: false
//! ---
//! # Review
//! …
//! ```
//!
//! `license` and `metadata` are accepted (and ignored) so that skills written
//! for Claude Code's own skill format load too; `allowed-tools` is read as
//! `allowed_tools`.
//!
//! Lookup order ([`SkillCatalog`]): `<repo>/.vnx/skills/<name>/SKILL.md`, then
//! the user's `$XDG_CONFIG_HOME/vnx/skills/<name>/SKILL.md` (or
//! `~/.config/vnx/skills`), then the built-ins compiled into vnx (`implement`,
//! `review`, `test`, `docs`). The first found wins and shadows the others.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_saphyr::MessageFormatter;
use vnx_agents::PermissionProfile;

use crate::config::GateMode;
use crate::init::SKILLS_DIR;

/// File name of a skill inside its folder.
pub const SKILL_FILE: &str = "SKILL.md";

/// Largest `SKILL.md` read, bytes.
pub const MAX_SKILL_BYTES: u64 = 256 * 1024;

/// The built-in skills: (name, `SKILL.md` text), compiled into the binary.
pub const BUILTIN_SKILLS: [(&str, &str); 4] = [
    ("docs", include_str!("../skills/docs/SKILL.md")),
    ("implement", include_str!("../skills/implement/SKILL.md")),
    ("review", include_str!("../skills/review/SKILL.md")),
    ("test", include_str!("../skills/test/SKILL.md")),
];

/// Where a skill was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkillSource {
    /// `<repo>/.vnx/skills/`.
    Repo,
    /// The user's config directory (`~/.config/vnx/skills/`).
    User,
    /// Compiled into vnx.
    Builtin,
}

impl SkillSource {
    /// `repo`, `user` or `builtin`.
    pub fn as_str(self) -> &'static str {
        match self {
            SkillSource::Repo => "repo",
            SkillSource::User => "user",
            SkillSource::Builtin => "builtin",
        }
    }
}

impl fmt::Display for SkillSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A skill's gate selection from its front matter: `gates: [names]` is
/// `only`; the table form sets any of the fields.
///
/// Gate names are those vnx-govern records: the deterministic gates
/// (`worker-outcome`, `report-valid`, `non-empty-change`, `no-placeholders`,
/// `tests-have-assertions`, `diff-size`, `forbidden-paths`, `no-secrets`,
/// `budget`), `cross-review`, and `command:<name>` for a `[[gates.command]]`.
/// They are not checked here: the gate stage reports names it does not know.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct SkillGates {
    /// Run only these gates; `None`: all that apply.
    pub only: Option<Vec<String>>,
    /// Never run these gates.
    pub skip: Vec<String>,
    /// Replaces `[gates] diff_limit_lines` for this skill.
    pub diff_limit_lines: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GatesTable {
    #[serde(default)]
    only: Option<Vec<String>>,
    #[serde(default)]
    skip: Vec<String>,
    #[serde(default)]
    diff_limit_lines: Option<u64>,
}

impl<'de> Deserialize<'de> for SkillGates {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct GatesVisitor;
        impl<'de> Visitor<'de> for GatesVisitor {
            type Value = SkillGates;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(GATES_EXPECTED)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<SkillGates, A::Error> {
                let names = Vec::<String>::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
                Ok(SkillGates {
                    only: Some(names),
                    ..SkillGates::default()
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<SkillGates, A::Error> {
                let t = GatesTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(SkillGates {
                    only: t.only,
                    skip: t.skip,
                    diff_limit_lines: t.diff_limit_lines,
                })
            }
        }
        d.deserialize_any(GatesVisitor)
    }
}

/// The profile names of front matter: `read-only`, `edit`, `full`.
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
enum ProfileName {
    ReadOnly,
    Edit,
    Full,
}

fn profile_name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PermissionProfile>, D::Error> {
    Ok(Some(match ProfileName::deserialize(d)? {
        ProfileName::ReadOnly => PermissionProfile::ReadOnly,
        ProfileName::Edit => PermissionProfile::Edit,
        ProfileName::Full => PermissionProfile::Full,
    }))
}

/// The front matter as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FrontMatter {
    name: String,
    description: String,
    #[serde(default, deserialize_with = "profile_name")]
    profile: Option<PermissionProfile>,
    #[serde(default, alias = "allowed-tools")]
    allowed_tools: Vec<String>,
    #[serde(default)]
    report_schema: Option<PathBuf>,
    #[serde(default)]
    gates: Option<SkillGates>,
    #[serde(default)]
    gate_mode: Option<GateMode>,
    #[serde(default)]
    editing: Option<bool>,
    #[serde(default)]
    requires_approval: bool,
    // Claude Code skill fields, accepted for compatibility and ignored.
    #[serde(default)]
    #[allow(dead_code)]
    license: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    metadata: Option<BTreeMap<String, serde_json::Value>>,
}

const GATES_EXPECTED: &str = "a list of gate names such as [no-placeholders, \"command:tests\"], or a table with `only` (list), `skip` (list) and `diff_limit_lines` (integer)";

/// The fields front matter may have, and what each expects.
const FIELDS: [(&str, &str); 11] = [
    (
        "name",
        "a string equal to the skill's folder name (lowercase letters, digits, `-`, `_`)",
    ),
    (
        "description",
        "a one-line string saying what the skill does",
    ),
    ("profile", "one of read-only, edit, full"),
    (
        "allowed_tools",
        "a list of tool names in claude's syntax, e.g. [Read, Grep, \"Bash(git diff:*)\"]",
    ),
    (
        "report_schema",
        "a path to a JSON Schema file, relative to the skill's folder",
    ),
    ("gates", GATES_EXPECTED),
    ("gate_mode", "shadow or enforce"),
    ("editing", "true or false"),
    ("requires_approval", "true or false"),
    ("license", "a string"),
    ("metadata", "a mapping"),
];

fn expected_for(field: &str) -> Option<&'static str> {
    let field = if field == "allowed-tools" {
        "allowed_tools"
    } else {
        field
    };
    FIELDS.iter().find(|(f, _)| *f == field).map(|(_, e)| *e)
}

/// A skill, loaded and checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skill {
    /// Name: the folder name, equal to the front matter's `name`.
    pub name: String,
    /// One-line description.
    pub description: String,
    /// What the worker may do. Default `edit`.
    pub profile: PermissionProfile,
    /// Tools allowed without asking, in claude's syntax; empty: the profile's defaults.
    pub allowed_tools: Vec<String>,
    /// The report's JSON Schema file, resolved against the skill's folder;
    /// `None`: vnx's built-in report schema.
    pub report_schema: Option<PathBuf>,
    /// Gate selection.
    pub gates: SkillGates,
    /// Gate mode; `None`: `[run] gate_mode`.
    pub gate_mode: Option<GateMode>,
    /// Whether the skill is expected to change files (the `non-empty-change`
    /// gate). Default: true unless the profile is read-only.
    pub editing: bool,
    /// Whether a person must approve the dispatch before it starts.
    pub requires_approval: bool,
    /// The Markdown body after the front matter, trailing whitespace trimmed.
    pub body: String,
    /// Where it was found.
    pub source: SkillSource,
    /// Its `SKILL.md`; for built-ins `<builtin>/<name>/SKILL.md`.
    pub path: PathBuf,
}

impl Skill {
    /// The gate mode this skill runs under: its own `gate_mode`, else `[run] gate_mode`.
    pub fn effective_gate_mode(&self, run: &crate::config::RunConfig) -> GateMode {
        self.gate_mode.unwrap_or(run.gate_mode)
    }
}

/// One line of [`SkillCatalog::list`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkillEntry {
    /// Skill name.
    pub name: String,
    /// Where the skill that wins was found.
    pub source: SkillSource,
    /// Its `SKILL.md`.
    pub path: PathBuf,
    /// Its description; `None` when the skill does not load (see `error`).
    pub description: Option<String>,
    /// Why the skill does not load, if it does not.
    pub error: Option<String>,
    /// Lower-priority sources that have a skill of the same name, hidden by this one.
    pub shadows: Vec<SkillSource>,
}

/// A skill that cannot be found or loaded.
#[derive(Debug, thiserror::Error)]
pub enum SkillError {
    /// No skill of that name in any source.
    #[error("unknown skill `{name}`; known skills: {}. Add one as {SKILLS_DIR}/{name}/SKILL.md", known.join(", "))]
    Unknown {
        /// The requested name.
        name: String,
        /// Every name that would resolve, sorted.
        known: Vec<String>,
    },
    /// The name cannot be a skill folder name.
    #[error(
        "invalid skill name {name:?}: use lowercase letters, digits, `-` and `_`, starting with a letter or digit"
    )]
    InvalidName {
        /// The name given.
        name: String,
    },
    /// Reading the file or directory failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was attempted.
        action: &'static str,
        /// On which path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file's structure is wrong: no front matter, not UTF-8, too large, empty body.
    #[error("{}:{line}: {message}", path.display())]
    Malformed {
        /// The `SKILL.md`.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong and what to do.
        message: String,
    },
    /// A front matter field is missing, unknown or has the wrong value.
    #[error("{}:{line}: {}{message}{}", path.display(),
        field.as_deref().map_or_else(|| "front matter: ".to_owned(), |f| format!("front matter field `{f}`: ")),
        expected.map(|e| format!(" (expected {e})")).unwrap_or_default())]
    FrontMatter {
        /// The `SKILL.md`.
        path: PathBuf,
        /// 1-based line in the file.
        line: usize,
        /// The field, when known.
        field: Option<String>,
        /// What the YAML parser or vnx found wrong.
        message: String,
        /// What the field expects.
        expected: Option<&'static str>,
    },
}

/// Whether `name` is a valid skill (folder) name: `[a-z0-9][a-z0-9_-]*`, at most 64 chars.
pub fn is_valid_skill_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    name.len() <= 64
        && bytes
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// The user's skills directory from the environment's values: `$XDG_CONFIG_HOME/vnx/skills`
/// when that is set to an absolute path, else `$HOME/.config/vnx/skills`; `None` with neither.
pub fn user_skills_dir(xdg_config_home: Option<&Path>, home: Option<&Path>) -> Option<PathBuf> {
    match xdg_config_home {
        Some(xdg) if xdg.is_absolute() => Some(xdg.join("vnx").join("skills")),
        _ => home
            .filter(|h| !h.as_os_str().is_empty())
            .map(|h| h.join(".config").join("vnx").join("skills")),
    }
}

/// The places skills are looked up in, highest priority first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkillCatalog {
    /// `<repo>/.vnx/skills`, if there is a repository.
    pub repo_dir: Option<PathBuf>,
    /// The user's skills directory, if known.
    pub user_dir: Option<PathBuf>,
    /// Whether the built-ins are included (true except in tests of the other sources).
    pub builtins: bool,
}

impl SkillCatalog {
    /// A catalog over `<repo_root>/.vnx/skills`, `user_dir` and the built-ins.
    pub fn new(repo_root: Option<&Path>, user_dir: Option<PathBuf>) -> SkillCatalog {
        SkillCatalog {
            repo_dir: repo_root.map(|r| r.join(SKILLS_DIR)),
            user_dir,
            builtins: true,
        }
    }

    /// A catalog whose user directory comes from the process environment
    /// (`XDG_CONFIG_HOME`, `HOME`); for the CLI. Libraries and tests use [`SkillCatalog::new`].
    pub fn from_env(repo_root: Option<&Path>) -> SkillCatalog {
        let xdg = std::env::var_os("XDG_CONFIG_HOME").map(PathBuf::from);
        let home = std::env::var_os("HOME").map(PathBuf::from);
        SkillCatalog::new(repo_root, user_skills_dir(xdg.as_deref(), home.as_deref()))
    }

    fn dirs(&self) -> impl Iterator<Item = (SkillSource, &Path)> {
        [
            (SkillSource::Repo, self.repo_dir.as_deref()),
            (SkillSource::User, self.user_dir.as_deref()),
        ]
        .into_iter()
        .filter_map(|(s, d)| d.map(|d| (s, d)))
    }

    /// Where `name` is found, in priority order: (source, path of `SKILL.md`, text for built-ins).
    fn locations(&self, name: &str) -> Vec<(SkillSource, PathBuf, Option<&'static str>)> {
        let mut out = Vec::new();
        for (source, dir) in self.dirs() {
            let path = dir.join(name).join(SKILL_FILE);
            if path.is_file() {
                out.push((source, path, None));
            }
        }
        if let Some((_, text)) = BUILTIN_SKILLS
            .iter()
            .find(|(n, _)| self.builtins && *n == name)
        {
            out.push((SkillSource::Builtin, builtin_path(name), Some(*text)));
        }
        out
    }

    /// Every skill name any source has, sorted.
    ///
    /// # Errors
    /// I/O errors listing a skills directory that exists.
    pub fn names(&self) -> Result<Vec<String>, SkillError> {
        let mut names = std::collections::BTreeSet::new();
        for (_, dir) in self.dirs() {
            let entries = match std::fs::read_dir(dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => {
                    return Err(SkillError::Io {
                        action: "list",
                        path: dir.to_path_buf(),
                        source,
                    });
                }
            };
            for entry in entries {
                let entry = entry.map_err(|source| SkillError::Io {
                    action: "list",
                    path: dir.to_path_buf(),
                    source,
                })?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if is_valid_skill_name(&name) && entry.path().join(SKILL_FILE).is_file() {
                    names.insert(name);
                }
            }
        }
        if self.builtins {
            names.extend(BUILTIN_SKILLS.iter().map(|(n, _)| (*n).to_owned()));
        }
        Ok(names.into_iter().collect())
    }

    /// Every skill, sorted by name, with the source that wins and the ones it
    /// shadows. A skill that does not load is listed with its error.
    ///
    /// # Errors
    /// I/O errors listing a skills directory.
    pub fn list(&self) -> Result<Vec<SkillEntry>, SkillError> {
        let mut out = Vec::new();
        for name in self.names()? {
            let mut locations = self.locations(&name).into_iter();
            let Some((source, path, text)) = locations.next() else {
                continue;
            };
            let shadows = locations.map(|(s, _, _)| s).collect();
            let (description, error) = match load(&name, source, &path, text) {
                Ok(skill) => (Some(skill.description), None),
                Err(e) => (None, Some(e.to_string())),
            };
            out.push(SkillEntry {
                name,
                source,
                path,
                description,
                error,
                shadows,
            });
        }
        Ok(out)
    }

    /// Loads the skill `name` from the first source that has it.
    ///
    /// # Errors
    /// [`SkillError::Unknown`] (listing the known names) when no source has it,
    /// [`SkillError::InvalidName`], and the load errors: [`SkillError::Malformed`],
    /// [`SkillError::FrontMatter`] (file, line, field), [`SkillError::Io`].
    pub fn show(&self, name: &str) -> Result<Skill, SkillError> {
        if !is_valid_skill_name(name) {
            return Err(SkillError::InvalidName {
                name: name.to_owned(),
            });
        }
        match self.locations(name).into_iter().next() {
            Some((source, path, text)) => load(name, source, &path, text),
            None => Err(SkillError::Unknown {
                name: name.to_owned(),
                known: self.names()?,
            }),
        }
    }
}

fn builtin_path(name: &str) -> PathBuf {
    Path::new("<builtin>").join(name).join(SKILL_FILE)
}

/// Loads one skill: the built-in text, or the file at `path`.
fn load(
    name: &str,
    source: SkillSource,
    path: &Path,
    text: Option<&'static str>,
) -> Result<Skill, SkillError> {
    let owned;
    let text = if let Some(text) = text {
        text
    } else {
        owned = read_bounded(path)?;
        owned.as_str()
    };
    let mut skill = parse_skill(text, path, source)?;
    if skill.name != name {
        return Err(SkillError::FrontMatter {
            path: path.to_path_buf(),
            line: front_matter_line_of(text, "name").unwrap_or(2),
            field: Some("name".to_owned()),
            message: format!(
                "is {:?} but the folder is named {name:?}; they must match",
                skill.name
            ),
            expected: expected_for("name"),
        });
    }
    if let (Some(schema), Some(dir)) = (&skill.report_schema, path.parent())
        && source != SkillSource::Builtin
        && schema.is_relative()
    {
        skill.report_schema = Some(dir.join(schema));
    }
    Ok(skill)
}

fn read_bounded(path: &Path) -> Result<String, SkillError> {
    let io = |action| {
        move |source| SkillError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    };
    let file = std::fs::File::open(path).map_err(io("open"))?;
    let mut bytes = Vec::new();
    file.take(MAX_SKILL_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io("read"))?;
    if bytes.len() as u64 > MAX_SKILL_BYTES {
        return Err(SkillError::Malformed {
            path: path.to_path_buf(),
            line: 1,
            message: format!(
                "larger than {MAX_SKILL_BYTES} bytes; a skill's instructions should be far shorter"
            ),
        });
    }
    String::from_utf8(bytes).map_err(|e| {
        let valid = e
            .as_bytes()
            .get(..e.utf8_error().valid_up_to())
            .unwrap_or(&[]);
        SkillError::Malformed {
            path: path.to_path_buf(),
            line: valid.split(|b| *b == b'\n').count(),
            message: "not valid UTF-8; save the file as UTF-8".to_owned(),
        }
    })
}

/// Parses the text of a `SKILL.md`. `path` and `source` are recorded in the
/// skill and used in errors. The folder-name check and the resolution of a
/// relative `report_schema` happen in [`SkillCatalog::show`], not here.
///
/// # Errors
/// [`SkillError::Malformed`] when there is no front matter or no body,
/// [`SkillError::FrontMatter`] with the line and field for a bad field.
pub fn parse_skill(text: &str, path: &Path, source: SkillSource) -> Result<Skill, SkillError> {
    let malformed = |line: usize, message: &str| SkillError::Malformed {
        path: path.to_path_buf(),
        line,
        message: message.to_owned(),
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.split_inclusive('\n');
    if lines.next().map(str::trim_end) != Some("---") {
        return Err(malformed(
            1,
            "expected `---` on the first line, opening the YAML front matter (name, description, …)",
        ));
    }
    let yaml_start = text.find('\n').map_or(text.len(), |i| i + 1);
    let mut offset = yaml_start;
    let mut line_no = 1;
    let mut close = None;
    for line in lines {
        line_no += 1;
        let trimmed = line.trim_end();
        if trimmed == "---" || trimmed == "..." {
            close = Some((offset, offset + line.len(), line_no));
            break;
        }
        offset += line.len();
    }
    let Some((yaml_end, body_start, close_line)) = close else {
        return Err(malformed(
            1,
            "the front matter opened on line 1 is never closed: add a line `---` after the last field",
        ));
    };
    let yaml = text.get(yaml_start..yaml_end).unwrap_or("");
    let body = text
        .get(body_start..)
        .unwrap_or("")
        .trim_start_matches(['\n', '\r'])
        .trim_end();
    if yaml.trim().is_empty() {
        return Err(SkillError::FrontMatter {
            path: path.to_path_buf(),
            line: 2,
            field: None,
            message: "is empty".to_owned(),
            expected: Some("at least `name:` and `description:`"),
        });
    }
    let fm: FrontMatter = serde_saphyr::from_str_with_options(yaml, yaml_options())
        .map_err(|e| front_matter_error(&e, yaml, path))?;
    if !is_valid_skill_name(&fm.name) {
        return Err(SkillError::FrontMatter {
            path: path.to_path_buf(),
            line: front_matter_line_of(text, "name").unwrap_or(2),
            field: Some("name".to_owned()),
            message: format!("{:?} is not a valid skill name", fm.name),
            expected: expected_for("name"),
        });
    }
    if fm.description.trim().is_empty() {
        return Err(SkillError::FrontMatter {
            path: path.to_path_buf(),
            line: front_matter_line_of(text, "description").unwrap_or(2),
            field: Some("description".to_owned()),
            message: "is empty".to_owned(),
            expected: expected_for("description"),
        });
    }
    if body.is_empty() {
        return Err(malformed(
            close_line,
            "the skill has no body: write the agent's instructions after the closing `---`",
        ));
    }
    let profile = fm.profile.unwrap_or_default();
    Ok(Skill {
        name: fm.name,
        description: fm.description.trim().to_owned(),
        profile,
        allowed_tools: fm.allowed_tools,
        report_schema: fm.report_schema,
        gates: fm.gates.unwrap_or_default(),
        gate_mode: fm.gate_mode,
        editing: fm.editing.unwrap_or(profile != PermissionProfile::ReadOnly),
        requires_approval: fm.requires_approval,
        body: body.to_owned(),
        source,
        path: path.to_path_buf(),
    })
}

/// Parser options: the default budget is sized for large documents; front
/// matter is a dozen fields, so a much smaller one rejects alias bombs and deep
/// nesting quickly.
fn yaml_options() -> serde_saphyr::Options {
    let mut options = serde_saphyr::Options::default();
    options.budget = serde_saphyr::budget! {
        max_events: 100_000,
        max_nodes: 20_000,
        max_aliases: 1_000,
        max_anchors: 1_000,
        max_depth: 32,
        max_total_scalar_bytes: 1024 * 1024,
    };
    options
}

/// The 1-based file line of top-level front matter key `key`, if present.
fn front_matter_line_of(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .enumerate()
        .skip(1)
        .take_while(|(_, l)| l.trim_end() != "---")
        .find(|(_, l)| top_level_key(l) == Some(key))
        .map(|(i, _)| i + 1)
}

/// The key of a top-level `key: value` YAML line.
fn top_level_key(line: &str) -> Option<&str> {
    if line.starts_with([' ', '\t', '#', '-']) {
        return None;
    }
    let (key, _) = line.split_once(':')?;
    let key = key.trim().trim_matches(['"', '\'']);
    (!key.is_empty()).then_some(key)
}

/// Turns a YAML error into [`SkillError::FrontMatter`]: file line (the YAML
/// starts on line 2), the field (from the message, else the top-level key at
/// or above the error line) and what it expects.
fn front_matter_error(err: &serde_saphyr::Error, yaml: &str, path: &Path) -> SkillError {
    let mut message = serde_saphyr::DefaultMessageFormatter
        .format_message(err)
        .escape_debug()
        .to_string();
    // The parser's hint is about its own API, not about the file.
    if let Some(i) = message.find(", set DuplicateKeyPolicy") {
        message.truncate(i);
    }
    let yaml_line = err
        .location()
        .map_or(1, |l| usize::try_from(l.line()).unwrap_or(1))
        .max(1);
    let quoted = |marker: &str| {
        let rest = message.split_once(marker)?.1;
        let rest = rest.strip_prefix('`')?;
        rest.split_once('`').map(|(f, _)| f.to_owned())
    };
    let field = quoted("unknown field ")
        .or_else(|| quoted("missing field "))
        .or_else(|| {
            yaml.lines()
                .take(yaml_line)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .find_map(top_level_key)
                .map(str::to_owned)
        });
    // The parser's message may list the choices already ("unknown variant
    // `x`, expected one of …"); add vnx's description only when it does not.
    let expected = if message.contains("expected one of") {
        None
    } else {
        field.as_deref().and_then(expected_for)
    };
    SkillError::FrontMatter {
        path: path.to_path_buf(),
        line: yaml_line + 1,
        field,
        message,
        expected,
    }
}
