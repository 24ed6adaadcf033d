//! Decodes a LOGPARSE format spec, miner state or ingestor state from arbitrary
//! bytes, compiles and runs what decodes: never panics (see
//! redlog::fuzz::logparse).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = redlog::fuzz::logparse(data);
});
