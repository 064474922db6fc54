//! Rules for `ALTER ... DROP`: `ALTER TABLE [IF EXISTS] [ONLY] t DROP
//! [COLUMN] c` is drop_column (object `t.c`); every other drop inside an
//! ALTER (a constraint, a default, NOT NULL, an identity, an expression; or
//! `ALTER DOMAIN|TYPE|... DROP ...`) is drop_other (object: the altered
//! object). ALTER statements without a DROP are not destructive, with one
//! exception:
//!
//! `ALTER TABLE t ALTER [COLUMN] c [SET DATA] TYPE type USING expr` whose
//! `expr` does not read `c` (`USING 0`, `USING NULL`, `USING other_col`)
//! replaces every value of `c` with something computed without it: the old
//! values are gone exactly as if the column had been dropped and added
//! again, so it is drop_column (object `t.c`). A USING that reads the
//! column (`USING c::int`, `USING lower(c)`) is a conversion of the old
//! values, not a finding, even when the conversion narrows them
//! (`USING round(c)`, `USING c::date` from a timestamp): telling a lossy
//! conversion from an exact one needs the column's type and the function's
//! meaning, which a reading of the text does not have, and an impossible
//! cast fails the whole statement rather than losing rows. A TYPE change
//! without USING uses the assignment cast, which likewise fails or
//! converts, and is not a finding either.

use sqlparser::ast::{AlterTableOperation, DropBehavior, Statement};

use super::drop::object_type;
use super::{Hit, ident, object_name, parse};
use crate::sql::finding::Kind;
use crate::sql::token::{Token, qualified_name, tokens};

pub fn classify(text: &[u8], truncated: bool) -> Vec<Hit> {
    let toks = tokens(text);
    if !toks.iter().any(|t| t.is("drop") || t.is("using")) {
        return Vec::new();
    }
    if let Some(Statement::AlterTable(alter)) = parse(text, truncated)
        && alter.table_type.is_none()
        && toks.get(1).is_some_and(|t| t.is("table"))
    {
        let table = object_name(&alter.name);
        let mut hits = Vec::new();
        let mut other = Hit::new(Kind::DropOther, vec![table.clone()], false);
        let mut has_other = false;
        for op in &alter.operations {
            match op {
                AlterTableOperation::DropColumn {
                    column_names,
                    drop_behavior,
                    ..
                } => hits.push(Hit::new(
                    Kind::DropColumn,
                    column_names
                        .iter()
                        .map(|c| format!("{table}.{}", ident(c)))
                        .collect(),
                    matches!(drop_behavior, Some(DropBehavior::Cascade)),
                )),
                op => {
                    // Every other operation that drops something says so
                    // in its SQL form (DROP CONSTRAINT, ALTER COLUMN c DROP
                    // DEFAULT, ...): matching the rendered text covers the
                    // many operation variants without listing them.
                    let rendered = op.to_string().to_ascii_uppercase();
                    if rendered.starts_with("DROP") || rendered.contains(" DROP ") {
                        has_other = true;
                        other.cascade |= rendered.contains(" CASCADE");
                    }
                }
            }
        }
        if has_other {
            hits.push(other);
        }
        hits.extend(discarding_retypes(&toks, &table));
        return hits;
    }
    fallback(text)
}

/// drop_column hits for `ALTER [COLUMN] c TYPE ... USING expr` actions whose
/// expression does not read `c`. `toks` is the whole statement.
fn discarding_retypes(toks: &[Token<'_>], table: &str) -> Vec<Hit> {
    let mut hits = Vec::new();
    for action in actions(toks) {
        let Some(using) = action.iter().position(|t| t.is("using")) else {
            continue;
        };
        let Some(type_at) = action[..using].iter().rposition(|t| t.is("type")) else {
            continue;
        };
        let Some(alter) = action[..type_at].iter().rposition(|t| t.is("alter")) else {
            continue;
        };
        let mut c = alter + 1;
        if action.get(c).is_some_and(|t| t.is("column")) {
            c += 1;
        }
        let Some(column) = action.get(c).filter(|t| t.is_name()).map(Token::ident) else {
            continue;
        };
        let reads_column = action[using + 1..]
            .iter()
            .any(|t| t.is_name() && t.ident() == column);
        if !reads_column {
            hits.push(Hit::new(
                Kind::DropColumn,
                vec![format!("{table}.{column}")],
                false,
            ));
        }
    }
    hits
}

/// Token-level reading of any ALTER statement holding a DROP.
pub(super) fn fallback(text: &[u8]) -> Vec<Hit> {
    let toks = tokens(text);
    if !toks.iter().any(|t| t.is("drop") || t.is("using")) {
        return Vec::new();
    }
    let is_table = toks.get(1).is_some_and(|t| t.is("table"))
        || (toks.get(1).is_some_and(|t| t.is("foreign"))
            && toks.get(2).is_some_and(|t| t.is("table")));
    let mut i = if is_table {
        if toks[1].is("foreign") { 3 } else { 2 }
    } else {
        1 + object_type(&toks, 1).0
    };
    while toks
        .get(i)
        .is_some_and(|t| t.is("if") || t.is("exists") || t.is("only"))
    {
        i += 1;
    }
    let (target, mut i) = qualified_name(&toks, i).unwrap_or_default();
    if toks.get(i).is_some_and(|t| t.is_punct(b'*')) {
        i += 1;
    }
    let mut hits = Vec::new();
    let mut other = Hit::new(Kind::DropOther, vec![target.clone()], false);
    let mut has_other = false;
    for action in actions(&toks[i.min(toks.len())..]) {
        let Some(first) = action.first() else {
            continue;
        };
        if is_table && first.is("drop") {
            let mut j = 1;
            if action.get(j).is_some_and(|t| t.is("constraint")) {
                has_other = true;
                other.cascade |= action.iter().any(|t| t.is("cascade"));
                continue;
            }
            if action.get(j).is_some_and(|t| t.is("column")) {
                j += 1;
            }
            while action.get(j).is_some_and(|t| t.is("if") || t.is("exists")) {
                j += 1;
            }
            let column = action
                .get(j)
                .filter(|t| t.is_name())
                .map(|t| format!("{target}.{}", t.ident()));
            hits.push(Hit::new(
                Kind::DropColumn,
                column.into_iter().collect(),
                action.iter().any(|t| t.is("cascade")),
            ));
        } else if action.iter().any(|t| t.is("drop")) {
            has_other = true;
            other.cascade |= action.iter().any(|t| t.is("cascade"));
        }
    }
    if has_other {
        hits.push(other);
    }
    if is_table {
        hits.extend(discarding_retypes(&toks, &target));
    }
    hits
}

/// Splits ALTER actions at top-level commas.
fn actions<'t, 'a>(toks: &'t [Token<'a>]) -> Vec<&'t [Token<'a>]> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (k, t) in toks.iter().enumerate() {
        if t.is_punct(b'(') {
            depth += 1;
        } else if t.is_punct(b')') {
            depth = depth.saturating_sub(1);
        } else if depth == 0 && t.is_punct(b',') {
            out.push(&toks[start..k]);
            start = k + 1;
        }
    }
    out.push(&toks[start..]);
    out
}

#[cfg(test)]
mod retype_tests {
    use super::super::testing::{check_hits, check_misses};
    use super::*;

    #[test]
    fn a_new_type_computed_without_the_column_discards_it() {
        check_hits(
            &[
                (
                    "ALTER TABLE t ALTER COLUMN c TYPE int USING 0",
                    Kind::DropColumn,
                    &["t.c"],
                    false,
                ),
                (
                    "alter table s.t alter c set data type text using null",
                    Kind::DropColumn,
                    &["s.t.c"],
                    false,
                ),
                (
                    r#"ALTER TABLE t ALTER COLUMN "C" TYPE int USING c::int"#,
                    Kind::DropColumn,
                    &["t.C"],
                    false,
                ),
                (
                    "ALTER TABLE t ALTER COLUMN c TYPE int USING other + 1",
                    Kind::DropColumn,
                    &["t.c"],
                    false,
                ),
            ],
            fallback,
        );
    }

    #[test]
    fn conversions_of_the_old_values_are_not() {
        check_misses(
            &[
                "ALTER TABLE t ALTER COLUMN c TYPE int USING c::int",
                "ALTER TABLE t ALTER COLUMN c TYPE int USING round(c)",
                "ALTER TABLE t ALTER c TYPE date USING t.c::date",
                r#"ALTER TABLE t ALTER COLUMN "C" TYPE int USING "C"::int"#,
                "ALTER TABLE t ALTER COLUMN c TYPE bigint",
                "ALTER TABLE t ALTER COLUMN c SET DEFAULT 0",
            ],
            fallback,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check_hits, check_misses};
    use super::*;
    use crate::sql::classify::{Context, classify as classify_any};

    const HITS: &[(&str, Kind, &[&str], bool)] = &[
        (
            "ALTER TABLE users DROP COLUMN email",
            Kind::DropColumn,
            &["users.email"],
            false,
        ),
        (
            "ALTER TABLE users DROP email",
            Kind::DropColumn,
            &["users.email"],
            false,
        ),
        (
            "alter table users drop column email cascade",
            Kind::DropColumn,
            &["users.email"],
            true,
        ),
        (
            "ALTER TABLE IF EXISTS users DROP COLUMN IF EXISTS email",
            Kind::DropColumn,
            &["users.email"],
            false,
        ),
        (
            "ALTER TABLE ONLY public.users DROP COLUMN email",
            Kind::DropColumn,
            &["public.users.email"],
            false,
        ),
        (
            r#"ALTER TABLE "Users" DROP COLUMN "Email""#,
            Kind::DropColumn,
            &["Users.Email"],
            false,
        ),
        (
            "ALTER /* x */ TABLE users -- y\n DROP COLUMN email",
            Kind::DropColumn,
            &["users.email"],
            false,
        ),
        (
            "ALTER TABLE users DROP CONSTRAINT users_pkey",
            Kind::DropOther,
            &["users"],
            false,
        ),
        (
            "ALTER TABLE users DROP CONSTRAINT IF EXISTS fk CASCADE",
            Kind::DropOther,
            &["users"],
            true,
        ),
        (
            "ALTER TABLE users ALTER COLUMN email DROP DEFAULT",
            Kind::DropOther,
            &["users"],
            false,
        ),
        (
            "ALTER TABLE users ALTER email DROP NOT NULL",
            Kind::DropOther,
            &["users"],
            false,
        ),
        (
            "ALTER TABLE users ALTER COLUMN id DROP IDENTITY IF EXISTS",
            Kind::DropOther,
            &["users"],
            false,
        ),
        (
            "ALTER TABLE users ALTER COLUMN total DROP EXPRESSION",
            Kind::DropOther,
            &["users"],
            false,
        ),
        (
            "ALTER DOMAIN d DROP CONSTRAINT positive",
            Kind::DropOther,
            &["d"],
            false,
        ),
        (
            "ALTER DOMAIN d DROP DEFAULT",
            Kind::DropOther,
            &["d"],
            false,
        ),
        (
            "ALTER TYPE addr DROP ATTRIBUTE zip CASCADE",
            Kind::DropOther,
            &["addr"],
            true,
        ),
        (
            "ALTER FOREIGN TABLE ft DROP COLUMN c",
            Kind::DropColumn,
            &["ft.c"],
            false,
        ),
        (
            "ALTER TABLE t ADD COLUMN x int, DROP COLUMN y",
            Kind::DropColumn,
            &["t.y"],
            false,
        ),
    ];

    #[test]
    fn hits() {
        check_hits(HITS, fallback);
        for (sql, kind, objects, cascade) in HITS {
            let fb = fallback(sql.as_bytes());
            assert!(
                fb.iter()
                    .any(|h| h.kind == *kind && h.objects == *objects && h.cascade == *cascade),
                "{sql}: {fb:?}"
            );
        }
    }

    #[test]
    fn several_drops_in_one_alter() {
        let hits = classify_any(
            b"ALTER TABLE t DROP COLUMN a, DROP COLUMN b CASCADE, DROP CONSTRAINT c",
            Context::default(),
        );
        let kinds: Vec<Kind> = hits.iter().map(|h| h.kind).collect();
        assert_eq!(
            kinds,
            vec![Kind::DropColumn, Kind::DropColumn, Kind::DropOther]
        );
        assert_eq!(hits[1].objects, vec!["t.b"]);
        assert!(hits[1].cascade);
    }

    #[test]
    fn misses() {
        check_misses(
            &[
                "ALTER TABLE users ADD COLUMN email text",
                "ALTER TABLE users RENAME COLUMN email TO mail",
                "ALTER TABLE users ALTER COLUMN email SET DEFAULT 'drop'",
                "ALTER TABLE users ALTER COLUMN email TYPE varchar(200)",
                "ALTER TABLE users ADD CONSTRAINT c CHECK (x > 0)",
                "ALTER TABLE users SET SCHEMA archive",
                "ALTER TABLE \"drop\" ADD COLUMN x int",
                "ALTER INDEX idx RENAME TO idx2",
                "ALTER ROLE app SET search_path = 'drop'",
                "ALTER TABLE users OWNER TO app",
            ],
            fallback,
        );
    }
}
