//! Running pg_dump so that what lands on disk is provably the whole dump.
//!
//! Plain and custom formats: pg_dump writes to a pipe; every chunk goes
//! through an in-process SHA-256 and into a private temporary file in the
//! backup directory — one pass, no second read. Completeness is proven
//! while streaming too: a plain dump must end with pg_dump's `-- PostgreSQL
//! database dump complete` trailer; a custom archive is fed, chunk by
//! chunk, to `pg_restore -f /dev/null`, which reads and decompresses every
//! block (a table of contents alone would not notice missing data).
//!
//! Directory format: pg_dump writes the files itself (that is what makes
//! `-j` possible), so they are read once afterwards for per-file hashes,
//! the checksum is that of the sorted manifest, and `pg_restore -f
//! /dev/null` reads the archive in full.
//!
//! Then: pg_dump's exit status, fsync, rename to the final name (never
//! replacing anything), fsync of the directory. Any failure drops the
//! temporary file, so no final name ever points at a partial dump.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{DateTime, Local};
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

use super::Format;
use super::durable;
use super::metadata::FileEntry;
use super::partial;
use super::store::BackupId;
use crate::Error;
use crate::pgtools::{PgTools, first_error_line};
use crate::target::Target;

/// The line pg_dump writes last in a plain dump that finished normally.
pub const PLAIN_TRAILER: &[u8] = b"\n-- PostgreSQL database dump complete\n";

/// Bytes of the stream's end kept to look for the trailer (pg_dump may add
/// a `\unrestrict` line after it).
const TAIL_KEEP: usize = 4096;

/// Read size from pg_dump's pipe: as large as the pipe (see `widen_pipe`).
const CHUNK: usize = 1 << 20;

/// The pipe size asked for: Linux's default limit for unprivileged
/// processes (`/proc/sys/fs/pipe-max-size`). A 64 KiB pipe makes pg_dump
/// and dbguard take turns every 64 KiB; with 1 MiB each side does sixteen
/// times fewer context switches and pg_dump keeps dumping while dbguard
/// hashes and writes.
const PIPE_SIZE: libc::c_int = 1 << 20;

/// Chunks at least this large are written straight to the file; smaller
/// ones (pg_dump running ahead of us only a little) are gathered first.
const WRITE_BUFFER: usize = 64 * 1024;

/// How the final name is chosen.
#[derive(Debug, Clone)]
pub enum Naming {
    /// `backup_<db>_<timestamp>[_<n>].<ext>` in the store, first free `n`.
    Store,
    /// Exactly this file name (`--output`); an existing file is an error.
    Exact(String),
}

/// Everything one dump needs.
pub struct Job<'a> {
    pub tools: &'a PgTools,
    pub target: &'a Target,
    pub format: Format,
    pub jobs: Option<u32>,
    /// `-t` patterns; empty for the whole database.
    pub tables: &'a [String],
    /// The database size, for the progress estimate.
    pub size_hint: u64,
    pub progress: bool,
    pub dir: &'a Path,
    pub naming: &'a Naming,
    pub database: &'a str,
    pub started_at: DateTime<Local>,
}

/// A finished dump under its final name.
#[derive(Debug, Clone)]
pub struct Dumped {
    pub id: String,
    pub path: PathBuf,
    pub format: Format,
    pub sha256: String,
    pub size_bytes: u64,
    /// Exact row counts per (schema, table), counted from the COPY blocks
    /// of a plain dump as they streamed past; empty for other formats.
    pub rows: HashMap<(String, String), i64>,
    /// Per-file entries of a directory-format dump.
    pub files: Vec<FileEntry>,
    /// How completeness was proven, for the metadata.
    pub completeness: String,
    pub elapsed: Duration,
}

/// Runs pg_dump for `job` and publishes the result.
pub fn run(job: &Job<'_>) -> Result<Dumped, Error> {
    let clock = Instant::now();
    let mut dumped = match job.format {
        Format::Plain | Format::Custom => run_streamed(job)?,
        Format::Directory => run_directory(job)?,
    };
    dumped.elapsed = clock.elapsed();
    Ok(dumped)
}

/// Removes a published data file or directory again (its metadata could
/// not be written).
pub fn remove_data(path: &Path) {
    let _ = if path.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    if let Some(dir) = path.parent() {
        let _ = durable::sync_dir(dir);
    }
}

fn failed(message: impl Into<String>) -> Error {
    Error::BackupFailed(message.into())
}

fn dir_error(dir: &Path, e: &io::Error) -> Error {
    failed(format!(
        "cannot write in backup directory {}: {e}",
        dir.display()
    ))
}

fn pg_dump_command(job: &Job<'_>) -> Command {
    let mut cmd = job.tools.command(&job.tools.pg_dump, job.target);
    cmd.arg("-w");
    match job.format {
        Format::Plain => cmd.args(["--format=plain", "--clean", "--if-exists"]),
        Format::Custom => cmd.arg("--format=custom"),
        Format::Directory => cmd.arg("--format=directory"),
    };
    if let Some(n) = job.jobs {
        cmd.arg(format!("--jobs={n}"));
    }
    if let Some(ms) = job.tools.lock_timeout_ms() {
        // pg_dump resets lock_timeout for its own session; this is its way
        // of giving up on a table someone else holds locked.
        cmd.arg(format!("--lock-wait-timeout={ms}"));
    }
    for table in job.tables {
        cmd.arg(format!("--table={table}"));
    }
    cmd.args(job.target.libpq_args());
    // Files pg_dump creates itself (directory format) must be private too.
    // SAFETY: umask is async-signal-safe and touches no shared state.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0o077);
            Ok(())
        });
    }
    cmd
}

fn spawn(cmd: &mut Command, program: &Path) -> Result<Child, Error> {
    cmd.spawn().map_err(|source| Error::Exec {
        program: program.to_path_buf(),
        source,
    })
}

/// Collects a child's stderr on a thread so it can never block on a full pipe.
fn drain(child: &mut Child) -> JoinHandle<String> {
    let stderr = child.stderr.take();
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut e) = stderr {
            let mut bytes = Vec::new();
            let _ = e.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
        text
    })
}

fn describe_exit(program: &str, status: ExitStatus, stderr: &str) -> String {
    let why = if stderr.trim().is_empty() {
        String::new()
    } else {
        format!(": {}", first_error_line(stderr))
    };
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("{program} exited with status {code}{why}"),
        (None, Some(sig)) => format!("{program} was killed by signal {sig}{why}"),
        _ => format!("{program} failed{why}"),
    }
}

fn progress_bar(job: &Job<'_>) -> ProgressBar {
    if !job.progress {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(
        Some(job.size_hint.max(1)),
        indicatif::ProgressDrawTarget::stderr(),
    );
    // The template is a literal; it only fails to parse if edited badly.
    let style = ProgressStyle::with_template(
        "{spinner} pg_dump {bytes} ({binary_bytes_per_sec}) [{wide_bar}] ~{total_bytes} est. {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar
}

fn run_streamed(job: &Job<'_>) -> Result<Dumped, Error> {
    let tmp = partial::new_file(job.dir, "backup_").map_err(|e| dir_error(job.dir, &e))?;

    let mut cmd = pg_dump_command(job);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = spawn(&mut cmd, &job.tools.pg_dump)?;
    let dump_err = drain(&mut child);

    let mut checker = None;
    if job.format == Format::Custom {
        let mut cmd = job.tools.command(&job.tools.pg_restore, job.target);
        cmd.args(["-f", "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        match spawn(&mut cmd, &job.tools.pg_restore) {
            Ok(mut c) => {
                if let Some(stdin) = &c.stdin {
                    widen_pipe(stdin);
                }
                let err = drain(&mut c);
                checker = Some((c, err));
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        }
    }

    let bar = progress_bar(job);
    let mut sink = Sink::new(
        BufWriter::with_capacity(WRITE_BUFFER, tmp.as_file()),
        job.format == Format::Plain,
        checker.as_mut().and_then(|(c, _)| c.stdin.take()),
        bar.clone(),
    )
    .with_writeback(std::os::fd::AsRawFd::as_raw_fd(tmp.as_file()));
    // The pipe exists: stdout was set to piped above.
    let mut stdout = child.stdout.take().expect("pg_dump stdout is piped");
    widen_pipe(&stdout);
    let pumped = pump(&mut stdout, &mut sink);
    drop(stdout);
    bar.finish_and_clear();

    if let Err(err) = pumped {
        let _ = child.kill();
        let _ = child.wait();
        if let Some((mut c, _)) = checker {
            let _ = c.kill();
            let _ = c.wait();
        }
        return Err(match err {
            PumpError::Write(e) => dir_error(job.dir, &e),
            PumpError::Read(e) => failed(format!("reading pg_dump's output: {e}")),
        });
    }
    let status = child
        .wait()
        .map_err(|e| failed(format!("waiting for pg_dump: {e}")))?;
    let stderr = dump_err.join().unwrap_or_default();
    let Summary {
        sha256,
        size_bytes,
        tail,
        rows,
        checker_stdin,
    } = sink.finish().map_err(|e| dir_error(job.dir, &e))?;
    drop(checker_stdin);
    if !status.success() {
        if let Some((mut c, _)) = checker {
            let _ = c.kill();
            let _ = c.wait();
        }
        return Err(failed(describe_exit("pg_dump", status, &stderr)));
    }

    let completeness = match job.format {
        Format::Plain => {
            if !contains(&tail, PLAIN_TRAILER) {
                return Err(failed(
                    "pg_dump's output ended without its \"dump complete\" trailer (the dump is truncated)",
                ));
            }
            "plain dump ends with pg_dump's completion trailer".to_owned()
        }
        _ => {
            let (mut c, err) = checker.ok_or_else(|| failed("archive checker missing"))?;
            let status = c
                .wait()
                .map_err(|e| failed(format!("waiting for pg_restore: {e}")))?;
            let stderr = err.join().unwrap_or_default();
            if !status.success() {
                return Err(failed(format!(
                    "the archive does not read back in full ({})",
                    describe_exit("pg_restore", status, &stderr)
                )));
            }
            "archive read back in full by pg_restore while streaming".to_owned()
        }
    };

    let (id, path) = publish(job, |final_path| {
        durable::publish_file_ref(&tmp, final_path)
    })?;
    // Published under its final name by hard link; the temporary name goes.
    drop(tmp);
    let _ = durable::sync_dir(job.dir);
    Ok(Dumped {
        id,
        path,
        format: job.format,
        sha256,
        size_bytes,
        rows,
        files: Vec::new(),
        completeness,
        elapsed: Duration::ZERO,
    })
}

/// Asks for a larger pipe; a refusal (an older kernel, a lower limit) only
/// costs speed.
fn widen_pipe(pipe: &impl std::os::fd::AsRawFd) {
    // SAFETY: fcntl on a descriptor this process owns; F_SETPIPE_SZ takes an int.
    unsafe {
        libc::fcntl(pipe.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_SIZE);
    }
}

/// Tries final names until one is free; `put` creates it without replacing.
fn publish(
    job: &Job<'_>,
    mut put: impl FnMut(&Path) -> io::Result<()>,
) -> Result<(String, PathBuf), Error> {
    let ext = job.format.extension();
    match job.naming {
        Naming::Exact(name) => {
            let path = job.dir.join(name);
            let id = Path::new(name)
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or(name)
                .to_owned();
            put(&path).map_err(|e| match e.kind() {
                io::ErrorKind::AlreadyExists => failed(format!(
                    "{} already exists; choose another --output",
                    path.display()
                )),
                _ => dir_error(job.dir, &e),
            })?;
            Ok((id, path))
        }
        Naming::Store => {
            for n in 1..10_000 {
                let id = BackupId::new(job.database, job.started_at.naive_local(), n);
                let path = job.dir.join(format!("{}.{ext}", id.as_str()));
                if job.dir.join(format!("{}.json", id.as_str())).exists() {
                    continue;
                }
                match put(&path) {
                    Ok(()) => return Ok((id.as_str().to_owned(), path)),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                    Err(e) => return Err(dir_error(job.dir, &e)),
                }
            }
            Err(failed("no free backup name for this second"))
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn run_directory(job: &Job<'_>) -> Result<Dumped, Error> {
    // `_held` marks the directory as in use until it is published or dropped.
    let (tmp, _held) = partial::new_dir(job.dir, "backup_").map_err(|e| dir_error(job.dir, &e))?;
    let out = tmp.path().join("dump");
    let mut cmd = pg_dump_command(job);
    cmd.arg("--file").arg(&out);
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let bar = if job.progress {
        let bar = ProgressBar::new_spinner();
        bar.set_message("pg_dump (directory format)");
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut child = spawn(&mut cmd, &job.tools.pg_dump)?;
    let dump_err = drain(&mut child);
    let status = child
        .wait()
        .map_err(|e| failed(format!("waiting for pg_dump: {e}")))?;
    bar.finish_and_clear();
    let stderr = dump_err.join().unwrap_or_default();
    if !status.success() {
        return Err(failed(describe_exit("pg_dump", status, &stderr)));
    }

    let (files, sha256, size_bytes) =
        hash_directory(&out, true).map_err(|e| dir_error(job.dir, &e))?;
    if !files.iter().any(|f| f.name == "toc.dat") {
        return Err(failed("pg_dump wrote no toc.dat (the dump is incomplete)"));
    }
    let mut cmd = job.tools.command(&job.tools.pg_restore, job.target);
    cmd.args(["-f", "/dev/null"])
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let check = cmd.output().map_err(|source| Error::Exec {
        program: job.tools.pg_restore.clone(),
        source,
    })?;
    if !check.status.success() {
        return Err(failed(format!(
            "the archive does not read back in full ({})",
            describe_exit(
                "pg_restore",
                check.status,
                &String::from_utf8_lossy(&check.stderr)
            )
        )));
    }
    durable::sync_dir(&out).map_err(|e| dir_error(job.dir, &e))?;
    let (id, path) = publish(job, |final_path| durable::publish_dir(&out, final_path))?;
    Ok(Dumped {
        id,
        path,
        format: Format::Directory,
        sha256,
        size_bytes,
        rows: HashMap::new(),
        files,
        completeness: "archive read back in full by pg_restore".to_owned(),
        elapsed: Duration::ZERO,
    })
}

/// Per-file SHA-256 of a directory archive (sorted by name), the SHA-256 of
/// the manifest built from them, and the total size. With `seal`, each file
/// is also made private and fsync'd.
pub fn hash_directory(dir: &Path, seal: bool) -> io::Result<(Vec<FileEntry>, String, u64)> {
    let mut names: Vec<String> = fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<io::Result<_>>()?;
    names.sort();
    let mut files = Vec::with_capacity(names.len());
    let mut total = 0;
    for name in names {
        let path = dir.join(&name);
        let mut file = File::open(&path)?;
        if seal {
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
        }
        let (sha256, size) = hash_reader(&mut file)?;
        if seal {
            file.sync_all()?;
        }
        total += size;
        files.push(FileEntry { name, size, sha256 });
    }
    Ok((files.clone(), manifest_sha256(&files), total))
}

/// The checksum of a directory archive: SHA-256 over `<sha256>  <name>\n`
/// lines in name order (the `sha256sum` format).
pub fn manifest_sha256(files: &[FileEntry]) -> String {
    let mut hasher = Sha256::new();
    for f in files {
        hasher.update(format!("{}  {}\n", f.sha256, f.name).as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// SHA-256 and length of everything `reader` yields.
pub fn hash_reader(reader: &mut impl Read) -> io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), size))
}

/// Why streaming stopped early.
#[derive(Debug)]
pub enum PumpError {
    /// Reading pg_dump's pipe failed.
    Read(io::Error),
    /// Writing the backup file failed (full disk, I/O error).
    Write(io::Error),
}

/// Where each chunk of pg_dump's output goes: the hash, the file, the
/// COPY row counter, the trailer window and the archive checker.
pub struct Sink<W: Write> {
    out: W,
    hasher: Sha256,
    size: u64,
    tail: Vec<u8>,
    rows: Option<CopyCounter>,
    checker: Option<ChildStdin>,
    bar: ProgressBar,
    /// The file behind `out`, to start write-back early (see `feed`).
    writeback: Option<(std::os::fd::RawFd, u64)>,
}

/// Bytes between requests to start write-back of what is already written.
const WRITEBACK_STEP: u64 = 32 << 20;

/// What a finished stream amounted to.
pub struct Summary {
    pub sha256: String,
    pub size_bytes: u64,
    pub tail: Vec<u8>,
    pub rows: HashMap<(String, String), i64>,
    checker_stdin: Option<ChildStdin>,
}

impl<W: Write> Sink<W> {
    pub fn new(out: W, count_rows: bool, checker: Option<ChildStdin>, bar: ProgressBar) -> Self {
        Sink {
            out,
            hasher: Sha256::new(),
            size: 0,
            tail: Vec::with_capacity(2 * TAIL_KEEP),
            rows: count_rows.then(CopyCounter::default),
            checker,
            bar,
            writeback: None,
        }
    }

    /// Starts the kernel writing the file out while the dump is still
    /// running, so the final fsync has little left to wait for (the bare
    /// pg_dump it is compared with does not fsync at all).
    pub fn with_writeback(mut self, fd: std::os::fd::RawFd) -> Self {
        self.writeback = Some((fd, 0));
        self
    }

    fn feed(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.out.write_all(chunk)?;
        self.hasher.update(chunk);
        self.size += chunk.len() as u64;
        if let Some(rows) = &mut self.rows {
            rows.feed(chunk);
        }
        if chunk.len() >= TAIL_KEEP {
            self.tail.clear();
            self.tail
                .extend_from_slice(&chunk[chunk.len() - TAIL_KEEP..]);
        } else {
            self.tail.extend_from_slice(chunk);
            if self.tail.len() > 2 * TAIL_KEEP {
                self.tail.drain(..self.tail.len() - TAIL_KEEP);
            }
        }
        if let Some(stdin) = &mut self.checker
            && stdin.write_all(chunk).is_err()
        {
            // The checker stopped reading; its exit status tells why.
            self.checker = None;
        }
        if let Some((fd, started)) = &mut self.writeback
            && self.size - *started >= WRITEBACK_STEP
        {
            // Only bytes the buffered writer has already handed to the
            // kernel; asynchronous, a hint: errors surface at fsync.
            let end = self.size.saturating_sub(2 << 20);
            if end > *started {
                // SAFETY: plain syscall on a descriptor we own for the call's duration.
                unsafe {
                    libc::sync_file_range(
                        *fd,
                        *started as libc::off64_t,
                        (end - *started) as libc::off64_t,
                        libc::SYNC_FILE_RANGE_WRITE,
                    );
                }
                *started = end;
            }
        }
        let len = self.bar.length().unwrap_or(0);
        if self.size > len {
            self.bar.set_length(self.size + self.size / 10);
        }
        self.bar.set_position(self.size);
        Ok(())
    }

    /// Flushes the file and hands back the totals.
    pub fn finish(mut self) -> io::Result<Summary> {
        self.out.flush()?;
        Ok(Summary {
            sha256: hex::encode(self.hasher.finalize()),
            size_bytes: self.size,
            tail: self.tail,
            rows: self.rows.map(|r| r.counts).unwrap_or_default(),
            checker_stdin: self.checker,
        })
    }
}

/// Moves everything from `src` through `sink`, stopping at the first error.
pub fn pump<W: Write>(src: &mut impl Read, sink: &mut Sink<W>) -> Result<(), PumpError> {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(PumpError::Read(e)),
        };
        sink.feed(&buf[..n]).map_err(PumpError::Write)?;
    }
}

/// Counts the data lines of each `COPY ... FROM stdin;` block in a plain
/// dump as it streams past. In COPY's text format every row is one line
/// (newlines inside values are escaped) and `\.` ends the block.
#[derive(Debug, Default)]
pub struct CopyCounter {
    /// Start of the current line, capped (only headers need reading).
    line: Vec<u8>,
    line_len: usize,
    current: Option<(String, String)>,
    current_rows: i64,
    pub counts: HashMap<(String, String), i64>,
}

/// Longest line start kept; COPY headers with long column lists fit.
const LINE_KEEP: usize = 64 * 1024;

impl CopyCounter {
    pub fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            match memchr::memchr(b'\n', data) {
                Some(i) => {
                    self.push(&data[..i]);
                    self.end_line();
                    data = &data[i + 1..];
                }
                None => {
                    self.push(data);
                    break;
                }
            }
        }
    }

    fn push(&mut self, part: &[u8]) {
        // Inside a COPY block only the terminator `\.` matters: keep 3 bytes.
        let keep = if self.current.is_some() { 3 } else { LINE_KEEP };
        if self.line.len() < keep {
            let room = keep - self.line.len();
            self.line.extend_from_slice(&part[..part.len().min(room)]);
        }
        self.line_len += part.len();
    }

    fn end_line(&mut self) {
        if self.current.is_some() {
            if self.line_len == 2 && self.line == b"\\." {
                if let Some(table) = self.current.take() {
                    self.counts.insert(table, self.current_rows);
                }
            } else {
                self.current_rows += 1;
            }
        } else if self.line_len == self.line.len()
            && let Some(table) = parse_copy_header(&self.line)
        {
            self.current = Some(table);
            self.current_rows = 0;
        }
        self.line.clear();
        self.line_len = 0;
    }
}

/// `COPY schema.table (cols) FROM stdin;` → (schema, table), identifiers
/// unquoted as pg_dump quoted them.
pub fn parse_copy_header(line: &[u8]) -> Option<(String, String)> {
    let rest = line.strip_prefix(b"COPY ")?;
    if !line.ends_with(b" FROM stdin;") {
        return None;
    }
    let text = std::str::from_utf8(rest).ok()?;
    let (schema, after) = parse_ident(text)?;
    let after = after.strip_prefix('.')?;
    let (table, _) = parse_ident(after)?;
    Some((schema, table))
}

fn parse_ident(text: &str) -> Option<(String, &str)> {
    if let Some(quoted) = text.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = quoted.char_indices();
        while let Some((i, c)) = chars.next() {
            if c == '"' {
                if quoted[i + 1..].starts_with('"') {
                    out.push('"');
                    chars.next();
                } else {
                    return Some((out, &quoted[i + 1..]));
                }
            } else {
                out.push(c);
            }
        }
        None
    } else {
        let end = text.find(['.', ' ', '(']).unwrap_or(text.len());
        (end > 0).then(|| (text[..end].to_owned(), &text[end..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that fails with "no space left" after `room` bytes.
    struct FullDisk {
        room: usize,
        written: Vec<u8>,
    }

    impl Write for FullDisk {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.written.len() + buf.len() > self.room {
                return Err(io::Error::from_raw_os_error(libc::ENOSPC));
            }
            self.written.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_full_disk_stops_the_stream_with_a_write_error() {
        let data = vec![b'x'; 3 * CHUNK];
        let mut sink = Sink::new(
            FullDisk {
                room: CHUNK + 10,
                written: Vec::new(),
            },
            false,
            None,
            ProgressBar::hidden(),
        );
        let err = pump(&mut &data[..], &mut sink).unwrap_err();
        match err {
            PumpError::Write(e) => assert_eq!(e.raw_os_error(), Some(libc::ENOSPC)),
            PumpError::Read(e) => panic!("expected a write error, got read error {e}"),
        }
    }

    #[test]
    fn streamed_hash_equals_hash_of_the_bytes_and_chunking_does_not_matter() {
        let mut text = Vec::new();
        text.extend_from_slice(b"SET x = 1;\nCOPY public.users (id, name) FROM stdin;\n");
        for i in 0..1000 {
            text.extend_from_slice(format!("{i}\tname with \\n escaped\n").as_bytes());
        }
        text.extend_from_slice(
            b"\\.\n\nCOPY \"Odd \"\"Schema\"\"\".\"T.x\" (a) FROM stdin;\n\\.\n",
        );
        text.extend_from_slice(
            b"\n--\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict abc\n",
        );
        let expected = hex::encode(Sha256::digest(&text));
        for chunk in [1usize, 7, 4096, text.len()] {
            let mut sink = Sink::new(Vec::new(), true, None, ProgressBar::hidden());
            for piece in text.chunks(chunk) {
                sink.feed(piece).unwrap();
            }
            let summary = sink.finish().unwrap();
            assert_eq!(summary.sha256, expected, "chunk {chunk}");
            assert_eq!(summary.size_bytes, text.len() as u64);
            assert!(contains(&summary.tail, PLAIN_TRAILER));
            assert_eq!(
                summary.rows.get(&("public".into(), "users".into())),
                Some(&1000),
                "chunk {chunk}"
            );
            assert_eq!(
                summary.rows.get(&("Odd \"Schema\"".into(), "T.x".into())),
                Some(&0)
            );
        }
    }

    #[test]
    fn copy_headers() {
        assert_eq!(
            parse_copy_header(b"COPY public.t (a, b) FROM stdin;"),
            Some(("public".into(), "t".into()))
        );
        assert_eq!(parse_copy_header(b"COPY public.t (a) TO stdout;"), None);
        assert_eq!(parse_copy_header(b"-- COPY public.t FROM stdin;"), None);
    }

    #[test]
    fn manifest_is_the_sha256sum_format() {
        let files = vec![
            FileEntry {
                name: "3001.dat.gz".into(),
                size: 3,
                sha256: "aa".into(),
            },
            FileEntry {
                name: "toc.dat".into(),
                size: 5,
                sha256: "bb".into(),
            },
        ];
        assert_eq!(
            manifest_sha256(&files),
            hex::encode(Sha256::digest(b"aa  3001.dat.gz\nbb  toc.dat\n"))
        );
    }
}
