//! Bulk changes by the planner's estimate. A DELETE or UPDATE with a real
//! WHERE is not destructive by the text alone, but one that hits more rows
//! than a threshold (10,000 by default, or more than half of the table)
//! is: `delete_bulk`, `update_bulk`. The scanner marks such statements as
//! candidates; a guard asks the server for the planner's estimate with a
//! plain `EXPLAIN` (never executed) and turns the ones over the threshold
//! into findings.
//!
//! An estimate never gives up silently:
//! - a table without statistics (never analysed: the planner's guess of a
//!   default selectivity hides that every row goes) is counted exactly
//!   when it is small (under 8 MB, with `count(*)` under the statement's
//!   own WHERE) and is bulk otherwise;
//! - a statement pinning every column of a unique key changes one row at
//!   most and is never bulk, in scripts as inside psql;
//! - a statement too long to keep whole cannot be estimated and is bulk
//!   (`Candidate::complete`).
//!
//! When the server cannot answer at all (the table does not exist yet, a
//! parameter), the WHERE rule stands here; inside psql every string is
//! estimated again when it is sent.

use serde::Deserialize;

use super::finding::{Finding, Kind, ScanReport};
use super::pinned::{covers_a_key, pinned_columns, unique_keys_query};
use super::token::{Tok, qualified_name, tokens};

/// Candidates a script's pre-flight keeps, so its memory and helper query
/// stay small. The rest are not lost: psql sends each statement of a
/// script as its own string, and the guard inside psql estimates it then.
pub const MAX_CANDIDATES: usize = 100;

/// A table smaller than this without statistics is counted exactly.
const EXACT_COUNT_BYTES: u64 = 8 << 20;

/// A DELETE or UPDATE with a WHERE, to estimate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub path: String,
    pub line: u64,
    /// `DeleteBulk` or `UpdateBulk`.
    pub kind: Kind,
    /// The target table, folded as PostgreSQL folds it.
    pub table: String,
    /// The target table as written, to use in SQL.
    pub table_text: String,
    /// The statement as shown to people.
    pub statement: String,
    /// The statement as sent, to EXPLAIN.
    pub text: String,
    /// False when only the head of the statement was kept (it is too long
    /// to keep whole): it cannot be estimated, and counts as bulk.
    pub complete: bool,
    /// The statement's key (`sql::key`), `None` when not known.
    pub key: Option<String>,
}

impl Candidate {
    /// The finding for this statement once it is known to be bulk.
    pub fn finding(&self) -> Finding {
        Finding {
            path: self.path.clone(),
            line: self.line,
            kind: self.kind,
            objects: vec![self.table.clone()],
            cascade: false,
            statement: self.statement.clone(),
            implied: None,
            if_exists: false,
            created_in_input: false,
            key: self.key.clone(),
        }
    }

    /// `EXPLAIN` of the statement: the rows it would change.
    pub fn explain_statement(&self) -> String {
        format!(
            "EXPLAIN (FORMAT JSON) {}",
            self.text.trim_end_matches([';', ' ', '\n', '\t', '\r'])
        )
    }

    /// `EXPLAIN` of a scan of the whole table: the rows it holds.
    pub fn explain_table(&self) -> String {
        format!("EXPLAIN (FORMAT JSON) SELECT FROM {}", self.table_text)
    }

    /// Whether the planner's estimate can be trusted: `analysed` when the
    /// table (or a partition of it) has statistics; without any, for a
    /// table under `EXACT_COUNT_BYTES`, `exact:CHANGED:TOTAL` counted
    /// under the statement's own WHERE; `unanalysed` otherwise. The count
    /// runs only in its branch of the CASE: a large table is never read.
    pub fn statistics_query(&self) -> Option<String> {
        if self.table_text.contains(['\\', '\0', ';']) {
            return None;
        }
        let name = self.table_text.replace('\'', "''");
        let count = match count_query(&self.text) {
            Some(changed) => format!(
                "'exact:' || ({changed}) || ':' || (SELECT count(*) FROM {})",
                self.table_text
            ),
            None => "'unanalysed'".to_owned(),
        };
        Some(format!(
            "SELECT CASE \
               WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_stats s \
                            JOIN pg_catalog.pg_namespace n ON n.nspname = s.schemaname \
                            JOIN pg_catalog.pg_class p ON p.relnamespace = n.oid AND p.relname = s.tablename \
                            WHERE p.oid = c.oid OR p.oid IN (SELECT relid FROM pg_catalog.pg_partition_tree(c.oid))) \
                 THEN 'analysed' \
               WHEN (SELECT coalesce(sum(pg_catalog.pg_relation_size(t.oid)), 0) FROM pg_catalog.pg_class t \
                     WHERE t.oid = c.oid OR t.oid IN (SELECT relid FROM pg_catalog.pg_partition_tree(c.oid))) < {EXACT_COUNT_BYTES} \
                 THEN {count} \
               ELSE 'unanalysed' END \
             FROM pg_catalog.pg_class c WHERE c.oid = pg_catalog.to_regclass('{name}')"
        ))
    }
}

/// Words that may stand before `(` in a WHERE that is counted: keywords,
/// and functions that neither write nor call anything else.
const HARMLESS_BEFORE_BRACKET: [&str; 34] = [
    "and",
    "or",
    "not",
    "in",
    "exists",
    "any",
    "some",
    "all",
    "where",
    "select",
    "from",
    "values",
    "array",
    "row",
    "interval",
    "now",
    "lower",
    "upper",
    "coalesce",
    "nullif",
    "greatest",
    "least",
    "length",
    "abs",
    "date_trunc",
    "extract",
    "date_part",
    "age",
    "trim",
    "substring",
    "to_timestamp",
    "to_date",
    "make_interval",
    "count",
];

/// `SELECT count(*)` of the rows a DELETE or UPDATE with a WHERE would
/// change: the same table, alias, joined tables (`USING`, `FROM`; a join
/// counts each match, never fewer rows than change) and WHERE. `None` for
/// any other form (`WHERE CURRENT OF`, a statement it cannot split).
pub fn count_query(text: &str) -> Option<String> {
    let toks = tokens(text.as_bytes());
    let word = |i: usize, w: &str| toks.get(i).is_some_and(|t| t.is(w));
    let (mut i, update) = if word(0, "delete") && word(1, "from") {
        (2, false)
    } else if word(0, "update") {
        (1, true)
    } else {
        return None;
    };
    let only = word(i, "only");
    if only {
        i += 1;
    }
    let start = toks.get(i)?.offset;
    let (_, after) = qualified_name(&toks, i)?;
    let last = toks.get(after - 1)?;
    let table = &text[start..last.offset + last.text.len()];
    i = after;
    let mut alias = "";
    if word(i, "as") {
        i += 1;
    }
    if let Some(t) = toks.get(i)
        && t.is_name()
        && !["set", "using", "where", "returning"]
            .iter()
            .any(|k| t.is(k))
    {
        alias = std::str::from_utf8(t.text).ok()?;
        i += 1;
    }
    // The clauses at the top level (outside brackets), by position.
    let mut depth = 0usize;
    let (mut join, mut where_at, mut returning) = (None, None, None);
    for (j, t) in toks.iter().enumerate().skip(i) {
        if t.is_punct(b'(') {
            depth += 1;
        } else if t.is_punct(b')') {
            depth = depth.saturating_sub(1);
        } else if depth == 0 {
            if (t.is("using") && !update) || (t.is("from") && update && where_at.is_none()) {
                join = Some(j);
            } else if t.is("where") && where_at.is_none() {
                where_at = Some(j);
            } else if t.is("returning") {
                returning = Some(j);
            }
        }
    }
    let where_at = where_at?;
    if word(where_at + 1, "current") && word(where_at + 2, "of") {
        return None;
    }
    // The count runs the WHERE on every row before anyone has confirmed
    // anything: only functions known to change nothing may be called.
    let counted =
        join.filter(|j| *j < where_at).unwrap_or(where_at)..returning.unwrap_or(toks.len());
    let calls_unknown = toks[counted].windows(2).any(|pair| {
        pair[1].is_punct(b'(')
            && pair[0].kind == Tok::Word
            && !HARMLESS_BEFORE_BRACKET.iter().any(|k| pair[0].is(k))
            || pair[0].kind == Tok::QuotedIdent && pair[1].is_punct(b'(')
    });
    if calls_unknown {
        return None;
    }
    let offset = |j: usize| toks[j].offset;
    let joined = match join {
        Some(j) if j < where_at => format!(
            ", {}",
            text[offset(j) + toks[j].text.len()..offset(where_at)].trim()
        ),
        _ => String::new(),
    };
    let cond_end = returning.map_or(text.len(), offset);
    let cond = text[offset(where_at) + toks[where_at].text.len()..cond_end]
        .trim()
        .trim_end_matches(';')
        .trim_end();
    if cond.is_empty() {
        return None;
    }
    let only = if only { "ONLY " } else { "" };
    Some(format!(
        "SELECT count(*) FROM {only}{table} {alias}{joined} WHERE {cond}"
    ))
}

/// When a DELETE or UPDATE counts as bulk.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    /// More rows than this is bulk.
    pub rows: u64,
    /// More than this share of the table is bulk (0 turns it off).
    pub fraction: f64,
}

impl Default for Threshold {
    fn default() -> Self {
        Threshold {
            rows: 10_000,
            fraction: 0.5,
        }
    }
}

impl Threshold {
    /// `changed` rows of a table of `table_rows` rows (when known).
    pub fn is_bulk(&self, changed: f64, table_rows: Option<f64>) -> bool {
        if changed > self.rows as f64 {
            return true;
        }
        match table_rows {
            Some(total) if total >= 1.0 && self.fraction > 0.0 => changed > total * self.fraction,
            _ => false,
        }
    }
}

/// The target of `DELETE FROM [ONLY] t … WHERE …` or `UPDATE [ONLY] t …
/// WHERE …` (folded, as written) and the bulk kind; `None` for anything
/// else, including statements without a WHERE (their own rule judges them).
pub fn candidate(text: &[u8]) -> Option<(Kind, String, String)> {
    let toks = tokens(text);
    let first = toks.first()?;
    let (kind, mut i) = if first.is("delete") {
        if !toks.get(1)?.is("from") {
            return None;
        }
        (Kind::DeleteBulk, 2)
    } else if first.is("update") {
        (Kind::UpdateBulk, 1)
    } else {
        return None;
    };
    if toks.get(i).is_some_and(|t| t.is("only")) {
        i += 1;
    }
    let start = toks.get(i)?.offset;
    let (name, after) = qualified_name(&toks, i)?;
    let end = toks
        .get(after - 1)
        .map(|t| t.offset + t.text.len())
        .unwrap_or(start);
    let mut depth = 0usize;
    let has_where = toks[after..].iter().any(|t| {
        if t.is_punct(b'(') {
            depth += 1;
        } else if t.is_punct(b')') {
            depth = depth.saturating_sub(1);
        }
        depth == 0 && t.is("where")
    });
    if !has_where {
        return None;
    }
    let written = String::from_utf8_lossy(&text[start..end]).into_owned();
    Some((kind, name, written))
}

/// Turns the candidates of `report` that are over `threshold` into
/// findings. `explain` runs queries (`EXPLAIN (FORMAT JSON)`, the
/// statistics check, the unique-key lookup), all at once (one round trip
/// on a live connection), and gives each one's first value in order, or
/// `None` where it failed. `check_keys`: a candidate pinning a unique key
/// is never bulk (the caller may have ruled on keys itself).
pub fn add_bulk_findings(
    report: &mut ScanReport,
    threshold: &Threshold,
    check_keys: bool,
    explain: impl FnOnce(&[String]) -> Vec<Option<String>>,
) {
    let candidates = std::mem::take(&mut report.estimate_candidates);
    let estimated: Vec<&Candidate> = candidates.iter().filter(|c| c.complete).collect();
    for c in candidates.iter().filter(|c| !c.complete) {
        report.push_finding(c.finding());
    }
    let n = estimated.len();
    let mut statements: Vec<String> = estimated
        .iter()
        .flat_map(|c| [c.explain_statement(), c.explain_table()])
        .collect();
    // Later in the batch than the plans: on a live connection a failure
    // ends the batch, and the plans matter most.
    let statistics: Vec<Option<usize>> = estimated
        .iter()
        .map(|c| {
            c.statistics_query().map(|q| {
                statements.push(q);
                statements.len() - 1
            })
        })
        .collect();
    let keys: Vec<Option<(usize, Vec<String>)>> = estimated
        .iter()
        .map(|c| {
            if !check_keys {
                return None;
            }
            let pinned = pinned_columns(c.text.as_bytes())?;
            let query = unique_keys_query(&c.table_text)?;
            statements.push(query);
            Some((statements.len() - 1, pinned))
        })
        .collect();
    if statements.is_empty() {
        report.estimate_candidates = candidates;
        return;
    }
    let plans = explain(&statements);
    let answer = |k: usize| plans.get(k).and_then(Option::as_deref);
    for (i, c) in estimated.iter().enumerate() {
        let one_row = keys[i].as_ref().is_some_and(|(k, pinned)| {
            answer(*k)
                .and_then(|json| serde_json::from_str::<Vec<Vec<String>>>(json).ok())
                .is_some_and(|keys| covers_a_key(pinned, &keys))
        });
        if one_row {
            continue;
        }
        // The rows changed and in the table, and whether they were counted.
        let mut judged: Option<(f64, Option<f64>, bool)> = None;
        let bulk = match statistics[i].and_then(answer) {
            Some("unanalysed") => true,
            Some(exact) if exact.starts_with("exact:") => {
                let mut parts = exact.split(':').skip(1).map(str::parse::<f64>);
                match (parts.next(), parts.next()) {
                    (Some(Ok(changed)), Some(Ok(total))) => {
                        judged = Some((changed, Some(total), true));
                        threshold.is_bulk(changed, Some(total))
                    }
                    _ => true,
                }
            }
            // Statistics, or no answer: the planner's estimate.
            _ => {
                let rows = |k: usize| answer(2 * i + k).and_then(planned_rows);
                match rows(0) {
                    Some(changed) => {
                        judged = Some((changed, rows(1), false));
                        threshold.is_bulk(changed, rows(1))
                    }
                    None => false,
                }
            }
        };
        if bulk {
            let finding = c.finding();
            if let Some((changed, total, exact)) = judged {
                // Estimates are whole rows; the cast saturates.
                report.row_estimates.push(super::RowEstimate {
                    path: finding.path.clone(),
                    line: finding.line,
                    changed: changed.round() as u64,
                    total: total.map(|t| t.round() as u64),
                    exact,
                });
            }
            report.push_finding(finding);
        }
    }
    debug_assert!(2 * n <= statements.len());
    report.estimate_candidates = candidates;
}

#[derive(Deserialize)]
struct Explained {
    #[serde(rename = "Plan")]
    plan: PlanNode,
}

#[derive(Deserialize)]
struct PlanNode {
    #[serde(rename = "Plan Rows")]
    rows: f64,
    #[serde(rename = "Plans", default)]
    children: Vec<PlanNode>,
}

/// The rows an `EXPLAIN (FORMAT JSON)` plan produces or changes: the top
/// node's estimate, or for a DELETE/UPDATE (whose top node returns no
/// rows) the estimate of the scan beneath it.
pub fn planned_rows(json: &str) -> Option<f64> {
    let plans: Vec<Explained> = serde_json::from_str(json.trim()).ok()?;
    let top = &plans.first()?.plan;
    let below = top.children.first().map_or(0.0, |c| c.rows);
    Some(top.rows.max(below))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_are_delete_and_update_with_a_where() {
        assert_eq!(
            candidate(b"DELETE FROM orders WHERE id < 10"),
            Some((Kind::DeleteBulk, "orders".into(), "orders".into()))
        );
        assert_eq!(
            candidate(b"update only \"S\".\"T\" set a = 1 where b"),
            Some((Kind::UpdateBulk, "S.T".into(), "\"S\".\"T\"".into()))
        );
        for miss in [
            &b"delete from t"[..],
            b"update t set a = (select 1 where true)",
            b"select * from t where a",
            b"insert into t select 1 where true",
        ] {
            assert_eq!(candidate(miss), None, "{}", String::from_utf8_lossy(miss));
        }
    }

    #[test]
    fn the_threshold_is_rows_or_a_share_of_the_table() {
        let t = Threshold::default();
        assert!(t.is_bulk(10_001.0, None));
        assert!(!t.is_bulk(10_000.0, None));
        assert!(t.is_bulk(600.0, Some(1000.0)));
        assert!(!t.is_bulk(400.0, Some(1000.0)));
        assert!(!t.is_bulk(1.0, Some(0.0)));
        let off = Threshold {
            rows: 10,
            fraction: 0.0,
        };
        assert!(!off.is_bulk(5.0, Some(6.0)));
    }

    #[test]
    fn rows_come_from_the_scan_beneath_a_modify_node() {
        let delete = r#"[{"Plan": {"Node Type": "ModifyTable", "Plan Rows": 0,
            "Plans": [{"Node Type": "Seq Scan", "Plan Rows": 2550}]}}]"#;
        assert_eq!(planned_rows(delete), Some(2550.0));
        let select = r#"[{"Plan": {"Node Type": "Seq Scan", "Plan Rows": 1000}}]"#;
        assert_eq!(planned_rows(select), Some(1000.0));
        assert_eq!(planned_rows("ERROR"), None);
    }

    #[test]
    fn estimates_over_the_threshold_become_findings_and_failures_keep_the_where_rule() {
        let mut report = crate::sql::scan_str(
            "DELETE FROM big WHERE a > 1;\nUPDATE small SET b = 1 WHERE a = 2;\nDELETE FROM gone WHERE a = 1;",
        );
        assert!(report.is_safe());
        let plan = |rows: u64| format!(r#"[{{"Plan": {{"Plan Rows": {rows}}}}}]"#);
        add_bulk_findings(&mut report, &Threshold::default(), false, |statements| {
            // Two plans per candidate, then each one's statistics check.
            assert_eq!(statements.len(), 9);
            assert_eq!(statements[1], "EXPLAIN (FORMAT JSON) SELECT FROM big");
            assert!(
                statements[6].contains("to_regclass('big')"),
                "{}",
                statements[6]
            );
            vec![
                Some(plan(20_000)),
                Some(plan(1_000_000)),
                Some(plan(1)),
                Some(plan(100)),
                None, // the table does not exist
                None,
            ]
        });
        let kinds: Vec<(Kind, &str)> = report
            .findings
            .iter()
            .map(|f| (f.kind, f.objects[0].as_str()))
            .collect();
        assert_eq!(kinds, vec![(Kind::DeleteBulk, "big")]);
    }

    #[test]
    fn the_rows_a_statement_changes_are_counted_under_its_own_where() {
        let cases = [
            (
                "DELETE FROM t WHERE a > 1;",
                "SELECT count(*) FROM t  WHERE a > 1",
            ),
            (
                "delete from only s.t as x using u where x.id = u.id returning *",
                "SELECT count(*) FROM ONLY s.t x, u WHERE x.id = u.id",
            ),
            (
                "update t set a = (select f(1) from v where true), b = 2 where c is null",
                "SELECT count(*) FROM t  WHERE c is null",
            ),
            (
                "update \"T\" q set a = 1 from u where q.id = u.id",
                "SELECT count(*) FROM \"T\" q, u WHERE q.id = u.id",
            ),
        ];
        for (statement, count) in cases {
            assert_eq!(
                count_query(statement).as_deref(),
                Some(count),
                "{statement}"
            );
        }
        for miss in [
            "delete from t",
            "delete from t where current of c",
            "delete from t where audit_and_check(id)",
            "update t set a = 1 where id = nextval('s')",
            "delete from t where \"f\"(id)",
            "select 1 where true",
        ] {
            assert_eq!(count_query(miss), None, "{miss}");
        }
    }

    fn candidates(sql: &str) -> ScanReport {
        let report = crate::sql::scan_str(sql);
        assert!(!report.estimate_candidates.is_empty(), "{sql}");
        report
    }

    #[test]
    fn a_table_without_statistics_is_counted_when_small_and_bulk_when_large() {
        let plan = |rows: u64| Some(format!(r#"[{{"Plan": {{"Plan Rows": {rows}}}}}]"#));
        // The planner guesses a third of a made-up size; the truth differs.
        for (statistics, bulk) in [
            ("exact:100:100", true),
            ("exact:1:100", false),
            ("unanalysed", true),
            ("analysed", false),
        ] {
            let mut report = candidates("DELETE FROM t WHERE created < now();");
            add_bulk_findings(&mut report, &Threshold::default(), false, |statements| {
                assert!(statements[2].contains("pg_stats"), "{}", statements[2]);
                vec![plan(500), plan(1500), Some(statistics.to_owned())]
            });
            assert_eq!(!report.findings.is_empty(), bulk, "{statistics}");
        }
    }

    #[test]
    fn a_unique_key_pinned_by_the_where_is_never_bulk() {
        let everything = |statements: &[String]| {
            let mut out = vec![
                Some(r#"[{"Plan": {"Plan Rows": 1}}]"#.to_owned()),
                Some(r#"[{"Plan": {"Plan Rows": 1}}]"#.to_owned()),
                Some("exact:1:1".to_owned()),
            ];
            out.resize(statements.len(), None);
            if statements.len() == 4 {
                assert!(statements[3].contains("indisunique"), "{}", statements[3]);
                out[3] = Some(r#"[["id"]]"#.to_owned());
            }
            out
        };
        // The only row of a one-row table, by its key: not bulk.
        let mut report = candidates("DELETE FROM t WHERE id = 5;");
        add_bulk_findings(&mut report, &Threshold::default(), true, everything);
        assert!(report.findings.is_empty());
        // Without the key rule, all of the table.
        let mut report = candidates("DELETE FROM t WHERE id = 5;");
        add_bulk_findings(&mut report, &Threshold::default(), false, everything);
        assert_eq!(report.findings.len(), 1);
    }

    #[test]
    fn a_statement_too_long_to_keep_is_bulk_without_asking_the_server() {
        let mut sql = String::from("DELETE FROM t WHERE id IN (0");
        while sql.len() <= crate::sql::lexer::STATEMENT_CAP {
            sql.push_str(", 1234567");
        }
        sql.push_str(");");
        let mut report = candidates(&sql);
        add_bulk_findings(&mut report, &Threshold::default(), true, |statements| {
            assert!(statements.is_empty(), "nothing to estimate");
            Vec::new()
        });
        assert_eq!(report.findings.len(), 1);
        assert_eq!(report.findings[0].kind, Kind::DeleteBulk);
    }
}
