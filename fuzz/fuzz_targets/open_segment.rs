//! Opens a log whose segment and index bytes are arbitrary (see
//! `redlog::storage::fuzz` for the input layout): must never panic nor return
//! a record that is not a valid CRC-checked frame of the input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = redlog::storage::fuzz::fuzz_open_segment(data);
});
