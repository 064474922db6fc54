//! Test support: a throwaway PostgreSQL cluster for the whole run, one
//! fresh database per test, the alembic venv with a sample project, and
//! sandboxes whose PATH starts with a shim directory linking to the built
//! binary.

#![allow(dead_code)] // each test module uses a different part of the support

pub mod alembic;
pub mod cluster;
pub mod guarded;
pub mod pgbackrest;
pub mod s3;
pub mod sandbox;
pub mod venv;

pub use alembic::{AlembicProject, alembic_bin_dir};
pub use cluster::{TestDb, cluster};
pub use sandbox::{Output, Sandbox};
