//! Decodes a stream entry, op or checkpoint (redlog::stream::codec) from
//! arbitrary bytes: never panics, and what decodes encodes back (see
//! redlog::fuzz::stream_record).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = redlog::fuzz::stream_record(data);
});
