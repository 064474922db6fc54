//! Rules for DELETE and UPDATE that reach every row: delete_all and
//! update_all fire when there is no WHERE, or a WHERE that references no
//! column (`WHERE true`, `WHERE 1 = 1`, `WHERE 'a' = 'a'`, `WHERE
//! random() < 2`), whether the statement stands alone, sits in a
//! data-modifying CTE (`WITH d AS (DELETE ...)`), carries a WITH of its own,
//! or runs under `EXPLAIN ANALYZE` (plain EXPLAIN does not run it).
//!
//! "References a column" is deliberately simple: any identifier in the
//! condition counts, even one inside a subquery. A condition built only
//! from constants and functions cannot pick rows, so it deletes all or
//! nothing; when its value is plainly false or null (`WHERE false`,
//! `WHERE 1 = 0`, `WHERE NOT true`, `WHERE null`) it is nothing, and no
//! finding.
//!
//! The same rows are reached other ways, judged here too:
//!
//! - `MERGE INTO t ... WHEN MATCHED THEN DELETE` (or `WHEN NOT MATCHED BY
//!   SOURCE THEN DELETE`) is delete_all on `t`, whatever its conditions:
//!   which rows go is decided by the source's contents (a source holding
//!   every key, or `ON true`, takes them all), which no reading of the text
//!   bounds and which the bulk estimate does not cover. Deleting through
//!   MERGE is rare, so asking every time costs little.
//! - `MERGE ... THEN UPDATE` is update_all only when nothing restricts the
//!   rows it reaches: a `NOT MATCHED BY SOURCE` clause (every target row
//!   without a source row), or an `ON` that names no column (every target
//!   row matches) with no column in the clause's own `AND`. An everyday
//!   upsert (`ON t.id = s.id WHEN MATCHED THEN UPDATE ...`) changes rows by
//!   key, like `UPDATE ... FROM ... WHERE t.id = s.id`, and is not.
//! - `CREATE TABLE ... AS query` (and `SELECT ... INTO`, which starts with
//!   its WITH) runs its query, data-modifying CTEs included.

use std::ops::ControlFlow;

use sqlparser::ast::{
    BinaryOperator, Expr, FromTable, Merge, MergeAction, MergeClauseKind, Query, SetExpr,
    Statement, TableFactor, TableWithJoins, UnaryOperator, Value, visit_expressions,
};

use super::{Hit, classify_nested, ident, object_name, parse};
use crate::sql::finding::Kind;
use crate::sql::token::{Tok, Token, qualified_name, tokens};

pub fn classify(text: &[u8], truncated: bool, depth: usize) -> Vec<Hit> {
    if plainly_targeted(text) {
        return Vec::new();
    }
    if let Some(statement) = parse(text, truncated)
        && let Some(hits) = statement_hits(&statement)
    {
        return hits;
    }
    fallback(text, truncated, depth)
}

/// Hits for a parsed statement; `None` when the statement is of a form
/// this rule does not know, so the fallback should judge it.
fn statement_hits(statement: &Statement) -> Option<Vec<Hit>> {
    match statement {
        Statement::Delete(delete) => {
            if where_picks_rows(delete.selection.as_ref()) || never_true(delete.selection.as_ref())
            {
                return Some(Vec::new());
            }
            let from = match &delete.from {
                FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t) => t,
            };
            let mut objects: Vec<String> = delete.tables.iter().map(object_name).collect();
            objects.extend(from.iter().filter_map(table_name));
            Some(vec![Hit::new(Kind::DeleteAll, objects, false)])
        }
        Statement::Update(update) => {
            if where_picks_rows(update.selection.as_ref()) || never_true(update.selection.as_ref())
            {
                return Some(Vec::new());
            }
            let objects = table_name(&update.table).into_iter().collect();
            Some(vec![Hit::new(Kind::UpdateAll, objects, false)])
        }
        Statement::Query(query) => Some(query_hits(query)),
        Statement::Merge(merge) => Some(merge_hits(merge)),
        Statement::Insert(_) => Some(Vec::new()),
        Statement::Explain {
            analyze,
            options,
            statement,
            ..
        } => {
            let analyze_option = options.iter().flatten().any(|o| {
                o.name.value.eq_ignore_ascii_case("analyze")
                    && o.arg.as_ref().is_none_or(|a| {
                        !matches!(
                            a.to_string().to_ascii_lowercase().as_str(),
                            "false" | "off" | "0" | "no"
                        )
                    })
            });
            if *analyze || analyze_option {
                statement_hits(statement)
            } else {
                Some(Vec::new())
            }
        }
        _ => None,
    }
}

/// Hits in a query: its CTEs and its body.
fn query_hits(query: &Query) -> Vec<Hit> {
    let mut hits = Vec::new();
    if let Some(with) = &query.with {
        for cte in &with.cte_tables {
            hits.extend(query_hits(&cte.query));
        }
    }
    hits.extend(set_expr_hits(&query.body));
    hits
}

fn set_expr_hits(body: &SetExpr) -> Vec<Hit> {
    match body {
        SetExpr::Delete(s) | SetExpr::Update(s) | SetExpr::Insert(s) | SetExpr::Merge(s) => {
            // A statement form not understood inside a query is not
            // guessed at; only DELETE and UPDATE can destroy here.
            statement_hits(s).unwrap_or_default()
        }
        SetExpr::Query(q) => query_hits(q),
        SetExpr::SetOperation { left, right, .. } => {
            let mut hits = set_expr_hits(left);
            hits.extend(set_expr_hits(right));
            hits
        }
        SetExpr::Select(_) | SetExpr::Values(_) | SetExpr::Table(_) => Vec::new(),
    }
}

fn table_name(table: &TableWithJoins) -> Option<String> {
    factor_name(&table.relation)
}

fn factor_name(factor: &TableFactor) -> Option<String> {
    match factor {
        TableFactor::Table { name, alias, .. } => {
            // sqlparser reads `FROM ONLY users` as a table named ONLY with
            // the alias `users`; PostgreSQL reserves ONLY, so undo that.
            let only = matches!(name.0.as_slice(), [part] if part
                .as_ident()
                .is_some_and(|i| i.quote_style.is_none() && i.value.eq_ignore_ascii_case("only")));
            match alias {
                Some(alias) if only => Some(ident(&alias.name)),
                _ => Some(object_name(name)),
            }
        }
        _ => None,
    }
}

/// `MERGE`: see the module's documentation for when it deletes or
/// updates every row.
pub fn merge(text: &[u8], truncated: bool) -> Vec<Hit> {
    if let Some(statement) = parse(text, truncated)
        && let Some(hits) = statement_hits(&statement)
    {
        return hits;
    }
    merge_fallback(text)
}

fn merge_hits(merge: &Merge) -> Vec<Hit> {
    let objects: Vec<String> = factor_name(&merge.table).into_iter().collect();
    let every_row_matches = !where_picks_rows(Some(&merge.on));
    let mut deletes = false;
    let mut updates_all = false;
    for clause in &merge.clauses {
        let by_source = clause.clause_kind == MergeClauseKind::NotMatchedBySource;
        match clause.action {
            MergeAction::Delete { .. } => deletes = true,
            MergeAction::Update(_) => {
                updates_all |= by_source
                    || (every_row_matches && !where_picks_rows(clause.predicate.as_ref()));
            }
            _ => {}
        }
    }
    merge_result(objects, deletes, updates_all)
}

fn merge_result(objects: Vec<String>, deletes: bool, updates_all: bool) -> Vec<Hit> {
    let mut hits = Vec::new();
    if deletes {
        hits.push(Hit::new(Kind::DeleteAll, objects.clone(), false));
    }
    if updates_all {
        hits.push(Hit::new(Kind::UpdateAll, objects, false));
    }
    hits
}

/// Token-level reading of MERGE, with the same rules as the parsed one.
fn merge_fallback(text: &[u8]) -> Vec<Hit> {
    let toks = tokens(text);
    let mut i = 1;
    while toks.get(i).is_some_and(|t| t.is("into") || t.is("only")) {
        i += 1;
    }
    let objects: Vec<String> = qualified_name(&toks, i)
        .map(|(n, _)| n)
        .into_iter()
        .collect();
    // Top-level words split the statement: ON's condition runs to the
    // first WHEN, and each WHEN clause to the next.
    let mut depth = 0usize;
    let mut on = None;
    let mut whens = Vec::new();
    for (k, t) in toks.iter().enumerate() {
        if t.is_punct(b'(') {
            depth += 1;
        } else if t.is_punct(b')') {
            depth = depth.saturating_sub(1);
        } else if depth == 0 && t.is("on") && on.is_none() {
            on = Some(k + 1);
        } else if depth == 0 && t.is("when") {
            whens.push(k);
        }
    }
    let on_end = whens.first().copied().unwrap_or(toks.len());
    let on_condition = on.map_or(&toks[..0], |start| &toks[start.min(on_end)..on_end]);
    let every_row_matches = !condition_names_column(on_condition);
    let mut deletes = false;
    let mut updates_all = false;
    for (n, &start) in whens.iter().enumerate() {
        let end = whens.get(n + 1).copied().unwrap_or(toks.len());
        let clause = &toks[start..end];
        let Some(then) = clause.iter().position(|t| t.is("then")) else {
            continue;
        };
        let by_source = clause[..then]
            .windows(2)
            .any(|w| w[0].is("by") && w[1].is("source"));
        let predicate = clause[..then]
            .iter()
            .position(|t| t.is("and"))
            .map_or(&clause[..0], |a| &clause[a + 1..then]);
        match clause.get(then + 1) {
            Some(t) if t.is("delete") => deletes = true,
            Some(t) if t.is("update") => {
                updates_all |=
                    by_source || (every_row_matches && !condition_names_column(predicate));
            }
            _ => {}
        }
    }
    merge_result(objects, deletes, updates_all)
}

/// `CREATE [TEMP|UNLOGGED] TABLE name ... AS query`: the query runs, so
/// it is judged like a statement of its own. Other CREATE statements hold
/// no statement that runs now (a rule's or a function's body runs later,
/// and is judged when it does).
pub fn created_from_query(text: &[u8], truncated: bool, depth: usize) -> Vec<Hit> {
    // Only a data-modifying CTE destroys anything here; most CREATE
    // statements (and long function bodies) are passed over unread.
    if !mentions_word(text, &["delete", "update", "merge"]) {
        return Vec::new();
    }
    let toks = tokens(text);
    let mut i = 1;
    while toks.get(i).is_some_and(|t| {
        t.is("global") || t.is("local") || t.is("temp") || t.is("temporary") || t.is("unlogged")
    }) {
        i += 1;
    }
    if !toks.get(i).is_some_and(|t| t.is("table")) {
        return Vec::new();
    }
    let mut parens = 0usize;
    for t in &toks[i + 1..] {
        if t.is_punct(b'(') {
            parens += 1;
        } else if t.is_punct(b')') {
            parens = parens.saturating_sub(1);
        } else if parens == 0 && t.is("as") {
            let query = &text[t.offset + t.text.len()..];
            let start = query
                .iter()
                .position(|b| !b.is_ascii_whitespace())
                .unwrap_or(query.len());
            return classify_nested(&query[start..], truncated, depth);
        }
    }
    Vec::new()
}

/// True when one of `words` occurs in `text` as a whole word, any case.
fn mentions_word(text: &[u8], words: &[&str]) -> bool {
    let word_byte = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80;
    text.split(|&b| !word_byte(b))
        .any(|w| words.iter().any(|x| w.eq_ignore_ascii_case(x.as_bytes())))
}

/// True when a WHERE clause is present and its value is plainly false or
/// null whatever the row: such a statement changes nothing.
fn never_true(selection: Option<&Expr>) -> bool {
    matches!(
        selection.and_then(constant),
        Some(Constant::Bool(Some(false) | None))
    )
}

/// The value of an expression built only from literals, as far as it can
/// be known without a server.
#[derive(Debug, Clone, PartialEq)]
enum Constant {
    /// `None` is SQL's null (unknown).
    Bool(Option<bool>),
    Number(f64),
    Text(String),
}

fn constant(e: &Expr) -> Option<Constant> {
    use Constant::{Bool, Number, Text};
    Some(match e {
        Expr::Value(v) => match &v.value {
            Value::Boolean(b) => Bool(Some(*b)),
            Value::Null => Bool(None),
            Value::Number(n, _) => Number(n.parse().ok()?),
            Value::SingleQuotedString(s) => Text(s.clone()),
            _ => return None,
        },
        Expr::Nested(inner) => constant(inner)?,
        Expr::UnaryOp { op, expr } => match (op, constant(expr)?) {
            (UnaryOperator::Not, Bool(b)) => Bool(b.map(|b| !b)),
            (UnaryOperator::Minus, Number(n)) => Number(-n),
            (UnaryOperator::Plus, Number(n)) => Number(n),
            _ => return None,
        },
        Expr::IsNull(inner) => Bool(Some(constant(inner)? == Bool(None))),
        Expr::IsNotNull(inner) => Bool(Some(constant(inner)? != Bool(None))),
        Expr::IsTrue(inner) => Bool(Some(constant(inner)? == Bool(Some(true)))),
        Expr::IsFalse(inner) => Bool(Some(constant(inner)? == Bool(Some(false)))),
        Expr::BinaryOp { left, op, right } => {
            // AND with a false side is false, OR with a true side is true,
            // whatever the other side is (a call, a column).
            let (l, r) = (constant(left), constant(right));
            let either = |v: bool| l == Some(Bool(Some(v))) || r == Some(Bool(Some(v)));
            match op {
                BinaryOperator::And if either(false) => return Some(Bool(Some(false))),
                BinaryOperator::Or if either(true) => return Some(Bool(Some(true))),
                _ => {}
            }
            let (l, r) = (l?, r?);
            match op {
                BinaryOperator::And => match (l, r) {
                    (Bool(Some(true)), Bool(Some(true))) => Bool(Some(true)),
                    (Bool(_), Bool(_)) => Bool(None),
                    _ => return None,
                },
                BinaryOperator::Or => match (l, r) {
                    (Bool(Some(false)), Bool(Some(false))) => Bool(Some(false)),
                    (Bool(_), Bool(_)) => Bool(None),
                    _ => return None,
                },
                _ => compare(op, &l, &r)?,
            }
        }
        _ => return None,
    })
}

/// A comparison of two literals. Text is compared for equality only: its
/// order depends on the collation.
fn compare(op: &BinaryOperator, l: &Constant, r: &Constant) -> Option<Constant> {
    use std::cmp::Ordering;
    if *l == Constant::Bool(None) || *r == Constant::Bool(None) {
        return Some(Constant::Bool(None));
    }
    let order = match (l, r) {
        (Constant::Number(a), Constant::Number(b)) => a.partial_cmp(b)?,
        (Constant::Bool(Some(a)), Constant::Bool(Some(b))) => a.cmp(b),
        (Constant::Text(a), Constant::Text(b)) => match op {
            BinaryOperator::Eq | BinaryOperator::NotEq => a.cmp(b),
            _ => return None,
        },
        _ => return None,
    };
    let holds = match op {
        BinaryOperator::Eq => order == Ordering::Equal,
        BinaryOperator::NotEq => order != Ordering::Equal,
        BinaryOperator::Lt => order == Ordering::Less,
        BinaryOperator::LtEq => order != Ordering::Greater,
        BinaryOperator::Gt => order == Ordering::Greater,
        BinaryOperator::GtEq => order != Ordering::Less,
        _ => return None,
    };
    Some(Constant::Bool(Some(holds)))
}

/// The token-level twin of `never_true`, for the common spellings:
/// `false`, `null`, `not true`, and two different numbers compared with
/// `=` (or the same number with `<>` / `!=`), possibly in parentheses.
fn tokens_never_true(condition: &[Token<'_>]) -> bool {
    let mut c = condition;
    while c.len() >= 2 && c[0].is_punct(b'(') && c[c.len() - 1].is_punct(b')') {
        c = &c[1..c.len() - 1];
    }
    let number = |t: &Token<'_>| -> Option<f64> {
        (t.kind == Tok::Number)
            .then(|| std::str::from_utf8(t.text).ok()?.parse().ok())
            .flatten()
    };
    match c {
        [t] => t.is("false") || t.is("null"),
        [n, t] => n.is("not") && t.is("true"),
        [a, eq, b] if eq.is_punct(b'=') => {
            matches!((number(a), number(b)), (Some(x), Some(y)) if x != y)
        }
        [a, o1, o2, b]
            if (o1.is_punct(b'<') && o2.is_punct(b'>'))
                || (o1.is_punct(b'!') && o2.is_punct(b'=')) =>
        {
            matches!((number(a), number(b)), (Some(x), Some(y)) if x == y)
        }
        _ => false,
    }
}

/// True when a WHERE clause is present and mentions at least one column.
fn where_picks_rows(selection: Option<&Expr>) -> bool {
    let Some(condition) = selection else {
        return false;
    };
    visit_expressions(condition, |e| match e {
        Expr::Identifier(_) | Expr::CompoundIdentifier(_) | Expr::CompoundFieldAccess { .. } => {
            ControlFlow::Break(())
        }
        _ => ControlFlow::Continue(()),
    })
    .is_break()
}

/// Words that can appear in a condition without naming a column.
const NOT_COLUMNS: &[&str] = &[
    "true",
    "false",
    "null",
    "and",
    "or",
    "not",
    "is",
    "in",
    "like",
    "ilike",
    "similar",
    "to",
    "between",
    "symmetric",
    "distinct",
    "from",
    "unknown",
    "any",
    "all",
    "some",
    "exists",
    "case",
    "when",
    "then",
    "else",
    "end",
    "cast",
    "as",
    "collate",
    "escape",
    "isnull",
    "notnull",
    "current_date",
    "current_time",
    "current_timestamp",
    "localtime",
    "localtimestamp",
    "current_user",
    "session_user",
    "current_role",
    "current_catalog",
    "current_schema",
    "user",
    "select",
    "interval",
    "array",
    "row",
    "at",
    "time",
    "zone",
    "date",
    "timestamp",
    "values",
];

/// Token-level reading of DELETE, UPDATE, WITH and EXPLAIN statements.
pub(super) fn fallback(text: &[u8], truncated: bool, depth: usize) -> Vec<Hit> {
    let toks = tokens(text);
    let Some(head) = toks.first() else {
        return Vec::new();
    };
    if head.is("explain") {
        return explain_fallback(text, &toks, truncated, depth);
    }
    let mut hits = Vec::new();
    for (k, t) in toks.iter().enumerate() {
        if !(t.is("delete") || t.is("update")) {
            continue;
        }
        // DELETE and UPDATE start a statement at the top or right after
        // the parenthesis of a CTE; elsewhere (FOR UPDATE, ON DELETE) they
        // are clauses.
        let starts_statement = k == 0 || toks[k - 1].is_punct(b'(') || toks[k - 1].is_punct(b')');
        if !starts_statement {
            continue;
        }
        let end = group_end(&toks, k);
        if let Some(hit) = dml_region(&toks[k..end]) {
            hits.push(hit);
        }
    }
    hits
}

/// Index just after the statement starting at `start`: the parenthesis
/// closing the group it sits in, or the end.
fn group_end(toks: &[Token<'_>], start: usize) -> usize {
    let mut depth = 0usize;
    for (k, t) in toks.iter().enumerate().skip(start) {
        if t.is_punct(b'(') {
            depth += 1;
        } else if t.is_punct(b')') {
            if depth == 0 {
                return k;
            }
            depth -= 1;
        }
    }
    toks.len()
}

/// Judges one DELETE or UPDATE by its tokens.
fn dml_region(toks: &[Token<'_>]) -> Option<Hit> {
    let delete = toks[0].is("delete");
    let mut i = 1;
    if delete {
        // `DELETE` without FROM is not a statement (a word in a string,
        // say, or a trigger's TG_OP).
        if !toks.get(i).is_some_and(|t| t.is("from")) {
            return None;
        }
        i += 1;
    } else if toks.len() < 2 {
        return None;
    }
    if toks.get(i).is_some_and(|t| t.is("only")) {
        i += 1;
    }
    let objects: Vec<String> = qualified_name(toks, i)
        .map(|(n, _)| n)
        .into_iter()
        .collect();
    let kind = if delete {
        Kind::DeleteAll
    } else {
        Kind::UpdateAll
    };
    let mut depth = 0usize;
    let mut condition = None;
    for (k, t) in toks.iter().enumerate() {
        if t.is_punct(b'(') {
            depth += 1;
        } else if t.is_punct(b')') {
            depth = depth.saturating_sub(1);
        } else if depth == 0 && t.is("where") {
            condition = Some(k + 1);
            break;
        }
    }
    let Some(start) = condition else {
        // No WHERE in the text we have. When the statement was cut short
        // its WHERE may lie beyond the cut: still report it, to be safe.
        return Some(Hit::new(kind, objects, false));
    };
    let condition = condition_tokens(&toks[start..]);
    if condition_names_column(condition) || tokens_never_true(condition) {
        return None;
    }
    Some(Hit::new(kind, objects, false))
}

/// The tokens of a WHERE condition: up to a top-level RETURNING.
fn condition_tokens<'t, 'a>(toks: &'t [Token<'a>]) -> &'t [Token<'a>] {
    let mut depth = 0usize;
    for (k, t) in toks.iter().enumerate() {
        if t.is_punct(b'(') {
            depth += 1;
        } else if t.is_punct(b')') {
            depth = depth.saturating_sub(1);
        } else if depth == 0 && t.is("returning") {
            return &toks[..k];
        }
    }
    toks
}

/// True when some token of the condition names a column: an identifier
/// that is not a keyword, a function being called, a type written before a
/// literal (`int '1'`, `x'ff'`), a cast's type, or a collation.
fn condition_names_column(condition: &[Token<'_>]) -> bool {
    condition.iter().enumerate().any(|(k, t)| {
        let next = condition.get(k + 1);
        let prev = k.checked_sub(1).map(|p| &condition[p]);
        let called = next.is_some_and(|n| n.is_punct(b'('));
        let typed_literal = next.is_some_and(|n| n.kind == Tok::Str || n.is_punct(b'&'));
        let after_type_marker = prev.is_some_and(|p| p.is_punct(b':') || p.is("collate"));
        if called || after_type_marker {
            return false;
        }
        match t.kind {
            Tok::QuotedIdent => true,
            Tok::Word => !typed_literal && !NOT_COLUMNS.contains(&t.ident().as_str()),
            _ => false,
        }
    })
}

/// A DELETE or UPDATE whose top-level WHERE has no parentheses (no
/// subquery, no call) and names a column: it picks rows, and the token
/// reading is as exact as a parse here, so sqlparser is skipped.
fn plainly_targeted(text: &[u8]) -> bool {
    let toks = tokens(text);
    if !toks
        .first()
        .is_some_and(|t| t.is("delete") || t.is("update"))
    {
        return false;
    }
    let mut depth = 0usize;
    let mut start = None;
    for (k, t) in toks.iter().enumerate() {
        if t.is_punct(b'(') {
            depth += 1;
        } else if t.is_punct(b')') {
            depth = depth.saturating_sub(1);
        } else if depth == 0 && t.is("where") {
            start = Some(k + 1);
            break;
        }
    }
    let Some(start) = start else {
        return false;
    };
    let condition = condition_tokens(&toks[start..]);
    !condition.iter().any(|t| t.is_punct(b'(')) && condition_names_column(condition)
}

/// `EXPLAIN ANALYZE stmt` and `EXPLAIN (ANALYZE [true]) stmt` run the
/// statement; other EXPLAINs do not.
fn explain_fallback(text: &[u8], toks: &[Token<'_>], truncated: bool, depth: usize) -> Vec<Hit> {
    let mut i = 1;
    let mut analyze = false;
    if toks.get(i).is_some_and(|t| t.is_punct(b'(')) {
        let end = super::super::token::skip_parens(toks, i);
        let options = &toks[i + 1..end.saturating_sub(1).max(i + 1)];
        for (k, t) in options.iter().enumerate() {
            if t.is("analyze") || t.is("analyse") {
                let off = options
                    .get(k + 1)
                    .is_some_and(|v| v.is("false") || v.is("off") || v.text == b"0");
                analyze = !off;
            }
        }
        i = end;
    } else {
        while toks
            .get(i)
            .is_some_and(|t| t.is("analyze") || t.is("analyse") || t.is("verbose"))
        {
            analyze |= !toks[i].is("verbose");
            i += 1;
        }
    }
    match toks.get(i) {
        Some(t) if analyze => classify_nested(&text[t.offset..], truncated, depth + 1),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check_hits, check_misses, one};
    use super::*;
    use crate::sql::classify::{Context, classify as classify_any};

    fn fb(sql: &[u8]) -> Vec<Hit> {
        fallback(sql, false, 0)
    }

    const HITS: &[(&str, Kind, &[&str], bool)] = &[
        ("DELETE FROM users", Kind::DeleteAll, &["users"], false),
        ("delete from users", Kind::DeleteAll, &["users"], false),
        ("DELETE FROM ONLY users", Kind::DeleteAll, &["users"], false),
        (
            "DELETE FROM public.users",
            Kind::DeleteAll,
            &["public.users"],
            false,
        ),
        ("DELETE FROM \"Users\"", Kind::DeleteAll, &["Users"], false),
        ("DELETE FROM users AS u", Kind::DeleteAll, &["users"], false),
        (
            "DELETE FROM users WHERE true",
            Kind::DeleteAll,
            &["users"],
            false,
        ),
        (
            "DELETE FROM users WHERE TRUE",
            Kind::DeleteAll,
            &["users"],
            false,
        ),
        (
            "DELETE FROM users WHERE 1=1",
            Kind::DeleteAll,
            &["users"],
            false,
        ),
        (
            "DELETE FROM users WHERE 1 = 1 OR 2 = 2",
            Kind::DeleteAll,
            &["users"],
            false,
        ),
        (
            "DELETE FROM users WHERE 'a'='a'",
            Kind::DeleteAll,
            &["users"],
            false,
        ),
        (
            "DELETE FROM users WHERE NOT false",
            Kind::DeleteAll,
            &["users"],
            false,
        ),
        (
            "DELETE FROM users WHERE random() < 2",
            Kind::DeleteAll,
            &["users"],
            false,
        ),
        (
            "DELETE FROM users WHERE (1 = 1)",
            Kind::DeleteAll,
            &["users"],
            false,
        ),
        (
            "DELETE FROM users WHERE now() > '2000-01-01'",
            Kind::DeleteAll,
            &["users"],
            false,
        ),
        (
            "DELETE FROM users WHERE 1 IN (1, 2)",
            Kind::DeleteAll,
            &["users"],
            false,
        ),
        (
            "DELETE FROM users RETURNING id",
            Kind::DeleteAll,
            &["users"],
            false,
        ),
        (
            "DELETE FROM users WHERE int '1' = 1",
            Kind::DeleteAll,
            &["users"],
            false,
        ),
        (
            "DELETE FROM users WHERE x'1f' = x'1f'",
            Kind::DeleteAll,
            &["users"],
            false,
        ),
        (
            "DELETE FROM users WHERE 'a' COLLATE \"C\" = 'a'",
            Kind::DeleteAll,
            &["users"],
            false,
        ),
        (
            "DELETE FROM users WHERE '1'::\"int4\" = 1",
            Kind::DeleteAll,
            &["users"],
            false,
        ),
        (
            "UPDATE users SET a = 1 WHERE date '2020-01-01' < now()",
            Kind::UpdateAll,
            &["users"],
            false,
        ),
        (
            "DELETE FROM users USING accounts",
            Kind::DeleteAll,
            &["users"],
            false,
        ),
        (
            "DELETE /* x */ FROM -- y\n users",
            Kind::DeleteAll,
            &["users"],
            false,
        ),
        (
            "DELETE\r\nFROM\r\nusers\r\n",
            Kind::DeleteAll,
            &["users"],
            false,
        ),
        (
            "UPDATE users SET active = false",
            Kind::UpdateAll,
            &["users"],
            false,
        ),
        (
            "update users set active = false",
            Kind::UpdateAll,
            &["users"],
            false,
        ),
        (
            "UPDATE ONLY users SET a = 1",
            Kind::UpdateAll,
            &["users"],
            false,
        ),
        (
            "UPDATE s.users u SET a = 1",
            Kind::UpdateAll,
            &["s.users"],
            false,
        ),
        (
            "UPDATE \"Users\" SET a = 1",
            Kind::UpdateAll,
            &["Users"],
            false,
        ),
        (
            "UPDATE users SET a = 1 WHERE true",
            Kind::UpdateAll,
            &["users"],
            false,
        ),
        (
            "UPDATE users SET a = 1 WHERE 1=1",
            Kind::UpdateAll,
            &["users"],
            false,
        ),
        (
            "UPDATE users SET a = 1 WHERE 'x' <> 'y'",
            Kind::UpdateAll,
            &["users"],
            false,
        ),
        (
            "UPDATE users SET a = (SELECT max(b) FROM t WHERE t.id = 3)",
            Kind::UpdateAll,
            &["users"],
            false,
        ),
        (
            "UPDATE users SET a = b FROM other",
            Kind::UpdateAll,
            &["users"],
            false,
        ),
        (
            "UPDATE users SET a = 1 RETURNING *",
            Kind::UpdateAll,
            &["users"],
            false,
        ),
        (
            "WITH d AS (DELETE FROM users RETURNING *) SELECT count(*) FROM d",
            Kind::DeleteAll,
            &["users"],
            false,
        ),
        (
            "WITH u AS (UPDATE users SET a = 1 RETURNING id) SELECT * FROM u",
            Kind::UpdateAll,
            &["users"],
            false,
        ),
        (
            "WITH d AS (DELETE FROM users WHERE true RETURNING *) INSERT INTO archive SELECT * FROM d",
            Kind::DeleteAll,
            &["users"],
            false,
        ),
        (
            "WITH ids AS (SELECT 1) DELETE FROM users",
            Kind::DeleteAll,
            &["users"],
            false,
        ),
        (
            "WITH ids AS (SELECT id FROM x) UPDATE users SET a = 1",
            Kind::UpdateAll,
            &["users"],
            false,
        ),
        (
            "EXPLAIN ANALYZE DELETE FROM users",
            Kind::DeleteAll,
            &["users"],
            false,
        ),
        (
            "EXPLAIN ANALYZE VERBOSE UPDATE users SET a = 1",
            Kind::UpdateAll,
            &["users"],
            false,
        ),
        (
            "EXPLAIN (ANALYZE) DELETE FROM users",
            Kind::DeleteAll,
            &["users"],
            false,
        ),
        (
            "EXPLAIN (ANALYZE true, BUFFERS) DELETE FROM users WHERE 1=1",
            Kind::DeleteAll,
            &["users"],
            false,
        ),
        (
            "EXPLAIN (COSTS off, ANALYZE) UPDATE users SET a = 1",
            Kind::UpdateAll,
            &["users"],
            false,
        ),
    ];

    #[test]
    fn hits() {
        check_hits(HITS, fb);
    }

    #[test]
    fn fallback_names_the_table() {
        for (sql, kind, objects, _) in HITS {
            let hits = fb(sql.as_bytes());
            assert!(
                hits.iter()
                    .any(|h| h.kind == *kind && h.objects == *objects),
                "{sql}: {hits:?}"
            );
        }
    }

    #[test]
    fn misses() {
        check_misses(
            &[
                "DELETE FROM users WHERE id = 1",
                "delete from users where id = 1",
                "DELETE FROM users WHERE id IN (SELECT id FROM banned)",
                "DELETE FROM users WHERE \"Id\" = 1",
                "DELETE FROM users u WHERE u.id = 1",
                "DELETE FROM users WHERE created_at < now() - interval '1 day'",
                "DELETE FROM users WHERE id = $1",
                "DELETE FROM users WHERE id = :id",
                "DELETE FROM users WHERE NOT active",
                "DELETE FROM users WHERE email IS NULL",
                "DELETE FROM users USING banned b WHERE users.id = b.id",
                "UPDATE users SET a = 1 WHERE id = 1",
                "UPDATE users SET a = 1 WHERE id = 1 RETURNING *",
                "UPDATE users SET a = b FROM other WHERE other.id = users.id",
                "UPDATE users SET \"delete\" = true WHERE id = 7",
                "WITH d AS (DELETE FROM users WHERE id = 1 RETURNING *) SELECT * FROM d",
                "WITH x AS (SELECT * FROM t FOR UPDATE) SELECT * FROM x",
                "WITH x AS (SELECT 1) SELECT * FROM x",
                "EXPLAIN DELETE FROM users",
                "EXPLAIN VERBOSE UPDATE users SET a = 1",
                "EXPLAIN (ANALYZE false) DELETE FROM users",
                "EXPLAIN (ANALYZE off, COSTS) DELETE FROM users",
                "EXPLAIN ANALYZE SELECT * FROM users",
                "EXPLAIN ANALYZE DELETE FROM users WHERE id = 1",
            ],
            fb,
        );
    }

    #[test]
    fn merge_that_deletes_or_updates_every_row() {
        check_hits(
            &[
                (
                    "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE",
                    Kind::DeleteAll,
                    &["t"],
                    false,
                ),
                (
                    "merge into app.t as x using (select id from s) as y on x.id = y.id \
                     when matched and y.gone then delete \
                     when not matched then insert values (y.id)",
                    Kind::DeleteAll,
                    &["app.t"],
                    false,
                ),
                (
                    "MERGE INTO t USING s ON t.id = s.id WHEN NOT MATCHED BY SOURCE THEN DELETE",
                    Kind::DeleteAll,
                    &["t"],
                    false,
                ),
                (
                    "MERGE INTO t USING s ON true WHEN MATCHED THEN UPDATE SET a = 1",
                    Kind::UpdateAll,
                    &["t"],
                    false,
                ),
                (
                    "MERGE INTO t USING s ON t.id = s.id WHEN NOT MATCHED BY SOURCE THEN UPDATE SET a = 0",
                    Kind::UpdateAll,
                    &["t"],
                    false,
                ),
            ],
            merge_fallback,
        );
    }

    #[test]
    fn merge_that_upserts_by_key_is_not() {
        check_misses(
            &[
                "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = s.a \
                 WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.a)",
                "MERGE INTO t USING s ON true WHEN MATCHED AND t.id = 3 THEN UPDATE SET a = 1",
                "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DO NOTHING",
                "MERGE INTO t USING s ON t.id = s.id WHEN NOT MATCHED THEN INSERT VALUES (1)",
            ],
            merge_fallback,
        );
    }

    #[test]
    fn merge_deleting_and_updating_gives_both() {
        let hits = classify_any(
            b"MERGE INTO t USING s ON 1 = 1 WHEN MATCHED AND s.x THEN DELETE WHEN MATCHED THEN UPDATE SET a = 1",
            Context::default(),
        );
        let kinds: Vec<Kind> = hits.iter().map(|h| h.kind).collect();
        assert_eq!(kinds, vec![Kind::DeleteAll, Kind::UpdateAll]);
    }

    #[test]
    fn a_where_that_is_never_true_changes_nothing() {
        check_misses(
            &[
                "DELETE FROM users WHERE false",
                "DELETE FROM users WHERE FALSE",
                "DELETE FROM users WHERE 1 = 0",
                "DELETE FROM users WHERE (1 = 2)",
                "DELETE FROM users WHERE 1 <> 1",
                "DELETE FROM users WHERE 1 != 1",
                "DELETE FROM users WHERE NOT true",
                "DELETE FROM users WHERE null",
                "UPDATE users SET a = 1 WHERE false",
                "UPDATE users SET a = 1 WHERE 2 = 3 RETURNING *",
            ],
            fb,
        );
        // Longer constant conditions are read on the parsed path.
        for sql in [
            "DELETE FROM users WHERE false AND random() < 2",
            "DELETE FROM users WHERE 1 = 0 OR 'a' = 'b'",
            "DELETE FROM users WHERE NULL IS NOT NULL",
            "DELETE FROM users WHERE -1 > 0",
        ] {
            assert_eq!(one(sql), None, "{sql}");
        }
        // A constant that may be true, or is, still takes every row.
        for sql in [
            "DELETE FROM users WHERE false OR random() < 2",
            "DELETE FROM users WHERE 1 = 1.0",
            "DELETE FROM users WHERE 'b' > 'a'",
            "DELETE FROM users WHERE NULL IS NULL",
        ] {
            assert_eq!(one(sql).map(|h| h.kind), Some(Kind::DeleteAll), "{sql}");
        }
    }

    #[test]
    fn create_table_as_runs_its_query() {
        let cases: &[(&str, Kind, &[&str])] = &[
            (
                "CREATE TABLE x AS WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
                Kind::DeleteAll,
                &["t"],
            ),
            (
                "create temp table x (a) as with u as (update t set a = 1 returning a) select a from u",
                Kind::UpdateAll,
                &["t"],
            ),
            (
                "CREATE UNLOGGED TABLE x AS WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d WITH DATA",
                Kind::DeleteAll,
                &["t"],
            ),
            (
                "WITH d AS (DELETE FROM t RETURNING *) SELECT * INTO x FROM d",
                Kind::DeleteAll,
                &["t"],
            ),
        ];
        for (sql, kind, objects) in cases {
            let hit = one(sql).unwrap_or_else(|| panic!("{sql}: no hit"));
            assert_eq!(hit.kind, *kind, "{sql}");
            assert_eq!(hit.objects, *objects, "{sql}");
        }
        for sql in [
            "CREATE TABLE x AS SELECT * FROM t",
            "CREATE TABLE x AS WITH d AS (DELETE FROM t WHERE id = 1 RETURNING *) SELECT * FROM d",
            "CREATE TABLE t (id int REFERENCES u ON DELETE CASCADE)",
            "CREATE RULE r AS ON INSERT TO t DO INSTEAD (DELETE FROM u)",
            "CREATE MATERIALIZED VIEW v AS SELECT 1",
        ] {
            assert_eq!(one(sql), None, "{sql}");
        }
    }

    #[test]
    fn where_current_of_picks_one_row() {
        assert_eq!(one("DELETE FROM users WHERE CURRENT OF c"), None);
        assert_eq!(one("UPDATE users SET a = 1 WHERE CURRENT OF c"), None);
    }

    #[test]
    fn two_data_modifying_ctes() {
        let hits = classify_any(
            b"WITH a AS (DELETE FROM x RETURNING 1), b AS (UPDATE y SET c = 1 RETURNING 1) SELECT 1",
            Context::default(),
        );
        let kinds: Vec<(Kind, Vec<String>)> =
            hits.into_iter().map(|h| (h.kind, h.objects)).collect();
        assert_eq!(
            kinds,
            vec![
                (Kind::DeleteAll, vec!["x".to_string()]),
                (Kind::UpdateAll, vec!["y".to_string()])
            ]
        );
    }

    #[test]
    fn a_cut_statement_without_where_in_view_is_reported() {
        let mut sql = b"UPDATE big SET payload = '".to_vec();
        sql.resize(100_000, b'x');
        let hits = classify_any(
            &sql,
            Context {
                gexec: false,
                truncated: true,
            },
        );
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].kind, Kind::UpdateAll);
    }

    #[test]
    fn deep_nesting_falls_back_without_crashing() {
        let depth = 5000;
        let sql = format!(
            "DELETE FROM t WHERE {}id = 1{}",
            "(".repeat(depth),
            ")".repeat(depth)
        );
        assert_eq!(one(&sql), None);
        let sql = format!(
            "DELETE FROM t WHERE {}1 = 1{}",
            "(".repeat(depth),
            ")".repeat(depth)
        );
        assert_eq!(one(&sql).map(|h| h.kind), Some(Kind::DeleteAll));
    }
}
