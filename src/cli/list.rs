//! `dbguard list`: the backups in the backup directory, newest first, as a
//! table that fits the terminal or as JSON. The reason shown for a guard's
//! backup is the statement it protects (from the audit log), else the
//! reason recorded in its metadata.
//!
//! With remotes configured, each backup also says where it lives (`local`
//! and the remotes holding a complete copy, as the remotes' own listings
//! say), and a backup whose only copies are remote is listed too, from its
//! sidecar on the remote. A remote that cannot be listed is one warning
//! line; what the copies files record stands in for it.
//!
//! The DRILLED column is each backup's last restore drill (`dbguard
//! drill`): when, and whether it passed.

use std::collections::HashMap;
use std::io::Write;

use console::Style;
use indicatif::HumanBytes;
use serde::Serialize;

use super::table::{self, Cell, Column, Layout};
use crate::backup::Store;
use crate::backup::catalog::short_id;
use crate::backup::copies::{self, Copies};
use crate::backup::drilled::Drilled;
use crate::backup::store::{Entry, VerifyOutcome};
use crate::config::Config;
use crate::{Context, Error};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only backups of this database.
    #[arg(long, short = 'd', value_name = "NAME")]
    pub database: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args, ctx: &Context) -> Result<u8, Error> {
    let config = Config::load(ctx)?;
    let store = Store::new(&config.backup_dir()?);
    // The audit log only adds the statements; a damaged one must not hide
    // the backups.
    let statements = super::log::read(store.dir())
        .map(|log| super::log::statements_by_backup(&log))
        .unwrap_or_default();
    let mut rows = rows(&store, &statements)?;
    if !config.file.remotes.is_empty() {
        add_remote_locations(&config, &store, &mut rows);
    }
    if let Some(database) = &args.database {
        rows.retain(|r| r.database.as_deref() == Some(database.as_str()));
    }
    let mut out = std::io::stdout().lock();
    let written = if args.json {
        json(&mut out, &rows)
    } else if rows.is_empty() && args.database.is_some() {
        writeln!(
            out,
            "No backups of {} in {}",
            args.database.as_deref().unwrap_or_default(),
            store.dir().display()
        )
    } else {
        text(&mut out, &rows, &store, Layout::for_stdout(ctx))
    };
    written.map_err(|e| Error::io("writing to stdout", e))?;
    archiving_warnings(ctx, &store, &rows, args.json)?;
    Ok(crate::error::exit::OK)
}

/// When restore points are listed: whether WAL archiving works on their
/// servers now (the rows say what is restorable; this says what the next
/// guard will do). On stderr under `--json`, so the JSON stays whole.
fn archiving_warnings(ctx: &Context, store: &Store, rows: &[Row], json: bool) -> Result<(), Error> {
    let entries = store.entries()?;
    let points: Vec<_> = entries
        .iter()
        .filter(|e| rows.iter().any(|r| r.id == e.id))
        .filter_map(|e| e.meta())
        .filter(|m| m.restore_point.is_some())
        .collect();
    if points.is_empty() {
        return Ok(());
    }
    let warnings = match crate::pgtools::PgTools::resolve(ctx) {
        Ok(tools) => crate::backup::engine::pgbackrest::archiving_warnings(&tools, points),
        Err(e) => vec![format!("cannot check WAL archiving: {e}")],
    };
    let written = if json {
        let mut err = std::io::stderr().lock();
        warnings
            .iter()
            .try_for_each(|w| writeln!(err, "dbguard: warning: {w}"))
    } else {
        let mut out = std::io::stdout().lock();
        warnings
            .iter()
            .try_for_each(|w| writeln!(out, "warning: {w}"))
    };
    written.map_err(|e| Error::io("writing the archiving warning", e))
}

/// One backup as listed.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub id: String,
    pub database: Option<String>,
    pub created_at: Option<String>,
    pub size_bytes: Option<u64>,
    pub format: Option<String>,
    pub scope: Option<String>,
    pub reason: Option<String>,
    /// The statement the backup was taken for, when the audit log says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statement: Option<String>,
    /// The pgBackRest restore point the backup is, if it is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restore_point: Option<String>,
    /// The whole restore point record (stanza, LSN, timeline, time, WAL
    /// segment, the pgBackRest backup it was taken on), as the sidecar
    /// holds it: what a DBA needs to restore it with pgBackRest alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pitr: Option<crate::backup::engine::RestorePoint>,
    /// `complete`, `incomplete` (no usable metadata), `missing` (no data)
    /// or `remote` (only remote copies). A restore point has no data file
    /// here; whether its WAL is still in the repository is `verify`'s
    /// question.
    pub state: &'static str,
    /// Where complete copies are: `local` and remote names, in the
    /// configuration's order.
    pub locations: Vec<String>,
    pub last_verification: Option<VerifyOutcome>,
    /// The last restore drill (`dbguard drill`), if there was one.
    pub last_drill: Option<Drilled>,
}

/// Every backup in `store`, newest first; `statements` maps backup ids to
/// the statement each protects.
pub fn rows(store: &Store, statements: &HashMap<String, String>) -> Result<Vec<Row>, Error> {
    let verifications = store.last_verifications();
    Ok(store
        .entries()?
        .iter()
        .map(|e| {
            let mut row = row(e, &verifications, statements);
            row.last_drill = Drilled::read(store.dir(), &e.id);
            row
        })
        .collect())
}

fn row(
    entry: &Entry,
    verifications: &HashMap<String, VerifyOutcome>,
    statements: &HashMap<String, String>,
) -> Row {
    let meta = entry.meta();
    Row {
        id: entry.id.clone(),
        database: meta.map(|m| m.database.clone()),
        created_at: entry.created().map(|t| t.to_rfc3339()),
        size_bytes: meta.map(|m| m.size_bytes),
        format: match meta.and_then(|m| m.restore_point.as_ref()) {
            Some(_) => Some("pitr".to_owned()),
            None => entry.format().map(|f| f.to_string()),
        },
        scope: meta.map(|m| m.scope.to_string()),
        reason: meta.map(|m| m.reason.clone()),
        statement: statements.get(&entry.id).cloned(),
        restore_point: meta
            .and_then(|m| m.restore_point.as_ref())
            .map(|p| p.name.clone()),
        pitr: meta.and_then(|m| m.restore_point.clone()),
        state: match (meta.is_some(), entry.data.is_some()) {
            (true, true) => "complete",
            (true, false) if meta.is_some_and(|m| m.restore_point.is_some()) => "complete",
            (false, _) => "incomplete",
            (true, false) => "missing",
        },
        last_verification: verifications.get(&entry.id).cloned(),
        last_drill: None,
        locations: if meta.is_some() && entry.data.is_some() {
            vec!["local".to_owned()]
        } else {
            Vec::new()
        },
    }
}

/// Adds each remote's copies to `rows`, and rows for backups only a remote
/// holds (newest first, as the rest).
fn add_remote_locations(config: &Config, store: &Store, rows: &mut Vec<Row>) {
    for remote in &config.file.remotes {
        let listed = copies::open_remote(config, remote).and_then(|s3| {
            let found = copies::remote_backups(&s3)?;
            Ok((s3, found))
        });
        let (s3, found) = match listed {
            Ok(listed) => listed,
            Err(e) => {
                eprintln!("dbguard: {e}; showing the copies recorded here instead");
                for row in rows.iter_mut() {
                    if Copies::read(store.dir(), &row.id).has(&remote.name) {
                        row.locations.push(format!("{} (recorded)", remote.name));
                    }
                }
                continue;
            }
        };
        for backup in found {
            if let Some(row) = rows.iter_mut().find(|r| r.id == backup.id) {
                row.locations.push(remote.name.clone());
                continue;
            }
            // Only on the remote: its sidecar says what it is.
            let meta = s3
                .download_small(&backup.sidecar_file)
                .ok()
                .and_then(|bytes| serde_json::from_slice::<crate::backup::Metadata>(&bytes).ok());
            let Some(meta) = meta else {
                eprintln!(
                    "dbguard: remote {}: the metadata of {} cannot be read; not listed",
                    remote.name, backup.id
                );
                continue;
            };
            rows.push(Row {
                id: backup.id.clone(),
                database: Some(meta.database.clone()),
                created_at: Some(meta.created_at.to_rfc3339()),
                size_bytes: Some(meta.size_bytes),
                format: Some(meta.format.to_string()),
                scope: Some(meta.scope.to_string()),
                reason: Some(meta.reason.clone()),
                statement: None,
                state: "remote",
                last_verification: None,
                // A drill of the remote copy is recorded here.
                last_drill: Drilled::read(store.dir(), &backup.id),
                locations: vec![remote.name.clone()],
                restore_point: meta.restore_point.as_ref().map(|p| p.name.clone()),
                pitr: meta.restore_point.clone(),
            });
        }
    }
    rows.sort_by(|a, b| {
        let when = |r: &Row| {
            r.created_at
                .as_deref()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        };
        when(b).cmp(&when(a)).then(b.id.cmp(&a.id))
    });
}

pub fn json(out: &mut impl Write, rows: &[Row]) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, rows)?;
    writeln!(out)
}

/// The WHERE column, shown when some backup is not only local.
const WHERE: Column = Column::optional("WHERE", 1);

/// Where WHERE goes when shown: before the reason.
const WHERE_AT: usize = 8;

const COLUMNS: [Column; 9] = [
    Column::fixed("ID"),
    Column::optional("DATABASE", 2),
    Column::optional("CREATED", 4),
    Column::fixed("SIZE"),
    Column::optional("FORMAT", 6),
    Column::optional("SCOPE", 5),
    Column::fixed("VERIFIED"),
    Column::optional("DRILLED", 3),
    Column::flex("REASON"),
];

/// The table: short ids (without `backup_`, which every id shares; any
/// command taking an id accepts them), cut to `layout`'s width.
pub fn text(
    out: &mut impl Write,
    rows: &[Row],
    store: &Store,
    layout: Layout,
) -> std::io::Result<()> {
    if rows.is_empty() {
        return writeln!(out, "No backups in {}", store.dir().display());
    }
    let unknown = || "?".to_owned();
    let with_where = rows
        .iter()
        .any(|r| r.locations.iter().any(|l| l != "local"));
    let table: Vec<Vec<Cell>> = rows
        .iter()
        .map(|r| {
            let (verified, style) = match (&r.last_verification, r.state) {
                (_, "remote") => ("remote only".to_owned(), Style::new().yellow()),
                (_, "incomplete") => ("INCOMPLETE".to_owned(), Style::new().red().bold()),
                (_, "missing") => ("MISSING".to_owned(), Style::new().red().bold()),
                (Some(v), _) => {
                    let when = if v.how == "created" {
                        "at creation".to_owned()
                    } else {
                        v.at.format("%m-%d %H:%M").to_string()
                    };
                    let style = if v.is_ok() {
                        Style::new().green()
                    } else {
                        Style::new().red().bold()
                    };
                    (format!("{} {when}", v.status), style)
                }
                (None, _) => ("never".to_owned(), Style::new().yellow()),
            };
            let (drilled, drill_style) = match &r.last_drill {
                Some(d) => (
                    format!("{} {}", d.label(), d.at.format("%m-%d %H:%M")),
                    if d.ok {
                        Style::new().green()
                    } else {
                        Style::new().red().bold()
                    },
                ),
                None => ("never".to_owned(), Style::new().dim()),
            };
            let reason = r
                .statement
                .clone()
                .or_else(|| r.reason.clone())
                .unwrap_or_default();
            let mut cells = vec![
                Cell::styled(short_id(&r.id), Style::new().cyan()),
                Cell::plain(r.database.clone().unwrap_or_else(unknown)),
                Cell::plain(
                    r.created_at
                        .as_deref()
                        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                        .unwrap_or_else(unknown),
                ),
                Cell::plain(match (&r.pitr, r.size_bytes) {
                    // No data file: its bytes are in pgBackRest's repository.
                    (Some(_), _) => "-".to_owned(),
                    (None, Some(size)) => HumanBytes(size).to_string(),
                    (None, None) => unknown(),
                }),
                Cell::plain(match &r.pitr {
                    Some(point) => pitr_format(point),
                    None => r.format.clone().unwrap_or_else(unknown),
                }),
                Cell::plain(r.scope.clone().unwrap_or_else(unknown)),
                Cell::styled(verified, style),
                Cell::styled(drilled, drill_style),
                Cell::plain(reason),
            ];
            if with_where {
                cells.insert(WHERE_AT, Cell::plain(r.locations.join(", ")));
            }
            cells
        })
        .collect();
    let mut columns = COLUMNS.to_vec();
    if with_where {
        columns.insert(WHERE_AT, WHERE);
    }
    table::write(out, &columns, &table, layout)
}

/// A restore point in the FORMAT column: where it is, as a DBA would pass
/// it to pgBackRest or find it in the WAL (stanza, LSN, timeline).
fn pitr_format(point: &crate::backup::engine::RestorePoint) -> String {
    format!("pitr {}@{} tl{}", point.stanza, point.lsn, point.timeline)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restore_point_row_shows_its_stanza_lsn_and_timeline_not_a_size() {
        let dir = tempfile::tempdir().unwrap();
        let id = "backup_app_20260301_091502";
        let meta = serde_json::json!({
            "id": id, "file": "", "created_at": "2026-03-01T09:15:02+00:00",
            "sha256": "00", "size_bytes": 0, "format": "plain", "database": "app",
            "host": "localhost", "port": 5432, "user": "ann", "server_version": "16.4",
            "pg_dump_version": "pgBackRest 2.54", "tables": [], "alembic_revision": null,
            "scope": "database", "reason": "psql -d app", "tool_version": "0.1.0",
            "engine": "pgbackrest",
            "restore_point": {
                "stanza": "main", "name": "dbguard_20260301_091502_0123456789abcdef",
                "lsn": "0/3000090", "time": "2026-03-01T09:15:02+00:00", "timeline": 2,
                "wal_segment": "000000020000000000000003", "backup_label": "20260301-080000F"
            }
        });
        std::fs::write(dir.path().join(format!("{id}.json")), meta.to_string()).unwrap();
        let store = Store::new(dir.path());
        let rows = rows(&store, &HashMap::new()).unwrap();
        let mut out = Vec::new();
        let layout = Layout {
            width: Some(160),
            colour: false,
        };
        text(&mut out, &rows, &store, layout).unwrap();
        let table = String::from_utf8(out).unwrap();
        let line = table.lines().nth(1).unwrap_or_default();
        assert!(line.contains("pitr main@0/3000090 tl2"), "{table}");
        assert!(!line.contains("0 B"), "{table}");
        let mut json_out = Vec::new();
        json(&mut json_out, &rows).unwrap();
        let listed: serde_json::Value = serde_json::from_slice(&json_out).unwrap();
        assert_eq!(listed[0]["restore_point"], meta["restore_point"]["name"]);
        assert_eq!(listed[0]["pitr"]["lsn"], "0/3000090");
        assert_eq!(listed[0]["pitr"]["timeline"], 2);
        assert_eq!(listed[0]["pitr"]["stanza"], "main");
        assert_eq!(listed[0]["pitr"]["backup_label"], "20260301-080000F");
    }

    /// A backup directory as the guards leave it: two complete backups
    /// (one verified and drilled, one protecting a statement), one never
    /// finished.
    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let backup = |id: &str, database: &str, at: &str, size: u64, scope: &str, reason: &str| {
            std::fs::write(dir.path().join(format!("{id}.sql")), "-- dump\n").unwrap();
            let meta = serde_json::json!({
                "id": id, "file": format!("{id}.sql"), "created_at": at,
                "sha256": "00", "size_bytes": size, "format": "plain", "database": database,
                "host": "localhost", "port": 5432, "user": "ann", "server_version": "15.8",
                "pg_dump_version": "15.8", "tables": [], "alembic_revision": null,
                "scope": scope, "reason": reason, "tool_version": "0.1.0"
            });
            std::fs::write(dir.path().join(format!("{id}.json")), meta.to_string()).unwrap();
        };
        backup(
            "backup_shop_20260301_091502",
            "shop",
            "2026-03-01T09:15:02+00:00",
            48_213_004,
            "database",
            "psql -d shop",
        );
        backup(
            "backup_billing_inv_20260228_170311",
            "billing_inv",
            "2026-02-28T17:03:11+00:00",
            1_532,
            "database",
            "before nightly cleanup of invoices older than seven years, as agreed",
        );
        std::fs::write(
            dir.path().join("backup_shop_20260227_080000.sql"),
            "-- half a dump",
        )
        .unwrap();
        let store = Store::new(dir.path());
        store
            .record_verification(
                "backup_billing_inv_20260228_170311",
                VerifyOutcome {
                    id: String::new(),
                    at: chrono::DateTime::parse_from_rfc3339("2026-03-01T06:00:00+00:00").unwrap(),
                    status: "OK".into(),
                    how: "verify".into(),
                },
            )
            .unwrap();
        Drilled {
            at: chrono::DateTime::parse_from_rfc3339("2026-03-01T07:00:00+00:00").unwrap(),
            ok: true,
            detail: "1 table: row counts recorded in the sidecar (1)".into(),
            table: None,
            from: None,
        }
        .write(store.dir(), "backup_billing_inv_20260228_170311")
        .unwrap();
        (dir, store)
    }

    fn statements() -> HashMap<String, String> {
        HashMap::from([(
            "backup_shop_20260301_091502".to_owned(),
            "DELETE FROM orders WHERE created_at < now() - interval '1 year' (+2 more)".to_owned(),
        )])
    }

    fn render(width: usize, colour: bool) -> String {
        let (_dir, store) = store();
        let rows = rows(&store, &statements()).unwrap();
        let mut out = Vec::new();
        text(
            &mut out,
            &rows,
            &store,
            Layout {
                width: Some(width),
                colour,
            },
        )
        .expect("writing to a Vec cannot fail");
        String::from_utf8(out).expect("the table is UTF-8")
    }

    #[test]
    fn table_at_80_and_120_columns() {
        for width in [80, 120] {
            let text = render(width, false);
            assert!(
                text.lines()
                    .all(|l| console::measure_text_width(l) <= width),
                "{text}"
            );
            insta::assert_snapshot!(format!("table_{width}"), text);
        }
    }

    #[test]
    fn table_in_colour_at_80_and_120_columns() {
        for width in [80, 120] {
            let text = render(width, true);
            assert!(text.contains('\u{1b}'));
            assert!(
                text.lines()
                    .all(|l| console::measure_text_width(l) <= width),
                "{text}"
            );
            insta::assert_snapshot!(format!("table_in_colour_{width}"), text);
        }
    }

    #[test]
    fn json_keeps_full_ids_and_the_statement() {
        let (_dir, store) = store();
        let rows = rows(&store, &statements()).unwrap();
        let mut out = Vec::new();
        json(&mut out, &rows).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(value[0]["id"], "backup_shop_20260301_091502");
        assert!(
            value[0]["statement"]
                .as_str()
                .unwrap()
                .starts_with("DELETE")
        );
        assert_eq!(value[1]["state"], "complete");
        assert_eq!(value[1]["last_drill"]["ok"], true);
        assert_eq!(value[1]["last_drill"]["at"], "2026-03-01T07:00:00Z");
        assert!(value[0]["last_drill"].is_null());
        assert_eq!(value[2]["state"], "incomplete");
    }
}
