//! `dbguard check-migration [RANGE]`: the destructive operations in the
//! revisions an upgrade would apply — the pending ones (read from the
//! database's version table) or those of an explicit RANGE, which needs no
//! database. alembic renders the SQL offline; when it cannot render the
//! range (migrations that read data), it renders each revision on its own
//! and only the revisions it cannot render are scanned statically, named
//! in the report with alembic's last error line. `--downgrade` checks what a downgrade reverts instead. Exit 0: nothing destructive; 1: destructive operations
//! found; 2: error.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::alembic::args::AlembicArgs;
use crate::alembic::check::MigrationCheck;
use crate::alembic::project::project_scripts;
use crate::alembic::render::{Direction, render_range, render_sql};
use crate::alembic::url::resolve_target;
use crate::alembic::version_table::current_revisions;
use crate::config::Config;
use crate::error::exit;
use crate::pgtools::PgTools;
use crate::report::{self, Report};
use crate::shim::{RealTool, Tool};
use crate::sql::Format;
use crate::{Context, Error};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "RANGE is alembic's: FROM:TO (e.g. base:head, 0002:0004) or TO (from base). Without it, the revisions not yet applied to the database (read from its alembic_version table) are checked. With --downgrade, FROM:TO goes down (e.g. head:base, 0004:0002), TO alone starts from the database's current revision, and no RANGE means down to base.\n\nExit status: 0 nothing destructive, 1 destructive operations found, 2 error."
)]
pub struct Args {
    #[command(flatten)]
    pub alembic: AlembicOptions,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Check what a downgrade over RANGE reverts (its downgrade() bodies).
    #[arg(long)]
    pub downgrade: bool,
    /// The revisions to check; default: the pending ones.
    #[arg(value_name = "RANGE")]
    pub range: Option<String>,
}

/// alembic's global options, as `check-migration` and `migrate` take them.
#[derive(Debug, clap::Args)]
pub struct AlembicOptions {
    /// alembic's configuration file (as `alembic -c`).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub configs: Vec<PathBuf>,
    /// The ini section (as `alembic -n`).
    #[arg(short = 'n', long, value_name = "NAME")]
    pub name: Option<String>,
    /// Arguments for env.py (as `alembic -x`).
    #[arg(short = 'x', value_name = "ARG")]
    pub x_args: Vec<String>,
}

impl AlembicOptions {
    /// The global options as the alembic guard models them.
    pub fn alembic_args(&self) -> AlembicArgs {
        AlembicArgs {
            configs: self
                .configs
                .iter()
                .map(|c| c.clone().into_os_string())
                .collect(),
            name: self.name.clone().map(OsString::from),
            x_args: self.x_args.iter().map(OsString::from).collect(),
            ..AlembicArgs::default()
        }
    }
}

pub fn run(args: Args, ctx: &Context) -> Result<u8, Error> {
    let check = analyse(&args, ctx)?;
    let mut out = std::io::stdout().lock();
    report::write(args.format, &Report::Migration(&check), &mut out, false)
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("cannot write the report", e))?;
    Ok(if check.is_destructive() {
        exit::FOUND
    } else {
        exit::OK
    })
}

/// Works out the range, renders it (or scans the files) and builds the report.
pub fn analyse(args: &Args, ctx: &Context) -> Result<MigrationCheck, Error> {
    let alembic = args.alembic.alembic_args();
    let cwd = ctx.cwd.clone().unwrap_or_else(|| PathBuf::from("."));
    let direction = if args.downgrade {
        Direction::Downgrade
    } else {
        Direction::Upgrade
    };
    let (from, to, range) = match (&args.range, direction) {
        (Some(r), Direction::Upgrade) => {
            let (from, to) = match r.split_once(':') {
                Some(("base", to)) => (Vec::new(), to),
                Some((from, to)) => (vec![from.to_owned()], to),
                None => (Vec::new(), r.as_str()),
            };
            (from, to.to_owned(), r.clone())
        }
        (Some(r), Direction::Downgrade) if r.contains(':') => {
            let (from, to) = r.split_once(':').unwrap_or((r, "base"));
            (vec![from.to_owned()], to.to_owned(), r.clone())
        }
        (None, Direction::Upgrade) => {
            let current = pending_from(ctx, &alembic)?;
            let range = render_range(Direction::Upgrade, &current, "heads")
                .unwrap_or_else(|_| format!("{}:heads", current.join(",")));
            (current, "heads".to_owned(), range)
        }
        (to, Direction::Downgrade) => {
            let to = to.clone().unwrap_or_else(|| "base".to_owned());
            let current = pending_from(ctx, &alembic)?;
            let range =
                render_range(Direction::Downgrade, &current, &to).map_err(|e| Error::Failed {
                    message: e,
                    code: exit::ERROR,
                })?;
            (current, to, range)
        }
    };
    let scripts = project_scripts(ctx, &alembic, &cwd);
    let display = |p: &Path| p.strip_prefix(&cwd).unwrap_or(p).display().to_string();
    let real = RealTool::resolve(Tool::Alembic, ctx);
    let rendered = match &real {
        Ok(real) => render_sql(ctx, &alembic, &real.path, direction, &range),
        Err(e) => Err(format!("alembic cannot be run ({e})")),
    };
    let why = match rendered {
        Ok(r) => {
            return Ok(MigrationCheck::from_render(
                direction,
                &range,
                &r.sql,
                &r.log,
                |rev| scripts.get(rev).map(|s| display(&s.path)),
            ));
        }
        Err(why) => why,
    };
    // `head` and prefixes name revisions; the walks take their ids.
    let mut from_ids = Vec::new();
    for name in &from {
        match scripts.resolve(name) {
            Ok(ids) => from_ids.extend(ids),
            Err(_) => from_ids.push(name.clone()),
        }
    }
    let path = match direction {
        Direction::Upgrade => scripts.upgrade_path(&from_ids, &to),
        Direction::Downgrade => scripts.downgrade_path(&from_ids, &to),
    }
    .map_err(|e| Error::Failed {
        message: format!("{why}; the revision files cannot be scanned instead either: {e}"),
        code: exit::ERROR,
    })?;
    match &real {
        // One revision that cannot be rendered must not blind the rest:
        // each is rendered on its own, and only the failures are read as
        // text.
        Ok(real) => Ok(MigrationCheck::per_revision(
            direction,
            &range,
            &path,
            &why,
            |one| render_sql(ctx, &alembic, &real.path, direction, one),
            display,
        )),
        Err(_) => Ok(MigrationCheck::from_static(
            direction,
            &range,
            &path,
            format!(
                "{why}; scanned the revision files' {}() instead",
                direction.command()
            ),
            display,
        )),
    }
}

/// The database's current revisions, for "pending".
fn pending_from(ctx: &Context, alembic: &AlembicArgs) -> Result<Vec<String>, Error> {
    let failed = |message: String| Error::Failed {
        message: format!("{message}; give a RANGE (e.g. base:head) to check without a database"),
        code: exit::ERROR,
    };
    let config = Config::load(ctx)?;
    let target = resolve_target(ctx, alembic, &config).map_err(failed)?;
    let tools = PgTools::resolve(ctx)?;
    current_revisions(&tools, &target).map_err(|e| {
        failed(format!(
            "cannot read the current revision of \"{}\" ({e})",
            target.dbname
        ))
    })
}
