//! Reading the SQL that arrives on stdin without taking it away from the
//! real tool.
//!
//! - A regular file is read from its current offset and the offset is put
//!   back, so psql later reads exactly what it would have.
//! - A pipe or socket can be read only once: it is copied, while it is being
//!   scanned, into an unnamed temporary file (mode 0600, never linked into
//!   the file system, so nothing is left behind even on a crash), which then
//!   becomes the real tool's stdin. Memory use is one buffer, whatever the size.
//! - A terminal is an interactive session and is not read here.
//! - `/dev/null` holds nothing: it is neither read nor spooled, and the
//!   real tool gets it untouched.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use nix::sys::stat::{SFlag, fstat};

/// What file descriptor 0 is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StdinKind {
    Terminal,
    /// A regular file (`psql < script.sql`).
    File,
    /// A pipe, socket or other stream that can be read only once.
    Stream,
    /// No stdin at all (closed descriptor).
    Closed,
    /// `/dev/null`: nothing to read.
    Null,
}

/// Classifies a descriptor (fd 0 in production).
pub fn kind_of(fd: BorrowedFd<'_>) -> StdinKind {
    let Ok(stat) = fstat(fd) else {
        return StdinKind::Closed;
    };
    let file_type = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT;
    if file_type == SFlag::S_IFREG {
        StdinKind::File
    } else if file_type == SFlag::S_IFCHR && is_dev_null(stat.st_rdev) {
        StdinKind::Null
    } else if nix::unistd::isatty(fd).unwrap_or(false) {
        StdinKind::Terminal
    } else {
        StdinKind::Stream
    }
}

/// Whether a character device's number is the one of `/dev/null`. Other
/// character devices (a serial line, `/dev/zero`) stay streams: spooled
/// and scanned, never assumed empty.
fn is_dev_null(rdev: libc::dev_t) -> bool {
    nix::sys::stat::stat("/dev/null").is_ok_and(|null| {
        SFlag::from_bits_truncate(null.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR
            && null.st_rdev == rdev
    })
}

/// Whether a file's metadata (links followed) is `/dev/null`'s.
pub fn is_dev_null_meta(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    meta.file_type().is_char_device() && is_dev_null(meta.rdev() as libc::dev_t)
}

/// Makes `file`, rewound, descriptor `fd` of the process (replacing what
/// was there), inherited across exec.
pub fn install_as(mut file: File, fd: std::os::fd::RawFd) -> io::Result<()> {
    file.seek(SeekFrom::Start(0))?;
    // SAFETY: dup2 only manipulates the descriptor table; the new `fd` has
    // no close-on-exec flag, and `file` keeps (and on drop closes) its own.
    if unsafe { libc::dup2(file.as_raw_fd(), fd) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Keeps `file` open across exec (no close-on-exec) and returns its
/// descriptor, for the real tool to open as `/dev/fd/N`. The descriptor
/// then belongs to the process until exec.
pub fn inherit(file: File) -> io::Result<std::os::fd::RawFd> {
    use std::os::fd::IntoRawFd;
    let fd = file.into_raw_fd();
    // SAFETY: fcntl on a descriptor this process owns, changing only its flags.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

/// The process's stdin.
pub fn stdin_kind() -> StdinKind {
    kind_of(io::stdin().as_fd())
}

/// Copies everything it reads into `copy` as a side effect, so one pass
/// both scans and spools.
pub struct Tee<R, W> {
    inner: R,
    copy: W,
}

impl<R: Read, W: Write> Tee<R, W> {
    pub fn new(inner: R, copy: W) -> Self {
        Tee { inner, copy }
    }

    /// Reads what the consumer left unread, so the copy is complete even
    /// when scanning stopped early.
    pub fn drain(mut self) -> io::Result<W> {
        io::copy(&mut self.inner, &mut self.copy)?;
        Ok(self.copy)
    }
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// An unnamed temporary file (O_TMPFILE or create-and-unlink), 0600.
pub fn spool_file() -> io::Result<File> {
    use std::os::unix::fs::PermissionsExt;
    let file = tempfile::tempfile()?;
    // O_TMPFILE files get the umask's mode; an unnamed file is reachable
    // only through /proc/<pid>/fd, but keep it private all the same.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(file)
}

/// Makes `file`, rewound to its start, the process's stdin, for the real
/// tool to inherit across exec.
pub fn install_as_stdin(file: &mut File) -> io::Result<()> {
    file.seek(SeekFrom::Start(0))?;
    // SAFETY: dup2 only manipulates the descriptor table; fd 0 is replaced
    // atomically and `file` keeps its own descriptor (O_CLOEXEC, so it is
    // closed on exec and the real tool sees only fd 0).
    if unsafe { libc::dup2(file.as_raw_fd(), 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A regular-file stdin's read position, to be restored after scanning.
pub struct Rewind {
    offset: u64,
}

impl Rewind {
    /// Remembers where fd 0 stands now.
    pub fn mark() -> io::Result<Rewind> {
        let offset = nix::unistd::lseek(io::stdin().as_fd(), 0, nix::unistd::Whence::SeekCur)
            .map_err(io::Error::from)?;
        Ok(Rewind {
            offset: offset as u64,
        })
    }

    /// Puts fd 0 back where it stood.
    pub fn restore(self) -> io::Result<()> {
        let offset = i64::try_from(self.offset).map_err(io::Error::other)?;
        nix::unistd::lseek(io::stdin().as_fd(), offset, nix::unistd::Whence::SeekSet)
            .map_err(io::Error::from)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn tee_copies_what_is_read_and_drain_finishes_the_copy() {
        let data: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let mut tee = Tee::new(Cursor::new(data.clone()), Vec::new());
        let mut head = vec![0u8; 1000];
        tee.read_exact(&mut head).unwrap();
        assert_eq!(&head[..], &data[..1000]);
        let copy = tee.drain().unwrap();
        assert_eq!(copy, data);
    }

    #[test]
    fn spool_file_is_private_and_unnamed() {
        use std::os::unix::fs::MetadataExt;
        let mut file = spool_file().unwrap();
        file.write_all(b"select 1;").unwrap();
        let meta = file.metadata().unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600);
        assert_eq!(meta.nlink(), 0, "the spool must not be linked anywhere");
    }

    #[test]
    fn kinds_of_descriptors() {
        let file = tempfile::tempfile().unwrap();
        assert_eq!(kind_of(file.as_fd()), StdinKind::File);
        let (reader, _writer) = std::io::pipe().unwrap();
        assert_eq!(kind_of(reader.as_fd()), StdinKind::Stream);
        let null = File::open("/dev/null").unwrap();
        assert_eq!(kind_of(null.as_fd()), StdinKind::Null);
        let zero = File::open("/dev/zero").unwrap();
        assert_eq!(kind_of(zero.as_fd()), StdinKind::Stream);
    }
}
