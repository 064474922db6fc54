//! A real S3-compatible server for the remote-copy tests: moto's standalone
//! server (pinned, installed into its own venv under target/ once and
//! reused), started once per test run on a free loopback port. Each test
//! creates its own bucket through the S3 API itself (a signed PUT, as any
//! client does), so tests never see each other's objects.
//!
//! Credentials reach dbguard the standard way, through `AWS_*` variables
//! that [`S3Server::env`] returns; moto accepts any key pair by default.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The pins; changing them rebuilds the venv on the next run. `moto[s3]`
/// plus flask is the S3 server alone (`moto[server]` would bring every
/// service's dependencies).
pub const PINS: &[&str] = &["moto[s3]==5.2.5", "flask==3.1.3", "flask-cors==6.0.5"];

/// Test credentials: moto's defaults accept any, but they must be present.
pub const ACCESS_KEY: &str = "dbguard-test-key";
pub const SECRET_KEY: &str = "dbguard-test-secret-3f1c";

pub struct S3Server {
    pub endpoint: String,
    child: Child,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

static SERVER: OnceLock<S3Server> = OnceLock::new();

/// The server for this test run (started on first use).
pub fn s3_server() -> &'static S3Server {
    SERVER.get_or_init(|| match start() {
        Ok(server) => server,
        Err(message) => panic!("S3 test server: {message}"),
    })
}

/// A server of its own that checks signatures (moto's IAM enforcement),
/// with one bucket, `guarded`, and the key pair of a user allowed `s3:*`.
/// For the wrong-credentials tests; stopped when dropped.
pub fn authenticating_server() -> (S3Server, (String, String)) {
    // The first three requests (creating the user, its key and its policy)
    // are let through; everything after is checked.
    let server = start_with(&[("INITIAL_NO_AUTH_ACTION_COUNT", "3")])
        .unwrap_or_else(|e| panic!("S3 test server: {e}"));
    let out = server.python(
        "import json\n\
         iam = boto3.client('iam', endpoint_url=c.meta.endpoint_url, aws_access_key_id='x', aws_secret_access_key='x', region_name='us-east-1')\n\
         iam.create_user(UserName='dbguard')\n\
         k = iam.create_access_key(UserName='dbguard')['AccessKey']\n\
         iam.put_user_policy(UserName='dbguard', PolicyName='s3', PolicyDocument=json.dumps({'Version': '2012-10-17', 'Statement': [{'Effect': 'Allow', 'Action': 's3:*', 'Resource': '*'}]}))\n\
         boto3.client('s3', endpoint_url=c.meta.endpoint_url, aws_access_key_id=k['AccessKeyId'], aws_secret_access_key=k['SecretAccessKey'], region_name='us-east-1').create_bucket(Bucket='guarded')\n\
         print(k['AccessKeyId'], k['SecretAccessKey'])",
    );
    let mut words = out.split_whitespace().map(str::to_owned);
    let key = (
        words.next().expect("access key id"),
        words.next().expect("secret key"),
    );
    (server, key)
}

fn start() -> Result<S3Server, String> {
    start_with(&[])
}

fn start_with(env: &[(&str, &str)]) -> Result<S3Server, String> {
    let bin = ensure_venv()?;
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let log = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("moto-{port}.log"));
    let log_file = fs::File::create(&log).map_err(|e| e.to_string())?;
    let child = Command::new(bin.join("moto_server"))
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
        .stderr(log_file)
        .spawn()
        .map_err(|e| format!("cannot start moto_server: {e}"))?;
    // The shared server lives in a static, which is never dropped: a
    // detached shell stops it once this test process is gone, however it
    // ended.
    let _ = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "while kill -0 {} 2>/dev/null; do sleep 1; done; kill {} 2>/dev/null",
            std::process::id(),
            child.id()
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let server = S3Server {
        endpoint: format!("http://127.0.0.1:{port}"),
        child,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err(format!(
                "moto_server did not listen within 60 s; its log: {}",
                log.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(server)
}

fn ensure_venv() -> Result<PathBuf, String> {
    super::venv::ensure("s3-venv", PINS, "moto_server")
}

impl S3Server {
    /// The `AWS_*` variables a client needs for this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_owned()),
            ("AWS_DEFAULT_REGION", "us-east-1".to_owned()),
            // No instance-metadata lookups from a test machine.
            ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ]
    }

    /// A new, empty bucket with a name unique to this run, created with a
    /// plain S3 `PUT /bucket` through the python client moto ships with.
    pub fn create_bucket(&self, hint: &str) -> String {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "{}-{}-{}",
            hint.to_lowercase().replace('_', "-"),
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        self.create_named_bucket(&name);
        name
    }

    /// Creates bucket `name`.
    pub fn create_named_bucket(&self, name: &str) {
        self.python(&format!("c.create_bucket(Bucket={name:?})"));
    }

    /// Object keys in `bucket`, sorted.
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        let out = self.python(&format!(
            "print('\\n'.join(sorted(o['Key'] for o in c.list_objects_v2(Bucket={bucket:?}).get('Contents', []))))"
        ));
        out.lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// The bytes of one object.
    pub fn get(&self, bucket: &str, key: &str) -> Vec<u8> {
        let dir = tempfile::tempdir().expect("temp dir");
        let to = dir.path().join("object");
        self.python(&format!(
            "c.download_file({bucket:?}, {key:?}, {:?})",
            to.display().to_string()
        ));
        fs::read(&to).expect("downloaded object")
    }

    /// Replaces one object's bytes, as damage or tampering on the server would.
    pub fn put(&self, bucket: &str, key: &str, bytes: &[u8]) {
        let dir = tempfile::tempdir().expect("temp dir");
        let from = dir.path().join("object");
        fs::write(&from, bytes).expect("write object");
        self.python(&format!(
            "c.upload_file({:?}, {bucket:?}, {key:?})",
            from.display().to_string()
        ));
    }

    /// Deletes one object, as a loss on the server would.
    pub fn delete(&self, bucket: &str, key: &str) {
        self.python(&format!("c.delete_object(Bucket={bucket:?}, Key={key:?})"));
    }

    /// Runs `statement` with `c`, a boto3 S3 client for this server.
    fn python(&self, statement: &str) -> String {
        let python = venv_bin().join("python");
        let script = format!(
            "import boto3\nc = boto3.client('s3', endpoint_url={:?}, aws_access_key_id={ACCESS_KEY:?}, aws_secret_access_key={SECRET_KEY:?}, region_name='us-east-1')\n{statement}\n",
            self.endpoint
        );
        let out = Command::new(python)
            .arg("-c")
            .arg(&script)
            .output()
            .expect("run the venv's python");
        assert!(
            out.status.success(),
            "{statement}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

fn venv_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| ensure_venv().unwrap_or_else(|e| panic!("S3 test venv: {e}")))
}

/// What a [`FaultProxy`] does to the requests it forwards.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// A full remote: once `bytes` of uploaded bodies have passed, every
    /// further upload is answered with the quota error Ceph's S3 gateway
    /// sends (`403 QuotaExceeded`); moto has no quotas of its own.
    QuotaBytes(u64),
    /// A transfer cut half-way: part uploads are received and never
    /// answered, so the client waits in mid-upload until it is killed.
    HoldParts,
}

/// A loopback HTTP proxy in front of an S3 server, for the faults the
/// server cannot produce. One request per connection, forwarded verbatim
/// (the signed Host header included) with `Connection: close` both ways.
pub struct FaultProxy {
    pub endpoint: String,
    state: std::sync::Arc<ProxyState>,
}

struct ProxyState {
    fault: Fault,
    upstream: String,
    uploaded: std::sync::atomic::AtomicU64,
    held: AtomicU32,
    stop: std::sync::atomic::AtomicBool,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`http://127.0.0.1:PORT`).
    pub fn start(upstream: &str, fault: Fault) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let endpoint = format!("http://{}", listener.local_addr().expect("proxy address"));
        let state = std::sync::Arc::new(ProxyState {
            fault,
            upstream: upstream
                .strip_prefix("http://")
                .unwrap_or(upstream)
                .to_owned(),
            uploaded: Default::default(),
            held: AtomicU32::new(0),
            stop: Default::default(),
        });
        let shared = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if shared.stop.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let state = shared.clone();
                std::thread::spawn(move || {
                    let _ = serve(conn, &state);
                });
            }
        });
        FaultProxy { endpoint, state }
    }

    /// Part uploads received and held so far ([`Fault::HoldParts`]).
    pub fn held(&self) -> u32 {
        self.state.held.load(Ordering::Relaxed)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::Relaxed);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.endpoint.trim_start_matches("http://"));
    }
}

fn serve(mut client: TcpStream, state: &ProxyState) -> std::io::Result<()> {
    use std::io::{BufRead, BufReader, Read, Write};
    let mut reader = BufReader::new(client.try_clone()?);
    let mut head = Vec::new();
    let mut content_length = 0usize;
    let mut request_line = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        if request_line.is_empty() {
            request_line = line.clone();
        }
        if line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(n) = lower.strip_prefix("content-length:") {
            content_length = n.trim().parse().unwrap_or(0);
        }
        if !lower.starts_with("connection:") {
            head.extend_from_slice(line.as_bytes());
        }
    }
    head.extend_from_slice(b"Connection: close\r\n\r\n");
    let mut body = vec![0u8; content_length];
    reader.read_exact(&mut body)?;
    let is_upload = request_line.starts_with("PUT ");
    match state.fault {
        Fault::HoldParts if is_upload && request_line.contains("partNumber=") => {
            state.held.fetch_add(1, Ordering::Relaxed);
            while !state.stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
            }
            return Ok(());
        }
        Fault::QuotaBytes(limit) if is_upload => {
            let before = state
                .uploaded
                .fetch_add(body.len() as u64, Ordering::Relaxed);
            if before + body.len() as u64 > limit {
                let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>QuotaExceeded</Code><Message>Quota exceeded</Message></Error>";
                write!(
                    client,
                    "HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}",
                    xml.len()
                )?;
                return Ok(());
            }
        }
        _ => {}
    }
    let mut upstream = TcpStream::connect(&state.upstream)?;
    upstream.write_all(&head)?;
    upstream.write_all(&body)?;
    let mut response = Vec::new();
    upstream.read_to_end(&mut response)?;
    // The response's own Connection header is replaced: this connection
    // ends here, whatever the server would have done.
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(response.len(), |p| p + 2);
    let (response_head, rest) = response.split_at(split);
    for line in String::from_utf8_lossy(response_head).split_inclusive("\r\n") {
        if !line.to_ascii_lowercase().starts_with("connection:") {
            client.write_all(line.as_bytes())?;
        }
    }
    client.write_all(b"Connection: close\r\n")?;
    client.write_all(rest)?;
    client.flush()
}
