//! vnx's PREPARE stage as a library: the repository's configuration, its
//! skills, and the instruction one dispatch sends to an agent CLI.
//!
//! - **Configuration** ([`Config`]): `vnx.toml` at the repository root, found
//!   by walking up from a directory ([`Config::load`]), typed with serde;
//!   unknown keys are errors naming file, line and key. No file at all means
//!   [`Config::default`]. Flags override it ([`Config::apply_overrides`]).
//!   [`init`] writes the commented [`default_toml`] and creates the ledger,
//!   `.vnx/skills/` and `.vnx/intelligence/`.
//! - **Skills** ([`SkillCatalog`]): folders with a `SKILL.md` (YAML front
//!   matter, then Markdown), looked up in the repository, then the user's
//!   config directory, then the built-ins compiled in (`implement`, `review`,
//!   `test`, `docs`).
//! - **PREPARE** ([`prepare`]): the skill body, a permission preamble,
//!   intelligence (notes and lessons from failed gates in the ledger, bounded),
//!   the report contract and the task, each part and the whole SHA-256 hashed;
//!   [`Prepared::dispatch_request`] maps it onto a [`vnx_agents::DispatchRequest`].
//!
//! ```no_run
//! use std::path::Path;
//! use vnx_prepare::{Config, PrepareInputs, SkillCatalog, prepare};
//!
//! let loaded = Config::load(Path::new("."))?;
//! let skill = SkillCatalog::from_env(Some(&loaded.root)).show("implement")?;
//! let worktree = loaded.root.join(".vnx/worktrees/d-1");
//! let report = worktree.join(".vnx-report.json");
//! let ledger = loaded.checked_ledger_dir()?;
//! let mut inputs = PrepareInputs::new(&skill, "Add a --verbose flag", &worktree, &report);
//! inputs.repo_root = Some(&loaded.root);
//! inputs.ledger_dir = Some(&ledger);
//! let forbidden = loaded.config.effective_forbidden_paths();
//! inputs.forbidden_paths = &forbidden;
//! let prepared = prepare(&inputs)?;
//! let request = prepared.dispatch_request(&loaded.config.provider()?, &loaded.config.run, &worktree);
//! assert_eq!(request.prompt, prepared.instruction);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Architecture invariant: this crate reads files (config, skills, notes,
//! schema, ledger) and writes only in [`init`]; it spawns no process, never
//! prints, and reads the process environment only in [`SkillCatalog::from_env`].
//!
//! Units: durations as [`std::time::Duration`] (strings such as `"30m"` in
//! TOML), money in integer micro-USD, sizes in bytes.

mod config;
mod init;
mod prepare;
mod skill;
mod units;

pub use config::{
    BatchConfig, CONFIG_FILE, CommandGate, Config, ConfigError, GateMode, GatesConfig,
    LedgerConfig, LoadedConfig, MAX_CONFIG_BYTES, MergeGateConfig, Overrides, RetryConfig,
    RunConfig, WorkerConfig, default_forbidden_paths, default_toml,
};
pub use init::{INTELLIGENCE_DIR, InitError, InitReport, SKILLS_DIR, WORKTREES_DIR, init};
pub use prepare::{
    DEFAULT_INTELLIGENCE_BYTES, DEFAULT_MAX_LESSONS, DEFAULT_REPORT_SCHEMA_PATH, Lesson,
    MAX_LESSON_DETAIL_CHARS, MAX_SCHEMA_BYTES, PART_INTELLIGENCE, PART_PERMISSIONS,
    PART_REPORT_CONTRACT, PART_SEPARATOR, PART_SKILL, PART_TASK, Part, PrepareError, PrepareInputs,
    Prepared, UPSTREAM_REPORT_BYTES, Upstream, lessons, prepare, sha256_hex,
};
pub use skill::{
    BUILTIN_SKILLS, MAX_SKILL_BYTES, SKILL_FILE, Skill, SkillCatalog, SkillEntry, SkillError,
    SkillGates, SkillSource, is_valid_skill_name, parse_skill, user_skills_dir,
};
pub use units::{DURATION_EXPECTED, USD_EXPECTED, format_duration, parse_duration, parse_usd};
