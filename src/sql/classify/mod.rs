//! The classifier: decides whether one statement is destructive and of
//! which kind. The cheap first-keyword test decides most statements; only
//! candidates (DROP, TRUNCATE, ALTER, DELETE, UPDATE, WITH, EXPLAIN, DO,
//! PREPARE) go further. For those, sqlparser (PostgreSQL dialect) gives the
//! precise answer; when it cannot parse the statement, or the statement is
//! too long to parse in bounded memory, a token-level fallback answers
//! instead, erring towards "destructive".
//!
//! One file per family of rules, each with hit and near-miss cases:
//! `drop` (drop_database, drop_schema, drop_table, drop_owned, drop_other),
//! `alter` (drop_column, also for `ALTER COLUMN ... TYPE ... USING` that
//! discards the old values, and the ALTER forms of drop_other), `truncate`,
//! `dml` (delete_all, update_all, also in CTEs, MERGE, `CREATE TABLE ...
//! AS` and under EXPLAIN ANALYZE), `copy` (the query of `COPY (...) TO`,
//! and `COPY ... PROGRAM` as external), `external` (SQL handed to dblink),
//! `dynamic` (DO blocks and `\gexec`).
//!
//! Identifiers are compared by the name PostgreSQL sees: `U&"\0075sers"`
//! (with or without `UESCAPE`) is `users`. sqlparser does not decode them,
//! so statements holding a Unicode escape go to the token-level readers,
//! whose tokenizer does.

mod alter;
mod copy;
mod dml;
mod drop;
mod dynamic;
mod external;
mod truncate;

use sqlparser::ast;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

use super::finding::Kind;
use super::token::{Tok, Tokenizer, tokens};

/// Statements longer than this skip sqlparser and go to the token-level
/// fallback: a parse tree of a huge statement could use a lot of memory.
const PARSE_LIMIT: usize = 64 << 10;
/// How deep SQL inside strings (DO bodies, EXECUTE, `\gexec`) is followed.
const NESTING_LIMIT: usize = 4;

/// One destructive operation found in a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub kind: Kind,
    pub objects: Vec<String>,
    pub cascade: bool,
    /// For `Dynamic` and `External`: the kind the SQL looks like.
    pub implied: Option<Kind>,
    /// `DROP ... IF EXISTS`: nothing happens when the object is missing.
    pub if_exists: bool,
}

impl Hit {
    pub fn new(kind: Kind, objects: Vec<String>, cascade: bool) -> Self {
        Hit {
            kind,
            objects,
            cascade,
            implied: None,
            if_exists: false,
        }
    }

    /// A hit for SQL whose exact target is unknown, looking like `implied`.
    pub fn unknown(kind: Kind, implied: Option<Kind>) -> Self {
        Hit {
            implied,
            ..Hit::new(kind, Vec::new(), false)
        }
    }
}

/// How a statement reached the classifier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Context {
    /// Ended by `\gexec`: every value the query returns runs as SQL.
    pub gexec: bool,
    /// Only the head of a longer statement is available.
    pub truncated: bool,
}

/// Classifies one statement (as split by the lexer). An empty result means
/// not destructive.
pub fn classify(text: &[u8], context: Context) -> Vec<Hit> {
    let mut hits = classify_nested(text, context.truncated, 0);
    if context.gexec {
        hits.extend(dynamic::generated(text, 0));
    }
    hits
}

/// The first keyword of a statement, lowercased, if it is a candidate.
fn candidate_head(text: &[u8]) -> Option<&'static str> {
    // Most statements are decided by their first byte (the lexer drops
    // leading whitespace; a comment or anything odd takes the long way).
    if let Some(&first) = text.first()
        && first.is_ascii_alphabetic()
        && !matches!(
            first.to_ascii_lowercase(),
            b'd' | b't' | b'a' | b'u' | b'w' | b'e' | b'p' | b'm' | b'c'
        )
    {
        return None;
    }
    let head = Tokenizer::new(text).next()?;
    if head.kind != Tok::Word {
        return None;
    }
    precheck::HEADS
        .into_iter()
        .find(|h| head.text.eq_ignore_ascii_case(h))
        .map(|h| std::str::from_utf8(h).unwrap_or_default())
}

/// The byte-level pre-check: false when no statement in `text` can be
/// destructive, because none of the candidate first keywords (or the
/// `dblink` functions) occurs in it as a whole word and no Unicode escape
/// could spell one. The guard inside psql sees every statement through it;
/// `true` only means "scan it". One source file, shared with the preload
/// library's first stage, which decides with it alone whether the check is
/// loaded and cannot depend on this crate (`preload/first` is `no_std`).
#[path = "../../../preload/first/src/precheck.rs"]
mod precheck;
pub use precheck::may_hold_candidate;

/// Classifies `text`, which may itself come from inside a string (`depth`
/// counts how far down).
pub(crate) fn classify_nested(text: &[u8], truncated: bool, depth: usize) -> Vec<Hit> {
    let head = candidate_head(text);
    let dblink = external::mentions_dblink(text);
    if head.is_none() && !dblink {
        return Vec::new();
    }
    if depth > NESTING_LIMIT {
        // SQL nested this deep in strings is not analysed further; say so
        // rather than call it safe.
        return vec![Hit::unknown(Kind::Dynamic, None)];
    }
    let mut hits = match head {
        Some("drop") => drop::classify(text, truncated),
        Some("truncate") => truncate::classify(text, truncated),
        Some("alter") => alter::classify(text, truncated),
        Some("delete" | "update" | "with" | "explain") => dml::classify(text, truncated, depth),
        Some("merge") => dml::merge(text, truncated),
        Some("create") => dml::created_from_query(text, truncated, depth),
        Some("copy") => copy::classify(text, truncated, depth),
        Some("do") => dynamic::do_block(text, depth),
        Some("prepare") => prepared(text, truncated, depth),
        _ => Vec::new(),
    };
    if dblink {
        hits.extend(external::dblink(text, depth));
    }
    hits
}

/// `PREPARE name [(types)] AS statement`: the statement runs at EXECUTE,
/// which may come from anywhere; judge it here.
fn prepared(text: &[u8], truncated: bool, depth: usize) -> Vec<Hit> {
    let toks = tokens(text);
    let mut depth_parens = 0usize;
    for t in &toks {
        if t.is_punct(b'(') {
            depth_parens += 1;
        } else if t.is_punct(b')') {
            depth_parens = depth_parens.saturating_sub(1);
        } else if depth_parens == 0 && t.is("as") {
            let rest = &text[t.offset + t.text.len()..];
            return classify_nested(rest, truncated, depth + 1);
        }
    }
    Vec::new()
}

/// Parses one statement with sqlparser, when it is small enough and whole.
/// `None` means "use the token-level fallback".
pub(crate) fn parse(text: &[u8], truncated: bool) -> Option<ast::Statement> {
    if truncated || text.len() > PARSE_LIMIT || has_unicode_escape(text) {
        return None;
    }
    let sql = String::from_utf8_lossy(text);
    let mut statements = Parser::parse_sql(&PostgreSqlDialect {}, &sql).ok()?;
    // More than one statement means the text did not split the way psql
    // split it; do not trust the parse.
    if statements.len() != 1 {
        return None;
    }
    statements.pop()
}

/// True when `text` holds a `U&"..."` identifier or `U&'...'` string,
/// which sqlparser would read by its escaped spelling.
pub(crate) fn has_unicode_escape(text: &[u8]) -> bool {
    memchr::memchr_iter(b'&', text).any(|p| {
        p > 0 && matches!(text[p - 1], b'u' | b'U') && matches!(text.get(p + 1), Some(b'"' | b'\''))
    })
}

/// An identifier folded the way PostgreSQL folds it.
pub(crate) fn ident(i: &ast::Ident) -> String {
    match i.quote_style {
        Some(_) => i.value.clone(),
        None => i.value.to_ascii_lowercase(),
    }
}

/// A possibly qualified name, folded part by part and joined with dots.
pub(crate) fn object_name(name: &ast::ObjectName) -> String {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|part| match part.as_ident() {
            Some(i) => ident(i),
            None => part.to_string(),
        })
        .collect();
    parts.join(".")
}

#[cfg(test)]
pub(crate) mod testing {
    //! Helpers for the per-family tests: each case is checked on both the
    //! sqlparser path and the token-level fallback.

    use super::*;

    /// The single hit for `sql`, or `None`; fails on several hits.
    pub fn one(sql: &str) -> Option<Hit> {
        let hits = classify(sql.as_bytes(), Context::default());
        assert!(hits.len() <= 1, "{sql}: several hits {hits:?}");
        hits.into_iter().next()
    }

    /// Checks a table of hits: kind, objects and cascade, on the full
    /// classifier; and the kind alone on the fallback, given as a function.
    pub fn check_hits(cases: &[(&str, Kind, &[&str], bool)], fallback: impl Fn(&[u8]) -> Vec<Hit>) {
        for (sql, kind, objects, cascade) in cases {
            let hit = one(sql).unwrap_or_else(|| panic!("{sql}: expected {kind}, got nothing"));
            assert_eq!(hit.kind, *kind, "{sql}");
            assert_eq!(hit.objects, *objects, "{sql}");
            assert_eq!(hit.cascade, *cascade, "{sql}");
            let fb = fallback(sql.as_bytes());
            assert!(
                fb.iter().any(|h| h.kind == *kind),
                "{sql}: fallback disagrees: {fb:?}"
            );
        }
    }

    /// Checks a table of near misses on both paths.
    pub fn check_misses(cases: &[&str], fallback: impl Fn(&[u8]) -> Vec<Hit>) {
        for sql in cases {
            assert_eq!(one(sql), None, "{sql}");
            assert_eq!(fallback(sql.as_bytes()), vec![], "{sql}: fallback");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::one;
    use super::*;

    #[test]
    fn non_candidates_are_never_parsed_as_destructive() {
        for sql in [
            "SELECT * FROM drop_log",
            "INSERT INTO t (\"drop\") VALUES ('DROP TABLE x')",
            "CREATE FUNCTION f() RETURNS void AS $$ DROP TABLE t $$ LANGUAGE sql",
            "CREATE RULE r AS ON INSERT TO t DO INSTEAD DELETE FROM u",
            "CREATE TRIGGER trg AFTER DELETE ON t FOR EACH ROW EXECUTE FUNCTION f()",
            "CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC DELETE FROM t; END",
            "-- DROP TABLE x\nSELECT 1",
            "/* TRUNCATE t */ VALUES (1)",
            "COMMENT ON TABLE t IS 'DELETE FROM t'",
            "GRANT DELETE, TRUNCATE ON t TO app",
            "REVOKE UPDATE ON t FROM app",
            "SELECT 'drop', \"delete\", update_count FROM t",
            "",
            "   ",
        ] {
            assert_eq!(one(sql), None, "{sql}");
        }
    }

    #[test]
    fn prepare_is_judged_by_its_statement() {
        assert_eq!(
            one("PREPARE wipe AS DELETE FROM users").map(|h| h.kind),
            Some(Kind::DeleteAll)
        );
        assert_eq!(
            one("PREPARE one_row(int) AS DELETE FROM users WHERE id = $1"),
            None
        );
        assert_eq!(one("PREPARE q AS SELECT 1"), None);
    }

    #[test]
    fn gexec_adds_what_the_query_generates() {
        let hits = classify(
            b"SELECT format('DROP TABLE %I', tablename) FROM pg_tables",
            Context {
                gexec: true,
                truncated: false,
            },
        );
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].kind, Kind::Dynamic);
        assert_eq!(hits[0].implied, Some(Kind::DropTable));
    }

    #[test]
    fn unicode_escaped_names_are_decoded() {
        let cases: &[(&str, Kind, &[&str])] = &[
            (r#"DROP TABLE U&"\0075sers""#, Kind::DropTable, &["users"]),
            (
                r#"DROP TABLE U&"!0075sers" UESCAPE '!'"#,
                Kind::DropTable,
                &["users"],
            ),
            (
                r#"truncate public.u&"\0075sers""#,
                Kind::Truncate,
                &["public.users"],
            ),
            (r#"DELETE FROM U&"\0075sers""#, Kind::DeleteAll, &["users"]),
            (
                r#"ALTER TABLE U&"\0075sers" DROP COLUMN U&"\0065mail""#,
                Kind::DropColumn,
                &["users.email"],
            ),
        ];
        for (sql, kind, objects) in cases {
            let hit = one(sql).unwrap_or_else(|| panic!("{sql}: no hit"));
            assert_eq!(hit.kind, *kind, "{sql}");
            assert_eq!(hit.objects, *objects, "{sql}");
        }
        // The escaped spelling of a different name is that name.
        let hit = one(r#"DROP TABLE U&"\0055sers""#).expect("a hit");
        assert_eq!(hit.objects, vec!["Users"]);
        assert_eq!(one(r#"SELECT * FROM U&"\0075sers""#), None);
    }

    #[test]
    fn if_exists_is_recorded() {
        assert!(one("DROP TABLE IF EXISTS users").expect("a hit").if_exists);
        assert!(!one("DROP TABLE users").expect("a hit").if_exists);
        let long = format!("DROP TABLE IF EXISTS {}x", "a, ".repeat(30_000));
        assert!(one(&long).expect("a hit").if_exists, "the fallback too");
    }

    #[test]
    fn object_names_fold_like_postgres() {
        let stmt = parse(br#"DROP TABLE Public."Users", USERS"#, false).expect("parses");
        let ast::Statement::Drop { names, .. } = stmt else {
            panic!("not a drop: {stmt:?}");
        };
        let names: Vec<String> = names.iter().map(object_name).collect();
        assert_eq!(names, vec!["public.Users", "users"]);
    }

    #[test]
    fn the_pre_check_lets_only_keyword_free_text_skip_the_scan() {
        for skip in [
            "SELECT 1;",
            "insert into t values (1, 'dropped')",
            "select dropper, undo from t",
        ] {
            assert!(!may_hold_candidate(skip.as_bytes()), "{skip}");
        }
        for scan in [
            "DROP TABLE t",
            "select 1; delete from t",
            "/*x*/truncate t",
            "WITH d AS (DELETE FROM t) SELECT 1",
            "do $$ begin end $$",
            "merge into t using s on true when matched then delete",
            "copy t to program 'x'",
            "select DBLINK_EXEC('c', q) from queue",
            "select dblink('c', q) as t(a int)",
            r#"select U&"\0064blink_exec"('c', U&'\0044ROP TABLE t')"#,
        ] {
            assert!(may_hold_candidate(scan.as_bytes()), "{scan}");
        }
    }
}
