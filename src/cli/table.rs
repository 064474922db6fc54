//! Tables that fit the terminal, for `dbguard list` and `dbguard log`.
//!
//! Columns keep their natural width; when the line would be wider than the
//! terminal, optional columns are dropped first (least useful first), then
//! the one flexible column (the statement or reason) is cut with `…`. Colour
//! is applied after measuring, so escapes never count towards the width.
//!
//! Written here rather than taken from a table crate: the crates wrap long
//! cells onto several lines, and a listing wants one line per row that
//! `grep` and `head` can work with; `console` (already a dependency) does
//! the width measuring and cutting.

use std::io::{self, IsTerminal, Write};

use console::{Style, measure_text_width, truncate_str};

use crate::Context;

/// Two spaces between columns.
const GAP: usize = 2;

/// Optional columns are dropped rather than leave the flexible column (the
/// statement: what the row is about) narrower than this.
const WANT_FLEX: usize = 32;

/// The narrowest the flexible column is ever cut to, even if the line then
/// wraps: a few words of the statement say more than a neat edge.
const MIN_FLEX: usize = 8;

/// How a column behaves when the line is too wide.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub header: &'static str,
    /// The column that is cut to fit (one per table, the last).
    pub flex: bool,
    /// Dropped when space runs short; higher goes first. `None` always stays.
    pub drop_rank: Option<u8>,
}

impl Column {
    pub const fn fixed(header: &'static str) -> Column {
        Column {
            header,
            flex: false,
            drop_rank: None,
        }
    }

    pub const fn optional(header: &'static str, drop_rank: u8) -> Column {
        Column {
            header,
            flex: false,
            drop_rank: Some(drop_rank),
        }
    }

    pub const fn flex(header: &'static str) -> Column {
        Column {
            header,
            flex: true,
            drop_rank: None,
        }
    }
}

/// One cell: its text and how to colour it.
#[derive(Debug, Clone)]
pub struct Cell {
    pub text: String,
    pub style: Option<Style>,
}

impl Cell {
    pub fn plain(text: impl AsRef<str>) -> Cell {
        Cell {
            text: one_line(text.as_ref()),
            style: None,
        }
    }

    pub fn styled(text: impl AsRef<str>, style: Style) -> Cell {
        Cell {
            text: one_line(text.as_ref()),
            style: Some(style),
        }
    }
}

/// Where the table goes and how it may look.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    /// Columns available; `None`: no limit (output is not a terminal and
    /// `COLUMNS` is not set, so nothing is cut for `grep`).
    pub width: Option<usize>,
    pub colour: bool,
}

impl Layout {
    /// Width from `COLUMNS`, else the terminal's; colour on a terminal
    /// unless `NO_COLOR` is set or `TERM=dumb`, as for `dbguard scan`.
    pub fn for_stdout(ctx: &Context) -> Layout {
        let stdout = io::stdout();
        let tty = stdout.is_terminal();
        let from_env = ctx
            .var("COLUMNS")
            .and_then(|v| v.to_str().and_then(|v| v.trim().parse::<usize>().ok()))
            .filter(|w| *w > 0);
        let width = from_env.or_else(|| {
            tty.then(|| console::Term::stdout().size_checked())
                .flatten()
                .map(|(_, cols)| usize::from(cols))
        });
        let colour = tty
            && ctx.var("NO_COLOR").is_none_or(|v| v.is_empty())
            && ctx.var("TERM").is_none_or(|v| v != "dumb");
        Layout { width, colour }
    }
}

/// `text` on one line for a cell: runs of whitespace (newlines in a
/// statement) become one space, and other control characters, which a
/// statement or a command line may carry and a terminal would obey, are
/// shown as `�`.
pub fn one_line(text: &str) -> String {
    text.split_whitespace()
        .map(|word| word.replace(char::is_control, "\u{fffd}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Writes the header and `rows` (each as long as `columns`).
pub fn write(
    out: &mut impl Write,
    columns: &[Column],
    rows: &[Vec<Cell>],
    layout: Layout,
) -> io::Result<()> {
    let natural: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            rows.iter()
                .map(|r| measure_text_width(&r[i].text))
                .chain([c.header.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut shown: Vec<bool> = vec![true; columns.len()];
    let total = |shown: &[bool]| -> usize {
        let widths: Vec<usize> = (0..columns.len())
            .filter(|&i| shown[i])
            .map(|i| natural[i])
            .collect();
        widths.iter().sum::<usize>() + GAP * widths.len().saturating_sub(1)
    };
    let mut widths = natural.clone();
    if let Some(limit) = layout.width {
        // Drop optional columns until the line fits with the flexible
        // column at its natural width or cut to no less than WANT_FLEX.
        let flex_slack = |shown: &[bool]| -> usize {
            columns
                .iter()
                .enumerate()
                .filter(|(i, c)| c.flex && shown[*i])
                .map(|(i, _)| natural[i].saturating_sub(WANT_FLEX))
                .sum()
        };
        while total(&shown).saturating_sub(flex_slack(&shown)) > limit {
            let next = columns
                .iter()
                .enumerate()
                .filter(|(i, c)| shown[*i] && c.drop_rank.is_some())
                .max_by_key(|(_, c)| c.drop_rank)
                .map(|(i, _)| i);
            match next {
                Some(i) => shown[i] = false,
                None => break,
            }
        }
        let over = total(&shown).saturating_sub(limit);
        if let Some(flex) = (0..columns.len()).find(|&i| shown[i] && columns[i].flex) {
            widths[flex] = natural[flex]
                .saturating_sub(over)
                .max(MIN_FLEX.min(natural[flex]));
        }
    }
    let visible: Vec<usize> = (0..columns.len()).filter(|&i| shown[i]).collect();
    let header: Vec<Cell> = columns
        .iter()
        .map(|c| Cell::styled(c.header, Style::new().bold()))
        .collect();
    line(out, &visible, &widths, &header, layout.colour)?;
    for row in rows {
        line(out, &visible, &widths, row, layout.colour)?;
    }
    Ok(())
}

fn line(
    out: &mut impl Write,
    visible: &[usize],
    widths: &[usize],
    cells: &[Cell],
    colour: bool,
) -> io::Result<()> {
    let mut text = String::new();
    for (n, &i) in visible.iter().enumerate() {
        let cell = &cells[i];
        let cut = truncate_str(&cell.text, widths[i], "…");
        debug_assert!(
            !cell.text.contains(char::is_control),
            "cells are one_line()d"
        );
        let used = measure_text_width(&cut);
        match (&cell.style, colour) {
            (Some(style), true) => {
                text.push_str(&style.apply_to(&cut).force_styling(true).to_string())
            }
            _ => text.push_str(&cut),
        }
        if n + 1 < visible.len() {
            text.push_str(&" ".repeat(widths[i] - used + GAP));
        }
    }
    writeln!(out, "{}", text.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLUMNS: [Column; 3] = [
        Column::fixed("ID"),
        Column::optional("EXTRA", 1),
        Column::flex("STATEMENT"),
    ];

    fn render(width: Option<usize>) -> String {
        let rows = vec![vec![
            Cell::plain("a1"),
            Cell::plain("something optional"),
            Cell::plain("DROP TABLE a_rather_long_table_name CASCADE"),
        ]];
        let mut out = Vec::new();
        write(
            &mut out,
            &COLUMNS,
            &rows,
            Layout {
                width,
                colour: false,
            },
        )
        .expect("writing to a Vec cannot fail");
        String::from_utf8(out).expect("the table is UTF-8")
    }

    #[test]
    fn cells_are_one_line_without_control_characters() {
        assert_eq!(
            Cell::plain("DELETE FROM t\n  WHERE\tx \u{1b}[31m").text,
            "DELETE FROM t WHERE x \u{fffd}[31m"
        );
    }

    #[test]
    fn no_limit_keeps_everything() {
        assert_eq!(
            render(None),
            "ID  EXTRA               STATEMENT\n\
             a1  something optional  DROP TABLE a_rather_long_table_name CASCADE\n"
        );
    }

    #[test]
    fn the_flexible_column_is_cut_before_optional_ones_go() {
        let text = render(Some(60));
        assert!(text.lines().all(|l| measure_text_width(l) <= 60), "{text}");
        assert!(text.contains("something optional"), "{text}");
        assert!(
            text.contains("DROP TABLE a_rather_long_table_name…"),
            "{text}"
        );
    }

    #[test]
    fn optional_columns_go_when_the_statement_would_get_too_narrow() {
        let text = render(Some(30));
        assert!(text.lines().all(|l| measure_text_width(l) <= 30), "{text}");
        assert!(!text.contains("EXTRA"), "{text}");
        assert!(text.contains("a1  DROP TABLE"), "{text}");
    }
}
