//! A small tokenizer over one statement's bytes, for the classifier's
//! token-level work: finding the first keywords, the token-level fallback
//! when sqlparser cannot parse, and the strings inside DO blocks. It follows
//! the same quoting rules as the lexer (standard strings, `E''` escapes,
//! dollar quotes, quoted identifiers, nested comments) and never allocates;
//! an unterminated construct simply runs to the end of the text.

use std::borrow::Cow;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tok {
    /// An unquoted identifier or keyword.
    Word,
    /// `"..."`, or `U&"..."` with its `UESCAPE 'c'` if any (all in the
    /// token's text).
    QuotedIdent,
    /// `'...'`, `E'...'`, `U&'...'` (prefix and `UESCAPE` included), or
    /// `$tag$...$tag$`.
    Str,
    Number,
    /// `$1`, or a psql variable reference left unsubstituted (`:name`).
    Param,
    /// Any other single byte: `( ) , ; . *` and operator characters.
    Punct,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token<'a> {
    pub kind: Tok,
    pub text: &'a [u8],
    /// Byte offset of the token in the tokenized text.
    pub offset: usize,
}

impl<'a> Token<'a> {
    /// True for an unquoted word equal to `keyword` (ASCII, any case).
    pub fn is(&self, keyword: &str) -> bool {
        self.kind == Tok::Word && self.text.eq_ignore_ascii_case(keyword.as_bytes())
    }

    pub fn is_punct(&self, c: u8) -> bool {
        self.kind == Tok::Punct && self.text == [c]
    }

    /// True for a token that can name an object (identifier, quoted or not).
    pub fn is_name(&self) -> bool {
        matches!(self.kind, Tok::Word | Tok::QuotedIdent)
    }

    /// The identifier this token names, folded the way PostgreSQL folds it:
    /// unquoted ASCII letters go to lower case, quoted names stay as written
    /// with `""` undoubled.
    pub fn ident(&self) -> String {
        match self.kind {
            Tok::QuotedIdent if is_unicode_escaped(self.text) => {
                String::from_utf8_lossy(&unicode_value(self.text)).into_owned()
            }
            Tok::QuotedIdent => {
                let inner = strip_quotes(self.text, b'"');
                let s = String::from_utf8_lossy(inner);
                s.replace("\"\"", "\"")
            }
            _ => String::from_utf8_lossy(self.text).to_ascii_lowercase(),
        }
    }

    /// The value of a string token: quotes removed, `''` undoubled, and for
    /// `E''` strings the common backslash escapes undone.
    pub fn string_value(&self) -> Cow<'a, [u8]> {
        let t = self.text;
        if is_unicode_escaped(t) {
            return Cow::Owned(unicode_value(t));
        }
        if t.first() == Some(&b'$') {
            // $tag$ ... $tag$: the tag is the prefix up to the second `$`.
            let tag_len = t[1..]
                .iter()
                .position(|&b| b == b'$')
                .map_or(t.len(), |p| p + 2);
            let delim = &t[..tag_len];
            let closed = t.len() >= 2 * tag_len && t.ends_with(delim);
            let end = if closed { t.len() - tag_len } else { t.len() };
            return Cow::Borrowed(&t[tag_len..end]);
        }
        let escapes = matches!(t.first(), Some(b'e' | b'E'));
        let inner = strip_quotes(if escapes { &t[1..] } else { t }, b'\'');
        let needs_unescaping = inner.contains(&b'\'') || (escapes && inner.contains(&b'\\'));
        if !needs_unescaping {
            return Cow::Borrowed(inner);
        }
        let mut out = Vec::with_capacity(inner.len());
        let mut i = 0;
        while i < inner.len() {
            let b = inner[i];
            if b == b'\'' && inner.get(i + 1) == Some(&b'\'') {
                out.push(b'\'');
                i += 2;
            } else if escapes && b == b'\\' && i + 1 < inner.len() {
                out.push(match inner[i + 1] {
                    b'n' => b'\n',
                    b't' => b'\t',
                    b'r' => b'\r',
                    other => other,
                });
                i += 2;
            } else {
                out.push(b);
                i += 1;
            }
        }
        Cow::Owned(out)
    }
}

/// True for a `U&"..."` or `U&'...'` token.
fn is_unicode_escaped(text: &[u8]) -> bool {
    matches!(text, [b'u' | b'U', b'&', b'"' | b'\'', ..])
}

/// The value of a `U&"..."` or `U&'...'` token (with an optional
/// `UESCAPE 'c'` after it), decoded as PostgreSQL decodes it: `\XXXX` and
/// `\+XXXXXX` are code points, `\\` is a backslash (with `c` in place of
/// the backslash under UESCAPE), doubled quotes are one. An escape that
/// does not decode is kept as written: the server would refuse the
/// statement anyway.
fn unicode_value(text: &[u8]) -> Vec<u8> {
    let quote = text[2];
    let mut close = text.len();
    let mut i = 3;
    while i < text.len() {
        if text[i] == quote {
            if text.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            close = i;
            break;
        }
        i += 1;
    }
    let inner = &text[3..close];
    let rest = &text[(close + 1).min(text.len())..];
    let escape = match memchr::memchr(b'\'', rest) {
        Some(p) if rest.get(p + 2) == Some(&b'\'') => rest[p + 1],
        _ => b'\\',
    };
    let hex = |digits: &[u8]| -> Option<char> {
        if !digits.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        char::from_u32(u32::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()?)
    };
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    while i < inner.len() {
        let b = inner[i];
        if b == quote && inner.get(i + 1) == Some(&quote) {
            out.push(quote);
            i += 2;
        } else if b == escape && inner.get(i + 1) == Some(&escape) {
            out.push(escape);
            i += 2;
        } else if b == escape {
            let (digits, skip) = if inner.get(i + 1) == Some(&b'+') {
                (inner.get(i + 2..i + 8), 8)
            } else {
                (inner.get(i + 1..i + 5), 5)
            };
            match digits.and_then(hex) {
                Some(c) => {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    i += skip;
                }
                None => {
                    out.push(b);
                    i += 1;
                }
            }
        } else {
            out.push(b);
            i += 1;
        }
    }
    out
}

/// Removes one leading and one trailing `quote`, when present (an
/// unterminated token lacks the closing one).
fn strip_quotes(text: &[u8], quote: u8) -> &[u8] {
    let text = text.strip_prefix(&[quote]).unwrap_or(text);
    text.strip_suffix(&[quote]).unwrap_or(text)
}

/// Bytes that may start an unquoted identifier (PostgreSQL treats every
/// byte with the high bit set as a letter).
pub fn ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

/// Bytes that may continue an unquoted identifier.
pub fn ident_cont(b: u8) -> bool {
    ident_start(b) || b.is_ascii_digit() || b == b'$'
}

/// Bytes allowed in a psql variable name.
pub fn variable_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

pub struct Tokenizer<'a> {
    src: &'a [u8],
    pos: usize,
}

impl<'a> Tokenizer<'a> {
    pub fn new(src: &'a [u8]) -> Self {
        Tokenizer { src, pos: 0 }
    }

    fn at(&self, i: usize) -> Option<u8> {
        self.src.get(i).copied()
    }

    /// Skips whitespace and comments. Returns false at end of input.
    fn skip_trivia(&mut self) -> bool {
        loop {
            match self.at(self.pos) {
                None => return false,
                Some(b) if b.is_ascii_whitespace() || b == 0x0b => self.pos += 1,
                Some(b'-') if self.at(self.pos + 1) == Some(b'-') => {
                    self.pos = memchr::memchr(b'\n', &self.src[self.pos..])
                        .map_or(self.src.len(), |p| self.pos + p + 1);
                }
                Some(b'/') if self.at(self.pos + 1) == Some(b'*') => {
                    self.pos = block_comment_end(self.src, self.pos);
                }
                Some(_) => return true,
            }
        }
    }

    fn quoted(&mut self, start: usize, quote: u8, escapes: bool) -> usize {
        // `start` is the index of the opening quote.
        let mut i = start + 1;
        while i < self.src.len() {
            let b = self.src[i];
            if escapes && b == b'\\' {
                i += 2;
                continue;
            }
            if b == quote {
                if self.at(i + 1) == Some(quote) {
                    i += 2;
                    continue;
                }
                return i + 1;
            }
            i += 1;
        }
        self.src.len()
    }

    /// Just past a `UESCAPE 'c'` that follows a Unicode-escaped token ending
    /// at `end`, or `end` when there is none.
    fn uescape_end(&self, end: usize) -> usize {
        let mut probe = Tokenizer {
            src: self.src,
            pos: end,
        };
        if !probe.skip_trivia() {
            return end;
        }
        let word_start = probe.pos;
        let word_end = word_start + 7;
        if !self
            .src
            .get(word_start..word_end)
            .is_some_and(|w| w.eq_ignore_ascii_case(b"uescape"))
            || self.at(word_end).is_some_and(ident_cont)
        {
            return end;
        }
        probe.pos = word_end;
        if !probe.skip_trivia() || self.at(probe.pos) != Some(b'\'') {
            return end;
        }
        let open = probe.pos;
        probe.quoted(open, b'\'', false)
    }

    /// If a dollar quote opens at `start`, returns the index just past its
    /// end (or the end of input when unterminated).
    fn dollar_quoted(&self, start: usize) -> Option<usize> {
        let mut i = start + 1;
        if let Some(b) = self.at(i)
            && b != b'$'
        {
            if !ident_start(b) {
                return None;
            }
            while self.at(i).is_some_and(|b| ident_cont(b) && b != b'$') {
                i += 1;
            }
            if self.at(i) != Some(b'$') {
                return None;
            }
        }
        if self.at(i) != Some(b'$') {
            return None;
        }
        let delim = &self.src[start..=i];
        let body = i + 1;
        Some(
            memchr::memmem::find(&self.src[body..], delim)
                .map_or(self.src.len(), |p| body + p + delim.len()),
        )
    }
}

/// Index just past the nested block comment that opens at `start`.
pub fn block_comment_end(src: &[u8], start: usize) -> usize {
    let mut depth = 0usize;
    let mut i = start;
    while i + 1 < src.len() {
        match (src[i], src[i + 1]) {
            (b'/', b'*') => {
                depth += 1;
                i += 2;
            }
            (b'*', b'/') => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return i;
                }
            }
            _ => i += 1,
        }
    }
    src.len()
}

impl<'a> Iterator for Tokenizer<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        if !self.skip_trivia() {
            return None;
        }
        let start = self.pos;
        let b = self.src[start];
        let (kind, end) = match b {
            b'\'' => (Tok::Str, self.quoted(start, b'\'', false)),
            b'"' => (Tok::QuotedIdent, self.quoted(start, b'"', false)),
            b'e' | b'E' if self.at(start + 1) == Some(b'\'') => {
                (Tok::Str, self.quoted(start + 1, b'\'', true))
            }
            b'u' | b'U'
                if self.at(start + 1) == Some(b'&')
                    && matches!(self.at(start + 2), Some(b'"' | b'\'')) =>
            {
                let quote = self.src[start + 2];
                let closed = self.quoted(start + 2, quote, false);
                let end = self.uescape_end(closed);
                let kind = if quote == b'"' {
                    Tok::QuotedIdent
                } else {
                    Tok::Str
                };
                (kind, end)
            }
            b'$' => match self.dollar_quoted(start) {
                Some(end) => (Tok::Str, end),
                None => {
                    let mut i = start + 1;
                    while self.at(i).is_some_and(|b| b.is_ascii_digit()) {
                        i += 1;
                    }
                    (
                        if i > start + 1 {
                            Tok::Param
                        } else {
                            Tok::Punct
                        },
                        i,
                    )
                }
            },
            b':' if self.at(start + 1).is_some_and(variable_char) => {
                let mut i = start + 1;
                while self.at(i).is_some_and(variable_char) {
                    i += 1;
                }
                (Tok::Param, i)
            }
            b if ident_start(b) => {
                let mut i = start + 1;
                while self.at(i).is_some_and(ident_cont) {
                    i += 1;
                }
                (Tok::Word, i)
            }
            b if b.is_ascii_digit() => {
                let mut i = start + 1;
                while self
                    .at(i)
                    .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_')
                {
                    i += 1;
                }
                (Tok::Number, i)
            }
            _ => (Tok::Punct, start + 1),
        };
        self.pos = end;
        Some(Token {
            kind,
            text: &self.src[start..end],
            offset: start,
        })
    }
}

/// All tokens of `src`, collected. Statements handed to the classifier are
/// capped in size, so this stays small.
pub fn tokens(src: &[u8]) -> Vec<Token<'_>> {
    Tokenizer::new(src).collect()
}

/// Parses a possibly qualified name (`a`, `s.a`, `"S"."A"`) starting at
/// `toks[i]`. Returns the folded name and the index after it.
pub fn qualified_name(toks: &[Token<'_>], mut i: usize) -> Option<(String, usize)> {
    let first = toks.get(i)?;
    if !first.is_name() {
        return None;
    }
    let mut name = first.ident();
    i += 1;
    while toks.get(i).is_some_and(|t| t.is_punct(b'.')) {
        match toks.get(i + 1) {
            Some(t) if t.is_name() => {
                name.push('.');
                name.push_str(&t.ident());
                i += 2;
            }
            _ => break,
        }
    }
    Some((name, i))
}

/// Index of the token after the balanced parenthesised group opening at
/// `toks[i]` (which must be `(`), or `toks.len()` when it never closes.
pub fn skip_parens(toks: &[Token<'_>], mut i: usize) -> usize {
    let mut depth = 0usize;
    while let Some(t) = toks.get(i) {
        if t.is_punct(b'(') {
            depth += 1;
        } else if t.is_punct(b')') {
            depth = depth.saturating_sub(1);
            if depth == 0 {
                return i + 1;
            }
        }
        i += 1;
    }
    toks.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<(Tok, String)> {
        tokens(src.as_bytes())
            .iter()
            .map(|t| (t.kind, String::from_utf8_lossy(t.text).into_owned()))
            .collect()
    }

    #[test]
    fn comments_are_skipped_and_nest() {
        let toks = kinds("drop /* a /* b */ c */ -- x\n table");
        assert_eq!(
            toks,
            vec![(Tok::Word, "drop".into()), (Tok::Word, "table".into())]
        );
    }

    #[test]
    fn strings_of_every_flavour() {
        let toks = kinds(r"'it''s' E'a\'b' $$x;y$$ $q$ $$ $q$ U&'d' $1");
        let k: Vec<Tok> = toks.iter().map(|t| t.0).collect();
        assert_eq!(
            k,
            vec![Tok::Str, Tok::Str, Tok::Str, Tok::Str, Tok::Str, Tok::Param]
        );
    }

    #[test]
    fn string_values_are_unescaped() {
        let toks = tokens(br"'it''s' E'a\'b\n' $t$x$y$t$ 'open");
        let values: Vec<Vec<u8>> = toks.iter().map(|t| t.string_value().into_owned()).collect();
        assert_eq!(
            values,
            vec![
                b"it's".to_vec(),
                b"a'b\n".to_vec(),
                b"x$y".to_vec(),
                b"open".to_vec()
            ]
        );
    }

    #[test]
    fn identifiers_fold_like_postgres() {
        let toks = tokens(br#"USERS "Users" "a""b" public"#);
        let names: Vec<String> = toks.iter().map(Token::ident).collect();
        assert_eq!(names, vec!["users", "Users", "a\"b", "public"]);
    }

    #[test]
    fn qualified_names() {
        let toks = tokens(br#"Public."Users" , x"#);
        assert_eq!(
            qualified_name(&toks, 0),
            Some(("public.Users".to_string(), 3))
        );
        assert_eq!(qualified_name(&toks, 3), None);
    }

    #[test]
    fn unicode_escapes_name_what_postgres_sees() {
        let toks = tokens(
            br#"U&"\0075sers" u&"!0075sers" UESCAPE '!' U&"a""\+00004E\\" U&"\zz" U&'\0044ROP' uescape_x"#,
        );
        let names: Vec<String> = toks.iter().map(Token::ident).collect();
        assert_eq!(
            names,
            vec![
                "users",
                "users",
                "a\"N\\",
                "\\zz",
                "u&'\\0044rop'",
                "uescape_x"
            ]
        );
        assert_eq!(toks[4].string_value().as_ref(), b"DROP");
        let plain = tokens(br#"U & "x""#);
        assert_eq!(plain.len(), 3, "with spaces, U& is no prefix");
    }

    #[test]
    fn dollar_inside_identifier_is_not_a_quote() {
        let toks = kinds("a$b$ c");
        assert_eq!(
            toks,
            vec![(Tok::Word, "a$b$".into()), (Tok::Word, "c".into())]
        );
    }
}
