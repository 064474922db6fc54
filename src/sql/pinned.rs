//! Which columns a DELETE or UPDATE pins to one value. A statement whose
//! WHERE is a conjunction holding `column = constant` (or `$n`) for every
//! column of a unique key changes at most one row, so it can never be bulk
//! and the guard need not ask the planner about it.
//!
//! Only the plain forms count: the WHERE's top-level AND terms (brackets
//! allowed), each `col = literal`, `col = $n`, or the same the other way
//! round, the column bare or qualified by the target's name or alias.
//! OR, IN, ranges, column-to-column comparisons, functions of a column and
//! casts are not pins. A statement with `DELETE … USING` or `UPDATE …
//! FROM` is left to the planner: there an unqualified name may belong to
//! the other table.

use sqlparser::ast::{BinaryOperator, Expr, FromTable, Statement, TableFactor, UnaryOperator};

use super::classify::{ident, parse};

/// The catalog query giving the unique keys of `table` (as written, and
/// resolved by the server on the session's search_path) as a JSON list of
/// column lists, or no row when the table does not qualify. Only keys that
/// hold for every row at every moment count: unique, valid, checked at once
/// (not deferrable), on plain columns, without a predicate; and only plain
/// tables without inheritance children (a DELETE or UPDATE without ONLY
/// reaches the children, which the parent's index does not cover) and
/// partitioned tables (whose unique keys hold across all partitions).
pub fn unique_keys_query(table: &str) -> Option<String> {
    if table.contains(['\\', '\0']) {
        return None;
    }
    let name = table.replace('\'', "''");
    Some(format!(
        "SELECT coalesce(json_agg(k.cols) FILTER (WHERE k.cols IS NOT NULL), '[]')::text \
         FROM pg_catalog.pg_class c \
         LEFT JOIN LATERAL (\
           SELECT (SELECT json_agg(a.attname::text ORDER BY a.attnum) \
                   FROM pg_catalog.pg_attribute a \
                   WHERE a.attrelid = i.indrelid \
                     AND a.attnum = ANY ((i.indkey::int2[])[0:i.indnkeyatts - 1])) AS cols \
           FROM pg_catalog.pg_index i \
           WHERE i.indrelid = c.oid AND i.indisunique AND i.indisvalid AND i.indimmediate \
             AND i.indpred IS NULL AND i.indexprs IS NULL) k ON true \
         WHERE c.oid = pg_catalog.to_regclass('{name}') \
           AND (c.relkind = 'p' OR (c.relkind = 'r' AND NOT c.relhassubclass)) \
         GROUP BY c.oid"
    ))
}

/// The columns `text` (one DELETE or UPDATE) pins to a constant, folded as
/// PostgreSQL folds them; `None` when it pins none or is of another form.
pub fn pinned_columns(text: &[u8]) -> Option<Vec<String>> {
    let statement = parse(text, false)?;
    let (relation, selection) = match &statement {
        Statement::Delete(delete) => {
            if delete.using.is_some() || !delete.tables.is_empty() {
                return None;
            }
            let from = match &delete.from {
                FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t) => t,
            };
            let [table] = from.as_slice() else {
                return None;
            };
            if !table.joins.is_empty() {
                return None;
            }
            (&table.relation, delete.selection.as_ref()?)
        }
        Statement::Update(update) => {
            if update.from.is_some() || !update.table.joins.is_empty() {
                return None;
            }
            (&update.table.relation, update.selection.as_ref()?)
        }
        _ => return None,
    };
    let TableFactor::Table { name, alias, .. } = relation else {
        return None;
    };
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|p| p.as_ident().map(ident))
        .collect::<Option<_>>()?;
    // How a column may be qualified: by the alias when there is one (the
    // table's own name is then hidden), else by the name or its tail.
    // (`ONLY t` reads as a table named ONLY aliased t: the alias is right.)
    let only = matches!(parts.as_slice(), [p] if p == "only");
    let qualifier_ok = |q: &[String]| match alias {
        Some(a) if !only || q.len() == 1 => q.len() == 1 && q[0] == ident(&a.name),
        _ => !q.is_empty() && parts.ends_with(q),
    };
    let mut pinned = Vec::new();
    collect(selection, &qualifier_ok, &mut pinned);
    pinned.sort();
    pinned.dedup();
    (!pinned.is_empty()).then_some(pinned)
}

/// Adds the columns pinned by `condition`'s top-level AND terms.
fn collect(condition: &Expr, qualifier_ok: &dyn Fn(&[String]) -> bool, out: &mut Vec<String>) {
    match condition {
        Expr::Nested(inner) => collect(inner, qualifier_ok, out),
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            collect(left, qualifier_ok, out);
            collect(right, qualifier_ok, out);
        }
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Eq,
            right,
        } => {
            let pin = match (column(left, qualifier_ok), column(right, qualifier_ok)) {
                (Some(c), None) if is_constant(right) => Some(c),
                (None, Some(c)) if is_constant(left) => Some(c),
                _ => None,
            };
            out.extend(pin);
        }
        _ => {}
    }
}

/// The target's column `e` names, if it is a (qualified) column name.
fn column(e: &Expr, qualifier_ok: &dyn Fn(&[String]) -> bool) -> Option<String> {
    match e {
        Expr::Nested(inner) => column(inner, qualifier_ok),
        // `current_user` and the like read as names but are not columns.
        Expr::Identifier(i) if i.quote_style.is_none() && is_special_value(&i.value) => None,
        Expr::Identifier(i) => Some(ident(i)),
        Expr::CompoundIdentifier(parts) => {
            let (last, qualifier) = parts.split_last()?;
            let qualifier: Vec<String> = qualifier.iter().map(ident).collect();
            qualifier_ok(&qualifier).then(|| ident(last))
        }
        _ => None,
    }
}

/// Keywords PostgreSQL reads as values, never as column names, unquoted.
fn is_special_value(word: &str) -> bool {
    [
        "current_user",
        "session_user",
        "user",
        "current_role",
        "current_catalog",
        "current_schema",
        "current_date",
        "current_time",
        "current_timestamp",
        "localtime",
        "localtimestamp",
    ]
    .iter()
    .any(|k| word.eq_ignore_ascii_case(k))
}

/// A literal or a `$n` parameter, possibly negated.
fn is_constant(e: &Expr) -> bool {
    match e {
        Expr::Nested(inner) => is_constant(inner),
        Expr::Value(_) => true,
        Expr::UnaryOp {
            op: UnaryOperator::Minus | UnaryOperator::Plus,
            expr,
        } => matches!(**expr, Expr::Value(_)),
        _ => false,
    }
}

/// True when `pinned` covers every column of one of `keys`.
pub fn covers_a_key(pinned: &[String], keys: &[Vec<String>]) -> bool {
    keys.iter()
        .any(|key| !key.is_empty() && key.iter().all(|c| pinned.contains(c)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pins(sql: &str) -> Option<Vec<String>> {
        pinned_columns(sql.as_bytes())
    }

    fn cols(names: &[&str]) -> Option<Vec<String>> {
        Some(names.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn equalities_with_constants_in_a_conjunction_pin_columns() {
        for (sql, expected) in [
            ("DELETE FROM t WHERE id = 5", &["id"][..]),
            ("delete from t where id = $1;", &["id"]),
            ("DELETE FROM t WHERE 5 = id", &["id"]),
            ("DELETE FROM t WHERE id = -5", &["id"]),
            ("DELETE FROM t WHERE id = 5 AND note IS NULL", &["id"]),
            (
                "DELETE FROM t WHERE (a = 1) AND (b = 'x' AND c > 2)",
                &["a", "b"],
            ),
            ("UPDATE s.t SET n = n + 1 WHERE t.\"Id\" = 5", &["Id"]),
            ("UPDATE t AS x SET n = 1 WHERE x.id = 5", &["id"]),
            ("DELETE FROM ONLY t WHERE t.id = 5", &["id"]),
            ("DELETE FROM s.t WHERE s.t.id = 5 RETURNING *", &["id"]),
            ("DELETE FROM t WHERE \"user\" = 'app'", &["user"]),
        ] {
            assert_eq!(pins(sql), cols(expected), "{sql}");
        }
    }

    #[test]
    fn near_misses_pin_nothing() {
        for sql in [
            "DELETE FROM t WHERE id = 5 OR id = 6",
            "DELETE FROM t WHERE id IN (5, 6)",
            "DELETE FROM t WHERE id > 5",
            "DELETE FROM t WHERE id = other_col",
            "DELETE FROM t WHERE lower(email) = 'x'",
            "DELETE FROM t WHERE id = 5::bigint",
            "DELETE FROM t WHERE NOT (id = 5)",
            "DELETE FROM t USING u WHERE id = 5",
            "UPDATE t SET n = 1 FROM u WHERE id = 5",
            "UPDATE t AS x SET n = 1 WHERE t.id = 5",
            "DELETE FROM t WHERE u.id = 5",
            "DELETE FROM t WHERE current_user = 'app'",
            "DELETE FROM t",
            "SELECT 1 WHERE 1 = 1",
        ] {
            assert_eq!(pins(sql), None, "{sql}");
        }
    }

    #[test]
    fn a_key_is_covered_only_by_all_its_columns() {
        let keys = vec![vec!["id".to_string()], vec!["a".into(), "b".into()]];
        assert!(covers_a_key(&["id".into()], &keys));
        assert!(covers_a_key(&["a".into(), "b".into(), "c".into()], &keys));
        assert!(!covers_a_key(&["a".into()], &keys));
        assert!(!covers_a_key(&["b".into(), "c".into()], &keys));
        assert!(!covers_a_key(&["id".into()], &[]));
    }
}
