//! One PostgreSQL cluster per test run: initdb and pg_ctl on a private
//! socket directory and a free TCP port on 127.0.0.1, run as the `postgres`
//! user when the tests run as root (initdb refuses root). Stopped at process
//! exit (atexit), and by a watchdog if the test process is killed outright.

use std::ffi::OsString;
use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{OnceLock, RwLock};
use std::time::{Duration, Instant};

use nix::unistd::{Gid, Uid, User, chown};

pub struct Cluster {
    /// Everything the cluster owns; removed when it stops.
    pub root: PathBuf,
    pub data: PathBuf,
    pub socket_dir: PathBuf,
    pub port: u16,
    /// Directory with initdb, pg_ctl and postgres.
    pub server_bin: PathBuf,
    /// The real client tools (psql, pg_dump, ...), as found on PATH.
    pub client_bin: PathBuf,
    /// Who the server runs as, when the tests run as root.
    owner: Option<(Uid, Gid)>,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();
static NEXT_DB: AtomicUsize = AtomicUsize::new(0);

/// Creating a database takes this lock shared; a test whose output lists
/// every database (`psql -l`) takes it exclusively so the list holds still.
pub static DB_LIST: RwLock<()> = RwLock::new(());

/// The cluster for this test run, started on first use.
pub fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(|| match Cluster::start() {
        Ok(cluster) => {
            // SAFETY: registering a plain extern "C" function with no captures.
            unsafe { libc::atexit(stop_at_exit) };
            cluster
        }
        Err(message) => panic!("test cluster: {message}"),
    })
}

extern "C" fn stop_at_exit() {
    if let Some(cluster) = CLUSTER.get() {
        cluster.stop();
    }
}

/// A database of its own for one test.
pub struct TestDb {
    pub name: String,
    pub cluster: &'static Cluster,
}

impl Cluster {
    fn start() -> Result<Cluster, String> {
        Cluster::start_with("", |_| Ok(()))
    }

    /// A cluster of its own with `settings` appended to its
    /// postgresql.conf; `prepare` runs after initdb and before the server
    /// starts (with the settings already in place). Stopped by the
    /// watchdog when the test process ends, and by [`Cluster::stop`].
    pub fn start_with(
        settings: &str,
        prepare: impl Fn(&Cluster) -> Result<(), String>,
    ) -> Result<Cluster, String> {
        let server_bin = find_server_bin()?;
        let client_bin = which::which("psql")
            .map_err(|_| {
                "psql not found on PATH: apt-get install -y postgresql-client".to_string()
            })?
            .parent()
            .map(Path::to_path_buf)
            .ok_or("psql has no parent directory")?;
        let root = tempfile::Builder::new()
            .prefix("dbguard-it-")
            .tempdir_in("/tmp")
            .map_err(|e| format!("temp dir: {e}"))?
            .keep();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())?;
        let data = root.join("data");
        let socket_dir = root.join("sock");
        fs::create_dir(&socket_dir).map_err(|e| e.to_string())?;

        let owner = if Uid::effective().is_root() {
            let user = User::from_name("postgres").ok().flatten().ok_or(
                "running as root needs a `postgres` user (it comes with the postgresql package)",
            )?;
            for dir in [&root, &socket_dir] {
                chown(dir, Some(user.uid), Some(user.gid)).map_err(|e| e.to_string())?;
            }
            Some((user.uid, user.gid))
        } else {
            None
        };

        let port = free_port()?;
        let mut cluster = Cluster {
            root,
            data,
            socket_dir,
            port,
            server_bin,
            client_bin,
            owner,
        };
        cluster.run_server_tool(
            "initdb",
            &[
                "-D".into(),
                cluster.data.clone().into(),
                "-U".into(),
                "postgres".into(),
                "--auth=trust".into(),
                "-E".into(),
                "UTF8".into(),
                "--no-locale".into(),
                "--no-sync".into(),
                "--no-instructions".into(),
            ],
        )?;
        cluster.watchdog();
        if !settings.is_empty() {
            let conf = cluster.data.join("postgresql.conf");
            let mut text = fs::read_to_string(&conf).map_err(|e| e.to_string())?;
            text.push_str(settings);
            fs::write(&conf, text).map_err(|e| e.to_string())?;
        }
        prepare(&cluster)?;
        // Port races with another process are rare; retry on a new port.
        for _ in 0..3 {
            let options = format!(
                "-k {} -p {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 -c log_line_prefix=@%d@",
                cluster.socket_dir.display(),
                cluster.port
            );
            let log = cluster.root.join("server.log");
            let started = cluster.run_server_tool(
                "pg_ctl",
                &[
                    "-D".into(),
                    cluster.data.clone().into(),
                    "-l".into(),
                    log.into(),
                    "-w".into(),
                    "-t".into(),
                    "60".into(),
                    "-o".into(),
                    options.into(),
                    "start".into(),
                ],
            );
            if started.is_ok() {
                return Ok(cluster);
            }
            cluster.port = free_port()?;
        }
        let log = fs::read_to_string(cluster.root.join("server.log")).unwrap_or_default();
        Err(format!("the server did not start; its log:\n{log}"))
    }

    fn run_server_tool(&self, tool: &str, args: &[OsString]) -> Result<(), String> {
        let mut cmd = Command::new(self.server_bin.join(tool));
        cmd.args(args);
        self.run_as_owner(cmd)
    }

    /// Hands `path` to the server's owner (when the tests run as root).
    pub fn give_to_owner(&self, path: &Path) -> Result<(), String> {
        match self.owner {
            Some((uid, gid)) => chown(path, Some(uid), Some(gid)).map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }

    /// Runs `cmd` as the server's owner (in the cluster's root directory);
    /// an error carries its output.
    pub fn run_as_owner(&self, mut cmd: Command) -> Result<(), String> {
        let tool = cmd.get_program().to_string_lossy().into_owned();
        cmd.current_dir(&self.root).stdin(Stdio::null());
        if let Some((uid, gid)) = self.owner {
            cmd.uid(uid.as_raw()).gid(gid.as_raw());
        }
        let out = cmd.output().map_err(|e| format!("{tool}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "{tool} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(())
    }

    /// A detached shell that stops the server and removes its files once
    /// this process is gone, whatever way it ended.
    fn watchdog(&self) {
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
             pm=$(head -n1 {data}/postmaster.pid 2>/dev/null); \
             [ -n \"$pm\" ] && kill -QUIT \"$pm\" 2>/dev/null; sleep 1; rm -rf {root}",
            pid = std::process::id(),
            data = self.data.display(),
            root = self.root.display(),
        );
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd.process_group(0);
        let _ = cmd.spawn();
    }

    /// Fast shutdown, then the files go.
    pub fn stop(&self) {
        if let Some(pid) = fs::read_to_string(self.data.join("postmaster.pid"))
            .ok()
            .and_then(|s| s.lines().next()?.trim().parse::<i32>().ok())
        {
            let pid = nix::unistd::Pid::from_raw(pid);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
            let deadline = Instant::now() + Duration::from_secs(10);
            while nix::sys::signal::kill(pid, None).is_ok() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = fs::remove_dir_all(&self.root);
    }

    /// The server's log. Each line opens with `@DATABASE@`, so a test
    /// that turns on `log_statement` for its own database can pick out
    /// what the server ran there.
    pub fn server_log(&self) -> PathBuf {
        self.root.join("server.log")
    }

    /// The real client tool, e.g. `psql` or `pg_dump`.
    pub fn client(&self, tool: &str) -> PathBuf {
        self.client_bin.join(tool)
    }

    /// Connection environment for the cluster (database `postgres`).
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("PGHOST".into(), self.socket_dir.display().to_string()),
            ("PGPORT".into(), self.port.to_string()),
            ("PGUSER".into(), "postgres".into()),
            ("PGDATABASE".into(), "postgres".into()),
            ("PGCONNECT_TIMEOUT".into(), "10".into()),
        ]
    }

    /// Runs SQL as the superuser on `db` with the real psql; panics on error.
    pub fn sql(&self, db: &str, sql: &str) -> String {
        let out = Command::new(self.client("psql"))
            .envs(self.env())
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                db,
                "-c",
                sql,
            ])
            .stdin(Stdio::null())
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql -c {sql:?} on {db} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim_end().to_string()
    }

    /// A new, empty database for one test, named after `hint`.
    pub fn create_db(&'static self, hint: &str) -> TestDb {
        let n = NEXT_DB.fetch_add(1, Ordering::Relaxed);
        let clean: String = hint
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(40)
            .collect();
        let name = format!("t{n}_{clean}");
        let _shared = DB_LIST.read().unwrap_or_else(|e| e.into_inner());
        self.sql("postgres", &format!("CREATE DATABASE \"{name}\""));
        TestDb {
            name,
            cluster: self,
        }
    }
}

impl TestDb {
    /// PG* variables that point libpq tools at this database.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = self.cluster.env();
        for (k, v) in &mut env {
            if k == "PGDATABASE" {
                *v = self.name.clone();
            }
        }
        env
    }

    /// A libpq URI over TCP.
    pub fn url(&self) -> String {
        format!(
            "postgresql://postgres@127.0.0.1:{}/{}",
            self.cluster.port, self.name
        )
    }

    /// A SQLAlchemy URL over TCP for the psycopg2 driver.
    pub fn sqlalchemy_url(&self) -> String {
        format!(
            "postgresql+psycopg2://postgres@127.0.0.1:{}/{}",
            self.cluster.port, self.name
        )
    }

    /// Runs SQL on this database with the real psql; panics on error.
    pub fn sql(&self, sql: &str) -> String {
        self.cluster.sql(&self.name, sql)
    }
}

/// Server binaries: initdb and pg_ctl side by side on PATH, else the newest
/// /usr/lib/postgresql/*/bin (Debian keeps them off PATH).
fn find_server_bin() -> Result<PathBuf, String> {
    if let Ok(initdb) = which::which("initdb") {
        let dir = fs::canonicalize(&initdb)
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf));
        if let Some(dir) = dir.filter(|d| d.join("pg_ctl").exists()) {
            return Ok(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).ok_or_else(|| {
        "PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install -y postgresql"
            .to_string()
    })
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("free port: {e}"))?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}
