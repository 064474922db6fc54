//! The `dbguard` executable: everything lives in the library, so that
//! benchmarks and in-process tests see exactly the code the binary runs.

fn main() -> std::process::ExitCode {
    dbguard::main_entry()
}
