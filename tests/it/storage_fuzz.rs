//! The fuzz entry `open_segment` on stable: arbitrary bytes, and valid logs
//! with random damage, must never panic nor yield a record with a bad CRC
//! (the entry function asserts those invariants itself).

use proptest::prelude::*;
use redlog::storage::fuzz::fuzz_open_segment;
use redlog::storage::index::{encode_index, IndexEntry};
use redlog::storage::record::encode_record;

/// A valid record stream (no header: the entry adds it) plus a matching index.
fn valid_input(keys: &[u64], vlen: usize, flags: u8) -> Vec<u8> {
    let mut log = Vec::new();
    let mut entries = Vec::new();
    let mut k = 0u128;
    for (i, &gap) in keys.iter().enumerate() {
        k += u128::from(gap) + 1;
        if i % 3 == 0 {
            entries.push(IndexEntry {
                key: k,
                pos: 32 + log.len() as u64,
            });
        }
        encode_record(&mut log, k, &vec![i as u8; vlen + i % 5]);
    }
    let base = entries.first().map_or(0, |e| e.key);
    let index = encode_index(base, &entries);
    let body = &index[32..];
    let mut out = vec![flags | 1 | 2];
    out.extend_from_slice(&(body.len() as u16).to_le_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(&log);
    out
}

proptest! {
    #![proptest_config(crate::common::proptest_cases(512))]

    #[test]
    fn arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = fuzz_open_segment(&data);
    }

    #[test]
    fn damaged_valid_logs(
        keys in prop::collection::vec(0u64..3, 1..40),
        vlen in 0usize..200,
        flags in any::<u8>(),
        damage in prop::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        cut in any::<usize>(),
    ) {
        let mut data = valid_input(&keys, vlen, flags & !3);
        for (at, x) in damage {
            let n = data.len();
            if n > 3 {
                data[3 + at % (n - 3)] ^= x;
            }
        }
        let keep = 3 + cut % (data.len() - 2);
        data.truncate(keep);
        let _ = fuzz_open_segment(&data);
    }
}

#[test]
fn undamaged_input_round_trips() {
    // Sanity check of the generator: with no damage every record comes back.
    for mode in [0u8, 1, 2] {
        let data = valid_input(&[0, 1, 2, 0, 0, 5], 10, mode << 3);
        assert_eq!(fuzz_open_segment(&data), 6, "mode {mode}");
        let data = valid_input(&[0, 1, 2, 0, 0, 5], 10, (mode << 3) | 4);
        assert_eq!(fuzz_open_segment(&data), 7, "mode {mode}, older segment");
    }
}
