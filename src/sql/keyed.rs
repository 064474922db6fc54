//! The fast path for the statements an application-style loop sends by the
//! thousand: `DELETE FROM t WHERE id = 5` and `UPDATE t SET … WHERE id = $1`.
//!
//! Inside psql every DELETE and UPDATE is checked, and the full path (the
//! scanner, then sqlparser to find the columns a WHERE pins) costs tens of
//! microseconds, as much as the statement's own round trip on a local
//! server. This module recognises, on bytes and without allocating much,
//! exactly one simple shape and nothing else:
//!
//! ```text
//! DELETE FROM [ONLY] name[.name] WHERE cond [AND cond]... [;]
//! UPDATE [ONLY] name[.name] SET <expressions> WHERE cond [AND cond]... [;]
//! cond: column = constant | constant = column
//! ```
//!
//! with unquoted identifiers, numbers, simple string literals and `$n`
//! parameters. Such a statement is never destructive by its text (its
//! WHERE names a column), and when the pinned columns cover a unique key it
//! changes at most one row, so it is never bulk either. Anything else —
//! quoted names, comments, a second statement, `FROM`/`USING`/`RETURNING`,
//! `OR`, a string with a backslash — is `None`, and the full path decides.

/// A recognised statement: its table as written and the columns its WHERE
/// sets equal to a constant (unquoted names, folded to lower case as
/// PostgreSQL folds them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyed {
    pub table: String,
    pub columns: Vec<String>,
}

/// The shape above, or `None`.
pub fn keyed_statement(sql: &[u8]) -> Option<Keyed> {
    let tokens = tokens(sql)?;
    let mut at = Cursor {
        tokens: &tokens,
        i: 0,
    };
    let table = if at.word("delete") {
        at.expect_word("from")?;
        at.table()?
    } else if at.word("update") {
        let table = at.table()?;
        at.expect_word("set")?;
        at.skip_set_list()?;
        table
    } else {
        return None;
    };
    at.expect_word("where")?;
    let mut columns = Vec::new();
    loop {
        columns.push(at.condition()?);
        if !at.word("and") {
            break;
        }
    }
    at.eat(&Token::Semicolon);
    at.done().then_some(Keyed { table, columns })
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// An unquoted identifier or keyword, lower-cased.
    Word(String),
    /// A number, string literal or `$n` parameter.
    Constant,
    Dot,
    Equals,
    Semicolon,
    Open,
    Close,
    /// Any other operator or punctuation that may appear in a SET list.
    Other,
}

/// Splits `sql` into tokens; `None` on anything the fast path does not
/// understand for certain.
fn tokens(sql: &[u8]) -> Option<Vec<Token>> {
    let mut out = Vec::with_capacity(16);
    let mut i = 0;
    while i < sql.len() {
        let b = sql[i];
        match b {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                let start = i;
                while i < sql.len() && (sql[i].is_ascii_alphanumeric() || sql[i] == b'_') {
                    i += 1;
                }
                // `E'…'`, `B'…'`, `U&'…'` and the like: not simple strings.
                if i < sql.len() && (sql[i] == b'\'' || sql[i] == b'&' || sql[i] == b'$') {
                    return None;
                }
                let word = std::str::from_utf8(&sql[start..i]).ok()?;
                out.push(Token::Word(word.to_ascii_lowercase()));
            }
            b'0'..=b'9' => {
                while i < sql.len() && (sql[i].is_ascii_digit() || sql[i] == b'.') {
                    i += 1;
                }
                if i < sql.len() && (sql[i].is_ascii_alphabetic() || sql[i] == b'_') {
                    return None; // 1e5, 0x1F, 12abc: leave them to the full path
                }
                out.push(Token::Constant);
            }
            b'\'' => {
                i += 1;
                loop {
                    match sql.get(i)? {
                        // Whether a backslash escapes depends on a setting.
                        b'\\' => return None,
                        b'\'' if sql.get(i + 1) == Some(&b'\'') => i += 2,
                        b'\'' => {
                            i += 1;
                            break;
                        }
                        _ => i += 1,
                    }
                }
                out.push(Token::Constant);
            }
            b'$' => {
                i += 1;
                let start = i;
                while i < sql.len() && sql[i].is_ascii_digit() {
                    i += 1;
                }
                if i == start {
                    return None; // a dollar quote
                }
                out.push(Token::Constant);
            }
            // `--` and `/*` start comments: left to the full path.
            b'-' | b'/' if matches!(sql.get(i + 1), Some(b'-' | b'*')) => return None,
            b'.' | b'=' | b';' | b'(' | b')' | b'+' | b'-' | b'/' | b'*' | b',' | b'<' | b'>'
            | b'%' | b':' => {
                out.push(match b {
                    b'.' => Token::Dot,
                    b'=' => Token::Equals,
                    b';' => Token::Semicolon,
                    b'(' => Token::Open,
                    b')' => Token::Close,
                    _ => Token::Other,
                });
                i += 1;
            }
            _ => return None,
        }
    }
    Some(out)
}

struct Cursor<'a> {
    tokens: &'a [Token],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.i)
    }

    fn eat(&mut self, token: &Token) -> bool {
        let hit = self.peek() == Some(token);
        if hit {
            self.i += 1;
        }
        hit
    }

    fn word(&mut self, word: &str) -> bool {
        let hit = matches!(self.peek(), Some(Token::Word(w)) if w == word);
        if hit {
            self.i += 1;
        }
        hit
    }

    fn expect_word(&mut self, word: &str) -> Option<()> {
        self.word(word).then_some(())
    }

    fn name(&mut self) -> Option<String> {
        match self.peek()? {
            Token::Word(w) if !RESERVED.contains(&w.as_str()) => {
                let w = w.clone();
                self.i += 1;
                Some(w)
            }
            _ => None,
        }
    }

    /// `[ONLY] name[.name]`, followed directly by SET or WHERE (an alias
    /// would let a WHERE name the table another way).
    fn table(&mut self) -> Option<String> {
        self.word("only");
        let mut name = self.name()?;
        if self.eat(&Token::Dot) {
            name.push('.');
            name.push_str(&self.name()?);
        }
        match self.peek()? {
            Token::Word(w) if w == "set" || w == "where" => Some(name),
            _ => None,
        }
    }

    /// Skips the SET list up to the WHERE at depth 0. A `FROM`,
    /// `RETURNING` or `;` before it, or unbalanced brackets, is a shape
    /// this path does not take.
    fn skip_set_list(&mut self) -> Option<()> {
        let mut depth = 0usize;
        loop {
            match self.peek()? {
                Token::Open => depth += 1,
                Token::Close => depth = depth.checked_sub(1)?,
                Token::Semicolon => return None,
                Token::Word(w) if depth == 0 && w == "where" => return Some(()),
                Token::Word(w) if depth == 0 && (w == "from" || w == "returning") => {
                    return None;
                }
                _ => {}
            }
            self.i += 1;
        }
    }

    /// `column = constant` or `constant = column`: the column.
    fn condition(&mut self) -> Option<String> {
        if self.eat(&Token::Constant) {
            self.eat(&Token::Equals).then_some(())?;
            return self.name();
        }
        let column = self.name()?;
        self.eat(&Token::Equals).then_some(())?;
        self.eat(&Token::Constant).then_some(column)
    }

    fn done(&self) -> bool {
        self.i == self.tokens.len()
    }
}

/// Words that cannot be a table or column name here: a statement using
/// them in those places is not the simple shape.
const RESERVED: &[&str] = &[
    "and",
    "or",
    "not",
    "where",
    "set",
    "from",
    "only",
    "returning",
    "using",
    "null",
    "true",
    "false",
    "current_user",
    "session_user",
    "current_date",
    "current_time",
    "current_timestamp",
    "localtime",
    "localtimestamp",
    "user",
    "default",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn keyed(sql: &str) -> Option<(String, Vec<String>)> {
        keyed_statement(sql.as_bytes()).map(|k| (k.table, k.columns))
    }

    fn hit(table: &str, columns: &[&str]) -> Option<(String, Vec<String>)> {
        Some((
            table.to_owned(),
            columns.iter().map(|c| c.to_string()).collect(),
        ))
    }

    #[test]
    fn the_simple_shapes_are_recognised() {
        assert_eq!(
            keyed("DELETE FROM bench WHERE id = 5"),
            hit("bench", &["id"])
        );
        assert_eq!(
            keyed("delete from bench where id = 5;\n"),
            hit("bench", &["id"])
        );
        assert_eq!(
            keyed("DELETE FROM Bench WHERE 5 = ID"),
            hit("bench", &["id"])
        );
        assert_eq!(
            keyed("DELETE FROM ONLY app.orders WHERE a = $1 AND b = 'x''y'"),
            hit("app.orders", &["a", "b"])
        );
        assert_eq!(
            keyed("UPDATE pgbench_accounts SET abalance = abalance + -5 WHERE aid = 42;"),
            hit("pgbench_accounts", &["aid"])
        );
        assert_eq!(
            keyed("UPDATE t SET a = (SELECT max(x) FROM u WHERE u.k = 1), b = 2.5 WHERE id = 7"),
            hit("t", &["id"])
        );
    }

    #[test]
    fn anything_else_is_left_to_the_full_path() {
        for sql in [
            // No WHERE, or a WHERE that pins nothing.
            "DELETE FROM bench",
            "DELETE FROM bench WHERE id > 5",
            "DELETE FROM bench WHERE id = 5 OR id = 6",
            "DELETE FROM bench WHERE id IN (5, 6)",
            "DELETE FROM bench WHERE id = other",
            "DELETE FROM bench WHERE lower(email) = 'x'",
            "DELETE FROM bench WHERE id = 5::bigint",
            "DELETE FROM bench WHERE id = -5",
            "DELETE FROM bench WHERE id = current_user",
            "DELETE FROM bench WHERE NOT id = 5",
            // A second statement, comments, odd literals and names.
            "DELETE FROM bench WHERE id = 5; DROP TABLE bench",
            "DELETE FROM bench WHERE id = 5 -- note",
            "DELETE FROM bench WHERE id = 5 /* note */",
            "DELETE FROM bench WHERE id = E'5'",
            "DELETE FROM bench WHERE name = 'a\\'; DROP TABLE bench; --'",
            "DELETE FROM bench WHERE id = $$5$$",
            "DELETE FROM \"Bench\" WHERE id = 5",
            "DELETE FROM bench WHERE id = 1e5",
            "DELETE FROM bench WHERE id = 5 AND",
            "DELETE FROM bench WHERE id = 'unterminated",
            // Other shapes of DELETE and UPDATE.
            "DELETE FROM bench b WHERE b.id = 5",
            "DELETE FROM bench USING other WHERE id = 5",
            "DELETE FROM bench WHERE id = 5 RETURNING *",
            "UPDATE bench SET v = 1 FROM other WHERE id = 5",
            "UPDATE bench SET v = 1",
            "UPDATE bench SET v = (1 WHERE id = 5",
            "UPDATE bench SET v = 1 WHERE id = 5 RETURNING v",
            "WITH x AS (SELECT 1) DELETE FROM bench WHERE id = 5",
            "EXPLAIN ANALYZE DELETE FROM bench WHERE id = 5",
            "TRUNCATE bench",
            "DROP TABLE bench",
            "",
        ] {
            assert_eq!(keyed(sql), None, "{sql}");
        }
    }
}
