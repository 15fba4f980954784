//! `parse_id_list`, the `--ids 1,2,5-9` parser.
//!
//! Input: the UTF-8 text given on the command line.
//!
//! Invariants: no panic; on `Ok`, at least one range and each has
//! `lo <= hi`; writing the ranges back out parses to the same ranges.

#![no_main]

use libfuzzer_sys::fuzz_target;
use piwigo_s3upload::piwigo::parse_id_list;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(ranges) = parse_id_list(text) else {
        return;
    };
    assert!(!ranges.is_empty(), "{text:?} gave no range");
    for &(lo, hi) in &ranges {
        assert!(lo <= hi, "{text:?} gave the backward range {lo}-{hi}");
    }
    let written = ranges
        .iter()
        .map(|(lo, hi)| format!("{lo}-{hi}"))
        .collect::<Vec<_>>()
        .join(",");
    assert_eq!(
        parse_id_list(&written).as_deref(),
        Ok(ranges.as_slice()),
        "{text:?} did not round-trip through {written:?}"
    );
});
