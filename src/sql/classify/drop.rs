//! Rules for `DROP ...`: drop_database, drop_schema, drop_table,
//! drop_owned, and drop_other for every other object type (views, indexes,
//! functions, types, roles, ...). A `DROP FOREIGN TABLE` is drop_other: the
//! rows live on the remote server. `IF EXISTS` is recorded on the hit: the
//! statement is still a finding (whether the object exists is a question
//! for the live database), but a guard holding a connection can ask it.

use sqlparser::ast::{ObjectType, Statement};

use super::{Hit, object_name, parse};
use crate::sql::finding::Kind;
use crate::sql::token::{Token, qualified_name, skip_parens, tokens};

pub fn classify(text: &[u8], truncated: bool) -> Vec<Hit> {
    if let Some(Statement::Drop {
        object_type,
        names,
        cascade,
        if_exists,
        ..
    }) = parse(text, truncated)
    {
        let kind = match object_type {
            ObjectType::Table => Kind::DropTable,
            ObjectType::Schema => Kind::DropSchema,
            ObjectType::Database => Kind::DropDatabase,
            _ => Kind::DropOther,
        };
        return vec![Hit {
            if_exists,
            ..Hit::new(kind, names.iter().map(object_name).collect(), cascade)
        }];
    }
    fallback(text)
}

/// Object types spelled with more than one word; the first word alone
/// would misname them.
const MULTI_WORD_TYPES: &[&[&str]] = &[
    &["access", "method"],
    &["event", "trigger"],
    &["foreign", "data", "wrapper"],
    &["foreign", "table"],
    &["materialized", "view"],
    &["operator", "class"],
    &["operator", "family"],
    &["procedural", "language"],
    &["text", "search", "configuration"],
    &["text", "search", "dictionary"],
    &["text", "search", "parser"],
    &["text", "search", "template"],
    &["user", "mapping"],
];

/// Reads the object type at `toks[i]`: how many words it spans and the kind
/// of dropping it.
pub(super) fn object_type(toks: &[Token<'_>], i: usize) -> (usize, Kind, bool) {
    for words in MULTI_WORD_TYPES {
        let matches = words
            .iter()
            .enumerate()
            .all(|(k, w)| toks.get(i + k).is_some_and(|t| t.is(w)));
        if matches {
            // A user mapping has no name of its own to report.
            let named = words[0] != "user";
            return (words.len(), Kind::DropOther, named);
        }
    }
    let kind = match toks.get(i) {
        Some(t) if t.is("table") => Kind::DropTable,
        Some(t) if t.is("schema") => Kind::DropSchema,
        Some(t) if t.is("database") => Kind::DropDatabase,
        Some(t) if t.is("owned") => Kind::DropOwned,
        _ => Kind::DropOther,
    };
    // CAST and OPERATOR are named by types or symbols, not identifiers.
    let named = !toks
        .get(i)
        .is_some_and(|t| t.is("cast") || t.is("operator"));
    (usize::from(toks.get(i).is_some()), kind, named)
}

/// Token-level reading of a DROP statement.
pub(super) fn fallback(text: &[u8]) -> Vec<Hit> {
    let toks = tokens(text);
    if toks.len() < 2 {
        // A lone DROP is not a statement (and may be a word in a string).
        return Vec::new();
    }
    let (span, kind, named) = object_type(&toks, 1);
    let mut i = 1 + span;
    if kind == Kind::DropOwned && toks.get(i).is_some_and(|t| t.is("by")) {
        i += 1;
    }
    let mut if_exists = false;
    while toks
        .get(i)
        .is_some_and(|t| t.is("if") || t.is("exists") || t.is("concurrently"))
    {
        if_exists |= toks[i].is("exists");
        i += 1;
    }
    let mut objects = Vec::new();
    if named {
        while let Some((name, next)) = qualified_name(&toks, i) {
            objects.push(name);
            i = next;
            if toks.get(i).is_some_and(|t| t.is_punct(b'(')) {
                // Function and aggregate argument lists.
                i = skip_parens(&toks, i);
            }
            if toks.get(i).is_some_and(|t| t.is("on")) {
                // TRIGGER, POLICY and RULE are named with their table:
                // report them as table.name.
                if let Some((table, next)) = qualified_name(&toks, i + 1)
                    && let Some(last) = objects.last_mut()
                {
                    *last = format!("{table}.{last}");
                    i = next;
                }
            }
            if !toks.get(i).is_some_and(|t| t.is_punct(b',')) {
                break;
            }
            i += 1;
        }
    }
    let cascade = toks[i.min(toks.len())..].iter().any(|t| t.is("cascade"));
    vec![Hit {
        if_exists,
        ..Hit::new(kind, objects, cascade)
    }]
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check_hits, check_misses};
    use super::*;

    const HITS: &[(&str, Kind, &[&str], bool)] = &[
        ("DROP TABLE users", Kind::DropTable, &["users"], false),
        ("drop table users", Kind::DropTable, &["users"], false),
        ("DrOp TaBlE Users", Kind::DropTable, &["users"], false),
        (
            "DROP TABLE IF EXISTS users",
            Kind::DropTable,
            &["users"],
            false,
        ),
        (
            "DROP TABLE public.users",
            Kind::DropTable,
            &["public.users"],
            false,
        ),
        (
            r#"DROP TABLE "Public"."Users""#,
            Kind::DropTable,
            &["Public.Users"],
            false,
        ),
        (
            "DROP TABLE a, b, c",
            Kind::DropTable,
            &["a", "b", "c"],
            false,
        ),
        ("DROP TABLE a CASCADE", Kind::DropTable, &["a"], true),
        ("DROP TABLE a RESTRICT", Kind::DropTable, &["a"], false),
        ("DROP /* sneaky */ TABLE a", Kind::DropTable, &["a"], false),
        ("DROP -- sneaky\nTABLE\n\ta", Kind::DropTable, &["a"], false),
        ("DROP\r\nTABLE\r\nb\r\n", Kind::DropTable, &["b"], false),
        (r#"DROP TABLE "drop""#, Kind::DropTable, &["drop"], false),
        (
            "DROP TABLE IF EXISTS s.a, s.b CASCADE",
            Kind::DropTable,
            &["s.a", "s.b"],
            true,
        ),
        ("DROP SCHEMA app", Kind::DropSchema, &["app"], false),
        (
            "DROP SCHEMA IF EXISTS app CASCADE",
            Kind::DropSchema,
            &["app"],
            true,
        ),
        ("DROP SCHEMA a, b", Kind::DropSchema, &["a", "b"], false),
        ("DROP DATABASE prod", Kind::DropDatabase, &["prod"], false),
        (
            "DROP DATABASE IF EXISTS \"Prod\"",
            Kind::DropDatabase,
            &["Prod"],
            false,
        ),
        (
            "DROP DATABASE prod WITH (FORCE)",
            Kind::DropDatabase,
            &["prod"],
            false,
        ),
        ("DROP OWNED BY app", Kind::DropOwned, &["app"], false),
        (
            "DROP OWNED BY app, CURRENT_USER CASCADE",
            Kind::DropOwned,
            &["app", "current_user"],
            true,
        ),
        ("DROP VIEW v", Kind::DropOther, &["v"], false),
        (
            "DROP MATERIALIZED VIEW IF EXISTS mv CASCADE",
            Kind::DropOther,
            &["mv"],
            true,
        ),
        (
            "DROP INDEX CONCURRENTLY IF EXISTS idx",
            Kind::DropOther,
            &["idx"],
            false,
        ),
        (
            "DROP SEQUENCE s1, s2",
            Kind::DropOther,
            &["s1", "s2"],
            false,
        ),
        ("DROP FUNCTION f(int, text)", Kind::DropOther, &["f"], false),
        (
            "DROP FUNCTION IF EXISTS s.f(int), g CASCADE",
            Kind::DropOther,
            &["s.f", "g"],
            true,
        ),
        ("DROP PROCEDURE p()", Kind::DropOther, &["p"], false),
        ("DROP TYPE mood", Kind::DropOther, &["mood"], false),
        ("DROP DOMAIN d CASCADE", Kind::DropOther, &["d"], true),
        (
            "DROP EXTENSION postgis",
            Kind::DropOther,
            &["postgis"],
            false,
        ),
        (
            "DROP TRIGGER trg ON s.t",
            Kind::DropOther,
            &["s.t.trg"],
            false,
        ),
        ("DROP POLICY p ON t", Kind::DropOther, &["t.p"], false),
        ("DROP RULE r ON t", Kind::DropOther, &["t.r"], false),
        ("DROP ROLE app", Kind::DropOther, &["app"], false),
        ("DROP USER app", Kind::DropOther, &["app"], false),
        ("DROP FOREIGN TABLE ft", Kind::DropOther, &["ft"], false),
        (
            "DROP TEXT SEARCH DICTIONARY d",
            Kind::DropOther,
            &["d"],
            false,
        ),
        ("DROP EVENT TRIGGER et", Kind::DropOther, &["et"], false),
        (
            "DROP USER MAPPING FOR app SERVER s",
            Kind::DropOther,
            &[],
            false,
        ),
        ("DROP CAST (int AS text)", Kind::DropOther, &[], false),
        ("DROP TABLESPACE ts", Kind::DropOther, &["ts"], false),
        ("DROP COLLATION c", Kind::DropOther, &["c"], false),
        ("DROP SERVER s CASCADE", Kind::DropOther, &["s"], true),
    ];

    #[test]
    fn hits() {
        check_hits(HITS, fallback);
    }

    #[test]
    fn quoted_names_keep_their_case() {
        let hit = super::super::testing::one(r#"DROP TABLE "Public"."Users""#).expect("a hit");
        assert_eq!(hit.objects, vec!["Public.Users"]);
        let fb = fallback(br#"DROP TABLE "Public"."Users", USERS"#);
        assert_eq!(fb[0].objects, vec!["Public.Users", "users"]);
    }

    #[test]
    fn fallback_matches_sqlparser_on_names() {
        for (sql, _, objects, cascade) in HITS {
            let fb = fallback(sql.as_bytes());
            assert_eq!(fb[0].objects, *objects, "{sql}");
            assert_eq!(fb[0].cascade, *cascade, "{sql}");
        }
    }

    #[test]
    fn misses() {
        check_misses(
            &[
                "DROP",
                "SELECT 'DROP TABLE users'",
                "SELECT * FROM drop_table",
                "-- DROP TABLE users",
                "/* DROP TABLE users */",
                "SELECT \"DROP\" FROM t",
                "INSERT INTO audit VALUES ('drop table x')",
            ],
            |sql| {
                // Only statements starting with DROP reach the fallback.
                if sql.starts_with(b"DROP") && sql.len() > 4 {
                    fallback(sql)
                } else {
                    Vec::new()
                }
            },
        );
    }
}
