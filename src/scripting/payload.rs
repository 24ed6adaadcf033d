//! DUMP payloads as Redis 7.0 makes them (`cluster.c` `createDumpPayload`
//! / `verifyDumpPayload`): an RDB body, then the 2-byte RDB version
//! (little-endian) and the CRC64 (Jones, Redis's `crc64.c`) of everything
//! before it, little-endian. FUNCTION DUMP/RESTORE use it; key DUMP/RESTORE
//! payloads have the same envelope. Also the RDB string encoding
//! (`rdbSaveRawString` / `rdbGenericLoadStringObject`) the bodies use.

/// The RDB version redis-server 7.0 writes (`RDB_VERSION`).
pub const RDB_VERSION: u16 = 10;

const CRC64: crc::Crc<u64> = crc::Crc::<u64>::new(&crc::CRC_64_REDIS);

/// Redis's `crc64(0, data, len)`.
pub fn crc64(data: &[u8]) -> u64 {
    CRC64.checksum(data)
}

/// Closes a payload: appends the RDB version and the CRC64.
pub fn seal(body: &mut Vec<u8>) {
    body.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(body);
    body.extend_from_slice(&crc.to_le_bytes());
}

/// Redis's `verifyDumpPayload`: the body (without the 10-byte footer) and
/// the RDB version it was written with, or None when the version is newer
/// than 7.0's or the checksum is wrong.
pub fn open(payload: &[u8]) -> Option<(&[u8], u16)> {
    if payload.len() < 10 {
        return None;
    }
    let (rest, crc) = payload.split_at(payload.len() - 8);
    let ver = u16::from_le_bytes([rest[rest.len() - 2], rest[rest.len() - 1]]);
    if ver > RDB_VERSION {
        return None;
    }
    if crc64(rest).to_le_bytes() != crc {
        return None;
    }
    Some((&rest[..rest.len() - 2], ver))
}

/// `rdbSaveLen`.
pub fn put_len(out: &mut Vec<u8>, len: u64) {
    if len < 1 << 6 {
        out.push(len as u8);
    } else if len < 1 << 14 {
        out.push(0x40 | (len >> 8) as u8);
        out.push(len as u8);
    } else if len <= u64::from(u32::MAX) {
        out.push(0x80);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&len.to_be_bytes());
    }
}

/// `rdbSaveRawString` with `rdbcompression yes`: integers of up to 11
/// characters as integer encodings, strings over 20 bytes LZF-compressed
/// when that saves at least 4 bytes, the rest as they are.
pub fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    if s.len() <= 11 {
        if let Some(v) = std::str::from_utf8(s)
            .ok()
            .and_then(|t| t.parse::<i64>().ok())
            .filter(|v| v.to_string().as_bytes() == s)
        {
            if let Ok(b) = i8::try_from(v) {
                out.push(0xC0);
                out.push(b as u8);
                return;
            }
            if let Ok(h) = i16::try_from(v) {
                out.push(0xC1);
                out.extend_from_slice(&h.to_le_bytes());
                return;
            }
            if let Ok(w) = i32::try_from(v) {
                out.push(0xC2);
                out.extend_from_slice(&w.to_le_bytes());
                return;
            }
        }
    }
    if s.len() > 20 {
        if let Ok(c) = lzf::compress(s) {
            if !c.is_empty() && c.len() <= s.len() - 4 {
                out.push(0xC3);
                put_len(out, c.len() as u64);
                put_len(out, s.len() as u64);
                out.extend_from_slice(&c);
                return;
            }
        }
    }
    put_len(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// A reader over an RDB body.
pub struct Reader<'a> {
    pub buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.buf.split_first()?;
        self.buf = rest;
        Some(b)
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.buf.len() < n {
            return None;
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Some(a)
    }

    /// `rdbLoadLenByRef`: (length or encoding, is-encoded).
    fn len_enc(&mut self) -> Option<(u64, bool)> {
        let b = self.u8()?;
        Some(match b >> 6 {
            0 => (u64::from(b & 0x3F), false),
            1 => ((u64::from(b & 0x3F) << 8) | u64::from(self.u8()?), false),
            3 => (u64::from(b & 0x3F), true),
            _ => match b {
                0x80 => (
                    u64::from(u32::from_be_bytes(self.take(4)?.try_into().ok()?)),
                    false,
                ),
                0x81 => (u64::from_be_bytes(self.take(8)?.try_into().ok()?), false),
                _ => return None,
            },
        })
    }

    pub fn length(&mut self) -> Option<u64> {
        match self.len_enc()? {
            (n, false) => Some(n),
            _ => None,
        }
    }

    /// `rdbGenericLoadStringObject`: plain, integer-encoded or LZF strings.
    pub fn string(&mut self) -> Option<Vec<u8>> {
        let (n, enc) = self.len_enc()?;
        if !enc {
            let n = usize::try_from(n).ok()?;
            return Some(self.take(n)?.to_vec());
        }
        let v: i64 = match n {
            0 => i64::from(self.u8()? as i8),
            1 => i64::from(i16::from_le_bytes(self.take(2)?.try_into().ok()?)),
            2 => i64::from(i32::from_le_bytes(self.take(4)?.try_into().ok()?)),
            3 => {
                let clen = usize::try_from(self.length()?).ok()?;
                let len = usize::try_from(self.length()?).ok()?;
                let c = self.take(clen)?;
                // The claimed length bounds the allocation: a compressed
                // byte expands to at most 264 bytes (a back reference).
                if len == 0 || len > clen.saturating_mul(264) {
                    return None;
                }
                let out = lzf::decompress(c, len).ok()?;
                return (out.len() == len).then_some(out);
            }
            _ => return None,
        };
        Some(v.to_string().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `FUNCTION DUMP` of redis-server 7.0.15 with one library, the code
    /// stored as it is (LZF would not save 4 bytes).
    const REDIS_DUMP: &[u8] = b"\xf5\x40\x4c#!lua name=mylib\nredis.register_function('myfunc', function() return 1 end)\n\n\x00\xf9\x8d\xf5\x17\xd0\x1a\x40\xa5";

    /// The same with a longer library, whose code Redis stores LZF-compressed.
    const REDIS_DUMP_LZF: &[u8] = b"\xf5\xc3\x40\x57\x40\xeb\x1f\x23\x21\x6c\x75\x61\x20\x6e\x61\x6d\x65\x3d\x62\x69\x67\x0a\x72\x65\x64\x69\x73\x2e\x72\x65\x67\x69\x73\x74\x65\x72\x5f\x66\x75\x0c\x6e\x63\x74\x69\x6f\x6e\x28\x27\x66\x31\x27\x2c\x20\xe0\x00\x0e\x0e\x29\x20\x72\x65\x74\x75\x72\x6e\x20\x31\x20\x65\x6e\x64\x29\xe0\x12\x36\x00\x32\xe0\x2d\x36\x00\x33\xe0\x2d\x36\x00\x34\xe0\x11\x36\x01\x29\x0a\x0a\x00\xb7\x5b\xa3\xab\xb3\x97\xb6\x43";

    fn library(p: &[u8]) -> Vec<u8> {
        let (body, ver) = open(p).expect("valid payload");
        assert_eq!(ver, 10);
        let mut r = Reader { buf: body };
        assert_eq!(r.u8(), Some(245));
        let code = r.string().expect("string");
        assert!(r.buf.is_empty());
        let mut again = vec![245];
        put_string(&mut again, &code);
        seal(&mut again);
        assert_eq!(again, p, "re-encoded as Redis does");
        code
    }

    #[test]
    fn redis_payloads_open_and_round_trip() {
        assert_eq!(
            library(REDIS_DUMP),
            b"#!lua name=mylib\nredis.register_function('myfunc', function() return 1 end)\n"
        );
        let code = library(REDIS_DUMP_LZF);
        assert!(code.starts_with(b"#!lua name=big\n"));
        assert!(code.ends_with(b"redis.register_function('f4', function() return 1 end)\n"));
    }

    #[test]
    fn bad_payloads_are_refused() {
        assert!(open(b"short").is_none());
        let mut p = REDIS_DUMP.to_vec();
        let n = p.len();
        p[n - 1] ^= 1;
        assert!(open(&p).is_none());
        let mut r = Reader {
            buf: b"\xc3\x01\xff\xff\x00",
        };
        assert!(r.string().is_none());
    }

    #[test]
    fn strings_and_lengths() {
        for s in [&b"12"[..], b"-300", b"70000", b"0x", b"abc", &[b'x'; 100]] {
            let mut out = Vec::new();
            put_string(&mut out, s);
            let mut r = Reader { buf: &out };
            assert_eq!(r.string().as_deref(), Some(s));
            assert!(r.buf.is_empty());
        }
        for n in [0u64, 63, 64, 16383, 16384, 1 << 33] {
            let mut out = Vec::new();
            put_len(&mut out, n);
            assert_eq!(Reader { buf: &out }.length(), Some(n));
        }
    }
}
