//! The pg_dump engine: running pg_dump so that what lands on disk is
//! provably the whole dump. The integrity sequence itself (streamed hash,
//! temporary name, fsync, rename) is `sink`'s; this file adds what only
//! pg_dump knows: its arguments, its completion trailer, COPY row counts and
//! the archive read-back.
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
//! Then: pg_dump's exit status, and `sink` publishes. Any failure drops the
//! temporary file, so no final name ever points at a partial dump.

use std::collections::HashMap;
use std::io::{BufWriter, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use super::{Engine, Job, Taken};
use crate::Error;
use crate::backup::Format;
use crate::backup::dest::local::Local;
use crate::backup::sink::{self, PumpError, Sink, Tap, dir_error, failed};
use crate::pgtools::{PgTools, first_error_line};

/// The line pg_dump writes last in a plain dump that finished normally.
pub const PLAIN_TRAILER: &[u8] = b"\n-- PostgreSQL database dump complete\n";

/// Bytes of the stream's end kept to look for the trailer (pg_dump may add
/// a `\unrestrict` line after it).
const TAIL_KEEP: usize = 4096;

/// The pipe size asked for (as large as `sink::CHUNK`, what is read at
/// once): Linux's default limit for unprivileged
/// processes (`/proc/sys/fs/pipe-max-size`). A 64 KiB pipe makes pg_dump
/// and dbguard take turns every 64 KiB; with 1 MiB each side does sixteen
/// times fewer context switches and pg_dump keeps dumping while dbguard
/// hashes and writes.
const PIPE_SIZE: libc::c_int = 1 << 20;

/// The default engine: pg_dump, with the client tools it runs.
pub struct PgDump<'a> {
    tools: &'a PgTools,
}

impl<'a> PgDump<'a> {
    /// The engine's name in configuration and metadata.
    pub const NAME: &'static str = "pg_dump";

    pub fn new(tools: &'a PgTools) -> Self {
        PgDump { tools }
    }
}

impl Engine for PgDump<'_> {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn version(&self) -> String {
        self.tools.pg_dump_version().unwrap_or_default()
    }

    fn take(&self, job: &Job<'_>, local: &Local) -> Result<Taken, Error> {
        let clock = Instant::now();
        let mut taken = match job.format {
            Format::Plain | Format::Custom => run_streamed(self.tools, job, local)?,
            Format::Directory => run_directory(self.tools, job, local)?,
        };
        taken.elapsed = clock.elapsed();
        Ok(taken)
    }
}

fn pg_dump_command(tools: &PgTools, job: &Job<'_>) -> Command {
    let mut cmd = tools.command(&tools.pg_dump, job.target);
    cmd.arg("-w");
    match job.format {
        Format::Plain => cmd.args(["--format=plain", "--clean", "--if-exists"]),
        Format::Custom => cmd.arg("--format=custom"),
        Format::Directory => cmd.arg("--format=directory"),
    };
    if let Some(n) = job.jobs {
        cmd.arg(format!("--jobs={n}"));
    }
    if let Some(ms) = tools.lock_timeout_ms() {
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

/// The end of a plain dump, to look for pg_dump's completion trailer.
#[derive(Default)]
struct TailWindow(Vec<u8>);

impl Tap for TailWindow {
    fn feed(&mut self, chunk: &[u8]) {
        let tail = &mut self.0;
        if chunk.len() >= TAIL_KEEP {
            tail.clear();
            tail.extend_from_slice(&chunk[chunk.len() - TAIL_KEEP..]);
        } else {
            tail.extend_from_slice(chunk);
            if tail.len() > 2 * TAIL_KEEP {
                tail.drain(..tail.len() - TAIL_KEEP);
            }
        }
    }
}

/// pg_restore reading the custom archive as it streams past.
struct ArchiveChecker(Option<ChildStdin>);

impl Tap for ArchiveChecker {
    fn feed(&mut self, chunk: &[u8]) {
        if let Some(stdin) = &mut self.0
            && stdin.write_all(chunk).is_err()
        {
            // The checker stopped reading; its exit status tells why.
            self.0 = None;
        }
    }
}

impl Tap for CopyCounter {
    fn feed(&mut self, chunk: &[u8]) {
        CopyCounter::feed(self, chunk);
    }
}

fn run_streamed(tools: &PgTools, job: &Job<'_>, local: &Local) -> Result<Taken, Error> {
    let tmp = local.stage_file()?;

    let mut cmd = pg_dump_command(tools, job);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = spawn(&mut cmd, &tools.pg_dump)?;
    let dump_err = drain(&mut child);

    let mut checker = None;
    if job.format == Format::Custom {
        let mut cmd = tools.command(&tools.pg_restore, job.target);
        cmd.args(["-f", "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        match spawn(&mut cmd, &tools.pg_restore) {
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
    let mut tail = TailWindow::default();
    let mut rows = CopyCounter::default();
    let mut archive = ArchiveChecker(checker.as_mut().and_then(|(c, _)| c.stdin.take()));
    let mut taps: Vec<&mut dyn Tap> = Vec::new();
    if job.format == Format::Plain {
        taps.push(&mut tail);
        taps.push(&mut rows);
    }
    if archive.0.is_some() {
        taps.push(&mut archive);
    }
    let mut sink = Sink::new(
        BufWriter::with_capacity(sink::WRITE_BUFFER, tmp.as_file()),
        taps,
        bar.clone(),
    )
    .with_writeback(std::os::fd::AsRawFd::as_raw_fd(tmp.as_file()));
    // The pipe exists: stdout was set to piped above.
    let mut stdout = child.stdout.take().expect("pg_dump stdout is piped");
    widen_pipe(&stdout);
    let pumped = sink::pump(&mut stdout, &mut sink);
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
            PumpError::Write(e) => dir_error(local.dir(), &e),
            PumpError::Read(e) => failed(format!("reading pg_dump's output: {e}")),
        });
    }
    let status = child
        .wait()
        .map_err(|e| failed(format!("waiting for pg_dump: {e}")))?;
    let stderr = dump_err.join().unwrap_or_default();
    let sink::Summary { sha256, size_bytes } =
        sink.finish().map_err(|e| dir_error(local.dir(), &e))?;
    // End of input for the checker: it can finish reading the archive.
    drop(archive);
    if !status.success() {
        if let Some((mut c, _)) = checker {
            let _ = c.kill();
            let _ = c.wait();
        }
        return Err(failed(describe_exit("pg_dump", status, &stderr)));
    }

    let completeness = match job.format {
        Format::Plain => {
            if !contains(&tail.0, PLAIN_TRAILER) {
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

    let (id, path, reservation) = local.publish_file(tmp, job.naming, job.format.extension())?;
    Ok(Taken {
        engine: PgDump::NAME,
        id,
        path: Some(path),
        format: job.format,
        sha256,
        size_bytes,
        checksums: rows.checksums(),
        rows: rows.counts,
        files: Vec::new(),
        completeness,
        elapsed: Duration::ZERO,
        reservation,
        restore_point: None,
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

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn run_directory(tools: &PgTools, job: &Job<'_>, local: &Local) -> Result<Taken, Error> {
    // `_held` marks the directory as in use until it is published or dropped.
    let (tmp, _held) = local.stage_dir()?;
    let out = tmp.path().join("dump");
    let mut cmd = pg_dump_command(tools, job);
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
    let mut child = spawn(&mut cmd, &tools.pg_dump)?;
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
        sink::hash_directory(&out, true).map_err(|e| dir_error(local.dir(), &e))?;
    if !files.iter().any(|f| f.name == "toc.dat") {
        return Err(failed("pg_dump wrote no toc.dat (the dump is incomplete)"));
    }
    let mut cmd = tools.command(&tools.pg_restore, job.target);
    cmd.args(["-f", "/dev/null"])
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let check = cmd.output().map_err(|source| Error::Exec {
        program: tools.pg_restore.clone(),
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
    let (id, path, reservation) = local.publish_dir(&out, job.naming, job.format.extension())?;
    Ok(Taken {
        engine: PgDump::NAME,
        id,
        path: Some(path),
        format: Format::Directory,
        sha256,
        size_bytes,
        rows: HashMap::new(),
        checksums: HashMap::new(),
        files,
        completeness: "archive read back in full by pg_restore".to_owned(),
        elapsed: Duration::ZERO,
        reservation,
        restore_point: None,
    })
}

/// Reads back every table's data in `target` as the checks of a restore
/// need it: the real pg_dump (`--data-only`, plain), whose `COPY ... TO
/// stdout` sets the same output settings (DateStyle, IntervalStyle,
/// extra_float_digits, client encoding) and column lists as the backup's,
/// streamed through a [`CopyCounter`] and never written anywhere.
/// `options` go to the server as `PGOPTIONS` (settings that change how
/// values are printed and that pg_dump leaves alone, such as TimeZone).
pub fn read_back(
    tools: &PgTools,
    target: &crate::target::Target,
    options: &str,
) -> Result<CopyCounter, String> {
    let mut cmd = tools.command(&tools.pg_dump, target);
    cmd.args(["-w", "--data-only", "--format=plain"])
        .args(target.libpq_args())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if !options.is_empty() {
        // Appended to what the command already carries (the user's own
        // PGOPTIONS, the lock timeout).
        let mut joined = cmd
            .get_envs()
            .find(|(k, _)| *k == "PGOPTIONS")
            .and_then(|(_, v)| v)
            .map(|v| v.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !joined.is_empty() {
            joined.push(' ');
        }
        joined.push_str(options);
        cmd.env("PGOPTIONS", joined);
    }
    let mut child = spawn(&mut cmd, &tools.pg_dump).map_err(|e| e.to_string())?;
    let err = drain(&mut child);
    let mut counter = CopyCounter::default();
    let mut read = Ok(());
    if let Some(mut out) = child.stdout.take() {
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            match out.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => counter.feed(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    read = Err(format!("reading pg_dump's output: {e}"));
                    let _ = child.kill();
                    break;
                }
            }
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for pg_dump: {e}"))?;
    let stderr = err.join().unwrap_or_default();
    read?;
    if !status.success() {
        return Err(describe_exit("pg_dump", status, &stderr));
    }
    Ok(counter)
}

/// Counts the data lines of each `COPY ... FROM stdin;` block in a plain
/// dump as it streams past, and sums a checksum of them. In COPY's text
/// format every row is one line (newlines inside values are escaped) and
/// `\.` ends the block.
///
/// The checksum of a table is independent of row order: the sum, modulo
/// 2^64, of each row line's 64-bit XXH3 hash. XXH3 rather than SHA-256:
/// this guards against a restore that lost or changed rows, not against
/// an adversary (the file's SHA-256 does that), and a cryptographic hash
/// per row made the counter the slowest step of a plain backup of narrow
/// rows (88 MB/s for 28-byte rows, against about 600 MB/s for the file's
/// own hash).
/// pg_dump's `COPY ... TO stdout` carries no `ORDER BY`, so the order of
/// rows is the heap's, which a restore (or a later VACUUM FULL, CLUSTER,
/// parallel restore) does not keep; a sum is the same in any order, and
/// with the exact row count beside it a missing, extra or changed row
/// shows.
#[derive(Default)]
pub struct CopyCounter {
    /// Start of the current line, capped (only headers need reading).
    line: Vec<u8>,
    line_len: usize,
    current: Option<(String, String)>,
    current_rows: i64,
    /// The current COPY row's hash, fed part by part as the line streams.
    row: xxhash_rust::xxh3::Xxh3Default,
    current_sum: u64,
    pub counts: HashMap<(String, String), i64>,
    /// Per table, the order-independent content checksum (see above).
    pub sums: HashMap<(String, String), u64>,
}

/// Longest line start kept; COPY headers with long column lists fit.
const LINE_KEEP: usize = 64 * 1024;

/// How a content checksum is written in metadata: 16 hex digits.
pub fn checksum_text(sum: u64) -> String {
    format!("{sum:016x}")
}

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

    /// The checksums as metadata writes them.
    pub fn checksums(&self) -> HashMap<(String, String), String> {
        self.sums
            .iter()
            .map(|(table, sum)| (table.clone(), checksum_text(*sum)))
            .collect()
    }

    fn push(&mut self, part: &[u8]) {
        // Inside a COPY block only the terminator `\.` matters: keep 3 bytes.
        let keep = if self.current.is_some() {
            self.row.update(part);
            3
        } else {
            LINE_KEEP
        };
        if self.line.len() < keep {
            let room = keep - self.line.len();
            self.line.extend_from_slice(&part[..part.len().min(room)]);
        }
        self.line_len += part.len();
    }

    fn end_line(&mut self) {
        if self.current.is_some() {
            let digest = self.row.digest();
            self.row.reset();
            if self.line_len == 2 && self.line == b"\\." {
                if let Some(table) = self.current.take() {
                    self.counts.insert(table.clone(), self.current_rows);
                    self.sums.insert(table, self.current_sum);
                }
            } else {
                self.current_rows += 1;
                self.current_sum = self.current_sum.wrapping_add(digest);
            }
        } else if self.line_len == self.line.len()
            && let Some(table) = parse_copy_header(&self.line)
        {
            self.current = Some(table);
            self.current_rows = 0;
            self.current_sum = 0;
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
    use sha2::{Digest, Sha256};

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
            let (mut tail, mut rows) = (TailWindow::default(), CopyCounter::default());
            let mut sink = Sink::new(
                Vec::new(),
                vec![&mut tail as &mut dyn Tap, &mut rows],
                ProgressBar::hidden(),
            );
            for piece in text.chunks(chunk) {
                sink.feed(piece).unwrap();
            }
            let summary = sink.finish().unwrap();
            assert_eq!(summary.sha256, expected, "chunk {chunk}");
            assert_eq!(summary.size_bytes, text.len() as u64);
            assert!(contains(&tail.0, PLAIN_TRAILER));
            assert_eq!(
                rows.counts.get(&("public".into(), "users".into())),
                Some(&1000),
                "chunk {chunk}"
            );
            assert_eq!(
                rows.counts.get(&("Odd \"Schema\"".into(), "T.x".into())),
                Some(&0)
            );
        }
    }

    #[test]
    fn checksums_ignore_row_order_and_chunking_but_see_every_byte() {
        let dump = |rows: &[&str]| {
            let mut text = b"COPY public.t (a, b) FROM stdin;\n".to_vec();
            for row in rows {
                text.extend_from_slice(row.as_bytes());
                text.push(b'\n');
            }
            text.extend_from_slice(b"\\.\n");
            text
        };
        let sum = |text: &[u8], chunk: usize| {
            let mut counter = CopyCounter::default();
            for piece in text.chunks(chunk) {
                counter.feed(piece);
            }
            let key = ("public".to_owned(), "t".to_owned());
            (counter.counts[&key], counter.checksums()[&key].clone())
        };
        let forward = dump(&["1\tone", "2\ttwo", "3\t\\N"]);
        let (rows, checksum) = sum(&forward, 4096);
        assert_eq!(rows, 3);
        assert_eq!(checksum.len(), 16);
        assert_eq!(sum(&forward, 1), (3, checksum.clone()));
        let shuffled = dump(&["3\t\\N", "1\tone", "2\ttwo"]);
        assert_eq!(sum(&shuffled, 5), (3, checksum.clone()));
        let changed = dump(&["1\tone", "2\ttwO", "3\t\\N"]);
        assert_ne!(sum(&changed, 4096).1, checksum);
        let empty = dump(&[]);
        assert_eq!(sum(&empty, 3), (0, checksum_text(0)));
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
}
