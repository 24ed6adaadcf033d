//! Redis 7.0's RDB serialization (rdb.c), as pure code: bytes in, values
//! out and back. No sockets, no files, no keyspace.
//!
//! - `mod.rs`: the envelope of a DUMP payload (`dump_envelope`,
//!   `check_envelope`, CRC-64/Jones), the length and string encodings, the
//!   decoded value types (`RdbValue`).
//! - `lzf.rs`: LZF compression as Redis's liblzf writes it.
//! - `packed.rs`: the packed containers: listpack (read and write), ziplist,
//!   intset, zipmap (read; intset also written).
//! - `value.rs`: one value of each type, read (RDB versions 9 and 10, every
//!   encoding redis-server 6.0-7.0 writes) and written as redis-server 7.0
//!   writes it for the same encoding.
//! - `stream.rs`: stream values (listpacks of entries, consumer groups,
//!   PELs, consumers).
//! - `file.rs`: whole RDB files (header, aux fields, databases, EOF and
//!   checksum).
//!
//! Every reader is bounded by its input: lengths are checked against the
//! bytes left before anything is allocated, so a hostile payload gives
//! `Error`, never a panic or a huge allocation.

pub mod file;
pub mod lzf;
pub mod packed;
pub mod stream;
pub mod value;

pub use value::{read_value, write_value, RdbValue};

/// The RDB version this code writes (Redis 7.0's `RDB_VERSION`).
pub const RDB_VERSION: u16 = 10;

/// Oldest RDB version read: Redis 6.0 writes 9.
pub const RDB_VERSION_MIN: u16 = 9;

/// Object types (`RDB_TYPE_*`).
pub mod types {
    pub const STRING: u8 = 0;
    pub const LIST: u8 = 1;
    pub const SET: u8 = 2;
    pub const ZSET: u8 = 3;
    pub const HASH: u8 = 4;
    pub const ZSET_2: u8 = 5;
    pub const MODULE: u8 = 6;
    pub const MODULE_2: u8 = 7;
    pub const HASH_ZIPMAP: u8 = 9;
    pub const LIST_ZIPLIST: u8 = 10;
    pub const SET_INTSET: u8 = 11;
    pub const ZSET_ZIPLIST: u8 = 12;
    pub const HASH_ZIPLIST: u8 = 13;
    pub const LIST_QUICKLIST: u8 = 14;
    pub const STREAM_LISTPACKS: u8 = 15;
    pub const HASH_LISTPACK: u8 = 16;
    pub const ZSET_LISTPACK: u8 = 17;
    pub const LIST_QUICKLIST_2: u8 = 18;
    pub const STREAM_LISTPACKS_2: u8 = 19;
}

/// File opcodes (`RDB_OPCODE_*`).
pub mod opcodes {
    pub const FUNCTION2: u8 = 245;
    pub const FUNCTION: u8 = 246;
    pub const MODULE_AUX: u8 = 247;
    pub const IDLE: u8 = 248;
    pub const FREQ: u8 = 249;
    pub const AUX: u8 = 250;
    pub const RESIZEDB: u8 = 251;
    pub const EXPIRETIME_MS: u8 = 252;
    pub const EXPIRETIME: u8 = 253;
    pub const SELECTDB: u8 = 254;
    pub const EOF: u8 = 255;
}

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input ended inside a value.
    #[error("unexpected end of RDB data")]
    Truncated,
    /// The bytes are not a valid encoding.
    #[error("bad RDB data: {0}")]
    Bad(&'static str),
    /// A type this code does not read (modules).
    #[error("unsupported RDB object type {0}")]
    UnsupportedType(u8),
    /// A collection with no element (Redis refuses empty keys).
    #[error("empty key")]
    EmptyKey,
}

pub type Result<T> = std::result::Result<T, Error>;

/// CRC-64/Jones as Redis computes it (reflected, initial value 0).
pub const CRC64: crc::Crc<u64> = crc::Crc::<u64>::new(&crc::CRC_64_REDIS);

/// Redis's `crc64(0, data, len)`.
pub fn crc64(data: &[u8]) -> u64 {
    CRC64.checksum(data)
}

/// Appends the DUMP footer to `payload`: `u16 LE RDB version | u64 LE
/// crc64 of everything before` (Redis's `createDumpPayload`). FUNCTION
/// DUMP uses the same envelope.
pub fn dump_envelope(mut payload: Vec<u8>) -> Vec<u8> {
    payload.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(&payload);
    payload.extend_from_slice(&crc.to_le_bytes());
    payload
}

/// Checks a DUMP envelope (Redis's `verifyDumpPayload`): at least 10 bytes,
/// an RDB version this code reads, a matching CRC. Returns the payload
/// without its footer and the version. `None` is Redis's
/// `DUMP payload version or checksum are wrong`.
pub fn check_envelope(data: &[u8]) -> Option<(&[u8], u16)> {
    if data.len() < 10 {
        return None;
    }
    let (body, crc) = data.split_at(data.len() - 8);
    let version = u16::from_le_bytes([body[body.len() - 2], body[body.len() - 1]]);
    if version > RDB_VERSION {
        return None;
    }
    let mut c = [0u8; 8];
    c.copy_from_slice(crc);
    if crc64(body) != u64::from_le_bytes(c) {
        return None;
    }
    Some((&body[..body.len() - 2], version))
}

/// A cursor over RDB bytes.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// `RDB_ENCVAL` lengths: 11xxxxxx.
const ENC_INT8: u64 = 0;
const ENC_INT16: u64 = 1;
const ENC_INT32: u64 = 2;
const ENC_LZF: u64 = 3;

/// A decoded length: plain, or the special string encodings.
enum Len {
    Plain(u64),
    Encoded(u64),
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(Error::Truncated);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.bytes(1)?[0])
    }

    pub fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.bytes(N)?);
        Ok(a)
    }

    fn len_or_enc(&mut self) -> Result<Len> {
        let b = self.u8()?;
        Ok(match b >> 6 {
            0 => Len::Plain(u64::from(b & 0x3f)),
            1 => Len::Plain((u64::from(b & 0x3f) << 8) | u64::from(self.u8()?)),
            2 => match b {
                0x80 => Len::Plain(u64::from(u32::from_be_bytes(self.array()?))),
                0x81 => Len::Plain(u64::from_be_bytes(self.array()?)),
                _ => return Err(Error::Bad("unknown length encoding")),
            },
            _ => Len::Encoded(u64::from(b & 0x3f)),
        })
    }

    /// A length (`rdbLoadLen`).
    pub fn len(&mut self) -> Result<u64> {
        match self.len_or_enc()? {
            Len::Plain(n) => Ok(n),
            Len::Encoded(_) => Err(Error::Bad("encoded value where a length was expected")),
        }
    }

    /// A count of items that each take at least `min_bytes` bytes: refused
    /// when the input cannot hold them, so callers may reserve for it.
    pub fn count(&mut self, min_bytes: usize) -> Result<usize> {
        let n = self.len()?;
        let n = usize::try_from(n).map_err(|_| Error::Truncated)?;
        if n.saturating_mul(min_bytes.max(1)) > self.remaining() {
            return Err(Error::Truncated);
        }
        Ok(n)
    }

    /// A string object (`rdbGenericLoadStringObject`): raw, integer or LZF.
    pub fn string(&mut self) -> Result<Vec<u8>> {
        match self.len_or_enc()? {
            Len::Plain(n) => {
                let n = usize::try_from(n).map_err(|_| Error::Truncated)?;
                Ok(self.bytes(n)?.to_vec())
            }
            Len::Encoded(ENC_INT8) => Ok(itoa(i64::from(self.u8()? as i8))),
            Len::Encoded(ENC_INT16) => Ok(itoa(i64::from(i16::from_le_bytes(self.array()?)))),
            Len::Encoded(ENC_INT32) => Ok(itoa(i64::from(i32::from_le_bytes(self.array()?)))),
            Len::Encoded(ENC_LZF) => {
                let clen = usize::try_from(self.len()?).map_err(|_| Error::Truncated)?;
                let len = usize::try_from(self.len()?).map_err(|_| Error::Truncated)?;
                let comp = self.bytes(clen)?;
                // LZF expands at most ~ 8 KiB per 3 input bytes, the
                // back-reference maximum (264 bytes) per 2 bytes: a claimed
                // length beyond that is a lie, refused before allocating.
                if len == 0 || len > clen.saturating_mul(LZF_EXPANSION_MAX) {
                    return Err(Error::Bad("LZF length"));
                }
                let out = ::lzf::decompress(comp, len).map_err(|_| Error::Bad("LZF data"))?;
                if out.len() != len {
                    return Err(Error::Bad("LZF length"));
                }
                Ok(out)
            }
            Len::Encoded(_) => Err(Error::Bad("unknown string encoding")),
        }
    }

    /// A binary double (`rdbLoadBinaryDoubleValue`).
    pub fn binary_double(&mut self) -> Result<f64> {
        Ok(f64::from_le_bytes(self.array()?))
    }

    /// A text double of the old ZSET type (`rdbLoadDoubleValue`).
    pub fn text_double(&mut self) -> Result<f64> {
        let n = self.u8()?;
        match n {
            253 => Ok(f64::NAN),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            _ => {
                let b = self.bytes(usize::from(n))?;
                let s = std::str::from_utf8(b).map_err(|_| Error::Bad("double"))?;
                s.trim().parse::<f64>().map_err(|_| Error::Bad("double"))
            }
        }
    }

    pub fn u64_le(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    pub fn u32_le(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }
}

/// An LZF back-reference (3 bytes) yields at most 264 bytes.
const LZF_EXPANSION_MAX: usize = 100;

fn itoa(n: i64) -> Vec<u8> {
    itoa::Buffer::new().format(n).as_bytes().to_vec()
}

/// Strings longer than this are LZF-compressed (`rdbSaveRawString` with
/// `rdbcompression yes`).
const COMPRESS_BYTES_MIN: usize = 21;

/// Appends RDB encodings.
#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Writer {
        Writer::default()
    }

    pub fn u8(&mut self, b: u8) {
        self.buf.push(b);
    }

    pub fn raw(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    /// `rdbSaveLen`.
    pub fn len(&mut self, n: u64) {
        if n < 1 << 6 {
            self.buf.push(n as u8);
        } else if n < 1 << 14 {
            self.buf.push(0x40 | (n >> 8) as u8);
            self.buf.push(n as u8);
        } else if n <= u64::from(u32::MAX) {
            self.buf.push(0x80);
            self.buf.extend_from_slice(&(n as u32).to_be_bytes());
        } else {
            self.buf.push(0x81);
            self.buf.extend_from_slice(&n.to_be_bytes());
        }
    }

    /// `rdbEncodeInteger`: false when `v` needs more than 32 bits.
    fn int_encoded(&mut self, v: i64) -> bool {
        if let Ok(v) = i8::try_from(v) {
            self.buf.push(0xc0 | ENC_INT8 as u8);
            self.buf.push(v as u8);
        } else if let Ok(v) = i16::try_from(v) {
            self.buf.push(0xc0 | ENC_INT16 as u8);
            self.buf.extend_from_slice(&v.to_le_bytes());
        } else if let Ok(v) = i32::try_from(v) {
            self.buf.push(0xc0 | ENC_INT32 as u8);
            self.buf.extend_from_slice(&v.to_le_bytes());
        } else {
            return false;
        }
        true
    }

    /// `rdbSaveRawString`: the integer encodings for short canonical
    /// integers, LZF above 20 bytes when it saves at least 4 bytes, else
    /// length and bytes.
    pub fn string(&mut self, s: &[u8]) {
        if s.len() <= 11 {
            if let Some(v) = crate::protocol::parse::parse_i64(s) {
                if self.int_encoded(v) {
                    return;
                }
            }
        }
        if s.len() >= COMPRESS_BYTES_MIN && self.lzf(s) {
            return;
        }
        self.len(s.len() as u64);
        self.buf.extend_from_slice(s);
    }

    /// `rdbSaveLzfStringObject`: only when the result is at least 4 bytes
    /// smaller than the input.
    fn lzf(&mut self, s: &[u8]) -> bool {
        let Some(c) = self::lzf::compress(s, s.len() - 4) else {
            return false;
        };
        if c.is_empty() {
            return false;
        }
        self.buf.push(0xc0 | ENC_LZF as u8);
        self.len(c.len() as u64);
        self.len(s.len() as u64);
        self.buf.extend_from_slice(&c);
        true
    }

    /// A string without compression or integer encoding (a listpack blob
    /// is saved through `rdbSaveRawString` too, so this is only for
    /// callers that must not compress).
    pub fn string_plain(&mut self, s: &[u8]) {
        self.len(s.len() as u64);
        self.buf.extend_from_slice(s);
    }

    pub fn binary_double(&mut self, d: f64) {
        self.buf.extend_from_slice(&d.to_le_bytes());
    }

    pub fn u64_le(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc64_is_redis_jones() {
        // Redis's crc64.c self-test value.
        assert_eq!(crc64(b"123456789"), 0xe9c6d914c4b8d9ca);
    }

    #[test]
    fn envelope_round_trip_and_damage() {
        let env = dump_envelope(vec![0, 3, b'a', b'b', b'c']);
        let (body, v) = check_envelope(&env).expect("valid");
        assert_eq!((body, v), (&[0, 3, b'a', b'b', b'c'][..], 10));
        let mut bad = env.clone();
        bad[2] ^= 1;
        assert!(check_envelope(&bad).is_none());
        assert!(check_envelope(&env[..9]).is_none());
        let mut newer = vec![0, 0];
        newer.extend_from_slice(&11u16.to_le_bytes());
        let crc = crc64(&newer);
        newer.extend_from_slice(&crc.to_le_bytes());
        assert!(check_envelope(&newer).is_none());
    }

    #[test]
    fn lengths_round_trip() {
        for n in [
            0u64,
            63,
            64,
            16383,
            16384,
            u32::MAX as u64,
            u32::MAX as u64 + 1,
        ] {
            let mut w = Writer::new();
            w.len(n);
            assert_eq!(Reader::new(&w.buf).len(), Ok(n));
        }
    }

    #[test]
    fn strings_round_trip_with_int_and_lzf() {
        let long = b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_vec();
        for s in [
            &b""[..],
            b"0",
            b"-1",
            b"127",
            b"-129",
            b"32768",
            b"2147483647",
            b"2147483648",
            b"007",
            b"hello",
            &long,
        ] {
            let mut w = Writer::new();
            w.string(s);
            assert_eq!(Reader::new(&w.buf).string().as_deref(), Ok(s), "{s:?}");
        }
        let mut w = Writer::new();
        w.string(b"12");
        assert_eq!(w.buf, [0xc0, 12]);
        let mut w = Writer::new();
        w.string(&long);
        assert_eq!(w.buf[0], 0xc3, "compressed");
    }

    #[test]
    fn hostile_lengths_fail_cleanly() {
        // A 4 GiB string length with 2 bytes of data.
        let r = Reader::new(&[0x80, 0xff, 0xff, 0xff, 0xff, 1, 2]).string();
        assert_eq!(r, Err(Error::Truncated));
        // LZF claiming a huge output.
        let r = Reader::new(&[0xc3, 1, 0x81, 0, 0, 0, 1, 0, 0, 0, 0, 0]).string();
        assert!(r.is_err());
    }
}
