//! Decodes a cluster bus message (Redis 7.0's clusterMsg, redlog::cluster::bus)
//! from arbitrary bytes: never panics, and what decodes encodes back to
//! bytes that decode to the same message (see redlog::fuzz::cluster_bus).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = redlog::fuzz::cluster_bus(data);
});
