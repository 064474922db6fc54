//! Becoming the real tool, once the plan is carried out. The process is
//! replaced (execve), so signals, the terminal, stdin and the exit status
//! belong to the real tool, exactly as if the shell had started it. For
//! psql, the plan's last step adds the preload library to the environment.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::Command;

use crate::shim::RealTool;
use crate::shim::chain::{CHAIN_ENV, Link};
use crate::{ARGV0_ENV, Context, Error};

/// How the real tool is started.
#[derive(Debug)]
pub enum Launch {
    /// Exec it, with `args` instead of the user's arguments when given (a
    /// spooled `-f` pipe renamed), and `env` added to the environment (the
    /// preload library for psql).
    Exec {
        args: Option<Vec<OsString>>,
        env: Vec<(OsString, OsString)>,
    },
    /// It already ran as a child (`alembic revision --autogenerate`, whose
    /// new file is reviewed afterwards): exit with its status.
    Exited(u8),
}

impl Launch {
    /// Exec with the user's arguments and environment.
    pub fn as_given() -> Launch {
        Launch::Exec {
            args: None,
            env: Vec::new(),
        }
    }
}

/// What a plan does last, after anything it protects is protected: hand
/// over what was read (psql's spooled stdin) and say how to start the tool.
pub type Then<'a> = Box<dyn FnOnce() -> Result<Launch, Error> + 'a>;

/// Carries out `then` and becomes the real tool; returns only on failure,
/// or with the status of a tool that ran as a child.
pub fn launch(real: &RealTool, ctx: &Context, link: &Link, then: Then<'_>) -> Result<u8, Error> {
    match then()? {
        Launch::Exec { args, env } => {
            let args = args
                .as_deref()
                .unwrap_or_else(|| ctx.args.get(1..).unwrap_or_default());
            Err(exec(real, link, args, &env))
        }
        Launch::Exited(status) => Ok(status),
    }
}

/// Replaces this process with `real`, given `args` after argv[0] and
/// `env` added to the environment. Returns only on failure.
///
/// argv[0] becomes the real tool's path rather than the name the user typed:
/// PostgreSQL programs locate their share and sysconf directories (locale
/// files, `pg_service.conf`) from argv[0], and a bare `psql` would lead them
/// back to the shim directory. Their messages use only the file name, so
/// nothing the user sees changes.
fn exec(real: &RealTool, link: &Link, args: &[OsString], env: &[(OsString, OsString)]) -> Error {
    let mut cmd = Command::new(&real.path);
    cmd.arg0(&real.path)
        .args(args)
        .env(CHAIN_ENV, link.marker_for_next())
        .env_remove(ARGV0_ENV)
        .envs(env.iter().map(|(k, v)| (k, v)));
    // std restores SIGPIPE to its default and clears the signal mask before
    // execve, so the real tool starts with the dispositions the shell gave us.
    let source = cmd.exec();
    Error::Exec {
        program: real.path.clone(),
        source,
    }
}
