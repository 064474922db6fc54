//! The first stage's byte-level pre-check decides alone whether the check
//! is loaded at all, so it must never let pass a string the classifier
//! would flag. The classifier compiles the same source file as
//! `dbguard::sql::classify::may_hold_candidate`; here the classifier is run
//! over a corpus (every line and every whole file of the repository's
//! tests and SQL sources, and a generated set of keyword fragments,
//! separators and escapes) and each string it flags must pass the
//! pre-check.

use std::path::Path;

use dbguard::sql::classify::{Context, classify, may_hold_candidate};

/// Records `text` when the classifier flags it and the pre-check would
/// not even load the check for it; returns whether it was flagged.
fn flagged(text: &[u8], skipped: &mut Vec<String>) -> bool {
    let gexec = Context {
        gexec: true,
        ..Context::default()
    };
    let hit = !classify(text, Context::default()).is_empty() || !classify(text, gexec).is_empty();
    if hit && !may_hold_candidate(text) {
        skipped.push(String::from_utf8_lossy(text).into_owned());
    }
    hit
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
fn the_pre_check_lets_nothing_pass_that_the_classifier_flags_in_the_repository() {
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
    let mut skipped = Vec::new();
    let (mut strings, mut hits) = (0, 0);
    for file in &files {
        let text = std::fs::read(file).expect("read a corpus file");
        flagged(&text, &mut skipped);
        for line in text.split(|b| *b == b'\n') {
            hits += usize::from(flagged(line, &mut skipped));
            strings += 1;
        }
    }
    assert!(strings > 10_000, "{strings} strings");
    // The corpus holds many destructive statements, so the test means
    // something.
    assert!(hits > 50, "{hits} flagged lines");
    assert!(skipped.is_empty(), "{skipped:#?}");
}

#[test]
fn the_pre_check_lets_nothing_pass_that_the_classifier_flags_in_generated_strings() {
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
    let mut skipped = Vec::new();
    let (mut candidates, mut hits) = (0, 0);
    for _ in 0..200_000 {
        let len = 1 + (next() % 6) as usize;
        let mut text = Vec::new();
        for _ in 0..len {
            text.extend_from_slice(pieces[(next() % pieces.len() as u64) as usize]);
        }
        hits += usize::from(flagged(&text, &mut skipped));
        candidates += usize::from(may_hold_candidate(&text));
    }
    // Both answers occur, and the classifier flags many, so the test
    // means something.
    assert!((10_000..190_000).contains(&candidates), "{candidates}");
    assert!(hits > 1_000, "{hits} flagged");
    assert!(skipped.is_empty(), "{skipped:#?}");
}
