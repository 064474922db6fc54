//! Reading an alembic project without running Python: the script
//! directory and its revision graph (`script_dir`), a static scan of the
//! migration functions for destructive operations (`static_scan`), and the
//! per-revision report of `dbguard check-migration` (`check`).

pub mod check;
pub mod script_dir;
pub mod static_scan;
