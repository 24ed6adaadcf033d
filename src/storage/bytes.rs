//! The one reader of redlog's little-endian binary encodings: WAL units
//! (`db::effect`), stream records and checkpoints (`stream::codec`,
//! `stream::groups`), LOGPARSE format specs and miner states
//! (`logparse::format`, `logparse::miner`). Every read checks the bytes
//! left first, so damaged input is an error, never a panic or an
//! allocation larger than the input.
//!
//! No file I/O: it reads a slice the caller already holds. Each decoder
//! keeps its own error type and converts from [`Malformed`] with `?`.

use bytes::Bytes;

/// Why bytes did not decode: a fixed description ("truncated", "unknown
/// effect tag", ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Malformed(pub &'static str);

/// A cursor over a byte slice, reading little-endian integers and
/// u32-length-prefixed byte strings.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf }
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        if self.buf.len() < n {
            return Err(Malformed("truncated"));
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Ok(a)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Malformed> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    pub fn u8(&mut self) -> Result<u8, Malformed> {
        Ok(self.take(1)?[0])
    }

    pub fn u32(&mut self) -> Result<u32, Malformed> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub fn u64(&mut self) -> Result<u64, Malformed> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    pub fn i64(&mut self) -> Result<i64, Malformed> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    pub fn u128(&mut self) -> Result<u128, Malformed> {
        Ok(u128::from_le_bytes(self.array()?))
    }

    /// A byte that must be 0 (false) or 1 (true); anything else is `bad`.
    pub fn flag(&mut self, bad: &'static str) -> Result<bool, Malformed> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(Malformed(bad)),
        }
    }

    /// A u32 length, then that many bytes.
    pub fn slice(&mut self) -> Result<&'a [u8], Malformed> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    /// [`Reader::slice`], copied.
    pub fn bytes(&mut self) -> Result<Bytes, Malformed> {
        Ok(Bytes::copy_from_slice(self.slice()?))
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The bytes not read yet, without consuming them.
    pub fn rest(&self) -> &'a [u8] {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_little_endian_and_refuses_short_input() {
        let mut b = vec![7u8];
        b.extend_from_slice(&0x0102_0304u32.to_le_bytes());
        b.extend_from_slice(&(-2i64).to_le_bytes());
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(b"abc");
        b.push(2);
        let mut r = Reader::new(&b);
        assert_eq!(r.u8(), Ok(7));
        assert_eq!(r.u32(), Ok(0x0102_0304));
        assert_eq!(r.i64(), Ok(-2));
        assert_eq!(r.slice(), Ok(&b"abc"[..]));
        assert_eq!(r.remaining(), 1);
        assert_eq!(r.clone().flag("bad flag"), Err(Malformed("bad flag")));
        assert_eq!(r.u32(), Err(Malformed("truncated")));
        // A failed read consumes nothing.
        assert_eq!(r.remaining(), 1);
        // A length larger than the input is refused before any allocation.
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff, 1]);
        assert_eq!(r.bytes(), Err(Malformed("truncated")));
    }
}
