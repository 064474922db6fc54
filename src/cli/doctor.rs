//! `dbguard doctor`: says in plain words which `psql`, `alembic`, `dropdb`
//! and `pg_restore` this shell runs, whether that is the dbguard shim, which real tool the shim
//! would exec, and — when something puts a real tool ahead of the shims —
//! why, and the command that fixes it.
//!
//! Three steps, so the interesting part is testable without a filesystem:
//! `Facts::gather` looks at the disk, `diagnose` is a pure function of the
//! context and those facts, and `render` writes the result to any `Write`.

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::unistd::{AccessFlags, access};

use crate::cli::init::Shell;
use crate::cli::shim_dir::{self, Origin, ShimDir};
use crate::error::exit;
use crate::shim::resolve::Source;
use crate::shim::{RealTool, Tool};
use crate::{Context, Error};

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args, ctx: &Context) -> Result<u8, Error> {
    let facts = Facts::gather(ctx);
    let diagnosis = diagnose(ctx, &facts);
    let mut out = std::io::stdout().lock();
    render(&diagnosis, &mut out)
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("writing the report", e))?;
    Ok(if diagnosis.warnings.is_empty() {
        exit::OK
    } else {
        exit::FOUND
    })
}

/// The environment variables that change what a shim does, shown when set.
const RELEVANT_ENV: &[&str] = &[
    "DBGUARD_BYPASS",
    "DBGUARD_YES",
    "DBGUARD_REAL_PSQL",
    "DBGUARD_REAL_ALEMBIC",
    "DBGUARD_BACKUP_DIR",
    "DBGUARD_CONFIG",
    shim_dir::SHIM_DIR_ENV,
    crate::shim::live::PRELOAD_ENV,
    "VIRTUAL_ENV",
];

// ---------------------------------------------------------------------------
// Facts: what is on disk.

/// Everything `diagnose` needs to know about the filesystem.
#[derive(Debug, Clone)]
pub struct Facts {
    pub version: &'static str,
    /// The running binary.
    pub exe: Option<PathBuf>,
    pub shim_dir: Option<ShimDirFacts>,
    pub tools: Vec<ToolFacts>,
    /// The first `dbguard` on PATH, when it is the running binary: advice
    /// can then say `dbguard` instead of a full path.
    pub dbguard_on_path: bool,
    /// The preload library that guards interactive psql sessions, or
    /// where it was looked for.
    pub preload: Result<PathBuf, String>,
    /// Configured remotes without `encryption_key_file`, with their urls.
    pub unencrypted_remotes: Vec<(String, String)>,
    /// Each `[[database]]` on the pgBackRest engine, with what is wrong with
    /// its WAL archiving now (the guard's own health check), if anything.
    pub pitr_databases: Vec<PitrDatabase>,
}

/// A `[[database]]` on the pgBackRest engine, as the next guard would find it.
#[derive(Debug, Clone)]
pub struct PitrDatabase {
    /// The rule's `dbname` (pattern), or `*` without one.
    pub rule: String,
    pub stanza: String,
    /// `require_pitr`: refuse instead of falling back to pg_dump.
    pub require: bool,
    /// The server asked, as `host:port`.
    pub server: String,
    /// Why the guard would not take a restore point now.
    pub unhealthy: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ShimDirFacts {
    pub dir: ShimDir,
    pub exists: bool,
}

#[derive(Debug, Clone)]
pub struct ToolFacts {
    pub tool: Tool,
    /// Every executable named after the tool on PATH, in search order.
    pub hits: Vec<Hit>,
    /// What the shim would exec, or the one-line reason it would fail.
    pub real: Result<RealTool, String>,
    /// The shim would fail only because the real tool is not installed
    /// (nothing on PATH, no override): nothing to guard, so not a problem.
    pub not_installed: bool,
}

/// One executable on PATH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub path: PathBuf,
    pub kind: HitKind,
    /// The virtualenv whose bin directory holds it (a `pyvenv.cfg` one level
    /// up), the usual way a real `alembic` gets ahead of the shims.
    pub venv: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HitKind {
    /// The running binary itself (through a link or a copy with the same inode).
    ThisDbguard,
    /// A link to a different `dbguard` binary: another install.
    OtherDbguard(PathBuf),
    /// Anything else: a real, unguarded tool.
    Real,
}

impl Facts {
    pub fn gather(ctx: &Context) -> Facts {
        let exe = std::env::current_exe().ok();
        let me = exe.as_deref().and_then(file_id);
        let entries = shim_dir::path_entries(ctx);
        let shim_dir = shim_dir::locate(ctx, None).map(|dir| ShimDirFacts {
            exists: dir.path.is_dir(),
            dir,
        });
        let tools = Tool::ALL
            .into_iter()
            .map(|tool| {
                let real = RealTool::resolve(tool, ctx);
                ToolFacts {
                    tool,
                    hits: find_all(&entries, tool.name())
                        .into_iter()
                        .map(|path| classify(path, me))
                        .collect(),
                    not_installed: matches!(real, Err(Error::RealToolNotFound { .. })),
                    real: real.map_err(|e| e.to_string()),
                }
            })
            .collect();
        let dbguard_on_path = find_all(&entries, "dbguard")
            .first()
            .is_some_and(|p| me.is_some() && file_id(p) == me);
        Facts {
            version: env!("CARGO_PKG_VERSION"),
            exe,
            shim_dir,
            tools,
            dbguard_on_path,
            preload: crate::shim::live::preload_library(ctx)
                .and_then(|first| crate::shim::live::check_library(&first).map(|_| first)),
            // A configuration that does not load is `dbguard config`'s to
            // report; here it only means no remotes to judge.
            unencrypted_remotes: crate::config::Config::load(ctx)
                .map(|c| {
                    c.file
                        .remotes
                        .iter()
                        .filter(|r| r.encryption_key_file.is_none())
                        .map(|r| (r.name.clone(), r.url.to_string()))
                        .collect()
                })
                .unwrap_or_default(),
            pitr_databases: pitr_databases(ctx),
        }
    }
}

/// Runs the guard's own archiving health check for each `[[database]]` on
/// the pgBackRest engine, against the server the rule names (else the one
/// libpq's environment names), through the rule's database when it names
/// one literally, else `postgres`: `pg_stat_archiver` is the cluster's.
fn pitr_databases(ctx: &Context) -> Vec<PitrDatabase> {
    let Ok(config) = crate::config::Config::load(ctx) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for rule in &config.file.databases {
        let crate::config::EngineChoice::PgBackRest(pitr) = &rule.engine else {
            continue;
        };
        let literal = rule.dbname.clone().filter(|d| !d.contains(['*', '?']));
        let args = crate::target::ConnectionArgs {
            host: rule.host.clone(),
            port: rule.port.map(|p| p.to_string()),
            dbname: Some(literal.unwrap_or_else(|| "postgres".into())),
            ..Default::default()
        };
        let (server, unhealthy) = match crate::target::Target::resolve(&args, ctx) {
            Err(e) => (String::from("?"), Some(e.to_string())),
            Ok(target) => (
                format!("{}:{}", target.host, target.port),
                match crate::pgtools::PgTools::resolve(ctx) {
                    Err(e) => Some(e.to_string()),
                    Ok(tools) => {
                        crate::backup::engine::pgbackrest::health(&tools, &target, &pitr.stanza)
                            .err()
                    }
                },
            ),
        };
        found.push(PitrDatabase {
            rule: rule.dbname.clone().unwrap_or_else(|| "*".into()),
            stanza: pitr.stanza.clone(),
            require: pitr.require,
            server,
            unhealthy,
        });
    }
    found
}

fn file_id(path: &Path) -> Option<(u64, u64)> {
    fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Executable regular files named `name` in `entries`, as execvp would try them.
fn find_all(entries: &[PathBuf], name: &str) -> Vec<PathBuf> {
    entries
        .iter()
        .map(|dir| dir.join(name))
        .filter(|p| {
            fs::metadata(p).is_ok_and(|m| m.is_file())
                && access(p.as_path(), AccessFlags::X_OK).is_ok()
        })
        .collect()
}

fn classify(path: PathBuf, me: Option<(u64, u64)>) -> Hit {
    let kind = if me.is_some() && file_id(&path) == me {
        HitKind::ThisDbguard
    } else {
        match fs::canonicalize(&path) {
            Ok(target)
                if fs::symlink_metadata(&path).is_ok_and(|m| m.is_symlink())
                    && target.file_name() == Some(OsStr::new("dbguard")) =>
            {
                HitKind::OtherDbguard(target)
            }
            _ => HitKind::Real,
        }
    };
    let venv = path
        .parent()
        .and_then(Path::parent)
        .filter(|root| root.join("pyvenv.cfg").is_file())
        .map(Path::to_path_buf);
    Hit { path, kind, venv }
}

// ---------------------------------------------------------------------------
// Diagnosis: what the facts mean.

#[derive(Debug, Clone)]
pub struct Diagnosis {
    pub version: &'static str,
    pub exe: Option<PathBuf>,
    pub shim_dir: Option<ShimDirStatus>,
    pub tools: Vec<ToolStatus>,
    /// Relevant variables that are set, in a fixed order.
    pub env: Vec<(String, String)>,
    /// The preload library for interactive psql sessions, if found.
    pub preload: Option<PathBuf>,
    pub warnings: Vec<Warning>,
    /// Worth knowing, not wrong: a tool that is not installed at all.
    pub notes: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct ShimDirStatus {
    pub path: PathBuf,
    pub origin: Origin,
    pub exists: bool,
    /// Index on PATH (0 is first), when it is on PATH.
    pub position: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct ToolStatus {
    pub tool: Tool,
    /// What typing the tool's name runs, if anything.
    pub runs: Option<Hit>,
    /// What the shim would exec.
    pub real: Result<(PathBuf, Source), String>,
    /// No real tool anywhere: not a problem, only a note.
    pub not_installed: bool,
}

impl ToolStatus {
    pub fn guarded(&self) -> bool {
        self.runs
            .as_ref()
            .is_some_and(|hit| hit.kind != HitKind::Real)
    }
}

/// A problem and how to fix it, each one line. `fix` is `None` when the
/// problem's own message already ends in the next step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub problem: String,
    pub fix: Option<String>,
}

/// Decides, from the context and the facts alone, what is guarded and what
/// is wrong.
pub fn diagnose(ctx: &Context, facts: &Facts) -> Diagnosis {
    let entries = shim_dir::path_entries(ctx);
    let shell = Shell::from_ctx(ctx).unwrap_or(Shell::Bash);
    let shim_dir = facts.shim_dir.as_ref().map(|s| ShimDirStatus {
        path: s.dir.path.clone(),
        origin: s.dir.origin,
        exists: s.exists,
        position: shim_dir::position(&entries, &s.dir.path),
    });
    let advice = Advice {
        shell,
        dbguard: match (&facts.exe, facts.dbguard_on_path) {
            (Some(exe), false) => shell.quote(&exe.to_string_lossy()),
            _ => "dbguard".to_owned(),
        },
        shim_dir: shim_dir.as_ref().map(|s| s.path.clone()),
        explicit_dir: shim_dir
            .as_ref()
            .filter(|s| s.origin != Origin::Default)
            .map(|s| s.path.clone()),
    };

    let mut warnings = Vec::new();
    let mut notes = Vec::new();
    // Problems with the shim directory itself explain every unguarded tool
    // at once, so they are reported once rather than per tool, and not at
    // all when the tools are guarded anyway (links made by hand elsewhere).
    let all_guarded = facts
        .tools
        .iter()
        .all(|t| t.hits.first().is_some_and(|h| h.kind != HitKind::Real));
    let dir_usable = match &shim_dir {
        _ if all_guarded => true,
        Some(s) if s.exists && s.position.is_some() => true,
        Some(s) if s.exists => {
            warnings.push(Warning {
                problem: format!(
                    "the shim directory {} is not on PATH, so {} run unguarded",
                    s.path.display(),
                    Tool::names_in_words()
                ),
                fix: Some(advice.keep_first("to put it first")),
            });
            false
        }
        _ => {
            let place = shim_dir
                .as_ref()
                .map(|s| format!(" at {}", s.path.display()))
                .unwrap_or_default();
            warnings.push(Warning {
                problem: format!(
                    "no shim directory{place}: dbguard is not installed as {}",
                    Tool::names_in_words()
                ),
                fix: Some("run ./install.sh from the dbguard source tree (or set DBGUARD_SHIM_DIR to where the shims are)".into()),
            });
            false
        }
    };

    let mut tools = Vec::new();
    for tf in &facts.tools {
        let tool = tf.tool;
        let runs = tf.hits.first().cloned();
        let in_shim_dir = advice.shim_dir.as_ref().is_some_and(|dir| {
            tf.hits
                .iter()
                .any(|h| h.path.parent() == Some(dir.as_path()))
        });
        match &runs {
            Some(Hit {
                kind: HitKind::ThisDbguard,
                ..
            }) => {}
            Some(Hit {
                path,
                kind: HitKind::OtherDbguard(target),
                ..
            }) => warnings.push(Warning {
                problem: format!(
                    "{tool}: {} links to another dbguard ({}), not this one ({}): two installs",
                    path.display(),
                    target.display(),
                    display_opt(&facts.exe)
                ),
                fix: Some(format!(
                    "keep one: remove the other with its `install.sh --uninstall` (same --prefix), or put {} first on PATH",
                    display_opt(&advice.shim_dir)
                )),
            }),
            _ if !dir_usable => {}
            _ if !in_shim_dir => warnings.push(Warning {
                problem: format!(
                    "{tool}: the shim directory {} has no `{tool}` link",
                    display_opt(&advice.shim_dir)
                ),
                fix: Some("run ./install.sh again to recreate the links".into()),
            }),
            Some(hit) => warnings.push(ahead_of_shims(ctx, tool, hit, &advice)),
            // Unreachable in practice: a link in the shim directory on PATH
            // is itself a hit. Reported as missing all the same.
            None => {}
        }
        if tf.not_installed {
            notes.push(format!(
                "{tool} is not installed, so there is nothing to guard; once it is (apt-get install -y {}, or set {}), its shim guards it",
                tool.package(),
                tool.override_var()
            ));
        } else if let Err(reason) = &tf.real {
            warnings.push(Warning {
                problem: format!("{tool}: the shim would fail: {reason}"),
                fix: None,
            });
        }
        tools.push(ToolStatus {
            tool,
            not_installed: tf.not_installed,
            runs,
            real: tf
                .real
                .as_ref()
                .map(|r| (r.path.clone(), r.source.clone()))
                .map_err(Clone::clone),
        });
    }

    if let Err(looked) = &facts.preload {
        warnings.push(Warning {
            problem: format!(
                "{} not found ({looked}): interactive psql sessions and SQL built by \\gexec run unguarded",
                crate::shim::live::PRELOAD_FILE
            ),
            fix: Some(
                "run ./install.sh again (it installs the library in <prefix>/lib/dbguard), or set DBGUARD_PRELOAD to its path".into(),
            ),
        });
    }

    for (name, url) in &facts.unencrypted_remotes {
        warnings.push(Warning {
            problem: format!(
                "remote {name} ({url}) has no encryption_key_file: its copies are stored as plain dumps, readable by whoever can read the bucket"
            ),
            fix: Some(format!(
                "dbguard keygen {name}.key, then encryption_key_file = \"{name}.key\" in its [[remote]]"
            )),
        });
    }

    for db in &facts.pitr_databases {
        let Some(why) = &db.unhealthy else {
            notes.push(format!(
                "database {} (pgBackRest stanza \"{}\" on {}): WAL archiving is healthy, guards take restore points",
                db.rule, db.stanza, db.server
            ));
            continue;
        };
        let next = if db.require {
            "refused (require_pitr)"
        } else {
            "protected by a pg_dump instead"
        };
        warnings.push(Warning {
            problem: format!(
                "database {} (pgBackRest stanza \"{}\" on {}): WAL archiving is not healthy: {why}. Restore points taken before stay restorable (dbguard verify checks them), but new guarded operations are {next}",
                db.rule, db.stanza, db.server
            ),
            fix: Some(
                "repair archiving (archive_command, the pgBackRest repository; see the server log), then run dbguard doctor again".into(),
            ),
        });
    }

    if ctx.flag("DBGUARD_BYPASS") {
        warnings.push(Warning {
            problem: "DBGUARD_BYPASS is set: the shims run the real tools with no guard at all"
                .into(),
            fix: Some(match shell {
                Shell::Fish => "set -e DBGUARD_BYPASS".into(),
                _ => "unset DBGUARD_BYPASS".into(),
            }),
        });
    }

    let env = RELEVANT_ENV
        .iter()
        .filter_map(|name| {
            let value = ctx.var(name)?;
            Some(((*name).to_owned(), value.to_string_lossy().into_owned()))
        })
        .collect();

    Diagnosis {
        version: facts.version,
        exe: facts.exe.clone(),
        shim_dir,
        tools,
        env,
        preload: facts.preload.as_ref().ok().cloned(),
        warnings,
        notes,
    }
}

/// Why a real tool comes before the shims, and the fix for that cause.
fn ahead_of_shims(ctx: &Context, tool: Tool, hit: &Hit, advice: &Advice) -> Warning {
    let dir = hit.path.parent().unwrap_or(Path::new("/"));
    let activated = ctx
        .var("VIRTUAL_ENV")
        .filter(|v| !v.is_empty())
        .map(|v| Path::new(v).join("bin"))
        .is_some_and(|bin| bin == dir);
    if activated {
        return Warning {
            problem: format!(
                "{tool}: the activated virtualenv {} (VIRTUAL_ENV) puts {} ahead of the shims, so {tool} runs unguarded",
                Path::new(ctx.var("VIRTUAL_ENV").unwrap_or_default()).display(),
                dir.display()
            ),
            fix: Some(advice.keep_first("for this shell")),
        };
    }
    if let Some(venv) = &hit.venv {
        let shim = advice
            .shim_dir
            .as_ref()
            .map(|d| advice.shell.quote(&d.join(tool.name()).to_string_lossy()))
            .unwrap_or_else(|| tool.name().to_owned());
        return Warning {
            problem: format!(
                "{tool}: the virtualenv {} is ahead of the shims on PATH without being activated (as under `uv run` or `poetry run`), so {tool} runs unguarded",
                venv.display()
            ),
            fix: Some(format!(
                "name the shim explicitly: `uv run {shim} …` or `poetry run {shim} …`; in an interactive shell, {}",
                advice.init_hint()
            )),
        };
    }
    Warning {
        problem: format!(
            "{tool}: {} comes before the shims on PATH, so {tool} runs unguarded",
            dir.display()
        ),
        fix: Some(advice.keep_first("for this shell")),
    }
}

/// Shell-specific wording of the fixes.
struct Advice {
    shell: Shell,
    /// How to invoke this binary from the user's shell.
    dbguard: String,
    shim_dir: Option<PathBuf>,
    /// The shim directory, when `init` must be told about it.
    explicit_dir: Option<PathBuf>,
}

impl Advice {
    fn init_hint(&self) -> String {
        format!(
            "add `{}` to {} to keep the shims first",
            self.shell
                .init_line(&self.dbguard, self.explicit_dir.as_deref()),
            self.shell.rc_file()
        )
    }

    /// The rc line, then the command for the current shell.
    fn keep_first(&self, now: &str) -> String {
        match &self.shim_dir {
            Some(dir) => format!("{}; {now}: {}", self.init_hint(), self.shell.path_line(dir)),
            None => self.init_hint(),
        }
    }
}

/// `a`, `a and b`, `a, b and c`, with the verb's number: "a is", "a and b are".
fn in_words(names: &[&str]) -> String {
    match names {
        [one] => format!("{one} is"),
        [rest @ .., last] => format!("{} and {last} are", rest.join(", ")),
        [] => String::new(),
    }
}

fn display_opt(path: &Option<PathBuf>) -> String {
    path.as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "unknown".into())
}

// ---------------------------------------------------------------------------
// Rendering.

/// Writes the report as plain text.
pub fn render(d: &Diagnosis, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(out, "dbguard {} ({})", d.version, display_opt(&d.exe))?;
    match &d.shim_dir {
        Some(s) => {
            let place = match (s.exists, s.position) {
                (false, _) => "does not exist".to_owned(),
                (true, None) => "not on PATH".to_owned(),
                (true, Some(0)) => "first on PATH".to_owned(),
                (true, Some(n)) => format!("entry {} on PATH", n + 1),
            };
            // A directory found on PATH needs no word on where it came from.
            let origin = match s.origin {
                Origin::OnPath => String::new(),
                origin => format!("{origin}, "),
            };
            writeln!(
                out,
                "shim directory: {} ({origin}{place})",
                s.path.display()
            )?;
        }
        None => writeln!(out, "shim directory: none found")?,
    }

    for t in &d.tools {
        writeln!(out)?;
        let verdict = if t.guarded() {
            "guarded"
        } else {
            "NOT guarded"
        };
        writeln!(out, "{}: {verdict}", t.tool)?;
        match &t.runs {
            Some(hit) => {
                let what = match &hit.kind {
                    HitKind::ThisDbguard => " (the dbguard shim)".to_owned(),
                    HitKind::OtherDbguard(target) => {
                        format!(" (a shim of another dbguard: {})", target.display())
                    }
                    HitKind::Real => String::new(),
                };
                writeln!(out, "  this shell runs  {}{what}", hit.path.display())?;
            }
            None => writeln!(out, "  this shell runs  nothing: no {} on PATH", t.tool)?,
        }
        if t.tool == Tool::Psql {
            match &d.preload {
                Some(lib) => writeln!(
                    out,
                    "  interactive      checked inside psql by {}",
                    lib.display()
                )?,
                None => writeln!(out, "  interactive      NOT checked: no preload library")?,
            }
        }
        match &t.real {
            Ok((path, Source::Path)) => writeln!(out, "  the shim execs   {}", path.display())?,
            Ok((path, Source::Override)) => writeln!(
                out,
                "  the shim execs   {} (from {})",
                path.display(),
                t.tool.override_var()
            )?,
            Err(_) if t.not_installed => writeln!(
                out,
                "  the shim execs   nothing: {} is not installed",
                t.tool
            )?,
            Err(_) => writeln!(out, "  the shim execs   nothing: no real {} found", t.tool)?,
        }
    }

    if !d.env.is_empty() {
        writeln!(out)?;
        writeln!(out, "environment:")?;
        for (name, value) in &d.env {
            writeln!(out, "  {name}={value}")?;
        }
    }

    writeln!(out)?;
    for note in &d.notes {
        writeln!(out, "note: {note}")?;
    }
    for w in &d.warnings {
        writeln!(out, "warning: {}", w.problem)?;
        if let Some(fix) = &w.fix {
            writeln!(out, "  fix: {fix}")?;
        }
    }
    let installed: Vec<&str> = d
        .tools
        .iter()
        .filter(|t| !t.not_installed)
        .map(|t| t.tool.name())
        .collect();
    match d.warnings.len() {
        0 if installed.len() == d.tools.len() => {
            writeln!(out, "ok: {} are guarded", Tool::names_in_words())
        }
        0 if installed.is_empty() => writeln!(out, "ok: nothing to guard yet"),
        0 => writeln!(out, "ok: {} guarded", in_words(&installed)),
        1 => writeln!(out, "1 warning"),
        n => writeln!(out, "{n} warnings"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(path: &str, kind: HitKind) -> Hit {
        Hit {
            path: path.into(),
            kind,
            venv: None,
        }
    }

    fn real(path: &str) -> Result<RealTool, String> {
        Ok(RealTool {
            tool: Tool::Psql,
            path: path.into(),
            source: Source::Path,
        })
    }

    fn facts(psql: Vec<Hit>, alembic: Vec<Hit>) -> Facts {
        Facts {
            version: "0.0.0",
            exe: Some("/b/dbguard".into()),
            shim_dir: Some(ShimDirFacts {
                dir: ShimDir {
                    path: "/s".into(),
                    origin: Origin::Default,
                },
                exists: true,
            }),
            tools: vec![
                ToolFacts {
                    tool: Tool::Psql,
                    hits: psql,
                    real: real("/usr/bin/psql"),
                    not_installed: false,
                },
                ToolFacts {
                    tool: Tool::Alembic,
                    hits: alembic,
                    real: real("/v/bin/alembic"),
                    not_installed: false,
                },
            ],
            dbguard_on_path: true,
            preload: Ok("/b/libdbguard_preload.so".into()),
            unencrypted_remotes: Vec::new(),
            pitr_databases: Vec::new(),
        }
    }

    #[test]
    fn a_remote_without_encryption_is_a_warning() {
        let mut facts = guarded_facts();
        facts.unencrypted_remotes = vec![("offsite".into(), "s3://b/p".into())];
        let ctx = Context::for_test(&["dbguard"], &[("PATH", "/s:/v/bin:/usr/bin")]);
        let d = diagnose(&ctx, &facts);
        assert_eq!(d.warnings.len(), 1, "{:?}", d.warnings);
        assert!(
            d.warnings[0]
                .problem
                .starts_with("remote offsite (s3://b/p) has no encryption_key_file")
        );
        assert!(
            d.warnings[0]
                .fix
                .as_deref()
                .unwrap()
                .contains("dbguard keygen")
        );
    }

    #[test]
    fn unhealthy_archiving_for_a_pitr_database_says_what_the_next_guard_does() {
        let mut facts = guarded_facts();
        let db = |require, unhealthy: Option<&str>| PitrDatabase {
            rule: "app".into(),
            stanza: "main".into(),
            require,
            server: "db1:5432".into(),
            unhealthy: unhealthy.map(str::to_owned),
        };
        facts.pitr_databases = vec![
            db(false, Some("archive_mode is off")),
            db(true, Some("archive_mode is off")),
            db(false, None),
        ];
        let ctx = Context::for_test(&["dbguard"], &[("PATH", "/s:/v/bin:/usr/bin")]);
        let d = diagnose(&ctx, &facts);
        let problems: Vec<&str> = d.warnings.iter().map(|w| w.problem.as_str()).collect();
        assert_eq!(
            problems,
            [
                "database app (pgBackRest stanza \"main\" on db1:5432): WAL archiving is not healthy: archive_mode is off. Restore points taken before stay restorable (dbguard verify checks them), but new guarded operations are protected by a pg_dump instead",
                "database app (pgBackRest stanza \"main\" on db1:5432): WAL archiving is not healthy: archive_mode is off. Restore points taken before stay restorable (dbguard verify checks them), but new guarded operations are refused (require_pitr)",
            ]
        );
        assert_eq!(
            d.notes,
            [
                "database app (pgBackRest stanza \"main\" on db1:5432): WAL archiving is healthy, guards take restore points"
            ]
        );
    }

    fn guarded_facts() -> Facts {
        facts(
            vec![
                hit("/s/psql", HitKind::ThisDbguard),
                hit("/usr/bin/psql", HitKind::Real),
            ],
            vec![
                hit("/s/alembic", HitKind::ThisDbguard),
                hit("/v/bin/alembic", HitKind::Real),
            ],
        )
    }

    #[test]
    fn all_shims_first_is_clean() {
        let ctx = Context::for_test(&["dbguard"], &[("PATH", "/s:/v/bin:/usr/bin")]);
        let d = diagnose(&ctx, &guarded_facts());
        assert_eq!(d.warnings, []);
        assert!(d.tools.iter().all(ToolStatus::guarded));
    }

    #[test]
    fn a_tool_that_is_not_installed_is_a_note_not_a_warning() {
        let ctx = Context::for_test(&["dbguard"], &[("PATH", "/s:/usr/bin")]);
        let mut f = facts(
            vec![
                hit("/s/psql", HitKind::ThisDbguard),
                hit("/usr/bin/psql", HitKind::Real),
            ],
            vec![hit("/s/alembic", HitKind::ThisDbguard)],
        );
        f.tools[1].real = Err("no real alembic found on PATH behind the dbguard shims".into());
        f.tools[1].not_installed = true;
        let d = diagnose(&ctx, &f);
        assert_eq!(d.warnings, []);
        assert_eq!(d.notes.len(), 1);
        assert!(
            d.notes[0].starts_with("alembic is not installed"),
            "{:?}",
            d.notes
        );
        let mut out = Vec::new();
        render(&d, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("the shim execs   nothing: alembic is not installed"),
            "{text}"
        );
        assert!(text.ends_with("ok: psql is guarded\n"), "{text}");

        // An override that points nowhere is a mistake, not an absence.
        f.tools[1].not_installed = false;
        let d = diagnose(&ctx, &f);
        assert_eq!(d.notes, Vec::<String>::new());
        assert_eq!(d.warnings.len(), 1);
    }

    #[test]
    fn links_outside_the_shim_directory_still_count_as_guarded() {
        let ctx = Context::for_test(&["dbguard"], &[("PATH", "/dev-shims:/usr/bin")]);
        let mut f = facts(
            vec![hit("/dev-shims/psql", HitKind::ThisDbguard)],
            vec![hit("/dev-shims/alembic", HitKind::ThisDbguard)],
        );
        f.shim_dir.as_mut().unwrap().exists = false;
        let d = diagnose(&ctx, &f);
        assert_eq!(d.warnings, []);

        f.tools[1].hits = vec![hit("/usr/bin/alembic", HitKind::Real)];
        let d = diagnose(&ctx, &f);
        assert_eq!(d.warnings.len(), 1, "{:?}", d.warnings);
        assert!(d.warnings[0].problem.starts_with("no shim directory at /s"));
    }

    #[test]
    fn activated_venv_is_named_with_the_hook_as_fix() {
        let ctx = Context::for_test(
            &["dbguard"],
            &[
                ("PATH", "/v/bin:/s:/usr/bin"),
                ("VIRTUAL_ENV", "/v"),
                ("SHELL", "/usr/bin/zsh"),
            ],
        );
        let mut f = guarded_facts();
        f.tools[1].hits.reverse();
        let d = diagnose(&ctx, &f);
        assert_eq!(d.warnings.len(), 1, "{:?}", d.warnings);
        let w = &d.warnings[0];
        assert!(
            w.problem.contains("activated virtualenv /v"),
            "{}",
            w.problem
        );
        let fix = w.fix.as_deref().unwrap();
        assert!(fix.contains(r#"eval "$(dbguard init zsh)""#), "{fix}");
        assert!(fix.contains("~/.zshrc"), "{fix}");
    }

    #[test]
    fn venv_without_activation_points_at_uv_and_poetry() {
        let ctx = Context::for_test(&["dbguard"], &[("PATH", "/v/bin:/s:/usr/bin")]);
        let mut f = guarded_facts();
        f.tools[1].hits = vec![
            Hit {
                venv: Some("/v".into()),
                ..hit("/v/bin/alembic", HitKind::Real)
            },
            hit("/s/alembic", HitKind::ThisDbguard),
        ];
        let d = diagnose(&ctx, &f);
        assert_eq!(d.warnings.len(), 1);
        let fix = d.warnings[0].fix.as_deref().unwrap();
        assert!(fix.contains("uv run /s/alembic"), "{fix}");
    }

    #[test]
    fn shim_dir_off_path_is_one_warning_for_both_tools() {
        let ctx = Context::for_test(&["dbguard"], &[("PATH", "/v/bin:/usr/bin")]);
        let f = facts(
            vec![hit("/usr/bin/psql", HitKind::Real)],
            vec![hit("/v/bin/alembic", HitKind::Real)],
        );
        let d = diagnose(&ctx, &f);
        assert_eq!(d.warnings.len(), 1, "{:?}", d.warnings);
        assert!(d.warnings[0].problem.contains("not on PATH"));
        assert!(d.tools.iter().all(|t| !t.guarded()));
    }

    #[test]
    fn another_install_and_missing_real_tool_and_bypass_are_warnings() {
        let ctx = Context::for_test(
            &["dbguard"],
            &[("PATH", "/o:/s:/usr/bin"), ("DBGUARD_BYPASS", "1")],
        );
        let mut f = guarded_facts();
        f.tools[0].hits.insert(
            0,
            hit("/o/psql", HitKind::OtherDbguard("/o/dbguard".into())),
        );
        f.tools[1].real = Err("no real alembic".into());
        let d = diagnose(&ctx, &f);
        let problems: Vec<&str> = d.warnings.iter().map(|w| w.problem.as_str()).collect();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("two installs"));
        assert!(problems[1].contains("no real alembic"));
        assert!(problems[2].contains("DBGUARD_BYPASS"));
        assert!(d.tools[0].guarded(), "another dbguard still guards");
    }
}
