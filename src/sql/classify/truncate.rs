//! Rule for `TRUNCATE [TABLE] [ONLY] name [*] [, ...] [RESTART IDENTITY |
//! CONTINUE IDENTITY] [CASCADE | RESTRICT]`: every row of every named table
//! goes at once (and of every table referencing them, with CASCADE).

use sqlparser::ast::{CascadeOption, Statement};

use super::{Hit, object_name, parse};
use crate::sql::finding::Kind;
use crate::sql::token::{qualified_name, tokens};

pub fn classify(text: &[u8], truncated: bool) -> Vec<Hit> {
    if let Some(Statement::Truncate(t)) = parse(text, truncated) {
        let objects = t.table_names.iter().map(|t| object_name(&t.name)).collect();
        let cascade = matches!(t.cascade, Some(CascadeOption::Cascade));
        return vec![Hit::new(Kind::Truncate, objects, cascade)];
    }
    fallback(text)
}

/// Token-level reading of a TRUNCATE statement.
pub(super) fn fallback(text: &[u8]) -> Vec<Hit> {
    let toks = tokens(text);
    if toks.len() < 2 {
        return Vec::new();
    }
    let mut i = 1;
    if toks[i].is("table") {
        i += 1;
    }
    let mut objects = Vec::new();
    loop {
        if toks.get(i).is_some_and(|t| t.is("only")) {
            i += 1;
        }
        let Some((name, next)) = qualified_name(&toks, i) else {
            break;
        };
        if ["restart", "continue", "cascade", "restrict"].contains(&name.as_str()) {
            break;
        }
        objects.push(name);
        i = next;
        if toks.get(i).is_some_and(|t| t.is_punct(b'*')) {
            i += 1;
        }
        if !toks.get(i).is_some_and(|t| t.is_punct(b',')) {
            break;
        }
        i += 1;
    }
    let cascade = toks[i.min(toks.len())..].iter().any(|t| t.is("cascade"));
    vec![Hit::new(Kind::Truncate, objects, cascade)]
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check_hits, check_misses, one};
    use super::*;

    const HITS: &[(&str, Kind, &[&str], bool)] = &[
        ("TRUNCATE users", Kind::Truncate, &["users"], false),
        ("truncate table users", Kind::Truncate, &["users"], false),
        (
            "TRUNCATE TABLE ONLY users",
            Kind::Truncate,
            &["users"],
            false,
        ),
        (
            "TRUNCATE ONLY a, ONLY b",
            Kind::Truncate,
            &["a", "b"],
            false,
        ),
        ("TRUNCATE a, b, c", Kind::Truncate, &["a", "b", "c"], false),
        ("TRUNCATE s.a CASCADE", Kind::Truncate, &["s.a"], true),
        ("TRUNCATE a RESTRICT", Kind::Truncate, &["a"], false),
        ("TRUNCATE a RESTART IDENTITY", Kind::Truncate, &["a"], false),
        (
            "TRUNCATE a RESTART IDENTITY CASCADE",
            Kind::Truncate,
            &["a"],
            true,
        ),
        (
            "TRUNCATE a CONTINUE IDENTITY",
            Kind::Truncate,
            &["a"],
            false,
        ),
        ("TRUNCATE \"Orders\"", Kind::Truncate, &["Orders"], false),
        (
            "TRUNCATE /* x */ TABLE -- y\n logs",
            Kind::Truncate,
            &["logs"],
            false,
        ),
        ("TRUNCATE logs *", Kind::Truncate, &["logs"], false),
        ("TrUnCaTe LOGS", Kind::Truncate, &["logs"], false),
    ];

    #[test]
    fn hits() {
        check_hits(HITS, fallback);
        for (sql, _, objects, cascade) in HITS {
            let fb = fallback(sql.as_bytes());
            assert_eq!(fb[0].objects, *objects, "{sql}");
            assert_eq!(fb[0].cascade, *cascade, "{sql}");
        }
    }

    #[test]
    fn misses() {
        check_misses(&["TRUNCATE"], fallback);
        for sql in [
            "SELECT truncate_log()",
            "SELECT trunc(1.5)",
            "SELECT 'TRUNCATE t'",
            "-- TRUNCATE t\nSELECT 1",
            "GRANT TRUNCATE ON t TO app",
        ] {
            assert_eq!(one(sql), None, "{sql}");
        }
    }
}
