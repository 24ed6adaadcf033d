//! Decodes client bytes with protocol::parse_request as one buffer and as a
//! connection receiving them in chunks (see redlog::fuzz::request for the
//! layout): never panics, hangs, or decodes differently by chunking.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = redlog::fuzz::request(data);
});
