//! A map from byte strings ordered by `(hash(key), key)`: the table form of
//! sets (keys in boxed slices: 24 bytes an entry in the tree plus the
//! key's allocation). Its scan step, `scan_positions`, is shared with the
//! hash table and the skiplist sorted sets' member index.
//!
//! That order gives HSCAN, SSCAN and ZSCAN a plain integer cursor (the hash
//! position to resume from) with Redis's guarantee: a key present for the
//! whole scan is returned at least once, however the map grows or shrinks
//! and whatever happens to the values between calls, because the position
//! of a key never depends on anything but its bytes. It also gives a cheap
//! random pick (the first entry at or after a random hash). Lookups are
//! O(log n).

use std::collections::BTreeMap;

/// The map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanMap<V> {
    t: BTreeMap<(u64, Box<[u8]>), V>,
}

impl<V> Default for ScanMap<V> {
    fn default() -> Self {
        ScanMap { t: BTreeMap::new() }
    }
}

/// The position of a key.
pub fn key_pos(k: &[u8]) -> u64 {
    super::key_hash(k)
}

impl<V> ScanMap<V> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.t.len()
    }

    pub fn is_empty(&self) -> bool {
        self.t.is_empty()
    }

    /// The entries sharing the position of `k` (almost always one).
    fn at_pos(&self, k: &[u8]) -> impl Iterator<Item = (&(u64, Box<[u8]>), &V)> {
        let h = key_pos(k);
        self.t
            .range((h, Box::default())..)
            .take_while(move |((kh, _), _)| *kh == h)
    }

    pub fn get_key_value(&self, k: &[u8]) -> Option<(&[u8], &V)> {
        self.at_pos(k)
            .find(|((_, x), _)| &x[..] == k)
            .map(|((_, x), v)| (&x[..], v))
    }

    pub fn get(&self, k: &[u8]) -> Option<&V> {
        self.get_key_value(k).map(|(_, v)| v)
    }

    pub fn contains_key(&self, k: &[u8]) -> bool {
        self.get(k).is_some()
    }

    pub fn get_mut(&mut self, k: &[u8]) -> Option<&mut V> {
        let h = key_pos(k);
        self.t
            .range_mut((h, Box::default())..)
            .take_while(|((kh, _), _)| *kh == h)
            .find(|((_, x), _)| &x[..] == k)
            .map(|(_, v)| v)
    }

    /// Inserts or replaces; returns the previous value.
    pub fn insert(&mut self, k: &[u8], v: V) -> Option<V> {
        self.t.insert((key_pos(k), k.into()), v)
    }

    /// Removes a key, returning its stored bytes and value.
    pub fn remove_entry(&mut self, k: &[u8]) -> Option<(Box<[u8]>, V)> {
        let key = self.at_pos(k).find(|((_, x), _)| &x[..] == k)?.0.clone();
        self.t.remove_entry(&key).map(|((_, x), v)| (x, v))
    }

    pub fn remove(&mut self, k: &[u8]) -> Option<V> {
        self.remove_entry(k).map(|(_, v)| v)
    }

    /// Every entry, in position order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &V)> {
        self.t.iter().map(|((_, k), v)| (&k[..], v))
    }

    /// An entry picked from the random number `r`.
    pub fn random(&self, r: u64) -> Option<(&[u8], &V)> {
        self.t
            .range((r, Box::default())..)
            .next()
            .or_else(|| self.t.iter().next())
            .map(|((_, k), v)| (&k[..], v))
    }

    /// One scan step: visits entries from position `cursor` on, calling `f`
    /// until it returns false (entries sharing a position are visited
    /// together, so none is skipped by resuming at the next position);
    /// returns the next cursor, 0 at the end.
    pub fn scan<'a>(&'a self, cursor: u64, mut f: impl FnMut(&'a [u8], &'a V) -> bool) -> u64 {
        scan_positions(
            self.t
                .range((cursor, Box::default())..)
                .map(|((h, k), v)| (*h, (&k[..], v))),
            |(k, v)| f(k, v),
        )
    }
}

/// The scan step over any index ordered by position: `items` are the
/// entries from the cursor's position on, in order; `f` is called on each
/// until it returns false, then on the rest of that position's entries (so
/// resuming at the next position skips none). Returns the next cursor, 0
/// at the end.
pub fn scan_positions<T>(
    items: impl Iterator<Item = (u64, T)>,
    mut f: impl FnMut(T) -> bool,
) -> u64 {
    let mut stop_after: Option<u64> = None;
    for (h, item) in items {
        if let Some(stop) = stop_after {
            if h != stop {
                return h;
            }
        }
        if !f(item) && stop_after.is_none() {
            stop_after = Some(h);
        }
    }
    0
}

impl<'k, V> FromIterator<(&'k [u8], V)> for ScanMap<V> {
    fn from_iter<I: IntoIterator<Item = (&'k [u8], V)>>(iter: I) -> Self {
        ScanMap {
            t: iter
                .into_iter()
                .map(|(k, v)| ((key_pos(k), k.into()), v))
                .collect(),
        }
    }
}

impl<'a, V> IntoIterator for &'a ScanMap<V> {
    type Item = (&'a [u8], &'a V);
    type IntoIter = Box<dyn Iterator<Item = (&'a [u8], &'a V)> + 'a>;
    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_visits_every_stable_key_while_the_map_changes() {
        let keys: Vec<String> = (0..500).map(|i| format!("k{i}")).collect();
        let mut m: ScanMap<u32> = keys
            .iter()
            .zip(0u32..)
            .map(|(k, i)| (k.as_bytes(), i))
            .collect();
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        let mut step = 0u32;
        loop {
            let mut n = 0;
            cursor = m.scan(cursor, |k, _| {
                seen.insert(k.to_vec());
                n += 1;
                n < 7
            });
            // Churn between calls: new keys, removed odd keys, new values.
            step += 1;
            m.insert(format!("new{step}").as_bytes(), step);
            m.remove(format!("k{}", 2 * step + 1).as_bytes());
            if let Some(v) = m.get_mut(b"k0") {
                *v += 1;
            }
            if cursor == 0 {
                break;
            }
        }
        for i in (0..500).step_by(2) {
            assert!(seen.contains(format!("k{i}").as_bytes()), "k{i}");
        }
        assert_eq!(m.get(b"k0"), Some(&step));
        assert!(m.remove_entry(b"nosuch").is_none());
    }
}
