//! Scanner throughput on inputs this file generates itself:
//!
//! - `pg_dump`: a plain pg_dump of a database holding about 300 MB of COPY
//!   data (target: at least 1 GB/s);
//! - `statement_dense`: about 50 MB of short statements, one in ten of them
//!   an UPDATE, DELETE, DROP or ALTER (target: at least 100 MB/s).
//!
//! Run with `cargo bench --bench scan`. To measure the binary itself (and
//! its peak memory), write the inputs to files and time a scan:
//!
//! ```text
//! DBGUARD_BENCH_WRITE=/tmp/dbguard-bench cargo bench --bench scan
//! cargo build --release
//! /usr/bin/time -v target/release/dbguard scan /tmp/dbguard-bench/pg_dump.sql
//! /usr/bin/time -v target/release/dbguard scan /tmp/dbguard-bench/statement_dense.sql
//! ```

use std::hint::black_box;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dbguard::sql::Scanner;

/// A small deterministic generator, so every run scans the same bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const WORDS: [&str; 12] = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliett",
    "kilo", "lima",
];

/// A plain-format pg_dump: preamble, tables, COPY blocks of `copy_bytes`
/// in total, then constraints and indexes, as pg_dump orders them.
pub fn pg_dump(copy_bytes: usize) -> Vec<u8> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut out = Vec::with_capacity(copy_bytes + (1 << 20));
    out.extend_from_slice(
        b"--\n-- PostgreSQL database dump\n--\n\n\
          SET statement_timeout = 0;\nSET lock_timeout = 0;\n\
          SET client_encoding = 'UTF8';\nSET standard_conforming_strings = on;\n\
          SELECT pg_catalog.set_config('search_path', '', false);\n\
          SET check_function_bodies = false;\nSET default_tablespace = '';\n\n",
    );
    let tables = 8;
    for t in 0..tables {
        write!(
            out,
            "--\n-- Name: t{t}; Type: TABLE; Schema: public; Owner: app\n--\n\n\
             CREATE TABLE public.t{t} (\n    id bigint NOT NULL,\n    name text,\n    \
             email text,\n    created_at timestamp with time zone,\n    payload text\n);\n\n\
             ALTER TABLE public.t{t} OWNER TO app;\n\n"
        )
        .expect("writing to a Vec cannot fail");
    }
    let per_table = copy_bytes / tables;
    let mut id = 0u64;
    for t in 0..tables {
        write!(
            out,
            "--\n-- Data for Name: t{t}; Type: TABLE DATA; Schema: public; Owner: app\n--\n\n\
             COPY public.t{t} (id, name, email, created_at, payload) FROM stdin;\n"
        )
        .expect("writing to a Vec cannot fail");
        let start = out.len();
        while out.len() - start < per_table {
            id += 1;
            let w = WORDS[rng.below(12) as usize];
            let v = WORDS[rng.below(12) as usize];
            write!(
                out,
                "{id}\t{w} {v}\t{w}.{id}@example.com\t2024-{:02}-{:02} 12:{:02}:00+00\t",
                1 + rng.below(12),
                1 + rng.below(28),
                rng.below(60)
            )
            .expect("writing to a Vec cannot fail");
            // Payloads that look like SQL must stay data.
            match rng.below(8) {
                0 => out.extend_from_slice(b"DROP TABLE users; -- not SQL here"),
                1 => out.extend_from_slice(b"it's a \\\\ backslash and a tab\\there"),
                2 => out.extend_from_slice(b"\\N"),
                _ => {
                    for _ in 0..(2 + rng.below(10)) {
                        out.extend_from_slice(WORDS[rng.below(12) as usize].as_bytes());
                        out.push(b' ');
                    }
                }
            }
            out.push(b'\n');
        }
        out.extend_from_slice(b"\\.\n\n\n");
    }
    for t in 0..tables {
        write!(
            out,
            "--\n-- Name: t{t} t{t}_pkey; Type: CONSTRAINT; Schema: public; Owner: app\n--\n\n\
             ALTER TABLE ONLY public.t{t}\n    ADD CONSTRAINT t{t}_pkey PRIMARY KEY (id);\n\n\
             CREATE INDEX t{t}_email_idx ON public.t{t} USING btree (email);\n\n"
        )
        .expect("writing to a Vec cannot fail");
    }
    out.extend_from_slice(b"--\n-- PostgreSQL database dump complete\n--\n\n");
    out
}

/// Short statements, about one in ten destructive or nearly so.
pub fn statement_dense(bytes: usize) -> Vec<u8> {
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let mut out = Vec::with_capacity(bytes + 1024);
    let mut n = 0u64;
    while out.len() < bytes {
        n += 1;
        let w = WORDS[rng.below(12) as usize];
        let t = rng.below(50);
        let r = rng.below(100);
        let line = match r {
            0..=34 => format!(
                "INSERT INTO t{t} (id, name, note) VALUES ({n}, '{w}', 'row {n}; not a terminator');\n"
            ),
            35..=59 => format!("SELECT id, name FROM t{t} WHERE id = {n} AND name <> '{w}';\n"),
            60..=74 => format!(
                "CREATE TABLE IF NOT EXISTS t{t}_{n} (id bigint PRIMARY KEY, name text DEFAULT '{w}');\n"
            ),
            75..=84 => format!("-- {w} comment\nCREATE INDEX ON t{t} (name); /* {w} */\n"),
            85..=89 => format!("SELECT count(*) FROM t{t} GROUP BY name HAVING count(*) > {n};\n"),
            90..=92 => format!("UPDATE t{t} SET name = '{w}' WHERE id = {n};\n"),
            93..=94 => format!("DELETE FROM t{t} WHERE id = {n};\n"),
            95 => format!("DELETE FROM t{t};\n"),
            96 => format!("DROP TABLE IF EXISTS t{t}_{n};\n"),
            97 => format!("ALTER TABLE t{t} DROP COLUMN IF EXISTS c{n};\n"),
            98 => format!("ALTER TABLE t{t} ADD COLUMN c{n} integer;\n"),
            _ => format!("UPDATE t{t} SET name = '{w}';\n"),
        };
        out.extend_from_slice(line.as_bytes());
    }
    out
}

fn scan(input: &[u8]) -> u64 {
    let mut scanner = Scanner::new("/");
    scanner.scan_bytes("bench.sql", input, Path::new("/"));
    let report = scanner.finish();
    report.statements + report.destructive_count()
}

fn write_inputs(dir: &Path) {
    std::fs::create_dir_all(dir).expect("create the input directory");
    std::fs::write(dir.join("pg_dump.sql"), pg_dump(300 << 20)).expect("write pg_dump.sql");
    std::fs::write(dir.join("statement_dense.sql"), statement_dense(50 << 20))
        .expect("write statement_dense.sql");
    eprintln!(
        "wrote {}/pg_dump.sql and statement_dense.sql",
        dir.display()
    );
}

fn benches(c: &mut Criterion) {
    if let Some(dir) = std::env::var_os("DBGUARD_BENCH_WRITE") {
        write_inputs(Path::new(&dir));
        return;
    }
    let dump = pg_dump(300 << 20);
    let mut group = c.benchmark_group("scan");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Bytes(dump.len() as u64));
    group.bench_function("pg_dump_300MB", |b| b.iter(|| scan(black_box(&dump))));
    drop(dump);

    let dense = statement_dense(50 << 20);
    group.throughput(Throughput::Bytes(dense.len() as u64));
    group.bench_function("statement_dense_50MB", |b| {
        b.iter(|| scan(black_box(&dense)))
    });
    group.finish();
}

criterion_group!(scan_benches, benches);
criterion_main!(scan_benches);
