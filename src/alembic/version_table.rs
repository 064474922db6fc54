//! alembic's version table: which revisions a database is at, and whether
//! it holds any user data at all, read with one catalog query through the
//! real psql.

use crate::pgtools::{PgTools, QueryError};
use crate::target::{Target, redact};

/// One query for the version table: selecting from a missing table is an
/// error, not an empty result, so the table is looked up first (on the
/// search_path, as alembic looks) and only read, through `query_to_xml`,
/// when it exists. One psql start instead of two: this runs before every
/// upgrade, including the ones with nothing to apply.
///
/// The second field says whether the database holds anything a migration
/// could lose: a table, partitioned table or materialized view outside
/// the system schemas other than the version table itself, or a large
/// object. An upgrade of a database without any has nothing to back up.
pub const VERSION_QUERY: &str = "select case when to_regclass('alembic_version') is null then '' \
     else array_to_string(xpath('//version_num/text()', \
     query_to_xml('select version_num from alembic_version order by 1', false, false, ''))::text[], ' ') end, \
     exists (select 1 from pg_class c join pg_namespace n on n.oid = c.relnamespace \
     where c.relkind in ('r', 'p', 'm') \
     and n.nspname not in ('pg_catalog', 'information_schema') \
     and n.nspname not like 'pg\\_toast%' and n.nspname not like 'pg\\_temp\\_%' \
     and c.oid is distinct from to_regclass('alembic_version')) \
     or exists (select 1 from pg_largeobject_metadata)";

/// What `VERSION_QUERY` tells about a database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseState {
    /// The revisions in the version table; empty when nothing is applied.
    pub revisions: Vec<String>,
    /// False only when the database certainly holds no user table and no
    /// large object (the version table aside).
    pub holds_user_data: bool,
}

/// The database's revisions and whether it holds user data, in one query.
pub fn database_state(tools: &PgTools, target: &Target) -> Result<DatabaseState, String> {
    let rows = tools.query(target, VERSION_QUERY).map_err(query_error)?;
    Ok(state_of(rows))
}

/// The state in `VERSION_QUERY`'s rows; anything but a clear `f` in the
/// second field counts as holding data.
pub fn state_of(rows: Vec<Vec<String>>) -> DatabaseState {
    let holds_user_data = rows
        .first()
        .and_then(|r| r.get(1))
        .is_none_or(|v| v.trim() != "f");
    DatabaseState {
        revisions: revisions_of(rows),
        holds_user_data,
    }
}

/// The revisions in the database's version table. An absent table means
/// nothing has been applied yet (an empty list).
pub fn current_revisions(tools: &PgTools, target: &Target) -> Result<Vec<String>, String> {
    let rows = tools.query(target, VERSION_QUERY).map_err(query_error)?;
    Ok(revisions_of(rows))
}

/// The revisions in `VERSION_QUERY`'s rows.
pub fn revisions_of(rows: Vec<Vec<String>>) -> Vec<String> {
    let field = rows
        .into_iter()
        .next()
        .and_then(|r| r.into_iter().next())
        .unwrap_or_default();
    field.split_whitespace().map(xml_unescape).collect()
}

/// Undoes the escaping of XML text content (revision ids are normally
/// plain, but the version table holds whatever was written to it).
fn xml_unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&#x0D;", "\r")
        .replace("&amp;", "&")
}

fn query_error(e: QueryError) -> String {
    match e {
        QueryError::Failed { detail, .. } => redact(&detail),
        QueryError::Spawn(p, e) => format!("{}: {e}", p.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_table_text_is_unescaped() {
        assert_eq!(xml_unescape("0004"), "0004");
        assert_eq!(xml_unescape("a&amp;lt;&lt;b&gt;"), "a&lt;<b>");
    }

    #[test]
    fn only_a_clear_no_means_no_user_data() {
        let row = |a: &str, b: &str| vec![vec![a.to_owned(), b.to_owned()]];
        let empty = state_of(row("", "f"));
        assert_eq!(empty.revisions, Vec::<String>::new());
        assert!(!empty.holds_user_data);
        let at = state_of(row("0002", "t"));
        assert_eq!(at.revisions, vec!["0002".to_owned()]);
        assert!(at.holds_user_data);
        assert!(state_of(vec![vec!["0002".to_owned()]]).holds_user_data);
        assert!(state_of(Vec::new()).holds_user_data);
    }
}
