//! All integration tests build into this one binary. `support` starts a
//! throwaway PostgreSQL cluster, creates the alembic venv, and builds
//! sandboxes with the shims first on PATH.

mod support;

mod alembic_guard;
mod alembic_tools;
mod backup;
mod bad_input;
mod completions;
mod differential;
mod doctor;
mod drill;
mod guard;
mod install;
mod interactive;
mod log;
mod pitr;
mod prompts;
mod remote;
mod restore;
mod retention;
mod round_trip;
mod scan;
mod transparency;
mod whole_database_guard;
