//! Rules for COPY. `COPY (query) TO ...` runs its query, and a DELETE,
//! UPDATE or MERGE with RETURNING is allowed there, so `COPY (DELETE FROM t
//! RETURNING *) TO stdout` deletes: the query is judged like any
//! statement (delete_all, update_all, MERGE). psql's `\copy (query) to`
//! sends the same COPY; the script reader judges its query the same way.
//!
//! `COPY ... TO PROGRAM` and `COPY ... FROM PROGRAM` run a shell command on
//! the database server, as the server's operating-system user, which can
//! do anything (remove files, run psql against any database): external,
//! with the kind the command's text looks like as `implied` when it
//! holds destructive SQL. psql's client-side `\copy ... program` is not
//! judged: like `\!`, it runs on the person's own machine with their own
//! rights.

use super::dynamic::looks_destructive;
use super::{Hit, classify_nested};
use crate::sql::finding::Kind;
use crate::sql::token::{Tok, skip_parens, tokens};

pub fn classify(text: &[u8], truncated: bool, depth: usize) -> Vec<Hit> {
    let toks = tokens(text);
    let mut hits = Vec::new();
    let mut rest = 1;
    if toks.get(1).is_some_and(|t| t.is_punct(b'(')) {
        let close = skip_parens(&toks, 1);
        if let Some(query) = query_between(text, &toks, 1, close) {
            hits.extend(classify_nested(query, truncated, depth));
        }
        rest = close;
    }
    let after = &toks[rest.min(toks.len())..];
    let program = after.iter().enumerate().position(|(k, t)| {
        t.is("program") && k > 0 && (after[k - 1].is("to") || after[k - 1].is("from"))
    });
    if let Some(k) = program {
        let implied = after
            .get(k + 1)
            .filter(|t| t.kind == Tok::Str)
            .and_then(|t| looks_destructive(&t.string_value()));
        hits.push(Hit::unknown(Kind::External, implied));
    }
    hits
}

/// The text inside the parentheses that open at `toks[open]` and close
/// just before `toks[close]` (`close` as `skip_parens` returns it).
pub(crate) fn query_between<'a>(
    text: &'a [u8],
    toks: &[crate::sql::token::Token<'_>],
    open: usize,
    close: usize,
) -> Option<&'a [u8]> {
    let from = toks.get(open + 1)?.offset;
    let to = match toks.get(close.checked_sub(1)?) {
        Some(t) if t.is_punct(b')') && close - 1 > open => t.offset,
        // Unclosed: the rest of the text.
        _ => text.len(),
    };
    (from <= to).then(|| &text[from..to])
}

#[cfg(test)]
mod tests {
    use crate::sql::classify::testing::one;
    use crate::sql::finding::Kind;

    #[test]
    fn queries_copied_out_are_judged() {
        let cases: &[(&str, Kind, &[&str])] = &[
            (
                "COPY (DELETE FROM users RETURNING *) TO STDOUT",
                Kind::DeleteAll,
                &["users"],
            ),
            (
                "copy (update users set a = 1 returning id) to '/tmp/x.csv' with (format csv)",
                Kind::UpdateAll,
                &["users"],
            ),
            (
                "COPY (WITH d AS (DELETE FROM s.t RETURNING *) SELECT * FROM d) TO STDOUT",
                Kind::DeleteAll,
                &["s.t"],
            ),
        ];
        for (sql, kind, objects) in cases {
            let hit = one(sql).unwrap_or_else(|| panic!("{sql}: no hit"));
            assert_eq!(hit.kind, *kind, "{sql}");
            assert_eq!(hit.objects, *objects, "{sql}");
        }
    }

    #[test]
    fn programs_run_by_the_server_are_external() {
        let hit = one("COPY t TO PROGRAM 'gzip > /tmp/t.gz'").expect("a hit");
        assert_eq!((hit.kind, hit.implied), (Kind::External, None));
        let hit = one("COPY t FROM PROGRAM 'psql -c \"DROP TABLE users\"'").expect("a hit");
        assert_eq!(
            (hit.kind, hit.implied),
            (Kind::External, Some(Kind::DropTable))
        );
        let hit = one("COPY (SELECT 1) TO PROGRAM 'cat'").expect("a hit");
        assert_eq!(hit.kind, Kind::External);
    }

    #[test]
    fn ordinary_copies_are_not() {
        for sql in [
            "COPY t TO STDOUT",
            "COPY t (a, b) FROM STDIN WITH (FORMAT csv)",
            "COPY (SELECT * FROM users WHERE deleted) TO STDOUT",
            "COPY (DELETE FROM users WHERE id = 1 RETURNING *) TO STDOUT",
            "COPY program_log FROM '/tmp/x'",
            "COPY t (program) FROM STDIN",
            "COPY (SELECT 'DELETE FROM t') TO STDOUT",
        ] {
            assert_eq!(one(sql), None, "{sql}");
        }
    }
}
