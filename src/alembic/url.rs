//! Which database an alembic command will migrate, found the way most
//! projects' env.py finds it, in this order: `DBGUARD_DATABASE_URL`, the
//! dbguard config's `[alembic] database_url`, `DATABASE_URL`, then
//! `sqlalchemy.url` in alembic's ini file (the file from `-c`,
//! `ALEMBIC_CONFIG` or `alembic.ini`; the section from `-n`, default
//! `alembic`). The ini file is read as Python's configparser reads it,
//! with `%(here)s` and the other `%(name)s` interpolations alembic enables.
//!
//! Everything here is a pure function of its inputs; `resolve_target` and
//! `resolve_connection` feed them the process state.

use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};

use crate::Context;
use crate::alembic::args::AlembicArgs;
use crate::config::Config;
use crate::target::{ConnectionArgs, Target, redact, sqlalchemy_to_libpq};

/// The explicit override, read before anything else.
pub use crate::env::DATABASE_URL as DATABASE_URL_ENV;

/// Where the URL was found, for messages and the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlOrigin {
    DbguardEnv,
    DbguardConfig(PathBuf),
    DatabaseUrlEnv,
    Ini { file: PathBuf, section: String },
}

impl std::fmt::Display for UrlOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UrlOrigin::DbguardEnv => write!(f, "${DATABASE_URL_ENV}"),
            UrlOrigin::DbguardConfig(p) => write!(f, "[alembic] database_url in {}", p.display()),
            UrlOrigin::DatabaseUrlEnv => f.write_str("$DATABASE_URL"),
            UrlOrigin::Ini { file, section } => {
                write!(f, "sqlalchemy.url in [{section}] of {}", file.display())
            }
        }
    }
}

/// A SQLAlchemy URL and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundUrl {
    pub url: String,
    pub origin: UrlOrigin,
}

/// Why no URL was found: the places looked at, for the refusal message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoUrl {
    pub ini: PathBuf,
    pub section: String,
    /// The ini file exists but could not be read or parsed.
    pub ini_problem: Option<String>,
}

impl std::fmt::Display for NoUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "no database URL: {DATABASE_URL_ENV}, [alembic] database_url in .dbguard.toml and DATABASE_URL are unset, and "
        )?;
        match &self.ini_problem {
            Some(p) => write!(f, "{} cannot be read ({p})", self.ini.display())?,
            None => write!(
                f,
                "{} has no sqlalchemy.url in [{}]",
                self.ini.display(),
                self.section
            )?,
        }
        write!(
            f,
            "; set {DATABASE_URL_ENV}=postgresql://user@host/dbname to the database this command migrates"
        )
    }
}

/// The ini file alembic reads: the last `-c` that is not a pyproject.toml,
/// else `ALEMBIC_CONFIG`, else `alembic.ini`, relative to `cwd`.
pub fn ini_path(args: &AlembicArgs, alembic_config_env: Option<&OsStr>, cwd: &Path) -> PathBuf {
    let named = args
        .configs
        .iter()
        .rev()
        .find(|c| Path::new(c).extension().is_none_or(|e| e != "toml"))
        .map(PathBuf::from)
        .or_else(|| {
            alembic_config_env
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from("alembic.ini"));
    cwd.join(named)
}

/// The ini section alembic reads its main options from.
pub fn ini_section(args: &AlembicArgs) -> String {
    args.name.as_deref().map_or_else(
        || "alembic".to_owned(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Finds the URL. `env` reads the environment; `config_url` is the dbguard
/// config's value with its file; `read_ini` returns the ini file's text
/// (`Ok(None)` when it does not exist).
pub fn find_url(
    args: &AlembicArgs,
    env: impl Fn(&str) -> Option<String>,
    config_url: Option<(String, PathBuf)>,
    cwd: &Path,
    read_ini: impl Fn(&Path) -> std::io::Result<Option<String>>,
) -> Result<FoundUrl, NoUrl> {
    let set = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    if let Some(url) = set(DATABASE_URL_ENV) {
        return Ok(FoundUrl {
            url,
            origin: UrlOrigin::DbguardEnv,
        });
    }
    if let Some((url, file)) = config_url.filter(|(u, _)| !u.trim().is_empty()) {
        return Ok(FoundUrl {
            url,
            origin: UrlOrigin::DbguardConfig(file),
        });
    }
    if let Some(url) = set("DATABASE_URL") {
        return Ok(FoundUrl {
            url,
            origin: UrlOrigin::DatabaseUrlEnv,
        });
    }
    let alembic_config = env("ALEMBIC_CONFIG");
    let ini = ini_path(args, alembic_config.as_deref().map(OsStr::new), cwd);
    let section = ini_section(args);
    let no_url = |problem: Option<String>| NoUrl {
        ini: ini.clone(),
        section: section.clone(),
        ini_problem: problem,
    };
    let text = match read_ini(&ini) {
        Ok(Some(text)) => text,
        Ok(None) => return Err(no_url(Some("no such file".into()))),
        Err(e) => return Err(no_url(Some(e.to_string()))),
    };
    let here = ini
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let parsed = Ini::parse(&text).map_err(|e| no_url(Some(e)))?;
    match parsed.get(&section, "sqlalchemy.url", &[("here", &here)]) {
        Ok(Some(url)) if !url.trim().is_empty() => Ok(FoundUrl {
            url: url.trim().to_owned(),
            origin: UrlOrigin::Ini { file: ini, section },
        }),
        Ok(_) => Err(no_url(None)),
        Err(e) => Err(no_url(Some(e))),
    }
}

/// An ini file as configparser reads it: sections of `key = value` (or
/// `key: value`), keys case-insensitive, `#`/`;` comment lines, indented
/// continuation lines, and a `[DEFAULT]` section every other one inherits.
#[derive(Debug, Default)]
pub struct Ini {
    sections: Vec<(String, Vec<(String, String)>)>,
}

/// configparser's limit on nested `%(name)s` references.
const MAX_INTERPOLATION_DEPTH: usize = 10;

impl Ini {
    pub fn parse(text: &str) -> Result<Ini, String> {
        let mut ini = Ini::default();
        // The key whose value an indented line continues.
        let mut open_key: Option<(usize, usize)> = None;
        for (number, raw) in text.lines().enumerate() {
            let trimmed = raw.trim();
            let indented = raw.starts_with([' ', '\t']);
            if trimmed.starts_with('#') || trimmed.starts_with(';') {
                continue;
            }
            if trimmed.is_empty() {
                continue;
            }
            if indented && let Some((s, k)) = open_key {
                let value = &mut ini.sections[s].1[k].1;
                if !value.is_empty() {
                    value.push('\n');
                }
                value.push_str(trimmed);
                continue;
            }
            if let Some(name) = trimmed.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
                ini.sections.push((name.to_owned(), Vec::new()));
                open_key = None;
                continue;
            }
            let Some(at) = trimmed.find(['=', ':']) else {
                return Err(format!("line {}: not `key = value`", number + 1));
            };
            let Some(s) = ini.sections.len().checked_sub(1) else {
                return Err(format!("line {}: a key before any [section]", number + 1));
            };
            let key = trimmed[..at].trim().to_lowercase();
            let value = trimmed[at + 1..].trim().to_owned();
            let entries = &mut ini.sections[s].1;
            let k = match entries.iter().position(|(k2, _)| *k2 == key) {
                Some(k) => {
                    entries[k].1 = value;
                    k
                }
                None => {
                    entries.push((key, value));
                    entries.len() - 1
                }
            };
            open_key = Some((s, k));
        }
        Ok(ini)
    }

    fn raw(&self, section: &str, key: &str) -> Option<&str> {
        self.sections
            .iter()
            .filter(|(name, _)| name == section)
            .flat_map(|(_, entries)| entries.iter())
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `key` in `section` (falling back to `[DEFAULT]`, then `defaults`),
    /// interpolated. `Ok(None)` when the section or the key is missing.
    pub fn get(
        &self,
        section: &str,
        key: &str,
        defaults: &[(&str, &str)],
    ) -> Result<Option<String>, String> {
        if !self.sections.iter().any(|(name, _)| name == section) {
            return Ok(None);
        }
        let lookup = |name: &str| -> Option<String> {
            let name = name.to_lowercase();
            self.raw(section, &name)
                .or_else(|| self.raw("DEFAULT", &name))
                .or_else(|| defaults.iter().find(|(k, _)| *k == name).map(|(_, v)| *v))
                .map(str::to_owned)
        };
        let Some(value) = lookup(key) else {
            return Ok(None);
        };
        interpolate(&value, &lookup, 0).map(Some)
    }
}

/// configparser's BasicInterpolation: `%(name)s` is replaced by `name`'s
/// value (itself interpolated), `%%` by `%`.
fn interpolate(
    value: &str,
    lookup: &impl Fn(&str) -> Option<String>,
    depth: usize,
) -> Result<String, String> {
    if depth > MAX_INTERPOLATION_DEPTH {
        return Err("interpolation nested too deeply".into());
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('%') {
            out.push('%');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('(') {
            let Some((name, tail)) = body.split_once(")s") else {
                return Err(format!("bad interpolation in {value:?}"));
            };
            let replacement =
                lookup(name).ok_or_else(|| format!("%({name})s refers to nothing"))?;
            out.push_str(&interpolate(&replacement, lookup, depth + 1)?);
            rest = tail;
        } else {
            return Err(format!("'%' must be followed by '%' or '(' in {value:?}"));
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The database alembic will migrate, as a libpq target; `Err` is the
/// refusal reason, saying how to name one.
pub fn resolve_target(
    ctx: &Context,
    args: &AlembicArgs,
    config: &Config,
) -> Result<Target, String> {
    resolve_connection(ctx, args, config).map(|(_, target)| target)
}

/// The database alembic will migrate, as connection arguments (a libpq
/// URI, password included, for tools dbguard runs itself) and as the
/// resolved target.
pub fn resolve_connection(
    ctx: &Context,
    args: &AlembicArgs,
    config: &Config,
) -> Result<(ConnectionArgs, Target), String> {
    let env = |name: &str| ctx.var(name).map(|v| v.to_string_lossy().into_owned());
    let config_url = config.file.alembic.database_url.clone().map(|u| {
        (
            u,
            config
                .source
                .clone()
                .unwrap_or_else(|| PathBuf::from(".dbguard.toml")),
        )
    });
    let cwd = ctx.cwd.clone().unwrap_or_else(|| PathBuf::from("/"));
    let read_ini = |path: &Path| match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    };
    let FoundUrl { url, origin } =
        find_url(args, env, config_url, &cwd, read_ini).map_err(|e| e.to_string())?;
    let uri = sqlalchemy_to_libpq(&url)
        .map_err(|e| format!("the database URL from {origin} is unusable: {e}"))?;
    let conn = ConnectionArgs {
        dbname: Some(uri),
        ..ConnectionArgs::default()
    };
    let target = Target::resolve(&conn, ctx)
        .map_err(|e| redact(&format!("the database URL from {origin} is unusable: {e}")))?;
    Ok((conn, target))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn args(list: &[&str]) -> AlembicArgs {
        let list: Vec<OsString> = list.iter().map(OsString::from).collect();
        AlembicArgs::parse(&list)
    }

    const INI: &str = "\
# comment
[DEFAULT]
driver = psycopg2

[alembic]
script_location = %(here)s/migrations
sqlalchemy.url = postgresql+%(driver)s://app@db/%(name)s
name = shop

[tenant]
SQLAlchemy.URL: postgresql://t@db/tenant
  ; a comment line inside a section

[percent]
sqlalchemy.url = postgresql://u:p%%40ss@db/x
";

    fn env_of<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    fn ini_file(text: &'static str) -> impl Fn(&Path) -> std::io::Result<Option<String>> {
        move |p| {
            Ok((p
                .file_name()
                .is_some_and(|n| n == "alembic.ini" || n == "other.ini"))
            .then(|| text.to_owned()))
        }
    }

    #[test]
    fn resolution_order() {
        let cwd = Path::new("/proj");
        let config = || {
            Some((
                "postgresql://cfg@h/c".to_owned(),
                PathBuf::from("/proj/.dbguard.toml"),
            ))
        };
        let all = [
            ("DBGUARD_DATABASE_URL", "postgresql://dbg@h/d"),
            ("DATABASE_URL", "postgresql://env@h/e"),
        ];
        let a = args(&["downgrade", "-1"]);
        let found = find_url(&a, env_of(&all), config(), cwd, ini_file(INI)).unwrap();
        assert_eq!(found.origin, UrlOrigin::DbguardEnv);
        assert_eq!(found.url, "postgresql://dbg@h/d");

        let found = find_url(&a, env_of(&all[1..]), config(), cwd, ini_file(INI)).unwrap();
        assert_eq!(found.url, "postgresql://cfg@h/c");

        let found = find_url(&a, env_of(&all[1..]), None, cwd, ini_file(INI)).unwrap();
        assert_eq!(found.origin, UrlOrigin::DatabaseUrlEnv);

        // An empty variable counts as unset, as in env.py's `or`.
        let empty = [("DATABASE_URL", ""), ("DBGUARD_DATABASE_URL", " ")];
        let found = find_url(&a, env_of(&empty), None, cwd, ini_file(INI)).unwrap();
        assert_eq!(found.url, "postgresql+psycopg2://app@db/shop");
        assert_eq!(
            found.origin,
            UrlOrigin::Ini {
                file: PathBuf::from("/proj/alembic.ini"),
                section: "alembic".into()
            }
        );
    }

    #[test]
    fn ini_file_and_section_follow_alembic() {
        let cwd = Path::new("/proj");
        let none = env_of(&[]);
        let found = find_url(
            &args(&["-n", "tenant", "downgrade", "-1"]),
            &none,
            None,
            cwd,
            ini_file(INI),
        )
        .unwrap();
        assert_eq!(found.url, "postgresql://t@db/tenant");

        let found = find_url(
            &args(&["downgrade", "-1"]),
            env_of(&[("ALEMBIC_CONFIG", "sub/other.ini")]),
            None,
            cwd,
            ini_file(INI),
        )
        .unwrap();
        assert_eq!(
            found.origin,
            UrlOrigin::Ini {
                file: PathBuf::from("/proj/sub/other.ini"),
                section: "alembic".into()
            }
        );
        // -c wins over ALEMBIC_CONFIG; a pyproject.toml is not the ini file.
        let a = args(&[
            "-c",
            "/etc/app/alembic.ini",
            "-c",
            "pyproject.toml",
            "downgrade",
            "base",
        ]);
        assert_eq!(
            ini_path(&a, Some(OsStr::new("x.ini")), cwd),
            PathBuf::from("/etc/app/alembic.ini")
        );

        let found = find_url(
            &args(&["-n", "percent", "downgrade", "-1"]),
            &none,
            None,
            cwd,
            ini_file(INI),
        )
        .unwrap();
        assert_eq!(found.url, "postgresql://u:p%40ss@db/x");
    }

    #[test]
    fn here_is_the_ini_files_directory() {
        let ini = Ini::parse(INI).unwrap();
        assert_eq!(
            ini.get("alembic", "script_location", &[("here", "/proj")])
                .unwrap(),
            Some("/proj/migrations".into())
        );
        assert_eq!(ini.get("missing", "x", &[]).unwrap(), None);
        let text = "[alembic]\nsqlalchemy.url = postgresql:///%(here)s\n";
        let found = find_url(
            &args(&["downgrade", "-1"]),
            env_of(&[]),
            None,
            Path::new("/a/b"),
            |_: &Path| Ok(Some(text.to_owned())),
        )
        .unwrap();
        assert_eq!(found.url, "postgresql:////a/b");
    }

    #[test]
    fn continuation_lines_and_bad_files() {
        let ini = Ini::parse("[s]\nkey =\n  first\n  second\nother = 1\n").unwrap();
        assert_eq!(
            ini.get("s", "key", &[]).unwrap(),
            Some("first\nsecond".into())
        );
        assert_eq!(ini.get("s", "other", &[]).unwrap(), Some("1".into()));
        assert!(Ini::parse("key = before any section\n").is_err());
        assert!(Ini::parse("[s]\njust words\n").is_err());
        let bad = Ini::parse("[s]\nurl = %(nothing)s\n").unwrap();
        assert!(bad.get("s", "url", &[]).is_err());
        let looped = Ini::parse("[s]\na = %(b)s\nb = %(a)s\n").unwrap();
        assert!(looped.get("s", "a", &[]).is_err());
    }

    #[test]
    fn no_url_says_where_it_looked_and_how_to_set_one() {
        let cwd = Path::new("/proj");
        let none = env_of(&[]);
        let missing = find_url(&args(&["downgrade", "-1"]), &none, None, cwd, |_: &Path| {
            Ok(None)
        })
        .unwrap_err();
        let text = missing.to_string();
        assert!(
            text.contains("/proj/alembic.ini cannot be read (no such file)"),
            "{text}"
        );
        assert!(text.contains("set DBGUARD_DATABASE_URL="), "{text}");

        let empty = find_url(&args(&["downgrade", "-1"]), &none, None, cwd, |_: &Path| {
            Ok(Some("[alembic]\nsqlalchemy.url =\n".to_owned()))
        })
        .unwrap_err();
        assert!(
            empty
                .to_string()
                .contains("has no sqlalchemy.url in [alembic]"),
            "{empty}"
        );
    }
}
