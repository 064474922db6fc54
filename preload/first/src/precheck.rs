//! The byte-level pre-check: false when no statement in a string can be
//! destructive, so the full check need not be loaded for it. The
//! classifier compiles this same file as
//! `dbguard::sql::classify::may_hold_candidate` (this library cannot link
//! the classifier); the check library's tests run the classifier over a
//! corpus and fail when it flags a string this lets pass.

/// The first keywords that make a statement worth a closer look
/// (the classifier's `HEADS`).
pub const HEADS: [&[u8]; 12] = [
    b"drop",
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
];

/// Words that make any statement worth a closer look wherever they occur:
/// the functions that hand SQL to another session.
pub const ANYWHERE: [&[u8]; 3] = [b"dblink", b"dblink_exec", b"dblink_send_query"];

/// Bytes that continue a word: ASCII letters and digits, `_`, and every
/// byte of a multi-byte character. `$`, which SQL allows inside a name,
/// ends a word here: it also opens and closes dollar quotes, and the
/// classifier reads a keyword right after a tag (`$$DROP …`). Splitting at
/// it can only find more keywords, so the check is loaded, never skipped.
const WORD: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80;
        b += 1;
    }
    table
};

/// False when none of the candidate keywords occurs in `text` as a whole
/// word (keywords cannot be quoted, escaped or split), and no
/// Unicode-escaped name or string (`U&"…"`, `U&'…'`) could spell one.
///
/// Every string psql sends passes through here, so it is one pass over the
/// bytes with a table lookup each, and a keyword test per word that
/// rejects most words on their length alone.
pub fn may_hold_candidate(text: &[u8]) -> bool {
    let mut i = 0;
    while i < text.len() {
        let b = text[i];
        if !WORD[b as usize] {
            if b == b'&'
                && i > 0
                && matches!(text[i - 1], b'u' | b'U')
                && matches!(text.get(i + 1), Some(b'"' | b'\''))
            {
                return true;
            }
            i += 1;
            continue;
        }
        let start = i;
        while i < text.len() && WORD[text[i] as usize] {
            i += 1;
        }
        if is_candidate(&text[start..i]) {
            return true;
        }
    }
    false
}

/// The longest keyword, the lengths of all (bit `n` set for length `n`),
/// and the bytes they start with, either case: derived from the lists,
/// so that most words are rejected before they are compared.
const LONGEST: usize = 17;
const _: () = assert!(
    LENGTHS >> (LONGEST + 1) == 0,
    "a keyword is longer than LONGEST"
);
const LENGTHS: u32 = {
    let mut bits = 0;
    let mut i = 0;
    while i < HEADS.len() + ANYWHERE.len() {
        bits |= 1 << keyword(i).len();
        i += 1;
    }
    bits
};
const FIRST: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < HEADS.len() + ANYWHERE.len() {
        let b = keyword(i)[0];
        table[b as usize] = true;
        table[b.to_ascii_uppercase() as usize] = true;
        i += 1;
    }
    table
};

/// Keyword `i` of [`HEADS`] followed by [`ANYWHERE`].
const fn keyword(i: usize) -> &'static [u8] {
    if i < HEADS.len() {
        HEADS[i]
    } else {
        ANYWHERE[i - HEADS.len()]
    }
}

/// Whether `word` is one of [`HEADS`] or [`ANYWHERE`], in any case.
fn is_candidate(word: &[u8]) -> bool {
    word.len() <= LONGEST
        && LENGTHS & (1 << word.len()) != 0
        && FIRST[word[0] as usize]
        && HEADS
            .iter()
            .chain(ANYWHERE.iter())
            .any(|k| word.eq_ignore_ascii_case(k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyword_free_text_skips_the_check() {
        for skip in [
            "SELECT 1;",
            "insert into t values (1, 'dropped')",
            "select dropper, undo, created_at from t",
        ] {
            assert!(!may_hold_candidate(skip.as_bytes()), "{skip}");
        }
        for check in [
            "DROP TABLE t",
            "select 1; delete from t",
            "/*x*/truncate t",
            "select dblink_exec('c', q)",
            "$$DROP TABLE t",
            "select $x$a$x$;$x$drop",
            r#"select U&"\0064blink_exec"('c', 'x')"#,
        ] {
            assert!(may_hold_candidate(check.as_bytes()), "{check}");
        }
    }

    /// The fast keyword test is exactly "one of the lists, any case".
    #[test]
    fn the_keyword_test_is_the_lists() {
        let listed = |w: &[u8]| {
            HEADS
                .iter()
                .chain(ANYWHERE.iter())
                .any(|h| w.eq_ignore_ascii_case(h))
        };
        let mut words: Vec<Vec<u8>> = Vec::new();
        for h in HEADS.iter().chain(ANYWHERE.iter()) {
            let upper = h.to_ascii_uppercase();
            words.push(h.to_vec());
            words.push(upper.clone());
            words.push(h[..h.len() - 1].to_vec());
            let mut longer = h.to_vec();
            longer.push(b's');
            words.push(longer);
            let mut odd = upper;
            odd[0] ^= 0x80;
            words.push(odd);
        }
        words.extend([&b"d"[..], b"", b"dblink_send_query_", b"x"].map(<[u8]>::to_vec));
        // Every length and first letter, so the quick rejection is tested
        // against the lists and not only on their own words.
        for len in 0..=20 {
            for first in [
                b'a', b'b', b'C', b'd', b'E', b'm', b'P', b't', b'U', b'w', b'z',
            ] {
                for h in HEADS.iter().chain(ANYWHERE.iter()) {
                    let mut w = h.to_vec();
                    w.resize(len.max(1), b'x');
                    w[0] = first;
                    words.push(w);
                }
            }
        }
        for w in &words {
            assert_eq!(is_candidate(w), listed(w), "{:?}", core::str::from_utf8(w));
        }
    }
}
