//! Restoring a pgBackRest restore point without touching the live cluster:
//! the cluster as of the restore point is restored into a scratch data
//! directory (`pgbackrest restore --type=name --target=… --pg1-path=…`),
//! started on a free port with archiving off and only a private socket
//! trusted, and promoted at the point. What the operation destroyed (the
//! tables in the backup's scope, else the whole database) is dumped from it
//! with pg_dump into an ordinary backup, which then goes back into the
//! live database through the normal restore path (`restore::restore`). The
//! scratch cluster is stopped and removed afterwards, whatever happened.
//!
//! Running as root, the scratch cluster belongs to the `postgres` user
//! (PostgreSQL refuses to run as root, and pgBackRest's repository is
//! normally that user's).
//!
//! [`restore_whole_cluster`] is the other way, only when asked
//! (`dbguard restore ID --whole-cluster`): the cluster's own data directory
//! is rewritten to the restore point (`pgbackrest restore --delta
//! --type=name --target-action=promote`). It rewinds every database of the
//! cluster, so it runs only with the server stopped (dbguard never stops
//! or starts it) and only when a person types the stanza's name on the
//! terminal: `--yes` and `DBGUARD_YES` do not answer that question.

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::unistd::{Gid, Uid, User, chown};

use super::{RestoreReport, RestoreRequest, request_target};
use crate::audit::{self, BackupRecord, Outcome, Record, RestorePointRecord, TargetRecord};
use crate::backup::engine::RestorePoint;
use crate::backup::engine::pgbackrest::{PointState, pgbackrest, state as point_state};
use crate::backup::{self, Metadata, Request, Scope, Store};
use crate::config::Config;
use crate::confirm::{self, Expect, Question};
use crate::error::{Refusal, exit};
use crate::pgtools::{PgTools, first_error_line};
use crate::target::{ConnectionArgs, Target};
use crate::{Context, Error};

/// How long the scratch cluster may take to replay WAL up to the point.
const RECOVERY_WAIT: Duration = Duration::from_secs(3600);

/// Restores what `meta`'s operation destroyed from its restore point.
pub fn restore(
    ctx: &Context,
    request: &RestoreRequest,
    meta: &Metadata,
    point: &RestorePoint,
    out: &mut impl Write,
) -> Result<RestoreReport, Error> {
    let config = Config::load(ctx)?;
    let tools = PgTools::resolve(ctx)?;
    let original = Target::explicit(&meta.host, meta.port, &meta.user, &meta.database);
    let (target, source) = request_target(ctx, request, &original)?;
    if request.in_place || request.jobs.is_some() {
        return Err(Error::Usage(
            "a restore point is restored table by table from a scratch cluster; --in-place and -j do not apply".into(),
        ));
    }
    let port = match request.scratch_port {
        Some(port) => {
            TcpListener::bind(("127.0.0.1", port)).map_err(|e| {
                Error::Usage(format!(
                    "scratch port {port} is taken ({e}); name a free one with --scratch-port, or leave it out to pick one"
                ))
            })?;
            port
        }
        None => free_port()?,
    };
    let what = match &meta.scope {
        Scope::Tables(tables) => format!("tables {}", tables.join(", ")),
        Scope::Database(_) => format!("the whole database \"{}\"", meta.database),
    };
    let question = Question {
        emphasis: vec![target.dbname.clone()],
        summary: vec![
            format!(
                "Restore {} ({} as of restore point {}, {}) into \"{}\" on {}:{} ({})",
                meta.id,
                what,
                point.name,
                point.time,
                target.dbname,
                target.host,
                target.port,
                source.describe()
            ),
            format!(
                "The cluster is restored from pgBackRest stanza \"{}\" into a scratch directory on port {port}; the live cluster keeps running.",
                point.stanza
            ),
        ],
        expect: Expect::Word(target.dbname.clone()),
    };
    let consent = match confirm::confirm(ctx, &question, request.yes) {
        Ok(consent) => consent,
        Err(e) => {
            // Refused or cancelled before anything changed: audited like
            // any other restore's refusal.
            let mut record = Record::new(ctx, "restore", Outcome::Refused);
            record.target = Some((&target).into());
            record.yes = request.yes || ctx.flag(confirm::YES_ENV);
            record.detail = Some(crate::target::redact(&format!(
                "restore of {} from restore point {}: {e}",
                meta.id, point.name
            )));
            if let Err(e) = config
                .backup_dir()
                .and_then(|dir| audit::append(&dir, &record).map_err(|e| Error::io("audit log", e)))
            {
                note!("dbguard: warning: could not write the audit log: {e}");
            }
            return Err(e);
        }
    };
    if consent != confirm::Consent::Typed {
        for line in &question.summary {
            note!("{line}");
        }
    }

    let base = base_backup(point)?;
    let scratch = Scratch::create(port, &meta.server_version)?;
    writeln!(
        out,
        "Restoring stanza \"{}\" to restore point {} in {} ...",
        point.stanza,
        point.name,
        scratch.root.display()
    )
    .map_err(|e| Error::io("writing to stdout", e))?;
    scratch.restore(point, &base)?;
    scratch.start(point)?;
    let source_target = Target::explicit(
        &scratch.socket.display().to_string(),
        port,
        &meta.user,
        &meta.database,
    );
    let pre = backup::preflight(&tools, &source_target)?;
    let mut dump = Request::new(
        format!(
            "recovered from restore point {} of {} in a scratch cluster",
            point.name, meta.id
        ),
        meta.scope.clone(),
    );
    dump.prune = false;
    dump.pg_dump_only = true;
    let recovered = backup::take(&config, &tools, &pre, &dump)?;
    writeln!(out, "Recovered {what} as backup {}", recovered.metadata.id)
        .map_err(|e| Error::io("writing to stdout", e))?;
    drop(scratch);

    super::restore(
        ctx,
        &RestoreRequest {
            id: recovered.metadata.id.clone(),
            connection: ConnectionArgs {
                host: Some(target.host.clone()),
                port: Some(target.port.to_string()),
                user: Some(target.user.clone()),
                dbname: Some(target.dbname.clone()),
            },
            origin: false,
            yes: request.yes,
            // Confirmed above, for this very target: not asked twice, and
            // audited as it was answered.
            answered: Some(consent),
            safety_backup: request.safety_backup,
            jobs: None,
            in_place: false,
            // The recovered backup was just written here.
            from: None,
            terminate: request.terminate,
            scratch_port: None,
        },
        out,
    )
}

/// Restores the cluster as of `point` into a scratch cluster on `port` (a
/// free one when `None`), started and promoted at the point, and runs
/// `inspect` with the connection to `meta`'s database there and the
/// scratch directory; the scratch cluster is stopped and removed
/// afterwards, whatever happened. A point the WAL does not reach is an
/// error before `inspect` runs. Used by restore drills (`restore::drill`).
pub fn in_scratch_cluster<T>(
    meta: &Metadata,
    point: &RestorePoint,
    port: Option<u16>,
    inspect: impl FnOnce(&Target, &Path) -> Result<T, Error>,
) -> Result<T, Error> {
    let port = match port {
        Some(port) => port,
        None => free_port()?,
    };
    let base = base_backup(point)?;
    let scratch = Scratch::create(port, &meta.server_version)?;
    scratch.restore(point, &base)?;
    scratch.start(point)?;
    let target = Target::explicit(
        &scratch.socket.display().to_string(),
        port,
        &meta.user,
        &meta.database,
    );
    inspect(&target, &scratch.root)
}

/// Rewrites the whole cluster of backup `id`'s restore point back to that
/// point, in its own data directory, after checking that the server is
/// stopped and a person typed the stanza's name on the terminal. The
/// server is left stopped; what to do next is printed on `out`.
pub fn restore_whole_cluster(ctx: &Context, id: &str, out: &mut impl Write) -> Result<(), Error> {
    let config = Config::load(ctx)?;
    let dir = config.backup_dir()?;
    let store = Store::new(&dir);
    let entry = store.find(id)?.ok_or_else(|| {
        Error::Usage(format!(
            "no backup {id} in {}; `dbguard list` shows the ids",
            dir.display()
        ))
    })?;
    let meta = entry.meta().cloned().ok_or_else(|| {
        Error::Usage(format!(
            "backup {} has no readable metadata (see dbguard verify)",
            entry.id
        ))
    })?;
    let Some(point) = meta.restore_point.clone() else {
        return Err(Error::Usage(format!(
            "backup {} was taken with pg_dump; --whole-cluster restores a pgBackRest restore point (leave it out to restore this backup)",
            entry.id
        )));
    };
    let mut record = Record::new(ctx, "restore", Outcome::Refused);
    record.target = Some(TargetRecord {
        host: meta.host.clone(),
        port: meta.port,
        user: meta.user.clone(),
        database: meta.database.clone(),
    });
    record.backups.push(BackupRecord {
        id: entry.id.clone(),
        database: meta.database.clone(),
        sha256: meta.sha256.clone(),
        path: entry.sidecar.clone().unwrap_or_default(),
    });
    record.restore_points.push(RestorePointRecord {
        backup: entry.id.clone(),
        stanza: point.stanza.clone(),
        name: point.name.clone(),
        lsn: point.lsn.clone(),
        timeline: point.timeline,
        time: point.time.to_rfc3339(),
    });
    let audited = |mut record: Record, outcome: Outcome, detail: String| {
        record.decision = outcome;
        record.detail = Some(crate::target::redact(&detail));
        if let Err(e) = audit::append(&dir, &record) {
            note!("dbguard: warning: could not write the audit log: {e}");
        }
    };
    let what = format!(
        "whole-cluster restore of stanza \"{}\" to restore point {} ({})",
        point.stanza, point.name, entry.id
    );

    let checked = base_backup(&point).and_then(|base| {
        server_stopped(ctx, &meta, &point)?;
        Ok(base)
    });
    let base = match checked {
        Ok(base) => base,
        Err(e) => {
            audited(record, Outcome::Refused, format!("{what}: {e}"));
            return Err(e);
        }
    };

    let data = point
        .data_directory
        .clone()
        .map(|d| format!("data directory {d}"))
        .unwrap_or_else(|| "the data directory pgBackRest's pg1-path names".to_owned());
    let question = Question {
        emphasis: vec![point.stanza.clone()],
        summary: vec![
            format!(
                "Rewind the WHOLE cluster of pgBackRest stanza \"{}\" (server {}:{}, stopped) to restore point {} ({}, LSN {}), taken for {} of \"{}\".",
                point.stanza,
                meta.host,
                meta.port,
                point.name,
                point.time,
                point.lsn,
                entry.id,
                meta.database
            ),
            "Every database of the cluster goes back to that moment: whatever was written anywhere in it afterwards is no longer in the cluster (it stays in the WAL archive, on the old timeline, until pgBackRest expires it).".to_owned(),
            format!(
                "pgBackRest restores backup {base} over the {data} (--delta) and recovery replays WAL up to the point, then promotes."
            ),
        ],
        expect: Expect::Word(point.stanza.clone()),
    };
    let hint = format!(
        "a whole-cluster restore is confirmed only by a person at a terminal ({} and --yes do not answer it); run it from a terminal, or run pgBackRest yourself: pgbackrest --stanza={} --delta --type=name --target={} --target-action=promote --set={base} restore",
        confirm::YES_ENV,
        point.stanza,
        point.name
    );
    if let Err(e) = confirm::confirm_on_terminal(&question, &hint) {
        audited(record, Outcome::Refused, format!("{what}: {e}"));
        return Err(e);
    }

    writeln!(
        out,
        "Restoring stanza \"{}\" to restore point {} from backup {base} ...",
        point.stanza, point.name
    )
    .map_err(|e| Error::io("writing to stdout", e))?;
    let mut cmd = pgbackrest(&point.stanza);
    cmd.arg("--delta")
        .arg("--type=name")
        .arg(format!("--target={}", point.name))
        .arg("--target-action=promote")
        .arg(format!("--set={base}"))
        .arg("restore");
    if let Err(e) = run_as_cluster_owner(cmd, point.data_directory.as_deref()) {
        let message = format!(
            "{what} failed: {e}; the data directory may be partly rewritten: do not start the server, fix the cause and run the same command again (a pgBackRest restore can be repeated)"
        );
        audited(record, Outcome::RestoreFailed, message.clone());
        return Err(failed(message));
    }
    audited(
        record,
        Outcome::Restored,
        format!("{what}: pgBackRest restored backup {base}; the server is left stopped"),
    );
    let start = match &point.data_directory {
        Some(d) => {
            format!("pg_ctl -D {d} start, or your service manager (systemctl start postgresql@…)")
        }
        None => "your service manager (systemctl start postgresql@…) or pg_ctl -D DATADIR start"
            .to_owned(),
    };
    writeln!(
        out,
        "Restored: the cluster of stanza \"{stanza}\" will come back as of restore point {name}.\n\
         The server is still stopped; dbguard never starts it. Start it with {start}:\n\
         it replays WAL up to {name}, then promotes to a new timeline and accepts writes.\n\
         Then take a new full backup (pgbackrest --stanza={stanza} --type=full backup).",
        stanza = point.stanza,
        name = point.name,
    )
    .map_err(|e| Error::io("writing to stdout", e))?;
    Ok(())
}

/// Refuses unless the cluster's server is stopped: no `postmaster.pid` in
/// its data directory (where known), and nothing answering on its host and
/// port (a connection refused, or no socket file). Anything else, even an
/// authentication failure, means a server is there.
fn server_stopped(ctx: &Context, meta: &Metadata, point: &RestorePoint) -> Result<(), Error> {
    let running = |evidence: String| -> Error {
        Refusal::of(
            format!("a whole-cluster restore of stanza \"{}\"", point.stanza),
            format!("the server is running ({evidence})"),
        )
        .hint("stop it first (pg_ctl stop, or your service manager); dbguard never stops it")
        .into()
    };
    if let Some(data) = &point.data_directory {
        let pid = Path::new(data).join("postmaster.pid");
        if pid.exists() {
            return Err(running(format!(
                "{} exists; if it crashed, start and stop it cleanly once",
                pid.display()
            )));
        }
    }
    let tools = PgTools::resolve(ctx)?;
    let server = Target::explicit(&meta.host, meta.port, &meta.user, "postgres");
    match tools.query(&server, "SELECT 1") {
        Ok(_) => Err(running(format!(
            "it accepts connections on {}:{}",
            meta.host, meta.port
        ))),
        Err(crate::pgtools::QueryError::Failed {
            connection: true,
            detail,
        }) if detail.contains("Connection refused")
            || detail.contains("No such file or directory") =>
        {
            Ok(())
        }
        Err(e) => Err(running(format!(
            "{}:{} answered: {}",
            meta.host,
            meta.port,
            first_error_line(&e.into_error(&server).to_string())
        ))),
    }
}

/// Runs `cmd` as the owner of the cluster's data directory when dbguard
/// runs as root (else the `postgres` user), so every file pgBackRest
/// writes belongs to the server; otherwise as ourselves.
fn run_as_cluster_owner(mut cmd: Command, data_directory: Option<&str>) -> Result<(), Error> {
    if Uid::effective().is_root() {
        let owner = match data_directory.and_then(|d| fs::metadata(d).ok()) {
            Some(m) => (m.uid(), m.gid()),
            None => {
                let user = User::from_name("postgres").ok().flatten().ok_or_else(|| {
                    failed("running as root, pgBackRest needs to run as the cluster's owner, and there is no `postgres` user".into())
                })?;
                (user.uid.as_raw(), user.gid.as_raw())
            }
        };
        cmd.uid(owner.0).gid(owner.1);
    }
    cmd.current_dir("/").stdin(Stdio::null());
    let out = cmd
        .output()
        .map_err(|e| failed(format!("cannot run pgbackrest: {e}")))?;
    if out.status.success() {
        return Ok(());
    }
    Err(failed(format!(
        "pgbackrest restore: {}",
        first_error_line(&format!(
            "{}{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        ))
    )))
}

/// The pgBackRest backup a restore to `point` starts from (`--set`): with
/// `--type=name` pgBackRest would take the newest backup, which may have
/// been taken after the point and could never reach it.
fn base_backup(point: &RestorePoint) -> Result<String, Error> {
    match point_state(point).map_err(failed)? {
        PointState::Restorable { base, .. } => Ok(base),
        PointState::Expired(why) | PointState::Missing(why) => Err(Error::Failed {
            message: format!(
                "refusing to restore restore point {}: {why}; nothing was changed",
                point.name
            ),
            code: exit::FOUND,
        }),
    }
}

fn free_port() -> Result<u16, Error> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| Error::io("finding a free port for the scratch cluster", e))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| Error::io("finding a free port for the scratch cluster", e))
}

fn failed(message: String) -> Error {
    Error::Failed {
        message,
        code: exit::ERROR,
    }
}

/// A scratch cluster: its directory, removed (server stopped first) on drop.
struct Scratch {
    root: PathBuf,
    data: PathBuf,
    socket: PathBuf,
    port: u16,
    pg_ctl: PathBuf,
    /// Who runs pgBackRest and the server, when dbguard runs as root.
    owner: Option<(Uid, Gid)>,
}

impl Scratch {
    fn create(port: u16, server_version: &str) -> Result<Scratch, Error> {
        let pg_ctl = find_pg_ctl(server_version)?;
        let owner = if Uid::effective().is_root() {
            let user = User::from_name("postgres").ok().flatten().ok_or_else(|| {
                failed("running as root, the scratch cluster needs a `postgres` user to run as (PostgreSQL refuses root)".into())
            })?;
            Some((user.uid, user.gid))
        } else {
            None
        };
        let root = tempfile::Builder::new()
            .prefix("dbguard-pitr-")
            .tempdir()
            .map_err(|e| Error::io("creating the scratch directory", e))?
            .keep();
        let scratch = Scratch {
            data: root.join("data"),
            socket: root.join("sock"),
            root,
            port,
            pg_ctl,
            owner,
        };
        for dir in [&scratch.root, &scratch.data, &scratch.socket] {
            fs::create_dir_all(dir).map_err(|e| Error::io("creating the scratch directory", e))?;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .map_err(|e| Error::io("creating the scratch directory", e))?;
            scratch.give(dir)?;
        }
        Ok(scratch)
    }

    fn give(&self, path: &Path) -> Result<(), Error> {
        match self.owner {
            Some((uid, gid)) => chown(path, Some(uid), Some(gid))
                .map_err(|e| failed(format!("cannot hand {} to postgres: {e}", path.display()))),
            None => Ok(()),
        }
    }

    fn run(&self, mut cmd: Command, what: &str) -> Result<(), Error> {
        cmd.current_dir(&self.root).stdin(Stdio::null());
        if let Some((uid, gid)) = self.owner {
            cmd.uid(uid.as_raw()).gid(gid.as_raw());
        }
        let out = cmd
            .output()
            .map_err(|e| failed(format!("{what}: cannot run {:?}: {e}", cmd.get_program())))?;
        if out.status.success() {
            return Ok(());
        }
        Err(failed(format!(
            "{what} failed: {}",
            first_error_line(&format!(
                "{}{}",
                String::from_utf8_lossy(&out.stderr),
                String::from_utf8_lossy(&out.stdout)
            ))
        )))
    }

    /// `pgbackrest restore` of the cluster as of the restore point. The
    /// tablespaces go under the scratch directory too, never to their
    /// live locations.
    fn restore(&self, point: &RestorePoint, base: &str) -> Result<(), Error> {
        let tablespaces = self.root.join("tablespaces");
        fs::create_dir_all(&tablespaces)
            .map_err(|e| Error::io("creating the scratch directory", e))?;
        self.give(&tablespaces)?;
        let mut cmd = pgbackrest(&point.stanza);
        cmd.arg(format!("--pg1-path={}", self.data.display()))
            .arg("--type=name")
            .arg(format!("--target={}", point.name))
            .arg("--target-action=promote")
            .arg("--archive-mode=off")
            .arg(format!("--set={base}"))
            .arg(format!("--tablespace-map-all={}", tablespaces.display()))
            .arg("--log-level-console=error")
            .arg("restore");
        self.run(cmd, "pgbackrest restore")
    }

    /// Starts the restored cluster on the scratch port, reachable only
    /// through its private socket, and waits until recovery reached the
    /// restore point and promoted.
    fn start(&self, point: &RestorePoint) -> Result<(), Error> {
        // Debian keeps the configuration outside the data directory; the
        // scratch cluster needs none of it.
        let conf = self.data.join("postgresql.conf");
        if !conf.exists() {
            fs::write(&conf, "").map_err(|e| Error::io("writing the scratch configuration", e))?;
            self.give(&conf)?;
        }
        let hba = self.root.join("pg_hba.conf");
        fs::write(&hba, "local all all trust\n")
            .map_err(|e| Error::io("writing the scratch configuration", e))?;
        self.give(&hba)?;
        let options = format!(
            "-c port={} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c archive_mode=off -c hba_file={} -c hot_standby=off",
            self.port,
            self.socket.display(),
            hba.display()
        );
        let mut cmd = Command::new(&self.pg_ctl);
        cmd.arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(self.log())
            .args(["-w", "-t"])
            .arg(RECOVERY_WAIT.as_secs().to_string())
            .arg("-o")
            .arg(options)
            .arg("start");
        self.run(cmd, "starting the scratch cluster")
            .map_err(|e| self.start_failure(point, e.to_string()))?;
        // With hot_standby off, pg_ctl may return while WAL is still
        // replayed; the server is ready only once recovery reached the
        // point and promoted.
        let deadline = Instant::now() + RECOVERY_WAIT;
        loop {
            match self.status() {
                Some(status)
                    if status == "ready" && !self.data.join("recovery.signal").exists() =>
                {
                    return Ok(());
                }
                Some(_) => {}
                None => {
                    return Err(self.start_failure(
                        point,
                        "the scratch cluster stopped during recovery".into(),
                    ));
                }
            }
            if Instant::now() > deadline {
                return Err(failed(format!(
                    "the scratch cluster did not finish recovery within {} s; its log: {}",
                    RECOVERY_WAIT.as_secs(),
                    self.log().display()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The postmaster's status line (`starting`, `standby`, `ready`), or
    /// `None` when no server runs.
    fn status(&self) -> Option<String> {
        let pid = fs::read_to_string(self.data.join("postmaster.pid")).ok()?;
        Some(pid.lines().nth(7).unwrap_or("").trim().to_owned())
    }

    /// Why the scratch cluster did not come up, from its log.
    fn start_failure(&self, point: &RestorePoint, fallback: String) -> Error {
        let log = fs::read_to_string(self.log()).unwrap_or_default();
        if log.contains("recovery ended before configured recovery target was reached") {
            failed(format!(
                "restore point {} was not found in the archived WAL of stanza \"{}\": nothing was restored",
                point.name, point.stanza
            ))
        } else if log.contains("could not bind") || log.contains("Address already in use") {
            failed(format!(
                "scratch port {} was taken before the scratch cluster could use it; try again",
                self.port
            ))
        } else {
            let last = log
                .lines()
                .rev()
                .find(|l| l.contains("FATAL") || l.contains("PANIC"));
            failed(format!(
                "{fallback}{}",
                last.map(|l| format!(" ({l})")).unwrap_or_default()
            ))
        }
    }

    fn log(&self) -> PathBuf {
        self.root.join("server.log")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.data.join("postmaster.pid").exists() {
            let mut cmd = Command::new(&self.pg_ctl);
            cmd.arg("-D")
                .arg(&self.data)
                .args(["-m", "fast", "-w", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let _ = self.run(cmd, "stopping the scratch cluster");
        }
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// The server's own pg_ctl for `server_version` (Debian keeps one per
/// major version under /usr/lib/postgresql), else the one on PATH.
fn find_pg_ctl(server_version: &str) -> Result<PathBuf, Error> {
    let major = server_version
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap_or("");
    let debian = PathBuf::from(format!("/usr/lib/postgresql/{major}/bin/pg_ctl"));
    if !major.is_empty() && debian.is_file() {
        return Ok(debian);
    }
    which::which("pg_ctl").map_err(|_| {
        failed(format!(
            "pg_ctl for PostgreSQL {server_version} not found: the scratch cluster needs the server's own binaries"
        ))
    })
}
