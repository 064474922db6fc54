//! Restoring a table-scoped backup into tables that still exist: their
//! rows and sequence positions are put back in place, in one transaction,
//! without dropping the tables, so views, foreign keys and grants that
//! depend on them stay as they are.
//!
//! The script psql runs (`-1 -v ON_ERROR_STOP=1`, so any error leaves the
//! database as it was):
//! 1. the foreign keys that other tables hold on the restored ones are
//!    remembered in a temporary table and dropped (TRUNCATE refuses a
//!    referenced table, and the rows come back only in step 3);
//! 2. `TRUNCATE` of all the restored tables in one statement;
//! 3. the backup's data: its `TABLE DATA` and `SEQUENCE SET` entries only,
//!    taken from the plain dump (or from `pg_restore --data-only` for an
//!    archive);
//! 4. the foreign keys are added back, which validates every referencing
//!    row against the restored data: a row that points at something the
//!    backup does not hold makes the whole restore fail, unchanged.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::backup::{Format, Metadata};
use crate::pgtools::{PgTools, first_error_line, quote_ident, quote_literal};
use crate::target::Target;

/// What happens before the data: remember and drop the outside foreign
/// keys on `tables`, then empty them. The search path is emptied first, as
/// in pg_dump's own scripts, so that every name the catalog hands back
/// (the referencing table, the constraint's definition) comes qualified
/// and means the same when the constraint is added back.
pub fn prologue(tables: &[(String, String)]) -> String {
    let oids: Vec<String> = tables
        .iter()
        .map(|(s, n)| {
            format!(
                "{}::regclass",
                quote_literal(&format!("{}.{}", quote_ident(s), quote_ident(n)))
            )
        })
        .collect();
    let oids = oids.join(", ");
    let list: Vec<String> = tables
        .iter()
        .map(|(s, n)| format!("{}.{}", quote_ident(s), quote_ident(n)))
        .collect();
    format!(
        "SELECT pg_catalog.set_config('search_path', '', false);
CREATE TEMPORARY TABLE dbguard_restore_fks ON COMMIT DROP AS
  SELECT conrelid::regclass::text AS tbl, conname::text AS name, pg_get_constraintdef(oid) AS def
    FROM pg_constraint
   WHERE contype = 'f' AND confrelid IN ({oids}) AND conrelid NOT IN ({oids});
DO $dbguard$ DECLARE fk record; BEGIN
  FOR fk IN SELECT * FROM dbguard_restore_fks LOOP
    EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', fk.tbl, fk.name);
  END LOOP;
END $dbguard$;
TRUNCATE {};
",
        list.join(", ")
    )
}

/// What happens after the data: the foreign keys come back, validated.
pub const EPILOGUE: &str = "
DO $dbguard$ DECLARE fk record; BEGIN
  FOR fk IN SELECT * FROM dbguard_restore_fks LOOP
    EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I %s', fk.tbl, fk.name, fk.def);
  END LOOP;
END $dbguard$;
";

/// Copies the data entries of a plain pg_dump script to `out`: the
/// header's settings (search_path, encoding, ...), then every `TABLE
/// DATA` and `SEQUENCE SET` entry; the DROP/CREATE entries are left out.
/// Entries are recognised by the comment block pg_dump writes before each
/// one; COPY data is passed through whole, never inspected for markers.
pub fn plain_data(input: impl Read, out: &mut impl Write) -> io::Result<()> {
    let mut lines = BufReader::new(input).split(b'\n');
    // Before the first entry: the header. Inside an entry: keep or skip.
    let mut in_header = true;
    let mut keep = false;
    // A `--` line is held back until the next line says whether it opens
    // an entry's comment block (and so belongs to the next entry).
    let mut held: Option<Vec<u8>> = None;
    let emit = |keep: bool, line: &[u8], out: &mut dyn Write| -> io::Result<()> {
        if keep {
            out.write_all(line)?;
            out.write_all(b"\n")?;
        }
        Ok(())
    };
    while let Some(line) = lines.next() {
        let line = line?;
        if line == b"--" {
            if let Some(previous) = held.replace(line) {
                emit(keep, &previous, out)?;
            }
            continue;
        }
        if held.is_some()
            && (line.starts_with(b"-- Name: ") || line.starts_with(b"-- Data for Name: "))
        {
            let text = String::from_utf8_lossy(&line);
            in_header = false;
            keep = text.contains("; Type: TABLE DATA;") || text.contains("; Type: SEQUENCE SET;");
        }
        if let Some(previous) = held.take() {
            emit(keep, &previous, out)?;
        }
        // In the header only the session settings: with `--clean` the
        // DROP statements of every entry stand there too.
        let setting =
            line.starts_with(b"SET ") || line.starts_with(b"SELECT pg_catalog.set_config(");
        emit(keep || (in_header && setting), &line, out)?;
        if line.starts_with(b"COPY ") && line.ends_with(b" FROM stdin;") {
            // The rows, up to the terminator, belong to this entry whatever they hold.
            for row in lines.by_ref() {
                let row = row?;
                emit(keep, &row, out)?;
                if row == b"\\." {
                    break;
                }
            }
        }
    }
    Ok(())
}

/// Runs the in-place data restore of `tables` from the backup at `data`.
pub fn restore(
    tools: &PgTools,
    target: &Target,
    meta: &Metadata,
    data: &Path,
    tables: &[(String, String)],
) -> Result<(), String> {
    let mut cmd = tools.command(&tools.psql, target);
    cmd.args(["-X", "-w", "-q", "-1", "-v", "ON_ERROR_STOP=1", "-f", "-"])
        .args(target.libpq_args())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut psql = cmd
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", tools.psql.display()))?;
    let stdin = psql.stdin.take();
    let prologue = prologue(tables);
    let fed = std::thread::scope(|threads| {
        let feeder = threads.spawn(move || -> Result<(), String> {
            let Some(stdin) = stdin else {
                return Ok(());
            };
            let mut stdin = io::BufWriter::new(stdin);
            let written = feed(tools, target, meta, data, &prologue, &mut stdin);
            // A broken pipe means psql stopped at an error; its stderr says which.
            match written.and_then(|()| stdin.flush().map_err(|e| e.to_string())) {
                Err(e) if e.contains("Broken pipe") => Ok(()),
                other => other,
            }
        });
        feeder
            .join()
            .unwrap_or_else(|_| Err("the restore feeder panicked".into()))
    });
    let out = psql
        .wait_with_output()
        .map_err(|e| format!("waiting for psql: {e}"))?;
    if !out.status.success() {
        return Err(first_error_line(&String::from_utf8_lossy(&out.stderr)));
    }
    fed
}

fn feed(
    tools: &PgTools,
    target: &Target,
    meta: &Metadata,
    data: &Path,
    prologue: &str,
    out: &mut impl Write,
) -> Result<(), String> {
    let io_err = |e: io::Error| e.to_string();
    match meta.format {
        Format::Plain => {
            // The header's SET lines first, so the prologue runs with the
            // dump's settings too (search_path is empty: names are qualified).
            let file = std::fs::File::open(data).map_err(io_err)?;
            let mut data_sql = Vec::new();
            plain_data(file, &mut data_sql).map_err(io_err)?;
            out.write_all(prologue.as_bytes()).map_err(io_err)?;
            out.write_all(&data_sql).map_err(io_err)?;
        }
        Format::Custom | Format::Directory => {
            out.write_all(prologue.as_bytes()).map_err(io_err)?;
            let mut cmd: Command = tools.command(&tools.pg_restore, target);
            cmd.args(["--data-only", "-f", "-"])
                .arg(data)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let mut child = cmd
                .spawn()
                .map_err(|e| format!("cannot run {}: {e}", tools.pg_restore.display()))?;
            if let Some(mut stdout) = child.stdout.take() {
                io::copy(&mut stdout, out).map_err(io_err)?;
            }
            let done = child.wait_with_output().map_err(io_err)?;
            if !done.status.success() {
                return Err(first_error_line(&String::from_utf8_lossy(&done.stderr)));
            }
        }
    }
    out.write_all(EPILOGUE.as_bytes()).map_err(io_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DUMP: &str = "--
-- PostgreSQL database dump
--

\\restrict abc

SET statement_timeout = 0;
SELECT pg_catalog.set_config('search_path', '', false);

DROP TABLE IF EXISTS public.t;
--
-- Name: t; Type: TABLE; Schema: public; Owner: me
--

CREATE TABLE public.t (id integer, v text);

--
-- Data for Name: t; Type: TABLE DATA; Schema: public; Owner: me
--

COPY public.t (id, v) FROM stdin;
1\t--
2\t-- Name: x; Type: TABLE; Schema: public; Owner: me
\\.


--
-- Name: t_id_seq; Type: SEQUENCE SET; Schema: public; Owner: me
--

SELECT pg_catalog.setval('public.t_id_seq', 2, true);


--
-- Name: t t_pkey; Type: CONSTRAINT; Schema: public; Owner: me
--

ALTER TABLE ONLY public.t ADD CONSTRAINT t_pkey PRIMARY KEY (id);

--
-- PostgreSQL database dump complete
--

\\unrestrict abc
";

    #[test]
    fn only_the_header_data_and_sequence_positions_are_kept() {
        let mut out = Vec::new();
        plain_data(DUMP.as_bytes(), &mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(out.contains("SET statement_timeout = 0;"), "{out}");
        assert!(!out.contains("\\restrict"), "{out}");
        assert!(out.contains("COPY public.t (id, v) FROM stdin;\n1\t--\n2\t-- Name: x; Type: TABLE; Schema: public; Owner: me\n\\.\n"), "{out}");
        assert!(out.contains("setval('public.t_id_seq', 2, true)"), "{out}");
        assert!(!out.contains("CREATE TABLE"), "{out}");
        assert!(!out.contains("DROP TABLE"), "{out}");
        assert!(!out.contains("ADD CONSTRAINT"), "{out}");
    }

    #[test]
    fn the_prologue_names_every_table_once() {
        let p = prologue(&[("public".into(), "a".into()), ("s x".into(), "B".into())]);
        assert!(
            p.contains("TRUNCATE \"public\".\"a\", \"s x\".\"B\";"),
            "{p}"
        );
        assert!(p.contains("'\"s x\".\"B\"'::regclass"), "{p}");
    }
}
