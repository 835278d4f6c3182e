//! Coverage-guided fuzzing of the scanner on any input (kind detection, JSON and YAML
//! documents, log lines): it must never panic, and its caps must hold.
#![no_main]

use karpenter_doctor::signal::{Observations, Scanner};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn scanner() -> &'static Scanner {
    static SCANNER: OnceLock<Scanner> = OnceLock::new();
    SCANNER.get_or_init(|| Scanner::new().expect("the shipped rules compile"))
}

fuzz_target!(|data: &[u8]| {
    let mut out = Observations::default();
    scanner().scan("fuzz", data, &mut out, &mut |_| {}).expect("a slice never fails to read");
    assert!(out.warnings.len() <= 101);
    assert!(out.signals.iter().all(|s| s.message.len() <= 4096));
});
