//! Record framing and file headers: the bytes of a log file.
//!
//! ```text
//! log file    = file_header record*
//! file_header = { magic: [u8; 8] | u32 version | u32 header_crc | u128 base_key }   (32 bytes)
//!               magic = "RDLGLOG\0" for a log file, "RDLGIDX\0" for an index file
//!               version = 1
//!               header_crc = crc32c(magic | version | base_key)
//! record      = { u32 len | u32 crc | payload }
//!               len = byte length of payload, 16 <= len <= RECORD_PAYLOAD_BYTES_MAX
//!               crc = crc32c(payload)
//! payload     = { u128 key | value: [u8; len - 16] }
//! ```
//! All integers are little-endian. The key is inside the payload so the CRC
//! covers it. Keys strictly increase within a log, across segments.

use crc32c::crc32c;

/// Format version written in every file header. Readers refuse other versions.
pub const FORMAT_VERSION: u32 = 1;
/// Magic at byte 0 of every log (`.log`) file.
pub const LOG_MAGIC: [u8; 8] = *b"RDLGLOG\0";
/// Magic at byte 0 of every index (`.index`) file.
pub const INDEX_MAGIC: [u8; 8] = *b"RDLGIDX\0";
/// Size of the file header of log and index files, bytes. Fixed so the first
/// record (or index entry) is at a known position.
pub const FILE_HEADER_BYTES: u64 = 32;
/// `u32 len | u32 crc` in front of every payload, bytes.
pub const RECORD_HEADER_BYTES: u64 = 8;
/// The key at the start of every payload, bytes.
pub const KEY_BYTES: u32 = 16;
/// Largest record value, bytes: 512 MiB, Redis's default `proto-max-bulk-len`,
/// so one effect carrying the largest value a client may send fits one record.
/// A length above this is treated as a bad record rather than trusted, which
/// bounds what recovery allocates.
pub const RECORD_VALUE_BYTES_MAX: u32 = 512 * 1024 * 1024;
/// Largest payload (key + value), bytes; the bound checked on the `len` field.
pub const RECORD_PAYLOAD_BYTES_MAX: u32 = KEY_BYTES + RECORD_VALUE_BYTES_MAX;

/// One record: a key and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub key: u128,
    pub value: Vec<u8>,
}

/// Encoded size of a record with a value of `value_len` bytes.
pub fn record_bytes(value_len: usize) -> u64 {
    RECORD_HEADER_BYTES + u64::from(KEY_BYTES) + value_len as u64
}

/// Appends `record = { u32 len | u32 crc32c(payload) | payload = { u128 key | value } }`.
/// The caller checked `value.len() <= RECORD_VALUE_BYTES_MAX`.
pub fn encode_record(out: &mut Vec<u8>, key: u128, value: &[u8]) {
    assert!(
        value.len() <= RECORD_VALUE_BYTES_MAX as usize,
        "caller checks the size"
    );
    let len = KEY_BYTES + value.len() as u32;
    let key_bytes = key.to_le_bytes();
    let crc = crc32c::crc32c_append(crc32c(&key_bytes), value);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&key_bytes);
    out.extend_from_slice(value);
}

/// Why bytes are not a valid record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadRecord {
    /// The record header or payload extends past the end of the file.
    Short,
    /// `len` is below the key size or above `RECORD_PAYLOAD_BYTES_MAX`.
    Length,
    /// The payload does not match its CRC.
    Crc,
    /// A well-formed record whose key is not greater than the previous key
    /// (or, for the first record of a segment, differs from the base key).
    KeyOrder,
}

impl BadRecord {
    pub fn describe(self) -> &'static str {
        match self {
            BadRecord::Short => "short record (extends past end of file)",
            BadRecord::Length => "bad record length",
            BadRecord::Crc => "record CRC mismatch",
            BadRecord::KeyOrder => "record key out of order",
        }
    }
}

/// Outcome of decoding a record at the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A valid record of `total` bytes (header included).
    Record {
        key: u128,
        value: &'a [u8],
        total: u64,
    },
    /// The buffer holds a valid prefix; `need` bytes are required in total.
    Incomplete {
        need: u64,
    },
    Bad(BadRecord),
}

/// Decodes the record at the start of `buf` (see the grammar above).
pub fn decode_record(buf: &[u8]) -> Decoded<'_> {
    if buf.len() < RECORD_HEADER_BYTES as usize {
        return Decoded::Incomplete {
            need: RECORD_HEADER_BYTES,
        };
    }
    let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if !(KEY_BYTES..=RECORD_PAYLOAD_BYTES_MAX).contains(&len) {
        return Decoded::Bad(BadRecord::Length);
    }
    let total = RECORD_HEADER_BYTES + u64::from(len);
    if (buf.len() as u64) < total {
        return Decoded::Incomplete { need: total };
    }
    let crc = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
    let payload = &buf[RECORD_HEADER_BYTES as usize..total as usize];
    if crc32c(payload) != crc {
        return Decoded::Bad(BadRecord::Crc);
    }
    let mut key = [0u8; 16];
    key.copy_from_slice(&payload[..16]);
    Decoded::Record {
        key: u128::from_le_bytes(key),
        value: &payload[16..],
        total,
    }
}

/// `file_header = { magic | u32 version | u32 crc32c(magic|version|base) | u128 base_key }`.
pub fn encode_file_header(magic: [u8; 8], base: u128) -> [u8; FILE_HEADER_BYTES as usize] {
    let mut h = [0u8; FILE_HEADER_BYTES as usize];
    h[0..8].copy_from_slice(&magic);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[16..32].copy_from_slice(&base.to_le_bytes());
    let crc = header_crc(&h);
    h[12..16].copy_from_slice(&crc.to_le_bytes());
    h
}

fn header_crc(h: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c(&h[0..12]), &h[16..32])
}

/// Checks a file header; returns its base key or a reason.
pub fn decode_file_header(h: &[u8], magic: [u8; 8]) -> Result<u128, &'static str> {
    if h.len() < FILE_HEADER_BYTES as usize {
        return Err("short file header");
    }
    if h[0..8] != magic {
        return Err("bad magic");
    }
    if u32::from_le_bytes([h[8], h[9], h[10], h[11]]) != FORMAT_VERSION {
        return Err("unsupported format version");
    }
    if u32::from_le_bytes([h[12], h[13], h[14], h[15]]) != header_crc(h) {
        return Err("file header CRC mismatch");
    }
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[16..32]);
    Ok(u128::from_le_bytes(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trip_and_damage() {
        let mut buf = Vec::new();
        encode_record(&mut buf, 7 << 64 | 3, b"hello");
        assert_eq!(buf.len() as u64, record_bytes(5));
        assert_eq!(
            decode_record(&buf),
            Decoded::Record {
                key: 7 << 64 | 3,
                value: b"hello",
                total: buf.len() as u64
            }
        );
        for cut in 0..buf.len() {
            assert!(matches!(
                decode_record(&buf[..cut]),
                Decoded::Incomplete { .. }
            ));
        }
        for bit in 64..buf.len() * 8 {
            let mut b = buf.clone();
            b[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(decode_record(&b), Decoded::Bad(BadRecord::Crc), "bit {bit}");
        }
        let mut b = buf.clone();
        b[0..4].copy_from_slice(&3u32.to_le_bytes());
        assert_eq!(decode_record(&b), Decoded::Bad(BadRecord::Length));
    }

    #[test]
    fn header_round_trip_and_damage() {
        let h = encode_file_header(LOG_MAGIC, u128::MAX - 5);
        assert_eq!(decode_file_header(&h, LOG_MAGIC), Ok(u128::MAX - 5));
        assert!(decode_file_header(&h, INDEX_MAGIC).is_err());
        for byte in 0..h.len() {
            let mut b = h;
            b[byte] ^= 0x10;
            assert!(decode_file_header(&b, LOG_MAGIC).is_err(), "byte {byte}");
        }
    }
}
