//! `dbguard list`: the backups in the backup directory, newest first, as a
//! table or as JSON.

use std::collections::HashMap;
use std::io::Write;

use indicatif::HumanBytes;
use serde::Serialize;

use crate::backup::Store;
use crate::backup::store::{Entry, VerifyOutcome};
use crate::config::Config;
use crate::{Context, Error};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args, ctx: &Context) -> Result<u8, Error> {
    let config = Config::load(ctx)?;
    let store = Store::new(&config.backup_dir()?);
    let rows = rows(&store)?;
    let mut out = std::io::stdout().lock();
    let written = if args.json {
        json(&mut out, &rows)
    } else {
        text(&mut out, &rows, &store)
    };
    written.map_err(|e| Error::io("writing to stdout", e))?;
    Ok(crate::error::exit::OK)
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
    /// `complete`, `incomplete` (no usable metadata) or `missing` (no data).
    pub state: &'static str,
    pub last_verification: Option<VerifyOutcome>,
}

pub fn rows(store: &Store) -> Result<Vec<Row>, Error> {
    let verifications = store.last_verifications();
    Ok(store
        .entries()?
        .iter()
        .map(|e| row(e, &verifications))
        .collect())
}

fn row(entry: &Entry, verifications: &HashMap<String, VerifyOutcome>) -> Row {
    let meta = entry.meta();
    Row {
        id: entry.id.clone(),
        database: meta.map(|m| m.database.clone()),
        created_at: entry.created().map(|t| t.to_rfc3339()),
        size_bytes: meta.map(|m| m.size_bytes),
        format: entry.format().map(|f| f.to_string()),
        scope: meta.map(|m| m.scope.to_string()),
        reason: meta.map(|m| m.reason.clone()),
        state: match (meta.is_some(), entry.data.is_some()) {
            (true, true) => "complete",
            (false, _) => "incomplete",
            (true, false) => "missing",
        },
        last_verification: verifications.get(&entry.id).cloned(),
    }
}

pub fn json(out: &mut impl Write, rows: &[Row]) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, rows)?;
    writeln!(out)
}

pub fn text(out: &mut impl Write, rows: &[Row], store: &Store) -> std::io::Result<()> {
    if rows.is_empty() {
        return writeln!(out, "No backups in {}", store.dir().display());
    }
    let table: Vec<[String; 8]> = rows
        .iter()
        .map(|r| {
            [
                r.id.clone(),
                r.database.clone().unwrap_or_else(|| "?".into()),
                r.created_at
                    .as_deref()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                    .unwrap_or_else(|| "?".into()),
                r.size_bytes
                    .map(|s| HumanBytes(s).to_string())
                    .unwrap_or_else(|| "?".into()),
                r.format.clone().unwrap_or_else(|| "?".into()),
                r.scope.clone().unwrap_or_else(|| "?".into()),
                match (&r.last_verification, r.state) {
                    (_, "incomplete") => "INCOMPLETE".into(),
                    (_, "missing") => "MISSING".into(),
                    (Some(v), _) => {
                        format!("{} {} ({})", v.status, v.at.format("%Y-%m-%d %H:%M"), v.how)
                    }
                    (None, _) => "never".into(),
                },
                r.reason.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let headers = [
        "ID", "DATABASE", "CREATED", "SIZE", "FORMAT", "SCOPE", "VERIFIED", "REASON",
    ];
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for line in &table {
        for (w, cell) in widths.iter_mut().zip(line) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let print = |out: &mut dyn Write, cells: &[&str]| -> std::io::Result<()> {
        let mut line = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        writeln!(out, "{}", line.trim_end())
    };
    print(out, &headers)?;
    for line in &table {
        let cells: Vec<&str> = line.iter().map(String::as_str).collect();
        print(out, &cells)?;
    }
    Ok(())
}
