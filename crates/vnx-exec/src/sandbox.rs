//! An opt-in sandbox for workers on Linux: the agent runs under
//! [bubblewrap](https://github.com/containers/bubblewrap) (`bwrap`, Debian
//! package `bubblewrap`, 0.4 or newer) with the whole file system mounted
//! read-only and only the paths the caller lists writable, so that writing
//! anywhere else fails (`EROFS`) instead of being detected afterwards.
//!
//! Why bwrap and not Landlock: Landlock must be applied by the process
//! itself between `fork` and `exec` (an `unsafe` `pre_exec`, forbidden in
//! this workspace) or to a vnx thread that then spawns the child — neither
//! reaches the tmux lane, whose panes tmux's server starts. Wrapping the argv
//! in `bwrap` works the same for every lane, needs no code in the child and
//! is what Flatpak runs on every desktop; bwrap also gives the worker its
//! own pid namespace, so a daemon it starts dies with it.
//!
//! Mounts are applied in order, later ones over earlier ones: the caller
//! can make `/tmp` writable, then the repository under it read-only again,
//! then the worktree inside that writable again. Paths that do not exist
//! are skipped (`--bind-try`).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::Invocation;

/// Whether a mounted path can be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Mounted read-only.
    ReadOnly,
    /// Mounted read-write.
    Writable,
}

/// A sandbox to run workers in: `bwrap` and the mounts over a read-only root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sandbox {
    /// The `bwrap` binary, absolute.
    pub bwrap: PathBuf,
    /// Mounts over the read-only root, in order (later ones win).
    pub mounts: Vec<(PathBuf, Access)>,
}

impl Sandbox {
    /// A sandbox run by `bwrap` with nothing writable yet.
    pub fn new(bwrap: impl Into<PathBuf>) -> Sandbox {
        Sandbox {
            bwrap: bwrap.into(),
            mounts: Vec::new(),
        }
    }

    /// Adds a mount of `path` (absolute) with `access` over the earlier ones.
    #[must_use]
    pub fn mount(mut self, path: impl Into<PathBuf>, access: Access) -> Sandbox {
        self.mounts.push((path.into(), access));
        self
    }

    /// `inv` run inside the sandbox: the program becomes `bwrap`, the
    /// original program and arguments follow `--`; environment, stdin and
    /// working directory are unchanged (bwrap passes its environment on
    /// and starts the program in `inv.cwd`).
    pub fn wrap(&self, inv: Invocation) -> Invocation {
        let mut args: Vec<String> = BASE_ARGS.iter().map(|s| (*s).to_owned()).collect();
        for (path, access) in &self.mounts {
            let flag = match access {
                Access::ReadOnly => "--ro-bind-try",
                Access::Writable => "--bind-try",
            };
            let p = path.display().to_string();
            args.extend([flag.to_owned(), p.clone(), p]);
        }
        if let Some(cwd) = &inv.cwd {
            args.extend(["--chdir".to_owned(), cwd.display().to_string()]);
        }
        args.push("--".to_owned());
        args.push(inv.program.display().to_string());
        args.extend(inv.args);
        Invocation {
            program: self.bwrap.clone(),
            args,
            ..inv
        }
    }
}

/// Whether workers can be sandboxed here, and with which `bwrap`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Support {
    /// `bwrap` is there and could create a sandbox.
    Available {
        /// The binary.
        bwrap: PathBuf,
    },
    /// Not here; the reason says what to install or enable.
    Unavailable(String),
}

/// Looks for `bwrap` in `path_var` (a `PATH` value) and runs it once
/// (`bwrap --ro-bind / / --unshare-pid --proc /proc -- true`, a few
/// milliseconds) to learn whether the kernel lets it create its namespaces.
pub fn support(path_var: Option<&OsStr>) -> Support {
    if !cfg!(target_os = "linux") {
        return Support::Unavailable("the sandbox needs Linux (bubblewrap)".to_owned());
    }
    let Some(bwrap) = path_var.and_then(|p| {
        std::env::split_paths(p)
            .map(|d| d.join("bwrap"))
            .find(|c| c.is_file())
    }) else {
        return Support::Unavailable(
            "bwrap is not on PATH; install bubblewrap (`apt-get install bubblewrap`)".to_owned(),
        );
    };
    let probe = std::process::Command::new(&bwrap)
        .args(BASE_ARGS)
        .args(["--", "true"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .output();
    match probe {
        Ok(out) if out.status.success() => Support::Available { bwrap },
        Ok(out) => Support::Unavailable(format!(
            "{} cannot create a sandbox here ({}); the kernel may forbid unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1, or AppArmor's kernel.apparmor_restrict_unprivileged_userns=0)",
            bwrap.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Support::Unavailable(format!("{} could not run: {e}", bwrap.display())),
    }
}

/// The directories a sandboxed worker may write in besides its worktree:
/// the temporary directories (`/tmp`, `/var/tmp`, `$TMPDIR`) and the agent
/// CLIs' own state under `home` (`.claude`, `.claude.json`, `.codex`,
/// `.gemini`, `.config`, `.cache`, `.npm`, `.local/share`, `.local/state`).
/// Missing ones are skipped when mounted.
pub fn default_writable(
    home: Option<&Path>,
    tmpdir: Option<&Path>,
) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let mut temp = vec![PathBuf::from("/tmp"), PathBuf::from("/var/tmp")];
    temp.extend(tmpdir.map(Path::to_path_buf));
    let state = home
        .map(|h| {
            [
                ".claude",
                ".claude.json",
                ".codex",
                ".gemini",
                ".config",
                ".cache",
                ".npm",
                ".local/share",
                ".local/state",
            ]
            .iter()
            .map(|d| h.join(d))
            .collect()
        })
        .unwrap_or_default();
    (temp, state)
}

/// bwrap's arguments for every sandbox, before the mounts: a read-only view
/// of `/`, devices and a fresh `/proc` in its own pid namespace, dying with
/// vnx. [`support`] probes exactly these, so "supported" means `wrap` works.
const BASE_ARGS: [&str; 10] = [
    "--die-with-parent",
    "--unshare-pid",
    "--ro-bind",
    "/",
    "/",
    "--dev-bind",
    "/dev",
    "/dev",
    "--proc",
    "/proc",
];

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn wrap_puts_the_command_after_the_mounts() {
        let mut inv = Invocation::new("/bin/agent", ["-p", "x"]);
        inv.cwd = Some(PathBuf::from("/r/wt"));
        let wrapped = Sandbox::new("/usr/bin/bwrap")
            .mount("/tmp", Access::Writable)
            .mount("/tmp/r", Access::ReadOnly)
            .wrap(inv);
        assert_eq!(wrapped.program, PathBuf::from("/usr/bin/bwrap"));
        let args = wrapped.args.join(" ");
        assert!(
            args.ends_with(
                "--bind-try /tmp /tmp --ro-bind-try /tmp/r /tmp/r --chdir /r/wt -- /bin/agent -p x"
            ),
            "{args}"
        );
        assert_eq!(wrapped.cwd, Some(PathBuf::from("/r/wt")));
    }

    #[test]
    fn a_sandboxed_write_outside_the_writable_paths_fails() {
        let bwrap = match support(std::env::var_os("PATH").as_deref()) {
            Support::Available { bwrap } => bwrap,
            // tests/run.sh installs bubblewrap (tests/agent-clis/install.sh).
            Support::Unavailable(why) => panic!("{why}"),
        };
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        let inside = root.join("inside");
        std::fs::create_dir(&inside).unwrap();
        let sandbox = Sandbox::new(bwrap)
            .mount(&root, Access::ReadOnly)
            .mount(&inside, Access::Writable);
        let inv = sandbox.wrap(Invocation::new(
            "/bin/sh",
            ["-c", "echo a > inside/a.txt && ! echo b > b.txt"],
        ));
        let status = std::process::Command::new(&inv.program)
            .args(&inv.args)
            .current_dir(&root)
            .status()
            .unwrap();
        assert!(status.success());
        assert!(inside.join("a.txt").exists());
        assert!(!root.join("b.txt").exists());
    }
}
