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

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::unistd::{Gid, Uid, User, chown};

use super::{RestoreReport, RestoreRequest, request_target};
use crate::backup::engine::RestorePoint;
use crate::backup::engine::pgbackrest::pgbackrest;
use crate::backup::{self, Metadata, Request, Scope};
use crate::config::Config;
use crate::confirm::{self, Expect, Question};
use crate::error::exit;
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
    let consent = confirm::confirm(ctx, &question, request.yes)?;
    if consent != confirm::Consent::Typed {
        for line in &question.summary {
            note!("{line}");
        }
    }

    let scratch = Scratch::create(port, &meta.server_version)?;
    writeln!(
        out,
        "Restoring stanza \"{}\" to restore point {} in {} ...",
        point.stanza,
        point.name,
        scratch.root.display()
    )
    .map_err(|e| Error::io("writing to stdout", e))?;
    scratch.restore(point)?;
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
            // Confirmed above, for this very target.
            yes: true,
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
    let scratch = Scratch::create(port, &meta.server_version)?;
    scratch.restore(point)?;
    scratch.start(point)?;
    let target = Target::explicit(
        &scratch.socket.display().to_string(),
        port,
        &meta.user,
        &meta.database,
    );
    inspect(&target, &scratch.root)
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
    fn restore(&self, point: &RestorePoint) -> Result<(), Error> {
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
