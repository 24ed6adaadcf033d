//! The packed containers RDB values carry as strings: listpack (Redis 7.0,
//! read and written byte for byte as listpack.c does), ziplist and zipmap
//! (older RDB files, read only), intset (read and written).
//!
//! Listpack grammar (listpack.c):
//! `u32 LE total_bytes | u16 LE count (65535: unknown) | entry* | 0xFF`,
//! entry = `encoding [data] | backlen`, where encoding is one of
//! `0xxxxxxx` (7-bit uint), `10xxxxxx` + str (6-bit length),
//! `110xxxxx yyyyyyyy` (13-bit int), `1110xxxx yyyyyyyy` + str (12-bit
//! length), `11110000 u32 LE` + str, `11110001..11110100` int16/24/32/64
//! LE; backlen is the entry's encoding+data length in 1-5 bytes of 7 bits,
//! most significant first, each but the first with bit 7 set.

use super::{Error, Result};
use crate::protocol::parse::parse_i64;

/// One listpack or ziplist element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Elem {
    Int(i64),
    Str(Vec<u8>),
}

impl Elem {
    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            Elem::Int(n) => itoa::Buffer::new().format(n).as_bytes().to_vec(),
            Elem::Str(s) => s,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Elem::Int(n) => Some(*n),
            Elem::Str(s) => parse_i64(s),
        }
    }
}

const LP_HEADER_BYTES: usize = 6;
const LP_EOF: u8 = 0xff;

/// Decodes a listpack (checking its header, every entry's bounds and
/// backlen, and the terminator).
pub fn listpack_decode(lp: &[u8]) -> Result<Vec<Elem>> {
    if lp.len() < LP_HEADER_BYTES + 1 {
        return Err(Error::Bad("listpack header"));
    }
    let total = u32::from_le_bytes([lp[0], lp[1], lp[2], lp[3]]) as usize;
    if total != lp.len() {
        return Err(Error::Bad("listpack total bytes"));
    }
    let count = u16::from_le_bytes([lp[4], lp[5]]);
    let mut out = Vec::new();
    let mut p = LP_HEADER_BYTES;
    loop {
        let b = *lp.get(p).ok_or(Error::Bad("listpack without terminator"))?;
        if b == LP_EOF {
            if p + 1 != lp.len() {
                return Err(Error::Bad("listpack data after terminator"));
            }
            break;
        }
        let start = p;
        let need = |n: usize| -> Result<&[u8]> {
            lp.get(start..start + n).ok_or(Error::Bad("listpack entry"))
        };
        let (elem, len) = if b & 0x80 == 0 {
            (Elem::Int(i64::from(b)), 1)
        } else if b & 0xc0 == 0x80 {
            let n = usize::from(b & 0x3f);
            (Elem::Str(need(1 + n)?[1..].to_vec()), 1 + n)
        } else if b & 0xe0 == 0xc0 {
            let e = need(2)?;
            let v = (u16::from(b & 0x1f) << 8 | u16::from(e[1])) as i64;
            let v = if v >= 1 << 12 { v - (1 << 13) } else { v };
            (Elem::Int(v), 2)
        } else if b & 0xf0 == 0xe0 {
            let e = need(2)?;
            let n = usize::from(b & 0x0f) << 8 | usize::from(e[1]);
            (Elem::Str(need(2 + n)?[2..].to_vec()), 2 + n)
        } else {
            match b {
                0xf0 => {
                    let e = need(5)?;
                    let n = u32::from_le_bytes([e[1], e[2], e[3], e[4]]) as usize;
                    let end = 5usize.checked_add(n).ok_or(Error::Bad("listpack entry"))?;
                    (Elem::Str(need(end)?[5..].to_vec()), end)
                }
                0xf1 => {
                    let e = need(3)?;
                    (Elem::Int(i64::from(i16::from_le_bytes([e[1], e[2]]))), 3)
                }
                0xf2 => {
                    let e = need(4)?;
                    let v = i32::from_le_bytes([0, e[1], e[2], e[3]]) >> 8;
                    (Elem::Int(i64::from(v)), 4)
                }
                0xf3 => {
                    let e = need(5)?;
                    (
                        Elem::Int(i64::from(i32::from_le_bytes([e[1], e[2], e[3], e[4]]))),
                        5,
                    )
                }
                0xf4 => {
                    let e = need(9)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(&e[1..9]);
                    (Elem::Int(i64::from_le_bytes(a)), 9)
                }
                _ => return Err(Error::Bad("listpack encoding")),
            }
        };
        p += len;
        let mut bl = [0u8; 5];
        let bl_len = backlen(len, &mut bl);
        if lp.get(p..p + bl_len) != Some(&bl[..bl_len]) {
            return Err(Error::Bad("listpack backlen"));
        }
        p += bl_len;
        out.push(elem);
    }
    if count != u16::MAX && usize::from(count) != out.len() {
        return Err(Error::Bad("listpack count"));
    }
    Ok(out)
}

/// `lpEncodeBacklen`.
fn backlen(l: usize, buf: &mut [u8; 5]) -> usize {
    if l <= 127 {
        buf[0] = l as u8;
        1
    } else if l < 16383 {
        buf[0] = (l >> 7) as u8;
        buf[1] = (l & 127) as u8 | 128;
        2
    } else if l < 2097151 {
        buf[0] = (l >> 14) as u8;
        buf[1] = ((l >> 7) & 127) as u8 | 128;
        buf[2] = (l & 127) as u8 | 128;
        3
    } else if l < 268435455 {
        buf[0] = (l >> 21) as u8;
        buf[1] = ((l >> 14) & 127) as u8 | 128;
        buf[2] = ((l >> 7) & 127) as u8 | 128;
        buf[3] = (l & 127) as u8 | 128;
        4
    } else {
        buf[0] = (l >> 28) as u8;
        buf[1] = ((l >> 21) & 127) as u8 | 128;
        buf[2] = ((l >> 14) & 127) as u8 | 128;
        buf[3] = ((l >> 7) & 127) as u8 | 128;
        buf[4] = (l & 127) as u8 | 128;
        5
    }
}

/// Builds a listpack as `lpAppend` does: strings that are canonical
/// integers get the smallest integer encoding.
#[derive(Clone, Debug)]
pub struct ListpackWriter {
    buf: Vec<u8>,
    count: usize,
}

impl Default for ListpackWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl ListpackWriter {
    pub fn new() -> ListpackWriter {
        ListpackWriter {
            buf: vec![0; LP_HEADER_BYTES],
            count: 0,
        }
    }

    /// Bytes the listpack would have now, terminator included.
    pub fn bytes(&self) -> usize {
        self.buf.len() + 1
    }

    pub fn count(&self) -> usize {
        self.count
    }

    /// Appends a string element (integer-encoded when it is one).
    pub fn push(&mut self, s: &[u8]) {
        match parse_i64(s) {
            Some(v) => self.push_int(v),
            None => self.push_str(s),
        }
    }

    pub fn push_int(&mut self, v: i64) {
        let start = self.buf.len();
        if (0..=127).contains(&v) {
            self.buf.push(v as u8);
        } else if (-4096..=4095).contains(&v) {
            let u = if v < 0 { (1 << 13) + v } else { v } as u16;
            self.buf.push(0xc0 | (u >> 8) as u8);
            self.buf.push(u as u8);
        } else if let Ok(x) = i16::try_from(v) {
            self.buf.push(0xf1);
            self.buf.extend_from_slice(&x.to_le_bytes());
        } else if (-8388608..=8388607).contains(&v) {
            self.buf.push(0xf2);
            self.buf.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
        } else if let Ok(x) = i32::try_from(v) {
            self.buf.push(0xf3);
            self.buf.extend_from_slice(&x.to_le_bytes());
        } else {
            self.buf.push(0xf4);
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
        self.end_entry(start);
    }

    fn push_str(&mut self, s: &[u8]) {
        let start = self.buf.len();
        let n = s.len();
        if n < 64 {
            self.buf.push(0x80 | n as u8);
        } else if n < 4096 {
            self.buf.push(0xe0 | (n >> 8) as u8);
            self.buf.push(n as u8);
        } else {
            self.buf.push(0xf0);
            self.buf.extend_from_slice(&(n as u32).to_le_bytes());
        }
        self.buf.extend_from_slice(s);
        self.end_entry(start);
    }

    fn end_entry(&mut self, start: usize) {
        let mut bl = [0u8; 5];
        let n = backlen(self.buf.len() - start, &mut bl);
        self.buf.extend_from_slice(&bl[..n]);
        self.count += 1;
    }

    /// The finished listpack.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push(LP_EOF);
        let total = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&total.to_le_bytes());
        let count = if self.count < usize::from(u16::MAX) {
            self.count as u16
        } else {
            u16::MAX
        };
        self.buf[4..6].copy_from_slice(&count.to_le_bytes());
        self.buf
    }
}

/// Size of an element once in a listpack (encoding, data and backlen), as
/// `lpEncodeGetType` + `lpEncodeBacklen` count it.
pub fn listpack_entry_bytes(s: &[u8]) -> usize {
    let body = match parse_i64(s) {
        Some(v) if (0..=127).contains(&v) => 1,
        Some(v) if (-4096..=4095).contains(&v) => 2,
        Some(v) if i16::try_from(v).is_ok() => 3,
        Some(v) if (-8388608..=8388607).contains(&v) => 4,
        Some(v) if i32::try_from(v).is_ok() => 5,
        Some(_) => 9,
        None if s.len() < 64 => 1 + s.len(),
        None if s.len() < 4096 => 2 + s.len(),
        None => 5 + s.len(),
    };
    let mut bl = [0u8; 5];
    body + backlen(body, &mut bl)
}

/// Decodes a ziplist (ziplist.c):
/// `u32 LE zlbytes | u32 LE zltail | u16 LE zllen | entry* | 0xFF`,
/// entry = `prevlen (1 byte < 254, or 0xFE u32 LE) | encoding | data`.
pub fn ziplist_decode(zl: &[u8]) -> Result<Vec<Elem>> {
    const HEADER: usize = 10;
    if zl.len() < HEADER + 1 {
        return Err(Error::Bad("ziplist header"));
    }
    let total = u32::from_le_bytes([zl[0], zl[1], zl[2], zl[3]]) as usize;
    if total != zl.len() {
        return Err(Error::Bad("ziplist total bytes"));
    }
    let mut p = HEADER;
    let mut out = Vec::new();
    let bad = Error::Bad("ziplist entry");
    loop {
        let b = *zl.get(p).ok_or(Error::Bad("ziplist without terminator"))?;
        if b == 0xff {
            if p + 1 != zl.len() {
                return Err(Error::Bad("ziplist data after terminator"));
            }
            break;
        }
        p += if b < 254 { 1 } else { 5 };
        let e = *zl.get(p).ok_or(bad.clone())?;
        let get = |from: usize, n: usize| -> Result<&[u8]> {
            zl.get(from..from.checked_add(n).ok_or(Error::Bad("ziplist entry"))?)
                .ok_or(Error::Bad("ziplist entry"))
        };
        let (elem, len) = match e >> 6 {
            0 => {
                let n = usize::from(e & 0x3f);
                (Elem::Str(get(p + 1, n)?.to_vec()), 1 + n)
            }
            1 => {
                let b2 = get(p + 1, 1)?[0];
                let n = usize::from(e & 0x3f) << 8 | usize::from(b2);
                (Elem::Str(get(p + 2, n)?.to_vec()), 2 + n)
            }
            2 => {
                let l = get(p + 1, 4)?;
                let n = u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize;
                (Elem::Str(get(p + 5, n)?.to_vec()), 5 + n)
            }
            _ => match e {
                0xc0 => {
                    let d = get(p + 1, 2)?;
                    (Elem::Int(i64::from(i16::from_le_bytes([d[0], d[1]]))), 3)
                }
                0xd0 => {
                    let d = get(p + 1, 4)?;
                    (
                        Elem::Int(i64::from(i32::from_le_bytes([d[0], d[1], d[2], d[3]]))),
                        5,
                    )
                }
                0xe0 => {
                    let d = get(p + 1, 8)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(d);
                    (Elem::Int(i64::from_le_bytes(a)), 9)
                }
                0xf0 => {
                    let d = get(p + 1, 3)?;
                    (
                        Elem::Int(i64::from(i32::from_le_bytes([0, d[0], d[1], d[2]]) >> 8)),
                        4,
                    )
                }
                0xfe => (Elem::Int(i64::from(get(p + 1, 1)?[0] as i8)), 2),
                0xf1..=0xfd => (Elem::Int(i64::from(e & 0x0f) - 1), 1),
                _ => return Err(bad),
            },
        };
        p += len;
        out.push(elem);
    }
    Ok(out)
}

/// Decodes an intset (intset.c): `u32 LE encoding (2, 4 or 8) | u32 LE
/// length | values LE`, strictly ascending.
pub fn intset_decode(is: &[u8]) -> Result<Vec<i64>> {
    if is.len() < 8 {
        return Err(Error::Bad("intset header"));
    }
    let enc = u32::from_le_bytes([is[0], is[1], is[2], is[3]]) as usize;
    let n = u32::from_le_bytes([is[4], is[5], is[6], is[7]]) as usize;
    if !matches!(enc, 2 | 4 | 8) || n.checked_mul(enc) != Some(is.len() - 8) {
        return Err(Error::Bad("intset size"));
    }
    let mut out: Vec<i64> = Vec::with_capacity(n);
    for c in is[8..].chunks_exact(enc) {
        let v = match enc {
            2 => i64::from(i16::from_le_bytes([c[0], c[1]])),
            4 => i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            _ => {
                let mut a = [0u8; 8];
                a.copy_from_slice(c);
                i64::from_le_bytes(a)
            }
        };
        if out.last().is_some_and(|&l| l >= v) {
            return Err(Error::Bad("intset order"));
        }
        out.push(v);
    }
    Ok(out)
}

/// Encodes ascending distinct integers as an intset of the smallest width.
pub fn intset_encode(vals: &[i64]) -> Vec<u8> {
    let enc: usize = if vals.iter().all(|&v| i16::try_from(v).is_ok()) {
        2
    } else if vals.iter().all(|&v| i32::try_from(v).is_ok()) {
        4
    } else {
        8
    };
    let mut out = Vec::with_capacity(8 + enc * vals.len());
    out.extend_from_slice(&(enc as u32).to_le_bytes());
    out.extend_from_slice(&(vals.len() as u32).to_le_bytes());
    for &v in vals {
        out.extend_from_slice(&v.to_le_bytes()[..enc]);
    }
    out
}

/// Decodes a zipmap (zipmap.c, Redis < 2.6 hashes): `u8 count | (len key
/// len u8:free value free-bytes)* | 0xFF`, len = 1 byte < 254 or 0xFE u32
/// LE.
pub fn zipmap_decode(zm: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let bad = || Error::Bad("zipmap");
    let mut p = 1;
    let mut out = Vec::new();
    let len_at = |p: &mut usize| -> Result<usize> {
        let b = *zm.get(*p).ok_or_else(bad)?;
        if b < 254 {
            *p += 1;
            Ok(usize::from(b))
        } else if b == 254 {
            let l = zm.get(*p + 1..*p + 5).ok_or_else(bad)?;
            *p += 5;
            Ok(u32::from_le_bytes([l[0], l[1], l[2], l[3]]) as usize)
        } else {
            Err(bad())
        }
    };
    loop {
        if *zm.get(p).ok_or_else(bad)? == 0xff {
            break;
        }
        let kl = len_at(&mut p)?;
        let k = zm
            .get(p..p.checked_add(kl).ok_or_else(bad)?)
            .ok_or_else(bad)?;
        p += kl;
        let vl = len_at(&mut p)?;
        let free = usize::from(*zm.get(p).ok_or_else(bad)?);
        p += 1;
        let v = zm
            .get(p..p.checked_add(vl).ok_or_else(bad)?)
            .ok_or_else(bad)?;
        p += vl + free;
        out.push((k.to_vec(), v.to_vec()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listpack_round_trip_every_encoding() {
        let items: Vec<Vec<u8>> = [
            "0",
            "127",
            "128",
            "-1",
            "-4096",
            "4095",
            "4096",
            "-32768",
            "32767",
            "32768",
            "-8388608",
            "8388607",
            "8388608",
            "2147483647",
            "2147483648",
            "-9223372036854775808",
            "a",
            "",
            "007",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .chain([
            vec![b'x'; 63],
            vec![b'y'; 64],
            vec![b'z'; 4095],
            vec![b'w'; 4096],
        ])
        .collect();
        let mut w = ListpackWriter::new();
        for i in &items {
            w.push(i);
        }
        let lp = w.finish();
        let got: Vec<Vec<u8>> = listpack_decode(&lp)
            .unwrap()
            .into_iter()
            .map(Elem::into_bytes)
            .collect();
        assert_eq!(got, items);
    }

    #[test]
    fn listpack_bytes_match_redis() {
        // redis-server 7.0: RPUSH l a 1 → DUMP holds this listpack.
        let mut w = ListpackWriter::new();
        w.push(b"a");
        w.push(b"1");
        assert_eq!(
            w.finish(),
            [0x0c, 0, 0, 0, 2, 0, 0x81, b'a', 2, 0x01, 1, 0xff]
        );
    }

    #[test]
    fn entry_size_matches_writer() {
        for s in [&b"1"[..], b"300", b"-70000", b"abc", &[b'q'; 200]] {
            let mut w = ListpackWriter::new();
            let before = w.bytes();
            w.push(s);
            assert_eq!(w.bytes() - before, listpack_entry_bytes(s));
        }
    }

    #[test]
    fn intset_round_trip() {
        for v in [vec![1, 2, 3], vec![-70000, 5], vec![i64::MIN, 0, i64::MAX]] {
            assert_eq!(intset_decode(&intset_encode(&v)).unwrap(), v);
        }
        assert!(intset_decode(&intset_encode(&[2, 1])).is_err());
    }

    #[test]
    fn damaged_listpacks_fail_cleanly() {
        let mut w = ListpackWriter::new();
        w.push(b"hello");
        w.push(&[b'x'; 300]);
        let lp = w.finish();
        for cut in 0..lp.len() {
            assert!(listpack_decode(&lp[..cut]).is_err());
        }
        for i in 0..lp.len() {
            let mut b = lp.clone();
            b[i] ^= 0x55;
            let _ = listpack_decode(&b);
        }
    }
}
