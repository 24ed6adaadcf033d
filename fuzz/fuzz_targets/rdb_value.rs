//! Decodes an RDB value (a RESTORE payload: type byte and object,
//! redlog::rdb) from arbitrary bytes: never panics, and what decodes dumps
//! back to bytes that decode to the same value (see
//! redlog::fuzz::rdb_value).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = redlog::fuzz::rdb_value(data);
});
