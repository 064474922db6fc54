//! `dbguard config`: the configuration in effect here, and where each value
//! came from (environment, which file and key, or the built-in default), so
//! a surprising backup directory or policy can be traced in one look.

use std::io::Write;

use crate::config::{Config, PROJECT_FILE, Policy};
use crate::target::{ConnectionArgs, Target};
use crate::{Context, Error};

#[derive(Debug, clap::Args)]
#[command(disable_help_flag = true)]
pub struct Args {
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// Also show the policy for this database (name, conninfo or URI) and user.
    #[arg(value_name = "DBNAME [USERNAME]")]
    pub positional: Vec<String>,
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
}

pub fn run(args: Args, ctx: &Context) -> Result<u8, Error> {
    let config = Config::load(ctx)?;
    let connection = args.connection.with_positional(&args.positional)?;
    let target = if connection.is_empty() {
        None
    } else {
        Some(Target::resolve(&connection, ctx)?)
    };
    let mut out = std::io::stdout().lock();
    write(&mut out, ctx, &config, target.as_ref())
        .map_err(|e| Error::io("writing to stdout", e))?;
    Ok(crate::error::exit::OK)
}

/// The report, over any writer.
pub fn write(
    out: &mut impl Write,
    ctx: &Context,
    config: &Config,
    target: Option<&Target>,
) -> std::io::Result<()> {
    // The file once more as a plain table, to tell set keys from defaults.
    let raw: toml::Table = config
        .source
        .as_deref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| t.parse().ok())
        .unwrap_or_default();
    let file = config
        .source
        .as_deref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let set_in = |table: &str, key: &str| {
        raw.get(table)
            .and_then(|t| t.get(key))
            .map(|_| format!("{table}.{key} in {file}"))
            .unwrap_or_else(|| "default".to_owned())
    };

    let origin = match &config.source {
        None => "none; built-in defaults".to_owned(),
        Some(p) if ctx.var(crate::env::CONFIG).is_some_and(|v| !v.is_empty()) => {
            format!("{} (named by DBGUARD_CONFIG)", p.display())
        }
        Some(p) if p.file_name().is_some_and(|n| n == PROJECT_FILE) => {
            format!(
                "{} (nearest {PROJECT_FILE} above the working directory)",
                p.display()
            )
        }
        Some(p) => format!("{} (user configuration)", p.display()),
    };
    writeln!(out, "config file: {origin}")?;
    match config.backup_dir() {
        Ok(dir) => writeln!(
            out,
            "backup.dir: {} ({})",
            dir.display(),
            config.backup_dir_origin()
        )?,
        Err(e) => writeln!(out, "backup.dir: none ({e})")?,
    }
    writeln!(
        out,
        "backup.format: {} ({})",
        config.format(),
        set_in("backup", "format")
    )?;
    let r = config.retention();
    writeln!(
        out,
        "retention.keep_within: {} ({})",
        r.keep_within,
        set_in("retention", "keep_within")
    )?;
    for (key, value) in [
        ("keep_last", r.keep_last),
        ("keep_daily", r.keep_daily),
        ("keep_weekly", r.keep_weekly),
        ("keep_monthly", r.keep_monthly),
        ("keep_yearly", r.keep_yearly),
    ] {
        writeln!(
            out,
            "retention.{key}: {value} ({})",
            set_in("retention", key)
        )?;
    }
    match config.bulk_threshold() {
        None => writeln!(
            out,
            "bulk.estimate: false ({}): DELETE and UPDATE with a WHERE are never estimated",
            set_in("bulk", "estimate")
        )?,
        Some(t) => {
            writeln!(out, "bulk.estimate: true ({})", set_in("bulk", "estimate"))?;
            writeln!(out, "bulk.rows: {} ({})", t.rows, set_in("bulk", "rows"))?;
            writeln!(
                out,
                "bulk.fraction: {} ({})",
                t.fraction,
                set_in("bulk", "fraction")
            )?;
        }
    }
    let alembic = &config.file.alembic;
    writeln!(
        out,
        "alembic.upgrade_analysis: {} ({})",
        alembic.upgrade_analysis.unwrap_or(true),
        set_in("alembic", "upgrade_analysis")
    )?;
    if let Some(url) = &alembic.database_url {
        writeln!(
            out,
            "alembic.database_url: {} ({})",
            crate::target::redact(url),
            set_in("alembic", "database_url")
        )?;
    }
    writeln!(out, "databases (first match wins):")?;
    for rule in &config.file.databases {
        writeln!(
            out,
            "  dbname {} host {} port {}: {} ({file})",
            rule.dbname.as_deref().unwrap_or("*"),
            rule.host.as_deref().unwrap_or("*"),
            rule.port.map_or("*".to_owned(), |p| p.to_string()),
            policy_name(rule.policy)
        )?;
    }
    writeln!(out, "  any other database: confirm (default)")?;
    if let Some(t) = target {
        writeln!(
            out,
            "policy for \"{}\" on {} port {}: {}",
            t.dbname,
            t.host,
            t.port,
            policy_name(config.policy_for(t))
        )?;
    }
    for var in [
        "DBGUARD_YES",
        "DBGUARD_BYPASS",
        "DBGUARD_BACKUP_DIR",
        "DBGUARD_CONFIG",
    ] {
        if let Some(v) = ctx.var(var) {
            writeln!(out, "environment: {var}={}", v.to_string_lossy())?;
        }
    }
    Ok(())
}

pub fn policy_name(policy: Policy) -> &'static str {
    match policy {
        Policy::Protect => "protect",
        Policy::Confirm => "confirm",
        Policy::Off => "off",
    }
}
