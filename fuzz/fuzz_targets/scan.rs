//! Fuzz target over the lexer and classifier: any bytes, scanned whole and
//! again in uneven reads, must give the same report without panicking; a
//! gexec-terminated copy exercises the dynamic-SQL rules as well.

#![no_main]

use std::io::Read;
use std::path::Path;

use dbguard::sql::Scanner;
use libfuzzer_sys::fuzz_target;

/// Hands out the input in reads of varying small sizes.
struct Uneven<'a> {
    data: &'a [u8],
    turn: usize,
}

impl Read for Uneven<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.turn += 1;
        let n = (1 + self.turn % 7).min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fuzz_target!(|data: &[u8]| {
    let root = Path::new("/nonexistent-fuzz-root");
    let mut whole = Scanner::new(root);
    whole.apply_assignment("x=DROP TABLE t");
    whole.scan_bytes("fuzz.sql", data, root);
    let whole = whole.finish();

    let mut uneven = Scanner::new(root);
    uneven.apply_assignment("x=DROP TABLE t");
    uneven.scan_reader("fuzz.sql", Uneven { data, turn: 0 }, root);
    assert_eq!(uneven.finish(), whole, "chunking changed the report");

    let mut gexec = data.to_vec();
    gexec.extend_from_slice(b" \\gexec\n");
    let mut scanner = Scanner::new(root);
    scanner.scan_bytes("fuzz.sql", &gexec, root);
    let _ = scanner.finish();
});
