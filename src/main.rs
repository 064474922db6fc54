//! The `dbguard` executable: everything lives in the library, so that
//! benchmarks and in-process tests see exactly the code the binary runs.

fn main() -> std::process::ExitCode {
    dbguard::main_entry()
}

/// Started as a shim (`psql`, `alembic`, ...), the binary runs and execs the
/// real tool from here, before `main` and Rust's runtime start-up, which
/// every psql run would otherwise pay for (`dbguard::shim_before_main` says
/// what it keeps). Started as the toolbox, this returns and `main` runs.
#[used]
#[unsafe(link_section = ".init_array")]
static SHIM_START: extern "C" fn() = shim_start;

extern "C" fn shim_start() {
    dbguard::shim_before_main();
}
