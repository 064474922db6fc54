//! The key a statement is known by between the guard's pre-flight and the
//! live check inside psql: SHA-256 of the statement's whole text with runs
//! of ASCII whitespace read as one space and none at either end. The
//! pre-flight writes the keys of what the person confirmed; the live check
//! lets each of those statements through once without asking again.
//!
//! Computed over the whole text, however long: the text people are shown
//! is shortened, and a statement longer than the lexer keeps
//! (`lexer::STATEMENT_CAP`) is hashed as it streams past (`KeyHasher`).

use sha2::{Digest, Sha256};

/// Hashes a statement's bytes as they arrive, whitespace runs collapsed.
#[derive(Clone, Default)]
pub struct KeyHasher {
    sha: Sha256,
    /// Something other than whitespace was hashed.
    started: bool,
    /// Whitespace came after it: one space is owed before the next byte.
    space_owed: bool,
}

impl KeyHasher {
    pub fn new() -> KeyHasher {
        KeyHasher::default()
    }

    pub fn feed(&mut self, bytes: &[u8]) {
        let mut rest = bytes;
        while !rest.is_empty() {
            let blank = rest
                .iter()
                .position(|b| !b.is_ascii_whitespace())
                .unwrap_or(rest.len());
            if blank > 0 {
                self.space_owed = self.started;
                rest = &rest[blank..];
                continue;
            }
            let word = rest
                .iter()
                .position(u8::is_ascii_whitespace)
                .unwrap_or(rest.len());
            if self.space_owed {
                self.sha.update(b" ");
                self.space_owed = false;
            }
            self.sha.update(&rest[..word]);
            self.started = true;
            rest = &rest[word..];
        }
    }

    /// The key, in hex.
    pub fn finish(self) -> String {
        hex::encode(self.sha.finalize())
    }
}

/// The key of a statement held whole.
pub fn statement_key(text: &[u8]) -> String {
    let mut hasher = KeyHasher::new();
    hasher.feed(text);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_runs_count_as_one_space_and_ends_not_at_all() {
        let key = statement_key(b"drop table t");
        assert_eq!(statement_key(b"  drop \n\t table   t \n"), key);
        assert_ne!(statement_key(b"drop tablet"), key);
        assert_ne!(statement_key(b"drop table t2"), key);
    }

    #[test]
    fn the_key_does_not_depend_on_how_the_bytes_arrive() {
        let text = b"delete  from t\n where a = 'x  y'  ";
        let whole = statement_key(text);
        for cut in 0..text.len() {
            let mut h = KeyHasher::new();
            h.feed(&text[..cut]);
            h.feed(&text[cut..]);
            assert_eq!(h.finish(), whole, "cut at {cut}");
        }
    }
}
