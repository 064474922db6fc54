//! alembic's version table: which revisions a database is at, read with
//! one catalog query through the real psql.

use crate::pgtools::{PgTools, QueryError};
use crate::target::{Target, redact};

/// One query for the version table: selecting from a missing table is an
/// error, not an empty result, so the table is looked up first (on the
/// search_path, as alembic looks) and only read, through `query_to_xml`,
/// when it exists. One psql start instead of two: this runs before every
/// upgrade, including the ones with nothing to apply.
pub const VERSION_QUERY: &str = "select case when to_regclass('alembic_version') is null then '' \
     else array_to_string(xpath('//version_num/text()', \
     query_to_xml('select version_num from alembic_version order by 1', false, false, ''))::text[], ' ') end";

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
}
