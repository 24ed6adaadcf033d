//! Decodes a WAL unit (redlog::db::effect::decode_unit) from arbitrary bytes,
//! re-encodes it and replays it into a keyspace: never panics (see
//! redlog::fuzz::wal_unit).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = redlog::fuzz::wal_unit(data);
});
