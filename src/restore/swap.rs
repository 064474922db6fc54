//! The whole-database restore by swap (DESIGN.md invariant 6): the backup
//! goes into a new database next to the target, is checked there, and only
//! then takes the target's name in one transaction of two `ALTER DATABASE
//! ... RENAME`s. The database it replaces is kept under
//! `<db>__dbguard_replaced_<time>_<pid>` until the user drops it.
//!
//! Because the restore runs in an empty database, nothing created after the
//! backup (a table referencing a restored one, a dropped `public` schema)
//! can get in its way; because the target is only renamed at the very end,
//! a failure anywhere before leaves it untouched and the half-restored new
//! database is dropped again.

use crate::Error;
use crate::error::exit;
use crate::pgtools::{PgTools, quote_ident, quote_literal};
use crate::target::Target;

/// PostgreSQL's limit on identifiers (NAMEDATALEN - 1), in bytes.
const MAX_NAME_BYTES: usize = 63;

/// `<db><suffix>`, with `db` shortened on a character boundary so that the
/// whole fits in an identifier.
pub fn derived_name(db: &str, suffix: &str) -> String {
    let room = MAX_NAME_BYTES.saturating_sub(suffix.len());
    let mut end = db.len().min(room);
    while !db.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{suffix}", &db[..end])
}

/// The new database a restore goes into before the swap.
pub fn staging_name(db: &str, stamp: &str) -> String {
    derived_name(db, &format!("__dbguard_restore_{stamp}"))
}

/// The name the replaced database is kept under.
pub fn replaced_name(db: &str, stamp: &str) -> String {
    derived_name(db, &format!("__dbguard_replaced_{stamp}"))
}

/// How the database being replaced was created, so that its successor is
/// created the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    pub owner: String,
    pub encoding: String,
    pub collate: String,
    pub ctype: String,
    /// `pg_database.datlocprovider`: `c` (libc), `i` (ICU), `b` (builtin);
    /// empty before PostgreSQL 15.
    pub provider: String,
    /// The ICU or builtin locale, when the provider is not libc.
    pub locale: String,
    /// Empty for the default tablespace.
    pub tablespace: String,
}

/// Where maintenance statements (CREATE, RENAME, DROP DATABASE) run: the
/// `postgres` database on the target's server, or `template1` when
/// `postgres` itself is the target (a connected database cannot be renamed).
pub fn maintenance(target: &Target) -> Target {
    if target.dbname == "postgres" {
        target.with_dbname("template1")
    } else {
        target.with_dbname("postgres")
    }
}

fn failed(message: String) -> Error {
    Error::Failed {
        message,
        code: exit::ERROR,
    }
}

fn query_detail(e: crate::pgtools::QueryError) -> String {
    match e {
        crate::pgtools::QueryError::Failed { detail, .. } => detail,
        crate::pgtools::QueryError::Spawn(p, e) => format!("cannot run {}: {e}", p.display()),
    }
}

/// The shape of database `db`, `None` when it does not exist.
pub fn shape(tools: &PgTools, admin: &Target, db: &str) -> Result<Option<Shape>, Error> {
    let rows = tools
        .query(
            admin,
            &format!(
                // Through jsonb, so that columns a server version lacks
                // (datlocprovider before 15, datlocale before 17) read as null.
                "select pg_get_userbyid(d.datdba), pg_encoding_to_char(d.encoding), d.datcollate, d.datctype,
                        coalesce(j ->> 'datlocprovider', ''),
                        coalesce(j ->> 'datlocale', j ->> 'daticulocale', ''),
                        case when t.spcname = 'pg_default' then '' else t.spcname end
                   from pg_database d cross join lateral to_jsonb(d) j
                   join pg_tablespace t on t.oid = d.dattablespace
                  where d.datname = {}",
                quote_literal(db)
            ),
        )
        .map_err(|e| e.into_error(admin))?;
    Ok(rows.into_iter().find(|r| r.len() == 7).map(|r| Shape {
        owner: r[0].clone(),
        encoding: r[1].clone(),
        collate: r[2].clone(),
        ctype: r[3].clone(),
        provider: r[4].clone(),
        locale: r[5].clone(),
        tablespace: r[6].clone(),
    }))
}

/// Creates the empty staging database from `template0` (a `template1`
/// carrying local additions must not leak into the restore), in the
/// replaced database's shape when there is one. The error says plainly
/// when the role may not create databases.
pub fn create_staging(
    tools: &PgTools,
    admin: &Target,
    name: &str,
    shape: Option<&Shape>,
) -> Result<(), Error> {
    let sql = create_database_sql(name, shape);
    tools.query(admin, &sql).map_err(|e| {
        let detail = query_detail(e);
        failed(format!(
            "cannot create the database the backup is restored into before the swap ({detail}); \
             nothing was changed. A role with CREATEDB can restore by swap; \
             --in-place restores into the existing database instead, with its limits (see --help)"
        ))
    })?;
    Ok(())
}

/// `CREATE DATABASE name` from `template0`, in `shape`'s encoding, locale
/// and tablespace when given (also the scratch database of a drill).
pub fn create_database_sql(name: &str, shape: Option<&Shape>) -> String {
    let mut sql = format!("CREATE DATABASE {} TEMPLATE template0", quote_ident(name));
    if let Some(s) = shape {
        sql.push_str(&format!(
            " ENCODING {} LC_COLLATE {} LC_CTYPE {}",
            quote_literal(&s.encoding),
            quote_literal(&s.collate),
            quote_literal(&s.ctype)
        ));
        match s.provider.as_str() {
            "i" => sql.push_str(&format!(
                " LOCALE_PROVIDER icu ICU_LOCALE {}",
                quote_literal(&s.locale)
            )),
            "b" => sql.push_str(&format!(
                " LOCALE_PROVIDER builtin BUILTIN_LOCALE {}",
                quote_literal(&s.locale)
            )),
            _ => {}
        }
        if !s.tablespace.is_empty() {
            sql.push_str(&format!(" TABLESPACE {}", quote_ident(&s.tablespace)));
        }
    }
    sql
}

/// Hands the staging database to the replaced database's owner, last of
/// all (after the restore and `carry_over`, which need ownership). A role
/// that cannot hand it over keeps it, with a warning.
pub fn hand_over(tools: &PgTools, admin: &Target, name: &str, shape: &Shape) -> Option<String> {
    tools
        .query(
            admin,
            &format!(
                "ALTER DATABASE {} OWNER TO {}",
                quote_ident(name),
                quote_ident(&shape.owner)
            ),
        )
        .err()
        .map(|e| {
            format!(
                "the restored database could not be given to its owner \"{}\" ({})",
                shape.owner,
                query_detail(e)
            )
        })
}

/// Settings whose value is a list of identifiers, stored already quoted:
/// they are written back as they are, every other value as one literal
/// (pg_dump's own rule for `ALTER DATABASE ... SET`).
const LIST_SETTINGS: [&str; 5] = [
    "search_path",
    "temp_tablespaces",
    "session_preload_libraries",
    "local_preload_libraries",
    "shared_preload_libraries",
];

/// What `pg_dump` without `--create` leaves out because it belongs to the
/// database itself: its settings (`ALTER DATABASE/ROLE ... IN DATABASE ...
/// SET`), its grants, connection limit and comment. Copied from `from` to
/// the staging database `to`, so the swap does not lose them. Returns what
/// could not be copied, as warnings.
pub fn carry_over(tools: &PgTools, admin: &Target, from: &str, to: &str) -> Vec<String> {
    let rows = match tools.query(
        admin,
        &format!(
            "with d as (select * from pg_database where datname = {from})
             select 'set', coalesce(r.rolname, ''), c.kv
               from d join pg_db_role_setting s on s.setdatabase = d.oid
               left join pg_roles r on r.oid = s.setrole,
               unnest(s.setconfig) c(kv)
             union all
             select 'grant', case when a.grantee = 0 then '' else pg_get_userbyid(a.grantee) end,
                    a.privilege_type || case when a.is_grantable then ' grantable' else '' end
               from d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a
             union all
             select 'limit', '', d.datconnlimit::text from d
             union all
             select 'comment', '', shobj_description(d.oid, 'pg_database') from d
              where shobj_description(d.oid, 'pg_database') is not null",
            from = quote_literal(from)
        ),
    ) {
        Ok(rows) => rows,
        Err(e) => {
            return vec![format!(
                "the database's own settings were not read: {}",
                query_detail(e)
            )];
        }
    };
    let db = quote_ident(to);
    // The staging database starts with the default grants; the replaced
    // database's grants replace them.
    let mut sql = vec![format!("REVOKE ALL ON DATABASE {db} FROM PUBLIC")];
    for row in rows.iter().filter(|r| r.len() == 3) {
        let (what, role, value) = (row[0].as_str(), row[1].as_str(), row[2].as_str());
        match what {
            "set" => {
                let Some((name, setting)) = value.split_once('=') else {
                    continue;
                };
                let setting = if LIST_SETTINGS.contains(&name) {
                    setting.to_owned()
                } else {
                    quote_literal(setting)
                };
                sql.push(if role.is_empty() {
                    format!("ALTER DATABASE {db} SET {} = {setting}", quote_ident(name))
                } else {
                    format!(
                        "ALTER ROLE {} IN DATABASE {db} SET {} = {setting}",
                        quote_ident(role),
                        quote_ident(name)
                    )
                });
            }
            "grant" => {
                let (privilege, grantable) = match value.strip_suffix(" grantable") {
                    Some(p) => (p, " WITH GRANT OPTION"),
                    None => (value, ""),
                };
                let grantee = if role.is_empty() {
                    "PUBLIC".to_owned()
                } else {
                    quote_ident(role)
                };
                sql.push(format!(
                    "GRANT {privilege} ON DATABASE {db} TO {grantee}{grantable}"
                ));
            }
            "limit" if value != "-1" => {
                sql.push(format!("ALTER DATABASE {db} CONNECTION LIMIT {value}"));
            }
            "comment" => sql.push(format!(
                "COMMENT ON DATABASE {db} IS {}",
                quote_literal(value)
            )),
            _ => {}
        }
    }
    sql.into_iter()
        .filter_map(|statement| {
            tools
                .query(admin, &statement)
                .err()
                .map(|e| format!("not carried over: {statement} ({})", query_detail(e)))
        })
        .collect()
}

/// Drops the staging database after a failure; a failure to drop it is
/// named so the user can remove it.
pub fn drop_staging(tools: &PgTools, admin: &Target, name: &str) -> Option<String> {
    match tools.query(
        admin,
        &format!("DROP DATABASE IF EXISTS {}", quote_ident(name)),
    ) {
        Ok(_) => None,
        Err(e) => Some(format!(
            "the half-restored database \"{name}\" could not be dropped ({}); drop it yourself",
            query_detail(e)
        )),
    }
}

/// Another session connected to the database being replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub pid: String,
    pub user: String,
    pub application: String,
    pub client: String,
}

impl std::fmt::Display for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {} ({}", self.pid, self.user)?;
        if !self.application.is_empty() {
            write!(f, ", {}", self.application)?;
        }
        if !self.client.is_empty() {
            write!(f, ", from {}", self.client)?;
        }
        f.write_str(")")
    }
}

/// The other sessions on `db`.
pub fn sessions(tools: &PgTools, admin: &Target, db: &str) -> Result<Vec<Session>, Error> {
    let rows = tools
        .query(
            admin,
            &format!(
                "select pid, coalesce(usename, ''), coalesce(application_name, ''),
                        coalesce(host(client_addr), '')
                   from pg_stat_activity
                  where datname = {} and pid <> pg_backend_pid()
                  order by pid",
                quote_literal(db)
            ),
        )
        .map_err(|e| e.into_error(admin))?;
    Ok(rows
        .into_iter()
        .filter(|r| r.len() == 4)
        .map(|r| Session {
            pid: r[0].clone(),
            user: r[1].clone(),
            application: r[2].clone(),
            client: r[3].clone(),
        })
        .collect())
}

/// Asks the server to end every other session on `db`, then waits up to
/// five seconds for them to go. Returns the sessions still there.
pub fn terminate(tools: &PgTools, admin: &Target, db: &str) -> Result<Vec<Session>, Error> {
    let _ = tools.query(
        admin,
        &format!(
            "select pg_terminate_backend(pid) from pg_stat_activity
              where datname = {} and pid <> pg_backend_pid()",
            quote_literal(db)
        ),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let left = sessions(tools, admin, db)?;
        if left.is_empty() || std::time::Instant::now() >= deadline {
            return Ok(left);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Lets connections into database `db`, or shuts them out.
pub fn allow_connections(
    tools: &PgTools,
    admin: &Target,
    db: &str,
    allow: bool,
) -> Result<(), String> {
    tools
        .query(
            admin,
            &format!(
                "ALTER DATABASE {} ALLOW_CONNECTIONS {allow}",
                quote_ident(db)
            ),
        )
        .map(|_| ())
        .map_err(query_detail)
}

/// The swap itself, in one transaction: `db` becomes `replaced` (when it
/// exists) and `staging` becomes `db`. Either both renames happen or none.
pub fn swap(
    tools: &PgTools,
    admin: &Target,
    db: &str,
    staging: &str,
    replaced: Option<&str>,
) -> Result<(), String> {
    let mut script = String::from("BEGIN;\n");
    if let Some(old) = replaced {
        script.push_str(&format!(
            "ALTER DATABASE {} RENAME TO {};\n",
            quote_ident(db),
            quote_ident(old)
        ));
    }
    script.push_str(&format!(
        "ALTER DATABASE {} RENAME TO {};\nCOMMIT;\n",
        quote_ident(staging),
        quote_ident(db)
    ));
    tools
        .script(admin, &script)
        .map(|_| ())
        .map_err(query_detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_names_fit_in_an_identifier() {
        assert_eq!(
            staging_name("shop", "20260102_030405"),
            "shop__dbguard_restore_20260102_030405"
        );
        let long = "é".repeat(40);
        let name = replaced_name(&long, "20260102_030405");
        assert!(name.len() <= MAX_NAME_BYTES, "{}", name.len());
        assert!(name.ends_with("__dbguard_replaced_20260102_030405"));
        assert!(name.starts_with('é'));
    }

    #[test]
    fn a_session_names_who_holds_it() {
        let s = Session {
            pid: "42".into(),
            user: "app".into(),
            application: "psql".into(),
            client: "10.0.0.5".into(),
        };
        assert_eq!(s.to_string(), "pid 42 (app, psql, from 10.0.0.5)");
    }
}
