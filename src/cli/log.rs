//! `dbguard log`: what the guards decided, read back from the audit log
//! (`audit.jsonl` in the backup directory) as a table that fits the
//! terminal, newest last like any log, or as JSON lines.
//!
//! The log is read loosely: decisions stay the strings they were written
//! as, unknown fields are ignored and a line that does not parse is counted
//! and reported, never fatal, so a log written by an older or newer dbguard
//! still reads.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::Path;

use chrono::{DateTime, FixedOffset, Local, NaiveDate, TimeZone};
use console::Style;
use serde::Deserialize;

use super::table::{self, Cell, Column, Layout};
use crate::audit::FILE_NAME;
use crate::backup::catalog::short_id;
use crate::config::Config;
use crate::{Context, Error};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only entries for this database.
    #[arg(long, short = 'd', value_name = "NAME")]
    pub database: Option<String>,
    /// Only entries from this time on: a date (2026-01-31), a date and time
    /// (2026-01-31T14:00), or an age (30m, 12h, 7d, 2w).
    #[arg(long, value_name = "WHEN", value_parser = parse_since)]
    pub since: Option<DateTime<FixedOffset>>,
    /// Only entries with this decision (pass, confirmed, refused, policy_off,
    /// bypass, migrated, restored, pruned, ...: docs/backups.md lists every
    /// value); repeat for several.
    #[arg(long, value_name = "DECISION")]
    pub decision: Vec<String>,
    /// Print the matching entries as they are stored, one JSON object a line.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args, ctx: &Context) -> Result<u8, Error> {
    let config = Config::load(ctx)?;
    let dir = config.backup_dir()?;
    let log = read(&dir)?;
    let filter = Filter {
        database: args.database,
        since: args.since,
        decisions: args.decision,
    };
    let entries: Vec<&Entry> = log.entries.iter().filter(|e| filter.keeps(e)).collect();
    let mut out = io::stdout().lock();
    let written = if args.json {
        json(&mut out, &entries)
    } else if log.entries.is_empty() {
        writeln!(
            out,
            "No audit log entries in {}",
            dir.join(FILE_NAME).display()
        )
    } else {
        text(&mut out, &entries, Layout::for_stdout(ctx))
    };
    written.map_err(|e| Error::io("writing to stdout", e))?;
    if log.unreadable > 0 {
        eprintln!(
            "dbguard: {} line(s) of {} could not be read and were skipped",
            log.unreadable,
            dir.join(FILE_NAME).display()
        );
    }
    Ok(crate::error::exit::OK)
}

/// One audit record as read back. Only what the table and the filters
/// need is typed; the whole line is kept for `--json`.
#[derive(Debug, Clone, Deserialize)]
pub struct Entry {
    pub time: String,
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub tool: String,
    #[serde(default)]
    pub argv: Vec<String>,
    pub target: Option<LoggedTarget>,
    #[serde(default)]
    pub findings: Vec<LoggedFinding>,
    #[serde(default)]
    pub findings_omitted: u64,
    #[serde(default)]
    pub decision: String,
    pub detail: Option<String>,
    #[serde(default)]
    pub backups: Vec<LoggedBackup>,
    /// The restore points among `backups` (pgBackRest engine).
    #[serde(default)]
    pub restore_points: Vec<LoggedPoint>,
    #[serde(skip)]
    pub raw: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LoggedPoint {
    pub backup: String,
    #[serde(default)]
    pub lsn: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LoggedTarget {
    #[serde(default)]
    pub database: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LoggedFinding {
    #[serde(default)]
    pub statement: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LoggedBackup {
    pub id: String,
}

impl Entry {
    fn parsed_time(&self) -> Option<DateTime<FixedOffset>> {
        DateTime::parse_from_rfc3339(&self.time).ok()
    }

    fn database(&self) -> Option<&str> {
        self.target.as_ref().map(|t| t.database.as_str())
    }

    /// The first statement found, with a count of the others; the command
    /// line when nothing was found (a pass, a bypass).
    pub fn statement(&self) -> String {
        let Some(first) = self.findings.first() else {
            return self.argv.join(" ");
        };
        let others = self.findings.len() as u64 - 1 + self.findings_omitted;
        let one_line = first
            .statement
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if others == 0 {
            one_line
        } else {
            format!("{one_line} (+{others} more)")
        }
    }
}

/// The audit log as read.
#[derive(Debug, Default)]
pub struct Log {
    /// Oldest first, as written.
    pub entries: Vec<Entry>,
    /// Lines that were not a record.
    pub unreadable: usize,
}

/// Reads `audit.jsonl` in `dir`; a missing file is an empty log.
pub fn read(dir: &Path) -> Result<Log, Error> {
    let path = dir.join(FILE_NAME);
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Log::default()),
        Err(e) => return Err(Error::io(format!("cannot read {}", path.display()), e)),
    };
    let mut log = Log::default();
    for line in BufReader::new(file).lines() {
        let line = line.map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Entry>(&line) {
            Ok(mut entry) => {
                entry.raw = line;
                log.entries.push(entry);
            }
            Err(_) => log.unreadable += 1,
        }
    }
    Ok(log)
}

/// The statement that each backup was taken for, from the audit log: what
/// `dbguard list` shows as the reason for a guard's backup.
pub fn statements_by_backup(log: &Log) -> HashMap<String, String> {
    let mut by_backup = HashMap::new();
    for entry in log.entries.iter().filter(|e| !e.findings.is_empty()) {
        for backup in &entry.backups {
            by_backup.insert(backup.id.clone(), entry.statement());
        }
    }
    by_backup
}

/// Which entries `dbguard log` shows.
#[derive(Debug, Default)]
pub struct Filter {
    pub database: Option<String>,
    pub since: Option<DateTime<FixedOffset>>,
    pub decisions: Vec<String>,
}

impl Filter {
    pub fn keeps(&self, entry: &Entry) -> bool {
        if let Some(db) = &self.database
            && entry.database() != Some(db.as_str())
        {
            return false;
        }
        if let Some(since) = self.since
            && entry.parsed_time().is_none_or(|t| t < since)
        {
            return false;
        }
        self.decisions.is_empty() || self.decisions.contains(&entry.decision)
    }
}

/// `--since`: a date, a date and time (local), an RFC 3339 time, or an age.
fn parse_since(value: &str) -> Result<DateTime<FixedOffset>, String> {
    since_at(value, Local::now().fixed_offset())
}

fn since_at(value: &str, now: DateTime<FixedOffset>) -> Result<DateTime<FixedOffset>, String> {
    let value = value.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(t);
    }
    let local = |naive: chrono::NaiveDateTime| {
        Local
            .from_local_datetime(&naive)
            .earliest()
            .map(|t| t.fixed_offset())
    };
    for layout in [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(naive) = chrono::NaiveDateTime::parse_from_str(value, layout)
            && let Some(t) = local(naive)
        {
            return Ok(t);
        }
    }
    if let Ok(date) = NaiveDate::parse_from_str(value, "%Y-%m-%d")
        && let Some(t) = date.and_hms_opt(0, 0, 0).and_then(local)
    {
        return Ok(t);
    }
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let seconds_per = match unit {
        "s" => Some(1),
        "m" | "min" => Some(60),
        "h" => Some(3_600),
        "d" => Some(86_400),
        "w" => Some(7 * 86_400),
        _ => None,
    };
    match (number.parse::<i64>(), seconds_per) {
        (Ok(n), Some(per)) => Ok(now - chrono::Duration::seconds(n.saturating_mul(per))),
        _ => Err(format!(
            "{value:?} is neither a date (2026-01-31), a date and time (2026-01-31T14:00) nor an age (30m, 12h, 7d, 2w)"
        )),
    }
}

const COLUMNS: [Column; 7] = [
    Column::fixed("TIME"),
    Column::optional("USER", 2),
    Column::optional("TOOL", 3),
    Column::fixed("DATABASE"),
    Column::fixed("DECISION"),
    Column::optional("BACKUP", 1),
    Column::flex("STATEMENT"),
];

/// The entries as a table, oldest first.
pub fn text(out: &mut impl Write, entries: &[&Entry], layout: Layout) -> io::Result<()> {
    if entries.is_empty() {
        return writeln!(out, "No audit log entries match");
    }
    let rows: Vec<Vec<Cell>> = entries
        .iter()
        .map(|e| {
            let time = e
                .parsed_time()
                .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                .unwrap_or_else(|| e.time.clone());
            // A restore point is named with its LSN: the point a restore
            // replays WAL up to.
            let backups: Vec<String> = e
                .backups
                .iter()
                .map(
                    |b| match e.restore_points.iter().find(|p| p.backup == b.id) {
                        Some(point) => format!("{}@{}", short_id(&b.id), point.lsn),
                        None => short_id(&b.id).to_owned(),
                    },
                )
                .collect();
            vec![
                Cell::plain(time),
                Cell::plain(e.user.clone()),
                Cell::plain(e.tool.clone()),
                Cell::styled(e.database().unwrap_or("-"), Style::new().cyan()),
                Cell::styled(e.decision.clone(), decision_style(&e.decision)),
                Cell::plain(if backups.is_empty() {
                    "-".to_owned()
                } else {
                    backups.join(",")
                }),
                Cell::plain(e.statement()),
            ]
        })
        .collect();
    table::write(out, &COLUMNS, &rows, layout)
}

fn decision_style(decision: &str) -> Style {
    match decision {
        "refused" => Style::new().red().bold(),
        "confirmed" => Style::new().green(),
        "bypass" | "policy_off" => Style::new().yellow(),
        _ => Style::new().dim(),
    }
}

/// The entries exactly as stored, one JSON object a line.
pub fn json(out: &mut impl Write, entries: &[&Entry]) -> io::Result<()> {
    for entry in entries {
        writeln!(out, "{}", entry.raw)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log as the guards write it (fixed times, so snapshots are stable).
    const LOG: &str = r#"{"time":"2026-03-01T09:15:02.120+00:00","user":"ann","tool":"psql","argv":["psql","-d","shop","-c","DROP TABLE orders"],"target":{"host":"localhost","port":5432,"user":"ann","database":"shop"},"findings":[{"path":"-c","line":1,"kind":"drop_table","objects":["orders"],"statement":"DROP TABLE orders"}],"findings_omitted":0,"decision":"confirmed","detail":null,"backups":[{"id":"backup_shop_20260301_091502","database":"shop","sha256":"ab","path":"/b/backup_shop_20260301_091502.sql"}],"yes":false,"bypass":false}
{"time":"2026-03-01T09:20:40.001+00:00","user":"ann","tool":"psql","argv":["psql","-d","shop"],"target":{"host":"localhost","port":5432,"user":"ann","database":"shop"},"findings":[],"findings_omitted":0,"decision":"pass","detail":null,"backups":[],"yes":false,"bypass":false}
not json at all
{"time":"2026-03-02T17:03:11.500+00:00","user":"bob","tool":"alembic","argv":["alembic","downgrade","base"],"target":{"host":"db.internal","port":5432,"user":"app","database":"billing"},"findings":[{"path":"versions/0007_invoices.py","line":31,"kind":"drop_table","objects":["invoices"],"statement":"DROP TABLE invoices"},{"path":"versions/0007_invoices.py","line":32,"kind":"drop_column","objects":["customers.vat_id"],"statement":"ALTER TABLE customers\n    DROP COLUMN vat_id"}],"findings_omitted":0,"decision":"refused","detail":"no terminal to ask on","backups":[],"yes":false,"bypass":false}
{"time":"2026-03-03T08:00:00.000+00:00","user":"ci","tool":"psql","argv":["psql","-f","reset.sql"],"target":null,"findings":[],"findings_omitted":0,"decision":"bypass","detail":"DBGUARD_BYPASS=1","backups":[],"yes":false,"bypass":true}
"#;

    fn log() -> Log {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), LOG).unwrap();
        read(dir.path()).unwrap()
    }

    fn render(filter: &Filter, width: usize, colour: bool) -> String {
        let log = log();
        let entries: Vec<&Entry> = log.entries.iter().filter(|e| filter.keeps(e)).collect();
        let mut out = Vec::new();
        text(
            &mut out,
            &entries,
            Layout {
                width: Some(width),
                colour,
            },
        )
        .expect("writing to a Vec cannot fail");
        String::from_utf8(out).expect("the table is UTF-8")
    }

    #[test]
    fn a_bad_line_is_counted_not_fatal() {
        let log = log();
        assert_eq!(log.entries.len(), 4);
        assert_eq!(log.unreadable, 1);
    }

    #[test]
    fn table_at_80_and_120_columns() {
        for width in [80, 120] {
            let text = render(&Filter::default(), width, false);
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
            let text = render(&Filter::default(), width, true);
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
    fn filters_by_database_decision_and_time() {
        let by_db = Filter {
            database: Some("shop".into()),
            ..Filter::default()
        };
        let text = render(&by_db, 120, false);
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(!text.contains("billing"), "{text}");

        let refused = Filter {
            decisions: vec!["refused".into(), "bypass".into()],
            ..Filter::default()
        };
        let log = log();
        let kept: Vec<&str> = log
            .entries
            .iter()
            .filter(|e| refused.keeps(e))
            .map(|e| e.decision.as_str())
            .collect();
        assert_eq!(kept, ["refused", "bypass"]);

        let since = Filter {
            since: Some(DateTime::parse_from_rfc3339("2026-03-02T00:00:00+00:00").unwrap()),
            ..Filter::default()
        };
        assert_eq!(log.entries.iter().filter(|e| since.keeps(e)).count(), 2);
    }

    #[test]
    fn the_statement_of_each_backup() {
        let by_backup = statements_by_backup(&log());
        assert_eq!(
            by_backup
                .get("backup_shop_20260301_091502")
                .map(String::as_str),
            Some("DROP TABLE orders")
        );
    }

    #[test]
    fn since_accepts_dates_times_and_ages() {
        let now = DateTime::parse_from_rfc3339("2026-03-10T12:00:00+00:00").unwrap();
        assert_eq!(
            since_at("2d", now).unwrap(),
            DateTime::parse_from_rfc3339("2026-03-08T12:00:00+00:00").unwrap()
        );
        assert_eq!(
            since_at("90m", now).unwrap(),
            DateTime::parse_from_rfc3339("2026-03-10T10:30:00+00:00").unwrap()
        );
        assert_eq!(
            since_at("2026-03-01T08:00:00+01:00", now).unwrap(),
            DateTime::parse_from_rfc3339("2026-03-01T07:00:00+00:00").unwrap()
        );
        assert!(since_at("2026-03-01", now).is_ok());
        assert!(since_at("2026-03-01T14:00", now).is_ok());
        let err = since_at("yesterday", now).unwrap_err();
        assert!(err.contains("neither a date"), "{err}");
    }
}
