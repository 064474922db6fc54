//! Bulk changes by the planner's estimate. A DELETE or UPDATE with a real
//! WHERE is not destructive by the text alone, but one that hits more rows
//! than a threshold (10,000 by default, or more than half of the table)
//! is: `delete_bulk`, `update_bulk`. The scanner marks such statements as
//! candidates; a guard asks the server for the planner's estimate with a
//! plain `EXPLAIN` (never executed) and turns the ones over the threshold
//! into findings. When no estimate can be had (the table does not exist
//! yet, a parameter, a failed transaction), the WHERE rule stands.

use serde::Deserialize;

use super::finding::{Finding, Kind, ScanReport};
use super::token::{qualified_name, tokens};

/// Candidates kept per scan; later ones keep the WHERE rule, so memory
/// and the helper query stay small.
pub const MAX_CANDIDATES: usize = 100;

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
/// findings. `explain` runs `EXPLAIN (FORMAT JSON)` statements, all at
/// once (one round trip on a live connection), and gives each one's
/// output in order, or `None` where it failed (the WHERE rule then
/// stands).
pub fn add_bulk_findings(
    report: &mut ScanReport,
    threshold: &Threshold,
    explain: impl FnOnce(&[String]) -> Vec<Option<String>>,
) {
    let candidates = std::mem::take(&mut report.estimate_candidates);
    let statements: Vec<String> = candidates
        .iter()
        .flat_map(|c| [c.explain_statement(), c.explain_table()])
        .collect();
    let plans = explain(&statements);
    for (i, c) in candidates.iter().enumerate() {
        let rows = |k: usize| {
            plans
                .get(2 * i + k)
                .and_then(Option::as_deref)
                .and_then(planned_rows)
        };
        let Some(changed) = rows(0) else {
            continue;
        };
        if threshold.is_bulk(changed, rows(1)) {
            report.push_finding(c.finding());
        }
    }
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
        add_bulk_findings(&mut report, &Threshold::default(), |statements| {
            assert_eq!(statements.len(), 6);
            assert_eq!(statements[1], "EXPLAIN (FORMAT JSON) SELECT FROM big");
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
}
