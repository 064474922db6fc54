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
//! [retention]             # applied to each database's backups separately
//! keep_within = "7d"       # nothing younger is ever pruned (h, d, w; "0" = off)
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
//! policy = "protect"       # protect | confirm | off (default confirm)
//! engine = "pgbackrest"    # pg_dump (default) | pgbackrest: a restore point
//! stanza = "main"          #   in archived WAL instead of a dump
//! require_pitr = true      # refuse, rather than fall back to pg_dump, when
//!                          #   WAL archiving is unhealthy (default false)
//!
//! [[remote]]               # off-machine copies, in this order for restores
//! name = "offsite"
//! url = "s3://bucket/prefix"
//! endpoint = "http://127.0.0.1:9000"   # any S3-compatible server (optional)
//! region = "eu-west-1"                  # optional
//! encryption_key_file = "offsite.key"   # from `dbguard keygen`; relative to this file
//! keep_daily = 31                       # retention keys as in [retention]
//! keep_monthly = 12
//! ```
//!
//! Remotes take their credentials only from the standard AWS environment
//! variables and files, never from this file.

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

/// The file's contents. Every table and key is known: an unknown one is a
/// typo (`[bakup]`, `[[databases]]`) that would otherwise drop a setting
/// silently, so it is an error naming the file, the line and the nearest
/// known name.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
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
    #[serde(default, rename = "remote")]
    pub remotes: Vec<RemoteSection>,
}

/// One `[[remote]]`: S3-compatible storage that receives a copy of every
/// backup. Credentials are deliberately not among the keys: they come from
/// `AWS_*` variables and `~/.aws`, so the file can be committed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteSection {
    /// How commands name it (`--from`, `--remote`, `list`).
    pub name: String,
    pub url: RemoteUrl,
    /// An S3-compatible server other than AWS (`http://host:port`).
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// A key file from `dbguard keygen`; relative to the config file.
    pub encryption_key_file: Option<PathBuf>,
    keep_within: Option<Age>,
    keep_last: Option<u32>,
    keep_daily: Option<u32>,
    keep_weekly: Option<u32>,
    keep_monthly: Option<u32>,
    keep_yearly: Option<u32>,
}

impl RemoteSection {
    /// This remote's retention: its own keys over the defaults of
    /// `[retention]` (a remote usually keeps longer than the laptop).
    pub fn retention(&self) -> Result<Retention, String> {
        Retention::try_from(RetentionTable {
            keep_within: self.keep_within,
            keep_last: self.keep_last,
            keep_daily: self.keep_daily,
            keep_weekly: self.keep_weekly,
            keep_monthly: self.keep_monthly,
            keep_yearly: self.keep_yearly,
        })
        .map_err(|e| e.replace("[retention]", &format!("[[remote]] {}", self.name)))
    }
}

/// `s3://BUCKET/PREFIX`, split once where it is read.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct RemoteUrl {
    pub bucket: String,
    /// Without leading or trailing `/`; empty for the bucket's root.
    pub prefix: String,
}

impl TryFrom<String> for RemoteUrl {
    type Error = String;

    fn try_from(text: String) -> Result<RemoteUrl, String> {
        let rest = text.strip_prefix("s3://").ok_or_else(|| {
            format!("remote url \"{text}\" is not s3://BUCKET/PREFIX (only S3-compatible storage is supported)")
        })?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid_bucket = !bucket.is_empty()
            && bucket
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
        if !valid_bucket {
            return Err(format!(
                "remote url \"{text}\": `{bucket}` is not a bucket name (lowercase letters, digits, `-`, `.`)"
            ));
        }
        Ok(RemoteUrl {
            bucket: bucket.to_owned(),
            prefix: prefix.trim_matches('/').to_owned(),
        })
    }
}

impl std::fmt::Display for RemoteUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.prefix.is_empty() {
            write!(f, "s3://{}", self.bucket)
        } else {
            write!(f, "s3://{}/{}", self.bucket, self.prefix)
        }
    }
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

/// How many backups to keep of each database; rules are independent and
/// ORed (restic's `forget` semantics, see `backup::retention`). 0 turns a
/// count off, but at least one count must be set: a policy that keeps
/// nothing is refused when the file is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RetentionTable")]
pub struct Retention {
    /// Backups younger than this are never removed (default 7 days).
    pub keep_within: Age,
    pub keep_last: u32,
    pub keep_daily: u32,
    pub keep_weekly: u32,
    pub keep_monthly: u32,
    pub keep_yearly: u32,
}

impl Default for Retention {
    /// The original system kept the last 10 backups; a week of grace means
    /// a busy database can never push out what was taken this week.
    fn default() -> Self {
        Retention {
            keep_within: Age::DEFAULT_KEEP_WITHIN,
            keep_last: 10,
            keep_daily: 0,
            keep_weekly: 0,
            keep_monthly: 0,
            keep_yearly: 0,
        }
    }
}

/// `[retention]` as written; keys left out take the defaults.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RetentionTable {
    keep_within: Option<Age>,
    keep_last: Option<u32>,
    keep_daily: Option<u32>,
    keep_weekly: Option<u32>,
    keep_monthly: Option<u32>,
    keep_yearly: Option<u32>,
}

impl TryFrom<RetentionTable> for Retention {
    type Error = String;

    fn try_from(t: RetentionTable) -> Result<Self, String> {
        let default = Retention::default();
        let r = Retention {
            keep_within: t.keep_within.unwrap_or(default.keep_within),
            keep_last: t.keep_last.unwrap_or(default.keep_last),
            keep_daily: t.keep_daily.unwrap_or(default.keep_daily),
            keep_weekly: t.keep_weekly.unwrap_or(default.keep_weekly),
            keep_monthly: t.keep_monthly.unwrap_or(default.keep_monthly),
            keep_yearly: t.keep_yearly.unwrap_or(default.keep_yearly),
        };
        if r.counts_all_zero() {
            return Err(
                "[retention] keeps nothing: keep_last, keep_daily, keep_weekly, \
                 keep_monthly and keep_yearly are all 0; set at least one of them \
                 (the default is keep_last = 10)"
                    .into(),
            );
        }
        Ok(r)
    }
}

impl Retention {
    /// True when no count keeps anything (only `keep_within` and the
    /// newest verified backup would remain).
    pub fn counts_all_zero(&self) -> bool {
        [
            self.keep_last,
            self.keep_daily,
            self.keep_weekly,
            self.keep_monthly,
            self.keep_yearly,
        ]
        .iter()
        .all(|&n| n == 0)
    }
}

/// A minimum age such as `"7d"`: whole hours (`h`), days (`d`) and weeks
/// (`w`), combinable (`"1w3d"`); `"0"` for none. Months and years are not
/// offered: their length varies, and `m` would be read as minutes by some.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Deserialize)]
#[serde(try_from = "String")]
pub struct Age {
    pub hours: u64,
}

impl Age {
    pub const DEFAULT_KEEP_WITHIN: Age = Age { hours: 7 * 24 };

    pub fn as_chrono(self) -> chrono::Duration {
        chrono::Duration::hours(i64::try_from(self.hours).unwrap_or(i64::MAX / 3_600_000))
    }
}

impl std::str::FromStr for Age {
    type Err = String;

    fn from_str(text: &str) -> Result<Age, String> {
        let usage = "write it as whole hours, days or weeks, e.g. \"7d\", \"36h\", \"2w\", \"1w3d\"; \"0\" for none";
        let trimmed = text.trim();
        if trimmed == "0" {
            return Ok(Age::default());
        }
        let mut hours: u64 = 0;
        let mut digits = String::new();
        for c in trimmed.chars() {
            if c.is_ascii_digit() {
                digits.push(c);
                continue;
            }
            let unit = match c {
                'h' => 1,
                'd' => 24,
                'w' => 24 * 7,
                _ => return Err(format!("unknown unit `{c}` in \"{text}\"; {usage}")),
            };
            let n: u64 = digits
                .parse()
                .map_err(|_| format!("\"{text}\" is not a duration; {usage}"))?;
            hours = n
                .checked_mul(unit)
                .and_then(|h| hours.checked_add(h))
                .ok_or_else(|| format!("\"{text}\" is too long"))?;
            digits.clear();
        }
        if !digits.is_empty() || trimmed.is_empty() {
            return Err(format!("\"{text}\" has no unit; {usage}"));
        }
        Ok(Age { hours })
    }
}

impl TryFrom<String> for Age {
    type Error = String;

    fn try_from(text: String) -> Result<Age, String> {
        text.parse()
    }
}

impl std::fmt::Display for Age {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let h = self.hours;
        if h == 0 {
            f.write_str("0")
        } else if h.is_multiple_of(24 * 7) {
            write!(f, "{}w", h / (24 * 7))
        } else if h.is_multiple_of(24) {
            write!(f, "{}d", h / 24)
        } else {
            write!(f, "{h}h")
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

/// One `[[database]]` entry: patterns that must all match, the policy and
/// the backup engine.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "DatabaseTable")]
pub struct DatabaseRule {
    pub dbname: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub policy: Policy,
    pub engine: EngineChoice,
}

/// Which backup engine protects a database.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum EngineChoice {
    /// A pg_dump of what the operation destroys (the default).
    #[default]
    PgDump,
    /// A restore point in the cluster's archived WAL (see
    /// `backup::engine::pgbackrest`).
    PgBackRest(PitrSettings),
}

/// The pgBackRest engine's settings for one database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PitrSettings {
    /// pgBackRest's stanza; its other settings come from pgBackRest's own
    /// configuration file and `PGBACKREST_*` environment.
    pub stanza: String,
    /// Refuse the operation when archiving is unhealthy, instead of
    /// falling back to pg_dump.
    pub require: bool,
}

/// A `[[database]]` table as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct DatabaseTable {
    dbname: Option<String>,
    host: Option<String>,
    port: Option<u16>,
    #[serde(default = "confirm_policy")]
    policy: Policy,
    engine: Option<String>,
    stanza: Option<String>,
    require_pitr: Option<bool>,
}

fn confirm_policy() -> Policy {
    Policy::Confirm
}

impl TryFrom<DatabaseTable> for DatabaseRule {
    type Error = String;

    fn try_from(t: DatabaseTable) -> Result<Self, String> {
        let engine = match (t.engine.as_deref(), t.stanza, t.require_pitr) {
            (None | Some("pg_dump"), None, None) => EngineChoice::PgDump,
            (None | Some("pg_dump"), Some(_), _) => {
                return Err("`stanza` belongs to engine = \"pgbackrest\"".into());
            }
            (None | Some("pg_dump"), None, Some(_)) => {
                return Err("`require_pitr` belongs to engine = \"pgbackrest\"".into());
            }
            (Some("pgbackrest"), Some(stanza), require) if !stanza.is_empty() => {
                EngineChoice::PgBackRest(PitrSettings {
                    stanza,
                    require: require.unwrap_or(false),
                })
            }
            (Some("pgbackrest"), _, _) => {
                return Err("engine = \"pgbackrest\" needs `stanza`, the pgBackRest stanza of this database's cluster".into());
            }
            (Some(other), _, _) => {
                return Err(format!(
                    "unknown engine `{other}`, expected `pg_dump` or `pgbackrest`"
                ));
            }
        };
        Ok(DatabaseRule {
            dbname: t.dbname,
            host: t.host,
            port: t.port,
            policy: t.policy,
            engine,
        })
    }
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

    /// The `[[remote]]` named `name`.
    pub fn remote(&self, name: &str) -> Result<&RemoteSection, Error> {
        self.file
            .remotes
            .iter()
            .find(|r| r.name == name)
            .ok_or_else(|| {
                let known: Vec<&str> = self.file.remotes.iter().map(|r| r.name.as_str()).collect();
                Error::Usage(if known.is_empty() {
                    format!("no remote named `{name}`: the configuration has no [[remote]]")
                } else {
                    format!("no remote named `{name}`; configured: {}", known.join(", "))
                })
            })
    }

    /// A remote's key file, relative paths taken from the config file's directory.
    pub fn key_file(&self, remote: &RemoteSection) -> Option<PathBuf> {
        let file = remote.encryption_key_file.as_ref()?;
        let base = self
            .source
            .as_deref()
            .and_then(Path::parent)
            .unwrap_or(Path::new("."));
        Some(base.join(file))
    }

    /// The policy for `target`: the first matching `[[database]]` rule, else `confirm`.
    pub fn policy_for(&self, target: &Target) -> Policy {
        self.file
            .databases
            .iter()
            .find(|rule| rule.matches(target))
            .map_or(Policy::Confirm, |rule| rule.policy)
    }

    /// The backup engine for `target`: the first matching `[[database]]`
    /// rule's, else pg_dump.
    pub fn engine_for(&self, target: &Target) -> EngineChoice {
        self.file
            .databases
            .iter()
            .find(|rule| rule.matches(target))
            .map_or(EngineChoice::PgDump, |rule| rule.engine.clone())
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
    let file: ConfigFile = toml::from_str(&text).map_err(|e| Error::Config {
        path: path.to_path_buf(),
        message: describe_toml_error(&text, &e),
    })?;
    check_remotes(&file.remotes).map_err(|message| Error::Config {
        path: path.to_path_buf(),
        message,
    })?;
    Ok(file)
}

/// What serde cannot see one `[[remote]]` at a time: names are unique and
/// usable on a command line, and each retention keeps something.
fn check_remotes(remotes: &[RemoteSection]) -> Result<(), String> {
    for (i, remote) in remotes.iter().enumerate() {
        let name = &remote.name;
        let usable = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !usable || name == "local" {
            return Err(format!(
                "[[remote]] name \"{name}\": use letters, digits, `-` and `_` (and not `local`)"
            ));
        }
        if remotes[..i].iter().any(|r| r.name == *name) {
            return Err(format!(
                "two [[remote]] tables are named \"{name}\"; names must be unique"
            ));
        }
        remote.retention()?;
    }
    Ok(())
}

/// toml's error as one line: where (`line N`), what, and for an unknown
/// table, key or value the nearest name serde says it expected. toml's own
/// rendering spans several lines (it quotes the source), so it is rebuilt
/// from the message and the span.
fn describe_toml_error(text: &str, e: &toml::de::Error) -> String {
    let first = e.message().lines().next().unwrap_or("invalid TOML").trim();
    // The text before the error; a span that is not a character boundary
    // of this text (it never should be) only loses the line number.
    let before = e.span().and_then(|span| text.get(..span.start));
    let line = before.map(|b| b.matches('\n').count() + 1);
    // serde says "field" for both; in TOML a name in brackets is a table.
    let in_brackets = before.is_some_and(|b| {
        let line_start = b.rfind('\n').map_or(0, |i| i + 1);
        text[line_start..].trim_start().starts_with('[')
    });
    let first = match first.strip_prefix("unknown field ") {
        Some(rest) if in_brackets => format!("unknown table {rest}"),
        Some(rest) => format!("unknown key {rest}"),
        None => first.to_owned(),
    };
    let first = first.as_str();
    let mut message = match line {
        Some(n) => format!("line {n}: {first}"),
        None => first.to_owned(),
    };
    if let Some(suggestion) = did_you_mean(first) {
        message.push_str(&format!("; did you mean `{suggestion}`?"));
    }
    message
}

/// serde names what it found and what it expected in backquotes:
/// "unknown table `bakup`, expected one of `backup`, `retention`" (serde's
/// "unknown field", renamed above, or "unknown variant ..."). The closest expected name, when it is close
/// enough to be a typo of the one found.
fn did_you_mean(message: &str) -> Option<String> {
    if !["unknown table", "unknown key", "unknown variant"]
        .iter()
        .any(|p| message.starts_with(p))
    {
        return None;
    }
    let mut quoted = message.split('`').skip(1).step_by(2);
    let found = quoted.next()?;
    quoted
        .map(|known| (strsim::damerau_levenshtein(found, known), known))
        // A typo changes a few characters, not most of the word.
        .filter(|(distance, known)| *distance <= 2.max(known.len() / 3))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, known)| known.to_owned())
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
            "[backup]\nformat = \"custom\"\n[retention]\nkeep_last = 3\nkeep_daily = 7\n",
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

    /// The error for `text` as a file, without the file's path.
    fn config_error(text: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(PROJECT_FILE);
        fs::write(&file, text).unwrap();
        let err = Config::from_file(&file).unwrap_err().to_string();
        let prefix = format!("{}: ", file.display());
        err.strip_prefix(&prefix).unwrap_or(&err).to_owned()
    }

    /// Regression: `[[databases]]` and `[bakup]` were ignored, so a
    /// `protect` policy disappeared without a word.
    #[test]
    fn unknown_tables_and_keys_name_the_line_and_the_nearest_name() {
        assert_eq!(
            config_error(
                "[backup]\nformat = \"custom\"\n\n[[databases]]\ndbname = \"shop\"\npolicy = \"protect\"\n"
            ),
            "line 4: unknown table `databases`, expected one of `backup`, `retention`, `database`, `alembic`, `bulk`, `remote`; did you mean `database`?"
        );
        let err = config_error("[bakup]\ndir = \"b\"\n");
        assert!(err.starts_with("line 1: unknown table `bakup`"), "{err}");
        assert!(err.ends_with("did you mean `backup`?"), "{err}");
        let err = config_error("\n[retention]\nkeep_last = 3\nkeep_dialy = 7\n");
        assert!(err.starts_with("line 4: unknown key `keep_dialy`"), "{err}");
        assert!(err.ends_with("did you mean `keep_daily`?"), "{err}");
        let err = config_error("[[database]]\ndbname = \"x\"\npolicy = \"protekt\"\n");
        assert!(
            err.starts_with("line 3: unknown variant `protekt`"),
            "{err}"
        );
        assert!(err.ends_with("did you mean `protect`?"), "{err}");
        // Nothing close: no guess.
        let err = config_error("[frobnicate]\nurl = \"s3://x\"\n");
        assert!(
            err.starts_with("line 1: unknown table `frobnicate`"),
            "{err}"
        );
        assert!(!err.contains("did you mean"), "{err}");
        // Not a typo at all: the line is still there.
        let err = config_error("[backup]\nformat = \n");
        assert!(err.starts_with("line 2: "), "{err}");
    }

    #[test]
    fn remotes_are_read_strictly_and_keep_no_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(PROJECT_FILE);
        fs::write(
            &file,
            "[[remote]]\nname = \"offsite\"\nurl = \"s3://bkt/team/db/\"\nendpoint = \"http://127.0.0.1:9000\"\nencryption_key_file = \"k.age\"\nkeep_daily = 31\nkeep_monthly = 12\n",
        )
        .unwrap();
        let config = Config::from_file(&file).unwrap();
        let remote = config.remote("offsite").unwrap();
        assert_eq!(remote.url.bucket, "bkt");
        assert_eq!(remote.url.prefix, "team/db");
        assert_eq!(remote.url.to_string(), "s3://bkt/team/db");
        assert_eq!(config.key_file(remote).unwrap(), dir.path().join("k.age"));
        let retention = remote.retention().unwrap();
        assert_eq!(
            (
                retention.keep_daily,
                retention.keep_monthly,
                retention.keep_last
            ),
            (31, 12, 10)
        );
        assert!(
            config
                .remote("other")
                .unwrap_err()
                .to_string()
                .contains("configured: offsite")
        );

        let err =
            config_error("[[remote]]\nname = \"o\"\nurl = \"s3://b\"\nsecret_access_key = \"x\"\n");
        assert!(
            err.starts_with("line 4: unknown key `secret_access_key`"),
            "{err}"
        );
        let err =
            config_error("[[remote]]\nname = \"o\"\nurl = \"s3://b\"\nendpiont = \"http://x\"\n");
        assert!(err.ends_with("did you mean `endpoint`?"), "{err}");
        let err = config_error("[[remote]]\nname = \"o\"\nurl = \"gs://b\"\n");
        assert!(
            err.starts_with("line 3: ") && err.contains("not s3://BUCKET/PREFIX"),
            "{err}"
        );
        let err = config_error(
            "[[remote]]\nname = \"o\"\nurl = \"s3://b\"\n[[remote]]\nname = \"o\"\nurl = \"s3://c\"\n",
        );
        assert!(
            err.contains("two [[remote]] tables are named \"o\""),
            "{err}"
        );
        let err = config_error("[[remote]]\nname = \"local\"\nurl = \"s3://b\"\n");
        assert!(err.contains("not `local`"), "{err}");
        let err = config_error("[[remote]]\nname = \"o\"\nurl = \"s3://b\"\nkeep_last = 0\n");
        assert!(err.starts_with("[[remote]] o keeps nothing"), "{err}");
    }

    #[test]
    fn retention_keep_within_and_a_policy_that_keeps_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(PROJECT_FILE);
        let retention = |text: &str| {
            fs::write(&file, text).unwrap();
            Config::from_file(&file).unwrap().retention()
        };
        assert_eq!(retention("").keep_within, Age { hours: 168 });
        assert_eq!(retention("[retention]\n").keep_last, 10);
        let r = retention("[retention]\nkeep_within = \"1w3d\"\nkeep_last = 2\n");
        assert_eq!((r.keep_within.hours, r.keep_last), (240, 2));
        assert_eq!(r.keep_within.to_string(), "10d");
        assert_eq!(
            retention("[retention]\nkeep_within = \"0\"\n")
                .keep_within
                .hours,
            0
        );
        assert_eq!(
            retention("[retention]\nkeep_within = \"36h\"\n")
                .keep_within
                .to_string(),
            "36h"
        );

        let err = config_error("[retention]\nkeep_within = \"3m\"\n");
        assert!(
            err.starts_with("line 2: unknown unit `m` in \"3m\""),
            "{err}"
        );
        let err = config_error("[retention]\nkeep_within = \"7\"\n");
        assert!(err.contains("has no unit"), "{err}");
        for zero in [
            "[retention]\nkeep_last = 0\n",
            "[retention]\nkeep_last = 0\nkeep_daily = 0\nkeep_within = \"30d\"\n",
        ] {
            let err = config_error(zero);
            assert!(
                err.starts_with("line 1: [retention] keeps nothing"),
                "{err}"
            );
        }
    }

    #[test]
    fn the_engine_is_chosen_per_database_and_its_settings_are_checked() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("c.toml");
        fs::write(
            &file,
            "[[database]]\ndbname = \"app\"\nengine = \"pgbackrest\"\nstanza = \"main\"\n\n[[database]]\ndbname = \"big\"\nengine = \"pgbackrest\"\nstanza = \"main\"\nrequire_pitr = true\npolicy = \"protect\"\n",
        )
        .unwrap();
        let config = Config::from_file(&file).unwrap();
        let t = |db: &str| Target::explicit("localhost", 5432, "u", db);
        let pitr = |require| {
            EngineChoice::PgBackRest(PitrSettings {
                stanza: "main".into(),
                require,
            })
        };
        assert_eq!(config.engine_for(&t("app")), pitr(false));
        // A rule naming only the engine keeps the default policy.
        assert_eq!(config.policy_for(&t("app")), Policy::Confirm);
        assert_eq!(config.engine_for(&t("big")), pitr(true));
        assert_eq!(config.policy_for(&t("big")), Policy::Protect);
        assert_eq!(config.engine_for(&t("other")), EngineChoice::PgDump);

        for (text, expected) in [
            ("engine = \"pgbackrest\"\n", "needs `stanza`"),
            ("stanza = \"main\"\n", "`stanza` belongs to engine"),
            ("require_pitr = true\n", "`require_pitr` belongs to engine"),
            ("engine = \"barman\"\n", "unknown engine `barman`"),
            (
                "engine = \"pgbackrest\"\nstanza = \"m\"\nstansa = \"x\"\n",
                "stansa",
            ),
        ] {
            let err = config_error(&format!("[[database]]\ndbname = \"x\"\n{text}"));
            assert!(err.contains(expected), "{text:?}: {err}");
        }
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
