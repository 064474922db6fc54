//! The real PostgreSQL client programs dbguard runs itself — psql for helper
//! queries, pg_dump, pg_restore — and the helper queries.
//!
//! They are found by the one PATH walk (`realtool`): an explicit
//! `DBGUARD_REAL_<NAME>` wins, otherwise the first executable on PATH that
//! is not this binary, not a link to a dbguard, and not in a shim directory,
//! so the guard and the toolbox never disagree about which psql is real and
//! report a bad override the same way. Children get the context's
//! environment (so `.pgpass`, `PGSERVICE`, SSL settings apply), the target's
//! conninfo on argv and its password, if any, in `PGPASSWORD`.
//!
//! On Debian the programs on PATH are links to `pg_wrapper`, a Perl script
//! that costs about as much as everything else the guard does before it
//! picks the versioned binary. dbguard's own children skip it and run the
//! newest `/usr/lib/postgresql/<version>/bin/<program>` directly (a newer
//! pg_dump dumps every older server), unless `PGCLUSTER` asks the wrapper
//! for a particular cluster. The tool a shim execs for the user is never
//! changed: it stays what the shell would have run.

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::unistd::{AccessFlags, access};

use crate::realtool::{self, Found, Source};
use crate::target::{ServerIdentity, Target};
use crate::{Context, Error};

/// Where Debian installs each PostgreSQL version's programs.
const DEBIAN_VERSIONS_DIR: &str = "/usr/lib/postgresql";

/// Seconds a connection attempt may take when the user set no
/// `PGCONNECT_TIMEOUT`: an unreachable server should fail in one clear line,
/// not hang.
const DEFAULT_CONNECT_TIMEOUT: &str = "10";

/// Paths of the client programs, resolved once per command.
#[derive(Debug, Clone)]
pub struct PgTools {
    pub psql: PathBuf,
    pub pg_dump: PathBuf,
    pub pg_restore: PathBuf,
    /// The environment every child starts from.
    env: Vec<(std::ffi::OsString, std::ffi::OsString)>,
    /// How long a child may wait for a table lock, in milliseconds; `None`
    /// waits as long as the server lets it. Set inside a live psql session,
    /// whose own open transaction may hold the very locks a second
    /// connection would wait for forever.
    lock_timeout_ms: Option<u32>,
}

impl PgTools {
    pub fn resolve(ctx: &Context) -> Result<PgTools, Error> {
        let past_wrapper = |path: PathBuf, name: &str| {
            past_pg_wrapper(
                path,
                name,
                Path::new(DEBIAN_VERSIONS_DIR),
                ctx.var("PGCLUSTER").is_some(),
            )
        };
        Ok(PgTools {
            psql: find_client_past_wrapper("psql", ctx, &past_wrapper)?,
            pg_dump: find_client_past_wrapper("pg_dump", ctx, &past_wrapper)?,
            pg_restore: find_client_past_wrapper("pg_restore", ctx, &past_wrapper)?,
            env: ctx.env.clone(),
            lock_timeout_ms: None,
        })
    }

    /// The tools for a guard running inside psql (`shim::live`): `psql` is
    /// the running psql itself, which the shim's rules would skip as
    /// "ourselves".
    pub fn beside_psql(ctx: &Context, psql: PathBuf) -> Result<PgTools, Error> {
        Ok(PgTools {
            psql,
            pg_dump: find_client("pg_dump", ctx)?,
            pg_restore: find_client("pg_restore", ctx)?,
            env: ctx.env.clone(),
            lock_timeout_ms: None,
        })
    }

    /// The same tools, each child giving up on a table lock after `ms`.
    pub fn with_lock_timeout(mut self, ms: u32) -> PgTools {
        self.lock_timeout_ms = Some(ms);
        self
    }

    pub fn lock_timeout_ms(&self) -> Option<u32> {
        self.lock_timeout_ms
    }

    /// A command for `program` with the context's environment, a default
    /// connect timeout and the target's password.
    pub fn command(&self, program: &Path, target: &Target) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_clear().envs(self.env.iter().map(|(k, v)| (k, v)));
        if !self.env.iter().any(|(k, _)| k == "PGCONNECT_TIMEOUT") {
            cmd.env("PGCONNECT_TIMEOUT", DEFAULT_CONNECT_TIMEOUT);
        }
        if !self.env.iter().any(|(k, _)| k == "PGAPPNAME") {
            cmd.env("PGAPPNAME", "dbguard");
        }
        if let Some(ms) = self.lock_timeout_ms {
            // Appended, so the user's own PGOPTIONS still apply.
            let mut options = self
                .env
                .iter()
                .find(|(k, _)| k == "PGOPTIONS")
                .map(|(_, v)| v.to_string_lossy().into_owned())
                .unwrap_or_default();
            options.push_str(&format!(" -c lock_timeout={ms}"));
            cmd.env("PGOPTIONS", options.trim_start());
        }
        target.apply_env(&mut cmd);
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Runs one query with the real psql and returns its rows, each a list
    /// of fields.
    pub fn query(&self, target: &Target, sql: &str) -> Result<Vec<Vec<String>>, QueryError> {
        self.script(target, &format!("{sql};\n"))
    }

    /// Runs a psql script (fed on stdin, so meta-commands like `\if` work)
    /// and returns every row it prints. `-w`: never prompt for a password
    /// (there is nobody to answer on a pipe); `-X`: the user's psqlrc must
    /// not change the output; rows end in NUL and fields are split by 0x1F,
    /// so values may hold newlines.
    pub fn script(&self, target: &Target, script: &str) -> Result<Vec<Vec<String>>, QueryError> {
        let text = self.script_output(target, script)?;
        Ok(text
            .split('\0')
            .map(|r| r.trim_start_matches('\n'))
            .filter(|r| !r.is_empty())
            .map(|r| r.split('\x1f').map(str::to_owned).collect())
            .collect())
    }

    /// The planner's estimate for each statement: `EXPLAIN (FORMAT JSON)`
    /// of each, in one psql session that goes on after an error. Returns
    /// the statements that could be explained with their JSON plans.
    pub fn explain_all(
        &self,
        target: &Target,
        statements: &[String],
    ) -> Result<Vec<(String, String)>, QueryError> {
        const MARK: &str = "@@dbguard-plan ";
        let mut script = String::from("\\set ON_ERROR_STOP 0\n");
        for (i, sql) in statements.iter().enumerate() {
            script.push_str(&format!("\\echo '{MARK}{i}'\n{sql};\n"));
        }
        let text = self.script_output(target, &script)?;
        let mut out = Vec::new();
        for chunk in text.split(MARK).skip(1) {
            let (head, plan) = chunk.split_once('\n').unwrap_or((chunk, ""));
            let plan = plan.trim_matches(|c: char| c == '\0' || c.is_whitespace());
            if let Some(sql) = head
                .trim()
                .parse::<usize>()
                .ok()
                .and_then(|i| statements.get(i))
                && !plan.is_empty()
            {
                out.push((sql.clone(), plan.to_owned()));
            }
        }
        Ok(out)
    }

    /// What a psql script prints on stdout (see `script`).
    fn script_output(&self, target: &Target, script: &str) -> Result<String, QueryError> {
        let mut cmd = self.command(&self.psql, target);
        cmd.args(["-X", "-w", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-0"])
            .args(["-F", "\x1f"])
            .args(target.libpq_args())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| QueryError::Spawn(self.psql.clone(), e))?;
        if let Some(mut stdin) = child.stdin.take() {
            // A failed write means psql exited early; its status says why.
            let _ = stdin.write_all(script.as_bytes());
        }
        let out = child
            .wait_with_output()
            .map_err(|e| QueryError::Spawn(self.psql.clone(), e))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            return Err(QueryError::Failed {
                connection: out.status.code() == Some(2),
                detail: first_error_line(&stderr),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The connection check and every fact recorded with a backup, in one
    /// psql session: who and where we are, size, version, tables with row
    /// estimates, and the alembic revision when the table exists. A small
    /// table the planner knows nothing about (never analysed: -1, or 0
    /// rows in pages that exist) is counted instead, so a fresh table
    /// full of rows is not shown as empty.
    pub fn inspect(&self, target: &Target) -> Result<(ServerIdentity, DatabaseFacts), Error> {
        self.inspect_with(target, None)
            .map(|(id, facts, _)| (id, facts))
    }

    /// `inspect`, and one more query in the same psql session (one process
    /// start and one connection less than running it apart). Its rows, or
    /// its error message, come third; its failure does not fail the rest.
    pub fn inspect_with(
        &self,
        target: &Target,
        extra: Option<&str>,
    ) -> Result<(ServerIdentity, DatabaseFacts, ExtraRows), Error> {
        const SCRIPT: &str = "\
select 'id', current_database(), session_user, current_setting('port'),
       coalesce(host(inet_server_addr()), ''), pg_database_size(current_database()),
       current_setting('server_version');
select 'table', n.nspname, c.relname,
       case when c.relkind = 'r' and (c.reltuples < 0 or (c.reltuples = 0 and c.relpages > 0))
                 and pg_relation_size(c.oid) < 8388608 and has_table_privilege(c.oid, 'SELECT')
            then (xpath('/row/c/text()', query_to_xml(format('select count(*) as c from %s', c.oid::regclass), false, true, '')))[1]::text::bigint
            else c.reltuples::bigint end
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
 where c.relkind in ('r', 'p')
   and n.nspname not in ('pg_catalog', 'information_schema')
   and n.nspname not like 'pg_toast%' and n.nspname not like 'pg_temp%'
 order by 2, 3;
select to_regclass('alembic_version') is not null as dbguard_has_alembic \\gset
\\if :dbguard_has_alembic
select 'alembic', version_num from alembic_version order by 2;
\\endif
";
        let script = match extra {
            None => SCRIPT.to_owned(),
            // Last, with errors no longer fatal: psql's ERROR and
            // LAST_ERROR_MESSAGE say whether and why it failed.
            Some(sql) => format!(
                "{SCRIPT}\\set ON_ERROR_STOP off\nselect 'extra', x.* from ({sql}) x;\n\\if :ERROR\nselect 'extra_failed', :'LAST_ERROR_MESSAGE';\n\\endif\n"
            ),
        };
        let rows = self
            .script(target, &script)
            .map_err(|e| e.into_error(target))?;
        let head = rows
            .iter()
            .find(|r| r.len() == 7 && r[0] == "id")
            .ok_or_else(|| Error::Unreachable {
                target: target.to_string(),
                detail: "psql returned no answer to the connection check".into(),
            })?;
        let id = ServerIdentity {
            dbname: head[1].clone(),
            user: head[2].clone(),
            port: head[3].parse().unwrap_or(target.port),
            address: Some(head[4].clone()).filter(|a| !a.is_empty()),
        };
        let tables = rows
            .iter()
            .filter(|r| r.len() == 4 && r[0] == "table")
            .map(|r| TableFact {
                schema: r[1].clone(),
                name: r[2].clone(),
                // -1: never vacuumed or analysed, so nobody knows yet.
                rows_estimate: r[3].parse::<i64>().ok().filter(|n| *n >= 0),
            })
            .collect();
        // Several heads are possible after a branch; join them.
        let revisions: Vec<&str> = rows
            .iter()
            .filter(|r| r.len() == 2 && r[0] == "alembic")
            .map(|r| r[1].as_str())
            .collect();
        let facts = DatabaseFacts {
            size_bytes: head[5].parse().unwrap_or(0),
            server_version: head[6].clone(),
            tables,
            alembic_revision: (!revisions.is_empty()).then(|| revisions.join(",")),
        };
        let extra_rows = match rows.iter().find(|r| r.len() == 2 && r[0] == "extra_failed") {
            Some(failed) => Err(crate::target::redact(&failed[1])),
            None => Ok(rows
                .iter()
                .filter(|r| r.first().is_some_and(|f| f == "extra"))
                .map(|r| r[1..].to_vec())
                .collect()),
        };
        Ok((id, facts, extra_rows))
    }

    /// Exact row counts for the given tables (`None` where the table is missing).
    pub fn count_rows(
        &self,
        target: &Target,
        tables: &[(String, String)],
    ) -> Result<Vec<Option<i64>>, Error> {
        if tables.is_empty() {
            return Ok(Vec::new());
        }
        let qualified: Vec<String> = tables
            .iter()
            .map(|(schema, name)| format!("{}.{}", quote_ident(schema), quote_ident(name)))
            .collect();
        // First which tables exist, so a missing one cannot abort the counts.
        let exists_sql = format!(
            "select {}",
            qualified
                .iter()
                .map(|q| format!("to_regclass({}) is not null", quote_literal(q)))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let exists = self
            .query(target, &exists_sql)
            .map_err(|e| e.into_error(target))?
            .into_iter()
            .next()
            .unwrap_or_default();
        let present: Vec<usize> = (0..tables.len())
            .filter(|&i| exists.get(i).is_some_and(|v| v == "t"))
            .collect();
        let mut counts = vec![None; tables.len()];
        if present.is_empty() {
            return Ok(counts);
        }
        let count_sql = format!(
            "select {}",
            present
                .iter()
                .map(|&i| format!("(select count(*) from {})", qualified[i]))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let row = self
            .query(target, &count_sql)
            .map_err(|e| e.into_error(target))?
            .into_iter()
            .next()
            .unwrap_or_default();
        for (slot, &i) in present.iter().enumerate() {
            counts[i] = row.get(slot).and_then(|v| v.parse().ok());
        }
        Ok(counts)
    }

    /// `pg_dump --version`, e.g. "pg_dump (PostgreSQL) 15.18 (Debian ...)".
    pub fn pg_dump_version(&self) -> Result<String, Error> {
        let out = Command::new(&self.pg_dump)
            .arg("--version")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Error::Exec {
                program: self.pg_dump.clone(),
                source: e,
            })?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }
}

/// The rows of a helper query run beside `inspect`, or why it failed.
pub type ExtraRows = Result<Vec<Vec<String>>, String>;

/// What the catalog says about a database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseFacts {
    pub size_bytes: u64,
    pub server_version: String,
    pub tables: Vec<TableFact>,
    pub alembic_revision: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableFact {
    pub schema: String,
    pub name: String,
    pub rows_estimate: Option<i64>,
}

/// A database as the server identifies it: the cluster's
/// `system_identifier` (from `pg_control_system()`, readable by every role)
/// and the database name. Host spellings (`localhost`, `127.0.0.1`, a
/// socket directory) and second ports cannot make one database look like
/// two.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub system_identifier: String,
    pub database: String,
}

/// Asks the server who it is.
pub fn identify(tools: &PgTools, target: &Target) -> Result<Identity, String> {
    let rows = tools
        .query(
            target,
            "select system_identifier::text, current_database() from pg_control_system()",
        )
        .map_err(|e| match e {
            QueryError::Failed { detail, .. } => detail,
            QueryError::Spawn(p, e) => format!("{}: {e}", p.display()),
        })?;
    match rows.first().map(Vec::as_slice) {
        Some([sysid, db, ..]) => Ok(Identity {
            system_identifier: sysid.clone(),
            database: db.clone(),
        }),
        _ => Err("the server did not say who it is".into()),
    }
}

/// Why a helper query failed.
#[derive(Debug)]
pub enum QueryError {
    Spawn(PathBuf, std::io::Error),
    /// psql exits 2 when the connection itself failed.
    Failed {
        connection: bool,
        detail: String,
    },
}

impl QueryError {
    pub fn into_error(self, target: &Target) -> Error {
        match self {
            QueryError::Spawn(program, source) => Error::Exec { program, source },
            QueryError::Failed {
                connection: true,
                detail,
            } => Error::Unreachable {
                target: target.to_string(),
                detail,
            },
            QueryError::Failed { detail, .. } => Error::Failed {
                message: format!("query on {target} failed: {detail}"),
                code: crate::error::exit::ERROR,
            },
        }
    }
}

/// The first meaningful line of a libpq tool's stderr, without the
/// `psql: error: ` prefix, passwords removed.
pub fn first_error_line(stderr: &str) -> String {
    let line = stderr
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("no error message");
    let line = [
        "psql: error: ",
        "pg_dump: error: ",
        "pg_restore: error: ",
        "error: ",
    ]
    .iter()
    .find_map(|p| line.strip_prefix(p))
    .unwrap_or(line);
    crate::target::redact(line)
}

pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// `find_client`, then past Debian's wrapper when PATH led to it (an
/// explicit `DBGUARD_REAL_<NAME>` is used as given).
fn find_client_past_wrapper(
    name: &str,
    ctx: &Context,
    past_wrapper: &dyn Fn(PathBuf, &str) -> PathBuf,
) -> Result<PathBuf, Error> {
    let Found { path, source } = realtool::find_client(name, ctx)?;
    Ok(match source {
        Source::Override => path,
        Source::Path => past_wrapper(path, name),
    })
}

/// When `found` is Debian's `pg_wrapper` (a link to
/// `.../postgresql-common/pg_wrapper`), the newest versioned `name` under
/// `versions_dir` (`<versions_dir>/<version>/bin/<name>`); otherwise, or
/// when `pgcluster` is set (the user chose a cluster through the wrapper)
/// or no versioned program exists, `found` itself.
pub fn past_pg_wrapper(
    found: PathBuf,
    name: &str,
    versions_dir: &Path,
    pgcluster: bool,
) -> PathBuf {
    if pgcluster || !is_pg_wrapper(&found) {
        return found;
    }
    let Ok(entries) = fs::read_dir(versions_dir) else {
        return found;
    };
    entries
        .flatten()
        .filter_map(|e| {
            let version = version_key(e.file_name().to_str()?)?;
            let program = e.path().join("bin").join(name);
            (is_executable(&program) && !is_pg_wrapper(&program)).then_some((version, program))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map_or(found, |(_, program)| program)
}

fn is_pg_wrapper(path: &Path) -> bool {
    fs::canonicalize(path).is_ok_and(|target| {
        target.file_name() == Some(OsStr::new("pg_wrapper"))
            && target
                .parent()
                .and_then(Path::file_name)
                .is_some_and(|dir| dir == "postgresql-common")
    })
}

/// `"9.6"` → `[9, 6]`, `"16"` → `[16]`, so versions compare as numbers;
/// `None` for anything that is not a version.
fn version_key(name: &str) -> Option<Vec<u32>> {
    name.split('.').map(|part| part.parse().ok()).collect()
}

/// A client program, found as the shims find the real psql.
pub fn find_client(name: &str, ctx: &Context) -> Result<PathBuf, Error> {
    realtool::find_client(name, ctx).map(|found| found.path)
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file()) && access(path, AccessFlags::X_OK).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::realtool::SHIM_DIR_MARKER;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn finds_clients_behind_shim_directories() {
        let root = tempfile::tempdir().unwrap();
        let shims = root.path().join("shims");
        let real = root.path().join("real");
        fs::create_dir(&shims).unwrap();
        fs::create_dir(&real).unwrap();
        fs::write(shims.join(SHIM_DIR_MARKER), "").unwrap();
        for dir in [&shims, &real] {
            let p = dir.join("pg_dump");
            fs::write(&p, "#!/bin/sh\n").unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        }
        let path = format!("{}:{}", shims.display(), real.display());
        let ctx = Context::for_test(&["dbguard"], &[("PATH", &path)]);
        assert_eq!(find_client("pg_dump", &ctx).unwrap(), real.join("pg_dump"));
        let err = find_client("pg_restore", &ctx).unwrap_err();
        assert!(err.to_string().contains("DBGUARD_REAL_PG_RESTORE"), "{err}");
    }

    fn executable_file(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn debian_pg_wrapper_gives_way_to_the_newest_versioned_program() {
        let root = tempfile::tempdir().unwrap();
        let wrapper = root.path().join("share/postgresql-common/pg_wrapper");
        executable_file(&wrapper, "#!/usr/bin/perl\n");
        let bin = root.path().join("bin");
        fs::create_dir(&bin).unwrap();
        std::os::unix::fs::symlink(&wrapper, bin.join("pg_dump")).unwrap();
        let versions = root.path().join("lib/postgresql");
        for v in ["9.6", "13", "16", "not-a-version"] {
            executable_file(&versions.join(v).join("bin/pg_dump"), "#!/bin/sh\n");
        }
        // 17 is installed without its client programs.
        fs::create_dir_all(versions.join("17/bin")).unwrap();
        let through_path = bin.join("pg_dump");

        assert_eq!(
            past_pg_wrapper(through_path.clone(), "pg_dump", &versions, false),
            versions.join("16/bin/pg_dump"),
            "numeric order: 16 after 9.6 and 13"
        );
        assert_eq!(
            past_pg_wrapper(through_path.clone(), "pg_dump", &versions, true),
            through_path,
            "PGCLUSTER picks through the wrapper"
        );
        assert_eq!(
            past_pg_wrapper(through_path.clone(), "pg_restore", &versions, false),
            through_path,
            "no versioned pg_restore: keep the wrapper"
        );
        let plain = versions.join("13/bin/pg_dump");
        assert_eq!(
            past_pg_wrapper(plain.clone(), "pg_dump", &versions, false),
            plain,
            "not the wrapper: unchanged"
        );
        let missing = root.path().join("nowhere");
        assert_eq!(
            past_pg_wrapper(through_path.clone(), "pg_dump", &missing, false),
            through_path
        );
    }

    #[test]
    fn error_lines_lose_prefix_and_password() {
        assert_eq!(
            first_error_line(
                "\npsql: error: connection to server at \"h\" failed: password=abc rejected\nmore\n"
            ),
            "connection to server at \"h\" failed: password=*** rejected"
        );
    }
}
