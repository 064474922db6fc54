//! The psql-script lexer: splits a byte stream into the statements psql
//! would send to the server and the backslash meta-commands it would run,
//! following psql's own lexer (src/bin/psql/psqlscan.l and
//! psqlscanslash.l in PostgreSQL) closely enough that the split points and
//! start lines agree.
//!
//! It is a push-style state machine: `feed` takes bytes in chunks of any
//! size, `finish` marks the end of input, and everything it finds goes to a
//! `Sink`. All state survives chunk boundaries, so memory stays constant: a
//! statement's text is kept up to `STATEMENT_CAP` bytes (the rest is lexed
//! but not kept and the statement is marked truncated), and `COPY ... FROM
//! stdin` data is skipped with a substring search without being tokenised.
//!
//! psql variables (`:name`, `:'name'`, `:"name"`) are substituted outside
//! quotes when the sink knows them; a plain `:name` value is lexed as if it
//! had been typed, as psql does.

use memchr::memmem;

use super::key::KeyHasher;
use super::token::{ident_cont, ident_start, variable_char};

/// Bytes of statement text kept for classification.
pub const STATEMENT_CAP: usize = 1 << 20;
/// Bytes of a meta-command line kept.
const META_CAP: usize = 64 << 10;
/// Longest dollar-quote tag accepted; a longer run is treated as text.
const TAG_CAP: usize = 256;
/// Longest variable name looked up.
const VARIABLE_NAME_CAP: usize = 256;
const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

// Byte classes for the fast path in Normal state.
const PLAIN: u8 = 0;
const IDENT: u8 = 1;
const NEWLINE: u8 = 2;
const OPEN: u8 = 3;
const CLOSE: u8 = 4;
/// May start a quote, comment, variable, meta-command or end a statement.
const SPECIAL: u8 = 5;

const BYTE_CLASS: [u8; 256] = {
    let mut table = [PLAIN; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = if c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80 {
            IDENT
        } else {
            match c {
                b'\n' => NEWLINE,
                b'(' => OPEN,
                b')' => CLOSE,
                b'\'' | b'"' | b'-' | b'/' | b':' | b'\\' | b';' => SPECIAL,
                _ => PLAIN,
            }
        };
        b += 1;
    }
    table
};
/// How deep variable values may refer to further variables.
const VARIABLE_DEPTH: usize = 16;

/// What ended a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Terminator {
    /// `;` outside parentheses and function bodies.
    Semicolon,
    /// `\;`: the text goes to the server together with what follows, but
    /// is a statement of its own.
    Combined,
    /// `\g`, `\gx`, `\gset`, `\gdesc`, `\crosstabview`, `\watch`.
    Go,
    /// `\gexec`: the query runs and every value it returns runs as SQL.
    Gexec,
    /// End of input: psql sends an unterminated last statement too.
    EndOfInput,
}

/// One statement as psql would send it.
#[derive(Debug)]
pub struct Statement<'a> {
    /// The text, variables substituted, without the terminator, at most
    /// `STATEMENT_CAP` bytes.
    pub text: &'a [u8],
    /// 1-based line of the statement's first token.
    pub line: u64,
    pub terminator: Terminator,
    /// The text was longer than `STATEMENT_CAP` and only its head is kept.
    pub truncated: bool,
    /// For a truncated statement, the key of its whole text
    /// (`key::statement_key` of all of it, hashed as it streamed past).
    pub whole_key: Option<String>,
}

/// One backslash command, other than those the lexer handles itself (the
/// `\g` family, `\r`, `\copy`).
#[derive(Debug)]
pub struct MetaCommand<'a> {
    /// The command name without the backslash (`i`, `set`, ...).
    pub name: &'a [u8],
    /// The raw argument text, trimmed, variables not yet substituted.
    pub args: &'a [u8],
    pub line: u64,
}

/// A quoted construct still open at the end of input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unterminated {
    pub what: &'static str,
    /// Line where it opened.
    pub line: u64,
}

/// Where the lexer sends what it finds, and where it looks up variables.
pub trait Sink {
    /// The value of a psql variable, if known.
    fn variable(&self, name: &[u8]) -> Option<Vec<u8>>;
    fn statement(&mut self, statement: &Statement<'_>);
    fn meta(&mut self, command: &MetaCommand<'_>);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QuoteEnd {
    /// Inside the quoted text.
    Open,
    /// Just saw a backslash in an `E''` string.
    Backslash,
    /// Just saw the quote character: either the end or the first of a pair.
    Quote,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CopyPhase {
    LineStart,
    Backslash,
    Dot,
    DotCr,
    Mid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Normal,
    /// Saw `-`: a comment or a minus.
    Dash,
    /// Saw `/`: a comment or a slash.
    Slash,
    LineComment,
    BlockComment {
        depth: u32,
        prev: u8,
    },
    Quote {
        escapes: bool,
        end: QuoteEnd,
    },
    QuotedIdent {
        end: QuoteEnd,
    },
    /// After a `$` that may open a dollar quote; the tag so far is in `tag`.
    DollarTag,
    /// Inside a dollar quote whose delimiter is in `tag`; `matched` bytes of
    /// the closing delimiter have been seen.
    Dollar {
        matched: usize,
    },
    /// Saw `:` outside quotes.
    Colon,
    /// Reading `:name`; the name is in `var`.
    ColonName,
    /// Reading `:'name'` or `:"name"`.
    ColonQuoted {
        quote: u8,
    },
    /// Saw `\` outside quotes.
    Backslash,
    /// Reading a meta-command line into `meta`.
    Meta {
        quote: u8,
        escape: bool,
        backslash: bool,
    },
    /// Skipping `COPY ... FROM stdin` data up to `\.`.
    Copy(CopyPhase),
}

pub struct Lexer {
    state: State,
    /// Current line, 1-based.
    line: u64,
    /// False while lexing a substituted variable value, whose newlines are
    /// not lines of the input.
    count_lines: bool,
    /// Nothing but (part of) a byte-order mark has been read so far.
    at_start: bool,
    bom_seen: usize,

    stmt: Vec<u8>,
    /// The statement sent last, which `\g` and `\gexec` on an empty
    /// buffer send again. Swapped with `stmt`, never copied.
    previous: Vec<u8>,
    previous_truncated: bool,
    previous_whole_key: Option<String>,
    stmt_started: bool,
    stmt_line: u64,
    truncated: bool,
    /// Once a statement outgrows `STATEMENT_CAP`: the key of its whole
    /// text so far, the head kept and every byte after it.
    overflow: Option<KeyHasher>,

    // psql's heuristics for where a `;` ends a statement.
    paren_depth: u32,
    begin_depth: u32,
    identifier_count: u32,
    identifier_marks: [u8; 4],

    // The unquoted word being read, lowercased, first bytes only.
    in_word: bool,
    word_is_ident: bool,
    word_len: usize,
    word: [u8; 9],

    /// Line where the open quote or comment began.
    open_line: u64,
    tag: Vec<u8>,
    var: Vec<u8>,
    meta: Vec<u8>,
    meta_line: u64,
    meta_name_end: Option<usize>,
    meta_whole_line: bool,
    /// A COPY FROM stdin was sent: its data starts at the next line.
    copy_pending: bool,
    copy_end: memmem::Finder<'static>,
    /// Names of variables being substituted, to stop self-reference.
    expanding: Vec<Vec<u8>>,
    /// `standard_conforming_strings`: when off (a legacy server setting),
    /// a plain `'...'` takes backslash escapes like `E'...'`.
    standard_strings: bool,
}

impl Default for Lexer {
    fn default() -> Self {
        Self::new()
    }
}

impl Lexer {
    pub fn new() -> Self {
        Lexer {
            state: State::Normal,
            line: 1,
            count_lines: true,
            at_start: true,
            bom_seen: 0,
            stmt: Vec::new(),
            previous: Vec::new(),
            previous_truncated: false,
            previous_whole_key: None,
            stmt_started: false,
            stmt_line: 1,
            truncated: false,
            overflow: None,
            paren_depth: 0,
            begin_depth: 0,
            identifier_count: 0,
            identifier_marks: [0; 4],
            in_word: false,
            word_is_ident: false,
            word_len: 0,
            word: [0; 9],
            open_line: 0,
            tag: Vec::new(),
            var: Vec::new(),
            meta: Vec::new(),
            meta_line: 0,
            meta_name_end: None,
            meta_whole_line: false,
            copy_pending: false,
            copy_end: memmem::Finder::new(b"\n\\.").into_owned(),
            expanding: Vec::new(),
            standard_strings: true,
        }
    }

    /// A lexer for a server whose `standard_conforming_strings` is
    /// `standard_strings` (psql follows the connection's setting too).
    pub fn with_standard_strings(standard_strings: bool) -> Self {
        Lexer {
            standard_strings,
            ..Self::new()
        }
    }

    /// The line the lexer has reached (1-based).
    pub fn line(&self) -> u64 {
        self.line
    }

    /// Lexes the next chunk of input.
    pub fn feed<S: Sink>(&mut self, mut input: &[u8], sink: &mut S) {
        // A UTF-8 byte-order mark is not part of the first statement. psql
        // would send it and the server would reject the statement, but
        // skipping it keeps a destructive statement behind a BOM from
        // looking safe. The mark may arrive split across chunks.
        while self.at_start && !input.is_empty() {
            if input[0] == BOM[self.bom_seen] {
                self.bom_seen += 1;
                input = &input[1..];
                if self.bom_seen == BOM.len() {
                    self.at_start = false;
                }
            } else {
                self.end_bom(sink);
            }
        }
        let mut i = 0;
        while i < input.len() {
            i = self.step(input, i, sink);
        }
    }

    /// Ends the input: sends the last statement (psql sends an unterminated
    /// one too) and says whether a quote or comment was left open.
    pub fn finish<S: Sink>(&mut self, sink: &mut S) -> Option<Unterminated> {
        if self.at_start {
            self.end_bom(sink);
        }
        let mut open = None;
        match self.state {
            State::Normal | State::LineComment | State::Copy(_) | State::Backslash => {}
            State::Dash => self.keep(b'-'),
            State::Slash => self.keep(b'/'),
            State::Colon => self.keep(b':'),
            State::ColonName => {
                self.state = State::Normal;
                self.substitute(sink);
            }
            State::ColonQuoted { quote } => {
                self.keep(b':');
                self.keep(quote);
                let var = std::mem::take(&mut self.var);
                self.keep_slice(&var);
                open = Some(Unterminated {
                    what: if quote == b'\'' {
                        "quoted string"
                    } else {
                        "quoted identifier"
                    },
                    line: self.line,
                });
            }
            State::DollarTag => {
                self.keep(b'$');
                let tag = std::mem::take(&mut self.tag);
                self.keep_slice(&tag);
            }
            State::Meta { .. } => self.finish_meta(sink),
            State::BlockComment { .. } => {
                open = Some(Unterminated {
                    what: "/* comment",
                    line: self.open_line,
                })
            }
            State::Quote { end, .. } if end != QuoteEnd::Quote => {
                open = Some(Unterminated {
                    what: "quoted string",
                    line: self.open_line,
                })
            }
            State::QuotedIdent { end } if end != QuoteEnd::Quote => {
                open = Some(Unterminated {
                    what: "quoted identifier",
                    line: self.open_line,
                })
            }
            State::Quote { .. } | State::QuotedIdent { .. } => {}
            State::Dollar { .. } => {
                open = Some(Unterminated {
                    what: "dollar-quoted string",
                    line: self.open_line,
                })
            }
        }
        self.end_word();
        self.state = State::Normal;
        self.terminate(Terminator::EndOfInput, sink);
        self.copy_pending = false;
        open
    }

    /// The input did not start with a whole byte-order mark: what looked
    /// like its beginning is ordinary input.
    fn end_bom<S: Sink>(&mut self, sink: &mut S) {
        self.at_start = false;
        let seen = self.bom_seen;
        self.replay(&BOM[..seen], sink);
    }

    /// Processes input from `i`, returning where to continue.
    fn step<S: Sink>(&mut self, input: &[u8], i: usize, sink: &mut S) -> usize {
        let b = input[i];
        match self.state {
            State::Normal => {
                let next = self.normal_run(input, i);
                if next > i {
                    return next;
                }
                self.normal(b, i, sink)
            }
            State::Dash => {
                if b == b'-' {
                    self.state = State::LineComment;
                    if self.stmt_started {
                        self.keep_slice(b"--");
                    }
                    i + 1
                } else {
                    self.keep(b'-');
                    self.state = State::Normal;
                    i
                }
            }
            State::Slash => {
                if b == b'*' {
                    self.state = State::BlockComment { depth: 1, prev: 0 };
                    self.open_line = self.line;
                    if self.stmt_started {
                        self.keep_slice(b"/*");
                    }
                    i + 1
                } else {
                    self.keep(b'/');
                    self.state = State::Normal;
                    i
                }
            }
            State::LineComment => {
                let rest = &input[i..];
                let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
                if self.stmt_started {
                    self.keep_slice(&rest[..end]);
                }
                if end < rest.len() {
                    // The newline itself is handled in Normal (copy data may start).
                    self.state = State::Normal;
                }
                i + end
            }
            State::BlockComment { depth, prev } => {
                if self.stmt_started {
                    self.keep(b);
                }
                if b == b'\n' {
                    self.newline();
                }
                self.state = match (prev, b) {
                    (b'/', b'*') => State::BlockComment {
                        depth: depth.saturating_add(1),
                        prev: 0,
                    },
                    (b'*', b'/') if depth == 1 => State::Normal,
                    (b'*', b'/') => State::BlockComment {
                        depth: depth - 1,
                        prev: 0,
                    },
                    _ => State::BlockComment { depth, prev: b },
                };
                i + 1
            }
            State::Quote { escapes, end } => self.quoted(input, i, b'\'', escapes, end),
            State::QuotedIdent { end } => self.quoted(input, i, b'"', false, end),
            State::DollarTag => {
                if b == b'$' {
                    let mut delim = Vec::with_capacity(self.tag.len() + 2);
                    delim.push(b'$');
                    delim.extend_from_slice(&self.tag);
                    delim.push(b'$');
                    self.keep_slice(&delim);
                    self.tag = delim;
                    self.open_line = self.line;
                    self.state = State::Dollar { matched: 0 };
                    return i + 1;
                }
                let fits = if self.tag.is_empty() {
                    ident_start(b)
                } else {
                    ident_cont(b) && b != b'$'
                };
                if fits && self.tag.len() < TAG_CAP {
                    self.tag.push(b);
                    return i + 1;
                }
                // Not a dollar quote after all: `$` and the tag are plain
                // text (for instance `$1`, or `$a` in an expression).
                self.keep(b'$');
                self.state = State::Normal;
                let tag = std::mem::take(&mut self.tag);
                for &t in &tag {
                    self.normal(t, 0, sink);
                }
                i
            }
            State::Dollar { matched } => self.dollar(input, i, matched),
            State::Colon => match b {
                b':' => {
                    // `::` is a cast; the name after it is a type, not a variable.
                    self.keep_slice(b"::");
                    self.state = State::Normal;
                    i + 1
                }
                b'\'' | b'"' => {
                    self.var.clear();
                    self.state = State::ColonQuoted { quote: b };
                    i + 1
                }
                b if variable_char(b) => {
                    self.var.clear();
                    self.var.push(b);
                    self.state = State::ColonName;
                    i + 1
                }
                _ => {
                    self.keep(b':');
                    self.state = State::Normal;
                    i
                }
            },
            State::ColonName => {
                if variable_char(b) {
                    if self.var.len() <= VARIABLE_NAME_CAP {
                        self.var.push(b);
                    }
                    return i + 1;
                }
                self.state = State::Normal;
                self.substitute(sink);
                i
            }
            State::ColonQuoted { quote } => {
                if b == quote && !self.var.is_empty() {
                    self.state = State::Normal;
                    self.substitute_quoted(quote, sink);
                    return i + 1;
                }
                if variable_char(b) && self.var.len() <= VARIABLE_NAME_CAP {
                    self.var.push(b);
                    return i + 1;
                }
                // Not a variable reference: a colon, then a quote that opens
                // an ordinary string or identifier. Replay what was read.
                self.keep(b':');
                self.state = State::Normal;
                let mut replay = vec![quote];
                replay.append(&mut self.var);
                self.replay(&replay, sink);
                i
            }
            State::Backslash => match b {
                b';' => {
                    // `\;` sends what precedes together with what follows;
                    // for the analysis each part is a statement of its own.
                    self.state = State::Normal;
                    if self.paren_depth == 0 && self.begin_depth == 0 {
                        self.emit(Terminator::Combined, sink);
                    } else {
                        self.keep(b';');
                    }
                    i + 1
                }
                b':' => {
                    self.keep(b':');
                    self.state = State::Normal;
                    i + 1
                }
                b'\n' => {
                    self.state = State::Normal;
                    i
                }
                _ => {
                    self.meta.clear();
                    self.meta_line = self.line;
                    self.meta_name_end = None;
                    self.meta_whole_line = false;
                    self.state = State::Meta {
                        quote: 0,
                        escape: false,
                        backslash: false,
                    };
                    i
                }
            },
            State::Meta {
                quote,
                escape,
                backslash,
            } => self.meta_byte(b, i, quote, escape, backslash, sink),
            State::Copy(phase) => self.copy(input, i, phase),
        }
    }

    /// The fast path outside quotes and comments: consumes a run of bytes
    /// that need nothing but word, parenthesis and line tracking (most of a
    /// script), copying them to the statement in one go. Stops before any
    /// byte that may change state; `normal` handles that one.
    fn normal_run(&mut self, input: &[u8], mut i: usize) -> usize {
        let len = input.len();
        if !self.stmt_started {
            // Whitespace before a statement is not part of it.
            while i < len {
                match input[i] {
                    b' ' | b'\t' | b'\r' | 0x0b | 0x0c => i += 1,
                    // Copy data starts after this newline: the slow path.
                    b'\n' if self.copy_pending => return i,
                    b'\n' => {
                        self.newline();
                        i += 1;
                    }
                    _ => break,
                }
            }
            if i == len || BYTE_CLASS[input[i] as usize] == SPECIAL {
                return i;
            }
            self.stmt_started = true;
            self.stmt_line = self.line;
        }
        let start = i;
        while i < len {
            let b = input[i];
            match BYTE_CLASS[b as usize] {
                IDENT => {
                    if !self.in_word {
                        if b == b'$' {
                            break;
                        }
                        self.in_word = true;
                        self.word_is_ident = ident_start(b);
                        self.word_len = 0;
                    }
                    // Take the whole run of word bytes at once; only the
                    // first few are remembered.
                    let mut end = i + 1;
                    while end < len && BYTE_CLASS[input[end] as usize] == IDENT {
                        end += 1;
                    }
                    let known = self.word_len.min(self.word.len());
                    let take = (self.word.len() - known).min(end - i);
                    for (slot, &c) in self.word[known..known + take].iter_mut().zip(&input[i..]) {
                        *slot = c.to_ascii_lowercase();
                    }
                    self.word_len = self.word_len.saturating_add(end - i);
                    i = end;
                    continue;
                }
                NEWLINE => {
                    if self.copy_pending {
                        break;
                    }
                    self.end_word();
                    self.newline();
                }
                OPEN => {
                    self.end_word();
                    self.paren_depth = self.paren_depth.saturating_add(1);
                }
                CLOSE => {
                    self.end_word();
                    self.paren_depth = self.paren_depth.saturating_sub(1);
                }
                PLAIN => self.end_word(),
                _ => break,
            }
            i += 1;
        }
        if i > start {
            self.keep_slice(&input[start..i]);
        }
        i
    }

    /// One byte outside quotes and comments.
    #[inline]
    fn normal<S: Sink>(&mut self, b: u8, i: usize, sink: &mut S) -> usize {
        if ident_cont(b) {
            if b == b'$' && !self.in_word {
                self.state = State::DollarTag;
                self.tag.clear();
                return i + 1;
            }
            if !self.in_word {
                self.in_word = true;
                self.word_is_ident = ident_start(b);
                self.word_len = 0;
            }
            if self.word_len < self.word.len() {
                self.word[self.word_len] = b.to_ascii_lowercase();
            }
            self.word_len += 1;
            self.keep(b);
            return i + 1;
        }
        // `E'...'` has backslash escapes: the quote follows a lone `e`.
        let e_prefix = self.in_word && self.word_len == 1 && self.word[0] == b'e';
        self.end_word();
        match b {
            b'\n' => {
                if self.stmt_started {
                    self.keep(b);
                }
                self.newline();
                if self.copy_pending {
                    self.copy_pending = false;
                    self.state = State::Copy(CopyPhase::LineStart);
                }
            }
            b' ' | b'\t' | b'\r' | 0x0b | 0x0c => {
                if self.stmt_started {
                    self.keep(b);
                }
            }
            b'-' => self.state = State::Dash,
            b'/' => self.state = State::Slash,
            b'\'' => {
                self.keep(b);
                self.open_line = self.line;
                self.state = State::Quote {
                    escapes: e_prefix || !self.standard_strings,
                    end: QuoteEnd::Open,
                };
            }
            b'"' => {
                self.keep(b);
                self.open_line = self.line;
                self.state = State::QuotedIdent {
                    end: QuoteEnd::Open,
                };
            }
            b':' => self.state = State::Colon,
            b'\\' => self.state = State::Backslash,
            b';' => {
                if self.paren_depth == 0 && self.begin_depth == 0 {
                    self.terminate(Terminator::Semicolon, sink);
                } else {
                    self.keep(b);
                }
            }
            b'(' => {
                self.paren_depth = self.paren_depth.saturating_add(1);
                self.keep(b);
            }
            b')' => {
                self.paren_depth = self.paren_depth.saturating_sub(1);
                self.keep(b);
            }
            _ => self.keep(b),
        }
        i + 1
    }

    /// Inside `'...'` or `"..."`: jump to the next byte that matters.
    fn quoted(&mut self, input: &[u8], i: usize, quote: u8, escapes: bool, end: QuoteEnd) -> usize {
        let set_state = |end| {
            if quote == b'\'' {
                State::Quote { escapes, end }
            } else {
                State::QuotedIdent { end }
            }
        };
        let b = input[i];
        match end {
            QuoteEnd::Backslash => {
                self.keep(b);
                if b == b'\n' {
                    self.newline();
                }
                self.state = set_state(QuoteEnd::Open);
                i + 1
            }
            QuoteEnd::Quote => {
                if b == quote {
                    // A doubled quote stands for itself.
                    self.keep(b);
                    self.state = set_state(QuoteEnd::Open);
                    i + 1
                } else {
                    self.state = State::Normal;
                    i
                }
            }
            QuoteEnd::Open => {
                let rest = &input[i..];
                let found = if escapes {
                    memchr::memchr2(quote, b'\\', rest)
                } else {
                    memchr::memchr(quote, rest)
                };
                let len = found.unwrap_or(rest.len());
                self.keep_slice(&rest[..len]);
                self.count_newlines(&rest[..len]);
                if let Some(p) = found {
                    self.keep(rest[p]);
                    self.state = set_state(if rest[p] == quote {
                        QuoteEnd::Quote
                    } else {
                        QuoteEnd::Backslash
                    });
                    return i + p + 1;
                }
                i + len
            }
        }
    }

    /// Inside a dollar quote whose delimiter is `self.tag`.
    fn dollar(&mut self, input: &[u8], mut i: usize, mut matched: usize) -> usize {
        if matched == 0 {
            let rest = &input[i..];
            let skip = memchr::memchr(b'$', rest).unwrap_or(rest.len());
            self.keep_slice(&rest[..skip]);
            self.count_newlines(&rest[..skip]);
            i += skip;
            if i == input.len() {
                return i;
            }
        }
        let b = input[i];
        self.keep(b);
        if b == self.tag[matched] {
            matched += 1;
            if matched == self.tag.len() {
                self.state = State::Normal;
                return i + 1;
            }
        } else {
            // The tag holds no `$`, so a new match can only start here.
            matched = usize::from(b == b'$');
            if b == b'\n' {
                self.newline();
            }
        }
        self.state = State::Dollar { matched };
        i + 1
    }

    fn meta_byte<S: Sink>(
        &mut self,
        b: u8,
        i: usize,
        mut quote: u8,
        mut escape: bool,
        backslash: bool,
        sink: &mut S,
    ) -> usize {
        if b == b'\n' {
            // The meta-command ends with its line; the newline is handled
            // in Normal so that copy data can start after it.
            self.finish_meta(sink);
            self.state = State::Normal;
            return i;
        }
        if backslash {
            self.finish_meta(sink);
            if b == b'\\' {
                // `\\` ends the meta-command; SQL continues on this line.
                self.state = State::Normal;
                return i + 1;
            }
            // An unquoted backslash starts the next meta-command.
            self.meta.clear();
            self.meta_line = self.line;
            self.meta_name_end = None;
            self.meta_whole_line = false;
            self.state = State::Meta {
                quote: 0,
                escape: false,
                backslash: false,
            };
            return i;
        }
        if self.meta_name_end.is_none() && (b == b' ' || b == b'\t' || b == b'\r') {
            self.meta_name_end = Some(self.meta.len());
            self.meta_whole_line = matches!(
                &self.meta[..],
                b"copy" | b"!" | b"h" | b"help" | b"sf" | b"sf+" | b"sv" | b"sv+" | b"ef" | b"ev"
            );
        }
        let mut next_backslash = false;
        if self.meta_whole_line {
            // \copy and friends take the rest of the line verbatim.
        } else if quote != 0 {
            if escape {
                escape = false;
            } else if quote == b'\'' && b == b'\\' {
                escape = true;
            } else if b == quote {
                quote = 0;
            }
        } else if b == b'\\' && !self.meta.is_empty() {
            next_backslash = true;
        } else if matches!(b, b'\'' | b'"' | b'`') && self.meta_name_end.is_some() {
            quote = b;
        }
        if !next_backslash && self.meta.len() < META_CAP {
            self.meta.push(b);
        }
        self.state = State::Meta {
            quote,
            escape,
            backslash: next_backslash,
        };
        i + 1
    }

    fn finish_meta<S: Sink>(&mut self, sink: &mut S) {
        let name_end = self.meta_name_end.unwrap_or(self.meta.len());
        let meta = std::mem::take(&mut self.meta);
        let name = &meta[..name_end];
        let args = trim(&meta[name_end..]);
        match name {
            b"g" | b"gx" | b"gset" | b"gdesc" | b"crosstabview" | b"watch" | b"sendpipeline" => {
                self.terminate(Terminator::Go, sink)
            }
            b"gexec" => self.terminate(Terminator::Gexec, sink),
            b"r" | b"reset" => self.reset_statement(),
            b"copy" => {
                // `\copy ... from stdin` reads its data from the script,
                // starting on the next line. (`pstdin` is psql's own
                // stdin, not the script, so what follows is SQL again.)
                if copy_reads_stdin(args) {
                    self.copy_pending = true;
                }
                // Its query, if any, runs: the sink judges it.
                sink.meta(&MetaCommand {
                    name,
                    args,
                    line: self.meta_line,
                });
            }
            _ => sink.meta(&MetaCommand {
                name,
                args,
                line: self.meta_line,
            }),
        }
        self.meta = meta;
        self.meta.clear();
    }

    /// COPY data: only the line `\.` (or the end of input) ends it.
    fn copy(&mut self, input: &[u8], i: usize, phase: CopyPhase) -> usize {
        let b = input[i];
        let (next, advance) = match (phase, b) {
            (CopyPhase::LineStart, b'\\') => (CopyPhase::Backslash, true),
            (CopyPhase::Backslash, b'.') => (CopyPhase::Dot, true),
            (CopyPhase::Dot, b'\r') => (CopyPhase::DotCr, true),
            (CopyPhase::Dot | CopyPhase::DotCr, b'\n') => {
                self.newline();
                self.state = State::Normal;
                return i + 1;
            }
            (CopyPhase::Mid, _) => {
                let rest = &input[i..];
                return match self.copy_end.find(rest) {
                    Some(p) => {
                        // Everything up to and including the newline is data.
                        self.count_newlines(&rest[..=p]);
                        self.state = State::Copy(CopyPhase::LineStart);
                        i + p + 1
                    }
                    None => {
                        self.count_newlines(rest);
                        self.state = State::Copy(if rest.ends_with(b"\n\\") {
                            CopyPhase::Backslash
                        } else if rest.ends_with(b"\n") {
                            CopyPhase::LineStart
                        } else {
                            CopyPhase::Mid
                        });
                        input.len()
                    }
                };
            }
            _ => (CopyPhase::Mid, false),
        };
        self.state = State::Copy(next);
        if advance { i + 1 } else { i }
    }

    #[inline]
    fn end_word(&mut self) {
        if !self.in_word {
            return;
        }
        self.in_word = false;
        if self.word_is_ident {
            self.track_identifier();
        }
    }

    fn word_is(&self, keyword: &[u8]) -> bool {
        self.word_len == keyword.len() && &self.word[..keyword.len()] == keyword
    }

    /// psql's heuristic for SQL-standard function bodies: inside
    /// `CREATE [OR REPLACE] FUNCTION|PROCEDURE ... BEGIN ... END`, semicolons
    /// do not end the statement.
    fn track_identifier(&mut self) {
        let count = self.identifier_count as usize;
        self.identifier_count = self.identifier_count.saturating_add(1);
        if count == 0 {
            self.identifier_marks = [0; 4];
        }
        if count < self.identifier_marks.len()
            && [&b"create"[..], b"function", b"procedure", b"or", b"replace"]
                .iter()
                .any(|k| self.word_is(k))
        {
            self.identifier_marks[count] = self.word[0];
        }
        let m = self.identifier_marks;
        if m[0] != b'c' {
            // Not a CREATE statement: the common case, decided.
            return;
        }
        let in_routine = m[0] == b'c'
            && (m[1] == b'f'
                || m[1] == b'p'
                || (m[1] == b'o' && m[2] == b'r' && (m[3] == b'f' || m[3] == b'p')));
        if in_routine && self.paren_depth == 0 {
            if self.word_is(b"begin") {
                self.begin_depth = self.begin_depth.saturating_add(1);
            } else if self.word_is(b"case") {
                if self.begin_depth >= 1 {
                    self.begin_depth = self.begin_depth.saturating_add(1);
                }
            } else if self.word_is(b"end") {
                self.begin_depth = self.begin_depth.saturating_sub(1);
            }
        }
    }

    #[inline]
    fn keep(&mut self, b: u8) {
        if !self.stmt_started {
            self.stmt_started = true;
            self.stmt_line = self.line;
        }
        if self.stmt.len() < STATEMENT_CAP {
            self.stmt.push(b);
        } else {
            self.hash_overflow(&[b]);
        }
    }

    /// Bytes past `STATEMENT_CAP`: not kept, but hashed into the key.
    #[cold]
    fn hash_overflow(&mut self, bytes: &[u8]) {
        self.truncated = true;
        let stmt = &self.stmt;
        self.overflow
            .get_or_insert_with(|| {
                let mut hasher = KeyHasher::new();
                hasher.feed(stmt);
                hasher
            })
            .feed(bytes);
    }

    fn keep_slice(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if !self.stmt_started {
            self.stmt_started = true;
            self.stmt_line = self.line;
        }
        let room = STATEMENT_CAP - self.stmt.len();
        let kept = bytes.len().min(room);
        self.stmt.extend_from_slice(&bytes[..kept]);
        if bytes.len() > room {
            self.hash_overflow(&bytes[kept..]);
        }
    }

    #[inline]
    fn newline(&mut self) {
        if self.count_lines {
            self.line += 1;
        }
    }

    fn count_newlines(&mut self, bytes: &[u8]) {
        if self.count_lines {
            self.line += count_newlines(bytes);
        }
    }

    /// Sends the statement (if any) and starts afresh, as psql does after
    /// sending a query.
    fn terminate<S: Sink>(&mut self, terminator: Terminator, sink: &mut S) {
        if self.stmt_started && copy_from_stdin(&self.stmt) {
            self.copy_pending = true;
        }
        self.emit(terminator, sink);
        self.paren_depth = 0;
        self.begin_depth = 0;
        self.identifier_count = 0;
    }

    fn emit<S: Sink>(&mut self, terminator: Terminator, sink: &mut S) {
        self.end_word();
        if self.stmt_started {
            let whole_key = self.overflow.take().map(KeyHasher::finish);
            sink.statement(&Statement {
                text: &self.stmt,
                line: self.stmt_line,
                terminator,
                truncated: self.truncated,
                whole_key: whole_key.clone(),
            });
            std::mem::swap(&mut self.stmt, &mut self.previous);
            self.previous_truncated = self.truncated;
            self.previous_whole_key = whole_key;
        } else if matches!(terminator, Terminator::Go | Terminator::Gexec)
            && !self.previous.is_empty()
        {
            // psql runs the previous query again: `SELECT 'DROP ...';`
            // then `\gexec` on its own line executes what it returns.
            sink.statement(&Statement {
                text: &self.previous,
                line: self.meta_line,
                terminator,
                truncated: self.previous_truncated,
                whole_key: self.previous_whole_key.clone(),
            });
        }
        self.stmt.clear();
        if self.stmt.capacity() > (64 << 10) {
            // Give back the memory of an unusually long statement.
            self.stmt.shrink_to(64 << 10);
        }
        self.stmt_started = false;
        self.truncated = false;
    }

    fn reset_statement(&mut self) {
        self.stmt.clear();
        self.stmt_started = false;
        self.truncated = false;
        self.overflow = None;
        self.paren_depth = 0;
        self.begin_depth = 0;
        self.identifier_count = 0;
    }

    /// Lexes `bytes` as if typed here, without counting their newlines.
    fn replay<S: Sink>(&mut self, bytes: &[u8], sink: &mut S) {
        let counting = std::mem::replace(&mut self.count_lines, false);
        let mut i = 0;
        while i < bytes.len() {
            i = self.step(bytes, i, sink);
        }
        self.count_lines = counting;
    }

    /// Substitutes `:name` (in `var`) when the variable is known.
    fn substitute<S: Sink>(&mut self, sink: &mut S) {
        let name = std::mem::take(&mut self.var);
        let value = if self.expanding.len() < VARIABLE_DEPTH && !self.expanding.contains(&name) {
            sink.variable(&name)
        } else {
            None
        };
        match value {
            Some(value) => {
                self.expanding.push(name);
                self.replay(&value, sink);
                self.expanding.pop();
            }
            None => {
                self.keep(b':');
                self.keep_slice(&name);
                // The name reads as a word, as it does in psql.
                self.in_word = true;
                self.word_is_ident = false;
                self.word_len = 0;
            }
        }
    }

    /// Substitutes `:'name'` (a literal) or `:"name"` (an identifier).
    fn substitute_quoted<S: Sink>(&mut self, quote: u8, sink: &mut S) {
        let name = std::mem::take(&mut self.var);
        match sink.variable(&name) {
            Some(value) => {
                let quoted = quote_value(&value, quote);
                self.keep_slice(&quoted);
            }
            None => {
                self.keep(b':');
                self.keep(quote);
                self.keep_slice(&name);
                self.keep(quote);
            }
        }
    }
}

/// Counts `\n` bytes. COPY data is mostly counted, not lexed, so this is
/// the hot loop for dumps: byte-wide counters over 64-byte blocks let the
/// compiler use wide vector compares, several times faster than a plain
/// filtered count (which widens every lane to 64 bits).
fn count_newlines(bytes: &[u8]) -> u64 {
    if bytes.len() < 64 {
        // Short spans (a string literal, a comment) are the common call.
        return bytes.iter().filter(|&&b| b == b'\n').count() as u64;
    }
    let mut total = 0u64;
    // 255 blocks at most, so no byte counter can overflow.
    for stretch in bytes.chunks(255 * 64) {
        let mut counters = [0u8; 64];
        let mut blocks = stretch.chunks_exact(64);
        for block in &mut blocks {
            for (counter, &b) in counters.iter_mut().zip(block) {
                *counter += u8::from(b == b'\n');
            }
        }
        total += counters.iter().map(|&c| u64::from(c)).sum::<u64>();
        total += blocks.remainder().iter().filter(|&&b| b == b'\n').count() as u64;
    }
    total
}

/// Quotes a variable's value as psql does for `:'name'` (like
/// PQescapeLiteral) and `:"name"` (like PQescapeIdentifier).
fn quote_value(value: &[u8], quote: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 4);
    let backslashes = quote == b'\'' && value.contains(&b'\\');
    if backslashes {
        out.extend_from_slice(b" E");
    }
    out.push(quote);
    for &b in value {
        if b == quote || (backslashes && b == b'\\') {
            out.push(b);
        }
        out.push(b);
    }
    out.push(quote);
    out
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |p| p + 1);
    &bytes[start..end.max(start)]
}

/// True for `COPY ... FROM STDIN` (data follows in the script).
fn copy_from_stdin(stmt: &[u8]) -> bool {
    if stmt
        .first()
        .is_some_and(|b| b.is_ascii_alphabetic() && !b.eq_ignore_ascii_case(&b'c'))
    {
        return false;
    }
    let mut toks = super::token::Tokenizer::new(stmt);
    match toks.next() {
        Some(t) if t.is("copy") => copy_reads_stdin_tokens(toks),
        _ => false,
    }
}

/// True when `\copy` arguments read from `stdin`.
fn copy_reads_stdin(args: &[u8]) -> bool {
    copy_reads_stdin_tokens(super::token::Tokenizer::new(args))
}

fn copy_reads_stdin_tokens(toks: super::token::Tokenizer<'_>) -> bool {
    let mut depth = 0u32;
    let mut after_from = false;
    for t in toks {
        if t.is_punct(b'(') {
            depth += 1;
        } else if t.is_punct(b')') {
            depth = depth.saturating_sub(1);
        } else if depth == 0 {
            if after_from && t.is("stdin") {
                return true;
            }
            after_from = t.is("from");
            continue;
        }
        after_from = false;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[derive(Default)]
    struct Collect {
        vars: HashMap<Vec<u8>, Vec<u8>>,
        stmts: Vec<(u64, String, Terminator)>,
        metas: Vec<(u64, String, String)>,
    }

    impl Sink for Collect {
        fn variable(&self, name: &[u8]) -> Option<Vec<u8>> {
            self.vars.get(name).cloned()
        }
        fn statement(&mut self, s: &Statement<'_>) {
            self.stmts.push((
                s.line,
                String::from_utf8_lossy(s.text).into_owned(),
                s.terminator,
            ));
        }
        fn meta(&mut self, m: &MetaCommand<'_>) {
            self.metas.push((
                m.line,
                String::from_utf8_lossy(m.name).into_owned(),
                String::from_utf8_lossy(m.args).into_owned(),
            ));
        }
    }

    fn lex_with(input: &[u8], vars: &[(&str, &str)], chunk: usize) -> Collect {
        let mut sink = Collect::default();
        for (k, v) in vars {
            sink.vars
                .insert(k.as_bytes().to_vec(), v.as_bytes().to_vec());
        }
        let mut lexer = Lexer::new();
        for part in input.chunks(chunk.max(1)) {
            lexer.feed(part, &mut sink);
        }
        lexer.finish(&mut sink);
        sink
    }

    /// Lexes `input` whole and in every chunk size up to 7, and checks that
    /// chunking never changes the result.
    fn lex(input: &str) -> Vec<(u64, String)> {
        let whole = lex_with(input.as_bytes(), &[], usize::MAX);
        for chunk in 1..8 {
            let parts = lex_with(input.as_bytes(), &[], chunk);
            assert_eq!(parts.stmts, whole.stmts, "chunk size {chunk}");
            assert_eq!(parts.metas, whole.metas, "chunk size {chunk}");
        }
        whole.stmts.into_iter().map(|(l, t, _)| (l, t)).collect()
    }

    fn texts(input: &str) -> Vec<String> {
        lex(input).into_iter().map(|(_, t)| t).collect()
    }

    #[test]
    fn splits_on_semicolons_with_lines() {
        assert_eq!(
            lex("select 1;\n\n  drop table t;select 2"),
            vec![
                (1, "select 1".into()),
                (3, "drop table t".into()),
                (3, "select 2".into())
            ]
        );
    }

    #[test]
    fn semicolons_in_quotes_and_comments_do_not_split() {
        assert_eq!(
            texts("select ';', \";\", $$;$$, $a$ $$; $a$ /* ; /* ; */ ; */ -- ;\n;"),
            vec!["select ';', \";\", $$;$$, $a$ $$; $a$ /* ; /* ; */ ; */ -- ;\n"]
        );
    }

    #[test]
    fn e_strings_have_backslash_escapes_and_others_do_not() {
        assert_eq!(
            texts(r"select E'\';'; select 'a\'; select 2"),
            vec![r"select E'\';'", r"select 'a\'", "select 2"]
        );
        // `name'...'` is not an E-string even though the word ends in e.
        assert_eq!(texts(r"select fe'\';x'"), vec![r"select fe'\'", "x'"]);
    }

    #[test]
    fn leading_comments_do_not_move_the_start_line() {
        assert_eq!(
            lex("-- a\n/* b\n */\n\n DROP TABLE x;"),
            vec![(5, "DROP TABLE x".into())]
        );
    }

    #[test]
    fn parentheses_hold_semicolons() {
        assert_eq!(texts("select (1; 2); drop"), vec!["select (1; 2)", "drop"]);
    }

    #[test]
    fn begin_atomic_bodies_hold_semicolons() {
        let sql = "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC \
                   DELETE FROM t; SELECT CASE WHEN true THEN 1 END; END; DROP TABLE x;";
        let got = texts(sql);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[1], "DROP TABLE x");
        // Other statements with BEGIN do not get the treatment.
        assert_eq!(texts("BEGIN; DROP TABLE x; END;").len(), 3);
    }

    #[test]
    fn meta_commands_are_not_sql() {
        let c = lex_with(b"\\set x 1\nselect 1;\n\\i 'a b.sql'\n", &[], 3);
        assert_eq!(c.stmts.len(), 1);
        assert_eq!(c.stmts[0].0, 2);
        assert_eq!(
            c.metas,
            vec![
                (1, "set".into(), "x 1".into()),
                (3, "i".into(), "'a b.sql'".into())
            ]
        );
    }

    #[test]
    fn g_family_terminates() {
        let c = lex_with(b"select 1 \\g\nselect 2 \\gexec\ndelete from t", &[], 5);
        let terms: Vec<Terminator> = c.stmts.iter().map(|s| s.2).collect();
        assert_eq!(
            terms,
            vec![Terminator::Go, Terminator::Gexec, Terminator::EndOfInput]
        );
    }

    #[test]
    fn g_on_an_empty_buffer_repeats_the_previous_statement() {
        let c = lex_with(
            b"SELECT 'DROP TABLE t';\n\\gexec\nSELECT 1 \\r\n\\g\n",
            &[],
            4,
        );
        let got: Vec<(u64, String, Terminator)> = c.stmts;
        assert_eq!(
            got,
            vec![
                (1, "SELECT 'DROP TABLE t'".into(), Terminator::Semicolon),
                (2, "SELECT 'DROP TABLE t'".into(), Terminator::Gexec),
                (4, "SELECT 'DROP TABLE t'".into(), Terminator::Go),
            ]
        );
    }

    #[test]
    fn double_backslash_returns_to_sql() {
        let c = lex_with(b"\\set a 1 \\\\ drop table t;", &[], 2);
        assert_eq!(c.metas, vec![(1, "set".into(), "a 1".into())]);
        assert_eq!(c.stmts[0].1, "drop table t");
    }

    #[test]
    fn backslash_semicolon_combines() {
        let c = lex_with(b"select 1 \\; drop table t;", &[], 2);
        let got: Vec<(String, Terminator)> = c.stmts.into_iter().map(|s| (s.1, s.2)).collect();
        assert_eq!(
            got,
            vec![
                ("select 1 ".into(), Terminator::Combined),
                ("drop table t".into(), Terminator::Semicolon)
            ]
        );
    }

    #[test]
    fn r_discards_the_buffer() {
        assert_eq!(texts("drop table t \\r\nselect 1;"), vec!["select 1"]);
    }

    #[test]
    fn copy_data_is_skipped_and_lines_counted() {
        let sql = "COPY t (a) FROM stdin;\nDROP TABLE x;\n\\\\.\n1\n\\.\nDELETE FROM t;\n";
        assert_eq!(
            lex(sql),
            vec![
                (1, "COPY t (a) FROM stdin".into()),
                (6, "DELETE FROM t".into())
            ]
        );
        // CRLF after the end marker, and a \copy meta-command.
        let sql = "\\copy t from stdin\r\nDROP TABLE a;\r\n\\.\r\nDROP TABLE b;";
        assert_eq!(lex(sql), vec![(4, "DROP TABLE b".into())]);
        // pstdin is psql's stdin: what follows is SQL.
        assert_eq!(lex("\\copy t from pstdin\nDROP TABLE b;").len(), 1);
        // COPY TO stdout has no data block.
        assert_eq!(lex("COPY t TO stdout;\nDROP TABLE b;").len(), 2);
    }

    #[test]
    fn copy_data_until_end_of_input() {
        assert_eq!(lex("COPY t FROM STDIN;\na\nDROP TABLE x;").len(), 1);
    }

    #[test]
    fn variables_are_substituted_outside_quotes() {
        let vars = [
            ("t", "users"),
            ("cmd", "DROP TABLE x; SELECT 1"),
            ("q", "it's"),
        ];
        let c = lex_with(b"drop table :t; select ':t', :'q', :\"t\"; :cmd;", &vars, 3);
        let got: Vec<String> = c.stmts.into_iter().map(|s| s.1).collect();
        assert_eq!(
            got,
            vec![
                "drop table users",
                "select ':t', 'it''s', \"users\"",
                "DROP TABLE x",
                "SELECT 1"
            ]
        );
    }

    #[test]
    fn casts_and_unknown_variables_are_left_alone() {
        let c = lex_with(b"select a::int, :nope, :'nope';", &[], 1);
        assert_eq!(c.stmts[0].1, "select a::int, :nope, :'nope'");
    }

    #[test]
    fn self_referencing_variable_stops() {
        let c = lex_with(b"select :a;", &[("a", ":a + 1")], 64);
        assert_eq!(c.stmts[0].1, "select :a + 1");
    }

    #[test]
    fn dollar_that_is_not_a_quote() {
        assert_eq!(
            texts("select $1; select a$b$; drop"),
            vec!["select $1", "select a$b$", "drop"]
        );
    }

    #[test]
    fn unterminated_constructs_are_reported() {
        let mut sink = Collect::default();
        let mut lexer = Lexer::new();
        lexer.feed(b"select 1;\nselect $$ ; drop table x;", &mut sink);
        let open = lexer.finish(&mut sink);
        assert_eq!(
            open,
            Some(Unterminated {
                what: "dollar-quoted string",
                line: 2
            })
        );
        assert_eq!(sink.stmts.len(), 2);
    }

    #[test]
    fn newline_counter_agrees_with_a_plain_count() {
        let mut bytes = Vec::new();
        for n in 0..100_000u32 {
            bytes.push(if n % 7 == 0 || n % 13 == 0 {
                b'\n'
            } else {
                b'x'
            });
        }
        for len in [0, 1, 63, 64, 65, 255 * 64, 255 * 64 + 1, bytes.len()] {
            let slice = &bytes[..len];
            let plain = slice.iter().filter(|&&b| b == b'\n').count() as u64;
            assert_eq!(count_newlines(slice), plain, "length {len}");
        }
        assert_eq!(count_newlines(&[b'\n'; 255 * 64 * 3]), 255 * 64 * 3);
    }

    #[test]
    fn byte_order_mark_is_skipped() {
        assert_eq!(
            lex("\u{feff}DROP TABLE x;"),
            vec![(1, "DROP TABLE x".into())]
        );
    }

    #[test]
    fn invalid_utf8_is_just_bytes() {
        let c = lex_with(b"select '\xff\xfe';\n\x80drop table t;", &[], 2);
        assert_eq!(c.stmts.len(), 2);
        assert_eq!(c.stmts[1].0, 2);
    }

    #[test]
    fn huge_statements_are_truncated() {
        let mut sql = b"DELETE FROM t WHERE id IN (".to_vec();
        sql.resize(STATEMENT_CAP + 100, b'1');
        sql.extend_from_slice(b"); DROP TABLE x;");
        struct Count(Vec<(usize, bool)>);
        impl Sink for Count {
            fn variable(&self, _: &[u8]) -> Option<Vec<u8>> {
                None
            }
            fn statement(&mut self, s: &Statement<'_>) {
                self.0.push((s.text.len(), s.truncated));
            }
            fn meta(&mut self, _: &MetaCommand<'_>) {}
        }
        let mut sink = Count(Vec::new());
        let mut lexer = Lexer::new();
        for part in sql.chunks(4096) {
            lexer.feed(part, &mut sink);
        }
        lexer.finish(&mut sink);
        assert_eq!(sink.0, vec![(STATEMENT_CAP, true), (12, false)]);
    }

    #[test]
    fn a_huge_statement_is_known_by_the_key_of_all_of_it() {
        let statement = |tail: &[u8]| {
            let mut sql = b"DROP TABLE t /*".to_vec();
            sql.resize(STATEMENT_CAP + 100, b'x');
            sql.extend_from_slice(tail);
            sql
        };
        struct Keys(Vec<Option<String>>);
        impl Sink for Keys {
            fn variable(&self, _: &[u8]) -> Option<Vec<u8>> {
                None
            }
            fn statement(&mut self, s: &Statement<'_>) {
                self.0.push(s.whole_key.clone());
            }
            fn meta(&mut self, _: &MetaCommand<'_>) {}
        }
        let keys = |sql: &[u8], chunk: usize| {
            let mut sink = Keys(Vec::new());
            let mut lexer = Lexer::new();
            for part in sql.chunks(chunk) {
                lexer.feed(part, &mut sink);
            }
            lexer.finish(&mut sink);
            sink.0
        };
        let mut sql = statement(b"*/;");
        let whole = crate::sql::key::statement_key(&sql[..sql.len() - 1]);
        sql.extend_from_slice(b" select 1;");
        assert_eq!(keys(&sql, 4096), [Some(whole.clone()), None]);
        assert_eq!(keys(&sql, 1 << 22), [Some(whole.clone()), None]);
        // Another tail past the kept head is another statement.
        let other = statement(b"y*/;");
        assert_ne!(keys(&other, 4096), [Some(whole)]);
    }
}
