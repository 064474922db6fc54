//! The first stage's byte-level pre-check decides alone whether the check
//! is loaded at all, so it must agree exactly with the classifier's
//! `may_hold_candidate`: both are run over one corpus (every line and
//! every whole file of the repository's tests and SQL sources, and a
//! generated set of keyword fragments, separators and escapes) and must
//! give the same answer for each string. Also: the first stage's refusal
//! is the same statement as the guard's.

extern crate alloc;

use std::path::Path;

use dbguard::sql::classify::may_hold_candidate as classifier;
use first_stage_precheck::may_hold_candidate as first_stage;

#[path = "../first/src/abi.rs"]
mod dbguard_preload;
/// The first stage's own source files, compiled here: it is a workspace of
/// its own (`no_std`, another panic strategy) and cannot be a dependency.
#[path = "../first/src/precheck.rs"]
mod first_stage_precheck;

fn agree(text: &[u8], disagreements: &mut Vec<String>) {
    if classifier(text) != first_stage(text) {
        disagreements.push(String::from_utf8_lossy(text).into_owned());
    }
}

fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, out);
        } else if path
            .extension()
            .is_some_and(|e| ["rs", "sql", "py", "md", "snap"].iter().any(|x| e == *x))
        {
            out.push(path);
        }
    }
}

#[test]
fn the_first_stage_pre_check_agrees_with_the_classifier_on_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for dir in ["tests", "src", "docs"] {
        walk(&root.join(dir), &mut files);
    }
    assert!(
        files.len() > 50,
        "the corpus was found: {} files",
        files.len()
    );
    let mut disagreements = Vec::new();
    let mut strings = 0;
    for file in &files {
        let text = std::fs::read(file).expect("read a corpus file");
        agree(&text, &mut disagreements);
        for line in text.split(|b| *b == b'\n') {
            agree(line, &mut disagreements);
            strings += 1;
        }
    }
    assert!(strings > 10_000, "{strings} strings");
    assert!(disagreements.is_empty(), "{disagreements:#?}");
}

#[test]
fn the_first_stage_pre_check_agrees_with_the_classifier_on_generated_strings() {
    // Fragments chosen to hit word boundaries, case, lengths at the
    // limits, Unicode escapes and non-ASCII bytes.
    let pieces: [&[u8]; 32] = [
        b"drop",
        b"DROP",
        b"Drop",
        b"truncate",
        b"alter",
        b"delete",
        b"update",
        b"with",
        b"explain",
        b"do",
        b"prepare",
        b"merge",
        b"copy",
        b"create",
        b"dblink",
        b"dblink_exec",
        b"dblink_send_query",
        b"dblink_send_queryx",
        b"select",
        b"x",
        b"_",
        b"$",
        b"1",
        b" ",
        b";",
        b"'",
        b"\"",
        b"&",
        b"u",
        b"U&\"",
        b"\xc3\xa9",
        b"--",
    ];
    // A small deterministic generator (xorshift): no dependency, and the
    // same strings on every run.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut disagreements = Vec::new();
    let mut candidates = 0;
    for _ in 0..200_000 {
        let len = 1 + (next() % 6) as usize;
        let mut text = Vec::new();
        for _ in 0..len {
            text.extend_from_slice(pieces[(next() % pieces.len() as u64) as usize]);
        }
        agree(&text, &mut disagreements);
        candidates += usize::from(first_stage(&text));
    }
    // Both answers occur, so the comparison means something.
    assert!((10_000..190_000).contains(&candidates), "{candidates}");
    assert!(disagreements.is_empty(), "{disagreements:#?}");
}

#[test]
fn the_first_stage_refuses_with_the_guard_s_own_statement() {
    for message in ["plain", "it's $1 \\ odd", "dollar $dbguard$ quote"] {
        assert_eq!(
            dbguard_preload::refusal_statement(message),
            dbguard::shim::live::refusal_statement(message)
        );
    }
}

#[test]
fn both_stages_speak_the_same_entry_point_version() {
    assert_eq!(dbguard_preload::ABI_VERSION, dbguard_check::ABI_VERSION);
}

#[test]
fn both_stages_and_the_shim_agree_on_names() {
    use dbguard::shim::live;
    assert_eq!(dbguard_preload::PRELOAD_FILE, live::PRELOAD_FILE);
    assert_eq!(dbguard_preload::CHECK_FILE, live::CHECK_FILE);
    assert_eq!(dbguard_preload::CONFIRMED_ENV, live::CONFIRMED_ENV);
}
