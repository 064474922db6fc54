//! The byte-level pre-check: false when no statement in a string can be
//! destructive, so the full check need not be loaded for it. A copy of
//! `dbguard::sql::classify::may_hold_candidate`, kept here so this library
//! does not link the classifier; the check library's tests run both over
//! one corpus and fail when they disagree.

/// The first keywords that make a statement worth a closer look
/// (`dbguard::sql::classify`'s `HEADS`).
const HEADS: [&[u8]; 12] = [
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
const ANYWHERE: [&[u8]; 3] = [b"dblink", b"dblink_exec", b"dblink_send_query"];

/// False when none of the candidate keywords occurs in `text` as a whole
/// word (keywords cannot be quoted, escaped or split), and no
/// Unicode-escaped name or string could spell one.
pub fn may_hold_candidate(text: &[u8]) -> bool {
    if has_unicode_escape(text) {
        return true;
    }
    let word_byte = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80;
    let mut i = 0;
    while i < text.len() {
        if !word_byte(text[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < text.len() && word_byte(text[i]) {
            i += 1;
        }
        let word = &text[start..i];
        if (2..=17).contains(&word.len())
            && HEADS
                .iter()
                .chain(ANYWHERE.iter())
                .any(|h| word.eq_ignore_ascii_case(h))
        {
            return true;
        }
    }
    false
}

/// `U&"…"` or `U&'…'` anywhere.
fn has_unicode_escape(text: &[u8]) -> bool {
    text.iter().enumerate().any(|(p, &b)| {
        b == b'&'
            && p > 0
            && matches!(text[p - 1], b'u' | b'U')
            && matches!(text.get(p + 1), Some(b'"' | b'\''))
    })
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
            r#"select U&"\0064blink_exec"('c', 'x')"#,
        ] {
            assert!(may_hold_candidate(check.as_bytes()), "{check}");
        }
    }
}
