//! Everything that knows alembic: its command line (`args`), which
//! database a command migrates (`url`), reading a project without running
//! Python — the script directory and its revision graph (`script_dir`), a
//! static scan of the migration functions for destructive operations
//! (`static_scan`) — and the per-revision report of `dbguard
//! check-migration` (`check`).

pub mod args;
pub mod check;
pub mod project;
pub mod render;
pub mod script_dir;
pub mod static_scan;
pub mod url;
pub mod version_table;
