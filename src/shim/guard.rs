//! The guard's decision, as pure functions of what was found, where it is
//! aimed and what the configuration says: pass, guard (with the word to
//! type and what to back up), or refuse. Nothing here touches the process,
//! the terminal or the server, so every branch is unit-tested.

use crate::backup::Scope;
use crate::config::Policy;
use crate::sql::{Finding, Kind, ScanReport};

/// What happens to one invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nothing to protect: exec the real tool now.
    Pass,
    /// Ask for `word`, take `backups`, then exec.
    Guard(Guard),
    /// The operation cannot be protected; the string says why in a few words.
    Refuse(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guard {
    /// What the person must type, exactly.
    pub word: String,
    /// The policy that chose the word (the strictest among the databases hit).
    pub policy: Policy,
    /// One backup per database the operation destroys something in.
    pub backups: Vec<BackupPlan>,
}

/// One backup to take before the operation runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupPlan {
    pub database: String,
    /// The named tables when that keeps invariant 3, else the database.
    pub scope: Scope,
}

/// Facts about one table named by a finding, from the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableFacts {
    /// The name as the finding wrote it.
    pub name: String,
    /// Schema-qualified, quoted as pg_dump's `--table` wants; `None` when
    /// the table does not exist (yet).
    pub qualified: Option<String>,
    /// Ordinary table (not partitioned, view, foreign...).
    pub plain_table: bool,
    /// Rows estimate (exact for small tables).
    pub rows: Option<i64>,
    /// Something else changes when rows here go: foreign keys with ON
    /// DELETE/UPDATE CASCADE, SET NULL or SET DEFAULT pointing here, user
    /// triggers, or rules.
    pub side_effects: bool,
}

/// Kinds whose damage stays inside the named tables when there is no
/// CASCADE: what they remove is the rows (or the whole table) of exactly
/// those tables, which a `--table` dump holds.
fn stays_in_named_tables(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::DropTable | Kind::Truncate | Kind::DeleteAll | Kind::UpdateAll
    )
}

/// The findings that hit the connected database (everything but `DROP
/// DATABASE`, which hits another one).
fn local_findings(report: &ScanReport) -> impl Iterator<Item = &Finding> {
    report
        .findings
        .iter()
        .filter(|f| f.kind != Kind::DropDatabase)
}

/// The table names whose catalog facts decide whether a table-only backup
/// keeps DESIGN.md invariant 3; empty when it cannot, whatever the
/// catalog says (CASCADE, dynamic SQL, schemas, unread input, ...).
pub fn table_scope_candidates(report: &ScanReport) -> Vec<String> {
    if report.has_errors() || report.findings_omitted > 0 {
        return Vec::new();
    }
    let mut names: Vec<String> = Vec::new();
    for f in local_findings(report) {
        if !stays_in_named_tables(f.kind) || f.cascade || f.objects.is_empty() {
            return Vec::new();
        }
        for o in &f.objects {
            if !names.contains(o) {
                names.push(o.clone());
            }
        }
    }
    names
}

/// The scope for the connected database's backup: the named tables when
/// every one of them exists as a plain table with no effect beyond itself,
/// otherwise the whole database.
pub fn local_scope(candidates: &[String], facts: Option<&[TableFacts]>) -> Scope {
    let Some(facts) = facts else {
        return Scope::database();
    };
    if candidates.is_empty() {
        return Scope::database();
    }
    let mut tables = Vec::new();
    for name in candidates {
        match facts.iter().find(|t| &t.name == name) {
            Some(TableFacts {
                qualified: Some(q),
                plain_table: true,
                side_effects: false,
                ..
            }) => {
                if !tables.contains(q) {
                    tables.push(q.clone());
                }
            }
            _ => return Scope::database(),
        }
    }
    Scope::tables(tables)
}

/// The databases a `DROP DATABASE` in the report removes; `Err` names a
/// statement whose database cannot be told.
pub fn dropped_databases(report: &ScanReport) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for f in report
        .findings
        .iter()
        .filter(|f| f.kind == Kind::DropDatabase)
    {
        if f.objects.is_empty() {
            return Err(format!(
                "cannot tell which database {}:{} drops",
                f.path, f.line
            ));
        }
        for o in &f.objects {
            if !out.contains(o) {
                out.push(o.clone());
            }
        }
    }
    Ok(out)
}

/// True when the connected database itself loses something.
pub fn hits_connected(report: &ScanReport) -> bool {
    local_findings(report).next().is_some() || report.has_errors() || report.findings_omitted > 0
}

/// The strictest of two policies: protect over confirm over off.
fn stricter(a: Policy, b: Policy) -> Policy {
    let rank = |p: Policy| match p {
        Policy::Off => 0,
        Policy::Confirm => 1,
        Policy::Protect => 2,
    };
    if rank(b) > rank(a) { b } else { a }
}

/// The decision. `connected` is the database psql connects to; `policy`
/// gives the configured policy of any database by name (on the same
/// server); `scope` is the connected database's backup scope.
pub fn decide(
    report: &ScanReport,
    connected: &str,
    policy: impl Fn(&str) -> Policy,
    scope: Scope,
) -> Decision {
    if report.is_safe() {
        return Decision::Pass;
    }
    let dropped = match dropped_databases(report) {
        Ok(d) => d,
        Err(why) => return Decision::Refuse(why),
    };
    let mut affected: Vec<(String, Scope)> = Vec::new();
    if hits_connected(report) {
        affected.push((connected.to_owned(), scope));
    }
    for db in dropped {
        if db != connected {
            affected.push((db, Scope::database()));
        }
    }
    let mut strictest = Policy::Off;
    let mut protected_name: Option<&str> = None;
    for (db, _) in &affected {
        let p = policy(db);
        if p == Policy::Protect && protected_name.is_none() {
            protected_name = Some(db);
        }
        strictest = stricter(strictest, p);
    }
    let word = match strictest {
        Policy::Off => return Decision::Pass,
        Policy::Protect => protected_name.unwrap_or(connected).to_owned(),
        Policy::Confirm => report.worst().map_or_else(
            // Only unread input: no operation to name, so the database's
            // name is the word, as for a protected database.
            || connected.to_owned(),
            |f| f.verb().to_owned(),
        ),
    };
    Decision::Guard(Guard {
        word,
        policy: strictest,
        backups: affected
            .into_iter()
            .filter(|(db, _)| policy(db) != Policy::Off)
            .map(|(database, scope)| BackupPlan { database, scope })
            .collect(),
    })
}

/// The decision for an operation on a database as a whole: an alembic run
/// that changes the schema (a migration may touch any table and its Python
/// may do things no SQL render shows), `dropdb`, `pg_restore --clean`.
/// `verb` (e.g. `DOWNGRADE`) is the word under `confirm`, the database's
/// name under `protect`; the backup is always the whole database.
pub fn decide_whole_database(verb: &str, database: &str, policy: Policy) -> Decision {
    let word = match policy {
        Policy::Off => return Decision::Pass,
        Policy::Protect => database.to_owned(),
        Policy::Confirm => verb.to_owned(),
    };
    Decision::Guard(Guard {
        word,
        policy,
        backups: vec![BackupPlan {
            database: database.to_owned(),
            scope: Scope::database(),
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::scan_str;

    fn confirm_all(_: &str) -> Policy {
        Policy::Confirm
    }

    fn facts(name: &str, side_effects: bool) -> TableFacts {
        TableFacts {
            name: name.into(),
            qualified: Some(format!("public.{name}")),
            plain_table: true,
            rows: Some(3),
            side_effects,
        }
    }

    #[test]
    fn nothing_destructive_passes() {
        let r = scan_str("select 1; insert into t values (1); delete from t where id = 1;");
        assert_eq!(
            decide(&r, "app", confirm_all, Scope::database()),
            Decision::Pass
        );
    }

    #[test]
    fn confirm_asks_for_the_verb_and_protect_for_the_name() {
        let r = scan_str("truncate logs;");
        let Decision::Guard(g) = decide(&r, "app", confirm_all, Scope::database()) else {
            panic!("guarded");
        };
        assert_eq!(g.word, "TRUNCATE");
        let Decision::Guard(g) = decide(&r, "app", |_| Policy::Protect, Scope::database()) else {
            panic!("guarded");
        };
        assert_eq!(g.word, "app");
        assert_eq!(
            decide(&r, "app", |_| Policy::Off, Scope::database()),
            Decision::Pass
        );
    }

    #[test]
    fn drop_database_backs_up_the_dropped_one_under_its_policy() {
        let r = scan_str("drop database shop;");
        let policy = |db: &str| {
            if db == "shop" {
                Policy::Protect
            } else {
                Policy::Off
            }
        };
        let Decision::Guard(g) = decide(&r, "postgres", policy, Scope::database()) else {
            panic!("guarded");
        };
        assert_eq!(g.word, "shop");
        assert_eq!(
            g.backups,
            vec![BackupPlan {
                database: "shop".into(),
                scope: Scope::database()
            }]
        );
    }

    #[test]
    fn table_scope_only_without_cascade_and_side_effects() {
        let r = scan_str("drop table a; truncate b; delete from a;");
        let names = table_scope_candidates(&r);
        assert_eq!(names, vec!["a", "b"]);
        let ok = [facts("a", false), facts("b", false)];
        assert_eq!(
            local_scope(&names, Some(&ok)),
            Scope::tables(vec!["public.a".into(), "public.b".into()])
        );
        let fk = [facts("a", false), facts("b", true)];
        assert_eq!(local_scope(&names, Some(&fk)), Scope::database());
        assert_eq!(local_scope(&names, None), Scope::database());
        let missing = [facts("a", false)];
        assert_eq!(local_scope(&names, Some(&missing)), Scope::database());

        for sql in [
            "drop table a cascade;",
            "truncate a cascade;",
            "drop schema s;",
            "alter table a drop column c;",
        ] {
            assert!(table_scope_candidates(&scan_str(sql)).is_empty(), "{sql}");
        }
    }

    #[test]
    fn whole_database_operations_ask_for_the_verb_or_the_name_and_back_up_everything() {
        let Decision::Guard(g) = decide_whole_database("DOWNGRADE", "shop", Policy::Confirm) else {
            panic!("guarded");
        };
        assert_eq!(g.word, "DOWNGRADE");
        assert_eq!(
            g.backups,
            vec![BackupPlan {
                database: "shop".into(),
                scope: Scope::database()
            }]
        );
        let Decision::Guard(g) = decide_whole_database("DOWNGRADE", "shop", Policy::Protect) else {
            panic!("guarded");
        };
        assert_eq!(g.word, "shop");
        assert_eq!(
            decide_whole_database("DOWNGRADE", "shop", Policy::Off),
            Decision::Pass
        );
    }

    #[test]
    fn unread_input_is_guarded_with_the_database_name() {
        let mut r = scan_str("select 1;");
        r.push_problem(crate::sql::Problem {
            severity: crate::sql::Severity::Error,
            path: "x.sql".into(),
            line: Some(3),
            message: "cannot read inc.sql".into(),
        });
        let Decision::Guard(g) = decide(&r, "app", confirm_all, Scope::database()) else {
            panic!("guarded");
        };
        assert_eq!(g.word, "app");
        assert_eq!(g.backups.len(), 1);
    }
}
