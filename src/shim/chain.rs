//! Recursion control. A shim that execs another shim (two installs on PATH,
//! an override pointing back at a link) must never loop, and a shim reached
//! again *in the same process* must know the guard has already run so it
//! does not prompt or back up twice.
//!
//! `exec` keeps the process id and start time, so the marker records both:
//! a shim that finds its own pid and start time in `DBGUARD_SHIM_CHAIN` was
//! exec'd by a shim; any other process (psql's `\!` children, a later
//! command that inherited the variable) starts a fresh chain and is guarded
//! as usual.

use std::io::Read;

use crate::shim::Tool;
use crate::{Context, Error};

pub use crate::env::SHIM_CHAIN as CHAIN_ENV;

/// Hops through shims allowed within one process before we call it a loop.
pub const MAX_DEPTH: u32 = 4;

/// This process's place in a chain of shims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Shims passed in this process before this one (0 for the first).
    pub depth: u32,
    /// Identity of this process: `pid:starttime`.
    pub process: String,
}

impl Link {
    /// Reads the marker and decides this shim's depth; errors out when the
    /// same process has passed through too many shims.
    pub fn observe(tool: Tool, ctx: &Context) -> Result<Link, Error> {
        let process = process_identity();
        let depth = ctx
            .var(CHAIN_ENV)
            .and_then(|v| v.to_str())
            .and_then(|v| parse_marker(v, &process))
            .unwrap_or(0);
        if depth >= MAX_DEPTH {
            return Err(Error::Recursion {
                tool,
                depth,
                var: tool.override_var(),
            });
        }
        Ok(Link { depth, process })
    }

    /// True when an earlier shim in this process already ran the guard.
    pub fn guarded_upstream(&self) -> bool {
        self.depth > 0
    }

    /// The marker to hand on to whatever this process execs next.
    pub fn marker_for_next(&self) -> String {
        format!("{}:{}", self.process, self.depth + 1)
    }
}

/// `pid:depth`-style marker parsing: the depth counts only when the marker
/// was written by this very process (same pid and start time).
fn parse_marker(marker: &str, process: &str) -> Option<u32> {
    let (owner, depth) = marker.rsplit_once(':')?;
    if owner != process {
        return None;
    }
    depth.parse().ok()
}

/// `pid:starttime`, where starttime is field 22 of /proc/self/stat (clock
/// ticks since boot). The start time makes a reused pid a different process.
fn process_identity() -> String {
    let pid = std::process::id();
    // One read: the file is a few hundred bytes (the command name is at
    // most 64), and every psql run asks.
    let mut buf = [0u8; 1024];
    let stat = std::fs::File::open("/proc/self/stat")
        .and_then(|mut f| f.read(&mut buf))
        .map(|n| &buf[..n])
        .unwrap_or_default();
    // The command name (field 2) may contain spaces and parentheses;
    // fields after the last ')' are plain numbers.
    let start = stat
        .iter()
        .rposition(|b| *b == b')')
        .and_then(|end| std::str::from_utf8(&stat[end + 1..]).ok())
        .and_then(|rest| rest.split_whitespace().nth(19))
        .unwrap_or_default();
    format!("{pid}.{start}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_from_this_process_counts() {
        let me = process_identity();
        assert_eq!(parse_marker(&format!("{me}:2"), &me), Some(2));
    }

    #[test]
    fn marker_from_another_process_is_ignored() {
        let me = process_identity();
        assert_eq!(parse_marker("1.999:3", &me), None);
        assert_eq!(parse_marker("garbage", &me), None);
        assert_eq!(parse_marker(&format!("{me}:x"), &me), None);
    }

    #[test]
    fn identity_has_a_start_time() {
        let id = process_identity();
        let (pid, start) = id.split_once('.').unwrap();
        assert_eq!(pid, std::process::id().to_string());
        assert!(start.parse::<u64>().is_ok(), "start time in {id:?}");
    }

    #[test]
    fn too_deep_is_recursion() {
        let me = process_identity();
        let marker = format!("{me}:{MAX_DEPTH}");
        let ctx = Context::for_test(&["psql"], &[(CHAIN_ENV, &marker)]);
        let err = Link::observe(Tool::Psql, &ctx).unwrap_err();
        assert!(matches!(
            err,
            Error::Recursion {
                depth: MAX_DEPTH,
                ..
            }
        ));
        let fresh = Context::for_test(&["psql"], &[(CHAIN_ENV, "1.2:9")]);
        assert_eq!(Link::observe(Tool::Psql, &fresh).unwrap().depth, 0);
    }
}
