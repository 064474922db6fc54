//! Rules for SQL that is only known at run time: DO blocks and queries
//! ended by `\gexec`.
//!
//! In a PL/pgSQL DO body, plain statements (`BEGIN DROP TABLE t; END`) are
//! classified like any other statement, so they get their precise kind.
//! Strings are where dynamic SQL lives (`EXECUTE 'DROP TABLE ' || t`,
//! `format('TRUNCATE %I', t)`): a string that is a whole destructive
//! statement gets its precise kind; a fragment that starts like one makes
//! the statement `dynamic`, with the kind it looks like recorded as
//! `implied`. Messages (`RAISE`, `ASSERT`) are not SQL. A DO block in
//! another language is judged by its strings and its whole body.

use super::{Hit, classify_nested};
use crate::sql::finding::Kind;
use crate::sql::token::{Tok, Token, tokens};

/// `DO [LANGUAGE lang] body [LANGUAGE lang]`.
pub fn do_block(text: &[u8], depth: usize) -> Vec<Hit> {
    let toks = tokens(text);
    let mut body = None;
    let mut language = None;
    for (k, t) in toks.iter().enumerate() {
        if t.is("language") {
            language = toks.get(k + 1).map(|l| match l.kind {
                Tok::Str => String::from_utf8_lossy(&l.string_value()).to_ascii_lowercase(),
                _ => l.ident(),
            });
        } else if t.kind == Tok::Str && body.is_none() && k > 0 && !toks[k - 1].is("language") {
            body = Some(t.string_value());
        }
    }
    let Some(body) = body else {
        return Vec::new();
    };
    match language.as_deref() {
        None | Some("plpgsql") | Some("sql") => plpgsql(&body, depth),
        Some(_) => {
            // Another language: its own strings are opaque to this
            // tokenizer, so judge the whole body as generated SQL.
            let mut hits = generated(&body, depth);
            if hits.is_empty()
                && let Some(kind) = looks_destructive(&body)
            {
                hits.push(dynamic(kind));
            }
            hits
        }
    }
}

/// Hits in a PL/pgSQL body.
fn plpgsql(body: &[u8], depth: usize) -> Vec<Hit> {
    let toks = tokens(body);
    let mut hits = Vec::new();
    for piece in toks.split(|t| t.is_punct(b';')) {
        let executes = piece.iter().any(|t| t.is("execute"));
        // Messages and inserted data are not executed.
        let inert = ["raise", "assert", "insert"];
        if !executes && statement_start(piece, &inert).is_some() {
            continue;
        }
        if let Some(start) = static_statement(piece) {
            let from = piece[start].offset;
            let to = piece.last().map_or(body.len(), |t| t.offset + t.text.len());
            hits.extend(classify_nested(&body[from..to], false, depth + 1));
            if !executes {
                continue;
            }
        }
        // A string outside EXECUTE may still be run later (`q := '...';
        // EXECUTE q;`), but its exact target is not certain: dynamic.
        hits.extend(strings(piece, depth, executes));
    }
    hits
}

/// The index of a plain destructive statement inside a PL/pgSQL
/// statement: at its start, or after a block or control keyword.
fn static_statement(piece: &[Token<'_>]) -> Option<usize> {
    statement_start(
        piece,
        &[
            "drop", "truncate", "delete", "update", "alter", "with", "merge", "copy", "create",
        ],
    )
}

/// The index of the first of `heads` that starts a PL/pgSQL statement.
fn statement_start(piece: &[Token<'_>], heads: &[&str]) -> Option<usize> {
    const BEFORE: [&str; 6] = ["begin", "then", "else", "loop", "declare", "exception"];
    piece.iter().enumerate().position(|(k, t)| {
        heads.iter().any(|h| t.is(h))
            && (k == 0 || BEFORE.iter().any(|b| piece[k - 1].is(b)) || piece[k - 1].is_punct(b'>'))
    })
}

/// Hits for the SQL a `\gexec` query generates: judged by its strings.
pub fn generated(text: &[u8], depth: usize) -> Vec<Hit> {
    let toks = tokens(text);
    strings(&toks, depth, true)
}

/// Judges the strings among `toks`: a whole destructive statement gets its
/// precise kind (when `precise_allowed`); a destructive fragment makes one
/// dynamic hit.
fn strings(toks: &[Token<'_>], depth: usize, precise_allowed: bool) -> Vec<Hit> {
    let mut precise = Vec::new();
    let mut implied: Option<Kind> = None;
    for (k, t) in toks.iter().enumerate() {
        if t.kind != Tok::Str {
            continue;
        }
        let value = t.string_value();
        // Concatenated or formatted, the string is only part of the
        // statement: its names may be incomplete.
        let joined = toks.get(k + 1).is_some_and(|n| n.is_punct(b'|'))
            || (k > 0 && toks[k - 1].is_punct(b'|'))
            || value.contains(&b'%');
        let hits = classify_nested(&value, false, depth + 1);
        if hits.is_empty() {
            if let Some(kind) = fragment(&value) {
                implied = worse(implied, kind);
            }
            continue;
        }
        for hit in hits {
            if joined || !precise_allowed || hit.objects.is_empty() || hit.kind == Kind::Dynamic {
                implied = worse(implied, hit.implied.unwrap_or(hit.kind));
            } else {
                precise.push(hit);
            }
        }
    }
    if let Some(kind) = implied {
        precise.push(dynamic(kind));
    }
    precise
}

/// A string that is just a destructive keyword followed by a space, as in
/// `'DELETE ' || ...`: the start of a statement built at run time.
fn fragment(value: &[u8]) -> Option<Kind> {
    let toks = tokens(value);
    let [only] = toks.as_slice() else {
        return None;
    };
    let trailing_space = value.last().is_some_and(u8::is_ascii_whitespace);
    if !trailing_space {
        return None;
    }
    head_kind(only)
}

fn head_kind(t: &Token<'_>) -> Option<Kind> {
    if t.is("drop") {
        Some(Kind::DropOther)
    } else if t.is("truncate") {
        Some(Kind::Truncate)
    } else if t.is("delete") {
        Some(Kind::DeleteAll)
    } else if t.is("update") {
        Some(Kind::UpdateAll)
    } else {
        None
    }
}

/// A loose search for destructive SQL in text of unknown shape (a DO body
/// in another language): a destructive head word followed by the word
/// that makes it a statement.
pub(super) fn looks_destructive(text: &[u8]) -> Option<Kind> {
    let lower = text.to_ascii_lowercase();
    let words: Vec<&[u8]> = lower
        .split(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
        .filter(|w| !w.is_empty())
        .collect();
    let mut found = None;
    for pair in words.windows(2) {
        let kind = match (pair[0], pair[1]) {
            (b"drop", b"database") => Some(Kind::DropDatabase),
            (b"drop", b"schema") => Some(Kind::DropSchema),
            (b"drop", b"table") => Some(Kind::DropTable),
            (b"drop", b"owned") => Some(Kind::DropOwned),
            (b"drop", b"column") => Some(Kind::DropColumn),
            (b"drop", _) => Some(Kind::DropOther),
            (b"truncate", _) => Some(Kind::Truncate),
            (b"delete", b"from") => Some(Kind::DeleteAll),
            (b"update", _) if words.contains(&&b"set"[..]) => Some(Kind::UpdateAll),
            _ => None,
        };
        if let Some(kind) = kind {
            found = worse(found, kind);
        }
    }
    found
}

fn worse(current: Option<Kind>, kind: Kind) -> Option<Kind> {
    match current {
        Some(c) if c.severity() >= kind.severity() => Some(c),
        _ => Some(kind),
    }
}

fn dynamic(implied: Kind) -> Hit {
    Hit::unknown(Kind::Dynamic, Some(implied))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::classify::{Context, classify};

    fn hits(sql: &str) -> Vec<(Kind, Option<Kind>, Vec<String>)> {
        classify(sql.as_bytes(), Context::default())
            .into_iter()
            .map(|h| (h.kind, h.implied, h.objects))
            .collect()
    }

    fn gexec(sql: &str) -> Vec<(Kind, Option<Kind>)> {
        classify(
            sql.as_bytes(),
            Context {
                gexec: true,
                truncated: false,
            },
        )
        .into_iter()
        .map(|h| (h.kind, h.implied))
        .collect()
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn static_statements_in_do_get_their_precise_kind() {
        let cases: &[(&str, Kind, &[&str])] = &[
            (
                "DO $$ BEGIN DROP TABLE users; END $$",
                Kind::DropTable,
                &["users"],
            ),
            ("DO $$BEGIN TRUNCATE logs; END$$", Kind::Truncate, &["logs"]),
            (
                "DO $$ BEGIN DELETE FROM users; END $$",
                Kind::DeleteAll,
                &["users"],
            ),
            (
                "DO $$ BEGIN UPDATE users SET a = 1; END $$",
                Kind::UpdateAll,
                &["users"],
            ),
            (
                "DO $$ BEGIN ALTER TABLE t DROP COLUMN c; END $$",
                Kind::DropColumn,
                &["t.c"],
            ),
            (
                "DO 'BEGIN DROP SCHEMA app CASCADE; END'",
                Kind::DropSchema,
                &["app"],
            ),
            (
                "DO LANGUAGE plpgsql $$ BEGIN DROP TABLE a; END $$",
                Kind::DropTable,
                &["a"],
            ),
            (
                "DO $$ BEGIN IF true THEN DROP TABLE a; END IF; END $$",
                Kind::DropTable,
                &["a"],
            ),
            (
                "DO $$ BEGIN IF x THEN NULL; ELSE TRUNCATE a; END IF; END $$",
                Kind::Truncate,
                &["a"],
            ),
            (
                "DO $$ DECLARE n int; BEGIN DELETE FROM a; END $$",
                Kind::DeleteAll,
                &["a"],
            ),
            (
                "DO $$ <<blk>> BEGIN DROP TABLE a; END $$",
                Kind::DropTable,
                &["a"],
            ),
            (
                "DO $$ BEGIN MERGE INTO a USING b ON a.id = b.id WHEN MATCHED THEN DELETE; END $$",
                Kind::DeleteAll,
                &["a"],
            ),
            (
                "DO $$ BEGIN CREATE TEMP TABLE k AS WITH d AS (DELETE FROM a RETURNING *) SELECT * FROM d; END $$",
                Kind::DeleteAll,
                &["a"],
            ),
            (
                "DO $body$ BEGIN EXECUTE 'DROP TABLE users'; END $body$",
                Kind::DropTable,
                &["users"],
            ),
            (
                "do $$ begin execute 'truncate t'; end $$",
                Kind::Truncate,
                &["t"],
            ),
        ];
        for (sql, kind, objects) in cases {
            assert_eq!(hits(sql), vec![(*kind, None, names(objects))], "{sql}");
        }
    }

    #[test]
    fn built_statements_are_dynamic() {
        let cases: &[(&str, Kind)] = &[
            (
                "DO $$ BEGIN EXECUTE 'DROP TABLE ' || quote_ident(t); END $$",
                Kind::DropTable,
            ),
            (
                "DO $$ BEGIN EXECUTE format('DROP TABLE %I', t); END $$",
                Kind::DropTable,
            ),
            (
                "DO $$ BEGIN EXECUTE format('TRUNCATE %I CASCADE', t); END $$",
                Kind::Truncate,
            ),
            (
                "DO $$ BEGIN EXECUTE 'DELETE FROM ' || t; END $$",
                Kind::DeleteAll,
            ),
            (
                "DO $$ BEGIN EXECUTE 'UPDATE ' || t || ' SET a = 1'; END $$",
                Kind::UpdateAll,
            ),
            (
                "DO $$ DECLARE r record; BEGIN FOR r IN SELECT tablename FROM pg_tables LOOP \
                 EXECUTE 'DROP TABLE IF EXISTS ' || quote_ident(r.tablename) || ' CASCADE'; \
                 END LOOP; END $$",
                Kind::DropTable,
            ),
            (
                "DO $$ DECLARE q text := 'DROP SCHEMA ' || s; BEGIN EXECUTE q; END $$",
                Kind::DropSchema,
            ),
            (
                "DO $$ BEGIN EXECUTE 'DROP ' || kind || ' ' || name; END $$",
                Kind::DropOther,
            ),
            (
                "DO LANGUAGE plpython3u $$ plpy.execute(\"DROP TABLE users\") $$",
                Kind::DropTable,
            ),
        ];
        for (sql, implied) in cases {
            assert_eq!(
                hits(sql),
                vec![(Kind::Dynamic, Some(*implied), vec![])],
                "{sql}"
            );
        }
    }

    #[test]
    fn harmless_do_blocks() {
        for sql in [
            "DO $$ BEGIN RAISE NOTICE 'DROP TABLE users is not allowed'; END $$",
            "DO $$ BEGIN INSERT INTO log VALUES ('delete from x'); END $$",
            "DO $$ BEGIN DELETE FROM users WHERE id = 1; END $$",
            "DO $$ BEGIN UPDATE t SET a = 'DROP TABLE x' WHERE id = 1; END $$",
            "DO $$ BEGIN PERFORM pg_sleep(1); END $$",
            "DO $$ BEGIN IF tg_op = 'DELETE' THEN NULL; END IF; END $$",
            "DO $$ BEGIN EXECUTE 'SELECT 1'; END $$",
            "DO $$ BEGIN EXECUTE format('DELETE FROM %I WHERE id = $1', t) USING 3; END $$",
            "DO $$ BEGIN CREATE TABLE drop_me (id int); END $$",
            "DO",
            "DO LANGUAGE plpython3u $$ print('hello') $$",
        ] {
            assert_eq!(hits(sql), vec![], "{sql}");
        }
    }

    #[test]
    fn gexec_queries() {
        assert_eq!(
            gexec("SELECT format('DROP TABLE %I.%I', schemaname, tablename) FROM pg_tables"),
            vec![(Kind::Dynamic, Some(Kind::DropTable))]
        );
        assert_eq!(
            gexec("SELECT 'TRUNCATE ' || tablename FROM pg_tables"),
            vec![(Kind::Dynamic, Some(Kind::Truncate))]
        );
        assert_eq!(
            gexec("SELECT 'DROP TABLE t'"),
            vec![(Kind::DropTable, None)]
        );
        assert_eq!(
            gexec("SELECT 'UPDATE ' || t || ' SET x = 0' FROM tabs"),
            vec![(Kind::Dynamic, Some(Kind::UpdateAll))]
        );
        assert_eq!(gexec("SELECT 'SELECT 1'"), vec![]);
        assert_eq!(gexec("SELECT format('VACUUM %I', t) FROM tabs"), vec![]);
        assert_eq!(gexec("SELECT cmd FROM commands"), vec![]);
    }

    #[test]
    fn nested_do_in_execute() {
        let sql = "DO $a$ BEGIN EXECUTE 'DO $b$ BEGIN DROP TABLE t; END $b$'; END $a$";
        assert_eq!(hits(sql), vec![(Kind::DropTable, None, names(&["t"]))]);
    }

    #[test]
    fn runaway_nesting_is_dynamic_not_safe() {
        let mut sql = "DROP TABLE t".to_string();
        for level in 0..8 {
            sql = format!(
                "DO $l{level}$ BEGIN EXECUTE '{}'; END $l{level}$",
                sql.replace('\'', "''")
            );
        }
        let got = hits(&sql);
        assert!(!got.is_empty());
    }
}
