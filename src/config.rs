//! Configuration: finding `.dbguard.toml`, reading it, and the settings
//! derived from it (backup directory, dump format, retention, per-database
//! policy).
//!
//! Lookup order: `DBGUARD_CONFIG` names one file explicitly (it must exist);
//! otherwise the nearest `.dbguard.toml` walking up from the working
//! directory; otherwise `$XDG_CONFIG_HOME/dbguard/config.toml` (by default
//! `~/.config/dbguard/config.toml`); otherwise built-in defaults. Only one
//! file is read: settings are not merged across files, so what a project
//! file says is the whole truth for that project.
//!
//! ```toml
//! [backup]
//! dir = "backups"          # relative to this file's directory
//! format = "plain"         # plain | custom | directory
//!
//! [retention]
//! keep_last = 10
//! keep_daily = 7
//! keep_weekly = 4
//! keep_monthly = 12
//! keep_yearly = 3
//!
//! [[database]]             # first match wins; unlisted databases: confirm
//! dbname = "shop_*"        # `*` and `?` wildcards; host and port optional
//! host = "localhost"
//! port = 5433
//! policy = "protect"       # protect | confirm | off
//! ```

use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::dump_format::Format;
use crate::target::Target;
use crate::{Context, Error};

/// The project file name looked for in the working directory and its parents.
pub const PROJECT_FILE: &str = ".dbguard.toml";

/// Settings in effect for one command, and where they came from.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// The file read, if any.
    pub source: Option<PathBuf>,
    pub file: ConfigFile,
    /// The directory of the nearest `.dbguard.toml`, even when another file
    /// was named by `DBGUARD_CONFIG`: it anchors the default backup directory.
    pub project_dir: Option<PathBuf>,
    backup_dir_env: Option<PathBuf>,
    data_home: Option<PathBuf>,
}

/// The file's contents. Unknown top-level tables are allowed (other parts
/// of dbguard add their own); unknown keys inside these tables are typos
/// and rejected.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ConfigFile {
    #[serde(default)]
    pub backup: BackupSection,
    #[serde(default)]
    pub retention: Retention,
    #[serde(default, rename = "database")]
    pub databases: Vec<DatabaseRule>,
    #[serde(default)]
    pub alembic: AlembicSection,
    #[serde(default)]
    pub bulk: BulkSection,
}

/// `[bulk]`: when a DELETE or UPDATE with a WHERE counts as destructive,
/// by the planner's estimate (`delete_bulk`, `update_bulk`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkSection {
    /// More rows than this (default 10,000).
    pub rows: Option<u64>,
    /// More than this share of the table (default 0.5; 0 turns it off).
    pub fraction: Option<f64>,
    /// `false`: no estimates at all (no EXPLAIN before DELETE and UPDATE);
    /// only the WHERE rule judges them.
    pub estimate: Option<bool>,
}

/// `[alembic]`: settings for the alembic shim.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlembicSection {
    /// The database alembic migrates, for projects whose env.py finds its
    /// URL somewhere dbguard cannot see (application settings, a vault).
    /// Read after `DBGUARD_DATABASE_URL` and before `DATABASE_URL`.
    pub database_url: Option<String>,
    /// `false` execs every `alembic upgrade` without rendering or scanning
    /// it (the render costs the start-up of a Python process).
    pub upgrade_analysis: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupSection {
    pub dir: Option<PathBuf>,
    pub format: Option<Format>,
}

/// How many backups to keep; rules are independent and ORed (restic's
/// `forget` semantics, see `backup::retention`). 0 turns a rule off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Retention {
    pub keep_last: u32,
    pub keep_daily: u32,
    pub keep_weekly: u32,
    pub keep_monthly: u32,
    pub keep_yearly: u32,
}

impl Default for Retention {
    /// The original system kept the last 10 backups.
    fn default() -> Self {
        Retention {
            keep_last: 10,
            keep_daily: 0,
            keep_weekly: 0,
            keep_monthly: 0,
            keep_yearly: 0,
        }
    }
}

/// What to do with destructive operations on a database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Confirm by typing the database's own name.
    Protect,
    /// Confirm by typing the operation's word (the default).
    Confirm,
    /// No guard (test databases).
    Off,
}

/// One `[[database]]` entry: patterns that must all match, and the policy.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseRule {
    pub dbname: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub policy: Policy,
}

impl DatabaseRule {
    pub fn matches(&self, target: &Target) -> bool {
        self.dbname
            .as_deref()
            .is_none_or(|p| wildcard_match(p, &target.dbname))
            && self
                .host
                .as_deref()
                .is_none_or(|p| wildcard_match(p, &target.host))
            && self.port.is_none_or(|p| p == target.port)
    }
}

impl Config {
    /// Finds and reads the configuration for `ctx`.
    pub fn load(ctx: &Context) -> Result<Config, Error> {
        let var = |name: &str| ctx.var(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        let home = var("HOME");
        let project_file = ctx.cwd.as_deref().and_then(find_project_file);
        let user_file = var("XDG_CONFIG_HOME")
            .or_else(|| home.as_ref().map(|h| h.join(".config")))
            .map(|d| d.join("dbguard").join("config.toml"));
        let source = if let Some(explicit) = var(crate::env::CONFIG) {
            if !explicit.is_file() {
                return Err(Error::Config {
                    path: explicit,
                    message: "named by DBGUARD_CONFIG but not a readable file; fix the path or unset DBGUARD_CONFIG".into(),
                });
            }
            Some(explicit)
        } else {
            project_file
                .clone()
                .or_else(|| user_file.filter(|f| f.is_file()))
        };
        let file = match &source {
            Some(path) => parse_file(path)?,
            None => ConfigFile::default(),
        };
        Ok(Config {
            source,
            file,
            project_dir: project_file.and_then(|f| f.parent().map(Path::to_path_buf)),
            backup_dir_env: var(crate::env::BACKUP_DIR),
            data_home: var("XDG_DATA_HOME")
                .or_else(|| home.map(|h| h.join(".local").join("share"))),
        })
    }

    /// A configuration read from `path` alone, for tests and tools.
    pub fn from_file(path: &Path) -> Result<Config, Error> {
        Ok(Config {
            source: Some(path.to_path_buf()),
            file: parse_file(path)?,
            project_dir: path.parent().map(Path::to_path_buf),
            ..Config::default()
        })
    }

    /// Where backups go: `DBGUARD_BACKUP_DIR`; else `backup.dir` from the
    /// file (relative to the file's directory); else `backups/` beside the
    /// nearest `.dbguard.toml`; else `$XDG_DATA_HOME/dbguard/backups`.
    pub fn backup_dir(&self) -> Result<PathBuf, Error> {
        if let Some(dir) = &self.backup_dir_env {
            return Ok(dir.clone());
        }
        if let Some(dir) = &self.file.backup.dir {
            let base = self
                .source
                .as_deref()
                .and_then(Path::parent)
                .unwrap_or(Path::new("."));
            return Ok(base.join(dir));
        }
        if let Some(project) = &self.project_dir {
            return Ok(project.join("backups"));
        }
        self.data_home
            .as_ref()
            .map(|d| d.join("dbguard").join("backups"))
            .ok_or_else(|| {
                Error::Usage(
                    "no backup directory: set DBGUARD_BACKUP_DIR, or HOME, or create a .dbguard.toml"
                        .into(),
                )
            })
    }

    /// Where `backup_dir` took its answer from, in words, for `dbguard config`.
    pub fn backup_dir_origin(&self) -> String {
        let file = || {
            self.source
                .as_deref()
                .map_or_else(String::new, |p| p.display().to_string())
        };
        if self.backup_dir_env.is_some() {
            "DBGUARD_BACKUP_DIR".to_owned()
        } else if self.file.backup.dir.is_some() {
            format!("backup.dir in {}", file())
        } else if let Some(project) = &self.project_dir {
            format!(
                "default: backups/ beside {}",
                project.join(PROJECT_FILE).display()
            )
        } else {
            "default: $XDG_DATA_HOME/dbguard/backups".to_owned()
        }
    }

    pub fn format(&self) -> Format {
        self.file.backup.format.unwrap_or_default()
    }

    /// When a DELETE or UPDATE with a WHERE is bulk; `None` when
    /// estimates are turned off (`[bulk] estimate = false`).
    pub fn bulk_threshold(&self) -> Option<crate::sql::estimate::Threshold> {
        if self.file.bulk.estimate == Some(false) {
            return None;
        }
        let default = crate::sql::estimate::Threshold::default();
        Some(crate::sql::estimate::Threshold {
            rows: self.file.bulk.rows.unwrap_or(default.rows),
            fraction: self.file.bulk.fraction.unwrap_or(default.fraction),
        })
    }

    pub fn retention(&self) -> Retention {
        self.file.retention
    }

    /// The policy for `target`: the first matching `[[database]]` rule, else `confirm`.
    pub fn policy_for(&self, target: &Target) -> Policy {
        self.file
            .databases
            .iter()
            .find(|rule| rule.matches(target))
            .map_or(Policy::Confirm, |rule| rule.policy)
    }
}

fn find_project_file(cwd: &Path) -> Option<PathBuf> {
    cwd.ancestors()
        .map(|dir| dir.join(PROJECT_FILE))
        .find(|f| f.is_file())
}

fn parse_file(path: &Path) -> Result<ConfigFile, Error> {
    let text = fs::read_to_string(path).map_err(|e| Error::Config {
        path: path.to_path_buf(),
        message: format!("cannot read: {e}"),
    })?;
    toml::from_str(&text).map_err(|e| Error::Config {
        path: path.to_path_buf(),
        // toml's message spans several lines (it quotes the source); keep it to one.
        message: e
            .message()
            .lines()
            .next()
            .unwrap_or("invalid TOML")
            .to_owned(),
    })
}

/// Shell-style matching with `*` (any run) and `?` (one character).
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            backtrack = Some((pi, ti));
            pi += 1;
        } else if let Some((star, matched)) = backtrack {
            pi = star + 1;
            ti = matched + 1;
            backtrack = Some((star, matched + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx_in(cwd: &Path, env: &[(&str, &str)]) -> Context {
        let mut ctx = Context::for_test(&["dbguard"], env);
        ctx.cwd = Some(cwd.to_path_buf());
        ctx
    }

    #[test]
    fn nearest_project_file_wins_and_anchors_the_backup_dir() {
        let root = tempfile::tempdir().unwrap();
        let project = root.path().join("proj");
        let deep = project.join("src/deep");
        fs::create_dir_all(&deep).unwrap();
        fs::write(
            project.join(PROJECT_FILE),
            "[backup]\nformat = \"custom\"\n[retention]\nkeep_last = 3\nkeep_daily = 7\n[audit]\nwhatever = 1\n",
        )
        .unwrap();
        let home = root.path().join("home");
        let ctx = ctx_in(&deep, &[("HOME", home.to_str().unwrap())]);
        let config = Config::load(&ctx).unwrap();
        assert_eq!(config.source, Some(project.join(PROJECT_FILE)));
        assert_eq!(config.backup_dir().unwrap(), project.join("backups"));
        assert_eq!(config.format(), Format::Custom);
        assert_eq!(config.retention().keep_last, 3);
        assert_eq!(config.retention().keep_daily, 7);
    }

    #[test]
    fn the_bulk_threshold_has_defaults_and_can_be_turned_off() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join(PROJECT_FILE);
        let threshold = |text: &str| {
            fs::write(&file, text).unwrap();
            Config::from_file(&file).unwrap().bulk_threshold()
        };
        let default = crate::sql::estimate::Threshold::default();
        assert_eq!(threshold(""), Some(default));
        assert_eq!(
            threshold("[bulk]\nrows = 50\nfraction = 0.0\n"),
            Some(crate::sql::estimate::Threshold {
                rows: 50,
                fraction: 0.0
            })
        );
        assert_eq!(threshold("[bulk]\nestimate = false\n"), None);
        fs::write(&file, "[bulk]\nrow = 5\n").unwrap();
        assert!(Config::from_file(&file).is_err(), "a typo is an error");
    }

    #[test]
    fn environment_and_user_file_and_defaults() {
        let root = tempfile::tempdir().unwrap();
        let home = root.path().join("home");
        let user_dir = home.join(".config/dbguard");
        fs::create_dir_all(&user_dir).unwrap();
        fs::write(user_dir.join("config.toml"), "[backup]\ndir = \"b\"\n").unwrap();
        let h = home.to_str().unwrap();
        let config = Config::load(&ctx_in(root.path(), &[("HOME", h)])).unwrap();
        assert_eq!(config.backup_dir().unwrap(), user_dir.join("b"));
        assert_eq!(config.retention(), Retention::default());

        let config = Config::load(&ctx_in(
            root.path(),
            &[("HOME", h), ("DBGUARD_BACKUP_DIR", "/srv/b")],
        ))
        .unwrap();
        assert_eq!(config.backup_dir().unwrap(), PathBuf::from("/srv/b"));

        fs::remove_file(user_dir.join("config.toml")).unwrap();
        let config = Config::load(&ctx_in(
            root.path(),
            &[("HOME", h), ("XDG_DATA_HOME", "/data")],
        ))
        .unwrap();
        assert_eq!(config.source, None);
        assert_eq!(
            config.backup_dir().unwrap(),
            PathBuf::from("/data/dbguard/backups")
        );
    }

    #[test]
    fn explicit_file_must_exist_and_typos_are_reported_in_one_line() {
        let root = tempfile::tempdir().unwrap();
        let missing = root.path().join("nope.toml");
        let err = Config::load(&ctx_in(
            root.path(),
            &[("DBGUARD_CONFIG", missing.to_str().unwrap())],
        ))
        .unwrap_err();
        assert!(err.to_string().contains("DBGUARD_CONFIG"), "{err}");

        let bad = root.path().join("bad.toml");
        fs::write(&bad, "[retention]\nkeep_lsat = 3\n").unwrap();
        let err = Config::from_file(&bad).unwrap_err().to_string();
        assert!(err.contains("keep_lsat") && !err.contains('\n'), "{err}");
    }

    #[test]
    fn database_rules_match_in_order() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("c.toml");
        fs::write(
            &file,
            "[[database]]\ndbname = \"*_test\"\npolicy = \"off\"\n\n[[database]]\ndbname = \"shop*\"\nport = 5433\npolicy = \"protect\"\n",
        )
        .unwrap();
        let config = Config::from_file(&file).unwrap();
        let t = |db: &str, port: u16| Target::explicit("localhost", port, "u", db);
        assert_eq!(config.policy_for(&t("shop_test", 5433)), Policy::Off);
        assert_eq!(config.policy_for(&t("shop", 5433)), Policy::Protect);
        assert_eq!(config.policy_for(&t("shop", 5432)), Policy::Confirm);
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("a*c", "abbbc"));
        assert!(wildcard_match("a?c", "abc"));
        assert!(!wildcard_match("a?c", "ac"));
        assert!(wildcard_match("*_test", "x_y_test"));
        assert!(!wildcard_match("shop", "shop2"));
    }
}
