//! Links the unwinder into the first stage (`libgcc_eh.a`, hidden symbols)
//! on GNU/Linux, instead of std's dependency on `libgcc_s.so.1`: psql does
//! not load libgcc_s itself, so without this every psql start through the
//! shim maps, relocates and searches one more shared object (about 3% of
//! `psql -c 'select 1'`'s instructions; `bench/instructions.sh`). Unwinding
//! only ever happens inside this library (`catch_unwind` around its work),
//! so a private copy of the unwinder serves it.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        // Not bundled into the rlib: the C compiler driver finds the
        // archive in its own directory when the final link names it.
        println!("cargo:rustc-link-lib=static:-bundle=gcc_eh");
    }
}
