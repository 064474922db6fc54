//! Test support: see main.rs.
