//! Rules for SQL handed to another session: `dblink_exec`, `dblink` and
//! `dblink_send_query` (schema-qualified or not, anywhere in a statement)
//! run their SQL argument over another connection, possibly to another
//! database or server, where neither this guard's question nor its backup
//! of this database reaches. That is the `external` kind:
//!
//! - a literal SQL argument that is destructive gives the kind it looks
//!   like as `implied` (`dblink_exec('…', 'DROP TABLE users')`);
//! - a literal that is not destructive (`dblink('…', 'SELECT …')`) is no
//!   finding;
//! - an argument whose text is not known here (a variable, a column, a
//!   concatenation) is external with no implied kind, unless a destructive
//!   fragment shows in it.
//!
//! Objects are left empty: the names belong to the other connection, and
//! an empty list makes a guard back up the whole of this database, which
//! covers the case where the "other" connection is this database.

use super::dynamic::looks_destructive;
use super::{Hit, classify_nested};
use crate::sql::finding::Kind;
use crate::sql::token::{Tok, Token, tokens};

// The functions whose arguments are SQL run elsewhere: the pre-check's
// list, so a statement that mentions none of them is never scanned.
use super::precheck::ANYWHERE as FUNCTIONS;

/// True when `text` mentions dblink at all (any case): the cheap test
/// before tokenizing.
pub fn mentions_dblink(text: &[u8]) -> bool {
    super::has_unicode_escape(text)
        || memchr::memchr2_iter(b'd', b'D', text)
            .any(|p| text.len() - p >= 6 && text[p..p + 6].eq_ignore_ascii_case(b"dblink"))
}

/// Hits for every dblink call in `text`.
pub fn dblink(text: &[u8], depth: usize) -> Vec<Hit> {
    let toks = tokens(text);
    let mut hits = Vec::new();
    for (k, t) in toks.iter().enumerate() {
        let called = toks.get(k + 1).is_some_and(|n| n.is_punct(b'('));
        // Quoted or escaped, the name is still the function's.
        if !called || !t.is_name() || !FUNCTIONS.contains(&t.ident().as_bytes()) {
            continue;
        }
        let args = arguments(&toks, k + 1);
        if let Some(hit) = call(&args, depth) {
            hits.push(hit);
        }
    }
    hits
}

/// Judges one call by its arguments.
fn call(args: &[&[Token<'_>]], depth: usize) -> Option<Hit> {
    let is_bool = |a: &[Token<'_>]| matches!(a, [t] if t.is("true") || t.is("false"));
    // dblink_exec([conn,] sql [, fail_on_error]): the SQL is the second
    // argument of two or three, unless the second is the boolean flag.
    let sql = match args {
        [] => return None,
        [only] => *only,
        [first, second] if is_bool(second) => *first,
        [_, second, ..] => *second,
    };
    if let [t] = sql
        && t.kind == Tok::Str
    {
        let value = t.string_value();
        let found = classify_nested(&value, false, depth + 1);
        let worst = found
            .iter()
            .map(|h| h.implied.unwrap_or(h.kind))
            .max_by_key(|k| k.severity())?;
        return Some(Hit::unknown(Kind::External, Some(worst)));
    }
    // Text not known here: whatever it is runs elsewhere.
    let implied = sql
        .iter()
        .filter(|t| t.kind == Tok::Str)
        .filter_map(|t| looks_destructive(&t.string_value()))
        .max_by_key(|k| k.severity());
    Some(Hit::unknown(Kind::External, implied))
}

/// The top-level arguments of the call whose `(` is at `toks[open]`.
fn arguments<'t, 'a>(toks: &'t [Token<'a>], open: usize) -> Vec<&'t [Token<'a>]> {
    let mut args = Vec::new();
    let mut depth = 0usize;
    let mut start = open + 1;
    for (k, t) in toks.iter().enumerate().skip(open) {
        if t.is_punct(b'(') {
            depth += 1;
        } else if t.is_punct(b')') {
            depth -= 1;
            if depth == 0 {
                args.push(&toks[start..k]);
                return args.into_iter().filter(|a| !a.is_empty()).collect();
            }
        } else if depth == 1 && t.is_punct(b',') {
            args.push(&toks[start..k]);
            start = k + 1;
        }
    }
    // Unclosed: what there is.
    args.push(&toks[start.min(toks.len())..]);
    args.into_iter().filter(|a| !a.is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use crate::sql::classify::{Context, classify};
    use crate::sql::finding::Kind;

    fn hits(sql: &str) -> Vec<(Kind, Option<Kind>, Vec<String>)> {
        classify(sql.as_bytes(), Context::default())
            .into_iter()
            .map(|h| (h.kind, h.implied, h.objects))
            .collect()
    }

    #[test]
    fn sql_handed_to_dblink_is_external() {
        let cases: &[(&str, Option<Kind>)] = &[
            (
                "SELECT dblink_exec('dbname=app', 'DROP TABLE users')",
                Some(Kind::DropTable),
            ),
            (
                "SELECT public.dblink_exec('DELETE FROM users')",
                Some(Kind::DeleteAll),
            ),
            (
                "SELECT dblink_exec('conn', 'TRUNCATE logs', false)",
                Some(Kind::Truncate),
            ),
            (
                "SELECT dblink_exec('TRUNCATE logs', true)",
                Some(Kind::Truncate),
            ),
            (
                "SELECT * FROM dblink('dbname=app', 'DELETE FROM users RETURNING id') AS t(id int)",
                Some(Kind::DeleteAll),
            ),
            (
                "SELECT dblink_send_query('c', 'UPDATE users SET a = 1')",
                Some(Kind::UpdateAll),
            ),
            ("SELECT DBLINK_EXEC('c', :'sql')", None),
            ("SELECT dblink_exec('c', q) FROM queue", None),
            (
                "SELECT dblink_exec('c', 'DROP TABLE ' || quote_ident(t)) FROM tabs",
                Some(Kind::DropTable),
            ),
            (
                "SELECT dblink_exec('c', $q$DROP SCHEMA app CASCADE$q$)",
                Some(Kind::DropSchema),
            ),
            (
                r#"SELECT "dblink_exec"('c', 'DROP TABLE users')"#,
                Some(Kind::DropTable),
            ),
            (
                r#"SELECT U&"\0064blink_exec"('c', U&'\0044ROP TABLE users')"#,
                Some(Kind::DropTable),
            ),
        ];
        for (sql, implied) in cases {
            assert_eq!(hits(sql), vec![(Kind::External, *implied, vec![])], "{sql}");
        }
    }

    #[test]
    fn harmless_dblink_calls_are_not() {
        for sql in [
            "SELECT * FROM dblink('dbname=app', 'SELECT id FROM users') AS t(id int)",
            "SELECT dblink_exec('c', 'INSERT INTO log VALUES (1)')",
            "SELECT dblink_exec('c', 'DELETE FROM users WHERE id = 7')",
            "SELECT dblink_connect('c', 'dbname=app')",
            "SELECT dblink_disconnect('c')",
            "SELECT 'dblink_exec(''c'', ''DROP TABLE t'')'",
            "SELECT dblink_is_busy('c')",
            r#"SELECT "DBLINK_EXEC"('c', 'DROP TABLE users')"#,
        ] {
            assert_eq!(hits(sql), vec![], "{sql}");
        }
    }
}
