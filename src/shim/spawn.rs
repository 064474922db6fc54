//! Running the real tool as a child, for the few flows that must act after
//! it ends (`dbguard migrate`, `alembic revision --autogenerate`). While
//! the child runs, SIGINT and SIGQUIT are ignored here, as `system(3)`
//! does: the terminal sends them to the child too, and the child decides
//! what they mean. Its exit status becomes ours; a death by signal is
//! re-raised so our parent sees the same signal, never a flat 1.

use std::io;
use std::process::{Command, ExitStatus};

use std::os::unix::process::ExitStatusExt;

/// How the child ended, as our own exit should look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Code(u8),
    Signal(i32),
}

impl Ended {
    pub fn from_status(status: ExitStatus) -> Ended {
        match (status.code(), status.signal()) {
            (Some(code), _) => Ended::Code(u8::try_from(code).unwrap_or(1)),
            (None, Some(sig)) => Ended::Signal(sig),
            // Neither is impossible for a waited child on Unix.
            (None, None) => Ended::Code(1),
        }
    }

    pub fn success(self) -> bool {
        self == Ended::Code(0)
    }

    /// What a shell would print as `$?`.
    pub fn shell_status(self) -> u8 {
        match self {
            Ended::Code(c) => c,
            Ended::Signal(s) => u8::try_from(128 + s).unwrap_or(255),
        }
    }

    /// Ends this process the way the child ended: the same exit code, or
    /// the same signal with its default action (128+N if that fails).
    pub fn exit_like(self) -> u8 {
        if let Ended::Signal(sig) = self {
            // SAFETY: resetting a disposition and raising a signal in our own
            // process; nothing else runs concurrently at this point.
            unsafe {
                libc::signal(sig, libc::SIG_DFL);
                libc::raise(sig);
            }
        }
        self.shell_status()
    }
}

/// Spawns `cmd` with inherited stdio and waits, ignoring the terminal's
/// interrupt signals meanwhile.
pub fn run(cmd: &mut Command) -> io::Result<Ended> {
    // SAFETY: plain signal(2) calls; the previous dispositions are put back
    // before returning. exec keeps SIG_IGN, so the child's are reset
    // between fork and exec (signal(2) is async-signal-safe).
    let (old_int, old_quit) = unsafe {
        (
            libc::signal(libc::SIGINT, libc::SIG_IGN),
            libc::signal(libc::SIGQUIT, libc::SIG_IGN),
        )
    };
    let restore = || unsafe {
        libc::signal(libc::SIGINT, old_int);
        libc::signal(libc::SIGQUIT, old_quit);
    };
    use std::os::unix::process::CommandExt;
    // What the child would have inherited had we exec'd it: ignored stays
    // ignored (nohup, a background job), anything else is the default.
    let child_int = if old_int == libc::SIG_IGN {
        libc::SIG_IGN
    } else {
        libc::SIG_DFL
    };
    let child_quit = if old_quit == libc::SIG_IGN {
        libc::SIG_IGN
    } else {
        libc::SIG_DFL
    };
    unsafe {
        cmd.pre_exec(move || {
            libc::signal(libc::SIGINT, child_int);
            libc::signal(libc::SIGQUIT, child_quit);
            Ok(())
        });
    }
    let outcome = cmd.spawn().and_then(|mut child| child.wait());
    restore();
    outcome.map(Ended::from_status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_and_signals_are_kept() {
        let code = run(Command::new("sh").args(["-c", "exit 3"])).expect("sh runs");
        assert_eq!(code, Ended::Code(3));
        assert!(!code.success());
        let killed = run(Command::new("sh").args(["-c", "kill -TERM $$"])).expect("sh runs");
        assert_eq!(killed, Ended::Signal(libc::SIGTERM));
        assert_eq!(killed.shell_status(), 128 + 15);
        assert!(run(&mut Command::new("true")).expect("true runs").success());
    }
}
