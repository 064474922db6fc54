//! Keeps the first stage from adding shared objects to psql's symbol
//! search, on GNU/Linux. psql and its libraries resolve ~9,000 symbols at
//! start, and a preloaded library's dependencies join the search list
//! early, before libpq's own: each one is searched for every symbol that
//! lives further down (`bench/instructions.sh` counts it).
//!
//! - The unwinder is linked in (`libgcc_eh.a`, hidden symbols) instead of
//!   std's dependency on `libgcc_s.so.1`, which psql does not load itself
//!   (~3% of `psql -c 'select 1'`'s instructions). Unwinding only ever
//!   happens inside this library (`catch_unwind` around its work), so a
//!   private copy of the unwinder serves it.
//! - The library is linked against libc without naming the dynamic loader
//!   as a dependency (a copy of libc's link script without its
//!   `AS_NEEDED ( ld-linux… )`). std's thread-local storage needs the
//!   loader's `__tls_get_addr`, which is bound from the loader psql runs
//!   under anyway; named as a dependency, the loader moved up the search
//!   list (~1.7%). Only for the shared object (a link argument of the
//!   cdylib), never for executables linking the rlib.
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os != "linux" || env != "gnu" {
        return;
    }
    // Not bundled into the rlib: the C compiler driver finds the archive
    // in its own directory when the final link names it.
    println!("cargo:rustc-link-lib=static:-bundle=gcc_eh");
    if let Some(dir) = libc_script_without_loader() {
        println!("cargo:rustc-cdylib-link-arg=-L{}", dir.display());
    }
}

/// A directory holding `libc.so`: the system's link script for libc with
/// the loader's `AS_NEEDED` group taken out. `None` when the script is not
/// the expected shape (then the library links as usual).
fn libc_script_without_loader() -> Option<PathBuf> {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let out = Command::new(cc)
        .arg("-print-file-name=libc.so")
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    println!("cargo:rerun-if-changed={}", path.display());
    let script = std::fs::read_to_string(&path).ok()?;
    let start = script.find("AS_NEEDED")?;
    let end = start + script[start..].find(')')? + 1;
    if !script[start..end].contains("ld-linux") || !script.contains("GROUP") {
        return None;
    }
    let edited = format!("{}{}", &script[..start], &script[end..]);
    let dir = PathBuf::from(std::env::var("OUT_DIR").ok()?).join("libc-without-loader");
    std::fs::create_dir_all(&dir).ok()?;
    std::fs::write(dir.join("libc.so"), edited).ok()?;
    Some(dir)
}
