//! Asking a person before something irreversible happens.
//!
//! Questions are asked on the controlling terminal (`/dev/tty`), never on
//! stdin or stdout: stdin may be the SQL being run and stdout may be piped
//! (DESIGN.md invariant 6). A typed word must match exactly; there is no
//! default answer. With no terminal and no bypass (`--yes`, `DBGUARD_YES=1`)
//! the answer is no.

use std::fs::OpenOptions;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

use crate::error::Refusal;
use crate::{Context, Error};

/// The environment switch that answers every question with yes.
pub use crate::env::YES as YES_ENV;

/// What the person has to type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// Exactly this word (a database name, `DROP`): a reflex "yes" is not enough.
    Word(String),
    /// `y` or `yes`, for steps that destroy nothing (taking a backup).
    YesNo,
}

/// A question: what is about to happen, then what to type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// Lines shown before the prompt, explaining what will happen.
    pub summary: Vec<String>,
    pub expect: Expect,
    /// Names shown in colour wherever the summary has them in quotes
    /// (`"shop"`): the database, so the eye finds it first.
    pub emphasis: Vec<String>,
}

/// How a question is drawn: the terminal's width and whether colour is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Look {
    pub width: usize,
    pub colour: bool,
}

impl Look {
    /// The terminal's look: its width, colour unless `NO_COLOR` is set or
    /// `TERM` is unset or `dumb`.
    pub fn of_terminal(tty: &std::fs::File) -> Look {
        use std::os::fd::AsRawFd;
        let mut size = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ writes one winsize into the struct given.
        let asked = unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCGWINSZ, &mut size) };
        let width = if asked == 0 && size.ws_col > 0 {
            usize::from(size.ws_col)
        } else {
            80
        };
        Look {
            width,
            colour: crate::error::colour_wanted(),
        }
    }
}
/// How the go-ahead was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consent {
    /// A person typed the answer on the terminal.
    Typed,
    /// `--yes` / `--force` on the command line.
    Flag,
    /// `DBGUARD_YES=1` in the environment.
    Environment,
}

impl Question {
    /// Whether `answer` (one line as read, line ending included) says yes.
    pub fn accepts(&self, answer: &str) -> bool {
        let line = answer.strip_suffix('\n').unwrap_or(answer);
        let line = line.strip_suffix('\r').unwrap_or(line);
        match &self.expect {
            Expect::Word(word) => line == word,
            Expect::YesNo => matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes"),
        }
    }
}

/// Gets consent for `question`: the bypasses first, then the terminal.
/// Every way of saying no is `Error::Refused` (exit 77) with one line
/// saying how to proceed.
pub fn confirm(ctx: &Context, question: &Question, yes_flag: bool) -> Result<Consent, Error> {
    if yes_flag {
        return Ok(Consent::Flag);
    }
    if ctx.flag(YES_ENV) {
        return Ok(Consent::Environment);
    }
    confirm_on_terminal(
        question,
        &format!("rerun with --yes or {YES_ENV}=1 to proceed without asking"),
    )
}

/// Gets consent for `question` from a person at the terminal only: no
/// `--yes`, no `DBGUARD_YES`. For the few questions no script may answer
/// (rewinding a whole cluster); `no_terminal_hint` says what to do instead.
pub fn confirm_on_terminal(question: &Question, no_terminal_hint: &str) -> Result<Consent, Error> {
    let tty = match OpenOptions::new().read(true).write(true).open("/dev/tty") {
        Ok(tty) => tty,
        Err(_) => {
            return Err(Refusal::because("no terminal to ask for confirmation on")
                .hint(no_terminal_hint)
                .into());
        }
    };
    let reader = BufReader::new(Interruptible(
        tty.try_clone().map_err(|e| Error::io("/dev/tty", e))?,
    ));
    let _signals = CatchSignals::install();
    let look = Look::of_terminal(&tty);
    discard_type_ahead(&tty);
    let mut echo = tty.try_clone().map_err(|e| Error::io("/dev/tty", e))?;
    match ask_on(reader, tty, question, look) {
        // Ctrl-C, a hang-up or a terminal that went away is a "no" like any
        // other, with the refusal status rather than death by signal.
        Err(Error::Io { source, .. }) => {
            let why = if INTERRUPTED.load(Ordering::SeqCst) {
                // The terminal echoed `^C` after the prompt: what comes
                // next starts on a line of its own.
                let _ = writeln!(echo);
                "cancelled by a signal (Ctrl-C)".to_owned()
            } else {
                format!("cancelled: the terminal failed ({source})")
            };
            Err(Refusal::because(why).hint(NOTHING_CHANGED).into())
        }
        other => other,
    }
}

/// The hint of every "no": nothing has been done yet.
const NOTHING_CHANGED: &str = "nothing was changed";

/// Set by the handler of the signals that mean "stop" while we wait for an answer.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn note_interrupt(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

const STOP_SIGNALS: [Signal; 4] = [
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGTERM,
    Signal::SIGQUIT,
];

/// While alive, the stop signals only set `INTERRUPTED` and make the
/// pending `read` fail with EINTR (no SA_RESTART); dropping it puts the
/// previous dispositions back.
struct CatchSignals {
    previous: Vec<(Signal, SigAction)>,
}

impl CatchSignals {
    fn install() -> CatchSignals {
        INTERRUPTED.store(false, Ordering::SeqCst);
        let action = SigAction::new(
            SigHandler::Handler(note_interrupt),
            SaFlags::empty(),
            SigSet::empty(),
        );
        let previous = STOP_SIGNALS
            .iter()
            // SAFETY: the handler only stores to an atomic, which is
            // async-signal-safe.
            .filter_map(|&sig| unsafe { sigaction(sig, &action) }.ok().map(|p| (sig, p)))
            .collect();
        CatchSignals { previous }
    }
}

impl Drop for CatchSignals {
    fn drop(&mut self) {
        for (sig, action) in &self.previous {
            // SAFETY: restores a disposition sigaction itself returned.
            let _ = unsafe { sigaction(*sig, action) };
        }
    }
}

/// The terminal, reading until a byte arrives or a stop signal was caught:
/// std's `read_line` retries EINTR forever, so the signal has to become a
/// different error here.
struct Interruptible(std::fs::File);

impl Read for Interruptible {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.0.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    if INTERRUPTED.load(Ordering::SeqCst) {
                        return Err(io::Error::other("interrupted"));
                    }
                }
                other => return other,
            }
        }
    }
}

/// How deep a statement's text is indented beneath its finding in a summary.
const STATEMENT_INDENT: &str = "      ";

/// Writes `question`: its summary, statements longer than the terminal cut
/// with `…` (their full text is in the audit log), the quoted
/// names in `emphasis` in bold cyan, then the prompt with the word to type
/// in bold yellow. Pure, so every layout is snapshot-tested.
pub fn render_question(out: &mut impl Write, question: &Question, look: Look) -> io::Result<()> {
    let name = console::Style::new()
        .cyan()
        .bold()
        .force_styling(look.colour);
    let word = console::Style::new()
        .yellow()
        .bold()
        .force_styling(look.colour);
    for line in &question.summary {
        // A statement's text (indented beneath its finding) may be any
        // length and is cut; every other line is short by construction and
        // shown whole, so a long database name is never cut off.
        let mut line = if line.starts_with(STATEMENT_INDENT) {
            console::truncate_str(line, look.width.max(20), "…").into_owned()
        } else {
            line.clone()
        };
        if look.colour {
            for emphasised in &question.emphasis {
                let quoted = format!("\"{emphasised}\"");
                line = line.replace(&quoted, &name.apply_to(&quoted).to_string());
            }
        }
        writeln!(out, "{line}")?;
    }
    match &question.expect {
        Expect::Word(w) => write!(
            out,
            "Type \"{}\" to continue (anything else cancels): ",
            word.apply_to(w)
        ),
        Expect::YesNo => write!(out, "Continue? [y/N] "),
    }
}

/// The conversation itself, over any reader and writer (unit tests use
/// buffers; `confirm` uses the terminal).
pub fn ask_on(
    mut input: impl BufRead,
    mut output: impl Write,
    question: &Question,
    look: Look,
) -> Result<Consent, Error> {
    let io_err = |e: io::Error| Error::io("writing to the terminal", e);
    render_question(&mut output, question, look).map_err(io_err)?;
    output.flush().map_err(io_err)?;
    let mut answer = String::new();
    let read = input
        .read_line(&mut answer)
        .map_err(|e| Error::io("reading the answer from the terminal", e))?;
    if read == 0 {
        let _ = writeln!(output);
    }
    if question.accepts(&answer) {
        return Ok(Consent::Typed);
    }
    let why = match &question.expect {
        Expect::Word(word) => format!("cancelled: the answer did not match \"{word}\" exactly"),
        Expect::YesNo => "cancelled".to_owned(),
    };
    Err(Refusal::because(why).hint(NOTHING_CHANGED).into())
}

/// Throws away whatever was typed before the question appeared, so a key
/// pressed while the summary was computed is never taken as the answer.
fn discard_type_ahead(tty: &std::fs::File) {
    // A terminal that cannot be flushed is still asked: the answer must
    // match the word exactly in any case.
    let _ = nix::sys::termios::tcflush(tty, nix::sys::termios::FlushArg::TCIFLUSH);
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: Look = Look {
        width: 80,
        colour: false,
    };

    fn word(w: &str) -> Question {
        Question {
            summary: vec!["This replaces database \"shop\".".into()],
            expect: Expect::Word(w.into()),
            emphasis: vec!["shop".into()],
        }
    }

    #[test]
    fn a_word_must_match_exactly() {
        let q = word("shop");
        assert!(q.accepts("shop\n"));
        assert!(q.accepts("shop\r\n"));
        assert!(q.accepts("shop"));
        for wrong in ["yes\n", "Shop\n", " shop\n", "shop \n", "\n", "", "sho\n"] {
            assert!(!q.accepts(wrong), "{wrong:?}");
        }
    }

    #[test]
    fn yes_no_accepts_only_yes() {
        let q = Question {
            summary: vec![],
            expect: Expect::YesNo,
            emphasis: vec![],
        };
        for ok in ["y\n", "Y\n", "yes\n", " YES \n"] {
            assert!(q.accepts(ok), "{ok:?}");
        }
        for no in ["\n", "n\n", "yess\n", ""] {
            assert!(!q.accepts(no), "{no:?}");
        }
    }

    #[test]
    fn conversation_shows_summary_then_prompt_and_refuses_on_eof() {
        let mut shown = Vec::new();
        let consent = ask_on(&b"shop\n"[..], &mut shown, &word("shop"), PLAIN).unwrap();
        assert_eq!(consent, Consent::Typed);
        assert_eq!(
            String::from_utf8(shown).unwrap(),
            "This replaces database \"shop\".\nType \"shop\" to continue (anything else cancels): "
        );
        let err = ask_on(&b""[..], Vec::new(), &word("shop"), PLAIN).unwrap_err();
        assert_eq!(err.exit_code(), crate::error::exit::REFUSED);
        let err = ask_on(&b"yes\n"[..], Vec::new(), &word("shop"), PLAIN).unwrap_err();
        assert!(err.to_string().contains("did not match \"shop\""), "{err}");
    }

    #[test]
    fn bypasses_come_before_the_terminal() {
        let ctx = Context::for_test(&["dbguard"], &[(YES_ENV, "1")]);
        assert_eq!(
            confirm(&ctx, &word("x"), false).unwrap(),
            Consent::Environment
        );
        let ctx = Context::for_test(&["dbguard"], &[(YES_ENV, "0")]);
        assert_eq!(confirm(&ctx, &word("x"), true).unwrap(), Consent::Flag);
    }
}
