//! A second throwaway cluster for the point-in-time recovery tests, started
//! on first use only (most runs never pay for it): WAL archiving on, every
//! segment pushed by the real `pgbackrest archive-push` into a repository
//! in the cluster's temporary directory, with its own pgbackrest.conf
//! (tests point dbguard at it through `PGBACKREST_CONFIG`), the stanza
//! created and one full backup taken before any test database exists. So
//! every row a test writes is replayed from archived WAL on a restore.
//!
//! A test that rewinds a whole cluster gets one of its own
//! ([`own_pitr_cluster`]: its own stanza and repository), which it may stop
//! and start without disturbing the others.

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use super::cluster::{Cluster, TestDb};

/// The stanza every PITR test uses.
pub const STANZA: &str = "it";

pub struct PitrCluster {
    pub cluster: Cluster,
    /// pgbackrest.conf for this cluster's stanza.
    pub config: PathBuf,
    pub repo: PathBuf,
    pub stanza: String,
}

static PITR: OnceLock<PitrCluster> = OnceLock::new();

/// A test that expires backups and WAL holds this exclusively; every
/// other PITR test holds it shared for as long as it needs what the
/// repository holds now.
static REPOSITORY: RwLock<()> = RwLock::new(());

/// The repository, for a test that only adds restore points to it.
pub fn repository_shared() -> RwLockReadGuard<'static, ()> {
    REPOSITORY.read().unwrap_or_else(|e| e.into_inner())
}

/// The repository, for a test that expires what others may need.
pub fn repository_exclusive() -> RwLockWriteGuard<'static, ()> {
    REPOSITORY.write().unwrap_or_else(|e| e.into_inner())
}

/// The archiving cluster for this test run, started, stanza created and
/// fully backed up on first use.
pub fn pitr_cluster() -> &'static PitrCluster {
    PITR.get_or_init(|| match PitrCluster::start(STANZA) {
        Ok(pitr) => {
            // SAFETY: registering a plain extern "C" function with no captures.
            unsafe { libc::atexit(stop_at_exit) };
            pitr
        }
        Err(message) => panic!("pgBackRest test cluster: {message}"),
    })
}

/// An archiving cluster for one test alone, with its own stanza and
/// repository, fully backed up; the test stops it (`cluster.stop()`), or
/// the watchdog does when the test process ends.
pub fn own_pitr_cluster(stanza: &str) -> &'static PitrCluster {
    match PitrCluster::start(stanza) {
        // A TestDb needs its cluster for the rest of the run.
        Ok(pitr) => Box::leak(Box::new(pitr)),
        Err(message) => panic!("pgBackRest test cluster: {message}"),
    }
}

extern "C" fn stop_at_exit() {
    if let Some(pitr) = PITR.get() {
        pitr.cluster.stop();
    }
}

impl PitrCluster {
    fn start(stanza: &str) -> Result<PitrCluster, String> {
        which::which("pgbackrest")
            .map_err(|_| "pgbackrest not found on PATH: run scripts/test-prereqs.sh".to_string())?;
        // The configuration lives in the cluster's root, which exists only
        // once initdb ran: archive_command names it by a path fixed here.
        let config_name = "pgbackrest.conf";
        let archive_command =
            format!("pgbackrest --config=%CONFIG% --stanza={stanza} archive-push %p");
        let written = std::cell::RefCell::new(None);
        let cluster = Cluster::start_with("", |cluster| {
            let config = cluster.root.join(config_name);
            let command = archive_command.replace("%CONFIG%", &config.display().to_string());
            let conf = cluster.data.join("postgresql.conf");
            let mut text = fs::read_to_string(&conf).map_err(|e| e.to_string())?;
            text.push_str(&format!(
                "\n# pgBackRest test cluster\nwal_level = replica\narchive_mode = on\narchive_command = '{command}'\narchive_timeout = 0\nmax_wal_senders = 3\n"
            ));
            fs::write(&conf, text).map_err(|e| e.to_string())?;
            for dir in [
                "repo",
                "pgbackrest-log",
                "pgbackrest-lock",
                "pgbackrest-spool",
            ] {
                let path = cluster.root.join(dir);
                fs::create_dir_all(&path).map_err(|e| e.to_string())?;
                cluster.give_to_owner(&path)?;
            }
            write_config(cluster, &config, stanza)?;
            *written.borrow_mut() = Some(config);
            Ok(())
        })?;
        let config = written
            .into_inner()
            .ok_or("the cluster started without its pgBackRest configuration")?;
        // The port may have changed on a retry after the file was written.
        write_config(&cluster, &config, stanza)?;
        let pitr = PitrCluster {
            repo: cluster.root.join("repo"),
            cluster,
            config,
            stanza: stanza.to_owned(),
        };
        pitr.pgbackrest(&["stanza-create"])?;
        pitr.pgbackrest(&["--type=full", "backup"])?;
        Ok(pitr)
    }

    /// Runs `pgbackrest --config=… --stanza=STANZA ARGS` as the server's owner.
    pub fn pgbackrest(&self, args: &[&str]) -> Result<(), String> {
        let mut cmd = Command::new("pgbackrest");
        cmd.arg(format!("--config={}", self.config.display()))
            .arg(format!("--stanza={}", self.stanza))
            .args(args);
        self.cluster.run_as_owner(cmd)
    }

    /// A new, empty database for one test, in the archiving cluster.
    pub fn create_db(&'static self, hint: &str) -> TestDb {
        self.cluster.create_db(hint)
    }

    /// The environment dbguard needs to find this cluster's stanza.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![(
            "PGBACKREST_CONFIG".into(),
            self.config.display().to_string(),
        )]
    }

    /// A `.dbguard.toml` rule that guards `db` with the pgBackRest engine.
    pub fn database_rule(&self, db: &TestDb, extra: &str) -> String {
        format!(
            "[[database]]\ndbname = \"{}\"\nengine = \"pgbackrest\"\nstanza = \"{}\"\n{extra}",
            db.name, self.stanza
        )
    }

    /// Stops the server (fast shutdown), keeping its files.
    pub fn stop_server(&self) -> Result<(), String> {
        let mut cmd = Command::new(self.cluster.server_bin.join("pg_ctl"));
        cmd.arg("-D")
            .arg(&self.cluster.data)
            .args(["-m", "fast", "-w", "stop"]);
        self.cluster.run_as_owner(cmd)
    }

    /// Starts the server again with the settings it was first started with
    /// (and pgBackRest's configuration in its environment, for the
    /// restore_command a restore wrote), and waits until it has left
    /// recovery and accepts writes.
    pub fn start_server(&self) -> Result<(), String> {
        let c = &self.cluster;
        let options = format!(
            "-k {} -p {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 -c log_line_prefix=@%d@",
            c.socket_dir.display(),
            c.port
        );
        let mut cmd = Command::new(c.server_bin.join("pg_ctl"));
        cmd.envs(self.env())
            .arg("-D")
            .arg(&c.data)
            .arg("-l")
            .arg(c.server_log())
            .args(["-w", "-t", "120", "-o"])
            .arg(options)
            .arg("start");
        c.run_as_owner(cmd)?;
        let deadline = Instant::now() + Duration::from_secs(120);
        while c.sql("postgres", "select pg_is_in_recovery()") != "f" {
            if Instant::now() > deadline {
                return Err("the server did not leave recovery within 120 s".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }
}

fn write_config(cluster: &Cluster, config: &std::path::Path, stanza: &str) -> Result<(), String> {
    let root = cluster.root.display();
    let text = format!(
        "[global]\n\
         repo1-path={root}/repo\n\
         repo1-retention-full=4\n\
         log-path={root}/pgbackrest-log\n\
         lock-path={root}/pgbackrest-lock\n\
         spool-path={root}/pgbackrest-spool\n\
         log-level-console=warn\n\
         log-level-file=off\n\
         start-fast=y\n\
         compress-type=none\n\
         \n\
         [{stanza}]\n\
         pg1-path={data}\n\
         pg1-port={port}\n\
         pg1-socket-path={socket}\n\
         pg1-user=postgres\n",
        data = cluster.data.display(),
        port = cluster.port,
        socket = cluster.socket_dir.display(),
    );
    fs::write(config, text).map_err(|e| e.to_string())?;
    cluster.give_to_owner(config)
}
