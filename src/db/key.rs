//! A key's name as a database stores it: inline in the key's slot up to
//! `INLINE` bytes (no allocation), boxed beyond. 24 bytes either way, where
//! a `Bytes` handle takes 32 plus its allocation.

use std::ops::Deref;

/// Longest name kept inline.
pub const INLINE: usize = 22;

#[derive(Clone)]
pub enum KeyBuf {
    Inline { len: u8, buf: [u8; INLINE] },
    Heap(Box<[u8]>),
}

impl KeyBuf {
    pub fn new(key: &[u8]) -> KeyBuf {
        if key.len() <= INLINE {
            let mut buf = [0u8; INLINE];
            buf[..key.len()].copy_from_slice(key);
            KeyBuf::Inline {
                len: key.len() as u8,
                buf,
            }
        } else {
            KeyBuf::Heap(Box::from(key))
        }
    }

    /// The bytes of its allocation (0 inline), in jemalloc size classes.
    pub fn heap_bytes(&self) -> usize {
        match self {
            KeyBuf::Inline { .. } => 0,
            KeyBuf::Heap(b) => super::memory::size_class(b.len()),
        }
    }
}

impl Deref for KeyBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            KeyBuf::Inline { len, buf } => &buf[..usize::from(*len)],
            KeyBuf::Heap(b) => b,
        }
    }
}

impl std::fmt::Debug for KeyBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_inline_long_ones_boxed() {
        assert_eq!(std::mem::size_of::<KeyBuf>(), 24);
        for n in [0, 1, INLINE, INLINE + 1, 1000] {
            let k: Vec<u8> = (0..n).map(|i| i as u8).collect();
            let b = KeyBuf::new(&k);
            assert_eq!(&b[..], &k[..]);
            assert_eq!(matches!(b, KeyBuf::Inline { .. }), n <= INLINE);
            assert_eq!(b.heap_bytes() == 0, n <= INLINE);
        }
    }
}
