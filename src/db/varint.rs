//! LEB128-style length prefixes of the packed collection forms (lists'
//! nodes, small hashes and sorted sets): 7 bits per byte, high bit set on
//! every byte but the last.

/// Bytes `put_varint` writes for `n`.
pub fn varint_len(mut n: usize) -> usize {
    let mut k = 1;
    while n >= 0x80 {
        n >>= 7;
        k += 1;
    }
    k
}

pub fn put_varint(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// The varint at `i`: (value, offset after it). The buffer is one this
/// process packed (never read from a client or a file).
pub fn read_varint(buf: &[u8], mut i: usize) -> (usize, usize) {
    let (mut n, mut shift) = (0usize, 0u32);
    loop {
        let b = buf[i];
        i += 1;
        n |= usize::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return (n, i);
        }
        shift += 7;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for n in [0usize, 1, 127, 128, 300, 16383, 16384, usize::MAX >> 1] {
            let mut b = vec![9];
            put_varint(&mut b, n);
            assert_eq!(b.len(), 1 + varint_len(n));
            assert_eq!(read_varint(&b, 1), (n, b.len()));
        }
    }
}
