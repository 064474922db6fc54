//! Destructive SQL psql is about to send — from a script the psql guard
//! read before starting psql, or one statement inside a live session
//! (`shim::live`) — as an operation for the protect pipeline: the tables
//! it names and their facts from the catalog (rows, side effects), the
//! backup scope those allow, and the summary the person reads before
//! typing the word.

use std::cell::Cell;
use std::io;
use std::rc::Rc;

use crate::backup::Scope;
use crate::config::Policy;
use crate::error::Place;
use crate::pgtools::{PgTools, quote_ident, quote_literal};
use crate::shim::guard::{self, Decision, Guard, TableFacts};
use crate::shim::protect::{self, Rows, View};
use crate::shim::whole_database::thousands;
use crate::sql::{Kind, ScanReport, Severity};
use crate::target::Target;
use crate::{Context, Error};

/// Findings listed before the prompt; the rest are counted.
const SHOWN_FINDINGS: usize = 20;

/// Tables dropped by CASCADE listed before the prompt; the rest are counted.
const SHOWN_CASCADED: usize = 10;

/// A row count for the summary: `1,000 rows`, or why it is not known.
fn rows_text(rows: Option<i64>) -> String {
    rows.map_or_else(
        || "row count unknown".to_owned(),
        |n| match n {
            1 => "1 row".to_owned(),
            n => format!("{} rows", thousands(n)),
        },
    )
}

/// Target, policy, facts, question, backups and audit for destructive SQL
/// aimed at `target`: here, the live connection of an interactive session
/// (`shim::live`). `tools` finds the client programs.
/// `place` says whether the session is in a transaction; `own_locks`
/// names the tables among those given (`None`: any table) on which the
/// session itself holds a lock a backup would wait for.
pub fn protect_on<'a>(
    ctx: &Context,
    target: Result<Target, Error>,
    report: &ScanReport,
    tools: impl Fn() -> Result<PgTools, Error> + 'a,
    place: Place,
    own_locks: impl Fn(Option<&[String]>) -> Vec<String> + 'a,
) -> Result<(), Error> {
    let mut statements = Statements::new(Rc::new(report.clone()), target, tools);
    statements.place = place;
    statements.judged_when_sent = true;
    statements.own_locks = Some(Box::new(own_locks));
    protect::protect(ctx, &statements)
}

/// Finds the tables (among those given, or any) the person's own session
/// holds a lock on that a backup would wait for.
type OwnLocks<'a> = Box<dyn Fn(Option<&[String]>) -> Vec<String> + 'a>;

/// Destructive SQL psql is about to send, as the protect pipeline sees it.
pub struct Statements<'a> {
    report: Rc<ScanReport>,
    target: Result<Target, String>,
    tools: Box<dyn Fn() -> Result<PgTools, Error> + 'a>,
    /// A shell (the psql guard's pre-flight) or inside psql.
    place: Place,
    /// Inside psql: the session's own locks (see `protect_on`).
    own_locks: Option<OwnLocks<'a>>,
    /// Set when the statements were let through because they remove
    /// nothing (`removes_nothing`): the pre-flight then confirmed nothing,
    /// and the library judges them again when psql sends them (by then a
    /// table of that name may exist).
    pub passed_unasked: Rc<Cell<bool>>,
    /// Whether psql's library judges every statement again when it is
    /// sent: always inside psql; for the pre-flight, when the library is
    /// there to be loaded. Without it nothing passes on what the server
    /// says before psql starts.
    pub judged_when_sent: bool,
}

impl<'a> Statements<'a> {
    /// `report` aimed at `target` (or why that cannot be told); `tools`
    /// finds the client programs.
    pub fn new(
        report: Rc<ScanReport>,
        target: Result<Target, Error>,
        tools: impl Fn() -> Result<PgTools, Error> + 'a,
    ) -> Statements<'a> {
        Statements {
            report,
            target: target.map_err(|e| format!("cannot tell which database it is for ({e})")),
            tools: Box::new(tools),
            place: Place::Shell,
            own_locks: None,
            passed_unasked: Rc::default(),
            judged_when_sent: false,
        }
    }
}

impl protect::Operation for Statements<'_> {
    fn tool(&self) -> &'static str {
        "psql"
    }

    fn what(&self) -> String {
        describe(&self.report)
    }

    fn what_on(&self, target: &Target) -> String {
        format!("{} on database \"{}\"", self.what(), target.dbname)
    }

    fn findings(&self) -> Option<&ScanReport> {
        Some(&self.report)
    }

    fn tools(&self, _ctx: &Context) -> Result<PgTools, Error> {
        (self.tools)()
    }

    fn target(&self, _tools: Option<&PgTools>) -> Result<Target, String> {
        self.target.clone()
    }

    fn decide(&self, target: &Target, policy: &dyn Fn(&str) -> Policy) -> Decision {
        guard::decide(&self.report, &target.dbname, policy, Scope::database())
    }

    fn helper_query(&self) -> Option<String> {
        table_facts_query(&self.report)
    }

    fn when_absent(&self, database: &str, target: &Target) -> Option<(Target, String)> {
        if database == target.dbname {
            // psql cannot connect to a database that does not exist (a
            // misspelt `-d`): nothing can run, and psql says so itself.
            // Only when the server, asked from its maintenance database,
            // positively says so; anything less is still a refusal.
            return (self.place == Place::Shell)
                .then(|| (target.with_dbname("postgres"), String::new()));
        }
        Some((
            target.clone(),
            format!(
                "dbguard: database \"{database}\" does not exist, so dropping it removes nothing"
            ),
        ))
    }

    /// A `DROP TABLE` or `TRUNCATE` of tables none of which exists now
    /// removes nothing that exists now: a setup script's `DROP TABLE IF
    /// EXISTS`, a script that creates its own table and drops it again.
    /// True when every finding is one, by what the server says now, and
    /// the library judges each statement again when psql sends it: a table
    /// the script itself created by then is exempt there, one that took
    /// the name otherwise (a rename) is asked about.
    fn removes_nothing(&self, rows: &Rows) -> bool {
        if !self.judged_when_sent {
            return false;
        }
        let (Some(facts), None) = facts_of(rows) else {
            return false;
        };
        let absent = |name: &String| {
            facts
                .iter()
                .any(|t| &t.name == name && t.qualified.is_none())
        };
        let nothing = !self.report.findings.is_empty()
            && self.report.findings.iter().all(|f| {
                matches!(f.kind, Kind::DropTable | Kind::Truncate)
                    && !f.objects.is_empty()
                    && f.objects.iter().all(absent)
            });
        if nothing {
            self.passed_unasked.set(true);
        }
        nothing
    }

    fn scope(&self, plan: Guard, target: &Target, rows: &Rows) -> Guard {
        let facts = facts_of(rows);
        with_local_scope(plan, &target.dbname, &self.report, facts.0.as_deref())
    }

    fn summary(&self, view: &View<'_>, out: &mut Vec<u8>) {
        let (facts, facts_error) = facts_of(view.rows);
        let mut radius = blast_radius(facts.as_deref(), facts_error.as_deref());
        radius.extend(estimate_lines(&self.report));
        for (label, how) in [("cascade", "dropped"), ("truncated", "emptied")] {
            let cascaded = cascaded_tables(view.rows, label);
            if cascaded.is_empty() {
                continue;
            }
            radius.push(format!(
                "{how} with them by CASCADE: {} {}",
                cascaded.len(),
                if cascaded.len() == 1 {
                    "table"
                } else {
                    "tables"
                }
            ));
            for (table, rows) in cascaded.iter().take(SHOWN_CASCADED) {
                radius.push(format!("  {table}: {}", rows_text(*rows)));
            }
            if cascaded.len() > SHOWN_CASCADED {
                radius.push(format!("  and {} more", cascaded.len() - SHOWN_CASCADED));
            }
        }
        print_summary(
            &self.report,
            Some(view.target),
            &radius,
            &backup_line(view.plan),
            out,
        );
    }

    fn before_refusal(&self, target: Option<&Target>) {
        print_summary(&self.report, target, &[], "", &mut io::stderr());
    }

    fn place(&self) -> Place {
        self.place
    }

    fn blocked_by_own_locks(&self, tables: Option<&[String]>) -> Option<String> {
        let own_locks = self.own_locks.as_ref()?;
        let named;
        let tables = match tables {
            Some(tables) => tables,
            None => {
                named = named_tables(&self.report);
                &named
            }
        };
        if tables.is_empty() {
            return None;
        }
        let locked = own_locks(Some(tables));
        (!locked.is_empty()).then(|| own_locks_refusal(&locked))
    }
}

/// Why a backup cannot be taken while the session's own transaction holds
/// `locked`.
fn own_locks_refusal(locked: &[String]) -> String {
    format!(
        "this session's open transaction holds a lock on {} that the backup would wait for",
        locked.join(", ")
    )
}

/// The table facts from the helper query's rows, or why there are none.
fn facts_of(rows: &Rows) -> (Option<Vec<TableFacts>>, Option<String>) {
    match rows {
        None => (Some(Vec::new()), None),
        Some(Ok(rows)) => (Some(table_facts(rows.clone())), None),
        Some(Err(e)) => (None, Some(e.clone())),
    }
}

/// The first destructive statement, shortened, with where it is, for the
/// one-line refusal.
fn describe(report: &ScanReport) -> String {
    if let Some(f) = report.findings.first() {
        let mut text: String = f.statement.chars().take(60).collect();
        if text.len() < f.statement.len() {
            text.push('…');
        }
        let more = report.destructive_count() - 1;
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        return format!("{text} ({}:{}){more}", f.path, f.line);
    }
    match report.errors().next() {
        Some(p) => format!(
            "SQL that could not be read to the end ({}: {})",
            p.path, p.message
        ),
        None => "the SQL".to_owned(),
    }
}

/// Puts the connected database's table scope into the plan.
fn with_local_scope(
    mut plan: Guard,
    connected: &str,
    report: &ScanReport,
    facts: Option<&[TableFacts]>,
) -> Guard {
    let candidates = guard::table_scope_candidates(report);
    let scope = guard::local_scope(&candidates, facts);
    for step in plan.backups.iter_mut().filter(|s| s.database == connected) {
        step.scope = scope.clone();
    }
    plan
}

/// The names of the tables the findings hit in the connected database.
fn named_tables(report: &ScanReport) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for f in report.findings.iter().filter(|f| {
        matches!(
            f.kind,
            Kind::DropTable
                | Kind::Truncate
                | Kind::DeleteAll
                | Kind::UpdateAll
                | Kind::DeleteBulk
                | Kind::UpdateBulk
        )
    }) {
        for o in &f.objects {
            if !names.contains(o) {
                names.push(o.clone());
            }
        }
    }
    names
}

/// `schema.table` as written in a finding, as a regclass literal.
fn regclass_literal(name: &str) -> String {
    let quoted: Vec<String> = name.split('.').map(quote_ident).collect();
    quote_literal(&quoted.join("."))
}

/// The row count of table `oid` as SQL: exact below 8 MB where we may read
/// it (and always for a table the planner knows nothing about), else the
/// planner's estimate; empty when neither is known.
const ROWS_OF_C: &str = "case when c.oid is null then ''
            when c.relkind in ('r', 'p', 'm') and pg_relation_size(c.oid) < 8388608
                 and has_table_privilege(c.oid, 'SELECT') then
              (xpath('/row/c/text()', query_to_xml(format('select count(*) as c from %s', c.oid::regclass), false, true, '')))[1]::text
            when c.reltuples >= 0 then c.reltuples::bigint::text
            else '' end";

/// One helper query for every named table: does it exist, is it a plain
/// table, how many rows (exact below 8 MB and only where we may read it,
/// else the planner's estimate), and can deleting its rows change anything
/// else; then (marked `cascade`) every other table a `DROP SCHEMA …
/// CASCADE` or `DROP TABLE … CASCADE` takes with it, found by walking
/// pg_depend as the server's own DROP does, with its rows. `None` when no
/// table or schema is named.
fn table_facts_query(report: &ScanReport) -> Option<String> {
    let names = named_tables(report);
    let cascade = cascade_query(report);
    if names.is_empty() && cascade.is_none() {
        return None;
    }
    let mut parts = Vec::new();
    if !names.is_empty() {
        let values: Vec<String> = names
            .iter()
            .map(|n| format!("({}, {})", quote_literal(n), regclass_literal(n)))
            .collect();
        parts.push(format!(
            "select v.name,
       coalesce(quote_ident(n.nspname) || '.' || quote_ident(c.relname), ''),
       coalesce(c.relkind = 'r', false),
       {ROWS_OF_C},
       coalesce(exists (select 1 from pg_constraint k where k.confrelid = c.oid and k.contype = 'f'
                          and (k.confdeltype in ('c', 'n', 'd') or k.confupdtype in ('c', 'n', 'd')))
             or exists (select 1 from pg_trigger t where t.tgrelid = c.oid and not t.tgisinternal)
             or exists (select 1 from pg_rewrite r where r.ev_class = c.oid and r.rulename <> '_RETURN')
             or exists (select 1 from pg_inherits i where i.inhparent = c.oid), false),
       'named'
from (values {}) v(name, reg)
left join pg_class c on c.oid = to_regclass(v.reg)
left join pg_namespace n on n.oid = c.relnamespace",
            values.join(", ")
        ));
    }
    parts.extend(cascade);
    Some(parts.join("\nunion all\n"))
}

/// The tables dropped along with the schemas and tables that findings drop
/// with CASCADE, other than those named: what depends on them, and on
/// that, in pg_depend (normal, automatic and internal dependencies, and
/// the owner of an internal part, as a view owns its rule). `None` when
/// nothing is dropped with CASCADE.
fn cascade_query(report: &ScanReport) -> Option<String> {
    let mut starts: Vec<String> = Vec::new();
    for f in report.findings.iter().filter(|f| f.cascade) {
        for o in &f.objects {
            match f.kind {
                Kind::DropSchema => starts.push(format!(
                    "select 'pg_namespace'::regclass::oid, oid from pg_namespace where nspname = {}",
                    quote_literal(o)
                )),
                Kind::DropTable => starts.push(format!(
                    "select 'pg_class'::regclass::oid, to_regclass({})::oid",
                    regclass_literal(o)
                )),
                // A view, sequence, type, domain or extension: whichever
                // of them the name is (at most one of each exists).
                Kind::DropOther => {
                    starts.push(format!(
                        "select 'pg_class'::regclass::oid, to_regclass({})::oid",
                        regclass_literal(o)
                    ));
                    starts.push(format!(
                        "select 'pg_type'::regclass::oid, to_regtype({})::oid",
                        regclass_literal(o)
                    ));
                    starts.push(format!(
                        "select 'pg_extension'::regclass::oid, oid from pg_extension where extname = {}",
                        quote_literal(o)
                    ));
                }
                _ => {}
            }
        }
    }
    let truncated = truncate_cascade_query(report);
    if starts.is_empty() {
        return truncated;
    }
    let named: Vec<String> = named_tables(report)
        .iter()
        .map(|n| format!("to_regclass({})", regclass_literal(n)))
        .chain(["0".to_owned()])
        .collect();
    Some(format!(
        "select * from (with recursive walk(classid, objid) as (
    {}
  union
    select case when d.refclassid = w.classid and d.refobjid = w.objid then d.classid else d.refclassid end,
           case when d.refclassid = w.classid and d.refobjid = w.objid then d.objid else d.refobjid end
      from walk w join pg_depend d
        on (d.refclassid = w.classid and d.refobjid = w.objid and d.objsubid = 0 and d.deptype in ('n', 'a', 'i'))
        or (d.classid = w.classid and d.objid = w.objid and d.deptype = 'i')
)
select '', quote_ident(n.nspname) || '.' || quote_ident(c.relname), c.relkind = 'r',
       {ROWS_OF_C}, false, 'cascade'
  from walk w join pg_class c on w.classid = 'pg_class'::regclass and c.oid = w.objid
  join pg_namespace n on n.oid = c.relnamespace
 where c.relkind in ('r', 'p') and c.oid not in ({})
 order by 2) cascaded",
        starts.join("\n  union\n    "),
        named.join(", ")
    ))
    .map(|dropped| match truncated {
        Some(t) => format!("{dropped}\nunion all\n{t}"),
        None => dropped,
    })
}

/// The tables a `TRUNCATE … CASCADE` empties besides those named: every
/// table whose foreign key points at one it empties, and so on. `None`
/// when no TRUNCATE has CASCADE.
fn truncate_cascade_query(report: &ScanReport) -> Option<String> {
    let starts: Vec<String> = report
        .findings
        .iter()
        .filter(|f| f.cascade && f.kind == Kind::Truncate)
        .flat_map(|f| f.objects.iter())
        .map(|o| format!("select to_regclass({})::oid", regclass_literal(o)))
        .collect();
    if starts.is_empty() {
        return None;
    }
    let named: Vec<String> = named_tables(report)
        .iter()
        .map(|n| format!("to_regclass({})", regclass_literal(n)))
        .chain(["0".to_owned()])
        .collect();
    Some(format!(
        "select * from (with recursive emptied(oid) as (
    {}
  union
    select k.conrelid from emptied e join pg_constraint k on k.confrelid = e.oid and k.contype = 'f'
)
select '', quote_ident(n.nspname) || '.' || quote_ident(c.relname), c.relkind = 'r',
       {ROWS_OF_C}, false, 'truncated'
  from emptied e join pg_class c on c.oid = e.oid
  join pg_namespace n on n.oid = c.relnamespace
 where c.relkind in ('r', 'p') and c.oid not in ({})
 order by 2) truncated",
        starts.join("\n  union\n    "),
        named.join(", ")
    ))
}

/// What a migration's findings destroy, for its summary: the rows of each
/// table it drops or empties and the values in each column it drops
/// (`orders.note`: rows where it is not null), counted below 8 MB, else
/// the planner's estimate of the table's rows. Rows of `(label, count)`;
/// `None` when the findings name no table or column.
pub fn destroyed_rows_query(report: &ScanReport) -> Option<String> {
    let tables = named_tables(report);
    let mut columns: Vec<(String, String, String)> = Vec::new();
    for f in report
        .findings
        .iter()
        .filter(|f| f.kind == Kind::DropColumn)
    {
        for o in &f.objects {
            if let Some((table, column)) = o.rsplit_once('.')
                && !columns.iter().any(|(name, _, _)| name == o)
            {
                columns.push((o.clone(), table.to_owned(), column.to_owned()));
            }
        }
    }
    let mut parts = Vec::new();
    if !tables.is_empty() {
        let values: Vec<String> = tables
            .iter()
            .map(|n| format!("({}, {})", quote_literal(n), regclass_literal(n)))
            .collect();
        parts.push(format!(
            "select coalesce(quote_ident(n.nspname) || '.' || quote_ident(c.relname), v.name), {ROWS_OF_C}
from (values {}) v(name, reg)
left join pg_class c on c.oid = to_regclass(v.reg)
left join pg_namespace n on n.oid = c.relnamespace",
            values.join(", ")
        ));
    }
    if !columns.is_empty() {
        let values: Vec<String> = columns
            .iter()
            .map(|(name, table, column)| {
                format!(
                    "({}, {}, {})",
                    quote_literal(name),
                    regclass_literal(table),
                    quote_literal(column)
                )
            })
            .collect();
        parts.push(format!(
            "select v.name || ' (values)',
       case when c.oid is null or a.attnum is null then ''
            when pg_relation_size(c.oid) < 8388608 and has_table_privilege(c.oid, 'SELECT') then
              (xpath('/row/c/text()', query_to_xml(format('select count(%I) as c from %s', v.col, c.oid::regclass), false, true, '')))[1]::text
            when c.reltuples >= 0 then c.reltuples::bigint::text
            else '' end
from (values {}) v(name, reg, col)
left join pg_class c on c.oid = to_regclass(v.reg)
left join pg_attribute a on a.attrelid = c.oid and a.attname = v.col and a.attnum > 0 and not a.attisdropped",
            values.join(", ")
        ));
    }
    (!parts.is_empty()).then(|| parts.join("\nunion all\n"))
}

/// The summary lines of `destroyed_rows_query`'s rows: `public.orders:
/// 1,000 rows`, or why they are not known.
pub fn destroyed_rows_lines(rows: &Rows) -> Vec<String> {
    match rows {
        None => Vec::new(),
        Some(Err(e)) => vec![format!("rows affected: unknown ({e})")],
        Some(Ok(rows)) => rows
            .iter()
            .filter(|r| r.len() >= 2)
            .map(|r| format!("{}: {}", r[0], rows_text(r[1].parse().ok())))
            .collect(),
    }
}

/// The rows of `table_facts_query` for the named tables, as facts.
fn table_facts(rows: Vec<Vec<String>>) -> Vec<TableFacts> {
    rows.into_iter()
        .filter(|r| r.len() >= 6 && r[5] == "named")
        .map(|r| TableFacts {
            name: r[0].clone(),
            qualified: (!r[1].is_empty()).then(|| r[1].clone()),
            plain_table: r[2] == "t",
            rows: r[3].parse().ok(),
            side_effects: r[4] == "t",
        })
        .collect()
}

/// The rows each bulk DELETE or UPDATE changes: `statement:1: ~90,000 of
/// 100,000 rows in orders (the planner's estimate)`.
fn estimate_lines(report: &ScanReport) -> Vec<String> {
    report
        .row_estimates
        .iter()
        .map(|e| {
            let table = report
                .findings
                .iter()
                .find(|f| f.path == e.path && f.line == e.line)
                .and_then(|f| f.objects.first())
                .map(|t| format!(" in {t}"))
                .unwrap_or_default();
            let of = e
                .total
                .map(|t| format!(" of {}", thousands(t.try_into().unwrap_or(i64::MAX))))
                .unwrap_or_default();
            let changed = thousands(e.changed.try_into().unwrap_or(i64::MAX));
            let how = if e.exact {
                format!("{changed}{of} rows{table} (counted)")
            } else {
                format!("~{changed}{of} rows{table} (the planner's estimate)")
            };
            format!("{}:{}: changes {how}", e.path, e.line)
        })
        .collect()
}

/// The tables dropped (`label` "cascade") or emptied ("truncated") along
/// with others by CASCADE, with their rows.
fn cascaded_tables(rows: &Rows, label: &str) -> Vec<(String, Option<i64>)> {
    match rows {
        Some(Ok(rows)) => rows
            .iter()
            .filter(|r| r.len() >= 6 && r[5] == label)
            .map(|r| (r[1].clone(), r[3].parse().ok()))
            .collect(),
        _ => Vec::new(),
    }
}

/// "Blast radius" lines: rows in each named table, or why that is unknown.
fn blast_radius(facts: Option<&[TableFacts]>, error: Option<&str>) -> Vec<String> {
    if let Some(e) = error {
        return vec![format!("rows affected: unknown ({e})")];
    }
    facts
        .unwrap_or_default()
        .iter()
        .map(|t| match (&t.qualified, t.rows) {
            (None, _) => format!("{}: does not exist yet", t.name),
            (Some(q), rows) => format!("{q}: {}", rows_text(rows)),
        })
        .collect()
}

fn backup_line(plan: &Guard) -> String {
    let parts: Vec<String> = plan
        .backups
        .iter()
        .map(|b| match &b.scope {
            Scope::Tables(t) => format!("tables {} of \"{}\"", t.join(", "), b.database),
            Scope::Database(_) => format!("the whole database \"{}\"", b.database),
        })
        .collect();
    if parts.is_empty() {
        "no backup (policy off)".to_owned()
    } else {
        format!("backup first: {}", parts.join("; "))
    }
}

/// What was found and where it is aimed, for the terminal or stderr.
fn print_summary(
    report: &ScanReport,
    target: Option<&Target>,
    radius: &[String],
    backup: &str,
    out: &mut impl io::Write,
) {
    let _ = match target {
        Some(t) => writeln!(
            out,
            "dbguard: psql is about to run destructive SQL on database \"{}\"\n  (host {}, port {}, user {}):",
            t.dbname, t.host, t.port, t.user
        ),
        None => writeln!(out, "dbguard: psql is about to run destructive SQL:"),
    };
    protect::write_findings(
        report,
        SHOWN_FINDINGS,
        |f| format!("{}:{}", f.path, f.line),
        out,
    );
    for p in report
        .problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
    {
        let line = p.line.map(|l| format!(":{l}")).unwrap_or_default();
        let _ = writeln!(
            out,
            "  {}{line}: cannot judge: {} (treated as destructive)",
            p.path, p.message
        );
    }
    for line in radius {
        let _ = writeln!(out, "  {line}");
    }
    if !backup.is_empty() {
        let _ = writeln!(out, "  {backup}");
    }
}

#[cfg(test)]
mod tests {
    //! Every layout of the question and of the refusals a psql guard
    //! shows, at 80 and 120 columns, with and without colour.

    use super::*;
    use crate::confirm::{Expect, Look, Question, render_question};
    use crate::error::{Place, Refusal, render_refusal};
    use crate::sql::RowEstimate;

    const LOOKS: [Look; 4] = [
        Look {
            width: 80,
            colour: false,
        },
        Look {
            width: 120,
            colour: false,
        },
        Look {
            width: 80,
            colour: true,
        },
        Look {
            width: 120,
            colour: true,
        },
    ];

    fn target() -> Target {
        let settings: Vec<(String, String)> = [
            ("host", "/var/run/postgresql"),
            ("port", "5432"),
            ("user", "alice"),
            ("dbname", "shop"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        Target::from_settings(&settings, |_| None).unwrap()
    }

    /// Each look's rendering under a heading naming it.
    fn in_every_look(render: impl Fn(&mut Vec<u8>, Look)) -> String {
        let mut all = String::new();
        for look in LOOKS {
            let mut out = Vec::new();
            render(&mut out, look);
            all.push_str(&format!(
                "--- {} columns, {} ---\n{}\n",
                look.width,
                if look.colour { "colour" } else { "no colour" },
                String::from_utf8(out).unwrap()
            ));
        }
        all
    }

    fn question_of(report: &ScanReport, radius: &[String], backup: &str, word: &str) -> Question {
        let mut summary = Vec::new();
        print_summary(report, Some(&target()), radius, backup, &mut summary);
        Question {
            summary: String::from_utf8(summary)
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect(),
            expect: Expect::Word(word.into()),
            emphasis: vec!["shop".into()],
        }
    }

    #[test]
    fn question_for_a_drop_schema_cascade() {
        let report = crate::sql::scan_str("drop schema archive cascade;\n");
        let radius = vec![
            "dropped with them by CASCADE: 2 tables".to_owned(),
            format!("  archive.old_orders: {}", rows_text(Some(2_500_000))),
            format!("  archive.notes: {}", rows_text(Some(3))),
        ];
        let q = question_of(
            &report,
            &radius,
            "backup first: the whole database \"shop\"",
            "DROP",
        );
        insta::assert_snapshot!(in_every_look(|out, look| {
            render_question(out, &q, look).unwrap();
        }));
    }

    #[test]
    fn question_for_a_bulk_update_with_a_long_statement() {
        let mut report = crate::sql::scan_str(
            "update orders set total = 0, note = 'written off by the end-of-year clean-up job' where id > 100;\n",
        );
        let candidate = report.estimate_candidates.remove(0);
        let finding = candidate.finding();
        report.row_estimates.push(RowEstimate {
            path: finding.path.clone(),
            line: finding.line,
            changed: 90_000,
            total: Some(100_000),
            exact: false,
        });
        report.push_finding(finding);
        let mut radius = vec!["public.orders: 100,000 rows".to_owned()];
        radius.extend(estimate_lines(&report));
        let q = question_of(
            &report,
            &radius,
            "backup first: tables public.orders of \"shop\"",
            "UPDATE",
        );
        insta::assert_snapshot!(in_every_look(|out, look| {
            render_question(out, &q, look).unwrap();
        }));
    }

    fn refusals() -> Vec<(&'static str, Refusal)> {
        let what = "drop table orders (statement:1) on database \"shop\"";
        vec![
            (
                "shell_without_a_terminal",
                Refusal::guarded(
                    "delete from orders (-c:1) on database \"shop\"",
                    "no terminal to ask for confirmation on",
                ),
            ),
            (
                "shell_under_yes",
                Refusal::guarded(
                    "delete from orders (-c:1) on database \"shop\"",
                    "the backup of \"shop\" failed (pg_dump: error: permission denied for table orders)",
                )
                .under_yes(),
            ),
            (
                "shell_declined",
                Refusal::of("dropdb \"shop\"", "cancelled by a signal (Ctrl-C)")
                    .hint(Place::Shell.after_no()),
            ),
            (
                "session_declined",
                Refusal::of(what, "cancelled: the answer did not match \"DROP\" exactly")
                    .hint(Place::Session.after_no()),
            ),
            (
                "session_backup_failed",
                Refusal::guarded_at(
                    Place::Session,
                    what,
                    "the backup of \"shop\" failed (no space left on device)",
                ),
            ),
            (
                "transaction_declined",
                Refusal::of(what, "cancelled by a signal (Ctrl-C)")
                    .hint(Place::Transaction.after_no()),
            ),
            (
                "transaction_own_locks",
                Refusal::guarded_at(
                    Place::Transaction,
                    what,
                    own_locks_refusal(&["orders".to_owned()]),
                )
                .hint(format!(
                    "{}; then run the statement outside a transaction, or commit the earlier changes before it",
                    Place::Transaction.after_no()
                )),
            ),
        ]
    }

    #[test]
    fn every_refusal_layout() {
        for (name, refusal) in refusals() {
            insta::assert_snapshot!(
                format!("refusal_{name}"),
                in_every_look(|out, look| {
                    render_refusal(out, &refusal, look.width, look.colour).unwrap();
                })
            );
        }
    }

    #[test]
    fn a_refusal_reads_reason_then_what_to_do_then_the_bypass() {
        let lines = Refusal::guarded_at(Place::Transaction, "x", "why").lines();
        assert_eq!(lines[0], "refused x: why");
        assert!(lines[1].contains("must be rolled back"), "{lines:?}");
        assert_eq!(lines[2], crate::error::SESSION_BYPASS_HINT);
        // A "no" never claims nothing changed inside a transaction.
        assert!(
            !Place::Transaction
                .after_no()
                .contains("nothing was changed")
        );
    }
}
