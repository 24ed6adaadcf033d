//! The replication backlog: the last `size` bytes of the replication
//! stream, as Redis's `repl_backlog`, so a replica that reconnects with
//! `PSYNC <replid> <offset>` can be served the bytes it missed.
//!
//! Offsets are Redis's: the stream's bytes are numbered from 1; after `n`
//! bytes `master_repl_offset` is `n`. A replica that has processed up to
//! offset `o` asks for `o + 1`.

use std::collections::VecDeque;

/// See the module doc.
#[derive(Debug)]
pub struct Backlog {
    buf: VecDeque<u8>,
    size: usize,
    /// Offset of the first byte held (`repl_backlog_first_byte_offset`).
    first: u64,
}

impl Backlog {
    /// An empty backlog whose next byte has offset `next` (Redis creates it
    /// with `master_repl_offset + 1`).
    pub fn new(size: usize, next: u64) -> Backlog {
        Backlog {
            buf: VecDeque::new(),
            size: size.max(1),
            first: next,
        }
    }

    /// Appends stream bytes, dropping the oldest beyond `size`.
    pub fn append(&mut self, bytes: &[u8]) {
        let bytes = if bytes.len() > self.size {
            let skip = bytes.len() - self.size;
            self.first += (self.buf.len() + skip) as u64;
            self.buf.clear();
            &bytes[skip..]
        } else {
            bytes
        };
        let over = (self.buf.len() + bytes.len()).saturating_sub(self.size);
        if over > 0 {
            self.buf.drain(..over);
            self.first += over as u64;
        }
        self.buf.extend(bytes);
    }

    /// `repl_backlog_first_byte_offset`.
    pub fn first_byte_offset(&self) -> u64 {
        self.first
    }

    /// `repl_backlog_histlen`.
    pub fn histlen(&self) -> usize {
        self.buf.len()
    }

    /// `repl_backlog_size`.
    pub fn size(&self) -> usize {
        self.size
    }

    /// CONFIG SET repl-backlog-size: keeps the newest bytes that fit.
    pub fn resize(&mut self, size: usize) {
        self.size = size.max(1);
        let over = self.buf.len().saturating_sub(self.size);
        if over > 0 {
            self.buf.drain(..over);
            self.first += over as u64;
        }
    }

    /// The bytes from offset `from` to the end, or None when the backlog
    /// does not hold them all (a full resync is needed). `from` one past
    /// the last byte held gives an empty vector (nothing missed).
    pub fn read_from(&self, from: u64) -> Option<Vec<u8>> {
        let end = self.first + self.buf.len() as u64;
        if from < self.first || from > end {
            return None;
        }
        let skip = usize::try_from(from - self.first).ok()?;
        Some(self.buf.iter().skip(skip).copied().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_bytes_and_serves_offsets_it_holds() {
        let mut b = Backlog::new(8, 1);
        b.append(b"abcde");
        assert_eq!(b.first_byte_offset(), 1);
        assert_eq!(b.read_from(1).as_deref(), Some(&b"abcde"[..]));
        assert_eq!(b.read_from(6).as_deref(), Some(&b""[..]));
        assert_eq!(b.read_from(7), None);
        b.append(b"fghij");
        assert_eq!(b.first_byte_offset(), 3);
        assert_eq!(b.histlen(), 8);
        assert_eq!(b.read_from(2), None);
        assert_eq!(b.read_from(3).as_deref(), Some(&b"cdefghij"[..]));
        b.append(b"0123456789");
        assert_eq!(b.first_byte_offset(), 13);
        assert_eq!(b.read_from(13).as_deref(), Some(&b"23456789"[..]));
        b.resize(4);
        assert_eq!(b.first_byte_offset(), 17);
        assert_eq!(b.read_from(17).as_deref(), Some(&b"6789"[..]));
    }
}
