//! S3-compatible storage (AWS, MinIO, Garage, Ceph…) as a destination for
//! copies of published backups, through `object_store`.
//!
//! Objects live under the remote's prefix with the local file names (a
//! directory backup's files under `<id>.dir/`, one object each), plus
//! `.age` when the remote has an encryption key. Each upload is streamed in
//! fixed-size parts (multipart: memory stays constant whatever the size)
//! while two SHA-256 sums run: the plaintext's, which must equal the
//! backup's recorded checksum, and the stored bytes', written afterwards to
//! `<object>.sha256`. A copy is confirmed when the object's size as the
//! server reports it equals what was sent and the checksum object reads back
//! the same; the sidecar goes last, so a remote listing offers only complete
//! copies. An S3 multipart upload is invisible until completed: an upload
//! killed half-way leaves no object behind.
//!
//! Credentials come from the standard `AWS_*` environment variables, else
//! from the AWS CLI's shared files (`aws_profile`), else the instance's
//! role where there is one; never from dbguard's configuration, and never
//! into a message.
//!
//! The async client runs on a small multi-thread tokio runtime owned here
//! (nothing else in dbguard is async): parts travel on its workers while
//! the calling thread reads, hashes and encrypts the next one. Transfers of
//! data files show a progress bar when stderr is a terminal.

use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as ObjectPath;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig,
    WriteMultipart,
};
use sha2::{Digest, Sha256};

use super::{Copied, Destination, Published};
use crate::Error;
use crate::backup::encryption::KeyFile;
use crate::config::RemoteSection;

mod aws_profile;

/// Part size of multipart uploads: S3's minimum is 5 MiB; larger parts
/// mean fewer requests on a fast link.
const PART_SIZE: usize = 16 << 20;

/// Parts in flight at once: memory is at most `PART_SIZE * (this + 1)`.
const PARTS_IN_FLIGHT: usize = 4;

/// Runtime threads driving the requests (parts in flight, a download's
/// connection) beside the thread that feeds them.
const WORKER_THREADS: usize = 2;

/// Transfers at least this large get a progress bar (on a terminal).
const PROGRESS_MIN_BYTES: u64 = 8 << 20;

/// Suffix of encrypted objects (age's own convention).
const ENCRYPTED_SUFFIX: &str = ".age";

/// Suffix of the object holding the stored bytes' SHA-256.
const CHECKSUM_SUFFIX: &str = ".sha256";

/// One `[[remote]]`, connected.
pub struct S3 {
    name: String,
    url: String,
    prefix: String,
    store: Arc<AmazonS3>,
    runtime: tokio::runtime::Runtime,
    key: Option<KeyFile>,
}

/// One object of a remote backup, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFile {
    /// The local file name it is a copy of (`backup_app_….sql`).
    pub file_name: String,
    pub size: u64,
}

/// What one upload amounted to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Where it is, as a URL.
    pub location: String,
    /// SHA-256 and size of the bytes as stored (the ciphertext when encrypted).
    pub stored_sha256: String,
    pub stored_bytes: u64,
}

impl S3 {
    /// Connects to `remote` (nothing is sent until the first request).
    pub fn open(remote: &RemoteSection, key_file: Option<&Path>) -> Result<S3, Error> {
        let key = key_file.map(KeyFile::read).transpose()?;
        // rustls is built without a default provider (ring, not aws-lc);
        // installing it twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&remote.url.bucket)
            .with_client_options(
                ClientOptions::new()
                    .with_connect_timeout(Duration::from_secs(10))
                    .with_timeout(Duration::from_secs(300))
                    .with_allow_http(true),
            )
            // An unreachable remote is reported within seconds, not after
            // object_store's default three minutes of retries.
            .with_retry(RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(200),
                    max_backoff: Duration::from_secs(2),
                    base: 2.0,
                },
                max_retries: 2,
                retry_timeout: Duration::from_secs(20),
            });
        if let Some(endpoint) = &remote.endpoint {
            // Self-hosted servers rarely have a DNS name per bucket.
            builder = builder
                .with_endpoint(endpoint)
                .with_virtual_hosted_style_request(false);
        }
        builder = with_shared_credentials(builder, remote)?;
        if let Some(region) = &remote.region {
            builder = builder.with_region(region);
        }
        let store = builder.build().map_err(|e| {
            Error::Usage(format!(
                "remote {}: {}",
                remote.name,
                first_line(&e.to_string())
            ))
        })?;
        // Multi-thread: with a current-thread runtime the requests in flight
        // stood still whenever this thread was reading or hashing.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKER_THREADS)
            .thread_name("dbguard-s3")
            .enable_all()
            .build()
            .map_err(|e| Error::io("cannot start the remote client", e))?;
        Ok(S3 {
            name: remote.name.clone(),
            url: remote.url.to_string(),
            prefix: remote.url.prefix.clone(),
            store: Arc::new(store),
            runtime,
            key,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn is_encrypted(&self) -> bool {
        self.key.is_some()
    }

    /// The stored name, under the prefix, of a local file name (a file of a
    /// directory backup is `backup_….dir/NAME`).
    fn stored_name(&self, file_name: &str) -> String {
        let suffix = if self.key.is_some() {
            ENCRYPTED_SUFFIX
        } else {
            ""
        };
        format!("{file_name}{suffix}")
    }

    /// The object of a local file name.
    fn object(&self, file_name: &str) -> ObjectPath {
        self.path(&self.stored_name(file_name))
    }

    fn path(&self, name: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(name)
        } else {
            ObjectPath::from(format!("{}/{name}", self.prefix))
        }
    }

    fn location(&self, stored_name: &str) -> String {
        format!("{}/{stored_name}", self.url)
    }

    /// One line for an error of a request on the bucket itself (starting
    /// an upload, listing), where "not found" can only mean the bucket.
    fn bucket_error(&self, what: &str, e: &object_store::Error) -> Error {
        if matches!(e, object_store::Error::NotFound { .. }) {
            return Error::BackupFailed(format!(
                "remote {} ({}): {what}: the bucket does not exist (create it, or fix the url)",
                self.name, self.url
            ));
        }
        self.error(what, e)
    }

    /// One line for an error of this remote.
    fn error(&self, what: &str, e: &object_store::Error) -> Error {
        Error::BackupFailed(format!(
            "remote {} ({}): {what}: {}",
            self.name,
            self.url,
            describe(e)
        ))
    }

    /// Uploads `source` (`size` bytes, for the progress bar) as the copy of
    /// `file_name`, checking that its plaintext has SHA-256 `expected`;
    /// returns once the copy is confirmed.
    pub fn upload(
        &self,
        source: &mut impl Read,
        size: u64,
        file_name: &str,
        expected: Option<&str>,
    ) -> Result<Stored, Error> {
        let object = self.object(file_name);
        // `WriteMultipart` spawns each part as a task on the current
        // runtime; the tasks run while `wait_for_capacity` blocks on them.
        let _runtime = self.runtime.enter();
        let upload = self
            .runtime
            .block_on(self.store.put_multipart(&object))
            .map_err(|e| self.bucket_error(&format!("cannot start uploading {file_name}"), &e))?;
        let mut parts = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        let bar = transfer_bar(&format!("copying {file_name} to {}", self.name), size);
        let streamed = self.stream_into(source, &mut parts, &bar);
        bar.finish_and_clear();
        let (plain_sha256, stored_sha256, stored_bytes) = match streamed {
            Ok(sums) => sums,
            Err(e) => {
                let _ = self.runtime.block_on(parts.abort());
                return Err(e);
            }
        };
        if let Some(expected) = expected.filter(|&e| e != plain_sha256) {
            let _ = self.runtime.block_on(parts.abort());
            return Err(Error::BackupFailed(format!(
                "{file_name} changed while it was copied to remote {} (SHA-256 {plain_sha256}, expected {expected}); nothing was kept there",
                self.name
            )));
        }
        self.runtime
            .block_on(parts.finish())
            .map_err(|e| self.error(&format!("cannot complete the upload of {file_name}"), &e))?;
        let stored_name = self.stored_name(file_name);
        let checksum_object = self.path(&format!("{stored_name}{CHECKSUM_SUFFIX}"));
        self.runtime
            .block_on(self.store.put(
                &checksum_object,
                PutPayload::from(format!("{stored_sha256}\n")),
            ))
            .map_err(|e| self.error(&format!("cannot store the checksum of {file_name}"), &e))?;
        self.confirm(&object, &stored_name, &stored_sha256, stored_bytes)?;
        Ok(Stored {
            location: self.location(&stored_name),
            stored_sha256,
            stored_bytes,
        })
    }

    /// Reads what the server holds back: the object's size and its
    /// checksum object must be what was sent.
    fn confirm(
        &self,
        object: &ObjectPath,
        name: &str,
        sha256: &str,
        size: u64,
    ) -> Result<(), Error> {
        let head = self
            .runtime
            .block_on(self.store.head(object))
            .map_err(|e| self.error(&format!("cannot confirm {name}"), &e))?;
        let recorded = self.stored_checksum(name)?;
        if head.size != size || recorded != sha256 {
            return Err(Error::BackupFailed(format!(
                "remote {}: {name} holds {} bytes with recorded SHA-256 {recorded}, but {size} bytes with SHA-256 {sha256} were sent; the copy does not count",
                self.name, head.size
            )));
        }
        Ok(())
    }

    /// The SHA-256 recorded beside stored object `name`.
    fn stored_checksum(&self, name: &str) -> Result<String, Error> {
        let checksum_object = self.path(&format!("{name}{CHECKSUM_SUFFIX}"));
        let bytes = self
            .runtime
            .block_on(async { self.store.get(&checksum_object).await?.bytes().await })
            .map_err(|e| self.error(&format!("cannot read the checksum of {name}"), &e))?;
        Ok(String::from_utf8_lossy(&bytes).trim().to_owned())
    }

    /// Streams `source` through the plaintext hash, the encryption (if
    /// any) and the stored-bytes hash into `parts`.
    fn stream_into(
        &self,
        source: &mut impl Read,
        parts: &mut WriteMultipart,
        bar: &ProgressBar,
    ) -> Result<(String, String, u64), Error> {
        let mut out = PartWriter {
            parts,
            runtime: &self.runtime,
            // Unencrypted, the stored bytes are the plaintext: one hash
            // serves both.
            hasher: self.key.is_some().then(Sha256::new),
            size: 0,
        };
        let mut plain = Sha256::new();
        let mut buf = vec![0u8; super::super::sink::CHUNK];
        let read_error = |e: io::Error| Error::BackupFailed(format!("cannot read the backup: {e}"));
        let upload_error = |e: io::Error| {
            Error::BackupFailed(format!(
                "remote {} ({}): upload failed: {e}",
                self.name, self.url
            ))
        };
        match &self.key {
            Some(key) => {
                let mut sealed = key.encryptor(&mut out).map_err(upload_error)?;
                loop {
                    let n = read_some(source, &mut buf).map_err(read_error)?;
                    if n == 0 {
                        break;
                    }
                    plain.update(&buf[..n]);
                    sealed.write_all(&buf[..n]).map_err(upload_error)?;
                    bar.inc(n as u64);
                }
                sealed.finish().map_err(upload_error)?;
            }
            None => loop {
                let n = read_some(source, &mut buf).map_err(read_error)?;
                if n == 0 {
                    break;
                }
                plain.update(&buf[..n]);
                out.write_all(&buf[..n]).map_err(upload_error)?;
                bar.inc(n as u64);
            },
        }
        let plain = hex::encode(plain.finalize());
        let stored = out
            .hasher
            .take()
            .map_or_else(|| plain.clone(), |h| hex::encode(h.finalize()));
        Ok((plain, stored, out.size))
    }
}

impl S3 {
    /// Downloads the copy of `file_name` into `to`, decrypting it, and
    /// returns the plaintext's SHA-256 and size. The stored bytes are
    /// checked against their recorded checksum as they stream; a mismatch,
    /// a cut object or a failed decryption is an error (what was already
    /// written to `to` must then be discarded by the caller).
    pub fn download(&self, file_name: &str, to: &mut impl Write) -> Result<(String, u64), Error> {
        let object = self.object(file_name);
        let name = self.stored_name(file_name);
        let recorded = self.stored_checksum(&name)?;
        let result = self
            .runtime
            .block_on(self.store.get(&object))
            .map_err(|e| self.error(&format!("cannot read {name}"), &e))?;
        let bar = transfer_bar(
            &format!("downloading {name} from {}", self.name),
            result.meta.size,
        );
        let mut stored = StoredReader {
            stream: result.into_stream(),
            runtime: &self.runtime,
            pending: bytes::Bytes::new(),
            hasher: Sha256::new(),
        };
        let mut plain = Sha256::new();
        let mut size = 0u64;
        let mut buf = vec![0u8; super::super::sink::CHUNK];
        let damaged =
            |why: String| Error::BackupFailed(format!("remote {}: {name}: {why}", self.name));
        {
            let mut reader: Box<dyn Read + '_> = match &self.key {
                Some(key) => Box::new(key.decrypt(&mut stored).map_err(damaged)?),
                None => Box::new(&mut stored),
            };
            loop {
                let n = read_some(&mut reader, &mut buf).map_err(|e| {
                    damaged(format!(
                        "cannot be read to the end ({e}); the object is damaged or was altered"
                    ))
                })?;
                if n == 0 {
                    break;
                }
                plain.update(&buf[..n]);
                size += n as u64;
                bar.set_position(size);
                to.write_all(&buf[..n])
                    .map_err(|e| Error::io(format!("cannot write the download of {name}"), e))?;
            }
        }
        // Age stops at its authenticated last chunk: whatever follows it
        // must still be read for the stored checksum to be complete.
        io::copy(&mut stored, &mut io::sink())
            .map_err(|e| damaged(format!("cannot be read to the end ({e})")))?;
        bar.finish_and_clear();
        let got = hex::encode(stored.hasher.finalize());
        if got != recorded {
            return Err(damaged(format!(
                "its SHA-256 is {got}, not the {recorded} recorded when it was copied; the object is damaged or was altered"
            )));
        }
        Ok((hex::encode(plain.finalize()), size))
    }

    /// Downloads a small object whole (a sidecar), decrypted.
    pub fn download_small(&self, file_name: &str) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        self.download(file_name, &mut out)?;
        Ok(out)
    }

    /// Every backup file on the remote whose copy is complete, by local
    /// file name (sidecars included).
    pub fn files(&self) -> Result<Vec<RemoteFile>, Error> {
        let prefix = (!self.prefix.is_empty()).then(|| ObjectPath::from(self.prefix.as_str()));
        let listed: Vec<_> = self
            .runtime
            .block_on(self.store.list(prefix.as_ref()).collect::<Vec<_>>());
        let suffix = if self.key.is_some() {
            ENCRYPTED_SUFFIX
        } else {
            ""
        };
        let mut names = std::collections::HashSet::new();
        let mut objects = Vec::new();
        for meta in listed {
            let meta = meta.map_err(|e| self.bucket_error("cannot list the backups", &e))?;
            // Relative to the prefix: a directory backup's files are one
            // level further down.
            let full = meta.location.as_ref();
            let name = if self.prefix.is_empty() {
                full
            } else {
                match full
                    .strip_prefix(self.prefix.as_str())
                    .and_then(|rest| rest.strip_prefix('/'))
                {
                    Some(rest) => rest,
                    None => continue,
                }
            };
            names.insert(name.to_owned());
            objects.push((name.to_owned(), meta.size));
        }
        Ok(objects
            .into_iter()
            .filter(|(name, _)| names.contains(&format!("{name}{CHECKSUM_SUFFIX}")))
            .filter_map(|(name, size)| {
                let file_name = name.strip_suffix(suffix)?;
                file_name.starts_with("backup_").then(|| RemoteFile {
                    file_name: file_name.to_owned(),
                    size,
                })
            })
            .collect())
    }

    /// Removes the copy of `file_name` and its checksum object.
    pub fn remove(&self, file_name: &str) -> Result<(), Error> {
        let object = self.object(file_name);
        let name = self.stored_name(file_name);
        let checksum = self.path(&format!("{name}{CHECKSUM_SUFFIX}"));
        self.runtime
            .block_on(async {
                self.store.delete(&object).await?;
                self.store.delete(&checksum).await
            })
            .map_err(|e| self.error(&format!("cannot remove {name}"), &e))
    }
}

impl Destination for S3 {
    fn describe(&self) -> String {
        format!("remote {} ({})", self.name, self.url)
    }

    fn put(&self, backup: &Published<'_>) -> Result<Copied, Error> {
        let file_name = |path: &Path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .map(str::to_owned)
                .ok_or_else(|| Error::BackupFailed(format!("{}: not a file name", path.display())))
        };
        let data = match backup.data {
            Some(dir) if dir.is_dir() => Some(self.put_dir(backup, dir, &file_name(dir)?)?),
            Some(data) => {
                let mut source = File::open(data).map_err(|e| {
                    Error::BackupFailed(format!("cannot read {}: {e}", data.display()))
                })?;
                let size = source.metadata().map_or(0, |m| m.len());
                let stored =
                    self.upload(&mut source, size, &file_name(data)?, Some(backup.sha256))?;
                Some(stored.location)
            }
            None => None,
        };
        let mut sidecar = File::open(backup.sidecar).map_err(|e| {
            Error::BackupFailed(format!("cannot read {}: {e}", backup.sidecar.display()))
        })?;
        let sidecar = self.upload(&mut sidecar, 0, &file_name(backup.sidecar)?, None)?;
        Ok(Copied {
            destination: self.name.clone(),
            location: data.unwrap_or(sidecar.location),
        })
    }
}

impl S3 {
    /// Copies a directory backup: each file of its manifest (the sidecar's
    /// `files`) as `<dir>/<name>`, each checked against its own SHA-256 as it
    /// streams and confirmed like any copy. Returns the directory's URL.
    fn put_dir(&self, backup: &Published<'_>, dir: &Path, dir_name: &str) -> Result<String, Error> {
        let meta = crate::backup::Metadata::read(backup.sidecar).map_err(|e| {
            Error::BackupFailed(format!("{}: its metadata cannot be read: {e}", backup.id))
        })?;
        if meta.files.is_empty()
            || crate::backup::sink::manifest_sha256(&meta.files) != backup.sha256
        {
            return Err(Error::BackupFailed(format!(
                "{}: its metadata lists no files matching its checksum, so it is not copied",
                backup.id
            )));
        }
        for file in &meta.files {
            let path = dir.join(&file.name);
            let mut source = File::open(&path)
                .map_err(|e| Error::BackupFailed(format!("cannot read {}: {e}", path.display())))?;
            self.upload(
                &mut source,
                file.size,
                &format!("{dir_name}/{}", file.name),
                Some(&file.sha256),
            )?;
        }
        Ok(self.location(&format!("{dir_name}/")))
    }
}

/// The stored bytes of a download as a `Read`: chunks from the response
/// stream, hashed as they pass.
struct StoredReader<'r> {
    stream: futures_util::stream::BoxStream<'static, object_store::Result<bytes::Bytes>>,
    runtime: &'r tokio::runtime::Runtime,
    pending: bytes::Bytes,
    hasher: Sha256,
}

impl Read for StoredReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pending.is_empty() {
            match self.runtime.block_on(self.stream.next()) {
                Some(Ok(chunk)) => {
                    self.hasher.update(&chunk);
                    self.pending = chunk;
                }
                Some(Err(e)) => return Err(io::Error::other(describe(&e))),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending[..n]);
        self.pending = self.pending.slice(n..);
        Ok(n)
    }
}

/// The stored bytes' side of an upload: hashed, counted, handed to the
/// parts, waiting while too many parts are in flight (constant memory).
struct PartWriter<'p> {
    parts: &'p mut WriteMultipart,
    runtime: &'p tokio::runtime::Runtime,
    /// `None` when the stored bytes are the plaintext (hashed already).
    hasher: Option<Sha256>,
    size: u64,
}

impl Write for PartWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(hasher) = &mut self.hasher {
            hasher.update(buf);
        }
        self.size += buf.len() as u64;
        self.parts.write(buf);
        self.runtime
            .block_on(self.parts.wait_for_capacity(PARTS_IN_FLIGHT))
            .map_err(|e| io::Error::other(describe(&e)))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn read_some(source: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match source.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// A bar for a transfer of `total` bytes: hidden unless stderr is a
/// terminal and the transfer is long enough to be worth one.
fn transfer_bar(what: &str, total: u64) -> ProgressBar {
    if total < PROGRESS_MIN_BYTES || !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), indicatif::ProgressDrawTarget::stderr());
    // The template is a literal; it only fails to parse if edited badly.
    let style = ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} ({binary_bytes_per_sec}, {eta} left)",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(what.to_owned());
    bar
}

/// Adds the credentials (and region) of the AWS CLI's shared files to
/// `builder` when the environment gives no key pair, as the AWS CLI does.
fn with_shared_credentials(
    mut builder: AmazonS3Builder,
    remote: &RemoteSection,
) -> Result<AmazonS3Builder, Error> {
    let from_env = builder
        .get_config_value(&AmazonS3ConfigKey::AccessKeyId)
        .is_some()
        || builder
            .get_config_value(&AmazonS3ConfigKey::SecretAccessKey)
            .is_some();
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let profile = match aws_profile::read(&env) {
        Ok(profile) => profile,
        // With keys in the environment the files are not needed for them.
        Err(_) if from_env => None,
        Err(e) => return Err(Error::Usage(format!("remote {}: {e}", remote.name))),
    };
    if let Some(profile) = &profile {
        if !from_env && let Some(keys) = &profile.keys {
            builder = builder
                .with_access_key_id(&keys.access_key_id)
                .with_secret_access_key(&keys.secret_access_key);
            if let Some(token) = &keys.session_token {
                builder = builder.with_token(token);
            }
        }
        let region_set = builder
            .get_config_value(&AmazonS3ConfigKey::Region)
            .is_some();
        if let (Some(region), false) = (&profile.region, region_set) {
            builder = builder.with_region(region);
        }
    }
    let has_keys = from_env || profile.as_ref().is_some_and(|p| p.keys.is_some());
    let metadata_disabled =
        env("AWS_EC2_METADATA_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if !has_keys && metadata_disabled {
        return Err(Error::Usage(format!(
            "remote {}: no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or give the profile {} keys in {}",
            remote.name,
            aws_profile::profile_name(&env),
            aws_profile::credentials_path(&env).map_or_else(
                || "~/.aws/credentials".to_owned(),
                |p| p.display().to_string()
            )
        )));
    }
    Ok(builder)
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

/// object_store's error as one line a person can act on. The common faults
/// get their own words; anything else keeps the innermost cause.
fn describe(e: &object_store::Error) -> String {
    let mut chain = vec![e.to_string()];
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        chain.push(s.to_string());
        source = s.source();
    }
    let all = chain.join(" | ");
    let has = |needle: &str| all.contains(needle);
    if has("NoSuchBucket") {
        "the bucket does not exist (create it, or fix the url)".to_owned()
    } else if has("QuotaExceeded") || has("XMinioStorageFull") || has("507 Insufficient Storage") {
        // Ceph's gateway answers 403 QuotaExceeded, MinIO 507: before the
        // access check, which would read a 403 as wrong credentials.
        "the remote is full (its quota is reached): free space there or raise the quota, then `dbguard sync`".to_owned()
    } else if has("InvalidAccessKeyId")
        || has("SignatureDoesNotMatch")
        || has("AccessDenied")
        || has("403 Forbidden")
    {
        "access denied: check the credentials in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or ~/.aws".to_owned()
    } else if has("Connection refused")
        || has("error sending request")
        || has("dns error")
        || has("timed out")
    {
        "cannot reach the server (is the endpoint right and the server up?)".to_owned()
    } else if matches!(e, object_store::Error::NotFound { .. }) {
        "no such object".to_owned()
    } else {
        first_line(chain.last().map_or("", String::as_str)).to_owned()
    }
}
