//! What the first stage shares with the check library and the shim: file
//! and variable names, the entry-point version, and the refusal statement.
//! Plain `core` + `alloc` code, so the guard compiles this very file too
//! (`dbguard::shim::live`, by `#[path]`): one definition of each.

use alloc::format;
use alloc::string::String;

/// File name of this library, as psql gets it in `LD_PRELOAD`.
pub const PRELOAD_FILE: &str = "libdbguard_preload.so";
/// File name of the second stage, looked up beside this library.
pub const CHECK_FILE: &str = "libdbguard_check.so";
/// The variable naming the pre-flight's confirmed-statements file
/// (`dbguard::env::LIVE_CONFIRMED`, where every variable is documented;
/// the guard checks the two agree when it is compiled).
pub const CONFIRMED_ENV: &str = "DBGUARD_LIVE_CONFIRMED";
/// Bumped whenever an entry point of the second stage changes; the second
/// stage refuses to start for another value.
pub const ABI_VERSION: u32 = 1;

/// A statement that fails on the server with `message`: psql shows
/// `ERROR:  dbguard: …`, and an open transaction is aborted as after any
/// failed statement, so psql's idea of the transaction state stays true.
pub fn refusal_statement(message: &str) -> String {
    let text = format!("dbguard: statement not run: {message}");
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\'' => escaped.push_str("''"),
            '\\' => escaped.push_str("\\\\"),
            // `$` is safe in the E'' literal but not in the $dbguard$ body.
            '$' => escaped.push_str("\\x24"),
            '\0' => {}
            c => escaped.push(c),
        }
    }
    format!("DO $dbguard$ BEGIN RAISE EXCEPTION USING MESSAGE = E'{escaped}'; END $dbguard$")
}
