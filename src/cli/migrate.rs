//! `dbguard migrate [REVISION]`: alembic upgrade with a safety net. The
//! whole database is backed up first (no backup, no migration); then the
//! real `alembic upgrade` runs as a child with the terminal; if it fails,
//! the error stays on screen and the backup is offered for restore (the
//! database's name typed on /dev/tty; under `DBGUARD_YES` or without a
//! terminal only the restore command is printed, nothing is restored
//! unasked). If it succeeds and `--verify-cmd` names the project's checks,
//! they run next (`sh -c`, same environment and directory); when they fail
//! the backup is offered exactly as for a failed migration. Only a
//! migration that succeeded and passed its checks gets the post-migration
//! backup. The audit log records the outcome (`migrated`,
//! `migration_failed`, `verification_failed`, `refused`) with the backups.
//! The exit status is alembic's, or the checks' when they failed, a death
//! by signal re-raised.

use std::fs::OpenOptions;
use std::process::Command;

use crate::alembic::url::resolve_connection;
use crate::audit::{Outcome, Record};
use crate::backup::{self, Created, Preflight, Request, Scope};
use crate::cli::check_migration::AlembicOptions;
use crate::config::Config;
use crate::confirm::YES_ENV;
use crate::error::Refusal;
use crate::error::exit;
use crate::pgtools::PgTools;
use crate::restore::{RestoreRequest, restore};
use crate::shim::protect::{self, backup_record, write_audit};
use crate::shim::spawn::{self, Ended};
use crate::shim::{RealTool, Tool};
use crate::target::{Target, redact};
use crate::{Context, Error};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: alembic's own (a signal that killed it is re-raised); the --verify-cmd command's own when alembic succeeded and the checks failed; 77 when the backup before the migration cannot be taken (nothing was migrated); 2 on a usage error."
)]
pub struct Args {
    #[command(flatten)]
    pub alembic: AlembicOptions,
    /// Passed to `alembic upgrade --tag`.
    #[arg(long, value_name = "TAG")]
    pub tag: Option<String>,
    /// The project's checks, run by `sh -c` after a successful migration;
    /// when they fail, the pre-migration backup is offered for restore and
    /// no post-migration backup is taken.
    #[arg(long, value_name = "CMD")]
    pub verify_cmd: Option<String>,
    /// The revision to upgrade to.
    #[arg(value_name = "REVISION", default_value = "head")]
    pub revision: String,
}

pub fn run(args: Args, ctx: &Context) -> Result<u8, Error> {
    let alembic = args.alembic.alembic_args();
    let real = RealTool::resolve(Tool::Alembic, ctx)?;
    let config = Config::load(ctx)
        .map_err(|e| refusal(format!("the configuration cannot be read ({e})")))?;
    let mut record = Record::new(ctx, "alembic", Outcome::Refused);
    let refuse = |record: &mut Record, why: String| {
        record.detail = Some(redact(&why));
        write_audit(&config, record);
        Error::from(refusal(why))
    };
    let (conn, target) =
        resolve_connection(ctx, &alembic, &config).map_err(|why| refuse(&mut record, why))?;
    record.target = Some((&target).into());
    let tools = PgTools::resolve(ctx)
        .map_err(|e| refuse(&mut record, format!("no backup is possible ({e})")))?;
    let pre = backup::preflight(&tools, &target).map_err(|e| {
        refuse(
            &mut record,
            format!("no backup of \"{}\" is possible ({e})", target.dbname),
        )
    })?;
    let reason = protect::redacted_command(ctx);
    let before = take(&config, &tools, &pre, format!("before {reason}")).map_err(|e| {
        refuse(
            &mut record,
            format!("the backup before the migration failed ({e})"),
        )
    })?;
    announce("before the migration", &before);
    record.backups.push(backup_record(&before));
    record
        .restore_points
        .extend(protect::restore_point_record(&before));

    let mut cmd = Command::new(&real.path);
    for c in &alembic.configs {
        cmd.arg("-c").arg(c);
    }
    if let Some(n) = &alembic.name {
        cmd.arg("-n").arg(n);
    }
    for x in &alembic.x_args {
        cmd.arg("-x").arg(x);
    }
    cmd.arg("upgrade").arg(&args.revision);
    if let Some(tag) = &args.tag {
        cmd.arg("--tag").arg(tag);
    }
    cmd.env_clear().envs(ctx.env.iter().map(|(k, v)| (k, v)));
    if let Some(cwd) = &ctx.cwd {
        cmd.current_dir(cwd);
    }
    let ended = spawn::run(&mut cmd).map_err(|e| Error::Exec {
        program: real.path.clone(),
        source: e,
    })?;

    let how = describe(ended);
    record.detail = Some(format!("alembic upgrade {}: {how}", args.revision));
    if ended.success()
        && let Some(check) = &args.verify_cmd
    {
        note!("dbguard: the migration succeeded; running the checks: {check}");
        let checked = verify(ctx, check)?;
        if !checked.success() {
            let how = describe(checked);
            record.decision = crate::audit::Outcome::VerificationFailed;
            record.detail = Some(redact(&format!(
                "alembic upgrade {}: exit status 0; checks `{check}`: {how}",
                args.revision
            )));
            write_audit(&config, &record);
            note!(
                "dbguard: the checks failed ({how}) after alembic upgrade {}; no backup after the migration was taken.",
                args.revision
            );
            offer_restore(ctx, &before, conn, &target);
            return Ok(checked.exit_like());
        }
        record.detail = Some(redact(&format!(
            "alembic upgrade {}: exit status 0; checks `{check}` passed",
            args.revision
        )));
    }
    if ended.success() {
        // The migration is done either way; a failed second backup is a
        // warning, not a reason to report the migration as failed.
        let pre_after = backup::preflight(&tools, &target);
        match pre_after.and_then(|p| take(&config, &tools, &p, format!("after {reason}"))) {
            Ok(after) => {
                announce("after the migration", &after);
                record.backups.push(backup_record(&after));
                record
                    .restore_points
                    .extend(protect::restore_point_record(&after));
            }
            Err(e) => note!(
                "dbguard: warning: the migration succeeded, but the backup after it failed ({e})"
            ),
        }
        record.decision = Outcome::Migrated;
        write_audit(&config, &record);
        return Ok(exit::OK);
    }
    record.decision = Outcome::MigrationFailed;
    write_audit(&config, &record);
    note!(
        "dbguard: alembic upgrade {} failed ({how}); the database may be partly migrated.",
        args.revision
    );
    offer_restore(ctx, &before, conn, &target);
    Ok(ended.exit_like())
}

/// The refusal of the whole command: the backup before it is the point.
fn refusal(why: String) -> Refusal {
    Refusal::of("dbguard migrate", why).hint("nothing was migrated")
}

fn describe(ended: Ended) -> String {
    match ended {
        Ended::Code(c) => format!("exit status {c}"),
        Ended::Signal(s) => format!("killed by signal {s}"),
    }
}

/// Runs the project's checks with the terminal, in the directory and
/// environment `dbguard migrate` itself got.
fn verify(ctx: &Context, check: &str) -> Result<Ended, Error> {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c").arg(check);
    cmd.env_clear().envs(ctx.env.iter().map(|(k, v)| (k, v)));
    if let Some(cwd) = &ctx.cwd {
        cmd.current_dir(cwd);
    }
    spawn::run(&mut cmd).map_err(|e| Error::Exec {
        program: "/bin/sh".into(),
        source: e,
    })
}

fn take(
    config: &Config,
    tools: &PgTools,
    pre: &Preflight,
    reason: String,
) -> Result<Created, Error> {
    protect::take_backup(config, tools, pre, &Request::new(reason, Scope::database()))
}

fn announce(when: &str, created: &Created) {
    note!(
        "dbguard: backed up \"{}\" {when} as {}\ndbguard:   file: {}",
        created.metadata.database,
        created.metadata.id,
        created.data_path.display()
    );
}

/// The restore, as a command a person can paste (no password in it).
fn restore_command(id: &str, target: &Target) -> String {
    format!(
        "dbguard restore {id} -h {} -p {} -U {} -d {}",
        target.host, target.port, target.user, target.dbname
    )
}

/// Offers the pre-migration backup for restore. Never restores unasked:
/// with `DBGUARD_YES` or no terminal it only prints the command.
fn offer_restore(
    ctx: &Context,
    before: &Created,
    conn: crate::target::ConnectionArgs,
    target: &Target,
) {
    let id = &before.metadata.id;
    let command = restore_command(id, target);
    let terminal = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .is_ok();
    if ctx.flag(YES_ENV) || !terminal {
        note!(
            "dbguard: not restored automatically; to put the database back as it was before the migration:\n  {command}"
        );
        return;
    }
    note!("dbguard: the backup taken before the migration can be restored now.");
    let request = RestoreRequest {
        id: id.clone(),
        connection: conn,
        yes: false,
        safety_backup: true,
        ..RestoreRequest::default()
    };
    let mut err = std::io::stderr();
    match restore(ctx, &request, &mut err) {
        Ok(_) => note!("dbguard: restored {id}; the database is as it was before the migration."),
        Err(e) => note!(
            "dbguard: not restored ({}); to restore later:\n  {command}",
            redact(&e.to_string())
        ),
    }
}
