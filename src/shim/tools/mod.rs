//! One module per shimmed tool: its command-line model (`args`) and its
//! guard, which reads the invocation and says what protecting it takes.

pub mod alembic;
pub mod dropdb;
pub mod pg_restore;
pub mod psql;
