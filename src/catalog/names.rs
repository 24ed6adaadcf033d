//! Command names to table indexes, looked up once per command without
//! copying or lower-casing the name first: an open-addressing table whose
//! hash folds ASCII case as it goes (`b | 0x20`), compared with
//! `eq_ignore_ascii_case`. The names are the table's own (lower case,
//! ASCII); a name from a client that is not one (other bytes, another
//! length) simply is not found.

/// A case-insensitive map of command names to table indexes.
#[derive(Debug, Default)]
pub struct NameMap {
    /// Power-of-two slots, at most a quarter full (linear probing).
    slots: Vec<Option<(&'static str, usize)>>,
    len: usize,
}

/// FNV-1a over the bytes with ASCII letters folded to lower case (`| 0x20`
/// also merges a few non-letters with others, which only costs a probe).
fn fold_hash(name: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in name {
        h = (h ^ u64::from(b | 0x20)).wrapping_mul(0x0100_0000_01b3);
    }
    // The low bits pick the slot: mix the high ones in.
    h ^ (h >> 29)
}

impl NameMap {
    /// Adds `name` (lower case); returns the index it already had, if any
    /// (the map then keeps the old one).
    pub fn insert(&mut self, name: &'static str, idx: usize) -> Option<usize> {
        if let Some(old) = self.get(name.as_bytes()) {
            return Some(old);
        }
        if (self.len + 1) * 4 > self.slots.len() {
            let old = std::mem::take(&mut self.slots);
            self.slots = vec![None; (old.len() * 2).max(16)];
            for (n, i) in old.into_iter().flatten() {
                self.place(n, i);
            }
        }
        self.place(name, idx);
        self.len += 1;
        None
    }

    fn place(&mut self, name: &'static str, idx: usize) {
        let mask = self.slots.len() - 1;
        let mut i = fold_hash(name.as_bytes()) as usize & mask;
        while self.slots[i].is_some() {
            i = (i + 1) & mask;
        }
        self.slots[i] = Some((name, idx));
    }

    /// The index of `name`, ignoring ASCII case.
    pub fn get(&self, name: &[u8]) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut i = fold_hash(name) as usize & mask;
        loop {
            let (n, idx) = self.slots[i]?;
            if n.len() == name.len() && n.as_bytes().eq_ignore_ascii_case(name) {
                return Some(idx);
            }
            i = (i + 1) & mask;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_insensitive_lookup() {
        let mut m = NameMap::default();
        let names = [
            "get", "set", "client", "config", "xrange", "@get", "`get", "a", "",
        ];
        for (i, n) in names.iter().enumerate() {
            assert_eq!(m.insert(n, i), None);
        }
        assert_eq!(m.insert("get", 99), Some(0));
        for (i, n) in names.iter().enumerate() {
            assert_eq!(m.get(n.as_bytes()), Some(i), "{n}");
            assert_eq!(m.get(n.to_ascii_uppercase().as_bytes()), Some(i), "{n}");
        }
        assert_eq!(m.get(b"GeT"), Some(0));
        // `| 0x20` folds '@' onto '`' for the hash only: each is itself.
        assert_eq!((m.get(b"@GET"), m.get(b"`get")), (Some(5), Some(6)));
        for miss in [&b"ge"[..], b"gett", b"g\xc3\xa9t", b"\xff", b"xrangex"] {
            assert_eq!(m.get(miss), None);
        }
        // Grows past its first slots and still finds every name.
        let many: Vec<&'static str> = (0..300)
            .map(|i| &*Box::leak(format!("cmd{i}").into_boxed_str()))
            .collect();
        for (i, n) in many.iter().enumerate() {
            assert_eq!(m.insert(n, 1000 + i), None);
        }
        for (i, n) in many.iter().enumerate() {
            assert_eq!(m.get(n.to_ascii_uppercase().as_bytes()), Some(1000 + i));
        }
        assert_eq!(m.get(b"GET"), Some(0));
    }
}
