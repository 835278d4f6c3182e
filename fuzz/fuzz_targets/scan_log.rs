//! Coverage-guided fuzzing of the log path (line parsing, record spans, salvage, rules): the
//! input follows a log line, so it is always read as log lines.
#![no_main]

use karpenter_doctor::signal::{Observations, Scanner};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn scanner() -> &'static Scanner {
    static SCANNER: OnceLock<Scanner> = OnceLock::new();
    SCANNER.get_or_init(|| Scanner::new().expect("the shipped rules compile"))
}

fuzz_target!(|data: &[u8]| {
    let mut input = b"2024-06-01T10:00:00.000Z\tINFO\tcontroller\tstart\n".to_vec();
    input.extend_from_slice(data);
    let mut out = Observations::default();
    scanner().scan("fuzz", &input[..], &mut out, &mut |_| {}).expect("a slice never fails to read");
    let lines = 1 + input.iter().filter(|&&b| b == b'\n').count();
    // A record's message may go on over the next lines (`caused by:` chains, `perform: …`), so
    // a signal may begin at the record before the input; never past the input's end.
    assert!(out.signals.iter().all(|s| s.origin.line >= 1 && s.origin.line <= lines));
});
